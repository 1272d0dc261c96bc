//! The LTI routes and the request/response conversions they use.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use lti_tool::web::{DeepLinkRequest, RouteConfig};
use lti_tool::{Tool, ToolRequest, ToolResponse};

use crate::error::{Error, LtiRejection, wants_json};
use crate::extract::LtiLaunch;

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
#[derive(Debug, Clone, Default)]
pub struct LtiRoutes {
    config: RouteConfig,
}

impl LtiRoutes {
    /// The default paths ([`LOGIN_PATH`](crate::LOGIN_PATH), [`LAUNCH_PATH`](crate::LAUNCH_PATH), [`JWKS_PATH`](crate::JWKS_PATH),
    /// [`DEEP_LINK_PATH`](crate::DEEP_LINK_PATH)) and [`DEFAULT_BODY_LIMIT`](crate::DEFAULT_BODY_LIMIT).
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes with the paths and body limit of a shared `lti_tool::web::RouteConfig`.
    pub fn from_config(config: RouteConfig) -> Self {
        Self { config }
    }

    /// The login initiation path. Platforms call it with GET or POST.
    pub fn login_path(mut self, path: impl Into<String>) -> Self {
        self.config.login = path.into();
        self
    }

    /// The launch path. It must be the path of the tool's redirect URI.
    pub fn launch_path(mut self, path: impl Into<String>) -> Self {
        self.config.launch = path.into();
        self
    }

    /// The JWKS path.
    pub fn jwks_path(mut self, path: impl Into<String>) -> Self {
        self.config.jwks = path.into();
        self
    }

    /// The deep-linking response path, or `None` to leave it out (an application
    /// that builds its responses itself with `Tool::deep_link_response`).
    pub fn deep_link_path(mut self, path: Option<String>) -> Self {
        self.config.deep_link = path;
        self
    }

    /// The largest request body the routes read; larger ones get `body_too_large` (413).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.config.body_limit = bytes;
        self
    }

    /// The router: `GET|POST` login, `POST|GET` launch, `GET` JWKS and `POST` deep link.
    ///
    /// The launch route answers the platform's `POST` with `lti-tool`'s `303`
    /// redirect to the login's `target_link_uri` with `lti_launch_id=<id>`
    /// appended (to the tool's landing URL when that target is the launch URL
    /// itself: `Tool::post_launch_location`), and also sets the
    /// [`LAUNCH_COOKIE`](crate::LAUNCH_COOKIE) so that same-site follow-ups work
    /// without the parameter. A `GET` carrying a launch id is sent on to the
    /// landing URL (`lti_tool::web::launch_get`); one without is
    /// `launch_id_missing` (401).
    pub fn into_router<S>(self) -> Router<S>
    where
        Arc<Tool>: FromRef<S>,
        S: Clone + Send + Sync + 'static,
    {
        let RouteConfig {
            login: login_path,
            launch: launch_path,
            jwks: jwks_path,
            deep_link: deep_link_path,
            body_limit: limit,
        } = self.config;
        let mut router = Router::new()
            .route(
                &login_path,
                get(move |State(tool): State<Arc<Tool>>, req: Request| login(tool, req, limit))
                    .post(move |State(tool): State<Arc<Tool>>, req: Request| {
                        login(tool, req, limit)
                    }),
            )
            .route(
                &launch_path,
                post(move |State(tool): State<Arc<Tool>>, req: Request| launch(tool, req, limit))
                    .get(launch_get),
            )
            .route(&jwks_path, get(jwks));
        if let Some(path) = &deep_link_path {
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

pub(crate) async fn read_body(body: Body, limit: usize) -> Result<Bytes, Error> {
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

async fn login(tool: Arc<Tool>, req: Request, limit: usize) -> Response {
    let json = wants_json(req.headers());
    let req = match tool_request(req, limit).await {
        Ok(r) => r,
        Err(rejection) => return rejection.into_response(),
    };
    match tool.login(&req).await {
        Ok(response) => into_response(response),
        Err(e) => LtiRejection::in_format(e, json).into_response(),
    }
}

async fn launch(tool: Arc<Tool>, req: Request, limit: usize) -> Response {
    let json = wants_json(req.headers());
    let req = match tool_request(req, limit).await {
        Ok(r) => r,
        Err(rejection) => return rejection.into_response(),
    };
    match lti_tool::web::launch_with_cookie(&tool, &req).await {
        Ok(outcome) => into_response(outcome.into_response()),
        Err(e) => LtiRejection::in_format(e, json).into_response(),
    }
}

async fn launch_get(State(tool): State<Arc<Tool>>, req: Request) -> Response {
    match lti_tool::web::launch_get(&tool, req.headers(), req.uri().query()) {
        Ok(response) => into_response(response),
        Err(e) => LtiRejection::new(e, req.headers()).into_response(),
    }
}

async fn jwks(State(tool): State<Arc<Tool>>) -> Response {
    match tool.jwks().await {
        Ok(response) => into_response(response),
        Err(e) => LtiRejection::json(e).into_response(),
    }
}

async fn deep_link(
    tool: Arc<Tool>,
    LtiLaunch(launch): LtiLaunch,
    req: Request,
    limit: usize,
) -> Response {
    let headers = req.headers().clone();
    let reject = |e: Error| LtiRejection::new(e, &headers).into_response();
    if let Err(e) = lti_tool::web::require_json(&headers) {
        return reject(e);
    }
    let body = match read_body(req.into_body(), limit).await {
        Ok(b) => b,
        Err(e) => return reject(e),
    };
    let mut builder = match launch.deep_linking_response() {
        Ok(b) => b,
        Err(e) => return reject(e.into()),
    };
    if let Err(e) = DeepLinkRequest::parse(&body).and_then(|r| r.apply(&mut builder)) {
        return reject(e);
    }
    if wants_json(&headers) {
        match tool.sign_deep_link_response(&launch, &builder).await {
            Ok(jwt) => Json(DeepLinkRequest::json_answer(&launch, &jwt)).into_response(),
            Err(e) => reject(e.into()),
        }
    } else {
        match tool.deep_link_response(&launch, &builder).await {
            Ok(response) => into_response(response),
            Err(e) => reject(e.into()),
        }
    }
}
