//! The SQLite index (`index.db`): its schema and migrations, the typed records read from it, and the connection
//! helpers every write goes through (the generation counter, the install history).
//!
//! By area: `db.rs` opens the database (schema, migrations, the generation counter, the history), `types.rs` holds
//! the records read from it, `plugins.rs` reads installed plugins, `install.rs` installs,
//! upgrades, rolls back and removes them, and `settings.rs` holds what the operator changes on an installed plugin
//! (grants, limits, enabled, config and secrets), `versions.rs` the rules for upgrades, and `artifacts.rs` the
//! digests of the compile cache's artifacts, `audit.rs` the hash chain over the history (the audit trail), `export.rs` reads it all out for `store migrate`. The trust store's keys table is read and written by
//! `trust.rs`.

mod artifacts;
pub(crate) mod audit;
mod db;
mod export;
mod install;
mod plugins;
mod settings;
pub(crate) mod tokens;
mod types;
mod versions;

pub use audit::{AuditCheck, AuditEntry};
pub use db::SCHEMA_VERSION;
pub(crate) use db::open;
pub use install::{InstallRequest, Source, capability_diff};
pub use plugins::{Runnable, check_plugin_id};
pub use tokens::{TOKEN_PREFIX, TokenRecord, TokenScope};
pub use types::{
    ConfigEntry, HistoryEntry, KeyRecord, PluginLimits, PluginRecord, Publisher, ToolContract,
    VersionRecord, Window,
};
pub use versions::{PublisherPin, UpgradeCheck, UpgradePolicy, VersionChange, compare_versions};
