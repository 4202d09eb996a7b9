//! The compile cache's trust anchor: the blake3 digest of every artifact (`cache/<engine>/<component>.cwasm`)
//! plughost wrote, recorded here when it is written and checked by the host before the artifact is loaded.
//!
//! Why here and not beside the artifact: wasmtime runs an artifact's machine code as it is, so whoever can edit the
//! artifact could edit a digest file next to it as well. `index.db` is the data dir's trust anchor (mode 0600, the
//! grants and keys live in it): an artifact changed behind plughost's back no longer matches its row, and one with no
//! row was not written by plughost and is not loaded.

use rusqlite::{OptionalExtension, params};

use crate::Registry;
use crate::error::Result;
use crate::units::now_secs as now;

impl Registry {
    /// The recorded blake3 hex digest of the artifact compiled by engine `engine` (its compatibility key) from the
    /// component whose blake3 hex digest is `component`; `None` if plughost recorded none.
    pub fn artifact_digest(&self, engine: &str, component: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT digest FROM artifacts WHERE engine = ?1 AND component = ?2",
                params![engine, component],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records the digest of an artifact about to be written (replacing an earlier one). Not a change a running
    /// host reloads for, so the generation stays.
    pub fn record_artifact(
        &self,
        engine: &str,
        component: &str,
        digest: &str,
        size: u64,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO artifacts (engine, component, digest, size, written_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (engine, component) DO UPDATE SET digest = ?3, size = ?4, written_at = ?5",
            params![engine, component, digest, size as i64, now()],
        )?;
        Ok(())
    }

    /// Forgets an artifact's digest (the artifact was discarded).
    pub fn forget_artifact(&self, engine: &str, component: &str) -> Result<()> {
        self.conn().execute(
            "DELETE FROM artifacts WHERE engine = ?1 AND component = ?2",
            params![engine, component],
        )?;
        Ok(())
    }

    /// Whether any installed version of any plugin (current or kept for rollback) is the component whose blake3
    /// hex digest is `component`.
    pub fn component_installed(&self, component: &str) -> Result<bool> {
        if let Some(pg) = &self.shared {
            return Ok(pg.index_component_installed(&format!("blake3:{component}"))?);
        }
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM versions WHERE digest = ?1 LIMIT 1",
                [format!("blake3:{component}")],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}
