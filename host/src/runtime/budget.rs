//! The host-wide budget for guest memory in flight. Each call reserves its plugin's whole memory cap before any
//! guest code runs and gives it back when its store is done; a call whose cap does not fit in what is left is
//! refused at once as `busy`, so many memory-hungry calls at once cannot add up past the budget. Reserving the cap
//! (not what the guest happens to touch) makes the bound hold whatever the guests do.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::call::CallError;

/// Share of the machine's memory (or of the cgroup's limit, if lower) given to guests by default.
const DEFAULT_SHARE: (u64, u64) = (1, 2);
/// Budget used when the machine's memory cannot be read.
const FALLBACK_BYTES: u64 = 4 << 30;

/// Guest memory the host lets calls reserve at once.
#[derive(Debug)]
pub struct MemoryBudget {
    total: u64,
    in_flight: AtomicU64,
}

impl Default for MemoryBudget {
    fn default() -> Self {
        MemoryBudget::new(default_budget_bytes())
    }
}

impl MemoryBudget {
    pub fn new(total: u64) -> Self {
        MemoryBudget {
            total,
            in_flight: AtomicU64::new(0),
        }
    }

    /// The budget (bytes).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes reserved by calls running now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Reserves `bytes` until the returned guard drops, or says why not.
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Result<Reservation, CallError> {
        if bytes > self.total {
            return Err(CallError::Host {
                message: format!(
                    "the plugin's memory cap ({}) is larger than the host's whole guest-memory budget ({}); \
                     lower its memory limit or raise `--memory-budget`",
                    crate::units::human_bytes(bytes),
                    crate::units::human_bytes(self.total)
                ),
            });
        }
        let mut now = self.in_flight.load(Ordering::Relaxed);
        loop {
            if now + bytes > self.total {
                return Err(CallError::MemoryBusy {
                    needed: bytes,
                    in_flight: now,
                    budget: self.total,
                });
            }
            match self.in_flight.compare_exchange_weak(
                now,
                now + bytes,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Ok(Reservation {
                        budget: self.clone(),
                        bytes,
                    });
                }
                Err(seen) => now = seen,
            }
        }
    }
}

/// Memory reserved for one call; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget
            .in_flight
            .fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Half the machine's memory, or half the cgroup's limit when that is lower.
pub fn default_budget_bytes() -> u64 {
    let machine = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| meminfo_total(&s));
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let limit = match (machine, cgroup) {
        (Some(m), Some(c)) => m.min(c),
        (Some(m), None) => m,
        (None, Some(c)) => c,
        (None, None) => return FALLBACK_BYTES,
    };
    limit / DEFAULT_SHARE.1 * DEFAULT_SHARE.0
}

fn meminfo_total(meminfo: &str) -> Option<u64> {
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_add_up_to_the_budget_and_are_returned() {
        let b = Arc::new(MemoryBudget::new(300));
        let r1 = b.reserve(128).expect("fits");
        let r2 = b.reserve(128).expect("fits");
        assert_eq!(b.in_flight(), 256);
        match b.reserve(128) {
            Err(CallError::MemoryBusy {
                needed,
                in_flight,
                budget,
            }) => assert_eq!((needed, in_flight, budget), (128, 256, 300)),
            other => panic!("expected memory-busy, got {other:?}"),
        }
        drop(r1);
        let _r3 = b.reserve(128).expect("fits");
        drop(r2);
        assert_eq!(b.in_flight(), 128);
    }

    #[test]
    fn a_cap_larger_than_the_whole_budget_is_a_host_error() {
        let b = Arc::new(MemoryBudget::new(100));
        match b.reserve(101) {
            Err(CallError::Host { message }) => assert!(message.contains("--memory-budget")),
            other => panic!("expected host error, got {other:?}"),
        }
        assert_eq!(b.in_flight(), 0);
    }

    #[test]
    fn meminfo_is_read_in_bytes() {
        let s = "MemTotal:       24576000 kB\nMemFree: 1 kB\n";
        assert_eq!(meminfo_total(s), Some(24_576_000 * 1024));
        assert_eq!(meminfo_total("nothing"), None);
    }
}
