//! Image references as the engine reads them, and the grant's image patterns.
//!
//! Docker completes a short reference before it pulls or runs it: `alpine` is `docker.io/library/alpine:latest`,
//! `user/app` is `docker.io/user/app:latest`, and a first component with a `.` or a `:` (or `localhost`) names a
//! registry. A grant is matched against what the engine will really use, so `images=docker.io/library/*` allows
//! `alpine`, and `images=alpine:*` allows `docker.io/library/alpine:3`.

/// The registry Docker completes a reference without one to.
const DEFAULT_REGISTRY: &str = "docker.io";
/// The namespace of Docker Hub's official images.
const OFFICIAL: &str = "library";

/// Whether a reference's first path component names a registry (Docker's rule).
fn names_registry(component: &str) -> bool {
    component.contains('.') || component.contains(':') || component == "localhost"
}

/// `alpine` → `docker.io/library/alpine:latest`; `user/app@sha256:…` → `docker.io/user/app@sha256:…`;
/// `index.docker.io/x` → `docker.io/x:latest`; references that name a registry keep it. No tag and no digest
/// means `:latest`.
/// An image id (`sha256:…` or 64 hex digits) is not a name and stays as it is.
pub(super) fn canonical(reference: &str) -> String {
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return reference.to_string();
    }
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let (name, tag) = match last.rsplit_once(':') {
        Some((_, t)) => (&name[..name.len() - t.len() - 1], Some(t)),
        None => (name, None),
    };
    let mut full = match name.split_once('/') {
        Some((first, rest)) if names_registry(first) => {
            let registry = if first == "index.docker.io" {
                DEFAULT_REGISTRY
            } else {
                first
            };
            format!("{registry}/{rest}")
        }
        Some(_) => format!("{DEFAULT_REGISTRY}/{name}"),
        None => format!("{DEFAULT_REGISTRY}/{OFFICIAL}/{name}"),
    };
    match (tag, digest) {
        (Some(t), _) => {
            full.push(':');
            full.push_str(t);
        }
        (None, None) => full.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(d) = digest {
        full.push('@');
        full.push_str(d);
    }
    full
}

/// The short form Docker shows for a canonical reference: `docker.io/library/alpine:3` → `alpine:3`,
/// `docker.io/user/app:1` → `user/app:1`. A Hub path whose first component looks like a registry keeps
/// `docker.io/` (shortened, it would name another registry).
pub(super) fn familiar(canonical: &str) -> &str {
    let Some(rest) = canonical.strip_prefix("docker.io/") else {
        return canonical;
    };
    if let Some(official) = rest.strip_prefix("library/")
        && !official
            .split(['@', ':'])
            .next()
            .unwrap_or("")
            .contains('/')
    {
        return official;
    }
    match rest.split_once('/') {
        Some((first, _)) if !names_registry(first) => rest,
        _ => canonical,
    }
}

/// A granted image pattern, split once at its `*`s (which match any run of characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ImagePattern {
    /// The pattern as granted, for messages.
    pub(super) text: String,
    /// The literal pieces between the `*`s; one piece means no `*` (an exact match).
    parts: Vec<String>,
}

impl ImagePattern {
    pub(super) fn new(text: &str) -> Self {
        ImagePattern {
            text: text.to_string(),
            parts: text.split('*').map(str::to_string).collect(),
        }
    }

    /// Whether `reference` — as written, in full (`docker.io/library/alpine:latest`) or in Docker's short form
    /// (`alpine:latest`) — matches this pattern.
    pub(super) fn allows(&self, reference: &str) -> bool {
        let full = canonical(reference);
        self.matches(reference) || self.matches(&full) || self.matches(familiar(&full))
    }

    pub(super) fn matches(&self, text: &str) -> bool {
        let parts = &self.parts;
        if parts.len() == 1 {
            return self.text == text;
        }
        let (first, last) = (&parts[0], &parts[parts.len() - 1]);
        if !text.starts_with(first.as_str())
            || text.len() < first.len() + last.len()
            || !text.ends_with(last.as_str())
        {
            return false;
        }
        let mut rest = &text[first.len()..text.len() - last.len()];
        for mid in &parts[1..parts.len() - 1] {
            match rest.find(mid.as_str()) {
                Some(i) => rest = &rest[i + mid.len()..],
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_completed_the_way_docker_does() {
        let id = "f".repeat(64);
        let cases = [
            ("alpine", "docker.io/library/alpine:latest", "alpine:latest"),
            (
                "alpine:3.20",
                "docker.io/library/alpine:3.20",
                "alpine:3.20",
            ),
            ("user/app", "docker.io/user/app:latest", "user/app:latest"),
            (
                "docker.io/library/alpine:3",
                "docker.io/library/alpine:3",
                "alpine:3",
            ),
            (
                "index.docker.io/user/app:1",
                "docker.io/user/app:1",
                "user/app:1",
            ),
            (
                "localhost/busybox",
                "localhost/busybox:latest",
                "localhost/busybox:latest",
            ),
            (
                "reg.example.com:5000/a/b:2",
                "reg.example.com:5000/a/b:2",
                "reg.example.com:5000/a/b:2",
            ),
            (
                "localhost:5000/x",
                "localhost:5000/x:latest",
                "localhost:5000/x:latest",
            ),
            (
                "alpine@sha256:ab12",
                "docker.io/library/alpine@sha256:ab12",
                "alpine@sha256:ab12",
            ),
            (id.as_str(), id.as_str(), id.as_str()),
            (
                "docker.io/localhost/busybox:test",
                "docker.io/localhost/busybox:test",
                "docker.io/localhost/busybox:test",
            ),
        ];
        for (given, full, short) in cases {
            assert_eq!(canonical(given), full, "{given}");
            assert_eq!(familiar(&canonical(given)), short, "{given}");
        }
    }

    #[test]
    fn patterns_match_any_spelling_of_the_same_image() {
        let hub = ImagePattern::new("docker.io/library/*");
        assert!(hub.allows("alpine"), "a short name is a Hub official image");
        assert!(hub.allows("alpine:3.20"));
        assert!(!hub.allows("user/app"), "not an official image");
        assert!(!hub.allows("localhost/alpine"));
        let short = ImagePattern::new("alpine:*");
        assert!(short.allows("docker.io/library/alpine:3"));
        assert!(short.allows("alpine"), "no tag means :latest");
        assert!(!short.allows("evil.example.com/alpine:3"));
        let local = ImagePattern::new("localhost/busybox:*");
        assert!(!local.allows("docker.io/localhost/busybox:test"));
    }
}
