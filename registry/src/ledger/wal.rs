//! Keeping `ledger.db`'s write-ahead log bounded under sustained load.
//!
//! A passive checkpoint copies the WAL into the database without blocking anyone, but SQLite only starts the WAL
//! over when a checkpoint has copied *all* of it and no reader still uses it; with calls committing and contract
//! checks reading all the time that moment never comes, and the WAL grows without end (2 GB after 2.6 million
//! calls). So the keeper thread ([`Ledger::keep_wal_bounded`]) looks at the WAL's size every [`WAL_POLL`]: past
//! [`WAL_TRIGGER_BYTES`] it runs a passive checkpoint (the bulk of the copy, writers keep going) and then a
//! restarting one, which blocks new writers only while it copies what arrived since and waits — at most
//! [`TRUNCATE_WAIT`] — for readers to leave the WAL, so that the next commit starts the WAL over from its beginning;
//! below the trigger it checkpoints passively once a second, so the fsync is never on a call's commit. Restarting
//! rather than truncating keeps the file's pages: commits overwrite pages already in the page cache instead of
//! growing the file again page by page (at thousands of commits a second the WAL fills its 8 MiB every few tens
//! of milliseconds). A WAL with no commit for a second is truncated to nothing, and while it stays empty the keeper
//! looks once a second. If the keeper still falls behind (a reader held the WAL), the commit that finds the WAL
//! past [`WAL_HARD_BYTES`] truncates it itself.
//!
//! "The WAL's size" is what the last commit left in it, as SQLite's WAL hook reports it, not the file's length,
//! which a restart leaves as it was.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::{Ledger, Result};

/// WAL size past which the keeper truncates it.
pub const WAL_TRIGGER_BYTES: u64 = 8 << 20;
/// WAL size past which a commit truncates it itself (the keeper fell behind).
pub const WAL_HARD_BYTES: u64 = 32 << 20;
/// How often the keeper looks at the WAL's size (one `stat`).
pub const WAL_POLL: Duration = Duration::from_millis(50);
/// How long a truncating checkpoint waits for readers to leave the WAL before giving up until the next round; new
/// writers wait meanwhile.
pub const TRUNCATE_WAIT: Duration = Duration::from_millis(50);
/// Bytes of the WAL file's header, and of each frame's header before its page (sqlite.org/fileformat.html).
const WAL_HEADER: u64 = 32;
const WAL_FRAME_HEADER: u64 = 24;
/// How often the keeper checkpoints passively below the trigger.
const PASSIVE_EVERY: Duration = Duration::from_secs(1);

impl Ledger {
    /// The write-ahead log next to `ledger.db`.
    pub fn wal_path(&self) -> PathBuf {
        let mut p = self.path().as_os_str().to_owned();
        p.push("-wal");
        PathBuf::from(p)
    }

    /// The WAL's size in bytes (0 when there is none).
    pub fn wal_bytes(&self) -> u64 {
        std::fs::metadata(self.wal_path()).map_or(0, |m| m.len())
    }

    /// Hands WAL checkpoints to the caller, off the commit path: a checkpoint copies the WAL into the database and
    /// fsyncs, which would otherwise land on whichever call's commit crosses the auto-checkpoint threshold. Until the
    /// connection closes, the caller must then checkpoint regularly ([`Ledger::keep_wal_bounded`] does).
    pub fn defer_checkpoints(&self) -> Result<()> {
        let mut conn = self.conn();
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When the WAL does start over, it is cut back to this size rather than kept at its largest.
        conn.pragma_update(None, "journal_size_limit", WAL_TRIGGER_BYTES as i64)?;
        // Each commit's WAL size from SQLite itself (frames in the WAL, each a page and its header), so the check
        // after a commit needs no `stat`. Installed after the pragma above, which replaces any WAL hook.
        let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let frame = page.max(0) as u64 + WAL_FRAME_HEADER;
        let size = self.wal_after_commit.clone();
        conn.wal_hook(Some(
            move |_: &mut rusqlite::hooks::Wal, frames: std::ffi::c_int| {
                size.store(
                    WAL_HEADER + frames.max(0) as u64 * frame,
                    std::sync::atomic::Ordering::Relaxed,
                );
                Ok(())
            },
        ))?;
        Ok(())
    }

    /// Runs `PRAGMA wal_checkpoint(MODE)` for each mode in turn on the checkpointer's own connection; true when the
    /// last one completed (not busy). With `above`, only if the WAL is still larger than that once the checkpointer
    /// is free (a checkpoint under way may just have truncated it); else `None`.
    fn wal_checkpoints(&self, modes: &[&str], above: Option<u64>) -> Result<Option<bool>> {
        let mut c = self.checkpointer.lock().unwrap_or_else(|p| p.into_inner());
        if above.is_some_and(|limit| self.wal_bytes() <= limit) {
            return Ok(None);
        }
        if c.is_none() {
            let conn = Connection::open_with_flags(
                self.path(),
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(TRUNCATE_WAIT)?;
            *c = Some(conn);
        }
        let Some(conn) = c.as_ref() else {
            return Ok(None);
        };
        let mut done = false;
        for mode in modes {
            let busy: i64 =
                conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(0))?;
            done = busy == 0;
        }
        Ok(Some(done))
    }

    /// Runs a passive WAL checkpoint on a connection of its own (writers are not blocked).
    pub fn checkpoint_wal(&self) -> Result<()> {
        self.wal_checkpoints(&["PASSIVE"], None)?;
        Ok(())
    }

    /// Copies the WAL into the database and has the next commit start it over from its beginning, keeping the
    /// file: a passive checkpoint first (writers keep going), then a restarting one for the rest. False when a
    /// reader kept it from completing within [`TRUNCATE_WAIT`].
    pub fn restart_wal(&self) -> Result<bool> {
        let done = self.wal_checkpoints(&["PASSIVE", "RESTART"], None)? == Some(true);
        if done {
            // Nothing is left in it; the next commit reports afresh.
            self.wal_after_commit
                .store(WAL_HEADER, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(done)
    }

    /// Copies the WAL into the database and truncates it to zero bytes: a passive checkpoint first (writers keep
    /// going), then a truncating one for the rest. False when a reader kept it from completing within
    /// [`TRUNCATE_WAIT`] (the WAL is then left as it is, to be tried again).
    pub fn truncate_wal(&self) -> Result<bool> {
        Ok(self.wal_checkpoints(&["PASSIVE", "TRUNCATE"], None)? == Some(true))
    }

    /// The WAL's size after this ledger's last commit, as SQLite reported it; `None` before the report is set up
    /// ([`Ledger::defer_checkpoints`]).
    pub fn wal_after_commit(&self) -> Option<u64> {
        let bytes = self
            .wal_after_commit
            .load(std::sync::atomic::Ordering::Relaxed);
        (bytes != u64::MAX).then_some(bytes)
    }

    /// After a commit: if the WAL is past [`WAL_HARD_BYTES`] (the keeper fell behind), truncate it now — after any
    /// checkpoint under way, and only if that one did not bring it down.
    pub(super) fn bound_wal_after_commit(&self) {
        let bytes = self.wal_after_commit().unwrap_or_else(|| self.wal_bytes());
        if bytes > WAL_HARD_BYTES {
            let _ = self.wal_checkpoints(&["PASSIVE", "TRUNCATE"], Some(WAL_HARD_BYTES));
        }
    }

    /// Takes WAL checkpoints off the commit path ([`Ledger::defer_checkpoints`]) and starts the keeper thread that
    /// bounds the WAL (see the module's documentation); it stops when the ledger is dropped. If checkpoints cannot
    /// be deferred, SQLite's automatic ones stay on (and the error is returned).
    pub fn keep_wal_bounded(self: &Arc<Self>) -> Result<()> {
        self.defer_checkpoints()?;
        let weak = Arc::downgrade(self);
        let _ = std::thread::Builder::new()
            .name("plughost-ledger-wal".into())
            .spawn(move || {
                let mut last_passive = Instant::now();
                let mut seen = 0u64;
                let mut last_look = 0u64;
                let mut nap = WAL_POLL;
                loop {
                    std::thread::sleep(nap);
                    let Some(l) = weak.upgrade() else { return };
                    // Failures are retried next round; a commit past the hard bound truncates it itself.
                    let now = l.wal_commits.load(std::sync::atomic::Ordering::Relaxed);
                    if now != last_look {
                        nap = WAL_POLL;
                        last_look = now;
                    }
                    let size = l.wal_after_commit().unwrap_or_else(|| l.wal_bytes());
                    if size >= WAL_TRIGGER_BYTES {
                        let _ = l.restart_wal();
                        last_passive = Instant::now();
                    } else if last_passive.elapsed() >= PASSIVE_EVERY {
                        if now != seen {
                            let _ = l.checkpoint_wal();
                        } else if l.wal_bytes() > 0 {
                            // No commit for a second: give the file's space back.
                            let _ = l.truncate_wal();
                        } else {
                            // Empty and no commit since: nothing to bound until one comes, so look once a second
                            // (an idle gateway wakes for this once a second, not 20 times; the first commit after
                            // it brings the 50 ms look back, and the hard bound holds meanwhile).
                            nap = PASSIVE_EVERY;
                        }
                        seen = now;
                        last_passive = Instant::now();
                    }
                }
            });
        Ok(())
    }
}
