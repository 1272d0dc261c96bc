//! Warm and cold paths of the JWKS cache and the service token cache.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestServer, response};
use criterion::{Criterion, criterion_group, criterion_main};
use lti_http::{HttpClient, HyperClient, JwksCache, ServiceClient, TokenEndpointConfig};
use lti_jose::{Algorithm, JwkSet, SigningKey};

const PLATFORM_KEY: &str = include_str!("../../../tests/fixtures/lti-http/platform-key-a.pem");
const TOOL_KEY: &str = include_str!("../../../tests/fixtures/lti-http/tool-key.pem");
const SCOPES: &[&str] = &[
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
];

/// On-CPU time of the current thread in ns (Linux schedstat); unlike wall
/// time it does not count the time other processes held the CPU.
fn on_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Prints wall and on-CPU time per operation for `n` runs of `op`.
async fn report_cpu<F, Fut>(label: &str, n: u32, mut op: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (cpu0, wall0) = (on_cpu_ns(), Instant::now());
    for _ in 0..n {
        op().await;
    }
    let wall = wall0.elapsed().as_nanos() as f64 / f64::from(n);
    match (cpu0, on_cpu_ns()) {
        (Some(a), Some(b)) => println!(
            "{label}: {:.0} ns/op on-CPU, {wall:.0} ns/op wall ({n} ops)",
            (b - a) as f64 / f64::from(n)
        ),
        _ => println!("{label}: {wall:.0} ns/op wall ({n} ops; no schedstat)"),
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let platform_key = SigningKey::from_pem(PLATFORM_KEY, Algorithm::RS256)
        .unwrap()
        .with_kid("a");
    let jwks = serde_json::to_string(&JwkSet {
        keys: vec![platform_key.public_jwk()],
    })
    .unwrap();
    let server = rt.block_on(TestServer::start(move |req| {
        let jwks = jwks.clone();
        async move {
            match req.uri().path() {
                "/jwks" => response(200, jwks),
                _ => response(
                    200,
                    r#"{"access_token":"tok","token_type":"Bearer","expires_in":3600}"#,
                ),
            }
        }
    }));
    let http: Arc<dyn HttpClient> = Arc::new(
        HyperClient::builder()
            .allow_private_addresses()
            .build()
            .unwrap(),
    );
    let jwks_url = server.url("/jwks");
    let tool_key = Arc::new(
        SigningKey::from_pem(TOOL_KEY, Algorithm::RS256)
            .unwrap()
            .with_kid("tool"),
    );
    let endpoint = TokenEndpointConfig::new("client-1", server.url("/token"), tool_key);

    let cache = JwksCache::new(http.clone());
    rt.block_on(cache.key(&jwks_url, Some("a"), Algorithm::RS256))
        .unwrap();
    c.bench_function("jwks_warm_lookup", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(
                        cache
                            .key(black_box(&jwks_url), Some("a"), Algorithm::RS256)
                            .await
                            .unwrap(),
                    );
                }
                start.elapsed()
            })
        })
    });

    let services = ServiceClient::new(http.clone());
    rt.block_on(services.access_token("reg-1", &endpoint, SCOPES))
        .unwrap();
    c.bench_function("token_warm_lookup", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(
                        services
                            .access_token(black_box("reg-1"), &endpoint, SCOPES)
                            .await
                            .unwrap(),
                    );
                }
                start.elapsed()
            })
        })
    });

    rt.block_on(async {
        report_cpu("jwks_warm_lookup", 1_000_000, || async {
            black_box(
                cache
                    .key(black_box(&jwks_url), Some("a"), Algorithm::RS256)
                    .await
                    .unwrap(),
            );
        })
        .await;
        report_cpu("token_warm_lookup", 1_000_000, || async {
            black_box(
                services
                    .access_token(black_box("reg-1"), &endpoint, SCOPES)
                    .await
                    .unwrap(),
            );
        })
        .await;
    });

    c.bench_function("jwks_cold_fetch_loopback", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    cache.invalidate(&jwks_url).await;
                    let start = Instant::now();
                    black_box(
                        cache
                            .key(&jwks_url, Some("a"), Algorithm::RS256)
                            .await
                            .unwrap(),
                    );
                    total += start.elapsed();
                }
                total
            })
        })
    });

    c.bench_function("token_cold_fetch_loopback", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    services.invalidate_token("reg-1", SCOPES).await.unwrap();
                    let start = Instant::now();
                    black_box(
                        services
                            .access_token("reg-1", &endpoint, SCOPES)
                            .await
                            .unwrap(),
                    );
                    total += start.elapsed();
                }
                total
            })
        })
    });
}

criterion_group!(caches, benches);
criterion_main!(caches);
