//! Secrets sealed at rest in a cluster's shared store: a dump of the database does not reveal them.
//!
//! The key is 32 random bytes the replicas and operator CLIs hold (`--store-key FILE`, `PLUGHOST_STORE_KEY`: a file
//! of 64 hex digits, made by `plughost store keygen`), never the database. A secret is sealed with
//! ChaCha20-Poly1305 (ring's, the one rustls already builds) under a fresh random 96-bit nonce, with the plugin id
//! and the secret's name as associated data, so a sealed value moved to another plugin or name does not open. A
//! value that does not open (wrong key, altered bytes) is an error, never served.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::error::{RegistryError, Result};

/// The format tag in front of every sealed value.
const TAG: &[u8; 4] = b"pks1";

/// The key secrets are sealed with.
pub struct StoreKey {
    key: LessSafeKey,
    /// A fingerprint of the key (not the key), for messages.
    id: String,
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreKey({})", self.id)
    }
}

fn bad(why: impl Into<String>) -> RegistryError {
    RegistryError::StoreKey(why.into())
}

impl StoreKey {
    /// Reads a key file: 64 hex digits (surrounding whitespace ignored).
    pub fn from_file(path: &std::path::Path) -> Result<StoreKey> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read the store key {}: {e}", path.display())))?;
        StoreKey::from_hex(text.trim())
            .map_err(|e| bad(format!("the store key {} {e}", path.display())))
    }

    fn from_hex(hex: &str) -> std::result::Result<StoreKey, String> {
        if hex.len() != 64 {
            return Err(format!(
                "must hold 64 hex digits (32 bytes), it holds {} characters",
                hex.len()
            ));
        }
        let mut raw = [0u8; 32];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                .map_err(|_| "is not hex".to_string())?;
        }
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &raw)
            .map_err(|_| "is not a ChaCha20-Poly1305 key".to_string())?;
        let id = blake3::derive_key("plughost store key id v1", &raw);
        Ok(StoreKey {
            key: LessSafeKey::new(unbound),
            id: format!("{:02x}{:02x}{:02x}{:02x}", id[0], id[1], id[2], id[3]),
        })
    }

    /// A new key, as the 64 hex digits of a key file.
    pub fn generate() -> Result<String> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| RegistryError::Random(e.to_string()))?;
        Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The key's fingerprint (8 hex digits), for messages.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn aad(plugin: &str, name: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(plugin.len() + name.len() + 16);
        for part in [plugin, name] {
            aad.extend_from_slice(&(part.len() as u64).to_le_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }

    /// Seals the secret `name` of `plugin`: `pks1 ‖ nonce ‖ ciphertext ‖ tag`.
    pub fn seal(&self, plugin: &str, name: &str, value: &str) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| RegistryError::Random(e.to_string()))?;
        let mut body = value.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(plugin, name)),
                &mut body,
            )
            .map_err(|_| bad("sealing failed"))?;
        let mut out = Vec::with_capacity(TAG.len() + NONCE_LEN + body.len());
        out.extend_from_slice(TAG);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens what [`StoreKey::seal`] made for the same plugin and name.
    pub fn open(&self, plugin: &str, name: &str, sealed: &[u8]) -> Result<String> {
        let cannot = || {
            bad(format!(
                "the secret `{name}` of plugin `{plugin}` does not open with the store key {} (another key sealed it, \
                 or it was altered)",
                self.id
            ))
        };
        let rest = sealed.strip_prefix(TAG).ok_or_else(cannot)?;
        if rest.len() < NONCE_LEN {
            return Err(cannot());
        }
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| cannot())?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(plugin, name)),
                &mut body,
            )
            .map_err(|_| cannot())?;
        String::from_utf8(plain.to_vec()).map_err(|_| cannot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_plugin_and_name() {
        let k = StoreKey::from_hex(&StoreKey::generate().expect("key")).expect("key");
        let sealed = k.seal("p", "token", "hunter2").expect("seal");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(k.open("p", "token", &sealed).expect("open"), "hunter2");
        assert!(k.open("q", "token", &sealed).is_err(), "another plugin");
        assert!(k.open("p", "other", &sealed).is_err(), "another name");
        let other = StoreKey::from_hex(&StoreKey::generate().expect("key")).expect("key");
        assert!(other.open("p", "token", &sealed).is_err(), "another key");
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(k.open("p", "token", &altered).is_err(), "altered");
        assert_ne!(
            k.seal("p", "token", "hunter2").expect("seal"),
            sealed,
            "fresh nonce"
        );
        assert!(StoreKey::from_hex("abc").is_err());
    }
}
