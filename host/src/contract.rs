//! Contracts: the operator's usage limits on a plugin, on single tools and on single principals (a client token's
//! name: the ledger's `principal`) — calls per window and a token budget per window, each call costing a fixed
//! price. They are checked before the guest runs, from the ledger: the gate reads the plugin's counted calls in the
//! window from `ledger.db` (so calls made by another plughost process on the same data dir count too), catches up
//! by sequence number on every check, and adds the calls it let through that are not in the ledger yet. Windows
//! slide: a call stops counting one window after it was made, and a refusal says exactly when that frees a call. A
//! principal's contract counts only the calls whose ledger entry names that principal.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use plughost_registry::ledger::Ledger;
use plughost_registry::{PluginLimits, Window};
use serde::Serialize;

use crate::call::{CallError, QuotaError, Resource};

/// A refusal: which limit, how much of it is used, and when the next call fits again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exhausted {
    pub plugin: String,
    /// `None` for the plugin's own contract, else the tool whose contract is exhausted.
    pub tool: Option<String>,
    /// The principal whose own contract is exhausted, if it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    pub resource: Resource,
    pub used: u64,
    pub limit: u64,
    pub window: Window,
    /// What the refused call would have cost.
    pub cost: u64,
    /// When the next call fits (Unix ms); `None` when it never will (a call costs more than the whole budget).
    pub until_ms: Option<i64>,
}

impl Exhausted {
    /// The typed error a caller gets, with a message that says which limit and until when.
    pub fn into_error(self, tool: &str, now_ms: i64) -> CallError {
        let whose = match (&self.tool, &self.principal) {
            (_, Some(p)) => format!("principal `{p}` on plugin `{}`", self.plugin),
            (Some(t), None) => format!("tool `{t}` of plugin `{}`", self.plugin),
            (None, None) => format!("plugin `{}`", self.plugin),
        };
        let per = self.window.name();
        let until = self.until_ms.map(crate::units::rfc3339_ms);
        let message = match (&until, self.resource) {
            (Some(u), Resource::Calls) => format!(
                "quota exhausted until {u}: {whose} has made {} of the {} calls allowed per {per}",
                self.used, self.limit
            ),
            (Some(u), Resource::Cost) => format!(
                "quota exhausted until {u}: {whose} has spent {} of its budget of {} tokens per {per}, and a \
                 call of `{tool}` costs {}",
                self.used, self.limit, self.cost
            ),
            (None, _) => format!(
                "quota exhausted: a call of `{tool}` costs {} tokens, more than the whole budget of {whose} ({} \
                 per {per})",
                self.cost, self.limit
            ),
        };
        CallError::Quota(Box::new(QuotaError {
            message,
            tool: self.tool,
            principal: self.principal,
            resource: self.resource.as_str().to_string(),
            used: self.used,
            limit: self.limit,
            window: per.to_string(),
            retry_after_seconds: self
                .until_ms
                .map(|u| ((u - now_ms).max(0) as u64).div_ceil(1000)),
            until,
        }))
    }
}

/// One scope's usage in its current window, for the quota view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeUsage {
    /// `None` for the plugin (or a principal's contract), else the tool.
    pub tool: Option<String>,
    /// The principal whose own contract this is; `None` for the plugin's and the tools'.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    pub window: Window,
    pub calls_used: u64,
    pub calls_allowed: Option<u64>,
    pub cost_used: u64,
    pub budget: Option<u64>,
    /// When the oldest counted call leaves the window (Unix ms), if any is in it.
    pub frees_at_ms: Option<i64>,
}

#[derive(Debug)]
struct Scope {
    tool: Option<String>,
    /// A principal's contract counts only that principal's calls.
    principal: Option<String>,
    calls: Option<u64>,
    budget: Option<u64>,
    window: Window,
    /// Counted calls in the window, oldest first: (time ms, cost).
    seen: VecDeque<(i64, u64)>,
    /// The sum of the costs in `seen`.
    seen_cost: u64,
    /// Calls let through whose ledger entry is not written yet.
    reserved_calls: u64,
    reserved_cost: u64,
}

impl Scope {
    fn new(tool: Option<String>, calls: Option<u64>, budget: Option<u64>, window: Window) -> Scope {
        Scope {
            tool,
            principal: None,
            calls,
            budget,
            window,
            seen: VecDeque::new(),
            seen_cost: 0,
            reserved_calls: 0,
            reserved_cost: 0,
        }
    }

    fn applies(&self, tool: &str, principal: Option<&str>) -> bool {
        self.tool.as_deref().is_none_or(|t| t == tool)
            && self
                .principal
                .as_deref()
                .is_none_or(|p| Some(p) == principal)
    }

    /// A call made at `t` counts while `t > now - window`; at `t + window` it is gone.
    fn expire(&mut self, now_ms: i64) {
        let cutoff = now_ms - self.window.millis();
        while let Some((t, c)) = self.seen.front().copied()
            && t <= cutoff
        {
            self.seen.pop_front();
            self.seen_cost -= c;
        }
    }

    fn insert(&mut self, time_ms: i64, cost: u64) {
        // Entries arrive in sequence order; times are nearly sorted (group commit), so this is almost always a push.
        if self.seen.back().is_none_or(|(t, _)| *t <= time_ms) {
            self.seen.push_back((time_ms, cost));
        } else {
            let at = self.seen.partition_point(|(t, _)| *t <= time_ms);
            self.seen.insert(at, (time_ms, cost));
        }
        self.seen_cost += cost;
    }

    fn used(&self) -> (u64, u64) {
        (
            self.seen.len() as u64 + self.reserved_calls,
            self.seen_cost + self.reserved_cost,
        )
    }

    /// Checks one more call costing `cost` at `now_ms`.
    fn check(&self, plugin: &str, cost: u64, now_ms: i64) -> Result<(), Exhausted> {
        let (calls, spent) = self.used();
        let w = self.window.millis();
        let refuse = |resource, used, limit, until_ms| Exhausted {
            plugin: plugin.to_string(),
            tool: self.tool.clone(),
            principal: self.principal.clone(),
            resource,
            used,
            limit,
            window: self.window,
            cost,
            until_ms,
        };
        if let Some(limit) = self.calls
            && calls >= limit
        {
            // The window frees a call when the (calls - limit + 1)-th oldest leaves it. Calls still in flight
            // will be recorded at about now.
            let k = (calls - limit) as usize;
            let until = self.seen.get(k).map_or(now_ms, |(t, _)| *t) + w;
            return Err(refuse(
                Resource::Calls,
                calls,
                limit,
                Some(until.max(now_ms)),
            ));
        }
        if let Some(budget) = self.budget
            && spent.saturating_add(cost) > budget
        {
            if cost > budget {
                return Err(refuse(Resource::Cost, spent, budget, None));
            }
            let mut left = spent;
            let mut until = now_ms + w;
            for (t, c) in &self.seen {
                left -= c;
                if left + cost <= budget {
                    until = t + w;
                    break;
                }
            }
            return Err(refuse(
                Resource::Cost,
                spent,
                budget,
                Some(until.max(now_ms)),
            ));
        }
        Ok(())
    }
}

#[derive(Debug)]
struct Inner {
    /// The last ledger sequence number read; `None` until seeded.
    last_seq: Option<u64>,
    scopes: Vec<Scope>,
}

/// The contract gate of one plugin.
#[derive(Debug)]
pub struct Gate {
    ledger: Arc<Ledger>,
    plugin: String,
    inner: Mutex<Inner>,
}

/// A call let through. Holds its reservation until the call's ledger entry is written; drop it after that.
#[derive(Debug)]
pub struct Admission<'a> {
    gate: &'a Gate,
    tool: String,
    principal: Option<String>,
    cost: u64,
}

impl Admission<'_> {
    /// The call's entry could not be written: it counts from the gate's memory (made at `time_ms`) instead of from
    /// the ledger, so a failing ledger never frees a call.
    pub fn unrecorded(self, time_ms: i64) {
        let mut g = self.gate.lock();
        for s in g
            .scopes
            .iter_mut()
            .filter(|s| s.applies(&self.tool, self.principal.as_deref()))
        {
            s.insert(time_ms, self.cost);
        }
        // Dropping `self` now releases the reservation the counted call replaces.
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        let mut g = self.gate.lock();
        for s in g
            .scopes
            .iter_mut()
            .filter(|s| s.applies(&self.tool, self.principal.as_deref()))
        {
            s.reserved_calls = s.reserved_calls.saturating_sub(1);
            s.reserved_cost = s.reserved_cost.saturating_sub(self.cost);
        }
    }
}

/// Why the gate could not decide: the ledger could not be read. Calls are refused then (a contract that cannot be
/// checked is not enforced by letting everything through).
#[derive(Debug, thiserror::Error)]
#[error("the contract could not be checked: {0}")]
pub struct GateError(String);

/// The scopes `limits` set: the plugin's own contract, then each tool's, then each principal's.
fn scopes_of(limits: &PluginLimits) -> Vec<Scope> {
    let default_window = limits.window.unwrap_or(Window::Day);
    let mut scopes = Vec::new();
    if limits.calls_per_window.is_some() || limits.budget.is_some() {
        scopes.push(Scope::new(
            None,
            limits.calls_per_window,
            limits.budget,
            default_window,
        ));
    }
    for (tool, c) in &limits.tools {
        if c.calls_per_window.is_some() || c.budget.is_some() {
            scopes.push(Scope::new(
                Some(tool.clone()),
                c.calls_per_window,
                c.budget,
                c.window.unwrap_or(default_window),
            ));
        }
    }
    for (principal, c) in &limits.principals {
        if c.calls_per_window.is_some() || c.budget.is_some() {
            let mut s = Scope::new(
                None,
                c.calls_per_window,
                c.budget,
                c.window.unwrap_or(default_window),
            );
            s.principal = Some(principal.clone());
            scopes.push(s);
        }
    }
    scopes
}

impl Gate {
    /// The gate for `plugin` under `limits`, or `None` when no contract is set.
    pub fn new(ledger: Arc<Ledger>, plugin: &str, limits: &PluginLimits) -> Option<Gate> {
        if !limits.has_contract() {
            return None;
        }
        Some(Gate {
            ledger,
            plugin: plugin.to_string(),
            inner: Mutex::new(Inner {
                last_seq: None,
                scopes: scopes_of(limits),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads what the ledger gained since the last look and drops what left the windows.
    fn catch_up(&self, g: &mut Inner, now_ms: i64) -> Result<(), GateError> {
        let longest = g
            .scopes
            .iter()
            .map(|s| s.window.millis())
            .max()
            .unwrap_or(0);
        // Seeding reads the head first: whatever commits after it is either in the query below or caught up
        // next time.
        let head = match g.last_seq {
            Some(_) => None,
            None => Some(
                self.ledger
                    .head_seq()
                    .map_err(|e| GateError(e.to_string()))?,
            ),
        };
        let new = self
            .ledger
            .counted_calls(&self.plugin, g.last_seq.unwrap_or(0), now_ms - longest + 1)
            .map_err(|e| GateError(e.to_string()))?;
        if let Some(head) = head {
            g.last_seq = Some(head);
        }
        for c in &new {
            for s in g
                .scopes
                .iter_mut()
                .filter(|s| s.applies(&c.tool, c.principal.as_deref()))
            {
                s.insert(c.time_ms, c.cost);
            }
            g.last_seq = Some(g.last_seq.unwrap_or(0).max(c.seq));
        }
        for s in &mut g.scopes {
            s.expire(now_ms);
        }
        Ok(())
    }

    /// Lets one call of `tool` by `principal` costing `cost` through, or says which limit it hits and until when.
    pub fn admit(
        &self,
        tool: &str,
        principal: Option<&str>,
        cost: u64,
        now_ms: i64,
    ) -> Result<Result<Admission<'_>, Exhausted>, GateError> {
        let mut g = self.lock();
        self.catch_up(&mut g, now_ms)?;
        // The principal's and the tool's own contracts first (the plugin's is scope 0): a refusal names the most
        // specific limit.
        for s in g.scopes.iter().rev().filter(|s| s.applies(tool, principal)) {
            if let Err(e) = s.check(&self.plugin, cost, now_ms) {
                return Ok(Err(e));
            }
        }
        for s in g.scopes.iter_mut().filter(|s| s.applies(tool, principal)) {
            s.reserved_calls += 1;
            s.reserved_cost += cost;
        }
        Ok(Ok(Admission {
            gate: self,
            tool: tool.to_string(),
            principal: principal.map(str::to_string),
            cost,
        }))
    }

    /// Usage of every scope in its current window.
    pub fn usage(&self, now_ms: i64) -> Result<Vec<ScopeUsage>, GateError> {
        let mut g = self.lock();
        self.catch_up(&mut g, now_ms)?;
        Ok(g.scopes
            .iter()
            .map(|s| {
                let (calls_used, cost_used) = s.used();
                ScopeUsage {
                    tool: s.tool.clone(),
                    principal: s.principal.clone(),
                    window: s.window,
                    calls_used,
                    calls_allowed: s.calls,
                    cost_used,
                    budget: s.budget,
                    frees_at_ms: s.seen.front().map(|(t, _)| t + s.window.millis()),
                }
            })
            .collect())
    }
}

/// A contract checked and reserved by a cluster's shared store, exact across replicas: the check and the
/// reservation are one transaction under the plugin's lock there (`plughost_registry::pg`), so however many replicas
/// ask at once, a window's last call is admitted once. A reservation counts whether the guest then succeeds or not,
/// as an admitted call does on one data dir.
#[derive(Debug)]
pub struct SharedGate {
    store: Arc<dyn plughost_registry::seam::ContractStore>,
    plugin: String,
    scopes: Vec<plughost_registry::pg::Scope>,
}

impl SharedGate {
    /// The gate for `plugin` under `limits` in `store`, or `None` when no contract is set.
    pub fn new(
        store: Arc<dyn plughost_registry::seam::ContractStore>,
        plugin: &str,
        limits: &PluginLimits,
    ) -> Option<SharedGate> {
        if !limits.has_contract() {
            return None;
        }
        // Per-principal contracts are counted from the embedded ledger only (the shared store's reservations do
        // not carry the principal yet): they are not turned into cluster-wide scopes, which would limit every caller.
        let scopes = scopes_of(limits)
            .iter()
            .filter(|s| s.principal.is_none())
            .map(|s| plughost_registry::pg::Scope {
                tool: s.tool.clone(),
                window: s.window,
                max_calls: s.calls,
                max_cost: s.budget,
            })
            .collect();
        Some(SharedGate {
            store,
            plugin: plugin.to_string(),
            scopes,
        })
    }

    /// Admits (and reserves) a call of `tool` costing `cost` at `now_ms`, or says which limit refuses it.
    pub fn admit(
        &self,
        tool: &str,
        cost: u64,
        now_ms: i64,
    ) -> Result<Result<(), Exhausted>, GateError> {
        let scopes: Vec<_> = self
            .scopes
            .iter()
            .filter(|s| s.tool.as_deref().is_none_or(|t| t == tool))
            .cloned()
            .collect();
        match self
            .store
            .admit(&self.plugin, tool, cost, now_ms, &scopes)
            .map_err(|e| GateError(e.to_string()))?
        {
            plughost_registry::pg::Admission::Admitted => Ok(Ok(())),
            plughost_registry::pg::Admission::Refused {
                scope,
                cost: by_cost,
                used,
                limit,
                until_ms,
            } => {
                let s = scopes.get(scope).ok_or_else(|| {
                    GateError(format!(
                        "the store refused by scope {scope}, which was not asked"
                    ))
                })?;
                Ok(Err(Exhausted {
                    plugin: self.plugin.clone(),
                    tool: s.tool.clone(),
                    principal: None,
                    resource: if by_cost {
                        Resource::Cost
                    } else {
                        Resource::Calls
                    },
                    used,
                    limit,
                    window: s.window,
                    cost,
                    until_ms,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plughost_registry::ToolContract;
    use plughost_registry::ledger::{Caller, Kind, NewEntry};

    fn entry(tool: &str, time_ms: i64, cost: u64, outcome: &str) -> NewEntry {
        NewEntry {
            time_ms,
            kind: Kind::Call,
            plugin: "p".into(),
            version: "1".into(),
            digest: "d".into(),
            tool: tool.into(),
            caller: Caller::default(),
            duration_us: 1,
            fuel_used: 1,
            peak_memory: 1,
            outcome: outcome.into(),
            args_digest: None,
            cost,
            event: None,
            data: None,
        }
    }

    #[test]
    fn calls_per_window_slide_and_name_the_time() {
        let dir = tempfile::tempdir().expect("dir");
        let ledger = Arc::new(Ledger::open(dir.path()).expect("ledger"));
        let limits = PluginLimits {
            calls_per_window: Some(2),
            window: Some(Window::Minute),
            ..Default::default()
        };
        let gate = Gate::new(ledger.clone(), "p", &limits).expect("gate");
        ledger
            .append(&[
                entry("t", 1_000, 0, "ok"),
                entry("t", 2_000, 0, "quota"),
                entry("t", 5_000, 0, "out-of-fuel"),
            ])
            .expect("append");
        let e = gate
            .admit("t", None, 0, 10_000)
            .expect("gate")
            .expect_err("two calls in the minute");
        assert_eq!((e.resource, e.used, e.limit), (Resource::Calls, 2, 2));
        assert_eq!(e.until_ms, Some(61_000));
        // At 61 s the first call has left the window.
        let a = gate
            .admit("t", None, 0, 61_000)
            .expect("gate")
            .expect("room");
        // In flight: counts until dropped, and the next is refused until the 5 s call leaves.
        let e = gate
            .admit("t", None, 0, 61_001)
            .expect("gate")
            .expect_err("full");
        assert_eq!(e.until_ms, Some(65_000));
        drop(a);
        assert!(gate.admit("t", None, 0, 61_002).expect("gate").is_ok());
    }

    #[test]
    fn budget_and_tool_contracts() {
        let dir = tempfile::tempdir().expect("dir");
        let ledger = Arc::new(Ledger::open(dir.path()).expect("ledger"));
        let mut limits = PluginLimits {
            budget: Some(10),
            cost_per_call: Some(3),
            window: Some(Window::Hour),
            ..Default::default()
        };
        limits.tools.insert(
            "costly".into(),
            ToolContract {
                cost_per_call: Some(20),
                ..Default::default()
            },
        );
        limits.tools.insert(
            "rare".into(),
            ToolContract {
                calls_per_window: Some(1),
                ..Default::default()
            },
        );
        let gate = Gate::new(ledger.clone(), "p", &limits).expect("gate");
        ledger
            .append(&[entry("t", 0, 3, "ok"), entry("rare", 100, 3, "ok")])
            .expect("append");
        let e = gate
            .admit("rare", None, 3, 200)
            .expect("gate")
            .expect_err("tool");
        assert_eq!(e.tool.as_deref(), Some("rare"));
        assert_eq!(e.until_ms, Some(100 + 3_600_000));
        let a = gate
            .admit("t", None, 3, 200)
            .expect("gate")
            .expect("9 of 10");
        let e = gate
            .admit("t", None, 3, 300)
            .expect("gate")
            .expect_err("budget");
        assert_eq!((e.resource, e.used, e.limit), (Resource::Cost, 9, 10));
        // Freeing the first call (cost 3) makes room: 9 - 3 + 3 <= 10.
        assert_eq!(e.until_ms, Some(3_600_000));
        drop(a);
        let e = gate
            .admit("t", None, 20, 300)
            .expect("gate")
            .expect_err("never");
        assert_eq!(e.until_ms, None);
        let u = gate.usage(300).expect("usage");
        assert_eq!((u[0].calls_used, u[0].cost_used), (2, 6));
    }

    #[test]
    fn a_principals_contract_counts_only_its_own_calls() {
        let dir = tempfile::tempdir().expect("dir");
        let ledger = Arc::new(Ledger::open(dir.path()).expect("ledger"));
        let mut limits = PluginLimits::default();
        limits.principals.insert(
            "alice".into(),
            ToolContract {
                calls_per_window: Some(1),
                window: Some(Window::Minute),
                ..Default::default()
            },
        );
        let gate =
            Gate::new(ledger.clone(), "p", &limits).expect("a principal's contract is a contract");
        let mut alice = entry("t", 1_000, 0, "ok");
        alice.caller.principal = Some("alice".into());
        let mut bob = entry("t", 1_500, 0, "ok");
        bob.caller.principal = Some("bob".into());
        ledger.append(&[alice, bob]).expect("append");
        let e = gate
            .admit("t", Some("alice"), 0, 2_000)
            .expect("gate")
            .expect_err("alice made her one call");
        assert_eq!(e.principal.as_deref(), Some("alice"));
        assert_eq!((e.used, e.limit, e.until_ms), (1, 1, Some(61_000)));
        assert!(
            e.clone()
                .into_error("t", 2_000)
                .to_string()
                .contains("principal `alice` on plugin `p`"),
            "{e:?}"
        );
        // Bob's call and an unauthenticated one do not count against alice's contract, nor are they limited by it.
        assert!(
            gate.admit("t", Some("bob"), 0, 2_000)
                .expect("gate")
                .is_ok()
        );
        assert!(gate.admit("t", None, 0, 2_000).expect("gate").is_ok());
        let u = gate.usage(2_000).expect("usage");
        assert_eq!(u.len(), 1);
        assert_eq!(
            (u[0].principal.as_deref(), u[0].calls_used),
            (Some("alice"), 1)
        );
        assert!(
            gate.admit("t", Some("alice"), 0, 61_000)
                .expect("gate")
                .is_ok()
        );
    }
}
