//! The shipped Cloudflare plugin against a loopback server that speaks the Cloudflare v4 API: the real envelope
//! (`success`, `errors[{code,message}]`, `messages`, `result`, `result_info`), pagination, error codes, a 403 for a
//! bad token and a 429 with `Retry-After`. The server keeps zones, records, rulesets and settings in memory and
//! records every request, so each test asserts the method, path, query, Bearer header and body the plugin sent —
//! and that the token never shows up in any output or log line.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use plughost::call::Content;
use plughost::{CallError, Capability, Grants, Host, LoadedPlugin, PluginSettings};
use plughost_tests::loopback::{LoopbackServer, Recorded, Reply};
use plughost_tests::{self as fx, logs};
use serde_json::{Value, json};

const TOKEN: &str = "cf-test-token-7c1d2b9e54";
const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const ACCOUNT: &str = "9a7806061c88ada191ed06f989cc3dac";

// ---- the fake Cloudflare ---------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Cf {
    records: Vec<Value>,
    next_id: u32,
    ssl: String,
    ruleset: Option<Value>,
    /// Answer the next N requests with 429.
    rate_limit: u32,
    /// Answer the next request with a bare 429 (no JSON envelope), with this `Retry-After` if any.
    bare_rate_limit: Option<Option<u32>>,
    /// The largest DNS record page this server hands out (0: no limit).
    max_records_per_page: usize,
}

fn ok(result: Value) -> Reply {
    Reply::json(
        200,
        &json!({"success": true, "errors": [], "messages": [], "result": result}),
    )
}

fn ok_paged(all: Vec<Value>, r: &Recorded, default_per_page: usize) -> Reply {
    ok_paged_upto(all, r, default_per_page, usize::MAX)
}

/// A page of `all`, as asked (`page`, `per_page`), with pages of at most `max_per_page`.
fn ok_paged_upto(
    all: Vec<Value>,
    r: &Recorded,
    default_per_page: usize,
    max_per_page: usize,
) -> Reply {
    let page: usize = r
        .query_param("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let per_page: usize = r
        .query_param("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(default_per_page)
        .clamp(1, max_per_page);
    let total = all.len();
    let items: Vec<Value> = all
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    Reply::json(
        200,
        &json!({
            "success": true, "errors": [], "messages": [],
            "result": items,
            "result_info": {
                "page": page, "per_page": per_page, "count": items.len(),
                "total_count": total, "total_pages": total.div_ceil(per_page).max(1),
            },
        }),
    )
}

fn fail(status: u16, code: i64, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null}),
    )
}

fn zone_json(name: &str) -> Value {
    json!({"id": ZONE, "name": name, "status": "active", "paused": false,
           "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"]})
}

impl Cf {
    fn handle(&mut self, r: &Recorded) -> Reply {
        if r.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return fail(403, 10000, "Authentication error");
        }
        if self.rate_limit > 0 {
            self.rate_limit -= 1;
            return fail(
                429,
                971,
                "Please wait and consider throttling your request speed",
            )
            .header("retry-after", "7");
        }
        if let Some(after) = self.bare_rate_limit.take() {
            let reply = Reply::new(429, "");
            return match after {
                Some(s) => reply.header("retry-after", &s.to_string()),
                None => reply,
            };
        }
        let segs: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
        let body = r.json();
        match (r.method.as_str(), segs.as_slice()) {
            ("GET", ["client", "v4", "zones"]) => {
                let zones = match r.query_param("name").as_deref() {
                    None | Some("example.com") => vec![zone_json("example.com")],
                    Some(_) => vec![],
                };
                ok_paged(zones, r, 20)
            }
            ("GET", ["client", "v4", "zones", z, "dns_records"]) if *z == ZONE => {
                let want = |k: &str, rec: &Value| {
                    r.query_param(k)
                        .is_none_or(|v| rec[k].as_str() == Some(v.as_str()))
                };
                let list = self
                    .records
                    .iter()
                    .filter(|rec| want("type", rec) && want("name", rec) && want("content", rec))
                    .cloned()
                    .collect();
                let max = match self.max_records_per_page {
                    0 => usize::MAX,
                    n => n,
                };
                ok_paged_upto(list, r, 100, max)
            }
            ("POST", ["client", "v4", "zones", z, "dns_records"]) if *z == ZONE => {
                let (Some(t), Some(n), Some(c)) = (
                    body["type"].as_str(),
                    body["name"].as_str(),
                    body["content"].as_str(),
                ) else {
                    return fail(400, 9000, "DNS name is invalid.");
                };
                if self
                    .records
                    .iter()
                    .any(|x| x["type"] == t && x["name"] == n && x["content"] == c)
                {
                    return fail(400, 81057, "Record already exists.");
                }
                if t == "CNAME" && self.records.iter().any(|x| x["name"] == n) {
                    return fail(
                        400,
                        81053,
                        "An A, AAAA, or CNAME record with that host already exists.",
                    );
                }
                self.next_id += 1;
                let rec = json!({
                    "id": format!("rec{:029}", self.next_id), "zone_id": ZONE, "zone_name": "example.com",
                    "type": t, "name": n, "content": c, "ttl": body["ttl"].as_u64().unwrap_or(1),
                    "proxied": body["proxied"].as_bool().unwrap_or(false), "proxiable": true,
                    "comment": body["comment"], "created_on": "2026-11-23T08:00:00Z",
                });
                self.records.push(rec.clone());
                ok(rec)
            }
            ("PATCH", ["client", "v4", "zones", z, "dns_records", id]) if *z == ZONE => {
                let Some(rec) = self.records.iter_mut().find(|x| x["id"] == *id) else {
                    return fail(404, 81044, "Record does not exist.");
                };
                if let Value::Object(changes) = body {
                    for (k, v) in changes {
                        rec[k] = v;
                    }
                }
                ok(rec.clone())
            }
            ("DELETE", ["client", "v4", "zones", z, "dns_records", id]) if *z == ZONE => {
                let before = self.records.len();
                self.records.retain(|x| x["id"] != *id);
                if self.records.len() == before {
                    return fail(404, 81044, "Record does not exist.");
                }
                ok(json!({"id": id}))
            }
            ("POST", ["client", "v4", "zones", z, "purge_cache"]) if *z == ZONE => {
                // As Cloudflare: tags, hosts and prefixes may go together; everything and files go alone.
                let keys: Vec<&str> = body
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let flexible = |k: &&str| matches!(*k, "tags" | "hosts" | "prefixes");
                if keys.is_empty() || (keys.len() > 1 && !keys.iter().all(flexible)) {
                    return fail(
                        400,
                        1012,
                        "Request must contain one of \"purge_everything\", \"files\", \"tags\", \"hosts\" or \"prefixes\"",
                    );
                }
                ok(json!({"id": ZONE}))
            }
            (
                "GET",
                [
                    "client",
                    "v4",
                    "zones",
                    z,
                    "rulesets",
                    "phases",
                    "http_request_firewall_custom",
                    "entrypoint",
                ],
            ) if *z == ZONE => match &self.ruleset {
                Some(rs) => ok(rs.clone()),
                None => fail(
                    404,
                    10003,
                    "could not find entrypoint ruleset in the http_request_firewall_custom phase",
                ),
            },
            (
                "PUT",
                [
                    "client",
                    "v4",
                    "zones",
                    z,
                    "rulesets",
                    "phases",
                    "http_request_firewall_custom",
                    "entrypoint",
                ],
            ) if *z == ZONE => {
                let rules: Vec<Value> = body["rules"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut r)| {
                        r["id"] = json!(format!("rule{i:028}"));
                        r
                    })
                    .collect();
                let rs = json!({"id": "rs0000000000000000000000000000ab", "kind": "zone",
                                "phase": "http_request_firewall_custom", "rules": rules});
                self.ruleset = Some(rs.clone());
                ok(rs)
            }
            ("POST", ["client", "v4", "zones", z, "rulesets", rs_id, "rules"]) if *z == ZONE => {
                let Some(rs) = self.ruleset.as_mut().filter(|rs| rs["id"] == *rs_id) else {
                    return fail(404, 10003, "ruleset not found");
                };
                let mut rule = body;
                let n = rs["rules"].as_array().map_or(0, Vec::len);
                rule["id"] = json!(format!("rule{n:028}"));
                if let Some(rules) = rs["rules"].as_array_mut() {
                    rules.push(rule);
                }
                ok(rs.clone())
            }
            ("GET", ["client", "v4", "zones", z, "settings", "ssl"]) if *z == ZONE => {
                ok(json!({"id": "ssl", "value": self.ssl, "editable": true}))
            }
            ("PATCH", ["client", "v4", "zones", z, "settings", "ssl"]) if *z == ZONE => {
                self.ssl = body["value"].as_str().unwrap_or_default().to_string();
                ok(
                    json!({"id": "ssl", "value": self.ssl, "editable": true, "modified_on": "2026-11-23T08:00:00Z"}),
                )
            }
            ("POST", ["client", "v4", "certificates"]) => ok(json!({
                "id": "328578533902268680212849205732770752308931942346",
                "certificate": "-----BEGIN CERTIFICATE-----\nMIIEr...\n-----END CERTIFICATE-----\n",
                "hostnames": body["hostnames"], "expires_on": "2041-11-19 08:00:00 +0000 UTC",
                "request_type": body["request_type"], "requested_validity": body["requested_validity"],
                "csr": body["csr"],
            })),
            ("POST", ["client", "v4", "accounts", a, "cfd_tunnel"]) if *a == ACCOUNT => ok(json!({
                "id": "f70ff985-a4ef-4643-bbbc-4a0ed4fc8415", "account_tag": ACCOUNT,
                "name": body["name"], "status": "inactive", "created_at": "2026-11-23T08:00:00Z",
                "config_src": body["config_src"], "connections": [],
            })),
            _ => fail(
                404,
                7003,
                &format!(
                    "Could not route to {}, perhaps your object identifier is invalid?",
                    r.path
                ),
            ),
        }
    }
}

struct Fixture {
    host: Host,
    plugin: LoadedPlugin,
    server: LoopbackServer,
    cf: Arc<Mutex<Cf>>,
}

async fn fixture() -> Fixture {
    let cf = Arc::new(Mutex::new(Cf {
        ssl: "flexible".into(),
        ..Default::default()
    }));
    let state = cf.clone();
    let server = LoopbackServer::start(move |r| {
        state
            .lock()
            .map(|mut cf| cf.handle(r))
            .unwrap_or_else(|_| Reply::new(500, "poisoned"))
    })
    .await;
    let host = Host::ephemeral().unwrap_or_else(|e| panic!("{e}"));
    let plugin = load(&host, &server, TOKEN).await;
    Fixture {
        host,
        plugin,
        server,
        cf,
    }
}

async fn load(host: &Host, server: &LoopbackServer, token: &str) -> LoadedPlugin {
    let grants = Grants::parse([format!("http:{}", server.origin()), "config".to_string()])
        .unwrap_or_else(|e| panic!("{e}"));
    host.load(&fx::bytes(fx::CLOUDFLARE), |_| PluginSettings {
        grants,
        config: BTreeMap::from([
            ("base_url".to_string(), server.url("/client/v4")),
            ("account_id".to_string(), ACCOUNT.to_string()),
        ]),
        secrets: BTreeMap::from([("api_token".to_string(), token.to_string())]),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("load cloudflare: {e}"))
    .0
}

impl Fixture {
    /// Calls a tool; checks that the token appears nowhere in what comes back.
    async fn call(&self, tool: &str, args: Value) -> Result<Value, CallError> {
        let r = self.host.call(&self.plugin, tool, &args.to_string()).await;
        let everything = format!("{:?} {:?}", r.result, r.report);
        assert!(
            !everything.contains(TOKEN),
            "the token leaked from {tool}: {everything}"
        );
        r.result.map(|out| {
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

    async fn ok(&self, tool: &str, args: Value) -> Value {
        self.call(tool, args.clone())
            .await
            .unwrap_or_else(|e| panic!("{tool} {args}: {e}"))
    }

    /// The requests since the last `take`, each checked for the Bearer token.
    fn take(&self) -> Vec<Recorded> {
        let reqs = self.server.requests();
        self.server.clear();
        for r in &reqs {
            assert_eq!(
                r.header("authorization"),
                Some(format!("Bearer {TOKEN}").as_str()),
                "{} {}",
                r.method,
                r.path
            );
        }
        reqs
    }
}

fn line(r: &Recorded) -> String {
    match &r.query {
        Some(q) => format!("{} {}?{q}", r.method, r.path),
        None => format!("{} {}", r.method, r.path),
    }
}

fn lines(reqs: &[Recorded]) -> Vec<String> {
    reqs.iter().map(line).collect()
}

// ---- the tests -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn manifest_imports_http_and_config_and_annotates_reads_and_deletes() {
    let f = fixture().await;
    assert_eq!(
        f.plugin.info.capabilities,
        vec![Capability::Config, Capability::Http]
    );
    let tools: BTreeMap<&str, _> = f
        .plugin
        .manifest
        .tools
        .iter()
        .map(|t| (t.name.as_str(), t.annotations))
        .collect();
    assert_eq!(
        tools.keys().copied().collect::<Vec<_>>(),
        [
            "create_dns_record",
            "create_origin_certificate",
            "create_tunnel",
            "create_waf_rule",
            "delete_dns_record",
            "list_dns_records",
            "list_zones",
            "purge_cache",
            "render_nginx_config",
            "resolve_zone",
            "set_ssl_mode",
            "setup_complete_hosting",
            "update_dns_record",
        ]
    );
    for read in [
        "list_zones",
        "resolve_zone",
        "list_dns_records",
        "render_nginx_config",
    ] {
        assert_eq!(tools[read].read_only_hint, Some(true), "{read}");
    }
    for write in [
        "create_dns_record",
        "update_dns_record",
        "set_ssl_mode",
        "setup_complete_hosting",
    ] {
        assert_ne!(tools[write].read_only_hint, Some(true), "{write}");
    }
    assert_eq!(tools["delete_dns_record"].destructive_hint, Some(true));
    assert_eq!(tools["setup_complete_hosting"].idempotent_hint, Some(true));
}

#[tokio::test]
async fn zones_are_listed_and_resolved_from_any_name_inside_them() {
    let f = fixture().await;
    let v = f.ok("list_zones", json!({"per_page": 5})).await;
    assert_eq!(v["zones"][0]["id"], ZONE);
    assert_eq!(v["result_info"]["total_count"], 1);
    assert_eq!(lines(&f.take()), ["GET /client/v4/zones?per_page=5"]);

    let v = f
        .ok("resolve_zone", json!({"domain": "Shop.WWW.example.com."}))
        .await;
    assert_eq!(v["zone"]["id"], ZONE);
    assert_eq!(v["domain"], "shop.www.example.com");
    assert_eq!(
        lines(&f.take()),
        [
            "GET /client/v4/zones?name=shop.www.example.com",
            "GET /client/v4/zones?name=www.example.com",
            "GET /client/v4/zones?name=example.com",
        ]
    );

    let e = f
        .call("resolve_zone", json!({"domain": "example.org"}))
        .await;
    assert!(
        matches!(&e, Err(CallError::NotFound { message }) if message.contains("example.org")),
        "{e:?}"
    );
    let e = f
        .call("resolve_zone", json!({"domain": "not a domain"}))
        .await;
    assert!(
        matches!(e, Err(CallError::InvalidArguments { .. })),
        "{e:?}"
    );
}

#[tokio::test]
async fn dns_records_are_created_listed_paginated_updated_and_deleted() {
    let f = fixture().await;

    // Create: the body the API expects (ttl 1 = automatic), zone looked up from the domain.
    let v = f
        .ok(
            "create_dns_record",
            json!({"domain": "example.com", "type": "a", "name": "example.com", "content": "203.0.113.10", "proxied": true}),
        )
        .await;
    let id = v["record"]["id"].as_str().unwrap_or_default().to_string();
    assert_eq!(v["record"]["ttl"], 1);
    let reqs = f.take();
    assert_eq!(
        lines(&reqs),
        [
            "GET /client/v4/zones?name=example.com".to_string(),
            format!("POST /client/v4/zones/{ZONE}/dns_records"),
        ]
    );
    assert_eq!(
        reqs[1].json(),
        json!({"type": "A", "name": "example.com", "content": "203.0.113.10", "ttl": 1, "proxied": true})
    );
    assert_eq!(reqs[1].header("content-type"), Some("application/json"));

    // A duplicate: Cloudflare's code and message come back as a typed upstream error.
    let e = f
        .call(
            "create_dns_record",
            json!({"zone_id": ZONE, "type": "A", "name": "example.com", "content": "203.0.113.10"}),
        )
        .await;
    match e {
        Err(CallError::Upstream {
            status,
            code,
            message,
            ..
        }) => {
            assert_eq!((status, code), (Some(400), Some(81057)));
            assert!(message.contains("Record already exists."), "{message}");
        }
        other => panic!("expected an upstream error, got {other:?}"),
    }
    // Bad arguments never reach the API.
    f.take();
    for bad in [
        json!({"zone_id": ZONE, "type": "BOGUS", "name": "x.example.com", "content": "1.2.3.4"}),
        json!({"zone_id": ZONE, "type": "A", "name": "x.example.com", "content": "1.2.3.4", "ttl": 5}),
        json!({"zone_id": "../../accounts", "type": "A", "name": "x.example.com", "content": "1.2.3.4"}),
        json!({"type": "A", "name": "x.example.com", "content": "1.2.3.4"}),
    ] {
        let e = f.call("create_dns_record", bad.clone()).await;
        assert!(
            matches!(e, Err(CallError::InvalidArguments { .. })),
            "{bad}: {e:?}"
        );
    }
    assert!(f.take().is_empty());

    // Five TXT records, listed two per page.
    for i in 0..5 {
        f.ok(
            "create_dns_record",
            json!({"zone_id": ZONE, "type": "TXT", "name": "txt.example.com", "content": format!("v={i}"), "ttl": 3600}),
        )
        .await;
    }
    f.take();
    let v = f
        .ok(
            "list_dns_records",
            json!({"zone_id": ZONE, "type": "TXT", "name": "txt.example.com", "page": 2, "per_page": 2}),
        )
        .await;
    let contents: Vec<&str> = v["records"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["content"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(contents, ["v=2", "v=3"]);
    assert_eq!(
        v["result_info"],
        json!({"page": 2, "per_page": 2, "count": 2, "total_count": 5, "total_pages": 3})
    );
    let reqs = f.take();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, format!("/client/v4/zones/{ZONE}/dns_records"));
    assert_eq!(
        reqs[0].query_pairs(),
        [
            ("type", "TXT"),
            ("name", "txt.example.com"),
            ("page", "2"),
            ("per_page", "2")
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    // All pages: three requests, every record once.
    let v = f
        .ok(
            "list_dns_records",
            json!({"zone_id": ZONE, "type": "TXT", "per_page": 2, "all_pages": true}),
        )
        .await;
    assert_eq!(v["records"].as_array().map(Vec::len), Some(5));
    let pages: Vec<Option<String>> = f.take().iter().map(|r| r.query_param("page")).collect();
    assert_eq!(
        pages,
        [Some("1".into()), Some("2".into()), Some("3".into())]
    );

    // Update only what is given; then delete.
    let v = f
        .ok(
            "update_dns_record",
            json!({"zone_id": ZONE, "record_id": id, "content": "203.0.113.20", "proxied": false}),
        )
        .await;
    assert_eq!(v["record"]["content"], "203.0.113.20");
    let reqs = f.take();
    assert_eq!(
        lines(&reqs),
        [format!("PATCH /client/v4/zones/{ZONE}/dns_records/{id}")]
    );
    assert_eq!(
        reqs[0].json(),
        json!({"content": "203.0.113.20", "proxied": false})
    );
    let e = f
        .call(
            "update_dns_record",
            json!({"zone_id": ZONE, "record_id": id}),
        )
        .await;
    assert!(
        matches!(e, Err(CallError::InvalidArguments { .. })),
        "{e:?}"
    );

    let v = f
        .ok(
            "delete_dns_record",
            json!({"zone_id": ZONE, "record_id": id}),
        )
        .await;
    assert_eq!(v["deleted_id"], id);
    assert_eq!(
        lines(&f.take()),
        [format!("DELETE /client/v4/zones/{ZONE}/dns_records/{id}")]
    );
    let e = f
        .call(
            "delete_dns_record",
            json!({"zone_id": ZONE, "record_id": id}),
        )
        .await;
    assert!(
        matches!(
            &e,
            Err(CallError::Upstream {
                status: Some(404),
                code: Some(81044),
                ..
            })
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn cache_is_purged_by_everything_files_tags_or_hosts() {
    let f = fixture().await;
    let cases = [
        (
            json!({"everything": true}),
            json!({"purge_everything": true}),
            "everything",
        ),
        (
            json!({"files": ["https://example.com/a.css"]}),
            json!({"files": ["https://example.com/a.css"]}),
            "files",
        ),
        (
            json!({"tags": ["blog", "css"]}),
            json!({"tags": ["blog", "css"]}),
            "tags",
        ),
        (
            json!({"hosts": ["www.example.com"]}),
            json!({"hosts": ["www.example.com"]}),
            "hosts",
        ),
    ];
    for (mut args, body, what) in cases {
        args["zone_id"] = json!(ZONE);
        let v = f.ok("purge_cache", args).await;
        assert_eq!(v["purged"], what);
        let reqs = f.take();
        assert_eq!(
            lines(&reqs),
            [format!("POST /client/v4/zones/{ZONE}/purge_cache")]
        );
        assert_eq!(reqs[0].json(), body);
    }
    for bad in [
        json!({"zone_id": ZONE}),
        json!({"zone_id": ZONE, "everything": true, "tags": ["x"]}),
        json!({"zone_id": ZONE, "files": []}),
    ] {
        let e = f.call("purge_cache", bad.clone()).await;
        assert!(
            matches!(e, Err(CallError::InvalidArguments { .. })),
            "{bad}: {e:?}"
        );
    }
    assert!(f.take().is_empty());
}

#[tokio::test]
async fn waf_custom_rules_create_the_entrypoint_once_then_append() {
    let f = fixture().await;
    let entry =
        format!("/client/v4/zones/{ZONE}/rulesets/phases/http_request_firewall_custom/entrypoint");
    let v = f
        .ok(
            "create_waf_rule",
            json!({"zone_id": ZONE, "expression": "(ip.src.country eq \"XX\")", "action": "block", "description": "no XX"}),
        )
        .await;
    assert_eq!(v["created_ruleset"], true);
    assert_eq!(v["rule"]["action"], "block");
    let reqs = f.take();
    assert_eq!(
        lines(&reqs),
        [format!("GET {entry}"), format!("PUT {entry}")]
    );
    assert_eq!(
        reqs[1].json(),
        json!({"rules": [{"expression": "(ip.src.country eq \"XX\")", "action": "block", "description": "no XX", "enabled": true}]})
    );

    let v = f
        .ok(
            "create_waf_rule",
            json!({"domain": "example.com", "expression": "(http.request.uri.path contains \"/wp-admin\")", "action": "managed_challenge", "description": "wp", "enabled": false}),
        )
        .await;
    assert_eq!(v["created_ruleset"], false);
    assert_eq!(v["rule"]["description"], "wp");
    assert_eq!(v["rule"]["id"], format!("rule{:028}", 1));
    let reqs = f.take();
    assert_eq!(
        lines(&reqs),
        [
            "GET /client/v4/zones?name=example.com".to_string(),
            format!("GET {entry}"),
            format!("POST /client/v4/zones/{ZONE}/rulesets/rs0000000000000000000000000000ab/rules"),
        ]
    );
    assert_eq!(reqs[2].json()["enabled"], false);

    let e = f
        .call(
            "create_waf_rule",
            json!({"zone_id": ZONE, "expression": "true", "action": "nuke", "description": ""}),
        )
        .await;
    assert!(
        matches!(e, Err(CallError::InvalidArguments { .. })),
        "{e:?}"
    );
}

#[tokio::test]
async fn origin_certificates_ssl_mode_and_tunnels() {
    let f = fixture().await;
    let csr = "-----BEGIN CERTIFICATE REQUEST-----\nMIIC...\n-----END CERTIFICATE REQUEST-----\n";
    let v = f
        .ok(
            "create_origin_certificate",
            json!({"hostnames": ["example.com", "*.example.com"], "csr": csr}),
        )
        .await;
    assert!(
        v["certificate"]
            .as_str()
            .is_some_and(|c| c.starts_with("-----BEGIN CERTIFICATE-----"))
    );
    let reqs = f.take();
    assert_eq!(lines(&reqs), ["POST /client/v4/certificates"]);
    assert_eq!(
        reqs[0].json(),
        json!({"csr": csr, "hostnames": ["example.com", "*.example.com"], "request_type": "origin-rsa", "requested_validity": 5475})
    );
    let e = f
        .call(
            "create_origin_certificate",
            json!({"hostnames": ["example.com"], "csr": "nope"}),
        )
        .await;
    assert!(
        matches!(e, Err(CallError::InvalidArguments { .. })),
        "{e:?}"
    );

    let v = f
        .ok("set_ssl_mode", json!({"zone_id": ZONE, "mode": "strict"}))
        .await;
    assert_eq!(v["mode"], "strict");
    let reqs = f.take();
    assert_eq!(
        lines(&reqs),
        [format!("PATCH /client/v4/zones/{ZONE}/settings/ssl")]
    );
    assert_eq!(reqs[0].json(), json!({"value": "strict"}));
    let e = f
        .call("set_ssl_mode", json!({"zone_id": ZONE, "mode": "paranoid"}))
        .await;
    assert!(
        matches!(e, Err(CallError::InvalidArguments { .. })),
        "{e:?}"
    );

    // The account comes from the `account_id` setting.
    let v = f.ok("create_tunnel", json!({"name": "web-1"})).await;
    assert_eq!(
        (v["name"].clone(), v["status"].clone()),
        (json!("web-1"), json!("inactive"))
    );
    let reqs = f.take();
    assert_eq!(
        lines(&reqs),
        [format!("POST /client/v4/accounts/{ACCOUNT}/cfd_tunnel")]
    );
    assert_eq!(
        reqs[0].json(),
        json!({"name": "web-1", "config_src": "cloudflare"})
    );
    let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0";
    f.ok(
        "create_tunnel",
        json!({"name": "web-2", "tunnel_secret": secret, "config_src": "local"}),
    )
    .await;
    assert_eq!(f.take()[0].json()["tunnel_secret"], secret);
}

#[tokio::test]
async fn complete_hosting_is_reported_step_by_step_and_idempotent() {
    let f = fixture().await;
    let args = json!({"domain": "example.com", "server_ip": "198.51.100.7"});
    let v = f.ok("setup_complete_hosting", args.clone()).await;
    let actions = |v: &Value| -> Vec<(String, String)> {
        v["steps"]
            .as_array()
            .map(|s| {
                s.iter()
                    .map(|s| {
                        (
                            s["step"].as_str().unwrap_or("").into(),
                            s["action"].as_str().unwrap_or("").into(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        actions(&v),
        [
            pair("zone", "found"),
            pair("a_record", "created"),
            pair("www_record", "created"),
            pair("ssl_mode", "updated")
        ]
    );
    let reqs = f.take();
    let posts: Vec<Value> = reqs
        .iter()
        .filter(|r| r.method == "POST")
        .map(Recorded::json)
        .collect();
    assert_eq!(
        posts,
        [
            json!({"type": "A", "name": "example.com", "content": "198.51.100.7", "ttl": 1, "proxied": true}),
            json!({"type": "CNAME", "name": "www.example.com", "content": "example.com", "ttl": 1, "proxied": true}),
        ]
    );
    assert_eq!(
        reqs.last().map(Recorded::json),
        Some(json!({"value": "full"}))
    );

    // Again: nothing changes, nothing is written.
    let v = f.ok("setup_complete_hosting", args).await;
    assert_eq!(
        actions(&v),
        [
            pair("zone", "found"),
            pair("a_record", "unchanged"),
            pair("www_record", "unchanged"),
            pair("ssl_mode", "unchanged")
        ]
    );
    assert!(f.take().iter().all(|r| r.method == "GET"));

    // A new server IP updates the A record in place: still exactly one A record.
    let v = f
        .ok("setup_complete_hosting", json!({"domain": "example.com", "server_ip": "198.51.100.8", "add_www": false, "ssl_mode": "strict"}))
        .await;
    assert_eq!(
        actions(&v),
        [
            pair("zone", "found"),
            pair("a_record", "updated"),
            pair("ssl_mode", "updated")
        ]
    );
    let a_records: Vec<Value> =
        f.cf.lock()
            .map(|cf| {
                cf.records
                    .iter()
                    .filter(|r| r["type"] == "A")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
    assert_eq!(a_records.len(), 1);
    assert_eq!(a_records[0]["content"], "198.51.100.8");
    let patch = f
        .take()
        .into_iter()
        .find(|r| r.method == "PATCH" && r.path.contains("dns_records"));
    assert_eq!(
        patch.map(|r| r.json()),
        Some(
            json!({"type": "A", "name": "example.com", "content": "198.51.100.8", "ttl": 1, "proxied": true})
        )
    );

    // A failing step names the steps done before it.
    let e = f
        .call(
            "setup_complete_hosting",
            json!({"domain": "example.org", "server_ip": "198.51.100.8"}),
        )
        .await;
    assert!(
        matches!(&e, Err(CallError::NotFound { message }) if message.contains("step `zone`")),
        "{e:?}"
    );
    let e = f
        .call(
            "setup_complete_hosting",
            json!({"domain": "example.com", "server_ip": "::1"}),
        )
        .await;
    assert!(
        matches!(e, Err(CallError::InvalidArguments { .. })),
        "{e:?}"
    );
}

/// `setup_complete_hosting` reports one unit of progress per step (zone, A record, www record, SSL mode) to a caller
/// that asked for progress (as the MCP gateway does for a client's progress token), saying which step is done.
#[tokio::test]
async fn complete_hosting_reports_progress_per_step() {
    let f = fixture().await;
    let (sink, mut got) = tokio::sync::mpsc::channel(64);
    let args = json!({"domain": "example.com", "server_ip": "198.51.100.7"});
    let v = plughost::runtime::with_progress(sink, f.ok("setup_complete_hosting", args)).await;
    assert_eq!(v["steps"].as_array().map(Vec::len), Some(4), "{v}");
    let mut reports = Vec::new();
    while let Ok(p) = got.try_recv() {
        reports.push((p.done, p.total, p.message.unwrap_or_default()));
    }
    // Reports closer than 50 ms apart are dropped by the host, except the final one: the first and the last always
    // arrive, the rest in order.
    assert_eq!(
        reports.first(),
        Some(&(1, Some(4), "zone done".to_string())),
        "{reports:?}"
    );
    assert_eq!(
        reports.last(),
        Some(&(4, Some(4), "ssl_mode done".to_string())),
        "{reports:?}"
    );
    let steps = [
        "zone done",
        "a_record done",
        "www_record done",
        "ssl_mode done",
    ];
    for (done, total, message) in &reports {
        assert_eq!(*total, Some(4), "{reports:?}");
        assert_eq!(
            steps.get((*done as usize).wrapping_sub(1)),
            Some(&message.as_str()),
            "{reports:?}"
        );
    }
    assert!(reports.windows(2).all(|w| w[0].0 < w[1].0), "{reports:?}");

    // Without a caller asking, the same call reports nowhere and still succeeds.
    let v = f
        .ok(
            "setup_complete_hosting",
            json!({"domain": "example.com", "server_ip": "198.51.100.7", "add_www": false}),
        )
        .await;
    assert_eq!(v["steps"].as_array().map(Vec::len), Some(3), "{v}");
}

#[tokio::test]
async fn nginx_config_is_pure_text() {
    let f = fixture().await;
    let v = f
        .ok(
            "render_nginx_config",
            json!({"domain": "example.com", "upstream": "http://127.0.0.1:3000"}),
        )
        .await;
    let text = v.as_str().unwrap_or_default();
    for needle in [
        "upstream example_com_upstream {",
        "server 127.0.0.1:3000;",
        "server_name example.com www.example.com;",
        "return 301 https://$host$request_uri;",
        "listen 443 ssl http2;",
        "ssl_certificate     /etc/ssl/cloudflare/example.com.pem;",
        "ssl_certificate_key /etc/ssl/cloudflare/example.com.key;",
        "proxy_pass http://example_com_upstream;",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in:\n{text}");
    }
    let v = f
        .ok(
            "render_nginx_config",
            json!({"domain": "api.example.com", "upstream": "10.0.0.5:8443", "www": false, "certificate_path": "/srv/c.pem", "key_path": "/srv/k.pem"}),
        )
        .await;
    let text = v.as_str().unwrap_or_default();
    assert!(
        text.contains("server_name api.example.com;")
            && text.contains("/srv/c.pem;")
            && text.contains("/srv/k.pem;"),
        "{text}"
    );
    // Injection attempts are refused.
    let e = f
        .call(
            "render_nginx_config",
            json!({"domain": "example.com", "upstream": "127.0.0.1:3000; } server { listen 81"}),
        )
        .await;
    assert!(
        matches!(e, Err(CallError::InvalidArguments { .. })),
        "{e:?}"
    );
    assert!(f.take().is_empty(), "rendering sends nothing");
}

#[tokio::test]
async fn bad_token_and_rate_limit_are_typed_errors_and_the_token_stays_secret() {
    let logs = logs::capture();
    let f = fixture().await;

    // 429 with Retry-After.
    if let Ok(mut cf) = f.cf.lock() {
        cf.rate_limit = 1;
    }
    let e = f.call("list_zones", json!({})).await;
    match e {
        Err(CallError::Upstream {
            status,
            code,
            retry_after_seconds,
            message,
        }) => {
            assert_eq!(
                (status, code, retry_after_seconds),
                (Some(429), Some(971), Some(7))
            );
            assert!(message.contains("retry after 7 s"), "{message}");
        }
        other => panic!("expected a rate-limit error, got {other:?}"),
    }
    // The next call goes through.
    f.ok("list_zones", json!({})).await;

    // A wrong token: 403 with Cloudflare's code.
    let wrong = load(&f.host, &f.server, "wrong-token-000000").await;
    let r = f.host.call(&wrong, "list_zones", "{}").await;
    match &r.result {
        Err(CallError::Upstream {
            status,
            code,
            message,
            ..
        }) => {
            assert_eq!((*status, *code), (Some(403), Some(10000)));
            assert!(message.contains("Authentication error"), "{message}");
            assert!(!message.contains("wrong-token-000000"), "{message}");
        }
        other => panic!("expected a 403, got {other:?}"),
    }

    // No token configured at all.
    let grants = Grants::parse([format!("http:{}", f.server.origin()), "config".to_string()])
        .unwrap_or_else(|e| panic!("{e}"));
    let none = f
        .host
        .load(&fx::bytes(fx::CLOUDFLARE), |_| PluginSettings {
            grants,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .0;
    let r = f.host.call(&none, "list_zones", "{}").await;
    assert!(
        matches!(&r.result, Err(CallError::Unavailable { message }) if message.contains("api_token --secret")),
        "{:?}",
        r.result
    );

    let text = logs.text();
    assert!(
        text.contains("plugin=\"cloudflare\"") || text.contains("cloudflare"),
        "requests are logged: {text}"
    );
    assert!(!text.contains(TOKEN), "the token reached the log");
}

#[tokio::test]
async fn the_default_base_url_is_the_real_api() {
    // Without `base_url`, requests go to api.cloudflare.com: with only the loopback origin granted, the host refuses
    // that origin by name (no network needed to see where the plugin was going).
    let f = fixture().await;
    let grants = Grants::parse([format!("http:{}", f.server.origin()), "config".to_string()])
        .unwrap_or_else(|e| panic!("{e}"));
    let p = f
        .host
        .load(&fx::bytes(fx::CLOUDFLARE), |_| PluginSettings {
            grants,
            secrets: BTreeMap::from([("api_token".to_string(), TOKEN.to_string())]),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .0;
    let r = f.host.call(&p, "list_zones", "{}").await;
    assert!(
        matches!(&r.result, Err(CallError::Denied { message }) if message.contains("https://api.cloudflare.com")),
        "{:?}",
        r.result
    );
    assert!(f.server.requests().is_empty());
}

/// `n` A records named `h<i>.example.com`.
fn many_records(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"id": format!("rec{i:029}"), "zone_id": ZONE, "zone_name": "example.com", "type": "A",
                   "name": format!("h{i}.example.com"), "content": "203.0.113.7", "ttl": 1, "proxied": false,
                   "proxiable": true, "created_on": "2026-11-23T08:00:00Z"})
        })
        .collect()
}

#[tokio::test]
async fn all_pages_lists_a_zone_of_thousands_of_records_in_a_few_requests() {
    let f = fixture().await;
    if let Ok(mut cf) = f.cf.lock() {
        cf.records = many_records(7000);
    }
    let v = f
        .ok(
            "list_dns_records",
            json!({"zone_id": ZONE, "all_pages": true}),
        )
        .await;
    assert_eq!(v["records"].as_array().map(Vec::len), Some(7000));
    assert_eq!(v["complete"], true, "{}", v["note"]);
    let reqs = f.take();
    assert_eq!(reqs.len(), 2, "{:?}", lines(&reqs));
    assert_eq!(reqs[0].query_param("per_page").as_deref(), Some("5000"));
}

#[tokio::test]
async fn a_listing_ended_by_the_request_budget_says_so_and_where_to_go_on() {
    let f = fixture().await;
    if let Ok(mut cf) = f.cf.lock() {
        cf.records = many_records(1000);
        cf.max_records_per_page = 10;
    }
    let v = f
        .ok(
            "list_dns_records",
            json!({"zone_id": ZONE, "all_pages": true}),
        )
        .await;
    assert_eq!(v["records"].as_array().map(Vec::len), Some(600));
    assert_eq!(v["complete"], false);
    let note = v["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("60 of 100 pages")
            && note.contains("600 of 1000 records")
            && note.contains("`page` from 61"),
        "{note}"
    );
    // The next pages are there, as the note says.
    let v = f
        .ok(
            "list_dns_records",
            json!({"zone_id": ZONE, "page": 61, "per_page": 10}),
        )
        .await;
    assert_eq!(v["records"][0]["name"], "h600.example.com");
}

#[tokio::test]
async fn a_rate_limit_without_an_envelope_says_so_and_for_how_long() {
    let f = fixture().await;
    for (after, expected) in [
        (Some(30), "retry after 30 s"),
        (None, "did not say for how long"),
    ] {
        if let Ok(mut cf) = f.cf.lock() {
            cf.bare_rate_limit = Some(after);
        }
        match f.call("list_zones", json!({})).await {
            Err(CallError::Upstream {
                status,
                retry_after_seconds,
                message,
                ..
            }) => {
                assert_eq!((status, retry_after_seconds), (Some(429), after));
                assert!(message.contains("rate-limited"), "{message}");
                assert!(message.contains(expected), "{message}");
                assert!(message.contains("an empty body"), "{message}");
            }
            other => panic!("expected a rate-limit error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn cache_tags_and_hosts_are_purged_together() {
    let f = fixture().await;
    let v = f
        .ok(
            "purge_cache",
            json!({"zone_id": ZONE, "tags": ["blog"], "hosts": ["www.example.com"]}),
        )
        .await;
    assert_eq!(v["purged"], "tags,hosts");
    assert_eq!(v["count"], 2);
    let reqs = f.take();
    assert_eq!(
        reqs.iter().map(Recorded::json).collect::<Vec<_>>(),
        [json!({"tags": ["blog"], "hosts": ["www.example.com"]})]
    );
    // Files still go alone, as Cloudflare wants.
    let e = f
        .call(
            "purge_cache",
            json!({"zone_id": ZONE, "files": ["https://example.com/a"], "hosts": ["example.com"]}),
        )
        .await;
    assert!(
        matches!(e, Err(CallError::InvalidArguments { .. })),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_nginx_config_passes_nginx_t_on_the_nginx_distributions_ship() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/nginx.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nginx = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    let (cert, key) = (d.join("site.pem"), d.join("site.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .args(["-days", "1", "-subj", "/CN=example.com", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    let f = fixture().await;
    let site = f
        .ok(
            "render_nginx_config",
            json!({"domain": "example.com", "upstream": "127.0.0.1:3000",
                   "certificate_path": cert.display().to_string(), "key_path": key.display().to_string()}),
        )
        .await;
    let site = site.as_str().unwrap_or_default();
    std::fs::write(d.join("site.conf"), site).unwrap_or_else(|e| panic!("{e}"));
    // The rendered file is a site config (an `http` block's include, as in sites-enabled/): wrap it in a main
    // config whose paths all stay in the temp dir.
    let p = d.display();
    let main = format!(
        "pid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{}}\nhttp {{\n    access_log off;\n    \
         client_body_temp_path {p}/body;\n    proxy_temp_path {p}/proxy;\n    fastcgi_temp_path {p}/fastcgi;\n    \
         uwsgi_temp_path {p}/uwsgi;\n    scgi_temp_path {p}/scgi;\n    include {p}/site.conf;\n}}\n"
    );
    std::fs::write(d.join("nginx.conf"), main).unwrap_or_else(|e| panic!("{e}"));
    let t = std::process::Command::new(&nginx)
        .arg("-t")
        .arg("-p")
        .arg(d)
        .arg("-e")
        .arg(d.join("error.log"))
        .arg("-c")
        .arg(d.join("nginx.conf"))
        .output()
        .unwrap_or_else(|e| panic!("{nginx}: {e}"));
    let said = String::from_utf8_lossy(&t.stderr);
    assert!(
        t.status.success(),
        "nginx -t refused the config:\n{said}\n{site}"
    );
    assert!(said.contains("test is successful"), "{said}");
}
