//! The call report: what every call used and how it ended.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::grants::Capability;

/// Host calls made during one call, per interface. A fixed array: counting costs no allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCalls(pub [u32; 8]);

impl HostCalls {
    pub fn get(&self, cap: Capability) -> u32 {
        self.0[cap.index()]
    }
    pub fn total(&self) -> u32 {
        self.0.iter().sum()
    }
    pub fn iter(&self) -> impl Iterator<Item = (Capability, u32)> + '_ {
        Capability::ALL
            .into_iter()
            .map(|c| (c, self.get(c)))
            .filter(|(_, n)| *n > 0)
    }
}

impl Serialize for HostCalls {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (cap, n) in self.iter() {
            m.serialize_entry(cap.name(), &n)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for HostCalls {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = std::collections::BTreeMap::<String, u32>::deserialize(d)?;
        let mut out = HostCalls::default();
        for (k, v) in map {
            let cap = Capability::from_name(&k)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown interface {k}")))?;
            out.0[cap.index()] = v;
        }
        Ok(out)
    }
}

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    /// The tool returned output.
    Ok,
    /// The tool returned a typed error (`invalid-arguments`, `denied`, …).
    ToolError { error: String },
    /// The fuel budget ran out.
    OutOfFuel,
    /// The guest tried to grow memory past its cap.
    MemoryLimit { requested_bytes: u64 },
    /// The wall-clock deadline passed (in guest code or while waiting in a host call).
    Deadline,
    /// The guest trapped (panic, unreachable, stack overflow, …).
    Trap { message: String },
    /// The output was larger than the host accepts.
    OutputTooLarge { bytes: u64 },
    /// The output had more content blocks than the host accepts.
    OutputTooManyBlocks { blocks: u64 },
    /// The guest called WASI `exit` with this code.
    Exit { code: i32 },
    /// The plugin is too busy (concurrency limit).
    Busy,
    /// A contract (calls per window, cost budget) is exhausted; the guest did not run.
    Quota,
    /// The client cancelled the call (`notifications/cancelled`); the guest was stopped where it was.
    Cancelled,
    /// The host could not run the call (instantiation failed, …).
    HostError { message: String },
}

impl Outcome {
    /// A short, stable name: `ok`, `tool-error`, `out-of-fuel`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError { .. } => "tool-error",
            Outcome::OutOfFuel => "out-of-fuel",
            Outcome::MemoryLimit { .. } => "memory-limit",
            Outcome::Deadline => "deadline",
            Outcome::Trap { .. } => "trap",
            Outcome::OutputTooLarge { .. } => "output-too-large",
            Outcome::OutputTooManyBlocks { .. } => "output-too-many-blocks",
            Outcome::Exit { .. } => "exit",
            Outcome::Busy => "busy",
            Outcome::Quota => "quota",
            Outcome::Cancelled => "cancelled",
            Outcome::HostError { .. } => "host-error",
        }
    }
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok)
    }
}

/// What one call used and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallReport {
    pub plugin: String,
    pub tool: String,
    pub fuel_used: u64,
    pub fuel_limit: u64,
    /// The largest linear memory the guest had during the call (bytes, all memories summed).
    pub peak_memory_bytes: u64,
    pub memory_limit_bytes: u64,
    /// Serialized in microseconds.
    #[serde(with = "micros", rename = "wall_time_us")]
    pub wall_time: Duration,
    /// The deadline; serialized in microseconds.
    #[serde(with = "micros", rename = "timeout_us")]
    pub timeout: Duration,
    pub host_calls: HostCalls,
    pub log_lines: u32,
    pub log_dropped: u32,
    pub outcome: Outcome,
}

mod micros {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}
