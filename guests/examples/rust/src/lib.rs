//! An uptime checker written with the Rust SDK: `check` asks a service for its health over `http` (and can post
//! the result to a webhook), `history` reads the checks it kept in `state`.

use plughost_guest::prelude::*;

/// How many checks `history` keeps.
const KEPT: usize = 20;

#[args]
struct Check {
    /// The health endpoint, e.g. `https://api.example.com/health`; it answers JSON with a `status` field.
    url: String,
    /// Where to POST the result as JSON, if anywhere.
    report_to: Option<String>,
}

#[output(deserialize)]
#[derive(Clone)]
struct Health {
    url: String,
    /// The HTTP status.
    status: u16,
    /// Whether the service said `"status": "ok"`.
    healthy: bool,
    /// The service's version, when it says.
    version: Option<String>,
}

/// Checks a service's health endpoint, remembers the result, and posts it to `report_to` if given.
#[tool(open_world)]
fn check(args: Check) -> Result<Health, ToolError> {
    let response = http::get(&args.url)
        .header("accept", "application/json")
        .send()?
        .error_for_status()?;
    let says: serde_json::Value = response.json()?;
    let health = Health {
        url: args.url,
        status: response.status,
        healthy: says["status"] == "ok",
        version: says["version"].as_str().map(str::to_string),
    };
    let mut kept: Vec<Health> = state::get_json("checks")?.unwrap_or_default();
    kept.push(health.clone());
    let from = kept.len().saturating_sub(KEPT);
    state::set_json("checks", &kept[from..])?;
    if let Some(hook) = args.report_to {
        http::post(hook).json(&health).send()?.error_for_status()?;
    }
    log::info!("{} is {}", health.url, if health.healthy { "healthy" } else { "unhealthy" });
    Ok(health)
}

#[output]
struct History {
    checks: Vec<Health>,
    /// How many of them were healthy.
    healthy: usize,
}

/// The last checks, oldest first.
#[tool(read_only)]
fn history() -> Result<History, ToolError> {
    let checks: Vec<Health> = state::get_json("checks")?.unwrap_or_default();
    let healthy = checks.iter().filter(|c| c.healthy).count();
    Ok(History { checks, healthy })
}

export_plugin! {
    id: "rs-uptime",
    name: "Uptime",
    description: "Checks services' health endpoints over HTTP and keeps the last results.",
    tools: [check, history],
}
