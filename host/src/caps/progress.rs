//! `progress`: the guest reports how far its call is; the caller that asked for progress (the MCP gateway, for a
//! client that sent a progress token) forwards it. Not a capability: it needs no grant, reveals nothing and changes
//! nothing, so it is linked into every component that imports it. Bounded like `log`: messages are redacted and
//! cut, reports closer together than [`MIN_INTERVAL`] are dropped (a final `done == total` one is always kept), at
//! most [`MAX_REPORTS`] per call are forwarded, and the channel to the caller never blocks the guest.

use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker};

use crate::bindings::progress;
use crate::caps::config::Redactor;

/// Longest message forwarded (bytes); longer ones are cut at a character boundary.
pub const MAX_MESSAGE_BYTES: usize = 256;
/// Reports closer together than this are dropped (except a final one).
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);
/// Most reports forwarded per call.
pub const MAX_REPORTS: u32 = 1000;

/// One progress report, as the caller receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
    pub message: Option<String>,
}

/// Where a call's progress goes: a bounded channel the guest never waits on (a full channel drops the report).
pub type ProgressSink = tokio::sync::mpsc::Sender<Progress>;

/// A call's progress state: where reports go (if anyone asked) and the rate limit's counters.
#[derive(Debug, Default)]
pub struct ProgressState {
    pub sink: Option<ProgressSink>,
    last: Option<Instant>,
    pub(crate) forwarded: u32,
    pub(crate) dropped: u32,
}

impl ProgressState {
    /// Forgets the last call's counters (a standby store is reused for exactly one call, but starts clean).
    pub fn reset(&mut self) {
        *self = ProgressState::default();
    }
}

/// What `progress` sees of the call it serves.
#[derive(Debug)]
pub struct ProgressHost<'a> {
    pub state: &'a mut ProgressState,
    pub redactor: &'a Redactor,
}

/// How `progress` reaches the call it serves (implemented by the runtime's store data).
pub trait ProgressView: Send {
    fn progress_host(&mut self) -> ProgressHost<'_>;
}

impl ProgressHost<'_> {
    fn report(&mut self, done: u64, total: Option<u64>, message: Option<String>) {
        let state = &mut *self.state;
        let Some(sink) = &state.sink else {
            return;
        };
        let now = Instant::now();
        let last = total.is_some_and(|t| done >= t);
        let too_soon = state
            .last
            .is_some_and(|at| now.duration_since(at) < MIN_INTERVAL);
        if state.forwarded >= MAX_REPORTS || (too_soon && !last) {
            state.dropped = state.dropped.saturating_add(1);
            return;
        }
        let message = message.map(|m| self.redactor.redact_cut(m, MAX_MESSAGE_BYTES));
        let sent = sink.try_send(Progress {
            done,
            total,
            message,
        });
        if sent.is_ok() {
            state.forwarded += 1;
            state.last = Some(now);
        } else {
            state.dropped = state.dropped.saturating_add(1);
        }
    }
}

impl progress::Host for ProgressHost<'_> {
    async fn report(
        &mut self,
        done: u64,
        total: Option<u64>,
        message: Option<String>,
    ) -> wasmtime::Result<()> {
        ProgressHost::report(self, done, total, message);
        Ok(())
    }
}

struct ProgressData;
impl HasData for ProgressData {
    type Data<'a> = ProgressHost<'a>;
}

/// Links `plughost:plugin/progress`.
pub fn add_to_linker<T: ProgressView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    progress::add_to_linker::<T, ProgressData>(linker, |s| s.progress_host())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host<'a>(state: &'a mut ProgressState, redactor: &'a Redactor) -> ProgressHost<'a> {
        ProgressHost { state, redactor }
    }

    #[test]
    fn reports_are_rate_limited_cut_and_the_final_one_kept() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let mut state = ProgressState {
            sink: Some(tx),
            ..ProgressState::default()
        };
        let redactor = Redactor::default();
        let mut h = host(&mut state, &redactor);
        h.report(1, Some(10), Some("x".repeat(10_000)));
        h.report(2, Some(10), None); // too soon: dropped
        h.report(10, Some(10), Some("done".into())); // final: kept
        let first = rx.try_recv().expect("first report");
        assert_eq!(first.done, 1);
        assert!(first.message.expect("message").len() <= MAX_MESSAGE_BYTES);
        assert_eq!(rx.try_recv().expect("final report").done, 10);
        assert!(rx.try_recv().is_err());
        assert_eq!((state.forwarded, state.dropped), (2, 1));
    }

    #[test]
    fn without_a_sink_nothing_is_counted() {
        let mut state = ProgressState::default();
        let redactor = Redactor::default();
        host(&mut state, &redactor).report(1, None, None);
        assert_eq!((state.forwarded, state.dropped), (0, 0));
    }
}
