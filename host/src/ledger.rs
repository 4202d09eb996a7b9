//! The host's side of the usage ledger: group commit, and the mapping from a call's report to its ledger entry. A
//! call is acknowledged to its caller only after its entry is committed.
//!
//! Group commit without a hand-off, serialised by one commit lock: when nothing is pending and nobody is committing,
//! a call commits its own entry right away on its own thread (the common case at low load). Otherwise it adds the
//! entry to the pending list and waits; whoever holds the commit lock — or takes it next — commits everything
//! pending in one transaction before letting go, then looks again. So under load many calls share a commit, only
//! one async worker at a time is committing, and no entry waits for a thread to be woken. (A writer thread did
//! this before; waking it cost every queued call two thread switches.)
//!
//! Fail closed: before a guest runs, [`LedgerWriter::check`] says whether an entry could be written (the file
//! system is mounted read-write and has room, and — on a process's first call and after any failed write — SQLite
//! can take the write lock on a database that is not read-only). A call whose entry then cannot be committed is not
//! reported as a success (see `Entry::call_as` in catalog.rs).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use plughost_registry::PluginRecord;
pub use plughost_registry::ledger::{
    Caller, EntryRef, Kind, Ledger, LedgerError, NewEntry, args_digest,
};
use plughost_registry::seam::LedgerStore;

use crate::call::CallResult;
use crate::report::CallReport;

/// Most entries one shared transaction takes (a single call's entries always go in whole).
const MAX_BATCH: usize = 1024;

/// Free space the ledger's file system must have for a call to run: a WAL commit of a full batch, with room to spare.
pub const MIN_FREE_BYTES: u64 = 4 << 20;

/// How long a look at the file system stands for the calls after it, when it found it writable with at least
/// [`ROOM_MARGIN`] more than [`MIN_FREE_BYTES`] free: a `fstatvfs` per call was ~1% of a loaded gateway's CPU. In
/// 50 ms this process writes far less than the margin, so only something else filling the disk (or remounting it)
/// within that window is seen late, and then by the spool's `write`, which fails and so fails the call closed.
const ROOM_FRESH: std::time::Duration = std::time::Duration::from_millis(50);
/// See [`ROOM_FRESH`].
const ROOM_MARGIN: u64 = 64 << 20;

/// Until when (µs, on the clock `now_us` is read on) a look that found `free` bytes available stands; 0 when the
/// next call must look again.
fn room_stands_until(now_us: u64, free: u64) -> u64 {
    if free >= MIN_FREE_BYTES.saturating_add(ROOM_MARGIN) {
        now_us.saturating_add(ROOM_FRESH.as_micros() as u64)
    } else {
        0
    }
}

/// Why no entry can be written now; calls are refused as `unavailable` before they run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the usage ledger {path} cannot be written: {reason}")]
pub struct Unwritable {
    pub path: String,
    pub reason: String,
}

struct Job {
    entries: Vec<NewEntry>,
    done: tokio::sync::oneshot::Sender<Result<Vec<u64>, String>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({} entries)", self.entries.len())
    }
}

#[derive(Debug)]
struct Shared {
    ledger: Arc<Ledger>,
    /// A cluster's shared ledger: when set, entries are appended there (one chain for every replica) and the data
    /// dir's `ledger` is not written.
    store: Option<Arc<dyn LedgerStore>>,
    /// Held for the length of one transaction, by whichever call is committing.
    commit: Mutex<()>,
    /// Entries waiting for the next transaction.
    pending: Mutex<Vec<Job>>,
    /// `pending.len()`, readable without the lock.
    queued: AtomicUsize,
    /// The ledger's directory, open, for `fstatvfs` (no path lookup per call); `None` if it could not be opened.
    dir: Option<std::fs::File>,
    /// When this writer started; [`Shared::room_until`] counts from it.
    started: std::time::Instant,
    /// Until when (µs after `started`) the last look at the file system stands ([`ROOM_FRESH`]); 0: look again.
    room_until: std::sync::atomic::AtomicU64,
    /// The last write (or SQLite-level check) succeeded. Cleared by a failed commit, so the next check asks SQLite
    /// again instead of trusting the last success.
    healthy: AtomicBool,
    /// Calls between their check and their commit ([`Flight`]).
    flying: AtomicUsize,
    /// Transactions committed (or tried) by this writer.
    commits: std::sync::atomic::AtomicU64,
}

/// A call between [`LedgerWriter::check`] and its commit; while others are too, its commit first lets the tasks
/// ready on its worker run, so calls that finish together share one transaction.
#[derive(Debug)]
pub struct Flight<'a>(&'a AtomicUsize);

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Appends to the ledger with group commit.
#[derive(Debug)]
pub struct LedgerWriter {
    shared: Arc<Shared>,
}

impl LedgerWriter {
    pub fn start(ledger: Arc<Ledger>) -> Arc<LedgerWriter> {
        Self::start_with(ledger, None)
    }

    /// A writer that appends to a cluster's shared ledger (`local` is the data dir's, kept for what reads it).
    pub fn start_shared(local: Arc<Ledger>, store: Arc<dyn LedgerStore>) -> Arc<LedgerWriter> {
        Self::start_with(local, Some(store))
    }

    /// Whether entries go to a cluster's shared ledger.
    pub fn is_shared(&self) -> bool {
        self.shared.store.is_some()
    }

    fn start_with(ledger: Arc<Ledger>, store: Option<Arc<dyn LedgerStore>>) -> Arc<LedgerWriter> {
        let shared = Arc::new(Shared {
            store,
            commit: Mutex::new(()),
            pending: Mutex::new(Vec::new()),
            queued: AtomicUsize::new(0),
            healthy: AtomicBool::new(false),
            flying: AtomicUsize::new(0),
            commits: std::sync::atomic::AtomicU64::new(0),
            started: std::time::Instant::now(),
            room_until: std::sync::atomic::AtomicU64::new(0),
            dir: ledger
                .path()
                .parent()
                .and_then(|d| std::fs::File::open(d).ok()),
            ledger,
        });
        // Checkpoints run on the ledger's keeper thread, not on some call's commit, and keep the WAL bounded.
        if let Err(e) = shared.ledger.keep_wal_bounded() {
            tracing::warn!("ledger checkpoints stay automatic: {e}");
        }
        Arc::new(LedgerWriter { shared })
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.shared.ledger
    }

    /// Whether a call's entry could be written now; run before the guest. The ledger's file system is mounted
    /// read-write and has [`MIN_FREE_BYTES`] available (one `fstatvfs`, which stands for [`ROOM_FRESH`] when it
    /// found far more room, and never after a failed write). On the first call of the process and after any failed
    /// write: SQLite can take the write lock on a database that is not read-only ([`Ledger::check_writable`]);
    /// after that, a successful commit stands for it.
    pub fn check(&self) -> Result<(), Unwritable> {
        let s = &self.shared;
        if let Some(store) = &s.store {
            // One round trip per call: a store that cannot be reached refuses the call before the guest runs.
            return store.head_seq().map(|_| ()).map_err(|e| Unwritable {
                path: "in the shared store".into(),
                reason: e.to_string(),
            });
        }
        let path = s.ledger.path();
        let fail = |reason: String| Unwritable {
            path: path.display().to_string(),
            reason,
        };
        let healthy = s.healthy.load(Ordering::Acquire);
        let now = s.started.elapsed().as_micros() as u64;
        if !healthy || now >= s.room_until.load(Ordering::Relaxed) {
            let fs = match &s.dir {
                Some(d) => rustix::fs::fstatvfs(d),
                None => rustix::fs::statvfs(path.parent().unwrap_or(path)),
            }
            .map_err(|e| fail(format!("cannot check its file system: {e}")))?;
            if fs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
                return Err(fail("its file system is mounted read-only".into()));
            }
            let free = fs.f_bavail.saturating_mul(fs.f_frsize);
            if free < MIN_FREE_BYTES {
                return Err(fail(format!(
                    "its file system is full ({free} bytes available, a call needs {MIN_FREE_BYTES})"
                )));
            }
            s.room_until
                .store(room_stands_until(now, free), Ordering::Relaxed);
        }
        if !healthy {
            s.ledger.check_writable().map_err(|e| fail(e.to_string()))?;
            s.healthy.store(true, Ordering::Release);
        }
        // Spooled entries that cannot be moved into ledger.db, or too many of them: refuse until a move works.
        if let Some(why) = s.ledger.spool_trouble() {
            return Err(fail(why));
        }
        Ok(())
    }

    /// Acknowledges calls with one `write` to the ledger's spool from here on, moved into `ledger.db` in batches
    /// (see the registry's `spool.rs`); for a long-running process. A cluster's shared ledger is not spooled.
    pub fn spool(&self) -> Result<(), LedgerError> {
        if self.shared.store.is_some() {
            return Ok(());
        }
        self.shared.ledger.start_spool()
    }

    /// Like [`LedgerWriter::append`], for an entry nobody needs the sequence number of: with a spool
    /// ([`LedgerWriter::spool`]), the entry is on disk when this returns and gets its place in the chain within
    /// [`plughost_registry::ledger::SPOOL_TICK`]; without one, it is committed as `append` does.
    pub async fn append_spooled(&self, entry: EntryRef<'_>) -> Result<(), String> {
        let s = &self.shared;
        if s.store.is_some() || !s.ledger.is_spooling() {
            return self.append(vec![entry.owned()]).await.map(|_| ());
        }
        let r = s.ledger.append_spooled([entry]).map_err(|e| {
            tracing::error!("ledger spool write failed: {e}");
            e.to_string()
        });
        s.healthy.store(r.is_ok(), Ordering::Release);
        r
    }

    /// Transactions this writer has committed or tried (group commit puts many entries in one).
    pub fn commits(&self) -> u64 {
        self.shared.commits.load(Ordering::Relaxed)
    }

    /// Marks a call as under way until the guard is dropped (see [`Flight`]).
    pub fn flight(&self) -> Flight<'_> {
        self.shared.flying.fetch_add(1, Ordering::Relaxed);
        Flight(&self.shared.flying)
    }

    /// Appends and waits for the commit. Returns the entries' sequence numbers.
    pub async fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<u64>, String> {
        let r = self.append_inner(entries).await;
        self.shared.healthy.store(r.is_ok(), Ordering::Release);
        r
    }

    async fn append_inner(&self, entries: Vec<NewEntry>) -> Result<Vec<u64>, String> {
        let s = &self.shared;
        // Other calls under way: those ready on this worker run first (the yield below puts this task behind them
        // and behind the I/O they wait for), add their entries, and one of us commits all of them.
        let together = s.flying.load(Ordering::Relaxed) > 1;
        if !together
            && s.queued.load(Ordering::Acquire) == 0
            && let Ok(one) = s.commit.try_lock()
        {
            let r = append_to(s, &entries).map_err(|e| {
                tracing::error!("ledger write failed: {e}");
                e
            });
            drop(one);
            // Calls that came while this one committed are waiting for a committer.
            drain(s);
            return r;
        }
        let (done, wait) = tokio::sync::oneshot::channel();
        {
            let mut p = s.pending.lock().unwrap_or_else(|p| p.into_inner());
            p.push(Job { entries, done });
            s.queued.store(p.len(), Ordering::Release);
        }
        // Drained when dropped, even if this future is dropped during the yield.
        let drains = Drains(s);
        if together {
            tokio::task::yield_now().await;
        }
        drop(drains);
        wait.await
            .map_err(|_| "the ledger writer has stopped".to_string())?
    }
}

/// Drains when dropped.
struct Drains<'a>(&'a Shared);

impl Drop for Drains<'_> {
    fn drop(&mut self) {
        drain(self.0);
    }
}

/// Commits what is pending if nobody else is committing; whoever is will look again after letting go of the lock,
/// so an entry added meanwhile is never left behind.
fn drain(s: &Shared) {
    loop {
        // Under the pending lock, not the `queued` hint: a call that added its entry and then found the commit
        // lock taken relies on this look, after the holder let go, to see that entry.
        if s.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            return;
        }
        let Ok(one) = s.commit.try_lock() else {
            return;
        };
        loop {
            let jobs = {
                let mut p = s.pending.lock().unwrap_or_else(|p| p.into_inner());
                let mut n = 0;
                let take = p
                    .iter()
                    .take_while(|j| {
                        n += j.entries.len();
                        n <= MAX_BATCH || n == j.entries.len()
                    })
                    .count();
                let jobs: Vec<Job> = p.drain(..take).collect();
                s.queued.store(p.len(), Ordering::Release);
                jobs
            };
            if jobs.is_empty() {
                break;
            }
            commit_jobs(s, jobs);
        }
        drop(one);
    }
}

/// Appends to the shared ledger when there is one, else to the data dir's.
fn append_to(s: &Shared, entries: &[NewEntry]) -> Result<Vec<u64>, String> {
    s.commits.fetch_add(1, Ordering::Relaxed);
    match &s.store {
        Some(store) => store.append(entries).map_err(|e| e.to_string()),
        None => s.ledger.append(entries).map_err(|e| e.to_string()),
    }
}

fn commit_jobs(s: &Shared, jobs: Vec<Job>) {
    let mut all = Vec::with_capacity(jobs.iter().map(|j| j.entries.len()).sum());
    let mut waiting = Vec::with_capacity(jobs.len());
    for j in jobs {
        waiting.push((j.entries.len(), j.done));
        all.extend(j.entries);
    }
    match append_to(s, &all) {
        Ok(seqs) => {
            let mut at = 0;
            for (k, done) in waiting {
                let _ = done.send(Ok(seqs[at..at + k].to_vec()));
                at += k;
            }
        }
        Err(e) => {
            tracing::error!("ledger write failed: {e}");
            for (_, done) in waiting {
                let _ = done.send(Err(e.clone()));
            }
        }
    }
}

/// Who called, in one line as `ledger show` and the operator page print it: transport, principal, session.
pub fn caller_text(c: &Caller) -> String {
    [
        Some(c.transport.as_str()),
        c.principal.as_deref(),
        c.session.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The ledger entry of a finished call, borrowed from the call's parts; `args_digest` is
/// [`plughost_registry::ledger::args_digest`] of its arguments.
pub fn call_entry<'a, T>(
    record: &'a PluginRecord,
    report: &'a CallReport,
    result: &CallResult<T>,
    caller: &'a Caller,
    args_digest: &'a str,
    cost: u64,
) -> EntryRef<'a> {
    EntryRef {
        time_ms: now_ms(),
        kind: Kind::Call,
        plugin: &record.id,
        version: &record.version,
        digest: &record.digest,
        tool: &report.tool,
        transport: &caller.transport,
        session: caller.session.as_deref(),
        principal: caller.principal.as_deref(),
        duration_us: report.wall_time.as_micros() as u64,
        fuel_used: report.fuel_used,
        peak_memory: report.peak_memory_bytes,
        outcome: match &result.result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        },
        args_digest: Some(args_digest),
        cost,
        event: None,
        data: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    #[test]
    fn a_look_at_the_file_system_stands_only_while_it_found_room_to_spare() {
        let fresh = ROOM_FRESH.as_micros() as u64;
        let plenty = MIN_FREE_BYTES + ROOM_MARGIN;
        assert_eq!(room_stands_until(1_000, plenty), 1_000 + fresh);
        assert_eq!(room_stands_until(1_000, u64::MAX), 1_000 + fresh);
        // Close to the floor, every call looks again.
        assert_eq!(room_stands_until(1_000, plenty - 1), 0);
        assert_eq!(room_stands_until(1_000, MIN_FREE_BYTES), 0);
    }

    fn entry(n: u64) -> NewEntry {
        NewEntry {
            time_ms: now_ms(),
            kind: Kind::Call,
            plugin: "p".into(),
            version: "1.0.0".into(),
            digest: "d".into(),
            tool: format!("t{n}"),
            caller: Caller {
                transport: "cli".into(),
                session: None,
                principal: None,
            },
            duration_us: 1,
            fuel_used: 1,
            peak_memory: 1,
            outcome: "ok".into(),
            args_digest: None,
            cost: 0,
            event: None,
            data: None,
        }
    }

    fn writer(dir: &tempfile::TempDir) -> Arc<LedgerWriter> {
        LedgerWriter::start(Arc::new(Ledger::open(dir.path()).expect("ledger")))
    }

    #[test]
    fn calls_under_way_together_share_one_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = writer(&dir);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let mut seqs = rt.block_on(async {
            // Three calls under way on one worker: each adds its entry and yields to the others before committing.
            let flights: Vec<_> = (0..3).map(|_| w.flight()).collect();
            let tasks: Vec<_> = (0..3)
                .map(|n| {
                    let w = w.clone();
                    tokio::spawn(async move { w.append(vec![entry(n)]).await })
                })
                .collect();
            let mut seqs = Vec::new();
            for t in tasks {
                seqs.extend(t.await.expect("task").expect("append"));
            }
            drop(flights);
            seqs
        });
        seqs.sort_unstable();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert_eq!(w.commits(), 1, "three entries, one transaction");
        assert_eq!(w.ledger().head_seq().expect("head"), 3);

        // Alone, a call commits at once without yielding.
        let alone = rt.block_on(async {
            let _f = w.flight();
            w.append(vec![entry(9)]).await
        });
        assert_eq!(alone, Ok(vec![4]));
        assert_eq!(w.commits(), 2);
    }

    #[test]
    fn an_entry_whose_call_is_dropped_while_it_yields_is_still_committed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = writer(&dir);
        let _others = w.flight();
        let _mine = w.flight();
        let mut append = Box::pin(w.append(vec![entry(1)]));
        let waker = std::task::Waker::noop();
        let polled = append
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker));
        assert!(
            polled.is_pending(),
            "it yields while another call is under way"
        );
        assert_eq!(w.ledger().head_seq().expect("head"), 0);
        drop(append);
        assert_eq!(w.ledger().head_seq().expect("head"), 1);
    }
}
