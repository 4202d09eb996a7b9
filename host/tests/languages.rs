//! Plugins in every language, end to end through the `plughost` binary as an author and an operator use it:
//! `plughost new` → `plughost test` (build + the generated cases) → sign → install → call through the host; a
//! denied capability fails cleanly; a CPU loop is stopped by fuel. The example plugins in guests/examples are
//! built and tested the same way. Python and JavaScript, written with their SDKs, are in scripted.rs.
//!
//! Toolchains (componentize-py, componentize-js, zig) are installed by plughost itself on first use into
//! `$PLUGHOST_TOOLCHAINS`, default `target/toolchains` here, so a rerun installs nothing. Python and JavaScript
//! components take ~10 s each to compile.

#[path = "common/author.rs"]
mod author;

use author::{Author, copy_dir, offered, workspace};
use plughost_tests as fx;
use std::process::Stdio;

/// The whole author → operator path for a template in `lang`.
fn template_end_to_end(lang: &str) {
    let a = Author::new();
    let (out, _) = a.ok(&["new", "demo", "--lang", lang]);
    assert!(out.contains("created demo"), "{out}");
    for f in ["plughost.toml", "README.md", ".gitignore"] {
        assert!(a.work.path().join("demo").join(f).is_file(), "{f} missing");
    }

    // One command builds and runs the generated test cases.
    let (out, err) = a.ok(&["test", "--dir", "demo"]);
    assert!(out.contains("4 passed, 0 failed"), "{out}\n{err}");
    let wasm = a.path("demo/demo.wasm");
    let bytes = std::fs::read(&wasm).expect("the build wrote demo.wasm");
    assert_eq!(
        &bytes[..8],
        b"\0asm\x0d\0\x01\0",
        "a component, not a core module"
    );

    // The component imports exactly the capabilities its world names.
    let (out, _) = a.ok(&["inspect", &wasm, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v["component"]["capabilities"],
        serde_json::json!(["log", "state", "config"])
    );
    assert_eq!(v["manifest"]["id"], "demo");
    // The language is read from the component, and sets the default fuel: interpreters get 5x.
    let (language, default_fuel) = match lang {
        "rust" => ("rust", 1_000_000_000u64),
        "python" => ("python", 5_000_000_000),
        "js" => ("javascript", 5_000_000_000),
        _ => ("other", 1_000_000_000),
    };
    assert_eq!(v["component"]["language"], language, "{v}");

    // Publish and install, signed; then call through the host.
    a.ok(&["keys", "generate", "--name", "me", "--trust"]);
    a.ok(&["sign", &wasm, "--key", "me"]);
    a.ok(&["install", &wasm, "--yes"]);
    let (out, _) = a.ok(&["limits", "demo", "--json"]);
    let l: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(l["effective"]["fuel"], default_fuel, "{l}");
    a.ok(&["config", "demo", "set", "greeting", "Hey"]);
    let (out, err) = a.ok(&["call", "demo", "hello", "--args", r#"{"name":"x"}"#]);
    assert_eq!(out.trim(), "Hey, x! (greeting #1)", "{err}");
    assert!(err.contains("outcome     ok"), "{err}");
    assert!(err.contains("state×"), "{err}");
    let (out, _) = a.ok(&["call", "demo", "hello", "--args", r#"{"name":"y"}"#]);
    assert_eq!(
        out.trim(),
        "Hey, y! (greeting #2)",
        "state persists between calls"
    );
    if lang == "c" {
        c_offers(&a, &wasm);
    }
    // Arguments that break the input schema are refused before the guest runs, typed, not a crash.
    let text = a.fails(&["call", "demo", "hello", "--args", "{}"], 2);
    assert!(text.contains("invalid-arguments"), "{text}");

    // A denied capability fails cleanly: before any guest code runs, naming what is missing.
    let text = a.fails(
        &[
            "call",
            &wasm,
            "hello",
            "--args",
            r#"{"name":"x"}"#,
            "--grant",
            "log",
            "--grant",
            "config",
        ],
        2,
    );
    assert!(text.contains("state"), "{text}");
    a.ok(&["revoke", "demo", "state"]);
    let text = a.fails(&["call", "demo", "hello", "--args", r#"{"name":"x"}"#], 2);
    assert!(text.contains("state"), "{text}");
    a.ok(&["grant", "demo", "state"]);
    let (out, _) = a.ok(&["call", "demo", "hello", "--args", r#"{"name":"z"}"#]);
    assert_eq!(out.trim(), "Hey, z! (greeting #3)");

    // Too little fuel ends the call with a typed outcome and the host keeps serving.
    let text = a.fails(
        &[
            "call",
            "demo",
            "hello",
            "--args",
            r#"{"name":"x"}"#,
            "--fuel",
            "500",
        ],
        1,
    );
    assert!(text.contains("out-of-fuel"), "{text}");
}

/// The C template's resource and prompt (contract 0.2.0: its world exports `resources` and `prompts`, which the
/// C bindings name like the 0.1.0 interfaces, without the package version): listed, read and rendered through the
/// gateway by the official Python SDK client, over stdio, and ledgered like calls.
fn c_offers(a: &Author, wasm: &str) {
    let (inspect, _) = a.ok(&["inspect", wasm]);
    assert!(
        inspect.contains("contract     plughost:plugin@0.2.0"),
        "{inspect}"
    );
    let v = offered(a, "demo", &[]);
    assert_eq!(
        v["resource"],
        serde_json::json!({"uri": "plughost://plugins/demo/r/greetings", "mime": "text/plain",
                           "text": "2 greetings so far"}),
        "{v}"
    );
    assert_eq!(
        v["prompt"]["description"], "Writes a welcome note for someone.",
        "{v}"
    );
    assert_eq!(
        v["prompt"]["arguments"],
        serde_json::json!([["name", "Who to welcome.", true]]),
        "{v}"
    );
    assert_eq!(
        v["prompt"]["messages"],
        serde_json::json!([["user", "Write a short welcome note for Ada."]]),
        "{v}"
    );
    let entries = a.ok(&["ledger", "export"]).0;
    assert!(entries.contains("\"resource:greetings\""), "{entries}");
    assert!(entries.contains("\"prompt:welcome\""), "{entries}");
}

/// An example plugin: its own test cases (with a fuel-stopped loop), then installed and called.
fn example_end_to_end(dir: &str, id: &str) {
    let a = Author::new();
    let project = a.work.path().join(dir);
    copy_dir(&workspace().join("guests/examples").join(dir), &project);
    let (out, err) = a.ok(&["test", "--dir", dir]);
    assert!(out.contains("7 passed, 0 failed"), "{out}\n{err}");
    assert!(
        out.contains("ok     a loop that would run for hours is stopped by fuel"),
        "{out}"
    );

    let wasm = a.path(&format!("{dir}/{id}.wasm"));
    a.ok(&["keys", "generate", "--name", "me", "--trust"]);
    a.ok(&["sign", &wasm, "--key", "me"]);
    a.ok(&["install", &wasm, "--yes"]);
    a.ok(&["config", id, "set", "top_words", "1"]);
    let (out, _) = a.ok(&[
        "call",
        id,
        "analyze",
        "--args",
        r#"{"text":"to be or not to be"}"#,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let s = &v["result"]["ok"]["structured"];
    assert_eq!(s["words"], 6, "{v}");
    assert_eq!(
        s["top_words"],
        serde_json::json!([{ "word": "be", "count": 2 }]),
        "{v}"
    );
    assert_eq!(v["report"]["outcome"]["kind"], "ok");

    // The spin: a loop that would run for hours, stopped by the plugin's fuel limit.
    a.fuel_stops_a_long_count(id);
    // The next call starts clean.
    let (out, _) = a.ok(&["call", id, "totals", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["result"]["ok"]["structured"]["documents"], 1, "{v}");
}

#[test]
fn rust_template_builds_installs_and_runs() {
    template_end_to_end("rust");
}

#[test]
fn rust_template_with_a_vendored_sdk_builds_away_from_a_checkout() {
    // What `plughost new --lang rust` does when the checkout it was built from is gone: the SDK and the WIT contract
    // are written into the project, which then builds on its own (dependencies from crates.io).
    let a = Author::new();
    a.ok(&["new", "demo", "--lang", "rust", "--vendor-sdk"]);
    let cargo = std::fs::read_to_string(a.work.path().join("demo/Cargo.toml")).expect("Cargo.toml");
    assert!(
        cargo.contains(r#"plughost-guest = { path = "vendor/plughost-guest" }"#),
        "{cargo}"
    );
    assert!(a.work.path().join("demo/vendor/wit/world.wit").is_file());
    let (out, err) = a.ok(&["test", "--dir", "demo"]);
    assert!(out.contains("4 passed, 0 failed"), "{out}\n{err}");

    // A compile error is the author's: the message points at the compiler's output, not at an installed target.
    let lib = a.work.path().join("demo/src/lib.rs");
    let mut src = std::fs::read_to_string(&lib).expect("lib.rs");
    src.push_str("\nfn broken( {\n");
    std::fs::write(&lib, src).expect("write lib.rs");
    let text = a.fails(&["build", "--dir", "demo"], 2);
    assert!(text.contains("the compiler's messages are above"), "{text}");
    assert!(!text.contains("rustup target add"), "{text}");
}

#[test]
fn rust_lean_template_has_no_wasi_and_runs() {
    // `--lean`: the same template built for wasm32-unknown-unknown. Its component imports the three capabilities it
    // calls and no WASI interface, and the generated cases (state, config, a typed error, a refused grant) pass.
    let a = Author::new();
    a.ok(&["new", "demo", "--lang", "rust", "--lean"]);
    let toml = std::fs::read_to_string(a.work.path().join("demo/plughost.toml")).expect("toml");
    assert!(toml.contains("\nlean = true\n"), "{toml}");
    let cargo = std::fs::read_to_string(a.work.path().join("demo/Cargo.toml")).expect("Cargo.toml");
    assert!(cargo.contains(r#"features = ["panic-log"] }"#), "{cargo}");
    let (out, err) = a.ok(&["test", "--dir", "demo"]);
    assert!(out.contains("4 passed, 0 failed"), "{out}\n{err}");
    let (out, _) = a.ok(&["inspect", &a.path("demo/demo.wasm"), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v["component"]["capabilities"],
        serde_json::json!(["log", "state", "config"]),
        "{v}"
    );
    assert_eq!(v["component"]["wasi_imports"], serde_json::json!([]), "{v}");
    assert_eq!(v["component"]["language"], "rust", "{v}");
    // Lean builds are a Rust target: other languages are refused up front.
    let text = a.fails(&["new", "pydemo", "--lang", "python", "--lean"], 2);
    assert!(text.contains("Rust plugins only"), "{text}");
    // The same for a project file that says `lean = true`: `plughost build` refuses it before any toolchain runs.
    a.ok(&["new", "pydemo", "--lang", "python"]);
    let toml = a.work.path().join("pydemo/plughost.toml");
    let text = std::fs::read_to_string(&toml).expect("toml");
    let text = text.replacen("lang = \"python\"\n", "lang = \"python\"\nlean = true\n", 1);
    std::fs::write(&toml, text).expect("write toml");
    let text = a.fails(&["build", "--dir", "pydemo"], 2);
    assert!(text.contains("Rust plugins only"), "{text}");
}

#[test]
fn rust_lean_template_with_a_vendored_sdk_builds() {
    // The vendored SDK must carry the SDK's features too: a lean template asks for `panic-log`.
    let a = Author::new();
    a.ok(&["new", "demo", "--lang", "rust", "--vendor-sdk", "--lean"]);
    let (out, err) = a.ok(&["test", "--dir", "demo"]);
    assert!(out.contains("4 passed, 0 failed"), "{out}\n{err}");
}

/// The Rust example, written with the SDK's `#[tool]`: its own cases, then its manifest as the attribute derived it,
/// then installed and called against a real loopback service (GET, then a JSON POST to a webhook), with the checks
/// kept in state.
#[test]
fn rust_example_checks_a_loopback_service_and_keeps_its_history() {
    use fx::loopback::{LoopbackServer, Reply};
    let a = Author::new();
    let project = a.work.path().join("rust");
    copy_dir(&workspace().join("guests/examples/rust"), &project);
    // The example names the SDK by its place in this repository; the copy names it by its absolute path.
    let manifest = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("Cargo.toml");
    let sdk = workspace().join("guest-sdk");
    std::fs::write(
        &manifest,
        text.replace(
            "\"../../../guest-sdk\"",
            &format!("{:?}", sdk.display().to_string()),
        ),
    )
    .expect("write Cargo.toml");
    let (out, err) = a.ok(&["test", "--dir", "rust"]);
    assert!(out.contains("5 passed, 0 failed"), "{out}\n{err}");

    // What `#[tool]` derived: the doc comment is the description, the argument struct the input schema, the return
    // type the output schema; `export_plugin!` took the crate's version.
    let wasm = a.path("rust/rs-uptime.wasm");
    let (out, _) = a.ok(&["inspect", &wasm, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let m = &v["manifest"];
    assert_eq!(m["version"], "0.1.0", "{m}");
    assert_eq!(m["name"], "Uptime", "{m}");
    let check = &m["tools"][0];
    assert_eq!(check["name"], "check", "{m}");
    assert_eq!(
        check["description"],
        "Checks a service's health endpoint, remembers the result, and posts it to `report_to` if given."
    );
    assert_eq!(check["annotations"]["openWorldHint"], true, "{check}");
    assert_eq!(
        check["input_schema"]["required"],
        serde_json::json!(["url"]),
        "{check}"
    );
    let props = &check["output_schema"]["properties"];
    assert_eq!(props["status"]["type"], "integer", "{check}");
    assert_eq!(
        props["healthy"]["description"],
        "Whether the service said `\"status\": \"ok\"`."
    );
    let history = &m["tools"][1];
    assert_eq!(history["description"], "The last checks, oldest first.");
    assert_eq!(history["annotations"]["readOnlyHint"], true, "{history}");
    // A tool without an argument takes the empty object.
    assert_eq!(history["input_schema"]["title"], "NoArgs", "{history}");
    assert_eq!(history["input_schema"]["type"], "object", "{history}");
    assert!(
        history["output_schema"]["properties"]["checks"].is_object(),
        "{history}"
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let server = rt.block_on(LoopbackServer::start(|r| match r.path.as_str() {
        "/health" => Reply::json(
            200,
            &serde_json::json!({ "status": "ok", "version": "1.2.3" }),
        ),
        "/hook" => Reply::new(204, ""),
        _ => Reply::new(404, "no such page"),
    }));
    let grant = format!("http:{}", server.origin());
    a.ok(&["keys", "generate", "--name", "me", "--trust"]);
    a.ok(&["sign", &wasm, "--key", "me", "--request", &grant]);
    a.ok(&["install", &wasm, "--yes"]);
    let args =
        serde_json::json!({ "url": server.url("/health"), "report_to": server.url("/hook") });
    let (out, err) = a.ok(&[
        "call",
        "rs-uptime",
        "check",
        "--args",
        &args.to_string(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let health = &v["result"]["ok"]["structured"];
    let want = serde_json::json!({
        "url": server.url("/health"), "status": 200, "healthy": true, "version": "1.2.3"
    });
    assert_eq!(health, &want, "{v}\n{err}");
    let seen = server.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", "/health")
    );
    assert_eq!(seen[0].header("accept"), Some("application/json"));
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("POST", "/hook")
    );
    assert_eq!(seen[1].header("content-type"), Some("application/json"));
    assert_eq!(seen[1].json(), want, "the webhook got the result as JSON");

    // A service answering 404 is a typed upstream error naming the status; it is not kept.
    let args = serde_json::json!({ "url": server.url("/gone") });
    let text = a.fails(
        &["call", "rs-uptime", "check", "--args", &args.to_string()],
        1,
    );
    assert!(
        text.contains("upstream") && text.contains("HTTP 404: no such page"),
        "{text}"
    );
    let (out, _) = a.ok(&["call", "rs-uptime", "history", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let kept = &v["result"]["ok"]["structured"];
    assert_eq!(kept["healthy"], 1, "{v}");
    assert_eq!(kept["checks"], serde_json::json!([want]), "{v}");
}

/// `plughost test` right after `plughost build` reuses the component; an edited source, or a component changed
/// behind its back, is built again. (A C project: stamped like Python and JavaScript, and fast to build.)
#[test]
fn test_reuses_a_build_whose_inputs_did_not_change() {
    let a = Author::new();
    a.ok(&["new", "cdemo", "--lang", "c"]);
    let (_, err) = a.ok(&["build", "--dir", "cdemo"]);
    assert!(err.contains("built "), "{err}");
    // Off a terminal, the toolchain's step is a line when it starts and one when it ends (no spinner codes).
    assert!(err.contains("zig cc: 2 C file(s) → "), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("zig cc: ") && l.contains(": done in ")),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "{err}");
    let test_json = |a: &Author| -> (serde_json::Value, String) {
        let (out, err) = a.ok(&["test", "--dir", "cdemo", "--json"]);
        (serde_json::from_str(&out).expect("test --json"), err)
    };
    let started = std::time::Instant::now();
    let (v, err) = test_json(&a);
    eprintln!("test with the build reused: {:?}", started.elapsed());
    assert_eq!(v["reused_build"], true, "{v}\n{err}");
    assert!(err.contains("is up to date"), "{err}");
    assert!(!err.contains("building "), "{err}");
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(4), Some(0)),
        "{v}"
    );
    assert_eq!(v["cases"][0]["ok"], true, "{v}");

    // An edit to a source file is a new input.
    let src = a.work.path().join("cdemo/src/plugin.c");
    let mut text = std::fs::read_to_string(&src).expect("plugin.c");
    text.push_str("\n/* edited */\n");
    std::fs::write(&src, text).expect("write");
    let (v, err) = test_json(&a);
    assert_eq!(v["reused_build"], false, "{v}\n{err}");
    assert!(err.contains("building cdemo"), "{err}");
    let (v, _) = test_json(&a);
    assert_eq!(v["reused_build"], true, "{v}");

    // A component that is not the one built is not reused.
    let wasm = a.work.path().join("cdemo/cdemo.wasm");
    let mut bytes = std::fs::read(&wasm).expect("wasm");
    bytes.extend_from_slice(b"\0");
    std::fs::write(&wasm, bytes).expect("write");
    let (v, err) = test_json(&a);
    assert_eq!(v["reused_build"], false, "{v}\n{err}");

    // A failing case is reported in the JSON, and the exit code says so.
    let toml = a.work.path().join("cdemo/plughost.toml");
    let text = std::fs::read_to_string(&toml).expect("toml");
    std::fs::write(&toml, text.replacen("Hi, Ada!", "Howdy, Ada!", 1)).expect("write");
    let o = a.run(&["test", "--dir", "cdemo", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        (v["passed"].as_u64(), v["failed"].as_u64()),
        (Some(3), Some(1)),
        "{v}"
    );
    assert!(
        v["cases"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("Howdy")),
        "{v}"
    );
}

/// `plughost dev --stdio`: a client connected to the loop sees the tool list change after the source is edited.
#[test]
fn dev_serves_the_project_and_serves_the_edit() {
    use std::io::{BufRead, BufReader, Write};
    let a = Author::new();
    // Its own crate name: tests build their templates at once in one shared target dir.
    a.ok(&["new", "devdemo", "--lang", "rust"]);
    let mut child = a
        .cmd(&["dev", "--dir", "devdemo", "--stdio", "--interval", "200ms"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn dev");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // Anything but JSON on stdout is an answer no id matches, and is named when the test fails.
            let v = serde_json::from_str(&line)
                .unwrap_or_else(|_| serde_json::json!({ "not_mcp": line }));
            let _ = tx.send(v);
        }
    });
    let mut send = |v: serde_json::Value| {
        writeln!(stdin, "{v}").expect("write to dev");
        stdin.flush().expect("flush");
    };
    let answer = |id: u64| -> serde_json::Value {
        loop {
            let v = rx
                .recv_timeout(std::time::Duration::from_secs(300))
                .expect("an answer from dev");
            assert!(v.get("not_mcp").is_none(), "stdout carries only MCP: {v}");
            if v["id"] == id {
                return v;
            }
        }
    };
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}),
    );
    answer(1);
    send(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    let tools = |v: &serde_json::Value| -> Vec<String> {
        v["result"]["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    send(serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}));
    let first = tools(&answer(2));
    assert!(first.contains(&"devdemo__hello".to_string()), "{first:?}");
    assert!(!first.contains(&"devdemo__bye".to_string()), "{first:?}");

    // The author adds a tool.
    let lib = a.work.path().join("devdemo/src/lib.rs");
    let text = std::fs::read_to_string(&lib).expect("lib.rs");
    let text = text.replace("tools: [hello],", "tools: [hello, bye],")
        + "\n/// Says goodbye.\n#[tool]\nfn bye() -> Result<String, ToolError> {\n    Ok(\"Bye!\".into())\n}\n";
    std::fs::write(&lib, text).expect("write lib.rs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let mut id = 3;
    let seen = loop {
        send(serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}));
        let now = tools(&answer(id));
        if now.contains(&"devdemo__bye".to_string()) || std::time::Instant::now() > deadline {
            break now;
        }
        id += 1;
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    assert!(
        seen.contains(&"devdemo__bye".to_string()),
        "the edit was not served: {seen:?}"
    );
    assert!(seen.contains(&"devdemo__hello".to_string()), "{seen:?}");
    // And the new tool runs, with the grants of the project's cases.
    send(
        serde_json::json!({"jsonrpc": "2.0", "id": 1000, "method": "tools/call",
        "params": {"name": "devdemo__bye", "arguments": {}}}),
    );
    let v = answer(1000);
    assert_eq!(v["result"]["content"][0]["text"], "Bye!", "{v}");
    drop(stdin);
    let status = child.wait().expect("dev ends when stdin closes");
    assert!(status.success(), "{status:?}");
}

#[test]
fn c_template_builds_installs_and_runs() {
    template_end_to_end("c");
}

#[test]
fn c_example_passes_its_cases_and_fuel_stops_a_loop() {
    example_end_to_end("c", "c-textstats");
}

#[test]
fn rust_spin_loop_is_stopped_by_fuel() {
    let a = Author::new();
    let text = a.fails(
        &[
            "call",
            fx::BASIC,
            "spin",
            "--grant",
            "state",
            "--grant",
            "log",
            "--fuel",
            "5000000",
        ],
        1,
    );
    assert!(text.contains("out-of-fuel"), "{text}");
}

/// `plughost componentize` wraps the core module that zig built into a component that the host runs, and
/// refuses what it cannot wrap.
#[test]
fn componentize_wraps_a_core_module() {
    let a = Author::new();
    a.ok(&["new", "cmod", "--lang", "c"]);
    a.ok(&["build", "--dir", "cmod"]);
    let core = a.path("cmod/build/core.wasm");
    let bytes = std::fs::read(&core).expect("zig wrote the core module");
    assert_eq!(&bytes[..8], b"\0asm\x01\0\0\0", "a core module");
    let out = a.path("wrapped.wasm");
    a.ok(&["componentize", &core, "-o", &out]);
    let (text, err) = a.ok(&[
        "call",
        &out,
        "hello",
        "--args",
        r#"{"name":"C"}"#,
        "--grant",
        "log",
        "--grant",
        "state",
        "--grant",
        "config",
    ]);
    assert_eq!(text.trim(), "Hello, C! (greeting #1)", "{err}");
    // A component is not wrapped again; a file that is not wasm is refused.
    let text = a.fails(&["componentize", &out, "-o", &a.path("again.wasm")], 2);
    assert!(text.contains("component already"), "{text}");
    let junk = a.path("junk.wasm");
    std::fs::write(&junk, b"not wasm").expect("write");
    let text = a.fails(&["componentize", &junk], 2);
    assert!(text.contains("not a WebAssembly module"), "{text}");
}

#[test]
fn new_refuses_bad_names_and_existing_dirs() {
    let a = Author::new();
    let text = a.fails(&["new", "Bad_Name", "--lang", "python"], 2);
    assert!(text.contains("cannot be a plugin id"), "{text}");
    a.ok(&["new", "twice", "--lang", "js"]);
    let text = a.fails(&["new", "twice", "--lang", "js"], 2);
    assert!(text.contains("not empty"), "{text}");
    let text = a.fails(&["build"], 2);
    assert!(text.contains("no plughost.toml"), "{text}");
}
