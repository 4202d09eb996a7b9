//! The gateway as an OAuth resource server: JWT access tokens from a configured issuer, checked against its key set
//! (a file here; test keys in `oauth-keys/`). The official Python SDK with a token scoped to one tool sees only it
//! and its plugin's docs resource, and is refused another tool and another plugin's docs, in both protocol eras, and the ledger names the token's subject. Every way a token
//! can be wrong is refused with 401 `invalid_token`: another issuer, another audience, expired, not yet valid, signed
//! by a key the issuer never published, a shared-secret algorithm, `alg: none`, garbage. A token with none of the
//! gateway's scopes gets 403 `insufficient_scope`; an all-tools token still may not read `/metrics`.

mod common;
use common::*;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const ISSUER: &str = "https://issuer.test";

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/oauth-keys")
            .join(name),
    )
    .expect("test key")
}

fn ed(name: &str) -> EncodingKey {
    EncodingKey::from_ed_pem(&key_file(name)).expect("Ed25519 PEM")
}

fn es256() -> EncodingKey {
    EncodingKey::from_ec_pem(&key_file("es256.pem")).expect("P-256 PEM")
}

fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).expect("public JWK");
    jwk.common.key_id = Some(kid.into());
    jwk
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn mint(key: &EncodingKey, alg: Algorithm, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn claims(aud: &str, scope: &str) -> Value {
    json!({"iss": ISSUER, "aud": aud, "sub": "alice", "exp": now() + 600, "scope": scope})
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// (status, WWW-Authenticate) of GET /mcp with `token`.
fn try_token(addr: std::net::SocketAddr, path: &str, token: &str) -> (u16, String) {
    let (status, text) = http(
        addr,
        "GET",
        path,
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Accept", "text/event-stream"),
        ],
        b"",
    );
    let challenge = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("www-authenticate:"))
        .unwrap_or_default()
        .to_string();
    (status, challenge)
}

#[test]
fn jwt_access_tokens_from_the_issuer_are_checked_and_scoped() {
    let setup = Setup::new();
    let set = JwkSet {
        keys: vec![
            jwk(&ed("ed25519.pem"), Algorithm::EdDSA, "ed-1"),
            jwk(&es256(), Algorithm::ES256, "es-1"),
        ],
    };
    let jwks = setup.path("jwks.json");
    std::fs::write(&jwks, serde_json::to_vec(&set).expect("JSON")).expect("write JWKS");
    let server = setup.serve_http(&["--oauth-issuer", ISSUER, "--oauth-jwks", &jwks]);
    let addr = server.addr;
    let aud = server.url();

    // The metadata names the issuer, so a client knows where to get a token.
    let (status, text) = http(
        addr,
        "GET",
        "/.well-known/oauth-protected-resource/mcp",
        &[],
        b"",
    );
    assert_eq!(status, 200, "{text}");
    let meta: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap_or_default())
        .expect("JSON metadata");
    assert_eq!(meta["authorization_servers"], json!([ISSUER]));
    assert_eq!(meta["resource"], aud);
    // With an issuer configured nothing is open any more.
    let (status, _) = http(addr, "GET", "/ready", &[], b"");
    assert_eq!(status, 401);

    // Scoped to one tool: the Python SDK sees exactly it (and its plugin's docs), calls it, is refused the rest.
    let scoped = mint(
        &ed("ed25519.pem"),
        Algorithm::EdDSA,
        "ed-1",
        &claims(&aud, "tool:fixture-basic__echo"),
    );
    scoped_client_checks(
        &server.url(),
        &scoped,
        r#"["fixture-basic__echo"]"#,
        &[
            "--docs",
            r#"["fixture-basic"]"#,
            "--hidden-doc",
            "system-info",
        ],
    );
    let entries = ledger_entries(&setup);
    let export = format!("{entries:?}");
    let by_alice: Vec<Value> = entries
        .into_iter()
        .filter(|e| e["caller"]["principal"] == "oauth:alice")
        .collect();
    let outcomes = |tool: &str| -> Vec<Value> {
        by_alice
            .iter()
            .filter(|e| e["tool"] == tool)
            .map(|e| e["outcome"].clone())
            .collect()
    };
    assert_eq!(outcomes("echo"), vec![json!("ok"), json!("ok")], "{export}");
    assert_eq!(
        outcomes("spin"),
        vec![json!("denied"), json!("denied")],
        "{export}"
    );

    // An ES256 token for every tool passes on /mcp (the GET stream needs a session: 4xx, but not 401/403) …
    let all = mint(&es256(), Algorithm::ES256, "es-1", &claims(&aud, "tools"));
    let (status, challenge) = try_token(addr, "/mcp", &all);
    assert!(status != 401 && status != 403, "{status} {challenge}");
    // … and still speaks MCP only.
    assert_eq!(try_token(addr, "/metrics", &all).0, 403);

    // A valid token with none of the gateway's scopes.
    let none = mint(
        &es256(),
        Algorithm::ES256,
        "es-1",
        &claims(&aud, "openid email"),
    );
    let (status, challenge) = try_token(addr, "/mcp", &none);
    assert_eq!(status, 403);
    assert!(challenge.contains("insufficient_scope"), "{challenge}");

    // Every wrong token: 401 invalid_token, naming the metadata.
    let ed1 = ed("ed25519.pem");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims(&aud, "tools");
        f(&mut c);
        c
    };
    let wrong: Vec<(&str, String)> = vec![
        (
            "another issuer",
            mint(
                &ed1,
                Algorithm::EdDSA,
                "ed-1",
                &with(&|c| c["iss"] = json!("https://evil.test")),
            ),
        ),
        (
            "another audience",
            mint(
                &ed1,
                Algorithm::EdDSA,
                "ed-1",
                &with(&|c| c["aud"] = json!("http://other/mcp")),
            ),
        ),
        (
            "expired",
            mint(
                &ed1,
                Algorithm::EdDSA,
                "ed-1",
                &with(&|c| c["exp"] = json!(now() - 300)),
            ),
        ),
        (
            "not yet valid",
            mint(
                &ed1,
                Algorithm::EdDSA,
                "ed-1",
                &with(&|c| c["nbf"] = json!(now() + 300)),
            ),
        ),
        (
            "no exp",
            mint(
                &ed1,
                Algorithm::EdDSA,
                "ed-1",
                &with(&|c| {
                    c.as_object_mut().expect("object").remove("exp");
                }),
            ),
        ),
        (
            "signed by a key the issuer never published",
            mint(
                &ed("intruder-ed25519.pem"),
                Algorithm::EdDSA,
                "ed-1",
                &claims(&aud, "tools"),
            ),
        ),
        (
            "an unknown key id",
            mint(
                &ed("intruder-ed25519.pem"),
                Algorithm::EdDSA,
                "ed-9",
                &claims(&aud, "tools"),
            ),
        ),
        (
            "a shared-secret algorithm",
            mint(
                &EncodingKey::from_secret(b"ed-1").expect("an HMAC key"),
                Algorithm::HS256,
                "ed-1",
                &claims(&aud, "tools"),
            ),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": "ed-1"})),
                b64(&claims(&aud, "tools"))
            ),
        ),
        ("garbage", "a.b.c".to_string()),
    ];
    for (why, token) in wrong {
        let (status, challenge) = try_token(addr, "/mcp", &token);
        assert_eq!(status, 401, "{why}: {challenge}");
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{why}: {challenge}"
        );
        assert!(
            challenge.contains("resource_metadata="),
            "{why}: {challenge}"
        );
    }
}
