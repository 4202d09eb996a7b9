//! What the MCP tests share: the official Python SDK client, a data dir with fixtures installed, a gateway
//! served over HTTP on a free port.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use plughost_tests as fx;

pub const BIN: &str = env!("CARGO_BIN_EXE_plughost");

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The Python that has the official MCP SDK.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PLUGHOST_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let p = workspace().join("target/pyclient/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh (it creates target/pyclient with the MCP Python SDK)",
        p.display()
    );
    p
}

pub fn client_script() -> PathBuf {
    workspace().join("tests/mcp/client.py")
}

/// A data dir with fixture-basic (fuel-limited) and system-info installed and signed, and fixture-state-b
/// signed but not installed.
pub struct Setup {
    pub home: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Setup {
    pub fn new() -> Setup {
        let s = Setup {
            home: tempfile::tempdir().expect("home"),
            work: tempfile::tempdir().expect("work"),
        };
        s.ok(&["keys", "generate", "--name", "acme", "--trust"]);
        s.install(fx::BASIC, "basic.wasm", &["state", "log"]);
        s.install(fx::SYSTEM_INFO, "system-info.wasm", &["system"]);
        s.ok(&["limits", "fixture-basic", "--fuel", "5000000"]);
        s.signed(fx::STATE_B, "state-b.wasm", &["state"]);
        s.signed(fx::STATE_B_V2, "state-b-v2.wasm", &["state", "log"]);
        s
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("PLUGHOST_HOME", self.home.path())
            .env_remove("PLUGHOST_TOKEN")
            .env_remove("PLUGHOST_LOG")
            .current_dir(self.work.path())
            .stdin(Stdio::null());
        c
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.cmd(args).output().expect("run plughost");
        assert!(
            o.status.success(),
            "plughost {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn signed(&self, fixture: &str, name: &str, requests: &[&str]) -> PathBuf {
        let to = self.work.path().join(name);
        std::fs::copy(fixture, &to).expect("copy fixture");
        let mut args = vec!["sign", to.to_str().expect("utf-8"), "--key", "acme"];
        for r in requests {
            args.extend(["--request", r]);
        }
        self.ok(&args);
        to
    }

    pub fn install(&self, fixture: &str, name: &str, requests: &[&str]) {
        let path = self.signed(fixture, name, requests);
        self.ok(&["install", path.to_str().expect("utf-8"), "--yes"]);
    }

    /// Enough fuel and time for fixture-basic that `spin` would run for a minute if nothing stopped it.
    pub fn spin_for_a_minute(&self) {
        self.ok(&[
            "limits",
            "fixture-basic",
            "--fuel",
            "1000000000000",
            "--timeout",
            "60s",
        ]);
    }

    pub fn path(&self, name: &str) -> String {
        self.work.path().join(name).to_str().expect("utf-8").into()
    }

    pub fn home(&self) -> &str {
        self.home.path().to_str().expect("utf-8")
    }

    /// `plughost serve --http 127.0.0.1:0 …`, waiting for the line that names the address.
    pub fn serve_http(&self, extra: &[&str]) -> Server {
        self.serve_http_env(extra, &[])
    }

    /// `serve_http` with extra environment variables for the server.
    pub fn serve_http_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut args = vec![
            "serve",
            "--http",
            "127.0.0.1:0",
            "--watch-interval",
            "100ms",
        ];
        args.extend_from_slice(extra);
        let mut cmd = self.cmd(&args);
        cmd.envs(env.iter().copied());
        spawn_server(cmd)
    }
}

/// Spawns `cmd`, a `plughost serve --http …`, and waits for the line that names its address.
pub fn spawn_server(mut cmd: Command) -> Server {
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("plughost: MCP at http://") {
                let addr = rest.split('/').next().unwrap_or_default().to_string();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server printed its address");
    Server {
        child,
        addr: addr.parse().expect("socket address"),
    }
}

pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run_python(args: &[&str]) -> Output {
    run_python_env(args, &[])
}

/// [`run_python`] with more environment (`PLUGHOST_SERVER_LOG` sets a stdio server's `PLUGHOST_LOG`; its stderr
/// comes out in the client's).
pub fn run_python_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(python())
        .arg(client_script())
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run the Python MCP client");
    eprintln!(
        "--- client {args:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// One HTTP/1.1 request over a fresh connection; returns (status, headers+body as text).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).expect("write head");
    // The server may answer (413) before reading a large body; a reset then is fine.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    (status, text)
}

/// Every ledger entry, as `plughost ledger export` writes it (one JSON value per line).
pub fn ledger_entries(setup: &Setup) -> Vec<serde_json::Value> {
    setup
        .ok(&["ledger", "export"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// The Python SDK's `scoped` checks with `token`, in both protocol eras: it sees exactly `allowed`, calls
/// `fixture-basic__echo`, is refused `fixture-basic__spin`; `extra` adds checks (`--docs`, `--hidden-doc`).
pub fn scoped_client_checks(url: &str, token: &str, allowed: &str, extra: &[&str]) {
    for mode in ["legacy", "2026-07-28"] {
        let mut args = vec![
            "scoped",
            "--url",
            url,
            "--token",
            token,
            "--mode",
            mode,
            "--allowed",
            allowed,
            "--call",
            "fixture-basic__echo",
            "--args",
            r#"{"text": "hi"}"#,
            "--denied",
            "fixture-basic__spin",
        ];
        args.extend_from_slice(extra);
        let out = run_python(&args);
        assert!(
            out.status.success(),
            "the Python client's checks failed ({mode})"
        );
    }
}

/// One stateless (2026-07-28) JSON-RPC request over Streamable HTTP on a fresh connection, with `token` as the
/// bearer if given and `capabilities` as the request's client capabilities; `name` goes in `Mcp-Name` (the tool,
/// or the task id for `tasks/*`; none if empty). Returns the JSON-RPC response.
pub fn rpc_2026(
    addr: SocketAddr,
    token: Option<&str>,
    method: &str,
    name: &str,
    mut params: serde_json::Value,
    capabilities: serde_json::Value,
) -> serde_json::Value {
    params["_meta"] = serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    });
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string();
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", method),
    ];
    if !name.is_empty() {
        headers.push(("Mcp-Name", name));
    }
    if let Some(b) = &bearer {
        headers.push(("Authorization", b));
    }
    let (status, text) = http(addr, "POST", "/mcp", &headers, body.as_bytes());
    let at = text
        .find("{\"jsonrpc\"")
        .unwrap_or_else(|| panic!("no JSON-RPC response (HTTP {status}): {text}"));
    serde_json::Deserializer::from_str(&text[at..])
        .into_iter::<serde_json::Value>()
        .next()
        .expect("a JSON value")
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {text}"))
}

/// `tools/call` of `tool` with `arguments` as [`rpc_2026`] sends it, with no client capabilities.
pub fn call_2026(
    addr: SocketAddr,
    token: Option<&str>,
    tool: &str,
    arguments: serde_json::Value,
) -> serde_json::Value {
    rpc_2026(
        addr,
        token,
        "tools/call",
        tool,
        serde_json::json!({"name": tool, "arguments": arguments}),
        serde_json::json!({}),
    )
}

/// `plughost tokens create ARGS…`: the token printed once.
pub fn create_token(setup: &Setup, args: &[&str]) -> String {
    let mut all = vec!["tokens", "create"];
    all.extend_from_slice(args);
    let out = setup.ok(&all);
    let token = out.trim().to_string();
    assert!(token.starts_with("plughost_") && token.len() > 40, "{out}");
    token
}

/// Runs `cmd` to its end with `input` on its stdin and its stdout and stderr captured.
pub fn run_with_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run plughost");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait plughost")
}

/// A stdio session opened as a raw client would (`initialize`, then `notifications/initialized`), its answers
/// collected by a reader thread, its stderr in a file.
pub struct RawStdio {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    answers: std::sync::mpsc::Receiver<serde_json::Value>,
    stderr: std::path::PathBuf,
}

impl RawStdio {
    /// `serve --stdio` with a 2025-11-25 session opened (`initialize`, `notifications/initialized`).
    pub fn open(setup: &Setup, env: &[(&str, &str)]) -> RawStdio {
        let mut s = RawStdio::spawn(setup, env);
        s.send(&serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}));
        s.answer(0);
        s.send(&serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s
    }

    /// `serve --stdio` with nothing sent yet (a 2026-07-28 client sends no `initialize`).
    pub fn spawn(setup: &Setup, env: &[(&str, &str)]) -> RawStdio {
        let stderr = std::path::PathBuf::from(setup.path(&format!("stderr-{}.log", env.len())));
        let mut cmd = setup.cmd(&["serve", "--stdio"]);
        cmd.env("PLUGHOST_LOG", "plughost::gateway::stdio_fast=debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn serve --stdio");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, answers) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v = serde_json::from_str::<serde_json::Value>(&line)
                    .unwrap_or_else(|e| panic!("a line that is not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        RawStdio {
            stdin: child.stdin.take(),
            child,
            answers,
            stderr,
        }
    }

    pub fn send(&mut self, v: &serde_json::Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{v}").expect("write");
        stdin.flush().expect("flush");
    }

    /// The answer to request `id` (answers to other ids that come first are dropped).
    pub fn answer(&mut self, id: u64) -> serde_json::Value {
        loop {
            let v = self
                .answers
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no answer to request {id}"));
            if v["id"] == id {
                return v;
            }
        }
    }

    pub fn call(&mut self, id: u64, params: serde_json::Value) -> serde_json::Value {
        self.send(&serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}));
        self.answer(id)
    }

    /// Calls the stdio fast path has taken so far (its debug line in stderr).
    pub fn fast_calls(&self) -> usize {
        std::fs::read_to_string(&self.stderr)
            .unwrap_or_default()
            .matches("stdio fast path: a call")
            .count()
    }

    /// Closes stdin and returns every answer written before the server exited.
    pub fn close(mut self) -> Vec<serde_json::Value> {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "serve --stdio exited with {status}");
        self.answers.try_iter().collect()
    }
}

/// The JSON headers of a POST in 2025-11-25 session `session`.
pub fn session_headers(session: &str) -> Vec<(&str, &str)> {
    vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2025-11-25"),
        ("Mcp-Session-Id", session),
    ]
}

/// Opens a 2025-11-25 session over HTTP (`initialize`, then `notifications/initialized`); its id.
pub fn open_http_session(addr: SocketAddr) -> String {
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;
    let (status, text) = http(
        addr,
        "POST",
        "/mcp",
        &[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ],
        init.as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
    let session = session_id_of(&text);
    let (status, text) = http(
        addr,
        "POST",
        "/mcp",
        &session_headers(&session),
        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(status, 202, "{text}");
    session
}

/// The `Mcp-Session-Id` header of a raw HTTP answer.
pub fn session_id_of(answer: &str) -> String {
    answer
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("mcp-session-id")
                .then(|| v.trim().to_string())
        })
        .expect("an Mcp-Session-Id header")
}
