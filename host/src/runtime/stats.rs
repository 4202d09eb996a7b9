//! The host's own counters for `/metrics` ([`HostStats`]): instances live, created and on standby, standby hits,
//! compile-cache hits, misses and corrupt artifacts, and each plugin's `metrics` registry (kept across relinks). [`LiveInstance`]
//! counts an instance as live while a call holds it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::caps::metrics::MetricsRegistry;

/// The host's own counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct HostStats {
    pub(crate) live: AtomicI64,
    pub(crate) instances: AtomicU64,
    /// Standby instances waiting for their call.
    pub(crate) standby: AtomicI64,
    /// Calls that ran in a standby instance.
    pub(crate) standby_hits: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) cache_misses: AtomicU64,
    /// Cached artifacts that failed their integrity check (discarded and recompiled).
    pub(crate) cache_corrupt: AtomicU64,
    /// Each plugin's `metrics` observations, by plugin id; kept across relinks (a grant or limit change).
    plugin_metrics: Mutex<BTreeMap<String, Arc<MetricsRegistry>>>,
}

/// A point-in-time copy of [`HostStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HostStatsSnapshot {
    /// Instances alive right now (calls running).
    pub instances_live: i64,
    /// Instances created since start: one per call that reached the guest, plus standby instances that are
    /// still waiting for theirs.
    pub instances_total: u64,
    /// Fresh instances prepared ahead of a call and not used yet (at most one per plugin).
    pub instances_standby: i64,
    /// Calls that found a standby instance ready (the others instantiated inline).
    pub standby_hits: u64,
    /// Components loaded from the precompiled cache on disk / compiled.
    pub compile_cache_hits: u64,
    pub compile_cache_misses: u64,
    /// Cached artifacts that failed their integrity check: discarded and compiled again (not counted as misses).
    pub compile_cache_corrupt: u64,
}

impl HostStats {
    pub fn snapshot(&self) -> HostStatsSnapshot {
        HostStatsSnapshot {
            instances_live: self.live.load(Ordering::Relaxed),
            instances_total: self.instances.load(Ordering::Relaxed),
            instances_standby: self.standby.load(Ordering::Relaxed),
            standby_hits: self.standby_hits.load(Ordering::Relaxed),
            compile_cache_hits: self.cache_hits.load(Ordering::Relaxed),
            compile_cache_misses: self.cache_misses.load(Ordering::Relaxed),
            compile_cache_corrupt: self.cache_corrupt.load(Ordering::Relaxed),
        }
    }

    /// Every plugin's metrics registry, by plugin id.
    pub fn plugin_metrics(&self) -> Vec<(String, Arc<MetricsRegistry>)> {
        self.plugin_metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub(crate) fn registry(&self, id: &str) -> Arc<MetricsRegistry> {
        self.plugin_metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_default()
            .clone()
    }
}

/// Counts an instance as live while held.
pub(crate) struct LiveInstance<'a>(&'a HostStats);

impl<'a> LiveInstance<'a> {
    pub(crate) fn enter(stats: &'a HostStats, created: bool) -> Self {
        stats.live.fetch_add(1, Ordering::Relaxed);
        if created {
            stats.instances.fetch_add(1, Ordering::Relaxed);
        }
        LiveInstance(stats)
    }
}

impl Drop for LiveInstance<'_> {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}
