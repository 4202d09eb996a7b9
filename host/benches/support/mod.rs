//! What the gateway and startup benches share: a data dir with signed, installed fixtures, the server binary (or
//! another one to compare with), and the server process's own CPU time and resident memory from `/proc`.

#![allow(dead_code)] // each bench uses its part

pub mod http;
pub mod stdio;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The binary under test: `BENCH_BIN` (e.g. an older build, for an A/B run), else this build's.
pub fn bin() -> PathBuf {
    std::env::var_os("BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_plughost")))
}

pub fn plughost(home: &Path, args: &[&str]) {
    let out = Command::new(bin())
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

/// Ten fixtures with distinct ids, each with the `--request`s its scoped imports need. fixture-basic first.
pub const TEN: [(&str, &str, &[&str]); 10] = [
    (plughost_tests::BASIC, "basic.wasm", &[]),
    (plughost_tests::STATE_B, "state-b.wasm", &[]),
    (plughost_tests::EVENTS, "events.wasm", &[]),
    (plughost_tests::LEAKY, "leaky.wasm", &[]),
    (plughost_tests::FLOOD, "flood.wasm", &[]),
    (
        plughost_tests::NEEDS_HTTP,
        "needs-http.wasm",
        &["http:https://api.example.com"],
    ),
    (plughost_tests::LEAN, "lean.wasm", &[]),
    (plughost_tests::LEAN_LOG, "lean-log.wasm", &[]),
    (plughost_tests::SYSTEM_INFO, "system-info.wasm", &[]),
    (
        plughost_tests::CLOUDFLARE,
        "cloudflare.wasm",
        &["http:https://api.cloudflare.com"],
    ),
];

/// A temp data dir with a trusted key and the first `n` of [`TEN`] signed and installed (install compiles each
/// one, so the compile cache is warm). fixture-basic may run any number of calls at once.
pub fn home_with(n: usize) -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    let dir = h.to_str().expect("utf-8");
    plughost(
        h,
        &[
            "keys", "generate", "--name", "bench", "--trust", "--out", dir,
        ],
    );
    for (fixture, file, requests) in TEN.iter().take(n) {
        let wasm = h.join(file);
        std::fs::copy(fixture, &wasm).expect("copy fixture");
        let w = wasm.to_str().expect("utf-8");
        let mut sign = vec!["sign", w, "--key", "bench"];
        for r in *requests {
            sign.extend(["--request", r]);
        }
        plughost(h, &sign);
        plughost(h, &["install", w, "--yes"]);
    }
    plughost(h, &["limits", "fixture-basic", "--concurrency", "0"]);
    home
}

/// The process's CPU time so far, user + system, all its threads (those that ended included), from
/// `/proc/PID/stat` (what `getrusage` reports for it, in clock ticks of 10 ms).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name (which may hold spaces) start at `state`, the third field.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    // USER_HZ is 100 on every Linux the kernel exposes to user space.
    Duration::from_millis(ticks * 10)
}

/// Resident memory of the process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// Resident memory of the process in KiB: anonymous (the heap, stacks, guests' memories) and file-backed (mostly
/// the binary's own code, which depends on what the page cache held when it was started, not on the calls).
pub fn rss_anon_file_kib(pid: u32) -> (u64, u64) {
    (status_kib(pid, "RssAnon"), status_kib(pid, "RssFile"))
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// The machine's 1-minute load average, to print beside each number.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split(' ').next().map(str::to_string))
        .unwrap_or_default()
}

/// `BENCH_AWAKE=1`: one busy loop per core at the lowest priority (`nice -n 19`) for as long as the guard lives.
///
/// On a virtual machine whose cores are otherwise idle, every wake-up of a sleeping thread costs a halted virtual
/// CPU's exit and re-entry, and the same build then measures 2-3 times slower than when something else keeps the
/// cores busy. The loops keep them out of halt without taking time from the client or the server (a niced loop
/// gets ~1.5% of a core that anything else wants), so runs are comparable whatever else the machine is doing.
/// Print which state a run was in beside its numbers, and compare builds only within one state.
pub struct Awake(Vec<std::process::Child>);

/// Starts the busy loops when `BENCH_AWAKE=1`; `None` otherwise.
pub fn awake() -> Option<Awake> {
    if std::env::var("BENCH_AWAKE").as_deref() != Ok("1") {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let loops = (0..cores)
        .map(|_| {
            Command::new("nice")
                // Each loop ends with the bench, even one killed before it could clean up.
                .args([
                    "-n",
                    "19",
                    "sh",
                    "-c",
                    "while kill -0 $PPID 2>/dev/null; do :; done",
                ])
                .spawn()
                .expect("nice sh")
        })
        .collect();
    Some(Awake(loops))
}

impl Drop for Awake {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// How the machine's cores were kept: printed in each bench's first line.
pub fn state(awake: &Option<Awake>) -> &'static str {
    if awake.is_some() {
        "cores kept awake (BENCH_AWAKE=1)"
    } else {
        "cores left idle between calls"
    }
}

/// The `p` quantile of sorted samples.
pub fn quantile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// One result line: calls/s, p50/p99 and the server's CPU per call.
pub fn report(what: &str, mut lat: Vec<Duration>, wall: Duration, cpu: Duration) {
    lat.sort();
    let n = lat.len().max(1) as f64;
    println!(
        "{what:<34} calls={:<7} {:>7.0} calls/s  p50={:>9.2?}  p99={:>9.2?}  server CPU {:>6.1} µs/call  load {}",
        lat.len(),
        lat.len() as f64 / wall.as_secs_f64(),
        quantile(&lat, 0.50),
        quantile(&lat, 0.99),
        cpu.as_secs_f64() * 1e6 / n,
        load()
    );
}
