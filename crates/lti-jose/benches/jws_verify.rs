//! RS256 verify and sign of a ~2 KB LTI-style id_token through `lti-jose`, against
//! bare ring on the same signing input and signature.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lti_jose::{Algorithm, JwkSet, SigningKey, Verifier};
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair, RsaKeyPair, UnparsedPublicKey};
use serde_json::Value;

const RSA_PEM: &str = include_str!("../../../tests/fixtures/lti-jose/pyjwt/rsa-private.pem");
const RSA_PKCS1_PEM: &str =
    include_str!("../../../tests/fixtures/lti-jose/pyjwt/rsa-private-pkcs1.pem");

/// Claims shaped like an LTI 1.3 resource link launch (~2 KB of JSON).
fn lti_claims() -> Value {
    serde_json::from_str(include_str!(
        "../../../tests/fixtures/lti-jose/lti-id-token-claims.json"
    ))
    .unwrap()
}

/// A typed view of the registered claims (what a caller typically decodes into);
/// the LTI claims are skipped.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct Registered {
    iss: String,
    sub: String,
    aud: lti_jose::Audience,
    exp: u64,
    iat: u64,
    nonce: String,
}

fn bench(c: &mut Criterion) {
    let key = SigningKey::from_pem(RSA_PEM, Algorithm::RS256).unwrap();
    let claims = lti_claims();
    let token = lti_jose::sign(&claims, &key).unwrap();
    let jwks = JwkSet {
        keys: vec![key.public_jwk()],
    };
    let public = jwks.find(Some(key.kid()), Algorithm::RS256).unwrap();
    let verifier = Verifier::new(&[Algorithm::RS256]).unwrap();

    // Bare ring: the same signing input and signature, key already in ring's format.
    let ring_pair = RsaKeyPair::from_der(&pem_body(RSA_PKCS1_PEM)).unwrap();
    let spki_free_public = ring_pair.public_key().as_ref().to_vec();
    let (signing_input, sig_b64) = token.rsplit_once('.').unwrap();
    let sig = lti_jose::b64::decode(sig_b64).unwrap();
    let ring_public =
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, spki_free_public);
    ring_public.verify(signing_input.as_bytes(), &sig).unwrap();
    println!(
        "token length: {} bytes (payload JSON {} bytes)",
        token.len(),
        claims.to_string().len()
    );

    let mut group = c.benchmark_group("rs256_verify");
    group.bench_function("lti_jose_parse_verify_decode", |b| {
        b.iter(|| {
            let jws = verifier.parse(black_box(&token)).unwrap();
            let value: Value = verifier.verify(&jws, &public).unwrap();
            black_box(value)
        })
    });
    group.bench_function("lti_jose_parse_verify_typed", |b| {
        b.iter(|| {
            let jws = verifier.parse(black_box(&token)).unwrap();
            let typed: Registered = verifier.verify(&jws, &public).unwrap();
            black_box(typed)
        })
    });
    group.bench_function("lti_jose_parse_verify_skip_payload", |b| {
        b.iter(|| {
            let jws = verifier.parse(black_box(&token)).unwrap();
            let ignored: serde::de::IgnoredAny = verifier.verify(&jws, &public).unwrap();
            black_box(ignored)
        })
    });
    group.bench_function("bare_ring_verify", |b| {
        b.iter(|| {
            ring_public
                .verify(black_box(signing_input.as_bytes()), black_box(&sig))
                .unwrap()
        })
    });
    group.finish();
    let payload_json = lti_jose::b64::decode(token.split('.').nth(1).unwrap()).unwrap();
    c.bench_function("payload_decode_only/serde_json_value", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Value>(black_box(&payload_json)).unwrap()))
    });

    let rng = SystemRandom::new();
    let mut group = c.benchmark_group("rs256_sign");
    group.bench_function("lti_jose_sign", |b| {
        b.iter(|| lti_jose::sign(black_box(&claims), &key).unwrap())
    });
    group.bench_function("bare_ring_sign", |b| {
        let mut out = vec![0u8; ring_pair.public().modulus_len()];
        b.iter(|| {
            ring_pair
                .sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    black_box(signing_input.as_bytes()),
                    &mut out,
                )
                .unwrap();
            black_box(&out);
        })
    });
    group.finish();
}

/// Decodes a PEM body (the bench's own tiny helper; the crate's PEM reader is private).
fn pem_body(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

criterion_group!(benches, bench);
criterion_main!(benches);
