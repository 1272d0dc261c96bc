//! The crate's error type.

use http::StatusCode;

/// Everything the platform side can refuse or fail at.
///
/// Every variant has a stable machine code ([`PlatformError::code`]) and an HTTP status
/// ([`PlatformError::http_status`]); anything a client sends maps to a 4xx, never a 500.
/// Messages say what was expected and what was found, and never carry tokens, keys or
/// secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    // ----- configuration (the application's own mistakes) -----
    /// The platform configuration is unusable.
    #[error("invalid platform configuration: {field}: expected {expected}, found {found}")]
    InvalidConfig {
        /// The configuration field.
        field: &'static str,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// A tool registration is unusable.
    #[error("invalid tool registration {client_id:?}: {reason}")]
    InvalidRegistration {
        /// The registration's client id.
        client_id: String,
        /// What is wrong.
        reason: String,
    },
    /// The launch the application asked for cannot be built.
    #[error("invalid launch: {field}: expected {expected}, found {found}")]
    InvalidLaunch {
        /// The launch field.
        field: &'static str,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },

    // ----- shared request problems -----
    /// The HTTP method is not allowed on this endpoint.
    #[error("method not allowed: expected {expected}, found {found}")]
    MethodNotAllowed {
        /// Allowed methods.
        expected: &'static str,
        /// The method used.
        found: String,
    },
    /// A required request parameter is absent.
    #[error("missing parameter `{name}`")]
    MissingParameter {
        /// The parameter.
        name: &'static str,
    },
    /// A request parameter has the wrong value.
    #[error("invalid parameter `{name}`: expected {expected}, found {found}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What was expected.
        expected: String,
        /// What was found (clipped).
        found: String,
    },
    /// A parameter was sent more than once.
    #[error("parameter `{name}` appears more than once")]
    DuplicateParameter {
        /// The parameter.
        name: String,
    },
    /// The request body is too large.
    #[error("request body too large: expected at most {limit} bytes, found {found}")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
        /// The size found.
        found: usize,
    },
    /// The request body's media type is not accepted.
    #[error("unsupported media type: expected {expected}, found {found}")]
    UnsupportedMediaType {
        /// The accepted media type.
        expected: &'static str,
        /// The Content-Type found.
        found: String,
    },
    /// The client's Accept header excludes the only representation the endpoint has.
    #[error("not acceptable: expected an Accept header allowing {expected}, found {found}")]
    NotAcceptable {
        /// The media type the endpoint produces.
        expected: &'static str,
        /// The Accept header found.
        found: String,
    },
    /// A JSON request body could not be decoded.
    #[error("malformed {what}: {reason}")]
    MalformedBody {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's complaint.
        reason: String,
    },

    // ----- tool registrations -----
    /// No tool is registered under this client id.
    #[error("unknown client: expected a registered client_id, found {client_id:?}")]
    UnknownClient {
        /// The client id (clipped).
        client_id: String,
    },
    /// The deployment is not one of the tool's deployments.
    #[error(
        "unknown deployment: expected a deployment of client {client_id:?}, found {deployment_id:?}"
    )]
    UnknownDeployment {
        /// The client id.
        client_id: String,
        /// The deployment id (clipped).
        deployment_id: String,
    },

    // ----- authorization endpoint (OIDC) -----
    /// The redirect_uri is not registered for the client (exact match).
    #[error(
        "redirect_uri not registered: expected one of the client's registered redirect URIs, found {found:?}"
    )]
    RedirectUriNotRegistered {
        /// The redirect URI (clipped).
        found: String,
    },
    /// `response_type` is not `id_token`.
    #[error("unsupported response_type: expected \"id_token\", found {found:?}")]
    UnsupportedResponseType {
        /// The value found.
        found: String,
    },
    /// `scope` does not contain `openid`.
    #[error("invalid scope: expected \"openid\", found {found:?}")]
    InvalidOpenIdScope {
        /// The value found.
        found: String,
    },
    /// `response_mode` is not `form_post`.
    #[error("unsupported response_mode: expected \"form_post\", found {found:?}")]
    UnsupportedResponseMode {
        /// The value found.
        found: String,
    },
    /// `prompt` is present and not `none`.
    #[error("unsupported prompt: expected \"none\" or no prompt, found {found:?}")]
    UnsupportedPrompt {
        /// The value found.
        found: String,
    },
    /// `nonce` is absent or empty.
    #[error("missing nonce: expected a non-empty nonce, found none")]
    MissingNonce,
    /// No user is signed in to the platform.
    #[error("login required: expected a signed-in platform user, found none")]
    LoginRequired,
    /// `login_hint` does not designate the signed-in user.
    #[error("login_hint mismatch: expected the hint issued for the signed-in user, found another")]
    LoginHintMismatch,
    /// `lti_message_hint` is missing, forged, malformed or for another client.
    #[error("invalid lti_message_hint: {reason}")]
    InvalidMessageHint {
        /// Why it was refused.
        reason: &'static str,
    },
    /// `lti_message_hint` has expired.
    #[error("expired lti_message_hint: expected expiry after {now}, found {exp}")]
    ExpiredMessageHint {
        /// The hint's expiry.
        exp: u64,
        /// Now.
        now: u64,
    },

    // ----- token endpoint (OAuth 2.0) -----
    /// `grant_type` is not `client_credentials`.
    #[error("unsupported grant_type: expected \"client_credentials\", found {found:?}")]
    UnsupportedGrantType {
        /// The value found.
        found: String,
    },
    /// The client assertion failed verification.
    #[error("invalid client assertion: {reason}")]
    InvalidClientAssertion {
        /// What failed (no token content).
        reason: String,
        /// The underlying JOSE error, when there is one.
        #[source]
        source: Option<lti_jose::Error>,
    },
    /// The assertion's `jti` was already used.
    #[error("replayed assertion: expected an unused jti, found one already used")]
    ReplayedAssertion,
    /// A requested scope is not granted to the client.
    #[error("invalid scope: expected scopes registered for the client, found {found:?}")]
    InvalidScope {
        /// The offending scope (clipped).
        found: String,
    },

    // ----- tool-originating messages (deep linking response) -----
    /// The tool's message JWT failed verification.
    #[error("invalid tool message: {reason}")]
    InvalidToolMessage {
        /// What failed.
        reason: String,
        /// The underlying JOSE error, when there is one.
        #[source]
        source: Option<lti_jose::Error>,
    },
    /// The tool's message reused a nonce.
    #[error("replayed nonce: expected an unused nonce, found one already used")]
    ReplayedNonce,
    /// A deep-linking content item was not acceptable under the request's settings.
    #[error("content item refused: {reason}")]
    ContentItemRefused {
        /// Why.
        reason: String,
    },

    // ----- services (AGS / NRPS) -----
    /// No bearer token, or a malformed, forged or expired one.
    #[error("invalid access token: {reason}")]
    InvalidAccessToken {
        /// Why it was refused.
        reason: &'static str,
    },
    /// The access token lacks a scope the operation needs.
    #[error("insufficient scope: expected one of {expected}, found none of them")]
    InsufficientScope {
        /// The scopes that would do.
        expected: String,
    },
    /// The tool may not use the services of this context: it was never launched in it
    /// with AGS/NRPS claims and the application did not grant it (see
    /// [`crate::services::ContextAccess`]). Answered before any lookup, so it reveals
    /// nothing about whether the context exists.
    #[error(
        "context not granted: expected a context the tool was launched in or granted, found one it was not"
    )]
    ContextNotGranted,
    /// The resource does not exist (or belongs to another tool).
    #[error("not found: expected an existing {what}, found none")]
    NotFound {
        /// What was looked up.
        what: &'static str,
    },
    /// A line item or score failed validation.
    #[error("invalid {what}: {reason}")]
    InvalidResource {
        /// What was validated.
        what: &'static str,
        /// Why.
        reason: String,
    },

    /// A score's `userId` is not the `sub` of a member of the context (checked when
    /// the roster knows the context).
    #[error(
        "unknown score user: expected the LTI `sub` of a member of the context, found {found:?}"
    )]
    ScoreUserNotInContext {
        /// The posted `userId` (clipped).
        found: String,
    },

    /// A line item's `resourceLinkId` is not one of the tool's resource links in the
    /// context (checked when a [`crate::services::ResourceLinks`] source knows the
    /// context).
    #[error(
        "unknown resource link: expected the id of one of this tool's resource links in the context, found {found:?}"
    )]
    UnknownResourceLink {
        /// The posted `resourceLinkId` (clipped).
        found: String,
    },

    /// A score older than the one on record was posted; the result is unchanged.
    #[error(
        "stale score: expected a timestamp not older than the result on record, found an older one"
    )]
    StaleScore,

    // ----- back ends -----
    /// An application back end (registry, grade book, roster, nonce store) failed.
    #[error("back end unavailable: the {backend} failed: {reason}")]
    Backend {
        /// Which back end.
        backend: &'static str,
        /// What it said.
        reason: String,
    },
    /// Signing with the platform key failed.
    #[error("signing failed")]
    Signing(#[source] lti_jose::Error),
}

impl PlatformError {
    /// The stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidConfig { .. } => "invalid_config",
            Self::InvalidRegistration { .. } => "invalid_registration",
            Self::InvalidLaunch { .. } => "invalid_launch",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::MissingParameter { .. } => "missing_parameter",
            Self::InvalidParameter { .. } => "invalid_parameter",
            Self::DuplicateParameter { .. } => "duplicate_parameter",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::NotAcceptable { .. } => "not_acceptable",
            Self::MalformedBody { .. } => "malformed_body",
            Self::UnknownClient { .. } => "unknown_client",
            Self::UnknownDeployment { .. } => "unknown_deployment",
            Self::RedirectUriNotRegistered { .. } => "redirect_uri_not_registered",
            Self::UnsupportedResponseType { .. } => "unsupported_response_type",
            Self::InvalidOpenIdScope { .. } => "invalid_openid_scope",
            Self::UnsupportedResponseMode { .. } => "unsupported_response_mode",
            Self::UnsupportedPrompt { .. } => "unsupported_prompt",
            Self::MissingNonce => "missing_nonce",
            Self::LoginRequired => "login_required",
            Self::LoginHintMismatch => "login_hint_mismatch",
            Self::InvalidMessageHint { .. } => "invalid_message_hint",
            Self::ExpiredMessageHint { .. } => "expired_message_hint",
            Self::UnsupportedGrantType { .. } => "unsupported_grant_type",
            Self::InvalidClientAssertion { .. } => "invalid_client_assertion",
            Self::ReplayedAssertion => "replayed_assertion",
            Self::InvalidScope { .. } => "invalid_scope",
            Self::InvalidToolMessage { .. } => "invalid_tool_message",
            Self::ReplayedNonce => "replayed_nonce",
            Self::ContentItemRefused { .. } => "content_item_refused",
            Self::InvalidAccessToken { .. } => "invalid_access_token",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::ContextNotGranted => "context_not_granted",
            Self::NotFound { .. } => "not_found",
            Self::InvalidResource { .. } => "invalid_resource",
            Self::ScoreUserNotInContext { .. } => "score_user_not_in_context",
            Self::UnknownResourceLink { .. } => "unknown_resource_link",
            Self::StaleScore => "stale_score",
            Self::Backend { .. } => "backend_unavailable",
            Self::Signing(_) => "signing_failed",
        }
    }

    /// The HTTP status an endpoint answers with for this error.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::InvalidConfig { .. }
            | Self::InvalidRegistration { .. }
            | Self::InvalidLaunch { .. }
            | Self::Signing(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Backend { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotAcceptable { .. } => StatusCode::NOT_ACCEPTABLE,
            Self::UnknownClient { .. }
            | Self::InvalidClientAssertion { .. }
            | Self::ReplayedAssertion
            | Self::InvalidAccessToken { .. } => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope { .. } | Self::ContextNotGranted => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::StaleScore => StatusCode::CONFLICT,
            Self::ScoreUserNotInContext { .. } | Self::UnknownResourceLink { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::MissingParameter { .. }
            | Self::InvalidParameter { .. }
            | Self::DuplicateParameter { .. }
            | Self::MalformedBody { .. }
            | Self::UnknownDeployment { .. }
            | Self::RedirectUriNotRegistered { .. }
            | Self::UnsupportedResponseType { .. }
            | Self::InvalidOpenIdScope { .. }
            | Self::UnsupportedResponseMode { .. }
            | Self::UnsupportedPrompt { .. }
            | Self::MissingNonce
            | Self::LoginRequired
            | Self::LoginHintMismatch
            | Self::InvalidMessageHint { .. }
            | Self::ExpiredMessageHint { .. }
            | Self::UnsupportedGrantType { .. }
            | Self::InvalidScope { .. }
            | Self::InvalidToolMessage { .. }
            | Self::ReplayedNonce
            | Self::ContentItemRefused { .. }
            | Self::InvalidResource { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// The OAuth 2.0 (RFC 6749 §5.2) error code the token endpoint sends for this error.
    pub fn oauth_error(&self) -> &'static str {
        match self {
            Self::UnsupportedGrantType { .. } => "unsupported_grant_type",
            Self::UnknownClient { .. }
            | Self::InvalidClientAssertion { .. }
            | Self::ReplayedAssertion => "invalid_client",
            Self::InvalidScope { .. } => "invalid_scope",
            Self::Backend { .. } | Self::Signing(_) => "temporarily_unavailable",
            _ => "invalid_request",
        }
    }

    /// The OIDC authentication error code (OpenID Connect Core §3.1.2.6) the
    /// authorization endpoint posts back for this error.
    pub fn oidc_error(&self) -> &'static str {
        match self {
            Self::UnknownClient { .. } => "unauthorized_client",
            Self::UnsupportedResponseType { .. } => "unsupported_response_type",
            Self::InvalidOpenIdScope { .. } => "invalid_scope",
            Self::LoginRequired | Self::LoginHintMismatch => "login_required",
            Self::Backend { .. } | Self::Signing(_) => "temporarily_unavailable",
            Self::InvalidConfig { .. }
            | Self::InvalidRegistration { .. }
            | Self::InvalidLaunch { .. } => "server_error",
            _ => "invalid_request",
        }
    }

    pub(crate) fn param(name: &'static str, expected: impl Into<String>, found: &str) -> Self {
        Self::InvalidParameter {
            name,
            expected: expected.into(),
            found: clip(found),
        }
    }

    pub(crate) fn assertion(reason: impl Into<String>) -> Self {
        Self::InvalidClientAssertion {
            reason: reason.into(),
            source: None,
        }
    }

    pub(crate) fn tool_message(reason: impl Into<String>) -> Self {
        Self::InvalidToolMessage {
            reason: reason.into(),
            source: None,
        }
    }

    pub(crate) fn backend(backend: &'static str, err: impl std::fmt::Display) -> Self {
        Self::Backend {
            backend,
            reason: err.to_string(),
        }
    }
}

/// Shortens attacker-controlled text before it goes into an error message.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The crate's result type.
pub type Result<T, E = PlatformError> = std::result::Result<T, E>;
