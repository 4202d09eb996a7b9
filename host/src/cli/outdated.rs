//! `plughost outdated` (installed plugins with something newer at their source) and where `plughost upgrade ID`
//! takes the new version from: the newest semver tag of the repository the plugin was installed from, or the same
//! tag when it has moved to another manifest. Only OCI sources have tags; a local file has no source to ask.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use plughost::Home;
use plughost::distribution::oci;
use plughost::registry::PluginRecord;

use super::fetch::{RegistryArgs, is_oci};
use super::show::{open_registry, print_json, table};

#[derive(Args, Debug)]
pub struct OutdatedArgs {
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// What a plugin's source offers now.
#[derive(Debug, serde::Serialize)]
pub struct Available {
    pub id: String,
    pub installed: String,
    pub source: String,
    /// The reference to upgrade from, when there is something newer; `None` when up to date.
    pub newer: Option<String>,
    pub why: String,
}

/// The newest thing at `record`'s source: a semver tag newer than the installed version, else the same tag when
/// it now points at another manifest.
pub async fn available(
    home: &Home,
    record: &PluginRecord,
    registry: &RegistryArgs,
) -> Result<Option<Available>> {
    let Some(source) = record.source.clone().filter(|s| is_oci(s)) else {
        return Ok(None);
    };
    let reference = oci::parse_reference(&source)?;
    let client = registry.client(home, &reference)?;
    let installed = semver::Version::parse(record.version.trim_start_matches('v')).ok();
    let newest = client
        .tags(&reference)
        .await?
        .into_iter()
        .filter_map(|t| {
            semver::Version::parse(t.trim_start_matches('v'))
                .ok()
                .map(|v| (v, t))
        })
        .filter(|(v, _)| v.pre.is_empty())
        .max();
    let base = source
        .split('@')
        .next()
        .map(|s| match s.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
            _ => s.to_string(),
        })
        .unwrap_or_default();
    let mut result = Available {
        id: record.id.clone(),
        installed: record.version.clone(),
        source: source.clone(),
        newer: None,
        why: "up to date".into(),
    };
    if let (Some(cur), Some((v, tag))) = (&installed, &newest)
        && v > cur
    {
        result.newer = Some(format!("{base}:{tag}"));
        result.why = format!("version {v} is tagged");
        return Ok(Some(result));
    }
    if reference.digest().is_none() {
        let now = client.resolve(&reference).await?;
        if record.manifest_digest.as_deref() != Some(now.as_str()) {
            result.newer = Some(source);
            result.why = format!("the tag moved to {now}");
        }
    }
    Ok(Some(result))
}

pub async fn outdated(home: &Home, args: OutdatedArgs) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    let mut rows = Vec::new();
    for record in reg.list()? {
        match available(home, &record, &args.registry).await {
            Ok(Some(a)) => rows.push(a),
            Ok(None) => {}
            Err(e) => rows.push(Available {
                id: record.id.clone(),
                installed: record.version.clone(),
                source: record.source.clone().unwrap_or_default(),
                newer: None,
                why: format!("cannot check: {e:#}"),
            }),
        }
    }
    if args.json {
        return print_json(&rows).map(|_| ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no installed plugin came from a registry");
        return Ok(ExitCode::SUCCESS);
    }
    let lines: Vec<[String; 4]> = rows
        .iter()
        .map(|a| {
            [
                a.id.clone(),
                a.installed.clone(),
                a.newer.clone().unwrap_or_else(|| "-".into()),
                a.why.clone(),
            ]
        })
        .collect();
    table(&["ID", "INSTALLED", "AVAILABLE", "WHY"], &lines);
    Ok(ExitCode::SUCCESS)
}

/// `plughost upgrade ID`: where to take the new version of the installed plugin `ID` from (when the argument names
/// one and no file of that name exists).
pub async fn upgrade_source(
    home: &Home,
    arg: &str,
    registry: &RegistryArgs,
) -> Result<Option<String>> {
    if is_oci(arg) || Path::new(arg).exists() || plughost::registry::check_plugin_id(arg).is_err() {
        return Ok(None);
    }
    let reg = open_registry(home)?;
    let Ok(record) = reg.plugin(arg) else {
        return Ok(None);
    };
    if record.source.is_none() {
        bail!(
            "plugin `{arg}` was installed from a local file: give the new file (`plughost upgrade FILE`)"
        );
    }
    match available(home, &record, registry).await? {
        Some(Available {
            newer: Some(reference),
            ..
        }) => Ok(Some(reference)),
        // Nothing newer: the same reference, which install reports as already current.
        _ => Ok(record.source),
    }
}
