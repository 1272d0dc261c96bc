//! The platform JWKS cache: an [`lti_jose::KeySource`] over remote key sets.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL};
use http::{HeaderMap, HeaderValue, Request};
use lti_jose::{Algorithm, JwkSet, VerifyingKey};
use moka::ops::compute::{CompResult, Op};

use crate::cache::{PerEntryTtl, TimeToLive};
use crate::client::{HttpClient, MaxResponseBytes};
use crate::error::Error;
use crate::retry::{RetryPolicy, check_status, send_with_retry};
use crate::url::{parse_absolute, redact_url};

/// Settings of a [`JwksCache`]. The defaults are the secure ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksCacheConfig {
    /// Lifetime when the response has no usable `Cache-Control: max-age` (default 1 h).
    pub default_ttl: Duration,
    /// Lower clamp of `max-age` (default 60 s); also used for `no-store`/`no-cache`.
    pub min_ttl: Duration,
    /// Upper clamp of `max-age` (default 24 h).
    pub max_ttl: Duration,
    /// The cooldown of the unknown-`kid` refetch (default 10 s). A `kid` that
    /// is not in the cached set refetches it at once, however recently the set
    /// was fetched (a platform's key rotation is honoured on its first token);
    /// only a `kid` that was *still* unknown after a refetch waits this long
    /// before it may refetch again. It is also the window of
    /// [`max_unknown_kid_refetches`](Self::max_unknown_kid_refetches), and a
    /// failed refresh is not retried before it has passed.
    pub refetch_cooldown: Duration,
    /// The per-URL budget of unknown-`kid` refetches: at most this many per
    /// `refetch_cooldown` (default 4), whatever the kids, so tokens with
    /// random kids cannot turn each launch into an outbound request. Must be
    /// at least 1 for rotations to be picked up before the set expires.
    pub max_unknown_kid_refetches: u32,
    /// How many recently missed kids (unknown after a refetch) are remembered
    /// per URL (default 64; the oldest is forgotten first). A forgotten kid may
    /// refetch again, within the budget.
    pub max_missed_kids: usize,
    /// How long past its lifetime a key set may still be served while the
    /// platform cannot be reached (default: never; see
    /// [`JwksCacheConfig::allow_stale_keys_for`]).
    pub serve_stale_for: Option<Duration>,
    /// Largest accepted key set document in bytes (default 512 KiB; large
    /// Brightspace key sets exceed 64 KiB).
    pub max_keyset_bytes: usize,
    /// How many JWKS URLs are kept (default 10 000).
    pub max_urls: u64,
    /// Retries of a fetch (default [`RetryPolicy::default`]).
    pub retry: RetryPolicy,
}

impl Default for JwksCacheConfig {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(3600),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            refetch_cooldown: Duration::from_secs(10),
            max_unknown_kid_refetches: 4,
            max_missed_kids: 64,
            serve_stale_for: None,
            max_keyset_bytes: 512 * 1024,
            max_urls: 10_000,
            retry: RetryPolicy::default(),
        }
    }
}

impl JwksCacheConfig {
    /// Serves an expired key set for up to `window` while refreshing it
    /// fails (a platform outage then does not stop launches signed with
    /// keys we already know).
    pub fn allow_stale_keys_for(mut self, window: Duration) -> Self {
        self.serve_stale_for = Some(window);
        self
    }

    /// The lifetime for a response with these headers: `max-age` (or 0 for
    /// `no-store`/`no-cache`) clamped to `[min_ttl, max_ttl]`, else `default_ttl`.
    pub fn ttl_for(&self, headers: &HeaderMap) -> Duration {
        let mut max_age = None;
        for value in headers.get_all(CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            for directive in value.split(',') {
                let directive = directive.trim();
                let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
                match name.trim().to_ascii_lowercase().as_str() {
                    "no-store" | "no-cache" => max_age = Some(0),
                    "max-age" if max_age.is_none() => {
                        max_age = arg.trim().trim_matches('"').parse::<u64>().ok();
                    }
                    _ => {}
                }
            }
        }
        match max_age {
            Some(secs) => {
                Duration::from_secs(secs).clamp(self.min_ttl, self.max_ttl.max(self.min_ttl))
            }
            None => self.default_ttl,
        }
    }
}

/// One cached key set.
struct KeySetEntry {
    set: JwkSet,
    fetched_at: Instant,
    ttl: Duration,
    keep_for: Duration,
    /// When a refresh of this entry last failed, and why.
    last_failure: Mutex<Option<(Instant, String)>>,
    /// Keys already resolved from `set`, so warm lookups do not re-parse.
    resolved: Mutex<Vec<(Option<String>, Algorithm, VerifyingKey)>>,
    /// The URL's unknown-kid refetch limits, handed on to the entries that
    /// replace this one.
    limiter: Arc<Mutex<RefetchLimiter>>,
}

/// The unknown-`kid` refetch limits of one JWKS URL: the kids that were still
/// unknown after a refetch (each waits out the cooldown) and the budget of
/// refetches per cooldown window.
struct RefetchLimiter {
    /// Kids are remembered by a keyed hash (bounded memory whatever their
    /// length; the per-process key keeps collisions out of a sender's reach).
    hasher: RandomState,
    /// Recently missed kids with when they were missed, oldest first.
    missed: VecDeque<(u64, Instant)>,
    /// Start of the current budget window and the refetches spent in it.
    window: Option<(Instant, u32)>,
}

impl RefetchLimiter {
    fn new() -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self {
            hasher: RandomState::new(),
            missed: VecDeque::new(),
            window: None,
        }))
    }

    fn kid_hash(&self, kid: Option<&str>) -> u64 {
        self.hasher.hash_one(kid)
    }

    /// Whether `kid` was unknown after a refetch less than `cooldown` ago.
    fn recently_missed(&self, kid: Option<&str>, now: Instant, cooldown: Duration) -> bool {
        let hash = self.kid_hash(kid);
        self.missed
            .iter()
            .any(|(h, at)| *h == hash && now.duration_since(*at) < cooldown)
    }

    /// Remembers that `kid` was unknown after a refetch, forgetting expired
    /// entries and, beyond `max`, the oldest.
    fn record_miss(&mut self, kid: Option<&str>, now: Instant, cooldown: Duration, max: usize) {
        let hash = self.kid_hash(kid);
        self.missed
            .retain(|(h, at)| *h != hash && now.duration_since(*at) < cooldown);
        self.missed.push_back((hash, now));
        while self.missed.len() > max {
            self.missed.pop_front();
        }
    }

    /// Spends one refetch of the budget (`budget` per `window`), or refuses.
    fn try_spend(&mut self, now: Instant, window: Duration, budget: u32) -> bool {
        let (start, spent) = match self.window {
            Some((start, spent)) if now.duration_since(start) < window => (start, spent),
            _ => (now, 0),
        };
        if spent >= budget {
            self.window = Some((start, spent));
            return false;
        }
        self.window = Some((start, spent + 1));
        true
    }
}

impl TimeToLive for Arc<KeySetEntry> {
    fn time_to_live(&self) -> Duration {
        self.keep_for
    }
}

impl KeySetEntry {
    fn is_fresh(&self, now: Instant) -> bool {
        now.duration_since(self.fetched_at) < self.ttl
    }

    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Result<VerifyingKey, lti_jose::Error> {
        {
            let resolved = self.resolved.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, _, key)) = resolved
                .iter()
                .find(|(k, a, _)| k.as_deref() == kid && *a == alg)
            {
                return Ok(key.clone());
            }
        }
        let key = self.set.find(kid, alg)?;
        self.resolved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((kid.map(str::to_owned), alg, key.clone()));
        Ok(key)
    }

    /// Why a refresh failed less than `cooldown` ago, if one did.
    fn recent_failure(&self, now: Instant, cooldown: Duration) -> Option<String> {
        self.last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(at, _)| now.duration_since(*at) < cooldown)
            .map(|(_, reason)| reason.clone())
    }

    /// Whether a refetch may run now: no refresh failed within the cooldown
    /// and, for an unknown key, the key was not missed recently and the URL's
    /// budget allows one more (which this spends).
    fn may_refetch(&self, now: Instant, config: &JwksCacheConfig, trigger: Trigger<'_>) -> bool {
        if self.recent_failure(now, config.refetch_cooldown).is_some() {
            return false;
        }
        match trigger {
            Trigger::UnknownKey(kid, _) => {
                let mut limiter = self.limiter.lock().unwrap_or_else(PoisonError::into_inner);
                !limiter.recently_missed(kid, now, config.refetch_cooldown)
                    && limiter.try_spend(
                        now,
                        config.refetch_cooldown,
                        config.max_unknown_kid_refetches,
                    )
            }
            Trigger::Expired => true,
        }
    }

    fn record_failure(&self, now: Instant, error: &Error) {
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((now, error.to_string()));
    }

    fn lacks(&self, kid: Option<&str>, alg: Algorithm) -> bool {
        matches!(
            self.find(kid, alg),
            Err(lti_jose::Error::UnknownKid { .. } | lti_jose::Error::NoKeys)
        )
    }
}

/// Why a refetch was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger<'k> {
    /// A token named this kid (for this algorithm), which the cached set lacks.
    UnknownKey(Option<&'k str>, Algorithm),
    /// The cached set is past its lifetime.
    Expired,
}

/// What [`JwksCache::refetch`] did.
enum Refetched {
    /// A set fetched after the caller's observation (by this call or another).
    Fresh(Arc<KeySetEntry>),
    /// Nothing was fetched: the key was missed recently, the budget is spent,
    /// or a refresh failed within the cooldown.
    Skipped,
}

struct Inner {
    client: Arc<dyn HttpClient>,
    config: JwksCacheConfig,
    cache: moka::future::Cache<String, Arc<KeySetEntry>>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    refetches: AtomicU64,
    fetch_errors: AtomicU64,
    stale_served: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Counts of a [`JwksCache`]'s lookups since it was built (for metrics):
/// plain numbers, read with [`JwksCache::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JwksCacheStats {
    /// Lookups answered from a fresh cached key set.
    pub hits: u64,
    /// Lookups of a URL with no cached set (a fetch, shared by concurrent callers).
    pub misses: u64,
    /// Refetches of a cached set: expired, or a `kid` it lacks (key rotation).
    pub refetches: u64,
    /// Fetches that failed (network, status, size, invalid set).
    pub fetch_errors: u64,
    /// Lookups answered from an expired set while its refresh failed.
    pub stale_served: u64,
}

/// A cache of remote JWK Sets keyed by URL; implements
/// [`lti_jose::KeySource`] for the launch verifier.
///
/// * Concurrent misses for one URL make exactly one request.
/// * A key set lives for its `Cache-Control: max-age`, clamped to
///   `[min_ttl, max_ttl]` (1 h when absent).
/// * A `kid` the cached set lacks refetches it at once, even right after a
///   fetch (key rotation); concurrent lookups of that kid share the one
///   refetch. A kid still unknown after a refetch does not refetch again for
///   `refetch_cooldown` (10 s), and each URL allows at most
///   `max_unknown_kid_refetches` (4) unknown-kid refetches per
///   `refetch_cooldown`, so tokens with made-up kids cost at most that many
///   outbound requests per URL, however many arrive.
/// * Failed fetches are not cached; the next lookup tries again (a failed
///   *refresh* of a cached set is retried after `refetch_cooldown`, and until
///   then a lookup that needs it fails as unavailable).
/// * Optionally ([`JwksCacheConfig::allow_stale_keys_for`]) an expired set
///   is served for a bounded time while the platform is down.
///
/// Cloning is cheap and shares the cache.
#[derive(Clone)]
pub struct JwksCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("config", &self.inner.config)
            .field("urls", &self.inner.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// A cache with the default settings.
    pub fn new(client: Arc<dyn HttpClient>) -> Self {
        Self::with_config(client, JwksCacheConfig::default())
    }

    /// A cache with `config`.
    pub fn with_config(client: Arc<dyn HttpClient>, config: JwksCacheConfig) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(config.max_urls)
            .expire_after(PerEntryTtl)
            .build();
        Self {
            inner: Arc::new(Inner {
                client,
                config,
                cache,
                counters: Counters::default(),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &JwksCacheConfig {
        &self.inner.config
    }

    /// What the cache did so far: hits, misses, refetches, failed fetches.
    pub fn stats(&self) -> JwksCacheStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        JwksCacheStats {
            hits: get(&c.hits),
            misses: get(&c.misses),
            refetches: get(&c.refetches),
            fetch_errors: get(&c.fetch_errors),
            stale_served: get(&c.stale_served),
        }
    }

    /// The key for `kid`/`alg` from the set at `jwks_url`, fetching or
    /// refetching as described on [`JwksCache`].
    ///
    /// Errors are `lti_jose` errors: `UnknownKid`, `AmbiguousKey`,
    /// `KeyAlgorithmMismatch`, `NoKeys` from key selection, and
    /// `KeySourceUnavailable` when the set cannot be fetched or parsed.
    pub async fn key(
        &self,
        jwks_url: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, lti_jose::Error> {
        let entry = self
            .current(jwks_url)
            .await
            .map_err(|e| unavailable(jwks_url, &e))?;
        let missing = match entry.find(kid, alg) {
            Err(missing @ (lti_jose::Error::UnknownKid { .. } | lti_jose::Error::NoKeys)) => {
                missing
            }
            other => return other,
        };
        let cooldown = self.inner.config.refetch_cooldown;
        let missed_recently = entry
            .limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recently_missed(kid, Instant::now(), cooldown);
        if missed_recently {
            tracing::debug!(url = %redact_url(jwks_url), "unknown key id, still unknown after a recent refetch");
            return Err(missing);
        }
        match self
            .refetch(jwks_url, &entry, Trigger::UnknownKey(kid, alg))
            .await
        {
            Ok(Refetched::Fresh(fresh)) => fresh.find(kid, alg),
            Ok(Refetched::Skipped) => match entry.recent_failure(Instant::now(), cooldown) {
                // Fail closed as unavailable: the set cannot be refreshed now.
                Some(reason) => Err(lti_jose::Error::KeySourceUnavailable {
                    url: redact_url(jwks_url),
                    reason: format!(
                        "refreshing the key set failed less than {} s ago: {reason}",
                        cooldown.as_secs()
                    ),
                }),
                None => {
                    tracing::debug!(url = %redact_url(jwks_url), "unknown key id; refetch skipped (budget spent)");
                    Err(missing)
                }
            },
            Err(e) => Err(unavailable(jwks_url, &e)),
        }
    }

    /// The current key set at `jwks_url` (cached or fetched).
    pub async fn key_set(&self, jwks_url: &str) -> Result<JwkSet, Error> {
        Ok(self.current(jwks_url).await?.set.clone())
    }

    /// Forgets the key set of `jwks_url`.
    pub async fn invalidate(&self, jwks_url: &str) {
        self.inner.cache.invalidate(jwks_url).await;
    }

    async fn current(&self, url: &str) -> Result<Arc<KeySetEntry>, Error> {
        let now = Instant::now();
        if let Some(entry) = self.inner.cache.get(url).await {
            if entry.is_fresh(now) {
                tracing::trace!(url = %redact_url(url), cache = "hit", "jwks lookup");
                bump(&self.inner.counters.hits);
                return Ok(entry);
            }
            // Past its lifetime but kept for the stale window.
            return match self.refetch(url, &entry, Trigger::Expired).await {
                Ok(Refetched::Fresh(fresh)) => Ok(fresh),
                Ok(Refetched::Skipped) => {
                    tracing::warn!(url = %redact_url(url), cache = "stale", "serving an expired key set (refresh failed recently)");
                    bump(&self.inner.counters.stale_served);
                    Ok(entry)
                }
                Err(e) if self.inner.config.serve_stale_for.is_some() => {
                    tracing::warn!(url = %redact_url(url), cache = "stale", error.code = e.code(), "serving an expired key set (refresh failed)");
                    bump(&self.inner.counters.stale_served);
                    Ok(entry)
                }
                Err(e) => Err(e),
            };
        }
        tracing::debug!(url = %redact_url(url), cache = "miss", "jwks lookup");
        bump(&self.inner.counters.misses);
        self.inner
            .cache
            .try_get_with(url.to_owned(), self.fetch(url, RefetchLimiter::new()))
            .await
            .map_err(|e| (*e).clone())
    }

    /// Replaces `observed` by a fresh fetch unless another caller already did
    /// (then that set is the answer) or the limits forbid it. Calls for one URL
    /// run one at a time, so a burst shares one fetch.
    async fn refetch(
        &self,
        url: &str,
        observed: &Arc<KeySetEntry>,
        trigger: Trigger<'_>,
    ) -> Result<Refetched, Error> {
        let config = &self.inner.config;
        let result = self
            .inner
            .cache
            .entry(url.to_owned())
            .and_try_compute_with(|current| async move {
                let Some(current) = &current else {
                    return self.fetch(url, RefetchLimiter::new()).await.map(Op::Put);
                };
                let current = current.value();
                if !Arc::ptr_eq(current, observed)
                    || !current.may_refetch(Instant::now(), config, trigger)
                {
                    return Ok(Op::Nop);
                }
                tracing::debug!(url = %redact_url(url), cache = "refetch", trigger = ?trigger, "jwks refetch");
                bump(&self.inner.counters.refetches);
                match self.fetch(url, current.limiter.clone()).await {
                    Ok(fresh) => {
                        // Recorded before the set is published, so a lookup that
                        // sees the new set also sees that the kid is not in it.
                        if let Trigger::UnknownKey(kid, alg) = trigger
                            && fresh.lacks(kid, alg)
                        {
                            fresh
                                .limiter
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .record_miss(kid, Instant::now(), config.refetch_cooldown, config.max_missed_kids);
                        }
                        Ok(Op::Put(fresh))
                    }
                    Err(e) => {
                        current.record_failure(Instant::now(), &e);
                        Err(e)
                    }
                }
            })
            .await?;
        Ok(match result {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) => {
                Refetched::Fresh(e.into_value())
            }
            CompResult::Unchanged(e) if !Arc::ptr_eq(e.value(), observed) => {
                Refetched::Fresh(e.into_value())
            }
            CompResult::Unchanged(_) | CompResult::StillNone(_) | CompResult::Removed(_) => {
                Refetched::Skipped
            }
        })
    }

    /// Fetches the set at `url` into an entry that keeps the URL's `limiter`.
    async fn fetch(
        &self,
        url: &str,
        limiter: Arc<Mutex<RefetchLimiter>>,
    ) -> Result<Arc<KeySetEntry>, Error> {
        let fetched = self.fetch_in(url, limiter).await;
        if fetched.is_err() {
            bump(&self.inner.counters.fetch_errors);
        }
        fetched
    }

    async fn fetch_in(
        &self,
        url: &str,
        limiter: Arc<Mutex<RefetchLimiter>>,
    ) -> Result<Arc<KeySetEntry>, Error> {
        let config = &self.inner.config;
        let uri = parse_absolute(url)?;
        let mut req = Request::new(Bytes::new());
        *req.uri_mut() = uri;
        req.headers_mut().insert(
            ACCEPT,
            HeaderValue::from_static("application/json, application/jwk-set+json"),
        );
        req.extensions_mut()
            .insert(MaxResponseBytes(config.max_keyset_bytes));
        let resp = send_with_retry(&*self.inner.client, req, &config.retry).await?;
        let resp = check_status(url, resp)?;
        if resp.body().len() > config.max_keyset_bytes {
            return Err(Error::BodyTooLarge {
                url: redact_url(url),
                limit: config.max_keyset_bytes,
            });
        }
        let set = JwkSet::from_slice(resp.body()).map_err(|source| Error::InvalidJwks {
            url: redact_url(url),
            source,
        })?;
        let ttl = config.ttl_for(resp.headers());
        tracing::debug!(url = %redact_url(url), keys = set.keys.len(), ttl_secs = ttl.as_secs(), "jwks fetched");
        Ok(Arc::new(KeySetEntry {
            set,
            fetched_at: Instant::now(),
            ttl,
            keep_for: ttl + config.serve_stale_for.unwrap_or(Duration::ZERO),
            last_failure: Mutex::new(None),
            resolved: Mutex::new(Vec::new()),
            limiter,
        }))
    }
}

fn unavailable(url: &str, e: &Error) -> lti_jose::Error {
    lti_jose::Error::KeySourceUnavailable {
        url: redact_url(url),
        reason: e.to_string(),
    }
}

#[async_trait::async_trait]
impl lti_jose::KeySource for JwksCache {
    async fn key(
        &self,
        jwks_url: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, lti_jose::Error> {
        JwksCache::key(self, jwks_url, kid, alg).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cc: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in cc {
            h.append(CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn max_age_is_clamped_to_the_configured_bounds() {
        let c = JwksCacheConfig::default();
        assert_eq!(
            c.ttl_for(&headers(&["public, max-age=600"])),
            Duration::from_secs(600)
        );
        assert_eq!(c.ttl_for(&headers(&["max-age=5"])), Duration::from_secs(60));
        assert_eq!(
            c.ttl_for(&headers(&["max-age=9999999"])),
            Duration::from_secs(86_400)
        );
        assert_eq!(
            c.ttl_for(&headers(&["max-age=\"120\""])),
            Duration::from_secs(120)
        );
        assert_eq!(c.ttl_for(&headers(&["no-store"])), Duration::from_secs(60));
        assert_eq!(
            c.ttl_for(&headers(&["public", "MAX-AGE=300"])),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn missing_or_invalid_max_age_uses_the_default() {
        let c = JwksCacheConfig::default();
        assert_eq!(c.ttl_for(&HeaderMap::new()), Duration::from_secs(3600));
        assert_eq!(
            c.ttl_for(&headers(&["max-age=soon"])),
            Duration::from_secs(3600)
        );
        assert_eq!(
            c.ttl_for(&headers(&["max-age=-1"])),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn a_missed_kid_waits_out_the_cooldown_and_others_do_not() {
        let cooldown = Duration::from_secs(10);
        let t0 = Instant::now();
        let limiter = RefetchLimiter::new();
        let mut l = limiter.lock().unwrap();
        assert!(!l.recently_missed(Some("k"), t0, cooldown));
        l.record_miss(Some("k"), t0, cooldown, 64);
        assert!(l.recently_missed(Some("k"), t0 + Duration::from_secs(9), cooldown));
        assert!(!l.recently_missed(Some("other"), t0, cooldown));
        assert!(!l.recently_missed(None, t0, cooldown));
        assert!(!l.recently_missed(Some("k"), t0 + cooldown, cooldown));
        // Missed again: remembered once, from the latest miss.
        l.record_miss(Some("k"), t0 + cooldown, cooldown, 64);
        assert_eq!(l.missed.len(), 1);
        assert!(l.recently_missed(Some("k"), t0 + Duration::from_secs(19), cooldown));
    }

    #[test]
    fn the_missed_set_is_bounded_and_forgets_the_oldest() {
        let cooldown = Duration::from_secs(10);
        let t0 = Instant::now();
        let limiter = RefetchLimiter::new();
        let mut l = limiter.lock().unwrap();
        for i in 0..100 {
            l.record_miss(Some(&format!("kid-{i}")), t0, cooldown, 8);
        }
        assert_eq!(l.missed.len(), 8);
        assert!(!l.recently_missed(Some("kid-91"), t0, cooldown));
        assert!(l.recently_missed(Some("kid-92"), t0, cooldown));
        assert!(l.recently_missed(Some("kid-99"), t0, cooldown));
        // Expired entries are dropped on the next record.
        l.record_miss(Some("late"), t0 + cooldown, cooldown, 8);
        assert_eq!(l.missed.len(), 1);
    }

    #[test]
    fn the_budget_allows_so_many_refetches_per_window() {
        let window = Duration::from_secs(10);
        let t0 = Instant::now();
        let limiter = RefetchLimiter::new();
        let mut l = limiter.lock().unwrap();
        for _ in 0..3 {
            assert!(l.try_spend(t0, window, 3));
        }
        assert!(!l.try_spend(t0, window, 3));
        assert!(!l.try_spend(t0 + Duration::from_secs(9), window, 3));
        assert!(l.try_spend(t0 + window, window, 3));
        let empty = RefetchLimiter::new();
        assert!(!empty.lock().unwrap().try_spend(t0, window, 0));
    }

    #[test]
    fn stale_serving_is_off_by_default() {
        assert_eq!(JwksCacheConfig::default().serve_stale_for, None);
        assert_eq!(JwksCacheConfig::default().max_unknown_kid_refetches, 4);
        assert_eq!(JwksCacheConfig::default().max_missed_kids, 64);
        let relaxed = JwksCacheConfig::default().allow_stale_keys_for(Duration::from_secs(600));
        assert_eq!(relaxed.serve_stale_for, Some(Duration::from_secs(600)));
    }
}
