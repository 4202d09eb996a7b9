//! The WIT contract this plughost speaks, embedded in the binary, so that projects build against exactly it.

use std::path::Path;

use anyhow::{Context, Result};

/// Every file of `wit/` except `world.wit` (a project has its own world that imports only what it uses).
pub const FILES: &[(&str, &str)] = &[
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("tools.wit", include_str!("../../../wit/tools.wit")),
    ("log.wit", include_str!("../../../wit/log.wit")),
    ("metrics.wit", include_str!("../../../wit/metrics.wit")),
    ("state.wit", include_str!("../../../wit/state.wit")),
    ("config.wit", include_str!("../../../wit/config.wit")),
    ("system.wit", include_str!("../../../wit/system.wit")),
    ("http.wit", include_str!("../../../wit/http.wit")),
    ("container.wit", include_str!("../../../wit/container.wit")),
    ("ledger.wit", include_str!("../../../wit/ledger.wit")),
];

/// Writes the contract to `<wit>/deps/plughost-plugin/` (replacing what was there).
pub fn write_deps(wit: &Path) -> Result<()> {
    let dir = wit.join("deps").join("plughost-plugin");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in FILES {
        std::fs::write(dir.join(name), text)
            .with_context(|| format!("cannot write {}", dir.join(name).display()))?;
    }
    Ok(())
}
