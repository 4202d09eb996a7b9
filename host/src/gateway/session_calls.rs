//! Session calls the HTTP fast path runs (`fast.rs`), by session and request id. A 2025-era client stops a call with
//! `notifications/cancelled` in its session, which rmcp receives and hands to `McpServer::on_cancelled`; rmcp
//! cancels the calls it runs itself, and this table lets that handler find and cancel the fast path's.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderName;
use rmcp::model::{CancelledNotificationParam, Extensions, RequestId};
use tokio_util::sync::CancellationToken;

/// The header that names a 2025-era session (built once: a lookup by `&str` parses the name each time).
pub(super) const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");

/// The `Mcp-Session-Id` of the HTTP request rmcp put in a message's extensions, if any.
pub(super) fn session_of(extensions: &Extensions) -> Option<&str> {
    extensions
        .get::<axum::http::request::Parts>()
        .and_then(|p| p.headers.get(SESSION_ID))
        .and_then(|v| v.to_str().ok())
}

/// `notifications/cancelled` (with its HTTP request's extensions) for a call the fast path runs: cancels it.
pub(super) fn cancelled(
    calls: Option<&SessionCalls>,
    notification: &CancelledNotificationParam,
    extensions: &Extensions,
) {
    if let (Some(calls), Some(session), Some(id)) = (
        calls,
        session_of(extensions),
        notification.request_id.as_ref(),
    ) && calls.cancel(session, id)
    {
        tracing::info!(%id, "http: cancelled a fast-path call in its session");
    }
}

/// A session call's key: the session and the request's id.
type CallKey = (Arc<str>, RequestId);

/// Session calls under way on the fast path, by session and request id, so that the `notifications/cancelled` rmcp
/// receives for one (see `McpServer::on_cancelled`) can stop it. An entry lives as long as its call.
#[derive(Debug, Default)]
pub struct SessionCalls {
    next: AtomicU64,
    live: std::sync::Mutex<HashMap<CallKey, (u64, CancellationToken)>>,
}

impl SessionCalls {
    /// Cancels the call `id` of `session` if it is under way here; whether it was.
    pub fn cancel(&self, session: &str, id: &RequestId) -> bool {
        let key = (Arc::from(session), id.clone());
        match super::lock(&self.live).get(&key) {
            Some((_, ct)) => {
                ct.cancel();
                true
            }
            None => false,
        }
    }

    /// Registers a call the fast path starts; its entry goes when the returned guard drops.
    pub(super) fn enter(
        self: &Arc<Self>,
        session: Arc<str>,
        id: RequestId,
        ct: CancellationToken,
    ) -> Entered {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let key = (session, id);
        super::lock(&self.live).insert(key.clone(), (seq, ct));
        Entered {
            calls: self.clone(),
            key,
            seq,
        }
    }
}

/// A call's entry in [`SessionCalls`], removed when the call ends (unless a later call with the same id took it).
pub(super) struct Entered {
    calls: Arc<SessionCalls>,
    key: CallKey,
    seq: u64,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let mut live = super::lock(&self.calls.live);
        if live.get(&self.key).is_some_and(|(seq, _)| *seq == self.seq) {
            live.remove(&self.key);
        }
    }
}
