//! The framework-free half of a web adapter (`lti-axum`, `lti-actix`, or one
//! written for another framework).
//!
//! An adapter extracts the request, calls these functions on `http` 1 types and
//! converts the result: the adapter's [`Error`] with its codes and statuses, the
//! refusal rendering ([`error_response`], an HTML page or
//! `{"error": code, "message": text}` chosen by [`wants_json`]), the launch id a
//! follow-up request carries ([`launch_id`], [`requested_launch`]) and whether
//! it may act under it ([`authorize`]: the launch id bound to this browser, and a
//! CSRF check on state-changing methods, see [`csrf_token`]), the role guards
//! ([`require_instructor`], [`require_any_role`]), the deep-linking route's body
//! ([`DeepLinkRequest`], [`require_json`]), the launch cookie ([`launch_cookie`])
//! and the default route paths and body limit ([`RouteConfig`]). Every adapter
//! built on them refuses the same request with the same code and status.
//!
//! ```
//! use http::{HeaderMap, HeaderValue, header};
//! use lti_tool::web;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
//! headers.insert(header::COOKIE, HeaderValue::from_static("lti_launch=abc"));
//!
//! let Some(id) = web::launch_id(&headers, None) else {
//!     panic!("the cookie carries the id");
//! };
//! assert_eq!(id, "abc");
//!
//! let refusal = web::error_response(&web::Error::MissingLaunchId, web::wants_json(&headers));
//! assert_eq!(refusal.status(), http::StatusCode::UNAUTHORIZED);
//! assert!(refusal.body().contains(r#""error":"launch_id_missing""#));
//! ```

use http::header::{
    ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, COOKIE, ORIGIN, SET_COOKIE,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use lti_message::{Role, Roles};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tracing::Instrument;

use crate::html::escape;
use crate::{ContentItem, DeepLinkingResponseBuilder, LAUNCH_ID_PARAM, Launch, LtiMessage};
use crate::{LaunchOutcome, Tool, ToolError, ToolRequest};

/// The default login initiation path (GET and POST).
pub const LOGIN_PATH: &str = "/lti/login";
/// The default launch path (the redirect URI; POST, and GET with a launch id:
/// [`launch_get`]).
pub const LAUNCH_PATH: &str = "/lti/launch";
/// The default path of the tool's public key set (GET).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// The default deep-linking response path (POST, JSON body, see [`DeepLinkRequest`]).
pub const DEEP_LINK_PATH: &str = "/lti/deep-link";
/// The default request body limit: 64 KiB (an id_token is at most 16 KiB by default).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The cookie the launch route sets to the launch id (a session cookie, `HttpOnly`;
/// `Secure; SameSite=None; Partitioned` when the tool's base URL is `https`).
pub const LAUNCH_COOKIE: &str = "lti_launch";

/// The longest launch id accepted from a request (ids issued by `lti-tool` are 43
/// characters; anything far longer is refused before the store is asked).
pub const MAX_LAUNCH_ID_LEN: usize = 256;

/// The most launches the [`LAUNCH_COOKIE`] remembers (newest first): a browser
/// may follow up on any of its last eight launches (several tabs or frames),
/// and on no launch of another browser's.
pub const MAX_COOKIE_LAUNCHES: usize = 8;

/// The query parameter that carries a launch's CSRF token ([`csrf_token`]) on a
/// state-changing request, e.g. in a form's `action` (see [`launch_query`]).
pub const CSRF_PARAM: &str = "lti_csrf_token";

/// The header that carries a launch's CSRF token ([`csrf_token`]) on a
/// state-changing request sent by a script.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-lti-csrf-token");

/// The domain separation of the CSRF token's HMAC (the state cookie's has its own).
const CSRF_CONTEXT: &[u8] = b"lti-tool csrf token v1\0";

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The longest role list an [`Error::InsufficientRole`] quotes, in characters.
const MAX_ROLES_CHARS: usize = 200;

/// Everything a web adapter can refuse a request for: the [`ToolError`] of a flow,
/// or one of the adapter's own checks (launch id, role guard, body, setup).
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
    /// No route answers the request's path (an entry point that owns every path,
    /// such as `lti_tool::service::LtiService` without a fallback).
    #[error("no such route: expected one of the server's paths, found {path:?}")]
    RouteNotFound {
        /// The request's path (clipped to 64 characters).
        path: String,
    },
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
    /// types `lti-tool` reads (an adapter whose framework uses other types).
    #[error("malformed request: expected {expected}, found {found}")]
    MalformedRequest {
        /// What was expected.
        expected: &'static str,
        /// What was found (clipped).
        found: String,
    },
    /// A state-changing request (any method but GET, HEAD, OPTIONS and TRACE)
    /// that nothing but ambient credentials authorise: see [`authorize`].
    #[error(
        "cross-site request refused: expected a state-changing request to carry its launch's CSRF token (the `lti_csrf_token` query parameter or the `X-LTI-CSRF-Token` header), its launch id in an `Authorization: Bearer` header, or its launch id in the query from a page of the tool's own origin (`Sec-Fetch-Site: same-origin` or a matching `Origin`), found {found}"
    )]
    CsrfCheckFailed {
        /// What the request carried instead (never a token or launch id).
        found: String,
    },
    /// The query names a launch that this browser's launch cookie does not hold
    /// (a link carrying someone else's launch id).
    #[error(
        "launch id not bound to this browser: expected the `lti_launch_id` query parameter to name one of the launches this browser's `lti_launch` cookie holds, found another launch"
    )]
    LaunchNotBound,
    /// The request body is not of the media type the route reads.
    #[error("unsupported media type: expected Content-Type {expected}, found {found}")]
    UnsupportedMediaType {
        /// The media type the route reads.
        expected: &'static str,
        /// The request's `Content-Type` (clipped), or that it sent none.
        found: String,
    },
    /// The application gave the adapter no [`Tool`]: a setup mistake, not the
    /// client's.
    #[error(
        "tool not configured: expected the application to register the `lti_tool::Tool` (in actix-web: `web::Data<Tool>` or `web::Data<Arc<Tool>>` in the app data), found none"
    )]
    ToolNotConfigured,
}

impl Error {
    /// The stable machine code (`lti-tool`'s code for [`Error::Tool`]).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Tool(e) => e.code(),
            Self::MissingLaunchId => "launch_id_missing",
            Self::RouteNotFound { .. } => "route_not_found",
            Self::InsufficientRole { .. } => "insufficient_role",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyUnreadable { .. } => "body_unreadable",
            Self::InvalidDeepLinkRequest { .. } => "invalid_deep_link_request",
            Self::MalformedRequest { .. } => "malformed_request",
            Self::CsrfCheckFailed { .. } => "csrf_check_failed",
            Self::LaunchNotBound => "launch_id_not_bound",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::ToolNotConfigured => "tool_not_configured",
        }
    }

    /// The status to answer with: `lti-tool`'s status for a flow error, 401
    /// without a launch id, 404 for an unknown route, 403 for a role guard, a
    /// failed CSRF check or an unbound launch id, 413 for an oversized body, 415
    /// for a body of another media type, 400 for an unreadable or malformed
    /// request, 500 only for a missing tool (the application's setup).
    pub fn http_status(&self) -> StatusCode {
        match self {
            Self::Tool(e) => e.http_status(),
            Self::MissingLaunchId => StatusCode::UNAUTHORIZED,
            Self::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            Self::InsufficientRole { .. } | Self::CsrfCheckFailed { .. } | Self::LaunchNotBound => {
                StatusCode::FORBIDDEN
            }
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyUnreadable { .. }
            | Self::InvalidDeepLinkRequest { .. }
            | Self::MalformedRequest { .. } => StatusCode::BAD_REQUEST,
            Self::ToolNotConfigured => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// An [`Error::RouteNotFound`] quoting at most 64 characters of `path`.
    pub fn route_not_found(path: &str) -> Self {
        Self::RouteNotFound {
            path: clip(path, 64),
        }
    }

    /// An [`Error::MalformedRequest`] quoting at most 64 characters of `found`.
    pub fn malformed(expected: &'static str, found: &str) -> Self {
        Self::MalformedRequest {
            expected,
            found: clip(found, 64),
        }
    }
}

/// `text` cut to `max` characters, with `…` when something was cut.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Whether the client asked for JSON: the first of `application/json` (or a
/// `+json` type) and `text/html` in its `Accept` header is the JSON one.
pub fn wants_json(headers: &HeaderMap) -> bool {
    let ranges = headers
        .get_all(ACCEPT)
        .iter()
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

/// Where a request's launch id came from (see [`requested_launch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaunchIdSource {
    /// An `Authorization: Bearer <id>` header: set by the tool's own script,
    /// never sent by a browser on its own.
    Bearer,
    /// The `lti_launch_id` query parameter.
    Query,
    /// The [`LAUNCH_COOKIE`]: ambient, sent with every request to the tool,
    /// including ones another site makes the browser send.
    Cookie,
}

/// The launch a request names and where the name came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedLaunch {
    /// The launch id.
    pub id: String,
    /// Where it came from.
    pub source: LaunchIdSource,
}

/// An id of acceptable length: not empty, at most [`MAX_LAUNCH_ID_LEN`].
fn plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_LAUNCH_ID_LEN
}

/// The value of the first `name=` pair of `query`.
fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?.split('&').find_map(|pair| {
        let (n, value) = pair.split_once('=')?;
        (n == name).then_some(value)
    })
}

/// The launch ids of the request's [`LAUNCH_COOKIE`], newest first (`None`
/// without the cookie). The cookie holds up to [`MAX_COOKIE_LAUNCHES`] ids
/// separated by `.` (launch ids are base64url and never contain one).
fn cookie_launch_ids(headers: &HeaderMap) -> Option<Vec<&str>> {
    let value = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name.trim() == LAUNCH_COOKIE).then(|| value.trim())
        })?;
    Some(
        value
            .split('.')
            .filter(|id| plausible_id(id))
            .take(MAX_COOKIE_LAUNCHES)
            .collect(),
    )
}

/// The launch a request names, looked up in this order: an
/// `Authorization: Bearer <id>` header, the `lti_launch_id` parameter of `query`
/// (the request's query string, which `lti-tool` appends to the post-launch
/// redirect), the newest launch of the [`LAUNCH_COOKIE`]. The header and the
/// query parameter let follow-up requests work inside an LMS iframe whose
/// browser blocks third-party cookies. An empty id or one longer than
/// [`MAX_LAUNCH_ID_LEN`] counts as absent.
///
/// A query id never replaces a different launch bound to this browser: when
/// the request carries the launch cookie, the query must name one of the
/// launches it holds (the cookie remembers the browser's last
/// [`MAX_COOKIE_LAUNCHES`]). A browser that sends no launch cookie (one that
/// blocks the tool's cookies in the LMS frame, where the launch was bound
/// through the platform's storage) is followed by the query id alone.
///
/// # Errors
/// [`Error::MissingLaunchId`] (401) without an id, [`Error::LaunchNotBound`]
/// (403) for a query id the cookie does not hold.
pub fn requested_launch(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<RequestedLaunch, Error> {
    let found = |id: &str, source| RequestedLaunch {
        id: id.to_owned(),
        source,
    };
    let bearer = headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    if let Some(id) = bearer.filter(|id| plausible_id(id)) {
        return Ok(found(id, LaunchIdSource::Bearer));
    }
    let cookie = cookie_launch_ids(headers);
    if let Some(id) = query_param(query, LAUNCH_ID_PARAM).filter(|id| plausible_id(id)) {
        return match &cookie {
            Some(bound) if !bound.is_empty() && !bound.contains(&id) => Err(Error::LaunchNotBound),
            _ => Ok(found(id, LaunchIdSource::Query)),
        };
    }
    cookie
        .and_then(|bound| bound.first().map(|id| found(id, LaunchIdSource::Cookie)))
        .ok_or(Error::MissingLaunchId)
}

/// The launch id a request carries ([`requested_launch`]), or `None` when it
/// carries none or a query id the launch cookie does not hold.
pub fn launch_id(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    requested_launch(headers, query).ok().map(|r| r.id)
}

/// The launch id a request may act under: [`requested_launch`], and for a
/// state-changing method (anything but GET, HEAD, OPTIONS and TRACE) a CSRF
/// check, because the [`LAUNCH_COOKIE`] (and a query id in a page's links)
/// reaches the tool with any request another site makes the browser send. The
/// request passes the check when
///
/// - its launch id came in an `Authorization: Bearer` header (a cross-site page
///   cannot add one), or
/// - it carries the launch's [`csrf_token`] in the [`CSRF_PARAM`] query
///   parameter or the [`CSRF_HEADER`] header, or
/// - its launch id is in the query and the browser says the request comes from
///   a page of the tool's own origin: `Sec-Fetch-Site: same-origin`, or, from a
///   browser that does not send `Sec-Fetch-Site`, an `Origin` equal to the
///   origin of the tool's base URL.
///
/// The cookie alone never authorises a state-changing request.
///
/// # Errors
/// As [`requested_launch`], and [`Error::CsrfCheckFailed`] (403).
pub fn authorize(
    tool: &Tool,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<String, Error> {
    let requested = requested_launch(headers, query)?;
    if method.is_safe() || requested.source == LaunchIdSource::Bearer {
        return Ok(requested.id);
    }
    if presented_csrf_token(headers, query).is_some() {
        check_csrf_token(tool, &requested.id, headers, query)?;
        return Ok(requested.id);
    }
    if requested.source == LaunchIdSource::Query && same_origin(tool, headers) {
        return Ok(requested.id);
    }
    let found = match requested.source {
        LaunchIdSource::Cookie => "only the `lti_launch` cookie".to_owned(),
        _ => format!(
            "the launch id in the query without a CSRF token, from {}",
            describe_initiator(headers)
        ),
    };
    Err(Error::CsrfCheckFailed { found })
}

/// The launch's CSRF token: `base64url(HMAC-SHA256(secret, context || id))`
/// under the tool's state cookie secret
/// ([`state_cookie_secret`](crate::ToolBuilder::state_cookie_secret)), so only
/// the tool can make it and only for this id (every instance serving the tool
/// needs the same secret). A page the tool renders for a launch embeds it in
/// its forms' `action` ([`launch_query`]) or sends it in the [`CSRF_HEADER`].
/// `id` may also be another unguessable id the application hands to a page
/// (the reference app's LTI 1.1 outcome ids), checked with [`check_csrf_token`].
pub fn csrf_token(tool: &Tool, id: &str) -> String {
    lti_jose::b64::encode(tool.inner.cookies.mac(CSRF_CONTEXT, id).as_ref())
}

/// The query string that names a launch and carries its CSRF token,
/// `lti_launch_id=<id>&lti_csrf_token=<token>`, for the `action` of a form that
/// posts to the tool (launch ids and tokens are base64url: no escaping needed in
/// a URL; escape the whole URL when writing it into HTML).
pub fn launch_query(tool: &Tool, launch_id: &str) -> String {
    format!(
        "{LAUNCH_ID_PARAM}={launch_id}&{CSRF_PARAM}={}",
        csrf_token(tool, launch_id)
    )
}

/// The CSRF token a request presents: the [`CSRF_HEADER`], else the
/// [`CSRF_PARAM`] query parameter.
fn presented_csrf_token<'r>(headers: &'r HeaderMap, query: Option<&'r str>) -> Option<&'r str> {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| query_param(query, CSRF_PARAM))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Checks that the request presents `id`'s [`csrf_token`] (constant-time).
///
/// # Errors
/// [`Error::CsrfCheckFailed`] (403) without a token or with another id's.
pub fn check_csrf_token(
    tool: &Tool,
    id: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), Error> {
    let Some(presented) = presented_csrf_token(headers, query) else {
        return Err(Error::CsrfCheckFailed {
            found: "no CSRF token".to_owned(),
        });
    };
    let expected = csrf_token(tool, id);
    if bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
        Ok(())
    } else {
        Err(Error::CsrfCheckFailed {
            found: "a CSRF token that does not belong to this launch".to_owned(),
        })
    }
}

/// Whether the browser says the request comes from a page of the tool's own
/// origin: `Sec-Fetch-Site: same-origin`, or without that header one `Origin`
/// equal to the origin of the tool's base URL.
fn same_origin(tool: &Tool, headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get(SEC_FETCH_SITE) {
        return site.as_bytes() == b"same-origin";
    }
    let mut origins = headers.get_all(ORIGIN).iter();
    match (
        origins.next(),
        origins.next(),
        lti_http::origin(tool.base_url()),
    ) {
        (Some(origin), None, Some(own)) => origin
            .to_str()
            .is_ok_and(|origin| origin.eq_ignore_ascii_case(&own)),
        _ => false,
    }
}

/// What the request says about the page that sent it, for a refusal message.
fn describe_initiator(headers: &HeaderMap) -> String {
    let quoted = |name: HeaderName| {
        headers
            .get(name)
            .map(|v| format!("{:?}", clip(v.to_str().unwrap_or("(not ASCII)"), 64)))
    };
    match (quoted(SEC_FETCH_SITE), quoted(ORIGIN)) {
        (Some(site), _) => format!("Sec-Fetch-Site {site}"),
        (None, Some(origin)) => format!("Origin {origin}"),
        (None, None) => "a request with neither Sec-Fetch-Site nor Origin".to_owned(),
    }
}

/// Refuses (`unsupported_media_type`, 415) a body that is not declared
/// `application/json` (parameters such as `charset` aside). A JSON route that
/// read any body would accept a cross-site `text/plain` form post whose body
/// happens to be JSON; `application/json` cannot be sent cross-site without a
/// CORS preflight the tool never grants.
///
/// # Errors
/// [`Error::UnsupportedMediaType`].
pub fn require_json(headers: &HeaderMap) -> Result<(), Error> {
    let mut types = headers.get_all(CONTENT_TYPE).iter();
    let found = match (types.next(), types.next()) {
        (Some(value), None) => {
            let text = value.to_str().unwrap_or("(not ASCII)");
            let essence = text.split(';').next().unwrap_or_default().trim();
            if essence.eq_ignore_ascii_case("application/json") {
                return Ok(());
            }
            format!("{:?}", clip(text, 64))
        }
        (None, _) => "no Content-Type".to_owned(),
        (Some(_), Some(_)) => "several Content-Type headers".to_owned(),
    };
    Err(Error::UnsupportedMediaType {
        expected: "application/json",
        found,
    })
}

/// Refuses (`insufficient_role`, 403) unless the launch has an instructor role or
/// one that outranks it (administrator).
///
/// # Errors
/// [`Error::InsufficientRole`].
pub fn require_instructor(launch: &Launch) -> Result<(), Error> {
    require_instructor_roles(launch.roles())
}

/// [`require_instructor`] for roles from elsewhere (an LTI 1.1 launch's
/// `roles` parameter, roles saved with a pending action).
///
/// # Errors
/// [`Error::InsufficientRole`].
pub fn require_instructor_roles(roles: &Roles) -> Result<(), Error> {
    if roles.is_instructor_or_higher() {
        return Ok(());
    }
    Err(insufficient_role("an instructor or higher role", roles))
}

/// Refuses (`insufficient_role`, 403) unless the launch has one of `roles` (or a
/// sub-role of one). Roles may be full URIs
/// (`http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor`) or short names
/// (`Mentor`).
///
/// # Errors
/// [`Error::InsufficientRole`].
pub fn require_any_role(launch: &Launch, roles: &[&str]) -> Result<(), Error> {
    let held = launch.roles();
    if roles.iter().any(|role| held.has(&Role::parse(role))) {
        return Ok(());
    }
    Err(insufficient_role(
        &format!("one of [{}]", roles.join(", ")),
        held,
    ))
}

fn insufficient_role(expected: &str, roles: &Roles) -> Error {
    let held: Vec<&str> = roles.iter().map(Role::as_str).collect();
    Error::InsufficientRole {
        expected: expected.to_owned(),
        found: clip(&held.join(", "), MAX_ROLES_CHARS),
    }
}

/// The code of the refusal a response carries ([`Error::code`]), as a
/// response extension set by [`error_response`]: the application's metrics
/// and logs read it without parsing the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

/// The refusal of `error` as a response: `{"error": code, "message": text}`
/// (`application/json`) when `json`, else the HTML page of [`error_page`]; the
/// status is [`Error::http_status`], `Cache-Control: no-store` is set and the
/// code travels as the [`ErrorCode`] extension. Logs the code and status (at
/// `error` for a 5xx, `info` otherwise), never the message.
pub fn error_response(error: &Error, json: bool) -> Response<String> {
    let status = error.http_status();
    let code = error.code();
    let message = error.to_string();
    if status.is_server_error() {
        tracing::error!(code, status = status.as_u16(), "LTI request failed");
    } else {
        tracing::info!(code, status = status.as_u16(), "LTI request refused");
    }
    let (content_type, body) = if json {
        ("application/json", error_json(code, &message))
    } else {
        (
            "text/html; charset=utf-8",
            error_page(status, code, &message),
        )
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(ErrorCode(code));
    response
}

/// The JSON refusal body: `{"error": code, "message": message}`.
pub fn error_json(code: &str, message: &str) -> String {
    serde_json::json!({ "error": code, "message": message }).to_string()
}

/// The HTML page of a refusal: its status, code and explanation, all escaped.
/// The code is in `#error-code` and the explanation in `#error-message`.
pub fn error_page(status: StatusCode, code: &str, message: &str) -> String {
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

/// The `Set-Cookie` value that carries `launch_id` in the [`LAUNCH_COOKIE`]:
/// `HttpOnly; Path=/`, plus `Secure; SameSite=None; Partitioned` when the tool's
/// base URL is `https` (so it survives inside an LMS iframe), else `SameSite=Lax`.
pub fn launch_cookie(tool: &Tool, launch_id: &str) -> String {
    launch_cookie_with(tool, launch_id)
}

/// The [`launch_cookie`] of a new launch for a browser whose request carried
/// `request_headers`: the new id first, then the launches its cookie already
/// held (at most [`MAX_COOKIE_LAUNCHES`] in all), so that the browser's other
/// tabs and frames keep working (see [`requested_launch`]).
pub fn launch_cookie_adding(tool: &Tool, launch_id: &str, request_headers: &HeaderMap) -> String {
    let mut ids = vec![launch_id];
    let held = cookie_launch_ids(request_headers).unwrap_or_default();
    ids.extend(held.into_iter().filter(|id| *id != launch_id));
    ids.truncate(MAX_COOKIE_LAUNCHES);
    launch_cookie_with(tool, &ids.join("."))
}

fn launch_cookie_with(tool: &Tool, value: &str) -> String {
    let attributes = if tool.base_url().starts_with("https://") {
        "Secure; SameSite=None; Partitioned"
    } else {
        "SameSite=Lax"
    };
    format!("{LAUNCH_COOKIE}={value}; Path=/; HttpOnly; {attributes}")
}

/// The launch route's flow: [`Tool::handle_launch`] (the state cookie, or with
/// [`platform_storage`](crate::ToolBuilder::platform_storage) the platform's
/// storage check page and its confirmation). A completed launch is logged
/// (issuer, deployment, message type) and its [`launch_cookie`] is appended to
/// the response (`lti-tool`'s `303` to the login's `target_link_uri` with
/// `lti_launch_id=<id>` appended; [`launch_cookie_adding`]: the browser's other
/// launches stay in it), so that same-site follow-ups work without the
/// parameter; a check page is answered as it is.
///
/// # Errors
/// The [`ToolError`] of [`Tool::handle_launch`].
pub async fn launch_with_cookie(
    tool: &Tool,
    request: &ToolRequest,
) -> Result<LaunchOutcome, ToolError> {
    let span = tracing::info_span!(
        "lti.launch",
        issuer = tracing::field::Empty,
        client_id = tracing::field::Empty,
        deployment_id = tracing::field::Empty,
        message_type = tracing::field::Empty,
        code = tracing::field::Empty,
    );
    let outcome = tool
        .handle_launch(request)
        .instrument(span.clone())
        .await
        .inspect_err(|e| {
            span.record("code", e.code());
        });
    let mut outcome = outcome?;
    if let LaunchOutcome::Launched { launch, response } = &mut outcome {
        if !span.is_disabled() {
            span.record("issuer", launch.issuer());
            span.record("client_id", launch.client_id());
            span.record("deployment_id", launch.deployment_id());
            span.record("message_type", launch.message().message_type());
        }
        span.in_scope(|| tracing::info!("LTI launch accepted"));
        let cookie = launch_cookie_adding(tool, launch.launch_id(), request.headers());
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
    }
    Ok(outcome)
}

/// The launch route's answer to a `GET` (the route's `POST` is
/// [`launch_with_cookie`]): a request that carries a launch id ([`launch_id`]:
/// a stale link to the launch URL, or a platform that sends the browser back
/// to it) is sent on with a `303` to the tool's
/// [landing URL](crate::ToolBuilder::landing_uri), its query carried over as it
/// is, so it lands on the application instead of a `405`. The store is not
/// read: the landing page loads the launch as any follow-up request does.
///
/// # Errors
/// [`Error::MissingLaunchId`] (401) for a `GET` without a launch id,
/// [`Error::LaunchNotBound`] (403) for a query id the browser's launch cookie
/// does not hold.
pub fn launch_get(
    tool: &Tool,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<crate::ToolResponse, Error> {
    requested_launch(headers, query)?;
    Ok(tool.landing_redirect(query)?)
}

/// The JSON body of the deep-linking route: the chosen content items and the
/// optional messages for the platform. The launch is the request's current
/// launch, which must be an `LtiDeepLinkingRequest`.
///
/// The route answers the auto-submitting form page that returns the signed
/// response to the platform, or `{"deep_link_return_url": …, "jwt": …}`
/// ([`DeepLinkRequest::json_answer`]) when the request accepts JSON (for a front
/// end that posts the form itself).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeepLinkRequest {
    /// The chosen items (each checked against the request's settings).
    #[serde(default)]
    pub items: Vec<ContentItem>,
    /// `msg` shown to the user by the platform.
    #[serde(default)]
    pub msg: Option<String>,
    /// `log` recorded by the platform.
    #[serde(default)]
    pub log: Option<String>,
    /// `errormsg` shown to the user.
    #[serde(default)]
    pub errormsg: Option<String>,
    /// `errorlog` recorded by the platform.
    #[serde(default)]
    pub errorlog: Option<String>,
}

impl DeepLinkRequest {
    /// Parses the route's JSON body.
    ///
    /// # Errors
    /// [`Error::InvalidDeepLinkRequest`] (400), quoting at most 120 characters of
    /// the parser's complaint.
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        let invalid = |found: String| Error::InvalidDeepLinkRequest {
            expected: "a JSON object with `items` (content items) and optional `msg`, `log`, `errormsg`, `errorlog`",
            found: clip(&found, 120),
        };
        // serde would also read a struct from a JSON array; only an object is meant.
        if body.trim_ascii_start().first() == Some(&b'[') {
            return Err(invalid("a JSON array".to_owned()));
        }
        serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))
    }

    /// Fills the launch's response builder, checking each item against the
    /// request's settings.
    ///
    /// # Errors
    /// [`Error::Tool`] with the builder's refusal of an item.
    pub fn apply(self, builder: &mut DeepLinkingResponseBuilder) -> Result<(), Error> {
        for item in self.items {
            builder.add_item(item).map_err(ToolError::from)?;
        }
        if let Some(msg) = self.msg {
            builder.msg(msg);
        }
        if let Some(log) = self.log {
            builder.log(log);
        }
        if let Some(msg) = self.errormsg {
            builder.errormsg(msg);
        }
        if let Some(log) = self.errorlog {
            builder.errorlog(log);
        }
        Ok(())
    }

    /// The route's JSON answer for a signed response `jwt`:
    /// `{"deep_link_return_url": …, "jwt": …}` (the URL is empty unless `launch`
    /// is a deep-linking request).
    pub fn json_answer(launch: &Launch, jwt: &str) -> serde_json::Value {
        let return_url = match launch.message() {
            LtiMessage::DeepLinking(request) => request.deep_link_return_url(),
            _ => "",
        };
        serde_json::json!({ "deep_link_return_url": return_url, "jwt": jwt })
    }
}

/// The paths and body limit of an adapter's LTI routes, with the defaults every
/// adapter shares; an adapter's routes builder wraps it and registers the routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// The login initiation path (GET and POST).
    pub login: String,
    /// The launch path: the path of the tool's redirect URI.
    pub launch: String,
    /// The JWKS path.
    pub jwks: String,
    /// The deep-linking response path, or `None` to leave the route out.
    pub deep_link: Option<String>,
    /// The largest request body the routes read, in bytes.
    pub body_limit: usize,
}

impl Default for RouteConfig {
    /// [`LOGIN_PATH`], [`LAUNCH_PATH`], [`JWKS_PATH`], [`DEEP_LINK_PATH`] and
    /// [`DEFAULT_BODY_LIMIT`].
    fn default() -> Self {
        Self {
            login: LOGIN_PATH.to_owned(),
            launch: LAUNCH_PATH.to_owned(),
            jwks: JWKS_PATH.to_owned(),
            deep_link: Some(DEEP_LINK_PATH.to_owned()),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(http::HeaderName, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn json_is_chosen_only_when_listed_before_html() {
        let accept = |v| wants_json(&headers(&[(ACCEPT, v)]));
        assert!(accept("application/json"));
        assert!(accept("application/problem+json, */*"));
        assert!(accept("application/json;q=0.9, text/html;q=0.8"));
        assert!(accept("Application/JSON"));
        assert!(!accept("text/html,application/json"));
        assert!(!accept("*/*"));
        assert!(!wants_json(&HeaderMap::new()));
    }

    #[test]
    fn bearer_wins_over_query_and_query_over_cookie() {
        let all = headers(&[
            (AUTHORIZATION, "Bearer from-header"),
            (COOKIE, "lti_launch=from-cookie"),
        ]);
        let query = Some("a=1&lti_launch_id=from-query");
        assert_eq!(launch_id(&all, query).as_deref(), Some("from-header"));
        let both = headers(&[(COOKIE, "a=b; lti_launch=from-cookie.from-query")]);
        let requested = requested_launch(&both, query).unwrap();
        assert_eq!(requested.id, "from-query");
        assert_eq!(requested.source, LaunchIdSource::Query);
        let cookie = headers(&[(COOKIE, "a=b; lti_launch=from-cookie")]);
        let requested = requested_launch(&cookie, None).unwrap();
        assert_eq!(requested.id, "from-cookie");
        assert_eq!(requested.source, LaunchIdSource::Cookie);
        assert_eq!(
            launch_id(&HeaderMap::new(), query).as_deref(),
            Some("from-query"),
            "without a launch cookie the query id stands alone"
        );
        let lower = headers(&[(AUTHORIZATION, "bearer  spaced ")]);
        assert_eq!(launch_id(&lower, None).as_deref(), Some("spaced"));
    }

    #[test]
    fn a_query_id_never_replaces_another_launch_of_the_cookie() {
        let cookie = headers(&[(COOKIE, "lti_launch=mine.older")]);
        let fixed = requested_launch(&cookie, Some("lti_launch_id=theirs")).unwrap_err();
        assert_eq!(fixed.code(), "launch_id_not_bound");
        assert_eq!(fixed.http_status(), StatusCode::FORBIDDEN);
        assert_eq!(launch_id(&cookie, Some("lti_launch_id=theirs")), None);
        assert_eq!(
            launch_id(&cookie, Some("lti_launch_id=older")).as_deref(),
            Some("older"),
            "an older launch of the same browser (another tab) is still bound"
        );
        assert_eq!(launch_id(&cookie, None).as_deref(), Some("mine"));
        let missing = requested_launch(&HeaderMap::new(), Some("a=1")).unwrap_err();
        assert_eq!(missing.code(), "launch_id_missing");
    }

    #[test]
    fn json_bodies_must_be_declared_json() {
        let ok = [
            "application/json",
            "Application/JSON; charset=utf-8",
            " application/json ",
        ];
        for value in ok {
            let map = headers(&[(CONTENT_TYPE, value)]);
            require_json(&map).unwrap();
        }
        for value in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
        ] {
            let error = require_json(&headers(&[(CONTENT_TYPE, value)])).unwrap_err();
            assert_eq!(error.code(), "unsupported_media_type");
            assert_eq!(error.http_status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert!(error.to_string().contains(value), "{error}");
        }
        let none = require_json(&HeaderMap::new()).unwrap_err();
        assert!(
            none.to_string().ends_with("found no Content-Type"),
            "{none}"
        );
    }

    #[test]
    fn absent_empty_oversized_or_lookalike_ids_are_none() {
        let none = HeaderMap::new();
        assert_eq!(launch_id(&none, None), None);
        assert_eq!(launch_id(&none, Some("lti_launch_id=")), None);
        assert_eq!(launch_id(&none, Some("lti_launch_idx=1")), None);
        let long = format!("lti_launch_id={}", "a".repeat(MAX_LAUNCH_ID_LEN + 1));
        assert_eq!(launch_id(&none, Some(&long)), None);
        let at_limit = format!("lti_launch_id={}", "a".repeat(MAX_LAUNCH_ID_LEN));
        assert_eq!(
            launch_id(&none, Some(&at_limit)).map(|id| id.len()),
            Some(MAX_LAUNCH_ID_LEN)
        );
        let basic = headers(&[(AUTHORIZATION, "Basic abc")]);
        assert_eq!(launch_id(&basic, None), None);
        let other_cookie = headers(&[(COOKIE, "lti_launch_x=1")]);
        assert_eq!(launch_id(&other_cookie, None), None);
    }

    #[test]
    fn every_error_has_its_code_and_status() {
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
            (Error::malformed("x", "y"), "malformed_request", 400),
            (
                Error::RouteNotFound { path: found() },
                "route_not_found",
                404,
            ),
            (Error::ToolNotConfigured, "tool_not_configured", 500),
            (
                Error::CsrfCheckFailed { found: found() },
                "csrf_check_failed",
                403,
            ),
            (Error::LaunchNotBound, "launch_id_not_bound", 403),
            (
                Error::UnsupportedMediaType {
                    expected: "x",
                    found: found(),
                },
                "unsupported_media_type",
                415,
            ),
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
    fn malformed_values_are_clipped_to_64_characters() {
        let Error::MalformedRequest { found, .. } = Error::malformed("y", &"é".repeat(100)) else {
            panic!("expected MalformedRequest");
        };
        assert_eq!(found.chars().count(), 65);
        assert!(found.ends_with('…'));
    }

    #[test]
    fn the_page_escapes_code_and_message() {
        let page = error_page(StatusCode::BAD_REQUEST, "c<", "<script>alert(1)</script>");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("<code id=\"error-code\">c&lt;</code>"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("<title>400 Bad Request</title>"));
    }

    #[test]
    fn json_refusals_carry_code_message_status_and_no_store() {
        let response = error_response(&Error::BodyTooLarge { limit: 10 }, true);
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let json: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(json["error"], "body_too_large");
        assert_eq!(
            json["message"],
            "request body too large: expected at most 10 bytes, found more"
        );
    }

    #[test]
    fn html_refusals_are_the_escaped_page() {
        let error = Error::InsufficientRole {
            expected: "one of [<b>]".into(),
            found: "Learner".into(),
        };
        let response = error_response(&error, false);
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert!(response.body().contains("insufficient_role"));
        assert!(response.body().contains("one of [&lt;b&gt;]"));
    }

    #[test]
    fn deep_link_bodies_parse_and_bad_ones_are_refused_with_their_code() {
        let ok = DeepLinkRequest::parse(br#"{"items":[],"msg":"done"}"#).unwrap();
        assert_eq!(ok.msg.as_deref(), Some("done"));
        assert!(ok.items.is_empty());
        let bad_bodies = [
            &b"not json"[..],
            br#"{"items":[],"extra":1}"#,
            br#"{"items":"x"}"#,
            b" []",
            b"",
        ];
        for bad in bad_bodies {
            let error = DeepLinkRequest::parse(bad).unwrap_err();
            assert_eq!(error.code(), "invalid_deep_link_request");
            let Error::InvalidDeepLinkRequest { found, .. } = error else {
                panic!("expected InvalidDeepLinkRequest");
            };
            assert!(found.chars().count() <= 121);
        }
    }

    #[test]
    fn route_defaults_are_the_documented_paths_and_limit() {
        let config = RouteConfig::default();
        assert_eq!(config.login, "/lti/login");
        assert_eq!(config.launch, "/lti/launch");
        assert_eq!(config.jwks, "/.well-known/jwks.json");
        assert_eq!(config.deep_link.as_deref(), Some("/lti/deep-link"));
        assert_eq!(config.body_limit, 65_536);
    }
}
