//! Resources and prompts (contract 0.2.0): what a plugin offers MCP clients besides tools, and the `progress`
//! helper. Declared with [`Resource`] and [`Prompt`], listed in [`export_plugin!`](crate::export_plugin)'s
//! `resources: [...]` and `prompts: [...]` (or returned by [`Plugin::resources`](crate::Plugin::resources) and
//! [`Plugin::prompts`](crate::Plugin::prompts)).

use crate::__bindings::exports::plughost::plugin0_2_0::{prompts as rawp, resources as rawr};
use crate::ToolError;

/// The body of a resource: text, or bytes (clients get them base64-encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Text(String),
    Blob(Vec<u8>),
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::Text(s)
    }
}

impl From<&str> for Body {
    fn from(s: &str) -> Body {
        Body::Text(s.to_string())
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Body {
        Body::Blob(b)
    }
}

/// What a read asked for: the path, and for a template the value of each `{variable}` (percent-decoded).
#[derive(Debug, Clone)]
pub struct ResourceRequest {
    pub path: String,
    vars: Vec<(String, String)>,
}

impl ResourceRequest {
    /// The value of template variable `name`, if the resource is a template that has it.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Reader = Box<dyn Fn(&ResourceRequest) -> Result<Body, ToolError>>;

/// A resource at a fixed path, or (with [`Resource::template`]) a family of them.
///
/// A path is relative to the plugin (clients see `plughost://plugins/<id>/r/<path>`): `A-Z a-z 0-9 - . _ ~ /`
/// and `%XX`, no empty, `.` or `..` segment. A template's `{variable}`s each stand for a non-empty part of one
/// segment.
///
/// ```no_run
/// use plughost_guest::prelude::*;
///
/// /// Today's note.
/// fn today() -> Resource {
///     Resource::new("today", "today", |_| Ok("Buy milk.".into())).mime_type("text/plain")
/// }
///
/// /// Any day's note.
/// fn day() -> Resource {
///     Resource::template("day/{date}", "day", |req| {
///         let date = req.var("date").unwrap_or_default();
///         Ok(format!("Notes of {date}: none.").into())
///     })
///     .description("The notes of one day, e.g. day/2026-01-01.")
/// }
/// # /// Does nothing.
/// # #[tool] fn noop() -> Result<String, ToolError> { Ok(String::new()) }
/// # export_plugin! { id: "notes", description: "Notes.", tools: [noop], resources: [today, day] }
/// # fn main() {}
/// ```
pub struct Resource {
    path: &'static str,
    name: &'static str,
    template: bool,
    title: Option<&'static str>,
    description: Option<&'static str>,
    mime_type: Option<&'static str>,
    reader: Reader,
}

impl std::fmt::Debug for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resource")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Resource {
    /// A resource at `path` whose body `read` returns.
    pub fn new(
        path: &'static str,
        name: &'static str,
        read: impl Fn(&ResourceRequest) -> Result<Body, ToolError> + 'static,
    ) -> Resource {
        Resource {
            path,
            name,
            template: false,
            title: None,
            description: None,
            mime_type: None,
            reader: Box::new(read),
        }
    }

    /// A family of resources: `path_template` with `{variable}`s, e.g. `day/{date}`.
    pub fn template(
        path_template: &'static str,
        name: &'static str,
        read: impl Fn(&ResourceRequest) -> Result<Body, ToolError> + 'static,
    ) -> Resource {
        Resource {
            template: true,
            ..Resource::new(path_template, name, read)
        }
    }

    pub fn title(mut self, title: &'static str) -> Self {
        self.title = Some(title);
        self
    }
    pub fn description(mut self, description: &'static str) -> Self {
        self.description = Some(description);
        self
    }
    pub fn mime_type(mut self, mime_type: &'static str) -> Self {
        self.mime_type = Some(mime_type);
        self
    }
}

/// The `{variable}` values of `path` if it is a member of `template`, else `None`.
fn match_template(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let mut vars = Vec::new();
    let mut t = template;
    let mut p = path;
    while !t.is_empty() {
        if let Some(rest) = t.strip_prefix('{') {
            let end = rest.find('}')?;
            let name = &rest[..end];
            t = &rest[end + 1..];
            let literal_end = t.find('{').unwrap_or(t.len());
            let next = &t[..literal_end];
            let n = if next.is_empty() {
                p.len()
            } else {
                p.find(next)?
            };
            let value = &p[..n];
            if value.is_empty() || value.contains('/') {
                return None;
            }
            vars.push((name.to_string(), percent_decode(value)));
            p = &p[n..];
        } else {
            let end = t.find('{').unwrap_or(t.len());
            p = p.strip_prefix(&t[..end])?;
            t = &t[end..];
        }
    }
    p.is_empty().then_some(vars)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// One argument of a prompt (always a string).
#[derive(Debug, Clone)]
struct Argument {
    name: &'static str,
    description: Option<&'static str>,
    required: bool,
}

/// The arguments a prompt was rendered with.
#[derive(Debug, Clone)]
pub struct PromptArgs(Vec<(String, String)>);

impl PromptArgs {
    /// The value of argument `name`, if given. A required argument is always there (the host checks).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One message of a rendered prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    assistant: bool,
    text: String,
}

impl Message {
    /// A message from the user.
    pub fn user(text: impl Into<String>) -> Message {
        Message {
            assistant: false,
            text: text.into(),
        }
    }
    /// A message from the assistant.
    pub fn assistant(text: impl Into<String>) -> Message {
        Message {
            assistant: true,
            text: text.into(),
        }
    }
}

type Renderer = Box<dyn Fn(&PromptArgs) -> Result<Vec<Message>, ToolError>>;

/// A prompt template: named, with string arguments, rendered by the plugin into messages.
///
/// ```no_run
/// use plughost_guest::prelude::*;
///
/// /// Asks for a summary.
/// fn summarize() -> Prompt {
///     Prompt::new("summarize", "Summarize a topic.", |args| {
///         let topic = args.get("topic").unwrap_or("everything");
///         Ok(vec![Message::user(format!("Summarize {topic} in three lines."))])
///     })
///     .argument("topic", "What to summarize.", true)
/// }
/// # /// Does nothing.
/// # #[tool] fn noop() -> Result<String, ToolError> { Ok(String::new()) }
/// # export_plugin! { id: "notes", description: "Notes.", tools: [noop], prompts: [summarize] }
/// # fn main() {}
/// ```
pub struct Prompt {
    name: &'static str,
    title: Option<&'static str>,
    description: &'static str,
    arguments: Vec<Argument>,
    render: Renderer,
}

impl std::fmt::Debug for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompt")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Prompt {
    /// A prompt named `name` (`[a-z0-9_-]{1,64}`) that `render` turns into messages.
    pub fn new(
        name: &'static str,
        description: &'static str,
        render: impl Fn(&PromptArgs) -> Result<Vec<Message>, ToolError> + 'static,
    ) -> Prompt {
        Prompt {
            name,
            title: None,
            description,
            arguments: Vec::new(),
            render: Box::new(render),
        }
    }
    /// Declares an argument.
    pub fn argument(
        mut self,
        name: &'static str,
        description: &'static str,
        required: bool,
    ) -> Self {
        self.arguments.push(Argument {
            name,
            description: Some(description),
            required,
        });
        self
    }
    pub fn title(mut self, title: &'static str) -> Self {
        self.title = Some(title);
        self
    }
}

/// Reports how far the running call is: `done` of `total` (when known), with a short message. The client sees it
/// as `notifications/progress` if it asked for progress; otherwise, and beyond the host's rate limit (one report
/// per 50 ms, the final `done == total` one always kept), the report is dropped. Needs no grant; never fails.
///
/// ```no_run
/// use plughost_guest::prelude::*;
///
/// /// Does ten steps.
/// #[tool]
/// fn steps() -> Result<String, ToolError> {
///     for i in 1..=10 {
///         progress(i, Some(10), &format!("step {i}"));
///     }
///     Ok("done".into())
/// }
/// # export_plugin! { id: "steps", description: "Steps.", tools: [steps] }
/// # fn main() {}
/// ```
pub fn progress(done: u64, total: Option<u64>, message: &str) {
    let message = (!message.is_empty()).then_some(message);
    crate::__bindings::plughost::plugin0_2_0::progress::report(done, total, message);
}

fn raw_error(e: ToolError) -> rawr::ToolError {
    e.into_raw()
}

/// The `resources` export of plugin `P`.
pub(crate) fn list_resources(all: Vec<Resource>) -> rawr::Listing {
    let mut resources = Vec::new();
    let mut templates = Vec::new();
    for r in all {
        if r.template {
            templates.push(rawr::Template {
                path_template: r.path.to_string(),
                name: r.name.to_string(),
                title: r.title.map(str::to_string),
                description: r.description.map(str::to_string),
                mime_type: r.mime_type.map(str::to_string),
            });
        } else {
            resources.push(rawr::Resource {
                path: r.path.to_string(),
                name: r.name.to_string(),
                title: r.title.map(str::to_string),
                description: r.description.map(str::to_string),
                mime_type: r.mime_type.map(str::to_string),
            });
        }
    }
    rawr::Listing {
        resources,
        templates,
    }
}

pub(crate) fn read_resource(
    all: Vec<Resource>,
    path: String,
) -> Result<Vec<rawr::Contents>, rawr::ToolError> {
    let found = all
        .iter()
        .find(|r| !r.template && r.path == path)
        .map(|r| (r, Vec::new()));
    let found = found.or_else(|| {
        all.iter()
            .filter(|r| r.template)
            .find_map(|r| match_template(r.path, &path).map(|vars| (r, vars)))
    });
    let Some((r, vars)) = found else {
        return Err(rawr::ToolError::NotFound(format!("no resource `{path}`")));
    };
    let req = ResourceRequest {
        path: path.clone(),
        vars,
    };
    let body = (r.reader)(&req).map_err(raw_error)?;
    Ok(vec![rawr::Contents {
        path,
        mime_type: r.mime_type.map(str::to_string),
        body: match body {
            Body::Text(t) => rawr::Body::Text(t),
            Body::Blob(b) => rawr::Body::Blob(b),
        },
    }])
}

pub(crate) fn list_prompts(all: Vec<Prompt>) -> Vec<rawp::Prompt> {
    all.into_iter()
        .map(|p| rawp::Prompt {
            name: p.name.to_string(),
            title: p.title.map(str::to_string),
            description: Some(p.description.to_string()),
            arguments: p
                .arguments
                .iter()
                .map(|a| rawp::Argument {
                    name: a.name.to_string(),
                    title: None,
                    description: a.description.map(str::to_string),
                    required: a.required,
                })
                .collect(),
        })
        .collect()
}

pub(crate) fn get_prompt(
    all: Vec<Prompt>,
    name: String,
    arguments: Vec<crate::__bindings::plughost::plugin0_1_0::types::Pair>,
) -> Result<rawp::Rendered, rawp::ToolError> {
    let Some(p) = all.into_iter().find(|p| p.name == name) else {
        return Err(rawp::ToolError::NotFound(format!("no prompt `{name}`")));
    };
    let args = PromptArgs(arguments.into_iter().map(|a| (a.key, a.value)).collect());
    let messages = (p.render)(&args).map_err(raw_error)?;
    Ok(rawp::Rendered {
        description: Some(p.description.to_string()),
        messages: messages
            .into_iter()
            .map(|m| rawp::Message {
                role: if m.assistant {
                    rawp::Role::Assistant
                } else {
                    rawp::Role::User
                },
                text: m.text,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_give_their_variables() {
        let v = match_template("day/{date}.md", "day/2026-01-01.md").expect("match");
        assert_eq!(v, vec![("date".to_string(), "2026-01-01".to_string())]);
        assert_eq!(
            match_template("{a}/x/{b}", "1%202/x/3"),
            Some(vec![("a".into(), "1 2".into()), ("b".into(), "3".into())])
        );
        assert_eq!(match_template("day/{date}", "day/a/b"), None);
        assert_eq!(match_template("day/{date}", "week/1"), None);
    }
}
