//! Every bundled plugin's tool schemas pass the MCP Inspector's portability check (its `schemaLint`): no `type`
//! spelled as an array, no bare `true`/`false` where a schema object is expected, no schema that constrains
//! nothing, an object at the root of every input schema, and no `$ref` outside the document. Some MCP clients
//! reject or silently weaken tools whose schemas use these legal-but-unportable forms.

use plughost::{Grants, Host, PluginSettings};
use plughost_tests as fx;
use serde_json::{Map, Value};

/// Keywords whose value may be a bare boolean by design (`additionalProperties: false` and the like).
const BOOLEAN_VALUED: [&str; 4] = [
    "additionalProperties",
    "unevaluatedProperties",
    "additionalItems",
    "unevaluatedItems",
];
const SUBSCHEMA: [&str; 11] = [
    "items",
    "contains",
    "not",
    "propertyNames",
    "if",
    "then",
    "else",
    "additionalProperties",
    "unevaluatedProperties",
    "additionalItems",
    "unevaluatedItems",
];
const SUBSCHEMA_LIST: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
const SUBSCHEMA_MAP: [&str; 6] = [
    "properties",
    "patternProperties",
    "dependentSchemas",
    "dependencies",
    "$defs",
    "definitions",
];
/// Keywords that constrain a value; a schema with none of them accepts anything.
const CONSTRAINING: [&str; 43] = [
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "format",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxContains",
    "minContains",
    "maxProperties",
    "minProperties",
    "required",
    "dependentRequired",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "items",
    "prefixItems",
    "contains",
    "additionalItems",
    "unevaluatedItems",
    "properties",
    "patternProperties",
    "additionalProperties",
    "unevaluatedProperties",
    "propertyNames",
    "dependentSchemas",
    "dependencies",
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
];

/// The unportable spots in one schema, as `path: what`.
fn lint(node: &Value, path: &str, keyword: Option<&str>, out: &mut Vec<String>) {
    let o = match node {
        Value::Bool(b) => {
            if !keyword.is_some_and(|k| BOOLEAN_VALUED.contains(&k)) {
                out.push(format!(
                    "{path}: bare `{b}` where a schema object is expected"
                ));
            }
            return;
        }
        Value::Object(o) => o,
        _ => return,
    };
    if let Some(t @ Value::Array(_)) = o.get("type") {
        out.push(format!("{path}: `type` is an array ({t})"));
    }
    if let Some(r) = o.get("$ref").and_then(Value::as_str)
        && !r.starts_with('#')
    {
        out.push(format!("{path}: `$ref` outside the document ({r})"));
    }
    // Annotations (`description`, `title`, …) and `$defs` (schemas for others) constrain nothing themselves.
    if !o.keys().any(|k| CONSTRAINING.contains(&k.as_str())) {
        out.push(format!("{path}: constrains nothing (accepts any value)"));
    }
    for k in SUBSCHEMA_MAP {
        if let Some(Value::Object(m)) = o.get(k) {
            for (name, sub) in m {
                lint(sub, &format!("{path}.{k}.{name}"), Some(k), out);
            }
        }
    }
    for k in SUBSCHEMA_LIST {
        if let Some(Value::Array(list)) = o.get(k) {
            for (i, sub) in list.iter().enumerate() {
                lint(sub, &format!("{path}.{k}[{i}]"), Some(k), out);
            }
        }
    }
    for k in SUBSCHEMA {
        match o.get(k) {
            Some(Value::Array(list)) if k == "items" => {
                for (i, sub) in list.iter().enumerate() {
                    lint(sub, &format!("{path}.{k}[{i}]"), Some(k), out);
                }
            }
            Some(sub) => lint(sub, &format!("{path}.{k}"), Some(k), out),
            None => {}
        }
    }
}

fn lint_tool(
    tool: &str,
    input: &Map<String, Value>,
    output: Option<&Map<String, Value>>,
) -> Vec<String> {
    let mut out = Vec::new();
    let input = Value::Object(input.clone());
    if input.get("type").and_then(Value::as_str) != Some("object") {
        out.push(format!(
            "{tool}.inputSchema: the root is not an object schema"
        ));
    }
    lint(&input, &format!("{tool}.inputSchema"), None, &mut out);
    if let Some(o) = output {
        lint(
            &Value::Object(o.clone()),
            &format!("{tool}.outputSchema"),
            None,
            &mut out,
        );
    }
    out
}

#[test]
fn the_checker_finds_what_the_inspector_warns_about() {
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "a": {"type": ["string", "null"]},
            "b": true,
            "c": {"description": "anything"},
            "d": {"$ref": "https://example.com/s.json"},
            "e": {"type": "object", "additionalProperties": true},
        },
    });
    let found = lint_tool("t", schema.as_object().unwrap_or(&Map::new()), None);
    assert_eq!(found.len(), 4, "{found:#?}");
}

#[tokio::test]
async fn every_bundled_plugins_tool_schemas_are_portable() {
    let host = Host::ephemeral().unwrap_or_else(|e| panic!("{e}"));
    let plugins = [
        (fx::SYSTEM_INFO, vec!["system", "log"]),
        (
            fx::CLOUDFLARE,
            vec!["http:https://api.cloudflare.com", "config"],
        ),
        (fx::DOCKER, vec!["container:read"]),
    ];
    let mut found = Vec::new();
    let mut tools = 0;
    let mut nullable = Vec::new();
    for (path, grants) in plugins {
        let grants = Grants::parse(grants).unwrap_or_else(|e| panic!("{e}"));
        let (p, _) = host
            .load(&fx::bytes(path), |_| PluginSettings {
                grants,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("load {path}: {e}"));
        if let Some(t) = p.manifest.tool("inspect_container") {
            nullable.push(
                t.output_schema.clone().unwrap_or_default()["properties"]["exit_code"].clone(),
            );
        }
        if let Some(t) = p.manifest.tool("stop_container") {
            nullable.push(t.input_schema["properties"]["timeout_seconds"].clone());
        }
        for t in &p.manifest.tools {
            tools += 1;
            let name = format!("{}.{}", p.manifest.id, t.name);
            found.extend(lint_tool(&name, &t.input_schema, t.output_schema.as_ref()));
        }
    }
    assert!(tools > 30, "{tools} tools");
    // Nothing lost: an output field that may be null, and an optional argument a client may send as null, still
    // say so (the host checks arguments and output against these schemas).
    assert_eq!(nullable.len(), 2);
    for n in nullable {
        let branches = n["anyOf"].as_array().cloned().unwrap_or_default();
        let types: Vec<&str> = branches.iter().filter_map(|b| b["type"].as_str()).collect();
        assert_eq!(types, ["integer", "null"], "{n}");
    }
    assert!(
        found.is_empty(),
        "{} findings:\n{}",
        found.len(),
        found.join("\n")
    );
}
