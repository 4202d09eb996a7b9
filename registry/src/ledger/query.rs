//! Reading the ledger back: entries by filter, usage of a plugin in a window, the calls contracts count (and catch
//! up on by sequence number), the head's sequence number, and recent resource use for the quota view.

use rusqlite::params;
use serde::Serialize;

use super::{Caller, Entry, Kind, Ledger, LedgerError, NewEntry, Result};

/// Filters for [`Ledger::entries`].
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub plugin: Option<String>,
    pub tool: Option<String>,
    pub outcome: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub kind: Option<Kind>,
    /// Only entries after this sequence number (what a live view has not seen yet).
    pub after_seq: Option<u64>,
    /// Newest `limit` entries (still returned oldest first); `None` = all.
    pub limit: Option<usize>,
}

/// What a call that counts against a contract counts: calls that ran (not refused by a quota or as busy).
/// (A macro, not a const, so the queries below are `concat!`ed literals: no SQL is formatted per call.)
macro_rules! counted {
    () => {
        "kind = 'call' AND outcome NOT IN ('quota', 'busy')"
    };
}

/// One counted call, as contracts see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedCall {
    pub seq: u64,
    pub time_ms: i64,
    pub tool: String,
    pub cost: u64,
    /// Who made it, if the caller was authenticated.
    pub principal: Option<String>,
}

/// What one call used, for the quota view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallUsage {
    pub seq: u64,
    pub time_ms: i64,
    pub tool: String,
    pub fuel_used: u64,
    pub peak_memory: u64,
    pub duration_us: u64,
}

/// Usage of one plugin in a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub calls: u64,
    pub fuel: u64,
    pub cost: u64,
}

/// The latest counted calls of a plugin: the plugin/time index read backwards.
const RECENT_SQL: &str = concat!(
    "SELECT seq, time_ms, tool, fuel_used, peak_memory, duration_us FROM entries \
     WHERE plugin = ?1 AND ",
    counted!(),
    " ORDER BY time_ms DESC, seq DESC LIMIT ?2"
);

impl Ledger {
    pub(super) fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
        let kind: String = r.get(2)?;
        Ok(Entry {
            seq: r.get::<_, i64>(0)? as u64,
            entry: NewEntry {
                time_ms: r.get(1)?,
                kind: Kind::parse(&kind).unwrap_or(Kind::Event),
                plugin: r.get(3)?,
                version: r.get(4)?,
                digest: r.get(5)?,
                tool: r.get(6)?,
                caller: Caller {
                    transport: r.get(7)?,
                    session: r.get(8)?,
                    principal: r.get(9)?,
                },
                duration_us: r.get::<_, i64>(10)? as u64,
                fuel_used: r.get::<_, i64>(11)? as u64,
                peak_memory: r.get::<_, i64>(12)? as u64,
                outcome: r.get(13)?,
                args_digest: r.get(14)?,
                cost: r.get::<_, i64>(15)? as u64,
                event: r.get(16)?,
                data: r.get(17)?,
            },
            prev_hash: r.get(18)?,
            hash: r.get(19)?,
        })
    }

    pub(super) const COLUMNS: &'static str = "seq, time_ms, kind, plugin, version, digest, tool, transport, session, principal, \
         duration_us, fuel_used, peak_memory, outcome, args_digest, cost, event, data, prev_hash, hash";

    /// Entries matching `f`, oldest first.
    pub fn entries(&self, f: &Filter) -> Result<Vec<Entry>> {
        let (sql, args) = Self::entries_sql(f);
        let conn = self.reader();
        let mut stmt = conn.prepare(&sql)?;
        let mut out = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), Self::row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }

    /// Hands every live entry to `f`, oldest first, one at a time (what `ledger export` streams: the ledger is never
    /// all in memory). Returns how many there were.
    pub fn each_entry<E: From<LedgerError>>(
        &self,
        mut f: impl FnMut(Entry) -> Result<(), E>,
    ) -> Result<u64, E> {
        let conn = self.reader();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {} FROM entries ORDER BY seq",
                Self::COLUMNS
            ))
            .map_err(LedgerError::from)?;
        let mut rows = stmt.query([]).map_err(LedgerError::from)?;
        let mut n = 0;
        while let Some(r) = rows.next().map_err(LedgerError::from)? {
            f(Self::row(r).map_err(LedgerError::from)?)?;
            n += 1;
        }
        Ok(n)
    }

    /// The query [`Ledger::entries`] runs for `f`, and its parameters.
    fn entries_sql(f: &Filter) -> (String, Vec<Box<dyn rusqlite::ToSql>>) {
        // A period across all plugins walks the time index: left to itself, SQLite may prefer the rowid order
        // and read every entry ever written.
        let index = if f.plugin.is_none() && (f.since_ms.is_some() || f.until_ms.is_some()) {
            " INDEXED BY entries_time"
        } else {
            ""
        };
        let mut sql = format!("SELECT {} FROM entries{index} WHERE 1=1", Self::COLUMNS);
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        let mut add = |cond: &str, v: Box<dyn rusqlite::ToSql>| {
            args.push(v);
            sql.push_str(&format!(" AND {cond} ?{}", args.len()));
        };
        if let Some(p) = &f.plugin {
            add("plugin =", Box::new(p.clone()));
        }
        if let Some(t) = &f.tool {
            add("tool =", Box::new(t.clone()));
        }
        if let Some(o) = &f.outcome {
            add("outcome =", Box::new(o.clone()));
        }
        if let Some(s) = f.since_ms {
            add("time_ms >=", Box::new(s));
        }
        if let Some(u) = f.until_ms {
            add("time_ms <", Box::new(u));
        }
        if let Some(k) = f.kind {
            add("kind =", Box::new(k.as_str()));
        }
        if let Some(a) = f.after_seq {
            add("seq >", Box::new(a as i64));
        }
        sql.push_str(" ORDER BY seq DESC");
        if let Some(l) = f.limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        (sql, args)
    }

    /// The entry with sequence number `seq`, if there is one.
    pub fn entry(&self, seq: u64) -> Result<Option<Entry>> {
        let conn = self.reader();
        let sql = format!("SELECT {} FROM entries WHERE seq = ?1", Self::COLUMNS);
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query_map(params![seq as i64], Self::row)?;
        Ok(rows.next().transpose()?)
    }

    /// Calls, fuel and cost of `plugin` (optionally one tool) since `since_ms`. Counts calls that ran: calls
    /// refused before the guest ran (outcome `quota` or `busy`) cost nothing and do not count.
    pub fn usage(&self, plugin: &str, tool: Option<&str>, since_ms: i64) -> Result<Usage> {
        let conn = self.reader();
        let (calls, fuel, cost): (i64, i64, i64) = conn.query_row(
            concat!(
                "SELECT COUNT(*), COALESCE(SUM(fuel_used), 0), COALESCE(SUM(cost), 0) FROM entries \
                 WHERE plugin = ?1 AND time_ms >= ?2 AND (?3 IS NULL OR tool = ?3) AND ",
                counted!()
            ),
            params![plugin, since_ms, tool],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(Usage {
            calls: calls as u64,
            fuel: fuel as u64,
            cost: cost as u64,
        })
    }

    /// The counted calls of `plugin` (see [`Ledger::usage`]) with a sequence number above `after_seq` and a time
    /// at or after `since_ms`, oldest first. What contracts are enforced from.
    pub fn counted_calls(
        &self,
        plugin: &str,
        after_seq: u64,
        since_ms: i64,
    ) -> Result<Vec<CountedCall>> {
        let conn = self.reader();
        // Seeding (after_seq 0) walks the plugin/time index; catching up walks the sequence (the rowid; NOT INDEXED
        // keeps SQLite off the plugin index, which would rescan the whole window) from where it was.
        let sql = if after_seq == 0 {
            concat!(
                "SELECT seq, time_ms, tool, cost, principal FROM entries INDEXED BY entries_plugin_time \
                 WHERE plugin = ?1 AND time_ms >= ?3 AND seq > ?2 AND ",
                counted!(),
                " ORDER BY seq"
            )
        } else {
            concat!(
                "SELECT seq, time_ms, tool, cost, principal FROM entries NOT INDEXED \
                 WHERE seq > ?2 AND plugin = ?1 AND time_ms >= ?3 AND ",
                counted!(),
                " ORDER BY seq"
            )
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params![plugin, after_seq as i64, since_ms], |r| {
                Ok(CountedCall {
                    seq: r.get::<_, i64>(0)? as u64,
                    time_ms: r.get(1)?,
                    tool: r.get(2)?,
                    cost: r.get::<_, i64>(3)? as u64,
                    principal: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The highest sequence number written, archived or not (0 for an empty ledger).
    pub fn head_seq(&self) -> Result<u64> {
        Ok(Self::head(&self.reader())?.map_or(0, |h| h.0))
    }

    /// Fuel used and peak memory of the last `limit` calls of `plugin` that ran, newest first (by time, then sequence
    /// number: the plugin/time index read backwards, so the cost is the `limit` calls, not the plugin's history).
    pub fn recent_usage(&self, plugin: &str, limit: usize) -> Result<Vec<CallUsage>> {
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(RECENT_SQL)?;
        let rows = stmt
            .query_map(params![plugin, limit as i64], |r| {
                Ok(CallUsage {
                    seq: r.get::<_, i64>(0)? as u64,
                    time_ms: r.get(1)?,
                    tool: r.get(2)?,
                    fuel_used: r.get::<_, i64>(3)? as u64,
                    peak_memory: r.get::<_, i64>(4)? as u64,
                    duration_us: r.get::<_, i64>(5)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::call;

    #[test]
    fn counted_calls_skip_refused_and_catch_up_by_sequence() {
        let dir = tempfile::tempdir().expect("dir");
        let l = Ledger::open(dir.path()).expect("open");
        let mut quota = call("a", 2);
        quota.outcome = "quota".into();
        let mut busy = call("a", 3);
        busy.outcome = "busy".into();
        l.append(&[call("a", 1), quota, busy, call("b", 4), call("a", 5)])
            .expect("append");
        let seeded = l.counted_calls("a", 0, 0).expect("seed");
        assert_eq!(seeded.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![1, 5]);
        assert_eq!(l.counted_calls("a", 0, 2).expect("since").len(), 1);
        l.append(&[call("a", 6)]).expect("append");
        let new = l.counted_calls("a", 5, 0).expect("catch up");
        assert_eq!(new.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![6]);
        assert_eq!(l.head_seq().expect("head"), 6);
        let after = l
            .entries(&Filter {
                after_seq: Some(4),
                ..Default::default()
            })
            .expect("after");
        assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![5, 6]);
        assert_eq!(
            l.entry(4).expect("entry").map(|e| e.entry.plugin),
            Some("b".into())
        );
        assert!(l.entry(99).expect("no entry").is_none());
        let recent = l.recent_usage("a", 2).expect("recent");
        assert_eq!(recent.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![6, 5]);
        assert_eq!(l.usage("a", None, 0).expect("usage").calls, 3);
        let mut streamed = Vec::new();
        let n = l
            .each_entry(|e| {
                streamed.push(e.seq);
                Ok::<_, LedgerError>(())
            })
            .expect("each");
        assert_eq!((n, streamed), (6, vec![1, 2, 3, 4, 5, 6]));
    }

    /// The plan SQLite picks for `sql` with `args`, one line per step.
    fn plan(l: &Ledger, sql: &str, args: &[&dyn rusqlite::ToSql]) -> Vec<String> {
        let conn = l.reader();
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("plan");
        stmt.query_map(args, |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("plan")
    }

    #[test]
    fn what_quota_and_stats_read_does_not_walk_the_whole_ledger() {
        let dir = tempfile::tempdir().expect("dir");
        let l = Ledger::open(dir.path()).expect("open");
        // The latest calls of a plugin: read backwards from the index, no sort of the plugin's whole history.
        let recent = plan(&l, RECENT_SQL, &[&"a", &1000i64]);
        assert!(
            recent
                .iter()
                .all(|s| !s.contains("TEMP B-TREE") && !s.starts_with("SCAN")),
            "{recent:?}"
        );
        // A period across all plugins (stats, show --since): a range of the time index, not a scan of every entry.
        let (sql, args) = Ledger::entries_sql(&Filter {
            since_ms: Some(5),
            kind: Some(Kind::Call),
            ..Default::default()
        });
        let args: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a.as_ref()).collect();
        let period = plan(&l, &sql, &args);
        assert!(
            period.iter().any(|s| s.contains("entries_time")),
            "{period:?}"
        );
        // The head and catching up on it: the rowid.
        let head = plan(&l, "SELECT MAX(seq) FROM entries", &[]);
        assert!(head.iter().all(|s| !s.starts_with("SCAN")), "{head:?}");
    }
}
