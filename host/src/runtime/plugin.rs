//! What a component is (inspection) and a loaded, linked plugin ready to be called.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::limits::Limits;
use super::offers::Offers;
use super::store::StoreData;
use crate::bindings::{PluginPre, WIT_BASE_VERSION, WIT_PACKAGE, WIT_VERSION, tools};
use crate::caps::PluginEnv;
use crate::grants::{Capability, Grants};

/// Why a component cannot be loaded. Every variant names the cause; nothing is half-loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("not a WebAssembly file (no `\\0asm` header)")]
    NotWasm,
    #[error(
        "this is a core WebAssembly module, not a component. plughost runs components only: build with \
         `--target wasm32-wasip2` (Rust), or wrap a wasm32-wasi module with `plughost componentize core.wasm \
         -o plugin.wasm` (the WASI preview1 adapter is built in)"
    )]
    CoreModule,
    #[error("unsupported WebAssembly binary version/layer {0:#010x}")]
    UnknownBinary(u32),
    #[error(transparent)]
    Compile(#[from] super::engine::EngineError),
    #[error("not a plughost plugin: it does not export `{WIT_PACKAGE}/tools` (exports: {0})")]
    NotAPlugin(String),
    #[error(
        "incompatible plugin contract: the component was built against {WIT_PACKAGE}@{found}, this host speaks \
         {WIT_PACKAGE}@{expected} there (contract {WIT_VERSION}, which includes 0.1.0); rebuild the plugin against \
         {WIT_VERSION}"
    )]
    IncompatibleVersion { found: String, expected: String },
    #[error(
        "the component imports `{0}`, which plughost does not provide (only {WIT_PACKAGE}/* interfaces and \
         wasi:* with nothing open)"
    )]
    UnknownImport(String),
    #[error("plugin `{plugin}` needs capabilities that are not granted: {}. Grant them with {}", list(.missing), hint(.missing))]
    MissingGrants {
        plugin: String,
        missing: Vec<Capability>,
    },
    #[error(transparent)]
    Link(#[from] crate::caps::LinkError),
    #[error("instantiating the plugin failed: {0}")]
    Instantiate(String),
    #[error("the plugin's describe() failed: {0}")]
    Describe(String),
    #[error(
        "the component's `{WIT_PACKAGE}/tools` export does not match the contract {WIT_PACKAGE}@{WIT_VERSION}: {0}. \
         Rebuild it from the contract's WIT (plughost's `wit/` directory or the SDK)"
    )]
    WrongExportTypes(String),
    #[error("invalid manifest: {0}")]
    BadManifest(String),
}

fn list(caps: &[Capability]) -> String {
    caps.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
}

/// The refusal of an installed plugin whose grants do not cover what it imports: grants of an installed plugin are
/// changed with `plughost grant ID …` (`--grant` is refused for it).
pub fn missing_grants_of_installed(plugin: &str, missing: &[Capability]) -> String {
    let grants: Vec<String> = missing
        .iter()
        .map(|c| match c {
            Capability::Http => "http:https://HOST".to_string(),
            Capability::Container => "container:read".to_string(),
            other => other.name().to_string(),
        })
        .collect();
    format!(
        "plugin `{plugin}` needs capabilities that are not granted: {}. Grant them with `plughost grant {plugin} {}`",
        list(missing),
        grants.join(" ")
    )
}

fn hint(caps: &[Capability]) -> String {
    caps.iter()
        .map(|c| match c {
            Capability::Http => "--grant http:https://HOST".to_string(),
            Capability::Container => "--grant container:read".to_string(),
            other => format!("--grant {}", other.name()),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The component's binary kind, from its 8-byte header.
pub fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    let version = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    match (version & 0xffff, version >> 16) {
        (1, 0) => Err(LoadError::CoreModule),
        (_, 1) => Ok(()),
        _ => Err(LoadError::UnknownBinary(version)),
    }
}

/// What a component is, read from its type (no code runs).
#[derive(Debug, Clone, Serialize)]
pub struct ComponentInfo {
    /// blake3 of the component bytes, hex.
    pub digest: String,
    pub size_bytes: u64,
    /// The `plughost:plugin` version it was built against: `0.2.0` when it uses an interface 0.2.0 added
    /// (resources, prompts, progress), else `0.1.0`.
    pub world_version: String,
    /// The plughost capabilities it imports: exactly the grants it needs.
    pub capabilities: Vec<Capability>,
    /// The WASI interfaces it imports (linked with nothing open).
    pub wasi_imports: Vec<String>,
    /// The language it was written in, as far as its bytes tell; picks the default fuel budget.
    pub language: Language,
}

/// The language a component was written in. Interpreted languages run their interpreter inside the sandbox, so
/// the same work costs them far more fuel (a JavaScript echo ~2,000,000, a Python one ~300,000, a Rust one ~5,000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    C,
    Python,
    #[serde(rename = "javascript")]
    JavaScript,
    /// Compiled from something else (or its producers section was stripped).
    Other,
}

impl Language {
    /// The fuel budget per call when the operator set none. Fuel burns at roughly the same rate per second in
    /// every language (a spin loop: 10M fuel in 1–3 ms here), so 1,000,000,000 is about 0.2 s of guest CPU — a great
    /// deal of compiled work. An interpreter does 30–300× more instructions for the same work, so Python and
    /// JavaScript get 5× that (about 1 s of CPU). The deadline bounds wall time either way.
    pub fn default_fuel(self) -> u64 {
        match self {
            Language::Rust | Language::C | Language::Other => 1_000_000_000,
            Language::Python | Language::JavaScript => 5_000_000_000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "Rust",
            Language::C => "C",
            Language::Python => "Python",
            Language::JavaScript => "JavaScript",
            Language::Other => "compiled, language unknown",
        }
    }
}

/// Reads the language from a component's bytes: the runtimes the Python and JavaScript toolchains embed
/// (componentize-py's `componentize_py_runtime`, componentize-js's StarlingMonkey), else the `language` field of the
/// core modules' producers sections and Rust's `/rustc/` paths (Rust, C), else [`Language::Other`].
pub fn detect_language(bytes: &[u8]) -> Language {
    if memchr::memmem::find(bytes, b"componentize_py_runtime").is_some() {
        return Language::Python;
    }
    if memchr::memmem::find(bytes, b"StarlingMonkey").is_some() {
        return Language::JavaScript;
    }
    let mut found = Language::Other;
    // Rust's standard library leaves `/rustc/<commit>/library/…` paths in panic messages, even when stripped.
    if memchr::memmem::find(bytes, b"/rustc/").is_some() {
        found = Language::Rust;
    }
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let Ok(wasmparser::Payload::CustomSection(section)) = payload else {
            continue;
        };
        let wasmparser::KnownCustom::Producers(reader) = section.as_known() else {
            continue;
        };
        for field in reader.into_iter().flatten() {
            if field.name != "language" {
                continue;
            }
            for value in field.values.into_iter().flatten() {
                let v = value.name.to_ascii_lowercase();
                if v == "rust" {
                    return Language::Rust;
                }
                if v.starts_with("c") && !v.contains("++") {
                    found = Language::C;
                }
            }
        }
    }
    found
}

fn split_versioned(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (name, None),
    }
}

fn compatible(found: &semver::Version, ours: &semver::Version) -> bool {
    if found.major != ours.major {
        return false;
    }
    if ours.major == 0 {
        found.minor == ours.minor
    } else {
        found.minor <= ours.minor
    }
}

/// The interfaces contract 0.2.0 added; every other plughost interface is 0.1.0's.
const ADDED_IN_0_2: &[&str] = &["progress", "resources", "prompts"];

/// Reads a compiled component's imports and exports. Each plughost interface is checked against the version this
/// host speaks for it: 0.1.0 for the frozen ones, 0.2.0 for those 0.2.0 added.
pub fn inspect_component(
    engine: &Engine,
    component: &Component,
    digest: &str,
    bytes: &[u8],
) -> Result<ComponentInfo, LoadError> {
    let parse =
        |v: &str| semver::Version::parse(v).map_err(|e| LoadError::BadManifest(e.to_string()));
    let base = parse(WIT_BASE_VERSION)?;
    let newest = parse(WIT_VERSION)?;
    let ty = component.component_type();
    let mut uses_new = false;
    let mut check_version = |iface: &str, v: Option<&str>| -> Result<(), LoadError> {
        let v = v.unwrap_or("0.0.0");
        let added = ADDED_IN_0_2.contains(&iface);
        let ours = if added { &newest } else { &base };
        let refuse = || LoadError::IncompatibleVersion {
            found: v.to_string(),
            expected: ours.to_string(),
        };
        let found = semver::Version::parse(v).map_err(|_| refuse())?;
        if !compatible(&found, ours) {
            return Err(refuse());
        }
        uses_new |= added;
        Ok(())
    };

    let prefix = format!("{WIT_PACKAGE}/");
    let export_names: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let mut has_tools = false;
    for name in &export_names {
        let (base_name, version) = split_versioned(name);
        let Some(iface) = base_name.strip_prefix(&prefix) else {
            continue;
        };
        if matches!(iface, "tools" | "resources" | "prompts") {
            check_version(iface, version)?;
            has_tools |= iface == "tools";
        }
    }
    if !has_tools {
        return Err(LoadError::NotAPlugin(if export_names.is_empty() {
            "none".to_string()
        } else {
            export_names.join(", ")
        }));
    }

    let mut capabilities = Vec::new();
    let mut wasi_imports = Vec::new();
    for (name, _) in ty.imports(engine) {
        let (base_name, version) = split_versioned(name);
        if let Some(iface) = base_name.strip_prefix(&prefix) {
            check_version(iface, version)?;
            if iface == "types" || iface == "progress" {
                continue;
            }
            let cap = Capability::from_name(iface)
                .ok_or_else(|| LoadError::UnknownImport(name.to_string()))?;
            if !capabilities.contains(&cap) {
                capabilities.push(cap);
            }
        } else if base_name.starts_with("wasi:") && !base_name.starts_with("wasi:http/") {
            wasi_imports.push(name.to_string());
        } else {
            return Err(LoadError::UnknownImport(name.to_string()));
        }
    }
    capabilities.sort();
    let world_version = if uses_new {
        WIT_VERSION
    } else {
        WIT_BASE_VERSION
    };
    Ok(ComponentInfo {
        digest: digest.to_string(),
        size_bytes: bytes.len() as u64,
        world_version: world_version.to_string(),
        capabilities,
        wasi_imports,
        language: detect_language(bytes),
    })
}

/// A tool as the host sees it: schemas parsed and checked once, at load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub description: String,
    pub input_schema: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<serde_json::Map<String, serde_json::Value>>,
    pub annotations: Annotations,
    /// The publisher declared that the tool may run long ([`LONG_RUNNING_KEYWORD`] in its input schema): over MCP,
    /// a client that declares the Tasks extension gets a task handle for its calls (the operator's `plughost limits
    /// ID --tool T --long-running true|false` overrides it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub long_running: bool,
}

/// The keyword of a tool's input schema by which a plugin declares the tool long-running (`true`). The 0.1.0
/// manifest record is frozen, and its one extensible part per tool is the input schema's JSON (JSON Schema
/// ignores unknown keywords); the host takes the keyword out of the schema it serves and validates with.
pub const LONG_RUNNING_KEYWORD: &str = "x-plughost-long-running";

/// MCP tool annotations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotations {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destructive_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent_hint: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_world_hint: Option<bool>,
}

/// A plugin's validated manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    pub tools: Vec<ToolInfo>,
    /// Resources, templates and prompts (contract 0.2.0; empty for a 0.1.0 component).
    #[serde(flatten)]
    pub offers: Offers,
}

impl Manifest {
    pub fn tool(&self, name: &str) -> Option<&ToolInfo> {
        self.tools.iter().find(|t| t.name == name)
    }
}

fn valid_ident(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b))
        && !s.starts_with('-')
}

fn parse_schema(
    tool: &str,
    which: &str,
    text: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("tool `{tool}`: {which} schema is not JSON: {e}"))?;
    let serde_json::Value::Object(map) = v else {
        return Err(format!(
            "tool `{tool}`: {which} schema must be a JSON object"
        ));
    };
    if map.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err(format!(
            "tool `{tool}`: {which} schema must have \"type\": \"object\""
        ));
    }
    Ok(map)
}

/// Longest description (the plugin's or a tool's) a manifest may carry, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 64 << 10;
/// Longest name or title, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Largest JSON Schema (input or output) of one tool, in bytes.
pub const MAX_SCHEMA_BYTES: usize = 256 << 10;
/// Most tools one plugin may declare.
pub const MAX_TOOLS: usize = 1000;

/// A name from the manifest as an error message shows it: at most 64 bytes, so a hostile name cannot make the
/// message huge.
fn shown(name: &str) -> String {
    let mut s = name.to_string();
    if s.len() > 64 {
        crate::caps::view::truncate_str(&mut s, 64);
        s.push('…');
    }
    s
}

/// A problem if `text` is longer than `max` bytes.
fn too_long(what: &str, text: &str, max: usize) -> Option<String> {
    (text.len() > max).then(|| {
        format!(
            "{what} is {}, more than the {} allowed",
            crate::units::human_bytes(text.len() as u64),
            crate::units::human_bytes(max as u64)
        )
    })
}

impl TryFrom<tools::Manifest> for Manifest {
    type Error = LoadError;

    fn try_from(m: tools::Manifest) -> Result<Self, LoadError> {
        let mut problems = Vec::new();
        problems.extend(too_long("the plugin's name", &m.name, MAX_NAME_BYTES));
        problems.extend(too_long(
            "the plugin's description",
            &m.description,
            MAX_DESCRIPTION_BYTES,
        ));
        if m.tools.len() > MAX_TOOLS {
            problems.push(format!(
                "{} tools declared, more than the {MAX_TOOLS} allowed",
                m.tools.len()
            ));
        }
        if !valid_ident(&m.id, b"-") {
            problems.push(format!(
                "plugin id `{}` must be 1–64 of [a-z0-9-], not starting with `-`",
                shown(&m.id)
            ));
        }
        if semver::Version::parse(&m.version).is_err() {
            problems.push(format!(
                "version `{}` is not a semantic version",
                shown(&m.version)
            ));
        }
        let mut seen = BTreeMap::new();
        let mut tools = Vec::new();
        for t in m.tools {
            if !valid_ident(&t.name, b"_-") {
                problems.push(format!(
                    "tool name `{}` must be 1–64 of [a-z0-9_-]",
                    shown(&t.name)
                ));
            }
            if seen.insert(t.name.clone(), ()).is_some() {
                problems.push(format!("tool `{}` is declared twice", shown(&t.name)));
            }
            let name = shown(&t.name);
            for (what, text, max) in [
                ("title", t.title.as_deref().unwrap_or(""), MAX_NAME_BYTES),
                ("description", &t.description, MAX_DESCRIPTION_BYTES),
                ("input schema", &t.input_schema, MAX_SCHEMA_BYTES),
                (
                    "output schema",
                    t.output_schema.as_deref().unwrap_or(""),
                    MAX_SCHEMA_BYTES,
                ),
            ] {
                problems.extend(too_long(&format!("tool `{name}`'s {what}"), text, max));
            }
            let input = parse_schema(&name, "input", &t.input_schema).and_then(|mut schema| {
                match schema.remove(LONG_RUNNING_KEYWORD) {
                    None => Ok((schema, false)),
                    Some(serde_json::Value::Bool(b)) => Ok((schema, b)),
                    Some(_) => Err(format!(
                        "tool `{name}`: `{LONG_RUNNING_KEYWORD}` in the input schema must be true or false"
                    )),
                }
            });
            let output = t
                .output_schema
                .as_deref()
                .map(|s| parse_schema(&name, "output", s))
                .transpose();
            match (input, output) {
                (Ok((input_schema, long_running)), Ok(output_schema)) => tools.push(ToolInfo {
                    name: t.name,
                    title: t.title,
                    description: t.description,
                    input_schema,
                    output_schema,
                    annotations: Annotations {
                        read_only_hint: t.annotations.read_only,
                        destructive_hint: t.annotations.destructive,
                        idempotent_hint: t.annotations.idempotent,
                        open_world_hint: t.annotations.open_world,
                    },
                    long_running,
                }),
                (Err(e), _) | (_, Err(e)) => problems.push(e),
            }
        }
        if !problems.is_empty() {
            return Err(LoadError::BadManifest(problems.join("; ")));
        }
        Ok(Manifest {
            id: m.id,
            name: m.name,
            version: m.version,
            description: m.description,
            tools,
            offers: Offers::default(),
        })
    }
}

/// The operator's settings for one plugin: grants, limits, config and secrets.
#[derive(Debug, Clone, Default)]
pub struct PluginSettings {
    pub grants: Grants,
    pub limits: Limits,
    pub config: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    /// The contract window, if the operator set a contract: what the `ledger` capability's `usage()` covers.
    pub window: Option<plughost_registry::Window>,
    /// The operator set no fuel budget: use the component's language default ([`Language::default_fuel`]) instead
    /// of `limits.fuel`.
    pub auto_fuel: bool,
}

/// A plugin ready to be called: compiled, inspected, described, granted and linked.
pub struct LoadedPlugin {
    pub info: ComponentInfo,
    pub manifest: Manifest,
    pub grants: Grants,
    pub limits: Limits,
    pub(crate) env: Arc<PluginEnv>,
    pub(crate) pre: PluginPre<StoreData>,
    /// The next call's instance, when one was prepared ahead.
    pub(crate) standby: Arc<super::standby::Standby>,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("id", &self.manifest.id)
            .field("digest", &self.info.digest)
            .field("grants", &self.grants)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    /// The same linked plugin under other limits (shares the compiled code and the linker).
    pub fn with_limits(&self, limits: Limits) -> LoadedPlugin {
        LoadedPlugin {
            info: self.info.clone(),
            manifest: self.manifest.clone(),
            grants: self.grants.clone(),
            limits,
            env: self.env.clone(),
            pre: self.pre.clone(),
            standby: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_tool(input_schema: &str) -> tools::Manifest {
        tools::Manifest {
            id: "p".into(),
            name: "p".into(),
            version: "0.1.0".into(),
            description: "d".into(),
            tools: vec![tools::Tool {
                name: "t".into(),
                title: None,
                description: "t".into(),
                input_schema: input_schema.into(),
                output_schema: None,
                annotations: tools::Annotations {
                    read_only: None,
                    destructive: None,
                    idempotent: None,
                    open_world: None,
                },
            }],
        }
    }

    #[test]
    fn long_running_is_read_from_the_input_schema_and_taken_out_of_it() {
        let declared = |schema: &str| {
            Manifest::try_from(one_tool(schema)).map(|m| {
                let t = &m.tools[0];
                (
                    t.long_running,
                    serde_json::Value::Object(t.input_schema.clone()),
                )
            })
        };
        let plain = serde_json::json!({"type": "object"});
        assert_eq!(
            declared(r#"{"type":"object","x-plughost-long-running":true}"#).ok(),
            Some((true, plain.clone()))
        );
        assert_eq!(
            declared(r#"{"type":"object","x-plughost-long-running":false}"#).ok(),
            Some((false, plain.clone()))
        );
        assert_eq!(declared(r#"{"type":"object"}"#).ok(), Some((false, plain)));
        let refused = declared(r#"{"type":"object","x-plughost-long-running":"yes"}"#)
            .expect_err("a value that is not a boolean is a bad manifest")
            .to_string();
        assert!(
            refused.contains("`x-plughost-long-running` in the input schema must be true or false"),
            "{refused}"
        );
    }
}
