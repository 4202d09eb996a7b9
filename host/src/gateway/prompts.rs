//! Plugin prompts over MCP (contract 0.2.0): `prompts/list` (paginated, namespaced like tools:
//! `<plugin>__<prompt>`) and `prompts/get`, which renders through the catalog exactly as a tool call runs (limits,
//! contracts, ledger, label `prompt:<name>`). A scoped caller sees the prompts of the plugins it may use.

use rmcp::ErrorData;
use rmcp::model::{
    GetPromptRequestParams, GetPromptResult, ListPromptsResult, MetaObject, Prompt, PromptArgument,
    PromptMessage, Role,
};
use serde_json::{Value, json};

use super::Gateway;
use super::principal::Principal;
use super::resources::{call_error, may_see, visible};
use super::wire::{REPORT_META_KEY, page};
use crate::ledger::Caller;

pub(super) fn list(
    gateway: &Gateway,
    principal: Option<&Principal>,
    cursor: Option<&str>,
    size: usize,
) -> Result<ListPromptsResult, ErrorData> {
    let mut all = Vec::new();
    for e in visible(gateway, principal) {
        let id = e.plugin.id();
        for p in &e.plugin.manifest.offers.prompts {
            let arguments = p
                .arguments
                .iter()
                .map(|a| {
                    let mut arg = PromptArgument::new(a.name.clone());
                    arg.title = a.title.clone();
                    arg.description = a.description.clone();
                    arg.required = Some(a.required);
                    arg
                })
                .collect::<Vec<_>>();
            let mut prompt = Prompt::new(
                super::tool_name(id, &p.name),
                p.description.clone(),
                Some(arguments),
            );
            prompt.title = p.title.clone();
            all.push(prompt);
        }
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let (items, next) = page(&all, |p| p.name.as_str(), cursor, size)?;
    let mut result = ListPromptsResult::with_all_items(items);
    result.next_cursor = next;
    Ok(result)
}

pub(super) async fn get(
    gateway: &Gateway,
    principal: Option<&Principal>,
    request: GetPromptRequestParams,
    caller: &Caller,
) -> Result<GetPromptResult, ErrorData> {
    let name = request.name.as_str();
    let unknown = || {
        ErrorData::invalid_params(
            format!(
                "unknown prompt `{}`: see prompts/list",
                crate::caps::view::truncated(name, 128)
            ),
            Some(json!({ "kind": "not-found" })),
        )
    };
    let (id, prompt) = super::split_name(name).ok_or_else(unknown)?;
    let entry = gateway
        .catalog()
        .get(id)
        .filter(|e| may_see(principal, e))
        .ok_or_else(unknown)?;
    let mut arguments = Vec::new();
    for (k, v) in request.arguments.unwrap_or_default() {
        match v {
            Value::String(s) => arguments.push((k, s)),
            _ => {
                return Err(ErrorData::invalid_params(
                    format!(
                        "prompt argument `{}` must be a string",
                        crate::caps::view::truncated(&k, 64)
                    ),
                    Some(json!({ "kind": "invalid-arguments" })),
                ));
            }
        }
    }
    let result = entry
        .get_prompt_as(gateway.catalog().host(), prompt, &arguments, caller)
        .await;
    gateway.metrics.record(&result.report);
    let rendered = match result.result {
        Ok(r) => r,
        Err(e) => return Err(call_error(&e, &result.report, ErrorData::invalid_params)),
    };
    let messages = rendered
        .messages
        .into_iter()
        .map(|m| {
            let role = if m.role == "assistant" {
                Role::Assistant
            } else {
                Role::User
            };
            PromptMessage::new_text(role, m.text)
        })
        .collect();
    let mut out = GetPromptResult::new(messages);
    out.description = rendered.description;
    let mut meta = MetaObject::new();
    meta.0.insert(
        REPORT_META_KEY.into(),
        serde_json::to_value(&result.report).unwrap_or_default(),
    );
    out.meta = Some(meta);
    Ok(out)
}
