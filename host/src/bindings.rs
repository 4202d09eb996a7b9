//! Host bindings generated from the one `wit/` tree: the 0.2.0 world, which includes the frozen 0.1.0 world (see the
//! top of `wit/world.wit` for why the 0.1.0 interfaces keep their version).
//!
//! Every import is async (HTTP, Docker and timers are) and trappable (a host bug or a host-side limit becomes a trap,
//! which the runtime turns into a typed outcome). Exports are called with `call_async` semantics.
//!
//! The generated world type would require every export, but `resources` and `prompts` are optional (a 0.1.0
//! component has neither), so [`PluginPre`] and [`Plugin`] are written here: `tools` is required, the other two are
//! looked up when the component exports them.

mod generated {
    wasmtime::component::bindgen!({
        world: "plughost:plugin/plugin@0.2.0",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

pub use generated::exports::plughost::plugin0_1_0::tools;
pub use generated::exports::plughost::plugin0_2_0::{prompts, resources};
pub use generated::plughost::plugin0_1_0::{
    config, container, http, ledger, log, metrics, state, system, types,
};
pub use generated::plughost::plugin0_2_0::progress;

/// The newest version of `plughost:plugin` this host speaks.
pub const WIT_VERSION: &str = "0.2.0";
/// The version of the frozen interfaces (tools and every capability), which 0.2.0 includes unchanged.
pub const WIT_BASE_VERSION: &str = "0.1.0";
/// The package name every plughost interface lives in.
pub const WIT_PACKAGE: &str = "plughost:plugin";
/// The export name of the optional `resources` interface.
pub const RESOURCES_EXPORT: &str = "plughost:plugin/resources@0.2.0";
/// The export name of the optional `prompts` interface.
pub const PROMPTS_EXPORT: &str = "plughost:plugin/prompts@0.2.0";
/// The export name of the required `tools` interface.
pub const TOOLS_EXPORT: &str = "plughost:plugin/tools@0.1.0";

use wasmtime::component::{ComponentExportIndex, Instance, InstancePre, TypedFunc};

/// `tools.call(tool, arguments)`, type-checked.
pub type ToolCallFunc<'a> =
    TypedFunc<(&'a str, &'a str), (Result<tools::Output, tools::ToolError>,)>;

/// A component linked and ready to instantiate, with its exports looked up once.
pub struct PluginPre<T: 'static> {
    pre: InstancePre<T>,
    tools: tools::GuestIndices,
    /// `tools.call`, the one function a tool call needs.
    call: ComponentExportIndex,
    resources: Option<resources::GuestIndices>,
    prompts: Option<prompts::GuestIndices>,
}

impl<T: 'static> std::fmt::Debug for PluginPre<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginPre")
            .field("resources", &self.resources.is_some())
            .field("prompts", &self.prompts.is_some())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("resources", &self.resources.is_some())
            .field("prompts", &self.prompts.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: 'static> Clone for PluginPre<T> {
    fn clone(&self) -> Self {
        PluginPre {
            pre: self.pre.clone(),
            tools: self.tools.clone(),
            call: self.call,
            resources: self.resources.clone(),
            prompts: self.prompts.clone(),
        }
    }
}

/// An instantiated plugin's exports, each looked up only when asked for. A tool call, the commonest use of an
/// instance, needs only `tools.call` ([`Plugin::call_tool`]); looking up a whole interface type-checks every one of
/// its functions, `describe`'s large manifest type included (1.5% of a served call's CPU when `tools` was looked up
/// whole at instantiation).
#[derive(Clone)]
pub struct Plugin {
    instance: Instance,
    tools: tools::GuestIndices,
    call: ComponentExportIndex,
    resources: Option<resources::GuestIndices>,
    prompts: Option<prompts::GuestIndices>,
}

impl<T: Send + 'static> PluginPre<T> {
    /// Looks up `tools` (required) and `resources` / `prompts` (when exported; an export by that name with the wrong
    /// shape is an error, not an absence).
    pub fn new(pre: InstancePre<T>) -> wasmtime::Result<Self> {
        let exports = |name: &str| pre.component().get_export_index(None, name).is_some();
        let tools = tools::GuestIndices::new(&pre)?;
        let call = pre
            .component()
            .get_export_index(None, TOOLS_EXPORT)
            .and_then(|i| pre.component().get_export_index(Some(&i), "call"))
            .ok_or_else(|| {
                wasmtime::format_err!("instance export `{TOOLS_EXPORT}` has no `call`")
            })?;
        let resources = if exports(RESOURCES_EXPORT) {
            Some(resources::GuestIndices::new(&pre)?)
        } else {
            None
        };
        let prompts = if exports(PROMPTS_EXPORT) {
            Some(prompts::GuestIndices::new(&pre)?)
        } else {
            None
        };
        Ok(PluginPre {
            pre,
            tools,
            call,
            resources,
            prompts,
        })
    }

    /// Instantiates the component in `store` (its exports are looked up when used).
    pub async fn instantiate_async(
        &self,
        mut store: impl wasmtime::AsContextMut<Data = T>,
    ) -> wasmtime::Result<Plugin> {
        let instance: Instance = self.pre.instantiate_async(&mut store).await?;
        Ok(Plugin {
            instance,
            tools: self.tools.clone(),
            call: self.call,
            resources: self.resources.clone(),
            prompts: self.prompts.clone(),
        })
    }
}

impl Plugin {
    /// The whole `tools` export (`describe` and `call`), looked up in `store` (the store of this instance).
    pub fn plughost_plugin_tools(
        &self,
        store: impl wasmtime::AsContextMut,
    ) -> wasmtime::Result<tools::Guest> {
        self.tools.load(store, &self.instance)
    }
    /// `tools.call` alone, looked up and type-checked in `store` (the store of this instance): once per instance,
    /// however many times it is called.
    pub fn tool_call<'a>(
        &self,
        store: impl wasmtime::AsContextMut,
    ) -> wasmtime::Result<ToolCallFunc<'a>> {
        self.instance.get_typed_func(store, self.call)
    }
    /// Calls `tools.call` once ([`Plugin::tool_call`], then the call).
    pub async fn call_tool<S: wasmtime::AsContextMut<Data: Send>>(
        &self,
        mut store: S,
        tool: &str,
        arguments: &str,
    ) -> wasmtime::Result<Result<tools::Output, tools::ToolError>> {
        let call = self.tool_call(&mut store)?;
        let (result,) = call.call_async(&mut store, (tool, arguments)).await?;
        Ok(result)
    }
    /// The `resources` export, if the component has one, looked up in `store` (the store of this instance).
    pub fn plughost_plugin_resources(
        &self,
        store: impl wasmtime::AsContextMut,
    ) -> wasmtime::Result<Option<resources::Guest>> {
        self.resources
            .as_ref()
            .map(|r| r.load(store, &self.instance))
            .transpose()
    }
    /// The `prompts` export, if the component has one, looked up in `store` (the store of this instance).
    pub fn plughost_plugin_prompts(
        &self,
        store: impl wasmtime::AsContextMut,
    ) -> wasmtime::Result<Option<prompts::Guest>> {
        self.prompts
            .as_ref()
            .map(|p| p.load(store, &self.instance))
            .transpose()
    }
}
