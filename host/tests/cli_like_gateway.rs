//! The CLI behaves like the gateway: arguments are checked against the tool's input schema before any guest runs,
//! "could not start" is exit 2, a closed stdout is no panic, and hints point the way that works.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use plughost_tests as fx;
use serde_json::Value;

/// A data dir and a work dir, as in `cli.rs`.
struct Cli {
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            home: tempfile::tempdir().expect("home"),
            work: tempfile::tempdir().expect("work"),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_plughost"));
        c.args(args)
            .env("PLUGHOST_HOME", self.home.path())
            .env_remove("PLUGHOST_LOG")
            .current_dir(self.work.path())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run plughost")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "plughost {args:?} failed ({:?}):\n{}{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs, expects exit code `code`, returns stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            o.status.code(),
            Some(code),
            "plughost {args:?}: stdout {} stderr {err}",
            String::from_utf8_lossy(&o.stdout)
        );
        err
    }

    /// Copies a fixture into the work dir.
    fn copy(&self, fixture: &str, name: &str) -> PathBuf {
        let to = self.work.path().join(name);
        std::fs::copy(fixture, &to).expect("copy fixture");
        to
    }

    /// Signs `fixture` with a trusted key `acme` requesting `caps`, and installs it.
    fn install(&self, fixture: &str, name: &str, caps: &[&str]) {
        self.ok(&["keys", "generate", "--name", "acme", "--trust"]);
        let wasm = self.copy(fixture, name);
        let w = wasm.to_str().expect("utf-8");
        let mut sign = vec!["sign", w, "--key", "acme"];
        for c in caps {
            sign.extend(["--request", c]);
        }
        self.ok(&sign);
        self.ok(&["install", w, "--yes"]);
    }

    /// The ledger's entries, oldest first.
    fn ledger(&self) -> Vec<Value> {
        let out = self.ok(&["ledger", "show", "--json"]);
        let v: Value = serde_json::from_str(&out).expect("ledger JSON");
        v.as_array().expect("entries").clone()
    }
}

#[test]
fn a_file_call_checks_the_arguments_against_the_input_schema_before_the_guest_runs() {
    let cli = Cli::new();
    let call = |args: &str| {
        cli.fails(
            &[
                "call",
                fx::BASIC,
                "echo",
                "--grant",
                "state",
                "--grant",
                "log",
                "--args",
                args,
            ],
            2,
        )
    };
    // The wrong type and a missing property: each violation is named by where it is and what it breaks.
    let err = call(r#"{"text": 5}"#);
    assert!(err.contains("invalid arguments for `echo`"), "{err}");
    assert!(err.contains("at `/text`"), "{err}");
    assert!(err.contains("/properties/text/type"), "{err}");
    assert!(!err.contains("call report"), "no guest ran: {err}");
    let err = call("{}");
    assert!(err.contains("\"text\" is a required property"), "{err}");
    assert!(err.contains("/required"), "{err}");
    // Valid arguments still run.
    let out = cli.ok(&[
        "call",
        fx::BASIC,
        "echo",
        "--grant",
        "state",
        "--grant",
        "log",
        "--args",
        r#"{"text": "hi"}"#,
    ]);
    assert_eq!(out.trim(), "hi");
}

#[test]
fn an_installed_call_checks_the_arguments_and_records_the_refusal_like_the_gateway() {
    let cli = Cli::new();
    cli.install(fx::BASIC, "basic.wasm", &["state", "log"]);
    let err = cli.fails(
        &["call", "fixture-basic", "echo", "--args", r#"{"text": 5}"#],
        2,
    );
    assert!(
        err.contains("at `/text`") && err.contains("/properties/text/type"),
        "{err}"
    );
    assert!(!err.contains("call report"), "no guest ran: {err}");
    // Recorded as the gateway records it: invalid-arguments, no fuel, no cost.
    let entries = cli.ledger();
    let last = entries.last().expect("an entry");
    assert_eq!(last["tool"], "echo", "{last}");
    assert_eq!(last["outcome"], "invalid-arguments", "{last}");
    assert_eq!(last["caller"]["transport"], "cli", "{last}");
    assert_eq!(last["fuel_used"], 0, "{last}");
}

#[test]
fn an_unknown_tool_or_arguments_that_are_not_a_json_object_could_not_start() {
    let cli = Cli::new();
    let file = |tool: &str, args: &str| {
        cli.fails(
            &[
                "call",
                fx::BASIC,
                tool,
                "--grant",
                "state",
                "--grant",
                "log",
                "--args",
                args,
            ],
            2,
        )
    };
    let err = file("nope", "{}");
    assert!(err.contains("unknown tool `nope`"), "{err}");
    let err = file("echo", "{not json");
    assert!(err.contains("not valid JSON"), "{err}");
    let err = file("echo", "[1]");
    assert!(err.contains("must be a JSON object"), "{err}");

    cli.install(fx::BASIC, "basic.wasm", &["state", "log"]);
    let err = cli.fails(&["call", "fixture-basic", "nope"], 2);
    assert!(err.contains("unknown tool `nope`"), "{err}");
    let err = cli.fails(&["call", "fixture-basic", "echo", "--args", "{oops"], 2);
    assert!(err.contains("not valid JSON"), "{err}");
    let outcomes: Vec<Value> = cli
        .ledger()
        .iter()
        .filter(|e| e["kind"] == "call")
        .map(|e| e["outcome"].clone())
        .collect();
    assert_eq!(
        outcomes,
        [
            Value::from("unknown-tool"),
            Value::from("invalid-arguments")
        ]
    );
}

/// Runs `args` with stdout a pipe nobody reads: its read end is closed before the process starts, so the first
/// write fails with EPIPE every time.
fn run_into_closed_pipe(cli: &Cli, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    cli.cmd(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run plughost")
}

#[test]
fn info_shows_each_tools_arguments() {
    let cli = Cli::new();
    cli.install(fx::BASIC, "basic.wasm", &["state", "log"]);
    let info = cli.ok(&["info", "fixture-basic"]);
    let lines: Vec<&str> = info.lines().map(str::trim).collect();
    let echo = lines
        .iter()
        .position(|l| l.starts_with("echo "))
        .unwrap_or_else(|| panic!("no echo tool in {info}"));
    assert_eq!(lines[echo + 1], "text: string (required)", "{info}");
    assert!(lines.contains(&"lines: integer (required)"), "{info}");
    // `docs` renders the same arguments as Markdown (what MCP clients read at plughost://plugins/ID/docs).
    let docs = cli.ok(&["docs", "fixture-basic"]);
    assert!(docs.contains("### `fixture-basic__echo`"), "{docs}");
    assert!(docs.contains("- text: string (required)"), "{docs}");
    assert!(docs.contains("- `state`"), "{docs}");
}

#[test]
fn a_closed_stdout_ends_every_command_quietly_without_a_panic() {
    let cli = Cli::new();
    cli.install(fx::BASIC, "basic.wasm", &["state", "log"]);
    cli.ok(&[
        "call",
        "fixture-basic",
        "echo",
        "--args",
        r#"{"text": "x"}"#,
    ]);
    for args in [
        &["info", "fixture-basic"][..],
        &["info", "fixture-basic", "--json"],
        &["list"],
        &["list", "--json"],
        &["grants", "fixture-basic"],
        &["keys", "list"],
        &["ledger", "show"],
        &["ledger", "export"],
        &["history"],
        &["inspect", fx::BASIC],
        &[
            "call",
            "fixture-basic",
            "echo",
            "--args",
            r#"{"text": "x"}"#,
        ],
        &[
            "call",
            "fixture-basic",
            "echo",
            "--args",
            r#"{"text": "x"}"#,
            "--json",
        ],
    ] {
        let o = run_into_closed_pipe(&cli, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(o.status.code(), Some(101), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

#[test]
fn an_installed_plugin_missing_a_grant_is_told_to_use_plughost_grant() {
    let cli = Cli::new();
    cli.install(fx::SYSTEM_INFO, "system-info.wasm", &["system"]);
    cli.ok(&["revoke", "system-info", "system"]);
    let err = cli.fails(&["call", "system-info", "memory"], 2);
    assert!(err.contains("`plughost grant system-info system`"), "{err}");
    assert!(
        !err.contains("--grant"),
        "refused for installed plugins: {err}"
    );
    // A file call still names the flag, which is how a file gets grants.
    let err = cli.fails(&["call", fx::SYSTEM_INFO, "memory"], 2);
    assert!(err.contains("--grant system"), "{err}");
}

#[test]
fn generating_a_key_that_exists_mentions_if_missing() {
    let cli = Cli::new();
    cli.ok(&["keys", "generate", "--name", "acme"]);
    let err = cli.fails(&["keys", "generate", "--name", "acme"], 2);
    assert!(
        err.contains("already exists") && err.contains("--if-missing"),
        "{err}"
    );
    cli.ok(&["keys", "generate", "--name", "acme", "--if-missing"]);
}

#[test]
fn a_core_module_is_pointed_at_plughost_componentize() {
    let cli = Cli::new();
    let core = cli.work.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write");
    let core = core.to_str().expect("utf-8");
    for args in [&["inspect", core][..], &["call", core, "x"]] {
        let err = cli.fails(args, 2);
        assert!(
            err.contains("plughost componentize core.wasm"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn an_http_url_denied_by_a_grant_without_a_scheme_says_that_means_https_only() {
    let cli = Cli::new();
    let out = cli.ok(&[
        "call",
        fx::NEEDS_HTTP,
        "fetch",
        "--grant",
        "http:127.0.0.1:8900",
        "--args",
        r#"{"url": "http://127.0.0.1:8900/"}"#,
        "--json",
    ]);
    assert!(out.contains("denied"), "{out}");
    assert!(out.contains("https only"), "{out}");
    assert!(out.contains("http:http://127.0.0.1:8900"), "{out}");
}

#[test]
fn an_error_is_said_once_even_when_a_library_error_shows_and_chains_its_cause() {
    let cli = Cli::new();
    let file = cli.work.path().join("not-a-dir");
    std::fs::write(&file, b"").expect("write");
    let o = cli
        .cmd(&["list"])
        .env("PLUGHOST_HOME", &file)
        .output()
        .expect("run plughost");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("File exists (os error 17)").count(), 1, "{err}");
}
