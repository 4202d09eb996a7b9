//! MCP Inspector (the official debugging client, its CLI mode) connects to the HTTP gateway with a scoped client
//! token: `tools/list` shows exactly the token's tools and a `tools/call` of one of them runs; without the token it
//! cannot connect. Needs `npx` (Node.js) and the npm registry or its cache; skipped, loudly, without `npx`.

mod common;
use common::*;

use std::process::{Command, Stdio};

use serde_json::Value;

/// The Inspector version the README names.
const INSPECTOR: &str = "@modelcontextprotocol/inspector@2.12.0";

fn inspector(url: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new("npx")
        .args([
            "-y",
            "--prefer-offline",
            INSPECTOR,
            "--cli",
            url,
            "--transport",
            "http",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run npx");
    eprintln!(
        "--- inspector {args:?}: {:?}\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn mcp_inspector_lists_and_calls_with_a_scoped_token() {
    if Command::new("npx").arg("--version").output().is_err() {
        eprintln!("SKIPPED: npx (Node.js) is not installed, so MCP Inspector cannot run");
        return;
    }
    let setup = Setup::new();
    let token = create_token(
        &setup,
        &[
            "inspector",
            "--tools",
            "fixture-basic__echo,system-info__system_info",
        ],
    );
    let server = setup.serve_http(&[]);
    let url = server.url();
    let header = format!("Authorization: Bearer {token}");

    let out = inspector(&url, &["--method", "tools/list", "--header", &header]);
    assert!(out.status.success(), "tools/list with the token failed");
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let mut names: Vec<&str> = listed["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["fixture-basic__echo", "system-info__system_info"]);

    let out = inspector(
        &url,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "fixture-basic__echo",
            "--tool-arg",
            "text=from-inspector",
            "--header",
            &header,
        ],
    );
    assert!(out.status.success(), "tools/call with the token failed");
    let called: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(called["content"][0]["text"], "from-inspector", "{called}");
    let entries = ledger_entries(&setup);
    assert!(
        entries
            .iter()
            .any(|e| e["caller"]["principal"] == "inspector"
                && e["tool"] == "echo"
                && e["outcome"] == "ok"),
        "the call is ledgered under the token's name"
    );

    // Without the token: no connection (and no interactive OAuth flow to hang in).
    let out = inspector(&url, &["--method", "tools/list", "--stored-auth-only"]);
    assert!(
        !out.status.success(),
        "tools/list without a token succeeded"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("auth_required")
            || String::from_utf8_lossy(&out.stderr).contains("auth_required"),
        "the Inspector names the missing token"
    );
}
