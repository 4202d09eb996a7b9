//! The usage ledger: one append-only, hash-chained record of every tool call and every domain event a plugin
//! appended, in `ledger.db` (SQLite, WAL, mode 0600).
//!
//! Each entry's hash is blake3 over a canonical encoding of all its fields, its sequence number and the previous
//! entry's hash, so [`Ledger::verify`] finds any modified, deleted, inserted or reordered entry and names the first bad
//! sequence number. A checkpoint is the chain head signed with an ed25519 key, so a copy of the ledger can be verified
//! offline and a truncated tail is noticed. The ledger never stores call arguments or secrets: only a digest of the
//! arguments.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::keys::{KeyPair, PublicKey};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Largest event payload a plugin may append (bytes of JSON).
pub const MAX_EVENT_BYTES: usize = 16 * 1024;
const DOMAIN: &[u8] = b"plughost-ledger-v1\0";
const CHECKPOINT_DOMAIN: &[u8] = b"plughost-ledger-checkpoint-v1\0";

const MIGRATIONS: &[&str] = &["
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
"];

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
}

pub type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// Who made a call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// `cli`, `stdio`, `http`.
    pub transport: String,
    /// The MCP session (or client) id, if there is one.
    pub session: Option<String>,
    /// The authenticated principal, if any.
    pub principal: Option<String>,
}

/// What kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A tool call (successful or not).
    Call,
    /// A domain event a plugin appended through the `ledger` capability.
    Event,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Call => "call",
            Kind::Event => "event",
        }
    }
    fn parse(s: &str) -> Option<Kind> {
        match s {
            "call" => Some(Kind::Call),
            "event" => Some(Kind::Event),
            _ => None,
        }
    }
}

/// An entry to append; the ledger assigns `seq`, `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEntry {
    pub time_ms: i64,
    pub kind: Kind,
    pub plugin: String,
    pub version: String,
    pub digest: String,
    pub tool: String,
    pub caller: Caller,
    pub duration_us: u64,
    pub fuel_used: u64,
    pub peak_memory: u64,
    /// `ok`, or the error kind (`out-of-fuel`, `denied`, `busy`, …). `event` for events.
    pub outcome: String,
    /// blake3 of the call's argument JSON, never the arguments.
    pub args_digest: Option<String>,
    /// Cost in tokens charged by the plugin's contract.
    pub cost: u64,
    /// For events: the event kind.
    pub event: Option<String>,
    /// For events: the JSON payload (bounded).
    pub data: Option<String>,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    #[serde(flatten)]
    pub entry: NewEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// The digest the ledger keeps of a call's arguments.
pub fn args_digest(arguments_json: &str) -> String {
    format!(
        "blake3:{}",
        blake3::hash(arguments_json.as_bytes()).to_hex()
    )
}

/// Checks an event before it is appended.
pub fn check_event(kind: &str, data: &str) -> Result<()> {
    if kind.is_empty()
        || kind.len() > 64
        || !kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return Err(LedgerError::BadEventKind(kind.to_string()));
    }
    if data.len() > MAX_EVENT_BYTES {
        return Err(LedgerError::EventTooLarge(data.len()));
    }
    serde_json::from_str::<serde_json::Value>(data)
        .map_err(|e| LedgerError::EventNotJson(e.to_string()))?;
    Ok(())
}

/// The canonical encoding hashed into an entry: a domain tag, then every field in a fixed order, each
/// length-prefixed (strings) or fixed-width (numbers), with a presence byte for optional fields.
fn entry_hash(seq: u64, e: &NewEntry, prev_hash: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(DOMAIN);
    h.update(&seq.to_le_bytes());
    let s = |h: &mut blake3::Hasher, v: &str| {
        h.update(&(v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    };
    let o = |h: &mut blake3::Hasher, v: &Option<String>| match v {
        Some(v) => {
            h.update(&[1]);
            h.update(&(v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
        None => {
            h.update(&[0]);
        }
    };
    s(&mut h, prev_hash);
    h.update(&e.time_ms.to_le_bytes());
    s(&mut h, e.kind.as_str());
    s(&mut h, &e.plugin);
    s(&mut h, &e.version);
    s(&mut h, &e.digest);
    s(&mut h, &e.tool);
    s(&mut h, &e.caller.transport);
    o(&mut h, &e.caller.session);
    o(&mut h, &e.caller.principal);
    h.update(&e.duration_us.to_le_bytes());
    h.update(&e.fuel_used.to_le_bytes());
    h.update(&e.peak_memory.to_le_bytes());
    s(&mut h, &e.outcome);
    o(&mut h, &e.args_digest);
    h.update(&e.cost.to_le_bytes());
    o(&mut h, &e.event);
    o(&mut h, &e.data);
    h.finalize().to_hex().to_string()
}

fn checkpoint_message(seq: u64, hash: &str, time_ms: i64) -> Vec<u8> {
    let mut m = CHECKPOINT_DOMAIN.to_vec();
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend_from_slice(hash.as_bytes());
    m.extend_from_slice(&time_ms.to_le_bytes());
    m
}

/// Filters for [`Ledger::entries`].
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub plugin: Option<String>,
    pub tool: Option<String>,
    pub outcome: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub kind: Option<Kind>,
    /// Newest `limit` entries (still returned oldest first); `None` = all.
    pub limit: Option<usize>,
}

/// What [`Ledger::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub entries: u64,
    pub head: Option<(u64, String)>,
    pub checkpoints: u64,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

/// A broken chain: the first sequence number where it breaks, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub seq: u64,
    pub reason: String,
}

/// A signed chain head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub time_ms: i64,
    pub key_name: String,
    pub fingerprint: String,
}

/// What a call that counts against a contract counts: calls that ran (not refused by a quota or as busy).
/// (A macro, not a const, so the queries below are `concat!`ed literals: no SQL is formatted per call.)
macro_rules! counted {
    () => {
        "kind = 'call' AND outcome NOT IN ('quota', 'busy')"
    };
}

/// One counted call, as contracts see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedCall {
    pub seq: u64,
    pub time_ms: i64,
    pub tool: String,
    pub cost: u64,
}

/// What one call used, for the quota view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallUsage {
    pub seq: u64,
    pub time_ms: i64,
    pub tool: String,
    pub fuel_used: u64,
    pub peak_memory: u64,
    pub duration_us: u64,
}

/// Usage of one plugin in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub calls: u64,
    pub fuel: u64,
    pub cost: u64,
}

/// The ledger.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// A second connection for queries: with WAL, readers do not wait for the writer's transaction (contract checks
    /// run on every call while the writer commits).
    read: Mutex<Connection>,
    /// Opened on first use by [`Ledger::checkpoint_wal`].
    checkpointer: Mutex<Option<Connection>>,
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
        if version > MIGRATIONS.len() {
            return Err(corrupt(&format!(
                "schema version {version} is newer than this plughost knows; upgrade plughost"
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(m)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
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
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands WAL checkpoints to [`Ledger::checkpoint_wal`], run by the caller off the commit path: a checkpoint
    /// copies the WAL into the database and fsyncs, which would otherwise land on whichever call's commit crosses
    /// the auto-checkpoint threshold. Until the connection closes, the caller must then checkpoint regularly.
    pub fn defer_checkpoints(&self) -> Result<()> {
        self.conn().pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(())
    }

    /// Runs a passive WAL checkpoint on a connection of its own (writers are not blocked).
    pub fn checkpoint_wal(&self) -> Result<()> {
        let mut c = self.checkpointer.lock().unwrap_or_else(|p| p.into_inner());
        if c.is_none() {
            let conn = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(Duration::from_secs(10))?;
            *c = Some(conn);
        }
        if let Some(conn) = c.as_ref() {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        }
        Ok(())
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.read.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends entries in one transaction (group commit) and returns their sequence numbers. Safe across processes:
    /// the chain head is read inside the write transaction.
    pub fn append(&self, entries: &[NewEntry]) -> Result<Vec<u64>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (mut seq, mut prev): (u64, String) = tx
            .query_row(
                "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, GENESIS.to_string()));
        let mut out = Vec::with_capacity(entries.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO entries (seq, time_ms, kind, plugin, version, digest, tool, transport, session, \
                 principal, duration_us, fuel_used, peak_memory, outcome, args_digest, cost, event, data, prev_hash, \
                 hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
            )?;
            for e in entries {
                seq += 1;
                let hash = entry_hash(seq, e, &prev);
                stmt.execute(params![
                    seq as i64,
                    e.time_ms,
                    e.kind.as_str(),
                    e.plugin,
                    e.version,
                    e.digest,
                    e.tool,
                    e.caller.transport,
                    e.caller.session,
                    e.caller.principal,
                    e.duration_us as i64,
                    e.fuel_used as i64,
                    e.peak_memory as i64,
                    e.outcome,
                    e.args_digest,
                    e.cost as i64,
                    e.event,
                    e.data,
                    prev,
                    hash,
                ])?;
                out.push(seq);
                prev = hash;
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
        let kind: String = r.get(2)?;
        Ok(Entry {
            seq: r.get::<_, i64>(0)? as u64,
            entry: NewEntry {
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
            prev_hash: r.get(18)?,
            hash: r.get(19)?,
        })
    }

    const COLUMNS: &'static str = "seq, time_ms, kind, plugin, version, digest, tool, transport, session, principal, \
         duration_us, fuel_used, peak_memory, outcome, args_digest, cost, event, data, prev_hash, hash";

    /// Entries matching `f`, oldest first.
    pub fn entries(&self, f: &Filter) -> Result<Vec<Entry>> {
        let mut sql = format!("SELECT {} FROM entries WHERE 1=1", Self::COLUMNS);
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        let mut add = |cond: &str, v: Box<dyn rusqlite::ToSql>| {
            args.push(v);
            sql.push_str(&format!(" AND {cond} ?{}", args.len()));
        };
        if let Some(p) = &f.plugin {
            add("plugin =", Box::new(p.clone()));
        }
        if let Some(t) = &f.tool {
            add("tool =", Box::new(t.clone()));
        }
        if let Some(o) = &f.outcome {
            add("outcome =", Box::new(o.clone()));
        }
        if let Some(s) = f.since_ms {
            add("time_ms >=", Box::new(s));
        }
        if let Some(u) = f.until_ms {
            add("time_ms <", Box::new(u));
        }
        if let Some(k) = f.kind {
            add("kind =", Box::new(k.as_str()));
        }
        sql.push_str(" ORDER BY seq DESC");
        if let Some(l) = f.limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        let conn = self.reader();
        let mut stmt = conn.prepare(&sql)?;
        let mut out = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), Self::row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }

    /// Calls, fuel and cost of `plugin` (optionally one tool) since `since_ms`. Counts calls that ran: calls
    /// refused before the guest ran (outcome `quota` or `busy`) cost nothing and do not count.
    pub fn usage(&self, plugin: &str, tool: Option<&str>, since_ms: i64) -> Result<Usage> {
        let conn = self.reader();
        let (calls, fuel, cost): (i64, i64, i64) = conn.query_row(
            concat!(
                "SELECT COUNT(*), COALESCE(SUM(fuel_used), 0), COALESCE(SUM(cost), 0) FROM entries \
                 WHERE plugin = ?1 AND time_ms >= ?2 AND (?3 IS NULL OR tool = ?3) AND ",
                counted!()
            ),
            params![plugin, since_ms, tool],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(Usage {
            calls: calls as u64,
            fuel: fuel as u64,
            cost: cost as u64,
        })
    }

    /// The counted calls of `plugin` (see [`Ledger::usage`]) with a sequence number above `after_seq` and a time
    /// at or after `since_ms`, oldest first. What contracts are enforced from.
    pub fn counted_calls(
        &self,
        plugin: &str,
        after_seq: u64,
        since_ms: i64,
    ) -> Result<Vec<CountedCall>> {
        let conn = self.reader();
        // Seeding (after_seq 0) walks the plugin/time index; catching up walks the sequence (the rowid; NOT INDEXED
        // keeps SQLite off the plugin index, which would rescan the whole window) from where it was.
        let sql = if after_seq == 0 {
            concat!(
                "SELECT seq, time_ms, tool, cost FROM entries INDEXED BY entries_plugin_time \
                 WHERE plugin = ?1 AND time_ms >= ?3 AND seq > ?2 AND ",
                counted!(),
                " ORDER BY seq"
            )
        } else {
            concat!(
                "SELECT seq, time_ms, tool, cost FROM entries NOT INDEXED \
                 WHERE seq > ?2 AND plugin = ?1 AND time_ms >= ?3 AND ",
                counted!(),
                " ORDER BY seq"
            )
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params![plugin, after_seq as i64, since_ms], |r| {
                Ok(CountedCall {
                    seq: r.get::<_, i64>(0)? as u64,
                    time_ms: r.get(1)?,
                    tool: r.get(2)?,
                    cost: r.get::<_, i64>(3)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The highest sequence number written (0 for an empty ledger).
    pub fn head_seq(&self) -> Result<u64> {
        let conn = self.reader();
        let seq: Option<i64> = conn.query_row("SELECT MAX(seq) FROM entries", [], |r| r.get(0))?;
        Ok(seq.unwrap_or(0) as u64)
    }

    /// Fuel used and peak memory of the last `limit` calls of `plugin` that ran, newest first.
    pub fn recent_usage(&self, plugin: &str, limit: usize) -> Result<Vec<CallUsage>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(concat!(
            "SELECT seq, time_ms, tool, fuel_used, peak_memory, duration_us FROM entries \
             WHERE plugin = ?1 AND ",
            counted!(),
            " ORDER BY seq DESC LIMIT ?2"
        ))?;
        let rows = stmt
            .query_map(params![plugin, limit as i64], |r| {
                Ok(CallUsage {
                    seq: r.get::<_, i64>(0)? as u64,
                    time_ms: r.get(1)?,
                    tool: r.get(2)?,
                    fuel_used: r.get::<_, i64>(3)? as u64,
                    peak_memory: r.get::<_, i64>(4)? as u64,
                    duration_us: r.get::<_, i64>(5)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// Walks the whole chain and the checkpoints; reports the first break.
    pub fn verify(&self) -> Result<Verification> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {} FROM entries ORDER BY seq",
            Self::COLUMNS
        ))?;
        let mut rows = stmt.query([])?;
        let mut expected_seq = 1u64;
        let mut prev = GENESIS.to_string();
        let mut n = 0u64;
        let mut problem = None;
        let mut hashes: std::collections::HashMap<u64, String> = std::collections::HashMap::new();
        while let Some(r) = rows.next()? {
            let e = Self::row(r)?;
            n += 1;
            if problem.is_none() {
                if e.seq != expected_seq {
                    problem = Some(Problem {
                        seq: expected_seq.min(e.seq),
                        reason: if e.seq > expected_seq {
                            format!(
                                "entries {expected_seq}..{} are missing (deleted)",
                                e.seq - 1
                            )
                        } else {
                            "the sequence goes backwards (entries reordered or renumbered)".into()
                        },
                    });
                } else if e.prev_hash != prev {
                    problem = Some(Problem {
                        seq: e.seq,
                        reason: "its link to the previous entry is broken (an entry was inserted, deleted or \
                                 reordered before it)"
                            .into(),
                    });
                } else if entry_hash(e.seq, &e.entry, &e.prev_hash) != e.hash {
                    problem = Some(Problem {
                        seq: e.seq,
                        reason: "its content does not match its hash (the entry was modified)"
                            .into(),
                    });
                }
            }
            expected_seq = e.seq + 1;
            prev = e.hash.clone();
            hashes.insert(e.seq, e.hash);
        }
        drop(rows);
        drop(stmt);
        let head = (n > 0).then(|| (expected_seq - 1, prev.clone()));
        let mut checkpoints = 0u64;
        let mut cp = conn.prepare(
            "SELECT seq, hash, time_ms, key_name, public_key, signature FROM checkpoints ORDER BY seq",
        )?;
        let mut rows = cp.query([])?;
        while let Some(r) = rows.next()? {
            checkpoints += 1;
            let seq = r.get::<_, i64>(0)? as u64;
            let hash: String = r.get(1)?;
            let time_ms: i64 = r.get(2)?;
            let key_name: String = r.get(3)?;
            let public: Vec<u8> = r.get(4)?;
            let signature: Vec<u8> = r.get(5)?;
            if problem.is_some() {
                continue;
            }
            let valid = PublicKey::from_bytes(&key_name, &public)
                .map(|k| k.verify_raw(&checkpoint_message(seq, &hash, time_ms), &signature))
                .unwrap_or(false);
            if !valid {
                problem = Some(Problem {
                    seq,
                    reason: format!("the checkpoint at {seq} has a bad signature"),
                });
            } else {
                match hashes.get(&seq) {
                    None => {
                        problem = Some(Problem {
                            seq,
                            reason: format!(
                                "a signed checkpoint covers entry {seq}, which is missing (the tail was cut)"
                            ),
                        })
                    }
                    Some(h) if *h != hash => {
                        problem = Some(Problem {
                            seq,
                            reason: format!(
                                "entry {seq} differs from the signed checkpoint (the chain was rewritten)"
                            ),
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(Verification {
            entries: n,
            head,
            checkpoints,
            problem,
        })
    }

    /// Signs the current head with `key`.
    pub fn checkpoint(&self, key: &KeyPair, time_ms: i64) -> Result<Checkpoint> {
        let conn = self.conn();
        let (seq, hash): (u64, String) = conn
            .query_row(
                "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .optional()?
            .ok_or(LedgerError::Empty)?;
        let sig = key.sign(&checkpoint_message(seq, &hash, time_ms));
        let public = key.public();
        conn.execute(
            "INSERT OR REPLACE INTO checkpoints (seq, hash, time_ms, key_name, public_key, signature) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                seq as i64,
                hash,
                time_ms,
                key.name,
                public.bytes().to_vec(),
                sig.to_vec()
            ],
        )?;
        Ok(Checkpoint {
            seq,
            hash,
            time_ms,
            key_name: key.name.clone(),
            fingerprint: public.fingerprint(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(plugin: &str, t: i64) -> NewEntry {
        NewEntry {
            time_ms: t,
            kind: Kind::Call,
            plugin: plugin.into(),
            version: "0.1.0".into(),
            digest: "blake3:00".into(),
            tool: "echo".into(),
            caller: Caller {
                transport: "cli".into(),
                session: None,
                principal: None,
            },
            duration_us: 10,
            fuel_used: 100,
            peak_memory: 65536,
            outcome: "ok".into(),
            args_digest: Some(args_digest("{}")),
            cost: 2,
            event: None,
            data: None,
        }
    }

    #[test]
    fn every_field_is_in_the_hash() {
        let base = call("p", 1);
        let h = entry_hash(1, &base, GENESIS);
        let mut variants = Vec::new();
        let mut v = base.clone();
        v.time_ms = 2;
        variants.push(v);
        let mut v = base.clone();
        v.caller.session = Some(String::new());
        variants.push(v);
        let mut v = base.clone();
        v.fuel_used = 101;
        variants.push(v);
        let mut v = base.clone();
        v.outcome = "denied".into();
        variants.push(v);
        let mut v = base.clone();
        v.cost = 3;
        variants.push(v);
        let mut v = base.clone();
        v.data = Some("{}".into());
        variants.push(v);
        for v in variants {
            assert_ne!(entry_hash(1, &v, GENESIS), h, "{v:?}");
        }
        assert_ne!(entry_hash(2, &base, GENESIS), h);
        // Field boundaries are unambiguous: moving a byte between fields changes the hash.
        let mut a = base.clone();
        a.plugin = "ab".into();
        a.version = "c".into();
        let mut b = base;
        b.plugin = "a".into();
        b.version = "bc".into();
        assert_ne!(entry_hash(1, &a, GENESIS), entry_hash(1, &b, GENESIS));
    }

    #[test]
    fn events_are_checked() {
        assert!(check_event("dns.record-created", r#"{"id":1}"#).is_ok());
        assert!(matches!(
            check_event("Bad Kind", "{}"),
            Err(LedgerError::BadEventKind(_))
        ));
        assert!(matches!(
            check_event("k", "not json"),
            Err(LedgerError::EventNotJson(_))
        ));
        let big = format!("\"{}\"", "x".repeat(MAX_EVENT_BYTES));
        assert!(matches!(
            check_event("k", &big),
            Err(LedgerError::EventTooLarge(_))
        ));
    }

    #[test]
    fn append_chains_and_verify_passes() {
        let dir = tempfile::tempdir().expect("dir");
        let l = Ledger::open(dir.path()).expect("open");
        let seqs = l.append(&[call("a", 1), call("b", 2)]).expect("append");
        assert_eq!(seqs, vec![1, 2]);
        assert_eq!(l.append(&[call("a", 3)]).expect("append"), vec![3]);
        let v = l.verify().expect("verify");
        assert_eq!(v.entries, 3);
        assert_eq!(v.problem, None);
        let all = l.entries(&Filter::default()).expect("entries");
        assert_eq!(all[0].prev_hash, GENESIS);
        assert_eq!(all[1].prev_hash, all[0].hash);
        let u = l.usage("a", None, 0).expect("usage");
        assert_eq!((u.calls, u.fuel, u.cost), (2, 200, 4));
        assert_eq!(l.usage("a", None, 2).expect("usage").calls, 1);
    }

    #[test]
    fn counted_calls_skip_refused_and_catch_up_by_sequence() {
        let dir = tempfile::tempdir().expect("dir");
        let l = Ledger::open(dir.path()).expect("open");
        let mut quota = call("a", 2);
        quota.outcome = "quota".into();
        let mut busy = call("a", 3);
        busy.outcome = "busy".into();
        l.append(&[call("a", 1), quota, busy, call("b", 4), call("a", 5)])
            .expect("append");
        let seeded = l.counted_calls("a", 0, 0).expect("seed");
        assert_eq!(seeded.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![1, 5]);
        assert_eq!(l.counted_calls("a", 0, 2).expect("since").len(), 1);
        l.append(&[call("a", 6)]).expect("append");
        let new = l.counted_calls("a", 5, 0).expect("catch up");
        assert_eq!(new.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![6]);
        assert_eq!(l.head_seq().expect("head"), 6);
        let recent = l.recent_usage("a", 2).expect("recent");
        assert_eq!(recent.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![6, 5]);
        assert_eq!(l.usage("a", None, 0).expect("usage").calls, 3);
    }
}
