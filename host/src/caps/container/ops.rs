//! The `container` interface's operations (engine info, list, inspect, logs, create, start, stop, restart, remove,
//! images, pull, remove image), each checked against the grant's group and image patterns, bounded in time, and
//! limited to the plugin's own containers unless it holds `any-container`.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder,
    RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;

use crate::bindings::container::{
    self, ContainerDetails, ContainerError, ContainerSpec, ContainerState, ContainerSummary,
    EngineInfo, ImageSummary, ListFilter, LogOptions,
};

use super::{
    ContainerHost, Group, PLUGIN_LABEL, RESERVED_LABEL_PREFIX, check_ref, image, pairs, pull,
    state_of, stop_grace, unix_time,
};

type R<T> = wasmtime::Result<Result<T, ContainerError>>;

impl container::Host for ContainerHost<'_> {
    async fn engine(&mut self) -> R<EngineInfo> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need(Group::Read)?;
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
        self.log("engine", "", &r).await;
        Ok(r)
    }

    async fn list_containers(&mut self, filter: ListFilter) -> R<Vec<ContainerSummary>> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need(Group::Read)?;
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
        self.log("list-containers", "", &r).await;
        Ok(r)
    }

    async fn inspect(&mut self, id: String) -> R<ContainerDetails> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need(Group::Read)?;
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
        self.log("inspect", &id, &r).await;
        Ok(r)
    }

    async fn logs(&mut self, id: String, options: LogOptions) -> R<String> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need(Group::Read)?;
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
        self.log("logs", &id, &r).await;
        Ok(r)
    }

    async fn create(&mut self, spec: ContainerSpec) -> R<String> {
        let image = spec.image.clone();
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need(Group::Lifecycle)?;
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
                // The reference the grant was checked against, not the engine's own reading of a short name.
                image: Some(image::canonical(&spec.image)),
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
        self.log("create", &image, &r).await;
        Ok(r)
    }

    async fn start(&mut self, id: String) -> R<()> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need(Group::Lifecycle)?;
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
        self.log("start", &id, &r).await;
        Ok(r)
    }

    async fn stop(&mut self, id: String, timeout_seconds: Option<u32>) -> R<()> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need(Group::Lifecycle)?;
            let full = ctx.owned(&id, deadline).await?;
            let docker = ctx.docker()?;
            let t = stop_grace(timeout_seconds, deadline);
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
        self.log("stop", &id, &r).await;
        Ok(r)
    }

    async fn restart(&mut self, id: String, timeout_seconds: Option<u32>) -> R<()> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need(Group::Lifecycle)?;
            let full = ctx.owned(&id, deadline).await?;
            let docker = ctx.docker()?;
            let t = stop_grace(timeout_seconds, deadline);
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
        self.log("restart", &id, &r).await;
        Ok(r)
    }

    async fn remove(&mut self, id: String, force: bool) -> R<()> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need(Group::Lifecycle)?;
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
        self.log("remove", &id, &r).await;
        Ok(r)
    }

    async fn list_images(&mut self) -> R<Vec<ImageSummary>> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need(Group::Read)?;
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
        self.log("list-images", "", &r).await;
        Ok(r)
    }

    async fn pull_image(&mut self, reference: String) -> R<()> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need(Group::Images)?;
            ctx.check_image(&reference)?;
            check_ref("image", &reference)?;
            pull::pull(&ctx, &image::canonical(&reference), deadline).await
        }
        .await;
        self.log("pull-image", &reference, &r).await;
        Ok(r)
    }

    async fn remove_image(&mut self, reference: String, force: bool) -> R<()> {
        let r = async {
            let (ctx, deadline) = self.ctx()?;
            ctx.need(Group::Images)?;
            ctx.check_image(&reference)?;
            check_ref("image", &reference)?;
            let docker = ctx.docker()?;
            let opts = RemoveImageOptionsBuilder::new().force(force).build();
            ctx.bounded(
                "remove image",
                ctx.config.timeout,
                deadline,
                docker.remove_image(&image::canonical(&reference), Some(opts), None),
            )
            .await
            .map(|_| ())
        }
        .await;
        self.log("remove-image", &reference, &r).await;
        Ok(r)
    }
}
