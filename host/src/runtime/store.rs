//! What a per-call `Store` holds: the plugin's shared environment, the call's own counters and limits, and a WASI
//! context that grants nothing. It is the one type that implements every capability's view trait and WASI's.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::{Store, UpdateDeadline};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::engine::HostEngine;
use super::limits::{CallLimiter, Limits};
use crate::caps::log::{LogBudget, StderrSink};
use crate::caps::progress::{ProgressHost, ProgressState, ProgressView};
use crate::caps::view::CallCtx;
use crate::caps::{PluginEnv, config, container, http, ledger, log, metrics, state, system};
use crate::report::HostCalls;
use log::LogView;

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
    /// Where the guest's progress reports go during this call, and their rate limit.
    pub(crate) progress: ProgressState,
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
            progress: ProgressState::default(),
        }
    }

    /// Makes a standby store (built before its call) the store of call `call_id`, starting now.
    pub(crate) fn rearm(&mut self, call_id: u64, limits: &Limits, started: Instant) {
        self.call_id = call_id;
        self.deadline = started + limits.timeout;
        self.deadline_hit = false;
        self.progress.reset();
    }

    /// Writes what the guest wrote to stderr during the call to its log, within the call's log budget.
    pub(crate) fn flush_stderr(&mut self) {
        let stderr = self.stderr.clone();
        log::flush_stderr(self.log_host(), &stderr);
    }
}

/// Hands out one capability's host struct: the call's context plus that capability's part of the plugin's
/// environment. Field by field, so the borrows of the counters (mutable) and the environment stay apart.
macro_rules! view {
    ($module:ident::$view:ident, $method:ident, $host:ident, |$env:ident| { $($field:ident: $value:expr),* $(,)? }) => {
        impl $module::$view for StoreData {
            fn $method(&mut self) -> $module::$host<'_> {
                let $env: &PluginEnv = &self.env;
                $module::$host {
                    call: CallCtx {
                        plugin: &$env.id,
                        call_id: self.call_id,
                        deadline: self.deadline,
                        tool: self.tool.as_deref(),
                        host_calls: &mut self.host_calls,
                    },
                    $($field: $value),*
                }
            }
        }
    };
}

view!(config::ConfigView, config_host, ConfigHost, |env| { config: &env.config });
view!(metrics::MetricsView, metrics_host, MetricsHost, |env| {
    metrics: env.metrics.as_ref(),
    redactor: &env.config.redactor,
});
view!(state::StateView, state_host, StateHost, |env| { state: env.state.as_ref() });
view!(system::SystemView, system_host, SystemHost, |env| { system: env.system.as_ref() });
view!(http::HttpView, http_host, HttpHost, |env| {
    http: env.http.as_ref(),
    config: &env.config,
    denials: env.denials.as_deref(),
});
view!(container::ContainerView, container_host, ContainerHost, |env| {
    container: env.container.as_ref(),
    denials: env.denials.as_deref(),
    redactor: &env.config.redactor,
});
view!(ledger::LedgerView, ledger_host, LedgerHost, |env| {
    ledger: env.ledger.as_ref(),
    redactor: &env.config.redactor,
});

impl log::LogView for StoreData {
    fn log_host(&mut self) -> log::LogHost<'_> {
        let env: &PluginEnv = &self.env;
        log::LogHost {
            call: CallCtx {
                plugin: &env.id,
                call_id: self.call_id,
                deadline: self.deadline,
                tool: self.tool.as_deref(),
                host_calls: &mut self.host_calls,
            },
            budget: &mut self.log,
            redactor: &env.config.redactor,
        }
    }
}

impl ProgressView for StoreData {
    fn progress_host(&mut self) -> ProgressHost<'_> {
        ProgressHost {
            state: &mut self.progress,
            redactor: &self.env.config.redactor,
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
