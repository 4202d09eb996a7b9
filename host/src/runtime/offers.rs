//! What a plugin offers besides tools (contract 0.2.0): resources, resource templates and prompts, read from its
//! `resources.list()` and `prompts.list()` once at load, checked and bounded like the tool manifest, and the rules
//! for resource paths (which paths the host lets a client read).

use serde::{Deserialize, Serialize};

use crate::bindings::{prompts, resources};

/// Longest resource path or path template (bytes).
pub const MAX_PATH_BYTES: usize = 1024;
/// Most resources plus templates one plugin may declare.
pub const MAX_RESOURCES: usize = 1000;
/// Most prompts one plugin may declare.
pub const MAX_PROMPTS: usize = 1000;
/// Most arguments one prompt may take.
pub const MAX_PROMPT_ARGUMENTS: usize = 64;
/// Longest name, title or MIME type (bytes).
const MAX_NAME_BYTES: usize = 256;
/// Longest description (bytes).
const MAX_DESCRIPTION_BYTES: usize = 64 << 10;

/// A resource at a fixed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceInfo {
    pub path: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// A family of resources: a path with `{variable}`s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateInfo {
    pub path_template: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

/// One argument of a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptArgumentInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub required: bool,
}

/// A prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub arguments: Vec<PromptArgumentInfo>,
}

/// Everything a plugin offers besides tools (empty for a 0.1.0 component; stored with the manifest, where a
/// manifest stored before 0.2.0 reads as empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offers {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<TemplateInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<PromptInfo>,
}

fn ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'%')
}

/// Why `path` is not a valid resource path (see `wit/resources.wit`), or `None`.
pub fn path_problem(path: &str) -> Option<String> {
    if path.is_empty() || path.len() > MAX_PATH_BYTES {
        return Some(format!("must be 1–{MAX_PATH_BYTES} bytes"));
    }
    if let Some(b) = path.bytes().find(|b| !path_byte(*b)) {
        return Some(format!(
            "byte {:?} is not allowed (A-Z a-z 0-9 - . _ ~ / and %XX only)",
            b as char
        ));
    }
    if path
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Some("has an empty, `.` or `..` segment (or a leading or trailing `/`)".into());
    }
    let bytes = path.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Some("has a `%` that does not start a %XX escape".into());
        }
    }
    None
}

/// A path template split into literal parts and variables.
fn template_parts(t: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = t;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest.find('}').ok_or("a `{` without its `}`")?;
                let var = &rest[1..end];
                if var.is_empty()
                    || !var
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    return Err(format!("variable `{{{var}}}` must be [a-z0-9_]+"));
                }
                if matches!(parts.last(), Some(Part::Var)) {
                    return Err("two variables next to each other".into());
                }
                parts.push(Part::Var);
                rest = &rest[end + 1..];
            }
            Some(n) => {
                parts.push(Part::Lit(&rest[..n]));
                rest = &rest[n..];
            }
            None => {
                parts.push(Part::Lit(rest));
                rest = "";
            }
        }
    }
    if !parts.iter().any(|p| matches!(p, Part::Var)) {
        return Err("has no `{variable}` (declare it as a resource instead)".into());
    }
    for p in &parts {
        if let Part::Lit(l) = p
            && (l.contains('}') || l.bytes().any(|b| !path_byte(b)))
        {
            return Err(format!("literal part `{l}` has a byte that is not allowed"));
        }
    }
    Ok(parts)
}

#[derive(Debug, Clone, Copy)]
enum Part<'a> {
    Lit(&'a str),
    Var,
}

/// Whether `path` is a member of `template`: its literal parts in order, each variable standing for a non-empty run
/// without `/`. Greedy-free: a variable ends at the first occurrence of the next literal part.
pub fn matches_template(template: &str, path: &str) -> bool {
    let Ok(parts) = template_parts(template) else {
        return false;
    };
    let mut rest = path;
    let mut i = 0;
    while i < parts.len() {
        match parts[i] {
            Part::Lit(l) => {
                let Some(r) = rest.strip_prefix(l) else {
                    return false;
                };
                rest = r;
            }
            Part::Var => {
                let end = match parts.get(i + 1) {
                    Some(Part::Lit(next)) => match rest.find(next) {
                        Some(n) => n,
                        None => return false,
                    },
                    _ => rest.len(),
                };
                let value = &rest[..end];
                if value.is_empty() || value.contains('/') {
                    return false;
                }
                rest = &rest[end..];
            }
        }
        i += 1;
    }
    rest.is_empty()
}

impl Offers {
    /// Whether a client may read `path`: a listed resource, or a member of a listed template.
    pub fn readable(&self, path: &str) -> bool {
        path_problem(path).is_none()
            && (self.resources.iter().any(|r| r.path == path)
                || self
                    .templates
                    .iter()
                    .any(|t| matches_template(&t.path_template, path)))
    }

    pub fn prompt(&self, name: &str) -> Option<&PromptInfo> {
        self.prompts.iter().find(|p| p.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty() && self.templates.is_empty() && self.prompts.is_empty()
    }

    /// Checks what the guest's `resources.list()` and `prompts.list()` returned; problems are collected, not
    /// stopped at, so one load names them all.
    pub fn check(
        listing: Option<resources::Listing>,
        prompts: Option<Vec<prompts::Prompt>>,
        problems: &mut Vec<String>,
    ) -> Offers {
        let mut out = Offers::default();
        let text = |what: String, s: &str, max: usize, problems: &mut Vec<String>| {
            if s.len() > max {
                problems.push(format!(
                    "{what} is {} bytes, more than the {max} allowed",
                    s.len()
                ));
            }
        };
        if let Some(l) = listing {
            if l.resources.len() + l.templates.len() > MAX_RESOURCES {
                problems.push(format!(
                    "{} resources and templates declared, more than the {MAX_RESOURCES} allowed",
                    l.resources.len() + l.templates.len()
                ));
                return out;
            }
            for r in l.resources {
                let shown = crate::caps::view::truncated(&r.path, 64);
                if let Some(p) = path_problem(&r.path) {
                    problems.push(format!("resource path `{shown}` {p}"));
                }
                if out.resources.iter().any(|o| o.path == r.path) {
                    problems.push(format!("resource path `{shown}` is declared twice"));
                }
                text(
                    format!("resource `{shown}`'s name"),
                    &r.name,
                    MAX_NAME_BYTES,
                    problems,
                );
                text(
                    format!("resource `{shown}`'s title"),
                    r.title.as_deref().unwrap_or(""),
                    MAX_NAME_BYTES,
                    problems,
                );
                text(
                    format!("resource `{shown}`'s MIME type"),
                    r.mime_type.as_deref().unwrap_or(""),
                    MAX_NAME_BYTES,
                    problems,
                );
                text(
                    format!("resource `{shown}`'s description"),
                    r.description.as_deref().unwrap_or(""),
                    MAX_DESCRIPTION_BYTES,
                    problems,
                );
                out.resources.push(ResourceInfo {
                    path: r.path,
                    name: r.name,
                    title: r.title,
                    description: r.description,
                    mime_type: r.mime_type,
                });
            }
            for t in l.templates {
                let shown = crate::caps::view::truncated(&t.path_template, 64);
                if t.path_template.len() > MAX_PATH_BYTES {
                    problems.push(format!(
                        "template `{shown}` is longer than {MAX_PATH_BYTES} bytes"
                    ));
                } else if let Err(p) = template_parts(&t.path_template) {
                    problems.push(format!("template `{shown}` {p}"));
                }
                text(
                    format!("template `{shown}`'s name"),
                    &t.name,
                    MAX_NAME_BYTES,
                    problems,
                );
                text(
                    format!("template `{shown}`'s title"),
                    t.title.as_deref().unwrap_or(""),
                    MAX_NAME_BYTES,
                    problems,
                );
                text(
                    format!("template `{shown}`'s MIME type"),
                    t.mime_type.as_deref().unwrap_or(""),
                    MAX_NAME_BYTES,
                    problems,
                );
                text(
                    format!("template `{shown}`'s description"),
                    t.description.as_deref().unwrap_or(""),
                    MAX_DESCRIPTION_BYTES,
                    problems,
                );
                out.templates.push(TemplateInfo {
                    path_template: t.path_template,
                    name: t.name,
                    title: t.title,
                    description: t.description,
                    mime_type: t.mime_type,
                });
            }
        }
        if let Some(ps) = prompts {
            if ps.len() > MAX_PROMPTS {
                problems.push(format!(
                    "{} prompts declared, more than the {MAX_PROMPTS} allowed",
                    ps.len()
                ));
                return out;
            }
            for p in ps {
                let shown = crate::caps::view::truncated(&p.name, 64);
                if !ident(&p.name) {
                    problems.push(format!("prompt name `{shown}` must be 1–64 of [a-z0-9_-]"));
                }
                if out.prompts.iter().any(|o| o.name == p.name) {
                    problems.push(format!("prompt `{shown}` is declared twice"));
                }
                if p.arguments.len() > MAX_PROMPT_ARGUMENTS {
                    problems.push(format!(
                        "prompt `{shown}` takes {} arguments, more than the {MAX_PROMPT_ARGUMENTS} allowed",
                        p.arguments.len()
                    ));
                }
                text(
                    format!("prompt `{shown}`'s title"),
                    p.title.as_deref().unwrap_or(""),
                    MAX_NAME_BYTES,
                    problems,
                );
                text(
                    format!("prompt `{shown}`'s description"),
                    p.description.as_deref().unwrap_or(""),
                    MAX_DESCRIPTION_BYTES,
                    problems,
                );
                let mut arguments: Vec<PromptArgumentInfo> = Vec::new();
                for a in p.arguments.into_iter().take(MAX_PROMPT_ARGUMENTS) {
                    if !ident(&a.name) {
                        problems.push(format!(
                            "prompt `{shown}`: argument name `{}` must be 1–64 of [a-z0-9_-]",
                            crate::caps::view::truncated(&a.name, 64)
                        ));
                    }
                    if arguments.iter().any(|o| o.name == a.name) {
                        problems.push(format!(
                            "prompt `{shown}`: argument `{}` is declared twice",
                            a.name
                        ));
                    }
                    text(
                        format!("prompt `{shown}`'s argument title"),
                        a.title.as_deref().unwrap_or(""),
                        MAX_NAME_BYTES,
                        problems,
                    );
                    text(
                        format!("prompt `{shown}`'s argument description"),
                        a.description.as_deref().unwrap_or(""),
                        MAX_DESCRIPTION_BYTES,
                        problems,
                    );
                    arguments.push(PromptArgumentInfo {
                        name: a.name,
                        title: a.title,
                        description: a.description,
                        required: a.required,
                    });
                }
                out.prompts.push(PromptInfo {
                    name: p.name,
                    title: p.title,
                    description: p.description,
                    arguments,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_checked() {
        assert_eq!(path_problem("today"), None);
        assert_eq!(path_problem("notes/2026-01-01.md"), None);
        assert_eq!(path_problem("a%20b"), None);
        for bad in [
            "", "/abs", "a//b", "a/../b", "a/", "a b", "a%2", "a%zz", "ü", "a?b",
        ] {
            assert!(path_problem(bad).is_some(), "{bad:?} must be refused");
        }
        assert!(path_problem(&"a".repeat(MAX_PATH_BYTES + 1)).is_some());
    }

    #[test]
    fn templates_match_one_segment_part_per_variable() {
        assert!(matches_template("day/{date}", "day/2026-01-01"));
        assert!(matches_template("day/{date}.md", "day/2026-01-01.md"));
        assert!(matches_template("{a}/x/{b}", "1/x/2"));
        assert!(!matches_template("day/{date}", "day/"));
        assert!(!matches_template("day/{date}", "day/a/b"));
        assert!(!matches_template("day/{date}", "week/1"));
        assert!(!matches_template("day/{date}.md", "day/1.txt"));
        assert!(template_parts("plain").is_err());
        assert!(template_parts("{a}{b}").is_err());
        assert!(template_parts("x/{A}").is_err());
        assert!(template_parts("x/{a").is_err());
    }
}
