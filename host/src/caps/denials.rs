//! Denied capability calls on the audit trail. A guest asking a capability for something outside its grant (an
//! origin `http` was not granted, a container group or image, a capability it has no grant for at all) is a
//! security event: the first refusal of each plugin and capability in a minute becomes a `capability-denied` row
//! of the hash-chained audit trail (`plughost audit`), naming what was refused — an origin, an image, a group,
//! never a URL's path, a header or any other value. The ones after it in that minute are only counted; the count
//! is written as its own row by [`DenialAudit::flush`] (every minute while a catalog is open, and when it closes),
//! so a hostile guest looping on a refused call adds at most two rows a minute per capability.
//!
//! The row is written from the blocking pool and awaited by the refused host call (once a minute at most), so it is
//! on the trail before the guest sees the refusal and is not lost if the call is then cancelled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use plughost_registry::Registry;

use crate::grants::Capability;

/// The coalescing window: one row per plugin and capability per minute, plus one with the count of the rest.
pub const WINDOW_MS: i64 = 60_000;
/// Most (plugin, capability) pairs tracked at once; beyond it, refusals are counted together (plugin `None`).
const MAX_SLOTS: usize = 4096;
/// Longest description of what was refused.
const MAX_WHAT: usize = 300;
/// The audit trail's action for these rows.
pub const ACTION: &str = "capability-denied";

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// When the current window's listed refusal was recorded (Unix ms).
    since_ms: i64,
    /// Refusals in or after that window not written yet.
    unlisted: u64,
}

/// The host's record of denied capability calls (one per catalog).
#[derive(Debug)]
pub struct DenialAudit {
    registry: Arc<Registry>,
    slots: Mutex<HashMap<(Arc<str>, Capability), Slot>>,
    /// Refusals that found no free slot.
    overflow: Mutex<u64>,
}

impl DenialAudit {
    pub fn new(registry: Arc<Registry>) -> DenialAudit {
        DenialAudit {
            registry,
            slots: Mutex::default(),
            overflow: Mutex::default(),
        }
    }

    /// Notes that `plugin`'s guest was refused `capability` for `what` (an origin, an image, a group; no values) at
    /// `now_ms`. Returns the row to write when this is the first refusal of the pair in its window.
    fn note(&self, plugin: &Arc<str>, capability: Capability, now_ms: i64) -> bool {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slots.get_mut(&(plugin.clone(), capability)) {
            if now_ms - s.since_ms < WINDOW_MS {
                s.unlisted += 1;
                return false;
            }
            s.since_ms = now_ms;
            return true;
        }
        if slots.len() >= MAX_SLOTS {
            slots.retain(|_, s| s.unlisted > 0 || now_ms - s.since_ms < WINDOW_MS);
        }
        if slots.len() >= MAX_SLOTS {
            *self.overflow.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            return false;
        }
        slots.insert(
            (plugin.clone(), capability),
            Slot {
                since_ms: now_ms,
                unlisted: 0,
            },
        );
        true
    }

    /// Records a refusal: the first of the plugin and capability in its window is written to the audit trail
    /// before this returns; later ones are counted for [`DenialAudit::flush`].
    pub async fn denied(&self, plugin: &Arc<str>, capability: Capability, what: &str) {
        if !self.note(plugin, capability, now_ms()) {
            return;
        }
        let mut cut = what.len().min(MAX_WHAT);
        while !what.is_char_boundary(cut) {
            cut -= 1;
        }
        let what = &what[..cut];
        let detail = format!("{}: {what}", capability.name());
        let registry = self.registry.clone();
        let id = plugin.to_string();
        let written = tokio::task::spawn_blocking(move || {
            registry.record_refusal(Some(&id), ACTION, &detail)
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(plugin = %plugin, capability = capability.name(),
                "a denied capability call could not be written to the audit trail: {e}"),
            Err(e) => tracing::error!(plugin = %plugin, capability = capability.name(),
                "a denied capability call could not be written to the audit trail: {e}"),
        }
    }

    /// Writes one row per plugin and capability with refusals not listed one by one yet (their count), and drops
    /// the pairs whose window has passed. Blocking (SQLite): call it from the blocking pool or at exit.
    pub fn flush(&self) {
        let now = now_ms();
        let pending: Vec<(Arc<str>, Capability, u64)> = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let pending = slots
                .iter_mut()
                .filter(|(_, s)| s.unlisted > 0)
                .map(|((p, c), s)| (p.clone(), *c, std::mem::take(&mut s.unlisted)))
                .collect();
            slots.retain(|_, s| now - s.since_ms < WINDOW_MS);
            pending
        };
        let overflow =
            std::mem::take(&mut *self.overflow.lock().unwrap_or_else(|p| p.into_inner()));
        for (plugin, capability, n) in pending {
            let detail = format!(
                "{}: {n} more refused (coalesced: one row per plugin and capability a minute)",
                capability.name()
            );
            if let Err(e) = self.registry.record_refusal(Some(&plugin), ACTION, &detail) {
                tracing::error!(plugin = %plugin,
                    "denied capability calls could not be written to the audit trail: {e}");
            }
        }
        if overflow > 0 {
            let detail = format!(
                "{overflow} refused capability calls of plugins beyond the {MAX_SLOTS} tracked"
            );
            if let Err(e) = self.registry.record_refusal(None, ACTION, &detail) {
                tracing::error!(
                    "denied capability calls could not be written to the audit trail: {e}"
                );
            }
        }
    }

    /// Flushes every minute from the blocking pool while `audit` lives.
    pub fn spawn_flusher(audit: &Arc<DenialAudit>) {
        let weak = Arc::downgrade(audit);
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(std::time::Duration::from_millis(WINDOW_MS as u64));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(a) = weak.upgrade() else { return };
                let _ = tokio::task::spawn_blocking(move || a.flush()).await;
            }
        });
    }
}

/// Unix milliseconds now.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Drop for DenialAudit {
    /// What was counted and not written yet is written now.
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_refusal_a_minute_is_listed_and_the_rest_counted() {
        let dir = tempfile::tempdir().expect("dir");
        let a = DenialAudit::new(Arc::new(Registry::open(dir.path()).expect("registry")));
        let p: Arc<str> = Arc::from("p");
        assert!(a.note(&p, Capability::Http, 1_000));
        assert!(!a.note(&p, Capability::Http, 2_000));
        assert!(!a.note(&p, Capability::Http, 60_999));
        assert!(
            a.note(&p, Capability::Container, 3_000),
            "another capability"
        );
        assert!(
            a.note(&Arc::from("q"), Capability::Http, 3_000),
            "another plugin"
        );
        assert!(a.note(&p, Capability::Http, 61_000), "the next minute");
        a.flush();
        let rows = a.registry.audit(None, 100).expect("audit");
        let rows: Vec<_> = rows.iter().filter(|r| r.action == ACTION).collect();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert!(
            rows[0].detail.starts_with("http: 2 more refused"),
            "{rows:?}"
        );
        a.flush();
        assert_eq!(
            a.registry
                .audit(None, 100)
                .expect("audit")
                .iter()
                .filter(|r| r.action == ACTION)
                .count(),
            1,
            "nothing counted twice"
        );
    }
}
