//! What the commands share: opening the registry, JSON and aligned-table printing, and the few text forms
//! (times, publishers, lists, grouped digits) that several commands print the same way.

use anyhow::Result;
use plughost::Home;
use plughost::registry::{PluginRecord, Registry};

pub(super) fn open_registry(home: &Home) -> Result<Registry> {
    Ok(Registry::open(home.root())?)
}

pub(super) fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub(super) fn when(ts: i64) -> String {
    plughost::units::utc_minute(ts)
}

pub(super) fn table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) {
    let mut w = [0usize; N];
    for (i, h) in head.iter().enumerate() {
        w[i] = h.len();
    }
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

pub(super) fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

pub(super) fn publisher_text(r: &PluginRecord) -> String {
    match &r.publisher {
        Some(p) if p.revoked => format!("{} {} (REVOKED)", p.name, p.fingerprint),
        Some(p) => format!("{} {}", p.name, p.fingerprint),
        None => "UNSIGNED (installed with --allow-unsigned)".into(),
    }
}

pub(super) use plughost::units::group_digits;
