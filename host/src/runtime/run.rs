//! The call path: check the arguments, take a standby instance or instantiate one in a fresh store, run the
//! guest's `call` under its fuel, memory and deadline, and build the report. Every failure is a typed
//! [`CallError`]; the used store goes to the standby thread or is dropped here.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use wasmtime::Store;

use super::host::Host;
use super::limits::Limits;
use super::output::{convert_output, redact_error};
use super::plugin::LoadedPlugin;
use super::standby::Refill;
use super::stats::LiveInstance;
use super::store::{StoreData, new_store};
use super::trap::{classify_trap, tool_error};
use crate::bindings::{Plugin, tools};
use crate::call::{CallError, CallResult, ToolOutput};
use crate::caps::PluginEnv;
use crate::caps::config::Redactor;
use crate::caps::progress::ProgressSink;
use crate::report::{CallReport, Outcome};

tokio::task_local! {
    /// Set by a caller that forwards progress (the MCP gateway, when the client sent a progress token): the guest's
    /// `progress.report` of a call running inside [`with_progress`] goes there.
    static PROGRESS: ProgressSink;
}

/// Runs `f` (which makes calls) so that the guest's progress reports reach `sink` (bounded: see `caps/progress.rs`).
///
/// A plain function, not an `async fn`, here and in [`cancellable`]: an `async fn` keeps `f` unstarted beside the
/// scope it moves `f` into, which doubled the served call's future (6.1 KB for a 3 KB call), and every move of it.
pub fn with_progress<F: std::future::Future>(
    sink: ProgressSink,
    f: F,
) -> impl std::future::Future<Output = F::Output> {
    PROGRESS.scope(sink, f)
}

tokio::task_local! {
    /// Set by a caller that can cancel its calls (the MCP gateway, from the client's `notifications/cancelled`):
    /// a call running inside [`cancellable`] stops its guest when the token is cancelled.
    static CANCEL: tokio_util::sync::CancellationToken;
}

/// Runs `f` (which makes calls) so that cancelling `token` stops the guest of a call it is running: within one
/// epoch tick (2 ms) for guest code, at once for a guest waiting in a host call. The call still ends with a report
/// (outcome `cancelled`, with what it used) and is ledgered like any other.
pub fn cancellable<F: std::future::Future>(
    token: tokio_util::sync::CancellationToken,
    f: F,
) -> impl std::future::Future<Output = F::Output> {
    CANCEL.scope(token, f)
}

impl Host {
    pub(super) fn new_store(
        &self,
        env: Arc<PluginEnv>,
        limits: &Limits,
    ) -> (Store<StoreData>, Instant) {
        let started = Instant::now();
        let call_id = self.next_call.fetch_add(1, Ordering::Relaxed);
        (new_store(&self.engine, env, limits, call_id), started)
    }

    /// Calls a tool in a fresh store: its own fuel, memory cap and deadline. Never panics; every failure is a
    /// typed [`CallError`] and every call has a [`CallReport`].
    pub async fn call(&self, plugin: &LoadedPlugin, tool: &str, arguments: &str) -> CallResult {
        let early = if plugin.manifest.tool(tool).is_none() {
            Some(CallError::UnknownTool {
                tool: tool.to_string(),
            })
        } else {
            // Validate without building a value: the guest parses the arguments itself.
            match serde_json::from_str::<serde::de::IgnoredAny>(arguments) {
                Ok(_) if arguments.trim_start().starts_with('{') => None,
                Ok(_) => Some(CallError::InvalidArguments {
                    message: "arguments must be a JSON object".into(),
                }),
                Err(e) => Some(CallError::InvalidArguments {
                    message: format!("arguments are not valid JSON: {e}"),
                }),
            }
        };
        self.invoke(plugin, tool, early, &ToolCall { tool, arguments })
            .await
    }

    /// Runs one export of the guest (`what`: a tool call, a resource read, a prompt) in a fresh store under the
    /// plugin's fuel, memory cap and deadline, cancellable, with a [`CallReport`] labelled `label`. `early` refuses
    /// it before any guest code runs. The one path every guest invocation takes.
    pub(crate) async fn invoke<I: Invocation>(
        &self,
        plugin: &LoadedPlugin,
        label: &str,
        early: Option<CallError>,
        what: &I,
    ) -> CallResult<I::Output> {
        let limits = plugin.limits;

        // Room in the host's guest-memory budget for this call's whole memory cap, held until the call is done.
        let _reserved = match &early {
            None => match self.memory.reserve(limits.memory_bytes) {
                Ok(r) => Some(r),
                Err(e) => return self.refused(plugin, label, e),
            },
            Some(_) => None,
        };

        // A standby prepared for this plugin under these limits, or a new store; either way one no call has used.
        let prepared = match (&self.standby, &early) {
            (Some(_), None) => plugin.standby.take(&limits),
            _ => None,
        };
        let started = Instant::now();
        let call_id = self.next_call.fetch_add(1, Ordering::Relaxed);
        let (mut store, ready) = match prepared {
            Some(p) => {
                self.stats.standby_hits.fetch_add(1, Ordering::Relaxed);
                let mut store = p.store;
                store.data_mut().rearm(call_id, &limits, started);
                // The deadline counts from now, not from when the standby was built.
                store.set_epoch_deadline(1);
                (store, Some(p.instance))
            }
            None => (
                new_store(&self.engine, plugin.env.clone(), &limits, call_id),
                None,
            ),
        };
        if plugin.env.ledger.is_some() {
            store.data_mut().tool = Some(Arc::from(label));
        }
        store.data_mut().progress.sink = PROGRESS.try_with(|p| p.clone()).ok();

        let result = match early {
            Some(e) => Err(e),
            None => {
                let pre = &plugin.pre;
                let _live = LiveInstance::enter(&self.stats, ready.is_none());
                let _guest = self.engine.guest_running();
                let run = async {
                    let instance = match ready {
                        Some(instance) => instance,
                        None => pre.instantiate_async(&mut store).await?,
                    };
                    what.run(&instance, &mut store).await
                };
                // The epoch callback stops guest code at the deadline; this timeout also bounds a guest that is
                // waiting inside a host call. A little grace lets the epoch path report first.
                let bounded = tokio::time::timeout(limits.timeout + Duration::from_millis(20), run);
                let cancel = CANCEL.try_with(|c| c.clone()).ok();
                // Guest code yields at every epoch tick, so dropping `bounded` when the caller cancels stops it.
                let ran = match cancel {
                    None => Some(bounded.await),
                    Some(token) => tokio::select! {
                        r = bounded => Some(r),
                        () = token.cancelled() => None,
                    },
                };
                match ran {
                    Some(Ok(Ok(Ok(out)))) => what.convert(out, &limits, plugin.env.redactor()),
                    Some(Ok(Ok(Err(tool_err)))) => Err(tool_error(tool_err)),
                    Some(Ok(Err(trap))) => Err(classify_trap(&trap, &store, &limits, started)),
                    Some(Err(_)) => Err(CallError::Deadline {
                        timeout_ms: limits.timeout.as_millis() as u64,
                    }),
                    None => Err(CallError::Cancelled { reason: None }),
                }
            }
        };
        let result = result.map_err(|e| redact_error(e, plugin.env.redactor()).bounded());

        store.data_mut().flush_stderr();
        store.data_mut().progress.sink = None;
        let fuel_left = store.get_fuel().unwrap_or(0);
        let data = store.data();
        let report = CallReport {
            plugin: plugin.manifest.id.clone(),
            tool: label.to_string(),
            fuel_used: limits.fuel.saturating_sub(fuel_left),
            fuel_limit: limits.fuel,
            peak_memory_bytes: data.limiter.peak,
            memory_limit_bytes: limits.memory_bytes,
            wall_time: started.elapsed(),
            timeout: limits.timeout,
            host_calls: data.host_calls,
            log_lines: data.log.lines,
            log_dropped: data.log.dropped,
            outcome: match &result {
                Ok(_) => Outcome::Ok,
                Err(e) => e.outcome(),
            },
        };
        if let Some(preparer) = &self.standby
            && plugin.standby.spaced(started)
        {
            // The used store is never reused: it is torn down on the standby thread, which then builds this
            // plugin's next instance. Back-to-back calls skip this (see `standby::SPACED`) and drop it here.
            let refill = Refill {
                standby: Arc::downgrade(&plugin.standby),
                pre: plugin.pre.clone(),
                env: plugin.env.clone(),
                limits,
            };
            preparer.after_call(&self.engine, &self.stats, store, Some(refill));
        }
        CallResult { result, report }
    }
}

/// One export of the guest that [`Host::invoke`] runs: how to call it on an instance, and how to check, bound and
/// redact what it returned. A tool call here; a resource read and a prompt in `reads.rs`.
pub(crate) trait Invocation: Sync {
    /// What the guest export returns on success (wasmtime's lifted value).
    type Raw: Send;
    /// What the caller gets.
    type Output;
    fn run<'a>(
        &'a self,
        instance: &'a Plugin,
        store: &'a mut Store<StoreData>,
    ) -> impl std::future::Future<Output = wasmtime::Result<Result<Self::Raw, tools::ToolError>>>
    + Send
    + 'a;
    fn convert(
        &self,
        raw: Self::Raw,
        limits: &Limits,
        redactor: &Redactor,
    ) -> Result<Self::Output, CallError>;
}

struct ToolCall<'a> {
    tool: &'a str,
    arguments: &'a str,
}

impl Invocation for ToolCall<'_> {
    type Raw = tools::Output;
    type Output = ToolOutput;
    fn run<'a>(
        &'a self,
        instance: &'a Plugin,
        store: &'a mut Store<StoreData>,
    ) -> impl std::future::Future<Output = wasmtime::Result<Result<Self::Raw, tools::ToolError>>>
    + Send
    + 'a {
        instance.call_tool(store, self.tool, self.arguments)
    }
    fn convert(
        &self,
        raw: tools::Output,
        limits: &Limits,
        redactor: &Redactor,
    ) -> Result<ToolOutput, CallError> {
        convert_output(raw, limits, redactor)
    }
}

impl Host {
    /// A call refused before any guest code ran (e.g. `busy`): nothing used, and a report that says so.
    pub fn refused<T>(&self, plugin: &LoadedPlugin, tool: &str, error: CallError) -> CallResult<T> {
        let error = error.bounded();
        let limits = plugin.limits;
        let report = CallReport {
            plugin: plugin.manifest.id.clone(),
            tool: tool.to_string(),
            fuel_used: 0,
            fuel_limit: limits.fuel,
            peak_memory_bytes: 0,
            memory_limit_bytes: limits.memory_bytes,
            wall_time: Duration::ZERO,
            timeout: limits.timeout,
            host_calls: Default::default(),
            log_lines: 0,
            log_dropped: 0,
            outcome: error.outcome(),
        };
        CallResult {
            result: Err(error),
            report,
        }
    }
}
