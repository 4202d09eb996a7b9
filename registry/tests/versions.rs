//! A plugin's identity across versions: pinned to its publisher, never silently older, and rollback as a stack.
//! Component bytes are opaque here (the host's tests install real components).

use plughost_registry::{
    InstallRequest, KeyPair, Provenance, Registry, RegistryError, SignatureFile, UpgradePolicy,
};

fn component(tag: &str) -> Vec<u8> {
    format!("\0asm\x0d\0\x01\0 component {tag}").into_bytes()
}

struct Fixture {
    _dir: tempfile::TempDir,
    reg: Registry,
    acme: KeyPair,
    other: KeyPair,
}

/// A registry trusting two publishers, `acme` and `other`.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::open(dir.path()).expect("open");
    let acme = KeyPair::generate("acme").expect("key");
    let other = KeyPair::generate("other").expect("key");
    reg.trust(&acme.public()).expect("trust");
    reg.trust(&other.public()).expect("trust");
    Fixture {
        _dir: dir,
        reg,
        acme,
        other,
    }
}

fn signed(reg: &Registry, key: &KeyPair, bytes: &[u8], version: &str) -> Provenance {
    let sig = SignatureFile::sign(key, bytes, "alpha", version, vec!["state".into()]);
    let sig = SignatureFile::parse(&sig.to_json()).expect("parse");
    Provenance::Signed(reg.verify(bytes, &sig).expect("verify"))
}

fn request<'a>(provenance: Provenance, bytes: &'a [u8], version: &'a str) -> InstallRequest<'a> {
    InstallRequest {
        provenance,
        bytes,
        plugin: "alpha",
        version,
        manifest_json: "{}".into(),
        imports: vec!["state".into()],
        grants: vec!["state".into()],
        source: None,
    }
}

impl Fixture {
    /// `version` of `alpha`, signed by acme, as bytes unique to the version.
    fn by_acme(&self, version: &str) -> (Vec<u8>, Provenance) {
        let bytes = component(version);
        let p = signed(&self.reg, &self.acme, &bytes, version);
        (bytes, p)
    }

    fn install(&self, version: &str) {
        let (bytes, p) = self.by_acme(version);
        self.reg
            .install(request(p, &bytes, version))
            .expect("install");
    }

    fn upgrade(&self, version: &str) {
        let (bytes, p) = self.by_acme(version);
        let r = self
            .reg
            .upgrade(request(p, &bytes, version))
            .expect("upgrade");
        assert_eq!(r.version, version);
    }

    fn rollback(&self) -> Result<String, RegistryError> {
        self.reg.rollback("alpha").map(|r| r.version)
    }

    fn version(&self) -> String {
        self.reg.plugin("alpha").expect("plugin").version
    }

    fn actions(&self) -> Vec<String> {
        self.reg
            .history(Some("alpha"), 100)
            .expect("history")
            .into_iter()
            .map(|h| h.action)
            .collect()
    }
}

#[test]
fn rollback_pops_to_the_version_that_was_current_before() {
    let f = fixture();
    f.install("0.1.0");
    f.upgrade("0.2.0");
    assert_eq!(f.rollback().expect("rollback"), "0.1.0");
    f.upgrade("0.3.0");
    // 0.3.0 replaced 0.1.0, not 0.2.0 (0.2.0 was rolled back, i.e. popped).
    assert_eq!(f.rollback().expect("rollback"), "0.1.0");
    // Nothing was current before 0.1.0: an error, and nothing changes.
    let gen0 = f.reg.generation().expect("gen");
    let e = f.rollback().expect_err("nothing to roll back to");
    assert!(matches!(e, RegistryError::NoEarlierVersion(_)), "{e}");
    assert_eq!(f.version(), "0.1.0");
    assert_eq!(f.reg.generation().expect("gen"), gen0);
}

#[test]
fn rollback_never_reports_a_version_rolled_back_to_itself() {
    let f = fixture();
    f.install("0.1.0");
    f.upgrade("0.2.0");
    f.upgrade("0.3.0");
    assert_eq!(f.rollback().expect("rollback"), "0.2.0");
    // 0.3.0 again (same bytes): it replaces 0.2.0, so rolling back goes to 0.2.0, not to the old 0.3.0 row.
    f.upgrade("0.3.0");
    assert_eq!(f.rollback().expect("rollback"), "0.2.0");
    assert_eq!(f.rollback().expect("rollback"), "0.1.0");
    assert!(matches!(
        f.rollback(),
        Err(RegistryError::NoEarlierVersion(_))
    ));
}

#[test]
fn an_upgrade_from_another_publisher_is_refused_unless_allowed_and_recorded() {
    let f = fixture();
    f.install("0.1.0");
    let bytes = component("0.2.0");
    let by_other = signed(&f.reg, &f.other, &bytes, "0.2.0");
    let gen0 = f.reg.generation().expect("gen");
    let e = f
        .reg
        .upgrade(request(by_other.clone(), &bytes, "0.2.0"))
        .expect_err("another publisher");
    match &e {
        RegistryError::PublisherChanged { old, new, .. } => {
            assert!(old.starts_with("acme "), "{e}");
            assert!(new.starts_with("other "), "{e}");
        }
        _ => panic!("expected PublisherChanged, got {e}"),
    }
    assert!(e.to_string().contains("--allow-publisher-change"), "{e}");
    assert_eq!(f.version(), "0.1.0");
    assert_eq!(f.reg.generation().expect("gen"), gen0);

    // Unsigned code is a change of publisher too.
    let unsigned = Provenance::unsigned(&bytes);
    let e = f
        .reg
        .upgrade(request(unsigned, &bytes, "0.2.0"))
        .expect_err("unsigned");
    assert!(
        matches!(&e, RegistryError::PublisherChanged { new, .. } if new == "unsigned"),
        "{e}"
    );

    let policy = UpgradePolicy {
        allow_publisher_change: true,
        ..UpgradePolicy::default()
    };
    let r = f
        .reg
        .upgrade_with(request(by_other, &bytes, "0.2.0"), policy)
        .expect("allowed");
    assert_eq!(r.publisher.expect("signed").name, "other");
    let h = f.reg.history(Some("alpha"), 1).expect("history");
    assert_eq!(h[0].action, "publisher-change");
    assert!(
        h[0].detail.contains("acme") && h[0].detail.contains("other"),
        "{}",
        h[0].detail
    );
}

#[test]
fn a_signed_upgrade_of_an_unsigned_plugin_is_a_change_of_publisher() {
    let f = fixture();
    let v1 = component("0.1.0");
    f.reg
        .install(request(Provenance::unsigned(&v1), &v1, "0.1.0"))
        .expect("install unsigned");
    let (bytes, p) = f.by_acme("0.2.0");
    let e = f
        .reg
        .upgrade(request(p, &bytes, "0.2.0"))
        .expect_err("signed now");
    assert!(
        matches!(&e, RegistryError::PublisherChanged { old, .. } if old == "unsigned"),
        "{e}"
    );
    assert_eq!(f.version(), "0.1.0");
}

#[test]
fn an_older_or_incomparable_version_is_refused_unless_allowed() {
    let f = fixture();
    f.install("0.9.0");
    // Newer by semver, though older as a string.
    f.upgrade("0.10.0");
    let gen0 = f.reg.generation().expect("gen");
    for older in ["0.9.5", "0.10.0-rc.1", "nightly"] {
        let (bytes, p) = f.by_acme(older);
        let e = f
            .reg
            .upgrade(request(p, &bytes, older))
            .expect_err("downgrade");
        assert!(matches!(e, RegistryError::Downgrade { .. }), "{older}: {e}");
        assert!(e.to_string().contains("--allow-downgrade"), "{e}");
    }
    assert_eq!(f.version(), "0.10.0");
    assert_eq!(f.reg.generation().expect("gen"), gen0);

    let (bytes, p) = f.by_acme("0.9.5");
    let policy = UpgradePolicy {
        allow_downgrade: true,
        ..UpgradePolicy::default()
    };
    f.reg
        .upgrade_with(request(p, &bytes, "0.9.5"), policy)
        .expect("allowed");
    assert_eq!(f.version(), "0.9.5");
    assert_eq!(f.actions()[..3], ["downgrade", "upgrade", "upgrade"]);
}

#[test]
fn an_index_from_before_the_rollback_stack_rolls_back_in_install_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let reg = Registry::open(dir.path()).expect("open");
        let acme = KeyPair::generate("acme").expect("key");
        reg.trust(&acme.public()).expect("trust");
        for (i, v) in ["0.1.0", "0.2.0", "0.3.0"].into_iter().enumerate() {
            let bytes = component(v);
            let req = request(signed(&reg, &acme, &bytes, v), &bytes, v);
            if i == 0 {
                reg.install(req).expect("install");
            } else {
                reg.upgrade(req).expect("upgrade");
            }
        }
    }
    // Make it the schema of the first release (no `previous_seq`, nor the later `artifacts` and `tokens` tables,
    // source columns and history hashes).
    let conn = rusqlite::Connection::open(dir.path().join("index.db")).expect("sqlite");
    conn.execute_batch(
        "ALTER TABLE versions DROP COLUMN source; ALTER TABLE versions DROP COLUMN manifest_digest; \
         ALTER TABLE versions DROP COLUMN previous_seq; DROP TABLE artifacts; DROP TABLE tokens; \
         ALTER TABLE history DROP COLUMN hash; PRAGMA user_version = 1;",
    )
        .expect("downgrade the schema");
    drop(conn);

    let reg = Registry::open(dir.path()).expect("migrate");
    // The history written before the audit chain is sealed by the migration: it verifies, and grows from there.
    assert_eq!(reg.verify_audit().expect("sealed").entries, 4);
    assert_eq!(reg.rollback("alpha").expect("rollback").version, "0.2.0");
    assert_eq!(reg.rollback("alpha").expect("rollback").version, "0.1.0");
    assert!(matches!(
        reg.rollback("alpha"),
        Err(RegistryError::NoEarlierVersion(_))
    ));
    assert_eq!(reg.verify_audit().expect("chained").entries, 6);
}
