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

pub mod blobs;
mod error;
pub mod grants;
pub mod index;
pub mod keys;
pub mod ledger;
pub mod signature;
pub mod units;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

pub use blobs::{BlobStore, Digest};
pub use error::{RegistryError, Result};
pub use index::{
    ConfigEntry, HistoryEntry, KeyRecord, PluginLimits, PluginRecord, Publisher, ToolContract,
    VersionRecord, Window,
};
pub use keys::{KeyPair, PublicKey};
pub use signature::{SignatureFile, SignerStatus, Statement, Verified, grant_kind};

/// Where a component came from: verified against a trusted key, or explicitly allowed unsigned by the operator.
#[derive(Debug, Clone)]
pub enum Provenance {
    Signed(Verified),
    /// Only made by [`Provenance::unsigned`], which the CLI calls for `--allow-unsigned` alone.
    Unsigned {
        digest: Digest,
    },
}

impl Provenance {
    /// The operator chose to install `bytes` without a signature. Recorded, and shown in `list`.
    pub fn unsigned(bytes: &[u8]) -> Provenance {
        Provenance::Unsigned {
            digest: Digest::of(bytes),
        }
    }

    pub fn digest(&self) -> Digest {
        match self {
            Provenance::Signed(v) => v.digest(),
            Provenance::Unsigned { digest } => *digest,
        }
    }
}

/// What to install: the bytes, where they came from, what the host found in them, and what the operator approved.
#[derive(Debug)]
pub struct InstallRequest<'a> {
    pub provenance: Provenance,
    pub bytes: &'a [u8],
    /// The id and version the component's `describe()` returned.
    pub plugin: &'a str,
    pub version: &'a str,
    /// The manifest as JSON, kept so the host can show tools without running the guest.
    pub manifest_json: String,
    /// For unsigned components: the capabilities the component imports (for signed ones, the statement's list).
    pub imports: Vec<String>,
    /// The grants the operator approved.
    pub grants: Vec<String>,
}

/// A plugin ready for the loader: its record, its bytes (checked against their digest), config and secrets.
#[derive(Debug)]
pub struct Runnable {
    pub record: PluginRecord,
    pub bytes: Vec<u8>,
    pub config: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
}

/// The registry: one per data dir. Safe to share between threads; several processes may open the same data dir.
#[derive(Debug)]
pub struct Registry {
    root: PathBuf,
    blobs: BlobStore,
    db: Mutex<Connection>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Checks a plugin id: lowercase letters, digits and `-`, starting with a letter, at most 64 characters.
pub fn check_plugin_id(id: &str) -> Result<()> {
    let ok = id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::BadPluginId(id.to_string()))
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Refuses grants for capability kinds the publisher did not declare.
fn check_declared(plugin: &str, grants: &[String], declared: &[String]) -> Result<()> {
    let kinds: Vec<&str> = declared.iter().map(|d| grant_kind(d)).collect();
    for g in grants {
        if !kinds.contains(&grant_kind(g)) {
            return Err(RegistryError::Undeclared {
                plugin: plugin.to_string(),
                grant: g.clone(),
                declared: if declared.is_empty() {
                    "nothing".into()
                } else {
                    declared.join(", ")
                },
            });
        }
    }
    Ok(())
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
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the operator's own signing keys live.
    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
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

    fn bump(tx: &rusqlite::Transaction<'_>) -> Result<()> {
        tx.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'generation'",
            [],
        )?;
        Ok(())
    }

    fn log(
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

    // ---- keys ------------------------------------------------------------------------------------------------

    /// Generates a signing key `name` in the data dir (secret 0600) and returns its public half.
    pub fn generate_key(&self, name: &str) -> Result<PublicKey> {
        let kp = KeyPair::generate(name)?;
        let dir = self.keys_dir();
        kp.write_secret(&dir.join(format!("{name}.key")))?;
        blobs::write_atomic(
            &dir.join(format!("{name}.pub")),
            kp.public().to_line().as_bytes(),
        )?;
        Ok(kp.public())
    }

    /// Loads one of the operator's signing keys by name, or from a path.
    pub fn signing_key(&self, name_or_path: &str) -> Result<KeyPair> {
        let as_path = Path::new(name_or_path);
        if as_path.is_file() {
            return KeyPair::read_secret(as_path);
        }
        keys::check_key_name(name_or_path)?;
        let path = self.keys_dir().join(format!("{name_or_path}.key"));
        if !path.exists() {
            return Err(RegistryError::UnknownKey(name_or_path.to_string()));
        }
        KeyPair::read_secret(&path)
    }

    /// Adds a publisher key to the trust store.
    pub fn trust(&self, key: &PublicKey) -> Result<KeyRecord> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let fp = key.fingerprint();
        let existing: Option<String> = tx
            .query_row("SELECT name FROM keys WHERE fingerprint = ?1", [&fp], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(name) = existing {
            return Err(RegistryError::AlreadyTrusted {
                name,
                fingerprint: fp,
            });
        }
        let taken: bool = tx
            .query_row("SELECT 1 FROM keys WHERE name = ?1", [&key.name], |_| {
                Ok(true)
            })
            .optional()?
            .unwrap_or(false);
        if taken {
            return Err(RegistryError::KeyExists(key.name.clone()));
        }
        let at = now();
        tx.execute(
            "INSERT INTO keys (fingerprint, name, public_key, trusted_at) VALUES (?1, ?2, ?3, ?4)",
            params![fp, key.name, key.bytes().to_vec(), at],
        )?;
        Self::log(&tx, None, "trust", &format!("{} {fp}", key.name))?;
        Self::bump(&tx)?;
        tx.commit()?;
        Ok(KeyRecord {
            name: key.name.clone(),
            fingerprint: fp,
            trusted_at: at,
            revoked_at: None,
        })
    }

    /// Revokes a trusted key (by name or fingerprint). Plugins whose installed version it signed are disabled;
    /// returns their ids.
    pub fn revoke_key(&self, name_or_fp: &str) -> Result<Vec<String>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (name, fp): (String, String) = tx
            .query_row(
                "SELECT name, fingerprint FROM keys WHERE name = ?1 OR fingerprint = ?1",
                [name_or_fp],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| RegistryError::UnknownKey(name_or_fp.to_string()))?;
        tx.execute(
            "UPDATE keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE fingerprint = ?1",
            params![fp, now()],
        )?;
        let mut stmt = tx.prepare(
            "SELECT p.id FROM plugins p JOIN versions v ON v.seq = p.current_seq
             WHERE v.key_fingerprint = ?1 ORDER BY p.id",
        )?;
        let ids: Vec<String> = stmt
            .query_map([&fp], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        let reason = format!("its publisher key `{name}` ({fp}) was revoked");
        for id in &ids {
            tx.execute(
                "UPDATE plugins SET enabled = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, reason, now()],
            )?;
        }
        Self::log(&tx, None, "revoke-key", &format!("{name} {fp}"))?;
        Self::bump(&tx)?;
        tx.commit()?;
        Ok(ids)
    }

    /// The trusted keys, revoked ones included.
    pub fn keys(&self) -> Result<Vec<KeyRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT name, fingerprint, trusted_at, revoked_at FROM keys ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(KeyRecord {
                name: r.get(0)?,
                fingerprint: r.get(1)?,
                trusted_at: r.get(2)?,
                revoked_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Verifies `bytes` against a signature using this registry's trust store.
    pub fn verify(&self, bytes: &[u8], sig: &SignatureFile) -> Result<Verified> {
        signature::verify(bytes, sig, |key| {
            let conn = self.conn();
            Ok(conn
                .query_row(
                    "SELECT name, fingerprint, revoked_at FROM keys WHERE public_key = ?1",
                    [key.to_vec()],
                    |r| {
                        Ok(SignerStatus {
                            name: r.get(0)?,
                            fingerprint: r.get(1)?,
                            revoked: r.get::<_, Option<i64>>(2)?.is_some(),
                        })
                    },
                )
                .optional()?)
        })
    }

    // ---- install, upgrade, rollback, remove -------------------------------------------------------------------

    fn check_request(req: &InstallRequest<'_>) -> Result<Vec<String>> {
        check_plugin_id(req.plugin)?;
        let declared = match &req.provenance {
            Provenance::Signed(v) => {
                let s = v.statement();
                if s.plugin != req.plugin || s.version != req.version {
                    return Err(RegistryError::StatementMismatch(format!(
                        "the component says it is {} {}, the signature says {} {}",
                        req.plugin, req.version, s.plugin, s.version
                    )));
                }
                if v.digest() != Digest::of(req.bytes) {
                    return Err(RegistryError::StatementMismatch(
                        "the bytes are not the ones that were verified".into(),
                    ));
                }
                s.capabilities.clone()
            }
            Provenance::Unsigned { digest } => {
                if *digest != Digest::of(req.bytes) {
                    return Err(RegistryError::StatementMismatch(
                        "the bytes changed after they were read".into(),
                    ));
                }
                req.imports.clone()
            }
        };
        check_declared(req.plugin, &req.grants, &declared)?;
        Ok(declared)
    }

    fn insert_version(
        tx: &rusqlite::Transaction<'_>,
        req: &InstallRequest<'_>,
        declared: &[String],
    ) -> Result<i64> {
        let (key_fp, sig) = match &req.provenance {
            Provenance::Signed(v) => (
                Some(v.signer().fingerprint.clone()),
                Some(v.signature_json().to_string()),
            ),
            Provenance::Unsigned { .. } => (None, None),
        };
        tx.execute(
            "INSERT INTO versions (plugin_id, version, digest, size, key_fingerprint, signature, declared, grants,
                                   manifest, installed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                req.plugin,
                req.version,
                req.provenance.digest().to_string(),
                req.bytes.len() as i64,
                key_fp,
                sig,
                json(&declared),
                json(&req.grants),
                req.manifest_json,
                now()
            ],
        )?;
        Ok(tx.last_insert_rowid())
    }

    /// Installs a new plugin. The blob is written (atomically) first, then one index transaction makes it visible:
    /// a crash in between leaves an unreferenced blob and no half-installed plugin.
    pub fn install(&self, req: InstallRequest<'_>) -> Result<PluginRecord> {
        let declared = Self::check_request(&req)?;
        self.blobs.put(req.bytes)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT v.version FROM plugins p JOIN versions v ON v.seq = p.current_seq WHERE p.id = ?1",
                [req.plugin],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(version) = existing {
            return Err(RegistryError::AlreadyInstalled {
                id: req.plugin.to_string(),
                version,
            });
        }
        let seq = Self::insert_version(&tx, &req, &declared)?;
        let at = now();
        tx.execute(
            "INSERT INTO plugins (id, current_seq, enabled, installed_at, updated_at) VALUES (?1, ?2, 1, ?3, ?3)",
            params![req.plugin, seq, at],
        )?;
        Self::log(
            &tx,
            Some(req.plugin),
            if matches!(req.provenance, Provenance::Unsigned { .. }) {
                "install-unsigned"
            } else {
                "install"
            },
            &format!(
                "{} {} grants [{}]",
                req.version,
                req.provenance.digest(),
                req.grants.join(", ")
            ),
        )?;
        Self::bump(&tx)?;
        tx.commit()?;
        drop(conn);
        self.plugin(req.plugin)
    }

    /// Installs a new version of an installed plugin and makes it current. The caller shows the capability diff
    /// ([`capability_diff`]) and gets approval before calling this.
    pub fn upgrade(&self, req: InstallRequest<'_>) -> Result<PluginRecord> {
        let declared = Self::check_request(&req)?;
        let current = self.plugin(req.plugin)?;
        if current.digest == req.provenance.digest().to_string() {
            return Err(RegistryError::SameVersion {
                id: current.id,
                version: current.version,
                digest: current.digest,
            });
        }
        self.blobs.put(req.bytes)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seq = Self::insert_version(&tx, &req, &declared)?;
        // A new, verified version re-enables a plugin that was disabled (e.g. for a revoked key).
        tx.execute(
            "UPDATE plugins SET current_seq = ?2, enabled = 1, disabled_reason = NULL, updated_at = ?3 WHERE id = ?1",
            params![req.plugin, seq, now()],
        )?;
        Self::log(
            &tx,
            Some(req.plugin),
            "upgrade",
            &format!(
                "{} -> {} {} grants [{}]",
                current.version,
                req.version,
                req.provenance.digest(),
                req.grants.join(", ")
            ),
        )?;
        Self::bump(&tx)?;
        tx.commit()?;
        drop(conn);
        self.plugin(req.plugin)
    }

    /// Makes the previous installed version current again, with the grants it had.
    pub fn rollback(&self, id: &str) -> Result<PluginRecord> {
        let current = self.plugin(id)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let prev: Option<(i64, String, Option<i64>)> = tx
            .query_row(
                "SELECT v.seq, v.version, k.revoked_at FROM versions v LEFT JOIN keys k ON k.fingerprint = v.key_fingerprint
                 WHERE v.plugin_id = ?1 AND v.seq < ?2 ORDER BY v.seq DESC LIMIT 1",
                params![id, current.seq],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (seq, version, revoked) =
            prev.ok_or_else(|| RegistryError::NoEarlierVersion(id.to_string()))?;
        let (enabled, reason) = match revoked {
            Some(_) => (0, Some("its publisher key was revoked".to_string())),
            None => (1, None),
        };
        tx.execute(
            "UPDATE plugins SET current_seq = ?2, enabled = ?3, disabled_reason = ?4, updated_at = ?5 WHERE id = ?1",
            params![id, seq, enabled, reason, now()],
        )?;
        Self::log(
            &tx,
            Some(id),
            "rollback",
            &format!("{} -> {version}", current.version),
        )?;
        Self::bump(&tx)?;
        tx.commit()?;
        drop(conn);
        self.plugin(id)
    }

    /// Removes a plugin: its versions, config and secrets. Blobs no other version uses are deleted.
    pub fn remove(&self, id: &str) -> Result<PluginRecord> {
        let record = self.plugin(id)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let digests: Vec<String> = {
            let mut stmt =
                tx.prepare("SELECT DISTINCT digest FROM versions WHERE plugin_id = ?1")?;
            stmt.query_map([id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        tx.execute("DELETE FROM plugins WHERE id = ?1", [id])?;
        tx.execute("DELETE FROM versions WHERE plugin_id = ?1", [id])?;
        tx.execute("DELETE FROM config WHERE plugin_id = ?1", [id])?;
        Self::log(&tx, Some(id), "remove", &record.version)?;
        Self::bump(&tx)?;
        tx.commit()?;
        for d in digests {
            let still_used: bool = conn
                .query_row("SELECT 1 FROM versions WHERE digest = ?1", [&d], |_| {
                    Ok(true)
                })
                .optional()?
                .unwrap_or(false);
            if !still_used && let Some(digest) = Digest::parse(&d) {
                self.blobs.delete(&digest)?;
            }
        }
        Ok(record)
    }

    // ---- reading ------------------------------------------------------------------------------------------

    /// Every installed plugin, by id.
    pub fn list(&self) -> Result<Vec<PluginRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{} ORDER BY p.id", index::PLUGIN_SELECT))?;
        let rows = stmt.query_map([], index::plugin_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One installed plugin.
    pub fn plugin(&self, id: &str) -> Result<PluginRecord> {
        let conn = self.conn();
        conn.query_row(
            &format!("{} WHERE p.id = ?1", index::PLUGIN_SELECT),
            [id],
            index::plugin_from_row,
        )
        .optional()?
        .ok_or_else(|| RegistryError::NotInstalled(id.to_string()))
    }

    /// Every installed version of a plugin, newest first.
    pub fn versions(&self, id: &str) -> Result<Vec<VersionRecord>> {
        let current = self.plugin(id)?;
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT v.seq, v.version, v.digest, k.name, v.grants, v.installed_at FROM versions v
             LEFT JOIN keys k ON k.fingerprint = v.key_fingerprint WHERE v.plugin_id = ?1 ORDER BY v.seq DESC",
        )?;
        let rows = stmt.query_map([id], |r| {
            let grants: String = r.get(4)?;
            let seq: i64 = r.get(0)?;
            Ok(VersionRecord {
                seq,
                version: r.get(1)?,
                digest: r.get(2)?,
                publisher: r.get(3)?,
                grants: serde_json::from_str(&grants).unwrap_or_default(),
                installed_at: r.get(5)?,
                current: seq == current.seq,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The install history, newest first (for one plugin, or all).
    pub fn history(&self, id: Option<&str>, limit: usize) -> Result<Vec<HistoryEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT at, plugin_id, action, detail FROM history WHERE ?1 IS NULL OR plugin_id = ?1
             ORDER BY seq DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![id, limit as i64], |r| {
            Ok(HistoryEntry {
                at: r.get(0)?,
                plugin: r.get(1)?,
                action: r.get(2)?,
                detail: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Everything the loader needs for one plugin. The bytes are checked against the installed digest: a
    /// corrupted blob is an error, never served.
    pub fn runnable(&self, id: &str) -> Result<Runnable> {
        let record = self.plugin(id)?;
        let digest = Digest::parse(&record.digest).ok_or_else(|| RegistryError::IndexCorrupt {
            path: self.root.join("index.db"),
            message: format!("bad digest `{}` for plugin {id}", record.digest),
        })?;
        let bytes = self.blobs.get(&digest)?;
        let (config, secrets) = self.config_values(id)?;
        Ok(Runnable {
            record,
            bytes,
            config,
            secrets,
        })
    }

    // ---- operator changes: grants, limits, config, enable ---------------------------------------------------

    /// Replaces the approved grants of a plugin's current version. Grants for undeclared capabilities are refused.
    pub fn set_grants(&self, id: &str, grants: &[String]) -> Result<PluginRecord> {
        let record = self.plugin(id)?;
        check_declared(id, grants, &record.declared)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE versions SET grants = ?2 WHERE seq = ?1",
            params![record.seq, json(&grants)],
        )?;
        tx.execute(
            "UPDATE plugins SET updated_at = ?2 WHERE id = ?1",
            params![id, now()],
        )?;
        Self::log(&tx, Some(id), "grants", &grants.join(", "))?;
        Self::bump(&tx)?;
        tx.commit()?;
        drop(conn);
        self.plugin(id)
    }

    /// Sets a plugin's limits.
    pub fn set_limits(&self, id: &str, limits: PluginLimits) -> Result<PluginRecord> {
        self.plugin(id)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE plugins SET limits = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, json(&limits), now()],
        )?;
        Self::log(&tx, Some(id), "limits", &json(&limits))?;
        Self::bump(&tx)?;
        tx.commit()?;
        drop(conn);
        self.plugin(id)
    }

    /// Enables or disables a plugin. Enabling one whose publisher key is revoked is refused.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<PluginRecord> {
        let record = self.plugin(id)?;
        if enabled && record.publisher.as_ref().is_some_and(|p| p.revoked) {
            let p = record.publisher.unwrap_or_else(|| Publisher {
                name: String::new(),
                fingerprint: String::new(),
                revoked: true,
            });
            return Err(RegistryError::RevokedKey {
                name: p.name,
                fingerprint: p.fingerprint,
            });
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE plugins SET enabled = ?2, disabled_reason = ?3, updated_at = ?4 WHERE id = ?1",
            params![
                id,
                enabled as i64,
                (!enabled).then_some("disabled by the operator"),
                now()
            ],
        )?;
        Self::log(
            &tx,
            Some(id),
            if enabled { "enable" } else { "disable" },
            "",
        )?;
        Self::bump(&tx)?;
        tx.commit()?;
        drop(conn);
        self.plugin(id)
    }

    /// Sets a config value or a secret.
    pub fn set_config(&self, id: &str, key: &str, value: &str, secret: bool) -> Result<()> {
        self.plugin(id)?;
        let ok = !key.is_empty()
            && key.len() <= 128
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(RegistryError::BadConfigKey(key.to_string()));
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO config (plugin_id, key, value, secret) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, secret = excluded.secret",
            params![id, key, value, secret as i64],
        )?;
        Self::log(
            &tx,
            Some(id),
            if secret { "secret-set" } else { "config-set" },
            key,
        )?;
        Self::bump(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a config value or secret; returns whether it existed.
    pub fn unset_config(&self, id: &str, key: &str) -> Result<bool> {
        self.plugin(id)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM config WHERE plugin_id = ?1 AND key = ?2",
            params![id, key],
        )?;
        if n > 0 {
            Self::log(&tx, Some(id), "config-unset", key)?;
            Self::bump(&tx)?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// A plugin's settings for display: secrets without their values.
    pub fn config(&self, id: &str) -> Result<Vec<ConfigEntry>> {
        self.plugin(id)?;
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT key, value, secret FROM config WHERE plugin_id = ?1 ORDER BY key")?;
        let rows = stmt.query_map([id], |r| {
            let secret = r.get::<_, i64>(2)? != 0;
            Ok(ConfigEntry {
                key: r.get(0)?,
                value: if secret { None } else { Some(r.get(1)?) },
                secret,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn config_values(
        &self,
        id: &str,
    ) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT key, value, secret FROM config WHERE plugin_id = ?1")?;
        let mut config = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for row in stmt.query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? != 0,
            ))
        })? {
            let (k, v, secret) = row?;
            if secret {
                secrets.insert(k, v);
            } else {
                config.insert(k, v);
            }
        }
        Ok((config, secrets))
    }
}

/// The difference between two grant lists: what is new (needs approval) and what goes away.
pub fn capability_diff(old: &[String], new: &[String]) -> (Vec<String>, Vec<String>) {
    let added = new.iter().filter(|g| !old.contains(g)).cloned().collect();
    let removed = old.iter().filter(|g| !new.contains(g)).cloned().collect();
    (added, removed)
}
