//! The `http` capability, end to end: a real component (`fixture-needs-http`) sends requests through the host to
//! real HTTP servers on 127.0.0.1, and every rule is checked by its typed error — origin (host, port, scheme),
//! non-public addresses after resolution, redirects, body sizes, time, the request budget and secret headers.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plughost::caps::http::HttpLimits;
use plughost::{CallError, Capability, Grants, Host, LoadError, LoadedPlugin, PluginSettings};
use plughost_tests::loopback::{Body, LoopbackServer, Reply};
use plughost_tests::{self as fx, logs};
use serde_json::{Value, json};

fn host() -> Host {
    Host::ephemeral().unwrap_or_else(|e| panic!("host: {e}"))
}

async fn load(host: &Host, grants: &[String], secrets: &[(&str, &str)]) -> LoadedPlugin {
    let grants = Grants::parse(grants).unwrap_or_else(|e| panic!("{e}"));
    let secrets: BTreeMap<String, String> = secrets
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    host.load(&fx::bytes(fx::NEEDS_HTTP), |_| PluginSettings {
        grants,
        secrets,
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("load: {e}"))
    .0
}

/// Calls `fetch` and returns its list of outcomes.
async fn fetch(host: &Host, p: &LoadedPlugin, args: Value) -> Vec<Value> {
    let r = host.call(p, "fetch", &args.to_string()).await;
    match r.result {
        Ok(out) => out
            .structured
            .and_then(|s| s["results"].as_array().cloned())
            .unwrap_or_else(|| panic!("fetch returned no results")),
        Err(e) => panic!("fetch {args} failed: {e}"),
    }
}

async fn fetch1(host: &Host, p: &LoadedPlugin, args: Value) -> Value {
    fetch(host, p, args).await.remove(0)
}

fn assert_error(v: &Value, kind: &str, detail: &str) {
    assert_eq!(v["error"], kind, "{v}");
    assert_eq!(v["detail"], detail, "{v}");
}

/// A server that answers `/hello` with "hello", echoes `/echo`, and redirects on `/to?url=…`.
async fn server() -> LoopbackServer {
    LoopbackServer::start(|r| match r.path.as_str() {
        "/hello" => Reply::new(200, "hello").header("x-served-by", "loopback"),
        "/echo" => Reply::json(
            201,
            &json!({
                "method": r.method,
                "body": String::from_utf8_lossy(&r.body),
                "x-test": r.header("x-test"),
                "authorization": r.header("authorization"),
            }),
        ),
        "/to" => Reply::redirect(
            r.query_param("status")
                .and_then(|s| s.parse().ok())
                .unwrap_or(302),
            &r.query_param("url").unwrap_or_default(),
        ),
        "/loop" => Reply::redirect(302, "/loop"),
        _ => Reply::new(404, "no such path"),
    })
    .await
}

#[tokio::test]
async fn a_granted_origin_gets_the_request_and_the_plugin_gets_the_response() {
    let host = host();
    let s = server().await;
    let p = load(&host, &[format!("http:{}", s.origin())], &[]).await;

    let v = fetch1(&host, &p, json!({"url": s.url("/hello")})).await;
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["body"], "hello");
    let headers = v["headers"].as_array().cloned().unwrap_or_default();
    assert!(
        headers.contains(&json!(["x-served-by", "loopback"])),
        "{headers:?}"
    );

    let v = fetch1(
        &host,
        &p,
        json!({"url": s.url("/echo"), "method": "post", "body": "ping", "headers": [["x-test", "1"]]}),
    )
    .await;
    assert_eq!(v["status"], 201, "{v}");
    let echoed: Value = serde_json::from_str(v["body"].as_str().unwrap_or("")).unwrap_or_default();
    assert_eq!(
        echoed,
        json!({"method": "POST", "body": "ping", "x-test": "1", "authorization": null})
    );

    let seen = s.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path.as_str()),
        ("POST", "/echo")
    );
    assert_eq!(seen[1].body, b"ping");
    assert!(
        seen[0]
            .header("user-agent")
            .is_some_and(|u| u.starts_with("plughost/"))
    );

    // The report counts the host calls.
    let r = host
        .call(&p, "fetch", &json!({"url": s.url("/hello")}).to_string())
        .await;
    assert_eq!(r.report.host_calls.get(Capability::Http), 1);
}

#[tokio::test]
async fn another_host_port_or_scheme_is_denied_naming_the_origin() {
    let host = host();
    let s = server().await;
    let other = server().await;
    let p = load(&host, &[format!("http:{}", s.origin())], &[]).await;
    let port = s.port();

    // Same machine, other name: `localhost` is not `127.0.0.1`.
    let v = fetch1(
        &host,
        &p,
        json!({"url": format!("http://localhost:{port}/hello")}),
    )
    .await;
    assert_error(&v, "denied", &format!("http://localhost:{port}"));
    // Other port.
    let v = fetch1(&host, &p, json!({"url": other.url("/hello")})).await;
    assert_error(&v, "denied", &other.origin());
    // Other scheme.
    let v = fetch1(
        &host,
        &p,
        json!({"url": format!("https://127.0.0.1:{port}/hello")}),
    )
    .await;
    assert_error(&v, "denied", &format!("https://127.0.0.1:{port}"));
    // Default ports count: http://127.0.0.1 is port 80, not the granted one.
    let v = fetch1(&host, &p, json!({"url": "http://127.0.0.1/hello"})).await;
    assert_error(&v, "denied", "http://127.0.0.1");
    // Somewhere on the internet (no DNS lookup happens for a denied origin).
    let v = fetch1(&host, &p, json!({"url": "https://example.com/"})).await;
    assert_error(&v, "denied", "https://example.com");
    // Not HTTP at all, or credentials in the URL.
    let v = fetch1(&host, &p, json!({"url": "ftp://127.0.0.1/x"})).await;
    assert_eq!(v["error"], "invalid-request", "{v}");
    let v = fetch1(
        &host,
        &p,
        json!({"url": format!("http://user:pw@127.0.0.1:{port}/hello")}),
    )
    .await;
    assert_eq!(v["error"], "invalid-request", "{v}");

    assert!(s.requests().is_empty() && other.requests().is_empty());
}

/// An `https` origin goes through TLS with the root certificates every plugin's client shares (read once per
/// process, on the first request): a server on that port that does not speak TLS ends the request in `connection`,
/// from the handshake, and the second request of another plugin reuses the same set-up.
#[tokio::test]
async fn https_goes_through_the_shared_tls_set_up() {
    let host = host();
    let s = server().await;
    let origin = format!("https://127.0.0.1:{}", s.port());
    for _ in 0..2 {
        let p = load(&host, &[format!("http:{origin}")], &[]).await;
        let v = fetch1(&host, &p, json!({"url": format!("{origin}/hello")})).await;
        assert_eq!(v["error"], "connection", "{v}");
        let detail = v["detail"].as_str().unwrap_or_default();
        assert!(!detail.contains("could not be built"), "{v}");
        assert!(
            ["tls", "TLS", "handshake", "corrupt", "InvalidContentType"]
                .iter()
                .any(|w| detail.contains(w)),
            "the failure should come from the TLS handshake: {v}"
        );
    }
}

#[tokio::test]
async fn non_public_addresses_need_a_grant_that_names_the_host() {
    let mut host = host();
    let s = server().await;
    let port = s.port();
    // `api.plughost.test` resolves to 127.0.0.1 (a pinned name goes through the same check as a DNS answer).
    host.caps_config_mut().http_resolve = Arc::new(BTreeMap::from([(
        "api.plughost.test".to_string(),
        vec![IpAddr::from([127, 0, 0, 1])],
    )]));

    // A wildcard grant matches the origin, but does not name the host: the loopback address is refused.
    let wild = load(&host, &[format!("http:http://*.plughost.test:{port}")], &[]).await;
    let v = fetch1(
        &host,
        &wild,
        json!({"url": format!("http://api.plughost.test:{port}/hello")}),
    )
    .await;
    assert_error(&v, "denied", &format!("http://api.plughost.test:{port}"));
    assert!(s.requests().is_empty());

    // Named exactly, it is allowed, and the request carries its own Host header.
    let exact = load(
        &host,
        &[format!("http:http://api.plughost.test:{port}")],
        &[],
    )
    .await;
    let v = fetch1(
        &host,
        &exact,
        json!({"url": format!("http://api.plughost.test:{port}/hello")}),
    )
    .await;
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(
        s.requests()[0].header("host"),
        Some(format!("api.plughost.test:{port}").as_str())
    );

    // Real DNS: `localhost` named in the grant resolves (getaddrinfo) to loopback and is allowed.
    let local = load(&host, &[format!("http:http://localhost:{port}")], &[]).await;
    let v = fetch1(
        &host,
        &local,
        json!({"url": format!("http://localhost:{port}/hello")}),
    )
    .await;
    assert_eq!(v["status"], 200, "{v}");
}

#[tokio::test]
async fn redirects_are_followed_only_to_granted_origins() {
    let host = host();
    let s = server().await;
    let second = server().await;
    let port = s.port();
    let p = load(
        &host,
        &[format!("http:{}", s.origin())],
        &[("token", "tok-7f3a-9c21-0001")],
    )
    .await;

    // Same origin: followed.
    let v = fetch1(&host, &p, json!({"url": s.url("/to?url=/hello")})).await;
    assert_eq!(
        (v["status"].clone(), v["body"].clone()),
        (json!(200), json!("hello")),
        "{v}"
    );

    // Another host or port: refused, naming where it led; the target never sees a request.
    let v = fetch1(
        &host,
        &p,
        json!({"url": s.url(&format!("/to?url=http://localhost:{port}/hello"))}),
    )
    .await;
    assert_error(&v, "redirect-denied", &format!("http://localhost:{port}"));
    let v = fetch1(
        &host,
        &p,
        json!({"url": s.url(&format!("/to?status=307&url={}", second.url("/hello")))}),
    )
    .await;
    assert_error(&v, "redirect-denied", &second.origin());
    assert!(second.requests().is_empty());

    // A 303 after a POST continues as a GET without the body; a 307 keeps both.
    let v = fetch1(
        &host,
        &p,
        json!({"url": s.url("/to?status=303&url=/echo"), "method": "post", "body": "b"}),
    )
    .await;
    let echoed: Value = serde_json::from_str(v["body"].as_str().unwrap_or("")).unwrap_or_default();
    assert_eq!(
        (echoed["method"].clone(), echoed["body"].clone()),
        (json!("GET"), json!("")),
        "{v}"
    );
    let v = fetch1(
        &host,
        &p,
        json!({"url": s.url("/to?status=307&url=/echo"), "method": "post", "body": "b"}),
    )
    .await;
    let echoed: Value = serde_json::from_str(v["body"].as_str().unwrap_or("")).unwrap_or_default();
    assert_eq!(
        (echoed["method"].clone(), echoed["body"].clone()),
        (json!("POST"), json!("b")),
        "{v}"
    );

    // A loop ends at the hop limit: the first request and 5 hops, then a typed error.
    s.clear();
    let v = fetch1(&host, &p, json!({"url": s.url("/loop")})).await;
    assert_error(&v, "too-many-redirects", "5");
    assert_eq!(s.requests().len(), 6);

    // Granted cross-origin redirect: followed, but the secret header stays with the origin it was given for.
    let both = load(
        &host,
        &[format!("http:{},{}", s.origin(), second.origin())],
        &[("token", "tok-7f3a-9c21-0001")],
    )
    .await;
    let v = fetch1(
        &host,
        &both,
        json!({
            "url": s.url(&format!("/to?status=307&url={}", second.url("/echo"))),
            "secret_header": {"name": "authorization", "key": "token", "prefix": "Bearer "},
        }),
    )
    .await;
    assert_eq!(v["status"], 201, "{v}");
    let at_second = &second.requests()[0];
    assert_eq!(at_second.header("authorization"), None);
    let at_first = s.requests();
    assert_eq!(
        at_first.last().and_then(|r| r.header("authorization")),
        Some("Bearer tok-7f3a-9c21-0001")
    );
}

#[tokio::test]
async fn bodies_over_the_limits_are_refused() {
    let mut host = host();
    host.caps_config_mut().http = HttpLimits {
        max_response_body_bytes: 64 << 10,
        max_request_body_bytes: 1024,
        ..HttpLimits::default()
    };
    let s = LoopbackServer::start(|r| {
        let n: usize = r.query_param("n").and_then(|n| n.parse().ok()).unwrap_or(0);
        match r.path.as_str() {
            "/sized" => Reply::new(200, vec![b'a'; n]),
            "/chunked" => Reply {
                body: Body::Chunked(vec![b'a'; n], 8192),
                ..Reply::new(200, "")
            },
            _ => Reply::new(200, format!("{} bytes", r.body.len())),
        }
    })
    .await;
    let p = load(&host, &[format!("http:{}", s.origin())], &[]).await;

    let at_limit = 64 << 10;
    for path in ["sized", "chunked"] {
        let v = fetch1(
            &host,
            &p,
            json!({"url": s.url(&format!("/{path}?n={at_limit}"))}),
        )
        .await;
        assert_eq!(v["body_len"], at_limit, "{path} at the limit is fine");
        let v = fetch1(
            &host,
            &p,
            json!({"url": s.url(&format!("/{path}?n={}", at_limit + 1))}),
        )
        .await;
        assert_error(&v, "too-large", &at_limit.to_string());
    }
    // Far over the limit, without a length: cut off while streaming.
    let v = fetch1(&host, &p, json!({"url": s.url("/chunked?n=5000000")})).await;
    assert_error(&v, "too-large", &at_limit.to_string());

    // Request bodies.
    let v = fetch1(
        &host,
        &p,
        json!({"url": s.url("/up"), "method": "put", "body_bytes": 1024}),
    )
    .await;
    assert_eq!(v["body"], "1024 bytes", "{v}");
    s.clear();
    let v = fetch1(
        &host,
        &p,
        json!({"url": s.url("/up"), "method": "put", "body_bytes": 1025}),
    )
    .await;
    assert_error(&v, "too-large", "1024");
    assert!(s.requests().is_empty(), "an oversize request is never sent");
}

#[tokio::test]
async fn a_slow_server_ends_in_a_timeout_not_a_hang() {
    let mut host = host();
    let s =
        LoopbackServer::start(|_| Reply::new(200, "late").delayed(Duration::from_secs(20))).await;
    let p = load(&host, &[format!("http:{}", s.origin())], &[]).await;

    // The plugin's own timeout.
    let t = Instant::now();
    let v = fetch1(&host, &p, json!({"url": s.url("/slow"), "timeout_ms": 300})).await;
    assert_error(&v, "timeout", "");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // The host's limit, when the plugin asks for longer.
    host.caps_config_mut().http.timeout = Duration::from_millis(300);
    let p = load(&host, &[format!("http:{}", s.origin())], &[]).await;
    let t = Instant::now();
    let v = fetch1(
        &host,
        &p,
        json!({"url": s.url("/slow"), "timeout_ms": 60000}),
    )
    .await;
    assert_error(&v, "timeout", "");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // Nothing listening: a connection error, at once.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        l.local_addr().unwrap_or_else(|e| panic!("{e}")).port()
    };
    let p = load(&host, &[format!("http:http://127.0.0.1:{closed}")], &[]).await;
    let v = fetch1(
        &host,
        &p,
        json!({"url": format!("http://127.0.0.1:{closed}/")}),
    )
    .await;
    assert_eq!(v["error"], "connection", "{v}");
}

#[tokio::test]
async fn each_call_has_a_request_budget() {
    let mut host = host();
    host.caps_config_mut().http.max_requests_per_call = 3;
    let s = server().await;
    let p = load(&host, &[format!("http:{}", s.origin())], &[]).await;
    let out = fetch(&host, &p, json!({"url": s.url("/hello"), "repeat": 5})).await;
    let kinds: Vec<Value> = out
        .iter()
        .map(|v| v.get("error").cloned().unwrap_or(v["status"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            json!(200),
            json!(200),
            json!(200),
            json!("request-limit"),
            json!("request-limit")
        ]
    );
    assert_eq!(out[3]["detail"], "3");
    assert_eq!(s.requests().len(), 3);
    // The budget is per call: the next call starts afresh.
    let out = fetch(&host, &p, json!({"url": s.url("/hello"), "repeat": 1})).await;
    assert_eq!(out[0]["status"], 200);
}

#[tokio::test]
async fn secrets_reach_the_server_but_never_the_output_or_the_logs() {
    let logs = logs::capture();
    let host = host();
    let token = "cf-token-supersecret-4242";
    let s = server().await;
    let p = load(
        &host,
        &[format!("http:{}", s.origin())],
        &[("api_token", token)],
    )
    .await;

    let r = host
        .call(
            &p,
            "fetch",
            &json!({
                "url": s.url("/echo"),
                "secret_header": {"name": "authorization", "key": "api_token", "prefix": "Bearer "},
            })
            .to_string(),
        )
        .await;
    // The server got the real value…
    assert_eq!(
        s.requests()[0].header("authorization"),
        Some(format!("Bearer {token}").as_str())
    );
    // …and echoed it back, but what leaves the host is redacted.
    let out =
        serde_json::to_string(&r.result.as_ref().map_err(ToString::to_string)).unwrap_or_default();
    assert!(!out.contains(token), "{out}");
    assert!(out.contains("Bearer [REDACTED]"), "{out}");

    // A secret in the URL (a plugin that revealed it) is redacted from errors and logs as well.
    let v = fetch1(
        &host,
        &p,
        json!({"url": format!("http://{token}.invalid/")}),
    )
    .await;
    assert_eq!(v["error"], "denied", "{v}");
    let r = host
        .call(
            &p,
            "fetch",
            &json!({"url": format!("http://{token}.invalid/")}).to_string(),
        )
        .await;
    let out = format!("{:?}", r.result);
    assert!(!out.contains(token) && out.contains("[REDACTED]"), "{out}");

    // A missing secret is a clear error naming the key.
    let v = fetch1(
        &host,
        &p,
        json!({"url": s.url("/echo"), "secret_header": {"name": "authorization", "key": "nope"}}),
    )
    .await;
    assert_eq!(v["error"], "invalid-request");
    assert!(
        v["detail"].as_str().is_some_and(|d| d.contains("`nope`")),
        "{v}"
    );

    let text = logs.text();
    assert!(
        text.contains("http request") && text.contains("fixture-needs-http"),
        "requests are logged: {text}"
    );
    assert!(!text.contains(token), "the token reached the log: {text}");
}

#[tokio::test]
async fn without_the_grant_the_plugin_cannot_import_http_at_all() {
    let host = host();
    let err = host
        .load(&fx::bytes(fx::NEEDS_HTTP), |_| PluginSettings::default())
        .await
        .err();
    match err {
        Some(LoadError::MissingGrants { missing, .. }) => {
            assert_eq!(missing, vec![Capability::Http])
        }
        other => panic!("expected missing grants, got {other:?}"),
    }
    // Granted another origin only: the loopback server is out of reach.
    let s = server().await;
    let p = load(&host, &["http:https://api.cloudflare.com".to_string()], &[]).await;
    let v = fetch1(&host, &p, json!({"url": s.url("/hello")})).await;
    assert_error(&v, "denied", &s.origin());
    assert!(s.requests().is_empty());
    // And a call that is not JSON never reaches the capability.
    let r = host.call(&p, "fetch", "nope").await;
    assert!(matches!(r.result, Err(CallError::InvalidArguments { .. })));
}
