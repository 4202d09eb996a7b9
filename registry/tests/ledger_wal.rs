//! The ledger's write-ahead log stays bounded under sustained load: 200,000 calls, each committed on its own (the
//! host's inline path), while another thread reads the ledger the whole time as contract checks do — the load under
//! which passive checkpoints alone never let SQLite start the WAL over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use plughost_registry::ledger::{
    Caller, Kind, Ledger, NewEntry, WAL_HARD_BYTES, WAL_TRIGGER_BYTES, args_digest,
};

const CALLS: u64 = 200_000;

fn call(i: u64) -> NewEntry {
    NewEntry {
        time_ms: 1_800_000_000_000 + i as i64,
        kind: Kind::Call,
        plugin: format!("plugin-{}", i % 3),
        version: "0.1.0".into(),
        digest: format!("blake3:{}", blake3::hash(b"component").to_hex()),
        tool: "echo".into(),
        caller: Caller {
            transport: "http".into(),
            session: Some("0b7e6c1f-session".into()),
            principal: None,
        },
        duration_us: 180,
        fuel_used: 4_960,
        peak_memory: 1_114_112,
        outcome: "ok".into(),
        args_digest: Some(args_digest(&format!("{{\"text\":\"{i}\"}}"))),
        cost: 1,
        event: None,
        data: None,
    }
}

#[test]
fn the_wal_stays_bounded_over_200_000_calls_with_readers_all_along() {
    let dir = tempfile::tempdir().expect("dir");
    let ledger = Arc::new(Ledger::open(dir.path()).expect("open"));
    ledger.keep_wal_bounded().expect("keeper");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (ledger, stop) = (ledger.clone(), stop.clone());
        std::thread::spawn(move || {
            // A contract check per round: the head, then what the plugin gained since the last look.
            let mut last = 0;
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let head = ledger.head_seq().expect("head");
                let new = ledger.counted_calls("plugin-1", last, 0).expect("counted");
                last = head.max(new.last().map_or(0, |c| c.seq));
                reads += 1;
            }
            reads
        })
    };
    let started = Instant::now();
    let mut largest = 0u64;
    let mut slowest = Duration::ZERO;
    for i in 0..CALLS {
        let t = Instant::now();
        ledger.append(&[call(i)]).expect("append");
        slowest = slowest.max(t.elapsed());
        largest = largest.max(ledger.wal_bytes());
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let reads = reader.join().expect("reader");
    let db = std::fs::metadata(ledger.path()).expect("db").len();
    eprintln!(
        "{CALLS} calls in {elapsed:?} ({:.0}/s), {reads} contract reads alongside; largest WAL {:.1} MiB \
         (trigger {} MiB, hard bound {} MiB); slowest commit {slowest:?}; ledger.db {} bytes ({} per entry)",
        CALLS as f64 / elapsed.as_secs_f64(),
        largest as f64 / (1 << 20) as f64,
        WAL_TRIGGER_BYTES >> 20,
        WAL_HARD_BYTES >> 20,
        db,
        db / CALLS,
    );
    assert!(reads > 0, "the reader ran alongside");
    // The bound: the hard limit plus one commit's frames (one entry's pages here), checked after every commit.
    assert!(
        largest <= WAL_HARD_BYTES + (1 << 20),
        "the WAL reached {largest} bytes"
    );
    // The keeper gets it well below that again once the load stops.
    let wait = Instant::now();
    while ledger.wal_bytes() >= WAL_TRIGGER_BYTES && wait.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ledger.wal_bytes() < WAL_TRIGGER_BYTES);
    let v = ledger.verify().expect("verify");
    assert_eq!((v.entries, v.problem), (CALLS, None));
}

#[test]
fn after_a_quiet_spell_the_keeper_empties_the_wal_and_bounds_it_again_when_calls_return() {
    let dir = tempfile::tempdir().expect("dir");
    let ledger = Arc::new(Ledger::open(dir.path()).expect("open"));
    ledger.keep_wal_bounded().expect("keeper");
    for i in 0..10 {
        ledger.append(&[call(i)]).expect("append");
    }
    assert!(ledger.wal_bytes() > 0);
    // No commit for a second: the keeper truncates the WAL, then looks only once a second.
    let wait = Instant::now();
    while ledger.wal_bytes() > 0 && wait.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ledger.wal_bytes(), 0, "the quiet WAL is truncated");
    std::thread::sleep(Duration::from_millis(1500));
    // Calls come back: past the trigger, the keeper (awake again) brings the WAL down once they stop.
    let mut i = 10;
    while ledger.wal_after_commit().unwrap_or(0) < WAL_TRIGGER_BYTES {
        ledger.append(&[call(i)]).expect("append");
        i += 1;
        assert!(i < 1_000_000, "the WAL never reached the trigger");
    }
    let wait = Instant::now();
    while ledger.wal_after_commit().unwrap_or(u64::MAX) >= WAL_TRIGGER_BYTES
        && wait.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ledger.wal_after_commit().unwrap_or(u64::MAX) < WAL_TRIGGER_BYTES);
    assert_eq!(ledger.verify().expect("verify").entries, i);
}

#[test]
fn the_wal_size_seen_after_each_commit_is_the_files() {
    let dir = tempfile::tempdir().expect("dir");
    let ledger = Ledger::open(dir.path()).expect("open");
    // Checkpoints deferred and no keeper: nothing truncates the WAL between a commit and the look at its file.
    ledger.defer_checkpoints().expect("defer");
    for i in 0..200 {
        ledger.append(&[call(i)]).expect("append");
        assert_eq!(
            ledger.wal_after_commit(),
            Some(ledger.wal_bytes()),
            "after commit {i}"
        );
    }
    assert!(ledger.wal_bytes() > 0);
}
