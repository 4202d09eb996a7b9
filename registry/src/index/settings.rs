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
