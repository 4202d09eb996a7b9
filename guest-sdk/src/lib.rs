//! Write plughost plugins in Rust.
//!
//! A tool is a function with [`#[tool]`](macro@tool): its doc comment is the description clients show, its argument
//! struct (with [`#[args]`](macro@args)) gives the input JSON Schema, and its return type gives the output schema.
//! [`export_plugin!`] names the plugin and lists its tools. Host capabilities are typed modules ([`log`],
//! [`state`], [`config`], [`system`], [`metrics`], [`http`], [`container`], [`ledger`]), each with an example; a
//! component imports only the ones it calls, and each one needs the operator's grant.
//!
//! ```no_run
//! use plughost_guest::prelude::*;
//!
//! #[args]
//! struct Greet {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! /// Greets someone by name.
//! #[tool(read_only)]
//! fn greet(args: Greet) -> Result<String, ToolError> {
//!     Ok(format!("Hello, {}!", args.name))
//! }
//!
//! #[output]
//! struct Count {
//!     greetings: u64,
//! }
//!
//! /// Counts greetings so far.
//! #[tool]
//! fn count() -> Result<Count, ToolError> {
//!     let n = state::get_json::<u64>("greetings")?.unwrap_or(0) + 1;
//!     state::set_json("greetings", &n)?;
//!     Ok(Count { greetings: n })
//! }
//!
//! export_plugin! {
//!     id: "hello",
//!     description: "Greets people and counts greetings.",
//!     tools: [greet, count],
//! }
//! # fn main() {}
//! ```
//!
//! What a tool function may look like:
//! - it takes one argument, a `Deserialize + JsonSchema` type ([`#[args]`](macro@args) derives both through this
//!   crate), or none (then its input schema is an empty object);
//! - it returns `Result<T, E>` where `E` converts into [`ToolError`] (every capability's error does, so `?` works)
//!   and `T` is `String` (text output), any `Serialize + JsonSchema` type (JSON output and structured content, its
//!   schema the tool's output schema; [`#[output]`](macro@output) derives both), or a hand-built [`Output`];
//! - `#[tool(name = "x", title = "X", read_only, destructive, idempotent, open_world)]` sets the name (default: the
//!   function's), a title and the MCP annotations; `#[tool(long_running)]` declares that the tool may run long (an
//!   MCP client that supports tasks then polls for its result, see [`Tool::long_running`]).
//!
//! `#[tool]` keeps the function as it is (call it from your own tests) and adds a module of the same name holding
//! `tool()`, which `export_plugin!` calls. [`Tool::new`] with a [`Plugin`] impl is the same thing spelled by hand.
//!
//! Besides tools, a plugin may offer MCP clients **resources** ([`Resource`]: a path, or a path template such as
//! `day/{date}`, and a function returning its [`Body`]) and **prompts** ([`Prompt`]: a name, string arguments and a
//! function rendering [`Message`]s), listed in `export_plugin!` as `resources: [...]` and `prompts: [...]`; and a
//! tool may report [`progress`]. These are contract 0.2.0; each read and render runs like a tool call (its own
//! instance, fuel, memory and deadline, ledgered).
//!
//! The crates a plugin needs are re-exported, so `plughost-guest` is its only dependency: [`serde`] (with
//! [`Serialize`] and [`Deserialize`]), [`serde_json`] and [`schemars`] (with [`JsonSchema`]). Deriving through a
//! re-export needs `#[serde(crate = "plughost_guest::serde")]` and `#[schemars(crate = "plughost_guest::schemars")]`,
//! which `#[args]` and `#[output]` add for you.
//!
//! A plugin builds for `wasm32-wasip2` (the default) or, with `lean = true` in its `plughost.toml`, for
//! `wasm32-unknown-unknown`: no WASI at all, so its component imports only the capabilities it calls and a fresh
//! instance is cheaper. A lean plugin cannot use what std needs WASI for (clocks, randomness, env, files), and
//! a panic's message is not reported (the call still ends in a typed trap) unless the SDK's `panic-log` feature
//! is on, which writes it through the `log` capability (so the plugin imports `log`). The SDK gives lean builds an
//! allocator that does not grow memory for small calls (`lean` module, on that target only).

use std::marker::PhantomData;

// The generated bindings name this crate by its public path, so that `export_plugin!` works from plugin crates.
extern crate self as plughost_guest;

/// Derives `JsonSchema` (a tool's input and output schemas); re-exported so a plugin needs no dependency of its own.
pub use schemars::{self, JsonSchema};
/// `Serialize` / `Deserialize` for arguments and results; re-exported so a plugin needs no dependency of its own.
pub use serde::{self, Deserialize, Serialize};
/// JSON values (`serde_json::Value`, `json!`), as the SDK itself uses them.
pub use serde_json;

/// Derives `Deserialize` and `JsonSchema` through this crate's re-exports, for a tool's argument struct or enum.
/// Field doc comments become the schema's descriptions; `#[serde(...)]` attributes work as usual.
/// `#[args(serialize)]` derives `Serialize` too.
pub use plughost_guest_macros::args;
/// Derives `Serialize` and `JsonSchema` through this crate's re-exports, for a tool's structured result.
/// `#[output(deserialize)]` derives `Deserialize` too (a type read from an HTTP response and returned as it is).
pub use plughost_guest_macros::output;
/// Makes a function a tool: the doc comment is its description, the argument type its input schema, the return
/// type its output schema. See the [crate documentation](crate) for the forms it accepts.
pub use plughost_guest_macros::tool;

/// Everything a plugin usually needs: `use plughost_guest::prelude::*;`.
pub mod prelude {
    pub use crate::{Deserialize, Serialize};
    pub use crate::{
        Json, JsonSchema, Message, NoArgs, Output, Plugin, Prompt, Resource, Tool, ToolError, args,
        config, container, export_plugin, http, ledger, log, metrics, output, progress, serde_json,
        state, system, tool,
    };
}

#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        world: "plughost:plugin/plugin@0.2.0",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_raw",
        default_bindings_module: "::plughost_guest::__bindings",
        runtime_path: "::plughost_guest::__wit_bindgen::rt",
        additional_derives: [serde::Serialize, serde::Deserialize, schemars::JsonSchema],
        generate_all,
    });
}
#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;

use __bindings::exports::plughost::plugin0_1_0::tools as raw;

mod caps;
pub mod http;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod lean;
mod offers;
mod schema;

/// Lean builds (`wasm32-unknown-unknown`) allocate from a static arena first: see [`lean`].
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[global_allocator]
static LEAN_ALLOCATOR: lean::Arena = lean::Arena;

pub use caps::{config, container, ledger, log, metrics, state, system};
pub use offers::{Body, Message, Prompt, PromptArgs, Resource, ResourceRequest, progress};

/// Lean builds with the `panic-log` feature: a panic's message goes to the host's log (there is no stderr).
#[cfg(all(target_arch = "wasm32", target_os = "unknown", feature = "panic-log"))]
fn report_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            log::write(log::Level::Error, &format!("plugin panicked: {info}"));
        }));
    });
}

#[cfg(not(all(target_arch = "wasm32", target_os = "unknown", feature = "panic-log")))]
fn report_panics() {}

/// A plugin: its identity and its tools.
pub trait Plugin: 'static {
    /// Stable id, `[a-z0-9-]{1,64}`. Grants, state and quotas are keyed by it.
    const ID: &'static str;
    /// A human name.
    const NAME: &'static str;
    /// Semantic version, usually `env!("CARGO_PKG_VERSION")`.
    const VERSION: &'static str;
    /// One or two sentences.
    const DESCRIPTION: &'static str;
    /// The tools, in the order clients should list them.
    fn tools() -> Vec<Tool>;
    /// The resources and resource templates (contract 0.2.0). None unless overridden.
    fn resources() -> Vec<Resource> {
        Vec::new()
    }
    /// The prompts (contract 0.2.0). None unless overridden.
    fn prompts() -> Vec<Prompt> {
        Vec::new()
    }
}

/// Why a tool failed. Every variant reaches the caller as a typed error.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolError {
    /// The arguments are wrong; say why.
    InvalidArguments(String),
    /// A host capability refused.
    Denied(String),
    /// What was asked for does not exist.
    NotFound(String),
    /// A dependency cannot be reached now.
    Unavailable(String),
    /// An upstream API answered with an error.
    Upstream {
        status: Option<u16>,
        code: Option<i64>,
        message: String,
        retry_after_seconds: Option<u32>,
    },
    /// Anything else.
    Failed(String),
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolError::InvalidArguments(m) => write!(f, "invalid arguments: {m}"),
            ToolError::Denied(m) => write!(f, "denied: {m}"),
            ToolError::NotFound(m) => write!(f, "not found: {m}"),
            ToolError::Unavailable(m) => write!(f, "unavailable: {m}"),
            ToolError::Upstream { message, .. } => write!(f, "upstream: {message}"),
            ToolError::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for ToolError {}

impl ToolError {
    fn into_raw(self) -> raw::ToolError {
        match self {
            ToolError::InvalidArguments(m) => raw::ToolError::InvalidArguments(m),
            ToolError::Denied(m) => raw::ToolError::Denied(m),
            ToolError::NotFound(m) => raw::ToolError::NotFound(m),
            ToolError::Unavailable(m) => raw::ToolError::Unavailable(m),
            ToolError::Upstream {
                status,
                code,
                message,
                retry_after_seconds,
            } => raw::ToolError::Upstream(raw::UpstreamError {
                status,
                code,
                message,
                retry_after_seconds,
            }),
            ToolError::Failed(m) => raw::ToolError::Failed(m),
        }
    }
}

/// A structured result: serialized as JSON, with its schema derived as the tool's output schema.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

/// One block of output, for [`Output`].
#[derive(Debug, Clone)]
pub enum Content {
    Text(String),
    Json(serde_json::Value),
}

/// A hand-built result (several blocks, or structured data without a derived schema).
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub content: Vec<Content>,
    pub structured: Option<serde_json::Value>,
}

/// What a tool function may return: `String` (text), [`Json<T>`] (structured, with a schema) or [`Output`].
pub trait IntoOutput {
    /// The output JSON Schema, if any.
    fn output_schema() -> Option<String>;
    /// Converts to the wire form.
    #[doc(hidden)]
    fn into_output(self) -> Output;
}

impl IntoOutput for String {
    fn output_schema() -> Option<String> {
        None
    }
    fn into_output(self) -> Output {
        Output {
            content: vec![Content::Text(self)],
            structured: None,
        }
    }
}

impl IntoOutput for Output {
    fn output_schema() -> Option<String> {
        None
    }
    fn into_output(self) -> Output {
        self
    }
}

fn object_schema<T: JsonSchema>() -> Option<serde_json::Value> {
    let mut schema = schemars::schema_for!(T).to_value();
    schema::portable(&mut schema);
    (schema.get("type").and_then(|t| t.as_str()) == Some("object")).then_some(schema)
}

impl<T: Serialize + JsonSchema> IntoOutput for Json<T> {
    fn output_schema() -> Option<String> {
        object_schema::<T>().map(|s| s.to_string())
    }
    fn into_output(self) -> Output {
        match serde_json::to_value(&self.0) {
            Ok(v) => {
                // MCP structured content must be an object; anything else is returned as a JSON block only.
                let structured = v.is_object().then(|| v.clone());
                Output {
                    content: vec![Content::Json(v)],
                    structured,
                }
            }
            Err(e) => Output {
                content: vec![Content::Text(format!("serialization failed: {e}"))],
                structured: None,
            },
        }
    }
}

/// The arguments of a tool that takes none.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
pub struct NoArgs {}

type Handler = Box<dyn Fn(&str) -> Result<Output, ToolError>>;

/// One tool: name, description, schemas and the function behind it.
pub struct Tool {
    name: &'static str,
    description: &'static str,
    title: Option<&'static str>,
    annotations: raw::Annotations,
    long_running: bool,
    schemas: fn() -> (String, Option<String>),
    handler: Handler,
}

impl std::fmt::Debug for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn schemas_of<A: JsonSchema, R: IntoOutput>() -> (String, Option<String>) {
    let mut input = schemars::schema_for!(A).to_value();
    schema::portable(&mut input);
    (input.to_string(), R::output_schema())
}

impl Tool {
    /// A tool named `name` (`[a-z0-9_-]{1,64}`) that runs `f`.
    pub fn new<A, R, F>(name: &'static str, description: &'static str, f: F) -> Tool
    where
        A: serde::de::DeserializeOwned + JsonSchema,
        R: IntoOutput,
        F: Fn(A) -> Result<R, ToolError> + 'static,
    {
        let handler = Box::new(move |json: &str| {
            let args: A = serde_json::from_str(json)
                .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
            f(args).map(R::into_output)
        });
        Tool {
            name,
            description,
            title: None,
            annotations: raw::Annotations {
                read_only: None,
                destructive: None,
                idempotent: None,
                open_world: None,
            },
            long_running: false,
            schemas: schemas_of::<A, R>,
            handler,
        }
    }

    /// A human title.
    pub fn title(mut self, title: &'static str) -> Self {
        self.title = Some(title);
        self
    }
    /// The tool changes nothing.
    pub fn read_only(mut self) -> Self {
        self.annotations.read_only = Some(true);
        self.annotations.destructive = Some(false);
        self
    }
    /// The tool may delete or overwrite things.
    pub fn destructive(mut self) -> Self {
        self.annotations.read_only = Some(false);
        self.annotations.destructive = Some(true);
        self
    }
    /// Calling it twice with the same arguments has the effect of calling it once.
    pub fn idempotent(mut self) -> Self {
        self.annotations.idempotent = Some(true);
        self
    }
    /// The tool talks to the outside world (an API, the network).
    pub fn open_world(mut self) -> Self {
        self.annotations.open_world = Some(true);
        self
    }
    /// The tool may run long: an MCP client that supports tasks gets a task handle for a call at once and polls for
    /// the result, instead of holding the request open (the operator can override it). Declared in the manifest as
    /// `"x-plughost-long-running": true` in the input schema.
    pub fn long_running(mut self) -> Self {
        self.long_running = true;
        self
    }
}

/// `input` with the long-running declaration added when `on`.
fn declare_long_running(input: String, on: bool) -> String {
    if !on {
        return input;
    }
    match serde_json::from_str::<serde_json::Value>(&input) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.insert(
                "x-plughost-long-running".into(),
                serde_json::Value::Bool(true),
            );
            serde_json::Value::Object(map).to_string()
        }
        _ => input,
    }
}

#[doc(hidden)]
#[derive(Debug)]
pub struct __Adapter<P>(PhantomData<P>);

impl<P: Plugin> raw::Guest for __Adapter<P> {
    fn describe() -> raw::Manifest {
        report_panics();
        let tools = P::tools()
            .into_iter()
            .map(|t| {
                let (input_schema, output_schema) = (t.schemas)();
                raw::Tool {
                    name: t.name.to_string(),
                    title: t.title.map(str::to_string),
                    description: t.description.to_string(),
                    input_schema: declare_long_running(input_schema, t.long_running),
                    output_schema,
                    annotations: t.annotations,
                }
            })
            .collect();
        raw::Manifest {
            id: P::ID.to_string(),
            name: P::NAME.to_string(),
            version: P::VERSION.to_string(),
            description: P::DESCRIPTION.to_string(),
            tools,
        }
    }

    fn call(tool: String, arguments: String) -> Result<raw::Output, raw::ToolError> {
        report_panics();
        let Some(t) = P::tools().into_iter().find(|t| t.name == tool) else {
            return Err(raw::ToolError::UnknownTool(tool));
        };
        let out = (t.handler)(&arguments).map_err(ToolError::into_raw)?;
        Ok(raw::Output {
            content: out
                .content
                .into_iter()
                .map(|c| match c {
                    Content::Text(t) => raw::Content::Text(t),
                    Content::Json(v) => raw::Content::Json(v.to_string()),
                })
                .collect(),
            structured: out.structured.map(|v| v.to_string()),
        })
    }
}

impl<P: Plugin> __bindings::exports::plughost::plugin0_2_0::resources::Guest for __Adapter<P> {
    fn list() -> __bindings::exports::plughost::plugin0_2_0::resources::Listing {
        report_panics();
        offers::list_resources(P::resources())
    }
    fn read(
        path: String,
    ) -> Result<Vec<__bindings::exports::plughost::plugin0_2_0::resources::Contents>, raw::ToolError>
    {
        report_panics();
        offers::read_resource(P::resources(), path)
    }
}

impl<P: Plugin> __bindings::exports::plughost::plugin0_2_0::prompts::Guest for __Adapter<P> {
    fn list() -> Vec<__bindings::exports::plughost::plugin0_2_0::prompts::Prompt> {
        report_panics();
        offers::list_prompts(P::prompts())
    }
    fn get(
        name: String,
        arguments: Vec<__bindings::plughost::plugin0_1_0::types::Pair>,
    ) -> Result<__bindings::exports::plughost::plugin0_2_0::prompts::Rendered, raw::ToolError> {
        report_panics();
        offers::get_prompt(P::prompts(), name, arguments)
    }
}

/// For a type that implements the raw `tools` export by hand: empty `resources` and `prompts` exports, which the
/// 0.2.0 world also needs.
#[doc(hidden)]
#[macro_export]
macro_rules! __no_offers {
    ($t:ty) => {
        impl $crate::__bindings::exports::plughost::plugin0_2_0::resources::Guest for $t {
            fn list() -> $crate::__bindings::exports::plughost::plugin0_2_0::resources::Listing {
                $crate::__bindings::exports::plughost::plugin0_2_0::resources::Listing {
                    resources: ::std::vec::Vec::new(),
                    templates: ::std::vec::Vec::new(),
                }
            }
            fn read(
                path: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::vec::Vec<
                    $crate::__bindings::exports::plughost::plugin0_2_0::resources::Contents,
                >,
                $crate::__bindings::exports::plughost::plugin0_1_0::tools::ToolError,
            > {
                ::std::result::Result::Err(
                    $crate::__bindings::exports::plughost::plugin0_1_0::tools::ToolError::NotFound(
                        path,
                    ),
                )
            }
        }
        impl $crate::__bindings::exports::plughost::plugin0_2_0::prompts::Guest for $t {
            fn list()
            -> ::std::vec::Vec<$crate::__bindings::exports::plughost::plugin0_2_0::prompts::Prompt>
            {
                ::std::vec::Vec::new()
            }
            fn get(
                name: ::std::string::String,
                _arguments: ::std::vec::Vec<$crate::__bindings::plughost::plugin0_1_0::types::Pair>,
            ) -> ::std::result::Result<
                $crate::__bindings::exports::plughost::plugin0_2_0::prompts::Rendered,
                $crate::__bindings::exports::plughost::plugin0_1_0::tools::ToolError,
            > {
                ::std::result::Result::Err(
                    $crate::__bindings::exports::plughost::plugin0_1_0::tools::ToolError::NotFound(
                        name,
                    ),
                )
            }
        }
    };
}

/// Exports the plugin as the component's `plughost:plugin/tools` (and, contract 0.2.0, its `resources` and
/// `prompts`, empty unless listed).
///
/// Either list its identity and its [`#[tool]`](macro@tool) functions (`name` defaults to the id, `version` to the
/// crate's version):
///
/// ```ignore
/// export_plugin! {
///     id: "hello",
///     name: "Hello",          // optional
///     version: "0.1.0",       // optional: env!("CARGO_PKG_VERSION")
///     description: "Greets people.",
///     tools: [greet, count],  // #[tool] functions, in the order clients should list them
///     resources: [today],     // optional: functions returning a `Resource`
///     prompts: [summarize],   // optional: functions returning a `Prompt`
/// }
/// ```
///
/// or name a type that implements [`Plugin`]: `export_plugin!(Hello);`.
#[macro_export]
macro_rules! export_plugin {
    (
        id: $id:literal,
        $(name: $name:literal,)?
        $(version: $version:literal,)?
        description: $description:literal,
        tools: [$($($tool:ident)::+),* $(,)?]
        $(, resources: [$($($resource:ident)::+),* $(,)?])?
        $(, prompts: [$($($prompt:ident)::+),* $(,)?])? $(,)?
    ) => {
        #[doc(hidden)]
        struct __PlughostPlugin;
        impl $crate::Plugin for __PlughostPlugin {
            const ID: &'static str = $id;
            const NAME: &'static str = $crate::__first!($($name,)? $id);
            const VERSION: &'static str = $crate::__first!($($version,)? env!("CARGO_PKG_VERSION"));
            const DESCRIPTION: &'static str = $description;
            fn tools() -> ::std::vec::Vec<$crate::Tool> {
                ::std::vec![$($($tool)::+::tool()),*]
            }
            fn resources() -> ::std::vec::Vec<$crate::Resource> {
                ::std::vec![$($($($resource)::+()),*)?]
            }
            fn prompts() -> ::std::vec::Vec<$crate::Prompt> {
                ::std::vec![$($($($prompt)::+()),*)?]
            }
        }
        $crate::export_plugin!(__PlughostPlugin);
    };
    ($plugin:ty) => {
        type __PlughostGuestExport = $crate::__Adapter<$plugin>;
        $crate::__bindings::__export_raw!(__PlughostGuestExport with_types_in $crate::__bindings);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __first {
    ($first:expr $(, $rest:expr)*) => {
        $first
    };
}
