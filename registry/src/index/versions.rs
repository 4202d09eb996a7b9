//! What an upgrade may change about a plugin's identity: its publisher (pinned at first install) and its version
//! (never silently older). [`UpgradeCheck`] says what changes; [`UpgradePolicy`] says what the operator allowed.

use std::cmp::Ordering;

use serde::Serialize;

use crate::PluginRecord;
use crate::error::{RegistryError, Result};
use crate::trust::Provenance;

/// What the operator allowed an upgrade to change. The default allows nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpgradePolicy {
    /// `--allow-publisher-change`: the new version may be signed by another key than the installed one (or be
    /// unsigned where it was signed, or signed where it was unsigned).
    pub allow_publisher_change: bool,
    /// `--allow-downgrade`: the new version may be older than the installed one (or not comparable with it).
    pub allow_downgrade: bool,
}

/// Who signed a version, as a plugin is pinned to it: a key fingerprint, or nobody.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublisherPin {
    /// `None`: unsigned.
    pub fingerprint: Option<String>,
    /// The key's name in the trust store, for display.
    pub name: Option<String>,
}

impl PublisherPin {
    pub fn of_record(r: &PluginRecord) -> PublisherPin {
        PublisherPin {
            fingerprint: r.publisher.as_ref().map(|p| p.fingerprint.clone()),
            name: r.publisher.as_ref().map(|p| p.name.clone()),
        }
    }

    pub fn of_provenance(p: &Provenance) -> PublisherPin {
        match p {
            Provenance::Signed(v) => PublisherPin {
                fingerprint: Some(v.signer().fingerprint.clone()),
                name: Some(v.signer().name.clone()),
            },
            Provenance::Unsigned { .. } => PublisherPin {
                fingerprint: None,
                name: None,
            },
        }
    }
}

impl std::fmt::Display for PublisherPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.name, &self.fingerprint) {
            (Some(n), Some(fp)) => write!(f, "{n} {fp}"),
            (None, Some(fp)) => write!(f, "{fp}"),
            _ => write!(f, "unsigned"),
        }
    }
}

/// How a new version compares with the installed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionChange {
    Newer,
    Same,
    Older,
    /// At least one side is not a semantic version, and they differ.
    Incomparable,
}

/// Compares two version strings as semantic versions; strings that are not semver compare only as equal or not.
pub fn compare_versions(installed: &str, new: &str) -> VersionChange {
    match (
        semver::Version::parse(installed.trim()),
        semver::Version::parse(new.trim()),
    ) {
        (Ok(a), Ok(b)) => match b.cmp(&a) {
            Ordering::Greater => VersionChange::Newer,
            Ordering::Equal => VersionChange::Same,
            Ordering::Less => VersionChange::Older,
        },
        _ if installed == new => VersionChange::Same,
        _ => VersionChange::Incomparable,
    }
}

/// What an upgrade changes about a plugin's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpgradeCheck {
    pub from_version: String,
    pub to_version: String,
    pub version_change: VersionChange,
    pub old_publisher: PublisherPin,
    pub new_publisher: PublisherPin,
}

impl UpgradeCheck {
    /// What upgrading `current` to a component from `provenance` claiming `version` changes.
    pub fn new(current: &PluginRecord, provenance: &Provenance, version: &str) -> UpgradeCheck {
        UpgradeCheck {
            from_version: current.version.clone(),
            to_version: version.to_string(),
            version_change: compare_versions(&current.version, version),
            old_publisher: PublisherPin::of_record(current),
            new_publisher: PublisherPin::of_provenance(provenance),
        }
    }

    pub fn publisher_changes(&self) -> bool {
        self.old_publisher.fingerprint != self.new_publisher.fingerprint
    }

    pub fn is_downgrade(&self) -> bool {
        matches!(
            self.version_change,
            VersionChange::Older | VersionChange::Incomparable
        )
    }

    /// Refuses what `policy` does not allow: a change of publisher, an older (or incomparable) version.
    pub fn enforce(&self, id: &str, policy: UpgradePolicy) -> Result<()> {
        if self.publisher_changes() && !policy.allow_publisher_change {
            return Err(RegistryError::PublisherChanged {
                id: id.to_string(),
                old: self.old_publisher.to_string(),
                new: self.new_publisher.to_string(),
            });
        }
        if self.is_downgrade() && !policy.allow_downgrade {
            return Err(RegistryError::Downgrade {
                id: id.to_string(),
                from: self.from_version.clone(),
                to: self.to_version.clone(),
                why: if self.version_change == VersionChange::Older {
                    "is older than"
                } else {
                    "cannot be compared (not semver) with"
                },
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_orders_and_non_semver_compares_only_equal() {
        assert_eq!(compare_versions("0.2.0", "0.10.0"), VersionChange::Newer);
        assert_eq!(compare_versions("0.10.0", "0.2.0"), VersionChange::Older);
        assert_eq!(
            compare_versions("1.0.0", "1.0.0-rc.1"),
            VersionChange::Older
        );
        assert_eq!(compare_versions("1.0.0", "1.0.0"), VersionChange::Same);
        assert_eq!(compare_versions("nightly", "nightly"), VersionChange::Same);
        assert_eq!(
            compare_versions("nightly", "1.0.0"),
            VersionChange::Incomparable
        );
        assert_eq!(
            compare_versions("1.0", "1.0.1"),
            VersionChange::Incomparable
        );
    }
}
