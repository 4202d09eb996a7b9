//! The same plugin in four languages: the `hello` tool of `plughost new --lang rust|python|js|c` (config get,
//! state get + set, one log line). Measures, per language: component size, compile time (`Component::new`, what
//! install does once), load from the compile cache (a fresh engine mapping the `.cwasm`: a restart's cold
//! start), per-call time with a fresh store + instance (what every plughost call does) back to back and after a
//! pause (inline, and in a standby instance prepared during the pause), fuel per call and the linear memory a
//! call's instance has (peak).
//!
//! Run `scripts/bench-languages.sh` (it builds the four components with `plughost build`, then runs this bench
//! in release with their paths in `BENCH_COMPONENTS=lang=path,…`). `BENCH_ITERS` sets the call samples (default
//! 2000).

use std::time::{Duration, Instant};

// The allocator the `plughost` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use plughost::{Grants, Home, Host, PluginSettings};

fn pct(d: &mut [Duration], p: f64) -> Duration {
    d.sort();
    d[((d.len() as f64 - 1.0) * p).round() as usize]
}

/// Paced calls: how many, and the pause before each (longer than the standby thread's nap, as between an agent's
/// tool calls).
const PACED_CALLS: usize = 200;
const PAUSE: Duration = Duration::from_millis(20);

fn main() {
    let Ok(spec) = std::env::var("BENCH_COMPONENTS") else {
        eprintln!("BENCH_COMPONENTS not set: run scripts/bench-languages.sh");
        return;
    };
    let iters: usize = std::env::var("BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "| language | component size | compile (once, at install) | load from cache (cold start) | call, fresh instance p50 / p99 | after a 20 ms pause p50: inline / standby | fuel per call | linear memory per instance |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for item in spec.split(',') {
        let (lang, path) = item.split_once('=').expect("lang=path");
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let home = tempfile::tempdir().expect("tempdir");
        let home = Home::at(home.path());

        // Compile: a host with an empty cache compiles and stores the artifact.
        let host = Host::open(&home).expect("host");
        let t = Instant::now();
        let (_, _, info) = host.compile(&bytes, || {}).expect("compile");
        let compile = t.elapsed();
        assert_eq!(info.outcome, plughost::runtime::CacheOutcome::Compiled);
        drop(host);

        // Cold start: a new host (new engine), the artifact is mapped from the cache. Best of 5.
        let mut load = Duration::MAX;
        for _ in 0..5 {
            let host = Host::open(&home).expect("host");
            let t = Instant::now();
            let (_, _, info) = host.compile(&bytes, || {}).expect("load");
            load = load.min(t.elapsed());
            assert_eq!(info.outcome, plughost::runtime::CacheOutcome::Hit);
        }

        let host = Host::open(&home).expect("host");
        let inline = Host::open(&home).expect("host").without_standby();
        let (fuel, peak, mut calls, mut paced_inline, mut paced) = rt.block_on(async {
            let load = async |host: &Host| {
                let (plugin, _) = host
                    .load(&bytes, |_| PluginSettings {
                        grants: Grants::parse(["log", "state", "config"]).expect("grants"),
                        ..Default::default()
                    })
                    .await
                    .expect("load");
                plugin
            };
            let plugin = load(&host).await;
            let inline_plugin = load(&inline).await;
            let args = r#"{"name":"bench"}"#;
            for _ in 0..50 {
                let r = inline.call(&inline_plugin, "hello", args).await;
                assert!(r.result.is_ok(), "{:?}", r.result);
            }
            let mut calls = Vec::with_capacity(iters);
            let (mut fuel, mut peak) = (0, 0);
            for _ in 0..iters {
                let t = Instant::now();
                let r = inline.call(&inline_plugin, "hello", args).await;
                calls.push(t.elapsed());
                assert!(r.result.is_ok(), "{:?}", r.result);
                fuel = r.report.fuel_used;
                peak = r.report.peak_memory_bytes;
            }
            // Calls after a pause (as between an agent's tool calls): inline, and in the instance the standby
            // thread prepared during the pause.
            let paced = async |host: &Host, plugin| {
                let mut d = Vec::with_capacity(PACED_CALLS);
                for _ in 0..PACED_CALLS {
                    tokio::time::sleep(PAUSE).await;
                    let t = Instant::now();
                    let r = host.call(plugin, "hello", args).await;
                    d.push(t.elapsed());
                    assert!(r.result.is_ok(), "{:?}", r.result);
                }
                d
            };
            let paced_inline = paced(&inline, &inline_plugin).await;
            let paced_standby = paced(&host, &plugin).await;
            (fuel, peak, calls, paced_inline, paced_standby)
        });
        println!(
            "| {lang} | {} | {:.2?} | {:.2?} | {:.2?} / {:.2?} | {:.2?} / {:.2?} | {fuel} | {} |",
            plughost::units::human_bytes(bytes.len() as u64),
            compile,
            load,
            pct(&mut calls, 0.5),
            pct(&mut calls, 0.99),
            pct(&mut paced_inline, 0.5),
            pct(&mut paced, 0.5),
            plughost::units::human_bytes(peak),
        );
    }
}
