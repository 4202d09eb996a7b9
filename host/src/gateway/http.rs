//! Streamable HTTP: the MCP endpoint at `/mcp` (rmcp's tower service) with Origin and Host validation on, an
//! optional bearer token, a request body limit, plus `/health`, `/ready` and `/metrics` (Prometheus text).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use super::Gateway;
use super::mcp::McpServer;

/// Default request body limit for `/mcp` (tool arguments are JSON; 4 MiB is generous).
pub const DEFAULT_MAX_BODY: usize = 4 << 20;

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
        }
    }
}

#[derive(Clone)]
struct AppState {
    gateway: Arc<Gateway>,
    token: Option<Arc<str>>,
}

/// The router: `/mcp`, `/health`, `/ready`, `/metrics`.
pub fn router(gateway: Arc<Gateway>, opts: &HttpOptions, shutdown: CancellationToken) -> Router {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_origins(opts.allowed_origins.clone())
        .enforce_origin_validation()
        .with_allowed_hosts(opts.allowed_hosts.clone())
        .with_max_request_body_bytes(opts.max_body_bytes)
        // Stateless (2026-07-28) answers as plain JSON when the handler has nothing to stream.
        .with_json_response(true)
        .with_cancellation_token(shutdown);
    let server = McpServer::new(gateway.clone())
        .with_page_size(opts.page_size)
        .with_transport("http", opts.token.as_ref().map(|_| "bearer-token"));
    let mcp = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let state = AppState {
        gateway,
        token: opts.token.as_deref().map(Arc::from),
    };
    Router::new()
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn(session_delete_is_no_content))
        .layer(middleware::from_fn_with_state(state.clone(), bearer))
        // Liveness stays open so a supervisor can probe it without the token; it reveals nothing.
        .route("/health", get(health))
        .with_state(state)
}

/// Serves until `shutdown` is cancelled.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    opts: HttpOptions,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = router(gateway, &opts, shutdown.clone());
    // Small JSON-RPC messages: don't let Nagle hold them back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn bearer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(expected) = &state.token else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(p) if constant_time_eq(p.as_bytes(), expected.as_bytes()) => next.run(request).await,
        _ => {
            let mut r = (
                StatusCode::UNAUTHORIZED,
                "a bearer token is required: Authorization: Bearer <token>\n",
            )
                .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"plughost\""),
            );
            r
        }
    }
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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
        state.gateway.catalog().host().stats(),
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
