//! Installed plugins through the registry and the catalog: grants and limits come from the registry, and a change
//! there is picked up by `refresh()` without restarting the host, while calls already running finish on the old
//! version.

use std::sync::Arc;

use plughost::registry::{
    InstallRequest, KeyPair, PluginLimits, Provenance, Registry, SignatureFile,
};
use plughost::{CallError, Catalog, Home, Host};
use plughost_tests as fx;
use plughost_tests::text;

struct Env {
    _dir: tempfile::TempDir,
    host: Host,
    registry: Arc<Registry>,
    key: KeyPair,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = Host::open(&Home::at(dir.path())).expect("host");
    let registry = Arc::new(Registry::open(dir.path()).expect("registry"));
    let key = KeyPair::generate("acme").expect("key");
    registry.trust(&key.public()).expect("trust");
    Env {
        _dir: dir,
        host,
        registry,
        key,
    }
}

/// Signs and installs a fixture the way `plughost install --yes` does.
async fn install(e: &Env, path: &str, grants: &[&str], upgrade: bool) {
    let bytes = fx::bytes(path);
    let (component, info, _) = e.host.compile(&bytes, || {}).expect("compile");
    let manifest = e.host.describe(&component).await.expect("describe");
    let caps: Vec<String> = info
        .capabilities
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let sig = SignatureFile::sign(
        &e.key,
        &bytes,
        &manifest.id,
        &manifest.version,
        caps.clone(),
    );
    let verified = e.registry.verify(&bytes, &sig).expect("verify");
    let req = InstallRequest {
        provenance: Provenance::Signed(verified),
        bytes: &bytes,
        plugin: &manifest.id,
        version: &manifest.version,
        manifest_json: serde_json::to_string(&manifest).expect("manifest json"),
        imports: caps,
        grants: grants.iter().map(|s| s.to_string()).collect(),
        source: None,
    };
    if upgrade {
        e.registry.upgrade(req).expect("upgrade");
    } else {
        e.registry.install(req).expect("install");
    }
}

#[tokio::test]
async fn grant_changes_relink_without_a_restart() {
    let e = env();
    install(&e, fx::BASIC, &["state", "log"], false).await;
    let catalog = Catalog::open(e.host.clone(), e.registry.clone())
        .await
        .expect("catalog");
    let before = catalog.get("fixture-basic").expect("loaded");
    let r = before
        .call(catalog.host(), "echo", r#"{"text":"hi"}"#)
        .await;
    assert_eq!(text(&r), "hi");
    assert!(
        !catalog.refresh().await.expect("refresh"),
        "nothing changed"
    );

    // Revoke `log`: the plugin imports it, so it is unloaded with a reason, not half-linked.
    e.registry
        .set_grants("fixture-basic", &["state".into()])
        .expect("revoke");
    assert!(catalog.refresh().await.expect("refresh"));
    assert!(catalog.get("fixture-basic").is_none());
    let problems = catalog.problems();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].reason.contains("log"), "{}", problems[0].reason);

    // The entry a running call holds still works: drain, not yank.
    let r = before
        .call(catalog.host(), "echo", r#"{"text":"still"}"#)
        .await;
    assert_eq!(text(&r), "still");

    // Grant it again: loaded again, with a bigger state quota now.
    e.registry
        .set_grants("fixture-basic", &["state:1MiB".into(), "log".into()])
        .expect("grant");
    assert!(catalog.refresh().await.expect("refresh"));
    let after = catalog.get("fixture-basic").expect("loaded again");
    assert!(!Arc::ptr_eq(&before, &after));
    assert_eq!(after.plugin.grants.state_quota(), Some(1 << 20));
}

#[tokio::test]
async fn limits_from_the_registry_apply_and_concurrency_is_enforced() {
    let e = env();
    install(&e, fx::BASIC, &["state", "log"], false).await;
    e.registry
        .set_limits(
            "fixture-basic",
            PluginLimits {
                fuel: Some(10_000_000),
                concurrency: Some(1),
                ..Default::default()
            },
        )
        .expect("limits");
    let catalog = Catalog::open(e.host.clone(), e.registry.clone())
        .await
        .expect("catalog");
    let p = catalog.get("fixture-basic").expect("loaded");
    let r = p.call(catalog.host(), "spin", "{}").await;
    assert!(matches!(
        r.result,
        Err(CallError::OutOfFuel { limit: 10_000_000 })
    ));
    assert_eq!(r.report.fuel_limit, 10_000_000);

    // One call sleeping in a host call holds the only slot; a second one is refused as busy, at once.
    let slow = {
        let p = p.clone();
        let host = catalog.host().clone();
        tokio::spawn(async move { p.call(&host, "sleep", r#"{"ms":400}"#).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let busy = p.call(catalog.host(), "echo", r#"{"text":"x"}"#).await;
    assert!(
        matches!(busy.result, Err(CallError::Busy { limit: 1, .. })),
        "{:?}",
        busy.result
    );
    assert_eq!(busy.report.fuel_used, 0);
    let slow = slow.await.expect("join");
    assert_eq!(text(&slow), "woke");
    let again = p.call(catalog.host(), "echo", r#"{"text":"x"}"#).await;
    assert_eq!(text(&again), "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_limit_a_plugin_runs_at_most_the_default_concurrency() {
    let e = env();
    install(&e, fx::BASIC, &["state", "log"], false).await;
    // Room in the memory budget for every call, so only the concurrency limit can refuse one.
    let mut host = e.host.clone();
    host.set_memory_budget(1 << 40);
    let catalog = Catalog::open(host, e.registry.clone())
        .await
        .expect("catalog");
    let p = catalog.get("fixture-basic").expect("loaded");
    let n = plughost::runtime::limits::DEFAULT_CONCURRENCY as usize;
    assert_eq!(n, 64);
    // One more call than the default, all at once, each holding its slot for 800 ms.
    let calls = (0..=n).map(|_| p.call(catalog.host(), "sleep", r#"{"ms":800}"#));
    let results = futures_util::future::join_all(calls).await;
    let woke = results.iter().filter(|r| text_is(r, "woke")).count();
    let busy: Vec<_> = results
        .iter()
        .filter(|r| matches!(r.result, Err(CallError::Busy { limit: 64, .. })))
        .collect();
    assert_eq!((woke, busy.len()), (n, 1), "{results:#?}");
}

fn text_is(r: &plughost::CallResult, want: &str) -> bool {
    r.result.is_ok() && text(r) == want
}

#[tokio::test]
async fn upgrade_and_rollback_swap_the_running_version() {
    let e = env();
    install(&e, fx::STATE_B, &["state"], false).await;
    let catalog = Catalog::open(e.host.clone(), e.registry.clone())
        .await
        .expect("catalog");
    let v1 = catalog.get("fixture-state-b").expect("v1");
    assert!(v1.plugin.manifest.tool("version").is_none());

    install(&e, fx::STATE_B_V2, &["state", "log"], true).await;
    assert!(catalog.refresh().await.expect("refresh"));
    let v2 = catalog.get("fixture-state-b").expect("v2");
    assert_eq!(
        text(&v2.call(catalog.host(), "version", "{}").await),
        "0.2.0"
    );

    e.registry.rollback("fixture-state-b").expect("rollback");
    assert!(catalog.refresh().await.expect("refresh"));
    let back = catalog.get("fixture-state-b").expect("back");
    assert_eq!(back.record.version, "0.1.0");
    assert_eq!(back.record.grants, vec!["state"]);
    let r = back.call(catalog.host(), "version", "{}").await;
    assert!(matches!(r.result, Err(CallError::UnknownTool { .. })));
}

#[tokio::test]
async fn a_revoked_publisher_key_unloads_its_plugins() {
    let e = env();
    install(&e, fx::STATE_B, &["state"], false).await;
    let catalog = Catalog::open(e.host.clone(), e.registry.clone())
        .await
        .expect("catalog");
    assert!(catalog.get("fixture-state-b").is_some());
    e.registry.revoke_key("acme").expect("revoke");
    catalog.refresh().await.expect("refresh");
    assert!(catalog.get("fixture-state-b").is_none());
    assert!(catalog.problems()[0].reason.contains("revoked"));
}

/// The standby instance prepared for a plugin belongs to the plugin as it was linked: after a grant change the
/// next call runs under the new grants, never in the instance prepared under the old ones.
#[tokio::test]
async fn a_standby_prepared_before_a_grant_change_is_not_used_after_it() {
    let e = env();
    install(&e, fx::BASIC, &["state:1MiB", "log"], false).await;
    let catalog = Catalog::open(e.host.clone(), e.registry.clone())
        .await
        .expect("catalog");
    let stats = catalog.host().stats().clone();
    let before = catalog.get("fixture-basic").expect("loaded");
    let put = |key: &str| format!(r#"{{"key":"{key}","value":"{}"}}"#, "v".repeat(2000));
    let r = before.call(catalog.host(), "state_put", &put("a")).await;
    assert_eq!(text(&r), "stored");

    // The standby thread prepares the next instance during the pause (it looks every few milliseconds).
    fx::standby_ready(catalog.host(), 1, std::time::Duration::from_secs(10)).await;

    // Shrink the state quota below what is stored: the prepared instance was linked with 1 MiB.
    e.registry
        .set_grants("fixture-basic", &["state:1KiB".into(), "log".into()])
        .expect("regrant");
    assert!(catalog.refresh().await.expect("refresh"));
    let after = catalog.get("fixture-basic").expect("reloaded");
    let hits = stats.snapshot().standby_hits;
    let r = after.call(catalog.host(), "state_put", &put("b")).await;
    match &r.result {
        Err(CallError::Unavailable { message }) => assert!(message.contains("quota"), "{message}"),
        other => panic!("the new 1 KiB quota must apply, got {other:?}"),
    }
    assert_eq!(stats.snapshot().standby_hits, hits, "old standby used");

    // A caller still holding the old entry (a call in flight at the change) gets the standby made for it.
    let r = before.call(catalog.host(), "count", "{}").await;
    assert_eq!(text(&r), "1");
    assert_eq!(stats.snapshot().standby_hits, hits + 1);
}

/// Several plugins load at once (one per core): each entry gets its own component, grants and manifest, the tools
/// the gateway lists are the ones the component's `describe()` returns (stored at install, not asked again at
/// start), and a plugin that cannot be linked is a problem of its own while the others load.
#[tokio::test]
async fn plugins_load_in_parallel_each_with_its_own_manifest_and_problems() {
    let e = env();
    install(&e, fx::BASIC, &["state", "log"], false).await;
    install(&e, fx::STATE_B, &["state"], false).await;
    install(&e, fx::EVENTS, &["ledger", "metrics"], false).await;
    install(&e, fx::LEAN, &[], false).await;
    install(&e, fx::LEAN_LOG, &[], false).await; // imports `log`, not granted: not loaded
    let catalog = Catalog::open(e.host.clone(), e.registry.clone())
        .await
        .expect("catalog");
    let loaded: Vec<String> = catalog
        .entries()
        .iter()
        .map(|e| e.record.id.clone())
        .collect();
    assert_eq!(
        loaded,
        [
            "fixture-basic",
            "fixture-events",
            "fixture-lean",
            "fixture-state-b"
        ]
    );
    let problems = catalog.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].id, "fixture-lean-log");
    assert!(problems[0].reason.contains("log"), "{}", problems[0].reason);
    for (id, path) in [
        ("fixture-basic", fx::BASIC),
        ("fixture-events", fx::EVENTS),
        ("fixture-lean", fx::LEAN),
        ("fixture-state-b", fx::STATE_B),
    ] {
        let entry = catalog.get(id).expect("loaded");
        let (component, _, _) = e.host.compile(&fx::bytes(path), || {}).expect("compile");
        let described = e.host.describe(&component).await.expect("describe");
        assert_eq!(
            serde_json::to_value(&entry.plugin.manifest).expect("json"),
            serde_json::to_value(&described).expect("json"),
            "{id}"
        );
        assert_eq!(entry.plugin.manifest.id, id);
        assert_eq!(
            entry.record.digest,
            format!("blake3:{}", entry.plugin.info.digest),
            "{id} runs its own component"
        );
    }
    let r = catalog
        .get("fixture-lean")
        .expect("lean")
        .call(catalog.host(), "echo", r#"{"text":"par"}"#)
        .await;
    assert_eq!(text(&r), "par");
}
