//! Moving a data dir's registry index into the shared store (`plughost store migrate`): plugins, every version
//! (with its rollback link), grants, limits, config and secrets (sealed by the caller with the store key), client
//! tokens (their hashes) and the audit trail, copied verbatim — the same version numbers and the same chain of
//! hashes, so `audit --verify` finds the same head on PostgreSQL. The components go first, by digest
//! ([`PgStore::index_put_blob`], idempotent), then everything else in one transaction: a failed move leaves no
//! half-moved index, and running it again starts over. A store whose index already holds this data dir's trail is
//! left as it is; one that holds another index is refused.

use super::error::PgResult;
use super::index::{ConfigRow, VersionRow, begin_change};
use super::notify::CHANNEL;
use super::store::{OPEN_TIMEOUT, PgStore};
use super::tokens::{AuditRow, TokenRow};

/// A version as the data dir holds it: its number, the one it replaced, when it was installed.
#[derive(Debug, Clone)]
pub struct VersionDump {
    pub seq: i64,
    pub previous_seq: Option<i64>,
    pub installed_at: i64,
    pub row: VersionRow,
}

/// A plugin row as the data dir holds it.
#[derive(Debug, Clone)]
pub struct PluginDump {
    pub id: String,
    pub current_seq: i64,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// JSON.
    pub limits: String,
    pub installed_at: i64,
    pub updated_at: i64,
}

/// A whole registry index to move (secrets already sealed).
#[derive(Debug, Clone, Default)]
pub struct IndexDump {
    pub versions: Vec<VersionDump>,
    pub plugins: Vec<PluginDump>,
    /// (plugin, row).
    pub config: Vec<(String, ConfigRow)>,
    /// (row, the token's hash).
    pub tokens: Vec<(TokenRow, Vec<u8>)>,
    /// Oldest first.
    pub history: Vec<AuditRow>,
}

/// What a move found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexImport {
    /// Copied, in one transaction.
    Moved,
    /// The store's index is this one already (its audit trail holds this one's last row): nothing written.
    AlreadyThere,
    /// The store holds another index: nothing written.
    Different(String),
}

impl PgStore {
    /// Copies `dump` into the store's index if that is empty (see the module's notes).
    pub fn import_index(&self, dump: IndexDump) -> PgResult<IndexImport> {
        self.run_for(OPEN_TIMEOUT, move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            begin_change(&tx).await?;
            let ours = dump.history.last();
            let r = tx
                .query_one(
                    "SELECT (SELECT count(*) FROM index_plugins), (SELECT count(*) FROM index_versions), \
                     (SELECT count(*) FROM index_tokens), (SELECT count(*) FROM index_history), \
                     (SELECT hash FROM index_history WHERE seq = $1)",
                    &[&ours.map_or(0, |h| h.0)],
                )
                .await?;
            let (plugins, versions, tokens, history, there): (i64, i64, i64, i64, Option<Vec<u8>>) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            if plugins + versions + tokens + history > 0 {
                // Moved before when the store's trail holds this one's last row (the cluster may have gone on).
                return Ok(if ours.is_some_and(|h| Some(&h.5) == there.as_ref()) {
                    IndexImport::AlreadyThere
                } else {
                    IndexImport::Different(format!(
                        "the store's registry index already holds {plugins} plugins and {history} audit entries \
                         that are not this data dir's"
                    ))
                });
            }
            for v in &dump.versions {
                let r = &v.row;
                tx.execute(
                    "INSERT INTO index_versions (seq, plugin_id, version, digest, size, key_fingerprint, key_name, \
                     signature, declared, grants, manifest, installed_at, previous_seq, source, manifest_digest) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                    &[
                        &v.seq,
                        &r.plugin_id,
                        &r.version,
                        &r.digest,
                        &r.size,
                        &r.key_fingerprint,
                        &r.key_name,
                        &r.signature,
                        &r.declared,
                        &r.grants,
                        &r.manifest,
                        &v.installed_at,
                        &v.previous_seq,
                        &r.source,
                        &r.manifest_digest,
                    ],
                )
                .await?;
            }
            // Versions installed on the store from now on are numbered after the moved ones.
            tx.execute(
                "SELECT setval(pg_get_serial_sequence('index_versions', 'seq'), \
                 greatest((SELECT max(seq) FROM index_versions), 1))",
                &[],
            )
            .await?;
            for p in &dump.plugins {
                tx.execute(
                    "INSERT INTO index_plugins (id, current_seq, enabled, disabled_reason, limits, installed_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &p.id,
                        &p.current_seq,
                        &p.enabled,
                        &p.disabled_reason,
                        &p.limits,
                        &p.installed_at,
                        &p.updated_at,
                    ],
                )
                .await?;
            }
            for (plugin, c) in &dump.config {
                tx.execute(
                    "INSERT INTO index_config (plugin_id, key, value, secret) VALUES ($1, $2, $3, $4)",
                    &[plugin, &c.key, &c.value, &c.secret],
                )
                .await?;
            }
            for (t, hash) in &dump.tokens {
                tx.execute(
                    "INSERT INTO index_tokens (name, hash, plugins, tools, created_at, expires_at, revoked_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &t.name,
                        hash,
                        &t.plugins,
                        &t.tools,
                        &t.created_at,
                        &t.expires_at,
                        &t.revoked_at,
                    ],
                )
                .await?;
            }
            for (seq, at, plugin, action, detail, hash) in &dump.history {
                tx.execute(
                    "INSERT INTO index_history (seq, at, plugin_id, action, detail, hash) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[seq, at, plugin, action, detail, hash],
                )
                .await?;
            }
            // Every replica reloads everything.
            tx.execute("SELECT pg_notify($1, '*')", &[&CHANNEL]).await?;
            tx.commit().await?;
            Ok(IndexImport::Moved)
        })
    }
}
