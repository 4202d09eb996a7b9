//! The operator's config file (`plughost.toml` in the data dir, or `--config-file`): grants, limits, settings and
//! secrets per plugin id. Parsed into typed values once.
//!
//! ```toml
//! [plugins.system-info]
//! grants = ["system"]
//! fuel = 50_000_000
//! memory = "64MiB"
//! timeout = "5s"
//!
//! [plugins.cloudflare]
//! grants = ["http:https://api.cloudflare.com", "config", "log"]
//! config = { zone = "example.com" }
//! secrets = { api_token = "…" }
//!
//! # Optional: `serve` moves old ledger entries to signed archives by itself (see `ledger archive`).
//! [ledger.archive]
//! dir = "archives"          # relative to the data dir
//! key = "ops"               # the key that signs each cut
//! older_than = "90d"        # entries older than this (at least 31d)
//! max_size = "2GiB"         # and whenever the live entries take more, everything older than 31 days
//! every = "1d"              # how often to look (the first look is within a minute of start-up)
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::grants::{GrantError, Grants};
use crate::runtime::limits::{Limits, MAX_MEMORY_BYTES};
use crate::runtime::plugin::PluginSettings;
use crate::units::{UnitError, parse_bytes, parse_duration};

/// Why the config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("plugin `{plugin}`: {source}")]
    Grant { plugin: String, source: GrantError },
    #[error("plugin `{plugin}`: {what} {source}")]
    Unit {
        plugin: String,
        what: &'static str,
        source: UnitError,
    },
    #[error("plugin `{plugin}`: {message}")]
    Invalid { plugin: String, message: String },
    #[error("[ledger.archive]: {0}")]
    Archive(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    plugins: BTreeMap<String, RawPlugin>,
    #[serde(default)]
    ledger: RawLedger,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLedger {
    archive: Option<RawArchive>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArchive {
    dir: std::path::PathBuf,
    key: String,
    older_than: Option<String>,
    max_size: Option<String>,
    every: Option<String>,
}

/// Automatic archiving of the ledger by `serve` (`[ledger.archive]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoArchive {
    /// Where archive files are written (relative: to the data dir).
    pub dir: std::path::PathBuf,
    /// The key that signs each cut (a key name or a secret key file, as `ledger archive --key`).
    pub key: String,
    /// Entries older than this are archived (at least the 31 days contracts read).
    pub older_than: std::time::Duration,
    /// When the live entries take more than this many bytes, everything older than 31 days is archived.
    pub max_bytes: Option<u64>,
    /// How often `serve` looks.
    pub every: std::time::Duration,
}

impl AutoArchive {
    fn parse(raw: RawArchive) -> Result<AutoArchive, SettingsError> {
        let bad = |m: String| SettingsError::Archive(m);
        let duration = |what: &str, v: &Option<String>, default: &str| {
            parse_duration(v.as_deref().unwrap_or(default)).map_err(|e| bad(format!("{what}: {e}")))
        };
        let older_than = duration("older_than", &raw.older_than, "90d")?;
        let floor = plughost_registry::ledger::MIN_ARCHIVE_AGE_MS as u128;
        if older_than.as_millis() < floor {
            return Err(bad(format!(
                "older_than must be at least 31d (contracts read the last month from the live ledger), not {}",
                raw.older_than.unwrap_or_default()
            )));
        }
        let every = duration("every", &raw.every, "1d")?;
        if every < std::time::Duration::from_secs(1)
            || every > std::time::Duration::from_secs(7 * 86_400)
        {
            return Err(bad("every must be between 1s and 7d".into()));
        }
        let max_bytes = raw
            .max_size
            .as_deref()
            .map(|m| parse_bytes(m).map_err(|e| bad(format!("max_size: {e}"))))
            .transpose()?;
        if raw.key.trim().is_empty() {
            return Err(bad("key must name a signing key".into()));
        }
        if raw.dir.as_os_str().is_empty() {
            return Err(bad("dir must name a directory".into()));
        }
        Ok(AutoArchive {
            dir: raw.dir,
            key: raw.key,
            older_than,
            max_bytes,
            every,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    #[serde(default)]
    grants: Vec<String>,
    fuel: Option<u64>,
    memory: Option<String>,
    timeout: Option<String>,
    max_output: Option<String>,
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
}

/// Per-plugin settings read from a config file.
#[derive(Debug, Clone, Default)]
pub struct SettingsFile {
    plugins: BTreeMap<String, PluginSettings>,
    /// `[ledger.archive]`, if set.
    pub archive: Option<AutoArchive>,
}

impl SettingsFile {
    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|e| match e {
                SettingsError::Read { message, .. } => SettingsError::Read {
                    path: path.display().to_string(),
                    message,
                },
                other => other,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(SettingsError::Read {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
        }
    }

    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| SettingsError::Read {
            path: String::new(),
            message: e.to_string(),
        })?;
        let mut plugins = BTreeMap::new();
        for (id, p) in raw.plugins {
            let grants = Grants::parse(&p.grants).map_err(|source| SettingsError::Grant {
                plugin: id.clone(),
                source,
            })?;
            let mut limits = Limits::default();
            let auto_fuel = p.fuel.is_none();
            if let Some(f) = p.fuel {
                limits.fuel = f;
            }
            let unit = |what, source| SettingsError::Unit {
                plugin: id.clone(),
                what,
                source,
            };
            if let Some(m) = &p.memory {
                limits.memory_bytes = parse_bytes(m).map_err(|e| unit("memory", e))?;
            }
            if let Some(t) = &p.timeout {
                limits.timeout = parse_duration(t).map_err(|e| unit("timeout", e))?;
            }
            if let Some(o) = &p.max_output {
                limits.max_output_bytes = parse_bytes(o).map_err(|e| unit("max_output", e))?;
            }
            check_limits(&limits).map_err(|message| SettingsError::Invalid {
                plugin: id.clone(),
                message,
            })?;
            plugins.insert(
                id,
                PluginSettings {
                    grants,
                    limits,
                    config: p.config,
                    secrets: p.secrets,
                    window: None,
                    auto_fuel,
                },
            );
        }
        let archive = raw.ledger.archive.map(AutoArchive::parse).transpose()?;
        Ok(SettingsFile { plugins, archive })
    }

    /// The settings for `id`, or defaults (no grants).
    /// The settings for plugin `id`; one the file does not name gets no grants, host default limits and the
    /// language's default fuel.
    pub fn for_plugin(&self, id: &str) -> PluginSettings {
        self.plugins
            .get(id)
            .cloned()
            .unwrap_or_else(|| PluginSettings {
                auto_fuel: true,
                ..PluginSettings::default()
            })
    }
}

/// Refuses limits that cannot work.
pub fn check_limits(l: &Limits) -> Result<(), String> {
    if l.fuel == 0 {
        return Err("fuel must be above 0".into());
    }
    if l.memory_bytes < 64 << 10 || l.memory_bytes > MAX_MEMORY_BYTES {
        return Err(format!(
            "memory must be between 64KiB and {}GiB",
            MAX_MEMORY_BYTES >> 30
        ));
    }
    if l.timeout.is_zero() || l.timeout.as_secs() > 3600 {
        return Err("timeout must be between 1ms and 1h".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::Capability;

    #[test]
    fn parses_grants_limits_and_config() -> Result<(), SettingsError> {
        let f = SettingsFile::parse(
            r#"
            [plugins.system-info]
            grants = ["system", "log"]
            fuel = 5000
            memory = "32MiB"
            timeout = "2s"
            config = { a = "b" }
            "#,
        )?;
        let s = f.for_plugin("system-info");
        assert!(s.grants.has(Capability::System) && s.grants.has(Capability::Log));
        assert_eq!(s.limits.fuel, 5000);
        assert_eq!(s.limits.memory_bytes, 32 << 20);
        assert_eq!(s.limits.timeout, std::time::Duration::from_secs(2));
        assert_eq!(s.config.get("a").map(String::as_str), Some("b"));
        assert!(
            f.for_plugin("other").grants.is_empty(),
            "unknown plugins get no grants"
        );
        Ok(())
    }

    #[test]
    fn ledger_archive_settings_are_checked() -> Result<(), SettingsError> {
        let f = SettingsFile::parse(
            "[ledger.archive]\ndir = \"archives\"\nkey = \"ops\"\nolder_than = \"60d\"\nmax_size = \"1GiB\"\nevery = \"1h\"",
        )?;
        assert_eq!(
            f.archive,
            Some(AutoArchive {
                dir: "archives".into(),
                key: "ops".into(),
                older_than: std::time::Duration::from_secs(60 * 86_400),
                max_bytes: Some(1 << 30),
                every: std::time::Duration::from_secs(3600),
            })
        );
        let d = SettingsFile::parse("[ledger.archive]\ndir = \"a\"\nkey = \"k\"")?;
        let a = d.archive.expect("set");
        assert_eq!(
            (a.older_than.as_secs(), a.every.as_secs(), a.max_bytes),
            (90 * 86_400, 86_400, None)
        );
        assert!(SettingsFile::parse("")?.archive.is_none());
        for bad in [
            "[ledger.archive]\ndir = \"a\"\nkey = \"k\"\nolder_than = \"7d\"",
            "[ledger.archive]\ndir = \"a\"\nkey = \"k\"\nevery = \"10ms\"",
            "[ledger.archive]\ndir = \"a\"\nkey = \"k\"\nmax_size = \"lots\"",
            "[ledger.archive]\ndir = \"a\"\nkey = \"\"",
        ] {
            assert!(
                matches!(SettingsFile::parse(bad), Err(SettingsError::Archive(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            SettingsFile::parse("[ledger.archive]\ndir = \"a\""),
            Err(SettingsError::Read { .. })
        ));
        Ok(())
    }

    #[test]
    fn refuses_bad_grants_and_units() {
        assert!(matches!(
            SettingsFile::parse("[plugins.x]\ngrants = [\"root\"]"),
            Err(SettingsError::Grant { .. })
        ));
        assert!(matches!(
            SettingsFile::parse("[plugins.x]\nmemory = \"lots\""),
            Err(SettingsError::Unit { .. })
        ));
        assert!(matches!(
            SettingsFile::parse("[plugins.x]\nfuel = 0"),
            Err(SettingsError::Invalid { .. })
        ));
        assert!(matches!(
            SettingsFile::parse("[plugins.x]\ncolour = 1"),
            Err(SettingsError::Read { .. })
        ));
    }
}
