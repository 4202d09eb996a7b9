//! The quota view: per plugin, what it is allowed (fuel, memory, deadline, concurrency, contracts) next to what it
//! used, read from the ledger — the same numbers for `plughost quota`, the gateway's `plughost__quotas` tool and
//! anyone reading `ledger.db`. On a cluster's shared store (`quota --store …`) they come from the whole cluster's
//! ledger and the contract windows every replica reserves in ([`view_shared`]).

use std::sync::Arc;

use plughost_registry::PluginRecord;
use plughost_registry::ledger::{Ledger, LedgerError};
use serde::Serialize;

use crate::catalog::effective_limits;
use crate::contract::{Gate, ScopeUsage, SharedGate};
use crate::runtime::plugin::Language;

/// How many of the latest calls the fuel and memory statistics cover.
pub const SAMPLE: usize = 1000;

/// Fuel per call: the limit, and what the latest calls used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FuelView {
    pub limit: u64,
    pub last: Option<u64>,
    /// Nearest-rank percentiles over the sampled calls.
    pub p50: Option<u64>,
    pub p99: Option<u64>,
    pub max: Option<u64>,
}

/// Linear memory per call: the cap, the latest call's peak and the largest peak sampled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryView {
    pub limit_bytes: u64,
    pub last_peak_bytes: Option<u64>,
    pub max_peak_bytes: Option<u64>,
    /// Nearest-rank percentiles of the sampled calls' peaks.
    pub p50_peak_bytes: Option<u64>,
    pub p99_peak_bytes: Option<u64>,
}

/// Wall time of the sampled calls against the deadline (µs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WallView {
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub max_us: Option<u64>,
}

/// One plugin's quotas and usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaView {
    pub plugin: String,
    pub version: String,
    pub enabled: bool,
    /// The language its component was written in (it sets the default fuel).
    pub language: Language,
    pub fuel: FuelView,
    pub memory: MemoryView,
    pub deadline_ms: u64,
    pub wall_time: WallView,
    /// Calls at once (the operator's limit or the default).
    pub concurrency: u32,
    /// How many calls the fuel and memory figures cover (the latest that ran, at most [`SAMPLE`]).
    pub calls_sampled: usize,
    /// Every contract scope (the plugin's, then each tool's) with its usage in the current window.
    pub contracts: Vec<ScopeUsage>,
}

/// Failures reading the ledger for the view.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Gate(#[from] crate::contract::GateError),
    #[error(transparent)]
    Store(#[from] plughost_registry::pg::PgError),
}

/// The nearest-rank percentile `p` (0..=1) of sorted `v`.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// The view of `record`, from `ledger`, at `now_ms`.
pub fn view(
    ledger: &Arc<Ledger>,
    record: &PluginRecord,
    language: Language,
    now_ms: i64,
) -> Result<QuotaView, QuotaError> {
    let recent = ledger.recent_usage(&record.id, SAMPLE)?;
    let contracts = match Gate::new(ledger.clone(), &record.id, &record.limits) {
        Some(g) => g.usage(now_ms)?,
        None => Vec::new(),
    };
    Ok(assemble(record, language, recent, contracts))
}

/// The view of `record` from a cluster's shared store at `now_ms`: the whole cluster's ledger and the contract
/// windows every replica reserves in.
pub fn view_shared(
    store: &Arc<plughost_registry::pg::PgStore>,
    record: &PluginRecord,
    language: Language,
    now_ms: i64,
) -> Result<QuotaView, QuotaError> {
    let recent = store.ledger_recent_usage(&record.id, SAMPLE)?;
    let contracts = match SharedGate::new(store.clone(), &record.id, &record.limits) {
        Some(g) => g.usage(now_ms)?,
        None => Vec::new(),
    };
    Ok(assemble(record, language, recent, contracts))
}

/// Where a view's numbers come from: a data dir's ledger, or a cluster's shared store (the whole cluster's ledger
/// and the contract windows every replica reserves in).
#[derive(Debug, Clone, Copy)]
pub enum Source<'a> {
    Local(&'a Arc<Ledger>),
    Shared(&'a Arc<plughost_registry::pg::PgStore>),
}

impl<'a> Source<'a> {
    /// The registry's: its shared store when it has one (a cluster's replica or an operator with `--store`), else
    /// the data dir's ledger `local`.
    pub fn of(registry: &'a plughost_registry::Registry, local: &'a Arc<Ledger>) -> Source<'a> {
        match registry.shared() {
            Some(pg) => Source::Shared(pg),
            None => Source::Local(local),
        }
    }

    /// The view of `record` at `now_ms`, from this source.
    pub fn view(
        self,
        record: &PluginRecord,
        language: Language,
        now_ms: i64,
    ) -> Result<QuotaView, QuotaError> {
        match self {
            Source::Local(ledger) => view(ledger, record, language, now_ms),
            Source::Shared(store) => view_shared(store, record, language, now_ms),
        }
    }
}

fn assemble(
    record: &PluginRecord,
    language: Language,
    recent: Vec<plughost_registry::ledger::CallUsage>,
    contracts: Vec<ScopeUsage>,
) -> QuotaView {
    let limits = effective_limits(&record.limits, language);
    let sorted = |f: fn(&plughost_registry::ledger::CallUsage) -> u64| {
        let mut v: Vec<u64> = recent.iter().map(f).collect();
        v.sort_unstable();
        v
    };
    let fuel = sorted(|c| c.fuel_used);
    let peaks = sorted(|c| c.peak_memory);
    let walls = sorted(|c| c.duration_us);
    QuotaView {
        plugin: record.id.clone(),
        version: record.version.clone(),
        enabled: record.enabled,
        language,
        fuel: FuelView {
            limit: limits.fuel,
            last: recent.first().map(|c| c.fuel_used),
            p50: percentile(&fuel, 0.50),
            p99: percentile(&fuel, 0.99),
            max: fuel.last().copied(),
        },
        memory: MemoryView {
            limit_bytes: limits.memory_bytes,
            last_peak_bytes: recent.first().map(|c| c.peak_memory),
            max_peak_bytes: peaks.last().copied(),
            p50_peak_bytes: percentile(&peaks, 0.50),
            p99_peak_bytes: percentile(&peaks, 0.99),
        },
        deadline_ms: limits.timeout.as_millis() as u64,
        wall_time: WallView {
            p50_us: percentile(&walls, 0.50),
            p99_us: percentile(&walls, 0.99),
            max_us: walls.last().copied(),
        },
        concurrency: crate::runtime::limits::concurrency_of(record.limits.concurrency),
        calls_sampled: recent.len(),
        contracts,
    }
}

/// Usage of one tool over a period, from the ledger: what `plughost stats` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolStats {
    pub plugin: String,
    pub tool: String,
    /// Every recorded call, refused ones included.
    pub calls: u64,
    /// Calls by outcome (`ok`, `out-of-fuel`, `quota`, a tool error kind …).
    pub outcomes: std::collections::BTreeMap<String, u64>,
    pub errors: u64,
    /// Wall time of the calls that ran, nearest-rank percentiles (ms).
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    pub fuel_p50: Option<u64>,
    pub fuel_p99: Option<u64>,
    pub fuel_total: u64,
    pub peak_memory_max_bytes: u64,
    /// Tokens charged by contracts.
    pub cost: u64,
}

/// Aggregates call entries per plugin and tool.
pub fn tool_stats(entries: &[plughost_registry::ledger::Entry]) -> Vec<ToolStats> {
    use std::collections::BTreeMap;
    #[derive(Default)]
    struct Acc {
        outcomes: BTreeMap<String, u64>,
        durations: Vec<u64>,
        fuel: Vec<u64>,
        peak: u64,
        cost: u64,
        calls: u64,
    }
    let mut by: BTreeMap<(String, String), Acc> = BTreeMap::new();
    for e in entries
        .iter()
        .filter(|e| e.entry.kind == plughost_registry::ledger::Kind::Call)
    {
        let e = &e.entry;
        let a = by.entry((e.plugin.clone(), e.tool.clone())).or_default();
        a.calls += 1;
        *a.outcomes.entry(e.outcome.clone()).or_default() += 1;
        a.cost += e.cost;
        if e.outcome != "quota" && e.outcome != "busy" {
            a.durations.push(e.duration_us);
            a.fuel.push(e.fuel_used);
            a.peak = a.peak.max(e.peak_memory);
        }
    }
    by.into_iter()
        .map(|((plugin, tool), mut a)| {
            a.durations.sort_unstable();
            a.fuel.sort_unstable();
            let ms = |us: Option<u64>| us.map(|u| u as f64 / 1000.0);
            ToolStats {
                plugin,
                tool,
                calls: a.calls,
                errors: a
                    .outcomes
                    .iter()
                    .filter(|(k, _)| k.as_str() != "ok")
                    .map(|(_, n)| n)
                    .sum(),
                outcomes: a.outcomes,
                latency_ms_p50: ms(percentile(&a.durations, 0.5)),
                latency_ms_p99: ms(percentile(&a.durations, 0.99)),
                fuel_p50: percentile(&a.fuel, 0.5),
                fuel_p99: percentile(&a.fuel, 0.99),
                fuel_total: a.fuel.iter().sum(),
                peak_memory_max_bytes: a.peak,
                cost: a.cost,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[1, 2, 3], 0.5), Some(2));
    }
}
