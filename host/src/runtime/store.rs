//! What a per-call `Store` holds: the plugin's shared environment, the call's own counters and limits, and a WASI
//! context that grants nothing. It is the one type that implements the capabilities' view ([`CapView`]) and WASI's.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Store, UpdateDeadline};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::engine::HostEngine;
use super::limits::{CallLimiter, Limits};
use crate::caps::log::{LogBudget, StderrSink};
use crate::caps::{CallCtx, CapView, PluginEnv};
use crate::report::HostCalls;

/// Per-call store data.
pub struct StoreData {
    pub(crate) env: Arc<PluginEnv>,
    pub(crate) call_id: u64,
    pub(crate) limiter: CallLimiter,
    pub(crate) host_calls: HostCalls,
    pub(crate) log: LogBudget,
    pub(crate) deadline: Instant,
    pub(crate) deadline_hit: bool,
    /// Built on the first WASI call only: most calls never touch WASI, and building it costs more than the call.
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    pub(crate) stderr: StderrSink,
    /// The tool being called; set only for plugins granted `ledger`, which stamps events with it.
    pub(crate) tool: Option<Arc<str>>,
}

impl StoreData {
    pub(crate) fn new(
        env: Arc<PluginEnv>,
        call_id: u64,
        limits: &Limits,
        started: Instant,
    ) -> Self {
        StoreData {
            env,
            call_id,
            limiter: CallLimiter::new(limits.memory_bytes),
            host_calls: HostCalls::default(),
            log: LogBudget::new(limits.max_log_lines, limits.max_log_line_bytes),
            deadline: started + limits.timeout,
            deadline_hit: false,
            wasi: None,
            table: ResourceTable::new(),
            stderr: StderrSink::new(limits.max_log_line_bytes as usize * 4),
            tool: None,
        }
    }

    /// Makes a standby store (built before its call) the store of call `call_id`, starting now.
    pub(crate) fn rearm(&mut self, call_id: u64, limits: &Limits, started: Instant) {
        self.call_id = call_id;
        self.deadline = started + limits.timeout;
        self.deadline_hit = false;
    }

    /// Writes what the guest wrote to stderr during the call to its log, within the call's log budget.
    pub(crate) fn flush_stderr(&mut self) {
        let stderr = self.stderr.clone();
        crate::caps::log::flush_stderr(self.cap(), &stderr);
    }
}

impl CapView for StoreData {
    fn cap(&mut self) -> CallCtx<'_> {
        CallCtx {
            env: &self.env,
            call_id: self.call_id,
            deadline: self.deadline,
            tool: self.tool.as_deref(),
            host_calls: &mut self.host_calls,
            log: &mut self.log,
        }
    }
}

impl std::fmt::Debug for StoreData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreData")
            .field("plugin", &self.env.id)
            .field("call_id", &self.call_id)
            .finish_non_exhaustive()
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let stderr = &self.stderr;
        let ctx = self.wasi.get_or_insert_with(|| {
            // Nothing is open: no preopens, no env, no args, no network, no stdin/stdout.
            // Stderr goes to the plugin's log (bounded), tagged with the plugin and call.
            let mut b = WasiCtx::builder();
            b.stderr(stderr.clone());
            b.allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false);
            b.build()
        });
        WasiCtxView {
            ctx,
            table: &mut self.table,
        }
    }
}

/// A new store for one call (or a standby): its own fuel, memory cap and deadline, and a WASI context that grants
/// nothing.
pub(crate) fn new_store(
    engine: &HostEngine,
    env: Arc<PluginEnv>,
    limits: &Limits,
    call_id: u64,
) -> Store<StoreData> {
    let mut store = Store::new(
        engine.engine(),
        StoreData::new(env, call_id, limits, Instant::now()),
    );
    store.limiter(|s| &mut s.limiter);
    // Fuel cannot fail to be set on an engine with fuel enabled; if it ever did, the call would run with none.
    let _ = store.set_fuel(limits.fuel);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut cx| {
        let data = cx.data_mut();
        if Instant::now() >= data.deadline {
            data.deadline_hit = true;
            Ok(UpdateDeadline::Interrupt)
        } else {
            // Let other tasks (and our own timeout) run between ticks.
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store
}
