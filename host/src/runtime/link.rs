//! Loading a plugin: compile (or load from the verified cache), inspect, run `describe()` with nothing granted, and
//! link exactly the capabilities the component imports and the operator granted into a [`LoadedPlugin`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use wasmtime::component::{Component, Linker};

use super::engine::CacheOutcome;
use super::host::Host;
use super::limits::Limits;
use super::offers::Offers;
use super::plugin::{
    ComponentInfo, LoadError, LoadedPlugin, Manifest, PluginSettings, check_header,
    inspect_component,
};
use super::store::StoreData;
use super::trap::classify_trap;
use crate::bindings::PluginPre;
use crate::call::CallError;
use crate::caps::config::ConfigCtx;
use crate::caps::{PluginEnv, PluginIdentity, Shared, add_granted_to_linker};
use crate::grants::Capability;

/// How a component got compiled while loading.
#[derive(Debug, Clone, Copy)]
pub struct CompileInfo {
    pub outcome: CacheOutcome,
    pub time: Duration,
}

/// Limits used for `describe()`: small, because it only returns a manifest.
const DESCRIBE_LIMITS: Limits = Limits {
    fuel: 2_000_000_000,
    memory_bytes: 512 << 20,
    timeout: Duration::from_secs(30),
    max_output_bytes: 4 << 20,
    max_output_blocks: super::limits::DEFAULT_MAX_OUTPUT_BLOCKS,
    max_log_lines: 20,
    max_log_line_bytes: 1024,
};

impl Host {
    /// Compiles (or loads from cache) and inspects a component. No guest code runs.
    pub fn compile(
        &self,
        bytes: &[u8],
        on_compile: impl FnOnce(),
    ) -> Result<(Component, ComponentInfo, CompileInfo), LoadError> {
        let digest = blake3::hash(bytes).to_hex().to_string();
        self.compile_as(bytes, &digest, on_compile)
    }

    /// [`Host::compile`] of bytes already checked against their blake3 hex `digest` (the blob store checks what it
    /// reads), without hashing them again.
    pub fn compile_known(
        &self,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(Component, ComponentInfo, CompileInfo), LoadError> {
        self.compile_as(bytes, digest, || {})
    }

    fn compile_as(
        &self,
        bytes: &[u8],
        digest: &str,
        on_compile: impl FnOnce(),
    ) -> Result<(Component, ComponentInfo, CompileInfo), LoadError> {
        check_header(bytes)?;
        let (component, outcome, time) = self.engine.compile(bytes, digest, on_compile)?;
        match outcome {
            CacheOutcome::Hit => &self.stats.cache_hits,
            CacheOutcome::Rejected => &self.stats.cache_corrupt,
            CacheOutcome::Compiled | CacheOutcome::Uncached => &self.stats.cache_misses,
        }
        .fetch_add(1, Ordering::Relaxed);
        let info = inspect_component(self.engine.engine(), &component, digest, bytes)?;
        Ok((component, info, CompileInfo { outcome, time }))
    }

    /// Runs the component's `describe()` with no capability linked: any plughost import it calls traps.
    pub async fn describe(&self, component: &Component) -> Result<Manifest, LoadError> {
        let mut linker = Linker::<StoreData>::new(self.engine.engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| LoadError::Instantiate(crate::said::once(e.chain())))?;
        stub_plughost_imports(&mut linker, component, self.engine.engine())
            .map_err(|e| LoadError::Instantiate(crate::said::once(e.chain())))?;
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| LoadError::Instantiate(crate::said::once(e.chain())))?;
        let pre = PluginPre::new(pre)
            .map_err(|e| LoadError::Instantiate(crate::said::once(e.chain())))?;
        let env = Arc::new(PluginEnv {
            id: Arc::from("(describe)"),
            config: ConfigCtx::default(),
            state: None,
            metrics: None,
            system: None,
            http: None,
            container: None,
            ledger: None,
            denials: None,
        });
        let (mut store, started) = self.new_store(env, &DESCRIBE_LIMITS);
        let _guest = self.engine.guest_running();
        let limits = DESCRIBE_LIMITS;
        // One instance answers all three: the tool manifest, and (contract 0.2.0) the resources and prompts lists.
        let run = async {
            let instance = pre.instantiate_async(&mut store).await?;
            let manifest = instance
                .plughost_plugin_tools(&mut store)?
                .call_describe(&mut store)
                .await?;
            let listing = match instance.plughost_plugin_resources(&mut store)? {
                Some(r) => Some(r.call_list(&mut store).await?),
                None => None,
            };
            let prompts = match instance.plughost_plugin_prompts(&mut store)? {
                Some(p) => Some(p.call_list(&mut store).await?),
                None => None,
            };
            wasmtime::Result::<_>::Ok((manifest, listing, prompts))
        };
        let (raw, listing, prompts) = match tokio::time::timeout(limits.timeout, run).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return Err(describe_failure(&e, &store, &limits, started)),
            Err(_) => {
                return Err(LoadError::Describe(
                    CallError::Deadline {
                        timeout_ms: limits.timeout.as_millis() as u64,
                    }
                    .to_string(),
                ));
            }
        };
        let mut manifest = Manifest::try_from(raw)?;
        let mut problems = Vec::new();
        manifest.offers = Offers::check(listing, prompts, &mut problems);
        if !problems.is_empty() {
            return Err(LoadError::BadManifest(problems.join("; ")));
        }
        Ok(manifest)
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
            .map_err(|e| LoadError::Instantiate(crate::said::once(e.chain())))?;
        // Only what the component imports *and* the operator granted: a grant it does not use stays unlinked.
        let mut used = settings.grants.clone();
        for cap in Capability::ALL {
            if !info.capabilities.contains(&cap) {
                used.revoke(cap);
            }
        }
        add_granted_to_linker(&mut linker, &used)?;
        // `progress` needs no grant: linked for every component (unused when it does not import it).
        crate::caps::progress::add_to_linker(&mut linker)
            .map_err(|e| LoadError::Instantiate(crate::said::once(e.chain())))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Instantiate(crate::said::once(e.chain())))?;
        let pre = PluginPre::new(pre)
            .map_err(|e| LoadError::Instantiate(crate::said::once(e.chain())))?;
        let config = ConfigCtx::new(settings.config.clone(), settings.secrets.clone());
        let identity = PluginIdentity {
            id: &manifest.id,
            version: &manifest.version,
            digest: format!("blake3:{}", info.digest),
            window: settings.window.unwrap_or(plughost_registry::Window::Day),
        };
        let shared = Shared {
            state: &self.state,
            system: &self.system,
            metrics: self.stats.registry(&manifest.id),
            ledger: self.ledger.clone(),
            denials: self.denials.clone(),
        };
        let env = Arc::new(self.caps.plugin_env(identity, &used, config, shared)?);
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
}

/// A plughost import called inside `describe()`, where nothing is granted yet.
#[derive(Debug, thiserror::Error)]
#[error(
    "describe() called `{0}`, but no capability is granted during describe(): it must only return the manifest \
     (log, read config and use other capabilities inside `call`)"
)]
struct CapabilityInDescribe(String);

/// Why `describe()` failed, in the plugin author's terms: a capability it called, a `tools` export whose types do
/// not match the contract, a manifest too large to copy out of the guest, or the trap as a call would report it.
fn describe_failure(
    e: &wasmtime::Error,
    store: &wasmtime::Store<StoreData>,
    limits: &Limits,
    started: std::time::Instant,
) -> LoadError {
    if let Some(cap) = e.downcast_ref::<CapabilityInDescribe>() {
        return LoadError::Describe(cap.to_string());
    }
    let text = crate::said::once(e.chain());
    // wasmtime's own words for these two (checked by tests/tests/describe.rs against the pinned wasmtime).
    if text.contains("failed to convert function to given type") {
        return LoadError::WrongExportTypes(text);
    }
    if text.contains("too much data is being copied") {
        return LoadError::Describe(format!(
            "the manifest is too large to copy out of the guest ({text}); keep descriptions under {} and schemas \
             under {}",
            crate::units::human_bytes(super::plugin::MAX_DESCRIPTION_BYTES as u64),
            crate::units::human_bytes(super::plugin::MAX_SCHEMA_BYTES as u64)
        ));
    }
    LoadError::Describe(classify_trap(e, store, limits, started).to_string())
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
                    Err(wasmtime::Error::new(CapabilityInDescribe(what.clone())))
                })?;
            }
        }
    }
    Ok(())
}
