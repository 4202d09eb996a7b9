//! Pulls, under a budget of their own.
//!
//! A pull can take minutes; a call has 10 s by default. So a pull runs in the host's background, bounded by
//! [`ContainerConfig::pull_timeout`](super::ContainerConfig) (120 s by default), not by the call that started it.
//! The call waits for it until just before its own deadline; if the pull is still running then, the plugin gets
//! `unavailable` saying so and how much of the budget is used, and the next `pull-image` of the same reference on
//! the same engine waits for the same pull instead of starting another. At most [`MAX_PULLS`] pulls run at once
//! per host process. A pull started by a one-shot `plughost call` ends with that process.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use bollard::errors::Error as BollardError;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::{ContainerCtx, usable};
use crate::bindings::container::ContainerError;

/// Most pulls under way at once in one host process.
pub const MAX_PULLS: usize = 16;

type Outcome = Option<Result<(), ContainerError>>;

struct Pull {
    started: Instant,
    done: watch::Receiver<Outcome>,
}

/// The pulls under way, by engine address and canonical reference.
fn pulls() -> &'static Mutex<HashMap<(String, String), Pull>> {
    static PULLS: OnceLock<Mutex<HashMap<(String, String), Pull>>> = OnceLock::new();
    PULLS.get_or_init(Default::default)
}

/// A pull that the engine or the registry refused is a fact about reachability, said plainly.
fn refused(e: ContainerError) -> ContainerError {
    match e {
        ContainerError::Engine(m) | ContainerError::NotFound(m) => {
            ContainerError::Unavailable(format!("{m} (is a registry reachable from the engine?)"))
        }
        other => other,
    }
}

/// Starts (or joins) the pull of `full` — a canonical reference — and waits for it until just before `deadline`.
pub(super) async fn pull(
    ctx: &ContainerCtx,
    full: &str,
    deadline: Instant,
) -> Result<(), ContainerError> {
    let key = (ctx.address.clone(), full.to_string());
    let (mut done, started) = {
        let mut map = pulls().lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&key) {
            Some(p) => (p.done.clone(), p.started),
            None => {
                if map.len() >= MAX_PULLS {
                    return Err(ContainerError::Unavailable(format!(
                        "pull of {full}: {MAX_PULLS} pulls are already under way on this host; try again later"
                    )));
                }
                let docker = ctx.docker()?.clone();
                let (tx, rx) = watch::channel(None);
                let started = Instant::now();
                map.insert(
                    key.clone(),
                    Pull {
                        started,
                        done: rx.clone(),
                    },
                );
                let ctx = ctx.clone();
                let full = full.to_string();
                tokio::spawn(async move {
                    let opts = CreateImageOptionsBuilder::new().from_image(&full).build();
                    let run = async {
                        let mut stream = docker.create_image(Some(opts), None, None);
                        while let Some(item) = stream.next().await {
                            if let Some(err) = item?.error_detail.and_then(|d| d.message) {
                                return Err(BollardError::DockerStreamError { error: err });
                            }
                        }
                        Ok(())
                    };
                    let budget = ctx.config.pull_timeout;
                    let outcome = match tokio::time::timeout(budget, run).await {
                        Ok(r) => {
                            r.map_err(|e| refused(ctx.engine_error(&format!("pull of {full}"), e)))
                        }
                        Err(_) => Err(ContainerError::Unavailable(format!(
                            "pull of {full}: not done within its budget of {} s; the engine at {} stopped \
                             waiting for it",
                            budget.as_secs(),
                            ctx.address
                        ))),
                    };
                    // The map's receiver keeps the channel open, so the outcome is stored for late joiners too.
                    let _ = tx.send(Some(outcome));
                    pulls()
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&(ctx.address.clone(), full));
                });
                (rx, started)
            }
        }
    };
    match tokio::time::timeout(usable(deadline), done.wait_for(Option::is_some)).await {
        Ok(Ok(outcome)) => outcome.clone().unwrap_or(Ok(())),
        Ok(Err(_)) => Err(ContainerError::Unavailable(format!(
            "pull of {full}: the pull ended without a result"
        ))),
        Err(_) => Err(ContainerError::Unavailable(format!(
            "pull of {full}: still running in the engine ({} s of its {} s budget used); call pull_image again \
             to wait for the same pull",
            started.elapsed().as_secs(),
            ctx.config.pull_timeout.as_secs()
        ))),
    }
}
