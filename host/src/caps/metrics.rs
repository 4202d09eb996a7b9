//! `metrics`: counters, gauges and histograms per plugin, kept in memory with a bounded number of series.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use wasmtime::component::{HasData, Linker};

use crate::bindings::metrics;
use crate::bindings::types::Pair;
use crate::caps::config::Redactor;
use crate::caps::view::CallCtx;
use crate::grants::Capability;

/// Most distinct series (name + labels) one plugin may create; observations of new series past it are dropped.
pub const MAX_SERIES_PER_PLUGIN: usize = 1000;
/// Histogram bucket upper bounds.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0, 100.0, 1000.0,
];

/// One series' value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Counter(u64),
    Gauge(f64),
    Histogram {
        buckets: [u64; BUCKETS.len()],
        count: u64,
        sum: f64,
    },
}

/// A series key: metric name and sorted labels.
pub type SeriesKey = (String, Vec<(String, String)>);

/// The metrics one plugin recorded.
#[derive(Debug, Default)]
pub struct MetricsRegistry {
    series: Mutex<BTreeMap<SeriesKey, Value>>,
    dropped: std::sync::atomic::AtomicU64,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_alphabetic() || b == b'_' || (i > 0 && b.is_ascii_digit()))
}

impl MetricsRegistry {
    fn observe(
        &self,
        name: String,
        labels: Vec<Pair>,
        f: impl FnOnce(Option<&mut Value>) -> Option<Value>,
    ) {
        if !valid_name(&name)
            || labels.len() > 8
            || labels
                .iter()
                .any(|p| !valid_name(&p.key) || p.value.len() > 128)
        {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        let mut labels: Vec<(String, String)> =
            labels.into_iter().map(|p| (p.key, p.value)).collect();
        labels.sort();
        let mut series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let key = (name, labels);
        if let Some(v) = series.get_mut(&key) {
            if let Some(new) = f(Some(v)) {
                *v = new;
            }
        } else if series.len() < MAX_SERIES_PER_PLUGIN {
            if let Some(v) = f(None) {
                // One name, one type: a series whose name is already a different kind of metric is dropped.
                let clash = series
                    .range((key.0.clone(), Vec::new())..)
                    .next()
                    .is_some_and(|((n, _), other)| {
                        *n == key.0 && std::mem::discriminant(other) != std::mem::discriminant(&v)
                    });
                if clash {
                    self.dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                } else {
                    series.insert(key, v);
                }
            }
        } else {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// A copy of every series.
    pub fn snapshot(&self) -> Vec<(SeriesKey, Value)> {
        let series = self.series.lock().unwrap_or_else(|p| p.into_inner());
        series.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Observations dropped (bad names or too many series).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// One plugin's metrics context.
#[derive(Debug, Clone, Default)]
pub struct MetricsCtx {
    pub registry: Arc<MetricsRegistry>,
}

/// What the `metrics` interface sees of the call it serves; its store hands one out through [`MetricsView`].
#[derive(Debug)]
pub struct MetricsHost<'a> {
    pub call: CallCtx<'a>,
    pub metrics: Option<&'a MetricsCtx>,
    /// The plugin's secrets: redacted from label values; a name or label key showing one drops the observation.
    pub redactor: &'a Redactor,
}

/// How `metrics` reaches the call it serves (the wasmtime-wasi `WasiView` shape): implemented by the runtime's
/// per-call store data, so this module never sees the store type.
pub trait MetricsView: Send {
    fn metrics_host(&mut self) -> MetricsHost<'_>;
}

impl MetricsHost<'_> {
    /// The registry and the observation's name and labels, secrets redacted; `None` when there is no registry
    /// or the name or a label key shows a secret (a name cannot be redacted and stay a name: that one is dropped).
    fn registry(
        &mut self,
        name: String,
        mut labels: Vec<Pair>,
    ) -> Option<(&MetricsRegistry, String, Vec<Pair>)> {
        self.call.count(Capability::Metrics);
        let registry = &*self.metrics?.registry;
        let r = self.redactor;
        if !r.is_empty() {
            if r.reveals(&name) || labels.iter().any(|p| r.reveals(&p.key)) {
                registry
                    .dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return None;
            }
            for p in &mut labels {
                if let std::borrow::Cow::Owned(v) = r.redact(&p.value) {
                    p.value = v;
                }
            }
        }
        Some((registry, name, labels))
    }
}

impl metrics::Host for MetricsHost<'_> {
    async fn counter_add(
        &mut self,
        name: String,
        delta: u64,
        labels: Vec<Pair>,
    ) -> wasmtime::Result<()> {
        if let Some((r, name, labels)) = self.registry(name, labels) {
            r.observe(name, labels, |v| match v {
                Some(Value::Counter(c)) => {
                    *c = c.saturating_add(delta);
                    None
                }
                Some(_) => None,
                None => Some(Value::Counter(delta)),
            });
        }
        Ok(())
    }

    async fn gauge_set(
        &mut self,
        name: String,
        value: f64,
        labels: Vec<Pair>,
    ) -> wasmtime::Result<()> {
        if let Some((r, name, labels)) = self.registry(name, labels) {
            r.observe(name, labels, |v| match v {
                Some(Value::Gauge(g)) => {
                    *g = value;
                    None
                }
                Some(_) => None,
                None => Some(Value::Gauge(value)),
            });
        }
        Ok(())
    }

    async fn histogram_observe(
        &mut self,
        name: String,
        value: f64,
        labels: Vec<Pair>,
    ) -> wasmtime::Result<()> {
        if !value.is_finite() {
            return Ok(());
        }
        let record = |buckets: &mut [u64; BUCKETS.len()], count: &mut u64, sum: &mut f64| {
            for (i, b) in BUCKETS.iter().enumerate() {
                if value <= *b {
                    buckets[i] += 1;
                }
            }
            *count += 1;
            *sum += value;
        };
        if let Some((r, name, labels)) = self.registry(name, labels) {
            r.observe(name, labels, |v| match v {
                Some(Value::Histogram {
                    buckets,
                    count,
                    sum,
                }) => {
                    record(buckets, count, sum);
                    None
                }
                Some(_) => None,
                None => {
                    let (mut buckets, mut count, mut sum) = ([0; BUCKETS.len()], 0, 0.0);
                    record(&mut buckets, &mut count, &mut sum);
                    Some(Value::Histogram {
                        buckets,
                        count,
                        sum,
                    })
                }
            });
        }
        Ok(())
    }
}

struct Metrics;
impl HasData for Metrics {
    type Data<'a> = MetricsHost<'a>;
}

/// Links `plughost:plugin/metrics`.
pub fn add_to_linker<T: MetricsView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    metrics::add_to_linker::<T, Metrics>(linker, |s| s.metrics_host())
}
