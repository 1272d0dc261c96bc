//! The crate's error type.

/// Everything that can go wrong in `lti-services`.
///
/// URLs are redacted with [`lti_http::redact_url`]; no variant carries an
/// access token, an assertion or a whole response body.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The launch's claim does not grant the scope the operation needs.
    #[error(
        "scope not granted: expected {scope} for {operation}, found it missing from the granted scopes"
    )]
    ScopeNotGranted {
        /// The missing scope URI (for read operations, the read-only scope).
        scope: &'static str,
        /// The operation that needs it (e.g. `post score`).
        operation: &'static str,
    },
    /// The launch did not carry the endpoint URL the operation needs.
    #[error("missing endpoint: expected the launch to carry {what}, found none")]
    MissingEndpoint {
        /// Which URL (e.g. `the AGS lineitems URL`).
        what: &'static str,
    },
    /// A service URL is not an absolute `http(s)` URL.
    #[error("invalid URL: expected an absolute http(s) URL for {what}, found {found:?}")]
    InvalidUrl {
        /// Which URL.
        what: &'static str,
        /// The offending URL (redacted, truncated).
        found: String,
    },
    /// The value to send failed validation before anything was sent.
    #[error("invalid {what}: {source}")]
    InvalidInput {
        /// What was being sent (e.g. `score`).
        what: &'static str,
        /// The wire model's reason.
        #[source]
        source: lti_message::MessageError,
    },
    /// A request argument is unusable (e.g. a line item without an `id` to update).
    #[error("invalid argument {what}: expected {expected}, found {found}")]
    InvalidArgument {
        /// The argument.
        what: &'static str,
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// The platform answered with a non-success status.
    #[error(
        "platform refused {operation} at {url}: expected a 2xx status, found {status}{}",
        message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
    )]
    Platform {
        /// The operation (e.g. `post score`).
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// The request URL (redacted).
        url: String,
        /// A short, single-line excerpt of the platform's message, if any.
        message: Option<String>,
    },
    /// The platform answered 2xx with a body this crate cannot read.
    #[error("invalid response to {operation} from {url}: expected {expected}, found {found}")]
    InvalidResponse {
        /// The operation.
        operation: &'static str,
        /// The request URL (redacted).
        url: String,
        /// What was expected.
        expected: &'static str,
        /// What was found (a short parser message, never the whole body).
        found: String,
    },
    /// A `next` or `differences` link pointed to another origin than the
    /// service URL (refused unless `LtiServices::allow_cross_origin_links`).
    #[error(
        "cross-origin link refused: expected a URL on {expected}, found {found} (the access token is not sent there)"
    )]
    CrossOriginLink {
        /// The service's origin.
        expected: String,
        /// The refused URL (redacted, truncated).
        found: String,
    },
    /// The quirk profile name is unknown.
    #[error(
        "unknown quirk profile: expected one of generic, canvas, moodle, blackboard, brightspace, sakai, schoology, found {found:?}"
    )]
    UnknownProfile {
        /// The name given (truncated).
        found: String,
    },
    /// Transport, token, retry or paging failure from `lti-http`.
    #[error(transparent)]
    Http(#[from] lti_http::Error),
}

impl ServiceError {
    /// A stable machine-readable code. [`ServiceError::Http`] passes the
    /// `lti-http` code through (e.g. `token_rejected`, `page_limit_exceeded`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::ScopeNotGranted { .. } => "scope_not_granted",
            Self::MissingEndpoint { .. } => "missing_endpoint",
            Self::InvalidUrl { .. } => "invalid_url",
            Self::InvalidInput { .. } => "invalid_input",
            Self::InvalidArgument { .. } => "invalid_argument",
            Self::Platform { .. } => "platform_error",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::UnknownProfile { .. } => "unknown_profile",
            Self::CrossOriginLink { .. } => "cross_origin_link",
            Self::Http(e) => e.code(),
        }
    }

    /// The HTTP status an adapter should answer with when this error ends a
    /// request it was serving: 403 for a scope the platform did not grant,
    /// 400 for a launch without the endpoint or bad input, a gateway status
    /// for platform and transport failures, 500 for configuration mistakes.
    pub fn status_hint(&self) -> u16 {
        match self {
            Self::ScopeNotGranted { .. } => 403,
            Self::MissingEndpoint { .. }
            | Self::InvalidInput { .. }
            | Self::InvalidArgument { .. } => 400,
            Self::Platform { .. }
            | Self::InvalidResponse { .. }
            | Self::InvalidUrl { .. }
            | Self::CrossOriginLink { .. } => 502,
            Self::UnknownProfile { .. } => 500,
            Self::Http(e) => e.status_hint(),
        }
    }

    /// The platform's HTTP status, for [`ServiceError::Platform`].
    pub fn platform_status(&self) -> Option<u16> {
        match self {
            Self::Platform { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the platform refused a score as older than the one it holds
    /// (Moodle answers `409` "Refusing score with an earlier timestamp").
    /// Such a score is stale, not failed; retry only with a newer timestamp,
    /// more than one second later (Moodle stores whole seconds).
    pub fn is_stale_score(&self) -> bool {
        matches!(
            self,
            Self::Platform {
                operation: crate::ags::op::POST_SCORE,
                status: 409,
                ..
            }
        )
    }
}
