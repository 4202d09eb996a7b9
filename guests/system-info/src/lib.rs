//! The system-info plugin: machine facts and a health check, through the `system` capability only.

use plughost_guest::system::{
    self, CpuInfo, DiskInfo, LoadAverage, MemoryInfo, NetworkInfo, OsInfo,
};
use plughost_guest::{
    Deserialize, Json, JsonSchema, NoArgs, Plugin, Serialize, Tool, ToolError, export_plugin,
};

#[derive(Serialize, JsonSchema)]
struct Summary {
    os: OsInfo,
    cpu: CpuInfo,
    memory: MemoryInfo,
    load: LoadAverage,
}

#[derive(Serialize, JsonSchema)]
struct Disks {
    disks: Vec<DiskInfo>,
}

#[derive(Serialize, JsonSchema)]
struct Networks {
    interfaces: Vec<NetworkInfo>,
}

fn default_cpu() -> f32 {
    90.0
}
fn default_memory() -> f32 {
    90.0
}
fn default_disk() -> f32 {
    90.0
}

/// Usage thresholds, in percent, above which the machine counts as unhealthy.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HealthArgs {
    /// CPU usage threshold in percent (default 90).
    #[serde(default = "default_cpu")]
    #[schemars(range(min = 0, max = 100))]
    cpu_percent: f32,
    /// Memory usage threshold in percent (default 90).
    #[serde(default = "default_memory")]
    #[schemars(range(min = 0, max = 100))]
    memory_percent: f32,
    /// Disk usage threshold in percent, per mounted disk (default 90).
    #[serde(default = "default_disk")]
    #[schemars(range(min = 0, max = 100))]
    disk_percent: f32,
}

#[derive(Serialize, JsonSchema, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum Verdict {
    Healthy,
    Unhealthy,
}

#[derive(Serialize, JsonSchema)]
struct Health {
    verdict: Verdict,
    /// Why the machine is unhealthy; empty when healthy.
    reasons: Vec<String>,
    cpu_percent: f32,
    memory_percent: f32,
    /// The fullest disk's usage in percent.
    max_disk_percent: f32,
}

fn percent(used: u64, total: u64) -> f32 {
    if total == 0 {
        0.0
    } else {
        (used as f64 * 100.0 / total as f64) as f32
    }
}

fn check_threshold(name: &str, v: f32) -> Result<(), ToolError> {
    if !(0.0..=100.0).contains(&v) {
        return Err(ToolError::InvalidArguments(format!(
            "{name} must be between 0 and 100, got {v}"
        )));
    }
    Ok(())
}

fn system_info(_: NoArgs) -> Result<Json<Summary>, ToolError> {
    Ok(Json(Summary {
        os: system::os(),
        cpu: system::cpu(),
        memory: system::memory(),
        load: system::load(),
    }))
}

fn cpu(_: NoArgs) -> Result<Json<CpuInfo>, ToolError> {
    Ok(Json(system::cpu()))
}

fn memory(_: NoArgs) -> Result<Json<MemoryInfo>, ToolError> {
    Ok(Json(system::memory()))
}

fn disks(_: NoArgs) -> Result<Json<Disks>, ToolError> {
    Ok(Json(Disks {
        disks: system::disks(),
    }))
}

fn network(_: NoArgs) -> Result<Json<Networks>, ToolError> {
    Ok(Json(Networks {
        interfaces: system::networks(),
    }))
}

fn health_check(args: HealthArgs) -> Result<Json<Health>, ToolError> {
    check_threshold("cpu_percent", args.cpu_percent)?;
    check_threshold("memory_percent", args.memory_percent)?;
    check_threshold("disk_percent", args.disk_percent)?;
    let cpu = system::cpu().usage_percent;
    let mem = system::memory();
    let memory_percent = percent(
        mem.total_bytes - mem.available_bytes.min(mem.total_bytes),
        mem.total_bytes,
    );
    let mut reasons = Vec::new();
    if cpu > args.cpu_percent {
        reasons.push(format!(
            "CPU usage {cpu:.1}% is above {:.1}%",
            args.cpu_percent
        ));
    }
    if memory_percent > args.memory_percent {
        reasons.push(format!(
            "memory usage {memory_percent:.1}% is above {:.1}%",
            args.memory_percent
        ));
    }
    let mut max_disk_percent = 0.0f32;
    for d in system::disks().iter().filter(|d| d.total_bytes > 0) {
        let p = percent(
            d.total_bytes - d.available_bytes.min(d.total_bytes),
            d.total_bytes,
        );
        max_disk_percent = max_disk_percent.max(p);
        if p > args.disk_percent {
            reasons.push(format!(
                "disk {} is {p:.1}% full (above {:.1}%)",
                d.mount_point, args.disk_percent
            ));
        }
    }
    let verdict = if reasons.is_empty() {
        Verdict::Healthy
    } else {
        Verdict::Unhealthy
    };
    Ok(Json(Health {
        verdict,
        reasons,
        cpu_percent: cpu,
        memory_percent,
        max_disk_percent,
    }))
}

struct SystemInfo;

impl Plugin for SystemInfo {
    const ID: &'static str = "system-info";
    const NAME: &'static str = "System info";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "OS, CPU, memory, disk and network facts about the host, and a health check.";

    fn tools() -> Vec<Tool> {
        vec![
            Tool::new("system_info", "OS, CPU, memory and load in one summary.", system_info)
                .title("System summary")
                .read_only(),
            Tool::new("cpu", "CPU model, cores, frequency and usage per core.", cpu).title("CPU").read_only(),
            Tool::new("memory", "Total, available and used memory and swap, in bytes.", memory)
                .title("Memory")
                .read_only(),
            Tool::new("disks", "Mounted file systems with their size and free space.", disks).title("Disks").read_only(),
            Tool::new("network", "Network interfaces with addresses and traffic counters.", network)
                .title("Network")
                .read_only(),
            Tool::new(
                "health_check",
                "Compares CPU, memory and disk usage with thresholds and gives a verdict with reasons.",
                health_check,
            )
            .title("Health check")
            .read_only(),
        ]
    }
}

export_plugin!(SystemInfo);
