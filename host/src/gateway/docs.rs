//! Each served plugin's documentation as an MCP resource, `plughost://plugins/<id>/docs` (Markdown, rendered by
//! [`crate::docs`]): listed by `resources/list`, read by `resources/read`. A scoped caller sees the docs of the
//! plugins whose tools it may use, and no others.

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::model::{ListResourcesResult, ReadResourceResult, Resource, ResourceContents};
use serde_json::json;

use super::Gateway;
use super::auth::Principal;
use crate::catalog::Entry;

/// The plugins `principal` may see (any of their tools), by id.
fn visible(gateway: &Gateway, principal: Option<&Principal>) -> BTreeMap<String, Arc<Entry>> {
    let index = gateway.index();
    let mut out = BTreeMap::new();
    for (name, t) in &index.tools {
        if principal.is_none_or(|p| p.allows(Some(&t.plugin), name)) {
            out.entry(t.plugin.clone())
                .or_insert_with(|| t.entry.clone());
        }
    }
    out
}

pub(super) fn list(gateway: &Gateway, principal: Option<&Principal>) -> ListResourcesResult {
    let resources = visible(gateway, principal)
        .into_iter()
        .map(|(id, e)| {
            let m = &e.plugin.manifest;
            Resource::new(crate::docs::uri(&id), format!("{id} docs"))
                .with_title(format!("{} {}: documentation", m.name, m.version))
                .with_description(m.description.clone())
                .with_mime_type("text/markdown")
        })
        .collect();
    ListResourcesResult::with_all_items(resources)
}

/// Whether `uri` names a docs page (served here, not by a plugin).
pub(super) fn is_docs(uri: &str) -> bool {
    crate::docs::plugin_of(uri).is_some()
}

pub(super) fn read(
    gateway: &Gateway,
    principal: Option<&Principal>,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    let not_found = || {
        ErrorData::resource_not_found(
            "no such resource: plugin docs are at plughost://plugins/<id>/docs (see resources/list)",
            Some(json!({ "uri": uri })),
        )
    };
    let id = crate::docs::plugin_of(uri).ok_or_else(not_found)?;
    let entry = visible(gateway, principal)
        .remove(id)
        .ok_or_else(not_found)?;
    let text = crate::docs::render(&entry.plugin.manifest, &entry.record.declared);
    Ok(ReadResourceResult::new(vec![
        ResourceContents::TextResourceContents {
            uri: uri.to_string(),
            mime_type: Some("text/markdown".into()),
            text,
            meta: None,
        },
    ]))
}
