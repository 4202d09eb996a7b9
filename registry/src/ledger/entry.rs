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

/// A new entry's fields, borrowed from wherever they are: what the spool writes. A call's entry is written from its
/// parts this way (no copy of each string into a [`NewEntry`] first); [`NewEntry::borrowed`] gives one of a
/// [`NewEntry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    pub time_ms: i64,
    pub kind: Kind,
    pub plugin: &'a str,
    pub version: &'a str,
    pub digest: &'a str,
    pub tool: &'a str,
    pub transport: &'a str,
    pub session: Option<&'a str>,
    pub principal: Option<&'a str>,
    pub duration_us: u64,
    pub fuel_used: u64,
    pub peak_memory: u64,
    pub outcome: &'a str,
    pub args_digest: Option<&'a str>,
    pub cost: u64,
    pub event: Option<&'a str>,
    pub data: Option<&'a str>,
}

impl NewEntry {
    pub fn borrowed(&self) -> EntryRef<'_> {
        EntryRef {
            time_ms: self.time_ms,
            kind: self.kind,
            plugin: &self.plugin,
            version: &self.version,
            digest: &self.digest,
            tool: &self.tool,
            transport: &self.caller.transport,
            session: self.caller.session.as_deref(),
            principal: self.caller.principal.as_deref(),
            duration_us: self.duration_us,
            fuel_used: self.fuel_used,
            peak_memory: self.peak_memory,
            outcome: &self.outcome,
            args_digest: self.args_digest.as_deref(),
            cost: self.cost,
            event: self.event.as_deref(),
            data: self.data.as_deref(),
        }
    }
}

/// What hashes, stores and sums an entry takes it as an [`EntryRef`], so an owned entry and one borrowed from a
/// spool chunk go the same way.
impl<'a> From<&'a NewEntry> for EntryRef<'a> {
    fn from(e: &'a NewEntry) -> Self {
        e.borrowed()
    }
}

impl<'a> From<&EntryRef<'a>> for EntryRef<'a> {
    fn from(e: &EntryRef<'a>) -> Self {
        *e
    }
}

impl EntryRef<'_> {
    pub fn owned(&self) -> NewEntry {
        let own = |s: Option<&str>| s.map(str::to_string);
        NewEntry {
            time_ms: self.time_ms,
            kind: self.kind,
            plugin: self.plugin.to_string(),
            version: self.version.to_string(),
            digest: self.digest.to_string(),
            tool: self.tool.to_string(),
            caller: Caller {
                transport: self.transport.to_string(),
                session: own(self.session),
                principal: own(self.principal),
            },
            duration_us: self.duration_us,
            fuel_used: self.fuel_used,
            peak_memory: self.peak_memory,
            outcome: self.outcome.to_string(),
            args_digest: own(self.args_digest),
            cost: self.cost,
            event: own(self.event),
            data: own(self.data),
        }
    }
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
