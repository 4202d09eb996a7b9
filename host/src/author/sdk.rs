//! The Python and JavaScript SDKs (`host/templates/python/plughost`, `host/templates/js/plughost` in the plughost repo), embedded, so
//! that `plughost new` and `plughost build` write them into a project without any download. The copy in a project's
//! `plughost/` is rewritten on every build, like `wit/deps/`: the SDK always matches the host that builds it.

use std::path::Path;

use anyhow::{Context, Result};

use super::project::Lang;

/// The Python SDK: a package, with inline type hints and `py.typed` for editors.
pub const PYTHON: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../templates/python/plughost/__init__.py"),
    ),
    (
        "errors.py",
        include_str!("../../templates/python/plughost/errors.py"),
    ),
    (
        "schema.py",
        include_str!("../../templates/python/plughost/schema.py"),
    ),
    (
        "tools.py",
        include_str!("../../templates/python/plughost/tools.py"),
    ),
    (
        "log.py",
        include_str!("../../templates/python/plughost/log.py"),
    ),
    (
        "state.py",
        include_str!("../../templates/python/plughost/state.py"),
    ),
    (
        "config.py",
        include_str!("../../templates/python/plughost/config.py"),
    ),
    (
        "http.py",
        include_str!("../../templates/python/plughost/http.py"),
    ),
    (
        "metrics.py",
        include_str!("../../templates/python/plughost/metrics.py"),
    ),
    (
        "ledger.py",
        include_str!("../../templates/python/plughost/ledger.py"),
    ),
    (
        "offers.py",
        include_str!("../../templates/python/plughost/offers.py"),
    ),
    (
        "progress.py",
        include_str!("../../templates/python/plughost/progress.py"),
    ),
    (
        "py.typed",
        include_str!("../../templates/python/plughost/py.typed"),
    ),
];

/// The JavaScript SDK: ES modules with TypeScript declarations next to them.
pub const JS: &[(&str, &str)] = &[
    (
        "index.js",
        include_str!("../../templates/js/plughost/index.js"),
    ),
    (
        "index.d.ts",
        include_str!("../../templates/js/plughost/index.d.ts"),
    ),
    ("log.js", include_str!("../../templates/js/plughost/log.js")),
    (
        "log.d.ts",
        include_str!("../../templates/js/plughost/log.d.ts"),
    ),
    (
        "state.js",
        include_str!("../../templates/js/plughost/state.js"),
    ),
    (
        "state.d.ts",
        include_str!("../../templates/js/plughost/state.d.ts"),
    ),
    (
        "config.js",
        include_str!("../../templates/js/plughost/config.js"),
    ),
    (
        "config.d.ts",
        include_str!("../../templates/js/plughost/config.d.ts"),
    ),
    (
        "http.js",
        include_str!("../../templates/js/plughost/http.js"),
    ),
    (
        "http.d.ts",
        include_str!("../../templates/js/plughost/http.d.ts"),
    ),
    (
        "metrics.js",
        include_str!("../../templates/js/plughost/metrics.js"),
    ),
    (
        "metrics.d.ts",
        include_str!("../../templates/js/plughost/metrics.d.ts"),
    ),
    (
        "ledger.js",
        include_str!("../../templates/js/plughost/ledger.js"),
    ),
    (
        "ledger.d.ts",
        include_str!("../../templates/js/plughost/ledger.d.ts"),
    ),
    (
        "offers.js",
        include_str!("../../templates/js/plughost/offers.js"),
    ),
    (
        "offers.d.ts",
        include_str!("../../templates/js/plughost/offers.d.ts"),
    ),
    (
        "progress.js",
        include_str!("../../templates/js/plughost/progress.js"),
    ),
    (
        "progress.d.ts",
        include_str!("../../templates/js/plughost/progress.d.ts"),
    ),
];

/// The SDK of `lang` (empty for Rust, whose SDK is a crate, and C).
pub fn files(lang: Lang) -> &'static [(&'static str, &'static str)] {
    match lang {
        Lang::Python => PYTHON,
        Lang::Js => JS,
        Lang::Rust | Lang::C => &[],
    }
}

/// Writes the SDK of `lang` into `<project>/plughost/`, replacing the SDK's own files (and only those).
pub fn write(project: &Path, lang: Lang) -> Result<()> {
    let files = files(lang);
    if files.is_empty() {
        return Ok(());
    }
    let dir = project.join("plughost");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in files {
        let path = dir.join(name);
        // Unchanged files are left alone, so editors and file watchers see no change.
        if std::fs::read_to_string(&path).is_ok_and(|old| old == *text) {
            continue;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Every file of host/templates/python/plughost and host/templates/js/plughost is embedded, and nothing else.
    #[test]
    fn every_sdk_file_is_embedded() {
        for (lang, embedded) in [("python", super::PYTHON), ("js", super::JS)] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("templates")
                .join(lang)
                .join("plughost");
            let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
                .expect("sdk dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .filter(|n| n != "__pycache__")
                .collect();
            on_disk.sort();
            let mut names: Vec<String> = embedded.iter().map(|(n, _)| n.to_string()).collect();
            names.sort();
            assert_eq!(names, on_disk, "{lang}");
        }
    }
}
