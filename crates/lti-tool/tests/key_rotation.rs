//! Platform key rotation through the real JWKS cache (`lti_http::JwksCache` over
//! `lti_http::HyperClient`) and an in-process hyper JWKS server on loopback that
//! counts fetches: the platform adds a key and signs with it; the next launch
//! succeeds after exactly one refetch, at once (with the default settings,
//! right after the previous fetch), and a burst of concurrent launches shares it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lti_http::{HyperClient, JwksCache, JwksCacheConfig};
use lti_jose::{JwkSet, SigningKey};
use lti_registry::KeySource as RegistrationKeys;
use tokio::net::TcpListener;

/// A JWKS endpoint whose key set the test can change, counting GETs.
struct JwksServer {
    url: String,
    keys: Arc<Mutex<JwkSet>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(initial: &[&SigningKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let keys = Arc::new(Mutex::new(JwkSet {
            keys: initial.iter().map(|k| k.public_jwk()).collect(),
        }));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (k, f) = (keys.clone(), fetches.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (k, f) = (k.clone(), f.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |_req| {
                        f.fetch_add(1, Ordering::SeqCst);
                        let body = serde_json::to_vec(&*k.lock().unwrap()).unwrap();
                        async move {
                            Ok::<_, Infallible>(
                                http::Response::builder()
                                    .header("content-type", "application/json")
                                    .header("cache-control", "max-age=3600")
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { url, keys, fetches }
    }

    fn add_key(&self, key: &SigningKey) {
        self.keys.lock().unwrap().keys.push(key.public_jwk());
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_new_platform_key_is_picked_up_after_exactly_one_refetch() {
    let old = platform_key();
    let new = second_platform_key();
    let server = JwksServer::start(&[&old]).await;
    // The default settings: the 10 s cooldown must not delay the rotation.
    let mut h = harness_on(&server).await;

    // First launch: one fetch.
    h.launch_with(|_| {}).await.unwrap();
    assert_eq!(server.fetches(), 1);
    // Cached: no fetch.
    h.launch_with(|_| {}).await.unwrap();
    assert_eq!(server.fetches(), 1);

    // The platform adds a key and signs with it: exactly one refetch.
    server.add_key(&new);
    h.key = new;
    h.launch_with(|_| {}).await.unwrap();
    assert_eq!(server.fetches(), 2);
    // Both keys are now cached.
    h.launch_with(|_| {}).await.unwrap();
    h.key = old;
    h.launch_with(|_| {}).await.unwrap();
    assert_eq!(server.fetches(), 2);

    // A kid the platform never published still fails after its one refetch.
    h.key = second_platform_key().with_kid("never-published");
    expect_code(h.launch_with(|_| {}).await, "unknown_kid");
    assert_eq!(server.fetches(), 3);
}

/// A harness whose registration takes its keys from `server` through a
/// `JwksCache` with the default settings.
async fn harness_on(server: &JwksServer) -> Harness {
    // The stand-in JWKS server is on loopback: allowed explicitly.
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    let cache = JwksCache::new(Arc::new(client));
    let h = Harness::with(|b| b.key_source(Arc::new(cache))).await;
    let mut reg = registration();
    reg.key_source = RegistrationKeys::JwksUrl {
        url: server.url.clone(),
    };
    h.store
        .registrations
        .update_registration(&reg)
        .await
        .unwrap();
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_launches_with_a_rotated_key_all_succeed_on_at_most_two_refetches() {
    let old = platform_key();
    let new = second_platform_key();
    let server = JwksServer::start(&[&old]).await;
    let mut h = harness_on(&server).await;
    h.launch_with(|_| {}).await.unwrap();
    assert_eq!(server.fetches(), 1);
    // The platform rotates, and 64 users launch at once, right after the fetch.
    server.add_key(&new);
    h.key = new;
    let h = Arc::new(h);
    let start = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (h, start) = (h.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            let login = h.login().await;
            let token = h.sign(&h.claims(&login.nonce));
            start.wait().await;
            h.launch_token(&login, &token)
                .await
                .map(|(launch, _)| launch)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().sub(), Some("user-1"));
    }
    let refetches = server.fetches() - 1;
    assert!(
        (1..=2).contains(&refetches),
        "expected one shared refetch (at most two), found {refetches}"
    );
}

#[tokio::test]
async fn an_unreachable_jwks_endpoint_is_a_502() {
    // Bind and drop a listener so the port is (almost certainly) closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = JwksCacheConfig {
        retry: lti_http::RetryPolicy::none(),
        ..JwksCacheConfig::default()
    };
    let cache = JwksCache::with_config(
        Arc::new(
            HyperClient::builder()
                .allow_private_addresses()
                .build()
                .unwrap(),
        ),
        config,
    );
    let h = Harness::with(|b| b.key_source(Arc::new(cache))).await;
    let mut reg = registration();
    reg.key_source = RegistrationKeys::JwksUrl {
        url: format!("http://127.0.0.1:{port}/jwks"),
    };
    h.store
        .registrations
        .update_registration(&reg)
        .await
        .unwrap();
    let err = expect_code(h.launch_with(|_| {}).await, "jwks_unavailable");
    assert_eq!(err.http_status(), http::StatusCode::BAD_GATEWAY);
}
