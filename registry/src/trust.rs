//! What the registry trusts: the publisher keys in the trust store (trust, revoke, list; the operator's own
//! signing keys), verifying a component's signature against them, where a component came from ([`Provenance`]) and
//! the install checks that follow from it, and the rule that grants stay within what the publisher declared.

use std::path::Path;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::blobs::{self, Digest};
use crate::error::{RegistryError, Result};
use crate::grants::GrantKind;
use crate::keys::{self, KeyPair, PublicKey};
use crate::signature::{self, SignatureFile, SignerStatus, Verified};
use crate::units::now_secs as now;
use crate::{KeyRecord, Registry};

/// Where a component came from: verified against a trusted key, or explicitly allowed unsigned by the operator.
#[derive(Debug, Clone)]
pub enum Provenance {
    Signed(Verified),
    /// Only made by [`Provenance::unsigned`], which the CLI calls for `--allow-unsigned` alone.
    Unsigned {
        digest: Digest,
    },
}

impl Provenance {
    /// The operator chose to install `bytes` without a signature. Recorded, and shown in `list`.
    pub fn unsigned(bytes: &[u8]) -> Provenance {
        Provenance::Unsigned {
            digest: Digest::of(bytes),
        }
    }

    pub fn digest(&self) -> Digest {
        match self {
            Provenance::Signed(v) => v.digest(),
            Provenance::Unsigned { digest } => *digest,
        }
    }

    /// The install checks of where a component came from: `bytes` are the bytes that were verified (or read, for an
    /// unsigned one), and a signature's statement names this `plugin` and `version`. Returns what the component is
    /// declared to need: the statement's capabilities if signed, else the `imports` the host found.
    pub(crate) fn check(
        &self,
        bytes: &[u8],
        plugin: &str,
        version: &str,
        imports: &[String],
    ) -> Result<Vec<String>> {
        match self {
            Provenance::Signed(v) => {
                let s = v.statement();
                if s.plugin != plugin || s.version != version {
                    return Err(RegistryError::StatementMismatch(format!(
                        "the component says it is {} {}, the signature says {} {}",
                        plugin, version, s.plugin, s.version
                    )));
                }
                if v.digest() != Digest::of(bytes) {
                    return Err(RegistryError::StatementMismatch(
                        "the bytes are not the ones that were verified".into(),
                    ));
                }
                Ok(s.capabilities.clone())
            }
            Provenance::Unsigned { digest } => {
                if *digest != Digest::of(bytes) {
                    return Err(RegistryError::StatementMismatch(
                        "the bytes changed after they were read".into(),
                    ));
                }
                Ok(imports.to_vec())
            }
        }
    }
}

impl Registry {
    /// Generates a signing key `name` in the data dir (secret 0600) and returns its public half.
    pub fn generate_key(&self, name: &str) -> Result<PublicKey> {
        let kp = KeyPair::generate(name)?;
        let dir = self.keys_dir();
        kp.write_secret(&dir.join(format!("{name}.key")))?;
        blobs::write_atomic(
            &dir.join(format!("{name}.pub")),
            kp.public().to_line().as_bytes(),
        )?;
        Ok(kp.public())
    }

    /// Loads one of the operator's signing keys by name, or from a path.
    pub fn signing_key(&self, name_or_path: &str) -> Result<KeyPair> {
        let as_path = Path::new(name_or_path);
        if as_path.is_file() {
            return KeyPair::read_secret(as_path);
        }
        keys::check_key_name(name_or_path)?;
        let path = self.keys_dir().join(format!("{name_or_path}.key"));
        if !path.exists() {
            return Err(RegistryError::UnknownKey(name_or_path.to_string()));
        }
        KeyPair::read_secret(&path)
    }

    /// Adds a publisher key to the trust store.
    pub fn trust(&self, key: &PublicKey) -> Result<KeyRecord> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let fp = key.fingerprint();
        let existing: Option<String> = tx
            .query_row("SELECT name FROM keys WHERE fingerprint = ?1", [&fp], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(name) = existing {
            return Err(RegistryError::AlreadyTrusted {
                name,
                fingerprint: fp,
            });
        }
        let taken: bool = tx
            .query_row("SELECT 1 FROM keys WHERE name = ?1", [&key.name], |_| {
                Ok(true)
            })
            .optional()?
            .unwrap_or(false);
        if taken {
            return Err(RegistryError::KeyExists(key.name.clone()));
        }
        let at = now();
        tx.execute(
            "INSERT INTO keys (fingerprint, name, public_key, trusted_at) VALUES (?1, ?2, ?3, ?4)",
            params![fp, key.name, key.bytes().to_vec(), at],
        )?;
        Self::log(&tx, None, "trust", &format!("{} {fp}", key.name))?;
        Self::bump(&tx)?;
        tx.commit()?;
        Ok(KeyRecord {
            name: key.name.clone(),
            fingerprint: fp,
            trusted_at: at,
            revoked_at: None,
        })
    }

    /// Revokes a trusted key (by name or fingerprint). Plugins whose installed version it signed are disabled;
    /// returns their ids.
    pub fn revoke_key(&self, name_or_fp: &str) -> Result<Vec<String>> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (name, fp): (String, String) = tx
            .query_row(
                "SELECT name, fingerprint FROM keys WHERE name = ?1 OR fingerprint = ?1",
                [name_or_fp],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| RegistryError::UnknownKey(name_or_fp.to_string()))?;
        tx.execute(
            "UPDATE keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE fingerprint = ?1",
            params![fp, now()],
        )?;
        let mut stmt = tx.prepare(
            "SELECT p.id FROM plugins p JOIN versions v ON v.seq = p.current_seq
             WHERE v.key_fingerprint = ?1 ORDER BY p.id",
        )?;
        let ids: Vec<String> = stmt
            .query_map([&fp], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        drop(stmt);
        let reason = format!("its publisher key `{name}` ({fp}) was revoked");
        for id in &ids {
            tx.execute(
                "UPDATE plugins SET enabled = 0, disabled_reason = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, reason, now()],
            )?;
        }
        Self::log(&tx, None, "revoke-key", &format!("{name} {fp}"))?;
        Self::bump(&tx)?;
        tx.commit()?;
        Ok(ids)
    }

    /// The trusted keys, revoked ones included.
    pub fn keys(&self) -> Result<Vec<KeyRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT name, fingerprint, trusted_at, revoked_at FROM keys ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(KeyRecord {
                name: r.get(0)?,
                fingerprint: r.get(1)?,
                trusted_at: r.get(2)?,
                revoked_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Verifies `bytes` against a signature using this registry's trust store.
    pub fn verify(&self, bytes: &[u8], sig: &SignatureFile) -> Result<Verified> {
        signature::verify(bytes, sig, |key| {
            let conn = self.conn();
            Ok(conn
                .query_row(
                    "SELECT name, fingerprint, revoked_at FROM keys WHERE public_key = ?1",
                    [key.to_vec()],
                    |r| {
                        Ok(SignerStatus {
                            name: r.get(0)?,
                            fingerprint: r.get(1)?,
                            revoked: r.get::<_, Option<i64>>(2)?.is_some(),
                        })
                    },
                )
                .optional()?)
        })
    }
}

/// Refuses grants for capability kinds the publisher did not declare. Each string is read once into its
/// [`GrantKind`]; only the kinds are compared (a grant's options, such as its origins, are not checked against the
/// declared ones).
pub(crate) fn check_declared(plugin: &str, grants: &[String], declared: &[String]) -> Result<()> {
    let kinds: Vec<GrantKind<'_>> = declared.iter().map(|d| GrantKind::of(d)).collect();
    for g in grants {
        if !kinds.contains(&GrantKind::of(g)) {
            return Err(RegistryError::Undeclared {
                plugin: plugin.to_string(),
                grant: g.clone(),
                declared: if declared.is_empty() {
                    "nothing".into()
                } else {
                    declared.join(", ")
                },
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn declared_checks_compare_capability_kinds_only() {
        let declared = strings(&["http:https://api.example.com", "state:1MiB", "system"]);
        // Another origin or quota of a declared capability passes: only the kind is compared (for now).
        let ok = strings(&["http:https://other.example", "state", " system"]);
        assert!(check_declared("p", &ok, &declared).is_ok());
        let e = check_declared("p", &strings(&["log"]), &declared).expect_err("undeclared");
        assert!(
            matches!(&e, RegistryError::Undeclared { grant, declared, .. }
                if grant == "log" && declared == "http:https://api.example.com, state:1MiB, system"),
            "{e}"
        );
        assert!(matches!(
            check_declared("p", &strings(&["system"]), &[]),
            Err(RegistryError::Undeclared { declared, .. }) if declared == "nothing"
        ));
        // Names this build does not know compare as written.
        assert!(check_declared("p", &strings(&["fs:/tmp"]), &strings(&["fs"])).is_ok());
        assert!(check_declared("p", &strings(&["fs"]), &strings(&["net"])).is_err());
        assert!(check_declared("p", &strings(&["System"]), &declared).is_err());
    }
}
