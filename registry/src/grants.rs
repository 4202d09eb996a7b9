//! Typed grants, parsed once.
//!
//! A grant is spelled the same way everywhere (CLI flags, TOML, the registry):
//! `log`, `metrics`, `config`, `system`, `ledger`, `state` or `state:16MiB`, `http:https://api.example.com`,
//! `http:https://*.example.com:8443,http://127.0.0.1:9000`, `container:read,lifecycle;images=localhost/busybox:*`.
//! Strings are parsed into [`Grant`] values at load time; nothing on the call path looks at a string again.
//! [`GrantKind`] reads only the capability name of a grant string (what the registry compares when it checks grants
//! against what a publisher declared); [`Grants`] is the set one plugin holds.
//!
//! One file (about 700 lines, a third of them tests) on purpose: it is one grammar, and every capability's options
//! parse and print next to each other; splitting off the origins would put half of `http:` elsewhere.
//!
//! The registry stores and checks grants, so the types live here; the host re-exports this module as
//! `plughost::grants`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::units::{format_bytes, parse_bytes};

/// One host capability: a WIT interface of `plughost:plugin` that a plugin can import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    Log,
    Metrics,
    State,
    Config,
    System,
    Http,
    Container,
    Ledger,
}

impl Capability {
    /// Every capability, in a stable order (also the index order of per-call counters).
    pub const ALL: [Capability; 8] = [
        Capability::Log,
        Capability::Metrics,
        Capability::State,
        Capability::Config,
        Capability::System,
        Capability::Http,
        Capability::Container,
        Capability::Ledger,
    ];

    /// The WIT interface name, e.g. `state`.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::Metrics => "metrics",
            Capability::State => "state",
            Capability::Config => "config",
            Capability::System => "system",
            Capability::Http => "http",
            Capability::Container => "container",
            Capability::Ledger => "ledger",
        }
    }

    /// Position in [`Capability::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Looks up a capability by its interface name.
    pub fn from_name(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.name() == name)
    }

    /// What granting it lets a plugin do, for people approving it.
    pub fn describe(self) -> &'static str {
        match self {
            Capability::Log => "write log lines to the host's log",
            Capability::Metrics => "record metrics under its own name",
            Capability::State => "keep key/value data in its own store, up to a byte quota",
            Capability::Config => "read the settings and secrets the operator gave it",
            Capability::System => "read OS, CPU, memory, disk and network facts of this machine",
            Capability::Http => "send HTTP requests to the granted origins",
            Capability::Container => "operate the Docker engine within the granted groups",
            Capability::Ledger => "append events to the usage ledger and read its own usage",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a grant string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error(
        "unknown capability `{0}` (known: log, metrics, state, config, system, http, container, ledger)"
    )]
    UnknownCapability(String),
    #[error("`{capability}` takes no options, got `{options}`")]
    UnexpectedOptions {
        capability: Capability,
        options: String,
    },
    #[error("`http` needs at least one origin, e.g. `http:https://api.example.com`")]
    MissingOrigins,
    #[error("bad origin `{origin}`: {reason}")]
    BadOrigin { origin: String, reason: String },
    #[error("bad state quota `{0}`: use a size like 16MiB")]
    BadQuota(String),
    #[error(
        "bad container grant `{0}`: use groups read, lifecycle, images, any-container, e.g. `container:read,lifecycle;images=localhost/busybox:*`"
    )]
    BadContainer(String),
}

/// The scheme of an allowed origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// The port used when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// The host part of an origin pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Exactly this host name or IP literal (lower-case; IPv6 without brackets).
    Exact(String),
    /// `*.suffix`: any host that ends in `.suffix` (not `suffix` itself).
    Subdomains(String),
}

/// An allowed origin `scheme://host[:port]`, parsed once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OriginPattern {
    pub scheme: Scheme,
    pub host: HostPattern,
    pub port: u16,
}

impl OriginPattern {
    /// Whether an origin (scheme, lower-case host, port) is allowed by this pattern.
    pub fn allows(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        if scheme != self.scheme || port != self.port {
            return false;
        }
        match &self.host {
            HostPattern::Exact(h) => h.eq_ignore_ascii_case(host),
            HostPattern::Subdomains(suffix) => {
                host.len() > suffix.len() + 1
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
        }
    }

    /// Whether the pattern names this exact host (used to allow private addresses only when named explicitly).
    pub fn names_host_exactly(&self, host: &str) -> bool {
        matches!(&self.host, HostPattern::Exact(h) if h.eq_ignore_ascii_case(host))
    }
}

impl FromStr for OriginPattern {
    type Err = GrantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| GrantError::BadOrigin {
            origin: s.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = match s.split_once("://") {
            Some(("https", rest)) => (Scheme::Https, rest),
            Some(("http", rest)) => (Scheme::Http, rest),
            Some((other, _)) => return Err(bad(&format!("scheme `{other}` is not http or https"))),
            // No scheme means https only.
            None => (Scheme::Https, s),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(bad("no host"));
        }
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("an origin has no path, query, fragment or user info"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after `]`"))?),
            };
            (h.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (rest.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad("port is not a number 0–65535"))?,
            None => scheme.default_port(),
        };
        let host = host.to_ascii_lowercase();
        let host = if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(bad("a wildcard must be `*.` followed by a domain"));
            }
            HostPattern::Subdomains(suffix.to_string())
        } else {
            if host.is_empty() || host.contains('*') {
                return Err(bad("a wildcard is only allowed as a leading `*.`"));
            }
            HostPattern::Exact(host)
        };
        Ok(OriginPattern { scheme, host, port })
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostPattern::Exact(h) if h.contains(':') => format!("[{h}]"),
            HostPattern::Exact(h) => h.clone(),
            HostPattern::Subdomains(s) => format!("*.{s}"),
        };
        write!(f, "{}://{}", self.scheme.as_str(), host)?;
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// Container operation groups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ContainerOps {
    pub read: bool,
    pub lifecycle: bool,
    pub images: bool,
    /// May also stop/remove containers it did not create.
    pub any_container: bool,
}

/// Splits a grant string at its first `:` into the capability name and the options: `http:https://a.org` is
/// `("http", Some("https://a.org"))`, `log` is `("log", None)`. The one place a grant string is cut.
fn split(grant: &str) -> (&str, Option<&str>) {
    match grant.split_once(':') {
        Some((name, options)) => (name, Some(options)),
        None => (grant, None),
    }
}

/// The capability a grant string names, read without its options: what grants are compared by when they are
/// checked against what a publisher declared. It never fails, so a grant whose options do not parse (`http:*`) still
/// has a kind; a name this build does not know stays as written (trimmed), so two such grants compare as their names
/// do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantKind<'a> {
    Known(Capability),
    Unknown(&'a str),
}

impl<'a> GrantKind<'a> {
    /// The kind of a grant string: [`Capability::Http`] for `http:https://api.example.com`, [`Capability::State`] for
    /// `state:16MiB`.
    pub fn of(grant: &'a str) -> GrantKind<'a> {
        let name = split(grant.trim()).0.trim();
        match Capability::from_name(name) {
            Some(cap) => GrantKind::Known(cap),
            None => GrantKind::Unknown(name),
        }
    }

    /// The capability's name, or the unknown name as written.
    pub fn name(self) -> &'a str {
        match self {
            GrantKind::Known(cap) => cap.name(),
            GrantKind::Unknown(name) => name,
        }
    }

    pub fn capability(self) -> Option<Capability> {
        match self {
            GrantKind::Known(cap) => Some(cap),
            GrantKind::Unknown(_) => None,
        }
    }
}

/// The capability name a grant string is for: `http` for `http:https://api.example.com`, `state` for `state:16MiB`,
/// and the name as written for a capability this build does not know. [`GrantKind::of`] is the typed form.
pub fn grant_kind(grant: &str) -> &str {
    GrantKind::of(grant).name()
}

/// The default state quota when `state` is granted without a size.
pub const DEFAULT_STATE_QUOTA: u64 = 16 * 1024 * 1024;

/// One granted capability with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Grant {
    Log,
    Metrics,
    State {
        quota_bytes: u64,
    },
    Config,
    System,
    Http {
        allow: Vec<OriginPattern>,
    },
    Container {
        ops: ContainerOps,
        images: Vec<String>,
    },
    Ledger,
}

impl Grant {
    pub fn capability(&self) -> Capability {
        match self {
            Grant::Log => Capability::Log,
            Grant::Metrics => Capability::Metrics,
            Grant::State { .. } => Capability::State,
            Grant::Config => Capability::Config,
            Grant::System => Capability::System,
            Grant::Http { .. } => Capability::Http,
            Grant::Container { .. } => Capability::Container,
            Grant::Ledger => Capability::Ledger,
        }
    }
}

impl FromStr for Grant {
    type Err = GrantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (name, options) = split(s);
        let cap = Capability::from_name(name)
            .ok_or_else(|| GrantError::UnknownCapability(name.to_string()))?;
        let no_options = |g: Grant| match options {
            None => Ok(g),
            Some(o) => Err(GrantError::UnexpectedOptions {
                capability: cap,
                options: o.to_string(),
            }),
        };
        match cap {
            Capability::Log => no_options(Grant::Log),
            Capability::Metrics => no_options(Grant::Metrics),
            Capability::Config => no_options(Grant::Config),
            Capability::System => no_options(Grant::System),
            Capability::Ledger => no_options(Grant::Ledger),
            Capability::State => {
                let quota_bytes = match options {
                    None => DEFAULT_STATE_QUOTA,
                    Some(q) => parse_bytes(q).map_err(|_| GrantError::BadQuota(q.to_string()))?,
                };
                Ok(Grant::State { quota_bytes })
            }
            Capability::Http => {
                let list = options
                    .filter(|o| !o.trim().is_empty())
                    .ok_or(GrantError::MissingOrigins)?;
                let allow = list
                    .split(',')
                    .map(|o| o.trim().parse())
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Grant::Http { allow })
            }
            Capability::Container => {
                let spec = options.ok_or_else(|| GrantError::BadContainer(s.to_string()))?;
                let mut parts = spec.split(';');
                let mut ops = ContainerOps::default();
                for group in parts.next().unwrap_or_default().split(',').map(str::trim) {
                    match group {
                        "read" => ops.read = true,
                        "lifecycle" => ops.lifecycle = true,
                        "images" => ops.images = true,
                        "any-container" => ops.any_container = true,
                        _ => return Err(GrantError::BadContainer(s.to_string())),
                    }
                }
                let mut images = Vec::new();
                for part in parts {
                    let list = part
                        .trim()
                        .strip_prefix("images=")
                        .ok_or_else(|| GrantError::BadContainer(s.to_string()))?;
                    images.extend(
                        list.split(',')
                            .map(|i| i.trim().to_string())
                            .filter(|i| !i.is_empty()),
                    );
                }
                Ok(Grant::Container { ops, images })
            }
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::State { quota_bytes } if *quota_bytes == DEFAULT_STATE_QUOTA => {
                f.write_str("state")
            }
            Grant::State { quota_bytes } => write!(f, "state:{}", format_bytes(*quota_bytes)),
            Grant::Http { allow } => {
                f.write_str("http:")?;
                for (i, o) in allow.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{o}")?;
                }
                Ok(())
            }
            Grant::Container { ops, images } => {
                let groups: Vec<&str> = [
                    (ops.read, "read"),
                    (ops.lifecycle, "lifecycle"),
                    (ops.images, "images"),
                    (ops.any_container, "any-container"),
                ]
                .into_iter()
                .filter_map(|(on, n)| on.then_some(n))
                .collect();
                write!(f, "container:{}", groups.join(","))?;
                if !images.is_empty() {
                    write!(f, ";images={}", images.join(","))?;
                }
                Ok(())
            }
            other => f.write_str(other.capability().name()),
        }
    }
}

/// The set of grants one plugin holds: at most one [`Grant`] per capability (repeated grants merge).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    by_cap: [Option<Grant>; 8],
}

impl Grants {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses and merges a list of grant strings.
    pub fn parse<I, S>(items: I) -> Result<Self, GrantError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut g = Grants::new();
        for item in items {
            g.add(item.as_ref().parse()?);
        }
        Ok(g)
    }

    /// Adds a grant, merging with an existing grant of the same capability
    /// (origins and images are unioned, ops or-ed, the larger state quota kept).
    pub fn add(&mut self, grant: Grant) {
        let slot = &mut self.by_cap[grant.capability().index()];
        *slot = Some(match (slot.take(), grant) {
            (Some(Grant::Http { mut allow }), Grant::Http { allow: more }) => {
                for o in more {
                    if !allow.contains(&o) {
                        allow.push(o);
                    }
                }
                Grant::Http { allow }
            }
            (
                Some(Grant::Container { ops: a, mut images }),
                Grant::Container {
                    ops: b,
                    images: more,
                },
            ) => {
                for i in more {
                    if !images.contains(&i) {
                        images.push(i);
                    }
                }
                let ops = ContainerOps {
                    read: a.read || b.read,
                    lifecycle: a.lifecycle || b.lifecycle,
                    images: a.images || b.images,
                    any_container: a.any_container || b.any_container,
                };
                Grant::Container { ops, images }
            }
            (Some(Grant::State { quota_bytes: a }), Grant::State { quota_bytes: b }) => {
                Grant::State {
                    quota_bytes: a.max(b),
                }
            }
            (_, g) => g,
        });
    }

    /// Removes the grant for a capability; returns it.
    pub fn revoke(&mut self, cap: Capability) -> Option<Grant> {
        self.by_cap[cap.index()].take()
    }

    pub fn get(&self, cap: Capability) -> Option<&Grant> {
        self.by_cap[cap.index()].as_ref()
    }

    pub fn has(&self, cap: Capability) -> bool {
        self.by_cap[cap.index()].is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.by_cap.iter().flatten()
    }

    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The canonical strings, one per capability, in capability order.
    pub fn to_strings(&self) -> Vec<String> {
        self.iter().map(ToString::to_string).collect()
    }

    /// The state quota, if `state` is granted.
    pub fn state_quota(&self) -> Option<u64> {
        match self.get(Capability::State) {
            Some(Grant::State { quota_bytes }) => Some(*quota_bytes),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_grants_round_trip() {
        for s in [
            "log",
            "metrics",
            "config",
            "system",
            "ledger",
            "state",
            "state:1MiB",
        ] {
            let g: Grant = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(g.to_string(), s);
        }
    }

    #[test]
    fn unknown_and_malformed_grants_are_refused() {
        assert_eq!(
            "fs".parse::<Grant>(),
            Err(GrantError::UnknownCapability("fs".into()))
        );
        assert!(matches!(
            "system:all".parse::<Grant>(),
            Err(GrantError::UnexpectedOptions { .. })
        ));
        assert_eq!("http".parse::<Grant>(), Err(GrantError::MissingOrigins));
        assert!(matches!(
            "http:ftp://x.org".parse::<Grant>(),
            Err(GrantError::BadOrigin { .. })
        ));
        assert!(matches!(
            "http:https://x.org/path".parse::<Grant>(),
            Err(GrantError::BadOrigin { .. })
        ));
        assert!(matches!(
            "http:https://a*.org".parse::<Grant>(),
            Err(GrantError::BadOrigin { .. })
        ));
        assert!(matches!(
            "http:https://x.org:99999".parse::<Grant>(),
            Err(GrantError::BadOrigin { .. })
        ));
        assert!(matches!(
            "state:lots".parse::<Grant>(),
            Err(GrantError::BadQuota(_))
        ));
        assert!(matches!(
            "container:everything".parse::<Grant>(),
            Err(GrantError::BadContainer(_))
        ));
    }

    #[test]
    fn grant_kinds_read_the_name_before_the_first_colon() {
        for (grant, kind) in [
            ("http:https://api.example.com", "http"),
            (
                "http:https://*.example.com:8443,http://127.0.0.1:9000",
                "http",
            ),
            (
                "container:read,lifecycle;images=localhost/busybox:*",
                "container",
            ),
            ("state:16MiB", "state"),
            ("state", "state"),
            (" system ", "system"),
            (" http : https://a.org", "http"),
            ("http", "http"),
            ("http:*", "http"),
            ("fs:/tmp", "fs"),
            ("System", "System"),
            ("a:b:c", "a"),
            ("", ""),
        ] {
            assert_eq!(grant_kind(grant), kind, "{grant:?}");
            // The same as cutting the string at its first colon and trimming, as the registry always did.
            assert_eq!(
                grant_kind(grant),
                grant.split(':').next().unwrap_or(grant).trim()
            );
        }
        assert_eq!(GrantKind::of("http:*"), GrantKind::Known(Capability::Http));
        assert_eq!(
            GrantKind::of("state:lots").capability(),
            Some(Capability::State)
        );
        assert_eq!(GrantKind::of("fs"), GrantKind::Unknown("fs"));
        assert_eq!(GrantKind::of("System"), GrantKind::Unknown("System"));
    }

    #[test]
    fn origins_check_scheme_host_and_port() {
        let o: OriginPattern = "https://api.cloudflare.com"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(o.allows(Scheme::Https, "api.cloudflare.com", 443));
        assert!(o.allows(Scheme::Https, "API.Cloudflare.com", 443));
        assert!(!o.allows(Scheme::Http, "api.cloudflare.com", 80));
        assert!(!o.allows(Scheme::Https, "api.cloudflare.com", 8443));
        assert!(!o.allows(Scheme::Https, "evil.com", 443));
        assert!(!o.allows(Scheme::Https, "api.cloudflare.com.evil.com", 443));

        let bare: OriginPattern = "example.com".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bare.scheme, Scheme::Https, "no scheme means https only");

        let wild: OriginPattern = "https://*.example.com:8443"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(wild.allows(Scheme::Https, "a.example.com", 8443));
        assert!(wild.allows(Scheme::Https, "a.b.example.com", 8443));
        assert!(!wild.allows(Scheme::Https, "example.com", 8443));
        assert!(!wild.allows(Scheme::Https, "badexample.com", 8443));
        assert!(!wild.allows(Scheme::Https, "a.example.com", 443));

        let v6: OriginPattern = "http://[::1]:9000"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(v6.allows(Scheme::Http, "::1", 9000));
        assert_eq!(v6.to_string(), "http://[::1]:9000");
    }

    #[test]
    fn grants_merge_per_capability() {
        let g = Grants::parse([
            "http:https://a.org",
            "http:https://b.org,http://127.0.0.1:8080",
            "container:read",
            "container:lifecycle;images=localhost/busybox:*",
            "state:1MiB",
            "state:2MiB",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            g.to_strings(),
            vec![
                "state:2MiB".to_string(),
                "http:https://a.org,https://b.org,http://127.0.0.1:8080".to_string(),
                "container:read,lifecycle;images=localhost/busybox:*".to_string(),
            ]
        );
        assert!(g.has(Capability::Http));
        assert!(!g.has(Capability::System));
    }
}
