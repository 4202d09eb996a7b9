//! Loading a precompiled artifact: the only `unsafe` in the host.

#![allow(unsafe_code)]

use wasmtime::Engine;
use wasmtime::component::Component;

/// Loads a cached `.cwasm` from its bytes.
///
/// Safety argument: wasmtime runs the artifact's machine code as it is, so it must be exactly what this engine
/// wrote. `HostEngine::load_cached` (engine.rs) read these bytes once from the data dir's cache, in a directory named
/// by this engine's compatibility hash, and checked their blake3 against the digest recorded in the registry's
/// index when `HostEngine::compile` wrote the artifact; it passes the checked bytes, not the path, so the file cannot
/// change between the check and the load. wasmtime still checks the header and refuses an artifact from another
/// version or configuration.
pub(crate) fn load(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: see above; the bytes are the ones we wrote (digest checked) and wasmtime validates their header.
    unsafe { Component::deserialize(engine, artifact) }
}
