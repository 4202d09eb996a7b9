//! The ledger view: the head's sequence number, and the last verification of the whole chain (entries, head hash,
//! signed checkpoints, the first problem) with its time — what `plughost ledger verify` prints. A verification walks
//! every entry, so it runs only when asked (the form's button), one at a time, on the page's own connection (a read
//! in WAL mode: calls keep committing meanwhile).

use axum::extract::{Query, State};
use plughost_registry::ledger::Verification;

use super::html::{self, Html, esc};
use super::state::{Ui, Verified};
use crate::units::rfc3339_ms;

const PATH: &str = "/ui/ledger";

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct LedgerQuery {
    #[serde(default)]
    verify: Option<String>,
}

pub(super) async fn view(State(ui): State<Ui>, Query(q): Query<LedgerQuery>) -> Html {
    let ledger = match ui.ledger() {
        Ok(l) => l.clone(),
        Err(why) => return html::unavailable("Ledger", PATH, why),
    };
    let mut note = String::new();
    if q.verify.is_some() {
        match ui.verifying.clone().try_lock_owned() {
            Ok(_running) => {
                let l = ledger.clone();
                match tokio::task::spawn_blocking(move || l.verify()).await {
                    Ok(Ok(v)) => {
                        *ui.verified.lock().unwrap_or_else(|p| p.into_inner()) = Some(Verified {
                            at_ms: crate::ledger::now_ms(),
                            result: v,
                        })
                    }
                    Ok(Err(e)) => note = format!("The verification failed to run: {e}"),
                    Err(e) => note = format!("The verification failed to run: {e}"),
                }
            }
            Err(_) => note = "A verification is already running; reload in a moment.".into(),
        }
    }
    let head = tokio::task::spawn_blocking(move || ledger.head_seq()).await;
    let head = match head {
        Ok(Ok(h)) => h.to_string(),
        Ok(Err(e)) => format!("unreadable: {e}"),
        Err(e) => format!("unreadable: {e}"),
    };
    let last = ui
        .verified
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let mut body = format!(
        "<h1>Ledger</h1><dl class=\"facts\" id=\"ledger\"><dt>Head</dt><dd id=\"head\">entry {}</dd></dl>",
        esc(&head)
    );
    if !note.is_empty() {
        body.push_str(&format!("<p role=\"alert\">{}</p>", esc(&note)));
    }
    body.push_str(&match last {
        Some(v) => verification(&v.result, v.at_ms),
        None => "<p id=\"verified\">Not verified since the gateway started.</p>".into(),
    });
    body.push_str(
        "<form method=\"get\" action=\"/ui/ledger\"><input type=\"hidden\" name=\"verify\" value=\"1\">\
         <button type=\"submit\">Verify the chain now</button></form>\
         <p>Verifying reads every entry and checks every hash and signed checkpoint (as <code>plughost ledger \
         verify</code> does). Checkpoints are signed on the CLI: <code>plughost ledger checkpoint --key NAME</code>; \
         checkpoint files kept elsewhere are checked with <code>plughost ledger verify --against FILE</code>.</p>",
    );
    Html(html::frame("Ledger", Some(PATH), &body))
}

fn verification(v: &Verification, at_ms: i64) -> String {
    let verdict = match &v.problem {
        Some(p) => format!(
            "<strong class=\"error\">BROKEN at entry {}</strong>: {}",
            p.seq,
            esc(&p.reason)
        ),
        None => "<strong class=\"status loaded\">ok</strong>: the chain is intact".into(),
    };
    format!(
        "<h2>Last verification</h2><dl class=\"facts\" id=\"verified\"><dt>Result</dt><dd>{verdict}</dd>\
         <dt>When</dt><dd>{}</dd><dt>Entries</dt><dd>{}</dd><dt>Head hash</dt><dd>{}</dd>\
         <dt>Signed checkpoints</dt><dd>{} verified</dd>{}</dl>",
        rfc3339_ms(at_ms),
        v.entries,
        v.head
            .as_ref()
            .map(|(s, h)| format!("entry {s}: <code class=\"fp\">{}</code>", esc(h)))
            .unwrap_or_else(|| "none (empty ledger)".into()),
        v.checkpoints,
        archived(v.archived),
    )
}

/// The row saying where the live chain starts, when entries were archived (the entry count above is the live one).
fn archived(through: u64) -> String {
    if through == 0 {
        return String::new();
    }
    format!(
        "<dt>Archived</dt><dd>entries 1..{through}, in signed archive files: the live chain starts after entry \
         {through} (check the files with <code>plughost ledger verify --archive FILE…</code>)</dd>"
    )
}

#[cfg(test)]
mod tests {
    use plughost_registry::ledger::Verification;

    #[test]
    fn the_verification_says_where_the_live_chain_starts_after_an_archive() {
        let mut v = Verification {
            entries: 60,
            head: Some((100, "ab".repeat(32))),
            checkpoints: 0,
            archived: 40,
            problem: None,
        };
        let page = super::verification(&v, 0);
        assert!(
            page.contains("<dt>Archived</dt><dd>entries 1..40,")
                && page.contains("the live chain starts after entry 40"),
            "{page}"
        );
        v.archived = 0;
        assert!(!super::verification(&v, 0).contains("Archived"));
    }
}
