//! What the distribution modules share: the error type, the options, and the loopback rule for `--insecure`.

use std::time::Duration;

/// A registry failure, said so an operator knows what to do. Never holds a credential: messages are built from
/// status codes, references and the registry's (truncated) error text, and requests carry credentials only in
/// headers.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error(
        "`{0}` is not an OCI reference: expected oci://REGISTRY/REPOSITORY:TAG or oci://REGISTRY/REPOSITORY@sha256:HEX"
    )]
    BadReference(String),
    #[error(
        "{registry} would be reached over plain http: --insecure is only allowed for a loopback registry \
         (127.0.0.1, ::1, localhost); name another one explicitly with --insecure-registry {registry}"
    )]
    InsecureNotLoopback { registry: String },
    #[error(
        "{registry}: wrong or missing credentials (HTTP {code}); log in with `plughost registry login {registry}`"
    )]
    Unauthorized { registry: String, code: u16 },
    #[error("{reference}: not found in the registry ({what})")]
    NotFound { reference: String, what: String },
    #[error("{registry} is rate-limiting requests (HTTP 429); try again later")]
    RateLimited { registry: String },
    #[error("{registry} failed (HTTP {code}): {message}")]
    Server {
        registry: String,
        code: u16,
        message: String,
    },
    #[error("cannot reach {registry}: {message}")]
    Unreachable { registry: String, message: String },
    #[error("{registry} did not answer within {}s (timeout)", .timeout.as_secs_f64())]
    Timeout { registry: String, timeout: Duration },
    #[error("{reference} is not a Wasm component artifact: {why}")]
    NotWasm { reference: String, why: String },
    #[error("{reference}: {what} is {size} bytes, over the limit of {limit} bytes (--max-size)")]
    TooLarge {
        reference: String,
        what: String,
        size: u64,
        limit: u64,
    },
    #[error("{reference}: {what} does not match its digest {expected} (got {actual}): refusing it")]
    DigestMismatch {
        reference: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error(
        "{reference}: the signature artifact refers to manifest {subject}, not to {manifest}: refusing it"
    )]
    SignatureForAnother {
        reference: String,
        subject: String,
        manifest: String,
    },
    #[error("{reference}: {message}")]
    Protocol { reference: String, message: String },
    #[error("credentials store {path}: {message}")]
    Credentials { path: String, message: String },
}

/// How to talk to registries: plain http only where named, timeouts, how much to download at most.
#[derive(Debug, Clone)]
pub struct Options {
    /// Plain http for this registry (loopback only; see [`DistError::InsecureNotLoopback`]).
    pub insecure: bool,
    /// Registries (`HOST[:PORT]`) the operator named for plain http, loopback or not.
    pub insecure_registries: Vec<String>,
    /// Connect and per-read timeout: a registry that stalls mid-blob fails after this long without data.
    pub timeout: Duration,
    /// The largest component layer fetched (checked against the manifest before downloading, and while reading).
    pub max_size: u64,
    /// Show transfers on stderr: a bar on a terminal, a line at the start and at the end off one (transfers under
    /// 1 MiB show nothing).
    pub progress: bool,
    /// Extra trusted root certificates (PEM): a private CA, or a test's self-signed certificate.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            insecure: false,
            insecure_registries: Vec::new(),
            timeout: Duration::from_secs(30),
            max_size: 256 << 20,
            progress: false,
            ca_pem: None,
        }
    }
}

/// True for a registry host that is this machine: `127.0.0.0/8`, `::1`, `localhost` (any port).
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// At most `n` characters of a registry's text, on one line.
pub(crate) fn clip(s: &str, n: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example.com"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert!(!is_loopback("localhost.example.com:5000"));
    }
}
