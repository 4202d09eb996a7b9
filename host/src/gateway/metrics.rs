//! Gateway metrics: per plugin and tool, calls by outcome, latency histogram, fuel used and peak memory; plus the
//! last calls per plugin for the quotas view. Rendered as Prometheus text at `/metrics`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;

use crate::report::CallReport;

/// Latency buckets in seconds.
const BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25, 1.0, 10.0,
];
/// Calls kept per plugin for "recent usage".
const RECENT: usize = 20;

#[derive(Debug, Default, Clone)]
struct ToolStats {
    by_outcome: BTreeMap<String, u64>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    seconds_sum: f64,
    fuel_sum: u64,
    peak_memory_max: u64,
}

/// Recent usage of one plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecentCall {
    pub tool: String,
    pub outcome: String,
    pub fuel_used: u64,
    pub peak_memory_bytes: u64,
    pub wall_time_ms: f64,
}

#[derive(Debug, Default)]
struct Inner {
    tools: BTreeMap<(String, String), ToolStats>,
    recent: BTreeMap<String, VecDeque<RecentCall>>,
    rejected: BTreeMap<String, u64>,
}

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one call that ran (or was refused by the runtime, like `busy`).
    pub fn record(&self, r: &CallReport) {
        let secs = r.wall_time.as_secs_f64();
        let mut g = self.lock();
        let s = g
            .tools
            .entry((r.plugin.clone(), r.tool.clone()))
            .or_default();
        *s.by_outcome
            .entry(r.outcome.kind().to_string())
            .or_default() += 1;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
        s.count += 1;
        s.seconds_sum += secs;
        s.fuel_sum += r.fuel_used;
        s.peak_memory_max = s.peak_memory_max.max(r.peak_memory_bytes);
        let recent = g.recent.entry(r.plugin.clone()).or_default();
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(RecentCall {
            tool: r.tool.clone(),
            outcome: r.outcome.kind().to_string(),
            fuel_used: r.fuel_used,
            peak_memory_bytes: r.peak_memory_bytes,
            wall_time_ms: secs * 1000.0,
        });
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
        for ((plugin, tool), s) in &g.tools {
            let errors: u64 = s
                .by_outcome
                .iter()
                .filter(|(k, _)| k.as_str() != "ok")
                .map(|(_, n)| n)
                .sum();
            let p = plugins
                .entry(plugin.clone())
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
    pub fn prometheus(&self, loaded_plugins: usize, tools: usize) -> String {
        let g = self.lock();
        let mut o = String::new();
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
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
        for ((p, t), s) in &g.tools {
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
        for ((p, t), s) in &g.tools {
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
        let _ = writeln!(o, "# HELP plughost_fuel_used_total Fuel consumed by calls.");
        let _ = writeln!(o, "# TYPE plughost_fuel_used_total counter");
        for ((p, t), s) in &g.tools {
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
        for ((p, t), s) in &g.tools {
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
        o
    }
}
