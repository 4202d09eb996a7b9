//! The installed plugins, loaded and ready to call. The catalog takes each plugin's bytes (digest-checked), grants,
//! limits, config and secrets from the registry, and keeps them current: when the registry's generation changes
//! (install, upgrade, rollback, remove, grant, revoke, limits, config), [`Catalog::refresh`] relinks what changed and
//! swaps it in. Calls already running keep the `Arc` of the version they started with; new calls get the new one.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use plughost_registry::{PluginLimits, PluginRecord, Registry, RegistryError};
use wasmtime::component::Component;

use crate::call::{CallError, CallResult, RenderedPrompt, ResourceContent};
use crate::contract::{Gate, ScopeUsage, SharedGate};
use crate::grants::{GrantError, Grants};
use crate::ledger::{Caller, EntryRef, Ledger, LedgerWriter, args_digest, call_entry, now_ms};
use crate::report::Outcome;
use crate::runtime::Host;
use crate::runtime::limits::Limits;
use crate::runtime::plugin::{LoadError, LoadedPlugin, Manifest, PluginSettings};

/// Why the catalog could not be read at all (one plugin failing to load is a [`Problem`], not this).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
}

/// A loaded plugin and what the registry says about it.
#[derive(Debug)]
pub struct Entry {
    pub plugin: LoadedPlugin,
    pub record: PluginRecord,
    concurrency: (u32, Arc<tokio::sync::Semaphore>),
    gate: Option<Gate>,
    /// On a cluster's replica: the contract, checked and reserved in the shared store (instead of `gate`).
    shared_gate: Option<SharedGate>,
    key: String,
    ledger: Arc<LedgerWriter>,
}

impl Entry {
    /// Calls a tool as the embedding library (see [`Entry::call_as`]).
    pub async fn call(&self, host: &Host, tool: &str, arguments: &str) -> CallResult {
        let caller = Caller {
            transport: "library".into(),
            ..Caller::default()
        };
        self.call_as(host, tool, arguments, &caller).await
    }

    /// Calls a tool for `caller` and records the call in the ledger before returning it. Honours the plugin's
    /// concurrency limit: beyond it the call is refused at once as `busy` (and recorded as such).
    pub async fn call_as(
        &self,
        host: &Host,
        tool: &str,
        arguments: &str,
        caller: &Caller,
    ) -> CallResult {
        self.call_with(host, &self.plugin, tool, arguments, caller)
            .await
    }

    /// [`Entry::call_as`] with `plugin` standing in for the entry's own (the same plugin with other limits, for a
    /// one-off `plughost call --fuel …`).
    ///
    /// Before the guest runs: the ledger must be writable (else `unavailable`, nothing runs), then the concurrency
    /// limit (`busy`), then the contracts (`quota`, from the ledger). Busy and quota refusals are recorded, cost
    /// nothing and do not count against a contract. Fail closed: if the call's entry cannot be committed, the caller
    /// gets `unavailable` ("not recorded") instead of the result, and the call still counts against this process's
    /// contracts.
    pub async fn call_with(
        &self,
        host: &Host,
        plugin: &LoadedPlugin,
        tool: &str,
        arguments: &str,
        caller: &Caller,
    ) -> CallResult {
        self.ledgered(host, plugin, tool, arguments, caller, || {
            host.call(plugin, tool, arguments)
        })
        .await
    }

    /// Reads resource `path` for `caller` (contract 0.2.0), ledgered like a call: label `resource:<path>`, the
    /// digest of `{"path": …}` as its arguments, the plugin's concurrency limit and contracts.
    pub async fn read_resource_as(
        &self,
        host: &Host,
        path: &str,
        caller: &Caller,
    ) -> CallResult<Vec<ResourceContent>> {
        let label = crate::runtime::reads::resource_label(&crate::caps::view::truncated(path, 256));
        let args = serde_json::json!({ "path": path }).to_string();
        self.ledgered(host, &self.plugin, &label, &args, caller, || {
            host.read_resource(&self.plugin, path)
        })
        .await
    }

    /// Renders prompt `name` for `caller` (contract 0.2.0), ledgered like a call: label `prompt:<name>`.
    pub async fn get_prompt_as(
        &self,
        host: &Host,
        name: &str,
        arguments: &[(String, String)],
        caller: &Caller,
    ) -> CallResult<RenderedPrompt> {
        let label = crate::runtime::reads::prompt_label(&crate::caps::view::truncated(name, 64));
        let args: serde_json::Map<String, serde_json::Value> = arguments
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let args = serde_json::json!({ "name": name, "arguments": args }).to_string();
        self.ledgered(host, &self.plugin, &label, &args, caller, || {
            host.get_prompt(&self.plugin, name, arguments)
        })
        .await
    }

    /// The ledgered path every guest invocation of the catalog takes (`go` runs the guest): ledger writable,
    /// concurrency, contracts, then `go`, then the entry committed before the result is returned.
    async fn ledgered<T, F, Fut>(
        &self,
        host: &Host,
        plugin: &LoadedPlugin,
        tool: &str,
        arguments: &str,
        caller: &Caller,
        go: F,
    ) -> CallResult<T>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = CallResult<T>>,
    {
        if let Err(e) = self.ledger.check() {
            tracing::error!(plugin = %self.record.id, tool, "call refused: {e}");
            let e = CallError::Unavailable {
                message: format!("{e}; the call was not run"),
            };
            return host.refused(plugin, tool, e);
        }
        let _flight = self.ledger.flight();
        let cost = self.record.limits.cost_of(tool);
        let (mut result, admission) = self
            .run(host, plugin, tool, caller.principal.as_deref(), cost, go)
            .await;
        let charged = match result.report.outcome {
            Outcome::Busy | Outcome::Quota => 0,
            _ => cost,
        };
        let digest = args_digest(arguments);
        let entry = call_entry(
            &self.record,
            &result.report,
            &result,
            caller,
            &digest,
            charged,
        );
        let time_ms = entry.time_ms;
        if let Err(e) = self.write_entry(entry).await {
            tracing::error!(plugin = %self.record.id, tool, "the call could not be recorded in the ledger: {e}");
            let what = match &result.result {
                Ok(_) => "the call ran, but its result is withheld".to_string(),
                Err(err) => format!("the call ended in `{}` ({err})", err.kind()),
            };
            let e = CallError::Unavailable {
                message: format!(
                    "not recorded: the usage ledger could not be written ({e}); {what}"
                ),
            };
            result.report.outcome = e.outcome();
            result.result = Err(e);
            // It ran (or was admitted) but is not in the ledger: count it from memory for the rest of its window.
            if let Some(a) = admission {
                a.unrecorded(time_ms);
            }
            return result;
        }
        // The entry is in the ledger now: the contract reads it from there from here on.
        drop(admission);
        result
    }

    /// Records a call refused before it reached the plugin (arguments that break the tool's input schema, over
    /// MCP) exactly as the call path records its own refusals, and returns it. Costs nothing, counts against no
    /// contract.
    pub async fn refuse_as(
        &self,
        host: &Host,
        tool: &str,
        arguments: &str,
        caller: &Caller,
        error: CallError,
    ) -> CallResult {
        let result = host.refused(&self.plugin, tool, error);
        let digest = args_digest(arguments);
        let entry = call_entry(&self.record, &result.report, &result, caller, &digest, 0);
        if let Err(e) = self.write_entry(entry).await {
            tracing::error!(plugin = %self.record.id, tool, "a refusal could not be recorded in the ledger: {e}");
        }
        result
    }

    /// Writes a call's entry. A plugin with a contract commits it at once, since contracts are counted from
    /// `ledger.db` (by every process that serves the plugin); any other goes through the spool when the process
    /// spools (`LedgerWriter::spool`).
    async fn write_entry(&self, entry: EntryRef<'_>) -> Result<(), String> {
        if self.gate.is_none() && self.shared_gate.is_none() {
            self.ledger.append_spooled(entry).await
        } else {
            self.ledger.append(vec![entry.owned()]).await.map(|_| ())
        }
    }

    async fn run<T, F, Fut>(
        &self,
        host: &Host,
        plugin: &LoadedPlugin,
        tool: &str,
        principal: Option<&str>,
        cost: u64,
        go: F,
    ) -> (CallResult<T>, Option<crate::contract::Admission<'_>>)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = CallResult<T>>,
    {
        let (limit, sem) = &self.concurrency;
        let Ok(_permit) = sem.clone().try_acquire_owned() else {
            let busy = CallError::Busy {
                plugin: self.record.id.clone(),
                limit: *limit,
            };
            return (host.refused(plugin, tool, busy), None);
        };
        if let Some(gate) = &self.shared_gate {
            let now = now_ms();
            match gate.admit(tool, principal, cost, now) {
                Ok(Ok(())) => {}
                Ok(Err(exhausted)) => {
                    let e = exhausted.into_error(tool, now);
                    return (host.refused(plugin, tool, e), None);
                }
                Err(e) => {
                    // Fail closed: a contract that cannot be checked admits nothing.
                    let e = CallError::Unavailable {
                        message: format!("{e}; the call was not run"),
                    };
                    return (host.refused(plugin, tool, e), None);
                }
            }
        }
        let admission = match &self.gate {
            None => None,
            Some(gate) => {
                let now = now_ms();
                match gate.admit(tool, principal, cost, now) {
                    Ok(Ok(a)) => Some(a),
                    Ok(Err(exhausted)) => {
                        let e = exhausted.into_error(tool, now);
                        return (host.refused(plugin, tool, e), None);
                    }
                    Err(e) => {
                        let e = CallError::Host {
                            message: e.to_string(),
                        };
                        return (host.refused(plugin, tool, e), None);
                    }
                }
            }
        };
        (go().await, admission)
    }

    /// Usage of this plugin's contracts in their current windows (empty without a contract).
    pub fn contract_usage(&self) -> Result<Vec<ScopeUsage>, crate::contract::GateError> {
        match &self.gate {
            Some(g) => g.usage(now_ms()),
            None => Ok(Vec::new()),
        }
    }
}

/// An installed plugin that is not loaded, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    pub id: String,
    pub version: String,
    pub reason: String,
}

#[derive(Debug, Default)]
struct State {
    generation: Option<i64>,
    entries: BTreeMap<String, Arc<Entry>>,
    problems: BTreeMap<String, Problem>,
}

/// The live set of installed plugins.
#[derive(Debug)]
pub struct Catalog {
    host: Host,
    registry: Arc<Registry>,
    state: RwLock<State>,
    components: RwLock<HashMap<String, Component>>,
    refresh_lock: tokio::sync::Mutex<()>,
    ledger: Arc<LedgerWriter>,
}

/// Turns the registry's per-plugin limits into call limits (host defaults where unset).
pub fn limits_from(l: &PluginLimits) -> Limits {
    let mut out = Limits::default();
    if let Some(f) = l.fuel {
        out.fuel = f;
    }
    if let Some(m) = l.memory_bytes {
        out.memory_bytes = m;
    }
    if let Some(t) = l.timeout_ms {
        out.timeout = Duration::from_millis(t);
    }
    out
}

/// The limits an installed plugin's calls run under: the operator's, else the host defaults, with the language's
/// default fuel when the operator set none.
pub fn effective_limits(l: &PluginLimits, language: crate::runtime::plugin::Language) -> Limits {
    let mut out = limits_from(l);
    if l.fuel.is_none() {
        out.fuel = language.default_fuel();
    }
    out
}

/// The language of an installed plugin's current version, read from its stored bytes.
pub fn installed_language(registry: &Registry, id: &str) -> crate::runtime::plugin::Language {
    registry
        .runnable(id)
        .map(|r| crate::runtime::plugin::detect_language(&r.bytes))
        .unwrap_or(crate::runtime::plugin::Language::Other)
}

impl Catalog {
    /// Opens the catalog and loads every enabled plugin.
    pub async fn open(mut host: Host, registry: Arc<Registry>) -> Result<Catalog, CatalogError> {
        let local = Arc::new(Ledger::open(registry.root())?);
        let ledger = match registry.shared() {
            Some(pg) => LedgerWriter::start_shared(local, pg.clone()),
            None => LedgerWriter::start(local),
        };
        host.set_ledger(ledger.clone());
        let denials = Arc::new(crate::caps::denials::DenialAudit::new(registry.clone()));
        crate::caps::denials::DenialAudit::spawn_flusher(&denials);
        host.set_denials(denials.clone());
        let c = Catalog {
            host,
            ledger,
            registry,
            state: RwLock::new(State::default()),
            components: RwLock::new(HashMap::new()),
            refresh_lock: tokio::sync::Mutex::new(()),
        };
        c.refresh().await?;
        Ok(c)
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The usage ledger every call of this catalog's plugins is recorded in.
    pub fn ledger(&self) -> &Arc<LedgerWriter> {
        &self.ledger
    }

    /// Records a call of `tool` of the installed but not loaded (disabled, or failing to load) plugin `id` as refused
    /// `unavailable`, with the same fields as any call entry; returns that error, or `None` when no such plugin is
    /// installed.
    pub async fn refuse_not_loaded(
        &self,
        id: &str,
        tool: &str,
        arguments: &str,
        caller: &Caller,
    ) -> Option<CallError> {
        let problem = self.problems().into_iter().find(|p| p.id == id)?;
        let record = self
            .registry
            .list()
            .ok()?
            .into_iter()
            .find(|r| r.id == id)?;
        let error = CallError::Unavailable {
            message: format!(
                "plugin `{id}` {} is not loaded: {}",
                problem.version, problem.reason
            ),
        };
        let entry = crate::ledger::NewEntry {
            time_ms: now_ms(),
            kind: crate::ledger::Kind::Call,
            plugin: record.id.clone(),
            version: record.version.clone(),
            digest: record.digest.clone(),
            tool: tool.to_string(),
            caller: caller.clone(),
            duration_us: 0,
            fuel_used: 0,
            peak_memory: 0,
            outcome: error.kind().to_string(),
            args_digest: Some(plughost_registry::ledger::args_digest(arguments)),
            cost: 0,
            event: None,
            data: None,
        };
        if let Err(e) = self.ledger.append(vec![entry]).await {
            tracing::error!(plugin = %id, tool, "a refusal could not be recorded in the ledger: {e}");
        }
        Some(error)
    }

    /// The loaded plugin `id`, if it is enabled and loaded.
    pub fn get(&self, id: &str) -> Option<Arc<Entry>> {
        self.read().entries.get(id).cloned()
    }

    /// Every loaded plugin, by id.
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        self.read().entries.values().cloned().collect()
    }

    /// Installed plugins that are not loaded, with the reason.
    pub fn problems(&self) -> Vec<Problem> {
        self.read().problems.values().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the catalog up to date with the registry. Returns whether anything changed. Cheap when nothing did
    /// (one query).
    pub async fn refresh(&self) -> Result<bool, CatalogError> {
        let _one_at_a_time = self.refresh_lock.lock().await;
        let generation = self.registry.generation()?;
        if self.read().generation == Some(generation) {
            return Ok(false);
        }
        let records = self.registry.list()?;
        let old: BTreeMap<String, Arc<Entry>> = self.read().entries.clone();
        let mut entries = BTreeMap::new();
        let mut problems = BTreeMap::new();
        let problem = |record: &PluginRecord, reason: String| Problem {
            id: record.id.clone(),
            version: record.version.clone(),
            reason,
        };
        let mut enabled = Vec::new();
        for record in records {
            if record.enabled {
                enabled.push(record);
                continue;
            }
            let reason = record
                .disabled_reason
                .clone()
                .unwrap_or_else(|| "disabled".into());
            problems.insert(record.id.clone(), problem(&record, reason));
        }
        // Each load reads the verified blob, maps the precompiled artifact and links; none waits on another.
        let loaded = crate::par::map(&enabled, |r| self.load(r, old.get(&r.id)));
        for (record, loaded) in enabled.iter().zip(loaded) {
            match loaded {
                Ok(entry) => {
                    entries.insert(record.id.clone(), entry);
                }
                Err(reason) => {
                    tracing::warn!(plugin = %record.id, "not loaded: {reason}");
                    problems.insert(record.id.clone(), problem(record, reason));
                }
            }
        }
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        let changed = st.entries.len() != entries.len()
            || st
                .entries
                .iter()
                .zip(entries.iter())
                .any(|((a, ea), (b, eb))| a != b || !Arc::ptr_eq(ea, eb))
            || st.problems.len() != problems.len();
        st.generation = Some(generation);
        st.entries = entries;
        st.problems = problems;
        Ok(changed)
    }

    fn load(&self, record: &PluginRecord, old: Option<&Arc<Entry>>) -> Result<Arc<Entry>, String> {
        let started = std::time::Instant::now();
        let runnable = self
            .registry
            .runnable(&record.id)
            .map_err(|e| e.to_string())?;
        let read = started.elapsed();
        // Everything that shapes the linked plugin; if none of it changed, keep the loaded one.
        let key = format!(
            "{}|{}|{}|{}",
            record.digest,
            serde_json::to_string(&record.grants).unwrap_or_default(),
            serde_json::to_string(&record.limits).unwrap_or_default(),
            blake3::hash(
                serde_json::to_string(&(&runnable.config, &runnable.secrets))
                    .unwrap_or_default()
                    .as_bytes()
            )
            .to_hex()
        );
        if let Some(old) = old
            && old.key == key
        {
            return Ok(old.clone());
        }
        let grants = Grants::parse(&record.grants).map_err(|e: GrantError| e.to_string())?;
        let manifest: Manifest = serde_json::from_str(&record.manifest_json).map_err(|e| {
            format!("the stored manifest is unreadable ({e}); reinstall the plugin")
        })?;
        let cached = self
            .components
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&record.digest)
            .cloned();
        let (component, info) = match cached {
            Some(c) => {
                let info = crate::runtime::plugin::inspect_component(
                    self.host.engine().engine(),
                    &c,
                    record.digest.trim_start_matches("blake3:"),
                    &runnable.bytes,
                )
                .map_err(|e| e.to_string())?;
                (c, info)
            }
            None => {
                // The blob store checked the bytes against this digest as it read them.
                let (c, info, _) = self
                    .host
                    .compile_known(&runnable.bytes, record.digest.trim_start_matches("blake3:"))
                    .map_err(|e: LoadError| e.to_string())?;
                self.components
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(record.digest.clone(), c.clone());
                (c, info)
            }
        };
        if manifest.id != record.id {
            return Err(format!(
                "the stored manifest names `{}`, not `{}`; reinstall the plugin",
                manifest.id, record.id
            ));
        }
        let compiled = started.elapsed();
        let settings = PluginSettings {
            grants,
            limits: limits_from(&record.limits),
            config: runnable.config,
            secrets: runnable.secrets,
            window: record.limits.window,
            auto_fuel: record.limits.fuel.is_none(),
        };
        let plugin = self
            .host
            .link_described(component, info, manifest, settings)
            .map_err(|e| match e {
                LoadError::MissingGrants { plugin, missing } => {
                    crate::runtime::plugin::missing_grants_of_installed(&plugin, &missing)
                }
                e => e.to_string(),
            })?;
        tracing::info!(
            plugin = %record.id,
            read_ms = ms(read),
            artifact_ms = ms(compiled - read),
            link_ms = ms(started.elapsed() - compiled),
            "loaded"
        );
        let n = crate::runtime::limits::concurrency_of(record.limits.concurrency);
        let concurrency = (n, Arc::new(tokio::sync::Semaphore::new(n as usize)));
        // On a replica the contract is the shared store's (exact across replicas); the local gate would count from
        // a ledger the replica does not write.
        let (gate, shared_gate) = match self.registry.shared() {
            Some(pg) => (
                None,
                SharedGate::new(pg.clone(), &record.id, &record.limits),
            ),
            None => (
                Gate::new(self.ledger.ledger().clone(), &record.id, &record.limits),
                None,
            ),
        };
        Ok(Arc::new(Entry {
            plugin,
            record: record.clone(),
            concurrency,
            gate,
            shared_gate,
            key,
            ledger: self.ledger.clone(),
        }))
    }
}

/// A duration in milliseconds with two decimals, for the load log.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}
