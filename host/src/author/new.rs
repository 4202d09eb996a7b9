//! `plughost new NAME --lang rust|python|js|c`: a ready plugin project with the WIT contract wired, one example
//! tool (`hello`: uses log, state and config), a README, and test cases that `plughost test` runs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::project::Lang;

#[derive(clap::Args, Debug)]
pub struct NewArgs {
    /// The plugin id and directory name: [a-z][a-z0-9-]*.
    pub name: String,
    /// The language.
    #[arg(long, value_enum)]
    pub lang: Lang,
    /// Where to create the project (default: ./NAME).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Rust only: the plughost guest SDK (`guest-sdk/` of a plughost checkout). Default: the checkout this
    /// plughost was built from if it is still there, else a copy of the SDK written into the project (`vendor/`).
    #[arg(long, conflicts_with = "vendor_sdk")]
    pub sdk: Option<PathBuf>,
    /// Rust only: always write the SDK this plughost was built with into the project (`vendor/`), so the project
    /// builds anywhere (crates.io is still needed for its dependencies).
    #[arg(long)]
    pub vendor_sdk: bool,
    /// Rust only: a lean plugin (`lean = true` in plughost.toml), built for wasm32-unknown-unknown. It has no
    /// WASI imports at all, and a fresh instance is cheaper.
    #[arg(long)]
    pub lean: bool,
}

/// The guest SDK, embedded, for projects made away from a plughost checkout.
const SDK_LIB: &str = include_str!("../../../guest-sdk/src/lib.rs");
const SDK_CAPS: &str = include_str!("../../../guest-sdk/src/caps.rs");
const SDK_LEAN: &str = include_str!("../../../guest-sdk/src/lean.rs");
const SDK_SCHEMA: &str = include_str!("../../../guest-sdk/src/schema.rs");
const SDK_HTTP: &str = include_str!("../../../guest-sdk/src/http.rs");
const SDK_OFFERS: &str = include_str!("../../../guest-sdk/src/offers.rs");
const SDK_MACROS: &str = include_str!("../../../guest-sdk/macros/src/lib.rs");
/// The attribute macros' manifest outside the workspace: its dependency lines are the macro crate's own (a test
/// keeps them equal).
const SDK_MACROS_CARGO: &str = r#"[package]
name = "plughost-guest-macros"
description = "The #[tool], #[args] and #[output] attributes of plughost-guest (copied by `plughost new`)"
version = "{{version}}"
edition = "2024"
publish = false

[lib]
proc-macro = true

[dependencies]
proc-macro2 = "1"
quote = "1"
syn = { version = "2", features = ["full"] }
"#;
/// The SDK's manifest outside the plughost workspace: the same dependencies as `[workspace.dependencies]` (a test
/// keeps them equal).
const SDK_CARGO: &str = r#"[package]
name = "plughost-guest"
description = "Write plughost plugins in Rust (copied by `plughost new` from plughost {{version}})"
version = "{{version}}"
edition = "2024"
publish = false

[dependencies]
wit-bindgen = { version = "0.63", default-features = false, features = ["macros", "realloc"] }
serde = { version = "1", features = ["derive"] }
serde_json = "1"
schemars = "1"
plughost-guest-macros = { path = "macros" }
"#;

/// Where the vendored SDK goes in a project; its WIT sits next to it (`vendor/wit`, which the SDK reads as `../wit`).
const VENDOR_SDK: &str = "vendor/plughost-guest";

/// The SDK's own manifest: its `[features]` section (the last one) is copied into the vendored manifest as is.
const SDK_MANIFEST: &str = include_str!("../../../guest-sdk/Cargo.toml");

/// The vendored SDK's Cargo.toml: the workspace's dependencies, and the SDK's features (`panic-log`).
fn vendored_manifest() -> String {
    let features = SDK_MANIFEST
        .find("\n[features]")
        .map_or("", |at| &SDK_MANIFEST[at..]);
    SDK_CARGO.replace("{{version}}", env!("CARGO_PKG_VERSION")) + features
}

/// The files of a vendored SDK, relative to the project.
fn vendored_sdk() -> Vec<(String, String)> {
    let mut out = vec![
        (format!("{VENDOR_SDK}/Cargo.toml"), vendored_manifest()),
        (format!("{VENDOR_SDK}/src/lib.rs"), SDK_LIB.to_string()),
        (format!("{VENDOR_SDK}/src/caps.rs"), SDK_CAPS.to_string()),
        (format!("{VENDOR_SDK}/src/lean.rs"), SDK_LEAN.to_string()),
        (
            format!("{VENDOR_SDK}/src/schema.rs"),
            SDK_SCHEMA.to_string(),
        ),
        (format!("{VENDOR_SDK}/src/http.rs"), SDK_HTTP.to_string()),
        (
            format!("{VENDOR_SDK}/src/offers.rs"),
            SDK_OFFERS.to_string(),
        ),
        (
            format!("{VENDOR_SDK}/macros/Cargo.toml"),
            SDK_MACROS_CARGO.replace("{{version}}", env!("CARGO_PKG_VERSION")),
        ),
        (
            format!("{VENDOR_SDK}/macros/src/lib.rs"),
            SDK_MACROS.to_string(),
        ),
    ];
    // The SDK's `../wit`: the 0.2.0 package, with the frozen 0.1.0 one in its deps (as in plughost's own `wit/`).
    for (name, text) in super::contract::FILES_0_2 {
        out.push((format!("vendor/wit/{name}"), text.to_string()));
    }
    let v01 = super::contract::FILES
        .iter()
        .chain([&("world.wit", super::contract::WORLD_0_1)]);
    for (name, text) in v01 {
        out.push((
            format!("vendor/wit/deps/plughost-plugin-0.1.0/{name}"),
            text.to_string(),
        ));
    }
    out
}

const PROJECT: &str = include_str!("../../templates/common/plughost.toml");
const WORLD: &str = include_str!("../../templates/common/world.wit");
const GITIGNORE: &str = include_str!("../../templates/common/gitignore");
const README: &str = include_str!("../../templates/common/README.md");
const PY_APP: &str = include_str!("../../templates/python/app.py");
const JS_APP: &str = include_str!("../../templates/js/app.js");
const C_APP: &str = include_str!("../../templates/c/src/plugin.c");
const C_JSON_H: &str = include_str!("../../templates/c/src/json.h");
const C_JSON_C: &str = include_str!("../../templates/c/src/json.c");
const RUST_CARGO: &str = include_str!("../../templates/rust/Cargo.toml");
const RUST_LIB: &str = include_str!("../../templates/rust/src/lib.rs");

/// Files of a new project: (relative path, contents).
pub fn files(id: &str, lang: Lang, sdk: &str, lean: bool) -> Vec<(&'static str, String)> {
    let fill = |s: &str| {
        s.replace("{{id}}", id)
            .replace("{{lang}}", lang.name())
            .replace("{{lean}}", if lean { LEAN_PROJECT } else { "" })
            .replace("{{sdk}}", sdk)
            .replace("{{build}}", build_steps(lang))
            .replace("{{imports}}", how_to_import(lang))
    };
    let mut out = vec![
        ("plughost.toml", fill(PROJECT)),
        (".gitignore", GITIGNORE.to_string()),
        ("README.md", fill(README)),
    ];
    match lang {
        Lang::Rust => {
            out.push(("Cargo.toml", fill(RUST_CARGO)));
            out.push(("src/lib.rs", fill(RUST_LIB)));
        }
        // Python and JavaScript projects have no world of their own: `plughost build` derives it from the code's
        // imports of the SDK (written into plughost/ by `run`).
        Lang::Python => out.push(("app.py", fill(PY_APP))),
        Lang::Js => out.push(("app.js", fill(JS_APP))),
        Lang::C => {
            out.push(("wit/world.wit", WORLD.to_string()));
            out.push(("src/plugin.c", fill(C_APP)));
            out.push(("src/json.h", C_JSON_H.to_string()));
            out.push(("src/json.c", C_JSON_C.to_string()));
        }
    }
    out
}

/// What `--lean` adds to plughost.toml, after the `lang` line.
const LEAN_PROJECT: &str = "\n# Built for wasm32-unknown-unknown: no WASI imports, a cheaper fresh instance. std's clocks, \
     randomness,\n# env and files are not available. A panic's message reaches the log through `log` (the SDK's \
     `panic-log`\n# feature, on in Cargo.toml).\nlean = true";

/// How to use another capability, for the README.
fn how_to_import(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => "just call it (`plughost_guest::http::…`)",
        Lang::Python => {
            "import its SDK module (`from plughost import http`): `plughost build` derives the component's \
             imports from the code's"
        }
        Lang::Js => {
            "import its SDK module (`import * as http from './plughost/http.js'`): `plughost build` derives the \
             component's imports from the code's"
        }
        Lang::C => "add it to `wit/world.wit` (e.g. `import plughost:plugin/http@0.1.0;`)",
    }
}

/// What `plughost build` does, for the README.
fn build_steps(lang: Lang) -> &'static str {
    match lang {
        Lang::Rust => {
            "`cargo build --release --target wasm32-wasip2`, then copies the component here (with `lean = true`: \
             `--target wasm32-unknown-unknown`, then plughost wraps the module into a component, with no adapter)"
        }
        Lang::Python => {
            "writes the SDK into `plughost/` and the world into `build/wit/`, then `componentize-py -d build/wit -w \
             plugin componentize app` (componentize-py 0.25.1, installed once into plughost's toolchain dir)"
        }
        Lang::Js => {
            "writes the SDK into `plughost/` and the world into `build/wit/`, then `componentize-js app.js --wit \
             build/wit --world-name plugin --disable http fetch-event` (componentize-js 0.23.0, installed once into \
             plughost's toolchain dir)"
        }
        Lang::C => {
            "C bindings from wit/ into build/bindings (wit-bindgen's C generator, inside plughost), \
             `zig cc -target wasm32-wasi -mexec-model=reactor` (ziglang 0.17.1, installed once into plughost's \
             toolchain dir), then `plughost componentize` with the WASI preview1 reactor adapter"
        }
    }
}

/// The `plughost-guest` dependency's path, and whether the SDK must be written into the project.
fn sdk_path(explicit: Option<&Path>, vendor: bool) -> Result<(String, bool)> {
    if vendor {
        return Ok((VENDOR_SDK.to_string(), true));
    }
    let path = match explicit {
        Some(p) => Some(
            p.canonicalize()
                .with_context(|| format!("--sdk {}", p.display()))?,
        ),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(|root| root.join("guest-sdk"))
            .filter(|p| p.join("Cargo.toml").is_file()),
    };
    Ok(match path {
        Some(p) => (p.display().to_string(), false),
        None => (VENDOR_SDK.to_string(), true),
    })
}

pub fn run(args: NewArgs) -> Result<std::process::ExitCode> {
    plughost::registry::check_plugin_id(&args.name)
        .map_err(|e| anyhow::anyhow!("`{}` cannot be a plugin id: {e}", args.name))?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    if args.lean && args.lang != Lang::Rust {
        bail!("--lean is for Rust plugins only (it builds for wasm32-unknown-unknown)");
    }
    let (sdk, vendor) = if args.lang == Lang::Rust {
        let (path, vendor) = sdk_path(args.sdk.as_deref(), args.vendor_sdk)?;
        // A lean template reports panics through `log`: it logs anyway, so that costs it no extra import.
        let features = if args.lean {
            ", features = [\"panic-log\"]"
        } else {
            ""
        };
        (format!("{{ path = {path:?}{features} }}"), vendor)
    } else {
        (String::new(), false)
    };
    let mut all: Vec<(String, String)> = files(&args.name, args.lang, &sdk, args.lean)
        .into_iter()
        .map(|(rel, text)| (rel.to_string(), text))
        .collect();
    if vendor {
        all.extend(vendored_sdk());
    }
    for (rel, text) in all {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.lang == Lang::C {
        super::contract::write_deps(&dir.join("wit"))?;
    }
    super::sdk::write(&dir, args.lang)?;
    println!(
        "created {} ({} plugin `{}`)\n\nnext:\n  cd {}\n  plughost build     # → {}.wasm\n  plughost test      # runs the cases in plughost.toml",
        dir.display(),
        args.lang.name(),
        args.name,
        dir.display(),
        args.name
    );
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    /// The vendored SDK's dependencies are the workspace's, line for line.
    #[test]
    fn every_sdk_source_file_is_vendored() {
        use super::{VENDOR_SDK, vendored_sdk};
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/src");
        let vendored: Vec<String> = vendored_sdk().into_iter().map(|(p, _)| p).collect();
        for f in std::fs::read_dir(&src).expect("guest-sdk/src") {
            let name = f.expect("entry").file_name().to_string_lossy().into_owned();
            let want = format!("{VENDOR_SDK}/src/{name}");
            assert!(
                vendored.contains(&want),
                "{want} is not vendored by `plughost new --vendor-sdk`"
            );
        }
    }

    #[test]
    fn vendored_sdk_dependencies_match_the_workspace() {
        let root = include_str!("../../../Cargo.toml");
        for dep in ["wit-bindgen", "serde", "serde_json", "schemars"] {
            let line = |text: &str| {
                text.lines()
                    .find(|l| l.starts_with(&format!("{dep} =")))
                    .map(str::to_string)
                    .unwrap_or_else(|| panic!("no `{dep}` line"))
            };
            assert_eq!(line(super::SDK_CARGO), line(root), "{dep}");
        }
    }

    #[test]
    fn vendored_macros_dependencies_match_the_macro_crate() {
        let own = include_str!("../../../guest-sdk/macros/Cargo.toml");
        let deps = |text: &str| -> Vec<String> {
            let at = text
                .find("[dependencies]")
                .expect("a [dependencies] section");
            text[at..].lines().map(str::to_string).collect()
        };
        assert_eq!(deps(super::SDK_MACROS_CARGO), deps(own));
    }

    #[test]
    fn vendored_sdk_has_the_sdks_features() {
        let features = |text: &str| {
            let v: toml::Value = toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            v.get("features").cloned()
        };
        let vendored = super::vendored_manifest();
        assert!(features(super::SDK_MANIFEST).is_some());
        assert_eq!(
            features(&vendored),
            features(super::SDK_MANIFEST),
            "{vendored}"
        );
    }
}
