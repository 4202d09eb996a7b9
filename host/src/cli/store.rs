//! The shared store (`--store postgres://…`, `PLUGHOST_STORE`): `store migrate` moves a data dir's ledger, contract
//! windows, plugin state and registry index (with its components) into it, and the ledger commands that read the
//! whole cluster's record (`ledger show`, `export`, `verify [--against]`, `checkpoint --out`) run against it.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use plughost::Home;
use plughost::ledger::{Ledger, now_ms};
use plughost_registry::pg::{IndexImport, PgStore};

use super::ledger::LedgerCommand;
use super::show::{open_store as open, redact};

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Move this data dir's ledger (verbatim: same entries and hashes), contract windows, plugin state and
    /// registry index (plugins, versions, grants, limits, config, secrets sealed with --store-key, tokens, the audit
    /// trail, the components) into a PostgreSQL store. Resumable; refuses a store that holds a different ledger or
    /// index.
    Migrate {
        /// The store to move into (default: --store / PLUGHOST_STORE).
        #[arg(long, value_name = "URL")]
        to: Option<String>,
    },
    /// Write a new store key (32 random bytes as 64 hex digits, mode 0600) to FILE, for --store-key: secrets in the
    /// shared store are sealed with it. Copy it to every replica and operator; keep it out of the database.
    Keygen { file: std::path::PathBuf },
}

pub fn store(home: &Home, store: Option<&str>, cmd: StoreCommand) -> Result<ExitCode> {
    match cmd {
        StoreCommand::Keygen { file } => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let key = plughost::registry::StoreKey::generate()?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&file)
                .with_context(|| {
                    format!(
                        "cannot create {} (an existing key is never overwritten)",
                        file.display()
                    )
                })?;
            f.write_all(format!("{key}\n").as_bytes())?;
            f.sync_all()?;
            let id = plughost::registry::StoreKey::from_file(&file)?
                .id()
                .to_string();
            println!("wrote the store key {id} to {}", file.display());
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Migrate { to } => {
            let Some(url) = to.as_deref().or(store) else {
                bail!("say where to: store migrate --to postgres://…");
            };
            // Read (and sealed) first: a data dir with secrets and no store key is refused before anything moves.
            let reg = plughost::registry::Registry::open(home.root())?;
            let key = super::show::store_key()?;
            let (index, components) = reg.export_index(key.as_ref())?;
            let pg = open(url)?;
            let ledger = Ledger::open(home.root())?;
            let copied = pg.import_ledger(&ledger, now_ms())?;
            let keys = copy_state(home, &pg)?;
            let v = pg.ledger_verify()?;
            if let Some(p) = v.problem {
                bail!(
                    "the moved ledger does not verify at entry {}: {}",
                    p.seq,
                    p.reason
                );
            }
            if v.archived > 0 {
                println!(
                    "the ledger was archived up to entry {}: the store's chain starts from the same signed cut \
                     (check the archive files with `--store … ledger verify --archive FILE…`)",
                    v.archived
                );
            }
            println!(
                "moved {copied} ledger entries (the store's chain: {} entries, verified) and {keys} state keys to {}",
                v.entries,
                redact(url)
            );
            let what = format!(
                "{} plugins, {} versions, {} settings and secrets, {} tokens, {} audit entries, {} components",
                index.plugins.len(),
                index.versions.len(),
                index.config.len(),
                index.tokens.len(),
                index.history.len(),
                components.len()
            );
            if index.plugins.is_empty() && index.tokens.is_empty() && index.history.is_empty() {
                println!("no registry index to move (nothing was installed here)");
                return Ok(ExitCode::SUCCESS);
            }
            // The components first (by digest, idempotent): the index never names one the store lacks.
            for d in &components {
                pg.index_put_blob(&d.to_string(), &reg.local_blob(d)?)?;
            }
            match pg.import_index(index)? {
                IndexImport::Moved => println!("moved the registry index: {what}"),
                IndexImport::AlreadyThere => {
                    println!("the registry index was moved already ({what}); nothing changed")
                }
                IndexImport::Different(why) => bail!(
                    "{why}; move into a store whose registry index is empty (the ledger and state above were \
                     moved)"
                ),
            }
            println!(
                "trusted publisher keys and signing keys stay in each operator's data dir (the moved versions keep \
                 their publisher's name and fingerprint)"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Copies every plugin's state (state.db's `kv` rows); the store recomputes each plugin's usage.
fn copy_state(home: &Home, pg: &PgStore) -> Result<u64> {
    let path = home.state_db();
    if !path.exists() {
        return Ok(0);
    }
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open {}", path.display()))?;
    let mut stmt = conn.prepare("SELECT plugin, key, value FROM kv ORDER BY plugin, key")?;
    let mut rows = stmt.query([])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let (plugin, key, value): (String, String, Vec<u8>) = (r.get(0)?, r.get(1)?, r.get(2)?);
        if pg.state_set(&plugin, &key, &value, u64::MAX)?.is_err() {
            bail!("state of `{plugin}` did not fit");
        }
        n += 1;
    }
    Ok(n)
}

/// Entries `ledger export` reads from the store per round trip.
const EXPORT_PAGE: u32 = 5_000;

/// The ledger commands on the shared store: `verify` walks the whole cluster's chain (and checks checkpoint files
/// against it, and archives with the live chain), `show` and `export` read it, `checkpoint` signs its head and
/// `archive` moves its old entries to a signed file, with a key of the operator's data dir `home`.
pub fn ledger(home: &Home, url: &str, cmd: LedgerCommand) -> Result<ExitCode> {
    let pg = open(url)?;
    match cmd {
        LedgerCommand::Verify {
            json,
            against,
            archive,
        } => {
            let mut v = pg.ledger_verify()?;
            // Checkpoints kept outside the store: the first one the chain no longer reaches is the problem.
            let mut anchors = Vec::new();
            for file in &against {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let anchor: plughost::registry::ledger::Anchor = serde_json::from_str(&text)
                    .with_context(|| {
                        format!("{} is not a ledger checkpoint file", file.display())
                    })?;
                let failed = pg.ledger_verify_anchor(&anchor)?;
                if v.problem.is_none()
                    && let Some(why) = &failed
                {
                    v.problem = Some(plughost::registry::ledger::Problem {
                        seq: anchor.seq,
                        reason: format!(
                            "checkpoint {} (entry {}, signed by `{}`) failed: {why}",
                            file.display(),
                            anchor.seq,
                            anchor.key_name
                        ),
                    });
                }
                anchors.push((file, anchor.seq));
            }
            // Archives of the shared ledger: each checked on its own, then that they and the live chain are one.
            let (archives, archive_problem) =
                super::ledger::check_archives(&archive, || Ok(pg.ledger_cut()?))?;
            if json {
                let mut out = serde_json::to_value(&v)?;
                super::ledger::archives_json(&mut out, &archives, &archive_problem)?;
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else if let Some(p) = &archive_problem {
                println!("BROKEN: {p}");
            } else if let Some(p) = &v.problem {
                println!("BROKEN at entry {}: {}", p.seq, p.reason);
                println!("  {} entries", v.entries);
            } else {
                println!(
                    "ok: {} entries chained{} (shared store)",
                    v.entries,
                    v.head
                        .as_ref()
                        .map(|(s, h)| format!(" up to {s} (head {}…)", &h[..16]))
                        .unwrap_or_default()
                );
                for (file, seq) in &anchors {
                    println!(
                        "ok: the chain reaches checkpoint {} (entry {seq})",
                        file.display()
                    );
                }
                super::ledger::print_archives(&archives, v.archived);
            }
            Ok(if v.problem.is_some() || archive_problem.is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        LedgerCommand::Checkpoint { key, out } => {
            let Some(out) = out else {
                bail!(
                    "a shared store keeps no checkpoints: add --out FILE and keep the file (check it with \
                     `--store … ledger verify --against FILE`)"
                );
            };
            let kp = super::show::open_registry(home)?.signing_key(&key)?;
            let v = pg.ledger_verify()?;
            if let Some(p) = v.problem {
                bail!(
                    "the ledger is broken at entry {} ({}); not signing it",
                    p.seq,
                    p.reason
                );
            }
            let Some(anchor) = pg.ledger_checkpoint(&kp, now_ms())? else {
                bail!("the cluster's ledger is empty: there is no head to sign");
            };
            println!(
                "signed the cluster's ledger head: entry {} ({}…) with `{}` {}",
                anchor.seq,
                &anchor.hash[..anchor.hash.len().min(16)],
                anchor.key_name,
                kp.public().fingerprint()
            );
            let text = serde_json::to_string_pretty(&anchor)? + "\n";
            std::fs::write(&out, text)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("wrote the checkpoint to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        LedgerCommand::Show {
            plugin,
            tool,
            outcome,
            since,
            until,
            kind,
            limit,
            json,
        } => {
            let f = super::ledger::show_filter(plugin, tool, outcome, since, until, kind, limit)?;
            super::ledger::print_entries(&pg.ledger_entries(&f)?, json)
        }
        LedgerCommand::Archive { before, out, key } => {
            // The same archive file as on SQLite, from the shared chain; replicas keep appending meanwhile.
            let before_ms = super::ledger::time_arg(&before)?;
            let kp = super::show::open_registry(home)?.signing_key(&key)?;
            let archived = pg.ledger_archive(before_ms, &kp, now_ms(), &out)?;
            super::ledger::print_archived(archived, before_ms);
            Ok(ExitCode::SUCCESS)
        }
        LedgerCommand::Export { out } => super::ledger::export(out.as_deref(), |line| {
            // A page at a time: the cluster's ledger is never all in memory. The live chain: from the last cut.
            let (mut after, mut n) = (pg.ledger_archived_through()?, 0);
            loop {
                let page = pg.ledger_entries_after(after, EXPORT_PAGE)?;
                let Some(last) = page.last().map(|e| e.seq) else {
                    return Ok(n);
                };
                for e in page {
                    line(e)?;
                    n += 1;
                }
                after = last;
            }
        }),
        _ => bail!(
            "this ledger command reads the data dir's ledger; on a shared store `ledger show`, `export`, `verify`, \
             `archive` and `checkpoint --out FILE` are available (run it without --store for the local ledger)"
        ),
    }
}
