//! What the registry trusts: the publisher keys in the trust store (trust, revoke, list; the operator's own
//! signing keys), verifying a component's signature against them, where a component came from ([`Provenance`]) and
//! the install checks that follow from it, and the rule that grants stay within what the publisher declared.

use std::path::Path;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::blobs::{self, Digest};
use crate::error::{RegistryError, Result};
use crate::grants::{Declaration, Grant, GrantKind, Uncovered};
use crate::keys::{self, KeyPair, PublicKey};
use crate::signature::{self, SignatureFile, SignerStatus, Verified};
use crate::units::{format_bytes, now_secs as now};
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
        if let Some(pg) = &self.shared {
            // The key is revoked in this operator's trust store first (a later install from it is refused here),
            // then the plugins it signed are disabled cluster-wide; running it again finishes a half-done one.
            Self::log(&tx, None, "revoke-key", &format!("{name} {fp}"))?;
            tx.commit()?;
            drop(conn);
            return Ok(pg.index_revoke_key(&fp, &name)?);
        }
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

/// Refuses grants outside what was declared. For a signed component the declaration is the publisher's statement,
/// and each grant must be covered by it at its level of detail ([`Declaration::check`], [`Grant::covered_by`]): origins,
/// container groups and images, state quota; a declared string that does not parse covers nothing. For an unsigned
/// component nobody declared a scope: `declared` is the capabilities it imports, and only the capability kind is
/// compared.
///
/// Grants already held (`held`, compared as stored) are not checked again: a plugin installed before a rule was
/// tightened keeps working, and keeps its grants, until the operator changes them.
pub(crate) fn check_declared(
    plugin: &str,
    grants: &[String],
    held: &[String],
    declared: &[String],
    signed: bool,
) -> Result<()> {
    let undeclared = |g: &str| RegistryError::Undeclared {
        plugin: plugin.to_string(),
        grant: g.to_string(),
        declared: if declared.is_empty() {
            "nothing".into()
        } else {
            declared.join(", ")
        },
    };
    let new = grants.iter().filter(|g| !held.contains(g));
    if !signed {
        let kinds: Vec<GrantKind<'_>> = declared.iter().map(|d| GrantKind::of(d)).collect();
        return match new.into_iter().find(|g| !kinds.contains(&GrantKind::of(g))) {
            Some(g) => Err(undeclared(g)),
            None => Ok(()),
        };
    }
    let declaration = Declaration::parse(declared);
    for g in new {
        let grant: Grant = g.parse().map_err(|source| RegistryError::BadGrant {
            grant: g.clone(),
            source,
        })?;
        match declaration.check(&grant) {
            Ok(()) => {}
            Err(Uncovered::NotDeclared) => return Err(undeclared(g)),
            Err(Uncovered::Outside(d)) => {
                return Err(RegistryError::OutsideDeclared {
                    plugin: plugin.to_string(),
                    grant: g.clone(),
                    capability: grant.capability().name().to_string(),
                    // `state` alone means 16 MiB: say so.
                    declared: match d {
                        Grant::State { quota_bytes } => {
                            format!("state:{}", format_bytes(quota_bytes))
                        }
                        d => d.to_string(),
                    },
                });
            }
            Err(Uncovered::Unreadable { declared, reason }) => {
                return Err(RegistryError::UnreadableDeclaration {
                    plugin: plugin.to_string(),
                    grant: g.clone(),
                    declared,
                    reason: reason.to_string(),
                });
            }
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
    fn signed_declarations_bound_grants_at_their_level_of_detail() {
        let declared = strings(&["http:https://api.example.com", "state:1MiB", "system"]);
        let check = |g: &[&str]| check_declared("p", &strings(g), &[], &declared, true);
        assert!(check(&["http:https://api.example.com", "state:512KiB", " system"]).is_ok());
        let e = check(&["http:https://other.example"]).expect_err("another origin");
        assert!(
            matches!(&e, RegistryError::OutsideDeclared { grant, capability, declared, .. }
                if grant == "http:https://other.example" && capability == "http"
                    && declared == "http:https://api.example.com"),
            "{e}"
        );
        assert!(matches!(
            check(&["state"]),
            Err(RegistryError::OutsideDeclared { declared, .. }) if declared == "state:1MiB"
        ));
        let e = check(&["log"]).expect_err("undeclared");
        assert!(
            matches!(&e, RegistryError::Undeclared { grant, declared, .. }
                if grant == "log" && declared == "http:https://api.example.com, state:1MiB, system"),
            "{e}"
        );
        assert!(matches!(
            check_declared("p", &strings(&["system"]), &[], &[], true),
            Err(RegistryError::Undeclared { declared, .. }) if declared == "nothing"
        ));
        assert!(matches!(
            check(&["http:*"]),
            Err(RegistryError::BadGrant { .. })
        ));
        // A declaration that does not parse covers nothing, and the error names it.
        let e = check_declared(
            "p",
            &strings(&["http:https://a.org"]),
            &[],
            &strings(&["http:*"]),
            true,
        )
        .expect_err("unreadable");
        assert!(
            matches!(&e, RegistryError::UnreadableDeclaration { declared, .. } if declared == "http:*"),
            "{e}"
        );
        // Grants already held are not checked again (a plugin installed under an older rule keeps them).
        let held = strings(&["http:https://other.example"]);
        assert!(check_declared("p", &held, &held, &declared, true).is_ok());
        assert!(
            check_declared(
                "p",
                &strings(&["http:https://third.example"]),
                &held,
                &declared,
                true
            )
            .is_err()
        );
    }

    #[test]
    fn unsigned_components_compare_capability_kinds_only() {
        // Nobody declared a scope: `declared` is the imports.
        let imports = strings(&["http", "state"]);
        let check = |g: &[&str]| check_declared("p", &strings(g), &[], &imports, false);
        assert!(check(&["http:https://anything.example", "state:1GiB"]).is_ok());
        assert!(matches!(
            check(&["system"]),
            Err(RegistryError::Undeclared { .. })
        ));
    }
}
