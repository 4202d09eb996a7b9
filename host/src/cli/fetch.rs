//! Where `install` and `upgrade` get a component from: a local file (and FILE.sig beside it), or an OCI reference
//! (the component and the signature made for its manifest). Whatever the source, the result goes through the same
//! verify-before-write path in `publish.rs`; nothing here writes anything.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use plughost::Home;
use plughost::distribution::{CredentialsStore, OciClient, Options, oci};
use plughost::registry::Source;
use plughost::units::{parse_bytes, parse_duration};

/// How to reach a registry (`oci://…` sources and `push`).
#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Reach the registry over plain http. Only allowed for a loopback registry (127.0.0.1, ::1, localhost).
    #[arg(long)]
    pub insecure: bool,
    /// Connect and read timeout: a registry silent this long fails the command.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub timeout: String,
    /// The largest component pulled (checked against the manifest before the download).
    #[arg(long, default_value = "256MiB", value_name = "SIZE")]
    pub max_size: String,
}

impl RegistryArgs {
    pub fn options(&self) -> Result<Options> {
        Ok(Options {
            insecure: self.insecure,
            timeout: parse_duration(&self.timeout).context("--timeout")?,
            max_size: parse_bytes(&self.max_size).context("--max-size")?,
            progress: std::io::stderr().is_terminal(),
        })
    }

    /// A client for `reference`'s registry with the credentials kept for it (data dir, else Docker's config).
    pub fn client(&self, home: &Home, reference: &oci_client::Reference) -> Result<OciClient> {
        let creds = CredentialsStore::at(home.root()).lookup(reference.resolve_registry())?;
        Ok(OciClient::new(reference, creds, self.options()?)?)
    }
}

/// A component fetched for install, not yet verified.
pub struct Fetched {
    /// How the source is named in messages.
    pub label: String,
    pub bytes: Vec<u8>,
    /// The signature's JSON and where it came from, when there is one.
    pub signature: Option<(String, String)>,
    /// What the index records for a fetched source (`None` for a local file).
    pub source: Option<Source>,
    /// Where a missing signature was looked for (for the "not signed" message).
    pub sig_hint: String,
}

pub fn is_oci(source: &str) -> bool {
    source.starts_with("oci://")
}

/// Reads the component and its signature from `source`.
pub async fn fetch(
    home: &Home,
    source: &str,
    sig: Option<&Path>,
    registry: &RegistryArgs,
) -> Result<Fetched> {
    if is_oci(source) {
        if sig.is_some() {
            anyhow::bail!(
                "--sig is for a local file: an OCI component's signature is the one pushed for its manifest"
            );
        }
        let reference = oci::parse_reference(source)?;
        let client = registry.client(home, &reference)?;
        let started = std::time::Instant::now();
        let pulled = client.pull(&reference).await?;
        eprintln!(
            "pulled {source} ({}) in {:.1}s",
            plughost::units::human_bytes(pulled.bytes.len() as u64),
            started.elapsed().as_secs_f64()
        );
        let sig_tag = oci::signature_tag(&pulled.manifest_digest);
        return Ok(Fetched {
            label: source.to_string(),
            bytes: pulled.bytes,
            signature: pulled
                .signature
                .map(|s| (s, format!("{source} (signature tag {sig_tag})"))),
            source: Some(Source {
                reference: source.to_string(),
                manifest_digest: Some(pulled.manifest_digest),
            }),
            sig_hint: format!("no signature artifact tagged {sig_tag} in the repository"),
        });
    }
    let file = PathBuf::from(source);
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let sig_file = sig
        .map(Path::to_path_buf)
        .unwrap_or_else(|| sig_path(&file));
    let signature = if sig_file.exists() {
        let text = std::fs::read_to_string(&sig_file)
            .with_context(|| format!("cannot read {}", sig_file.display()))?;
        Some((text, sig_file.display().to_string()))
    } else {
        None
    };
    Ok(Fetched {
        label: file.display().to_string(),
        bytes,
        signature,
        source: None,
        sig_hint: format!(
            "no {}. Sign it with `plughost sign {} --key <name>`",
            sig_file.display(),
            file.display()
        ),
    })
}

pub fn sig_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}
