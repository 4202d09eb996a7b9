//! The gateway as an OAuth 2.1 resource server: JWT access tokens from the operator's issuer, checked against the
//! issuer's JSON Web Key Set — signature (RS256/384/512, ES256/384, EdDSA; never a shared-secret algorithm, never
//! `none`), `iss`, `aud` (this resource), `exp` and `nbf` — and mapped to a [`Principal`] by their scopes:
//! `tools` (every tool), `plugin:<id>` (that plugin's tools), `tool:<plugin__tool>` (one tool).
//!
//! The key set comes from a file or an `http(s)` URL. It is read at start; a token whose `kid` is not in it makes
//! the gateway read the set again (at most once per [`REFRESH_EVERY`]), so an issuer's key rotation is picked up
//! without a restart and a stream of made-up `kid`s cannot make it fetch in a loop.
//!
//! A token that passed is kept (by its blake3 hash and the resource it was checked for) until its `exp`, so a
//! client that sends the same token with every request pays for one signature check, not one per request (an ES256
//! check was ~0.4 ms of CPU here). Reading the key set again forgets every kept token; at most [`MAX_KEPT`] are kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use plughost_registry::TokenScope;
use serde::Deserialize;

use super::lock;
use super::principal::Principal;

/// A key set is read again for an unknown `kid` at most this often.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;
/// Largest key set accepted (a file or a response).
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Tokens that passed, kept at most.
const MAX_KEPT: usize = 1024;
/// The ledger principal of a JWT caller is `oauth:<sub>`, `sub` cut to this many bytes.
const MAX_SUBJECT: usize = 128;

/// Why a key set cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read the key set {0}: {1}")]
    Read(String, String),
    #[error("the key set {0} is not a JSON Web Key Set: {1}")]
    Parse(String, String),
    #[error("the key set {0} has no usable signing key (RSA, EC P-256/P-384 or Ed25519)")]
    Empty(String),
}

/// Why a token was refused; the text goes to the client in `WWW-Authenticate` (`error_description`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the access token is not valid: {0}")]
    Invalid(String),
    #[error(
        "the access token carries none of this gateway's scopes (tools, plugin:<id>, tool:<name>)"
    )]
    NoScope,
}

/// One verification key of the set.
struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// The issuer, the audience and the current keys.
pub struct OAuth {
    pub issuer: String,
    /// `None`: the resource URL the request came to (`http://<Host>/mcp`).
    pub audience: Option<String>,
    source: String,
    keys: Mutex<(Vec<Key>, Instant)>,
    /// Tokens that passed, by blake3 of the token and the resource: who they are, and their `exp`.
    kept: Mutex<HashMap<[u8; 32], (Principal, u64)>>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    /// Checked by `jsonwebtoken` (required); kept here to know how long a passed token may be kept.
    #[serde(default)]
    exp: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Vec<String>>,
}

impl OAuth {
    /// Reads the key set from `source` (a file path or an `http(s)` URL).
    pub async fn open(
        issuer: String,
        audience: Option<String>,
        source: String,
    ) -> Result<Self, JwksError> {
        let keys = load(&source).await?;
        Ok(OAuth {
            issuer,
            audience,
            source,
            keys: Mutex::new((keys, Instant::now())),
            kept: Mutex::new(HashMap::new()),
        })
    }

    /// Checks `token` for a request to `resource`; on success, who it is and what it may use.
    pub async fn check(&self, token: &str, resource: &str) -> Result<Principal, Refusal> {
        let id = {
            let mut h = blake3::Hasher::new();
            h.update(token.as_bytes())
                .update(b"\0")
                .update(resource.as_bytes());
            *h.finalize().as_bytes()
        };
        if let Some(p) = self.kept(&id) {
            return Ok(p);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| Refusal::Invalid(e.to_string()))?;
        if let Some(found) = self.verify(token, &header, resource)? {
            return self.keep(id, found);
        }
        // An unknown key id: the issuer may have rotated its keys. Read the set again, not too often.
        let stale = self
            .keys
            .lock()
            .map(|k| k.1.elapsed() >= REFRESH_EVERY)
            .unwrap_or(false);
        if stale {
            match load(&self.source).await {
                Ok(keys) => {
                    if let Ok(mut k) = self.keys.lock() {
                        *k = (keys, Instant::now());
                    }
                    // A key gone from the set takes the tokens it signed with it.
                    lock(&self.kept).clear();
                }
                Err(e) => tracing::warn!("oauth: {e}"),
            }
            if let Some(found) = self.verify(token, &header, resource)? {
                return self.keep(id, found);
            }
        }
        Err(Refusal::Invalid(
            "no key of the issuer's key set matches the token".into(),
        ))
    }

    /// A kept token's principal, while its `exp` (with the leeway `jsonwebtoken` allows) has not passed.
    fn kept(&self, id: &[u8; 32]) -> Option<Principal> {
        let kept = lock(&self.kept);
        let (p, exp) = kept.get(id)?;
        (unix_now() <= exp.saturating_add(LEEWAY_SECS)).then(|| p.clone())
    }

    /// The principal of claims that passed, kept until their `exp`.
    fn keep(&self, id: [u8; 32], claims: Claims) -> Result<Principal, Refusal> {
        let exp = claims.exp;
        let p = principal(claims)?;
        if let Some(exp) = exp {
            let mut kept = lock(&self.kept);
            if kept.len() >= MAX_KEPT {
                kept.clear();
            }
            kept.insert(id, (p.clone(), exp));
        }
        Ok(p)
    }

    /// `Ok(None)` when no key of the set is the token's; an error when the matching key refuses it.
    fn verify(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        resource: &str,
    ) -> Result<Option<Claims>, Refusal> {
        let keys = self
            .keys
            .lock()
            .map_err(|_| Refusal::Invalid("the key set is unavailable".into()))?;
        let key = keys.0.iter().find(|k| match &header.kid {
            Some(kid) => k.kid.as_deref() == Some(kid.as_str()),
            None => k.alg == header.alg,
        });
        let Some(key) = key else { return Ok(None) };
        if header.alg != key.alg {
            return Err(Refusal::Invalid(format!(
                "the token is signed with {:?}, the key is for {:?}",
                header.alg, key.alg
            )));
        }
        let mut v = Validation::new(key.alg);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[self.audience.as_deref().unwrap_or(resource)]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &key.key, &v)
            .map(|d| Some(d.claims))
            .map_err(|e| Refusal::Invalid(e.to_string()))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The principal a token's claims describe.
fn principal(claims: Claims) -> Result<Principal, Refusal> {
    let scopes: Vec<String> = match (claims.scope, claims.scp) {
        (Some(s), _) => s.split_whitespace().map(str::to_string).collect(),
        (None, Some(v)) => v,
        (None, None) => Vec::new(),
    };
    let mut all = false;
    let (mut plugins, mut tools) = (Vec::new(), Vec::new());
    for s in scopes {
        if s == "tools" {
            all = true;
        } else if let Some(p) = s.strip_prefix("plugin:") {
            plugins.push(p.to_string());
        } else if let Some(t) = s.strip_prefix("tool:") {
            tools.push(t.to_string());
        }
    }
    if !all && plugins.is_empty() && tools.is_empty() {
        return Err(Refusal::NoScope);
    }
    let scope = (!all).then(|| TokenScope {
        plugins: (!plugins.is_empty()).then_some(plugins),
        tools: (!tools.is_empty()).then_some(tools),
    });
    Ok(Principal {
        name: format!("oauth:{}", printable(&claims.sub)).into(),
        scope,
        mcp_only: true,
    })
}

/// `sub` as the ledger may show it: printable, bounded.
fn printable(sub: &str) -> String {
    let mut out: String = sub
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if out.len() > MAX_SUBJECT {
        let mut cut = MAX_SUBJECT;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

async fn load(source: &str) -> Result<Vec<Key>, JwksError> {
    let read = |e: String| JwksError::Read(source.to_string(), e);
    let bytes = if source.starts_with("http://") || source.starts_with("https://") {
        let r = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| read(e.to_string()))?
            .get(source)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| read(e.to_string()))?;
        if r.content_length().unwrap_or(0) > MAX_JWKS_BYTES as u64 {
            return Err(read("the response is too large".into()));
        }
        r.bytes().await.map_err(|e| read(e.to_string()))?.to_vec()
    } else {
        std::fs::read(source).map_err(|e| read(e.to_string()))?
    };
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(read(format!("larger than {MAX_JWKS_BYTES} bytes")));
    }
    let set: JwkSet = serde_json::from_slice(&bytes)
        .map_err(|e| JwksError::Parse(source.to_string(), e.to_string()))?;
    let keys: Vec<Key> = set.keys.iter().filter_map(key).collect();
    if keys.is_empty() {
        return Err(JwksError::Empty(source.to_string()));
    }
    Ok(keys)
}

/// A usable verification key: asymmetric only, with the algorithm its type allows (the JWK's `alg` when given).
fn key(jwk: &Jwk) -> Option<Key> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
        // A shared secret in a published key set would let anyone who reads the set sign tokens.
        _ => return None,
    };
    let alg = match jwk.common.key_algorithm {
        Some(a) => Algorithm::try_from(a).ok()?,
        None => implied,
    };
    if alg.family() != implied.family() {
        return None;
    }
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key: DecodingKey::from_jwk(jwk).ok()?,
    })
}

impl std::fmt::Debug for OAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const ISSUER: &str = "https://issuer.test";
    const AUD: &str = "https://gateway.test/mcp";

    fn es256() -> EncodingKey {
        EncodingKey::from_ec_pem(include_bytes!("../../tests/oauth-keys/es256.pem"))
            .expect("P-256 PEM")
    }

    fn mint(exp: u64) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("es-1".into());
        let claims = serde_json::json!({"iss": ISSUER, "aud": AUD, "sub": "alice", "exp": exp, "scope": "tools"});
        jsonwebtoken::encode(&header, &claims, &es256()).expect("sign")
    }

    async fn issuer() -> (tempfile::TempDir, OAuth) {
        let dir = tempfile::tempdir().expect("dir");
        let mut jwk = Jwk::from_encoding_key(&es256(), Algorithm::ES256).expect("JWK");
        jwk.common.key_id = Some("es-1".into());
        let path = dir.path().join("jwks.json");
        let set = JwkSet { keys: vec![jwk] };
        std::fs::write(&path, serde_json::to_vec(&set).expect("JSON")).expect("write");
        let oauth = OAuth::open(
            ISSUER.into(),
            Some(AUD.into()),
            path.to_str().expect("utf-8").into(),
        )
        .await
        .expect("open");
        (dir, oauth)
    }

    #[tokio::test]
    async fn a_token_that_passed_is_kept_until_its_exp_and_no_longer() {
        let (_dir, oauth) = issuer().await;
        let kept = |o: &OAuth| lock(&o.kept).len();
        let long = mint(unix_now() + 600);
        let p = oauth.check(&long, AUD).await.expect("passes");
        assert_eq!(&*p.name, "oauth:alice");
        assert_eq!(kept(&oauth), 1, "kept");
        assert_eq!(
            &*oauth.check(&long, AUD).await.expect("passes").name,
            "oauth:alice"
        );
        // Another signature on the same claims is another token, checked on its own: a forged one is refused.
        let mut forged = long.clone();
        forged.pop();
        forged.push(if long.ends_with('A') { 'B' } else { 'A' });
        assert!(oauth.check(&forged, AUD).await.is_err());
        assert_eq!(kept(&oauth), 1, "a refused token is not kept");
        // Valid for two more seconds (with the leeway): kept, then refused once its exp has passed.
        let short = mint(unix_now() + 2 - LEEWAY_SECS);
        oauth.check(&short, AUD).await.expect("passes while valid");
        assert_eq!(kept(&oauth), 2);
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let refused = oauth.check(&short, AUD).await;
        assert!(
            matches!(&refused, Err(Refusal::Invalid(why)) if why.contains("xpired")),
            "{refused:?}"
        );
        assert!(oauth.check(&long, AUD).await.is_ok());
    }
}
