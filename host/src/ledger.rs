//! The host's side of the usage ledger: a writer thread that group-commits entries (many concurrent calls share one
//! SQLite transaction), and the mapping from a call's report to its ledger entry. A call is acknowledged to its
//! caller only after its entry is committed.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use plughost_registry::PluginRecord;
pub use plughost_registry::ledger::{Caller, Kind, Ledger, LedgerError, NewEntry};

use crate::report::CallReport;
use crate::runtime::CallResult;

/// Most entries one transaction takes.
const MAX_BATCH: usize = 512;

struct Job {
    entries: Vec<NewEntry>,
    done: tokio::sync::oneshot::Sender<Result<Vec<u64>, String>>,
}

/// Appends to the ledger from a dedicated thread, committing whatever is queued together.
#[derive(Debug)]
pub struct LedgerWriter {
    ledger: Arc<Ledger>,
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({} entries)", self.entries.len())
    }
}

impl LedgerWriter {
    pub fn start(ledger: Arc<Ledger>) -> Arc<LedgerWriter> {
        let (queue, rx) = mpsc::channel::<Job>();
        let l = ledger.clone();
        std::thread::Builder::new()
            .name("plughost-ledger".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    let mut n = jobs[0].entries.len();
                    while n < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => {
                                n += j.entries.len();
                                jobs.push(j);
                            }
                            Err(_) => break,
                        }
                    }
                    let all: Vec<NewEntry> = jobs
                        .iter()
                        .flat_map(|j| j.entries.iter().cloned())
                        .collect();
                    match l.append(&all) {
                        Ok(seqs) => {
                            let mut at = 0;
                            for j in jobs {
                                let k = j.entries.len();
                                let _ = j.done.send(Ok(seqs[at..at + k].to_vec()));
                                at += k;
                            }
                        }
                        Err(e) => {
                            tracing::error!("ledger write failed: {e}");
                            for j in jobs {
                                let _ = j.done.send(Err(e.to_string()));
                            }
                        }
                    }
                }
            })
            .expect("spawn the ledger thread");
        Arc::new(LedgerWriter { ledger, queue })
    }

    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// Appends and waits for the commit. Returns the entries' sequence numbers.
    pub async fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<u64>, String> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.queue
            .send(Job { entries, done })
            .map_err(|_| "the ledger writer has stopped".to_string())?;
        wait.await
            .map_err(|_| "the ledger writer has stopped".to_string())?
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The ledger entry of a finished call.
pub fn call_entry(
    record: &PluginRecord,
    report: &CallReport,
    result: &CallResult,
    caller: &Caller,
    arguments: &str,
    cost: u64,
) -> NewEntry {
    let outcome = match &result.result {
        Ok(_) => "ok".to_string(),
        Err(e) => e.kind().to_string(),
    };
    NewEntry {
        time_ms: now_ms(),
        kind: Kind::Call,
        plugin: record.id.clone(),
        version: record.version.clone(),
        digest: record.digest.clone(),
        tool: report.tool.clone(),
        caller: caller.clone(),
        duration_us: report.wall_time.as_micros() as u64,
        fuel_used: report.fuel_used,
        peak_memory: report.peak_memory_bytes,
        outcome,
        args_digest: Some(plughost_registry::ledger::args_digest(arguments)),
        cost,
        event: None,
        data: None,
    }
}
