//! `http`: outgoing requests to the origins the operator granted (needs an `http:ORIGIN` grant, e.g.
//! `http:https://api.example.com`).
//!
//! [`get`], [`post`], [`put`], [`patch`] and [`delete`] start a request; [`RequestBuilder::send`] sends it through
//! the host, which checks the origin against the grant (after DNS, and at every redirect) and bounds the body and
//! the time. A header whose value is a secret is filled in by the host ([`RequestBuilder::secret_header`]), so the
//! plugin never holds the secret.
//!
//! ```no_run
//! use plughost_guest::prelude::*;
//!
//! #[output(deserialize)]
//! struct Weather {
//!     temperature: f64,
//! }
//!
//! #[args]
//! struct City {
//!     city: String,
//! }
//!
//! /// Today's temperature in a city.
//! #[tool(read_only, open_world)]
//! fn weather(args: City) -> Result<Weather, ToolError> {
//!     let base = config::get_or("base_url", "https://api.example.com");
//!     http::get(format!("{base}/weather?city={}", args.city))
//!         .header("accept", "application/json")
//!         .secret_header("authorization", "Bearer ", "api_token")
//!         .send()?
//!         .error_for_status()?
//!         .json::<Weather>()
//! }
//!
//! #[args]
//! struct Note {
//!     text: String,
//! }
//!
//! /// Posts a note; the API answers with its id.
//! #[tool(open_world)]
//! fn post_note(args: Note) -> Result<String, ToolError> {
//!     let created: serde_json::Value = http::post("https://api.example.com/notes")
//!         .json(&serde_json::json!({ "text": args.text }))
//!         .send()?
//!         .error_for_status()?
//!         .json()?;
//!     Ok(format!("note {}", created["id"]))
//! }
//! # export_plugin! { id: "weather", description: "Weather.", tools: [weather, post_note] }
//! # fn main() {}
//! ```
//!
//! The raw contract is there too: build a [`Request`] and pass it to [`send`].

pub use crate::__bindings::plughost::plugin0_1_0::http::{
    Header, HeaderValue, HttpError, Method, Request, Response, SecretRef, send,
};

/// Starts a `GET` request.
pub fn get(url: impl Into<String>) -> RequestBuilder {
    RequestBuilder::new(Method::Get, url)
}
/// Starts a `POST` request (add a body with [`RequestBuilder::json`] or [`RequestBuilder::body`]).
pub fn post(url: impl Into<String>) -> RequestBuilder {
    RequestBuilder::new(Method::Post, url)
}
/// Starts a `PUT` request.
pub fn put(url: impl Into<String>) -> RequestBuilder {
    RequestBuilder::new(Method::Put, url)
}
/// Starts a `PATCH` request.
pub fn patch(url: impl Into<String>) -> RequestBuilder {
    RequestBuilder::new(Method::Patch, url)
}
/// Starts a `DELETE` request.
pub fn delete(url: impl Into<String>) -> RequestBuilder {
    RequestBuilder::new(Method::Delete, url)
}

/// A request being put together; [`RequestBuilder::send`] sends it.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    request: Request,
    /// A body that could not be serialized: reported by `send`, as an invalid request.
    invalid: Option<String>,
}

impl RequestBuilder {
    /// A request with any method.
    pub fn new(method: Method, url: impl Into<String>) -> RequestBuilder {
        RequestBuilder {
            request: Request {
                method,
                url: url.into(),
                headers: Vec::new(),
                body: None,
                timeout_ms: None,
            },
            invalid: None,
        }
    }

    /// Adds a header with a plain value.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request.headers.push(Header::text(name, value));
        self
    }

    /// Adds a header whose value is `prefix` followed by the configured secret `key`, inserted by the host when it
    /// sends the request (e.g. `secret_header("authorization", "Bearer ", "api_token")`).
    pub fn secret_header(mut self, name: &str, prefix: &str, key: &str) -> Self {
        self.request.headers.push(Header::secret(name, prefix, key));
        self
    }

    /// The body, as bytes.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.request.body = Some(body.into());
        self
    }

    /// The body, as JSON, with `content-type: application/json` (unless a content-type was set).
    pub fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.request.body = Some(bytes),
            Err(e) => self.invalid = Some(format!("the JSON body cannot be serialized: {e}")),
        }
        let has_type = self
            .request
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("content-type"));
        if has_type {
            self
        } else {
            self.header("content-type", "application/json")
        }
    }

    /// A timeout for this request, in milliseconds (the host's own limit still applies).
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.request.timeout_ms = Some(ms);
        self
    }

    /// The request as the contract spells it.
    pub fn build(self) -> Result<Request, HttpError> {
        match self.invalid {
            Some(why) => Err(HttpError::InvalidRequest(why)),
            None => Ok(self.request),
        }
    }

    /// Sends the request through the host. An `HttpError` converts into a [`ToolError`](crate::ToolError) with
    /// `?`.
    pub fn send(self) -> Result<Response, HttpError> {
        send(&self.build()?)
    }
}

/// How much of an error response's body a [`ToolError`](crate::ToolError) quotes.
const QUOTED_BODY: usize = 512;

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON into `T`; a body that is not (or does not fit `T`) is an `upstream` error naming
    /// the status.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::ToolError> {
        serde_json::from_slice(&self.body).map_err(|e| crate::ToolError::Upstream {
            status: Some(self.status),
            code: None,
            message: format!("the response is not the JSON expected: {e}"),
            retry_after_seconds: None,
        })
    }

    /// The response itself when its status is 2xx, else an `upstream` error with the status, the start of the
    /// body, and `Retry-After` (in seconds) when the server sent one.
    pub fn error_for_status(self) -> Result<Response, crate::ToolError> {
        if self.is_success() {
            return Ok(self);
        }
        let text = self.text();
        let quoted: String = text.chars().take(QUOTED_BODY).collect();
        Err(crate::ToolError::Upstream {
            status: Some(self.status),
            code: None,
            message: format!("HTTP {}: {quoted}", self.status),
            retry_after_seconds: self
                .header("retry-after")
                .and_then(|v| v.trim().parse().ok()),
        })
    }
}

impl From<HttpError> for crate::ToolError {
    fn from(e: HttpError) -> Self {
        use crate::ToolError as T;
        match e {
            HttpError::Denied(origin) => T::Denied(format!("http: {origin} is not granted")),
            HttpError::RedirectDenied(origin) => {
                T::Denied(format!("http: a redirect to {origin} is not granted"))
            }
            HttpError::TooManyRedirects(n) => {
                T::Unavailable(format!("http: more than {n} redirects"))
            }
            HttpError::InvalidRequest(m) => T::Failed(format!("http: invalid request: {m}")),
            HttpError::TooLarge(n) => T::Failed(format!("http: body over the {n}-byte limit")),
            HttpError::RequestLimit(n) => T::Failed(format!(
                "http: the {n}-request budget of this call is spent"
            )),
            HttpError::Timeout => T::Unavailable("http: no response in time".into()),
            HttpError::Connection(m) => T::Unavailable(format!("http: {m}")),
        }
    }
}

impl Header {
    /// A plain header.
    pub fn text(name: &str, value: &str) -> Header {
        Header {
            name: name.to_string(),
            value: HeaderValue::Text(value.to_string()),
        }
    }
    /// A header whose value is `prefix` + the configured secret `key`, inserted by the host.
    pub fn secret(name: &str, prefix: &str, key: &str) -> Header {
        Header {
            name: name.to_string(),
            value: HeaderValue::Secret(SecretRef {
                key: key.to_string(),
                prefix: prefix.to_string(),
            }),
        }
    }
}
