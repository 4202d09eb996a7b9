//! Grants stay inside what the publisher signed, at its level of detail: origins, container groups and images, state
//! quota. Checked at install, upgrade and `plughost grant`; `sign` refuses a declaration no grant could satisfy.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use plughost_tests as fx;
use serde_json::{Value, json};

struct Cli {
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Cli {
    /// A data dir with a trusted signing key `acme`.
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

    /// Runs, expects exit code 2, returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            o.status.code(),
            Some(2),
            "plughost {args:?}: stdout {} stderr {err}",
            String::from_utf8_lossy(&o.stdout)
        );
        err
    }

    fn copy(&self, fixture: &str, name: &str) -> PathBuf {
        let to = self.work.path().join(name);
        std::fs::copy(fixture, &to).expect("copy fixture");
        to
    }

    /// Copies a fixture and signs it with `acme`, declaring `requests`.
    fn signed(&self, fixture: &str, name: &str, requests: &[&str]) -> PathBuf {
        let wasm = self.copy(fixture, name);
        let mut args = vec!["sign", s(&wasm), "--key", "acme"];
        for r in requests {
            args.extend(["--request", r]);
        }
        self.ok(&args);
        wasm
    }

    fn granted(&self, id: &str) -> Value {
        let out = self.ok(&["grants", id, "--json"]);
        let v: Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
        v["granted"].clone()
    }

    fn installed(&self) -> Value {
        let out = self.ok(&["list", "--json"]);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn http_grants_must_be_covered_by_a_declared_origin() {
    let cli = Cli::new();
    let wasm = cli.signed(
        fx::NEEDS_HTTP,
        "needs-http.wasm",
        &["http:https://api.cloudflare.com"],
    );
    for grant in [
        "http:https://example.com",
        "http:https://*.cloudflare.com",
        "http:https://api.cloudflare.com,https://example.com",
    ] {
        let err = cli.fails(&["install", s(&wasm), "--grant", grant]);
        assert!(
            err.contains("beyond what") && err.contains("`http:https://api.cloudflare.com`"),
            "{grant}: {err}"
        );
    }
    assert_eq!(cli.installed(), json!([]));

    // --yes grants exactly what was declared.
    cli.ok(&["install", s(&wasm), "--yes"]);
    assert_eq!(
        cli.granted("fixture-needs-http"),
        json!(["http:https://api.cloudflare.com"])
    );
    let err = cli.fails(&["grant", "fixture-needs-http", "http:https://*.evil.com"]);
    assert!(
        err.contains("beyond what") && err.contains("`http:https://api.cloudflare.com`"),
        "{err}"
    );
    assert_eq!(
        cli.granted("fixture-needs-http"),
        json!(["http:https://api.cloudflare.com"])
    );
}

#[test]
fn a_declared_wildcard_covers_its_subdomains_not_the_reverse() {
    let cli = Cli::new();
    let wasm = cli.signed(
        fx::NEEDS_HTTP,
        "needs-http.wasm",
        &["http:https://*.example.com"],
    );
    cli.ok(&[
        "install",
        s(&wasm),
        "--grant",
        "http:https://api.example.com",
    ]);
    assert_eq!(
        cli.granted("fixture-needs-http"),
        json!(["http:https://api.example.com"])
    );
    cli.ok(&[
        "grant",
        "fixture-needs-http",
        "http:https://*.eu.example.com",
    ]);
    for grant in ["http:https://example.com", "http:http://api.example.com"] {
        let err = cli.fails(&["grant", "fixture-needs-http", grant]);
        assert!(
            err.contains("`http:https://*.example.com`"),
            "{grant}: {err}"
        );
    }
    assert_eq!(
        cli.granted("fixture-needs-http"),
        json!(["http:https://api.example.com,https://*.eu.example.com"])
    );
}

#[test]
fn container_grants_stay_within_declared_groups_and_images() {
    let cli = Cli::new();
    let wasm = cli.signed(
        fx::DOCKER,
        "docker.wasm",
        &["container:read,lifecycle;images=localhost/busybox:*"],
    );
    let err = cli.fails(&["install", s(&wasm), "--grant", "container:any-container"]);
    assert!(
        err.contains("beyond what")
            && err.contains("`container:read,lifecycle;images=localhost/busybox:*`"),
        "{err}"
    );
    cli.ok(&[
        "install",
        s(&wasm),
        "--grant",
        "container:read;images=localhost/busybox:test",
    ]);
    for grant in [
        "container:read,images",
        "container:lifecycle;images=nginx:*",
        "container:lifecycle;images=localhost/*",
        "container:read,any-container",
    ] {
        let err = cli.fails(&["grant", "docker", grant]);
        assert!(err.contains("beyond what"), "{grant}: {err}");
    }
    cli.ok(&[
        "grant",
        "docker",
        "container:lifecycle;images=localhost/busybox:*",
    ]);
    assert_eq!(
        cli.granted("docker"),
        json!(["container:read,lifecycle;images=localhost/busybox:test,localhost/busybox:*"])
    );
}

#[test]
fn a_state_grant_may_lower_never_raise_the_declared_quota() {
    let cli = Cli::new();
    // `state` declared without a size means 16 MiB.
    let wasm = cli.signed(fx::STATE_B, "state-b.wasm", &[]);
    let err = cli.fails(&["install", s(&wasm), "--grant", "state:64MiB"]);
    assert!(
        err.contains("beyond what") && err.contains("`state:16MiB`"),
        "{err}"
    );
    cli.ok(&["install", s(&wasm), "--grant", "state:1MiB"]);
    assert_eq!(cli.granted("fixture-state-b"), json!(["state:1MiB"]));
    let err = cli.fails(&["grant", "fixture-state-b", "state:17MiB"]);
    assert!(err.contains("`state:16MiB`"), "{err}");
    assert_eq!(cli.granted("fixture-state-b"), json!(["state:1MiB"]));

    // A publisher can declare more; the operator can still grant less.
    let cli = Cli::new();
    let wasm = cli.signed(fx::STATE_B, "state-b.wasm", &["state:64MiB"]);
    cli.ok(&["install", s(&wasm), "--yes"]);
    assert_eq!(cli.granted("fixture-state-b"), json!(["state:64MiB"]));
    let err = cli.fails(&["grant", "fixture-state-b", "state:128MiB"]);
    assert!(err.contains("`state:64MiB`"), "{err}");
}

#[test]
fn granting_state_again_changes_the_quota_that_is_shown_and_enforced() {
    let cli = Cli::new();
    let wasm = cli.signed(fx::STATE_B, "state-b.wasm", &[]);
    cli.ok(&["install", s(&wasm), "--yes"]);
    assert_eq!(cli.granted("fixture-state-b"), json!(["state"]));
    let value = "x".repeat(2000);
    let put = json!({"key": "k", "value": value}).to_string();
    cli.ok(&["call", "fixture-state-b", "state_put", "--args", &put]);
    cli.ok(&[
        "call",
        "fixture-state-b",
        "state_put",
        "--args",
        r#"{"key":"k","value":""}"#,
    ]);

    // Lowering the quota takes effect: shown, and a 2000-byte value no longer fits.
    let out = cli.ok(&["grant", "fixture-state-b", "state:1KiB"]);
    assert!(out.contains("state:1KiB"), "{out}");
    assert_eq!(cli.granted("fixture-state-b"), json!(["state:1KiB"]));
    let shown = cli.ok(&["grants", "fixture-state-b"]);
    assert!(shown.contains("granted   state:1KiB"), "{shown}");
    let o = cli.run(&["call", "fixture-state-b", "state_put", "--args", &put]);
    assert!(
        !o.status.success(),
        "a 2000-byte value fit in a 1 KiB quota: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(said.contains("quota"), "{said}");

    // And raising it again, within the declared 16 MiB, too.
    cli.ok(&["grant", "fixture-state-b", "state:8KiB"]);
    assert_eq!(cli.granted("fixture-state-b"), json!(["state:8KiB"]));
    cli.ok(&["call", "fixture-state-b", "state_put", "--args", &put]);
}

#[test]
fn an_upgrade_keeps_only_grants_the_new_declaration_covers() {
    let cli = Cli::new();
    let v1 = cli.signed(fx::STATE_B, "b-0.1.wasm", &["state:64MiB"]);
    // 0.2.0 imports log and state and declares `state` (16 MiB).
    let v2 = cli.signed(fx::STATE_B_V2, "b-0.2.wasm", &[]);
    cli.ok(&["install", s(&v1), "--yes"]);
    assert_eq!(cli.granted("fixture-state-b"), json!(["state:64MiB"]));

    let err = cli.fails(&[
        "upgrade",
        s(&v2),
        "--grant",
        "state:64MiB",
        "--grant",
        "log",
    ]);
    assert!(err.contains("`state:16MiB`"), "{err}");
    assert_eq!(cli.installed()[0]["version"], "0.1.0");

    // The 64 MiB grant is no longer declared: it is not carried over.
    cli.ok(&["upgrade", s(&v2), "--yes"]);
    assert_eq!(cli.installed()[0]["version"], "0.2.0");
    assert_eq!(cli.granted("fixture-state-b"), json!(["log", "state"]));
}

#[test]
fn sign_refuses_a_declaration_no_grant_could_satisfy() {
    let cli = Cli::new();
    let wasm = cli.copy(fx::NEEDS_HTTP, "needs-http.wasm");
    let err = cli.fails(&["sign", s(&wasm), "--key", "acme"]);
    assert!(err.contains("--request http:https://"), "{err}");
    assert!(!cli.work.path().join("needs-http.wasm.sig").exists());

    let docker = cli.copy(fx::DOCKER, "docker.wasm");
    let err = cli.fails(&["sign", s(&docker), "--key", "acme"]);
    assert!(err.contains("--request 'container:"), "{err}");
    assert!(!cli.work.path().join("docker.wasm.sig").exists());
}

#[test]
fn a_declaration_that_does_not_parse_covers_no_grant() {
    use plughost::registry::{KeyPair, SignatureFile};
    let cli = Cli::new();
    let wasm = cli.copy(fx::NEEDS_HTTP, "needs-http.wasm");
    // A statement signed outside `plughost sign`, declaring `http:*`.
    let key = KeyPair::read_secret(&cli.home.path().join("keys/acme.key")).expect("key");
    let bytes = std::fs::read(&wasm).expect("read");
    let sig = SignatureFile::sign(
        &key,
        &bytes,
        "fixture-needs-http",
        "0.1.0",
        vec!["http:*".to_string()],
    );
    std::fs::write(cli.work.path().join("needs-http.wasm.sig"), sig.to_json()).expect("sig");
    for extra in [&["--yes"][..], &["--grant", "http:https://api.example.com"]] {
        let mut args = vec!["install", s(&wasm)];
        args.extend(extra);
        let err = cli.fails(&args);
        assert!(
            err.contains("`http:*`") && err.contains("not a valid grant"),
            "{extra:?}: {err}"
        );
    }
    assert_eq!(cli.installed(), json!([]));
}
