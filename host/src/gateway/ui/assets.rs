//! The page's only static files, embedded in the binary: no CDN, no external fonts, nothing fetched at run time.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const STYLE: &str = include_str!("assets/style.css");
const APP: &str = include_str!("assets/app.js");

/// Every embedded asset: (name, content type, bytes).
pub const ASSETS: [(&str, &str, &str); 2] = [
    ("style.css", "text/css; charset=utf-8", STYLE),
    ("app.js", "text/javascript; charset=utf-8", APP),
];

pub(super) async fn serve(Path(name): Path<String>) -> Response {
    let Some((_, kind, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let mut r = (*body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}
