//! `SharedTokenCache` on real shared stores (Redis, PostgreSQL, and the
//! in-memory one): two `ServiceClient`s standing for two instances, each with
//! its own handle on the store, share one token, and a cold start of many
//! concurrent calls spread over both makes exactly one token request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use lti_http::{
    Error, FnClient, HttpClient, ServiceClient, SharedTokenCache, TokenCache, TokenCacheKey,
    TokenEndpointConfig,
};
use lti_jose::{Algorithm, SigningKey};
use lti_registry::{AppKey, SecretCipher, Store};
use lti_store::OpenOptions;

const TOOL_KEY: &str = include_str!("../../../tests/fixtures/lti-http/tool-key.pem");
const TOKEN_URL: &str = "https://lms.example/token";
const SCOPES: &[&str] = &["https://purl.imsglobal.org/spec/lti-ags/scope/score"];
/// A fixed schema: each run uses keys of its own and deletes them.
const PG_SCHEMA: &str = "lti_http_shared_tokens_test";

fn endpoint() -> TokenEndpointConfig {
    let key = SigningKey::from_pem(TOOL_KEY, Algorithm::RS256)
        .unwrap()
        .with_kid("tool-kid");
    TokenEndpointConfig::new("tool-client-1", TOKEN_URL, Arc::new(key))
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("LTI_TEST_REQUIRE_BACKENDS").as_deref() != Ok("1"),
                "{var} is unset but LTI_TEST_REQUIRE_BACKENDS=1 requires this backend test to run"
            );
            eprintln!("SKIPPED: {var} is not set, so this test against a real server did not run");
            None
        }
    }
}

fn options() -> OpenOptions {
    OpenOptions::new(
        SecretCipher::aes256gcm(AppKey::new("test-key-1", &[7u8; 32]).unwrap(), vec![]).unwrap(),
    )
}

/// A token endpoint that counts its requests and answers slowly (so the
/// concurrent callers really overlap), each time with a new token.
fn token_endpoint(requests: Arc<AtomicUsize>, delay: Duration) -> Arc<dyn HttpClient> {
    Arc::new(FnClient::new(move |req: Request<Bytes>| {
        let requests = requests.clone();
        async move {
            assert_eq!(req.uri().to_string(), TOKEN_URL);
            let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(delay).await;
            let body = format!(
                r#"{{"access_token":"token-{n}","token_type":"Bearer","expires_in":3600}}"#
            );
            Ok::<_, Error>(Response::new(Bytes::from(body)))
        }
    }))
}

/// Two instances' handles on one store.
async fn two_handles(url: &str) -> (Store, Store) {
    let prefix = format!("{}:", unique("lti-http-test"));
    let opts = options()
        .with_redis_key_prefix(prefix)
        .with_postgres_schema(PG_SCHEMA);
    let one = lti_store::open(url, &opts).await.unwrap();
    let two = if url.starts_with("memory:") {
        one.clone()
    } else {
        lti_store::open(url, &opts).await.unwrap()
    };
    (one, two)
}

async fn cold_start_makes_one_token_request(one: Store, two: Store) {
    let registration = unique("reg");
    let requests = Arc::new(AtomicUsize::new(0));
    let http = token_endpoint(requests.clone(), Duration::from_millis(300));
    let instance = |store: &Store| {
        Arc::new(
            ServiceClient::new(http.clone())
                .with_token_cache(Arc::new(SharedTokenCache::new(store.cached_values.clone()))),
        )
    };
    let (a, b) = (instance(&one), instance(&two));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let client = if i % 2 == 0 { a.clone() } else { b.clone() };
        let registration = registration.clone();
        tasks.push(tokio::spawn(async move {
            client
                .access_token(&registration, &endpoint(), SCOPES)
                .await
                .unwrap()
                .secret()
                .to_owned()
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "16 concurrent cold-start calls over two instances"
    );
    assert!(tokens.iter().all(|t| t == "token-1"), "{tokens:?}");
    let (sa, sb) = (a.token_stats(), b.token_stats());
    assert_eq!(sa.fetches + sb.fetches, 1, "{sa:?} {sb:?}");
    assert!(
        sa.waited + sb.waited >= 1,
        "the other instance waited: {sa:?} {sb:?}"
    );
    assert_eq!(sa.cache_errors + sb.cache_errors, 0);

    // Later calls on either instance are hits; the lock was released.
    let key = TokenCacheKey::new(&registration, SCOPES).unwrap();
    assert_eq!(
        one.cached_values
            .get_value(lti_http::TOKEN_LOCK_NAMESPACE, &key.storage_key())
            .await
            .unwrap(),
        None
    );
    b.access_token(&registration, &endpoint(), SCOPES)
        .await
        .unwrap();
    assert_eq!(requests.load(Ordering::SeqCst), 1);

    // A 401 refresh on one instance replaces the token for both.
    a.invalidate_token(&registration, SCOPES).await.unwrap();
    let fresh = b
        .access_token(&registration, &endpoint(), SCOPES)
        .await
        .unwrap();
    assert_eq!(fresh.secret(), "token-2");
    assert_eq!(
        a.access_token(&registration, &endpoint(), SCOPES)
            .await
            .unwrap()
            .secret(),
        "token-2"
    );
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    a.invalidate_token(&registration, SCOPES).await.unwrap();
}

/// A holder that never stores its token (a crashed instance) holds others
/// back at most the fill wait; then they request a token themselves.
async fn a_stuck_lock_delays_at_most_the_fill_wait(one: Store) {
    let registration = unique("reg-stuck");
    let key = TokenCacheKey::new(&registration, SCOPES).unwrap();
    let cache = SharedTokenCache::new(one.cached_values.clone());
    let held = cache
        .begin_fill(&key, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        matches!(held, lti_http::FillLock::Acquired(Some(_))),
        "{held:?}"
    );
    assert_eq!(
        cache
            .begin_fill(&key, Duration::from_secs(30))
            .await
            .unwrap(),
        lti_http::FillLock::Busy
    );
    let requests = Arc::new(AtomicUsize::new(0));
    let client = ServiceClient::new(token_endpoint(requests.clone(), Duration::ZERO))
        .with_token_cache(Arc::new(cache.clone()))
        .with_fill_wait(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let token = client
        .access_token(&registration, &endpoint(), SCOPES)
        .await
        .unwrap();
    assert_eq!(token.secret(), "token-1");
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    if let lti_http::FillLock::Acquired(Some(id)) = held {
        cache.end_fill(&key, &id).await.unwrap();
    }
    cache.remove(&key).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_shares_tokens_between_clients() {
    let (one, two) = two_handles("memory://").await;
    cold_start_makes_one_token_request(one.clone(), two).await;
    a_stuck_lock_delays_at_most_the_fill_wait(one).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_shares_tokens_between_instances() {
    let Some(url) = server_url("LTI_TEST_REDIS_URL") else {
        return;
    };
    let (one, two) = two_handles(&url).await;
    cold_start_makes_one_token_request(one.clone(), two).await;
    a_stuck_lock_delays_at_most_the_fill_wait(one).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_shares_tokens_between_instances() {
    let Some(url) = server_url("LTI_TEST_POSTGRES_URL") else {
        return;
    };
    let (one, two) = two_handles(&url).await;
    cold_start_makes_one_token_request(one.clone(), two).await;
    a_stuck_lock_delays_at_most_the_fill_wait(one).await;
}
