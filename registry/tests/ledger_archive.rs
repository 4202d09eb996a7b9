//! Retention that keeps the proof: old entries move to signed, compressed archives; the live ledger verifies from
//! the cut, the archives verify on their own and link into one chain, a tampered or missing archive is named, and
//! what contracts read (the last month) is unchanged by a cut; a ledger of the previous schema migrates.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use plughost_registry::KeyPair;
use plughost_registry::ledger::{Caller, Kind, Ledger, LedgerError, NewEntry};

const DAY: i64 = 86_400_000;
const NOW: i64 = 1_800_000_000_000;

fn call(t: i64, plugin: &str) -> NewEntry {
    NewEntry {
        time_ms: t,
        kind: Kind::Call,
        plugin: plugin.into(),
        version: "0.1.0".into(),
        digest: "blake3:00".into(),
        tool: "echo".into(),
        caller: Caller::default(),
        duration_us: 1,
        fuel_used: 7,
        peak_memory: 1,
        outcome: "ok".into(),
        args_digest: None,
        cost: 2,
        event: None,
        data: None,
    }
}

/// 10 calls a day of `plugin` from 100 days ago to now.
fn ledger_of(dir: &Path, plugin: &str) -> Ledger {
    let l = Ledger::open(dir).expect("open");
    let calls: Vec<NewEntry> = (0..1000)
        .map(|i| call(NOW - 100 * DAY + i * DAY / 10, plugin))
        .collect();
    l.append(&calls).expect("append");
    l
}

fn ledger(dir: &Path) -> Ledger {
    ledger_of(dir, "p")
}

fn gunzip(p: &Path) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(p).expect("open"))
        .read_to_string(&mut s)
        .expect("gunzip");
    s
}

fn gzip(p: &Path, text: &str) {
    let mut w = flate2::write::GzEncoder::new(
        std::fs::File::create(p).expect("create"),
        flate2::Compression::default(),
    );
    w.write_all(text.as_bytes()).expect("gzip");
    w.finish().expect("gzip");
}

fn checks(l: &Ledger, files: &[&PathBuf]) -> Option<String> {
    let mut c: Vec<_> = files
        .iter()
        .map(|f| Ledger::check_archive(f).expect("read"))
        .collect();
    l.link_archives(&mut c).expect("link")
}

#[test]
fn archives_round_trip_and_a_tampered_or_missing_archive_is_named() {
    let dir = tempfile::tempdir().expect("dir");
    let l = ledger(dir.path());
    let key = KeyPair::generate("op").expect("key");
    let a: Vec<PathBuf> = (1..=3)
        .map(|i| dir.path().join(format!("a{i}.gz")))
        .collect();
    let month = l.usage("p", None, NOW - 30 * DAY).expect("usage");
    // Three cuts: before 80, 60 and 40 days ago.
    for (i, days) in [80, 60, 40].into_iter().enumerate() {
        let done = l
            .archive(NOW - days * DAY, &key, NOW, &a[i])
            .expect("archive")
            .expect("something to archive");
        assert_eq!(done.last_seq, (100 - days as u64) * 10, "{done:?}");
    }
    assert_eq!(
        l.archive(NOW - 40 * DAY, &key, NOW, &dir.path().join("none.gz"))
            .expect("archive"),
        None
    );
    // The live ledger verifies from the last cut on, and keeps the chain going.
    let v = l.verify().expect("verify");
    assert_eq!((v.archived, v.entries, v.problem), (600, 400, None));
    assert_eq!(l.head_seq().expect("head"), 1000);
    assert_eq!(l.append(&[call(NOW, "p")]).expect("append"), vec![1001]);
    assert_eq!(l.verify().expect("verify").problem, None);
    // What the last month's contracts read is unchanged by the cuts.
    let after = l.usage("p", None, NOW - 30 * DAY).expect("usage");
    assert_eq!((after.calls, after.fuel), (month.calls + 1, month.fuel + 7));
    assert_eq!(
        l.counted_calls("p", 0, NOW - 30 * DAY)
            .expect("calls")
            .len() as u64,
        after.calls
    );
    // Every archive checks on its own, and together they link to the live ledger.
    for f in &a {
        let c = Ledger::check_archive(f).expect("read");
        assert_eq!((c.entries, c.problem.clone()), (200, None), "{c:?}");
    }
    assert_eq!(checks(&l, &[&a[2], &a[0], &a[1]]), None);
    // A missing middle archive, and a missing last one, are named.
    let missing = checks(&l, &[&a[0], &a[2]]).expect("a gap");
    assert!(
        missing.contains("entries 201..400 are in none"),
        "{missing}"
    );
    let missing = checks(&l, &[&a[0], &a[1]]).expect("a gap");
    assert!(
        missing.contains("entries 401..600 were archived"),
        "{missing}"
    );
    // A modified entry inside an archive.
    let text = gunzip(&a[1]);
    let tampered = text.replacen("\"fuel_used\":7", "\"fuel_used\":8", 3);
    assert_ne!(text, tampered);
    gzip(&a[1], &tampered);
    let bad = checks(&l, &[&a[0], &a[1], &a[2]]).expect("tampered");
    assert!(
        bad.contains("a2.gz") && bad.contains("entry 201: its content does not match"),
        "{bad}"
    );
    // An archive of another chain in its place: its entries link to no archive before it.
    let other = dir.path().join("other");
    let forged = ledger_of(&other, "q");
    let f = other.join("f.gz");
    forged
        .archive(NOW - 80 * DAY, &key, NOW, &f)
        .expect("archive");
    forged
        .archive(NOW - 60 * DAY, &key, NOW, &other.join("g.gz"))
        .expect("archive");
    let g = other.join("g.gz");
    gzip(&a[1], &gunzip(&g));
    let bad = checks(&l, &[&a[0], &a[1], &a[2]]).expect("foreign");
    assert!(bad.contains("does not continue"), "{bad}");
    // A cut signature that does not verify.
    let text = gunzip(&a[0]);
    let last = text.lines().last().expect("cut").to_string();
    let sig = last.split("\"signature\":\"").nth(1).expect("sig");
    let flipped = if sig.starts_with('0') { "1" } else { "0" };
    gzip(
        &a[0],
        &text.replace(
            &last,
            &last.replacen(
                &format!("\"signature\":\"{}", &sig[..1]),
                &format!("\"signature\":\"{flipped}"),
                1,
            ),
        ),
    );
    let c = Ledger::check_archive(&a[0]).expect("read");
    assert!(
        c.problem
            .as_deref()
            .is_some_and(|p| p.contains("signature")),
        "{c:?}"
    );
}

#[test]
fn the_last_month_is_never_archived_and_the_cut_is_checked() {
    let dir = tempfile::tempdir().expect("dir");
    let l = ledger(dir.path());
    let key = KeyPair::generate("op").expect("key");
    let out = dir.path().join("a.gz");
    assert!(matches!(
        l.archive(NOW - 20 * DAY, &key, NOW, &out),
        Err(LedgerError::TooRecent)
    ));
    assert!(!out.exists());
    l.archive(NOW - 50 * DAY, &key, NOW, &out).expect("archive");
    // Whoever rewrites the cut in ledger.db (to hide older entries) breaks its signature.
    let c = rusqlite::Connection::open(dir.path().join("ledger.db")).expect("db");
    c.execute("UPDATE cuts SET hash = ?1", [&"0".repeat(64)])
        .expect("update");
    let v = l.verify().expect("verify");
    let p = v.problem.expect("broken");
    assert_eq!(p.seq, 500);
    assert!(p.reason.contains("archive cut"), "{p:?}");
}

fn schema(dir: &std::path::Path) -> (i64, Vec<String>) {
    let c = rusqlite::Connection::open(dir.join("ledger.db")).expect("db");
    let version = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    let mut s = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
        .expect("indexes");
    let names = s
        .query_map([], |r| r.get(0))
        .expect("indexes")
        .collect::<Result<Vec<String>, _>>()
        .expect("indexes");
    (version, names)
}

/// Schema 1 of `ledger.db`, as the first plughost with a ledger wrote it: text columns, hex digests and hashes, the
/// previous hash stored in each entry.
const SCHEMA_1: &str = "
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, kind TEXT NOT NULL, plugin TEXT NOT NULL,
    version TEXT NOT NULL, digest TEXT NOT NULL, tool TEXT NOT NULL, transport TEXT NOT NULL, session TEXT,
    principal TEXT, duration_us INTEGER NOT NULL, fuel_used INTEGER NOT NULL, peak_memory INTEGER NOT NULL,
    outcome TEXT NOT NULL, args_digest TEXT, cost INTEGER NOT NULL, event TEXT, data TEXT, prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX entries_plugin_time ON entries (plugin, time_ms);
CREATE TABLE checkpoints (
    seq INTEGER PRIMARY KEY, hash TEXT NOT NULL, time_ms INTEGER NOT NULL, key_name TEXT NOT NULL,
    public_key BLOB NOT NULL, signature BLOB NOT NULL
);
PRAGMA user_version = 1;
";

/// Varied entries: calls of two plugins under sessions and principals, refused ones, events with data, digests of
/// every form.
fn varied(i: u64) -> NewEntry {
    let mut e = call(
        NOW - 40 * DAY + i as i64 * 1_000,
        if i.is_multiple_of(3) { "q" } else { "p" },
    );
    e.caller = Caller {
        transport: ["cli", "stdio", "http"][(i % 3) as usize].into(),
        session: i.is_multiple_of(2).then(|| format!("session-{}", i % 7)),
        principal: i.is_multiple_of(5).then(|| "bearer-token".to_string()),
    };
    e.fuel_used = i;
    e.cost = i % 4;
    e.outcome = ["ok", "quota", "out-of-fuel", "busy"][(i % 4) as usize].into();
    e.args_digest = (i % 2 == 1).then(|| plughost_registry::ledger::args_digest(&i.to_string()));
    if i.is_multiple_of(10) {
        e.kind = Kind::Event;
        e.event = Some("dns.record-created".into());
        e.data = Some(format!("{{\"n\":{i}}}"));
        e.outcome = "event".into();
    }
    e
}

/// A `ledger.db` of schema 1 (written as the first format did) opens, is migrated in place in batches — per-minute
/// totals built, entries made compact — and then verifies, shows the same entries with the same hashes, counts the
/// same usage and takes new entries on the same chain.
#[test]
fn a_ledger_of_the_first_schema_is_migrated_in_batches_and_still_verifies() {
    let n = (plughost_registry::ledger::MIGRATE_BATCH * 2 + 123) as u64;
    // The same entries chained by this plughost: the old file must come out as exactly these.
    let reference = tempfile::tempdir().expect("dir");
    let r = Ledger::open(reference.path()).expect("open");
    let all: Vec<NewEntry> = (0..n).map(varied).collect();
    for chunk in all.chunks(5_000) {
        r.append(chunk).expect("append");
    }
    let want = r.entries(&Default::default()).expect("entries");
    assert_eq!(want.len() as u64, n);
    let dir = tempfile::tempdir().expect("dir");
    {
        let mut c = rusqlite::Connection::open(dir.path().join("ledger.db")).expect("db");
        c.execute_batch(SCHEMA_1).expect("schema 1");
        let tx = c.transaction().expect("tx");
        for e in &want {
            let x = &e.entry;
            tx.execute(
                "INSERT INTO entries VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, \
                 ?17, ?18, ?19, ?20)",
                rusqlite::params![
                    e.seq as i64,
                    x.time_ms,
                    if x.kind == Kind::Call { "call" } else { "event" },
                    x.plugin,
                    x.version,
                    x.digest,
                    x.tool,
                    x.caller.transport,
                    x.caller.session,
                    x.caller.principal,
                    x.duration_us as i64,
                    x.fuel_used as i64,
                    x.peak_memory as i64,
                    x.outcome,
                    x.args_digest,
                    x.cost as i64,
                    x.event,
                    x.data,
                    e.prev_hash,
                    e.hash
                ],
            )
            .expect("insert");
        }
        tx.commit().expect("commit");
    }
    assert_eq!(schema(dir.path()), (1, vec!["entries_plugin_time".into()]));
    let l = Ledger::open(dir.path()).expect("open");
    assert_eq!(
        schema(dir.path()),
        (
            5,
            vec![
                "entries_plugin_time".into(),
                "entries_time".into(),
                "sqlite_autoindex_names_1".into()
            ]
        )
    );
    let v = l.verify().expect("verify");
    assert_eq!((v.entries, v.problem.clone()), (n, None));
    assert_eq!(l.entries(&Default::default()).expect("entries"), want);
    for (plugin, since) in [
        ("p", 0),
        ("q", NOW - 30 * DAY),
        ("p", NOW - 39 * DAY + 12_345),
    ] {
        assert_eq!(
            l.usage(plugin, None, since).expect("usage"),
            r.usage(plugin, None, since).expect("usage")
        );
    }
    // New entries continue the same chain.
    let next = call(NOW, "p");
    assert_eq!(
        l.append(std::slice::from_ref(&next)).expect("append"),
        vec![n + 1]
    );
    r.append(&[next]).expect("append");
    assert_eq!(
        l.entry(n + 1).expect("read").map(|e| e.hash),
        r.entry(n + 1).expect("read").map(|e| e.hash)
    );
    assert_eq!(l.verify().expect("verify").problem, None);
}
