//! A hostile plugin given a secret tries every channel it has, in every encoding; the secret, and any 8-byte slice
//! of it, reaches no caller-visible result, no log line and no metric.

use plughost::{CallResult, Host, LoadedPlugin};
use plughost_tests as fx;

/// Valid as a metric name too, so the plugin can try that channel.
const SECRET: &str = "sEcReT_tok3n_9f8e7d6c5b4a";

fn host() -> Host {
    Host::ephemeral().unwrap_or_else(|e| panic!("host: {e}"))
}

async fn leaky(host: &Host) -> LoadedPlugin {
    fx::load(
        host,
        fx::LEAKY,
        &["config", "log", "metrics", "ledger"],
        |s| {
            s.secrets.insert("token".into(), SECRET.into());
        },
    )
    .await
}

/// Fails if `haystack` holds the secret or any 8-byte slice of it.
fn assert_clean(what: &str, haystack: &str) {
    for w in SECRET.as_bytes().windows(8) {
        let w = std::str::from_utf8(w).unwrap_or_default();
        assert!(
            !haystack.contains(w),
            "{what} shows `{w}` of the secret: {haystack}"
        );
    }
}

/// Everything a caller sees of a result: the output, the error and the report, serialized.
fn visible(r: &CallResult) -> String {
    let result = match &r.result {
        Ok(out) => serde_json::to_string(out).unwrap_or_default(),
        Err(e) => format!("{e} {}", serde_json::to_string(e).unwrap_or_default()),
    };
    format!("{result} {:?}", r.report)
}

async fn call(host: &Host, p: &LoadedPlugin, channel: &str, enc: &str) -> CallResult {
    let args = serde_json::json!({ "channel": channel, "enc": enc }).to_string();
    host.call(p, "leak", &args).await
}

#[tokio::test]
async fn output_and_errors_never_show_the_secret_in_any_encoding() {
    let host = host();
    let p = leaky(&host).await;
    for channel in [
        "text",
        "json",
        "structured",
        "failed",
        "unknown",
        "upstream",
        "panic",
    ] {
        for enc in ["plain", "escaped", "split"] {
            let r = call(&host, &p, channel, enc).await;
            assert_clean(&format!("{channel}/{enc}"), &visible(&r));
        }
    }
    // The redacted JSON is still the plugin's JSON, keys and all.
    let r = call(&host, &p, "json", "escaped").await;
    let out = r.result.unwrap_or_else(|e| panic!("{e}"));
    let v = serde_json::to_value(&out.content).unwrap_or_default();
    assert_eq!(v[0]["json"]["secret"], "[REDACTED]", "{v}");
    assert_eq!(v[0]["json"]["[REDACTED]"], 1, "{v}");
    assert_eq!(v[0]["json"]["nested"][0], "token=[REDACTED]!", "{v}");
}

#[tokio::test]
async fn logs_never_show_the_secret_not_even_across_the_cut() {
    let logs = fx::logs::capture();
    let host = host();
    let p = leaky(&host).await;
    for channel in ["log", "cut", "panic"] {
        let r = call(&host, &p, channel, "plain").await;
        assert_clean(channel, &visible(&r));
    }
    let text = logs.text();
    assert!(text.contains("logging [REDACTED]"), "{text}");
    assert_clean("the log", &text);
}

#[tokio::test]
async fn metrics_never_show_the_secret() {
    let host = host();
    let p = leaky(&host).await;
    let r = call(&host, &p, "metric", "plain").await;
    assert_clean("metric call", &visible(&r));
    let metrics = format!("{:?}", host.stats().plugin_metrics()[0].1.snapshot());
    assert!(metrics.contains("leaks"), "{metrics}");
    assert_clean("metrics", &metrics);
}
