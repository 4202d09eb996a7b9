//! Signatures: a publisher signs a *statement* — the component's blake3 digest and the metadata it declares (plugin id,
//! version, the capabilities it requests) — so a signed component cannot be re-labelled or granted more than its
//! publisher declared.
//!
//! The signature file (`<component>.wasm.sig`) is JSON:
//! ```json
//! { "format": "plughost-signature-v1",
//!   "statement": { "plugin": "system-info", "version": "0.1.0", "digest": "blake3:…", "capabilities": ["system"] },
//!   "key_name": "acme", "public_key": "<base64>", "signature": "<base64>" }
//! ```
//! The signed message is `plughost-signature-v1\0` followed by the statement serialized as compact JSON in the field
//! order above, with capabilities sorted.
//!
//! This file is the format and the cryptographic check; which keys are trusted, and what an install checks beyond the
//! signature, is `trust.rs`'s.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::blobs::Digest;
use crate::error::{RegistryError, Result};
use crate::grants::grant_kind;
use crate::keys::{KeyPair, PublicKey, fingerprint_of};

pub const FORMAT: &str = "plughost-signature-v1";

/// What the publisher vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// The plugin id, as its `describe()` returns it.
    pub plugin: String,
    /// The plugin version, as its `describe()` returns it.
    pub version: String,
    /// `blake3:<hex>` of the component bytes.
    pub digest: String,
    /// The grants the publisher requests, spelled as grants (`system`, `http:https://api.example.com`, …).
    pub capabilities: Vec<String>,
}

impl Statement {
    fn message(&self) -> Vec<u8> {
        let mut s = self.clone();
        s.capabilities.sort();
        s.capabilities.dedup();
        let mut m = FORMAT.as_bytes().to_vec();
        m.push(0);
        // Serializing a plain struct of strings cannot fail.
        m.extend(serde_json::to_vec(&s).unwrap_or_default());
        m
    }

    /// The capability kinds (`http` of `http:https://…`) the publisher declared.
    pub fn kinds(&self) -> Vec<&str> {
        let mut k: Vec<&str> = self.capabilities.iter().map(|c| grant_kind(c)).collect();
        k.sort();
        k.dedup();
        k
    }
}

/// A signature file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    pub format: String,
    pub statement: Statement,
    pub key_name: String,
    pub public_key: String,
    pub signature: String,
}

impl SignatureFile {
    /// Signs `bytes` with `key`, declaring `plugin`, `version` and `capabilities`.
    pub fn sign(
        key: &KeyPair,
        bytes: &[u8],
        plugin: &str,
        version: &str,
        mut capabilities: Vec<String>,
    ) -> SignatureFile {
        capabilities.sort();
        capabilities.dedup();
        let statement = Statement {
            plugin: plugin.to_string(),
            version: version.to_string(),
            digest: Digest::of(bytes).to_string(),
            capabilities,
        };
        let sig = key.sign(&statement.message());
        SignatureFile {
            format: FORMAT.to_string(),
            statement,
            key_name: key.name.clone(),
            public_key: B64.encode(key.public().bytes()),
            signature: B64.encode(sig),
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of strings always serializes.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    pub fn parse(text: &str) -> Result<SignatureFile> {
        let f: SignatureFile = serde_json::from_str(text)
            .map_err(|e| RegistryError::MalformedSignature(e.to_string()))?;
        if f.format != FORMAT {
            return Err(RegistryError::MalformedSignature(format!(
                "unknown format `{}` (expected `{FORMAT}`)",
                f.format
            )));
        }
        Ok(f)
    }

    /// The signer's key bytes and fingerprint, as the file claims them (not yet trusted).
    pub fn claimed_key(&self) -> Result<([u8; 32], String)> {
        let bytes = B64
            .decode(&self.public_key)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| {
                RegistryError::MalformedSignature("public_key is not 32 bytes of base64".into())
            })?;
        let fp = fingerprint_of(&bytes);
        Ok((bytes, fp))
    }
}

/// The trust facts about a signer, as the trust store knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerStatus {
    pub name: String,
    pub fingerprint: String,
    pub revoked: bool,
}

/// A component whose signature verified against a trusted, unrevoked key. Only [`verify`] makes one, so holding a
/// `Verified` proves the checks ran.
#[derive(Debug, Clone)]
pub struct Verified {
    statement: Statement,
    digest: Digest,
    signer: SignerStatus,
    signature_json: String,
}

impl Verified {
    pub fn statement(&self) -> &Statement {
        &self.statement
    }
    pub fn digest(&self) -> Digest {
        self.digest
    }
    pub fn signer(&self) -> &SignerStatus {
        &self.signer
    }
    pub fn signature_json(&self) -> &str {
        &self.signature_json
    }
}

/// Verifies `bytes` against `sig`. `trust` looks a public key up in the trust store. Order of checks: the digest
/// (a flipped byte or another component's signature), the key's trust and revocation, then the signature itself.
pub fn verify(
    bytes: &[u8],
    sig: &SignatureFile,
    trust: impl FnOnce(&[u8; 32]) -> Result<Option<SignerStatus>>,
) -> Result<Verified> {
    let actual = Digest::of(bytes);
    let signed = Digest::parse(&sig.statement.digest).ok_or_else(|| {
        RegistryError::MalformedSignature(format!("bad digest `{}`", sig.statement.digest))
    })?;
    if actual != signed {
        return Err(RegistryError::DigestMismatch {
            actual: actual.to_string(),
            signed: signed.to_string(),
            plugin: sig.statement.plugin.clone(),
            version: sig.statement.version.clone(),
        });
    }
    let (key_bytes, fingerprint) = sig.claimed_key()?;
    let signer = match trust(&key_bytes)? {
        None => {
            return Err(RegistryError::UntrustedKey {
                name: sig.key_name.clone(),
                fingerprint,
            });
        }
        Some(s) if s.revoked => {
            return Err(RegistryError::RevokedKey {
                name: s.name,
                fingerprint: s.fingerprint,
            });
        }
        Some(s) => s,
    };
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| RegistryError::BadSignature)?;
    let sig_bytes: [u8; 64] = B64
        .decode(&sig.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(RegistryError::BadSignature)?;
    key.verify_strict(&sig.statement.message(), &Signature::from_bytes(&sig_bytes))
        .map_err(|_| RegistryError::BadSignature)?;
    Ok(Verified {
        statement: sig.statement.clone(),
        digest: actual,
        signer,
        signature_json: serde_json::to_string(sig).unwrap_or_default(),
    })
}

/// Used by [`PublicKey`] consumers that want the claimed signer as a key value.
pub fn claimed_public_key(sig: &SignatureFile) -> Result<PublicKey> {
    let (bytes, _) = sig.claimed_key()?;
    PublicKey::from_bytes(&sig.key_name, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(kp: &KeyPair) -> impl Fn(&[u8; 32]) -> Result<Option<SignerStatus>> + '_ {
        move |k| {
            Ok((*k == kp.public().bytes()).then(|| SignerStatus {
                name: kp.name.clone(),
                fingerprint: kp.public().fingerprint(),
                revoked: false,
            }))
        }
    }

    #[test]
    fn sign_then_verify_and_every_tamper_is_refused() {
        let kp = KeyPair::generate("acme").expect("key");
        let bytes = b"\0asm component bytes".to_vec();
        let sig = SignatureFile::sign(&kp, &bytes, "p", "1.0.0", vec!["system".into()]);
        let parsed = SignatureFile::parse(&sig.to_json()).expect("parse");
        let v = verify(&bytes, &parsed, trusted(&kp)).expect("verifies");
        assert_eq!(v.statement().plugin, "p");

        let mut flipped = bytes.clone();
        flipped[3] ^= 1;
        assert!(matches!(
            verify(&flipped, &parsed, trusted(&kp)),
            Err(RegistryError::DigestMismatch { .. })
        ));

        let mut relabelled = parsed.clone();
        relabelled.statement.capabilities.push("http:*".into());
        assert!(matches!(
            verify(&bytes, &relabelled, trusted(&kp)),
            Err(RegistryError::BadSignature)
        ));
        let mut renamed = parsed.clone();
        renamed.statement.version = "9.9.9".into();
        assert!(matches!(
            verify(&bytes, &renamed, trusted(&kp)),
            Err(RegistryError::BadSignature)
        ));

        let other = KeyPair::generate("mallory").expect("key");
        assert!(matches!(
            verify(&bytes, &parsed, trusted(&other)),
            Err(RegistryError::UntrustedKey { .. })
        ));
        // A signature by another key under the trusted key's name is still untrusted.
        let forged = SignatureFile::sign(&other, &bytes, "p", "1.0.0", vec![]);
        let mut forged = forged;
        forged.key_name = "acme".into();
        assert!(matches!(
            verify(&bytes, &forged, trusted(&kp)),
            Err(RegistryError::UntrustedKey { .. })
        ));
        assert!(SignatureFile::parse("{}").is_err());
    }
}
