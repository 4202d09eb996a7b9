//! The usage ledger: one append-only, hash-chained record of every tool call and every domain event a plugin
//! appended, in `ledger.db` (SQLite, WAL, mode 0600).
//!
//! Each entry's hash is blake3 over a canonical encoding of all its fields, its sequence number and the previous
//! entry's hash, so [`Ledger::verify`] finds any modified, deleted, inserted or reordered entry and names the first bad
//! sequence number. A checkpoint is the chain head signed with an ed25519 key, so a copy of the ledger can be verified
//! offline and a truncated tail is noticed. The ledger never stores call arguments or secrets: only a digest of the
//! arguments.
//!
//! By area: `entry.rs` holds what an entry is (and the checks on events), `chain.rs` how entries are hashed, appended,
//! verified and checkpointed, `query.rs` what is read back (filters, usage, the calls contracts count), and
//! `open.rs` opens the database and migrates its schema, `store.rs` holds the connections, `codec.rs` and
//! `names.rs` say how an entry is stored, `wal.rs` keeps its write-ahead log bounded, `spool.rs` lets a
//! long-running process acknowledge a call with one `write` and move entries in batches, `archive.rs` moves old
//! entries to signed archive files. This file
//! only names them.

mod archive;
mod chain;
mod codec;
mod entry;
mod names;
mod open;
mod query;
mod record;
mod spool;
mod store;
mod wal;

pub use archive::{
    ARCHIVE_FORMAT, ArchiveCheck, ArchiveWriter, Archived, MIN_ARCHIVE_AGE_MS, link_archives,
};
pub(crate) use chain::entry_hash;
pub(crate) use chain::live_start;
pub use chain::{ANCHOR_FORMAT, Anchor, Checkpoint, Problem, Verification};
pub use entry::{Caller, Entry, EntryRef, Kind, NewEntry, args_digest, check_event};
pub use open::MIGRATE_BATCH;
pub use query::{CallUsage, CountedCall, Filter, MinuteTotal, Usage};
pub use spool::{SPOOL_DIR, SPOOL_MAX_UNMOVED, SPOOL_TICK};
pub use store::{GENESIS, Ledger, LedgerError, MAX_EVENT_BYTES, MINUTE_MS, Result};
pub use wal::{TRUNCATE_WAIT, WAL_HARD_BYTES, WAL_POLL, WAL_TRIGGER_BYTES};

#[cfg(test)]
mod tests {
    use super::*;

    /// A call entry, for the tests of every part of the ledger.
    pub(super) fn call(plugin: &str, t: i64) -> NewEntry {
        NewEntry {
            time_ms: t,
            kind: Kind::Call,
            plugin: plugin.into(),
            version: "0.1.0".into(),
            digest: "blake3:00".into(),
            tool: "echo".into(),
            caller: Caller {
                transport: "cli".into(),
                session: None,
                principal: None,
            },
            duration_us: 10,
            fuel_used: 100,
            peak_memory: 65536,
            outcome: "ok".into(),
            args_digest: Some(args_digest("{}")),
            cost: 2,
            event: None,
            data: None,
        }
    }
}
