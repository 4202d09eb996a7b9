//! Python and JavaScript plugins written with plughost's SDKs (`host/templates/python/plughost`, `host/templates/js/plughost`), end to end through the
//! `plughost` binary: the `hello` template (new → test → install → call; its resource read and its prompt rendered,
//! and a copy's progress report received, by the MCP Python SDK through the gateway), a build that names the WIT line to add
//! instead of failing in the toolchain, and the textstats example (its own cases, then a tool using `state` and
//! one using `http` against a real server on loopback, a typed upstream error, fuel). Each language builds its
//! template and its example once (10–70 s per build): everything about a language is one test.

#[path = "common/author.rs"]
mod author;

use std::time::Instant;

use author::{Author, copy_dir, offered, workspace};
use plughost_tests::loopback::{LoopbackServer, Reply};
use serde_json::{Value, json};

struct Lang {
    name: &'static str,
    app: &'static str,
    /// The line that imports the `http` SDK module.
    import_http: &'static str,
    /// What the template must not show: the raw bindings.
    raw: &'static [&'static str],
    example: &'static str,
    example_id: &'static str,
    language: &'static str,
    /// The template offers a resource and a prompt (contract 0.2.0).
    offers: bool,
    /// The line that imports the `progress` SDK module, and a statement that reports (2 of 2, "greeted").
    progress: (&'static str, &'static str),
    /// The template's tool declaration, and the same declared long-running.
    long_running: (&'static str, &'static str),
}

const PYTHON: Lang = Lang {
    name: "python",
    app: "app.py",
    import_http: "from plughost import http\n",
    raw: &["wit_world", "componentize_py_types", "Err(", "json.dumps"],
    example: "python",
    example_id: "py-textstats",
    language: "python",
    offers: true,
    progress: (
        "from plughost import progress\n",
        "    progress.report(2, 2, \"greeted\")\n",
    ),
    long_running: ("@tool\ndef hello", "@tool(long_running=True)\ndef hello"),
};

const JS: Lang = Lang {
    name: "js",
    app: "app.js",
    import_http: "import * as http from './plughost/http.js';\n",
    raw: &[
        "plughost:plugin/",
        "payload",
        "JSON.stringify",
        "inputSchema",
    ],
    example: "js",
    example_id: "js-textstats",
    language: "javascript",
    offers: true,
    progress: (
        "import * as progress from './plughost/progress.js';\n",
        "    progress.report(2, 2, 'greeted');\n",
    ),
    long_running: (
        "const hello = tool({\n",
        "const hello = tool({\n  longRunning: true,\n",
    ),
};

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The template: written with the SDK, built with a derived world, its cases pass, installed and called.
fn template(a: &Author, l: &Lang) {
    let started = Instant::now();
    a.ok(&["new", "demo", "--lang", l.name]);
    let dir = a.work.path().join("demo");
    let app = std::fs::read_to_string(dir.join(l.app)).expect("app");
    for raw in l.raw {
        assert!(!app.contains(raw), "the template shows `{raw}`:\n{app}");
    }
    assert!(
        dir.join("plughost").is_dir(),
        "the SDK is written into the project"
    );
    assert!(
        !dir.join("wit/world.wit").exists(),
        "the world is derived, not written"
    );

    let (out, err) = a.ok(&["test", "--dir", "demo"]);
    assert!(out.contains("4 passed, 0 failed"), "{out}\n{err}");
    assert!(err.contains("imports log, state, config (derived"), "{err}");
    let build_err = err;
    let wasm = a.path("demo/demo.wasm");
    let (out, _) = a.ok(&["inspect", &wasm, "--json"]);
    let v = json_of(&out);
    assert_eq!(
        v["component"]["capabilities"],
        json!(["log", "state", "config"])
    );
    assert_eq!(v["component"]["language"], l.language, "{v}");
    let hello = &v["manifest"]["tools"][0];
    assert_eq!(hello["name"], "hello", "{v}");
    assert_eq!(
        hello["description"],
        "Greets someone by name (the greeting comes from config `greeting`)."
    );
    assert_eq!(
        hello["input_schema"],
        json!({"type": "object", "properties": {"name": {"type": "string", "description": "Who to greet."}}, "required": ["name"]})
    );

    a.ok(&["keys", "generate", "--name", "me", "--trust"]);
    a.ok(&["sign", &wasm, "--key", "me"]);
    a.ok(&["install", &wasm, "--yes"]);
    a.ok(&["config", "demo", "set", "greeting", "Hey"]);
    let (out, err) = a.ok(&["call", "demo", "hello", "--args", r#"{"name":"x"}"#]);
    assert_eq!(out.trim(), "Hey, x! (greeting #1)", "{err}");
    eprintln!(
        "{}: new → called in {:.1} s",
        l.name,
        started.elapsed().as_secs_f64()
    );
    let (out, _) = a.ok(&["call", "demo", "hello", "--args", r#"{"name":"y"}"#]);
    assert_eq!(out.trim(), "Hey, y! (greeting #2)", "state persists");
    if l.offers {
        offers(a, &build_err);
        progress(a, l);
    }
}

/// The template's resource and prompt (contract 0.2.0): the world exports them, and an MCP client (the official
/// Python SDK, tests/mcp/client.py) reads the one and renders the other through the gateway.
fn offers(a: &Author, build_err: &str) {
    assert!(
        build_err.contains("; exports resources, prompts"),
        "{build_err}"
    );
    let v = offered(a, "demo", &[]);
    assert_eq!(v["progress"], json!([]), "{v}");
    assert_eq!(
        v["resource"],
        json!({"uri": "plughost://plugins/demo/r/greetings", "mime": "text/plain",
               "text": "2 greetings so far"}),
        "{v}"
    );
    assert_eq!(
        v["prompt"]["arguments"],
        json!([["name", "Who to welcome.", true]]),
        "{v}"
    );
    assert_eq!(
        v["prompt"]["messages"],
        json!([["user", "Write a short welcome note for Ada."]]),
        "{v}"
    );
}

/// A copy of the template whose tool reports progress through the SDK's `progress` module and is declared
/// long-running: the derived world imports `progress`, the manifest declares the tool long-running, and the report
/// reaches an MCP client that asked for progress (that client does not support tasks, so the call is in line).
fn progress(a: &Author, l: &Lang) {
    a.ok(&["new", "prog", "--lang", l.name]);
    let path = a.work.path().join("prog").join(l.app);
    let app = std::fs::read_to_string(&path).expect("app");
    let (import, report) = l.progress;
    let at = app
        .find("\nimport ")
        .or_else(|| app.find("\nfrom "))
        .expect("an import")
        + 1;
    let app = format!("{}{import}{}", &app[..at], &app[at..]);
    let call = app.find("    log.info(").expect("a log line");
    let app = format!("{}{report}{}", &app[..call], &app[call..]);
    let (plain, declared) = l.long_running;
    assert!(app.contains(plain), "{app}");
    std::fs::write(&path, app.replacen(plain, declared, 1)).expect("app");
    let (_, err) = a.ok(&["build", "--dir", "prog"]);
    assert!(
        err.contains("imports log, state, config, progress (derived"),
        "{err}"
    );
    let wasm = a.path("prog/prog.wasm");
    let (inspect, _) = a.ok(&["inspect", &wasm, "--json"]);
    let inspect = json_of(&inspect);
    assert_eq!(
        inspect["manifest"]["tools"][0]["long_running"], true,
        "{inspect}"
    );
    assert!(
        !inspect["manifest"]["tools"][0]["input_schema"]
            .as_object()
            .expect("a schema")
            .contains_key("x-plughost-long-running"),
        "{inspect}"
    );
    a.ok(&["sign", &wasm, "--key", "me"]);
    a.ok(&["install", &wasm, "--yes"]);
    let v = offered(
        a,
        "prog",
        &["--tool", "prog__hello", "--call", r#"{"name":"x"}"#],
    );
    assert_eq!(v["tool"], "Hello, x! (greeting #1)", "{v}");
    assert_eq!(v["progress"], json!([[2.0, 2.0, "greeted"]]), "{v}");
}

/// Code that uses a capability its own `wit/world.wit` lacks: the build names the file, the line and the WIT line
/// to add, before any toolchain runs (no ImportError from inside componentize-py).
fn missing_import(a: &Author, l: &Lang) {
    let dir = a.work.path().join("demo");
    let world = "package local:plugin;\n\nworld plugin {\n    import plughost:plugin/log@0.1.0;\n    \
                 import plughost:plugin/state@0.1.0;\n    import plughost:plugin/config@0.1.0;\n\n    \
                 export plughost:plugin/tools@0.1.0;\n}\n";
    std::fs::create_dir_all(dir.join("wit")).expect("mkdir wit");
    std::fs::write(dir.join("wit/world.wit"), world).expect("world");
    let app = std::fs::read_to_string(dir.join(l.app)).expect("app");
    let at = app
        .find("\nimport ")
        .or_else(|| app.find("\nfrom "))
        .expect("an import")
        + 1;
    let line = app[..at].lines().count() + 1;
    std::fs::write(
        dir.join(l.app),
        format!("{}{}{}", &app[..at], l.import_http, &app[at..]),
    )
    .expect("app");
    let text = a.fails(&["build", "--dir", "demo"], 2);
    assert!(
        text.contains(&format!("{}:{line} uses `http`", l.app)),
        "{text}"
    );
    assert!(
        text.contains("    import plughost:plugin/http@0.1.0;\n"),
        "{text}"
    );
    assert!(
        !text.contains("ImportError") && !text.contains("backtrace"),
        "{text}"
    );
    assert!(text.lines().count() < 12, "a short message:\n{text}");
    if l.offers {
        assert!(
            text.contains("    export plughost:plugin/resources@0.2.0;\n")
                && text.contains("uses `prompts`, which wit/world.wit does not export"),
            "{text}"
        );
    }
}

/// The example: its cases, then `fetch_stats` (http) against a real loopback server and `totals` (state).
fn example(a: &Author, l: &Lang) {
    let project = a.work.path().join(l.example);
    copy_dir(
        &workspace().join("guests/examples").join(l.example),
        &project,
    );
    let (out, err) = a.ok(&["test", "--dir", l.example]);
    assert!(out.contains("8 passed, 0 failed"), "{out}\n{err}");
    assert!(
        out.contains("ok     fetch_stats from an origin that is not granted is denied"),
        "{out}"
    );
    assert!(
        out.contains("ok     a loop that would run for hours is stopped by fuel"),
        "{out}"
    );
    let wasm = a.path(&format!("{}/{}.wasm", l.example, l.example_id));
    let (out, _) = a.ok(&["inspect", &wasm, "--json"]);
    let v = json_of(&out);
    assert_eq!(
        v["component"]["capabilities"],
        json!(["log", "state", "config", "http"])
    );
    let tools = v["manifest"]["tools"].as_array().expect("tools");
    let tool = |name: &str| {
        tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no tool {name}: {v}"))
    };
    let analyze = tool("analyze");
    assert_eq!(analyze["input_schema"]["required"], json!(["text"]), "{v}");
    assert_eq!(
        analyze["input_schema"]["properties"]["text"],
        json!({"type": "string", "description": "The text to analyze."})
    );
    assert_eq!(
        analyze["output_schema"]["properties"]["top_words"]["items"]["properties"]["count"],
        json!({"type": "integer"}),
        "{v}"
    );
    assert_eq!(tool("totals")["annotations"]["readOnlyHint"], true, "{v}");

    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let server = rt.block_on(LoopbackServer::start(|r| match r.path.as_str() {
        "/text" => Reply::new(200, "the cat and the hat\nthe end"),
        _ => Reply::new(503, "down for maintenance"),
    }));
    let origin = server.origin();
    a.ok(&["keys", "generate", "--name", "me", "--trust"]);
    a.ok(&[
        "sign",
        &wasm,
        "--key",
        "me",
        "--request",
        &format!("http:{origin}"),
    ]);
    a.ok(&["install", &wasm, "--yes"]);
    let id = l.example_id;
    let url = server.url("/text");
    let (out, err) = a.ok(&[
        "call",
        id,
        "fetch_stats",
        "--args",
        &json!({ "url": url }).to_string(),
        "--json",
    ]);
    let v = json_of(&out);
    assert_eq!(
        v["result"]["ok"]["structured"],
        json!({"characters": 27, "words": 7, "lines": 2, "unique_words": 5, "top_words": [
            {"word": "cat", "count": 1}, {"word": "end", "count": 1}, {"word": "hat", "count": 1}]}),
        "{v}\n{err}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].header("accept"), Some("text/plain"));

    // A 503 from the server is the tool's typed upstream error, with the status.
    let o = a.run(&[
        "call",
        id,
        "fetch_stats",
        "--args",
        &json!({ "url": server.url("/gone") }).to_string(),
        "--json",
    ]);
    let v = json_of(&String::from_utf8_lossy(&o.stdout));
    let detail = &v["result"]["error"]["detail"];
    assert_eq!(
        (detail["kind"].as_str(), detail["status"].as_u64()),
        (Some("upstream"), Some(503)),
        "{v}"
    );

    // State: the fetched document is in the totals.
    let (out, _) = a.ok(&["call", id, "totals", "--json"]);
    let v = json_of(&out);
    assert_eq!(
        v["result"]["ok"]["structured"],
        json!({"documents": 1, "words": 7}),
        "{v}"
    );

    a.fuel_stops_a_long_count(id);
}

fn language(l: &Lang) {
    let a = Author::new();
    template(&a, l);
    missing_import(&a, l);
    let b = Author::new();
    let started = Instant::now();
    example(&b, l);
    eprintln!(
        "{}: example built, tested and called in {:.1} s",
        l.name,
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn python_sdk_template_and_example() {
    language(&PYTHON);
}

#[test]
fn js_sdk_template_and_example() {
    language(&JS);
}

/// The SDK's TypeScript declarations type a tool's arguments from its `input` schemas: a correct tool checks, and
/// one that uses a string argument as a number is an error. (tsc is in the pinned JS toolchain, a dependency of jco.)
#[test]
fn js_sdk_declarations_infer_a_tools_arguments() {
    let a = Author::new();
    a.ok(&["toolchain", "install", "js"]);
    a.ok(&["new", "demo", "--lang", "js"]);
    let dir = a.work.path().join("demo");
    let good = "import { plugin, s, tool, Denied } from './plughost/index.js';\n\
                import * as state from './plughost/state.js';\n\
                import * as http from './plughost/http.js';\n\
                const t = tool({ description: 'd', input: { name: s.string('who'), n: s.optional(s.integer()) },\n\
                  run({ name, n }) {\n\
                    const a: string = name; const b: number | undefined = n;\n\
                    const c: number = state.getJson('k', 0);\n\
                    const d = http.get('http://x', { headers: { A: http.secret('k', 'B ') } }).json<{ a: number }>().a;\n\
                    if (!a) throw new Denied('no');\n\
                    return { a, b, c, d };\n\
                  } });\n\
                export const tools = plugin({ id: 'x', version: '1', description: 'd', tools: { t } });\n\
                import { offerPrompts, offerResources, prompt, resource } from './plughost/offers.js';\n\
                import * as progress from './plughost/progress.js';\n\
                const r = resource({ path: 'day/{date}', read(vars) { progress.report(1, 2, 'm'); return vars.date; } });\n\
                const p = prompt({ arguments: { name: s.string('who'), style: s.optional(s.string()) },\n\
                  render({ name, style }) { const x: string = name; const y: string | undefined = style;\n\
                    return [['user', x + (y ?? '')], { role: 'assistant', text: 'ok' }]; } });\n\
                export const resources = offerResources([r]);\n\
                export const prompts = offerPrompts({ p });\n";
    let bad = "import { s, tool } from './plughost/index.js';\n\
               tool({ description: 'd', input: { name: s.string() }, run({ name }) { const n: number = name; return n; } });\n";
    std::fs::write(dir.join("good.ts"), good).expect("good.ts");
    std::fs::write(dir.join("bad.ts"), bad).expect("bad.ts");
    let toolchains = std::env::var_os("PLUGHOST_TOOLCHAINS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/toolchains"));
    let tsc = toolchains.join("js/node_modules/typescript/bin/tsc");
    let check = |file: &str| {
        std::process::Command::new("node")
            .arg(&tsc)
            .args(["--noEmit", "--strict", "--target", "es2022"])
            .args([
                "--module",
                "nodenext",
                "--moduleResolution",
                "nodenext",
                file,
            ])
            .current_dir(&dir)
            .output()
            .expect("run tsc")
    };
    let o = check("good.ts");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let o = check("bad.ts");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("bad.ts(2,") && out.contains("TS2322"), "{out}");
}
