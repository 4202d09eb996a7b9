//! What the tests of `plughost new / build / test` share: an author with a scratch data dir and work dir, who
//! runs the `plughost` binary with the pinned toolchains, and a copy of an example project.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the workspace")
        .to_path_buf()
}

pub struct Author {
    pub home: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Author {
    pub fn new() -> Author {
        Author {
            home: tempfile::tempdir().expect("home"),
            work: tempfile::tempdir().expect("work"),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let toolchains = std::env::var_os("PLUGHOST_TOOLCHAINS")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target").join("toolchains"));
        let mut c = Command::new(env!("CARGO_BIN_EXE_plughost"));
        c.args(args)
            .env("PLUGHOST_HOME", self.home.path())
            .env("PLUGHOST_TOOLCHAINS", toolchains)
            // Rust templates share one target dir, so their dependencies compile once across tests and runs.
            .env(
                "CARGO_TARGET_DIR",
                workspace().join("target").join("template-guests"),
            )
            .env_remove("PLUGHOST_LOG")
            .current_dir(self.work.path())
            .stdin(Stdio::null());
        // Flags meant for the host build must not leak into a guest build.
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
            "CARGO_BUILD_TARGET",
        ] {
            c.env_remove(var);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run plughost")
    }

    pub fn ok(&self, args: &[&str]) -> (String, String) {
        let o = self.run(args);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert!(
            o.status.success(),
            "plughost {args:?} failed ({:?}):\n{out}{err}",
            o.status.code()
        );
        (out, err)
    }

    /// Runs, expects exit code `code`, returns stdout + stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let o = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.status.code(), Some(code), "plughost {args:?}: {text}");
        text
    }

    /// The spin of the example plugins: `count_primes` of a loop that would run for hours is stopped by a fuel
    /// limit of 30,000,000, with a typed outcome.
    pub fn fuel_stops_a_long_count(&self, id: &str) {
        self.ok(&["limits", id, "--fuel", "30000000"]);
        let text = self.fails(
            &[
                "call",
                id,
                "count_primes",
                "--args",
                r#"{"below":4000000000}"#,
            ],
            1,
        );
        assert!(text.contains("out-of-fuel"), "{text}");
        assert!(text.contains("30000000 of 30000000"), "{text}");
    }

    pub fn path(&self, rel: &str) -> String {
        self.work.path().join(rel).display().to_string()
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        let name = e.file_name();
        // Build outputs of a local build in the source tree are not part of the example.
        if matches!(name.to_str(), Some("build" | "deps"))
            || name.to_string_lossy().ends_with(".wasm")
        {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

/// tests/mcp/client.py `offered` against plugin `id` (the template's `greetings` resource and `welcome` prompt),
/// over stdio with the author's data dir: what the client got.
pub fn offered(a: &Author, id: &str, extra: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(workspace().join("target/pyclient/bin/python"))
        .arg(workspace().join("tests/mcp/client.py"))
        .args([
            "offered",
            "--stdio",
            env!("CARGO_BIN_EXE_plughost"),
            a.home.path().to_str().expect("utf-8"),
            "--resource",
            &format!("plughost://plugins/{id}/r/greetings"),
            "--prompt",
            &format!("{id}__welcome"),
            "--args",
            r#"{"name":"Ada"}"#,
        ])
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the Python MCP client");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client.py offered: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
