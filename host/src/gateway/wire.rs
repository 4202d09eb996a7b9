//! What the MCP handlers share on the wire (a leaf, so `mcp.rs`, `resources.rs` and `prompts.rs` need not import
//! each other): the `_meta` keys of results, list cursors with paging, and MCP's client-to-server methods.

use rmcp::ErrorData;
use serde_json::json;

/// Where the call report goes in a result's `_meta`.
pub const REPORT_META_KEY: &str = "plughost/report";
/// Where a failed call's typed error goes in a result's `_meta`.
pub const ERROR_META_KEY: &str = "plughost/error";

/// Client-to-server methods of MCP: a custom request for one of these had params rmcp could not read.
pub(super) const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "subscriptions/listen",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
];

/// Cursors are opaque to clients: the hex of the last name on the previous page.
pub fn encode_cursor(after: &str) -> String {
    after.bytes().map(|b| format!("{b:02x}")).collect()
}

pub fn decode_cursor(c: &str) -> Option<String> {
    if c.is_empty() || !c.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..c.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(c.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// One page of `items` (sorted by `key`) after `cursor`, and the cursor of the next page, if any. Resumes after
/// the last key the client saw, even if the set changed since.
pub fn page<T: Clone>(
    items: &[T],
    key: impl Fn(&T) -> &str,
    cursor: Option<&str>,
    size: usize,
) -> Result<(Vec<T>, Option<String>), ErrorData> {
    let start = match cursor {
        None => 0,
        Some(c) => {
            let after = decode_cursor(c).ok_or_else(|| {
                ErrorData::invalid_params(
                    "invalid cursor: pass back the nextCursor of a previous list",
                    Some(json!({ "cursor": c })),
                )
            })?;
            items.partition_point(|i| key(i) <= after.as_str())
        }
    };
    let end = (start + size.max(1)).min(items.len());
    let next = (end < items.len()).then(|| encode_cursor(key(&items[end - 1])));
    Ok((items[start..end].to_vec(), next))
}
