//! Compiles every guest used by the tests (fixtures and the shipped plugins) to wasm32-wasip2 components, the way
//! wasmtime's test-programs do, and exports their paths as `PLUGHOST_FIXTURE_<NAME>` compile-time variables.

use std::path::PathBuf;
use std::process::Command;

/// (package, library file stem, env name)
const GUESTS: &[(&str, &str, &str)] = &[
    ("fixture-basic", "fixture_basic", "BASIC"),
    ("fixture-state-b", "fixture_state_b", "STATE_B"),
    ("fixture-state-b-v2", "fixture_state_b_v2", "STATE_B_V2"),
    ("fixture-needs-http", "fixture_needs_http", "NEEDS_HTTP"),
    ("fixture-events", "fixture_events", "EVENTS"),
    (
        "fixture-wrong-version",
        "fixture_wrong_version",
        "WRONG_VERSION",
    ),
    ("system-info", "system_info", "SYSTEM_INFO"),
    ("cloudflare", "cloudflare", "CLOUDFLARE"),
    ("docker", "docker", "DOCKER"),
];

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf();
    for watched in [
        "wit",
        "guest-sdk/src",
        "guest-sdk/Cargo.toml",
        "guests",
        "tests/fixtures",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    // A target dir of its own: a nested cargo on the outer build's target dir would wait on its lock forever.
    let target_dir = root.join("target").join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "guest",
            "--locked",
            "--target-dir",
        ])
        .arg(&target_dir);
    for (package, _, _) in GUESTS {
        cmd.args(["-p", package]);
    }
    // Flags meant for the host build must not leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .expect("failed to run cargo for the guest fixtures");
    if !status.success() {
        panic!(
            "building the guest fixtures failed ({status}). Is the wasm32-wasip2 target installed? \
             Run `rustup target add wasm32-wasip2` (scripts/setup.sh does this)."
        );
    }
    for (_, stem, env) in GUESTS {
        let path = target_dir
            .join("wasm32-wasip2")
            .join("guest")
            .join(format!("{stem}.wasm"));
        assert!(path.exists(), "missing guest artifact {}", path.display());
        println!("cargo:rustc-env=PLUGHOST_FIXTURE_{env}={}", path.display());
    }
}
