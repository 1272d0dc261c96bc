//! The adapter's error type (`lti_tool::web::Error`) and the `ResponseError` that
//! renders it.

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::{HttpResponse, ResponseError};
pub use lti_tool::web::Error;

use crate::convert;

/// Whether the client asked for JSON: the first of `application/json` (or a
/// `+json` type) and `text/html` in its `Accept` header is the JSON one (see
/// [`lti_tool::web::wants_json`]).
pub fn wants_json(headers: &HeaderMap) -> bool {
    lti_tool::web::wants_json(&convert::headers_lossy(headers))
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
        convert::status(self.error.http_status())
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
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        convert::response(lti_tool::web::error_response(&self.error, self.json))
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};

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
        assert!(!wants_json(&accept("text/html,application/json")));
        assert!(!wants_json(&HeaderMap::new()));
    }

    #[test]
    fn json_rejection_carries_code_message_and_no_store() {
        let rejection = LtiRejection::json(Error::BodyTooLarge { limit: 10 });
        assert_eq!(rejection.status(), StatusCode::PAYLOAD_TOO_LARGE);
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

    #[test]
    fn html_rejection_is_the_page_with_the_status() {
        let rejection = LtiRejection::new(Error::ToolNotConfigured, &accept("text/html"));
        let response = rejection.error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            response.headers().get(CONTENT_TYPE).unwrap(),
            "text/html; charset=utf-8"
        );
        let body = response.into_body().try_into_bytes().unwrap();
        let page = String::from_utf8(body.to_vec()).unwrap();
        assert!(page.contains("<code id=\"error-code\">tool_not_configured</code>"));
    }
}
