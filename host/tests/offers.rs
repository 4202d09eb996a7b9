//! Contract 0.2.0 over MCP, with the official Python SDK in both protocol eras: fixture-offers' resources,
//! templates and prompts are listed, read and rendered through the host; a tool's progress reaches the client (over
//! Streamable HTTP and over stdio); a
//! read that runs out of fuel is a typed error; reads and renders are ledgered like calls; removing the plugin
//! sends resources and prompts list_changed. And a component built against 0.1.0 still installs and serves.

mod common;
use common::*;

use plughost_tests as fx;

#[test]
fn resources_prompts_and_progress_through_the_python_sdk() {
    for mode in ["legacy", "2026-07-28"] {
        let setup = Setup::new();
        setup.install(fx::OFFERS, "offers.wasm", &[]);
        setup.ok(&["limits", "offers", "--fuel", "50000000"]);
        // Two per page: resources/list (six resources) and prompts/list are followed across pages.
        let server = setup.serve_http(&["--page-size", "2"]);
        let out = run_python(&[
            "offers",
            "--url",
            &server.url(),
            "--mode",
            mode,
            "--plughost",
            BIN,
            "--home",
            setup.home(),
            "--toggle",
            "offers",
            "(installed: only removed)",
        ]);
        assert!(
            out.status.success(),
            "the Python client's checks failed ({mode})"
        );

        let entries = ledger_entries(&setup);
        let of = |tool: &str| -> Vec<&serde_json::Value> {
            entries.iter().filter(|e| e["tool"] == tool).collect()
        };
        let spin = of("resource:spin");
        assert_eq!(spin.len(), 1, "{entries:?}");
        assert_eq!(spin[0]["outcome"], "out-of-fuel", "{}", spin[0]);
        assert_eq!(spin[0]["fuel_used"], 50_000_000, "{}", spin[0]);
        let greeting = of("resource:greeting");
        assert_eq!(greeting.len(), 1, "{entries:?}");
        assert_eq!(greeting[0]["outcome"], "ok");
        assert_eq!(greeting[0]["plugin"], "offers");
        // The read of a template member is ledgered under the path read.
        assert_eq!(of("resource:day/2026-01-01").len(), 1, "{entries:?}");
        let prompts = of("prompt:summarize");
        let outcomes: Vec<&str> = prompts
            .iter()
            .filter_map(|e| e["outcome"].as_str())
            .collect();
        assert_eq!(outcomes, ["ok", "invalid-arguments"], "{entries:?}");
        assert_eq!(of("steps").len(), 1, "{entries:?}");
        // A path that is neither listed nor a template member never reaches the guest: nothing ledgered for it.
        assert!(
            of("resource:nothing-here")
                .iter()
                .all(|e| e["fuel_used"] == 0),
            "{entries:?}"
        );
    }
}

/// Over stdio, in both eras: the Python SDK client passes a progress token on `tools/call` of fixture-offers' `steps`
/// and gets the plugin's `progress(...)` reports as `notifications/progress` (the first and the final one at least;
/// reports closer than 50 ms apart may be dropped in between), then the result.
#[test]
fn progress_reaches_a_python_sdk_client_over_stdio() {
    let setup = Setup::new();
    setup.install(fx::OFFERS, "offers.wasm", &[]);
    for mode in ["legacy", "2026-07-28"] {
        let out = run_python(&[
            "offered",
            "--stdio",
            BIN,
            setup.home(),
            "--mode",
            mode,
            "--resource",
            "plughost://plugins/offers/r/greeting",
            "--prompt",
            "offers__summarize",
            "--args",
            r#"{"topic":"x"}"#,
            "--tool",
            "offers__steps",
            "--call",
            r#"{"n":3}"#,
        ]);
        assert!(out.status.success(), "the Python client failed ({mode})");
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("one JSON line from client.py offered");
        assert_eq!(v["tool"], "3 steps", "{v}");
        let progress = v["progress"].as_array().expect("progress").clone();
        assert_eq!(
            progress.first(),
            Some(&serde_json::json!([1.0, 3.0, "step 1"])),
            "{v}"
        );
        assert_eq!(
            progress.last(),
            Some(&serde_json::json!([3.0, 3.0, "step 3"])),
            "{v}"
        );
        let done: Vec<f64> = progress.iter().filter_map(|p| p[0].as_f64()).collect();
        assert!(done.windows(2).all(|w| w[0] < w[1]), "{v}");
        assert_eq!(v["resource"]["text"], "hello from a resource", "{v}");
    }
}

#[test]
fn a_scoped_token_sees_only_its_plugins_resources_and_prompts() {
    let setup = Setup::new();
    setup.install(fx::OFFERS, "offers.wasm", &[]);
    let out = setup.ok(&[
        "tokens",
        "create",
        "basic-only",
        "--plugins",
        "fixture-basic",
    ]);
    let token = out.trim().to_string();
    assert!(token.starts_with("plughost_"), "{out}");
    let server = setup.serve_http(&[]);
    for mode in ["legacy", "2026-07-28"] {
        let out = run_python(&[
            "offers-hidden",
            "--url",
            &server.url(),
            "--token",
            &token,
            "--mode",
            mode,
        ]);
        assert!(
            out.status.success(),
            "the Python client's checks failed ({mode})"
        );
    }
    // Nothing of the hidden plugin ran for that token.
    let entries = ledger_entries(&setup);
    assert!(
        !entries.iter().any(|e| e["plugin"] == "offers"),
        "{entries:?}"
    );
}

#[test]
fn a_component_built_against_0_1_0_still_installs_and_serves() {
    let setup = Setup::new();
    setup.install(fx::V01, "v01.wasm", &["log"]);
    let inspect = setup.ok(&["inspect", fx::V01]);
    assert!(
        inspect.contains("contract     plughost:plugin@0.1.0"),
        "{inspect}"
    );
    // The SDK builds 0.2.0 components (they export resources and prompts).
    let inspect = setup.ok(&["inspect", fx::OFFERS]);
    assert!(
        inspect.contains("contract     plughost:plugin@0.2.0"),
        "{inspect}"
    );
    let out = setup.ok(&["call", "old", "echo", "--args", r#"{"text":"hi"}"#]);
    assert!(out.contains(r#"0.1.0 says {"text":"hi"}"#), "{out}");
}
