//! `log`: leveled lines into the host's tracing log, tagged with plugin and call, capped per call, secrets redacted.
//! Also the sink for the guest's WASI stderr, which ends up in the same log.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::bindings::log::{self, Level};
use crate::bindings::types::Pair;
use crate::caps::config::Redactor;
use crate::caps::view::CallCtx;
use crate::grants::Capability;

/// Per-call log caps and counters.
#[derive(Debug, Clone, Copy)]
pub struct LogBudget {
    pub(crate) max_lines: u32,
    pub(crate) max_line_bytes: u32,
    pub(crate) lines: u32,
    pub(crate) dropped: u32,
}

impl LogBudget {
    pub fn new(max_lines: u32, max_line_bytes: u32) -> Self {
        LogBudget {
            max_lines,
            max_line_bytes,
            lines: 0,
            dropped: 0,
        }
    }

    /// Takes one line from the budget; false when the line must be dropped.
    fn take(&mut self) -> bool {
        if self.lines >= self.max_lines {
            self.dropped += 1;
            false
        } else {
            self.lines += 1;
            true
        }
    }
}

/// Writes one plugin log line to the host log.
fn emit(host: &mut LogHost<'_>, level: Level, message: String, fields: &[Pair]) {
    let budget = &mut *host.budget;
    if !budget.take() {
        return;
    }
    // Redacted before the cut, so a secret straddling it leaves nothing behind; keys are the plugin's text too.
    let max = budget.max_line_bytes as usize;
    let redactor = host.redactor;
    let message = redactor.redact_cut(message, max);
    let fields = if fields.is_empty() {
        String::new()
    } else {
        let mut f = String::new();
        for p in fields.iter().take(16) {
            let key = redactor.redact_cut(p.key.clone(), max);
            let value = redactor.redact_cut(p.value.clone(), max);
            f.push_str(&format!(" {key}={value:?}"));
        }
        redactor.redact_cut(f, max)
    };
    let plugin: &str = host.call.plugin;
    let call_id = host.call.call_id;
    match level {
        Level::Trace => {
            tracing::trace!(target: "plugin", plugin, call = call_id, "{message}{fields}")
        }
        Level::Debug => {
            tracing::debug!(target: "plugin", plugin, call = call_id, "{message}{fields}")
        }
        Level::Info => {
            tracing::info!(target: "plugin", plugin, call = call_id, "{message}{fields}")
        }
        Level::Warn => {
            tracing::warn!(target: "plugin", plugin, call = call_id, "{message}{fields}")
        }
        Level::Error => {
            tracing::error!(target: "plugin", plugin, call = call_id, "{message}{fields}")
        }
    }
}

/// What the `log` interface sees of the call it serves; its store hands one out through [`LogView`].
#[derive(Debug)]
pub struct LogHost<'a> {
    pub call: CallCtx<'a>,
    pub budget: &'a mut LogBudget,
    pub redactor: &'a Redactor,
}

/// How `log` reaches the call it serves (the wasmtime-wasi `WasiView` shape): implemented by the runtime's
/// per-call store data, so this module never sees the store type.
pub trait LogView: Send {
    fn log_host(&mut self) -> LogHost<'_>;
}

impl log::Host for LogHost<'_> {
    async fn write(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<Pair>,
    ) -> wasmtime::Result<()> {
        self.call.count(Capability::Log);
        emit(self, level, message, &fields);
        Ok(())
    }
}

struct Log;
impl HasData for Log {
    type Data<'a> = LogHost<'a>;
}

/// Links `plughost:plugin/log`.
pub fn add_to_linker<T: LogView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    log::add_to_linker::<T, Log>(linker, |s| s.log_host())
}

/// The guest's WASI stderr: kept in memory up to a cap (extra bytes are dropped, never an error for the guest),
/// and written to the log as `warn` lines when the call ends.
#[derive(Debug, Clone)]
pub struct StderrSink {
    buf: Arc<Mutex<Vec<u8>>>,
    cap: usize,
}

impl StderrSink {
    pub fn new(cap: usize) -> Self {
        StderrSink {
            buf: Arc::new(Mutex::new(Vec::new())),
            cap,
        }
    }

    /// Takes what was written so far.
    pub fn take(&self) -> Vec<u8> {
        self.buf
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }
}

impl IsTerminal for StderrSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrSink {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for StderrSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Ok(mut b) = self.buf.lock() {
            let room = self.cap.saturating_sub(b.len());
            b.extend_from_slice(&data[..data.len().min(room)]);
        }
        Poll::Ready(Ok(data.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Sends what the guest wrote to stderr during a call to the log, one line per line, within the budget.
pub fn flush_stderr(mut host: LogHost<'_>, stderr: &StderrSink) {
    let bytes = stderr.take();
    if bytes.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(&bytes);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        emit(&mut host, Level::Warn, format!("stderr: {line}"), &[]);
    }
}
