//! Scoped client tokens and the audit trail as the operator reads them, in the shared store. Tokens are kept by
//! their blake3 hash only (the registry makes and hashes them); every replica checks a presented token against
//! `index_tokens` on each request, so a token created or revoked through any CLI holds on every replica at once
//! (whether any token exists at all is kept with the index generation: see `Registry::any_token`).
//! Creating and revoking one is an index change (generation row locked, audit row, NOTIFY) as in `index.rs`.

use super::error::PgResult;
use super::index::{begin_change, log};
use super::store::PgStore;

/// A token as stored (never the token itself): the scope lists as JSON, times in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub name: String,
    pub plugins: Option<String>,
    pub tools: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// One row of the audit trail: seq, at, plugin, action, detail, hash.
pub type AuditRow = (i64, i64, Option<String>, String, String, Vec<u8>);

const COLUMNS: &str = "name, plugins, tools, created_at, expires_at, revoked_at";

fn token_row(r: &tokio_postgres::Row) -> TokenRow {
    TokenRow {
        name: r.get(0),
        plugins: r.get(1),
        tools: r.get(2),
        created_at: r.get(3),
        expires_at: r.get(4),
        revoked_at: r.get(5),
    }
}

fn audit_row(r: &tokio_postgres::Row) -> AuditRow {
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))
}

impl PgStore {
    /// Stores a new token by its hash; `Ok(false)` when the name is taken (nothing written). `detail` is the audit
    /// row's (name and scope, never the token).
    pub fn index_token_create(
        &self,
        row: TokenRow,
        hash: Vec<u8>,
        detail: String,
    ) -> PgResult<bool> {
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            begin_change(&tx).await?;
            if tx
                .query_opt("SELECT 1 FROM index_tokens WHERE name = $1", &[&row.name])
                .await?
                .is_some()
            {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO index_tokens (name, hash, plugins, tools, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &row.name,
                    &hash,
                    &row.plugins,
                    &row.tools,
                    &row.created_at,
                    &row.expires_at,
                ],
            )
            .await?;
            log(&tx, None, "token-create", &detail).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Every token, newest first.
    pub fn index_tokens(&self) -> PgResult<Vec<TokenRow>> {
        self.run(|pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    &format!("SELECT {COLUMNS} FROM index_tokens ORDER BY created_at DESC, name"),
                    &[],
                )
                .await?;
            Ok(rows.iter().map(token_row).collect())
        })
    }

    /// Revokes the token `name` at `now`: `None` when there is no such token, `Some(false)` when it was revoked
    /// already (nothing written).
    pub fn index_token_revoke(&self, name: &str, now: i64) -> PgResult<Option<bool>> {
        let name = name.to_string();
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            begin_change(&tx).await?;
            let n = tx
                .execute(
                    "UPDATE index_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
                    &[&name, &now],
                )
                .await?;
            if n == 0 {
                let known = tx
                    .query_opt("SELECT 1 FROM index_tokens WHERE name = $1", &[&name])
                    .await?
                    .is_some();
                return Ok(known.then_some(false));
            }
            log(&tx, None, "token-revoke", &name).await?;
            tx.commit().await?;
            Ok(Some(true))
        })
    }

    /// The token whose hash is `hash`, if any (revoked and expired ones too: the caller decides).
    pub fn index_token_by_hash(&self, hash: Vec<u8>) -> PgResult<Option<TokenRow>> {
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let row = c
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM index_tokens WHERE hash = $1"),
                    &[&hash],
                )
                .await?;
            Ok(row.as_ref().map(token_row))
        })
    }

    /// The index generation and whether any token was ever created (revoked ones count), read together.
    pub fn index_token_state(&self) -> PgResult<(i64, bool)> {
        self.run(|pool| async move {
            let c = pool.get().await?;
            let r = c
                .query_one(
                    "SELECT generation, EXISTS (SELECT 1 FROM index_tokens) FROM index_meta WHERE id = 1",
                    &[],
                )
                .await?;
            Ok((r.get(0), r.get(1)))
        })
    }

    /// The newest `limit` rows of the audit trail at or after `since` (Unix seconds), newest first.
    pub fn index_audit(&self, since: Option<i64>, limit: usize) -> PgResult<Vec<AuditRow>> {
        let limit = limit.min(100_000) as i64;
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    "SELECT seq, at, plugin_id, action, detail, hash FROM index_history \
                     WHERE at >= $1 ORDER BY seq DESC LIMIT $2",
                    &[&since.unwrap_or(i64::MIN), &limit],
                )
                .await?;
            Ok(rows.iter().map(audit_row).collect())
        })
    }

    /// Up to `limit` rows of the audit trail after `after_seq`, oldest first (a walk of the whole trail, a page at
    /// a time).
    pub fn index_audit_page(&self, after_seq: i64, limit: usize) -> PgResult<Vec<AuditRow>> {
        let limit = limit.min(100_000) as i64;
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    "SELECT seq, at, plugin_id, action, detail, hash FROM index_history \
                     WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&after_seq, &limit],
                )
                .await?;
            Ok(rows.iter().map(audit_row).collect())
        })
    }
}
