//! The gateway's view of the catalog: every loaded plugin's tools under namespaced names, with their schemas
//! compiled once. A plugin whose names or schemas are unusable is left out with a reason; it never poisons the rest.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::catalog::{Catalog, Entry, Problem};
use crate::runtime::plugin::ToolInfo;

/// Separates the plugin id from the tool name. Plugin ids are `[a-z0-9-]`, so the first `__` always ends the id and
/// the mapping is lossless: `system-info__cpu` is tool `cpu` of plugin `system-info`.
pub const SEPARATOR: &str = "__";
/// The reserved namespace of the gateway's own, read-only management tools.
pub const MANAGEMENT: &str = "plughost";
/// MCP's limit on tool name length.
pub const MAX_NAME: usize = 128;

/// The namespaced name of `tool` of `plugin`.
pub fn tool_name(plugin: &str, tool: &str) -> String {
    format!("{plugin}{SEPARATOR}{tool}")
}

/// Splits a namespaced name into (plugin, tool).
pub fn split_name(name: &str) -> Option<(&str, &str)> {
    name.split_once(SEPARATOR)
}

/// Whether `x-mcp-header` is a key anywhere in `v`.
fn mentions_param_header(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key("x-mcp-header") || m.values().any(mentions_param_header),
        Value::Array(a) => a.iter().any(mentions_param_header),
        _ => false,
    }
}

/// One exposed tool.
#[derive(Debug)]
pub struct ExposedTool {
    pub name: String,
    pub plugin: String,
    pub tool: String,
    pub info: ToolInfo,
    pub entry: Arc<Entry>,
    /// The input schema annotates a property with `x-mcp-header` (SEP-2243): its calls carry `Mcp-Param-*`
    /// headers that rmcp checks, so they never take the HTTP fast path.
    pub param_headers: bool,
    input: jsonschema::Validator,
    output: Option<jsonschema::Validator>,
}

/// An argument that does not match the tool's input schema.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SchemaViolation {
    /// JSON pointer into the arguments.
    pub instance_path: String,
    /// JSON pointer into the schema (the keyword that failed).
    pub schema_path: String,
    pub message: String,
}

/// Every way `value` breaks `validator`'s schema.
pub fn violations(validator: &jsonschema::Validator, value: &Value) -> Vec<SchemaViolation> {
    // The common case answered without building the error iterator (a boxed iterator per call).
    if validator.is_valid(value) {
        return Vec::new();
    }
    validator
        .iter_errors(value)
        .map(|e| SchemaViolation {
            instance_path: e.instance_path().to_string(),
            schema_path: e.schema_path().to_string(),
            message: e.to_string(),
        })
        .collect()
}

impl ExposedTool {
    /// Checks arguments against the input schema; every violation, with its paths.
    pub fn check_input(&self, args: &Value) -> Result<(), Vec<SchemaViolation>> {
        let errors = violations(&self.input, args);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Checks structured output against the output schema, if the tool has one.
    pub fn check_output(&self, out: &Value) -> Result<(), String> {
        match &self.output {
            Some(v) => v.validate(out).map_err(|e| {
                format!(
                    "the tool's structured output does not match its output schema at `{}`: {e}",
                    e.instance_path()
                )
            }),
            None => Ok(()),
        }
    }

    pub fn has_output_schema(&self) -> bool {
        self.output.is_some()
    }
}

/// The exposed tool set at one moment.
#[derive(Debug, Default)]
pub struct ToolIndex {
    /// By namespaced name: a BTreeMap, so listing order is deterministic.
    pub tools: BTreeMap<String, Arc<ExposedTool>>,
    /// Installed plugins that are not exposed, and why (from the catalog, plus schema/name problems).
    pub problems: Vec<Problem>,
}

fn compile_schema(
    schema: &serde_json::Map<String, Value>,
) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(&Value::Object(schema.clone())).map_err(|e| e.to_string())
}

impl ToolIndex {
    /// Builds the index from the catalog's loaded plugins.
    pub fn build(catalog: &Catalog) -> ToolIndex {
        let mut index = ToolIndex {
            tools: BTreeMap::new(),
            problems: catalog.problems(),
        };
        // Compiling the schemas is most of the cost of a start with many plugins: one plugin per core at a time.
        let entries = catalog.entries();
        let built = crate::par::map(&entries, Self::plugin_tools);
        for (entry, tools) in entries.iter().zip(built) {
            match tools {
                Ok(tools) => {
                    for t in tools {
                        index.tools.insert(t.name.clone(), Arc::new(t));
                    }
                }
                Err(reason) => index.problems.push(Problem {
                    id: entry.record.id.clone(),
                    version: entry.record.version.clone(),
                    reason,
                }),
            }
        }
        index.problems.sort_by(|a, b| a.id.cmp(&b.id));
        index
    }

    fn plugin_tools(entry: &Arc<Entry>) -> Result<Vec<ExposedTool>, String> {
        let plugin = entry.record.id.as_str();
        if plugin == MANAGEMENT {
            return Err(format!(
                "the id `{MANAGEMENT}` is reserved for the gateway's own tools"
            ));
        }
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for t in &entry.plugin.manifest.tools {
            let name = tool_name(plugin, &t.name);
            if name.len() > MAX_NAME {
                problems.push(format!(
                    "tool name `{name}` is longer than {MAX_NAME} characters"
                ));
                continue;
            }
            if t.input_schema.get("type").and_then(Value::as_str) != Some("object") {
                problems.push(format!(
                    "tool `{}`: the input schema must have \"type\": \"object\"",
                    t.name
                ));
                continue;
            }
            let input = match compile_schema(&t.input_schema) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(format!("tool `{}`: invalid input schema: {e}", t.name));
                    continue;
                }
            };
            let output = match &t.output_schema {
                Some(s) => match compile_schema(s) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        problems.push(format!("tool `{}`: invalid output schema: {e}", t.name));
                        continue;
                    }
                },
                None => None,
            };
            out.push(ExposedTool {
                name,
                plugin: plugin.to_string(),
                tool: t.name.clone(),
                info: t.clone(),
                entry: entry.clone(),
                param_headers: t.input_schema.values().any(mentions_param_header),
                input,
                output,
            });
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_even_with_underscores_in_the_tool() {
        let n = tool_name("system-info", "health__check");
        assert_eq!(n, "system-info__health__check");
        assert_eq!(split_name(&n), Some(("system-info", "health__check")));
        assert_eq!(split_name("nounderscore"), None);
    }
}
