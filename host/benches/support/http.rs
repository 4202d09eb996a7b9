//! A minimal HTTP/1.1 MCP client for the gateway bench: stateless (2026-07-28) or session (2025-11-25) calls of
//! fixture-basic's echo, on a keep-alive connection or a new connection per call. Every reply is read whole
//! (Content-Length or chunked, JSON or SSE) and checked.

use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const TOOL: &str = "fixture-basic__echo";

/// Which protocol era the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2026-07-28: no session, every request carries its protocol version.
    Stateless,
    /// 2025-11-25: `initialize`, then calls in the session it opened.
    Session,
}

pub struct Client {
    addr: SocketAddr,
    era: Era,
    keep_alive: bool,
    stream: Option<BufReader<TcpStream>>,
    session: Option<String>,
    id: u64,
}

struct Reply {
    status: u16,
    session: Option<String>,
    body: Vec<u8>,
}

impl Client {
    /// A client; a session client opens its session now.
    pub async fn open(addr: SocketAddr, era: Era, keep_alive: bool) -> Client {
        let mut c = Client {
            addr,
            era,
            keep_alive,
            stream: None,
            session: None,
            id: 0,
        };
        if era == Era::Session {
            let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}"#;
            let r = c.post(init, "").await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            c.session = Some(r.session.expect("Mcp-Session-Id"));
            let r = c
                .post(
                    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                    "MCP-Protocol-Version: 2025-11-25\r\n",
                )
                .await;
            assert_eq!(r.status, 202);
        }
        c
    }

    /// One `tools/call` of the echo; panics unless it succeeded.
    pub async fn call(&mut self) {
        self.id += 1;
        let id = self.id;
        let (body, headers) = match self.era {
            Era::Stateless => (
                format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{TOOL}","arguments":{{"text":"hello"}},"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
                ),
                format!(
                    "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: {TOOL}\r\n"
                ),
            ),
            Era::Session => (
                format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{TOOL}","arguments":{{"text":"hello"}}}}}}"#
                ),
                "MCP-Protocol-Version: 2025-11-25\r\n".to_string(),
            ),
        };
        let r = self.post(&body, &headers).await;
        let text = String::from_utf8_lossy(&r.body);
        assert_eq!(r.status, 200, "{text}");
        assert!(text.contains("\"isError\":false"), "{text}");
    }

    async fn post(&mut self, body: &str, headers: &str) -> Reply {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).await.expect("connect");
            s.set_nodelay(true).expect("nodelay");
            self.stream = Some(BufReader::new(s));
        }
        let session = match &self.session {
            Some(s) => format!("Mcp-Session-Id: {s}\r\n"),
            None => String::new(),
        };
        let connection = if self.keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        };
        let request = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\n{headers}{session}{connection}Content-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        let stream = self.stream.as_mut().expect("connected");
        stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .expect("write");
        let reply = read_reply(stream).await;
        if !self.keep_alive {
            self.stream = None;
        }
        reply
    }
}

async fn read_reply(stream: &mut BufReader<TcpStream>) -> Reply {
    let mut line = String::new();
    let mut status = 0;
    let mut length = None;
    let mut chunked = false;
    let mut session = None;
    loop {
        line.clear();
        let n = stream.read_line(&mut line).await.expect("read");
        assert!(n > 0, "the server closed the connection");
        if status == 0 {
            status = line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("status");
            continue;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse::<usize>().ok();
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                chunked = v.eq_ignore_ascii_case("chunked");
            } else if k.eq_ignore_ascii_case("mcp-session-id") {
                session = Some(v.to_string());
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            stream.read_line(&mut line).await.expect("chunk size");
            let size = usize::from_str_radix(line.trim(), 16).expect("chunk size");
            let mut chunk = vec![0; size + 2];
            stream.read_exact(&mut chunk).await.expect("chunk");
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length.unwrap_or(0), 0);
        stream.read_exact(&mut body).await.expect("body");
    }
    Reply {
        status,
        session,
        body,
    }
}
