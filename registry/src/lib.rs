//! plughost's trust and storage. No wasmtime here: the registry knows bytes, digests, keys, signatures and what the
//! operator approved; the host inspects components and hands the registry what it found.
//!
//! Grants are typed here ([`grants`], with the size and duration units they use in [`units`]): the registry parses the
//! grant strings it stores to check them against what the publisher declared.
//!
//! Layout under the data dir:
//! - `blobs/` — components by blake3 digest ([`blobs::BlobStore`]);
//! - `index.db` — SQLite (WAL, mode 0600): plugins, versions, publisher keys, approved grants, limits, config and
//!   secrets, install history;
//! - `keys/` — the operator's own signing keys (`<name>.key`, 0600) and their public halves;
//! - `ledger.db` — the hash-chained usage ledger ([`ledger::Ledger`]).
//!
//! Modules: [`trust`] decides what is trusted (publisher keys, where a component came from, grants within what was
//! declared); [`index`] reads and writes `index.db`; [`signature`] and [`keys`] are the file formats of signatures
//! and keys; [`blobs`] the component store; [`ledger`] the usage ledger.

pub mod blobs;
mod error;
pub mod grants;
pub mod index;
pub mod keys;
pub mod ledger;
pub mod pg;
pub mod sealed;
pub mod seam;
pub mod signature;
pub mod trust;
pub mod units;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

pub use blobs::{BlobStore, Digest};
pub use error::{RegistryError, Result};
pub use grants::grant_kind;
pub use index::{
    AuditCheck, AuditEntry, ConfigEntry, HistoryEntry, InstallRequest, KeyRecord, PluginLimits,
    PluginRecord, Publisher, PublisherPin, Runnable, Source, TOKEN_PREFIX, TokenRecord, TokenScope,
    ToolContract, UpgradeCheck, UpgradePolicy, VersionChange, VersionRecord, Window,
    capability_diff, check_plugin_id, compare_versions,
};
pub use keys::{KeyPair, PublicKey};
pub use sealed::StoreKey;
pub use signature::{SignatureFile, SignerStatus, Statement, Verified};
pub use trust::Provenance;

/// The registry: one per data dir. Safe to share between threads; several processes may open the same data dir.
#[derive(Debug)]
pub struct Registry {
    root: PathBuf,
    blobs: BlobStore,
    db: Mutex<Connection>,
    /// The shared store of a cluster: when set, the index (plugins, versions, grants, limits, config, audit
    /// trail) and the components live there, and the data dir keeps only what is this machine's own (the compile
    /// cache's artifact digests, the operator's keys).
    shared: Option<Arc<pg::PgStore>>,
    /// The key secrets in the shared store are sealed with (held by the replicas and operators, never stored).
    store_key: Option<StoreKey>,
    /// On a shared store: whether any client token exists, as last read, with the index generation it was read at
    /// (see [`Registry::any_token`]).
    token_state: Mutex<Option<(i64, bool)>>,
    /// On a shared store: the newest index generation [`Registry::generation`] has seen.
    seen_generation: std::sync::atomic::AtomicI64,
    /// On SQLite: the last "no token" answer, with the WAL-index header it was read under (see
    /// [`Registry::any_token`]).
    token_no: Mutex<Option<[u8; index::tokens::WAL_INDEX_HEADER]>>,
    /// On SQLite: tokens presented and found, by hash, with the WAL-index header they were read under (see
    /// [`Registry::check_token`]).
    token_hits: Mutex<index::tokens::TokenHits>,
    /// `index.db-shm`, opened on first use by [`Registry::any_token`]; `None` inside if it could not be.
    shm: std::sync::OnceLock<Option<std::fs::File>>,
}

impl Registry {
    /// Opens the registry in `root` (created if missing).
    pub fn open(root: impl Into<PathBuf>) -> Result<Registry> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(error::io(&root))?;
        let blobs = BlobStore::open(root.join("blobs"))?;
        let conn = index::open(&root.join("index.db"))?;
        Ok(Registry {
            root,
            blobs,
            db: Mutex::new(conn),
            shared: None,
            store_key: None,
            token_state: Mutex::new(None),
            seen_generation: std::sync::atomic::AtomicI64::new(i64::MIN),
            token_no: Mutex::new(None),
            token_hits: Mutex::new(index::tokens::TokenHits::default()),
            shm: std::sync::OnceLock::new(),
        })
    }

    /// Opens the registry of a cluster: the index in `store`, this machine's own files in `root`. Without `key`,
    /// secrets can be neither set nor read (a plugin that has one does not load).
    pub fn open_shared(
        root: impl Into<PathBuf>,
        store: Arc<pg::PgStore>,
        key: Option<StoreKey>,
    ) -> Result<Registry> {
        let mut r = Registry::open(root)?;
        r.shared = Some(store);
        r.store_key = key;
        Ok(r)
    }

    /// The store key, or why a secret cannot be sealed or opened without it.
    pub(crate) fn store_key(&self, plugin: &str, name: &str) -> Result<&StoreKey> {
        self.store_key.as_ref().ok_or_else(|| {
            RegistryError::StoreKey(format!(
                "the secret `{name}` of plugin `{plugin}` is sealed in the shared store with the cluster's store \
                 key, and this plughost has none: give it --store-key FILE (or PLUGHOST_STORE_KEY=FILE)"
            ))
        })
    }

    /// The shared store, when this registry is a cluster's.
    pub fn shared(&self) -> Option<&Arc<pg::PgStore>> {
        self.shared.as_ref()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the operator's own signing keys live.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }
}
