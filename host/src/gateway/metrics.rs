//! Gateway metrics: per plugin and tool, calls by outcome, latency histogram, fuel used and peak memory; plus the
//! last calls per plugin for the quotas view. Rendered as Prometheus text at `/metrics`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::caps::metrics::{BUCKETS as METRIC_BUCKETS, Value};
use crate::report::{CallReport, Outcome};
use crate::runtime::{Host, HostStats};

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25, 1.0, 10.0,
];
/// Fuel buckets (units of fuel): a Rust echo is ~5k, a JS one ~2M, the default budget 1e9.
const FUEL_BUCKETS: [f64; 8] = [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
/// Calls kept per plugin for "recent usage".
const RECENT: usize = 20;

#[derive(Debug, Default, Clone)]
struct ToolStats {
    by_outcome: BTreeMap<String, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    seconds_sum: f64,
    fuel_buckets: [u64; FUEL_BUCKETS.len()],
    fuel_sum: u64,
    peak_memory_max: u64,
}

/// Recent usage of one plugin.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RecentCall {
    pub tool: String,
    pub outcome: String,
    pub fuel_used: u64,
    pub peak_memory_bytes: u64,
    pub wall_time_ms: f64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Plugin → tool → stats (nested, so a call's lookup borrows its names instead of building a key).
    tools: BTreeMap<String, BTreeMap<String, ToolStats>>,
    recent: BTreeMap<String, VecDeque<RecentCall>>,
    rejected: BTreeMap<String, u64>,
}

impl Inner {
    /// Every (plugin, tool, stats), by plugin then tool.
    fn each_tool(&self) -> impl Iterator<Item = (&str, &str, &ToolStats)> {
        self.tools
            .iter()
            .flat_map(|(p, tools)| tools.iter().map(move |(t, s)| (p.as_str(), t.as_str(), s)))
    }
}

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    /// Stateless HTTP `tools/call` requests answered by the fast path (`fast.rs`) instead of rmcp.
    fast_path: AtomicU64,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one call that ran (or was refused by the runtime, like `busy`).
    pub fn record(&self, r: &CallReport) {
        let secs = r.wall_time.as_secs_f64();
        let outcome = outcome_label(&r.outcome);
        let mut g = self.lock();
        // Keys are allocated only the first time a plugin, tool or outcome is seen.
        if !g.tools.contains_key(&r.plugin) {
            g.tools.insert(r.plugin.clone(), BTreeMap::new());
        }
        let Some(tools) = g.tools.get_mut(&r.plugin) else {
            return;
        };
        if !tools.contains_key(&r.tool) {
            tools.insert(r.tool.clone(), ToolStats::default());
        }
        let Some(s) = tools.get_mut(&r.tool) else {
            return;
        };
        match s.by_outcome.get_mut(outcome) {
            Some(n) => *n += 1,
            None => {
                s.by_outcome.insert(outcome.to_string(), 1);
            }
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
        s.count += 1;
        s.seconds_sum += secs;
        s.fuel_sum += r.fuel_used;
        for (i, b) in FUEL_BUCKETS.iter().enumerate() {
            if r.fuel_used as f64 <= *b {
                s.fuel_buckets[i] += 1;
            }
        }
        s.peak_memory_max = s.peak_memory_max.max(r.peak_memory_bytes);
        if !g.recent.contains_key(&r.plugin) {
            g.recent
                .insert(r.plugin.clone(), VecDeque::with_capacity(RECENT));
        }
        let Some(recent) = g.recent.get_mut(&r.plugin) else {
            return;
        };
        // Once the window is full, the oldest call's strings are reused for the newest: no allocation per call.
        let mut call = if recent.len() == RECENT {
            recent.pop_front().unwrap_or_default()
        } else {
            RecentCall::default()
        };
        call.tool.clear();
        call.tool.push_str(&r.tool);
        call.outcome.clear();
        call.outcome.push_str(outcome);
        call.fuel_used = r.fuel_used;
        call.peak_memory_bytes = r.peak_memory_bytes;
        call.wall_time_ms = secs * 1000.0;
        recent.push_back(call);
    }

    /// Counts a request the HTTP fast path answered.
    pub fn fast_path(&self) {
        self.fast_path.fetch_add(1, Ordering::Relaxed);
    }

    /// Records a request refused before the guest ran (unknown tool, invalid arguments).
    pub fn reject(&self, reason: &str) {
        *self.lock().rejected.entry(reason.to_string()).or_default() += 1;
    }

    /// The last calls of one plugin, oldest first.
    pub fn recent(&self, plugin: &str) -> Vec<RecentCall> {
        self.lock()
            .recent
            .get(plugin)
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Per plugin: calls, errors, fuel used, max peak memory.
    pub fn summary(&self) -> serde_json::Value {
        let g = self.lock();
        let mut plugins: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for (plugin, tool, s) in g.each_tool() {
            let errors: u64 = s
                .by_outcome
                .iter()
                .filter(|(k, _)| k.as_str() != "ok")
                .map(|(_, n)| n)
                .sum();
            let p = plugins
                .entry(plugin.to_string())
                .or_insert_with(|| serde_json::json!({ "tools": {} }));
            p["tools"][tool] = serde_json::json!({
                "calls": s.count,
                "errors": errors,
                "outcomes": s.by_outcome,
                "fuel_used_total": s.fuel_sum,
                "peak_memory_max_bytes": s.peak_memory_max,
                "mean_ms": if s.count > 0 { s.seconds_sum * 1000.0 / s.count as f64 } else { 0.0 },
            });
        }
        serde_json::json!({ "plugins": plugins, "rejected": g.rejected })
    }

    /// Prometheus text exposition.
    pub fn prometheus(&self, host: &Host, loaded_plugins: usize, tools: usize) -> String {
        let g = self.lock();
        let mut o = String::new();
        let h = host.stats().snapshot();
        let budget = host.memory_budget();
        for (name, kind, help, v) in [
            (
                "plughost_instances_live",
                "gauge",
                "Guest instances alive now (calls running).",
                h.instances_live.to_string(),
            ),
            (
                "plughost_instances_created_total",
                "counter",
                "Guest instances created (one per call that reached the guest, plus standby instances).",
                h.instances_total.to_string(),
            ),
            (
                "plughost_instances_standby",
                "gauge",
                "Fresh instances prepared ahead of their call, not used yet (at most one per plugin).",
                h.instances_standby.to_string(),
            ),
            (
                "plughost_standby_hits_total",
                "counter",
                "Calls that ran in an instance prepared ahead (the others instantiated inline).",
                h.standby_hits.to_string(),
            ),
            (
                "plughost_guest_memory_reserved_bytes",
                "gauge",
                "Guest memory reserved by calls running now (each reserves its plugin's whole memory cap).",
                budget.in_flight().to_string(),
            ),
            (
                "plughost_guest_memory_budget_bytes",
                "gauge",
                "The host-wide budget for guest memory in flight (serve --memory-budget); calls beyond it are busy.",
                budget.total().to_string(),
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} {kind}");
            let _ = writeln!(o, "{name} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP plughost_compile_cache_total Components loaded from the precompiled cache (hit), compiled (miss), or compiled again because the cached artifact failed its integrity check (corrupt)."
        );
        let _ = writeln!(o, "# TYPE plughost_compile_cache_total counter");
        let _ = writeln!(
            o,
            "plughost_compile_cache_total{{result=\"hit\"}} {}",
            h.compile_cache_hits
        );
        let _ = writeln!(
            o,
            "plughost_compile_cache_total{{result=\"miss\"}} {}",
            h.compile_cache_misses
        );
        let _ = writeln!(
            o,
            "plughost_compile_cache_total{{result=\"corrupt\"}} {}",
            h.compile_cache_corrupt
        );
        let _ = writeln!(
            o,
            "# HELP plughost_plugins_loaded Plugins loaded and exposed."
        );
        let _ = writeln!(o, "# TYPE plughost_plugins_loaded gauge");
        let _ = writeln!(o, "plughost_plugins_loaded {loaded_plugins}");
        let _ = writeln!(o, "# HELP plughost_tools Tools exposed.");
        let _ = writeln!(o, "# TYPE plughost_tools gauge");
        let _ = writeln!(o, "plughost_tools {tools}");
        let _ = writeln!(o, "# HELP plughost_calls_total Tool calls by outcome.");
        let _ = writeln!(o, "# TYPE plughost_calls_total counter");
        for (p, t, s) in g.each_tool() {
            for (outcome, n) in &s.by_outcome {
                let _ = writeln!(
                    o,
                    "plughost_calls_total{{plugin=\"{}\",tool=\"{}\",outcome=\"{}\"}} {n}",
                    esc(p),
                    esc(t),
                    esc(outcome)
                );
            }
        }
        let _ = writeln!(
            o,
            "# HELP plughost_call_duration_seconds Wall time per call."
        );
        let _ = writeln!(o, "# TYPE plughost_call_duration_seconds histogram");
        for (p, t, s) in g.each_tool() {
            let labels = format!("plugin=\"{}\",tool=\"{}\"", esc(p), esc(t));
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "plughost_call_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                o,
                "plughost_call_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                o,
                "plughost_call_duration_seconds_sum{{{labels}}} {}",
                s.seconds_sum
            );
            let _ = writeln!(
                o,
                "plughost_call_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        let _ = writeln!(o, "# HELP plughost_call_fuel Fuel used per call.");
        let _ = writeln!(o, "# TYPE plughost_call_fuel histogram");
        for (p, t, s) in g.each_tool() {
            let labels = format!("plugin=\"{}\",tool=\"{}\"", esc(p), esc(t));
            for (i, b) in FUEL_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "plughost_call_fuel_bucket{{{labels},le=\"{b:e}\"}} {}",
                    s.fuel_buckets[i]
                );
            }
            let _ = writeln!(
                o,
                "plughost_call_fuel_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(o, "plughost_call_fuel_sum{{{labels}}} {}", s.fuel_sum);
            let _ = writeln!(o, "plughost_call_fuel_count{{{labels}}} {}", s.count);
        }
        let _ = writeln!(o, "# HELP plughost_fuel_used_total Fuel consumed by calls.");
        let _ = writeln!(o, "# TYPE plughost_fuel_used_total counter");
        for (p, t, s) in g.each_tool() {
            let _ = writeln!(
                o,
                "plughost_fuel_used_total{{plugin=\"{}\",tool=\"{}\"}} {}",
                esc(p),
                esc(t),
                s.fuel_sum
            );
        }
        let _ = writeln!(
            o,
            "# HELP plughost_peak_memory_bytes Largest peak linear memory of a call."
        );
        let _ = writeln!(o, "# TYPE plughost_peak_memory_bytes gauge");
        for (p, t, s) in g.each_tool() {
            let _ = writeln!(
                o,
                "plughost_peak_memory_bytes{{plugin=\"{}\",tool=\"{}\"}} {}",
                esc(p),
                esc(t),
                s.peak_memory_max
            );
        }
        let _ = writeln!(
            o,
            "# HELP plughost_http_fast_path_total tools/call requests (stateless or in a session) answered without rmcp's per-request tasks."
        );
        let _ = writeln!(o, "# TYPE plughost_http_fast_path_total counter");
        let _ = writeln!(
            o,
            "plughost_http_fast_path_total {}",
            self.fast_path.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            o,
            "# HELP plughost_rejected_total Requests refused before a guest ran."
        );
        let _ = writeln!(o, "# TYPE plughost_rejected_total counter");
        for (reason, n) in &g.rejected {
            let _ = writeln!(
                o,
                "plughost_rejected_total{{reason=\"{}\"}} {n}",
                esc(reason)
            );
        }
        drop(g);
        plugin_metrics(&mut o, host.stats());
        o
    }
}

/// The `outcome` label: `ok`, the runtime outcome (`out-of-fuel`, `quota`, …), or for a tool's own error its kind
/// (`invalid-arguments`, `denied`, `not-found`, …) — a fixed set, so the label space stays bounded.
fn outcome_label(o: &Outcome) -> &str {
    match o {
        Outcome::ToolError { error } => error.as_str(),
        other => other.kind(),
    }
}

/// Label values escaped for the text format: backslash, double quote and newline.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The plugins' own observations: family `plughost_plugin_<name>`, labelled with the plugin (a plugin's own
/// `plugin` label becomes `exported_plugin`). Bounded: at most `MAX_SERIES_PER_PLUGIN` series per plugin, 8
/// labels each, names and values checked when observed. A family keeps the type it was first seen with; series of
/// another type under the same name are left out and counted in `plughost_plugin_series_dropped_total`.
fn plugin_metrics(o: &mut String, host: &HostStats) {
    let mut families: BTreeMap<String, (&'static str, Vec<String>)> = BTreeMap::new();
    let mut dropped: BTreeMap<String, u64> = BTreeMap::new();
    for (plugin, registry) in host.plugin_metrics() {
        let mut conflicts = 0u64;
        for ((name, labels), value) in registry.snapshot() {
            let family = format!("plughost_plugin_{name}");
            let kind = match value {
                Value::Counter(_) => "counter",
                Value::Gauge(_) => "gauge",
                Value::Histogram { .. } => "histogram",
            };
            let f = families.entry(family.clone()).or_insert((kind, Vec::new()));
            if f.0 != kind {
                conflicts += 1;
                continue;
            }
            let mut l = format!("plugin=\"{}\"", esc(&plugin));
            for (k, v) in &labels {
                let k = if k == "plugin" {
                    "exported_plugin"
                } else {
                    k.as_str()
                };
                let _ = write!(l, ",{k}=\"{}\"", esc(v));
            }
            match value {
                Value::Counter(n) => f.1.push(format!("{family}_total{{{l}}} {n}")),
                Value::Gauge(x) => f.1.push(format!("{family}{{{l}}} {}", prom_float(x))),
                Value::Histogram {
                    buckets,
                    count,
                    sum,
                } => {
                    for (i, b) in METRIC_BUCKETS.iter().enumerate() {
                        f.1.push(format!("{family}_bucket{{{l},le=\"{b}\"}} {}", buckets[i]));
                    }
                    f.1.push(format!("{family}_bucket{{{l},le=\"+Inf\"}} {count}"));
                    f.1.push(format!("{family}_sum{{{l}}} {}", prom_float(sum)));
                    f.1.push(format!("{family}_count{{{l}}} {count}"));
                }
            }
        }
        dropped.insert(plugin, registry.dropped() + conflicts);
    }
    for (family, (kind, lines)) in &families {
        let name = if *kind == "counter" {
            format!("{family}_total")
        } else {
            family.clone()
        };
        let _ = writeln!(
            o,
            "# HELP {name} Observed by the plugin through the metrics capability."
        );
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for line in lines {
            let _ = writeln!(o, "{line}");
        }
    }
    let _ = writeln!(
        o,
        "# HELP plughost_plugin_series_dropped_total Plugin observations dropped: bad names, over the series limit, or a type clash."
    );
    let _ = writeln!(o, "# TYPE plughost_plugin_series_dropped_total counter");
    for (plugin, n) in dropped {
        let _ = writeln!(
            o,
            "plughost_plugin_series_dropped_total{{plugin=\"{}\"}} {n}",
            esc(&plugin)
        );
    }
}

fn prom_float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::HostCalls;

    fn report(plugin: &str, tool: &str, outcome: Outcome, fuel: u64) -> CallReport {
        CallReport {
            plugin: plugin.into(),
            tool: tool.into(),
            fuel_used: fuel,
            fuel_limit: 1_000_000,
            peak_memory_bytes: fuel * 2,
            memory_limit_bytes: 64 << 20,
            wall_time: Duration::from_micros(fuel),
            timeout: Duration::from_secs(30),
            host_calls: HostCalls::default(),
            log_lines: 0,
            log_dropped: 0,
            outcome,
        }
    }

    #[test]
    fn recent_calls_are_the_last_ones_of_each_plugin_in_order() {
        let m = Metrics::default();
        // Long names first, then short ones: a reused entry must not keep the old name's tail.
        for i in 0..(RECENT as u64 + 7) {
            let outcome = if i.is_multiple_of(3) {
                Outcome::ToolError {
                    error: "invalid-arguments".into(),
                }
            } else {
                Outcome::Ok
            };
            let tool = if i < 10 {
                format!("a-long-tool-name-{i}")
            } else {
                format!("t{i}")
            };
            m.record(&report("p", &tool, outcome, 100 + i));
        }
        m.record(&report("other", "x", Outcome::Busy, 1));
        let recent = m.recent("p");
        assert_eq!(recent.len(), RECENT);
        for (k, c) in recent.iter().enumerate() {
            let i = k as u64 + 7;
            let tool = if i < 10 {
                format!("a-long-tool-name-{i}")
            } else {
                format!("t{i}")
            };
            assert_eq!(c.tool, tool);
            assert_eq!(
                c.outcome,
                if i.is_multiple_of(3) {
                    "invalid-arguments"
                } else {
                    "ok"
                }
            );
            assert_eq!((c.fuel_used, c.peak_memory_bytes), (100 + i, 200 + 2 * i));
            assert!((c.wall_time_ms - (100 + i) as f64 / 1000.0).abs() < 1e-9);
        }
        let other = m.recent("other");
        assert_eq!(other.len(), 1);
        assert_eq!(
            (other[0].tool.as_str(), other[0].outcome.as_str()),
            ("x", "busy")
        );
        assert!(m.recent("none").is_empty());
    }
}
