//! Reading the ledger back: entries by filter, usage of a plugin in a window, the calls contracts count (and catch
//! up on by sequence number), the head's sequence number, and recent resource use for the quota view.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::codec::{COLUMNS, Stored, kind_id, unpack_hash};
use super::{Entry, EntryRef, GENESIS, Kind, Ledger, LedgerError, MINUTE_MS, Result};

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

/// What a call that counts against a contract counts: calls that ran (not refused by a quota or as busy): kind 0 is
/// a call, names 2 and 3 are `quota` and `busy` (codec.rs).
/// (A macro, not a const, so the queries below are `concat!`ed literals: no SQL is formatted per call.)
macro_rules! counted {
    () => {
        "kind = 0 AND outcome NOT IN (2, 3)"
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

/// Counted calls of one plugin and tool in one minute (see [`Ledger::minute_totals`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteTotal {
    pub tool: String,
    /// Who made the calls (`None`: no authenticated principal).
    pub principal: Option<String>,
    /// `time_ms.div_euclid(MINUTE_MS)` of the calls.
    pub minute: i64,
    pub calls: u64,
    pub cost: u64,
}

/// Whether an entry counts against contracts (see [`counted!`]).
pub(super) fn counts<'a>(e: impl Into<EntryRef<'a>>) -> bool {
    let e: EntryRef<'_> = e.into();
    e.kind == Kind::Call && e.outcome != "quota" && e.outcome != "busy"
}

/// The latest counted calls of a plugin: the plugin/time index read backwards.
const RECENT_SQL: &str = concat!(
    "SELECT seq, time_ms, tool, fuel_used, peak_memory, duration_us FROM entries \
     WHERE plugin = (SELECT id FROM names WHERE value = ?1) AND ",
    counted!(),
    " ORDER BY time_ms DESC, seq DESC LIMIT ?2"
);

impl Ledger {
    /// The hash entry `seq` links to, read from the entry before it (the archive cut, or the genesis hash, for the
    /// first); empty if that entry is missing.
    pub(super) fn prev_hash(conn: &rusqlite::Connection, seq: u64) -> Result<String> {
        if seq <= 1 {
            return Ok(GENESIS.to_string());
        }
        let before = conn
            .prepare_cached("SELECT hash FROM entries WHERE seq = ?1")?
            .query_row([(seq - 1) as i64], |r| unpack_hash(r.get_ref(0)?))
            .optional()?;
        Ok(match before {
            Some(h) => h,
            None => Self::cut(conn)?
                .filter(|c| c.0 == seq - 1)
                .map_or_else(String::new, |c| c.1),
        })
    }

    /// Entries matching `f`, oldest first.
    pub fn entries(&self, f: &Filter) -> Result<Vec<Entry>> {
        self.settle();
        let (sql, args) = Self::entries_sql(f);
        let conn = self.reader();
        let mut stmt = conn.prepare(&sql)?;
        let stored = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), Stored::read)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut names = self.names();
        let mut out = Vec::with_capacity(stored.len());
        for s in stored.into_iter().rev() {
            let prev = Self::prev_hash(&conn, s.seq)?;
            out.push(s.entry(&mut names, &conn, prev)?);
        }
        Ok(out)
    }

    /// Hands every live entry to `f`, oldest first, one at a time (what `ledger export` streams: the ledger is never
    /// all in memory). Returns how many there were.
    pub fn each_entry<E: From<LedgerError>>(
        &self,
        mut f: impl FnMut(Entry) -> Result<(), E>,
    ) -> Result<u64, E> {
        self.settle();
        let conn = self.reader();
        let mut stmt = conn
            .prepare(&format!("SELECT {COLUMNS} FROM entries ORDER BY seq"))
            .map_err(LedgerError::from)?;
        let mut rows = stmt.query([]).map_err(LedgerError::from)?;
        let mut n = 0;
        let mut prev: Option<(u64, String)> = None;
        while let Some(r) = rows.next().map_err(LedgerError::from)? {
            let s = Stored::read(r).map_err(LedgerError::from)?;
            let link = match prev.take() {
                Some((seq, hash)) if seq + 1 == s.seq => hash,
                _ => Self::prev_hash(&conn, s.seq)?,
            };
            let hash = s.hash.clone();
            let seq = s.seq;
            let e = s
                .entry(&mut self.names(), &conn, link)
                .map_err(LedgerError::from)?;
            f(e)?;
            prev = Some((seq, hash));
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
        let mut sql = format!("SELECT {COLUMNS} FROM entries{index} WHERE 1=1");
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        let mut add = |cond: &str, v: Box<dyn rusqlite::ToSql>, end: &str| {
            args.push(v);
            sql.push_str(&format!(" AND {cond} ?{}{end}", args.len()));
        };
        const NAME: &str = "(SELECT id FROM names WHERE value =";
        if let Some(p) = &f.plugin {
            add(&format!("plugin = {NAME}"), Box::new(p.clone()), ")");
        }
        if let Some(t) = &f.tool {
            add(&format!("tool = {NAME}"), Box::new(t.clone()), ")");
        }
        if let Some(o) = &f.outcome {
            add(&format!("outcome = {NAME}"), Box::new(o.clone()), ")");
        }
        if let Some(s) = f.since_ms {
            add("time_ms >=", Box::new(s), "");
        }
        if let Some(u) = f.until_ms {
            add("time_ms <", Box::new(u), "");
        }
        if let Some(k) = f.kind {
            add("kind =", Box::new(kind_id(k)), "");
        }
        if let Some(a) = f.after_seq {
            add("seq >", Box::new(a as i64), "");
        }
        sql.push_str(" ORDER BY seq DESC");
        if let Some(l) = f.limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        (sql, args)
    }

    /// The entry with sequence number `seq`, if there is one.
    pub fn entry(&self, seq: u64) -> Result<Option<Entry>> {
        self.settle();
        let conn = self.reader();
        let sql = format!("SELECT {COLUMNS} FROM entries WHERE seq = ?1");
        let stored = conn
            .prepare_cached(&sql)?
            .query_row(params![seq as i64], Stored::read)
            .optional()?;
        let Some(s) = stored else { return Ok(None) };
        let prev = Self::prev_hash(&conn, seq)?;
        Ok(Some(s.entry(&mut self.names(), &conn, prev)?))
    }

    /// Adds `entries` (being appended in `tx`) to the per-minute totals: one upsert per plugin, tool and minute.
    pub(super) fn add_minutes(tx: &rusqlite::Connection, entries: &[EntryRef<'_>]) -> Result<()> {
        type Key<'a> = (&'a str, i64, &'a str, &'a str);
        let mut sums: std::collections::BTreeMap<Key<'_>, (i64, i64, i64)> =
            std::collections::BTreeMap::new();
        for e in entries.iter().filter(|e| counts(*e)) {
            let principal = e.principal.unwrap_or("");
            let s = sums
                .entry((e.plugin, e.time_ms.div_euclid(MINUTE_MS), e.tool, principal))
                .or_default();
            s.0 += 1;
            s.1 = s.1.saturating_add(e.cost as i64);
            s.2 = s.2.saturating_add(e.fuel_used as i64);
        }
        if sums.is_empty() {
            return Ok(());
        }
        let mut stmt = tx.prepare_cached(
            "INSERT INTO minutes (plugin, minute, tool, principal, calls, cost, fuel) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (plugin, minute, tool, principal) DO UPDATE SET calls = calls + excluded.calls, \
             cost = cost + excluded.cost, fuel = fuel + excluded.fuel",
        )?;
        for ((plugin, minute, tool, principal), (calls, cost, fuel)) in sums {
            stmt.execute(params![plugin, minute, tool, principal, calls, cost, fuel])?;
        }
        Ok(())
    }

    /// Calls, fuel and cost of `plugin` (optionally one tool) since `since_ms`. Counts calls that ran: calls
    /// refused before the guest ran (outcome `quota` or `busy`) cost nothing and do not count. Whole minutes come
    /// from the per-minute totals, the minute `since_ms` falls in from its entries, in one read transaction: the
    /// cost is the window's minutes, not its calls.
    pub fn usage(&self, plugin: &str, tool: Option<&str>, since_ms: i64) -> Result<Usage> {
        self.settle();
        let conn = self.reader();
        let tx = conn.unchecked_transaction()?;
        let edge = since_ms.div_euclid(MINUTE_MS);
        let whole: (i64, i64, i64) = tx
            .prepare_cached(
                "SELECT COALESCE(SUM(calls), 0), COALESCE(SUM(fuel), 0), COALESCE(SUM(cost), 0) FROM minutes \
                 WHERE plugin = ?1 AND minute > ?2 AND (?3 IS NULL OR tool = ?3)",
            )?
            .query_row(params![plugin, edge, tool], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        let part: (i64, i64, i64) = tx
            .prepare_cached(concat!(
                "SELECT COUNT(*), COALESCE(SUM(fuel_used), 0), COALESCE(SUM(cost), 0) FROM entries \
                 INDEXED BY entries_plugin_time \
                 WHERE plugin = (SELECT id FROM names WHERE value = ?1) AND time_ms >= ?2 AND time_ms < ?3 \
                 AND (?4 IS NULL OR tool = (SELECT id FROM names WHERE value = ?4)) AND ",
                counted!()
            ))?
            .query_row(
                params![plugin, since_ms, (edge + 1) * MINUTE_MS, tool],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
        drop(tx);
        Ok(Usage {
            calls: (whole.0 + part.0) as u64,
            fuel: (whole.1 + part.1) as u64,
            cost: (whole.2 + part.2) as u64,
        })
    }

    /// The per-minute totals of `plugin`'s counted calls from minute `since_minute` on, and the sequence number
    /// they are exact up to (the head, read in the same transaction): what a contract is seeded from.
    pub fn minute_totals(
        &self,
        plugin: &str,
        since_minute: i64,
    ) -> Result<(u64, Vec<MinuteTotal>)> {
        self.settle();
        let conn = self.reader();
        let tx = conn.unchecked_transaction()?;
        let head = Self::head(&tx)?.map_or(0, |h| h.0);
        let rows = tx
            .prepare_cached(
                "SELECT tool, minute, calls, cost, principal FROM minutes WHERE plugin = ?1 AND minute >= ?2 \
                 ORDER BY minute",
            )?
            .query_map(params![plugin, since_minute], |r| {
                let principal: String = r.get(4)?;
                Ok(MinuteTotal {
                    tool: r.get(0)?,
                    principal: (!principal.is_empty()).then_some(principal),
                    minute: r.get(1)?,
                    calls: r.get::<_, i64>(2)? as u64,
                    cost: r.get::<_, i64>(3)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(tx);
        Ok((head, rows))
    }

    /// The counted calls of `plugin` (one tool, or all; one principal, or all) in minute `minute` with a sequence
    /// number up to `max_seq`, as (time, cost), oldest first: a minute of the plugin/time index.
    pub fn minute_calls(
        &self,
        plugin: &str,
        tool: Option<&str>,
        principal: Option<&str>,
        minute: i64,
        max_seq: u64,
    ) -> Result<Vec<(i64, u64)>> {
        self.settle();
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(concat!(
            "SELECT time_ms, cost FROM entries INDEXED BY entries_plugin_time \
             WHERE plugin = (SELECT id FROM names WHERE value = ?1) AND time_ms >= ?2 AND time_ms < ?3 \
             AND seq <= ?4 AND (?5 IS NULL OR tool = (SELECT id FROM names WHERE value = ?5)) \
             AND (?6 IS NULL OR principal = (SELECT id FROM names WHERE value = ?6)) AND ",
            counted!(),
            " ORDER BY time_ms, seq"
        ))?;
        let rows = stmt
            .query_map(
                params![
                    plugin,
                    minute * MINUTE_MS,
                    (minute + 1) * MINUTE_MS,
                    max_seq as i64,
                    tool,
                    principal
                ],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The counted calls of `plugin` with a sequence number above `after_seq`, oldest first: what a contract
    /// catches up on (a range of the sequence, whatever their time).
    pub fn counted_after(&self, plugin: &str, after_seq: u64) -> Result<Vec<CountedCall>> {
        self.counted(plugin, after_seq, i64::MIN, true)
    }

    /// The counted calls of `plugin` (see [`Ledger::usage`]) with a sequence number above `after_seq` and a time
    /// at or after `since_ms`, oldest first. What contracts are enforced from.
    pub fn counted_calls(
        &self,
        plugin: &str,
        after_seq: u64,
        since_ms: i64,
    ) -> Result<Vec<CountedCall>> {
        self.counted(plugin, after_seq, since_ms, after_seq > 0)
    }

    fn counted(
        &self,
        plugin: &str,
        after_seq: u64,
        since_ms: i64,
        by_seq: bool,
    ) -> Result<Vec<CountedCall>> {
        self.settle();
        let conn = self.reader();
        // Seeding (after_seq 0) walks the plugin/time index; catching up walks the sequence (the rowid; NOT INDEXED
        // keeps SQLite off the plugin index, which would rescan the whole window) from where it was.
        let sql = if !by_seq {
            concat!(
                "SELECT seq, time_ms, tool, cost, principal FROM entries INDEXED BY entries_plugin_time \
                 WHERE plugin = (SELECT id FROM names WHERE value = ?1) AND time_ms >= ?3 AND seq > ?2 AND ",
                counted!(),
                " ORDER BY seq"
            )
        } else {
            concat!(
                "SELECT seq, time_ms, tool, cost, principal FROM entries NOT INDEXED \
                 WHERE seq > ?2 AND plugin = (SELECT id FROM names WHERE value = ?1) AND time_ms >= ?3 AND ",
                counted!(),
                " ORDER BY seq"
            )
        };
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params![plugin, after_seq as i64, since_ms], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)? as u64,
                    r.get::<_, Option<i64>>(4)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut names = self.names();
        rows.into_iter()
            .map(|(seq, time_ms, tool, cost, principal)| {
                Ok(CountedCall {
                    seq,
                    time_ms,
                    tool: names.value(&conn, tool)?,
                    cost,
                    principal: names.value_opt(&conn, principal)?,
                })
            })
            .collect()
    }

    /// The highest sequence number written, archived or not (0 for an empty ledger).
    pub fn head_seq(&self) -> Result<u64> {
        self.settle();
        Ok(Self::head(&self.reader())?.map_or(0, |h| h.0))
    }

    /// Fuel used and peak memory of the last `limit` calls of `plugin` that ran, newest first (by time, then sequence
    /// number: the plugin/time index read backwards, so the cost is the `limit` calls, not the plugin's history).
    pub fn recent_usage(&self, plugin: &str, limit: usize) -> Result<Vec<CallUsage>> {
        self.settle();
        let conn = self.reader();
        let mut stmt = conn.prepare_cached(RECENT_SQL)?;
        let rows = stmt
            .query_map(params![plugin, limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(2)?,
                    CallUsage {
                        seq: r.get::<_, i64>(0)? as u64,
                        time_ms: r.get(1)?,
                        tool: String::new(),
                        fuel_used: r.get::<_, i64>(3)? as u64,
                        peak_memory: r.get::<_, i64>(4)? as u64,
                        duration_us: r.get::<_, i64>(5)? as u64,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut names = self.names();
        rows.into_iter()
            .map(|(tool, mut c)| {
                c.tool = names.value(&conn, tool)?;
                Ok(c)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::NewEntry;
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

    /// Counted calls of `a` at uneven times over six minutes, two tools, some refused (not counted), in two
    /// transactions, and calls of another plugin.
    fn uneven(l: &Ledger) -> Vec<NewEntry> {
        let v: Vec<NewEntry> = (0..300i64)
            .map(|i| {
                let mut c = call(if i % 11 == 0 { "b" } else { "a" }, 1_000_000 + i * 1_187);
                c.tool = if i % 3 == 0 {
                    "x".into()
                } else {
                    "echo".into()
                };
                c.cost = (i % 5) as u64;
                c.fuel_used = i as u64;
                if i % 7 == 0 {
                    c.outcome = if i % 2 == 0 { "quota" } else { "busy" }.into();
                }
                c
            })
            .collect();
        l.append(&v[..150]).expect("append");
        l.append(&v[150..]).expect("append");
        v
    }

    #[test]
    fn minute_totals_and_window_usage_are_exactly_the_entries() {
        let dir = tempfile::tempdir().expect("dir");
        let l = Ledger::open(dir.path()).expect("open");
        let v = uneven(&l);
        let brute = |tool: Option<&str>, since: i64| {
            let mut u = Usage::default();
            for e in v.iter().filter(|e| {
                e.plugin == "a"
                    && counts(*e)
                    && e.time_ms >= since
                    && tool.is_none_or(|t| t == e.tool)
            }) {
                u.calls += 1;
                u.fuel += e.fuel_used;
                u.cost += e.cost;
            }
            u
        };
        let mut nonzero = 0;
        for since in [
            0, 1_000_000, 1_019_999, 1_020_000, 1_020_001, 1_100_000, 1_234_567, 1_300_000,
            2_000_000,
        ] {
            for tool in [None, Some("x"), Some("echo")] {
                let want = brute(tool, since);
                assert_eq!(
                    l.usage("a", tool, since).expect("usage"),
                    want,
                    "{since} {tool:?}"
                );
                nonzero += usize::from(want.calls > 0);
            }
        }
        assert!(nonzero >= 20, "{nonzero}");
        // The totals are per minute and tool, exact up to the head read with them.
        let (head, totals) = l.minute_totals("a", i64::MIN).expect("totals");
        assert_eq!(head, 300);
        assert_eq!(
            totals.iter().map(|t| t.calls).sum::<u64>(),
            brute(None, 0).calls
        );
        assert!(
            totals
                .iter()
                .map(|t| t.minute)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                >= 5
        );
        for t in &totals {
            let calls = l
                .minute_calls("a", Some(&t.tool), None, t.minute, head)
                .expect("minute");
            assert_eq!(calls.len() as u64, t.calls, "{t:?}");
            assert_eq!(calls.iter().map(|c| c.1).sum::<u64>(), t.cost, "{t:?}");
            assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
        }
        let (_, later) = l.minute_totals("a", 1_200_000 / MINUTE_MS).expect("totals");
        assert!(later.iter().all(|t| t.minute >= 20) && !later.is_empty());
        // A minute's calls up to a sequence number leave out what came after it.
        let m = v[299].time_ms / MINUTE_MS;
        let all = l.minute_calls("a", None, None, m, 300).expect("minute");
        let before = l.minute_calls("a", None, None, m, 299).expect("minute");
        assert_eq!(all.len(), before.len() + 1);
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
        // A contract's first look: its window's minutes from the totals' key, and one minute of the plugin's calls.
        let totals = plan(
            &l,
            "SELECT tool, minute, calls, cost FROM minutes WHERE plugin = ?1 AND minute >= ?2 ORDER BY minute",
            &[&"a", &5i64],
        );
        assert!(
            totals
                .iter()
                .all(|s| s.starts_with("SEARCH") && !s.contains("TEMP B-TREE")),
            "{totals:?}"
        );
        // The head and catching up on it: the rowid.
        let head = plan(&l, "SELECT MAX(seq) FROM entries", &[]);
        assert!(head.iter().all(|s| !s.starts_with("SCAN")), "{head:?}");
    }
}
