//! The usage ledger as an operator relies on it: every call recorded with who/what/cost, tampering of every kind
//! found and named, nothing acknowledged lost when the gateway is killed with SIGKILL mid-burst, and old entries
//! archived by `serve` itself when `plughost.toml` says so.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plughost_tests as fx;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_plughost");

struct Home {
    home: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let h = Home {
            home: tempfile::tempdir().expect("home"),
        };
        h.ok(&[
            "keys",
            "generate",
            "--name",
            "op",
            "--trust",
            "--out",
            h.dir(),
        ]);
        let wasm = h.home.path().join("basic.wasm");
        std::fs::copy(fx::BASIC, &wasm).expect("copy");
        let w = wasm.to_str().expect("utf-8");
        h.ok(&[
            "sign",
            w,
            "--key",
            "op",
            "--request",
            "state",
            "--request",
            "log",
        ]);
        h.ok(&["install", w, "--yes"]);
        h
    }

    fn dir(&self) -> &str {
        self.home.path().to_str().expect("utf-8")
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("PLUGHOST_HOME", self.home.path())
            .env_remove("PLUGHOST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("run plughost")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "plughost {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn db(&self) -> PathBuf {
        self.home.path().join("ledger.db")
    }

    fn verify(&self) -> Value {
        let o = self.run(&["ledger", "verify", "--json"]);
        serde_json::from_slice(&o.stdout).expect("verify JSON")
    }

    fn sql(&self, sql: &str) {
        let c = rusqlite::Connection::open(self.db()).expect("open ledger.db");
        c.execute_batch(sql).expect("tamper");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).expect("copy");
        }
    }
}

#[test]
fn every_call_is_recorded_with_its_cost_and_caller_and_no_arguments() {
    let h = Home::new();
    h.ok(&[
        "call",
        "fixture-basic",
        "echo",
        "--args",
        r#"{"text":"top secret"}"#,
    ]);
    let o = h.run(&["call", "fixture-basic", "spin", "--fuel", "200000"]);
    assert_eq!(o.status.code(), Some(1));
    let entries: Value = serde_json::from_str(&h.ok(&["ledger", "show", "--json"])).expect("JSON");
    let e = entries.as_array().expect("array");
    assert_eq!(e.len(), 2, "{entries}");
    assert_eq!(e[0]["seq"], 1);
    assert_eq!(e[0]["tool"], "echo");
    assert_eq!(e[0]["outcome"], "ok");
    assert_eq!(e[0]["caller"]["transport"], "cli");
    assert!(e[0]["fuel_used"].as_u64().expect("fuel") > 0);
    assert!(e[0]["peak_memory"].as_u64().expect("memory") > 0);
    assert!(
        e[0]["digest"]
            .as_str()
            .expect("digest")
            .starts_with("blake3:")
    );
    assert_eq!(
        e[0]["args_digest"],
        format!(
            "blake3:{}",
            blake3::hash(br#"{"text":"top secret"}"#).to_hex()
        )
    );
    assert_eq!(e[1]["outcome"], "out-of-fuel");
    assert_eq!(e[1]["fuel_used"], 200000);
    assert_eq!(e[1]["prev_hash"], e[0]["hash"]);
    // The arguments themselves are nowhere in the ledger.
    let raw = std::fs::read(h.db()).expect("read db");
    assert!(!String::from_utf8_lossy(&raw).contains("top secret"));
    let export = h.ok(&["ledger", "export"]);
    assert_eq!(export.lines().count(), 2);
    assert!(!export.contains("top secret"));
    // Filters.
    let only: Value =
        serde_json::from_str(&h.ok(&["ledger", "show", "--outcome", "out-of-fuel", "--json"]))
            .expect("JSON");
    assert_eq!(only.as_array().expect("array").len(), 1);
    let human = h.ok(&["ledger", "show"]);
    assert!(
        human.contains("fixture-basic/spin") && human.contains("out-of-fuel"),
        "{human}"
    );
}

#[test]
fn tampering_of_every_kind_is_found_and_named() {
    let h = Home::new();
    for i in 0..6 {
        h.ok(&[
            "call",
            "fixture-basic",
            "echo",
            "--args",
            &format!(r#"{{"text":"{i}"}}"#),
        ]);
    }
    let v = h.verify();
    assert_eq!(v["entries"], 6);
    assert!(v["problem"].is_null(), "{v}");

    let pristine = tempfile::tempdir().expect("copy");
    copy_dir(h.home.path(), pristine.path());
    let fresh = |sql: &str| {
        let t = tempfile::tempdir().expect("case");
        copy_dir(pristine.path(), t.path());
        let case = Home { home: t };
        case.sql(sql);
        let v = case.verify();
        (case, v)
    };

    // Modified: one field of one entry.
    let (case, v) = fresh("UPDATE entries SET fuel_used = 1 WHERE seq = 3;");
    assert_eq!(v["problem"]["seq"], 3, "{v}");
    assert!(
        v["problem"]["reason"]
            .as_str()
            .expect("reason")
            .contains("modified"),
        "{v}"
    );
    let o = case.run(&["ledger", "verify"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("BROKEN at entry 3"));

    // Deleted from the middle.
    let (_, v) = fresh("DELETE FROM entries WHERE seq = 3;");
    assert_eq!(v["problem"]["seq"], 3, "{v}");
    assert!(
        v["problem"]["reason"]
            .as_str()
            .expect("reason")
            .contains("missing"),
        "{v}"
    );

    // Reordered: entries 3 and 4 swap places.
    let (_, v) = fresh(
        "UPDATE entries SET seq = -4 WHERE seq = 4; UPDATE entries SET seq = 4 WHERE seq = 3; \
         UPDATE entries SET seq = 3 WHERE seq = -4;",
    );
    assert_eq!(v["problem"]["seq"], 3, "{v}");

    // Inserted: a forged entry at 3 (later ones renumbered; its tool is another name), not chained to 4.
    let (_, v) = fresh(
        "UPDATE entries SET seq = seq + 100 WHERE seq >= 3; UPDATE entries SET seq = seq - 99 WHERE seq >= 103; \
         INSERT INTO entries SELECT 3, time_ms, kind, plugin, version, digest, version, transport, session, \
         principal, duration_us, fuel_used, peak_memory, outcome, args_digest, cost, event, data, hash \
         FROM entries WHERE seq = 4;",
    );
    assert_eq!(v["entries"], 7, "{v}");
    assert_eq!(v["problem"]["seq"], 3, "{v}");

    // A signed checkpoint catches what the chain alone cannot: the tail cut off, or the whole chain rewritten.
    h.ok(&["ledger", "checkpoint", "--key", "op"]);
    copy_dir(h.home.path(), pristine.path());
    let (_, v) = fresh("DELETE FROM entries WHERE seq >= 5;");
    assert_eq!(v["problem"]["seq"], 6, "{v}");
    assert!(
        v["problem"]["reason"]
            .as_str()
            .expect("reason")
            .contains("tail"),
        "{v}"
    );
    let (_, v) = fresh("UPDATE checkpoints SET hash = 'x' || substr(hash, 2);");
    assert!(
        v["problem"]["reason"]
            .as_str()
            .expect("reason")
            .contains("signature"),
        "{v}"
    );
    let v = h.verify();
    assert!(v["problem"].is_null(), "{v}");
    assert_eq!(v["checkpoints"], 1);
}

/// A tools/call over Streamable HTTP (stateless, 2026-07-28); returns whether the call was acknowledged as done.
fn call(addr: SocketAddr, text: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"fixture-basic__echo","arguments":{{"text":"{text}"}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
    );
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n\
         Mcp-Name: fixture-basic__echo\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200") && out.contains("\"isError\":false")
}

/// `serve --http` on a free loopback port, and where it listens.
fn serve_http(h: &Home) -> (std::process::Child, SocketAddr) {
    let mut server = Command::new(BIN)
        .args(["serve", "--http", "127.0.0.1:0"])
        .env("PLUGHOST_HOME", h.home.path())
        .env_remove("PLUGHOST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut lines = BufReader::new(server.stderr.take().expect("stderr")).lines();
    let addr: SocketAddr = loop {
        let line = lines.next().expect("server output").expect("line");
        if let Some(rest) = line.strip_prefix("plughost: MCP at http://") {
            break rest.split('/').next().expect("addr").parse().expect("addr");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (server, addr)
}

#[test]
fn sigterm_stops_serve_cleanly_with_every_call_moved_out_of_the_spool() {
    let h = Home::new();
    let (mut server, addr) = serve_http(&h);
    for i in 0..3 {
        assert!(call(addr, &format!("before-term-{i}")), "call {i}");
    }
    // An idle keep-alive connection does not hold the shutdown up.
    let _idle = TcpStream::connect(addr).expect("connect");
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(s) = server.try_wait().expect("wait") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "serve ended with {status} on SIGTERM");
    // Its spool was moved into ledger.db and removed on the way out (before any other process opened the ledger).
    let spool = h.db().with_file_name("ledger.spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", spool.display());
    let export = h.ok(&["ledger", "export"]);
    let echoes = export
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).expect("JSON line")["tool"] == "echo")
        .count();
    assert_eq!(echoes, 3, "{export}");
}

#[test]
fn sigkill_mid_burst_loses_no_acknowledged_call() {
    let h = Home::new();
    let (mut server, addr) = serve_http(&h);

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let acked = acked.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let text = format!("w{w}-{i}");
                    if call(addr, &text) {
                        acked.lock().expect("lock").push(text);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    // Let the burst run, then SIGKILL the gateway while calls are in flight.
    let started = Instant::now();
    while acked.lock().expect("lock").len() < 100 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill().expect("SIGKILL");
    server.wait().expect("wait");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 100,
        "only {} calls were acknowledged",
        acked.len()
    );

    // After the crash: the chain verifies and holds every call that was acknowledged.
    let v = h.verify();
    assert!(v["problem"].is_null(), "{v}");
    let export = h.ok(&["ledger", "export"]);
    let recorded: std::collections::HashSet<String> = export
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("JSON line")["args_digest"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let missing: Vec<&String> = acked
        .iter()
        .filter(|t| {
            let d = format!(
                "blake3:{}",
                blake3::hash(format!(r#"{{"text":"{t}"}}"#).as_bytes()).to_hex()
            );
            !recorded.contains(&d)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged calls are missing: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    eprintln!(
        "{} calls acknowledged before SIGKILL, {} entries after restart, chain ok",
        acked.len(),
        v["entries"]
    );
}

/// `plughost call … --json` → (exit code, the JSON it printed).
fn call_json(h: &Home, args: &[&str]) -> (Option<i32>, Value) {
    call_plugin_json(h, "fixture-basic", args)
}

/// `plughost call PLUGIN … --json` → (exit code, the JSON it printed).
fn call_plugin_json(h: &Home, plugin: &str, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["call", plugin];
    all.extend_from_slice(args);
    all.push("--json");
    let o = h.run(&all);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{all:?} printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code(), v)
}

/// Appends calls of fixture-basic made `ago_ms` ago, as another process would have recorded them.
fn backdated_calls(h: &Home, tool: &str, n: usize, ago_ms: i64, cost: u64) {
    use plughost::ledger::{Caller, Kind, Ledger, NewEntry, now_ms};
    let l = Ledger::open(h.home.path()).expect("ledger");
    let e = NewEntry {
        time_ms: now_ms() - ago_ms,
        kind: Kind::Call,
        plugin: "fixture-basic".into(),
        version: "0.1.0".into(),
        digest: "blake3:earlier".into(),
        tool: tool.into(),
        caller: Caller {
            transport: "cli".into(),
            ..Caller::default()
        },
        duration_us: 1,
        fuel_used: 1,
        peak_memory: 1,
        outcome: "ok".into(),
        args_digest: None,
        cost,
        event: None,
        data: None,
    };
    l.append(&vec![e; n]).expect("append");
}

#[test]
fn calls_per_window_are_enforced_from_the_ledger_and_the_window_slides() {
    let h = Home::new();
    h.ok(&[
        "limits",
        "fixture-basic",
        "--calls",
        "3/minute",
        "--cost",
        "2",
    ]);
    // Two calls made 56 s ago (by another process, say): they still count, and leave the window in ~4 s (slack for
    // a slow machine: the refusal below must come before they leave).
    backdated_calls(&h, "echo", 2, 56_000, 2);
    let (code, v) = call_json(&h, &["echo", "--args", r#"{"text":"a"}"#]);
    assert_eq!(code, Some(0), "{v}");
    let (code, v) = call_json(&h, &["echo", "--args", r#"{"text":"b"}"#]);
    assert_eq!(code, Some(1), "{v}");
    let d = &v["result"]["error"]["detail"];
    assert_eq!(d["kind"], "quota", "{v}");
    assert_eq!(
        (
            d["resource"].as_str(),
            d["used"].as_u64(),
            d["limit"].as_u64()
        ),
        (Some("calls"), Some(3), Some(3))
    );
    let msg = v["result"]["error"]["message"].as_str().expect("message");
    let until = d["until"].as_str().expect("until");
    assert!(
        msg.starts_with(&format!("quota exhausted until {until}")),
        "{msg}"
    );
    assert!(msg.contains("3 of the 3 calls allowed per minute"), "{msg}");
    let retry = d["retry_after_seconds"].as_u64().expect("retry after");
    assert!((1..=4).contains(&retry), "{v}");
    // The guest did not run, and the refusal is recorded at no cost.
    assert_eq!(v["report"]["fuel_used"], 0);
    let refused: Value =
        serde_json::from_str(&h.ok(&["ledger", "show", "--outcome", "quota", "--json"]))
            .expect("JSON");
    assert_eq!(refused.as_array().expect("array").len(), 1);
    assert_eq!(refused[0]["cost"], 0);

    // The window slides: once the two old calls are older than a minute, there is room again.
    std::thread::sleep(Duration::from_millis(retry * 1000 + 300));
    let (code, v) = call_json(&h, &["echo", "--args", r#"{"text":"c"}"#]);
    assert_eq!(code, Some(0), "{v}");
    let q: Value =
        serde_json::from_str(&h.ok(&["quota", "fixture-basic", "--json"])).expect("JSON");
    let c = &q["plugins"][0]["contracts"][0];
    assert_eq!(
        (c["calls_used"].as_u64(), c["calls_allowed"].as_u64()),
        (Some(2), Some(3)),
        "{q}"
    );
    assert_eq!(c["cost_used"], 4, "{q}");

    // A tool's own contract, next to the plugin's.
    h.ok(&[
        "limits",
        "fixture-basic",
        "--tool",
        "log_flood",
        "--calls",
        "1/hour",
    ]);
    let (code, _) = call_json(&h, &["log_flood", "--args", r#"{"lines":1}"#]);
    assert_eq!(code, Some(0));
    let (code, v) = call_json(&h, &["log_flood", "--args", r#"{"lines":1}"#]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["result"]["error"]["detail"]["tool"], "log_flood", "{v}");
    assert!(
        v["result"]["error"]["message"]
            .as_str()
            .expect("message")
            .contains("tool `log_flood` of plugin `fixture-basic`"),
        "{v}"
    );
    // The plugin's own contract has room for none now either (3 of 3 in the minute), so lift it and echo works while
    // log_flood stays refused.
    h.ok(&["limits", "fixture-basic", "--calls", "0"]);
    assert_eq!(
        call_json(&h, &["echo", "--args", r#"{"text":"d"}"#]).0,
        Some(0)
    );
    assert_eq!(
        call_json(&h, &["log_flood", "--args", r#"{"lines":1}"#]).0,
        Some(1)
    );
    // A tool that does not exist cannot get a contract.
    let o = h.run(&["limits", "fixture-basic", "--tool", "nope", "--calls", "1"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("has no tool `nope`"));
}

#[test]
fn a_cost_budget_is_spent_call_by_call() {
    let h = Home::new();
    h.ok(&[
        "limits",
        "fixture-basic",
        "--budget",
        "10/hour",
        "--cost",
        "3",
    ]);
    for i in 0..3 {
        let (code, v) = call_json(&h, &["echo", "--args", &format!(r#"{{"text":"{i}"}}"#)]);
        assert_eq!(code, Some(0), "{v}");
    }
    let (code, v) = call_json(&h, &["echo", "--args", r#"{"text":"x"}"#]);
    assert_eq!(code, Some(1), "{v}");
    let d = &v["result"]["error"]["detail"];
    assert_eq!(
        (
            d["resource"].as_str(),
            d["used"].as_u64(),
            d["limit"].as_u64()
        ),
        (Some("cost"), Some(9), Some(10)),
        "{v}"
    );
    assert!(
        v["result"]["error"]["message"]
            .as_str()
            .expect("message")
            .contains("costs 3"),
        "{v}"
    );
    // Calls that ran are charged; the refused one is not.
    let entries: Value = serde_json::from_str(&h.ok(&["ledger", "show", "--json"])).expect("JSON");
    let costs: Vec<u64> = entries
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["cost"].as_u64().expect("cost"))
        .collect();
    assert_eq!(costs, vec![3, 3, 3, 0]);
    // A tool priced over the whole budget can never run, and says so.
    h.ok(&["limits", "fixture-basic", "--tool", "spin", "--cost", "11"]);
    let (code, v) = call_json(&h, &["spin"]);
    assert_eq!(code, Some(1));
    let d = &v["result"]["error"]["detail"];
    assert!(d["until"].is_null(), "{v}");
    assert!(
        v["result"]["error"]["message"]
            .as_str()
            .expect("message")
            .contains("more than the whole budget"),
        "{v}"
    );
    let shown = h.ok(&["limits", "fixture-basic"]);
    assert!(
        shown.contains("10 tokens per hour, 3 tokens a call") && shown.contains("tool spin"),
        "{shown}"
    );
}

#[test]
fn the_quota_view_matches_what_the_calls_used() {
    let h = Home::new();
    h.ok(&[
        "limits",
        "fixture-basic",
        "--fuel",
        "50000000",
        "--memory",
        "64MiB",
        "--calls",
        "100/day",
        "--cost",
        "1",
    ]);
    let mut fuel = Vec::new();
    let mut peaks = Vec::new();
    for (tool, args) in [
        ("echo", r#"{"text":"a"}"#),
        ("echo", r#"{"text":"bb"}"#),
        ("huge_output", r#"{"bytes":1000000}"#),
        ("echo", r#"{"text":"c"}"#),
        ("spin", "{}"),
    ] {
        let (_, v) = call_json(&h, &[tool, "--args", args]);
        fuel.push(v["report"]["fuel_used"].as_u64().expect("fuel"));
        peaks.push(v["report"]["peak_memory_bytes"].as_u64().expect("peak"));
    }
    assert_eq!(
        *fuel.last().expect("spin"),
        50_000_000,
        "spin ran out of fuel: {fuel:?}"
    );
    let q: Value =
        serde_json::from_str(&h.ok(&["quota", "fixture-basic", "--json"])).expect("JSON");
    let p = &q["plugins"][0];
    let mut sorted = fuel.clone();
    sorted.sort();
    assert_eq!(p["calls_sampled"], 5, "{q}");
    assert_eq!(p["fuel"]["limit"], 50_000_000);
    assert_eq!(p["fuel"]["last"], fuel[4]);
    assert_eq!(p["fuel"]["p50"], sorted[2], "{q} vs {fuel:?}");
    assert_eq!(p["fuel"]["p99"], sorted[4]);
    assert_eq!(p["memory"]["limit_bytes"], 64 << 20);
    assert_eq!(p["memory"]["last_peak_bytes"], peaks[4]);
    assert_eq!(
        p["memory"]["max_peak_bytes"],
        *peaks.iter().max().expect("max"),
        "{q} vs {peaks:?}"
    );
    assert!(
        peaks[2] > peaks[0],
        "huge_output used more memory: {peaks:?}"
    );
    assert_eq!(p["deadline_ms"], 10_000);
    let c = &p["contracts"][0];
    assert_eq!(
        (
            c["calls_used"].as_u64(),
            c["calls_allowed"].as_u64(),
            c["cost_used"].as_u64()
        ),
        (Some(5), Some(100), Some(5)),
        "{q}"
    );
    // The same calls in `stats`, per tool.
    let st: Value = serde_json::from_str(&h.ok(&["stats", "--json"])).expect("JSON");
    let tool = |name: &str| {
        st["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .find(|t| t["tool"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {st}"))
    };
    let echo = tool("echo");
    assert_eq!(echo["calls"], 3);
    assert_eq!(echo["fuel_total"], fuel[0] + fuel[1] + fuel[3]);
    assert_eq!(echo["cost"], 3);
    let spin = tool("spin");
    assert_eq!(
        (
            spin["errors"].as_u64(),
            spin["outcomes"]["out-of-fuel"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert!(h.ok(&["stats"]).contains("fixture-basic/huge_output"));
    let human = h.ok(&["quota"]);
    assert!(
        human.contains("fixture-basic") && human.contains("calls 5 of 100"),
        "{human}"
    );
}

#[test]
fn plugins_append_their_own_events_chained_like_calls() {
    let h = Home::new();
    let wasm = h.home.path().join("events.wasm");
    std::fs::copy(fx::EVENTS, &wasm).expect("copy");
    let w = wasm.to_str().expect("utf-8");
    h.ok(&[
        "sign",
        w,
        "--key",
        "op",
        "--request",
        "ledger",
        "--request",
        "metrics",
    ]);
    h.ok(&["install", w, "--yes"]);
    let call = |args: &[&str]| call_plugin_json(&h, "fixture-events", args).1;
    let v = call(&[
        "record",
        "--args",
        r#"{"kind":"dns.record.created","data":{"zone":"example.com","name":"www"}}"#,
    ]);
    assert_eq!(v["result"]["ok"]["content"][0]["text"], "1", "{v}");
    assert_eq!(v["report"]["host_calls"]["ledger"], 1, "{v}");
    let entries: Value = serde_json::from_str(&h.ok(&["ledger", "show", "--json"])).expect("JSON");
    let e = entries.as_array().expect("array");
    assert_eq!(e.len(), 2, "{entries}");
    assert_eq!(e[0]["kind"], "event", "{entries}");
    assert_eq!(e[0]["event"], "dns.record.created");
    assert_eq!(e[0]["plugin"], "fixture-events");
    assert_eq!(e[0]["tool"], "record");
    assert_eq!(e[0]["caller"]["transport"], "plugin");
    let data: Value =
        serde_json::from_str(e[0]["data"].as_str().expect("data")).expect("data JSON");
    assert_eq!(data["zone"], "example.com");
    assert_eq!(e[1]["kind"], "call");
    assert_eq!(e[1]["prev_hash"], e[0]["hash"]);

    // Bounded and typed: a bad kind and an oversized event are the plugin's invalid arguments, nothing is written.
    let v = call(&["record", "--args", r#"{"kind":"Bad Kind","data":1}"#]);
    assert_eq!(
        v["result"]["error"]["detail"]["kind"], "invalid-arguments",
        "{v}"
    );
    assert!(
        v["result"]["error"]["message"]
            .as_str()
            .expect("message")
            .contains("invalid event kind"),
        "{v}"
    );
    let big = format!(r#"{{"kind":"big","data":"{}"}}"#, "x".repeat(20_000));
    let v = call(&["record", "--args", &big]);
    assert!(
        v["result"]["error"]["message"]
            .as_str()
            .expect("message")
            .contains("too large"),
        "{v}"
    );
    let events: Value = serde_json::from_str(&h.ok(&["ledger", "show", "--json"])).expect("JSON");
    let kinds: Vec<&str> = events
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["event", "call", "call", "call"]);

    // Its own usage: the calls recorded before this one.
    let v = call(&["usage"]);
    assert_eq!(v["result"]["ok"]["structured"]["calls"], 3, "{v}");

    // Events are in the chain: editing one is found.
    let v = h.verify();
    assert!(v["problem"].is_null(), "{v}");
    h.sql(r#"UPDATE entries SET data = '{"zone":"evil.com","name":"www"}' WHERE seq = 1;"#);
    assert_eq!(h.verify()["problem"]["seq"], 1);

    // An ad-hoc call of the file has no ledger: a typed `unavailable`, not a crash.
    let o = h.run(&[
        "call",
        w,
        "record",
        "--grant",
        "ledger",
        "--grant",
        "metrics",
        "--args",
        r#"{"kind":"k","data":1}"#,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(out.contains("keeps no ledger"), "{out}");
}

/// `[ledger.archive]` in the data dir's plughost.toml: `serve` moves entries older than `older_than` to a signed
/// archive in `dir` by itself, on a thread of its own; the live ledger then verifies from the cut, and the archive
/// verifies and links to it as one made by `ledger archive` does.
#[test]
fn serve_archives_old_entries_by_itself_as_configured() {
    const DAY: i64 = 86_400_000;
    let h = Home::new();
    backdated_calls(&h, "echo", 30, 50 * DAY, 1);
    backdated_calls(&h, "echo", 5, DAY, 1);
    std::fs::write(
        h.home.path().join("plughost.toml"),
        "[ledger.archive]\ndir = \"archives\"\nkey = \"op\"\nolder_than = \"40d\"\nevery = \"1s\"\n",
    )
    .expect("config");
    let mut serve = Command::new(BIN)
        .args(["serve", "--stdio"])
        .env("PLUGHOST_HOME", h.home.path())
        .env_remove("PLUGHOST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let archives = h.home.path().join("archives");
    let deadline = Instant::now() + Duration::from_secs(120);
    let file = loop {
        let done = std::fs::read_dir(&archives).ok().and_then(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(".jsonl.gz"))
        });
        // The file is in place before the cut is committed: wait for the cut too.
        if let Some(f) = done
            && h.verify()["archived"] == 30
        {
            break f;
        }
        assert!(
            Instant::now() < deadline,
            "serve wrote no archive within 120 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    serve.kill().expect("kill");
    serve.wait().expect("wait");
    let v = h.verify();
    assert_eq!(
        (&v["archived"], &v["entries"], &v["problem"]),
        (&Value::from(30), &Value::from(5), &Value::Null),
        "{v}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file)
        .expect("archive")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = h.ok(&[
        "ledger",
        "verify",
        "--archive",
        file.to_str().expect("utf-8"),
    ]);
    assert!(
        out.contains("entries 1..30 chained, cut signed by `op`"),
        "{out}"
    );
    // Only one archive: the next passes found nothing old enough.
    assert_eq!(std::fs::read_dir(&archives).expect("dir").count(), 1);
}
