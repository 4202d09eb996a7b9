//! Automatic archiving (`[ledger.archive]` in `plughost.toml`): what `serve` runs on a thread of its own to move old
//! ledger entries to signed archives, the same archive `plughost ledger archive` writes.

use std::sync::Arc;

use plughost_registry::KeyPair;
use plughost_registry::ledger::{Archived, Ledger, LedgerError, MIN_ARCHIVE_AGE_MS};
use plughost_registry::pg::{ArchiveError, PgStore};

use crate::ledger::now_ms;
use crate::settings::AutoArchive;

/// One pass of automatic archiving (`[ledger.archive]` in `plughost.toml`): entries older than `older_than` — or,
/// when the live entries take more than `max_size`, every entry older than the 31 days contracts read — move to a
/// new archive in `dir` (relative to `root`, the data dir), named after its first entry and the time, the cut signed
/// with `key` exactly as `ledger archive` does. `None` when there was nothing to archive.
pub fn auto_archive(
    ledger: &Ledger,
    cfg: &AutoArchive,
    root: &std::path::Path,
    key: &KeyPair,
    now_ms: i64,
) -> Result<Option<Archived>, LedgerError> {
    let by_age =
        now_ms.saturating_sub(i64::try_from(cfg.older_than.as_millis()).unwrap_or(i64::MAX));
    let before = match cfg.max_bytes {
        Some(max) if ledger.live_bytes()? > max => now_ms - MIN_ARCHIVE_AGE_MS,
        _ => by_age.min(now_ms - MIN_ARCHIVE_AGE_MS),
    };
    let out = archive_path(cfg, root, ledger.archived_through()? + 1, now_ms)?;
    ledger.archive(before, key, now_ms, &out)
}

/// The next archive file in `cfg.dir` (relative to `root`, created 0700): named after its first entry and the time.
fn archive_path(
    cfg: &AutoArchive,
    root: &std::path::Path,
    first: u64,
    now_ms: i64,
) -> Result<std::path::PathBuf, LedgerError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = root.join(&cfg.dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| LedgerError::Io {
            path: dir.clone(),
            source,
        })?;
    Ok(dir.join(format!("ledger-{first:012}-{now_ms}.jsonl.gz")))
}

/// One pass of automatic archiving of the cluster's shared chain, by a replica whose data dir says
/// `[ledger.archive]`: entries older than `older_than` move to a new archive in `dir` on this replica, exactly as
/// `plughost --store … ledger archive` does. Every replica with the section runs passes; one that finds a cut
/// stored within `every` (by another replica, usually) does nothing, and two at once store one cut
/// ([`PgStore::ledger_archive`]). `max_size` is refused at start on a shared store (its table does not shrink).
pub fn auto_archive_shared(
    pg: &PgStore,
    cfg: &AutoArchive,
    root: &std::path::Path,
    key: &KeyPair,
    now_ms: i64,
) -> Result<Option<Archived>, ArchiveError> {
    let every = i64::try_from(cfg.every.as_millis()).unwrap_or(i64::MAX);
    let cut = pg.ledger_cut()?;
    if cut
        .as_ref()
        .is_some_and(|c| now_ms.saturating_sub(c.time_ms) < every)
    {
        return Ok(None);
    }
    let by_age =
        now_ms.saturating_sub(i64::try_from(cfg.older_than.as_millis()).unwrap_or(i64::MAX));
    let before = by_age.min(now_ms - MIN_ARCHIVE_AGE_MS);
    let first = cut.map_or(0, |c| c.seq) + 1;
    let out = archive_path(cfg, root, first, now_ms)?;
    pg.ledger_archive(before, key, now_ms, &out)
}

/// Runs [`auto_archive`] (with `shared`, [`auto_archive_shared`] on the cluster's chain) on a thread of its own,
/// off the call path: the first pass within a minute of start-up
/// (at most `every`), then every `every`, until the ledger is dropped. `key` reads the signing key for each pass
/// (a key rotated meanwhile is used from the next pass on); failures are logged and tried again next time.
pub fn spawn_auto_archive(
    ledger: &Arc<Ledger>,
    shared: Option<Arc<PgStore>>,
    cfg: AutoArchive,
    root: std::path::PathBuf,
    key: impl Fn() -> Result<KeyPair, String> + Send + 'static,
) -> std::io::Result<()> {
    let weak = Arc::downgrade(ledger);
    std::thread::Builder::new()
        .name("plughost-ledger-archive".into())
        .spawn(move || {
            let mut wait = cfg.every.min(std::time::Duration::from_secs(60));
            loop {
                std::thread::sleep(wait);
                wait = cfg.every;
                let Some(ledger) = weak.upgrade() else { return };
                let key = match key() {
                    Ok(k) => k,
                    Err(e) => {
                        tracing::warn!(
                            "ledger archive: cannot read the signing key `{}`: {e}",
                            cfg.key
                        );
                        continue;
                    }
                };
                let pass = match &shared {
                    None => auto_archive(&ledger, &cfg, &root, &key, now_ms())
                        .map_err(|e| e.to_string()),
                    Some(pg) => auto_archive_shared(pg, &cfg, &root, &key, now_ms())
                        .map_err(|e| e.to_string()),
                };
                match pass {
                    Ok(Some(a)) => tracing::info!(
                        first = a.first_seq,
                        last = a.last_seq,
                        file = %a.path.display(),
                        "ledger archive: moved {} entries",
                        a.entries
                    ),
                    Ok(None) => tracing::debug!("ledger archive: nothing to archive"),
                    Err(e) => tracing::warn!(
                        "ledger archive failed (tried again in {:?}): {e}",
                        cfg.every
                    ),
                }
            }
        })
        .map(|_| ())
}
