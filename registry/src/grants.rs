//! Typed grants, parsed once.
//!
//! A grant is spelled the same way everywhere (CLI flags, TOML, the registry):
//! `log`, `metrics`, `config`, `system`, `ledger`, `state` or `state:16MiB`, `http:https://api.example.com`,
//! `http:https://*.example.com:8443,http://127.0.0.1:9000`, `container:read,lifecycle;images=localhost/busybox:*`.
//! Strings are parsed into [`Grant`] values at load time; nothing on the call path looks at a string again.
//! [`GrantKind`] reads only the capability name of a grant string; [`Grants`] is the set one plugin holds;
//! [`Declaration`] is what a publisher declared, and [`Grant::covered_by`] the rule that a grant stays inside it.
//!
//! One file (about 1,050 lines: 740 of code, 300 of tests) on purpose: it is one grammar, and every capability's
//! options parse, print and cover one another next to each other; splitting off the origins would put half of
//! `http:` elsewhere.
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

/// The capability a grant string names, read without its options (what an unsigned component's grants are compared
/// by: it has no declaration, only imports). It never fails, so a grant whose options do not parse (`http:*`) still
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

impl Grant {
    /// Whether everything this grant allows is also allowed by `declared` (the publisher's declaration of the same
    /// capability): the rule that a grant stays inside what was declared, at the declared level of detail.
    ///
    /// - `http`: each granted origin is covered by a declared one (same scheme and port; an exact host by the same
    ///   host or a `*.` pattern it falls under; `*.a.example.com` by `*.a.example.com` or `*.example.com`).
    /// - `container`: the granted groups are a subset of the declared groups, and each granted image pattern is
    ///   covered by a declared one (matches only what the declared pattern matches).
    /// - `state`: the granted quota is at most the declared one (`state` alone declares 16 MiB).
    /// - the others have no parameters: the same capability covers.
    ///
    /// A grant of another capability is never covered.
    pub fn covered_by(&self, declared: &Grant) -> bool {
        match (self, declared) {
            (Grant::Http { allow }, Grant::Http { allow: declared }) => allow
                .iter()
                .all(|o| declared.iter().any(|d| o.covered_by(d))),
            (
                Grant::Container { ops, images },
                Grant::Container {
                    ops: d_ops,
                    images: d_images,
                },
            ) => {
                ops.within(d_ops)
                    && images
                        .iter()
                        .all(|i| d_images.iter().any(|d| image_pattern_covered(i, d)))
            }
            (Grant::State { quota_bytes }, Grant::State { quota_bytes: max }) => quota_bytes <= max,
            (g, d) => g.capability() == d.capability(),
        }
    }
}

impl OriginPattern {
    /// Whether every origin this pattern allows is also allowed by `declared`.
    pub fn covered_by(&self, declared: &OriginPattern) -> bool {
        if self.scheme != declared.scheme || self.port != declared.port {
            return false;
        }
        match (&self.host, &declared.host) {
            (HostPattern::Exact(h), _) => declared.allows(self.scheme, h, self.port),
            (HostPattern::Subdomains(s), HostPattern::Subdomains(d)) => {
                s.eq_ignore_ascii_case(d) || declared.allows(self.scheme, s, self.port)
            }
            (HostPattern::Subdomains(_), HostPattern::Exact(_)) => false,
        }
    }
}

impl ContainerOps {
    /// Whether every group of `self` is also in `declared`.
    pub fn within(&self, declared: &ContainerOps) -> bool {
        (!self.read || declared.read)
            && (!self.lifecycle || declared.lifecycle)
            && (!self.images || declared.images)
            && (!self.any_container || declared.any_container)
    }
}

/// Whether the image pattern `granted` matches only references the pattern `declared` matches (`*` matches any run
/// of characters). Decided by matching `declared` against the text of `granted` with its `*`s as plain characters:
/// each `*` of the granted pattern must then fall inside a `*` of the declared one, so whatever it stands for the
/// declared pattern still matches. A granted pattern without `*` is also covered when its `:latest` form is (the
/// host reads `busybox` as `busybox:latest`).
fn image_pattern_covered(granted: &str, declared: &str) -> bool {
    if star_glob(declared, granted) {
        return true;
    }
    if granted.contains('*') {
        return false;
    }
    let last = granted.rsplit('/').next().unwrap_or(granted);
    !last.contains(':')
        && !granted.contains('@')
        && star_glob(declared, &format!("{granted}:latest"))
}

/// `*`-only glob: `*` in `pattern` matches any run of characters of `text` (including `*`s).
fn star_glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
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

    /// What `plughost grant` does with a grant on top of the held ones: origins, groups and images are added (as
    /// [`Grants::add`]), a state quota replaces the held one, so a quota can be lowered as well as raised.
    pub fn grant(&mut self, grant: Grant) {
        if let Grant::State { .. } = grant {
            self.by_cap[Capability::State.index()] = Some(grant);
        } else {
            self.add(grant);
        }
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

/// What a publisher declared, parsed once: per capability the merged declared grant (the widest scope it may be
/// granted), and the declared strings that do not parse (a signed statement can hold anything, e.g. `http:*`).
#[derive(Debug, Clone, Default)]
pub struct Declaration {
    grants: Grants,
    unreadable: Vec<(String, GrantError)>,
}

/// Why a grant is not covered by a [`Declaration`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uncovered {
    /// Nothing of this capability was declared.
    NotDeclared,
    /// The capability was declared, with a narrower scope: the declared grant.
    Outside(Grant),
    /// The only declarations of this capability do not parse, so they cover nothing.
    Unreadable {
        declared: String,
        reason: GrantError,
    },
}

impl Declaration {
    /// Parses declared grant strings; repeated declarations of one capability merge as grants do.
    pub fn parse<I, S>(declared: I) -> Declaration
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut d = Declaration::default();
        for s in declared {
            match s.as_ref().parse::<Grant>() {
                Ok(g) => d.grants.add(g),
                Err(e) => d.unreadable.push((s.as_ref().trim().to_string(), e)),
            }
        }
        d
    }

    /// The declared grant of a capability, if one parses.
    pub fn get(&self, cap: Capability) -> Option<&Grant> {
        self.grants.get(cap)
    }

    /// A declared string for `cap` that does not parse, when no declaration of `cap` parses.
    pub fn unreadable(&self, cap: Capability) -> Option<(&str, &GrantError)> {
        if self.grants.has(cap) {
            return None;
        }
        self.unreadable
            .iter()
            .find(|(s, _)| GrantKind::of(s) == GrantKind::Known(cap))
            .map(|(s, e)| (s.as_str(), e))
    }

    /// Whether `grant` stays inside what was declared ([`Grant::covered_by`]).
    pub fn check(&self, grant: &Grant) -> Result<(), Uncovered> {
        let cap = grant.capability();
        match self.grants.get(cap) {
            Some(d) if grant.covered_by(d) => Ok(()),
            Some(d) => Err(Uncovered::Outside(d.clone())),
            None => match self.unreadable(cap) {
                Some((declared, reason)) => Err(Uncovered::Unreadable {
                    declared: declared.to_string(),
                    reason: reason.clone(),
                }),
                None => Err(Uncovered::NotDeclared),
            },
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

    fn g(s: &str) -> Grant {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn covers(declared: &str, granted: &str) -> bool {
        g(granted).covered_by(&g(declared))
    }

    #[test]
    fn http_grants_are_covered_by_declared_origins_only() {
        let cf = "http:https://api.cloudflare.com";
        assert!(covers(cf, cf));
        assert!(covers(cf, "http:api.cloudflare.com"), "no scheme is https");
        assert!(!covers(cf, "http:https://example.com"));
        assert!(!covers(cf, "http:https://*.evil.com"));
        assert!(!covers(cf, "http:https://*.cloudflare.com"));
        assert!(!covers(cf, "http:http://api.cloudflare.com"), "scheme");
        assert!(!covers(cf, "http:https://api.cloudflare.com:8443"), "port");
        assert!(
            !covers(cf, "http:https://api.cloudflare.com,https://example.com"),
            "every origin must be covered"
        );
        let wild = "http:https://*.example.com,http://127.0.0.1:9000";
        assert!(covers(wild, "http:https://api.example.com"));
        assert!(covers(wild, "http:https://a.b.example.com"));
        assert!(covers(wild, "http:https://*.a.example.com"));
        assert!(covers(
            wild,
            "http:https://*.example.com,http://127.0.0.1:9000"
        ));
        assert!(
            !covers(wild, "http:https://example.com"),
            "not the domain itself"
        );
        assert!(!covers(wild, "http:https://badexample.com"));
        assert!(!covers(wild, "http:http://127.0.0.2:9000"));
        // Not the reverse: an exact declaration does not cover a wildcard under it.
        assert!(!covers(
            "http:https://api.example.com",
            "http:https://*.example.com"
        ));
        assert!(!covers(
            "http:https://*.a.example.com",
            "http:https://*.example.com"
        ));
    }

    #[test]
    fn container_grants_need_declared_groups_and_images() {
        let d = "container:read,lifecycle;images=localhost/busybox:*,alpine";
        assert!(covers(d, "container:read"));
        assert!(covers(
            d,
            "container:read,lifecycle;images=localhost/busybox:test"
        ));
        assert!(covers(
            d,
            "container:lifecycle;images=localhost/busybox:1.*"
        ));
        assert!(covers(d, "container:lifecycle;images=alpine"));
        assert!(!covers(d, "container:any-container"));
        assert!(!covers(d, "container:read,images"));
        assert!(!covers(d, "container:lifecycle;images=nginx:*"));
        assert!(!covers(d, "container:lifecycle;images=localhost/*"));
        assert!(!covers(d, "container:lifecycle;images=*"));
        assert!(
            !covers(d, "container:lifecycle;images=alpine:3.20"),
            "exact is exact"
        );
        assert!(!covers(
            "container:lifecycle",
            "container:lifecycle;images=alpine"
        ));
        assert!(covers(
            "container:read;images=*",
            "container:read;images=any/thing:*"
        ));
        // No tag means :latest, as the host reads it.
        assert!(covers(
            "container:read;images=alpine:latest",
            "container:read;images=alpine"
        ));
        assert!(covers(
            "container:read;images=alpine:*",
            "container:read;images=alpine"
        ));
        assert!(!covers(
            "container:read;images=alpine:*",
            "container:read;images=alpine*"
        ));
    }

    #[test]
    fn state_grants_may_lower_but_not_raise_the_declared_quota() {
        assert!(covers("state:64MiB", "state:64MiB"));
        assert!(covers("state:64MiB", "state:1MiB"));
        assert!(covers("state:64MiB", "state"));
        assert!(!covers("state:1MiB", "state"));
        assert!(
            covers("state", "state:16MiB"),
            "state alone declares 16 MiB"
        );
        assert!(!covers("state", "state:17MiB"));
        assert!(covers("system", "system"));
        assert!(!covers("system", "log"));
        assert!(!covers("state", "http:https://a.org"));
    }

    #[test]
    fn declarations_merge_and_unreadable_ones_cover_nothing() {
        let d = Declaration::parse([
            "http:https://a.org",
            "http:https://b.org",
            "http:*",
            "state:1MiB",
            "container",
            "fs",
        ]);
        assert_eq!(d.check(&g("http:https://a.org,https://b.org")), Ok(()));
        assert_eq!(
            d.check(&g("http:https://c.org")),
            Err(Uncovered::Outside(g("http:https://a.org,https://b.org")))
        );
        assert_eq!(
            d.check(&g("state")),
            Err(Uncovered::Outside(g("state:1MiB")))
        );
        assert!(matches!(
            d.check(&g("container:read")),
            Err(Uncovered::Unreadable { declared, .. }) if declared == "container"
        ));
        assert_eq!(d.check(&g("log")), Err(Uncovered::NotDeclared));
        let only_bad = Declaration::parse(["http:*"]);
        assert!(matches!(
            only_bad.check(&g("http:https://a.org")),
            Err(Uncovered::Unreadable { declared, reason: GrantError::BadOrigin { .. } }) if declared == "http:*"
        ));
    }

    #[test]
    fn granting_a_state_quota_replaces_the_held_one() {
        let mut held =
            Grants::parse(["state", "http:https://a.org"]).unwrap_or_else(|e| panic!("{e}"));
        held.grant(g("state:1MiB"));
        held.grant(g("http:https://b.org"));
        assert_eq!(
            held.to_strings(),
            ["state:1MiB", "http:https://a.org,https://b.org"]
        );
        held.grant(g("state:2MiB"));
        assert_eq!(held.state_quota(), Some(2 << 20));
    }
}
