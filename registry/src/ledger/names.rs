//! The `names` table of `ledger.db` (codec.rs): each string an entry repeats is stored once and referred to by its
//! id. Ids never change once written, so the cache here is only a cache.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

/// Most names kept in memory; past it the cache starts over (ids never change, so it is only a cache).
const MAX_CACHED: usize = 65_536;

/// The names table in memory, both ways.
#[derive(Debug, Default)]
pub(super) struct Names {
    ids: HashMap<String, i64>,
    values: HashMap<i64, String>,
}

impl Names {
    fn remember(&mut self, id: i64, value: &str) {
        if self.ids.len() >= MAX_CACHED {
            self.ids.clear();
            self.values.clear();
        }
        self.ids.insert(value.to_string(), id);
        self.values.insert(id, value.to_string());
    }

    /// The id of `value`, inserting it into `names` (inside the caller's write transaction) if it is new. The
    /// caller forgets the cache if that transaction does not commit.
    pub(super) fn intern(&mut self, conn: &Connection, value: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self.ids.get(value) {
            return Ok(*id);
        }
        let id = match conn
            .prepare_cached("SELECT id FROM names WHERE value = ?1")?
            .query_row([value], |r| r.get(0))
            .optional()?
        {
            Some(id) => id,
            None => {
                conn.prepare_cached("INSERT INTO names (value) VALUES (?1)")?
                    .execute([value])?;
                conn.last_insert_rowid()
            }
        };
        self.remember(id, value);
        Ok(id)
    }

    pub(super) fn intern_opt(
        &mut self,
        conn: &Connection,
        v: Option<&str>,
    ) -> rusqlite::Result<Option<i64>> {
        v.map(|v| self.intern(conn, v)).transpose()
    }

    /// The value of name `id`.
    pub(super) fn value(&mut self, conn: &Connection, id: i64) -> rusqlite::Result<String> {
        if let Some(v) = self.values.get(&id) {
            return Ok(v.clone());
        }
        let v: String = conn
            .prepare_cached("SELECT value FROM names WHERE id = ?1")?
            .query_row([id], |r| r.get(0))?;
        self.remember(id, &v);
        Ok(v)
    }

    pub(super) fn value_opt(
        &mut self,
        conn: &Connection,
        id: Option<i64>,
    ) -> rusqlite::Result<Option<String>> {
        id.map(|id| self.value(conn, id)).transpose()
    }
}
