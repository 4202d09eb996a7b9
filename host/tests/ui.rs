//! The operator page in a real browser: headless Chromium (`plughost_tests::browser`, over WebDriver) against a real
//! `plughost serve --http` with a token. One gateway, one browser, every case in one test. Screenshots of each view
//! go to target/ui-screenshots/.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use plughost_tests as fx;
use plughost_tests::browser::{Browser, http};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_plughost");
const TOKEN: &str = "ui-test-token-7f3a";
const SECRET: &str = "do-not-show-9c1e55";
/// The plugins table as [[id, status], …].
const PLUGIN_ROWS: &str = "return [...document.querySelectorAll('#plugins tbody tr')]\
     .map(r => [r.dataset.plugin, r.querySelector('.status').textContent]);";

struct Home {
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Home {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("PLUGHOST_HOME", self.home.path())
            .env_remove("PLUGHOST_TOKEN")
            .env_remove("PLUGHOST_LOG")
            .current_dir(self.work.path());
        c
    }

    fn ok(&self, args: &[&str], stdin: &str) -> String {
        let o = common::run_with_stdin(&mut self.cmd(args), stdin);
        assert!(
            o.status.success(),
            "plughost {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn install(&self, fixture: &str, name: &str, requests: &[&str]) {
        let to = self.work.path().join(name);
        std::fs::copy(fixture, &to).expect("copy fixture");
        let path = to.to_str().expect("utf-8");
        let mut args = vec!["sign", path, "--key", "acme"];
        for r in requests {
            args.extend(["--request", r]);
        }
        self.ok(&args, "");
        self.ok(&["install", path, "--yes"], "");
    }

    /// `plughost serve --http 127.0.0.1:0 --token-file …`; the server (stopped when dropped) and its address.
    fn serve(&self) -> (common::Server, SocketAddr) {
        let token = self.work.path().join("token");
        std::fs::write(&token, TOKEN).expect("token file");
        let mut cmd = self.cmd(&["serve", "--http", "127.0.0.1:0", "--token-file"]);
        cmd.arg(&token).stdin(Stdio::null());
        let server = common::spawn_server(cmd);
        let addr = server.addr;
        (server, addr)
    }

    /// Calls fixture-basic's echo from the CLI; returns the call's ledger entry.
    fn echo(&self, text: &str) -> Value {
        let args = json!({ "text": text }).to_string();
        self.ok(&["call", "fixture-basic", "echo", "--args", &args], "");
        self.last_entry()
    }

    /// The newest ledger entry, as `plughost ledger show --json` prints it.
    fn last_entry(&self) -> Value {
        let out = self.ok(&["ledger", "show", "--limit", "1", "--json"], "");
        let v: Value = serde_json::from_str(&out).expect("ledger json");
        v[0].clone()
    }
}

fn text_of(b: &Browser, selector: &str) -> String {
    b.js(&format!(
        "const e = document.querySelector({}); return e ? e.textContent : null;",
        json!(selector)
    ))
    .as_str()
    .unwrap_or_else(|| panic!("no element {selector}"))
    .to_string()
}

#[test]
fn the_operator_page_in_headless_chromium() {
    let h = Home {
        home: tempfile::tempdir().expect("home"),
        work: tempfile::tempdir().expect("work"),
    };
    h.ok(&["keys", "generate", "--name", "acme", "--trust"], "");
    h.install(fx::BASIC, "basic.wasm", &["state", "log"]);
    h.install(fx::SYSTEM_INFO, "system-info.wasm", &["system"]);
    h.ok(
        &[
            "limits",
            "fixture-basic",
            "--fuel",
            "5000000",
            "--calls",
            "100/hour",
        ],
        "",
    );
    h.ok(&["config", "fixture-basic", "set", "region", "eu-west"], "");
    h.ok(
        &["config", "fixture-basic", "set", "api_key", "--secret"],
        SECRET,
    );
    let failed = h
        .cmd(&[
            "call",
            "fixture-basic",
            "fail",
            "--args",
            r#"{"text":"on purpose"}"#,
        ])
        .output()
        .expect("a failing call");
    assert_eq!(failed.status.code(), Some(1), "the failing call");
    let failure = h.last_entry();
    let before = h.echo("before");
    let (_server, addr) = h.serve();
    let base = format!("http://{addr}");

    // Without the token (or with a forged cookie) the page is refused; with it, it answers.
    let (status, _, body) = http(addr, "GET", "/ui/plugins", &[], "");
    assert_eq!(status, 401, "no token: {body}");
    assert!(
        !body.contains("fixture-basic"),
        "a refused page leaked data"
    );
    let forged = "Cookie: plughost_ui=9999999999.00";
    assert_eq!(http(addr, "GET", "/ui/calls", &[forged], "").0, 401);
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let (status, head, body) = http(addr, "GET", "/ui/plugins", &[&bearer], "");
    assert_eq!(status, 200, "{body}");
    assert!(
        head.to_lowercase()
            .contains("content-security-policy: default-src 'none'; script-src 'self'")
    );
    assert!(
        !body.contains("<script>") && !body.contains(" style="),
        "inline script or style"
    );
    assert!(!body.contains(SECRET), "a secret value appears on the page");
    assert!(body.contains("secret: set") && body.contains("eu-west"));
    let evil = http(
        addr,
        "GET",
        "/ui/plugins",
        &[&bearer, "Origin: http://evil.example"],
        "",
    );
    assert_eq!(evil.0, 403, "a foreign origin");

    let b = Browser::start();
    b.go(&format!("{base}/ui/plugins"));
    assert_eq!(
        b.title(),
        "Sign in · plughost",
        "the browser without the token"
    );
    b.screenshot("login");
    b.js(&format!(
        "document.getElementById('token').value = {}; document.querySelector('form.login').submit();",
        json!(TOKEN)
    ));
    b.wait_for(
        "the plugins view",
        "return document.title === 'Plugins · plughost';",
    );

    // Plugins: the installed ones, loaded, with the declared vs granted capabilities.
    let rows = b.js(PLUGIN_ROWS);
    assert_eq!(
        rows,
        json!([["fixture-basic", "loaded"], ["system-info", "loaded"]])
    );
    let caps = text_of(&b, "table.caps[data-caps='system-info'] tbody");
    assert!(
        caps.contains("system") && !caps.contains("not granted"),
        "{caps}"
    );
    b.screenshot("plugins");

    // By keyboard: the first Tab reaches the skip link, and the views are links.
    let tab = json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": [
        { "type": "keyDown", "value": "\u{E004}" }, { "type": "keyUp", "value": "\u{E004}" }] }] });
    b.call("POST", "/actions", Some(&tab));
    assert_eq!(
        b.js("return document.activeElement.textContent;"),
        json!("Skip to content")
    );

    // Quotas: the fuel limit set above is the bars' maximum, and the larger of the two calls' fuel the max bar.
    let fuel_max = before["fuel_used"]
        .as_u64()
        .expect("fuel")
        .max(failure["fuel_used"].as_u64().expect("fuel"));
    b.go(&format!("{base}/ui/quotas"));
    let meter = b.js(
        "const m = document.querySelector(\"section[data-plugin='fixture-basic'] .bar[data-what='fuel max'] meter\"); \
         return m ? [m.max, m.value] : null;",
    );
    assert_eq!(meter, json!([5_000_000, fuel_max]), "the fuel bar");
    // … and the contract: both calls counted of the 100 allowed this hour, and when the first leaves the window.
    let contract = b.js(
        "const m = document.querySelector(\"section[data-plugin='fixture-basic'] .bar[data-what='calls'] meter\"); \
         return m ? [m.max, m.value] : null;",
    );
    assert_eq!(contract, json!([100, 2]), "the contract bar");
    let section = text_of(&b, "section[data-plugin='fixture-basic']");
    assert!(
        section.contains("Contract: plugin, per hour")
            && section.contains("The oldest counted call leaves the window at"),
        "{section}"
    );
    b.screenshot("quotas");

    // Calls: a call made now appears live, without a reload, with its fuel.
    b.go(&format!("{base}/ui/calls"));
    b.wait_for(
        "the live stream",
        "return document.getElementById('live-status').textContent.startsWith('Live');",
    );
    b.js("window.notReloaded = true;");
    let live = h.echo("live");
    let seq = live["seq"].as_u64().expect("seq");
    let fuel = b.wait_for(
        "the new call in the table",
        &format!(
            "const r = document.querySelector(\"#calls tr[data-seq='{seq}'] td.fuel\"); return r && r.textContent;"
        ),
    );
    assert_eq!(
        fuel,
        json!(plughost::units::group_digits(
            live["fuel_used"].as_u64().expect("fuel")
        ))
    );
    assert_eq!(
        b.js("return window.notReloaded === true;"),
        json!(true),
        "the page reloaded"
    );
    b.screenshot("calls");

    // Filters: by tool, outcome and time, only the failed call is left …
    let kind = failure["outcome"].as_str().expect("outcome");
    b.go(&format!(
        "{base}/ui/calls?tool=fail&outcome={kind}&since=1h"
    ));
    let seqs = b.js(
        "return [...document.querySelectorAll('#calls tbody tr')].map(r => Number(r.dataset.seq));",
    );
    assert_eq!(seqs, json!([failure["seq"]]));
    // … and none of this test's calls is older than an hour.
    b.go(&format!("{base}/ui/calls?until=1h"));
    assert_eq!(text_of(&b, "#no-calls"), "No calls match.");

    // A call's detail is its report.
    b.go(&format!("{base}/ui/calls/{seq}"));
    let report = text_of(&b, "#report");
    assert!(
        report.contains("fixture-basic") && report.contains("echo"),
        "{report}"
    );
    b.screenshot("call");

    // Charts: one point per echo call that ran, and the failed call under its error kind.
    b.go(&format!("{base}/ui/charts"));
    let points = b.js(
        "const s = document.querySelector(\"section[data-tool='fixture-basic/echo'] polyline\"); \
         return s ? s.getAttribute('points').trim().split(' ').length : null;",
    );
    assert_eq!(points, json!(2), "echo ran twice");
    let errors = text_of(&b, "section[data-tool='fixture-basic/fail'] ul.errors");
    assert_ne!(kind, "ok");
    assert_eq!(errors, format!("{kind}: 1"));
    b.screenshot("charts");

    // Ledger: the head is the last call; a verification on request finds the chain intact.
    b.go(&format!("{base}/ui/ledger"));
    assert_eq!(text_of(&b, "#head"), format!("entry {seq}"));
    assert!(text_of(&b, "#verified").starts_with("Not verified"));
    b.js("document.querySelector('main form button').click();");
    let verified = b.wait_for(
        "the verification",
        "const d = document.querySelector('dl#verified'); return d && d.textContent;",
    );
    let verified = verified.as_str().expect("text");
    assert!(
        verified.contains("ok: the chain is intact") && verified.contains(&format!("Entries{seq}")),
        "{verified}"
    );
    b.screenshot("ledger");

    // Usable at phone width: nothing but the tables' own scroll boxes is wider than the screen.
    b.resize(390, 844);
    b.go(&format!("{base}/ui/plugins"));
    let wide = b.js("return document.documentElement.scrollWidth - window.innerWidth;");
    assert!(
        wide.as_i64().expect("px") <= 0,
        "the page scrolls sideways by {wide}px"
    );
    b.screenshot("plugins-phone");

    // Live streams are capped: the 17th at once is refused (the browser's own stream may still hold one).
    let mut streams = Vec::new();
    let refused = loop {
        assert!(streams.len() < 20, "no cap on live streams");
        let mut c = TcpStream::connect(addr).expect("connect");
        let req = format!(
            "GET /ui/calls/live HTTP/1.1\r\nHost: {addr}\r\n{bearer}\r\nAccept: text/event-stream\r\n\r\n"
        );
        c.write_all(req.as_bytes()).expect("write");
        c.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut head = [0u8; 12];
        c.read_exact(&mut head).expect("status line");
        match &head[9..12] {
            b"200" => streams.push(c),
            b"503" => break streams.len(),
            other => panic!("live stream: {}", String::from_utf8_lossy(other)),
        }
    };
    assert!(
        (15..=16).contains(&refused),
        "refused after {refused} streams"
    );
    drop(streams);

    // Statuses: a disabled plugin says so, and one whose stored component changed is corrupted.
    h.ok(&["disable", "fixture-basic"], "");
    let info: Value =
        serde_json::from_str(&h.ok(&["info", "system-info", "--json"], "")).expect("info json");
    let digest = info["plugin"]["digest"].as_str().expect("digest");
    let hex = digest.strip_prefix("blake3:").expect("a blake3 digest");
    let blob = h
        .home
        .path()
        .join("blobs")
        .join(&hex[..2])
        .join(format!("{hex}.wasm"));
    let mut bytes = std::fs::read(&blob).expect("the stored component");
    bytes.push(0);
    std::fs::write(&blob, bytes).expect("change the stored component");
    b.go(&format!("{base}/ui/plugins"));
    let rows = b.js(PLUGIN_ROWS);
    assert_eq!(
        rows,
        json!([["fixture-basic", "disabled"], ["system-info", "corrupted"]])
    );
    b.screenshot("plugins-statuses");

    // No request left for another origin.
    let urls = b.requested_urls();
    assert!(
        urls.iter().any(|u| u.ends_with("/ui/assets/style.css")),
        "the performance log saw no asset: {urls:?}"
    );
    let foreign: Vec<&String> = urls.iter().filter(|u| !u.starts_with(&base)).collect();
    assert!(
        foreign.is_empty(),
        "requests to another origin: {foreign:?}"
    );
}
