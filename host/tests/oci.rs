//! Distribution through a real OCI registry (CNCF distribution 2.8 from apt, htpasswd auth, started on loopback by
//! scripts/oci-registry.sh, or the one PLUGHOST_TEST_REGISTRY names): push → install on another data dir → call,
//! what an independent tool (skopeo) reads back, and every way a pull must be refused before anything is written.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use plughost_tests as fx;
use serde_json::Value;

/// The registry: address, user, password, storage dir.
struct Registry {
    addr: String,
    user: String,
    password: String,
    data: PathBuf,
}

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let mut env: std::collections::HashMap<String, String> = Default::default();
        if var("PLUGHOST_TEST_REGISTRY").is_none() {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/oci-registry.sh");
            let o = Command::new("bash")
                .arg(script)
                .stderr(Stdio::inherit())
                .output()
                .expect("run scripts/oci-registry.sh");
            assert!(o.status.success(), "scripts/oci-registry.sh failed");
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
                    env.insert(k.to_string(), v.to_string());
                }
            }
        }
        let get = |k: &str| {
            var(k)
                .or_else(|| env.get(k).cloned())
                .unwrap_or_else(|| panic!("{k} not set by scripts/oci-registry.sh"))
        };
        Registry {
            addr: get("PLUGHOST_TEST_REGISTRY"),
            user: get("PLUGHOST_TEST_REGISTRY_USER"),
            password: get("PLUGHOST_TEST_REGISTRY_PASSWORD"),
            data: PathBuf::from(get("PLUGHOST_TEST_REGISTRY_DATA")),
        }
    })
}

/// A unique repository per test run, so reruns against the same registry start clean.
fn repo(name: &str) -> String {
    static RUN: OnceLock<u128> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    });
    format!("oci://{}/t{run}/{name}", registry().addr)
}

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

    /// A data dir logged in to the test registry with `password`.
    fn logged_in(password: &str) -> Cli {
        let cli = Cli::new();
        let r = registry();
        let o = cli.run_with_stdin(
            &["registry", "login", &r.addr, "--username", &r.user],
            password,
        );
        assert!(
            o.status.success(),
            "login: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        cli
    }

    fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.run_logged(args, stdin, None)
    }

    /// Runs with `PLUGHOST_LOG` set to `log` (a tracing filter), or unset.
    fn run_logged(&self, args: &[&str], stdin: &str, log: Option<&str>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plughost"));
        match log {
            Some(filter) => cmd.env("PLUGHOST_LOG", filter),
            None => cmd.env_remove("PLUGHOST_LOG"),
        };
        cmd.args(args)
            .env("PLUGHOST_HOME", self.home.path())
            .env("DOCKER_CONFIG", self.home.path().join("no-docker"))
            .current_dir(self.work.path());
        common::run_with_stdin(&mut cmd, stdin)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, "")
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

    /// Runs, expects exit code 2 and nothing installed, returns stderr.
    fn refused(&self, args: &[&str]) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            o.status.code(),
            Some(2),
            "plughost {args:?}: stdout {} stderr {err}",
            String::from_utf8_lossy(&o.stdout)
        );
        let list = self.ok(&["list", "--json"]);
        assert_eq!(list.trim(), "[]", "a refused install left: {list}");
        err
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A publisher with key `acme` (acme.pub in its work dir), logged in to the registry.
fn publisher() -> Cli {
    let p = Cli::logged_in(&registry().password);
    p.ok(&["keys", "generate", "--name", "acme", "--trust"]);
    p
}

/// An operator that trusts `publisher`'s key and is logged in.
fn operator_of(publisher: &Cli) -> Cli {
    let o = Cli::logged_in(&registry().password);
    o.ok(&["keys", "trust", s(&publisher.path("acme.pub"))]);
    o
}

/// skopeo with the registry's credentials (`inspect` takes `--creds`, `copy` `--src-creds` and `--dest-creds`).
fn skopeo(args: &[&str]) -> Output {
    let r = registry();
    let creds = format!("{}:{}", r.user, r.password);
    let mut a: Vec<&str> = args.to_vec();
    if let ["copy", .., src, dest] = args {
        if src.starts_with("docker://") {
            a.extend(["--src-creds", &creds]);
        }
        if dest.starts_with("docker://") {
            a.extend(["--dest-creds", &creds]);
        }
    } else {
        a.extend(["--creds", &creds]);
    }
    Command::new("skopeo")
        .args(&a)
        .output()
        .expect("run skopeo")
}

fn skopeo_manifest(reference: &str) -> Value {
    let docker = reference.replacen("oci://", "docker://", 1);
    let o = skopeo(&["inspect", "--raw", "--tls-verify=false", &docker]);
    assert!(
        o.status.success(),
        "skopeo inspect {docker}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("manifest json")
}

fn manifest_digest(out: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("manifest   "))
        .unwrap_or_else(|| panic!("no manifest digest in: {out}"))
        .trim()
        .to_string()
}

#[test]
fn push_then_install_on_another_data_dir_then_call() {
    let publisher = publisher();
    let reference = format!("{}:0.1.0", repo("basic"));
    let started = Instant::now();
    let out = publisher.ok(&["push", fx::BASIC, &reference, "--key", "acme", "--insecure"]);
    eprintln!(
        "push of {} bytes: {:?}",
        fx::bytes(fx::BASIC).len(),
        started.elapsed()
    );
    let digest = manifest_digest(&out);

    // An independent tool reads the ecosystem's Wasm artifact layout, and the signature under the cosign-style tag.
    let m = skopeo_manifest(&reference);
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(m["layers"].as_array().map(Vec::len), Some(1));
    assert_eq!(m["layers"][0]["mediaType"], "application/wasm");
    assert_eq!(m["layers"][0]["size"], fx::bytes(fx::BASIC).len());
    let sig_ref = format!("{}:{}.sig", repo("basic"), digest.replacen(':', "-", 1));
    let sig = skopeo_manifest(&sig_ref);
    assert_eq!(sig["subject"]["digest"], digest.as_str());
    assert_eq!(
        sig["layers"][0]["mediaType"],
        "application/vnd.plughost.signature.v1+json"
    );

    let operator = operator_of(&publisher);
    let started = Instant::now();
    let out = operator.ok(&["install", &reference, "--insecure", "--yes"]);
    eprintln!("install: {:?}", started.elapsed());
    assert!(out.contains(&format!("source     {reference}")), "{out}");
    let called = operator.ok(&[
        "call",
        "fixture-basic",
        "echo",
        "--args",
        r#"{"text":"from the registry"}"#,
    ]);
    assert!(called.contains("from the registry"), "{called}");

    let info = operator.ok(&["info", "fixture-basic", "--json"]);
    let info: Value = serde_json::from_str(&info).expect("info json");
    assert_eq!(info["plugin"]["source"], reference.as_str());
    assert_eq!(info["plugin"]["manifest_digest"], digest.as_str());
    assert_eq!(info["plugin"]["publisher"]["name"], "acme");
    let text = operator.ok(&["info", "fixture-basic"]);
    assert!(
        text.contains(&format!("source       {reference}")),
        "{text}"
    );
    assert!(text.contains(&format!("manifest     {digest}")), "{text}");
    let history = operator.ok(&["history", "fixture-basic"]);
    assert!(
        history.contains(&format!("from {reference} (manifest {digest})")),
        "{history}"
    );

    // Pinned by digest, on a third data dir.
    let third = operator_of(&publisher);
    let pinned = format!("{}@{digest}", repo("basic"));
    third.ok(&["install", &pinned, "--insecure", "--yes"]);
    let info: Value =
        serde_json::from_str(&third.ok(&["info", "fixture-basic", "--json"])).expect("json");
    assert_eq!(info["plugin"]["manifest_digest"], digest.as_str());

    // A digest that is not the tag's: the registry has no such manifest.
    let wrong = format!("{}@sha256:{}", repo("basic"), "0".repeat(64));
    let err =
        Cli::logged_in(&registry().password).refused(&["install", &wrong, "--insecure", "--yes"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn a_tag_that_moves_changes_nothing_installed() {
    let publisher = publisher();
    let reference = format!("{}:stable", repo("moving"));
    let first = manifest_digest(&publisher.ok(&[
        "push",
        fx::STATE_B,
        &reference,
        "--key",
        "acme",
        "--insecure",
    ]));
    let operator = operator_of(&publisher);
    operator.ok(&["install", &reference, "--insecure", "--yes"]);
    let before: Value =
        serde_json::from_str(&operator.ok(&["info", "fixture-state-b", "--json"])).expect("json");

    let second = manifest_digest(&publisher.ok(&[
        "push",
        fx::STATE_B_V2,
        &reference,
        "--key",
        "acme",
        "--insecure",
    ]));
    assert_ne!(first, second, "the tag moved to other bytes");
    let after: Value =
        serde_json::from_str(&operator.ok(&["info", "fixture-state-b", "--json"])).expect("json");
    assert_eq!(after["plugin"]["digest"], before["plugin"]["digest"]);
    assert_eq!(after["plugin"]["manifest_digest"], first.as_str());
    assert_eq!(after["status"], "enabled");
    let rows: Value =
        serde_json::from_str(&operator.ok(&["outdated", "--json", "--insecure"])).expect("json");
    assert_eq!(rows[0]["newer"], reference.as_str(), "{rows}");
    assert!(
        rows[0]["why"]
            .as_str()
            .is_some_and(|w| w.contains(&format!("moved to {second}"))),
        "{rows}"
    );
    // An upgrade from the same reference takes the new bytes, verified, and records the new manifest.
    operator.ok(&["upgrade", &reference, "--insecure", "--yes"]);
    let upgraded: Value =
        serde_json::from_str(&operator.ok(&["info", "fixture-state-b", "--json"])).expect("json");
    assert_eq!(upgraded["plugin"]["manifest_digest"], second.as_str());
    assert_ne!(upgraded["plugin"]["version"], before["plugin"]["version"]);
}

#[test]
fn a_tampered_layer_is_refused() {
    let publisher = publisher();
    let reference = format!("{}:1", repo("tampered"));
    publisher.ok(&["push", fx::LEAN, &reference, "--key", "acme", "--insecure"]);
    let m = skopeo_manifest(&reference);
    let layer = m["layers"][0]["digest"]
        .as_str()
        .expect("layer digest")
        .to_string();
    let hex = layer.trim_start_matches("sha256:");
    let blob = registry().data.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let original = std::fs::read(&blob).expect("the registry's copy of the layer");
    let mut tampered = original.clone();
    let i = tampered.len() / 2;
    tampered[i] ^= 0x01;
    std::fs::write(&blob, &tampered).expect("tamper");
    let operator = operator_of(&publisher);
    let err = operator.refused(&["install", &reference, "--insecure", "--yes"]);
    std::fs::write(&blob, &original).expect("restore");
    assert!(err.contains("does not match its digest"), "{err}");
}

#[test]
fn a_signature_made_for_another_manifest_is_refused() {
    let publisher = publisher();
    let a = format!("{}:a", repo("sigswap"));
    let b = format!("{}:b", repo("sigswap"));
    let da =
        manifest_digest(&publisher.ok(&["push", fx::STATE_B, &a, "--key", "acme", "--insecure"]));
    let db = manifest_digest(&publisher.ok(&[
        "push",
        fx::STATE_B_V2,
        &b,
        "--allow-unsigned",
        "--insecure",
    ]));
    // With skopeo, put A's signature artifact under B's signature tag.
    let tag = |d: &str| {
        format!("{}:{}.sig", repo("sigswap"), d.replacen(':', "-", 1)).replacen(
            "oci://",
            "docker://",
            1,
        )
    };
    let o = skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &tag(&da),
        &tag(&db),
    ]);
    assert!(
        o.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let operator = operator_of(&publisher);
    let err = operator.refused(&["install", &b, "--insecure", "--yes"]);
    assert!(err.contains("refers to manifest"), "{err}");
}

/// An OCI image layout holding `component` as a Wasm artifact (what `wkg oci push` makes), unsigned.
fn oci_layout(dir: &Path, component: &[u8], config_media_type: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("layout");
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = sha2_digest(bytes);
        std::fs::write(blobs.join(&hex), bytes).expect("blob");
        (format!("sha256:{hex}"), bytes.len())
    };
    let (layer, layer_size) = put(component);
    let config = format!(
        r#"{{"created":"2026-01-01T00:00:00Z","architecture":"wasm","os":"wasip2","layerDigests":["{layer}"]}}"#
    );
    let (cfg, cfg_size) = put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"{config_media_type}","digest":"{cfg}","size":{cfg_size}}},"layers":[{{"mediaType":"application/wasm","digest":"{layer}","size":{layer_size}}}]}}"#
    );
    let (m, m_size) = put(manifest.as_bytes());
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{m}","size":{m_size},"annotations":{{"org.opencontainers.image.ref.name":"1"}}}}]}}"#
    );
    std::fs::write(dir.join("index.json"), index).expect("index.json");
}

/// sha256 hex with the system's sha256sum (the test crate has no sha2 of its own).
fn sha2_digest(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("write");
    let o = child.wait_with_output().expect("sha256sum");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .expect("hex")
        .to_string()
}

fn skopeo_push_layout(layout: &Path, reference: &str) {
    let src = format!("oci:{}:1", layout.display());
    let dest = reference.replacen("oci://", "docker://", 1);
    let o = skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]);
    assert!(
        o.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn an_artifact_pushed_by_another_tool_is_unsigned_and_refused_unless_allowed() {
    let operator = Cli::logged_in(&registry().password);
    let layout = operator.path("layout");
    oci_layout(
        &layout,
        &fx::bytes(fx::BASIC),
        "application/vnd.wasm.config.v0+json",
    );
    let reference = format!("{}:1", repo("foreign"));
    skopeo_push_layout(&layout, &reference);
    let err = operator.refused(&["install", &reference, "--insecure", "--yes"]);
    assert!(
        err.contains("is not signed") && err.contains("--allow-unsigned"),
        "{err}"
    );
    let out = operator.ok(&[
        "install",
        &reference,
        "--insecure",
        "--yes",
        "--allow-unsigned",
    ]);
    assert!(
        out.contains("UNSIGNED") || operator.ok(&["list"]).contains("UNSIGNED"),
        "{out}"
    );

    // Something that is not a Wasm artifact (an image config) is refused by its media type.
    let other = Cli::logged_in(&registry().password);
    let layout = other.path("layout");
    oci_layout(
        &layout,
        &fx::bytes(fx::BASIC),
        "application/vnd.oci.image.config.v1+json",
    );
    let reference = format!("{}:1", repo("not-wasm"));
    skopeo_push_layout(&layout, &reference);
    let err = other.refused(&[
        "install",
        &reference,
        "--insecure",
        "--yes",
        "--allow-unsigned",
    ]);
    assert!(err.contains("is not a Wasm component artifact"), "{err}");
}

#[test]
fn wrong_or_missing_credentials_are_refused_without_showing_them() {
    let publisher = publisher();
    let reference = format!("{}:1", repo("creds"));
    publisher.ok(&["push", fx::BASIC, &reference, "--key", "acme", "--insecure"]);
    let secret = "wrong-Secret-7fq2";
    let wrong = Cli::logged_in(secret);
    let err = wrong.refused(&["install", &reference, "--insecure", "--yes"]);
    assert!(err.contains("wrong or missing credentials"), "{err}");
    assert!(!err.contains(secret), "the password leaked: {err}");
    let history = wrong.ok(&["history"]);
    assert!(!history.contains(secret));
    let anonymous = Cli::new();
    let err = anonymous.refused(&["install", &reference, "--insecure", "--yes"]);
    assert!(err.contains("wrong or missing credentials"), "{err}");
    // Not even the most verbose log shows the right password (nor its base64 in a Basic header).
    let right = operator_of(&publisher);
    let o = right.run_logged(
        &["install", &reference, "--insecure", "--yes"],
        "",
        Some(TRACE_NETWORK),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(log.len() > 1000, "a trace log was written: {log}");
    let r = registry();
    assert_eq!(base64_encode(b"u:p:q"), "dTpwOnE=");
    let basic = base64_encode(format!("{}:{}", r.user, r.password).as_bytes());
    assert!(
        !log.contains(&r.password) && !log.contains(&basic),
        "the password is in the trace log"
    );
    // The stored file is the operator's alone.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(wrong.home.path().join("registries.json"))
        .expect("stored")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_registry_that_is_down_or_remote_without_tls_is_refused() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let cli = Cli::new();
    let err = cli.refused(&[
        "install",
        &format!("oci://127.0.0.1:{port}/acme/x:1"),
        "--insecure",
        "--yes",
    ]);
    assert!(err.contains("cannot reach 127.0.0.1"), "{err}");
    let err = cli.refused(&[
        "install",
        "oci://registry.example.com/acme/x:1",
        "--insecure",
        "--yes",
    ]);
    assert!(
        err.contains("--insecure is only allowed for a loopback registry"),
        "{err}"
    );
    // The test registry speaks plain http: without --insecure the TLS handshake fails, and the error says so.
    let err = Cli::logged_in(&registry().password).refused(&[
        "install",
        &format!("oci://{}/acme/x:1", registry().addr),
        "--yes",
    ]);
    assert!(
        err.contains("the registry answers in plain http: add --insecure"),
        "{err}"
    );
}

/// A fake registry on loopback: `reply(path, range_start)` answers each request (plain HTTP/1.1, keep-alive);
/// `None` closes the connection. Returns its port.
fn fake_registry(
    reply: impl Fn(&str, Option<u64>, &mut std::net::TcpStream) -> Option<()> + Send + Sync + 'static,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let reply = std::sync::Arc::new(reply);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let reply = reply.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut range = None;
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
                            range = v.trim().trim_end_matches('-').parse().ok();
                        }
                    }
                    if reply(&path, range, &mut conn).is_none() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn respond(conn: &mut std::net::TcpStream, status: &str, headers: &str, body: &[u8]) -> Option<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).ok()?;
    conn.write_all(body).ok()?;
    conn.flush().ok()
}

/// An OCI manifest for a Wasm artifact whose layer is `layer` (sha256 and size), and its digest.
fn wasm_manifest(layer_hex: &str, size: usize) -> (String, String) {
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.wasm.config.v0+json","digest":"sha256:{}","size":2}},"layers":[{{"mediaType":"application/wasm","digest":"sha256:{layer_hex}","size":{size}}}]}}"#,
        "2".repeat(64)
    );
    let digest = format!("sha256:{}", sha2_digest(manifest.as_bytes()));
    (manifest, digest)
}

fn manifest_reply(conn: &mut std::net::TcpStream, manifest: &str, digest: &str) -> Option<()> {
    respond(
        conn,
        "200 OK",
        &format!(
            "Content-Type: application/vnd.oci.image.manifest.v1+json\r\nDocker-Content-Digest: {digest}\r\n"
        ),
        manifest.as_bytes(),
    )
}

/// A registry that answers the API and the manifest, then sends a blob's headers and a few bytes and stalls; and
/// one that rate-limits (429) or fails (503) for some repositories.
#[test]
fn a_registry_that_stalls_mid_blob_times_out_and_one_that_fails_says_so() {
    let (manifest, digest) = wasm_manifest(&"1".repeat(64), 100_000);
    let port = fake_registry(move |path, _, conn| {
        if path.contains("/busy/manifests/") {
            respond(conn, "429 Too Many Requests", "", b"")
        } else if path.contains("/broken/manifests/") {
            let body = br#"{"errors":[{"code":"UNKNOWN","message":"disk on fire"}]}"#;
            respond(
                conn,
                "503 Service Unavailable",
                "Content-Type: application/json\r\n",
                body,
            )
        } else if path.contains(".sig") {
            respond(conn, "404 Not Found", "", b"")
        } else if path.contains("/manifests/") {
            manifest_reply(conn, &manifest, &digest)
        } else if path.contains("/blobs/") {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n";
            conn.write_all(head.as_bytes()).ok()?;
            conn.write_all(b"0123456789").ok()?;
            conn.flush().ok()?;
            std::thread::sleep(Duration::from_secs(600));
            None
        } else {
            respond(conn, "200 OK", "", b"{}")
        }
    });
    let cli = Cli::new();
    let started = Instant::now();
    let o = cli.run(&[
        "install",
        &format!("oci://127.0.0.1:{port}/acme/stall:1"),
        "--insecure",
        "--yes",
        "--timeout",
        "2s",
    ]);
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("did not answer within 2s"), "{err}");
    // The server stalls for 10 minutes: well under that means the read timeout ended it (slack for a loaded machine).
    assert!(took < Duration::from_secs(90), "took {took:?}");
    eprintln!("stalled registry refused after {took:?}");

    let busy = format!("oci://127.0.0.1:{port}/acme/busy:1");
    let err = cli.refused(&["install", &busy, "--insecure", "--yes", "--timeout", "5s"]);
    assert!(err.contains("rate-limiting requests (HTTP 429)"), "{err}");
    let broken = format!("oci://127.0.0.1:{port}/acme/broken:1");
    let err = cli.refused(&["install", &broken, "--insecure", "--yes", "--timeout", "5s"]);
    assert!(err.contains("failed (HTTP 503)"), "{err}");
}

#[test]
fn outdated_shows_a_newer_tag_and_upgrade_by_id_takes_it() {
    let publisher = publisher();
    let v1 = format!("{}:0.1.0", repo("outdated"));
    let v2 = format!("{}:0.2.0", repo("outdated"));
    publisher.ok(&["push", fx::STATE_B, &v1, "--key", "acme", "--insecure"]);
    let operator = operator_of(&publisher);
    operator.ok(&["install", &v1, "--insecure", "--yes"]);
    let rows: Value =
        serde_json::from_str(&operator.ok(&["outdated", "--json", "--insecure"])).expect("json");
    assert_eq!(rows[0]["id"], "fixture-state-b");
    assert_eq!(rows[0]["newer"], Value::Null, "{rows}");
    let out = operator.ok(&["upgrade", "fixture-state-b", "--insecure", "--yes"]);
    assert!(out.contains("already installed and current"), "{out}");

    publisher.ok(&["push", fx::STATE_B_V2, &v2, "--key", "acme", "--insecure"]);
    let rows: Value =
        serde_json::from_str(&operator.ok(&["outdated", "--json", "--insecure"])).expect("json");
    assert_eq!(rows[0]["newer"], v2.as_str(), "{rows}");
    let table = operator.ok(&["outdated", "--insecure"]);
    assert!(table.contains("version 0.2.0 is tagged"), "{table}");
    operator.ok(&["upgrade", "fixture-state-b", "--insecure", "--yes"]);
    let info: Value =
        serde_json::from_str(&operator.ok(&["info", "fixture-state-b", "--json"])).expect("json");
    assert_eq!(info["plugin"]["version"], "0.2.0");
    assert_eq!(info["plugin"]["source"], v2.as_str());

    // A plugin installed from a file has no source to upgrade from.
    let local = operator_of(&publisher);
    let file = local.path("basic.wasm");
    std::fs::copy(fx::BASIC, &file).expect("copy");
    local.ok(&["install", s(&file), "--yes", "--allow-unsigned"]);
    let o = local.run(&["upgrade", "fixture-basic", "--yes"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("installed from a local file"));
}

/// A blob download that breaks halfway is resumed with a range request from the byte it stopped at, and the whole
/// is checked against the layer digest.
#[test]
fn a_download_that_breaks_is_resumed_where_it_stopped() {
    let component = fx::bytes(fx::BASIC);
    let hex = sha2_digest(&component);
    let (manifest, digest) = wasm_manifest(&hex, component.len());
    let ranges = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let seen = ranges.clone();
    let half = (component.len() / 2) as u64;
    let port = fake_registry(move |path, range, conn| {
        if path.contains(".sig") {
            respond(conn, "404 Not Found", "", b"")
        } else if path.contains("/manifests/") {
            manifest_reply(conn, &manifest, &digest)
        } else if path.contains("/blobs/") {
            match range {
                None => {
                    // Headers for the whole blob, half of it, then the connection drops.
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                        component.len()
                    );
                    conn.write_all(head.as_bytes()).ok()?;
                    conn.write_all(&component[..component.len() / 2]).ok()?;
                    let _ = conn.flush();
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                    None
                }
                Some(from) => {
                    seen.lock().expect("lock").push(from);
                    let rest = &component[from as usize..];
                    let cr = format!(
                        "Content-Range: bytes {from}-{}/{}\r\n",
                        component.len() - 1,
                        component.len()
                    );
                    respond(conn, "206 Partial Content", &cr, rest)
                }
            }
        } else {
            respond(conn, "200 OK", "", b"{}")
        }
    });
    let cli = Cli::new();
    let reference = format!("oci://127.0.0.1:{port}/acme/resume:1");
    let o = cli.run(&[
        "install",
        &reference,
        "--insecure",
        "--yes",
        "--allow-unsigned",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(*ranges.lock().expect("lock"), vec![half]);
    let called = cli.ok(&[
        "call",
        "fixture-basic",
        "echo",
        "--args",
        r#"{"text":"resumed"}"#,
    ]);
    assert!(called.contains("resumed"), "{called}");
}

/// A registry with the OCI 1.1 referrers API and no `.sig` tag: the signature is found as a referrer of the
/// component's manifest, and verified as usual.
#[test]
fn a_signature_listed_by_the_referrers_api_is_used() {
    let publisher = Cli::new();
    publisher.ok(&["keys", "generate", "--name", "acme", "--trust"]);
    let file = publisher.path("basic.wasm");
    std::fs::copy(fx::BASIC, &file).expect("copy");
    publisher.ok(&["sign", s(&file), "--key", "acme"]);
    let sig = std::fs::read(publisher.path("basic.wasm.sig")).expect("sig");
    let component = fx::bytes(fx::BASIC);
    let layer_hex = sha2_digest(&component);
    let (manifest, digest) = wasm_manifest(&layer_hex, component.len());
    let sig_hex = sha2_digest(&sig);
    let sig_manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.plughost.signature.v1+json","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},"layers":[{{"mediaType":"application/vnd.plughost.signature.v1+json","digest":"sha256:{sig_hex}","size":{}}}],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":{}}}}}"#,
        sig.len(),
        manifest.len()
    );
    let sig_digest = format!("sha256:{}", sha2_digest(sig_manifest.as_bytes()));
    let referrers = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.plughost.signature.v1+json","digest":"{sig_digest}","size":{}}}]}}"#,
        sig_manifest.len()
    );
    let port = fake_registry(move |path, _, conn| {
        if path.contains("/referrers/") {
            respond(
                conn,
                "200 OK",
                "Content-Type: application/vnd.oci.image.index.v1+json\r\n",
                referrers.as_bytes(),
            )
        } else if path.contains(&format!("/manifests/{sig_digest}")) {
            manifest_reply(conn, &sig_manifest, &sig_digest)
        } else if path.contains("/manifests/sha256-") {
            respond(conn, "404 Not Found", "", b"")
        } else if path.contains("/manifests/") {
            manifest_reply(conn, &manifest, &digest)
        } else if path.contains(&format!("/blobs/sha256:{sig_hex}")) {
            respond(conn, "200 OK", "", &sig)
        } else if path.contains("/blobs/") {
            respond(conn, "200 OK", "", &component)
        } else {
            respond(conn, "200 OK", "", b"{}")
        }
    });
    let operator = Cli::new();
    operator.ok(&["keys", "trust", s(&publisher.path("acme.pub"))]);
    let reference = format!("oci://127.0.0.1:{port}/acme/referred:1");
    operator.ok(&["install", &reference, "--insecure", "--yes"]);
    let info: Value =
        serde_json::from_str(&operator.ok(&["info", "fixture-basic", "--json"])).expect("json");
    assert_eq!(info["plugin"]["publisher"]["name"], "acme");
}

/// Every log of the network path at its most verbose (the compiler's own trace is left out: it is only slow).
const TRACE_NETWORK: &str = "plughost=trace,oci_client=trace,reqwest=trace,hyper=trace,hyper_util=trace,h2=trace,rustls=trace";

/// Standard base64 (what an HTTP Basic header carries), for looking for one in a log.
fn base64_encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Without `registry login`, Docker's config.json is used: its inline `auths`, else its credential helper.
#[test]
fn docker_config_credentials_are_used() {
    let publisher = publisher();
    let reference = format!("{}:1", repo("docker-config"));
    publisher.ok(&["push", fx::BASIC, &reference, "--key", "acme", "--insecure"]);
    let r = registry();

    let inline = Cli::new();
    inline.ok(&["keys", "trust", s(&publisher.path("acme.pub"))]);
    let docker = inline.home.path().join("no-docker");
    std::fs::create_dir_all(&docker).expect("docker dir");
    let auth = base64_encode(format!("{}:{}", r.user, r.password).as_bytes());
    let config = format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, r.addr);
    std::fs::write(docker.join("config.json"), config).expect("config.json");
    inline.ok(&["install", &reference, "--insecure", "--yes"]);

    // A credential helper on PATH (`docker-credential-plughosttest get`, the registry on stdin).
    let helper = Cli::new();
    helper.ok(&["keys", "trust", s(&publisher.path("acme.pub"))]);
    let docker = helper.home.path().join("no-docker");
    let bin = helper.work.path().join("bin");
    std::fs::create_dir_all(&docker).expect("docker dir");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::write(
        docker.join("config.json"),
        r#"{"credsStore":"plughosttest"}"#,
    )
    .expect("config.json");
    let script = bin.join("docker-credential-plughosttest");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nread reg\n[ \"$reg\" = \"{}\" ] || exit 1\necho '{{\"Username\":\"{}\",\"Secret\":\"{}\"}}'\n",
            r.addr, r.user, r.password
        ),
    )
    .expect("helper");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new(env!("CARGO_BIN_EXE_plughost"))
        .args(["install", &reference, "--insecure", "--yes"])
        .env("PLUGHOST_HOME", helper.home.path())
        .env("DOCKER_CONFIG", &docker)
        .env("PATH", path)
        .env_remove("PLUGHOST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
