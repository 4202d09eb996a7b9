//! Host capabilities: one module per WIT interface, each with its own context and `add_to_linker`
//! (the shape of wasmtime-wasi). A plugin's linker holds only the interfaces it was granted.

pub mod config;
pub mod container;
pub mod http;
pub mod ledger;
pub mod log;
pub mod metrics;
pub mod state;
pub mod system;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use wasmtime::component::Linker;

use crate::grants::{Capability, Grant, Grants};
use crate::store::StoreData;

/// Why a capability cannot be linked.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("linking `{cap}` failed: {message}")]
    Wasmtime { cap: Capability, message: String },
    #[error("setting up `{cap}` failed: {message}")]
    Setup { cap: Capability, message: String },
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
    pub(crate) fn http_ctx(&self, grants: &Grants) -> Result<Option<http::HttpCtx>, LinkError> {
        let Some(Grant::Http { allow }) = grants.get(Capability::Http) else {
            return Ok(None);
        };
        http::HttpCtx::new(allow.clone(), self.http, self.http_resolve.clone())
            .map(Some)
            .map_err(|e| LinkError::Setup {
                cap: Capability::Http,
                message: e.to_string(),
            })
    }

    /// The container context for plugin `id` granted `grants`, if `container` is among them. The plugin's own
    /// `docker_host` setting, if any, picks the engine.
    pub(crate) fn container_ctx(
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

/// Adds WASI (nothing open) and exactly the granted plughost interfaces to `linker`.
pub fn add_granted_to_linker(
    linker: &mut Linker<StoreData>,
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

/// Truncates `s` to at most `max` bytes on a char boundary.
pub(crate) fn truncate_str(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}
