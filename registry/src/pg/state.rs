//! Plugin state in the shared store: a key/value table per plugin with a byte quota (keys + values), the same
//! rules as the host's SQLite state store. The quota row is locked by each write, so concurrent writes from several
//! replicas cannot overshoot it.

use super::error::PgResult;
use super::store::PgStore;

impl PgStore {
    pub fn state_get(&self, plugin: &str, key: &str) -> PgResult<Option<Vec<u8>>> {
        let (plugin, key) = (plugin.to_string(), key.to_string());
        self.run(|pool| async move {
            let c = pool.get().await?;
            let stmt = c
                .prepare_cached("SELECT value FROM state_kv WHERE plugin = $1 AND key = $2")
                .await?;
            Ok(c.query_opt(&stmt, &[&plugin, &key])
                .await?
                .map(|r| r.get(0)))
        })
    }

    /// Bytes `plugin` uses (keys + values).
    pub fn state_used(&self, plugin: &str) -> PgResult<u64> {
        let plugin = plugin.to_string();
        self.run(|pool| async move {
            let c = pool.get().await?;
            let r = c
                .query_opt(
                    "SELECT bytes FROM state_usage WHERE plugin = $1",
                    &[&plugin],
                )
                .await?;
            Ok(r.map_or(0, |r| r.get::<_, i64>(0) as u64))
        })
    }

    /// Sets `key`; refuses (writing nothing, `Err((used, quota))`) when `plugin` would exceed `quota` bytes.
    pub fn state_set(
        &self,
        plugin: &str,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> PgResult<Result<(), (u64, u64)>> {
        let (plugin, key, value) = (plugin.to_string(), key.to_string(), value.to_vec());
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            tx.execute(
                "INSERT INTO state_usage (plugin, bytes) VALUES ($1, 0) ON CONFLICT (plugin) DO NOTHING",
                &[&plugin],
            )
            .await?;
            let used = tx
                .query_one(
                    "SELECT bytes FROM state_usage WHERE plugin = $1 FOR UPDATE",
                    &[&plugin],
                )
                .await?
                .get::<_, i64>(0) as u64;
            let old = tx
                .query_opt(
                    "SELECT length(value) FROM state_kv WHERE plugin = $1 AND key = $2",
                    &[&plugin, &key],
                )
                .await?
                .map_or(0, |r| r.get::<_, i32>(0) as u64 + key.len() as u64);
            let new_used = used - old.min(used) + key.len() as u64 + value.len() as u64;
            if new_used > quota {
                return Ok(Err((used, quota)));
            }
            tx.execute(
                "INSERT INTO state_kv (plugin, key, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
                &[&plugin, &key, &value],
            )
            .await?;
            tx.execute(
                "UPDATE state_usage SET bytes = $2 WHERE plugin = $1",
                &[&plugin, &(new_used as i64)],
            )
            .await?;
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    pub fn state_delete(&self, plugin: &str, key: &str) -> PgResult<bool> {
        let (plugin, key) = (plugin.to_string(), key.to_string());
        self.run(|pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            let old = tx
                .query_opt(
                    "DELETE FROM state_kv WHERE plugin = $1 AND key = $2 RETURNING length(value)",
                    &[&plugin, &key],
                )
                .await?;
            let Some(old) = old else { return Ok(false) };
            let freed = old.get::<_, i32>(0) as i64 + key.len() as i64;
            tx.execute(
                "UPDATE state_usage SET bytes = greatest(0, bytes - $2) WHERE plugin = $1",
                &[&plugin, &freed],
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Keys of `plugin` starting with `prefix`, in order (at most 10,000, as on SQLite).
    pub fn state_list_keys(&self, plugin: &str, prefix: &str) -> PgResult<Vec<String>> {
        let (plugin, prefix) = (plugin.to_string(), prefix.to_string());
        self.run(|pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    "SELECT key FROM state_kv WHERE plugin = $1 AND starts_with(key, $2) ORDER BY key LIMIT 10000",
                    &[&plugin, &prefix],
                )
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// Deletes everything `plugin` stored; returns how many keys.
    pub fn state_delete_plugin(&self, plugin: &str) -> PgResult<u64> {
        let plugin = plugin.to_string();
        self.run(|pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            let n = tx
                .execute("DELETE FROM state_kv WHERE plugin = $1", &[&plugin])
                .await?;
            tx.execute("DELETE FROM state_usage WHERE plugin = $1", &[&plugin])
                .await?;
            tx.commit().await?;
            Ok(n)
        })
    }
}
