//! `http`: outgoing requests through reqwest, only to the origins the operator granted.
//!
//! Every request is checked before it leaves: the URL's origin (scheme, host, port) must match a granted
//! [`OriginPattern`]; the host's addresses, after DNS resolution, must be public unless a grant names that host
//! exactly (so `http:http://127.0.0.1:8080` reaches a loopback server, `http:https://*.example.com` never reaches
//! one). The check runs inside the client's resolver, so the connection goes to exactly the addresses that were
//! checked (no DNS rebinding between check and connect). Redirects are followed by hand, each hop re-checked, up to
//! a hop limit. Bodies, time and the number of requests per call are bounded, and secrets configured for the plugin
//! can be inserted into headers without the plugin ever holding them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue as ReqHeaderValue};
use reqwest::{Method as ReqMethod, StatusCode, Url};
use wasmtime::component::{HasData, Linker};

use crate::bindings::http::{self, Header, HeaderValue, HttpError, Method, Request, Response};
use crate::caps::config::ConfigCtx;
use crate::caps::view::CallCtx;
use crate::grants::{OriginPattern, Scheme};

mod connect;
use connect::NonPublicAddress;
pub use connect::is_public;

/// Per-call HTTP limits (the operator's, for every plugin of a host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Requests one tool call may send (`send` calls; redirect hops are bounded by `max_redirects`).
    pub max_requests_per_call: u32,
    /// Largest request body (bytes).
    pub max_request_body_bytes: u64,
    /// Largest response body (bytes); a longer one is cut off and reported as `too-large`.
    pub max_response_body_bytes: u64,
    /// Longest a request may take, redirects and body included. The call's own deadline also applies.
    pub timeout: Duration,
    /// Redirect hops followed per request.
    pub max_redirects: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_requests_per_call: 64,
            max_request_body_bytes: 4 << 20,
            max_response_body_bytes: 8 << 20,
            timeout: Duration::from_secs(30),
            max_redirects: 5,
        }
    }
}

/// One plugin's HTTP context: its granted origins and a client whose resolver enforces them. The client is built
/// on the plugin's first request, not at load, so a start or a reload of the gateway does no TLS work (see
/// `connect::shared_tls`).
#[derive(Clone)]
pub struct HttpCtx {
    allow: Arc<[OriginPattern]>,
    resolve: Arc<BTreeMap<String, Vec<IpAddr>>>,
    client: Arc<OnceLock<Result<reqwest::Client, String>>>,
    limits: HttpLimits,
}

impl fmt::Debug for HttpCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCtx")
            .field("allow", &self.allow)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl HttpCtx {
    /// A context for `allow`. `resolve` pins host names to addresses (like curl's `--resolve`); those addresses go
    /// through the same public/private check as DNS answers.
    pub fn new(
        allow: Vec<OriginPattern>,
        limits: HttpLimits,
        resolve: Arc<BTreeMap<String, Vec<IpAddr>>>,
    ) -> Self {
        HttpCtx {
            allow: allow.into(),
            resolve,
            client: Arc::default(),
            limits,
        }
    }

    /// The plugin's client, built on first use; a client that cannot be built fails each request with
    /// `connection`, saying why.
    fn client(&self) -> Result<&reqwest::Client, HttpError> {
        self.client
            .get_or_init(|| {
                connect::client(
                    self.allow.clone(),
                    self.resolve.clone(),
                    self.limits.timeout,
                )
            })
            .as_ref()
            .map_err(|e| HttpError::Connection(format!("the HTTP client could not be built: {e}")))
    }

    pub fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    /// The origin of `url` if it is granted, else `Err(origin)`.
    fn check_origin(&self, url: &Url) -> Result<(), String> {
        let origin = origin_of(url);
        let Some(scheme) = scheme_of(url) else {
            return Err(origin);
        };
        let host = bare_host(url);
        let port = url.port_or_known_default().unwrap_or(0);
        if !self.allow.iter().any(|o| o.allows(scheme, &host, port)) {
            // The likeliest surprise: `http:127.0.0.1:8900` (no scheme) grants https only.
            if scheme == Scheme::Http
                && self
                    .allow
                    .iter()
                    .any(|o| o.allows(Scheme::Https, &host, port))
            {
                return Err(format!(
                    "{origin} (the grant for this host and port has no scheme, which means https only; grant \
                     `http:{origin}` to allow plain http)"
                ));
            }
            return Err(origin);
        }
        // An IP literal is not resolved: check it here. Only a grant that names it exactly may reach a private one.
        if let Ok(ip) = host.parse::<IpAddr>()
            && !is_public(ip)
            && !self.allow.iter().any(|o| o.names_host_exactly(&host))
        {
            return Err(origin);
        }
        Ok(())
    }

    /// Sends `req`, following granted redirects. Not bounded in time: the caller wraps it in a timeout.
    async fn execute(&self, config: &ConfigCtx, req: Request) -> Result<Response, HttpError> {
        let mut url = Url::parse(&req.url)
            .map_err(|e| HttpError::InvalidRequest(format!("bad URL `{}`: {e}", req.url)))?;
        if scheme_of(&url).is_none() {
            return Err(HttpError::InvalidRequest(format!(
                "only http and https URLs are allowed, got `{}:`",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(HttpError::InvalidRequest(
                "user info in URLs is not allowed; send credentials in a header".into(),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(HttpError::InvalidRequest(format!(
                "URL `{}` has no host",
                req.url
            )));
        }
        self.check_origin(&url).map_err(HttpError::Denied)?;

        let mut body = req.body;
        if let Some(b) = &body
            && b.len() as u64 > self.limits.max_request_body_bytes
        {
            return Err(HttpError::TooLarge(self.limits.max_request_body_bytes));
        }
        let (mut headers, mut secret_names) = build_headers(config, &req.headers)?;
        let mut method = method_of(req.method);

        let client = self.client()?;
        let mut hops = 0u32;
        loop {
            let mut rb = client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            let resp = rb.send().await.map_err(|e| send_error(&e, &url, hops))?;
            let status = resp.status();
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .map(str::to_string);
            if let (true, Some(location)) = (is_redirect(status), location) {
                hops += 1;
                if hops > self.limits.max_redirects {
                    return Err(HttpError::TooManyRedirects(self.limits.max_redirects));
                }
                let next = url.join(&location).map_err(|e| {
                    HttpError::Connection(format!("redirect to a bad location `{location}`: {e}"))
                })?;
                if scheme_of(&next).is_none() {
                    return Err(HttpError::RedirectDenied(origin_of(&next)));
                }
                self.check_origin(&next)
                    .map_err(HttpError::RedirectDenied)?;
                // 303, and 301/302 after a POST, continue as a GET without a body (what browsers and curl do).
                if status == StatusCode::SEE_OTHER
                    || (matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                        && method == ReqMethod::POST)
                {
                    if method != ReqMethod::HEAD {
                        method = ReqMethod::GET;
                    }
                    body = None;
                    headers.remove(reqwest::header::CONTENT_TYPE);
                }
                // Credentials are for the origin they were given for.
                if origin_of(&next) != origin_of(&url) {
                    for name in secret_names.drain(..) {
                        headers.remove(&name);
                    }
                    headers.remove(reqwest::header::AUTHORIZATION);
                    headers.remove(reqwest::header::COOKIE);
                }
                url = next;
                continue;
            }
            return self.read_response(resp).await;
        }
    }

    async fn read_response(&self, mut resp: reqwest::Response) -> Result<Response, HttpError> {
        let max = self.limits.max_response_body_bytes;
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(HttpError::TooLarge(max));
        }
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            if e.is_timeout() {
                HttpError::Timeout
            } else {
                HttpError::Connection(format!("reading the response body: {}", chain(&e)))
            }
        })? {
            if (body.len() + chunk.len()) as u64 > max {
                return Err(HttpError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// Headers the plugin may not set: they belong to the connection, not the request.
const RESERVED_HEADERS: [&str; 6] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
];

fn build_headers(
    config: &ConfigCtx,
    list: &[Header],
) -> Result<(HeaderMap, Vec<HeaderName>), HttpError> {
    let mut map = HeaderMap::new();
    let mut secret_names = Vec::new();
    for h in list {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("bad header name `{}`", h.name)))?;
        if RESERVED_HEADERS.contains(&name.as_str()) {
            return Err(HttpError::InvalidRequest(format!(
                "the `{name}` header is set by the host"
            )));
        }
        let value = match &h.value {
            HeaderValue::Text(t) => ReqHeaderValue::from_str(t)
                .map_err(|_| HttpError::InvalidRequest(format!("bad value for header `{name}`")))?,
            HeaderValue::Secret(s) => {
                let secret = config.secret(&s.key).ok_or_else(|| {
                    HttpError::InvalidRequest(format!(
                        "no secret named `{}` is configured for this plugin (plughost config <plugin> set {} --secret)",
                        s.key, s.key
                    ))
                })?;
                let mut v =
                    ReqHeaderValue::from_str(&format!("{}{secret}", s.prefix)).map_err(|_| {
                        HttpError::InvalidRequest(format!(
                            "secret `{}` cannot be sent in a header (control characters)",
                            s.key
                        ))
                    })?;
                v.set_sensitive(true);
                secret_names.push(name.clone());
                v
            }
        };
        map.append(name, value);
    }
    Ok((map, secret_names))
}

fn method_of(m: Method) -> ReqMethod {
    match m {
        Method::Get => ReqMethod::GET,
        Method::Head => ReqMethod::HEAD,
        Method::Post => ReqMethod::POST,
        Method::Put => ReqMethod::PUT,
        Method::Patch => ReqMethod::PATCH,
        Method::Delete => ReqMethod::DELETE,
        Method::Options => ReqMethod::OPTIONS,
    }
}

fn is_redirect(s: StatusCode) -> bool {
    matches!(s.as_u16(), 301 | 302 | 303 | 307 | 308)
}

fn scheme_of(url: &Url) -> Option<Scheme> {
    match url.scheme() {
        "http" => Some(Scheme::Http),
        "https" => Some(Scheme::Https),
        _ => None,
    }
}

/// The host without IPv6 brackets, lower-case (the `url` crate normalises case).
fn bare_host(url: &Url) -> String {
    let h = url.host_str().unwrap_or_default();
    h.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h)
        .to_string()
}

/// `scheme://host[:port]`, the port shown only when it is not the scheme's default.
fn origin_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{}://{host}:{p}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// An error and its causes, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn send_error(e: &reqwest::Error, url: &Url, hops: u32) -> HttpError {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<NonPublicAddress>().is_some() {
            return if hops == 0 {
                HttpError::Denied(origin_of(url))
            } else {
                HttpError::RedirectDenied(origin_of(url))
            };
        }
        cur = c.source();
    }
    if e.is_timeout() {
        return HttpError::Timeout;
    }
    let what = if e.is_connect() { "connect" } else { "request" };
    // reqwest's own message repeats the URL; the causes say what went wrong.
    let mut causes = Vec::new();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        let m = c.to_string();
        if !causes.contains(&m) {
            causes.push(m);
        }
        cur = c.source();
    }
    let detail = if causes.is_empty() {
        e.to_string()
    } else {
        causes.join(": ")
    };
    HttpError::Connection(format!("{what} {}: {detail}", origin_of(url)))
}

fn redact_error(e: HttpError, r: &crate::caps::config::Redactor) -> HttpError {
    let f = |s: String| r.redact(&s).into_owned();
    match e {
        HttpError::Denied(s) => HttpError::Denied(f(s)),
        HttpError::InvalidRequest(s) => HttpError::InvalidRequest(f(s)),
        HttpError::RedirectDenied(s) => HttpError::RedirectDenied(f(s)),
        HttpError::Connection(s) => HttpError::Connection(f(s)),
        other => other,
    }
}

fn error_kind(e: &HttpError) -> &'static str {
    match e {
        HttpError::Denied(_) => "denied",
        HttpError::InvalidRequest(_) => "invalid-request",
        HttpError::RedirectDenied(_) => "redirect-denied",
        HttpError::TooManyRedirects(_) => "too-many-redirects",
        HttpError::TooLarge(_) => "too-large",
        HttpError::RequestLimit(_) => "request-limit",
        HttpError::Timeout => "timeout",
        HttpError::Connection(_) => "connection",
    }
}

/// What the `http` interface sees of the call it serves; its store hands one out through [`HttpView`].
#[derive(Debug)]
pub struct HttpHost<'a> {
    pub call: CallCtx<'a>,
    pub http: Option<&'a HttpCtx>,
    pub config: &'a ConfigCtx,
    /// Where a refused origin is recorded (the audit trail); `None` outside a catalog.
    pub denials: Option<&'a crate::caps::denials::DenialAudit>,
}

impl HttpHost<'_> {
    /// Puts a refusal (an origin outside the grant, or no grant at all) on the audit trail: the origin only,
    /// already redacted, never the URL's path, query or headers.
    async fn audit(&self, result: &Result<Response, HttpError>) {
        let what = match result {
            Err(HttpError::Denied(origin)) => format!("{origin} is not granted"),
            Err(HttpError::RedirectDenied(origin)) => {
                format!("a redirect to {origin} is not granted")
            }
            _ => return,
        };
        if let Some(audit) = self.denials {
            audit
                .denied(self.call.plugin, crate::grants::Capability::Http, &what)
                .await;
        }
    }
}

/// How `http` reaches the call it serves (the wasmtime-wasi `WasiView` shape): implemented by the runtime's
/// per-call store data, so this module never sees the store type.
pub trait HttpView: Send {
    fn http_host(&mut self) -> HttpHost<'_>;
}

impl http::Host for HttpHost<'_> {
    async fn send(&mut self, req: Request) -> wasmtime::Result<Result<Response, HttpError>> {
        let data = &mut self.call;
        data.count(crate::grants::Capability::Http);
        let sent = data.host_calls.get(crate::grants::Capability::Http);
        let config = self.config;
        let Some(ctx) = self.http else {
            let refused = Err(HttpError::Denied(
                "http is not granted to this plugin".into(),
            ));
            self.audit(&refused).await;
            return Ok(refused);
        };
        if sent > ctx.limits.max_requests_per_call {
            return Ok(Err(HttpError::RequestLimit(
                ctx.limits.max_requests_per_call,
            )));
        }
        let remaining = data.deadline.saturating_duration_since(Instant::now());
        let mut timeout = ctx.limits.timeout.min(remaining);
        if let Some(ms) = req.timeout_ms {
            timeout = timeout.min(Duration::from_millis(ms.into()));
        }
        let method = method_of(req.method);
        let url_for_log = config.redactor.redact(&req.url).into_owned();
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, ctx.execute(config, req))
            .await
            .unwrap_or(Err(HttpError::Timeout))
            .map_err(|e| redact_error(e, &config.redactor));
        let plugin: &str = data.plugin;
        let ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(r) => tracing::debug!(target: "http", plugin, call = data.call_id, %method,
                url = %url_for_log, status = r.status, bytes = r.body.len(), ms, "http request"),
            Err(e) => tracing::debug!(target: "http", plugin, call = data.call_id, %method,
                url = %url_for_log, error = error_kind(e), ms, "http request failed"),
        }
        self.audit(&result).await;
        Ok(result)
    }
}

struct HttpCap;
impl HasData for HttpCap {
    type Data<'a> = HttpHost<'a>;
}

/// Links `plughost:plugin/http`.
pub fn add_to_linker<T: HttpView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    http::add_to_linker::<T, HttpCap>(linker, |s| s.http_host())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(allow: &[&str]) -> HttpCtx {
        let allow = allow
            .iter()
            .map(|a| a.parse().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        HttpCtx::new(allow, HttpLimits::default(), Arc::default())
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn origins_are_checked_with_default_ports_and_literal_ips() {
        let c = ctx(&[
            "https://api.cloudflare.com",
            "http://127.0.0.1:8080",
            "https://*.example.com",
            "http://[::1]:9000",
        ]);
        assert!(c.check_origin(&url("https://api.cloudflare.com/x")).is_ok());
        assert!(
            c.check_origin(&url("https://api.cloudflare.com:443/x"))
                .is_ok()
        );
        assert_eq!(
            c.check_origin(&url("http://api.cloudflare.com/x")),
            Err("http://api.cloudflare.com".into())
        );
        assert_eq!(
            c.check_origin(&url("https://api.cloudflare.com:8443/")),
            Err("https://api.cloudflare.com:8443".into())
        );
        assert!(c.check_origin(&url("http://127.0.0.1:8080/")).is_ok());
        assert!(c.check_origin(&url("http://[::1]:9000/")).is_ok());
        assert!(c.check_origin(&url("https://a.example.com/")).is_ok());
        assert!(c.check_origin(&url("https://example.com/")).is_err());
        // A wildcard that happens to match an IP literal's text does not name it: non-public stays refused.
        let w = ctx(&["http://*.0.0.1"]);
        assert_eq!(
            w.check_origin(&url("http://127.0.0.1/")),
            Err("http://127.0.0.1".into())
        );
    }
}
