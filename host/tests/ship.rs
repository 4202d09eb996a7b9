//! What ships beside the binary: shell completions, the man page, the systemd unit and its environment file (the
//! gateway started exactly as the unit says, with the example settings), `NO_COLOR`, and `toolchain list --json`.

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn plughost(args: &[&str]) -> (String, String, Option<i32>) {
    let o = Command::new(BIN)
        .args(args)
        .env_remove("PLUGHOST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run plughost");
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code(),
    )
}

#[test]
fn completions_for_each_shell_name_the_commands() {
    let (bash, err, code) = plughost(&["completions", "bash"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(bash.contains("_plughost()"), "{bash}");
    for sub in ["install", "serve", "completions", "toolchain"] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    // The script is valid bash.
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("plughost.bash");
    std::fs::write(&file, &bash).expect("write");
    let status = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .status()
        .expect("bash");
    assert!(status.success(), "bash -n refused the completion script");

    let (zsh, _, code) = plughost(&["completions", "zsh"]);
    assert_eq!(code, Some(0));
    assert!(zsh.starts_with("#compdef plughost"), "{zsh}");
    assert!(
        zsh.contains("'--token-file=[") || zsh.contains("--token-file"),
        "{zsh}"
    );
    let (fish, _, code) = plughost(&["completions", "fish"]);
    assert_eq!(code, Some(0));
    assert!(fish.contains("complete -c plughost"), "{fish}");
    assert!(fish.contains("-a \"install\""), "{fish}");

    let (_, err, code) = plughost(&["completions", "powershell-9"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn man_page_is_roff_and_lists_the_commands() {
    let (man, err, code) = plughost(&["man"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(man.contains(".TH plughost 1"), "{man}");
    assert!(man.contains(".SH SUBCOMMANDS"), "{man}");
    for sub in ["plughost\\-install", "plughost\\-serve", "plughost\\-man"] {
        assert!(man.contains(sub), "the man page lacks {sub}");
    }
}

/// The environment file as systemd reads it: KEY=VALUE lines, comments and blanks skipped.
fn env_file() -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(workspace().join("dist/plughost.env")).expect("dist/plughost.env");
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {l}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The unit's ExecStart, split into words, `${VAR}` replaced from `env`.
fn exec_start(env: &[(String, String)]) -> Vec<String> {
    let unit = std::fs::read_to_string(workspace().join("dist/plughost.service")).expect("unit");
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart line");
    line.split_whitespace()
        .map(|w| {
            let mut w = w.to_string();
            for (k, v) in env {
                w = w.replace(&format!("${{{k}}}"), v);
            }
            assert!(
                !w.contains("${"),
                "{w}: a variable the environment file does not set"
            );
            w
        })
        .collect()
}

#[test]
fn the_systemd_unit_starts_a_gateway_with_the_example_environment() {
    let s = Setup::new();
    let token = s.work.path().join("token");
    std::fs::write(&token, "s3cret-operator-token\n").expect("token");
    // The example's settings, except where this test must differ: a free port, the temp data dir and token.
    let mut env = env_file();
    for (k, v) in env.iter_mut() {
        match k.as_str() {
            "PLUGHOST_ADDR" => *v = "127.0.0.1:0".into(),
            "PLUGHOST_TOKEN_FILE" => *v = token.display().to_string(),
            "PLUGHOST_HOME" => *v = s.home().to_string(),
            _ => {}
        }
    }
    let words = exec_start(&env);
    assert_eq!(words[0], "/usr/local/bin/plughost");
    let mut cmd = Command::new(BIN);
    cmd.args(&words[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let addr = loop {
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!("the gateway did not say where it listens: {seen:?}");
            }
        };
        if let Some(rest) = line.strip_prefix("plughost: MCP at http://") {
            break rest
                .split('/')
                .next()
                .unwrap_or_default()
                .parse()
                .expect("addr");
        }
        seen.push(line);
    };
    let (status, _) = http(addr, "GET", "/health", &[], b"");
    let (denied, _) = http(addr, "GET", "/metrics", &[], b"");
    let (allowed, body) = http(
        addr,
        "GET",
        "/metrics",
        &[("authorization", "Bearer s3cret-operator-token")],
        b"",
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    assert_eq!(denied, 401, "the token file is in force");
    assert_eq!(allowed, 200, "{body}");
    // The budget from the environment file (2 GiB) is the one in force.
    assert!(
        body.contains("plughost_guest_memory_budget_bytes 2147483648"),
        "{body}"
    );
}

#[test]
fn no_color_turns_colour_off_on_a_terminal() {
    // Under a pseudo-terminal (script(1)), a plugin's log line is coloured unless NO_COLOR is set.
    let s = Setup::new();
    let run = |no_color: bool| -> String {
        let line = format!("{BIN} call fixture-basic log_flood --args '{{\"lines\": 1}}'");
        let mut c = Command::new("script");
        c.args(["-qec", &line, "/dev/null"])
            .env("PLUGHOST_HOME", s.home())
            .env_remove("PLUGHOST_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let o = c.output().expect("script");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let coloured = run(false);
    assert!(coloured.contains("line 0"), "{coloured}");
    assert!(
        coloured.contains("\u{1b}["),
        "a terminal gets colour: {coloured:?}"
    );
    let plain = run(true);
    assert!(plain.contains("line 0"), "{plain}");
    assert!(!plain.contains("\u{1b}["), "NO_COLOR: {plain:?}");
}

#[test]
fn toolchain_list_json() {
    let dir = tempfile::tempdir().expect("tmp");
    let o = Command::new(BIN)
        .args(["toolchain", "list", "--json"])
        .env("PLUGHOST_TOOLCHAINS", dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["dir"], dir.path().display().to_string(), "{v}");
    let names: Vec<&str> = v["toolchains"]
        .as_array()
        .expect("toolchains")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["python", "js", "zig"], "{v}");
    assert!(
        v["toolchains"]
            .as_array()
            .expect("toolchains")
            .iter()
            .all(|t| t["installed"] == false),
        "an empty toolchain dir has nothing installed: {v}"
    );
}

#[test]
fn a_compile_is_shown_on_lines_of_its_own_off_a_terminal() {
    // Off a terminal the compile is two plain lines (start, end); from the cache, nothing.
    let home = tempfile::tempdir().expect("home");
    let inspect = || {
        let o = Command::new(BIN)
            .args(["inspect", plughost_tests::STATE_B])
            .env("PLUGHOST_HOME", home.path())
            .env_remove("PLUGHOST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("inspect");
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let first = inspect();
    let lines: Vec<&str> = first.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("compiling ")
            && l.ends_with("once; later loads come from the cache…")),
        "{first}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("compiling ") && l.contains("from the cache: done in ")),
        "{first}"
    );
    let again = inspect();
    assert!(!again.contains("compiling"), "{again}");
}
