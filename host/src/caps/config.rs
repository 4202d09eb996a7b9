//! `config`: the operator's settings and secrets for one plugin, and the redactor that keeps secrets out of logs,
//! reports, errors and outputs.

use std::borrow::Cow;
use std::collections::BTreeMap;

use wasmtime::component::{HasData, Linker};

use crate::bindings::config;
use crate::caps::view::CallCtx;
use crate::grants::Capability;

/// Replaces secret values with `[REDACTED]`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a String>) -> Self {
        // Very short values would redact ordinary text; a secret shorter than 4 bytes is not a secret worth the name.
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .filter(|s| s.len() >= 4)
            .cloned()
            .collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    pub fn redact<'s>(&self, text: &'s str) -> Cow<'s, str> {
        if self.secrets.is_empty() || !self.secrets.iter().any(|s| text.contains(s.as_str())) {
            return Cow::Borrowed(text);
        }
        let mut out = text.to_string();
        for s in &self.secrets {
            out = out.replace(s.as_str(), "[REDACTED]");
        }
        Cow::Owned(out)
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
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
