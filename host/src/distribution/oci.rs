//! Push and pull a component and its signature through an OCI registry with `oci-client`. Everything pulled is
//! bounded (manifest and signature sizes, the layer size from the manifest, checked again while reading) and
//! checked against its sha256 digest here; the caller then verifies the plughost signature before writing.

use std::str::FromStr;

use futures_util::StreamExt;
use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sha2::{Digest, Sha256};

use super::auth::Credentials;
use super::failures::{classify, protocol, timeout};
use super::types::{DistError, Options, clip, is_loopback};

pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.plughost.signature.v1+json";
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// How many times a broken blob download is resumed (from the byte it stopped at) before the pull fails.
const MAX_RESUMES: u32 = 2;
/// A manifest or a signature larger than this is not one of ours.
const SMALL_LIMIT: usize = 256 << 10;

/// What a pull fetched: the component (its sha256 checked), the manifest digest it was read through, and the
/// plughost signature's JSON when the registry holds one for that manifest.
#[derive(Debug)]
pub struct Pulled {
    pub bytes: Vec<u8>,
    pub manifest_digest: String,
    pub signature: Option<String>,
}

/// One registry, with the credentials and settings it is reached with.
pub struct OciClient {
    client: Client,
    auth: RegistryAuth,
    options: Options,
    plain_http: bool,
}

impl std::fmt::Debug for OciClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// `oci://REGISTRY/REPO:TAG` or `…@sha256:HEX` as a reference with an explicit registry.
pub fn parse_reference(text: &str) -> Result<Reference, DistError> {
    let bad = || DistError::BadReference(clip(text, 200));
    let rest = text.strip_prefix("oci://").ok_or_else(bad)?;
    let (registry, path) = rest.split_once('/').ok_or_else(bad)?;
    if registry.is_empty() || path.is_empty() || rest.chars().any(|c| c.is_whitespace()) {
        return Err(bad());
    }
    let r = Reference::from_str(rest).map_err(|_| bad())?;
    if r.registry() != registry {
        return Err(bad());
    }
    Ok(r)
}

/// The tag the signature of the manifest `digest` (`sha256:HEX`) is pushed under: `sha256-HEX.sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

impl OciClient {
    /// A client for `reference`'s registry. Plain http only for a registry named in `options.insecure_registries`,
    /// or with `options.insecure` for a loopback one.
    pub fn new(
        reference: &Reference,
        creds: Option<Credentials>,
        options: Options,
    ) -> Result<Self, DistError> {
        let registry = reference.resolve_registry().to_string();
        let named = options.insecure_registries.contains(&registry);
        let plain_http = named || options.insecure;
        let protocol = if plain_http {
            if !named && !is_loopback(&registry) {
                return Err(DistError::InsecureNotLoopback { registry });
            }
            ClientProtocol::HttpsExcept(vec![registry])
        } else {
            ClientProtocol::Https
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol,
            read_timeout: Some(options.timeout),
            connect_timeout: Some(options.timeout),
            platform_resolver: None,
            extra_root_certificates: options
                .ca_pem
                .iter()
                .map(|pem| oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            ..Default::default()
        };
        let client = Client::try_from(config).map_err(|e| DistError::Unreachable {
            registry: reference.resolve_registry().to_string(),
            message: clip(&e.to_string(), 300),
        })?;
        let auth = match creds {
            Some(c) => RegistryAuth::Basic(c.username, c.password),
            None => RegistryAuth::Anonymous,
        };
        Ok(Self {
            client,
            auth,
            options,
            plain_http,
        })
    }

    /// True when this registry is reached over plain http.
    pub fn plain_http(&self) -> bool {
        self.plain_http
    }

    fn error(&self, reference: &Reference, what: &str, e: OciDistributionError) -> DistError {
        classify(reference, what, e, &self.options)
    }

    /// Pushes the component as a Wasm OCI artifact to `reference` (a tag), then `signature` (plughost's JSON) as
    /// an artifact whose subject is the component's manifest, tagged `sha256-<hex>.sig`. Returns the component's
    /// manifest digest.
    pub async fn push(
        &self,
        reference: &Reference,
        component: &[u8],
        signature: Option<&[u8]>,
        imports: &[String],
    ) -> Result<String, DistError> {
        self.client
            .auth(reference, &self.auth, RegistryOperation::Push)
            .await
            .map_err(|e| self.error(reference, "login", e))?;
        let layer_digest = sha256(component);
        let config = serde_json::to_vec(&serde_json::json!({
            "created": rfc3339_now(),
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [layer_digest],
            "component": { "exports": ["plughost:plugin/tools"], "imports": imports },
        }))
        .map_err(|e| protocol(reference, e))?;
        let manifest = self
            .push_artifact(
                reference,
                None,
                (WASM_CONFIG_MEDIA_TYPE, &config),
                (WASM_LAYER_MEDIA_TYPE, component),
                None,
            )
            .await?;
        if let Some(sig) = signature {
            let subject = OciDescriptor {
                media_type: OCI_IMAGE_MEDIA_TYPE.to_string(),
                digest: manifest.0.clone(),
                size: manifest.1 as i64,
                ..Default::default()
            };
            let sig_ref = Reference::with_tag(
                reference.registry().to_string(),
                reference.repository().to_string(),
                signature_tag(&manifest.0),
            );
            self.push_artifact(
                &sig_ref,
                Some(SIGNATURE_MEDIA_TYPE),
                (EMPTY_MEDIA_TYPE, b"{}"),
                (SIGNATURE_MEDIA_TYPE, sig),
                Some(subject),
            )
            .await?;
        }
        Ok(manifest.0)
    }

    /// Uploads a config and one layer, then the manifest (bytes written here, so its digest is known exactly).
    async fn push_artifact(
        &self,
        reference: &Reference,
        artifact_type: Option<&str>,
        config: (&str, &[u8]),
        layer: (&str, &[u8]),
        subject: Option<OciDescriptor>,
    ) -> Result<(String, usize), DistError> {
        let mut descriptors = Vec::new();
        for (media_type, data) in [config, layer] {
            let digest = sha256(data);
            self.client
                .push_blob(reference, data.to_vec(), &digest)
                .await
                .map_err(|e| self.error(reference, "blob upload", e))?;
            descriptors.push(OciDescriptor {
                media_type: media_type.to_string(),
                digest,
                size: data.len() as i64,
                ..Default::default()
            });
        }
        let layer = descriptors.pop().unwrap_or_default();
        let config = descriptors.pop().unwrap_or_default();
        let manifest = OciImageManifest {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
            config,
            layers: vec![layer],
            subject,
            artifact_type: artifact_type.map(str::to_string),
            annotations: None,
        };
        let body = serde_json::to_vec(&manifest).map_err(|e| protocol(reference, e))?;
        let digest = sha256(&body);
        let len = body.len();
        self.client
            .push_manifest_raw(reference, body, http_header(OCI_IMAGE_MEDIA_TYPE))
            .await
            .map_err(|e| self.error(reference, "manifest upload", e))?;
        Ok((digest, len))
    }

    /// The repository's tags (at most 1000, one page: enough to find the newest version).
    pub async fn tags(&self, reference: &Reference) -> Result<Vec<String>, DistError> {
        self.client
            .auth(reference, &self.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| self.error(reference, "login", e))?;
        let r = self
            .client
            .list_tags(reference, &self.auth, Some(1000), None)
            .await
            .map_err(|e| self.error(reference, "tag list", e))?;
        Ok(r.tags)
    }

    /// The manifest digest `reference` resolves to now (a HEAD request: nothing is downloaded).
    pub async fn resolve(&self, reference: &Reference) -> Result<String, DistError> {
        self.client
            .auth(reference, &self.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| self.error(reference, "login", e))?;
        self.client
            .fetch_manifest_digest(reference, &self.auth)
            .await
            .map_err(|e| self.error(reference, "manifest", e))
    }

    /// Resolves `reference` (a tag or a digest) to its manifest, checks it is a Wasm component artifact whose
    /// layer fits the size limit, downloads and checks the layer, then fetches the signature made for that very
    /// manifest digest, if any.
    pub async fn pull(&self, reference: &Reference) -> Result<Pulled, DistError> {
        self.client
            .auth(reference, &self.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| self.error(reference, "login", e))?;
        let (manifest, manifest_digest) = self.manifest(reference, "component manifest").await?;
        let not_wasm = |why: String| DistError::NotWasm {
            reference: reference.whole(),
            why,
        };
        if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
            return Err(not_wasm(format!(
                "its config is `{}`, not `{WASM_CONFIG_MEDIA_TYPE}`",
                clip(&manifest.config.media_type, 100)
            )));
        }
        let [layer] = manifest.layers.as_slice() else {
            return Err(not_wasm(format!(
                "it has {} layers, not one `{WASM_LAYER_MEDIA_TYPE}` layer",
                manifest.layers.len()
            )));
        };
        if layer.media_type != WASM_LAYER_MEDIA_TYPE {
            return Err(not_wasm(format!(
                "its layer is `{}`, not `{WASM_LAYER_MEDIA_TYPE}`",
                clip(&layer.media_type, 100)
            )));
        }
        let bytes = self
            .blob(reference, layer, self.options.max_size, "component layer")
            .await?;
        let signature = self.signature(reference, &manifest_digest).await?;
        Ok(Pulled {
            bytes,
            manifest_digest,
            signature,
        })
    }

    /// The manifest of `reference`, bounded, with its digest checked when the reference names one.
    async fn manifest(
        &self,
        reference: &Reference,
        what: &str,
    ) -> Result<(OciImageManifest, String), DistError> {
        let (raw, digest) = self
            .client
            .pull_manifest_raw(reference, &self.auth, &[OCI_IMAGE_MEDIA_TYPE])
            .await
            .map_err(|e| self.error(reference, what, e))?;
        if raw.len() > SMALL_LIMIT {
            return Err(DistError::TooLarge {
                reference: reference.whole(),
                what: what.to_string(),
                size: raw.len() as u64,
                limit: SMALL_LIMIT as u64,
            });
        }
        let actual = sha256(&raw);
        let expected = reference.digest().map(str::to_string).unwrap_or(digest);
        if actual != expected {
            return Err(DistError::DigestMismatch {
                reference: reference.whole(),
                what: what.to_string(),
                expected,
                actual,
            });
        }
        let manifest: OciImageManifest =
            serde_json::from_slice(&raw).map_err(|e| DistError::NotWasm {
                reference: reference.whole(),
                why: format!(
                    "its manifest is not an OCI image manifest ({})",
                    clip(&e.to_string(), 120)
                ),
            })?;
        Ok((manifest, actual))
    }

    /// Downloads one blob, refusing it before the download when the manifest says it is over `limit`, and
    /// stopping when more arrives; a broken or stalled read is resumed from where it stopped (twice at most); the
    /// whole blob's sha256 must be the descriptor's.
    async fn blob(
        &self,
        reference: &Reference,
        desc: &OciDescriptor,
        limit: u64,
        what: &str,
    ) -> Result<Vec<u8>, DistError> {
        let too_large = |size: u64| DistError::TooLarge {
            reference: reference.whole(),
            what: what.to_string(),
            size,
            limit,
        };
        let size = u64::try_from(desc.size).unwrap_or(u64::MAX);
        if size > limit {
            return Err(too_large(size));
        }
        let mut out = Vec::with_capacity(size.min(limit) as usize);
        let bar = crate::progress::Transfer::start(
            format!("pulling {what}"),
            Some(size),
            self.options.progress,
        );
        let mut resumes = 0;
        loop {
            // After a broken or stalled read, ask for the rest only (a registry that ignores the range sends all).
            let stream = if out.is_empty() {
                self.client
                    .pull_blob_stream(reference, desc)
                    .await
                    .map(|s| s.stream)
            } else {
                match self
                    .client
                    .pull_blob_stream_partial(reference, desc, out.len() as u64, None)
                    .await
                {
                    Ok(BlobResponse::Partial(s)) => Ok(s.stream),
                    Ok(BlobResponse::Full(s)) => {
                        out.clear();
                        Ok(s.stream)
                    }
                    Err(e) => Err(e),
                }
            };
            let mut stream = stream.map_err(|e| self.error(reference, what, e))?;
            let mut failed = None;
            while let Some(chunk) = stream.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        failed = Some(self.stream_error(reference, desc, what, e));
                        break;
                    }
                };
                if out.len() as u64 + chunk.len() as u64 > size {
                    return Err(too_large(out.len() as u64 + chunk.len() as u64));
                }
                out.extend_from_slice(&chunk);
                bar.set(out.len() as u64);
            }
            match failed {
                None => break,
                Some(
                    e @ (DistError::Unreachable { .. }
                    | DistError::Timeout { .. }
                    | DistError::Protocol { .. }),
                ) if resumes < MAX_RESUMES => {
                    resumes += 1;
                    tracing::warn!(
                        "{}: {what} interrupted after {} of {size} bytes ({e}); resuming",
                        reference.whole(),
                        out.len()
                    );
                }
                Some(e) => return Err(e),
            }
        }
        bar.done(out.len() as u64);
        let actual = sha256(&out);
        if actual != desc.digest {
            return Err(DistError::DigestMismatch {
                reference: reference.whole(),
                what: what.to_string(),
                expected: desc.digest.clone(),
                actual,
            });
        }
        Ok(out)
    }

    /// A failure while reading a blob: a stall (the read timeout, somewhere in the error's chain), the digest
    /// check `oci-client` makes at the end of the stream, or a broken connection.
    fn stream_error(
        &self,
        reference: &Reference,
        desc: &OciDescriptor,
        what: &str,
        e: std::io::Error,
    ) -> DistError {
        if e.kind() == std::io::ErrorKind::TimedOut {
            return timeout(reference, &self.options);
        }
        // `io::Error::source` skips the error it wraps: start from that one.
        let mut source: Option<&(dyn std::error::Error + 'static)> = match e.get_ref() {
            Some(inner) => Some(inner),
            None => None,
        };
        while let Some(s) = source {
            if let Some(r) = s.downcast_ref::<reqwest::Error>()
                && r.is_timeout()
            {
                return timeout(reference, &self.options);
            }
            if let Some(io) = s.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::TimedOut
            {
                return timeout(reference, &self.options);
            }
            if let Some(oci_client::errors::DigestError::VerificationError { actual, .. }) =
                s.downcast_ref::<oci_client::errors::DigestError>()
            {
                return DistError::DigestMismatch {
                    reference: reference.whole(),
                    what: what.to_string(),
                    expected: desc.digest.clone(),
                    actual: actual.clone(),
                };
            }
            source = s.source();
        }
        self.error(reference, what, e.into())
    }

    /// The digest of a plughost signature artifact the registry lists as a referrer of manifest `digest` (OCI 1.1
    /// referrers API), if it has that API and one.
    async fn referrer(&self, reference: &Reference, digest: &str) -> Option<String> {
        let subject = Reference::with_digest(
            reference.registry().to_string(),
            reference.repository().to_string(),
            digest.to_string(),
        );
        let index = self
            .client
            .pull_referrers(&subject, Some(SIGNATURE_MEDIA_TYPE))
            .await
            .ok()?;
        index
            .manifests
            .into_iter()
            .find(|m| m.artifact_type.as_deref() == Some(SIGNATURE_MEDIA_TYPE))
            .map(|m| m.digest)
    }

    /// The plughost signature pushed for the manifest `digest`, if any: the referrer the registry lists (OCI 1.1),
    /// else the one tagged `sha256-<hex>.sig`. It must refer to that manifest.
    async fn signature(
        &self,
        reference: &Reference,
        digest: &str,
    ) -> Result<Option<String>, DistError> {
        let sig_ref = match self.referrer(reference, digest).await {
            Some(sig_digest) => Reference::with_digest(
                reference.registry().to_string(),
                reference.repository().to_string(),
                sig_digest,
            ),
            None => Reference::with_tag(
                reference.registry().to_string(),
                reference.repository().to_string(),
                signature_tag(digest),
            ),
        };
        let (manifest, _) = match self.manifest(&sig_ref, "signature manifest").await {
            Ok(m) => m,
            Err(DistError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let subject = manifest
            .subject
            .as_ref()
            .map(|s| s.digest.clone())
            .unwrap_or_else(|| "(none)".into());
        if subject != digest {
            return Err(DistError::SignatureForAnother {
                reference: reference.whole(),
                subject,
                manifest: digest.to_string(),
            });
        }
        let Some(layer) = manifest
            .layers
            .iter()
            .find(|l| l.media_type == SIGNATURE_MEDIA_TYPE)
        else {
            return Err(protocol(
                &sig_ref,
                format!("the signature artifact has no `{SIGNATURE_MEDIA_TYPE}` layer"),
            ));
        };
        let bytes = self
            .blob(&sig_ref, layer, SMALL_LIMIT as u64, "signature")
            .await?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| protocol(&sig_ref, "the signature is not UTF-8 text"))
    }
}

fn http_header(v: &str) -> reqwest::header::HeaderValue {
    reqwest::header::HeaderValue::from_str(v)
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("application/octet-stream"))
}

/// Now as RFC 3339 UTC (`2026-12-02T03:00:00Z`), for the Wasm config's `created`.
fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = parse_reference("oci://127.0.0.1:5000/acme/hello:0.2.0").expect("tag");
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "acme/hello");
        assert_eq!(r.tag(), Some("0.2.0"));
        let d = format!("oci://r.example/acme/hello@sha256:{}", "a".repeat(64));
        assert!(parse_reference(&d).expect("digest").digest().is_some());
        for bad in [
            "hello.wasm",
            "oci://hello",
            "oci:///acme/x:1",
            "https://r/x:1",
        ] {
            assert!(parse_reference(bad).is_err(), "{bad}");
        }
        assert_eq!(signature_tag("sha256:abc"), "sha256-abc.sig");
        assert_eq!(rfc3339_now().len(), 20);
    }

    #[test]
    fn plain_http_only_where_named() {
        let remote = parse_reference("oci://registry.example.com:5000/acme/x:1").expect("ref");
        let loopback = parse_reference("oci://127.0.0.1:5000/acme/x:1").expect("ref");
        let insecure = Options {
            insecure: true,
            ..Options::default()
        };
        assert!(matches!(
            OciClient::new(&remote, None, insecure.clone()),
            Err(DistError::InsecureNotLoopback { .. })
        ));
        assert!(
            OciClient::new(&loopback, None, insecure)
                .expect("loopback")
                .plain_http()
        );
        assert!(
            !OciClient::new(&remote, None, Options::default())
                .expect("tls")
                .plain_http()
        );
        let named = Options {
            insecure_registries: vec!["registry.example.com:5000".into()],
            ..Options::default()
        };
        assert!(
            OciClient::new(&remote, None, named.clone())
                .expect("named")
                .plain_http()
        );
        // Naming one registry does not make another plain http.
        let other = parse_reference("oci://other.example.com/acme/x:1").expect("ref");
        assert!(
            !OciClient::new(&other, None, named)
                .expect("other")
                .plain_http()
        );
    }
}
