//! The Cloudflare plugin: zones, DNS records, cache purge, WAF custom rules, Origin CA certificates, SSL mode,
//! tunnels, a one-shot hosting setup and an nginx config renderer, over the Cloudflare v4 API.
//!
//! It reaches the API only through the `http` capability (grant `http:https://api.cloudflare.com`) and reads its
//! settings through `config`: `base_url` (default: the real API) and `account_id` (for tunnels). The API token is
//! the secret `api_token`; the host inserts it into the `Authorization` header, so the plugin never holds it.

use plughost_guest::http::{self, Header, Method, Request};
use plughost_guest::{
    Deserialize, Json, JsonSchema, Plugin, Serialize, Tool, ToolError, config, export_plugin,
};
use serde_json::{Value, json};

/// The real Cloudflare API; `base_url` in the plugin's config overrides it (tests point it at a loopback server).
const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";
/// The secret holding the API token.
const TOKEN_KEY: &str = "api_token";

// ---- the API client --------------------------------------------------------------------------------------------

/// Pagination of a list result, as Cloudflare reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
struct ResultInfo {
    #[serde(default)]
    page: u32,
    #[serde(default)]
    per_page: u32,
    #[serde(default)]
    count: u32,
    #[serde(default)]
    total_count: u32,
    #[serde(default)]
    total_pages: u32,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<ApiError>,
    #[serde(default)]
    result: Value,
    result_info: Option<ResultInfo>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// A successful answer.
struct Answer {
    result: Value,
    result_info: Option<ResultInfo>,
}

struct Api {
    base: String,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

impl Api {
    fn new() -> Result<Api, ToolError> {
        if !config::has_secret(TOKEN_KEY) {
            return Err(ToolError::Unavailable(
                "no Cloudflare API token is configured; set one with `plughost config cloudflare set api_token --secret`"
                    .into(),
            ));
        }
        let base = config::get("base_url").unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
        })
    }

    fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Answer, ToolError> {
        let mut headers = vec![
            Header::secret("authorization", "Bearer ", TOKEN_KEY),
            Header::text("accept", "application/json"),
        ];
        if body.is_some() {
            headers.push(Header::text("content-type", "application/json"));
        }
        let resp = http::send(&Request {
            method,
            url: format!("{}{path}", self.base),
            headers,
            body: body.map(|b| b.to_string().into_bytes()),
            timeout_ms: None,
        })?;
        let retry_after = header(&resp.headers, "retry-after").and_then(|v| v.trim().parse().ok());
        let status = resp.status;
        match serde_json::from_slice::<Envelope>(&resp.body) {
            Ok(env) if (200..300).contains(&status) && env.success => Ok(Answer {
                result: env.result,
                result_info: env.result_info,
            }),
            Ok(env) => Err(upstream_error(status, &env.errors, retry_after)),
            Err(_) => Err(ToolError::Upstream {
                status: Some(status),
                code: None,
                message: without_envelope(status, &resp.body, retry_after),
                retry_after_seconds: retry_after,
            }),
        }
    }

    fn get(&self, path: &str) -> Result<Answer, ToolError> {
        self.send(Method::Get, path, None)
    }
    fn post(&self, path: &str, body: &Value) -> Result<Answer, ToolError> {
        self.send(Method::Post, path, Some(body))
    }
    fn put(&self, path: &str, body: &Value) -> Result<Answer, ToolError> {
        self.send(Method::Put, path, Some(body))
    }
    fn patch(&self, path: &str, body: &Value) -> Result<Answer, ToolError> {
        self.send(Method::Patch, path, Some(body))
    }
    fn delete(&self, path: &str) -> Result<Answer, ToolError> {
        self.send(Method::Delete, path, None)
    }
}

/// The message for an answer that is not Cloudflare's JSON envelope (a proxy's page, an empty body): what the status
/// means, how long to wait for a rate limit, and what the body said, if anything.
fn without_envelope(status: u16, body: &[u8], retry_after: Option<u32>) -> String {
    let said = match snippet(body) {
        s if s.is_empty() => "an empty body".to_string(),
        s => format!("`{s}`"),
    };
    match status {
        429 => format!(
            "Cloudflare rate-limited this request (HTTP 429); {} (the answer had no JSON envelope, only {said})",
            retry_after.map_or_else(
                || "it did not say for how long: wait before retrying".to_string(),
                |s| format!("retry after {s} s")
            )
        ),
        _ => format!("Cloudflare answered HTTP {status} without its JSON envelope, with {said}"),
    }
}

fn upstream_error(status: u16, errors: &[ApiError], retry_after: Option<u32>) -> ToolError {
    let listed = errors
        .iter()
        .map(|e| format!("{} ({})", e.message, e.code))
        .collect::<Vec<_>>()
        .join("; ");
    let detail = if listed.is_empty() {
        format!("HTTP {status}")
    } else {
        listed
    };
    let message = match status {
        401 | 403 => format!(
            "Cloudflare refused the API token (HTTP {status}): {detail}. Check the token and its permissions"
        ),
        429 => format!(
            "Cloudflare rate limit (HTTP 429): {detail}{}",
            retry_after
                .map(|s| format!("; retry after {s} s"))
                .unwrap_or_default()
        ),
        _ => format!("Cloudflare error (HTTP {status}): {detail}"),
    };
    ToolError::Upstream {
        status: Some(status),
        code: errors.first().map(|e| e.code),
        message,
        retry_after_seconds: retry_after,
    }
}

fn is_status(e: &ToolError, status: u16) -> bool {
    matches!(e, ToolError::Upstream { status: Some(s), .. } if *s == status)
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?a=1&b=2` from the pairs that have a value (empty when none do).
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", enc(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// An identifier that goes into a URL path: Cloudflare ids are hex, tags are short; nothing that could change the
/// path is accepted.
fn ident<'a>(what: &str, s: &'a str) -> Result<&'a str, ToolError> {
    if !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(s)
    } else {
        Err(ToolError::InvalidArguments(format!(
            "{what} `{s}` is not a Cloudflare identifier"
        )))
    }
}

/// A domain name, lower-cased, without a trailing dot.
fn domain_name(what: &str, s: &str) -> Result<String, ToolError> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = d.contains('.')
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*')
        });
    if ok {
        Ok(d)
    } else {
        Err(ToolError::InvalidArguments(format!(
            "{what} `{s}` is not a domain name"
        )))
    }
}

// ---- zones -----------------------------------------------------------------------------------------------------

/// A zone.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct Zone {
    id: String,
    name: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    paused: Option<bool>,
    #[serde(default)]
    name_servers: Vec<String>,
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> Result<T, ToolError> {
    serde_json::from_value(v)
        .map_err(|e| ToolError::Failed(format!("unexpected {what} from Cloudflare: {e}")))
}

/// The zone a domain belongs to: the domain itself, else each parent in turn (`a.b.example.com` → `b.example.com`
/// → `example.com`).
fn find_zone(api: &Api, domain: &str) -> Result<Zone, ToolError> {
    let domain = domain_name("domain", domain)?;
    let labels: Vec<&str> = domain.split('.').collect();
    for i in 0..labels.len() - 1 {
        let candidate = labels[i..].join(".");
        let zones: Vec<Zone> = parse(
            "zones",
            api.get(&format!(
                "/zones{}",
                query(&[("name", Some(candidate.clone()))])
            ))?
            .result,
        )?;
        if let Some(z) = zones.into_iter().find(|z| z.name == candidate) {
            return Ok(z);
        }
    }
    Err(ToolError::NotFound(format!(
        "no zone in this Cloudflare account contains `{domain}`"
    )))
}

fn zone_of(
    api: &Api,
    zone_id: &Option<String>,
    domain: &Option<String>,
) -> Result<String, ToolError> {
    match (zone_id, domain) {
        (Some(z), _) => Ok(ident("zone_id", z)?.to_string()),
        (None, Some(d)) => Ok(find_zone(api, d)?.id),
        (None, None) => Err(ToolError::InvalidArguments(
            "give `zone_id`, or `domain` to look the zone up".into(),
        )),
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListZonesArgs {
    /// Only the zone with this exact name, e.g. `example.com`.
    name: Option<String>,
    /// Only zones in this state, e.g. `active` or `pending`.
    status: Option<String>,
    /// Page number, from 1.
    page: Option<u32>,
    /// Zones per page (5–50).
    per_page: Option<u32>,
}

#[derive(Serialize, JsonSchema)]
struct Zones {
    zones: Vec<Zone>,
    result_info: Option<ResultInfo>,
}

fn list_zones(a: ListZonesArgs) -> Result<Json<Zones>, ToolError> {
    let api = Api::new()?;
    let q = query(&[
        ("name", a.name),
        ("status", a.status),
        ("page", a.page.map(|p| p.to_string())),
        ("per_page", a.per_page.map(|p| p.to_string())),
    ]);
    let ans = api.get(&format!("/zones{q}"))?;
    Ok(Json(Zones {
        zones: parse("zones", ans.result)?,
        result_info: ans.result_info,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DomainArgs {
    /// A domain or host name, e.g. `www.example.com`.
    domain: String,
}

#[derive(Serialize, JsonSchema)]
struct ResolvedZone {
    domain: String,
    zone: Zone,
}

fn resolve_zone(a: DomainArgs) -> Result<Json<ResolvedZone>, ToolError> {
    let api = Api::new()?;
    let zone = find_zone(&api, &a.domain)?;
    Ok(Json(ResolvedZone {
        domain: domain_name("domain", &a.domain)?,
        zone,
    }))
}

// ---- DNS records -----------------------------------------------------------------------------------------------

/// A DNS record.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
struct DnsRecord {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    name: String,
    content: String,
    /// Seconds; 1 means automatic.
    ttl: u32,
    #[serde(default)]
    proxied: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priority: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

const RECORD_TYPES: [&str; 12] = [
    "A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "CAA", "PTR", "HTTPS", "SVCB", "DS",
];

fn record_type(t: &str) -> Result<String, ToolError> {
    let t = t.trim().to_ascii_uppercase();
    if RECORD_TYPES.contains(&t.as_str()) {
        Ok(t)
    } else {
        Err(ToolError::InvalidArguments(format!(
            "record type `{t}` is not one of {}",
            RECORD_TYPES.join(", ")
        )))
    }
}

fn check_ttl(ttl: u32) -> Result<u32, ToolError> {
    if ttl == 1 || (30..=86400).contains(&ttl) {
        Ok(ttl)
    } else {
        Err(ToolError::InvalidArguments(format!(
            "ttl must be 1 (automatic) or 30–86400 seconds, got {ttl}"
        )))
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ListRecordsArgs {
    /// The zone id; or give `domain`.
    zone_id: Option<String>,
    /// A domain in the zone, to look the zone up.
    domain: Option<String>,
    /// Only records of this type, e.g. `A`.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Only records with this exact name, e.g. `www.example.com`.
    name: Option<String>,
    /// Only records with this content.
    content: Option<String>,
    /// Page number, from 1.
    page: Option<u32>,
    /// Records per page (Cloudflare's default 100; with `all_pages` the default is 5000).
    per_page: Option<u32>,
    /// Fetch every page (ignores `page`), at most 60 pages: `complete` says whether that was all of them.
    #[serde(default)]
    all_pages: bool,
}

/// Records per page when listing every page. Cloudflare allows far larger pages, but one answer must stay within
/// the http capability's 8 MiB response cap, and 5000 records (about 0.3–1.5 KiB each) do.
const ALL_PAGES_PER_PAGE: u32 = 5000;
/// Most pages one `all_pages` listing fetches: a call may make 64 requests, less the zone lookup and a spare.
const MAX_PAGES: u32 = 60;

#[derive(Serialize, JsonSchema)]
struct Records {
    zone_id: String,
    records: Vec<DnsRecord>,
    result_info: Option<ResultInfo>,
    /// With `all_pages`: whether every page was fetched. `false` means a budget ended the listing (see `note`).
    #[serde(skip_serializing_if = "Option::is_none")]
    complete: Option<bool>,
    /// Why a listing is incomplete, and how to fetch the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

fn fetch_records(
    api: &Api,
    zone: &str,
    kind: Option<String>,
    name: Option<String>,
    content: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
) -> Result<(Vec<DnsRecord>, Option<ResultInfo>), ToolError> {
    let q = query(&[
        ("type", kind),
        ("name", name),
        ("content", content),
        ("page", page.map(|p| p.to_string())),
        ("per_page", per_page.map(|p| p.to_string())),
    ]);
    let ans = api.get(&format!("/zones/{zone}/dns_records{q}"))?;
    Ok((parse("DNS records", ans.result)?, ans.result_info))
}

fn list_dns_records(a: ListRecordsArgs) -> Result<Json<Records>, ToolError> {
    let api = Api::new()?;
    let zone = zone_of(&api, &a.zone_id, &a.domain)?;
    let kind = a.kind.as_deref().map(record_type).transpose()?;
    if !a.all_pages {
        let (records, result_info) =
            fetch_records(&api, &zone, kind, a.name, a.content, a.page, a.per_page)?;
        return Ok(Json(Records {
            zone_id: zone,
            records,
            result_info,
            complete: None,
            note: None,
        }));
    }
    let per_page = a.per_page.unwrap_or(ALL_PAGES_PER_PAGE);
    let mut records = Vec::new();
    let mut page = 1;
    let mut last_info;
    let mut note = None;
    loop {
        let (mut batch, info) = fetch_records(
            &api,
            &zone,
            kind.clone(),
            a.name.clone(),
            a.content.clone(),
            Some(page),
            Some(per_page),
        )?;
        let empty = batch.is_empty();
        records.append(&mut batch);
        last_info = info;
        let total_pages = last_info.as_ref().map_or(1, |i| i.total_pages);
        if empty || page >= total_pages {
            break;
        }
        if page >= MAX_PAGES {
            let total = last_info.as_ref().map_or(0, |i| i.total_count);
            note = Some(format!(
                "incomplete: the listing stopped after {page} of {total_pages} pages ({} of {total} records), \
                 the most one call fetches (a call may make 64 requests); fetch the rest with `page` from {} \
                 and `per_page` {per_page}, or narrow the listing with `type`, `name` or `content`",
                records.len(),
                page + 1
            ));
            break;
        }
        page += 1;
    }
    let count = records.len() as u32;
    Ok(Json(Records {
        zone_id: zone,
        records,
        result_info: last_info.map(|i| ResultInfo {
            page: 1,
            count,
            total_pages: 1,
            ..i
        }),
        complete: Some(note.is_none()),
        note,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateRecordArgs {
    /// The zone id; or give `domain`.
    zone_id: Option<String>,
    /// A domain in the zone, to look the zone up.
    domain: Option<String>,
    /// Record type, e.g. `A`, `AAAA`, `CNAME`, `TXT`, `MX`.
    #[serde(rename = "type")]
    kind: String,
    /// Full record name, e.g. `www.example.com` (`@` is not expanded).
    name: String,
    /// The record's value, e.g. an IP address or a target host name.
    content: String,
    /// Seconds; 1 (the default) means automatic.
    #[serde(default = "auto_ttl")]
    ttl: u32,
    /// Proxy through Cloudflare (A, AAAA and CNAME only).
    proxied: Option<bool>,
    /// MX/SRV priority.
    priority: Option<u16>,
    /// A note stored with the record.
    comment: Option<String>,
}

fn auto_ttl() -> u32 {
    1
}

#[derive(Serialize, JsonSchema)]
struct RecordOut {
    zone_id: String,
    record: DnsRecord,
}

fn create_dns_record(a: CreateRecordArgs) -> Result<Json<RecordOut>, ToolError> {
    let api = Api::new()?;
    let zone = zone_of(&api, &a.zone_id, &a.domain)?;
    let mut body = json!({
        "type": record_type(&a.kind)?,
        "name": a.name,
        "content": a.content,
        "ttl": check_ttl(a.ttl)?,
    });
    if let Some(p) = a.proxied {
        body["proxied"] = json!(p);
    }
    if let Some(p) = a.priority {
        body["priority"] = json!(p);
    }
    if let Some(c) = a.comment {
        body["comment"] = json!(c);
    }
    let ans = api.post(&format!("/zones/{zone}/dns_records"), &body)?;
    Ok(Json(RecordOut {
        zone_id: zone,
        record: parse("DNS record", ans.result)?,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct UpdateRecordArgs {
    /// The zone id; or give `domain`.
    zone_id: Option<String>,
    /// A domain in the zone, to look the zone up.
    domain: Option<String>,
    /// The record to change.
    record_id: String,
    /// New type.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// New name.
    name: Option<String>,
    /// New content.
    content: Option<String>,
    /// New TTL; 1 means automatic.
    ttl: Option<u32>,
    /// Proxy through Cloudflare.
    proxied: Option<bool>,
    /// New priority.
    priority: Option<u16>,
    /// New comment.
    comment: Option<String>,
}

fn update_dns_record(a: UpdateRecordArgs) -> Result<Json<RecordOut>, ToolError> {
    let api = Api::new()?;
    let zone = zone_of(&api, &a.zone_id, &a.domain)?;
    let id = ident("record_id", &a.record_id)?;
    let mut body = serde_json::Map::new();
    if let Some(t) = &a.kind {
        body.insert("type".into(), json!(record_type(t)?));
    }
    if let Some(n) = a.name {
        body.insert("name".into(), json!(n));
    }
    if let Some(c) = a.content {
        body.insert("content".into(), json!(c));
    }
    if let Some(t) = a.ttl {
        body.insert("ttl".into(), json!(check_ttl(t)?));
    }
    if let Some(p) = a.proxied {
        body.insert("proxied".into(), json!(p));
    }
    if let Some(p) = a.priority {
        body.insert("priority".into(), json!(p));
    }
    if let Some(c) = a.comment {
        body.insert("comment".into(), json!(c));
    }
    if body.is_empty() {
        return Err(ToolError::InvalidArguments(
            "nothing to change: give at least one of type, name, content, ttl, proxied, priority, comment".into(),
        ));
    }
    let ans = api.patch(
        &format!("/zones/{zone}/dns_records/{id}"),
        &Value::Object(body),
    )?;
    Ok(Json(RecordOut {
        zone_id: zone,
        record: parse("DNS record", ans.result)?,
    }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DeleteRecordArgs {
    /// The zone id; or give `domain`.
    zone_id: Option<String>,
    /// A domain in the zone, to look the zone up.
    domain: Option<String>,
    /// The record to delete.
    record_id: String,
}

#[derive(Serialize, JsonSchema)]
struct Deleted {
    zone_id: String,
    deleted_id: String,
}

fn delete_dns_record(a: DeleteRecordArgs) -> Result<Json<Deleted>, ToolError> {
    let api = Api::new()?;
    let zone = zone_of(&api, &a.zone_id, &a.domain)?;
    let id = ident("record_id", &a.record_id)?;
    let ans = api.delete(&format!("/zones/{zone}/dns_records/{id}"))?;
    let deleted_id = ans.result["id"].as_str().unwrap_or(id).to_string();
    Ok(Json(Deleted {
        zone_id: zone,
        deleted_id,
    }))
}

// ---- cache -----------------------------------------------------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PurgeArgs {
    /// The zone id; or give `domain`.
    zone_id: Option<String>,
    /// A domain in the zone, to look the zone up.
    domain: Option<String>,
    /// Purge everything in the zone's cache.
    #[serde(default)]
    everything: bool,
    /// Purge these URLs.
    files: Option<Vec<String>>,
    /// Purge by Cache-Tag.
    tags: Option<Vec<String>>,
    /// Purge by host name.
    hosts: Option<Vec<String>>,
}

#[derive(Serialize, JsonSchema)]
struct Purged {
    zone_id: String,
    /// `everything`, `files`, `tags`, `hosts` or `tags,hosts`.
    purged: String,
    count: usize,
}

fn purge_cache(a: PurgeArgs) -> Result<Json<Purged>, ToolError> {
    let mut chosen = Vec::new();
    if a.everything {
        chosen.push(("everything", json!({"purge_everything": true}), 0));
    }
    for (what, list) in [("files", &a.files), ("tags", &a.tags), ("hosts", &a.hosts)] {
        if let Some(list) = list {
            if list.is_empty() || list.len() > 100 {
                return Err(ToolError::InvalidArguments(format!(
                    "`{what}` must list 1–100 entries"
                )));
            }
            chosen.push((what, json!({ what: list }), list.len()));
        }
    }
    // Cloudflare takes tags and hosts in one request; everything and files each go alone.
    let combinable = |w: &str| matches!(w, "tags" | "hosts");
    if chosen.len() > 1 && chosen.iter().all(|(w, _, _)| combinable(w)) {
        let mut body = serde_json::Map::new();
        let mut count = 0;
        for (_, b, n) in chosen.drain(..) {
            if let Value::Object(o) = b {
                body.extend(o);
            }
            count += n;
        }
        chosen.push(("tags,hosts", Value::Object(body), count));
    }
    if chosen.len() != 1 {
        return Err(ToolError::InvalidArguments(
            "give one of `everything: true`, `files`, or `tags` and/or `hosts`".into(),
        ));
    }
    let (what, body, count) = chosen.remove(0);
    let api = Api::new()?;
    let zone = zone_of(&api, &a.zone_id, &a.domain)?;
    api.post(&format!("/zones/{zone}/purge_cache"), &body)?;
    Ok(Json(Purged {
        zone_id: zone,
        purged: what.to_string(),
        count,
    }))
}

// ---- WAF custom rules ------------------------------------------------------------------------------------------

const WAF_PHASE: &str = "http_request_firewall_custom";
const WAF_ACTIONS: [&str; 6] = [
    "block",
    "challenge",
    "js_challenge",
    "managed_challenge",
    "log",
    "skip",
];

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WafRuleArgs {
    /// The zone id; or give `domain`.
    zone_id: Option<String>,
    /// A domain in the zone, to look the zone up.
    domain: Option<String>,
    /// A Rules language expression, e.g. `(ip.src.country eq "XX")`.
    expression: String,
    /// `block`, `challenge`, `js_challenge`, `managed_challenge`, `log` or `skip`.
    action: String,
    /// What the rule is for.
    description: String,
    /// Start enabled (default true).
    enabled: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct WafRule {
    #[serde(default)]
    id: String,
    expression: String,
    action: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Serialize, JsonSchema)]
struct WafOut {
    zone_id: String,
    ruleset_id: String,
    /// True when the zone had no custom-rules ruleset and this call created it.
    created_ruleset: bool,
    rule: WafRule,
}

fn create_waf_rule(a: WafRuleArgs) -> Result<Json<WafOut>, ToolError> {
    if !WAF_ACTIONS.contains(&a.action.as_str()) {
        return Err(ToolError::InvalidArguments(format!(
            "action `{}` is not one of {}",
            a.action,
            WAF_ACTIONS.join(", ")
        )));
    }
    if a.expression.trim().is_empty() {
        return Err(ToolError::InvalidArguments(
            "the expression is empty".into(),
        ));
    }
    let api = Api::new()?;
    let zone = zone_of(&api, &a.zone_id, &a.domain)?;
    let rule = json!({
        "expression": a.expression,
        "action": a.action,
        "description": a.description,
        "enabled": a.enabled.unwrap_or(true),
    });
    let entrypoint = format!("/zones/{zone}/rulesets/phases/{WAF_PHASE}/entrypoint");
    // Add to the phase's entry-point ruleset; create that ruleset (with this rule) if the zone has none yet.
    let (ruleset, created) = match api.get(&entrypoint) {
        Ok(existing) => {
            let id = existing.result["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let id = ident("ruleset id", &id)?.to_string();
            let ans = api.post(&format!("/zones/{zone}/rulesets/{id}/rules"), &rule)?;
            (ans.result, false)
        }
        Err(e) if is_status(&e, 404) => {
            let ans = api.put(&entrypoint, &json!({ "rules": [rule] }))?;
            (ans.result, true)
        }
        Err(e) => return Err(e),
    };
    let ruleset_id = ruleset["id"].as_str().unwrap_or_default().to_string();
    let rules: Vec<WafRule> = parse("ruleset rules", ruleset["rules"].clone())?;
    // Cloudflare appends the new rule at the end of the ruleset.
    let rule = rules
        .into_iter()
        .rev()
        .find(|r| r.expression == rule["expression"] && r.description == rule["description"])
        .ok_or_else(|| ToolError::Failed("the ruleset came back without the new rule".into()))?;
    Ok(Json(WafOut {
        zone_id: zone,
        ruleset_id,
        created_ruleset: created,
        rule,
    }))
}

// ---- SSL / certificates ----------------------------------------------------------------------------------------

const SSL_MODES: [&str; 4] = ["off", "flexible", "full", "strict"];

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SslModeArgs {
    /// The zone id; or give `domain`.
    zone_id: Option<String>,
    /// A domain in the zone, to look the zone up.
    domain: Option<String>,
    /// `off`, `flexible`, `full` or `strict` (Full (strict): the origin presents a valid certificate, e.g. an
    /// Origin CA one).
    mode: String,
}

#[derive(Serialize, JsonSchema)]
struct SslModeOut {
    zone_id: String,
    mode: String,
}

fn check_mode(mode: &str) -> Result<(), ToolError> {
    if SSL_MODES.contains(&mode) {
        Ok(())
    } else {
        Err(ToolError::InvalidArguments(format!(
            "SSL mode `{mode}` is not one of {}",
            SSL_MODES.join(", ")
        )))
    }
}

fn set_ssl_mode(a: SslModeArgs) -> Result<Json<SslModeOut>, ToolError> {
    check_mode(&a.mode)?;
    let api = Api::new()?;
    let zone = zone_of(&api, &a.zone_id, &a.domain)?;
    let ans = api.patch(
        &format!("/zones/{zone}/settings/ssl"),
        &json!({"value": a.mode}),
    )?;
    Ok(Json(SslModeOut {
        zone_id: zone,
        mode: ans.result["value"].as_str().unwrap_or(&a.mode).to_string(),
    }))
}

fn default_request_type() -> String {
    "origin-rsa".into()
}
fn default_validity() -> u32 {
    5475
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct OriginCertArgs {
    /// Host names the certificate covers, e.g. `["example.com", "*.example.com"]`.
    hostnames: Vec<String>,
    /// A PEM certificate signing request made with your private key (the key never leaves your server).
    csr: String,
    /// `origin-rsa` (default) or `origin-ecc`.
    #[serde(default = "default_request_type")]
    request_type: String,
    /// Days: 7, 30, 90, 365, 730, 1095 or 5475 (default).
    #[serde(default = "default_validity")]
    requested_validity: u32,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct OriginCert {
    id: String,
    certificate: String,
    #[serde(default)]
    hostnames: Vec<String>,
    #[serde(default)]
    expires_on: Option<String>,
    #[serde(default)]
    request_type: Option<String>,
}

fn create_origin_certificate(a: OriginCertArgs) -> Result<Json<OriginCert>, ToolError> {
    if a.hostnames.is_empty() {
        return Err(ToolError::InvalidArguments(
            "give at least one host name".into(),
        ));
    }
    for h in &a.hostnames {
        domain_name("hostname", h)?;
    }
    if !a.csr.contains("BEGIN CERTIFICATE REQUEST") {
        return Err(ToolError::InvalidArguments(
            "csr must be a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)"
                .into(),
        ));
    }
    if !["origin-rsa", "origin-ecc"].contains(&a.request_type.as_str()) {
        return Err(ToolError::InvalidArguments(format!(
            "request_type `{}` is not origin-rsa or origin-ecc",
            a.request_type
        )));
    }
    if ![7, 30, 90, 365, 730, 1095, 5475].contains(&a.requested_validity) {
        return Err(ToolError::InvalidArguments(format!(
            "requested_validity {} is not one of 7, 30, 90, 365, 730, 1095, 5475",
            a.requested_validity
        )));
    }
    let api = Api::new()?;
    let ans = api.post(
        "/certificates",
        &json!({
            "csr": a.csr,
            "hostnames": a.hostnames,
            "request_type": a.request_type,
            "requested_validity": a.requested_validity,
        }),
    )?;
    Ok(Json(parse("certificate", ans.result)?))
}

// ---- tunnels ---------------------------------------------------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TunnelArgs {
    /// The account; default: the `account_id` setting.
    account_id: Option<String>,
    /// A name for the tunnel.
    name: String,
    /// For a locally managed tunnel: a base64 secret of at least 32 bytes.
    tunnel_secret: Option<String>,
    /// `cloudflare` (managed in the dashboard/API, the default) or `local` (a config file on the server).
    config_src: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct TunnelOut {
    id: String,
    name: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    config_src: Option<String>,
}

fn create_tunnel(a: TunnelArgs) -> Result<Json<TunnelOut>, ToolError> {
    let account = match a.account_id.or_else(|| config::get("account_id")) {
        Some(a) => ident("account_id", &a)?.to_string(),
        None => {
            return Err(ToolError::InvalidArguments(
                "give `account_id`, or set it once: `plughost config cloudflare set account_id <id>`".into(),
            ));
        }
    };
    if a.name.trim().is_empty() {
        return Err(ToolError::InvalidArguments(
            "the tunnel needs a name".into(),
        ));
    }
    let config_src = a.config_src.unwrap_or_else(|| "cloudflare".into());
    if !["cloudflare", "local"].contains(&config_src.as_str()) {
        return Err(ToolError::InvalidArguments(format!(
            "config_src `{config_src}` is not cloudflare or local"
        )));
    }
    let mut body = json!({"name": a.name, "config_src": config_src});
    if let Some(s) = a.tunnel_secret {
        if s.len() < 44 {
            return Err(ToolError::InvalidArguments(
                "tunnel_secret must be base64 of at least 32 bytes".into(),
            ));
        }
        body["tunnel_secret"] = json!(s);
    }
    let api = Api::new()?;
    let ans = api.post(&format!("/accounts/{account}/cfd_tunnel"), &body)?;
    Ok(Json(parse("tunnel", ans.result)?))
}

// ---- complete hosting setup ------------------------------------------------------------------------------------

fn yes() -> bool {
    true
}
fn default_ssl_mode() -> String {
    "full".into()
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct HostingArgs {
    /// The site's domain, e.g. `example.com` (must be a zone, or inside one, in this account).
    domain: String,
    /// The origin server's public IPv4 address.
    server_ip: String,
    /// Also point `www.<domain>` at the domain with a CNAME (default true).
    #[serde(default = "yes")]
    add_www: bool,
    /// Proxy through Cloudflare (default true).
    #[serde(default = "yes")]
    proxied: bool,
    /// The zone's SSL mode: `off`, `flexible`, `full` (default) or `strict`.
    #[serde(default = "default_ssl_mode")]
    ssl_mode: String,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum StepAction {
    Found,
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Serialize, JsonSchema)]
struct Step {
    /// `zone`, `a_record`, `www_record` or `ssl_mode`.
    step: String,
    action: StepAction,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
}

#[derive(Serialize, JsonSchema)]
struct HostingOut {
    domain: String,
    zone_id: String,
    steps: Vec<Step>,
}

/// Makes sure one record `kind name → content` exists with these settings: updates the existing one (never a
/// duplicate), or creates it.
fn ensure_record(
    api: &Api,
    zone: &str,
    kind: &str,
    name: &str,
    content: &str,
    proxied: bool,
) -> Result<(StepAction, String, String), ToolError> {
    let (existing, _) = fetch_records(
        api,
        zone,
        Some(kind.to_string()),
        Some(name.to_string()),
        None,
        None,
        None,
    )?;
    let wanted =
        json!({"type": kind, "name": name, "content": content, "ttl": 1, "proxied": proxied});
    match existing.into_iter().next() {
        Some(r)
            if r.content.eq_ignore_ascii_case(content)
                && r.proxied == Some(proxied)
                && (proxied || r.ttl == 1) =>
        {
            Ok((
                StepAction::Unchanged,
                r.id,
                format!("{kind} {name} → {content} already in place"),
            ))
        }
        Some(r) => {
            let ans = api.patch(
                &format!("/zones/{zone}/dns_records/{}", ident("record id", &r.id)?),
                &wanted,
            )?;
            let r2: DnsRecord = parse("DNS record", ans.result)?;
            Ok((
                StepAction::Updated,
                r2.id,
                format!("{kind} {name} changed from {} to {content}", r.content),
            ))
        }
        None => {
            let ans = api.post(&format!("/zones/{zone}/dns_records"), &wanted)?;
            let r: DnsRecord = parse("DNS record", ans.result)?;
            Ok((
                StepAction::Created,
                r.id,
                format!("{kind} {name} → {content}"),
            ))
        }
    }
}

fn setup_complete_hosting(a: HostingArgs) -> Result<Json<HostingOut>, ToolError> {
    let domain = domain_name("domain", &a.domain)?;
    let ip: std::net::Ipv4Addr = a.server_ip.trim().parse().map_err(|_| {
        ToolError::InvalidArguments(format!(
            "server_ip `{}` is not an IPv4 address",
            a.server_ip
        ))
    })?;
    check_mode(&a.ssl_mode)?;
    let api = Api::new()?;
    let mut steps = Vec::new();
    // Each step's failure names the steps already done, so a retry (which is safe: all steps are idempotent) is an
    // informed one.
    let fail = |steps: &Vec<Step>, step: &str, e: ToolError| -> ToolError {
        let done: Vec<String> = steps
            .iter()
            .map(|s| format!("{} {:?}", s.step, s.action).to_lowercase())
            .collect();
        let prefix = format!(
            "step `{step}` failed (done before it: {})",
            if done.is_empty() {
                "nothing".to_string()
            } else {
                done.join(", ")
            }
        );
        match e {
            ToolError::Upstream {
                status,
                code,
                message,
                retry_after_seconds,
            } => ToolError::Upstream {
                status,
                code,
                message: format!("{prefix}: {message}"),
                retry_after_seconds,
            },
            ToolError::NotFound(m) => ToolError::NotFound(format!("{prefix}: {m}")),
            ToolError::Denied(m) => ToolError::Denied(format!("{prefix}: {m}")),
            ToolError::Unavailable(m) => ToolError::Unavailable(format!("{prefix}: {m}")),
            ToolError::InvalidArguments(m) => ToolError::InvalidArguments(format!("{prefix}: {m}")),
            ToolError::Failed(m) => ToolError::Failed(format!("{prefix}: {m}")),
        }
    };

    // Progress for a client that asked for it: one unit per step (zone, A record, www record if asked, SSL mode).
    let total = if a.add_www { 4 } else { 3 };
    let report = |steps: &Vec<Step>| {
        let last = steps.last().map_or("", |s| s.step.as_str());
        plughost_guest::progress(steps.len() as u64, Some(total), &format!("{last} done"));
    };
    let zone = find_zone(&api, &domain).map_err(|e| fail(&steps, "zone", e))?;
    steps.push(Step {
        step: "zone".into(),
        action: StepAction::Found,
        detail: format!("{domain} is in zone {}", zone.name),
        id: Some(zone.id.clone()),
    });
    report(&steps);

    let (action, id, detail) =
        ensure_record(&api, &zone.id, "A", &domain, &ip.to_string(), a.proxied)
            .map_err(|e| fail(&steps, "a_record", e))?;
    steps.push(Step {
        step: "a_record".into(),
        action,
        detail,
        id: Some(id),
    });
    report(&steps);

    if a.add_www {
        let www = format!("www.{domain}");
        let (action, id, detail) = ensure_record(&api, &zone.id, "CNAME", &www, &domain, a.proxied)
            .map_err(|e| fail(&steps, "www_record", e))?;
        steps.push(Step {
            step: "www_record".into(),
            action,
            detail,
            id: Some(id),
        });
        report(&steps);
    }

    let ssl_path = format!("/zones/{}/settings/ssl", zone.id);
    let current = api
        .get(&ssl_path)
        .map_err(|e| fail(&steps, "ssl_mode", e))?
        .result["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let action = if current == a.ssl_mode {
        StepAction::Unchanged
    } else {
        api.patch(&ssl_path, &json!({"value": a.ssl_mode}))
            .map_err(|e| fail(&steps, "ssl_mode", e))?;
        StepAction::Updated
    };
    steps.push(Step {
        step: "ssl_mode".into(),
        detail: match action {
            StepAction::Unchanged => format!("SSL mode is already {}", a.ssl_mode),
            _ => format!("SSL mode changed from {current} to {}", a.ssl_mode),
        },
        action,
        id: None,
    });
    report(&steps);

    Ok(Json(HostingOut {
        domain,
        zone_id: zone.id,
        steps,
    }))
}

// ---- nginx -----------------------------------------------------------------------------------------------------

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NginxArgs {
    /// The site's domain, e.g. `example.com`.
    domain: String,
    /// Where the application listens, e.g. `127.0.0.1:3000` or `http://127.0.0.1:3000`.
    upstream: String,
    /// Also serve `www.<domain>` (default true).
    #[serde(default = "yes")]
    www: bool,
    /// The certificate (e.g. a Cloudflare Origin CA one); default `/etc/ssl/cloudflare/<domain>.pem`.
    certificate_path: Option<String>,
    /// Its private key; default `/etc/ssl/cloudflare/<domain>.key`.
    key_path: Option<String>,
}

/// Text that goes into nginx's config as one token: nothing that could end a directive or open a block.
fn nginx_token(what: &str, s: &str) -> Result<String, ToolError> {
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || ";{}\"'$#\\".contains(c))
    {
        return Err(ToolError::InvalidArguments(format!(
            "{what} `{s}` cannot go into an nginx config (no spaces, quotes, `;`, `{{`, `}}`, `$`, `#`)"
        )));
    }
    Ok(s.to_string())
}

fn render_nginx_config(a: NginxArgs) -> Result<String, ToolError> {
    let domain = domain_name("domain", &a.domain)?;
    let (scheme, target) = match a.upstream.split_once("://") {
        Some((s @ ("http" | "https"), rest)) => (s, rest.trim_end_matches('/')),
        Some((s, _)) => {
            return Err(ToolError::InvalidArguments(format!(
                "upstream scheme `{s}` is not http or https"
            )));
        }
        None => ("http", a.upstream.trim_end_matches('/')),
    };
    let target = nginx_token("upstream", target)?;
    let cert = nginx_token(
        "certificate_path",
        &a.certificate_path
            .unwrap_or_else(|| format!("/etc/ssl/cloudflare/{domain}.pem")),
    )?;
    let key = nginx_token(
        "key_path",
        &a.key_path
            .unwrap_or_else(|| format!("/etc/ssl/cloudflare/{domain}.key")),
    )?;
    let names = if a.www {
        format!("{domain} www.{domain}")
    } else {
        domain.clone()
    };
    let upstream_name = format!("{}_upstream", domain.replace(['.', '-', '*'], "_"));
    Ok(format!(
        "# {domain}: generated by the plughost cloudflare plugin.\n\
         upstream {upstream_name} {{\n\
         \x20   server {target};\n\
         \x20   keepalive 16;\n\
         }}\n\
         \n\
         # Plain HTTP: redirect everything to HTTPS.\n\
         server {{\n\
         \x20   listen 80;\n\
         \x20   listen [::]:80;\n\
         \x20   server_name {names};\n\
         \x20   return 301 https://$host$request_uri;\n\
         }}\n\
         \n\
         server {{\n\
         \x20   # `ssl http2` on the listen line is what nginx before 1.25.1 (Debian 12, Ubuntu 24.04) understands;\n\
         \x20   # newer nginx accepts it too, with a note that it prefers `http2 on;` (which the older ones reject).\n\
         \x20   listen 443 ssl http2;\n\
         \x20   listen [::]:443 ssl http2;\n\
         \x20   server_name {names};\n\
         \n\
         \x20   ssl_certificate     {cert};\n\
         \x20   ssl_certificate_key {key};\n\
         \x20   ssl_protocols       TLSv1.2 TLSv1.3;\n\
         \n\
         \x20   location / {{\n\
         \x20       proxy_pass {scheme}://{upstream_name};\n\
         \x20       proxy_http_version 1.1;\n\
         \x20       proxy_set_header Connection \"\";\n\
         \x20       proxy_set_header Host $host;\n\
         \x20       proxy_set_header X-Real-IP $remote_addr;\n\
         \x20       proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
         \x20       proxy_set_header X-Forwarded-Proto $scheme;\n\
         \x20   }}\n\
         }}\n"
    ))
}

// ---- the plugin ------------------------------------------------------------------------------------------------

struct Cloudflare;

impl Plugin for Cloudflare {
    const ID: &'static str = "cloudflare";
    const NAME: &'static str = "Cloudflare";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Cloudflare zones, DNS records, cache purge, WAF custom rules, Origin CA certificates, \
         SSL mode and tunnels, a one-shot hosting setup, and an nginx config for the origin.";

    fn tools() -> Vec<Tool> {
        vec![
            Tool::new("list_zones", "Lists the zones the API token can see, with pagination.", list_zones)
                .title("List zones")
                .read_only()
                .open_world(),
            Tool::new(
                "resolve_zone",
                "Finds the zone a domain or host name belongs to (the name itself, else its parents).",
                resolve_zone,
            )
            .title("Resolve a domain's zone")
            .read_only()
            .open_world(),
            Tool::new(
                "list_dns_records",
                "Lists a zone's DNS records, filtered by type, name or content, one page or all pages.",
                list_dns_records,
            )
            .title("List DNS records")
            .read_only()
            .open_world(),
            Tool::new(
                "create_dns_record",
                "Creates a DNS record (ttl 1 = automatic; proxied for A/AAAA/CNAME).",
                create_dns_record,
            )
            .title("Create a DNS record")
            .open_world(),
            Tool::new(
                "update_dns_record",
                "Changes fields of an existing DNS record; fields not given stay as they are.",
                update_dns_record,
            )
            .title("Update a DNS record")
            .idempotent()
            .open_world(),
            Tool::new("delete_dns_record", "Deletes a DNS record.", delete_dns_record)
                .title("Delete a DNS record")
                .destructive()
                .open_world(),
            Tool::new(
                "purge_cache",
                "Purges the zone's cache: everything, or by URLs, or by cache tags and/or host names.",
                purge_cache,
            )
            .title("Purge cache")
            .destructive()
            .idempotent()
            .open_world(),
            Tool::new(
                "create_waf_rule",
                "Adds a WAF custom rule (expression, action, description) to the zone, creating its custom-rules \
                 ruleset if needed. The successor of firewall rules.",
                create_waf_rule,
            )
            .title("Create a WAF custom rule")
            .open_world(),
            Tool::new(
                "create_origin_certificate",
                "Issues a Cloudflare Origin CA certificate for your CSR, for the origin server behind the proxy.",
                create_origin_certificate,
            )
            .title("Create an Origin CA certificate")
            .open_world(),
            Tool::new("set_ssl_mode", "Sets the zone's SSL/TLS mode: off, flexible, full or strict.", set_ssl_mode)
                .title("Set SSL mode")
                .idempotent()
                .open_world(),
            Tool::new("create_tunnel", "Creates a Cloudflare Tunnel in the account.", create_tunnel)
                .title("Create a tunnel")
                .open_world(),
            Tool::new(
                "setup_complete_hosting",
                "Points a domain at a server in one go: finds the zone, creates or updates the A record, \
                 optionally a www CNAME, and sets the SSL mode. Idempotent: existing records are updated, never \
                 duplicated; every step is reported.",
                setup_complete_hosting,
            )
            .title("Set up complete hosting")
            .idempotent()
            .open_world(),
            Tool::new(
                "render_nginx_config",
                "Renders an nginx config for the origin: upstream, HTTP→HTTPS redirect and certificate paths. \
                 Pure text; nothing is sent or written.",
                render_nginx_config,
            )
            .title("Render nginx config")
            .read_only()
            .idempotent(),
        ]
    }
}

export_plugin!(Cloudflare);
