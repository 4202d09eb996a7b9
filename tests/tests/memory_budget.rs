//! Many memory-hungry calls at once cannot add up past the host's guest-memory budget: each call reserves its
//! plugin's whole memory cap before the guest runs, and a call that does not fit is refused at once as `busy`
//! (nothing ran, nothing used). The host's own peak RSS shows the bound.

use futures_util::future::join_all;
use tokio::sync::Mutex;

use plughost::{CallError, CallResult, Host, Outcome};
use plughost_tests as fx;
use plughost_tests::load;

/// RSS measurements are per process: one test at a time in this file.
static SERIAL: Mutex<()> = Mutex::const_new(());

const MIB: u64 = 1 << 20;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn busy_count(results: &[CallResult]) -> usize {
    results
        .iter()
        .filter(|r| matches!(r.result, Err(CallError::MemoryBusy { .. })))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_budget_are_busy_and_the_reservation_comes_back() {
    let _g = SERIAL.lock().await;
    let mut host = Host::ephemeral().expect("host");
    host.set_memory_budget(3 * 64 * MIB);
    let p = load(&host, fx::FLOOD, &[], |s| s.limits.memory_bytes = 64 * MIB).await;

    // Eight calls at once that each hold their instance for 600 ms: three caps fit in the budget.
    let calls = (0..8).map(|_| host.call(&p, "hold", r#"{"n":1,"ms":600}"#));
    let results = join_all(calls).await;
    let ran = results.iter().filter(|r| r.result.is_ok()).count();
    assert_eq!((ran, busy_count(&results)), (3, 5), "{results:#?}");
    for r in results.iter().filter(|r| r.result.is_err()) {
        assert_eq!(
            r.result,
            Err(CallError::MemoryBusy {
                needed: 64 * MIB,
                in_flight: 192 * MIB,
                budget: 192 * MIB
            })
        );
        assert_eq!(r.report.outcome, Outcome::Busy);
        assert_eq!(r.report.fuel_used, 0, "a refused call runs nothing");
        let msg = r.result.as_ref().expect_err("busy").to_string();
        assert!(
            msg.contains("busy: the host's guest memory is taken") && msg.contains("64.0 MiB"),
            "{msg}"
        );
    }
    // Every reservation was given back: a call fits again.
    assert_eq!(host.memory_budget().in_flight(), 0);
    assert!(
        host.call(&p, "hold", r#"{"n":1,"ms":0}"#)
            .await
            .result
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_whose_cap_exceeds_the_whole_budget_says_how_to_fix_it() {
    let _g = SERIAL.lock().await;
    let mut host = Host::ephemeral().expect("host");
    host.set_memory_budget(32 * MIB);
    let p = load(&host, fx::FLOOD, &[], |s| s.limits.memory_bytes = 64 * MIB).await;
    let r = host.call(&p, "hold", r#"{"n":1,"ms":0}"#).await;
    match &r.result {
        Err(CallError::Host { message }) => {
            assert!(
                message.contains("larger than the host's whole guest-memory budget")
                    && message.contains("--memory-budget"),
                "{message}"
            )
        }
        other => panic!("expected a host error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_memory_hogs_stay_within_the_budget_by_the_hosts_own_rss() {
    let _g = SERIAL.lock().await;
    let mut host = Host::ephemeral().expect("host");
    host.set_memory_budget(512 * MIB);
    let p = load(&host, fx::FLOOD, &[], |s| s.limits.memory_bytes = 128 * MIB).await;
    // Warm the instance path once so the measurement sees the calls, not the first instantiation.
    assert!(
        host.call(&p, "hold", r#"{"n":1,"ms":0}"#)
            .await
            .result
            .is_ok()
    );

    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
    let before = status_kib("VmRSS:");
    // Sixteen calls at once, each touching 100 MiB and holding it for 800 ms: 1.6 GB if all ran together.
    let calls = (0..16).map(|_| host.call(&p, "hold", r#"{"n":100,"ms":800}"#));
    let results = join_all(calls).await;
    let rise_mib = status_kib("VmHWM:").saturating_sub(before) / 1024;
    eprintln!(
        "peak RSS rise for 16 concurrent 100 MiB calls under a 512 MiB budget: {rise_mib} MiB"
    );

    let ran = results.iter().filter(|r| r.result.is_ok()).count();
    assert_eq!((ran, busy_count(&results)), (4, 12), "{results:#?}");
    // Four calls of 100 MiB each, plus the host's own copies and allocator slack.
    assert!(rise_mib < 512 + 64, "peak RSS rose {rise_mib} MiB");
}
