//! Moving a data dir's ledger into the shared store (`plughost store migrate --to postgres://…`): the entries are
//! copied verbatim — the same sequence numbers and hashes — so the chain verifies the same on PostgreSQL, and a
//! checkpoint or anchor signed on SQLite still matches. Resumable: a store whose chain is a prefix of the ledger's
//! continues where it stopped; one that diverges is refused. A ledger that was archived moves from its cut: the
//! store's chain starts at the same signed cut, so the archive files link with it as they did with the data dir's.

use super::error::{PgError, PgResult};
use super::store::PgStore;
use crate::Window;
use crate::ledger::{Entry, Ledger, LedgerError};

/// Entries per import transaction.
const BATCH: usize = 2_000;

impl PgStore {
    /// Copies every entry of `ledger` the store does not have yet; returns how many were copied. Then seeds the
    /// contract reservations (when it has none) with the counted calls of the last 30 days, so contracts stay
    /// exact across the move.
    pub fn import_ledger(&self, ledger: &Ledger, now_ms: i64) -> PgResult<u64> {
        let v = ledger
            .verify()
            .map_err(|e| PgError::Setup(format!("cannot read the ledger: {e}")))?;
        if let Some(p) = v.problem {
            return Err(PgError::Setup(format!(
                "the ledger is broken at entry {} ({}); fix or archive it before moving it",
                p.seq, p.reason
            )));
        }
        let cut = ledger
            .archive_cut()
            .map_err(|e| PgError::Setup(format!("cannot read the ledger: {e}")))?;
        if let Some(cut) = &cut {
            match self.ledger_cut()? {
                None if self.ledger_head_seq()? == 0 => self.ledger_seed_cut(cut)?,
                Some(theirs) if theirs.seq == cut.seq && theirs.hash == cut.hash => {}
                _ => {
                    return Err(PgError::Setup(format!(
                        "the store already holds a different ledger (it does not start at this ledger's archive \
                         cut, entry {}); move into an empty database",
                        cut.seq
                    )));
                }
            }
        }
        let base = cut.as_ref().map_or(0, |c| c.seq);
        let have = self.ledger_head_seq()?;
        if have > base {
            let theirs = self.ledger_entries_after(have - 1, 1)?;
            let ours = ledger
                .entry(have)
                .map_err(|e| PgError::Setup(e.to_string()))?;
            if theirs.first().map(|e| &e.hash) != ours.as_ref().map(|e| &e.hash) {
                return Err(PgError::Setup(format!(
                    "the store already holds a different ledger (its entry {have} is not this one's); move into \
                     an empty database"
                )));
            }
        }
        let mut batch: Vec<Entry> = Vec::with_capacity(BATCH);
        let mut copied = 0u64;
        let flush = |batch: &mut Vec<Entry>, copied: &mut u64| -> PgResult<()> {
            if !batch.is_empty() {
                self.ledger_import(batch)?;
                *copied += batch.len() as u64;
                batch.clear();
            }
            Ok(())
        };
        let r: Result<u64, MigrateError> = ledger.each_entry(|e| {
            if e.seq > have {
                batch.push(e);
                if batch.len() >= BATCH {
                    flush(&mut batch, &mut copied)?;
                }
            }
            Ok(())
        });
        r.map_err(|e| match e {
            MigrateError::Pg(e) => e,
            MigrateError::Ledger(e) => PgError::Setup(format!("cannot read the ledger: {e}")),
        })?;
        flush(&mut batch, &mut copied)?;
        {
            let since = now_ms - Window::Month.millis();
            self.run(move |pool| async move {
                let c = pool.get().await?;
                c.execute(
                    "INSERT INTO contract_calls (plugin, tool, principal, time_ms, cost) \
                     SELECT plugin, tool, coalesce(principal, ''), time_ms, cost FROM ledger_entries \
                     WHERE kind = 'call' AND outcome NOT IN ('quota', 'busy') AND time_ms > $1 \
                     AND NOT EXISTS (SELECT 1 FROM contract_calls)",
                    &[&since],
                )
                .await?;
                // Their per-minute totals (contracts.rs), when none were kept yet.
                c.execute(
                    "INSERT INTO contract_minutes (plugin, tool, principal, minute, calls, cost) \
                     SELECT plugin, tool, principal, floor(time_ms / 60000.0)::BIGINT, count(*), sum(cost)::BIGINT \
                     FROM contract_calls WHERE NOT EXISTS (SELECT 1 FROM contract_minutes) GROUP BY 1, 2, 3, 4",
                    &[],
                )
                .await?;
                Ok(())
            })?;
        }
        Ok(copied)
    }
}

/// Either side of a copy failing.
#[derive(Debug)]
enum MigrateError {
    Pg(PgError),
    Ledger(LedgerError),
}

impl From<LedgerError> for MigrateError {
    fn from(e: LedgerError) -> Self {
        MigrateError::Ledger(e)
    }
}

impl From<PgError> for MigrateError {
    fn from(e: PgError) -> Self {
        MigrateError::Pg(e)
    }
}
