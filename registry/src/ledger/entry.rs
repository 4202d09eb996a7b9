//! What a ledger entry is: who called ([`Caller`]), what kind of entry, the fields appended ([`NewEntry`]) and
//! stored ([`Entry`]), the digest kept instead of a call's arguments, and the checks an event must pass.

use serde::{Deserialize, Serialize};

use super::{LedgerError, MAX_EVENT_BYTES, Result};

/// Who made a call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// `cli`, `stdio`, `http`.
    pub transport: String,
    /// The MCP session (or client) id, if there is one.
    pub session: Option<String>,
    /// The authenticated principal, if any.
    pub principal: Option<String>,
}

/// What kind of entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A tool call (successful or not).
    Call,
    /// A domain event a plugin appended through the `ledger` capability.
    Event,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Call => "call",
            Kind::Event => "event",
        }
    }
    pub(crate) fn parse(s: &str) -> Option<Kind> {
        match s {
            "call" => Some(Kind::Call),
            "event" => Some(Kind::Event),
            _ => None,
        }
    }
}

/// An entry to append; the ledger assigns `seq`, `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEntry {
    pub time_ms: i64,
    pub kind: Kind,
    pub plugin: String,
    pub version: String,
    pub digest: String,
    pub tool: String,
    pub caller: Caller,
    pub duration_us: u64,
    pub fuel_used: u64,
    pub peak_memory: u64,
    /// `ok`, or the error kind (`out-of-fuel`, `denied`, `busy`, …). `event` for events.
    pub outcome: String,
    /// blake3 of the call's argument JSON, never the arguments.
    pub args_digest: Option<String>,
    /// Cost in tokens charged by the plugin's contract.
    pub cost: u64,
    /// For events: the event kind.
    pub event: Option<String>,
    /// For events: the JSON payload (bounded).
    pub data: Option<String>,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    #[serde(flatten)]
    pub entry: NewEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// The digest the ledger keeps of a call's arguments.
pub fn args_digest(arguments_json: &str) -> String {
    let hex = blake3::hash(arguments_json.as_bytes()).to_hex();
    let mut digest = String::with_capacity(7 + hex.len());
    digest.push_str("blake3:");
    digest.push_str(&hex);
    digest
}

/// Checks an event before it is appended.
pub fn check_event(kind: &str, data: &str) -> Result<()> {
    if kind.is_empty()
        || kind.len() > 64
        || !kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return Err(LedgerError::BadEventKind(kind.to_string()));
    }
    if data.len() > MAX_EVENT_BYTES {
        return Err(LedgerError::EventTooLarge(data.len()));
    }
    serde_json::from_str::<serde_json::Value>(data)
        .map_err(|e| LedgerError::EventNotJson(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_checked() {
        assert!(check_event("dns.record-created", r#"{"id":1}"#).is_ok());
        assert!(matches!(
            check_event("Bad Kind", "{}"),
            Err(LedgerError::BadEventKind(_))
        ));
        assert!(matches!(
            check_event("k", "not json"),
            Err(LedgerError::EventNotJson(_))
        ));
        let big = format!("\"{}\"", "x".repeat(MAX_EVENT_BYTES));
        assert!(matches!(
            check_event("k", &big),
            Err(LedgerError::EventTooLarge(_))
        ));
    }
}
