//! Per-call cost of an in-process echo call (Rust guest), in two shapes:
//! - fresh: what plughost does for every call — new Store, instance from the cached `InstancePre`, call, report;
//! - warm: one instance reused for every call (what a per-session host does; no isolation between calls).
//!
//! `cargo bench -p plughost --bench calls` (release). Prints p50/p90/p99/mean per shape. Set `BENCH_ITERS` to change
//! the sample count (default 20000).

use std::time::{Duration, Instant};

use plughost::{Grants, Host, PluginSettings};

fn stats(name: &str, mut d: Vec<Duration>) {
    d.sort();
    let pct = |p: f64| d[((d.len() as f64 - 1.0) * p).round() as usize];
    let mean = d.iter().sum::<Duration>() / d.len() as u32;
    println!(
        "{name:<32} n={:<6} p50={:>8.2?} p90={:>8.2?} p99={:>8.2?} mean={:>8.2?}  ({:.0} calls/s/core)",
        d.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        mean,
        1.0 / mean.as_secs_f64()
    );
}

fn main() {
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let host = Host::ephemeral().expect("host");
        let grants = Grants::parse(["state", "log"]).expect("grants");
        let bytes = std::fs::read(plughost_tests::BASIC).expect("fixture");
        let (plugin, _) = host
            .load(&bytes, |_| PluginSettings {
                grants,
                ..Default::default()
            })
            .await
            .expect("load fixture-basic");
        let args = r#"{"text":"hello"}"#;

        // Warm up both paths (page in the code, fill the pooling allocator's slots).
        for _ in 0..1000 {
            let r = host.call(&plugin, "echo", args).await;
            assert!(r.result.is_ok(), "{:?}", r.result);
        }
        let _ = plughost::runtime::warm_calls(&host, &plugin, "echo", args, 1000)
            .await
            .expect("warm");

        let mut fresh = Vec::with_capacity(iters);
        let mut fuel = 0;
        for _ in 0..iters {
            let t = Instant::now();
            let r = host.call(&plugin, "echo", args).await;
            fresh.push(t.elapsed());
            fuel = r.report.fuel_used;
            assert!(r.result.is_ok());
        }
        let warm = plughost::runtime::warm_calls(&host, &plugin, "echo", args, iters)
            .await
            .expect("warm");
        println!("echo (Rust guest, fixture-basic), fuel per call {fuel}");
        stats("fresh store + instance + call", fresh);
        stats("warm instance (reused)", warm);
    });
    compile_vs_cache();
}

/// What install costs (a cold compile) against what every later load costs (the precompiled artifact from the
/// cache), for the shipped Rust plugin.
fn compile_vs_cache() {
    let home = tempfile::tempdir().expect("tempdir");
    let bytes = std::fs::read(plughost_tests::SYSTEM_INFO).expect("system-info fixture");
    let host = Host::open(&plughost::Home::at(home.path())).expect("host");
    let t = Instant::now();
    let (_, _, first) = host.compile(&bytes, || {}).expect("compile");
    let cold = t.elapsed();
    assert_eq!(first.outcome, plughost::engine::CacheOutcome::Compiled);
    let mut cached = Vec::new();
    for _ in 0..20 {
        // A new host each time: what a new `plughost` process or a gateway restart does.
        let host = Host::open(&plughost::Home::at(home.path())).expect("host");
        let t = Instant::now();
        let (_, _, c) = host.compile(&bytes, || {}).expect("load");
        cached.push(t.elapsed());
        assert_ne!(c.outcome, plughost::engine::CacheOutcome::Compiled);
    }
    cached.sort();
    println!(
        "system-info ({} KiB): cold compile {:.1?}, load from cache p50 {:.1?}",
        bytes.len() / 1024,
        cold,
        cached[cached.len() / 2]
    );
}
