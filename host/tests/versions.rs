//! A plugin's identity and data across versions, as the operator sees them from the `plughost` binary: pinned to
//! its publisher, never silently older, rollback pops, remove takes the state with it, and calling a file is a dry
//! run that leaves installed plugins' state alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use plughost_tests as fx;
use serde_json::Value;

const ID: &str = "fixture-state-b";

struct Cli {
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Cli {
    /// A fresh data dir with a trusted signing key `acme`.
    fn new() -> Cli {
        let cli = Cli {
            home: tempfile::tempdir().expect("home"),
            work: tempfile::tempdir().expect("work"),
        };
        cli.ok(&["keys", "generate", "--name", "acme", "--trust"]);
        cli
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_plughost"))
            .args(args)
            .env("PLUGHOST_HOME", self.home.path())
            .env_remove("PLUGHOST_LOG")
            .current_dir(self.work.path())
            .stdin(Stdio::null())
            .output()
            .expect("run plughost")
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

    /// Runs, expects exit code 2, returns stdout and stderr.
    fn refused(&self, args: &[&str]) -> (String, String) {
        let o = self.run(args);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert_eq!(
            o.status.code(),
            Some(2),
            "plughost {args:?}: stdout {out} stderr {err}"
        );
        (out, err)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    }

    /// Copies a fixture into the work dir and signs it with `key` (signature next to it).
    fn signed(&self, fixture: &str, name: &str, key: &str) -> PathBuf {
        let to = self.work.path().join(name);
        std::fs::copy(fixture, &to).expect("copy fixture");
        self.ok(&["sign", s(&to), "--key", key]);
        to
    }

    fn version(&self) -> Value {
        self.json(&["info", ID, "--json"])["plugin"]["version"].clone()
    }

    fn actions(&self) -> Vec<String> {
        self.json(&["history", ID, "--json"])
            .as_array()
            .expect("history")
            .iter()
            .map(|h| h["action"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn put(&self, target: &str, value: &str, extra: &[&str]) {
        let args = format!(r#"{{"key":"k","value":"{value}"}}"#);
        let mut a = vec!["call", target, "state_put", "--args", &args];
        a.extend_from_slice(extra);
        self.ok(&a);
    }

    fn get(&self, target: &str, extra: &[&str]) -> String {
        let mut a = vec!["call", target, "state_get", "--args", r#"{"key":"k"}"#];
        a.extend_from_slice(extra);
        self.ok(&a).trim().to_string()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn an_upgrade_from_another_publisher_is_refused_unless_allowed() {
    let cli = Cli::new();
    cli.ok(&["keys", "generate", "--name", "other", "--trust"]);
    let v1 = cli.signed(fx::STATE_B, "b-0.1.wasm", "acme");
    let v2 = cli.signed(fx::STATE_B_V2, "b-0.2.wasm", "other");
    cli.ok(&["install", s(&v1), "--yes"]);
    cli.put(ID, "secret of acme's plugin", &[]);

    let (out, err) = cli.refused(&["upgrade", s(&v2), "--yes"]);
    assert!(
        out.contains("publisher  acme ") && out.contains("-> other ") && out.contains("CHANGED"),
        "{out}"
    );
    assert!(err.contains("--allow-publisher-change"), "{err}");
    assert_eq!(cli.version(), "0.1.0");
    assert!(!cli.actions().contains(&"upgrade".to_string()));

    let out = cli.ok(&["upgrade", s(&v2), "--yes", "--allow-publisher-change"]);
    assert!(out.contains("-> other "), "{out}");
    assert_eq!(cli.version(), "0.2.0");
    assert_eq!(
        cli.actions()[..3],
        ["publisher-change", "upgrade", "install"]
    );

    // The flag means nothing to a first install, and is refused there.
    let (_, err) = cli.refused(&["install", s(&v1), "--yes", "--allow-downgrade"]);
    assert!(err.contains("for `plughost upgrade`"), "{err}");
}

#[test]
fn an_older_version_is_refused_unless_allowed_and_rollback_pops() {
    let cli = Cli::new();
    let v1 = cli.signed(fx::STATE_B, "b-0.1.wasm", "acme");
    let v2 = cli.signed(fx::STATE_B_V2, "b-0.2.wasm", "acme");
    cli.ok(&["install", s(&v1), "--yes"]);
    cli.ok(&["upgrade", s(&v2), "--yes"]);

    let (out, err) = cli.refused(&["upgrade", s(&v1), "--yes"]);
    assert!(out.contains("DOWNGRADE"), "{out}");
    assert!(err.contains("--allow-downgrade"), "{err}");
    assert_eq!(cli.version(), "0.2.0");

    // Rollback is the way back, and it pops: 0.2.0 -> 0.1.0, upgrade to 0.2.0 again, rollback lands on 0.1.0 (not
    // on the first 0.2.0), and then there is nothing left to roll back to.
    let out = cli.ok(&["rollback", ID]);
    assert!(out.contains("0.2.0 -> 0.1.0"), "{out}");
    cli.ok(&["upgrade", s(&v2), "--yes"]);
    let out = cli.ok(&["rollback", ID]);
    assert!(out.contains("0.2.0 -> 0.1.0"), "{out}");
    let (_, err) = cli.refused(&["rollback", ID]);
    assert!(err.contains("no earlier version"), "{err}");
    assert_eq!(cli.version(), "0.1.0");

    // An allowed downgrade is recorded.
    cli.ok(&["upgrade", s(&v2), "--yes"]);
    cli.ok(&["upgrade", s(&v1), "--yes", "--allow-downgrade"]);
    assert_eq!(cli.version(), "0.1.0");
    assert_eq!(cli.actions()[0], "downgrade");
}

#[test]
fn remove_deletes_the_state_unless_told_to_keep_it() {
    let cli = Cli::new();
    let v1 = cli.signed(fx::STATE_B, "b-0.1.wasm", "acme");
    cli.ok(&["install", s(&v1), "--yes"]);
    cli.put(ID, "old", &[]);
    cli.ok(&["config", ID, "set", "zone", "example.com"]);
    let out = cli.ok(&["remove", ID]);
    assert!(out.contains("1 setting, 0 secrets"), "{out}");
    assert!(out.contains("removed  its state (1 key)"), "{out}");

    // The next plugin installed under the id starts empty.
    cli.ok(&["install", s(&v1), "--yes"]);
    assert_eq!(cli.get(ID, &[]), "<none>");
    assert_eq!(cli.ok(&["config", ID, "list"]), "");

    cli.put(ID, "kept", &[]);
    let out = cli.ok(&["remove", ID, "--keep-state"]);
    assert!(out.contains("kept     its state (1 key)"), "{out}");
    cli.ok(&["install", s(&v1), "--yes"]);
    assert_eq!(cli.get(ID, &[]), "kept");
}

#[test]
fn a_file_call_uses_scratch_state_unless_given_an_installed_plugins() {
    let cli = Cli::new();
    let v1 = cli.signed(fx::STATE_B, "b-0.1.wasm", "acme");
    cli.ok(&["install", s(&v1), "--yes"]);
    cli.put(ID, "installed", &[]);

    // The same plugin called as a file neither reads nor writes the installed plugin's state.
    assert_eq!(cli.get(s(&v1), &["--grant", "state"]), "<none>");
    cli.put(s(&v1), "from the file", &["--grant", "state"]);
    assert_eq!(cli.get(ID, &[]), "installed");

    // Unless asked to, by id: the component must be that plugin, and it must be installed.
    assert_eq!(
        cli.get(s(&v1), &["--grant", "state", "--state-of", ID]),
        "installed"
    );
    let (_, err) = cli.refused(&[
        "call",
        s(&v1),
        "state_get",
        "--grant",
        "state",
        "--state-of",
        "fixture-basic",
    ]);
    assert!(err.contains("fixture-basic"), "{err}");
    let (_, err) = cli.refused(&["call", ID, "state_get", "--state-of", ID]);
    assert!(err.contains("--state-of"), "{err}");
}
