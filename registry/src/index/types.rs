//! The typed records the index stores and reads: plugins, versions, publishers, keys, limits and contracts, config
//! entries, history; and how a plugin row is read.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Per-plugin quotas set by the operator. `None` means the host's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Contract: at most this many calls per `window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_per_window: Option<u64>,
    /// Contract: tokens one call costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_call: Option<u64>,
    /// Contract: tokens the plugin may spend per `window`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
    /// The contract window (a sliding window ending now). Default: a day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Contracts of single tools, checked in addition to the plugin's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, ToolContract>,
    /// Contracts of single principals (a client token's name, an OAuth subject: the ledger's `principal`),
    /// checked in addition to the plugin's and the tools': each counts only that principal's calls of the plugin.
    /// A principal's contract has no price of its own (`cost_per_call` is unused): calls cost what the plugin's and
    /// tools' prices say.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub principals: BTreeMap<String, ToolContract>,
    /// Tools that may run long: over MCP, a client that declares the Tasks extension (2026-07-28) gets a task
    /// handle for a call of one at once and polls `tasks/get` for the result.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub long_running: BTreeSet<String>,
    /// Tools the operator says are *not* long-running, though the plugin declares them so (`--long-running false`):
    /// their calls are answered in line.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub not_long_running: BTreeSet<String>,
}

/// A contract on one tool: calls per window and a cost budget, like the plugin's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolContract {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_per_window: Option<u64>,
    /// Tokens one call of this tool costs (instead of the plugin's cost per call).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_call: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
    /// Default: the plugin's window, else a day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
}

impl ToolContract {
    pub fn is_empty(&self) -> bool {
        *self == ToolContract::default()
    }
}

/// A contract window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    Minute,
    Hour,
    Day,
    /// 30 days.
    Month,
}

impl Window {
    pub const fn millis(self) -> i64 {
        match self {
            Window::Minute => 60_000,
            Window::Hour => 3_600_000,
            Window::Day => 86_400_000,
            Window::Month => 30 * 86_400_000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "30 days",
        }
    }

    /// `minute`, `hour`, `day`, `month` (or `30d`).
    pub fn parse(s: &str) -> Option<Window> {
        match s.trim() {
            "minute" | "min" | "m" => Some(Window::Minute),
            "hour" | "h" => Some(Window::Hour),
            "day" | "d" => Some(Window::Day),
            "month" | "30d" | "30days" => Some(Window::Month),
            _ => None,
        }
    }
}

impl PluginLimits {
    /// Whether any contract (calls per window, cost budget) is set.
    pub fn has_contract(&self) -> bool {
        self.calls_per_window.is_some()
            || self.budget.is_some()
            || self
                .tools
                .values()
                .chain(self.principals.values())
                .any(|t| t.calls_per_window.is_some() || t.budget.is_some())
    }

    /// Tokens one call of `tool` costs: the tool's own price, else the plugin's, else nothing.
    pub fn cost_of(&self, tool: &str) -> u64 {
        self.tools
            .get(tool)
            .and_then(|t| t.cost_per_call)
            .or(self.cost_per_call)
            .unwrap_or(0)
    }
}

/// Who signed an installed version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publisher {
    pub name: String,
    pub fingerprint: String,
    pub revoked: bool,
}

/// An installed plugin, as `list` and `info` show it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginRecord {
    pub id: String,
    pub version: String,
    pub digest: String,
    pub size: u64,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// `None` when installed with `--allow-unsigned`.
    pub publisher: Option<Publisher>,
    pub unsigned: bool,
    /// The grants the operator approved.
    pub grants: Vec<String>,
    /// The capabilities the publisher declared.
    pub declared: Vec<String>,
    pub limits: PluginLimits,
    pub installed_at: i64,
    pub updated_at: i64,
    /// Where the current version was fetched from (`oci://…`, a URL); `None` for a local file.
    pub source: Option<String>,
    /// For an OCI pull: the digest of the manifest the current version was read through.
    pub manifest_digest: Option<String>,
    /// The plugin's manifest (its `describe()`), as JSON.
    #[serde(skip)]
    pub manifest_json: String,
    /// The index row of the current version.
    #[serde(skip)]
    pub seq: i64,
}

/// One installed version of a plugin.
#[derive(Debug, Clone, Serialize)]
pub struct VersionRecord {
    pub seq: i64,
    pub version: String,
    pub digest: String,
    pub publisher: Option<String>,
    pub grants: Vec<String>,
    pub installed_at: i64,
    pub current: bool,
}

/// A trusted publisher key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRecord {
    pub name: String,
    pub fingerprint: String,
    pub trusted_at: i64,
    pub revoked_at: Option<i64>,
}

/// A plugin setting; secrets carry no value when listed.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigEntry {
    pub key: String,
    /// `None` for secrets: they are never printed back.
    pub value: Option<String>,
    pub secret: bool,
}

/// One line of the install history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub at: i64,
    pub plugin: Option<String>,
    pub action: String,
    pub detail: String,
}

pub(crate) const PLUGIN_SELECT: &str = "SELECT p.id, v.version, v.digest, v.size, p.enabled, p.disabled_reason,
        k.name, k.fingerprint, k.revoked_at, v.key_fingerprint, v.grants, v.declared, p.limits, p.installed_at,
        p.updated_at, v.manifest, v.seq, v.source, v.manifest_digest
     FROM plugins p JOIN versions v ON v.seq = p.current_seq
     LEFT JOIN keys k ON k.fingerprint = v.key_fingerprint";

pub(crate) fn plugin_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PluginRecord> {
    let json_list = |i: usize| -> rusqlite::Result<Vec<String>> {
        let s: String = r.get(i)?;
        serde_json::from_str(&s).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    };
    let limits: String = r.get(12)?;
    let key_fp: Option<String> = r.get(9)?;
    let publisher = match (
        r.get::<_, Option<String>>(6)?,
        r.get::<_, Option<String>>(7)?,
    ) {
        (Some(name), Some(fingerprint)) => Some(Publisher {
            name,
            fingerprint,
            revoked: r.get::<_, Option<i64>>(8)?.is_some(),
        }),
        // The key row is gone (should not happen: keys are revoked, not deleted); still show whose it was.
        _ => key_fp.clone().map(|fingerprint| Publisher {
            name: "(unknown key)".into(),
            fingerprint,
            revoked: true,
        }),
    };
    Ok(PluginRecord {
        id: r.get(0)?,
        version: r.get(1)?,
        digest: r.get(2)?,
        size: r.get::<_, i64>(3)? as u64,
        enabled: r.get::<_, i64>(4)? != 0,
        disabled_reason: r.get(5)?,
        unsigned: key_fp.is_none(),
        publisher,
        grants: json_list(10)?,
        declared: json_list(11)?,
        limits: serde_json::from_str(&limits).unwrap_or_default(),
        installed_at: r.get(13)?,
        updated_at: r.get(14)?,
        manifest_json: r.get(15)?,
        seq: r.get(16)?,
        source: r.get(17)?,
        manifest_digest: r.get(18)?,
    })
}

/// A value as the JSON text the index stores (grant lists, limits).
pub(crate) fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}
