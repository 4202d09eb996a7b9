//! The guest's output on its way out: bounded in size, JSON checked, secrets redacted; errors redacted too.

use std::borrow::Cow;

use super::limits::{Limits, MAX_OUTPUT_JSON_DEPTH};
use crate::bindings::tools;
use crate::call::{CallError, Content, ToolOutput};
use crate::caps::config::Redactor;
use crate::json;

pub(super) fn redact_error(e: CallError, redactor: &Redactor) -> CallError {
    if redactor.is_empty() {
        return e;
    }
    e.map_text(|s| redactor.redact(&s).into_owned())
}

pub(super) fn convert_output(
    out: tools::Output,
    limits: &Limits,
    redactor: &Redactor,
) -> Result<ToolOutput, CallError> {
    // Checked on wasmtime's lifted value, before the host builds `Content` or JSON values of its own.
    let blocks = out.content.len() as u64;
    if blocks > u64::from(limits.max_output_blocks) {
        return Err(CallError::OutputTooManyBlocks {
            blocks,
            limit: u64::from(limits.max_output_blocks),
        });
    }
    let size = serialized_size(&out);
    if size > limits.max_output_bytes {
        return Err(CallError::OutputTooLarge {
            bytes: size,
            limit: limits.max_output_bytes,
        });
    }
    // Redacted after parsing, on the decoded values (a `\u`-escaped secret is caught); with no secrets, no walk.
    let parse = |what: &str, s: &str| {
        if json::depth_exceeds(s.as_bytes(), MAX_OUTPUT_JSON_DEPTH) {
            return Err(CallError::Failed {
                message: format!(
                    "the plugin returned JSON {what} nested more than {MAX_OUTPUT_JSON_DEPTH} levels deep"
                ),
            });
        }
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
            // The guest's own string is kept when nothing in it is redacted (no copy of every text result).
            tools::Content::Text(t) => {
                let redacted = match redactor.redact(&t) {
                    Cow::Owned(r) => Some(r),
                    Cow::Borrowed(_) => None,
                };
                Content::Text {
                    text: redacted.unwrap_or(t),
                }
            }
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

/// The size of the output as the host serializes it (`{"content":[{"type":"text","text":…}],"structured":…}`):
/// text escaped as JSON, JSON blocks as returned (re-serializing compactly never makes them longer).
fn serialized_size(out: &tools::Output) -> u64 {
    let escaped = |s: &str| -> u64 {
        s.bytes()
            .map(|b| match b {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
                0..0x20 => 6,
                _ => 1,
            })
            .sum::<u64>()
    };
    let blocks: u64 = out
        .content
        .iter()
        .map(|c| match c {
            tools::Content::Text(t) => r#"{"type":"text","text":""},"#.len() as u64 + escaped(t),
            tools::Content::Json(j) => r#"{"type":"json","json":},"#.len() as u64 + j.len() as u64,
        })
        .sum();
    let structured = out
        .structured
        .as_ref()
        .map_or(0, |s| r#","structured":"#.len() as u64 + s.len() as u64);
    r#"{"content":[]}"#.len() as u64 + blocks + structured
}
