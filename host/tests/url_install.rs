//! `plughost install https://…/x.wasm` against a real https server on loopback (Python's http.server behind TLS,
//! with a certificate made by openssl for 127.0.0.1 and trusted through `--ca-file`): the signature beside it is
//! fetched and verified like a file's; no signature, another component's signature, an untrusted certificate and
//! plain http are refused before anything is written.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use plughost_tests as fx;
use serde_json::Value;

struct Server {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SERVE: &str = r#"
import http.server, ssl, sys, os
os.chdir(sys.argv[1])
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

/// An https server for a fresh directory, with its certificate in `dir/cert.pem` (outside the served `www/`).
fn server() -> Server {
    let dir = tempfile::tempdir().expect("dir");
    let www = dir.path().join("www");
    std::fs::create_dir(&www).expect("www");
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-days", "2", "-subj", "/CN=127.0.0.1"])
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .arg("-keyout")
        .arg(dir.path().join("key.pem"))
        .arg("-out")
        .arg(dir.path().join("cert.pem"))
        .output()
        .expect("openssl");
    assert!(
        o.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut child = Command::new("python3")
        .args(["-c", SERVE])
        .arg(&www)
        .arg(dir.path().join("cert.pem"))
        .arg(dir.path().join("key.pem"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("port");
    let port = line.trim().parse().expect("a port");
    Server { child, port, dir }
}

impl Server {
    fn www(&self, name: &str) -> PathBuf {
        self.dir.path().join("www").join(name)
    }
    fn url(&self, name: &str) -> String {
        format!("https://127.0.0.1:{}/{name}", self.port)
    }
    fn ca(&self) -> String {
        self.dir.path().join("cert.pem").display().to_string()
    }
}

struct Cli {
    home: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            home: tempfile::tempdir().expect("home"),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_plughost"))
            .args(args)
            .env("PLUGHOST_HOME", self.home.path())
            .env_remove("PLUGHOST_LOG")
            .current_dir(self.home.path())
            .stdin(Stdio::null())
            .output()
            .expect("run plughost")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "plughost {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Expects exit 2 and nothing installed; returns stderr.
    fn refused(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "plughost {args:?}: {err}");
        assert_eq!(self.ok(&["list", "--json"]).trim(), "[]");
        err
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

#[test]
fn https_installs_verify_like_files() {
    let srv = server();
    let publisher = Cli::new();
    publisher.ok(&["keys", "generate", "--name", "acme", "--trust"]);
    std::fs::copy(fx::BASIC, srv.www("basic.wasm")).expect("copy");
    publisher.ok(&["sign", s(&srv.www("basic.wasm")), "--key", "acme"]);
    std::fs::copy(fx::BASIC, srv.www("unsigned.wasm")).expect("copy");
    std::fs::copy(fx::STATE_B, srv.www("swapped.wasm")).expect("copy");
    std::fs::copy(srv.www("basic.wasm.sig"), srv.www("swapped.wasm.sig")).expect("copy");

    let operator = Cli::new();
    operator.ok(&["keys", "trust", s(&publisher.home.path().join("acme.pub"))]);
    let url = srv.url("basic.wasm");
    let ca = srv.ca();

    // An untrusted certificate: refused, and nothing written.
    let err = operator.refused(&["install", &url, "--yes"]);
    assert!(err.contains("cannot reach 127.0.0.1"), "{err}");
    // Plain http is refused without --insecure.
    let err = operator.refused(&[
        "install",
        &format!("http://127.0.0.1:{}/basic.wasm", srv.port),
        "--yes",
    ]);
    assert!(err.contains("only https"), "{err}");
    // No signature beside it.
    let err = operator.refused(&[
        "install",
        &srv.url("unsigned.wasm"),
        "--yes",
        "--ca-file",
        &ca,
    ]);
    assert!(
        err.contains("is not signed") && err.contains("unsigned.wasm.sig"),
        "{err}"
    );
    // Another component's signature.
    let err = operator.refused(&[
        "install",
        &srv.url("swapped.wasm"),
        "--yes",
        "--ca-file",
        &ca,
    ]);
    assert!(err.contains("digest"), "{err}");

    let out = operator.ok(&["install", &url, "--yes", "--ca-file", &ca]);
    assert!(out.contains(&format!("source     {url}")), "{out}");
    let called = operator.ok(&[
        "call",
        "fixture-basic",
        "echo",
        "--args",
        r#"{"text":"over https"}"#,
    ]);
    assert!(called.contains("over https"), "{called}");
    let info: Value =
        serde_json::from_str(&operator.ok(&["info", "fixture-basic", "--json"])).expect("json");
    assert_eq!(info["plugin"]["source"], url.as_str());
    assert_eq!(info["plugin"]["publisher"]["name"], "acme");

    // --sig URL names the signature elsewhere; --allow-unsigned installs what has none.
    let other = Cli::new();
    other.ok(&["keys", "trust", s(&publisher.home.path().join("acme.pub"))]);
    let sig = srv.url("basic.wasm.sig");
    other.ok(&[
        "install",
        &srv.url("unsigned.wasm"),
        "--sig",
        &sig,
        "--yes",
        "--ca-file",
        &ca,
    ]);
    let unsigned = Cli::new();
    unsigned.ok(&[
        "install",
        &srv.url("unsigned.wasm"),
        "--yes",
        "--allow-unsigned",
        "--ca-file",
        &ca,
    ]);
    assert!(unsigned.ok(&["list"]).contains("UNSIGNED"));
}
