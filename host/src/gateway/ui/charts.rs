//! The charts view: per tool, wall time and fuel of its calls against their time and the wall time's distribution, drawn as
//! inline SVG on the server (no chart library, no script), and its errors by kind — the calls `plughost stats`
//! sums (`quota::tool_stats`), over the same period (`since`, default 24h), at most [`MAX_CALLS`] of the latest.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use plughost_registry::ledger::{Entry, Filter, Kind};

use super::html::{self, Html, esc};
use super::state::Ui;
use crate::units::{group_digits, human_duration, parse_duration, rfc3339_ms};

const PATH: &str = "/ui/charts";
/// The latest calls the charts read, at most.
pub const MAX_CALLS: usize = 2000;
const W: f64 = 600.0;
const H: f64 = 100.0;
const BINS: usize = 20;

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct ChartQuery {
    #[serde(default)]
    since: String,
}

pub(super) async fn view(State(ui): State<Ui>, Query(q): Query<ChartQuery>) -> Html {
    let page = tokio::task::spawn_blocking(move || render(&ui, &q)).await;
    page.unwrap_or_else(|e| html::unavailable("Charts", PATH, &e.to_string()))
}

fn render(ui: &Ui, q: &ChartQuery) -> Html {
    let since = if q.since.trim().is_empty() {
        "24h"
    } else {
        q.since.trim()
    };
    let Ok(ago) = parse_duration(since) else {
        return html::unavailable(
            "Charts",
            PATH,
            &format!("since: `{since}` is not a duration"),
        );
    };
    let entries = match ui.ledger().map(|l| {
        l.entries(&Filter {
            since_ms: Some(crate::ledger::now_ms().saturating_sub(ago.as_millis() as i64)),
            kind: Some(Kind::Call),
            limit: Some(MAX_CALLS),
            ..Default::default()
        })
    }) {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => return html::unavailable("Charts", PATH, &e.to_string()),
        Err(why) => return html::unavailable("Charts", PATH, why),
    };
    let mut body = format!(
        "<h1>Charts</h1><form class=\"filters\" method=\"get\" action=\"/ui/charts\"><label for=\"f-since\">Since\
         <input id=\"f-since\" name=\"since\" value=\"{}\"></label><button type=\"submit\">Show</button></form>\
         <p>{} calls in the last {} (at most the latest {MAX_CALLS}), per tool: wall time and fuel over time, oldest \
         left, and how wall times spread.</p>",
        esc(since),
        entries.len(),
        esc(since)
    );
    let mut by_tool: BTreeMap<(&str, &str), Vec<&Entry>> = BTreeMap::new();
    for e in &entries {
        by_tool
            .entry((e.entry.plugin.as_str(), e.entry.tool.as_str()))
            .or_default()
            .push(e);
    }
    for s in crate::quota::tool_stats(&entries) {
        let calls = by_tool
            .get(&(s.plugin.as_str(), s.tool.as_str()))
            .cloned()
            .unwrap_or_default();
        let ran: Vec<&Entry> = calls
            .into_iter()
            .filter(|e| e.entry.outcome != "quota" && e.entry.outcome != "busy")
            .collect();
        let at: Vec<i64> = ran.iter().map(|e| e.entry.time_ms).collect();
        let wall: Vec<u64> = ran.iter().map(|e| e.entry.duration_us).collect();
        let fuel: Vec<u64> = ran.iter().map(|e| e.entry.fuel_used).collect();
        let time = |us: u64| human_duration(std::time::Duration::from_micros(us));
        let errors: String = s
            .outcomes
            .iter()
            .filter(|(k, _)| k.as_str() != "ok")
            .map(|(k, n)| format!("<li>{}: {n}</li>", esc(k)))
            .collect();
        body.push_str(&format!(
            "<section class=\"chart\" data-tool=\"{id}\"><h2>{id}</h2><p>{} calls, {} errors{}</p>\
             <h3>Wall time over time</h3>{}<h3>Fuel over time</h3>{}<h3>Wall time distribution</h3>{}</section>",
            s.calls,
            s.errors,
            if errors.is_empty() {
                String::new()
            } else {
                format!(":</p><ul class=\"errors\">{errors}</ul><p>")
            },
            line(&at, &wall, &time),
            line(&at, &fuel, &|f| group_digits(f)),
            histogram(&wall, &time),
            id = esc(&format!("{}/{}", s.plugin, s.tool)),
        ));
    }
    Html(html::frame("Charts", Some(PATH), &body))
}

/// A line of `v` against the times `at` (Unix ms, ascending), scaled to the maximum, with the ranges as text.
fn line(at: &[i64], v: &[u64], show: &dyn Fn(u64) -> String) -> String {
    let Some(&max) = v.iter().max() else {
        return "<p>No calls that ran.</p>".into();
    };
    let min = v.iter().min().copied().unwrap_or(0);
    let (first, last) = (
        at.first().copied().unwrap_or(0),
        at.last().copied().unwrap_or(0),
    );
    let span = (last - first).max(1) as f64;
    let points: Vec<String> = at
        .iter()
        .zip(v)
        .map(|(&t, &y)| {
            let x = if last == first {
                W / 2.0
            } else {
                (t - first) as f64 * W / span
            };
            format!("{x:.1},{:.1}", H - y as f64 * H / max.max(1) as f64)
        })
        .collect();
    format!(
        "<figure><svg viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"{} calls, from {} to {}\"><polyline fill=\"none\" stroke=\"#0550ae\" stroke-width=\"1.5\" \
         vector-effect=\"non-scaling-stroke\" points=\"{}\"/></svg><figcaption>min {}, max {}; {} to {}\
         </figcaption></figure>",
        v.len(),
        esc(&show(min)),
        esc(&show(max)),
        points.join(" "),
        esc(&show(min)),
        esc(&show(max)),
        rfc3339_ms(first),
        rfc3339_ms(last),
    )
}

/// How many values fall in each of [`BINS`] equal bins from 0 to the maximum.
fn histogram(v: &[u64], show: &dyn Fn(u64) -> String) -> String {
    let Some(&max) = v.iter().max() else {
        return String::new();
    };
    let mut bins = [0usize; BINS];
    for &x in v {
        let i = (x as u128 * BINS as u128 / (max as u128 + 1)) as usize;
        bins[i.min(BINS - 1)] += 1;
    }
    let top = bins.iter().max().copied().unwrap_or(1).max(1);
    let bw = W / BINS as f64;
    let bars: String = bins
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(i, &c)| {
            let h = c as f64 * H / top as f64;
            format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#0550ae\"><title>{c} calls \
                 up to {}</title></rect>",
                i as f64 * bw + 1.0,
                H - h,
                bw - 2.0,
                esc(&show((max as u128 * (i as u128 + 1) / BINS as u128) as u64)),
            )
        })
        .collect();
    format!(
        "<figure><svg viewBox=\"0 0 {W} {H}\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"distribution of {} calls from 0 to {}\">{bars}</svg><figcaption>0 to {}, {BINS} bins; the \
         tallest holds {top} calls</figcaption></figure>",
        v.len(),
        esc(&show(max)),
        esc(&show(max)),
    )
}

#[cfg(test)]
mod tests {
    use super::histogram;

    #[test]
    fn every_value_lands_in_a_bin() {
        let svg = histogram(&[0, 1, 10, 10, u64::MAX], &|x| x.to_string());
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        assert!(svg.contains("the tallest holds 4 calls"), "{svg}");
        assert_eq!(histogram(&[], &|x| x.to_string()), "");
    }
}
