//! Start-up of the gateway: from spawning `plughost serve --stdio` to its answer to the first `tools/list` (sent
//! with `initialize` and `notifications/initialized` right after the spawn, as MCP clients do), with 1 and 10
//! installed plugins whose compile cache is warm (install compiled them).
//!
//! `cargo bench -p plughost --bench startup` (release). `BENCH_RUNS` spawns per plugin count (default 20);
//! `BENCH_BIN=PATH` measures another plughost build; `BENCH_AWAKE=1` keeps the cores busy with lowest-priority
//! loops meanwhile (see `support::awake`).

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::stdio::StdioServer;

fn main() {
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let awake = support::awake();
    println!(
        "spawn → first tools/list over stdio, {runs} runs each, server {}, {}",
        support::bin().display(),
        support::state(&awake)
    );
    for plugins in [1, 10] {
        let home = support::home_with(plugins);
        // One untimed start first: the files are in the page cache, as after any earlier start.
        let mut first = StdioServer::spawn(home.path(), &[]);
        let tools = first.list_tools();
        first.close();
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                let mut s = StdioServer::spawn(home.path(), &[]);
                assert_eq!(s.list_tools(), tools);
                let took = t.elapsed();
                s.close();
                took
            })
            .collect();
        times.sort();
        println!(
            "plugins={plugins:<3} tools={tools:<3} min={:>8.2?}  p50={:>8.2?}  max={:>8.2?}  load {}",
            times[0],
            support::quantile(&times, 0.5),
            times[times.len() - 1],
            support::load()
        );
    }
}
