//! The rejection that answers an [`Error`] in axum.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
pub use lti_tool::web::{Error, wants_json};

/// An [`Error`] ready to be answered: an HTML page for browsers, or
/// `{"error": code, "message": text}` when the request's `Accept` asked for JSON
/// (see [`wants_json`]). The status is always [`Error::http_status`]; the body
/// comes from `lti_tool::web::error_response`, so every adapter answers alike.
#[derive(Debug)]
pub struct LtiRejection {
    error: Error,
    json: bool,
}

impl LtiRejection {
    /// A rejection whose format follows the request's `Accept` header.
    pub fn new(error: impl Into<Error>, request_headers: &HeaderMap) -> Self {
        Self::in_format(error, wants_json(request_headers))
    }

    /// A rejection rendered as an HTML page.
    pub fn html(error: impl Into<Error>) -> Self {
        Self::in_format(error, false)
    }

    /// A rejection rendered as JSON.
    pub fn json(error: impl Into<Error>) -> Self {
        Self::in_format(error, true)
    }

    /// A rejection rendered as JSON when `json`, else as an HTML page (for a
    /// handler that read the request's `Accept` before the request moved on).
    pub(crate) fn in_format(error: impl Into<Error>, json: bool) -> Self {
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

impl IntoResponse for LtiRejection {
    fn into_response(self) -> Response {
        lti_tool::web::error_response(&self.error, self.json).map(Body::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{ACCEPT, CONTENT_TYPE};

    #[test]
    fn the_format_follows_accept_and_the_status_the_error() {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, "application/json".parse().unwrap());
        let json = LtiRejection::new(Error::MissingLaunchId, &headers).into_response();
        assert_eq!(json.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(json.headers()[CONTENT_TYPE], "application/json");
        let html = LtiRejection::new(Error::MissingLaunchId, &HeaderMap::new()).into_response();
        assert_eq!(html.status(), StatusCode::UNAUTHORIZED);
        assert!(
            html.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
}
