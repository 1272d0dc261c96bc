//! The crate's error type.

use std::time::Duration;

/// Which limit a [`Error::Timeout`] hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// Establishing the TCP (and TLS) connection.
    Connect,
    /// The whole exchange: connect, send, response head and body.
    Total,
}

impl std::fmt::Display for TimeoutPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Total => "total",
        })
    }
}

/// Everything that can go wrong in `lti-http`.
///
/// URLs in errors are redacted with [`crate::redact_url`]; no error carries a
/// token, an assertion, a request or a response body.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not an absolute `http(s)` URL.
    #[error("invalid URL: expected an absolute http(s) URL, found {found:?} ({reason})")]
    InvalidUrl {
        /// The offending URL (redacted).
        found: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Plain `http://` to a host that is not loopback, without `allow_insecure_http()`.
    #[error(
        "insecure URL: expected https:// (plain http:// only for loopback hosts unless allow_insecure_http() is set), found {url}"
    )]
    InsecureHttp {
        /// The refused URL (redacted).
        url: String,
    },
    /// The connection could not be established.
    #[error("could not connect to {url} after {attempts} attempt(s): {reason}")]
    Connect {
        /// Target URL (redacted).
        url: String,
        /// Attempts made, including retries.
        attempts: u32,
        /// The transport's description.
        reason: String,
    },
    /// A timeout elapsed.
    #[error(
        "request to {url} timed out: expected a response within {limit:?} ({phase}), found none after {attempts} attempt(s)"
    )]
    Timeout {
        /// Target URL (redacted).
        url: String,
        /// Which timeout.
        phase: TimeoutPhase,
        /// The configured limit.
        limit: Duration,
        /// Attempts made, including retries.
        attempts: u32,
    },
    /// Any other transport failure (connection reset, protocol error, ...).
    #[error("transport error talking to {url} after {attempts} attempt(s): {reason}")]
    Transport {
        /// Target URL (redacted).
        url: String,
        /// Attempts made, including retries.
        attempts: u32,
        /// The transport's description.
        reason: String,
    },
    /// The response body exceeded the configured cap.
    #[error("response body from {url} too large: expected at most {limit} bytes, found more")]
    BodyTooLarge {
        /// Target URL (redacted).
        url: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The response status was not the one expected.
    #[error(
        "unexpected status from {url}: expected {expected}, found {status} after {attempts} attempt(s)"
    )]
    Status {
        /// Target URL (redacted).
        url: String,
        /// The final status code.
        status: u16,
        /// Attempts made, including retries.
        attempts: u32,
        /// What was expected (e.g. "a 2xx status").
        expected: &'static str,
    },
    /// The server answered with a redirect; redirects are never followed.
    #[error(
        "redirect not followed: expected a 2xx status from {url}, found {status} to {location:?}"
    )]
    Redirect {
        /// Target URL (redacted).
        url: String,
        /// The 3xx status.
        status: u16,
        /// The `Location` header (redacted), if any.
        location: Option<String>,
    },
    /// The response could not be understood.
    #[error("invalid response from {url}: expected {expected}, found {found}")]
    InvalidResponse {
        /// Target URL (redacted).
        url: String,
        /// What was expected.
        expected: &'static str,
        /// What was found (never a token or a whole body).
        found: String,
    },
    /// A JWK Set document could not be parsed.
    #[error("invalid JWK set from {url}: {source}")]
    InvalidJwks {
        /// JWKS URL (redacted).
        url: String,
        /// The JOSE layer's reason.
        #[source]
        source: lti_jose::Error,
    },
    /// The token endpoint refused the client-credentials grant.
    #[error(
        "token endpoint {url} refused the grant: expected 200 with an access token, found {status} (error {error:?}: {description:?})"
    )]
    TokenRejected {
        /// Token URL (redacted).
        url: String,
        /// HTTP status.
        status: u16,
        /// RFC 6749 `error` code, when the body had one.
        error: Option<String>,
        /// RFC 6749 `error_description` (truncated), when present.
        description: Option<String>,
    },
    /// A requested scope is not a valid RFC 6749 scope token.
    #[error(
        "invalid scope: expected RFC 6749 scope tokens (no spaces, quotes or backslashes), found {found:?}"
    )]
    InvalidScope {
        /// The offending scope.
        found: String,
    },
    /// Signing the client assertion failed.
    #[error("could not sign the client assertion: {0}")]
    Signing(#[source] lti_jose::Error),
    /// The pluggable token cache failed.
    #[error("token cache failure: {reason}")]
    TokenCache {
        /// The backend's description.
        reason: String,
    },
    /// Paging stopped at the configured maximum number of pages.
    #[error("paging from {url} stopped: expected at most {limit} pages, found more")]
    PageLimit {
        /// First page URL (redacted).
        url: String,
        /// The page cap.
        limit: usize,
    },
    /// A `next` link pointed back to a page that was already fetched.
    #[error("paging loop: expected a new page, found {url} again")]
    PagingLoop {
        /// The repeated URL (redacted).
        url: String,
    },
    /// The request could not be built.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
    /// A URL taken from a launch is not on an origin the
    /// [`crate::EgressPolicy`] admits; nothing was sent.
    #[error("egress refused: expected a URL on {expected}, found one on {found} ({url})")]
    EgressRefused {
        /// The refused URL (redacted).
        url: String,
        /// The admitted origins.
        expected: String,
        /// The URL's origin.
        found: String,
    },
    /// The host resolved only to addresses of a refused class (loopback,
    /// private, link-local, ...); no connection was attempted. The address
    /// itself is not shown.
    #[error(
        "egress refused: expected a public address for {url}, found only {class} addresses (allow_private_addresses is off)"
    )]
    PrivateAddress {
        /// Target URL (redacted).
        url: String,
        /// The address class, e.g. `loopback` (see [`crate::address_class`]).
        class: &'static str,
    },
}

impl Error {
    /// A stable machine-readable code for the variant.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } => "invalid_url",
            Self::InsecureHttp { .. } => "insecure_http",
            Self::Connect { .. } => "connect_failed",
            Self::Timeout { .. } => "timeout",
            Self::Transport { .. } => "transport_error",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::Status { .. } => "unexpected_status",
            Self::Redirect { .. } => "redirect_not_followed",
            Self::InvalidResponse { .. } => "invalid_response",
            Self::InvalidJwks { .. } => "invalid_jwks",
            Self::TokenRejected { .. } => "token_rejected",
            Self::InvalidScope { .. } => "invalid_scope",
            Self::Signing(_) => "assertion_signing_failed",
            Self::TokenCache { .. } => "token_cache_failed",
            Self::PageLimit { .. } => "page_limit_exceeded",
            Self::PagingLoop { .. } => "paging_loop",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::EgressRefused { .. } => "egress_refused",
            Self::PrivateAddress { .. } => "private_address_refused",
        }
    }

    /// The HTTP status an adapter should answer with when this error ends a
    /// request it was serving: a gateway error for upstream failures
    /// (including a platform's URL the egress policy refuses), 500 for
    /// configuration mistakes on our side.
    pub fn status_hint(&self) -> u16 {
        match self {
            Self::Timeout { .. } => 504,
            Self::Connect { .. } | Self::Status { status: 503, .. } => 503,
            Self::Transport { .. }
            | Self::BodyTooLarge { .. }
            | Self::Status { .. }
            | Self::Redirect { .. }
            | Self::InvalidResponse { .. }
            | Self::InvalidJwks { .. }
            | Self::TokenRejected { .. }
            | Self::PageLimit { .. }
            | Self::PagingLoop { .. }
            | Self::EgressRefused { .. }
            | Self::PrivateAddress { .. } => 502,
            Self::InvalidUrl { .. }
            | Self::InsecureHttp { .. }
            | Self::InvalidScope { .. }
            | Self::Signing(_)
            | Self::TokenCache { .. }
            | Self::InvalidRequest { .. } => 500,
        }
    }

    /// How many attempts were made, for the variants that record it.
    pub fn attempts(&self) -> Option<u32> {
        match self {
            Self::Connect { attempts, .. }
            | Self::Timeout { attempts, .. }
            | Self::Transport { attempts, .. }
            | Self::Status { attempts, .. } => Some(*attempts),
            _ => None,
        }
    }

    /// Whether the egress policy refused the request (origin or address
    /// rule); nothing reached the target.
    pub fn is_egress_refusal(&self) -> bool {
        matches!(
            self,
            Self::EgressRefused { .. } | Self::PrivateAddress { .. }
        )
    }

    /// Whether the failure happened before the request reached the server
    /// (safe to retry for any method).
    pub(crate) fn is_pre_send(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. }
                | Self::Timeout {
                    phase: TimeoutPhase::Connect,
                    ..
                }
        )
    }

    /// Whether a retry may help (transport-level failures).
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Timeout { .. } | Self::Transport { .. }
        )
    }

    pub(crate) fn with_attempts(mut self, n: u32) -> Self {
        match &mut self {
            Self::Connect { attempts, .. }
            | Self::Timeout { attempts, .. }
            | Self::Transport { attempts, .. }
            | Self::Status { attempts, .. } => *attempts = n,
            _ => {}
        }
        self
    }
}

/// The name used in the [`crate::HttpClient`] signature.
pub type HttpError = Error;

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Error> {
        let url = || "https://x.test/".to_owned();
        let jose = lti_jose::Error::NoKeys;
        vec![
            Error::InvalidUrl {
                found: url(),
                reason: "r",
            },
            Error::InsecureHttp { url: url() },
            Error::Connect {
                url: url(),
                attempts: 1,
                reason: "r".into(),
            },
            Error::Timeout {
                url: url(),
                phase: TimeoutPhase::Total,
                limit: Duration::from_secs(1),
                attempts: 1,
            },
            Error::Transport {
                url: url(),
                attempts: 1,
                reason: "r".into(),
            },
            Error::BodyTooLarge {
                url: url(),
                limit: 1,
            },
            Error::Status {
                url: url(),
                status: 500,
                attempts: 1,
                expected: "a 2xx status",
            },
            Error::Redirect {
                url: url(),
                status: 302,
                location: None,
            },
            Error::InvalidResponse {
                url: url(),
                expected: "e",
                found: "f".into(),
            },
            Error::InvalidJwks {
                url: url(),
                source: jose.clone(),
            },
            Error::TokenRejected {
                url: url(),
                status: 400,
                error: None,
                description: None,
            },
            Error::InvalidScope {
                found: "a b".into(),
            },
            Error::Signing(jose),
            Error::TokenCache { reason: "r".into() },
            Error::PageLimit {
                url: url(),
                limit: 1,
            },
            Error::PagingLoop { url: url() },
            Error::InvalidRequest { reason: "r".into() },
            Error::EgressRefused {
                url: url(),
                expected: "e".into(),
                found: "f".into(),
            },
            Error::PrivateAddress {
                url: url(),
                class: "loopback",
            },
        ]
    }

    #[test]
    fn every_variant_has_a_distinct_code() {
        let errors = all();
        let codes: std::collections::HashSet<_> = errors.iter().map(Error::code).collect();
        assert_eq!(codes.len(), errors.len());
    }

    #[test]
    fn upstream_failures_hint_gateway_statuses() {
        for e in all() {
            let hint = e.status_hint();
            assert!(
                matches!(hint, 500 | 502 | 503 | 504),
                "{}: {hint}",
                e.code()
            );
        }
        let timeout = Error::Timeout {
            url: String::new(),
            phase: TimeoutPhase::Connect,
            limit: Duration::from_secs(1),
            attempts: 2,
        };
        assert_eq!(timeout.status_hint(), 504);
        assert_eq!(timeout.attempts(), Some(2));
        assert!(timeout.is_pre_send());
        assert_eq!(timeout.with_attempts(3).attempts(), Some(3));
        assert_eq!(Error::InsecureHttp { url: String::new() }.attempts(), None);
    }

    #[test]
    fn messages_say_what_was_expected_and_found() {
        let e = Error::Status {
            url: "https://x.test/a".into(),
            status: 503,
            attempts: 3,
            expected: "a 2xx status",
        };
        assert_eq!(
            e.to_string(),
            "unexpected status from https://x.test/a: expected a 2xx status, found 503 after 3 attempt(s)"
        );
    }
}
