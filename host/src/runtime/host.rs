//! [`Host`]: one engine, the shared stores (state, the system probe, the ledger writer), the capabilities' host-wide
//! settings, the host's counters and the standby preparer. Opening and configuring it lives here; loading is in
//! `link.rs` and the call path in `run.rs`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use super::budget::MemoryBudget;
use super::engine::{CompileCache, HostEngine};
use super::standby::Preparer;
use super::stats::HostStats;
use crate::caps::CapsConfig;
use crate::caps::state::StateStore;
use crate::caps::system::SystemCtx;
use crate::home::Home;
use crate::ledger::LedgerWriter;

/// Failures opening the host.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The io error is said in the message, not chained as a source as well (it would print twice).
    #[error("data dir {path}: {error}")]
    Home { path: String, error: std::io::Error },
    #[error(transparent)]
    Engine(#[from] super::engine::EngineError),
    #[error(transparent)]
    State(#[from] crate::caps::state::StoreError),
}

/// The host: one engine, the shared stores, and the call machinery.
#[derive(Debug, Clone)]
pub struct Host {
    pub(super) engine: HostEngine,
    pub(super) state: Arc<StateStore>,
    pub(super) system: SystemCtx,
    pub(super) caps: Arc<CapsConfig>,
    pub(super) next_call: Arc<AtomicU64>,
    /// Where plugins granted `ledger` append their events; `None` outside a catalog (ad-hoc calls of a file).
    pub(super) ledger: Option<Arc<LedgerWriter>>,
    /// Where denied capability calls go (the audit trail); `None` outside a catalog.
    pub(super) denials: Option<Arc<crate::caps::denials::DenialAudit>>,
    pub(super) stats: Arc<HostStats>,
    /// Builds each plugin's next instance ahead of its call and tears used stores down off the call's path;
    /// `None` for one-shot commands, which make one call and exit.
    pub(super) standby: Option<Arc<Preparer>>,
    /// Guest memory calls may reserve at once, shared by every plugin of this host.
    pub(super) memory: Arc<MemoryBudget>,
}

impl Host {
    fn with(engine: HostEngine, state: Arc<StateStore>) -> Host {
        Host {
            engine,
            state,
            system: SystemCtx::default(),
            caps: Arc::default(),
            next_call: Arc::new(AtomicU64::new(1)),
            ledger: None,
            denials: None,
            stats: Arc::default(),
            standby: Some(Arc::default()),
            memory: Arc::default(),
        }
    }

    /// The same host without standby instances: every call instantiates inline and drops its store before it
    /// returns. For one-shot commands (`plughost call`, `plughost test`), where a prepared next instance would
    /// never be used.
    pub fn without_standby(mut self) -> Host {
        self.standby = None;
        self
    }

    /// Creates the data dir and an engine whose compile cache lives there, with the artifacts' digests in the
    /// registry's index. Without a readable index nothing cached can be verified, so nothing is cached.
    fn home_engine(home: &Home) -> Result<HostEngine, HostError> {
        home.ensure().map_err(|error| HostError::Home {
            path: home.root().display().to_string(),
            error,
        })?;
        let cache = match plughost_registry::Registry::open(home.root()) {
            Ok(anchor) => Some(CompileCache::new(home.cache_dir(), Arc::new(anchor))),
            Err(e) => {
                tracing::warn!("compile cache off: cannot open the index that verifies it: {e}");
                None
            }
        };
        Ok(HostEngine::new(cache)?)
    }

    /// Opens the host on a data dir (compile cache and state live there).
    pub fn open(home: &Home) -> Result<Self, HostError> {
        let engine = Host::home_engine(home)?;
        let state = StateStore::open(&home.state_db())?;
        Ok(Host::with(engine, state))
    }

    /// Opens a cluster replica's host: the compile cache (and its verifying index) stay in this machine's data dir,
    /// plugin state lives in the shared store.
    pub fn open_shared(
        home: &Home,
        state: Arc<dyn plughost_registry::seam::StateBackend>,
    ) -> Result<Self, HostError> {
        let engine = Host::home_engine(home)?;
        Ok(Host::with(engine, StateStore::shared(state)?))
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

    /// Sets the host-wide budget for guest memory in flight (bytes); the default is half the machine's memory.
    pub fn set_memory_budget(&mut self, bytes: u64) {
        self.memory = Arc::new(MemoryBudget::new(bytes));
    }

    /// The host-wide budget for guest memory in flight.
    pub fn memory_budget(&self) -> &MemoryBudget {
        &self.memory
    }

    /// The host's own counters and the plugins' metrics.
    pub fn stats(&self) -> &Arc<HostStats> {
        &self.stats
    }

    /// The ledger plugins granted `ledger` append to (the catalog sets its own).
    pub fn set_ledger(&mut self, writer: Arc<LedgerWriter>) {
        self.ledger = Some(writer);
    }

    /// Where denied capability calls of plugins linked after this are recorded (the catalog sets its own).
    pub fn set_denials(&mut self, audit: Arc<crate::caps::denials::DenialAudit>) {
        self.denials = Some(audit);
    }

    pub fn engine(&self) -> &HostEngine {
        &self.engine
    }
}
