#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Launch verification throughput: signature + hygiene + protocol checks +
//! nonce record in memory, on one core (a current-thread runtime), with an
//! empty nonce store and with 1,000,000 live nonces. Two nonce stores: a
//! minimal hash map (the verifier's own cost) and `lti-store`'s memory
//! backend.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use lti_registry::{
    Consumer, ConsumerStore, ManualClock, OAuth1NonceStore, RegistryError, SecretCipher,
    oauth1_nonce_digest,
};
use lti_store::MemoryStore;
use lti11::oauth::OAuthParams;
use lti11::{Credentials, LaunchRequest, LaunchVerifier, OAuthVerifier, SignedRequest};

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://tool.example.com/lti/launch";

/// A minimal nonce store (one mutex-guarded hash map of digests), to show
/// the verifier's own cost apart from the store's.
struct MapNonces(Mutex<HashMap<String, i64>>);

#[async_trait]
impl OAuth1NonceStore for MapNonces {
    async fn record_oauth1_nonce(
        &self,
        key: &str,
        nonce: &str,
        expires_at: i64,
    ) -> lti_registry::Result<()> {
        let mut map = self.0.lock().unwrap();
        match map.entry(oauth1_nonce_digest(key, nonce)) {
            Entry::Occupied(e) if *e.get() > NOW => Err(RegistryError::NonceReplayed {
                namespace: key.to_owned(),
            }),
            Entry::Occupied(mut e) => {
                e.insert(expires_at);
                Ok(())
            }
            Entry::Vacant(e) => {
                e.insert(expires_at);
                Ok(())
            }
        }
    }
}

fn setup(rt: &tokio::runtime::Runtime, live_nonces: usize, lti_store: bool) -> LaunchVerifier {
    let clock = ManualClock::new(NOW);
    let store = Arc::new(MemoryStore::new(
        SecretCipher::insecure_plaintext_for_tests(),
        Arc::new(clock.clone()),
    ));
    let map = Arc::new(MapNonces(Mutex::new(HashMap::new())));
    rt.block_on(async {
        store
            .insert_consumer(&Consumer::new("key123", "secret456", "bench", 0))
            .await
            .unwrap();
        for i in 0..live_nonces {
            let nonce = format!("live-{i}");
            if lti_store {
                store
                    .record_oauth1_nonce("key123", &nonce, NOW + 3600)
                    .await
                    .unwrap();
            } else {
                map.record_oauth1_nonce("key123", &nonce, NOW + 3600)
                    .await
                    .unwrap();
            }
        }
    });
    let nonces: Arc<dyn OAuth1NonceStore> = if lti_store { store.clone() } else { map };
    LaunchVerifier::new(OAuthVerifier::new(store, nonces).with_clock(Arc::new(clock)))
}

/// A realistic launch (~1 KB form) with a fresh nonce.
fn signed_body(n: u64) -> String {
    let mut p = OAuthParams::new(NOW as u64);
    p.nonce = format!("bench-{n}");
    p.callback = Some("about:blank".into());
    LaunchRequest::new("rl-42")
        .param("user_id", "0ae836b9-7fc9-4060-006f-27b2066ac545")
        .roles(&["Instructor", "urn:lti:instrole:ims/lis/Faculty"])
        .context("S3294476", "Introduction to Biology")
        .param("context_label", "BIO101")
        .param("lis_person_name_full", "Jane Q. Public")
        .param("lis_person_contact_email_primary", "jane@example.edu")
        .param("tool_consumer_instance_guid", "lms.example.edu")
        .param(
            "launch_presentation_return_url",
            "https://lms.example.edu/courses/7/return",
        )
        .outcomes(
            "https://lms.example.edu/outcomes",
            "sid-83873872987329873264783687634",
        )
        .param("custom_chapter", "3/4")
        .sign_with(URL, &Credentials::new("key123", "secret456"), &p)
        .unwrap()
        .form_body()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let counter = AtomicU64::new(0);
    let mut group = c.benchmark_group("launch_verify");
    group.throughput(Throughput::Elements(1));
    for (name, live, lti_store) in [
        ("map_nonces/empty", 0usize, false),
        ("map_nonces/1M_live", 1_000_000, false),
        ("lti_store_memory/empty", 0, true),
        ("lti_store_memory/1M_live", 1_000_000, true),
    ] {
        let verifier = setup(&rt, live, lti_store);
        group.bench_function(name, |b| {
            b.iter_batched(
                || signed_body(counter.fetch_add(1, Ordering::Relaxed)),
                |body| {
                    rt.block_on(verifier.verify(&SignedRequest::form_post(URL, body.as_bytes())))
                        .unwrap()
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    // Where the time goes: the pure steps, no store and no runtime.
    let body = signed_body(u64::MAX);
    let mut parts = c.benchmark_group("launch_verify_steps");
    parts.throughput(Throughput::Elements(1));
    parts.bench_function("collect", |b| {
        b.iter(|| {
            SignedRequest::form_post(URL, body.as_bytes())
                .collect()
                .unwrap()
        })
    });
    let collected = SignedRequest::form_post(URL, body.as_bytes())
        .collect()
        .unwrap();
    let base_string = collected.base_string();
    let sig = body.rsplit("oauth_signature=").next().unwrap().to_owned();
    let sig = form_urlencoded::parse(format!("s={sig}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    parts.bench_function("hmac_sha1_verify", |b| {
        b.iter(|| {
            assert!(lti11::oauth::verify_base_string(
                lti11::SignatureMethod::HmacSha1,
                "secret456",
                "",
                &base_string,
                &sig
            ))
        })
    });
    parts.bench_function("runtime_block_on_noop", |b| {
        b.iter(|| rt.block_on(async {}))
    });
    parts.finish();
}

criterion_group!(benches, bench);

/// A deterministic workload for instruction counting, e.g.
/// `LTI11_PROFILE=verify:20000 valgrind --tool=callgrind \
///   --collect-atstart=no --toggle-collect='*measured*' <bench binary>`.
/// Modes: `collect` (parameter collection and hygiene on one body),
/// `verify` (full launch verification, map nonce store), `verify_store`
/// (full launch verification, `lti-store` memory backend). An optional
/// third field pre-fills the nonce store with that many live nonces
/// (`verify_store:200000:1000000`). The bodies are signed
/// before the measured function runs. Without valgrind it prints the wall
/// time and the on-CPU time (from `/proc/thread-self/schedstat`, which
/// leaves out the time other processes held the core) per launch.
fn profile(spec: &str) {
    let mut fields = spec.split(':');
    let mode = fields.next().unwrap_or_default();
    let n: u64 = fields.next().unwrap_or("10000").parse().unwrap();
    let live: usize = fields.next().unwrap_or("0").parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (wall, cpu) = match mode {
        "collect" => {
            let body = signed_body(u64::MAX);
            timed(|| measured_collect(&body, n))
        }
        "verify" | "verify_store" => {
            let verifier = setup(&rt, live, mode == "verify_store");
            let bodies: Vec<String> = (0..n).map(signed_body).collect();
            timed(|| measured_verify(&rt, &verifier, &bodies))
        }
        other => panic!("unknown LTI11_PROFILE mode {other}"),
    };
    let per = |d: std::time::Duration| d.as_secs_f64() * 1e6 / n as f64;
    eprintln!(
        "{mode} n={n} live={live}: wall {:.3} us/launch, on-CPU {} us/launch",
        per(wall),
        cpu.map_or("(unavailable)".to_owned(), |c| format!("{:.3}", per(c)))
    );
}

/// Wall time and on-CPU time of `f` on this thread.
fn timed(f: impl FnOnce()) -> (std::time::Duration, Option<std::time::Duration>) {
    let on_cpu = || {
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
        Some(std::time::Duration::from_nanos(ns))
    };
    let (cpu0, t0) = (on_cpu(), std::time::Instant::now());
    f();
    let (wall, cpu1) = (t0.elapsed(), on_cpu());
    (wall, cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a)))
}

#[inline(never)]
fn measured_collect(body: &str, n: u64) {
    for _ in 0..n {
        let request = SignedRequest::form_post(URL, std::hint::black_box(body.as_bytes()));
        std::hint::black_box(request.collect().unwrap());
    }
}

#[inline(never)]
fn measured_verify(rt: &tokio::runtime::Runtime, verifier: &LaunchVerifier, bodies: &[String]) {
    for body in bodies {
        std::hint::black_box(
            rt.block_on(verifier.verify(&SignedRequest::form_post(URL, body.as_bytes())))
                .unwrap(),
        );
    }
}

fn main() {
    if let Ok(spec) = std::env::var("LTI11_PROFILE") {
        profile(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
