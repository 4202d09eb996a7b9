//! New calls as Server-Sent Events for the calls view. Each stream polls the page's own ledger connection once a
//! second for entries after the last one it sent (so calls from the CLI appear too, and the call path never waits
//! on it); at most [`MAX_LIVE_STREAMS`] streams at once, each ended when the gateway
//! shuts down or after [`STREAM_LIFETIME`] (the browser reconnects with `Last-Event-ID`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use plughost_registry::ledger::{Entry, Filter};

use super::calls::{CallQuery, CallRow};
use super::state::{PageLedger, Ui};

/// Most live-call streams at once; one more gets 503.
pub const MAX_LIVE_STREAMS: usize = 16;
/// How often a stream looks for new calls.
pub const POLL: Duration = Duration::from_secs(1);
/// A stream ends after this; the browser opens a new one where it left off.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(600);

struct Tail {
    ledger: PageLedger,
    filter: Filter,
    pending: VecDeque<Entry>,
    shutdown: tokio_util::sync::CancellationToken,
    ends: tokio::time::Instant,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

pub(super) async fn stream(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Query(q): Query<CallQuery>,
) -> Response {
    let Ok(permit) = ui.live.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("at most {} live views at once\n", MAX_LIVE_STREAMS),
        )
            .into_response();
    };
    let ledger = match ui.ledger() {
        Ok(l) => l.clone(),
        Err(why) => return (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    };
    let mut filter = match q.filter() {
        Ok(f) => f,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    // A reconnecting browser says where it was.
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(q.after.unwrap_or(0));
    filter.after_seq = Some(after);
    let tail = Tail {
        ledger,
        filter,
        pending: VecDeque::new(),
        shutdown: ui.shutdown.clone(),
        ends: tokio::time::Instant::now() + STREAM_LIFETIME,
        _permit: permit,
    };
    let events = futures_util::stream::unfold(tail, next);
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The next event: a pending call, else wait for the next poll.
async fn next(mut t: Tail) -> Option<(Result<Event, Infallible>, Tail)> {
    loop {
        if let Some(e) = t.pending.pop_front() {
            let data = serde_json::to_string(&CallRow::of(&e)).unwrap_or_default();
            let event = Event::default()
                .event("call")
                .id(e.seq.to_string())
                .data(data);
            return Some((Ok(event), t));
        }
        tokio::select! {
            _ = t.shutdown.cancelled() => return None,
            _ = tokio::time::sleep_until(t.ends) => return None,
            _ = tokio::time::sleep(POLL) => {}
        }
        let (ledger, filter) = (t.ledger.clone(), t.filter.clone());
        let found = tokio::task::spawn_blocking(move || ledger.entries(&filter)).await;
        match found {
            Ok(Ok(entries)) => {
                if let Some(last) = entries.last() {
                    t.filter.after_seq = Some(last.seq);
                }
                t.pending.extend(entries);
            }
            Ok(Err(e)) => tracing::warn!("operator page: live calls: {e}"),
            Err(e) => tracing::warn!("operator page: live calls: {e}"),
        }
    }
}
