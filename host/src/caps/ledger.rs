//! `ledger`: a plugin appends its own domain events ("dns record created") to the host's usage ledger, chained
//! like the call entries, and reads its own usage in its contract window. Events are bounded: a kind of
//! `[a-z0-9._-]{1,64}`, at most 16 KiB of JSON, at most [`MAX_EVENTS_PER_CALL`] per call.

use std::sync::Arc;

use plughost_registry::Window;
use plughost_registry::ledger::{Caller, Kind, LedgerError, NewEntry, check_event};
use wasmtime::component::{HasData, Linker};

use crate::bindings::ledger::{self as wit, LedgerError as WitError, UsageSummary};
use crate::caps::config::Redactor;
use crate::caps::view::CallCtx;
use crate::grants::Capability;
use crate::ledger::{LedgerWriter, now_ms};

/// Most events one call may append.
pub const MAX_EVENTS_PER_CALL: u32 = 32;

/// One plugin's ledger context: where events go and what they are stamped with.
#[derive(Debug, Clone)]
pub struct LedgerCtx {
    /// `None` when the host runs without a ledger (an ad-hoc call of a file, `plughost test`).
    pub writer: Option<Arc<LedgerWriter>>,
    pub version: String,
    pub digest: String,
    /// The window `usage()` covers: the plugin's contract window, else a day.
    pub window: Window,
}

/// What the `ledger` interface sees of the call it serves; its store hands one out through [`LedgerView`].
#[derive(Debug)]
pub struct LedgerHost<'a> {
    pub call: CallCtx<'a>,
    pub ledger: Option<&'a LedgerCtx>,
    /// The plugin's secrets, redacted from event data (decoded JSON values and keys) before it is written.
    pub redactor: &'a Redactor,
}

/// How `ledger` reaches the call it serves (the wasmtime-wasi `WasiView` shape): implemented by the runtime's
/// per-call store data, so this module never sees the store type.
pub trait LedgerView: Send {
    fn ledger_host(&mut self) -> LedgerHost<'_>;
}

impl LedgerHost<'_> {
    /// The plugin's id, its ledger context and the writer; `unavailable` when this host keeps no ledger.
    fn ctx(&mut self) -> Result<(Arc<str>, LedgerCtx, Arc<LedgerWriter>), WitError> {
        self.call.count(Capability::Ledger);
        match self.ledger {
            Some(c) => match &c.writer {
                Some(w) => Ok((self.call.plugin.clone(), c.clone(), w.clone())),
                None => Err(no_ledger()),
            },
            None => Err(no_ledger()),
        }
    }
}

fn no_ledger() -> WitError {
    WitError::Unavailable(
        "this host keeps no ledger (an ad-hoc call of a file is not recorded); install the plugin"
            .into(),
    )
}

fn unavailable(e: impl std::fmt::Display) -> WitError {
    WitError::Unavailable(e.to_string())
}

impl wit::Host for LedgerHost<'_> {
    async fn append(
        &mut self,
        kind: String,
        mut data_json: String,
    ) -> wasmtime::Result<Result<u64, WitError>> {
        let (id, ctx, writer) = match self.ctx() {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        if self.call.host_calls.get(Capability::Ledger) > MAX_EVENTS_PER_CALL {
            return Ok(Err(WitError::Unavailable(format!(
                "one call may append at most {MAX_EVENTS_PER_CALL} events"
            ))));
        }
        // A kind cannot be redacted and stay a kind: one showing a secret is refused (the plugin knows its secret).
        if self.redactor.reveals(&kind) {
            return Ok(Err(WitError::InvalidKind(kind)));
        }
        // Redacted on the decoded JSON (escapes hide nothing); invalid JSON is left for `check_event` to refuse.
        if !self.redactor.is_empty()
            && let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&data_json)
            && self.redactor.redact_json(&mut v)
        {
            data_json = v.to_string();
        }
        if let Err(e) = check_event(&kind, &data_json) {
            return Ok(Err(match e {
                LedgerError::BadEventKind(k) => WitError::InvalidKind(k),
                LedgerError::EventTooLarge(n) => {
                    WitError::TooLarge(n.min(u32::MAX as usize) as u32)
                }
                other => WitError::Unavailable(other.to_string()),
            }));
        }
        let entry = NewEntry {
            time_ms: now_ms(),
            kind: Kind::Event,
            plugin: id.to_string(),
            version: ctx.version.clone(),
            digest: ctx.digest.clone(),
            tool: self.call.tool.unwrap_or_default().to_string(),
            caller: Caller {
                transport: "plugin".into(),
                session: None,
                principal: None,
            },
            duration_us: 0,
            fuel_used: 0,
            peak_memory: 0,
            outcome: "event".into(),
            args_digest: None,
            cost: 0,
            event: Some(kind),
            data: Some(data_json),
        };
        Ok(match writer.append(vec![entry]).await {
            Ok(seqs) => seqs
                .first()
                .copied()
                .ok_or_else(|| unavailable("nothing was written")),
            Err(e) => Err(unavailable(e)),
        })
    }

    async fn usage(&mut self) -> wasmtime::Result<Result<UsageSummary, WitError>> {
        let (id, ctx, writer) = match self.ctx() {
            Ok(x) => x,
            Err(e) => return Ok(Err(e)),
        };
        let since = now_ms() - ctx.window.millis();
        Ok(match writer.ledger().usage(&id, None, since) {
            Ok(u) => Ok(UsageSummary {
                calls: u.calls,
                fuel: u.fuel,
                cost_tokens: u.cost,
                window_start_unix: (since.max(0) / 1000) as u64,
            }),
            Err(e) => Err(unavailable(e)),
        })
    }
}

struct Ledger;
impl HasData for Ledger {
    type Data<'a> = LedgerHost<'a>;
}

/// Links `plughost:plugin/ledger`.
pub fn add_to_linker<T: LedgerView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, Ledger>(linker, |s| s.ledger_host())
}
