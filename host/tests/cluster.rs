//! The cluster against a real PostgreSQL (scripts/postgres.sh, started once for this binary). The store itself: one
//! ledger chain appended by several replicas at once, contracts exact across them, shared state with its quota,
//! schema migrations run once by replicas starting together, `unavailable` when the server is not there. The CLI:
//! `store migrate` of a data dir with a 10,000-entry ledger, then `--store … ledger verify`.
//!
//! Fails if PostgreSQL cannot be started, unless PLUGHOST_SKIP_CLUSTER=1 (then every case says loudly it skipped).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use plughost_registry::Window;
use plughost_registry::ledger::{Caller, Kind, NewEntry};
use plughost_registry::pg::{Admission, PG_SCHEMA_VERSION, PgError, PgStore, Scope};
use plughost_tests::postgres::{database, psql, server};

const BIN: &str = env!("CARGO_BIN_EXE_plughost");

/// `plughost ARGS` on the data dir `home`, without a store from the environment; (success, stdout + stderr).
fn plughost(home: &std::path::Path, args: &[&str]) -> (bool, String) {
    let o = Command::new(BIN)
        .args(args)
        .env("PLUGHOST_HOME", home)
        .env_remove("PLUGHOST_STORE")
        .env_remove("PLUGHOST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run plughost");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn store_migrate_moves_a_ten_thousand_entry_ledger_that_verifies_on_postgres() {
    let Some(url) = database("migrate_cli") else {
        return;
    };
    let home = tempfile::tempdir().expect("home");
    let h = home.path();
    let (ok, out) = plughost(
        h,
        &["ledger", "generate", "--entries", "10000", "--days", "2"],
    );
    assert!(ok, "{out}");
    let (ok, out) = plughost(h, &["store", "migrate", "--to", &url]);
    assert!(ok, "{out}");
    assert!(out.contains("moved 10000 ledger entries"), "{out}");
    // Again: nothing left to move, and the chain is the same.
    let (ok, out) = plughost(h, &["store", "migrate", "--to", &url]);
    assert!(ok && out.contains("moved 0 ledger entries"), "{out}");
    let (ok, out) = plughost(h, &["--store", &url, "ledger", "verify"]);
    assert!(
        ok && out.contains("ok: 10000 entries chained up to 10000"),
        "{out}"
    );
    // The same head as the data dir's own ledger: the entries moved verbatim.
    let local = plughost(h, &["ledger", "verify", "--json"]).1;
    let shared = plughost(h, &["--store", &url, "ledger", "verify", "--json"]).1;
    let head =
        |s: &str| serde_json::from_str::<serde_json::Value>(s).expect("json")["head"].clone();
    assert_eq!(head(&local), head(&shared));
    // The last 30 days' counted calls hold the contract windows (the generated calls span two days).
    assert_eq!(psql(&url, "SELECT count(*) FROM contract_calls"), "10000");
    // … and their per-minute totals, which the checks sum.
    assert_eq!(
        psql(&url, "SELECT sum(calls) FROM contract_minutes"),
        "10000"
    );
    // Tampering in the store is found by the cluster's verify.
    psql(&url, "UPDATE ledger_entries SET cost = 0 WHERE seq = 4321");
    let (ok, out) = plughost(h, &["--store", &url, "ledger", "verify"]);
    assert!(!ok && out.contains("BROKEN at entry 4321"), "{out}");
    // A different ledger is not merged into it.
    let other = tempfile::tempdir().expect("home");
    assert!(plughost(other.path(), &["ledger", "generate", "--entries", "3"]).0);
    let (ok, out) = plughost(other.path(), &["store", "migrate", "--to", &url]);
    assert!(!ok && out.contains("holds a different ledger"), "{out}");
}

fn call(plugin: &str, i: u64) -> NewEntry {
    NewEntry {
        time_ms: 1_700_000_000_000 + i as i64,
        kind: if i.is_multiple_of(5) {
            Kind::Event
        } else {
            Kind::Call
        },
        plugin: plugin.into(),
        version: "0.1.0".into(),
        digest: "blake3:00".into(),
        tool: "echo".into(),
        caller: Caller {
            transport: "http".into(),
            session: (i.is_multiple_of(2)).then(|| format!("s{i}")),
            principal: None,
        },
        duration_us: i,
        fuel_used: 100 + i,
        peak_memory: 65536,
        outcome: "ok".into(),
        args_digest: Some(format!("blake3:{i:064x}")),
        cost: 1,
        event: (i.is_multiple_of(5)).then(|| "thing.done".to_string()),
        data: (i.is_multiple_of(5)).then(|| format!("{{\"i\":{i}}}")),
    }
}

#[test]
fn three_replicas_extend_one_chain_and_tampering_is_found() {
    let Some(url) = database("ledger") else {
        return;
    };
    let replicas: Vec<Arc<PgStore>> = (0..3)
        .map(|_| Arc::new(PgStore::open(&url).expect("open")))
        .collect();
    let threads: Vec<_> = replicas
        .iter()
        .enumerate()
        .map(|(r, store)| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for i in 0..20u64 {
                    // Single entries and group commits of 3, interleaved with the other replicas.
                    let batch: Vec<_> = (0..(1 + i % 3))
                        .map(|k| call(&format!("p{r}"), i * 10 + k))
                        .collect();
                    seqs.extend(store.ledger_append(&batch).expect("append"));
                }
                seqs
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("replica thread"))
        .collect();
    all.sort_unstable();
    let n = all.len() as u64;
    assert_eq!(all, (1..=n).collect::<Vec<_>>(), "every seq once, no gaps");
    let v = replicas[1].ledger_verify().expect("verify");
    assert_eq!(v.problem, None);
    assert_eq!(v.entries, n);
    assert_eq!(v.head.as_ref().map(|h| h.0), Some(n));
    assert_eq!(replicas[2].ledger_head_seq().expect("head"), n);

    // A modified entry is named.
    psql(
        &url,
        "UPDATE ledger_entries SET outcome = 'denied' WHERE seq = 17",
    );
    let v = replicas[0].ledger_verify().expect("verify");
    let p = v.problem.expect("tampering found");
    assert_eq!(p.seq, 17);
    assert!(p.reason.contains("modified"), "{}", p.reason);
    psql(
        &url,
        "UPDATE ledger_entries SET outcome = 'ok' WHERE seq = 17",
    );
    assert_eq!(replicas[0].ledger_verify().expect("verify").problem, None);

    // A deleted entry, and a cut tail (the head row still says where the chain ended).
    psql(&url, "DELETE FROM ledger_entries WHERE seq = 40");
    let p = replicas[0]
        .ledger_verify()
        .expect("verify")
        .problem
        .expect("gap found");
    assert_eq!(p.seq, 40);
    assert!(p.reason.contains("missing"), "{}", p.reason);
}

#[test]
fn a_cut_tail_is_found_through_the_head_row() {
    let Some(url) = database("tail") else { return };
    let store = PgStore::open(&url).expect("open");
    let entries: Vec<_> = (1..=10).map(|i| call("p", i)).collect();
    store.ledger_append(&entries).expect("append");
    psql(&url, "DELETE FROM ledger_entries WHERE seq > 7");
    let p = store
        .ledger_verify()
        .expect("verify")
        .problem
        .expect("cut found");
    assert!(p.reason.contains("tail was cut"), "{}", p.reason);
    assert_eq!(p.seq, 8);
}

/// A month-long contract on PostgreSQL counts exactly from the per-minute totals: whole minutes from the totals, the
/// minute the window starts in call by call (calls on both sides of the window's start share that minute).
#[test]
fn a_month_window_counts_exactly_from_minute_totals() {
    let Some(url) = database("month") else {
        return;
    };
    let store = PgStore::open(&url).expect("open");
    let month = Window::Month.millis();
    let scope = |max: u64| {
        vec![Scope {
            tool: None,
            window: Window::Month,
            max_calls: Some(max),
            max_cost: None,
        }]
    };
    let t0 = 1_700_000_020_000i64 - 1_700_000_020_000 % 60_000;
    // 400 calls over 40 days, then three in one minute 35 days in: at 10 s, 30 s and 50 s.
    let mut times: Vec<i64> = (0..400)
        .map(|i| t0 + i * 8_640_000 + (i * 7_919) % 50_000)
        .collect();
    let edge = t0 + 35 * 86_400_000 + 60_000 * 7;
    times.extend([edge + 10_000, edge + 30_000, edge + 50_000]);
    times.sort_unstable();
    for &t in &times {
        assert_eq!(
            store
                .admit("m", "t", 1, t, &scope(1_000_000))
                .expect("admit"),
            Admission::Admitted
        );
    }
    // The window starts at the call made 30 s into that minute: it and the one before are out, the last one in.
    let now = edge + 30_000 + month;
    let want = times.iter().filter(|&&t| t > now - month).count() as u64;
    assert!(want > 40, "{want}");
    assert_eq!(
        store.admit("m", "t", 1, now, &scope(want)).expect("admit"),
        Admission::Refused {
            scope: 0,
            cost: false,
            used: want,
            limit: want,
            until_ms: Some(edge + 50_000 + month),
        }
    );
    assert_eq!(
        store
            .admit("m", "t", 1, now, &scope(want + 1))
            .expect("admit"),
        Admission::Admitted
    );
}

#[test]
fn contracts_are_exact_across_three_replicas() {
    let Some(url) = database("contracts") else {
        return;
    };
    let replicas: Vec<Arc<PgStore>> = (0..3)
        .map(|_| Arc::new(PgStore::open(&url).expect("open")))
        .collect();
    let scopes = vec![Scope {
        tool: None,
        window: Window::Minute,
        max_calls: Some(5),
        max_cost: None,
    }];
    let now = 1_700_000_000_000i64;
    let barrier = Arc::new(std::sync::Barrier::new(60));
    let threads: Vec<_> = (0..60)
        .map(|i| {
            let (store, scopes, barrier) =
                (replicas[i % 3].clone(), scopes.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                store
                    .admit("acme.dns", "create", 1, now + i as i64, &scopes)
                    .expect("admit")
            })
        })
        .collect();
    let results: Vec<Admission> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    let admitted = results
        .iter()
        .filter(|a| **a == Admission::Admitted)
        .count();
    assert_eq!(admitted, 5, "{results:?}");
    for r in results.iter().filter(|a| **a != Admission::Admitted) {
        let Admission::Refused {
            used,
            limit,
            cost,
            until_ms,
            ..
        } = r
        else {
            unreachable!()
        };
        assert_eq!((*used, *limit, *cost), (5, 5, false));
        assert!(until_ms.expect("a time it frees") > now + 60_000 - 1);
    }
    // The window slides: a minute after the first five, calls fit again; another plugin was never limited.
    assert_eq!(
        replicas[0]
            .admit("acme.dns", "create", 1, now + 60_100, &scopes)
            .expect("admit"),
        Admission::Admitted
    );
    assert_eq!(
        replicas[1]
            .admit("other", "create", 1, now, &scopes)
            .expect("admit"),
        Admission::Admitted
    );
    // A token budget, per tool: cost 4 of 10 fits twice; a call dearer than the whole budget never fits.
    let budget = vec![Scope {
        tool: Some("big".into()),
        window: Window::Hour,
        max_calls: None,
        max_cost: Some(10),
    }];
    let a = |store: &PgStore, cost| store.admit("b", "big", cost, now, &budget).expect("admit");
    assert_eq!(a(&replicas[0], 4), Admission::Admitted);
    assert_eq!(a(&replicas[1], 4), Admission::Admitted);
    assert!(matches!(
        a(&replicas[2], 4),
        Admission::Refused {
            cost: true,
            used: 8,
            limit: 10,
            until_ms: Some(_),
            ..
        }
    ));
    assert!(matches!(
        a(&replicas[2], 11),
        Admission::Refused { until_ms: None, .. }
    ));
}

#[test]
fn state_written_through_one_replica_is_read_through_another_within_one_quota() {
    let Some(url) = database("state") else { return };
    let (a, b) = (
        PgStore::open(&url).expect("open"),
        PgStore::open(&url).expect("open"),
    );
    assert_eq!(a.state_set("p", "k1", b"hello", 100).expect("set"), Ok(()));
    assert_eq!(
        b.state_get("p", "k1").expect("get").as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(
        b.state_get("q", "k1").expect("get"),
        None,
        "plugins are apart"
    );
    assert_eq!(b.state_used("p").expect("used"), 7);
    // 7 used; 93 more bytes fit, 94 do not — whichever replica writes.
    assert_eq!(
        b.state_set("p", "k2", &[0u8; 92], 100).expect("set"),
        Err((7, 100))
    );
    assert_eq!(
        b.state_set("p", "k2", &[0u8; 91], 100).expect("set"),
        Ok(())
    );
    assert_eq!(a.state_used("p").expect("used"), 100);
    assert_eq!(a.state_list_keys("p", "k").expect("list"), vec!["k1", "k2"]);
    assert!(a.state_delete("p", "k2").expect("delete"));
    assert!(!b.state_delete("p", "k2").expect("delete"));
    assert_eq!(b.state_used("p").expect("used"), 7);
    assert_eq!(b.state_delete_plugin("p").expect("delete plugin"), 1);
    assert_eq!(a.state_used("p").expect("used"), 0);
}

#[test]
fn replicas_starting_together_migrate_once() {
    let Some(url) = database("migrate") else {
        return;
    };
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::open(&url).map(|s| s.schema_version()))
        })
        .collect();
    for t in threads {
        let v = t.join().expect("thread").expect("open").expect("version");
        assert_eq!(v, PG_SCHEMA_VERSION as i64);
    }
    assert_eq!(
        psql(&url, "SELECT count(*) FROM plughost_schema"),
        PG_SCHEMA_VERSION.to_string()
    );
}

#[test]
fn a_server_that_is_not_there_is_unavailable() {
    if server().is_none() {
        eprintln!("!!! PLUGHOST_SKIP_CLUSTER=1: SKIPPING the PostgreSQL store case `unavailable`");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    // Nothing listens on the port now.
    match PgStore::open(&format!("postgres://postgres@127.0.0.1:{port}/x")) {
        Err(PgError::Unavailable(_)) => {}
        other => panic!("expected unavailable, got {other:?}"),
    }
    assert!(matches!(
        PgStore::open("postgres://127.0.0.1:notaport/x"),
        Err(PgError::Setup(_))
    ));
}

#[test]
fn a_change_announced_by_one_replica_reaches_the_others_within_a_second() {
    let Some(url) = database("notify") else {
        return;
    };
    let (a, b, cli) = (
        PgStore::open(&url).expect("open"),
        PgStore::open(&url).expect("open"),
        PgStore::open(&url).expect("open"),
    );
    // Each replica's signals, read on a plain thread (blocking_recv) and handed over with a deadline.
    let listen = |store: &PgStore| {
        let mut rx = store.subscribe();
        let (tx, out) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            while let Some(s) = rx.blocking_recv() {
                if tx.send(s).is_err() {
                    break;
                }
            }
        });
        out
    };
    let (ra, rb) = (listen(&a), listen(&b));
    let second = std::time::Duration::from_secs(1);
    // Listening starts with `*`: reload everything (changes made before are not missed).
    for r in [&ra, &rb] {
        assert_eq!(
            r.recv_timeout(Duration::from_secs(10)).expect("listening"),
            "*"
        );
    }
    cli.notify_change("acme.dns").expect("notify");
    assert_eq!(ra.recv_timeout(second).expect("replica a told"), "acme.dns");
    assert_eq!(rb.recv_timeout(second).expect("replica b told"), "acme.dns");
    a.notify_change("other").expect("notify");
    assert_eq!(rb.recv_timeout(second).expect("replica b told"), "other");
    assert_eq!(
        ra.recv_timeout(second).expect("the sender hears itself"),
        "other"
    );
}
