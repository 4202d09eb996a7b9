//! Load on the MCP gateway over Streamable HTTP: `tools/call` of a trivial tool (fixture-basic's echo) from 1, 8 and
//! 32 concurrent clients, each on its own keep-alive connection, as 2026-07-28 (stateless) requests.
//!
//! `cargo bench -p plughost --bench gateway` (release). It runs the real `plughost serve --http` in a temp data dir
//! with the fixture installed and signed. Prints calls/s and p50/p99 per level. `BENCH_SECONDS` sets the time per
//! level (default 5), `BENCH_LEVELS` the client counts (default 1,8,32). `BENCH_PAGE=1` runs each level twice, with
//! the operator page closed and then open: a browser's live calls stream (`/ui/calls/live`) plus the calls and quotas
//! views fetched once a second, as a person watching would.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_plughost");

fn plughost(home: &std::path::Path, args: &[&str]) {
    let out = Command::new(BIN)
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

/// One client: a keep-alive connection issuing calls back to back.
struct Conn {
    stream: BufReader<TcpStream>,
    request: Vec<u8>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fixture-basic__echo","arguments":{"text":"hello"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
        let request = format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n\
             Mcp-Method: tools/call\r\nMcp-Name: fixture-basic__echo\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
        Conn {
            stream: BufReader::new(stream),
            request,
        }
    }

    async fn call(&mut self) {
        self.stream
            .get_mut()
            .write_all(&self.request)
            .await
            .expect("write");
        let mut line = String::new();
        let mut length = None;
        let mut status = String::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.expect("read");
            if status.is_empty() {
                status = line.clone();
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse::<usize>().ok();
            }
        }
        let length = length.unwrap_or_else(|| panic!("no content-length; status {status}"));
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.expect("body");
        assert!(status.contains(" 200 "), "status {status}");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("\"isError\":false"), "{text}");
    }
}

/// What an open operator page costs the server: the live stream held open, and two views reloaded every second,
/// until `deadline`. Returns the pages fetched.
async fn page_open(addr: SocketAddr, deadline: Instant) -> usize {
    let mut live = TcpStream::connect(addr).await.expect("connect");
    let req =
        format!("GET /ui/calls/live HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    live.write_all(req.as_bytes()).await.expect("live");
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        while live.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    });
    let mut pages = 0;
    while Instant::now() < deadline {
        for path in ["/ui/calls", "/ui/quotas"] {
            let mut c = TcpStream::connect(addr).await.expect("connect");
            let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            c.write_all(req.as_bytes()).await.expect("page");
            let mut body = Vec::new();
            c.read_to_end(&mut body).await.expect("page body");
            assert!(body.starts_with(b"HTTP/1.1 200"), "{path}");
            pages += 1;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    drain.abort();
    pages
}

async fn level(addr: SocketAddr, clients: usize, seconds: f64, page: bool) {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let watcher = page.then(|| tokio::spawn(page_open(addr, deadline)));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            conn.call().await; // warm-up
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                conn.call().await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    let wall = started.elapsed().as_secs_f64();
    let pages = match watcher {
        Some(w) => format!("page open ({} views fetched)", w.await.expect("page")),
        None => "page closed".into(),
    };
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "clients={clients:<3} calls={:<7} {:>8.0} calls/s   p50={:>9.2?}  p99={:>9.2?}  {pages}",
        all.len(),
        all.len() as f64 / wall,
        pct(0.50),
        pct(0.99)
    );
}

fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    let levels: Vec<usize> = std::env::var("BENCH_LEVELS")
        .unwrap_or_else(|_| "1,8,32".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    let wasm = h.join("basic.wasm");
    std::fs::copy(plughost_tests::BASIC, &wasm).expect("copy fixture");
    let w = wasm.to_str().expect("utf-8");
    plughost(
        h,
        &[
            "keys",
            "generate",
            "--name",
            "bench",
            "--trust",
            "--out",
            h.to_str().expect("utf-8"),
        ],
    );
    plughost(
        h,
        &[
            "sign",
            w,
            "--key",
            "bench",
            "--request",
            "state",
            "--request",
            "log",
        ],
    );
    plughost(h, &["install", w, "--yes"]);
    plughost(h, &["limits", "fixture-basic", "--concurrency", "0"]);

    let mut server = Command::new(BIN)
        .args(["serve", "--http", "127.0.0.1:0"])
        .env("PLUGHOST_HOME", h)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut err = std::io::BufReader::new(server.stderr.take().expect("stderr"));
    let mut line = String::new();
    let addr: SocketAddr = loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut err, &mut line).expect("stderr");
        assert!(n > 0, "the server exited");
        if let Some(rest) = line.trim().strip_prefix("plughost: MCP at http://") {
            break rest
                .split('/')
                .next()
                .unwrap_or_default()
                .parse()
                .expect("addr");
        }
    };
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "tools/call fixture-basic__echo over Streamable HTTP (2026-07-28, JSON responses), {seconds}s per level"
    );
    let page = std::env::var("BENCH_PAGE").is_ok_and(|v| v == "1");
    for clients in levels {
        rt.block_on(level(addr, clients, seconds, false));
        if page {
            rt.block_on(level(addr, clients, seconds, true));
        }
    }
    let _ = server.kill();
    let _ = server.wait();
}
