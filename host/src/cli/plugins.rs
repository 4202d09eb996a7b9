//! The operator's commands on installed plugins: list, info, grants, history, grant, revoke, config, enable,
//! disable, rollback, remove. Only the CLI changes grants; nothing here is reachable from MCP.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use plughost::caps::state::StateStore;
use plughost::registry::{PluginRecord, grant_kind};
use plughost::status::installed_status;
use plughost::units::{format_bytes, human_bytes};
use plughost::{Capability, Grants, Home, Manifest};

use super::show::{list_or_none, open_registry, print_json, publisher_text, table, when};

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

// ---- list / info / grants / history ----------------------------------------------------------------------------

pub fn list(home: &Home, json: bool) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let plugins = reg.list()?;
    if json {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            #[serde(flatten)]
            record: &'a PluginRecord,
            status: String,
        }
        let rows: Vec<Row<'_>> = plugins
            .iter()
            .map(|record| Row {
                record,
                status: installed_status(&reg, record).0,
            })
            .collect();
        return print_json(&rows).map(|_| ExitCode::SUCCESS);
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
                match installed_status(&reg, p) {
                    (s, Some(r)) if s == "disabled" => format!("{s}: {r}"),
                    (s, _) => s,
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
    let (state, why) = installed_status(&reg, &r);
    if json {
        let v = serde_json::json!({
            "status": state,
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
    let status = match (state.as_str(), why) {
        ("enabled", _) => state,
        ("disabled", why) => format!("disabled ({})", why.as_deref().unwrap_or("by the operator")),
        (_, Some(why)) => format!("{state} ({why})"),
        (_, None) => state,
    };
    println!("status       {status}");
    println!("digest       {}", r.digest);
    println!("size         {}", human_bytes(r.size));
    println!("publisher    {}", publisher_text(&r));
    if let Some(src) = &r.source {
        println!("source       {src}");
    }
    if let Some(m) = &r.manifest_digest {
        println!("manifest     {m}");
    }
    println!("declared     {}", list_or_none(&r.declared));
    println!("grants       {}", list_or_none(&r.grants));
    println!(
        "limits       fuel {}  memory {}  timeout {}  concurrency {}",
        limits.fuel,
        format_bytes(limits.memory_bytes),
        plughost::units::human_duration(limits.timeout),
        plughost::runtime::limits::concurrency_text(r.limits.concurrency)
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
            for line in plughost::docs::arguments(&t.input_schema) {
                println!("      {line}");
            }
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

/// `plughost docs ID`: the plugin's documentation, as MCP clients read it at `plughost://plugins/ID/docs`.
pub fn docs(home: &Home, id: &str) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let r = reg.plugin(id)?;
    let manifest: Manifest = serde_json::from_str(&r.manifest_json)
        .map_err(|e| anyhow::anyhow!("the installed manifest of `{id}` cannot be read: {e}"))?;
    print!("{}", plughost::docs::render(&manifest, &r.declared));
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
        g.grant(item.clone());
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

/// Removes a plugin and everything it left: config and secrets (with the registry's rows), and its state unless
/// `keep_state`. State is deleted before the registry forgets the plugin (a failure leaves it installed, never its
/// data orphaned), and once more after, for a call a running gateway made in between.
pub fn remove(home: &Home, id: &str, keep_state: bool) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    reg.plugin(id)?;
    let config = reg.config(id)?;
    let secrets = config.iter().filter(|c| c.secret).count();
    let settings = config.len() - secrets;
    let state = match reg.shared() {
        Some(pg) => StateStore::shared(pg.clone())?,
        None => StateStore::open(&home.state_db()).with_context(|| {
            format!("cannot open the state store {}", home.state_db().display())
        })?,
    };
    let state_keys = if keep_state {
        state.count_keys(id)?
    } else {
        state.delete_plugin(id)?
    };
    let r = reg.remove(id)?;
    let state_keys = if keep_state {
        state.count_keys(id)?
    } else {
        state_keys + state.delete_plugin(id)?
    };
    let n =
        |count: usize, what: &str| format!("{count} {what}{}", if count == 1 { "" } else { "s" });
    println!(
        "removed {id} {}: its versions, {}, {}",
        r.version,
        n(settings, "setting"),
        n(secrets, "secret")
    );
    if keep_state {
        println!(
            "  kept     its state ({}), for the next plugin installed as `{id}`",
            n(state_keys as usize, "key")
        );
    } else {
        println!("  removed  its state ({})", n(state_keys as usize, "key"));
    }
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
