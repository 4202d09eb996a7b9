//! `plughost audit`: the operator's actions, refused installs and denied capability calls, from the hash-chained
//! history (the audit trail; see the registry's `index/audit.rs`). `--verify` walks the whole chain, as `ledger
//! verify` does too.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use plughost::Home;

use super::show::{open_registry, print_json, when};

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only entries since then: a date (2026-10-01), a duration ago (90m, 2h, 7d) or Unix seconds.
    #[arg(long)]
    since: Option<String>,
    /// At most this many of the newest entries.
    #[arg(long, default_value_t = 200)]
    limit: usize,
    /// Walk the whole chain first; a broken chain names the first bad entry and exits 1.
    #[arg(long)]
    verify: bool,
    #[arg(long)]
    json: bool,
}

pub fn audit(home: &Home, args: AuditArgs) -> Result<ExitCode> {
    let reg = open_registry(home)?;
    if args.verify {
        match reg.verify_audit() {
            Ok(c) => eprintln!(
                "ok: the audit trail's {} entries are chained{}",
                c.entries,
                c.head
                    .map(|h| format!(" (head {}…)", &h[..16]))
                    .unwrap_or_default()
            ),
            Err(e @ plughost::registry::RegistryError::AuditBroken { .. }) => {
                println!("BROKEN: {e}");
                return Ok(ExitCode::from(1));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let since = args
        .since
        .as_deref()
        .map(super::ledger::time_arg)
        .transpose()?
        .map(|ms| ms / 1000);
    let entries = reg.audit(since, args.limit.max(1))?;
    if args.json {
        print_json(&entries)?;
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("no entries");
    }
    for e in &entries {
        println!(
            "{:>5}  {}  {:<16} {:<16} {}",
            e.seq,
            when(e.at),
            e.plugin.as_deref().unwrap_or("-"),
            e.action,
            e.detail
        );
    }
    Ok(ExitCode::SUCCESS)
}
