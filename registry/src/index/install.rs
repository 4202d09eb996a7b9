//! Installing, upgrading, rolling back and removing plugins: the index transactions that change which version of a
//! plugin is current, and the blobs written before them. The checks a request must pass first (signature, declared
//! capabilities) are `trust.rs`'s.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::check_plugin_id;
use super::types::{PLUGIN_SELECT, json, plugin_from_row};
use super::versions::{UpgradeCheck, UpgradePolicy};
use crate::blobs::Digest;
use crate::error::{RegistryError, Result};
use crate::trust::{Provenance, check_declared};
use crate::units::now_secs as now;
use crate::{PluginRecord, Registry};

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
    /// Where the bytes came from, when not a local file.
    pub source: Option<Source>,
}

/// Where a version was fetched from: the reference the operator gave (`oci://…:tag`, `https://…`) and, for an OCI
/// pull, the digest of the manifest the verified bytes were read through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub reference: String,
    pub manifest_digest: Option<String>,
}

impl Registry {
    fn check_request(req: &InstallRequest<'_>) -> Result<Vec<String>> {
        check_plugin_id(req.plugin)?;
        let declared = req
            .provenance
            .check(req.bytes, req.plugin, req.version, &req.imports)?;
        let signed = matches!(req.provenance, Provenance::Signed(_));
        check_declared(req.plugin, &req.grants, &[], &declared, signed)?;
        Ok(declared)
    }

    fn insert_version(
        tx: &rusqlite::Transaction<'_>,
        req: &InstallRequest<'_>,
        declared: &[String],
        previous_seq: Option<i64>,
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
                                   manifest, installed_at, previous_seq, source, manifest_digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
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
                now(),
                previous_seq,
                req.source.as_ref().map(|s| s.reference.as_str()),
                req.source.as_ref().and_then(|s| s.manifest_digest.as_deref()),
            ],
        )?;
        Ok(tx.last_insert_rowid())
    }

    /// Installs a new plugin. The blob is written (atomically) first, then one index transaction makes it visible:
    /// a crash in between leaves an unreferenced blob and no half-installed plugin.
    pub fn install(&self, req: InstallRequest<'_>) -> Result<PluginRecord> {
        let declared = Self::check_request(&req)?;
        if let Some(pg) = &self.shared {
            return self.install_shared(pg, &req, &declared);
        }
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
        let seq = Self::insert_version(&tx, &req, &declared, None)?;
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
                "{} {} grants [{}]{}",
                req.version,
                req.provenance.digest(),
                req.grants.join(", "),
                source_note(&req)
            ),
        )?;
        Self::bump(&tx)?;
        tx.commit()?;
        drop(conn);
        self.plugin(req.plugin)
    }

    /// [`Registry::install`] into the shared store: the component first (by digest, so a crash leaves an
    /// unreferenced blob at worst), then one index transaction.
    fn install_shared(
        &self,
        pg: &crate::pg::PgStore,
        req: &InstallRequest<'_>,
        declared: &[String],
    ) -> Result<PluginRecord> {
        let digest = req.provenance.digest().to_string();
        pg.index_put_blob(&digest, req.bytes)?;
        let row = Self::version_row(req, declared);
        let action = if matches!(req.provenance, Provenance::Unsigned { .. }) {
            "install-unsigned"
        } else {
            "install"
        };
        let detail = format!(
            "{} {digest} grants [{}]{}",
            req.version,
            req.grants.join(", "),
            source_note(req)
        );
        match pg.index_install(row, action, detail)? {
            Ok(()) => self.plugin(req.plugin),
            Err(crate::pg::Refused::Installed(version)) => Err(RegistryError::AlreadyInstalled {
                id: req.plugin.to_string(),
                version,
            }),
            Err(_) => Err(RegistryError::NotInstalled(req.plugin.to_string())),
        }
    }

    /// Installs a new version of an installed plugin and makes it current, allowing no change of publisher and
    /// no downgrade (see [`Registry::upgrade_with`]).
    pub fn upgrade(&self, req: InstallRequest<'_>) -> Result<PluginRecord> {
        self.upgrade_with(req, UpgradePolicy::default())
    }

    /// Installs a new version of an installed plugin and makes it current. The caller shows the capability diff
    /// ([`capability_diff`]) and what changes about the plugin's identity ([`UpgradeCheck`]), and gets approval
    /// before calling this. A plugin is pinned to the publisher it was installed from: another publisher (or
    /// unsigned where it was signed, or signed where it was unsigned) is refused unless `policy` allows it, and so
    /// is an older version (or one that cannot be compared). An allowed change of publisher is recorded in the
    /// history.
    pub fn upgrade_with(
        &self,
        req: InstallRequest<'_>,
        policy: UpgradePolicy,
    ) -> Result<PluginRecord> {
        let declared = Self::check_request(&req)?;
        // Checked before the blob is written (a refusal writes nothing), and again inside the transaction against
        // what is current there: another process may have changed it in between.
        let before = self.plugin(req.plugin)?;
        let check = Self::upgrade_checks(&before, &req, policy)?;
        if let Some(pg) = &self.shared {
            return self.upgrade_shared(pg, &req, &declared, &before, &check);
        }
        self.blobs.put(req.bytes)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = tx
            .query_row(
                &format!("{PLUGIN_SELECT} WHERE p.id = ?1"),
                [req.plugin],
                plugin_from_row,
            )
            .optional()?
            .ok_or_else(|| RegistryError::NotInstalled(req.plugin.to_string()))?;
        let check = Self::upgrade_checks(&current, &req, policy)?;
        let seq = Self::insert_version(&tx, &req, &declared, Some(current.seq))?;
        // A new, verified version re-enables a plugin that was disabled (e.g. for a revoked key).
        tx.execute(
            "UPDATE plugins SET current_seq = ?2, enabled = 1, disabled_reason = NULL, updated_at = ?3 WHERE id = ?1",
            params![req.plugin, seq, now()],
        )?;
        for (action, detail) in upgrade_logs(&req, &current, &check) {
            Self::log(&tx, Some(req.plugin), action, &detail)?;
        }
        Self::bump(&tx)?;
        tx.commit()?;
        drop(conn);
        self.plugin(req.plugin)
    }

    /// [`Registry::upgrade_with`] in the shared store: the component first (by digest), then one index
    /// transaction that refuses if the current version is no longer the one the checks ran against.
    fn upgrade_shared(
        &self,
        pg: &crate::pg::PgStore,
        req: &InstallRequest<'_>,
        declared: &[String],
        current: &PluginRecord,
        check: &UpgradeCheck,
    ) -> Result<PluginRecord> {
        let digest = req.provenance.digest().to_string();
        pg.index_put_blob(&digest, req.bytes)?;
        let logs = upgrade_logs(req, current, check)
            .into_iter()
            .map(|(a, d)| (a.to_string(), d))
            .collect();
        match pg.index_upgrade(Self::version_row(req, declared), current.seq, logs)? {
            Ok(()) => self.plugin(req.plugin),
            Err(crate::pg::Refused::Moved) => Err(moved(req.plugin)),
            Err(_) => Err(RegistryError::NotInstalled(req.plugin.to_string())),
        }
    }

    /// The shared store's row for the version `req` installs.
    fn version_row(req: &InstallRequest<'_>, declared: &[String]) -> crate::pg::VersionRow {
        let (key_fingerprint, key_name, signature) = match &req.provenance {
            Provenance::Signed(v) => (
                Some(v.signer().fingerprint.clone()),
                Some(v.signer().name.clone()),
                Some(v.signature_json().to_string()),
            ),
            Provenance::Unsigned { .. } => (None, None, None),
        };
        crate::pg::VersionRow {
            plugin_id: req.plugin.to_string(),
            version: req.version.to_string(),
            digest: req.provenance.digest().to_string(),
            size: req.bytes.len() as i64,
            key_fingerprint,
            key_name,
            signature,
            declared: json(&declared),
            grants: json(&req.grants),
            manifest: req.manifest_json.clone(),
            source: req.source.as_ref().map(|s| s.reference.clone()),
            manifest_digest: req.source.as_ref().and_then(|s| s.manifest_digest.clone()),
        }
    }

    fn upgrade_checks(
        current: &PluginRecord,
        req: &InstallRequest<'_>,
        policy: UpgradePolicy,
    ) -> Result<UpgradeCheck> {
        if current.digest == req.provenance.digest().to_string() {
            return Err(RegistryError::SameVersion {
                id: current.id.clone(),
                version: current.version.clone(),
                digest: current.digest.clone(),
            });
        }
        let check = UpgradeCheck::new(current, &req.provenance, req.version);
        check.enforce(req.plugin, policy)?;
        Ok(check)
    }

    /// Makes the version that was current before the current one current again, with the grants it had. Rollback
    /// pops: each version remembers the one it replaced, so rolling back twice after install 1 → upgrade 2 →
    /// rollback → upgrade 3 lands on 1, then finds nothing more. Rolling back to nothing, or to the very same
    /// component, is an error that changes nothing.
    pub fn rollback(&self, id: &str) -> Result<PluginRecord> {
        if let Some(pg) = &self.shared {
            // Keys stay in the operator's trust store: a version it revoked comes back disabled.
            let revoked = self
                .keys()?
                .into_iter()
                .filter(|k| k.revoked_at.is_some())
                .map(|k| k.fingerprint)
                .collect();
            return match pg.index_rollback(id, revoked)? {
                Ok(_) => self.plugin(id),
                Err(crate::pg::Refused::Same(version, digest)) => {
                    Err(RegistryError::RollbackToSame {
                        id: id.to_string(),
                        version,
                        digest,
                    })
                }
                Err(crate::pg::Refused::NoEarlier) => {
                    Err(RegistryError::NoEarlierVersion(id.to_string()))
                }
                Err(_) => Err(RegistryError::NotInstalled(id.to_string())),
            };
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = tx
            .query_row(
                &format!("{PLUGIN_SELECT} WHERE p.id = ?1"),
                [id],
                plugin_from_row,
            )
            .optional()?
            .ok_or_else(|| RegistryError::NotInstalled(id.to_string()))?;
        let prev: Option<(i64, String, String, Option<i64>)> = tx
            .query_row(
                "SELECT v.seq, v.version, v.digest, k.revoked_at
                 FROM plugins p JOIN versions cur ON cur.seq = p.current_seq
                 JOIN versions v ON v.seq = cur.previous_seq AND v.plugin_id = p.id
                 LEFT JOIN keys k ON k.fingerprint = v.key_fingerprint
                 WHERE p.id = ?1 AND p.current_seq = ?2",
                params![id, current.seq],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let (seq, version, digest, revoked) =
            prev.ok_or_else(|| RegistryError::NoEarlierVersion(id.to_string()))?;
        if digest == current.digest {
            return Err(RegistryError::RollbackToSame {
                id: id.to_string(),
                version,
                digest,
            });
        }
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
            &format!("{} -> {version} {digest}", current.version),
        )?;
        Self::bump(&tx)?;
        tx.commit()?;
        drop(conn);
        self.plugin(id)
    }

    /// Removes a plugin: its versions, config and secrets. Blobs no other version uses are deleted.
    pub fn remove(&self, id: &str) -> Result<PluginRecord> {
        let record = self.plugin(id)?;
        if let Some(pg) = &self.shared {
            return match pg.index_remove(id, &record.version)? {
                Ok(()) => Ok(record),
                Err(_) => Err(RegistryError::NotInstalled(id.to_string())),
            };
        }
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
}

/// The audit rows of an upgrade: the upgrade itself, and an allowed change of publisher or downgrade.
fn upgrade_logs(
    req: &InstallRequest<'_>,
    current: &PluginRecord,
    check: &UpgradeCheck,
) -> Vec<(&'static str, String)> {
    let mut logs = vec![(
        "upgrade",
        format!(
            "{} -> {} {} grants [{}]{}",
            current.version,
            req.version,
            req.provenance.digest(),
            req.grants.join(", "),
            source_note(req)
        ),
    )];
    if check.publisher_changes() {
        logs.push((
            "publisher-change",
            format!(
                "{} -> {} (allowed with --allow-publisher-change)",
                check.old_publisher, check.new_publisher
            ),
        ));
    }
    if check.is_downgrade() {
        logs.push((
            "downgrade",
            format!(
                "{} -> {} (allowed with --allow-downgrade)",
                check.from_version, check.to_version
            ),
        ));
    }
    logs
}

/// The shared store's refusal of a change checked against a version that is no longer current.
pub(crate) fn moved(id: &str) -> RegistryError {
    RegistryError::Shared(crate::pg::PgError::Db(format!(
        "plugin `{id}` changed while this change was being checked (another operator upgraded or removed it); \
         nothing was written, try again"
    )))
}

/// ` from REF (manifest sha256:…)` for the history line of a version that was fetched.
fn source_note(req: &InstallRequest<'_>) -> String {
    match &req.source {
        None => String::new(),
        Some(s) => match &s.manifest_digest {
            Some(m) => format!(" from {} (manifest {m})", s.reference),
            None => format!(" from {}", s.reference),
        },
    }
}

/// The difference between two grant lists: what is new (needs approval) and what goes away.
pub fn capability_diff(old: &[String], new: &[String]) -> (Vec<String>, Vec<String>) {
    let added = new.iter().filter(|g| !old.contains(g)).cloned().collect();
    let removed = old.iter().filter(|g| !new.contains(g)).cloned().collect();
    (added, removed)
}
