//! Generic TTL caches: a per-URL GET response cache and an async memoizer.

use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use moka::Expiry;

use crate::client::HttpClient;
use crate::error::Error;
use crate::url::redact_url;

/// A cached value that knows how long it may live (used with moka's
/// per-entry expiry).
pub(crate) trait TimeToLive {
    fn time_to_live(&self) -> Duration;
}

/// moka [`Expiry`] that reads the lifetime from the value on every write.
pub(crate) struct PerEntryTtl;

impl<K, V: TimeToLive> Expiry<K, V> for PerEntryTtl {
    fn expire_after_create(&self, _key: &K, value: &V, _created_at: Instant) -> Option<Duration> {
        Some(value.time_to_live())
    }

    fn expire_after_update(
        &self,
        _key: &K,
        value: &V,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.time_to_live())
    }
}

#[derive(Clone)]
struct StoredResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    ttl: Duration,
}

impl TimeToLive for StoredResponse {
    fn time_to_live(&self) -> Duration {
        self.ttl
    }
}

impl StoredResponse {
    fn to_response(&self) -> Response<Bytes> {
        let mut r = Response::new(self.body.clone());
        *r.status_mut() = self.status;
        *r.headers_mut() = self.headers.clone();
        r
    }
}

/// Why a response was not put in the cache: passed to every coalesced caller.
#[derive(Clone)]
enum NotCached {
    Response(StoredResponse),
    Failed(Error),
}

/// An [`HttpClient`] wrapper that caches `200` responses to plain `GET`s of
/// chosen URLs for a fixed time.
///
/// Only URLs starting with a registered prefix are cached; requests with an
/// `Authorization` header are never cached. The key is the full URL plus the
/// `Accept` header, and concurrent misses for one key make one request.
///
/// ```
/// use std::{sync::{Arc, atomic::{AtomicUsize, Ordering}}, time::Duration};
/// use bytes::Bytes;
/// use lti_http::{FnClient, HttpClient, ResponseCache};
///
/// let calls = Arc::new(AtomicUsize::new(0));
/// let counter = calls.clone();
/// let inner = FnClient::new(move |_req| {
///     counter.fetch_add(1, Ordering::SeqCst);
///     async { Ok(http::Response::new(Bytes::from_static(b"{}"))) }
/// });
/// let cached = ResponseCache::new(inner, 100)
///     .cache_prefix("https://lms.test/config/", Duration::from_secs(60));
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// for _ in 0..3 {
///     let req = http::Request::get("https://lms.test/config/a").body(Bytes::new()).unwrap();
///     cached.send(req).await.unwrap();
/// }
/// # });
/// assert_eq!(calls.load(Ordering::SeqCst), 1);
/// ```
pub struct ResponseCache<C> {
    inner: C,
    rules: Vec<(String, Duration)>,
    cache: moka::future::Cache<String, StoredResponse>,
}

impl<C> std::fmt::Debug for ResponseCache<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("rules", &self.rules)
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

impl<C: HttpClient> ResponseCache<C> {
    /// Wraps `inner`, keeping at most `max_entries` responses.
    pub fn new(inner: C, max_entries: u64) -> Self {
        Self {
            inner,
            rules: Vec::new(),
            cache: moka::future::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
        }
    }

    /// Caches GETs of URLs starting with `prefix` for `ttl` (the longest
    /// matching prefix wins).
    pub fn cache_prefix(mut self, prefix: impl Into<String>, ttl: Duration) -> Self {
        self.rules.push((prefix.into(), ttl));
        self.rules.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        self
    }

    /// Drops the cached responses of `url` (all `Accept` variants).
    pub fn invalidate_url(&self, url: &str) {
        let prefix = format!("{url}\n");
        let _ = self
            .cache
            .invalidate_entries_if(move |k, _| k.starts_with(&prefix));
    }

    fn ttl_for(&self, req: &Request<Bytes>) -> Option<Duration> {
        if req.method() != Method::GET || req.headers().contains_key(AUTHORIZATION) {
            return None;
        }
        let url = req.uri().to_string();
        self.rules
            .iter()
            .find(|(p, _)| url.starts_with(p.as_str()))
            .map(|(_, ttl)| *ttl)
    }
}

#[async_trait::async_trait]
impl<C: HttpClient> HttpClient for ResponseCache<C> {
    async fn send(&self, req: Request<Bytes>) -> Result<Response<Bytes>, Error> {
        let Some(ttl) = self.ttl_for(&req) else {
            return self.inner.send(req).await;
        };
        let url = req.uri().to_string();
        let accept = req
            .headers()
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let key = format!("{url}\n{accept}");
        if let Some(hit) = self.cache.get(&key).await {
            tracing::debug!(url = %redact_url(&url), cache = "hit", "response cache");
            return Ok(hit.to_response());
        }
        tracing::debug!(url = %redact_url(&url), cache = "miss", "response cache");
        let loaded = self
            .cache
            .try_get_with(key, async {
                match self.inner.send(req).await {
                    Ok(resp) => {
                        let (parts, body) = resp.into_parts();
                        let stored = StoredResponse {
                            status: parts.status,
                            headers: parts.headers,
                            body,
                            ttl,
                        };
                        if stored.status == StatusCode::OK {
                            Ok(stored)
                        } else {
                            Err(NotCached::Response(stored))
                        }
                    }
                    Err(e) => Err(NotCached::Failed(e)),
                }
            })
            .await;
        match loaded {
            Ok(stored) => Ok(stored.to_response()),
            Err(e) => match e.as_ref() {
                NotCached::Response(stored) => Ok(stored.to_response()),
                NotCached::Failed(err) => Err(err.clone()),
            },
        }
    }
}

/// Memoizes an async function per key for a fixed time; concurrent misses
/// for one key run the function once and errors are not cached.
///
/// ```
/// use std::time::Duration;
/// use lti_http::Memo;
///
/// let memo: Memo<u32, String> = Memo::new(Duration::from_secs(300), 1_000);
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let v = memo
///     .get_or_try_insert(7, || async { Ok::<_, std::io::Error>("seven".to_owned()) })
///     .await
///     .unwrap();
/// assert_eq!(v, "seven");
/// // A second call within the TTL does not run the function.
/// let again = memo
///     .get_or_try_insert(7, || async { Err(std::io::Error::other("not called")) })
///     .await
///     .unwrap();
/// assert_eq!(again, "seven");
/// # });
/// ```
pub struct Memo<K, V> {
    cache: moka::future::Cache<K, V>,
}

impl<K, V> std::fmt::Debug for Memo<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo").finish_non_exhaustive()
    }
}

impl<K, V> Clone for Memo<K, V> {
    fn clone(&self) -> Self {
        Self {
            cache: self.cache.clone(),
        }
    }
}

impl<K, V> Memo<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Results live `ttl`; at most `max_entries` are kept.
    pub fn new(ttl: Duration, max_entries: u64) -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Returns the memoized value for `key`, running `f` on a miss.
    pub async fn get_or_try_insert<F, Fut, E>(&self, key: K, f: F) -> Result<V, Arc<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Send + Sync + 'static,
    {
        self.cache.try_get_with(key, f()).await
    }

    /// Forgets `key`.
    pub async fn invalidate(&self, key: &K) {
        self.cache.invalidate(key).await;
    }
}
