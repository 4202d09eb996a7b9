//! The gateway as an MCP server (rmcp's dynamic `ServerHandler`): `tools/list` with cursor pagination over the
//! namespaced index, `tools/call` with schema-checked arguments and the call report in `_meta`, and
//! `notifications/tools/list_changed` when the tool set changes (legacy sessions after `initialized`; 2026-07-28
//! clients through `subscriptions/listen`), and each plugin's docs as a resource (`docs.rs`); the plugins' own
//! resources and prompts (contract 0.2.0) in `resources.rs` and `prompts.rs`, with their list_changed sent like
//! tools'; a tool's progress reports as `notifications/progress` when the client sent a progress token; and
//! long-running tools as tasks (`tasks.rs`). The same handler serves stdio and Streamable HTTP.

use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CustomRequest, CustomResult, ErrorCode,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProgressNotificationParam, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig, SubscriptionFilter, Tool,
};
use rmcp::model::{
    CancelTaskParams, CancelledNotificationParam, GetTaskParams, GetTaskResult, UpdateTaskParams,
};
use rmcp::service::{
    NotificationContext, RequestContext, SubscriptionContext, SubscriptionSendError,
};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

use super::auth::Principal;
use super::listing::build_listing;
use super::{Gateway, GatewayError, Reply};
use crate::ledger::Caller;

pub use super::answer::to_call_result;
use super::answer::{CallAnswer, answer_of};
pub use super::wire::{ERROR_META_KEY, REPORT_META_KEY};
use super::wire::{decode_cursor, encode_cursor};

/// Tools per `tools/list` page unless configured.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// The `tools/list` answer for one index, built once per tool-set change.
#[derive(Debug, Default)]
struct Listing {
    /// Identity of the index this listing was built from.
    index: usize,
    tools: Arc<Vec<Tool>>,
}

/// An MCP server over the gateway. Cheap to clone: one per session/connection.
#[derive(Debug, Clone)]
pub struct McpServer {
    gateway: Arc<Gateway>,
    /// `stdio` or `http`, for the ledger.
    transport: &'static str,
    /// The principal every request on this server authenticated as (HTTP with a bearer token).
    principal: Option<Arc<str>>,
    page_size: usize,
    listing: Arc<Mutex<Listing>>,
    /// Tasks of long-running tools, shared by every connection and session of this server.
    tasks: Arc<super::tasks::Tasks>,
    /// Session calls the HTTP fast path is running, which `notifications/cancelled` may name.
    session_calls: Option<Arc<super::session_calls::SessionCalls>>,
}

impl McpServer {
    pub fn new(gateway: Arc<Gateway>) -> McpServer {
        McpServer {
            gateway,
            transport: "stdio",
            principal: None,
            page_size: DEFAULT_PAGE_SIZE,
            listing: Arc::default(),
            tasks: Arc::default(),
            session_calls: None,
        }
    }

    /// Lets `notifications/cancelled` stop the session calls the HTTP fast path runs.
    pub fn with_session_calls(
        mut self,
        calls: Arc<super::session_calls::SessionCalls>,
    ) -> McpServer {
        self.session_calls = Some(calls);
        self
    }

    /// Bounds the tasks of long-running tools (count per principal, result size, retention).
    pub fn with_task_limits(mut self, limits: super::tasks::TaskLimits) -> McpServer {
        self.tasks = Arc::new(super::tasks::Tasks::new(limits));
        self
    }

    /// The tasks of this server (for stopping them at shutdown).
    pub fn tasks(&self) -> &Arc<super::tasks::Tasks> {
        &self.tasks
    }

    /// Who owns a task a request names: the principal it authenticated as.
    fn owner(&self, context: &RequestContext<RoleServer>) -> Option<String> {
        self.caller(context).principal
    }

    /// Records calls as made over `transport`, by `principal` when requests are authenticated.
    pub fn with_transport(mut self, transport: &'static str, principal: Option<&str>) -> McpServer {
        self.transport = transport;
        self.principal = principal.map(Arc::from);
        self
    }

    /// What the stdio fast path needs of this server: the gateway, the transport and principal it records calls as.
    pub(super) fn fast_parts(&self) -> (Arc<Gateway>, &'static str, Option<Arc<str>>) {
        (self.gateway.clone(), self.transport, self.principal.clone())
    }

    /// Who authenticated this request over HTTP (see `auth.rs`), if anyone.
    fn principal(context: &RequestContext<RoleServer>) -> Option<Principal> {
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Principal>())
            .cloned()
    }

    /// Who is calling: the transport, the MCP session (or the client's name: the one a 2026-07-28 request gives in
    /// its `_meta`, else the one from `initialize`), the principal.
    fn caller(&self, context: &RequestContext<RoleServer>) -> Caller {
        let session = super::session_calls::session_of(&context.extensions)
            .map(str::to_string)
            .or_else(|| super::meta_client(&context.meta))
            .or_else(|| {
                context
                    .peer
                    .peer_info()
                    .map(|i| super::client_label(&i.client_info))
            });
        Caller {
            transport: self.transport.into(),
            session,
            principal: Self::principal(context)
                .map(|p| p.name.to_string())
                .or_else(|| self.principal.as_deref().map(str::to_string)),
        }
    }

    /// Sets the number of tools per `tools/list` page (at least 1).
    pub fn with_page_size(mut self, page_size: usize) -> McpServer {
        self.page_size = page_size.max(1);
        self
    }

    /// Every exposed tool in listing order: plugin tools and the management tools, sorted by name.
    fn tools(&self) -> Arc<Vec<Tool>> {
        let index = self.gateway.index();
        let id = Arc::as_ptr(&index) as usize;
        let mut cached = self.listing.lock().unwrap_or_else(|p| p.into_inner());
        if cached.index != id || cached.tools.is_empty() {
            *cached = Listing {
                index: id,
                tools: Arc::new(build_listing(&index)),
            };
        }
        cached.tools.clone()
    }

    fn page(
        &self,
        cursor: Option<&str>,
        principal: Option<&Principal>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = self.tools();
        if let Some(p) = principal.filter(|p| p.scope.is_some()) {
            // A scoped token sees only its tools.
            let index = self.gateway.index();
            let visible: Vec<Tool> = tools
                .iter()
                .filter(|t| {
                    let plugin = index.tools.get(t.name.as_ref()).map(|e| e.plugin.as_str());
                    p.allows(plugin, &t.name)
                })
                .cloned()
                .collect();
            tools = Arc::new(visible);
        }
        let start = match cursor {
            None => 0,
            Some(c) => {
                let after = decode_cursor(c).ok_or_else(|| {
                    ErrorData::invalid_params(
                        "invalid cursor: pass back the nextCursor of a previous tools/list",
                        Some(json!({ "cursor": c })),
                    )
                })?;
                // Names are sorted: resume after the last one the client saw, even if the set changed since.
                tools.partition_point(|t| t.name.as_ref() <= after.as_str())
            }
        };
        let end = (start + self.page_size).min(tools.len());
        let mut result = ListToolsResult::with_all_items(tools[start..end].to_vec());
        if end < tools.len() {
            result.next_cursor = Some(encode_cursor(&tools[end - 1].name));
        }
        Ok(result)
    }
}

/// Refuses a tool the principal's scope does not cover (and records the refusal). Every `tools/call` passes here,
/// on rmcp's path and on the HTTP fast path.
pub(super) async fn check_scope(
    gateway: &Gateway,
    principal: Option<&Principal>,
    name: &str,
    caller: &Caller,
) -> Result<(), ErrorData> {
    let Some(p) = principal.filter(|p| p.scope.is_some()) else {
        return Ok(());
    };
    let plugin = gateway.index().tools.get(name).map(|e| e.plugin.clone());
    if p.allows(plugin.as_deref(), name) {
        return Ok(());
    }
    Err(gateway_error(
        gateway.refuse_out_of_scope(name, &p.name, caller).await,
    ))
}

/// A tool call answered in line: cancelling `ct` stops the guest (the call still ends with a report and is
/// ledgered). Shared by rmcp's path and the HTTP fast path.
pub(super) async fn run_call(
    gateway: &Gateway,
    name: &str,
    args: Option<serde_json::Map<String, Value>>,
    caller: &Caller,
    ct: tokio_util::sync::CancellationToken,
) -> Result<CallAnswer, ErrorData> {
    crate::runtime::cancellable(ct, gateway.call(name, args, caller))
        .await
        .map(answer_of)
        .map_err(gateway_error)
}

fn gateway_error(e: GatewayError) -> ErrorData {
    let message = e.to_string();
    match e {
        GatewayError::UnknownTool(tool) => {
            ErrorData::invalid_params(message, Some(json!({ "tool": tool })))
        }
        GatewayError::InvalidArguments { tool, violations } => ErrorData::invalid_params(
            message,
            Some(json!({ "tool": tool, "violations": violations })),
        ),
        GatewayError::Unavailable(_) => {
            ErrorData::invalid_params(message, Some(json!({ "kind": "unavailable" })))
        }
        GatewayError::OutOfScope { tool, .. } => {
            ErrorData::invalid_params(message, Some(json!({ "kind": "denied", "tool": tool })))
        }
    }
}

/// Runs `call` with the guest's progress reports sent to `peer` as `notifications/progress` for `token`, all of
/// them before the call's response (the forwarder drains the channel, which closes when the call ends).
///
/// Not an `async fn`: `call` goes into the progress scope here, so the returned future holds it once.
fn with_progress<F: std::future::Future>(
    token: rmcp::model::ProgressToken,
    peer: &rmcp::Peer<RoleServer>,
    call: F,
) -> impl std::future::Future<Output = F::Output> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<crate::caps::progress::Progress>(16);
    let scoped = crate::runtime::with_progress(tx, call);
    let peer = peer.clone();
    async move {
        let forward = tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                let mut param = ProgressNotificationParam::new(token.clone(), p.done as f64);
                param.total = p.total.map(|t| t as f64);
                param.message = p.message;
                if peer.notify_progress(param).await.is_err() {
                    return;
                }
            }
        });
        let out = scoped.await;
        // Bounded: the sender is gone (the call's store let go of its clone), so the channel drains and closes.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), forward).await;
        out
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let mut implementation = Implementation::new("plughost", env!("CARGO_PKG_VERSION"));
        implementation.title = Some("plughost".into());
        implementation.description =
            Some("WebAssembly component plugins under grants, quotas and a metered sandbox".into());
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_prompts()
                .enable_prompts_list_changed()
                .enable_resources()
                .enable_resources_list_changed()
                .enable_tools()
                .enable_tool_list_changed()
                .enable_tasks()
                .build(),
        )
        .with_server_info(implementation)
        .with_instructions(
            "Tools are named <plugin>__<tool>. Every result's _meta carries `plughost/report`: fuel used and \
             limit, peak memory and limit, wall time and outcome. The plughost__* tools describe the installed \
             plugins, their grants and quotas; they are read-only.",
        )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let principal = Self::principal(&context);
        self.page(
            request.as_ref().and_then(|r| r.cursor.as_deref()),
            principal.as_ref(),
        )
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        super::resources::list(
            &self.gateway,
            Self::principal(&context).as_ref(),
            request.as_ref().and_then(|r| r.cursor.as_deref()),
            self.page_size,
        )
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        super::resources::templates(
            &self.gateway,
            Self::principal(&context).as_ref(),
            request.as_ref().and_then(|r| r.cursor.as_deref()),
            self.page_size,
        )
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = self.caller(&context);
        let principal = Self::principal(&context);
        let read = super::resources::read(&self.gateway, principal.as_ref(), &request.uri, &caller);
        crate::runtime::cancellable(context.ct.clone(), read)
            .await
            .map(ReadResourceResponse::from)
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        super::prompts::list(
            &self.gateway,
            Self::principal(&context).as_ref(),
            request.as_ref().and_then(|r| r.cursor.as_deref()),
            self.page_size,
        )
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let caller = self.caller(&context);
        let principal = Self::principal(&context);
        let get = super::prompts::get(&self.gateway, principal.as_ref(), request, &caller);
        crate::runtime::cancellable(context.ct.clone(), get)
            .await
            .map(GetPromptResponse::from)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        // rmcp asks for every stateless tools/call (to check `Mcp-Name` against the body): the listing is sorted.
        let tools = self.tools();
        let at = tools.binary_search_by(|t| t.name.as_ref().cmp(name)).ok()?;
        tools.get(at).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = self.caller(&context);
        check_scope(
            &self.gateway,
            Self::principal(&context).as_ref(),
            &request.name,
            &caller,
        )
        .await?;
        // A long-running tool, for a client that declared the Tasks extension on this request: a task handle now,
        // the call in the background (tasks/cancel cancels its token, which stops the guest).
        if let Some(run_for) = super::tasks::long_running(&self.gateway.index(), &request.name)
            && context
                .client_capabilities()
                .is_some_and(|c| c.supports_tasks())
        {
            let gateway = self.gateway.clone();
            let owner = caller.principal.as_deref().map(Arc::from);
            let created = self.tasks.start(owner, run_for, move |cancel| async move {
                let reply = crate::runtime::cancellable(
                    cancel,
                    gateway.call(&request.name, request.arguments, &caller),
                )
                .await
                .map_err(gateway_error)?;
                let stopped = matches!(&reply, Reply::Tool { result, .. }
                    if matches!(result.result, Err(crate::call::CallError::Cancelled { .. })));
                Ok((!stopped).then(|| to_call_result(reply)))
            })?;
            return Ok(CallToolResponse::Task(created));
        }
        // notifications/cancelled for this request cancels `context.ct`, which stops the guest.
        let call = run_call(
            &self.gateway,
            &request.name,
            request.arguments,
            &caller,
            context.ct.clone(),
        );
        let result = match context.meta.get_progress_token() {
            None => call.await,
            Some(token) => with_progress(token, &context.peer, call).await,
        }?;
        Ok(result.into_result().into())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        self.tasks
            .get(&request.task_id, self.owner(&context).as_deref())
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks
            .cancel(&request.task_id, self.owner(&context).as_deref())
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.tasks
            .update(&request.task_id, self.owner(&context).as_deref())
    }

    /// rmcp hands over any request whose params do not fit the method's type (e.g. `tools/call` without `name`,
    /// or with array `arguments`) as a custom request. Those are invalid params (-32602), with the reason.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let method = request.method.as_str();
        let reason = match method {
            "tools/call" => request
                .params_as::<CallToolRequestParams>()
                .err()
                .map(|e| e.to_string())
                .or_else(|| {
                    request
                        .params
                        .is_none()
                        .then(|| "params with a `name` are required".to_string())
                }),
            "tools/list" => request
                .params_as::<PaginatedRequestParams>()
                .err()
                .map(|e| e.to_string()),
            m if super::wire::KNOWN_METHODS.contains(&m) => None,
            _ => {
                return Err(ErrorData::new(
                    ErrorCode::METHOD_NOT_FOUND,
                    format!("method not found: `{method}`"),
                    Some(json!({ "method": method })),
                ));
            }
        };
        let reason = reason.unwrap_or_else(|| "they do not match the method's schema".into());
        Err(ErrorData::invalid_params(
            format!("invalid params for `{method}`: {reason}"),
            Some(json!({ "method": method })),
        ))
    }

    /// rmcp cancels a call it runs itself; one the HTTP fast path runs in this session is cancelled here.
    async fn on_cancelled(
        &self,
        n: CancelledNotificationParam,
        cx: NotificationContext<RoleServer>,
    ) {
        super::session_calls::cancelled(self.session_calls.as_deref(), &n, &cx.extensions);
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // Legacy (initialize-era) sessions: push list_changed to this peer until it goes away. A closed session
        // ends the task at the next check even when the tool set never changes.
        let mut changes = self.gateway.subscribe();
        let peer = context.peer;
        tokio::spawn(async move {
            let mut check = tokio::time::interval(std::time::Duration::from_secs(5));
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let change = tokio::select! {
                    change = changes.recv() => change,
                    _ = check.tick() => {
                        if peer.is_transport_closed() {
                            return;
                        }
                        continue;
                    }
                };
                match change {
                    Ok(()) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // An install can change tools, resources and prompts alike: all three lists are re-read.
                        if peer.notify_tool_list_changed().await.is_err()
                            || peer.notify_resource_list_changed().await.is_err()
                            || peer.notify_prompt_list_changed().await.is_err()
                        {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::builder().tools_list_changed();
        if requested.resources_list_changed == Some(true) {
            accepted = accepted.resources_list_changed();
        }
        if requested.prompts_list_changed == Some(true) {
            accepted = accepted.prompts_list_changed();
        }
        Some(accepted.build())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        // 2026-07-28 clients opt in with subscriptions/listen.
        let mut changes = self.gateway.subscribe();
        loop {
            tokio::select! {
                _ = context.cancelled() => return Ok(()),
                change = changes.recv() => match change {
                    Ok(()) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        // Each is sent only if the client asked for it (the sink refuses the others); the
                        // subscription ends when the client's stream does.
                        let sink = context.sink();
                        for sent in [
                            sink.notify_tool_list_changed().await,
                            sink.notify_resource_list_changed().await,
                            sink.notify_prompt_list_changed().await,
                        ] {
                            if let Err(e) = sent
                                && !matches!(e, SubscriptionSendError::NotificationNotAccepted(_))
                            {
                                return Ok(());
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor("system-info__cpu");
        assert_eq!(decode_cursor(&c).as_deref(), Some("system-info__cpu"));
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor("abc"), None);
        assert_eq!(decode_cursor(""), None);
    }
}
