//! The shipped system-info plugin, through the `system` grant only.

use plughost::{Capability, Grants, Host, PluginSettings};
use plughost_tests as fx;
use serde_json::Value;

async fn plugin(host: &Host) -> plughost::LoadedPlugin {
    let grants = Grants::parse(["system"]).unwrap_or_else(|e| panic!("{e}"));
    host.load(&fx::bytes(fx::SYSTEM_INFO), |_| PluginSettings {
        grants,
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .0
}

fn structured(r: &plughost::CallResult) -> Value {
    match &r.result {
        Ok(out) => out
            .structured
            .clone()
            .unwrap_or_else(|| panic!("structured output expected")),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn imports_only_system() {
    let host = Host::ephemeral().unwrap_or_else(|e| panic!("{e}"));
    let p = plugin(&host).await;
    assert_eq!(p.info.capabilities, vec![Capability::System]);
    let names: Vec<&str> = p.manifest.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "system_info",
            "cpu",
            "memory",
            "disks",
            "network",
            "health_check"
        ]
    );
    for t in &p.manifest.tools {
        assert_eq!(
            t.annotations.read_only_hint,
            Some(true),
            "{} is read-only",
            t.name
        );
        assert!(
            t.output_schema.is_some(),
            "{} declares an output schema",
            t.name
        );
    }
}

#[tokio::test]
async fn every_tool_reports_real_machine_facts() {
    let host = Host::ephemeral().unwrap_or_else(|e| panic!("{e}"));
    let p = plugin(&host).await;

    let s = structured(&host.call(&p, "system_info", "{}").await);
    assert_eq!(s["os"]["family"], std::env::consts::OS);
    assert!(s["memory"]["total_bytes"].as_u64().unwrap_or(0) > 0);

    let cpu = structured(&host.call(&p, "cpu", "{}").await);
    let cores = cpu["logical_cores"].as_u64().unwrap_or(0);
    assert!(cores >= 1, "{cpu}");
    assert_eq!(
        cpu["per_core_percent"].as_array().map(Vec::len),
        Some(cores as usize)
    );

    let mem = structured(&host.call(&p, "memory", "{}").await);
    assert!(mem["available_bytes"].as_u64() <= mem["total_bytes"].as_u64());

    let disks = structured(&host.call(&p, "disks", "{}").await);
    assert!(
        disks["disks"].as_array().is_some_and(|d| !d.is_empty()),
        "{disks}"
    );

    let net = structured(&host.call(&p, "network", "{}").await);
    assert!(
        net["interfaces"]
            .as_array()
            .is_some_and(|i| i.iter().any(|n| n["name"] == "lo")),
        "{net}"
    );
}

#[tokio::test]
async fn health_check_gives_a_verdict_with_reasons() {
    let host = Host::ephemeral().unwrap_or_else(|e| panic!("{e}"));
    let p = plugin(&host).await;

    let lenient = structured(
        &host
            .call(
                &p,
                "health_check",
                r#"{"cpu_percent":100,"memory_percent":100,"disk_percent":100}"#,
            )
            .await,
    );
    assert_eq!(lenient["verdict"], "healthy", "{lenient}");
    assert_eq!(lenient["reasons"], Value::Array(vec![]));

    // Memory and the fullest disk are always above 0% used, so zero thresholds must fail with reasons.
    let strict = structured(
        &host
            .call(
                &p,
                "health_check",
                r#"{"cpu_percent":100,"memory_percent":0,"disk_percent":0}"#,
            )
            .await,
    );
    assert_eq!(strict["verdict"], "unhealthy");
    let reasons: Vec<String> = strict["reasons"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        reasons.iter().any(|r| r.starts_with("memory usage")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with("disk ")),
        "{reasons:?}"
    );

    let r = host
        .call(&p, "health_check", r#"{"cpu_percent":150}"#)
        .await;
    assert!(
        matches!(r.result, Err(plughost::CallError::InvalidArguments { .. })),
        "{:?}",
        r.result
    );
    let r = host.call(&p, "health_check", r#"{"cpu":1}"#).await;
    assert!(
        matches!(r.result, Err(plughost::CallError::InvalidArguments { .. })),
        "unknown fields are refused: {:?}",
        r.result
    );
}
