//! Automatic archiving (`[ledger.archive]` in `plughost.toml`): what `serve` runs on a thread of its own to move old
//! ledger entries to signed archives, the same archive `plughost ledger archive` writes.

use std::sync::Arc;

use plughost_registry::KeyPair;
use plughost_registry::ledger::{Archived, Ledger, LedgerError, MIN_ARCHIVE_AGE_MS};

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
    let dir = root.join(&cfg.dir);
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| LedgerError::Io {
                path: dir.clone(),
                source,
            })?;
    }
    let first = ledger.archived_through()? + 1;
    let out = dir.join(format!("ledger-{first:012}-{now_ms}.jsonl.gz"));
    ledger.archive(before, key, now_ms, &out)
}

/// Runs [`auto_archive`] on a thread of its own, off the call path: the first pass within a minute of start-up
/// (at most `every`), then every `every`, until the ledger is dropped. `key` reads the signing key for each pass
/// (a key rotated meanwhile is used from the next pass on); failures are logged and tried again next time.
pub fn spawn_auto_archive(
    ledger: &Arc<Ledger>,
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
                match auto_archive(&ledger, &cfg, &root, &key, now_ms()) {
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
