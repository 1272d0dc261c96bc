//! The platform side of LTI Dynamic Registration 1.0: the OpenID
//! configuration document, one-time registration tokens, and the registration
//! endpoint that turns a tool's metadata into a [`ToolRegistration`] with a new
//! client id and deployment.
//!
//! The flow, from the platform's point of view:
//!
//! 1. An administrator gives the platform a tool's registration URL;
//!    [`DynamicRegistration::initiation_url`] mints a one-time token bound to
//!    that administrator and returns the URL to open (in an iframe or a new
//!    window) with `openid_configuration` and `registration_token` added.
//! 2. The tool reads [`DynamicRegistration::openid_configuration`] (serve it at
//!    [`RegistrationConfig::openid_configuration_url`]).
//! 3. The tool posts its metadata to the registration endpoint;
//!    [`DynamicRegistration::register`] consumes the token, checks the
//!    metadata and stores the tool, or refuses with a [`RegistrationError`]
//!    and stores nothing.
//! 4. The tool's page posts `org.imsglobal.lti.close` to the window that
//!    opened it; the platform then shows the new tool.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use lti_jose::{Clock, SystemClock};
use lti_message::registration::{
    ALG_RS256, AUTH_METHOD_PRIVATE_KEY_JWT, ClientRegistration, LtiPlatformConfiguration,
    MessageSupported, PlatformConfiguration, RESPONSE_TYPE_ID_TOKEN, RegistrationErrorBody,
    RegistrationErrorCode, join_scopes,
};

use crate::auth::SUBSTITUTION_VARIABLES;
use crate::error::{PlatformError, clip};
use crate::platform::{PlatformConfig, ReplayStore};
use crate::registry::{MemoryToolRegistry, ToolKeys, ToolRegistration, ToolRegistry};
use crate::secret::{PlatformSecret, Purpose};
use crate::web::{check_body_size, require_content_type};

/// The default lifetime of a registration token: one hour, as Canvas, Moodle
/// and Brightspace use.
pub const DEFAULT_REGISTRATION_TOKEN_LIFETIME_SECS: u64 = 3600;

/// The AGS and NRPS scopes the platform's services implement (the default
/// offer).
pub const SERVICE_SCOPES: &[&str] = &[
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
];

/// The id_token claims the platform can send (`claims_supported`).
pub const CLAIMS_SUPPORTED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nonce",
    "name",
    "given_name",
    "family_name",
    "email",
    "picture",
    "locale",
];

/// What the platform advertises and how it treats registrations.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegistrationConfig {
    /// Where the configuration document is served; must be rooted at the
    /// issuer (default `{issuer}/.well-known/openid-configuration`).
    pub openid_configuration_url: String,
    /// The OIDC authorization endpoint (default `{issuer}/auth`).
    pub authorization_endpoint: String,
    /// The platform's key set (default `{issuer}/.well-known/jwks.json`).
    pub jwks_uri: String,
    /// The registration endpoint (default `{issuer}/register`).
    pub registration_endpoint: String,
    /// `product_family_code` of the platform-configuration object.
    pub product_family_code: String,
    /// `version` of the platform-configuration object.
    pub version: String,
    /// Message types and placements the platform launches.
    pub messages_supported: Vec<MessageSupported>,
    /// Substitution variables (without `$`); default: every one the platform
    /// expands ([`SUBSTITUTION_VARIABLES`]).
    pub variables: Vec<String>,
    /// Service scopes the platform offers; a registration is granted the
    /// requested ones among them (default [`SERVICE_SCOPES`]).
    pub scopes_offered: Vec<String>,
    /// Claims the platform can send (default [`CLAIMS_SUPPORTED`]).
    pub claims_supported: Vec<String>,
    /// Lifetime of a registration token (default one hour).
    pub token_lifetime_secs: u64,
}

impl RegistrationConfig {
    /// Defaults derived from the platform's issuer; `product_family_code` and
    /// `version` name the platform.
    pub fn new(
        platform: &PlatformConfig,
        product_family_code: impl Into<String>,
        version: impl Into<String>,
    ) -> Self {
        let base = platform.issuer.trim_end_matches('/');
        Self {
            openid_configuration_url: format!("{base}/.well-known/openid-configuration"),
            authorization_endpoint: format!("{base}/auth"),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            registration_endpoint: format!("{base}/register"),
            product_family_code: product_family_code.into(),
            version: version.into(),
            messages_supported: vec![
                MessageSupported::Object {
                    message_type: "LtiResourceLinkRequest".to_owned(),
                    placements: vec!["ContentArea".to_owned()],
                    extra: Default::default(),
                },
                MessageSupported::Object {
                    message_type: "LtiDeepLinkingRequest".to_owned(),
                    placements: vec!["ContentArea".to_owned()],
                    extra: Default::default(),
                },
            ],
            variables: SUBSTITUTION_VARIABLES
                .iter()
                .map(|v| v.trim_start_matches('$').to_owned())
                .collect(),
            scopes_offered: SERVICE_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            claims_supported: CLAIMS_SUPPORTED.iter().map(|s| (*s).to_owned()).collect(),
            token_lifetime_secs: DEFAULT_REGISTRATION_TOKEN_LIFETIME_SECS,
        }
    }

    /// Sets the authorization endpoint.
    pub fn with_authorization_endpoint(mut self, url: impl Into<String>) -> Self {
        self.authorization_endpoint = url.into();
        self
    }

    /// Sets the JWKS URL.
    pub fn with_jwks_uri(mut self, url: impl Into<String>) -> Self {
        self.jwks_uri = url.into();
        self
    }

    /// Sets the registration endpoint.
    pub fn with_registration_endpoint(mut self, url: impl Into<String>) -> Self {
        self.registration_endpoint = url.into();
        self
    }

    /// Sets the configuration document's URL (rooted at the issuer).
    pub fn with_openid_configuration_url(mut self, url: impl Into<String>) -> Self {
        self.openid_configuration_url = url.into();
        self
    }

    /// Sets the token lifetime.
    pub fn with_token_lifetime_secs(mut self, secs: u64) -> Self {
        self.token_lifetime_secs = secs;
        self
    }

    /// Sets the offered service scopes.
    pub fn with_scopes_offered<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_offered = scopes.into_iter().map(Into::into).collect();
        self
    }
}

/// What a registration token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationIntent {
    /// Register a new tool (new client id, new deployment).
    New,
}

/// What a registration token was minted for: who asked, for what, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistrationGrant {
    /// The administrator (platform user id) who started the registration.
    pub admin: String,
    /// What the token allows.
    pub intent: RegistrationIntent,
    /// Mint time (seconds since the epoch).
    pub issued_at: u64,
    /// Expiry (seconds since the epoch).
    pub expires_at: u64,
}

/// A freshly minted registration token. The token itself is a secret: hand it
/// to the tool in the initiation URL and nowhere else (it is not logged).
#[derive(Clone)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The bearer token.
    pub token: String,
    /// When it expires.
    pub expires_at: u64,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What consuming a token found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Consumed {
    /// The token was unused; it is now used.
    Fresh(RegistrationGrant),
    /// The token was used before.
    AlreadyUsed,
    /// No such token (never minted, or purged after expiry).
    Unknown,
}

/// Where registration tokens come from and are spent. Share one store between
/// the instances of a platform: [`MemoryRegistrationTokens`] serves one process,
/// [`SealedRegistrationTokens`] every instance sharing a [`ReplayStore`] and the
/// platform secret.
#[async_trait::async_trait]
pub trait RegistrationTokenStore: Send + Sync {
    /// Issues a new token for `grant`.
    ///
    /// # Errors
    /// [`PlatformError::Backend`] when the store or the random source fails.
    async fn issue(&self, grant: RegistrationGrant) -> crate::Result<String>;

    /// Marks `token` used and returns what it was, atomically: of two
    /// concurrent calls for one token, one gets [`Consumed::Fresh`]. An expired
    /// token may be returned as fresh; the caller checks
    /// [`RegistrationGrant::expires_at`].
    ///
    /// # Errors
    /// [`PlatformError::Backend`] when the store fails.
    async fn consume(&self, token: &str) -> crate::Result<Consumed>;
}

/// An in-memory [`RegistrationTokenStore`] for one process: random tokens,
/// stored as SHA-256 digests (never the token itself); used tokens are
/// remembered until they expire (so reuse is told apart from an unknown
/// token); expired entries are purged as new tokens arrive.
pub struct MemoryRegistrationTokens {
    entries: Mutex<HashMap<String, (RegistrationGrant, bool)>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryRegistrationTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRegistrationTokens")
            .finish_non_exhaustive()
    }
}

impl Default for MemoryRegistrationTokens {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl MemoryRegistrationTokens {
    /// An empty store reading time from `clock` (for purging).
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (RegistrationGrant, bool)>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

#[async_trait::async_trait]
impl RegistrationTokenStore for MemoryRegistrationTokens {
    async fn issue(&self, grant: RegistrationGrant) -> crate::Result<String> {
        let token = random_id(32)?;
        let now = self.clock.now();
        let mut entries = self.lock();
        if entries.len() > 256 {
            entries.retain(|_, (g, _)| g.expires_at > now);
        }
        entries.insert(digest(&token), (grant, false));
        Ok(token)
    }

    async fn consume(&self, token: &str) -> crate::Result<Consumed> {
        let mut entries = self.lock();
        Ok(match entries.get_mut(&digest(token)) {
            None => Consumed::Unknown,
            Some((_, true)) => Consumed::AlreadyUsed,
            Some((grant, used)) => {
                *used = true;
                Consumed::Fresh(grant.clone())
            }
        })
    }
}

/// A [`RegistrationTokenStore`] for several instances: each token is the grant
/// itself, sealed (AES-256-GCM) under a key derived from the [`PlatformSecret`]
/// with a random id, so any instance with the same secret can read it and
/// nobody else can read or forge one; single use is recorded in a
/// [`ReplayStore`] (the platform's shared nonce store) until the token
/// expires. Nothing else is stored.
pub struct SealedRegistrationTokens {
    secret: PlatformSecret,
    replay: Arc<dyn ReplayStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SealedRegistrationTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedRegistrationTokens")
            .finish_non_exhaustive()
    }
}

/// The sealed content of a [`SealedRegistrationTokens`] token.
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedGrant {
    jti: String,
    admin: String,
    intent: String,
    iat: u64,
    exp: u64,
}

/// The replay-store namespace of registration token ids.
const TOKEN_NAMESPACE: &str = "lti-platform/registration-token";

impl SealedRegistrationTokens {
    /// Tokens sealed under `secret` (the same secret on every instance), spent
    /// in `replay`, timed by `clock`.
    pub fn new(
        secret: PlatformSecret,
        replay: Arc<dyn ReplayStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            secret,
            replay,
            clock,
        }
    }
}

#[async_trait::async_trait]
impl RegistrationTokenStore for SealedRegistrationTokens {
    async fn issue(&self, grant: RegistrationGrant) -> crate::Result<String> {
        let intent = match grant.intent {
            RegistrationIntent::New => "new",
        };
        self.secret.seal(
            Purpose::RegistrationToken,
            &SealedGrant {
                jti: random_id(16)?,
                admin: grant.admin,
                intent: intent.to_owned(),
                iat: grant.issued_at,
                exp: grant.expires_at,
            },
        )
    }

    async fn consume(&self, token: &str) -> crate::Result<Consumed> {
        let Ok(sealed) = self
            .secret
            .open::<SealedGrant>(Purpose::RegistrationToken, token)
        else {
            return Ok(Consumed::Unknown);
        };
        let intent = match sealed.intent.as_str() {
            "new" => RegistrationIntent::New,
            _ => return Ok(Consumed::Unknown),
        };
        let grant = RegistrationGrant {
            admin: sealed.admin,
            intent,
            issued_at: sealed.iat,
            expires_at: sealed.exp,
        };
        let now = self.clock.now();
        if grant.expires_at <= now {
            // Refused as expired by the caller; nothing to record.
            return Ok(Consumed::Fresh(grant));
        }
        let until = i64::try_from(grant.expires_at).unwrap_or(i64::MAX);
        match self
            .replay
            .record_nonce(TOKEN_NAMESPACE, &sealed.jti, until)
            .await
        {
            Ok(()) => Ok(Consumed::Fresh(grant)),
            Err(lti_registry::RegistryError::NonceReplayed { .. }) => Ok(Consumed::AlreadyUsed),
            Err(e) => Err(PlatformError::backend("replay store", e)),
        }
    }
}

/// A tool registry the registration endpoint can add tools to.
#[async_trait::async_trait]
pub trait ToolRegistrar: ToolRegistry {
    /// Adds `tool` unless its client id is taken; returns whether it was
    /// added.
    ///
    /// # Errors
    /// [`PlatformError::InvalidRegistration`] for an unusable registration,
    /// [`PlatformError::Backend`] when the registry fails.
    async fn insert_new(&self, tool: ToolRegistration) -> crate::Result<bool>;
}

#[async_trait::async_trait]
impl ToolRegistrar for MemoryToolRegistry {
    async fn insert_new(&self, tool: ToolRegistration) -> crate::Result<bool> {
        self.register_new(tool)
    }
}

/// Why the registration endpoint refused. Each variant has a stable
/// [`code`](Self::code), an HTTP status and an RFC 7591 (or RFC 6750) error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// No `Authorization: Bearer` token.
    #[error("missing registration token: expected an Authorization: Bearer header, found none")]
    MissingToken,
    /// The token was never minted here (or has been purged).
    #[error("unknown registration token: expected a token this platform issued, found another")]
    UnknownToken,
    /// The token was used before.
    #[error("registration token already used: expected an unused token, found a used one")]
    TokenUsed,
    /// The token expired.
    #[error("registration token expired: expected expiry after {now}, found {expires_at}")]
    TokenExpired {
        /// The token's expiry.
        expires_at: u64,
        /// Now.
        now: u64,
    },
    /// The request itself is unusable (method, media type, size).
    #[error(transparent)]
    Request(PlatformError),
    /// The body is not a registration request.
    #[error("malformed registration request: {reason}")]
    MalformedBody {
        /// The decoder's complaint.
        reason: String,
    },
    /// A metadata member breaks LTI's rules or the platform's policy.
    #[error("invalid client metadata: {description}")]
    InvalidMetadata {
        /// Which member and why.
        description: String,
    },
    /// A redirect URI is unacceptable.
    #[error("invalid redirect URI: {description}")]
    InvalidRedirectUri {
        /// Which one and why.
        description: String,
    },
    /// A URL is plain `http` on a host other than loopback.
    #[error("insecure URL: {member}: expected https (http only on loopback), found {found:?}")]
    InsecureUrl {
        /// The member.
        member: String,
        /// The URL (clipped).
        found: String,
    },
    /// A URL is outside `domain` and `secondary_domains`.
    #[error(
        "URL outside the tool's domains: {member}: expected a URL on {domains}, found {found:?}"
    )]
    OutsideDomain {
        /// The member.
        member: String,
        /// The declared domains.
        domains: String,
        /// The URL (clipped).
        found: String,
    },
    /// The token store or the registry failed.
    #[error("registration back end unavailable")]
    Backend(#[source] PlatformError),
}

impl RegistrationError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "registration_token_missing",
            Self::UnknownToken => "registration_token_unknown",
            Self::TokenUsed => "registration_token_used",
            Self::TokenExpired { .. } => "registration_token_expired",
            Self::Request(e) => e.code(),
            Self::MalformedBody { .. } => "malformed_registration",
            Self::InvalidMetadata { .. } => "invalid_client_metadata",
            Self::InvalidRedirectUri { .. } => "invalid_redirect_uri",
            Self::InsecureUrl { .. } => "insecure_url",
            Self::OutsideDomain { .. } => "url_outside_domain",
            Self::Backend(_) => "backend_unavailable",
        }
    }

    /// The HTTP status: 401 for token problems, 400 for metadata, 405, 413 or
    /// 415 for the request, 503 for the back end.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::MissingToken
            | Self::UnknownToken
            | Self::TokenUsed
            | Self::TokenExpired { .. } => StatusCode::UNAUTHORIZED,
            Self::Request(e) => e.http_status(),
            Self::Backend(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::MalformedBody { .. }
            | Self::InvalidMetadata { .. }
            | Self::InvalidRedirectUri { .. }
            | Self::InsecureUrl { .. }
            | Self::OutsideDomain { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// The `error` member of the JSON body: an RFC 7591 code for metadata
    /// problems, RFC 6750's `invalid_token` for token problems.
    pub fn wire_error(&self) -> &'static str {
        match self {
            Self::MissingToken
            | Self::UnknownToken
            | Self::TokenUsed
            | Self::TokenExpired { .. } => "invalid_token",
            Self::InvalidRedirectUri { .. } => RegistrationErrorCode::InvalidRedirectUri.as_str(),
            Self::OutsideDomain { member, .. } | Self::InsecureUrl { member, .. }
                if member.starts_with("redirect_uris") =>
            {
                RegistrationErrorCode::InvalidRedirectUri.as_str()
            }
            Self::Backend(_) => "temporarily_unavailable",
            Self::Request(_) => "invalid_request",
            _ => RegistrationErrorCode::InvalidClientMetadata.as_str(),
        }
    }

    /// The JSON error response: `{"error", "error_description", "code"}`
    /// (`code` is [`code`](Self::code)); token refusals also carry
    /// `WWW-Authenticate: Bearer error="invalid_token"`.
    pub fn response(&self) -> Response<Bytes> {
        let body = RegistrationErrorBody {
            error: self.wire_error().to_owned(),
            error_description: Some(self.to_string()),
        };
        let mut value = serde_json::to_value(&body).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("code".to_owned(), self.code().into());
        }
        let mut resp = json_response(self.http_status(), &value);
        if self.http_status() == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        resp
    }

    fn metadata(description: impl Into<String>) -> Self {
        Self::InvalidMetadata {
            description: description.into(),
        }
    }
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from(value.to_string()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// A registration the endpoint stored.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Registered {
    /// The answer sent to the tool: its metadata as stored, with `client_id`,
    /// the granted `scope` and the deployment id in the tool configuration.
    pub answer: ClientRegistration,
    /// The stored registration.
    pub tool: ToolRegistration,
    /// The deployment created for it.
    pub deployment_id: String,
    /// Who started the registration.
    pub admin: String,
}

impl Registered {
    /// The `201 Created` JSON response with [`answer`](Self::answer).
    pub fn response(&self) -> Response<Bytes> {
        json_response(
            StatusCode::CREATED,
            &serde_json::to_value(&self.answer).unwrap_or_default(),
        )
    }
}

/// The platform side of Dynamic Registration. Cheap to share behind an `Arc`.
pub struct DynamicRegistration {
    issuer: String,
    token_endpoint: String,
    token_audiences: Vec<String>,
    config: RegistrationConfig,
    tokens: Arc<dyn RegistrationTokenStore>,
    registry: Arc<dyn ToolRegistrar>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamicRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicRegistration")
            .field("issuer", &self.issuer)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl DynamicRegistration {
    /// Registration for the platform configured by `platform`, adding tools to
    /// `registry` (give the [`crate::Platform`] the same registry), with
    /// in-memory tokens and the system clock.
    ///
    /// # Errors
    /// [`PlatformError::InvalidConfig`] when an endpoint is not an http(s) URL,
    /// the configuration URL is not rooted at the issuer, or the token lifetime
    /// is zero.
    pub fn new(
        platform: &PlatformConfig,
        config: RegistrationConfig,
        registry: Arc<dyn ToolRegistrar>,
    ) -> crate::Result<Self> {
        let bad = |field: &'static str, expected: &str, found: &str| PlatformError::InvalidConfig {
            field,
            expected: expected.to_owned(),
            found: clip(found),
        };
        for (field, url) in [
            ("openid_configuration_url", &config.openid_configuration_url),
            ("authorization_endpoint", &config.authorization_endpoint),
            ("jwks_uri", &config.jwks_uri),
            ("registration_endpoint", &config.registration_endpoint),
        ] {
            if parse_url(url).is_none() {
                return Err(bad(field, "an absolute http(s) URL", url));
            }
        }
        let root = platform.issuer.trim_end_matches('/');
        let rooted = config
            .openid_configuration_url
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/'));
        if !rooted {
            return Err(bad(
                "openid_configuration_url",
                "a URL under the issuer",
                &config.openid_configuration_url,
            ));
        }
        if config.token_lifetime_secs == 0 {
            return Err(bad("token_lifetime_secs", "a positive number", "0"));
        }
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Ok(Self {
            issuer: platform.issuer.clone(),
            token_endpoint: platform.token_endpoint.clone(),
            token_audiences: platform.token_audiences.clone(),
            config,
            tokens: Arc::new(MemoryRegistrationTokens::new(clock.clone())),
            registry,
            clock,
        })
    }

    /// Keeps tokens in `store` ([`SealedRegistrationTokens`] to share them
    /// between instances).
    pub fn with_token_store(mut self, store: Arc<dyn RegistrationTokenStore>) -> Self {
        self.tokens = store;
        self
    }

    /// Reads time from `clock` (token expiry); the default in-memory token
    /// store uses it too.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.tokens = Arc::new(MemoryRegistrationTokens::new(clock.clone()));
        self.clock = clock;
        self
    }

    /// Changes the lifetime of tokens minted from now on.
    ///
    /// # Errors
    /// [`PlatformError::InvalidConfig`] for zero.
    pub fn set_token_lifetime_secs(&mut self, secs: u64) -> crate::Result<()> {
        if secs == 0 {
            return Err(PlatformError::InvalidConfig {
                field: "token_lifetime_secs",
                expected: "a positive number".to_owned(),
                found: "0".to_owned(),
            });
        }
        self.config.token_lifetime_secs = secs;
        Ok(())
    }

    /// The configuration.
    pub fn config(&self) -> &RegistrationConfig {
        &self.config
    }

    /// The platform's OpenID configuration document.
    pub fn openid_configuration(&self) -> PlatformConfiguration {
        let list = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let mut scopes = vec!["openid".to_owned()];
        scopes.extend(self.config.scopes_offered.iter().cloned());
        let mut doc = PlatformConfiguration {
            issuer: self.issuer.clone(),
            authorization_endpoint: self.config.authorization_endpoint.clone(),
            token_endpoint: self.token_endpoint.clone(),
            jwks_uri: self.config.jwks_uri.clone(),
            registration_endpoint: self.config.registration_endpoint.clone(),
            authorization_server: self.token_audiences.first().cloned(),
            scopes_supported: scopes,
            response_types_supported: list(&[RESPONSE_TYPE_ID_TOKEN]),
            id_token_signing_alg_values_supported: list(&[ALG_RS256]),
            token_endpoint_auth_methods_supported: list(&[AUTH_METHOD_PRIVATE_KEY_JWT]),
            token_endpoint_auth_signing_alg_values_supported: list(&[ALG_RS256]),
            subject_types_supported: list(&["public", "pairwise"]),
            claims_supported: self.config.claims_supported.clone(),
            extra: Default::default(),
        };
        doc.set_lti_platform_configuration(&LtiPlatformConfiguration {
            product_family_code: self.config.product_family_code.clone(),
            version: self.config.version.clone(),
            messages_supported: self.config.messages_supported.clone(),
            variables: self.config.variables.clone(),
            notice_types_supported: Vec::new(),
            extra: Default::default(),
        });
        doc
    }

    /// The configuration endpoint's answer: the document as JSON (public; it
    /// holds nothing tenant-specific).
    pub fn openid_configuration_response(&self) -> Response<Bytes> {
        let mut resp = json_response(
            StatusCode::OK,
            &serde_json::to_value(self.openid_configuration()).unwrap_or_default(),
        );
        resp.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
        resp.headers_mut().remove(PRAGMA);
        resp
    }

    /// Mints a one-time token for `admin` and `intent`, valid for
    /// [`RegistrationConfig::token_lifetime_secs`].
    ///
    /// # Errors
    /// [`PlatformError::Backend`] when the store or the random source fails.
    pub async fn mint_token(
        &self,
        admin: &str,
        intent: RegistrationIntent,
    ) -> crate::Result<IssuedToken> {
        let now = self.clock.now();
        let expires_at = now.saturating_add(self.config.token_lifetime_secs);
        let token = self
            .tokens
            .issue(RegistrationGrant {
                admin: admin.to_owned(),
                intent,
                issued_at: now,
                expires_at,
            })
            .await?;
        Ok(IssuedToken { token, expires_at })
    }

    /// The URL to open for a new registration in one step: mints a token for
    /// `admin` and adds `openid_configuration` and `registration_token` to the
    /// tool's `registration_url` (keeping its own query).
    ///
    /// # Errors
    /// [`PlatformError::InvalidParameter`] when `registration_url` is not an
    /// absolute http(s) URL; as [`mint_token`](Self::mint_token).
    pub async fn initiation_url(
        &self,
        registration_url: &str,
        admin: &str,
    ) -> crate::Result<String> {
        if parse_url(registration_url).is_none() {
            return Err(PlatformError::param(
                "registration_url",
                "an absolute http(s) URL",
                registration_url,
            ));
        }
        let issued = self.mint_token(admin, RegistrationIntent::New).await?;
        Ok(crate::web::append_query(
            registration_url,
            &[
                (
                    "openid_configuration".to_owned(),
                    self.config.openid_configuration_url.clone(),
                ),
                ("registration_token".to_owned(), issued.token),
            ],
        ))
    }

    /// The registration endpoint (`POST`, `application/json`,
    /// `Authorization: Bearer <registration token>`): consumes the token
    /// (401 when missing, unknown, used or expired), checks the metadata
    /// ([`ClientRegistration::check_lti_shape`], then every URL: https except on
    /// loopback, inside `domain` or `secondary_domains`), grants the requested
    /// scopes among those offered, and stores a new tool with a new client id
    /// and deployment. On any refusal nothing is stored. The token is consumed
    /// before the metadata is read: a refused registration needs a new token.
    ///
    /// # Errors
    /// A [`RegistrationError`]; answer with [`RegistrationError::response`].
    pub async fn register(&self, req: &Request<Bytes>) -> Result<Registered, RegistrationError> {
        if req.method() != Method::POST {
            return Err(RegistrationError::Request(
                PlatformError::MethodNotAllowed {
                    expected: "POST",
                    found: clip(req.method().as_str()),
                },
            ));
        }
        let token = bearer(req.headers()).ok_or(RegistrationError::MissingToken)?;
        let grant = match self
            .tokens
            .consume(token)
            .await
            .map_err(RegistrationError::Backend)?
        {
            Consumed::Fresh(grant) => grant,
            Consumed::AlreadyUsed => return Err(RegistrationError::TokenUsed),
            Consumed::Unknown => return Err(RegistrationError::UnknownToken),
        };
        let now = self.clock.now();
        if grant.expires_at <= now {
            return Err(RegistrationError::TokenExpired {
                expires_at: grant.expires_at,
                now,
            });
        }
        check_body_size(req.body()).map_err(RegistrationError::Request)?;
        require_content_type(req.headers(), "application/json")
            .map_err(RegistrationError::Request)?;
        let request: ClientRegistration =
            serde_json::from_slice(req.body()).map_err(|e| RegistrationError::MalformedBody {
                reason: clip(&e.to_string()),
            })?;
        let (answer, tool, deployment_id) = self.accept(request)?;
        let added = self
            .registry
            .insert_new(tool.clone())
            .await
            .map_err(|e| match e {
                PlatformError::InvalidRegistration { reason, .. } => {
                    RegistrationError::metadata(reason)
                }
                other => RegistrationError::Backend(other),
            })?;
        if !added {
            return Err(RegistrationError::Backend(PlatformError::Backend {
                backend: "tool registry",
                reason: "a generated client id was already taken".to_owned(),
            }));
        }
        tracing::info!(
            client_id = %tool.client_id,
            deployment_id = %deployment_id,
            admin = %grant.admin,
            "tool registered through dynamic registration"
        );
        Ok(Registered {
            answer,
            tool,
            deployment_id,
            admin: grant.admin,
        })
    }

    /// [`register`](Self::register) as a response: the stored registration
    /// (201) or the error.
    pub async fn registration_endpoint(&self, req: &Request<Bytes>) -> Response<Bytes> {
        match self.register(req).await {
            Ok(r) => r.response(),
            Err(e) => {
                tracing::info!(code = e.code(), "dynamic registration refused");
                e.response()
            }
        }
    }

    /// Checks `request` and builds the answer and the registration.
    fn accept(
        &self,
        mut request: ClientRegistration,
    ) -> Result<(ClientRegistration, ToolRegistration, String), RegistrationError> {
        if let Some(e) = request.check_lti_shape() {
            let description = e.error_description.unwrap_or_default();
            return Err(
                if e.error == RegistrationErrorCode::InvalidRedirectUri.as_str() {
                    RegistrationError::InvalidRedirectUri { description }
                } else {
                    RegistrationError::InvalidMetadata { description }
                },
            );
        }
        let tc = &request.tool_configuration;
        let mut domains = vec![Domain::parse(&tc.domain).ok_or_else(|| {
            RegistrationError::metadata(format!(
                "domain: expected a host with an optional port, found {:?}",
                clip(&tc.domain)
            ))
        })?];
        for d in &tc.secondary_domains {
            domains.push(Domain::parse(d).ok_or_else(|| {
                RegistrationError::metadata(format!(
                    "secondary_domains: expected hosts with an optional port, found {:?}",
                    clip(d)
                ))
            })?);
        }
        let mut urls: Vec<(String, &str)> = vec![
            ("initiate_login_uri".to_owned(), &request.initiate_login_uri),
            ("jwks_uri".to_owned(), &request.jwks_uri),
            ("target_link_uri".to_owned(), &tc.target_link_uri),
        ];
        for (i, u) in request.redirect_uris.iter().enumerate() {
            urls.push((format!("redirect_uris[{i}]"), u));
        }
        for (i, m) in tc.messages.iter().enumerate() {
            if let Some(u) = &m.target_link_uri {
                urls.push((format!("messages[{i}].target_link_uri"), u));
            }
            if let Some(u) = &m.icon_uri {
                urls.push((format!("messages[{i}].icon_uri"), u));
            }
        }
        for (member, url) in &urls {
            check_url(member, url, &domains)?;
        }
        for (member, url) in [
            ("logo_uri", &request.logo_uri),
            ("client_uri", &request.client_uri),
            ("policy_uri", &request.policy_uri),
            ("tos_uri", &request.tos_uri),
        ] {
            if let Some(u) = url
                && !u.is_empty()
            {
                check_secure(member, u)?;
            }
        }
        if request.client_name.len() > 255 {
            return Err(RegistrationError::metadata(format!(
                "client_name: expected at most 255 bytes, found {}",
                request.client_name.len()
            )));
        }

        let granted: BTreeSet<String> = request
            .scopes()
            .filter(|s| self.config.scopes_offered.iter().any(|o| o == s))
            .map(str::to_owned)
            .collect();
        let client_id = random_id(16).map_err(RegistrationError::Backend)?;
        let deployment_id = random_id(12).map_err(RegistrationError::Backend)?;

        let tc = &mut request.tool_configuration;
        let supported: Vec<&str> = self
            .config
            .messages_supported
            .iter()
            .map(MessageSupported::message_type)
            .collect();
        tc.messages
            .retain(|m| supported.contains(&m.message_type.as_str()));
        tc.claims
            .retain(|c| self.config.claims_supported.iter().any(|s| s == c));
        tc.deployment_id = Some(deployment_id.clone());
        request.client_id = Some(client_id.clone());
        request.scope = join_scopes(granted.iter().map(String::as_str));

        let claims = &request.tool_configuration.claims;
        let wants = |c: &str| claims.iter().any(|x| x == c);
        let mut tool = ToolRegistration::new(
            client_id,
            request.initiate_login_uri.clone(),
            request.tool_configuration.target_link_uri.clone(),
            ToolKeys::JwksUrl(request.jwks_uri.clone()),
        )
        .with_name(request.client_name.clone())
        .with_redirect_uris(request.redirect_uris.iter().cloned())
        .with_deployment(deployment_id.clone())
        .with_privacy(
            wants("name") || wants("given_name") || wants("family_name"),
            wants("email"),
        )
        .with_picture_shared(wants("picture"));
        for scope in &granted {
            tool = tool.with_scope(scope.clone());
        }
        for (k, v) in &request.tool_configuration.custom_parameters {
            tool = tool.with_custom(k.clone(), v.clone());
        }
        tool.validate()
            .map_err(|e| RegistrationError::metadata(clip(&e.to_string())))?;
        Ok((request, tool, deployment_id))
    }
}

/// The bearer token of `Authorization`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
}

fn digest(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

fn random_id(bytes: usize) -> crate::Result<String> {
    let mut buf = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .map_err(|_| PlatformError::backend("random source", "no random bytes"))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// A declared domain: a host and, optionally, a port.
#[derive(Debug, PartialEq, Eq)]
struct Domain {
    host: String,
    port: Option<u16>,
}

impl Domain {
    fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() || s.contains(['/', '?', '#', '@']) || s.contains(char::is_whitespace) {
            return None;
        }
        let authority: http::uri::Authority = s.parse().ok()?;
        let port = explicit_port(&authority)?;
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        Some(Self { host, port })
    }

    /// A URL on this domain: the same host, and the same port when the domain
    /// names one.
    fn covers(&self, host: &str, port: u16) -> bool {
        self.host == host && self.port.is_none_or(|p| p == port)
    }
}

/// An absolute http(s) URL's scheme, lowercase host and effective port.
fn parse_url(url: &str) -> Option<(bool, String, u16)> {
    if url.contains(char::is_whitespace) || url.contains('#') {
        return None;
    }
    let uri: http::Uri = url.parse().ok()?;
    let https = match uri.scheme_str()? {
        "https" => true,
        "http" => false,
        _ => return None,
    };
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    let port = match explicit_port(authority)? {
        Some(p) => p,
        None if https => 443,
        None => 80,
    };
    Some((https, host, port))
}

/// The port an authority names: `Some(None)` without one, `None` when the text
/// after the host's colon is not a port number (`http` keeps such a port as
/// absent rather than refusing it).
fn explicit_port(authority: &http::uri::Authority) -> Option<Option<u16>> {
    let text = authority.as_str();
    let after_host = match text.rfind(']') {
        Some(i) => &text[i + 1..],
        None => text,
    };
    match after_host.rsplit_once(':') {
        None => Some(None),
        Some((_, digits)) => digits.parse::<u16>().ok().map(Some),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `url` is absolute http(s), https unless on loopback; returns host and port.
fn check_secure(member: &str, url: &str) -> Result<(String, u16), RegistrationError> {
    let Some((https, host, port)) = parse_url(url) else {
        let description = format!(
            "{member}: expected an absolute http(s) URL without fragment, found {:?}",
            clip(url)
        );
        return Err(if member.starts_with("redirect_uris") {
            RegistrationError::InvalidRedirectUri { description }
        } else {
            RegistrationError::InvalidMetadata { description }
        });
    };
    if !https && !is_loopback(&host) {
        return Err(RegistrationError::InsecureUrl {
            member: member.to_owned(),
            found: clip(url),
        });
    }
    Ok((host, port))
}

fn check_url(member: &str, url: &str, domains: &[Domain]) -> Result<(), RegistrationError> {
    let (host, port) = check_secure(member, url)?;
    if domains.iter().any(|d| d.covers(&host, port)) {
        return Ok(());
    }
    let names: Vec<String> = domains
        .iter()
        .map(|d| match d.port {
            Some(p) => format!("{}:{p}", d.host),
            None => d.host.clone(),
        })
        .collect();
    Err(RegistrationError::OutsideDomain {
        member: member.to_owned(),
        domains: clip(&names.join(", ")),
        found: clip(url),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_cover_their_host_and_port() {
        let d = Domain::parse("Tool.Example.com:8443").unwrap();
        assert!(d.covers("tool.example.com", 8443));
        assert!(!d.covers("tool.example.com", 443));
        let any_port = Domain::parse("tool.example.com").unwrap();
        assert!(any_port.covers("tool.example.com", 3000));
        assert!(!any_port.covers("evil.example.com", 443));
        assert!(!any_port.covers("sub.tool.example.com", 443));
        for bad in [
            "https://tool.example.com",
            "tool.example.com/x",
            "",
            "a@b",
            "a b",
            "tool.example.com:99999",
            "tool.example.com:",
        ] {
            assert!(Domain::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn urls_need_https_except_on_loopback() {
        assert!(check_secure("m", "https://tool.example.com/x").is_ok());
        assert!(check_secure("m", "http://127.0.0.1:3000/x").is_ok());
        assert!(check_secure("m", "http://localhost:3000/x").is_ok());
        assert!(check_secure("m", "http://[::1]:3000/x").is_ok());
        let e = check_secure("m", "http://tool.example.com/x").err();
        assert_eq!(e.map(|e| e.code()), Some("insecure_url"));
        for bad in [
            "ftp://tool.example.com/",
            "/relative",
            "https://user@tool.example.com/",
            "https://tool.example.com/#frag",
        ] {
            let e = check_secure("m", bad).err();
            assert_eq!(
                e.map(|e| e.code()),
                Some("invalid_client_metadata"),
                "{bad}"
            );
        }
        let e = check_secure("redirect_uris[0]", "/relative").err();
        assert_eq!(e.map(|e| e.wire_error()), Some("invalid_redirect_uri"));
    }
}
