//! Service access tokens and authorized calls against a real loopback
//! token endpoint that verifies the client assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{TestServer, response};
use lti_http::{Error, HttpClient, HyperClient, RetryPolicy, ServiceClient, TokenEndpointConfig};
use lti_jose::{Algorithm, Clock, SigningKey, Verifier, VerifyingKey};

const TOOL_KEY: &str = include_str!("../../../tests/fixtures/lti-http/tool-key.pem");
const CLIENT_ID: &str = "tool-client-1";
const SCOPES: &[&str] = &[
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
];

fn tool_key() -> Arc<SigningKey> {
    Arc::new(
        SigningKey::from_pem(TOOL_KEY, Algorithm::RS256)
            .unwrap()
            .with_kid("tool-kid"),
    )
}

/// State shared between the test and the loopback "platform".
#[derive(Default)]
struct PlatformState {
    issued: AtomicUsize,
    seen_jti: Mutex<HashSet<String>>,
    /// Tokens the service refuses with 401.
    revoked: Mutex<HashSet<String>>,
    /// Scope strings received at the token endpoint.
    scopes: Mutex<Vec<String>>,
    /// Status the token endpoint answers for the next requests (0 = normal).
    token_status: AtomicU16,
    /// Statuses served by /token before answering normally.
    token_failures_left: AtomicUsize,
    refuse_all: std::sync::atomic::AtomicBool,
    expected_aud: Mutex<String>,
}

struct Platform {
    server: TestServer,
    state: Arc<PlatformState>,
}

fn form(body: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn check_assertion(
    assertion: &str,
    key: &VerifyingKey,
    state: &PlatformState,
) -> Result<(), String> {
    let verifier = Verifier::new(&[Algorithm::RS256]).unwrap();
    let jws = verifier.parse(assertion).map_err(|e| e.to_string())?;
    if jws.header().kid.as_deref() != Some("tool-kid") {
        return Err("kid".into());
    }
    let claims: serde_json::Value = verifier.verify(&jws, key).map_err(|e| e.to_string())?;
    let aud = state.expected_aud.lock().unwrap().clone();
    let ok = claims["iss"] == CLIENT_ID
        && claims["sub"] == CLIENT_ID
        && claims["aud"] == aud.as_str()
        && claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap() == 300;
    if !ok {
        return Err(format!("claims {claims}"));
    }
    let jti = claims["jti"].as_str().ok_or("jti")?.to_owned();
    if !state.seen_jti.lock().unwrap().insert(jti) {
        return Err("jti replayed".into());
    }
    Ok(())
}

impl Platform {
    async fn start() -> Self {
        let state = Arc::new(PlatformState::default());
        let key = tool_key().verifying_key();
        let s = state.clone();
        let server = TestServer::start(move |req| {
            let s = s.clone();
            let key = key.clone();
            async move {
                match req.uri().path() {
                    "/token" => {
                        if s.token_failures_left.load(Ordering::SeqCst) > 0 {
                            s.token_failures_left.fetch_sub(1, Ordering::SeqCst);
                            return response(s.token_status.load(Ordering::SeqCst), "");
                        }
                        let f = form(req.body());
                        let valid = f.get("grant_type").map(String::as_str) == Some("client_credentials")
                            && f.get("client_assertion_type").map(String::as_str)
                                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                            && req.headers()["content-type"] == "application/x-www-form-urlencoded";
                        let checked = f
                            .get("client_assertion")
                            .ok_or_else(|| "no assertion".to_owned())
                            .and_then(|a| check_assertion(a, &key, &s));
                        if !valid || checked.is_err() {
                            return response(401, r#"{"error":"invalid_client","error_description":"bad assertion"}"#);
                        }
                        s.scopes.lock().unwrap().push(f.get("scope").cloned().unwrap_or_default());
                        // Slow enough that concurrent callers really overlap.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let n = s.issued.fetch_add(1, Ordering::SeqCst) + 1;
                        response(
                            200,
                            format!(r#"{{"access_token":"tok-{n}","token_type":"Bearer","expires_in":3600,"scope":"granted"}}"#),
                        )
                    }
                    _ => {
                        let auth = req.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned());
                        let Some(token) = auth.as_deref().and_then(|a| a.strip_prefix("Bearer ")) else {
                            return response(401, "");
                        };
                        if s.refuse_all.load(Ordering::SeqCst) || s.revoked.lock().unwrap().contains(token) {
                            return response(401, "");
                        }
                        let page: usize = req.uri().query().and_then(|q| q.strip_prefix("page=")).unwrap_or("1").parse().unwrap();
                        let mut r = response(200, format!("{} page {page}", req.uri().path()));
                        if req.uri().path() == "/members" && page < 3 {
                            r.headers_mut().insert("link", format!("<?page={}>; rel=\"next\"", page + 1).parse().unwrap());
                        }
                        r
                    }
                }
            }
        })
        .await;
        *state.expected_aud.lock().unwrap() = server.url("/token");
        Self { server, state }
    }

    fn endpoint(&self) -> TokenEndpointConfig {
        TokenEndpointConfig::new(CLIENT_ID, self.server.url("/token"), tool_key())
    }

    fn token_requests(&self) -> usize {
        self.server.hits("/token")
    }
}

fn http() -> Arc<dyn HttpClient> {
    Arc::new(
        HyperClient::builder()
            .allow_private_addresses()
            .build()
            .unwrap(),
    )
}

fn get(url: &str) -> http::Request<Bytes> {
    http::Request::get(url).body(Bytes::new()).unwrap()
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_with_the_same_scopes_share_one_token_request() {
    let platform = Arc::new(Platform::start().await);
    let client = Arc::new(ServiceClient::new(http()));
    let endpoint = Arc::new(platform.endpoint());
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (client, endpoint, platform) = (client.clone(), endpoint.clone(), platform.clone());
        tasks.push(tokio::spawn(async move {
            // Half of the callers list the scopes in the other order.
            let scopes: Vec<&str> = if i % 2 == 0 {
                SCOPES.to_vec()
            } else {
                SCOPES.iter().rev().copied().collect()
            };
            client
                .send_authorized(
                    "reg-1",
                    &endpoint,
                    &scopes,
                    get(&platform.server.url("/lineitems")),
                )
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().status(), 200);
    }
    assert_eq!(platform.token_requests(), 1);
    assert_eq!(platform.server.hits("/lineitems"), 100);
    let mut sorted = SCOPES.to_vec();
    sorted.sort_unstable();
    assert_eq!(
        platform.state.scopes.lock().unwrap().as_slice(),
        [sorted.join(" ")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_401_triggers_exactly_one_token_refresh() {
    let platform = Arc::new(Platform::start().await);
    let client = Arc::new(ServiceClient::new(http()));
    let endpoint = Arc::new(platform.endpoint());
    let first = client
        .access_token("reg-1", &endpoint, SCOPES)
        .await
        .unwrap();
    assert_eq!(first.secret(), "tok-1");
    // The platform revokes tok-1 early; 30 concurrent calls all see a 401.
    platform
        .state
        .revoked
        .lock()
        .unwrap()
        .insert("tok-1".to_owned());
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let (client, endpoint, platform) = (client.clone(), endpoint.clone(), platform.clone());
        tasks.push(tokio::spawn(async move {
            client
                .send_authorized(
                    "reg-1",
                    &endpoint,
                    SCOPES,
                    get(&platform.server.url("/scores")),
                )
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().status(), 200);
    }
    assert_eq!(
        platform.token_requests(),
        2,
        "initial token plus exactly one refresh"
    );
    assert_eq!(
        client
            .access_token("reg-1", &endpoint, SCOPES)
            .await
            .unwrap()
            .secret(),
        "tok-2"
    );
}

#[tokio::test]
async fn a_persistent_401_is_returned_after_one_refresh() {
    let platform = Platform::start().await;
    platform.state.refuse_all.store(true, Ordering::SeqCst);
    let client = ServiceClient::new(http());
    let resp = client
        .send_authorized(
            "reg-1",
            &platform.endpoint(),
            SCOPES,
            get(&platform.server.url("/scores")),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(platform.token_requests(), 2);
    assert_eq!(platform.server.hits("/scores"), 2);
}

#[tokio::test]
async fn different_scopes_or_registrations_get_different_tokens() {
    let platform = Platform::start().await;
    let client = ServiceClient::new(http());
    let endpoint = platform.endpoint();
    let a = client
        .access_token("reg-1", &endpoint, &SCOPES[..1])
        .await
        .unwrap();
    let b = client
        .access_token("reg-1", &endpoint, SCOPES)
        .await
        .unwrap();
    let c = client
        .access_token("reg-2", &endpoint, SCOPES)
        .await
        .unwrap();
    let a2 = client
        .access_token("reg-1", &endpoint, &SCOPES[..1])
        .await
        .unwrap();
    assert_ne!(a.secret(), b.secret());
    assert_ne!(b.secret(), c.secret());
    assert_eq!(a.secret(), a2.secret());
    assert_eq!(platform.token_requests(), 3);
}

struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn tokens_are_reused_until_expires_in_minus_the_margin() {
    let platform = Platform::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let clock = Arc::new(TestClock(AtomicU64::new(now)));
    let client = ServiceClient::new(http())
        .with_clock(clock.clone())
        .with_expiry_margin(Duration::from_secs(60));
    let endpoint = platform.endpoint();
    let t1 = client
        .access_token("reg-1", &endpoint, SCOPES)
        .await
        .unwrap();
    assert_eq!(t1.expires_at(), now + 3600);
    clock.0.store(now + 3539, Ordering::SeqCst);
    assert_eq!(
        client
            .access_token("reg-1", &endpoint, SCOPES)
            .await
            .unwrap()
            .secret(),
        "tok-1"
    );
    clock.0.store(now + 3540, Ordering::SeqCst);
    assert_eq!(
        client
            .access_token("reg-1", &endpoint, SCOPES)
            .await
            .unwrap()
            .secret(),
        "tok-2"
    );
    assert_eq!(platform.token_requests(), 2);
}

#[tokio::test]
async fn the_audience_override_is_used_as_assertion_aud() {
    let platform = Platform::start().await;
    *platform.state.expected_aud.lock().unwrap() =
        "https://api.brightspace.com/auth/token".to_owned();
    let client = ServiceClient::new(http());
    // Without the override the platform rejects the assertion.
    match client
        .access_token("reg-1", &platform.endpoint(), SCOPES)
        .await
    {
        Err(Error::TokenRejected {
            status: 401,
            error: Some(e),
            ..
        }) => assert_eq!(e, "invalid_client"),
        other => panic!("expected TokenRejected, got {other:?}"),
    }
    let endpoint = platform
        .endpoint()
        .with_audience("https://api.brightspace.com/auth/token");
    assert_eq!(
        client
            .access_token("reg-1", &endpoint, SCOPES)
            .await
            .unwrap()
            .secret(),
        "tok-1"
    );
}

#[tokio::test]
async fn token_requests_are_retried_with_a_fresh_assertion() {
    let platform = Platform::start().await;
    platform.state.token_status.store(503, Ordering::SeqCst);
    platform
        .state
        .token_failures_left
        .store(2, Ordering::SeqCst);
    let client = ServiceClient::new(http()).with_token_retry_policy(fast().allow_non_idempotent());
    let t = client
        .access_token("reg-1", &platform.endpoint(), SCOPES)
        .await
        .unwrap();
    assert_eq!(t.secret(), "tok-1");
    assert_eq!(platform.token_requests(), 3);
}

#[tokio::test]
async fn a_failing_token_endpoint_is_a_status_error_and_is_not_cached() {
    let platform = Platform::start().await;
    platform.state.token_status.store(500, Ordering::SeqCst);
    platform
        .state
        .token_failures_left
        .store(1, Ordering::SeqCst);
    let client = ServiceClient::new(http()).with_token_retry_policy(fast());
    let endpoint = platform.endpoint();
    let call =
        || client.send_authorized("reg-1", &endpoint, SCOPES, get(&platform.server.url("/x")));
    match call().await {
        Err(Error::Status {
            status: 500,
            attempts: 1,
            url,
            ..
        }) => assert!(url.ends_with("/token")),
        other => panic!("expected Status 500, got {other:?}"),
    }
    assert_eq!(call().await.unwrap().status(), 200);
    assert_eq!(platform.token_requests(), 2);
}

#[tokio::test]
async fn invalid_scopes_are_refused_before_any_request() {
    let platform = Platform::start().await;
    let client = ServiceClient::new(http());
    match client
        .access_token("reg-1", &platform.endpoint(), &["two words"])
        .await
    {
        Err(Error::InvalidScope { found }) => assert_eq!(found, "two words"),
        other => panic!("expected InvalidScope, got {other:?}"),
    }
    assert_eq!(platform.token_requests(), 0);
}

#[tokio::test]
async fn authorized_paging_follows_next_links_with_the_token() {
    let platform = Platform::start().await;
    let client = ServiceClient::new(http());
    let pages = client
        .get_pages(
            "reg-1",
            &platform.endpoint(),
            SCOPES,
            get(&platform.server.url("/members")),
            10,
        )
        .await
        .unwrap();
    let bodies: Vec<_> = pages
        .iter()
        .map(|p| String::from_utf8(p.response.body().to_vec()).unwrap())
        .collect();
    assert_eq!(
        bodies,
        ["/members page 1", "/members page 2", "/members page 3"]
    );
    assert_eq!(platform.token_requests(), 1);
    let post = http::Request::post(platform.server.url("/members"))
        .body(Bytes::new())
        .unwrap();
    assert!(matches!(
        client
            .get_pages("reg-1", &platform.endpoint(), SCOPES, post, 10)
            .await,
        Err(Error::InvalidRequest { .. })
    ));
}

#[tokio::test]
async fn a_shared_token_cache_is_used_across_clients() {
    let platform = Platform::start().await;
    let shared: Arc<dyn lti_http::TokenCache> = Arc::new(lti_http::MemoryTokenCache::default());
    let one = ServiceClient::new(http()).with_token_cache(shared.clone());
    let two = ServiceClient::new(http()).with_token_cache(shared);
    let endpoint = platform.endpoint();
    let a = one.access_token("reg-1", &endpoint, SCOPES).await.unwrap();
    let b = two.access_token("reg-1", &endpoint, SCOPES).await.unwrap();
    assert_eq!(a.secret(), b.secret());
    assert_eq!(platform.token_requests(), 1);
    two.invalidate_token("reg-1", SCOPES).await.unwrap();
    assert_eq!(
        one.access_token("reg-1", &endpoint, SCOPES)
            .await
            .unwrap()
            .secret(),
        "tok-2"
    );
}

#[tokio::test]
async fn a_post_is_retried_only_with_a_per_call_opt_in() {
    let platform = Platform::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let flaky = TestServer::start(move |_| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            if n < 2 {
                response(503, "")
            } else {
                response(200, "stored")
            }
        }
    })
    .await;
    let client = ServiceClient::new(http()).with_retry_policy(fast());
    let endpoint = platform.endpoint();
    let post = || {
        http::Request::post(flaky.url("/scores"))
            .body(Bytes::from_static(b"{}"))
            .unwrap()
    };
    let first = client
        .send_authorized("reg-1", &endpoint, SCOPES, post())
        .await
        .unwrap();
    assert_eq!(first.status(), 503);
    assert_eq!(flaky.hits("/scores"), 1);
    let second = client
        .send_authorized_with_policy(
            "reg-1",
            &endpoint,
            SCOPES,
            post(),
            &fast().allow_non_idempotent(),
        )
        .await
        .unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(flaky.hits("/scores"), 3);
}

/// A shared store that is down.
struct BrokenCache;

#[async_trait::async_trait]
impl lti_http::TokenCache for BrokenCache {
    async fn get(
        &self,
        _: &lti_http::TokenCacheKey,
    ) -> Result<Option<lti_http::AccessToken>, Error> {
        Err(Error::TokenCache {
            reason: "connection refused".into(),
        })
    }
    async fn put(
        &self,
        _: &lti_http::TokenCacheKey,
        _: &lti_http::AccessToken,
        _: Duration,
    ) -> Result<(), Error> {
        Err(Error::TokenCache {
            reason: "connection refused".into(),
        })
    }
    async fn remove(&self, _: &lti_http::TokenCacheKey) -> Result<(), Error> {
        Err(Error::TokenCache {
            reason: "connection refused".into(),
        })
    }
}

#[tokio::test]
async fn a_failing_token_cache_degrades_to_fetching_tokens() {
    let platform = Platform::start().await;
    let client = ServiceClient::new(http()).with_token_cache(Arc::new(BrokenCache));
    let endpoint = platform.endpoint();
    for _ in 0..2 {
        let resp = client
            .send_authorized("reg-1", &endpoint, SCOPES, get(&platform.server.url("/x")))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(platform.token_requests(), 2, "nothing could be cached");
    assert!(matches!(
        client.invalidate_token("reg-1", SCOPES).await,
        Err(Error::TokenCache { .. })
    ));
}
