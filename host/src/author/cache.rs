//! Reusing a build whose inputs did not change. `plughost build` records a stamp (a digest of every input file of
//! the project, of the contract and pins this plughost builds with, and of the component it wrote) in
//! `build/stamp.json`; `plughost test` (and `dev`) skip the toolchain when the inputs hash to the same digest and
//! the component is still the one recorded. Python and JavaScript builds take 10–20 s, which this saves.
//!
//! Rust projects are not stamped: their path dependencies (the SDK) live outside the project, and cargo's own
//! no-op build is fast. Inputs are bounded: a project over [`MAX_FILES`] files or [`MAX_BYTES`] bytes is always
//! rebuilt.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plughost::Home;
use serde::{Deserialize, Serialize};

use super::project::{Lang, Project};

/// More input files than this: no stamp, always rebuild.
pub const MAX_FILES: usize = 20_000;
/// More input bytes than this: no stamp, always rebuild.
pub const MAX_BYTES: u64 = 512 << 20;

/// Directories (by name, anywhere in the project) that hold outputs or caches, not inputs.
const SKIPPED_DIRS: [&str; 5] = ["build", "target", ".git", "__pycache__", ".plughost"];

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Stamp {
    inputs: String,
    output: String,
}

fn stamp_path(p: &Project) -> PathBuf {
    p.build_dir().join("stamp.json")
}

/// Whether builds of this project are stamped.
fn stamped(p: &Project) -> bool {
    p.lang() != Lang::Rust
}

/// The digest of everything a build reads: the project's files (paths and contents, minus outputs and caches),
/// and what this plughost brings (its version, the contract, the language and the toolchain pins). `None` when
/// the project is over the bounds or a file cannot be read.
pub fn inputs_digest(p: &Project) -> Option<String> {
    let mut files = Vec::new();
    collect(&p.dir, &p.dir, &p.output(), &mut files)?;
    files.sort();
    let mut h = blake3::Hasher::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(p.lang().name().as_bytes());
    for t in super::toolchain::Toolchain::ALL {
        h.update(t.pins().as_bytes());
    }
    for (name, text) in super::contract::FILES
        .iter()
        .chain(super::contract::FILES_0_2)
    {
        h.update(name.as_bytes());
        h.update(text.as_bytes());
    }
    let mut total = 0u64;
    for rel in &files {
        let bytes = std::fs::read(p.dir.join(rel)).ok()?;
        total += bytes.len() as u64;
        if total > MAX_BYTES {
            return None;
        }
        let name = rel.to_string_lossy();
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    Some(h.finalize().to_hex().to_string())
}

/// Every input file under `dir`, relative to `root`; `None` past [`MAX_FILES`].
fn collect(root: &Path, dir: &Path, output: &Path, out: &mut Vec<PathBuf>) -> Option<()> {
    for entry in std::fs::read_dir(dir).ok()? {
        let entry = entry.ok()?;
        let path = entry.path();
        let kind = entry.file_type().ok()?;
        let name = entry.file_name();
        if kind.is_dir() {
            if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                collect(root, &path, output, out)?;
            }
        } else if kind.is_file() && path != output {
            out.push(path.strip_prefix(root).ok()?.to_path_buf());
            if out.len() > MAX_FILES {
                return None;
            }
        }
    }
    Some(())
}

fn output_digest(p: &Project) -> Option<String> {
    let bytes = std::fs::read(p.output()).ok()?;
    Some(blake3::hash(&bytes).to_hex().to_string())
}

/// Records that the component now at the output was built from the inputs as they are. Best effort: a stamp
/// that cannot be written only means the next test builds again.
pub fn record(p: &Project) {
    if !stamped(p) {
        return;
    }
    let (Some(inputs), Some(output)) = (inputs_digest(p), output_digest(p)) else {
        let _ = std::fs::remove_file(stamp_path(p));
        return;
    };
    let stamp = Stamp { inputs, output };
    if let Ok(text) = serde_json::to_string(&stamp) {
        let _ = std::fs::create_dir_all(p.build_dir());
        let _ = std::fs::write(stamp_path(p), text);
    }
}

/// Whether the component at the output is the one built from the inputs as they are now.
pub fn fresh(p: &Project) -> bool {
    if !stamped(p) {
        return false;
    }
    let Some(recorded) = std::fs::read(stamp_path(p))
        .ok()
        .and_then(|b| serde_json::from_slice::<Stamp>(&b).ok())
    else {
        return false;
    };
    output_digest(p).as_ref() == Some(&recorded.output)
        && inputs_digest(p).as_ref() == Some(&recorded.inputs)
}

/// `plughost build`: builds, and records the stamp so that `plughost test` right after reuses the build.
pub fn run_build(home: &Home, args: super::build::BuildArgs) -> Result<std::process::ExitCode> {
    let project = Project::find(&args.dir)?;
    super::build::build(home, &project)?;
    record(&project);
    Ok(std::process::ExitCode::SUCCESS)
}

/// What `plughost test` and `dev` use: the component as built, reusing it when nothing it was built from changed.
/// Returns its path and whether it was reused.
pub fn build_or_reuse(home: &Home, p: &Project) -> Result<(PathBuf, bool)> {
    if fresh(p) {
        eprintln!(
            "{} is up to date (no input changed since it was built)",
            p.output().display()
        );
        return Ok((p.output(), true));
    }
    let out = super::build::build(home, p)?;
    record(p);
    Ok((out, false))
}
