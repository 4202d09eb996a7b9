//! `system`: read-only machine facts through sysinfo. One probe is shared by every plugin; CPU usage is sampled
//! over sysinfo's minimum interval and reused for a second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sysinfo::{Disks, Networks, System};
use tokio::sync::Mutex;
use wasmtime::component::{HasData, Linker};

use crate::bindings::system::{
    self, CpuInfo, DiskInfo, LoadAverage, MemoryInfo, NetworkInfo, OsInfo,
};
use crate::caps::view::CallCtx;
use crate::grants::Capability;

#[derive(Debug)]
struct Probe {
    sys: Option<System>,
    cpu_sampled: Option<Instant>,
}

/// The host-wide system probe.
#[derive(Debug, Clone)]
pub struct SystemCtx {
    probe: Arc<Mutex<Probe>>,
}

impl Default for SystemCtx {
    fn default() -> Self {
        SystemCtx {
            probe: Arc::new(Mutex::new(Probe {
                sys: None,
                cpu_sampled: None,
            })),
        }
    }
}

/// The probe's `System`, created on first use. Failing to read /proc is a host fault: the call traps with the reason.
fn probe_sys(p: &mut Probe) -> wasmtime::Result<&mut System> {
    if p.sys.is_none() {
        p.sys =
            Some(System::new().map_err(|e| {
                wasmtime::Error::msg(format!("system information unavailable: {e}"))
            })?);
    }
    p.sys
        .as_mut()
        .ok_or_else(|| wasmtime::Error::msg("system information unavailable"))
}

fn or_empty(r: Result<String, sysinfo::Error>) -> String {
    r.unwrap_or_default()
}

impl SystemCtx {
    async fn with_sys<R>(&self, f: impl FnOnce(&mut System) -> R) -> wasmtime::Result<R> {
        let mut p = self.probe.lock().await;
        Ok(f(probe_sys(&mut p)?))
    }

    async fn cpu(&self) -> wasmtime::Result<CpuInfo> {
        let mut p = self.probe.lock().await;
        let fresh = p
            .cpu_sampled
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1));
        if !fresh {
            probe_sys(&mut p)?.refresh_cpu_all();
            tokio::time::sleep(
                sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(Duration::from_millis(100)),
            )
            .await;
            probe_sys(&mut p)?.refresh_cpu_usage();
            p.cpu_sampled = Some(Instant::now());
        }
        let sys = probe_sys(&mut p)?;
        let cpus = sys.cpus();
        Ok(CpuInfo {
            brand: cpus
                .first()
                .map(|c| c.brand().trim().to_string())
                .unwrap_or_default(),
            vendor: cpus
                .first()
                .map(|c| c.vendor_id().to_string())
                .unwrap_or_default(),
            logical_cores: cpus.len() as u32,
            physical_cores: System::physical_core_count().ok().map(|n| n as u32),
            frequency_mhz: cpus.first().map(|c| c.frequency()).unwrap_or(0),
            usage_percent: sys.global_cpu_usage(),
            per_core_percent: cpus.iter().map(|c| c.usage()).collect(),
        })
    }
}

/// What the `system` interface sees of the call it serves; its store hands one out through [`SystemView`].
#[derive(Debug)]
pub struct SystemHost<'a> {
    pub call: CallCtx<'a>,
    pub system: Option<&'a SystemCtx>,
}

/// How `system` reaches the call it serves (the wasmtime-wasi `WasiView` shape): implemented by the runtime's
/// per-call store data, so this module never sees the store type.
pub trait SystemView: Send {
    fn system_host(&mut self) -> SystemHost<'_>;
}

impl SystemHost<'_> {
    fn ctx(&mut self) -> wasmtime::Result<SystemCtx> {
        self.call.count(Capability::System);
        self.system
            .cloned()
            .ok_or_else(|| wasmtime::Error::msg("system capability has no context"))
    }
}

impl system::Host for SystemHost<'_> {
    async fn os(&mut self) -> wasmtime::Result<OsInfo> {
        self.ctx()?;
        Ok(OsInfo {
            family: std::env::consts::OS.to_string(),
            name: or_empty(System::long_os_version()),
            kernel_version: or_empty(System::kernel_version()),
            hostname: or_empty(System::host_name()),
            arch: System::cpu_arch(),
            uptime_seconds: System::uptime().unwrap_or(0),
            boot_time_unix: System::boot_time().unwrap_or(0),
        })
    }

    async fn cpu(&mut self) -> wasmtime::Result<CpuInfo> {
        self.ctx()?.cpu().await
    }

    async fn memory(&mut self) -> wasmtime::Result<MemoryInfo> {
        let ctx = self.ctx()?;
        ctx.with_sys(|sys| {
            sys.refresh_memory();
            MemoryInfo {
                total_bytes: sys.total_memory(),
                available_bytes: sys.available_memory(),
                used_bytes: sys.used_memory(),
                swap_total_bytes: sys.total_swap(),
                swap_used_bytes: sys.used_swap(),
            }
        })
        .await
    }

    async fn disks(&mut self) -> wasmtime::Result<Vec<DiskInfo>> {
        self.ctx()?;
        let disks = Disks::new_with_refreshed_list()
            .map_err(|e| wasmtime::Error::msg(format!("disk information unavailable: {e}")))?;
        Ok(disks
            .iter()
            .map(|d| DiskInfo {
                name: d.name().to_string_lossy().into_owned(),
                mount_point: d.mount_point().to_string_lossy().into_owned(),
                file_system: d.file_system().to_string_lossy().into_owned(),
                total_bytes: d.total_space(),
                available_bytes: d.available_space(),
                removable: d.is_removable(),
            })
            .collect())
    }

    async fn networks(&mut self) -> wasmtime::Result<Vec<NetworkInfo>> {
        self.ctx()?;
        let nets = Networks::new_with_refreshed_list()
            .map_err(|e| wasmtime::Error::msg(format!("network information unavailable: {e}")))?;
        let mut out: Vec<NetworkInfo> = nets
            .iter()
            .map(|(name, n)| NetworkInfo {
                name: name.to_string_lossy().into_owned(),
                mac_address: n.mac_address().to_string(),
                addresses: n
                    .ip_networks()
                    .iter()
                    .map(|ip| format!("{}/{}", ip.addr, ip.prefix))
                    .collect(),
                received_bytes: n.total_received(),
                transmitted_bytes: n.total_transmitted(),
                received_packets: n.total_packets_received(),
                transmitted_packets: n.total_packets_transmitted(),
                errors_in: n.total_errors_on_received(),
                errors_out: n.total_errors_on_transmitted(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn load(&mut self) -> wasmtime::Result<LoadAverage> {
        self.ctx()?;
        let l = System::load_average().unwrap_or(sysinfo::LoadAvg {
            one: 0.0,
            five: 0.0,
            fifteen: 0.0,
        });
        Ok(LoadAverage {
            one: l.one,
            five: l.five,
            fifteen: l.fifteen,
        })
    }
}

struct SystemCap;
impl HasData for SystemCap {
    type Data<'a> = SystemHost<'a>;
}

/// Links `plughost:plugin/system`.
pub fn add_to_linker<T: SystemView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    system::add_to_linker::<T, SystemCap>(linker, |s| s.system_host())
}
