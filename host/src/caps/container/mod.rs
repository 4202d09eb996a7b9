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

mod image;
mod ops;
mod pull;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::errors::Error as BollardError;
use wasmtime::component::{HasData, Linker};

use crate::bindings::container::{self, ContainerError, ContainerState};
use crate::bindings::types::Pair;
use crate::caps::view::CallCtx;
use crate::grants::{Capability, ContainerOps};
use image::ImagePattern;

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
    /// The granted image patterns, parsed once when the plugin is linked.
    images: Arc<[ImagePattern]>,
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
            images: images.iter().map(|p| ImagePattern::new(p)).collect(),
            plugin,
            config: config.clone(),
        }
    }

    fn docker(&self) -> Result<&Docker, ContainerError> {
        self.docker
            .as_ref()
            .map_err(|e| ContainerError::Unavailable(e.clone()))
    }

    fn need(&self, group: Group) -> Result<(), ContainerError> {
        if group.granted(&self.ops) {
            Ok(())
        } else {
            let group = group.name();
            Err(ContainerError::Denied(format!(
                "the container `{group}` group is not granted to plugin `{}` (grant container:{group})",
                self.plugin
            )))
        }
    }

    /// Whether `reference` matches a granted image pattern (`*` matches any run of characters), as written or as
    /// the engine completes it: `alpine` is `docker.io/library/alpine:latest` (see [`image::canonical`]).
    pub fn image_allowed(&self, reference: &str) -> bool {
        self.images.iter().any(|p| p.allows(reference))
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
                self.images
                    .iter()
                    .map(|p| p.text.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// Runs one engine operation within `limit`, and early enough before the call's deadline that the plugin gets
    /// a typed `unavailable` (not the call's `deadline`) from an engine that does not answer.
    async fn bounded<T>(
        &self,
        what: &str,
        limit: Duration,
        deadline: Instant,
        op: impl Future<Output = Result<T, BollardError>>,
    ) -> Result<T, ContainerError> {
        let limit = limit.min(usable(deadline));
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

/// Time kept free before the call's deadline for the plugin to take an engine's answer (or its silence) and
/// return: a fifth of what is left, at most 1 s.
fn reserve(remaining: Duration) -> Duration {
    (remaining / 5).min(Duration::from_secs(1))
}

/// How long an engine operation may still take so that its answer reaches the plugin before the call's deadline.
fn usable(deadline: Instant) -> Duration {
    let remaining = deadline.saturating_duration_since(Instant::now());
    remaining.saturating_sub(reserve(remaining))
}

/// What the engine needs after a stop's grace period: SIGKILL, reaping, cleanup, and for a restart the new start.
/// Podman on a busy 2-core machine took over 3 s for that.
const KILL_MARGIN: Duration = Duration::from_secs(4);
/// The grace period of a stop or restart when the plugin names none (Docker's own default).
pub const DEFAULT_STOP_GRACE: u32 = 10;

/// The SIGTERM grace period (`t`) the engine is asked for: what the plugin asked (default 10 s, at most 300 s), cut
/// so that the grace, the SIGKILL after it and the answer all fit before the call's deadline.
fn stop_grace(asked: Option<u32>, deadline: Instant) -> u32 {
    let asked = asked.unwrap_or(DEFAULT_STOP_GRACE).min(300);
    let fits = usable(deadline).saturating_sub(KILL_MARGIN).as_secs();
    asked.min(u32::try_from(fits).unwrap_or(u32::MAX))
}

/// An operation group of the `container` grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// engine, list, inspect, logs, list images
    Read,
    /// create, start, stop, restart, remove
    Lifecycle,
    /// pull, remove image
    Images,
}

impl Group {
    fn name(self) -> &'static str {
        match self {
            Group::Read => "read",
            Group::Lifecycle => "lifecycle",
            Group::Images => "images",
        }
    }

    fn granted(self, ops: &ContainerOps) -> bool {
        match self {
            Group::Read => ops.read,
            Group::Lifecycle => ops.lifecycle,
            Group::Images => ops.images,
        }
    }
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

/// What the `container` interface sees of the call it serves; its store hands one out through [`ContainerView`].
#[derive(Debug)]
pub struct ContainerHost<'a> {
    pub call: CallCtx<'a>,
    pub container: Option<&'a ContainerCtx>,
    /// Where a refused group or image is recorded (the audit trail); `None` outside a catalog.
    pub denials: Option<&'a crate::caps::denials::DenialAudit>,
    /// The plugin's secrets, kept out of what the audit trail records.
    pub redactor: &'a crate::caps::config::Redactor,
}

/// How `container` reaches the call it serves (the wasmtime-wasi `WasiView` shape): implemented by the runtime's
/// per-call store data, so this module never sees the store type.
pub trait ContainerView: Send {
    fn container_host(&mut self) -> ContainerHost<'_>;
}

impl ContainerHost<'_> {
    fn ctx(&mut self) -> Result<(ContainerCtx, Instant), ContainerError> {
        self.call.count(Capability::Container);
        match self.container {
            Some(c) => Ok((c.clone(), self.call.deadline)),
            None => Err(ContainerError::Denied(
                "container is not granted to this plugin".into(),
            )),
        }
    }

    /// Logs an operation's outcome; a refusal (a group or image outside the grant) also goes on the audit trail,
    /// as the host's own message names it (an image reference, a group, a container id; no values).
    async fn log(&self, op: &str, target: &str, r: &Result<impl Sized, ContainerError>) {
        if let (Err(ContainerError::Denied(why)), Some(audit)) = (r, self.denials) {
            audit
                .denied(
                    self.call.plugin,
                    Capability::Container,
                    &self.redactor.redact(&format!("{op}: {why}")),
                )
                .await;
        }
        let plugin: &str = self.call.plugin;
        let call = self.call.call_id;
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

struct ContainerCap;
impl HasData for ContainerCap {
    type Data<'a> = ContainerHost<'a>;
}

/// Links `plughost:plugin/container`.
pub fn add_to_linker<T: ContainerView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    container::add_to_linker::<T, ContainerCap>(linker, |s| s.container_host())
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
    fn a_stop_grace_fits_the_calls_deadline() {
        let soon = |s: u64| Instant::now() + Duration::from_secs(s);
        // 10 s left: 1 s reserve, 4 s for the kill, so 4 whole seconds of grace at most.
        assert_eq!(stop_grace(None, soon(10)), 4);
        assert_eq!(stop_grace(Some(3), soon(10)), 3);
        assert_eq!(stop_grace(Some(30), soon(60)), 30);
        assert_eq!(stop_grace(Some(1000), soon(3600)), 300);
        assert_eq!(
            stop_grace(None, soon(2)),
            0,
            "no time for grace: SIGKILL at once"
        );
        assert_eq!(stop_grace(None, Instant::now()), 0);
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
        assert!(ctx(&["docker.io/library/*"]).image_allowed("alpine"));
        let glob = |p: &str, t: &str| image::ImagePattern::new(p).matches(t);
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
