//! The operator page's gate: a loopback (or allowed) `Host` and `Origin`, then the bearer token or a valid session
//! cookie; and the security headers every `/ui` response carries.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::session;
use super::state::Ui;

/// No inline script or style, nothing from another origin, no framing, forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Refuses a foreign `Host` (DNS rebinding) or `Origin`, then adds the security headers.
pub(super) async fn same_origin(State(ui): State<Ui>, request: Request, next: Next) -> Response {
    if let Some(why) = foreign(&ui, request.headers()) {
        tracing::warn!("operator page: refused a request: {why}");
        let mut r = (StatusCode::FORBIDDEN, format!("forbidden: {why}\n")).into_response();
        secure(r.headers_mut());
        return r;
    }
    let mut r = next.run(request).await;
    secure(r.headers_mut());
    r
}

/// Lets a request through with the operator's bearer token or a valid session cookie (or when the gateway asks
/// for no token at all);
/// anything else gets 401 and the login form.
pub(super) async fn signed_in(State(ui): State<Ui>, request: Request, next: Next) -> Response {
    if admitted(&ui, request.headers()) {
        return next.run(request).await;
    }
    session::refused(None)
}

fn admitted(ui: &Ui, headers: &HeaderMap) -> bool {
    let Some(token) = &ui.token else {
        // No operator token: open only while no client token exists either (as `/mcp` is); once one does, the
        // page needs `--token-file` (a client token never opens it).
        return matches!(ui.gateway.catalog().registry().any_token(), Ok(false));
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer
        .is_some_and(|b| crate::gateway::token::constant_time_eq(b.as_bytes(), token.as_bytes()))
    {
        return true;
    }
    session::cookie_of(headers)
        .is_some_and(|c| session::valid(token, c, plughost_registry::units::now_secs()))
}

/// Why the `Host` or `Origin` of a request is not one this gateway serves, if it is not.
fn foreign(ui: &Ui, headers: &HeaderMap) -> Option<String> {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let name = host_name(host);
    if !ui
        .allowed_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
    {
        return Some(format!("host `{host}` is not allowed (--allow-host)"));
    }
    let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or("?");
    (!ui.allowed_origins.iter().any(|a| origin_matches(a, origin)))
        .then(|| format!("origin `{origin}` is not allowed (--allow-origin)"))
}

/// `127.0.0.1:8787` → `127.0.0.1`; `[::1]:8787` → `::1`; `localhost` → `localhost`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

/// `allowed` is `scheme://host:port`, or `scheme://host:*` for any port.
fn origin_matches(allowed: &str, origin: &str) -> bool {
    match allowed.strip_suffix(":*") {
        Some(prefix) => {
            origin == prefix
                || origin
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .is_some_and(|port| {
                        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                    })
        }
        None => origin.eq_ignore_ascii_case(allowed),
    }
}

fn secure(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: with it Chrome sends `Origin: null` on the page's own form posts.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::{host_name, origin_matches};

    #[test]
    fn hosts_and_origins() {
        assert_eq!(host_name("127.0.0.1:8787"), "127.0.0.1");
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("localhost"), "localhost");
        assert!(origin_matches(
            "http://127.0.0.1:*",
            "http://127.0.0.1:8787"
        ));
        assert!(!origin_matches(
            "http://127.0.0.1:*",
            "http://127.0.0.1.evil:80"
        ));
        assert!(!origin_matches("http://127.0.0.1:*", "http://127.0.0.1:"));
        assert!(origin_matches(
            "https://a.example:443",
            "https://a.example:443"
        ));
        assert!(!origin_matches(
            "https://a.example:443",
            "https://b.example:443"
        ));
    }
}
