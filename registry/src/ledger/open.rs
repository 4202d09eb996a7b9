//! Opening `ledger.db`: created with mode 0600, WAL, and its schema migrated — SQL migrations 1 to 4, then the
//! compact entries of schema 5 (codec.rs), converted in Rust in resumable batches.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};

use super::codec::{INSERT_COMPACT, Stored, pack_hash};
use super::names::Names;
use super::{Caller, Kind, Ledger, LedgerError, NewEntry, Result};

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
-- 4: per-minute totals of the counted calls (see query.rs) per plugin, tool and principal ('' for none), written in
-- the append's transaction: contracts and `ledger::usage()` sum a window from them instead of reading every entry.
CREATE TABLE minutes (
    plugin    TEXT NOT NULL,
    tool      TEXT NOT NULL,
    principal TEXT NOT NULL,
    minute    INTEGER NOT NULL,
    calls     INTEGER NOT NULL,
    cost      INTEGER NOT NULL,
    fuel      INTEGER NOT NULL,
    PRIMARY KEY (plugin, minute, tool, principal)
) WITHOUT ROWID;
INSERT INTO minutes (plugin, tool, principal, minute, calls, cost, fuel)
    SELECT plugin, tool, COALESCE(principal, ''), (time_ms - ((time_ms % 60000) + 60000) % 60000) / 60000 AS m,
           COUNT(*), SUM(cost), SUM(fuel_used)
    FROM entries WHERE kind = 'call' AND outcome NOT IN ('quota', 'busy')
    GROUP BY plugin, m, tool, COALESCE(principal, '');
",
];

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
    let mut insert = tx.prepare(INSERT_COMPACT)?;
    for (seq, e, hash) in &rows {
        Stored::insert(&mut insert, &tx, &mut names, *seq, e, pack_hash(hash))?;
    }
    drop(insert);
    let last = rows.len() < MIGRATE_BATCH;
    if last {
        tx.execute_batch(COMPACT_SWAP)?;
        tx.pragma_update(None, "user_version", COMPACT_VERSION as i64)?;
    }
    tx.commit()?;
    Ok(last)
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
        let ledger = Ledger::assemble(path, conn, read);
        // Whoever opens the ledger reads every entry acknowledged before, spooled or not. One that cannot be moved
        // now (a read-only ledger, a changed spool file) stays where it is; `verify` says why.
        let _ = ledger.move_all_spools();
        Ok(ledger)
    }
}
