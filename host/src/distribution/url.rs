//! `plughost install https://…/x.wasm`: a component and its signature (`x.wasm.sig` beside it, or `--sig URL`)
//! fetched over TLS, bounded by size and time, into memory; verified by the caller like a file. Plain http only
//! for loopback with `--insecure`. A URL that carries credentials is refused, and the query string (often a token)
//! is never shown or recorded.

use futures_util::StreamExt;

use super::types::{DistError, Options, clip, is_loopback};

/// A client for component URLs.
#[derive(Debug)]
pub struct UrlFetcher {
    client: reqwest::Client,
    options: Options,
}

/// `scheme://host[:port]/path` of `url`: what messages and the index show (no userinfo, query or fragment).
pub fn display_url(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(p) => format!("{}://{host}:{p}{}", url.scheme(), url.path()),
        None => format!("{}://{host}{}", url.scheme(), url.path()),
    }
}

/// Parses a component URL: https, or http for a loopback host with `insecure`; no credentials in it.
pub fn parse_url(text: &str, insecure: bool) -> Result<reqwest::Url, DistError> {
    let url = reqwest::Url::parse(text).map_err(|_| DistError::BadReference(clip(text, 200)))?;
    let shown = display_url(&url);
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DistError::Protocol {
            reference: shown,
            message: "the URL holds credentials: refusing it (they would end up in the history)"
                .into(),
        });
    }
    let authority = match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_string(),
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if insecure && is_loopback(&authority) => Ok(url),
        "http" if insecure => Err(DistError::InsecureNotLoopback {
            registry: authority,
        }),
        _ => Err(DistError::Protocol {
            reference: shown,
            message: "only https URLs are fetched (http only for a loopback host with --insecure)"
                .into(),
        }),
    }
}

impl UrlFetcher {
    pub fn new(options: Options) -> Result<Self, DistError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let setup = |e: reqwest::Error| DistError::Protocol {
            reference: "TLS setup".into(),
            message: clip(&e.without_url().to_string(), 300),
        };
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.timeout)
            .read_timeout(options.timeout)
            // A redirect may not leave TLS unless plain http was asked for.
            .https_only(!options.insecure)
            .redirect(reqwest::redirect::Policy::limited(5))
            .user_agent(concat!("plughost/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &options.ca_pem {
            builder =
                builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(pem).map_err(setup)?);
        }
        Ok(Self {
            client: builder.build().map_err(setup)?,
            options,
        })
    }

    /// GETs `url`, at most `limit` bytes (refused before the download when the server says it is larger).
    /// `Ok(None)` for a 404 when `missing_ok` (a signature that is not there).
    pub async fn get(
        &self,
        url: &reqwest::Url,
        limit: u64,
        what: &str,
        missing_ok: bool,
    ) -> Result<Option<Vec<u8>>, DistError> {
        let shown = display_url(url);
        let host = url.host_str().unwrap_or("").to_string();
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| self.request_error(&host, e))?;
        let code = response.status().as_u16();
        match code {
            200 => {}
            404 if missing_ok => return Ok(None),
            401 | 403 => {
                return Err(DistError::Unauthorized {
                    registry: host,
                    code,
                });
            }
            404 => {
                return Err(DistError::NotFound {
                    reference: shown,
                    what: what.into(),
                });
            }
            429 => return Err(DistError::RateLimited { registry: host }),
            _ => {
                return Err(DistError::Server {
                    registry: host,
                    code,
                    message: format!("{what} at {shown}"),
                });
            }
        }
        let too_large = |size: u64| DistError::TooLarge {
            reference: shown.clone(),
            what: what.into(),
            size,
            limit,
        };
        let expected = response.content_length();
        if let Some(n) = expected
            && n > limit
        {
            return Err(too_large(n));
        }
        let bar = crate::progress::Transfer::start(
            format!("downloading {what}"),
            expected,
            self.options.progress,
        );
        let mut out = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.request_error(&host, e))?;
            if out.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large(out.len() as u64 + chunk.len() as u64));
            }
            out.extend_from_slice(&chunk);
            bar.set(out.len() as u64);
        }
        bar.done(out.len() as u64);
        Ok(Some(out))
    }

    fn request_error(&self, host: &str, e: reqwest::Error) -> DistError {
        if e.is_timeout() {
            return DistError::Timeout {
                registry: host.to_string(),
                timeout: self.options.timeout,
            };
        }
        // Without the URL (its query may be a token); the causes say refused, TLS, reset.
        let e = e.without_url();
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message = format!("{message}: {s}");
            source = s.source();
        }
        DistError::Unreachable {
            registry: host.to_string(),
            message: clip(&message, 300),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(parse_url("https://example.com/x.wasm", false).is_ok());
        assert!(parse_url("http://example.com/x.wasm", false).is_err());
        assert!(parse_url("http://example.com/x.wasm", true).is_err());
        assert!(parse_url("http://127.0.0.1:8080/x.wasm", true).is_ok());
        let e = parse_url("https://u:hunter2@example.com/x.wasm", false).expect_err("credentials");
        assert!(!e.to_string().contains("hunter2"));
        let u = parse_url("https://example.com/a/x.wasm?token=s3cret#f", false).expect("url");
        assert_eq!(display_url(&u), "https://example.com/a/x.wasm");
    }
}
