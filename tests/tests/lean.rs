//! Lean builds (`lean = true`: Rust for wasm32-unknown-unknown, no WASI): the component imports nothing, the SDK's
//! arena allocator hands out correct memory inside and past the arena, and the runtime's rules hold as for any
//! other component (memory cap, traps, a fresh instance per call, no grant needed for nothing).

use plughost::{CallError, Host, LoadedPlugin, Outcome, PluginSettings};
use plughost_tests as fx;
use plughost_tests::{assert_memory_limit, load, text};

async fn lean(host: &Host, tweak: impl FnOnce(&mut PluginSettings)) -> LoadedPlugin {
    load(host, fx::LEAN, &[], tweak).await
}

/// What `churn` computes, recomputed here: blocks of 1..=4096 bytes with a known pattern, until `bytes`.
fn churn_expected(bytes: usize) -> String {
    let (mut total, mut i, mut sum, mut blocks) = (0usize, 0usize, 0u64, 0usize);
    while total < bytes {
        let len = (i % 4096) + 1;
        for j in 0..len {
            sum = sum.wrapping_mul(31).wrapping_add(((i + j) % 251) as u64);
        }
        total += len;
        blocks += 1;
        i += 1;
    }
    format!("{blocks} blocks, {total} bytes, sum {sum}")
}

/// The initial size of the (one) linear memory defined in the component's core module.
fn initial_memory_bytes(component: &[u8]) -> u64 {
    let mut memories = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        if let Ok(wasmparser::Payload::MemorySection(s)) = payload {
            for m in s {
                memories.push(m.unwrap_or_else(|e| panic!("{e}")).initial * 65536);
            }
        }
    }
    assert_eq!(memories.len(), 1, "one memory: {memories:?}");
    memories[0]
}

#[tokio::test]
async fn a_lean_component_imports_nothing_and_echoes() {
    let host = Host::ephemeral().unwrap_or_else(|e| panic!("host: {e}"));
    let (_, info, _) = host
        .compile(&fx::bytes(fx::LEAN), || {})
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(info.capabilities.is_empty(), "{info:?}");
    assert!(info.wasi_imports.is_empty(), "{info:?}");
    assert_eq!(info.language, plughost::runtime::plugin::Language::Rust);

    let p = lean(&host, |_| {}).await;
    let r = host.call(&p, "echo", r#"{"text":"lean"}"#).await;
    assert_eq!(text(&r), "lean");
    assert_eq!(r.report.outcome, Outcome::Ok);
    assert!(r.report.fuel_used > 0, "{:?}", r.report);
    assert!(r.report.peak_memory_bytes >= 64 << 10, "{:?}", r.report);
    assert_eq!(r.report.host_calls.total(), 0);
    // Bad arguments are still a typed error.
    let r = host.call(&p, "echo", r#"{"txt":"lean"}"#).await;
    assert!(
        matches!(&r.result, Err(CallError::InvalidArguments { .. })),
        "{:?}",
        r.result
    );
}

#[tokio::test]
async fn the_arena_allocator_serves_small_and_large_allocations_correctly() {
    let host = Host::ephemeral().unwrap_or_else(|e| panic!("host: {e}"));
    let p = lean(&host, |_| {}).await;
    // 16 KiB fits in the arena; 4 MiB goes far past it, into dlmalloc (memory grows).
    let small = host.call(&p, "churn", r#"{"bytes":16384}"#).await;
    assert_eq!(text(&small), churn_expected(16384));
    let large = host.call(&p, "churn", r#"{"bytes":4194304}"#).await;
    assert_eq!(text(&large), churn_expected(4 << 20));
    // What fits in the arena never grows memory: an echo and the small call peak at the module's initial memory.
    // (Without the arena, Rust's allocator on this target grows memory on its first allocation.)
    let initial = initial_memory_bytes(&fx::bytes(fx::LEAN));
    let echo = host.call(&p, "echo", r#"{"text":"x"}"#).await;
    assert_eq!(echo.report.peak_memory_bytes, initial, "{:?}", echo.report);
    assert_eq!(
        small.report.peak_memory_bytes, initial,
        "{:?}",
        small.report
    );
    assert!(
        large.report.peak_memory_bytes >= small.report.peak_memory_bytes + (4 << 20) - (128 << 10),
        "small {} large {}",
        small.report.peak_memory_bytes,
        large.report.peak_memory_bytes
    );
}

#[tokio::test]
async fn lean_limits_and_traps_are_typed_and_every_call_is_fresh() {
    let host = Host::ephemeral().unwrap_or_else(|e| panic!("host: {e}"));
    let cap = 16u64 << 20;
    let p = lean(&host, |s| s.limits.memory_bytes = cap).await;
    // Past the arena, the memory cap stops the guest as for any component.
    let r = host.call(&p, "memory_bomb", "{}").await;
    assert_memory_limit(&r, cap);
    assert!(r.report.peak_memory_bytes <= cap, "{:?}", r.report);
    // A panic ends in a trap (its message is not reported: a lean build has no stderr).
    let r = host.call(&p, "panic", "{}").await;
    match &r.result {
        Err(CallError::Trap { message }) => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(
        matches!(r.report.outcome, Outcome::Trap { .. }),
        "{:?}",
        r.report
    );
    // The host keeps serving, and each call has a fresh instance (and a fresh arena).
    for _ in 0..20 {
        assert_eq!(text(&host.call(&p, "count", "{}").await), "1");
        assert_eq!(
            text(&host.call(&p, "churn", r#"{"bytes":100000}"#).await),
            churn_expected(100_000)
        );
    }
}

#[tokio::test]
async fn with_panic_log_a_lean_panic_reaches_the_log() {
    let logs = plughost_tests::logs::capture();
    let host = Host::ephemeral().unwrap_or_else(|e| panic!("host: {e}"));
    let bytes = fx::bytes(fx::LEAN_LOG);
    let (_, info, _) = host
        .compile(&bytes, || {})
        .unwrap_or_else(|e| panic!("{e}"));
    // `panic-log` costs one import, `log`, and with it the need for its grant.
    assert_eq!(
        info.capabilities,
        vec![plughost::Capability::Log],
        "{info:?}"
    );
    assert!(info.wasi_imports.is_empty(), "{info:?}");
    let refused = host
        .load(&bytes, |_| PluginSettings::default())
        .await
        .err()
        .unwrap_or_else(|| panic!("loaded without the log grant"));
    assert!(refused.to_string().contains("log"), "{refused}");

    let p = load(&host, fx::LEAN_LOG, &["log"], |_| {}).await;
    let r = host.call(&p, "panic", "{}").await;
    assert!(
        matches!(&r.result, Err(CallError::Trap { .. })),
        "{:?}",
        r.result
    );
    assert_eq!(r.report.log_lines, 1, "{:?}", r.report);
    let text = logs.text();
    assert!(
        text.contains("plugin panicked: ")
            && text.contains("the lean-log fixture panicked on purpose"),
        "{text}"
    );
    assert_eq!(
        self::text(&host.call(&p, "echo", r#"{"text":"after"}"#).await),
        "after"
    );
}
