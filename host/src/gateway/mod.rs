//! The MCP gateway core: every enabled plugin's tools, namespaced, validated and metered. This module is
//! protocol-neutral (the tool index, argument validation, dispatch, management tools, hot reload, metrics). The MCP
//! transports live in [`mcp`] (the rmcp handler) and [`http`] (Streamable HTTP with /health, /ready, /metrics).

mod answer;
pub mod auth;
mod docs;
mod fast;
pub mod http;
pub mod index;
pub mod jsonrpc;
mod listing;
pub mod mcp;
pub mod metrics;
pub mod oauth;
mod principal;
mod prompts;
mod repoll;
pub mod resources;
mod session_calls;
pub mod stdio;
mod stdio_fast;
pub mod tasks;
pub mod token;
pub mod ui;
mod wire;

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::call::CallResult;
use crate::catalog::{Catalog, CatalogError, limits_from};
use crate::ledger::Caller;
pub use index::{ExposedTool, SchemaViolation, ToolIndex, split_name, tool_name};
pub use metrics::Metrics;

/// A gateway lock's data, even if a thread panicked holding it: what it guards (in-flight maps, kept tokens) stays
/// consistent between statements, and refusing to serve over it would turn one panic into an outage.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Longest client name ("name version") a call is ledgered under; the client chooses it, so it is cut here.
pub(crate) const MAX_CLIENT_LABEL: usize = 128;

/// How a client that named itself (`clientInfo` in `initialize`, or in a 2026-07-28 request's `_meta`) appears as
/// the session of its calls in the ledger: "name version", at most [`MAX_CLIENT_LABEL`] bytes (cut at a character
/// boundary, with "…").
pub(crate) fn client_label(info: &rmcp::model::Implementation) -> String {
    let label = format!("{} {}", info.name, info.version);
    if label.len() <= MAX_CLIENT_LABEL {
        return label;
    }
    let mut end = MAX_CLIENT_LABEL - '…'.len_utf8();
    while !label.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &label[..end])
}

/// The client a 2026-07-28 request names in its own `_meta`, when that decodes (as rmcp's `client_info()` reads it).
pub(crate) fn meta_client(meta: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    meta.get("io.modelcontextprotocol/clientInfo")
        .and_then(client_of)
}

/// The label of the client `info` (a `_meta`'s `clientInfo`) names, if it decodes as rmcp's `Implementation`.
pub(crate) fn client_of(info: &serde_json::Value) -> Option<String> {
    use serde::Deserialize;
    let info = rmcp::model::Implementation::deserialize(info).ok()?;
    Some(client_label(&info))
}

/// Why a request was refused before any guest ran. These are protocol errors (JSON-RPC -32602), not tool results.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GatewayError {
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    #[error("invalid arguments for `{tool}`: {}", .violations.iter().map(|v| format!("{} at `{}` (schema {})", v.message, v.instance_path, v.schema_path)).collect::<Vec<_>>().join("; "))]
    InvalidArguments {
        tool: String,
        violations: Vec<SchemaViolation>,
    },
    /// The plugin is installed but not loaded (disabled, or it failed to load).
    #[error("{0}")]
    Unavailable(String),
    /// The caller's token does not cover this tool.
    #[error(
        "denied: tool `{tool}` is not in the scope of token `{principal}` (the operator sets a token's plugins and tools with `plughost tokens create`)"
    )]
    OutOfScope { tool: String, principal: String },
}

/// What a tool call produced.
#[derive(Debug)]
pub enum Reply {
    /// A plugin tool ran (successfully or not); the report is in `result`.
    Tool {
        result: Box<CallResult>,
        tool: Arc<ExposedTool>,
        /// Set when the tool succeeded but its structured output broke its own output schema.
        output_error: Option<String>,
    },
    /// A management tool answered.
    Management(Value),
    /// A management tool could not answer (e.g. `plughost__plugin_info` for a plugin that is not installed): a tool
    /// error result (`isError: true`), its kind in `_meta`.
    ManagementError { kind: &'static str, message: String },
}

/// A read-only management tool of the gateway itself.
#[derive(Debug, Clone)]
pub struct ManagementTool {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub input_schema: Value,
}

/// The gateway's own tools. None of them can change grants, install or remove: that stays on the operator's CLI.
pub fn management_tools() -> Vec<ManagementTool> {
    let no_args = json!({ "type": "object", "properties": {}, "additionalProperties": false });
    vec![
        ManagementTool {
            name: "plughost__plugins",
            title: "Installed plugins",
            description: "Lists installed plugins: version, status (loaded, or why not), publisher and tool count.",
            input_schema: no_args.clone(),
        },
        ManagementTool {
            name: "plughost__plugin_info",
            title: "Plugin info",
            description: "One plugin's tools, grants, declared capabilities and limits.",
            input_schema: json!({
                "type": "object",
                "properties": { "id": { "type": "string", "description": "The plugin id, e.g. system-info." } },
                "required": ["id"],
                "additionalProperties": false
            }),
        },
        ManagementTool {
            name: "plughost__quotas",
            title: "Quotas and usage",
            description: "Per plugin, from the ledger: fuel (limit, last, p50, p99), memory (limit, last peak, max), deadline, concurrency, and each contract's calls and cost used / allowed in its window.",
            input_schema: no_args.clone(),
        },
        ManagementTool {
            name: "plughost__metrics",
            title: "Metrics summary",
            description: "Per plugin and tool: calls, errors by outcome, fuel used, peak memory, mean latency.",
            input_schema: no_args,
        },
    ]
}

/// The management tools' input validators, compiled once.
fn management_validators() -> &'static [(&'static str, jsonschema::Validator)] {
    static V: std::sync::OnceLock<Vec<(&'static str, jsonschema::Validator)>> =
        std::sync::OnceLock::new();
    V.get_or_init(|| {
        management_tools()
            .into_iter()
            .filter_map(|m| Some((m.name, jsonschema::validator_for(&m.input_schema).ok()?)))
            .collect()
    })
}

/// The gateway.
#[derive(Debug)]
pub struct Gateway {
    catalog: Arc<Catalog>,
    index: RwLock<Arc<ToolIndex>>,
    pub metrics: Metrics,
    changed: tokio::sync::broadcast::Sender<()>,
    started: Instant,
}

impl Gateway {
    /// Loads every enabled plugin from the registry and builds the tool index.
    pub async fn open(catalog: Arc<Catalog>) -> Result<Arc<Gateway>, CatalogError> {
        catalog.refresh().await?;
        let index = ToolIndex::build(&catalog);
        for p in &index.problems {
            tracing::warn!(plugin = %p.id, "not served: {}", p.reason);
        }
        let (changed, _) = tokio::sync::broadcast::channel(16);
        Ok(Arc::new(Gateway {
            catalog,
            index: RwLock::new(Arc::new(index)),
            metrics: Metrics::default(),
            changed,
            started: Instant::now(),
        }))
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The current tool set. Calls keep the `Arc` they started with.
    pub fn index(&self) -> Arc<ToolIndex> {
        self.index.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Receives a message whenever the tool set changes.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<()> {
        self.changed.subscribe()
    }

    /// Picks up registry changes (install, upgrade, rollback, remove, grants, limits, config). Returns whether the
    /// tool set was rebuilt; subscribers are told.
    pub async fn refresh(&self) -> Result<bool, CatalogError> {
        if !self.catalog.refresh().await? {
            return Ok(false);
        }
        let index = ToolIndex::build(&self.catalog);
        for p in &index.problems {
            tracing::warn!(plugin = %p.id, "not served: {}", p.reason);
        }
        tracing::info!(tools = index.tools.len(), "tool set changed");
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(index);
        let _ = self.changed.send(());
        Ok(true)
    }

    /// Polls the registry every `every` in the background.
    pub fn spawn_watcher(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(g) = weak.upgrade() else { return };
                if let Err(e) = g.refresh().await {
                    tracing::warn!("registry refresh failed: {e}");
                }
            }
        })
    }

    /// Refreshes on every change signal of a cluster's shared store (`NOTIFY`, see `plughost_registry::pg`): a
    /// change made through any replica or CLI is served here within a round trip. A signal that arrives while a
    /// refresh runs is not lost: the next refresh reads the generation again.
    pub fn spawn_listener(
        self: &Arc<Self>,
        mut signals: tokio::sync::mpsc::Receiver<String>,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(what) = signals.recv().await {
                let Some(g) = weak.upgrade() else { return };
                tracing::debug!(%what, "change signal");
                if let Err(e) = g.refresh().await {
                    tracing::warn!("registry refresh failed: {e}");
                }
            }
        })
    }

    /// Calls a tool by its namespaced name. Arguments are checked against the tool's input schema first.
    /// Refuses a tool the caller's token does not cover, and records the refusal (outcome `denied`) when the tool
    /// belongs to a loaded plugin.
    pub async fn refuse_out_of_scope(
        &self,
        name: &str,
        principal: &str,
        caller: &Caller,
    ) -> GatewayError {
        self.metrics.reject("out-of-scope");
        let e = GatewayError::OutOfScope {
            tool: crate::caps::view::truncated(name, 256),
            principal: principal.to_string(),
        };
        if let Some(tool) = self.index().tools.get(name).cloned() {
            let denied = crate::call::CallError::Denied {
                message: e.to_string(),
            };
            tool.entry
                .refuse_as(self.catalog.host(), &tool.tool, "{}", caller, denied)
                .await;
        }
        e
    }

    pub async fn call(
        &self,
        name: &str,
        args: Option<Map<String, Value>>,
        caller: &Caller,
    ) -> Result<Reply, GatewayError> {
        let args = Value::Object(args.unwrap_or_default());
        if let Some((ns, _)) = split_name(name)
            && ns == index::MANAGEMENT
        {
            let Some((_, validator)) = management_validators().iter().find(|(n, _)| *n == name)
            else {
                self.metrics.reject("unknown-tool");
                return Err(GatewayError::UnknownTool(name.to_string()));
            };
            let violations = index::violations(validator, &args);
            if !violations.is_empty() {
                self.metrics.reject("invalid-arguments");
                return Err(GatewayError::InvalidArguments {
                    tool: name.to_string(),
                    violations,
                });
            }
            return self.management(name, &args);
        }
        let index = self.index();
        // Serialized straight into a buffer (`Display` goes through `fmt::Write`, a call per token); the same text.
        let args_json = serde_json::to_string(&args).unwrap_or_default();
        let Some(tool) = index.tools.get(name).cloned() else {
            self.metrics.reject("unknown-tool");
            // Refusals are ledgered like the CLI's: an unknown tool of a loaded plugin through the call path (which
            // records `unknown-tool`), a tool of an installed plugin that is not loaded as `unavailable`.
            if let Some((plugin, t)) = split_name(name) {
                if let Some(entry) = self.catalog.get(plugin) {
                    entry
                        .call_as(self.catalog.host(), t, &args_json, caller)
                        .await;
                } else if let Some(e) = self
                    .catalog
                    .refuse_not_loaded(plugin, t, &args_json, caller)
                    .await
                {
                    return Err(GatewayError::Unavailable(e.to_string()));
                }
            }
            return Err(GatewayError::UnknownTool(name.to_string()));
        };
        if let Err(violations) = tool.check_input(&args) {
            self.metrics.reject("invalid-arguments");
            let e = GatewayError::InvalidArguments {
                tool: name.to_string(),
                violations,
            };
            let refused = crate::call::CallError::InvalidArguments {
                message: e.to_string(),
            };
            tool.entry
                .refuse_as(self.catalog.host(), &tool.tool, &args_json, caller, refused)
                .await;
            return Err(e);
        }
        let result = tool
            .entry
            .call_as(self.catalog.host(), &tool.tool, &args_json, caller)
            .await;
        self.metrics.record(&result.report);
        let output_error = match &result.result {
            Ok(out) => match &out.structured {
                Some(s) => tool.check_output(s).err(),
                None if tool.has_output_schema() => Some(
                    "the tool declares an output schema but returned no structured output".into(),
                ),
                None => None,
            },
            Err(_) => None,
        };
        Ok(Reply::Tool {
            result: Box::new(result),
            tool,
            output_error,
        })
    }

    fn management(&self, name: &str, args: &Value) -> Result<Reply, GatewayError> {
        let index = self.index();
        let registry = self.catalog.registry();
        let records = registry.list().unwrap_or_default();
        let tools_of = |id: &str| -> Vec<String> {
            index
                .tools
                .values()
                .filter(|t| t.plugin == id)
                .map(|t| t.name.clone())
                .collect()
        };
        let problem_of = |id: &str| {
            index
                .problems
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.reason.clone())
        };
        match name {
            "plughost__plugins" => Ok(Reply::Management(json!({
                "plugins": records.iter().map(|r| json!({
                    "id": r.id,
                    "version": r.version,
                    "status": if problem_of(&r.id).is_some() { "not-loaded" } else { "loaded" },
                    "reason": problem_of(&r.id),
                    "publisher": r.publisher.as_ref().map(|p| &p.name),
                    "unsigned": r.unsigned,
                    "tools": tools_of(&r.id).len(),
                })).collect::<Vec<_>>(),
            }))),
            "plughost__plugin_info" => {
                let id = args.get("id").and_then(Value::as_str).unwrap_or_default();
                let Some(r) = records.iter().find(|r| r.id == id) else {
                    return Ok(Reply::ManagementError {
                        kind: "not-installed",
                        message: format!("no plugin `{id}` is installed"),
                    });
                };
                Ok(Reply::Management(json!({
                    "id": r.id,
                    "version": r.version,
                    "digest": r.digest,
                    "status": if problem_of(id).is_some() { "not-loaded" } else { "loaded" },
                    "reason": problem_of(id),
                    "publisher": r.publisher,
                    "declared": r.declared,
                    "grants": r.grants,
                    "limits": match self.catalog.get(id) {
                        Some(e) => e.plugin.limits,
                        None => limits_from(&r.limits),
                    },
                    "concurrency": r.limits.concurrency,
                    "tools": tools_of(id),
                })))
            }
            "plughost__quotas" => {
                // On a cluster's replica, the whole cluster's ledger and contract windows, not this replica's.
                let source = crate::quota::Source::of(registry, self.catalog.ledger().ledger());
                let now = crate::ledger::now_ms();
                let plugins: Vec<Value> = records
                    .iter()
                    .map(|r| {
                        let language = match self.catalog.get(&r.id) {
                            Some(e) => e.plugin.info.language,
                            None => crate::catalog::installed_language(registry, &r.id),
                        };
                        let mut v = match source.view(r, language, now) {
                            Ok(view) => json!(view),
                            Err(e) => json!({ "plugin": r.id, "error": e.to_string() }),
                        };
                        v["recent_calls"] = json!(self.metrics.recent(&r.id));
                        v
                    })
                    .collect();
                Ok(Reply::Management(json!({ "plugins": plugins })))
            }
            "plughost__metrics" => Ok(Reply::Management(self.metrics.summary())),
            _ => Err(GatewayError::UnknownTool(name.to_string())),
        }
    }
}

#[cfg(test)]
mod label_tests {
    #[test]
    fn a_client_label_is_bounded_and_cut_at_a_character_boundary() {
        let info = |name: &str| {
            let mut i = rmcp::model::Implementation::default();
            i.name = name.to_string();
            i.version = "1.0".into();
            i
        };
        assert_eq!(super::client_label(&info("raw")), "raw 1.0");
        for name in ["x".repeat(10_000), "é".repeat(5_000), "ab€".repeat(3_000)] {
            let label = super::client_label(&info(&name));
            assert!(label.len() <= super::MAX_CLIENT_LABEL, "{}", label.len());
            assert!(label.ends_with('…'), "{label}");
            assert!(label.len() > super::MAX_CLIENT_LABEL - 8, "{}", label.len());
        }
    }
}
