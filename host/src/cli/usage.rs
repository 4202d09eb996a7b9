//! What a plugin may use and what it used: `plughost limits` shows or sets its per-call limits and contracts,
//! `quota` puts them next to recent use, `stats` sums calls, errors, latency, fuel and memory per tool over a
//! period, from the ledger.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use plughost::Home;
use plughost::registry::{PluginLimits, Window};
use plughost::units::{format_bytes, parse_bytes, parse_duration};

use super::show::{group_digits, open_registry, print_json};

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
    /// Calls at once; more are refused as busy. 0 returns to the default (64).
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
    #[arg(long, conflicts_with = "principal")]
    pub tool: Option<String>,
    /// Apply --calls, --budget and --window to this principal's own contract on the plugin (a client token's
    /// name, an OAuth subject: the ledger's principal); it counts only that principal's calls.
    #[arg(long, value_name = "NAME")]
    pub principal: Option<String>,
    /// With --tool: the tool may run long, so an MCP client that declares the Tasks extension gets a task handle for
    /// its calls at once and polls for the result. `--long-running false` answers its calls in line even when the
    /// plugin declares the tool long-running.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", requires = "tool")]
    pub long_running: Option<bool>,
    /// Go back to the host defaults.
    #[arg(long)]
    pub reset: bool,
    #[arg(long)]
    pub json: bool,
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
    let now = plughost::ledger::now_ms();
    let views = match reg.shared() {
        // A cluster: the whole cluster's ledger and contract windows, not this machine's.
        Some(pg) => records
            .iter()
            .map(|r| {
                let language = plughost::catalog::installed_language(&reg, &r.id);
                plughost::quota::view_shared(pg, r, language, now)
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => {
            let ledger = std::sync::Arc::new(plughost::ledger::Ledger::open(home.root())?);
            records
                .iter()
                .map(|r| {
                    let language = plughost::catalog::installed_language(&reg, &r.id);
                    plughost::quota::view(&ledger, r, language, now)
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
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
        );
        for c in &v.contracts {
            let who = match (&c.tool, &c.principal) {
                (_, Some(p)) => format!("principal {p}"),
                (Some(t), None) => format!("tool {t}"),
                (None, None) => "plugin".into(),
            };
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
    let since_ms = plughost::ledger::now_ms() - ago.as_millis() as i64;
    let entries = match super::show::store_url() {
        // A cluster: the whole cluster's ledger, a page at a time.
        Some(url) => {
            let pg = super::show::open_store(&url)?;
            let mut all = Vec::new();
            loop {
                let after = all
                    .last()
                    .map(|e: &plughost::registry::ledger::Entry| e.seq)
                    .unwrap_or(0);
                let page = pg.ledger_calls_since(args.plugin.as_deref(), since_ms, after, 5_000)?;
                if page.is_empty() {
                    break;
                }
                all.extend(page);
            }
            all
        }
        None => plughost::ledger::Ledger::open(home.root())?.entries(
            &plughost::registry::ledger::Filter {
                plugin: args.plugin.clone(),
                since_ms: Some(since_ms),
                kind: Some(plughost::ledger::Kind::Call),
                ..Default::default()
            },
        )?,
    };
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

/// Refuses a tool the plugin does not have, naming the ones it has.
fn check_tool(r: &plughost::registry::PluginRecord, tool: &str) -> Result<()> {
    let manifest: plughost::Manifest = serde_json::from_str(&r.manifest_json)
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
    Ok(())
}

pub fn limits(home: &Home, args: LimitsArgs) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let r = reg.plugin(&args.id)?;
    let contract_change = args.calls.is_some()
        || args.cost.is_some()
        || args.budget.is_some()
        || args.window.is_some();
    if args.tool.is_some() && !contract_change && args.long_running.is_none() {
        bail!(
            "--tool applies to --calls, --cost, --budget, --window or --long-running; give at least one"
        );
    }
    if let Some(p) = &args.principal {
        if !contract_change {
            bail!("--principal applies to --calls, --budget or --window; give at least one");
        }
        if args.cost.is_some() {
            bail!(
                "--cost is a price of the plugin or of a tool, not of a principal: a principal's calls cost what \
                 the plugin's and tools' prices say"
            );
        }
        if p.is_empty() || p.len() > 128 || p.chars().any(char::is_control) {
            bail!("--principal: a name of 1 to 128 printable characters");
        }
    }
    let changing = args.fuel.is_some()
        || args.memory.is_some()
        || args.timeout.is_some()
        || args.concurrency.is_some()
        || contract_change
        || args.long_running.is_some()
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
        match (&args.tool, &args.principal) {
            (None, Some(principal)) => {
                let c = l.principals.entry(principal.clone()).or_default();
                if let Some((n, _)) = calls {
                    c.calls_per_window = nonzero(n);
                }
                if let Some((n, _)) = budget {
                    c.budget = nonzero(n);
                }
                if window.is_some() {
                    c.window = window;
                }
                if c.calls_per_window.is_none() && c.budget.is_none() {
                    l.principals.remove(principal);
                }
            }
            (None, None) => {
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
            (Some(tool), _) if !contract_change => check_tool(&r, tool)?,
            (Some(tool), _) => {
                check_tool(&r, tool)?;
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
        if let (Some(tool), Some(on)) = (&args.tool, args.long_running) {
            if on {
                l.long_running.insert(tool.clone());
                l.not_long_running.remove(tool);
            } else {
                l.long_running.remove(tool);
                l.not_long_running.insert(tool.clone());
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
        plughost::runtime::limits::concurrency_text(r.limits.concurrency)
    );
    let l = &r.limits;
    if !l.long_running.is_empty() {
        let tools: Vec<&str> = l.long_running.iter().map(String::as_str).collect();
        println!(
            "  long-running {} (called as MCP tasks by clients that support them)",
            tools.join(", ")
        );
    }
    if !l.not_long_running.is_empty() {
        let tools: Vec<&str> = l.not_long_running.iter().map(String::as_str).collect();
        println!(
            "  not long-running {} (answered in line, whatever the plugin declares)",
            tools.join(", ")
        );
    }
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
        for (p, c) in &l.principals {
            show(
                &format!("principal {p}"),
                c.calls_per_window,
                None,
                c.budget,
                c.window.unwrap_or(default_window),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
