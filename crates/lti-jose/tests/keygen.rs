//! RSA key generation (feature `keygen`): the `rsa` crate generates, ring signs.
#![cfg(feature = "keygen")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lti_jose::{Algorithm, Error, JwkSet, SigningKey, Verifier};
use serde_json::{Value, json};

#[test]
fn generated_rsa_key_signs_and_its_pem_reloads_to_the_same_key() {
    let (key, pem) = SigningKey::generate_rsa(2048).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    assert_eq!(key.algorithm(), Algorithm::RS256);
    let reloaded = SigningKey::from_pem(&pem, Algorithm::RS256).unwrap();
    assert_eq!(reloaded.public_jwk(), key.public_jwk());
    let n = lti_jose::b64::decode(key.public_jwk().n.as_deref().unwrap()).unwrap();
    assert_eq!(n.len(), 256);

    let token = lti_jose::sign(&json!({ "sub": "s", "exp": 4_000_000_000u64 }), &key).unwrap();
    let jwks = JwkSet {
        keys: vec![key.public_jwk()],
    };
    let verifier = Verifier::new(&[Algorithm::RS256]).unwrap();
    let jws = verifier.parse(&token).unwrap();
    let claims: Value = verifier
        .verify(&jws, &jwks.find(jws.kid(), jws.algorithm()).unwrap())
        .unwrap();
    assert_eq!(claims["sub"], "s");
}

#[test]
fn unsupported_rsa_sizes_are_refused() {
    for bits in [0, 1024, 2047, 8192] {
        let err = SigningKey::generate_rsa(bits).unwrap_err();
        assert!(
            matches!(err, Error::KeyGeneration { ref reason } if reason.contains(&bits.to_string())),
            "{err}"
        );
    }
}
