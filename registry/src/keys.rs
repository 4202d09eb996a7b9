//! ed25519 publisher keys: generating a key pair, the key file formats, fingerprints.
//!
//! - public key file (`<name>.pub`), one line: `plughost-ed25519 <base64 of 32 bytes> <name>`
//! - secret key file (`<name>.key`, mode 0600): `plughost-ed25519-secret <base64 of the 32-byte seed> <name>`

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use crate::blobs::write_atomic_mode;
use crate::error::{RegistryError, Result, io};

const PUBLIC_TAG: &str = "plughost-ed25519";
const SECRET_TAG: &str = "plughost-ed25519-secret";

/// Checks a key name: letters, digits, `-`, `_`, `.`; 1–64 characters.
pub fn check_key_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(RegistryError::BadKeyName(name.to_string()))
    }
}

/// A publisher's public key with the name it goes by.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub name: String,
    pub(crate) key: VerifyingKey,
}

impl PublicKey {
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<PublicKey> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| RegistryError::BadPublicKey("the key is not 32 bytes".into()))?;
        let key = VerifyingKey::from_bytes(&arr)
            .map_err(|_| RegistryError::BadPublicKey("not a valid ed25519 point".into()))?;
        Ok(PublicKey {
            name: name.to_string(),
            key,
        })
    }

    pub fn bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// `ed25519:` and the first 16 hex digits of blake3(public key): short enough to read out, long enough to tell
    /// keys apart.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.bytes())
    }

    /// Checks an ed25519 signature over `message` (strict verification).
    pub fn verify_raw(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        self.key
            .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig))
            .is_ok()
    }

    /// The `.pub` file line.
    pub fn to_line(&self) -> String {
        format!("{PUBLIC_TAG} {} {}\n", B64.encode(self.bytes()), self.name)
    }

    /// Parses a `.pub` file.
    pub fn parse(text: &str) -> Result<PublicKey> {
        let line = text.trim();
        let mut parts = line.split_whitespace();
        if parts.next() != Some(PUBLIC_TAG) {
            return Err(RegistryError::BadPublicKey(format!(
                "it does not start with `{PUBLIC_TAG}`"
            )));
        }
        let b64 = parts
            .next()
            .ok_or_else(|| RegistryError::BadPublicKey("the key is missing".into()))?;
        let name = parts
            .next()
            .ok_or_else(|| RegistryError::BadPublicKey("the name is missing".into()))?;
        if parts.next().is_some() {
            return Err(RegistryError::BadPublicKey(
                "extra text after the name".into(),
            ));
        }
        check_key_name(name)?;
        let bytes = B64
            .decode(b64)
            .map_err(|e| RegistryError::BadPublicKey(format!("bad base64: {e}")))?;
        PublicKey::from_bytes(name, &bytes)
    }

    pub fn read(path: &Path) -> Result<PublicKey> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        PublicKey::parse(&text)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.name, self.fingerprint())
    }
}

pub(crate) fn fingerprint_of(bytes: &[u8; 32]) -> String {
    let h = blake3::hash(bytes).to_hex();
    format!("ed25519:{}", &h[..16])
}

/// A publisher's key pair. The secret never leaves this type except into its 0600 file.
pub struct KeyPair {
    pub name: String,
    signing: SigningKey,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({} {})", self.name, self.public().fingerprint())
    }
}

impl KeyPair {
    /// A new key pair from the operating system's random source.
    pub fn generate(name: &str) -> Result<KeyPair> {
        check_key_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| RegistryError::Random(e.to_string()))?;
        Ok(KeyPair {
            name: name.to_string(),
            signing: SigningKey::from_bytes(&seed),
        })
    }

    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.signing.verifying_key(),
        }
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// Writes the secret key file with mode 0600; refuses to overwrite one.
    pub fn write_secret(&self, path: &Path) -> Result<()> {
        if path.exists() {
            return Err(RegistryError::KeyExists(self.name.clone()));
        }
        let text = format!(
            "{SECRET_TAG} {} {}\n",
            B64.encode(self.signing.to_bytes()),
            self.name
        );
        write_atomic_mode(path, text.as_bytes(), 0o600)
    }

    /// Reads a secret key file.
    pub fn read_secret(path: &Path) -> Result<KeyPair> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let mut parts = text.split_whitespace();
        if parts.next() != Some(SECRET_TAG) {
            return Err(RegistryError::BadSecretKey(path.display().to_string()));
        }
        let seed = parts
            .next()
            .and_then(|b| B64.decode(b).ok())
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| RegistryError::BadSecretKey(path.display().to_string()))?;
        let name = parts
            .next()
            .ok_or_else(|| RegistryError::BadSecretKey(path.display().to_string()))?;
        Ok(KeyPair {
            name: name.to_string(),
            signing: SigningKey::from_bytes(&seed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_line_round_trips() {
        let kp = KeyPair::generate("acme").expect("generate");
        let line = kp.public().to_line();
        let back = PublicKey::parse(&line).expect("parse");
        assert_eq!(back, kp.public());
        assert!(back.fingerprint().starts_with("ed25519:"));
        assert!(PublicKey::parse("ssh-ed25519 AAAA acme").is_err());
        assert!(PublicKey::parse("plughost-ed25519 !!! acme").is_err());
    }

    #[test]
    fn secret_file_is_0600_and_round_trips() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("acme.key");
        let kp = KeyPair::generate("acme").expect("generate");
        kp.write_secret(&path).expect("write");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = KeyPair::read_secret(&path).expect("read");
        assert_eq!(back.public(), kp.public());
        assert!(matches!(
            kp.write_secret(&path),
            Err(RegistryError::KeyExists(_))
        ));
    }

    #[test]
    fn key_names_are_checked() {
        assert!(check_key_name("acme-1.prod").is_ok());
        assert!(check_key_name("").is_err());
        assert!(check_key_name("../etc").is_err());
        assert!(check_key_name("a b").is_err());
    }
}
