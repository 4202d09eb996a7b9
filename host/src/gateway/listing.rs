//! The `tools/list` listing: the tool index and the management tools as rmcp `Tool`s, sorted by name. Built once
//! per index generation (mcp.rs keeps it), never per request.

use std::sync::Arc;

use rmcp::model::{Tool, ToolAnnotations};
use serde_json::{Map, Value};

use super::{ToolIndex, management_tools};

/// Every tool a client may list, sorted by name.
pub fn build_listing(index: &ToolIndex) -> Vec<Tool> {
    let mut tools: Vec<Tool> = index
        .tools
        .values()
        .map(|t| {
            let info = &t.info;
            let mut tool = Tool::new(
                t.name.clone(),
                info.description.clone(),
                Arc::new(info.input_schema.clone()),
            );
            if let Some(title) = &info.title {
                tool = tool.with_title(title.clone());
            }
            if let Some(out) = &info.output_schema {
                tool = tool.with_raw_output_schema(Arc::new(out.clone()));
            }
            let a = info.annotations;
            let mut ann = ToolAnnotations::new();
            ann.title = info.title.clone();
            ann.read_only_hint = a.read_only_hint;
            ann.destructive_hint = a.destructive_hint;
            ann.idempotent_hint = a.idempotent_hint;
            ann.open_world_hint = a.open_world_hint;
            tool.with_annotations(ann)
        })
        .collect();
    for m in management_tools() {
        let schema = match m.input_schema {
            Value::Object(o) => o,
            _ => Map::new(),
        };
        let ann = ToolAnnotations::with_title(m.title)
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false);
        tools.push(
            Tool::new(m.name, m.description, Arc::new(schema))
                .with_title(m.title)
                .with_annotations(ann),
        );
    }
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    tools
}
