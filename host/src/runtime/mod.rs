//! The host runtime: loads components into plugins and runs every call in a fresh, metered store.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::{Component, Linker};
use wasmtime::{Store, Trap, UpdateDeadline};

use crate::bindings::{PluginPre, tools};
use crate::caps::config::ConfigCtx;
use crate::caps::metrics::MetricsCtx;
use crate::caps::state::{StateCtx, StateStore};
use crate::caps::system::SystemCtx;
use crate::caps::{CapsConfig, PluginEnv, add_granted_to_linker};
use crate::engine::{CacheOutcome, HostEngine};
use crate::grants::Capability;
use crate::home::Home;
use crate::limits::{Limits, MemoryLimitHit};
use crate::plugin::{
    ComponentInfo, LoadError, LoadedPlugin, Manifest, PluginSettings, check_header,
    inspect_component,
};
use crate::report::{CallReport, Outcome};
use crate::store::StoreData;

/// Failures opening the host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("data dir {path}: {source}")]
    Home {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Engine(#[from] crate::engine::EngineError),
    #[error("{0}")]
    State(#[from] crate::caps::state::StoreError),
}

/// One block of tool output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Content {
    Text { text: String },
    Json { json: serde_json::Value },
}

/// A successful tool result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolOutput {
    pub content: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured: Option<serde_json::Value>,
}

/// Why a call produced no output. Mirrors [`Outcome`], with the details a caller needs.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CallError {
    #[error("invalid arguments: {message}")]
    InvalidArguments { message: String },
    #[error("unknown tool `{tool}`")]
    UnknownTool { tool: String },
    #[error("denied: {message}")]
    Denied { message: String },
    #[error("not found: {message}")]
    NotFound { message: String },
    #[error("unavailable: {message}")]
    Unavailable { message: String },
    #[error("upstream error{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Upstream {
        status: Option<u16>,
        code: Option<i64>,
        message: String,
        retry_after_seconds: Option<u32>,
    },
    #[error("tool failed: {message}")]
    Failed { message: String },
    #[error("out of fuel: the call used its whole budget of {limit} fuel")]
    OutOfFuel { limit: u64 },
    #[error("memory limit: the guest asked for {requested} bytes, the cap is {limit}")]
    MemoryLimit { requested: u64, limit: u64 },
    #[error("deadline: the call did not finish within {timeout_ms} ms")]
    Deadline { timeout_ms: u64 },
    #[error("the plugin trapped: {message}")]
    Trap { message: String },
    #[error("output too large: {bytes} bytes, the limit is {limit}")]
    OutputTooLarge { bytes: u64, limit: u64 },
    #[error(
        "busy: plugin `{plugin}` already runs {limit} calls at once (its concurrency limit); try again"
    )]
    Busy { plugin: String, limit: u32 },
    /// A contract is exhausted: which, how much is used and until when.
    #[error("{0}")]
    Quota(Box<crate::contract::QuotaError>),
    #[error("host error: {message}")]
    Host { message: String },
}

impl CallError {
    fn from_tool(e: tools::ToolError) -> Self {
        use tools::ToolError as E;
        match e {
            E::InvalidArguments(message) => CallError::InvalidArguments { message },
            E::UnknownTool(tool) => CallError::UnknownTool { tool },
            E::Denied(message) => CallError::Denied { message },
            E::NotFound(message) => CallError::NotFound { message },
            E::Unavailable(message) => CallError::Unavailable { message },
            E::Upstream(u) => CallError::Upstream {
                status: u.status,
                code: u.code,
                message: u.message,
                retry_after_seconds: u.retry_after_seconds,
            },
            E::Failed(message) => CallError::Failed { message },
        }
    }

    /// The outcome recorded for this error.
    pub fn outcome(&self) -> Outcome {
        match self {
            CallError::OutOfFuel { .. } => Outcome::OutOfFuel,
            CallError::MemoryLimit { requested, .. } => Outcome::MemoryLimit {
                requested_bytes: *requested,
            },
            CallError::Deadline { .. } => Outcome::Deadline,
            CallError::Trap { message } => Outcome::Trap {
                message: message.clone(),
            },
            CallError::OutputTooLarge { bytes, .. } => Outcome::OutputTooLarge { bytes: *bytes },
            CallError::Busy { .. } => Outcome::Busy,
            CallError::Quota(_) => Outcome::Quota,
            CallError::Host { message } => Outcome::HostError {
                message: message.clone(),
            },
            other => Outcome::ToolError {
                error: other.kind().to_string(),
            },
        }
    }

    /// A short, stable name for the error kind.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::InvalidArguments { .. } => "invalid-arguments",
            CallError::UnknownTool { .. } => "unknown-tool",
            CallError::Denied { .. } => "denied",
            CallError::NotFound { .. } => "not-found",
            CallError::Unavailable { .. } => "unavailable",
            CallError::Upstream { .. } => "upstream",
            CallError::Failed { .. } => "failed",
            CallError::OutOfFuel { .. } => "out-of-fuel",
            CallError::MemoryLimit { .. } => "memory-limit",
            CallError::Deadline { .. } => "deadline",
            CallError::Trap { .. } => "trap",
            CallError::OutputTooLarge { .. } => "output-too-large",
            CallError::Busy { .. } => "busy",
            CallError::Quota(_) => "quota",
            CallError::Host { .. } => "host-error",
        }
    }
}

/// A call's result and its report.
#[derive(Debug, Clone)]
pub struct CallResult {
    pub result: Result<ToolOutput, CallError>,
    pub report: CallReport,
}

/// How a component got compiled while loading.
#[derive(Debug, Clone, Copy)]
pub struct CompileInfo {
    pub outcome: CacheOutcome,
    pub time: Duration,
}

/// The host: one engine, the shared stores, and the call machinery.
#[derive(Debug, Clone)]
pub struct Host {
    engine: HostEngine,
    state: Arc<StateStore>,
    system: SystemCtx,
    caps: Arc<CapsConfig>,
    next_call: Arc<AtomicU64>,
    /// Where plugins granted `ledger` append their events; `None` outside a catalog (ad-hoc calls of a file).
    ledger: Option<Arc<crate::ledger::LedgerWriter>>,
    stats: Arc<HostStats>,
    /// Builds each plugin's next instance ahead of its call and tears used stores down off the call's path;
    /// `None` for one-shot commands, which make one call and exit.
    standby: Option<Arc<crate::standby::Preparer>>,
}

/// The host's own counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct HostStats {
    live: std::sync::atomic::AtomicI64,
    pub(crate) instances: AtomicU64,
    /// Standby instances waiting for their call.
    pub(crate) standby: std::sync::atomic::AtomicI64,
    /// Calls that ran in a standby instance.
    standby_hits: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    /// Each plugin's `metrics` observations, by plugin id; kept across relinks (a grant or limit change).
    plugin_metrics: std::sync::Mutex<
        std::collections::BTreeMap<String, Arc<crate::caps::metrics::MetricsRegistry>>,
    >,
}

/// A point-in-time copy of [`HostStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HostStatsSnapshot {
    /// Instances alive right now (calls running).
    pub instances_live: i64,
    /// Instances created since start: one per call that reached the guest, plus standby instances that are
    /// still waiting for theirs.
    pub instances_total: u64,
    /// Fresh instances prepared ahead of a call and not used yet (at most one per plugin).
    pub instances_standby: i64,
    /// Calls that found a standby instance ready (the others instantiated inline).
    pub standby_hits: u64,
    /// Components loaded from the precompiled cache on disk / compiled.
    pub compile_cache_hits: u64,
    pub compile_cache_misses: u64,
}

impl HostStats {
    pub fn snapshot(&self) -> HostStatsSnapshot {
        HostStatsSnapshot {
            instances_live: self.live.load(Ordering::Relaxed),
            instances_total: self.instances.load(Ordering::Relaxed),
            instances_standby: self.standby.load(Ordering::Relaxed),
            standby_hits: self.standby_hits.load(Ordering::Relaxed),
            compile_cache_hits: self.cache_hits.load(Ordering::Relaxed),
            compile_cache_misses: self.cache_misses.load(Ordering::Relaxed),
        }
    }

    /// Every plugin's metrics registry, by plugin id.
    pub fn plugin_metrics(&self) -> Vec<(String, Arc<crate::caps::metrics::MetricsRegistry>)> {
        self.plugin_metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn registry(&self, id: &str) -> Arc<crate::caps::metrics::MetricsRegistry> {
        self.plugin_metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_default()
            .clone()
    }
}

/// Counts an instance as live while held.
struct LiveInstance<'a>(&'a HostStats);

impl<'a> LiveInstance<'a> {
    fn enter(stats: &'a HostStats, created: bool) -> Self {
        stats.live.fetch_add(1, Ordering::Relaxed);
        if created {
            stats.instances.fetch_add(1, Ordering::Relaxed);
        }
        LiveInstance(stats)
    }
}

impl Drop for LiveInstance<'_> {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Limits used for `describe()`: small, because it only returns a manifest.
const DESCRIBE_LIMITS: Limits = Limits {
    fuel: 2_000_000_000,
    memory_bytes: 512 << 20,
    timeout: Duration::from_secs(30),
    max_output_bytes: 4 << 20,
    max_log_lines: 20,
    max_log_line_bytes: 1024,
};

impl Host {
    fn with(engine: HostEngine, state: Arc<StateStore>) -> Host {
        Host {
            engine,
            state,
            system: SystemCtx::default(),
            caps: Arc::default(),
            next_call: Arc::new(AtomicU64::new(1)),
            ledger: None,
            stats: Arc::default(),
            standby: Some(Arc::default()),
        }
    }

    /// The same host without standby instances: every call instantiates inline and drops its store before it
    /// returns. For one-shot commands (`plughost call`, `plughost test`), where a prepared next instance would
    /// never be used.
    pub fn without_standby(mut self) -> Host {
        self.standby = None;
        self
    }

    /// Creates the data dir and an engine whose compile cache lives there.
    fn home_engine(home: &Home) -> Result<HostEngine, HostError> {
        home.ensure().map_err(|source| HostError::Home {
            path: home.root().display().to_string(),
            source,
        })?;
        Ok(HostEngine::new(Some(home.cache_dir()))?)
    }

    /// Opens the host on a data dir (compile cache and state live there).
    pub fn open(home: &Home) -> Result<Self, HostError> {
        let engine = Host::home_engine(home)?;
        let state = StateStore::open(&home.state_db())?;
        Ok(Host::with(engine, state))
    }

    /// A host that shares the data dir's compile cache but keeps state in memory: for trying a component
    /// (`plughost test`) without touching installed plugins' data.
    pub fn scratch(home: &Home) -> Result<Self, HostError> {
        let engine = Host::home_engine(home)?;
        let state = StateStore::in_memory()?;
        Ok(Host::with(engine, state))
    }

    /// A host with no files at all: no compile cache, in-memory state.
    pub fn ephemeral() -> Result<Self, HostError> {
        let engine = HostEngine::new(None)?;
        let state = StateStore::in_memory()?;
        Ok(Host::with(engine, state))
    }

    /// The network capabilities' host-wide settings (HTTP limits, pinned names, the Docker engine), used by
    /// plugins linked after the change.
    pub fn caps_config_mut(&mut self) -> &mut CapsConfig {
        Arc::make_mut(&mut self.caps)
    }

    /// The host's own counters and the plugins' metrics.
    pub fn stats(&self) -> &Arc<HostStats> {
        &self.stats
    }

    /// The ledger plugins granted `ledger` append to (the catalog sets its own).
    pub fn set_ledger(&mut self, writer: Arc<crate::ledger::LedgerWriter>) {
        self.ledger = Some(writer);
    }

    pub fn engine(&self) -> &HostEngine {
        &self.engine
    }

    /// Compiles (or loads from cache) and inspects a component. No guest code runs.
    pub fn compile(
        &self,
        bytes: &[u8],
        on_compile: impl FnOnce(),
    ) -> Result<(Component, ComponentInfo, CompileInfo), LoadError> {
        check_header(bytes)?;
        let digest = blake3::hash(bytes).to_hex().to_string();
        let (component, outcome, time) = self.engine.compile(bytes, &digest, on_compile)?;
        match outcome {
            CacheOutcome::Hit => &self.stats.cache_hits,
            _ => &self.stats.cache_misses,
        }
        .fetch_add(1, Ordering::Relaxed);
        let info = inspect_component(self.engine.engine(), &component, &digest, bytes)?;
        Ok((component, info, CompileInfo { outcome, time }))
    }

    /// Runs the component's `describe()` with no capability linked: any plughost import it calls traps.
    pub async fn describe(&self, component: &Component) -> Result<Manifest, LoadError> {
        let mut linker = Linker::<StoreData>::new(self.engine.engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        stub_plughost_imports(&mut linker, component, self.engine.engine())
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        let pre = PluginPre::new(pre).map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        let env = Arc::new(PluginEnv {
            id: Arc::from("(describe)"),
            config: ConfigCtx::default(),
            state: None,
            metrics: None,
            system: None,
            http: None,
            container: None,
            ledger: None,
        });
        let (mut store, started) = self.new_store(env, &DESCRIBE_LIMITS);
        let limits = DESCRIBE_LIMITS;
        let run = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance
                .plughost_plugin_tools()
                .call_describe(&mut store)
                .await
        };
        let raw = match tokio::time::timeout(limits.timeout, run).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                let err = classify_trap(&e, &store, &limits, started);
                return Err(LoadError::Describe(err.to_string()));
            }
            Err(_) => {
                return Err(LoadError::Describe(
                    CallError::Deadline {
                        timeout_ms: limits.timeout.as_millis() as u64,
                    }
                    .to_string(),
                ));
            }
        };
        Manifest::try_from(raw)
    }

    /// Loads a component: compile (cached), inspect, describe, look up the operator's settings for its id, check
    /// that every capability it imports is granted, and link exactly those.
    pub async fn load(
        &self,
        bytes: &[u8],
        settings_for: impl FnOnce(&Manifest) -> PluginSettings,
    ) -> Result<(LoadedPlugin, CompileInfo), LoadError> {
        let (component, info, compile) = self.compile(bytes, || {})?;
        let plugin = self.link(component, info, settings_for).await?;
        Ok((plugin, compile))
    }

    /// The second half of [`Host::load`], for callers that compiled already (e.g. to show progress).
    pub async fn link(
        &self,
        component: Component,
        info: ComponentInfo,
        settings_for: impl FnOnce(&Manifest) -> PluginSettings,
    ) -> Result<LoadedPlugin, LoadError> {
        let manifest = self.describe(&component).await?;
        let settings = settings_for(&manifest);
        self.link_described(component, info, manifest, settings)
    }

    /// Links a component whose manifest is already known (e.g. stored by the registry at install), without
    /// running `describe()` again. This is what a grant change does: a new linker and `InstancePre`, same code.
    pub fn link_described(
        &self,
        component: Component,
        info: ComponentInfo,
        manifest: Manifest,
        settings: PluginSettings,
    ) -> Result<LoadedPlugin, LoadError> {
        let missing: Vec<Capability> = info
            .capabilities
            .iter()
            .copied()
            .filter(|c| !settings.grants.has(*c))
            .collect();
        if !missing.is_empty() {
            return Err(LoadError::MissingGrants {
                plugin: manifest.id.clone(),
                missing,
            });
        }
        let mut linker = Linker::<StoreData>::new(self.engine.engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        // Only what the component imports *and* the operator granted: a grant it does not use stays unlinked.
        let mut used = settings.grants.clone();
        for cap in Capability::ALL {
            if !info.capabilities.contains(&cap) {
                used.revoke(cap);
            }
        }
        add_granted_to_linker(&mut linker, &used)?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        let pre = PluginPre::new(pre).map_err(|e| LoadError::Instantiate(format!("{e:#}")))?;
        let id: Arc<str> = Arc::from(manifest.id.as_str());
        let config = ConfigCtx::new(settings.config.clone(), settings.secrets.clone());
        let container = self.caps.container_ctx(&used, &id, &config);
        let env = Arc::new(PluginEnv {
            id,
            config,
            state: used.state_quota().map(|quota_bytes| StateCtx {
                store: self.state.clone(),
                quota_bytes,
            }),
            metrics: used.has(Capability::Metrics).then(|| MetricsCtx {
                registry: self.stats.registry(&manifest.id),
            }),
            system: used.has(Capability::System).then(|| self.system.clone()),
            http: self.caps.http_ctx(&used)?,
            container,
            ledger: used
                .has(Capability::Ledger)
                .then(|| crate::caps::ledger::LedgerCtx {
                    writer: self.ledger.clone(),
                    version: manifest.version.clone(),
                    digest: format!("blake3:{}", info.digest),
                    window: settings.window.unwrap_or(plughost_registry::Window::Day),
                }),
        });
        let mut limits = settings.limits;
        if settings.auto_fuel {
            limits.fuel = info.language.default_fuel();
        }
        Ok(LoadedPlugin {
            info,
            manifest,
            grants: settings.grants,
            limits,
            env,
            pre,
            standby: Arc::default(),
        })
    }

    fn new_store(&self, env: Arc<PluginEnv>, limits: &Limits) -> (Store<StoreData>, Instant) {
        let started = Instant::now();
        let call_id = self.next_call.fetch_add(1, Ordering::Relaxed);
        (new_store(&self.engine, env, limits, call_id), started)
    }

    /// Calls a tool in a fresh store: its own fuel, memory cap and deadline. Never panics; every failure is a
    /// typed [`CallError`] and every call has a [`CallReport`].
    pub async fn call(&self, plugin: &LoadedPlugin, tool: &str, arguments: &str) -> CallResult {
        let limits = plugin.limits;
        let early = if plugin.manifest.tool(tool).is_none() {
            Some(CallError::UnknownTool {
                tool: tool.to_string(),
            })
        } else {
            // Validate without building a value: the guest parses the arguments itself.
            match serde_json::from_str::<serde::de::IgnoredAny>(arguments) {
                Ok(_) if arguments.trim_start().starts_with('{') => None,
                Ok(_) => Some(CallError::InvalidArguments {
                    message: "arguments must be a JSON object".into(),
                }),
                Err(e) => Some(CallError::InvalidArguments {
                    message: format!("arguments are not valid JSON: {e}"),
                }),
            }
        };

        // A standby prepared for this plugin under these limits, or a new store; either way one no call has used.
        let prepared = match (&self.standby, &early) {
            (Some(_), None) => plugin.standby.take(&limits),
            _ => None,
        };
        let started = Instant::now();
        let call_id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (mut store, ready) = match prepared {
            Some(p) => {
                self.stats.standby_hits.fetch_add(1, Ordering::Relaxed);
                let mut store = p.store;
                store.data_mut().rearm(call_id, &limits, started);
                // The deadline counts from now, not from when the standby was built.
                store.set_epoch_deadline(1);
                (store, Some(p.instance))
            }
            None => (
                new_store(&self.engine, plugin.env.clone(), &limits, call_id),
                None,
            ),
        };
        if plugin.env.ledger.is_some() {
            store.data_mut().tool = Some(Arc::from(tool));
        }

        let result = match early {
            Some(e) => Err(e),
            None => {
                let pre = &plugin.pre;
                let _live = LiveInstance::enter(&self.stats, ready.is_none());
                let run = async {
                    let instance = match ready {
                        Some(instance) => instance,
                        None => pre.instantiate_async(&mut store).await?,
                    };
                    instance
                        .plughost_plugin_tools()
                        .call_call(&mut store, tool, arguments)
                        .await
                };
                // The epoch callback stops guest code at the deadline; this timeout also bounds a guest that is
                // waiting inside a host call. A little grace lets the epoch path report first.
                match tokio::time::timeout(limits.timeout + Duration::from_millis(20), run).await {
                    Ok(Ok(Ok(out))) => convert_output(out, &limits, plugin.env.redactor()),
                    Ok(Ok(Err(tool_err))) => Err(CallError::from_tool(tool_err)),
                    Ok(Err(trap)) => Err(classify_trap(&trap, &store, &limits, started)),
                    Err(_) => Err(CallError::Deadline {
                        timeout_ms: limits.timeout.as_millis() as u64,
                    }),
                }
            }
        };
        let result = result.map_err(|e| redact_error(e, plugin.env.redactor()));

        crate::caps::log::flush_stderr(store.data_mut());
        let fuel_left = store.get_fuel().unwrap_or(0);
        let data = store.data();
        let report = CallReport {
            plugin: plugin.manifest.id.clone(),
            tool: tool.to_string(),
            fuel_used: limits.fuel.saturating_sub(fuel_left),
            fuel_limit: limits.fuel,
            peak_memory_bytes: data.limiter.peak,
            memory_limit_bytes: limits.memory_bytes,
            wall_time: started.elapsed(),
            timeout: limits.timeout,
            host_calls: data.host_calls,
            log_lines: data.log.lines,
            log_dropped: data.log.dropped,
            outcome: match &result {
                Ok(_) => Outcome::Ok,
                Err(e) => e.outcome(),
            },
        };
        if let Some(preparer) = &self.standby
            && plugin.standby.spaced(started)
        {
            // The used store is never reused: it is torn down on the standby thread, which then builds this
            // plugin's next instance. Back-to-back calls skip this (see `standby::SPACED`) and drop it here.
            let refill = crate::standby::Refill {
                standby: Arc::downgrade(&plugin.standby),
                pre: plugin.pre.clone(),
                env: plugin.env.clone(),
                limits,
            };
            preparer.after_call(&self.engine, &self.stats, store, Some(refill));
        }
        CallResult { result, report }
    }
}

impl Host {
    /// A call refused before any guest code ran (e.g. `busy`): nothing used, and a report that says so.
    pub fn refused(&self, plugin: &LoadedPlugin, tool: &str, error: CallError) -> CallResult {
        let limits = plugin.limits;
        let report = CallReport {
            plugin: plugin.manifest.id.clone(),
            tool: tool.to_string(),
            fuel_used: 0,
            fuel_limit: limits.fuel,
            peak_memory_bytes: 0,
            memory_limit_bytes: limits.memory_bytes,
            wall_time: Duration::ZERO,
            timeout: limits.timeout,
            host_calls: Default::default(),
            log_lines: 0,
            log_dropped: 0,
            outcome: error.outcome(),
        };
        CallResult {
            result: Err(error),
            report,
        }
    }
}

/// A new store for one call (or a standby): its own fuel, memory cap and deadline, and a WASI context that grants
/// nothing.
pub(crate) fn new_store(
    engine: &HostEngine,
    env: Arc<PluginEnv>,
    limits: &Limits,
    call_id: u64,
) -> Store<StoreData> {
    let mut store = Store::new(
        engine.engine(),
        StoreData::new(env, call_id, limits, Instant::now()),
    );
    store.limiter(|s| &mut s.limiter);
    // Fuel cannot fail to be set on an engine with fuel enabled; if it ever did, the call would run with none.
    let _ = store.set_fuel(limits.fuel);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut cx| {
        let data = cx.data_mut();
        if Instant::now() >= data.deadline {
            data.deadline_hit = true;
            Ok(UpdateDeadline::Interrupt)
        } else {
            // Let other tasks (and our own timeout) run between ticks.
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}

/// For `describe()`: every plughost function the component imports traps if called (nothing is granted yet).
/// Not `Linker::define_unknown_imports_as_traps`: that defines an exact-version instance for each import, which
/// shadows WASI's semver-compatible definitions (a Python component importing `wasi:cli/environment@0.2.9` would
/// get the trap instead of wasmtime-wasi's 0.2.x).
fn stub_plughost_imports(
    linker: &mut Linker<StoreData>,
    component: &Component,
    engine: &wasmtime::Engine,
) -> wasmtime::Result<()> {
    use wasmtime::component::types::ComponentItem;
    let prefix = format!("{}/", crate::bindings::WIT_PACKAGE);
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if !name.starts_with(&prefix) {
            continue;
        }
        let mut li = linker.instance(name)?;
        for (func, item) in instance.exports(engine) {
            if let ComponentItem::ComponentFunc(_) = item.ty {
                let what = format!("{name}#{func}");
                li.func_new(func, move |_, _, _, _| {
                    wasmtime::bail!(
                        "`{what}` called during describe(), where no capability is granted"
                    )
                })?;
            }
        }
    }
    Ok(())
}

fn classify_trap(
    err: &wasmtime::Error,
    store: &Store<StoreData>,
    limits: &Limits,
    _started: Instant,
) -> CallError {
    tracing::debug!("guest trap: {err:?}");
    let data = store.data();
    if let Some(hit) = err
        .downcast_ref::<MemoryLimitHit>()
        .copied()
        .or(data.limiter.denied)
    {
        return CallError::MemoryLimit {
            requested: hit.requested,
            limit: hit.limit,
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::OutOfFuel { limit: limits.fuel },
        Some(Trap::Interrupt) if data.deadline_hit => CallError::Deadline {
            timeout_ms: limits.timeout.as_millis() as u64,
        },
        Some(trap) => CallError::Trap {
            message: trap_message(err, Some(*trap)),
        },
        None if data.deadline_hit => CallError::Deadline {
            timeout_ms: limits.timeout.as_millis() as u64,
        },
        None => CallError::Trap {
            message: trap_message(err, None),
        },
    }
}

/// A one-paragraph trap message: the trap itself plus the innermost frames, without the full backtrace.
fn trap_message(err: &wasmtime::Error, trap: Option<Trap>) -> String {
    let full = format!("{err:#}");
    let mut msg = match trap {
        Some(t) => t.to_string(),
        None => full.lines().next().unwrap_or("trap").to_string(),
    };
    if let Some(frame) = full.lines().find(|l| l.trim_start().starts_with("0:")) {
        msg.push_str(&format!(" (at {})", frame.trim()));
    }
    msg
}

fn redact_error(e: CallError, redactor: &crate::caps::config::Redactor) -> CallError {
    if redactor.is_empty() {
        return e;
    }
    let r = |s: String| redactor.redact(&s).into_owned();
    match e {
        CallError::InvalidArguments { message } => CallError::InvalidArguments {
            message: r(message),
        },
        CallError::Denied { message } => CallError::Denied {
            message: r(message),
        },
        CallError::NotFound { message } => CallError::NotFound {
            message: r(message),
        },
        CallError::Unavailable { message } => CallError::Unavailable {
            message: r(message),
        },
        CallError::Upstream {
            status,
            code,
            message,
            retry_after_seconds,
        } => CallError::Upstream {
            status,
            code,
            message: r(message),
            retry_after_seconds,
        },
        CallError::Failed { message } => CallError::Failed {
            message: r(message),
        },
        CallError::Trap { message } => CallError::Trap {
            message: r(message),
        },
        CallError::Host { message } => CallError::Host {
            message: r(message),
        },
        other => other,
    }
}

fn convert_output(
    out: tools::Output,
    limits: &Limits,
    redactor: &crate::caps::config::Redactor,
) -> Result<ToolOutput, CallError> {
    let size: u64 = out
        .content
        .iter()
        .map(|c| match c {
            tools::Content::Text(t) | tools::Content::Json(t) => t.len() as u64,
        })
        .sum::<u64>()
        + out.structured.as_ref().map_or(0, |s| s.len() as u64);
    if size > limits.max_output_bytes {
        return Err(CallError::OutputTooLarge {
            bytes: size,
            limit: limits.max_output_bytes,
        });
    }
    let parse = |what: &str, s: &str| {
        serde_json::from_str::<serde_json::Value>(&redactor.redact(s)).map_err(|e| {
            CallError::Failed {
                message: format!("the plugin returned invalid JSON {what}: {e}"),
            }
        })
    };
    let mut content = Vec::with_capacity(out.content.len());
    for c in out.content {
        content.push(match c {
            tools::Content::Text(t) => Content::Text {
                text: redactor.redact(&t).into_owned(),
            },
            tools::Content::Json(j) => Content::Json {
                json: parse("content", &j)?,
            },
        });
    }
    let structured = out
        .structured
        .as_deref()
        .map(|s| parse("structured output", s))
        .transpose()?;
    Ok(ToolOutput {
        content,
        structured,
    })
}

/// Benchmark support: calls `tool` `n` times on **one** instance (the "warm" path a per-session host would use) and
/// returns each call's duration. Not part of the serving path: plughost itself always uses a fresh store per call.
#[doc(hidden)]
pub async fn warm_calls(
    host: &Host,
    plugin: &LoadedPlugin,
    tool: &str,
    arguments: &str,
    n: usize,
) -> Result<Vec<Duration>, CallError> {
    warm_calls_paced(host, plugin, tool, arguments, n, None).await
}

/// [`warm_calls`] with each call starting `gap` after the previous one started (spinning, not sleeping, between).
#[doc(hidden)]
pub async fn warm_calls_paced(
    host: &Host,
    plugin: &LoadedPlugin,
    tool: &str,
    arguments: &str,
    n: usize,
    gap: Option<Duration>,
) -> Result<Vec<Duration>, CallError> {
    let limits = Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_secs(3600),
        ..plugin.limits
    };
    let (mut store, started) = host.new_store(plugin.env.clone(), &limits);
    let instance = plugin
        .pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| classify_trap(&e, &store, &limits, started))?;
    let mut out = Vec::with_capacity(n);
    let mut next = Instant::now();
    for _ in 0..n {
        pace(&mut next, gap);
        let t = Instant::now();
        let r = instance
            .plughost_plugin_tools()
            .call_call(&mut store, tool, arguments)
            .await;
        out.push(t.elapsed());
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(CallError::from_tool(e)),
            Err(e) => return Err(classify_trap(&e, &store, &limits, started)),
        }
    }
    Ok(out)
}

/// Benchmark support: with a `gap`, spins (a timer wakeup would cost more than a call) until `next`, then sets
/// `next` one gap from now. Without one, returns at once.
#[doc(hidden)]
pub fn pace(next: &mut Instant, gap: Option<Duration>) {
    if let Some(gap) = gap {
        while Instant::now() < *next {
            std::hint::spin_loop();
        }
        *next = Instant::now() + gap;
    }
}
