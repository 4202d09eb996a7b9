//! The plugins view: every installed plugin's status (loaded, disabled, not loadable and why, corrupted), version,
//! publisher and fingerprint, where its component comes from, declared against granted capabilities, config (secrets
//! as set only) and tools with their argument schemas — the data of `plughost list`, `info` and `grants`.

use std::collections::BTreeSet;

use axum::extract::State;
use plughost_registry::{PluginRecord, Registry, grant_kind};

use super::html::{self, Html, esc};
use super::state::Ui;
use crate::Manifest;
use crate::units::{group_digits, human_bytes, utc_minute};

const PATH: &str = "/ui/plugins";

pub(super) async fn view(State(ui): State<Ui>) -> Html {
    let gateway = ui.gateway.clone();
    let page = tokio::task::spawn_blocking(move || render(&gateway)).await;
    page.unwrap_or_else(|e| html::unavailable("Plugins", PATH, &e.to_string()))
}

fn render(gateway: &crate::gateway::Gateway) -> Html {
    let registry = gateway.catalog().registry();
    let records = match registry.list() {
        Ok(r) => r,
        Err(e) => return html::unavailable("Plugins", PATH, &format!("registry: {e}")),
    };
    let index = gateway.index();
    let mut body = format!(
        "<h1>Plugins</h1><p>{} installed, {} tools served.</p>",
        records.len(),
        index.tools.len()
    );
    if records.is_empty() {
        body.push_str(
            "<p>No plugins installed; <code>plughost install FILE.wasm</code> adds one.</p>",
        );
        return Html(html::frame("Plugins", Some(PATH), &body));
    }
    body.push_str(
        "<div class=\"scroll\"><table id=\"plugins\"><caption>Installed plugins</caption><thead><tr>\
         <th scope=\"col\">Plugin</th><th scope=\"col\">Version</th><th scope=\"col\">Status</th>\
         <th scope=\"col\">Publisher</th><th scope=\"col\">Tools</th></tr></thead><tbody>",
    );
    for r in &records {
        let (status, why) = status(registry, gateway, r);
        let tools = index.tools.values().filter(|t| t.plugin == r.id).count();
        body.push_str(&format!(
            "<tr data-plugin=\"{id}\"><th scope=\"row\"><a href=\"#p-{id}\">{id}</a></th><td>{}</td>\
             <td><span class=\"status {status}\">{status}</span>{}</td><td>{}</td><td>{tools}</td></tr>",
            esc(&r.version),
            why.map(|w| format!(": {}", esc(&w))).unwrap_or_default(),
            publisher(r),
            id = esc(&r.id),
        ));
    }
    body.push_str("</tbody></table></div>");
    for r in &records {
        body.push_str(&detail(registry, gateway, r));
    }
    Html(html::frame("Plugins", Some(PATH), &body))
}

/// `loaded`, `not-loadable` (installed and enabled, but the gateway could not serve it), or the registry's status.
fn status(
    registry: &Registry,
    gateway: &crate::gateway::Gateway,
    r: &PluginRecord,
) -> (&'static str, Option<String>) {
    let (installed, why) = crate::status::installed_status(registry, r);
    match installed.as_str() {
        "corrupted" => ("corrupted", why),
        "disabled" => ("disabled", why.or(Some("by the operator".into()))),
        _ => match gateway.index().problems.iter().find(|p| p.id == r.id) {
            Some(p) => ("not-loadable", Some(p.reason.clone())),
            None if gateway.catalog().get(&r.id).is_some() => ("loaded", None),
            None => ("not-loadable", Some("not loaded yet".into())),
        },
    }
}

fn publisher(r: &PluginRecord) -> String {
    match &r.publisher {
        Some(p) => format!(
            "{}{} <code class=\"fp\">{}</code>",
            esc(&p.name),
            if p.revoked { " (REVOKED)" } else { "" },
            esc(&p.fingerprint)
        ),
        None => "UNSIGNED (installed with <code>--allow-unsigned</code>)".into(),
    }
}

fn detail(registry: &Registry, gateway: &crate::gateway::Gateway, r: &PluginRecord) -> String {
    let manifest: Option<Manifest> = serde_json::from_str(&r.manifest_json).ok();
    let limits = match gateway.catalog().get(&r.id) {
        Some(e) => e.plugin.limits,
        None => crate::catalog::limits_from(&r.limits),
    };
    let mut s = format!(
        "<section id=\"p-{id}\" class=\"plugin\" aria-labelledby=\"h-{id}\"><h2 id=\"h-{id}\">{id} {}</h2>",
        esc(&r.version),
        id = esc(&r.id)
    );
    if let Some(m) = &manifest {
        s.push_str(&format!(
            "<p>{} — {}</p>",
            esc(&m.name),
            esc(&m.description)
        ));
    }
    s.push_str(&format!(
        "<dl class=\"facts\"><dt>Publisher</dt><dd>{}</dd><dt>Source</dt><dd>the local registry: \
         <code>{}</code>, {}, installed {}, updated {}</dd><dt>Limits per call</dt><dd>fuel {}, memory {}, \
         deadline {}, concurrency {}</dd></dl>",
        publisher(r),
        esc(&r.digest),
        human_bytes(r.size),
        utc_minute(r.installed_at),
        utc_minute(r.updated_at),
        group_digits(limits.fuel),
        human_bytes(limits.memory_bytes),
        crate::units::human_duration(limits.timeout),
        r.limits
            .concurrency
            .map(|c| c.to_string())
            .unwrap_or_else(|| "unlimited".into()),
    ));
    s.push_str(&capabilities(r));
    s.push_str(&config(registry, &r.id));
    if let Some(m) = &manifest {
        s.push_str(&tools(m));
    }
    s.push_str("</section>");
    s
}

/// Declared and granted side by side, one row per capability either names.
fn capabilities(r: &PluginRecord) -> String {
    let kinds: BTreeSet<&str> = r
        .declared
        .iter()
        .chain(&r.grants)
        .map(|g| grant_kind(g))
        .collect();
    if kinds.is_empty() {
        return "<p>Capabilities: none declared, none granted.</p>".into();
    }
    let of = |list: &[String], kind: &str| -> Option<String> {
        let v: Vec<&str> = list
            .iter()
            .filter(|g| grant_kind(g) == kind)
            .map(String::as_str)
            .collect();
        (!v.is_empty()).then(|| v.join(", "))
    };
    let mut s = format!(
        "<table class=\"caps\" data-caps=\"{}\"><caption>Capabilities: declared by the publisher, granted by the \
         operator</caption><thead><tr><th scope=\"col\">Capability</th><th scope=\"col\">Declared</th>\
         <th scope=\"col\">Granted</th></tr></thead><tbody>",
        esc(&r.id)
    );
    for k in kinds {
        let declared = of(&r.declared, k);
        let granted = of(&r.grants, k);
        s.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>",
            esc(k),
            declared
                .map(|d| esc(&d))
                .unwrap_or_else(|| "not declared".into()),
            granted
                .map(|g| esc(&g))
                .unwrap_or_else(|| "<strong>not granted</strong>".into()),
        ));
    }
    s.push_str("</tbody></table>");
    s
}

/// Settings by key; a secret shows as set, never its value.
fn config(registry: &Registry, id: &str) -> String {
    let entries = match registry.config(id) {
        Ok(e) => e,
        Err(e) => return format!("<p class=\"error\">Config: {}</p>", esc(&e.to_string())),
    };
    if entries.is_empty() {
        return String::new();
    }
    let rows: String = entries
        .iter()
        .map(|c| {
            let value = match (&c.value, c.secret) {
                (Some(v), false) => format!("<code>{}</code>", esc(v)),
                _ => "secret: set".into(),
            };
            format!("<dt>{}</dt><dd>{value}</dd>", esc(&c.key))
        })
        .collect();
    format!("<h3>Config</h3><dl class=\"facts\">{rows}</dl>")
}

fn tools(m: &Manifest) -> String {
    let mut s = format!("<h3>Tools ({})</h3><ul class=\"tools\">", m.tools.len());
    for t in &m.tools {
        let schema = serde_json::to_string_pretty(&t.input_schema).unwrap_or_default();
        s.push_str(&format!(
            "<li><details><summary><code>{}</code>{} — {}</summary><h4>Arguments (JSON Schema)</h4>\
             <pre>{}</pre>{}</details></li>",
            esc(&t.name),
            t.title
                .as_ref()
                .map(|x| format!(" ({})", esc(x)))
                .unwrap_or_default(),
            esc(&t.description),
            esc(&schema),
            t.output_schema
                .as_ref()
                .map(|o| format!(
                    "<h4>Output (JSON Schema)</h4><pre>{}</pre>",
                    esc(&serde_json::to_string_pretty(o).unwrap_or_default())
                ))
                .unwrap_or_default(),
        ));
    }
    s.push_str("</ul>");
    s
}
