//! A `ledger.db` written by the previous format (schema 1: no time index) opens, is migrated in place, verifies,
//! and takes new entries on the same chain.

use plughost_registry::ledger::{Caller, Kind, Ledger, NewEntry};

fn call(t: i64) -> NewEntry {
    NewEntry {
        time_ms: t,
        kind: Kind::Call,
        plugin: "p".into(),
        version: "0.1.0".into(),
        digest: "blake3:00".into(),
        tool: "echo".into(),
        caller: Caller::default(),
        duration_us: 1,
        fuel_used: 1,
        peak_memory: 1,
        outcome: "ok".into(),
        args_digest: None,
        cost: 1,
        event: None,
        data: None,
    }
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

#[test]
fn a_ledger_of_the_previous_schema_is_migrated_and_still_verifies() {
    let dir = tempfile::tempdir().expect("dir");
    {
        let l = Ledger::open(dir.path()).expect("open");
        l.append(&[call(1), call(2), call(3)]).expect("append");
    }
    {
        // Turn it into exactly what schema 1 wrote.
        let c = rusqlite::Connection::open(dir.path().join("ledger.db")).expect("db");
        c.execute_batch("DROP INDEX entries_time; PRAGMA user_version = 1;")
            .expect("downgrade");
    }
    assert_eq!(schema(dir.path()), (1, vec!["entries_plugin_time".into()]));
    let l = Ledger::open(dir.path()).expect("open");
    assert_eq!(
        schema(dir.path()),
        (2, vec!["entries_plugin_time".into(), "entries_time".into()])
    );
    let v = l.verify().expect("verify");
    assert_eq!((v.entries, v.problem.clone()), (3, None));
    assert_eq!(l.append(&[call(4)]).expect("append"), vec![4]);
    let v = l.verify().expect("verify");
    assert_eq!((v.entries, v.problem), (4, None));
}
