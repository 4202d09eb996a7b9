//! Host bindings generated from the one `wit/` tree.
//!
//! Every import is async (HTTP, Docker and timers are) and trappable (a host bug or a host-side limit becomes a trap,
//! which the runtime turns into a typed outcome). Exports are called with `call_async` semantics.

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use self::exports::plughost::plugin::tools;
pub use self::plughost::plugin::{
    config, container, http, ledger, log, metrics, state, system, types,
};

/// The version of `plughost:plugin` this host was built from.
pub const WIT_VERSION: &str = "0.1.0";
/// The package name every plughost interface lives in.
pub const WIT_PACKAGE: &str = "plughost:plugin";
