//! The shipped Docker plugin and the `container` capability against a **real** Docker-API engine: Podman's service
//! on a unix socket with a local busybox image, started by `scripts/docker-engine.sh` (installed with apt when
//! missing). Set `DOCKER_HOST` to use another engine. If no engine can be started these tests fail; the only way to
//! skip them is the explicit `PLUGHOST_SKIP_DOCKER=1`, which is printed.
//!
//! Every container a test makes carries `plughost-test-case=<test>`; each test removes those at its start and end.

use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use plughost::call::Content;
use plughost::{CallError, Capability, Grants, Host, Limits, LoadedPlugin, PluginSettings};
use plughost_tests as fx;
use serde_json::{Value, json};

const IMAGE: &str = "localhost/busybox:test";

/// The engine's `DOCKER_HOST`, started once per test binary; `None` only with `PLUGHOST_SKIP_DOCKER=1`.
fn engine() -> Option<String> {
    static ENGINE: OnceLock<Option<String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            if std::env::var("PLUGHOST_SKIP_DOCKER").as_deref() == Ok("1") {
                eprintln!("PLUGHOST_SKIP_DOCKER=1: the Docker tests are SKIPPED");
                return None;
            }
            if let Ok(h) = std::env::var("DOCKER_HOST")
                && !h.is_empty()
                && ping(&h)
            {
                return Some(h);
            }
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/docker-engine.sh");
            let out = Command::new("bash")
                .arg(script)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
            let stdout = String::from_utf8_lossy(&out.stdout);
            let host = stdout
                .lines()
                .find_map(|l| l.strip_prefix("export DOCKER_HOST="))
                .map(str::to_string);
            match host {
                Some(h) if out.status.success() && ping(&h) => Some(h),
                _ => panic!(
                    "no Docker-API engine: {script} failed ({}):\n{}\n{}\nFix the engine, point DOCKER_HOST at one, or \
                     skip these tests explicitly with PLUGHOST_SKIP_DOCKER=1",
                    out.status,
                    stdout,
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        })
        .clone()
}

fn socket(docker_host: &str) -> &str {
    docker_host.strip_prefix("unix://").unwrap_or(docker_host)
}

fn ping(docker_host: &str) -> bool {
    api(docker_host, "GET", "/_ping", None).0 == 200
}

/// One request to the engine, outside plughost (to set up foreign containers and tags): (status, body).
fn api(docker_host: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "--max-time",
        "30",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
    ]);
    cmd.args(["--unix-socket", socket(docker_host)]);
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "-d", &b.to_string()]);
    }
    cmd.arg(format!("http://d{path}"));
    let out = cmd.output().unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

async fn docker(host: &Host, grant: &str) -> LoadedPlugin {
    docker_within(host, grant, Limits::default().timeout).await
}

/// The plugin with its calls' deadline set to `deadline`.
async fn docker_within(host: &Host, grant: &str, deadline: Duration) -> LoadedPlugin {
    let grants = Grants::parse([grant]).unwrap_or_else(|e| panic!("{e}"));
    host.load(&fx::bytes(fx::DOCKER), |_| PluginSettings {
        grants,
        limits: Limits {
            timeout: deadline,
            ..Limits::default()
        },
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("load docker: {e}"))
    .0
}

fn host_for(docker_host: &str) -> Host {
    let mut host = Host::ephemeral().unwrap_or_else(|e| panic!("{e}"));
    host.caps_config_mut().container.docker_host = Some(docker_host.to_string());
    host
}

async fn call(host: &Host, p: &LoadedPlugin, tool: &str, args: Value) -> Result<Value, CallError> {
    host.call(p, tool, &args.to_string())
        .await
        .result
        .map(|out| {
            out.structured.unwrap_or_else(|| {
                Value::String(
                    out.content
                        .iter()
                        .map(|c| match c {
                            Content::Text { text } => text.clone(),
                            Content::Json { json } => json.to_string(),
                        })
                        .collect(),
                )
            })
        })
}

async fn ok(host: &Host, p: &LoadedPlugin, tool: &str, args: Value) -> Value {
    call(host, p, tool, args.clone())
        .await
        .unwrap_or_else(|e| panic!("{tool} {args}: {e}"))
}

/// Removes every container labelled with this test case, through the engine directly.
fn cleanup(docker_host: &str, case: &str) {
    let filters = json!({"label": [format!("plughost-test-case={case}")]}).to_string();
    let (_, body) = api(
        docker_host,
        "GET",
        &format!("/containers/json?all=true&filters={}", urlencode(&filters)),
        None,
    );
    let list: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
    for c in list {
        if let Some(id) = c["Id"].as_str() {
            api(
                docker_host,
                "DELETE",
                &format!("/containers/{id}?force=true"),
                None,
            );
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn labelled(case: &str) -> String {
    format!("plughost-test-case={case}")
}

/// Waits until `f` holds (the engine works asynchronously), up to 15 s.
async fn eventually<F: AsyncFnMut() -> bool>(what: &str, mut f: F) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn engine_facts_and_images_with_the_read_group() {
    let Some(dh) = engine() else { return };
    let host = host_for(&dh);
    let p = docker(&host, "container:read").await;
    assert_eq!(p.info.capabilities, vec![Capability::Container]);

    let v = ok(&host, &p, "engine_info", json!({})).await;
    assert!(v["version"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    assert!(
        v["api_version"].as_str().is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    assert_eq!(v["os"], "linux", "{v}");

    let v = ok(&host, &p, "list_images", json!({})).await;
    let tags: Vec<String> = v["images"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| i["tags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    assert!(tags.iter().any(|t| t == IMAGE), "{tags:?}");
    let busybox = v["images"]
        .as_array()
        .and_then(|a| {
            a.iter().find(|i| {
                i["tags"]
                    .as_array()
                    .is_some_and(|t| t.contains(&json!(IMAGE)))
            })
        })
        .cloned()
        .unwrap_or_default();
    assert!(
        busybox["size_bytes"].as_u64().unwrap_or(0) > 100_000,
        "{busybox}"
    );
}

#[tokio::test]
async fn run_read_logs_stop_start_restart_and_remove_a_container() {
    let Some(dh) = engine() else { return };
    let case = "lifecycle";
    cleanup(&dh, case);
    let host = host_for(&dh);
    let p = docker(&host, "container:read,lifecycle;images=localhost/busybox:*").await;
    let name = format!("plughost-test-{}", std::process::id());

    let v = ok(
        &host,
        &p,
        "run_container",
        json!({
            "image": IMAGE,
            "name": name,
            "command": ["sh", "-c", "echo hello from busybox; sleep 0.3; echo to-stderr >&2; sleep 0.3; echo \"greeting=$GREETING\"; sleep 300"],
            "env": {"GREETING": "hi-there"},
            "labels": {"plughost-test-case": case},
            "memory_limit": "64MiB",
        }),
    )
    .await;
    let id = v["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(id.len(), 64, "{v}");

    // Logs: the container's output, stdout and stderr, tail and timestamps.
    let mut logs = String::new();
    eventually("the container's output", async || {
        logs = ok(&host, &p, "container_logs", json!({"id": id}))
            .await
            .as_str()
            .unwrap_or("")
            .to_string();
        logs.contains("greeting=hi-there")
    })
    .await;
    assert_eq!(logs, "hello from busybox\nto-stderr\ngreeting=hi-there\n");
    let v = ok(&host, &p, "container_logs", json!({"id": id, "tail": 1})).await;
    assert_eq!(v, "greeting=hi-there\n");
    let v = ok(
        &host,
        &p,
        "container_logs",
        json!({"id": name, "stderr": false}),
    )
    .await;
    assert_eq!(v, "hello from busybox\ngreeting=hi-there\n");
    let v = ok(
        &host,
        &p,
        "container_logs",
        json!({"id": id, "timestamps": true, "tail": 1}),
    )
    .await;
    let line = v.as_str().unwrap_or_default();
    assert!(
        line.starts_with("20") && line.ends_with(" greeting=hi-there\n"),
        "{line:?}"
    );

    // Inspect: state, labels (plughost's own included), env names without values, memory limit.
    let v = ok(&host, &p, "inspect_container", json!({"id": id})).await;
    assert_eq!(v["summary"]["state"], "Running", "{v}");
    let labels = &v["summary"]["labels"];
    assert!(
        labels
            .as_array()
            .is_some_and(|l| l.contains(&json!({"key": "io.plughost.plugin", "value": "docker"}))),
        "{labels}"
    );
    assert!(
        v["env_names"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("GREETING"))),
        "{v}"
    );
    assert!(
        !v.to_string().contains("hi-there"),
        "env values stay in the engine: {v}"
    );
    assert_eq!(v["memory_limit_bytes"], 64 << 20);
    assert_eq!(v["summary"]["names"], json!([name]));

    // Listed by label.
    let v = ok(
        &host,
        &p,
        "list_containers",
        json!({"labels": [labelled(case)]}),
    )
    .await;
    let ids: Vec<&str> = v["containers"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, [id.as_str()]);

    // Stop (sh ignores SIGTERM as PID 1: the timeout ends in SIGKILL), start, restart.
    ok(
        &host,
        &p,
        "stop_container",
        json!({"id": id, "timeout_seconds": 1}),
    )
    .await;
    let v = ok(&host, &p, "inspect_container", json!({"id": id})).await;
    assert_eq!(v["summary"]["state"], "Exited", "{v}");
    assert!(v["exit_code"].is_i64(), "{v}");
    let running = ok(
        &host,
        &p,
        "list_containers",
        json!({"labels": [labelled(case)]}),
    )
    .await;
    assert_eq!(
        running["containers"],
        json!([]),
        "stopped containers are listed only with all"
    );
    let all = ok(
        &host,
        &p,
        "list_containers",
        json!({"all": true, "labels": [labelled(case)]}),
    )
    .await;
    assert_eq!(all["containers"].as_array().map(Vec::len), Some(1));

    ok(&host, &p, "start_container", json!({"id": id})).await;
    assert_eq!(
        ok(&host, &p, "inspect_container", json!({"id": id})).await["summary"]["state"],
        "Running"
    );
    ok(
        &host,
        &p,
        "restart_container",
        json!({"id": id, "timeout_seconds": 1}),
    )
    .await;
    assert_eq!(
        ok(&host, &p, "inspect_container", json!({"id": id})).await["summary"]["state"],
        "Running"
    );

    // Remove: a running container needs force; then it is gone.
    let e = call(&host, &p, "remove_container", json!({"id": id})).await;
    assert!(
        matches!(e, Err(CallError::Failed { ref message }) if message.starts_with("conflict")),
        "{e:?}"
    );
    ok(
        &host,
        &p,
        "remove_container",
        json!({"id": id, "force": true}),
    )
    .await;
    let e = call(&host, &p, "inspect_container", json!({"id": id})).await;
    assert!(matches!(e, Err(CallError::NotFound { .. })), "{e:?}");

    // A container that ends by itself reports its exit code.
    let v = ok(
        &host,
        &p,
        "run_container",
        json!({"image": IMAGE, "command": ["sh", "-c", "echo done; exit 3"], "labels": {"plughost-test-case": case}}),
    )
    .await;
    let short = v["id"].as_str().unwrap_or_default().to_string();
    eventually("the exit", async || {
        ok(&host, &p, "inspect_container", json!({"id": short})).await["exit_code"] == 3
    })
    .await;
    assert_eq!(
        ok(&host, &p, "container_logs", json!({"id": short})).await,
        "done\n"
    );
    ok(&host, &p, "remove_container", json!({"id": short})).await;

    cleanup(&dh, case);
}

#[tokio::test]
async fn ungranted_groups_images_and_foreign_containers_are_denied() {
    let Some(dh) = engine() else { return };
    let case = "denied";
    cleanup(&dh, case);
    let host = host_for(&dh);

    // Read only: nothing can be run, pulled or removed.
    let read = docker(&host, "container:read").await;
    let run = json!({"image": IMAGE, "command": ["true"], "labels": {"plughost-test-case": case}});
    let e = call(&host, &read, "run_container", run.clone()).await;
    assert!(
        matches!(&e, Err(CallError::Denied { message }) if message.contains("`lifecycle`")),
        "{e:?}"
    );
    let e = call(&host, &read, "pull_image", json!({"reference": IMAGE})).await;
    assert!(
        matches!(&e, Err(CallError::Denied { message }) if message.contains("`images`")),
        "{e:?}"
    );

    // Lifecycle without image patterns, or with patterns that do not match.
    let no_images = docker(&host, "container:read,lifecycle").await;
    let e = call(&host, &no_images, "run_container", run.clone()).await;
    assert!(
        matches!(&e, Err(CallError::Denied { message }) if message.contains("no image patterns")),
        "{e:?}"
    );
    let p = docker(&host, "container:read,lifecycle;images=localhost/busybox:*").await;
    let e = call(
        &host,
        &p,
        "run_container",
        json!({"image": "docker.io/library/alpine:3", "command": ["true"]}),
    )
    .await;
    assert!(
        matches!(&e, Err(CallError::Denied { message }) if message.contains("docker.io/library/alpine:3") && message.contains("localhost/busybox:*")),
        "{e:?}"
    );
    // plughost's own label cannot be forged.
    let e = call(
        &host,
        &p,
        "run_container",
        json!({"image": IMAGE, "command": ["true"], "labels": {"io.plughost.plugin": "someone-else"}}),
    )
    .await;
    assert!(
        matches!(&e, Err(CallError::Denied { message }) if message.contains("io.plughost.")),
        "{e:?}"
    );
    // Nothing was created by any of that.
    let v = ok(
        &host,
        &read,
        "list_containers",
        json!({"all": true, "labels": [labelled(case)]}),
    )
    .await;
    assert_eq!(v["containers"], json!([]));

    // A container the plugin did not create: readable, but not its to stop or remove…
    let (status, body) = api(
        &dh,
        "POST",
        "/containers/create",
        Some(
            &json!({"Image": IMAGE, "Cmd": ["sleep", "300"], "Labels": {"plughost-test-case": case}}),
        ),
    );
    assert_eq!(status, 201, "{body}");
    let foreign = serde_json::from_str::<Value>(&body).unwrap_or_default()["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        api(&dh, "POST", &format!("/containers/{foreign}/start"), None).0,
        204
    );
    assert_eq!(
        ok(&host, &p, "inspect_container", json!({"id": foreign})).await["summary"]["state"],
        "Running"
    );
    for (tool, args) in [
        (
            "stop_container",
            json!({"id": foreign, "timeout_seconds": 1}),
        ),
        ("restart_container", json!({"id": foreign})),
        ("remove_container", json!({"id": foreign, "force": true})),
    ] {
        let e = call(&host, &p, tool, args).await;
        assert!(
            matches!(&e, Err(CallError::Denied { message }) if message.contains("not created by plugin `docker`")),
            "{tool}: {e:?}"
        );
    }
    assert_eq!(
        ok(&host, &p, "inspect_container", json!({"id": foreign})).await["summary"]["state"],
        "Running"
    );
    // …unless the operator grants any-container.
    let any = docker(&host, "container:read,lifecycle,any-container").await;
    ok(
        &host,
        &any,
        "stop_container",
        json!({"id": foreign, "timeout_seconds": 1}),
    )
    .await;
    ok(&host, &any, "remove_container", json!({"id": foreign})).await;
    let e = call(&host, &any, "inspect_container", json!({"id": foreign})).await;
    assert!(matches!(e, Err(CallError::NotFound { .. })), "{e:?}");

    // References that would change the API path are refused before reaching the engine.
    let e = call(
        &host,
        &p,
        "inspect_container",
        json!({"id": "../images/json"}),
    )
    .await;
    assert!(matches!(e, Err(CallError::NotFound { .. })), "{e:?}");

    cleanup(&dh, case);
}

#[tokio::test]
async fn images_are_pulled_and_removed_only_within_the_grant() {
    let Some(dh) = engine() else { return };
    let host = host_for(&dh);
    let p = docker(
        &host,
        "container:read,images;images=localhost/busybox:*,localhost/nowhere/*",
    )
    .await;

    // No registry here: a pull fails with a clear, typed error, and in bounded time.
    let t = Instant::now();
    let e = call(
        &host,
        &p,
        "pull_image",
        json!({"reference": "localhost/nowhere/thing:1"}),
    )
    .await;
    assert!(
        matches!(&e, Err(CallError::Unavailable { message }) if message.contains("localhost/nowhere/thing") && message.contains("registry")),
        "{e:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    let e = call(
        &host,
        &p,
        "pull_image",
        json!({"reference": "docker.io/library/alpine:3"}),
    )
    .await;
    assert!(matches!(e, Err(CallError::Denied { .. })), "{e:?}");

    // Remove an image: tag busybox under a second name (engine API, outside plughost), remove that name.
    let tag = format!("rm{}", std::process::id());
    let (status, body) = api(
        &dh,
        "POST",
        &format!("/images/{IMAGE}/tag?repo=localhost/busybox&tag={tag}"),
        None,
    );
    assert!(status == 201 || status == 200, "{status} {body}");
    let reference = format!("localhost/busybox:{tag}");
    let listed = |v: &Value| v.to_string().contains(&reference);
    assert!(listed(&ok(&host, &p, "list_images", json!({})).await));
    ok(&host, &p, "remove_image", json!({"reference": reference})).await;
    assert!(!listed(&ok(&host, &p, "list_images", json!({})).await));
    // The seed image stays; removing what is not granted is refused.
    assert!(
        ok(&host, &p, "list_images", json!({}))
            .await
            .to_string()
            .contains(IMAGE)
    );
    let e = call(
        &host,
        &p,
        "remove_image",
        json!({"reference": "docker.io/library/alpine:3"}),
    )
    .await;
    assert!(matches!(e, Err(CallError::Denied { .. })), "{e:?}");
    let e = call(&host, &p, "remove_image", json!({"reference": reference})).await;
    assert!(matches!(e, Err(CallError::NotFound { .. })), "{e:?}");
}

/// An "engine" on a unix socket in `dir` that accepts connections and never answers; its `DOCKER_HOST`.
fn silent_engine(dir: &std::path::Path) -> String {
    let path = dir.join("silent.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    format!("unix://{}", path.display())
}

#[tokio::test]
async fn an_engine_that_is_down_or_hangs_is_a_quick_typed_error() {
    // No engine needed: these engines are broken on purpose.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));

    // Nothing listening.
    let missing = format!("unix://{}/missing.sock", dir.path().display());
    let host = host_for(&missing);
    let p = docker(&host, "container:read").await;
    let t = Instant::now();
    let e = call(&host, &p, "engine_info", json!({})).await;
    assert!(
        matches!(&e, Err(CallError::Unavailable { message }) if message.contains("missing.sock")),
        "{e:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    // Accepts connections, never answers: bounded by the container timeout.
    let mut host = host_for(&silent_engine(dir.path()));
    host.caps_config_mut().container.timeout = Duration::from_millis(500);
    let p = docker(&host, "container:read,lifecycle;images=*").await;
    for (tool, args) in [
        ("engine_info", json!({})),
        ("list_containers", json!({})),
        ("run_container", json!({"image": IMAGE})),
    ] {
        let t = Instant::now();
        let e = call(&host, &p, tool, args).await;
        assert!(
            matches!(&e, Err(CallError::Unavailable { message }) if message.contains("did not answer")),
            "{tool}: {e:?}"
        );
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "{tool}: {:?}",
            t.elapsed()
        );
    }
}

#[tokio::test]
async fn an_engine_that_never_answers_is_unavailable_before_the_calls_deadline() {
    // The engine timeout (10 s) is as long as the call's deadline: the answer must still come before it.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let host = host_for(&silent_engine(dir.path()));
    let deadline = Duration::from_secs(2);
    let p = docker_within(&host, "container:read", deadline).await;
    let t = Instant::now();
    let e = call(&host, &p, "engine_info", json!({})).await;
    assert!(
        matches!(&e, Err(CallError::Unavailable { message }) if message.contains("did not answer")),
        "{e:?}"
    );
    assert!(t.elapsed() < deadline, "{:?}", t.elapsed());
}

#[tokio::test]
async fn a_stop_without_a_timeout_fits_the_calls_deadline_when_the_container_ignores_sigterm() {
    let Some(dh) = engine() else { return };
    let case = "stop-grace";
    cleanup(&dh, case);
    let host = host_for(&dh);
    let p = docker(&host, "container:read,lifecycle;images=localhost/busybox:*").await;
    let v = ok(
        &host,
        &p,
        "run_container",
        json!({
            "image": IMAGE,
            "command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"],
            "labels": {"plughost-test-case": case},
        }),
    )
    .await;
    let id = v["id"].as_str().unwrap_or_default().to_string();
    let state = async |host: &Host| {
        ok(host, &p, "inspect_container", json!({"id": id})).await["summary"]["state"].clone()
    };
    eventually("running", async || state(&host).await == "Running").await;

    // No timeout_seconds: the engine's grace is cut to fit the 10 s deadline, and SIGKILL ends the container.
    let t = Instant::now();
    let v = ok(&host, &p, "stop_container", json!({"id": id})).await;
    assert_eq!(v["result"], "stopped", "{v}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(state(&host).await, "Exited");

    ok(&host, &p, "start_container", json!({"id": id})).await;
    eventually("running again", async || state(&host).await == "Running").await;
    let t = Instant::now();
    let v = ok(&host, &p, "restart_container", json!({"id": id})).await;
    assert_eq!(v["result"], "restarted", "{v}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(state(&host).await, "Running");

    cleanup(&dh, case);
}

#[tokio::test]
async fn a_short_image_name_is_matched_as_the_engine_completes_it() {
    let Some(dh) = engine() else { return };
    let host = host_for(&dh);
    let p = docker(&host, "container:images;images=docker.io/library/*").await;
    // `alpine` is docker.io/library/alpine:latest to the engine: granted. No registry is reachable here, so the
    // pull itself fails, naming the full reference it asked for.
    let e = call(&host, &p, "pull_image", json!({"reference": "alpine"})).await;
    assert!(
        matches!(&e, Err(CallError::Unavailable { message }) if message.contains("docker.io/library/alpine:latest")),
        "{e:?}"
    );
    // …and a name outside docker.io/library is still refused.
    let e = call(
        &host,
        &p,
        "pull_image",
        json!({"reference": "someone/alpine"}),
    )
    .await;
    assert!(matches!(e, Err(CallError::Denied { .. })), "{e:?}");
}

/// A Docker-API engine whose pulls take `pull` to finish (progress lines every 200 ms), counting the pulls started.
async fn slow_puller(
    path: &std::path::Path,
    pull: Duration,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::sync::Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::UnixListener::bind(path).unwrap_or_else(|e| panic!("{e}"));
    let count = started.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if !head.starts_with(b"POST ") || !head.windows(14).any(|w| w == b"/images/create")
                {
                    let _ = s
                        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}")
                        .await;
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await;
                let t = Instant::now();
                while t.elapsed() < pull {
                    let line = b"{\"status\":\"Downloading\"}\n";
                    let chunk =
                        [format!("{:x}\r\n", line.len()).as_bytes(), line, b"\r\n"].concat();
                    if s.write_all(&chunk).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                let line = b"{\"status\":\"Download complete\"}\n";
                let chunk = [
                    format!("{:x}\r\n", line.len()).as_bytes(),
                    line,
                    b"\r\n0\r\n\r\n",
                ]
                .concat();
                let _ = s.write_all(&chunk).await;
            });
        }
    });
    started
}

#[tokio::test]
async fn a_pull_has_its_own_budget_beyond_the_calls_deadline() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("slow.sock");
    let pulls = slow_puller(&path, Duration::from_secs(3)).await;
    let host = host_for(&format!("unix://{}", path.display()));
    let p = docker_within(
        &host,
        "container:images;images=localhost/*",
        Duration::from_secs(2),
    )
    .await;
    let args = json!({"reference": "localhost/slow/image:1"});

    // The pull takes 3 s, the call has 2 s: the call says the pull goes on, within its own 120 s budget…
    let t = Instant::now();
    let e = call(&host, &p, "pull_image", args.clone()).await;
    assert!(
        matches!(&e, Err(CallError::Unavailable { message }) if message.contains("still running") && message.contains("120 s budget")),
        "{e:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    // …and the next call waits for that same pull, which finishes.
    let v = ok(&host, &p, "pull_image", args).await;
    assert_eq!(v["result"], "pulled", "{v}");
    assert_eq!(
        pulls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one pull, joined"
    );
}

/// `pull_image` reports progress to a caller that asked for it (as the MCP gateway does for a client's progress
/// token): 0 of 1 when the pull starts, 1 of 1 when it is done, naming the image. Against the Docker-API pull
/// server above (Podman here has no registry to pull from).
#[tokio::test]
async fn a_pull_reports_its_start_and_end_as_progress() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("puller.sock");
    let pulls = slow_puller(&path, Duration::from_millis(300)).await;
    let host = host_for(&format!("unix://{}", path.display()));
    let p = docker(&host, "container:images;images=localhost/*").await;
    let (sink, mut got) = tokio::sync::mpsc::channel(16);
    let v = plughost::runtime::with_progress(
        sink,
        ok(
            &host,
            &p,
            "pull_image",
            json!({"reference": "localhost/some/image:1"}),
        ),
    )
    .await;
    assert_eq!(v["result"], "pulled", "{v}");
    assert_eq!(pulls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let mut reports = Vec::new();
    while let Ok(p) = got.try_recv() {
        reports.push((p.done, p.total, p.message.unwrap_or_default()));
    }
    assert_eq!(
        reports,
        [
            (0, Some(1), "pulling localhost/some/image:1".to_string()),
            (1, Some(1), "pulled localhost/some/image:1".to_string()),
        ]
    );
}
