//! The quotas view: per plugin, the fuel, memory and deadline limits against what the latest calls used (p50, p99,
//! max) as bars, and each contract's window — the numbers of `plughost quota` (one function, `quota::Source::view`: on a
//! cluster's replica, the whole cluster's).

use axum::extract::State;

use super::html::{self, Html, esc};
use super::state::{PageLedger, Ui};
use crate::quota::{QuotaView, Source};
use crate::units::{group_digits, human_bytes, human_duration, rfc3339_ms};

const PATH: &str = "/ui/quotas";

pub(super) async fn view(State(ui): State<Ui>) -> Html {
    let page = tokio::task::spawn_blocking(move || render(&ui)).await;
    page.unwrap_or_else(|e| html::unavailable("Quotas", PATH, &e.to_string()))
}

fn render(ui: &Ui) -> Html {
    let catalog = ui.gateway.catalog();
    let registry = catalog.registry();
    // On a cluster's replica, the whole cluster's ledger and contract windows (what `quota --store` shows), not
    // this replica's data dir: the page's ledger is the shared store there.
    let source = match ui.ledger() {
        Ok(PageLedger::Local(l)) => Source::Local(l),
        Ok(PageLedger::Shared(pg)) => Source::Shared(pg),
        Err(why) => return html::unavailable("Quotas", PATH, why),
    };
    let records = match registry.list() {
        Ok(r) => r,
        Err(e) => return html::unavailable("Quotas", PATH, &format!("registry: {e}")),
    };
    let now = crate::ledger::now_ms();
    let mut body = format!(
        "<h1>Quotas</h1><p>Limits per call against the latest {} calls of each plugin (from the ledger), and \
         contracts over their sliding window. Change them with <code>plughost limits ID …</code>.</p>",
        crate::quota::SAMPLE
    );
    if records.is_empty() {
        body.push_str("<p>No plugins installed.</p>");
    }
    for r in &records {
        let language = match catalog.get(&r.id) {
            Some(e) => e.plugin.info.language,
            None => crate::catalog::installed_language(registry, &r.id),
        };
        match source.view(r, language, now) {
            Ok(v) => body.push_str(&plugin(&v)),
            Err(e) => body.push_str(&format!(
                "<section><h2>{}</h2><p class=\"error\">{}</p></section>",
                esc(&r.id),
                esc(&e.to_string())
            )),
        }
    }
    Html(html::frame("Quotas", Some(PATH), &body))
}

/// One bar: `used` of `limit`, with the numbers as text (the bar is never the only carrier).
fn bar(what: &str, used: Option<u64>, limit: u64, show: &dyn Fn(u64) -> String) -> String {
    match used {
        Some(u) => format!(
            "<div class=\"bar\" data-what=\"{what}\"><span>{what}</span><meter min=\"0\" max=\"{limit}\" \
             low=\"{}\" high=\"{}\" optimum=\"0\" value=\"{}\" aria-label=\"{what}: {} of {}\"></meter>\
             <span>{} of {} ({:.1}%)</span></div>",
            limit / 2,
            limit / 10 * 9,
            u.min(limit),
            show(u),
            show(limit),
            show(u),
            show(limit),
            if limit == 0 {
                0.0
            } else {
                u as f64 * 100.0 / limit as f64
            },
        ),
        None => format!(
            "<div class=\"bar\" data-what=\"{what}\"><span>{what}</span><span>no calls yet</span></div>"
        ),
    }
}

fn plugin(v: &QuotaView) -> String {
    let n = |x: u64| group_digits(x);
    let b = |x: u64| human_bytes(x);
    let t = |us: u64| human_duration(std::time::Duration::from_micros(us));
    let deadline_us = v.deadline_ms.saturating_mul(1000);
    let mut s = format!(
        "<section class=\"quota\" data-plugin=\"{id}\" aria-labelledby=\"q-{id}\"><h2 id=\"q-{id}\">{id} {}{}</h2>\
         <p>{} call{} sampled; language {}; concurrency {}.</p>",
        esc(&v.version),
        if v.enabled { "" } else { " (disabled)" },
        v.calls_sampled,
        if v.calls_sampled == 1 { "" } else { "s" },
        v.language.name(),
        v.concurrency,
        id = esc(&v.plugin),
    );
    s.push_str(&format!("<h3>Fuel (limit {})</h3>", n(v.fuel.limit)));
    for (what, x) in [
        ("p50", v.fuel.p50),
        ("p99", v.fuel.p99),
        ("max", v.fuel.max),
    ] {
        s.push_str(&bar(&format!("fuel {what}"), x, v.fuel.limit, &n));
    }
    s.push_str(&format!(
        "<h3>Memory (limit {})</h3>",
        b(v.memory.limit_bytes)
    ));
    for (what, x) in [
        ("p50", v.memory.p50_peak_bytes),
        ("p99", v.memory.p99_peak_bytes),
        ("max", v.memory.max_peak_bytes),
    ] {
        s.push_str(&bar(&format!("memory {what}"), x, v.memory.limit_bytes, &b));
    }
    s.push_str(&format!("<h3>Wall time (deadline {})</h3>", t(deadline_us)));
    for (what, x) in [
        ("p50", v.wall_time.p50_us),
        ("p99", v.wall_time.p99_us),
        ("max", v.wall_time.max_us),
    ] {
        s.push_str(&bar(&format!("time {what}"), x, deadline_us, &t));
    }
    if v.contracts.is_empty() {
        s.push_str("<p>No contract (calls per window or token budget).</p>");
    }
    for c in &v.contracts {
        let who = match (&c.tool, &c.principal) {
            (_, Some(p)) => format!("principal {}", esc(p)),
            (Some(t), None) => format!("tool {}", esc(t)),
            (None, None) => "plugin".into(),
        };
        s.push_str(&format!(
            "<h3>Contract: {who}, per {}</h3>",
            c.window.name()
        ));
        match c.calls_allowed {
            Some(a) => s.push_str(&bar("calls", Some(c.calls_used), a, &n)),
            None => s.push_str(&format!("<p>calls {} (no limit)</p>", c.calls_used)),
        }
        match c.budget {
            Some(a) => s.push_str(&bar("cost", Some(c.cost_used), a, &n)),
            None => s.push_str(&format!("<p>cost {} tokens (no budget)</p>", c.cost_used)),
        }
        if let Some(t) = c.frees_at_ms {
            s.push_str(&format!(
                "<p>The oldest counted call leaves the window at {}.</p>",
                rfc3339_ms(t)
            ));
        }
    }
    s.push_str("</section>");
    s
}
