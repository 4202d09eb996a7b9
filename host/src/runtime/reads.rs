//! Reading a resource and rendering a prompt (contract 0.2.0): two more [`Invocation`]s of [`Host::invoke`], so
//! each runs exactly as a tool call does (fresh store, fuel, memory cap, deadline, cancellation, standby, report),
//! and the catalog ledgers them like calls. Labels in reports and the ledger: `resource:<path>`, `prompt:<name>`.

use wasmtime::Store;

use super::host::Host;
use super::limits::Limits;
use super::offers::path_problem;
use super::plugin::LoadedPlugin;
use super::run::Invocation;
use super::store::StoreData;
use crate::bindings::{Plugin, prompts, resources, tools};
use crate::call::{Body, CallError, CallResult, PromptMessage, RenderedPrompt, ResourceContent};
use crate::caps::config::Redactor;

/// The report and ledger label of a read of `path`.
pub fn resource_label(path: &str) -> String {
    format!("resource:{path}")
}

/// The report and ledger label of a rendering of prompt `name`.
pub fn prompt_label(name: &str) -> String {
    format!("prompt:{name}")
}

/// Longest MIME type kept (bytes).
const MAX_MIME_BYTES: usize = 256;

impl Host {
    /// Reads resource `path` of `plugin`: refused as `not-found` before any guest code runs unless the path is
    /// listed or matches a listed template.
    pub async fn read_resource(
        &self,
        plugin: &LoadedPlugin,
        path: &str,
    ) -> CallResult<Vec<ResourceContent>> {
        let shown = crate::caps::view::truncated(path, 256);
        let early = (!plugin.manifest.offers.readable(path)).then(|| CallError::NotFound {
            message: format!(
                "plugin `{}` has no resource `{shown}` (see resources/list and resources/templates/list)",
                plugin.id()
            ),
        });
        self.invoke(plugin, &resource_label(&shown), early, &Read { path })
            .await
    }

    /// Renders prompt `name` of `plugin` with `arguments`: refused before any guest code runs when the prompt is
    /// unknown (`not-found`), a required argument is missing or an argument is not declared (`invalid-arguments`).
    pub async fn get_prompt(
        &self,
        plugin: &LoadedPlugin,
        name: &str,
        arguments: &[(String, String)],
    ) -> CallResult<RenderedPrompt> {
        let shown = crate::caps::view::truncated(name, 64);
        let early = match plugin.manifest.offers.prompt(name) {
            None => Some(CallError::NotFound {
                message: format!("plugin `{}` has no prompt `{shown}`", plugin.id()),
            }),
            Some(p) => {
                let missing: Vec<&str> = p
                    .arguments
                    .iter()
                    .filter(|a| a.required && !arguments.iter().any(|(k, _)| *k == a.name))
                    .map(|a| a.name.as_str())
                    .collect();
                let unknown: Vec<String> = arguments
                    .iter()
                    .filter(|(k, _)| !p.arguments.iter().any(|a| a.name == *k))
                    .map(|(k, _)| crate::caps::view::truncated(k, 64))
                    .collect();
                if !missing.is_empty() {
                    Some(CallError::InvalidArguments {
                        message: format!("prompt `{shown}` needs {}", missing.join(", ")),
                    })
                } else if !unknown.is_empty() {
                    Some(CallError::InvalidArguments {
                        message: format!(
                            "prompt `{shown}` takes no argument {}",
                            unknown.join(", ")
                        ),
                    })
                } else {
                    None
                }
            }
        };
        let arguments: Vec<crate::bindings::types::Pair> = arguments
            .iter()
            .map(|(key, value)| crate::bindings::types::Pair {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        self.invoke(
            plugin,
            &prompt_label(&shown),
            early,
            &Get {
                name,
                arguments: &arguments,
            },
        )
        .await
    }
}

struct Read<'a> {
    path: &'a str,
}

impl Invocation for Read<'_> {
    type Raw = Vec<resources::Contents>;
    type Output = Vec<ResourceContent>;
    async fn run<'a>(
        &'a self,
        instance: &'a Plugin,
        store: &'a mut Store<StoreData>,
    ) -> wasmtime::Result<Result<Self::Raw, tools::ToolError>> {
        match instance.plughost_plugin_resources(&mut *store)? {
            Some(r) => r.call_read(store, self.path).await,
            // Not reached: a path is readable only if the plugin listed it, which needs the export.
            None => Ok(Err(tools::ToolError::NotFound(
                "the plugin exports no resources".into(),
            ))),
        }
    }
    fn convert(
        &self,
        raw: Self::Raw,
        limits: &Limits,
        redactor: &Redactor,
    ) -> Result<Self::Output, CallError> {
        let blocks = raw.len() as u64;
        if blocks > u64::from(limits.max_output_blocks) {
            return Err(CallError::OutputTooManyBlocks {
                blocks,
                limit: u64::from(limits.max_output_blocks),
            });
        }
        // Serialized as MCP sends it: text as it is (escapes aside), blobs base64 (4 bytes per 3).
        let size: u64 = raw
            .iter()
            .map(|c| {
                let body = match &c.body {
                    resources::Body::Text(t) => t.len() as u64,
                    resources::Body::Blob(b) => (b.len() as u64).div_ceil(3) * 4,
                };
                body + c.path.len() as u64 + c.mime_type.as_ref().map_or(0, |m| m.len() as u64) + 64
            })
            .sum();
        if size > limits.max_output_bytes {
            return Err(CallError::OutputTooLarge {
                bytes: size,
                limit: limits.max_output_bytes,
            });
        }
        raw.into_iter()
            .map(|c| {
                if let Some(p) = path_problem(&c.path) {
                    return Err(CallError::Failed {
                        message: format!(
                            "the plugin returned contents for path `{}`, which {p}",
                            crate::caps::view::truncated(&c.path, 64)
                        ),
                    });
                }
                // A path reaches the client as the contents' URI: one that shows a secret is refused, not rewritten
                // (a redacted path would name another resource).
                if redactor.reveals(&c.path) {
                    return Err(CallError::Failed {
                        message:
                            "the plugin returned contents for a path that shows one of its secrets"
                                .into(),
                    });
                }
                let body = match c.body {
                    resources::Body::Text(t) => Body::Text(redactor.redact(&t).into_owned()),
                    // Bytes that are text are redacted like text (on character boundaries); other bytes may still
                    // hold a secret's bytes among them, which are replaced where they stand.
                    resources::Body::Blob(b) => match String::from_utf8(b) {
                        Ok(t) => Body::Blob(redactor.redact(&t).into_owned().into_bytes()),
                        Err(e) => Body::Blob(redactor.redact_bytes(e.into_bytes())),
                    },
                };
                Ok(ResourceContent {
                    path: c.path,
                    mime_type: c.mime_type.map(|m| {
                        crate::caps::view::truncated(&redactor.redact(&m), MAX_MIME_BYTES)
                    }),
                    body,
                })
            })
            .collect()
    }
}

struct Get<'a> {
    name: &'a str,
    arguments: &'a [crate::bindings::types::Pair],
}

impl Invocation for Get<'_> {
    type Raw = prompts::Rendered;
    type Output = RenderedPrompt;
    async fn run<'a>(
        &'a self,
        instance: &'a Plugin,
        store: &'a mut Store<StoreData>,
    ) -> wasmtime::Result<Result<Self::Raw, tools::ToolError>> {
        match instance.plughost_plugin_prompts(&mut *store)? {
            Some(p) => p.call_get(store, self.name, self.arguments).await,
            None => Ok(Err(tools::ToolError::NotFound(
                "the plugin exports no prompts".into(),
            ))),
        }
    }
    fn convert(
        &self,
        raw: Self::Raw,
        limits: &Limits,
        redactor: &Redactor,
    ) -> Result<Self::Output, CallError> {
        let blocks = raw.messages.len() as u64;
        if blocks > u64::from(limits.max_output_blocks) {
            return Err(CallError::OutputTooManyBlocks {
                blocks,
                limit: u64::from(limits.max_output_blocks),
            });
        }
        let size: u64 = raw
            .messages
            .iter()
            .map(|m| m.text.len() as u64 + 64)
            .sum::<u64>()
            + raw.description.as_ref().map_or(0, |d| d.len() as u64);
        if size > limits.max_output_bytes {
            return Err(CallError::OutputTooLarge {
                bytes: size,
                limit: limits.max_output_bytes,
            });
        }
        Ok(RenderedPrompt {
            description: raw.description.map(|d| redactor.redact(&d).into_owned()),
            messages: raw
                .messages
                .into_iter()
                .map(|m| PromptMessage {
                    role: match m.role {
                        prompts::Role::User => "user",
                        prompts::Role::Assistant => "assistant",
                    },
                    text: redactor.redact(&m.text).into_owned(),
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_shows_no_secret_in_its_path_or_mime_type() {
        const SECRET: &str = "sEcReT_tok3n_9f8e7d6c5b4a";
        let redactor = Redactor::new([&SECRET.to_string()]);
        let limits = Limits::default();
        let read = Read { path: "notes" };
        let contents = |path: &str, mime: &str| {
            vec![resources::Contents {
                path: path.into(),
                mime_type: Some(mime.into()),
                body: resources::Body::Text("fine".into()),
            }]
        };
        let out = read
            .convert(
                contents("notes", &format!("text/plain; x={SECRET}")),
                &limits,
                &redactor,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            out[0].mime_type.as_deref(),
            Some("text/plain; x=[REDACTED]")
        );
        let refused = |path: &str| {
            read.convert(contents(path, "text/plain"), &limits, &redactor)
                .map(|_| ())
                .expect_err(path)
        };
        let err = refused(&format!("notes/{SECRET}"));
        assert!(
            err.to_string().contains("shows one of its secrets"),
            "{err}"
        );
        assert!(!err.to_string().contains("tok3n"), "{err}");
        // A path the rules refuse is named in the error, redacted as every error of a call is on its way out.
        let err = super::super::output::redact_error(refused(&format!("a b/{SECRET}")), &redactor);
        assert!(!err.to_string().contains("tok3n"), "{err}");
    }
}
