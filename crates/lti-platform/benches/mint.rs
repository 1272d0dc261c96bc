//! id_token minting (claims + RS256 sign) against a bare ring RS256 signature of the
//! same signing input. Target: minting at >= 90% of the bare signing throughput.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use lti_jose::{Algorithm, JwkSet, SigningKey};
use lti_platform::{
    LaunchSpec, MemoryToolRegistry, Platform, PlatformConfig, PlatformKeys, PlatformSecret,
    PlatformUser, ToolKeys, ToolRegistration,
};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

const PEM: &str = include_str!("../../../tests/fixtures/lti-platform/platform.pem");

fn bench_mint(c: &mut Criterion) {
    let tool = ToolRegistration::new(
        "client-1",
        "https://tool.example.com/login",
        "https://tool.example.com/launch",
        ToolKeys::Static(JwkSet::default()),
    )
    .with_deployment("dep-1")
    .with_scope("https://purl.imsglobal.org/spec/lti-ags/scope/score")
    .with_scope("https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly")
    .with_custom("user", "$User.id");
    let registry = Arc::new(MemoryToolRegistry::new());
    registry.register(tool.clone()).unwrap();
    let platform = Platform::new(
        PlatformConfig::new("https://lms.example.edu"),
        Arc::new(PlatformKeys::new(
            SigningKey::from_pem(PEM, Algorithm::RS256)
                .unwrap()
                .with_kid("k1"),
        )),
        PlatformSecret::from_bytes(&[1u8; 32]).unwrap(),
        registry,
        Arc::new(JwkSet::default()),
    )
    .unwrap();
    let user = PlatformUser::new("u-1")
        .with_name("Ada", "Lovelace")
        .with_email("ada@example.edu");
    let spec = LaunchSpec::resource_link("client-1", "dep-1", "u-1", "rl-1")
        .with_roles(["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"])
        .with_context("course-1", Some("C1"), Some("Course One"))
        .with_resource_link_title("Quiz")
        .with_line_item("1")
        .with_custom("title", "$Context.title");

    let token = platform
        .mint_id_token(&tool, &user, &spec, "nonce")
        .unwrap();
    let signing_input = token.rsplit_once('.').unwrap().0.as_bytes().to_vec();
    let body: String = PEM.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
    let rng = SystemRandom::new();
    let mut sig = vec![0u8; pair.public().modulus_len()];

    // Interleaved head-to-head (the machine is shared and noisy; alternating the two
    // operations exposes both to the same load). Medians of 300 pairs.
    let (mut bare, mut mint) = (Vec::with_capacity(300), Vec::with_capacity(300));
    for _ in 0..300 {
        let t0 = std::time::Instant::now();
        pair.sign(&RSA_PKCS1_SHA256, &rng, &signing_input, &mut sig)
            .unwrap();
        let t1 = std::time::Instant::now();
        std::hint::black_box(
            platform
                .mint_id_token(&tool, &user, &spec, "nonce")
                .unwrap(),
        );
        let t2 = std::time::Instant::now();
        bare.push(t1 - t0);
        mint.push(t2 - t1);
    }
    bare.sort();
    mint.sort();
    let (b, m) = (bare[150], mint[150]);
    println!(
        "interleaved medians: bare ring RS256 sign {b:?}, mint_id_token {m:?}, minting throughput = {:.1}% of bare signing",
        100.0 * b.as_secs_f64() / m.as_secs_f64()
    );

    let mut group = c.benchmark_group("id_token");
    group.bench_function("bare_ring_rs256_sign", |b| {
        b.iter(|| {
            pair.sign(
                &RSA_PKCS1_SHA256,
                &rng,
                std::hint::black_box(&signing_input),
                &mut sig,
            )
            .unwrap();
            std::hint::black_box(&sig);
        });
    });
    group.bench_function("mint_id_token", |b| {
        b.iter(|| {
            std::hint::black_box(
                platform
                    .mint_id_token(&tool, &user, &spec, "nonce")
                    .unwrap(),
            )
        });
    });
    group.bench_function("claims_and_json_only", |b| {
        b.iter(|| {
            let claims = platform
                .id_token_claims(&tool, &user, &spec, "nonce")
                .unwrap();
            std::hint::black_box(serde_json::to_vec(&claims).unwrap())
        });
    });
    group.finish();
}

criterion_group!(benches, bench_mint);
criterion_main!(benches);
