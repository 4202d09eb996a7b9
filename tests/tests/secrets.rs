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

/// Fails if `haystack` holds the secret's encoding `enc` (as the leaky fixture writes it) or a part of it standing
/// for 8 bytes of the secret: 11 base64 characters, 16 hex digits. Computed here from the secret, not by the
/// redactor, so a redactor that misses an encoding fails.
fn assert_clean_encoded(what: &str, haystack: &str, enc: &str) {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let (encoded, part) = match enc {
        // "user:" is 5 bytes (40 bits): the first character made of the secret's bits alone is the 8th (index 7).
        "basic" => (
            STANDARD_NO_PAD.encode(format!("user:{SECRET}"))[7..].to_string(),
            11,
        ),
        "base64url" => (
            URL_SAFE_NO_PAD.encode(format!("x{SECRET}"))[2..].to_string(),
            11,
        ),
        "hex" => (SECRET.bytes().map(|b| format!("{b:02x}")).collect(), 16),
        "HEX" => (SECRET.bytes().map(|b| format!("{b:02X}")).collect(), 16),
        other => panic!("no encoding {other}"),
    };
    assert!(encoded.len() > part, "{enc}: {encoded}");
    for w in encoded.as_bytes().windows(part) {
        let w = std::str::from_utf8(w).unwrap_or_default();
        assert!(
            !haystack.contains(w),
            "{what} shows `{w}` of the secret in {enc}: {haystack}"
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
    // Encoded as a careless plugin passes it on (an Authorization header it echoes, bytes it prints as hex).
    for channel in ["text", "json", "failed", "upstream"] {
        for enc in ["basic", "base64url", "hex", "HEX"] {
            let r = call(&host, &p, channel, enc).await;
            let seen = visible(&r);
            assert!(seen.contains("[REDACTED]"), "{channel}/{enc}: {seen}");
            assert_clean_encoded(&format!("{channel}/{enc}"), &seen, enc);
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

#[tokio::test]
async fn resource_blobs_never_show_the_secret_not_even_among_bytes_that_are_not_text() {
    let host = host();
    let p = fx::load(&host, fx::LEAKY_BLOB, &["config"], |s| {
        s.secrets.insert("token".into(), SECRET.into());
    })
    .await;
    for path in ["binary", "text-bytes"] {
        let r = host.read_resource(&p, path).await;
        let contents = r.result.unwrap_or_else(|e| panic!("{path}: {e}"));
        let [content] = contents.as_slice() else {
            panic!("{path}: {contents:?}");
        };
        let plughost::call::Body::Blob(bytes) = &content.body else {
            panic!("{path} is not a blob: {:?}", content.body);
        };
        let shown = String::from_utf8_lossy(bytes);
        assert!(shown.contains("[REDACTED]"), "{path}: {shown}");
        assert_clean(path, &shown);
        assert_clean(path, &format!("{:?}", r.report));
    }
}
