//! Scoped client tokens and the protected resource metadata, as MCP clients see them: the official Python SDK with a
//! scoped token sees only its tools and is refused the others (-32602, recorded as `denied` under the token's
//! name); a request without a token gets 401 naming the metadata; a revoked or expired token is refused; the token
//! itself is never shown again. A contract set on one principal limits exactly that token's calls.

mod common;
use common::*;

use serde_json::Value;

#[test]
fn a_scoped_token_sees_and_calls_only_its_tools_and_is_refused_once_revoked() {
    let setup = Setup::new();
    let server = setup.serve_http(&[]);
    let addr = server.addr;

    // The metadata is open, and names this resource; no authorization server (tokens come from the operator).
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let (status, text) = http(addr, "GET", path, &[], b"");
        assert_eq!(status, 200, "{text}");
        let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap_or_default())
            .expect("JSON metadata");
        assert_eq!(body["resource"], format!("http://{addr}/mcp"));
        assert_eq!(body["authorization_servers"], serde_json::json!([]));
    }

    // No token configured and none created: open, as before.
    let (status, _) = http(addr, "GET", "/ready", &[], b"");
    assert_eq!(status, 200);
    let (status, _) = http(addr, "GET", "/ui/plugins", &[], b"");
    assert_eq!(status, 200);

    let token = create_token(
        &setup,
        &[
            "agent",
            "--tools",
            "fixture-basic__echo,system-info__system_info",
        ],
    );
    // Now every request needs a token; the refusal names the metadata.
    let (status, text) = http(addr, "GET", "/ready", &[], b"");
    assert_eq!(status, 401, "{text}");
    assert!(
        text.contains(&format!(
            "resource_metadata=\"http://{addr}/.well-known/oauth-protected-resource/mcp\""
        )),
        "{text}"
    );
    // The operator page follows: closed without the operator's token once a client token exists.
    let (status, _) = http(addr, "GET", "/ui/plugins", &[], b"");
    assert_eq!(status, 401);
    // A scoped token speaks MCP only: /metrics shows every plugin.
    let bearer = format!("Bearer {token}");
    let (status, _) = http(addr, "GET", "/metrics", &[("Authorization", &bearer)], b"");
    assert_eq!(status, 403);

    scoped_client_checks(
        &server.url(),
        &token,
        r#"["fixture-basic__echo", "system-info__system_info"]"#,
        &["--docs", r#"["fixture-basic", "system-info"]"#],
    );

    // The ledger names the token: its calls and its refusals.
    let entries = ledger_entries(&setup);
    let export = format!("{entries:?}");
    let by_agent = |tool: &str| {
        entries
            .iter()
            .filter(|e| e["caller"]["principal"] == "agent" && e["tool"] == tool)
            .cloned()
            .collect::<Vec<_>>()
    };
    let echo = by_agent("echo");
    assert_eq!(echo.len(), 2, "{export}");
    let spin = by_agent("spin");
    assert_eq!(spin.len(), 2, "{export}");
    for e in &spin {
        assert_eq!(e["outcome"], "denied", "{e}");
        assert_eq!(e["fuel_used"], 0, "{e}");
    }

    // Listing and history never show the token.
    let list = setup.ok(&["tokens", "list", "--json"]);
    let history = setup.ok(&["history"]);
    assert!(
        list.contains("\"agent\"") && !list.contains(&token),
        "{list}"
    );
    assert!(history.contains("token-create") && !history.contains(&token));

    // Revoked: refused at once (tokens are checked on every request).
    setup.ok(&["tokens", "revoke", "agent"]);
    let (status, _) = http(addr, "GET", "/mcp", &[("Authorization", &bearer)], b"");
    assert_eq!(status, 401);
    assert!(setup.ok(&["tokens", "list"]).contains("revoked"));

    // An expired token is refused too; a live all-access one may read /ready.
    let short = create_token(&setup, &["brief", "--expires", "1s"]);
    let all = create_token(&setup, &["ops"]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (status, _) = http(
        addr,
        "GET",
        "/ready",
        &[("Authorization", &format!("Bearer {short}"))],
        b"",
    );
    assert_eq!(status, 401);
    let (status, _) = http(
        addr,
        "GET",
        "/ready",
        &[("Authorization", &format!("Bearer {all}"))],
        b"",
    );
    assert_eq!(status, 200);
    // A wrong token of the right shape is refused.
    let (status, _) = http(
        addr,
        "GET",
        "/ready",
        &[(
            "Authorization",
            "Bearer plughost_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )],
        b"",
    );
    assert_eq!(status, 401);
}

/// `plughost limits ID --principal NAME --calls …` limits exactly that token's calls: alice's third call in the
/// minute is refused as `quota` naming her contract, while bob (another scoped token on the same plugin) and the
/// plugin's other callers go on.
#[test]
fn a_contract_set_on_one_principal_limits_only_that_tokens_calls() {
    let setup = Setup::new();
    let alice = create_token(&setup, &["alice", "--plugins", "fixture-basic"]);
    let bob = create_token(&setup, &["bob", "--plugins", "fixture-basic"]);
    setup.ok(&[
        "limits",
        "fixture-basic",
        "--principal",
        "alice",
        "--calls",
        "2/minute",
    ]);
    let shown = setup.ok(&["limits", "fixture-basic"]);
    assert!(
        shown.contains("principal alice") && shown.contains("2 calls per minute"),
        "{shown}"
    );
    // --cost is a price, not a principal's; --principal alone changes nothing.
    let o = setup
        .cmd(&[
            "limits",
            "fixture-basic",
            "--principal",
            "alice",
            "--cost",
            "3",
        ])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    let server = setup.serve_http(&[]);
    let echo = |token: &str, text: &str| {
        call_2026(
            server.addr,
            Some(token),
            "fixture-basic__echo",
            serde_json::json!({ "text": text }),
        )
    };
    for i in 0..2 {
        let r = echo(&alice, &format!("a{i}"));
        assert_eq!(r["result"]["isError"], false, "{r}");
    }
    let refused = echo(&alice, "a2");
    let error = &refused["result"]["_meta"]["plughost/error"];
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    assert_eq!(error["kind"], "quota", "{refused}");
    assert_eq!(error["principal"], "alice", "{refused}");
    assert_eq!(
        (error["used"].as_u64(), error["limit"].as_u64()),
        (Some(2), Some(2)),
        "{refused}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("principal `alice`"),
        "{refused}"
    );
    for i in 0..3 {
        let r = echo(&bob, &format!("b{i}"));
        assert_eq!(
            r["result"]["isError"], false,
            "bob is not limited by alice's contract: {r}"
        );
    }
    // The ledger: alice's refusal is `quota` and cost her nothing; bob's three calls are `ok`.
    let entries = ledger_entries(&setup);
    let outcomes = |who: &str| {
        entries
            .iter()
            .filter(|e| e["caller"]["principal"] == who && e["tool"] == "echo")
            .map(|e| e["outcome"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(outcomes("alice"), ["ok", "ok", "quota"]);
    assert_eq!(outcomes("bob"), ["ok", "ok", "ok"]);
    let quota = setup.ok(&["quota", "fixture-basic"]);
    assert!(quota.contains("principal alice: calls 2 of 2"), "{quota}");
}
