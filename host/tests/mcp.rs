//! The MCP gateway as clients see it: the official Python SDK (mcp 2.3.0, installed by scripts/setup.sh into
//! target/pyclient) over stdio and Streamable HTTP in both protocol eras, raw HTTP for the edge cases, and a hot
//! reload under load.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use plughost_tests as fx;
use serde_json::Value;

mod common;
use common::*;

fn conformance(setup: &Setup, transport: &[&str], mode: &str) -> Output {
    let state_b = setup.path("state-b.wasm");
    let mut args = vec!["conformance", "--mode", mode];
    args.extend_from_slice(transport);
    args.extend(["--plughost", BIN, "--home", setup.home()]);
    args.extend(["--toggle", "fixture-state-b", &state_b]);
    let out = run_python_env(
        &args,
        &[(
            "PLUGHOST_SERVER_LOG",
            "warn,plughost::gateway::stdio_fast=debug",
        )],
    );
    assert!(out.status.success(), "the Python client's checks failed");
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("OK\n"));
    out
}

#[test]
fn python_sdk_over_stdio_in_both_protocol_eras() {
    let setup = Setup::new();
    // Legacy (initialize) installs fixture-state-b and waits for list_changed; 2026-07-28 removes it again,
    // listening through subscriptions/listen.
    let legacy = conformance(&setup, &["--stdio", BIN, setup.home()], "legacy");
    // The SDK's plain calls in an initialize-era session took the stdio fast path (stdio_fast.rs).
    let fast = String::from_utf8_lossy(&legacy.stderr)
        .matches("stdio fast path: a call")
        .count();
    assert!(fast >= 5, "{fast} calls took the stdio fast path");
    let stateless = conformance(&setup, &["--stdio", BIN, setup.home()], "2026-07-28");
    // And in a 2026-07-28 connection (no initialize, `_meta` on every request).
    let fast = String::from_utf8_lossy(&stateless.stderr)
        .matches("stdio fast path: a call")
        .count();
    assert!(
        fast >= 5,
        "{fast} 2026-07-28 calls took the stdio fast path"
    );
}

#[test]
fn python_sdk_over_http_in_both_protocol_eras() {
    let setup = Setup::new();
    let server = setup.serve_http(&[]);
    let url = server.url();
    // The SDK's plain calls take the HTTP fast path (fast.rs) in its sessions and in 2026-07-28 alike.
    let before = fast_path_count(server.addr);
    conformance(&setup, &["--url", &url], "legacy");
    let legacy = fast_path_count(server.addr) - before;
    assert!(
        legacy >= 5.0,
        "{legacy} session calls took the HTTP fast path"
    );
    conformance(&setup, &["--url", &url], "2026-07-28");
    let stateless = fast_path_count(server.addr) - before - legacy;
    assert!(
        stateless >= 5.0,
        "{stateless} 2026-07-28 calls took the HTTP fast path"
    );
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
const JSON: (&str, &str) = ("Content-Type", "application/json");
const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");

#[test]
fn http_edge_cases_origin_token_version_and_body_size() {
    let setup = Setup::new();
    let token_file = setup.work.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").expect("token file");
    let server = setup.serve_http(&[
        "--token-file",
        token_file.to_str().expect("utf-8"),
        "--max-body",
        "64KiB",
    ]);
    let a = server.addr;
    let good = ("Authorization", "Bearer s3cret-token");

    // Liveness needs no token; everything else does.
    assert_eq!(http(a, "GET", "/health", &[], b"").0, 200);
    let (status, text) = http(a, "POST", "/mcp", &[JSON, ACCEPT], INIT.as_bytes());
    assert_eq!(status, 401, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{text}"
    );
    let wrong = ("Authorization", "Bearer s3cret-tokem");
    assert_eq!(
        http(a, "POST", "/mcp", &[JSON, ACCEPT, wrong], INIT.as_bytes()).0,
        401
    );
    assert_eq!(http(a, "GET", "/metrics", &[], b"").0, 401);
    assert_eq!(http(a, "GET", "/ready", &[], b"").0, 401);

    // With the token: initialize works and issues a session.
    let (status, text) = http(a, "POST", "/mcp", &[JSON, ACCEPT, good], INIT.as_bytes());
    assert_eq!(status, 200, "{text}");
    let session = session_id_of(&text);

    // A foreign browser Origin is refused (DNS rebinding / CSRF defence); a loopback one is fine.
    let evil = ("Origin", "http://evil.example");
    assert_eq!(
        http(
            a,
            "POST",
            "/mcp",
            &[JSON, ACCEPT, good, evil],
            INIT.as_bytes()
        )
        .0,
        403
    );
    let local = ("Origin", "http://localhost:6274");
    assert_eq!(
        http(
            a,
            "POST",
            "/mcp",
            &[JSON, ACCEPT, good, local],
            INIT.as_bytes()
        )
        .0,
        200
    );
    // So is a foreign Host header.
    assert_eq!(
        http(
            a,
            "POST",
            "/mcp",
            &[JSON, ACCEPT, good, ("Host", "evil.example")],
            INIT.as_bytes()
        )
        .0,
        403
    );

    // A protocol version the server does not speak: 400.
    let list = br#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let sid = ("Mcp-Session-Id", session.as_str());
    let (status, text) = http(
        a,
        "POST",
        "/mcp",
        &[
            JSON,
            ACCEPT,
            good,
            sid,
            ("MCP-Protocol-Version", "1999-01-01"),
        ],
        list,
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("1999-01-01"), "{text}");
    // The same request with the negotiated version works.
    let (status, text) = http(
        a,
        "POST",
        "/mcp",
        &[
            JSON,
            ACCEPT,
            good,
            sid,
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        list,
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("fixture-basic__echo"), "{text}");

    // A body over --max-body is refused before it is parsed.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"fixture-basic__echo","arguments":{{"text":"{}"}}}}}}"#,
        "x".repeat(100 * 1024)
    );
    let (status, text) = http(
        a,
        "POST",
        "/mcp",
        &[JSON, ACCEPT, good, sid],
        big.as_bytes(),
    );
    assert_eq!(status, 413, "{text}");

    // The session ends with DELETE (204, not rmcp's 202 that clients warn about); then it is gone.
    assert_eq!(http(a, "DELETE", "/mcp", &[good, sid], b"").0, 204);
    let (status, _) = http(
        a,
        "POST",
        "/mcp",
        &[
            JSON,
            ACCEPT,
            good,
            sid,
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        list,
    );
    assert_eq!(status, 404);

    // Readiness and metrics with the token.
    let (status, text) = http(a, "GET", "/ready", &[good], b"");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"ready\":true"), "{text}");
    let (status, text) = http(a, "GET", "/metrics", &[good], b"");
    assert_eq!(status, 200);
    assert!(
        text.contains("# TYPE plughost_calls_total counter"),
        "{text}"
    );
    assert!(text.contains("plughost_tools 19"), "{text}");
}

/// Tools the gateway serves right now, from /ready.
fn tools_served(addr: SocketAddr) -> u64 {
    let (status, text) = http(addr, "GET", "/ready", &[], b"");
    assert_eq!(status, 200, "{text}");
    let body = text.split("\r\n\r\n").nth(1).expect("body");
    let v: Value = serde_json::from_str(body).expect("ready JSON");
    v["tools"].as_u64().expect("tools")
}

fn wait_for_tools(addr: SocketAddr, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tools_served(addr) != n {
        assert!(
            Instant::now() < deadline,
            "the gateway never served {n} tools"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hot_reload_under_load_loses_no_calls() {
    let setup = Setup::new();
    setup.ok(&["install", &setup.path("state-b.wasm"), "--yes"]);
    let server = setup.serve_http(&[]);
    // basic 13 + system-info 6 + state-b v1 2 (v2 adds `version`).
    wait_for_tools(server.addr, 21);
    let stop = setup.work.path().join("stop");
    let url = server.url();
    let stop_s = stop.to_str().expect("utf-8").to_string();
    let mut load = Command::new(python())
        .arg(client_script())
        .args([
            "load",
            "--url",
            &url,
            "--tool",
            "fixture-state-b__state_get",
            "--args",
            r#"{"key":"k"}"#,
            "--workers",
            "4",
            "--stop-file",
            &stop_s,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the Python MCP client");
    let mut lines = BufReader::new(load.stdout.take().expect("stdout")).lines();
    // Swap only once every client session is connected and calling.
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(first, "connected", "the load client did not start");
    std::thread::sleep(Duration::from_millis(500));
    setup.ok(&["upgrade", &setup.path("state-b-v2.wasm"), "--yes"]);
    wait_for_tools(server.addr, 22);
    std::thread::sleep(Duration::from_millis(700));
    setup.ok(&["rollback", "fixture-state-b"]);
    wait_for_tools(server.addr, 21);
    std::thread::sleep(Duration::from_millis(700));
    setup.ok(&["upgrade", &setup.path("state-b-v2.wasm"), "--yes"]);
    wait_for_tools(server.addr, 22);
    std::thread::sleep(Duration::from_millis(700));
    std::fs::write(&stop, b"stop").expect("stop file");
    let last = lines.map_while(Result::ok).last().unwrap_or_default();
    assert!(
        load.wait().expect("load client").success(),
        "the load client failed"
    );
    let v: Value = serde_json::from_str(&last)
        .unwrap_or_else(|e| panic!("load output is not JSON ({e}): {last}"));
    eprintln!("load during three swaps: {v}");
    assert_eq!(v["failed"], 0, "calls failed during the swaps: {v}");
    assert!(
        v["ok"].as_u64().expect("ok") > 50,
        "too few calls to mean anything: {v}"
    );
}

#[test]
fn metrics_are_prometheus_text_with_host_and_bounded_plugin_series() {
    let setup = Setup::new();
    setup.install(fx::EVENTS, "events.wasm", &["ledger", "metrics"]);
    // A contract on one tool: the second call through MCP is refused, typed, before the guest runs.
    setup.ok(&[
        "limits",
        "fixture-basic",
        "--tool",
        "echo",
        "--calls",
        "1/hour",
    ]);
    let server = setup.serve_http(&[]);
    wait_for_tools(server.addr, 23);
    let calls = serde_json::json!([
        ["fixture-events__observe", {"kind": "counter", "name": "jobs", "value": 3,
            "labels": {"queue": "a\"b\nc", "plugin": "spoof"}}],
        ["fixture-events__observe", {"kind": "histogram", "name": "latency_seconds", "value": 0.2}],
        ["fixture-events__observe", {"kind": "gauge", "name": "depth", "value": 7.5}],
        ["fixture-events__observe", {"kind": "gauge", "name": "jobs", "value": 1}],
        ["fixture-events__series", {"n": 1500}],
        ["fixture-basic__echo", {"text": "x"}],
        ["fixture-basic__echo", {"text": "y"}],
    ]);
    let out = Command::new(python())
        .arg(client_script())
        .args([
            "metrics",
            "--url",
            &server.url(),
            "--calls",
            &calls.to_string(),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run the Python client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("client JSON");
    let calls = v["calls"].as_array().expect("calls");
    for c in &calls[..calls.len() - 1] {
        assert_eq!(c["is_error"], false, "{c}");
    }
    let refused = calls.last().expect("the refused call");
    assert_eq!(refused["is_error"], true, "{refused}");
    let text = refused["text"].as_str().expect("text");
    assert!(
        text.contains("quota exhausted until")
            && text.contains("tool `echo` of plugin `fixture-basic`"),
        "{text}"
    );
    let fam = |name: &str| -> &Value {
        let f = &v["families"][name];
        assert!(f.is_object(), "no family {name} in {}", v["families"]);
        f
    };
    let samples = |name: &str| fam(name)["samples"].as_array().expect("samples").clone();

    // The plugin's own, labelled with the plugin; its `plugin` label cannot pose as another plugin.
    let jobs = samples("plughost_plugin_jobs");
    assert_eq!(fam("plughost_plugin_jobs")["type"], "counter");
    assert_eq!(
        jobs.len(),
        1,
        "the gauge named `jobs` clashes with the counter and is dropped: {jobs:?}"
    );
    assert_eq!(jobs[0]["labels"]["plugin"], "fixture-events");
    assert_eq!(jobs[0]["labels"]["exported_plugin"], "spoof");
    assert_eq!(jobs[0]["labels"]["queue"], "a\"b\nc");
    assert_eq!(jobs[0]["value"], 3.0);
    assert_eq!(fam("plughost_plugin_depth")["type"], "gauge");
    assert_eq!(samples("plughost_plugin_depth")[0]["value"], 7.5);
    assert_eq!(fam("plughost_plugin_latency_seconds")["type"], "histogram");
    let count = samples("plughost_plugin_latency_seconds")
        .into_iter()
        .find(|s| s["name"] == "plughost_plugin_latency_seconds_count")
        .expect("count");
    assert_eq!(count["value"], 1.0);
    // Cardinality is bounded: 1000 series per plugin; 3 are taken, so 997 of the 1500 paths, 503 dropped (+1 clash).
    assert_eq!(samples("plughost_plugin_requests").len(), 997);
    let dropped = samples("plughost_plugin_series_dropped");
    let d = dropped
        .iter()
        .find(|s| s["labels"]["plugin"] == "fixture-events")
        .expect("dropped for fixture-events");
    assert_eq!(d["value"], 504.0);

    // The host's own.
    assert_eq!(fam("plughost_instances_live")["type"], "gauge");
    assert_eq!(samples("plughost_instances_live")[0]["value"], 0.0);
    assert_eq!(fam("plughost_instances_standby")["type"], "gauge");
    assert_eq!(fam("plughost_standby_hits")["type"], "counter");
    assert!(
        samples("plughost_instances_created")[0]["value"]
            .as_f64()
            .expect("n")
            >= 6.0
    );
    let cache: f64 = samples("plughost_compile_cache")
        .iter()
        .map(|s| s["value"].as_f64().expect("n"))
        .sum();
    assert!(
        cache >= 3.0,
        "three plugins loaded: {:?}",
        samples("plughost_compile_cache")
    );
    assert_eq!(fam("plughost_call_fuel")["type"], "histogram");
    let fuel_count = samples("plughost_call_fuel")
        .into_iter()
        .find(|s| s["name"] == "plughost_call_fuel_count" && s["labels"]["tool"] == "series")
        .expect("fuel count for series");
    assert_eq!(fuel_count["value"], 1.0);
    let ok_echo = samples("plughost_calls")
        .into_iter()
        .find(|s| s["labels"]["tool"] == "echo" && s["labels"]["outcome"] == "ok")
        .expect("echo ok");
    assert_eq!(ok_echo["value"], 1.0);
    let quota_echo = samples("plughost_calls")
        .into_iter()
        .find(|s| s["labels"]["tool"] == "echo" && s["labels"]["outcome"] == "quota")
        .expect("echo refused by its contract");
    assert_eq!(quota_echo["value"], 1.0);
}

/// `fixture-basic__count` over stateless Streamable HTTP: how many calls the instance that served it has served.
fn count_over_http(addr: SocketAddr) -> String {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fixture-basic__count","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let (status, text) = http(
        addr,
        "POST",
        "/mcp",
        &[
            JSON,
            ACCEPT,
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "fixture-basic__count"),
        ],
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#""isError":false"#), "{text}");
    let at = text.find(r#""text":""#).expect("a text block") + 8;
    text[at..].split('"').next().unwrap_or_default().to_string()
}

/// A metric's value from /metrics text (the unlabelled series).
fn metric(addr: SocketAddr, name: &str) -> f64 {
    metric_as(addr, name, &[])
}

/// [`metric`] with request headers (a bearer token when the gateway asks for one).
fn metric_as(addr: SocketAddr, name: &str, headers: &[(&str, &str)]) -> f64 {
    let (status, text) = http(addr, "GET", "/metrics", headers, b"");
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn the_gateway_serves_calls_after_a_pause_from_a_fresh_standby_unless_told_not_to() {
    let setup = Setup::new();
    for (extra, standby) in [(&[][..], true), (&["--no-standby"][..], false)] {
        let server = setup.serve_http(extra);
        wait_for_tools(server.addr, 19);
        for _ in 0..3 {
            assert_eq!(count_over_http(server.addr), "1", "{extra:?}");
            // A pause, as between an agent's tool calls: the standby thread prepares the next instance.
            std::thread::sleep(Duration::from_millis(100));
        }
        let hits = metric(server.addr, "plughost_standby_hits_total");
        let ready = metric(server.addr, "plughost_instances_standby");
        if standby {
            assert!(
                hits >= 2.0,
                "the 2nd and 3rd calls came after a pause: {hits}"
            );
            assert!(ready >= 1.0, "one prepared for the next call: {ready}");
        } else {
            assert_eq!((hits, ready), (0.0, 0.0));
        }
    }
}

/// A stateless 2026-07-28 `tools/call` body for `name` with `arguments` and extra `_meta` entries.
fn stateless_call(name: &str, arguments: &str, extra_meta: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"{name}","arguments":{arguments},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}{extra_meta}}}}}}}"#
    )
}

/// The body of a raw HTTP answer as JSON, with the call report's timings (which differ from call to call) out.
fn answer_json(text: &str) -> Value {
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    without_timings(serde_json::from_str(body).unwrap_or(Value::String(body.to_string())))
}

fn fast_path_count(addr: SocketAddr) -> f64 {
    metric(addr, "plughost_http_fast_path_total")
}

#[test]
fn the_http_fast_path_answers_stateless_calls_as_rmcp_does_and_leaves_the_rest_to_it() {
    let (fast, slow) = (Setup::new(), Setup::new());
    let f = fast.serve_http(&[]);
    let s = slow.serve_http_env(&[], &[("PLUGHOST_HTTP_FAST_PATH", "0")]);
    let echo = "fixture-basic__echo";
    let standard = |name: &'static str| -> Vec<(&'static str, &'static str)> {
        vec![
            JSON,
            ACCEPT,
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", name),
        ]
    };
    let with = |mut h: Vec<(&'static str, &'static str)>, extra: (&'static str, &'static str)| {
        h.push(extra);
        h
    };
    let only_json = vec![
        JSON,
        ("Accept", "application/json"),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", echo),
    ];
    // (what, headers, body, answered by the fast path, expected status)
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        String,
        bool,
        u16,
    );
    let cases: Vec<Case> = vec![
        (
            "a call",
            standard(echo),
            stateless_call(echo, r#"{"text":"hi"}"#, ""),
            true,
            200,
        ),
        (
            "arguments against the schema",
            standard(echo),
            stateless_call(echo, r#"{"text":5}"#, ""),
            true,
            200,
        ),
        (
            "an unknown tool",
            standard("fixture-basic__nope"),
            stateless_call("fixture-basic__nope", "{}", ""),
            true,
            200,
        ),
        (
            "a management tool",
            standard("plughost__plugins"),
            stateless_call("plughost__plugins", "{}", ""),
            true,
            200,
        ),
        (
            "an Mcp-Name that is not the tool",
            standard("fixture-basic__other"),
            stateless_call(echo, r#"{"text":"hi"}"#, ""),
            false,
            400,
        ),
        (
            "a foreign Host",
            with(standard(echo), ("Host", "evil.example")),
            stateless_call(echo, r#"{"text":"hi"}"#, ""),
            false,
            403,
        ),
        (
            // rmcp compares hosts without case, and so does the fast path.
            "an allowed Host in upper case, with a port",
            with(standard(echo), ("Host", "LocalHost:80")),
            stateless_call(echo, r#"{"text":"hi"}"#, ""),
            true,
            200,
        ),
        (
            "a foreign Origin",
            with(standard(echo), ("Origin", "http://evil.example")),
            stateless_call(echo, r#"{"text":"hi"}"#, ""),
            false,
            403,
        ),
        (
            "an Accept without SSE",
            only_json,
            stateless_call(echo, r#"{"text":"hi"}"#, ""),
            false,
            406,
        ),
        (
            "a progress token",
            standard(echo),
            stateless_call(echo, r#"{"text":"hi"}"#, r#","progressToken":"p1""#),
            false,
            200,
        ),
        (
            "with the client's info",
            standard(echo),
            stateless_call(
                echo,
                r#"{"text":"hi"}"#,
                r#","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"2"}"#,
            ),
            true,
            200,
        ),
        (
            "a call as a JSON array (a batch to the envelope check; serde would read it)",
            standard(echo),
            format!(
                r#"["2.0",7,"tools/call",{}]"#,
                stateless_call(echo, r#"{"text":"hi"}"#, "")
                    .split_once(r#""params":"#)
                    .map(|(_, p)| &p[..p.len() - 1])
                    .unwrap_or_default()
            ),
            false,
            400,
        ),
        (
            "a call nested one level deeper than the envelope check allows",
            standard(echo),
            stateless_call(
                echo,
                &format!(
                    r#"{{"text":"hi","deep":{}1{}}}"#,
                    "[".repeat(125),
                    "]".repeat(125)
                ),
                "",
            ),
            false,
            400,
        ),
        (
            "client capabilities rmcp cannot read",
            standard(echo),
            stateless_call(echo, r#"{"text":"hi"}"#, "").replace(
                r#"clientCapabilities":{}"#,
                r#"clientCapabilities":{"roots":5}"#,
            ),
            false,
            400,
        ),
    ];
    for (what, headers, body, by_fast_path, status) in &cases {
        let before = fast_path_count(f.addr);
        let (fs, ft) = http(f.addr, "POST", "/mcp", headers, body.as_bytes());
        let (ss, st) = http(s.addr, "POST", "/mcp", headers, body.as_bytes());
        assert_eq!((fs, ss), (*status, *status), "{what}: {ft}\n---\n{st}");
        assert_eq!(
            answer_json(&ft),
            answer_json(&st),
            "{what}: the two paths answer differently"
        );
        let taken = fast_path_count(f.addr) - before;
        assert_eq!(taken, if *by_fast_path { 1.0 } else { 0.0 }, "{what}: {ft}");
    }
    assert_eq!(
        fast_path_count(s.addr),
        0.0,
        "PLUGHOST_HTTP_FAST_PATH=0 turns it off"
    );
    // The successful call's answer is the echo, and both ledgers record it as made by the same caller.
    assert!(
        answer_json(
            &http(
                f.addr,
                "POST",
                "/mcp",
                &standard(echo),
                stateless_call(echo, r#"{"text":"hi"}"#, "").as_bytes()
            )
            .1
        )
        .to_string()
        .contains("hi")
    );
    let (fc, sc) = (echo_callers(&fast), echo_callers(&slow));
    assert!(!sc.is_empty(), "the echo calls are ledgered");
    assert_eq!(sc[0]["caller"]["transport"], "http", "{sc:?}");
    assert!(sc[0]["caller"]["session"].is_string(), "{sc:?}");
    // A call that names its client in `_meta` is ledgered under that name, on both paths.
    assert_eq!(
        sc.iter()
            .filter(|c| c["caller"]["session"] == "raw 2")
            .count(),
        1,
        "{sc:?}"
    );
    assert_eq!(
        fc[..sc.len()],
        sc[..],
        "the fast path ledgers its calls as rmcp's path does"
    );
}

/// The front door (`http.rs`) authenticates a request whose headers ask for the fast path itself, then answers it
/// or, when its body does not take the fast path, hands it on to the router marked as authenticated. Each case goes
/// to a server with it and one without (`PLUGHOST_HTTP_FAST_PATH=0`, the router alone): the same status, refusal
/// header and answer, the same principal in the ledger, and the fast path's counter moves for exactly its cases.
#[test]
fn the_http_front_door_authenticates_as_the_router_does() {
    let (fast, slow) = (Setup::new(), Setup::new());
    let operator_file = fast.work.path().join("operator-token");
    std::fs::write(&operator_file, "operator-s3cret\n").expect("token file");
    let operator = ["--token-file", operator_file.to_str().expect("utf-8")];
    // Each data dir gets its own client tokens: one for the echo, one for another tool only.
    let mut agent = Vec::new();
    let mut other = Vec::new();
    for setup in [&fast, &slow] {
        agent.push(create_token(
            setup,
            &["agent", "--tools", "fixture-basic__echo"],
        ));
        other.push(create_token(
            setup,
            &["other", "--tools", "system-info__system_info"],
        ));
    }
    let f = fast.serve_http(&operator);
    let s = slow.serve_http_env(&operator, &[("PLUGHOST_HTTP_FAST_PATH", "0")]);
    let echo = "fixture-basic__echo";
    let call = stateless_call(echo, r#"{"text":"hi"}"#, "");
    let with_progress = stateless_call(echo, r#"{"text":"hi"}"#, r#","progressToken":"p1""#);
    // (what, bearer for the fast server, for the slow one, body, answered by the fast path, status)
    type Case<'a> = (&'a str, Option<String>, Option<String>, &'a str, bool, u16);
    let unknown = "Bearer plughost_0000000000000000000000000000000000000000000000".to_string();
    let bearer = |t: &str| format!("Bearer {t}");
    let cases: Vec<Case> = vec![
        ("no token", None, None, &call, false, 401),
        (
            "a token not known here",
            Some(unknown.clone()),
            Some(unknown),
            &call,
            false,
            401,
        ),
        (
            "a token for another tool",
            Some(bearer(&other[0])),
            Some(bearer(&other[1])),
            &call,
            true,
            200,
        ),
        (
            "the agent's call",
            Some(bearer(&agent[0])),
            Some(bearer(&agent[1])),
            &call,
            true,
            200,
        ),
        (
            "the agent's call with a progress token (on to the router)",
            Some(bearer(&agent[0])),
            Some(bearer(&agent[1])),
            &with_progress,
            false,
            200,
        ),
    ];
    let count = |addr: SocketAddr| {
        metric_as(
            addr,
            "plughost_http_fast_path_total",
            &[("Authorization", "Bearer operator-s3cret")],
        )
    };
    // The refusal's header names the server's own address: compare it with the address out.
    let www_authenticate = |text: &str, addr: SocketAddr| {
        text.lines()
            .find(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"))
            .map(|l| l.replace(&addr.to_string(), "ADDR"))
    };
    for (what, fb, sb, body, by_fast_path, status) in &cases {
        let headers = |b: &Option<String>| {
            let mut h: Vec<(&str, String)> = vec![
                (JSON.0, JSON.1.to_string()),
                (ACCEPT.0, ACCEPT.1.to_string()),
                ("MCP-Protocol-Version", "2026-07-28".into()),
                ("Mcp-Method", "tools/call".into()),
                ("Mcp-Name", echo.into()),
            ];
            if let Some(b) = b {
                h.push(("Authorization", b.clone()));
            }
            h
        };
        let (fo, so) = (headers(fb), headers(sb));
        let fh: Vec<(&str, &str)> = fo.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let sh: Vec<(&str, &str)> = so.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let before = count(f.addr);
        let (fs, ft) = http(f.addr, "POST", "/mcp", &fh, body.as_bytes());
        let (ss, st) = http(s.addr, "POST", "/mcp", &sh, body.as_bytes());
        assert_eq!((fs, ss), (*status, *status), "{what}: {ft}\n---\n{st}");
        assert_eq!(
            answer_json(&ft),
            answer_json(&st),
            "{what}: the answers differ"
        );
        assert_eq!(
            www_authenticate(&ft, f.addr),
            www_authenticate(&st, s.addr),
            "{what}: the refusals differ"
        );
        if *status == 401 {
            assert!(www_authenticate(&ft, f.addr).is_some(), "{what}: {ft}");
        }
        let taken = count(f.addr) - before;
        assert_eq!(taken, if *by_fast_path { 1.0 } else { 0.0 }, "{what}: {ft}");
    }
    // Both ledgers record the same calls under the same principals: the agent's two (one answered by the fast path,
    // one handed on to the router) and the other token's refusal.
    let principals = |setup: &Setup| -> Vec<(Value, Value)> {
        ledger_entries(setup)
            .into_iter()
            .filter(|e| e["tool"] == "echo")
            .map(|e| (e["caller"]["principal"].clone(), e["outcome"].clone()))
            .collect()
    };
    let (fp, sp) = (principals(&fast), principals(&slow));
    assert_eq!(sp.iter().filter(|(p, _)| p == "agent").count(), 2, "{sp:?}");
    assert_eq!(sp.iter().filter(|(p, _)| p == "other").count(), 1, "{sp:?}");
    assert_eq!(
        fp, sp,
        "the front door ledgers the principals the router does"
    );
}

/// The JSON-RPC message of a raw HTTP answer, plain JSON or the SSE `data:` line that holds one, with the call
/// report's timings out.
fn rpc_answer(text: &str) -> Value {
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let message = serde_json::from_str(body.trim()).ok().or_else(|| {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("id").is_some())
    });
    without_timings(message.unwrap_or(Value::String(body.to_string())))
}

/// A `tools/call` in a 2025-era session (rmcp answers it on an SSE stream) takes the fast path when it stands as
/// rmcp would take it: the same JSON-RPC answer, as plain JSON, the same ledger record under the session's id, and
/// the fast path's counter moves for exactly its cases. The Python SDK's session calls take it too
/// (`python_sdk_over_http_in_both_protocol_eras`).
#[test]
fn the_http_fast_path_answers_session_calls_as_rmcp_does() {
    let (fast, slow) = (Setup::new(), Setup::new());
    let f = fast.serve_http(&[]);
    let s = slow.serve_http_env(&[], &[("PLUGHOST_HTTP_FAST_PATH", "0")]);
    let (fsession, ssession) = (open_http_session(f.addr), open_http_session(s.addr));
    let echo = "fixture-basic__echo";
    let call = |name: &str, arguments: &str, meta: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"{name}","arguments":{arguments}{meta}}}}}"#
        )
    };
    const VERSION: (&str, &str) = ("MCP-Protocol-Version", "2025-11-25");
    // (what, extra headers, body, the session header ("-" none, "?" one never issued), by the fast path, status)
    type Case = (
        &'static str,
        Vec<(&'static str, &'static str)>,
        String,
        &'static str,
        bool,
        u16,
    );
    let cases: Vec<Case> = vec![
        (
            "a call",
            vec![VERSION],
            call(echo, r#"{"text":"hi"}"#, ""),
            "",
            true,
            200,
        ),
        (
            "arguments against the schema",
            vec![VERSION],
            call(echo, r#"{"text":5}"#, ""),
            "",
            true,
            200,
        ),
        (
            "an unknown tool",
            vec![VERSION],
            call("fixture-basic__nope", "{}", ""),
            "",
            true,
            200,
        ),
        (
            "a management tool",
            vec![VERSION],
            call("plughost__plugins", "{}", ""),
            "",
            true,
            200,
        ),
        (
            "Mcp-Method and Mcp-Name that match",
            vec![VERSION, ("Mcp-Method", "tools/call"), ("Mcp-Name", echo)],
            call(echo, r#"{"text":"hi"}"#, ""),
            "",
            true,
            200,
        ),
        (
            // rmcp does not hold a session's request to these headers; the fast path leaves it to rmcp.
            "an Mcp-Name that is not the tool",
            vec![VERSION, ("Mcp-Name", "fixture-basic__other")],
            call(echo, r#"{"text":"hi"}"#, ""),
            "",
            false,
            200,
        ),
        (
            "a progress token",
            vec![VERSION],
            call(
                echo,
                r#"{"text":"hi"}"#,
                r#","_meta":{"progressToken":"p1"}"#,
            ),
            "",
            false,
            200,
        ),
        (
            "no MCP-Protocol-Version (rmcp reads it as 2025-03-26)",
            vec![],
            call(echo, r#"{"text":"hi"}"#, ""),
            "",
            true,
            200,
        ),
        (
            "a 2026-07-28 MCP-Protocol-Version in a session",
            vec![("MCP-Protocol-Version", "2026-07-28")],
            call(echo, r#"{"text":"hi"}"#, ""),
            "",
            false,
            400,
        ),
        (
            "a session never issued",
            vec![VERSION],
            call(echo, r#"{"text":"hi"}"#, ""),
            "?",
            false,
            404,
        ),
        (
            "a foreign Origin",
            vec![VERSION, ("Origin", "http://evil.example")],
            call(echo, r#"{"text":"hi"}"#, ""),
            "",
            false,
            403,
        ),
    ];
    for (what, extra, body, which, by_fast_path, status) in &cases {
        let headers = |session: &str| -> Vec<(&str, String)> {
            let mut h: Vec<(&str, String)> =
                vec![(JSON.0, JSON.1.into()), (ACCEPT.0, ACCEPT.1.into())];
            h.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
            match *which {
                "" => h.push(("Mcp-Session-Id", session.into())),
                "?" => h.push(("Mcp-Session-Id", "never-issued".into())),
                _ => {}
            }
            h
        };
        let (fo, so) = (headers(&fsession), headers(&ssession));
        let fh: Vec<(&str, &str)> = fo.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let sh: Vec<(&str, &str)> = so.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let before = fast_path_count(f.addr);
        let (fs, ft) = http(f.addr, "POST", "/mcp", &fh, body.as_bytes());
        let (ss, st) = http(s.addr, "POST", "/mcp", &sh, body.as_bytes());
        assert_eq!((fs, ss), (*status, *status), "{what}: {ft}\n---\n{st}");
        assert_eq!(
            rpc_answer(&ft),
            rpc_answer(&st),
            "{what}: the two paths answer differently"
        );
        let taken = fast_path_count(f.addr) - before;
        assert_eq!(taken, if *by_fast_path { 1.0 } else { 0.0 }, "{what}: {ft}");
        if *by_fast_path {
            assert!(
                ft.to_ascii_lowercase()
                    .contains("content-type: application/json"),
                "{what}: {ft}"
            );
        }
    }
    // Both ledgers hold the same calls, each under its own session's id.
    let (fc, sc) = (echo_callers(&fast), echo_callers(&slow));
    let renamed = |calls: Vec<Value>, session: &str| -> Vec<Value> {
        calls
            .into_iter()
            .map(|mut c| {
                assert_eq!(c["caller"]["session"], session, "{c}");
                c["caller"]["session"] = "SESSION".into();
                c
            })
            .collect()
    };
    assert_eq!(sc.len(), 6, "{sc:?}");
    assert_eq!(
        renamed(fc, &fsession),
        renamed(sc, &ssession),
        "the fast path ledgers session calls as rmcp's path does"
    );
    // A session that ended (DELETE) is rmcp's to refuse, on the fast path's server too.
    let end = [("Mcp-Session-Id", fsession.as_str()), VERSION];
    assert_eq!(http(f.addr, "DELETE", "/mcp", &end, b"").0, 204);
    let mut h = vec![JSON, ACCEPT];
    h.extend(end);
    let before = fast_path_count(f.addr);
    let (status, text) = http(
        f.addr,
        "POST",
        "/mcp",
        &h,
        call(echo, r#"{"text":"hi"}"#, "").as_bytes(),
    );
    assert_eq!(status, 404, "{text}");
    assert_eq!(fast_path_count(f.addr), before, "{text}");
}

/// Who made each ledgered echo call, and its outcome.
fn echo_callers(setup: &Setup) -> Vec<Value> {
    ledger_entries(setup)
        .into_iter()
        .filter(|e| e["tool"] == "echo")
        .map(|e| json_pick(&e, &["caller", "outcome"]))
        .collect()
}

/// The named fields of an object (a missing one as null), so two entries compare on them alone.
fn json_pick(v: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|k| (k.to_string(), v.get(*k).cloned().unwrap_or(Value::Null)))
            .collect(),
    )
}

/// An answer with the call report's timings (which differ from call to call) out.
fn without_timings(mut v: Value) -> Value {
    if let Some(report) = v
        .pointer_mut("/result/_meta/plughost~1report")
        .and_then(Value::as_object_mut)
    {
        report.retain(|k, _| !k.contains("time") && !k.contains("ms") && !k.ends_with("_at"));
    }
    v
}

/// Sends each case's `tools/call` to `f` (the stdio fast path on) and `s` (off): both must answer alike (report
/// timings aside), and the fast path must count exactly the cases marked for it. Then a call sent just before stdin
/// closes (`last`'s params) must be answered before each server exits. Returns the answer to the case "a call".
fn same_answers_on_both_stdio_paths(
    mut f: RawStdio,
    mut s: RawStdio,
    cases: Vec<(&str, Value, bool)>,
    last: Value,
) -> Value {
    let mut call = Value::Null;
    for (n, (what, params, by_fast_path)) in cases.into_iter().enumerate() {
        let id = 10 + n as u64;
        let before = f.fast_calls();
        let (fa, sa) = (f.call(id, params.clone()), s.call(id, params));
        assert_eq!(
            without_timings(fa.clone()),
            without_timings(sa.clone()),
            "{what}: the two paths answer differently"
        );
        assert_eq!(
            f.fast_calls() - before,
            usize::from(by_fast_path),
            "{what}: {fa}"
        );
        if what == "a call" {
            call = fa;
        }
    }
    assert_eq!(s.fast_calls(), 0, "PLUGHOST_STDIO_FAST_PATH=0 turns it off");
    let last =
        serde_json::json!({"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": last});
    f.send(&last);
    s.send(&last);
    for (path, rest) in [("fast", f.close()), ("rmcp", s.close())] {
        let answered = rest.iter().find(|v| v["id"] == 99);
        assert_eq!(
            answered.map(|v| v["result"]["content"][0]["text"].clone()),
            Some(Value::from("last")),
            "{path}: {rest:?}"
        );
    }
    call
}

#[test]
fn the_stdio_fast_path_answers_calls_as_rmcp_does_and_leaves_the_rest_to_it() {
    let (fast, slow) = (Setup::new(), Setup::new());
    let f = RawStdio::open(&fast, &[]);
    let s = RawStdio::open(&slow, &[("PLUGHOST_STDIO_FAST_PATH", "0")]);
    let echo = "fixture-basic__echo";
    // (what, params, answered by the fast path)
    let cases: Vec<(&str, Value, bool)> = vec![
        (
            "a call",
            serde_json::json!({"name": echo, "arguments": {"text": "hi"}}),
            true,
        ),
        (
            "arguments against the schema",
            serde_json::json!({"name": echo, "arguments": {"text": 5}}),
            true,
        ),
        ("no arguments", serde_json::json!({"name": echo}), true),
        // Not taken whole from the line, but plain once rmcp has parsed it (`offer`).
        (
            "a field rmcp ignores",
            serde_json::json!({"name": echo, "arguments": {"text": "x"}, "extra": 1}),
            true,
        ),
        (
            "an unknown tool",
            serde_json::json!({"name": "fixture-basic__nope", "arguments": {}}),
            true,
        ),
        (
            "a management tool",
            serde_json::json!({"name": "plughost__plugins", "arguments": {}}),
            true,
        ),
        (
            "a progress token",
            serde_json::json!({"name": echo, "arguments": {"text": "hi"}, "_meta": {"progressToken": "p1"}}),
            false,
        ),
    ];
    let call = same_answers_on_both_stdio_paths(
        f,
        s,
        cases,
        serde_json::json!({"name": echo, "arguments": {"text": "last"}}),
    );
    assert_eq!(call["result"]["content"][0]["text"], "hi", "{call}");
    let (fc, sc) = (echo_callers(&fast), echo_callers(&slow));
    assert_eq!(sc.len(), 6, "the echo calls are ledgered: {sc:?}");
    assert_eq!(sc[0]["caller"]["transport"], "stdio", "{sc:?}");
    assert_eq!(sc[0]["caller"]["session"], "raw 1", "{sc:?}");
    assert_eq!(
        fc, sc,
        "the fast path ledgers its calls as rmcp's path does"
    );
}

#[test]
fn the_stdio_fast_path_answers_2026_07_28_calls_as_rmcp_does_and_leaves_the_rest_to_it() {
    let (fast, slow) = (Setup::new(), Setup::new());
    let mut f = RawStdio::spawn(&fast, &[]);
    let mut s = RawStdio::spawn(&slow, &[("PLUGHOST_STDIO_FAST_PATH", "0")]);
    // A bootstrap probe chooses no lifecycle; both answer it.
    let discover = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}}}});
    f.send(&discover);
    s.send(&discover);
    assert_eq!(f.answer(1), s.answer(1), "server/discover");
    let echo = "fixture-basic__echo";
    let meta = |extra: Value| {
        let mut m = serde_json::json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            m[k] = v.clone();
        }
        m
    };
    let plain = meta(serde_json::json!({}));
    // (what, params, answered by the fast path)
    let cases: Vec<(&str, Value, bool)> = vec![
        // The first request with complete `_meta` makes rmcp choose the 2026-07-28 lifecycle: rmcp's own.
        (
            "the first call",
            serde_json::json!({"name": echo, "arguments": {"text": "first"}, "_meta": plain}),
            false,
        ),
        (
            "a call",
            serde_json::json!({"name": echo, "arguments": {"text": "hi"}, "_meta": plain}),
            true,
        ),
        (
            "with the client's info",
            serde_json::json!({"name": echo, "arguments": {"text": "hi"}, "_meta": meta(serde_json::json!(
                {"io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "2"}}))}),
            true,
        ),
        (
            "arguments against the schema",
            serde_json::json!({"name": echo, "arguments": {"text": 5}, "_meta": plain}),
            true,
        ),
        (
            "an unknown tool",
            serde_json::json!({"name": "fixture-basic__nope", "arguments": {}, "_meta": plain}),
            true,
        ),
        (
            "a management tool",
            serde_json::json!({"name": "plughost__plugins", "arguments": {}, "_meta": plain}),
            true,
        ),
        // Not taken whole from the line, but plain once rmcp has parsed it (`offer`).
        (
            "a field rmcp ignores",
            serde_json::json!({"name": echo, "arguments": {"text": "x"}, "extra": 1, "_meta": plain}),
            true,
        ),
        (
            "no _meta",
            serde_json::json!({"name": echo, "arguments": {"text": "hi"}}),
            false,
        ),
        (
            "client capabilities rmcp cannot read",
            serde_json::json!({"name": echo, "arguments": {"text": "hi"}, "_meta": meta(serde_json::json!(
                {"io.modelcontextprotocol/clientCapabilities": {"roots": 5}}))}),
            false,
        ),
        (
            "an older version in _meta",
            serde_json::json!({"name": echo, "arguments": {"text": "hi"}, "_meta": meta(serde_json::json!(
                {"io.modelcontextprotocol/protocolVersion": "2025-11-25"}))}),
            false,
        ),
        (
            "a progress token",
            serde_json::json!({"name": echo, "arguments": {"text": "hi"},
                "_meta": meta(serde_json::json!({"progressToken": "p1"}))}),
            false,
        ),
    ];
    let call = same_answers_on_both_stdio_paths(
        f,
        s,
        cases,
        serde_json::json!({"name": echo, "arguments": {"text": "last"}, "_meta": plain}),
    );
    assert_eq!(call["result"]["content"][0]["text"], "hi", "{call}");
    assert_eq!(call["result"]["resultType"], "complete", "{call}");
    let (fc, sc) = (echo_callers(&fast), echo_callers(&slow));
    assert!(sc.len() >= 6, "the echo calls are ledgered: {sc:?}");
    assert_eq!(sc[0]["caller"]["transport"], "stdio", "{sc:?}");
    // Only the call that names its client in `_meta` has a session name; the others have none.
    let named: Vec<&Value> = sc.iter().map(|c| &c["caller"]["session"]).collect();
    assert_eq!(named.iter().filter(|s| **s == "raw 2").count(), 1, "{sc:?}");
    assert!(
        named.iter().all(|s| **s == "raw 2" || s.is_null()),
        "{sc:?}"
    );
    assert_eq!(
        fc, sc,
        "the fast path ledgers its calls as rmcp's path does"
    );
}

#[test]
fn stdio_fast_calls_run_side_by_side_and_a_cancelled_one_is_not_answered() {
    let setup = Setup::new();
    setup.spin_for_a_minute();
    let mut s = RawStdio::open(&setup, &[]);
    s.send(
        &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "fixture-basic__spin", "arguments": {}}}),
    );
    // The echo is answered while the spin still runs.
    let echo = s.call(
        2,
        serde_json::json!({"name": "fixture-basic__echo", "arguments": {"text": "beside"}}),
    );
    assert_eq!(echo["result"]["content"][0]["text"], "beside", "{echo}");
    assert_eq!(s.fast_calls(), 2, "both calls took the fast path");
    s.send(
        &serde_json::json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 1, "reason": "enough"}}),
    );
    let rest = s.close();
    assert!(
        rest.iter().all(|v| v["id"] != 1),
        "a cancelled request is not answered: {rest:?}"
    );
    let spin: Vec<Value> = ledger_entries(&setup)
        .into_iter()
        .filter(|e| e["tool"] == "spin")
        .collect();
    assert_eq!(spin.len(), 1, "{spin:?}");
    assert_eq!(spin[0]["outcome"], "cancelled", "{spin:?}");
    let us = spin[0]["duration_us"].as_u64().expect("duration");
    assert!(
        us < 30_000_000,
        "stopped by the cancel, not its deadline: {us} µs"
    );
}

/// rmcp's session worker closes a quiet session, but only hears the requests rmcp takes: a session's calls take the
/// fast path only while rmcp has taken one of its requests within `--session-idle`, the next goes to rmcp (which
/// restarts its timer), and a session with no traffic still closes (here within twice `--session-idle`).
#[test]
fn http_sessions_close_when_idle_with_the_fast_path_on() {
    let setup = Setup::new();
    let server = setup.serve_http(&["--session-idle", "1s"]);
    let a = server.addr;
    let session = open_http_session(a);
    let headers = [
        JSON,
        ACCEPT,
        ("MCP-Protocol-Version", "2025-11-25"),
        ("Mcp-Session-Id", session.as_str()),
    ];
    let body = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"fixture-basic__echo","arguments":{"text":"hi"}}}"#;
    let call = || {
        let before = fast_path_count(a);
        let (status, text) = http(a, "POST", "/mcp", &headers, body.as_bytes());
        (status, fast_path_count(a) - before, text)
    };
    // Just after `notifications/initialized` (which rmcp took): the fast path.
    let (status, fast, text) = call();
    assert_eq!((status, fast), (200, 1.0), "{text}");
    // Past --session-idle since rmcp last took a request of it: rmcp takes the call.
    std::thread::sleep(Duration::from_millis(1300));
    let (status, fast, text) = call();
    assert_eq!((status, fast), (200, 0.0), "{text}");
    assert!(text.contains("hi"), "{text}");
    // And the next takes the fast path again.
    let (status, fast, text) = call();
    assert_eq!((status, fast), (200, 1.0), "{text}");
    // No traffic for over twice --session-idle: the session is gone.
    std::thread::sleep(Duration::from_millis(3500));
    let (status, fast, text) = call();
    assert_eq!((status, fast), (404, 0.0), "{text}");
}
