//! Reading a data dir's whole registry index for `plughost store migrate`: every plugin, version, config value and
//! secret, token and audit row, in the shared store's shape ([`crate::pg::IndexDump`]). Secrets leave the data dir
//! only sealed with the cluster's store key; without one, a data dir that holds a secret is refused before
//! anything is read out. The trail is verified first: a broken one is not moved.

use rusqlite::params;

use crate::blobs::Digest;
use crate::error::{RegistryError, Result};
use crate::pg::{ConfigRow, IndexDump, PluginDump, TokenRow, VersionDump, VersionRow};
use crate::{Registry, StoreKey};

impl Registry {
    /// The data dir's index to move, and the digests of the components its versions use. `key` seals the
    /// secrets. Refuses on a registry that is a cluster's already.
    pub fn export_index(&self, key: Option<&StoreKey>) -> Result<(IndexDump, Vec<Digest>)> {
        if self.shared.is_some() {
            return Err(RegistryError::NotShared("store migrate (from a data dir)"));
        }
        // Refuses a broken trail: the store's copy would not verify either.
        self.verify_audit()?;
        let conn = self.conn();
        let secrets: i64 =
            conn.query_row("SELECT count(*) FROM config WHERE secret != 0", [], |r| {
                r.get(0)
            })?;
        if secrets > 0 && key.is_none() {
            return Err(RegistryError::StoreKey(format!(
                "this data dir holds {secrets} secret(s), which are sealed with the cluster's store key when they \
                 move: give --store-key FILE (or PLUGHOST_STORE_KEY=FILE; `plughost store keygen FILE` makes one). \
                 Nothing was moved"
            )));
        }
        let mut dump = IndexDump::default();
        let mut stmt = conn.prepare(
            "SELECT v.seq, v.previous_seq, v.installed_at, v.plugin_id, v.version, v.digest, v.size, \
             v.key_fingerprint, k.name, v.signature, v.declared, v.grants, v.manifest, v.source, v.manifest_digest \
             FROM versions v LEFT JOIN keys k ON k.fingerprint = v.key_fingerprint ORDER BY v.seq",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            dump.versions.push(VersionDump {
                seq: r.get(0)?,
                previous_seq: r.get(1)?,
                installed_at: r.get(2)?,
                row: VersionRow {
                    plugin_id: r.get(3)?,
                    version: r.get(4)?,
                    digest: r.get(5)?,
                    size: r.get(6)?,
                    key_fingerprint: r.get(7)?,
                    key_name: r.get(8)?,
                    signature: r.get(9)?,
                    declared: r.get(10)?,
                    grants: r.get(11)?,
                    manifest: r.get(12)?,
                    source: r.get(13)?,
                    manifest_digest: r.get(14)?,
                },
            });
        }
        drop(rows);
        drop(stmt);
        let mut stmt = conn.prepare(
            "SELECT id, current_seq, enabled, disabled_reason, limits, installed_at, updated_at FROM plugins \
             ORDER BY id",
        )?;
        dump.plugins = stmt
            .query_map([], |r| {
                Ok(PluginDump {
                    id: r.get(0)?,
                    current_seq: r.get(1)?,
                    enabled: r.get::<_, i64>(2)? != 0,
                    disabled_reason: r.get(3)?,
                    limits: r.get(4)?,
                    installed_at: r.get(5)?,
                    updated_at: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        let mut stmt = conn
            .prepare("SELECT plugin_id, key, value, secret FROM config ORDER BY plugin_id, key")?;
        let config: Vec<(String, String, String, bool)> = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0))
            })?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        for (plugin, name, value, secret) in config {
            let value = match (secret, key) {
                (true, Some(k)) => k.seal(&plugin, &name, &value)?,
                (true, None) => unreachable_without_key(&plugin, &name)?,
                (false, _) => value.into_bytes(),
            };
            dump.config.push((
                plugin,
                ConfigRow {
                    key: name,
                    value,
                    secret,
                },
            ));
        }
        let mut stmt = conn.prepare(
            "SELECT name, plugins, tools, created_at, expires_at, revoked_at, hash FROM tokens ORDER BY name",
        )?;
        dump.tokens = stmt
            .query_map([], |r| {
                Ok((
                    TokenRow {
                        name: r.get(0)?,
                        plugins: r.get(1)?,
                        tools: r.get(2)?,
                        created_at: r.get(3)?,
                        expires_at: r.get(4)?,
                        revoked_at: r.get(5)?,
                    },
                    r.get::<_, Vec<u8>>(6)?,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        let mut stmt = conn
            .prepare("SELECT seq, at, plugin_id, action, detail, hash FROM history ORDER BY seq")?;
        dump.history = stmt
            .query_map(params![], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default(),
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut digests: Vec<Digest> = Vec::new();
        for v in &dump.versions {
            let d = Digest::parse(&v.row.digest).ok_or_else(|| RegistryError::IndexCorrupt {
                path: self.root.join("index.db"),
                message: format!(
                    "bad digest `{}` for plugin {}",
                    v.row.digest, v.row.plugin_id
                ),
            })?;
            if !digests.contains(&d) {
                digests.push(d);
            }
        }
        Ok((dump, digests))
    }

    /// A component's bytes from the data dir's blob store, checked against `digest`.
    pub fn local_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        self.blobs.get(digest)
    }
}

/// Checked above: a secret is never read out without the key.
fn unreachable_without_key(plugin: &str, name: &str) -> Result<Vec<u8>> {
    Err(RegistryError::StoreKey(format!(
        "the secret `{name}` of plugin `{plugin}` cannot be moved without the store key"
    )))
}
