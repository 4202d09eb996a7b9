//! `config`: the operator's settings and secrets for one plugin, and the redactor that keeps secrets out of logs,
//! reports, errors, outputs, metrics and ledger events.

use std::borrow::Cow;
use std::collections::BTreeMap;

use wasmtime::component::{HasData, Linker};

use crate::bindings::config;
use crate::caps::view::{CallCtx, truncate_str};
use crate::grants::Capability;

/// The length of the secret slices the redactor looks for: a secret of at least this many bytes is redacted
/// wherever any `WINDOW`-byte slice of it shows (so halves of it, or what a cut left of it, are caught too);
/// a shorter one only whole.
pub const WINDOW: usize = 8;

/// Replaces secret values, and every [`WINDOW`]-byte slice of them, with `[REDACTED]`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Secrets of 4 to `WINDOW - 1` bytes, matched whole, longest first.
    short: Vec<String>,
    /// Every `WINDOW`-byte slice of the longer secrets, as little-endian words, sorted.
    windows: Vec<u64>,
    /// The bytes a slice can start with, as a bit set (a quick filter before the search).
    starts: [u64; 4],
}

fn word(b: &[u8]) -> u64 {
    let mut a = [0u8; WINDOW];
    a.copy_from_slice(&b[..WINDOW]);
    u64::from_le_bytes(a)
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a String>) -> Self {
        let mut r = Redactor {
            short: Vec::new(),
            windows: Vec::new(),
            starts: [0; 4],
        };
        for s in secrets {
            // Very short values would redact ordinary text; a secret shorter than 4 bytes is not worth the name.
            if s.len() < 4 {
                continue;
            }
            if s.len() < WINDOW {
                r.short.push(s.clone());
                continue;
            }
            for w in s.as_bytes().windows(WINDOW) {
                r.windows.push(word(w));
                r.starts[(w[0] >> 6) as usize] |= 1 << (w[0] & 63);
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        r.short.sort_by_key(|s| std::cmp::Reverse(s.len()));
        r.short.dedup();
        r.windows.sort_unstable();
        r.windows.dedup();
        r
    }

    /// The byte ranges of `text` to redact, merged, in order, on character boundaries.
    fn ranges(&self, text: &str) -> Vec<(usize, usize)> {
        let b = text.as_bytes();
        let mut found: Vec<(usize, usize)> = Vec::new();
        if !self.windows.is_empty() && b.len() >= WINDOW {
            for i in 0..=b.len() - WINDOW {
                let starts = self.starts[(b[i] >> 6) as usize] >> (b[i] & 63) & 1 == 1;
                if starts && self.windows.binary_search(&word(&b[i..])).is_ok() {
                    found.push((i, i + WINDOW));
                }
            }
        }
        for s in &self.short {
            found.extend(
                text.match_indices(s.as_str())
                    .map(|(i, m)| (i, i + m.len())),
            );
        }
        if found.is_empty() {
            return found;
        }
        found.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        for (mut start, mut end) in found {
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            while !text.is_char_boundary(end) {
                end += 1;
            }
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    pub fn redact<'s>(&self, text: &'s str) -> Cow<'s, str> {
        if self.is_empty() {
            return Cow::Borrowed(text);
        }
        let ranges = self.ranges(text);
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in ranges {
            out.push_str(&text[at..start]);
            out.push_str("[REDACTED]");
            at = end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }

    /// Whether `text` shows a secret (or a slice of one).
    pub fn reveals(&self, text: &str) -> bool {
        !self.is_empty() && !self.ranges(text).is_empty()
    }

    /// Redacts `text` and cuts it to at most `max` bytes, without redacting more than `max + WINDOW` bytes of it
    /// (what a secret straddling the cut needs): nothing of a secret that starts before the cut is left.
    pub fn redact_cut(&self, mut text: String, max: usize) -> String {
        truncate_str(&mut text, max.saturating_add(WINDOW));
        let mut text = match self.redact(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(o) => o,
        };
        truncate_str(&mut text, max);
        text
    }

    /// Redacts a parsed JSON document in place: string values, object keys, and numbers whose digits show a
    /// secret (those become the string `[REDACTED]`). Returns whether anything changed. Decoded values are what
    /// is checked, so `\u` escapes hide nothing.
    pub fn redact_json(&self, v: &mut serde_json::Value) -> bool {
        use serde_json::Value;
        if self.is_empty() {
            return false;
        }
        match v {
            Value::String(s) => match self.redact(s) {
                Cow::Owned(o) => {
                    *s = o;
                    true
                }
                Cow::Borrowed(_) => false,
            },
            Value::Number(n) => {
                if self.reveals(&n.to_string()) {
                    *v = Value::String("[REDACTED]".into());
                    true
                } else {
                    false
                }
            }
            Value::Array(a) => a.iter_mut().fold(false, |c, v| self.redact_json(v) | c),
            Value::Object(o) => {
                let mut changed = false;
                if o.keys().any(|k| self.reveals(k)) {
                    let old = std::mem::take(o);
                    for (k, v) in old {
                        o.insert(self.redact(&k).into_owned(), v);
                    }
                    changed = true;
                }
                o.values_mut().fold(changed, |c, v| self.redact_json(v) | c)
            }
            Value::Null | Value::Bool(_) => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.short.is_empty() && self.windows.is_empty()
    }
}

/// A plugin's settings and secrets.
#[derive(Debug, Clone, Default)]
pub struct ConfigCtx {
    settings: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    pub(crate) redactor: Redactor,
}

impl ConfigCtx {
    pub fn new(settings: BTreeMap<String, String>, secrets: BTreeMap<String, String>) -> Self {
        let redactor = Redactor::new(secrets.values());
        ConfigCtx {
            settings,
            secrets,
            redactor,
        }
    }

    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    pub fn secret(&self, key: &str) -> Option<&str> {
        self.secrets.get(key).map(String::as_str)
    }
}

/// What the `config` interface sees of the call it serves; its store hands one out through [`ConfigView`].
#[derive(Debug)]
pub struct ConfigHost<'a> {
    pub call: CallCtx<'a>,
    pub config: &'a ConfigCtx,
}

/// How `config` reaches the call it serves (the wasmtime-wasi `WasiView` shape): implemented by the runtime's
/// per-call store data, so this module never sees the store type.
pub trait ConfigView: Send {
    fn config_host(&mut self) -> ConfigHost<'_>;
}

impl config::Host for ConfigHost<'_> {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.call.count(Capability::Config);
        Ok(self.config.setting(&key).map(str::to_string))
    }

    async fn keys(&mut self) -> wasmtime::Result<Vec<String>> {
        self.call.count(Capability::Config);
        Ok(self.config.settings.keys().cloned().collect())
    }

    async fn has_secret(&mut self, key: String) -> wasmtime::Result<bool> {
        self.call.count(Capability::Config);
        Ok(self.config.secrets.contains_key(&key))
    }

    async fn reveal_secret(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        self.call.count(Capability::Config);
        Ok(self.config.secret(&key).map(str::to_string))
    }
}

struct Config;
impl HasData for Config {
    type Data<'a> = ConfigHost<'a>;
}

/// Links `plughost:plugin/config`.
pub fn add_to_linker<T: ConfigView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    config::add_to_linker::<T, Config>(linker, |s| s.config_host())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_secret_occurrence() {
        let secrets = [
            "tok-123456".to_string(),
            "tok-123456-long".to_string(),
            "ab".to_string(),
        ];
        let r = Redactor::new(secrets.iter());
        assert_eq!(
            r.redact("Bearer tok-123456-long and tok-123456"),
            "Bearer [REDACTED] and [REDACTED]"
        );
        assert_eq!(
            r.redact("ab is too short to be a secret"),
            "ab is too short to be a secret"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
    }
}
