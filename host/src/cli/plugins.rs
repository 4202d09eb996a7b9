//! The operator's registry commands: keys, sign, install, upgrade, rollback, remove, list, info, grants, grant,
//! revoke, config, limits, enable, disable, history. Only the CLI changes grants; nothing here is reachable from MCP.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use plughost::registry::{PluginLimits, Window, grant_kind};
use plughost::units::{format_bytes, human_bytes, parse_bytes, parse_duration};
use plughost::{Capability, Grants, Home, Manifest};

use super::{group_digits, list_or_none, open_registry, print_json, publisher_text, table, when};

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Set a setting, or a secret with --secret (its value is read from stdin or a prompt, never from argv).
    Set {
        key: String,
        /// The value (not allowed with --secret).
        value: Option<String>,
        #[arg(long)]
        secret: bool,
    },
    /// Remove a setting or secret.
    Unset { key: String },
    /// List settings; secrets are listed without their values.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct LimitsArgs {
    pub id: String,
    /// Fuel budget per call.
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Memory cap per call, e.g. 128MiB.
    #[arg(long)]
    pub memory: Option<String>,
    /// Deadline per call, e.g. 10s.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Calls at once; more are refused as busy. 0 removes the limit.
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Contract: calls allowed per window, e.g. `100/hour` (minute, hour, day, month = 30 days). 0 removes it.
    #[arg(long, value_name = "N[/WINDOW]")]
    pub calls: Option<String>,
    /// Contract: tokens one call costs. 0 removes it.
    #[arg(long, value_name = "TOKENS")]
    pub cost: Option<u64>,
    /// Contract: tokens allowed per window, e.g. `5000` or `5000/day`. 0 removes it.
    #[arg(long, value_name = "TOKENS[/WINDOW]")]
    pub budget: Option<String>,
    /// Contract: the sliding window calls and budget are counted over (default: day).
    #[arg(long, value_name = "WINDOW")]
    pub window: Option<String>,
    /// Apply --calls, --cost, --budget and --window to this tool's own contract instead of the plugin's.
    #[arg(long)]
    pub tool: Option<String>,
    /// Go back to the host defaults.
    #[arg(long)]
    pub reset: bool,
    #[arg(long)]
    pub json: bool,
}

// ---- list / info / grants / history ----------------------------------------------------------------------------

pub fn list(home: &Home, json: bool) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let plugins = reg.list()?;
    if json {
        return print_json(&plugins).map(|_| ExitCode::SUCCESS);
    }
    if plugins.is_empty() {
        println!("no plugins installed; `plughost install <file.wasm>` adds one");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 5]> = plugins
        .iter()
        .map(|p| {
            [
                p.id.clone(),
                p.version.clone(),
                match (&p.enabled, &p.disabled_reason) {
                    (true, _) => "enabled".into(),
                    (false, Some(r)) => format!("disabled: {r}"),
                    (false, None) => "disabled".into(),
                },
                match &p.publisher {
                    Some(k) if k.revoked => format!("{} (revoked)", k.name),
                    Some(k) => k.name.clone(),
                    None => "UNSIGNED".into(),
                },
                list_or_none(&p.grants),
            ]
        })
        .collect();
    table(&["ID", "VERSION", "STATUS", "PUBLISHER", "GRANTS"], &rows);
    Ok(ExitCode::SUCCESS)
}

pub fn info(home: &Home, id: &str, json: bool) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let r = reg.plugin(id)?;
    let versions = reg.versions(id)?;
    let config = reg.config(id)?;
    let manifest: Option<Manifest> = serde_json::from_str(&r.manifest_json).ok();
    let limits = plughost::catalog::limits_from(&r.limits);
    if json {
        let v = serde_json::json!({
            "plugin": r,
            "effective_limits": limits,
            "manifest": manifest,
            "versions": versions,
            "config": config,
        });
        return print_json(&v).map(|_| ExitCode::SUCCESS);
    }
    println!(
        "{} {}{}",
        r.id,
        r.version,
        manifest
            .as_ref()
            .map(|m| format!(" — {}", m.name))
            .unwrap_or_default()
    );
    if let Some(m) = &manifest {
        println!("  {}", m.description);
    }
    let status = if r.enabled {
        "enabled".to_string()
    } else {
        format!(
            "disabled ({})",
            r.disabled_reason.as_deref().unwrap_or("by the operator")
        )
    };
    println!("status       {status}");
    println!("digest       {}", r.digest);
    println!("size         {}", human_bytes(r.size));
    println!("publisher    {}", publisher_text(&r));
    println!("declared     {}", list_or_none(&r.declared));
    println!("grants       {}", list_or_none(&r.grants));
    println!(
        "limits       fuel {}  memory {}  timeout {}  concurrency {}",
        limits.fuel,
        format_bytes(limits.memory_bytes),
        plughost::units::human_duration(limits.timeout),
        r.limits
            .concurrency
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unlimited".into())
    );
    if !config.is_empty() {
        println!("config");
        for c in &config {
            match &c.value {
                Some(v) => println!("  {} = {v}", c.key),
                None => println!("  {} = (secret, set)", c.key),
            }
        }
    }
    if let Some(m) = &manifest {
        println!("tools");
        for t in &m.tools {
            println!("  {:<16} {}", t.name, t.description);
        }
    }
    println!("versions");
    for v in &versions {
        println!(
            "  {} {:<10} {}  {}{}",
            if v.current { "*" } else { " " },
            v.version,
            v.digest.get(..19).unwrap_or(&v.digest),
            when(v.installed_at),
            v.publisher
                .as_ref()
                .map(|p| format!("  signed by {p}"))
                .unwrap_or_else(|| "  unsigned".into())
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn grants(home: &Home, id: &str, json: bool) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let r = reg.plugin(id)?;
    if json {
        let v = serde_json::json!({ "plugin": r.id, "granted": r.grants, "declared": r.declared });
        return print_json(&v).map(|_| ExitCode::SUCCESS);
    }
    println!("{} {}", r.id, r.version);
    let granted = Grants::parse(&r.grants).unwrap_or_default();
    for d in &r.declared {
        let kind = grant_kind(d);
        let cap = Capability::from_name(kind);
        let state = match cap.and_then(|c| granted.get(c)) {
            Some(g) => format!("granted   {g}"),
            None => "NOT granted".to_string(),
        };
        println!(
            "  {kind:<10} {state:<40} {}",
            cap.map(|c| c.describe()).unwrap_or("")
        );
    }
    if r.declared.is_empty() {
        println!("  needs no capabilities");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn history(home: &Home, id: Option<&str>, json: bool) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let h = reg.history(id, 100)?;
    if json {
        return print_json(&h).map(|_| ExitCode::SUCCESS);
    }
    for e in h.iter().rev() {
        println!(
            "{}  {:<16} {:<14} {}",
            when(e.at),
            e.plugin.as_deref().unwrap_or("-"),
            e.action,
            e.detail
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ---- operator changes -------------------------------------------------------------------------------------------

pub fn grant(home: &Home, id: &str, add: &[String]) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let r = reg.plugin(id)?;
    let mut g = Grants::parse(&r.grants)?;
    for item in Grants::parse(add)?.iter() {
        g.add(item.clone());
    }
    let r = reg.set_grants(id, &g.to_strings())?;
    println!("{id} grants: {}", list_or_none(&r.grants));
    Ok(ExitCode::SUCCESS)
}

pub fn revoke(home: &Home, id: &str, what: &[String]) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let r = reg.plugin(id)?;
    let mut g = Grants::parse(&r.grants)?;
    for w in what {
        let cap = Capability::from_name(grant_kind(w)).with_context(|| {
            format!("`{w}` is not a capability (log, metrics, state, config, system, http, container, ledger)")
        })?;
        if g.revoke(cap).is_none() {
            bail!("plugin `{id}` has no `{}` grant", cap.name());
        }
    }
    let r = reg.set_grants(id, &g.to_strings())?;
    println!("{id} grants: {}", list_or_none(&r.grants));
    let declared: Vec<&str> = r.declared.iter().map(|d| grant_kind(d)).collect();
    let missing: Vec<&&str> = declared
        .iter()
        .filter(|k| Capability::from_name(k).is_some_and(|c| !g.has(c)))
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "note: `{id}` imports {} and will not load until granted again",
            missing.iter().map(|s| **s).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn set_enabled(home: &Home, id: &str, enabled: bool) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    reg.set_enabled(id, enabled)?;
    println!("{id} {}", if enabled { "enabled" } else { "disabled" });
    Ok(ExitCode::SUCCESS)
}

pub fn rollback(home: &Home, id: &str) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let before = reg.plugin(id)?;
    let r = reg.rollback(id)?;
    println!(
        "rolled {id} back: {} -> {} ({})",
        before.version, r.version, r.digest
    );
    println!("  grants  {}", list_or_none(&r.grants));
    Ok(ExitCode::SUCCESS)
}

pub fn remove(home: &Home, id: &str) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let r = reg.remove(id)?;
    println!("removed {id} {} (its config and secrets too)", r.version);
    Ok(ExitCode::SUCCESS)
}

pub fn config(home: &Home, id: &str, cmd: ConfigCommand) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    match cmd {
        ConfigCommand::Set { key, value, secret } => {
            let value = match (value, secret) {
                (Some(_), true) => bail!(
                    "a secret's value is read from stdin or a prompt, never from the command line \
                     (it would stay in your shell history): `plughost config {id} set {key} --secret`"
                ),
                (Some(v), false) => v,
                (None, false) => bail!("give a value: `plughost config {id} set {key} VALUE`"),
                (None, true) => read_secret(&key)?,
            };
            reg.set_config(id, &key, &value, secret)?;
            println!(
                "{id}: {key} {}",
                if secret { "set (secret)" } else { "set" }
            );
        }
        ConfigCommand::Unset { key } => {
            if reg.unset_config(id, &key)? {
                println!("{id}: {key} removed");
            } else {
                bail!("plugin `{id}` has no setting `{key}`");
            }
        }
        ConfigCommand::List { json } => {
            let entries = reg.config(id)?;
            if json {
                return print_json(&entries).map(|_| ExitCode::SUCCESS);
            }
            for c in entries {
                match c.value {
                    Some(v) => println!("{} = {v}", c.key),
                    None => println!("{} = (secret, set)", c.key),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_secret(key: &str) -> Result<String> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("value for secret `{key}` (not echoed): "))?
    } else {
        let mut v = String::new();
        std::io::stdin().read_to_string(&mut v)?;
        v
    };
    let value = value.trim_end_matches(['\n', '\r']).to_string();
    if value.is_empty() {
        bail!("empty secret: nothing was stored");
    }
    Ok(value)
}

#[derive(Debug, Args)]
pub struct QuotaArgs {
    /// One plugin (default: every installed plugin).
    pub id: Option<String>,
    #[arg(long)]
    pub json: bool,
}

pub fn quota(home: &Home, args: QuotaArgs) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let records = match &args.id {
        Some(id) => vec![reg.plugin(id)?],
        None => reg.list()?,
    };
    let ledger = std::sync::Arc::new(plughost::ledger::Ledger::open(home.root())?);
    let now = plughost::ledger::now_ms();
    let views = records
        .iter()
        .map(|r| {
            let language = plughost::catalog::installed_language(&reg, &r.id);
            plughost::quota::view(&ledger, r, language, now)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if args.json {
        return print_json(&serde_json::json!({ "plugins": views })).map(|_| ExitCode::SUCCESS);
    }
    if views.is_empty() {
        println!("no plugins installed");
    }
    let n = |v: Option<u64>| v.map(group_digits).unwrap_or_else(|| "-".into());
    let b = |v: Option<u64>| v.map(format_bytes).unwrap_or_else(|| "-".into());
    for v in &views {
        println!(
            "{} {} ({}){}",
            v.plugin,
            v.version,
            v.language.name(),
            if v.enabled { "" } else { " (disabled)" }
        );
        println!(
            "  fuel         limit {}   last {}   p50 {}   p99 {}   (latest {} call{})",
            group_digits(v.fuel.limit),
            n(v.fuel.last),
            n(v.fuel.p50),
            n(v.fuel.p99),
            v.calls_sampled,
            if v.calls_sampled == 1 { "" } else { "s" }
        );
        println!(
            "  memory       limit {}   last peak {}   max peak {}",
            format_bytes(v.memory.limit_bytes),
            b(v.memory.last_peak_bytes),
            b(v.memory.max_peak_bytes)
        );
        println!(
            "  deadline     {}   concurrency {}",
            plughost::units::human_duration(std::time::Duration::from_millis(v.deadline_ms)),
            v.concurrency
                .map(|c| c.to_string())
                .unwrap_or_else(|| "unlimited".into())
        );
        for c in &v.contracts {
            let who = c
                .tool
                .as_ref()
                .map(|t| format!("tool {t}"))
                .unwrap_or_else(|| "plugin".into());
            let mut parts = Vec::new();
            parts.push(match c.calls_allowed {
                Some(a) => format!("calls {} of {a}", c.calls_used),
                None => format!("calls {}", c.calls_used),
            });
            parts.push(match c.budget {
                Some(a) => format!("cost {} of {a} tokens", c.cost_used),
                None => format!("cost {} tokens", c.cost_used),
            });
            let frees = c
                .frees_at_ms
                .map(|t| format!("; oldest leaves at {}", plughost::units::rfc3339_ms(t)))
                .unwrap_or_default();
            println!(
                "  contract     {who}: {} per {}{frees}",
                parts.join(", "),
                c.window.name()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The period: calls at or after this long ago (`90m`, `24h`, `7d`).
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// Only this plugin.
    #[arg(long)]
    pub plugin: Option<String>,
    #[arg(long)]
    pub json: bool,
}

pub fn stats(home: &Home, args: StatsArgs) -> Result<ExitCode> {
    let ago = parse_duration(&args.since).context("--since")?;
    let ledger = plughost::ledger::Ledger::open(home.root())?;
    let entries = ledger.entries(&plughost::registry::ledger::Filter {
        plugin: args.plugin.clone(),
        since_ms: Some(plughost::ledger::now_ms() - ago.as_millis() as i64),
        kind: Some(plughost::ledger::Kind::Call),
        ..Default::default()
    })?;
    let stats = plughost::quota::tool_stats(&entries);
    if args.json {
        return print_json(&serde_json::json!({ "since": args.since, "tools": stats }))
            .map(|_| ExitCode::SUCCESS);
    }
    println!(
        "calls in the last {} (from the ledger; live gauges and plugin metrics: GET /metrics on `plughost serve --http`)",
        args.since
    );
    if stats.is_empty() {
        println!("  none");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "  {:<36} {:>7} {:>7} {:>10} {:>10} {:>13} {:>13} {:>10} {:>7}",
        "plugin/tool", "calls", "errors", "p50", "p99", "fuel p50", "fuel p99", "peak mem", "cost"
    );
    let ms = |v: Option<f64>| v.map(|x| format!("{x:.2}ms")).unwrap_or_else(|| "-".into());
    let n = |v: Option<u64>| v.map(group_digits).unwrap_or_else(|| "-".into());
    for t in &stats {
        println!(
            "  {:<36} {:>7} {:>7} {:>10} {:>10} {:>13} {:>13} {:>10} {:>7}",
            format!("{}/{}", t.plugin, t.tool),
            t.calls,
            t.errors,
            ms(t.latency_ms_p50),
            ms(t.latency_ms_p99),
            n(t.fuel_p50),
            n(t.fuel_p99),
            format_bytes(t.peak_memory_max_bytes),
            t.cost
        );
        let errs: Vec<String> = t
            .outcomes
            .iter()
            .filter(|(k, _)| k.as_str() != "ok")
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !errs.is_empty() {
            println!("  {:<36} errors: {}", "", errs.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `100/hour` → (100, Some(Hour)); `100` → (100, None).
fn parse_per_window(s: &str, what: &str) -> Result<(u64, Option<Window>)> {
    let (n, w) = match s.split_once('/') {
        Some((n, w)) => (n, Some(w)),
        None => (s, None),
    };
    let n: u64 = n
        .trim()
        .parse()
        .with_context(|| format!("{what}: `{s}` is not a number (e.g. 100 or 100/hour)"))?;
    let w = w.map(|w| parse_window(w, what)).transpose()?;
    Ok((n, w))
}

fn parse_window(w: &str, what: &str) -> Result<Window> {
    Window::parse(w)
        .with_context(|| format!("{what}: unknown window `{w}` (minute, hour, day or month)"))
}

pub fn limits(home: &Home, args: LimitsArgs) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let r = reg.plugin(&args.id)?;
    let contract_change = args.calls.is_some()
        || args.cost.is_some()
        || args.budget.is_some()
        || args.window.is_some();
    if args.tool.is_some() && !contract_change {
        bail!("--tool applies to --calls, --cost, --budget or --window; give at least one");
    }
    let changing = args.fuel.is_some()
        || args.memory.is_some()
        || args.timeout.is_some()
        || args.concurrency.is_some()
        || contract_change
        || args.reset;
    let r = if changing {
        let mut l = if args.reset {
            PluginLimits::default()
        } else {
            r.limits.clone()
        };
        if let Some(f) = args.fuel {
            l.fuel = Some(f);
        }
        if let Some(m) = &args.memory {
            l.memory_bytes = Some(parse_bytes(m).context("--memory")?);
        }
        if let Some(t) = &args.timeout {
            l.timeout_ms = Some(parse_duration(t).context("--timeout")?.as_millis() as u64);
        }
        if let Some(c) = args.concurrency {
            l.concurrency = (c > 0).then_some(c);
        }
        let calls = args
            .calls
            .as_deref()
            .map(|s| parse_per_window(s, "--calls"))
            .transpose()?;
        let budget = args
            .budget
            .as_deref()
            .map(|s| parse_per_window(s, "--budget"))
            .transpose()?;
        let mut window = args
            .window
            .as_deref()
            .map(|w| parse_window(w, "--window"))
            .transpose()?;
        for (_, w) in calls.iter().chain(budget.iter()) {
            if let Some(w) = w {
                if window.is_some_and(|x| x != *w) {
                    bail!(
                        "--calls, --budget and --window name different windows; a contract has one window"
                    );
                }
                window = Some(*w);
            }
        }
        let nonzero = |n: u64| (n > 0).then_some(n);
        match &args.tool {
            None => {
                if let Some((n, _)) = calls {
                    l.calls_per_window = nonzero(n);
                }
                if let Some((n, _)) = budget {
                    l.budget = nonzero(n);
                }
                if let Some(c) = args.cost {
                    l.cost_per_call = nonzero(c);
                }
                if window.is_some() {
                    l.window = window;
                }
            }
            Some(tool) => {
                let manifest: plughost::plugin::Manifest =
                    serde_json::from_str(&r.manifest_json)
                        .context("the stored manifest is unreadable; reinstall the plugin")?;
                if manifest.tool(tool).is_none() {
                    bail!(
                        "plugin `{}` has no tool `{tool}` (its tools: {})",
                        r.id,
                        manifest
                            .tools
                            .iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                let c = l.tools.entry(tool.clone()).or_default();
                if let Some((n, _)) = calls {
                    c.calls_per_window = nonzero(n);
                }
                if let Some((n, _)) = budget {
                    c.budget = nonzero(n);
                }
                if let Some(n) = args.cost {
                    c.cost_per_call = nonzero(n);
                }
                if window.is_some() {
                    c.window = window;
                }
                if c.is_empty() {
                    l.tools.remove(tool);
                }
            }
        }
        plughost::settings::check_limits(&plughost::catalog::limits_from(&l))
            .map_err(anyhow::Error::msg)?;
        reg.set_limits(&args.id, l)?
    } else {
        r
    };
    let language = plughost::catalog::installed_language(&reg, &r.id);
    let eff = plughost::catalog::effective_limits(&r.limits, language);
    if args.json {
        let v = serde_json::json!({ "plugin": r.id, "set": r.limits, "effective": eff });
        return print_json(&v).map(|_| ExitCode::SUCCESS);
    }
    println!("{} limits per call", r.id);
    println!(
        "  fuel         {}{}",
        eff.fuel,
        if r.limits.fuel.is_none() {
            format!(" (the default for {})", language.name())
        } else {
            String::new()
        }
    );
    println!("  memory       {}", format_bytes(eff.memory_bytes));
    println!(
        "  timeout      {}",
        plughost::units::human_duration(eff.timeout)
    );
    println!(
        "  concurrency  {}",
        r.limits
            .concurrency
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unlimited".into())
    );
    let l = &r.limits;
    if l.has_contract() || l.cost_per_call.is_some() || !l.tools.is_empty() {
        let default_window = l.window.unwrap_or(Window::Day);
        println!("contract (sliding window)");
        let show =
            |who: &str, calls: Option<u64>, cost: Option<u64>, budget: Option<u64>, w: Window| {
                let mut parts = Vec::new();
                if let Some(n) = calls {
                    parts.push(format!("{n} calls per {}", w.name()));
                }
                if let Some(b) = budget {
                    parts.push(format!("{b} tokens per {}", w.name()));
                }
                if let Some(c) = cost {
                    parts.push(format!("{c} tokens a call"));
                }
                if parts.is_empty() {
                    parts.push("no limit".into());
                }
                println!("  {who:<12} {}", parts.join(", "));
            };
        show(
            "plugin",
            l.calls_per_window,
            l.cost_per_call,
            l.budget,
            default_window,
        );
        for (t, c) in &l.tools {
            show(
                &format!("tool {t}"),
                c.calls_per_window,
                c.cost_per_call,
                c.budget,
                c.window.unwrap_or(default_window),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
