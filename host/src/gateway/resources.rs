//! Plugin resources over MCP (contract 0.2.0): `resources/list` (with the docs pages of `docs.rs`, paginated),
//! `resources/templates/list` and `resources/read`. A plugin's resource path `p` is the URI
//! `plughost://plugins/<id>/r/<p>`, beside its docs at `plughost://plugins/<id>/docs`. A read runs the plugin's
//! `resources.read` through the catalog exactly as a tool call runs (limits, contracts, ledger, label
//! `resource:<path>`). A scoped caller sees the resources of the plugins it may use, and no others.

use std::sync::Arc;

use base64::Engine;
use rmcp::ErrorData;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, MetaObject, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate,
};
use serde_json::json;

use super::Gateway;
use super::principal::Principal;
use super::wire::{ERROR_META_KEY, REPORT_META_KEY, page};
use crate::call::{Body, CallError};
use crate::catalog::Entry;
use crate::ledger::Caller;
use crate::report::CallReport;

/// The URI prefix of every plugin's namespace.
const PLUGINS: &str = "plughost://plugins/";

/// The URI of resource `path` of plugin `id`.
pub fn uri(id: &str, path: &str) -> String {
    format!("{PLUGINS}{id}/r/{path}")
}

/// The (plugin, path) a plugin-resource URI names, if it is one.
pub fn parse_uri(uri: &str) -> Option<(&str, &str)> {
    let (id, rest) = uri.strip_prefix(PLUGINS)?.split_once('/')?;
    let path = rest.strip_prefix("r/")?;
    (!id.is_empty() && !path.is_empty()).then_some((id, path))
}

/// May `principal` see plugin `entry` (its resources, prompts and docs)? All-access principals see every plugin;
/// a scoped one the plugins its token names, or whose tools it names.
pub(super) fn may_see(principal: Option<&Principal>, entry: &Entry) -> bool {
    let Some(p) = principal else {
        return true;
    };
    let id = entry.plugin.id();
    p.allows(Some(id), "")
        || entry
            .plugin
            .manifest
            .tools
            .iter()
            .any(|t| p.allows(Some(id), &super::tool_name(id, &t.name)))
}

/// The loaded plugins `principal` may see, by id.
pub(super) fn visible(gateway: &Gateway, principal: Option<&Principal>) -> Vec<Arc<Entry>> {
    let mut out: Vec<Arc<Entry>> = gateway
        .catalog()
        .entries()
        .into_iter()
        .filter(|e| may_see(principal, e))
        .collect();
    out.sort_by(|a, b| a.plugin.id().cmp(b.plugin.id()));
    out
}

/// Every resource `principal` may see, sorted by URI: the docs pages and the plugins' own resources.
fn all_resources(gateway: &Gateway, principal: Option<&Principal>) -> Vec<Resource> {
    let mut out = super::docs::list(gateway, principal).resources;
    for e in visible(gateway, principal) {
        let id = e.plugin.id();
        for r in &e.plugin.manifest.offers.resources {
            let mut res = Resource::new(uri(id, &r.path), r.name.clone());
            if let Some(t) = &r.title {
                res = res.with_title(t.clone());
            }
            if let Some(d) = &r.description {
                res = res.with_description(d.clone());
            }
            if let Some(m) = &r.mime_type {
                res = res.with_mime_type(m.clone());
            }
            out.push(res);
        }
    }
    out.sort_by(|a, b| a.uri.cmp(&b.uri));
    out
}

pub(super) fn list(
    gateway: &Gateway,
    principal: Option<&Principal>,
    cursor: Option<&str>,
    size: usize,
) -> Result<ListResourcesResult, ErrorData> {
    let all = all_resources(gateway, principal);
    let (items, next) = page(&all, |r| r.uri.as_str(), cursor, size)?;
    let mut result = ListResourcesResult::with_all_items(items);
    result.next_cursor = next;
    Ok(result)
}

pub(super) fn templates(
    gateway: &Gateway,
    principal: Option<&Principal>,
    cursor: Option<&str>,
    size: usize,
) -> Result<ListResourceTemplatesResult, ErrorData> {
    let mut all = Vec::new();
    for e in visible(gateway, principal) {
        let id = e.plugin.id();
        for t in &e.plugin.manifest.offers.templates {
            let mut tpl = ResourceTemplate::new(uri(id, &t.path_template), t.name.clone());
            tpl.title = t.title.clone();
            tpl.description = t.description.clone();
            tpl.mime_type = t.mime_type.clone();
            all.push(tpl);
        }
    }
    all.sort_by(|a, b| a.uri_template.cmp(&b.uri_template));
    let (items, next) = page(&all, |t| t.uri_template.as_str(), cursor, size)?;
    let mut result = ListResourceTemplatesResult::with_all_items(items);
    result.next_cursor = next;
    Ok(result)
}

/// A failed read or prompt as a JSON-RPC error: the typed error and the report in `data` (there is no `isError`
/// result for these methods), `not-found` as `not_found`, bad arguments as invalid params.
pub(super) fn call_error(
    e: &CallError,
    report: &CallReport,
    not_found: impl FnOnce(String, Option<serde_json::Value>) -> ErrorData,
) -> ErrorData {
    let data = Some(json!({
        "kind": e.kind(),
        ERROR_META_KEY: e,
        REPORT_META_KEY: report,
    }));
    let message = format!("{} — {e}", e.kind());
    match e {
        CallError::NotFound { .. } => not_found(message, data),
        CallError::InvalidArguments { .. } => ErrorData::invalid_params(message, data),
        _ => ErrorData::internal_error(message, data),
    }
}

pub(super) async fn read(
    gateway: &Gateway,
    principal: Option<&Principal>,
    uri_in: &str,
    caller: &Caller,
) -> Result<ReadResourceResult, ErrorData> {
    if super::docs::is_docs(uri_in) {
        return super::docs::read(gateway, principal, uri_in);
    }
    let not_found = || {
        ErrorData::resource_not_found(
            "no such resource: see resources/list and resources/templates/list",
            Some(json!({ "uri": crate::caps::view::truncated(uri_in, 1024) })),
        )
    };
    let (id, path) = parse_uri(uri_in).ok_or_else(not_found)?;
    let entry = gateway
        .catalog()
        .get(id)
        .filter(|e| may_see(principal, e))
        .ok_or_else(not_found)?;
    let result = entry
        .read_resource_as(gateway.catalog().host(), path, caller)
        .await;
    gateway.metrics.record(&result.report);
    let contents = match result.result {
        Ok(c) => c,
        Err(e) => {
            return Err(call_error(
                &e,
                &result.report,
                ErrorData::resource_not_found,
            ));
        }
    };
    let contents = contents
        .into_iter()
        .map(|c| {
            let uri = uri(id, &c.path);
            match c.body {
                Body::Text(text) => ResourceContents::TextResourceContents {
                    uri,
                    mime_type: c.mime_type,
                    text,
                    meta: None,
                },
                Body::Blob(bytes) => ResourceContents::BlobResourceContents {
                    uri,
                    mime_type: c.mime_type,
                    blob: base64::engine::general_purpose::STANDARD.encode(bytes),
                    meta: None,
                },
            }
        })
        .collect();
    let mut out = ReadResourceResult::new(contents);
    let mut meta = MetaObject::new();
    meta.0.insert(
        REPORT_META_KEY.into(),
        serde_json::to_value(&result.report).unwrap_or_default(),
    );
    out.meta = Some(meta);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_and_docs_are_not_resources() {
        assert_eq!(uri("notes", "day/1"), "plughost://plugins/notes/r/day/1");
        assert_eq!(
            parse_uri("plughost://plugins/notes/r/day/1"),
            Some(("notes", "day/1"))
        );
        assert_eq!(parse_uri("plughost://plugins/notes/docs"), None);
        assert_eq!(parse_uri("plughost://plugins/notes/r/"), None);
        assert_eq!(parse_uri("plughost://plugins//r/x"), None);
        assert_eq!(parse_uri("file:///etc/passwd"), None);
    }
}
