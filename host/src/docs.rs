//! A plugin's documentation for people and agents, rendered from what it declares: its manifest (name, version,
//! description, each tool with its arguments from the input schema and its behaviour hints) and the capabilities it
//! declares. The same Markdown is `plughost docs ID` and the MCP resource `plughost://plugins/<id>/docs`.

use crate::runtime::plugin::{Annotations, Manifest};

/// The URI of a plugin's docs as an MCP resource.
pub fn uri(plugin: &str) -> String {
    format!("plughost://plugins/{plugin}/docs")
}

/// The plugin id a docs URI names, if it is one.
pub fn plugin_of(uri: &str) -> Option<&str> {
    uri.strip_prefix("plughost://plugins/")?
        .strip_suffix("/docs")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// The Markdown page: overview, capabilities, then each tool (namespaced as MCP clients call it).
pub fn render(manifest: &Manifest, declared: &[String]) -> String {
    let mut out = format!(
        "# {} ({} {})\n\n{}\n\n",
        manifest.name, manifest.id, manifest.version, manifest.description
    );
    out.push_str("## Capabilities it asks for\n\n");
    if declared.is_empty() {
        out.push_str("None: it only computes on its arguments.\n\n");
    } else {
        for d in declared {
            out.push_str(&format!("- `{d}`\n"));
        }
        out.push('\n');
    }
    out.push_str("## Tools\n");
    for t in &manifest.tools {
        out.push_str(&format!(
            "\n### `{}__{}`{}\n\n{}\n",
            manifest.id,
            t.name,
            t.title
                .as_deref()
                .map(|x| format!(" — {x}"))
                .unwrap_or_default(),
            t.description
        ));
        let mut hints = hints(&t.annotations);
        if t.long_running {
            hints.push(
                "may run long: clients that support MCP tasks get a task and poll for its result",
            );
        }
        if !hints.is_empty() {
            out.push_str(&format!("\n_{}_\n", hints.join(", ")));
        }
        let args = arguments(&t.input_schema);
        out.push_str("\nArguments:");
        if args.is_empty() {
            out.push_str(" none\n");
        } else {
            out.push('\n');
            for a in args {
                out.push_str(&format!("- {a}\n"));
            }
        }
        if t.output_schema.is_some() {
            out.push_str("\nReturns structured output (see its output schema in `tools/list`).\n");
        }
    }
    out
}

fn hints(a: &Annotations) -> Vec<&'static str> {
    let mut h = Vec::new();
    if a.read_only_hint == Some(true) {
        h.push("read-only");
    }
    if a.destructive_hint == Some(true) {
        h.push("destructive");
    }
    if a.idempotent_hint == Some(true) {
        h.push("idempotent");
    }
    if a.open_world_hint == Some(true) {
        h.push("reaches outside services");
    }
    h
}

/// A tool's arguments as people read them, one line each, from its input schema: `name: type (required) — description`.
/// Types given as a list or as `anyOf` of single types (the portable form) are joined with `|`.
pub fn arguments(schema: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    use serde_json::Value;
    fn type_of(v: &Value) -> String {
        match (v.get("type"), v.get("anyOf").or_else(|| v.get("oneOf"))) {
            (Some(Value::String(t)), _) => match (t.as_str(), v.get("items").map(type_of)) {
                ("array", Some(items)) if !items.is_empty() => format!("array of {items}"),
                _ => t.clone(),
            },
            (Some(Value::Array(ts)), _) => ts
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("|"),
            (None, Some(Value::Array(alts))) => {
                alts.iter().map(type_of).collect::<Vec<_>>().join("|")
            }
            _ if v.get("enum").is_some() => "enum".into(),
            _ => String::new(),
        }
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, p)| {
            let mut line = name.clone();
            let t = type_of(p);
            if !t.is_empty() {
                line.push_str(&format!(": {t}"));
            }
            if let Some(values) = p.get("enum").and_then(Value::as_array) {
                let vs: Vec<String> = values.iter().take(8).map(Value::to_string).collect();
                line.push_str(&format!(" ({})", vs.join(", ")));
            }
            if required.contains(&name.as_str()) {
                line.push_str(" (required)");
            } else if let Some(d) = p.get("default") {
                line.push_str(&format!(" (default {d})"));
            }
            if let Some(d) = p.get("description").and_then(Value::as_str) {
                let first = d.lines().next().unwrap_or_default();
                line.push_str(&format!(" — {first}"));
            }
            line
        })
        .collect()
}
