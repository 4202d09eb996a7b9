//! Write plughost plugins in Rust.
//!
//! A plugin is a type that implements [`Plugin`], plus one [`export_plugin!`] line. Each tool is a plain function
//! that takes a `serde::Deserialize` argument struct; its JSON Schema is derived with `schemars`, so the manifest
//! the host reads is generated for you. Host capabilities are typed modules ([`log`], [`state`], [`config`],
//! [`system`], [`metrics`], [`http`], [`container`], [`ledger`]); a component imports only the ones it calls, and
//! each one needs the operator's grant.
//!
//! A plugin builds for `wasm32-wasip2` (the default) or, with `lean = true` in its `plughost.toml`, for
//! `wasm32-unknown-unknown`: no WASI at all, so its component imports only the capabilities it calls and a fresh
//! instance is cheaper. A lean plugin cannot use what std needs WASI for (clocks, randomness, env, files), and
//! a panic's message is not reported (the call still ends in a typed trap) unless the SDK's `panic-log` feature
//! is on, which writes it through the `log` capability (so the plugin imports `log`). The SDK gives lean builds an
//! allocator that does not grow memory for small calls (`lean` module, on that target only).
//!
//! ```no_run
//! use plughost_guest::{Json, JsonSchema, Plugin, Tool, ToolError, Deserialize, Serialize, export_plugin, state};
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct Greet {
//!     /// Who to greet.
//!     name: String,
//! }
//!
//! #[derive(Serialize, JsonSchema)]
//! struct Count {
//!     greetings: u64,
//! }
//!
//! fn greet(args: Greet) -> Result<String, ToolError> {
//!     Ok(format!("Hello, {}!", args.name))
//! }
//!
//! fn count(_: plughost_guest::NoArgs) -> Result<Json<Count>, ToolError> {
//!     let n = state::get_json::<u64>("greetings")?.unwrap_or(0) + 1;
//!     state::set_json("greetings", &n)?;
//!     Ok(Json(Count { greetings: n }))
//! }
//!
//! struct Hello;
//! impl Plugin for Hello {
//!     const ID: &'static str = "hello";
//!     const NAME: &'static str = "Hello";
//!     const VERSION: &'static str = "0.1.0";
//!     const DESCRIPTION: &'static str = "Greets people and counts greetings.";
//!     fn tools() -> Vec<Tool> {
//!         vec![
//!             Tool::new("greet", "Greets someone by name.", greet).read_only(),
//!             Tool::new("count", "Counts greetings so far.", count),
//!         ]
//!     }
//! }
//!
//! export_plugin!(Hello);
//! # fn main() {}
//! ```

use std::marker::PhantomData;

// The generated bindings name this crate by its public path, so that `export_plugin!` works from plugin crates.
extern crate self as plughost_guest;

pub use schemars::{self, JsonSchema};
pub use serde::{self, Deserialize, Serialize};
pub use serde_json;

#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        world: "plugin",
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

use __bindings::exports::plughost::plugin::tools as raw;

mod caps;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod lean;
mod schema;

/// Lean builds (`wasm32-unknown-unknown`) allocate from a static arena first: see [`lean`].
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
#[global_allocator]
static LEAN_ALLOCATOR: lean::Arena = lean::Arena;

pub use caps::{config, container, http, ledger, log, metrics, state, system};

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
                    input_schema,
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

/// Exports a [`Plugin`] as the component's `plughost:plugin/tools`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        type __PlughostGuestExport = $crate::__Adapter<$plugin>;
        $crate::__bindings::__export_raw!(__PlughostGuestExport with_types_in $crate::__bindings);
    };
}
