//! Writes tokens signed by this crate to `tests/fixtures/lti-jose/ours/` so that
//! `tests/fixtures/lti-jose/gen_pyjwt.py verify` can check them with PyJWT.
//! See `tests/fixtures/lti-jose/README.md` for the full regeneration order.
//!
//! Run: `cargo run -p lti-jose --example sign-fixtures`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use lti_jose::{Algorithm, JwkSet, SigningKey, b64};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
};
use serde_json::json;

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/lti-jose");
    let rsa_pem = std::fs::read_to_string(dir.join("pyjwt/rsa-private.pem"))
        .expect("run gen_pyjwt.py keys first");
    let rng = SystemRandom::new();
    let mut keys = Vec::new();
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        keys.push(
            SigningKey::from_pem(&rsa_pem, alg)
                .unwrap()
                .with_kid(format!("ours-{alg}")),
        );
    }
    let p256 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    keys.push(
        SigningKey::from_pkcs8_der(p256.as_ref(), Algorithm::ES256)
            .unwrap()
            .with_kid("ours-ES256"),
    );
    let p384 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
    keys.push(
        SigningKey::from_pkcs8_der(p384.as_ref(), Algorithm::ES384)
            .unwrap()
            .with_kid("ours-ES384"),
    );
    let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    keys.push(
        SigningKey::from_pkcs8_der(ed.as_ref(), Algorithm::EdDSA)
            .unwrap()
            .with_kid("ours-EdDSA"),
    );

    let mut tokens = Vec::new();
    for key in &keys {
        let claims = json!({
            "iss": "https://lti-jose.example",
            "sub": format!("signed-with-{}", key.algorithm()),
            "aud": ["client-1", "client-2"],
            "iat": 1_700_000_000u64,
            "exp": 4_000_000_000u64,
            "unicode": "Grüße, 世界",
        });
        let token = lti_jose::sign(&claims, key).unwrap();
        tokens.push(json!({ "alg": key.algorithm(), "kid": key.kid(), "expect_valid": true, "token": token }));
        // The same token with a payload this key never signed: PyJWT must reject it.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] =
            b64::encode(br#"{"iss":"https://lti-jose.example","sub":"forged","exp":4000000000}"#);
        tokens.push(json!({ "alg": key.algorithm(), "kid": key.kid(), "expect_valid": false, "token": parts.join(".") }));
    }
    let jwks = JwkSet {
        keys: keys.iter().map(SigningKey::public_jwk).collect(),
    };
    let out = dir.join("ours");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("jwks.json"),
        serde_json::to_string_pretty(&jwks).unwrap() + "\n",
    )
    .unwrap();
    std::fs::write(
        out.join("tokens.json"),
        serde_json::to_string_pretty(&tokens).unwrap() + "\n",
    )
    .unwrap();
    println!("wrote {} tokens to {}", tokens.len(), out.display());
}
