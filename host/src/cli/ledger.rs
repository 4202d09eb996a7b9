//! `plughost ledger`: show, verify, export and checkpoint the usage ledger.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use plughost::Home;
use plughost::ledger::{Kind, Ledger, now_ms};
use plughost::registry::ledger::{
    Anchor, ArchiveCheck, Archived, Entry, Filter, GENESIS, Problem, link_archives,
};
use plughost::units::parse_duration;

#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// Show entries, oldest first (the newest --limit of them).
    Show {
        #[arg(long)]
        plugin: Option<String>,
        #[arg(long)]
        tool: Option<String>,
        /// `ok`, or an error kind: out-of-fuel, denied, busy, quota…
        #[arg(long)]
        outcome: Option<String>,
        /// Entries at or after this: a duration ago (`90m`, `7d`) or Unix seconds.
        #[arg(long)]
        since: Option<String>,
        /// Entries before this: a duration ago or Unix seconds.
        #[arg(long)]
        until: Option<String>,
        /// Only tool calls, or only plugin events.
        #[arg(long, value_parser = ["call", "event"])]
        kind: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Check the whole hash chain and the signed checkpoints; names the first bad entry. Exit 1 if broken.
    Verify {
        /// A checkpoint file kept outside ledger.db (from `checkpoint --out`); the chain must still reach it
        /// (repeatable).
        #[arg(long, value_name = "FILE")]
        against: Vec<PathBuf>,
        /// Archives from `ledger archive` (repeatable): each is checked, and together with the live ledger they must
        /// form one chain from entry 1 (a missing or foreign archive is named).
        #[arg(long, value_name = "FILE", num_args = 1..)]
        archive: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Move the entries made before DATE to a compressed, self-verifying archive FILE (the entries, their hashes and
    /// the cut signed with your key) and remove them from the live ledger. The last 31 days always stay live.
    Archive {
        /// `YYYY-MM-DD` (UTC), a duration ago (`90d`) or Unix seconds.
        #[arg(long)]
        before: String,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The key that signs the cut.
        #[arg(long)]
        key: String,
    },
    /// Every entry as JSON lines (with hashes), to stdout or --out.
    Export {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// For benchmarks: append N synthetic, correctly chained call entries spread evenly over the last DAYS days.
    #[command(hide = true)]
    Generate {
        #[arg(long)]
        entries: u64,
        #[arg(long, default_value = "synthetic")]
        plugin: String,
        #[arg(long, default_value_t = 30)]
        days: u64,
    },
    /// Sign the current chain head with one of your keys, so the ledger can be verified offline.
    Checkpoint {
        #[arg(long)]
        key: String,
        /// Also write the signed checkpoint to FILE, to keep outside the data dir for `verify --against`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub(super) fn time_arg(s: &str) -> Result<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs * 1000);
    }
    if let Some(ms) = plughost::units::date_ms(s) {
        return Ok(ms);
    }
    let ago = parse_duration(s).with_context(|| {
        format!("`{s}`: use a date (2026-10-01), a duration ago (90m, 2h, 7d) or Unix seconds")
    })?;
    Ok(now_ms() - ago.as_millis() as i64)
}

fn open(home: &Home) -> Result<Ledger> {
    Ok(Ledger::open(home.root())?)
}

pub fn ledger(home: &Home, cmd: LedgerCommand) -> Result<ExitCode> {
    let ledger = open(home)?;
    match cmd {
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
            let f = show_filter(plugin, tool, outcome, since, until, kind, limit)?;
            print_entries(&ledger.entries(&f)?, json)
        }
        LedgerCommand::Verify {
            against,
            archive,
            json,
        } => {
            let mut v = ledger.verify()?;
            // Checkpoints kept outside ledger.db: the first one the chain no longer reaches is the problem.
            let mut anchors = Vec::new();
            for file in &against {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                let anchor: Anchor = serde_json::from_str(&text).with_context(|| {
                    format!("{} is not a ledger checkpoint file", file.display())
                })?;
                let failed = ledger.verify_anchor(&anchor)?;
                if v.problem.is_none()
                    && let Some(why) = &failed
                {
                    v.problem = Some(Problem {
                        seq: anchor.seq,
                        reason: format!(
                            "checkpoint {} (entry {}, signed by `{}`) failed: {why}",
                            file.display(),
                            anchor.seq,
                            anchor.key_name
                        ),
                    });
                }
                anchors.push((file, anchor.seq, failed));
            }
            let (archives, archive_problem) =
                check_archives(&archive, || Ok(ledger.archive_cut()?))?;
            // The audit trail (operator actions) is a second chain, checked by the same command.
            let audit = match super::show::open_registry(home)?.verify_audit() {
                Ok(c) => Ok(c),
                Err(e @ plughost::registry::RegistryError::AuditBroken { .. }) => {
                    Err(e.to_string())
                }
                Err(e) => return Err(e.into()),
            };
            if json {
                let mut out = serde_json::to_value(&v)?;
                out["audit"] = match &audit {
                    Ok(c) => serde_json::to_value(c)?,
                    Err(why) => serde_json::json!({ "problem": why }),
                };
                archives_json(&mut out, &archives, &archive_problem)?;
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else if let Err(why) = &audit {
                println!("BROKEN: {why}");
            } else if let Some(p) = &archive_problem {
                println!("BROKEN: {p}");
            } else if let Some(p) = &v.problem {
                println!("BROKEN at entry {}: {}", p.seq, p.reason);
                println!("  {} entries, {} checkpoints", v.entries, v.checkpoints);
            } else {
                println!(
                    "ok: {} entries chained{}, {} signed checkpoints verified",
                    v.entries,
                    v.head
                        .as_ref()
                        .map(|(s, h)| format!(" up to {s} (head {}…)", &h[..16]))
                        .unwrap_or_default(),
                    v.checkpoints
                );
                if let Ok(c) = &audit {
                    println!("ok: the audit trail's {} entries are chained", c.entries);
                }
                for (file, seq, _) in &anchors {
                    println!(
                        "ok: the chain reaches checkpoint {} (entry {seq})",
                        file.display()
                    );
                }
                print_archives(&archives, v.archived);
            }
            Ok(
                if v.problem.is_some() || archive_problem.is_some() || audit.is_err() {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                },
            )
        }
        LedgerCommand::Export { out } => export(out.as_deref(), |line| ledger.each_entry(line)),
        LedgerCommand::Generate {
            entries,
            plugin,
            days,
        } => {
            generate(&ledger, entries, &plugin, days)?;
            Ok(ExitCode::SUCCESS)
        }
        LedgerCommand::Archive { before, out, key } => {
            let before_ms = time_arg(&before)?;
            let registry = super::show::open_registry(home)?;
            let kp = registry.signing_key(&key)?;
            print_archived(ledger.archive(before_ms, &kp, now_ms(), &out)?, before_ms);
            Ok(ExitCode::SUCCESS)
        }
        LedgerCommand::Checkpoint { key, out } => {
            let registry = super::show::open_registry(home)?;
            let kp = registry.signing_key(&key)?;
            let v = ledger.verify()?;
            if let Some(p) = v.problem {
                bail!(
                    "the ledger is broken at entry {} ({}); not signing it",
                    p.seq,
                    p.reason
                );
            }
            let c = ledger.checkpoint(&kp, now_ms())?;
            println!(
                "signed the ledger head: entry {} ({}…) with `{}` {}",
                c.seq,
                &c.hash[..16],
                c.key_name,
                c.fingerprint
            );
            if let Some(out) = out {
                let text = serde_json::to_string_pretty(&c.anchor)? + "\n";
                std::fs::write(&out, text)
                    .with_context(|| format!("cannot write {}", out.display()))?;
                println!("wrote the checkpoint to {}", out.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `ledger export`: every entry `each` hands over, as one JSON line, to `out` or stdout.
/// `ledger verify --archive FILE…` on either store: each file checked on its own, then, when any were given, that
/// they and a live chain whose last archive cut is `live()` form one chain. The checks and the first problem.
pub(super) fn check_archives(
    files: &[PathBuf],
    live: impl FnOnce() -> Result<Option<Anchor>>,
) -> Result<(Vec<ArchiveCheck>, Option<String>)> {
    let mut archives = files
        .iter()
        .map(|f| Ledger::check_archive(f))
        .collect::<Result<Vec<_>, _>>()?;
    if files.is_empty() {
        return Ok((archives, None));
    }
    let live = live()?.map_or((0, GENESIS.to_string()), |a| (a.seq, a.hash));
    let problem = link_archives(&mut archives, &live);
    Ok((archives, problem))
}

/// Adds what [`check_archives`] found to `verify --json`'s output, when archives were given.
pub(super) fn archives_json(
    out: &mut serde_json::Value,
    archives: &[ArchiveCheck],
    problem: &Option<String>,
) -> Result<()> {
    if !archives.is_empty() {
        out["archives"] = serde_json::to_value(archives)?;
        out["archive_problem"] = serde_json::to_value(problem)?;
    }
    Ok(())
}

/// The archives `ledger verify --archive` checked (all fine) and where the live chain starts, for either store.
pub(super) fn print_archives(archives: &[ArchiveCheck], archived: u64) {
    for a in archives {
        println!(
            "ok: archive {}: entries {}..{} chained, cut signed by `{}`",
            a.path.display(),
            a.first_seq,
            a.last_seq,
            a.key_name
        );
    }
    if archived > 0 {
        println!(
            "  the live chain starts after entry {archived} (archived){}",
            if archives.is_empty() {
                "; check the archives with --archive FILE…"
            } else {
                ", where the last archive ends"
            }
        );
    }
}

/// What `ledger archive` did, for either store.
pub(super) fn print_archived(archived: Option<Archived>, before_ms: i64) {
    match archived {
        None => println!(
            "nothing to archive: no entry before {}",
            plughost::units::rfc3339_ms(before_ms)
        ),
        Some(a) => println!(
            "archived entries {}..{} ({} entries) to {}; the cut (entry {}, {}…) is signed by `{}`",
            a.first_seq,
            a.last_seq,
            a.entries,
            a.path.display(),
            a.cut.seq,
            &a.cut.hash[..16],
            a.cut.key_name
        ),
    }
}

pub(super) fn export(
    out: Option<&std::path::Path>,
    each: impl FnOnce(&mut dyn FnMut(Entry) -> Result<()>) -> Result<u64>,
) -> Result<ExitCode> {
    let mut w: Box<dyn Write> = match out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let n = each(&mut |e: Entry| -> Result<()> {
        serde_json::to_writer(&mut w, &e)?;
        w.write_all(b"\n")?;
        Ok(())
    })?;
    w.flush()?;
    if let Some(p) = out {
        eprintln!("exported {n} entries to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// What `ledger show`'s options select.
pub(super) fn show_filter(
    plugin: Option<String>,
    tool: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    kind: Option<String>,
    limit: usize,
) -> Result<Filter> {
    Ok(Filter {
        plugin,
        tool,
        outcome,
        since_ms: since.as_deref().map(time_arg).transpose()?,
        until_ms: until.as_deref().map(time_arg).transpose()?,
        kind: kind
            .as_deref()
            .map(|k| if k == "call" { Kind::Call } else { Kind::Event }),
        limit: Some(limit),
        ..Default::default()
    })
}

/// `ledger show`'s output: the entries as JSON, or a table.
pub(super) fn print_entries(entries: &[Entry], json: bool) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("no entries");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>6}  {:<17}  {:<24}  {:<14}  {:>9}  {:>11}  {:>9}  CALLER",
        "SEQ", "TIME (UTC)", "PLUGIN/TOOL", "OUTCOME", "TIME", "FUEL", "MEMORY"
    );
    for e in entries {
        print_row(e);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_row(e: &Entry) {
    let x = &e.entry;
    let what = match x.kind {
        Kind::Call => format!("{}/{}", x.plugin, x.tool),
        Kind::Event => format!("{}: {}", x.plugin, x.event.as_deref().unwrap_or("?")),
    };
    let caller = plughost::ledger::caller_text(&x.caller);
    println!(
        "{:>6}  {:<17}  {:<24}  {:<14}  {:>9}  {:>11}  {:>9}  {}",
        e.seq,
        super::show::when(x.time_ms / 1000),
        what,
        x.outcome,
        plughost::units::human_duration(std::time::Duration::from_micros(x.duration_us)),
        x.fuel_used,
        plughost::units::human_bytes(x.peak_memory),
        caller
    );
}

/// Appends `n` synthetic call entries of `plugin`, oldest first, evenly spread over the last `days` days, in
/// transactions of 10,000 (the ledger chains them as any others).
fn generate(ledger: &Ledger, n: u64, plugin: &str, days: u64) -> Result<()> {
    use plughost::ledger::{Caller, NewEntry};
    const BATCH: u64 = 10_000;
    let span = (days * 86_400_000) as i64;
    let start = now_ms() - span;
    let step = span / n.max(1) as i64;
    let digest = format!("blake3:{}", blake3::hash(plugin.as_bytes()).to_hex());
    let mut done = 0u64;
    while done < n {
        let batch: Vec<NewEntry> = (done..n.min(done + BATCH))
            .map(|i| NewEntry {
                time_ms: start + i as i64 * step,
                kind: Kind::Call,
                plugin: plugin.to_string(),
                version: "0.1.0".into(),
                digest: digest.clone(),
                tool: "echo".into(),
                caller: Caller {
                    transport: "http".into(),
                    session: Some(format!("session-{}", i % 64)),
                    principal: None,
                },
                duration_us: 180,
                fuel_used: 4_960,
                peak_memory: 1_114_112,
                outcome: "ok".into(),
                args_digest: Some(plughost::registry::ledger::args_digest(&i.to_string())),
                cost: 1,
                event: None,
                data: None,
            })
            .collect();
        done += batch.len() as u64;
        ledger.append(&batch)?;
    }
    eprintln!("appended {n} entries of `{plugin}`");
    Ok(())
}
