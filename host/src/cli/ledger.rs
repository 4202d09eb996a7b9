//! `plughost ledger`: show, verify, export and checkpoint the usage ledger.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use plughost::Home;
use plughost::ledger::{Kind, Ledger, now_ms};
use plughost::registry::ledger::{Anchor, Entry, Filter, Problem};
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
        #[arg(long)]
        json: bool,
    },
    /// Every entry as JSON lines (with hashes), to stdout or --out.
    Export {
        #[arg(long)]
        out: Option<PathBuf>,
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

fn time_arg(s: &str) -> Result<i64> {
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs * 1000);
    }
    let ago = parse_duration(s)
        .with_context(|| format!("`{s}`: use a duration ago (90m, 2h, 7d) or Unix seconds"))?;
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
            let f = Filter {
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
            };
            let entries = ledger.entries(&f)?;
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
            for e in &entries {
                print_row(e);
            }
            Ok(ExitCode::SUCCESS)
        }
        LedgerCommand::Verify { against, json } => {
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
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
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
                for (file, seq, _) in &anchors {
                    println!(
                        "ok: the chain reaches checkpoint {} (entry {seq})",
                        file.display()
                    );
                }
            }
            Ok(if v.problem.is_some() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        LedgerCommand::Export { out } => {
            let entries = ledger.entries(&Filter::default())?;
            let mut w: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("cannot write {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            for e in &entries {
                serde_json::to_writer(&mut w, e)?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
            if let Some(p) = out {
                eprintln!("exported {} entries to {}", entries.len(), p.display());
            }
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
