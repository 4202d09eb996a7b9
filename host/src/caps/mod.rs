//! Host capabilities: one module per WIT interface, each with its own context and `add_to_linker` (the shape of
//! wasmtime-wasi). A plugin's linker holds only the interfaces it was granted.
//!
//! A capability never sees the runtime's store type (nor this module): each is generic over its own view trait
//! (`log::LogView`, `http::HttpView`, …: the wasmtime-wasi `WasiView` shape), which the runtime's store data
//! implements by handing out the capability's host struct — the call's [`view::CallCtx`] (plugin, call id,
//! deadline, counters) plus that capability's own context from the plugin's [`PluginEnv`]. All per-plugin capability setup is here
//! ([`CapsConfig::plugin_env`], [`add_granted_to_linker`]): a new capability is its WIT interface, its module, a
//! line in `grants` and a line in each of those two.

pub mod config;
pub mod container;
pub mod denials;
pub mod http;
pub mod ledger;
pub mod log;
pub mod metrics;
pub mod progress;
pub mod state;
pub mod system;
pub mod view;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use plughost_registry::Window;
use wasmtime::component::Linker;

use crate::grants::{Capability, Grant, Grants};
use crate::ledger::LedgerWriter;

/// Every capability's view, together: what a store must implement to link any granted capability.
pub trait CapViews:
    log::LogView
    + config::ConfigView
    + metrics::MetricsView
    + state::StateView
    + system::SystemView
    + http::HttpView
    + container::ContainerView
    + ledger::LedgerView
{
}

impl<T> CapViews for T where
    T: log::LogView
        + config::ConfigView
        + metrics::MetricsView
        + state::StateView
        + system::SystemView
        + http::HttpView
        + container::ContainerView
        + ledger::LedgerView
{
}

/// The host-wide things a plugin's capabilities draw on, owned by the runtime and shared by every plugin.
#[derive(Debug)]
pub struct Shared<'a> {
    /// The key-value store behind `state`.
    pub state: &'a Arc<state::StateStore>,
    /// The probe behind `system`.
    pub system: &'a system::SystemCtx,
    /// This plugin's `metrics` registry (kept across relinks).
    pub metrics: Arc<metrics::MetricsRegistry>,
    /// Where `ledger` events go; `None` outside a catalog.
    pub ledger: Option<Arc<LedgerWriter>>,
    /// Where denied capability calls are recorded; `None` outside a catalog.
    pub denials: Option<Arc<denials::DenialAudit>>,
}

/// What identifies the plugin being linked, for the capabilities that record it.
#[derive(Debug)]
pub struct PluginIdentity<'a> {
    pub id: &'a str,
    pub version: &'a str,
    /// `blake3:<hex>` of the component.
    pub digest: String,
    /// The window `ledger.usage()` covers.
    pub window: Window,
}

/// Why a capability cannot be linked.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("linking `{cap}` failed: {message}")]
    Wasmtime { cap: Capability, message: String },
}

/// Everything a plugin's calls share: its identity and the contexts of the capabilities it was granted.
#[derive(Debug)]
pub struct PluginEnv {
    pub id: Arc<str>,
    pub config: config::ConfigCtx,
    pub state: Option<state::StateCtx>,
    pub metrics: Option<metrics::MetricsCtx>,
    pub system: Option<system::SystemCtx>,
    pub http: Option<http::HttpCtx>,
    pub container: Option<container::ContainerCtx>,
    pub ledger: Option<ledger::LedgerCtx>,
    /// Where denied capability calls are recorded (the audit trail); `None` outside a catalog.
    pub denials: Option<Arc<denials::DenialAudit>>,
}

impl PluginEnv {
    /// The redactor for this plugin's secrets.
    pub fn redactor(&self) -> &config::Redactor {
        &self.config.redactor
    }
}

/// The host-wide settings of the network capabilities (the operator's, the same for every plugin).
#[derive(Debug, Clone, Default)]
pub struct CapsConfig {
    /// Per-call HTTP limits.
    pub http: http::HttpLimits,
    /// Host names pinned to addresses for `http` (like curl's `--resolve`); checked like DNS answers.
    pub http_resolve: Arc<BTreeMap<String, Vec<IpAddr>>>,
    /// The Docker engine and its time limits.
    pub container: container::ContainerConfig,
}

impl CapsConfig {
    /// The HTTP context for a plugin granted `grants`, if `http` is among them.
    fn http_ctx(&self, grants: &Grants) -> Option<http::HttpCtx> {
        let Some(Grant::Http { allow }) = grants.get(Capability::Http) else {
            return None;
        };
        Some(http::HttpCtx::new(
            allow.clone(),
            self.http,
            self.http_resolve.clone(),
        ))
    }

    /// The environment of a plugin granted `used` (only what it imports *and* was granted): one context per
    /// capability, built from the operator's settings and the host's shared stores.
    pub fn plugin_env(
        &self,
        plugin: PluginIdentity<'_>,
        used: &Grants,
        config: config::ConfigCtx,
        shared: Shared<'_>,
    ) -> Result<PluginEnv, LinkError> {
        let id: Arc<str> = Arc::from(plugin.id);
        let container = self.container_ctx(used, &id, &config);
        Ok(PluginEnv {
            config,
            state: used.state_quota().map(|quota_bytes| state::StateCtx {
                store: shared.state.clone(),
                quota_bytes,
            }),
            metrics: used
                .has(Capability::Metrics)
                .then_some(metrics::MetricsCtx {
                    registry: shared.metrics,
                }),
            system: used.has(Capability::System).then(|| shared.system.clone()),
            http: self.http_ctx(used),
            container,
            ledger: used.has(Capability::Ledger).then(|| ledger::LedgerCtx {
                writer: shared.ledger,
                version: plugin.version.to_string(),
                digest: plugin.digest,
                window: plugin.window,
            }),
            denials: shared.denials,
            id,
        })
    }

    /// The container context for plugin `id` granted `grants`, if `container` is among them. The plugin's own
    /// `docker_host` setting, if any, picks the engine.
    fn container_ctx(
        &self,
        grants: &Grants,
        id: &Arc<str>,
        config: &config::ConfigCtx,
    ) -> Option<container::ContainerCtx> {
        let Some(Grant::Container { ops, images }) = grants.get(Capability::Container) else {
            return None;
        };
        Some(container::ContainerCtx::new(
            id.clone(),
            *ops,
            images.clone(),
            &self.container,
            config.setting("docker_host"),
        ))
    }
}

/// Adds exactly the granted plughost interfaces to `linker` (WASI, with nothing open, is the runtime's).
pub fn add_granted_to_linker<T: CapViews + 'static>(
    linker: &mut Linker<T>,
    grants: &Grants,
) -> Result<(), LinkError> {
    for grant in grants.iter() {
        let cap = grant.capability();
        let r = match cap {
            Capability::Log => log::add_to_linker(linker),
            Capability::Metrics => metrics::add_to_linker(linker),
            Capability::State => state::add_to_linker(linker),
            Capability::Config => config::add_to_linker(linker),
            Capability::System => system::add_to_linker(linker),
            Capability::Http => http::add_to_linker(linker),
            Capability::Container => container::add_to_linker(linker),
            Capability::Ledger => ledger::add_to_linker(linker),
        };
        r.map_err(|e| LinkError::Wasmtime {
            cap,
            message: format!("{e:#}"),
        })?;
    }
    Ok(())
}
