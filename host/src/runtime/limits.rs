//! Per-call limits and the store's resource limiter.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// The limits one call runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Fuel budget (roughly, wasm instructions).
    pub fuel: u64,
    /// Cap on the guest's linear memory (bytes, all memories summed).
    pub memory_bytes: u64,
    /// Wall-clock deadline for the whole call, including time spent waiting in host calls.
    #[serde(with = "crate::runtime::limits::secs")]
    pub timeout: Duration,
    /// Largest tool output accepted: its serialized size (bytes), structure and escapes included.
    pub max_output_bytes: u64,
    /// Most content blocks one output may have.
    #[serde(default = "default_max_output_blocks")]
    pub max_output_blocks: u32,
    /// Log lines kept per call; more are dropped and counted.
    pub max_log_lines: u32,
    /// Longest log line kept (bytes); longer lines are cut.
    pub max_log_line_bytes: u32,
}

/// Default for [`Limits::max_output_blocks`].
pub const DEFAULT_MAX_OUTPUT_BLOCKS: u32 = 1000;

fn default_max_output_blocks() -> u32 {
    DEFAULT_MAX_OUTPUT_BLOCKS
}

/// Deepest nesting of JSON a tool may return (content blocks and structured output). Below serde_json's default
/// recursion limit of 128, so a client parsing the response that embeds it can still read it.
pub const MAX_OUTPUT_JSON_DEPTH: usize = 100;

/// Calls of one plugin that may run at once when the operator set no limit (`plughost limits ID --concurrency N`);
/// more are refused as `busy`.
pub const DEFAULT_CONCURRENCY: u32 = 64;

/// The concurrency a plugin runs with: the operator's limit, or [`DEFAULT_CONCURRENCY`].
pub fn concurrency_of(set: Option<u32>) -> u32 {
    set.filter(|n| *n > 0).unwrap_or(DEFAULT_CONCURRENCY)
}

/// The concurrency as the CLI shows it: `8`, or `64 (default)`.
pub fn concurrency_text(set: Option<u32>) -> String {
    match set.filter(|n| *n > 0) {
        Some(n) => n.to_string(),
        None => format!("{DEFAULT_CONCURRENCY} (default)"),
    }
}

/// Largest memory cap a plugin can be given (the pooling allocator reserves this much address space per slot).
pub const MAX_MEMORY_BYTES: u64 = 4 << 30;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 1_000_000_000,
            memory_bytes: 128 << 20,
            timeout: Duration::from_secs(10),
            max_output_bytes: 4 << 20,
            max_output_blocks: DEFAULT_MAX_OUTPUT_BLOCKS,
            max_log_lines: 200,
            max_log_line_bytes: 4096,
        }
    }
}

pub(crate) mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

/// The error a memory grow past the cap traps with; the runtime turns it into `Outcome::MemoryLimit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory limit: the guest asked for {requested} bytes of linear memory, the cap is {limit}")]
pub struct MemoryLimitHit {
    pub requested: u64,
    pub limit: u64,
}

/// Tracks peak memory and enforces the cap, per store.
#[derive(Debug)]
pub struct CallLimiter {
    pub(crate) memory_cap: u64,
    /// Current size of each memory the store created (index by creation order). Inline: a component has one
    /// memory or a few, and a store is made per call.
    sizes: SmallVec<[u64; 4]>,
    pub(crate) peak: u64,
    pub(crate) denied: Option<MemoryLimitHit>,
}

impl CallLimiter {
    pub fn new(memory_cap: u64) -> Self {
        CallLimiter {
            memory_cap,
            sizes: SmallVec::new(),
            peak: 0,
            denied: None,
        }
    }
}

impl wasmtime::ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let (current, desired) = (current as u64, desired as u64);
        // wasmtime does not say which memory is growing, but the sum does not depend on it: replace one entry of
        // size `current` (a new memory starts at 0) with `desired`.
        let slot = self.sizes.iter().position(|s| *s == current);
        let total = self.sizes.iter().sum::<u64>() - slot.map_or(0, |i| self.sizes[i]) + desired;
        if total > self.memory_cap {
            let hit = MemoryLimitHit {
                requested: total,
                limit: self.memory_cap,
            };
            self.denied = Some(hit);
            return Err(hit.into());
        }
        match slot {
            Some(i) => self.sizes[i] = desired,
            None => self.sizes.push(desired),
        }
        self.peak = self.peak.max(total);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }

    fn instances(&self) -> usize {
        1000
    }
    fn tables(&self) -> usize {
        1000
    }
    fn memories(&self) -> usize {
        100
    }
}
