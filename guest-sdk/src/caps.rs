//! Typed wrappers over the host imports. A component imports an interface only if it calls into it.

/// `log`: leveled log lines (needs the `log` grant). Use the macros: `info!("x = {x}")`.
pub mod log {
    pub use crate::__bindings::plughost::plugin::log::Level;
    use crate::__bindings::plughost::plugin::{log as raw, types::Pair};

    /// Writes one line.
    pub fn write(level: Level, message: &str) {
        raw::write(level, message, &[]);
    }

    /// Writes one line with structured fields.
    pub fn write_with(level: Level, message: &str, fields: &[(&str, &str)]) {
        let fields: Vec<Pair> = fields
            .iter()
            .map(|(k, v)| Pair {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect();
        raw::write(level, message, &fields);
    }

    #[doc(hidden)]
    #[macro_export]
    macro_rules! __log {
        ($level:ident, $($arg:tt)*) => {
            $crate::log::write($crate::log::Level::$level, &format!($($arg)*))
        };
    }
    /// `trace!("...")`
    #[macro_export]
    macro_rules! trace { ($($arg:tt)*) => { $crate::__log!(Trace, $($arg)*) }; }
    /// `debug!("...")`
    #[macro_export]
    macro_rules! debug { ($($arg:tt)*) => { $crate::__log!(Debug, $($arg)*) }; }
    /// `info!("...")`
    #[macro_export]
    macro_rules! info { ($($arg:tt)*) => { $crate::__log!(Info, $($arg)*) }; }
    /// `warn!("...")`
    #[macro_export]
    macro_rules! warn { ($($arg:tt)*) => { $crate::__log!(Warn, $($arg)*) }; }
    /// `error!("...")`
    #[macro_export]
    macro_rules! error { ($($arg:tt)*) => { $crate::__log!(Error, $($arg)*) }; }

    // So that `log::info!(…)` works as well as `plughost_guest::info!(…)`.
    pub use crate::{debug, error, info, trace, warn};
}

/// `state`: this plugin's private key/value store (needs the `state` grant).
pub mod state {
    use crate::__bindings::plughost::plugin::state as raw;
    pub use raw::{Quota, StateError};

    impl From<StateError> for crate::ToolError {
        fn from(e: StateError) -> Self {
            match e {
                StateError::QuotaExceeded(q) => crate::ToolError::Unavailable(format!(
                    "state quota exceeded ({} of {} bytes used)",
                    q.used_bytes, q.limit_bytes
                )),
                StateError::InvalidKey(m) => {
                    crate::ToolError::InvalidArguments(format!("invalid state key: {m}"))
                }
                StateError::Unavailable(m) => {
                    crate::ToolError::Unavailable(format!("state unavailable: {m}"))
                }
            }
        }
    }

    pub fn get(key: &str) -> Result<Option<Vec<u8>>, StateError> {
        raw::get(key)
    }
    pub fn set(key: &str, value: &[u8]) -> Result<(), StateError> {
        raw::set(key, value)
    }
    pub fn delete(key: &str) -> Result<bool, StateError> {
        raw::delete(key)
    }
    pub fn list_keys(prefix: &str) -> Result<Vec<String>, StateError> {
        raw::list_keys(prefix)
    }
    pub fn usage() -> Result<Quota, StateError> {
        raw::usage()
    }

    /// Reads a JSON value; a stored value that does not parse is reported as unavailable.
    pub fn get_json<T: serde::de::DeserializeOwned>(key: &str) -> Result<Option<T>, StateError> {
        match raw::get(key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                StateError::Unavailable(format!("stored value for `{key}` is not valid JSON: {e}"))
            }),
        }
    }

    /// Stores a value as JSON.
    pub fn set_json<T: serde::Serialize>(key: &str, value: &T) -> Result<(), StateError> {
        let bytes =
            serde_json::to_vec(value).map_err(|e| StateError::Unavailable(e.to_string()))?;
        raw::set(key, &bytes)
    }
}

/// `config`: the operator's settings and secrets for this plugin (needs the `config` grant).
pub mod config {
    use crate::__bindings::plughost::plugin::config as raw;

    /// A plain setting.
    pub fn get(key: &str) -> Option<String> {
        raw::get(key)
    }
    /// A plain setting, or `default`.
    pub fn get_or(key: &str, default: &str) -> String {
        raw::get(key).unwrap_or_else(|| default.to_string())
    }
    /// The names of all plain settings.
    pub fn keys() -> Vec<String> {
        raw::keys()
    }
    /// Whether a secret is configured.
    pub fn has_secret(key: &str) -> bool {
        raw::has_secret(key)
    }
    /// Reveals a secret. To authenticate HTTP requests, prefer `http::HeaderValue::Secret`, which never exposes it.
    pub fn secret(key: &str) -> Option<String> {
        raw::reveal_secret(key)
    }
}

/// `system`: facts about the host machine (needs the `system` grant).
pub mod system {
    pub use crate::__bindings::plughost::plugin::system::{
        CpuInfo, DiskInfo, LoadAverage, MemoryInfo, NetworkInfo, OsInfo, cpu, disks, load, memory,
        networks, os,
    };
}

/// `metrics`: counters, gauges and histograms (needs the `metrics` grant).
pub mod metrics {
    use crate::__bindings::plughost::plugin::{metrics as raw, types::Pair};

    fn labels(l: &[(&str, &str)]) -> Vec<Pair> {
        l.iter()
            .map(|(k, v)| Pair {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect()
    }
    pub fn counter(name: &str, delta: u64, l: &[(&str, &str)]) {
        raw::counter_add(name, delta, &labels(l));
    }
    pub fn gauge(name: &str, value: f64, l: &[(&str, &str)]) {
        raw::gauge_set(name, value, &labels(l));
    }
    pub fn histogram(name: &str, value: f64, l: &[(&str, &str)]) {
        raw::histogram_observe(name, value, &labels(l));
    }
}

/// `http`: outgoing requests to granted origins (needs an `http:ORIGIN` grant).
pub mod http {
    pub use crate::__bindings::plughost::plugin::http::{
        Header, HeaderValue, HttpError, Method, Request, Response, SecretRef, send,
    };

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
}

/// `container`: Docker Engine operations (needs a `container:GROUPS` grant).
pub mod container {
    pub use crate::__bindings::plughost::plugin::container::*;

    impl From<ContainerError> for crate::ToolError {
        fn from(e: ContainerError) -> Self {
            use crate::ToolError as T;
            match e {
                ContainerError::Denied(m) => T::Denied(format!("container: {m}")),
                ContainerError::NotFound(m) => T::NotFound(m),
                ContainerError::Conflict(m) => T::Failed(format!("conflict: {m}")),
                ContainerError::Unavailable(m) => T::Unavailable(m),
                ContainerError::Engine(m) => T::Failed(format!("engine: {m}")),
            }
        }
    }
}

/// `ledger`: append domain events to the host's tamper-evident usage ledger, and read this plugin's own usage in
/// its contract window (needs the `ledger` grant).
///
/// ```ignore
/// let seq = ledger::append("dns.record.created", &serde_json::json!({ "zone": zone, "name": name }))?;
/// ```
pub mod ledger {
    use crate::__bindings::plughost::plugin::ledger as raw;
    pub use crate::__bindings::plughost::plugin::ledger::{LedgerError, UsageSummary};

    /// Appends an event: `kind` is `[a-z0-9._-]{1,64}`, `data` becomes JSON (at most 16 KiB). Returns the entry's
    /// sequence number once it is committed.
    pub fn append<T: serde::Serialize + ?Sized>(kind: &str, data: &T) -> Result<u64, LedgerError> {
        let json = serde_json::to_string(data)
            .map_err(|e| LedgerError::Unavailable(format!("the event is not JSON: {e}")))?;
        raw::append(kind, &json)
    }

    /// This plugin's calls, fuel and cost in its current contract window (a day when it has no contract).
    pub fn usage() -> Result<UsageSummary, LedgerError> {
        raw::usage()
    }

    impl From<LedgerError> for crate::ToolError {
        fn from(e: LedgerError) -> Self {
            match e {
                LedgerError::TooLarge(n) => crate::ToolError::InvalidArguments(format!(
                    "ledger: the event is too large ({n} bytes)"
                )),
                LedgerError::InvalidKind(k) => {
                    crate::ToolError::InvalidArguments(format!("ledger: invalid event kind `{k}`"))
                }
                LedgerError::Unavailable(m) => {
                    crate::ToolError::Unavailable(format!("ledger: {m}"))
                }
            }
        }
    }
}
