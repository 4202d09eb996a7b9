//! Tasks (2026-07-28, `io.modelcontextprotocol/tasks`, SEP-2663) over raw Streamable HTTP, since the Python SDK has
//! no tasks client: the server advertises the extension; a tool the operator marked long-running, or the plugin
//! declared so in its manifest, is answered with a task handle when (and only when) the request declares the
//! extension, and the operator's `--long-running false` overrides the plugin; the task is polled from new connections
//! (a reconnect) by the same token and is unknown to another token; `tasks/cancel` stops the spinning guest, the
//! task ends `cancelled` and the ledger says `cancelled`; the next call is served.

mod common;
use common::*;

use plughost_tests as fx;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn tasks_ext() -> Value {
    json!({"extensions": {"io.modelcontextprotocol/tasks": {}}})
}

/// Polls `tasks/get` (a new connection each time) until the task leaves `working`.
fn poll(addr: std::net::SocketAddr, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = rpc_2026(
            addr,
            Some(token),
            "tasks/get",
            id,
            json!({"taskId": id}),
            tasks_ext(),
        );
        let status = r["result"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!status.is_empty(), "{r}");
        if status != "working" || Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_long_running_tool_is_a_task_polled_across_connections_and_cancelled_by_its_owner() {
    let setup = Setup::new();
    setup.spin_for_a_minute();
    setup.ok(&[
        "limits",
        "fixture-basic",
        "--tool",
        "spin",
        "--long-running",
    ]);
    setup.ok(&[
        "limits",
        "fixture-basic",
        "--tool",
        "echo",
        "--long-running",
    ]);
    let shown = setup.ok(&["limits", "fixture-basic"]);
    assert!(shown.contains("long-running echo, spin"), "{shown}");
    let alice = create_token(&setup, &["alice", "--plugins", "fixture-basic"]);
    let bob = create_token(&setup, &["bob", "--plugins", "fixture-basic"]);
    let server = setup.serve_http(&[]);
    let addr = server.addr;

    // The extension is advertised.
    let d = rpc_2026(
        addr,
        Some(&alice),
        "server/discover",
        "",
        json!({}),
        json!({}),
    );
    assert_eq!(
        d["result"]["capabilities"]["extensions"]["io.modelcontextprotocol/tasks"],
        json!({}),
        "{d}"
    );

    // Without the extension on the request, a long-running tool answers in line, as any tool.
    let plain = call_2026(
        addr,
        Some(&alice),
        "fixture-basic__echo",
        json!({"text": "inline"}),
    );
    assert_eq!(plain["result"]["content"][0]["text"], "inline", "{plain}");
    assert_ne!(plain["result"]["resultType"], "task", "{plain}");

    // With it: a task handle at once, then the result from tasks/get.
    let echo = json!({"name": "fixture-basic__echo", "arguments": {"text": "later"}});
    let created = rpc_2026(
        addr,
        Some(&alice),
        "tools/call",
        "fixture-basic__echo",
        echo,
        tasks_ext(),
    );
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    assert_eq!(created["result"]["status"], "working", "{created}");
    assert!(
        created["result"]["ttlMs"].as_u64().unwrap_or(0) >= 60_000,
        "{created}"
    );
    let id = created["result"]["taskId"]
        .as_str()
        .expect("taskId")
        .to_string();
    let done = poll(addr, &alice, &id);
    assert_eq!(done["result"]["status"], "completed", "{done}");
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert_eq!(
        done["result"]["result"]["content"][0]["text"], "later",
        "{done}"
    );
    assert!(
        done["result"]["result"]["_meta"]["plughost/report"].is_object(),
        "{done}"
    );
    // Another principal cannot see it.
    let other = rpc_2026(
        addr,
        Some(&bob),
        "tasks/get",
        &id,
        json!({"taskId": id}),
        tasks_ext(),
    );
    assert_eq!(other["error"]["code"], -32602, "{other}");
    assert!(other["result"].is_null(), "{other}");
    // tasks/* without the extension declared: refused as the SEP says (-32021).
    let undeclared = rpc_2026(
        addr,
        Some(&alice),
        "tasks/get",
        &id,
        json!({"taskId": id}),
        json!({}),
    );
    assert_eq!(undeclared["error"]["code"], -32021, "{undeclared}");

    // A spinning guest as a task: working until cancelled, then cancelled; bob cannot cancel it.
    let spin = json!({"name": "fixture-basic__spin", "arguments": {}});
    let created = rpc_2026(
        addr,
        Some(&alice),
        "tools/call",
        "fixture-basic__spin",
        spin,
        tasks_ext(),
    );
    assert_eq!(created["result"]["resultType"], "task", "{created}");
    let id = created["result"]["taskId"]
        .as_str()
        .expect("taskId")
        .to_string();
    let r = rpc_2026(
        addr,
        Some(&alice),
        "tasks/get",
        &id,
        json!({"taskId": id}),
        tasks_ext(),
    );
    assert_eq!(r["result"]["status"], "working", "{r}");
    let r = rpc_2026(
        addr,
        Some(&bob),
        "tasks/cancel",
        &id,
        json!({"taskId": id}),
        tasks_ext(),
    );
    assert_eq!(r["error"]["code"], -32602, "{r}");
    std::thread::sleep(Duration::from_millis(300));
    let r = rpc_2026(
        addr,
        Some(&alice),
        "tasks/cancel",
        &id,
        json!({"taskId": id}),
        tasks_ext(),
    );
    assert_eq!(r["result"]["resultType"], "complete", "{r}");
    let end = poll(addr, &alice, &id);
    assert_eq!(end["result"]["status"], "cancelled", "{end}");

    // The ledger: the spin was alice's and is `cancelled`, stopped long before its 60 s deadline.
    let spins: Vec<Value> = ledger_entries(&setup)
        .into_iter()
        .filter(|e| e["tool"] == "spin")
        .collect();
    assert_eq!(spins.len(), 1, "{spins:?}");
    assert_eq!(spins[0]["outcome"], "cancelled", "{}", spins[0]);
    assert_eq!(spins[0]["caller"]["principal"], "alice", "{}", spins[0]);
    assert!(
        spins[0]["duration_us"].as_u64().expect("duration") < 10_000_000,
        "{}",
        spins[0]
    );

    // The next call is served.
    let next = call_2026(
        addr,
        Some(&bob),
        "fixture-basic__echo",
        json!({"text": "next"}),
    );
    assert_eq!(next["result"]["content"][0]["text"], "next", "{next}");
}

/// The bounds, set small with `serve --max-tasks-per-principal 1 --max-task-result 1KiB`: a principal with a task
/// running is refused a second one (another principal is not); a finished task makes room; a result over the bound
/// fails its task, saying so.
#[test]
fn tasks_are_bounded_per_principal_and_in_result_size() {
    let setup = Setup::new();
    setup.spin_for_a_minute();
    for tool in ["spin", "echo", "huge_output"] {
        setup.ok(&["limits", "fixture-basic", "--tool", tool, "--long-running"]);
    }
    let alice = create_token(&setup, &["alice", "--plugins", "fixture-basic"]);
    let bob = create_token(&setup, &["bob", "--plugins", "fixture-basic"]);
    let server = setup.serve_http(&[
        "--max-tasks-per-principal",
        "1",
        "--max-task-result",
        "1KiB",
    ]);
    let addr = server.addr;
    let task = |token: &str, tool: &str, args: Value| {
        let name = format!("fixture-basic__{tool}");
        rpc_2026(
            addr,
            Some(token),
            "tools/call",
            &name,
            json!({"name": name, "arguments": args}),
            tasks_ext(),
        )
    };

    let spin = task(&alice, "spin", json!({}));
    let spin_id = spin["result"]["taskId"]
        .as_str()
        .expect("a task")
        .to_string();
    let refused = task(&alice, "echo", json!({"text": "second"}));
    assert_eq!(refused["error"]["code"], -32603, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too many tasks"),
        "{refused}"
    );
    assert_eq!(refused["error"]["data"]["limit"], 1, "{refused}");

    // Bob has his own allowance; his finished task makes room for the next.
    let first = task(&bob, "echo", json!({"text": "small"}));
    let first_id = first["result"]["taskId"]
        .as_str()
        .expect("a task")
        .to_string();
    assert_eq!(poll(addr, &bob, &first_id)["result"]["status"], "completed");
    let big = task(&bob, "huge_output", json!({"bytes": 5000}));
    let big_id = big["result"]["taskId"]
        .as_str()
        .expect("the finished task made room")
        .to_string();
    let failed = poll(addr, &bob, &big_id);
    assert_eq!(failed["result"]["status"], "failed", "{failed}");
    assert_eq!(
        failed["result"]["error"]["data"]["kind"], "too-large",
        "{failed}"
    );
    assert_eq!(failed["result"]["error"]["data"]["limit"], 1024, "{failed}");
    let gone = rpc_2026(
        addr,
        Some(&bob),
        "tasks/get",
        &first_id,
        json!({"taskId": first_id}),
        tasks_ext(),
    );
    assert_eq!(
        gone["error"]["code"], -32602,
        "the evicted task is gone: {gone}"
    );

    let r = rpc_2026(
        addr,
        Some(&alice),
        "tasks/cancel",
        &spin_id,
        json!({"taskId": spin_id}),
        tasks_ext(),
    );
    assert_eq!(r["result"]["resultType"], "complete", "{r}");
    assert_eq!(
        poll(addr, &alice, &spin_id)["result"]["status"],
        "cancelled"
    );
}

/// A tool fixture-offers declares long-running (`#[tool(long_running)]`, nothing set by the operator) is a task for a
/// client that declares the extension, and its manifest says so (the keyword is out of the schema clients see); a tool
/// it does not declare is answered in line; the operator's `--long-running false` overrides the plugin, and
/// `--long-running` (true) overrides that again.
#[test]
fn a_tool_the_plugin_declares_long_running_is_a_task_unless_the_operator_says_otherwise() {
    let setup = Setup::new();
    setup.install(fx::OFFERS, "offers.wasm", &[]);
    let inspect: Value =
        serde_json::from_str(&setup.ok(&["inspect", fx::OFFERS, "--json"])).expect("JSON");
    let tools = inspect["manifest"]["tools"].as_array().expect("tools");
    let declared: Vec<(&str, bool)> = tools
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default(),
                t["long_running"] == true,
            )
        })
        .collect();
    assert_eq!(
        declared,
        [("steps", false), ("slow_steps", true)],
        "{inspect}"
    );
    let shown = setup.ok(&["limits", "offers"]);
    assert!(!shown.contains("long-running"), "{shown}");
    let docs = setup.ok(&["docs", "offers"]);
    let slow = docs
        .find("### `offers__slow_steps`")
        .expect("slow_steps documented");
    assert!(
        docs[slow..].contains("_idempotent, may run long: clients that support MCP tasks"),
        "{docs}"
    );
    assert!(!docs[..slow].contains("may run long"), "{docs}");
    let carol = create_token(&setup, &["carol", "--plugins", "offers"]);
    let task = |addr, tool: &str| {
        let name = format!("offers__{tool}");
        rpc_2026(
            addr,
            Some(&carol),
            "tools/call",
            &name,
            json!({"name": name, "arguments": {"n": 2}}),
            tasks_ext(),
        )
    };
    {
        let server = setup.serve_http(&[]);
        let created = task(server.addr, "slow_steps");
        assert_eq!(created["result"]["resultType"], "task", "{created}");
        let id = created["result"]["taskId"]
            .as_str()
            .expect("taskId")
            .to_string();
        let done = poll(server.addr, &carol, &id);
        assert_eq!(done["result"]["status"], "completed", "{done}");
        assert_eq!(
            done["result"]["result"]["content"][0]["text"], "slowly, 2 steps",
            "{done}"
        );
        let inline = task(server.addr, "steps");
        assert_ne!(inline["result"]["resultType"], "task", "{inline}");
        assert_eq!(
            inline["result"]["content"][0]["text"], "2 steps",
            "{inline}"
        );
        // Clients see the schema without the declaration.
        let listed = rpc_2026(
            server.addr,
            Some(&carol),
            "tools/list",
            "",
            json!({}),
            json!({}),
        );
        let slow = listed["result"]["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .find(|t| t["name"] == "offers__slow_steps")
            .expect("slow_steps listed")
            .clone();
        let schema = slow["inputSchema"].as_object().expect("a schema");
        assert!(!schema.contains_key("x-plughost-long-running"), "{slow}");
        assert_eq!(schema["required"], json!(["n"]), "{slow}");
    }

    setup.ok(&[
        "limits",
        "offers",
        "--tool",
        "slow_steps",
        "--long-running",
        "false",
    ]);
    let shown = setup.ok(&["limits", "offers"]);
    assert!(shown.contains("not long-running slow_steps"), "{shown}");
    {
        let server = setup.serve_http(&[]);
        let inline = task(server.addr, "slow_steps");
        assert_ne!(inline["result"]["resultType"], "task", "{inline}");
        assert_eq!(
            inline["result"]["content"][0]["text"], "slowly, 2 steps",
            "{inline}"
        );
    }

    setup.ok(&["limits", "offers", "--tool", "slow_steps", "--long-running"]);
    let shown = setup.ok(&["limits", "offers"]);
    assert!(
        shown.contains("long-running slow_steps") && !shown.contains("not long-running"),
        "{shown}"
    );
    let server = setup.serve_http(&[]);
    let created = task(server.addr, "slow_steps");
    assert_eq!(created["result"]["resultType"], "task", "{created}");
}
