//! Our in-process workloads on the shared fixture, one core (a current-thread
//! runtime; `bench/run.sh` pins the process with `taskset`).
//!
//! Per-operation setup that is not part of the measured work (a fresh short-lived
//! store for each LTI 1.3 launch, so every launch uses an unused state and nonce:
//! the state is sealed by one real login and opens on every tool with the same
//! secret) is prepared in untimed batches; the peers do the same (a fresh session
//! holding the state and nonce per launch).

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use lti_jose::{Algorithm, JwkSet, KeySource, VerifyingKey};
use lti_platform::{
    LaunchSpec, MemoryToolRegistry, Platform, PlatformConfig, PlatformKeys, PlatformSecret,
    PlatformUser, ToolKeys, ToolRegistration,
};
use lti_registry::{
    Consumer, ConsumerStore, Deployment, KeySource as RegistrationKeys, OAuth1NonceStore,
    PlatformRegistration, SecretCipher, Store, SystemClock,
};
use lti_store::MemoryStore;
use lti_tool::{Tool, ToolRequest};
use lti11::{LaunchVerifier, OAuthVerifier, SignedRequest};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde_json::{Value, json};

use crate::emit;
use crate::fixture::{self, CLIENT_ID, DEPLOYMENT, ISS, NONCE, TARGET};

const COOKIE_SECRET: &[u8] = b"bench-cookie-secret-0123456789abcdef";
const BATCH: usize = 256;

/// A key source holding one resolved key (what a warm JWKS cache returns).
struct Resolved(VerifyingKey);

#[async_trait::async_trait]
impl KeySource for Resolved {
    async fn key(
        &self,
        _: &str,
        _: Option<&str>,
        _: Algorithm,
    ) -> Result<VerifyingKey, lti_jose::Error> {
        Ok(self.0.clone())
    }
}

/// Runs `batch` (which returns how many operations it timed and their on-wall time)
/// until `ms` milliseconds of measured time are accumulated; returns ops/s.
fn measure(ms: u64, mut batch: impl FnMut() -> (usize, Duration)) -> f64 {
    let budget = Duration::from_millis(ms);
    let (mut ops, mut spent) = (0usize, Duration::ZERO);
    while spent < budget {
        let (n, d) = batch();
        ops += n;
        spent += d;
    }
    ops as f64 / spent.as_secs_f64()
}

fn timed<F: FnMut()>(n: usize, mut f: F) -> (usize, Duration) {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    (n, t.elapsed())
}

fn memory_store() -> Store {
    Store::from_backend(Arc::new(MemoryStore::new(
        SecretCipher::insecure_plaintext_for_tests(),
        Arc::new(SystemClock),
    )))
}

/// The `Cookie` a browser sends back for `state`, as lti-tool documents it.
fn state_cookie(state: &str) -> String {
    use ring::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, COOKIE_SECRET);
    let mut msg = b"lti-tool state cookie v1\0".to_vec();
    msg.extend_from_slice(state.as_bytes());
    let value = lti_jose::b64::encode(hmac::sign(&key, &msg).as_ref());
    let digest = ring::digest::digest(&ring::digest::SHA256, state.as_bytes());
    format!(
        "__Host-lti_state_{}={value}",
        lti_jose::b64::encode(&digest.as_ref()[..12])
    )
}

fn launch13(rt: &tokio::runtime::Runtime, reps: usize, ms: u64) {
    let key = fixture::signing_key().verifying_key();
    let durable = memory_store();
    let registration = PlatformRegistration::new(
        ISS,
        CLIENT_ID,
        "https://lms.example.edu/auth",
        "https://lms.example.edu/token",
        RegistrationKeys::JwksUrl {
            url: "https://lms.example.edu/jwks".into(),
        },
    )
    .with_deployment(Deployment::active(DEPLOYMENT));
    rt.block_on(durable.registrations.insert_registration(&registration))
        .expect("registration");
    let tool_for = |ephemeral: &Store, state_ttl: Duration| {
        Tool::builder(
            "https://tool.example.com/",
            &durable.clone().with_ephemeral_from(ephemeral),
        )
        .key_source(Arc::new(Resolved(key.clone())))
        .state_cookie_secret(COOKIE_SECRET)
        .state_ttl(state_ttl)
        .build()
        .expect("tool")
    };
    // The tool seals the login into the state with a nonce it draws, so the
    // launched token is the fixture's claims with that nonce (7 bytes longer: a
    // drawn nonce has 43 characters, the fixture's 36).
    let (state, token) = {
        let login_tool = tool_for(&memory_store(), Duration::from_secs(24 * 3600));
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("iss", ISS)
            .append_pair("login_hint", "42")
            .append_pair("target_link_uri", TARGET)
            .append_pair("client_id", CLIENT_ID)
            .finish();
        let login = ToolRequest::new(
            Method::GET,
            format!("/lti/login?{query}").parse().expect("uri"),
            HeaderMap::new(),
            Bytes::new(),
        );
        let response = rt.block_on(login_tool.login(&login)).expect("login");
        let location = response.location().expect("location");
        let params: Vec<(String, String)> =
            form_urlencoded::parse(location.split_once('?').expect("query").1.as_bytes())
                .into_owned()
                .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .expect("login parameter")
        };
        let claims = fixture::claims(ISS, TARGET, &param("nonce"), crate::now());
        let token = lti_jose::sign(&claims, &fixture::signing_key()).expect("signing");
        (param("state"), token)
    };
    let token = token.as_str();
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token", token)
        .append_pair("state", &state)
        .finish();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(
        header::COOKIE,
        HeaderValue::from_str(&state_cookie(&state)).expect("cookie"),
    );
    let request = ToolRequest::new(
        Method::POST,
        "/lti/launch".parse().expect("uri"),
        headers,
        Bytes::from(body),
    );
    let fresh_tool = || tool_for(&memory_store(), Duration::from_secs(600));
    // Sanity: the launch succeeds.
    let (launch, _) = rt
        .block_on(fresh_tool().launch(&request))
        .expect("the fixture launch validates");
    assert_eq!(launch.deployment_id(), DEPLOYMENT);
    let results: Vec<f64> = (0..reps)
        .map(|_| {
            measure(ms, || {
                let tools: Vec<Tool> = (0..BATCH).map(|_| fresh_tool()).collect();
                let t = Instant::now();
                for tool in &tools {
                    black_box(rt.block_on(tool.launch(&request)).expect("launch"));
                }
                (BATCH, t.elapsed())
            })
        })
        .collect();
    emit(
        "launch13",
        "ours (lti-tool)",
        &results,
        json!({"token_bytes": token.len()}),
    );

    // The physical limit: bare ring RS256 verification of the same token.
    let jwk = serde_json::to_value(fixture::signing_key().public_jwk()).expect("jwk");
    let n = lti_jose::b64::decode(jwk["n"].as_str().expect("n")).expect("n");
    let e = lti_jose::b64::decode(jwk["e"].as_str().expect("e")).expect("e");
    let ring_key = RsaPublicKeyComponents { n, e };
    let (input, sig) = token.rsplit_once('.').expect("jws");
    let sig = lti_jose::b64::decode(sig).expect("sig");
    let results: Vec<f64> = (0..reps)
        .map(|_| {
            measure(ms, || {
                timed(BATCH, || {
                    ring_key
                        .verify(
                            &RSA_PKCS1_2048_8192_SHA256,
                            black_box(input.as_bytes()),
                            black_box(&sig),
                        )
                        .expect("verify")
                })
            })
        })
        .collect();
    emit("launch13", "bare ring RS256 verify", &results, json!({}));
}

fn mint13(reps: usize, ms: u64) {
    let tool = ToolRegistration::new(
        CLIENT_ID,
        "https://tool.example.com/login",
        TARGET,
        ToolKeys::Static(JwkSet::default()),
    )
    .with_deployment(DEPLOYMENT)
    .with_scope("https://purl.imsglobal.org/spec/lti-ags/scope/score")
    .with_scope("https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly");
    let registry = Arc::new(MemoryToolRegistry::new());
    registry.register(tool.clone()).expect("register");
    let platform = Platform::new(
        PlatformConfig::new(ISS),
        Arc::new(PlatformKeys::new(fixture::signing_key())),
        PlatformSecret::from_bytes(&[1u8; 32]).expect("secret"),
        registry,
        Arc::new(JwkSet::default()),
    )
    .expect("platform");
    let user = PlatformUser::new("a6d5c443-1f51-4783-ba1a-7686ffe3b54a")
        .with_name("Jane", "Doe")
        .with_email("jane.doe@example.edu");
    let spec = LaunchSpec::resource_link(
        CLIENT_ID,
        DEPLOYMENT,
        "a6d5c443-1f51-4783-ba1a-7686ffe3b54a",
        "200d101f-2c14-434a-a0f3-57c2a42369fd",
    )
    .with_roles(["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"])
    .with_context("c1d887f0a1a3", Some("ECON 101"), Some("Economics"))
    .with_resource_link_title("Week 3 quiz")
    .with_custom("course_id", "1");
    platform
        .mint_id_token(&tool, &user, &spec, NONCE)
        .expect("minting works");
    let results: Vec<f64> = (0..reps)
        .map(|_| {
            measure(ms, || {
                timed(64, || {
                    black_box(
                        platform
                            .mint_id_token(&tool, &user, &spec, NONCE)
                            .expect("mint"),
                    );
                })
            })
        })
        .collect();
    emit("mint13", "ours (lti-platform)", &results, json!({}));
}

fn lti11(rt: &tokio::runtime::Runtime, dir: &Path, fx: &Value, reps: usize, live: usize) {
    let l = &fx["lti11"];
    let url = l["url"].as_str().expect("url");
    let bodies = std::fs::read_to_string(dir.join(l["bodies"].as_str().expect("bodies")))
        .expect("reading the LTI 1.1 bodies");
    let bodies: Vec<&str> = bodies.lines().collect();
    let store = Arc::new(MemoryStore::new(
        SecretCipher::insecure_plaintext_for_tests(),
        Arc::new(SystemClock),
    ));
    let now = crate::now();
    rt.block_on(async {
        store
            .insert_consumer(&Consumer::new(
                l["key"].as_str().expect("key"),
                l["secret"].as_str().expect("secret"),
                "bench",
                0,
            ))
            .await
            .expect("consumer");
        for i in 0..live {
            store
                .record_oauth1_nonce(
                    l["key"].as_str().expect("key"),
                    &format!("live-{i}"),
                    now + 3600,
                )
                .await
                .expect("nonce");
        }
    });
    let verifier = LaunchVerifier::new(OAuthVerifier::new(store.clone(), store));
    let chunk = bodies.len() / reps;
    let results: Vec<f64> = (0..reps)
        .map(|r| {
            let slice = &bodies[r * chunk..(r + 1) * chunk];
            let t = Instant::now();
            for body in slice {
                black_box(
                    rt.block_on(verifier.verify(&SignedRequest::form_post(url, body.as_bytes())))
                        .expect("a fixture body verifies"),
                );
            }
            slice.len() as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    let workload = if live == 0 {
        "lti11_verify"
    } else {
        "lti11_verify_1M"
    };
    emit(
        workload,
        "ours (lti11 + lti-store memory)",
        &results,
        json!({"live_nonces": live}),
    );
}

/// Runs every in-process workload. The LTI 1.1 ones need a fresh fixture
/// (`lti-loadgen fixture`) because the timestamps must be recent and each nonce is
/// used once per store.
pub(crate) fn run(dir: &Path, reps: usize, ms: u64) {
    let fx: Value = serde_json::from_slice(
        &std::fs::read(dir.join("fixture.json")).expect("reading fixture.json"),
    )
    .expect("fixture.json is JSON");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let only = std::env::var("LOADGEN_ONLY").unwrap_or_default();
    let want = |w: &str| only.is_empty() || only.split(',').any(|o| o == w);
    if want("launch13") {
        launch13(&rt, reps, ms);
    }
    if want("mint13") {
        mint13(reps, ms);
    }
    if want("lti11_verify") {
        lti11(&rt, dir, &fx, reps, 0);
    }
    if want("lti11_verify_1M") {
        lti11(&rt, dir, &fx, reps, 1_000_000);
    }
}
