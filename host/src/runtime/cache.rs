//! Loading a precompiled artifact: the only `unsafe` in the host.

#![allow(unsafe_code)]

use std::path::Path;

use wasmtime::Engine;
use wasmtime::component::Component;

/// Maps a cached `.cwasm` into memory.
///
/// Safety argument: the file was written by `HostEngine::compile` (engine.rs) (atomically, so never half
/// written) under the data dir, in a directory named by this engine's compatibility hash, so its format matches this
/// engine. wasmtime still checks the header and refuses an artifact from another version or configuration.
pub(crate) fn load(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: see above; the artifact is ours and wasmtime validates its header against the engine.
    unsafe { Component::deserialize_file(engine, path) }
}
