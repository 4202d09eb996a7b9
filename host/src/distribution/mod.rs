//! Distribution: getting components and their signatures to and from OCI registries (`oci.rs`, through the
//! maintained `oci-client` crate) with the credentials an operator keeps (`auth.rs`), or from an https URL (`url.rs`). Nothing here verifies or
//! installs: the CLI hands what was fetched to the same verify-before-write path a local file takes.
//!
//! The artifact is the CNCF TAG-Runtime Wasm OCI layout (config `application/vnd.wasm.config.v0+json`, one
//! `application/wasm` layer), so other Wasm tools read it. The signature is its own small artifact whose `subject`
//! is the component's manifest (an OCI 1.1 registry indexes it as a referrer), always also tagged
//! `sha256-<hex>.sig` (the tag schema cosign uses). A pull asks the referrers API first, then reads that tag.

pub mod auth;
mod failures;
pub mod oci;
mod types;
pub mod url;

pub use auth::{Credentials, CredentialsStore};
pub use oci::{OciClient, Pulled};
pub use types::{DistError, Options, is_loopback};
pub use url::UrlFetcher;
