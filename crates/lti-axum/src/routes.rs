//! The LTI routes and the request/response conversions they use.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::HeaderValue;
use http::header::SET_COOKIE;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use lti_tool::{ContentItem, Tool, ToolError, ToolRequest, ToolResponse};
use serde::Deserialize;

use crate::error::{Error, LtiRejection, wants_json};
use crate::extract::{LAUNCH_COOKIE, LtiLaunch};

/// The default login initiation path (GET and POST).
pub const LOGIN_PATH: &str = "/lti/login";
/// The default launch path (the redirect URI; POST).
pub const LAUNCH_PATH: &str = "/lti/launch";
/// The default path of the tool's public key set (GET).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// The default deep-linking response path (POST, JSON body, see [`DeepLinkRequest`]).
pub const DEEP_LINK_PATH: &str = "/lti/deep-link";
/// The default request body limit: 64 KiB (an id_token is at most 16 KiB by default).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Builds the LTI routes with chosen paths and body limit; [`routes`] is the
/// default set. Merge the result into an existing router whose state provides an
/// `Arc<Tool>` through [`FromRef`]:
///
/// ```
/// # use std::sync::Arc;
/// # use axum::extract::FromRef;
/// #[derive(Clone)]
/// struct AppState { tool: Arc<lti_tool::Tool>, greeting: &'static str }
/// impl FromRef<AppState> for Arc<lti_tool::Tool> {
///     fn from_ref(s: &AppState) -> Self { s.tool.clone() }
/// }
/// let lti: axum::Router<AppState> = lti_axum::LtiRoutes::new()
///     .login_path("/lms/login")
///     .body_limit(32 * 1024)
///     .into_router();
/// ```
#[derive(Debug, Clone)]
pub struct LtiRoutes {
    login: String,
    launch: String,
    jwks: String,
    deep_link: Option<String>,
    body_limit: usize,
}

impl Default for LtiRoutes {
    fn default() -> Self {
        Self::new()
    }
}

impl LtiRoutes {
    /// The default paths ([`LOGIN_PATH`], [`LAUNCH_PATH`], [`JWKS_PATH`],
    /// [`DEEP_LINK_PATH`]) and [`DEFAULT_BODY_LIMIT`].
    pub fn new() -> Self {
        Self {
            login: LOGIN_PATH.to_owned(),
            launch: LAUNCH_PATH.to_owned(),
            jwks: JWKS_PATH.to_owned(),
            deep_link: Some(DEEP_LINK_PATH.to_owned()),
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// The login initiation path. Platforms call it with GET or POST.
    pub fn login_path(mut self, path: impl Into<String>) -> Self {
        self.login = path.into();
        self
    }

    /// The launch path. It must be the path of the tool's redirect URI.
    pub fn launch_path(mut self, path: impl Into<String>) -> Self {
        self.launch = path.into();
        self
    }

    /// The JWKS path.
    pub fn jwks_path(mut self, path: impl Into<String>) -> Self {
        self.jwks = path.into();
        self
    }

    /// The deep-linking response path, or `None` to leave it out (an application
    /// that builds its responses itself with `Tool::deep_link_response`).
    pub fn deep_link_path(mut self, path: Option<String>) -> Self {
        self.deep_link = path;
        self
    }

    /// The largest request body the routes read; larger ones get `body_too_large` (413).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The router: `GET|POST` login, `POST` launch, `GET` JWKS and `POST` deep link.
    ///
    /// The launch route answers `lti-tool`'s `303` redirect to the login's
    /// `target_link_uri` with `lti_launch_id=<id>` appended, and also sets the
    /// [`LAUNCH_COOKIE`](crate::LAUNCH_COOKIE) so that same-site follow-ups work
    /// without the parameter.
    pub fn into_router<S>(self) -> Router<S>
    where
        Arc<Tool>: FromRef<S>,
        S: Clone + Send + Sync + 'static,
    {
        let limit = self.body_limit;
        let mut router = Router::new()
            .route(
                &self.login,
                get(move |State(tool): State<Arc<Tool>>, req: Request| login(tool, req, limit))
                    .post(move |State(tool): State<Arc<Tool>>, req: Request| {
                        login(tool, req, limit)
                    }),
            )
            .route(
                &self.launch,
                post(move |State(tool): State<Arc<Tool>>, req: Request| launch(tool, req, limit)),
            )
            .route(&self.jwks, get(jwks));
        if let Some(path) = &self.deep_link {
            router = router.route(
                path,
                post(
                    move |State(tool): State<Arc<Tool>>, launch: LtiLaunch, req: Request| {
                        deep_link(tool, launch, req, limit)
                    },
                ),
            );
        }
        router
    }
}

/// The default LTI routes ([`LtiRoutes::new`]).
pub fn routes<S>() -> Router<S>
where
    Arc<Tool>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    LtiRoutes::new().into_router()
}

/// Reads an axum request (body capped at `limit` bytes) into a [`ToolRequest`].
///
/// # Errors
/// [`Error::BodyTooLarge`] (413) or [`Error::BodyUnreadable`] (400), rendered per
/// the request's `Accept`.
pub async fn tool_request(req: Request, limit: usize) -> Result<ToolRequest, LtiRejection> {
    let (parts, body) = req.into_parts();
    let body = read_body(body, limit)
        .await
        .map_err(|e| LtiRejection::new(e, &parts.headers))?;
    Ok(ToolRequest::new(
        parts.method,
        parts.uri,
        parts.headers,
        body,
    ))
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, Error> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Error::BodyTooLarge { limit })
        }
        Err(e) => Err(Error::BodyUnreadable {
            reason: e.to_string(),
        }),
    }
}

/// Converts an `lti-tool` response into an axum response.
pub fn into_response(response: ToolResponse) -> Response {
    response.into_http().map(Body::from)
}

/// The `Set-Cookie` value that carries `launch_id` in the [`LAUNCH_COOKIE`]:
/// `HttpOnly; Path=/`, plus `Secure; SameSite=None; Partitioned` when the tool's
/// base URL is `https` (so it survives inside an LMS iframe), else `SameSite=Lax`.
pub fn launch_cookie(tool: &Tool, launch_id: &str) -> String {
    let attributes = if tool.base_url().starts_with("https://") {
        "Path=/; HttpOnly; Secure; SameSite=None; Partitioned"
    } else {
        "Path=/; HttpOnly; SameSite=Lax"
    };
    format!("{LAUNCH_COOKIE}={launch_id}; {attributes}")
}

async fn login(tool: Arc<Tool>, req: Request, limit: usize) -> Response {
    let headers = req.headers().clone();
    let req = match tool_request(req, limit).await {
        Ok(r) => r,
        Err(rejection) => return rejection.into_response(),
    };
    match tool.login(&req).await {
        Ok(response) => into_response(response),
        Err(e) => LtiRejection::new(e, &headers).into_response(),
    }
}

async fn launch(tool: Arc<Tool>, req: Request, limit: usize) -> Response {
    let headers = req.headers().clone();
    let req = match tool_request(req, limit).await {
        Ok(r) => r,
        Err(rejection) => return rejection.into_response(),
    };
    match tool.launch(&req).await {
        Ok((launch, response)) => {
            tracing::info!(
                issuer = %launch.issuer(),
                deployment_id = %launch.deployment_id(),
                message_type = %launch.message().message_type(),
                "LTI launch accepted"
            );
            let mut response = into_response(response);
            if let Ok(cookie) = HeaderValue::from_str(&launch_cookie(&tool, launch.launch_id())) {
                response.headers_mut().append(SET_COOKIE, cookie);
            }
            response
        }
        Err(e) => LtiRejection::new(e, &headers).into_response(),
    }
}

async fn jwks(State(tool): State<Arc<Tool>>) -> Response {
    match tool.jwks().await {
        Ok(response) => into_response(response),
        Err(e) => LtiRejection::json(e).into_response(),
    }
}

/// The JSON body of the deep-linking route: the chosen content items and the
/// optional messages for the platform. The launch is the request's current launch
/// ([`LtiLaunch`]), which must be an `LtiDeepLinkingRequest`.
///
/// The route answers the auto-submitting form page that returns the signed
/// response to the platform, or `{"deep_link_return_url": …, "jwt": …}` when the
/// request accepts JSON (for a front end that posts the form itself).
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

async fn deep_link(
    tool: Arc<Tool>,
    LtiLaunch(launch): LtiLaunch,
    req: Request,
    limit: usize,
) -> Response {
    let headers = req.headers().clone();
    let reject = |e: Error| LtiRejection::new(e, &headers).into_response();
    let body = match read_body(req.into_body(), limit).await {
        Ok(b) => b,
        Err(e) => return reject(e),
    };
    let request: DeepLinkRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let mut found = e.to_string();
            found.truncate(120);
            return reject(Error::InvalidDeepLinkRequest {
                expected: "a JSON object with `items` (content items) and optional `msg`, `log`, `errormsg`, `errorlog`",
                found,
            });
        }
    };
    let mut builder = match launch.deep_linking_response() {
        Ok(b) => b,
        Err(e) => return reject(e.into()),
    };
    for item in request.items {
        if let Err(e) = builder.add_item(item) {
            return reject(ToolError::from(e).into());
        }
    }
    if let Some(m) = request.msg {
        builder.msg(m);
    }
    if let Some(m) = request.log {
        builder.log(m);
    }
    if let Some(m) = request.errormsg {
        builder.errormsg(m);
    }
    if let Some(m) = request.errorlog {
        builder.errorlog(m);
    }
    if wants_json(&headers) {
        let return_url = match launch.message() {
            lti_tool::LtiMessage::DeepLinking(dl) => dl.deep_link_return_url().to_owned(),
            _ => String::new(),
        };
        match tool.sign_deep_link_response(&launch, &builder).await {
            Ok(jwt) => Json(serde_json::json!({
                "deep_link_return_url": return_url,
                "jwt": jwt,
            }))
            .into_response(),
            Err(e) => reject(e.into()),
        }
    } else {
        match tool.deep_link_response(&launch, &builder).await {
            Ok(response) => into_response(response),
            Err(e) => reject(e.into()),
        }
    }
}
