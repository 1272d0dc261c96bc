//! The crate's single error type.

use http::StatusCode;
use lti_message::MessageError;
use lti_registry::RegistryError;

/// A claim the tool layer itself requires (the message-level claims are checked by
/// `lti-message` and reported through [`ToolError::Message`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ToolClaim {
    /// `iss`.
    Iss,
    /// `aud`.
    Aud,
    /// `exp`.
    Exp,
    /// `iat`.
    Iat,
    /// `nonce`.
    Nonce,
    /// `https://purl.imsglobal.org/spec/lti/claim/deployment_id`.
    DeploymentId,
    /// `https://purl.imsglobal.org/spec/lti/claim/lti1p1` (or one of its members).
    Lti1p1,
}

impl ToolClaim {
    /// The stable code `missing_claim:<name>`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Iss => "missing_claim:iss",
            Self::Aud => "missing_claim:aud",
            Self::Exp => "missing_claim:exp",
            Self::Iat => "missing_claim:iat",
            Self::Nonce => "missing_claim:nonce",
            Self::DeploymentId => "missing_claim:deployment_id",
            Self::Lti1p1 => "missing_claim:lti1p1",
        }
    }

    /// The claim's short name.
    pub fn name(self) -> &'static str {
        &self.code()["missing_claim:".len()..]
    }
}

/// Everything that can go wrong in a tool flow.
///
/// Every variant has a stable machine code ([`ToolError::code`]) and the HTTP status
/// an adapter answers with ([`ToolError::http_status`]). Messages say what was
/// expected and what was found; they never contain a token, a secret, a nonce, a
/// state value or key material (attacker-controlled text is clipped to 64 characters).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The HTTP method is not one the endpoint accepts.
    #[error("method not allowed: expected {expected}, found {found}")]
    MethodNotAllowed {
        /// The accepted methods.
        expected: &'static str,
        /// The method of the request.
        found: String,
    },
    /// The request body is not `application/x-www-form-urlencoded`.
    #[error("unsupported media type: expected application/x-www-form-urlencoded, found {found}")]
    UnsupportedMediaType {
        /// The content type sent (clipped).
        found: String,
    },
    /// The form or query string is not valid UTF-8 after percent-decoding.
    #[error("invalid form encoding: expected UTF-8 percent-encoded parameters, found {found}")]
    InvalidFormEncoding {
        /// What was wrong (never the bytes themselves).
        found: String,
    },
    /// A required request parameter is absent or empty.
    #[error("missing parameter: expected `{name}` in the request, found none")]
    MissingParameter {
        /// The parameter name.
        name: &'static str,
    },
    /// A login parameter the tool seals into the state is longer than it accepts.
    #[error("parameter too long: expected `{name}` of at most {limit} bytes, found {found}")]
    ParameterTooLong {
        /// The parameter name.
        name: &'static str,
        /// The limit in bytes.
        limit: usize,
        /// Its length in bytes.
        found: usize,
    },
    /// A security-relevant parameter was sent more than once.
    #[error("duplicate parameter: expected `{name}` once, found it {count} times")]
    DuplicateParameter {
        /// The parameter name.
        name: &'static str,
        /// How many times it was sent.
        count: usize,
    },
    /// The platform answered the authentication request with an OIDC error.
    #[error(
        "the platform refused the launch: expected an id_token, found error {error:?} ({description})"
    )]
    PlatformError {
        /// The OIDC `error` code (clipped).
        error: String,
        /// The `error_description` (clipped; empty when absent).
        description: String,
    },
    /// No registration exists for the issuer (and client id).
    #[error("unknown issuer: expected a registered platform, found iss {issuer:?}{}", client_id.as_ref().map(|c| format!(" with client_id {c:?}")).unwrap_or_default())]
    UnknownIssuer {
        /// The issuer (clipped).
        issuer: String,
        /// The client id used for the lookup, when there was one (clipped).
        client_id: Option<String>,
    },
    /// Several registrations share the issuer and no client id selects one.
    #[error(
        "ambiguous issuer {issuer:?}: expected a client_id to choose among {count} registrations, found none"
    )]
    AmbiguousIssuer {
        /// The issuer (clipped).
        issuer: String,
        /// Registrations sharing it.
        count: usize,
    },
    /// The `target_link_uri` is not one of the tool's own URLs (open-redirect guard).
    #[error(
        "invalid target_link_uri: expected one of the tool's URLs ({expected}), found {found:?}"
    )]
    InvalidTargetLinkUri {
        /// The configured URLs and prefixes.
        expected: String,
        /// The URI sent (clipped).
        found: String,
    },
    /// The launch's `target_link_uri` claim differs from the login's.
    #[error(
        "target_link_uri mismatch: expected the login's {expected:?}, found {found:?} in the id_token"
    )]
    TargetLinkUriMismatch {
        /// The login's target_link_uri (clipped).
        expected: String,
        /// The claim (clipped).
        found: String,
    },
    /// No state cookie came back with the launch, and nothing else could bind the
    /// state (`cookie_only` says why).
    #[error(
        "state cookie missing: expected the cookie set at login, found none; the browser most likely blocked third-party cookies (the launch runs in an LMS iframe), and {cookie_only}"
    )]
    StateCookieMissing {
        /// Why the cookie was the only binding.
        cookie_only: CookieOnly,
    },
    /// A state cookie came back, but not one bound to the posted `state`.
    #[error(
        "state mismatch: expected a state cookie bound to the posted state, found {found} state cookie(s) bound to other states"
    )]
    StateMismatch {
        /// How many state cookies were sent.
        found: usize,
    },
    /// The state is unknown, expired, or was already used.
    #[error(
        "state not found: expected a state issued by this tool within its lifetime and not used before, found an unknown, expired or reused one"
    )]
    StateNotFound,
    /// A platform-storage confirmation names no pending launch: unknown, expired
    /// (pending launches are kept two minutes) or already confirmed.
    #[error(
        "pending launch not found: expected the single-use id of a launch awaiting its platform-storage check, found an unknown, expired or already used one"
    )]
    PendingLaunchNotFound,
    /// A platform-storage confirmation was not posted by the tool's own check page.
    #[error(
        "cross-origin confirmation: expected a same-origin POST from the tool's check page (Origin {expected}), found {found}"
    )]
    CrossOriginConfirmation {
        /// The tool's origin (that of its redirect URI).
        expected: String,
        /// What the request carried (clipped), or `no Origin header`.
        found: String,
    },
    /// The check page did not find the login's state in the platform's storage in
    /// this browser.
    #[error(
        "state not bound to this browser: expected the platform's storage in this browser to hold the login's state, found {found}; the launch did not start in this browser, or the platform's storage did not answer"
    )]
    StateNotBound {
        /// What the check page reported (clipped).
        found: String,
    },
    /// The id_token is not a well-formed compact JWS (or its payload is not a JSON object).
    #[error("malformed id_token: {reason}")]
    MalformedToken {
        /// What was wrong (never the token).
        reason: String,
    },
    /// The id_token exceeds the size limit.
    #[error("id_token too large: expected at most {limit} bytes, found {found}")]
    TokenTooLarge {
        /// The limit.
        limit: usize,
        /// The size found.
        found: usize,
    },
    /// The token's issuer is registered, but not the platform this login was for.
    #[error(
        "issuer mismatch: expected the issuer of the login ({expected:?}), found iss {found:?}"
    )]
    IssuerMismatch {
        /// The login's issuer.
        expected: String,
        /// The token's issuer (clipped).
        found: String,
    },
    /// `aud` does not contain the tool's client id.
    #[error("invalid audience: expected aud to contain client_id {expected:?}, found {found}")]
    InvalidAudience {
        /// The client id.
        expected: String,
        /// The audiences (clipped).
        found: String,
    },
    /// Several audiences (or an `azp`) and `azp` is not the client id.
    #[error("azp mismatch: expected azp {expected:?}, found {found}")]
    AzpMismatch {
        /// The client id.
        expected: String,
        /// The azp sent, or "none".
        found: String,
    },
    /// The header's `alg` is not on the registration's allow-list (includes `none` and HMAC).
    #[error("algorithm not allowed: expected one of [{allowed}], found {found:?}")]
    AlgorithmNotAllowed {
        /// The header's algorithm (clipped).
        found: String,
        /// The allow-list.
        allowed: String,
    },
    /// The header has no `kid`.
    #[error("missing kid: expected a kid in the id_token header, found none")]
    MissingKid,
    /// The platform's key set has no key with this `kid` (even after a refetch).
    #[error("unknown kid: expected a key with kid {kid:?} in the platform's key set, found none")]
    UnknownKid {
        /// The kid (clipped).
        kid: String,
    },
    /// The key found for the `kid` cannot verify this algorithm.
    #[error("key/algorithm mismatch: {reason}")]
    KeyAlgorithmMismatch {
        /// What was expected and what was found.
        reason: String,
    },
    /// The signature does not verify with the platform's key.
    #[error(
        "bad signature: expected a signature by the platform's key, found one that does not verify"
    )]
    BadSignature,
    /// The platform's key set could not be fetched or parsed.
    #[error("platform JWKS unavailable: {reason}")]
    JwksUnavailable {
        /// Why (the URL is redacted by the key source).
        reason: String,
    },
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired: expected exp + leeway ({exp} + {leeway}) >= now, found now = {now}")]
    TokenExpired {
        /// `exp`.
        exp: u64,
        /// Now.
        now: u64,
        /// Leeway in seconds.
        leeway: u64,
    },
    /// `nbf` is in the future (beyond the leeway).
    #[error(
        "token not yet valid: expected nbf - leeway ({nbf} - {leeway}) <= now, found now = {now}"
    )]
    TokenNotYetValid {
        /// `nbf`.
        nbf: u64,
        /// Now.
        now: u64,
        /// Leeway in seconds.
        leeway: u64,
    },
    /// `iat` is in the future (beyond the leeway).
    #[error(
        "token issued in the future: expected iat - leeway ({iat} - {leeway}) <= now, found now = {now}"
    )]
    IssuedInFuture {
        /// `iat`.
        iat: u64,
        /// Now.
        now: u64,
        /// Leeway in seconds.
        leeway: u64,
    },
    /// `iat` is older than the maximum token age.
    #[error(
        "token too old: expected iat within {max_age} s (+ {leeway} s leeway) of now = {now}, found iat = {iat}"
    )]
    TokenTooOld {
        /// `iat`.
        iat: u64,
        /// Now.
        now: u64,
        /// The maximum age.
        max_age: u64,
        /// Leeway in seconds.
        leeway: u64,
    },
    /// A claim the tool layer requires is absent.
    #[error("missing claim: expected `{}` in the id_token, found none", .0.name())]
    MissingClaim(ToolClaim),
    /// A claim has the wrong type or value.
    #[error("invalid claim `{claim}`: expected {expected}, found {found}")]
    InvalidClaim {
        /// The claim.
        claim: &'static str,
        /// What was expected.
        expected: String,
        /// What was found (clipped).
        found: String,
    },
    /// The id_token's nonce is not the one issued with this state.
    #[error(
        "nonce mismatch: expected the nonce issued at login for this state, found a different one"
    )]
    NonceMismatch,
    /// The nonce was already used by an earlier launch.
    #[error(
        "nonce replayed: expected a nonce not used before, found one an earlier launch already used"
    )]
    NonceReplayed,
    /// The deployment id is not a known deployment of the registration.
    #[error("unknown deployment: expected a registered deployment of {issuer:?} / {client_id:?}, found {deployment_id:?}{}", if *recorded_as_pending { " (recorded as pending for an administrator to approve)" } else { "" })]
    UnknownDeployment {
        /// The issuer.
        issuer: String,
        /// The client id.
        client_id: String,
        /// The deployment id (clipped).
        deployment_id: String,
        /// Whether it was recorded as pending.
        recorded_as_pending: bool,
    },
    /// The deployment is known but not active.
    #[error(
        "deployment inactive: expected deployment {deployment_id:?} to be active, found {status}"
    )]
    DeploymentInactive {
        /// The deployment id.
        deployment_id: String,
        /// Its status.
        status: String,
    },
    /// The registration exists but may not launch: it waits for an
    /// administrator's approval (code `registration_pending`) or was disabled
    /// (`registration_inactive`).
    #[error(
        "registration not active: expected the registration of {issuer:?} / {client_id:?} to be active, found {status}{}",
        if status.as_str() == "pending" { " (an administrator approves it with `lti platforms approve`)" } else { "" }
    )]
    RegistrationInactive {
        /// The issuer.
        issuer: String,
        /// The client id.
        client_id: String,
        /// Its status.
        status: lti_registry::DeploymentStatus,
    },
    /// The id_token's deployment id differs from the login's `lti_deployment_id`.
    #[error(
        "deployment mismatch: expected the login's deployment id {expected:?}, found {found:?}"
    )]
    DeploymentMismatch {
        /// The login's deployment id (clipped).
        expected: String,
        /// The claim (clipped).
        found: String,
    },
    /// A message-level rule failed (version, message type, per-type required claims, sub).
    /// The code is `lti-message`'s, e.g. `invalid_version`, `unknown_message_type`,
    /// `missing_claim:resource_link.id`.
    #[error(transparent)]
    Message(MessageError),
    /// The operation needs a deep-linking launch.
    #[error(
        "not a deep-linking launch: expected message type LtiDeepLinkingRequest, found {found}"
    )]
    NotDeepLinking {
        /// The launch's message type.
        found: String,
    },
    /// The application's account-linking hook refused the launch's user.
    #[error(
        "account refused: expected a user the application links to a local account, found one it refuses: {reason}"
    )]
    AccountRefused {
        /// The hook's reason (user-presentable).
        reason: String,
    },
    /// No launch is stored under this id (unknown or expired).
    #[error(
        "launch not found: expected a stored launch for this id, found none (unknown or expired)"
    )]
    LaunchNotFound,
    /// The `lti1p1` migration claim's signature does not verify.
    #[error(
        "lti1p1 signature mismatch: expected oauth_consumer_key_sign computed with the secret of consumer {consumer_key:?}, found one that does not match"
    )]
    Lti1p1SignatureMismatch {
        /// The consumer key (clipped).
        consumer_key: String,
    },
    /// The `lti1p1` claim names a consumer key the store does not know.
    #[error("unknown LTI 1.1 consumer: expected a consumer with key {consumer_key:?}, found none")]
    UnknownConsumer {
        /// The consumer key (clipped).
        consumer_key: String,
    },
    /// A store could not be reached (fail closed).
    #[error("store unavailable: {0}")]
    StoreUnavailable(#[source] RegistryError),
    /// The tool is misconfigured (no active signing key, bad builder input, a stored
    /// key that cannot be parsed, ...). Not caused by the request.
    #[error("tool configuration error: {reason}")]
    Configuration {
        /// What is wrong.
        reason: String,
    },
    /// Signing failed inside the crypto library.
    #[error("signing failed: {0}")]
    Signing(#[source] lti_jose::Error),
}

impl ToolError {
    /// A stable, machine-readable code (snake_case; `missing_claim:<name>` for absent
    /// claims; message-level codes come from `lti-message`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::InvalidFormEncoding { .. } => "invalid_form_encoding",
            Self::MissingParameter { .. } => "missing_parameter",
            Self::DuplicateParameter { .. } => "duplicate_parameter",
            Self::ParameterTooLong { .. } => "parameter_too_long",
            Self::PlatformError { .. } => "platform_error",
            Self::UnknownIssuer { .. } => "unknown_issuer",
            Self::AmbiguousIssuer { .. } => "ambiguous_issuer",
            Self::InvalidTargetLinkUri { .. } => "invalid_target_link_uri",
            Self::TargetLinkUriMismatch { .. } => "target_link_uri_mismatch",
            Self::StateCookieMissing { .. } => "state_cookie_missing",
            Self::StateMismatch { .. } => "state_mismatch",
            Self::StateNotFound => "state_not_found",
            Self::PendingLaunchNotFound => "pending_launch_not_found",
            Self::CrossOriginConfirmation { .. } => "cross_origin_confirmation",
            Self::StateNotBound { .. } => "state_not_bound",
            Self::MalformedToken { .. } => "malformed_token",
            Self::TokenTooLarge { .. } => "token_too_large",
            Self::IssuerMismatch { .. } => "issuer_mismatch",
            Self::InvalidAudience { .. } => "invalid_audience",
            Self::AzpMismatch { .. } => "azp_mismatch",
            Self::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            Self::MissingKid => "missing_kid",
            Self::UnknownKid { .. } => "unknown_kid",
            Self::KeyAlgorithmMismatch { .. } => "key_algorithm_mismatch",
            Self::BadSignature => "bad_signature",
            Self::JwksUnavailable { .. } => "jwks_unavailable",
            Self::TokenExpired { .. } => "token_expired",
            Self::TokenNotYetValid { .. } => "token_not_yet_valid",
            Self::IssuedInFuture { .. } => "issued_in_future",
            Self::TokenTooOld { .. } => "token_too_old",
            Self::MissingClaim(c) => c.code(),
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::NonceMismatch => "nonce_mismatch",
            Self::NonceReplayed => "nonce_replayed",
            Self::UnknownDeployment { .. } => "unknown_deployment",
            Self::DeploymentInactive { .. } => "deployment_inactive",
            Self::DeploymentMismatch { .. } => "deployment_mismatch",
            Self::RegistrationInactive { status, .. } => match status {
                lti_registry::DeploymentStatus::Pending => "registration_pending",
                _ => "registration_inactive",
            },
            Self::Message(e) => e.code(),
            Self::NotDeepLinking { .. } => "not_deep_linking",
            Self::LaunchNotFound => "launch_not_found",
            Self::AccountRefused { .. } => "account_refused",
            Self::Lti1p1SignatureMismatch { .. } => "lti1p1_signature_mismatch",
            Self::UnknownConsumer { .. } => "unknown_consumer",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::Configuration { .. } => "configuration",
            Self::Signing(_) => "signing_failed",
        }
    }

    /// The HTTP status an adapter answers with: 400 for malformed requests, 401 for
    /// failed authentication (state and its binding, signature, times, nonce), 403
    /// for untrusted senders (unknown issuer, audience, deployment, 1.1 migration,
    /// a cross-origin platform-storage confirmation), 404 for an
    /// unknown launch id, 405 for a wrong method, 415 for a wrong body type, 502 when
    /// the platform's JWKS cannot be fetched, 503 when a store is down, and 500 only
    /// for the tool's own misconfiguration.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidFormEncoding { .. }
            | Self::MissingParameter { .. }
            | Self::DuplicateParameter { .. }
            | Self::ParameterTooLong { .. }
            | Self::AmbiguousIssuer { .. }
            | Self::InvalidTargetLinkUri { .. }
            | Self::MalformedToken { .. }
            | Self::TokenTooLarge { .. }
            | Self::Message(_)
            | Self::NotDeepLinking { .. } => StatusCode::BAD_REQUEST,
            Self::PlatformError { .. }
            | Self::StateCookieMissing { .. }
            | Self::StateMismatch { .. }
            | Self::StateNotFound
            | Self::PendingLaunchNotFound
            | Self::StateNotBound { .. }
            | Self::TargetLinkUriMismatch { .. }
            | Self::AlgorithmNotAllowed { .. }
            | Self::MissingKid
            | Self::UnknownKid { .. }
            | Self::KeyAlgorithmMismatch { .. }
            | Self::BadSignature
            | Self::TokenExpired { .. }
            | Self::TokenNotYetValid { .. }
            | Self::IssuedInFuture { .. }
            | Self::TokenTooOld { .. }
            | Self::MissingClaim(_)
            | Self::InvalidClaim { .. }
            | Self::NonceMismatch
            | Self::NonceReplayed
            | Self::DeploymentMismatch { .. } => StatusCode::UNAUTHORIZED,
            Self::UnknownIssuer { .. }
            | Self::IssuerMismatch { .. }
            | Self::InvalidAudience { .. }
            | Self::AzpMismatch { .. }
            | Self::CrossOriginConfirmation { .. }
            | Self::UnknownDeployment { .. }
            | Self::DeploymentInactive { .. }
            | Self::RegistrationInactive { .. }
            | Self::Lti1p1SignatureMismatch { .. }
            | Self::UnknownConsumer { .. }
            | Self::AccountRefused { .. } => StatusCode::FORBIDDEN,
            Self::LaunchNotFound => StatusCode::NOT_FOUND,
            Self::JwksUnavailable { .. } => StatusCode::BAD_GATEWAY,
            Self::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Configuration { .. } | Self::Signing(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::Configuration {
            reason: reason.into(),
        }
    }

    /// Maps a store error that has no more specific meaning in the flow.
    pub(crate) fn store(e: RegistryError) -> Self {
        match e {
            RegistryError::StoreUnavailable { .. } => Self::StoreUnavailable(e),
            RegistryError::NonceReplayed { .. } => Self::NonceReplayed,
            RegistryError::StateNotFound => Self::StateNotFound,
            RegistryError::UnknownDeployment {
                issuer,
                client_id,
                deployment_id,
                recorded_as_pending,
            } => Self::UnknownDeployment {
                issuer,
                client_id,
                deployment_id: clip(&deployment_id),
                recorded_as_pending,
            },
            RegistryError::DeploymentInactive {
                deployment_id,
                status,
            } => Self::DeploymentInactive {
                deployment_id,
                status: status.to_string(),
            },
            other => Self::Configuration {
                reason: format!("store error {}: {other}", other.code()),
            },
        }
    }

    /// Maps an `lti-jose` error raised while verifying an id_token.
    pub(crate) fn jose(e: lti_jose::Error, allowed: &str) -> Self {
        use lti_jose::Error as J;
        match e {
            J::TokenTooLarge { limit, found } => Self::TokenTooLarge { limit, found },
            J::UnsupportedAlgorithm { found } => Self::AlgorithmNotAllowed {
                found: clip(&found),
                allowed: allowed.to_owned(),
            },
            J::AlgorithmNotAllowed { found, .. } => Self::AlgorithmNotAllowed {
                found,
                allowed: allowed.to_owned(),
            },
            J::UnknownKid { kid } => Self::UnknownKid { kid },
            J::NoKeys | J::AmbiguousKey { .. } => Self::UnknownKid {
                kid: "(none)".to_owned(),
            },
            J::KeyAlgorithmMismatch { expected, found } => Self::KeyAlgorithmMismatch {
                reason: format!("expected {expected}, found {found}"),
            },
            J::BadSignature => Self::BadSignature,
            J::KeySourceUnavailable { url, reason } => Self::JwksUnavailable {
                reason: format!("expected a JWK Set from {url}, found error: {reason}"),
            },
            J::TokenExpired { exp, now, leeway } => Self::TokenExpired { exp, now, leeway },
            J::NotYetValid { nbf, now, leeway } => Self::TokenNotYetValid { nbf, now, leeway },
            J::IssuedInFuture { iat, now, leeway } => Self::IssuedInFuture { iat, now, leeway },
            J::TokenTooOld {
                iat,
                now,
                max_age,
                leeway,
            } => Self::TokenTooOld {
                iat,
                now,
                max_age,
                leeway,
            },
            J::MissingClaim { claim: "exp" } => Self::MissingClaim(ToolClaim::Exp),
            J::MissingClaim { claim: "iat" } => Self::MissingClaim(ToolClaim::Iat),
            J::InvalidClaim {
                claim,
                expected,
                found,
            } => Self::InvalidClaim {
                claim,
                expected,
                found,
            },
            other => Self::MalformedToken {
                reason: other.to_string(),
            },
        }
    }

    /// A plain-text response carrying the status, the code and the message (no
    /// caching). Adapters may render their own page from [`ToolError::code`] and
    /// `Display` instead; the status must stay [`ToolError::http_status`].
    pub fn to_response(&self) -> crate::ToolResponse {
        crate::ToolResponse::text(self.http_status(), format!("{}: {}", self.code(), self))
    }
}

impl From<MessageError> for ToolError {
    fn from(e: MessageError) -> Self {
        Self::Message(e)
    }
}

/// Shortens attacker-controlled text before it goes into an error message.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Why a launch without its state cookie could not be bound another way: the
/// second half of [`ToolError::StateCookieMissing`]'s message, which says what
/// would let the launch through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieOnly {
    /// The launch came through a route that binds by cookie only
    /// ([`crate::Tool::launch`]).
    CookieRoute,
    /// The tool does not use the platform's storage
    /// ([`crate::ToolBuilder::platform_storage`] is off).
    PlatformStorageOff,
    /// The platform offered no storage at login (no `lti_storage_target`).
    StorageNotOffered,
}

impl std::fmt::Display for CookieOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::CookieRoute => {
                "this launch route binds the state by cookie only, so open the tool in a new window or use a browser that allows the cookie"
            }
            Self::PlatformStorageOff => {
                "this tool does not use the platform's postMessage storage (platform storage is off in its configuration), so open the tool in a new window or turn platform storage on"
            }
            Self::StorageNotOffered => {
                "the platform did not offer its postMessage storage at login (no lti_storage_target), so open the tool in a new window or enable the LMS's support for it"
            }
        })
    }
}
