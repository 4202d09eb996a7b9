//! The audit trail: every operator action (install, upgrade, rollback, remove, grants, limits, config and secret
//! names, enable/disable, key trust and revocation, token create/revoke) and every refused install is a row of
//! the index's `history` table, written in the same transaction as the change it records — a change without its
//! row cannot commit. Each row carries `hash = blake3(previous row's hash ‖ seq ‖ at ‖ plugin ‖ action ‖ detail)`,
//! so editing, deleting, reordering or inserting a row breaks the chain at that row; `plughost ledger verify` and
//! `plughost audit --verify` walk it. Rows written before the chain existed were sealed once, when the index was
//! migrated to schema 6; a row without a hash after that is itself a break.
//!
//! Values never enter the trail: a config or secret change records the key's name only, a token its name and scope.

use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::Registry;
use crate::error::{RegistryError, Result};
use crate::units::now_secs as now;

/// The chain's start: the `prev` of the first row.
pub(crate) const GENESIS: [u8; 32] = [0; 32];
/// Longest detail kept (an error text of a refused install, a grant list).
pub(crate) const MAX_DETAIL: usize = 2048;

/// One row of the trail.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: i64,
    pub plugin: Option<String>,
    pub action: String,
    pub detail: String,
    /// Hex of the row's chain hash.
    pub hash: String,
}

/// What a walk of the whole trail found intact.
#[derive(Debug, Clone, Serialize)]
pub struct AuditCheck {
    pub entries: u64,
    /// Hex of the last row's hash (the chain head); `None` for an empty trail.
    pub head: Option<String>,
}

pub(crate) fn hash(
    prev: &[u8; 32],
    seq: i64,
    at: i64,
    plugin: Option<&str>,
    action: &str,
    detail: &str,
) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("plughost audit trail v1");
    h.update(prev);
    h.update(&seq.to_le_bytes());
    h.update(&at.to_le_bytes());
    match plugin {
        Some(p) => {
            h.update(&[1]);
            h.update(&(p.len() as u64).to_le_bytes());
            h.update(p.as_bytes());
        }
        None => {
            h.update(&[0]);
        }
    }
    for field in [action, detail] {
        h.update(&(field.len() as u64).to_le_bytes());
        h.update(field.as_bytes());
    }
    *h.finalize().as_bytes()
}

fn head(tx: &Transaction<'_>) -> Result<[u8; 32]> {
    let last: Option<Vec<u8>> = tx
        .query_row(
            "SELECT hash FROM history ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get::<_, Option<Vec<u8>>>(0),
        )
        .optional()?
        .flatten();
    Ok(match last {
        Some(b) => b.try_into().unwrap_or(GENESIS),
        None => GENESIS,
    })
}

/// Appends one row, chained to the last, inside `tx`.
pub(crate) fn append(
    tx: &Transaction<'_>,
    plugin: Option<&str>,
    action: &str,
    detail: &str,
) -> Result<()> {
    let mut detail = detail.to_string();
    if detail.len() > MAX_DETAIL {
        let mut cut = MAX_DETAIL;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
    }
    let prev = head(tx)?;
    let at = now();
    tx.execute(
        "INSERT INTO history (at, plugin_id, action, detail) VALUES (?1, ?2, ?3, ?4)",
        params![at, plugin, action, detail],
    )?;
    let seq = tx.last_insert_rowid();
    let h = hash(&prev, seq, at, plugin, action, &detail);
    tx.execute(
        "UPDATE history SET hash = ?2 WHERE seq = ?1",
        params![seq, h.to_vec()],
    )?;
    Ok(())
}

/// Chains the rows written before schema 6 (run once, by that migration's step).
pub(crate) fn seal_legacy(tx: &Transaction<'_>) -> Result<()> {
    let rows: Vec<(i64, i64, Option<String>, String, String)> = {
        let mut stmt =
            tx.prepare("SELECT seq, at, plugin_id, action, detail FROM history ORDER BY seq")?;
        stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?
    };
    let mut prev = GENESIS;
    for (seq, at, plugin, action, detail) in rows {
        prev = hash(&prev, seq, at, plugin.as_deref(), &action, &detail);
        tx.execute(
            "UPDATE history SET hash = ?2 WHERE seq = ?1",
            params![seq, prev.to_vec()],
        )?;
    }
    Ok(())
}

impl Registry {
    /// Records something the operator tried that was refused (an install whose signature, publisher or grants
    /// did not pass), in its own transaction. Changes nothing else, so running hosts do not reload.
    pub fn record_refusal(&self, plugin: Option<&str>, action: &str, why: &str) -> Result<()> {
        if let Some(pg) = &self.shared {
            return Ok(pg.index_log(plugin, action, why)?);
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        append(&tx, plugin, action, why)?;
        tx.commit()?;
        Ok(())
    }

    /// The trail, oldest first: rows at or after `since` (Unix seconds), at most `limit` of the newest.
    pub fn audit(&self, since: Option<i64>, limit: usize) -> Result<Vec<AuditEntry>> {
        if let Some(pg) = &self.shared {
            let mut rows: Vec<AuditEntry> = pg
                .index_audit(since, limit)?
                .into_iter()
                .map(|(seq, at, plugin, action, detail, h)| AuditEntry {
                    seq,
                    at,
                    plugin,
                    action,
                    detail,
                    hash: blake3_hex(&h),
                })
                .collect();
            rows.reverse();
            return Ok(rows);
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT seq, at, plugin_id, action, detail, hash FROM history WHERE at >= ?1
             ORDER BY seq DESC LIMIT ?2",
        )?;
        let mut rows = stmt
            .query_map(params![since.unwrap_or(i64::MIN), limit as i64], |r| {
                let h: Option<Vec<u8>> = r.get(5)?;
                Ok(AuditEntry {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    plugin: r.get(2)?,
                    action: r.get(3)?,
                    detail: r.get(4)?,
                    hash: h.map(|h| blake3_hex(&h)).unwrap_or_default(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// Walks the whole trail: [`RegistryError::AuditBroken`] at the first row whose hash does not follow.
    pub fn verify_audit(&self) -> Result<AuditCheck> {
        if let Some(pg) = &self.shared {
            // A page at a time: the trail may be long, memory stays bounded.
            let (mut prev, mut entries, mut after) = (GENESIS, 0u64, i64::MIN);
            loop {
                let page = pg.index_audit_page(after, 5_000)?;
                if page.is_empty() {
                    break;
                }
                for (seq, at, plugin, action, detail, stored) in page {
                    let expect = hash(&prev, seq, at, plugin.as_deref(), &action, &detail);
                    if stored[..] != expect[..] {
                        return Err(RegistryError::AuditBroken {
                            seq,
                            action,
                            why: "the row, or one before it, was changed, removed or inserted"
                                .into(),
                        });
                    }
                    prev = expect;
                    entries += 1;
                    after = seq;
                }
            }
            return Ok(AuditCheck {
                entries,
                head: (entries > 0).then(|| blake3_hex(&prev)),
            });
        }
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT seq, at, plugin_id, action, detail, hash FROM history ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        let (mut prev, mut entries) = (GENESIS, 0u64);
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let plugin: Option<String> = r.get(2)?;
            let (action, detail): (String, String) = (r.get(3)?, r.get(4)?);
            let stored: Option<Vec<u8>> = r.get(5)?;
            let expect = hash(&prev, seq, r.get(1)?, plugin.as_deref(), &action, &detail);
            if stored.as_deref() != Some(&expect[..]) {
                return Err(RegistryError::AuditBroken {
                    seq,
                    action,
                    why: if stored.is_none() {
                        "the row has no hash".into()
                    } else {
                        "the row, or one before it, was changed, removed or inserted".into()
                    },
                });
            }
            prev = expect;
            entries += 1;
        }
        Ok(AuditCheck {
            entries,
            head: (entries > 0).then(|| blake3_hex(&prev)),
        })
    }
}

fn blake3_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
