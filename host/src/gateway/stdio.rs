//! MCP over stdio: a transport of our own for rmcp. rmcp's stdio transport drops a line it cannot parse (or one
//! over its 16 MiB limit) with a log record below the default level, so the client waits forever. Here every line
//! is read with a bound and parsed once into rmcp's message type; a line that does not parse is answered at once
//! with a typed JSON-RPC error from [`jsonrpc::check`] (and a WARN on stderr), and a notification that is not one
//! rmcp knows is ignored, as JSON-RPC says. Replies go to stdout as whole lines, written by whoever produced them
//! (no copy through an in-memory pipe, no second parse).

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::ServiceExt;
use rmcp::service::{QuitReason, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, Semaphore};

use super::jsonrpc::{self, INVALID_REQUEST, Refusal};
use super::mcp::McpServer;
use super::stdio_fast::{StdioFast, write_line};

/// Longest accepted line (one JSON-RPC message), as rmcp's own limit.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Error replies being written at once, at most: a flood of bad lines is paced by stdout.
const REFUSALS_IN_FLIGHT: u32 = 64;

/// Why the stdio session failed.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("MCP over stdio: {0}")]
    Init(String),
    #[error("MCP over stdio: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves `server` on `input`/`output` until `input` ends.
pub async fn serve<R, W>(server: McpServer, input: R, output: W) -> Result<QuitReason, StdioError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let output = Arc::new(Mutex::new(output));
    let refusals = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT as usize));
    let transport = LineTransport {
        lines: Lines {
            input: BufReader::with_capacity(1 << 16, input),
            line: Vec::new(),
            oversized: false,
        },
        at_eof: false,
        pending: None,
        output: output.clone(),
        refusals: refusals.clone(),
        fast: StdioFast::new(&server, output.clone()),
    };
    let running = server
        .serve(transport)
        .await
        .map_err(|e| StdioError::Init(e.to_string()))?;
    let reason = running
        .waiting()
        .await
        .map_err(|e| StdioError::Init(e.to_string()))?;
    // Every error reply handed to a writer is written before the session ends.
    let _ = refusals.acquire_many(REFUSALS_IN_FLIGHT).await;
    output.lock().await.flush().await?;
    Ok(reason)
}

/// Serves `server` on the process's own stdin and stdout until stdin ends. When both are pipes (how an MCP client
/// starts a server) they are read and written without blocking, driven by the runtime's reactor; otherwise (a
/// terminal, a file) through tokio's stdio, which runs every read and write on the blocking pool — a hand-off to
/// another thread and back per line, which was ~45% of the CPU of a stdio call. Not when stderr is the same pipe
/// as stdout (`2>&1`): non-blocking mode is a property of the pipe, and log lines must not meet a full pipe that
/// way.
pub async fn serve_process_stdio(server: McpServer) -> Result<QuitReason, StdioError> {
    match own_pipes() {
        Some((input, output)) => serve(server, input, output).await,
        None => serve(server, tokio::io::stdin(), tokio::io::stdout()).await,
    }
}

#[cfg(unix)]
fn own_pipes() -> Option<(
    tokio::net::unix::pipe::Receiver,
    tokio::net::unix::pipe::Sender,
)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let meta = |fd: std::os::fd::BorrowedFd<'_>| {
        std::fs::File::from(fd.try_clone_to_owned().ok()?)
            .metadata()
            .ok()
            .map(|m| (m.dev(), m.ino(), m.file_type().is_fifo()))
    };
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let out = meta(stdout.as_fd())?;
    // Both must be pipes before either is touched: making one a tokio pipe turns its non-blocking mode on, and
    // tokio's blocking stdio then fails on it at once (EAGAIN), e.g. stdin from a pipe with stdout to a file.
    if meta(stderr.as_fd()) == Some(out) || !out.2 || !meta(stdin.as_fd())?.2 {
        return None;
    }
    let input =
        tokio::net::unix::pipe::Receiver::from_owned_fd(stdin.as_fd().try_clone_to_owned().ok()?)
            .ok()?;
    let output = stdout
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| tokio::net::unix::pipe::Sender::from_owned_fd(fd).ok());
    let Some(output) = output else {
        // stdin is the same open pipe as `input`: give it back its blocking mode for tokio's stdio.
        let _ = rustix::io::ioctl_fionbio(stdin.as_fd(), false);
        return None;
    };
    Some((input, output))
}

#[cfg(not(unix))]
fn own_pipes() -> Option<(tokio::io::Stdin, tokio::io::Stdout)> {
    None
}

/// One JSON-RPC message per line in, one per line out.
struct LineTransport<R, W> {
    lines: Lines<R>,
    at_eof: bool,
    /// An error reply not yet handed to a writer (kept here: `receive` may be dropped and resumed).
    pending: Option<Vec<u8>>,
    output: Arc<Mutex<W>>,
    refusals: Arc<Semaphore>,
    /// Plain `tools/call` requests answered here instead of by rmcp (`stdio_fast.rs`); `None` when turned off.
    fast: Option<StdioFast<W>>,
}

/// The input, read a bounded line at a time.
struct Lines<R> {
    input: BufReader<R>,
    /// The line read so far (kept here: `receive` may be dropped mid-line and resumed).
    line: Vec<u8>,
    /// The line being read is over [`MAX_LINE_BYTES`]: the rest of it is skipped.
    oversized: bool,
}

/// What one read of the input gave.
enum Read {
    /// A whole line is in `line` (or `oversized` is set).
    Line,
    /// The input ended (a last line without a newline is in `line`).
    Eof,
}

impl<R: AsyncRead + Unpin + Send> Lines<R> {
    /// Reads up to the end of the next line, never holding more than [`MAX_LINE_BYTES`] of it. Cancel-safe: the
    /// copy into `line` and the `consume` happen with no await between them.
    async fn read_line(&mut self) -> std::io::Result<Read> {
        loop {
            let buf = self.input.fill_buf().await?;
            if buf.is_empty() {
                return Ok(Read::Eof);
            }
            let (chunk, used) = match memchr::memchr(b'\n', buf) {
                Some(i) => (&buf[..i], i + 1),
                None => (buf, buf.len()),
            };
            let ended = used > chunk.len();
            if !self.oversized {
                if self.line.len() + chunk.len() > MAX_LINE_BYTES {
                    self.oversized = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            self.input.consume(used);
            if ended {
                return Ok(Read::Line);
            }
        }
    }
}

impl<R, W> LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send + 'static,
{
    /// The message in `line`, or `None` after queuing the error reply (or ignoring it: blank lines and
    /// notifications rmcp does not know carry nothing to answer). Leaves `line` empty.
    fn take_message(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        let oversized = std::mem::take(&mut self.lines.oversized);
        let message = if oversized {
            Err(Refusal::new(
                INVALID_REQUEST,
                format!(
                    "invalid request: the line is longer than {} MiB",
                    MAX_LINE_BYTES >> 20
                ),
                None,
            ))
        } else {
            parse(&self.lines.line)
        };
        self.lines.line.clear();
        if self.lines.line.capacity() > 1 << 20 {
            self.lines.line = Vec::new();
        }
        match message {
            Ok(m) => m,
            Err(refusal) => {
                tracing::warn!(code = refusal.code, id = ?refusal.id, "stdio: refused a message: {}", refusal.message);
                let mut bytes = serde_json::to_vec(&refusal.to_json()).unwrap_or_default();
                bytes.push(b'\n');
                self.pending = Some(bytes);
                None
            }
        }
    }

    /// Hands the pending error reply to a writer task, waiting while [`REFUSALS_IN_FLIGHT`] are being written.
    async fn send_pending(&mut self) {
        if self.pending.is_none() {
            return;
        }
        let Ok(permit) = self.refusals.clone().acquire_owned().await else {
            return;
        };
        let Some(bytes) = self.pending.take() else {
            return;
        };
        let output = self.output.clone();
        tokio::spawn(async move {
            // stdout gone means the client is gone: nobody is left to tell.
            let _ = write_line(&output, &bytes).await;
            drop(permit);
        });
    }
}

/// One line → rmcp's message, parsed once. `Ok(None)`: nothing to deliver or answer.
fn parse(line: &[u8]) -> Result<Option<RxJsonRpcMessage<RoleServer>>, Refusal> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let error = match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(line) {
        Ok(message) => return Ok(Some(message)),
        Err(e) => e,
    };
    // Not a message rmcp takes: say exactly why, with the id when it can be read.
    jsonrpc::check(line)?;
    match (jsonrpc::method_of(line), jsonrpc::id_of(line)) {
        (Some(_), Some(id)) => Err(Refusal::new(
            INVALID_REQUEST,
            format!("invalid request: {error}"),
            Some(id),
        )),
        // Notifications and responses are never answered; those rmcp does not take are ignored.
        _ => {
            tracing::debug!("stdio: ignored a message rmcp does not take: {error}");
            Ok(None)
        }
    }
}

impl<R, W> Transport<RoleServer> for LineTransport<R, W>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let output = self.output.clone();
        async move {
            let mut bytes = serde_json::to_vec(&item).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
            write_line(&output, &bytes).await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            self.send_pending().await;
            if self.at_eof {
                if let Some(fast) = self.fast.as_mut() {
                    fast.finish().await;
                }
                return None;
            }
            // Fast calls in flight run while the next line is awaited (both cancel-safe: their state is here).
            let busy = self.fast.as_ref().is_some_and(StdioFast::busy);
            let read = tokio::select! {
                biased;
                () = std::future::poll_fn(|cx| match self.fast.as_mut() {
                    Some(f) => f.poll_progress(cx),
                    None => std::task::Poll::Pending,
                }), if busy => continue,
                read = self.lines.read_line() => read,
            };
            let read = match read {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("stdio: cannot read stdin: {e}");
                    return None;
                }
            };
            if let Read::Eof = read {
                self.at_eof = true;
                // A last line without a newline still counts.
                if self.lines.line.is_empty() && !self.lines.oversized {
                    continue;
                }
            }
            // A plain call (the commonest line) is taken whole, without rmcp's parse.
            if !self.lines.oversized
                && let Some(fast) = self.fast.as_mut()
                && fast.take_line(&self.lines.line)
            {
                self.lines.line.clear();
                continue;
            }
            let Some(message) = self.take_message() else {
                continue;
            };
            let message = match self.fast.as_mut() {
                Some(fast) => fast.offer(message),
                None => Some(message),
            };
            if let Some(message) = message {
                return Some(message);
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.send_pending().await;
        if let Some(fast) = self.fast.as_mut() {
            fast.finish().await;
        }
        self.output.lock().await.flush().await
    }
}
