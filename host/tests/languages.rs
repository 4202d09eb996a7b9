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

use author::{Author, copy_dir, workspace};
use plughost_tests as fx;

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
