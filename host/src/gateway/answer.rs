//! A tool call's answer: the gateway's reply as an MCP result, and, for the two fast paths (HTTP and stdio), the
//! JSON-RPC message as bytes, shaped as rmcp's handler shapes it.
//!
//! The call report goes in the result's `_meta` under [`REPORT_META_KEY`]. rmcp's path needs it there as a JSON
//! value ([`to_call_result`]); the fast paths write it straight from the report into the answer's bytes
//! ([`message_bytes`]), which spares building that value: some twenty allocations and a map of a dozen keys a call.

use rmcp::ErrorData;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, MetaObject, RequestId, ServerJsonRpcMessage,
    ServerResult,
};
use serde_json::{Value, json};

use super::Reply;
use super::wire::{ERROR_META_KEY, REPORT_META_KEY};
use crate::call::Content;
use crate::report::CallReport;

/// A tool call's result, with its report (none for the gateway's own tools) kept apart from `_meta`.
#[derive(Debug)]
pub struct CallAnswer {
    pub result: CallToolResult,
    pub report: Option<CallReport>,
}

impl CallAnswer {
    /// The result with its report in `_meta`, as rmcp's path sends it.
    pub fn into_result(self) -> CallToolResult {
        let CallAnswer { mut result, report } = self;
        if let Some(report) = report {
            result.meta.get_or_insert_with(MetaObject::new).0.insert(
                REPORT_META_KEY.into(),
                serde_json::to_value(&report).unwrap_or(Value::Null),
            );
        }
        result
    }
}

/// Turns a gateway reply into an MCP result, its report in `_meta`.
pub fn to_call_result(reply: Reply) -> CallToolResult {
    answer_of(reply).into_result()
}

/// Turns a gateway reply into an MCP result and its report.
pub fn answer_of(reply: Reply) -> CallAnswer {
    let (result, report) = match reply {
        Reply::Management(value) => {
            let mut r = CallToolResult::success(vec![ContentBlock::text(pretty(&value))]);
            r.structured_content = Some(value);
            (r, None)
        }
        Reply::ManagementError { kind, message } => {
            let mut meta = MetaObject::new();
            meta.0.insert(
                ERROR_META_KEY.into(),
                json!({ "kind": kind, "message": message }),
            );
            let mut r = CallToolResult::error(vec![ContentBlock::text(message)]);
            r.meta = Some(meta);
            (r, None)
        }
        Reply::Tool {
            result,
            tool: _,
            output_error,
        } => {
            let crate::call::CallResult { result, report } = *result;
            let r = match (result, output_error) {
                (Ok(out), None) => {
                    // Clients that ignore structuredContent still see the data, unless a block already shows it.
                    let shown = out.structured.as_ref().and_then(|s| {
                        let as_text = pretty(s);
                        let already = out.content.iter().any(|c| match c {
                            Content::Json { json } => json == s,
                            Content::Text { text } => *text == as_text,
                        });
                        (!already).then_some(as_text)
                    });
                    let content: Vec<ContentBlock> = out
                        .content
                        .into_iter()
                        .map(|c| match c {
                            Content::Text { text } => ContentBlock::text(text),
                            Content::Json { json } => ContentBlock::text(pretty(&json)),
                        })
                        .chain(shown.map(ContentBlock::text))
                        .collect();
                    let mut r = CallToolResult::success(content);
                    r.structured_content = out.structured;
                    r
                }
                (Ok(_), Some(broken)) => with_error(
                    json!({ "kind": "invalid-output", "message": broken }),
                    format!("the plugin broke its own contract: {broken}"),
                ),
                (Err(e), _) => with_error(
                    serde_json::to_value(&e).unwrap_or(Value::Null),
                    format!("{} — {e}", e.kind()),
                ),
            };
            (r, Some(report))
        }
    };
    CallAnswer { result, report }
}

/// A tool error result, its typed error in `_meta`.
fn with_error(error: Value, text: String) -> CallToolResult {
    let mut meta = MetaObject::new();
    meta.0.insert(ERROR_META_KEY.into(), error);
    let mut r = CallToolResult::error(vec![ContentBlock::text(text)]);
    r.meta = Some(meta);
    r
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The JSON-RPC answer to a `tools/call` as bytes, the message rmcp's handler gives: `legacy` (a peer of a
/// 2025-era version) gets no `resultType` and object output only. A result whose `_meta` holds nothing but the
/// report (every call that succeeded) has the report written into its bytes as its last member; rmcp puts
/// `_meta` last too, so the message differs from rmcp's only in the order of the report's own keys.
pub fn message_bytes(
    id: RequestId,
    answer: Result<CallAnswer, ErrorData>,
    legacy: bool,
) -> serde_json::Result<Vec<u8>> {
    let (result, report) = match answer {
        Err(e) => return serde_json::to_vec(&ServerJsonRpcMessage::error(e, Some(id))),
        Ok(a) if a.result.meta.is_some() => (a.into_result(), None),
        Ok(CallAnswer { result, report }) => (result, report),
    };
    let mut result = ServerResult::from(CallToolResponse::from(result));
    if legacy {
        result.strip_result_type_for_legacy_peer();
        result.strip_non_object_output_for_legacy_peer();
    }
    // Sized for a small answer and its report, so it is rarely grown.
    let mut bytes = Vec::with_capacity(1024);
    serde_json::to_writer(&mut bytes, &ServerJsonRpcMessage::response(result, id))?;
    if let Some(report) = report {
        // `{"jsonrpc":"2.0","id":…,"result":{…}}`: the result's members end two bytes from the end, and it has
        // some (`content` is always there).
        if !bytes.ends_with(b"}}") || bytes.ends_with(b"{}}") {
            return Err(serde::ser::Error::custom(
                "a tools/call answer not shaped as {…,\"result\":{…}}",
            ));
        }
        bytes.truncate(bytes.len() - 2);
        bytes.extend_from_slice(b",\"_meta\":{");
        serde_json::to_writer(&mut bytes, REPORT_META_KEY)?;
        bytes.push(b':');
        serde_json::to_writer(&mut bytes, &report)?;
        bytes.extend_from_slice(b"}}}");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::call::{CallError, ToolOutput};
    use crate::report::{HostCalls, Outcome};

    fn report() -> CallReport {
        CallReport {
            plugin: "p\"q".into(),
            tool: "echo".into(),
            fuel_used: 4960,
            fuel_limit: 1_000_000,
            peak_memory_bytes: 1_114_112,
            memory_limit_bytes: 64 << 20,
            wall_time: Duration::from_micros(12),
            timeout: Duration::from_secs(30),
            host_calls: HostCalls::default(),
            log_lines: 1,
            log_dropped: 0,
            outcome: Outcome::Ok,
        }
    }

    fn answer(result: Result<ToolOutput, CallError>) -> CallAnswer {
        CallAnswer {
            result: match result {
                Ok(out) => {
                    let mut r =
                        CallToolResult::success(vec![ContentBlock::text("{\"text\":\"hi\"}")]);
                    r.structured_content = out.structured;
                    r
                }
                Err(e) => with_error(serde_json::to_value(&e).expect("error"), e.to_string()),
            },
            report: Some(report()),
        }
    }

    /// The bytes the fast paths send are the message rmcp's path sends (the result with its report in `_meta`,
    /// then shaped for the peer), for a result, a non-object result to a legacy peer, an error result and an error.
    #[test]
    fn the_fast_answer_is_the_message_rmcp_sends() {
        let output = |v: Value| {
            Ok(ToolOutput {
                content: vec![],
                structured: Some(v),
            })
        };
        let cases = [
            (output(json!({ "text": "hi" })), false),
            (output(json!({ "text": "hi" })), true),
            (output(json!([1, 2])), true),
            (
                Err(CallError::Failed {
                    message: "no".into(),
                }),
                false,
            ),
        ];
        for (result, legacy) in cases {
            let id = RequestId::Number(7);
            let bytes =
                message_bytes(id.clone(), Ok(answer(result.clone())), legacy).expect("bytes");
            let mut expected =
                ServerResult::from(CallToolResponse::from(answer(result).into_result()));
            if legacy {
                expected.strip_result_type_for_legacy_peer();
                expected.strip_non_object_output_for_legacy_peer();
            }
            let expected =
                serde_json::to_value(ServerJsonRpcMessage::response(expected, id)).expect("rmcp's");
            let got: Value = serde_json::from_slice(&bytes).expect("JSON");
            assert_eq!(got, expected, "legacy {legacy}");
            assert_eq!(
                got["result"]["_meta"][REPORT_META_KEY]["plugin"], "p\"q",
                "the report is there"
            );
        }
        let refused = message_bytes(
            RequestId::Number(8),
            Err(ErrorData::invalid_params("unknown tool", None)),
            false,
        )
        .expect("bytes");
        let refused: Value = serde_json::from_slice(&refused).expect("JSON");
        assert_eq!(refused["error"]["message"], "unknown tool");
        assert!(refused.get("result").is_none());
    }
}
