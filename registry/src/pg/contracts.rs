//! Contracts exact across replicas: the check and the reservation of a call happen in one transaction that holds
//! the plugin's advisory lock, so two replicas can never both admit the last call of a window. A reservation is a
//! `contract_calls` row written at admission (the call counts whether the guest then succeeds or fails, as a call
//! admitted on SQLite does); rows older than the longest window are pruned by the same transaction. Each
//! reservation also adds to `contract_minutes`, the per-minute totals: a check sums the whole minutes of its window
//! from them and counts only the minute the window starts in row by row, so a month-long contract reads at most
//! 43,201 totals and one minute of reservations, not every call of the month. Reservations and totals carry the
//! principal that made the call (`''` for none), so a principal's own contract counts only its calls.

use super::error::PgResult;
use super::store::PgStore;
use crate::Window;
use crate::ledger::MINUTE_MS;

/// One limit to check: the plugin's own contract (`tool: None`), one tool's, or one principal's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub tool: Option<String>,
    /// A principal's own contract counts only the calls that principal made.
    pub principal: Option<String>,
    pub window: Window,
    pub max_calls: Option<u64>,
    pub max_cost: Option<u64>,
}

/// What [`PgStore::admit`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Reserved: the call runs and counts.
    Admitted,
    /// Refused by `scopes[scope]`: `used` of `limit` calls (`cost: false`) or tokens (`cost: true`) in its window;
    /// the next call fits at `until_ms` (`None`: never, the call costs more than the budget).
    Refused {
        scope: usize,
        cost: bool,
        used: u64,
        limit: u64,
        until_ms: Option<i64>,
    },
}

/// A lock key per plugin (the advisory lock space is one bigint).
fn lock_key(plugin: &str) -> i64 {
    let h = blake3::hash(plugin.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    i64::from_le_bytes(b)
}

/// A scope's calls, cost and oldest reservation in the window that ends at `$now`: whole minutes from the totals,
/// the minute the window starts in call by call.
const COUNT: &str = "WITH whole AS (
        SELECT coalesce(sum(calls), 0)::BIGINT AS calls, coalesce(sum(cost), 0)::BIGINT AS cost
        FROM contract_minutes
        WHERE plugin = $1 AND ($2::TEXT IS NULL OR tool = $2) AND ($6::TEXT IS NULL OR principal = $6)
        AND minute > $3
     ), edge AS (
        SELECT count(*) AS calls, coalesce(sum(cost), 0)::BIGINT AS cost FROM contract_calls
        WHERE plugin = $1 AND ($2::TEXT IS NULL OR tool = $2) AND ($6::TEXT IS NULL OR principal = $6)
        AND time_ms > $4 AND time_ms < $5
     ), oldest AS (
        SELECT min(time_ms) AS t FROM contract_calls
        WHERE plugin = $1 AND ($2::TEXT IS NULL OR tool = $2) AND ($6::TEXT IS NULL OR principal = $6)
        AND time_ms > $4
     )
     SELECT whole.calls + edge.calls, whole.cost + edge.cost, oldest.t FROM whole, edge, oldest";

/// What `scope` has used of its window at `now_ms`: (calls, cost, the oldest reservation's time).
async fn used<C: deadpool_postgres::GenericClient>(
    c: &C,
    count: &tokio_postgres::Statement,
    plugin: &str,
    s: &Scope,
    now_ms: i64,
) -> PgResult<(u64, u64, Option<i64>)> {
    let since = now_ms - s.window.millis();
    let edge = since.div_euclid(MINUTE_MS);
    let r = c
        .query_one(
            count,
            &[
                &plugin,
                &s.tool,
                &edge,
                &since,
                &((edge + 1) * MINUTE_MS),
                &s.principal,
            ],
        )
        .await?;
    Ok((
        r.get::<_, i64>(0) as u64,
        r.get::<_, i64>(1) as u64,
        r.get::<_, Option<i64>>(2),
    ))
}

/// One scope's use of its current window (see [`PgStore::contract_usage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeUse {
    pub calls: u64,
    pub cost: u64,
    /// The oldest reservation in the window (Unix ms), if any.
    pub oldest_ms: Option<i64>,
}

impl PgStore {
    /// What each of `scopes` of `plugin` has used of its window at `now_ms`, cluster-wide (what `quota` shows;
    /// reads only, reserves nothing).
    pub fn contract_usage(
        &self,
        plugin: &str,
        now_ms: i64,
        scopes: &[Scope],
    ) -> PgResult<Vec<ScopeUse>> {
        let (plugin, scopes) = (plugin.to_string(), scopes.to_vec());
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let count = c.prepare_cached(COUNT).await?;
            let mut out = Vec::with_capacity(scopes.len());
            for s in &scopes {
                let (calls, cost, oldest_ms) = used(&c, &count, &plugin, s, now_ms).await?;
                out.push(ScopeUse {
                    calls,
                    cost,
                    oldest_ms,
                });
            }
            Ok(out)
        })
    }

    /// Checks every scope for a call of `tool` by `principal` costing `cost` at `now_ms` and, if all allow it,
    /// reserves it (for that principal) — one transaction under the plugin's lock, so admission is exact however
    /// many replicas ask at once. The caller passes the scopes that apply to this call, the first to refuse wins.
    pub fn admit(
        &self,
        plugin: &str,
        tool: &str,
        principal: Option<&str>,
        cost: u64,
        now_ms: i64,
        scopes: &[Scope],
    ) -> PgResult<Admission> {
        let (plugin, tool, scopes) = (plugin.to_string(), tool.to_string(), scopes.to_vec());
        let principal = principal.unwrap_or_default().to_string();
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(&plugin)])
                .await?;
            let count = tx.prepare_cached(COUNT).await?;
            for (i, s) in scopes.iter().enumerate() {
                let (calls, spent, oldest) = used(&tx, &count, &plugin, s, now_ms).await?;
                let until = oldest.map(|t| t + s.window.millis());
                if let Some(max) = s.max_calls
                    && calls + 1 > max
                {
                    return Ok(Admission::Refused {
                        scope: i,
                        cost: false,
                        used: calls,
                        limit: max,
                        until_ms: until.or(Some(now_ms)),
                    });
                }
                if let Some(max) = s.max_cost
                    && spent + cost > max
                {
                    return Ok(Admission::Refused {
                        scope: i,
                        cost: true,
                        used: spent,
                        limit: max,
                        until_ms: if cost > max { None } else { until },
                    });
                }
            }
            tx.execute(
                "DELETE FROM contract_calls WHERE plugin = $1 AND time_ms <= $2",
                &[&plugin, &(now_ms - Window::Month.millis())],
            )
            .await?;
            tx.execute(
                "DELETE FROM contract_minutes WHERE plugin = $1 AND minute < $2",
                &[
                    &plugin,
                    &(now_ms - Window::Month.millis()).div_euclid(MINUTE_MS),
                ],
            )
            .await?;
            tx.execute(
                "INSERT INTO contract_calls (plugin, tool, principal, time_ms, cost) VALUES ($1, $2, $3, $4, $5)",
                &[&plugin, &tool, &principal, &now_ms, &(cost as i64)],
            )
            .await?;
            tx.execute(
                "INSERT INTO contract_minutes (plugin, tool, principal, minute, calls, cost) \
                 VALUES ($1, $2, $3, $4, 1, $5) \
                 ON CONFLICT (plugin, minute, tool, principal) DO UPDATE SET calls = contract_minutes.calls + 1, \
                 cost = contract_minutes.cost + excluded.cost",
                &[
                    &plugin,
                    &tool,
                    &principal,
                    &now_ms.div_euclid(MINUTE_MS),
                    &(cost as i64),
                ],
            )
            .await?;
            tx.commit().await?;
            Ok(Admission::Admitted)
        })
    }
}
