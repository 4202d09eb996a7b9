//! What every capability sees of the call it serves ([`CallCtx`]: the plugin, the call's id, deadline and tool, and
//! its host-call counters), and small helpers they share. A leaf: it imports no capability and no runtime.

use std::sync::Arc;
use std::time::Instant;

use crate::grants::Capability;
use crate::report::HostCalls;

/// The call a capability serves.
#[derive(Debug)]
pub struct CallCtx<'a> {
    /// The plugin's id.
    pub plugin: &'a Arc<str>,
    pub call_id: u64,
    /// When the call's deadline passes: a host call that waits (HTTP, Docker) stops by then.
    pub deadline: Instant,
    /// The tool being called; set only for plugins granted `ledger`, which stamps events with it.
    pub tool: Option<&'a str>,
    /// The call's host-call counters (one per capability), shown in its report.
    pub host_calls: &'a mut HostCalls,
}

impl CallCtx<'_> {
    /// Counts one host call on `cap`.
    #[inline]
    pub fn count(&mut self, cap: Capability) {
        self.host_calls.0[cap.index()] += 1;
    }
}

/// Truncates `s` to at most `max` bytes on a char boundary.
pub(crate) fn truncate_str(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// `s` cut to at most `max` bytes on a char boundary, as a new string.
pub(crate) fn truncated(s: &str, max: usize) -> String {
    let mut s = s.to_string();
    truncate_str(&mut s, max);
    s
}
