//! Known-answer tests: RFC 7515 appendix A, RFC 7638, PyJWT-signed tokens, and
//! PyJWT's verdicts on tokens this crate signed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lti_jose::{Algorithm, Jwk, JwkSet, SigningKey, Verifier, VerifyingKey};
use serde_json::Value;

macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!("../../../tests/fixtures/lti-jose/", $path))
    };
}

fn all_algs() -> Verifier {
    Verifier::new(&Algorithm::ALL).unwrap()
}

#[test]
fn rfc7515_a2_rs256_token_verifies_with_the_rfc_key() {
    let jwk: Jwk = serde_json::from_str(fixture!("rfc7515/a2-rs256.jwk.json")).unwrap();
    let key = jwk.to_verifying_key(Algorithm::RS256).unwrap();
    let claims: Value = all_algs()
        .verify_token(fixture!("rfc7515/a2-rs256.token").trim(), &key)
        .unwrap();
    assert_eq!(claims["iss"], "joe");
    assert_eq!(claims["exp"], 1_300_819_380);
    assert_eq!(claims["http://example.com/is_root"], true);
}

#[test]
fn rfc7515_a2_rs256_signature_is_reproduced_bit_for_bit() {
    let token = fixture!("rfc7515/a2-rs256.token").trim();
    let (signing_input, expected_sig) = token.rsplit_once('.').unwrap();
    let key =
        SigningKey::from_pem(fixture!("rfc7515/a2-rs256-private.pem"), Algorithm::RS256).unwrap();
    let sig = key.sign_bytes(signing_input.as_bytes()).unwrap();
    assert_eq!(lti_jose::b64::encode(&sig), expected_sig);
    // The private key's public half is the RFC's public JWK.
    let rfc: Jwk = serde_json::from_str(fixture!("rfc7515/a2-rs256.jwk.json")).unwrap();
    let ours = key.public_jwk();
    assert_eq!(
        (ours.n.as_deref(), ours.e.as_deref()),
        (rfc.n.as_deref(), rfc.e.as_deref())
    );
    assert_eq!(ours.thumbprint().unwrap(), rfc.thumbprint().unwrap());
}

#[test]
fn rfc7515_a3_es256_token_verifies_with_the_rfc_key() {
    let jwk: Jwk = serde_json::from_str(fixture!("rfc7515/a3-es256.jwk.json")).unwrap();
    let key = jwk.to_verifying_key(Algorithm::ES256).unwrap();
    let token = fixture!("rfc7515/a3-es256.token").trim();
    let claims: Value = all_algs().verify_token(token, &key).unwrap();
    assert_eq!(claims["iss"], "joe");
    // ECDSA is randomised: our own signature with the RFC key must verify under the RFC JWK.
    let signer =
        SigningKey::from_pem(fixture!("rfc7515/a3-es256-private.pem"), Algorithm::ES256).unwrap();
    let ours = lti_jose::sign(&claims, &signer).unwrap();
    let again: Value = all_algs().verify_token(&ours, &key).unwrap();
    assert_eq!(again, claims);
    assert_eq!(signer.public_jwk().x, jwk.x);
    assert_eq!(signer.public_jwk().y, jwk.y);
}

#[test]
fn rfc7638_thumbprint_example_matches() {
    let jwk: Jwk = serde_json::from_str(fixture!("rfc7638-jwk.json")).unwrap();
    assert_eq!(
        jwk.thumbprint().unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn pyjwt_tokens_verify_for_every_algorithm_via_pyjwt_exported_jwks() {
    let jwks = JwkSet::from_slice(fixture!("pyjwt/jwks.json").as_bytes()).unwrap();
    assert_eq!(jwks.keys.len(), 9, "every PyJWT-exported JWK parses");
    let fixture: Value = serde_json::from_str(fixture!("pyjwt/tokens.json")).unwrap();
    let tokens = fixture["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 9);
    let verifier = all_algs();
    let mut seen = Vec::new();
    for entry in tokens {
        let token = entry["token"].as_str().unwrap();
        let jws = verifier.parse(token).unwrap();
        assert_eq!(jws.algorithm().as_str(), entry["alg"]);
        let key = jwks.find(jws.kid(), jws.algorithm()).unwrap();
        let claims: Value = verifier.verify(&jws, &key).unwrap();
        assert_eq!(claims, fixture["claims"], "{}", entry["alg"]);
        seen.push(jws.algorithm());
    }
    assert_eq!(seen, Algorithm::ALL);
}

#[test]
fn pyjwt_tokens_verify_with_spki_pem_public_keys() {
    let fixture: Value = serde_json::from_str(fixture!("pyjwt/tokens.json")).unwrap();
    let pem_for = |alg: Algorithm| match alg {
        Algorithm::ES256 => fixture!("pyjwt/p256-public.pem"),
        Algorithm::ES384 => fixture!("pyjwt/p384-public.pem"),
        Algorithm::EdDSA => fixture!("pyjwt/ed25519-public.pem"),
        _ => fixture!("pyjwt/rsa-public.pem"),
    };
    for entry in fixture["tokens"].as_array().unwrap() {
        let alg: Algorithm = entry["alg"].as_str().unwrap().parse().unwrap();
        let key = VerifyingKey::from_public_pem(pem_for(alg), alg).unwrap();
        let claims: Value = all_algs()
            .verify_token(entry["token"].as_str().unwrap(), &key)
            .unwrap();
        assert_eq!(claims["sub"], "user-1");
    }
}

#[test]
fn pkcs1_and_pkcs8_rsa_pems_load_the_same_key() {
    let a = SigningKey::from_pem(fixture!("pyjwt/rsa-private.pem"), Algorithm::PS256).unwrap();
    let b =
        SigningKey::from_pem(fixture!("pyjwt/rsa-private-pkcs1.pem"), Algorithm::PS256).unwrap();
    assert_eq!(a.public_jwk(), b.public_jwk());
    let from_pyjwt = JwkSet::from_slice(fixture!("pyjwt/jwks.json").as_bytes()).unwrap();
    let pyjwt_rsa = from_pyjwt
        .keys
        .iter()
        .find(|k| k.kid() == Some("pyjwt-PS256"))
        .unwrap();
    assert_eq!(
        a.public_jwk().n,
        pyjwt_rsa.n,
        "our exported modulus equals PyJWT's"
    );
    assert_eq!(a.kid(), pyjwt_rsa.thumbprint().unwrap());
}

#[test]
fn private_keys_of_every_type_load_and_export_pyjwt_equal_public_jwks() {
    let pyjwt = JwkSet::from_slice(fixture!("pyjwt/jwks.json").as_bytes()).unwrap();
    for (pem, alg) in [
        (fixture!("pyjwt/p256-private.pem"), Algorithm::ES256),
        (fixture!("pyjwt/p384-private.pem"), Algorithm::ES384),
        (fixture!("pyjwt/ed25519-private.pem"), Algorithm::EdDSA),
    ] {
        let key = SigningKey::from_pem(pem, alg).unwrap();
        let theirs = pyjwt
            .keys
            .iter()
            .find(|k| k.kid() == Some(&format!("pyjwt-{alg}")))
            .unwrap();
        assert_eq!(
            key.public_jwk().thumbprint().unwrap(),
            theirs.thumbprint().unwrap(),
            "{alg}"
        );
    }
}

/// Hex SHA-256, to match tokens with PyJWT's recorded verdicts.
fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn tokens_we_signed_get_the_same_verdict_from_pyjwt_and_from_us() {
    let jwks = JwkSet::from_slice(fixture!("ours/jwks.json").as_bytes()).unwrap();
    let tokens: Value = serde_json::from_str(fixture!("ours/tokens.json")).unwrap();
    let verdicts: Value = serde_json::from_str(fixture!("ours/pyjwt-verdicts.json")).unwrap();
    let tokens = tokens.as_array().unwrap();
    let verdicts = verdicts["verdicts"].as_array().unwrap();
    assert_eq!(tokens.len(), 18);
    assert_eq!(tokens.len(), verdicts.len());
    let verifier = all_algs();
    let mut valid_algs = Vec::new();
    for (entry, verdict) in tokens.iter().zip(verdicts) {
        let token = entry["token"].as_str().unwrap();
        assert_eq!(
            verdict["sha256"].as_str().unwrap(),
            sha256_hex(token),
            "verdict belongs to this token"
        );
        let pyjwt_valid = verdict["valid"].as_bool().unwrap();
        assert_eq!(
            pyjwt_valid,
            entry["expect_valid"].as_bool().unwrap(),
            "PyJWT verdict for {}",
            entry["alg"]
        );
        let jws = verifier.parse(token).unwrap();
        let key = jwks.find(jws.kid(), jws.algorithm()).unwrap();
        let ours = verifier.verify::<Value>(&jws, &key);
        match (pyjwt_valid, ours) {
            (true, Ok(claims)) => {
                assert_eq!(claims["sub"], verdict["sub"]);
                valid_algs.push(jws.algorithm());
            }
            (false, Err(err)) => assert_eq!(err, lti_jose::Error::BadSignature),
            (pyjwt, ours) => panic!("PyJWT says valid={pyjwt}, we say {ours:?}"),
        }
    }
    assert_eq!(valid_algs, Algorithm::ALL);
}
