//! How an entry is stored, which is not how it is hashed or shown: the strings an entry repeats (plugin, version,
//! digest, tool, transport, session, principal, outcome, event kind) are ids into the `names` table, digests and
//! hashes are 32-byte blobs instead of 64 hex characters, the kind is 0 or 1, and the previous entry's hash is not
//! stored at all (it is the hash of the entry before; the first live entry links to the archive cut or the
//! genesis hash). The hash covers the canonical form of the fields (chain.rs), so none of this changes a hash:
//! `verify`, `show`, `export` and the archives see the same entries as before.
//!
//! Names 1, 2 and 3 are `ok`, `quota` and `busy` (open.rs inserts them first), so what contracts count is a constant
//! condition on the outcome id.
//!
//! A value that is not what the compact form expects (a digest that is not `blake3:` and 64 lowercase hex digits,
//! a hash that is not 64 lowercase hex digits) is stored as the text it is, so every entry round-trips exactly.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Statement, ToSql, params};

use super::names::Names;
use super::{Caller, Entry, EntryRef, Kind, NewEntry};

const DIGEST_PREFIX: &str = "blake3:";

fn hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

fn to_hex(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(HEX[(x >> 4) as usize] as char);
        s.push(HEX[(x & 15) as usize] as char);
    }
    s
}

/// A hash or digest as it is bound to a statement: its 32 bytes, or its text if it is not of the compact form.
/// Borrowed by the statement, so storing one allocates nothing.
pub(super) enum Packed<'a> {
    Bytes([u8; 32]),
    Text(&'a str),
}

impl ToSql for Packed<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Packed::Bytes(b) => ValueRef::Blob(b),
            Packed::Text(t) => ValueRef::Text(t.as_bytes()),
        }))
    }
}

/// A hash as stored: 32 bytes if it is 64 lowercase hex digits, else its text.
pub(super) fn pack_hash(s: &str) -> Packed<'_> {
    match hex32(s) {
        Some(b) => Packed::Bytes(b),
        None => Packed::Text(s),
    }
}

/// A hash as stored, back as text.
pub(super) fn unpack_hash(v: ValueRef<'_>) -> rusqlite::Result<String> {
    match v {
        ValueRef::Blob(b) => Ok(to_hex(b)),
        ValueRef::Text(t) => Ok(String::from_utf8_lossy(t).into_owned()),
        _ => Err(rusqlite::Error::InvalidColumnType(
            0,
            "hash".into(),
            v.data_type(),
        )),
    }
}

/// A `blake3:<hex>` digest as stored: the 32 bytes, or the text if it is not of that form.
pub(super) fn pack_digest(s: &str) -> Packed<'_> {
    match s.strip_prefix(DIGEST_PREFIX).and_then(hex32) {
        Some(b) => Packed::Bytes(b),
        None => Packed::Text(s),
    }
}

pub(super) fn unpack_digest(v: ValueRef<'_>) -> rusqlite::Result<Option<String>> {
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Blob(b) => Ok(Some(format!("{DIGEST_PREFIX}{}", to_hex(b)))),
        other => unpack_hash(other).map(Some),
    }
}

pub(super) fn kind_id(k: Kind) -> i64 {
    match k {
        Kind::Call => 0,
        Kind::Event => 1,
    }
}

pub(super) fn kind_of(id: i64) -> Kind {
    if id == 0 { Kind::Call } else { Kind::Event }
}

/// The columns [`Stored::read`] reads, in its order.
pub(super) const COLUMNS: &str = "seq, time_ms, kind, plugin, version, digest, tool, transport, session, principal, \
     duration_us, fuel_used, peak_memory, outcome, args_digest, cost, event, data, hash";

/// The INSERT of one stored entry into `$table`.
macro_rules! insert_into {
    ($table:literal) => {
        concat!("INSERT INTO ", $table, " (seq, time_ms, kind, plugin, version, digest, tool, transport, \
     session, principal, duration_us, fuel_used, peak_memory, outcome, args_digest, cost, event, data, hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)")
    };
}

/// The INSERT of one stored entry.
pub(super) const INSERT: &str = insert_into!("entries");
/// The same into the table the migration to schema 5 fills.
pub(super) const INSERT_COMPACT: &str = insert_into!("entries_compact");

/// An entry as a row holds it: ids for names, no previous hash.
#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub seq: u64,
    time_ms: i64,
    kind: i64,
    plugin: i64,
    version: i64,
    digest: i64,
    tool: i64,
    transport: i64,
    session: Option<i64>,
    principal: Option<i64>,
    duration_us: i64,
    fuel_used: i64,
    peak_memory: i64,
    outcome: i64,
    args_digest: Option<String>,
    cost: i64,
    event: Option<i64>,
    data: Option<String>,
    pub hash: String,
}

impl Stored {
    /// Reads a row selected with [`COLUMNS`].
    pub(super) fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
        Ok(Stored {
            seq: r.get::<_, i64>(0)? as u64,
            time_ms: r.get(1)?,
            kind: r.get(2)?,
            plugin: r.get(3)?,
            version: r.get(4)?,
            digest: r.get(5)?,
            tool: r.get(6)?,
            transport: r.get(7)?,
            session: r.get(8)?,
            principal: r.get(9)?,
            duration_us: r.get(10)?,
            fuel_used: r.get(11)?,
            peak_memory: r.get(12)?,
            outcome: r.get(13)?,
            args_digest: unpack_digest(r.get_ref(14)?)?,
            cost: r.get(15)?,
            event: r.get(16)?,
            data: r.get(17)?,
            hash: unpack_hash(r.get_ref(18)?)?,
        })
    }

    /// The entry, its names looked up, linked to `prev_hash`.
    pub(super) fn entry(
        self,
        names: &mut Names,
        conn: &Connection,
        prev_hash: String,
    ) -> rusqlite::Result<Entry> {
        Ok(Entry {
            seq: self.seq,
            entry: NewEntry {
                time_ms: self.time_ms,
                kind: kind_of(self.kind),
                plugin: names.value(conn, self.plugin)?,
                version: names.value(conn, self.version)?,
                digest: names.value(conn, self.digest)?,
                tool: names.value(conn, self.tool)?,
                caller: Caller {
                    transport: names.value(conn, self.transport)?,
                    session: names.value_opt(conn, self.session)?,
                    principal: names.value_opt(conn, self.principal)?,
                },
                duration_us: self.duration_us as u64,
                fuel_used: self.fuel_used as u64,
                peak_memory: self.peak_memory as u64,
                outcome: names.value(conn, self.outcome)?,
                args_digest: self.args_digest,
                cost: self.cost as u64,
                event: names.value_opt(conn, self.event)?,
                data: self.data,
            },
            prev_hash,
            hash: self.hash,
        })
    }

    /// Writes `e` as entry `seq` with hash `hash` with `insert` (prepared from [`INSERT`] or [`INSERT_COMPACT`] once
    /// for a batch), in the caller's write transaction.
    pub(super) fn insert<'e>(
        insert: &mut Statement<'_>,
        conn: &Connection,
        names: &mut Names,
        seq: u64,
        e: impl Into<EntryRef<'e>>,
        hash: Packed<'_>,
    ) -> rusqlite::Result<()> {
        let e: EntryRef<'_> = e.into();
        let ids = (
            names.intern(conn, e.plugin)?,
            names.intern(conn, e.version)?,
            names.intern(conn, e.digest)?,
            names.intern(conn, e.tool)?,
            names.intern(conn, e.transport)?,
            names.intern_opt(conn, e.session)?,
            names.intern_opt(conn, e.principal)?,
            names.intern(conn, e.outcome)?,
            names.intern_opt(conn, e.event)?,
        );
        insert.execute(params![
            seq as i64,
            e.time_ms,
            kind_id(e.kind),
            ids.0,
            ids.1,
            ids.2,
            ids.3,
            ids.4,
            ids.5,
            ids.6,
            e.duration_us as i64,
            e.fuel_used as i64,
            e.peak_memory as i64,
            ids.7,
            e.args_digest.map(pack_digest),
            e.cost as i64,
            ids.8,
            e.data,
            hash,
        ])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_hashes_round_trip_whatever_their_form() {
        let h = blake3::hash(b"x").to_hex().to_string();
        for s in [h.as_str(), "", "ABCD", &h.to_uppercase(), &h[..62], "zz"] {
            let v = pack_hash(s);
            let back = match v.to_sql().expect("to_sql") {
                ToSqlOutput::Borrowed(v) => unpack_hash(v).expect("hash"),
                other => panic!("not borrowed: {other:?}"),
            };
            assert_eq!(back, s);
        }
        assert!(matches!(pack_hash(&h), Packed::Bytes(_)));
        let d = format!("blake3:{h}");
        for s in [d.as_str(), "blake3:00", "sha256:abc", &h, ""] {
            let back = match pack_digest(s).to_sql().expect("to_sql") {
                ToSqlOutput::Borrowed(v) => unpack_digest(v).expect("digest"),
                other => panic!("not borrowed: {other:?}"),
            };
            assert_eq!(back.as_deref(), Some(s));
        }
        assert!(matches!(pack_digest(&d), Packed::Bytes(_)));
    }
}
