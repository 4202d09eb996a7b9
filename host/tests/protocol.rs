//! Hostile protocol input gets a typed, bounded answer: raw stdio lines and raw HTTP against `plughost serve`
//! (an empty home is enough: these are the gateway's own answers).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_plughost");
/// How long to wait for any one reply before calling it lost (a bound on the wait, not a timing assertion).
const REPLY_WAIT: Duration = Duration::from_secs(60);

fn serve(home: &tempfile::TempDir, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("serve")
        .args(args)
        .env("PLUGHOST_HOME", home.path())
        .env_remove("PLUGHOST_TOKEN")
        .env_remove("PLUGHOST_LOG")
        .current_dir(home.path());
    c
}

fn initialize(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}})
}

fn deep(levels: usize) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":77,"method":"ping","params":{{"x":{}{}}}}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

fn error_code(reply: &Value) -> i64 {
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {reply}"))
}

#[test]
fn stdio_answers_every_bad_line() {
    let home = tempfile::tempdir().expect("home");
    let mut child = serve(&home, &["--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve --stdio");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).expect("stdout carries JSON lines only"));
        }
    });
    let mut stderr = child.stderr.take().expect("stderr");
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let send = |stdin: &mut std::process::ChildStdin, line: &[u8]| {
        stdin.write_all(line).expect("write");
        stdin.write_all(b"\n").expect("write");
        stdin.flush().expect("flush");
    };
    let next = || rx.recv_timeout(REPLY_WAIT).expect("a reply to every line");

    // Before the handshake, a malformed line.
    send(&mut stdin, b"{\"jsonrpc\": \"2.0\", \"id\": 1,");
    let r = next();
    assert_eq!((error_code(&r), &r["id"]), (-32700, &Value::Null), "{r}");

    send(&mut stdin, initialize(2).to_string().as_bytes());
    assert_eq!(next()["id"], 2);
    send(
        &mut stdin,
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );

    // A batch, a non-object, a wrong version (id recovered), nesting deeper than 128, a line over 16 MiB.
    send(&mut stdin, br#"[{"jsonrpc":"2.0","id":3,"method":"ping"}]"#);
    assert_eq!(error_code(&next()), -32600);
    send(&mut stdin, b"42");
    assert_eq!(error_code(&next()), -32600);
    send(&mut stdin, br#"{"jsonrpc":"1.0","id":"v","method":"ping"}"#);
    let r = next();
    assert_eq!((error_code(&r), &r["id"]), (-32600, &json!("v")), "{r}");
    send(&mut stdin, deep(200).as_bytes());
    let r = next();
    assert_eq!((error_code(&r), &r["id"]), (-32600, &Value::Null), "{r}");
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":8,"method":"ping","params":{{"x":"{}"}}}}"#,
        "a".repeat((16 << 20) + 1)
    );
    send(&mut stdin, huge.as_bytes());
    let r = next();
    assert_eq!(error_code(&r), -32600, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("16 MiB")
    );

    // The session still works, and bad params are invalid params with a message.
    send(
        &mut stdin,
        br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{}}"#,
    );
    let r = next();
    assert_eq!((error_code(&r), &r["id"]), (-32602, &json!(9)), "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("name"),
        "{r}"
    );
    send(&mut stdin,
        br#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"plughost__plugin_info","arguments":[1]}}"#,
    );
    let r = next();
    assert_eq!((error_code(&r), &r["id"]), (-32602, &json!(10)), "{r}");
    send(&mut stdin,
        br#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"plughost__plugin_info","arguments":{"id":"nope"}}}"#,
    );
    let r = next();
    assert_eq!(r["id"], 11);
    assert_eq!(r["result"]["isError"], true, "{r}");

    drop(stdin);
    let status = child.wait().expect("exit on EOF");
    assert!(status.success());
    let err = err.join().expect("stderr");
    assert!(
        err.matches("WARN").count() >= 6,
        "each refused line is a WARN:\n{err}"
    );
}

/// `serve --stdio 2>&1`: stderr is the same pipe as stdout, so the server keeps to tokio's stdio (non-blocking mode
/// belongs to the pipe, and its log lines share it). Replies and log lines arrive whole on the one pipe, and a
/// refusal's WARN is among them.
#[test]
fn stdio_works_when_stderr_is_the_same_pipe_as_stdout() {
    let home = tempfile::tempdir().expect("home");
    let mut child = Command::new("sh")
        .args(["-c", "exec \"$0\" serve --stdio 2>&1", BIN])
        .env("PLUGHOST_HOME", home.path())
        .env_remove("PLUGHOST_TOKEN")
        .env_remove("PLUGHOST_LOG")
        .current_dir(home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sh -c 'serve --stdio 2>&1'");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut logs = Vec::new();
    let mut reply = |id: Value| -> Value {
        loop {
            let line = rx.recv_timeout(REPLY_WAIT).expect("a reply");
            match serde_json::from_str::<Value>(&line) {
                Ok(v) if v["id"] == id => return v,
                Ok(v) => panic!("an unexpected message: {v}"),
                Err(_) => logs.push(line),
            }
        }
    };
    let send = |stdin: &mut std::process::ChildStdin, line: &[u8]| {
        stdin.write_all(line).expect("write");
        stdin.write_all(b"\n").expect("write");
        stdin.flush().expect("flush");
    };
    send(&mut stdin, initialize(1).to_string().as_bytes());
    assert_eq!(reply(json!(1))["result"]["serverInfo"]["name"], "plughost");
    send(
        &mut stdin,
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    send(&mut stdin, br#"{"jsonrpc":"1.0","id":2,"method":"ping"}"#);
    assert_eq!(error_code(&reply(json!(2))), -32600);
    send(
        &mut stdin,
        br#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
    );
    let tools = reply(json!(3));
    assert!(tools["result"]["tools"].as_array().is_some(), "{tools}");
    drop(stdin);
    assert!(child.wait().expect("exit on EOF").success());
    assert!(
        logs.iter()
            .any(|l| l.contains("WARN") && l.contains("refused")),
        "the refusal's WARN shares the pipe: {logs:?}"
    );
}

struct Http {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Http {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Http {
    fn start(home: &tempfile::TempDir, extra: &[&str]) -> Http {
        let mut args = vec!["--http", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = serve(home, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn serve --http");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("plughost: MCP at http://") {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(REPLY_WAIT)
            .expect("the server printed its address");
        Http {
            child,
            addr: addr.parse().expect("address"),
        }
    }

    /// One request on its own connection: (status, headers, body).
    fn request(
        &self,
        method: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String, String) {
        let mut s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(REPLY_WAIT)).expect("timeout");
        let mut head = format!(
            "{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("write");
        s.write_all(body).expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("a complete response");
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    fn post(&self, session: Option<&str>, body: &[u8]) -> (u16, String, String) {
        let mut h = vec![
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ];
        if let Some(s) = session {
            h.push(("Mcp-Session-Id", s));
        }
        self.request("POST", &h, body)
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

/// The JSON-RPC message of a response body (plain JSON, or the first SSE `data:` line that holds one).
fn message(body: &str) -> Value {
    if let Ok(v) = serde_json::from_str(body.trim()) {
        return v;
    }
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .find_map(|d| serde_json::from_str(d.trim()).ok())
        .unwrap_or_else(|| panic!("no JSON-RPC message in {body:?}"))
}

fn session_of(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("mcp-session-id:"))
        .map(|v| v.trim().to_string())
        .expect("an Mcp-Session-Id")
}

#[test]
fn http_answers_bad_bodies_with_json_rpc_errors() {
    let home = tempfile::tempdir().expect("home");
    let http = Http::start(&home, &[]);
    for (body, code) in [
        (b"{\"jsonrpc\": \"2.0\", \"id\":".to_vec(), -32700),
        (
            br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.to_vec(),
            -32600,
        ),
        (
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
            -32600,
        ),
        (deep(200).into_bytes(), -32600),
    ] {
        let (status, head, text) = http.post(None, &body);
        assert_eq!(status, 400, "{text}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert_eq!(error_code(&message(&text)), code, "{text}");
    }

    let (status, head, text) = http.post(None, initialize(1).to_string().as_bytes());
    assert_eq!(status, 200, "{text}");
    let session = session_of(&head);
    let (status, _, _) = http.post(
        Some(&session),
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(status, 202);
    let (_, _, text) = http.post(
        Some(&session),
        br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"arguments":{}}}"#,
    );
    let r = message(&text);
    assert_eq!(error_code(&r), -32602, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("name"),
        "{r}"
    );
    let (_, _, text) = http.post(
        Some(&session),
        br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"plughost__plugins","arguments":[]}}"#,
    );
    assert_eq!(error_code(&message(&text)), -32602, "{text}");
    let (_, _, text) = http.post(
        Some(&session),
        br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"plughost__plugin_info","arguments":{"id":"nope"}}}"#,
    );
    let r = message(&text);
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(r["result"].get("structuredContent").is_none(), "{r}");
}

#[test]
fn http_sessions_are_capped_and_their_memory_bounded() {
    const CAP: usize = 20;
    const FLOOD: usize = 1500;
    let home = tempfile::tempdir().expect("home");
    let http = Http::start(&home, &["--max-sessions", &CAP.to_string()]);
    // Warm up (first connections, lazily built state), then take the baseline.
    let (status, head, _) = http.post(None, initialize(0).to_string().as_bytes());
    assert_eq!(status, 200);
    let first = session_of(&head);
    let baseline = http.rss_kib();

    let (mut opened, mut refused) = (vec![first], 0);
    for i in 1..FLOOD {
        let (status, head, text) = http.post(None, initialize(i as u64).to_string().as_bytes());
        match status {
            200 => opened.push(session_of(&head)),
            503 => {
                refused += 1;
                let r = message(&text);
                assert_eq!(r["id"], i, "{r}");
                let m = r["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    m.contains(&CAP.to_string()) && m.contains("--max-sessions"),
                    "{m}"
                );
            }
            other => panic!("initialize #{i}: {other} {text}"),
        }
    }
    assert_eq!((opened.len(), refused), (CAP, FLOOD - CAP));
    let flooded = http.rss_kib();
    eprintln!("RSS baseline {baseline} KiB, after {FLOOD} initialize requests {flooded} KiB");
    // Unbounded, each session costs ~100 KiB: 1,500 of them would add ~150 MiB.
    assert!(
        flooded < baseline + 32 * 1024,
        "RSS grew from {baseline} KiB to {flooded} KiB"
    );

    // Ending a session frees its slot.
    let (status, _, _) = http.request("DELETE", &[("Mcp-Session-Id", &opened[0])], b"");
    assert!(status == 200 || status == 204, "{status}");
    let (status, _, text) = http.post(None, initialize(9999).to_string().as_bytes());
    assert_eq!(status, 200, "{text}");
}
