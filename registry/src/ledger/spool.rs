//! The spool: where a long-running process (`plughost serve`) writes each call's entry with one `write`, so a call
//! is acknowledged without a SQLite transaction of its own; a mover thread takes what the spool holds into the
//! chain in `ledger.db` every [`SPOOL_TICK`], many entries per transaction.
//!
//! An entry in the spool is on disk: a process killed with SIGKILL leaves its spool behind, and the next process
//! that opens the ledger moves it ([`Ledger::open`]). What the spool does not give is the chain: an entry gets its
//! sequence number and hash when it is moved.
//!
//! The files. `ledger.spool/` next to `ledger.db` holds one file per process that spools, named
//! `<pid>-<nanoseconds>-<n>`; the process holds an exclusive `flock` on it for as long as it writes it, so a file
//! whose lock can be taken belongs to a process that is gone. Each record is a length (u32, little-endian), the first
//! four bytes of the blake3 hash of the payload, and the payload (the entry; `record.rs` writes and reads both).
//! How far each file has been moved is kept in `ledger.db` itself (the `spools` table), updated in the same
//! transaction as the entries it moved, so any process may move any file's records (under SQLite's write lock) and
//! none is moved twice.
//! A file is registered there before it appears under its name (it is created as `.new-<name>` and renamed), and its
//! row is deleted before the file is, so a file without a row has nothing left to move.
//!
//! Reads in the same process first move what its own spool holds, so the process reads what it wrote. Another
//! process reads it once the mover has run (within a few tens of milliseconds), or at once if it opens the ledger then,
//! since opening moves every spool.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::entry::EntryRef;
use super::names::Names;
use super::record::{Decoded, frame, framed_len, unframe};
use super::store::{Own, Spool};
use super::{Ledger, LedgerError, NewEntry, Result};

/// How often the mover takes what the spool holds into `ledger.db` while calls come. Each round costs the same
/// fixed part (a transaction, the spool's read, the WAL's pages, a timer wake-up): at 5 ms the mover thread was
/// 12% of a one-client gateway's CPU, at 25 ms 7%; 25 ms of calls is a few hundred KiB, far below
/// [`SPOOL_MAX_UNMOVED`].
pub const SPOOL_TICK: Duration = Duration::from_millis(25);
/// Bytes the spool may hold unmoved; past it (the moves fail or fall behind) calls are refused until a move works.
pub const SPOOL_MAX_UNMOVED: u64 = 8 << 20;
/// A spool file fully moved and at least this long is replaced by a new one.
const ROTATE_BYTES: u64 = 4 << 20;
/// The spool bytes the mover reads and decodes at a time (a longer record is read whole): its memory stays within a
/// chunk and its entries however far behind it fell. 25 ms of calls at C=8 (~100 KiB) is one chunk.
const CHUNK: usize = 256 << 10;
/// The spool's directory, next to `ledger.db`.
pub const SPOOL_DIR: &str = "ledger.spool";
/// The table of how far each spool file has been moved.
const SPOOLS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS spools (name TEXT PRIMARY KEY, moved INTEGER NOT NULL)";

fn io(path: &Path) -> impl Fn(std::io::Error) -> LedgerError + '_ {
    move |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A new spool file, registered in `spools` before it appears under its name, locked for this process.
fn create(conn: &rusqlite::Connection, dir: &Path, made: u64) -> Result<Own> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = format!("{}-{nanos}-{made}", std::process::id());
    let path = dir.join(&name);
    let new = dir.join(format!(".new-{name}"));
    let file = std::fs::OpenOptions::new()
        .append(true)
        .read(true)
        .create_new(true)
        .mode(0o600)
        .open(&new)
        .map_err(io(&new))?;
    file.try_lock().map_err(|e| LedgerError::Io {
        path: new.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let registered = conn
        .execute(
            "INSERT OR REPLACE INTO spools (name, moved) VALUES (?1, 0)",
            [&name],
        )
        .map_err(LedgerError::from)
        .and_then(|_| std::fs::rename(&new, &path).map_err(io(&path)));
    if let Err(e) = registered {
        let _ = std::fs::remove_file(&new);
        let _ = conn.execute("DELETE FROM spools WHERE name = ?1", [&name]);
        return Err(e);
    }
    Ok(Own {
        file,
        name,
        len: 0,
        made: made + 1,
    })
}

/// Moves the records of the spool file `name` (open as `file`) from where `spools` says it was moved to, up to
/// `upto` bytes (or its end), a chunk at a time through `append` (in `tx`); updates `spools`. `None` when the file
/// has no row (nothing to move).
fn take(
    tx: &Transaction<'_>,
    path: &Path,
    name: &str,
    file: &std::fs::File,
    upto: Option<u64>,
    append: &mut dyn FnMut(&[EntryRef<'_>]) -> Result<()>,
) -> Result<Option<u64>> {
    let moved: Option<i64> = tx
        .prepare_cached("SELECT moved FROM spools WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    let Some(moved) = moved else { return Ok(None) };
    let start = moved.max(0) as u64;
    let end = match upto {
        Some(n) => n,
        None => file.metadata().map_err(io(path))?.len(),
    };
    let mut at = start;
    let mut bytes = Vec::new();
    let mut want = CHUNK;
    while at < end {
        // A chunk at a time: a spool far behind (up to SPOOL_MAX_UNMOVED) is not read, decoded and held whole.
        let left = end - at;
        bytes.resize((left as usize).min(want), 0);
        file.read_exact_at(&mut bytes, at).map_err(io(path))?;
        let (found, used) = unframe(&bytes, path, at)?;
        if used == 0 {
            match framed_len(&bytes) {
                // A record longer than a chunk (an event's data): read to its end (`unframe` checked its length).
                Some(whole) if (bytes.len() as u64) < left => want = whole,
                // The last record is still being written.
                _ => break,
            }
            continue;
        }
        want = CHUNK;
        let entries: Vec<EntryRef<'_>> = found.iter().map(Decoded::entry).collect();
        append(&entries)?;
        at += used as u64;
    }
    if at > start {
        tx.prepare_cached("UPDATE spools SET moved = ?2 WHERE name = ?1")?
            .execute(params![name, at as i64])?;
    }
    Ok(Some(at))
}

impl Ledger {
    /// Starts spooling this process's entries ([`Ledger::append_spooled`]) and the mover thread that takes them
    /// into `ledger.db`; it stops when the ledger is dropped. Only for a long-running process.
    pub fn start_spool(self: &Arc<Self>) -> Result<()> {
        self.start_spool_with(true)
    }

    /// [`Ledger::start_spool`]; without the mover, what is spooled waits for a read, an `append` or the drop
    /// (tests, to see each of those move it).
    fn start_spool_with(self: &Arc<Self>, mover: bool) -> Result<()> {
        if self.spool.get().is_some() {
            return Ok(());
        }
        let dir = self.spool_dir();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io(&dir))?;
        let own = {
            let conn = self.conn();
            conn.execute_batch(SPOOLS_TABLE)?;
            create(&conn, &dir, 0)?
        };
        let spool = Spool {
            dir,
            own: Mutex::new(own),
            unmoved: AtomicU64::new(0),
            failed: Mutex::new(None),
            mover: Mutex::new(None),
        };
        if self.spool.set(spool).is_err() || !mover {
            return Ok(());
        }
        let weak = Arc::downgrade(self);
        let mover = std::thread::Builder::new()
            .name("plughost-ledger-spool".into())
            .spawn(move || {
                loop {
                    let Some(l) = weak.upgrade() else { return };
                    let busy = l.spool_unmoved() > 0;
                    if busy {
                        // A failure is kept for the next call's check, and tried again next tick.
                        let _ = l.move_spool();
                    }
                    drop(l);
                    if busy {
                        std::thread::sleep(SPOOL_TICK);
                    } else {
                        std::thread::park_timeout(Duration::from_secs(1));
                    }
                }
            })
            .map_err(io(&self.spool_dir()))?;
        if let Some(s) = self.spool.get() {
            *s.mover.lock().unwrap_or_else(|p| p.into_inner()) = Some(mover.thread().clone());
        }
        Ok(())
    }

    /// `ledger.spool/` next to `ledger.db`.
    pub fn spool_dir(&self) -> PathBuf {
        self.path()
            .parent()
            .unwrap_or(Path::new("."))
            .join(SPOOL_DIR)
    }

    /// Writes `entries` (given by their parts: a call's are borrowed from where they are) to this process's spool
    /// with one `write`; once it returns they are on disk and will be in the chain. Without a spool
    /// ([`Ledger::start_spool`]) it appends them at once.
    pub fn append_spooled<'a>(
        &self,
        entries: impl IntoIterator<Item = EntryRef<'a>>,
    ) -> Result<()> {
        let entries = entries.into_iter();
        let Some(s) = self.spool.get() else {
            let owned: Vec<NewEntry> = entries.map(|e| e.owned()).collect();
            return self.append(&owned).map(|_| ());
        };
        let mut buf = Vec::with_capacity(512 * entries.size_hint().0.max(1));
        for e in entries {
            frame(&mut buf, &e);
        }
        self.spool_write(s, &buf)
    }

    /// Writes whole records to this process's spool file with one `write`.
    fn spool_write(&self, s: &Spool, buf: &[u8]) -> Result<()> {
        let was = {
            let mut own = s.own.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = own.file.write_all(buf) {
                // Nothing half-written stays behind the records that follow.
                let _ = own.file.set_len(own.len);
                return Err(io(&s.dir.join(&own.name))(e));
            }
            own.len += buf.len() as u64;
            s.unmoved.fetch_add(buf.len() as u64, Ordering::AcqRel)
        };
        if was == 0
            && let Some(t) = &*s.mover.lock().unwrap_or_else(|p| p.into_inner())
        {
            t.unpark();
        }
        Ok(())
    }

    /// Whether this process spools its entries ([`Ledger::start_spool`]).
    pub fn is_spooling(&self) -> bool {
        self.spool.get().is_some()
    }

    /// Bytes this process spooled and has not moved yet (0 without a spool).
    pub fn spool_unmoved(&self) -> u64 {
        self.spool
            .get()
            .map_or(0, |s| s.unmoved.load(Ordering::Acquire))
    }

    /// Why this process's spool cannot be moved now, if it cannot: the last move failed, or it holds more than
    /// [`SPOOL_MAX_UNMOVED`]. Tries a move first when either is so.
    pub fn spool_trouble(&self) -> Option<String> {
        let s = self.spool.get()?;
        let failed = s.failed.lock().unwrap_or_else(|p| p.into_inner()).is_some();
        if !failed && s.unmoved.load(Ordering::Acquire) <= SPOOL_MAX_UNMOVED {
            return None;
        }
        match self.move_spool() {
            Err(e) => Some(format!("its spool cannot be moved into ledger.db: {e}")),
            Ok(()) if s.unmoved.load(Ordering::Acquire) > SPOOL_MAX_UNMOVED => Some(format!(
                "its spool holds more than {SPOOL_MAX_UNMOVED} bytes not yet moved into ledger.db"
            )),
            Ok(()) => None,
        }
    }

    /// Moves what this process spooled into the chain, in one transaction; replaces the spool file once it is
    /// fully moved and long enough.
    pub fn move_spool(&self) -> Result<()> {
        let Some(s) = self.spool.get() else {
            return Ok(());
        };
        if s.unmoved.load(Ordering::Acquire) == 0 {
            *s.failed.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return Ok(());
        }
        let mut conn = self.conn();
        let mut names = self.names();
        let r = self.move_own(s, &mut conn, &mut names, &[]);
        if r.is_err() {
            *names = Names::default();
        }
        drop(names);
        drop(conn);
        *s.failed.lock().unwrap_or_else(|p| p.into_inner()) =
            r.as_ref().err().map(|e| e.to_string());
        if r.is_ok() {
            self.bound_wal_after_commit();
        }
        r.map(|_| ())
    }

    /// In one transaction: what this process spooled, then `more`; returns `more`'s sequence numbers. Then, if the
    /// spool file is fully moved and long, starts a new one.
    pub(super) fn move_own(
        &self,
        s: &Spool,
        conn: &mut rusqlite::Connection,
        names: &mut Names,
        more: &[EntryRef<'_>],
    ) -> Result<Vec<u64>> {
        let (upto, name, file) = {
            let own = s.own.lock().unwrap_or_else(|p| p.into_inner());
            (
                own.len,
                own.name.clone(),
                own.file.try_clone().map_err(io(&s.dir))?,
            )
        };
        let path = s.dir.join(&name);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // What was spooled goes first, then `more`, all in this transaction.
        let moved = take(&tx, &path, &name, &file, Some(upto), &mut |chunk| {
            Self::append_tx(&tx, names, chunk).map(|_| ())
        })?;
        let seqs = Self::append_tx(&tx, names, more)?;
        tx.commit()?;
        // What is left unmoved is what was written since `upto` (or all of it, if the row went missing).
        let mut own = s.own.lock().unwrap_or_else(|p| p.into_inner());
        let done = moved.unwrap_or(0);
        s.unmoved
            .store(own.len.saturating_sub(done), Ordering::Release);
        if moved.is_some() && done == own.len && own.len >= ROTATE_BYTES {
            // Replaced while appends wait on `own`: nothing is written to the old file after this look.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let fresh = create(&tx, &s.dir, own.made)?;
            tx.execute("DELETE FROM spools WHERE name = ?1", [&name])?;
            tx.commit()?;
            let old = std::mem::replace(&mut *own, fresh);
            let _ = std::fs::remove_file(s.dir.join(&old.name));
        }
        Ok(seqs)
    }

    /// Moves every spool file in `ledger.spool/` — this process's, other running processes', and those of processes
    /// that are gone, which are then deleted — into the chain, in one transaction. Run when the ledger is opened,
    /// so whoever opens it reads every entry acknowledged before. Returns how many entries it moved.
    pub fn move_all_spools(&self) -> Result<usize> {
        let dir = self.spool_dir();
        let list = match std::fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut files = Vec::new();
        for d in list {
            let d = d.map_err(io(&dir))?;
            let Some(name) = d.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = d.path();
            let Ok(file) = std::fs::File::open(&path) else {
                continue;
            };
            // The lock can be taken: its process is gone.
            let gone = file.try_lock().is_ok();
            if let Some(real) = name.strip_prefix(".new-") {
                if gone {
                    // A file its process did not finish making: it holds nothing.
                    files.push((real.to_string(), path, file, gone, true));
                }
                continue;
            }
            files.push((name, path, file, gone, false));
        }
        if files.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn();
        let mut names = self.names();
        conn.execute_batch(SPOOLS_TABLE)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut count = 0;
        let r = (|| -> Result<()> {
            for (name, path, file, gone, unfinished) in &files {
                if !*unfinished {
                    take(&tx, path, name, file, None, &mut |chunk| {
                        count += chunk.len();
                        Self::append_tx(&tx, &mut names, chunk).map(|_| ())
                    })?;
                }
                if *gone {
                    tx.execute("DELETE FROM spools WHERE name = ?1", [name])?;
                }
            }
            Ok(())
        })()
        .and_then(|()| Ok(tx.commit()?));
        if r.is_err() {
            *names = Names::default();
        }
        drop(names);
        drop(conn);
        r?;
        for (_, path, _, gone, _) in &files {
            if *gone {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(count)
    }

    /// Before a read in this process: move what it spooled, so it reads what it wrote. A failure is left for the
    /// next call's check; the read goes on with what is in `ledger.db`.
    pub(super) fn settle(&self) {
        if self.spool_unmoved() > 0 {
            let _ = self.move_spool();
        }
    }

    /// On drop: what is left is moved, and the file removed once empty of unmoved records.
    pub(super) fn close_spool(&self) {
        let Some(s) = self.spool.get() else { return };
        if self.move_spool().is_err() {
            return;
        }
        let conn = self.conn();
        let own = s.own.lock().unwrap_or_else(|p| p.into_inner());
        let moved: Option<i64> = conn
            .query_row(
                "SELECT moved FROM spools WHERE name = ?1",
                [&own.name],
                |r| r.get(0),
            )
            .optional()
            .ok()
            .flatten();
        if moved.is_some_and(|m| m as u64 == own.len)
            && conn
                .execute("DELETE FROM spools WHERE name = ?1", [&own.name])
                .is_ok()
        {
            let _ = std::fs::remove_file(s.dir.join(&own.name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::record::checksum;
    use crate::ledger::tests::call;

    fn spooling(dir: &Path) -> Arc<Ledger> {
        let l = Arc::new(Ledger::open(dir).expect("open"));
        l.start_spool_with(false).expect("spool");
        l
    }

    /// [`Ledger::append_spooled`] of owned entries.
    fn spool(l: &Ledger, entries: &[NewEntry]) -> Result<()> {
        l.append_spooled(entries.iter().map(NewEntry::borrowed))
    }

    /// The `time_ms` of every entry in `ledger.db`, in chain order.
    fn times(l: &Ledger) -> Vec<i64> {
        l.entries(&Default::default())
            .expect("entries")
            .iter()
            .map(|e| e.entry.time_ms)
            .collect()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.join(SPOOL_DIR))
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn spooled_entries_are_chained_for_the_writer_and_for_whoever_opens_the_ledger() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = spooling(dir.path());
        spool(&l, &[call("a", 1), call("a", 2), call("b", 3)]).expect("spool");
        assert!(l.spool_unmoved() > 0);
        // Another opener (another process, for the spool's lock) moves a running process's spool too.
        let other = Ledger::open(dir.path()).expect("open");
        assert_eq!(other.head_seq().expect("head"), 3);
        // The writer reads it, and moving again adds nothing.
        assert_eq!(l.head_seq().expect("head"), 3);
        l.move_spool().expect("move");
        assert_eq!(other.head_seq().expect("head"), 3);
        // A direct append comes after what was spooled before it, in the same transaction.
        spool(&l, &[call("a", 4)]).expect("spool");
        assert_eq!(l.append(&[call("a", 5)]).expect("append"), vec![5]);
        let times = times(&l);
        assert_eq!(times, vec![1, 2, 3, 4, 5]);
        assert_eq!(l.verify().expect("verify").problem, None);
        assert_eq!(files(dir.path()).len(), 1, "{:?}", files(dir.path()));
        drop(other);
        // Closing moves what is left and removes the file.
        spool(&l, &[call("a", 6)]).expect("spool");
        drop(l);
        assert_eq!(files(dir.path()), Vec::<String>::new());
        let again = Ledger::open(dir.path()).expect("open");
        assert_eq!(again.head_seq().expect("head"), 6);
    }

    #[test]
    fn the_mover_takes_the_spool_into_ledger_db_by_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Arc::new(Ledger::open(dir.path()).expect("open"));
        l.start_spool().expect("spool");
        spool(&l, &[call("a", 1), call("a", 2)]).expect("spool");
        // Read with a connection of its own, which moves nothing.
        let raw = rusqlite::Connection::open(dir.path().join("ledger.db")).expect("open");
        let count = || -> i64 {
            raw.query_row("SELECT COUNT(*) FROM entries", [], |r| r.get(0))
                .expect("count")
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while count() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(count(), 2);
        assert_eq!(l.spool_unmoved(), 0);
    }

    #[test]
    fn a_spool_whose_process_is_gone_is_moved_on_open_up_to_its_last_whole_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = {
            let l = Ledger::open(dir.path()).expect("open");
            l.append(&[call("a", 1)]).expect("append");
            let spool_dir = l.spool_dir();
            std::fs::create_dir_all(&spool_dir).expect("dir");
            let conn = l.conn();
            conn.execute_batch(SPOOLS_TABLE).expect("table");
            // What a killed process leaves: whole records and half of one more, its lock gone with it. The first
            // is in the JSON form versions before the binary one spooled.
            let mut own = create(&conn, &spool_dir, 0).expect("create");
            let json = serde_json::to_vec(&call("a", 2)).expect("json");
            let mut buf = (json.len() as u32).to_le_bytes().to_vec();
            buf.extend_from_slice(&checksum(&json));
            buf.extend_from_slice(&json);
            frame(&mut buf, &call("b", 3).borrowed());
            let mut third = Vec::new();
            frame(&mut third, &call("c", 4).borrowed());
            buf.extend_from_slice(&third[..third.len() / 2]);
            own.file.write_all(&buf).expect("write");
            own.name.clone()
        };
        assert_eq!(files(dir.path()), vec![name]);
        let l = Ledger::open(dir.path()).expect("open");
        let plugins: Vec<String> = l
            .entries(&Default::default())
            .expect("entries")
            .into_iter()
            .map(|e| e.entry.plugin)
            .collect();
        assert_eq!(plugins, ["a", "a", "b"]);
        assert_eq!(files(dir.path()), Vec::<String>::new());
        let rows: i64 = l
            .conn()
            .query_row("SELECT COUNT(*) FROM spools", [], |r| r.get(0))
            .expect("rows");
        assert_eq!(rows, 0);
        assert_eq!(l.verify().expect("verify").problem, None);
    }

    #[test]
    fn a_changed_spool_record_is_an_error_and_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = spooling(dir.path());
        spool(&l, &[call("a", 1)]).expect("spool");
        let path = dir.path().join(SPOOL_DIR).join(&files(dir.path())[0]);
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 3;
        bytes[last] ^= 1;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open")
            .write_all_at(&bytes, 0)
            .expect("write");
        let e = l.move_spool().expect_err("a changed record is not moved");
        assert!(e.to_string().contains("checksum does not match"), "{e}");
        assert!(l.spool_trouble().is_some());
        assert_eq!(l.head_seq().expect("head"), 0);
        assert!(path.exists());
    }

    #[test]
    fn a_long_spool_file_is_replaced_once_moved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = spooling(dir.path());
        let first = files(dir.path());
        let batch: Vec<NewEntry> = (0..100).map(|t| call("a", t)).collect();
        let mut n = 0;
        while files(dir.path()) == first {
            spool(&l, &batch).expect("spool");
            n += batch.len() as u64;
            l.move_spool().expect("move");
            assert!(n < 100_000, "never replaced");
        }
        assert_eq!(files(dir.path()).len(), 1);
        spool(&l, &[call("z", 1)]).expect("spool");
        assert_eq!(l.head_seq().expect("head"), n + 1);
        assert_eq!(l.verify().expect("verify").problem, None);
    }

    #[test]
    fn a_spool_longer_than_a_chunk_moves_whole_and_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = spooling(dir.path());
        let batch: Vec<NewEntry> = (0..500).map(|t| call("a", t)).collect();
        let mut n = 0;
        while l.spool_unmoved() <= 2 * CHUNK as u64 {
            let batch: Vec<NewEntry> = batch
                .iter()
                .map(|e| NewEntry {
                    time_ms: e.time_ms + n,
                    ..e.clone()
                })
                .collect();
            spool(&l, &batch).expect("spool");
            n += batch.len() as i64;
        }
        // Another opener moves it all (chunk by chunk, one transaction), then the writer's own move adds nothing.
        let other = Ledger::open(dir.path()).expect("open");
        assert_eq!(other.head_seq().expect("head"), n as u64);
        drop(other);
        // And the writer's move with an entry of its own, past a chunk again: the spool first, then the entry.
        for _ in 0..4 {
            spool(&l, &batch).expect("spool");
        }
        // One record longer than a chunk among them is read whole.
        let mut long = call("a", 0);
        long.data = Some(format!("\"{}\"", "x".repeat(CHUNK)));
        spool(&l, &[long]).expect("spool");
        spool(&l, &batch).expect("spool");
        assert!(l.spool_unmoved() > CHUNK as u64);
        assert_eq!(
            l.append(&[call("b", 0)]).expect("append"),
            vec![n as u64 + 2_502]
        );
        let times = times(&l);
        let mut expected: Vec<i64> = (0..n).collect();
        for _ in 0..4 {
            expected.extend(0..500);
        }
        expected.push(0);
        expected.extend(0..500);
        expected.push(0);
        assert_eq!(times, expected);
        assert_eq!(l.verify().expect("verify").problem, None);
    }
}
