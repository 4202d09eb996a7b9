//! Who is calling over HTTP. The operator's token (`--token-file`) is all-access; scoped client tokens (`plughost
//! tokens create`) are checked against the registry by their hash and carry what they may see and call. The
//! principal rides with the request (an extension rmcp hands to the handler) into the ledger and the scope checks.
//! When no operator token is configured and no client token was ever created, requests pass as before. A refused request gets 401
//! with a `WWW-Authenticate` header naming the protected resource metadata (RFC 9728), which is served at
//! `/.well-known/oauth-protected-resource[/mcp]`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use plughost_registry::{TOKEN_PREFIX, TokenScope};

use super::Gateway;
use super::oauth::{OAuth, Refusal};
pub use super::principal::Principal;
use super::token::constant_time_eq;

/// The principal of the operator's all-access token, as the ledger records it.
pub const OPERATOR: &str = "bearer-token";
/// Where the protected resource metadata is served.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// What authentication needs: the operator's token and the registry of client tokens.
#[derive(Clone)]
pub(crate) struct Auth {
    pub gateway: Arc<Gateway>,
    pub operator: Option<Arc<str>>,
    /// The OAuth issuer whose JWT access tokens are accepted, if one is configured.
    pub oauth: Option<Arc<OAuth>>,
}

/// A request the front door (`http.rs`) has already authenticated: the middleware lets it through as it stands.
/// Only this process can put it in a request's extensions.
#[derive(Clone, Copy)]
pub(crate) struct Authenticated;

/// Authenticates every request but `/health` and the metadata; puts the [`Principal`] in the request's extensions.
pub(crate) async fn authenticate(
    State(auth): State<Auth>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.extensions().get::<Authenticated>().is_some() {
        return next.run(request).await;
    }
    match who(&auth, request.headers()).await {
        Err(refused) => refused,
        Ok(None) => next.run(request).await,
        Ok(Some(principal)) => {
            if principal.mcp_only && !request.uri().path().starts_with("/mcp") {
                return (
                    StatusCode::FORBIDDEN,
                    "this token is scoped to some tools: it may use /mcp only\n",
                )
                    .into_response();
            }
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
    }
}

/// Who `request` authenticates as: a principal, `None` when nothing asks for a token (no operator token, no
/// issuer, no client token ever created), or the refusal to answer with (401, 403 or 503).
pub(crate) async fn who(auth: &Auth, headers: &HeaderMap) -> Result<Option<Principal>, Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let registry = auth.gateway.catalog().registry();
    let principal = match presented.as_deref() {
        Some(p)
            if auth
                .operator
                .as_deref()
                .is_some_and(|o| constant_time_eq(p.as_bytes(), o.as_bytes())) =>
        {
            Some(Principal {
                name: Arc::from(OPERATOR),
                scope: None,
                mcp_only: false,
            })
        }
        Some(p) if p.starts_with(TOKEN_PREFIX) => match registry.check_token(p) {
            Ok(Some(t)) => {
                let scope = (t.scope != TokenScope::default()).then_some(t.scope);
                Some(Principal {
                    name: Arc::from(t.name.as_str()),
                    mcp_only: scope.is_some(),
                    scope,
                })
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!("http: cannot check a client token: {e}");
                return Err(token_store_unavailable());
            }
        },
        Some(p) if auth.oauth.is_some() && p.bytes().filter(|b| *b == b'.').count() == 2 => {
            let oauth = auth.oauth.as_deref().expect("checked in the guard");
            let resource = format!("{}/mcp", base_url(headers));
            match oauth.check(p, &resource).await {
                Ok(principal) => Some(principal),
                Err(Refusal::NoScope) => return Err(insufficient_scope()),
                Err(why) => return Err(unauthorized(headers, Some(&why.to_string()))),
            }
        }
        _ => None,
    };
    if principal.is_some() {
        return Ok(principal);
    }
    // Open only when nothing asks for a token: no operator token, no issuer, no client token ever created. A
    // token store that cannot be asked (a cluster's PostgreSQL down) opens nothing: 503, try again.
    let open = auth.operator.is_none()
        && auth.oauth.is_none()
        && match registry.any_token() {
            Ok(any) => !any,
            Err(e) => {
                tracing::error!("http: cannot ask whether client tokens exist: {e}");
                return Err(token_store_unavailable());
            }
        };
    if open {
        return Ok(None);
    }
    let why = presented.is_some().then_some("the token is not known here");
    Err(unauthorized(headers, why))
}

/// 503 when the client tokens cannot be read (the shared store is down): nothing is let through, and the client
/// may retry.
fn token_store_unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable — the token store cannot be read; try again\n",
    )
        .into_response()
}

/// 401 with `WWW-Authenticate` naming the metadata and, for a presented token, why it was refused (RFC 6750 §3).
fn unauthorized(headers: &HeaderMap, why: Option<&str>) -> Response {
    let metadata = format!("{}{METADATA_PATH}/mcp", base_url(headers));
    let body = match why {
        Some(w) => format!("{w}\n"),
        None => "a bearer token is required: Authorization: Bearer <token>\n".to_string(),
    };
    let mut r = (StatusCode::UNAUTHORIZED, body).into_response();
    let mut value = format!("Bearer realm=\"plughost\", resource_metadata=\"{metadata}\"");
    if let Some(w) = why {
        // A quoted-string: no quotes or backslashes, printable ASCII only, bounded.
        let w: String = w
            .chars()
            .filter(|c| (c.is_ascii_graphic() && *c != '"' && *c != '\\') || *c == ' ')
            .take(200)
            .collect();
        value.push_str(&format!(
            ", error=\"invalid_token\", error_description=\"{w}\""
        ));
    }
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// 403 for a valid token that names none of the gateway's scopes.
fn insufficient_scope() -> Response {
    let mut r = (StatusCode::FORBIDDEN, format!("{}\n", Refusal::NoScope)).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(
            "Bearer realm=\"plughost\", error=\"insufficient_scope\", scope=\"tools\"",
        ),
    );
    r
}

/// `http://<Host header>`: the gateway serves plain HTTP (TLS, if any, is a proxy's in front of it). The Host
/// header has been checked against the allowed hosts by then for `/mcp`; elsewhere only printable ASCII is used.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// RFC 9728 protected resource metadata for `/mcp`: which resource this is and how to present a token. With no
/// issuer configured no authorization server is named (tokens come from the operator's `plughost tokens create`),
/// so a client knows not to start an OAuth flow; with one, it is named with the scopes the gateway understands.
pub async fn resource_metadata(issuer: Option<Arc<str>>, request: Request) -> Response {
    let base = base_url(request.headers());
    let servers: Vec<&str> = issuer.as_deref().into_iter().collect();
    let body = serde_json::json!({
        "resource": format!("{base}/mcp"),
        "authorization_servers": servers,
        "scopes_supported": ["tools", "plugin:<id>", "tool:<plugin__tool>"],
        "bearer_methods_supported": ["header"],
        "resource_name": "plughost MCP gateway",
        "resource_documentation": "https://github.com/plughost/plughost#connecting-mcp-clients",
    });
    let mut r = Response::new(axum::body::Body::from(body.to_string()));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    r
}
