//! plughost: a WebAssembly component plugin host.
//!
//! Every plugin is a component built against the `plughost:plugin` WIT contract in `wit/`. Each tool call runs in
//! a fresh wasmtime store with its own fuel budget, memory cap and deadline, and can reach the world only through
//! the host interfaces the operator granted.

pub mod bindings;
mod cache;
pub mod caps;
pub mod catalog;
pub mod contract;
pub mod engine;
pub mod gateway;
pub mod home;
pub mod ledger;
pub mod limits;
pub mod plugin;
pub mod quota;
pub mod report;
pub mod runtime;
pub mod settings;
mod standby;
pub mod store;

pub use catalog::Catalog;
pub use grants::{Capability, Grant, Grants};
pub use home::Home;
pub use limits::Limits;
pub use plughost_registry as registry;
pub use plughost_registry::{grants, units};
pub use plugin::{ComponentInfo, LoadError, LoadedPlugin, Manifest, PluginSettings};
pub use report::{CallReport, Outcome};
pub use runtime::{CallError, CallResult, Host, ToolOutput};
