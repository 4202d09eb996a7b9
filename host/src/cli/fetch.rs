//! Where `install` and `upgrade` get a component from: a local file (and FILE.sig beside it), an OCI reference
//! (the component and the signature made for its manifest), or an https URL (and URL.sig beside it). Whatever the source, the result goes through the same
//! verify-before-write path in `publish.rs`; nothing here writes anything.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use plughost::Home;
use plughost::distribution::{CredentialsStore, OciClient, Options, UrlFetcher, oci, url};
use plughost::registry::Source;
use plughost::units::{parse_bytes, parse_duration};

/// How to reach a registry (`oci://…` sources and `push`).
#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Reach the registry over plain http. Only allowed for a loopback registry (127.0.0.1, ::1, localhost).
    #[arg(long)]
    pub insecure: bool,
    /// Reach this registry (HOST[:PORT], as in its references) over plain http, loopback or not (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
    /// Connect and read timeout: a registry silent this long fails the command.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub timeout: String,
    /// The largest component pulled (checked against the manifest before the download).
    #[arg(long, default_value = "256MiB", value_name = "SIZE")]
    pub max_size: String,
    /// Also trust the CA certificates in this PEM file (a private CA) for registries and https URLs.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

impl RegistryArgs {
    pub fn options(&self) -> Result<Options> {
        Ok(Options {
            insecure: self.insecure,
            insecure_registries: self.insecure_registries.clone(),
            timeout: parse_duration(&self.timeout).context("--timeout")?,
            max_size: parse_bytes(&self.max_size).context("--max-size")?,
            // A bar on a terminal, a line at the start and the end off one (plughost::progress::Transfer).
            progress: true,
            ca_pem: match &self.ca_file {
                Some(p) => {
                    Some(std::fs::read(p).with_context(|| format!("--ca-file {}", p.display()))?)
                }
                None => None,
            },
        })
    }

    /// A client for `reference`'s registry with the credentials kept for it (data dir, else Docker's config).
    pub fn client(&self, home: &Home, reference: &oci_client::Reference) -> Result<OciClient> {
        let creds = CredentialsStore::at(home.root()).lookup(reference.resolve_registry())?;
        Ok(OciClient::new(reference, creds, self.options()?)?)
    }

    /// A fetcher for https URLs with these settings.
    pub fn url_fetcher(&self) -> Result<UrlFetcher> {
        Ok(UrlFetcher::new(self.options()?)?)
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
    if is_url(source) {
        return fetch_url(source, sig, registry).await;
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

pub fn is_url(source: &str) -> bool {
    source.starts_with("https://") || source.starts_with("http://")
}

/// The component at `source` and its signature: `--sig` (a URL or a file), else the URL with `.sig` appended.
async fn fetch_url(source: &str, sig: Option<&Path>, registry: &RegistryArgs) -> Result<Fetched> {
    let url = url::parse_url(source, registry.insecure)?;
    let shown = url::display_url(&url);
    let fetcher = registry.url_fetcher()?;
    let started = std::time::Instant::now();
    let max = registry.options()?.max_size;
    let bytes = fetcher
        .get(&url, max, "component", false)
        .await?
        .unwrap_or_default();
    let sig_text = |b: Vec<u8>| String::from_utf8(b).context("the signature is not UTF-8 text");
    let (signature, sig_hint) = match sig.and_then(Path::to_str) {
        Some(s) if is_url(s) => {
            let sig_url = url::parse_url(s, registry.insecure)?;
            let shown_sig = url::display_url(&sig_url);
            let b = fetcher.get(&sig_url, 256 << 10, "signature", false).await?;
            (
                b.map(sig_text).transpose()?.map(|t| (t, shown_sig.clone())),
                shown_sig,
            )
        }
        Some(s) => {
            let text = std::fs::read_to_string(s).with_context(|| format!("cannot read {s}"))?;
            (Some((text, s.to_string())), s.to_string())
        }
        None => {
            let mut sig_url = url.clone();
            sig_url.set_path(&format!("{}.sig", url.path()));
            let shown_sig = url::display_url(&sig_url);
            let b = fetcher.get(&sig_url, 256 << 10, "signature", true).await?;
            (
                b.map(sig_text).transpose()?.map(|t| (t, shown_sig.clone())),
                shown_sig,
            )
        }
    };
    eprintln!(
        "downloaded {shown} ({}) in {:.1}s",
        plughost::units::human_bytes(bytes.len() as u64),
        started.elapsed().as_secs_f64()
    );
    Ok(Fetched {
        label: shown.clone(),
        bytes,
        signature,
        source: Some(Source {
            reference: shown,
            manifest_digest: None,
        }),
        sig_hint: format!("no signature at {sig_hint}; give one with --sig URL"),
    })
}

pub fn sig_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}
