//! The house's shape, checked on every test run: no module of `host/src` or `registry/src` imports another in a
//! circle, and no source file there grows past 700 lines without saying at its top why it is one file.
//!
//! The import graph is read from the source: every `crate::a::b` path (resolved to the longest prefix that is a
//! module) and every `super::x` (a sibling module, or the parent when `x` is an item) outside comments and
//! `#[cfg(test)]` modules is an edge from the file's module, and so is a path into a child module (`log::LogBudget`,
//! `pub use host::Host`): a parent that uses its child and a child that names its parent's items form a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 700;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir`, with its module path (`runtime::store`, `caps`, … ; the crate root is `crate`).
fn modules(dir: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(base)
                    .expect("under base")
                    .with_extension("");
                let parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let name = match parts.as_slice() {
                    [one] if one == "lib" || one == "main" => "crate".to_string(),
                    [rest @ .., last] if last == "mod" => rest.join("::"),
                    all => all.join("::"),
                };
                let text = std::fs::read_to_string(&path).expect("read source");
                out.insert(name, text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The code of a file without comments and without its `#[cfg(test)]` module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or(text);
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Identifier-and-`::` paths that start with `prefix` (`crate::` or `super::`), without the prefix; a `{…}` group
/// right after the prefix yields one path per member.
fn paths_after(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(i) = code[from..].find(prefix) {
        let start = from + i;
        from = start + prefix.len();
        // Not the tail of a longer identifier (`xcrate::`) or path (`a::super::`).
        if start > 0 {
            let b = bytes[start - 1];
            if b.is_ascii_alphanumeric() || b == b'_' || b == b':' {
                continue;
            }
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for member in group[..end].split(',') {
                let member = member.trim();
                if !member.is_empty() {
                    out.push(member.to_string());
                }
            }
            continue;
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        out.push(rest[..len].trim_end_matches(':').to_string());
    }
    out
}

fn parent(module: &str) -> Option<String> {
    match module.rsplit_once("::") {
        Some((p, _)) => Some(p.to_string()),
        None if module != "crate" => Some("crate".to_string()),
        None => None,
    }
}

/// What each module re-exports from its children: `pub use child::{A, B}` / `pub use child::A` make `module::A` the
/// child's item, as name resolution sees it.
fn reexports(mods: &BTreeMap<String, String>) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for (m, text) in mods {
        let prefix = if m == "crate" {
            String::new()
        } else {
            format!("{m}::")
        };
        for line in code(text).split(';') {
            let Some(rest) = line.trim().strip_prefix("pub use ") else {
                continue;
            };
            let Some((child, items)) = rest.split_once("::") else {
                continue;
            };
            let target = format!("{prefix}{}", child.trim());
            if !mods.contains_key(&target) {
                continue;
            }
            let items = items.trim().trim_start_matches('{').trim_end_matches('}');
            for item in items.split(',') {
                let name = item.rsplit("::").next().unwrap_or("").trim();
                let name = name.rsplit(" as ").next().unwrap_or(name).trim();
                if !name.is_empty() && name != "self" && name != "*" {
                    out.insert((m.clone(), name.to_string()), target.clone());
                }
            }
        }
    }
    out
}

fn graph(mods: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let reexported = reexports(mods);
    // The module an item path lands in: a re-exported item counts as its child's.
    let resolve = |module: String, item: &str| {
        reexported
            .get(&(module.clone(), item.to_string()))
            .cloned()
            .unwrap_or(module)
    };
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, text) in mods {
        let code = code(text);
        let mut to = BTreeSet::new();
        for p in paths_after(&code, "crate::") {
            let segs: Vec<&str> = p.split("::").collect();
            if let Some(n) = (1..=segs.len())
                .rev()
                .find(|&n| mods.contains_key(&segs[..n].join("::")))
            {
                let module = segs[..n].join("::");
                let target = match segs.get(n) {
                    Some(item) => resolve(module, item),
                    None => module,
                };
                to.insert(target);
            }
        }
        if let Some(up) = parent(m) {
            for p in paths_after(&code, "super::") {
                let first = p.split("::").next().unwrap_or_default();
                let sibling = if up == "crate" {
                    first.to_string()
                } else {
                    format!("{up}::{first}")
                };
                if mods.contains_key(&sibling) {
                    to.insert(sibling);
                } else if first != "*" && !first.is_empty() {
                    to.insert(resolve(up.clone(), first));
                }
            }
        }
        // Paths into a child module (`log::LogBudget`, `pub use host::Host`): the parent uses what the child defines.
        let prefix = if m == "crate" {
            String::new()
        } else {
            format!("{m}::")
        };
        for child in mods.keys().filter_map(|k| k.strip_prefix(&prefix)) {
            if !child.contains("::") && !paths_after(&code, &format!("{child}::")).is_empty() {
                to.insert(format!("{prefix}{child}"));
            }
        }
        to.remove(m);
        edges.insert(m.clone(), to);
    }
    edges
}

/// Strongly connected components with more than one module (Tarjan).
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        let edges = t.edges;
        for w in edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn the_checker_finds_a_circle_and_resolves_paths() {
    let mut mods = BTreeMap::new();
    mods.insert("crate".to_string(), String::new());
    mods.insert("a".to_string(), "use crate::b::Thing;".to_string());
    mods.insert("b".to_string(), "fn f() { crate::a::g(); }".to_string());
    mods.insert(
        "c".to_string(),
        "use crate::a;\npub use e::Thing;".to_string(),
    );
    mods.insert(
        "c::d".to_string(),
        "use super::{Item, e, Thing};".to_string(),
    );
    mods.insert(
        "c::e".to_string(),
        "// use crate::c::d;\n#[cfg(test)]\nmod tests { use crate::c::d; }".to_string(),
    );
    let edges = graph(&mods);
    assert_eq!(edges["c::d"], BTreeSet::from(["c".into(), "c::e".into()]));
    assert!(
        edges["c::e"].is_empty(),
        "comments and test modules are not uses"
    );
    assert_eq!(
        circles(&edges),
        vec![vec!["a".to_string(), "b".to_string()]]
    );
}

#[test]
fn no_module_import_circles_in_host_or_registry() {
    for dir in ["host/src", "registry/src"] {
        let mods = modules(&root().join(dir));
        assert!(mods.len() > 10, "{dir}: found only {} modules", mods.len());
        let found = circles(&graph(&mods));
        assert!(
            found.is_empty(),
            "{dir}: modules that import each other in a circle: {found:?}"
        );
    }
}

#[test]
fn no_source_file_over_700_lines_without_a_reason_at_its_top() {
    for dir in ["host/src", "registry/src"] {
        for (m, text) in modules(&root().join(dir)) {
            let lines = text.lines().count();
            if lines > MAX_LINES {
                let head: String = text.lines().take(20).collect::<Vec<_>>().join("\n");
                assert!(
                    head.to_lowercase().contains("one file"),
                    "{dir} module `{m}` has {lines} lines (> {MAX_LINES}) and its top does not say why it is one file"
                );
            }
        }
    }
}
