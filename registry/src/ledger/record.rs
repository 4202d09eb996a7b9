//! One spool record: its frame (a length, u32 little-endian, the first four bytes of the blake3 hash of the payload,
//! then the payload), and its payload: a [`NewEntry`] in a flat binary form, written by this version, or as JSON,
//! written by versions before it (a spool left behind by an older process is still moved).
//!
//! The mover decodes every entry a gateway acknowledges, so the form is chosen for that: no escaping, no field
//! names, and no allocation: a binary entry is read as an [`EntryRef`] whose strings borrow the chunk read. In the
//! profile of a gateway under load, JSON's decode and encode were ~3% of the process's CPU; this form is a fraction
//! of that.
//!
//! The binary form starts with [`BINARY`] (a JSON payload starts with `{`), then the fields in `NewEntry`'s order:
//! integers little-endian (`time_ms` i64, the rest u64), `kind` one byte (its id in `ledger.db`: 0 call, 1 event), a
//! string as its length (u32) and its UTF-8 bytes, an absent optional string as a 0 byte and a present one as a 1
//! byte and the string.

use std::path::Path;

use super::codec::{kind_id, kind_of};
use super::entry::{EntryRef, NewEntry};

/// The largest record a spool takes: an entry is a few hundred bytes, an event at most 16 KiB of data.
pub(super) const MAX_RECORD: usize = 1 << 20;
/// A record's frame: its payload's length and checksum.
pub(super) const HEADER: usize = 8;

/// The first byte of a binary payload.
const BINARY: u8 = 1;

pub(super) fn checksum(payload: &[u8]) -> [u8; 4] {
    let h = blake3::hash(payload);
    let b = h.as_bytes();
    [b[0], b[1], b[2], b[3]]
}

/// Adds `e` to `buf` as one record: its frame and its payload.
pub(super) fn frame(buf: &mut Vec<u8>, e: &EntryRef<'_>) {
    let at = buf.len();
    buf.extend_from_slice(&[0; HEADER]);
    encode(buf, e);
    let len = (buf.len() - at - HEADER) as u32;
    let sum = checksum(&buf[at + HEADER..]);
    buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    buf[at + 4..at + HEADER].copy_from_slice(&sum);
}

/// The whole records in `bytes`, and how many bytes they take; a record cut short at the end (still being written,
/// or its writer was killed while writing it) is left for later. A record that is whole but does not check is an
/// error: the file was changed.
pub(super) fn unframe<'a>(
    bytes: &'a [u8],
    file: &Path,
    from: u64,
) -> super::Result<(Vec<Decoded<'a>>, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(whole) = framed_len(&bytes[at..]) {
        let len = whole - HEADER;
        let bad = |why: &str| super::LedgerError::Corrupt {
            path: file.to_path_buf(),
            message: format!("spool record at byte {}: {why}", from + at as u64),
        };
        if len > MAX_RECORD {
            return Err(bad("its length is too large"));
        }
        if bytes.len() - at - HEADER < len {
            break;
        }
        let payload = &bytes[at + HEADER..at + HEADER + len];
        if checksum(payload) != bytes[at + 4..at + HEADER] {
            return Err(bad("its checksum does not match"));
        }
        let e = decode(payload).map_err(|e| bad(&format!("not an entry: {e}")))?;
        out.push(e);
        at += HEADER + len;
    }
    Ok((out, at))
}

/// The length of the record that starts `bytes`, frame included, if its frame is there.
pub(super) fn framed_len(bytes: &[u8]) -> Option<usize> {
    let len = bytes
        .first_chunk::<4>()
        .map(|b| u32::from_le_bytes(*b) as usize)?;
    (bytes.len() >= HEADER).then_some(HEADER + len)
}

/// Appends `e`'s payload to `buf`.
pub(super) fn encode(buf: &mut Vec<u8>, e: &EntryRef<'_>) {
    buf.push(BINARY);
    buf.extend_from_slice(&e.time_ms.to_le_bytes());
    buf.push(kind_id(e.kind) as u8);
    for s in [e.plugin, e.version, e.digest, e.tool, e.transport] {
        string(buf, s);
    }
    optional(buf, e.session);
    optional(buf, e.principal);
    for n in [e.duration_us, e.fuel_used, e.peak_memory] {
        buf.extend_from_slice(&n.to_le_bytes());
    }
    string(buf, e.outcome);
    optional(buf, e.args_digest);
    buf.extend_from_slice(&e.cost.to_le_bytes());
    optional(buf, e.event);
    optional(buf, e.data);
}

fn string(buf: &mut Vec<u8>, s: &str) {
    // A record is at most the spool's MAX_RECORD (1 MiB), so a string's length fits in a u32.
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn optional(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => buf.push(0),
        Some(s) => {
            buf.push(1);
            string(buf, s);
        }
    }
}

/// A record's entry: borrowed from the bytes it was read from (the binary form), or decoded into its own (JSON).
#[derive(Debug)]
pub(super) enum Decoded<'a> {
    Binary(EntryRef<'a>),
    Json(NewEntry),
}

impl Decoded<'_> {
    pub(super) fn entry(&self) -> EntryRef<'_> {
        match self {
            Decoded::Binary(e) => *e,
            Decoded::Json(e) => e.borrowed(),
        }
    }
}

/// The entry in `payload`, in either form; the error says what is wrong with it.
pub(super) fn decode(payload: &[u8]) -> Result<Decoded<'_>, String> {
    match payload.first() {
        Some(&BINARY) => {
            let mut r = Reader(&payload[1..]);
            let e = r.entry()?;
            if !r.0.is_empty() {
                return Err(format!("{} bytes after the entry", r.0.len()));
            }
            Ok(Decoded::Binary(e))
        }
        _ => serde_json::from_slice(payload)
            .map(Decoded::Json)
            .map_err(|e| e.to_string()),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let Some((head, rest)) = self.0.split_first_chunk::<N>() else {
            return Err("it ends inside a field".into());
        };
        self.0 = rest;
        Ok(*head)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.bytes().map(u64::from_le_bytes)
    }

    fn string(&mut self) -> Result<&'a str, String> {
        let len = u32::from_le_bytes(self.bytes()?) as usize;
        if self.0.len() < len {
            return Err("a string runs past its end".into());
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        std::str::from_utf8(s).map_err(|_| "a string is not UTF-8".into())
    }

    fn optional(&mut self) -> Result<Option<&'a str>, String> {
        match self.bytes::<1>()? {
            [0] => Ok(None),
            [1] => self.string().map(Some),
            [b] => Err(format!("an optional field's tag is {b}")),
        }
    }

    fn entry(&mut self) -> Result<EntryRef<'a>, String> {
        let time_ms = i64::from_le_bytes(self.bytes()?);
        let kind = match self.bytes::<1>()? {
            [b @ (0 | 1)] => kind_of(b.into()),
            [b] => return Err(format!("its kind is {b}")),
        };
        let (plugin, version, digest, tool) = (
            self.string()?,
            self.string()?,
            self.string()?,
            self.string()?,
        );
        let (transport, session, principal) = (self.string()?, self.optional()?, self.optional()?);
        Ok(EntryRef {
            time_ms,
            kind,
            plugin,
            version,
            digest,
            tool,
            transport,
            session,
            principal,
            duration_us: self.u64()?,
            fuel_used: self.u64()?,
            peak_memory: self.u64()?,
            outcome: self.string()?,
            args_digest: self.optional()?,
            cost: self.u64()?,
            event: self.optional()?,
            data: self.optional()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::{Caller, Kind};
    use super::*;

    fn full() -> NewEntry {
        NewEntry {
            time_ms: -5,
            kind: Kind::Event,
            plugin: "p".into(),
            version: "1.2.3".into(),
            digest: "blake3:ab".into(),
            tool: "t\u{e9}\"\n".into(),
            caller: Caller {
                transport: "http".into(),
                session: Some("s".into()),
                principal: Some(String::new()),
            },
            duration_us: 1,
            fuel_used: u64::MAX,
            peak_memory: 3,
            outcome: "ok".into(),
            args_digest: Some("blake3:cd".into()),
            cost: 7,
            event: Some("order".into()),
            data: Some("{\"a\":1}".into()),
        }
    }

    #[test]
    fn entries_round_trip_in_both_forms() {
        let mut bare = full();
        bare.kind = Kind::Call;
        bare.caller.session = None;
        bare.caller.principal = None;
        bare.args_digest = None;
        bare.event = None;
        bare.data = None;
        for e in [full(), bare] {
            let mut buf = Vec::new();
            encode(&mut buf, &e.borrowed());
            assert_eq!(buf[0], BINARY);
            let binary = decode(&buf).expect("binary");
            assert!(matches!(binary, Decoded::Binary(_)), "{binary:?}");
            assert_eq!(binary.entry(), e.borrowed());
            // What older versions spooled.
            let json = serde_json::to_vec(&e).expect("json");
            let old = decode(&json).expect("json");
            assert!(matches!(old, Decoded::Json(_)), "{old:?}");
            assert_eq!(old.entry(), e.borrowed());
        }
    }

    #[test]
    fn a_cut_or_padded_or_mangled_payload_is_an_error() {
        let mut buf = Vec::new();
        encode(&mut buf, &full().borrowed());
        for n in 1..buf.len() {
            assert!(decode(&buf[..n]).is_err(), "cut at {n}");
        }
        let mut long = buf.clone();
        long.push(0);
        assert!(
            decode(&long)
                .expect_err("padded")
                .contains("after the entry")
        );
        // The kind byte, then the first string's length made to run past the end.
        let mut bad = buf.clone();
        bad[9] = 7;
        assert!(decode(&bad).expect_err("kind").contains("kind is 7"));
        let mut bad = buf.clone();
        bad[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&bad).expect_err("length").contains("past its end"));
        assert!(decode(&[]).is_err());
    }
}
