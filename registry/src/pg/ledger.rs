//! The cluster's ledger: one hash chain for every replica, with serialized appends.
//!
//! Why one chain: `plughost ledger verify` stays one walk with one head, checkpoints and anchors mean what they
//! mean on SQLite, and no replica can drop another's entries without breaking the chain everyone extends. The
//! price is that appends are serialized: each append transaction locks the `ledger_head` row, reads the head,
//! inserts its entries (hash-chained on the head) and moves the head, so the lock is held for the inserts and the
//! commit (one WAL flush). With group commit a batch of calls pays that once. The alternative — a chain per replica
//! tied by signed cluster checkpoints — appends without contention but makes verify a merge of N chains, and an
//! entry is only covered cluster-wide once the next checkpoint is signed; at the rates one primary serves (see
//! README, "Cluster") the lock is not the bottleneck, so the simpler design wins.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::error::{PgError, PgResult};
use super::store::PgStore;
use crate::keys::KeyPair;
use crate::ledger::{
    Anchor, CallUsage, Caller, Entry, Filter, Kind, NewEntry, Problem, Verification, entry_hash,
};

const COLUMNS: &str = "seq, time_ms, kind, plugin, version, digest, tool, transport, session, principal, \
    duration_us, fuel_used, peak_memory, outcome, args_digest, cost, event, data, prev_hash, hash";
const INSERT: &str = "INSERT INTO ledger_entries (seq, time_ms, kind, plugin, version, digest, tool, transport, \
    session, principal, duration_us, fuel_used, peak_memory, outcome, args_digest, cost, event, data, prev_hash, \
    hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";
/// Entries read per round trip when walking the chain.
const PAGE: i64 = 5_000;
/// The most entries one [`PgStore::ledger_entries`] returns (`ledger show --limit` beyond it shows this many).
pub const SHOW_MAX: usize = 100_000;

fn row(r: &Row) -> PgResult<Entry> {
    let kind: String = r.get(2);
    let seq: i64 = r.get(0);
    Ok(Entry {
        seq: seq as u64,
        entry: NewEntry {
            time_ms: r.get(1),
            kind: Kind::parse(&kind)
                .ok_or_else(|| PgError::Db(format!("entry {seq} has an unknown kind `{kind}`")))?,
            plugin: r.get(3),
            version: r.get(4),
            digest: r.get(5),
            tool: r.get(6),
            caller: Caller {
                transport: r.get(7),
                session: r.get(8),
                principal: r.get(9),
            },
            duration_us: r.get::<_, i64>(10) as u64,
            fuel_used: r.get::<_, i64>(11) as u64,
            peak_memory: r.get::<_, i64>(12) as u64,
            outcome: r.get(13),
            args_digest: r.get(14),
            cost: r.get::<_, i64>(15) as u64,
            event: r.get(16),
            data: r.get(17),
        },
        prev_hash: r.get(18),
        hash: r.get(19),
    })
}

async fn insert(
    tx: &deadpool_postgres::Transaction<'_>,
    stmt: &tokio_postgres::Statement,
    seq: u64,
    e: &NewEntry,
    prev: &str,
    hash: &str,
) -> PgResult<()> {
    let (seq, dur, fuel, mem, cost) = (
        seq as i64,
        e.duration_us as i64,
        e.fuel_used as i64,
        e.peak_memory as i64,
        e.cost as i64,
    );
    let kind = e.kind.as_str();
    let params: [&(dyn ToSql + Sync); 20] = [
        &seq,
        &e.time_ms,
        &kind,
        &e.plugin,
        &e.version,
        &e.digest,
        &e.tool,
        &e.caller.transport,
        &e.caller.session,
        &e.caller.principal,
        &dur,
        &fuel,
        &mem,
        &e.outcome,
        &e.args_digest,
        &cost,
        &e.event,
        &e.data,
        &prev,
        &hash,
    ];
    tx.execute(stmt, &params).await?;
    Ok(())
}

/// Locks the chain head for this transaction (every other append waits here) and reads it.
pub(super) async fn lock_head(tx: &deadpool_postgres::Transaction<'_>) -> PgResult<(u64, String)> {
    let head = tx
        .query_one(
            "SELECT seq, hash FROM ledger_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?;
    Ok((head.get::<_, i64>(0) as u64, head.get(1)))
}

/// Moves the head to the last entry written and commits (releasing the head for the next append).
pub(super) async fn move_head(
    tx: deadpool_postgres::Transaction<'_>,
    seq: u64,
    hash: &str,
) -> PgResult<()> {
    tx.execute(
        "UPDATE ledger_head SET seq = $1, hash = $2 WHERE id = 1",
        &[&(seq as i64), &hash],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

impl PgStore {
    /// Appends entries in one transaction (the chain head row is locked until it commits) and returns their
    /// sequence numbers. When this returns `Ok`, the entries are durable.
    pub fn ledger_append(&self, entries: &[NewEntry]) -> PgResult<Vec<u64>> {
        let entries = entries.to_vec();
        self.run(|pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            let (mut seq, mut prev) = lock_head(&tx).await?;
            let stmt = tx.prepare_cached(INSERT).await?;
            let mut out = Vec::with_capacity(entries.len());
            for e in &entries {
                seq += 1;
                let hash = entry_hash(seq, e, &prev);
                insert(&tx, &stmt, seq, e, &prev, &hash).await?;
                out.push(seq);
                prev = hash;
            }
            move_head(tx, seq, &prev).await?;
            Ok(out)
        })
    }

    /// Copies entries verbatim (their sequence numbers and hashes), for `store migrate`; they must continue the
    /// chain exactly where the store's head is.
    pub fn ledger_import(&self, entries: &[Entry]) -> PgResult<()> {
        let entries = entries.to_vec();
        self.run(|pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            let (mut seq, mut prev) = lock_head(&tx).await?;
            let stmt = tx.prepare_cached(INSERT).await?;
            for e in &entries {
                if e.seq != seq + 1 || e.prev_hash != prev {
                    return Err(PgError::Setup(format!(
                        "entry {} does not continue the store's chain at {seq}",
                        e.seq
                    )));
                }
                insert(&tx, &stmt, e.seq, &e.entry, &e.prev_hash, &e.hash).await?;
                seq = e.seq;
                prev = e.hash.clone();
            }
            move_head(tx, seq, &prev).await?;
            Ok(())
        })
    }

    /// The last sequence number (0 when empty).
    pub fn ledger_head_seq(&self) -> PgResult<u64> {
        self.run(|pool| async move {
            let c = pool.get().await?;
            let r = c
                .query_one("SELECT seq FROM ledger_head WHERE id = 1", &[])
                .await?;
            Ok(r.get::<_, i64>(0) as u64)
        })
    }

    /// The latest `limit` counted calls of `plugin` (not refused by a quota or as busy), newest first: what the
    /// quota view's fuel and memory figures sample, from the whole cluster's ledger.
    pub fn ledger_recent_usage(&self, plugin: &str, limit: usize) -> PgResult<Vec<CallUsage>> {
        let (plugin, limit) = (plugin.to_string(), limit.min(100_000) as i64);
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    "SELECT seq, time_ms, tool, fuel_used, peak_memory, duration_us FROM ledger_entries \
                     WHERE plugin = $1 AND kind = 'call' AND outcome NOT IN ('quota', 'busy') \
                     ORDER BY time_ms DESC, seq DESC LIMIT $2",
                    &[&plugin, &limit],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| CallUsage {
                    seq: r.get::<_, i64>(0) as u64,
                    time_ms: r.get(1),
                    tool: r.get(2),
                    fuel_used: r.get::<_, i64>(3) as u64,
                    peak_memory: r.get::<_, i64>(4) as u64,
                    duration_us: r.get::<_, i64>(5) as u64,
                })
                .collect())
        })
    }

    /// Up to `limit` call entries made at or after `since_ms` (of `plugin`, or all), after sequence number
    /// `after`, in order: `stats` over the whole cluster's ledger, a page at a time.
    pub fn ledger_calls_since(
        &self,
        plugin: Option<&str>,
        since_ms: i64,
        after: u64,
        limit: u32,
    ) -> PgResult<Vec<Entry>> {
        let plugin = plugin.map(str::to_string);
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM ledger_entries WHERE seq > $1 AND time_ms >= $2 \
                         AND kind = 'call' AND ($3::TEXT IS NULL OR plugin = $3) ORDER BY seq LIMIT $4"
                    ),
                    &[&(after as i64), &since_ms, &plugin, &(limit as i64)],
                )
                .await?;
            rows.iter().map(row).collect()
        })
    }

    /// The entries `f` selects from the whole cluster's ledger — the newest `f.limit` of them (at most
    /// [`SHOW_MAX`]), returned oldest first —, as [`crate::ledger::Ledger::entries`] selects them on SQLite:
    /// `ledger show` on a shared store.
    pub fn ledger_entries(&self, f: &Filter) -> PgResult<Vec<Entry>> {
        let (plugin, tool, outcome) = (f.plugin.clone(), f.tool.clone(), f.outcome.clone());
        let (since, until, after) = (f.since_ms, f.until_ms, f.after_seq.unwrap_or(0) as i64);
        let kind = f.kind.map(|k| k.as_str().to_string());
        let limit = f.limit.unwrap_or(SHOW_MAX).min(SHOW_MAX) as i64;
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM ledger_entries WHERE ($1::TEXT IS NULL OR plugin = $1) \
                         AND ($2::TEXT IS NULL OR tool = $2) AND ($3::TEXT IS NULL OR outcome = $3) \
                         AND ($4::BIGINT IS NULL OR time_ms >= $4) AND ($5::BIGINT IS NULL OR time_ms < $5) \
                         AND ($6::TEXT IS NULL OR kind = $6) AND seq > $7 ORDER BY seq DESC LIMIT $8"
                    ),
                    &[
                        &plugin, &tool, &outcome, &since, &until, &kind, &after, &limit,
                    ],
                )
                .await?;
            let mut out = rows.iter().map(row).collect::<PgResult<Vec<_>>>()?;
            out.reverse();
            Ok(out)
        })
    }

    /// Signs the whole cluster's chain head with `key` at `time_ms`; `None` when the ledger is empty. The store keeps
    /// no checkpoints: the operator keeps the returned one (`ledger checkpoint --out FILE`) and checks the chain
    /// still reaches it with [`PgStore::ledger_verify_anchor`].
    pub fn ledger_checkpoint(&self, key: &KeyPair, time_ms: i64) -> PgResult<Option<Anchor>> {
        let (seq, hash) = self.run(|pool| async move {
            let c = pool.get().await?;
            let r = c
                .query_one("SELECT seq, hash FROM ledger_head WHERE id = 1", &[])
                .await?;
            Ok((r.get::<_, i64>(0) as u64, r.get::<_, String>(1)))
        })?;
        Ok((seq > 0).then(|| Anchor::sign(key, seq, &hash, time_ms)))
    }

    /// Whether the cluster's chain still reaches `anchor` (a checkpoint kept outside the store): `None` when its
    /// signature verifies and entry `anchor.seq` is the one it signed, else what is wrong — the same checks as
    /// [`crate::ledger::Ledger::verify_anchor`] on SQLite.
    pub fn ledger_verify_anchor(&self, anchor: &Anchor) -> PgResult<Option<String>> {
        if let Some(bad) = anchor.check() {
            return Ok(Some(bad));
        }
        if let Some(cut) = self.ledger_cut()?
            && anchor.seq <= cut.seq
        {
            return Ok(if anchor.seq < cut.seq {
                Some(format!(
                    "entry {} was archived (the live ledger starts after entry {}): check it with \
                     `ledger verify --archive`",
                    anchor.seq, cut.seq
                ))
            } else if anchor.hash != cut.hash {
                Some(format!(
                    "entry {} is not the one it signed (the chain was rewritten)",
                    anchor.seq
                ))
            } else {
                None
            });
        }
        Ok(match self.ledger_entry(anchor.seq)? {
            None => Some(format!(
                "the ledger no longer reaches entry {} that it signed (the head is now {}): entries were deleted \
                 or the tail was cut",
                anchor.seq,
                self.ledger_head_seq()?
            )),
            Some(e) if e.hash != anchor.hash => Some(format!(
                "entry {} is not the one it signed (the chain was rewritten)",
                anchor.seq
            )),
            Some(_) => None,
        })
    }

    /// The entry with sequence number `seq`, if there is one.
    pub fn ledger_entry(&self, seq: u64) -> PgResult<Option<Entry>> {
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let r = c
                .query_opt(
                    &format!("SELECT {COLUMNS} FROM ledger_entries WHERE seq = $1"),
                    &[&(seq as i64)],
                )
                .await?;
            r.as_ref().map(row).transpose()
        })
    }

    /// Up to `limit` entries after `after`, in order.
    pub fn ledger_entries_after(&self, after: u64, limit: u32) -> PgResult<Vec<Entry>> {
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM ledger_entries WHERE seq > $1 ORDER BY seq LIMIT $2"
                    ),
                    &[&(after as i64), &(limit as i64)],
                )
                .await?;
            rows.iter().map(row).collect()
        })
    }

    /// Walks the live chain — from the last archive cut, if entries were archived — a page at a time, and reports
    /// the first break — the same checks as SQLite's [`crate::ledger::Ledger::verify`], plus the head row: a tail
    /// cut off the entries table (or a head moved) is found because the head no longer matches the last entry.
    pub fn ledger_verify(&self) -> PgResult<Verification> {
        let cut = self.ledger_cut()?;
        let (base, mut prev, mut problem) = crate::ledger::live_start(cut.as_ref());
        let mut expected = base + 1;
        let mut n = 0u64;
        let mut after = base;
        loop {
            let page = self.ledger_entries_after(after, PAGE as u32)?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in page {
                n += 1;
                if problem.is_none() {
                    problem = check(&e, expected, &prev);
                }
                expected = e.seq + 1;
                prev = e.hash;
            }
        }
        let (head_seq, head_hash) = self.run(|pool| async move {
            let c = pool.get().await?;
            let r = c
                .query_one("SELECT seq, hash FROM ledger_head WHERE id = 1", &[])
                .await?;
            Ok((r.get::<_, i64>(0) as u64, r.get::<_, String>(1)))
        })?;
        if problem.is_none() && (head_seq != expected - 1 || head_hash != prev) {
            problem = Some(Problem {
                seq: head_seq.min(expected),
                reason: format!(
                    "the chain head says entry {head_seq}, the entries end at {} (the tail was cut or the head \
                     moved)",
                    expected - 1
                ),
            });
        }
        Ok(Verification {
            entries: n,
            head: (n > 0 || cut.is_some()).then(|| (expected - 1, prev)),
            checkpoints: 0,
            archived: base,
            problem,
        })
    }
}

/// The checks on one entry, given the sequence number and link it must have.
fn check(e: &Entry, expected: u64, prev: &str) -> Option<Problem> {
    if e.seq != expected {
        return Some(Problem {
            seq: expected.min(e.seq),
            reason: if e.seq > expected {
                format!("entries {expected}..{} are missing (deleted)", e.seq - 1)
            } else {
                "the sequence goes backwards (entries reordered or renumbered)".into()
            },
        });
    }
    if e.prev_hash != prev {
        return Some(Problem {
            seq: e.seq,
            reason: "its link to the previous entry is broken (an entry was inserted, deleted or reordered \
                     before it)"
                .into(),
        });
    }
    if entry_hash(e.seq, &e.entry, &e.prev_hash) != e.hash {
        return Some(Problem {
            seq: e.seq,
            reason: "its content does not match its hash (the entry was modified)".into(),
        });
    }
    None
}
