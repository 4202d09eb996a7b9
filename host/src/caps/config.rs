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

/// Replaces secret values, and every [`WINDOW`]-byte slice of them, with `[REDACTED]`, as they are and as they
/// read in the encodings a value is commonly put through on its way out: base64 (standard and URL-safe, at any
/// offset, as in an HTTP Basic `Authorization` header), hex (either case) and percent-encoding (either case).
/// JSON escapes are handled by [`Redactor::redact_json`], which checks decoded values.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Secrets of 4 to `WINDOW - 1` bytes, matched whole, longest first.
    short: Vec<String>,
    /// Every `WINDOW`-byte slice of the longer secrets, and of every secret's base64 and percent-encoded forms, as
    /// little-endian words, sorted.
    windows: Vec<u64>,
    /// Every `WINDOW`-character slice of the secrets' hex forms, sorted. Eight hex digits are only four bytes of a
    /// secret, so a hex match needs two of them back to back (sixteen digits: eight bytes, as for the others).
    hex: Vec<u64>,
    /// The two-byte pairs a slice can start with, as a bit set (a quick filter before the search).
    starts: Option<Box<[u64; 1024]>>,
}

/// Base64's characters of `secret` that depend on the secret alone, for each of the three offsets it can start at
/// in the encoded bytes, in both alphabets.
fn base64_forms(secret: &[u8]) -> Vec<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let mut forms = Vec::new();
    for k in 0..3usize {
        let mut shifted = vec![0u8; k];
        shifted.extend_from_slice(secret);
        // Characters whose six bits are all the secret's: after the k prefix bytes, before a partial last one.
        let from = (8 * k).div_ceil(6);
        let to = 8 * shifted.len() / 6;
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let e = engine.encode(&shifted);
            if let Some(core) = e.get(from..to) {
                forms.push(core.to_string());
            }
        }
    }
    forms
}

/// `secret` percent-encoded, with upper and with lower case escapes; none when encoding changes nothing.
fn percent_forms(secret: &[u8]) -> Vec<String> {
    let mut forms = Vec::new();
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    if !secret.iter().all(|&b| unreserved(b)) {
        let (mut upper, mut lower) = (String::new(), String::new());
        for &b in secret {
            if unreserved(b) {
                upper.push(char::from(b));
                lower.push(char::from(b));
            } else {
                upper.push_str(&format!("%{b:02X}"));
                lower.push_str(&format!("%{b:02x}"));
            }
        }
        forms.push(upper);
        forms.push(lower);
    }
    forms
}

/// `secret` in hex, lower and upper case.
fn hex_forms(secret: &[u8]) -> [String; 2] {
    let lower: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let upper = lower.to_ascii_uppercase();
    [lower, upper]
}

fn word(b: &[u8]) -> u64 {
    let mut a = [0u8; WINDOW];
    a.copy_from_slice(&b[..WINDOW]);
    u64::from_le_bytes(a)
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a String>) -> Self {
        let mut r = Redactor::default();
        let mut starts = Box::new([0u64; 1024]);
        let mut mark = |w: &[u8]| {
            let pair = usize::from(w[0]) << 8 | usize::from(w[1]);
            starts[pair >> 6] |= 1 << (pair & 63);
        };
        for s in secrets {
            // Very short values would redact ordinary text; a secret shorter than 4 bytes is not worth the name.
            if s.len() < 4 {
                continue;
            }
            let percent = percent_forms(s.as_bytes());
            if s.len() < WINDOW {
                // Whole, and whole in hex (eight to fourteen digits: too few for the pairs below) and
                // percent-encoded.
                r.short.push(s.clone());
                r.short.extend(hex_forms(s.as_bytes()));
                r.short.extend(percent.iter().cloned());
            }
            for form in std::iter::once(s)
                .chain(&base64_forms(s.as_bytes()))
                .chain(&percent)
            {
                for w in form.as_bytes().windows(WINDOW) {
                    r.windows.push(word(w));
                    mark(w);
                }
            }
            for form in hex_forms(s.as_bytes()) {
                for w in form.as_bytes().windows(WINDOW) {
                    r.hex.push(word(w));
                    mark(w);
                }
            }
        }
        // Longest first, so a secret containing another is replaced whole.
        r.short.sort_by_key(|s| std::cmp::Reverse(s.len()));
        r.short.dedup();
        for v in [&mut r.windows, &mut r.hex] {
            v.sort_unstable();
            v.dedup();
        }
        if !r.windows.is_empty() || !r.hex.is_empty() {
            r.starts = Some(starts);
        }
        r
    }

    /// The byte ranges of `text` to redact, merged, in order, on character boundaries.
    fn ranges(&self, text: &str) -> Vec<(usize, usize)> {
        self.byte_ranges(text.as_bytes(), |i| text.is_char_boundary(i))
    }

    /// The byte ranges of `b` to redact, merged, in order, each widened until `boundary` holds at both ends.
    fn byte_ranges(&self, b: &[u8], boundary: impl Fn(usize) -> bool) -> Vec<(usize, usize)> {
        let mut found: Vec<(usize, usize)> = Vec::new();
        if let Some(starts) = &self.starts
            && b.len() >= WINDOW
        {
            let hex_at =
                |i: usize| i + WINDOW <= b.len() && self.hex.binary_search(&word(&b[i..])).is_ok();
            for i in 0..=b.len() - WINDOW {
                let pair = usize::from(b[i]) << 8 | usize::from(b[i + 1]);
                if starts[pair >> 6] >> (pair & 63) & 1 == 0 {
                    continue;
                }
                let w = word(&b[i..]);
                if self.windows.binary_search(&w).is_ok() {
                    found.push((i, i + WINDOW));
                }
                if self.hex.binary_search(&w).is_ok() && hex_at(i + WINDOW) {
                    found.push((i, i + 2 * WINDOW));
                }
            }
        }
        for s in &self.short {
            let s = s.as_bytes();
            found.extend(
                b.windows(s.len())
                    .enumerate()
                    .filter(|(_, w)| *w == s)
                    .map(|(i, _)| (i, i + s.len())),
            );
        }
        if found.is_empty() {
            return found;
        }
        found.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        for (mut start, mut end) in found {
            while !boundary(start) {
                start -= 1;
            }
            while !boundary(end) {
                end += 1;
            }
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    /// Redacts bytes that are not text (a resource's blob): a secret's bytes, or any 8-byte slice of them, are
    /// found among any others and replaced, as in text.
    pub fn redact_bytes(&self, bytes: Vec<u8>) -> Vec<u8> {
        if self.is_empty() {
            return bytes;
        }
        let ranges = self.byte_ranges(&bytes, |_| true);
        if ranges.is_empty() {
            return bytes;
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        for (start, end) in ranges {
            out.extend_from_slice(&bytes[at..start]);
            out.extend_from_slice(b"[REDACTED]");
            at = end;
        }
        out.extend_from_slice(&bytes[at..]);
        out
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
        self.short.is_empty() && self.starts.is_none()
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

    #[test]
    fn redacts_a_secret_among_bytes_that_are_not_text() {
        let secrets = ["tok-123456-long".to_string(), "k3y!5".to_string()];
        let r = Redactor::new(secrets.iter());
        let mut blob = vec![0xff, 0xfe, 0x00];
        blob.extend_from_slice(b"tok-123456-long");
        blob.extend_from_slice(&[0x80, b'k', b'3', b'y', b'!', b'5', 0xc3]);
        assert!(std::str::from_utf8(&blob).is_err());
        let mut want = vec![0xff, 0xfe, 0x00];
        want.extend_from_slice(b"[REDACTED]\x80[REDACTED]\xc3");
        assert_eq!(r.redact_bytes(blob), want);
        let other = vec![0xff, 0x00, 0x01, 0x02];
        assert_eq!(r.redact_bytes(other.clone()), other);
    }

    #[test]
    fn redacts_a_secret_in_base64_hex_and_percent_encoding() {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let secret = "p@ss:w0rd/äöü+long-enough?".to_string();
        let short = "k3y!5".to_string();
        let r = Redactor::new([&secret, &short]);
        let clean = |text: &str| {
            let out = r.redact(text);
            assert!(out.contains("[REDACTED]"), "{text} -> {out}");
            out.into_owned()
        };
        // Basic auth, the secret at each of the three offsets a base64 group can put it at, both alphabets.
        for prefix in ["", "u:", "me:"] {
            let b64 = STANDARD.encode(format!("{prefix}{secret}"));
            let out = clean(&format!("Authorization: Basic {b64}"));
            assert!(
                !out.contains(&b64[b64.len() / 2 - 4..b64.len() / 2 + 4]),
                "{out}"
            );
            let url = URL_SAFE_NO_PAD.encode(format!("{prefix}{secret}"));
            assert!(!clean(&url).contains(&url[4..12]), "{url}");
        }
        // Hex, either case: any 8 bytes of it (16 digits); the short secret whole.
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(clean(&format!("dump {hex} end")), "dump [REDACTED] end");
        assert_eq!(clean(&hex[10..26].to_ascii_uppercase()), "[REDACTED]");
        assert_eq!(clean("key=6b33792135;"), "key=[REDACTED];");
        assert_eq!(clean("key=k3y%215&"), "key=[REDACTED]&");
        // Eight digits are four bytes: not enough to be the secret's.
        assert_eq!(r.redact(&hex[10..18]), &hex[10..18]);
        // Percent-encoding, either case of the escapes.
        assert_eq!(clean("?pw=p%40ss%3Aw0rd%2F"), "?pw=[REDACTED]");
        assert_eq!(clean("?pw=p%40ss%3aw0rd%2f"), "?pw=[REDACTED]");
        // Ordinary text, digests and other base64 stay as they are.
        for benign in [
            "the quick brown fox jumps over the lazy dog",
            "blake3:da10cf82ea21e1c83609655d18ae675893b182496a3f03dcbd245de2f4fc884d",
            "aGVsbG8gd29ybGQsIHRoaXMgaXMgbm90IGEgc2VjcmV0",
        ] {
            assert!(matches!(r.redact(benign), Cow::Borrowed(_)), "{benign}");
        }
    }
}
