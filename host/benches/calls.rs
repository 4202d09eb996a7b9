//! Per-call cost of an in-process echo call (Rust guest), in these shapes:
//! - fresh, inline: new Store, instance from the cached `InstancePre`, call, report, store dropped — all on the
//!   caller's path (standby off; what one-shot `plughost call` does);
//! - fresh, standby: what the gateway does — the call runs in a fresh instance prepared ahead by the standby
//!   thread, which also tears the used store down. Measured with calls 3 ms apart (the thread has time to refill,
//!   as between agent tool calls) and back to back (it cannot keep up; some calls instantiate inline);
//! - warm: one instance reused for every call (what a per-session host does; no isolation between calls), back to
//!   back and 3 ms apart (the second is the floor for any call after a pause: caches and predictors gone cold);
//! - plain wasmtime: the same fixture on the same engine, in a `Store<()>` with fuel and nothing else (every import a
//!   trap stub, no limiter, no deadline callback, no timeout, no report), called through the same bindings; and a
//!   one-function component, wasmtime's own floor for a fresh store + instance + call. Run in the same process as the
//!   plughost rows, so they show how much of a call is plughost's even when the machine's speed swings;
//! - lean build: plughost's fresh inline call of `fixture-lean`, a Rust guest built with `lean = true`
//!   (wasm32-unknown-unknown: no WASI, no imports at all), interleaved with the rows above.
//!
//! Each shape also prints the process CPU time per call (all threads), which is what throughput costs.
//!
//! `cargo bench -p plughost --bench calls` (release). Prints p50/p90/p99/mean per shape. Set `BENCH_ITERS` to change
//! the sample count (default 20000), and `BENCH_ONLY` to run one shape alone, for a profiler: `inline` (fresh, back
//! to back), `busy` (standby, back to back), `paced` (standby, 3 ms apart), `paced-inline`, `paced-warm` or `plain`.
//! `BENCH_COMPONENT=FILE` measures another build of the fixture instead, in every row (it must have an `echo` tool
//! that calls no import, e.g. fixture-basic built for wasm32-unknown-unknown, with no WASI imports).

use std::time::{Duration, Instant};

use plughost::{Grants, Host, PluginSettings};
use wasmtime::Store;
use wasmtime::component::{Linker, TypedFunc};

// The allocator the `plughost` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// CPU time of the whole process (every thread), from /proc/self/stat (10 ms ticks: fine over 20,000 calls).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = after
        .split(' ')
        .skip(11)
        .take(2)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

fn stats(name: &str, mut d: Vec<Duration>, extra: &str) {
    d.sort();
    let pct = |p: f64| d[((d.len() as f64 - 1.0) * p).round() as usize];
    let mean = d.iter().sum::<Duration>() / d.len() as u32;
    println!(
        "{name:<30} n={:<6} p50={:>8.2?} p90={:>8.2?} p99={:>8.2?} mean={:>8.2?}  {extra}",
        d.len(),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        mean,
    );
}

/// Spacing of the paced calls: a little more than the standby thread's nap while calls come in (one epoch tick).
const PACE: Duration = Duration::from_millis(3);

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
        let inline = Host::ephemeral().expect("host").without_standby();
        // BENCH_COMPONENT: another build of the same fixture (e.g. one without WASI imports).
        let path =
            std::env::var("BENCH_COMPONENT").unwrap_or_else(|_| plughost_tests::BASIC.to_string());
        let bytes = plughost_tests::bytes(&path);
        let bytes = &bytes;
        let load = |host: Host| async move {
            let grants = Grants::parse(["state", "log"]).expect("grants");
            let (plugin, _) = host
                .load(bytes, |_| PluginSettings {
                    grants,
                    ..Default::default()
                })
                .await
                .expect("load fixture-basic");
            plugin
        };
        let plugin = load(host.clone()).await;
        let inline_plugin = load(inline.clone()).await;
        // The lean fixture (wasm32-unknown-unknown, no imports at all): what `lean = true` builds.
        let (lean_plugin, _) = inline
            .load(&plughost_tests::bytes(plughost_tests::LEAN), |_| {
                PluginSettings::default()
            })
            .await
            .expect("load fixture-lean");
        let args = r#"{"text":"hello"}"#;

        // Warm up every path (page in the code, fill the pooling allocator's slots).
        for _ in 0..1000 {
            let r = host.call(&plugin, "echo", args).await;
            assert!(r.result.is_ok(), "{:?}", r.result);
            let r = inline.call(&inline_plugin, "echo", args).await;
            assert!(r.result.is_ok(), "{:?}", r.result);
        }
        let _ = plughost::runtime::warm_calls(&host, &plugin, "echo", args, 1000)
            .await
            .expect("warm");

        let mut fuel = 0;
        let mut run = async |host: &Host, plugin, gap: Option<Duration>, iters: usize| {
            let mut d = Vec::with_capacity(iters);
            let cpu = cpu_time();
            let hits = host.stats().snapshot().standby_hits;
            let mut next = Instant::now();
            for _ in 0..iters {
                plughost::runtime::pace(&mut next, gap);
                let t = Instant::now();
                let r = host.call(plugin, "echo", args).await;
                d.push(t.elapsed());
                fuel = r.report.fuel_used;
                assert!(r.result.is_ok());
            }
            let hits = host.stats().snapshot().standby_hits - hits;
            let cpu = (cpu_time() - cpu) / iters as u32;
            (
                d,
                format!("cpu/call={cpu:>8.2?}  standby hits {hits}/{iters}"),
            )
        };
        let paced_n = (iters / 10).max(100);
        match std::env::var("BENCH_ONLY").as_deref() {
            Ok("inline") => {
                let (d, cpu) = run(&inline, &inline_plugin, None, iters).await;
                stats("fresh, inline (no standby)", d, &cpu);
                return;
            }
            Ok("plain") => {
                for (name, d) in
                    against_plain_wasmtime(&inline, &inline_plugin, &lean_plugin, bytes, iters)
                        .await
                {
                    stats(name, d, "");
                }
                return;
            }
            Ok("busy") => {
                let (d, cpu) = run(&host, &plugin, None, iters).await;
                stats("fresh, with standby", d, &cpu);
                return;
            }
            Ok("paced") => {
                let (d, cpu) = run(&host, &plugin, Some(PACE), paced_n).await;
                stats("paced, with standby", d, &cpu);
                return;
            }
            Ok("paced-warm") => {
                let d = plughost::runtime::warm_calls_paced(
                    &host,
                    &plugin,
                    "echo",
                    args,
                    paced_n,
                    Some(PACE),
                )
                .await
                .expect("warm");
                stats("paced, warm", d, "");
                return;
            }
            Ok("paced-inline") => {
                let (d, cpu) = run(&inline, &inline_plugin, Some(PACE), paced_n).await;
                stats("paced, inline", d, &cpu);
                return;
            }
            _ => {}
        }
        let (inline_d, inline_cpu) = run(&inline, &inline_plugin, None, iters).await;
        let (paced, paced_cpu) = run(&host, &plugin, Some(PACE), paced_n).await;
        let (paced_inline, paced_inline_cpu) =
            run(&inline, &inline_plugin, Some(PACE), paced_n).await;
        let (busy, busy_cpu) = run(&host, &plugin, None, iters).await;
        let warm_cpu = cpu_time();
        let warm = plughost::runtime::warm_calls(&host, &plugin, "echo", args, iters)
            .await
            .expect("warm");
        let warm_cpu = format!("cpu/call={:>8.2?}", (cpu_time() - warm_cpu) / iters as u32);
        // The floor for a call after a pause on this machine: the same instance, nothing instantiated.
        let paced_warm =
            plughost::runtime::warm_calls_paced(&host, &plugin, "echo", args, paced_n, Some(PACE))
                .await
                .expect("warm");
        let plain =
            against_plain_wasmtime(&inline, &inline_plugin, &lean_plugin, bytes, iters).await;
        println!("echo (Rust guest, fixture-basic), fuel per call {fuel}");
        // CPU per paced call includes the spinning between calls: not shown.
        let _ = (paced_cpu, paced_inline_cpu);
        println!("back to back:");
        stats("  fresh, inline (no standby)", inline_d, &inline_cpu);
        stats("  fresh, with standby", busy, &busy_cpu);
        stats("  warm instance (reused)", warm, &warm_cpu);
        println!("calls {} ms apart:", PACE.as_millis());
        stats("  fresh, inline (no standby)", paced_inline, "");
        stats("  fresh, with standby", paced, "");
        stats("  warm instance (reused)", paced_warm, "");
        println!("interleaved in blocks of 200 calls (same machine state):");
        for (name, d) in plain {
            stats(&format!("  {name}"), d, "");
        }
    });
    // A single shape (for a profiler) measures only that shape.
    if std::env::var_os("BENCH_ONLY").is_none() {
        compile_vs_cache();
    }
}

/// plughost's fresh inline call (of the component and of the lean fixture) next to the same engine without plughost
/// around it, interleaved in short blocks (so all four see the same machine state): a fresh `Store<()>` with fuel, an instance from an
/// `InstancePre` (imports are trap stubs; echo calls none) and the call through the same bindings, for the
/// plugin's component (`bytes`) and for a one-function component.
async fn against_plain_wasmtime(
    inline: &Host,
    plugin: &plughost::LoadedPlugin,
    lean: &plughost::LoadedPlugin,
    bytes: &[u8],
    iters: usize,
) -> [(&'static str, Vec<Duration>); 4] {
    let engine = inline.engine().engine();
    let (component, _, _) = inline.compile(bytes, || {}).expect("compile");
    let mut linker = Linker::<()>::new(engine);
    linker
        .define_unknown_imports_as_traps(&component)
        .expect("stubs");
    let pre = plughost::bindings::PluginPre::new(linker.instantiate_pre(&component).expect("pre"))
        .expect("bindings");
    // One core function behind one lifted export: no imports, one page of memory, no data.
    let wat = r#"(component
        (core module $m
            (memory (export "memory") 1)
            (func (export "f") (param i32) (result i32) local.get 0 i32.const 1 i32.add))
        (core instance $i (instantiate $m))
        (func (export "f") (param "x" u32) (result u32) (canon lift (core func $i "f"))))"#;
    let tiny = wasmtime::component::Component::new(engine, wat::parse_str(wat).expect("wat"))
        .expect("tiny component");
    let tiny_pre = Linker::<()>::new(engine)
        .instantiate_pre(&tiny)
        .expect("tiny pre");
    let fresh = || {
        let mut store = Store::new(engine, ());
        store.set_fuel(10_000_000).expect("fuel");
        // No deadline callback: a deadline far away (the engine has epoch interruption on).
        store.set_epoch_deadline(1 << 40);
        store
    };
    let args = r#"{"text":"hello"}"#;
    let (mut ours, mut ours_lean, mut plain, mut floor) = (
        Vec::with_capacity(iters),
        Vec::with_capacity(iters),
        Vec::with_capacity(iters),
        Vec::with_capacity(iters),
    );
    // Blocks of BLOCK calls of each kind in turn: one call of each in turn would measure four components evicting
    // each other from the caches, not back-to-back calls.
    const BLOCK: usize = 200;
    for round in 0..(iters + 1000).div_ceil(BLOCK) {
        let keep = round * BLOCK >= 1000;
        // plughost's own rows: the component, then the lean fixture.
        for (p, out) in [(plugin, &mut ours), (lean, &mut ours_lean)] {
            for _ in 0..BLOCK {
                let t = Instant::now();
                let r = inline.call(p, "echo", args).await;
                let d = t.elapsed();
                assert!(r.result.is_ok());
                if keep {
                    out.push(d);
                }
            }
        }
        for _ in 0..BLOCK {
            let t = Instant::now();
            let mut store = fresh();
            let instance = pre.instantiate_async(&mut store).await.expect("instance");
            let out = instance
                .call_tool(&mut store, "echo", args)
                .await
                .expect("call");
            drop(store);
            let d = t.elapsed();
            assert!(out.is_ok());
            if keep {
                plain.push(d);
            }
        }
        for _ in 0..BLOCK {
            let t = Instant::now();
            let mut store = fresh();
            let instance = tiny_pre
                .instantiate_async(&mut store)
                .await
                .expect("tiny instance");
            let f: TypedFunc<(u32,), (u32,)> =
                instance.get_typed_func(&mut store, "f").expect("export f");
            let (r,) = f.call_async(&mut store, (41,)).await.expect("call f");
            drop(store);
            let d = t.elapsed();
            assert_eq!(r, 42);
            if keep {
                floor.push(d);
            }
        }
    }
    [
        ("plughost, fresh inline", ours),
        ("plughost, fresh inline, lean build", ours_lean),
        ("plain wasmtime, same component", plain),
        ("plain wasmtime, 1-fn component", floor),
    ]
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
    assert_eq!(first.outcome, plughost::runtime::CacheOutcome::Compiled);
    let mut cached = Vec::new();
    for _ in 0..20 {
        // A new host each time: what a new `plughost` process or a gateway restart does.
        let host = Host::open(&plughost::Home::at(home.path())).expect("host");
        let t = Instant::now();
        let (_, _, c) = host.compile(&bytes, || {}).expect("load");
        cached.push(t.elapsed());
        assert_ne!(c.outcome, plughost::runtime::CacheOutcome::Compiled);
    }
    cached.sort();
    println!(
        "system-info ({} KiB): cold compile {:.1?}, load from cache p50 {:.1?}",
        bytes.len() / 1024,
        cold,
        cached[cached.len() / 2]
    );
}
