//! Opening `ledger.db` (migrations, WAL, mode 0600) and holding its connections: the writer and a reader; the
//! ledger's error type and constants.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use super::codec::{INSERT_COMPACT, Names, Stored};
use super::{Caller, Kind, NewEntry};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Largest event payload a plugin may append (bytes of JSON).
pub const MAX_EVENT_BYTES: usize = 16 * 1024;

const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE entries (
    seq          INTEGER PRIMARY KEY,
    time_ms      INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    plugin       TEXT NOT NULL,
    version      TEXT NOT NULL,
    digest       TEXT NOT NULL,
    tool         TEXT NOT NULL,
    transport    TEXT NOT NULL,
    session      TEXT,
    principal    TEXT,
    duration_us  INTEGER NOT NULL,
    fuel_used    INTEGER NOT NULL,
    peak_memory  INTEGER NOT NULL,
    outcome      TEXT NOT NULL,
    args_digest  TEXT,
    cost         INTEGER NOT NULL,
    event        TEXT,
    data         TEXT,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX entries_plugin_time ON entries (plugin, time_ms);
CREATE TABLE checkpoints (
    seq         INTEGER PRIMARY KEY,
    hash        TEXT NOT NULL,
    time_ms     INTEGER NOT NULL,
    key_name    TEXT NOT NULL,
    public_key  BLOB NOT NULL,
    signature   BLOB NOT NULL
);
",
    "
-- 2: periods across all plugins (stats, show --since) walk an index instead of the whole ledger.
CREATE INDEX entries_time ON entries (time_ms);
",
    "
-- 3: archive cuts. Entries up to `seq` were moved to an archive file; the live chain continues from `hash`. Each
-- row is a checkpoint of that entry (signed like the `checkpoints` rows; key and signature hex, as in the file).
CREATE TABLE cuts (
    seq         INTEGER PRIMARY KEY,
    hash        TEXT NOT NULL,
    time_ms     INTEGER NOT NULL,
    key_name    TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    signature   TEXT NOT NULL
);
",
    "
-- 4: per-minute totals of the counted calls (see query.rs) per plugin and tool, written in the append's transaction:
-- contracts and `ledger::usage()` sum a window from them instead of reading every entry in it.
CREATE TABLE minutes (
    plugin  TEXT NOT NULL,
    tool    TEXT NOT NULL,
    minute  INTEGER NOT NULL,
    calls   INTEGER NOT NULL,
    cost    INTEGER NOT NULL,
    fuel    INTEGER NOT NULL,
    PRIMARY KEY (plugin, minute, tool)
) WITHOUT ROWID;
INSERT INTO minutes (plugin, tool, minute, calls, cost, fuel)
    SELECT plugin, tool, (time_ms - ((time_ms % 60000) + 60000) % 60000) / 60000 AS m, COUNT(*), SUM(cost),
           SUM(fuel_used)
    FROM entries WHERE kind = 'call' AND outcome NOT IN ('quota', 'busy')
    GROUP BY plugin, m, tool;
",
];

/// The span of one row of per-minute totals (`minutes`), in milliseconds.
pub const MINUTE_MS: i64 = 60_000;

/// Schema 5, the compact entries (codec.rs), is not SQL alone: the rows are converted in Rust, in batches of
/// [`MIGRATE_BATCH`] entries, one transaction each, into `entries_compact`; the last batch swaps the tables. A
/// migration cut short continues where it stopped the next time the ledger is opened.
const COMPACT_VERSION: usize = MIGRATIONS.len() + 1;
/// Entries converted per transaction by the migration to schema 5.
pub const MIGRATE_BATCH: usize = 20_000;
const COMPACT_TABLES: &str = "
CREATE TABLE IF NOT EXISTS names (
    id     INTEGER PRIMARY KEY,
    value  TEXT NOT NULL UNIQUE
);
INSERT OR IGNORE INTO names (id, value) VALUES (1, 'ok'), (2, 'quota'), (3, 'busy');
CREATE TABLE IF NOT EXISTS entries_compact (
    seq          INTEGER PRIMARY KEY,
    time_ms      INTEGER NOT NULL,
    kind         INTEGER NOT NULL,
    plugin       INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    digest       INTEGER NOT NULL,
    tool         INTEGER NOT NULL,
    transport    INTEGER NOT NULL,
    session      INTEGER,
    principal    INTEGER,
    duration_us  INTEGER NOT NULL,
    fuel_used    INTEGER NOT NULL,
    peak_memory  INTEGER NOT NULL,
    outcome      INTEGER NOT NULL,
    args_digest  BLOB,
    cost         INTEGER NOT NULL,
    event        INTEGER,
    data         TEXT,
    hash         BLOB NOT NULL
);
";
const COMPACT_SWAP: &str = "
DROP TABLE entries;
ALTER TABLE entries_compact RENAME TO entries;
CREATE INDEX entries_plugin_time ON entries (plugin, time_ms);
CREATE INDEX entries_time ON entries (time_ms);
";

/// Converts the next batch of schema-4 entries (text columns) into `entries_compact`; after the last one, swaps the
/// tables and sets the schema version. True when done.
fn compact_batch(conn: &mut Connection) -> Result<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version as usize >= COMPACT_VERSION {
        return Ok(true);
    }
    tx.execute_batch(COMPACT_TABLES)?;
    let done: i64 = tx.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM entries_compact",
        [],
        |r| r.get(0),
    )?;
    let rows = {
        let mut stmt = tx.prepare(
            "SELECT seq, time_ms, kind, plugin, version, digest, tool, transport, session, principal, duration_us, \
             fuel_used, peak_memory, outcome, args_digest, cost, event, data, hash FROM entries WHERE seq > ?1 \
             ORDER BY seq LIMIT ?2",
        )?;
        stmt.query_map(params![done, MIGRATE_BATCH as i64], |r| {
            let kind: String = r.get(2)?;
            Ok((
                r.get::<_, i64>(0)? as u64,
                NewEntry {
                    time_ms: r.get(1)?,
                    kind: Kind::parse(&kind).unwrap_or(Kind::Event),
                    plugin: r.get(3)?,
                    version: r.get(4)?,
                    digest: r.get(5)?,
                    tool: r.get(6)?,
                    caller: Caller {
                        transport: r.get(7)?,
                        session: r.get(8)?,
                        principal: r.get(9)?,
                    },
                    duration_us: r.get::<_, i64>(10)? as u64,
                    fuel_used: r.get::<_, i64>(11)? as u64,
                    peak_memory: r.get::<_, i64>(12)? as u64,
                    outcome: r.get(13)?,
                    args_digest: r.get(14)?,
                    cost: r.get::<_, i64>(15)? as u64,
                    event: r.get(16)?,
                    data: r.get(17)?,
                },
                r.get::<_, String>(18)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?
    };
    let mut names = Names::default();
    for (seq, e, hash) in &rows {
        Stored::insert(&tx, &mut names, INSERT_COMPACT, *seq, e, hash)?;
    }
    let last = rows.len() < MIGRATE_BATCH;
    if last {
        tx.execute_batch(COMPACT_SWAP)?;
        tx.pragma_update(None, "user_version", COMPACT_VERSION as i64)?;
    }
    tx.commit()?;
    Ok(last)
}

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
}

impl Ledger {
    /// Opens (creating, 0600) `ledger.db` in `dir`.
    pub fn open(dir: &Path) -> Result<Ledger> {
        let path = dir.join("ledger.db");
        let corrupt = |e: &dyn std::fmt::Display| LedgerError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        };
        if !path.exists() {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::create_dir_all(dir).map_err(|source| LedgerError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            let _ = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path);
        }
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| corrupt(&e))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| corrupt(&e))?;
        // WAL + NORMAL: a committed (acknowledged) entry survives the process being killed (kill -9, a crash);
        // only an OS crash or power loss can drop the last commits, and the chain stays verifiable. FULL would put
        // an fsync on every call's path.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: usize =
            tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
        if version > COMPACT_VERSION {
            return Err(corrupt(&format!(
                "schema version {version} is newer than this plughost knows; upgrade plughost"
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        if version < COMPACT_VERSION {
            while !compact_batch(&mut conn)? {}
        }
        let read = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| corrupt(&e))?;
        read.busy_timeout(Duration::from_secs(10))?;
        // Every write by the writer connection invalidates this connection's page cache; mapping the file makes
        // the re-read a page-table walk instead of read() calls.
        let _ = read.pragma_update(None, "mmap_size", 256i64 << 20);
        Ok(Ledger {
            path,
            conn: Mutex::new(conn),
            read: Mutex::new(read),
            checkpointer: Mutex::new(None),
            names: Mutex::new(Names::default()),
        })
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
