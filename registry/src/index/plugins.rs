//! Reading installed plugins: the list, one plugin, its versions, the install history, and what the loader needs
//! to run one.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};

use super::types::{HistoryEntry, PLUGIN_SELECT, PluginRecord, VersionRecord, plugin_from_row};
use crate::Registry;
use crate::blobs::Digest;
use crate::error::{RegistryError, Result};

/// Checks a plugin id: lowercase letters, digits and `-`, starting with a letter, at most 64 characters.
pub fn check_plugin_id(id: &str) -> Result<()> {
    let ok = id.len() <= 64
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(RegistryError::BadPluginId(id.to_string()))
    }
}

/// A plugin ready for the loader: its record, its bytes (checked against their digest), config and secrets.
#[derive(Debug)]
pub struct Runnable {
    pub record: PluginRecord,
    pub bytes: Vec<u8>,
    pub config: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
}

impl Registry {
    /// Every installed plugin, by id.
    pub fn list(&self) -> Result<Vec<PluginRecord>> {
        if let Some(pg) = &self.shared {
            return Ok(pg.index_plugins(None)?);
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{} ORDER BY p.id", PLUGIN_SELECT))?;
        let rows = stmt.query_map([], plugin_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One installed plugin.
    pub fn plugin(&self, id: &str) -> Result<PluginRecord> {
        if let Some(pg) = &self.shared {
            return pg
                .index_plugins(Some(id))?
                .into_iter()
                .next()
                .ok_or_else(|| RegistryError::NotInstalled(id.to_string()));
        }
        let conn = self.conn();
        conn.query_row(
            &format!("{} WHERE p.id = ?1", PLUGIN_SELECT),
            [id],
            plugin_from_row,
        )
        .optional()?
        .ok_or_else(|| RegistryError::NotInstalled(id.to_string()))
    }

    /// Every installed version of a plugin, newest first.
    pub fn versions(&self, id: &str) -> Result<Vec<VersionRecord>> {
        let current = self.plugin(id)?;
        if let Some(pg) = &self.shared {
            return Ok(pg.index_versions(id, current.seq)?);
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT v.seq, v.version, v.digest, k.name, v.grants, v.installed_at FROM versions v
             LEFT JOIN keys k ON k.fingerprint = v.key_fingerprint WHERE v.plugin_id = ?1 ORDER BY v.seq DESC",
        )?;
        let rows = stmt.query_map([id], |r| {
            let grants: String = r.get(4)?;
            let seq: i64 = r.get(0)?;
            Ok(VersionRecord {
                seq,
                version: r.get(1)?,
                digest: r.get(2)?,
                publisher: r.get(3)?,
                grants: serde_json::from_str(&grants).unwrap_or_default(),
                installed_at: r.get(5)?,
                current: seq == current.seq,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The install history, newest first (for one plugin, or all).
    pub fn history(&self, id: Option<&str>, limit: usize) -> Result<Vec<HistoryEntry>> {
        if let Some(pg) = &self.shared {
            return Ok(pg.index_history(id, limit)?);
        }
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT at, plugin_id, action, detail FROM history WHERE ?1 IS NULL OR plugin_id = ?1
             ORDER BY seq DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![id, limit as i64], |r| {
            Ok(HistoryEntry {
                at: r.get(0)?,
                plugin: r.get(1)?,
                action: r.get(2)?,
                detail: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Checks that the plugin's current component is in the blob store with its installed digest: a
    /// [`RegistryError::BlobCorrupt`] or [`RegistryError::BlobMissing`] if not.
    pub fn check_blob(&self, record: &PluginRecord) -> Result<()> {
        let digest = Digest::parse(&record.digest).ok_or_else(|| RegistryError::IndexCorrupt {
            path: self.root.join("index.db"),
            message: format!("bad digest `{}` for plugin {}", record.digest, record.id),
        })?;
        self.component(&digest).map(|_| ())
    }

    /// A component's bytes from the blob store (the shared store's, in a cluster), checked against `digest`.
    fn component(&self, digest: &Digest) -> Result<Vec<u8>> {
        let Some(pg) = &self.shared else {
            return self.blobs.get(digest);
        };
        let path = std::path::PathBuf::from("the shared store's index_blobs");
        match pg.index_blob(&digest.to_string())? {
            None => Err(RegistryError::BlobMissing {
                digest: digest.to_string(),
                path,
            }),
            Some(bytes) if Digest::of(&bytes) != *digest => Err(RegistryError::BlobCorrupt {
                digest: digest.to_string(),
                path,
            }),
            Some(bytes) => Ok(bytes),
        }
    }

    /// Everything the loader needs for one plugin. The bytes are checked against the installed digest: a
    /// corrupted blob is an error, never served.
    pub fn runnable(&self, id: &str) -> Result<Runnable> {
        let record = self.plugin(id)?;
        let digest = Digest::parse(&record.digest).ok_or_else(|| RegistryError::IndexCorrupt {
            path: self.root.join("index.db"),
            message: format!("bad digest `{}` for plugin {id}", record.digest),
        })?;
        let bytes = self.component(&digest)?;
        let (config, secrets) = self.config_values(id)?;
        Ok(Runnable {
            record,
            bytes,
            config,
            secrets,
        })
    }
}
