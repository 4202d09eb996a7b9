//! The ledger is never optional: a call that cannot be recorded does not run (or, if its entry fails after it ran,
//! is not reported as a success), a contract holds even then, the chain is anchored by checkpoints kept outside
//! `ledger.db`, and every refusal is recorded the same way from the CLI and over HTTP.
//!
//! These tests run as root, which no file mode or read-only bind mount stops. A ledger that cannot be written is made
//! at the SQLite level instead, which root cannot bypass:
//! - read-only: byte 18 of the database header (the "write version") set above 2. SQLite then opens the file
//!   read-only, exactly as it does a write-protected file: reads work, every write fails with SQLITE_READONLY.
//! - a commit that fails after the guest ran (what a full disk does): a trigger that aborts every insert into
//!   `entries`. The file stays writable to SQLite, so only the commit itself fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use plughost_tests as fx;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_plughost");

struct Home {
    home: tempfile::TempDir,
}

impl Home {
    /// A data dir with fixture-basic installed (grants state and log), signed by the trusted key `op`.
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

    fn sql(&self, sql: &str) {
        let c = rusqlite::Connection::open(self.db()).expect("open ledger.db");
        c.execute_batch(sql).expect("sql");
    }

    /// Entries in the ledger, read straight from the file.
    fn entries(&self) -> Vec<Value> {
        let v: Value =
            serde_json::from_str(&self.ok(&["ledger", "show", "--json", "--limit", "1000"]))
                .expect("JSON");
        v.as_array().expect("array").clone()
    }

    /// Sets the header's write version: 3 makes SQLite treat the file as read-only, 2 (WAL) undoes it. The WAL is
    /// folded into the file first (closing the last connection does that), so the header SQLite reads is this one.
    fn set_write_version(&self, v: u8) {
        let c = rusqlite::Connection::open(self.db()).expect("open ledger.db");
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
        drop(c);
        let mut bytes = std::fs::read(self.db()).expect("read ledger.db");
        assert_eq!(&bytes[..16], b"SQLite format 3\0");
        bytes[18] = v;
        std::fs::write(self.db(), bytes).expect("write ledger.db");
    }

    /// `plughost call fixture-basic TOOL --args ARGS --json` → (exit code, JSON, stderr).
    fn call(&self, tool: &str, args: &str) -> (Option<i32>, Value, String) {
        let o = self.run(&["call", "fixture-basic", tool, "--args", args, "--json"]);
        let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "call {tool} printed no JSON ({e}): {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        });
        (
            o.status.code(),
            v,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

#[test]
fn a_read_only_ledger_refuses_calls_before_any_guest_runs_and_the_contract_holds() {
    let h = Home::new();
    h.ok(&["limits", "fixture-basic", "--calls", "2/minute"]);
    let (code, _, _) = h.call("echo", r#"{"text":"first"}"#);
    assert_eq!(code, Some(0));
    h.set_write_version(3);

    for i in 0..5 {
        let (code, v, stderr) = h.call("state_put", &format!(r#"{{"key":"k{i}","value":"v"}}"#));
        assert_eq!(code, Some(1), "call {i} must fail: {v} {stderr}");
        let err = &v["result"]["error"];
        assert_eq!(err["detail"]["kind"], "unavailable", "{v}");
        let msg = err["message"].as_str().expect("message");
        assert!(
            msg.contains("cannot be written") && msg.contains("not run"),
            "{msg}"
        );
        assert_eq!(v["report"]["fuel_used"], 0, "the guest ran: {v}");
    }

    // Writable again: none of the five refused calls stored anything, and the ledger holds only the first call.
    h.set_write_version(2);
    let (code, v, _) = h.call("state_get", r#"{"key":"k0"}"#);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["result"]["ok"]["content"][0]["text"], "<none>", "{v}");
    let tools: Vec<String> = h
        .entries()
        .iter()
        .map(|e| e["tool"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(tools, ["echo", "state_get"]);
}

#[test]
fn a_call_whose_entry_cannot_be_committed_is_an_error_that_says_so() {
    let h = Home::new();
    let (code, _, _) = h.call("echo", r#"{"text":"first"}"#);
    assert_eq!(code, Some(0));
    h.sql(
        "CREATE TRIGGER fail_commit BEFORE INSERT ON entries \
         BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;",
    );

    let o = h.run(&[
        "call",
        "fixture-basic",
        "echo",
        "--args",
        r#"{"text":"unrecorded-result"}"#,
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        !stdout.contains("unrecorded-result"),
        "the result of an unrecorded call was printed: {stdout}"
    );
    assert!(
        stderr.contains("error (unavailable): unavailable: not recorded")
            && stderr.contains("simulated write failure"),
        "{stderr}"
    );
    assert_eq!(h.entries().len(), 1);
}

/// A running `plughost serve --http` on a free port.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(h: &Home) -> Server {
    let mut child = Command::new(BIN)
        .args(["serve", "--http", "127.0.0.1:0", "--no-standby"])
        .env("PLUGHOST_HOME", h.home.path())
        .env_remove("PLUGHOST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr: SocketAddr = loop {
        let line = lines.next().expect("server output").expect("line");
        if let Some(rest) = line.strip_prefix("plughost: MCP at http://") {
            break rest.split('/').next().expect("addr").parse().expect("addr");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

/// One stateless (2026-07-28) JSON-RPC `tools/call` over Streamable HTTP; returns the JSON-RPC response.
fn http_call(addr: SocketAddr, name: &str, arguments: Value) -> Value {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let body = json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": name,
            "arguments": arguments,
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}
            }
        }
    })
    .to_string();
    let req = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n\
         Mcp-Name: {name}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let at = out
        .find("{\"jsonrpc\"")
        .unwrap_or_else(|| panic!("no JSON-RPC response: {out}"));
    serde_json::Deserializer::from_str(&out[at..])
        .into_iter::<Value>()
        .next()
        .expect("a JSON value")
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

#[test]
fn over_http_an_unrecorded_call_is_an_error_and_still_counts_against_the_contract() {
    let h = Home::new();
    h.ok(&["limits", "fixture-basic", "--calls", "2/minute"]);
    let (code, _, _) = h.call("echo", r#"{"text":"first"}"#);
    assert_eq!(code, Some(0));
    h.sql(
        "CREATE TRIGGER fail_commit BEFORE INSERT ON entries \
         BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;",
    );
    let server = serve(&h);

    // One call fits the contract (one was made before): it runs, but its entry fails, so it is an error.
    let r = http_call(server.addr, "fixture-basic__echo", json!({"text": "x"}));
    let result = &r["result"];
    assert_eq!(result["isError"], true, "{r}");
    assert_eq!(
        result["_meta"]["plughost/error"]["kind"], "unavailable",
        "{r}"
    );
    let msg = result["_meta"]["plughost/error"]["message"]
        .as_str()
        .expect("message");
    assert!(msg.starts_with("not recorded"), "{msg}");
    assert!(result["_meta"]["plughost/report"]["fuel_used"].as_u64() > Some(0));

    // It still counts: the next call is over the contract and never runs.
    let r = http_call(server.addr, "fixture-basic__echo", json!({"text": "y"}));
    let result = &r["result"];
    assert_eq!(result["isError"], true, "{r}");
    let msg = result["_meta"]["plughost/error"]["message"]
        .as_str()
        .expect("message");
    assert!(msg.contains("`quota`"), "{r}");
    assert_eq!(result["_meta"]["plughost/report"]["fuel_used"], 0, "{r}");
}

/// `plughost ledger verify [--against FILE…]` → (exit code, stdout).
fn verify(h: &Home, against: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["ledger", "verify"];
    for f in against {
        args.extend_from_slice(&["--against", f]);
    }
    let o = h.run(&args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[test]
fn a_checkpoint_kept_outside_the_ledger_catches_a_cut_tail_and_a_rewritten_chain() {
    let h = Home::new();
    for t in ["a", "b", "c"] {
        h.ok(&[
            "call",
            "fixture-basic",
            "echo",
            "--args",
            &format!(r#"{{"text":"{t}"}}"#),
        ]);
    }
    let outside = tempfile::tempdir().expect("outside");
    let file = outside.path().join("at-3.json");
    let f = file.to_str().expect("utf-8");
    h.ok(&["ledger", "checkpoint", "--key", "op", "--out", f]);
    h.ok(&["call", "fixture-basic", "echo", "--args", r#"{"text":"d"}"#]);
    let (code, out) = verify(&h, &[f]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("reaches checkpoint"), "{out}");

    // Cut the tail below the checkpoint and take the checkpoint rows with it: the file alone still knows.
    let cut = tempfile::tempdir().expect("copy");
    let h2 = Home { home: cut };
    for name in ["ledger.db", "ledger.db-wal", "ledger.db-shm"] {
        let from = h.home.path().join(name);
        if from.exists() {
            std::fs::copy(&from, h2.home.path().join(name)).expect("copy");
        }
    }
    h2.sql("DELETE FROM entries WHERE seq >= 2; DELETE FROM checkpoints;");
    let (code, out) = verify(&h2, &[]);
    assert_eq!(
        code,
        Some(0),
        "without the file the cut is invisible: {out}"
    );
    let (code, out) = verify(&h2, &[f]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("checkpoint {f} (entry 3")) && out.contains("no longer reaches"),
        "{out}"
    );

    // Rewrite the whole chain from scratch (every link valid) and drop the checkpoint rows: entry 3 differs.
    h.sql("DELETE FROM entries; DELETE FROM checkpoints;");
    {
        use plughost::ledger::{Caller, Kind, Ledger, NewEntry};
        let l = Ledger::open(h.home.path()).expect("ledger");
        let e = NewEntry {
            time_ms: 1,
            kind: Kind::Call,
            plugin: "fixture-basic".into(),
            version: "0.1.0".into(),
            digest: "blake3:forged".into(),
            tool: "echo".into(),
            caller: Caller::default(),
            duration_us: 1,
            fuel_used: 1,
            peak_memory: 1,
            outcome: "ok".into(),
            args_digest: None,
            cost: 0,
            event: None,
            data: None,
        };
        l.append(&vec![e; 4]).expect("append");
    }
    let (code, out) = verify(&h, &[]);
    assert_eq!(
        code,
        Some(0),
        "without the file the rewrite is invisible: {out}"
    );
    let (code, out) = verify(&h, &[f]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("checkpoint {f} (entry 3")) && out.contains("rewritten"),
        "{out}"
    );
}

#[test]
fn over_http_refusals_are_ledgered_with_the_same_fields_as_from_the_cli() {
    let h = Home::new();
    // The CLI's refusals first: an unknown tool.
    let o = h.run(&["call", "fixture-basic", "nope"]);
    assert_eq!(o.status.code(), Some(2));

    let server = serve(&h);
    let unknown = http_call(server.addr, "fixture-basic__nope", json!({}));
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    let invalid = http_call(server.addr, "fixture-basic__echo", json!({"text": 5}));
    assert_eq!(invalid["error"]["code"], -32602, "{invalid}");
    drop(server);
    // A disabled plugin: refused over HTTP and from the CLI.
    h.ok(&["disable", "fixture-basic"]);
    let server = serve(&h);
    let disabled = http_call(server.addr, "fixture-basic__echo", json!({"text": "x"}));
    assert!(disabled["error"].is_object(), "{disabled}");
    drop(server);
    let o = h.run(&["call", "fixture-basic", "echo"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not loaded"));

    let entries = h.entries();
    let row = |e: &Value| {
        (
            e["caller"]["transport"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            e["tool"].as_str().unwrap_or_default().to_string(),
            e["outcome"].as_str().unwrap_or_default().to_string(),
        )
    };
    let rows: Vec<_> = entries.iter().map(row).collect();
    let want =
        |t: &str, tool: &str, outcome: &str| (t.to_string(), tool.to_string(), outcome.to_string());
    assert_eq!(
        rows,
        [
            want("cli", "nope", "unknown-tool"),
            want("http", "nope", "unknown-tool"),
            want("http", "echo", "invalid-arguments"),
            want("http", "echo", "unavailable"),
            want("cli", "echo", "unavailable"),
        ],
        "{entries:?}"
    );
    for e in &entries {
        assert_eq!(e["plugin"], "fixture-basic");
        assert_eq!(e["version"], entries[0]["version"]);
        assert_eq!(e["digest"], entries[0]["digest"]);
        assert_eq!(
            (e["cost"].as_u64(), e["fuel_used"].as_u64()),
            (Some(0), Some(0)),
            "{e}"
        );
        assert!(e["args_digest"].is_string(), "{e}");
    }
    let v: Value = serde_json::from_str(&h.ok(&["ledger", "verify", "--json"])).expect("JSON");
    assert!(v["problem"].is_null(), "{v}");
}

/// Every `calls_used` in the quota view of fixture-basic.
fn calls_used(h: &Home) -> Vec<u64> {
    fn walk(v: &Value, out: &mut Vec<u64>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v.as_u64()) {
                        ("calls_used", Some(n)) => out.push(n),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let v: Value =
        serde_json::from_str(&h.ok(&["quota", "fixture-basic", "--json"])).expect("json");
    let mut out = Vec::new();
    walk(&v, &mut out);
    out
}

#[test]
fn archives_keep_the_proof_and_contracts_keep_their_month() {
    let h = Home::new();
    h.ok(&["limits", "fixture-basic", "--calls", "1000/month"]);
    // 200 correctly chained calls, one every half day over the last 100 days.
    h.ok(&[
        "ledger",
        "generate",
        "--entries",
        "200",
        "--days",
        "100",
        "--plugin",
        "fixture-basic",
    ]);
    let before = calls_used(&h);
    assert!(
        !before.is_empty() && before.iter().all(|n| (55..=62).contains(n)),
        "{before:?}"
    );
    let a1 = h.home.path().join("a1.gz");
    let a2 = h.home.path().join("a2.gz");
    let (p1, p2) = (a1.to_str().expect("utf-8"), a2.to_str().expect("utf-8"));
    let out = h.ok(&[
        "ledger", "archive", "--before", "60d", "--out", p1, "--key", "op",
    ]);
    assert!(out.contains("archived entries 1.."), "{out}");
    h.ok(&[
        "ledger", "archive", "--before", "40d", "--out", p2, "--key", "op",
    ]);
    let o = h.run(&[
        "ledger", "archive", "--before", "20d", "--out", "x.gz", "--key", "op",
    ]);
    assert_ne!(o.status.code(), Some(0), "the last month stays live");
    // The contract counts the same month as before the cuts, and calls go on.
    assert_eq!(calls_used(&h), before);
    h.ok(&["call", "fixture-basic", "echo", "--args", r#"{"text":"x"}"#]);
    let (code, text) = verify(&h, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("starts after entry"), "{text}");
    let with = |files: &[&str]| {
        let mut args = vec!["ledger", "verify"];
        for f in files {
            args.extend_from_slice(&["--archive", f]);
        }
        let o = h.run(&args);
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, text) = with(&[p2, p1]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.matches("ok: archive").count(), 2, "{text}");
    // Without the first archive, the gap is named.
    let (code, text) = with(&[p2]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("BROKEN: entries 1.."), "{text}");
    // A damaged archive is named.
    let mut bytes = std::fs::read(&a1).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&a1, bytes).expect("write");
    let (code, text) = with(&[p1, p2]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("a1.gz"), "{text}");
}
