//! The calls view: the latest calls from the ledger (time, plugin/tool, caller, outcome, fuel, peak memory, wall
//! time), filtered by plugin, tool, outcome and time like `plughost ledger show`; and one call's report.

use axum::extract::{Path, Query, State};
use plughost_registry::ledger::{Entry, Filter, Kind};
use serde::{Deserialize, Serialize};

use super::html::{self, Html, esc};
use super::state::Ui;
use crate::units::{group_digits, human_bytes, human_duration, parse_duration, rfc3339_ms};

const PATH: &str = "/ui/calls";
/// Rows per page by default, and at most.
pub const DEFAULT_ROWS: usize = 100;
pub const MAX_ROWS: usize = 500;

/// The filters, as query parameters (empty means any).
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct CallQuery {
    #[serde(default)]
    pub plugin: String,
    #[serde(default)]
    pub tool: String,
    #[serde(default)]
    pub outcome: String,
    /// A duration ago: `15m`, `2h`, `7d`.
    #[serde(default)]
    pub since: String,
    /// Calls before this long ago.
    #[serde(default)]
    pub until: String,
    pub limit: Option<usize>,
    /// For the live stream: only calls after this sequence number.
    pub after: Option<u64>,
}

impl CallQuery {
    /// The ledger filter, or why the parameters cannot be read.
    pub fn filter(&self) -> Result<Filter, String> {
        let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        let ago = |what: &str, v: &str| -> Result<Option<i64>, String> {
            match some(v) {
                Some(s) => {
                    let ago = parse_duration(&s).map_err(|_| {
                        format!("{what}: `{s}` is not a duration (e.g. 15m, 2h, 7d)")
                    })?;
                    Ok(Some(
                        crate::ledger::now_ms().saturating_sub(ago.as_millis() as i64),
                    ))
                }
                None => Ok(None),
            }
        };
        let since_ms = ago("since", &self.since)?;
        let until_ms = ago("until", &self.until)?;
        Ok(Filter {
            plugin: some(&self.plugin),
            tool: some(&self.tool),
            outcome: some(&self.outcome),
            since_ms,
            until_ms,
            kind: Some(Kind::Call),
            limit: Some(self.limit.unwrap_or(DEFAULT_ROWS).clamp(1, MAX_ROWS)),
            ..Default::default()
        })
    }

    /// The same filters as a query string (for the live stream).
    fn encoded(&self) -> String {
        [
            ("plugin", &self.plugin),
            ("tool", &self.tool),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", percent(v)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// Percent-encodes everything but unreserved characters.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One call as the table (and the live stream) shows it.
#[derive(Debug, Clone, Serialize)]
pub(super) struct CallRow {
    pub seq: u64,
    pub time: String,
    pub plugin: String,
    pub tool: String,
    pub caller: String,
    pub outcome: String,
    pub fuel: String,
    pub memory: String,
    pub wall: String,
}

impl CallRow {
    pub fn of(e: &Entry) -> CallRow {
        let x = &e.entry;
        CallRow {
            seq: e.seq,
            time: rfc3339_ms(x.time_ms),
            plugin: x.plugin.clone(),
            tool: x.tool.clone(),
            caller: crate::ledger::caller_text(&x.caller),
            outcome: x.outcome.clone(),
            fuel: group_digits(x.fuel_used),
            memory: human_bytes(x.peak_memory),
            wall: human_duration(std::time::Duration::from_micros(x.duration_us)),
        }
    }

    fn html(&self) -> String {
        format!(
            "<tr data-seq=\"{seq}\"><th scope=\"row\"><a href=\"/ui/calls/{seq}\">{seq}</a></th><td>{}</td>\
             <td>{}/{}</td><td>{}</td><td class=\"outcome {}\">{}</td><td class=\"n fuel\">{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            esc(&self.time),
            esc(&self.plugin),
            esc(&self.tool),
            esc(&self.caller),
            if self.outcome == "ok" { "ok" } else { "error" },
            esc(&self.outcome),
            esc(&self.fuel),
            esc(&self.memory),
            esc(&self.wall),
            seq = self.seq,
        )
    }
}

pub(super) async fn view(State(ui): State<Ui>, Query(q): Query<CallQuery>) -> Html {
    let page = tokio::task::spawn_blocking(move || render(&ui, &q)).await;
    page.unwrap_or_else(|e| html::unavailable("Calls", PATH, &e.to_string()))
}

fn render(ui: &Ui, q: &CallQuery) -> Html {
    let ledger = match ui.ledger() {
        Ok(l) => l,
        Err(why) => return html::unavailable("Calls", PATH, why),
    };
    let mut body = format!("<h1>Calls</h1>{}", filters(q));
    let filter = match q.filter() {
        Ok(f) => f,
        Err(why) => {
            body.push_str(&format!(
                "<p class=\"error\" role=\"alert\">{}</p>",
                esc(&why)
            ));
            return Html(html::frame("Calls", Some(PATH), &body));
        }
    };
    // The head first: a call recorded between the two reads is then sent by the live stream, not lost.
    let head = ledger.head_seq();
    let entries = ledger.entries(&filter);
    let (head, entries) = match (head, entries) {
        (Ok(h), Ok(e)) => (h, e),
        (Err(e), _) | (_, Err(e)) => return html::unavailable("Calls", PATH, &e.to_string()),
    };
    let limit = filter.limit.unwrap_or(DEFAULT_ROWS);
    body.push_str(&format!(
        "<p id=\"live-status\" class=\"live\" aria-live=\"polite\">The latest {limit} matching calls, newest first.</p>\
         <div class=\"scroll\"><table id=\"calls\" data-head=\"{head}\" data-limit=\"{limit}\" data-filter=\"{}\">\
         <caption>Calls from the ledger</caption><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Time (UTC)</th>\
         <th scope=\"col\">Plugin/tool</th><th scope=\"col\">Caller</th><th scope=\"col\">Outcome</th>\
         <th scope=\"col\" class=\"n\">Fuel</th><th scope=\"col\" class=\"n\">Peak memory</th>\
         <th scope=\"col\" class=\"n\">Wall time</th></tr></thead><tbody>",
        esc(&q.encoded())
    ));
    for e in entries.iter().rev() {
        body.push_str(&CallRow::of(e).html());
    }
    body.push_str("</tbody></table></div>");
    if entries.is_empty() {
        body.push_str("<p id=\"no-calls\">No calls match.</p>");
    }
    Html(html::frame("Calls", Some(PATH), &body))
}

fn filters(q: &CallQuery) -> String {
    let field = |name: &str, label: &str, value: &str, hint: &str| {
        format!(
            "<label for=\"f-{name}\">{label}<input id=\"f-{name}\" name=\"{name}\" value=\"{}\" placeholder=\"{hint}\"></label>",
            esc(value)
        )
    };
    format!(
        "<form class=\"filters\" method=\"get\" action=\"/ui/calls\" role=\"search\">{}{}{}{}{}\
         <button type=\"submit\">Filter</button></form>",
        field("plugin", "Plugin", &q.plugin, "any"),
        field("tool", "Tool", &q.tool, "any"),
        field("outcome", "Outcome", &q.outcome, "ok, out-of-fuel, …"),
        field("since", "Since", &q.since, "e.g. 2h ago"),
        field("until", "Until", &q.until, "e.g. 10m ago"),
    )
}

pub(super) async fn detail(State(ui): State<Ui>, Path(seq): Path<u64>) -> Html {
    let page = tokio::task::spawn_blocking(move || render_detail(&ui, seq)).await;
    page.unwrap_or_else(|e| html::unavailable("Call", PATH, &e.to_string()))
}

fn render_detail(ui: &Ui, seq: u64) -> Html {
    let entry = match ui.ledger().map(|l| l.entry(seq)) {
        Ok(Ok(Some(e))) => e,
        Ok(Ok(None)) => {
            return html::unavailable("Call", PATH, &format!("no entry {seq} in the ledger"));
        }
        Ok(Err(e)) => return html::unavailable("Call", PATH, &e.to_string()),
        Err(why) => return html::unavailable("Call", PATH, why),
    };
    let x = &entry.entry;
    let row = CallRow::of(&entry);
    let facts: Vec<(&str, String)> = vec![
        ("Kind", format!("{:?}", x.kind).to_lowercase()),
        ("Time (UTC)", row.time.clone()),
        ("Plugin", format!("{} {}", x.plugin, x.version)),
        ("Component", x.digest.clone()),
        ("Tool", x.tool.clone()),
        ("Caller", row.caller.clone()),
        ("Outcome", x.outcome.clone()),
        ("Fuel used", row.fuel.clone()),
        (
            "Peak memory",
            format!("{} ({} bytes)", row.memory, group_digits(x.peak_memory)),
        ),
        ("Wall time", row.wall.clone()),
        ("Cost", format!("{} tokens", x.cost)),
        (
            "Arguments digest",
            x.args_digest.clone().unwrap_or_else(|| "-".into()),
        ),
        ("Event", x.event.clone().unwrap_or_else(|| "-".into())),
        ("Entry hash", entry.hash.clone()),
        ("Previous hash", entry.prev_hash.clone()),
    ];
    let dl: String = facts
        .iter()
        .map(|(k, v)| format!("<dt>{k}</dt><dd>{}</dd>", esc(v)))
        .collect();
    let body = format!(
        "<h1>Call {seq}</h1><p><a href=\"/ui/calls\">All calls</a></p><dl class=\"facts\" id=\"report\">{dl}</dl>\
         <p>The ledger keeps a digest of the arguments, never the arguments or any secret.</p>"
    );
    Html(html::frame(&format!("Call {seq}"), Some(PATH), &body))
}
