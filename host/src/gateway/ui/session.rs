//! Browser sign-in: the operator pastes the gateway's bearer token once; the page answers with an HttpOnly,
//! SameSite=Strict cookie that carries its expiry and a keyed blake3 MAC of it (keyed by the token). Nothing is
//! stored server-side, so sessions cannot pile up; changing the token ends them all.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::html;
use super::state::Ui;

pub const COOKIE: &str = "plughost_ui";
/// How long a browser session lasts.
pub const SESSION_SECS: i64 = 12 * 3600;

#[derive(serde::Deserialize)]
pub(super) struct Login {
    token: String,
}

/// The value of our cookie, if the request carries one.
pub(super) fn cookie_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn mac(token: &str, expires: i64) -> String {
    let key = blake3::derive_key("plughost operator page session v1", token.as_bytes());
    blake3::keyed_hash(&key, expires.to_string().as_bytes())
        .to_hex()
        .to_string()
}

/// A cookie value for `token` that expires at `expires` (Unix seconds).
pub(super) fn issue(token: &str, expires: i64) -> String {
    format!("{expires}.{}", mac(token, expires))
}

/// Whether `value` was issued for `token` and has not expired at `now`.
pub(super) fn valid(token: &str, value: &str, now: i64) -> bool {
    let Some((exp, tag)) = value.split_once('.') else {
        return false;
    };
    let Ok(exp) = exp.parse::<i64>() else {
        return false;
    };
    exp > now
        && exp <= now + SESSION_SECS
        && crate::gateway::token::constant_time_eq(tag.as_bytes(), mac(token, exp).as_bytes())
}

/// 401 with the sign-in form (and why, after a failed attempt).
pub(super) fn refused(why: Option<&str>) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, html::Html(form_page(why))).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"plughost\""),
    );
    r
}

fn form_page(why: Option<&str>) -> String {
    let note = why
        .map(|w| format!("<p class=\"error\" role=\"alert\">{}</p>", html::esc(w)))
        .unwrap_or_default();
    html::frame(
        "Sign in",
        None,
        &format!(
            "<h1>Sign in</h1>{note}\
             <p>This gateway needs its bearer token (the file given to <code>--token-file</code>, or \
             <code>$PLUGHOST_TOKEN</code>). It is sent once; the browser then keeps a session cookie for 12 hours.</p>\
             <form method=\"post\" action=\"/ui/login\" class=\"login\">\
             <label for=\"token\">Token</label>\
             <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
             <button type=\"submit\">Sign in</button></form>"
        ),
    )
}

pub(super) async fn form(State(ui): State<Ui>) -> Response {
    if ui.token.is_none() {
        return Redirect::to("/ui/plugins").into_response();
    }
    html::Html(form_page(None)).into_response()
}

pub(super) async fn login(State(ui): State<Ui>, Form(login): Form<Login>) -> Response {
    let Some(token) = &ui.token else {
        return Redirect::to("/ui/plugins").into_response();
    };
    if !crate::gateway::token::constant_time_eq(login.token.trim().as_bytes(), token.as_bytes()) {
        tracing::warn!("operator page: a sign-in with a wrong token");
        return refused(Some("That is not this gateway's token."));
    }
    let expires = plughost_registry::units::now_secs() + SESSION_SECS;
    let cookie = format!(
        "{COOKIE}={}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}",
        issue(token, expires)
    );
    let mut r = Redirect::to("/ui/plugins").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

pub(super) async fn logout() -> Response {
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("plughost_ui=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::{SESSION_SECS, issue, valid};

    #[test]
    fn cookies_are_bound_to_the_token_and_expire() {
        let c = issue("t0k", 1_000 + SESSION_SECS);
        assert!(valid("t0k", &c, 1_000));
        assert!(!valid("other", &c, 1_000), "another token's cookie");
        assert!(!valid("t0k", &c, 1_000 + SESSION_SECS), "expired");
        let (_, tag) = c.split_once('.').expect("dot");
        let forged = format!("{}.{tag}", 1_000 + SESSION_SECS + 5);
        assert!(
            !valid("t0k", &forged, 1_000),
            "a longer expiry under the same tag"
        );
        assert!(!valid("t0k", "garbage", 1_000));
    }
}
