//! The adapter's error type and the rejection that renders it.

use axum::response::{IntoResponse, Response};
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};
use lti_tool::ToolError;
use lti_tool::html::escape;

/// Everything the adapter can refuse a request for: the `lti-tool` error of a flow,
/// or one of the adapter's own checks (launch id, role guard, body).
///
/// Each variant has a stable [`Error::code`] and an [`Error::http_status`]; a
/// [`ToolError`] keeps the code and status `lti-tool` gives it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tool flow refused the request.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// The request carries no launch id.
    #[error(
        "launch id missing: expected a launch id in an `Authorization: Bearer` header, the `lti_launch_id` query parameter or the `lti_launch` cookie, found none"
    )]
    MissingLaunchId,
    /// The launching user lacks the role a route requires.
    #[error("insufficient role: expected {expected}, found roles [{found}]")]
    InsufficientRole {
        /// What the guard requires.
        expected: String,
        /// The launch's roles (clipped).
        found: String,
    },
    /// The request body exceeds the route's limit.
    #[error("request body too large: expected at most {limit} bytes, found more")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request body could not be read.
    #[error("unreadable request body: expected a complete body, found {reason}")]
    BodyUnreadable {
        /// What went wrong.
        reason: String,
    },
    /// The deep-linking endpoint's JSON body is malformed.
    #[error("invalid deep-linking request: expected {expected}, found {found}")]
    InvalidDeepLinkRequest {
        /// What was expected.
        expected: &'static str,
        /// What was found (clipped).
        found: String,
    },
}

impl Error {
    /// The stable machine code (`lti-tool`'s code for [`Error::Tool`]).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Tool(e) => e.code(),
            Self::MissingLaunchId => "launch_id_missing",
            Self::InsufficientRole { .. } => "insufficient_role",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyUnreadable { .. } => "body_unreadable",
            Self::InvalidDeepLinkRequest { .. } => "invalid_deep_link_request",
        }
    }

    /// The status the adapter answers with: `lti-tool`'s status for a flow error,
    /// 401 without a launch id, 403 for a role guard, 413 for an oversized body,
    /// 400 for an unreadable or malformed one.
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::Tool(e) => e.http_status(),
            Self::MissingLaunchId => StatusCode::UNAUTHORIZED,
            Self::InsufficientRole { .. } => StatusCode::FORBIDDEN,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyUnreadable { .. } | Self::InvalidDeepLinkRequest { .. } => {
                StatusCode::BAD_REQUEST
            }
        }
    }
}

/// Whether the client asked for JSON: its `Accept` header lists `application/json`
/// (or a `+json` type) ahead of `text/html`, or without `text/html` at all.
pub fn wants_json(headers: &HeaderMap) -> bool {
    for value in headers.get_all(ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let essence = range
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if essence == "text/html" {
                return false;
            }
            if essence == "application/json" || essence.ends_with("+json") {
                return true;
            }
        }
    }
    false
}

/// An [`Error`] ready to be answered: an HTML page for browsers, or
/// `{"error": code, "message": text}` when the request's `Accept` asked for JSON
/// (see [`wants_json`]). The status is always [`Error::http_status`].
#[derive(Debug)]
pub struct LtiRejection {
    error: Error,
    json: bool,
}

impl LtiRejection {
    /// A rejection whose format follows the request's `Accept` header.
    pub fn new(error: impl Into<Error>, request_headers: &HeaderMap) -> Self {
        Self {
            error: error.into(),
            json: wants_json(request_headers),
        }
    }

    /// A rejection rendered as an HTML page.
    pub fn html(error: impl Into<Error>) -> Self {
        Self {
            error: error.into(),
            json: false,
        }
    }

    /// A rejection rendered as JSON.
    pub fn json(error: impl Into<Error>) -> Self {
        Self {
            error: error.into(),
            json: true,
        }
    }

    /// The error.
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The error, by value.
    pub fn into_error(self) -> Error {
        self.error
    }

    /// The status the response will carry.
    pub fn status(&self) -> StatusCode {
        self.error.http_status()
    }
}

impl std::fmt::Display for LtiRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error.code(), self.error)
    }
}

impl std::error::Error for LtiRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl IntoResponse for LtiRejection {
    fn into_response(self) -> Response {
        let status = self.error.http_status();
        let code = self.error.code();
        let message = self.error.to_string();
        if status.is_server_error() {
            tracing::error!(code, status = status.as_u16(), "LTI request failed");
        } else {
            tracing::info!(code, status = status.as_u16(), "LTI request refused");
        }
        let (content_type, body) = if self.json {
            let body = serde_json::json!({ "error": code, "message": message }).to_string();
            ("application/json", body)
        } else {
            (
                "text/html; charset=utf-8",
                error_page(status, code, &message),
            )
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// The HTML error page: status, code and explanation, every value escaped.
fn error_page(status: StatusCode, code: &str, message: &str) -> String {
    let reason = status.canonical_reason().unwrap_or("Error");
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{status} {reason}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}code{{background:#f3f3f3;padding:.1rem .3rem}}</style></head>
<body>
<h1>The LTI request was refused</h1>
<p>Status: <strong>{status} {reason}</strong></p>
<p>Error code: <code id="error-code">{code}</code></p>
<p id="error-message">{message}</p>
</body>
</html>
"#,
        status = status.as_u16(),
        reason = escape(reason),
        code = escape(code),
        message = escape(message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn json_is_chosen_only_when_asked_before_html() {
        assert!(wants_json(&accept("application/json")));
        assert!(wants_json(&accept("application/problem+json, */*")));
        assert!(!wants_json(&accept("text/html,application/json")));
        assert!(wants_json(&accept(
            "application/json;q=0.9, text/html;q=0.8"
        )));
        assert!(!wants_json(&accept("*/*")));
        assert!(!wants_json(&HeaderMap::new()));
    }

    #[test]
    fn error_page_escapes_the_message() {
        let page = error_page(StatusCode::BAD_REQUEST, "x", "<script>alert(1)</script>");
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("<script>alert"));
    }

    #[test]
    fn adapter_errors_have_their_codes_and_statuses() {
        let cases = [
            (Error::MissingLaunchId, "launch_id_missing", 401),
            (
                Error::InsufficientRole {
                    expected: "x".into(),
                    found: "y".into(),
                },
                "insufficient_role",
                403,
            ),
            (Error::BodyTooLarge { limit: 1 }, "body_too_large", 413),
            (
                Error::BodyUnreadable { reason: "x".into() },
                "body_unreadable",
                400,
            ),
            (
                Error::Tool(ToolError::LaunchNotFound),
                "launch_not_found",
                404,
            ),
        ];
        for (e, code, status) in cases {
            assert_eq!(e.code(), code);
            assert_eq!(e.http_status().as_u16(), status);
        }
    }
}
