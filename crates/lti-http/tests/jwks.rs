//! The platform JWKS cache against a real loopback server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use common::{TestServer, response};
use lti_http::{HttpClient, HyperClient, JwksCache, JwksCacheConfig, RetryPolicy};
use lti_jose::{Algorithm, Jwk, JwkSet, KeySource, SigningKey, Verifier};

const KEY_A: &str = include_str!("../../../tests/fixtures/lti-http/platform-key-a.pem");
const KEY_B: &str = include_str!("../../../tests/fixtures/lti-http/platform-key-b.pem");

fn key(pem: &str, kid: &str) -> SigningKey {
    SigningKey::from_pem(pem, Algorithm::RS256)
        .unwrap()
        .with_kid(kid)
}

fn jwks(keys: &[Jwk]) -> String {
    serde_json::to_string(&JwkSet {
        keys: keys.to_vec(),
    })
    .unwrap()
}

fn client() -> Arc<dyn HttpClient> {
    Arc::new(
        HyperClient::builder()
            .allow_private_addresses()
            .build()
            .unwrap(),
    )
}

fn quick_config() -> JwksCacheConfig {
    JwksCacheConfig {
        refetch_cooldown: Duration::from_secs(1),
        retry: RetryPolicy::none(),
        ..JwksCacheConfig::default()
    }
}

/// A JWKS endpoint whose document and status can be switched while it runs.
struct Platform {
    server: TestServer,
    doc: Arc<std::sync::Mutex<String>>,
    status: Arc<AtomicU16>,
}

impl Platform {
    async fn start(doc: String, cache_control: Option<&'static str>) -> Self {
        let doc = Arc::new(std::sync::Mutex::new(doc));
        let status = Arc::new(AtomicU16::new(200));
        let (d, s) = (doc.clone(), status.clone());
        let server = TestServer::start(move |_| {
            let body = d.lock().unwrap().clone();
            let status = s.load(Ordering::SeqCst);
            async move {
                let mut r = response(status, if status == 200 { body } else { String::new() });
                if let Some(cc) = cache_control {
                    r.headers_mut().insert("cache-control", cc.parse().unwrap());
                }
                r
            }
        })
        .await;
        Self {
            server,
            doc,
            status,
        }
    }

    fn url(&self) -> String {
        self.server.url("/jwks")
    }

    fn fetches(&self) -> usize {
        self.server.hits("/jwks")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_lookups_of_an_uncached_key_set_fetch_it_once() {
    let a = key(KEY_A, "a");
    let platform = Platform::start(jwks(&[a.public_jwk()]), None).await;
    let cache = JwksCache::new(client());
    let mut tasks = Vec::new();
    for _ in 0..256 {
        let cache = cache.clone();
        let url = platform.url();
        tasks.push(tokio::spawn(async move {
            cache.key(&url, Some("a"), Algorithm::RS256).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().kid(), Some("a"));
    }
    assert_eq!(platform.fetches(), 1);
}

#[tokio::test]
async fn a_cached_key_verifies_a_platform_token_without_further_fetches() {
    let a = key(KEY_A, "a");
    let platform = Platform::start(jwks(&[a.public_jwk()]), None).await;
    let cache = JwksCache::new(client());
    let source: &dyn KeySource = &cache;
    let token = lti_jose::sign(&serde_json::json!({"sub": "u1"}), &a).unwrap();
    let verifier = Verifier::new(&[Algorithm::RS256]).unwrap();
    for _ in 0..10 {
        let jws = verifier.parse(&token).unwrap();
        let kid = jws.header().kid.clone();
        let vk = source
            .key(&platform.url(), kid.as_deref(), Algorithm::RS256)
            .await
            .unwrap();
        let claims: serde_json::Value = verifier.verify(&jws, &vk).unwrap();
        assert_eq!(claims["sub"], "u1");
    }
    assert_eq!(platform.fetches(), 1);
}

/// Whether `result` is `UnknownKid` for `kid`.
fn is_unknown(result: &Result<lti_jose::VerifyingKey, lti_jose::Error>, kid: &str) -> bool {
    matches!(result, Err(lti_jose::Error::UnknownKid { kid: k }) if k == kid)
}

/// A platform serving key `a`, a cache with the default settings (a 10 s
/// cooldown that must not delay a rotation; no retries) that has just fetched
/// it, and the platform's rotation: it now also publishes key `b`.
async fn rotated_right_after_a_fetch() -> (Platform, JwksCache, String) {
    let (a, b) = (key(KEY_A, "a"), key(KEY_B, "b"));
    let platform = Platform::start(jwks(&[a.public_jwk()]), None).await;
    let config = JwksCacheConfig {
        retry: RetryPolicy::none(),
        ..JwksCacheConfig::default()
    };
    let cache = JwksCache::with_config(client(), config);
    let url = platform.url();
    cache.key(&url, Some("a"), Algorithm::RS256).await.unwrap();
    assert_eq!(platform.fetches(), 1);
    *platform.doc.lock().unwrap() = jwks(&[a.public_jwk(), b.public_jwk()]);
    (platform, cache, url)
}

#[tokio::test]
async fn a_new_kid_right_after_a_fetch_is_found_at_once() {
    // The platform rotates in key b and signs with it a moment after a fetch.
    let (platform, cache, url) = rotated_right_after_a_fetch().await;
    let found = cache.key(&url, Some("b"), Algorithm::RS256).await.unwrap();
    assert_eq!(found.kid(), Some("b"));
    assert_eq!(platform.fetches(), 2, "one refetch, at once");
    // Both keys are cached now.
    cache.key(&url, Some("a"), Algorithm::RS256).await.unwrap();
    cache.key(&url, Some("b"), Algorithm::RS256).await.unwrap();
    assert_eq!(platform.fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_lookups_of_a_fresh_kid_share_one_refetch() {
    let (platform, cache, url) = rotated_right_after_a_fetch().await;
    let start = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (cache, url, start) = (cache.clone(), url.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            cache.key(&url, Some("b"), Algorithm::RS256).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().kid(), Some("b"));
    }
    let refetches = platform.fetches() - 1;
    assert!(
        (1..=2).contains(&refetches),
        "expected one shared refetch (at most two), found {refetches}"
    );
}

#[tokio::test]
async fn a_kid_still_unknown_after_a_refetch_waits_out_its_cooldown() {
    let (a, b) = (key(KEY_A, "a"), key(KEY_B, "b"));
    let platform = Platform::start(jwks(&[a.public_jwk()]), None).await;
    let cache = JwksCache::with_config(client(), quick_config());
    let url = platform.url();
    cache.key(&url, Some("a"), Algorithm::RS256).await.unwrap();
    // An unknown kid refetches once, even right after the fetch...
    assert!(is_unknown(
        &cache.key(&url, Some("x"), Algorithm::RS256).await,
        "x"
    ));
    assert_eq!(platform.fetches(), 2);
    // ...and, still unknown, not again within the cooldown.
    assert!(is_unknown(
        &cache.key(&url, Some("x"), Algorithm::RS256).await,
        "x"
    ));
    assert_eq!(platform.fetches(), 2, "a missed kid waits out its cooldown");
    // Another kid is not held up by the first one's miss.
    *platform.doc.lock().unwrap() = jwks(&[a.public_jwk(), b.public_jwk()]);
    let found = cache.key(&url, Some("b"), Algorithm::RS256).await.unwrap();
    assert_eq!(found.kid(), Some("b"));
    assert_eq!(platform.fetches(), 3);
    // After the cooldown the missed kid may refetch once more.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(is_unknown(
        &cache.key(&url, Some("x"), Algorithm::RS256).await,
        "x"
    ));
    assert_eq!(platform.fetches(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spray_of_random_kids_costs_at_most_the_budget() {
    let (a, b) = (key(KEY_A, "a"), key(KEY_B, "b"));
    let platform = Platform::start(jwks(&[a.public_jwk()]), None).await;
    // A window far longer than the test, so the budget is the whole allowance.
    let config = JwksCacheConfig {
        refetch_cooldown: Duration::from_secs(600),
        max_unknown_kid_refetches: 3,
        retry: RetryPolicy::none(),
        ..JwksCacheConfig::default()
    };
    let cache = JwksCache::with_config(client(), config);
    let url = platform.url();
    cache.key(&url, Some("a"), Algorithm::RS256).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (cache, url) = (cache.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let kid = format!("bad-{i}");
            let result = cache.key(&url, Some(&kid), Algorithm::RS256).await;
            is_unknown(&result, &kid)
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap(), "every made-up kid is unknown_kid");
    }
    for i in 0..50 {
        let kid = format!("later-{i}");
        assert!(is_unknown(
            &cache.key(&url, Some(&kid), Algorithm::RS256).await,
            &kid
        ));
    }
    // 250 made-up kids (200 of them at once), 3 refetches: the budget, spent
    // in full by the later ones.
    assert_eq!(platform.fetches() - 1, 3);
    // With the budget spent, even a real new key waits for the next window;
    // the known key keeps working without a fetch.
    *platform.doc.lock().unwrap() = jwks(&[a.public_jwk(), b.public_jwk()]);
    assert!(is_unknown(
        &cache.key(&url, Some("b"), Algorithm::RS256).await,
        "b"
    ));
    cache.key(&url, Some("a"), Algorithm::RS256).await.unwrap();
    assert_eq!(platform.fetches() - 1, 3);
}

#[tokio::test]
async fn a_down_endpoint_fails_closed_and_the_cache_recovers_without_a_restart() {
    let (a, b) = (key(KEY_A, "a"), key(KEY_B, "b"));
    let platform = Platform::start(jwks(&[a.public_jwk()]), None).await;
    let cache = JwksCache::with_config(client(), quick_config());
    let url = platform.url();
    cache.key(&url, Some("a"), Algorithm::RS256).await.unwrap();
    // The platform rotates while its JWKS endpoint is down.
    *platform.doc.lock().unwrap() = jwks(&[a.public_jwk(), b.public_jwk()]);
    platform.status.store(503, Ordering::SeqCst);
    match cache.key(&url, Some("b"), Algorithm::RS256).await {
        Err(lti_jose::Error::KeySourceUnavailable { reason, .. }) => {
            assert!(reason.contains("found 503"), "{reason}");
        }
        other => panic!("expected KeySourceUnavailable, got {other:?}"),
    }
    assert_eq!(platform.fetches(), 2);
    // Within the cooldown the failed refresh is not retried, and still fails closed.
    match cache.key(&url, Some("b"), Algorithm::RS256).await {
        Err(lti_jose::Error::KeySourceUnavailable { reason, .. }) => {
            assert!(reason.contains("failed less than"), "{reason}");
        }
        other => panic!("expected KeySourceUnavailable, got {other:?}"),
    }
    assert_eq!(platform.fetches(), 2);
    // The cached key keeps working.
    cache.key(&url, Some("a"), Algorithm::RS256).await.unwrap();
    // The endpoint is back: after the cooldown the new key is found.
    platform.status.store(200, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let found = cache.key(&url, Some("b"), Algorithm::RS256).await.unwrap();
    assert_eq!(found.kid(), Some("b"));
    assert_eq!(platform.fetches(), 3);
}

#[tokio::test]
async fn max_age_is_honoured() {
    let a = key(KEY_A, "a");
    let platform = Platform::start(jwks(&[a.public_jwk()]), Some("public, max-age=1")).await;
    // Lower clamp lowered to 1 s for test speed.
    let short = JwksCache::with_config(
        client(),
        JwksCacheConfig {
            min_ttl: Duration::from_secs(1),
            ..quick_config()
        },
    );
    // Default clamp: max-age=1 is raised to 60 s.
    let clamped = JwksCache::with_config(client(), quick_config());
    let url = platform.url();
    short.key(&url, Some("a"), Algorithm::RS256).await.unwrap();
    clamped
        .key(&url, Some("a"), Algorithm::RS256)
        .await
        .unwrap();
    short.key(&url, Some("a"), Algorithm::RS256).await.unwrap();
    clamped
        .key(&url, Some("a"), Algorithm::RS256)
        .await
        .unwrap();
    assert_eq!(platform.fetches(), 2);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    short.key(&url, Some("a"), Algorithm::RS256).await.unwrap();
    assert_eq!(platform.fetches(), 3, "expired after max-age");
    clamped
        .key(&url, Some("a"), Algorithm::RS256)
        .await
        .unwrap();
    assert_eq!(platform.fetches(), 3, "still fresh under the 60 s floor");
}

#[tokio::test]
async fn a_500_is_an_error_that_is_not_cached() {
    let a = key(KEY_A, "a");
    let platform = Platform::start(jwks(&[a.public_jwk()]), None).await;
    platform.status.store(500, Ordering::SeqCst);
    let cache = JwksCache::with_config(client(), quick_config());
    match cache
        .key(&platform.url(), Some("a"), Algorithm::RS256)
        .await
    {
        Err(lti_jose::Error::KeySourceUnavailable { url, reason }) => {
            assert_eq!(url, platform.url());
            assert!(reason.contains("found 500"), "{reason}");
        }
        other => panic!("expected KeySourceUnavailable, got {other:?}"),
    }
    platform.status.store(200, Ordering::SeqCst);
    assert_eq!(
        cache
            .key(&platform.url(), Some("a"), Algorithm::RS256)
            .await
            .unwrap()
            .kid(),
        Some("a")
    );
    assert_eq!(platform.fetches(), 2);
}

#[tokio::test]
async fn a_timeout_is_an_error_and_the_next_call_after_recovery_succeeds() {
    let a = key(KEY_A, "a");
    let doc = jwks(&[a.public_jwk()]);
    let slow = Arc::new(AtomicUsize::new(1));
    let s = slow.clone();
    let server = TestServer::start(move |_| {
        let doc = doc.clone();
        let delay = s.load(Ordering::SeqCst) == 1;
        async move {
            if delay {
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            response(200, doc)
        }
    })
    .await;
    let http: Arc<dyn HttpClient> = Arc::new(
        HyperClient::builder()
            .allow_private_addresses()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap(),
    );
    let cache = JwksCache::with_config(http, quick_config());
    match cache
        .key(&server.url("/jwks"), Some("a"), Algorithm::RS256)
        .await
    {
        Err(lti_jose::Error::KeySourceUnavailable { reason, .. }) => {
            assert!(reason.contains("timed out"), "{reason}")
        }
        other => panic!("expected KeySourceUnavailable, got {other:?}"),
    }
    slow.store(0, Ordering::SeqCst);
    assert!(
        cache
            .key(&server.url("/jwks"), Some("a"), Algorithm::RS256)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn stale_keys_are_served_only_when_allowed() {
    let a = key(KEY_A, "a");
    let platform = Platform::start(jwks(&[a.public_jwk()]), Some("max-age=1")).await;
    let base = JwksCacheConfig {
        min_ttl: Duration::from_secs(1),
        ..quick_config()
    };
    let strict = JwksCache::with_config(client(), base.clone());
    let lenient =
        JwksCache::with_config(client(), base.allow_stale_keys_for(Duration::from_secs(30)));
    let url = platform.url();
    strict.key(&url, Some("a"), Algorithm::RS256).await.unwrap();
    lenient
        .key(&url, Some("a"), Algorithm::RS256)
        .await
        .unwrap();
    platform.status.store(503, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(matches!(
        strict.key(&url, Some("a"), Algorithm::RS256).await,
        Err(lti_jose::Error::KeySourceUnavailable { .. })
    ));
    assert_eq!(
        lenient
            .key(&url, Some("a"), Algorithm::RS256)
            .await
            .unwrap()
            .kid(),
        Some("a")
    );
    let after_first_stale = platform.fetches();
    // Within the cooldown a failed refresh is not retried: stale keys are served directly.
    lenient
        .key(&url, Some("a"), Algorithm::RS256)
        .await
        .unwrap();
    assert_eq!(platform.fetches(), after_first_stale);
    platform.status.store(200, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    lenient
        .key(&url, Some("a"), Algorithm::RS256)
        .await
        .unwrap();
    assert_eq!(
        platform.fetches(),
        after_first_stale + 1,
        "refreshed once the platform is back"
    );
}

#[tokio::test]
async fn large_key_sets_are_accepted_up_to_the_configured_cap() {
    // ~200 keys, well above 64 KiB, like some Brightspace key sets.
    let a = key(KEY_A, "a");
    let mut keys = Vec::new();
    for i in 0..200 {
        let mut jwk = a.public_jwk();
        jwk.kid = Some(format!("k{i}"));
        keys.push(jwk);
    }
    let doc = jwks(&keys);
    assert!(doc.len() > 64 * 1024, "{}", doc.len());
    let platform = Platform::start(doc, None).await;
    let roomy = JwksCache::with_config(client(), quick_config());
    assert_eq!(
        roomy
            .key(&platform.url(), Some("k199"), Algorithm::RS256)
            .await
            .unwrap()
            .kid(),
        Some("k199")
    );
    let tight = JwksCache::with_config(
        client(),
        JwksCacheConfig {
            max_keyset_bytes: 64 * 1024,
            ..quick_config()
        },
    );
    match tight
        .key(&platform.url(), Some("k1"), Algorithm::RS256)
        .await
    {
        Err(lti_jose::Error::KeySourceUnavailable { reason, .. }) => {
            assert!(reason.contains("too large"), "{reason}")
        }
        other => panic!("expected KeySourceUnavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_document_that_is_not_a_key_set_is_rejected() {
    let platform = Platform::start("<html>login</html>".to_owned(), None).await;
    let cache = JwksCache::with_config(client(), quick_config());
    match cache.key_set(&platform.url()).await {
        Err(e @ lti_http::Error::InvalidJwks { .. }) => assert_eq!(e.code(), "invalid_jwks"),
        other => panic!("expected InvalidJwks, got {other:?}"),
    }
    assert!(matches!(
        cache.key(&platform.url(), None, Algorithm::RS256).await,
        Err(lti_jose::Error::KeySourceUnavailable { .. })
    ));
}

#[tokio::test]
async fn key_selection_errors_pass_through_unchanged() {
    let (a, b) = (key(KEY_A, "a"), key(KEY_B, "b"));
    let platform = Platform::start(jwks(&[a.public_jwk(), b.public_jwk()]), None).await;
    let cache = JwksCache::with_config(client(), quick_config());
    assert!(matches!(
        cache.key(&platform.url(), None, Algorithm::RS256).await,
        Err(lti_jose::Error::AmbiguousKey { candidates: 2 })
    ));
    assert!(matches!(
        cache
            .key(&platform.url(), Some("a"), Algorithm::ES256)
            .await,
        Err(lti_jose::Error::KeyAlgorithmMismatch { .. })
    ));
    assert_eq!(platform.fetches(), 1);
}

#[tokio::test]
async fn plain_http_jwks_on_a_remote_host_is_refused() {
    let cache = JwksCache::with_config(client(), quick_config());
    match cache
        .key(
            "http://platform.example.com/jwks",
            Some("a"),
            Algorithm::RS256,
        )
        .await
    {
        Err(lti_jose::Error::KeySourceUnavailable { reason, .. }) => {
            assert!(reason.contains("insecure"), "{reason}")
        }
        other => panic!("expected KeySourceUnavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_jwks_url_that_is_not_absolute_is_refused() {
    let cache = JwksCache::with_config(client(), quick_config());
    match cache.key_set("/relative/jwks").await {
        Err(e @ lti_http::Error::InvalidUrl { .. }) => assert_eq!(e.code(), "invalid_url"),
        other => panic!("expected InvalidUrl, got {other:?}"),
    }
}

#[tokio::test]
async fn a_redirecting_jwks_endpoint_is_not_followed() {
    let a = key(KEY_A, "a");
    let doc = jwks(&[a.public_jwk()]);
    let server = TestServer::start(move |req| {
        let doc = doc.clone();
        async move {
            if req.uri().path() == "/moved" {
                let mut r = response(301, "");
                r.headers_mut().insert("location", "/jwks".parse().unwrap());
                r
            } else {
                response(200, doc)
            }
        }
    })
    .await;
    let cache = JwksCache::with_config(client(), quick_config());
    match cache.key_set(&server.url("/moved")).await {
        Err(lti_http::Error::Redirect { status: 301, .. }) => {}
        other => panic!("expected Redirect, got {other:?}"),
    }
    assert_eq!(server.hits("/jwks"), 0);
}
