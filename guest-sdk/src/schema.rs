//! Tool schemas in the subset of JSON Schema that MCP clients read alike.
//!
//! schemars spells an `Option<T>` field `"type": ["T", "null"]`. That is legal JSON Schema, but several MCP
//! clients read `type` as one string and reject the tool or drop the constraint (the MCP Inspector's portability
//! check warns about each one). So before a schema leaves the plugin, every type list becomes `anyOf` branches of
//! one type each: `{"anyOf": [{"type": "string"}, {"type": "null"}]}`. That keeps the meaning exactly — the host
//! checks arguments and structured output against these schemas, and an optional argument given as `null` or an
//! output field that is `null` stay valid (dropping `null` from the type would refuse both).

use serde_json::{Map, Value};

/// Keywords that describe a value rather than constrain it; they stay on the node when its type is split.
const ANNOTATIONS: [&str; 8] = [
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
];
/// Keywords holding one subschema.
const ONE: [&str; 11] = [
    "items",
    "additionalProperties",
    "unevaluatedProperties",
    "additionalItems",
    "unevaluatedItems",
    "not",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
];
/// Keywords holding a list of subschemas.
const LIST: [&str; 4] = ["anyOf", "allOf", "oneOf", "prefixItems"];
/// Keywords holding a name → subschema map.
const MAP: [&str; 5] = [
    "properties",
    "patternProperties",
    "dependentSchemas",
    "$defs",
    "definitions",
];
/// Deepest nesting rewritten (derived schemas are shallow; this only bounds the recursion).
const MAX_DEPTH: usize = 64;

/// Rewrites a tool's input or output schema into the portable subset.
pub(crate) fn portable(schema: &mut Value) {
    walk(schema, 0);
}

fn walk(node: &mut Value, depth: usize) {
    let Value::Object(o) = node else { return };
    if depth > MAX_DEPTH {
        return;
    }
    split_types(o);
    for k in ONE {
        if let Some(sub) = o.get_mut(k) {
            walk(sub, depth + 1);
        }
    }
    for k in LIST {
        if let Some(Value::Array(subs)) = o.get_mut(k) {
            subs.iter_mut().for_each(|s| walk(s, depth + 1));
        }
    }
    for k in MAP {
        if let Some(Value::Object(subs)) = o.get_mut(k) {
            subs.values_mut().for_each(|s| walk(s, depth + 1));
        }
    }
}

/// `{"type": ["string", "null"], "format": "date-time", "description": d}` →
/// `{"description": d, "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}`.
fn split_types(o: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = o.get("type").cloned() else {
        return;
    };
    o.remove("type");
    let constraints: Map<String, Value> = o
        .iter()
        .filter(|(k, _)| !ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    o.retain(|k, _| ANNOTATIONS.contains(&k.as_str()));
    let branches: Vec<Value> = types
        .into_iter()
        .map(|t| {
            let mut b = Map::new();
            if t != "null" {
                b.extend(constraints.clone());
            }
            b.insert("type".into(), t);
            Value::Object(b)
        })
        .collect();
    o.insert("anyOf".into(), Value::Array(branches));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_lists_become_branches_of_one_type_each() {
        let mut schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": ["string", "null"], "description": "A name."},
                "at": {"type": ["string", "null"], "format": "date-time"},
                "thing": {"anyOf": [{"$ref": "#/$defs/T"}, {"type": "null"}]},
            },
            "$defs": {"T": {"type": "object", "properties": {"n": {"type": ["integer", "null"], "minimum": 0}}}},
        });
        portable(&mut schema);
        assert_eq!(
            schema["properties"]["name"],
            json!({"description": "A name.", "anyOf": [{"type": "string"}, {"type": "null"}]})
        );
        assert_eq!(
            schema["properties"]["at"],
            json!({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]})
        );
        assert_eq!(
            schema["properties"]["thing"],
            json!({"anyOf": [{"$ref": "#/$defs/T"}, {"type": "null"}]})
        );
        assert_eq!(
            schema["$defs"]["T"]["properties"]["n"],
            json!({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]})
        );
        assert_eq!(schema["type"], "object");
    }
}
