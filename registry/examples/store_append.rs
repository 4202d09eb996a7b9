//! Benchmark (not a test): the cost of one ledger append — one entry per transaction, the worst case of group
//! commit — on the data dir's SQLite ledger and on the PostgreSQL store, wall time and this process's CPU per append.
//!
//!   eval "$(scripts/postgres.sh)"; cargo run --release -p plughost-registry --example store_append [N]

use std::time::Instant;

use plughost_registry::ledger::{Caller, Kind, Ledger, NewEntry};
use plughost_registry::pg::PgStore;

fn entry(i: u64) -> NewEntry {
    NewEntry {
        time_ms: 1_700_000_000_000 + i as i64,
        kind: Kind::Call,
        plugin: "bench".into(),
        version: "0.1.0".into(),
        digest: "blake3:00".into(),
        tool: "echo".into(),
        caller: Caller {
            transport: "http".into(),
            session: Some("s".into()),
            principal: None,
        },
        duration_us: 180,
        fuel_used: 4_960,
        peak_memory: 1 << 20,
        outcome: "ok".into(),
        args_digest: Some("blake3:00".into()),
        cost: 1,
        event: None,
        data: None,
    }
}

/// This process's user + system CPU time, in µs.
fn cpu_us() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name; clock ticks of 10 ms.
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) * 10_000
}

fn measure(name: &str, n: u64, mut append: impl FnMut(u64)) {
    let (t, c) = (Instant::now(), cpu_us());
    for i in 0..n {
        append(i);
    }
    let wall = t.elapsed().as_micros() as u64 / n;
    let cpu = (cpu_us() - c) / n;
    println!("{name:<10} {n} appends: {wall} µs wall, {cpu} µs CPU of this process per append");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000);
    let dir = tempfile::tempdir()?;
    let sqlite = Ledger::open(dir.path())?;
    measure("sqlite", n, |i| {
        sqlite.append(&[entry(i)]).expect("append");
    });
    let url = std::env::var("PLUGHOST_TEST_PG")
        .map_err(|_| "set PLUGHOST_TEST_PG (eval \"$(scripts/postgres.sh)\")")?;
    let pg = PgStore::open(&url)?;
    measure("postgres", n, |i| {
        pg.ledger_append(&[entry(i)]).expect("append");
    });
    Ok(())
}
