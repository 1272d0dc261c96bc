//! Authorized service calls: token acquisition, caching and 401 handling.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tracing::Instrument;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use lti_jose::{Clock, SystemClock};
use ring::rand::SystemRandom;

use crate::client::{HttpClient, clone_request};
use crate::error::Error;
use crate::link::{Page, collect_pages};
use crate::retry::{RetryPolicy, retry, send_with_retry};
use crate::token::{
    AccessToken, FillLock, MemoryTokenCache, TokenCache, TokenCacheKey, TokenEndpointConfig,
    client_assertion, fresh_jti, parse_token_response, token_request,
};
use crate::url::{parse_absolute, redact_url};

type KeyLocks = Mutex<HashMap<TokenCacheKey, Arc<tokio::sync::Mutex<()>>>>;

/// How long a shared cache's fill lock is held at most (a token request with
/// its retries ends well within it).
const FILL_LEASE: Duration = Duration::from_secs(30);
/// The longest pause between two looks at the cache while another instance
/// requests the token.
const MAX_POLL: Duration = Duration::from_millis(200);

/// Counts of a [`ServiceClient`]'s token lookups since it was built (for
/// metrics): plain numbers, read with [`ServiceClient::token_stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenStats {
    /// Tokens found usable in the cache (including after waiting for a
    /// concurrent request in this process).
    pub hits: u64,
    /// Tokens requested from a token endpoint by this client.
    pub fetches: u64,
    /// Of those, requests that replaced a token a service refused with `401`.
    pub refetches: u64,
    /// Tokens another instance requested while this one waited (shared cache).
    pub waited: u64,
    /// Token requests that failed.
    pub fetch_errors: u64,
    /// Token cache operations that failed (treated as misses).
    pub cache_errors: u64,
}

#[derive(Default)]
struct TokenCounters {
    hits: AtomicU64,
    fetches: AtomicU64,
    refetches: AtomicU64,
    waited: AtomicU64,
    fetch_errors: AtomicU64,
    cache_errors: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Calls platform services (AGS, NRPS, ...) with a cached OAuth 2.0 access
/// token.
///
/// * Tokens are cached per (registration, sorted scope set) until
///   `expires_in` minus a margin (default 60 s).
/// * Concurrent calls that need a token for the same key share one token
///   request.
/// * A `401` from the service invalidates the token and the call is retried
///   once with a new one (concurrent 401s share one refresh).
/// * Service calls are retried per [`RetryPolicy`]; token requests carry a
///   fresh assertion per attempt and are retried on transient failures.
/// * With a shared [`TokenCache`] ([`crate::SharedTokenCache`]), a miss
///   takes the cache's fill lock: one instance requests the token, the
///   others poll the cache for it (at most the fill wait, default 10 s, then
///   they request their own), so a cold start of N instances makes one
///   token request.
/// * A failing [`TokenCache`] is logged and treated as a miss, so a shared
///   store being down slows calls down but does not stop them.
///
/// Share one `ServiceClient` (e.g. in an `Arc`) across the application.
pub struct ServiceClient {
    http: Arc<dyn HttpClient>,
    tokens: Arc<dyn TokenCache>,
    retry: RetryPolicy,
    token_retry: RetryPolicy,
    margin: Duration,
    clock: Arc<dyn Clock>,
    locks: KeyLocks,
    rng: SystemRandom,
    fill_wait: Duration,
    counters: TokenCounters,
}

impl std::fmt::Debug for ServiceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceClient")
            .field("retry", &self.retry)
            .field("token_retry", &self.token_retry)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl ServiceClient {
    /// A client over `http` with an in-process token cache.
    pub fn new(http: Arc<dyn HttpClient>) -> Self {
        Self {
            http,
            tokens: Arc::new(MemoryTokenCache::default()),
            retry: RetryPolicy::default(),
            token_retry: RetryPolicy::default().allow_non_idempotent(),
            margin: Duration::from_secs(60),
            clock: Arc::new(SystemClock),
            locks: Mutex::new(HashMap::new()),
            rng: SystemRandom::new(),
            fill_wait: Duration::from_secs(10),
            counters: TokenCounters::default(),
        }
    }

    /// How long to wait for another instance's token request (shared caches
    /// only) before requesting one anyway (default 10 s).
    pub fn with_fill_wait(mut self, wait: Duration) -> Self {
        self.fill_wait = wait;
        self
    }

    /// What the token cache did so far: hits, requests, waits, failures.
    pub fn token_stats(&self) -> TokenStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TokenStats {
            hits: get(&c.hits),
            fetches: get(&c.fetches),
            refetches: get(&c.refetches),
            waited: get(&c.waited),
            fetch_errors: get(&c.fetch_errors),
            cache_errors: get(&c.cache_errors),
        }
    }

    /// Keeps tokens in `cache` (e.g. a store shared by several instances).
    pub fn with_token_cache(mut self, cache: Arc<dyn TokenCache>) -> Self {
        self.tokens = cache;
        self
    }

    /// Retry policy of service calls (default: idempotent methods only).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Retry policy of token requests.
    pub fn with_token_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.token_retry = policy;
        self
    }

    /// How long before `expires_in` a token is replaced (default 60 s, at
    /// most half the token's lifetime).
    pub fn with_expiry_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The clock for assertion times and token expiry.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The underlying HTTP client.
    pub fn http_client(&self) -> &Arc<dyn HttpClient> {
        &self.http
    }

    /// A usable access token for `scopes` of the registration
    /// `registration_key`, from the cache or the token endpoint.
    pub async fn access_token<S: AsRef<str>>(
        &self,
        registration_key: &str,
        endpoint: &TokenEndpointConfig,
        scopes: &[S],
    ) -> Result<AccessToken, Error> {
        let key = TokenCacheKey::new(registration_key, scopes)?;
        self.token_for(&key, endpoint, None).await
    }

    /// Forgets the cached token of `registration_key` and `scopes`.
    pub async fn invalidate_token<S: AsRef<str>>(
        &self,
        registration_key: &str,
        scopes: &[S],
    ) -> Result<(), Error> {
        let key = TokenCacheKey::new(registration_key, scopes)?;
        self.tokens.remove(&key).await
    }

    /// Sends `request` with `Authorization: Bearer <token>` for `scopes`,
    /// retrying per the retry policy, and once with a new token after a
    /// `401`. Returns the final response whatever its status (service crates
    /// parse their own error bodies); transport failures and exhausted
    /// retries are errors.
    pub async fn send_authorized<S: AsRef<str>>(
        &self,
        registration_key: &str,
        endpoint: &TokenEndpointConfig,
        scopes: &[S],
        request: Request<Bytes>,
    ) -> Result<Response<Bytes>, Error> {
        self.send_authorized_with_policy(registration_key, endpoint, scopes, request, &self.retry)
            .await
    }

    /// [`ServiceClient::send_authorized`] with a retry policy for this call
    /// only (e.g. [`RetryPolicy::allow_non_idempotent`] for an AGS score
    /// `POST`, which is idempotent by its timestamp).
    pub async fn send_authorized_with_policy<S: AsRef<str>>(
        &self,
        registration_key: &str,
        endpoint: &TokenEndpointConfig,
        scopes: &[S],
        request: Request<Bytes>,
        policy: &RetryPolicy,
    ) -> Result<Response<Bytes>, Error> {
        let span = tracing::info_span!(
            "lti.service_call",
            method = %request.method(),
            url = %redact_url(&request.uri().to_string()),
            status = tracing::field::Empty,
            code = tracing::field::Empty,
        );
        let result = self
            .send_authorized_in(registration_key, endpoint, scopes, request, policy)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(resp) => span.record("status", resp.status().as_u16()),
            Err(e) => span.record("code", e.code()),
        };
        result
    }

    async fn send_authorized_in<S: AsRef<str>>(
        &self,
        registration_key: &str,
        endpoint: &TokenEndpointConfig,
        scopes: &[S],
        request: Request<Bytes>,
        policy: &RetryPolicy,
    ) -> Result<Response<Bytes>, Error> {
        let key = TokenCacheKey::new(registration_key, scopes)?;
        let token = self.token_for(&key, endpoint, None).await?;
        let resp = self.send_with_token(&request, &token, policy).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        tracing::debug!(
            url = %redact_url(&request.uri().to_string()),
            registration = registration_key,
            "service answered 401; refreshing the access token once"
        );
        let fresh = self.token_for(&key, endpoint, Some(&token)).await?;
        self.send_with_token(&request, &fresh, policy).await
    }

    /// `GET`s `first` and every `rel="next"` page after it (at most
    /// `max_pages`), each with the same headers and a valid token.
    pub async fn get_pages<S: AsRef<str>>(
        &self,
        registration_key: &str,
        endpoint: &TokenEndpointConfig,
        scopes: &[S],
        first: Request<Bytes>,
        max_pages: usize,
    ) -> Result<Vec<Page>, Error> {
        if first.method() != Method::GET {
            return Err(Error::InvalidRequest {
                reason: format!("paging expects GET, found {}", first.method()),
            });
        }
        let first_url = first.uri().to_string();
        collect_pages(first_url, max_pages, |url| {
            let mut req = clone_request(&first);
            async move {
                *req.uri_mut() = parse_absolute(&url)?;
                self.send_authorized(registration_key, endpoint, scopes, req)
                    .await
            }
        })
        .await
    }

    async fn send_with_token(
        &self,
        request: &Request<Bytes>,
        token: &AccessToken,
        policy: &RetryPolicy,
    ) -> Result<Response<Bytes>, Error> {
        let mut req = clone_request(request);
        token.authorize(&mut req)?;
        send_with_retry(&*self.http, req, policy).await
    }

    /// The cached token; a failing cache counts as a miss (a shared store
    /// being down must not stop service calls).
    async fn cached(&self, key: &TokenCacheKey) -> Option<AccessToken> {
        match self.tokens.get(key).await {
            Ok(t) => t,
            Err(e) => {
                bump(&self.counters.cache_errors);
                tracing::warn!(
                    registration = key.registration(),
                    error.code = e.code(),
                    error = %e,
                    "token cache unavailable; requesting a token"
                );
                None
            }
        }
    }

    fn lock_for(&self, key: &TokenCacheKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.entry(key.clone()).or_default().clone()
    }

    fn release_lock(&self, key: &TokenCacheKey, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        // One reference in the map and ours: nobody else is waiting.
        if Arc::strong_count(&lock) == 2 {
            locks.remove(key);
        }
    }

    /// A usable token for `key`; with `rejected`, one that supersedes it.
    async fn token_for(
        &self,
        key: &TokenCacheKey,
        endpoint: &TokenEndpointConfig,
        rejected: Option<&AccessToken>,
    ) -> Result<AccessToken, Error> {
        let acceptable = |t: &AccessToken, now: u64| {
            t.is_usable(now) && rejected.is_none_or(|r| t.supersedes(r))
        };
        if let Some(t) = self.cached(key).await
            && acceptable(&t, self.clock.now())
        {
            tracing::trace!(
                registration = key.registration(),
                scope = key.scope(),
                cache = "hit",
                "access token"
            );
            bump(&self.counters.hits);
            return Ok(t);
        }
        let lock = self.lock_for(key);
        let result = {
            let _guard = lock.lock().await;
            match self.cached(key).await {
                Some(t) if acceptable(&t, self.clock.now()) => {
                    tracing::trace!(
                        registration = key.registration(),
                        scope = key.scope(),
                        cache = "hit",
                        "access token (after wait)"
                    );
                    bump(&self.counters.hits);
                    Ok(t)
                }
                _ => {
                    self.fill(key, endpoint, &acceptable, rejected.is_some())
                        .await
                }
            }
        };
        self.release_lock(key, lock);
        result
    }

    /// After a miss: requests the token under the cache's fill lock, or
    /// waits for the instance holding it to store its token.
    async fn fill(
        &self,
        key: &TokenCacheKey,
        endpoint: &TokenEndpointConfig,
        acceptable: &(dyn Fn(&AccessToken, u64) -> bool + Sync),
        refetch: bool,
    ) -> Result<AccessToken, Error> {
        let deadline = Instant::now() + self.fill_wait;
        let mut pause = Duration::from_millis(10);
        loop {
            match self.tokens.begin_fill(key, FILL_LEASE).await {
                Ok(FillLock::Acquired(id)) => {
                    // The previous holder may have stored its token just
                    // before it let go of the lock.
                    let result = match self.cached(key).await {
                        Some(t) if id.is_some() && acceptable(&t, self.clock.now()) => {
                            bump(&self.counters.waited);
                            Ok(t)
                        }
                        _ => self.fetch_and_store(key, endpoint, refetch).await,
                    };
                    if let Some(id) = id
                        && let Err(e) = self.tokens.end_fill(key, &id).await
                    {
                        bump(&self.counters.cache_errors);
                        tracing::warn!(
                            registration = key.registration(),
                            error.code = e.code(),
                            error = %e,
                            "token cache unavailable; the fill lock expires by itself"
                        );
                    }
                    return result;
                }
                Ok(FillLock::Busy) => {
                    if Instant::now() >= deadline {
                        tracing::warn!(
                            registration = key.registration(),
                            scope = key.scope(),
                            wait_ms = self.fill_wait.as_millis() as u64,
                            "another instance's token request did not finish in time; requesting one"
                        );
                        return self.fetch_and_store(key, endpoint, refetch).await;
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_POLL);
                    if let Some(t) = self.cached(key).await
                        && acceptable(&t, self.clock.now())
                    {
                        tracing::trace!(
                            registration = key.registration(),
                            scope = key.scope(),
                            cache = "hit",
                            "access token (requested by another instance)"
                        );
                        bump(&self.counters.waited);
                        return Ok(t);
                    }
                }
                Err(e) => {
                    bump(&self.counters.cache_errors);
                    tracing::warn!(
                        registration = key.registration(),
                        error.code = e.code(),
                        error = %e,
                        "token cache unavailable; requesting a token without its lock"
                    );
                    return self.fetch_and_store(key, endpoint, refetch).await;
                }
            }
        }
    }

    async fn fetch_and_store(
        &self,
        key: &TokenCacheKey,
        endpoint: &TokenEndpointConfig,
        refetch: bool,
    ) -> Result<AccessToken, Error> {
        bump(&self.counters.fetches);
        if refetch {
            bump(&self.counters.refetches);
        }
        let fetched = self.fetch_and_store_in(key, endpoint).await;
        if fetched.is_err() {
            bump(&self.counters.fetch_errors);
        }
        fetched
    }

    async fn fetch_and_store_in(
        &self,
        key: &TokenCacheKey,
        endpoint: &TokenEndpointConfig,
    ) -> Result<AccessToken, Error> {
        tracing::debug!(
            registration = key.registration(),
            scope = key.scope(),
            token_url = %redact_url(&endpoint.token_url),
            cache = "miss",
            "requesting an access token"
        );
        let url = endpoint.token_url.as_str();
        let resp = retry(&self.token_retry, &Method::POST, url, |_| async {
            let jti = fresh_jti(&self.rng)?;
            let assertion = client_assertion(endpoint, self.clock.now(), &jti)?;
            let req = token_request(endpoint, key.scope(), &assertion)?;
            self.http.send(req).await
        })
        .await?;
        let now = self.clock.now();
        let token = parse_token_response(url, resp, now, self.margin)?;
        let ttl = Duration::from_secs(token.refresh_at().saturating_sub(now));
        if let Err(e) = self.tokens.put(key, &token, ttl).await {
            bump(&self.counters.cache_errors);
            tracing::warn!(
                registration = key.registration(),
                error.code = e.code(),
                error = %e,
                "token cache unavailable; the token is used but not cached"
            );
        }
        Ok(token)
    }
}
