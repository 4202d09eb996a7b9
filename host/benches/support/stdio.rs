//! `plughost serve --stdio` driven as a simple line-reading client does: write one request line, read lines until
//! its reply.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The two top-level fields that tell a reply from other lines.
#[derive(serde::Deserialize)]
struct Top {
    id: Option<serde_json::Value>,
    method: Option<serde::de::IgnoredAny>,
}

pub struct StdioServer {
    pub child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    line: String,
    id: u64,
    /// 2026-07-28: no `initialize`; this `_meta` goes into every request's params.
    meta: Option<&'static str>,
}

/// The `_meta` a 2026-07-28 request carries.
const META: &str = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

impl StdioServer {
    /// Spawns the server and sends `initialize` and `notifications/initialized` at once (without waiting).
    pub fn spawn(home: &Path, extra: &[&str]) -> StdioServer {
        let mut s = StdioServer::start(home, extra);
        s.send(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#);
        s.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        s
    }

    /// Spawns the server for a 2026-07-28 client: no `initialize`, `_meta` in every request.
    #[allow(dead_code)] // the start-up bench shares this file and uses `spawn` only
    pub fn spawn_stateless(home: &Path, extra: &[&str]) -> StdioServer {
        let mut s = StdioServer::start(home, extra);
        s.meta = Some(META);
        s
    }

    fn start(home: &Path, extra: &[&str]) -> StdioServer {
        let mut child = Command::new(super::bin())
            .args(["serve", "--stdio"])
            .args(extra)
            .env("PLUGHOST_HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve --stdio");
        StdioServer {
            input: child.stdin.take().expect("stdin"),
            output: BufReader::new(child.stdout.take().expect("stdout")),
            child,
            line: String::new(),
            id: 0,
            meta: None,
        }
    }

    fn send(&mut self, line: &str) {
        self.input.write_all(line.as_bytes()).expect("write");
        self.input.write_all(b"\n").expect("write");
        self.input.flush().expect("flush");
    }

    /// Sends a request with the next id and returns its reply line.
    pub fn request(&mut self, method: &str, params: &str) -> &str {
        self.id += 1;
        let id = self.id;
        let params = match (self.meta, params.strip_prefix('{')) {
            (Some(meta), Some("}")) => format!(r#"{{"_meta":{meta}}}"#),
            (Some(meta), Some(rest)) => format!(r#"{{"_meta":{meta},{rest}"#),
            _ => params.to_string(),
        };
        self.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#
        ));
        loop {
            self.line.clear();
            let n = self.output.read_line(&mut self.line).expect("read");
            assert!(n > 0, "the server ended");
            // The reply is the line whose top-level `id` is ours and that has no top-level `method` (a request
            // from the server to the client carries both). Looked at as JSON: a tool's schema may well have a
            // property called "method".
            let top: Top = serde_json::from_str(&self.line).expect("a JSON-RPC line");
            if top.id == Some(id.into()) && top.method.is_none() {
                return &self.line;
            }
        }
    }

    /// The tools in the reply to the first `tools/list`.
    pub fn list_tools(&mut self) -> usize {
        let reply = self.request("tools/list", "{}");
        reply.matches("\"inputSchema\"").count()
    }

    /// One echo call; panics unless it succeeded. Returns its round trip.
    pub fn call(&mut self) -> Duration {
        let t = Instant::now();
        let reply = self.request(
            "tools/call",
            r#"{"name":"fixture-basic__echo","arguments":{"text":"hello"}}"#,
        );
        assert!(reply.contains("\"isError\":false"), "{reply}");
        t.elapsed()
    }

    /// Closes stdin (the server exits at EOF) and waits.
    pub fn close(self) {
        let StdioServer {
            mut child, input, ..
        } = self;
        drop(input);
        let _ = child.wait();
    }
}
