//! `container`: the Docker Engine API through bollard, within the operator's grant.
//!
//! A grant names operation groups — `read` (engine, list, inspect, logs, images), `lifecycle` (create, start, stop,
//! restart, remove), `images` (pull, remove image) — and the image patterns a plugin may create containers from or
//! pull (`container:read,lifecycle;images=localhost/busybox:*`). Every container created through plughost carries
//! the label `io.plughost.plugin=<plugin id>`, and a plugin may start, stop, restart or remove only containers
//! with its own label unless it is granted `any-container`. Containers are created unprivileged, with no mounts,
//! no added capabilities and the engine's default network: the WIT spec cannot ask for anything else.
//!
//! The engine address is the plugin's `docker_host` setting, else the host's [`ContainerConfig::docker_host`],
//! else `DOCKER_HOST`, else `unix:///var/run/docker.sock`. Every engine call is bounded by a timeout (and by the
//! call's deadline): an engine that is down or hangs is a typed `unavailable` error, quickly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, ListContainersOptionsBuilder,
    ListImagesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use wasmtime::component::{HasData, Linker};

use crate::bindings::container::{
    self, ContainerDetails, ContainerError, ContainerSpec, ContainerState, ContainerSummary,
    EngineInfo, ImageSummary, ListFilter, LogOptions,
};
use crate::bindings::types::Pair;
use crate::caps::{CallCtx, CapView};
use crate::grants::{Capability, ContainerOps};

/// The label that marks a container as created by a plugin; its value is the plugin id.
pub const PLUGIN_LABEL: &str = "io.plughost.plugin";
/// Label keys under this prefix belong to plughost; plugins cannot set them.
const RESERVED_LABEL_PREFIX: &str = "io.plughost.";

/// The host-wide settings of the container capability.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    /// The engine address (`unix:///path`, `tcp://host:port`, `http://host:port`); `None`: `DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// Longest one engine operation may take (a stop adds its own grace period; a pull has `pull_timeout`).
    pub timeout: Duration,
    /// Longest a pull may take.
    pub pull_timeout: Duration,
    /// Most log bytes returned by one `logs` call; the rest is cut off with a note.
    pub max_log_bytes: usize,
}

impl Default for ContainerConfig {
    fn default() -> Self {
        ContainerConfig {
            docker_host: None,
            timeout: Duration::from_secs(10),
            pull_timeout: Duration::from_secs(120),
            max_log_bytes: 1 << 20,
        }
    }
}

/// One plugin's view of the engine.
#[derive(Clone)]
pub struct ContainerCtx {
    /// The client, or why none could be made (reported on every call as `unavailable`).
    docker: Result<Docker, String>,
    address: String,
    ops: ContainerOps,
    images: Arc<[String]>,
    plugin: Arc<str>,
    config: ContainerConfig,
}

impl std::fmt::Debug for ContainerCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerCtx")
            .field("address", &self.address)
            .field("ops", &self.ops)
            .field("images", &self.images)
            .field("plugin", &self.plugin)
            .finish_non_exhaustive()
    }
}

fn connect(address: &str, timeout: Duration) -> Result<Docker, String> {
    let secs = timeout.as_secs().max(1);
    let r = if let Some(path) = address.strip_prefix("unix://") {
        Docker::connect_with_unix(path, secs, bollard::API_DEFAULT_VERSION)
    } else if address.starts_with("tcp://") || address.starts_with("http://") {
        Docker::connect_with_http(address, secs, bollard::API_DEFAULT_VERSION)
    } else {
        return Err(format!(
            "unsupported Docker address `{address}` (use unix:///path/to/docker.sock or tcp://host:port)"
        ));
    };
    r.map_err(|e| format!("Docker engine at {address}: {e}"))
}

impl ContainerCtx {
    /// A context for `plugin`, granted `ops` and `images`. `setting` is the plugin's own `docker_host` config.
    pub fn new(
        plugin: Arc<str>,
        ops: ContainerOps,
        images: Vec<String>,
        config: &ContainerConfig,
        setting: Option<&str>,
    ) -> Self {
        let address = setting
            .map(str::to_string)
            .or_else(|| config.docker_host.clone())
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
        ContainerCtx {
            docker: connect(&address, config.timeout),
            address,
            ops,
            images: images.into(),
            plugin,
            config: config.clone(),
        }
    }

    fn docker(&self) -> Result<&Docker, ContainerError> {
        self.docker
            .as_ref()
            .map_err(|e| ContainerError::Unavailable(e.clone()))
    }

    fn need(&self, group: &str, granted: bool) -> Result<(), ContainerError> {
        if granted {
            Ok(())
        } else {
            Err(ContainerError::Denied(format!(
                "the container `{group}` group is not granted to plugin `{}` (grant container:{group})",
                self.plugin
            )))
        }
    }

    /// Whether `reference` matches a granted image pattern (`*` matches any run of characters). A reference
    /// without a tag or digest means `:latest`, as the engine reads it.
    pub fn image_allowed(&self, reference: &str) -> bool {
        let normalized = normalize_image(reference);
        self.images
            .iter()
            .any(|p| glob(p, reference) || glob(p, &normalized))
    }

    fn check_image(&self, reference: &str) -> Result<(), ContainerError> {
        if reference.trim().is_empty() {
            return Err(ContainerError::Denied("an empty image reference".into()));
        }
        if self.image_allowed(reference) {
            Ok(())
        } else if self.images.is_empty() {
            Err(ContainerError::Denied(format!(
                "image `{reference}` is not granted: plugin `{}` has no image patterns (grant e.g. \
                 container:lifecycle;images=localhost/busybox:*)",
                self.plugin
            )))
        } else {
            Err(ContainerError::Denied(format!(
                "image `{reference}` is not granted to plugin `{}` (granted: {})",
                self.plugin,
                self.images.join(", ")
            )))
        }
    }

    /// Runs one engine operation within `limit` and the call's deadline.
    async fn bounded<T>(
        &self,
        what: &str,
        limit: Duration,
        deadline: Instant,
        op: impl Future<Output = Result<T, BollardError>>,
    ) -> Result<T, ContainerError> {
        let limit = limit.min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(limit, op).await {
            Ok(r) => r.map_err(|e| self.engine_error(what, e)),
            Err(_) => Err(ContainerError::Unavailable(format!(
                "{what}: the Docker engine at {} did not answer within {} ms",
                self.address,
                limit.as_millis()
            ))),
        }
    }

    fn engine_error(&self, what: &str, e: BollardError) -> ContainerError {
        match e {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => match status_code {
                404 => ContainerError::NotFound(format!("{what}: {message}")),
                400 | 409 => ContainerError::Conflict(format!("{what}: {message}")),
                // Podman answers some conflicts (e.g. removing a running container) with 500.
                500 if message.contains("state improper") => {
                    ContainerError::Conflict(format!("{what}: {message}"))
                }
                _ => ContainerError::Engine(format!("{what}: {message} (HTTP {status_code})")),
            },
            BollardError::RequestTimeoutError => ContainerError::Unavailable(format!(
                "{what}: the Docker engine at {} did not answer in time",
                self.address
            )),
            e @ (BollardError::IOError { .. }
            | BollardError::HyperLegacyError { .. }
            | BollardError::SocketNotFoundError(_)) => ContainerError::Unavailable(format!(
                "{what}: cannot reach the Docker engine at {}: {e}",
                self.address
            )),
            other => ContainerError::Engine(format!("{what}: {other}")),
        }
    }

    /// Inspects a container. Podman briefly reports a container that just exited as `stopped`, a state the Docker
    /// API (and bollard) does not have; that answer is retried for up to 2 s, until Podman says `exited`.
    async fn inspect(
        &self,
        id: &str,
        deadline: Instant,
    ) -> Result<bollard::models::ContainerInspectResponse, ContainerError> {
        let docker = self.docker()?;
        let op = async {
            let mut tries = 0;
            loop {
                match docker.inspect_container(id, None).await {
                    Err(e @ BollardError::JsonDataError { .. })
                        if e.to_string().contains("unknown variant `stopped`") && tries < 40 =>
                    {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    other => return other,
                }
            }
        };
        self.bounded("inspect", self.config.timeout, deadline, op)
            .await
    }

    /// The container's full id, if this plugin may change it: its own label, or `any-container`.
    async fn owned(&self, id: &str, deadline: Instant) -> Result<String, ContainerError> {
        check_ref("container", id)?;
        let c = self.inspect(id, deadline).await?;
        let full = c.id.clone().unwrap_or_else(|| id.to_string());
        if self.ops.any_container {
            return Ok(full);
        }
        let owner = c
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(PLUGIN_LABEL));
        if owner.map(String::as_str) == Some(&*self.plugin) {
            Ok(full)
        } else {
            Err(ContainerError::Denied(format!(
                "container `{id}` was not created by plugin `{}`; managing other containers needs the \
                 any-container grant",
                self.plugin
            )))
        }
    }
}

/// `name` → `name:latest`; references with a tag or a digest are unchanged.
fn normalize_image(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || reference.contains('@') {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    }
}

/// Glob with `*` only.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Seconds since the epoch of an RFC 3339 time (`2026-11-23T08:00:00.123456789Z`, or with a `+hh:mm` offset).
fn unix_time(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = rest.get(..8)?;
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let zone = rest[8..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match zone {
        "" | "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (oh, om) = z.get(1..)?.split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

/// A container id or name, or an image reference, as it goes into a URL path.
fn check_ref(what: &str, s: &str) -> Result<(), ContainerError> {
    let ok = !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-:/@".contains(&b))
        && !s.contains("..");
    if ok {
        Ok(())
    } else {
        Err(ContainerError::NotFound(format!(
            "`{s}` is not a valid {what} reference"
        )))
    }
}

fn state_of(s: &str) -> ContainerState {
    match s {
        "created" => ContainerState::Created,
        "running" => ContainerState::Running,
        "paused" => ContainerState::Paused,
        "restarting" => ContainerState::Restarting,
        "exited" | "stopped" => ContainerState::Exited,
        "removing" => ContainerState::Removing,
        "dead" => ContainerState::Dead,
        _ => ContainerState::Unknown,
    }
}

fn pairs(map: Option<HashMap<String, String>>) -> Vec<Pair> {
    let mut v: Vec<Pair> = map
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| Pair { key, value })
        .collect();
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v
}

/// The `container` interface's view of a store.
#[derive(Debug)]
pub struct ContainerHost<'a>(CallCtx<'a>);

impl ContainerHost<'_> {
    fn ctx(&mut self) -> Result<(ContainerCtx, Instant), ContainerError> {
        self.0.count(Capability::Container);
        match &self.0.env.container {
            Some(c) => Ok((c.clone(), self.0.deadline)),
            None => Err(ContainerError::Denied(
                "container is not granted to this plugin".into(),
            )),
        }
    }

    fn log(&self, op: &str, target: &str, r: &Result<impl Sized, ContainerError>) {
        let plugin: &str = &self.0.env.id;
        let call = self.0.call_id;
        match r {
            Ok(_) => {
                tracing::debug!(target: "container", plugin, call, op, target, "container operation")
            }
            Err(e) => {
                tracing::debug!(target: "container", plugin, call, op, target, error = ?e, "container operation failed")
            }
        }
    }
}

type R<T> = wasmtime::Result<Result<T, ContainerError>>;

impl container::Host for ContainerHost<'_> {
    async fn engine(&mut self) -> R<EngineInfo> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need("read", ctx.ops.read)?;
            let docker = ctx.docker()?;
            let version = ctx
                .bounded("version", ctx.config.timeout, deadline, docker.version())
                .await?;
            let info = ctx
                .bounded("info", ctx.config.timeout, deadline, docker.info())
                .await?;
            let n = |v: Option<i64>| v.unwrap_or(0).clamp(0, u32::MAX as i64) as u32;
            Ok(EngineInfo {
                // "Engine" for Docker, "Podman Engine" for Podman.
                name: version
                    .components
                    .as_ref()
                    .and_then(|c| c.first())
                    .map(|c| c.name.clone())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "Docker Engine".into()),
                version: version.version.unwrap_or_default(),
                api_version: version.api_version.unwrap_or_default(),
                os: version.os.or(info.os_type).unwrap_or_default(),
                arch: version.arch.or(info.architecture).unwrap_or_default(),
                containers: n(info.containers),
                running: n(info.containers_running),
                images: n(info.images),
            })
        }
        .await;
        self.log("engine", "", &r);
        Ok(r)
    }

    async fn list_containers(&mut self, filter: ListFilter) -> R<Vec<ContainerSummary>> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need("read", ctx.ops.read)?;
            let docker = ctx.docker()?;
            let mut opts = ListContainersOptionsBuilder::new().all(filter.all);
            if !filter.labels.is_empty() {
                opts = opts.filters(&HashMap::from([("label".to_string(), filter.labels)]));
            }
            let list = ctx
                .bounded(
                    "list containers",
                    ctx.config.timeout,
                    deadline,
                    docker.list_containers(Some(opts.build())),
                )
                .await?;
            Ok(list
                .into_iter()
                .map(|c| ContainerSummary {
                    id: c.id.unwrap_or_default(),
                    names: c
                        .names
                        .unwrap_or_default()
                        .into_iter()
                        .map(|n| n.trim_start_matches('/').to_string())
                        .collect(),
                    image: c.image.unwrap_or_default(),
                    state: c
                        .state
                        .map(|s| state_of(s.as_ref()))
                        .unwrap_or(ContainerState::Unknown),
                    status: c.status.unwrap_or_default(),
                    labels: pairs(c.labels),
                    created_unix: c.created.unwrap_or(0),
                })
                .collect())
        }
        .await;
        self.log("list-containers", "", &r);
        Ok(r)
    }

    async fn inspect(&mut self, id: String) -> R<ContainerDetails> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need("read", ctx.ops.read)?;
            check_ref("container", &id)?;
            let c = ctx.inspect(&id, deadline).await?;
            let config = c.config.unwrap_or_default();
            let state = c.state.unwrap_or_default();
            let status = state
                .status
                .map(|s| state_of(s.as_ref()))
                .unwrap_or(ContainerState::Unknown);
            let running = status == ContainerState::Running;
            Ok(ContainerDetails {
                summary: ContainerSummary {
                    id: c.id.unwrap_or_default(),
                    names: c
                        .name
                        .map(|n| vec![n.trim_start_matches('/').to_string()])
                        .unwrap_or_default(),
                    image: config.image.clone().or(c.image).unwrap_or_default(),
                    state: status,
                    status: state.status.map(|s| s.to_string()).unwrap_or_default(),
                    labels: pairs(config.labels),
                    created_unix: c.created.as_deref().and_then(unix_time).unwrap_or(0),
                },
                exit_code: if running { None } else { state.exit_code },
                started_at: state.started_at.filter(|s| !s.starts_with("0001-")),
                finished_at: state.finished_at.filter(|s| !s.starts_with("0001-")),
                command: config.cmd.unwrap_or_default(),
                // Values may hold secrets: only the names leave the host.
                env_names: config
                    .env
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| e.split_once('=').map_or(e.clone(), |(k, _)| k.to_string()))
                    .collect(),
                memory_limit_bytes: c
                    .host_config
                    .and_then(|h| h.memory)
                    .filter(|m| *m > 0)
                    .map(|m| m as u64),
            })
        }
        .await;
        self.log("inspect", &id, &r);
        Ok(r)
    }

    async fn logs(&mut self, id: String, options: LogOptions) -> R<String> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need("read", ctx.ops.read)?;
            check_ref("container", &id)?;
            let docker = ctx.docker()?;
            let (stdout, stderr) = if options.stdout || options.stderr {
                (options.stdout, options.stderr)
            } else {
                (true, true)
            };
            let opts = LogsOptionsBuilder::new()
                .stdout(stdout)
                .stderr(stderr)
                .timestamps(options.timestamps)
                .tail(&options.tail.map_or("all".to_string(), |t| t.to_string()))
                .build();
            let max = ctx.config.max_log_bytes;
            let collect = async {
                let mut out = Vec::new();
                let mut truncated = false;
                let mut stream = docker.logs(&id, Some(opts));
                while let Some(item) = stream.next().await {
                    let bytes = item?.into_bytes();
                    if out.len() + bytes.len() > max {
                        out.extend_from_slice(&bytes[..max - out.len()]);
                        truncated = true;
                        break;
                    }
                    out.extend_from_slice(&bytes);
                }
                Ok((out, truncated))
            };
            let (out, truncated) = ctx
                .bounded("logs", ctx.config.timeout, deadline, collect)
                .await?;
            let mut text = String::from_utf8_lossy(&out).into_owned();
            if truncated {
                text.push_str(&format!("\n[plughost: logs cut off at {max} bytes]"));
            }
            Ok(text)
        }
        .await;
        self.log("logs", &id, &r);
        Ok(r)
    }

    async fn create(&mut self, spec: ContainerSpec) -> R<String> {
        let image = spec.image.clone();
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need("lifecycle", ctx.ops.lifecycle)?;
            ctx.check_image(&spec.image)?;
            let mut labels = HashMap::new();
            for p in spec.labels {
                if p.key.starts_with(RESERVED_LABEL_PREFIX) {
                    return Err(ContainerError::Denied(format!(
                        "label `{}`: keys under `{RESERVED_LABEL_PREFIX}` are set by plughost",
                        p.key
                    )));
                }
                labels.insert(p.key, p.value);
            }
            labels.insert(PLUGIN_LABEL.to_string(), ctx.plugin.to_string());
            let mut env = Vec::with_capacity(spec.env.len());
            for p in spec.env {
                if p.key.is_empty() || p.key.contains('=') {
                    return Err(ContainerError::Conflict(format!(
                        "bad environment variable name `{}`",
                        p.key
                    )));
                }
                env.push(format!("{}={}", p.key, p.value));
            }
            let memory = match spec.memory_limit_bytes {
                Some(m) if m > i64::MAX as u64 => {
                    return Err(ContainerError::Conflict(format!(
                        "memory limit {m} is too large"
                    )));
                }
                m => m.map(|m| m as i64),
            };
            let body = ContainerCreateBody {
                image: Some(spec.image.clone()),
                cmd: (!spec.command.is_empty()).then_some(spec.command),
                env: (!env.is_empty()).then_some(env),
                labels: Some(labels),
                host_config: Some(HostConfig {
                    memory,
                    // Nothing from the host: no privileges, no mounts, no host namespaces, default network.
                    privileged: Some(false),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let mut opts = CreateContainerOptionsBuilder::new();
            if let Some(name) = &spec.name {
                check_ref("container name", name)?;
                opts = opts.name(name);
            }
            let docker = ctx.docker()?;
            let created = ctx
                .bounded(
                    "create",
                    ctx.config.timeout,
                    deadline,
                    docker.create_container(Some(opts.build()), body),
                )
                .await?;
            Ok(created.id)
        }
        .await;
        self.log("create", &image, &r);
        Ok(r)
    }

    async fn start(&mut self, id: String) -> R<()> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need("lifecycle", ctx.ops.lifecycle)?;
            let full = ctx.owned(&id, deadline).await?;
            let docker = ctx.docker()?;
            ctx.bounded(
                "start",
                ctx.config.timeout,
                deadline,
                docker.start_container(&full, None),
            )
            .await
        }
        .await;
        self.log("start", &id, &r);
        Ok(r)
    }

    async fn stop(&mut self, id: String, timeout_seconds: Option<u32>) -> R<()> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need("lifecycle", ctx.ops.lifecycle)?;
            let full = ctx.owned(&id, deadline).await?;
            let docker = ctx.docker()?;
            let t = timeout_seconds.unwrap_or(10).min(300);
            let opts = StopContainerOptionsBuilder::new().t(t as i32).build();
            ctx.bounded(
                "stop",
                ctx.config.timeout + Duration::from_secs(t.into()),
                deadline,
                docker.stop_container(&full, Some(opts)),
            )
            .await
        }
        .await;
        self.log("stop", &id, &r);
        Ok(r)
    }

    async fn restart(&mut self, id: String, timeout_seconds: Option<u32>) -> R<()> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need("lifecycle", ctx.ops.lifecycle)?;
            let full = ctx.owned(&id, deadline).await?;
            let docker = ctx.docker()?;
            let t = timeout_seconds.unwrap_or(10).min(300);
            let opts = RestartContainerOptionsBuilder::new().t(t as i32).build();
            ctx.bounded(
                "restart",
                ctx.config.timeout + Duration::from_secs(t.into()),
                deadline,
                docker.restart_container(&full, Some(opts)),
            )
            .await
        }
        .await;
        self.log("restart", &id, &r);
        Ok(r)
    }

    async fn remove(&mut self, id: String, force: bool) -> R<()> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need("lifecycle", ctx.ops.lifecycle)?;
            let full = ctx.owned(&id, deadline).await?;
            let docker = ctx.docker()?;
            let opts = RemoveContainerOptionsBuilder::new().force(force).build();
            ctx.bounded(
                "remove",
                ctx.config.timeout,
                deadline,
                docker.remove_container(&full, Some(opts)),
            )
            .await
        }
        .await;
        self.log("remove", &id, &r);
        Ok(r)
    }

    async fn list_images(&mut self) -> R<Vec<ImageSummary>> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need("read", ctx.ops.read)?;
            let docker = ctx.docker()?;
            let opts = ListImagesOptionsBuilder::new().all(false).build();
            let list = ctx
                .bounded(
                    "list images",
                    ctx.config.timeout,
                    deadline,
                    docker.list_images(Some(opts)),
                )
                .await?;
            Ok(list
                .into_iter()
                .map(|i| ImageSummary {
                    id: i.id,
                    tags: i.repo_tags,
                    size_bytes: i.size.max(0) as u64,
                    created_unix: i.created,
                })
                .collect())
        }
        .await;
        self.log("list-images", "", &r);
        Ok(r)
    }

    async fn pull_image(&mut self, reference: String) -> R<()> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need("images", ctx.ops.images)?;
            ctx.check_image(&reference)?;
            check_ref("image", &reference)?;
            let docker = ctx.docker()?;
            let opts = CreateImageOptionsBuilder::new()
                .from_image(&normalize_image(&reference))
                .build();
            let pull = async {
                let mut stream = docker.create_image(Some(opts), None, None);
                while let Some(item) = stream.next().await {
                    let info = item?;
                    if let Some(err) = info.error_detail.and_then(|d| d.message) {
                        return Err(BollardError::DockerStreamError { error: err });
                    }
                }
                Ok(())
            };
            ctx.bounded("pull", ctx.config.pull_timeout, deadline, pull)
                .await
                .map_err(|e| match e {
                    // A pull that the engine or the registry refused is a fact about reachability, said plainly.
                    ContainerError::Engine(m) | ContainerError::NotFound(m) => {
                        ContainerError::Unavailable(format!(
                            "{m} (is a registry reachable from the engine?)"
                        ))
                    }
                    other => other,
                })
        }
        .await;
        self.log("pull-image", &reference, &r);
        Ok(r)
    }

    async fn remove_image(&mut self, reference: String, force: bool) -> R<()> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need("images", ctx.ops.images)?;
            ctx.check_image(&reference)?;
            check_ref("image", &reference)?;
            let docker = ctx.docker()?;
            let opts = RemoveImageOptionsBuilder::new().force(force).build();
            ctx.bounded(
                "remove image",
                ctx.config.timeout,
                deadline,
                docker.remove_image(&reference, Some(opts), None),
            )
            .await
            .map(|_| ())
        }
        .await;
        self.log("remove-image", &reference, &r);
        Ok(r)
    }
}

struct ContainerCap;
impl HasData for ContainerCap {
    type Data<'a> = ContainerHost<'a>;
}

/// Links `plughost:plugin/container`.
pub fn add_to_linker<T: CapView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    container::add_to_linker::<T, ContainerCap>(linker, |s| ContainerHost(s.cap()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(images: &[&str]) -> ContainerCtx {
        ContainerCtx::new(
            Arc::from("p"),
            ContainerOps::default(),
            images.iter().map(|s| s.to_string()).collect(),
            &ContainerConfig::default(),
            Some("unix:///nonexistent.sock"),
        )
    }

    #[test]
    fn image_patterns() {
        let c = ctx(&["localhost/busybox:*", "alpine"]);
        assert!(c.image_allowed("localhost/busybox:test"));
        assert!(c.image_allowed("localhost/busybox"), "no tag means :latest");
        assert!(!c.image_allowed("localhost/busyboxer:test"));
        assert!(!c.image_allowed("docker.io/localhost/busybox:test"));
        assert!(c.image_allowed("alpine"));
        assert!(!c.image_allowed("alpine:3.20"), "an exact pattern is exact");
        assert!(!ctx(&[]).image_allowed("alpine"));
        assert!(ctx(&["*"]).image_allowed("anything/at:all"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxc"));
        assert!(!glob("ab*ba", "aba"));
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(unix_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            unix_time("2026-11-23T08:00:00.123456789Z"),
            Some(1_795_420_800)
        );
        assert_eq!(unix_time("2026-11-23T09:00:00+01:00"), Some(1_795_420_800));
        assert_eq!(unix_time("nonsense"), None);
    }

    #[test]
    fn references_cannot_escape_the_url_path() {
        assert!(check_ref("container", "abc123").is_ok());
        assert!(check_ref("container", "my_app-1.2").is_ok());
        assert!(check_ref("container", "../../images/x").is_err());
        assert!(check_ref("container", "a?b").is_err());
        assert!(check_ref("container", "").is_err());
    }
}
