//! Load-tolerant throughput ratio of RS256 verification through lti-jose versus bare
//! ring, for the machine-noise section of docs/performance/lti-jose.md. Criterion
//! (`benches/jws_verify.rs`) is the primary measurement; this interleaves the variants
//! in short rounds and keeps each one's best round, so a busy machine skews them alike.
//!
//! Run: `cargo run -p lti-jose --release --example verify-ratio`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use lti_jose::{Algorithm, SigningKey, Verifier};
use ring::signature::{self, UnparsedPublicKey};
use serde::de::IgnoredAny;
use serde_json::Value;

const ROUNDS: usize = 300;
const PER_ROUND: u32 = 40;

fn main() {
    let pem = include_str!("../../../tests/fixtures/lti-jose/pyjwt/rsa-private.pem");
    let key = SigningKey::from_pem(pem, Algorithm::RS256).unwrap();
    let claims: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/lti-jose/lti-id-token-claims.json"
    ))
    .unwrap();
    let token = lti_jose::sign(&claims, &key).unwrap();
    let public = key.verifying_key();
    let verifier = Verifier::new(&[Algorithm::RS256]).unwrap();
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = lti_jose::b64::decode(sig).unwrap();
    let pkcs1 = pkcs1_public_der(&key);
    let ring_key = UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, pkcs1);

    let variants: [(&str, &dyn Fn()); 4] = [
        ("bare ring UnparsedPublicKey::verify", &|| {
            ring_key.verify(input.as_bytes(), &sig).unwrap()
        }),
        ("lti-jose parse + verify + decode to Value", &|| {
            let jws = verifier.parse(&token).unwrap();
            black_box(verifier.verify::<Value>(&jws, &public).unwrap());
        }),
        ("lti-jose parse + verify + decode to a struct", &|| {
            let jws = verifier.parse(&token).unwrap();
            black_box(verifier.verify::<Registered>(&jws, &public).unwrap());
        }),
        ("lti-jose parse + verify, payload skipped", &|| {
            let jws = verifier.parse(&token).unwrap();
            black_box(verifier.verify::<IgnoredAny>(&jws, &public).unwrap());
        }),
    ];
    // Instruction counting (callgrind): run one variant N times and exit, e.g.
    // LTI_COUNT_VARIANT=1 LTI_COUNT_N=1000 valgrind --tool=callgrind <binary>; the
    // per-operation count is (Ir(N) - Ir(0)) / N.
    if let Ok(variant) = std::env::var("LTI_COUNT_VARIANT") {
        let index: usize = variant.parse().expect("LTI_COUNT_VARIANT is 0..=3");
        let n: u32 = std::env::var("LTI_COUNT_N").map_or(1000, |n| n.parse().unwrap());
        for _ in 0..n {
            (variants[index].1)();
        }
        return;
    }
    let mut best = [f64::MAX; 4];
    for _ in 0..ROUNDS {
        for (slot, (_, run)) in best.iter_mut().zip(&variants) {
            let start = Instant::now();
            for _ in 0..PER_ROUND {
                run();
            }
            *slot = slot.min(start.elapsed().as_secs_f64() * 1e6 / f64::from(PER_ROUND));
        }
    }
    println!(
        "token {} bytes; best of {ROUNDS} interleaved rounds of {PER_ROUND}",
        token.len()
    );
    for ((name, _), micros) in variants.iter().zip(best) {
        println!(
            "{name:<46} {micros:>8.2} µs  ratio to bare ring {:.2}",
            best[0] / micros
        );
    }
}

/// A typed view of the registered claims; the LTI claims are skipped.
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

/// PKCS#1 RSAPublicKey DER for ring, built from the public JWK.
fn pkcs1_public_der(key: &SigningKey) -> Vec<u8> {
    fn push_len(out: &mut Vec<u8>, len: usize) {
        match len {
            0..0x80 => out.push(len as u8),
            0x80..0x100 => out.extend([0x81, len as u8]),
            _ => out.extend([0x82, (len >> 8) as u8, len as u8]),
        }
    }
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let mut content = bytes.to_vec();
        if content[0] & 0x80 != 0 {
            content.insert(0, 0);
        }
        let mut out = vec![0x02];
        push_len(&mut out, content.len());
        out.extend(content);
        out
    }
    let jwk = key.public_jwk();
    let mut body = integer(&lti_jose::b64::decode(jwk.n.as_deref().unwrap()).unwrap());
    body.extend(integer(
        &lti_jose::b64::decode(jwk.e.as_deref().unwrap()).unwrap(),
    ));
    let mut out = vec![0x30];
    push_len(&mut out, body.len());
    out.extend(body);
    out
}
