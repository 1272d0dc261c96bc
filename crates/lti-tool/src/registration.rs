//! LTI Dynamic Registration 1.0, the tool's side: fetch and check the
//! platform's OpenID configuration, post the tool's metadata to its
//! registration endpoint, and store what the platform answered.
//!
//! [`DynamicRegistration::register`] runs the whole exchange for one
//! `openid_configuration` / `registration_token` pair (the two query
//! parameters a platform opens the tool's registration URL with). Nothing is
//! stored unless every step succeeds; a repeated registration for the same
//! (issuer, client id) updates the stored one. The page that closes the
//! platform's registration window is the caller's ([`CLOSE_SCRIPT`],
//! [`close_page_policy`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use lti_http::HttpClient;
use lti_message::registration::{
    ClientRegistration, LtiPlatformConfiguration, LtiToolConfiguration, PlatformConfiguration,
    RegistrationErrorBody, ToolMessage, split_scopes,
};
use lti_registry::{
    Deployment, DeploymentStatus, KeySource, PlatformRegistration, QuirkProfile, RegistrationStore,
    RegistryError, UnknownDeploymentPolicy,
};

/// The OIDC claims a tool asks for when its configuration names none.
pub const DEFAULT_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "name",
    "given_name",
    "family_name",
    "email",
    "locale",
    "picture",
];

/// Metadata keys a dynamic registration writes into
/// [`PlatformRegistration::metadata`].
pub mod metadata {
    /// `dynamic_registration`: how the registration was made.
    pub const REGISTERED_BY: &str = "registered_by";
    /// The platform's `product_family_code` (`canvas`, `moodle`, …).
    pub const PRODUCT_FAMILY: &str = "product_family_code";
    /// The platform's version string.
    pub const PRODUCT_VERSION: &str = "product_version";
    /// The scopes the platform granted, space-separated.
    pub const GRANTED_SCOPES: &str = "granted_scopes";
    /// Unix seconds of the last (re-)registration.
    pub const REGISTERED_AT: &str = "registered_at";
    /// The platform's `registration_client_uri`, when it sent one.
    pub const REGISTRATION_CLIENT_URI: &str = "registration_client_uri";
}

/// The script of the page that ends a successful registration: it tells the
/// platform's window (the opener, or the parent frame) that the tool is done.
/// The message carries no secret, so the target origin is `*` (a platform's
/// admin UI may live on another host than its issuer).
pub const CLOSE_SCRIPT: &str =
    "(window.opener || window.parent).postMessage({subject: \"org.imsglobal.lti.close\"}, \"*\");";

/// The `Content-Security-Policy` of a page whose only script is
/// [`CLOSE_SCRIPT`] (allowed by its SHA-256), with inline styles.
pub fn close_page_policy() -> String {
    crate::html::script_policy(CLOSE_SCRIPT, "")
}

/// What the tool tells a platform about itself (the OIDC client metadata and
/// the LTI tool-configuration object).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ToolMetadata {
    /// The tool's display name (`client_name`).
    pub client_name: String,
    /// The OIDC login initiation URL.
    pub initiate_login_uri: String,
    /// Every launch URL the tool accepts (`redirect_uris`).
    pub redirect_uris: Vec<String>,
    /// The tool's key set URL.
    pub jwks_uri: String,
    /// The default launch URL (`target_link_uri`).
    pub target_link_uri: String,
    /// Optional logo.
    pub logo_uri: Option<String>,
    /// Optional description.
    pub description: Option<String>,
    /// The claims the tool asks for (default [`DEFAULT_CLAIMS`]).
    pub claims: Vec<String>,
    /// The messages the tool supports, with labels, placements and custom
    /// parameters.
    pub messages: Vec<ToolMessage>,
    /// Custom parameters sent with every launch.
    pub custom_parameters: BTreeMap<String, String>,
    /// The service scopes the tool uses; the request asks for those the
    /// platform lists in `scopes_supported`.
    pub scopes: Vec<String>,
}

impl ToolMetadata {
    /// Metadata with [`DEFAULT_CLAIMS`], one redirect URI, no messages, no
    /// custom parameters and no scopes.
    pub fn new(
        client_name: impl Into<String>,
        initiate_login_uri: impl Into<String>,
        redirect_uri: impl Into<String>,
        jwks_uri: impl Into<String>,
        target_link_uri: impl Into<String>,
    ) -> Self {
        Self {
            client_name: client_name.into(),
            initiate_login_uri: initiate_login_uri.into(),
            redirect_uris: vec![redirect_uri.into()],
            jwks_uri: jwks_uri.into(),
            target_link_uri: target_link_uri.into(),
            logo_uri: None,
            description: None,
            claims: DEFAULT_CLAIMS.iter().map(|c| (*c).to_owned()).collect(),
            messages: Vec::new(),
            custom_parameters: BTreeMap::new(),
            scopes: Vec::new(),
        }
    }

    /// The registration request for a platform offering `scopes_supported`:
    /// the tool's scopes that the platform offers, in the tool's order.
    ///
    /// # Errors
    /// [`RegistrationError::InvalidToolMetadata`] when a URL has no host
    /// (the tool-configuration `domain` comes from the target link URI).
    pub fn request(
        &self,
        scopes_supported: &[String],
    ) -> Result<ClientRegistration, RegistrationError> {
        let target = url::Url::parse(&self.target_link_uri).map_err(|e| {
            RegistrationError::InvalidToolMetadata {
                reason: format!(
                    "target_link_uri {:?} is not a URL: {e}",
                    self.target_link_uri
                ),
            }
        })?;
        let domain = host_port(&target).ok_or_else(|| RegistrationError::InvalidToolMetadata {
            reason: format!("target_link_uri {:?} has no host", self.target_link_uri),
        })?;
        let mut secondary = Vec::new();
        for u in self
            .redirect_uris
            .iter()
            .chain([&self.initiate_login_uri, &self.jwks_uri])
        {
            if let Some(d) = url::Url::parse(u).ok().as_ref().and_then(host_port)
                && d != domain
                && !secondary.contains(&d)
            {
                secondary.push(d);
            }
        }
        let configuration = LtiToolConfiguration {
            domain,
            secondary_domains: secondary,
            target_link_uri: self.target_link_uri.clone(),
            custom_parameters: self.custom_parameters.clone(),
            description: self.description.clone(),
            claims: self.claims.clone(),
            messages: self.messages.clone(),
            ..LtiToolConfiguration::default()
        };
        let mut request = ClientRegistration::new_request(
            self.client_name.clone(),
            self.initiate_login_uri.clone(),
            self.redirect_uris.clone(),
            self.jwks_uri.clone(),
            configuration,
        );
        request.logo_uri.clone_from(&self.logo_uri);
        request.set_scopes(
            self.scopes
                .iter()
                .filter(|s| scopes_supported.contains(s))
                .map(String::as_str),
        );
        Ok(request)
    }
}

/// `host[:port]` of a URL (the port only when it is not the scheme's default).
fn host_port(u: &url::Url) -> Option<String> {
    let host = u.host_str()?;
    Some(match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    })
}

/// Whether a new registration may launch at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Approval {
    /// Active at once (the multi-tenant case).
    #[default]
    Auto,
    /// Stored as [`DeploymentStatus::Pending`]: launches are refused
    /// (`registration_pending`) until an administrator approves it.
    Manual,
}

/// Who may register and what a new registration starts as.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistrationPolicy {
    /// Issuers allowed to register (compared after normalising scheme, host,
    /// default port and a trailing `/`); empty allows every issuer.
    pub allowed_issuers: Vec<String>,
    /// Whether new registrations are active at once.
    pub approval: Approval,
    /// The unknown-deployment policy of a registration whose platform named no
    /// deployment (Canvas); default: accept and record the first launch's
    /// deployment, hold later unknown ones as pending.
    pub unknown_deployments: UnknownDeploymentPolicy,
}

impl Default for RegistrationPolicy {
    fn default() -> Self {
        Self {
            allowed_issuers: Vec::new(),
            approval: Approval::Auto,
            unknown_deployments: UnknownDeploymentPolicy::AcceptFirstAndRecord,
        }
    }
}

impl RegistrationPolicy {
    /// The policy that registers any platform at once.
    pub fn open() -> Self {
        Self::default()
    }

    /// Limits registration to `issuers` (builder style).
    #[must_use]
    pub fn allow_issuers(mut self, issuers: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.allowed_issuers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the approval mode (builder style).
    #[must_use]
    pub fn approval(mut self, approval: Approval) -> Self {
        self.approval = approval;
        self
    }

    /// Sets the unknown-deployment policy for registrations without a
    /// deployment id (builder style).
    #[must_use]
    pub fn unknown_deployments(mut self, policy: UnknownDeploymentPolicy) -> Self {
        self.unknown_deployments = policy;
        self
    }

    fn allows(&self, issuer: &str) -> bool {
        self.allowed_issuers.is_empty()
            || self
                .allowed_issuers
                .iter()
                .any(|a| normalized(a).is_some() && normalized(a) == normalized(issuer))
    }

    /// Whether a configuration URL is rooted at one of the allowed issuers
    /// (checked before anything is fetched).
    fn allows_configuration_url(&self, config_url: &url::Url) -> bool {
        self.allowed_issuers.is_empty()
            || self
                .allowed_issuers
                .iter()
                .any(|a| url::Url::parse(a).is_ok_and(|issuer| is_rooted_at(&issuer, config_url)))
    }
}

/// What a successful registration stored.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Registered {
    /// The registration as stored.
    pub registration: PlatformRegistration,
    /// `true` when it replaced an earlier registration of the same
    /// (issuer, client id).
    pub updated: bool,
    /// The scopes the tool asked for.
    pub requested_scopes: Vec<String>,
    /// The scopes the platform granted.
    pub granted_scopes: Vec<String>,
    /// The platform's product family code.
    pub product_family: String,
    /// The platform's version.
    pub product_version: String,
}

impl Registered {
    /// Whether the registration waits for an administrator's approval.
    pub fn pending(&self) -> bool {
        self.registration.status == DeploymentStatus::Pending
    }

    /// Requested scopes the platform did not grant.
    pub fn denied_scopes(&self) -> Vec<&str> {
        self.requested_scopes
            .iter()
            .filter(|s| !self.granted_scopes.contains(s))
            .map(String::as_str)
            .collect()
    }
}

/// Everything a dynamic registration can fail with. Nothing is stored when
/// one of these is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// A required request parameter is missing.
    #[error("missing parameter: expected `{name}` in the registration request, found none")]
    MissingParameter {
        /// The parameter name.
        name: &'static str,
    },
    /// A URL is not an absolute https URL (http only on loopback), or has a
    /// query or fragment where none is allowed.
    #[error("invalid URL in {field}: {reason}")]
    InvalidUrl {
        /// Which URL (`openid_configuration`, `issuer`, `token_endpoint`, …).
        field: &'static str,
        /// What was expected and what was found (URL redacted).
        reason: String,
    },
    /// The issuer is not on the tool's allow-list.
    #[error(
        "issuer not allowed: expected one of the issuers this tool accepts registrations from, found {issuer:?}"
    )]
    IssuerNotAllowed {
        /// The issuer (or the configuration URL, when refused before fetching).
        issuer: String,
    },
    /// The configuration document does not belong to the issuer it names.
    #[error(
        "issuer mismatch: expected the issuer {issuer:?} to be a prefix of the configuration URL {configuration_url:?} (same scheme, host and port, path at a segment boundary)"
    )]
    IssuerMismatch {
        /// The document's issuer.
        issuer: String,
        /// The configuration URL (redacted).
        configuration_url: String,
    },
    /// Required members are missing or lack a required value.
    #[error("incomplete platform configuration: expected every required member, found these missing: {}", missing.join(", "))]
    ConfigurationIncomplete {
        /// Each missing member (`member ∌ value` for a missing list value).
        missing: Vec<String>,
    },
    /// The configuration (or the registration answer) is not the JSON expected.
    #[error("invalid {what} from the platform: {reason}")]
    InvalidDocument {
        /// `platform configuration` or `registration answer`.
        what: &'static str,
        /// The parse error or missing member.
        reason: String,
    },
    /// The platform refused the registration token (401/403), on the
    /// configuration GET or the registration POST.
    #[error("registration token rejected: the platform answered {status} to the {stage}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    TokenRejected {
        /// `configuration request` or `registration request`.
        stage: &'static str,
        /// The platform's status.
        status: u16,
        /// The platform's explanation (clipped), when it gave one.
        detail: Option<String>,
    },
    /// The platform refused the registration (RFC 7591 error, or a plain-text
    /// body as Moodle sends).
    #[error("registration refused by the platform ({status}): {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        /// The platform's status.
        status: u16,
        /// The RFC 7591 `error` code, or the plain-text body (clipped).
        error: String,
        /// The `error_description`, when sent.
        description: Option<String>,
    },
    /// The platform answered with an unexpected status.
    #[error("platform error: the {stage} got status {status}, expected {expected}")]
    PlatformStatus {
        /// `configuration request` or `registration request`.
        stage: &'static str,
        /// The status received.
        status: u16,
        /// What was expected.
        expected: &'static str,
    },
    /// The platform could not be reached.
    #[error("platform unreachable during the {stage}: {source}")]
    Unreachable {
        /// `configuration request` or `registration request`.
        stage: &'static str,
        /// The transport error.
        #[source]
        source: lti_http::Error,
    },
    /// The tool's own metadata is not usable (a configuration error).
    #[error("invalid tool metadata: {reason}")]
    InvalidToolMetadata {
        /// What is wrong.
        reason: String,
    },
    /// The registration could not be stored.
    #[error("storing the registration failed: {0}")]
    Store(#[source] RegistryError),
}

impl RegistrationError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingParameter { .. } => "missing_parameter",
            Self::InvalidUrl { .. } => "invalid_url",
            Self::IssuerNotAllowed { .. } => "issuer_not_allowed",
            Self::IssuerMismatch { .. } => "issuer_mismatch",
            Self::ConfigurationIncomplete { .. } => "configuration_incomplete",
            Self::InvalidDocument { .. } => "invalid_platform_document",
            Self::TokenRejected { .. } => "registration_token_rejected",
            Self::Refused { .. } => "registration_refused",
            Self::PlatformStatus { .. } => "platform_error",
            Self::Unreachable { .. } => "platform_unreachable",
            Self::InvalidToolMetadata { .. } => "invalid_tool_metadata",
            Self::Store(RegistryError::StoreUnavailable { .. }) => "store_unavailable",
            Self::Store(_) => "store_error",
        }
    }

    /// The status the tool answers the administrator's browser with: 400 for a
    /// bad request or a configuration that fails the checks, 403 for an issuer
    /// off the allow-list, 502 when the platform refused, failed or sent
    /// something unusable, 503 when the store is down. Never 500 for anything
    /// the platform or the request did.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::MissingParameter { .. }
            | Self::InvalidUrl { .. }
            | Self::IssuerMismatch { .. }
            | Self::ConfigurationIncomplete { .. } => StatusCode::BAD_REQUEST,
            Self::IssuerNotAllowed { .. } => StatusCode::FORBIDDEN,
            Self::InvalidDocument { .. }
            | Self::TokenRejected { .. }
            | Self::Refused { .. }
            | Self::PlatformStatus { .. }
            | Self::Unreachable { .. } => StatusCode::BAD_GATEWAY,
            Self::Store(RegistryError::InvalidInput { .. }) => StatusCode::BAD_GATEWAY,
            Self::Store(RegistryError::StoreUnavailable { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InvalidToolMetadata { .. } | Self::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

const STAGE_CONFIG: &str = "configuration request";
const STAGE_REGISTER: &str = "registration request";

/// The tool side of Dynamic Registration: an HTTP client (the tool's egress
/// rules apply: give it the client the tool uses for platform requests), the
/// registration store, the tool's metadata and the registration policy.
#[derive(Clone)]
pub struct DynamicRegistration {
    http: Arc<dyn HttpClient>,
    registrations: Arc<dyn RegistrationStore>,
    metadata: ToolMetadata,
    policy: RegistrationPolicy,
}

impl std::fmt::Debug for DynamicRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicRegistration")
            .field("metadata", &self.metadata)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl DynamicRegistration {
    /// Registration with [`RegistrationPolicy::open`].
    pub fn new(
        http: Arc<dyn HttpClient>,
        registrations: Arc<dyn RegistrationStore>,
        metadata: ToolMetadata,
    ) -> Self {
        Self {
            http,
            registrations,
            metadata,
            policy: RegistrationPolicy::open(),
        }
    }

    /// Sets the policy (builder style).
    #[must_use]
    pub fn with_policy(mut self, policy: RegistrationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The tool's metadata.
    pub fn metadata(&self) -> &ToolMetadata {
        &self.metadata
    }

    /// The policy.
    pub fn policy(&self) -> &RegistrationPolicy {
        &self.policy
    }

    /// Fetches the platform's configuration (with the token as a Bearer
    /// credential when given; the URL's own query is kept) and checks it:
    /// https (http on loopback), issuer rooted at the configuration URL and on
    /// the allow-list, required members, `id_token` / RS256 /
    /// `private_key_jwt`.
    ///
    /// # Errors
    /// Every [`RegistrationError`] of the configuration step.
    pub async fn fetch_configuration(
        &self,
        openid_configuration: &str,
        registration_token: Option<&str>,
    ) -> Result<(PlatformConfiguration, LtiPlatformConfiguration), RegistrationError> {
        let config_url = checked_url("openid_configuration", openid_configuration, true)?;
        if !self.policy.allows_configuration_url(&config_url) {
            return Err(RegistrationError::IssuerNotAllowed {
                issuer: lti_http::redact_url(openid_configuration),
            });
        }
        let mut req = http::Request::get(openid_configuration)
            .header(http::header::ACCEPT, "application/json");
        if let Some(token) = registration_token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req
            .body(Bytes::new())
            .map_err(|e| RegistrationError::InvalidUrl {
                field: "openid_configuration",
                reason: e.to_string(),
            })?;
        let resp = self
            .http
            .send(req)
            .await
            .map_err(|source| RegistrationError::Unreachable {
                stage: STAGE_CONFIG,
                source,
            })?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistrationError::TokenRejected {
                stage: STAGE_CONFIG,
                status: status.as_u16(),
                detail: body_detail(resp.body()),
            });
        }
        if status != StatusCode::OK {
            return Err(RegistrationError::PlatformStatus {
                stage: STAGE_CONFIG,
                status: status.as_u16(),
                expected: "200",
            });
        }
        let config: PlatformConfiguration = serde_json::from_slice(resp.body()).map_err(|e| {
            RegistrationError::InvalidDocument {
                what: "platform configuration",
                reason: format!("expected a JSON object, found: {e}"),
            }
        })?;
        let platform = self.check_configuration(&config_url, &config)?;
        Ok((config, platform))
    }

    /// The checks of [`Self::fetch_configuration`] on a document already
    /// fetched from `config_url`.
    fn check_configuration(
        &self,
        config_url: &url::Url,
        config: &PlatformConfiguration,
    ) -> Result<LtiPlatformConfiguration, RegistrationError> {
        let missing = config.missing_members();
        if !missing.is_empty() {
            return Err(RegistrationError::ConfigurationIncomplete { missing });
        }
        let issuer = checked_url("issuer", &config.issuer, false)?;
        if !self.policy.allows(&config.issuer) {
            return Err(RegistrationError::IssuerNotAllowed {
                issuer: clip(&config.issuer),
            });
        }
        if !is_rooted_at(&issuer, config_url) {
            return Err(RegistrationError::IssuerMismatch {
                issuer: clip(&config.issuer),
                configuration_url: lti_http::redact_url(config_url.as_str()),
            });
        }
        for (field, value) in [
            ("authorization_endpoint", &config.authorization_endpoint),
            ("token_endpoint", &config.token_endpoint),
            ("jwks_uri", &config.jwks_uri),
            ("registration_endpoint", &config.registration_endpoint),
        ] {
            checked_url(field, value, true)?;
        }
        match config.lti_platform_configuration() {
            Some(Ok(p)) if !p.product_family_code.is_empty() => Ok(p),
            Some(Ok(_)) => Err(RegistrationError::ConfigurationIncomplete {
                missing: vec![format!(
                    "{}.product_family_code",
                    lti_message::registration::uri::PLATFORM_CONFIGURATION
                )],
            }),
            Some(Err(e)) => Err(RegistrationError::InvalidDocument {
                what: "platform configuration",
                reason: format!(
                    "{} does not parse: {e}",
                    lti_message::registration::uri::PLATFORM_CONFIGURATION
                ),
            }),
            None => Err(RegistrationError::ConfigurationIncomplete {
                missing: vec![lti_message::registration::uri::PLATFORM_CONFIGURATION.to_owned()],
            }),
        }
    }

    /// Runs the whole exchange: fetch and check the configuration, post the
    /// tool's metadata with the Bearer token, store the answer. `now` is unix
    /// seconds (recorded in the metadata).
    ///
    /// # Errors
    /// Every [`RegistrationError`]; nothing is stored on error.
    pub async fn register(
        &self,
        openid_configuration: &str,
        registration_token: Option<&str>,
        now: i64,
    ) -> Result<Registered, RegistrationError> {
        let (config, platform) = self
            .fetch_configuration(openid_configuration, registration_token)
            .await?;
        let request = self.metadata.request(&config.scopes_supported)?;
        let answer = self
            .post_registration(&config.registration_endpoint, registration_token, &request)
            .await?;
        let client_id = answer
            .client_id
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| RegistrationError::InvalidDocument {
                what: "registration answer",
                reason: "expected a non-empty client_id, found none".to_owned(),
            })?
            .to_owned();
        let requested: Vec<String> = request.scopes().map(str::to_owned).collect();
        // The answer's `scope` is what was granted; a platform that echoes
        // nothing granted nothing it told us about.
        let granted: Vec<String> = split_scopes(&answer.scope)
            .filter(|s| requested.iter().any(|r| r == s))
            .map(str::to_owned)
            .collect();
        let deployment_id = answer
            .tool_configuration
            .deployment_id
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned);

        let mut registration = PlatformRegistration::new(
            config.issuer.clone(),
            client_id.clone(),
            config.authorization_endpoint.clone(),
            config.token_endpoint.clone(),
            KeySource::JwksUrl {
                url: config.jwks_uri.clone(),
            },
        )
        .with_quirks(quirk_profile(&platform.product_family_code))
        .with_unknown_deployment_policy(if deployment_id.is_some() {
            UnknownDeploymentPolicy::RecordPendingAndReject
        } else {
            self.policy.unknown_deployments
        });
        if let Some(aud) = config
            .authorization_server
            .as_deref()
            .filter(|a| !a.is_empty() && *a != config.token_endpoint)
        {
            registration = registration.with_token_audience(aud);
        }
        let md = &mut registration.metadata;
        md.insert(
            metadata::REGISTERED_BY.to_owned(),
            "dynamic_registration".to_owned(),
        );
        md.insert(
            metadata::PRODUCT_FAMILY.to_owned(),
            platform.product_family_code.clone(),
        );
        md.insert(
            metadata::PRODUCT_VERSION.to_owned(),
            platform.version.clone(),
        );
        md.insert(metadata::GRANTED_SCOPES.to_owned(), granted.join(" "));
        md.insert(metadata::REGISTERED_AT.to_owned(), now.to_string());
        if let Some(uri) = answer
            .extra
            .get("registration_client_uri")
            .and_then(serde_json::Value::as_str)
        {
            md.insert(metadata::REGISTRATION_CLIENT_URI.to_owned(), uri.to_owned());
        }
        if let Some(d) = &deployment_id {
            registration.deployments.push(Deployment::with_status(
                d.clone(),
                DeploymentStatus::Active,
                now,
            ));
        }

        let updated = self.store(&mut registration).await?;
        tracing::info!(
            target: "lti_tool::registration",
            issuer = %registration.issuer,
            client_id = %registration.client_id,
            product = %platform.product_family_code,
            status = %registration.status,
            updated,
            "platform registered through LTI Dynamic Registration"
        );
        Ok(Registered {
            registration,
            updated,
            requested_scopes: requested,
            granted_scopes: granted,
            product_family: platform.product_family_code,
            product_version: platform.version,
        })
    }

    /// Inserts a new registration (pending under manual approval), or
    /// updates an existing one: its status and deployments are kept, new
    /// deployments added.
    async fn store(
        &self,
        registration: &mut PlatformRegistration,
    ) -> Result<bool, RegistrationError> {
        let existing = match self
            .registrations
            .get_registration(&registration.issuer, &registration.client_id)
            .await
        {
            Ok(r) => Some(r),
            Err(RegistryError::NotFound { .. }) => None,
            Err(e) => return Err(RegistrationError::Store(e)),
        };
        match existing {
            Some(old) => {
                registration.status = old.status;
                for d in &old.deployments {
                    if registration.deployment(&d.deployment_id).is_none() {
                        registration.deployments.push(d.clone());
                    }
                }
                self.registrations
                    .update_registration(registration)
                    .await
                    .map_err(RegistrationError::Store)?;
                Ok(true)
            }
            None => {
                if self.policy.approval == Approval::Manual {
                    registration.status = DeploymentStatus::Pending;
                }
                match self.registrations.insert_registration(registration).await {
                    Ok(()) => Ok(false),
                    // Registered concurrently by another instance: update it.
                    Err(RegistryError::Conflict { .. }) => Box::pin(self.store(registration)).await,
                    Err(e) => Err(RegistrationError::Store(e)),
                }
            }
        }
    }

    async fn post_registration(
        &self,
        endpoint: &str,
        token: Option<&str>,
        request: &ClientRegistration,
    ) -> Result<ClientRegistration, RegistrationError> {
        let body =
            serde_json::to_vec(request).map_err(|e| RegistrationError::InvalidToolMetadata {
                reason: e.to_string(),
            })?;
        let mut req = http::Request::post(endpoint)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json");
        if let Some(token) = token {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req
            .body(Bytes::from(body))
            .map_err(|e| RegistrationError::InvalidUrl {
                field: "registration_endpoint",
                reason: e.to_string(),
            })?;
        let resp = self
            .http
            .send(req)
            .await
            .map_err(|source| RegistrationError::Unreachable {
                stage: STAGE_REGISTER,
                source,
            })?;
        let status = resp.status();
        if status == StatusCode::OK || status == StatusCode::CREATED {
            return serde_json::from_slice(resp.body()).map_err(|e| {
                RegistrationError::InvalidDocument {
                    what: "registration answer",
                    reason: format!("expected the stored registration as JSON, found: {e}"),
                }
            });
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RegistrationError::TokenRejected {
                stage: STAGE_REGISTER,
                status: status.as_u16(),
                detail: body_detail(resp.body()),
            });
        }
        if status.is_client_error() {
            return Err(refusal(status.as_u16(), resp.body()));
        }
        Err(RegistrationError::PlatformStatus {
            stage: STAGE_REGISTER,
            status: status.as_u16(),
            expected: "200 or 201",
        })
    }
}

/// A 4xx answer: an RFC 7591 body, Canvas's `errorMessage` / `errors`, or
/// plain text (Moodle).
fn refusal(status: u16, body: &[u8]) -> RegistrationError {
    if let Ok(e) = serde_json::from_slice::<RegistrationErrorBody>(body) {
        return RegistrationError::Refused {
            status,
            error: clip(&e.error),
            description: e.error_description.as_deref().map(clip),
        };
    }
    RegistrationError::Refused {
        status,
        error: body_detail(body).unwrap_or_else(|| "(empty body)".to_owned()),
        description: None,
    }
}

/// The readable part of an error body: Canvas's `errorMessage` or first of
/// `errors`, an RFC 7591 `error`, or the text itself, clipped.
fn body_detail(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let found = v
            .get("errorMessage")
            .or_else(|| v.get("error_description"))
            .or_else(|| v.get("error"))
            .or_else(|| v.get("errors").and_then(|e| e.get(0)))
            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned));
        if found.is_some() {
            return found.map(|s| clip(&s));
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    (!text.is_empty()).then(|| clip(text))
}

/// The quirk profile for a `product_family_code`.
fn quirk_profile(product_family: &str) -> QuirkProfile {
    match product_family.to_ascii_lowercase().as_str() {
        "desire2learn" | "d2l" | "brightspace" => QuirkProfile::Brightspace,
        "blackboardlearn" | "blackboard" => QuirkProfile::Blackboard,
        other => other.parse().unwrap_or(QuirkProfile::Generic),
    }
}

/// Parses `value` as an absolute https URL (http only on a loopback host);
/// `query_ok` allows a query (never a fragment on an issuer).
fn checked_url(
    field: &'static str,
    value: &str,
    query_ok: bool,
) -> Result<url::Url, RegistrationError> {
    let bad = |reason: String| RegistrationError::InvalidUrl { field, reason };
    if value.trim().is_empty() {
        return Err(RegistrationError::MissingParameter { name: field });
    }
    let u = url::Url::parse(value).map_err(|e| {
        bad(format!(
            "expected an absolute https URL, found {:?} ({e})",
            lti_http::redact_url(&clip(value))
        ))
    })?;
    let host = u.host_str().unwrap_or("");
    match u.scheme() {
        "https" if !host.is_empty() => {}
        "http" if lti_http::is_loopback_host(host) => {}
        "http" => {
            return Err(bad(format!(
                "expected an https URL (plain http only for loopback hosts), found {}",
                lti_http::redact_url(&clip(value))
            )));
        }
        _ => {
            return Err(bad(format!(
                "expected an absolute https URL, found {}",
                lti_http::redact_url(&clip(value))
            )));
        }
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("expected a URL without user-info".to_owned()));
    }
    if u.fragment().is_some() || (!query_ok && u.query().is_some()) {
        return Err(bad(format!(
            "expected a URL without {}, found {}",
            if query_ok {
                "a fragment"
            } else {
                "a query or fragment"
            },
            lti_http::redact_url(&clip(value))
        )));
    }
    Ok(u)
}

/// Whether `issuer` prefixes `config_url`: same scheme, host and effective
/// port, and the issuer's path (a trailing `/` ignored) equal to the
/// configuration URL's path or a whole-segment prefix of it.
fn is_rooted_at(issuer: &url::Url, config_url: &url::Url) -> bool {
    if issuer.scheme() != config_url.scheme()
        || issuer.host_str() != config_url.host_str()
        || issuer.port_or_known_default() != config_url.port_or_known_default()
    {
        return false;
    }
    let base = issuer.path().trim_end_matches('/');
    let path = config_url.path();
    path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// An issuer in comparable form: scheme, host, effective port, path without a
/// trailing `/`.
fn normalized(issuer: &str) -> Option<(String, String, Option<u16>, String)> {
    let u = url::Url::parse(issuer).ok()?;
    Some((
        u.scheme().to_owned(),
        u.host_str()?.to_owned(),
        u.port_or_known_default(),
        u.path().trim_end_matches('/').to_owned(),
    ))
}

fn clip(s: &str) -> String {
    const MAX: usize = 200;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn issuer_prefix_is_checked_at_segment_boundaries() {
        let cfg = u("https://lms.example.edu/mod/lti/openid-configuration.php?x=1");
        assert!(is_rooted_at(&u("https://lms.example.edu"), &cfg));
        assert!(is_rooted_at(&u("https://LMS.example.edu:443/"), &cfg));
        assert!(is_rooted_at(&u("https://lms.example.edu/mod"), &cfg));
        assert!(!is_rooted_at(&u("https://lms.example.edu/mo"), &cfg));
        assert!(!is_rooted_at(&u("https://lms.example.edu:8443"), &cfg));
        assert!(!is_rooted_at(&u("http://lms.example.edu"), &cfg));
        assert!(!is_rooted_at(&u("https://evil.example"), &cfg));
        assert!(!is_rooted_at(
            &u("https://lms.example.edu.evil.example"),
            &cfg
        ));
    }

    #[test]
    fn urls_must_be_https_except_loopback() {
        assert!(checked_url("issuer", "https://lms.example", false).is_ok());
        assert!(checked_url("issuer", "http://localhost:4000", false).is_ok());
        let e = checked_url("issuer", "http://lms.example", false).unwrap_err();
        assert_eq!(e.code(), "invalid_url");
        let e = checked_url("issuer", "https://lms.example?x=1", false).unwrap_err();
        assert_eq!(e.code(), "invalid_url");
        assert!(
            checked_url(
                "openid_configuration",
                "https://lms.example/c?registration_token=x",
                true
            )
            .is_ok()
        );
        assert_eq!(
            checked_url("openid_configuration", "", true)
                .unwrap_err()
                .code(),
            "missing_parameter"
        );
    }

    #[test]
    fn allow_list_compares_normalised_issuers() {
        let p = RegistrationPolicy::open().allow_issuers(["https://Canvas.Instructure.com/"]);
        assert!(p.allows("https://canvas.instructure.com"));
        assert!(!p.allows("https://canvas.instructure.com.evil"));
        assert!(p.allows_configuration_url(&u(
            "https://canvas.instructure.com/api/lti/security/openid-configuration"
        )));
        assert!(!p.allows_configuration_url(&u("https://evil.example/x")));
        assert!(RegistrationPolicy::open().allows("https://any.example"));
    }

    #[test]
    fn the_request_asks_only_for_offered_scopes_and_lists_secondary_domains() {
        let mut m = ToolMetadata::new(
            "Tool",
            "https://tool.example/lti/login",
            "https://tool.example/lti/launch",
            "https://keys.example/jwks.json",
            "https://tool.example/lti/app",
        );
        m.scopes = vec!["a".into(), "b".into()];
        let r = m.request(&["b".into(), "c".into()]).unwrap();
        assert_eq!(r.scope, "b");
        assert_eq!(r.tool_configuration.domain, "tool.example");
        assert_eq!(r.tool_configuration.secondary_domains, ["keys.example"]);
        assert!(r.check_lti_shape().is_none());
    }

    #[test]
    fn refusals_read_json_and_plain_text() {
        let e = refusal(
            400,
            br#"{"error":"invalid_redirect_uri","error_description":"bad"}"#,
        );
        assert!(
            matches!(&e, RegistrationError::Refused { error, description: Some(d), .. } if error == "invalid_redirect_uri" && d == "bad")
        );
        let e = refusal(400, b"missing required attribute jwks_uri");
        assert!(
            matches!(&e, RegistrationError::Refused { error, .. } if error == "missing required attribute jwks_uri")
        );
        assert_eq!(e.http_status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            body_detail(br#"{"errorMessage":"expired"}"#).as_deref(),
            Some("expired")
        );
    }

    fn platform(answer_client_id: Option<&'static str>) -> Arc<dyn HttpClient> {
        Arc::new(lti_http::FnClient::new(
            move |req: http::Request<Bytes>| async move {
                let body = if req.method() == http::Method::GET {
                    serde_json::json!({
                        "issuer": "https://lms.example.edu",
                        "authorization_endpoint": "https://lms.example.edu/auth",
                        "token_endpoint": "https://lms.example.edu/token",
                        "jwks_uri": "https://lms.example.edu/jwks",
                        "registration_endpoint": "https://reg.example.edu/register",
                        "scopes_supported": [],
                        "response_types_supported": ["id_token"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
                        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                            "product_family_code": "canvas", "version": "vCloud",
                            "messages_supported": [{"type": "LtiResourceLinkRequest"}]
                        }
                    })
                } else {
                    let mut answer: serde_json::Value =
                        serde_json::from_slice(req.body()).unwrap_or_default();
                    if let Some(id) = answer_client_id {
                        answer["client_id"] = serde_json::json!(id);
                    }
                    answer
                };
                Ok(http::Response::new(Bytes::from(body.to_string())))
            },
        ))
    }

    fn flow(http: Arc<dyn HttpClient>, store: &lti_registry::Store) -> DynamicRegistration {
        DynamicRegistration::new(
            http,
            store.registrations.clone(),
            ToolMetadata::new(
                "Tool",
                "https://tool.example/lti/login",
                "https://tool.example/lti/launch",
                "https://tool.example/jwks",
                "https://tool.example/lti/app",
            ),
        )
    }

    fn memory_store() -> lti_registry::Store {
        lti_registry::Store::from_backend(Arc::new(lti_store::MemoryStore::new(
            lti_registry::SecretCipher::insecure_plaintext_for_tests(),
            Arc::new(lti_registry::ManualClock::new(1_900_000_000)),
        )))
    }

    const CONFIG_URL: &str = "https://lms.example.edu/api/lti/security/openid-configuration";

    #[tokio::test]
    async fn an_answer_without_client_id_stores_nothing() {
        let store = memory_store();
        let e = flow(platform(None), &store)
            .register(CONFIG_URL, Some("t"), 1)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_platform_document");
        assert_eq!(e.http_status(), StatusCode::BAD_GATEWAY);
        assert!(
            store
                .registrations
                .list_registrations()
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn manual_approval_stores_pending_and_an_update_keeps_the_status() {
        let store = memory_store();
        let manual = flow(platform(Some("c1")), &store)
            .with_policy(RegistrationPolicy::open().approval(Approval::Manual));
        let done = manual.register(CONFIG_URL, Some("t"), 1).await.unwrap();
        assert!(done.pending() && !done.updated);
        assert_eq!(
            done.registration.unknown_deployment_policy,
            UnknownDeploymentPolicy::AcceptFirstAndRecord,
            "no deployment id returned"
        );
        assert_eq!(done.registration.quirks, QuirkProfile::Canvas);
        assert_eq!(
            done.registration.auth_token_url,
            "https://lms.example.edu/token"
        );
        // An administrator approves; a second registration updates in place.
        let mut approved = done.registration.clone();
        approved.status = DeploymentStatus::Active;
        store
            .registrations
            .update_registration(&approved)
            .await
            .unwrap();
        let again = manual.register(CONFIG_URL, Some("t2"), 2).await.unwrap();
        assert!(again.updated && !again.pending());
        assert_eq!(again.registration.metadata[metadata::REGISTERED_AT], "2");
        assert_eq!(
            store
                .registrations
                .list_registrations()
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn quirk_profiles_follow_the_product_family() {
        assert_eq!(quirk_profile("canvas"), QuirkProfile::Canvas);
        assert_eq!(quirk_profile("moodle"), QuirkProfile::Moodle);
        assert_eq!(quirk_profile("desire2learn"), QuirkProfile::Brightspace);
        assert_eq!(quirk_profile("whatever"), QuirkProfile::Generic);
    }
}
