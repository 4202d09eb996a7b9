//! The WIT contract this plughost speaks, embedded in the binary, so that projects build against exactly it.

use std::path::Path;

use anyhow::{Context, Result};

/// Every interface file of the frozen 0.1.0 package (`wit/deps/plughost-plugin-0.1.0/`); its `world.wit` is
/// [`WORLD_0_1`] (a project has its own world that imports only what it uses).
pub const FILES: &[(&str, &str)] = &[
    (
        "types.wit",
        include_str!("../../../wit/deps/plughost-plugin-0.1.0/types.wit"),
    ),
    (
        "tools.wit",
        include_str!("../../../wit/deps/plughost-plugin-0.1.0/tools.wit"),
    ),
    (
        "log.wit",
        include_str!("../../../wit/deps/plughost-plugin-0.1.0/log.wit"),
    ),
    (
        "metrics.wit",
        include_str!("../../../wit/deps/plughost-plugin-0.1.0/metrics.wit"),
    ),
    (
        "state.wit",
        include_str!("../../../wit/deps/plughost-plugin-0.1.0/state.wit"),
    ),
    (
        "config.wit",
        include_str!("../../../wit/deps/plughost-plugin-0.1.0/config.wit"),
    ),
    (
        "system.wit",
        include_str!("../../../wit/deps/plughost-plugin-0.1.0/system.wit"),
    ),
    (
        "http.wit",
        include_str!("../../../wit/deps/plughost-plugin-0.1.0/http.wit"),
    ),
    (
        "container.wit",
        include_str!("../../../wit/deps/plughost-plugin-0.1.0/container.wit"),
    ),
    (
        "ledger.wit",
        include_str!("../../../wit/deps/plughost-plugin-0.1.0/ledger.wit"),
    ),
];

/// The frozen 0.1.0 world.
pub const WORLD_0_1: &str = include_str!("../../../wit/deps/plughost-plugin-0.1.0/world.wit");

/// The files of the 0.2.0 package (`wit/`): its world, which includes 0.1.0's, and the three interfaces it adds.
pub const FILES_0_2: &[(&str, &str)] = &[
    ("world.wit", include_str!("../../../wit/world.wit")),
    ("progress.wit", include_str!("../../../wit/progress.wit")),
    ("resources.wit", include_str!("../../../wit/resources.wit")),
    ("prompts.wit", include_str!("../../../wit/prompts.wit")),
];

/// Writes the contract to `<wit>/deps/`: the 0.1.0 package to `plughost-plugin/` (replacing what was there) and,
/// only when the project's `world.wit` names `@0.2.0` (progress, resources, prompts), the 0.2.0 one to
/// `plughost-plugin-0.2.0/`. Only then: with two versions of the package in one resolve, the bindings generators
/// put the version into their names (C's `plughost_plugin0_1_0_…`), which would break every 0.1.0 project's code.
pub fn write_deps(wit: &Path) -> Result<()> {
    let v01 = FILES.iter().copied().chain([("world.wit", WORLD_0_1)]);
    write_dir(&wit.join("deps").join("plughost-plugin"), v01)?;
    let v02 = wit.join("deps").join("plughost-plugin-0.2.0");
    let uses_0_2 = std::fs::read_to_string(wit.join("world.wit"))
        .is_ok_and(|w| w.contains("plughost:plugin/") && w.contains("@0.2.0"));
    if uses_0_2 {
        write_dir(&v02, FILES_0_2.iter().copied())
    } else if v02.exists() {
        std::fs::remove_dir_all(&v02).with_context(|| format!("cannot remove {}", v02.display()))
    } else {
        Ok(())
    }
}

fn write_dir<'a>(dir: &Path, files: impl Iterator<Item = (&'a str, &'a str)>) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in files {
        std::fs::write(dir.join(name), text)
            .with_context(|| format!("cannot write {}", dir.join(name).display()))?;
    }
    Ok(())
}
