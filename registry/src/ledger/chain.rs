//! The hash chain: the canonical encoding each entry's hash covers, appending entries (the chain head is read inside
//! the write transaction), walking the chain to find the first break, and checkpoints (the head signed with an
//! ed25519 key).

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::codec::{COLUMNS, INSERT, Packed, Stored, unpack_hash};
use super::names::Names;
use super::{EntryRef, GENESIS, Ledger, LedgerError, NewEntry, Result};
use crate::keys::{KeyPair, PublicKey};

const DOMAIN: &[u8] = b"plughost-ledger-v1\0";
const CHECKPOINT_DOMAIN: &[u8] = b"plughost-ledger-checkpoint-v1\0";

/// The canonical encoding hashed into an entry: a domain tag, then every field in a fixed order, each
/// length-prefixed (strings) or fixed-width (numbers), with a presence byte for optional fields.
pub(crate) fn entry_hash<'a>(seq: u64, e: impl Into<EntryRef<'a>>, prev_hash: &str) -> String {
    entry_hash_raw(seq, e, prev_hash).to_hex().to_string()
}

/// [`entry_hash`] as the 32 bytes it is stored as (the appender's form: no hex string to build and parse back).
fn entry_hash_raw<'a>(seq: u64, e: impl Into<EntryRef<'a>>, prev_hash: &str) -> blake3::Hash {
    let e: EntryRef<'_> = e.into();
    let mut h = blake3::Hasher::new();
    h.update(DOMAIN);
    h.update(&seq.to_le_bytes());
    let s = |h: &mut blake3::Hasher, v: &str| {
        h.update(&(v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    };
    let o = |h: &mut blake3::Hasher, v: Option<&str>| match v {
        Some(v) => {
            h.update(&[1]);
            h.update(&(v.len() as u64).to_le_bytes());
            h.update(v.as_bytes());
        }
        None => {
            h.update(&[0]);
        }
    };
    s(&mut h, prev_hash);
    h.update(&e.time_ms.to_le_bytes());
    s(&mut h, e.kind.as_str());
    s(&mut h, e.plugin);
    s(&mut h, e.version);
    s(&mut h, e.digest);
    s(&mut h, e.tool);
    s(&mut h, e.transport);
    o(&mut h, e.session);
    o(&mut h, e.principal);
    h.update(&e.duration_us.to_le_bytes());
    h.update(&e.fuel_used.to_le_bytes());
    h.update(&e.peak_memory.to_le_bytes());
    s(&mut h, e.outcome);
    o(&mut h, e.args_digest);
    h.update(&e.cost.to_le_bytes());
    o(&mut h, e.event);
    o(&mut h, e.data);
    h.finalize()
}

fn checkpoint_message(seq: u64, hash: &str, time_ms: i64) -> Vec<u8> {
    let mut m = CHECKPOINT_DOMAIN.to_vec();
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend_from_slice(hash.as_bytes());
    m.extend_from_slice(&time_ms.to_le_bytes());
    m
}

/// What [`Ledger::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Live entries walked (after the archive cut).
    pub entries: u64,
    pub head: Option<(u64, String)>,
    pub checkpoints: u64,
    /// Entries up to this sequence number were moved to archives (0: none); the live chain starts after it.
    pub archived: u64,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

/// A broken chain: the first sequence number where it breaks, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub seq: u64,
    pub reason: String,
}

/// A signed chain head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: String,
    pub time_ms: i64,
    pub key_name: String,
    pub fingerprint: String,
    /// The same checkpoint as a file to keep outside `ledger.db` (see [`Ledger::verify_anchor`]).
    pub anchor: Anchor,
}

/// A signed checkpoint kept outside `ledger.db` (`plughost ledger checkpoint --out FILE`): whoever can rewrite the
/// database cannot take it back, so a chain cut or rewritten below it is found even when the `checkpoints` rows went
/// with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Always `plughost-ledger-checkpoint-v1`.
    pub format: String,
    pub seq: u64,
    pub hash: String,
    pub time_ms: i64,
    pub key_name: String,
    /// The signer's ed25519 public key, hex.
    pub public_key: String,
    /// The signature over the same message as a stored checkpoint's, hex.
    pub signature: String,
}

/// Where a live chain that continues `cut` (its last archive cut, if any) starts, for either store's verify: the
/// entry before its first, the hash that first entry links to, and a problem when the cut's signature does not
/// verify.
pub(crate) fn live_start(cut: Option<&Anchor>) -> (u64, String, Option<Problem>) {
    match cut {
        None => (0, GENESIS.to_string(), None),
        Some(a) => (
            a.seq,
            a.hash.clone(),
            a.check().map(|why| Problem {
                seq: a.seq,
                reason: format!("the archive cut at entry {}: {why}", a.seq),
            }),
        ),
    }
}

/// The format tag of an [`Anchor`].
pub const ANCHOR_FORMAT: &str = "plughost-ledger-checkpoint-v1";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Anchor {
    /// Signs the entry `seq` with hash `hash` at `time_ms`.
    pub(crate) fn sign(key: &KeyPair, seq: u64, hash: &str, time_ms: i64) -> Anchor {
        Anchor {
            format: ANCHOR_FORMAT.into(),
            seq,
            hash: hash.to_string(),
            time_ms,
            key_name: key.name.clone(),
            public_key: hex(&key.public().bytes()),
            signature: hex(&key.sign(&checkpoint_message(seq, hash, time_ms))),
        }
    }

    /// Whether it is a ledger checkpoint whose signature verifies against the key it carries; else what is wrong.
    pub(crate) fn check(&self) -> Option<String> {
        if self.format != ANCHOR_FORMAT {
            return Some(format!(
                "it is not a ledger checkpoint (format `{}`, expected `{ANCHOR_FORMAT}`)",
                self.format
            ));
        }
        let valid = match (unhex(&self.public_key), unhex(&self.signature)) {
            (Some(public), Some(sig)) => PublicKey::from_bytes(&self.key_name, &public)
                .map(|k| {
                    k.verify_raw(
                        &checkpoint_message(self.seq, &self.hash, self.time_ms),
                        &sig,
                    )
                })
                .unwrap_or(false),
            _ => false,
        };
        (!valid).then(|| "its signature does not verify".to_string())
    }
}

impl Ledger {
    /// Appends entries in one transaction (group commit) and returns their sequence numbers. Safe across processes:
    /// the chain head is read inside the write transaction. What this process spooled goes first, in the same
    /// transaction.
    pub fn append(&self, entries: &[NewEntry]) -> Result<Vec<u64>> {
        let entries: Vec<EntryRef<'_>> = entries.iter().map(NewEntry::borrowed).collect();
        let entries = &entries[..];
        let mut conn = self.conn();
        let mut names = self.names();
        let r = match self.spool.get() {
            Some(s) if self.spool_unmoved() > 0 => self.move_own(s, &mut conn, &mut names, entries),
            _ => conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(LedgerError::from)
                .and_then(|tx| {
                    let seqs = Self::append_tx(&tx, &mut names, entries)?;
                    tx.commit()?;
                    Ok(seqs)
                }),
        };
        if r.is_err() {
            // Names it interned may have been rolled back with the transaction.
            *names = Names::default();
        }
        drop(names);
        drop(conn);
        if r.is_ok() {
            self.bound_wal_after_commit();
        }
        r
    }

    /// Appends entries inside the write transaction `tx`; returns their sequence numbers.
    pub(super) fn append_tx(
        tx: &rusqlite::Transaction<'_>,
        names: &mut Names,
        entries: &[EntryRef<'_>],
    ) -> Result<Vec<u64>> {
        let (mut seq, mut prev) = Self::head(tx)?.unwrap_or((0, GENESIS.to_string()));
        let mut out = Vec::with_capacity(entries.len());
        let mut insert = tx.prepare_cached(INSERT)?;
        for e in entries {
            seq += 1;
            let hash = entry_hash_raw(seq, e, &prev);
            Stored::insert(
                &mut insert,
                tx,
                names,
                seq,
                e,
                Packed::Bytes(*hash.as_bytes()),
            )?;
            out.push(seq);
            prev.clear();
            prev.push_str(&hash.to_hex());
        }
        if !entries.is_empty() {
            Self::add_minutes(tx, entries)?;
        }
        Ok(out)
    }

    /// The chain head: the last entry, else the last archived one (the live ledger is empty after an archive).
    pub(super) fn head(conn: &rusqlite::Connection) -> Result<Option<(u64, String)>> {
        // Prepared once per connection: every commit reads the head.
        let last = conn
            .prepare_cached("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| {
                Ok((r.get::<_, i64>(0)? as u64, unpack_hash(r.get_ref(1)?)?))
            })
            .optional()?;
        Ok(match last {
            Some(h) => Some(h),
            None => Self::cut(conn)?,
        })
    }

    /// Walks the live chain — from the last archive cut, if entries were archived — and the checkpoints; reports the
    /// first break.
    pub fn verify(&self) -> Result<Verification> {
        self.move_all_spools()?;
        let conn = self.conn();
        let cut = Self::cut_anchor(&conn)?;
        let (base, mut prev, mut problem) = live_start(cut.as_ref());
        let mut expected_seq = base + 1;
        // Only the hashes signed checkpoints point at are kept, not every entry's.
        let mut signed: std::collections::HashMap<u64, Option<String>> = conn
            .prepare("SELECT seq FROM checkpoints WHERE seq > ?1")?
            .query_map([base as i64], |r| Ok((r.get::<_, i64>(0)? as u64, None)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM entries WHERE seq > ?1 ORDER BY seq"
        ))?;
        let mut rows = stmt.query([base as i64])?;
        let mut n = 0u64;
        // Names read afresh, not from the cache, so a changed name is seen.
        let mut names = Names::default();
        while let Some(r) = rows.next()? {
            // The previous hash is not stored: each entry's hash is checked against the one before it.
            let e = Stored::read(r)?.entry(&mut names, &conn, prev.clone())?;
            n += 1;
            if problem.is_none() {
                if e.seq != expected_seq {
                    problem = Some(Problem {
                        seq: expected_seq.min(e.seq),
                        reason: if e.seq > expected_seq {
                            format!(
                                "entries {expected_seq}..{} are missing (deleted)",
                                e.seq - 1
                            )
                        } else {
                            "the sequence goes backwards (entries reordered or renumbered)".into()
                        },
                    });
                } else if entry_hash(e.seq, &e.entry, &e.prev_hash) != e.hash {
                    problem = Some(Problem {
                        seq: e.seq,
                        reason: "its content does not match its hash (the entry was modified, or an entry was \
                                 inserted, deleted or reordered before it)"
                            .into(),
                    });
                }
            }
            expected_seq = e.seq + 1;
            if let Some(h) = signed.get_mut(&e.seq) {
                *h = Some(e.hash.clone());
            }
            prev = e.hash;
        }
        drop(rows);
        drop(stmt);
        let head = (n > 0 || cut.is_some()).then(|| (expected_seq - 1, prev.clone()));
        let mut checkpoints = 0u64;
        let mut cp = conn.prepare(
            "SELECT seq, hash, time_ms, key_name, public_key, signature FROM checkpoints WHERE seq > ?1 ORDER BY seq",
        )?;
        let mut rows = cp.query([base as i64])?;
        while let Some(r) = rows.next()? {
            checkpoints += 1;
            let seq = r.get::<_, i64>(0)? as u64;
            let hash: String = r.get(1)?;
            let time_ms: i64 = r.get(2)?;
            let key_name: String = r.get(3)?;
            let public: Vec<u8> = r.get(4)?;
            let signature: Vec<u8> = r.get(5)?;
            if problem.is_some() {
                continue;
            }
            let valid = PublicKey::from_bytes(&key_name, &public)
                .map(|k| k.verify_raw(&checkpoint_message(seq, &hash, time_ms), &signature))
                .unwrap_or(false);
            if !valid {
                problem = Some(Problem {
                    seq,
                    reason: format!("the checkpoint at {seq} has a bad signature"),
                });
            } else {
                match signed.get(&seq).cloned().flatten() {
                    None => {
                        problem = Some(Problem {
                            seq,
                            reason: format!(
                                "a signed checkpoint covers entry {seq}, which is missing (the tail was cut)"
                            ),
                        })
                    }
                    Some(h) if h != hash => {
                        problem = Some(Problem {
                            seq,
                            reason: format!(
                                "entry {seq} differs from the signed checkpoint (the chain was rewritten)"
                            ),
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(Verification {
            entries: n,
            head,
            checkpoints,
            archived: base,
            problem,
        })
    }

    /// Signs the current head with `key`.
    pub fn checkpoint(&self, key: &KeyPair, time_ms: i64) -> Result<Checkpoint> {
        self.settle();
        let conn = self.conn();
        let (seq, hash) = Self::head(&conn)?.ok_or(LedgerError::Empty)?;
        let anchor = Anchor::sign(key, seq, &hash, time_ms);
        let public = key.public();
        conn.execute(
            "INSERT OR REPLACE INTO checkpoints (seq, hash, time_ms, key_name, public_key, signature) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                seq as i64,
                hash,
                time_ms,
                key.name,
                public.bytes().to_vec(),
                unhex(&anchor.signature).unwrap_or_default()
            ],
        )?;
        Ok(Checkpoint {
            anchor,
            seq,
            hash,
            time_ms,
            key_name: key.name.clone(),
            fingerprint: public.fingerprint(),
        })
    }

    /// Checks that the chain still reaches `anchor`: its signature is good, and the entry at its sequence number is
    /// there with the hash it signed. `None` when it does; else what is wrong (a deleted or truncated tail, a
    /// rewritten entry, a bad signature). The chain itself is checked by [`Ledger::verify`].
    pub fn verify_anchor(&self, anchor: &Anchor) -> Result<Option<String>> {
        self.settle();
        if let Some(bad) = anchor.check() {
            return Ok(Some(bad));
        }
        let conn = self.conn();
        if let Some((base, hash)) = Self::cut(&conn)?
            && anchor.seq <= base
        {
            return Ok(if anchor.seq < base {
                Some(format!(
                    "entry {} was archived (the live ledger starts after entry {base}): check it with \
                     `ledger verify --archive`",
                    anchor.seq
                ))
            } else if anchor.hash != hash {
                Some(format!(
                    "entry {} is not the one it signed (the chain was rewritten)",
                    anchor.seq
                ))
            } else {
                None
            });
        }
        let at: Option<String> = conn
            .query_row(
                "SELECT hash FROM entries WHERE seq = ?1",
                [anchor.seq as i64],
                |r| unpack_hash(r.get_ref(0)?),
            )
            .optional()?;
        let head: Option<i64> = conn.query_row("SELECT MAX(seq) FROM entries", [], |r| r.get(0))?;
        Ok(match at {
            None => Some(format!(
                "the ledger no longer reaches entry {} that it signed (the head is now {}): entries were deleted \
                 or the tail was cut",
                anchor.seq,
                head.unwrap_or(0)
            )),
            Some(h) if h != anchor.hash => Some(format!(
                "entry {} is not the one it signed (the chain was rewritten)",
                anchor.seq
            )),
            Some(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Filter;
    use crate::ledger::tests::call;

    #[test]
    fn every_field_is_in_the_hash() {
        let base = call("p", 1);
        let h = entry_hash(1, &base, GENESIS);
        let mut variants = Vec::new();
        let mut v = base.clone();
        v.time_ms = 2;
        variants.push(v);
        let mut v = base.clone();
        v.caller.session = Some(String::new());
        variants.push(v);
        let mut v = base.clone();
        v.fuel_used = 101;
        variants.push(v);
        let mut v = base.clone();
        v.outcome = "denied".into();
        variants.push(v);
        let mut v = base.clone();
        v.cost = 3;
        variants.push(v);
        let mut v = base.clone();
        v.data = Some("{}".into());
        variants.push(v);
        for v in variants {
            assert_ne!(entry_hash(1, &v, GENESIS), h, "{v:?}");
        }
        assert_ne!(entry_hash(2, &base, GENESIS), h);
        // Field boundaries are unambiguous: moving a byte between fields changes the hash.
        let mut a = base.clone();
        a.plugin = "ab".into();
        a.version = "c".into();
        let mut b = base;
        b.plugin = "a".into();
        b.version = "bc".into();
        assert_ne!(entry_hash(1, &a, GENESIS), entry_hash(1, &b, GENESIS));
    }

    #[test]
    fn append_chains_and_verify_passes() {
        let dir = tempfile::tempdir().expect("dir");
        let l = Ledger::open(dir.path()).expect("open");
        let seqs = l.append(&[call("a", 1), call("b", 2)]).expect("append");
        assert_eq!(seqs, vec![1, 2]);
        assert_eq!(l.append(&[call("a", 3)]).expect("append"), vec![3]);
        let v = l.verify().expect("verify");
        assert_eq!(v.entries, 3);
        assert_eq!(v.problem, None);
        let all = l.entries(&Filter::default()).expect("entries");
        assert_eq!(all[0].prev_hash, GENESIS);
        assert_eq!(all[1].prev_hash, all[0].hash);
        let u = l.usage("a", None, 0).expect("usage");
        assert_eq!((u.calls, u.fuel, u.cost), (2, 200, 4));
        assert_eq!(l.usage("a", None, 2).expect("usage").calls, 1);
    }
}
