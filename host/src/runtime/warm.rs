//! Benchmark support only: warm calls on one instance, and pacing. plughost itself never reuses an instance.

use std::time::{Duration, Instant};

use super::host::Host;
use super::limits::Limits;
use super::plugin::LoadedPlugin;
use super::trap::{classify_trap, tool_error};
use crate::call::CallError;

/// Benchmark support: calls `tool` `n` times on **one** instance (the "warm" path a per-session host would use) and
/// returns each call's duration. Not part of the serving path: plughost itself always uses a fresh store per call.
#[doc(hidden)]
pub async fn warm_calls(
    host: &Host,
    plugin: &LoadedPlugin,
    tool: &str,
    arguments: &str,
    n: usize,
) -> Result<Vec<Duration>, CallError> {
    warm_calls_paced(host, plugin, tool, arguments, n, None).await
}

/// [`warm_calls`] with each call starting `gap` after the previous one started (spinning, not sleeping, between).
#[doc(hidden)]
pub async fn warm_calls_paced(
    host: &Host,
    plugin: &LoadedPlugin,
    tool: &str,
    arguments: &str,
    n: usize,
    gap: Option<Duration>,
) -> Result<Vec<Duration>, CallError> {
    let limits = Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_secs(3600),
        ..plugin.limits
    };
    let (mut store, started) = host.new_store(plugin.env.clone(), &limits);
    let _guest = host.engine.guest_running();
    let instance = plugin
        .pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| classify_trap(&e, &store, &limits, started))?;
    // Looked up once, outside the timed calls, as a warm host would keep it.
    let call = instance
        .tool_call(&mut store)
        .map_err(|e| classify_trap(&e, &store, &limits, started))?;
    let mut out = Vec::with_capacity(n);
    let mut next = Instant::now();
    for _ in 0..n {
        pace(&mut next, gap);
        let t = Instant::now();
        let r = call
            .call_async(&mut store, (tool, arguments))
            .await
            .map(|(r,)| r);
        out.push(t.elapsed());
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(tool_error(e)),
            Err(e) => return Err(classify_trap(&e, &store, &limits, started)),
        }
    }
    Ok(out)
}

/// Benchmark support: with a `gap`, spins (a timer wakeup would cost more than a call) until `next`, then sets
/// `next` one gap from now. Without one, returns at once.
#[doc(hidden)]
pub fn pace(next: &mut Instant, gap: Option<Duration>) {
    if let Some(gap) = gap {
        while Instant::now() < *next {
            std::hint::spin_loop();
        }
        *next = Instant::now() + gap;
    }
}
