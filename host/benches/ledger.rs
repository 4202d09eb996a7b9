//! What the usage ledger costs per call: the same in-process echo call (fixture-basic, a fresh store per call) run
//! bare (`Host::call`, nothing recorded) and through the catalog (`Entry::call`, which commits the call's hash-chained
//! entry to ledger.db before returning), sequentially and from concurrent tasks (where group commit shares one SQLite
//! transaction among many calls). Also with a contract set, which adds the gate's ledger read, and the cost of the
//! writability check every recorded call makes before its guest runs.
//!
//! `cargo bench -p plughost --bench ledger` (release). `BENCH_SECONDS` per case (default 3), `BENCH_TASKS` the
//! concurrency of the parallel cases (default 8).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

// The allocator the `plughost` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use plughost::{Catalog, Home, Host};

const BIN: &str = env!("CARGO_BIN_EXE_plughost");

fn plughost(home: &std::path::Path, args: &[&str]) {
    let out = Command::new(BIN)
        .args(args)
        .env("PLUGHOST_HOME", home)
        .current_dir(home)
        .output()
        .expect("run plughost");
    assert!(
        out.status.success(),
        "plughost {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `f` from `tasks` tasks for `secs`; returns calls/s.
async fn rate<F, Fut>(tasks: usize, secs: f64, f: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let f = Arc::new(f);
    let n = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let f = f.clone();
        let n = n.clone();
        handles.push(tokio::spawn(async move {
            while Instant::now() < stop {
                f().await;
                n.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    n.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let tasks: usize = std::env::var("BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let dir = tempfile::tempdir().expect("home");
    let home = dir.path();
    std::fs::copy(plughost_tests::BASIC, home.join("basic.wasm")).expect("copy fixture");
    plughost(home, &["keys", "generate", "--name", "bench", "--trust"]);
    plughost(
        home,
        &[
            "sign",
            "basic.wasm",
            "--key",
            "bench",
            "--request",
            "state",
            "--request",
            "log",
        ],
    );
    plughost(home, &["install", "basic.wasm", "--yes"]);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let h = Home::at(home);
        let host = Host::open(&h).expect("host");
        let registry = Arc::new(plughost::registry::Registry::open(home).expect("registry"));
        let catalog = Arc::new(Catalog::open(host.clone(), registry.clone()).await.expect("catalog"));
        let entry = catalog.get("fixture-basic").expect("loaded");
        let args = r#"{"text":"hello"}"#;
        for _ in 0..500 {
            assert!(entry.call(&host, "echo", args).await.result.is_ok());
        }
        println!("echo (fixture-basic), fresh store per call; {secs} s per case, {tasks} tasks for the parallel cases");
        // The fail-closed check before every guest (included in the "with ledger" rates below): a statvfs, and the
        // SQLite check (is the database read-only, can the write lock be taken) that only a process's first call and
        // a call after a failed write make.
        let writer = catalog.ledger();
        let n = 100_000u32;
        let t = Instant::now();
        for _ in 0..n {
            writer.check().expect("writable");
        }
        let every_call = t.elapsed() / n;
        let t = Instant::now();
        for _ in 0..n / 10 {
            writer.ledger().check_writable().expect("writable");
        }
        let sqlite = t.elapsed() / (n / 10);
        println!(
            "writability check: {:.2} µs per call; the SQLite part (first call, after a failed write) {:.2} µs",
            every_call.as_secs_f64() * 1e6,
            sqlite.as_secs_f64() * 1e6
        );
        for (label, n) in [("1 task", 1), ("parallel", tasks)] {
            let (h1, e1) = (host.clone(), entry.clone());
            let bare = rate(n, secs, move || {
                let (h, e) = (h1.clone(), e1.clone());
                async move {
                    let r = h.call(&e.plugin, "echo", r#"{"text":"hello"}"#).await;
                    assert!(r.result.is_ok());
                }
            })
            .await;
            let (h2, e2) = (host.clone(), entry.clone());
            let recorded = rate(n, secs, move || {
                let (h, e) = (h2.clone(), e2.clone());
                async move {
                    let r = e.call(&h, "echo", r#"{"text":"hello"}"#).await;
                    assert!(r.result.is_ok());
                }
            })
            .await;
            println!(
                "{label:<9} bare {bare:>9.0} calls/s   with ledger {recorded:>9.0} calls/s   ({:+.1} µs per call, {:.0}% of bare)",
                (1e6 / recorded - 1e6 / bare) * n as f64,
                100.0 * recorded / bare
            );
        }
        // A contract: every call also reads what the ledger gained since the last check.
        plughost(home, &["limits", "fixture-basic", "--calls", "100000000/day", "--cost", "1"]);
        catalog.refresh().await.expect("refresh");
        let entry = catalog.get("fixture-basic").expect("loaded");
        for (label, n) in [("1 task", 1), ("parallel", tasks)] {
            let (h3, e3) = (host.clone(), entry.clone());
            let with_contract = rate(n, secs, move || {
                let (h, e) = (h3.clone(), e3.clone());
                async move {
                    let r = e.call(&h, "echo", r#"{"text":"hello"}"#).await;
                    assert!(r.result.is_ok(), "{:?}", r.result);
                }
            })
            .await;
            println!("{label:<9} with ledger and a contract {with_contract:>9.0} calls/s");
        }
        let v = catalog.ledger().ledger().verify().expect("verify");
        println!("ledger: {} entries, chain {}", v.entries, if v.problem.is_none() { "intact" } else { "BROKEN" });
    });
}
