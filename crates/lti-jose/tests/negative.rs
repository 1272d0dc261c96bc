//! Every rejection path, each asserting its specific error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use lti_jose::dangerous::decode_unverified;
use lti_jose::{
    Algorithm, Audience, CompactJws, Error, FixedClock, Header, Jwk, JwkSet, KeySource, Limits,
    SigningKey, TimeValidation, Verifier, b64, validate_times,
};
use ring::hmac;
use serde_json::{Value, json};

const RSA_PEM: &str = include_str!("../../../tests/fixtures/lti-jose/pyjwt/rsa-private.pem");
const RSA_PUBLIC_PEM: &str = include_str!("../../../tests/fixtures/lti-jose/pyjwt/rsa-public.pem");
const P256_PEM: &str = include_str!("../../../tests/fixtures/lti-jose/pyjwt/p256-private.pem");
const OTHER_RSA_PEM: &str =
    include_str!("../../../tests/fixtures/lti-jose/rfc7515/a2-rs256-private.pem");

fn rsa() -> SigningKey {
    SigningKey::from_pem(RSA_PEM, Algorithm::RS256).unwrap()
}

fn rs256() -> Verifier {
    Verifier::new(&[Algorithm::RS256]).unwrap()
}

fn claims() -> Value {
    json!({ "iss": "https://issuer.example", "sub": "u1", "exp": 4_000_000_000u64 })
}

/// A token with an arbitrary header and payload JSON and a given signature.
fn raw_token(header: &str, payload: &str, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(payload.as_bytes()),
        b64::encode(sig)
    )
}

/// Signs arbitrary header/payload bytes with `key`, bypassing `sign`'s serializer.
fn signed_raw(header: &str, payload: &str, key: &SigningKey) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(payload.as_bytes())
    );
    let sig = key.sign_bytes(input.as_bytes()).unwrap();
    format!("{input}.{}", b64::encode(&sig))
}

fn verify(token: &str, key: &SigningKey) -> Result<Value, Error> {
    rs256().verify_token(token, &key.verifying_key())
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a static key source must be ready at once"),
    }
}

#[test]
fn alg_none_is_rejected_as_unsupported() {
    let token = format!(
        "{}.{}.",
        b64::encode(br#"{"alg":"none"}"#),
        b64::encode(br#"{"sub":"x"}"#)
    );
    assert_eq!(
        verify(&token, &rsa()).unwrap_err().code(),
        "malformed",
        "empty signature segment"
    );
    let token = raw_token(r#"{"alg":"none"}"#, r#"{"sub":"x"}"#, b"x");
    assert_eq!(
        verify(&token, &rsa()).unwrap_err(),
        Error::UnsupportedAlgorithm {
            found: "none".to_owned()
        }
    );
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    let key = rsa();
    let header = format!(r#"{{"alg":"HS256","kid":"{}"}}"#, key.kid());
    let input = format!(
        "{}.{}",
        b64::encode(header.as_bytes()),
        b64::encode(br#"{"sub":"admin"}"#)
    );
    let mac = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, RSA_PUBLIC_PEM.as_bytes()),
        input.as_bytes(),
    );
    let token = format!("{input}.{}", b64::encode(mac.as_ref()));
    assert_eq!(
        verify(&token, &key).unwrap_err(),
        Error::UnsupportedAlgorithm {
            found: "HS256".to_owned()
        }
    );
}

#[test]
fn algorithm_not_on_the_allow_list_is_rejected() {
    let ec = SigningKey::from_pem(P256_PEM, Algorithm::ES256).unwrap();
    let token = lti_jose::sign(&claims(), &ec).unwrap();
    let err = rs256()
        .verify_token::<Value>(&token, &ec.verifying_key())
        .unwrap_err();
    assert_eq!(
        err,
        Error::AlgorithmNotAllowed {
            found: "ES256".to_owned(),
            allowed: "RS256".to_owned()
        }
    );
}

#[test]
fn header_alg_different_from_the_key_algorithm_is_a_mismatch() {
    let rs384 = SigningKey::from_pem(RSA_PEM, Algorithm::RS384).unwrap();
    let token = lti_jose::sign(&claims(), &rs384).unwrap();
    let verifier = Verifier::new(&[Algorithm::RS256, Algorithm::RS384]).unwrap();
    let err = verifier
        .verify_token::<Value>(&token, &rsa().verifying_key())
        .unwrap_err();
    assert_eq!(err.code(), "key_algorithm_mismatch", "{err}");
}

#[test]
fn empty_allow_list_is_an_error() {
    assert_eq!(Verifier::new(&[]).unwrap_err(), Error::EmptyAllowList);
}

fn two_key_set() -> (SigningKey, SigningKey, JwkSet) {
    let a = rsa().with_kid("a");
    let b = SigningKey::from_pem(OTHER_RSA_PEM, Algorithm::RS256)
        .unwrap()
        .with_kid("b");
    let set = JwkSet {
        keys: vec![a.public_jwk(), b.public_jwk()],
    };
    (a, b, set)
}

#[test]
fn missing_kid_with_several_candidate_keys_is_ambiguous() {
    let (_, _, set) = two_key_set();
    assert_eq!(
        set.find(None, Algorithm::RS256).unwrap_err(),
        Error::AmbiguousKey { candidates: 2 }
    );
}

#[test]
fn missing_kid_with_one_usable_key_selects_it() {
    let (a, _, mut set) = two_key_set();
    set.keys[1].alg = Some("PS256".to_owned());
    assert_eq!(
        set.find(None, Algorithm::RS256).unwrap().kid(),
        Some(a.kid())
    );
}

#[test]
fn unknown_kid_is_rejected() {
    let (_, _, set) = two_key_set();
    assert_eq!(
        set.find(Some("zzz"), Algorithm::RS256).unwrap_err(),
        Error::UnknownKid {
            kid: "zzz".to_owned()
        }
    );
}

#[test]
fn duplicate_kid_is_ambiguous() {
    let (_, _, mut set) = two_key_set();
    set.keys[1].kid = Some("a".to_owned());
    assert_eq!(
        set.find(Some("a"), Algorithm::RS256).unwrap_err(),
        Error::AmbiguousKey { candidates: 2 }
    );
}

#[test]
fn empty_key_set_has_no_keys() {
    assert_eq!(
        JwkSet::default().find(None, Algorithm::RS256).unwrap_err(),
        Error::NoKeys
    );
}

#[test]
fn key_that_cannot_do_the_algorithm_is_a_mismatch() {
    let (_, _, set) = two_key_set();
    let err = set.find(Some("a"), Algorithm::ES256).unwrap_err();
    assert!(
        matches!(err, Error::KeyAlgorithmMismatch { ref found, .. } if found == "an RSA key"),
        "{err}"
    );
}

#[test]
fn jwk_own_alg_restriction_is_honoured() {
    let (_, _, set) = two_key_set();
    // The JWK says alg RS256; PS256 with the same RSA key is refused.
    let err = set.find(Some("a"), Algorithm::PS256).unwrap_err();
    assert!(
        matches!(err, Error::KeyAlgorithmMismatch { ref found, .. } if found.contains("RS256")),
        "{err}"
    );
}

#[test]
fn jwk_with_use_enc_is_refused() {
    let mut jwk = rsa().public_jwk();
    jwk.use_ = Some("enc".to_owned());
    let err = jwk.to_verifying_key(Algorithm::RS256).unwrap_err();
    assert!(
        matches!(err, Error::KeyAlgorithmMismatch { ref found, .. } if found.contains("enc")),
        "{err}"
    );
}

#[test]
fn jwk_whose_key_ops_exclude_verify_is_refused() {
    let mut jwk = rsa().public_jwk();
    jwk.key_ops = Some(vec!["encrypt".to_owned()]);
    assert_eq!(
        jwk.to_verifying_key(Algorithm::RS256).unwrap_err().code(),
        "key_algorithm_mismatch"
    );
}

#[test]
fn wrong_key_gives_bad_signature() {
    let token = lti_jose::sign(&claims(), &rsa()).unwrap();
    let other = SigningKey::from_pem(OTHER_RSA_PEM, Algorithm::RS256).unwrap();
    assert_eq!(verify(&token, &other).unwrap_err(), Error::BadSignature);
}

#[test]
fn tampered_payload_gives_bad_signature() {
    let key = rsa();
    let token = lti_jose::sign(&claims(), &key).unwrap();
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = b64::encode(br#"{"iss":"https://issuer.example","sub":"admin","exp":4000000000}"#);
    assert_eq!(
        verify(&parts.join("."), &key).unwrap_err(),
        Error::BadSignature
    );
}

#[test]
fn truncated_signature_gives_bad_signature() {
    let key = rsa();
    let token = lti_jose::sign(&claims(), &key).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = b64::decode(sig).unwrap();
    let truncated = format!("{input}.{}", b64::encode(&sig[..sig.len() - 3]));
    assert_eq!(verify(&truncated, &key).unwrap_err(), Error::BadSignature);
    // Cutting the encoded text mid-symbol is caught by the strict base64url decoder.
    let err = verify(&token[..token.len() - 1], &key).unwrap_err();
    assert!(
        matches!(err, Error::Base64 { ref found } if found.contains("length")),
        "{err}"
    );
    let err = verify(&token[..token.len() - 4], &key).unwrap_err();
    assert!(
        matches!(err, Error::Base64 { ref found } if found.contains("trailing")),
        "{err}"
    );
}

#[test]
fn two_segments_are_malformed() {
    let token = lti_jose::sign(&claims(), &rsa()).unwrap();
    let two = token.rsplit_once('.').unwrap().0;
    let err = verify(two, &rsa()).unwrap_err();
    assert!(
        matches!(err, Error::Malformed { ref found, .. } if found == "2"),
        "{err}"
    );
}

#[test]
fn four_segments_are_malformed() {
    let token = lti_jose::sign(&claims(), &rsa()).unwrap();
    let err = verify(&format!("{token}.e30"), &rsa()).unwrap_err();
    assert!(
        matches!(err, Error::Malformed { ref found, .. } if found == "4"),
        "{err}"
    );
}

#[test]
fn extra_segments_are_named_before_anything_else_is_wrong() {
    let token = lti_jose::sign(&claims(), &rsa()).unwrap();
    let (header, rest) = token.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let half = payload.len() / 2;
    let cases = [
        // A dot inside the payload: 4 segments, the payload otherwise valid base64url.
        format!(
            "{header}.{}.{}.{signature}",
            &payload[..half],
            &payload[half..]
        ),
        // And with a header that is not base64url, and with no signature.
        format!("!!.{}.{}.{signature}", &payload[..half], &payload[half..]),
        format!("{header}.a.b."),
        // Five segments.
        format!("{header}.a.b.c.{signature}"),
    ];
    for (case, expected) in cases.iter().zip(["4", "4", "4", "5"]) {
        let err = verify(case, &rsa()).unwrap_err();
        assert!(
            matches!(err, Error::Malformed { ref found, .. } if found == expected),
            "{case}: {err}"
        );
    }
}

#[test]
fn base64_padding_is_rejected_in_every_segment() {
    let key = rsa();
    // The RS256 header with a kid of this length encodes to a length needing padding.
    let token = signed_raw(r#"{"alg":"RS256","x":1}"#, r#"{"exp":4000000000}"#, &key);
    let parts: Vec<&str> = token.split('.').collect();
    for i in 0..3 {
        let mut padded: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
        padded[i].push('=');
        let err = verify(&padded.join("."), &key).unwrap_err();
        assert!(
            matches!(err, Error::Base64 { ref found } if found.contains("padding") || found.contains("length")),
            "segment {i}: {err}"
        );
    }
}

#[test]
fn oversized_token_is_rejected_before_parsing() {
    let limits = Limits {
        max_token_len: 100,
        ..Limits::default()
    };
    let token = "a".repeat(101);
    assert_eq!(
        CompactJws::parse(&token, &limits).unwrap_err(),
        Error::TokenTooLarge {
            limit: 100,
            found: 101
        }
    );
    let big = json!({ "blob": "x".repeat(20_000) });
    let token = lti_jose::sign(&big, &rsa()).unwrap();
    assert_eq!(
        verify(&token, &rsa()).unwrap_err().code(),
        "token_too_large"
    );
}

#[test]
fn oversized_header_is_rejected() {
    let mut header = Header::new(Algorithm::RS256);
    header
        .extra
        .insert("pad".to_owned(), Value::String("p".repeat(3000)));
    let token = lti_jose::sign_with_header(&header, &claims(), &rsa()).unwrap();
    assert_eq!(
        verify(&token, &rsa()).unwrap_err().code(),
        "header_too_large"
    );
}

#[test]
fn header_json_with_trailing_garbage_is_rejected() {
    let token = raw_token(r#"{"alg":"RS256"}xyz"#, "{}", b"sig");
    let err = verify(&token, &rsa()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidJson { part: "header", .. }),
        "{err}"
    );
}

#[test]
fn payload_json_with_trailing_garbage_is_rejected_after_the_signature_checks() {
    let key = rsa();
    let token = signed_raw(r#"{"alg":"RS256"}"#, r#"{"sub":"x"} {"sub":"admin"}"#, &key);
    let err = verify(&token, &key).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidJson {
                part: "payload",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn duplicate_header_members_are_rejected() {
    let token = raw_token(r#"{"alg":"RS256","alg":"ES256"}"#, "{}", b"sig");
    let err = verify(&token, &rsa()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidJson { part: "header", ref reason } if reason.contains("twice")),
        "{err}"
    );
}

#[test]
fn header_that_is_not_an_object_or_lacks_alg_is_rejected() {
    let err = verify(&raw_token("[1]", "{}", b"s"), &rsa()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidJson { part: "header", .. }),
        "{err}"
    );
    let err = verify(&raw_token(r#"{"kid":"a"}"#, "{}", b"s"), &rsa()).unwrap_err();
    assert!(
        matches!(err, Error::Malformed { ref expected, .. } if expected.contains("alg")),
        "{err}"
    );
    let err = verify(&raw_token(r#"{"alg":"RS256","kid":7}"#, "{}", b"s"), &rsa()).unwrap_err();
    assert!(
        matches!(err, Error::Malformed { ref found, .. } if found == "a number"),
        "{err}"
    );
}

#[test]
fn crit_header_is_rejected() {
    let err = verify(
        &raw_token(r#"{"alg":"RS256","crit":["b64"],"b64":false}"#, "{}", b"s"),
        &rsa(),
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::Malformed { ref found, .. } if found.contains("crit")),
        "{err}"
    );
}

#[test]
fn payload_that_does_not_match_the_target_type_is_invalid_json() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Needs {
        must_exist: String,
    }
    let key = rsa();
    let token = lti_jose::sign(&claims(), &key).unwrap();
    let err = rs256()
        .verify_token::<Needs>(&token, &key.verifying_key())
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidJson { part: "payload", ref reason } if reason.contains("must_exist")),
        "{err}"
    );
}

#[test]
fn sign_with_header_refuses_a_different_algorithm() {
    let err =
        lti_jose::sign_with_header(&Header::new(Algorithm::PS256), &claims(), &rsa()).unwrap_err();
    assert_eq!(err.code(), "key_algorithm_mismatch");
}

#[test]
fn sign_with_header_keeps_extra_members_and_fills_the_kid() {
    let key = rsa();
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT+custom".to_owned());
    header
        .extra
        .insert("x5u".to_owned(), json!("https://example.com/x5u"));
    let token = lti_jose::sign_with_header(&header, &claims(), &key).unwrap();
    let jws = rs256().parse(&token).unwrap();
    assert_eq!(jws.kid(), Some(key.kid()));
    assert_eq!(jws.header().typ.as_deref(), Some("JWT+custom"));
    assert_eq!(jws.header().extra["x5u"], "https://example.com/x5u");
}

#[test]
fn dangerous_decode_reads_without_a_key_but_still_parses_strictly() {
    let token = lti_jose::sign(&claims(), &rsa()).unwrap();
    let (header, payload): (Header, Value) = decode_unverified(&token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(payload, claims());
    assert_eq!(
        decode_unverified::<Value>("a.b").unwrap_err().code(),
        "malformed"
    );
}

#[test]
fn static_jwk_set_is_a_key_source() {
    let (a, _, set) = two_key_set();
    let token = lti_jose::sign(&claims(), &a).unwrap();
    let verified: Value =
        block_on(rs256().verify_with_source(&token, &set, "https://ignored.example/jwks")).unwrap();
    assert_eq!(verified, claims());
    let err = block_on(set.key("u", Some("nope"), Algorithm::RS256)).unwrap_err();
    assert_eq!(err.code(), "unknown_kid");
    // The allow-list is checked before the key source is asked.
    let err = block_on(
        Verifier::new(&[Algorithm::ES256])
            .unwrap()
            .verify_with_source::<Value>(&token, &set, "u"),
    )
    .unwrap_err();
    assert_eq!(err.code(), "algorithm_not_allowed");
}

#[test]
fn jwks_members_that_cannot_be_parsed_are_skipped() {
    let good = rsa().public_jwk();
    let doc = json!({ "keys": [
        good,
        { "kty": "oct", "k": "c2VjcmV0" },
        { "kty": "RSA", "e": "AQAB" },
        { "kty": "RSA", "n": "AQAB==", "e": "AQAB" },
        { "kty": "RSA", "n": b64::encode(&[0xc5; 128]), "e": "AQAB" },
        { "kty": "EC", "crv": "P-521", "x": "AA", "y": "AA" },
        { "kty": "EC", "crv": "P-256", "x": b64::encode(&[1; 31]), "y": b64::encode(&[1; 32]) },
        { "kty": "OKP", "crv": "X25519", "x": b64::encode(&[1; 32]) },
        { "kty": 7 },
        "not an object",
        null
    ]});
    let set = JwkSet::from_slice(doc.to_string().as_bytes()).unwrap();
    assert_eq!(set.keys, vec![good]);
}

#[test]
fn jwks_private_members_are_dropped() {
    let mut jwk = serde_json::to_value(rsa().public_jwk()).unwrap();
    jwk["d"] = json!("secret-exponent");
    let set = JwkSet::from_slice(json!({ "keys": [jwk] }).to_string().as_bytes()).unwrap();
    assert!(!set.keys[0].extra.contains_key("d"));
}

#[test]
fn jwks_document_errors_are_specific() {
    assert_eq!(
        JwkSet::from_slice(b"[]").unwrap_err().code(),
        "invalid_json"
    );
    assert_eq!(
        JwkSet::from_slice(br#"{"keys":{}}"#).unwrap_err().code(),
        "malformed"
    );
    assert_eq!(
        JwkSet::from_slice(br#"{"keys":[]} x"#).unwrap_err().code(),
        "invalid_json"
    );
    assert_eq!(
        JwkSet::from_slice(br#"{"keys":[]}"#).unwrap(),
        JwkSet::default()
    );
    // A document already decoded as JSON gets the same verdicts.
    assert_eq!(
        JwkSet::from_value(&json!([])).unwrap_err().code(),
        "invalid_json"
    );
    assert_eq!(
        JwkSet::from_value(&json!({"keys": {}})).unwrap_err().code(),
        "malformed"
    );
    assert_eq!(
        JwkSet::from_value(&json!({"keys": []})).unwrap(),
        JwkSet::default()
    );
}

#[test]
fn a_decoded_jwk_set_keeps_exactly_the_keys_the_byte_parser_keeps() {
    let good = rsa().public_jwk();
    let doc = json!({"keys": [
        good,
        {"kty": "RSA", "kid": "no-modulus", "e": "AQAB"},
        {"kty": "oct", "kid": "symmetric", "k": "c2VjcmV0"},
        "not a key",
        {"kty": "EC", "kid": "bad-curve", "crv": "P-999", "x": "AA", "y": "AA"},
    ]});
    let from_bytes = JwkSet::from_slice(&serde_json::to_vec(&doc).unwrap()).unwrap();
    let from_value = JwkSet::from_value(&doc).unwrap();
    assert_eq!(from_value, from_bytes);
    assert_eq!(from_value.keys.len(), 1);
    assert_eq!(from_value.keys[0].kid(), good.kid());
}

#[test]
fn jwk_leading_zero_modulus_byte_is_accepted() {
    let key = rsa();
    let mut jwk: Jwk = key.public_jwk();
    let mut n = b64::decode(jwk.n.as_deref().unwrap()).unwrap();
    n.insert(0, 0);
    jwk.n = Some(b64::encode(&n));
    let token = lti_jose::sign(&claims(), &key).unwrap();
    let verified: Value = rs256()
        .verify_token(&token, &jwk.to_verifying_key(Algorithm::RS256).unwrap())
        .unwrap();
    assert_eq!(verified, claims());
}

#[test]
fn rsa_private_key_for_an_ec_algorithm_is_a_mismatch() {
    assert_eq!(
        SigningKey::from_pem(RSA_PEM, Algorithm::ES256)
            .unwrap_err()
            .code(),
        "key_algorithm_mismatch"
    );
    let pkcs1 = include_str!("../../../tests/fixtures/lti-jose/pyjwt/rsa-private-pkcs1.pem");
    assert_eq!(
        SigningKey::from_pem(pkcs1, Algorithm::EdDSA)
            .unwrap_err()
            .code(),
        "key_algorithm_mismatch"
    );
}

#[test]
fn public_pem_for_the_wrong_algorithm_is_a_mismatch() {
    let p256 = include_str!("../../../tests/fixtures/lti-jose/pyjwt/p256-public.pem");
    let err = lti_jose::VerifyingKey::from_public_pem(p256, Algorithm::ES384).unwrap_err();
    assert_eq!(err.code(), "key_algorithm_mismatch");
    let err =
        lti_jose::VerifyingKey::from_public_pem(RSA_PUBLIC_PEM, Algorithm::EdDSA).unwrap_err();
    assert_eq!(err.code(), "key_algorithm_mismatch");
    let err = lti_jose::VerifyingKey::from_public_pem(RSA_PEM, Algorithm::RS256).unwrap_err();
    assert!(
        matches!(err, Error::InvalidKey { ref found, .. } if found == "PRIVATE KEY"),
        "{err}"
    );
}

const NOW: u64 = 1_700_000_000;

fn times(claims: Value, validation: TimeValidation) -> Result<(), Error> {
    validate_times(&claims, &validation, &FixedClock(NOW))
}

#[test]
fn expired_token_is_rejected_beyond_the_leeway_only() {
    let v = TimeValidation::default();
    assert_eq!(times(json!({ "exp": NOW - 60 }), v), Ok(()));
    assert_eq!(
        times(json!({ "exp": NOW - 61 }), v),
        Err(Error::TokenExpired {
            exp: NOW - 61,
            now: NOW,
            leeway: 60
        })
    );
}

#[test]
fn future_nbf_is_rejected() {
    let v = TimeValidation::default();
    assert_eq!(
        times(json!({ "exp": NOW + 600, "nbf": NOW + 60 }), v),
        Ok(())
    );
    assert_eq!(
        times(json!({ "exp": NOW + 600, "nbf": NOW + 61 }), v),
        Err(Error::NotYetValid {
            nbf: NOW + 61,
            now: NOW,
            leeway: 60
        })
    );
}

#[test]
fn iat_in_the_future_is_rejected() {
    assert_eq!(
        times(
            json!({ "exp": NOW + 600, "iat": NOW + 120 }),
            TimeValidation::default()
        ),
        Err(Error::IssuedInFuture {
            iat: NOW + 120,
            now: NOW,
            leeway: 60
        })
    );
}

#[test]
fn token_older_than_max_age_is_rejected() {
    let v = TimeValidation {
        max_age_secs: Some(300),
        ..TimeValidation::default()
    };
    assert_eq!(
        times(json!({ "exp": NOW + 600, "iat": NOW - 360 }), v),
        Ok(())
    );
    assert_eq!(
        times(json!({ "exp": NOW + 600, "iat": NOW - 361 }), v),
        Err(Error::TokenTooOld {
            iat: NOW - 361,
            now: NOW,
            max_age: 300,
            leeway: 60
        })
    );
    assert_eq!(
        times(json!({ "exp": NOW + 600 }), v),
        Err(Error::MissingClaim { claim: "iat" })
    );
}

#[test]
fn missing_exp_is_rejected_unless_not_required() {
    assert_eq!(
        times(json!({}), TimeValidation::default()),
        Err(Error::MissingClaim { claim: "exp" })
    );
    assert_eq!(
        times(
            json!({}),
            TimeValidation {
                require_exp: false,
                ..TimeValidation::default()
            }
        ),
        Ok(())
    );
    let v = TimeValidation {
        require_iat: true,
        ..TimeValidation::default()
    };
    assert_eq!(
        times(json!({ "exp": NOW }), v),
        Err(Error::MissingClaim { claim: "iat" })
    );
}

#[test]
fn non_numeric_dates_are_invalid_claims() {
    let v = TimeValidation::default();
    for bad in [json!("1700000000"), json!(-5), json!(null), json!(true)] {
        let err = times(json!({ "exp": bad }), v).unwrap_err();
        assert!(
            matches!(err, Error::InvalidClaim { claim: "exp", .. }),
            "{err}"
        );
    }
    assert_eq!(times(json!({ "exp": (NOW + 10) as f64 + 0.5 }), v), Ok(()));
    assert_eq!(times(json!([1]), v).unwrap_err().code(), "invalid_claim");
}

#[test]
fn audience_is_a_string_or_an_array() {
    let one: Audience = serde_json::from_value(json!("c1")).unwrap();
    let many: Audience = serde_json::from_value(json!(["c1", "c2"])).unwrap();
    assert!(one.contains("c1") && !one.contains("c2") && one.len() == 1);
    assert!(many.contains("c2") && !many.contains("c3") && many.len() == 2);
    assert_eq!(many.iter().collect::<Vec<_>>(), ["c1", "c2"]);
    let err = serde_json::from_value::<Audience>(json!(7)).unwrap_err();
    assert!(err.to_string().contains("Audience"), "{err}");
    assert!(
        serde_json::from_value::<Audience>(json!([]))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn errors_never_contain_the_token_or_key_material() {
    let key = rsa();
    let token = lti_jose::sign(&claims(), &key).unwrap();
    let sig = token.rsplit_once('.').unwrap().1;
    let n = key.public_jwk().n.unwrap();
    let other = SigningKey::from_pem(OTHER_RSA_PEM, Algorithm::RS256).unwrap();
    let errors = [
        verify(&token, &other).unwrap_err(),
        verify(&token[..token.len() - 3], &key).unwrap_err(),
        verify(&format!("{token}.x"), &key).unwrap_err(),
    ];
    for err in errors {
        let text = err.to_string();
        assert!(!text.contains(sig) && !text.contains(&n[..40]), "{text}");
    }
    let long_kid = "k".repeat(5000);
    let err = JwkSet::default()
        .find(Some(&long_kid), Algorithm::RS256)
        .unwrap_err();
    assert!(
        err.to_string().len() < 300,
        "attacker-controlled kid is clipped"
    );
}

#[test]
fn keys_and_verifier_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<SigningKey>();
    assert_send_sync::<lti_jose::VerifyingKey>();
    assert_send_sync::<Verifier>();
    assert_send_sync::<JwkSet>();
    assert_send_sync::<Error>();
}

#[test]
fn parsed_token_debug_does_not_print_the_payload_or_signature() {
    let token = lti_jose::sign(&json!({ "secret_claim": "s3cr3t-value" }), &rsa()).unwrap();
    let jws = rs256().parse(&token).unwrap();
    let debug = format!("{jws:?}");
    assert!(
        !debug.contains("s3cr3t") && !debug.contains(token.rsplit_once('.').unwrap().1),
        "{debug}"
    );
    assert!(debug.contains("RS256"), "{debug}");
}

#[test]
fn single_verifying_key_is_a_key_source_that_checks_kid_and_alg() {
    let key = rsa().with_kid("k1");
    let public = key.verifying_key();
    assert_eq!(
        block_on(public.key("u", Some("k1"), Algorithm::RS256))
            .unwrap()
            .kid(),
        Some("k1")
    );
    assert_eq!(
        block_on(public.key("u", None, Algorithm::RS256))
            .unwrap()
            .kid(),
        Some("k1")
    );
    assert_eq!(
        block_on(public.key("u", Some("k2"), Algorithm::RS256)).unwrap_err(),
        Error::UnknownKid {
            kid: "k2".to_owned()
        }
    );
    assert_eq!(
        block_on(public.key("u", Some("k1"), Algorithm::PS256))
            .unwrap_err()
            .code(),
        "key_algorithm_mismatch"
    );
    let shared: std::sync::Arc<dyn KeySource> = std::sync::Arc::new(public);
    let token = lti_jose::sign(&claims(), &key).unwrap();
    let verified: Value = block_on(rs256().verify_with_source(&token, &shared, "u")).unwrap();
    assert_eq!(verified, claims());
}
