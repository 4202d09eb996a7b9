//! `state`: a key/value store per plugin in SQLite (WAL) under the data dir, with a byte quota per plugin.
//! Keys are scoped by plugin id in the schema itself, so one plugin can never name another's rows.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use wasmtime::component::{HasData, Linker};

use crate::bindings::state::{self, Quota, StateError};
use crate::caps::view::CallCtx;
use crate::grants::Capability;
use plughost_registry::seam::StateBackend;

/// Longest key accepted (bytes).
pub const MAX_KEY_BYTES: usize = 512;

/// A failure of the state database itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The shared store of a cluster failed (`unavailable` when it cannot be reached).
    #[error("state store: {0}")]
    Shared(#[from] plughost_registry::seam::StoreError),
}

/// The host-wide state database: SQLite under the data dir, or a cluster's shared store.
#[derive(Debug)]
pub struct StateStore {
    conn: Mutex<Connection>,
    /// When set, every read and write goes here (the SQLite connection is an unused in-memory one).
    shared: Option<Arc<dyn StateBackend>>,
}

impl StateStore {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Arc<Self>, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Self::migrate(&conn)?;
        Ok(Arc::new(StateStore {
            conn: Mutex::new(conn),
            shared: None,
        }))
    }

    /// State in a cluster's shared store: what a plugin writes through one replica it reads through another, under
    /// one quota.
    pub fn shared(backend: Arc<dyn StateBackend>) -> Result<Arc<Self>, StoreError> {
        Ok(Arc::new(StateStore {
            conn: Mutex::new(Connection::open_in_memory()?),
            shared: Some(backend),
        }))
    }

    /// An in-memory store (for `inspect` and tests that want no files).
    pub fn in_memory() -> Result<Arc<Self>, StoreError> {
        let conn = Connection::open_in_memory()?;
        Self::migrate(&conn)?;
        Ok(Arc::new(StateStore {
            conn: Mutex::new(conn),
            shared: None,
        }))
    }

    fn migrate(conn: &Connection) -> Result<(), StoreError> {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version < 1 {
            conn.execute_batch(
                "BEGIN;
                 CREATE TABLE IF NOT EXISTS kv (
                     plugin TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                     PRIMARY KEY (plugin, key)) WITHOUT ROWID;
                 CREATE TABLE IF NOT EXISTS usage (plugin TEXT PRIMARY KEY, bytes INTEGER NOT NULL);
                 PRAGMA user_version = 1;
                 COMMIT;",
            )?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (it has its own transactions).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(s) = &self.shared {
            return Ok(s.get(plugin, key)?);
        }
        let conn = self.lock();
        let mut stmt =
            conn.prepare_cached("SELECT value FROM kv WHERE plugin = ?1 AND key = ?2")?;
        Ok(stmt
            .query_row(params![plugin, key], |r| r.get(0))
            .optional()?)
    }

    pub fn used(&self, plugin: &str) -> Result<u64, StoreError> {
        if let Some(s) = &self.shared {
            return Ok(s.used(plugin)?);
        }
        let conn = self.lock();
        Self::used_in(&conn, plugin)
    }

    fn used_in(conn: &Connection, plugin: &str) -> Result<u64, StoreError> {
        let mut stmt = conn.prepare_cached("SELECT bytes FROM usage WHERE plugin = ?1")?;
        Ok(stmt
            .query_row(params![plugin], |r| r.get::<_, i64>(0))
            .optional()?
            .unwrap_or(0) as u64)
    }

    /// Sets `key`; refuses (writing nothing) when the plugin would exceed `quota` bytes (keys + values).
    pub fn set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> Result<Result<(), Quota>, StoreError> {
        if let Some(s) = &self.shared {
            return Ok(s
                .set(plugin, key, value, quota)?
                .map_err(|(used_bytes, limit_bytes)| Quota {
                    used_bytes,
                    limit_bytes,
                }));
        }
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let used = Self::used_in(&tx, plugin)?;
        let old: Option<i64> = tx
            .prepare_cached("SELECT length(value) FROM kv WHERE plugin = ?1 AND key = ?2")?
            .query_row(params![plugin, key], |r| r.get(0))
            .optional()?;
        let old_bytes = old.map_or(0, |v| v as u64 + key.len() as u64);
        let new_used = used - old_bytes.min(used) + key.len() as u64 + value.len() as u64;
        if new_used > quota {
            return Ok(Err(Quota {
                used_bytes: used,
                limit_bytes: quota,
            }));
        }
        tx.prepare_cached("INSERT INTO kv (plugin, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value")?
            .execute(params![plugin, key, value])?;
        tx.prepare_cached("INSERT INTO usage (plugin, bytes) VALUES (?1, ?2) ON CONFLICT (plugin) DO UPDATE SET bytes = excluded.bytes")?
            .execute(params![plugin, new_used as i64])?;
        tx.commit()?;
        Ok(Ok(()))
    }

    pub fn delete(&self, plugin: &str, key: &str) -> Result<bool, StoreError> {
        if let Some(s) = &self.shared {
            return Ok(s.delete(plugin, key)?);
        }
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let old: Option<i64> = tx
            .prepare_cached("SELECT length(value) FROM kv WHERE plugin = ?1 AND key = ?2")?
            .query_row(params![plugin, key], |r| r.get(0))
            .optional()?;
        let Some(old) = old else { return Ok(false) };
        tx.prepare_cached("DELETE FROM kv WHERE plugin = ?1 AND key = ?2")?
            .execute(params![plugin, key])?;
        tx.prepare_cached("UPDATE usage SET bytes = max(0, bytes - ?2) WHERE plugin = ?1")?
            .execute(params![plugin, old + key.len() as i64])?;
        tx.commit()?;
        Ok(true)
    }

    /// How many keys `plugin` has.
    pub fn count_keys(&self, plugin: &str) -> Result<u64, StoreError> {
        if let Some(s) = &self.shared {
            return Ok(s.list_keys(plugin, "")?.len() as u64);
        }
        let conn = self.lock();
        let n: i64 =
            conn.query_row("SELECT count(*) FROM kv WHERE plugin = ?1", [plugin], |r| {
                r.get(0)
            })?;
        Ok(n as u64)
    }

    /// Deletes everything `plugin` stored (when it is removed); returns how many keys were deleted.
    pub fn delete_plugin(&self, plugin: &str) -> Result<u64, StoreError> {
        if let Some(s) = &self.shared {
            return Ok(s.delete_plugin(plugin)?);
        }
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM kv WHERE plugin = ?1", [plugin])?;
        tx.execute("DELETE FROM usage WHERE plugin = ?1", [plugin])?;
        tx.commit()?;
        Ok(n as u64)
    }

    pub fn list_keys(&self, plugin: &str, prefix: &str) -> Result<Vec<String>, StoreError> {
        if let Some(s) = &self.shared {
            return Ok(s.list_keys(plugin, prefix)?);
        }
        let conn = self.lock();
        // Range scan on the primary key: [prefix, prefix + U+10FFFF).
        let mut stmt = conn.prepare_cached(
            "SELECT key FROM kv WHERE plugin = ?1 AND key >= ?2 AND substr(key, 1, length(?2)) = ?2 ORDER BY key LIMIT 10000",
        )?;
        let rows = stmt.query_map(params![plugin, prefix], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// One plugin's view of the state store.
#[derive(Debug, Clone)]
pub struct StateCtx {
    pub store: Arc<StateStore>,
    pub quota_bytes: u64,
}

fn check_key(key: &str) -> Result<(), StateError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(StateError::InvalidKey(format!(
            "a key must be 1–{MAX_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

fn unavailable(e: StoreError) -> StateError {
    StateError::Unavailable(e.to_string())
}

/// What the `state` interface sees of the call it serves; its store hands one out through [`StateView`].
#[derive(Debug)]
pub struct StateHost<'a> {
    pub call: CallCtx<'a>,
    pub state: Option<&'a StateCtx>,
}

/// How `state` reaches the call it serves (the wasmtime-wasi `WasiView` shape): implemented by the runtime's
/// per-call store data, so this module never sees the store type.
pub trait StateView: Send {
    fn state_host(&mut self) -> StateHost<'_>;
}

impl StateHost<'_> {
    fn ctx(&mut self) -> Result<(&StateCtx, &str), StateError> {
        self.call.count(Capability::State);
        match self.state {
            Some(ctx) => Ok((ctx, &**self.call.plugin)),
            None => Err(StateError::Unavailable(
                "state is not available here".into(),
            )),
        }
    }
}

impl state::Host for StateHost<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, StateError>> {
        Ok(self.ctx().and_then(|(ctx, id)| {
            check_key(&key)?;
            ctx.store.get(id, &key).map_err(unavailable)
        }))
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), StateError>> {
        Ok(self.ctx().and_then(|(ctx, id)| {
            check_key(&key)?;
            ctx.store
                .set(id, &key, &value, ctx.quota_bytes)
                .map_err(unavailable)?
                .map_err(StateError::QuotaExceeded)
        }))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<bool, StateError>> {
        Ok(self.ctx().and_then(|(ctx, id)| {
            check_key(&key)?;
            ctx.store.delete(id, &key).map_err(unavailable)
        }))
    }

    async fn list_keys(
        &mut self,
        prefix: String,
    ) -> wasmtime::Result<Result<Vec<String>, StateError>> {
        Ok(self
            .ctx()
            .and_then(|(ctx, id)| ctx.store.list_keys(id, &prefix).map_err(unavailable)))
    }

    async fn usage(&mut self) -> wasmtime::Result<Result<Quota, StateError>> {
        Ok(self.ctx().and_then(|(ctx, id)| {
            let used_bytes = ctx.store.used(id).map_err(unavailable)?;
            Ok(Quota {
                used_bytes,
                limit_bytes: ctx.quota_bytes,
            })
        }))
    }
}

struct State;
impl HasData for State {
    type Data<'a> = StateHost<'a>;
}

/// Links `plughost:plugin/state`.
pub fn add_to_linker<T: StateView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    state::add_to_linker::<T, State>(linker, |s| s.state_host())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_counts_keys_and_values_and_frees_on_delete() -> Result<(), StoreError> {
        let s = StateStore::in_memory()?;
        assert!(s.set("a", "k", &[0; 9], 10)?.is_ok());
        assert_eq!(s.used("a")?, 10);
        assert!(
            s.set("a", "k2", &[0; 1], 10)?.is_err(),
            "over quota must be refused"
        );
        assert!(
            s.set("a", "k", &[0; 5], 10)?.is_ok(),
            "replacing a value frees the old bytes"
        );
        assert_eq!(s.used("a")?, 6);
        assert!(s.delete("a", "k")?);
        assert!(!s.delete("a", "k")?);
        assert_eq!(s.used("a")?, 0);
        Ok(())
    }

    #[test]
    fn plugins_do_not_see_each_other() -> Result<(), StoreError> {
        let s = StateStore::in_memory()?;
        s.set("a", "shared", b"from a", 100)?.ok();
        s.set("b", "shared", b"from b", 100)?.ok();
        assert_eq!(s.get("a", "shared")?.as_deref(), Some(&b"from a"[..]));
        assert_eq!(s.get("b", "shared")?.as_deref(), Some(&b"from b"[..]));
        s.set("a", "p/1", b"x", 100)?.ok();
        s.set("a", "q/1", b"x", 100)?.ok();
        assert_eq!(s.list_keys("a", "p/")?, vec!["p/1".to_string()]);
        assert_eq!(s.list_keys("b", "p/")?, Vec::<String>::new());
        Ok(())
    }
}
