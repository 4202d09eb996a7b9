//! `plughost componentize`: wraps a core wasm32-wasi (preview1) module into a component, with the WASI preview1
//! adapter that ships with this host's wasmtime, so authors of languages that emit only core modules (C, Zig, …)
//! get a component without installing other tools. The same code is `plughost build`'s last step for C.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wit_parser::Resolve;

/// Which preview1 adapter to link in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Adapter {
    /// A library module (exports functions, no `_start`): what plugins are.
    Reactor,
    /// A program with `_start`.
    Command,
    /// Pick by whether the module exports `_start`.
    Auto,
}

#[derive(clap::Args, Debug)]
pub struct ComponentizeArgs {
    /// A core wasm module (e.g. from `zig cc -target wasm32-wasi -mexec-model=reactor`).
    pub module: PathBuf,
    /// Output component (default: MODULE with `.component.wasm`).
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// A WIT directory to take the world from, for modules built without a `component-type` section
    /// (wit-bindgen's C object file adds one).
    #[arg(long)]
    pub wit: Option<PathBuf>,
    /// The world in --wit (default: the only world of its main package).
    #[arg(long, requires = "wit")]
    pub world: Option<String>,
    /// The WASI preview1 adapter.
    #[arg(long, value_enum, default_value_t = Adapter::Auto)]
    pub adapter: Adapter,
}

pub fn run(args: ComponentizeArgs) -> Result<std::process::ExitCode> {
    let module = std::fs::read(&args.module)
        .with_context(|| format!("cannot read {}", args.module.display()))?;
    let world = match &args.wit {
        Some(dir) => Some(load_world(dir, args.world.as_deref())?),
        None => None,
    };
    let component = componentize(module, world.as_ref().map(|(r, w)| (r, *w)), args.adapter)
        .with_context(|| format!("cannot make a component of {}", args.module.display()))?;
    let out = args
        .out
        .unwrap_or_else(|| args.module.with_extension("component.wasm"));
    std::fs::write(&out, &component).with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("wrote {} ({} bytes)", out.display(), component.len());
    Ok(std::process::ExitCode::SUCCESS)
}

/// Parses a WIT directory (with its `deps/`) and picks a world.
pub fn load_world(dir: &Path, world: Option<&str>) -> Result<(Resolve, wit_parser::WorldId)> {
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve
        .push_dir(dir)
        .with_context(|| format!("cannot parse the WIT in {}", dir.display()))?;
    let id = resolve
        .select_world(&[pkg], world)
        .with_context(|| format!("no such world in {}", dir.display()))?;
    Ok((resolve, id))
}

/// Core module (+ optional WIT world to embed) → component bytes.
pub fn componentize(
    mut module: Vec<u8>,
    world: Option<(&Resolve, wit_parser::WorldId)>,
    adapter: Adapter,
) -> Result<Vec<u8>> {
    if wasmparser::Parser::is_component(&module) {
        bail!("this is a component already (nothing to wrap)");
    }
    if !wasmparser::Parser::is_core_wasm(&module) {
        bail!("not a WebAssembly module (bad header)");
    }
    let exports_start = exports_start(&module)?;
    if let Some((resolve, world)) = world {
        wit_component::embed_component_metadata(
            &mut module,
            resolve,
            world,
            wit_component::StringEncoding::UTF8,
            false,
        )?;
    }
    let adapter_bytes = match (adapter, exports_start) {
        (Adapter::Command, _) | (Adapter::Auto, true) => WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
        (Adapter::Reactor, _) | (Adapter::Auto, false) => WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
    };
    let mut encoder = wit_component::ComponentEncoder::default();
    encoder.validate(true).module(&module).context(
        "reading the module's component-type section (built with wit-bindgen? else pass --wit)",
    )?;
    if imports_preview1(&module)? {
        encoder.adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, adapter_bytes)?;
    }
    encoder.encode()
}

fn exports_start(module: &[u8]) -> Result<bool> {
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        if let wasmparser::Payload::ExportSection(s) = payload? {
            for e in s {
                if e?.name == "_start" {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}

fn imports_preview1(module: &[u8]) -> Result<bool> {
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        if let wasmparser::Payload::ImportSection(s) = payload? {
            for i in s.into_imports() {
                if i?.module == WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME {
                    return Ok(true);
                }
            }
        }
    }
    Ok(false)
}
