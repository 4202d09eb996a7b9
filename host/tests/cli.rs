//! The `plughost` binary as a user runs it: real components, a real data dir, exit codes and messages.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use plughost_tests as fx;
use serde_json::Value;

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

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        common::run_with_stdin(&mut self.cmd(args), input)
    }

    /// Copies a fixture into the work dir (so its .sig lands next to it).
    fn copy(&self, fixture: &str, name: &str) -> PathBuf {
        let to = self.work.path().join(name);
        std::fs::copy(fixture, &to).expect("copy fixture");
        to
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

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
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

    /// A trusted signing key `acme`.
    fn with_key(&self) -> &Self {
        self.ok(&["keys", "generate", "--name", "acme", "--trust"]);
        self
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn inspect_shows_contract_capabilities_and_tools() {
    let cli = Cli::new();
    let out = cli.ok(&["inspect", fx::SYSTEM_INFO]);
    // Built with the SDK, which targets 0.2.0 (it exports resources and prompts, empty here).
    assert!(out.contains("contract     plughost:plugin@0.2.0"), "{out}");
    assert!(out.contains("digest       blake3:"), "{out}");
    assert!(out.contains("health_check"), "{out}");
    let v = cli.json(&["inspect", fx::SYSTEM_INFO, "--json"]);
    assert_eq!(
        v["component"]["capabilities"],
        serde_json::json!(["system"])
    );
    assert_eq!(v["manifest"]["id"], "system-info");
    assert!(v["manifest"]["tools"][0]["input_schema"].is_object());
}

#[test]
fn call_prints_the_result_and_a_report_and_json_has_both() {
    let cli = Cli::new();
    let o = cli.run(&["call", fx::SYSTEM_INFO, "memory", "--grant", "system"]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("call report: system-info/memory"), "{err}");
    assert!(err.contains("host calls  system×1"), "{err}");
    let v = cli.json(&[
        "call",
        fx::SYSTEM_INFO,
        "health_check",
        "--grant",
        "system",
        "--args",
        r#"{"memory_percent": 99.5}"#,
        "--json",
    ]);
    assert!(v["report"]["fuel_used"].as_u64().expect("fuel") > 0);
    assert!(v["report"]["peak_memory_bytes"].as_u64().expect("peak") > 0);
    assert_eq!(v["report"]["outcome"]["kind"], "ok");
    assert!(v["result"]["ok"]["structured"]["verdict"].is_string());
}

#[test]
fn a_missing_grant_is_refused_naming_the_flag() {
    let cli = Cli::new();
    let err = cli.fails(&["call", fx::SYSTEM_INFO, "cpu"], 2);
    assert!(err.contains("--grant system"), "{err}");
}

#[test]
fn limits_end_in_typed_outcomes_with_exit_1() {
    let cli = Cli::new();
    let o = cli.run(&[
        "call",
        fx::BASIC,
        "spin",
        "--grant",
        "state",
        "--grant",
        "log",
        "--fuel",
        "10000000",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["report"]["outcome"]["kind"], "out-of-fuel");
    assert_eq!(v["report"]["fuel_limit"], 10_000_000);
    let err = cli.fails(
        &[
            "call",
            fx::BASIC,
            "sleep",
            "--args",
            r#"{"ms": 5000}"#,
            "--grant",
            "state",
            "--grant",
            "log",
            "--timeout",
            "200ms",
        ],
        1,
    );
    assert!(err.contains("outcome     deadline"), "{err}");
}

#[test]
fn core_modules_and_wrong_contracts_are_refused() {
    let cli = Cli::new();
    let core = cli.work.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write");
    let err = cli.fails(&["inspect", s(&core)], 2);
    assert!(err.contains("core"), "{err}");
    assert!(err.contains("component"), "{err}");
    let err = cli.fails(&["install", s(&core), "--allow-unsigned", "--yes"], 2);
    assert!(err.contains("core"), "{err}");
    let err = cli.fails(&["inspect", fx::WRONG_VERSION], 2);
    assert!(err.contains("1.0.0") && err.contains("0.1.0"), "{err}");
    assert_eq!(cli.json(&["list", "--json"]), serde_json::json!([]));
}

#[test]
fn signed_install_needs_approval_then_runs_from_the_registry() {
    let cli = Cli::new();
    cli.with_key();
    let wasm = cli.copy(fx::SYSTEM_INFO, "system-info.wasm");

    // Unsigned: refused, with the way forward.
    let err = cli.fails(&["install", s(&wasm), "--yes"], 2);
    assert!(
        err.contains("not signed") && err.contains("plughost sign"),
        "{err}"
    );

    // A bare file name in the current directory (the work dir), as people type it.
    let out = cli.ok(&["sign", "system-info.wasm", "--key", "acme"]);
    assert!(out.contains("declares  system"), "{out}");
    assert!(cli.work.path().join("system-info.wasm.sig").exists());

    // No terminal and no --yes: nothing is installed.
    let err = cli.fails(&["install", s(&wasm)], 2);
    assert!(err.contains("not approved"), "{err}");
    assert_eq!(cli.json(&["list", "--json"]), serde_json::json!([]));

    cli.ok(&["install", s(&wasm), "--yes"]);
    let list = cli.json(&["list", "--json"]);
    assert_eq!(list[0]["id"], "system-info");
    assert_eq!(list[0]["grants"], serde_json::json!(["system"]));
    assert_eq!(list[0]["publisher"]["name"], "acme");

    // Called by id: grants come from the registry, CLI grants are refused.
    let v = cli.json(&["call", "system-info", "memory", "--json"]);
    assert_eq!(v["report"]["outcome"]["kind"], "ok");
    let err = cli.fails(&["call", "system-info", "memory", "--grant", "system"], 2);
    assert!(err.contains("plughost grant"), "{err}");

    // Revoke the grant: the plugin no longer loads, and says why. Grant it back: it runs again.
    cli.ok(&["revoke", "system-info", "system"]);
    let err = cli.fails(&["call", "system-info", "memory"], 2);
    assert!(
        err.contains("not loaded") && err.contains("system"),
        "{err}"
    );
    cli.ok(&["grant", "system-info", "system"]);
    cli.ok(&["call", "system-info", "memory"]);
    // Grants are limited to what the publisher declared.
    let err = cli.fails(&["grant", "system-info", "http:https://api.example.com"], 2);
    assert!(err.contains("did not declare"), "{err}");

    // Installing the same thing again is a no-op; remove takes it away.
    let out = cli.ok(&["install", s(&wasm), "--yes"]);
    assert!(out.contains("already installed"), "{out}");
    cli.ok(&["remove", "system-info"]);
    assert_eq!(cli.json(&["list", "--json"]), serde_json::json!([]));
}

#[test]
fn tampered_relabelled_and_untrusted_components_are_refused() {
    let cli = Cli::new();
    cli.with_key();
    let wasm = cli.copy(fx::SYSTEM_INFO, "system-info.wasm");
    cli.ok(&["sign", s(&wasm), "--key", "acme"]);
    let sig = cli.work.path().join("system-info.wasm.sig");

    // One flipped byte.
    let flipped = cli.work.path().join("flipped.wasm");
    let mut b = std::fs::read(&wasm).expect("read");
    let last = b.len() - 1;
    b[last] ^= 0x01;
    std::fs::write(&flipped, b).expect("write");
    let err = cli.fails(&["install", s(&flipped), "--sig", s(&sig), "--yes"], 2);
    assert!(err.contains("does not match the signed digest"), "{err}");

    // Another component's signature.
    let other = cli.copy(fx::STATE_B, "state-b.wasm");
    let err = cli.fails(&["install", s(&other), "--sig", s(&sig), "--yes"], 2);
    assert!(err.contains("signed for system-info"), "{err}");

    // A statement edited after signing (asks for more capabilities).
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&sig).expect("sig")).expect("sig json");
    doc["statement"]["capabilities"] = serde_json::json!(["system", "http"]);
    let edited = cli.work.path().join("edited.sig");
    std::fs::write(&edited, doc.to_string()).expect("write");
    let err = cli.fails(&["install", s(&wasm), "--sig", s(&edited), "--yes"], 2);
    assert!(err.contains("does not verify"), "{err}");

    // A key nobody trusted.
    cli.ok(&["keys", "generate", "--name", "stranger", "--out", "."]);
    let other_sig = cli.work.path().join("stranger.sig");
    cli.ok(&[
        "sign",
        s(&wasm),
        "--key",
        "stranger",
        "--out",
        s(&other_sig),
    ]);
    let err = cli.fails(&["install", s(&wasm), "--sig", s(&other_sig), "--yes"], 2);
    assert!(
        err.contains("not trusted") && err.contains("keys trust"),
        "{err}"
    );

    // Once trusted, the same signature installs.
    cli.ok(&["keys", "trust", "stranger.pub"]);
    cli.ok(&["install", s(&wasm), "--sig", s(&other_sig), "--yes"]);
    assert!(
        cli.json(&["list", "--json"])
            .as_array()
            .expect("list")
            .len()
            == 1
    );
}

/// Writes a signature whose statement the test chooses, with the operator's `acme` key from the data dir.
fn sign_statement(cli: &Cli, wasm: &Path, id: &str, version: &str, caps: &[&str]) -> PathBuf {
    use plughost::registry::{KeyPair, SignatureFile};
    let key = KeyPair::read_secret(&cli.home.path().join("keys/acme.key")).expect("key");
    let bytes = std::fs::read(wasm).expect("read");
    let sig = SignatureFile::sign(
        &key,
        &bytes,
        id,
        version,
        caps.iter().map(|c| c.to_string()).collect(),
    );
    let path = cli.work.path().join(format!("{id}-{version}.sig"));
    std::fs::write(&path, sig.to_json()).expect("write sig");
    path
}

#[test]
fn manifest_mismatch_and_undeclared_imports_are_refused() {
    let cli = Cli::new();
    cli.with_key();
    let wasm = cli.copy(fx::SYSTEM_INFO, "system-info.wasm");

    let sig = sign_statement(&cli, &wasm, "not-system-info", "0.1.0", &["system"]);
    let err = cli.fails(&["install", s(&wasm), "--sig", s(&sig), "--yes"], 2);
    assert!(err.contains("manifest mismatch"), "{err}");

    let sig = sign_statement(&cli, &wasm, "system-info", "9.9.9", &["system"]);
    let err = cli.fails(&["install", s(&wasm), "--sig", s(&sig), "--yes"], 2);
    assert!(err.contains("manifest mismatch"), "{err}");

    let sig = sign_statement(&cli, &wasm, "system-info", "0.1.0", &[]);
    let err = cli.fails(&["install", s(&wasm), "--sig", s(&sig), "--yes"], 2);
    assert!(err.contains("did not declare"), "{err}");
    assert_eq!(cli.json(&["list", "--json"]), serde_json::json!([]));
}

#[test]
fn upgrade_shows_the_capability_diff_and_rollback_restores() {
    let cli = Cli::new();
    cli.with_key();
    let v1 = cli.copy(fx::STATE_B, "b-0.1.wasm");
    let v2 = cli.copy(fx::STATE_B_V2, "b-0.2.wasm");
    cli.ok(&["sign", s(&v1), "--key", "acme"]);
    cli.ok(&["sign", s(&v2), "--key", "acme"]);
    cli.ok(&["install", s(&v1), "--yes"]);
    cli.ok(&[
        "call",
        "fixture-state-b",
        "state_put",
        "--args",
        r#"{"key":"k","value":"v1"}"#,
    ]);

    // `log` is new: without approval nothing changes.
    let o = cli.run(&["upgrade", s(&v2)]);
    assert_eq!(o.status.code(), Some(2));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("+ log"), "{out}");
    assert_eq!(
        cli.json(&["info", "fixture-state-b", "--json"])["plugin"]["version"],
        "0.1.0"
    );

    cli.ok(&["upgrade", s(&v2), "--yes"]);
    let info = cli.json(&["info", "fixture-state-b", "--json"]);
    assert_eq!(info["plugin"]["version"], "0.2.0");
    assert_eq!(
        info["plugin"]["grants"],
        serde_json::json!(["log", "state"])
    );
    assert_eq!(
        cli.ok(&["call", "fixture-state-b", "version"]).trim(),
        "0.2.0"
    );
    // State survives the upgrade.
    assert_eq!(
        cli.ok(&[
            "call",
            "fixture-state-b",
            "state_get",
            "--args",
            r#"{"key":"k"}"#
        ])
        .trim(),
        "v1"
    );

    let out = cli.ok(&["rollback", "fixture-state-b"]);
    assert!(out.contains("0.2.0 -> 0.1.0"), "{out}");
    let info = cli.json(&["info", "fixture-state-b", "--json"]);
    assert_eq!(info["plugin"]["grants"], serde_json::json!(["state"]));
    assert_eq!(info["versions"].as_array().expect("versions").len(), 2);
    // 0.1.0 has no `version` tool: the call could not start.
    cli.fails(&["call", "fixture-state-b", "version"], 2);
    let hist = cli.json(&["history", "fixture-state-b", "--json"]);
    let actions: Vec<&str> = hist
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(actions[..3], ["rollback", "upgrade", "install"]);
}

#[test]
fn revoking_a_key_disables_what_it_signed() {
    let cli = Cli::new();
    cli.with_key();
    let wasm = cli.copy(fx::SYSTEM_INFO, "system-info.wasm");
    cli.ok(&["sign", s(&wasm), "--key", "acme"]);
    cli.ok(&["install", s(&wasm), "--yes"]);
    let out = cli.ok(&["keys", "revoke", "acme"]);
    assert!(out.contains("disabled plugin `system-info`"), "{out}");
    let list = cli.ok(&["list"]);
    assert!(list.contains("revoked"), "{list}");
    let err = cli.fails(&["call", "system-info", "memory"], 2);
    assert!(err.contains("revoked"), "{err}");
    let err = cli.fails(&["enable", "system-info"], 2);
    assert!(err.contains("revoked"), "{err}");
}

#[test]
fn secrets_come_from_stdin_and_are_never_printed() {
    let cli = Cli::new();
    cli.with_key();
    let wasm = cli.copy(fx::SYSTEM_INFO, "system-info.wasm");
    cli.ok(&["sign", s(&wasm), "--key", "acme"]);
    cli.ok(&["install", s(&wasm), "--yes"]);
    let err = cli.fails(
        &[
            "config",
            "system-info",
            "set",
            "token",
            "hunter2",
            "--secret",
        ],
        2,
    );
    assert!(err.contains("never from the command line"), "{err}");
    let o = cli.run_with_stdin(
        &["config", "system-info", "set", "token", "--secret"],
        "hunter2\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    cli.ok(&["config", "system-info", "set", "zone", "example.com"]);
    for args in [
        &["config", "system-info", "list"][..],
        &["config", "system-info", "list", "--json"],
        &["info", "system-info"],
        &["info", "system-info", "--json"],
        &["history"],
    ] {
        let out = cli.ok(args);
        assert!(
            !out.contains("hunter2"),
            "{args:?} printed the secret: {out}"
        );
    }
    assert!(
        cli.ok(&["config", "system-info", "list"])
            .contains("token = (secret, set)")
    );
    assert!(
        cli.ok(&["config", "system-info", "list"])
            .contains("zone = example.com")
    );
}

#[test]
fn limits_are_shown_stored_and_applied() {
    let cli = Cli::new();
    cli.with_key();
    let wasm = cli.copy(fx::BASIC, "basic.wasm");
    cli.ok(&["sign", s(&wasm), "--key", "acme"]);
    cli.ok(&["install", s(&wasm), "--yes"]);
    let v = cli.json(&[
        "limits",
        "fixture-basic",
        "--fuel",
        "10000000",
        "--memory",
        "64MiB",
        "--timeout",
        "2s",
        "--concurrency",
        "4",
        "--json",
    ]);
    assert_eq!(v["effective"]["fuel"], 10_000_000);
    assert_eq!(v["effective"]["memory_bytes"], 64 << 20);
    assert_eq!(v["set"]["concurrency"], 4);
    let o = cli.run(&["call", "fixture-basic", "spin", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(r["report"]["outcome"]["kind"], "out-of-fuel");
    assert_eq!(r["report"]["fuel_limit"], 10_000_000);
    let err = cli.fails(&["limits", "fixture-basic", "--memory", "64GiB"], 2);
    assert!(err.contains("memory"), "{err}");
    let out = cli.ok(&["info", "fixture-basic"]);
    assert!(out.contains("concurrency 4"), "{out}");
}

#[test]
fn a_bad_worker_thread_count_is_refused_without_a_panic() {
    let cli = Cli::new();
    for bad in ["", "0", "many"] {
        let o = cli
            .cmd(&["list"])
            .env("TOKIO_WORKER_THREADS", bad)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {err}");
        assert!(
            err.contains("TOKIO_WORKER_THREADS must be a number"),
            "{bad:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{bad:?}: {err}");
    }
    let o = cli
        .cmd(&["list"])
        .env("TOKIO_WORKER_THREADS", "1")
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `serve` keeps its heap in 4 KiB pages (no transparent huge pages, whatever the kernel's mode: the heap's RSS
/// would otherwise move in 2 MiB steps), unless `MIMALLOC_ALLOW_THP=1` asks for them. Read from the kernel's own
/// view of the process (`THP_enabled` in `/proc/PID/status`, Linux 5.0+).
#[cfg(target_os = "linux")]
#[test]
fn serve_runs_without_transparent_huge_pages_unless_asked() {
    let cli = Cli::new();
    let thp = |env: &[(&str, &str)]| {
        let mut cmd = cli.cmd(&["serve", "--http", "127.0.0.1:0"]);
        cmd.envs(env.iter().copied());
        let server = common::spawn_server(cmd);
        let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()));
        drop(server);
        let status = status.expect("the server's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:"))
            .map(|v| v.trim().to_string())
            .expect("THP_enabled in /proc/PID/status")
    };
    assert_eq!(thp(&[]), "0");
    assert_eq!(thp(&[("MIMALLOC_ALLOW_THP", "1")]), "1");
}

/// `serve --stdio` with stdin a pipe and stdout a file (`producer | plughost serve --stdio > answers.jsonl`): every
/// request is answered into the file, also one that comes after the server found the pipe empty. Making stdin a
/// non-blocking tokio pipe while stdout could not be one left tokio's blocking stdio reading a non-blocking pipe:
/// the first read of an empty pipe failed (EAGAIN) and the server stopped.
#[test]
fn serve_stdio_answers_into_a_file_when_only_stdin_is_a_pipe() {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let cli = Cli::new();
    let answers = cli.work.path().join("answers.jsonl");
    let mut child = cli
        .cmd(&["serve", "--stdio"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&answers).expect("answers file"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve --stdio");
    let mut stdin = child.stdin.take().expect("stdin");
    let answered = |child: &mut std::process::Child, want: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&answers).unwrap_or_default();
            let ids: Vec<Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|m| m.get("result").is_some())
                .map(|m| m["id"].clone())
                .collect();
            if ids.len() >= want || child.try_wait().expect("try_wait").is_some() {
                return ids;
            }
            assert!(Instant::now() < deadline, "no answer within 60 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    writeln!(stdin, "{initialize}").expect("write initialize");
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
    )
    .expect("write initialized");
    assert_eq!(answered(&mut child, 1), vec![Value::from(1)]);
    // The server has read all there was and waits on an empty pipe.
    std::thread::sleep(Duration::from_millis(300));
    // A server that stopped has closed its end: the write may fail, and the check below says why.
    let _ = writeln!(stdin, r#"{{"jsonrpc":"2.0","id":2,"method":"tools/list"}}"#);
    let ids = answered(&mut child, 2);
    drop(stdin);
    let out = child
        .wait_with_output()
        .expect("serve exits when stdin closes");
    assert_eq!(
        ids,
        vec![Value::from(1), Value::from(2)],
        "answers in the file; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "exit: {:?}", out.status);
}
