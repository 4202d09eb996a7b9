//! Contracts: the operator's usage limits on a plugin, on single tools and on single principals (a client token's
//! name: the ledger's `principal`) — calls per window and a token budget per window, each call costing a fixed
//! price. They are checked before the guest runs, from the ledger (so calls made by another plughost process on the
//! same data dir count too). The gate's first look reads the ledger's per-minute totals of the window (per plugin,
//! tool and principal, kept in the append's transaction) and the head they are exact up to — a month is at most
//! 43,201 rows per tool and principal, whatever the number of calls — then catches up by sequence number on every
//! check, and adds the calls it let through that are not in the ledger yet. Windows slide: a call stops counting one
//! window after it was made; the minute the window starts in is read call by call, so the count is exact, and a
//! refusal says exactly when that frees a call (reading the one minute that call is in). A principal's contract
//! counts only the calls whose ledger entry names that principal.
//!
//! One file (about 1,070 lines: 775 of code, 295 of tests): the per-minute window arithmetic and the gate that
//! drives it change together, and the tests check them together against counts worked out from the entries.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use plughost_registry::ledger::{Ledger, MINUTE_MS};
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

/// The counted calls of one minute in a scope's window.
#[derive(Debug)]
struct Minute {
    /// `time_ms.div_euclid(MINUTE_MS)`.
    minute: i64,
    /// Calls the ledger holds for this minute (up to the gate's last sequence number), and their cost.
    calls: u64,
    cost: u64,
    /// Those calls one by one, (time ms, cost) oldest first, once read from the ledger: for the minute the window
    /// starts in, and to say when a refused call fits.
    exact: Option<Vec<(i64, u64)>>,
    /// Calls whose entry could not be written: counted from memory, (time ms, cost) oldest first.
    unrecorded: Vec<(i64, u64)>,
}

impl Minute {
    fn new(minute: i64) -> Minute {
        Minute {
            minute,
            calls: 0,
            cost: 0,
            exact: None,
            unrecorded: Vec::new(),
        }
    }

    fn totals(&self) -> (u64, u64) {
        (
            self.calls + self.unrecorded.len() as u64,
            self.cost + self.unrecorded.iter().map(|c| c.1).sum::<u64>(),
        )
    }

    /// Every call of the minute, oldest first (the exact list must be read).
    fn each(&self) -> Vec<(i64, u64)> {
        let mut all: Vec<(i64, u64)> = self.exact.iter().flatten().copied().collect();
        all.extend_from_slice(&self.unrecorded);
        all.sort_by_key(|c| c.0);
        all
    }
}

/// Inserts `c` into `v`, kept sorted by time (nearly always a push: entries arrive nearly in time order).
fn insert_sorted(v: &mut Vec<(i64, u64)>, c: (i64, u64)) {
    if v.last().is_none_or(|l| l.0 <= c.0) {
        v.push(c);
    } else {
        let at = v.partition_point(|x| x.0 <= c.0);
        v.insert(at, c);
    }
}

/// Reads one minute's counted calls of the scope from the ledger.
type Load<'a> = dyn FnMut(Option<&str>, Option<&str>, i64) -> MinuteCalls + 'a;

/// One minute's counted calls as (time, cost), oldest first.
type MinuteCalls = Result<Vec<(i64, u64)>, GateError>;

#[derive(Debug)]
struct Scope {
    tool: Option<String>,
    /// A principal's contract counts only that principal's calls.
    principal: Option<String>,
    calls: Option<u64>,
    budget: Option<u64>,
    window: Window,
    /// Counted calls in the window per minute, oldest first: seeded from the ledger's per-minute totals, then
    /// every call caught up on. At most a window's minutes (43,201 for a month), whatever the number of calls.
    minutes: VecDeque<Minute>,
    /// The sums over `minutes`.
    used_calls: u64,
    used_cost: u64,
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
            minutes: VecDeque::new(),
            used_calls: 0,
            used_cost: 0,
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

    /// The minute `minute`, added in order if it is not there yet.
    fn minute_mut(&mut self, minute: i64) -> &mut Minute {
        let at = match self.minutes.back() {
            Some(m) if m.minute == minute => self.minutes.len() - 1,
            Some(m) if m.minute < minute => {
                self.minutes.push_back(Minute::new(minute));
                self.minutes.len() - 1
            }
            None => {
                self.minutes.push_back(Minute::new(minute));
                0
            }
            Some(_) => match self.minutes.binary_search_by_key(&minute, |m| m.minute) {
                Ok(i) => i,
                Err(i) => {
                    self.minutes.insert(i, Minute::new(minute));
                    i
                }
            },
        };
        &mut self.minutes[at]
    }

    /// Adds a per-minute total read from the ledger.
    fn add_total(&mut self, minute: i64, calls: u64, cost: u64) {
        let m = self.minute_mut(minute);
        m.calls += calls;
        m.cost += cost;
        self.used_calls += calls;
        self.used_cost += cost;
    }

    /// Adds one counted call the ledger holds.
    fn insert(&mut self, time_ms: i64, cost: u64) {
        let m = self.minute_mut(time_ms.div_euclid(MINUTE_MS));
        m.calls += 1;
        m.cost += cost;
        if let Some(exact) = &mut m.exact {
            insert_sorted(exact, (time_ms, cost));
        }
        self.used_calls += 1;
        self.used_cost += cost;
    }

    /// Adds one call the ledger could not record.
    fn insert_unrecorded(&mut self, time_ms: i64, cost: u64) {
        let m = self.minute_mut(time_ms.div_euclid(MINUTE_MS));
        insert_sorted(&mut m.unrecorded, (time_ms, cost));
        self.used_calls += 1;
        self.used_cost += cost;
    }

    /// Reads the calls of `self.minutes[i]` one by one, unless they are.
    fn load(&mut self, i: usize, load: &mut Load<'_>) -> Result<(), GateError> {
        if self.minutes[i].exact.is_none() {
            let calls = load(
                self.tool.as_deref(),
                self.principal.as_deref(),
                self.minutes[i].minute,
            )?;
            // The ledger's own list is the truth; the totals follow it.
            let (n, c) = (calls.len() as u64, calls.iter().map(|c| c.1).sum::<u64>());
            let m = &self.minutes[i];
            self.used_calls = self.used_calls.saturating_sub(m.calls) + n;
            self.used_cost = self.used_cost.saturating_sub(m.cost) + c;
            let m = &mut self.minutes[i];
            (m.calls, m.cost) = (n, c);
            m.exact = Some(calls);
        }
        Ok(())
    }

    /// A call made at `t` counts while `t > now - window`; at `t + window` it is gone. Whole minutes leave at once;
    /// the minute the window starts in is read call by call.
    fn expire(&mut self, now_ms: i64, load: &mut Load<'_>) -> Result<(), GateError> {
        let cutoff = now_ms - self.window.millis();
        loop {
            let Some(front) = self.minutes.front() else {
                return Ok(());
            };
            if (front.minute + 1) * MINUTE_MS - 1 <= cutoff {
                let (n, c) = front.totals();
                self.used_calls = self.used_calls.saturating_sub(n);
                self.used_cost = self.used_cost.saturating_sub(c);
                self.minutes.pop_front();
                continue;
            }
            if front.minute * MINUTE_MS > cutoff {
                return Ok(());
            }
            self.load(0, load)?;
            let m = &mut self.minutes[0];
            let (n0, c0) = m.totals();
            if let Some(exact) = &mut m.exact {
                exact.retain(|c| c.0 > cutoff);
                m.calls = exact.len() as u64;
                m.cost = exact.iter().map(|c| c.1).sum();
            }
            m.unrecorded.retain(|c| c.0 > cutoff);
            let (n1, c1) = m.totals();
            self.used_calls = self.used_calls.saturating_sub(n0) + n1;
            self.used_cost = self.used_cost.saturating_sub(c0) + c1;
            if n1 == 0 {
                self.minutes.pop_front();
            }
            return Ok(());
        }
    }

    /// The time of the `k`-th oldest counted call (0-based), reading only the minute it is in.
    fn nth_time(&mut self, k: u64, load: &mut Load<'_>) -> Result<Option<i64>, GateError> {
        let mut before = 0u64;
        for i in 0..self.minutes.len() {
            let (n, _) = self.minutes[i].totals();
            if before + n > k {
                self.load(i, load)?;
                let all = self.minutes[i].each();
                return Ok(all.get((k - before) as usize).map(|c| c.0));
            }
            before += n;
        }
        Ok(None)
    }

    /// When enough of the oldest calls have left for `spent` to take one more costing `cost` under `budget`.
    fn budget_frees(
        &mut self,
        spent: u64,
        cost: u64,
        budget: u64,
        load: &mut Load<'_>,
    ) -> Result<Option<i64>, GateError> {
        let mut left = spent;
        for i in 0..self.minutes.len() {
            let (_, c) = self.minutes[i].totals();
            if left.saturating_sub(c) + cost <= budget {
                self.load(i, load)?;
                for (t, c) in self.minutes[i].each() {
                    left = left.saturating_sub(c);
                    if left + cost <= budget {
                        return Ok(Some(t));
                    }
                }
                return Ok(None);
            }
            left = left.saturating_sub(c);
        }
        Ok(None)
    }

    fn used(&self) -> (u64, u64) {
        (
            self.used_calls + self.reserved_calls,
            self.used_cost + self.reserved_cost,
        )
    }

    /// Checks one more call costing `cost` at `now_ms`.
    fn check(
        &mut self,
        plugin: &str,
        cost: u64,
        now_ms: i64,
        load: &mut Load<'_>,
    ) -> Result<Result<(), Exhausted>, GateError> {
        let (calls, spent) = self.used();
        let w = self.window.millis();
        let refuse = |s: &Scope, resource, used, limit, until_ms| Exhausted {
            plugin: plugin.to_string(),
            tool: s.tool.clone(),
            principal: s.principal.clone(),
            resource,
            used,
            limit,
            window: s.window,
            cost,
            until_ms,
        };
        if let Some(limit) = self.calls
            && calls >= limit
        {
            // The window frees a call when the (calls - limit + 1)-th oldest leaves it. Calls still in flight
            // will be recorded at about now.
            let until = self.nth_time(calls - limit, load)?.unwrap_or(now_ms) + w;
            return Ok(Err(refuse(
                self,
                Resource::Calls,
                calls,
                limit,
                Some(until.max(now_ms)),
            )));
        }
        if let Some(budget) = self.budget
            && spent.saturating_add(cost) > budget
        {
            if cost > budget {
                return Ok(Err(refuse(self, Resource::Cost, spent, budget, None)));
            }
            let until = self
                .budget_frees(spent, cost, budget, load)?
                .map_or(now_ms + w, |t| t + w);
            return Ok(Err(refuse(
                self,
                Resource::Cost,
                spent,
                budget,
                Some(until.max(now_ms)),
            )));
        }
        Ok(Ok(()))
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
            s.insert_unrecorded(time_ms, self.cost);
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

    /// Reads the ledger's minute `minute` of the scope of `tool` and `principal` (all: `None`), up to `max_seq`.
    fn loader(
        &self,
        max_seq: u64,
    ) -> impl FnMut(Option<&str>, Option<&str>, i64) -> MinuteCalls + '_ {
        move |tool, principal, minute| {
            self.ledger
                .minute_calls(&self.plugin, tool, principal, minute, max_seq)
                .map_err(|e| GateError(e.to_string()))
        }
    }

    /// Reads what the ledger gained since the last look and drops what left the windows. The first look reads the
    /// per-minute totals of the longest window (not its calls) and the head they are exact up to.
    fn catch_up(&self, g: &mut Inner, now_ms: i64) -> Result<(), GateError> {
        let err = |e: plughost_registry::ledger::LedgerError| GateError(e.to_string());
        let last = match g.last_seq {
            Some(s) => s,
            None => {
                let longest = g
                    .scopes
                    .iter()
                    .map(|s| s.window.millis())
                    .max()
                    .unwrap_or(0);
                let (head, totals) = self
                    .ledger
                    .minute_totals(&self.plugin, (now_ms - longest).div_euclid(MINUTE_MS))
                    .map_err(err)?;
                for t in &totals {
                    for s in g
                        .scopes
                        .iter_mut()
                        .filter(|s| s.applies(&t.tool, t.principal.as_deref()))
                    {
                        s.add_total(t.minute, t.calls, t.cost);
                    }
                }
                g.last_seq = Some(head);
                head
            }
        };
        let new = self.ledger.counted_after(&self.plugin, last).map_err(err)?;
        let mut last = last;
        for c in &new {
            for s in g
                .scopes
                .iter_mut()
                .filter(|s| s.applies(&c.tool, c.principal.as_deref()))
            {
                s.insert(c.time_ms, c.cost);
            }
            last = last.max(c.seq);
        }
        g.last_seq = Some(last);
        let mut load = self.loader(last);
        for s in &mut g.scopes {
            s.expire(now_ms, &mut load)?;
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
        let mut load = self.loader(g.last_seq.unwrap_or(0));
        // The principal's and the tool's own contracts first (the plugin's is scope 0): a refusal names the most
        // specific limit.
        for s in g
            .scopes
            .iter_mut()
            .rev()
            .filter(|s| s.applies(tool, principal))
        {
            if let Err(e) = s.check(&self.plugin, cost, now_ms, &mut load)? {
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
        let mut load = self.loader(g.last_seq.unwrap_or(0));
        let mut out = Vec::with_capacity(g.scopes.len());
        for s in &mut g.scopes {
            let (calls_used, cost_used) = s.used();
            let oldest = s.nth_time(0, &mut load)?;
            out.push(ScopeUsage {
                tool: s.tool.clone(),
                principal: s.principal.clone(),
                window: s.window,
                calls_used,
                calls_allowed: s.calls,
                cost_used,
                budget: s.budget,
                frees_at_ms: oldest.map(|t| t + s.window.millis()),
            });
        }
        Ok(out)
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
        // The plugin's, each tool's and each principal's (the store's reservations carry the principal).
        let scopes = scopes_of(limits)
            .iter()
            .map(|s| plughost_registry::pg::Scope {
                tool: s.tool.clone(),
                principal: s.principal.clone(),
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

    /// Usage of every scope in its current window, cluster-wide (the same numbers the admission counts).
    pub fn usage(&self, now_ms: i64) -> Result<Vec<ScopeUsage>, GateError> {
        let used = self
            .store
            .usage(&self.plugin, now_ms, &self.scopes)
            .map_err(|e| GateError(e.to_string()))?;
        Ok(self
            .scopes
            .iter()
            .zip(used)
            .map(|(s, u)| ScopeUsage {
                tool: s.tool.clone(),
                principal: s.principal.clone(),
                window: s.window,
                calls_used: u.calls,
                calls_allowed: s.max_calls,
                cost_used: u.cost,
                budget: s.max_cost,
                frees_at_ms: u.oldest_ms.map(|t| t + s.window.millis()),
            })
            .collect())
    }

    /// Admits (and reserves) a call of `tool` by `principal` costing `cost` at `now_ms`, or says which limit
    /// refuses it.
    pub fn admit(
        &self,
        tool: &str,
        principal: Option<&str>,
        cost: u64,
        now_ms: i64,
    ) -> Result<Result<(), Exhausted>, GateError> {
        // The principal's and the tool's own contracts first (as on one data dir): a refusal names the most
        // specific limit.
        let scopes: Vec<_> = self
            .scopes
            .iter()
            .rev()
            .filter(|s| {
                s.tool.as_deref().is_none_or(|t| t == tool)
                    && s.principal.as_deref().is_none_or(|p| Some(p) == principal)
            })
            .cloned()
            .collect();
        match self
            .store
            .admit(&self.plugin, tool, principal, cost, now_ms, &scopes)
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
                    principal: s.principal.clone(),
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

    /// Counted calls of `entries` (of tool `tool`, or all) that a window of `w` ms ending at `now` holds, oldest
    /// first: what a contract must count, worked out from the entries themselves.
    fn in_window(entries: &[NewEntry], tool: Option<&str>, w: i64, now: i64) -> Vec<(i64, u64)> {
        let mut v: Vec<(i64, u64)> = entries
            .iter()
            .filter(|e| {
                e.outcome != "quota" && e.time_ms > now - w && tool.is_none_or(|t| t == e.tool)
            })
            .map(|e| (e.time_ms, e.cost))
            .collect();
        v.sort_by_key(|c| c.0);
        v
    }

    #[test]
    fn month_and_day_windows_are_exact_from_minute_totals_and_across_an_archive_cut() {
        const DAY: i64 = 86_400_000;
        const NOW: i64 = 1_800_000_000_000;
        let month = Window::Month.millis();
        let dir = tempfile::tempdir().expect("dir");
        let ledger = Arc::new(Ledger::open(dir.path()).expect("ledger"));
        // 100 days of calls at uneven times (many share a minute), two tools, some refused.
        let entries: Vec<NewEntry> = (0..6000i64)
            .map(|i| {
                let t = NOW - 100 * DAY + i * (100 * DAY / 6000) + (i * 7919) % 90_000;
                let tool = if i % 4 == 0 { "rare" } else { "t" };
                let outcome = if i % 13 == 0 { "quota" } else { "ok" };
                entry(tool, t, 1 + (i % 3) as u64, outcome)
            })
            .collect();
        for chunk in entries.chunks(700) {
            ledger.append(chunk).expect("append");
        }
        let want = in_window(&entries, None, month, NOW);
        let rare = in_window(&entries, Some("rare"), DAY, NOW);
        let n = want.len() as u64;
        let spent: u64 = want.iter().map(|c| c.1).sum();
        assert!(n > 1500 && rare.len() > 10, "{n} {}", rare.len());
        let mut limits = PluginLimits {
            calls_per_window: Some(n + 2),
            budget: Some(spent + 100),
            window: Some(Window::Month),
            ..Default::default()
        };
        limits.tools.insert(
            "rare".into(),
            ToolContract {
                calls_per_window: Some(rare.len() as u64),
                window: Some(Window::Day),
                ..Default::default()
            },
        );
        let gate = Gate::new(ledger.clone(), "p", &limits).expect("gate");
        // Exactly two more calls fit the month; the third is refused until the oldest call leaves it.
        let a1 = gate.admit("t", None, 0, NOW).expect("gate").expect("n + 1");
        let a2 = gate.admit("t", None, 0, NOW).expect("gate").expect("n + 2");
        let e = gate
            .admit("t", None, 0, NOW)
            .expect("gate")
            .expect_err("full");
        assert_eq!((e.used, e.limit), (n + 2, n + 2));
        assert_eq!(e.until_ms, Some(want[0].0 + month));
        // The tool's day is full too, and frees when its oldest call of the day leaves.
        let e = gate
            .admit("rare", None, 0, NOW)
            .expect("gate")
            .expect_err("rare");
        assert_eq!(e.tool.as_deref(), Some("rare"));
        assert_eq!(e.until_ms, Some(rare[0].0 + DAY));
        drop((a1, a2));
        // A budget refusal names when enough of the oldest calls have left.
        let e = gate
            .admit("t", None, 150, NOW)
            .expect("gate")
            .expect_err("budget");
        let mut left = spent;
        let frees = want
            .iter()
            .find(|c| {
                left -= c.1;
                left + 150 <= spent + 100
            })
            .map(|c| c.0 + month);
        assert_eq!((e.resource, e.until_ms), (Resource::Cost, frees));
        let usage = |g: &Gate, now: i64| {
            g.usage(now)
                .expect("usage")
                .into_iter()
                .map(|u| (u.calls_used, u.cost_used, u.frees_at_ms))
                .collect::<Vec<_>>()
        };
        let expect = |now: i64| {
            let m = in_window(&entries, None, month, now);
            let r = in_window(&entries, Some("rare"), DAY, now);
            vec![
                (
                    m.len() as u64,
                    m.iter().map(|c| c.1).sum(),
                    m.first().map(|c| c.0 + month),
                ),
                (
                    r.len() as u64,
                    r.iter().map(|c| c.1).sum(),
                    r.first().map(|c| c.0 + DAY),
                ),
            ]
        };
        assert_eq!(usage(&gate, NOW), expect(NOW));
        // Entries older than 40 days move to an archive: the same gate and a fresh one count the same, as the
        // windows slide minute by minute and by uneven steps.
        let key = plughost_registry::KeyPair::generate("op").expect("key");
        let cut = ledger
            .archive(NOW - 40 * DAY, &key, NOW, &dir.path().join("a.gz"))
            .expect("archive")
            .expect("archived");
        assert!(cut.entries > 3000, "{cut:?}");
        for later in [0, 1, 59_999, 60_000, 3 * DAY + 17_345, 9 * DAY + 1] {
            let now = NOW + later;
            let fresh = Gate::new(ledger.clone(), "p", &limits).expect("gate");
            assert_eq!(usage(&gate, now), expect(now), "{later}");
            assert_eq!(usage(&fresh, now), expect(now), "{later}");
        }
    }
}
