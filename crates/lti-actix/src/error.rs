//! The adapter's error type and the `ResponseError` that renders it.

use actix_web::http::StatusCode;
use actix_web::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use lti_tool::ToolError;
use lti_tool::html::escape;

/// Everything the adapter can refuse a request for: the `lti-tool` error of a flow,
/// or one of the adapter's own checks (launch id, role guard, body, setup).
///
/// Each variant has a stable [`Error::code`] and an [`Error::http_status`]; a
/// [`ToolError`] keeps the code and status `lti-tool` gives it. The codes are the
/// same as `lti-axum`'s.
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
    /// The request line or a header could not be carried over to the `http` 1
    /// types `lti-tool` reads (actix-web 4 parses with `http` 0.2).
    #[error("malformed request: expected {expected}, found {found}")]
    MalformedRequest {
        /// What was expected.
        expected: &'static str,
        /// What was found (clipped).
        found: String,
    },
    /// The application registered no `web::Data<Tool>` (nor `web::Data<Arc<Tool>>`):
    /// a setup mistake, not the client's.
    #[error(
        "tool not configured: expected `web::Data<lti_tool::Tool>` or `web::Data<Arc<lti_tool::Tool>>` in the app data, found neither"
    )]
    ToolNotConfigured,
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
            Self::MalformedRequest { .. } => "malformed_request",
            Self::ToolNotConfigured => "tool_not_configured",
        }
    }

    /// The status the adapter answers with: `lti-tool`'s status for a flow error,
    /// 401 without a launch id, 403 for a role guard, 413 for an oversized body,
    /// 400 for an unreadable or malformed request, 500 only for a missing tool
    /// (the application's setup).
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::Tool(e) => StatusCode::from_u16(e.http_status().as_u16())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Self::MissingLaunchId => StatusCode::UNAUTHORIZED,
            Self::InsufficientRole { .. } => StatusCode::FORBIDDEN,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyUnreadable { .. }
            | Self::InvalidDeepLinkRequest { .. }
            | Self::MalformedRequest { .. } => StatusCode::BAD_REQUEST,
            Self::ToolNotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Whether the client asked for JSON: the first of `application/json` (or a
/// `+json` type) and `text/html` in its `Accept` header is the JSON one.
pub fn wants_json(headers: &HeaderMap) -> bool {
    let ranges = headers
        .get_all(ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|range| {
            let essence = range.split(';').next().unwrap_or_default();
            essence.trim().to_ascii_lowercase()
        });
    for essence in ranges {
        match essence.as_str() {
            "text/html" => return false,
            "application/json" => return true,
            other if other.ends_with("+json") => return true,
            _ => {}
        }
    }
    false
}

/// An [`Error`] ready to be answered (it is actix-web's [`ResponseError`]): an
/// HTML page for browsers, or `{"error": code, "message": text}` when the
/// request's `Accept` asked for JSON (see [`wants_json`]). The status is always
/// [`Error::http_status`].
#[derive(Debug)]
pub struct LtiRejection {
    error: Error,
    json: bool,
}

impl LtiRejection {
    /// A rejection whose format follows the request's `Accept` header.
    pub fn new(error: impl Into<Error>, request_headers: &HeaderMap) -> Self {
        let json = wants_json(request_headers);
        Self::with_format(error, json)
    }

    /// A rejection rendered as an HTML page.
    pub fn html(error: impl Into<Error>) -> Self {
        Self::with_format(error, false)
    }

    /// A rejection rendered as JSON.
    pub fn json(error: impl Into<Error>) -> Self {
        Self::with_format(error, true)
    }

    fn with_format(error: impl Into<Error>, json: bool) -> Self {
        Self {
            error: error.into(),
            json,
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

impl ResponseError for LtiRejection {
    fn status_code(&self) -> StatusCode {
        self.error.http_status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.error.http_status();
        let code = self.error.code();
        let message = self.error.to_string();
        if status.is_server_error() {
            tracing::error!(code, status = status.as_u16(), "LTI request failed");
        } else {
            tracing::info!(code, status = status.as_u16(), "LTI request refused");
        }
        let (content_type, body) = if self.json {
            let body = serde_json::json!({ "error": code, "message": message });
            ("application/json", body.to_string())
        } else {
            (
                "text/html; charset=utf-8",
                render_page(status, code, &message),
            )
        };
        HttpResponse::build(status)
            .insert_header((CONTENT_TYPE, HeaderValue::from_static(content_type)))
            .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .body(body)
    }
}

/// The HTML page of a refusal: its status, code and explanation, all escaped.
fn render_page(status: StatusCode, code: &str, message: &str) -> String {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let title = escape(&title);
    let code = escape(code);
    let message = escape(message);
    let style = "body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;\
                 padding:0 1rem;line-height:1.5}code{background:#f3f3f3;padding:.1rem .3rem}";
    [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        &format!("<title>{title}</title><style>{style}</style></head>\n<body>\n"),
        "<h1>The LTI request was refused</h1>\n",
        &format!("<p>Status: <strong>{title}</strong></p>\n"),
        &format!("<p>Error code: <code id=\"error-code\">{code}</code></p>\n"),
        &format!("<p id=\"error-message\">{message}</p>\n</body>\n</html>\n"),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use actix_web::http::header::HeaderName;

    use super::*;

    fn accept(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("accept"),
            HeaderValue::from_static(value),
        );
        headers
    }

    #[test]
    fn json_is_chosen_only_when_listed_before_html() {
        assert!(wants_json(&accept("application/json")));
        assert!(wants_json(&accept("application/problem+json, */*")));
        assert!(wants_json(&accept(
            "application/json;q=0.9, text/html;q=0.8"
        )));
        assert!(!wants_json(&accept("text/html,application/json")));
        assert!(!wants_json(&accept("*/*")));
        assert!(!wants_json(&HeaderMap::new()));
    }

    #[test]
    fn the_page_escapes_code_and_message() {
        let page = render_page(StatusCode::BAD_REQUEST, "c<", "<script>alert(1)</script>");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("<code id=\"error-code\">c&lt;</code>"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("400 Bad Request"));
    }

    #[test]
    fn adapter_errors_have_their_codes_and_statuses() {
        let found = || "x".to_owned();
        let cases = [
            (Error::MissingLaunchId, "launch_id_missing", 401),
            (
                Error::InsufficientRole {
                    expected: found(),
                    found: found(),
                },
                "insufficient_role",
                403,
            ),
            (Error::BodyTooLarge { limit: 1 }, "body_too_large", 413),
            (
                Error::BodyUnreadable { reason: found() },
                "body_unreadable",
                400,
            ),
            (
                Error::InvalidDeepLinkRequest {
                    expected: "x",
                    found: found(),
                },
                "invalid_deep_link_request",
                400,
            ),
            (
                Error::MalformedRequest {
                    expected: "x",
                    found: found(),
                },
                "malformed_request",
                400,
            ),
            (Error::ToolNotConfigured, "tool_not_configured", 500),
            (
                Error::Tool(ToolError::LaunchNotFound),
                "launch_not_found",
                404,
            ),
            (Error::Tool(ToolError::BadSignature), "bad_signature", 401),
        ];
        for (error, code, status) in cases {
            assert_eq!(error.code(), code);
            assert_eq!(error.http_status().as_u16(), status, "{code}");
        }
    }

    #[test]
    fn json_rejection_carries_code_message_and_no_store() {
        let rejection = LtiRejection::json(Error::BodyTooLarge { limit: 10 });
        let response = rejection.error_response();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.headers().get(CACHE_CONTROL).unwrap(), "no-store");
        assert_eq!(
            response.headers().get(CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let body = response.into_body().try_into_bytes().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "body_too_large");
        assert_eq!(
            json["message"],
            "request body too large: expected at most 10 bytes, found more"
        );
    }
}
