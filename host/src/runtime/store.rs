//! What a per-call `Store` holds: the plugin's shared environment, the call's own counters and limits, and a WASI
//! context that grants nothing.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::caps::PluginEnv;
use crate::caps::log::{LogBudget, StderrSink};
use crate::grants::Capability;
use crate::limits::{CallLimiter, Limits};
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

    /// Counts one host call on `cap`.
    #[inline]
    pub(crate) fn count(&mut self, cap: Capability) {
        self.host_calls.0[cap.index()] += 1;
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
