//! The host runtime: loads components into plugins and runs every call in a fresh, metered store.
//!
//! - `host.rs`: [`Host`]: the engine, the shared stores and the host-wide settings; `run.rs`: the call path
//!   ([`Host::call`]): arguments checked, a standby or new store, the guest's `call`, the report.
//! - `link.rs`: compile (cached), `describe()`, and linking exactly the granted capabilities into a [`LoadedPlugin`].
//! - `engine.rs`, `cache.rs`: the wasmtime engine, the epoch ticker and the on-disk compile cache.
//! - `offers.rs`, `reads.rs` (contract 0.2.0): the resources, templates and prompts a plugin offers, checked at
//!   load, and reading one or rendering one through [`Host::invoke`]'s path, exactly as a tool call runs.
//! - `plugin.rs`: what a loaded plugin is (manifest, component info, settings); `store.rs`: per-call store data, which
//!   implements every capability's view; `limits.rs`: fuel, memory and time limits; `standby.rs`: instances prepared
//!   ahead of a call; `stats.rs`: the host's own counters; `trap.rs`: traps as typed outcomes; `output.rs`: the
//!   guest's output checked, bounded and redacted; `warm.rs`: benchmark-only warm calls.

pub mod budget;
pub mod cache;
pub mod engine;
mod host;
pub mod limits;
mod link;
pub mod offers;
mod output;
pub mod plugin;
pub mod reads;
mod run;
pub(crate) mod standby;
pub mod stats;
pub mod store;
mod trap;
mod warm;

pub use engine::{CacheOutcome, HostEngine};
pub use host::{Host, HostError};
pub use limits::Limits;
pub use link::CompileInfo;
pub use plugin::{ComponentInfo, LoadError, LoadedPlugin, Manifest, PluginSettings};
pub use run::{cancellable, with_progress};
pub use stats::{HostStats, HostStatsSnapshot};
pub use warm::{pace, warm_calls, warm_calls_paced};
