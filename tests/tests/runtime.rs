//! The runtime's rules, each checked with a real component: limits end in typed outcomes, the host keeps serving,
//! grants are required, state is isolated, and the report's numbers are sane.

use std::time::Duration;

use plughost::{CallError, Grants, Host, LoadError, LoadedPlugin, Outcome, PluginSettings};
use plughost_tests as fx;
use plughost_tests::{assert_memory_limit, load, text};

fn host() -> Host {
    Host::ephemeral().unwrap_or_else(|e| panic!("host: {e}"))
}

async fn basic(host: &Host, tweak: impl FnOnce(&mut PluginSettings)) -> LoadedPlugin {
    load(host, fx::BASIC, &["state", "log"], tweak).await
}

#[tokio::test]
async fn echo_succeeds_and_the_report_is_sane() {
    let host = host();
    let p = basic(&host, |_| {}).await;
    let r = host.call(&p, "echo", r#"{"text":"hello"}"#).await;
    assert_eq!(text(&r), "hello");
    let rep = &r.report;
    assert_eq!(rep.outcome, Outcome::Ok);
    assert_eq!(
        (rep.plugin.as_str(), rep.tool.as_str()),
        ("fixture-basic", "echo")
    );
    assert!(
        rep.fuel_used > 0 && rep.fuel_used < rep.fuel_limit,
        "fuel used {}",
        rep.fuel_used
    );
    // A Rust guest starts with at least one 64 KiB page (in practice ~1 MiB of stack + data).
    assert!(
        rep.peak_memory_bytes >= 64 << 10,
        "peak memory {}",
        rep.peak_memory_bytes
    );
    assert!(rep.peak_memory_bytes <= rep.memory_limit_bytes);
    assert!(rep.wall_time > Duration::ZERO && rep.wall_time < rep.timeout);
    assert_eq!(rep.host_calls.total(), 0, "echo calls no host interface");
}

#[tokio::test]
async fn out_of_fuel_is_typed_and_reports_the_budget() {
    let host = host();
    let p = basic(&host, |s| s.limits.fuel = 10_000_000).await;
    let r = host.call(&p, "spin", "{}").await;
    assert_eq!(r.result, Err(CallError::OutOfFuel { limit: 10_000_000 }));
    assert_eq!(r.report.outcome, Outcome::OutOfFuel);
    assert_eq!(r.report.fuel_used, 10_000_000, "the whole budget is spent");
    // The host keeps serving the same plugin.
    assert_eq!(
        text(&host.call(&p, "echo", r#"{"text":"after"}"#).await),
        "after"
    );
}

#[tokio::test]
async fn memory_cap_is_typed_and_peak_stays_under_it() {
    let host = host();
    let cap = 32u64 << 20;
    let p = basic(&host, |s| s.limits.memory_bytes = cap).await;
    let r = host.call(&p, "memory_bomb", "{}").await;
    assert_memory_limit(&r, cap);
    assert!(matches!(r.report.outcome, Outcome::MemoryLimit { .. }));
    assert!(
        r.report.peak_memory_bytes <= cap && r.report.peak_memory_bytes > cap / 2,
        "peak {}",
        r.report.peak_memory_bytes
    );
    assert_eq!(
        text(&host.call(&p, "echo", r#"{"text":"after"}"#).await),
        "after"
    );
}

#[tokio::test]
async fn deadline_stops_a_guest_in_its_own_code() {
    let host = host();
    let p = basic(&host, |s| {
        s.limits.fuel = u64::MAX / 2;
        s.limits.timeout = Duration::from_millis(300);
    })
    .await;
    let r = host.call(&p, "spin", "{}").await;
    assert_eq!(r.result, Err(CallError::Deadline { timeout_ms: 300 }));
    assert_eq!(r.report.outcome, Outcome::Deadline);
    assert!(r.report.wall_time >= Duration::from_millis(300));
    assert!(r.report.fuel_used > 0);
}

#[tokio::test]
async fn deadline_stops_a_guest_that_starts_after_the_host_sat_idle() {
    let host = host();
    // Enough fuel for seconds of spinning, so a guest the deadline missed ends out of fuel instead of hanging.
    let p = basic(&host, |s| {
        s.limits.fuel = 20_000_000_000;
        s.limits.timeout = Duration::from_millis(300);
    })
    .await;
    // The epoch ticker parks after a second with no guest; the call must wake it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = host.call(&p, "spin", "{}").await;
    assert_eq!(r.result, Err(CallError::Deadline { timeout_ms: 300 }));
    assert_eq!(r.report.outcome, Outcome::Deadline);
}

#[tokio::test]
async fn deadline_stops_a_guest_blocked_in_a_host_call() {
    let host = host();
    let p = basic(&host, |s| s.limits.timeout = Duration::from_millis(300)).await;
    let r = host.call(&p, "sleep", r#"{"ms":60000}"#).await;
    assert_eq!(r.result, Err(CallError::Deadline { timeout_ms: 300 }));
    assert!(
        r.report.wall_time < Duration::from_secs(30),
        "must not wait for the sleep: {:?}",
        r.report.wall_time
    );
    // A short sleep within the deadline works, so the path itself is fine.
    assert_eq!(text(&host.call(&p, "sleep", r#"{"ms":10}"#).await), "woke");
}

#[tokio::test]
async fn a_trap_is_isolated_and_the_next_call_succeeds() {
    let host = host();
    let p = basic(&host, |_| {}).await;
    let r = host.call(&p, "trap", "{}").await;
    match &r.result {
        Err(CallError::Trap { message }) => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    // The panic message went to stderr, which the host routes to the plugin's log.
    assert!(
        r.report.log_lines >= 1,
        "stderr should be logged: {:?}",
        r.report
    );
    assert_eq!(
        text(&host.call(&p, "echo", r#"{"text":"still here"}"#).await),
        "still here"
    );
}

#[tokio::test]
async fn deep_recursion_traps_cleanly() {
    let host = host();
    let p = basic(&host, |_| {}).await;
    let r = host.call(&p, "recursion", r#"{"depth":100000000}"#).await;
    assert!(
        matches!(r.result, Err(CallError::Trap { .. })),
        "{:?}",
        r.result
    );
    // recurse(10) adds n for n in 1..=10.
    assert_eq!(
        text(&host.call(&p, "recursion", r#"{"depth":10}"#).await),
        "55"
    );
}

#[tokio::test]
async fn huge_output_is_refused_with_its_size() {
    let host = host();
    let p = basic(&host, |s| s.limits.max_output_bytes = 1 << 20).await;
    let r = host.call(&p, "huge_output", r#"{"bytes":2000000}"#).await;
    assert_eq!(
        r.result,
        Err(CallError::OutputTooLarge {
            // The text plus its JSON structure.
            bytes: 2_000_040,
            limit: 1 << 20
        })
    );
    assert_eq!(
        text(&host.call(&p, "huge_output", r#"{"bytes":10}"#).await),
        "x".repeat(10)
    );
}

#[tokio::test]
async fn typed_tool_errors_and_bad_arguments() {
    let host = host();
    let p = basic(&host, |_| {}).await;
    let r = host.call(&p, "fail", r#"{"text":"no such zone"}"#).await;
    assert_eq!(
        r.result,
        Err(CallError::NotFound {
            message: "no such zone".into()
        })
    );
    assert_eq!(
        r.report.outcome,
        Outcome::ToolError {
            error: "not-found".into()
        }
    );

    let r = host.call(&p, "echo", r#"{"wrong":1}"#).await;
    assert!(
        matches!(r.result, Err(CallError::InvalidArguments { .. })),
        "{:?}",
        r.result
    );
    let r = host.call(&p, "echo", "not json").await;
    assert!(
        matches!(r.result, Err(CallError::InvalidArguments { .. })),
        "{:?}",
        r.result
    );
    let r = host.call(&p, "echo", "[1]").await;
    assert!(
        matches!(r.result, Err(CallError::InvalidArguments { .. })),
        "{:?}",
        r.result
    );
    let r = host.call(&p, "nope", "{}").await;
    assert_eq!(
        r.result,
        Err(CallError::UnknownTool {
            tool: "nope".into()
        })
    );
}

#[tokio::test]
async fn core_module_is_refused_with_a_hint() {
    let host = host();
    let core = wat::parse_str("(module (func (export \"run\")))").unwrap_or_else(|e| panic!("{e}"));
    let err = host.load(&core, |_| PluginSettings::default()).await.err();
    let err = err.unwrap_or_else(|| panic!("a core module must be refused"));
    assert!(matches!(err, LoadError::CoreModule));
    let msg = err.to_string();
    assert!(
        msg.contains("not a component") && msg.contains("wasm32-wasip2"),
        "{msg}"
    );

    let err = host
        .load(b"not wasm at all", |_| PluginSettings::default())
        .await
        .err();
    assert!(matches!(err, Some(LoadError::NotWasm)));
}

#[tokio::test]
async fn wrong_contract_version_is_refused_naming_both() {
    let host = host();
    let err = host
        .load(&fx::bytes(fx::WRONG_VERSION), |_| PluginSettings::default())
        .await
        .err();
    let err = err.unwrap_or_else(|| panic!("a plughost:plugin@1.0.0 component must be refused"));
    assert!(
        matches!(&err, LoadError::IncompatibleVersion { found, expected } if found == "1.0.0" && expected == "0.1.0")
    );
    let msg = err.to_string();
    assert!(msg.contains("@1.0.0") && msg.contains("@0.1.0"), "{msg}");
}

#[tokio::test]
async fn ungranted_imports_are_refused_naming_each_grant() {
    let host = host();
    let err = host
        .load(&fx::bytes(fx::NEEDS_HTTP), |_| PluginSettings::default())
        .await
        .err();
    match err {
        Some(LoadError::MissingGrants { plugin, missing }) => {
            assert_eq!(plugin, "fixture-needs-http");
            assert_eq!(missing, vec![plughost::Capability::Http]);
        }
        other => panic!("expected missing grants, got {other:?}"),
    }
    // Both of fixture-basic's imports are named when neither is granted.
    let err = host
        .load(&fx::bytes(fx::BASIC), |_| PluginSettings::default())
        .await
        .err();
    let msg = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("log, state") && msg.contains("--grant log") && msg.contains("--grant state"),
        "{msg}"
    );
    // One of two is not enough.
    let one = Grants::parse(["state"]).unwrap_or_else(|e| panic!("{e}"));
    let err = host
        .load(&fx::bytes(fx::BASIC), |_| PluginSettings {
            grants: one,
            ..Default::default()
        })
        .await
        .err();
    assert!(
        matches!(err, Some(LoadError::MissingGrants { missing, .. }) if missing == vec![plughost::Capability::Log])
    );
}

#[tokio::test]
async fn describe_runs_with_no_capability_and_the_manifest_is_checked() {
    let host = host();
    let p = basic(&host, |_| {}).await;
    assert_eq!(p.manifest.id, "fixture-basic");
    assert_eq!(
        p.info.capabilities,
        vec![plughost::Capability::Log, plughost::Capability::State]
    );
    let echo = p
        .manifest
        .tool("echo")
        .unwrap_or_else(|| panic!("echo tool"));
    assert_eq!(
        echo.input_schema.get("type").and_then(|t| t.as_str()),
        Some("object")
    );
    assert_eq!(echo.annotations.read_only_hint, Some(true));
}

#[tokio::test]
async fn state_is_isolated_between_plugins_sharing_key_names() {
    let host = host();
    let a = basic(&host, |_| {}).await;
    let b = load(&host, fx::STATE_B, &["state"], |_| {}).await;
    text(
        &host
            .call(&a, "state_put", r#"{"key":"shared","value":"from a"}"#)
            .await,
    );
    text(
        &host
            .call(&b, "state_put", r#"{"key":"shared","value":"from b"}"#)
            .await,
    );
    assert_eq!(
        text(&host.call(&a, "state_get", r#"{"key":"shared"}"#).await),
        "from a"
    );
    assert_eq!(
        text(&host.call(&b, "state_get", r#"{"key":"shared"}"#).await),
        "from b"
    );
    let r = host.call(&a, "state_get", r#"{"key":"shared"}"#).await;
    assert_eq!(r.report.host_calls.get(plughost::Capability::State), 1);
}

#[tokio::test]
async fn state_quota_is_a_typed_error() {
    let host = host();
    let p = load(&host, fx::BASIC, &["state:1KiB", "log"], |_| {}).await;
    let big = "v".repeat(2000);
    let r = host
        .call(
            &p,
            "state_put",
            &format!(r#"{{"key":"k","value":"{big}"}}"#),
        )
        .await;
    match &r.result {
        Err(CallError::Unavailable { message }) => assert!(message.contains("quota"), "{message}"),
        other => panic!("expected a quota error, got {other:?}"),
    }
    assert_eq!(
        text(
            &host
                .call(&p, "state_put", r#"{"key":"k","value":"small"}"#)
                .await
        ),
        "stored"
    );
}

#[tokio::test]
async fn log_lines_are_capped_per_call() {
    let host = host();
    let p = basic(&host, |s| s.limits.max_log_lines = 50).await;
    let r = host.call(&p, "log_flood", r#"{"lines":500}"#).await;
    assert_eq!(text(&r), "logged 500");
    assert_eq!((r.report.log_lines, r.report.log_dropped), (50, 450));
    assert_eq!(r.report.host_calls.get(plughost::Capability::Log), 500);
}

#[tokio::test]
async fn secrets_are_redacted_from_output() {
    let host = host();
    let p = basic(&host, |s| {
        s.secrets
            .insert("api_token".into(), "sekrit-token-123".into());
    })
    .await;
    let r = host
        .call(&p, "echo", r#"{"text":"token is sekrit-token-123"}"#)
        .await;
    assert_eq!(text(&r), "token is [REDACTED]");
}

#[tokio::test]
async fn many_concurrent_calls_each_get_their_own_store() {
    let host = host();
    let p = std::sync::Arc::new(basic(&host, |s| s.limits.fuel = 5_000_000).await);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (host, p) = (host.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            if i % 4 == 0 {
                host.call(&p, "spin", "{}").await.report.outcome
            } else {
                let r = host.call(&p, "echo", &format!(r#"{{"text":"{i}"}}"#)).await;
                assert_eq!(text(&r), i.to_string());
                r.report.outcome
            }
        }));
    }
    let mut fuel_outs = 0;
    for t in tasks {
        match t.await.unwrap_or_else(|e| panic!("{e}")) {
            Outcome::OutOfFuel => fuel_outs += 1,
            Outcome::Ok => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(fuel_outs, 8);
}

/// Waits (bounded, 1 s) until the host's standby thread has prepared `n` instances.
async fn standby_ready(host: &Host, n: i64) {
    fx::standby_ready(host, n, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_standby_instance_is_fresh_and_its_deadline_starts_with_the_call() {
    let host = host();
    let p = basic(&host, |s| s.limits.timeout = Duration::from_millis(300)).await;
    // The first call instantiates inline; after it, the standby thread prepares the next instance.
    assert_eq!(text(&host.call(&p, "count", "{}").await), "1");
    standby_ready(&host, 1).await;
    let before = host.stats().snapshot();
    // Older than the plugin's whole timeout before its call starts: the deadline must count from the call.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = host.call(&p, "count", "{}").await;
    assert_eq!(
        text(&r),
        "1",
        "a standby instance has served no call before"
    );
    let after = host.stats().snapshot();
    assert_eq!(after.standby_hits, before.standby_hits + 1, "{after:?}");
    assert!(r.report.wall_time < Duration::from_millis(300));

    // Same accounting on both paths: the echo costs the same fuel in a standby instance as inline.
    let inline = Host::ephemeral()
        .unwrap_or_else(|e| panic!("host: {e}"))
        .without_standby();
    let q = basic(&inline, |_| {}).await;
    let want = inline.call(&q, "echo", r#"{"text":"x"}"#).await.report;
    drop(p); // and its standby
    assert_eq!(host.stats().snapshot().instances_standby, 0);
    let p = basic(&host, |_| {}).await;
    let _ = host.call(&p, "echo", r#"{"text":"x"}"#).await;
    standby_ready(&host, 1).await;
    let hits = host.stats().snapshot().standby_hits;
    let got = host.call(&p, "echo", r#"{"text":"x"}"#).await.report;
    assert_eq!(host.stats().snapshot().standby_hits, hits + 1);
    assert_eq!(got.fuel_used, want.fuel_used);
    assert_eq!(got.peak_memory_bytes, want.peak_memory_bytes);
    assert_eq!(inline.stats().snapshot().standby_hits, 0);
    assert_eq!(inline.stats().snapshot().instances_standby, 0);
}

#[tokio::test]
async fn limits_hit_in_a_standby_instance_are_typed_and_the_next_one_is_fresh() {
    let host = host();
    let p = basic(&host, |s| {
        s.limits.fuel = 200_000_000;
        s.limits.memory_bytes = 32 << 20;
    })
    .await;
    let _ = host.call(&p, "count", "{}").await;
    for (tool, want) in [
        ("spin", "out-of-fuel"),
        ("memory_bomb", "memory-limit"),
        ("trap", "trap"),
    ] {
        standby_ready(&host, 1).await;
        let hits = host.stats().snapshot().standby_hits;
        let r = host.call(&p, tool, "{}").await;
        assert_eq!(host.stats().snapshot().standby_hits, hits + 1, "{tool}");
        match &r.result {
            Err(e) => assert_eq!(e.kind(), want, "{tool}: {e}"),
            Ok(_) => panic!("{tool} succeeded"),
        }
        standby_ready(&host, 1).await;
        assert_eq!(
            text(&host.call(&p, "count", "{}").await),
            "1",
            "after {tool}"
        );
    }
    // A plugin relinked under other limits never gets a standby built for the old ones.
    let q = p.with_limits(plughost::Limits {
        fuel: 300_000_000,
        ..p.limits
    });
    standby_ready(&host, 1).await;
    let hits = host.stats().snapshot().standby_hits;
    assert_eq!(text(&host.call(&q, "count", "{}").await), "1");
    assert_eq!(host.stats().snapshot().standby_hits, hits);
}

#[tokio::test]
async fn count_proves_every_call_gets_a_fresh_instance() {
    let host = host();
    let p = std::sync::Arc::new(basic(&host, |_| {}).await);
    // Back to back and concurrently: inline and standby instances alike have served no call before.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (host, p) = (host.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..50 {
                out.push(text(&host.call(&p, "count", "{}").await));
                tokio::task::yield_now().await;
            }
            out
        }));
    }
    for t in tasks {
        for n in t.await.unwrap_or_else(|e| panic!("{e}")) {
            assert_eq!(n, "1");
        }
    }
}
