//! RS256 verify and sign of a ~2 KB LTI-style id_token through `lti-jose`, against
//! bare ring on the same signing input and signature.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lti_jose::{Algorithm, JwkSet, SigningKey, Verifier};
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

const RSA_PEM: &str = include_str!("../../../tests/fixtures/lti-jose/pyjwt/rsa-private.pem");
const RSA_PKCS1_PEM: &str =
    include_str!("../../../tests/fixtures/lti-jose/pyjwt/rsa-private-pkcs1.pem");

/// Claims shaped like an LTI 1.3 resource link launch.
fn lti_claims() -> Value {
    let c = "https://purl.imsglobal.org/spec/lti/claim/";
    json!({
        "iss": "https://canvas.instructure.com",
        "sub": "a6d5c443-1f51-4783-ba1a-7686ffe3b54a",
        "aud": "10000000000001",
        "azp": "10000000000001",
        "exp": 4_000_000_000u64,
        "iat": 1_700_000_000u64,
        "nonce": "3f7b1c2a-8e0d-4c55-9a61-2d7f0b9e4a11",
        "name": "Ms Jane Marie Doe",
        "email": "jane.doe@example.edu",
        format!("{c}message_type"): "LtiResourceLinkRequest",
        format!("{c}version"): "1.3.0",
        format!("{c}deployment_id"): "12653:c2a2e5ee4f8e3b9e7e0c8c7e6b8b3f0d2e5b1a77",
        format!("{c}target_link_uri"): "https://tool.example.com/lti/launch/assignment/42",
        format!("{c}resource_link"): { "id": "200d101f-2c14-434a-a0f3-57c2a42369fd", "title": "Week 3 quiz", "description": "Quiz on chapters 4 and 5" },
        format!("{c}roles"): [
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
            "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student",
            "http://purl.imsglobal.org/vocab/lis/v2/system/person#User"
        ],
        format!("{c}context"): { "id": "c1d887f0a1a1f4a3c3a3d9e8e", "label": "BIO-101", "title": "Introduction to Biology", "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"] },
        format!("{c}tool_platform"): { "guid": "2d1c8e9ba3b44f6b9e7f7c0f2b1a5d3e", "product_family_code": "canvas" },
        format!("{c}custom"): { "canvas_course_id": "7", "section": "A" },
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": [
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                "https://purl.imsglobal.org/spec/lti-ags/scope/score"
            ],
            "lineitems": "https://canvas.example.edu/api/lti/courses/7/line_items",
            "lineitem": "https://canvas.example.edu/api/lti/courses/7/line_items/31"
        },
        "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
            "context_memberships_url": "https://canvas.example.edu/api/lti/courses/7/names_and_roles",
            "service_versions": ["2.0"]
        }
    })
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
