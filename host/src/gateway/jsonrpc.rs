//! The JSON-RPC envelope check both transports run before a message reaches rmcp, so that input rmcp would drop
//! silently (stdio) or answer in plain text (HTTP) gets a typed JSON-RPC error instead: `-32700` for bytes that are
//! not JSON, `-32600` for JSON that is not one JSON-RPC message (a batch, a non-object, nesting deeper than serde's
//! limit, a line or body over the size limit). The id is echoed when it can be read, else `null`.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

/// JSON-RPC 2.0 error codes used here.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
/// Implementation-defined server error: the gateway is at a configured bound (e.g. live sessions).
pub const SERVER_BUSY: i64 = -32000;

/// Deepest nesting of arrays and objects accepted: rmcp parses with serde_json, which gives up at 128.
pub const MAX_DEPTH: usize = 127;

/// Why a message was refused before rmcp saw it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The JSON-RPC error code.
    pub code: i64,
    pub message: String,
    /// The request's id when it could be read.
    pub id: Option<Value>,
}

impl Refusal {
    pub fn new(code: i64, message: impl Into<String>, id: Option<Value>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            id,
        }
    }

    /// The JSON-RPC error response.
    pub fn to_json(&self) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": self.id.clone().unwrap_or(Value::Null),
            "error": { "code": self.code, "message": self.message },
        })
    }
}

/// The top-level members that decide whether this is a JSON-RPC message. Everything else is skipped unread.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    jsonrpc: Option<Value>,
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default)]
    result: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

/// Checks that `bytes` hold exactly one JSON-RPC 2.0 message (request, notification or response).
pub fn check(bytes: &[u8]) -> Result<(), Refusal> {
    // One parse for a well-formed message: the envelope's members are read and everything else is skipped (serde_json
    // skips ignored values without a depth limit). Only when that fails does a second parse, which builds nothing,
    // tell bad syntax (-32700) from JSON that is not a message (-32600), so the answers are those of checking
    // syntax first.
    let parsed = serde_json::from_slice::<Envelope>(bytes);
    if parsed.is_err()
        && let Err(e) = serde_json::from_slice::<IgnoredAny>(bytes)
    {
        return Err(Refusal::new(PARSE_ERROR, format!("parse error: {e}"), None));
    }
    if crate::json::depth_exceeds(bytes, MAX_DEPTH) {
        return Err(Refusal::new(
            INVALID_REQUEST,
            format!("invalid request: JSON nested deeper than {MAX_DEPTH} levels"),
            None,
        ));
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match first {
        Some(b'{') => {}
        Some(b'[') => {
            return Err(Refusal::new(
                INVALID_REQUEST,
                "invalid request: JSON-RPC batches are not supported by MCP; send one message at a time",
                None,
            ));
        }
        _ => {
            return Err(Refusal::new(
                INVALID_REQUEST,
                "invalid request: a JSON-RPC message is a JSON object",
                None,
            ));
        }
    }
    let env =
        parsed.map_err(|e| Refusal::new(INVALID_REQUEST, format!("invalid request: {e}"), None))?;
    let id = match env.id {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id),
        // A response to a request we could not read carries a null id.
        Some(Value::Null) if env.method.is_none() => None,
        Some(_) => {
            return Err(Refusal::new(
                INVALID_REQUEST,
                "invalid request: `id` must be a string or a number",
                None,
            ));
        }
    };
    if env.jsonrpc.as_ref().and_then(Value::as_str) != Some("2.0") {
        return Err(Refusal::new(
            INVALID_REQUEST,
            "invalid request: `jsonrpc` must be \"2.0\"",
            id,
        ));
    }
    match env.method {
        Some(Value::String(_)) => Ok(()),
        Some(_) => Err(Refusal::new(
            INVALID_REQUEST,
            "invalid request: `method` must be a string",
            id,
        )),
        None if env.result.is_some() || env.error.is_some() => Ok(()),
        None => Err(Refusal::new(
            INVALID_REQUEST,
            "invalid request: a request needs a `method` (a response needs `result` or `error`)",
            id,
        )),
    }
}

/// Whether `bytes` could pass [`check`] as far as its shape goes: one JSON object (not a batch, not a scalar) nested no
/// deeper than [`MAX_DEPTH`]. A body that passes this and parses into a stricter request type (the fast path's:
/// `jsonrpc`, a string or number `id`, a string `method`, `params` and nothing else) passes [`check`] too, so its
/// own parse can be skipped. The shape must be asked first: serde reads a struct from a JSON array as well. (Its
/// depth limit is the same as [`MAX_DEPTH`]; the bound is asked here anyway rather than left to serde.)
pub fn object_within_depth(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
        && !crate::json::depth_exceeds(bytes, MAX_DEPTH)
}

/// The method of a message that passed [`check`], when it is a request or notification.
pub fn method_of(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct M {
        method: Option<String>,
    }
    serde_json::from_slice::<M>(bytes).ok()?.method
}

/// The id of a message that passed [`check`].
pub fn id_of(bytes: &[u8]) -> Option<Value> {
    #[derive(Deserialize)]
    struct I {
        id: Option<Value>,
    }
    serde_json::from_slice::<I>(bytes).ok()?.id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        assert!(check(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).is_ok());
        assert!(check(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#).is_ok());
        assert_eq!(check(b"{nope").expect_err("refused").code, PARSE_ERROR);
        assert_eq!(check(b"[]").expect_err("refused").code, INVALID_REQUEST);
        assert_eq!(check(b"5").expect_err("refused").code, INVALID_REQUEST);
        let r = check(br#"{"jsonrpc":"1.0","id":"a","method":"x"}"#).expect_err("refused");
        assert_eq!((r.code, r.id), (INVALID_REQUEST, Some(json!("a"))));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(
            check(deep.as_bytes()).expect_err("refused").code,
            INVALID_REQUEST
        );
        let ok_depth = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{}{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(check(ok_depth.as_bytes()).is_ok());
        // Bad syntax after a readable envelope, or after the message, is still a parse error.
        for bad in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"x","params":[1,}"#[..],
            br#"{"jsonrpc":"2.0","id":1,"method":"x"} x"#,
            br#"{"jsonrpc":"2.0","id":1,"method":"x""#,
        ] {
            assert_eq!(check(bad).expect_err("refused").code, PARSE_ERROR);
        }
        // Well-formed JSON the envelope cannot be read from is an invalid request: too deep an id, a member of
        // the wrong type read by serde, a non-object.
        let deep_id = format!(
            r#"{{"jsonrpc":"2.0","id":{}{},"method":"x"}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let r = check(deep_id.as_bytes()).expect_err("refused");
        assert!(
            r.code == INVALID_REQUEST && r.message.contains("deeper"),
            "{r:?}"
        );
        assert_eq!(
            check(br#"["2.0",1,"x"]"#).expect_err("refused").code,
            INVALID_REQUEST
        );
        let r = check(br#"{"jsonrpc":"2.0","id":1,"method":"x","result":1,"result":2}"#)
            .expect_err("refused");
        assert_eq!(r.code, INVALID_REQUEST, "{r:?}");
        assert!(!crate::json::depth_exceeds(br#"{"a":"[[[[\"[["}"#, 1));
        assert!(crate::json::depth_exceeds(br#"{"a":[{}]}"#, 2));
    }
}
