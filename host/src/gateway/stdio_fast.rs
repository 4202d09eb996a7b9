//! The stdio fast path for the commonest request of a stdio session: a plain `tools/call`.
//!
//! rmcp answers a request on stdio in three tasks: its service loop reads the line, a task of its own runs the
//! handler and sends the answer back over a channel, and a third writes it — each hop a thread wake-up, most of
//! what a sequential stdio call cost beyond the call itself. Here the call runs where the line was read, through
//! the same pipeline as rmcp's path (`mcp::check_scope`, `mcp::run_call`), and is answered in rmcp's own message
//! types, so the bytes are the same.
//!
//! Only a request rmcp would hand to `call_tool` as it stands takes it, in either era of the protocol:
//! - a session opened with `initialize` at a version before 2026-07-28 and `notifications/initialized`, then a
//!   `tools/call` whose params carry no `_meta` (so no progress token);
//! - a 2026-07-28 connection, one whose first request after any `server/discover` or `ping` carried its own
//!   complete `_meta` (rmcp then serves it without `initialize`), then a `tools/call` whose `_meta` is plain (the
//!   version, readable client capabilities, maybe the client's info: [`super::fast::PlainMeta`], as over HTTP);
//!
//! and in both, no `inputResponses` or `requestState`, for a tool that is not long-running. That first request of
//! a 2026-07-28 connection goes to rmcp, so rmcp has chosen its lifecycle before any call is answered here.
//! Everything else goes to rmcp, as before. `PLUGHOST_STDIO_FAST_PATH=0` turns the fast path off.
//!
//! One call at a time runs in the reading task itself (the sequential client's case); a call that arrives while
//! one is running gets a task of its own, so calls still run in parallel. `notifications/cancelled` stops a fast
//! call's guest and, as on rmcp's path, its answer is not sent. When stdin ends, calls in flight finish and are
//! answered (for up to 5 s, rmcp's own drain; after that they are cancelled), so every one is ledgered.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rmcp::RoleServer;
use rmcp::model::{
    ClientNotification, ClientRequest, GetMeta, JsonRpcMessage, JsonRpcNotification,
    JsonRpcRequest, ProtocolVersion, RequestId, RequestMetaObject,
};
use rmcp::service::RxJsonRpcMessage;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Gateway;
use super::answer::message_bytes;
use super::fast::{PlainCall, PlainMeta, ToTheEnd};
use super::lock;
use super::mcp::{McpServer, check_scope, run_call};
use crate::ledger::Caller;

/// How long calls in flight when stdin ends may take to finish before they are cancelled (rmcp's own drain).
const DRAIN: Duration = Duration::from_secs(5);

/// Writes one reply line (`line` ends in `\n`) to stdout and flushes it, holding the lock throughout so lines never
/// interleave. Every stdio reply goes through here: rmcp's, the fast path's, and the refusals of bad lines.
pub(super) async fn write_line<W: AsyncWrite + Unpin>(
    output: &tokio::sync::Mutex<W>,
    line: &[u8],
) -> std::io::Result<()> {
    let mut out = output.lock().await;
    out.write_all(line).await?;
    out.flush().await
}

type Call = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The tokens of the fast calls in flight, by request id (with a serial, so a reused id cannot remove another's).
type InFlight = Arc<Mutex<HashMap<RequestId, (u64, CancellationToken)>>>;

/// Which lifecycle rmcp serves this connection in, once it has chosen: what a fast call is ledgered under and the
/// shape of its answer.
#[derive(Clone)]
enum Era {
    /// Opened with `initialize` before 2026-07-28: the client's name and version name the session in the ledger
    /// (as rmcp's path does, from its peer info), and results take the older shape.
    Initialized(String),
    /// 2026-07-28, every request carrying its own `_meta`: a call is ledgered under the client its `_meta` names,
    /// if any (rmcp keeps no peer info in this lifecycle).
    Stateless,
}

/// Whether rmcp, still waiting for a lifecycle, serves `request` in the 2026-07-28 one (as its server loop
/// decides: a request other than `initialize`, `server/discover` and `ping` whose `_meta` is complete, at a
/// version this gateway speaks; only 2026-07-28 is counted here).
fn opens_stateless(request: &ClientRequest) -> bool {
    if matches!(
        request,
        ClientRequest::InitializeRequest(_)
            | ClientRequest::DiscoverRequest(_)
            | ClientRequest::PingRequest(_)
    ) {
        return false;
    }
    let meta = request.get_meta();
    meta.missing_required_keys(&ProtocolVersion::V_2026_07_28)
        .is_empty()
        && meta
            .protocol_version()
            .is_some_and(|v| v.as_str() == ProtocolVersion::V_2026_07_28.as_str())
}

/// The fast path's state in one stdio session.
pub(super) struct StdioFast<W> {
    gateway: Arc<Gateway>,
    transport: &'static str,
    principal: Option<Arc<str>>,
    output: Arc<tokio::sync::Mutex<W>>,
    /// The client's name and version from `initialize` (how rmcp's path names the session in the ledger).
    client: Option<String>,
    /// Set once rmcp has chosen the lifecycle (`notifications/initialized`, or the first request with complete
    /// 2026-07-28 `_meta`, handed to it): from then on calls may take the fast path.
    era: Option<Era>,
    /// The call running in the reading task.
    inline: Option<Call>,
    /// Calls that came while another ran.
    spawned: JoinSet<()>,
    in_flight: InFlight,
    serial: u64,
}

impl<W> StdioFast<W>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    /// `None` when turned off with `PLUGHOST_STDIO_FAST_PATH=0`.
    pub(super) fn new(server: &McpServer, output: Arc<tokio::sync::Mutex<W>>) -> Option<Self> {
        if std::env::var_os("PLUGHOST_STDIO_FAST_PATH").is_some_and(|v| v == "0") {
            return None;
        }
        let (gateway, transport, principal) = server.fast_parts();
        Some(StdioFast {
            gateway,
            transport,
            principal,
            output,
            client: None,
            era: None,
            inline: None,
            spawned: JoinSet::new(),
            in_flight: Arc::default(),
            serial: 0,
        })
    }

    /// Takes `message` when it is a call for the fast path (and starts it); otherwise notes what the session needs
    /// to know of it and gives it back for rmcp.
    pub(super) fn offer(
        &mut self,
        message: RxJsonRpcMessage<RoleServer>,
    ) -> Option<RxJsonRpcMessage<RoleServer>> {
        match &message {
            // A second `initialize` changes nothing rmcp keeps; neither does it here.
            JsonRpcMessage::Request(JsonRpcRequest {
                request: ClientRequest::InitializeRequest(init),
                ..
            }) if self.client.is_none()
                && self.era.is_none()
                && init.params.protocol_version.as_str()
                    < ProtocolVersion::V_2026_07_28.as_str() =>
            {
                self.client = Some(super::client_label(&init.params.client_info));
            }
            JsonRpcMessage::Notification(JsonRpcNotification {
                notification: ClientNotification::InitializedNotification(_),
                ..
            }) if self.era.is_none() => {
                self.era = self.client.clone().map(Era::Initialized);
            }
            JsonRpcMessage::Notification(JsonRpcNotification {
                notification: ClientNotification::CancelledNotification(c),
                ..
            }) => {
                // rmcp knows nothing of a fast call's id and lets the notification pass.
                if let Some(id) = &c.params.request_id
                    && let Some((_, token)) = lock(&self.in_flight).get(id)
                {
                    token.cancel();
                }
            }
            // The request that makes rmcp choose the 2026-07-28 lifecycle goes to rmcp itself (`era` is read
            // before it is set).
            JsonRpcMessage::Request(JsonRpcRequest { request, .. })
                if self.era.is_none() && self.client.is_none() && opens_stateless(request) =>
            {
                self.era = Some(Era::Stateless);
                return Some(message);
            }
            _ => {}
        }
        let Some(era) = self.era.clone() else {
            return Some(message);
        };
        let JsonRpcMessage::Request(JsonRpcRequest {
            id,
            request: ClientRequest::CallToolRequest(call),
            ..
        }) = message
        else {
            return Some(message);
        };
        let p = &call.params;
        let plain_meta = match era {
            Era::Initialized(_) => call.extensions.is_empty(),
            Era::Stateless => {
                call.extensions.len() == 1
                    && call
                        .extensions
                        .get::<RequestMetaObject>()
                        .is_some_and(|m| super::fast::plain_meta(m))
            }
        };
        let plain = plain_meta
            && p.meta.as_ref().is_none_or(|m| m.is_empty())
            && p.input_responses.is_none()
            && p.request_state.is_none()
            && super::tasks::long_running(&self.gateway.index(), &p.name).is_none();
        if !plain {
            return Some(JsonRpcMessage::Request(JsonRpcRequest::new(
                id,
                ClientRequest::CallToolRequest(call),
            )));
        }
        let client = call
            .extensions
            .get::<RequestMetaObject>()
            .and_then(|m| super::meta_client(m));
        let params = call.params;
        self.start(id, params.name.into_owned(), params.arguments, era, client);
        None
    }

    /// Takes a line that is a plain `tools/call` and nothing else (exactly `jsonrpc`, `id`, `method` and `params`
    /// with `name`, maybe `arguments`, and `_meta` as the era asks: none after `initialize`, a plain one in
    /// 2026-07-28), parsed straight into its parts ([`PlainCall`], as an HTTP body is). `false`: the line goes the
    /// usual way (rmcp's parse, then [`StdioFast::offer`]).
    pub(super) fn take_line(&mut self, line: &[u8]) -> bool {
        let Some(era) = self.era.clone() else {
            return false;
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Ok(call) = serde_json::from_slice::<PlainCall>(line) else {
            return false;
        };
        let meta_fits = match (&era, &call.params.meta) {
            (Era::Initialized(_), meta) => meta.is_none(),
            (Era::Stateless, Some(meta)) => meta.fits(),
            (Era::Stateless, None) => false,
        };
        if !call.is_call()
            || !meta_fits
            || super::tasks::long_running(&self.gateway.index(), &call.params.name).is_some()
        {
            return false;
        }
        let client = call.params.meta.as_ref().and_then(PlainMeta::client);
        self.start(
            call.id,
            call.params.name,
            call.params.arguments,
            era,
            client,
        );
        true
    }

    /// Starts a fast call: in the reading task when none runs there, else in a task of its own.
    fn start(
        &mut self,
        id: RequestId,
        name: String,
        arguments: Option<serde_json::Map<String, serde_json::Value>>,
        era: Era,
        client: Option<String>,
    ) {
        tracing::debug!(tool = %name, "stdio fast path: a call");
        let (session, legacy) = match era {
            Era::Initialized(session) => (Some(session), true),
            Era::Stateless => (client, false),
        };
        let caller = Caller {
            transport: self.transport.into(),
            session,
            principal: self.principal.as_deref().map(str::to_string),
        };
        let token = CancellationToken::new();
        self.serial += 1;
        let serial = self.serial;
        lock(&self.in_flight).insert(id.clone(), (serial, token.clone()));
        let gateway = self.gateway.clone();
        let output = self.output.clone();
        let in_flight = self.in_flight.clone();
        let stop = token.clone();
        let run = ToTheEnd::new(
            async move {
                check_scope(&gateway, None, &name, &caller).await?;
                run_call(&gateway, &name, arguments, &caller, stop).await
            },
            token.clone(),
        );
        let call: Call = Box::pin(async move {
            let result = run.await;
            {
                let mut map = lock(&in_flight);
                if map.get(&id).is_some_and(|(s, _)| *s == serial) {
                    map.remove(&id);
                }
            }
            // A cancelled request is not answered (as on rmcp's path); its call is ledgered all the same.
            if token.is_cancelled() {
                return;
            }
            // A session begun before 2026-07-28: rmcp's handler gives its results their older shape.
            let Ok(mut bytes) = message_bytes(id, result, legacy) else {
                return;
            };
            bytes.push(b'\n');
            // stdout gone means the client is gone: nobody is left to tell.
            let _ = write_line(&output, &bytes).await;
        });
        if self.inline.is_none() {
            self.inline = Some(call);
        } else {
            self.spawned.spawn(call);
        }
    }

    /// Whether a call is in flight.
    pub(super) fn busy(&self) -> bool {
        self.inline.is_some() || !self.spawned.is_empty()
    }

    /// Runs the calls in flight until one of them ends.
    pub(super) fn poll_progress(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(call) = self.inline.as_mut()
            && call.as_mut().poll(cx).is_ready()
        {
            self.inline = None;
            return Poll::Ready(());
        }
        if !self.spawned.is_empty()
            && let Poll::Ready(Some(_)) = self.spawned.poll_join_next(cx)
        {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// Lets the calls in flight finish and answer; after [`DRAIN`], cancels those still running and waits for
    /// them to stop (each is ledgered).
    pub(super) async fn finish(&mut self) {
        let all = async {
            while self.busy() {
                std::future::poll_fn(|cx| self.poll_progress(cx)).await;
            }
        };
        if tokio::time::timeout(DRAIN, all).await.is_err() {
            for (_, token) in lock(&self.in_flight).values() {
                token.cancel();
            }
            while self.busy() {
                std::future::poll_fn(|cx| self.poll_progress(cx)).await;
            }
        }
    }
}
