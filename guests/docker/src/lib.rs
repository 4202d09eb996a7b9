//! The Docker plugin: engine facts, containers (list, inspect, run, start, stop, restart, remove, logs) and images
//! (list, pull, remove), all through the `container` capability. What it may do is the operator's grant:
//! `container:read` to look, `lifecycle` to run and manage its own containers, `images` to pull and remove, and the
//! image patterns it may run (`container:read,lifecycle;images=localhost/busybox:*`).

use std::collections::BTreeMap;

use plughost_guest::container::{
    self, ContainerDetails, ContainerSpec, ContainerSummary, EngineInfo, ImageSummary, ListFilter,
    LogOptions,
};
use plughost_guest::{
    Deserialize, Json, JsonSchema, NoArgs, Plugin, Serialize, Tool, ToolError, export_plugin,
};

fn pairs(map: BTreeMap<String, String>) -> Vec<container::Pair> {
    map.into_iter()
        .map(|(key, value)| container::Pair { key, value })
        .collect()
}

/// `64MiB`, `512m`, `1g`, `1048576` → bytes.
fn parse_memory(s: &str) -> Result<u64, ToolError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        ToolError::InvalidArguments(format!("memory limit `{s}` is not a size like 64MiB"))
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => {
            return Err(ToolError::InvalidArguments(format!(
                "memory limit `{s}`: unknown unit `{unit}` (use KiB, MiB or GiB)"
            )));
        }
    };
    let bytes = n
        .checked_mul(mult)
        .ok_or_else(|| ToolError::InvalidArguments(format!("memory limit `{s}` is too large")))?;
    // Engines refuse limits under 6 MiB with an unhelpful message; say it here.
    if bytes < 6 << 20 {
        return Err(ToolError::InvalidArguments(format!(
            "memory limit `{s}` is under the engines' minimum of 6MiB"
        )));
    }
    Ok(bytes)
}

fn engine_info(_: NoArgs) -> Result<Json<EngineInfo>, ToolError> {
    Ok(Json(container::engine()?))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    /// Include stopped containers (default: running only).
    #[serde(default)]
    all: bool,
    /// Label filters, `key` or `key=value`; all must match.
    #[serde(default)]
    labels: Vec<String>,
}

#[derive(Serialize, JsonSchema)]
struct Containers {
    containers: Vec<ContainerSummary>,
}

fn list_containers(a: ListArgs) -> Result<Json<Containers>, ToolError> {
    Ok(Json(Containers {
        containers: container::list_containers(&ListFilter {
            all: a.all,
            labels: a.labels,
        })?,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct IdArgs {
    /// Container id (or a unique prefix) or name.
    id: String,
}

fn inspect_container(a: IdArgs) -> Result<Json<ContainerDetails>, ToolError> {
    Ok(Json(container::inspect(&a.id)?))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RunArgs {
    /// Image reference, e.g. `localhost/busybox:test`; must match an image pattern in the grant.
    image: String,
    /// Container name.
    name: Option<String>,
    /// Command and arguments (default: the image's).
    #[serde(default)]
    command: Vec<String>,
    /// Environment variables.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Labels (plughost adds `io.plughost.plugin=docker`).
    #[serde(default)]
    labels: BTreeMap<String, String>,
    /// Memory limit, e.g. `64MiB`.
    memory_limit: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct Ran {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    image: String,
}

fn run_container(a: RunArgs) -> Result<Json<Ran>, ToolError> {
    let memory_limit_bytes = a.memory_limit.as_deref().map(parse_memory).transpose()?;
    let id = container::create(&ContainerSpec {
        image: a.image.clone(),
        name: a.name.clone(),
        command: a.command,
        env: pairs(a.env),
        labels: pairs(a.labels),
        memory_limit_bytes,
    })?;
    if let Err(e) = container::start(&id) {
        // Leave nothing half-made behind: a container that cannot start is removed again.
        let _ = container::remove(&id, true);
        return Err(e.into());
    }
    Ok(Json(Ran {
        id,
        name: a.name,
        image: a.image,
    }))
}

#[derive(Serialize, JsonSchema)]
struct Done {
    id: String,
    /// What happened: `started`, `stopped`, `restarted` or `removed`.
    result: String,
}

fn done(id: String, result: &str) -> Json<Done> {
    Json(Done {
        id,
        result: result.to_string(),
    })
}

fn start_container(a: IdArgs) -> Result<Json<Done>, ToolError> {
    container::start(&a.id)?;
    Ok(done(a.id, "started"))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StopArgs {
    /// Container id or name.
    id: String,
    /// Seconds to wait after SIGTERM before SIGKILL (default 10, at most 300); the host cuts it so the stop ends
    /// before the call's deadline (4 s with the default 10 s deadline).
    timeout_seconds: Option<u32>,
}

fn stop_container(a: StopArgs) -> Result<Json<Done>, ToolError> {
    container::stop(&a.id, a.timeout_seconds)?;
    Ok(done(a.id, "stopped"))
}

fn restart_container(a: StopArgs) -> Result<Json<Done>, ToolError> {
    container::restart(&a.id, a.timeout_seconds)?;
    Ok(done(a.id, "restarted"))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RemoveArgs {
    /// Container id or name.
    id: String,
    /// Remove even if it is running (it is killed).
    #[serde(default)]
    force: bool,
}

fn remove_container(a: RemoveArgs) -> Result<Json<Done>, ToolError> {
    container::remove(&a.id, a.force)?;
    Ok(done(a.id, "removed"))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LogsArgs {
    /// Container id or name.
    id: String,
    /// Only the last N lines.
    tail: Option<u32>,
    /// Prefix every line with its RFC 3339 timestamp.
    #[serde(default)]
    timestamps: bool,
    /// Include standard output (default true).
    stdout: Option<bool>,
    /// Include standard error (default true).
    stderr: Option<bool>,
}

fn container_logs(a: LogsArgs) -> Result<String, ToolError> {
    Ok(container::logs(
        &a.id,
        LogOptions {
            tail: a.tail,
            timestamps: a.timestamps,
            stdout: a.stdout.unwrap_or(true),
            stderr: a.stderr.unwrap_or(true),
        },
    )?)
}

#[derive(Serialize, JsonSchema)]
struct Images {
    images: Vec<ImageSummary>,
}

fn list_images(_: NoArgs) -> Result<Json<Images>, ToolError> {
    Ok(Json(Images {
        images: container::list_images()?,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ImageArgs {
    /// Image reference, e.g. `alpine:3.20`; must match an image pattern in the grant.
    reference: String,
}

#[derive(Serialize, JsonSchema)]
struct ImageDone {
    reference: String,
    /// `pulled` or `removed`.
    result: String,
}

fn pull_image(a: ImageArgs) -> Result<Json<ImageDone>, ToolError> {
    // The engine's pull is one host call: progress says when it starts and when it is done.
    plughost_guest::progress(0, Some(1), &format!("pulling {}", a.reference));
    container::pull_image(&a.reference)?;
    plughost_guest::progress(1, Some(1), &format!("pulled {}", a.reference));
    Ok(Json(ImageDone {
        reference: a.reference,
        result: "pulled".into(),
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RemoveImageArgs {
    /// Image reference; must match an image pattern in the grant.
    reference: String,
    /// Remove even if containers use it.
    #[serde(default)]
    force: bool,
}

fn remove_image(a: RemoveImageArgs) -> Result<Json<ImageDone>, ToolError> {
    container::remove_image(&a.reference, a.force)?;
    Ok(Json(ImageDone {
        reference: a.reference,
        result: "removed".into(),
    }))
}

struct Docker;

impl Plugin for Docker {
    const ID: &'static str = "docker";
    const NAME: &'static str = "Docker";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Docker (or Podman) containers and images: list, inspect, run, stop, restart, remove, logs, pull.";

    fn tools() -> Vec<Tool> {
        vec![
            Tool::new("engine_info", "The engine's name, version, API version and counts.", engine_info)
                .title("Engine info")
                .read_only(),
            Tool::new("list_containers", "Lists containers, optionally all and by label.", list_containers)
                .title("List containers")
                .read_only(),
            Tool::new(
                "inspect_container",
                "A container's state, exit code, command, environment variable names and memory limit.",
                inspect_container,
            )
            .title("Inspect a container")
            .read_only(),
            Tool::new(
                "run_container",
                "Creates and starts a container from a granted image (name, command, env, labels, memory limit).",
                run_container,
            )
            .title("Run a container"),
            Tool::new("start_container", "Starts a stopped container this plugin created.", start_container)
                .title("Start a container")
                .idempotent(),
            Tool::new(
                "stop_container",
                "Stops a container this plugin created (SIGTERM, then SIGKILL after the timeout).",
                stop_container,
            )
            .title("Stop a container")
            .idempotent(),
            Tool::new("restart_container", "Restarts a container this plugin created.", restart_container)
                .title("Restart a container"),
            Tool::new("remove_container", "Removes a container this plugin created.", remove_container)
                .title("Remove a container")
                .destructive(),
            Tool::new("container_logs", "A container's output: tail and timestamps optional.", container_logs)
                .title("Container logs")
                .read_only(),
            Tool::new("list_images", "Lists the engine's images.", list_images)
                .title("List images")
                .read_only(),
            Tool::new(
                "pull_image",
                "Pulls a granted image from its registry (fails clearly when no registry is reachable). A pull has its \
                 own 120 s budget: if it outlasts the call, the error says it is still running, and calling again \
                 waits for the same pull.",
                pull_image,
            )
            .title("Pull an image")
            .idempotent()
            .open_world(),
            Tool::new("remove_image", "Removes a granted image.", remove_image)
                .title("Remove an image")
                .destructive(),
        ]
    }
}

export_plugin!(Docker);
