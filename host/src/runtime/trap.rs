//! A trap becomes a typed outcome with its cause: a memory-limit hit, out of fuel, the deadline, or a trap with a
//! one-paragraph message; the guest's own `tool-error` becomes the host's [`CallError`].

use std::time::Instant;

use wasmtime::{Store, Trap};

use super::limits::{Limits, MemoryLimitHit};
use super::store::StoreData;
use crate::bindings::tools;
use crate::call::CallError;

/// The guest's own typed error as the host's.
pub(super) fn tool_error(e: tools::ToolError) -> CallError {
    use tools::ToolError as E;
    match e {
        E::InvalidArguments(message) => CallError::InvalidArguments { message },
        E::UnknownTool(tool) => CallError::UnknownTool { tool },
        E::Denied(message) => CallError::Denied { message },
        E::NotFound(message) => CallError::NotFound { message },
        E::Unavailable(message) => CallError::Unavailable { message },
        E::Upstream(u) => CallError::Upstream {
            status: u.status,
            code: u.code,
            message: u.message,
            retry_after_seconds: u.retry_after_seconds,
        },
        E::Failed(message) => CallError::Failed { message },
    }
}

pub(super) fn classify_trap(
    err: &wasmtime::Error,
    store: &Store<StoreData>,
    limits: &Limits,
    _started: Instant,
) -> CallError {
    let data = store.data();
    tracing::debug!(
        "guest trap: {}",
        data.env.redactor().redact(&format!("{err:?}"))
    );
    if let Some(hit) = err
        .downcast_ref::<MemoryLimitHit>()
        .copied()
        .or(data.limiter.denied)
    {
        return CallError::MemoryLimit {
            requested: hit.requested,
            limit: hit.limit,
        };
    }
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return CallError::Exit { code: exit.0 };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::OutOfFuel { limit: limits.fuel },
        Some(Trap::Interrupt) if data.deadline_hit => CallError::Deadline {
            timeout_ms: limits.timeout.as_millis() as u64,
        },
        Some(trap) => CallError::Trap {
            message: trap_message(err, Some(*trap)),
        },
        None if data.deadline_hit => CallError::Deadline {
            timeout_ms: limits.timeout.as_millis() as u64,
        },
        None => CallError::Trap {
            message: trap_message(err, None),
        },
    }
}

/// A one-paragraph trap message: the trap itself plus the innermost frames, without the full backtrace.
fn trap_message(err: &wasmtime::Error, trap: Option<Trap>) -> String {
    let full = format!("{err:#}");
    let mut msg = match trap {
        Some(t) => t.to_string(),
        None => full.lines().next().unwrap_or("trap").to_string(),
    };
    if let Some(frame) = full.lines().find(|l| l.trim_start().starts_with("0:")) {
        msg.push_str(&format!(" (at {})", frame.trim()));
    }
    msg
}
