//! The SQLite index (`index.db`): its schema and migrations, the typed records read from it, and the connection
//! helpers every write goes through (the generation counter, the install history).
//!
//! The registry's SQL lives in this module, by area: `plugins.rs` reads installed plugins, `install.rs` installs,
//! upgrades, rolls back and removes them, `settings.rs` holds what the operator changes on an installed plugin
//! (grants, limits, enabled, config and secrets), and `artifacts.rs` the digests of the compile cache's artifacts.
//! The trust store's keys table is read and written by `trust.rs`.

mod artifacts;
mod install;
mod plugins;
mod settings;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};
use serde::{Deserialize, Serialize};

use crate::Registry;
use crate::error::{RegistryError, Result};
use crate::units::now_secs as now;

pub use install::{InstallRequest, capability_diff};
pub use plugins::{Runnable, check_plugin_id};

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
    // 2: the blake3 digest of every compile-cache artifact plughost wrote, by engine and component: checked before
    // an artifact is loaded (see artifacts.rs).
    "CREATE TABLE artifacts (
        engine     TEXT NOT NULL,
        component  TEXT NOT NULL,
        digest     TEXT NOT NULL,
        size       INTEGER NOT NULL,
        written_at INTEGER NOT NULL,
        PRIMARY KEY (engine, component)
     );",
];

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
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// A value as the JSON text the index stores (grant lists, limits).
pub(crate) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl Registry {
    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll back), so a poisoned
        // lock is safe to reuse.
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A number that changes whenever anything a running host cares about changes (installs, grants, limits,
    /// config, keys). Cheap: the gateway polls it.
    pub fn generation(&self) -> Result<i64> {
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

    /// Adds a line to the install history.
    pub(crate) fn log(
        tx: &rusqlite::Transaction<'_>,
        plugin: Option<&str>,
        action: &str,
        detail: &str,
    ) -> Result<()> {
        tx.execute(
            "INSERT INTO history (at, plugin_id, action, detail) VALUES (?1, ?2, ?3, ?4)",
            params![now(), plugin, action, detail],
        )?;
        Ok(())
    }
}

/// Per-plugin quotas set by the operator. `None` means the host's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Contract: at most this many calls per `window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_per_window: Option<u64>,
    /// Contract: tokens one call costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_call: Option<u64>,
    /// Contract: tokens the plugin may spend per `window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
    /// The contract window (a sliding window ending now). Default: a day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Contracts of single tools, checked in addition to the plugin's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, ToolContract>,
}

/// A contract on one tool: calls per window and a cost budget, like the plugin's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolContract {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_per_window: Option<u64>,
    /// Tokens one call of this tool costs (instead of the plugin's cost per call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_call: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
    /// Default: the plugin's window, else a day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

impl ToolContract {
    pub fn is_empty(&self) -> bool {
        *self == ToolContract::default()
    }
}

/// A contract window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    Minute,
    Hour,
    Day,
    /// 30 days.
    Month,
}

impl Window {
    pub fn millis(self) -> i64 {
        match self {
            Window::Minute => 60_000,
            Window::Hour => 3_600_000,
            Window::Day => 86_400_000,
            Window::Month => 30 * 86_400_000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "30 days",
        }
    }

    /// `minute`, `hour`, `day`, `month` (or `30d`).
    pub fn parse(s: &str) -> Option<Window> {
        match s.trim() {
            "minute" | "min" | "m" => Some(Window::Minute),
            "hour" | "h" => Some(Window::Hour),
            "day" | "d" => Some(Window::Day),
            "month" | "30d" | "30days" => Some(Window::Month),
            _ => None,
        }
    }
}

impl PluginLimits {
    /// Whether any contract (calls per window, cost budget) is set.
    pub fn has_contract(&self) -> bool {
        self.calls_per_window.is_some()
            || self.budget.is_some()
            || self
                .tools
                .values()
                .any(|t| t.calls_per_window.is_some() || t.budget.is_some())
    }

    /// Tokens one call of `tool` costs: the tool's own price, else the plugin's, else nothing.
    pub fn cost_of(&self, tool: &str) -> u64 {
        self.tools
            .get(tool)
            .and_then(|t| t.cost_per_call)
            .or(self.cost_per_call)
            .unwrap_or(0)
    }
}

/// Who signed an installed version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publisher {
    pub name: String,
    pub fingerprint: String,
    pub revoked: bool,
}

/// An installed plugin, as `list` and `info` show it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginRecord {
    pub id: String,
    pub version: String,
    pub digest: String,
    pub size: u64,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// `None` when installed with `--allow-unsigned`.
    pub publisher: Option<Publisher>,
    pub unsigned: bool,
    /// The grants the operator approved.
    pub grants: Vec<String>,
    /// The capabilities the publisher declared.
    pub declared: Vec<String>,
    pub limits: PluginLimits,
    pub installed_at: i64,
    pub updated_at: i64,
    /// The plugin's manifest (its `describe()`), as JSON.
    #[serde(skip)]
    pub manifest_json: String,
    /// The index row of the current version.
    #[serde(skip)]
    pub seq: i64,
}

/// One installed version of a plugin.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRecord {
    pub seq: i64,
    pub version: String,
    pub digest: String,
    pub publisher: Option<String>,
    pub grants: Vec<String>,
    pub installed_at: i64,
    pub current: bool,
}

/// A trusted publisher key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRecord {
    pub name: String,
    pub fingerprint: String,
    pub trusted_at: i64,
    pub revoked_at: Option<i64>,
}

/// A plugin setting; secrets carry no value when listed.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigEntry {
    pub key: String,
    /// `None` for secrets: they are never printed back.
    pub value: Option<String>,
    pub secret: bool,
}

/// One line of the install history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub at: i64,
    pub plugin: Option<String>,
    pub action: String,
    pub detail: String,
}

pub(crate) const PLUGIN_SELECT: &str = "SELECT p.id, v.version, v.digest, v.size, p.enabled, p.disabled_reason,
        k.name, k.fingerprint, k.revoked_at, v.key_fingerprint, v.grants, v.declared, p.limits, p.installed_at,
        p.updated_at, v.manifest, v.seq
     FROM plugins p JOIN versions v ON v.seq = p.current_seq
     LEFT JOIN keys k ON k.fingerprint = v.key_fingerprint";

pub(crate) fn plugin_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PluginRecord> {
    let json_list = |i: usize| -> rusqlite::Result<Vec<String>> {
        let s: String = r.get(i)?;
        serde_json::from_str(&s).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    let limits: String = r.get(12)?;
    let key_fp: Option<String> = r.get(9)?;
    let publisher = match (
        r.get::<_, Option<String>>(6)?,
        r.get::<_, Option<String>>(7)?,
    ) {
        (Some(name), Some(fingerprint)) => Some(Publisher {
            name,
            fingerprint,
            revoked: r.get::<_, Option<i64>>(8)?.is_some(),
        }),
        // The key row is gone (should not happen: keys are revoked, not deleted); still show whose it was.
        _ => key_fp.clone().map(|fingerprint| Publisher {
            name: "(unknown key)".into(),
            fingerprint,
            revoked: true,
        }),
    };
    Ok(PluginRecord {
        id: r.get(0)?,
        version: r.get(1)?,
        digest: r.get(2)?,
        size: r.get::<_, i64>(3)? as u64,
        enabled: r.get::<_, i64>(4)? != 0,
        disabled_reason: r.get(5)?,
        unsigned: key_fp.is_none(),
        publisher,
        grants: json_list(10)?,
        declared: json_list(11)?,
        limits: serde_json::from_str(&limits).unwrap_or_default(),
        installed_at: r.get(13)?,
        updated_at: r.get(14)?,
        manifest_json: r.get(15)?,
        seq: r.get(16)?,
    })
}
