//! What the operator changes on an installed plugin: its grants (within what was declared), limits, enabled state,
//! config values and secrets. Every change bumps the generation so a running host picks it up.

use std::collections::BTreeMap;

use rusqlite::{TransactionBehavior, params};

use super::types::{ConfigEntry, PluginLimits, PluginRecord, Publisher, json};
use crate::Registry;
use crate::error::{RegistryError, Result};
use crate::trust::check_declared;
use crate::units::now_secs as now;

impl Registry {
    /// Replaces the approved grants of a plugin's current version. A new grant outside what was declared is refused
    /// (see `check_declared`); grants it already holds are kept as they are.
    pub fn set_grants(&self, id: &str, grants: &[String]) -> Result<PluginRecord> {
        let record = self.plugin(id)?;
        check_declared(
            id,
            grants,
            &record.grants,
            &record.declared,
            !record.unsigned,
        )?;
        if self.shared.is_some() {
            let change = Change {
                grants: Some(json(&grants)),
                ..Change::default()
            };
            return self.change_shared(&record, change, "grants", grants.join(", "));
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE versions SET grants = ?2 WHERE seq = ?1",
            params![record.seq, json(&grants)],
        )?;
        tx.execute(
            "UPDATE plugins SET updated_at = ?2 WHERE id = ?1",
            params![id, now()],
        )?;
        Self::log(&tx, Some(id), "grants", &grants.join(", "))?;
        Self::bump(&tx)?;
        tx.commit()?;
        drop(conn);
        self.plugin(id)
    }

    /// Sets a plugin's limits.
    pub fn set_limits(&self, id: &str, limits: PluginLimits) -> Result<PluginRecord> {
        if self.shared.is_some() {
            let record = self.plugin(id)?;
            let change = Change {
                limits: Some(json(&limits)),
                ..Change::default()
            };
            return self.change_shared(&record, change, "limits", json(&limits));
        }
        self.plugin(id)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE plugins SET limits = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, json(&limits), now()],
        )?;
        Self::log(&tx, Some(id), "limits", &json(&limits))?;
        Self::bump(&tx)?;
        tx.commit()?;
        drop(conn);
        self.plugin(id)
    }

    /// Enables or disables a plugin. Enabling one whose publisher key is revoked is refused.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<PluginRecord> {
        let record = self.plugin(id)?;
        if enabled && record.publisher.as_ref().is_some_and(|p| p.revoked) {
            let p = record.publisher.unwrap_or_else(|| Publisher {
                name: String::new(),
                fingerprint: String::new(),
                revoked: true,
            });
            return Err(RegistryError::RevokedKey {
                name: p.name,
                fingerprint: p.fingerprint,
            });
        }
        if self.shared.is_some() {
            let change = Change {
                enabled: Some((
                    enabled,
                    (!enabled).then(|| "disabled by the operator".to_string()),
                )),
                ..Change::default()
            };
            let action = if enabled { "enable" } else { "disable" };
            return self.change_shared(&record, change, action, String::new());
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE plugins SET enabled = ?2, disabled_reason = ?3, updated_at = ?4 WHERE id = ?1",
            params![
                id,
                enabled as i64,
                (!enabled).then_some("disabled by the operator"),
                now()
            ],
        )?;
        Self::log(
            &tx,
            Some(id),
            if enabled { "enable" } else { "disable" },
            "",
        )?;
        Self::bump(&tx)?;
        tx.commit()?;
        drop(conn);
        self.plugin(id)
    }

    /// Sets a config value or a secret.
    pub fn set_config(&self, id: &str, key: &str, value: &str, secret: bool) -> Result<()> {
        self.plugin(id)?;
        let ok = !key.is_empty()
            && key.len() <= 128
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            return Err(RegistryError::BadConfigKey(key.to_string()));
        }
        if let Some(pg) = &self.shared {
            let value = if secret {
                self.store_key(id, key)?.seal(id, key, value)?
            } else {
                value.as_bytes().to_vec()
            };
            let row = crate::pg::ConfigRow {
                key: key.to_string(),
                value,
                secret,
            };
            return match pg.index_set_config(id, key, Some(row))? {
                Ok(_) => Ok(()),
                Err(_) => Err(RegistryError::NotInstalled(id.to_string())),
            };
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO config (plugin_id, key, value, secret) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (plugin_id, key) DO UPDATE SET value = excluded.value, secret = excluded.secret",
            params![id, key, value, secret as i64],
        )?;
        Self::log(
            &tx,
            Some(id),
            if secret { "secret-set" } else { "config-set" },
            key,
        )?;
        Self::bump(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a config value or secret; returns whether it existed.
    pub fn unset_config(&self, id: &str, key: &str) -> Result<bool> {
        self.plugin(id)?;
        if let Some(pg) = &self.shared {
            return pg
                .index_set_config(id, key, None)?
                .map_err(|_| RegistryError::NotInstalled(id.to_string()));
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM config WHERE plugin_id = ?1 AND key = ?2",
            params![id, key],
        )?;
        if n > 0 {
            Self::log(&tx, Some(id), "config-unset", key)?;
            Self::bump(&tx)?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// A plugin's settings for display: secrets without their values.
    pub fn config(&self, id: &str) -> Result<Vec<ConfigEntry>> {
        self.plugin(id)?;
        if let Some(pg) = &self.shared {
            return Ok(pg
                .index_config(id)?
                .into_iter()
                .map(|r| ConfigEntry {
                    value: (!r.secret).then(|| String::from_utf8_lossy(&r.value).into_owned()),
                    key: r.key,
                    secret: r.secret,
                })
                .collect());
        }
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT key, value, secret FROM config WHERE plugin_id = ?1 ORDER BY key")?;
        let rows = stmt.query_map([id], |r| {
            let secret = r.get::<_, i64>(2)? != 0;
            Ok(ConfigEntry {
                key: r.get(0)?,
                value: if secret { None } else { Some(r.get(1)?) },
                secret,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub(super) fn config_values(
        &self,
        id: &str,
    ) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
        if let Some(pg) = &self.shared {
            let mut config = BTreeMap::new();
            let mut secrets = BTreeMap::new();
            for r in pg.index_config(id)? {
                if r.secret {
                    let value = self.store_key(id, &r.key)?.open(id, &r.key, &r.value)?;
                    secrets.insert(r.key, value);
                } else {
                    config.insert(r.key, String::from_utf8_lossy(&r.value).into_owned());
                }
            }
            return Ok((config, secrets));
        }
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT key, value, secret FROM config WHERE plugin_id = ?1")?;
        let mut config = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for row in stmt.query_map([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? != 0,
            ))
        })? {
            let (k, v, secret) = row?;
            if secret {
                secrets.insert(k, v);
            } else {
                config.insert(k, v);
            }
        }
        Ok((config, secrets))
    }
}

/// One change to a plugin in the shared store (see [`crate::pg::PgStore::index_update`]).
#[derive(Debug, Default)]
struct Change {
    grants: Option<String>,
    limits: Option<String>,
    enabled: Option<(bool, Option<String>)>,
}

impl Registry {
    /// Applies `change` to `record`'s plugin in the shared store, if its current version is still the one the
    /// change was checked against.
    fn change_shared(
        &self,
        record: &PluginRecord,
        change: Change,
        action: &str,
        detail: String,
    ) -> Result<PluginRecord> {
        let Some(pg) = &self.shared else {
            return Err(RegistryError::NotShared("change_shared"));
        };
        match pg.index_update(
            &record.id,
            record.seq,
            change.grants,
            change.limits,
            change.enabled,
            action,
            detail,
        )? {
            Ok(()) => self.plugin(&record.id),
            Err(crate::pg::Refused::Moved) => {
                Err(RegistryError::Shared(crate::pg::PgError::Db(format!(
                    "plugin `{}` changed while this change was being checked (another operator upgraded or removed \
                 it); nothing was written, try again",
                    record.id
                ))))
            }
            Err(_) => Err(RegistryError::NotInstalled(record.id.clone())),
        }
    }
}
