//! Standby instances: a fresh store and instance made ready *before* a call arrives.
//!
//! Every call still runs in a store and instance no other call has touched (the isolation rule does not change);
//! what moves is *when* the work happens. After a call returns its result, a background thread ("plughost-standby")
//! tears the used store down and instantiates the plugin's next one, so the next call of that plugin skips both
//! steps: about two thirds of a small Rust call's cost, and most of a Python or JavaScript call's.
//!
//! Each plugin keeps at most one standby. A call that finds none (the first call, or calls arriving faster than the
//! thread refills) instantiates inline as before. Standby instances hold a pooling-allocator slot each and only the
//! memory their instantiation touched.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use wasmtime::Store;

use super::engine::HostEngine;
use super::limits::Limits;
use super::stats::HostStats;
use super::store::StoreData;
use crate::bindings::{Plugin, PluginPre};
use crate::caps::PluginEnv;

/// More used stores than this waiting for teardown and callers drop their own (bounds the slots held).
const MAX_RETIRING: usize = 32;

/// A store with an instantiated plugin that no call has used yet.
pub(crate) struct Prepared {
    pub(crate) store: Store<StoreData>,
    pub(crate) instance: Plugin,
    /// The limits the store was built under; a call under other limits does not use it.
    pub(crate) limits: Limits,
    pub(crate) _counted: Counted,
}

/// Counts a standby instance in [`HostStats`] while it waits.
pub(crate) struct Counted(Arc<HostStats>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.standby.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One plugin's standby slot. Dropping the plugin drops its standby.
#[derive(Default)]
pub(crate) struct Standby {
    ready: Mutex<Option<Prepared>>,
    /// When this plugin's last call ended, in nanoseconds since [`clock`]'s start; 0 before the first.
    last_end: AtomicU64,
}

/// Calls closer together than this are "back to back": the standby thread could not refill in time (it looks at
/// its queue once per epoch tick), so such calls instantiate and tear down inline, as without standby, and cost
/// no extra CPU.
const SPACED: Duration = super::engine::EPOCH_TICK;

fn clock() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

impl Standby {
    /// Whether this call comes after a pause (the standby thread has had time to work), given when it started;
    /// also notes the call's end for the next one.
    pub(crate) fn spaced(&self, started: Instant) -> bool {
        let end = clock();
        let last = self.last_end.swap(end, Ordering::Relaxed);
        let since_start = started.elapsed().as_nanos() as u64;
        last == 0
            || end.saturating_sub(since_start).saturating_sub(last) >= SPACED.as_nanos() as u64
    }

    /// Takes the prepared instance if it was built under `limits`.
    pub(crate) fn take(&self, limits: &Limits) -> Option<Prepared> {
        // Never wait: if the preparer holds the lock right now, instantiating inline is as fast.
        let mut slot = self.ready.try_lock().ok()?;
        match slot.take() {
            Some(p) if p.limits == *limits => Some(p),
            // Built under old limits: retire it here (rare: a limits change between calls).
            _ => None,
        }
    }

    fn is_empty(&self) -> bool {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none()
    }

    fn put(&self, p: Prepared) {
        *self.ready.lock().unwrap_or_else(|p| p.into_inner()) = Some(p);
    }
}

/// What the background thread needs to build a plugin's next standby.
pub(crate) struct Refill {
    pub(crate) standby: Weak<Standby>,
    pub(crate) pre: PluginPre<StoreData>,
    pub(crate) env: Arc<PluginEnv>,
    pub(crate) limits: Limits,
}

struct Job {
    retire: Option<Store<StoreData>>,
    refill: Option<Refill>,
}

/// How long the thread sleeps between looks at its queue: an epoch tick while it found work in the last
/// [`QUICK_FOR`] (calls a few milliseconds apart find their standby ready); then twice as long after each empty
/// look, up to [`SLOW_NAP`]; [`IDLE_NAP`] once it has found nothing for [`IDLE_AFTER`]. Back-to-back calls queue
/// nothing (they tear down inline), so under a steady stream of them the thread looks about 60 times a second
/// instead of 500: on this VM each of those wake-ups cost as much CPU as a tenth of a call.
const BUSY_NAP: Duration = super::engine::EPOCH_TICK;
const QUICK_FOR: Duration = Duration::from_millis(20);
const SLOW_NAP: Duration = Duration::from_millis(16);
const IDLE_NAP: Duration = Duration::from_millis(100);
const IDLE_AFTER: Duration = Duration::from_secs(1);

/// The nap after an empty look, given how long ago work was last found and the nap before.
fn next_nap(since_work: Duration, last: Duration) -> Duration {
    if since_work > IDLE_AFTER {
        IDLE_NAP
    } else if since_work < QUICK_FOR {
        BUSY_NAP
    } else {
        (last * 2).clamp(BUSY_NAP, SLOW_NAP)
    }
}

#[derive(Default)]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    retiring: AtomicUsize,
    stop: AtomicBool,
}

/// The background thread, started on first use.
///
/// Callers never wake it: on this kind of machine (2 vCPUs) waking a sleeping thread costs the waker 10-15 µs, as
/// much as the work it hands over. The thread naps and looks at its queue: every epoch tick (2 ms) just after it
/// found work, backing off to 16 ms while none comes, every 100 ms when idle (see [`next_nap`]).
#[derive(Default)]
pub(crate) struct Preparer {
    queue: Arc<Queue>,
    thread: OnceLock<Option<std::thread::Thread>>,
}

impl std::fmt::Debug for Preparer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preparer")
            .field("started", &self.thread.get().is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for Preparer {
    fn drop(&mut self) {
        self.queue.stop.store(true, Ordering::Relaxed);
        if let Some(Some(t)) = self.thread.get() {
            t.unpark();
        }
    }
}

impl Preparer {
    fn started(&self, engine: &HostEngine, stats: &Arc<HostStats>) -> bool {
        self.thread
            .get_or_init(|| {
                let queue = self.queue.clone();
                let engine = engine.clone();
                let stats = stats.clone();
                let spawned = std::thread::Builder::new()
                    .name("plughost-standby".into())
                    .spawn(move || run(&queue, &engine, &stats));
                match spawned {
                    Ok(h) => Some(h.thread().clone()),
                    Err(e) => {
                        tracing::warn!("no standby instances: cannot start the thread: {e}");
                        None
                    }
                }
            })
            .is_some()
    }

    /// Queues a used store for teardown (or drops it here when too many wait) and asks for the plugin's next
    /// standby.
    pub(crate) fn after_call(
        &self,
        engine: &HostEngine,
        stats: &Arc<HostStats>,
        store: Store<StoreData>,
        refill: Option<Refill>,
    ) {
        if !self.started(engine, stats) {
            return;
        }
        let q = &self.queue;
        let retire = if q.retiring.load(Ordering::Relaxed) < MAX_RETIRING {
            q.retiring.fetch_add(1, Ordering::Relaxed);
            Some(store)
        } else {
            drop(store);
            None
        };
        q.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Job { retire, refill });
    }
}

fn run(queue: &Queue, engine: &HostEngine, stats: &Arc<HostStats>) {
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            // Still tear used stores down; just prepare nothing.
            tracing::warn!("no standby instances: cannot build the thread's runtime: {e}");
            None
        }
    };
    let mut last_work = Instant::now();
    let mut nap = BUSY_NAP;
    let mut batch = VecDeque::new();
    while !queue.stop.load(Ordering::Relaxed) {
        std::mem::swap(
            &mut batch,
            &mut *queue.jobs.lock().unwrap_or_else(|p| p.into_inner()),
        );
        if batch.is_empty() {
            nap = next_nap(last_work.elapsed(), nap);
            std::thread::park_timeout(nap);
            continue;
        }
        last_work = Instant::now();
        nap = BUSY_NAP;
        // Teardown first: it returns slots to the pool that the refills may need.
        let mut refills = Vec::new();
        for job in batch.drain(..) {
            if let Some(store) = job.retire {
                drop(store);
                queue.retiring.fetch_sub(1, Ordering::Relaxed);
            }
            refills.extend(job.refill);
        }
        let Some(rt) = &rt else { continue };
        for refill in refills {
            prepare(rt, engine, stats, refill);
        }
    }
}

fn prepare(
    rt: &tokio::runtime::Runtime,
    engine: &HostEngine,
    stats: &Arc<HostStats>,
    refill: Refill,
) {
    let Some(standby) = refill.standby.upgrade() else {
        return;
    };
    if !standby.is_empty() {
        return;
    }
    let mut store = super::store::new_store(engine, refill.env, &refill.limits, 0);
    let guest = engine.guest_running();
    let instantiated = rt.block_on(refill.pre.instantiate_async(&mut store));
    drop(guest);
    match instantiated {
        Ok(instance) => {
            stats.instances.fetch_add(1, Ordering::Relaxed);
            stats.standby.fetch_add(1, Ordering::Relaxed);
            standby.put(Prepared {
                store,
                instance,
                limits: refill.limits,
                _counted: Counted(stats.clone()),
            });
        }
        // The call that needs it instantiates inline and reports the failure properly.
        Err(e) => tracing::debug!("standby instantiation failed: {e:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nap_backs_off_while_no_work_comes_and_is_quick_again_after_some() {
        let ms = Duration::from_millis;
        // Just after work: every epoch tick, whatever the nap before.
        assert_eq!(next_nap(ms(5), ms(16)), BUSY_NAP);
        // Then doubling up to the slow nap, and staying there.
        assert_eq!(next_nap(ms(25), BUSY_NAP), ms(4));
        assert_eq!(next_nap(ms(30), ms(4)), ms(8));
        assert_eq!(next_nap(ms(40), ms(8)), SLOW_NAP);
        assert_eq!(next_nap(ms(500), SLOW_NAP), SLOW_NAP);
        // Idle: the long nap.
        assert_eq!(next_nap(ms(1500), SLOW_NAP), IDLE_NAP);
    }
}
