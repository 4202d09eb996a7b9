//! Typed wrappers over the host imports. A component imports an interface only if it calls into it.

/// `log`: leveled log lines (needs the `log` grant). Use the macros: `log::info!("x = {x}")`.
///
/// A call may write 200 lines of at most 4 KiB each; secrets are redacted before the host writes them.
///
/// ```no_run
/// use plughost_guest::prelude::*;
///
/// /// Logs at every level.
/// #[tool]
/// fn chatty() -> Result<String, ToolError> {
///     log::debug!("starting");
///     log::info!("{} things to do", 3);
///     log::write_with(log::Level::Warn, "slow upstream", &[("ms", "950"), ("host", "api.example.com")]);
///     Ok("done".into())
/// }
/// # export_plugin! { id: "chatty", description: "Logs.", tools: [chatty] }
/// # fn main() {}
/// ```
pub mod log {
    pub use crate::__bindings::plughost::plugin0_1_0::log::Level;
    use crate::__bindings::plughost::plugin0_1_0::{log as raw, types::Pair};

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

/// `state`: this plugin's private key/value store (needs the `state` grant, e.g. `state:1MiB` for a quota).
///
/// Each call runs in a fresh instance: what must outlive a call goes here, not in globals. Values are bytes;
/// [`get_json`](state::get_json) and [`set_json`](state::set_json) store any serde type as JSON. Every error
/// converts into a `ToolError` with `?`.
///
/// ```no_run
/// use plughost_guest::prelude::*;
///
/// #[args]
/// struct Remember {
///     key: String,
///     value: serde_json::Value,
/// }
///
/// /// Stores a value, and says how many keys there are.
/// #[tool(idempotent)]
/// fn remember(args: Remember) -> Result<String, ToolError> {
///     state::set_json(&format!("note/{}", args.key), &args.value)?;
///     let keys = state::list_keys("note/")?.len();
///     let used = state::usage()?.used_bytes;
///     Ok(format!("{keys} notes, {used} bytes"))
/// }
/// # export_plugin! { id: "notes", description: "Notes.", tools: [remember] }
/// # fn main() {}
/// ```
pub mod state {
    use crate::__bindings::plughost::plugin0_1_0::state as raw;
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
    pub fn set_json<T: serde::Serialize + ?Sized>(key: &str, value: &T) -> Result<(), StateError> {
        let bytes =
            serde_json::to_vec(value).map_err(|e| StateError::Unavailable(e.to_string()))?;
        raw::set(key, &bytes)
    }
}

/// `config`: the operator's settings and secrets for this plugin (needs the `config` grant).
///
/// Settings are set with `plughost config ID set KEY VALUE`, secrets with `plughost config ID set KEY --secret`.
/// To send a secret in an HTTP header, name it ([`http::RequestBuilder::secret_header`](crate::http::RequestBuilder::secret_header)):
/// the host inserts it and the plugin never holds it. A secret that is revealed is still redacted from logs,
/// errors and output.
///
/// ```no_run
/// use plughost_guest::prelude::*;
///
/// /// Says which settings are there.
/// #[tool(read_only)]
/// fn settings() -> Result<String, ToolError> {
///     let region = config::get_or("region", "eu");
///     if !config::has_secret("api_token") {
///         return Err(ToolError::Unavailable("set the secret `api_token` first".into()));
///     }
///     Ok(format!("region {region}, settings {:?}", config::keys()))
/// }
/// # export_plugin! { id: "settings", description: "Settings.", tools: [settings] }
/// # fn main() {}
/// ```
pub mod config {
    use crate::__bindings::plughost::plugin0_1_0::config as raw;

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
///
/// ```no_run
/// use plughost_guest::prelude::*;
///
/// /// Free memory, in MiB.
/// #[tool(read_only)]
/// fn free_memory() -> Result<String, ToolError> {
///     let m = system::memory();
///     Ok(format!("{} MiB free", m.available_bytes >> 20))
/// }
/// # export_plugin! { id: "mem", description: "Memory.", tools: [free_memory] }
/// # fn main() {}
/// ```
pub mod system {
    pub use crate::__bindings::plughost::plugin0_1_0::system::{
        CpuInfo, DiskInfo, LoadAverage, MemoryInfo, NetworkInfo, OsInfo, cpu, disks, load, memory,
        networks, os,
    };
}

/// `metrics`: counters, gauges and histograms (needs the `metrics` grant), kept per plugin and shown at the
/// gateway's `/metrics`. Label values are redacted like logs.
///
/// ```no_run
/// use plughost_guest::prelude::*;
///
/// /// Records an order.
/// #[tool]
/// fn order() -> Result<String, ToolError> {
///     metrics::counter("orders_total", 1, &[("shop", "main")]);
///     metrics::gauge("queue_depth", 4.0, &[]);
///     metrics::histogram("order_value_eur", 12.5, &[("shop", "main")]);
///     Ok("recorded".into())
/// }
/// # export_plugin! { id: "shop", description: "Orders.", tools: [order] }
/// # fn main() {}
/// ```
pub mod metrics {
    use crate::__bindings::plughost::plugin0_1_0::{metrics as raw, types::Pair};

    fn labels(l: &[(&str, &str)]) -> Vec<Pair> {
        l.iter()
            .map(|(k, v)| Pair {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect()
    }
    /// Adds `delta` to a counter.
    pub fn counter(name: &str, delta: u64, l: &[(&str, &str)]) {
        raw::counter_add(name, delta, &labels(l));
    }
    /// Sets a gauge.
    pub fn gauge(name: &str, value: f64, l: &[(&str, &str)]) {
        raw::gauge_set(name, value, &labels(l));
    }
    /// Observes one value of a histogram.
    pub fn histogram(name: &str, value: f64, l: &[(&str, &str)]) {
        raw::histogram_observe(name, value, &labels(l));
    }
}

/// `container`: Docker Engine operations (needs a `container:GROUPS[;images=PATTERN,…]` grant, e.g.
/// `container:read,lifecycle;images=localhost/*`).
///
/// Containers made through plughost carry the plugin's label, and a plugin may stop or remove only its own unless
/// it holds `any-container`. Every error converts into a `ToolError` with `?`.
///
/// ```no_run
/// use plughost_guest::prelude::*;
///
/// /// How many containers run, and the engine's version.
/// #[tool(read_only)]
/// fn containers() -> Result<String, ToolError> {
///     let engine = container::engine()?;
///     let filter = container::ListFilter { all: false, labels: vec![] };
///     let running = container::list_containers(&filter)?.len();
///     Ok(format!("{running} running on {} {}", engine.name, engine.version))
/// }
/// # export_plugin! { id: "ps", description: "Containers.", tools: [containers] }
/// # fn main() {}
/// ```
pub mod container {
    pub use crate::__bindings::plughost::plugin0_1_0::container::*;

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
/// ```no_run
/// use plughost_guest::prelude::*;
///
/// #[args]
/// struct Record {
///     zone: String,
///     name: String,
/// }
///
/// /// Creates a record, and writes a domain event to the ledger.
/// #[tool]
/// fn create_record(args: Record) -> Result<String, ToolError> {
///     let seq = ledger::append("dns.record.created", &serde_json::json!({ "zone": args.zone, "name": args.name }))?;
///     let usage = ledger::usage()?;
///     Ok(format!("event #{seq}; {} calls in this window", usage.calls))
/// }
/// # export_plugin! { id: "dns", description: "DNS.", tools: [create_record] }
/// # fn main() {}
/// ```
pub mod ledger {
    use crate::__bindings::plughost::plugin0_1_0::ledger as raw;
    pub use crate::__bindings::plughost::plugin0_1_0::ledger::{LedgerError, UsageSummary};

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
