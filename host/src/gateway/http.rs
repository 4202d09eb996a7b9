//! Streamable HTTP: the MCP endpoint at `/mcp` (rmcp's tower service) with Origin and Host validation on, the
//! operator's bearer token or scoped client tokens (auth.rs), a request body limit, plus `/health`, `/ready`,
//! `/metrics` (Prometheus text) and the operator page at `/ui` (see [`super::ui`]). Each connection serves the
//! router behind a front door (`Front`) that answers stateless `tools/call` requests on the fast path (fast.rs)
//! without the router's layers, with the same checks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::Gateway;
use super::auth::{
    Auth, Authenticated, METADATA_PATH, Principal, authenticate, resource_metadata, who,
};
use super::fast::FastPath;
use super::jsonrpc::{self, Refusal};
use super::mcp::McpServer;
use super::oauth::OAuth;
use super::repoll::RePoll;
use super::session_calls::SessionCalls;

/// Default request body limit for `/mcp` (tool arguments are JSON; 4 MiB is generous).
pub const DEFAULT_MAX_BODY: usize = 4 << 20;
/// Default cap on live legacy (2025-11-25) sessions. Each holds its channels and tasks (~100 KiB).
pub const DEFAULT_MAX_SESSIONS: usize = 1000;
/// Default idle time after which a legacy session is closed.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(300);

/// How the HTTP gateway is exposed.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// When set, every request except `/health` needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Browser origins allowed to call (`scheme://host:port`, `:*` for any port). Requests without `Origin` pass.
    pub allowed_origins: Vec<String>,
    /// Accepted `Host` header values (DNS-rebinding defence).
    pub allowed_hosts: Vec<String>,
    pub max_body_bytes: usize,
    pub page_size: usize,
    /// Live legacy sessions at most; an `initialize` beyond it gets 503 with a JSON-RPC error.
    pub max_sessions: usize,
    /// A legacy session with no traffic for this long is closed (by twice this when its last calls took the fast
    /// path: see `fast.rs`).
    pub session_idle: Duration,
    /// An OAuth issuer whose JWT access tokens are accepted besides the operator's and client tokens.
    pub oauth: Option<Arc<OAuth>>,
    /// How many tasks (of long-running tools) a principal may hold, and how big a result.
    pub task_limits: super::tasks::TaskLimits,
}

impl HttpOptions {
    /// Loopback-only defaults for a server bound to `addr`, plus `extra_origins` / `extra_hosts`.
    pub fn for_addr(addr: SocketAddr, extra_origins: &[String], extra_hosts: &[String]) -> Self {
        let mut origins: Vec<String> = vec![
            "http://127.0.0.1:*".into(),
            "http://localhost:*".into(),
            "http://[::1]:*".into(),
        ];
        origins.extend(extra_origins.iter().cloned());
        let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        if !addr.ip().is_loopback() && !addr.ip().is_unspecified() {
            hosts.push(addr.ip().to_string());
        }
        hosts.extend(extra_hosts.iter().cloned());
        HttpOptions {
            token: None,
            allowed_origins: origins,
            allowed_hosts: hosts,
            max_body_bytes: DEFAULT_MAX_BODY,
            page_size: super::mcp::DEFAULT_PAGE_SIZE,
            max_sessions: DEFAULT_MAX_SESSIONS,
            session_idle: DEFAULT_SESSION_IDLE,
            oauth: None,
            task_limits: super::tasks::TaskLimits::default(),
        }
    }
}

#[derive(Clone)]
struct AppState {
    gateway: Arc<Gateway>,
}

/// What the `/mcp` guard needs: the body limit, the session table and its cap.
#[derive(Clone)]
struct Guard {
    max_body: usize,
    max_sessions: usize,
    sessions: Arc<LocalSessionManager>,
    /// Held while an `initialize` creates a session, so concurrent ones cannot overshoot the cap.
    creating: Arc<tokio::sync::Mutex<()>>,
    /// Stateless `tools/call` requests answered without rmcp's per-request tasks (see `fast.rs`).
    fast: Option<Arc<FastPath>>,
}

/// The router (`/mcp`, `/health`, `/ready`, `/metrics`, the operator page) behind its front door.
fn front(gateway: Arc<Gateway>, opts: &HttpOptions, shutdown: CancellationToken) -> Front {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_origins(opts.allowed_origins.clone())
        .enforce_origin_validation()
        .with_allowed_hosts(opts.allowed_hosts.clone())
        .with_max_request_body_bytes(opts.max_body_bytes)
        // Stateless (2026-07-28) answers as plain JSON when the handler has nothing to stream.
        .with_json_response(true)
        .with_cancellation_token(shutdown.clone());
    let session_calls = Arc::new(SessionCalls::default());
    let server = McpServer::new(gateway.clone())
        .with_page_size(opts.page_size)
        .with_task_limits(opts.task_limits)
        .with_transport("http", None)
        .with_session_calls(session_calls.clone());
    // Tasks still running when the gateway stops are stopped with it (their guests through the cancel path).
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let (tasks, stop) = (server.tasks().clone(), shutdown.clone());
        rt.spawn(async move {
            stop.cancelled().await;
            tasks.shutdown();
        });
    }
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.keep_alive = Some(super::fast::session_keep_alive(opts.session_idle));
    let sessions = Arc::new(sessions);
    let guard = Guard {
        max_body: opts.max_body_bytes,
        max_sessions: opts.max_sessions,
        sessions: sessions.clone(),
        creating: Arc::default(),
        fast: FastPath::new(
            gateway.clone(),
            &opts.allowed_hosts,
            (sessions.clone(), opts.session_idle, opts.max_sessions),
            session_calls,
        )
        .map(Arc::new),
    };
    // Behind an `Arc`, called as a handler: the router clones what serves each request, the fast path's included,
    // and cloning rmcp's service copies its configuration (the allowed hosts and origins, a cancellation token),
    // about a tenth of a served call's allocations.
    let rmcp = Arc::new(StreamableHttpService::new(
        move || Ok(server.clone()),
        sessions,
        config,
    ));
    let auth = Auth {
        gateway: gateway.clone(),
        operator: opts.token.as_deref().map(Arc::from),
        oauth: opts.oauth.clone(),
    };
    let direct = guard.fast.is_some().then(|| {
        Arc::new(Direct {
            auth: auth.clone(),
            guard: guard.clone(),
        })
    });
    let mcp = Router::new()
        .fallback(move |request: Request| {
            let rmcp = rmcp.clone();
            async move { rmcp.handle(request).await.map(Body::new) }
        })
        .layer(middleware::from_fn_with_state(guard, guard_mcp));
    let issuer: Option<Arc<str>> = opts.oauth.as_ref().map(|o| Arc::from(o.issuer.as_str()));
    let metadata = move |request| resource_metadata(issuer.clone(), request);
    let state = AppState { gateway };
    let app = Router::new()
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn(session_delete_is_no_content))
        .layer(middleware::from_fn_with_state(auth, authenticate))
        // Liveness and the protected resource metadata stay open: a supervisor probes one, a client reads the
        // other to learn how to authenticate. Neither reveals anything.
        .route("/health", get(health))
        .route(METADATA_PATH, get(metadata.clone()))
        .route(&format!("{METADATA_PATH}/mcp"), get(metadata))
        .with_state(state.clone())
        // The operator page checks the token (or its session cookie) itself.
        .merge(super::ui::router(
            state.gateway,
            super::ui::UiOptions {
                token: opts.token.as_deref(),
                allowed_hosts: &opts.allowed_hosts,
                allowed_origins: &opts.allowed_origins,
            },
            shutdown,
        ));
    Front {
        app: hyper_util::service::TowerToHyperService::new(app),
        direct,
    }
}

/// What each connection serves: the router, with a door past it for the commonest request. A POST to `/mcp`
/// whose headers ask for the fast path (`fast.rs`) is authenticated, read and checked here, by the same functions
/// as the router's layers (`auth::who`, [`read_and_check`]), and answered without the router's three middleware
/// layers, its two route lookups and the nested router's rewritten URI. A request whose body then does not take the
/// fast path goes on to the router with its body and principal, marked as authenticated, so it is not
/// authenticated twice; everything else goes to the router as it came.
#[derive(Clone)]
struct Front {
    app: hyper_util::service::TowerToHyperService<Router>,
    /// `None` when the fast path is off (`PLUGHOST_HTTP_FAST_PATH=0`).
    direct: Option<Arc<Direct>>,
}

/// What the front door needs: the router's authentication and its `/mcp` guard (whose fast path is on).
struct Direct {
    auth: Auth,
    guard: Guard,
}

type Served = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
>;

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Front {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Served;

    fn call(&self, request: hyper::Request<hyper::body::Incoming>) -> Served {
        let request = request.map(Body::new);
        match &self.direct {
            Some(direct) if direct.takes(&request) => {
                let (direct, app) = (direct.clone(), self.app.clone());
                Box::pin(async move { Ok(direct.serve(request, app).await) })
            }
            _ => Box::pin(self.app.call(request)),
        }
    }
}

impl Direct {
    fn takes(&self, request: &Request) -> bool {
        request.method() == Method::POST
            && request.uri().path() == "/mcp"
            && is_json(request.headers())
            && self
                .guard
                .fast
                .as_ref()
                .is_some_and(|fast| fast.wants(request.headers()))
    }

    async fn serve(
        &self,
        mut request: Request,
        app: hyper_util::service::TowerToHyperService<Router>,
    ) -> Response {
        use hyper::service::Service;
        match who(&self.auth, request.headers()).await {
            Err(refused) => return refused,
            Ok(Some(principal)) => {
                request.extensions_mut().insert(principal);
            }
            Ok(None) => {}
        }
        match read_and_check(&self.guard, request, true).await {
            Read::Answered(response) | Read::Fast(response) => response,
            Read::Rest(mut parts, bytes) => {
                parts.extensions.insert(Authenticated);
                match app
                    .call(Request::from_parts(parts, Body::from(bytes)))
                    .await
                {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        }
    }
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    opts: HttpOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = front(gateway, &opts, shutdown.clone());
    // The accept loop runs as a task on tokio's workers, not in the task that awaits `serve` (the binary's
    // `block_on`, on the main thread, outside the worker pool). There, every connection cost two thread wake-ups:
    // the worker that saw the listener ready woke the main thread, which then woke a worker for the connection's
    // task. Accepted on a worker, the connection's task is spawned onto that worker's own queue.
    tokio::spawn(accept_loop(app, listener, shutdown))
        .await
        .map_err(std::io::Error::other)?
}

/// What `axum::serve` does, with each connection's task run through `RePoll` (see repoll.rs).
async fn accept_loop(
    app: Front,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Small JSON-RPC messages: don't let Nagle hold them back.
        let _ = tcp.set_nodelay(true);
        let service = app.clone();
        let stop = shutdown.clone();
        connections.spawn(RePoll::new(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop.cancelled() => {
                    // Finish the request under way, then close.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        }));
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// A failed `accept`: a connection that went away before it was taken is nothing; anything else (out of file
/// descriptors, say) is logged and the loop waits a second, as hyper and axum do.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!("accept error: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// In front of rmcp on `/mcp` POSTs with a JSON body: refuses what is not one JSON-RPC message with 400 and a
/// JSON-RPC error (rmcp answers those 415 in plain text), an oversized body with 413, and an `initialize` that
/// would open a session beyond the cap with 503; answers a `tools/call` itself (`fast.rs`), stateless or in a
/// session; tells the fast path when rmcp took a session's request.
async fn guard_mcp(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    // A request of a session that rmcp takes restarts its worker's idle timer: the fast path hears of it.
    let session = guard.fast.as_ref().and_then(|_| {
        request
            .headers()
            .get(super::session_calls::SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    let ends = request.method() == Method::DELETE;
    let response = guard_rmcp(&guard, request, next).await;
    if let (Some(fast), Some(session)) = (&guard.fast, session)
        && response.status().is_success()
        && response.extensions().get::<FastAnswered>().is_none()
    {
        if ends {
            fast.session_ended(&session);
        } else {
            fast.rmcp_took(&session);
        }
    }
    response
}

async fn guard_rmcp(guard: &Guard, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !is_json(request.headers()) {
        return next.run(request).await;
    }
    let (parts, bytes) = match read_and_check(guard, request, false).await {
        Read::Answered(response) => return response,
        Read::Fast(mut response) => {
            response.extensions_mut().insert(FastAnswered);
            return response;
        }
        Read::Rest(parts, bytes) => (parts, bytes),
    };
    let opens_session = !parts.headers.contains_key("mcp-session-id")
        && jsonrpc::method_of(&bytes).as_deref() == Some("initialize");
    let request = Request::from_parts(parts, Body::from(bytes.clone()));
    if !opens_session {
        return next.run(request).await;
    }
    let _creating = guard.creating.lock().await;
    let live = guard.sessions.sessions.read().await.len();
    if live >= guard.max_sessions {
        tracing::warn!(
            live,
            max = guard.max_sessions,
            "http: refused a new session: at the cap"
        );
        let refusal = Refusal::new(
            jsonrpc::SERVER_BUSY,
            format!(
                "too many sessions: the gateway holds at most {} live sessions (--max-sessions); \
                 end one with DELETE /mcp or retry later",
                guard.max_sessions
            ),
            jsonrpc::id_of(&bytes),
        );
        let mut r = rpc_error(StatusCode::SERVICE_UNAVAILABLE, &refusal);
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    }
    next.run(request).await
}

/// Marks an answer of the fast path, which rmcp did not see (for `guard_mcp`; the front door's own path needs no
/// mark, and makes none: an extension is a map and a box allocated per call).
#[derive(Clone, Copy)]
struct FastAnswered;

/// A JSON content type.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// A JSON POST to `/mcp`, answered ([`Read::Answered`], [`Read::Fast`]) or read for rmcp ([`Read::Rest`]).
enum Read {
    Answered(Response),
    /// Answered by the fast path (rmcp did not see it).
    Fast(Response),
    Rest(axum::http::request::Parts, axum::body::Bytes),
}

/// The body of a JSON POST to `/mcp` read (413 past the limit), a `tools/call` the fast path takes answered by it,
/// anything else checked as one JSON-RPC message (400) and handed back, body read, for rmcp.
///
/// `wanted`: the fast path already wants these headers (the front door asked).
async fn read_and_check(guard: &Guard, request: Request, wanted: bool) -> Read {
    let (parts, body) = request.into_parts();
    let bytes = match read_body(body, guard.max_body).await {
        Ok(b) => b,
        Err(e) => {
            let (status, message) = match e {
                BodyError::TooLarge => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "invalid request: the body is larger than {} bytes (--max-body)",
                        guard.max_body
                    ),
                ),
                BodyError::Unreadable(e) => (
                    StatusCode::BAD_REQUEST,
                    format!("invalid request: the body could not be read: {e}"),
                ),
            };
            return Read::Answered(rpc_error(
                status,
                &Refusal::new(jsonrpc::INVALID_REQUEST, message, None),
            ));
        }
    };
    // A body the fast path takes would pass the envelope check (see `jsonrpc::object_within_depth`): it is taken
    // first, and only what it leaves is checked. The answers are those of checking first.
    if let Some(fast) = &guard.fast
        && jsonrpc::object_within_depth(&bytes)
        && let Some(call) = fast.take(&parts.headers, &bytes, wanted)
        && call.session_ready(fast).await
    {
        let principal = parts.extensions.get::<Principal>().cloned();
        return Read::Fast(fast.clone().serve(principal, call).await);
    }
    if let Err(refusal) = jsonrpc::check(&bytes) {
        tracing::warn!(code = refusal.code, id = ?refusal.id, "http: refused a message: {}", refusal.message);
        return Read::Answered(rpc_error(StatusCode::BAD_REQUEST, &refusal));
    }
    Read::Rest(parts, bytes)
}

/// Why a request body was not read.
#[derive(Debug)]
enum BodyError {
    /// Longer than `--max-body`: 413.
    TooLarge,
    /// The connection broke (or the body was malformed) while it was read: 400.
    Unreadable(axum::Error),
}

/// The whole body, if it is at most `max` bytes and can be read. A body that comes in one frame (a small request, as
/// nearly all are) is that frame's bytes as they are, without the collector's buffer list and copy.
async fn read_body(mut body: Body, max: usize) -> Result<axum::body::Bytes, BodyError> {
    use http_body_util::BodyExt;
    let mut all = axum::body::Bytes::new();
    let mut more: Option<Vec<u8>> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(BodyError::Unreadable)?.into_data() else {
            continue; // trailers
        };
        let len = more.as_ref().map_or(all.len(), Vec::len);
        if len + data.len() > max {
            return Err(BodyError::TooLarge);
        }
        match &mut more {
            None if all.is_empty() => all = data,
            None => more = Some([&all[..], &data[..]].concat()),
            Some(buf) => buf.extend_from_slice(&data),
        }
    }
    Ok(more.map_or(all, Into::into))
}

fn rpc_error(status: StatusCode, refusal: &Refusal) -> Response {
    json_response(status, refusal.to_json())
}

/// rmcp answers a session DELETE with 202; clients (the official Python SDK among them) expect 200 or 204 and warn
/// otherwise. The session is closed either way, so say so plainly.
async fn session_delete_is_no_content(request: Request, next: Next) -> Response {
    let is_delete = request.method() == Method::DELETE;
    let response = next.run(request).await;
    if is_delete && response.status() == StatusCode::ACCEPTED {
        let (mut parts, _) = response.into_parts();
        parts.status = StatusCode::NO_CONTENT;
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::CONTENT_TYPE);
        return Response::from_parts(parts, Body::empty());
    }
    response
}

async fn health(State(state): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        serde_json::json!({ "status": "up", "uptime_seconds": state.gateway.uptime().as_secs() }),
    )
}

async fn ready(State(state): State<AppState>) -> Response {
    let index = state.gateway.index();
    let registry = state.gateway.catalog().registry().list();
    let (status, body) = match registry {
        Ok(records) => (
            StatusCode::OK,
            serde_json::json!({
                "ready": true,
                "plugins_installed": records.len(),
                "plugins_loaded": records.len().saturating_sub(index.problems.len()),
                "tools": index.tools.len(),
                "not_loaded": index.problems.iter().map(|p| serde_json::json!({"id": p.id, "reason": p.reason})).collect::<Vec<_>>(),
            }),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({ "ready": false, "reason": format!("registry: {e}") }),
        ),
    };
    json_response(status, body)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let index = state.gateway.index();
    let plugins: std::collections::BTreeSet<&str> =
        index.tools.values().map(|t| t.plugin.as_str()).collect();
    let text = state.gateway.metrics.prometheus(
        state.gateway.catalog().host(),
        plugins.len(),
        index.tools.len(),
    );
    let mut r = Response::new(Body::from(text));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(parts: &[&'static str]) -> Body {
        let frames: Vec<Result<&'static str, std::io::Error>> =
            parts.iter().map(|p| Ok(*p)).collect();
        Body::from_stream(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn a_body_is_read_whole_in_one_frame_or_many_up_to_the_limit() {
        let read = |body, max| async move { read_body(body, max).await.ok() };
        let one = read(Body::from("{\"a\":1}"), 7).await;
        assert_eq!(one.as_deref(), Some(&b"{\"a\":1}"[..]));
        assert!(matches!(
            read_body(Body::from("{\"a\":1}"), 6).await,
            Err(BodyError::TooLarge)
        ));
        assert_eq!(read(Body::empty(), 0).await.as_deref(), Some(&b""[..]));
        let many = read(chunked(&["ab", "", "cd", "e"]), 5).await;
        assert_eq!(many.as_deref(), Some(&b"abcde"[..]));
        assert!(matches!(
            read_body(chunked(&["ab", "cd", "e"]), 4).await,
            Err(BodyError::TooLarge)
        ));
        let failing: Vec<Result<&'static str, std::io::Error>> =
            vec![Ok("ab"), Err(std::io::Error::other("reset"))];
        let failing = Body::from_stream(futures_util::stream::iter(failing));
        assert!(matches!(
            read_body(failing, 100).await,
            Err(BodyError::Unreadable(_))
        ));
    }
}
