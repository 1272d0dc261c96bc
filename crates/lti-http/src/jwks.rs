//! The platform JWKS cache: an [`lti_jose::KeySource`] over remote key sets.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL};
use http::{HeaderMap, HeaderValue, Request};
use lti_jose::{Algorithm, JwkSet, VerifyingKey};
use moka::ops::compute::{CompResult, Op};

use crate::cache::{PerEntryTtl, TimeToLive};
use crate::error::Error;
use crate::retry::{RetryPolicy, check_status, send_with_retry};
use crate::transport::{HttpClient, MaxResponseBytes};
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
    /// An unknown `kid` refetches a key set at most once per this period and
    /// URL (default 10 s), so a flood of bad tokens cannot turn the tool into
    /// a request amplifier. Failed refreshes are rate-limited the same way.
    pub refetch_cooldown: Duration,
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
    /// When a refresh of this entry last failed.
    last_failure: Mutex<Option<Instant>>,
    /// Keys already resolved from `set`, so warm lookups do not re-parse.
    resolved: Mutex<Vec<(Option<String>, Algorithm, VerifyingKey)>>,
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

    /// Whether a refetch may run now: the cooldown has passed since the last
    /// fetch (for an unknown key) and since the last failed refresh.
    fn may_refetch(&self, now: Instant, cooldown: Duration, trigger: Trigger) -> bool {
        let last_failure = *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let since_failure_ok = last_failure.is_none_or(|t| now.duration_since(t) >= cooldown);
        match trigger {
            Trigger::UnknownKey => {
                since_failure_ok && now.duration_since(self.fetched_at) >= cooldown
            }
            Trigger::Expired => since_failure_ok,
        }
    }

    fn record_failure(&self, now: Instant) {
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(now);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trigger {
    UnknownKey,
    Expired,
}

struct Inner {
    client: Arc<dyn HttpClient>,
    config: JwksCacheConfig,
    cache: moka::future::Cache<String, Arc<KeySetEntry>>,
}

/// A cache of remote JWK Sets keyed by URL; implements
/// [`lti_jose::KeySource`] for the launch verifier.
///
/// * Concurrent misses for one URL make exactly one request.
/// * A key set lives for its `Cache-Control: max-age`, clamped to
///   `[min_ttl, max_ttl]` (1 h when absent).
/// * An unknown `kid` refetches at most once per `refetch_cooldown` per URL.
/// * Failed fetches are not cached; the next lookup tries again.
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
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &JwksCacheConfig {
        &self.inner.config
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
        match entry.find(kid, alg) {
            Err(missing @ (lti_jose::Error::UnknownKid { .. } | lti_jose::Error::NoKeys)) => {
                match self.refetch(jwks_url, &entry, Trigger::UnknownKey).await {
                    Ok(Some(fresh)) => fresh.find(kid, alg),
                    Ok(None) => {
                        tracing::debug!(url = %redact_url(jwks_url), "unknown key id; refetch skipped (cooldown)");
                        Err(missing)
                    }
                    Err(e) => Err(unavailable(jwks_url, &e)),
                }
            }
            other => other,
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
                return Ok(entry);
            }
            // Past its lifetime but kept for the stale window.
            return match self.refetch(url, &entry, Trigger::Expired).await {
                Ok(Some(fresh)) => Ok(fresh),
                Ok(None) => {
                    tracing::warn!(url = %redact_url(url), cache = "stale", "serving an expired key set (refresh failed recently)");
                    Ok(entry)
                }
                Err(e) if self.inner.config.serve_stale_for.is_some() => {
                    tracing::warn!(url = %redact_url(url), cache = "stale", error.code = e.code(), "serving an expired key set (refresh failed)");
                    Ok(entry)
                }
                Err(e) => Err(e),
            };
        }
        tracing::debug!(url = %redact_url(url), cache = "miss", "jwks lookup");
        self.inner
            .cache
            .try_get_with(url.to_owned(), self.fetch(url))
            .await
            .map_err(|e| (*e).clone())
    }

    /// Replaces `observed` by a fresh fetch unless another caller already did
    /// or the cooldown forbids it. `Ok(None)`: nothing was fetched.
    async fn refetch(
        &self,
        url: &str,
        observed: &Arc<KeySetEntry>,
        trigger: Trigger,
    ) -> Result<Option<Arc<KeySetEntry>>, Error> {
        let cooldown = self.inner.config.refetch_cooldown;
        let result = self
            .inner
            .cache
            .entry(url.to_owned())
            .and_try_compute_with(|current| async move {
                if let Some(current) = &current {
                    let current = current.value();
                    let now = Instant::now();
                    if !Arc::ptr_eq(current, observed) || !current.may_refetch(now, cooldown, trigger) {
                        return Ok(Op::Nop);
                    }
                    tracing::debug!(url = %redact_url(url), cache = "refetch", trigger = ?trigger, "jwks refetch");
                    return match self.fetch(url).await {
                        Ok(fresh) => Ok(Op::Put(fresh)),
                        Err(e) => {
                            current.record_failure(Instant::now());
                            Err(e)
                        }
                    };
                }
                self.fetch(url).await.map(Op::Put)
            })
            .await?;
        Ok(match result {
            CompResult::Inserted(e) | CompResult::ReplacedWith(e) => Some(e.into_value()),
            CompResult::Unchanged(e) if !Arc::ptr_eq(e.value(), observed) => Some(e.into_value()),
            CompResult::Unchanged(_) | CompResult::StillNone(_) | CompResult::Removed(_) => None,
        })
    }

    async fn fetch(&self, url: &str) -> Result<Arc<KeySetEntry>, Error> {
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
    fn stale_serving_is_off_by_default() {
        assert_eq!(JwksCacheConfig::default().serve_stale_for, None);
        let relaxed = JwksCacheConfig::default().allow_stale_keys_for(Duration::from_secs(600));
        assert_eq!(relaxed.serve_stale_for, Some(Duration::from_secs(600)));
    }
}
