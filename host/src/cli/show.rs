//! What the commands share: opening the registry, JSON and aligned-table printing, and the few text forms
//! (times, publishers, lists, grouped digits) that several commands print the same way.

use anyhow::{Context, Result, bail};
use plughost::Home;
use plughost::registry::pg::{PgStore, is_url};
use plughost::registry::{PluginRecord, Registry};

/// The global `--store` (or `PLUGHOST_STORE`), set once at start: every command that opens the registry opens the
/// cluster's.
static STORE: std::sync::OnceLock<(Option<String>, Option<std::path::PathBuf>)> =
    std::sync::OnceLock::new();

/// Sets the global `--store` URL and `--store-key` file.
pub(super) fn set_store(url: Option<String>, key: Option<std::path::PathBuf>) {
    let _ = STORE.set((url, key));
}

/// The global `--store` URL, if one was given.
pub(super) fn store_url() -> Option<String> {
    STORE.get().and_then(|(url, _)| url.clone())
}

/// The global `--store-key`, read, if one was given.
pub(super) fn store_key() -> Result<Option<plughost::registry::StoreKey>> {
    Ok(STORE
        .get()
        .and_then(|(_, key)| key.as_deref())
        .map(plughost::registry::StoreKey::from_file)
        .transpose()?)
}

/// Opens the store named by `url`, which must be a PostgreSQL URL.
pub(super) fn open_store(url: &str) -> Result<PgStore> {
    if !is_url(url) {
        bail!("`{url}` is not a store URL: use postgres://USER@HOST:PORT/DATABASE");
    }
    PgStore::open(url).with_context(|| format!("cannot open the store {}", redact(url)))
}

/// The URL without a password, for messages.
pub(super) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let user = &url[s + 3..at];
            let user = user.split(':').next().unwrap_or(user);
            format!("{}{user}@{}", &url[..s + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// The registry: the data dir's, or with `--store` the cluster's (its index in the shared store, this machine's
/// compile cache and keys in the data dir).
pub(super) fn open_registry(home: &Home) -> Result<Registry> {
    let (url, key) = match STORE.get() {
        Some((url, key)) => (url.as_deref(), key.as_deref()),
        None => (None, None),
    };
    match url {
        Some(url) => {
            let key = key
                .map(plughost::registry::StoreKey::from_file)
                .transpose()?;
            Ok(Registry::open_shared(
                home.root(),
                std::sync::Arc::new(open_store(url)?),
                key,
            )?)
        }
        None => Ok(Registry::open(home.root())?),
    }
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
