//! A hostile plugin gets a typed, bounded answer: too many blocks, output that grows when serialized, deeply nested
//! JSON and huge error messages are refused or cut before the host builds its own copy, and the host's own peak
//! memory (VmHWM) shows it. A WASI `exit(n)` is its own outcome with the code.

use tokio::sync::Mutex;

use plughost::{CallError, Host, LoadedPlugin, Outcome};
use plughost_tests as fx;
use plughost_tests::{load, text};

/// Peak-memory measurements are per process: one call at a time in this file.
static SERIAL: Mutex<()> = Mutex::const_new(());

fn host() -> Host {
    Host::ephemeral().unwrap_or_else(|e| panic!("host: {e}"))
}

async fn flood(host: &Host) -> LoadedPlugin {
    load(host, fx::FLOOD, &[], |_| {}).await
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Runs `f` and returns how far the process's peak RSS rose above its RSS before (MiB).
async fn peak_rise_mib<T>(f: impl std::future::Future<Output = T>) -> (T, u64) {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let before = status_kib("VmRSS:");
    let out = f.await;
    let peak = status_kib("VmHWM:");
    (out, peak.saturating_sub(before) / 1024)
}

#[tokio::test]
async fn a_flood_of_empty_blocks_is_refused_by_count_without_a_host_copy() {
    let _g = SERIAL.lock().await;
    let host = host();
    let p = flood(&host).await;
    // Warm the instance path once so the measurement sees the call, not the first instantiation.
    assert_eq!(text(&host.call(&p, "blocks", r#"{"n":1000}"#).await), "");
    let (r, rise) = peak_rise_mib(host.call(&p, "blocks", r#"{"n":2000000}"#)).await;
    eprintln!("peak RSS rise for 2,000,000 empty blocks: {rise} MiB");
    assert_eq!(
        r.result,
        Err(CallError::OutputTooManyBlocks {
            blocks: 2_000_000,
            limit: 1000
        })
    );
    assert_eq!(
        r.report.outcome,
        Outcome::OutputTooManyBlocks { blocks: 2_000_000 }
    );
    // The guest's own list (12 bytes a block, grown by doubling) plus wasmtime's lifted copy (32 bytes a block,
    // bounded by its 128 MiB hostcall fuel): ~115 MiB. Building `Content` values as well made it ~175 MiB.
    assert!(rise < 145, "peak RSS rose {rise} MiB");
}

#[tokio::test]
async fn output_is_measured_serialized_so_escapes_count() {
    let _g = SERIAL.lock().await;
    let host = host();
    let p = flood(&host).await;
    // 1,000,000 bytes of text, 6,000,000 once each U+0001 is escaped: over the 4 MiB default.
    let (r, rise) = peak_rise_mib(host.call(&p, "escapes", r#"{"n":1000000}"#)).await;
    match r.result {
        Err(CallError::OutputTooLarge { bytes, limit }) => {
            assert_eq!(limit, 4 << 20);
            assert!(bytes > 6_000_000 && bytes < 6_000_100, "{bytes}");
        }
        other => panic!("expected output-too-large, got {other:?}"),
    }
    assert!(rise < 64, "peak RSS rose {rise} MiB");
}

#[tokio::test]
async fn deep_json_is_a_typed_error_not_a_stack_overflow() {
    let _g = SERIAL.lock().await;
    let host = host();
    let p = flood(&host).await;
    for depth in [101, 120, 1_000_000] {
        let r = host.call(&p, "deep", &format!(r#"{{"n":{depth}}}"#)).await;
        match &r.result {
            Err(CallError::Failed { message }) => assert!(
                message.contains("nested more than 100 levels deep"),
                "{message}"
            ),
            other => panic!("depth {depth}: expected a typed failure, got {other:?}"),
        }
    }
    assert_eq!(
        text(&host.call(&p, "deep", r#"{"n":100}"#).await).len(),
        200
    );
}

#[tokio::test]
async fn a_huge_error_message_is_cut_at_64_kib_with_a_note() {
    let _g = SERIAL.lock().await;
    let host = host();
    let p = flood(&host).await;
    let (r, rise) = peak_rise_mib(host.call(&p, "fail", r#"{"n":20000000}"#)).await;
    let Err(CallError::Failed { message }) = &r.result else {
        panic!("expected failed, got {:?}", r.result);
    };
    let cut = 20_000_000 - (64 << 10);
    assert_eq!(
        message.as_str(),
        format!("{}… [cut: {cut} more bytes]", "x".repeat(64 << 10))
    );
    assert!(
        CallError::Failed {
            message: message.clone()
        }
        .to_string()
        .len()
            < (64 << 10) + 100
    );
    // The guest's 20 MB and wasmtime's lifted copy; nothing the size of the message is built after that.
    assert!(rise < 80, "peak RSS rose {rise} MiB");
    // Short messages are untouched.
    assert_eq!(
        host.call(&p, "fail", r#"{"n":3}"#).await.result,
        Err(CallError::Failed {
            message: "xxx".into()
        })
    );
}

#[tokio::test]
async fn wasi_exit_is_a_typed_outcome_with_its_code() {
    let _g = SERIAL.lock().await;
    let host = host();
    let p = flood(&host).await;
    // Rust's `process::exit(3)` on wasip2 calls `wasi:cli/exit.exit(err)`: stable WASI 0.2 carries only
    // success or failure, so the code the host sees is 1.
    let r = host.call(&p, "exit", r#"{"n":3}"#).await;
    assert_eq!(r.result, Err(CallError::Exit { code: 1 }));
    assert_eq!(r.report.outcome, Outcome::Exit { code: 1 });
    assert_eq!(CallError::Exit { code: 1 }.kind(), "exit");
}
