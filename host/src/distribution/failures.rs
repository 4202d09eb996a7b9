//! How a registry failure reads: `oci-client`'s errors turned into one [`DistError`] per cause (credentials,
//! not found, rate limit, server, unreachable or TLS, timeout), never with a credential in it.

use oci_client::Reference;
use oci_client::errors::OciDistributionError;

use super::types::{DistError, Options, clip, is_loopback};

/// What to do when the TLS handshake got plain http back (rustls: "received corrupt message of type
/// InvalidContentType"): the registry speaks http, which is reached only when named. Empty for any other failure.
fn plain_http_hint(registry: &str, message: &str) -> String {
    if !message.contains("InvalidContentType") {
        return String::new();
    }
    if is_loopback(registry) {
        " (the registry answers in plain http: add --insecure, allowed for a loopback registry)"
            .to_string()
    } else {
        format!(
            " (the registry answers in plain http: if it is meant to, name it with --insecure-registry {registry})"
        )
    }
}

pub(super) fn protocol(reference: &Reference, e: impl std::fmt::Display) -> DistError {
    DistError::Protocol {
        reference: reference.whole(),
        message: clip(&e.to_string(), 300),
    }
}

pub(super) fn timeout(reference: &Reference, options: &Options) -> DistError {
    DistError::Timeout {
        registry: reference.resolve_registry().to_string(),
        timeout: options.timeout,
    }
}

/// One clear error per registry failure: credentials, not found, rate limit, server, unreachable, timeout.
pub(super) fn classify(
    reference: &Reference,
    what: &str,
    e: OciDistributionError,
    options: &Options,
) -> DistError {
    let registry = reference.resolve_registry().to_string();
    let status = |code: u16, message: String| match code {
        401 | 403 => DistError::Unauthorized {
            registry: registry.clone(),
            code,
        },
        404 => DistError::NotFound {
            reference: reference.whole(),
            what: what.to_string(),
        },
        429 => DistError::RateLimited {
            registry: registry.clone(),
        },
        _ => DistError::Server {
            registry: registry.clone(),
            code,
            message: clip(&message, 300),
        },
    };
    match e {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => DistError::Unauthorized {
            registry,
            code: 401,
        },
        OciDistributionError::ImageManifestNotFoundError(_) => status(404, String::new()),
        OciDistributionError::ServerError { code, message, .. } => status(code, message),
        OciDistributionError::RegistryError { envelope, .. } => {
            let codes: Vec<String> = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}", e.code))
                .collect();
            let text = codes.join(", ");
            if text.contains("Unauthorized") || text.contains("Denied") {
                status(401, text)
            } else if text.contains("Unknown") || text.contains("NotFound") {
                status(404, text)
            } else if text.contains("Toomanyrequests") {
                status(429, text)
            } else {
                DistError::Server {
                    registry,
                    code: 0,
                    message: clip(&text, 300),
                }
            }
        }
        OciDistributionError::RequestError(r) => {
            if r.is_timeout() {
                timeout(reference, options)
            } else if let Some(code) = r.status() {
                status(code.as_u16(), String::new())
            } else {
                // reqwest's chain names the URL and the cause (refused, TLS); never a credential (those are headers).
                let mut message = r.to_string();
                let mut source = std::error::Error::source(&r);
                while let Some(s) = source {
                    message = format!("{message}: {s}");
                    source = s.source();
                }
                let hint = plain_http_hint(&registry, &message);
                DistError::Unreachable {
                    registry,
                    message: format!("{}{hint}", clip(&message, 300)),
                }
            }
        }
        OciDistributionError::IoError(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            timeout(reference, options)
        }
        OciDistributionError::DigestError(d) => protocol(reference, d),
        other => protocol(reference, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_answering_in_plain_http_is_told_how_to_name_it() {
        let tls = "error sending request for url (https://127.0.0.1:5000/v2/): client error (Connect): \
                   received corrupt message of type InvalidContentType";
        assert_eq!(
            plain_http_hint("127.0.0.1:5000", tls),
            " (the registry answers in plain http: add --insecure, allowed for a loopback registry)"
        );
        assert_eq!(
            plain_http_hint("registry.lan:5000", tls),
            " (the registry answers in plain http: if it is meant to, name it with --insecure-registry \
             registry.lan:5000)"
        );
        assert_eq!(
            plain_http_hint("127.0.0.1:5000", "Connection refused (os error 111)"),
            ""
        );
    }
}
