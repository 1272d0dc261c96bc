//! The platform: configuration, shared state and the replay store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lti_jose::{Algorithm, Clock, KeySource, SystemClock, Verifier};
use lti_message::claims::ToolPlatformClaim;

use crate::error::{PlatformError, Result, clip};
use crate::keys::PlatformKeys;
use crate::registry::{SubjectPolicy, ToolKeys, ToolRegistration, ToolRegistry, is_http_url};
use crate::secret::PlatformSecret;
use crate::services::{
    ContextAccess, GradeBook, InsecureAllowAllContexts, MemoryContextGrants, MemoryGradeBook,
    MemoryRoster, ResourceLinks, Roster,
};

/// Algorithms accepted on tool-signed JWTs (client assertions, deep-linking responses).
pub const TOOL_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// The platform's endpoints and lifetimes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PlatformConfig {
    /// The issuer (`iss` of id_tokens; `aud` of tool messages). HTTPS URL, no query.
    pub issuer: String,
    /// The token endpoint URL: the `aud` client assertions must carry.
    pub token_endpoint: String,
    /// Extra audiences accepted on client assertions (e.g. an advertised
    /// `authorization_server` value).
    pub token_audiences: Vec<String>,
    /// The deep-linking return endpoint URL (`deep_link_return_url`).
    pub deep_link_return_url: String,
    /// Base URL of the AGS and NRPS endpoints; see [`crate::services`] for the routes.
    pub services_base_url: String,
    /// The `tool_platform` claim sent in launches.
    pub tool_platform: Option<ToolPlatformClaim>,
    /// id_token lifetime (default 300 s).
    pub id_token_lifetime_secs: u64,
    /// Message hint lifetime: how long a started launch stays answerable (default 300 s).
    pub message_hint_lifetime_secs: u64,
    /// Access token lifetime (default 3600 s).
    pub access_token_lifetime_secs: u64,
    /// How long a deep-linking session may take before the tool's response is refused
    /// (default 3600 s).
    pub deep_linking_lifetime_secs: u64,
    /// Clock skew allowed on tool JWTs (default 60 s).
    pub leeway_secs: u64,
    /// Longest accepted `exp - iat` of a tool JWT, and largest accepted age (default 600 s).
    pub max_tool_jwt_lifetime_secs: u64,
    /// Default page size of service collections (default 100).
    pub default_page_size: usize,
    /// Largest page size honoured (default 1000).
    pub max_page_size: usize,
}

impl PlatformConfig {
    /// A configuration with default lifetimes; endpoints are derived from `issuer`
    /// (`{issuer}/token`, `{issuer}/deep_link_return`, `{issuer}/lti`) and can be
    /// overridden field by field.
    pub fn new(issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        let base = issuer.trim_end_matches('/').to_owned();
        Self {
            token_endpoint: format!("{base}/token"),
            token_audiences: Vec::new(),
            deep_link_return_url: format!("{base}/deep_link_return"),
            services_base_url: format!("{base}/lti"),
            issuer,
            tool_platform: None,
            id_token_lifetime_secs: 300,
            message_hint_lifetime_secs: 300,
            access_token_lifetime_secs: 3600,
            deep_linking_lifetime_secs: 3600,
            leeway_secs: 60,
            max_tool_jwt_lifetime_secs: 600,
            default_page_size: 100,
            max_page_size: 1000,
        }
    }

    /// Sets the token endpoint URL.
    pub fn with_token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.token_endpoint = url.into();
        self
    }

    /// Sets the deep-linking return URL.
    pub fn with_deep_link_return_url(mut self, url: impl Into<String>) -> Self {
        self.deep_link_return_url = url.into();
        self
    }

    /// Sets the services base URL.
    pub fn with_services_base_url(mut self, url: impl Into<String>) -> Self {
        self.services_base_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Sets the `tool_platform` claim.
    pub fn with_tool_platform(mut self, claim: ToolPlatformClaim) -> Self {
        self.tool_platform = Some(claim);
        self
    }

    fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, expected: &str, found: &str| PlatformError::InvalidConfig {
            field,
            expected: expected.to_owned(),
            found: clip(found),
        };
        for (field, url) in [
            ("issuer", &self.issuer),
            ("token_endpoint", &self.token_endpoint),
            ("deep_link_return_url", &self.deep_link_return_url),
            ("services_base_url", &self.services_base_url),
        ] {
            if !is_http_url(url) {
                return Err(bad(field, "an http(s) URL", url));
            }
        }
        if self.issuer.contains(['?', '#']) {
            return Err(bad(
                "issuer",
                "a URL without query or fragment",
                &self.issuer,
            ));
        }
        if self.services_base_url.contains(['?', '#']) {
            return Err(bad(
                "services_base_url",
                "a URL without query or fragment",
                &self.services_base_url,
            ));
        }
        if self.default_page_size == 0 || self.max_page_size < self.default_page_size {
            return Err(bad(
                "page sizes",
                "0 < default_page_size <= max_page_size",
                &format!("{} / {}", self.default_page_size, self.max_page_size),
            ));
        }
        for (field, v) in [
            ("id_token_lifetime_secs", self.id_token_lifetime_secs),
            (
                "message_hint_lifetime_secs",
                self.message_hint_lifetime_secs,
            ),
            (
                "access_token_lifetime_secs",
                self.access_token_lifetime_secs,
            ),
            (
                "max_tool_jwt_lifetime_secs",
                self.max_tool_jwt_lifetime_secs,
            ),
        ] {
            if v == 0 {
                return Err(bad(field, "a positive number of seconds", "0"));
            }
        }
        Ok(())
    }

    /// The path part of [`PlatformConfig::services_base_url`] (no trailing slash).
    pub(crate) fn services_base_path(&self) -> &str {
        let rest = self
            .services_base_url
            .split_once("://")
            .map_or(self.services_base_url.as_str(), |(_, r)| r);
        rest.find('/').map_or("", |i| &rest[i..])
    }
}

/// A single-use value store (nonces, `jti`s). The platform records each value with its
/// expiry; recording an unexpired value twice fails.
pub use lti_registry::NonceStore as ReplayStore;

/// An in-memory [`ReplayStore`]; expired entries are purged as new ones arrive.
pub struct MemoryReplayStore {
    seen: Mutex<HashMap<(String, String), i64>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryReplayStore").finish_non_exhaustive()
    }
}

impl MemoryReplayStore {
    /// An empty store reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            clock,
        }
    }
}

#[async_trait::async_trait]
impl ReplayStore for MemoryReplayStore {
    async fn record_nonce(
        &self,
        issuer: &str,
        nonce: &str,
        expires_at: i64,
    ) -> lti_registry::Result<()> {
        let now = i64::try_from(self.clock.now()).unwrap_or(i64::MAX);
        lti_registry::check_expiry("expires_at", expires_at, now)?;
        let mut seen = match self.seen.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if seen.len() > 1024 {
            seen.retain(|_, exp| *exp > now);
        }
        let key = (issuer.to_owned(), nonce.to_owned());
        match seen.get(&key) {
            Some(exp) if *exp > now => Err(lti_registry::RegistryError::NonceReplayed {
                namespace: issuer.to_owned(),
            }),
            _ => {
                seen.insert(key, expires_at);
                Ok(())
            }
        }
    }
}

/// The LMS side of LTI 1.3. Cheap to share behind an `Arc`; every endpoint takes
/// `&self`.
pub struct Platform {
    pub(crate) config: PlatformConfig,
    pub(crate) keys: Arc<PlatformKeys>,
    pub(crate) secret: PlatformSecret,
    pub(crate) tools: Arc<dyn ToolRegistry>,
    pub(crate) key_source: Arc<dyn KeySource>,
    pub(crate) replay: Arc<dyn ReplayStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) grade_book: Arc<dyn GradeBook>,
    pub(crate) roster: Arc<dyn Roster>,
    pub(crate) context_access: Arc<dyn ContextAccess>,
    pub(crate) resource_links: Option<Arc<dyn ResourceLinks>>,
    pub(crate) verifier: Verifier,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("config", &self.config)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Platform {
    /// A platform with in-memory grade book, roster, replay store and context grants
    /// ([`MemoryContextGrants`]: a tool reaches only the contexts it was launched in or
    /// granted), and the system clock; replace them with the `with_*` methods.
    ///
    /// `key_source` resolves tools' JWKS URLs (use `lti_http::JwksCache`); tools
    /// registered with [`ToolKeys::Static`] do not use it.
    ///
    /// # Errors
    /// [`PlatformError::InvalidConfig`] if the configuration is unusable.
    pub fn new(
        config: PlatformConfig,
        keys: Arc<PlatformKeys>,
        secret: PlatformSecret,
        tools: Arc<dyn ToolRegistry>,
        key_source: Arc<dyn KeySource>,
    ) -> Result<Self> {
        config.validate()?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let verifier = Verifier::new(TOOL_ALGORITHMS).map_err(PlatformError::Signing)?;
        Ok(Self {
            config,
            keys,
            secret,
            tools,
            key_source,
            replay: Arc::new(MemoryReplayStore::new(clock.clone())),
            clock,
            grade_book: Arc::new(MemoryGradeBook::new()),
            roster: Arc::new(MemoryRoster::new()),
            context_access: Arc::new(MemoryContextGrants::new()),
            resource_links: None,
            verifier,
        })
    }

    /// Uses `clock` for every time check (and for the default in-memory replay store).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.replay = Arc::new(MemoryReplayStore::new(clock.clone()));
        self.clock = clock;
        self
    }

    /// Uses `store` for single-use nonces and assertion `jti`s (share it between
    /// instances).
    pub fn with_replay_store(mut self, store: Arc<dyn ReplayStore>) -> Self {
        self.replay = store;
        self
    }

    /// Uses `grade_book` behind the AGS endpoints.
    pub fn with_grade_book(mut self, grade_book: Arc<dyn GradeBook>) -> Self {
        self.grade_book = grade_book;
        self
    }

    /// Uses `roster` behind the NRPS endpoint.
    pub fn with_roster(mut self, roster: Arc<dyn Roster>) -> Self {
        self.roster = roster;
        self
    }

    /// Checks the `resourceLinkId` of line items tools create or update against
    /// `links` (default: not checked); see [`ResourceLinks`].
    pub fn with_resource_links(mut self, links: Arc<dyn ResourceLinks>) -> Self {
        self.resource_links = Some(links);
        self
    }

    /// Uses `policy` to decide which contexts' AGS/NRPS services each tool may use
    /// (default [`MemoryContextGrants`]).
    pub fn with_context_access(mut self, policy: Arc<dyn ContextAccess>) -> Self {
        self.context_access = policy;
        self
    }

    /// INSECURE: lets every registered tool with a valid token use the AGS/NRPS
    /// services of every context, launched in it or not ([`InsecureAllowAllContexts`]).
    /// Only for platforms whose every tool is deployed platform-wide and trusted with
    /// all courses. Logs a warning.
    pub fn insecure_open_context_access(mut self) -> Self {
        tracing::warn!(
            issuer = %self.config.issuer,
            "insecure_open_context_access: every registered tool may use the grade book and roster of every context"
        );
        self.context_access = Arc::new(InsecureAllowAllContexts);
        self
    }

    /// Grants tool `client_id` the AGS/NRPS services of context `context_id` without a
    /// launch (e.g. when the tool is placed in a course, or for a tool that syncs
    /// grades on its own schedule). Launches grant their context themselves.
    ///
    /// # Errors
    /// [`PlatformError::Backend`] from the [`ContextAccess`] policy.
    pub async fn grant_context(&self, client_id: &str, context_id: &str) -> Result<()> {
        self.context_access.grant(client_id, context_id).await
    }

    /// The context access policy.
    pub fn context_access(&self) -> &Arc<dyn ContextAccess> {
        &self.context_access
    }

    /// The configuration.
    pub fn config(&self) -> &PlatformConfig {
        &self.config
    }

    /// The key ring (rotate keys through it).
    pub fn keys(&self) -> &Arc<PlatformKeys> {
        &self.keys
    }

    /// The tool registry.
    pub fn tools(&self) -> &Arc<dyn ToolRegistry> {
        &self.tools
    }

    /// The grade book.
    pub fn grade_book(&self) -> &Arc<dyn GradeBook> {
        &self.grade_book
    }

    /// The roster.
    pub fn roster(&self) -> &Arc<dyn Roster> {
        &self.roster
    }

    /// The JWKS endpoint's response.
    pub fn jwks_response(&self) -> http::Response<bytes::Bytes> {
        self.keys.jwks_response()
    }

    /// The id a tool sees for the platform user `user_id` (`sub`, NRPS `user_id`,
    /// AGS `userId`), per the tool's [`SubjectPolicy`].
    pub fn subject_for(&self, tool: &ToolRegistration, user_id: &str) -> String {
        match tool.subject {
            SubjectPolicy::RealUserId => user_id.to_owned(),
            SubjectPolicy::Pseudonymous => self.secret.subject(&tool.client_id, user_id),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock.now()
    }

    /// The registration for `client_id`, or [`PlatformError::UnknownClient`].
    pub(crate) async fn require_tool(&self, client_id: &str) -> Result<ToolRegistration> {
        self.tools
            .tool(client_id)
            .await?
            .ok_or_else(|| PlatformError::UnknownClient {
                client_id: clip(client_id),
            })
    }

    /// Records a single-use value until `expires_at`.
    pub(crate) async fn record_once(
        &self,
        namespace: &str,
        value: &str,
        expires_at: u64,
    ) -> Result<bool> {
        let exp = i64::try_from(expires_at.max(self.now().saturating_add(1))).unwrap_or(i64::MAX);
        match self.replay.record_nonce(namespace, value, exp).await {
            Ok(()) => Ok(true),
            Err(lti_registry::RegistryError::NonceReplayed { .. }) => Ok(false),
            Err(e) => Err(PlatformError::backend("replay store", e)),
        }
    }

    /// Verifies a tool-signed JWT's signature with the tool's keys and returns its claims.
    pub(crate) async fn verify_tool_jwt(
        &self,
        tool: &ToolRegistration,
        token: &str,
    ) -> std::result::Result<serde_json::Map<String, serde_json::Value>, lti_jose::Error> {
        match &tool.keys {
            ToolKeys::Static(set) => self.verifier.verify_with_source(token, set, "").await,
            ToolKeys::JwksUrl(url) => {
                self.verifier
                    .verify_with_source(token, self.key_source.as_ref(), url)
                    .await
            }
        }
    }
}
