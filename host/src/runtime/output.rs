//! The guest's output on its way out: bounded in size, JSON checked, secrets redacted; errors redacted too.

use super::limits::Limits;
use crate::bindings::tools;
use crate::call::{CallError, Content, ToolOutput};
use crate::caps::config::Redactor;

pub(super) fn redact_error(e: CallError, redactor: &Redactor) -> CallError {
    if redactor.is_empty() {
        return e;
    }
    let r = |s: String| redactor.redact(&s).into_owned();
    match e {
        CallError::InvalidArguments { message } => CallError::InvalidArguments {
            message: r(message),
        },
        CallError::Denied { message } => CallError::Denied {
            message: r(message),
        },
        CallError::NotFound { message } => CallError::NotFound {
            message: r(message),
        },
        CallError::Unavailable { message } => CallError::Unavailable {
            message: r(message),
        },
        CallError::Upstream {
            status,
            code,
            message,
            retry_after_seconds,
        } => CallError::Upstream {
            status,
            code,
            message: r(message),
            retry_after_seconds,
        },
        CallError::Failed { message } => CallError::Failed {
            message: r(message),
        },
        CallError::Trap { message } => CallError::Trap {
            message: r(message),
        },
        CallError::Host { message } => CallError::Host {
            message: r(message),
        },
        // The guest names the unknown tool itself.
        CallError::UnknownTool { tool } => CallError::UnknownTool { tool: r(tool) },
        other => other,
    }
}

pub(super) fn convert_output(
    out: tools::Output,
    limits: &Limits,
    redactor: &Redactor,
) -> Result<ToolOutput, CallError> {
    let size: u64 = out
        .content
        .iter()
        .map(|c| match c {
            tools::Content::Text(t) | tools::Content::Json(t) => t.len() as u64,
        })
        .sum::<u64>()
        + out.structured.as_ref().map_or(0, |s| s.len() as u64);
    if size > limits.max_output_bytes {
        return Err(CallError::OutputTooLarge {
            bytes: size,
            limit: limits.max_output_bytes,
        });
    }
    // Redacted after parsing, on the decoded values (a `\u`-escaped secret is caught); with no secrets, no walk.
    let parse = |what: &str, s: &str| {
        let mut v =
            serde_json::from_str::<serde_json::Value>(s).map_err(|e| CallError::Failed {
                message: format!("the plugin returned invalid JSON {what}: {e}"),
            })?;
        redactor.redact_json(&mut v);
        Ok(v)
    };
    let mut content = Vec::with_capacity(out.content.len());
    for c in out.content {
        content.push(match c {
            tools::Content::Text(t) => Content::Text {
                text: redactor.redact(&t).into_owned(),
            },
            tools::Content::Json(j) => Content::Json {
                json: parse("content", &j)?,
            },
        });
    }
    let structured = out
        .structured
        .as_deref()
        .map(|s| parse("structured output", s))
        .transpose()?;
    Ok(ToolOutput {
        content,
        structured,
    })
}
