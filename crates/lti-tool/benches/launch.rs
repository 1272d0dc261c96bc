//! Full launch validation through `Tool::launch` next to bare ring RS256 verification
//! of the same token.
//!
//! `Tool::launch` here does everything a real launch does: form parsing, the state
//! cookie HMAC check, opening the sealed state and using it once (its nonce recorded
//! in the nonce store), JWS parsing, registration lookup, audience
//! and azp checks, algorithm allow-list, key lookup (a pre-resolved key, as a warm
//! `lti_http::JwksCache` serves it), the RS256 signature, time checks, nonce equality,
//! deployment check, `lti-message` classification, saving the launch
//! data and building the redirect. All stores are `lti_store::MemoryStore`.
//!
//! Each timed launch needs an unused state and nonce; re-signing per iteration would
//! cost more than the launch, so the untimed setup gives every iteration a fresh
//! memory store for the short-lived records (nonces, launch data), and the same
//! state (sealed by a real login; it opens on every tool with the same secret) and
//! signed token are launched.
//!
//! After the criterion group, paired bursts time bare ring and the validation back to
//! back, many times, and print the median of the per-pair throughput ratios: on a
//! shared VM whose speed drifts between criterion's separate runs, that ratio is the
//! one to record.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method, header};
use lti_jose::{Algorithm, KeySource, SigningKey, VerifyingKey};
use lti_registry::{
    Deployment, KeySource as RegistrationKeys, LaunchState, ManualClock, PlatformRegistration,
    SecretCipher, Store,
};
use lti_store::MemoryStore;
use lti_tool::{Tool, ToolRequest};
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde_json::json;

const PLATFORM_PEM: &str = include_str!("../../../tests/fixtures/lti-tool/keys/platform-1.pem");
const ISS: &str = "https://canvas.instructure.com";
const CLIENT_ID: &str = "10000000000001";
const DEPLOYMENT: &str = "12653:c2a2e5ee4f8e3b9e7e0c8c7e6b8b3f0d2e5b1a77";
const TARGET: &str = "https://tool.example.com/lti/app";
const NOW: i64 = 1_900_000_000;
const SECRET: &[u8] = b"bench-cookie-secret-0123456789abcdef";

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

fn claims(nonce: &str) -> serde_json::Value {
    let c = "https://purl.imsglobal.org/spec/lti/claim/";
    json!({
        "iss": ISS, "sub": "a6d5c443-1f51-4783-ba1a-7686ffe3b54a", "aud": CLIENT_ID, "azp": CLIENT_ID,
        "exp": NOW + 300, "iat": NOW - 5, "nonce": nonce,
        "name": "Ms Jane Marie Doe", "given_name": "Jane", "family_name": "Doe",
        "email": "jane.doe@example.edu", "locale": "en-US",
        format!("{c}message_type"): "LtiResourceLinkRequest",
        format!("{c}version"): "1.3.0",
        format!("{c}deployment_id"): DEPLOYMENT,
        format!("{c}target_link_uri"): TARGET,
        format!("{c}resource_link"): { "id": "200d101f-2c14-434a-a0f3-57c2a42369fd", "title": "Week 3 quiz" },
        format!("{c}roles"): [
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
            "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"
        ],
        format!("{c}context"): { "id": "c1d887f0a1a3", "label": "ECON 101", "title": "Economics", "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"] },
        format!("{c}tool_platform"): { "guid": "canvas-guid", "name": "Canvas", "product_family_code": "canvas", "version": "cloud" },
        format!("{c}launch_presentation"): { "document_target": "iframe", "return_url": "https://canvas.example.edu/courses/1/external_content/success/external_tool_redirect", "locale": "en" },
        format!("{c}custom"): { "canvas_course_id": "1", "canvas_user_id": "42" },
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem", "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "lineitems": "https://canvas.example.edu/api/lti/courses/1/line_items"
        },
        "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
            "context_memberships_url": "https://canvas.example.edu/api/lti/courses/1/names_and_roles", "service_versions": ["2.0"]
        }
    })
}

/// How a benchmarked future is run.
#[derive(Clone, Copy)]
enum Driver {
    /// tokio's `block_on`, one call per future.
    Tokio,
    /// Polled once with a no-op waker: for futures that never wait (the memory
    /// store and a resolved key), without an executor's per-call cost.
    Direct,
}

impl Driver {
    fn run<F: std::future::Future>(self, rt: &tokio::runtime::Runtime, f: F) -> F::Output {
        match self {
            Driver::Tokio => rt.block_on(f),
            Driver::Direct => {
                let mut f = std::pin::pin!(f);
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                match f.as_mut().poll(&mut cx) {
                    std::task::Poll::Ready(out) => out,
                    std::task::Poll::Pending => panic!("the benchmarked validation waited"),
                }
            }
        }
    }
}

/// On-CPU nanoseconds of this thread (excludes time other processes held the CPU).
fn on_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

struct Fixture {
    durable: Store,
    clock: ManualClock,
    key: VerifyingKey,
    /// A token for `request`'s login.
    token: String,
    request: ToolRequest,
}

impl Fixture {
    fn new(rt: &tokio::runtime::Runtime, signing: &SigningKey) -> Self {
        let clock = ManualClock::new(NOW);
        let durable = Store::from_backend(Arc::new(MemoryStore::new(
            SecretCipher::insecure_plaintext_for_tests(),
            Arc::new(clock.clone()),
        )));
        let registration = PlatformRegistration::new(
            ISS,
            CLIENT_ID,
            "https://sso.canvaslms.com/api/lti/authorize_redirect",
            "https://sso.canvaslms.com/login/oauth2/token",
            RegistrationKeys::JwksUrl {
                url: "https://sso.canvaslms.com/api/lti/security/jwks".into(),
            },
        )
        .with_deployment(Deployment::active(DEPLOYMENT));
        rt.block_on(durable.registrations.insert_registration(&registration))
            .unwrap();
        let mut fixture = Self {
            durable,
            clock,
            key: signing.verifying_key(),
            token: String::new(),
            request: launch_request("", ""),
        };
        let (state, token) = fixture.login_and_sign(rt, signing);
        fixture.request = launch_request(&token, &state.state);
        fixture.token = token;
        fixture
    }

    /// A real login's state (as the launch opens it) and a token for its nonce.
    fn login_and_sign(
        &self,
        rt: &tokio::runtime::Runtime,
        signing: &SigningKey,
    ) -> (LaunchState, String) {
        let tool = self.tool_with_store().0;
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("iss", ISS)
            .append_pair("login_hint", "42")
            .append_pair("target_link_uri", TARGET)
            .append_pair("client_id", CLIENT_ID)
            .finish();
        let login = ToolRequest::new(
            Method::GET,
            format!("/lti/login?{query}").parse().unwrap(),
            HeaderMap::new(),
            Bytes::new(),
        );
        let response = rt.block_on(tool.login(&login)).unwrap();
        let location = response.location().unwrap();
        let (_, query) = location.split_once('?').unwrap();
        let state = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "state")
            .unwrap()
            .1;
        let state = tool.open_login_state(&state).unwrap();
        let token = lti_jose::sign(&claims(&state.nonce), signing).unwrap();
        (state, token)
    }

    fn tool_for(
        durable: &Store,
        ephemeral: &Store,
        clock: &ManualClock,
        key: &VerifyingKey,
    ) -> Tool {
        Tool::builder(
            "https://tool.example.com/",
            &durable.clone().with_ephemeral_from(ephemeral),
        )
        .clock(Arc::new(clock.clone()))
        .key_source(Arc::new(Resolved(key.clone())))
        .state_cookie_secret(SECRET)
        .build()
        .unwrap()
    }

    /// A tool whose short-lived stores are fresh (the fixture's state unused).
    fn fresh_tool(&self) -> Tool {
        self.tool_with_store().0
    }

    /// A tool and its (fresh) store of short-lived records.
    fn tool_with_store(&self) -> (Tool, Store) {
        let ephemeral = Store::from_backend(Arc::new(MemoryStore::new(
            SecretCipher::insecure_plaintext_for_tests(),
            Arc::new(self.clock.clone()),
        )));
        let tool = Self::tool_for(&self.durable, &ephemeral, &self.clock, &self.key);
        (tool, ephemeral)
    }
}

/// Runs `iters` operations in rounds of at most `round`: each round starts with an
/// untimed `setup` (a tool with a fresh long-lived store), then `run(tool, i)` for
/// i = 0, 1, ... is timed. Returns the timed total.
fn in_rounds(
    iters: u64,
    round: usize,
    mut setup: impl FnMut() -> Tool,
    mut run: impl FnMut(&Tool, usize),
) -> std::time::Duration {
    let mut elapsed = std::time::Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let tool = setup();
        let n = left.min(round as u64);
        let start = std::time::Instant::now();
        for i in 0..n as usize {
            run(&tool, i);
        }
        elapsed += start.elapsed();
        left -= n;
    }
    elapsed
}

/// The platform's form POST with the browser's state cookie.
fn launch_request(token: &str, state: &str) -> ToolRequest {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token", token)
        .append_pair("state", state)
        .finish();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(
        header::COOKIE,
        HeaderValue::from_str(&state_cookie(state)).unwrap(),
    );
    ToolRequest::new(
        Method::POST,
        "/lti/launch".parse().unwrap(),
        headers,
        Bytes::from(body),
    )
}

/// The `Cookie` pair a browser sends back for `state`, computed as the crate documents
/// it: name = prefix + base64url(SHA-256(state)[..12]), value =
/// base64url(HMAC-SHA256(secret, "lti-tool state cookie v1\0" || state)).
fn state_cookie(state: &str) -> String {
    use ring::hmac;
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
    let mut msg = b"lti-tool state cookie v1\0".to_vec();
    msg.extend_from_slice(state.as_bytes());
    let value = lti_jose::b64::encode(hmac::sign(&key, &msg).as_ref());
    let digest = ring::digest::digest(&ring::digest::SHA256, state.as_bytes());
    format!(
        "__Host-lti_state_{}={value}",
        lti_jose::b64::encode(&digest.as_ref()[..12])
    )
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let signing = SigningKey::from_pem(PLATFORM_PEM, Algorithm::RS256)
        .unwrap()
        .with_kid("platform-key-1");
    let fixture = Fixture::new(&rt, &signing);
    let token = fixture.token.clone();

    // Bare ring on the same signing input and signature.
    let jwk = serde_json::to_value(signing.public_jwk()).unwrap();
    let n = lti_jose::b64::decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = lti_jose::b64::decode(jwk["e"].as_str().unwrap()).unwrap();
    let ring_key = RsaPublicKeyComponents { n, e };
    let (signing_input, sig_b64) = token.rsplit_once('.').unwrap();
    let sig = lti_jose::b64::decode(sig_b64).unwrap();
    // Bare ring verifies the token (panics otherwise).
    let ring_verify = || {
        ring_key
            .verify(
                &RSA_PKCS1_2048_8192_SHA256,
                black_box(signing_input.as_bytes()),
                black_box(&sig),
            )
            .unwrap()
    };
    ring_verify();

    // Sanity: the launch succeeds.
    let (launch, _) = rt
        .block_on(fixture.fresh_tool().launch(&fixture.request))
        .unwrap();
    assert_eq!(launch.deployment_id(), DEPLOYMENT);
    println!("token length: {} bytes", token.len());

    let mut group = c.benchmark_group("launch_rs256");
    group.bench_function("tool_launch_full", |b| {
        // `_ref`: the tool (and its store) is dropped after the timed batch, not in it.
        b.iter_batched_ref(
            || fixture.fresh_tool(),
            |tool| {
                black_box(
                    rt.block_on(tool.launch(black_box(&fixture.request)))
                        .unwrap(),
                )
            },
            BatchSize::SmallInput,
        )
    });
    // A long-lived store, as in a server: rounds of ROUND launches, each with its
    // own state, nonce and pre-signed token; only the store and tool of a new round
    // are set up untimed. ROUND keeps the round's tokens
    // (~3 KB each) in the core's L2 cache, as a token just read from the network is;
    // with 1,000 tokens every launch first waited for its token from L3.
    const ROUND: usize = 100;
    let (round_states, round_tokens): (Vec<LaunchState>, Vec<String>) = (0..ROUND)
        .map(|_| fixture.login_and_sign(&rt, &signing))
        .unzip();
    let round_requests: Vec<ToolRequest> = round_states
        .iter()
        .zip(&round_tokens)
        .map(|(s, token)| launch_request(token, &s.state))
        .collect();
    group.bench_function("tool_launch_full_long_lived_store", |b| {
        b.iter_custom(|iters| {
            in_rounds(
                iters,
                ROUND,
                || fixture.tool_with_store().0,
                |tool, i| {
                    black_box(
                        rt.block_on(tool.launch(black_box(&round_requests[i])))
                            .unwrap(),
                    );
                },
            )
        })
    });
    // The "full launch validation": parse, RS256 verify, claim checks and the
    // nonce record in the memory store (`Tool::verify_id_token`, given the login
    // state an application opened), without the cookie, opening the state and the
    // launch-data save that `Tool::launch` adds.
    let state = fixture
        .fresh_tool()
        .open_login_state(&round_states[0].state)
        .unwrap();
    let token = round_tokens[0].clone();
    group.bench_function("tool_verify_id_token", |b| {
        b.iter_batched_ref(
            || fixture.tool_with_store().0,
            |tool| {
                black_box(
                    rt.block_on(tool.verify_id_token(black_box(&token), black_box(&state)))
                        .unwrap(),
                )
            },
            BatchSize::SmallInput,
        )
    });
    // Through tokio's `block_on`, and polled directly (`Driver::Direct`): the
    // validation without an executor's per-call cost.
    for (name, driver) in [
        ("tool_verify_id_token_long_lived_store", Driver::Tokio),
        (
            "tool_verify_id_token_long_lived_store_polled",
            Driver::Direct,
        ),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                in_rounds(
                    iters,
                    ROUND,
                    || fixture.tool_with_store().0,
                    |tool, i| {
                        black_box(
                            driver
                                .run(
                                    &rt,
                                    tool.verify_id_token(
                                        black_box(&round_tokens[i]),
                                        black_box(&round_states[i]),
                                    ),
                                )
                                .unwrap(),
                        );
                    },
                )
            })
        });
    }
    group.bench_function("bare_ring_verify", |b| b.iter(ring_verify));
    group.finish();

    // Instruction counting: `LTI_COUNT_N=200 valgrind --tool=callgrind
    // --toggle-collect='*Tool*launch*' <bench binary> --bench nothing` counts N full
    // launches (fresh store each, set up outside the collected region) and stops.
    if let Some(n) = std::env::var("LTI_COUNT_N")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        let tools: Vec<Tool> = (0..n).map(|_| fixture.fresh_tool()).collect();
        for tool in &tools {
            black_box(rt.block_on(tool.launch(&fixture.request)).unwrap());
        }
        return;
    }

    // Paired bursts: the host's speed drifts by ±15 % over seconds on this shared VM,
    // more than the gap being measured, so criterion's separate runs of each function
    // compare different moments. Here each pair times ROUND bare ring verifications
    // and, right after, ROUND validations of ROUND different tokens (a fresh
    // long-lived store per burst, set up untimed), and the ratio is taken per pair.
    const PAIRS: usize = 300;
    let time_burst = |f: &mut dyn FnMut(usize)| {
        let start = std::time::Instant::now();
        for i in 0..ROUND {
            f(i);
        }
        start.elapsed().as_secs_f64()
    };
    let ring_burst = |_: usize| ring_verify();
    let mut verify_ratios = Vec::with_capacity(PAIRS);
    let mut polled_ratios = Vec::with_capacity(PAIRS);
    let mut launch_ratios = Vec::with_capacity(PAIRS);
    for _ in 0..PAIRS {
        // Through tokio's `block_on`, then polled directly: nothing in it waits
        // (memory store, resolved key), so tokio's per-call cost (entering the
        // runtime context, seeding its RNG, parking) is executor, not validation.
        for (driver, ratios) in [
            (Driver::Tokio, &mut verify_ratios),
            (Driver::Direct, &mut polled_ratios),
        ] {
            let tool = fixture.tool_with_store().0;
            let ring = time_burst(&mut { ring_burst });
            let ours = time_burst(&mut |i| {
                black_box(
                    driver
                        .run(
                            &rt,
                            tool.verify_id_token(
                                black_box(&round_tokens[i]),
                                black_box(&round_states[i]),
                            ),
                        )
                        .unwrap(),
                );
            });
            ratios.push(ring / ours);
        }
        let tool = fixture.tool_with_store().0;
        let ring = time_burst(&mut { ring_burst });
        let ours = time_burst(&mut |i| {
            black_box(
                rt.block_on(tool.launch(black_box(&round_requests[i])))
                    .unwrap(),
            );
        });
        launch_ratios.push(ring / ours);
    }
    let quantiles = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.5), at(0.1), at(0.9))
    };
    let (vm, v10, v90) = quantiles(&mut verify_ratios);
    let (pm, p10, p90) = quantiles(&mut polled_ratios);
    let (lm, l10, l90) = quantiles(&mut launch_ratios);
    println!(
        "paired bursts ({PAIRS} pairs of {ROUND}): throughput / bare ring: Tool::verify_id_token polled directly median {:.1}% (p10 {:.1}%, p90 {:.1}%); through tokio's block_on median {:.1}% (p10 {:.1}%, p90 {:.1}%); Tool::launch through block_on median {:.1}% (p10 {:.1}%, p90 {:.1}%)",
        pm * 100.0,
        p10 * 100.0,
        p90 * 100.0,
        vm * 100.0,
        v10 * 100.0,
        v90 * 100.0,
        lm * 100.0,
        l10 * 100.0,
        l90 * 100.0
    );

    // On-CPU time per operation (from /proc/thread-self/schedstat), robust against
    // other processes on a busy machine.
    const N: u64 = 2000;
    let Some(_) = on_cpu_ns() else { return };
    // schedstat advances in scheduler ticks, so cheap operations run many times.
    const SMALL: u64 = 20_000;
    let per_n = |n: u64, f: &mut dyn FnMut()| {
        let start = on_cpu_ns().unwrap_or(0);
        for _ in 0..n {
            f();
        }
        (on_cpu_ns().unwrap_or(start) - start) / n
    };
    let per_op = |f: &mut dyn FnMut()| per_n(N, f);
    let ring_ns = per_op(&mut || ring_verify());
    // Parts of the overhead, for the record.
    let payload_b64 = token.split('.').nth(1).unwrap();
    // As the launch reads the payload: base64url, then the shape scan; then the
    // classification from the scan; and, for the record, the typed decoding a
    // launch now defers to its first `message()`.
    let decode_ns = per_n(SMALL, &mut || {
        let bytes = lti_jose::b64::decode(black_box(payload_b64)).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        black_box(lti_message::IdTokenClaims::scan(&text).is_some());
    });
    let text = String::from_utf8(lti_jose::b64::decode(payload_b64).unwrap()).unwrap();
    let scanned = lti_message::IdTokenClaims::scan(&text).unwrap();
    let opts = lti_message::ValidationOptions::default();
    // Tens of nanoseconds: enough repetitions for schedstat's tick-grained clock.
    let classify_ns = per_n(100 * SMALL, &mut || {
        black_box(black_box(&scanned).classify(&opts).unwrap());
    });
    let typed_ns = per_n(SMALL, &mut || {
        black_box(lti_message::LtiMessage::from_json_str(black_box(&text), &opts).unwrap());
    });
    // Store round trips the launch makes (memory backend).
    let (_, eph) = fixture.tool_with_store();
    let mut i = 0u64;
    let nonce_ns = per_n(SMALL, &mut || {
        i += 1;
        rt.block_on(eph.nonces.record_nonce(ISS, &format!("n-{i}"), NOW + 600))
            .unwrap();
    });
    let mut i = 0u64;
    let value = serde_json::json!({"payload": "x".repeat(3000)});
    let save_ns = per_n(SMALL, &mut || {
        i += 1;
        rt.block_on(
            eph.launch_data
                .save_launch(&format!("l-{i}"), value.clone(), NOW + 600),
        )
        .unwrap();
    });
    // Opening the sealed state (what replaced saving and consuming a stored one).
    let opener = fixture.fresh_tool();
    let open_ns = per_n(SMALL, &mut || {
        black_box(
            opener
                .open_login_state(black_box(&round_states[0].state))
                .unwrap(),
        );
    });
    let reg_ns = per_n(SMALL, &mut || {
        black_box(
            rt.block_on(
                fixture
                    .durable
                    .registrations
                    .resolve_registration(ISS, Some(CLIENT_ID)),
            )
            .unwrap(),
        );
    });
    println!(
        "on-CPU per op over {SMALL}: record_nonce {nonce_ns} ns; save_launch {save_ns} ns; open_login_state {open_ns} ns; resolve_registration {reg_ns} ns"
    );
    // (a) As in the criterion run: a fresh short-lived store per launch.
    let tools: Vec<Tool> = (0..N).map(|_| fixture.fresh_tool()).collect();
    let mut it = tools.iter();
    let fresh_ns = per_op(&mut || {
        black_box(
            rt.block_on(it.next().unwrap().launch(&fixture.request))
                .unwrap(),
        );
    });
    // (b) One long-lived store and tool; every launch has its own state, nonce and
    // token (pre-signed, untimed).
    let tool = fixture.fresh_tool();
    let requests: Vec<ToolRequest> = (0..N)
        .map(|_| {
            let (state, token) = fixture.login_and_sign(&rt, &signing);
            launch_request(&token, &state.state)
        })
        .collect();
    let mut it = requests.iter();
    let shared_ns = per_op(&mut || {
        black_box(rt.block_on(tool.launch(it.next().unwrap())).unwrap());
    });
    println!(
        "on-CPU per op over {SMALL}: payload base64url + UTF-8 + shape scan {decode_ns} ns; classification from the scan {classify_ns} ns; deferred typed decoding + classification (first message()) {typed_ns} ns"
    );
    println!(
        "on-CPU per op over {N}: bare ring verify {ring_ns} ns; full launch, fresh store {fresh_ns} ns ({:.1}% of ring throughput); full launch, shared store {shared_ns} ns ({:.1}% of ring throughput)",
        100.0 * ring_ns as f64 / fresh_ns as f64,
        100.0 * ring_ns as f64 / shared_ns as f64
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
