//! The one shared wasmtime `Engine`: pooling allocator, fuel, epoch interruption with a ticker, and a compile cache
//! keyed by the component's blake3 digest and the engine's compatibility hash.
//!
//! wasmtime runs a cached artifact's machine code as it is, so the cache is not trusted on its own: when plughost
//! writes an artifact it records the artifact's blake3 digest in the registry's `index.db` (the data dir's trust
//! anchor; an attacker who can edit the artifact cannot fix a digest kept there), and before loading one it reads the
//! file once, hashes it, compares, and loads those same verified bytes. A mismatch, or an artifact with no recorded
//! digest, is discarded and the component compiled again from its verified blob. This happens when a component is
//! loaded (install, start, relink of a new digest), never on the call path.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use plughost_registry::Registry;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::limits::MAX_MEMORY_BYTES;

/// How often the epoch advances: the granularity of deadlines and of cooperative yields.
pub const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Failures of the engine or the compile cache.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot configure wasmtime: {0}")]
    Config(String),
    #[error("compiling the component failed: {0}")]
    Compile(String),
    #[error("compile cache {path}: {source}")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// After this long with no guest running, the ticker parks until the next guest starts: an idle host spends no CPU
/// on the epoch (ticking every [`EPOCH_TICK`] was 2% of a core here, doing nothing).
const TICKER_IDLE_AFTER: Duration = Duration::from_secs(1);

/// The epoch ticker's state, shared by the engine's clones and its thread.
#[derive(Debug, Default)]
struct Ticks {
    stop: AtomicBool,
    /// Guests running now (calls, instantiations, `describe`, warm-ups); while any is, the epoch advances.
    running: AtomicUsize,
    /// Bumped by every guest that starts, so the ticker sees guests that came and went between two ticks.
    started: AtomicU64,
    /// The ticker is parked, or about to park: a guest that starts then unparks it.
    asleep: AtomicBool,
    /// The ticker thread, set by the thread itself before it can park.
    thread: OnceLock<std::thread::Thread>,
    /// Memory slots are reset with PAGEMAP_SCAN: the ticker watches for swap turned on later ([`SWAP_CHECK`]).
    pagemap: AtomicBool,
}

/// How often, while guests run, the ticker looks at `/proc/swaps` when slots are reset with PAGEMAP_SCAN: swap
/// turned on after start makes that reset miss swapped-out pages (see [`pagemap_scan_safe`]).
const SWAP_CHECK: Duration = Duration::from_secs(10);

impl Ticks {
    fn wake(&self) {
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
    }

    /// The ticker's loop: advance the epoch every [`EPOCH_TICK`] while guests run or have run in the last
    /// [`TICKER_IDLE_AFTER`]; otherwise park.
    fn run(&self, engine: &wasmtime::EngineWeak) {
        let _ = self.thread.set(std::thread::current());
        let mut seen = self.started.load(Ordering::SeqCst);
        let mut quiet_since = Instant::now();
        let mut swap_checked = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            let started = self.started.load(Ordering::SeqCst);
            if started != seen || self.running.load(Ordering::SeqCst) > 0 {
                seen = started;
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() >= TICKER_IDLE_AFTER {
                // `asleep` is stored before `running` is read, and a guest adds itself to `running` before it
                // reads `asleep` (all SeqCst): either this sees the guest and does not park, or the guest sees
                // `asleep` and unparks this thread (an unpark before the park makes the park return at once).
                self.asleep.store(true, Ordering::SeqCst);
                if self.running.load(Ordering::SeqCst) == 0 && !self.stop.load(Ordering::SeqCst) {
                    std::thread::park();
                }
                self.asleep.store(false, Ordering::SeqCst);
                quiet_since = Instant::now();
                continue;
            }
            std::thread::sleep(EPOCH_TICK);
            if self.pagemap.load(Ordering::Relaxed) && swap_checked.elapsed() >= SWAP_CHECK {
                swap_checked = Instant::now();
                if swap_active(std::fs::read_to_string("/proc/swaps").ok().as_deref()) {
                    // Said once: the engine cannot change how it resets slots while it runs.
                    self.pagemap.store(false, Ordering::Relaxed);
                    tracing::error!(
                        "swap was turned on after plughost started: instance memory is reset with PAGEMAP_SCAN, \
                         which in wasmtime 48.0.10 misses swapped-out pages, so a call could see data an earlier \
                         call left in its memory slot; restart plughost to reset slots without it (or turn swap off)"
                    );
                }
            }
            match engine.upgrade() {
                Some(e) => e.increment_epoch(),
                None => break,
            }
        }
    }
}

/// Stops the ticker thread when the engine goes away.
#[derive(Debug)]
struct Ticker {
    ticks: Arc<Ticks>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.ticks.stop.store(true, Ordering::SeqCst);
        self.ticks.wake();
    }
}

/// Held while guest code may run (see [`HostEngine::guest_running`]): keeps the epoch advancing, so the guest's
/// deadline and cooperative yields work.
#[must_use]
pub(crate) struct GuestRunning<'a>(&'a Ticks);

impl Drop for GuestRunning<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Where compile time went, for progress display and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a cached artifact (an mmap).
    Hit,
    /// Compiled now and stored the artifact.
    Compiled,
    /// Compiled now; no cache directory was configured.
    Uncached,
    /// The cached artifact failed its integrity check (its digest is not the one recorded when plughost wrote it):
    /// discarded, compiled now and stored again.
    Rejected,
}

/// The on-disk compile cache: artifacts under `dir`, their digests in the registry's index.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    anchor: Arc<Registry>,
}

impl CompileCache {
    /// Artifacts live in `dir`; their digests are recorded in (and checked against) `anchor`'s index.
    pub fn new(dir: PathBuf, anchor: Arc<Registry>) -> CompileCache {
        CompileCache { dir, anchor }
    }
}

/// What the cache had for a component.
enum Cached {
    /// An artifact whose digest matches the recorded one, loaded.
    Verified(Component),
    /// Nothing usable: no artifact, one plughost recorded no digest for, or one wasmtime refused.
    Absent,
    /// An artifact whose digest does not match the recorded one (discarded).
    Corrupt,
}

/// The shared engine.
#[derive(Debug, Clone)]
pub struct HostEngine {
    engine: Engine,
    cache: Option<CompileCache>,
    ticker: Arc<Ticker>,
}

/// The engine's configuration, and whether its memory slots are reset with PAGEMAP_SCAN.
fn config(pooling: bool) -> (Config, bool) {
    let mut c = Config::new();
    c.consume_fuel(true);
    c.epoch_interruption(true);
    c.wasm_component_model(true);
    c.max_wasm_stack(1 << 20);
    let mut pagemap = false;
    if pooling {
        let mut p = PoolingAllocationConfig::default();
        // Sized for many small Rust/C guests and a few Python/JS ones (those create several core instances,
        // memories and tables per component and need large instance metadata).
        p.total_component_instances(512);
        p.total_core_instances(2048);
        p.total_memories(512);
        p.total_tables(2048);
        p.total_stacks(512);
        p.max_memory_size(MAX_MEMORY_BYTES as usize);
        p.max_core_instances_per_component(64);
        p.max_memories_per_component(8);
        p.max_tables_per_component(64);
        p.max_component_instance_size(1 << 20);
        p.max_core_instance_size(16 << 20);
        p.table_elements(100_000);
        // Between calls a memory slot is reset, not unmapped. With Linux's PAGEMAP_SCAN (6.7+) wasmtime finds the
        // pages a call dirtied and restores just those, up to `linear_memory_keep_resident`; the rest is
        // decommitted with madvise (a syscall plus TLB shootdowns). Measured with `cargo bench --bench calls`
        // (Rust echo, fresh store per call): pagemap + 4 MiB -> p50 ~14 us; pagemap + 256 KiB ~14-29 us;
        // no pagemap + 256 KiB ~35-41 us; no pagemap + 1 MiB ~63-79 us (memset of the whole window each call).
        // Without pagemap the window is memset whole every call, so it stays small there. Pagemap is left off
        // where swap is active (see `pagemap_scan_safe`).
        if pagemap_scan_safe() {
            pagemap = true;
            p.pagemap_scan(wasmtime::Enabled::Yes);
            p.linear_memory_keep_resident(4 << 20);
        } else {
            p.linear_memory_keep_resident(256 << 10);
        }
        p.table_keep_resident(64 << 10);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    (c, pagemap)
}

/// Whether memory slots may be reset with PAGEMAP_SCAN: the kernel has it (Linux 6.7+) and no swap is active.
///
/// The scan in wasmtime 48.0.10 (the newest 48 whose crates this machine's registry has) reports only pages that
/// are *present*. A page a call dirtied that the kernel then swapped out is neither reset nor decommitted, so the
/// next instance in that slot would read the last call's data (wasmtime PR #14357, fixed in 48.0.11). Without
/// swap no page is ever swapped out; with it the slot is reset the other way (memset of the resident window,
/// `madvise` for the rest), which drops swapped pages too. Swap turned on after the engine starts cannot change
/// the engine; the epoch ticker notices it within [`SWAP_CHECK`] while guests run and says so (an error, once).
fn pagemap_scan_safe() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    // Unreadable means "cannot tell", so it counts as swap.
    let swaps = std::fs::read_to_string("/proc/swaps").ok();
    let safe = pagemap_scan_safe_on(&release, swaps.as_deref());
    // Say so where the kernel has the scan and only swap keeps it off: calls cost more there.
    if !safe && kernel_has_pagemap_scan(&release) {
        tracing::info!(
            "swap is active (or /proc/swaps cannot be read): instance memory is reset without PAGEMAP_SCAN, \
             which in wasmtime 48.0.10 misses swapped-out pages; each call's reset costs more"
        );
    }
    safe
}

fn pagemap_scan_safe_on(release: &str, swaps: Option<&str>) -> bool {
    kernel_has_pagemap_scan(release) && !swap_active(swaps)
}

/// Whether `/proc/swaps` (as read; `None`: unreadable, which counts as swap) lists an active swap area: it is a
/// header line and one line per area, zram included.
fn swap_active(swaps: Option<&str>) -> bool {
    !swaps.is_some_and(|s| s.lines().skip(1).all(|l| l.trim().is_empty()))
}

/// PAGEMAP_SCAN arrived in Linux 6.7 (`release` as in /proc/sys/kernel/osrelease).
fn kernel_has_pagemap_scan(release: &str) -> bool {
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= (6, 7)
}

impl HostEngine {
    /// Builds the engine. Uses the pooling allocator when the machine allows its address-space reservation, else
    /// falls back to on-demand allocation (same behaviour, slower instantiation).
    pub fn new(cache: Option<CompileCache>) -> Result<Self, EngineError> {
        let (pooled, pagemap) = config(true);
        let (engine, pagemap) = match Engine::new(&pooled) {
            Ok(e) => (e, pagemap),
            Err(pooling_err) => {
                tracing::warn!(
                    "pooling allocator unavailable ({pooling_err:#}); using on-demand allocation"
                );
                let e = Engine::new(&config(false).0)
                    .map_err(|e| EngineError::Config(crate::said::once(e.chain())))?;
                (e, false)
            }
        };
        let ticks = Arc::new(Ticks {
            pagemap: AtomicBool::new(pagemap),
            ..Ticks::default()
        });
        {
            let weak = engine.weak();
            let ticks = ticks.clone();
            std::thread::Builder::new()
                .name("plughost-epoch".into())
                .spawn(move || ticks.run(&weak))
                .map_err(|e| EngineError::Config(format!("cannot start the epoch ticker: {e}")))?;
        }
        Ok(HostEngine {
            engine,
            cache,
            ticker: Arc::new(Ticker { ticks }),
        })
    }

    /// Call before running guest code in a store of this engine (instantiation included) and hold until it
    /// returns: the epoch ticker parks when no guest has run for a while, and this wakes it.
    pub(crate) fn guest_running(&self) -> GuestRunning<'_> {
        let t = &*self.ticker.ticks;
        t.running.fetch_add(1, Ordering::SeqCst);
        t.started.fetch_add(1, Ordering::SeqCst);
        if t.asleep.load(Ordering::SeqCst) {
            t.wake();
        }
        GuestRunning(t)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A hex digest of the engine's compatibility hash: artifacts from another wasmtime or feature set never mix.
    pub fn compat_key(&self) -> String {
        struct B3(blake3::Hasher);
        impl Hasher for B3 {
            fn finish(&self) -> u64 {
                0
            }
            fn write(&mut self, bytes: &[u8]) {
                self.0.update(bytes);
            }
        }
        let mut h = B3(blake3::Hasher::new());
        self.engine.precompile_compatibility_hash().hash(&mut h);
        h.0.finalize().to_hex()[..16].to_string()
    }

    fn cache_path(&self, cache: &CompileCache, digest: &str) -> PathBuf {
        cache
            .dir
            .join(self.compat_key())
            .join(format!("{digest}.cwasm"))
    }

    /// Compiles `bytes` (whose blake3 hex digest is `digest`), or loads the cached artifact once its digest checks
    /// out. `on_compile` is called before a real compile starts (to show progress for slow, large components).
    pub fn compile(
        &self,
        bytes: &[u8],
        digest: &str,
        on_compile: impl FnOnce(),
    ) -> Result<(Component, CacheOutcome, Duration), EngineError> {
        let started = Instant::now();
        let mut rejected = false;
        if let Some(cache) = &self.cache {
            match self.load_cached(cache, digest) {
                Cached::Verified(c) => return Ok((c, CacheOutcome::Hit, started.elapsed())),
                Cached::Corrupt => rejected = true,
                Cached::Absent => {}
            }
        }
        on_compile();
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| EngineError::Compile(crate::said::once(e.chain())))?;
        let Some(cache) = &self.cache else {
            return Ok((component, CacheOutcome::Uncached, started.elapsed()));
        };
        let artifact = component
            .serialize()
            .map_err(|e| EngineError::Compile(crate::said::once(e.chain())))?;
        let path = self.cache_path(cache, digest);
        // The digest goes in first: a reader that finds the new file always finds its digest.
        let artifact_digest = blake3::hash(&artifact).to_hex();
        match cache.anchor.record_artifact(
            &self.compat_key(),
            digest,
            &artifact_digest,
            artifact.len() as u64,
        ) {
            Ok(()) => write_atomic(&path, &artifact).map_err(|source| EngineError::Cache {
                path: path.clone(),
                source,
            })?,
            Err(e) => tracing::warn!(
                "not caching the compiled component: cannot record its artifact's digest: {e}"
            ),
        }
        let outcome = if rejected {
            CacheOutcome::Rejected
        } else {
            CacheOutcome::Compiled
        };
        Ok((component, outcome, started.elapsed()))
    }

    /// Reads the cached artifact for `digest` once, checks its blake3 against the digest recorded when plughost
    /// wrote it, and loads those same bytes (so the file cannot change between the check and the load). Anything
    /// that does not check out is removed.
    fn load_cached(&self, cache: &CompileCache, digest: &str) -> Cached {
        let path = self.cache_path(cache, digest);
        let artifact = match std::fs::read(&path) {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Cached::Absent,
            Err(e) => {
                tracing::warn!("cannot read cached artifact {}: {e}", path.display());
                return Cached::Absent;
            }
        };
        let engine = self.compat_key();
        let discard = || {
            let _ = std::fs::remove_file(&path);
            let _ = cache.anchor.forget_artifact(&engine, digest);
        };
        let recorded = match cache.anchor.artifact_digest(&engine, digest) {
            Ok(r) => r,
            Err(e) => {
                // Unverifiable is untrusted: compile instead (the artifact stays for a later, verifiable load).
                tracing::warn!(
                    "cannot read the recorded digest of cached artifact {}: {e}; compiling instead",
                    path.display()
                );
                return Cached::Absent;
            }
        };
        let actual = blake3::hash(&artifact).to_hex();
        match recorded {
            None => {
                tracing::info!(
                    "discarding cached artifact {}: plughost recorded no digest for it",
                    path.display()
                );
                discard();
                return Cached::Absent;
            }
            Some(r) if r != actual.as_str() => {
                tracing::warn!(
                    "cached artifact {} failed its integrity check (blake3 {actual}, recorded {r}): discarded, \
                     recompiling from the verified component",
                    path.display()
                );
                discard();
                return Cached::Corrupt;
            }
            Some(_) => {}
        }
        match super::cache::load(&self.engine, &artifact) {
            Ok(c) => Cached::Verified(c),
            Err(e) => {
                tracing::warn!(
                    "discarding unreadable cached artifact {}: {e:#}",
                    path.display()
                );
                discard();
                Cached::Absent
            }
        }
    }

    /// Removes the cached artifact of the component whose blake3 hex digest is `digest`, and its recorded digest
    /// (for a component that was compiled but not installed).
    pub fn discard(&self, digest: &str) {
        let Some(cache) = &self.cache else {
            return;
        };
        let path = self.cache_path(cache, digest);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot remove cached artifact {}: {e}", path.display()),
        }
        if let Err(e) = cache.anchor.forget_artifact(&self.compat_key(), digest) {
            tracing::warn!("cannot forget the digest of {}: {e}", path.display());
        }
    }
}

/// Writes a file so that readers see either nothing or the whole file: temp file, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asleep_within(e: &HostEngine, limit: Duration, want: bool) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if e.ticker.ticks.asleep.load(Ordering::SeqCst) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn the_ticker_parks_when_idle_and_a_guest_wakes_it_for_as_long_as_it_runs() {
        let e = HostEngine::new(None).unwrap_or_else(|err| panic!("engine: {err}"));
        assert!(
            asleep_within(&e, TICKER_IDLE_AFTER * 3, true),
            "an idle ticker parks"
        );
        let guest = e.guest_running();
        assert!(
            asleep_within(&e, Duration::from_secs(2), false),
            "a guest that starts wakes it"
        );
        // While the guest runs, well past the idle time, the ticker keeps ticking.
        std::thread::sleep(TICKER_IDLE_AFTER * 2);
        assert!(!e.ticker.ticks.asleep.load(Ordering::SeqCst));
        drop(guest);
        assert!(
            asleep_within(&e, TICKER_IDLE_AFTER * 3, true),
            "it parks again once the guest is gone"
        );
    }

    #[test]
    fn pagemap_resets_memory_only_on_a_kernel_that_has_it_and_with_no_swap() {
        let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        let zram = format!(
            "{header}/dev/zram0                               partition\t4194300\t\t0\t\t100\n"
        );
        assert!(pagemap_scan_safe_on("6.18.44-fc-v1252\n", Some(header)));
        assert!(pagemap_scan_safe_on("6.7.0", Some(header)));
        assert!(!pagemap_scan_safe_on("6.6.30", Some(header)), "before 6.7");
        assert!(!pagemap_scan_safe_on("5.15.0-91-generic", Some(header)));
        assert!(
            !pagemap_scan_safe_on("6.18.44", Some(&zram)),
            "a swap area is active"
        );
        assert!(
            !pagemap_scan_safe_on("6.18.44", None),
            "swap unknown counts as swap"
        );
        assert!(!pagemap_scan_safe_on("", Some(header)), "release unknown");
    }
}
