//! Paths of the guest components built by `build.rs`, and small helpers for the integration tests.

/// Every runtime rule in one component (`fixture-basic`): echo, spin, memory bomb, recursion, trap, huge output,
/// sleep in a host call, state, log flood, stderr, typed failure. Imports `state` and `log`.
pub const BASIC: &str = env!("PLUGHOST_FIXTURE_BASIC");
/// A second plugin using the same state key names (`fixture-state-b`). Imports `state`.
pub const STATE_B: &str = env!("PLUGHOST_FIXTURE_STATE_B");
/// Version 0.2.0 of `fixture-state-b`: same id, also imports `log`, has a `version` tool.
pub const STATE_B_V2: &str = env!("PLUGHOST_FIXTURE_STATE_B_V2");
/// Imports `http` (`fixture-needs-http`).
pub const NEEDS_HTTP: &str = env!("PLUGHOST_FIXTURE_NEEDS_HTTP");
/// Appends ledger events and observes metrics (`fixture-events`). Imports `ledger` and `metrics`.
pub const EVENTS: &str = env!("PLUGHOST_FIXTURE_EVENTS");
/// A hostile plugin on the raw contract (`fixture-flood`): floods of blocks, escapes, deep JSON, huge errors, exit.
pub const FLOOD: &str = env!("PLUGHOST_FIXTURE_FLOOD");
/// Tries to leak its secret `token` through every channel (`fixture-leaky`). Imports `config`, `log`, `metrics`
/// and `ledger`.
pub const LEAKY: &str = env!("PLUGHOST_FIXTURE_LEAKY");
/// Leaks its secret `token` through resource blobs, among bytes that are not text and as text bytes
/// (`fixture-leaky-blob`). Imports `config`.
pub const LEAKY_BLOB: &str = env!("PLUGHOST_FIXTURE_LEAKY_BLOB");
/// Calls `log` inside `describe()`, where nothing is granted (`fixture-describe-log`).
pub const DESCRIBE_LOG: &str = env!("PLUGHOST_FIXTURE_DESCRIBE_LOG");
/// Returns a 64 MiB description from `describe()` (`fixture-describe-huge`).
pub const DESCRIBE_HUGE: &str = env!("PLUGHOST_FIXTURE_DESCRIBE_HUGE");
/// Built against `plughost:plugin@1.0.0`.
pub const WRONG_VERSION: &str = env!("PLUGHOST_FIXTURE_WRONG_VERSION");
/// Contract 0.2.0 through the SDK: resources (static, templated, blob, spinning), a prompt, a tool reporting progress.
pub const OFFERS: &str = env!("PLUGHOST_FIXTURE_OFFERS");
/// Built against the frozen contract 0.1.0 with raw wit-bindgen: imports `log`, exports `tools` only.
pub const V01: &str = env!("PLUGHOST_FIXTURE_V01");
/// A lean build (`fixture-lean`, wasm32-unknown-unknown): imports nothing, not even WASI. echo, count, churn,
/// memory bomb, panic.
pub const LEAN: &str = env!("PLUGHOST_FIXTURE_LEAN");
/// A lean build with the SDK's `panic-log` feature (`fixture-lean-log`): imports `log` only. echo, panic.
pub const LEAN_LOG: &str = env!("PLUGHOST_FIXTURE_LEAN_LOG");
/// The shipped system-info plugin.
pub const SYSTEM_INFO: &str = env!("PLUGHOST_FIXTURE_SYSTEM_INFO");
/// The shipped Cloudflare plugin.
pub const CLOUDFLARE: &str = env!("PLUGHOST_FIXTURE_CLOUDFLARE");
/// The shipped Docker plugin.
pub const DOCKER: &str = env!("PLUGHOST_FIXTURE_DOCKER");

/// Reads a fixture.
pub fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read fixture {path}: {e}"))
}

/// Loads the component at `path` into `host` with `grants`, after `tweak` adjusts its settings (limits, config).
pub async fn load(
    host: &plughost::Host,
    path: &str,
    grants: &[&str],
    tweak: impl FnOnce(&mut plughost::PluginSettings),
) -> plughost::LoadedPlugin {
    let grants = plughost::Grants::parse(grants).unwrap_or_else(|e| panic!("{e}"));
    let (plugin, _) = host
        .load(&bytes(path), |_| {
            let mut s = plughost::PluginSettings {
                grants,
                ..Default::default()
            };
            tweak(&mut s);
            s
        })
        .await
        .unwrap_or_else(|e| panic!("load {path}: {e}"));
    plugin
}

/// Asserts that a call ended in the typed memory-limit error for `cap`, asking for more than it.
pub fn assert_memory_limit(r: &plughost::CallResult, cap: u64) {
    match &r.result {
        Err(plughost::CallError::MemoryLimit { requested, limit }) => {
            assert_eq!(*limit, cap);
            assert!(*requested > cap);
        }
        other => panic!("expected memory-limit, got {other:?}"),
    }
}

/// The text of a successful call's output (JSON blocks as their JSON); panics with the error and report otherwise.
pub fn text(r: &plughost::CallResult) -> String {
    use plughost::call::Content;
    match &r.result {
        Ok(out) => out
            .content
            .iter()
            .map(|c| match c {
                Content::Text { text } => text.clone(),
                Content::Json { json } => json.to_string(),
            })
            .collect(),
        Err(e) => panic!("expected success, got {e} ({:?})", r.report),
    }
}

/// Waits (bounded by `within`) until `host`'s standby thread has prepared `n` instances.
pub async fn standby_ready(host: &plughost::Host, n: i64, within: std::time::Duration) {
    let started = std::time::Instant::now();
    while host.stats().snapshot().instances_standby < n {
        assert!(
            started.elapsed() < within,
            "no standby instance after {within:?}: {:?}",
            host.stats().snapshot()
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

pub mod browser;
pub mod logs;
pub mod loopback;
pub mod postgres;
