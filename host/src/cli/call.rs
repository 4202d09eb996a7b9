//! `plughost inspect` and `plughost call`: load a component (a .wasm file, or for `call` an installed plugin by
//! id), then show what it is, or call one of its tools and print the result and the call report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use plughost::call::Content;
use plughost::settings::{SettingsFile, check_limits};
use plughost::units::{human_bytes, human_duration, parse_bytes, parse_duration};
use plughost::{CallReport, Grants, Home, Host, PluginSettings};

use super::show::open_registry;

#[derive(Args, Debug)]
pub struct CallArgs {
    /// An installed plugin id, or a .wasm component file.
    file: PathBuf,
    /// The tool to call.
    tool: String,
    /// Arguments as a JSON object.
    #[arg(long, default_value = "{}")]
    args: String,
    /// Grant a capability (repeatable): system, state, state:16MiB, log, metrics, config, ledger,
    /// http:https://api.example.com, container:read,lifecycle …
    #[arg(long = "grant", value_name = "GRANT")]
    grants: Vec<String>,
    /// Fuel budget for the call.
    #[arg(long)]
    fuel: Option<u64>,
    /// Linear memory cap, e.g. 64MiB.
    #[arg(long)]
    memory: Option<String>,
    /// Wall-clock deadline, e.g. 5s or 500ms.
    #[arg(long)]
    timeout: Option<String>,
    /// A plugin setting KEY=VALUE (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// A plugin secret KEY=VALUE (repeatable; redacted from logs, reports and output).
    #[arg(long = "secret", value_name = "KEY=VALUE")]
    secrets: Vec<String>,
    /// Config file with per-plugin grants and limits (default: plughost.toml in the data dir).
    #[arg(long)]
    config_file: Option<PathBuf>,
    /// A file call reads and writes scratch (in-memory) state; this makes it use the state of installed plugin
    /// ID instead (the component must be plugin ID).
    #[arg(long, value_name = "ID")]
    state_of: Option<String>,
    /// Print the result and the report as one JSON object.
    #[arg(long)]
    json: bool,
}

fn read_component(file: &Path) -> Result<Vec<u8>> {
    std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))
}

/// Compiles `bytes` (or loads them from the cache), showing the compile as a step of its own when there is one.
fn compile(
    host: &Host,
    file: &Path,
    bytes: &[u8],
) -> Result<(
    wasmtime::component::Component,
    plughost::ComponentInfo,
    plughost::runtime::CompileInfo,
)> {
    let step = plughost::progress::OnDemand::default();
    let what = format!(
        "compiling {} ({}) once; later loads come from the cache",
        file.display(),
        human_bytes(bytes.len() as u64)
    );
    let compiled = host.compile(bytes, step.starter(what));
    step.finish();
    Ok(compiled?)
}

pub async fn inspect(home: &Home, file: &Path, json: bool) -> Result<ExitCode> {
    let host = Host::open(home)?;
    let bytes = read_component(file)?;
    let (component, info, _) = compile(&host, file, &bytes)?;
    let manifest = host.describe(&component).await?;
    if json {
        let v = serde_json::json!({ "component": info, "manifest": manifest });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} {} — {}", manifest.id, manifest.version, manifest.name);
    println!("  {}", manifest.description);
    println!("contract     plughost:plugin@{}", info.world_version);
    println!("digest       blake3:{}", info.digest);
    println!("size         {}", human_bytes(info.size_bytes));
    println!(
        "language     {} (default fuel per call {})",
        info.language.name(),
        info.language.default_fuel()
    );
    if info.capabilities.is_empty() {
        println!("capabilities none");
    } else {
        println!("capabilities (each needs a grant)");
        for c in &info.capabilities {
            println!("  {:<10} {}", c.name(), c.describe());
        }
    }
    println!(
        "wasi         {} interfaces, linked with nothing open",
        info.wasi_imports.len()
    );
    println!("tools");
    let width = manifest
        .tools
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0);
    for t in &manifest.tools {
        let mut hints = Vec::new();
        if t.annotations.read_only_hint == Some(true) {
            hints.push("read-only");
        }
        if t.annotations.destructive_hint == Some(true) {
            hints.push("destructive");
        }
        if t.annotations.open_world_hint == Some(true) {
            hints.push("open-world");
        }
        let hints = if hints.is_empty() {
            String::new()
        } else {
            format!(" [{}]", hints.join(", "))
        };
        println!("  {:<width$}  {}{hints}", t.name, t.description);
        let props = t.input_schema.get("properties").and_then(|p| p.as_object());
        if let Some(props) = props.filter(|p| !p.is_empty()) {
            let args: Vec<String> = props
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{k}: {}",
                        v.get("type")
                            .map(|t| t.to_string().replace('"', ""))
                            .unwrap_or_else(|| "any".into())
                    )
                })
                .collect();
            println!("  {:<width$}    args {{ {} }}", "", args.join(", "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_kv(items: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for item in items {
        let Some((k, v)) = item.split_once('=') else {
            bail!("{what} `{item}` must be KEY=VALUE")
        };
        if k.is_empty() {
            bail!("{what} `{item}` has an empty key");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

pub async fn call(home: &Home, args: CallArgs) -> Result<ExitCode> {
    let file_settings = SettingsFile::load(
        &args
            .config_file
            .clone()
            .unwrap_or_else(|| home.config_file()),
    )?;
    let cli_grants = Grants::parse(&args.grants)?;
    let config = parse_kv(&args.config, "--config")?;
    let secrets = parse_kv(&args.secrets, "--secret")?;
    let fuel = args.fuel;
    let memory = args
        .memory
        .as_deref()
        .map(parse_bytes)
        .transpose()
        .context("--memory")?;
    let timeout = args
        .timeout
        .as_deref()
        .map(parse_duration)
        .transpose()
        .context("--timeout")?;

    let installed_id = args
        .file
        .to_str()
        .filter(|s| !args.file.is_file() && plughost::registry::check_plugin_id(s).is_ok());
    if let Some(id) = installed_id {
        if args.state_of.is_some() {
            bail!("--state-of is for calling a .wasm file; `{id}` is called with its own state");
        }
        return call_installed(home, id, &args, fuel, memory, timeout).await;
    }
    // A file call is a dry run: scratch state, unless the operator names an installed plugin whose state to use
    // (with --store, the state the cluster's replicas read and write).
    let host = match &args.state_of {
        Some(id) => {
            let registry = open_registry(home)?;
            registry.plugin(id)?;
            open_host(home, &registry)?
        }
        None => Host::scratch(home)?,
    }
    .without_standby();
    let bytes = read_component(&args.file)?;
    let (component, info, _) = compile(&host, &args.file, &bytes)?;
    let mut limit_error = None;
    let mut plugin_id = String::new();
    let plugin = host
        .link(component, info, |manifest| {
            plugin_id = manifest.id.clone();
            let mut s: PluginSettings = file_settings.for_plugin(&manifest.id);
            for g in cli_grants.iter() {
                s.grants.add(g.clone());
            }
            s.config.extend(config);
            s.secrets.extend(secrets);
            if let Some(f) = fuel {
                s.limits.fuel = f;
                s.auto_fuel = false;
            }
            if let Some(m) = memory {
                s.limits.memory_bytes = m;
            }
            if let Some(t) = timeout {
                s.limits.timeout = t;
            }
            limit_error = check_limits(&s.limits).err();
            s
        })
        .await?;
    if let Some(e) = limit_error {
        bail!("{e}");
    }
    if let Some(id) = args.state_of.as_deref().filter(|id| *id != plugin_id) {
        bail!(
            "--state-of {id}: {} is plugin `{plugin_id}`, not `{id}`; a plugin only ever sees its own state",
            args.file.display()
        );
    }

    let outcome = match check_call(&plugin.manifest, &args.tool, &args.args)? {
        Ok(()) => host.call(&plugin, &args.tool, &args.args).await,
        Err(refused) => host.refused(&plugin, &args.tool, refused),
    };
    print_outcome(&outcome, args.json)
}

/// What the gateway checks before any guest runs: the tool exists, and the arguments are a JSON object that
/// matches its input schema (every violation named, with the gateway's own validator and wording). The outer error
/// is a tool whose input schema does not compile.
fn check_call(
    manifest: &plughost::runtime::plugin::Manifest,
    tool: &str,
    arguments: &str,
) -> Result<Result<(), plughost::CallError>> {
    use plughost::CallError;
    let Some(info) = manifest.tool(tool) else {
        return Ok(Err(CallError::UnknownTool {
            tool: tool.to_string(),
        }));
    };
    let value: serde_json::Value = match serde_json::from_str(arguments) {
        Ok(v) => v,
        Err(e) => {
            return Ok(Err(CallError::InvalidArguments {
                message: format!("--args is not valid JSON: {e}"),
            }));
        }
    };
    if !value.is_object() {
        return Ok(Err(CallError::InvalidArguments {
            message: "--args must be a JSON object".into(),
        }));
    }
    let schema = serde_json::Value::Object(info.input_schema.clone());
    let validator = jsonschema::validator_for(&schema).map_err(|e| {
        anyhow::anyhow!(
            "tool `{tool}` of `{}` has an invalid input schema ({e}); the gateway does not serve it either",
            manifest.id
        )
    })?;
    let violations = plughost::gateway::index::violations(&validator, &value);
    if violations.is_empty() {
        return Ok(Ok(()));
    }
    let message = plughost::gateway::GatewayError::InvalidArguments {
        tool: tool.to_string(),
        violations,
    }
    .to_string();
    Ok(Err(CallError::InvalidArguments { message }))
}

/// The host of the registry's plugins: this data dir's state, or with `--store` the cluster's shared state (the
/// compile cache stays this machine's either way).
fn open_host(home: &Home, registry: &plughost::registry::Registry) -> Result<Host> {
    Ok(match registry.shared() {
        Some(pg) => Host::open_shared(home, pg.clone())?,
        None => Host::open(home)?,
    })
}

/// `call <installed id>`: grants, limits, config and secrets come from the registry, like the gateway's. With
/// `--store` it is a call of the cluster, as through a replica: the shared registry, state and contracts, and its
/// entry in the one ledger chain (committed before the result is printed; a store that cannot be asked refuses the
/// call as `unavailable` and no guest runs).
async fn call_installed(
    home: &Home,
    id: &str,
    args: &CallArgs,
    fuel: Option<u64>,
    memory: Option<u64>,
    timeout: Option<std::time::Duration>,
) -> Result<ExitCode> {
    if !args.grants.is_empty() || !args.config.is_empty() || !args.secrets.is_empty() {
        bail!(
            "`{id}` is installed: its grants, config and secrets come from the registry. Change them with \
             `plughost grant {id} …` and `plughost config {id} set …`"
        );
    }
    let registry = std::sync::Arc::new(open_registry(home)?);
    let host = &open_host(home, &registry)?.without_standby();
    let catalog = plughost::Catalog::open(host.clone(), registry).await?;
    let Some(entry) = catalog.get(id) else {
        // Recorded as an `unavailable` refusal, as over MCP.
        if let Some(e) = catalog
            .refuse_not_loaded(id, &args.tool, &args.args, &cli_caller())
            .await
        {
            bail!("{e}");
        }
        bail!(
            "no plugin `{id}` is installed (and no file of that name exists); `plughost list` shows what is"
        );
    };
    // Checked before anything runs, and recorded as the gateway records it: an unknown tool through the call path
    // (which refuses it as `unknown-tool`), arguments that break the schema as an `invalid-arguments` refusal.
    match check_call(&entry.plugin.manifest, &args.tool, &args.args)? {
        Ok(()) => {}
        Err(plughost::CallError::UnknownTool { .. }) => {
            let outcome = entry
                .call_as(host, &args.tool, &args.args, &cli_caller())
                .await;
            return print_outcome(&outcome, args.json);
        }
        Err(refused) => {
            let outcome = entry
                .refuse_as(host, &args.tool, &args.args, &cli_caller(), refused)
                .await;
            return print_outcome(&outcome, args.json);
        }
    }
    let outcome = if fuel.is_some() || memory.is_some() || timeout.is_some() {
        // One-off limits for this call only: relink with them.
        let mut limits = entry.plugin.limits;
        if let Some(f) = fuel {
            limits.fuel = f;
        }
        if let Some(m) = memory {
            limits.memory_bytes = m;
        }
        if let Some(t) = timeout {
            limits.timeout = t;
        }
        check_limits(&limits).map_err(anyhow::Error::msg)?;
        let plugin = entry.plugin.with_limits(limits);
        entry
            .call_with(host, &plugin, &args.tool, &args.args, &cli_caller())
            .await
    } else {
        entry
            .call_as(host, &args.tool, &args.args, &cli_caller())
            .await
    };
    print_outcome(&outcome, args.json)
}

/// The CLI's calls are recorded as made by the local user.
fn cli_caller() -> plughost::ledger::Caller {
    plughost::ledger::Caller {
        transport: "cli".into(),
        session: Some(format!("pid {}", std::process::id())),
        principal: std::env::var("USER").ok().filter(|u| !u.is_empty()),
    }
}

fn print_outcome(outcome: &plughost::CallResult, json: bool) -> Result<ExitCode> {
    if json {
        let result = match &outcome.result {
            Ok(out) => serde_json::json!({ "ok": out }),
            Err(e) => serde_json::json!({ "error": { "message": e.to_string(), "detail": e } }),
        };
        let v = serde_json::json!({ "result": result, "report": outcome.report });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        match &outcome.result {
            Ok(out) => {
                for c in &out.content {
                    match c {
                        Content::Text { text } => println!("{text}"),
                        Content::Json { json } => {
                            println!("{}", serde_json::to_string_pretty(json)?)
                        }
                    }
                }
            }
            Err(e) if could_not_start(e) => {
                eprintln!("error ({}): {e}", e.kind());
                return Ok(ExitCode::from(2));
            }
            Err(e) => eprintln!("error ({}): {e}", e.kind()),
        }
        print_report(&outcome.report);
    }
    Ok(match &outcome.result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) if could_not_start(e) => ExitCode::from(2),
        Err(_) => ExitCode::from(1),
    })
}

/// A call refused before any guest ran because of what was asked (exit 2), not a call that ran and failed (exit 1).
fn could_not_start(e: &plughost::CallError) -> bool {
    matches!(
        e,
        plughost::CallError::UnknownTool { .. } | plughost::CallError::InvalidArguments { .. }
    )
}

fn print_report(r: &CallReport) {
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / b as f64
        }
    };
    let calls: Vec<String> = r
        .host_calls
        .iter()
        .map(|(c, n)| format!("{c}×{n}"))
        .collect();
    eprintln!("── call report: {}/{} ──", r.plugin, r.tool);
    eprintln!("  outcome     {}", r.outcome.kind());
    eprintln!(
        "  fuel        {} of {} ({:.2}%)",
        r.fuel_used,
        r.fuel_limit,
        pct(r.fuel_used, r.fuel_limit)
    );
    eprintln!(
        "  memory      peak {} of {} ({:.1}%)",
        human_bytes(r.peak_memory_bytes),
        human_bytes(r.memory_limit_bytes),
        pct(r.peak_memory_bytes, r.memory_limit_bytes)
    );
    eprintln!(
        "  wall time   {} (deadline {})",
        human_duration(r.wall_time),
        human_duration(r.timeout)
    );
    eprintln!(
        "  host calls  {}",
        if calls.is_empty() {
            "none".to_string()
        } else {
            calls.join(" ")
        }
    );
    if r.log_lines > 0 || r.log_dropped > 0 {
        eprintln!("  log lines   {} ({} dropped)", r.log_lines, r.log_dropped);
    }
}
