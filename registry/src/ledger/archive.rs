//! Retention that keeps the proof: old entries move to a compressed, self-verifying archive file and leave the live
//! ledger, which then starts from a signed cut.
//!
//! An archive is gzip'd JSON lines: a header (format, first and last sequence number, the hash the first entry
//! links to, the count), every entry exactly as `ledger export` writes it, and last the checkpoint of the cut (the
//! last entry's hash, signed like `ledger checkpoint --out`). The same checkpoint is stored in the `cuts` table, so
//! [`Ledger::verify`] walks the live chain from it; [`Ledger::check_archive`] checks a file on its own and
//! [`Ledger::link_archives`] that archives and the live ledger form one chain from the first entry on (a missing,
//! reordered or foreign archive is named).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::chain::entry_hash;
use super::codec::{COLUMNS, Stored};
use super::names::Names;
use super::{ANCHOR_FORMAT, Anchor, Entry, GENESIS, Ledger, LedgerError, Result};
use crate::Window;
use crate::keys::KeyPair;

/// The format tag of an archive's header.
pub const ARCHIVE_FORMAT: &str = "plughost-ledger-archive-v1";
/// Entries younger than this are never archived: contracts' windows (a month at most) read the live ledger.
pub const MIN_ARCHIVE_AGE_MS: i64 = Window::Month.millis() + 86_400_000;
/// Longest line read from an archive (an entry with the largest event is well under it).
const MAX_LINE: u64 = 256 * 1024;
/// Entries deleted per transaction once archived, so the WAL stays bounded and calls keep committing.
const DELETE_CHUNK: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    format: String,
    first_seq: u64,
    last_seq: u64,
    /// The hash the first entry links to (the genesis hash, or the previous archive's last entry).
    prev_hash: String,
    entries: u64,
}

/// What [`Ledger::archive`] moved out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Archived {
    pub first_seq: u64,
    pub last_seq: u64,
    pub entries: u64,
    pub path: PathBuf,
    /// The signed cut, also stored in the live ledger.
    pub cut: Anchor,
}

impl Archived {
    /// The entries after `base` up to the cut's, moved to `out`.
    pub(crate) fn after(base: u64, out: &Path, cut: Anchor) -> Archived {
        Archived {
            first_seq: base + 1,
            last_seq: cut.seq,
            entries: cut.seq - base,
            path: out.to_path_buf(),
            cut,
        }
    }
}

/// What [`Ledger::check_archive`] found in one archive file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveCheck {
    pub path: PathBuf,
    pub first_seq: u64,
    pub last_seq: u64,
    pub entries: u64,
    pub prev_hash: String,
    /// The last entry's hash, as signed.
    pub head: String,
    pub key_name: String,
    /// What is wrong with it, if anything.
    pub problem: Option<String>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> LedgerError + '_ {
    move |source| LedgerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes; `None` at the end.
fn line(r: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.by_ref().take(MAX_LINE).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a line is too long or the file ends mid-line",
        ));
    }
    buf.pop();
    String::from_utf8(buf)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes one archive file, for either store: the header, then each entry (checked: in sequence, linked from the
/// one before, its hash its content's), then the signed cut. It goes to `out.partial`, which is fsynced and renamed
/// to `out` by [`ArchiveWriter::finish`]; dropped before that, the partial file is removed.
#[derive(Debug)]
pub struct ArchiveWriter {
    out: PathBuf,
    /// Emptied once renamed into place, so `drop` has nothing to remove.
    partial: PathBuf,
    w: Option<flate2::write::GzEncoder<std::io::BufWriter<std::fs::File>>>,
    expected: u64,
    last: u64,
    prev: String,
}

impl ArchiveWriter {
    /// Starts the archive of entries `base+1..=last`, the first linking to `base_hash`. Refuses an `out` that
    /// exists.
    pub fn create(out: &Path, (base, base_hash): (u64, &str), last: u64) -> Result<ArchiveWriter> {
        use std::os::unix::fs::OpenOptionsExt;
        if out.exists() {
            return Err(LedgerError::Io {
                path: out.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the file exists"),
            });
        }
        let partial = {
            let mut p = out.as_os_str().to_owned();
            p.push(".partial");
            PathBuf::from(p)
        };
        // Mode 0600, like ledger.db: who called what is not for every local user.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(io(&partial))?;
        let mut w = ArchiveWriter {
            out: out.to_path_buf(),
            w: Some(flate2::write::GzEncoder::new(
                std::io::BufWriter::new(file),
                flate2::Compression::default(),
            )),
            partial,
            expected: base + 1,
            last,
            prev: base_hash.to_string(),
        };
        w.put(&Header {
            format: ARCHIVE_FORMAT.into(),
            first_seq: base + 1,
            last_seq: last,
            prev_hash: base_hash.to_string(),
            entries: last.saturating_sub(base),
        })?;
        Ok(w)
    }

    /// The hash the next entry must link to.
    pub fn prev(&self) -> &str {
        &self.prev
    }

    /// The sequence number the next entry must have.
    pub fn next_seq(&self) -> u64 {
        self.expected
    }

    fn put<T: Serialize>(&mut self, v: &T) -> Result<()> {
        match self.w.as_mut() {
            Some(w) => put(w, v, &self.partial),
            None => Err(LedgerError::Broken { seq: self.expected }),
        }
    }

    /// Adds the next entry. One out of sequence, past `last`, badly linked, or whose hash is not its content's is
    /// [`LedgerError::Broken`]: nothing is archived.
    pub fn push(&mut self, e: &Entry) -> Result<()> {
        if e.seq != self.expected
            || e.seq > self.last
            || e.prev_hash != self.prev
            || entry_hash(e.seq, &e.entry, &e.prev_hash) != e.hash
        {
            return Err(LedgerError::Broken { seq: self.expected });
        }
        self.put(e)?;
        self.expected += 1;
        self.prev.clone_from(&e.hash);
        Ok(())
    }

    /// Ends the archive with the last entry's hash signed by `key` (the cut, returned), fsyncs it and renames it
    /// into place. Every entry up to `last` must have been pushed.
    pub fn finish(mut self, key: &KeyPair, now_ms: i64) -> Result<Anchor> {
        if self.expected != self.last + 1 {
            return Err(LedgerError::Broken { seq: self.expected });
        }
        let cut = Anchor::sign(key, self.last, &self.prev, now_ms);
        self.put(&cut)?;
        let Some(w) = self.w.take() else {
            return Err(LedgerError::Broken { seq: self.expected });
        };
        let file = w
            .finish()
            .and_then(|b| b.into_inner().map_err(|e| e.into_error()))
            .map_err(io(&self.partial))?;
        file.sync_all().map_err(io(&self.partial))?;
        std::fs::rename(&self.partial, &self.out).map_err(io(&self.out))?;
        self.partial = PathBuf::new();
        if let Some(dir) = self.out.parent().and_then(|d| std::fs::File::open(d).ok()) {
            let _ = dir.sync_all();
        }
        Ok(cut)
    }
}

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        if !self.partial.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

impl Ledger {
    /// The last archive cut: the last archived entry and its hash (the live chain continues from it).
    pub(super) fn cut(conn: &Connection) -> Result<Option<(u64, String)>> {
        Ok(Self::cut_anchor(conn)?.map(|a| (a.seq, a.hash)))
    }

    /// The last archive cut, as signed: the live chain continues from it. `None` when nothing was archived.
    pub fn archive_cut(&self) -> Result<Option<Anchor>> {
        self.settle();
        Self::cut_anchor(&self.reader())
    }

    /// The last archived entry's sequence number (0 when nothing was archived).
    pub fn archived_through(&self) -> Result<u64> {
        self.settle();
        Ok(Self::cut(&self.reader())?.map_or(0, |c| c.0))
    }

    /// Bytes of `ledger.db` in use (its pages minus the free ones: space freed by an archive counts as free), not
    /// counting the write-ahead log.
    pub fn live_bytes(&self) -> Result<u64> {
        self.settle();
        let conn = self.reader();
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(((pages - free).max(0) * size) as u64)
    }

    /// The last archive cut, as signed.
    pub(super) fn cut_anchor(conn: &Connection) -> Result<Option<Anchor>> {
        Ok(conn
            .query_row(
                "SELECT seq, hash, time_ms, key_name, public_key, signature FROM cuts ORDER BY seq DESC LIMIT 1",
                [],
                |r| {
                    Ok(Anchor {
                        format: ANCHOR_FORMAT.into(),
                        seq: r.get::<_, i64>(0)? as u64,
                        hash: r.get(1)?,
                        time_ms: r.get(2)?,
                        key_name: r.get(3)?,
                        public_key: r.get(4)?,
                        signature: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    /// Moves every entry made before `before_ms` (the longest prefix of the chain older than it) to a new archive
    /// at `out`, signs the cut with `key` and removes the entries from the live ledger. `None` when there is nothing
    /// to archive. Refuses a cut younger than [`MIN_ARCHIVE_AGE_MS`] and a chain that does not verify up to the
    /// cut; the live ledger is changed only once the archive is on disk (fsynced).
    pub fn archive(
        &self,
        before_ms: i64,
        key: &KeyPair,
        now_ms: i64,
        out: &Path,
    ) -> Result<Option<Archived>> {
        self.settle();
        if before_ms > now_ms - MIN_ARCHIVE_AGE_MS {
            return Err(LedgerError::TooRecent);
        }
        let (base, base_hash) = {
            let conn = self.conn();
            let cut = Self::cut(&conn)?;
            // Entries a previous archive run left behind (it was interrupted while deleting).
            if let Some((seq, _)) = &cut {
                conn.execute("DELETE FROM entries WHERE seq <= ?1", [*seq as i64])?;
            }
            cut.unwrap_or((0, GENESIS.to_string()))
        };
        let last = {
            let read = self.reader();
            let first_young: Option<i64> = read
                .query_row(
                    "SELECT seq FROM entries WHERE seq > ?1 AND time_ms >= ?2 ORDER BY seq LIMIT 1",
                    params![base as i64, before_ms],
                    |r| r.get(0),
                )
                .optional()?;
            match first_young {
                Some(s) => s as u64 - 1,
                None => read
                    .query_row("SELECT MAX(seq) FROM entries", [], |r| {
                        r.get::<_, Option<i64>>(0)
                    })?
                    .map_or(base, |s| s as u64),
            }
        };
        if last <= base {
            return Ok(None);
        }
        let cut = self.write_archive(out, (base, &base_hash), last, key, now_ms)?;
        {
            let mut conn = self.conn();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if Self::cut(&tx)?.map_or(0, |c| c.0) != base {
                return Err(LedgerError::Corrupt {
                    path: self.path().to_path_buf(),
                    message: "another archive ran at the same time".into(),
                });
            }
            tx.execute(
                "INSERT INTO cuts (seq, hash, time_ms, key_name, public_key, signature) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    last as i64,
                    cut.hash,
                    cut.time_ms,
                    cut.key_name,
                    cut.public_key,
                    cut.signature
                ],
            )?;
            tx.execute("DELETE FROM checkpoints WHERE seq <= ?1", [last as i64])?;
            // Per-minute totals older than the cut go with it (contracts' windows are younger).
            tx.execute(
                "DELETE FROM minutes WHERE minute < ?1",
                [before_ms.div_euclid(super::MINUTE_MS)],
            )?;
            tx.commit()?;
        }
        let mut lo = base;
        while lo < last {
            let hi = (lo + DELETE_CHUNK).min(last);
            self.conn().execute(
                "DELETE FROM entries WHERE seq > ?1 AND seq <= ?2",
                params![lo as i64, hi as i64],
            )?;
            self.bound_wal_after_commit();
            lo = hi;
        }
        Ok(Some(Archived::after(base, out, cut)))
    }

    /// Writes entries `base+1..=last` to a new file `out` (see [`ArchiveWriter`]), checking their chain from
    /// `base_hash`, and ends it with the cut: the last entry signed with `key`, which is returned.
    fn write_archive(
        &self,
        out: &Path,
        (base, base_hash): (u64, &str),
        last: u64,
        key: &KeyPair,
        now_ms: i64,
    ) -> Result<Anchor> {
        let mut w = ArchiveWriter::create(out, (base, base_hash), last)?;
        let read = self.reader();
        let mut stmt = read.prepare(&format!(
            "SELECT {COLUMNS} FROM entries WHERE seq > ?1 AND seq <= ?2 ORDER BY seq"
        ))?;
        let mut rows = stmt.query(params![base as i64, last as i64])?;
        let mut names = Names::default();
        while let Some(r) = rows.next()? {
            let e = Stored::read(r)?.entry(&mut names, &read, w.prev().to_string())?;
            w.push(&e)?;
        }
        w.finish(key, now_ms)
    }

    /// Checks one archive on its own: its header, every entry's hash and link from the first, and the signed cut
    /// at its end. An unreadable file is an error; anything wrong inside is the `problem`.
    pub fn check_archive(path: &Path) -> Result<ArchiveCheck> {
        let file = std::fs::File::open(path).map_err(io(path))?;
        let mut r = BufReader::new(flate2::read::GzDecoder::new(file));
        let mut check = ArchiveCheck {
            path: path.to_path_buf(),
            first_seq: 0,
            last_seq: 0,
            entries: 0,
            prev_hash: String::new(),
            head: String::new(),
            key_name: String::new(),
            problem: None,
        };
        check.problem = Self::walk_archive(&mut r, &mut check).err();
        Ok(check)
    }

    fn walk_archive(r: &mut impl BufRead, c: &mut ArchiveCheck) -> Result<(), String> {
        let mut next = |what: &str| -> Result<String, String> {
            line(r)
                .map_err(|e| {
                    format!("it cannot be read ({e}); it is not a ledger archive or is damaged")
                })?
                .ok_or_else(|| format!("it ends before {what} (cut short)"))
        };
        let header: Header = serde_json::from_str(&next("its header")?)
            .map_err(|_| "it is not a ledger archive (no header)".to_string())?;
        if header.format != ARCHIVE_FORMAT {
            return Err(format!(
                "it is not a ledger archive (format `{}`, expected `{ARCHIVE_FORMAT}`)",
                header.format
            ));
        }
        c.first_seq = header.first_seq;
        c.last_seq = header.last_seq;
        c.prev_hash = header.prev_hash.clone();
        let mut prev = header.prev_hash;
        for seq in header.first_seq..=header.last_seq {
            let e: Entry = serde_json::from_str(&next(&format!("entry {seq}"))?)
                .map_err(|e| format!("entry {seq} is not an entry ({e})"))?;
            if e.seq != seq {
                return Err(format!("entry {seq} is missing or out of order"));
            }
            if e.prev_hash != prev {
                return Err(format!(
                    "entry {seq}: its link to the previous entry is broken"
                ));
            }
            if entry_hash(e.seq, &e.entry, &e.prev_hash) != e.hash {
                return Err(format!(
                    "entry {seq}: its content does not match its hash (the entry was modified)"
                ));
            }
            c.entries += 1;
            prev = e.hash;
        }
        let cut: Anchor = serde_json::from_str(&next("its signed cut")?)
            .map_err(|_| "its last line is not the signed cut".to_string())?;
        if let Some(why) = cut.check() {
            return Err(format!("its signed cut: {why}"));
        }
        if cut.seq != header.last_seq || cut.hash != prev {
            return Err(format!(
                "its signed cut (entry {}) is not its last entry {}",
                cut.seq, header.last_seq
            ));
        }
        c.head = prev;
        c.key_name = cut.key_name;
        if next("the end").is_ok() {
            return Err("it goes on after its signed cut".into());
        }
        Ok(())
    }

    /// Checks that `archives` (each checked with [`Ledger::check_archive`]) and this live ledger form one chain
    /// (see [`link_archives`]).
    pub fn link_archives(&self, archives: &mut [ArchiveCheck]) -> Result<Option<String>> {
        self.settle();
        let live = Self::cut(&self.conn())?.unwrap_or((0, GENESIS.to_string()));
        Ok(link_archives(archives, &live))
    }
}

/// Checks that `archives` (each checked with [`Ledger::check_archive`]) and a live ledger whose last cut is `live`
/// (entry and hash; `(0, GENESIS)` when nothing was archived) form one chain: sorted by sequence number, the first
/// starts at entry 1, each continues the one before it, and the live ledger continues the last. The first problem,
/// naming the file(s), if any.
pub fn link_archives(archives: &mut [ArchiveCheck], live: &(u64, String)) -> Option<String> {
    archives.sort_by_key(|a| a.first_seq);
    let mut expected = (1u64, GENESIS.to_string(), None::<PathBuf>);
    for a in archives.iter() {
        if let Some(p) = &a.problem {
            return Some(format!("archive {}: {p}", a.path.display()));
        }
        let after = |e: &Option<PathBuf>| match e {
            Some(p) => format!("archive {}", p.display()),
            None => "the start of the ledger".to_string(),
        };
        if a.first_seq > expected.0 {
            return Some(format!(
                "entries {}..{} are in none of the archives given (an archive between {} and {} is missing)",
                expected.0,
                a.first_seq - 1,
                after(&expected.2),
                a.path.display()
            ));
        }
        if a.first_seq < expected.0 || a.prev_hash != expected.1 {
            return Some(format!(
                "archive {} does not continue {} (entry {} links to another chain)",
                a.path.display(),
                after(&expected.2),
                a.first_seq
            ));
        }
        expected = (a.last_seq + 1, a.head.clone(), Some(a.path.clone()));
    }
    if live.0 + 1 > expected.0 {
        Some(format!(
            "entries {}..{} were archived but are in none of the archives given",
            expected.0, live.0
        ))
    } else if live.0 + 1 < expected.0 || live.1 != expected.1 {
        Some(format!(
            "the live ledger does not continue the last archive given (its cut is at entry {}, the archives end at \
             entry {})",
            live.0,
            expected.0 - 1
        ))
    } else {
        None
    }
}

fn put<T: Serialize>(w: &mut impl Write, v: &T, path: &Path) -> Result<()> {
    serde_json::to_writer(&mut *w, v).map_err(|e| LedgerError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    w.write_all(b"\n").map_err(io(path))
}
