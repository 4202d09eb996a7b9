//! Changing which version of a plugin is current in the shared store: an upgrade (a new version row that remembers
//! the one it replaced), a rollback (back to that one), and disabling the plugins a revoked publisher key signed.
//! Each is one index change as in `index.rs`: the generation row locked first, the audit row and the NOTIFY in the
//! same transaction. The rules (signatures, publisher pin, downgrade) are [`crate::Registry`]'s; this file only
//! checks that what they were checked against is still current.

use super::error::PgResult;
use super::index::{Refused, VersionRow, begin_change, insert_version, log};
use super::store::PgStore;
use crate::units::now_secs;

/// What a rollback did: from which version to which (version, digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    pub from: String,
    pub version: String,
    pub digest: String,
}

impl PgStore {
    /// Adds `row` as a new version of its plugin and makes it current (re-enabling the plugin), if the current
    /// version is still `expected_seq`; `logs` are the audit rows (action, detail) the upgrade writes.
    pub fn index_upgrade(
        &self,
        row: VersionRow,
        expected_seq: i64,
        logs: Vec<(String, String)>,
    ) -> PgResult<Result<(), Refused>> {
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            begin_change(&tx).await?;
            let current = tx
                .query_opt(
                    "SELECT current_seq FROM index_plugins WHERE id = $1",
                    &[&row.plugin_id],
                )
                .await?;
            match current.map(|r| r.get::<_, i64>(0)) {
                None => return Ok(Err(Refused::NotInstalled)),
                Some(s) if s != expected_seq => return Ok(Err(Refused::Moved)),
                Some(_) => {}
            }
            let at = now_secs();
            let seq = insert_version(&tx, &row, at, Some(expected_seq)).await?;
            // A new, verified version re-enables a plugin that was disabled (e.g. for a revoked key).
            tx.execute(
                "UPDATE index_plugins SET current_seq = $2, enabled = TRUE, disabled_reason = NULL, \
                 updated_at = $3 WHERE id = $1",
                &[&row.plugin_id, &seq, &at],
            )
            .await?;
            for (action, detail) in &logs {
                log(&tx, Some(&row.plugin_id), action, detail).await?;
            }
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    /// Makes the version the current one replaced current again. A version signed by one of `revoked` (key
    /// fingerprints the operator's trust store revoked) comes back disabled.
    pub fn index_rollback(
        &self,
        id: &str,
        revoked: Vec<String>,
    ) -> PgResult<Result<RolledBack, Refused>> {
        let id = id.to_string();
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            begin_change(&tx).await?;
            let Some(cur) = tx
                .query_opt(
                    "SELECT v.version, v.digest, v.previous_seq FROM index_plugins p \
                     JOIN index_versions v ON v.seq = p.current_seq WHERE p.id = $1",
                    &[&id],
                )
                .await?
            else {
                return Ok(Err(Refused::NotInstalled));
            };
            let (from, cur_digest, prev): (String, String, Option<i64>) =
                (cur.get(0), cur.get(1), cur.get(2));
            let Some(prev) = prev else {
                return Ok(Err(Refused::NoEarlier));
            };
            let Some(v) = tx
                .query_opt(
                    "SELECT version, digest, key_fingerprint FROM index_versions \
                     WHERE seq = $1 AND plugin_id = $2",
                    &[&prev, &id],
                )
                .await?
            else {
                return Ok(Err(Refused::NoEarlier));
            };
            let (version, digest, key): (String, String, Option<String>) =
                (v.get(0), v.get(1), v.get(2));
            if digest == cur_digest {
                return Ok(Err(Refused::Same(version, digest)));
            }
            let disabled = key
                .filter(|k| revoked.contains(k))
                .map(|_| "its publisher key was revoked".to_string());
            tx.execute(
                "UPDATE index_plugins SET current_seq = $2, enabled = $3, disabled_reason = $4, updated_at = $5 \
                 WHERE id = $1",
                &[&id, &prev, &disabled.is_none(), &disabled, &now_secs()],
            )
            .await?;
            log(
                &tx,
                Some(&id),
                "rollback",
                &format!("{from} -> {version} {digest}"),
            )
            .await?;
            tx.commit().await?;
            Ok(Ok(RolledBack {
                from,
                version,
                digest,
            }))
        })
    }

    /// Disables every plugin whose current version the key `fingerprint` (named `name` in the operator's trust
    /// store) signed, and records the revocation; returns their ids.
    pub fn index_revoke_key(&self, fingerprint: &str, name: &str) -> PgResult<Vec<String>> {
        let (fp, name) = (fingerprint.to_string(), name.to_string());
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            begin_change(&tx).await?;
            let reason = format!("its publisher key `{name}` ({fp}) was revoked");
            let rows = tx
                .query(
                    "UPDATE index_plugins p SET enabled = FALSE, disabled_reason = $2, updated_at = $3 \
                     FROM index_versions v WHERE v.seq = p.current_seq AND v.key_fingerprint = $1 \
                     RETURNING p.id",
                    &[&fp, &reason, &now_secs()],
                )
                .await?;
            let mut ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            ids.sort();
            log(&tx, None, "revoke-key", &format!("{name} {fp}")).await?;
            tx.commit().await?;
            Ok(ids)
        })
    }
}
