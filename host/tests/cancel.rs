//! Cancellation: a client's `notifications/cancelled`, or an HTTP client hanging up, stops the guest of the call it names (through the epoch
//! mechanism), the call is ledgered as `cancelled` with what it used, and the next call is served.

mod common;
use common::*;

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

#[test]
fn a_cancelled_call_stops_its_guest_and_is_ledgered_as_cancelled() {
    let setup = Setup::new();
    setup.spin_for_a_minute();
    let mut s = RawStdio::open(&setup, &[]);
    s.send(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "fixture-basic__spin", "arguments": {}}}));
    std::thread::sleep(Duration::from_millis(500));
    s.send(
        &json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": {"requestId": 2, "reason": "the user gave up"}}),
    );
    // The next call is served (the spinning guest no longer holds a worker).
    let next = s.call(
        3,
        json!({"name": "fixture-basic__echo", "arguments": {"text": "next"}}),
    );
    assert_eq!(next["result"]["content"][0]["text"], "next", "{next}");
    // Closing stdin ends the stdio session; the cancelled call is never answered.
    let rest = s.close();
    assert!(rest.iter().all(|v| v["id"] != 2), "{rest:?}");

    let spin: Vec<Value> = ledger_entries(&setup)
        .into_iter()
        .filter(|e| e["tool"] == "spin")
        .collect();
    let export = format!("{spin:?}");
    assert_eq!(spin.len(), 1, "{export}");
    let e = &spin[0];
    assert_eq!(e["outcome"], "cancelled", "{e}");
    assert!(
        e["fuel_used"].as_u64().unwrap_or(0) > 0,
        "it ran before it was cancelled: {e}"
    );
    // Stopped within the run's first seconds, not at its 60 s deadline.
    let us = e["duration_us"].as_u64().expect("duration");
    assert!(us < 10_000_000, "the guest ran {us} µs");
}

/// A 2026-07-28 client over HTTP that goes away mid-call (closes its connection) stops the guest the same way:
/// rmcp cancels the request's token when the response future is dropped, and the call is ledgered `cancelled`.
#[test]
fn an_http_client_that_disconnects_stops_its_call() {
    let setup = Setup::new();
    setup.spin_for_a_minute();
    let server = setup.serve_http(&[]);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "fixture-basic__spin", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}})
    .to_string();
    let mut s = std::net::TcpStream::connect(server.addr).expect("connect");
    write!(
        s,
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
         Mcp-Method: tools/call\r\nMcp-Name: fixture-basic__spin\r\nContent-Length: {}\r\n\r\n{body}",
        server.addr,
        body.len()
    )
    .expect("send");
    std::thread::sleep(Duration::from_millis(500));
    s.shutdown(std::net::Shutdown::Both).expect("hang up");
    drop(s);

    // The call is ledgered once the guest has stopped.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let spin = loop {
        let found: Vec<Value> = ledger_entries(&setup)
            .into_iter()
            .filter(|e| e["tool"] == "spin")
            .collect();
        if !found.is_empty() || std::time::Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        spin.len(),
        1,
        "the abandoned call was not ledgered: {spin:?}"
    );
    assert_eq!(spin[0]["outcome"], "cancelled", "{}", spin[0]);
    let us = spin[0]["duration_us"].as_u64().expect("duration");
    assert!(
        us < 10_000_000,
        "the guest ran {us} µs after its client left"
    );

    // The next client is served.
    let (status, text) = http(
        server.addr,
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", "tools/call"),
            ("Mcp-Name", "fixture-basic__echo"),
        ],
        body.replace("fixture-basic__spin", "fixture-basic__echo")
            .replace("\"arguments\":{}", "\"arguments\":{\"text\":\"next\"}")
            .as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("next"), "{text}");
}

/// Starts `fixture-basic__spin` as call `id` of `session` on a connection of its own (left open).
fn start_spin(addr: std::net::SocketAddr, session: &str, id: u64) -> std::net::TcpStream {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "fixture-basic__spin", "arguments": {}}})
    .to_string();
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let mut head = format!("POST /mcp HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in session_headers(session) {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(s, "{head}Content-Length: {}\r\n\r\n{body}", body.len()).expect("send");
    s
}

/// The spin calls in the ledger, once there are `n` of them (or 30 s have passed).
fn spins(setup: &Setup, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found: Vec<Value> = ledger_entries(setup)
            .into_iter()
            .filter(|e| e["tool"] == "spin")
            .collect();
        if found.len() >= n || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A call in a 2025-era HTTP session that the fast path runs (fast.rs) is stopped by the session's
/// `notifications/cancelled`, which rmcp receives; a client that only goes away does not stop it (in that era a
/// disconnect is not a cancellation), and the call runs to its deadline, ledgered.
#[test]
fn a_session_call_on_the_http_fast_path_stops_on_notifications_cancelled_not_on_a_hang_up() {
    let setup = Setup::new();
    setup.ok(&[
        "limits",
        "fixture-basic",
        "--fuel",
        "1000000000000",
        "--timeout",
        "3s",
    ]);
    let server = setup.serve_http(&[]);
    let session = open_http_session(server.addr);
    let fast = |addr| {
        let (status, text) = http(addr, "GET", "/metrics", &[], b"");
        assert_eq!(status, 200, "{text}");
        text.lines()
            .find_map(|l| {
                l.strip_prefix("plughost_http_fast_path_total ")?
                    .parse::<f64>()
                    .ok()
            })
            .expect("the fast path's counter")
    };
    let before = fast(server.addr);
    let s = start_spin(server.addr, &session, 2);
    std::thread::sleep(Duration::from_millis(500));
    let (status, text) = http(
        server.addr,
        "POST",
        "/mcp",
        &session_headers(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 2, "reason": "the user gave up"}})
        .to_string()
        .as_bytes(),
    );
    assert_eq!(status, 202, "{text}");
    let spin = spins(&setup, 1);
    assert_eq!(spin.len(), 1, "{spin:?}");
    assert_eq!(spin[0]["outcome"], "cancelled", "{}", spin[0]);
    let us = spin[0]["duration_us"].as_u64().expect("duration");
    assert!(us < 2_500_000, "the guest ran {us} µs, to its deadline");
    assert_eq!(
        fast(server.addr) - before,
        1.0,
        "the spin took the fast path"
    );
    drop(s.shutdown(std::net::Shutdown::Both));

    // Hung up on, the next spin runs on to its 3 s deadline.
    let s = start_spin(server.addr, &session, 3);
    std::thread::sleep(Duration::from_millis(300));
    s.shutdown(std::net::Shutdown::Both).expect("hang up");
    drop(s);
    let spin = spins(&setup, 2);
    assert_eq!(spin.len(), 2, "{spin:?}");
    assert_eq!(spin[1]["outcome"], "deadline", "{}", spin[1]);
    assert_eq!(
        fast(server.addr) - before,
        2.0,
        "both spins took the fast path"
    );
}
