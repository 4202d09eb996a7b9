//! Retention of the shared ledger: old entries move to the same signed archive files `ledger archive` writes on
//! SQLite ([`crate::ledger::ArchiveWriter`]), and the live chain continues from the signed cut kept in
//! `ledger_cuts`. Appends go on meanwhile: they lock `ledger_head` and write above the cut, while an archive only
//! reads and deletes entries below it.

use std::path::Path;

use super::error::{PgError, PgResult};
use super::store::PgStore;
use crate::keys::KeyPair;
use crate::ledger::{
    ANCHOR_FORMAT, Anchor, ArchiveWriter, Archived, GENESIS, LedgerError, MIN_ARCHIVE_AGE_MS,
};

/// Any constant key: the advisory lock that serializes storing cuts across replicas and operators.
const ARCHIVE_LOCK: i64 = 0x706c_7567_6172_6368;
/// Entries read per round trip while writing the archive.
const PAGE: u32 = 5_000;
/// Entries deleted per statement once archived, so no one transaction holds the whole cut.
const DELETE_CHUNK: u64 = 10_000;

/// Why archiving the shared ledger failed: the store, or the ledger's own rules (too recent, a broken chain, the
/// file).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] PgError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Stores `cut` as the shared ledger's newest archive cut, in `tx`.
async fn insert_cut(tx: &deadpool_postgres::Transaction<'_>, cut: &Anchor) -> PgResult<()> {
    tx.execute(
        "INSERT INTO ledger_cuts (seq, hash, time_ms, key_name, public_key, signature) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &(cut.seq as i64),
            &cut.hash,
            &cut.time_ms,
            &cut.key_name,
            &cut.public_key,
            &cut.signature,
        ],
    )
    .await?;
    Ok(())
}

impl PgStore {
    /// The shared ledger's last archive cut, as signed; `None` when nothing was archived.
    pub fn ledger_cut(&self) -> PgResult<Option<Anchor>> {
        self.run(|pool| async move {
            let c = pool.get().await?;
            let r = c
                .query_opt(
                    "SELECT seq, hash, time_ms, key_name, public_key, signature FROM ledger_cuts \
                     ORDER BY seq DESC LIMIT 1",
                    &[],
                )
                .await?;
            Ok(r.map(|r| Anchor {
                format: ANCHOR_FORMAT.into(),
                seq: r.get::<_, i64>(0) as u64,
                hash: r.get(1),
                time_ms: r.get(2),
                key_name: r.get(3),
                public_key: r.get(4),
                signature: r.get(5),
            }))
        })
    }

    /// The last archived entry's sequence number (0 when nothing was archived).
    pub fn ledger_archived_through(&self) -> PgResult<u64> {
        Ok(self.ledger_cut()?.map_or(0, |a| a.seq))
    }

    /// Moves every entry made before `before_ms` (the longest prefix of the chain older than it) to a new archive
    /// at `out`, signs the cut with `key` and removes the entries from the shared ledger — what
    /// [`crate::ledger::Ledger::archive`] does on SQLite. `None` when there is nothing to archive. Refuses a cut
    /// younger than [`MIN_ARCHIVE_AGE_MS`] and a chain that does not verify up to the cut; the store is changed
    /// only once the archive is on disk (fsynced).
    pub fn ledger_archive(
        &self,
        before_ms: i64,
        key: &KeyPair,
        now_ms: i64,
        out: &Path,
    ) -> Result<Option<Archived>, ArchiveError> {
        if before_ms > now_ms - MIN_ARCHIVE_AGE_MS {
            return Err(LedgerError::TooRecent.into());
        }
        let (base, base_hash) = self
            .ledger_cut()?
            .map_or((0, GENESIS.to_string()), |a| (a.seq, a.hash));
        // Entries a previous run left behind (it stopped while deleting).
        let lowest = self.run(|pool| async move {
            let c = pool.get().await?;
            let r = c
                .query_one("SELECT MIN(seq) FROM ledger_entries", &[])
                .await?;
            Ok(r.get::<_, Option<i64>>(0))
        })?;
        if let Some(low) = lowest
            && (low as u64) <= base
        {
            self.delete_entries(low as u64 - 1, base)?;
        }
        // One statement, one snapshot: the first entry at or after `before_ms` ends the prefix; without one, every
        // entry is in it (a call committed meanwhile is younger than `before_ms`, so it is not).
        let last = self.run(move |pool| async move {
            let c = pool.get().await?;
            let r = c
                .query_one(
                    "SELECT COALESCE(
                        (SELECT MIN(seq) - 1 FROM ledger_entries WHERE seq > $1 AND time_ms >= $2),
                        (SELECT MAX(seq) FROM ledger_entries WHERE seq > $1),
                        $1)",
                    &[&(base as i64), &before_ms],
                )
                .await?;
            Ok(r.get::<_, i64>(0) as u64)
        })?;
        if last <= base {
            return Ok(None);
        }
        let mut w = ArchiveWriter::create(out, (base, &base_hash), last)?;
        // A missing entry ends the loop (the page starts past `last`) or fails `push`; either way `finish` or
        // `push` says the chain is broken and nothing is archived.
        while w.next_seq() <= last {
            let page = self.ledger_entries_after(w.next_seq() - 1, PAGE)?;
            if page.first().is_none_or(|e| e.seq > last) {
                break;
            }
            for e in page.iter().take_while(|e| e.seq <= last) {
                w.push(e)?;
            }
        }
        let cut = w.finish(key, now_ms)?;
        let stored = cut.clone();
        let stored_cut = self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ARCHIVE_LOCK])
                .await?;
            let now: i64 = tx
                .query_one("SELECT COALESCE(MAX(seq), 0) FROM ledger_cuts", &[])
                .await?
                .get(0);
            if now as u64 != base {
                return Ok(false);
            }
            insert_cut(&tx, &stored).await?;
            tx.commit().await?;
            Ok(true)
        })?;
        if !stored_cut {
            // Another archive stored its cut first: this file repeats entries it holds, so it goes.
            let _ = std::fs::remove_file(out);
            return Err(PgError::Db(
                "another archive of the shared ledger ran at the same time; nothing was archived by this one".into(),
            )
            .into());
        }
        self.delete_entries(base, last)?;
        Ok(Some(Archived::after(base, out, cut)))
    }

    /// Starts an empty store's chain at `cut` (a data dir's archive cut, for `store migrate`): the cut is stored as
    /// this store's own and the head set to it, so the data dir's live entries continue it verbatim and its
    /// archive files link with the store's chain. Refused once the store holds a chain.
    pub(super) fn ledger_seed_cut(&self, cut: &Anchor) -> PgResult<()> {
        let cut = cut.clone();
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ARCHIVE_LOCK])
                .await?;
            let (head, _) = super::ledger::lock_head(&tx).await?;
            let cuts: i64 = tx
                .query_one("SELECT count(*) FROM ledger_cuts", &[])
                .await?
                .get(0);
            if head != 0 || cuts != 0 {
                return Err(PgError::Setup(
                    "the store already holds a ledger; move into an empty database".into(),
                ));
            }
            insert_cut(&tx, &cut).await?;
            super::ledger::move_head(tx, cut.seq, &cut.hash).await
        })
    }

    /// Deletes entries `from+1..=to`, [`DELETE_CHUNK`] at a time.
    fn delete_entries(&self, from: u64, to: u64) -> PgResult<()> {
        let mut lo = from;
        while lo < to {
            let hi = (lo + DELETE_CHUNK).min(to);
            self.run(move |pool| async move {
                let c = pool.get().await?;
                c.execute(
                    "DELETE FROM ledger_entries WHERE seq > $1 AND seq <= $2",
                    &[&(lo as i64), &(hi as i64)],
                )
                .await?;
                Ok(())
            })?;
            lo = hi;
        }
        Ok(())
    }
}
