//! The PostgreSQL store: what a cluster of plughost replicas shares (`--store postgres://…`). SQLite under the data
//! dir stays the embedded default; this is the backend beside it, behind the traits in [`crate::seam`].
//!
//! The driver is async (tokio-postgres with a deadpool pool) while the registry's API is synchronous and is called
//! from inside the host's tokio runtime, where blocking on another runtime panics. So the store owns its own small
//! runtime on its own thread, and every call is a future spawned there whose result comes back over a std channel:
//! safe from async and sync code alike, and bounded by [`CALL_TIMEOUT`] (a store that does not answer is
//! `unavailable`, never a hang).
//!
//! By area: `schema.rs` holds the versioned migrations, `ledger.rs` the one shared hash chain, `archive.rs` its
//! retention (signed archive files and the cut the live chain continues from), `contracts.rs` the
//! exact cross-replica admission of calls, `state.rs` plugin state, `index.rs` the registry index (plugins, versions, grants, limits,
//! config, components, audit trail), `notify.rs` change signals between replicas
//! (LISTEN/NOTIFY), `migrate.rs` moving a data dir's ledger in, `import.rs` its registry index, `versions.rs` upgrades, rollbacks and key
//! revocations, `tokens.rs` client tokens and reading the audit trail. `store.rs` opens the pool and runs calls,
//! `error.rs` says how a call failed. This file only names them.

mod archive;
mod contracts;
mod error;
mod import;
mod index;
mod ledger;
mod migrate;
mod notify;
mod schema;
mod state;
mod store;
mod tokens;
mod versions;

pub use archive::ArchiveError;
pub use contracts::{Admission, Scope, ScopeUse};
pub use error::{PgError, PgResult};
pub use import::{IndexDump, IndexImport, PluginDump, VersionDump};
pub use index::{ConfigRow, Refused, VersionRow};
pub use ledger::SHOW_MAX;
pub use notify::CHANNEL;
pub use schema::PG_SCHEMA_VERSION;
pub use store::{CALL_TIMEOUT, OPEN_TIMEOUT, POOL_SIZE, PgStore, is_url};
pub use tokens::{AuditRow, TokenRow};
pub use versions::RolledBack;
