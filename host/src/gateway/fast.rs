//! The HTTP fast path for the commonest request of the 2026-07-28 era: a stateless `tools/call`.
//!
//! rmcp serves such a request by starting a one-request service for it, which spawns a task for the handler,
//! whose answer comes back over a channel to the connection's task: three tasks that hop between tokio's
//! workers, each hop a thread wake-up (the largest single cost of a served call in the profile in README). Here
//! the call runs in the connection's own task, through the same pipeline as rmcp's path (`mcp::check_scope`,
//! `mcp::run_call`), and is answered in rmcp's own message types, so the bytes are the same.
//!
//! Only a request rmcp would accept as it stands takes it: `Host` one of the allowed hosts, no `Origin`, an
//! `Accept` of JSON and SSE, no session, `MCP-Protocol-Version: 2026-07-28` with the same version and client
//! capabilities rmcp can read in `_meta`, one `Mcp-Method: tools/call` and one plain `Mcp-Name` equal to the tool,
//! no `Mcp-Param-*` header and a tool whose schema asks for none, no progress token, a tool that is not
//! long-running, and a body with no field rmcp would read differently. Everything else goes to rmcp, which
//! answers it (and its errors) as before. `PLUGHOST_HTTP_FAST_PATH=0` turns the fast path off.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use rmcp::ErrorData;
use rmcp::model::{
    CallToolResponse, ClientCapabilities, ErrorCode, Implementation, RequestId,
    ServerJsonRpcMessage, ServerResult,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::Gateway;
use super::auth::Principal;
use super::mcp::{check_scope, run_call};
use crate::ledger::Caller;

const ERA: &str = "2026-07-28";
const META_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_CLIENT: &str = "io.modelcontextprotocol/clientInfo";
// Header names built once: looked up by a `&str`, each lookup parsed and lower-cased the name first.
const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const METHOD: HeaderName = HeaderName::from_static("mcp-method");
const NAME: HeaderName = HeaderName::from_static("mcp-name");

/// What the fast path needs besides the request.
#[derive(Debug)]
pub struct FastPath {
    gateway: Arc<Gateway>,
    /// Allowed `Host` values that are bare host names (an entry with a port sends its requests to rmcp).
    hosts: Vec<String>,
    /// The session a stateless call that does not name its client is recorded under on rmcp's path (rmcp's default
    /// client info).
    session: String,
}

/// A request that takes the fast path.
#[derive(Debug)]
pub struct FastCall {
    id: RequestId,
    /// The client the request names in its `_meta` (as [`super::client_label`] gives it).
    client: Option<String>,
    name: String,
    arguments: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    jsonrpc: String,
    id: RequestId,
    method: String,
    params: Params,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    #[serde(rename = "_meta")]
    meta: Map<String, Value>,
}

impl FastPath {
    /// `None` when turned off with `PLUGHOST_HTTP_FAST_PATH=0`.
    pub fn new(gateway: Arc<Gateway>, allowed_hosts: &[String]) -> Option<FastPath> {
        if std::env::var_os("PLUGHOST_HTTP_FAST_PATH").is_some_and(|v| v == "0") {
            return None;
        }
        let client = Implementation::default();
        Some(FastPath {
            gateway,
            hosts: allowed_hosts
                .iter()
                .filter(|h| !h.contains(':') || *h == "::1")
                .cloned()
                .collect(),
            session: format!("{} {}", client.name, client.version),
        })
    }

    /// Whether a POST with these headers may take the fast path, its body aside: what the front door (`http.rs`)
    /// asks before it reads the body.
    pub fn wants(&self, headers: &HeaderMap) -> bool {
        !(headers.contains_key(SESSION_ID)
            || headers.contains_key(header::ORIGIN)
            || !self.host_allowed(headers)
            || !accepts_json_and_sse(headers)
            || only(headers, &PROTOCOL_VERSION) != Some(ERA)
            || only(headers, &METHOD) != Some("tools/call")
            || headers.keys().any(|k| k.as_str().starts_with("mcp-param-")))
    }

    /// The call, when this POST (with a JSON content type, already checked) can take the fast path. `wanted`:
    /// [`FastPath::wants`] already said yes to these headers (the front door asks it first).
    pub fn take(&self, headers: &HeaderMap, body: &[u8], wanted: bool) -> Option<FastCall> {
        if !wanted && !self.wants(headers) {
            return None;
        }
        let m: Message = serde_json::from_slice(body).ok()?;
        if m.jsonrpc != "2.0"
            || m.method != "tools/call"
            || only(headers, &NAME)? != m.params.name
            || !plain_meta(&m.params.meta)
        {
            return None;
        }
        let index = self.gateway.index();
        if index
            .tools
            .get(m.params.name.as_str())
            .is_some_and(|t| t.param_headers)
            || super::tasks::long_running(&index, &m.params.name).is_some()
        {
            return None;
        }
        Some(FastCall {
            id: m.id,
            client: super::meta_client(&m.params.meta),
            name: m.params.name,
            arguments: m.params.arguments,
        })
    }

    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(host) = only(headers, &header::HOST) else {
            return false;
        };
        let bare = match host.strip_prefix('[') {
            Some(v6) => v6.split_once(']').map(|(h, _)| h),
            None => Some(match host.rsplit_once(':') {
                Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
                _ => host,
            }),
        };
        bare.is_some_and(|b| self.hosts.iter().any(|h| h.eq_ignore_ascii_case(b)))
    }

    /// Runs the call in this task and answers it as rmcp would. If the client goes away first (this future is
    /// dropped), the call is cancelled and finishes in a task of its own, so it is still ledgered.
    pub async fn serve(self: Arc<Self>, principal: Option<Principal>, call: FastCall) -> Response {
        let ct = CancellationToken::new();
        let FastCall {
            id,
            client,
            name,
            arguments,
        } = call;
        let caller = Caller {
            transport: "http".into(),
            session: Some(client.unwrap_or_else(|| self.session.clone())),
            principal: principal.as_ref().map(|p| p.name.to_string()),
        };
        self.gateway.metrics.fast_path();
        let gateway = self.gateway.clone();
        let token = ct.clone();
        let result = ToTheEnd::new(
            async move {
                check_scope(&gateway, principal.as_ref(), &name, &caller).await?;
                run_call(&gateway, &name, arguments, &caller, token).await
            },
            ct,
        )
        .await;
        answer(id, result)
    }
}

/// The JSON-RPC answer, in rmcp's types and with the HTTP status its negotiated stateless path gives.
fn answer(id: RequestId, result: Result<rmcp::model::CallToolResult, ErrorData>) -> Response {
    let (status, message) = match result {
        Ok(r) => (
            StatusCode::OK,
            ServerJsonRpcMessage::response(ServerResult::from(CallToolResponse::from(r)), id),
        ),
        Err(e) => {
            let status = match e.code {
                ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
                ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
                | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
                | ErrorCode::HEADER_MISMATCH => StatusCode::BAD_REQUEST,
                _ => StatusCode::OK,
            };
            (status, ServerJsonRpcMessage::error(e, Some(id)))
        }
    };
    let (status, body) = match serde_json::to_vec(&message) {
        Ok(b) => (status, b),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("serialize json response: {e}").into_bytes(),
        ),
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// A 2026-07-28 request's `_meta` that asks for nothing beyond the call: the version (this era), client capabilities
/// rmcp can read (it refuses a request whose capabilities do not decode) and maybe the client's info. Anything else
/// (a progress token, a log level, trace context) is left to rmcp. Both fast paths, HTTP and stdio, ask this.
pub(super) fn plain_meta(meta: &Map<String, Value>) -> bool {
    meta.keys()
        .all(|k| k == META_VERSION || k == META_CAPABILITIES || k == META_CLIENT)
        && meta.get(META_VERSION).and_then(Value::as_str) == Some(ERA)
        && meta
            .get(META_CAPABILITIES)
            .is_some_and(|c| ClientCapabilities::deserialize(c).is_ok())
}

/// The one value of header `name`, if it has exactly one and it is text.
fn only<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// `Accept` names both `application/json` and `text/event-stream`, as rmcp requires of a POST.
fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let (mut json, mut sse) = (false, false);
    for v in headers.get_all(header::ACCEPT) {
        let Ok(v) = v.to_str() else { continue };
        for item in v.split(',') {
            let essence = item.split(';').next().unwrap_or_default().trim();
            json |= essence.eq_ignore_ascii_case("application/json");
            sse |= essence.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

/// A call future that is never cut short: dropped before it finishes (the client went away), it cancels its
/// token — which stops the guest — and runs to its end in a task of its own, where its report is ledgered.
pub(super) struct ToTheEnd<F: Future + Send + 'static> {
    inner: Option<Pin<Box<F>>>,
    cancel: CancellationToken,
}

impl<F: Future + Send + 'static> ToTheEnd<F> {
    pub(super) fn new(f: F, cancel: CancellationToken) -> Self {
        ToTheEnd {
            inner: Some(Box::pin(f)),
            cancel,
        }
    }
}

impl<F: Future + Send + 'static> Future for ToTheEnd<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Pending;
        };
        let out = std::task::ready!(inner.as_mut().poll(cx));
        self.inner = None;
        Poll::Ready(out)
    }
}

impl<F: Future + Send + 'static> Drop for ToTheEnd<F> {
    fn drop(&mut self) {
        if let Some(rest) = self.inner.take() {
            self.cancel.cancel();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    rest.await;
                });
            }
        }
    }
}
