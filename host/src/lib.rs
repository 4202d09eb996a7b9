//! plughost: a WebAssembly component plugin host.
//!
//! Every plugin is a component built against the `plughost:plugin` WIT contract in `wit/`. Each tool call runs in
//! a fresh wasmtime store with its own fuel budget, memory cap and deadline, and can reach the world only through
//! the host interfaces the operator granted.
//!
//! The house, top floor first (no module imports one above it):
//! - `gateway` (MCP over stdio and HTTP, `/metrics`) → `catalog` (installed plugins, live reload, contracts and the
//!   ledger around each call) and `quota` (the usage view);
//! - `runtime` (engine, compile cache, load and link, the call path, standby instances, the per-call store);
//! - `caps` (one module per WIT interface, each seeing the store only through its own view trait);
//! - `ledger` (the host's writer of call entries) and `contract` (calls and cost per window);
//! - `call` (what a call returns: output, typed errors, the result) and `report`;
//! - the registry (its own crate: trust, storage, and the `grants` and `units` it shares with the host, re-exported
//!   here), `settings`, `home`, `bindings`, `par` (work spread over the cores at start and reload).

pub mod bindings;
pub mod call;
pub mod caps;
pub mod catalog;
pub mod contract;
pub mod distribution;
pub mod docs;
pub mod gateway;
pub mod home;
pub mod json;
pub mod ledger;
pub mod par;
pub mod progress;
pub mod quota;
pub mod report;
pub mod retention;
pub mod runtime;
pub mod said;
pub mod settings;
pub mod status;

pub use call::{CallError, CallResult, Content, ToolOutput};
pub use catalog::Catalog;
pub use grants::{Capability, Grant, Grants};
pub use home::Home;
pub use plughost_registry as registry;
pub use plughost_registry::{grants, units};
pub use report::{CallReport, Outcome};
pub use runtime::{ComponentInfo, Host, Limits, LoadError, LoadedPlugin, Manifest, PluginSettings};
