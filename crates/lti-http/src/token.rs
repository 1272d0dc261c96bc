//! OAuth 2.0 client-credentials grant with a JWT client assertion
//! (RFC 6749 §4.4, RFC 7523), the token cache seam and its in-memory default.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response};
use lti_jose::SigningKey;
use lti_registry::SharedValueStore;
use serde::{Deserialize, Serialize};

use crate::cache::{PerEntryTtl, TimeToLive};
use crate::error::Error;
use crate::retry::check_status;
use crate::url::{parse_absolute, redact_url};

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Lifetime of a client assertion (`exp - iat`), in seconds.
pub const ASSERTION_LIFETIME_SECS: u64 = 300;

/// Lifetime assumed when a token response has no `expires_in`, in seconds.
pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 300;

/// Where and how a tool obtains service access tokens for one registration.
///
/// Plain data so that higher crates can build it from any registration
/// model.
#[derive(Clone, Debug)]
pub struct TokenEndpointConfig {
    /// The OAuth client id (`iss` and `sub` of the assertion).
    pub client_id: String,
    /// The platform's token endpoint.
    pub token_url: String,
    /// The assertion's `aud` when it is not the token URL (e.g. D2L's
    /// `https://api.brightspace.com/auth/token`).
    pub audience: Option<String>,
    /// The tool's private key; its `kid` goes in the assertion header.
    pub signing_key: Arc<SigningKey>,
}

impl TokenEndpointConfig {
    /// A configuration whose assertion audience is the token URL.
    pub fn new(
        client_id: impl Into<String>,
        token_url: impl Into<String>,
        signing_key: Arc<SigningKey>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            token_url: token_url.into(),
            audience: None,
            signing_key,
        }
    }

    /// Uses `audience` as the assertion's `aud`.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// The assertion's `aud`: the override or the token URL.
    pub fn assertion_audience(&self) -> &str {
        self.audience.as_deref().unwrap_or(&self.token_url)
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: &'a str,
}

/// Builds the signed client assertion: `iss` = `sub` = client id, `aud` =
/// [`TokenEndpointConfig::assertion_audience`], `iat` = `issued_at`, `exp` =
/// `issued_at +` [`ASSERTION_LIFETIME_SECS`], the given `jti`; the header
/// carries the key's `alg` and `kid`.
///
/// [`ServiceClient`](crate::ServiceClient) calls it with the current time and
/// a fresh random `jti` for every token request.
pub fn client_assertion(
    config: &TokenEndpointConfig,
    issued_at: u64,
    jti: &str,
) -> Result<String, Error> {
    let claims = AssertionClaims {
        iss: &config.client_id,
        sub: &config.client_id,
        aud: config.assertion_audience(),
        iat: issued_at,
        exp: issued_at + ASSERTION_LIFETIME_SECS,
        jti,
    };
    lti_jose::sign(&claims, &config.signing_key).map_err(Error::Signing)
}

/// A fresh `jti`: 128 random bits, base64url.
pub(crate) fn fresh_jti(rng: &dyn ring::rand::SecureRandom) -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes).map_err(|_| Error::InvalidRequest {
        reason: "the system random generator failed".to_owned(),
    })?;
    Ok(lti_jose::b64::encode(&bytes))
}

/// Builds the token request: `POST` of `grant_type=client_credentials`,
/// `client_assertion_type`, `client_assertion` and `scope` (omitted when
/// empty) as `application/x-www-form-urlencoded`.
pub fn token_request(
    config: &TokenEndpointConfig,
    scope: &str,
    assertion: &str,
) -> Result<Request<Bytes>, Error> {
    let uri = parse_absolute(&config.token_url)?;
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials")
        .append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE)
        .append_pair("client_assertion", assertion);
    if !scope.is_empty() {
        form.append_pair("scope", scope);
    }
    let mut req = Request::new(Bytes::from(form.finish()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri;
    req.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    req.headers_mut()
        .insert(ACCEPT, HeaderValue::from_static("application/json"));
    Ok(req)
}

/// An access token. `Debug` never prints the token itself; cloning is cheap.
///
/// Serializes (for shared [`TokenCache`] stores) as a JSON object with
/// `access_token`, `expires_at`, `refresh_at`, `obtained_at_ms` and `scope`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "AccessTokenWire", into = "AccessTokenWire")]
pub struct AccessToken {
    access_token: Arc<str>,
    expires_at: u64,
    refresh_at: u64,
    obtained_at_ms: u64,
    scope: Option<Arc<str>>,
}

/// The serialized form of [`AccessToken`].
#[derive(Serialize, Deserialize)]
struct AccessTokenWire {
    access_token: String,
    expires_at: u64,
    refresh_at: u64,
    obtained_at_ms: u64,
    #[serde(default)]
    scope: Option<String>,
}

impl From<AccessTokenWire> for AccessToken {
    fn from(w: AccessTokenWire) -> Self {
        Self {
            access_token: w.access_token.into(),
            expires_at: w.expires_at,
            refresh_at: w.refresh_at.min(w.expires_at),
            obtained_at_ms: w.obtained_at_ms,
            scope: w.scope.map(Into::into),
        }
    }
}

impl From<AccessToken> for AccessTokenWire {
    fn from(t: AccessToken) -> Self {
        Self {
            access_token: t.access_token.to_string(),
            expires_at: t.expires_at,
            refresh_at: t.refresh_at,
            obtained_at_ms: t.obtained_at_ms,
            scope: t.scope.map(|s| s.to_string()),
        }
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("access_token", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .field("refresh_at", &self.refresh_at)
            .field("scope", &self.scope)
            .finish()
    }
}

impl AccessToken {
    /// A token obtained at `now` (Unix seconds) that expires `expires_in`
    /// seconds later; it is replaced `margin` before that (at most half
    /// its lifetime early).
    pub fn new(
        access_token: impl Into<String>,
        now: u64,
        expires_in: u64,
        margin: Duration,
        scope: Option<String>,
    ) -> Self {
        let early = margin.as_secs().min(expires_in / 2);
        Self {
            access_token: Arc::from(access_token.into()),
            expires_at: now + expires_in,
            refresh_at: now + expires_in - early,
            obtained_at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            scope: scope.map(Into::into),
        }
    }

    /// The bearer token, for the `Authorization` header only.
    pub fn secret(&self) -> &str {
        &self.access_token
    }

    /// Expiry in Unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// When the token should be replaced, in Unix seconds.
    pub fn refresh_at(&self) -> u64 {
        self.refresh_at
    }

    /// The granted scope when the server reported it.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Whether the token may still be used at `now`.
    pub fn is_usable(&self, now: u64) -> bool {
        now < self.refresh_at
    }

    /// Whether this token was obtained after `other` (or is a different token).
    pub(crate) fn supersedes(&self, other: &AccessToken) -> bool {
        self.access_token != other.access_token || self.obtained_at_ms > other.obtained_at_ms
    }

    fn header_value(&self) -> Result<HeaderValue, Error> {
        let mut v =
            HeaderValue::from_str(&format!("Bearer {}", self.access_token)).map_err(|_| {
                Error::InvalidRequest {
                    reason: "the access token is not a valid header value (expected visible ASCII)"
                        .to_owned(),
                }
            })?;
        v.set_sensitive(true);
        Ok(v)
    }

    /// Sets `Authorization: Bearer <token>` (marked sensitive) on `req`.
    pub fn authorize(&self, req: &mut Request<Bytes>) -> Result<(), Error> {
        req.headers_mut()
            .insert(http::header::AUTHORIZATION, self.header_value()?);
        Ok(())
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
}

/// `expires_in` as a number or a numeric string (both occur in the wild).
fn lenient_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrString {
        Num(u64),
        Float(f64),
        Str(String),
    }
    Ok(match Option::<NumOrString>::deserialize(d)? {
        None => None,
        Some(NumOrString::Num(n)) => Some(n),
        Some(NumOrString::Float(f)) if f >= 0.0 => Some(f as u64),
        Some(NumOrString::Float(_)) => None,
        Some(NumOrString::Str(s)) => s.trim().parse().ok(),
    })
}

#[derive(Deserialize)]
struct OAuthErrorBody {
    error: Option<String>,
    error_description: Option<String>,
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Parses a token endpoint response obtained at `now` (Unix seconds).
///
/// `400`/`401`/`403` become [`Error::TokenRejected`] with the RFC 6749
/// `error` code; other non-2xx statuses become [`Error::Status`] or
/// [`Error::Redirect`]; a 2xx must carry a `Bearer` token.
pub fn parse_token_response(
    url: &str,
    resp: Response<Bytes>,
    now: u64,
    margin: Duration,
) -> Result<AccessToken, Error> {
    let status = resp.status().as_u16();
    if matches!(status, 400 | 401 | 403) {
        let body: Option<OAuthErrorBody> = serde_json::from_slice(resp.body()).ok();
        return Err(Error::TokenRejected {
            url: redact_url(url),
            status,
            error: body
                .as_ref()
                .and_then(|b| b.error.as_deref())
                .map(|e| clip(e, 64)),
            description: body
                .as_ref()
                .and_then(|b| b.error_description.as_deref())
                .map(|d| clip(d, 200)),
        });
    }
    let resp = check_status(url, resp)?;
    let parsed: TokenResponse =
        serde_json::from_slice(resp.body()).map_err(|e| Error::InvalidResponse {
            url: redact_url(url),
            expected: "a JSON token response with access_token and token_type",
            found: format!(
                "{} at line {} column {}",
                classify(&e),
                e.line(),
                e.column()
            ),
        })?;
    if !parsed.token_type.eq_ignore_ascii_case("bearer") {
        return Err(Error::InvalidResponse {
            url: redact_url(url),
            expected: "token_type Bearer",
            found: format!("token_type {:?}", clip(&parsed.token_type, 32)),
        });
    }
    if parsed.access_token.is_empty() || !parsed.access_token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::InvalidResponse {
            url: redact_url(url),
            expected: "a non-empty access_token of visible ASCII characters",
            found: format!(
                "{} characters, not all visible ASCII",
                parsed.access_token.len()
            ),
        });
    }
    let expires_in = parsed.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS);
    if expires_in == 0 {
        return Err(Error::InvalidResponse {
            url: redact_url(url),
            expected: "a positive expires_in",
            found: "0".to_owned(),
        });
    }
    Ok(AccessToken::new(
        parsed.access_token,
        now,
        expires_in,
        margin,
        parsed.scope,
    ))
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "an I/O error",
        serde_json::error::Category::Syntax => "invalid JSON",
        serde_json::error::Category::Data => "JSON with missing or mistyped members",
        serde_json::error::Category::Eof => "truncated JSON",
    }
}

/// The cache key of a token: the registration and its sorted scope set.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenCacheKey {
    registration: String,
    scope: String,
}

impl TokenCacheKey {
    /// Sorts and de-duplicates `scopes`; each must be an RFC 6749 scope
    /// token (`%x21 / %x23-5B / %x5D-7E`).
    pub fn new<S: AsRef<str>>(registration_key: &str, scopes: &[S]) -> Result<Self, Error> {
        let mut sorted: Vec<&str> = Vec::with_capacity(scopes.len());
        for s in scopes {
            let s = s.as_ref();
            let valid = !s.is_empty()
                && s.bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !valid {
                return Err(Error::InvalidScope {
                    found: clip(s, 100),
                });
            }
            sorted.push(s);
        }
        sorted.sort_unstable();
        sorted.dedup();
        Ok(Self {
            registration: registration_key.to_owned(),
            scope: sorted.join(" "),
        })
    }

    /// The registration key.
    pub fn registration(&self) -> &str {
        &self.registration
    }

    /// The sorted, space-separated scope string sent to the token endpoint.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// A single string for key-value stores: `registration` and `scope`
    /// joined by a newline (a scope never contains one).
    pub fn storage_key(&self) -> String {
        format!("{}\n{}", self.registration, self.scope)
    }
}

/// What [`TokenCache::begin_fill`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FillLock {
    /// This caller requests the token; it hands the id (when there is one)
    /// to [`TokenCache::end_fill`] once the token is stored or the request
    /// failed.
    Acquired(Option<String>),
    /// Another instance is requesting the token of this key: wait for it to
    /// appear in the cache.
    Busy,
}

/// Where access tokens are kept between calls. The in-process
/// [`MemoryTokenCache`] is the default; [`SharedTokenCache`] keeps them in a
/// store shared by several instances of an app (Redis, PostgreSQL through
/// `lti-store`), so one token serves them all.
#[async_trait::async_trait]
pub trait TokenCache: Send + Sync {
    /// The token stored for `key`, if any (it may be past its refresh time;
    /// the caller checks).
    async fn get(&self, key: &TokenCacheKey) -> Result<Option<AccessToken>, Error>;
    /// Stores `token` for `ttl`.
    async fn put(
        &self,
        key: &TokenCacheKey,
        token: &AccessToken,
        ttl: Duration,
    ) -> Result<(), Error>;
    /// Forgets the token of `key`.
    async fn remove(&self, key: &TokenCacheKey) -> Result<(), Error>;

    /// Before requesting the token of `key` after a miss: whether this caller
    /// requests it, or another instance is requesting it already. A shared
    /// cache takes a lock every instance sees, held at most `lease` (so a
    /// crashed holder cannot block the others longer); the in-process default
    /// always answers [`FillLock::Acquired`] (`ServiceClient` already makes
    /// concurrent callers in one process share one request).
    async fn begin_fill(&self, key: &TokenCacheKey, lease: Duration) -> Result<FillLock, Error> {
        let _ = (key, lease);
        Ok(FillLock::Acquired(None))
    }

    /// Releases the lock [`begin_fill`](Self::begin_fill) gave with `id`.
    async fn end_fill(&self, key: &TokenCacheKey, id: &str) -> Result<(), Error> {
        let _ = (key, id);
        Ok(())
    }
}

/// The namespace of cached tokens in a [`SharedValueStore`].
pub const TOKEN_NAMESPACE: &str = "service_token";
/// The namespace of token fill locks in a [`SharedValueStore`].
pub const TOKEN_LOCK_NAMESPACE: &str = "service_token_lock";

/// A [`TokenCache`] on a [`SharedValueStore`] (e.g. `lti_store::open(..)`'s
/// `cached_values`: Redis, PostgreSQL): every instance sharing the store
/// shares the tokens, and a miss takes a lock in the store
/// ([`SharedValueStore::insert_value`] with an expiry) so one instance
/// requests the token while the others wait for it (`ServiceClient` polls
/// the cache). Tokens are stored as JSON (see [`AccessToken`]) until their
/// refresh time.
///
/// The store holds bearer tokens: give it the protection the platform's
/// grade book deserves (TLS, access control).
#[derive(Clone)]
pub struct SharedTokenCache {
    store: Arc<dyn SharedValueStore>,
    rng: Arc<ring::rand::SystemRandom>,
    clock: Arc<dyn lti_jose::Clock>,
}

impl std::fmt::Debug for SharedTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTokenCache").finish_non_exhaustive()
    }
}

impl SharedTokenCache {
    /// Tokens and locks in `store`, expiries on the system clock.
    pub fn new(store: Arc<dyn SharedValueStore>) -> Self {
        Self {
            store,
            rng: Arc::new(ring::rand::SystemRandom::new()),
            clock: Arc::new(lti_jose::SystemClock),
        }
    }

    /// Reads time from `clock` (it must agree with the store's clock).
    pub fn with_clock(mut self, clock: Arc<dyn lti_jose::Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn expiry_after(&self, ttl: Duration) -> i64 {
        let now = i64::try_from(self.clock.now()).unwrap_or(i64::MAX);
        now.saturating_add(i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX))
    }
}

fn cache_error(e: lti_registry::RegistryError) -> Error {
    Error::TokenCache {
        reason: format!("{} ({})", e, e.code()),
    }
}

#[async_trait::async_trait]
impl TokenCache for SharedTokenCache {
    async fn get(&self, key: &TokenCacheKey) -> Result<Option<AccessToken>, Error> {
        let Some(json) = self
            .store
            .get_value(TOKEN_NAMESPACE, &key.storage_key())
            .await
            .map_err(cache_error)?
        else {
            return Ok(None);
        };
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| Error::TokenCache {
                reason: format!(
                    "expected a cached token as JSON, found {} at line {} column {}",
                    classify(&e),
                    e.line(),
                    e.column()
                ),
            })
    }

    async fn put(
        &self,
        key: &TokenCacheKey,
        token: &AccessToken,
        ttl: Duration,
    ) -> Result<(), Error> {
        let json = serde_json::to_string(token).map_err(|e| Error::TokenCache {
            reason: format!("serializing the token failed: {}", classify(&e)),
        })?;
        self.store
            .put_value(
                TOKEN_NAMESPACE,
                &key.storage_key(),
                &json,
                Some(self.expiry_after(ttl)),
            )
            .await
            .map_err(cache_error)
    }

    async fn remove(&self, key: &TokenCacheKey) -> Result<(), Error> {
        self.store
            .delete_value(TOKEN_NAMESPACE, &key.storage_key(), None)
            .await
            .map(drop)
            .map_err(cache_error)
    }

    async fn begin_fill(&self, key: &TokenCacheKey, lease: Duration) -> Result<FillLock, Error> {
        let id = fresh_jti(&*self.rng)?;
        let held = self
            .store
            .insert_value(
                TOKEN_LOCK_NAMESPACE,
                &key.storage_key(),
                &id,
                Some(self.expiry_after(lease)),
            )
            .await
            .map_err(cache_error)?;
        Ok(match held {
            None => FillLock::Acquired(Some(id)),
            Some(_) => FillLock::Busy,
        })
    }

    async fn end_fill(&self, key: &TokenCacheKey, id: &str) -> Result<(), Error> {
        self.store
            .delete_value(TOKEN_LOCK_NAMESPACE, &key.storage_key(), Some(id))
            .await
            .map(drop)
            .map_err(cache_error)
    }
}

#[derive(Clone)]
struct CachedToken {
    token: AccessToken,
    ttl: Duration,
}

impl TimeToLive for CachedToken {
    fn time_to_live(&self) -> Duration {
        self.ttl
    }
}

/// The default in-process [`TokenCache`] on `moka`.
#[derive(Clone)]
pub struct MemoryTokenCache {
    cache: moka::future::Cache<TokenCacheKey, CachedToken>,
}

impl std::fmt::Debug for MemoryTokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTokenCache")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl Default for MemoryTokenCache {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl MemoryTokenCache {
    /// Keeps at most `max_entries` tokens.
    pub fn new(max_entries: u64) -> Self {
        Self {
            cache: moka::future::Cache::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
        }
    }
}

#[async_trait::async_trait]
impl TokenCache for MemoryTokenCache {
    async fn get(&self, key: &TokenCacheKey) -> Result<Option<AccessToken>, Error> {
        Ok(self.cache.get(key).await.map(|c| c.token))
    }

    async fn put(
        &self,
        key: &TokenCacheKey,
        token: &AccessToken,
        ttl: Duration,
    ) -> Result<(), Error> {
        self.cache
            .insert(
                key.clone(),
                CachedToken {
                    token: token.clone(),
                    ttl,
                },
            )
            .await;
        Ok(())
    }

    async fn remove(&self, key: &TokenCacheKey) -> Result<(), Error> {
        self.cache.invalidate(key).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> Response<Bytes> {
        let mut r = Response::new(Bytes::from(body.to_owned()));
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
        r
    }

    const URL: &str = "https://lms.test/token";
    const MARGIN: Duration = Duration::from_secs(60);

    #[test]
    fn scopes_are_sorted_deduplicated_and_validated() {
        let k = TokenCacheKey::new("reg", &["b", "a", "b"]).unwrap();
        assert_eq!(k.scope(), "a b");
        assert_eq!(k, TokenCacheKey::new("reg", &["a", "b"]).unwrap());
        assert_ne!(k, TokenCacheKey::new("other", &["a", "b"]).unwrap());
        for bad in ["", "a b", "quo\"te", "back\\slash", "tab\t"] {
            assert!(
                matches!(
                    TokenCacheKey::new("r", &[bad]),
                    Err(Error::InvalidScope { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn token_response_is_parsed_with_margin() {
        let t = parse_token_response(
            URL,
            resp(
                200,
                r#"{"access_token":"abc","token_type":"bearer","expires_in":3600,"scope":"s"}"#,
            ),
            1000,
            MARGIN,
        )
        .unwrap();
        assert_eq!(t.secret(), "abc");
        assert_eq!(t.expires_at(), 4600);
        assert_eq!(t.refresh_at(), 4540);
        assert_eq!(t.scope(), Some("s"));
        assert!(t.is_usable(4539));
        assert!(!t.is_usable(4540));
        assert!(!format!("{t:?}").contains("abc"));
    }

    #[test]
    fn short_lifetimes_keep_half_their_life_and_strings_are_accepted() {
        let t = parse_token_response(
            URL,
            resp(
                200,
                r#"{"access_token":"abc","token_type":"Bearer","expires_in":"40"}"#,
            ),
            0,
            MARGIN,
        )
        .unwrap();
        assert_eq!(t.refresh_at(), 20);
        let d = parse_token_response(
            URL,
            resp(200, r#"{"access_token":"x","token_type":"Bearer"}"#),
            0,
            MARGIN,
        )
        .unwrap();
        assert_eq!(d.expires_at(), DEFAULT_TOKEN_LIFETIME_SECS);
    }

    #[test]
    fn token_endpoint_errors_are_specific() {
        match parse_token_response(
            URL,
            resp(400, r#"{"error":"invalid_scope","error_description":"no"}"#),
            0,
            MARGIN,
        ) {
            Err(Error::TokenRejected {
                status: 400,
                error: Some(e),
                description: Some(d),
                ..
            }) => {
                assert_eq!(e, "invalid_scope");
                assert_eq!(d, "no");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_token_response(URL, resp(401, "not json"), 0, MARGIN),
            Err(Error::TokenRejected {
                status: 401,
                error: None,
                ..
            })
        ));
        assert!(matches!(
            parse_token_response(URL, resp(500, ""), 0, MARGIN),
            Err(Error::Status { status: 500, .. })
        ));
        assert!(matches!(
            parse_token_response(
                URL,
                resp(200, r#"{"access_token":"x","token_type":"mac"}"#),
                0,
                MARGIN
            ),
            Err(Error::InvalidResponse {
                expected: "token_type Bearer",
                ..
            })
        ));
        assert!(matches!(
            parse_token_response(
                URL,
                resp(200, r#"{"access_token":"","token_type":"Bearer"}"#),
                0,
                MARGIN
            ),
            Err(Error::InvalidResponse { .. })
        ));
        assert!(matches!(
            parse_token_response(
                URL,
                resp(200, r#"{"access_token":"x y","token_type":"Bearer"}"#),
                0,
                MARGIN
            ),
            Err(Error::InvalidResponse { .. })
        ));
        assert!(matches!(
            parse_token_response(URL, resp(200, r#"{"token_type":"Bearer"}"#), 0, MARGIN),
            Err(Error::InvalidResponse { .. })
        ));
        assert!(matches!(
            parse_token_response(
                URL,
                resp(
                    200,
                    r#"{"access_token":"x","token_type":"Bearer","expires_in":0}"#
                ),
                0,
                MARGIN
            ),
            Err(Error::InvalidResponse {
                expected: "a positive expires_in",
                ..
            })
        ));
    }

    #[test]
    fn tokens_round_trip_through_json_for_shared_stores() {
        let t = AccessToken::new("abc", 100, 3600, MARGIN, Some("s1 s2".to_owned()));
        let json = serde_json::to_string(&t).unwrap();
        let back: AccessToken = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
        assert!(!back.supersedes(&t));
    }
}
