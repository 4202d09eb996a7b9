//! Trust from the signature to the code that runs: a compile-cache artifact is checked against the digest recorded
//! in index.db before it is loaded (a tampered one is discarded and recompiled, never run), a refused install leaves
//! no artifact behind, and a stored component that fails its digest check shows as `corrupted`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use plughost::gateway::metrics::Metrics;
use plughost::runtime::CacheOutcome;
use plughost::{Home, Host};
use plughost_tests as fx;

struct Cli {
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            home: tempfile::tempdir().expect("home"),
            work: tempfile::tempdir().expect("work"),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_plughost"))
            .args(args)
            .env("PLUGHOST_HOME", self.home.path())
            .env_remove("PLUGHOST_LOG")
            .current_dir(self.work.path())
            .stdin(Stdio::null())
            .output()
            .expect("run plughost")
    }

    fn ok(&self, args: &[&str]) -> Output {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "plughost {args:?} failed ({:?}):\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    fn stdout(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.ok(args).stdout).into_owned()
    }

    /// A trusted key `acme` and `fixture` copied into the work dir and signed with it.
    fn signed(&self, fixture: &str, name: &str) -> String {
        self.ok(&["keys", "generate", "--name", "acme", "--trust"]);
        let to = self.work.path().join(name);
        std::fs::copy(fixture, &to).expect("copy fixture");
        let to = to.to_str().expect("utf-8").to_string();
        self.ok(&["sign", &to, "--key", "acme"]);
        to
    }

    /// Every compiled artifact in the data dir's compile cache.
    fn artifacts(&self) -> Vec<PathBuf> {
        files_under(&self.home.path().join("cache"), "cwasm")
    }

    /// The one compiled artifact in the cache.
    fn artifact(&self) -> PathBuf {
        let a = self.artifacts();
        assert_eq!(a.len(), 1, "one artifact in the cache: {a:?}");
        a.into_iter().next().expect("one")
    }
}

fn files_under(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p, ext));
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
    out
}

/// The file range of the `.text` section (the machine code) of an ELF64 little-endian artifact.
fn text_section(elf: &[u8]) -> std::ops::Range<usize> {
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().expect("2")) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().expect("4")) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().expect("8")) as usize;
    assert_eq!(&elf[..4], b"\x7fELF", "a .cwasm is an ELF file");
    let (shoff, shentsize, shnum, shstrndx) =
        (u64_at(0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    let strtab = u64_at(shoff + shstrndx * shentsize + 24);
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        let name_at = strtab + u32_at(sh);
        let name = &elf[name_at..name_at + 6];
        if name == b".text\0" {
            let (off, size) = (u64_at(sh + 24), u64_at(sh + 32));
            assert!(size > 0, "an empty .text");
            return off..off + size;
        }
    }
    panic!("no .text section in the artifact");
}

#[test]
fn an_artifact_whose_code_is_overwritten_with_traps_is_recompiled_not_run() {
    let cli = Cli::new();
    let wasm = cli.signed(fx::SYSTEM_INFO, "system-info.wasm");
    cli.ok(&["install", &wasm, "--yes"]);
    let artifact = cli.artifact();
    let mut bytes = std::fs::read(&artifact).expect("read artifact");
    let text = text_section(&bytes);
    bytes[text].fill(0xCC);
    std::fs::write(&artifact, &bytes).expect("tamper");

    // Before the check this died of SIGTRAP: the host ran the int3s.
    let o = cli.run(&["call", "system-info", "memory", "--json"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "the call must run, recompiled: {:?}\n{err}",
        o.status
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["report"]["outcome"]["kind"], "ok", "{v}");
    assert!(err.contains("integrity check"), "a warning: {err}");
    assert_ne!(
        std::fs::read(&artifact).expect("read artifact"),
        bytes,
        "the tampered artifact was replaced"
    );
}

#[test]
fn an_artifact_with_one_flipped_byte_is_rejected_warned_and_counted() {
    let cli = Cli::new();
    let wasm = cli.signed(fx::SYSTEM_INFO, "system-info.wasm");
    cli.ok(&["install", &wasm, "--yes"]);
    let artifact = cli.artifact();
    let original = std::fs::read(&artifact).expect("read artifact");
    let mut bytes = original.clone();
    // One byte of the last instruction bytes of .text: the kind of change nothing else notices.
    let text = text_section(&bytes);
    bytes[text.end - 1] ^= 0x01;
    std::fs::write(&artifact, &bytes).expect("tamper");

    // The binary: a warning names the discarded artifact, and the call runs.
    let o = cli.ok(&["call", "system-info", "memory"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("integrity check") && err.contains(artifact.to_str().expect("utf-8")),
        "{err}"
    );
    assert_ne!(std::fs::read(&artifact).expect("read"), bytes);

    // The library and /metrics: the load is counted as `corrupt`, then the rewritten artifact is a plain hit.
    std::fs::write(&artifact, &bytes).expect("tamper again");
    let host = Host::open(&Home::at(cli.home.path())).expect("host");
    let component = std::fs::read(fx::SYSTEM_INFO).expect("fixture");
    let (_, _, first) = host.compile(&component, || {}).expect("compile");
    assert_eq!(first.outcome, CacheOutcome::Rejected);
    let (_, _, second) = host.compile(&component, || {}).expect("compile");
    assert_eq!(second.outcome, CacheOutcome::Hit);
    let text = Metrics::default().prometheus(&host, 0, 0);
    for line in [
        "plughost_compile_cache_total{result=\"corrupt\"} 1",
        "plughost_compile_cache_total{result=\"hit\"} 1",
        "plughost_compile_cache_total{result=\"miss\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
}

#[test]
fn an_artifact_the_index_has_no_digest_for_is_not_loaded() {
    // An artifact planted in the cache (or left by a plughost that recorded nothing) is not trusted.
    let cli = Cli::new();
    let home = Home::at(cli.home.path());
    let component = std::fs::read(fx::SYSTEM_INFO).expect("fixture");
    let host = Host::open(&home).expect("host");
    let (_, _, c) = host.compile(&component, || {}).expect("compile");
    assert_eq!(c.outcome, CacheOutcome::Compiled);
    let artifact = cli.artifact();
    let db = rusqlite::Connection::open(cli.home.path().join("index.db")).expect("index");
    let n = db.execute("DELETE FROM artifacts", []).expect("delete");
    assert_eq!(n, 1, "the artifact's digest was recorded");
    let host = Host::open(&home).expect("host");
    let (_, _, c) = host.compile(&component, || {}).expect("compile");
    assert_eq!(c.outcome, CacheOutcome::Compiled, "not a hit");
    assert!(artifact.exists(), "rewritten, with a digest");
    let (_, _, c) = host.compile(&component, || {}).expect("compile");
    assert_eq!(c.outcome, CacheOutcome::Hit);
}

#[test]
fn a_refused_install_leaves_no_compiled_artifact() {
    let cli = Cli::new();
    let wasm = cli.signed(fx::SYSTEM_INFO, "system-info.wasm");
    // Signing compiled it (to describe it); the install decides whether it stays.
    assert_eq!(cli.artifacts().len(), 1);

    // Not approved (no terminal, no --yes).
    let o = cli.run(&["install", &wasm]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not approved"));
    assert_eq!(cli.artifacts(), Vec::<PathBuf>::new(), "not approved");

    // Approved grants that do not cover what it imports.
    let o = cli.run(&["install", &wasm, "--grant", "log"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nothing was installed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(cli.artifacts(), Vec::<PathBuf>::new(), "grants refused");

    // Installed: the artifact stays; a refused second install of the same component leaves it alone.
    cli.ok(&["install", &wasm, "--yes"]);
    assert_eq!(cli.artifacts().len(), 1);
    let bogus = cli.work.path().join("bogus.sig");
    std::fs::write(&bogus, "not a signature").expect("write");
    let o = cli.run(&["install", &wasm, "--sig", bogus.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(cli.artifacts().len(), 1, "still installed, still cached");
}

#[test]
fn a_stored_component_that_fails_its_digest_is_listed_as_corrupted() {
    let cli = Cli::new();
    let wasm = cli.signed(fx::SYSTEM_INFO, "system-info.wasm");
    cli.ok(&["install", &wasm, "--yes"]);
    let out = cli.stdout(&["list"]);
    assert!(
        out.contains("enabled") && !out.contains("corrupted"),
        "{out}"
    );

    let blobs = files_under(&cli.home.path().join("blobs"), "wasm");
    assert_eq!(blobs.len(), 1, "one stored component: {blobs:?}");
    let blob = &blobs[0];
    let mut bytes = std::fs::read(blob).expect("blob");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(blob, &bytes).expect("corrupt the blob");

    let out = cli.stdout(&["list"]);
    let row = out
        .lines()
        .find(|l| l.starts_with("system-info"))
        .expect("a row");
    assert!(
        row.contains("corrupted") && !row.contains("enabled"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&cli.ok(&["list", "--json"]).stdout).expect("JSON");
    assert_eq!(v[0]["status"], "corrupted", "{v}");

    let out = cli.stdout(&["info", "system-info"]);
    let status = out
        .lines()
        .find(|l| l.starts_with("status"))
        .expect("a status line");
    assert!(status.contains("corrupted"), "{out}");
    let v: serde_json::Value =
        serde_json::from_slice(&cli.ok(&["info", "system-info", "--json"]).stdout).expect("JSON");
    assert_eq!(v["status"], "corrupted", "{v}");
}
