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

mod ops;

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

    /// Whether `reference` matches a granted image pattern (`*` matches any run of characters). A reference
    /// without a tag or digest means `:latest`, as the engine reads it.
    pub fn image_allowed(&self, reference: &str) -> bool {
        let normalized = normalize_image(reference);
        self.images
            .iter()
            .any(|p| p.matches(reference) || p.matches(&normalized))
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

/// A granted image pattern, split once at its `*`s (which match any run of characters).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImagePattern {
    /// The pattern as granted, for messages.
    text: String,
    /// The literal pieces between the `*`s; one piece means no `*` (an exact match).
    parts: Vec<String>,
}

impl ImagePattern {
    fn new(text: &str) -> Self {
        ImagePattern {
            text: text.to_string(),
            parts: text.split('*').map(str::to_string).collect(),
        }
    }

    fn matches(&self, text: &str) -> bool {
        let parts = &self.parts;
        if parts.len() == 1 {
            return self.text == text;
        }
        let (first, last) = (&parts[0], &parts[parts.len() - 1]);
        if !text.starts_with(first.as_str())
            || text.len() < first.len() + last.len()
            || !text.ends_with(last.as_str())
        {
            return false;
        }
        let mut rest = &text[first.len()..text.len() - last.len()];
        for mid in &parts[1..parts.len() - 1] {
            match rest.find(mid.as_str()) {
                Some(i) => rest = &rest[i + mid.len()..],
                None => return false,
            }
        }
        true
    }
}

/// Glob with `*` only (tests and one-off checks; the capability matches through [`ImagePattern`]).
#[cfg(test)]
fn glob(pattern: &str, text: &str) -> bool {
    ImagePattern::new(pattern).matches(text)
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

    fn log(&self, op: &str, target: &str, r: &Result<impl Sized, ContainerError>) {
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
