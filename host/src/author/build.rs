//! `plughost build`: one command for every language (like `spin build`). Reads the project's `plughost.toml`,
//! installs the pinned toolchain if it is missing, and runs the language's steps to `<id>.wasm`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use plughost::Home;
use plughost::units::{human_bytes, human_duration};

use super::project::{Lang, Project};
use super::toolchain::{self, Toolchain};

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// The project directory (default: the current one, or the nearest parent with a plughost.toml).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

/// Builds the project; returns the component's path.
pub fn build(home: &Home, p: &Project) -> Result<PathBuf> {
    if p.file.plugin.lean && p.lang() != Lang::Rust {
        bail!(
            "`lean = true` is for Rust plugins only (it builds for wasm32-unknown-unknown); remove it from {}",
            p.dir.join("plughost.toml").display()
        );
    }
    let started = Instant::now();
    let out = p.output();
    eprintln!(
        "building {} ({}) → {}",
        p.id(),
        p.lang().name(),
        out.display()
    );
    match p.lang() {
        Lang::Rust => build_rust(p, &out)?,
        Lang::Python => build_python(home, p, &out)?,
        Lang::Js => build_js(home, p, &out)?,
        Lang::C => build_c(home, p, &out)?,
    }
    let bytes =
        std::fs::read(&out).with_context(|| format!("the build wrote no {}", out.display()))?;
    if !wasmparser::Parser::is_component(&bytes) {
        bail!("{} is not a component", out.display());
    }
    eprintln!(
        "built {} ({}) in {}",
        out.display(),
        human_bytes(bytes.len() as u64),
        human_duration(started.elapsed())
    );
    Ok(out)
}

fn wit_dir(p: &Project) -> Result<PathBuf> {
    let wit = p.dir.join("wit");
    if !wit.join("world.wit").is_file() {
        bail!(
            "{} is missing: it names the capabilities the plugin imports (`plughost new` writes one)",
            wit.join("world.wit").display()
        );
    }
    super::contract::write_deps(&wit)?;
    Ok(wit)
}

fn build_python(home: &Home, p: &Project, out: &Path) -> Result<()> {
    let (wit, world) = super::world::prepare(p)?;
    toolchain::ensure(home, Toolchain::Python)?;
    let module = p.file.plugin.entry.as_deref().unwrap_or("app");
    toolchain::run(
        toolchain::command(home, Toolchain::Python)
            .arg("-d")
            .arg(&wit)
            .args(["-w", &world, "componentize", "-p"])
            .arg(&p.dir)
            .arg(module)
            .arg("-o")
            .arg(out)
            .current_dir(&p.dir),
        &format!("componentize-py: {module} → {}", out.display()),
        "componentize-py failed",
    )
}

fn build_js(home: &Home, p: &Project, out: &Path) -> Result<()> {
    let (wit, world) = super::world::prepare(p)?;
    toolchain::ensure(home, Toolchain::Js)?;
    let entry = p
        .dir
        .join(p.file.plugin.entry.as_deref().unwrap_or("app.js"));
    // Without `--disable http fetch-event` the component would import wasi:http, which plughost does not link.
    toolchain::run(
        toolchain::command(home, Toolchain::Js)
            .arg(&entry)
            .arg("--wit")
            .arg(&wit)
            .args([
                "--world-name",
                &world,
                "--disable",
                "http",
                "fetch-event",
                "-o",
            ])
            .arg(out)
            .current_dir(&p.dir),
        &format!("componentize-js: {} → {}", entry.display(), out.display()),
        "componentize-js failed",
    )
}

fn build_c(home: &Home, p: &Project, out: &Path) -> Result<()> {
    let wit = wit_dir(p)?;
    let (mut resolve, world) = super::componentize::load_world(&wit, Some(p.world()))?;
    let bindings = p.build_dir().join("bindings");
    let generated = super::cbind::generate(&mut resolve, world, &bindings)?;
    toolchain::ensure(home, Toolchain::Zig)?;

    let src = p.dir.join("src");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&src)
        .with_context(|| format!("cannot read {}", src.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| f.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    if sources.is_empty() {
        bail!("no .c files in {}", src.display());
    }
    let core = p.build_dir().join("core.wasm");
    let mut cc: Command = toolchain::command(home, Toolchain::Zig);
    cc.args([
        "cc",
        "-target",
        "wasm32-wasi",
        "-mexec-model=reactor",
        "-O2",
        "-s",
        // zig links a 16 MiB stack by default: every instance would start with 16 MiB of linear memory.
        "-Wl,-z,stack-size=1048576",
        "-Wall",
        "-Werror=implicit-function-declaration",
    ])
    .arg("-I")
    .arg(&bindings)
    .arg("-I")
    .arg(&src)
    .args(&sources)
    .args(&generated)
    .arg("-o")
    .arg(&core)
    .current_dir(&p.dir);
    toolchain::run(
        &mut cc,
        &format!("zig cc: {} C file(s) → {}", sources.len(), core.display()),
        "zig cc failed",
    )?;

    let module = std::fs::read(&core).with_context(|| format!("cannot read {}", core.display()))?;
    let component =
        super::componentize::componentize(module, None, super::componentize::Adapter::Reactor)
            .context("wrapping the core module into a component")?;
    std::fs::write(out, component).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

/// `cargo build --release` for wasm32-wasip2 (a component already), or for wasm32-unknown-unknown when the project
/// is lean (a core module with no WASI imports, which is wrapped here without an adapter).
fn build_rust(p: &Project, out: &Path) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = if p.file.plugin.lean {
        "wasm32-unknown-unknown"
    } else {
        "wasm32-wasip2"
    };
    let output = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "--target",
            target,
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(&p.dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {cargo}"))?;
    if !output.status.success() {
        // Suggest the target only when it is what is missing: after a compile error the errors above say it all.
        if target_missing(target) {
            bail!(
                "cargo build failed ({}): the Rust target {target} is not installed; add it with `rustup target add \
                 {target}`",
                output.status
            );
        }
        bail!(
            "cargo build failed ({}); the compiler's messages are above",
            output.status
        );
    }
    let mut artifact = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "cdylib"));
        if !is_cdylib {
            continue;
        }
        if let Some(files) = msg["filenames"].as_array() {
            artifact = files
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from);
        }
    }
    let Some(artifact) = artifact else {
        bail!("cargo built no cdylib .wasm (is `crate-type = [\"cdylib\"]` in Cargo.toml?)");
    };
    if !p.file.plugin.lean {
        std::fs::copy(&artifact, out)
            .with_context(|| format!("cannot copy {} to {}", artifact.display(), out.display()))?;
        return Ok(());
    }
    let module =
        std::fs::read(&artifact).with_context(|| format!("cannot read {}", artifact.display()))?;
    let component =
        super::componentize::componentize(module, None, super::componentize::Adapter::Reactor)
            .context("wrapping the lean module into a component")?;
    std::fs::write(out, component).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

/// Whether rustup says `target` is not installed (false when rustup is not there to ask: then nobody knows).
fn target_missing(target: &str) -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| {
            !String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == target)
        })
}
