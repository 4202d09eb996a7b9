//! A hostile installed plugin given a secret tries every channel; what `plughost call` prints (stdout, stderr
//! with plugin logs, plain and `--json`) and what the ledger keeps (`ledger show`, `ledger export`) never show the
//! secret nor any 8-byte slice of it, in any encoding.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use plughost_tests as fx;

const BIN: &str = env!("CARGO_BIN_EXE_plughost");
const SECRET: &str = "sEcReT_tok3n_9f8e7d6c5b4a";

fn run(home: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("PLUGHOST_HOME", home)
        // Everything plughost and the plugins log (wasmtime's trace of guest I/O too: see the test at the end).
        .env("PLUGHOST_LOG", "info,plughost=trace,plugin=trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run plughost");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(stdin.as_bytes());
    }
    child.wait_with_output().expect("plughost output")
}

fn ok(home: &std::path::Path, args: &[&str], stdin: &str) -> String {
    let o = run(home, args, stdin);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "plughost {args:?}: {all}");
    all
}

fn assert_clean(what: &str, haystack: &str) {
    for w in SECRET.as_bytes().windows(8) {
        let w = std::str::from_utf8(w).unwrap_or_default();
        assert!(
            !haystack.contains(w),
            "{what} shows `{w}` of the secret: {haystack}"
        );
    }
}

#[test]
fn an_installed_plugin_leaks_its_secret_through_no_cli_output_nor_the_ledger() {
    let dir = tempfile::tempdir().expect("home");
    let home = dir.path();
    let h = home.to_str().expect("utf-8");
    ok(
        home,
        &["keys", "generate", "--name", "op", "--trust", "--out", h],
        "",
    );
    let wasm = home.join("leaky.wasm");
    std::fs::copy(fx::LEAKY, &wasm).expect("copy");
    let w = wasm.to_str().expect("utf-8");
    let mut sign = vec!["sign", w, "--key", "op"];
    for cap in ["config", "log", "metrics", "ledger"] {
        sign.extend(["--request", cap]);
    }
    ok(home, &sign, "");
    ok(home, &["install", w, "--yes"], "");
    ok(
        home,
        &["config", "fixture-leaky", "set", "token", "--secret"],
        &format!("{SECRET}\n"),
    );
    let mut ledgered = 0;
    for channel in [
        "text",
        "json",
        "structured",
        "failed",
        "unknown",
        "upstream",
        "panic",
        "log",
        "cut",
        "metric",
        "ledger",
    ] {
        for enc in ["plain", "escaped", "split"] {
            let args = format!(r#"{{"channel":"{channel}","enc":"{enc}"}}"#);
            for json in [false, true] {
                let mut a = vec!["call", "fixture-leaky", "leak", "--args", &args];
                if json {
                    a.push("--json");
                }
                let o = run(home, &a, "");
                let all = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                assert_clean(&format!("call {channel}/{enc} (json: {json})"), &all);
                if channel == "ledger" {
                    assert!(o.status.success(), "{all}");
                    ledgered += 1;
                }
            }
        }
    }
    let show = ok(home, &["ledger", "show", "--json"], "");
    let entries: serde_json::Value = serde_json::from_str(&show).expect("ledger JSON");
    let events = entries
        .as_array()
        .map_or(0, |e| e.iter().filter(|e| e["kind"] == "event").count());
    assert_eq!(events, ledgered, "{show}");
    assert!(show.contains("[REDACTED]"), "{show}");
    assert_clean("ledger show", &show);
    let out = home.join("export.jsonl");
    ok(
        home,
        &["ledger", "export", "--out", out.to_str().expect("utf-8")],
        "",
    );
    assert_clean(
        "ledger export",
        &std::fs::read_to_string(&out).unwrap_or_default(),
    );
}

/// The most verbose logging an operator can ask for (`PLUGHOST_LOG=trace`) still shows no secret: wasmtime-wasi logs
/// every byte a guest writes to its stderr at debug level, which would print a secret the plugin wrote there.
#[test]
fn trace_logging_shows_no_secret_the_plugin_wrote_to_stderr() {
    let dir = tempfile::tempdir().expect("home");
    let secret = format!("token={SECRET}");
    for channel in ["panic", "log", "text"] {
        let args = format!(r#"{{"channel":"{channel}","enc":"plain"}}"#);
        let o = Command::new(BIN)
            .args([
                "call",
                fx::LEAKY,
                "leak",
                "--args",
                &args,
                "--grant",
                "config",
                "--grant",
                "log",
                "--grant",
                "metrics",
                "--grant",
                "ledger",
                "--secret",
                &secret,
            ])
            .env("PLUGHOST_HOME", dir.path())
            .env("PLUGHOST_LOG", "trace")
            .output()
            .expect("run plughost");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("TRACE"), "trace logging is on: {err}");
        assert_clean(&format!("stderr of the `{channel}` channel at trace"), &err);
        assert_clean(
            &format!("stdout of the `{channel}` channel at trace"),
            &String::from_utf8_lossy(&o.stdout),
        );
    }
}
