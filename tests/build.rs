//! Compiles every guest used by the tests (fixtures and the shipped plugins) to wasm32-wasip2 components, the way
//! wasmtime's test-programs do, and exports their paths as `PLUGHOST_FIXTURE_<NAME>` compile-time variables. Lean
//! guests are built for wasm32-unknown-unknown and wrapped into components here, as `plughost build` does.

use std::path::PathBuf;
use std::process::Command;

/// (package, library file stem, env name)
const GUESTS: &[(&str, &str, &str)] = &[
    ("fixture-basic", "fixture_basic", "BASIC"),
    ("fixture-state-b", "fixture_state_b", "STATE_B"),
    ("fixture-state-b-v2", "fixture_state_b_v2", "STATE_B_V2"),
    ("fixture-needs-http", "fixture_needs_http", "NEEDS_HTTP"),
    ("fixture-events", "fixture_events", "EVENTS"),
    ("fixture-flood", "fixture_flood", "FLOOD"),
    ("fixture-leaky", "fixture_leaky", "LEAKY"),
    ("fixture-leaky-blob", "fixture_leaky_blob", "LEAKY_BLOB"),
    (
        "fixture-describe-log",
        "fixture_describe_log",
        "DESCRIBE_LOG",
    ),
    (
        "fixture-describe-huge",
        "fixture_describe_huge",
        "DESCRIBE_HUGE",
    ),
    (
        "fixture-wrong-version",
        "fixture_wrong_version",
        "WRONG_VERSION",
    ),
    ("fixture-offers", "fixture_offers", "OFFERS"),
    ("fixture-v01", "fixture_v01", "V01"),
    ("system-info", "system_info", "SYSTEM_INFO"),
    ("cloudflare", "cloudflare", "CLOUDFLARE"),
    ("docker", "docker", "DOCKER"),
];

/// Lean guests (no WASI), built for wasm32-unknown-unknown: (package, library file stem, env name)
const LEAN_GUESTS: &[(&str, &str, &str)] = &[
    ("fixture-lean", "fixture_lean", "LEAN"),
    ("fixture-lean-log", "fixture_lean_log", "LEAN_LOG"),
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
        "guest-sdk/macros",
        "guests",
        "tests/fixtures",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    // A target dir of its own: a nested cargo on the outer build's target dir would wait on its lock forever.
    let target_dir = root.join("target").join("guests");
    cargo_build(&root, &target_dir, "wasm32-wasip2", GUESTS);
    // One cargo run per lean guest: their SDK features differ (`panic-log`), and one run would unify them.
    for guest in LEAN_GUESTS {
        cargo_build(
            &root,
            &target_dir,
            "wasm32-unknown-unknown",
            std::slice::from_ref(guest),
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
    for (_, stem, env) in LEAN_GUESTS {
        let dir = target_dir.join("wasm32-unknown-unknown").join("guest");
        let module = std::fs::read(dir.join(format!("{stem}.wasm")))
            .unwrap_or_else(|e| panic!("missing lean guest artifact {stem}.wasm: {e}"));
        let mut encoder = wit_component::ComponentEncoder::default();
        let component = encoder
            .validate(true)
            .module(&module)
            .and_then(|e| e.encode())
            .unwrap_or_else(|e| panic!("cannot make a component of {stem}.wasm: {e:#}"));
        let path = dir.join(format!("{stem}.component.wasm"));
        std::fs::write(&path, component)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        println!("cargo:rustc-env=PLUGHOST_FIXTURE_{env}={}", path.display());
    }
}

/// `cargo build --profile guest` of `guests` for `target`, in the guests' own target dir.
fn cargo_build(
    root: &std::path::Path,
    target_dir: &std::path::Path,
    target: &str,
    guests: &[(&str, &str, &str)],
) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--target",
            target,
            "--profile",
            "guest",
            "--locked",
            "--target-dir",
        ])
        .arg(target_dir);
    for (package, _, _) in guests {
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
            "building the guest fixtures for {target} failed ({status}). Is the target installed? \
             Run `rustup target add {target}` (scripts/setup.sh does this)."
        );
    }
}
