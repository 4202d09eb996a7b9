//! Captures the host's tracing output in memory, so a test can assert what reached the logs.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// The captured log text of this test binary.
#[derive(Debug, Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything logged so far by any test of this binary.
    pub fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once per test binary) a global subscriber that writes into memory, and returns the buffer.
pub fn capture() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let c = Captured::default();
            let writer = c.clone();
            // Everything plughost, the plugins and the HTTP stack log, at every level; the compiler's own trace
            // output (cranelift, wasmtime) is huge and irrelevant to what a plugin could leak, so it stays at info.
            let filter = tracing_subscriber::EnvFilter::new(
                "info,plughost=trace,plugin=trace,http=trace,container=trace,reqwest=trace,hyper=trace,\
                 hyper_util=trace,bollard=trace",
            );
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .try_init();
            c
        })
        .clone()
}
