//! `plughost test`: builds the project, then runs every `[[test]]` case of its `plughost.toml` against the
//! component in a scratch host (the data dir's compile cache, in-memory state kept across the cases of one run).

use std::path::PathBuf;

use anyhow::{Context, Result};
use plughost::call::Content;
use plughost::settings::check_limits;
use plughost::{Grants, Home, Host, LoadError, PluginSettings};

use super::project::{Project, TestCase};

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// The project directory (default: the current one, or the nearest parent with a plughost.toml).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Test the component as it is, without building first.
    #[arg(long)]
    pub no_build: bool,
    /// Print the results as JSON on stdout: `{ "passed", "failed", "reused_build", "cases": [{ "name", "ok",
    /// "error"? }] }` (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(home: &Home, args: TestArgs) -> Result<std::process::ExitCode> {
    let project = Project::find(&args.dir)?;
    let (wasm, reused) = if args.no_build {
        (project.output(), true)
    } else {
        super::cache::build_or_reuse(home, &project)?
    };
    let bytes = std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let host = Host::scratch(home)?.without_standby();
    let step = plughost::progress::OnDemand::default();
    let compiled = host.compile(
        &bytes,
        step.starter(format!(
            "compiling {} once (later runs use the cache)",
            wasm.display()
        )),
    );
    step.finish();
    let (component, info, compile) = compiled?;
    eprintln!(
        "loaded {} ({:?}, {})",
        wasm.display(),
        compile.outcome,
        plughost::units::human_duration(compile.time)
    );
    let (mut passed, mut failed) = (0u32, 0u32);
    let mut cases = Vec::new();
    for case in &project.file.tests {
        match run_case(&host, component.clone(), info.clone(), case).await {
            Ok(()) => {
                passed += 1;
                if !args.json {
                    println!("ok     {}", case.name);
                }
                cases.push(serde_json::json!({ "name": case.name, "ok": true }));
            }
            Err(why) => {
                failed += 1;
                if !args.json {
                    println!("FAILED {}\n       {why:#}", case.name);
                }
                cases.push(serde_json::json!({ "name": case.name, "ok": false, "error": format!("{why:#}") }));
            }
        }
    }
    if args.json {
        let v = serde_json::json!({
            "component": wasm,
            "reused_build": reused,
            "passed": passed,
            "failed": failed,
            "cases": cases,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{passed} passed, {failed} failed");
    }
    Ok(if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Value::from(*f),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => a.iter().map(toml_to_json).collect(),
        toml::Value::Table(t) => t
            .iter()
            .map(|(k, v)| (k.clone(), toml_to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// Every field of `want` is in `got` with an equal value (recursively for objects).
fn contains(got: &serde_json::Value, want: &serde_json::Value) -> bool {
    match (got, want) {
        (serde_json::Value::Object(g), serde_json::Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| g.get(k).is_some_and(|gv| contains(gv, wv))),
        (g, w) if g.is_number() && w.is_number() => g.as_f64() == w.as_f64(),
        (g, w) => g == w,
    }
}

async fn run_case(
    host: &Host,
    component: wasmtime::component::Component,
    info: plughost::ComponentInfo,
    case: &TestCase,
) -> Result<()> {
    let mut settings = PluginSettings {
        grants: Grants::parse(&case.grants)?,
        config: case.config.clone(),
        secrets: case.secrets.clone(),
        auto_fuel: case.fuel.is_none(),
        ..Default::default()
    };
    if let Some(f) = case.fuel {
        settings.limits.fuel = f;
    }
    check_limits(&settings.limits).map_err(anyhow::Error::msg)?;
    let want_error = case.expect_error.as_deref();
    let plugin = match host.link(component, info, |_| settings).await {
        Ok(p) => p,
        Err(LoadError::MissingGrants { .. }) if want_error == Some("missing-grants") => {
            return Ok(());
        }
        Err(e) => anyhow::bail!("the plugin did not load: {e}"),
    };
    if want_error == Some("missing-grants") {
        anyhow::bail!("expected the plugin to be refused for missing grants, but it loaded");
    }
    let args = serde_json::to_string(&toml_to_json(&case.args))?;
    let outcome = host.call(&plugin, &case.tool, &args).await;
    let out = match (outcome.result, want_error) {
        (Err(e), Some(kind)) if e.kind() == kind => return Ok(()),
        (Err(e), Some(kind)) => anyhow::bail!("expected a `{kind}` error, got `{}`: {e}", e.kind()),
        (Err(e), None) => anyhow::bail!("the call failed ({}): {e}", e.kind()),
        (Ok(out), Some(kind)) => anyhow::bail!("expected a `{kind}` error, got {out:?}"),
        (Ok(out), None) => out,
    };
    if let Some(want) = &case.expect_text {
        let texts: Vec<&str> = out
            .content
            .iter()
            .filter_map(|c| match c {
                Content::Text { text } => Some(text.as_str()),
                Content::Json { .. } => None,
            })
            .collect();
        if !texts.iter().any(|t| t.contains(want.as_str())) {
            anyhow::bail!("expected text containing {want:?}, got {texts:?}");
        }
    }
    if let Some(want) = &case.expect_json {
        let want = toml_to_json(want);
        let mut docs: Vec<&serde_json::Value> = out
            .content
            .iter()
            .filter_map(|c| match c {
                Content::Json { json } => Some(json),
                Content::Text { .. } => None,
            })
            .collect();
        docs.extend(out.structured.as_ref());
        if !docs.iter().any(|d| contains(d, &want)) {
            anyhow::bail!("expected JSON containing {want}, got {docs:?}");
        }
    }
    Ok(())
}
