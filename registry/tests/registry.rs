//! The registry with real files: a real SQLite index, real blobs, real ed25519 keys. Component bytes are opaque
//! here (the host's tests install real components).

use plughost_registry::{
    InstallRequest, KeyPair, PluginLimits, Provenance, Registry, RegistryError, SignatureFile,
    capability_diff,
};

fn component(tag: &str) -> Vec<u8> {
    format!("\0asm\x0d\0\x01\0 component {tag}").into_bytes()
}

struct Fixture {
    _dir: tempfile::TempDir,
    reg: Registry,
    key: KeyPair,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let reg = Registry::open(dir.path()).expect("open");
    let key = KeyPair::generate("acme").expect("key");
    reg.trust(&key.public()).expect("trust");
    Fixture {
        _dir: dir,
        reg,
        key,
    }
}

fn signed(
    reg: &Registry,
    key: &KeyPair,
    bytes: &[u8],
    id: &str,
    version: &str,
    caps: &[&str],
) -> Result<Provenance, RegistryError> {
    let sig = SignatureFile::sign(
        key,
        bytes,
        id,
        version,
        caps.iter().map(|s| s.to_string()).collect(),
    );
    let sig = SignatureFile::parse(&sig.to_json())?;
    Ok(Provenance::Signed(reg.verify(bytes, &sig)?))
}

fn request<'a>(
    provenance: Provenance,
    bytes: &'a [u8],
    id: &'a str,
    version: &'a str,
    grants: &[&str],
) -> InstallRequest<'a> {
    InstallRequest {
        provenance,
        bytes,
        plugin: id,
        version,
        manifest_json: "{}".into(),
        imports: vec![],
        grants: grants.iter().map(|s| s.to_string()).collect(),
        source: None,
    }
}

#[test]
fn signed_install_is_listed_with_its_publisher_and_grants() {
    let f = fixture();
    let bytes = component("a");
    let p = signed(&f.reg, &f.key, &bytes, "alpha", "1.0.0", &["system"]).expect("verify");
    let rec = f
        .reg
        .install(request(p, &bytes, "alpha", "1.0.0", &["system"]))
        .expect("install");
    assert_eq!(rec.version, "1.0.0");
    assert_eq!(rec.grants, vec!["system"]);
    assert!(rec.enabled && !rec.unsigned);
    assert_eq!(
        rec.publisher.as_ref().map(|p| p.name.as_str()),
        Some("acme")
    );
    let run = f.reg.runnable("alpha").expect("runnable");
    assert_eq!(run.bytes, bytes);
    assert_eq!(f.reg.list().expect("list").len(), 1);
}

#[test]
fn every_signature_refusal_names_its_cause_and_writes_nothing() {
    let f = fixture();
    let bytes = component("a");
    let gen0 = f.reg.generation().expect("gen");

    // Untrusted key.
    let stranger = KeyPair::generate("stranger").expect("key");
    let e = signed(&f.reg, &stranger, &bytes, "alpha", "1.0.0", &[]).expect_err("untrusted");
    assert!(
        matches!(e, RegistryError::UntrustedKey { ref name, .. } if name == "stranger"),
        "{e}"
    );
    assert!(e.to_string().contains("keys trust"), "{e}");

    // One flipped byte.
    let sig = SignatureFile::sign(&f.key, &bytes, "alpha", "1.0.0", vec![]);
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    let e = f.reg.verify(&flipped, &sig).expect_err("flipped");
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{e}");

    // The signature of another component.
    let other = component("b");
    let e = f.reg.verify(&other, &sig).expect_err("other component");
    assert!(e.to_string().contains("signed for alpha 1.0.0"), "{e}");

    // A statement that does not match what the component says it is.
    let p = signed(&f.reg, &f.key, &bytes, "alpha", "1.0.0", &[]).expect("verify");
    let e = f
        .reg
        .install(request(p, &bytes, "alpha", "2.0.0", &[]))
        .expect_err("version mismatch");
    assert!(matches!(e, RegistryError::StatementMismatch(_)), "{e}");

    // A grant for a capability the publisher did not declare.
    let p = signed(&f.reg, &f.key, &bytes, "alpha", "1.0.0", &["system"]).expect("verify");
    let e = f
        .reg
        .install(request(
            p,
            &bytes,
            "alpha",
            "1.0.0",
            &["http:https://x.example"],
        ))
        .expect_err("undeclared");
    assert!(matches!(e, RegistryError::Undeclared { .. }), "{e}");

    assert!(f.reg.list().expect("list").is_empty());
    assert_eq!(f.reg.generation().expect("gen"), gen0);
}

#[test]
fn revoking_a_key_disables_its_plugins_and_refuses_new_ones() {
    let f = fixture();
    let bytes = component("a");
    let p = signed(&f.reg, &f.key, &bytes, "alpha", "1.0.0", &[]).expect("verify");
    f.reg
        .install(request(p, &bytes, "alpha", "1.0.0", &[]))
        .expect("install");
    let disabled = f.reg.revoke_key("acme").expect("revoke");
    assert_eq!(disabled, vec!["alpha"]);
    let rec = f.reg.plugin("alpha").expect("plugin");
    assert!(!rec.enabled);
    assert!(
        rec.disabled_reason
            .as_deref()
            .unwrap_or("")
            .contains("revoked")
    );
    let e = signed(&f.reg, &f.key, &component("c"), "gamma", "1.0.0", &[]).expect_err("revoked");
    assert!(matches!(e, RegistryError::RevokedKey { .. }), "{e}");
    assert!(matches!(
        f.reg.set_enabled("alpha", true),
        Err(RegistryError::RevokedKey { .. })
    ));
}

#[test]
fn unsigned_install_is_explicit_and_recorded() {
    let f = fixture();
    let bytes = component("u");
    let mut req = request(
        Provenance::unsigned(&bytes),
        &bytes,
        "loose",
        "0.1.0",
        &["state"],
    );
    req.imports = vec!["state".into()];
    let rec = f.reg.install(req).expect("install");
    assert!(rec.unsigned && rec.publisher.is_none());
    let hist = f.reg.history(Some("loose"), 10).expect("history");
    assert_eq!(hist[0].action, "install-unsigned");
}

#[test]
fn upgrade_diff_and_rollback_restore_digest_and_grants() {
    let f = fixture();
    let v1 = component("v1");
    let p = signed(&f.reg, &f.key, &v1, "alpha", "1.0.0", &["system"]).expect("verify");
    let r1 = f
        .reg
        .install(request(p, &v1, "alpha", "1.0.0", &["system"]))
        .expect("install");

    let v2 = component("v2");
    let p = signed(&f.reg, &f.key, &v2, "alpha", "1.1.0", &["system", "state"]).expect("verify");
    let (added, removed) = capability_diff(&r1.declared, p_statement_caps(&p));
    assert_eq!(added, vec!["state"]);
    assert!(removed.is_empty());
    let r2 = f
        .reg
        .upgrade(request(p, &v2, "alpha", "1.1.0", &["system", "state"]))
        .expect("upgrade");
    assert_eq!(r2.version, "1.1.0");
    assert_eq!(f.reg.versions("alpha").expect("versions").len(), 2);

    // Same digest again is refused.
    let p = signed(&f.reg, &f.key, &v2, "alpha", "1.1.0", &["system", "state"]).expect("verify");
    assert!(matches!(
        f.reg.upgrade(request(p, &v2, "alpha", "1.1.0", &[])),
        Err(RegistryError::SameVersion { .. })
    ));

    let back = f.reg.rollback("alpha").expect("rollback");
    assert_eq!(back.digest, r1.digest);
    assert_eq!(back.grants, vec!["system"]);
    assert_eq!(f.reg.runnable("alpha").expect("run").bytes, v1);
    assert!(matches!(
        f.reg.rollback("alpha"),
        Err(RegistryError::NoEarlierVersion(_))
    ));
}

fn p_statement_caps(p: &Provenance) -> &[String] {
    match p {
        Provenance::Signed(v) => &v.statement().capabilities,
        Provenance::Unsigned { .. } => &[],
    }
}

#[test]
fn grants_limits_and_config_change_the_generation_and_secrets_are_not_listed() {
    let f = fixture();
    let bytes = component("a");
    let p = signed(
        &f.reg,
        &f.key,
        &bytes,
        "alpha",
        "1.0.0",
        &["system", "config"],
    )
    .expect("v");
    f.reg
        .install(request(p, &bytes, "alpha", "1.0.0", &["system"]))
        .expect("install");
    let g0 = f.reg.generation().expect("gen");
    let rec = f
        .reg
        .set_grants("alpha", &["system".into(), "config".into()])
        .expect("grant");
    assert_eq!(rec.grants, vec!["system", "config"]);
    assert!(matches!(
        f.reg.set_grants("alpha", &["state".into()]),
        Err(RegistryError::Undeclared { .. })
    ));
    f.reg
        .set_limits(
            "alpha",
            PluginLimits {
                fuel: Some(5_000_000),
                concurrency: Some(4),
                ..Default::default()
            },
        )
        .expect("limits");
    f.reg
        .set_config("alpha", "api_token", "s3cret", true)
        .expect("secret");
    f.reg
        .set_config("alpha", "zone", "example.com", false)
        .expect("config");
    assert!(f.reg.generation().expect("gen") >= g0 + 4);
    let listed = f.reg.config("alpha").expect("config");
    assert_eq!(listed.len(), 2);
    let token = listed.iter().find(|c| c.key == "api_token").expect("token");
    assert!(token.secret && token.value.is_none());
    let run = f.reg.runnable("alpha").expect("runnable");
    assert_eq!(
        run.secrets.get("api_token").map(String::as_str),
        Some("s3cret")
    );
    assert_eq!(
        run.config.get("zone").map(String::as_str),
        Some("example.com")
    );
    assert_eq!(run.record.limits.fuel, Some(5_000_000));
}

#[test]
fn index_is_0600_and_a_corrupted_index_or_blob_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let reg = Registry::open(dir.path()).expect("open");
        let bytes = component("a");
        let mut req = request(Provenance::unsigned(&bytes), &bytes, "alpha", "1.0.0", &[]);
        req.imports = vec![];
        let rec = reg.install(req).expect("install");
        let mode = std::fs::metadata(dir.path().join("index.db"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        // Corrupt the blob: detected when the loader asks for it.
        let digest = plughost_registry::Digest::parse(&rec.digest).expect("digest");
        let path = plughost_registry::BlobStore::open(dir.path().join("blobs"))
            .expect("blobs")
            .path(&digest);
        let mut b = std::fs::read(&path).expect("read");
        b[0] ^= 0xff;
        std::fs::write(&path, b).expect("write");
        let e = reg.runnable("alpha").expect_err("corrupt blob");
        assert!(matches!(e, RegistryError::BlobCorrupt { .. }), "{e}");
    }
    // Corrupt the index file itself.
    let db = dir.path().join("index.db");
    let _ = std::fs::remove_file(dir.path().join("index.db-wal"));
    let _ = std::fs::remove_file(dir.path().join("index.db-shm"));
    std::fs::write(
        &db,
        b"this is not a database, it is a sentence of garbage...............",
    )
    .expect("garbage");
    let e = Registry::open(dir.path()).expect_err("corrupt index");
    assert!(matches!(e, RegistryError::IndexCorrupt { .. }), "{e}");
}

#[test]
fn a_crash_between_blob_and_index_leaves_nothing_half_installed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = component("a");
    {
        // Step one of an install, then "crash": the blob is written, the index never hears of it. A temp file from
        // an interrupted blob write is also left behind.
        let blobs = plughost_registry::BlobStore::open(dir.path().join("blobs")).expect("blobs");
        let d = blobs.put(&bytes).expect("put");
        let tmp = blobs.path(&d).with_file_name(".half-written.wasm.1234.tmp");
        std::fs::write(&tmp, b"partial").expect("tmp");
        // Left by a crash a while ago (a fresh temp file may belong to a writer in progress and is kept).
        let old = std::time::SystemTime::now() - plughost_registry::blobs::STALE_TEMP * 2;
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .and_then(|f| f.set_modified(old))
            .expect("backdate");
    }
    let reg = Registry::open(dir.path()).expect("open");
    assert!(reg.list().expect("list").is_empty());
    assert!(matches!(
        reg.plugin("alpha"),
        Err(RegistryError::NotInstalled(_))
    ));
    // The leftover temp file is cleaned; installing again works.
    let leftovers: Vec<_> = walk(&dir.path().join("blobs"))
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let req = request(Provenance::unsigned(&bytes), &bytes, "alpha", "1.0.0", &[]);
    reg.install(req).expect("install after crash");
    assert_eq!(reg.runnable("alpha").expect("run").bytes, bytes);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn concurrent_installs_from_two_handles_both_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = KeyPair::generate("acme").expect("key");
    Registry::open(dir.path())
        .expect("open")
        .trust(&key.public())
        .expect("trust");
    let handles: Vec<_> = ["alpha", "beta"]
        .into_iter()
        .map(|id| {
            let path = dir.path().to_path_buf();
            let seed = KeyPair::read_secret(&{
                let p = path.join(format!("{id}.key"));
                key.write_secret(&p).expect("write key");
                p
            })
            .expect("read");
            std::thread::spawn(move || {
                let reg = Registry::open(&path).expect("open");
                let bytes = component(id);
                for _ in 0..20 {
                    let _ = reg.generation();
                }
                let p = signed(&reg, &seed, &bytes, id, "1.0.0", &[]).expect("verify");
                reg.install(request(p, &bytes, id, "1.0.0", &[]))
                    .expect("install")
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    let reg = Registry::open(dir.path()).expect("open");
    let ids: Vec<String> = reg
        .list()
        .expect("list")
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, vec!["alpha", "beta"]);
}

#[test]
fn remove_deletes_the_plugin_and_its_unshared_blobs() {
    let f = fixture();
    let bytes = component("a");
    let p = signed(&f.reg, &f.key, &bytes, "alpha", "1.0.0", &[]).expect("verify");
    let rec = f
        .reg
        .install(request(p, &bytes, "alpha", "1.0.0", &[]))
        .expect("install");
    f.reg.remove("alpha").expect("remove");
    assert!(f.reg.list().expect("list").is_empty());
    let digest = plughost_registry::Digest::parse(&rec.digest).expect("digest");
    let path = plughost_registry::BlobStore::open(f.reg.root().join("blobs"))
        .expect("blobs")
        .path(&digest);
    assert!(!path.exists());
    assert!(matches!(
        f.reg.remove("alpha"),
        Err(RegistryError::NotInstalled(_))
    ));
}
