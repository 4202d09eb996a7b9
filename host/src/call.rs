//! The ground floor of a call: what a tool returns ([`ToolOutput`], [`Content`]), why a call produced nothing
//! ([`CallError`], with [`QuotaError`] for an exhausted contract) and the pair a caller gets back ([`CallResult`]).
//! Every room above (runtime, contracts, the ledger, the catalog, the gateway, the CLI) speaks these types; this
//! module depends only on the call report.

use serde::Serialize;

use crate::report::{CallReport, Outcome};
use crate::units::human_bytes;

/// One block of tool output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Content {
    Text { text: String },
    Json { json: serde_json::Value },
}

/// A successful tool result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolOutput {
    pub content: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured: Option<serde_json::Value>,
}

/// The body of a resource as read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Body {
    Text(String),
    Blob(Vec<u8>),
}

/// One resource's contents, from a read (contract 0.2.0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceContent {
    /// The plugin's path of what was read.
    pub path: String,
    pub mime_type: Option<String>,
    pub body: Body,
}

/// One message of a rendered prompt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptMessage {
    /// `user` or `assistant`.
    pub role: &'static str,
    pub text: String,
}

/// A prompt as the plugin rendered it (contract 0.2.0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedPrompt {
    pub description: Option<String>,
    pub messages: Vec<PromptMessage>,
}

/// Why a call produced no output. Mirrors [`Outcome`], with the details a caller needs.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CallError {
    #[error("invalid arguments: {message}")]
    InvalidArguments { message: String },
    #[error("unknown tool `{tool}`")]
    UnknownTool { tool: String },
    #[error("denied: {message}")]
    Denied { message: String },
    #[error("not found: {message}")]
    NotFound { message: String },
    #[error("unavailable: {message}")]
    Unavailable { message: String },
    #[error("upstream error{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Upstream {
        status: Option<u16>,
        code: Option<i64>,
        message: String,
        retry_after_seconds: Option<u32>,
    },
    #[error("tool failed: {message}")]
    Failed { message: String },
    #[error("out of fuel: the call used its whole budget of {limit} fuel")]
    OutOfFuel { limit: u64 },
    #[error("memory limit: the guest asked for {requested} bytes, the cap is {limit}")]
    MemoryLimit { requested: u64, limit: u64 },
    #[error("deadline: the call did not finish within {timeout_ms} ms")]
    Deadline { timeout_ms: u64 },
    #[error("the plugin trapped: {message}")]
    Trap { message: String },
    /// `bytes` is the output's serialized size, structure and escapes included.
    #[error("output too large: {bytes} bytes serialized, the limit is {limit}")]
    OutputTooLarge { bytes: u64, limit: u64 },
    #[error("output has too many blocks: {blocks}, the limit is {limit}")]
    OutputTooManyBlocks { blocks: u64, limit: u64 },
    /// The guest called WASI `exit` with this code.
    #[error("the plugin exited with code {code}")]
    Exit { code: i32 },
    #[error(
        "busy: plugin `{plugin}` already runs {limit} calls at once (its concurrency limit); try again"
    )]
    Busy { plugin: String, limit: u32 },
    /// The host-wide budget for guest memory in flight has no room for this call's memory cap.
    #[error(
        "busy: the host's guest memory is taken ({} reserved by running calls, of a {} budget; this call needs up to {}); try again",
        human_bytes(*.in_flight), human_bytes(*.budget), human_bytes(*.needed)
    )]
    MemoryBusy {
        needed: u64,
        in_flight: u64,
        budget: u64,
    },
    /// The client cancelled the call while it ran; the guest was stopped.
    #[error("cancelled: the client cancelled the call{}", .reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Cancelled { reason: Option<String> },
    /// A contract is exhausted: which, how much is used and until when.
    #[error("{0}")]
    Quota(Box<QuotaError>),
    #[error("host error: {message}")]
    Host { message: String },
}

impl CallError {
    /// The outcome recorded for this error.
    pub fn outcome(&self) -> Outcome {
        match self {
            CallError::OutOfFuel { .. } => Outcome::OutOfFuel,
            CallError::MemoryLimit { requested, .. } => Outcome::MemoryLimit {
                requested_bytes: *requested,
            },
            CallError::Deadline { .. } => Outcome::Deadline,
            CallError::Trap { message } => Outcome::Trap {
                message: message.clone(),
            },
            CallError::OutputTooLarge { bytes, .. } => Outcome::OutputTooLarge { bytes: *bytes },
            CallError::OutputTooManyBlocks { blocks, .. } => {
                Outcome::OutputTooManyBlocks { blocks: *blocks }
            }
            CallError::Exit { code } => Outcome::Exit { code: *code },
            CallError::Busy { .. } | CallError::MemoryBusy { .. } => Outcome::Busy,
            CallError::Quota(_) => Outcome::Quota,
            CallError::Cancelled { .. } => Outcome::Cancelled,
            CallError::Host { message } => Outcome::HostError {
                message: message.clone(),
            },
            other => Outcome::ToolError {
                error: other.kind().to_string(),
            },
        }
    }

    /// A short, stable name for the error kind.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::InvalidArguments { .. } => "invalid-arguments",
            CallError::UnknownTool { .. } => "unknown-tool",
            CallError::Denied { .. } => "denied",
            CallError::NotFound { .. } => "not-found",
            CallError::Unavailable { .. } => "unavailable",
            CallError::Upstream { .. } => "upstream",
            CallError::Failed { .. } => "failed",
            CallError::OutOfFuel { .. } => "out-of-fuel",
            CallError::MemoryLimit { .. } => "memory-limit",
            CallError::Deadline { .. } => "deadline",
            CallError::Trap { .. } => "trap",
            CallError::OutputTooLarge { .. } => "output-too-large",
            CallError::OutputTooManyBlocks { .. } => "output-too-many-blocks",
            CallError::Exit { .. } => "exit",
            CallError::Busy { .. } | CallError::MemoryBusy { .. } => "busy",
            CallError::Quota(_) => "quota",
            CallError::Cancelled { .. } => "cancelled",
            CallError::Host { .. } => "host-error",
        }
    }
}

/// The longest message a [`CallError`] carries (bytes); longer ones are cut by [`CallError::bounded`].
pub const MAX_ERROR_MESSAGE_BYTES: usize = 64 << 10;

/// `s` cut to [`MAX_ERROR_MESSAGE_BYTES`] at a character boundary, with a note of how much was cut.
fn bound_message(mut s: String) -> String {
    if s.len() <= MAX_ERROR_MESSAGE_BYTES {
        return s;
    }
    let mut end = MAX_ERROR_MESSAGE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let cut = s.len() - end;
    s.truncate(end);
    s.push_str(&format!("… [cut: {cut} more bytes]"));
    s
}

impl CallError {
    /// This error with every message (and tool name) cut to [`MAX_ERROR_MESSAGE_BYTES`].
    pub fn bounded(self) -> Self {
        self.map_text(bound_message)
    }

    /// This error with `b` applied to every text it carries (messages, tool and plugin names, reasons): the one
    /// walk over the variants that bounding and redaction share.
    pub fn map_text(self, b: impl Fn(String) -> String) -> Self {
        match self {
            CallError::InvalidArguments { message } => CallError::InvalidArguments {
                message: b(message),
            },
            CallError::UnknownTool { tool } => CallError::UnknownTool { tool: b(tool) },
            CallError::Denied { message } => CallError::Denied {
                message: b(message),
            },
            CallError::NotFound { message } => CallError::NotFound {
                message: b(message),
            },
            CallError::Unavailable { message } => CallError::Unavailable {
                message: b(message),
            },
            CallError::Upstream {
                status,
                code,
                message,
                retry_after_seconds,
            } => CallError::Upstream {
                status,
                code,
                message: b(message),
                retry_after_seconds,
            },
            CallError::Failed { message } => CallError::Failed {
                message: b(message),
            },
            CallError::Trap { message } => CallError::Trap {
                message: b(message),
            },
            CallError::Busy { plugin, limit } => CallError::Busy {
                plugin: b(plugin),
                limit,
            },
            CallError::Quota(mut q) => {
                q.message = b(std::mem::take(&mut q.message));
                CallError::Quota(q)
            }
            CallError::Host { message } => CallError::Host {
                message: b(message),
            },
            CallError::Cancelled { reason } => CallError::Cancelled {
                reason: reason.map(b),
            },
            other @ (CallError::OutOfFuel { .. }
            | CallError::MemoryLimit { .. }
            | CallError::Deadline { .. }
            | CallError::OutputTooLarge { .. }
            | CallError::OutputTooManyBlocks { .. }
            | CallError::Exit { .. }
            | CallError::MemoryBusy { .. }) => other,
        }
    }
}

/// A call's result and its report. A tool call's output is a [`ToolOutput`]; a resource read's is a list of
/// [`ResourceContent`], a prompt's a [`RenderedPrompt`].
#[derive(Debug, Clone)]
pub struct CallResult<T = ToolOutput> {
    pub result: Result<T, CallError>,
    pub report: CallReport,
}

/// What a contract limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Calls,
    Cost,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Calls => "calls",
            Resource::Cost => "cost",
        }
    }
}

/// The details of a `quota` refusal, as callers see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct QuotaError {
    pub message: String,
    /// `None` for the plugin's contract, else the tool's.
    pub tool: Option<String>,
    /// Set when the exhausted contract is this principal's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// `calls` or `cost`.
    pub resource: String,
    pub used: u64,
    pub limit: u64,
    pub window: String,
    /// RFC 3339 UTC; `None` when no window will ever admit the call.
    pub until: Option<String>,
    pub retry_after_seconds: Option<u64>,
}
