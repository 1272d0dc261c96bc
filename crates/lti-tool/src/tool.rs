//! The [`Tool`] and its builder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lti_jose::{Algorithm, KeySource, SigningKey};
use lti_message::ValidationOptions;
use lti_registry::{
    Clock, ConsumerStore, LaunchDataStore, NonceStore, RegistrationStore, Store, ToolKey,
    ToolKeyStore,
};
use ring::rand::SystemRandom;

use crate::cookie::StateCookies;
use crate::error::ToolError;
use crate::login_state::Sealer;
use crate::urls::{TargetRules, parse_base_url};

/// The default lifetime of a login's state (and of its cookie): 10 minutes.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(600);
/// The default clock-skew allowance for `exp`, `nbf` and `iat`: 60 seconds.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// The default maximum age of an id_token (from its `iat`): 5 minutes.
pub const DEFAULT_MAX_TOKEN_AGE: Duration = Duration::from_secs(300);
/// The default lifetime of a saved launch: 2 hours.
pub const DEFAULT_LAUNCH_TTL: Duration = Duration::from_secs(7200);
/// The default lifetime of a deep-linking response JWT: 5 minutes.
pub const DEFAULT_DEEP_LINK_TTL: Duration = Duration::from_secs(300);
/// The default `max-age` of the tool's JWKS document: 1 hour.
pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// The default time a retired tool key stays published: 1 hour.
pub const DEFAULT_RETIRED_KEY_OVERLAP: Duration = Duration::from_secs(3600);
/// The default size limit of an id_token: 16 KiB.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 16 * 1024;
/// The query parameter that carries the launch id on the redirect after a launch.
pub const LAUNCH_ID_PARAM: &str = "lti_launch_id";

/// An LTI 1.3 tool: OIDC login initiation, launch validation, deep-linking
/// responses, the tool JWKS and LTI 1.1 → 1.3 migration.
///
/// Built with [`Tool::builder`]; every relaxation of the secure defaults is a
/// builder method named `allow_*` or `insecure_*`. Cloning is cheap (the state is
/// shared), so one `Tool` serves every request.
#[derive(Clone)]
pub struct Tool {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tool")
            .field("base_url", &self.inner.base_url)
            .field("redirect_uri", &self.inner.redirect_uri)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) base_url: String,
    pub(crate) redirect_uri: String,
    /// Where a launch whose target is the redirect URI itself lands.
    pub(crate) landing_uri: String,
    /// The redirect URI's origin, as browsers send it in `Origin`.
    pub(crate) redirect_origin: String,
    pub(crate) targets: TargetRules,
    pub(crate) allow_http: bool,
    pub(crate) registrations: Arc<dyn RegistrationStore>,
    pub(crate) nonces: Arc<dyn NonceStore>,
    pub(crate) launch_data: Arc<dyn LaunchDataStore>,
    pub(crate) tool_keys: Arc<dyn ToolKeyStore>,
    pub(crate) consumers: Arc<dyn ConsumerStore>,
    pub(crate) key_source: Arc<dyn KeySource>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) cookies: StateCookies,
    /// Seals login states (key derived from the state secret).
    pub(crate) sealer: Sealer,
    pub(crate) leeway_secs: u64,
    pub(crate) max_token_age_secs: u64,
    pub(crate) state_ttl_secs: i64,
    pub(crate) launch_ttl_secs: i64,
    pub(crate) deep_link_ttl_secs: i64,
    pub(crate) jwks_max_age_secs: u64,
    pub(crate) retired_overlap_secs: i64,
    pub(crate) max_token_len: usize,
    pub(crate) validation: ValidationOptions,
    pub(crate) platform_storage: bool,
    /// Offer the new-window page when a framed launch lost its state cookie.
    pub(crate) new_window_fallback: bool,
    pub(crate) personal_data: crate::account::PersonalData,
    pub(crate) account_linker: Option<Arc<dyn crate::account::AccountLinker>>,
    pub(crate) rng: SystemRandom,
    signing_keys: Mutex<HashMap<String, Arc<SigningKey>>>,
}

impl Inner {
    /// The parsed signing key for a stored tool key (parsed once per kid).
    pub(crate) fn signing_key(&self, key: &ToolKey) -> Result<Arc<SigningKey>, ToolError> {
        let mut cache = self
            .signing_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(k) = cache.get(&key.kid) {
            return Ok(k.clone());
        }
        let alg: Algorithm = key.alg.parse().map_err(|e: lti_jose::Error| {
            ToolError::config(format!("tool key {:?}: {e}", key.kid))
        })?;
        let parsed = SigningKey::from_pem(key.private_key_pem.expose(), alg)
            .map_err(|e| ToolError::config(format!("tool key {:?}: {e}", key.kid)))?
            .with_kid(key.kid.clone());
        let parsed = Arc::new(parsed);
        if cache.len() > 64 {
            cache.clear();
        }
        cache.insert(key.kid.clone(), parsed.clone());
        Ok(parsed)
    }
}

impl Tool {
    /// Starts a builder. `public_base_url` is the tool's public origin and path
    /// prefix (e.g. `https://tool.example.com/`); the redirect URI and the allowed
    /// `target_link_uri`s derive from it, never from a request's `Host` header.
    /// `store` supplies every store the flows use.
    pub fn builder(public_base_url: impl Into<String>, store: &Store) -> ToolBuilder {
        ToolBuilder {
            base_url: public_base_url.into(),
            store: store.clone(),
            key_source: None,
            clock: None,
            redirect_uri: None,
            landing_uri: None,
            exact_targets: Vec::new(),
            prefix_targets: Vec::new(),
            cookie_secret: None,
            partitioned: false,
            state_ttl: DEFAULT_STATE_TTL,
            launch_ttl: DEFAULT_LAUNCH_TTL,
            deep_link_ttl: DEFAULT_DEEP_LINK_TTL,
            leeway: DEFAULT_LEEWAY,
            max_token_age: DEFAULT_MAX_TOKEN_AGE,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            jwks_max_age: DEFAULT_JWKS_MAX_AGE,
            retired_overlap: DEFAULT_RETIRED_KEY_OVERLAP,
            validation: ValidationOptions::default(),
            platform_storage: false,
            new_window_fallback: true,
            personal_data: crate::account::PersonalData::Store,
            account_linker: None,
            insecure_http: false,
        }
    }

    /// The public base URL.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The redirect URI (launch URL) sent to platforms.
    pub fn redirect_uri(&self) -> &str {
        &self.inner.redirect_uri
    }

    /// The landing URL: where a launch whose `target_link_uri` is the redirect
    /// URI itself is sent (see [`ToolBuilder::landing_uri`]).
    pub fn landing_uri(&self) -> &str {
        &self.inner.landing_uri
    }

    pub(crate) fn now(&self) -> i64 {
        self.inner.clock.now()
    }
}

/// Builds a [`Tool`]. Defaults are the secure ones: RS256 (per registration),
/// 60 s leeway, 5 min maximum token age, single-use state (10 min) and nonce,
/// `Secure; HttpOnly; SameSite=None` `__Host-` state cookie, no anonymous
/// launches, no unknown message types, HTTPS only.
pub struct ToolBuilder {
    base_url: String,
    store: Store,
    key_source: Option<Arc<dyn KeySource>>,
    clock: Option<Arc<dyn Clock>>,
    redirect_uri: Option<String>,
    landing_uri: Option<String>,
    exact_targets: Vec<String>,
    prefix_targets: Vec<String>,
    cookie_secret: Option<Vec<u8>>,
    partitioned: bool,
    state_ttl: Duration,
    launch_ttl: Duration,
    deep_link_ttl: Duration,
    leeway: Duration,
    max_token_age: Duration,
    max_token_len: usize,
    jwks_max_age: Duration,
    retired_overlap: Duration,
    validation: ValidationOptions,
    platform_storage: bool,
    new_window_fallback: bool,
    personal_data: crate::account::PersonalData,
    account_linker: Option<Arc<dyn crate::account::AccountLinker>>,
    insecure_http: bool,
}

impl std::fmt::Debug for ToolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolBuilder")
            .field("base_url", &self.base_url)
            .field("cookie_secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl ToolBuilder {
    /// Where platform keys come from: normally `lti_http::JwksCache` (the default,
    /// with `lti_http::HyperClient`), or a static `lti_jose::JwkSet` in tests.
    /// The default client refuses JWKS URLs on loopback, private and other
    /// non-public addresses (the egress policy); for a platform on the tool's
    /// own network, pass a `JwksCache` over a `HyperClient` built with
    /// `allow_private_addresses()`.
    pub fn key_source(mut self, source: Arc<dyn KeySource>) -> Self {
        self.key_source = Some(source);
        self
    }

    /// The clock (default: the system clock). Stores should share it.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The redirect URI registered with platforms (default: `<base>lti/launch`).
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// The landing URL (default: the public base URL): the application page a
    /// launch lands on when its `target_link_uri` is the redirect URI itself.
    ///
    /// Several LMSs have a single "launch URL" field that they use both as the
    /// OIDC `redirect_uri` and as the `target_link_uri` (Open edX's "Tool Launch
    /// URL", and Canvas or Moodle configurations that put the redirect URI into
    /// "Target Link URI" / "Tool URL"). The redirect URI only accepts the
    /// platform's POST, so the `303` after such a launch goes here instead,
    /// carrying the target's query parameters (e.g. `?resource=42`) and
    /// `lti_launch_id=<id>`. The launch route of `lti-axum` and `lti-actix`
    /// also answers a `GET` that carries a launch id with a redirect here
    /// ([`crate::web::launch_get`]). It must be an absolute URL (https, or http
    /// on loopback) and not the redirect URI.
    pub fn landing_uri(mut self, uri: impl Into<String>) -> Self {
        self.landing_uri = Some(uri.into());
        self
    }

    /// Allows exactly this `target_link_uri`. When no rule is configured, every
    /// URI under the public base URL is allowed.
    pub fn allow_target_link_uri(mut self, uri: impl Into<String>) -> Self {
        self.exact_targets.push(uri.into());
        self
    }

    /// Allows every `target_link_uri` under this prefix. The prefix must be an
    /// absolute URL ending in `/` (so `https://tool.example` cannot match
    /// `https://tool.example.evil`).
    pub fn allow_target_link_uri_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix_targets.push(prefix.into());
        self
    }

    /// The secret (at least 32 bytes) that binds state cookies to states and seals
    /// the login's state (the key that encrypts and authenticates the `state`
    /// value is derived from it). Every instance serving the same tool must use
    /// the same secret; the default is a random per-process secret, which only
    /// works with a single instance. Changing it refuses the logins in flight
    /// (`state_not_found`).
    pub fn state_cookie_secret(mut self, secret: &[u8]) -> Self {
        self.cookie_secret = Some(secret.to_vec());
        self
    }

    /// Adds `Partitioned` (CHIPS) to the state cookie, so browsers that block or
    /// partition third-party cookies keep it inside the LMS iframe (off by default).
    ///
    /// Recommended for tools launched in iframes: the cookie is only read back by
    /// the launch that follows the login in the same frame, hence in the same
    /// top-level-site partition. It applies whenever the cookie is `Secure`: an
    /// `https` base URL, or `http` on a loopback host (`localhost`, `127.0.0.1`,
    /// `[::1]`), which browsers treat as a secure context. It is left out with
    /// [`insecure_allow_http`](Self::insecure_allow_http) on a plain-`http` base URL,
    /// since `Partitioned` requires `Secure`.
    pub fn partitioned_state_cookie(mut self, on: bool) -> Self {
        self.partitioned = on;
        self
    }

    /// Binds the state through the platform's postMessage storage as well as the
    /// state cookie, when the platform offers it (`lti_storage_target` at login;
    /// spec digest §6); off by default.
    ///
    /// With it on, such a login answers a page (`200`, still setting the state
    /// cookie) whose script stores the state in the platform's storage and then
    /// continues to the authorization endpoint. A launch that comes back with the
    /// cookie completes as usual; one that comes back without any state cookie
    /// (the browser blocked it) is verified in full, kept pending for two
    /// minutes, and answered with a check page whose script reads the state back
    /// from the platform's storage, accepting only a reply from the origin of the
    /// platform's authorization endpoint. Only a matching state lets the page
    /// confirm the launch, in a same-origin POST to the redirect URI that carries
    /// the single-use pending id. [`Tool::handle_launch`] runs all of this; the
    /// cookie-only [`Tool::launch`] is unchanged.
    pub fn platform_storage(mut self, on: bool) -> Self {
        self.platform_storage = on;
        self
    }

    /// Whether a launch that comes back into an LMS frame without its state
    /// cookie, when the platform's storage cannot bind it either, is answered
    /// with a page offering to continue in a new window instead of the
    /// `state_cookie_missing` refusal (on by default). Its button (a form with
    /// `target="_blank"`) starts the login again in a new window with the
    /// original login parameters, where the state cookie is first-party; see
    /// [`NEW_WINDOW_PARAM`](crate::NEW_WINDOW_PARAM). To keep those parameters
    /// the login seals `login_hint` and `lti_message_hint` into the state (each
    /// when at most 2 KiB) for logins that do not store the state in the
    /// platform's storage.
    pub fn new_window_fallback(mut self, on: bool) -> Self {
        self.new_window_fallback = on;
        self
    }

    /// Lifetime of a login's state and its cookie (default 10 min). The expiry is
    /// sealed into the state; nothing is stored until the launch.
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.state_ttl = ttl;
        self
    }

    /// Lifetime of a saved launch in the launch-data store (default 2 h).
    pub fn launch_data_ttl(mut self, ttl: Duration) -> Self {
        self.launch_ttl = ttl;
        self
    }

    /// Lifetime of deep-linking response JWTs (default 5 min).
    pub fn deep_link_response_ttl(mut self, ttl: Duration) -> Self {
        self.deep_link_ttl = ttl;
        self
    }

    /// Clock-skew allowance (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Maximum age of an id_token from its `iat` (default 5 min).
    pub fn max_token_age(mut self, age: Duration) -> Self {
        self.max_token_age = age;
        self
    }

    /// Maximum id_token size in bytes (default 16 KiB).
    pub fn max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }

    /// `max-age` of the tool's JWKS response (default 1 h).
    pub fn jwks_max_age(mut self, age: Duration) -> Self {
        self.jwks_max_age = age;
        self
    }

    /// How long retired tool keys stay in the JWKS (default 1 h).
    pub fn retired_key_overlap(mut self, overlap: Duration) -> Self {
        self.retired_overlap = overlap;
        self
    }

    /// Whether saved launch data keeps the user's name and email (default
    /// [`PersonalData::Store`](crate::PersonalData::Store)); with
    /// [`PersonalData::Drop`](crate::PersonalData::Drop) they are removed
    /// before the launch is saved.
    pub fn personal_data(mut self, policy: crate::account::PersonalData) -> Self {
        self.personal_data = policy;
        self
    }

    /// Calls `linker` for every verified launch before it is saved: it maps
    /// the launch's user to a local account (`Launch::account`) or refuses
    /// the launch (`account_refused`, 403). None by default.
    pub fn account_linker(mut self, linker: Arc<dyn crate::account::AccountLinker>) -> Self {
        self.account_linker = Some(linker);
        self
    }

    /// Accepts launches without `sub` (anonymous launches; off by default).
    pub fn allow_anonymous_launches(mut self, allow: bool) -> Self {
        self.validation = self.validation.allow_anonymous(allow);
        self
    }

    /// Accepts message types `lti-message` does not model (off by default).
    pub fn allow_unknown_message_types(mut self, allow: bool) -> Self {
        self.validation = self.validation.allow_unknown_message_types(allow);
        self
    }

    /// Allows a plain-`http` base URL on a non-loopback host and drops the
    /// `Secure` attribute and `__Host-` prefix of the state cookie (which then uses
    /// `SameSite=Lax` and cannot work inside a cross-site iframe). For local
    /// development behind no TLS only. (`http://localhost` and `http://127.0.0.1`
    /// are accepted without this: browsers treat them as secure contexts.)
    pub fn insecure_allow_http(mut self) -> Self {
        self.insecure_http = true;
        self
    }

    /// Checks the configuration and builds the tool.
    ///
    /// # Errors
    /// [`ToolError::Configuration`] for a malformed base URL, redirect URI,
    /// landing URI (or one that is the redirect URI) or target rule, a cookie
    /// secret shorter than 32 bytes, a zero TTL, or when the
    /// default HTTP client cannot be built.
    pub fn build(self) -> Result<Tool, ToolError> {
        let base = parse_base_url(&self.base_url, self.insecure_http)?;
        let redirect_uri = match self.redirect_uri {
            Some(uri) => {
                crate::urls::check_absolute(&uri, self.insecure_http)?;
                uri
            }
            None => format!("{base}lti/launch"),
        };
        let redirect_origin = lti_http::origin(&redirect_uri).ok_or_else(|| {
            ToolError::config(format!(
                "redirect URI: expected an absolute http(s) URL, found {redirect_uri:?}"
            ))
        })?;
        let landing_uri = match self.landing_uri {
            Some(uri) => {
                crate::urls::check_absolute(&uri, self.insecure_http)?;
                uri
            }
            None => base.clone(),
        };
        if crate::urls::same_endpoint(&landing_uri, &redirect_uri) {
            return Err(ToolError::config(format!(
                "landing URI: expected an application page other than the redirect URI ({redirect_uri:?}), found {landing_uri:?} (set ToolBuilder::landing_uri)"
            )));
        }
        let mut prefixes = self.prefix_targets;
        if prefixes.is_empty() && self.exact_targets.is_empty() {
            prefixes.push(base.clone());
        }
        let targets = TargetRules::new(self.exact_targets, prefixes, self.insecure_http)?;
        let rng = SystemRandom::new();
        let secret = match self.cookie_secret {
            Some(s) if s.len() >= 32 => s,
            Some(s) => {
                return Err(ToolError::config(format!(
                    "state cookie secret: expected at least 32 bytes, found {}",
                    s.len()
                )));
            }
            None => crate::random::bytes::<32>(&rng)?.to_vec(),
        };
        let secs = |d: Duration, what: &str| -> Result<i64, ToolError> {
            match i64::try_from(d.as_secs()) {
                Ok(0) | Err(_) => Err(ToolError::config(format!(
                    "{what}: expected a duration of at least 1 s, found {} s",
                    d.as_secs()
                ))),
                Ok(s) => Ok(s),
            }
        };
        let state_ttl_secs = secs(self.state_ttl, "state ttl")?;
        let launch_ttl_secs = secs(self.launch_ttl, "launch data ttl")?;
        let deep_link_ttl_secs = secs(self.deep_link_ttl, "deep link response ttl")?;
        let max_age = secs(self.max_token_age, "max token age")?;
        let retired_overlap_secs =
            i64::try_from(self.retired_overlap.as_secs()).unwrap_or(i64::MAX);
        let secure_cookie = !self.insecure_http || base.starts_with("https://");
        let cookies = StateCookies::new(&secret, secure_cookie, self.partitioned, state_ttl_secs);
        let key_source = match self.key_source {
            Some(k) => k,
            None => default_key_source()?,
        };
        let store = self.store;
        Ok(Tool {
            inner: Arc::new(Inner {
                base_url: base,
                redirect_uri,
                landing_uri,
                redirect_origin,
                targets,
                allow_http: self.insecure_http,
                registrations: store.registrations,
                nonces: store.nonces,
                launch_data: store.launch_data,
                tool_keys: store.tool_keys,
                consumers: store.consumers,
                key_source,
                clock: self.clock.unwrap_or_else(lti_registry::system_clock),
                cookies,
                sealer: Sealer::new(&secret),
                leeway_secs: self.leeway.as_secs(),
                max_token_age_secs: max_age.unsigned_abs(),
                state_ttl_secs,
                launch_ttl_secs,
                deep_link_ttl_secs,
                jwks_max_age_secs: self.jwks_max_age.as_secs(),
                retired_overlap_secs,
                max_token_len: self.max_token_len,
                validation: self.validation,
                platform_storage: self.platform_storage,
                new_window_fallback: self.new_window_fallback,
                personal_data: self.personal_data,
                account_linker: self.account_linker,
                rng,
                signing_keys: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// The key source when the builder was given none: the JWKS cache over the
/// default hyper client (the `transport` feature).
#[cfg(feature = "transport")]
fn default_key_source() -> Result<Arc<dyn KeySource>, ToolError> {
    let client = lti_http::HyperClient::new()
        .map_err(|e| ToolError::config(format!("default HTTP client: {e}")))?;
    Ok(Arc::new(lti_http::JwksCache::new(Arc::new(client))))
}

/// Without the `transport` feature there is no default HTTP client: the
/// builder must be given a key source.
#[cfg(not(feature = "transport"))]
fn default_key_source() -> Result<Arc<dyn KeySource>, ToolError> {
    Err(ToolError::config(
        "expected a key source (ToolBuilder::key_source, e.g. an lti_http::JwksCache over your own HttpClient), found none; lti-tool's `transport` feature provides a default",
    ))
}
