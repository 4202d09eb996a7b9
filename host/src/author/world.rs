//! The world of a Python or JavaScript project: which capabilities it imports. Those toolchains import every
//! interface of the world they are given, and an interface the code uses but the world lacks fails deep inside
//! the toolchain (a 67-line ImportError for Python). So `plughost build` reads the code's imports first: of the
//! SDK's capability modules (`from plughost import http`, `./plughost/http.js`) and of the raw bindings
//! (`wit_world.imports.http`, `plughost:plugin/http@0.1.0`). Without a `wit/world.wit` the world is derived from
//! them; with one, a capability it does not import is an error naming the line to add. Contract 0.2.0 the same way:
//! the SDK's `progress` module is an import; its `resource` and `prompt` (`@resource`, `@prompt`) are the exports
//! `resources` and `prompts`. Code that uses none of them gets a world of 0.1.0 names only, as before.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::project::{Lang, Project};

/// The capability interfaces of the contract, in the contract's order: every interface file but the shared
/// `types` and the exported `tools`.
pub fn capabilities() -> impl Iterator<Item = &'static str> {
    super::contract::FILES
        .iter()
        .map(|(file, _)| file.trim_end_matches(".wit"))
        .filter(|name| !matches!(*name, "types" | "tools"))
}

/// The contract 0.2.0 import a project may use (no grant), besides the 0.1.0 [`capabilities`].
pub const PROGRESS: &str = "progress";
/// The contract 0.2.0 exports, besides `tools`: exported when the code uses the SDK's `resource` / `prompt`.
pub const OFFERS: [&str; 2] = ["resources", "prompts"];

/// Where the code first uses a capability: (file relative to the project, 1-based line).
pub type Uses = BTreeMap<&'static str, (PathBuf, usize)>;

/// Directories never scanned: build output, dependencies, virtualenvs, the SDK itself.
const SKIP_DIRS: &[&str] = &[
    "build",
    "target",
    "node_modules",
    "wit",
    "plughost",
    "__pycache__",
    "venv",
];
/// A bound on the files read, so a project dir that holds a whole tree does not stall the build.
const MAX_FILES: usize = 2_000;

/// The capabilities the project's sources import.
pub fn uses(p: &Project) -> Result<Uses> {
    let ext = match p.lang() {
        Lang::Python => "py",
        Lang::Js => "js",
        Lang::Rust | Lang::C => return Ok(Uses::new()),
    };
    let mut files = Vec::new();
    collect(&p.dir, ext, &mut files)?;
    files.sort();
    let mut out = Uses::new();
    for f in files {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("cannot read {}", f.display()))?;
        let rel = f.strip_prefix(&p.dir).unwrap_or(&f).to_path_buf();
        let found = match p.lang() {
            Lang::Python => python_imports(&text),
            _ => {
                let mut found = js_imports(&text);
                found.extend(js_exports(&text));
                found
            }
        };
        for (cap, line) in found {
            out.entry(cap).or_insert_with(|| (rel.clone(), line));
        }
    }
    Ok(out)
}

fn collect(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let e = e?;
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let kind = e.file_type()?;
        if kind.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) && !path.join("pyvenv.cfg").exists() {
                collect(&path, ext, out)?;
            }
        } else if kind.is_file() && path.extension().is_some_and(|x| x == ext) {
            if out.len() >= MAX_FILES {
                bail!(
                    "more than {MAX_FILES} .{ext} files under {}: is the project dir right?",
                    dir.display()
                );
            }
            out.push(path);
        }
    }
    Ok(())
}

/// An import the SDK module or raw interface `name` needs.
fn capability(name: &str) -> Option<&'static str> {
    capabilities().chain([PROGRESS]).find(|c| *c == name)
}

/// A name imported from the SDK: a capability module, or the export its `resource` / `prompt` makes.
fn sdk_name(name: &str) -> Option<&'static str> {
    match name {
        "resource" => Some(OFFERS[0]),
        "prompt" => Some(OFFERS[1]),
        _ => capability(name),
    }
}

/// Python import statements (a parenthesised or backslash-continued one is read as one) → (capability, line).
fn python_imports(text: &str) -> Vec<(&'static str, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let mut stmt = strip_comment(lines[i]).trim().to_string();
        i += 1;
        if !(stmt.starts_with("from ") || stmt.starts_with("import ")) {
            continue;
        }
        while (stmt.ends_with('\\') || (stmt.contains('(') && !stmt.contains(')')))
            && i < lines.len()
        {
            stmt = stmt.trim_end_matches('\\').to_string() + " " + strip_comment(lines[i]).trim();
            i += 1;
        }
        for cap in python_statement(&stmt) {
            out.push((cap, start + 1));
        }
    }
    out
}

fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or("")
}

/// The capabilities one import statement names.
fn python_statement(stmt: &str) -> Vec<&'static str> {
    let clean = stmt.replace(['(', ')'], " ");
    let words: Vec<&str> = clean.split_whitespace().collect();
    let module_cap = |module: &str| {
        ["plughost.", "wit_world.imports."]
            .iter()
            .find_map(|pre| module.strip_prefix(pre))
            .and_then(|rest| capability(rest.split('.').next().unwrap_or("")))
    };
    match words.as_slice() {
        ["from", module, "import", names @ ..] => {
            if let Some(cap) = module_cap(module) {
                return vec![cap];
            }
            if matches!(*module, "plughost" | "wit_world.imports") {
                let names = names.join(" ");
                let of: fn(&str) -> Option<&'static str> = if *module == "plughost" {
                    sdk_name
                } else {
                    capability
                };
                return names
                    .split(',')
                    .filter_map(|n| n.split_whitespace().next())
                    .filter_map(of)
                    .collect();
            }
            Vec::new()
        }
        ["import", modules @ ..] => modules
            .join(" ")
            .split(',')
            .filter_map(|m| m.split_whitespace().next())
            .filter_map(module_cap)
            .collect(),
        _ => Vec::new(),
    }
}

/// The contract 0.2.0 exports JS source defines: `export const resources = …`, `export const prompts = …` (the
/// names componentize-js looks for) → (export, line).
fn js_exports(text: &str) -> Vec<(&'static str, usize)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let words: Vec<&str> = code
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
            .filter(|w| !w.is_empty())
            .collect();
        if let ["export", "const" | "let" | "var" | "function", name, ..] = words.as_slice()
            && let Some(offer) = OFFERS.iter().find(|o| *o == name)
        {
            out.push((*offer, n + 1));
        }
    }
    out
}

/// Module specifiers in JS source: the SDK's `…/plughost/<cap>.js` and the raw `plughost:plugin/<cap>@…`.
fn js_imports(text: &str) -> Vec<(&'static str, usize)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for quote in ['\'', '"', '`'] {
            for (k, spec) in code.split(quote).enumerate() {
                if k % 2 == 0 {
                    continue;
                }
                let cap = spec
                    .strip_prefix("plughost:plugin/")
                    .and_then(|r| r.split('@').next())
                    .or_else(|| {
                        spec.rsplit_once("plughost/")
                            .filter(|(dir, _)| dir.is_empty() || dir.ends_with('/'))
                            .and_then(|(_, file)| file.strip_suffix(".js"))
                    })
                    .and_then(capability);
                if let Some(cap) = cap {
                    out.push((cap, n + 1));
                }
            }
        }
    }
    out
}

/// The contract version that defines interface `name`.
fn version_of(name: &str) -> &'static str {
    if name == PROGRESS || OFFERS.contains(&name) {
        "0.2.0"
    } else {
        "0.1.0"
    }
}

/// The line a world needs to import `cap` (or, for `resources` and `prompts`, to export it).
pub fn import_line(cap: &str) -> String {
    let verb = if OFFERS.contains(&cap) {
        "export"
    } else {
        "import"
    };
    format!("{verb} plughost:plugin/{cap}@{};", version_of(cap))
}

/// A world that imports `caps` and exports `tools` and `offers` (of [`OFFERS`]).
pub fn derived_world(caps: &[&str], offers: &[&str]) -> String {
    let mut s = String::from(
        "// Derived by `plughost build` from the imports of the code; rewritten on every build.\n\
         package local:plugin;\n\nworld plugin {\n",
    );
    for cap in caps {
        s.push_str(&format!("    {}\n", import_line(cap)));
    }
    s.push_str("\n    export plughost:plugin/tools@0.1.0;\n");
    for offer in offers {
        s.push_str(&format!("    {}\n", import_line(offer)));
    }
    s.push_str("}\n");
    s
}

/// Gets a Python or JavaScript project ready for its toolchain: writes the SDK into `plughost/`, then returns the
/// WIT directory and world to build with: the project's own `wit/` when it has a `world.wit` (checked against the
/// code's imports), else a world derived from those imports in `build/wit/`.
pub fn prepare(p: &Project) -> Result<(PathBuf, String)> {
    super::sdk::write(&p.dir, p.lang())?;
    let uses = uses(p)?;
    let own = p.dir.join("wit");
    if own.join("world.wit").is_file() {
        super::contract::write_deps(&own)?;
        check_explicit(p, &own, &uses)?;
        return Ok((own, p.world().to_string()));
    }
    let caps: Vec<&str> = capabilities()
        .chain([PROGRESS])
        .filter(|c| uses.contains_key(c))
        .collect();
    let offers: Vec<&str> = OFFERS
        .into_iter()
        .filter(|c| uses.contains_key(c))
        .collect();
    let wit = p.build_dir().join("wit");
    std::fs::create_dir_all(&wit).with_context(|| format!("cannot create {}", wit.display()))?;
    std::fs::write(wit.join("world.wit"), derived_world(&caps, &offers))
        .with_context(|| format!("cannot write {}", wit.join("world.wit").display()))?;
    super::contract::write_deps(&wit)?;
    let list = if caps.is_empty() {
        "nothing".to_string()
    } else {
        caps.join(", ")
    };
    let exports = if offers.is_empty() {
        String::new()
    } else {
        format!("; exports {}", offers.join(", "))
    };
    eprintln!("imports {list} (derived from the code's imports; each needs a grant){exports}");
    Ok((wit, "plugin".to_string()))
}

/// The names of the interfaces a world imports.
fn imported_interfaces(resolve: &wit_parser::Resolve, world: wit_parser::WorldId) -> Vec<String> {
    interface_names(resolve.worlds[world].imports.keys(), resolve)
}

fn interface_names<'a>(
    keys: impl Iterator<Item = &'a wit_parser::WorldKey>,
    resolve: &wit_parser::Resolve,
) -> Vec<String> {
    keys.filter_map(|k| match k {
        wit_parser::WorldKey::Interface(id) => resolve.interfaces[*id].name.clone(),
        wit_parser::WorldKey::Name(_) => None,
    })
    .collect()
}

/// Refuses a project whose `wit/world.wit` lacks a capability its code imports, naming the line to add.
pub fn check_explicit(p: &Project, wit: &Path, uses: &Uses) -> Result<()> {
    let (resolve, world) = super::componentize::load_world(wit, Some(p.world()))?;
    let mut imported = imported_interfaces(&resolve, world);
    imported.extend(interface_names(
        resolve.worlds[world].exports.keys(),
        &resolve,
    ));
    let missing: Vec<_> = uses
        .iter()
        .filter(|(cap, _)| !imported.iter().any(|i| i == *cap))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut msg = String::new();
    for (cap, (file, line)) in &missing {
        msg.push_str(&format!(
            "{}:{line} uses `{cap}`, which wit/world.wit does not {}\n",
            file.display(),
            if OFFERS.contains(cap) {
                "export"
            } else {
                "import"
            }
        ));
    }
    msg.push_str(&format!("add to `world {}` in wit/world.wit:\n", p.world()));
    for (cap, _) in &missing {
        msg.push_str(&format!("    {}\n", import_line(cap)));
    }
    msg.push_str("(or delete wit/world.wit: `plughost build` then derives the world from the code's imports)");
    bail!(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_imports_of_the_sdk_and_of_the_raw_bindings() {
        let src = "import json\nfrom plughost import tool, state, log as l  # state\n\
                   from plughost import (\n    http,\n    plugin,\n)\nfrom plughost.config import get\n\
                   import plughost.metrics, os\nfrom wit_world.imports import ledger\n\
                   import wit_world.imports.system\n# from plughost import container\n\
                   x = 'from plughost import container'\n";
        let got = python_imports(src);
        assert_eq!(
            got,
            vec![
                ("state", 2),
                ("log", 2),
                ("http", 3),
                ("config", 7),
                ("metrics", 8),
                ("ledger", 9),
                ("system", 10),
            ]
        );
    }

    #[test]
    fn js_imports_of_the_sdk_and_of_the_raw_bindings() {
        let src = "import { tool } from './plughost/index.js';\nimport * as state from './plughost/state.js';\n\
                   import * as h from \"../lib/plughost/http.js\";\n// import * as c from './plughost/config.js';\n\
                   import { write } from 'plughost:plugin/log@0.1.0';\nimport x from './myplughost/ledger.js';\n";
        assert_eq!(js_imports(src), vec![("state", 2), ("http", 3), ("log", 5)]);
    }

    #[test]
    fn the_derived_world_parses_and_imports_what_was_asked() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("world.wit"),
            derived_world(&["log", "http"], &[]),
        )
        .expect("write");
        super::super::contract::write_deps(dir.path()).expect("deps");
        let (resolve, world) =
            super::super::componentize::load_world(dir.path(), Some("plugin")).expect("world");
        let names = imported_interfaces(&resolve, world);
        // `types` comes with `log` (it uses `pair`).
        assert_eq!(names, ["types", "log", "http"]);
    }

    #[test]
    fn python_imports_of_contract_0_2_0() {
        let src = "from plughost import tool, resource, plugin\nfrom plughost import prompt, progress\n\
                   import plughost.progress\nfrom wit_world.imports import progress\n\
                   from wit_world.imports import resource\n";
        assert_eq!(
            python_imports(src),
            vec![
                ("resources", 1),
                ("prompts", 2),
                ("progress", 2),
                ("progress", 3),
                ("progress", 4),
            ]
        );
        assert!(
            python_imports("from plughost import tool, plugin, log\n")
                .iter()
                .all(|(c, _)| *c == "log")
        );
    }

    #[test]
    fn a_derived_world_with_contract_0_2_0() {
        let dir = tempfile::tempdir().expect("tmp");
        let text = derived_world(&["log", "progress"], &["resources", "prompts"]);
        assert!(
            text.contains("    import plughost:plugin/progress@0.2.0;\n"),
            "{text}"
        );
        assert!(
            text.contains("    export plughost:plugin/resources@0.2.0;\n"),
            "{text}"
        );
        std::fs::write(dir.path().join("world.wit"), text).expect("write");
        super::super::contract::write_deps(dir.path()).expect("deps");
        let (resolve, world) =
            super::super::componentize::load_world(dir.path(), Some("plugin")).expect("world");
        let imports = imported_interfaces(&resolve, world);
        assert!(imports.iter().any(|i| i == "progress"), "{imports:?}");
        let exports = interface_names(resolve.worlds[world].exports.keys(), &resolve);
        assert_eq!(exports, ["tools", "resources", "prompts"]);
        // Without them, the world names 0.1.0 only (and no 0.2.0 package is written).
        let plain = derived_world(&["log"], &[]);
        assert!(!plain.contains("0.2.0"), "{plain}");
    }

    #[test]
    fn js_uses_of_contract_0_2_0() {
        let src = "import * as progress from './plughost/progress.js';\n\
                   import { offerResources } from './plughost/offers.js';\n\
                   export const resources = offerResources([greetings]);\n\
                   // export const prompts = offerPrompts({});\n\
                   export const prompts = offerPrompts({ welcome });\nconst resources2 = 1;\n";
        let mut got = js_imports(src);
        got.extend(js_exports(src));
        assert_eq!(got, vec![("progress", 1), ("resources", 3), ("prompts", 5)]);
        assert!(js_exports("export const tools = plugin({});\n").is_empty());
    }

    #[test]
    fn every_contract_capability_is_known() {
        let caps: Vec<_> = capabilities().collect();
        assert_eq!(
            caps,
            [
                "log",
                "metrics",
                "state",
                "config",
                "system",
                "http",
                "container",
                "ledger"
            ]
        );
    }
}
