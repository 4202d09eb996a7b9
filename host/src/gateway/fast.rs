//! The HTTP fast path for the commonest request: a `tools/call`, stateless (2026-07-28) or in a live 2025-era session.
//!
//! rmcp serves a stateless request by starting a one-request service for it, which spawns a task for the handler,
//! whose answer comes back over a channel to the connection's task: three tasks that hop between tokio's
//! workers, each hop a thread wake-up (the largest single cost of a served call in the profile in README). A call
//! in a session goes to the session's worker task and back, and its answer is an SSE stream. Here the call runs in
//! the connection's own task, through the same pipeline as rmcp's path (`mcp::check_scope`, `mcp::run_call`), and
//! is answered in rmcp's own message types, so the JSON-RPC message is the same.
//!
//! Only a request rmcp would accept as it stands takes it: `Host` one of the allowed hosts, no `Origin`, an
//! `Accept` of JSON and SSE, no `Mcp-Param-*` header and a tool whose schema asks for none, no progress token, a
//! tool that is not long-running, and a body with no field rmcp would read differently. Stateless: no session,
//! `MCP-Protocol-Version: 2026-07-28` with the same version and client capabilities rmcp can read in `_meta`, one
//! `Mcp-Method: tools/call` and one plain `Mcp-Name` equal to the tool. In a session: one `Mcp-Session-Id` that
//! rmcp holds, a 2025-era `MCP-Protocol-Version` or none, no `_meta`, `Mcp-Method`/`Mcp-Name` absent or matching; the
//! answer is `application/json` (which a 2025-era client must accept as well as SSE). Everything else goes to
//! rmcp, which answers it (and its errors) as before. `PLUGHOST_HTTP_FAST_PATH=0` turns the fast path off.
//!
//! Sessions stay rmcp's: it opens, lists and closes them, and its worker's idle timer closes a quiet one. That
//! timer only hears requests rmcp takes, so with the fast path on it runs to twice `--session-idle`, and a
//! session's calls take the fast path only while rmcp has taken one of its requests within `--session-idle`:
//! a session still closes after `--session-idle` to twice that without traffic. A `notifications/cancelled`
//! (which reaches rmcp's session) stops a fast-path call through `session_calls.rs`; a client that goes away
//! does not (in the 2025 era a disconnect is not a cancellation), as on rmcp's path.

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use rmcp::ErrorData;
use rmcp::model::{ClientCapabilities, ErrorCode, Implementation, RequestId};
use rmcp::transport::streamable_http_server::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::Gateway;
use super::answer::{CallAnswer, message_bytes};
use super::auth::Principal;
use super::mcp::{check_scope, run_call};
use super::session_calls::{SESSION_ID, SessionCalls};
use crate::ledger::Caller;

const ERA: &str = "2026-07-28";
/// The 2025-era versions a session may speak (rmcp serves each of them with sessions).
const SESSION_ERAS: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
// Header names built once: looked up by a `&str`, each lookup parsed and lower-cased the name first.
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
    /// 2025-era sessions, rmcp's.
    sessions: Sessions,
}

/// What the fast path knows of rmcp's sessions.
#[derive(Debug)]
struct Sessions {
    table: Arc<LocalSessionManager>,
    seen: std::sync::Mutex<Seen>,
    calls: Arc<SessionCalls>,
}

/// When rmcp last took a request of each session, which restarted its worker's idle timer. An entry older than
/// `idle` says no more than a missing one, and a missing one only sends the session's next call to rmcp, so the
/// table stays small: past `max` entries (`--max-sessions`) it drops the stale ones, and past twice that the
/// oldest, so sessions opened and ended in a loop cannot grow it.
#[derive(Debug)]
struct Seen {
    at: HashMap<Arc<str>, Instant>,
    /// `--session-idle`: rmcp's timer runs to twice this.
    idle: Duration,
    max: usize,
}

impl Seen {
    fn new(idle: Duration, max: usize) -> Seen {
        Seen {
            at: HashMap::new(),
            idle,
            max: max.max(1),
        }
    }

    fn took(&mut self, session: &str, now: Instant) {
        if self.at.len() >= self.max && !self.at.contains_key(session) {
            let idle = self.idle;
            self.at
                .retain(|_, at| now.saturating_duration_since(*at) < idle);
            while self.at.len() >= 2 * self.max {
                let oldest = self
                    .at
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => self.at.remove(&k),
                    None => break,
                };
            }
        }
        self.at.insert(Arc::from(session), now);
    }

    fn fresh(&self, session: &str, now: Instant) -> bool {
        self.at
            .get(session)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.idle)
    }

    fn forget(&mut self, session: &str) {
        self.at.remove(session);
    }
}

/// A request that takes the fast path.
#[derive(Debug)]
pub struct FastCall {
    id: RequestId,
    /// The 2025-era session the call is made in; `None` for a stateless call.
    session: Option<Arc<str>>,
    /// The client the request names in its `_meta` (as [`super::client_label`] gives it).
    client: Option<String>,
    name: String,
    arguments: Option<Map<String, Value>>,
}

/// A `tools/call` with nothing but a name, maybe arguments and maybe a plain `_meta`, parsed straight from the
/// bytes by both fast paths (an HTTP body, a stdio line): rmcp's message type is an untagged enum with flattened
/// fields, which serde parses by buffering the whole message first. A field rmcp would read (a progress token, a
/// task, anything unknown) fails the parse, and the request goes to rmcp.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlainCall<'a> {
    // Borrowed from the body unless escaped: only compared.
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    pub(super) id: RequestId,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) params: PlainParams<'a>,
}

impl PlainCall<'_> {
    /// JSON-RPC 2.0 and `tools/call`.
    pub(super) fn is_call(&self) -> bool {
        self.jsonrpc == "2.0" && self.method == "tools/call"
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlainParams<'a> {
    pub(super) name: String,
    #[serde(default)]
    pub(super) arguments: Option<Map<String, Value>>,
    #[serde(rename = "_meta", default, borrow)]
    pub(super) meta: Option<PlainMeta<'a>>,
}

/// A 2026-07-28 request's `_meta` that asks for nothing beyond the call: the version, client capabilities rmcp can
/// read (it refuses a request whose capabilities do not decode) and maybe the client's info. Anything else (a
/// progress token, a log level, trace context) fails its parse, and is left to rmcp. Read straight from the bytes
/// (no map of `Value`s), or from rmcp's parsed `_meta` ([`plain_meta`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PlainMeta<'a> {
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", borrow)]
    version: Cow<'a, str>,
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities")]
    _capabilities: ClientCapabilities,
    /// Any JSON, as before the typed parse: read as rmcp's `Implementation` only to name the client.
    #[serde(rename = "io.modelcontextprotocol/clientInfo", default)]
    client: Option<Value>,
}

impl PlainMeta<'_> {
    /// Whether it is this era's.
    pub(super) fn fits(&self) -> bool {
        self.version == ERA
    }

    /// The client it names, if its info decodes ([`super::client_of`], as rmcp's path reads it).
    pub(super) fn client(&self) -> Option<String> {
        self.client.as_ref().and_then(super::client_of)
    }
}

/// How long rmcp should let a quiet session live so that, with the fast path on, it closes `idle` to twice that
/// after its last request (see the module's text).
pub fn session_keep_alive(idle: Duration) -> Duration {
    if enabled() {
        idle.saturating_mul(2)
    } else {
        idle
    }
}

fn enabled() -> bool {
    std::env::var_os("PLUGHOST_HTTP_FAST_PATH").is_none_or(|v| v != "0")
}

impl FastPath {
    /// `None` when turned off with `PLUGHOST_HTTP_FAST_PATH=0`.
    /// `sessions`: rmcp's session table, with `--session-idle` and `--max-sessions`; `calls`: where session calls
    /// are registered for `notifications/cancelled`.
    pub fn new(
        gateway: Arc<Gateway>,
        allowed_hosts: &[String],
        sessions: (Arc<LocalSessionManager>, Duration, usize),
        calls: Arc<SessionCalls>,
    ) -> Option<FastPath> {
        if !enabled() {
            return None;
        }
        let client = Implementation::default();
        let (table, idle, max) = sessions;
        Some(FastPath {
            gateway,
            hosts: allowed_hosts
                .iter()
                .filter(|h| !h.contains(':') || *h == "::1")
                .cloned()
                .collect(),
            session: format!("{} {}", client.name, client.version),
            sessions: Sessions {
                table,
                seen: std::sync::Mutex::new(Seen::new(idle, max)),
                calls,
            },
        })
    }

    /// rmcp took (answered with success) a request of `session`: its worker's idle timer started again.
    pub fn rmcp_took(&self, session: &str) {
        super::lock(&self.sessions.seen).took(session, Instant::now());
    }

    /// `session` ended (`DELETE`): its entry goes.
    pub fn session_ended(&self, session: &str) {
        super::lock(&self.sessions.seen).forget(session);
    }

    /// Whether a call in `session` may take the fast path: rmcp holds the session and took one of its requests
    /// within `--session-idle`, so its worker will not close it under the call.
    pub async fn session_ready(&self, session: &Arc<str>) -> bool {
        let s = &self.sessions;
        let fresh = super::lock(&s.seen).fresh(session, Instant::now());
        fresh && s.table.has_session(session).await.unwrap_or(false)
    }

    /// Whether a POST with these headers may take the fast path, its body aside: what the front door (`http.rs`)
    /// asks before it reads the body.
    pub fn wants(&self, headers: &HeaderMap) -> bool {
        if headers.contains_key(header::ORIGIN)
            || !self.host_allowed(headers)
            || !accepts_json_and_sse(headers)
            || headers.keys().any(|k| k.as_str().starts_with("mcp-param-"))
        {
            return false;
        }
        if !headers.contains_key(SESSION_ID) {
            return only(headers, &PROTOCOL_VERSION) == Some(ERA)
                && only(headers, &METHOD) == Some("tools/call");
        }
        // No version header: rmcp reads the request as 2025-03-26, and answers it the same.
        only(headers, &SESSION_ID).is_some()
            && absent_or(headers, &PROTOCOL_VERSION, |v| SESSION_ERAS.contains(&v))
            && absent_or(headers, &METHOD, |m| m == "tools/call")
    }

    /// The call, when this POST (with a JSON content type, already checked) can take the fast path. `wanted`:
    /// [`FastPath::wants`] already said yes to these headers (the front door asks it first).
    pub fn take(&self, headers: &HeaderMap, body: &[u8], wanted: bool) -> Option<FastCall> {
        if !wanted && !self.wants(headers) {
            return None;
        }
        let m: PlainCall = serde_json::from_slice(body).ok()?;
        let session = only(headers, &SESSION_ID).map(Arc::from);
        let fits = match (&session, &m.params.meta) {
            // Stateless: `Mcp-Name` names the tool, `_meta` carries the version and nothing more.
            (None, Some(meta)) => {
                only(headers, &NAME) == Some(m.params.name.as_str()) && meta.fits()
            }
            // A session: no `_meta` at all (a progress token is the common one), `Mcp-Name` absent or the tool.
            (Some(_), None) => absent_or(headers, &NAME, |n| n == m.params.name),
            _ => false,
        };
        if !m.is_call() || !fits {
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
            client: m.params.meta.as_ref().and_then(PlainMeta::client),
            session,
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

    /// Runs the call in this task and answers it as rmcp would. A stateless call whose client goes away first
    /// (this future is dropped) is cancelled; a session call is not (its session's `notifications/cancelled` is the
    /// way to stop it). Either finishes in a task of its own, so it is still ledgered.
    pub async fn serve(self: Arc<Self>, principal: Option<Principal>, call: FastCall) -> Response {
        let ct = CancellationToken::new();
        let FastCall {
            id,
            session,
            client,
            name,
            arguments,
        } = call;
        let stateless = session.is_none();
        // In a session, the call is recorded under the session's id, as on rmcp's path.
        let entered = session
            .as_ref()
            .map(|s| self.sessions.calls.enter(s.clone(), id.clone(), ct.clone()));
        let caller = Caller {
            transport: "http".into(),
            session: Some(match session {
                Some(s) => s.to_string(),
                None => client.unwrap_or_else(|| self.session.clone()),
            }),
            principal: principal.as_ref().map(|p| p.name.to_string()),
        };
        self.gateway.metrics.fast_path();
        let gateway = self.gateway.clone();
        let token = ct.clone();
        let call = async move {
            let _entered = entered;
            check_scope(&gateway, principal.as_ref(), &name, &caller).await?;
            run_call(&gateway, &name, arguments, &caller, token).await
        };
        let result = if stateless {
            ToTheEnd::new(call, ct).await
        } else {
            ToTheEnd::running_on(call).await
        };
        answer(id, result, stateless)
    }
}

impl FastCall {
    /// A stateless call is ready as it is; a session call when its session is ([`FastPath::session_ready`]).
    pub async fn session_ready(&self, fast: &FastPath) -> bool {
        match &self.session {
            None => true,
            Some(s) => fast.session_ready(s).await,
        }
    }
}

/// The JSON-RPC answer, the message rmcp's path gives, with the HTTP status it gives: a stateless call's error may
/// have a 4xx status (rmcp's negotiated stateless path), a session's answer is always 200 (rmcp's stream carries it).
fn answer(id: RequestId, result: Result<CallAnswer, ErrorData>, stateless: bool) -> Response {
    let status = match &result {
        Err(e) if stateless => match e.code {
            ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
            ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
            | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
            | ErrorCode::HEADER_MISMATCH => StatusCode::BAD_REQUEST,
            _ => StatusCode::OK,
        },
        _ => StatusCode::OK,
    };
    let (status, body) = match message_bytes(id, result, !stateless) {
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

/// Whether rmcp's parsed `_meta` of a request is a plain one of this era ([`PlainMeta`]): the stdio fast path asks
/// it of a line rmcp parsed first.
pub(super) fn plain_meta(meta: &Map<String, Value>) -> bool {
    PlainMeta::deserialize(meta).is_ok_and(|m| m.fits())
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

/// Header `name` is absent, or has one text value that `ok` accepts.
fn absent_or(headers: &HeaderMap, name: &HeaderName, ok: impl FnOnce(&str) -> bool) -> bool {
    !headers.contains_key(name) || only(headers, name).is_some_and(ok)
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
    /// `None`: dropped, the call runs on uncancelled.
    cancel: Option<CancellationToken>,
}

impl<F: Future + Send + 'static> ToTheEnd<F> {
    pub(super) fn new(f: F, cancel: CancellationToken) -> Self {
        ToTheEnd {
            inner: Some(Box::pin(f)),
            cancel: Some(cancel),
        }
    }

    /// Dropped before it finishes, the call runs on to its end, not cancelled.
    pub(super) fn running_on(f: F) -> Self {
        ToTheEnd {
            inner: Some(Box::pin(f)),
            cancel: None,
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
            if let Some(cancel) = &self.cancel {
                cancel.cancel();
            }
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    rest.await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_sessions_are_fresh_for_idle_and_bounded() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(10);
        let mut seen = Seen::new(idle, 4);
        seen.took("a", t0);
        assert!(seen.fresh("a", t0 + Duration::from_secs(9)));
        assert!(!seen.fresh("a", t0 + idle));
        assert!(!seen.fresh("b", t0));
        seen.forget("a");
        assert!(!seen.fresh("a", t0));
        // Sessions opened in a loop, all fresh: the table stops at twice the cap, keeping the newest.
        for i in 0..1000 {
            seen.took(&format!("s{i}"), t0 + Duration::from_millis(i));
        }
        assert!(seen.at.len() <= 8, "{}", seen.at.len());
        assert!(seen.fresh("s999", t0 + Duration::from_secs(1)));
        assert!(!seen.fresh("s0", t0 + Duration::from_secs(1)));
        // Once they are stale, the next new session clears them.
        seen.took("late", t0 + Duration::from_secs(60));
        assert_eq!(seen.at.len(), 1);
    }

    #[test]
    fn only_a_plain_call_parses_and_its_meta_says_whether_it_fits() {
        let meta = |extra: &str| {
            format!(
                r#"{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}{extra}}}"#
            )
        };
        let call = |meta: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"p__t","arguments":{{"a":1}},"_meta":{meta}}}}}"#
            )
        };
        fn parsed(body: &str) -> Option<PlainCall<'_>> {
            serde_json::from_str(body).ok()
        }

        let body = call(&meta(""));
        let m = parsed(&body).expect("a plain stateless call");
        assert!(m.is_call());
        assert_eq!(m.id, RequestId::Number(7));
        assert_eq!(m.params.name, "p__t");
        assert_eq!(
            m.params.arguments,
            Some(
                serde_json::json!({"a": 1})
                    .as_object()
                    .cloned()
                    .unwrap_or_default()
            )
        );
        let pm = m.params.meta.as_ref().expect("its _meta");
        assert!(pm.fits());
        assert_eq!(pm.client(), None);

        // The client's info names the client; info that does not decode names none but still fits.
        let named = call(&meta(
            r#","io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}"#,
        ));
        let m = parsed(&named).expect("with client info");
        assert_eq!(
            m.params
                .meta
                .as_ref()
                .and_then(PlainMeta::client)
                .as_deref(),
            Some("c 1")
        );
        let odd = call(&meta(r#","io.modelcontextprotocol/clientInfo":5"#));
        let m = parsed(&odd).expect("with odd client info");
        assert!(m.params.meta.as_ref().is_some_and(PlainMeta::fits));
        assert_eq!(m.params.meta.as_ref().and_then(PlainMeta::client), None);

        // Another version parses but does not fit.
        let other = call(&meta("").replace("2026-07-28", "2025-11-25"));
        assert!(
            !parsed(&other)
                .expect("parses")
                .params
                .meta
                .expect("meta")
                .fits()
        );

        // Whatever rmcp would read is not a plain call: a progress token, missing or unreadable capabilities,
        // an unknown field anywhere.
        for body in [
            call(&meta(r#","progressToken":1"#)),
            call(r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}"#),
            call(&meta("").replace("{}", r#"{"roots":5}"#)),
            body.replace(r#""id":7"#, r#""id":7,"extra":1"#),
            body.replace(r#""name":"p__t""#, r#""name":"p__t","task":{}"#),
        ] {
            assert!(parsed(&body).is_none(), "{body}");
        }
        // A JSON-RPC version or method other than these parses, and is not a call.
        assert!(
            !parsed(&body.replace("tools/call", "tools/list"))
                .expect("parses")
                .is_call()
        );
        assert!(
            !parsed(&body.replace(r#""2.0""#, r#""1.0""#))
                .expect("parses")
                .is_call()
        );

        // rmcp's parsed `_meta` is judged by the same rule.
        let map = |m: &str| serde_json::from_str::<Map<String, Value>>(m).expect("map");
        assert!(plain_meta(&map(&meta(""))));
        assert!(!plain_meta(&map(&meta(r#","progressToken":1"#))));
        assert!(!plain_meta(&map(
            &meta("").replace("2026-07-28", "2025-11-25")
        )));
    }
}
