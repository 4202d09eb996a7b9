//! Holding `ledger.db`'s connections (opened by open.rs): the writer and a reader; the spool's state (spool.rs); the
//! ledger's error type and constants.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::Connection;

use super::names::Names;

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Largest event payload a plugin may append (bytes of JSON).
pub const MAX_EVENT_BYTES: usize = 16 * 1024;

/// The span of one row of per-minute totals (`minutes`), in milliseconds.
pub const MINUTE_MS: i64 = 60_000;

/// A ledger error.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger {path} is unreadable or corrupted: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("ledger database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("event kind must be 1-64 characters of a-z, 0-9, '.', '_' or '-': `{0}`")]
    BadEventKind(String),
    #[error("event data is {0} bytes; the limit is {MAX_EVENT_BYTES}")]
    EventTooLarge(usize),
    #[error("event data is not JSON: {0}")]
    EventNotJson(String),
    #[error("the ledger is empty: nothing to checkpoint")]
    Empty,
    #[error(
        "entries younger than 31 days stay in the live ledger (contracts' windows read them); archive before an older date"
    )]
    TooRecent,
    #[error(
        "the chain is broken at entry {seq}: run `plughost ledger verify`; nothing was archived"
    )]
    Broken { seq: u64 },
    #[error("the ledger {path} is read-only: no entry can be written to it")]
    ReadOnly { path: PathBuf },
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// This process's spool file.
#[derive(Debug)]
pub(super) struct Own {
    pub(super) file: std::fs::File,
    pub(super) name: String,
    /// Bytes written to it.
    pub(super) len: u64,
    /// Files made so far (the `<n>` of the next name).
    pub(super) made: u64,
}

/// A process's spool (spool.rs).
#[derive(Debug)]
pub(super) struct Spool {
    pub(super) dir: PathBuf,
    pub(super) own: Mutex<Own>,
    /// Bytes written to `own` and not yet moved (by this process; another may have moved them meanwhile, which the
    /// next move finds).
    pub(super) unmoved: std::sync::atomic::AtomicU64,
    /// Why the last move failed, until one works.
    pub(super) failed: Mutex<Option<String>>,
    /// The mover thread, woken when the spool stops being empty.
    pub(super) mover: Mutex<Option<std::thread::Thread>>,
}

/// The ledger.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// A second connection for queries: with WAL, readers do not wait for the writer's transaction (contract checks
    /// run on every call while the writer commits).
    read: Mutex<Connection>,
    /// Opened on first use by a WAL checkpoint (wal.rs).
    pub(super) checkpointer: Mutex<Option<Connection>>,
    /// The `names` table, cached (codec.rs).
    names: Mutex<Names>,
    /// The WAL's size after the writer's last commit, as SQLite's WAL hook reports it (wal.rs); `u64::MAX` until
    /// the hook is installed, and then the file is asked.
    pub(super) wal_after_commit: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Commits the WAL hook has seen (wal.rs).
    pub(super) wal_commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// This process's spool, once started (spool.rs).
    pub(super) spool: std::sync::OnceLock<Spool>,
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.close_spool();
    }
}

impl Ledger {
    /// The ledger on connections `open.rs` opened and migrated.
    pub(super) fn assemble(path: PathBuf, conn: Connection, read: Connection) -> Ledger {
        Ledger {
            path,
            conn: Mutex::new(conn),
            read: Mutex::new(read),
            checkpointer: Mutex::new(None),
            names: Mutex::new(Names::default()),
            wal_after_commit: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(u64::MAX)),
            wal_commits: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
            spool: std::sync::OnceLock::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks that an entry could be written now, without writing one: the database is not read-only to SQLite
    /// (a write-protected file or file system, or a file SQLite itself treats as read-only) and its write lock can be
    /// taken (`BEGIN IMMEDIATE`, then `ROLLBACK`: nothing reaches the disk). A full disk is not seen here; the host
    /// checks free space itself.
    pub fn check_writable(&self) -> Result<()> {
        let conn = self.conn();
        if conn.is_readonly(rusqlite::MAIN_DB)? {
            return Err(LedgerError::ReadOnly {
                path: self.path.clone(),
            });
        }
        conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK")?;
        Ok(())
    }

    pub(super) fn names(&self) -> std::sync::MutexGuard<'_, Names> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.read.lock().unwrap_or_else(|p| p.into_inner())
    }
}
