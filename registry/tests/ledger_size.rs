//! What one call entry costs on disk: N realistic call entries (an HTTP call of one of 64 MCP sessions under a
//! token, blake3 digests, group-committed in batches like the gateway's) are appended, and the growth of
//! `ledger.db` (pages in use, the WAL checkpointed into it) is divided by N. The bound keeps it from growing back.

use plughost_registry::ledger::{Caller, Kind, Ledger, NewEntry, args_digest};

/// Bytes per call entry the ledger must stay under (README, "The ledger's files").
const MAX_BYTES_PER_ENTRY: f64 = 200.0;
const N: u64 = 50_000;

fn pages_in_use(dir: &std::path::Path) -> u64 {
    let c = rusqlite::Connection::open(dir.join("ledger.db")).expect("db");
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("checkpoint");
    let pages: i64 = c
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .expect("pages");
    let free: i64 = c
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .expect("free");
    let size: i64 = c
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("size");
    ((pages - free) * size) as u64
}

fn realistic(i: u64, start: i64) -> NewEntry {
    let session = blake3::hash(&(i % 64).to_le_bytes()).to_hex();
    NewEntry {
        // ~35 calls a second, spread over plugins and tools like a small deployment's.
        time_ms: start + (i as i64) * 29,
        kind: Kind::Call,
        plugin: ["fixture-basic", "cloudflare-dns", "system-info"][(i % 3) as usize].into(),
        version: "0.1.0".into(),
        digest: format!("blake3:{}", blake3::hash(&[(i % 3) as u8]).to_hex()),
        tool: ["echo", "list_records", "cpu"][(i % 3) as usize].into(),
        caller: Caller {
            transport: "http".into(),
            // An MCP session id (a UUID).
            session: Some(format!(
                "{}-{}-{}-{}-{}",
                &session[..8],
                &session[8..12],
                &session[12..16],
                &session[16..20],
                &session[20..32]
            )),
            principal: Some("bearer-token".into()),
        },
        duration_us: 150 + i % 400,
        fuel_used: 4_821 + i % 2_000,
        peak_memory: 1_114_112,
        outcome: if i.is_multiple_of(50) {
            "out-of-fuel"
        } else {
            "ok"
        }
        .into(),
        args_digest: Some(args_digest(&format!("{{\"text\":\"hello {i}\"}}"))),
        cost: 2,
        event: None,
        data: None,
    }
}

#[test]
fn a_call_entry_takes_at_most_200_bytes_on_disk() {
    let dir = tempfile::tempdir().expect("dir");
    let l = Ledger::open(dir.path()).expect("open");
    let start = 1_800_000_000_000;
    l.append(&[realistic(0, start)]).expect("append");
    let before = pages_in_use(dir.path());
    let mut i = 1;
    while i <= N {
        let batch: Vec<NewEntry> = (i..(i + 50).min(N + 1))
            .map(|i| realistic(i, start))
            .collect();
        i += batch.len() as u64;
        l.append(&batch).expect("append");
    }
    let per_entry = (pages_in_use(dir.path()) - before) as f64 / N as f64;
    println!("{per_entry:.1} bytes per call entry ({N} entries)");
    assert!(
        per_entry <= MAX_BYTES_PER_ENTRY,
        "{per_entry:.1} bytes per call entry; the bound is {MAX_BYTES_PER_ENTRY}"
    );
    // What was stored is what was appended.
    let v = l.verify().expect("verify");
    assert_eq!((v.entries, v.problem), (N + 1, None));
    let last = l.entry(N).expect("read").expect("entry");
    assert_eq!(last.entry, realistic(N - 1, start));
}
