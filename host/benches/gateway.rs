//! Load on the MCP gateway: `tools/call` of a trivial tool (fixture-basic's echo) through the real `plughost serve`,
//! with the server process's own CPU time per call (user + system, all threads, from `/proc/PID/stat`) beside
//! calls/s and p50/p99.
//!
//! `cargo bench -p plughost --bench gateway` (release) runs, in a temp data dir with the fixture signed and
//! installed:
//! - Streamable HTTP, keep-alive connections, 2026-07-28 stateless requests, 1, 8 and 32 clients;
//! - the same as 2025-11-25 session calls (each client `initialize`s its own session);
//! - a new connection per call (`Connection: close`), stateless, 1 and 8 clients;
//! - stdio, one client, sequential calls in a session (`stdio`), and the same from a 2026-07-28 client, with no
//!   `initialize` and `_meta` in every request (`stdio-stateless`);
//! - the floor (`floor`): the same client and levels against a bare hyper HTTP/1.1 server on the same tokio
//!   runtime that answers every POST with a fixed reply (this bench binary, re-run as that server). What it costs
//!   per call is what this machine's loopback TCP, wake-ups, tokio and hyper take before any MCP work, so the
//!   gateway's own share is the difference.
//!
//! `BENCH_SECONDS` sets the time per level (default 5), `BENCH_LEVELS` the client counts (default 1,8,32),
//! `BENCH_ONLY` a comma-separated subset of `stateless,session,connect,stdio,stdio-stateless,floor,rss`.
//! `BENCH_BIN=PATH` runs another plughost build as the server (an A/B run against an older binary). `rss` makes 60,000 stateless calls from 8
//! clients and prints the server's RSS after the first 1,000 and at the end. `BENCH_PAGE=1` runs each stateless
//! level again with the operator page open: a browser's live calls stream (`/ui/calls/live`) plus the calls and
//! quotas views fetched once a second, as a person watching would. `BENCH_AWAKE=1` keeps the cores busy with
//! lowest-priority loops while it runs (see `support::awake`): on this kind of virtual machine an idle core makes
//! every wake-up 2-3 times dearer, so give numbers from both states and compare builds within one.

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::http::{Client, Era};
use support::stdio::StdioServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// One level: `clients` clients calling back to back for `seconds`. Returns the latencies and the wall time.
async fn level(
    addr: SocketAddr,
    era: Era,
    keep_alive: bool,
    clients: usize,
    seconds: f64,
) -> (Vec<Duration>, Duration) {
    let mut ready = Vec::new();
    for _ in 0..clients {
        let mut c = Client::open(addr, era, keep_alive).await;
        c.call().await; // warm-up
        ready.push(c);
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = ready
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    c.call().await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client"));
    }
    (all, started.elapsed())
}

/// Runs one level and prints it with the server's CPU per call over exactly that level.
fn measured(
    rt: &tokio::runtime::Runtime,
    pid: u32,
    what: &str,
    run: impl std::future::Future<Output = (Vec<Duration>, Duration)>,
) {
    // Clients open (and warm up) inside `run`; their few calls are a rounding error against a level's thousands.
    let cpu = support::cpu_time(pid);
    let (lat, wall) = rt.block_on(run);
    support::report(what, lat, wall, support::cpu_time(pid) - cpu);
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Ok(addr) = std::env::var(FLOOR_SERVE) {
        return floor_serve(&addr);
    }
    let seconds: f64 = env_or("BENCH_SECONDS", 5.0);
    let levels: Vec<usize> = std::env::var("BENCH_LEVELS")
        .unwrap_or_else(|_| "1,8,32".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let only = std::env::var("BENCH_ONLY")
        .unwrap_or_else(|_| "stateless,session,connect,stdio,stdio-stateless,floor".into());
    let runs = |part: &str| only.split(',').any(|p| p.trim() == part);
    let page = std::env::var("BENCH_PAGE").is_ok_and(|v| v == "1");
    let home = support::home_with(1);
    let h = home.path();
    let awake = support::awake();
    println!(
        "tools/call fixture-basic__echo, {seconds}s per level, server {}, {}",
        support::bin().display(),
        support::state(&awake)
    );

    let mut server = Command::new(support::bin())
        .args(["serve", "--http", "127.0.0.1:0"])
        .env("PLUGHOST_HOME", h)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let pid = server.id();
    let addr = listening(&mut server);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for &clients in &levels {
        if runs("stateless") {
            let what = format!("http keep-alive stateless C={clients}");
            measured(
                &rt,
                pid,
                &what,
                level(addr, Era::Stateless, true, clients, seconds),
            );
            if page {
                let deadline = Instant::now() + Duration::from_secs_f64(seconds);
                let watcher = rt.spawn(page_open(addr, deadline));
                measured(
                    &rt,
                    pid,
                    "  … with the operator page open",
                    level(addr, Era::Stateless, true, clients, seconds),
                );
                let pages = rt.block_on(watcher).expect("page");
                println!("  ({pages} page views fetched meanwhile)");
            }
        }
        if runs("session") {
            let what = format!("http keep-alive session C={clients}");
            measured(
                &rt,
                pid,
                &what,
                level(addr, Era::Session, true, clients, seconds),
            );
        }
    }
    if runs("connect") {
        for clients in [1, 8] {
            let what = format!("http new connection/call C={clients}");
            measured(
                &rt,
                pid,
                &what,
                level(addr, Era::Stateless, false, clients, seconds),
            );
        }
    }
    if runs("rss") {
        let mut clients: Vec<Client> = rt.block_on(async {
            let mut v = Vec::new();
            for _ in 0..8 {
                v.push(Client::open(addr, Era::Stateless, true).await);
            }
            v
        });
        let mut batch = |n: usize| {
            clients = rt.block_on(async {
                let tasks: Vec<_> = std::mem::take(&mut clients)
                    .into_iter()
                    .map(|mut c| {
                        tokio::spawn(async move {
                            for _ in 0..n / 8 {
                                c.call().await;
                            }
                            c
                        })
                    })
                    .collect();
                let mut back = Vec::new();
                for t in tasks {
                    back.push(t.await.expect("client"));
                }
                back
            });
        };
        batch(1_000);
        let after_1k = support::rss_kib(pid);
        let (anon_1k, file_1k) = support::rss_anon_file_kib(pid);
        batch(59_000);
        let after_60k = support::rss_kib(pid);
        let (anon_60k, file_60k) = support::rss_anon_file_kib(pid);
        let mib = |kib: u64| kib as f64 / 1024.0;
        let grew = |from: u64, to: u64| (to as f64 - from as f64) / 1024.0;
        println!(
            "RSS after 1,000 calls {:.1} MiB, after 60,000 {:.1} MiB (+{:.1} MiB; anonymous {:.1} -> {:.1}, +{:.1}; \
             file-backed {:.1} -> {:.1}, +{:.1})  load {}",
            mib(after_1k),
            mib(after_60k),
            grew(after_1k, after_60k),
            mib(anon_1k),
            mib(anon_60k),
            grew(anon_1k, anon_60k),
            mib(file_1k),
            mib(file_60k),
            grew(file_1k, file_60k),
            support::load()
        );
    }
    let _ = server.kill();
    let _ = server.wait();

    for (part, label) in [
        ("stdio", "stdio sequential session"),
        ("stdio-stateless", "stdio sequential 2026-07-28"),
    ] {
        if !runs(part) {
            continue;
        }
        let mut s = if part == "stdio" {
            StdioServer::spawn(h, &[])
        } else {
            StdioServer::spawn_stateless(h, &[])
        };
        assert!(s.list_tools() > 0);
        s.call(); // warm-up
        let pid = s.child.id();
        let cpu = support::cpu_time(pid);
        let started = Instant::now();
        let deadline = started + Duration::from_secs_f64(seconds);
        let mut lat = Vec::new();
        while Instant::now() < deadline {
            lat.push(s.call());
        }
        let wall = started.elapsed();
        support::report(label, lat, wall, support::cpu_time(pid) - cpu);
        s.close();
    }

    if runs("floor") {
        let mut floor = Command::new(std::env::current_exe().expect("this bench"))
            .env(FLOOR_SERVE, "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("floor server");
        let pid = floor.id();
        let addr = listening(&mut floor);
        for &clients in &levels {
            let what = format!("floor: bare hyper, keep-alive C={clients}");
            measured(
                &rt,
                pid,
                &what,
                level(addr, Era::Stateless, true, clients, seconds),
            );
        }
        let _ = floor.kill();
        let _ = floor.wait();
    }
}

/// The address a server started by this bench listens on, from the line it prints on stderr; the rest of its
/// stderr is drained in a thread.
fn listening(server: &mut std::process::Child) -> SocketAddr {
    let mut err = std::io::BufReader::new(server.stderr.take().expect("stderr"));
    let mut line = String::new();
    let addr = loop {
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
    addr
}

/// The variable that makes this binary the floor server, listening on its value.
const FLOOR_SERVE: &str = "BENCH_FLOOR_SERVE";

/// The floor server: hyper's HTTP/1.1 on a multi-threaded tokio runtime (one worker per core, as `plughost serve`
/// runs), `TCP_NODELAY`, every request's body read whole and answered with one fixed JSON-RPC result of about the
/// echo's size. No MCP, no JSON, no instance, no ledger.
fn floor_serve(addr: &str) {
    use axum::body::Body;
    use hyper::{Request, Response};

    const REPLY: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}],"structuredContent":{"text":"hello"},"isError":false,"_meta":{"plughost/report":{"fuel":1234,"memory":1114112,"wall_us":12}}}}"#;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let at = listener.local_addr().expect("addr");
        eprintln!("plughost: MCP at http://{at}/mcp");
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let _ = axum::body::to_bytes(Body::new(req.into_body()), 1 << 20).await;
                        let mut r = Response::new(Body::from(REPLY));
                        r.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, std::convert::Infallible>(r)
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
}
