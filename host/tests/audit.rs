//! The audit trail: operator actions (install, grant, revoke, limits, config and secret names, token create and
//! revoke, key trust) and refused installs are listed by `plughost audit` in order, with names but never values;
//! the chain verifies (`audit --verify`, `ledger verify`), and editing or deleting a row of it is found and named.

mod common;
use common::*;

use serde_json::Value;

fn actions(setup: &Setup) -> Vec<(String, String)> {
    let out = setup.ok(&["audit", "--json"]);
    let rows: Vec<Value> = serde_json::from_str(&out).expect("JSON");
    rows.iter()
        .map(|r| {
            (
                r["action"].as_str().expect("action").to_string(),
                r["plugin"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

fn index(setup: &Setup) -> rusqlite::Connection {
    rusqlite::Connection::open(std::path::Path::new(setup.home()).join("index.db")).expect("index")
}

#[test]
fn operator_actions_and_refusals_form_a_chain_that_finds_tampering() {
    let setup = Setup::new();
    setup.ok(&["revoke", "fixture-basic", "log"]);
    setup.ok(&["grant", "fixture-basic", "log"]);
    setup.ok(&["config", "fixture-basic", "set", "region", "eu"]);
    let mut secret = setup.cmd(&["config", "fixture-basic", "set", "api_token", "--secret"]);
    secret.stdin(std::process::Stdio::piped());
    let mut child = secret.spawn().expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"s3cr3t-VALUE-never-in-the-trail\n")
            .expect("write the secret");
    }
    assert!(child.wait().expect("wait").success());
    setup.ok(&["tokens", "create", "agent", "--plugins", "fixture-basic"]);
    setup.ok(&["tokens", "revoke", "agent"]);

    // A refused install: unsigned bytes are not installed, and the refusal is on the trail.
    let unsigned = setup.path("unsigned.wasm");
    std::fs::copy(plughost_tests::STATE_B, &unsigned).expect("copy");
    let refused = setup
        .cmd(&["install", &unsigned, "--yes"])
        .output()
        .expect("run");
    assert!(!refused.status.success());

    let got = actions(&setup);
    let names: Vec<&str> = got.iter().map(|(a, _)| a.as_str()).collect();
    for want in [
        "trust",
        "install",
        "limits",
        "grants",
        "config-set",
        "secret-set",
        "token-create",
        "token-revoke",
        "install-refused",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // In the order they happened.
    let pos = |a: &str| names.iter().position(|n| *n == a).expect("present");
    assert!(pos("trust") < pos("install") && pos("token-revoke") < pos("install-refused"));
    let text = setup.ok(&["audit"]);
    assert!(text.contains("api_token"), "{text}");
    assert!(!text.contains("s3cr3t-VALUE"), "{text}");
    assert!(text.contains("unsigned.wasm"), "{text}");

    // Intact: both commands say so.
    let verify = setup.cmd(&["audit", "--verify"]).output().expect("run");
    assert!(verify.status.success());
    assert!(String::from_utf8_lossy(&verify.stderr).contains("entries are chained"));
    let ledger = setup.ok(&["ledger", "verify"]);
    assert!(ledger.contains("audit trail"), "{ledger}");

    // --since filters by time: nothing is from the future.
    assert_eq!(
        setup.ok(&["audit", "--since", "2999-01-01"]).trim(),
        "no entries"
    );

    // Edit one row's detail: found at that row, by `ledger verify` and `audit --verify`.
    let db = index(&setup);
    let grants_seq: i64 = db
        .query_row(
            "SELECT seq FROM history WHERE action = 'grants' ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("a grants row");
    db.execute(
        "UPDATE history SET detail = 'log, state, http' WHERE seq = ?1",
        [grants_seq],
    )
    .expect("tamper");
    for args in [&["ledger", "verify"][..], &["audit", "--verify"][..]] {
        let o = setup.cmd(args).output().expect("run");
        let out = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {out}");
        assert!(
            out.contains(&format!("broken at entry {grants_seq} (grants)")),
            "{args:?}: {out}"
        );
    }

    // Delete a row instead: the row after it no longer follows.
    db.execute("DELETE FROM history WHERE seq = ?1", [grants_seq])
        .expect("delete");
    let o = setup.cmd(&["audit", "--verify"]).output().expect("run");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("broken at entry {}", grants_seq + 1)),
        "{out}"
    );
}

/// A guest asking `http` for an origin outside its grant is a security event on the audit trail: the first refusal
/// of the call is listed with the origin it asked for (never the path or query), the four after it in the same
/// minute are one coalesced row with their count; the chain still verifies. Over the gateway the same holds.
#[test]
fn denied_capability_calls_are_on_the_trail_coalesced_and_without_values() {
    let setup = Setup::new();
    setup.install(
        plughost_tests::NEEDS_HTTP,
        "needs-http.wasm",
        &["http:http://127.0.0.1:9"],
    );
    let out = setup.ok(&[
        "call",
        "fixture-needs-http",
        "fetch",
        "--args",
        r#"{"url": "http://203.0.113.9:8080/private/path?key=query-value", "repeat": 5}"#,
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v["report"]["host_calls"]["http"], 5, "{out}");
    let results = v["result"]["ok"]["content"][0]["json"]["results"]
        .as_array()
        .expect("results");
    assert_eq!(results.len(), 5, "{out}");
    assert!(results.iter().all(|r| r["error"] == "denied"), "{out}");

    let denied = |setup: &Setup| -> Vec<Value> {
        let rows: Vec<Value> = serde_json::from_str(&setup.ok(&["audit", "--json"])).expect("JSON");
        rows.into_iter()
            .filter(|r| r["action"] == "capability-denied")
            .collect()
    };
    let rows = denied(&setup);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter().all(|r| r["plugin"] == "fixture-needs-http"),
        "{rows:?}"
    );
    assert_eq!(
        rows[0]["detail"], "http: http://203.0.113.9:8080 is not granted",
        "{rows:?}"
    );
    assert!(
        rows[1]["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with("http: 4 more refused"),
        "{rows:?}"
    );
    let text = setup.ok(&["audit"]);
    assert!(text.contains("capability-denied"), "{text}");
    assert!(
        !text.contains("private") && !text.contains("query-value"),
        "{text}"
    );
    let ledger = setup.ok(&["ledger", "verify"]);
    assert!(ledger.contains("audit trail"), "{ledger}");

    // Through the gateway: a denied call there is listed too, at once (the listing is not deferred).
    let server = setup.serve_http(&[]);
    let r = call_2026(
        server.addr,
        None,
        "fixture-needs-http__fetch",
        serde_json::json!({"url": "http://198.51.100.7/"}),
    );
    assert!(r.to_string().contains("denied"), "{r}");
    let rows = denied(&setup);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        rows[2]["detail"], "http: http://198.51.100.7 is not granted",
        "{rows:?}"
    );
    assert!(
        setup
            .cmd(&["audit", "--verify"])
            .output()
            .expect("run")
            .status
            .success()
    );
}
