//! The crate's single error type.

use http::StatusCode;

/// Which side of the exchange a failure belongs to.
///
/// Authentication failures mean "we could not establish who sent this or
/// that it is fresh"; protocol failures mean "the sender is authentic (or the
/// input was structurally wrong) but the message is not an acceptable LTI
/// message".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Unknown consumer key, bad signature, stale timestamp, replayed nonce,
    /// body hash mismatch. HTTP 401.
    Authentication,
    /// Malformed OAuth parameters, wrong message type or version, missing
    /// required parameters, illegal data-model transitions. HTTP 400/409/413.
    Protocol,
    /// Invalid input given by the local application (passports, custom
    /// parameter lines, scores, URLs).
    Input,
    /// A remote service (outcomes endpoint) answered with a failure or could
    /// not be reached. HTTP 502.
    Upstream,
    /// A store could not be reached. HTTP 503.
    Store,
}

/// Every failure this crate reports.
///
/// Each variant has a stable machine code ([`Error::code`]), a kind
/// ([`Error::kind`]) and an HTTP status hint ([`Error::status`]). Messages
/// say what was expected and what was found; they never contain secrets,
/// signatures or whole request bodies.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `oauth_consumer_key` is not known to the consumer store.
    #[error(
        "unknown consumer key: expected a registered oauth_consumer_key, found one that is not registered"
    )]
    UnknownConsumer,
    /// The recomputed signature does not match `oauth_signature`.
    #[error(
        "bad signature: expected the {method} signature computed from the request, found a different oauth_signature"
    )]
    BadSignature {
        /// The signature method in use (`HMAC-SHA1` or `HMAC-SHA256`).
        method: &'static str,
    },
    /// `oauth_timestamp` lies before the accepted window.
    #[error(
        "stale timestamp: expected oauth_timestamp within {window_secs} s of {now}, found {found} (too old)"
    )]
    TimestampTooOld {
        /// The timestamp sent.
        found: u64,
        /// The verifier's clock.
        now: u64,
        /// The accepted window either side of `now`.
        window_secs: u64,
    },
    /// `oauth_timestamp` lies after the accepted window.
    #[error(
        "timestamp in the future: expected oauth_timestamp within {window_secs} s of {now}, found {found}"
    )]
    TimestampTooNew {
        /// The timestamp sent.
        found: u64,
        /// The verifier's clock.
        now: u64,
        /// The accepted window either side of `now`.
        window_secs: u64,
    },
    /// The (consumer key, nonce) pair was already used inside the window.
    #[error(
        "replayed nonce: expected an oauth_nonce not seen before for this consumer, found one already used"
    )]
    NonceReplayed,
    /// `oauth_body_hash` does not match the SHA-1 of the received body.
    #[error(
        "body hash mismatch: expected oauth_body_hash to equal base64(SHA-1(body)), found a different value"
    )]
    BodyHashMismatch,
    /// A non-form body arrived without `oauth_body_hash`.
    #[error(
        "missing oauth_body_hash: expected it on a request with a {content_type} body, found none"
    )]
    MissingBodyHash {
        /// The content type of the body.
        content_type: String,
    },
    /// A required OAuth protocol parameter is absent.
    #[error("missing OAuth parameter: expected `{name}`, found none")]
    MissingOAuthParameter {
        /// The parameter name.
        name: &'static str,
    },
    /// An OAuth protocol parameter was sent more than once.
    #[error("duplicate OAuth parameter: expected `{name}` once, found it {count} times")]
    DuplicateOAuthParameter {
        /// The parameter name.
        name: String,
        /// How often it occurred.
        count: usize,
    },
    /// A protocol parameter is malformed (absurd length, bad charset).
    /// Raised before any store lookup.
    #[error("invalid `{name}`: expected {expected}, found {found}")]
    InvalidOAuthParameter {
        /// The parameter name.
        name: &'static str,
        /// What a valid value looks like.
        expected: &'static str,
        /// A short description of what was found (never the raw value if it may be long).
        found: String,
    },
    /// `oauth_signature_method` is not one this verifier accepts.
    #[error("unsupported signature method: expected one of {expected}, found `{found}`")]
    UnsupportedSignatureMethod {
        /// The accepted methods.
        expected: String,
        /// The method sent (truncated).
        found: String,
    },
    /// `oauth_version` is present and not `1.0`.
    #[error("unsupported oauth_version: expected `1.0`, found `{found}`")]
    UnsupportedOAuthVersion {
        /// The version sent (truncated).
        found: String,
    },
    /// The `Authorization` header is not a well-formed `OAuth` header.
    #[error("malformed Authorization header: expected `OAuth name=\"value\", …`, found {found}")]
    MalformedAuthorizationHeader {
        /// What was wrong.
        found: String,
    },
    /// A URL could not be used as an OAuth base string URI.
    #[error("invalid URL: expected an absolute http(s) URL, found {found}")]
    InvalidUrl {
        /// What was wrong.
        found: String,
    },
    /// `lti_message_type` is not `basic-lti-launch-request`.
    #[error("wrong message type: expected `basic-lti-launch-request`, found `{found}`")]
    WrongMessageType {
        /// The type sent (truncated).
        found: String,
    },
    /// `lti_version` is not one of the accepted values.
    #[error("unsupported lti_version: expected one of LTI-1p0, LTI-1p1, LTI-1p2, found `{found}`")]
    UnsupportedLtiVersion {
        /// The version sent (truncated).
        found: String,
    },
    /// A required LTI parameter is absent or empty.
    #[error("missing LTI parameter: expected `{name}`, found none")]
    MissingParameter {
        /// The parameter name.
        name: &'static str,
    },
    /// A resource link already bound to one context was launched from another.
    #[error("resource link changed context: expected context `{expected}`, found `{found}`")]
    ResourceContextChanged {
        /// The context the resource link is bound to (`(none)` if it had none).
        expected: String,
        /// The context claimed by this launch (`(none)` if absent).
        found: String,
    },
    /// The request body exceeds the configured cap.
    #[error("body too large: expected at most {limit} bytes, found {found}")]
    BodyTooLarge {
        /// The cap.
        limit: usize,
        /// The size received.
        found: usize,
    },
    /// The XML contains a DOCTYPE, an entity declaration or a non-predefined
    /// entity reference. Rejected before (or while) parsing; nothing is expanded.
    #[error("forbidden XML construct: expected plain XML without DTDs or entities, found {found}")]
    XmlForbidden {
        /// The construct found.
        found: &'static str,
    },
    /// The XML is not a well-formed POX envelope.
    #[error("malformed POX XML: expected {expected}, found {found}")]
    MalformedXml {
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: String,
    },
    /// The POX request names an operation this crate does not handle.
    #[error(
        "unsupported POX operation: expected replaceResultRequest, readResultRequest or deleteResultRequest, found `{found}`"
    )]
    UnsupportedOperation {
        /// The operation element name (truncated).
        found: String,
    },
    /// A score outside `[0.0, 1.0]` or not a plain decimal.
    #[error("invalid score: expected a decimal in [0.0, 1.0], found `{found}`")]
    InvalidScore {
        /// The value given (truncated).
        found: String,
    },
    /// A passport `id:key:secret` could not be parsed.
    #[error("invalid passport: expected `id:key:secret`, found {found}")]
    InvalidPassport {
        /// What was wrong (never the secret).
        found: String,
    },
    /// The key for pseudonymous user ids is too short.
    #[error("weak pseudonym key: expected at least 32 bytes, found {found}")]
    WeakPseudonymKey {
        /// The length given.
        found: usize,
    },
    /// A custom parameter line could not be parsed.
    #[error("invalid custom parameter on line {line}: expected `name=value`, found {found}")]
    InvalidCustomParameter {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        found: String,
    },
    /// The outcomes service answered with a codeMajor other than success.
    #[error(
        "outcome request not accepted: expected codeMajor `success`, found `{code_major}` ({description})"
    )]
    OutcomeRejected {
        /// The codeMajor received.
        code_major: String,
        /// The description received (truncated).
        description: String,
    },
    /// The outcomes service answered with a non-2xx HTTP status.
    #[error("outcome service HTTP status: expected 2xx, found {status}")]
    OutcomeHttpStatus {
        /// The status received.
        status: u16,
    },
    /// Sending a request failed at the transport level.
    #[error("transport failure: expected a response, found: {message}")]
    Transport {
        /// What failed.
        message: String,
    },
    /// The HTTP client failed (connect, timeout, body cap, …).
    #[error("HTTP failure: {source}")]
    Http {
        /// The client's error.
        #[source]
        source: lti_http::Error,
    },
    /// The egress policy refused the outcome service URL (its origin is not
    /// listed, or its host is a private address); nothing was sent.
    #[error("{source}")]
    Egress {
        /// The `lti-http` refusal (`egress_refused` or `private_address_refused`).
        #[source]
        source: lti_http::Error,
    },
    /// A store could not complete an operation.
    #[error("store failure: {source}")]
    Store {
        /// The store's error.
        #[source]
        source: lti_registry::RegistryError,
    },
    /// A referenced record does not exist in the provider store.
    #[error("not found: expected an existing {entity}, found none")]
    NotFound {
        /// The entity kind.
        entity: &'static str,
    },
    /// A launch parameter the provider keys records by is unusable.
    #[error("invalid launch parameter {name}: expected {expected}, found {found}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What was expected.
        expected: &'static str,
        /// What was found (described, never the whole value).
        found: String,
    },
    /// The visit a resource page names is unknown or has expired.
    #[error(
        "visit not found: expected the id of a visit this tool started, found an unknown or expired one"
    )]
    VisitNotFound,
    /// The visit belongs to another browser session.
    #[error(
        "foreign visit: expected a visit of this browser's session, found one started in another browser"
    )]
    VisitForeign,
    /// Another user launched in this browser since, which ended the visit.
    #[error(
        "visit ended: expected an open visit, found one ended by a later launch of another user in this browser; launch again from the course"
    )]
    VisitEnded,
    /// The request carries no session cookie and the visit can no longer be
    /// continued in a new window.
    #[error(
        "session cookie missing: expected the tool's session cookie, found none (the browser refuses the tool's cookies in this frame); launch again from the course"
    )]
    SessionCookieMissing,
    /// The one-time hand-over of a visit to a new window was used or expired.
    #[error(
        "new-window hand-over unavailable: expected an unused hand-over of this visit, found it used or expired; launch again from the course"
    )]
    HandoffUnavailable,
}

impl Error {
    /// A stable machine code, e.g. `bad_signature`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::UnknownConsumer => "unknown_consumer_key",
            Error::BadSignature { .. } => "bad_signature",
            Error::TimestampTooOld { .. } => "timestamp_too_old",
            Error::TimestampTooNew { .. } => "timestamp_too_new",
            Error::NonceReplayed => "nonce_replayed",
            Error::BodyHashMismatch => "body_hash_mismatch",
            Error::MissingBodyHash { .. } => "missing_body_hash",
            Error::MissingOAuthParameter { .. } => "missing_oauth_parameter",
            Error::DuplicateOAuthParameter { .. } => "duplicate_oauth_parameter",
            Error::InvalidOAuthParameter { .. } => "invalid_oauth_parameter",
            Error::UnsupportedSignatureMethod { .. } => "unsupported_signature_method",
            Error::UnsupportedOAuthVersion { .. } => "unsupported_oauth_version",
            Error::MalformedAuthorizationHeader { .. } => "malformed_authorization_header",
            Error::InvalidUrl { .. } => "invalid_url",
            Error::WrongMessageType { .. } => "wrong_message_type",
            Error::UnsupportedLtiVersion { .. } => "unsupported_lti_version",
            Error::MissingParameter { .. } => "missing_parameter",
            Error::ResourceContextChanged { .. } => "resource_context_changed",
            Error::BodyTooLarge { .. } => "body_too_large",
            Error::XmlForbidden { .. } => "xml_forbidden_construct",
            Error::MalformedXml { .. } => "xml_malformed",
            Error::UnsupportedOperation { .. } => "pox_unsupported_operation",
            Error::InvalidScore { .. } => "invalid_score",
            Error::InvalidPassport { .. } => "invalid_passport",
            Error::InvalidCustomParameter { .. } => "invalid_custom_parameter",
            Error::WeakPseudonymKey { .. } => "weak_pseudonym_key",
            Error::OutcomeRejected { .. } => "outcome_rejected",
            Error::OutcomeHttpStatus { .. } => "outcome_http_status",
            Error::Transport { .. } => "transport_failure",
            Error::Http { .. } => "http_failure",
            Error::Egress { source } => source.code(),
            Error::Store { .. } => "store_unavailable",
            Error::NotFound { .. } => "not_found",
            Error::InvalidParameter { .. } => "invalid_parameter",
            Error::VisitNotFound => "visit_not_found",
            Error::VisitForeign => "visit_foreign",
            Error::VisitEnded => "visit_ended",
            Error::SessionCookieMissing => "session_cookie_missing",
            Error::HandoffUnavailable => "new_window_handoff_unavailable",
        }
    }

    /// Which side of the exchange failed.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::UnknownConsumer
            | Error::BadSignature { .. }
            | Error::TimestampTooOld { .. }
            | Error::TimestampTooNew { .. }
            | Error::NonceReplayed
            | Error::BodyHashMismatch => ErrorKind::Authentication,
            Error::InvalidScore { .. }
            | Error::InvalidPassport { .. }
            | Error::InvalidCustomParameter { .. }
            | Error::WeakPseudonymKey { .. }
            | Error::InvalidUrl { .. } => ErrorKind::Input,
            Error::OutcomeRejected { .. }
            | Error::OutcomeHttpStatus { .. }
            | Error::Transport { .. }
            | Error::Http { .. }
            | Error::Egress { .. } => ErrorKind::Upstream,
            Error::Store { .. } => ErrorKind::Store,
            _ => ErrorKind::Protocol,
        }
    }

    /// Whether this is an authentication failure (answer 401).
    pub fn is_authentication(&self) -> bool {
        self.kind() == ErrorKind::Authentication
    }

    /// The HTTP status an adapter should answer with.
    ///
    /// Authentication failures are 401 (RFC 5849 §3.2); malformed or
    /// protocol-violating requests are 400; an oversized body is 413; a
    /// resource link claiming a new context is 409; upstream failures are 502
    /// and store failures 503. An unknown visit is 404; a foreign or ended
    /// visit, or a used new-window hand-over, 403; a missing session cookie 401.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::ResourceContextChanged { .. } => StatusCode::CONFLICT,
            Error::NotFound { .. } | Error::VisitNotFound => StatusCode::NOT_FOUND,
            Error::VisitForeign | Error::VisitEnded | Error::HandoffUnavailable => {
                StatusCode::FORBIDDEN
            }
            Error::SessionCookieMissing => StatusCode::UNAUTHORIZED,
            _ => match self.kind() {
                ErrorKind::Authentication => StatusCode::UNAUTHORIZED,
                ErrorKind::Protocol | ErrorKind::Input => StatusCode::BAD_REQUEST,
                ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
                ErrorKind::Store => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }
}

/// Shortens untrusted text for inclusion in an error message.
pub(crate) fn snippet(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.escape_debug().to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{}… ({} chars)", head.escape_debug(), s.chars().count())
    }
}

/// Crate result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
