//! A closed-loop load generator for `scripts/bench-cluster.sh`: C connections, each sending stateless
//! (2026-07-28) `tools/call`s of `fixture-basic__echo` back to back (one TCP connection per call, as a client
//! behind a load balancer does without keep-alive) for S seconds; prints one JSON line: calls, errors, calls/s,
//! p50 and p99 latency. std only, so it costs the 2 cores little next to the servers it measures.
//!
//!     cargo run -p plughost-registry --example mcp_load -- 127.0.0.1:8787 32 10

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn call(addr: SocketAddr, n: u64) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"fixture-basic__echo","arguments":{{"text":"load {n}"}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(c), Some(secs)) = (
        args.get(1).and_then(|a| a.parse::<SocketAddr>().ok()),
        args.get(2).and_then(|a| a.parse::<usize>().ok()),
        args.get(3).and_then(|a| a.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: mcp_load ADDR CONCURRENCY SECONDS");
        std::process::exit(2);
    };
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..c)
        .map(|w| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut lat, mut errors) = (Vec::new(), 0u64);
                let mut n = (w as u64) << 32;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let t = Instant::now();
                    if call(addr, n) {
                        lat.push(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let (mut lat, mut errors) = (Vec::new(), 0);
    for w in workers {
        let (l, e) = w.join().expect("worker");
        lat.extend(l);
        errors += e;
    }
    let took = started.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{{\"concurrency\":{c},\"seconds\":{took:.1},\"calls\":{},\"errors\":{errors},\"per_s\":{:.0},\"p50_ms\":{:.1},\"p99_ms\":{:.1}}}",
        lat.len(),
        lat.len() as f64 / took,
        pct(0.5),
        pct(0.99)
    );
}
