//! The registry index in the shared store: what `index.db` holds on a data dir (plugins, versions, grants, limits,
//! enabled, config and secrets, the audit trail) plus the components themselves (`index_blobs`, by digest), so every
//! replica and every operator CLI sees one registry. The rules (signatures, declared capabilities, ids) stay in
//! [`crate::Registry`]; this file only reads and writes rows.
//!
//! Every change is one transaction that first bumps the generation row (`index_meta`), which row-locks it: index
//! writes are serialized cluster-wide, the audit trail's chain cannot fork, and the same transaction sends
//! `NOTIFY plughost_changes` (delivered at commit, never for a change that rolled back), so every replica reloads.
//! Publisher keys stay in each operator's data dir: an install is verified against the installing operator's trust
//! store, and the version row keeps the key's name and fingerprint.

use deadpool_postgres::Transaction;

use super::error::PgResult;
use super::notify::CHANNEL;
use super::store::PgStore;
use crate::index::audit;
use crate::units::now_secs;
use crate::{HistoryEntry, PluginRecord, Publisher, VersionRecord};

/// A version row to insert.
#[derive(Debug, Clone)]
pub struct VersionRow {
    pub plugin_id: String,
    pub version: String,
    pub digest: String,
    pub size: i64,
    pub key_fingerprint: Option<String>,
    pub key_name: Option<String>,
    pub signature: Option<String>,
    /// JSON lists.
    pub declared: String,
    pub grants: String,
    pub manifest: String,
    pub source: Option<String>,
    pub manifest_digest: Option<String>,
}

/// A config row as stored: secrets' values are sealed bytes (see the host's store key), plain values UTF-8.
#[derive(Debug, Clone)]
pub struct ConfigRow {
    pub key: String,
    pub value: Vec<u8>,
    pub secret: bool,
}

const PLUGIN_SELECT: &str = "SELECT p.id, v.version, v.digest, v.size, p.enabled, p.disabled_reason, v.key_name, \
    v.key_fingerprint, v.grants, v.declared, p.limits, p.installed_at, p.updated_at, v.manifest, v.seq, v.source, \
    v.manifest_digest FROM index_plugins p JOIN index_versions v ON v.seq = p.current_seq";

fn plugin_row(r: &tokio_postgres::Row) -> PluginRecord {
    let list = |i: usize| serde_json::from_str::<Vec<String>>(r.get(i)).unwrap_or_default();
    let key_fp: Option<String> = r.get(7);
    PluginRecord {
        id: r.get(0),
        version: r.get(1),
        digest: r.get(2),
        size: r.get::<_, i64>(3) as u64,
        enabled: r.get(4),
        disabled_reason: r.get(5),
        unsigned: key_fp.is_none(),
        publisher: key_fp.map(|fingerprint| Publisher {
            name: r
                .get::<_, Option<String>>(6)
                .unwrap_or_else(|| "(unknown key)".into()),
            fingerprint,
            revoked: false,
        }),
        grants: list(8),
        declared: list(9),
        limits: serde_json::from_str(r.get(10)).unwrap_or_default(),
        installed_at: r.get(11),
        updated_at: r.get(12),
        manifest_json: r.get(13),
        seq: r.get(14),
        source: r.get(15),
        manifest_digest: r.get(16),
    }
}

/// Starts a change: bumps the generation, which locks its row until the transaction ends.
pub(super) async fn begin_change(tx: &Transaction<'_>) -> PgResult<()> {
    tx.execute(
        "UPDATE index_meta SET generation = generation + 1 WHERE id = 1",
        &[],
    )
    .await?;
    Ok(())
}

/// Inserts a version row installed at `at`, after `previous` (the version an upgrade replaces; `None` for a first
/// install), and returns its sequence number. Install and upgrade both write versions through here.
pub(super) async fn insert_version(
    tx: &Transaction<'_>,
    row: &VersionRow,
    at: i64,
    previous: Option<i64>,
) -> PgResult<i64> {
    Ok(tx
        .query_one(
            "INSERT INTO index_versions (plugin_id, version, digest, size, key_fingerprint, key_name, \
             signature, declared, grants, manifest, installed_at, previous_seq, source, manifest_digest) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING seq",
            &[
                &row.plugin_id,
                &row.version,
                &row.digest,
                &row.size,
                &row.key_fingerprint,
                &row.key_name,
                &row.signature,
                &row.declared,
                &row.grants,
                &row.manifest,
                &at,
                &previous,
                &row.source,
                &row.manifest_digest,
            ],
        )
        .await?
        .get(0))
}

/// Ends a change: its audit row, chained to the last, and the signal to every replica (sent at commit).
pub(super) async fn log(
    tx: &Transaction<'_>,
    plugin: Option<&str>,
    action: &str,
    detail: &str,
) -> PgResult<()> {
    let mut detail = detail.to_string();
    if detail.len() > audit::MAX_DETAIL {
        let mut cut = audit::MAX_DETAIL;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    let last = tx
        .query_opt(
            "SELECT seq, hash FROM index_history ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await?;
    let (seq, prev) = match last {
        Some(r) => (
            r.get::<_, i64>(0) + 1,
            r.get::<_, Vec<u8>>(1).try_into().unwrap_or(audit::GENESIS),
        ),
        None => (1, audit::GENESIS),
    };
    let at = now_secs();
    let h = audit::hash(&prev, seq, at, plugin, action, &detail);
    tx.execute(
        "INSERT INTO index_history (seq, at, plugin_id, action, detail, hash) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&seq, &at, &plugin, &action, &detail, &h.to_vec()],
    )
    .await?;
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&CHANNEL, &plugin.unwrap_or("*")],
    )
    .await?;
    Ok(())
}

/// What an index change found that stops it (the caller turns it into the registry's error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    NotInstalled,
    /// Already installed, at this version.
    Installed(String),
    /// The current version moved since it was read (another operator changed it): nothing written.
    Moved,
    /// A rollback found no version before the current one.
    NoEarlier,
    /// A rollback would land on the very component that runs now (this version and digest).
    Same(String, String),
}

impl PgStore {
    /// The index's generation: changes with every committed change.
    pub fn index_generation(&self) -> PgResult<i64> {
        self.run(|pool| async move {
            let c = pool.get().await?;
            Ok(
                c.query_one("SELECT generation FROM index_meta WHERE id = 1", &[])
                    .await?
                    .get(0),
            )
        })
    }

    /// Installed plugins (one when `id` is given), by id.
    pub fn index_plugins(&self, id: Option<&str>) -> PgResult<Vec<PluginRecord>> {
        let id = id.map(str::to_string);
        self.run(|pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    &format!("{PLUGIN_SELECT} WHERE $1::TEXT IS NULL OR p.id = $1 ORDER BY p.id"),
                    &[&id],
                )
                .await?;
            Ok(rows.iter().map(plugin_row).collect())
        })
    }

    /// Stores a component by its digest (once; the caller computed the digest from the bytes).
    pub fn index_put_blob(&self, digest: &str, bytes: &[u8]) -> PgResult<()> {
        let (digest, bytes) = (digest.to_string(), bytes.to_vec());
        self.run(|pool| async move {
            let c = pool.get().await?;
            c.execute(
                "INSERT INTO index_blobs (digest, bytes) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
                &[&digest, &bytes],
            )
            .await?;
            Ok(())
        })
    }

    /// A component's bytes, unchecked (the registry checks them against the digest).
    pub fn index_blob(&self, digest: &str) -> PgResult<Option<Vec<u8>>> {
        let digest = digest.to_string();
        self.run(|pool| async move {
            let c = pool.get().await?;
            Ok(c.query_opt(
                "SELECT bytes FROM index_blobs WHERE digest = $1",
                &[&digest],
            )
            .await?
            .map(|r| r.get(0)))
        })
    }

    /// Whether any version of any plugin is the component with this digest (`blake3:…`).
    pub fn index_component_installed(&self, digest: &str) -> PgResult<bool> {
        let digest = digest.to_string();
        self.run(|pool| async move {
            let c = pool.get().await?;
            Ok(c.query_opt(
                "SELECT 1 FROM index_versions WHERE digest = $1 LIMIT 1",
                &[&digest],
            )
            .await?
            .is_some())
        })
    }

    /// Installs a new plugin (its blob must be stored already).
    pub fn index_install(
        &self,
        row: VersionRow,
        action: &str,
        detail: String,
    ) -> PgResult<Result<(), Refused>> {
        let action = action.to_string();
        self.run(|pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            begin_change(&tx).await?;
            let existing = tx
                .query_opt(
                    "SELECT v.version FROM index_plugins p JOIN index_versions v ON v.seq = p.current_seq \
                     WHERE p.id = $1",
                    &[&row.plugin_id],
                )
                .await?;
            if let Some(r) = existing {
                return Ok(Err(Refused::Installed(r.get(0))));
            }
            let at = now_secs();
            let seq = insert_version(&tx, &row, at, None).await?;
            tx.execute(
                "INSERT INTO index_plugins (id, current_seq, enabled, limits, installed_at, updated_at) \
                 VALUES ($1, $2, TRUE, '{}', $3, $3)",
                &[&row.plugin_id, &seq, &at],
            )
            .await?;
            log(&tx, Some(&row.plugin_id), &action, &detail).await?;
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// Changes one plugin row and/or its current version's grants, if the plugin's current version is still
    /// `seq` (what the caller checked its change against).
    #[allow(clippy::too_many_arguments)]
    pub fn index_update(
        &self,
        id: &str,
        seq: i64,
        grants: Option<String>,
        limits: Option<String>,
        enabled: Option<(bool, Option<String>)>,
        action: &str,
        detail: String,
    ) -> PgResult<Result<(), Refused>> {
        let (id, action) = (id.to_string(), action.to_string());
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            begin_change(&tx).await?;
            let current = tx
                .query_opt(
                    "SELECT current_seq FROM index_plugins WHERE id = $1",
                    &[&id],
                )
                .await?;
            match current.map(|r| r.get::<_, i64>(0)) {
                None => return Ok(Err(Refused::NotInstalled)),
                Some(s) if s != seq => return Ok(Err(Refused::Moved)),
                Some(_) => {}
            }
            let now = now_secs();
            if let Some(g) = &grants {
                tx.execute(
                    "UPDATE index_versions SET grants = $2 WHERE seq = $1",
                    &[&seq, g],
                )
                .await?;
            }
            if let Some(l) = &limits {
                tx.execute(
                    "UPDATE index_plugins SET limits = $2 WHERE id = $1",
                    &[&id, l],
                )
                .await?;
            }
            if let Some((on, reason)) = &enabled {
                tx.execute(
                    "UPDATE index_plugins SET enabled = $2, disabled_reason = $3 WHERE id = $1",
                    &[&id, on, reason],
                )
                .await?;
            }
            tx.execute(
                "UPDATE index_plugins SET updated_at = $2 WHERE id = $1",
                &[&id, &now],
            )
            .await?;
            log(&tx, Some(&id), &action, &detail).await?;
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// Sets (`Some`) or removes (`None`) a config value or secret; `Ok(false)` when removing a key that is not there.
    pub fn index_set_config(
        &self,
        id: &str,
        key: &str,
        value: Option<ConfigRow>,
    ) -> PgResult<Result<bool, Refused>> {
        let (id, key) = (id.to_string(), key.to_string());
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            begin_change(&tx).await?;
            if tx
                .query_opt("SELECT 1 FROM index_plugins WHERE id = $1", &[&id])
                .await?
                .is_none()
            {
                return Ok(Err(Refused::NotInstalled));
            }
            let action = match &value {
                Some(v) => {
                    tx.execute(
                        "INSERT INTO index_config (plugin_id, key, value, secret) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, secret = excluded.secret",
                        &[&id, &key, &v.value, &v.secret],
                    )
                    .await?;
                    if v.secret { "secret-set" } else { "config-set" }
                }
                None => {
                    let n = tx
                        .execute(
                            "DELETE FROM index_config WHERE plugin_id = $1 AND key = $2",
                            &[&id, &key],
                        )
                        .await?;
                    if n == 0 {
                        // Nothing changed: roll back the generation bump.
                        return Ok(Ok(false));
                    }
                    "config-unset"
                }
            };
            log(&tx, Some(&id), action, &key).await?;
            tx.commit().await?;
            Ok(Ok(true))
        })
    }

    /// A plugin's config rows, by key.
    pub fn index_config(&self, id: &str) -> PgResult<Vec<ConfigRow>> {
        let id = id.to_string();
        self.run(|pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    "SELECT key, value, secret FROM index_config WHERE plugin_id = $1 ORDER BY key",
                    &[&id],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| ConfigRow {
                    key: r.get(0),
                    value: r.get(1),
                    secret: r.get(2),
                })
                .collect())
        })
    }

    /// Removes a plugin: its versions, config and secrets, and components no other version uses.
    pub fn index_remove(&self, id: &str, version: &str) -> PgResult<Result<(), Refused>> {
        let (id, version) = (id.to_string(), version.to_string());
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            begin_change(&tx).await?;
            let n = tx
                .execute("DELETE FROM index_plugins WHERE id = $1", &[&id])
                .await?;
            if n == 0 {
                return Ok(Err(Refused::NotInstalled));
            }
            tx.execute("DELETE FROM index_versions WHERE plugin_id = $1", &[&id])
                .await?;
            tx.execute("DELETE FROM index_config WHERE plugin_id = $1", &[&id])
                .await?;
            tx.execute(
                "DELETE FROM index_blobs b WHERE NOT EXISTS \
                 (SELECT 1 FROM index_versions v WHERE v.digest = b.digest)",
                &[],
            )
            .await?;
            log(&tx, Some(&id), "remove", &version).await?;
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// Records a refused operator action in the audit trail.
    pub fn index_log(&self, plugin: Option<&str>, action: &str, detail: &str) -> PgResult<()> {
        let (plugin, action, detail) = (
            plugin.map(str::to_string),
            action.to_string(),
            detail.to_string(),
        );
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            // Locks the generation row (serializing the trail) without changing it.
            tx.execute(
                "SELECT generation FROM index_meta WHERE id = 1 FOR UPDATE",
                &[],
            )
            .await?;
            log(&tx, plugin.as_deref(), &action, &detail).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every version of a plugin, newest first.
    pub fn index_versions(&self, id: &str, current: i64) -> PgResult<Vec<VersionRecord>> {
        let id = id.to_string();
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    "SELECT seq, version, digest, key_name, grants, installed_at FROM index_versions \
                     WHERE plugin_id = $1 ORDER BY seq DESC",
                    &[&id],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    let seq: i64 = r.get(0);
                    VersionRecord {
                        seq,
                        version: r.get(1),
                        digest: r.get(2),
                        publisher: r.get(3),
                        grants: serde_json::from_str(r.get(4)).unwrap_or_default(),
                        installed_at: r.get(5),
                        current: seq == current,
                    }
                })
                .collect())
        })
    }

    /// The audit trail, newest first (for one plugin, or all).
    pub fn index_history(&self, id: Option<&str>, limit: usize) -> PgResult<Vec<HistoryEntry>> {
        let id = id.map(str::to_string);
        let limit = limit.min(100_000) as i64;
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    "SELECT at, plugin_id, action, detail FROM index_history \
                     WHERE $1::TEXT IS NULL OR plugin_id = $1 ORDER BY seq DESC LIMIT $2",
                    &[&id, &limit],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| HistoryEntry {
                    at: r.get(0),
                    plugin: r.get(1),
                    action: r.get(2),
                    detail: r.get(3),
                })
                .collect())
        })
    }
}
