//! Opening `index.db`: the schema and its migrations (by `user_version`), the connection every write goes through,
//! the generation counter a running host watches, and the install history.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::Registry;
use crate::error::{RegistryError, Result};

/// Migrations, applied in order; `PRAGMA user_version` records how many ran. Never edit one that shipped: add a new
/// one.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
     INSERT INTO meta (key, value) VALUES ('generation', 0);
     CREATE TABLE keys (
        fingerprint TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        public_key  BLOB NOT NULL UNIQUE,
        trusted_at  INTEGER NOT NULL,
        revoked_at  INTEGER
     );
     CREATE TABLE versions (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        plugin_id       TEXT NOT NULL,
        version         TEXT NOT NULL,
        digest          TEXT NOT NULL,
        size            INTEGER NOT NULL,
        key_fingerprint TEXT,
        signature       TEXT,
        declared        TEXT NOT NULL,
        grants          TEXT NOT NULL,
        manifest        TEXT NOT NULL,
        installed_at    INTEGER NOT NULL
     );
     CREATE INDEX versions_by_plugin ON versions (plugin_id, seq);
     CREATE TABLE plugins (
        id              TEXT PRIMARY KEY,
        current_seq     INTEGER NOT NULL,
        enabled         INTEGER NOT NULL DEFAULT 1,
        disabled_reason TEXT,
        limits          TEXT NOT NULL DEFAULT '{}',
        installed_at    INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
     );
     CREATE TABLE config (
        plugin_id TEXT NOT NULL,
        key       TEXT NOT NULL,
        value     TEXT NOT NULL,
        secret    INTEGER NOT NULL,
        PRIMARY KEY (plugin_id, key)
     );
     CREATE TABLE history (
        seq       INTEGER PRIMARY KEY AUTOINCREMENT,
        at        INTEGER NOT NULL,
        plugin_id TEXT,
        action    TEXT NOT NULL,
        detail    TEXT NOT NULL
     );",
    // 2: rollback is a stack. Each version row points at the version that was current when it was made current
    // (by install or upgrade); rollback follows that link, so rolling back pops. Rows from before this step link
    // to the plugin's previous row, which is where a rollback went until now.
    "ALTER TABLE versions ADD COLUMN previous_seq INTEGER;
     UPDATE versions SET previous_seq = (
        SELECT MAX(p.seq) FROM versions p WHERE p.plugin_id = versions.plugin_id AND p.seq < versions.seq
     );",
    // 3: the blake3 digest of every compile-cache artifact plughost wrote, by engine and component: checked before
    // an artifact is loaded (see artifacts.rs).
    "CREATE TABLE artifacts (
        engine     TEXT NOT NULL,
        component  TEXT NOT NULL,
        digest     TEXT NOT NULL,
        size       INTEGER NOT NULL,
        written_at INTEGER NOT NULL,
        PRIMARY KEY (engine, component)
     );",
    // 4: where a version came from (an `oci://` reference or a URL; NULL for a local file) and, for OCI, the
    // digest of the manifest it was pulled by: a tag that moves later does not change what this row says.
    "ALTER TABLE versions ADD COLUMN source TEXT;
     ALTER TABLE versions ADD COLUMN manifest_digest TEXT;",
    // 5: scoped client tokens for the gateway (see tokens.rs): the blake3 hash of each token, never the token.
    "CREATE TABLE tokens (
        name       TEXT PRIMARY KEY,
        hash       BLOB NOT NULL UNIQUE,
        plugins    TEXT,
        tools      TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER
     );",
    // 6: the history is the audit trail, a hash chain (see audit.rs); the rows already there are sealed by
    // `audit::seal_legacy` right after this step.
    "ALTER TABLE history ADD COLUMN hash BLOB;",
];
/// The migration after which every history row must carry its chain hash.
const AUDIT_CHAIN_MIGRATION: usize = 6;

/// Opens the index, creating it with mode 0600 (it holds secrets; SQLite gives its WAL and shm files the same
/// mode), and migrates it. A file that is not a SQLite database, or fails its integrity check, is reported as
/// corrupted.
pub(crate) fn open(path: &Path) -> Result<Connection> {
    let corrupt = |e: &dyn std::fmt::Display| RegistryError::IndexCorrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    std::fs::File::open(path)
                } else {
                    Err(e)
                }
            })
            .map_err(crate::error::io(path))?;
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| corrupt(&e))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| corrupt(&e))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| corrupt(&e))?;
    if check != "ok" {
        return Err(corrupt(&check));
    }
    migrate(&mut conn, path).map_err(|e| match e {
        RegistryError::Index(e) => corrupt(&e),
        other => other,
    })?;
    Ok(conn)
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if version > MIGRATIONS.len() {
        return Err(RegistryError::IndexCorrupt {
            path: path.to_path_buf(),
            message: format!(
                "the index has schema version {version}, newer than this plughost knows ({}); upgrade plughost",
                MIGRATIONS.len()
            ),
        });
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(m)?;
        if i + 1 == AUDIT_CHAIN_MIGRATION {
            super::audit::seal_legacy(&tx)?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

impl Registry {
    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll back), so a poisoned
        // lock is safe to reuse.
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A number that changes whenever anything a running host cares about changes (installs, grants, limits,
    /// config, keys). Cheap: the gateway polls it.
    pub fn generation(&self) -> Result<i64> {
        if let Some(pg) = &self.shared {
            let g = pg.index_generation()?;
            self.seen_generation
                .fetch_max(g, std::sync::atomic::Ordering::AcqRel);
            return Ok(g);
        }
        Ok(self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
                r.get(0)
            })?)
    }

    /// Bumps the generation (see [`Registry::generation`]); every committed change calls it.
    pub(crate) fn bump(tx: &rusqlite::Transaction<'_>) -> Result<()> {
        tx.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'generation'",
            [],
        )?;
        Ok(())
    }

    /// Adds a line to the install history, which is the audit trail (chained; see audit.rs).
    pub(crate) fn log(
        tx: &rusqlite::Transaction<'_>,
        plugin: Option<&str>,
        action: &str,
        detail: &str,
    ) -> Result<()> {
        super::audit::append(tx, plugin, action, detail)
    }
}
