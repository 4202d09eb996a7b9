//! MCP over stdio with a line filter in front of rmcp. rmcp's stdio transport drops a line it cannot parse (or one
//! over its 16 MiB limit) with a log record below the default level, so the client waits forever. Here every line
//! is read with a bound, checked by [`jsonrpc::check`], and either passed to rmcp or answered at once with a
//! JSON-RPC error (and a WARN on stderr). Both rmcp's replies and the filter's go to stdout as whole lines.

use rmcp::ServiceExt;
use rmcp::service::QuitReason;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::jsonrpc::{self, INVALID_REQUEST, Refusal};
use super::mcp::McpServer;

/// Longest accepted line (one JSON-RPC message), as rmcp's own limit.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Why the stdio session failed.
#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("MCP over stdio: {0}")]
    Init(String),
    #[error("MCP over stdio: {0}")]
    Io(#[from] std::io::Error),
    #[error("MCP over stdio: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Serves `server` on `input`/`output` until `input` ends.
pub async fn serve<R, W>(server: McpServer, input: R, output: W) -> Result<QuitReason, StdioError>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (to_rmcp, rmcp_in) = tokio::io::duplex(1 << 16);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(1 << 16);
    // Error replies wait here for the writer; bounded so a flood of bad lines is paced by stdout.
    let (errors_tx, errors_rx) = mpsc::channel::<Refusal>(64);
    let reader = tokio::spawn(filter_lines(input, to_rmcp, errors_tx));
    let writer = tokio::spawn(write_lines(from_rmcp, errors_rx, output));
    let running = server
        .serve((rmcp_in, rmcp_out))
        .await
        .map_err(|e| StdioError::Init(e.to_string()));
    let reason = match running {
        Ok(running) => running
            .waiting()
            .await
            .map_err(|e| StdioError::Init(e.to_string()))?,
        Err(e) => {
            reader.abort();
            return Err(e);
        }
    };
    // rmcp has dropped its ends: the writer drains what is left and ends.
    writer.await??;
    reader.abort();
    Ok(reason)
}

/// Reads `input` line by line (each at most [`MAX_LINE_BYTES`]); good lines go to rmcp, bad ones to `errors`.
async fn filter_lines<R, W>(
    input: R,
    mut to_rmcp: W,
    errors: mpsc::Sender<Refusal>,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut input = BufReader::with_capacity(1 << 16, input);
    let mut line: Vec<u8> = Vec::new();
    let mut oversized = false;
    loop {
        let buf = input.fill_buf().await?;
        if buf.is_empty() {
            // EOF: a last line without a newline still counts.
            if !line.is_empty() || oversized {
                handle_line(&line, oversized, &mut to_rmcp, &errors).await?;
            }
            break;
        }
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], i + 1),
            None => (buf, buf.len()),
        };
        let ended = done > chunk.len();
        if !oversized {
            if line.len() + chunk.len() > MAX_LINE_BYTES {
                oversized = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        input.consume(done);
        if ended {
            handle_line(&line, oversized, &mut to_rmcp, &errors).await?;
            line.clear();
            if line.capacity() > 1 << 20 {
                line = Vec::new();
            }
            oversized = false;
        }
    }
    to_rmcp.shutdown().await
}

async fn handle_line<W: AsyncWrite + Unpin>(
    line: &[u8],
    oversized: bool,
    to_rmcp: &mut W,
    errors: &mpsc::Sender<Refusal>,
) -> std::io::Result<()> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let verdict = if oversized {
        Err(Refusal::new(
            INVALID_REQUEST,
            format!(
                "invalid request: the line is longer than {} MiB",
                MAX_LINE_BYTES >> 20
            ),
            None,
        ))
    } else if line.iter().all(u8::is_ascii_whitespace) {
        // Blank lines carry no message.
        return Ok(());
    } else {
        jsonrpc::check(line)
    };
    match verdict {
        Ok(()) => {
            to_rmcp.write_all(line).await?;
            to_rmcp.write_all(b"\n").await?;
            to_rmcp.flush().await
        }
        Err(refusal) => {
            tracing::warn!(code = refusal.code, id = ?refusal.id, "stdio: refused a message: {}", refusal.message);
            // The writer is gone only when rmcp has ended; then nobody is listening anyway.
            let _ = errors.send(refusal).await;
            Ok(())
        }
    }
}

/// Copies rmcp's lines and the filter's error replies to `output`, one whole line at a time.
async fn write_lines<R, W>(
    from_rmcp: R,
    mut errors: mpsc::Receiver<Refusal>,
    mut output: W,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut from_rmcp = BufReader::with_capacity(1 << 16, from_rmcp);
    let mut line = Vec::new();
    let mut errors_open = true;
    loop {
        tokio::select! {
            n = from_rmcp.read_until(b'\n', &mut line) => {
                if n? == 0 {
                    output.write_all(&line).await?;
                    break;
                }
                output.write_all(&line).await?;
                output.flush().await?;
                line.clear();
            }
            refusal = errors.recv(), if errors_open => match refusal {
                Some(r) => write_refusal(&mut output, &r).await?,
                None => errors_open = false,
            },
        }
    }
    while let Ok(r) = errors.try_recv() {
        write_refusal(&mut output, &r).await?;
    }
    output.flush().await
}

async fn write_refusal<W: AsyncWrite + Unpin>(output: &mut W, r: &Refusal) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(&r.to_json()).unwrap_or_default();
    bytes.push(b'\n');
    output.write_all(&bytes).await?;
    output.flush().await
}
