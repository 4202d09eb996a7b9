//! Every way the registry refuses, each naming its cause. Nothing here fails open: a refusal writes nothing.

use std::path::PathBuf;

/// A registry error.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the registry index {path} is unreadable or corrupted: {message}")]
    IndexCorrupt { path: PathBuf, message: String },
    #[error("registry index error: {0}")]
    Index(#[from] rusqlite::Error),
    /// The shared store (`--store postgres://…`) failed; `unavailable` when it cannot be reached.
    #[error(transparent)]
    Shared(#[from] crate::pg::PgError),
    /// A registry command that does not work on the shared store yet (it would act on this machine's data dir
    /// only, which a cluster would not see).
    #[error(
        "`{0}` is not available on a shared store (--store) yet; run it without --store on a data dir"
    )]
    NotShared(&'static str),
    /// A secret in the shared store cannot be sealed or opened (no store key, the wrong one, an unreadable key file).
    #[error("{0}")]
    StoreKey(String),
    #[error("the audit trail is broken at entry {seq} ({action}): {why}")]
    AuditBroken {
        seq: i64,
        action: String,
        why: String,
    },
    #[error(
        "the stored component {digest} is corrupted (its content no longer has that digest: {path}); \
         reinstall the plugin"
    )]
    BlobCorrupt { digest: String, path: PathBuf },
    #[error("the stored component {digest} is missing from {path}; reinstall the plugin")]
    BlobMissing { digest: String, path: PathBuf },

    #[error("no key named `{0}`; `plughost keys list` shows the keys")]
    UnknownKey(String),
    #[error("a key named `{0}` already exists")]
    KeyExists(String),
    #[error("key names use letters, digits, '-', '_' and '.', at most 64 characters: `{0}`")]
    BadKeyName(String),
    #[error(
        "not a plughost public key file ({0}); it should be one line: `plughost-ed25519 <base64> <name>`"
    )]
    BadPublicKey(String),
    #[error("not a plughost secret key file ({0})")]
    BadSecretKey(String),
    #[error("the key {fingerprint} is already trusted as `{name}`")]
    AlreadyTrusted { name: String, fingerprint: String },
    #[error("cannot generate a key: the system's random source failed: {0}")]
    Random(String),

    #[error("the signature file is malformed: {0}")]
    MalformedSignature(String),
    #[error(
        "the component's digest {actual} does not match the signed digest {signed} (signed for {plugin} {version}): \
         the file was modified, or the signature belongs to another component"
    )]
    DigestMismatch {
        actual: String,
        signed: String,
        plugin: String,
        version: String,
    },
    #[error(
        "signed by a key that is not trusted: `{name}` {fingerprint}. If you trust this publisher, run \
         `plughost keys trust <their .pub file>`"
    )]
    UntrustedKey { name: String, fingerprint: String },
    #[error("signed by a revoked key: `{name}` {fingerprint}")]
    RevokedKey { name: String, fingerprint: String },
    #[error("the signature does not verify: the signed statement or the signature was altered")]
    BadSignature,

    #[error("no token named `{0}`; `plughost tokens list` shows the tokens")]
    UnknownToken(String),
    #[error("a token named `{0}` already exists; revoke it first or choose another name")]
    TokenExists(String),
    #[error("token names use letters, digits, '-', '_' and '.', at most 64 characters: `{0}`")]
    BadTokenName(String),
    #[error("no plugin `{0}` is installed; `plughost list` shows what is")]
    NotInstalled(String),
    #[error("plugin `{id}` is already installed (version {version}); use `plughost upgrade`")]
    AlreadyInstalled { id: String, version: String },
    #[error("plugin `{id}` {version} is already the installed version (same digest {digest})")]
    SameVersion {
        id: String,
        version: String,
        digest: String,
    },
    #[error("plugin `{0}` has no earlier version to roll back to")]
    NoEarlierVersion(String),
    #[error(
        "plugin `{id}` would roll back to {version}, which is the version it runs now (same digest {digest}); \
         nothing was changed"
    )]
    RollbackToSame {
        id: String,
        version: String,
        digest: String,
    },
    #[error(
        "plugin `{id}` was installed from publisher {old}, but this version is from {new}: refusing to let another \
         publisher's code take over the plugin and its state. If you mean it, upgrade with --allow-publisher-change"
    )]
    PublisherChanged {
        id: String,
        old: String,
        new: String,
    },
    #[error(
        "plugin `{id}`: version {to} {why} the installed {from}; refusing to downgrade. If you mean it, upgrade with \
         --allow-downgrade (or `plughost rollback {id}` to go back to the previous version)"
    )]
    Downgrade {
        id: String,
        from: String,
        to: String,
        why: &'static str,
    },
    #[error(
        "grant `{grant}` is for a capability that plugin `{plugin}`'s publisher did not declare (declared: {declared})"
    )]
    Undeclared {
        plugin: String,
        grant: String,
        declared: String,
    },
    #[error(
        "grant `{grant}` goes beyond what plugin `{plugin}`'s publisher declared for `{capability}`: `{declared}` \
         (a grant may narrow the declared scope, never widen it)"
    )]
    OutsideDeclared {
        plugin: String,
        grant: String,
        capability: String,
        declared: String,
    },
    #[error(
        "grant `{grant}` cannot be approved: plugin `{plugin}`'s publisher declared `{declared}`, which is not a valid \
         grant ({reason}); the publisher must sign it again with a valid `--request`"
    )]
    UnreadableDeclaration {
        plugin: String,
        grant: String,
        declared: String,
        reason: String,
    },
    #[error("grant `{grant}`: {source}")]
    BadGrant {
        grant: String,
        source: crate::grants::GrantError,
    },
    #[error("the install request does not match its signature: {0}")]
    StatementMismatch(String),
    #[error(
        "invalid plugin id `{0}`: use lowercase letters, digits and '-', starting with a letter"
    )]
    BadPluginId(String),
    #[error("invalid config key `{0}`: use letters, digits, '_', '-' and '.'")]
    BadConfigKey(String),
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> RegistryError {
    let path = path.into();
    move |source| RegistryError::Io { path, source }
}
