//! The LTI routes and the request/response conversions they use.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use bytes::Bytes;
use lti_tool::web::RouteConfig;
pub use lti_tool::web::{
    DEEP_LINK_PATH, DEFAULT_BODY_LIMIT, DeepLinkRequest, JWKS_PATH, LAUNCH_PATH, LOGIN_PATH,
    launch_cookie,
};
use lti_tool::{Tool, ToolRequest, ToolResponse};

use crate::convert;
use crate::error::{Error, LtiRejection, wants_json};
use crate::extract::{Csrf, load_launch, tool_of};

/// The LTI routes with chosen paths and body limit; [`configure`] registers the
/// default set. The routes find the tool in the app data (see [`tool_of`](crate::tool_of)):
///
/// ```
/// use actix_web::{App, web};
/// use lti_actix::LtiRoutes;
///
/// fn app(tool: std::sync::Arc<lti_tool::Tool>) -> App<
///     impl actix_web::dev::ServiceFactory<
///         actix_web::dev::ServiceRequest,
///         Config = (),
///         Response = actix_web::dev::ServiceResponse,
///         Error = actix_web::Error,
///         InitError = (),
///     >,
/// > {
///     App::new()
///         .app_data(web::Data::from(tool))
///         .configure(|cfg| {
///             LtiRoutes::new()
///                 .login_path("/lms/login")
///                 .body_limit(32 * 1024)
///                 .configure(cfg)
///         })
/// }
/// ```
#[derive(Debug, Clone, Default)]
pub struct LtiRoutes(RouteConfig);

impl LtiRoutes {
    /// The default paths ([`LOGIN_PATH`], [`LAUNCH_PATH`], [`JWKS_PATH`],
    /// [`DEEP_LINK_PATH`]) and [`DEFAULT_BODY_LIMIT`].
    pub fn new() -> Self {
        Self(RouteConfig::default())
    }

    /// The login initiation path. Platforms call it with GET or POST.
    pub fn login_path(mut self, path: impl Into<String>) -> Self {
        self.0.login = path.into();
        self
    }

    /// The launch path. It must be the path of the tool's redirect URI.
    pub fn launch_path(mut self, path: impl Into<String>) -> Self {
        self.0.launch = path.into();
        self
    }

    /// The JWKS path.
    pub fn jwks_path(mut self, path: impl Into<String>) -> Self {
        self.0.jwks = path.into();
        self
    }

    /// The deep-linking response path, or `None` to leave it out (an application
    /// that builds its responses itself with `Tool::deep_link_response`).
    pub fn deep_link_path(mut self, path: Option<String>) -> Self {
        self.0.deep_link = path;
        self
    }

    /// The largest request body the routes read; larger ones get `body_too_large` (413).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.0.body_limit = bytes;
        self
    }

    /// Registers `GET|POST` login, `POST|GET` launch, `GET` JWKS and `POST` deep link.
    ///
    /// The launch route answers the platform's `POST` with `lti-tool`'s `303`
    /// redirect to the login's `target_link_uri` with `lti_launch_id=<id>`
    /// appended (to the tool's landing URL when that target is the launch URL
    /// itself: `Tool::post_launch_location`), and also sets the
    /// [`LAUNCH_COOKIE`](crate::LAUNCH_COOKIE) so that same-site follow-ups work
    /// without the parameter. A `GET` carrying a launch id is sent on to the
    /// landing URL (`lti_tool::web::launch_get`); one without is
    /// `launch_id_missing` (401).
    pub fn configure(self, cfg: &mut web::ServiceConfig) {
        let RouteConfig {
            login,
            launch: launch_path,
            jwks: jwks_path,
            deep_link,
            body_limit: limit,
        } = self.0;
        cfg.service(
            web::resource(login)
                .route(web::get().to(move |req, body| login_route(req, body, limit)))
                .route(web::post().to(move |req, body| login_route(req, body, limit))),
        )
        .service(
            web::resource(launch_path)
                .route(web::post().to(move |req, body| launch(req, body, limit)))
                .route(web::get().to(launch_get)),
        )
        .service(web::resource(jwks_path).route(web::get().to(jwks)));
        if let Some(path) = deep_link {
            cfg.service(
                web::resource(path)
                    .route(web::post().to(move |req, body| deep_link_route(req, body, limit))),
            );
        }
    }
}

/// Registers the default LTI routes ([`LtiRoutes::new`]):
/// `App::new().app_data(web::Data::from(tool)).configure(lti_actix::configure)`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    LtiRoutes::new().configure(cfg);
}

/// Reads an actix-web request (body capped at `limit` bytes) into a [`ToolRequest`],
/// carrying the method, URI and headers over to the `http` 1 types.
///
/// # Errors
/// [`Error::BodyTooLarge`] (413), [`Error::BodyUnreadable`] or
/// [`Error::MalformedRequest`] (400), rendered per the request's `Accept`.
pub async fn tool_request(
    req: &HttpRequest,
    body: web::Payload,
    limit: usize,
) -> Result<ToolRequest, LtiRejection> {
    read_request(req, body, limit)
        .await
        .map_err(|e| LtiRejection::new(e, req.headers()))
}

async fn read_request(
    req: &HttpRequest,
    body: web::Payload,
    limit: usize,
) -> Result<ToolRequest, Error> {
    let body = read_body(body, limit).await?;
    let method = http::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|_| Error::malformed("a valid method", req.method().as_str()))?;
    let uri = req.uri().to_string();
    let uri: http::Uri = uri
        .parse()
        .map_err(|_| Error::malformed("a valid request target", &uri))?;
    let headers = convert::headers(req.headers())?;
    Ok(ToolRequest::new(method, uri, headers, body))
}

pub(crate) async fn read_body(body: web::Payload, limit: usize) -> Result<Bytes, Error> {
    match body.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(Error::BodyUnreadable {
            reason: e.to_string(),
        }),
        Err(_) => Err(Error::BodyTooLarge { limit }),
    }
}

/// Converts an `lti-tool` response into an actix-web response (status, every
/// header including repeated `Set-Cookie`, and the body).
pub fn into_response(response: ToolResponse) -> HttpResponse {
    convert::response(response.into_http())
}

async fn login_route(req: HttpRequest, body: web::Payload, limit: usize) -> HttpResponse {
    answer(&req, async {
        let tool = tool_of(&req)?;
        let request = read_request(&req, body, limit).await?;
        Ok(into_response(tool.login(&request).await?))
    })
    .await
}

async fn launch(req: HttpRequest, body: web::Payload, limit: usize) -> HttpResponse {
    answer(&req, async {
        let tool = tool_of(&req)?;
        let request = read_request(&req, body, limit).await?;
        let outcome = lti_tool::web::launch_with_cookie(&tool, &request).await?;
        Ok(into_response(outcome.into_response()))
    })
    .await
}

/// The launch route's `GET`: on to the landing URL with a launch id.
async fn launch_get(req: HttpRequest) -> HttpResponse {
    answer(&req, async {
        let tool = tool_of(&req)?;
        let headers = convert::headers(req.headers())?;
        let query = Some(req.query_string()).filter(|q| !q.is_empty());
        Ok(into_response(lti_tool::web::launch_get(
            &tool, &headers, query,
        )?))
    })
    .await
}

/// The JWKS route: a refusal (no key yet, store down) is always JSON.
async fn jwks(req: HttpRequest) -> HttpResponse {
    let keys = async {
        let tool = tool_of(&req)?;
        Ok(into_response(tool.jwks().await?))
    };
    keys.await
        .unwrap_or_else(|e: Error| LtiRejection::json(e).error_response())
}

/// Answers `handler`'s response, or its refusal rendered per the request's `Accept`.
async fn answer(
    req: &HttpRequest,
    handler: impl Future<Output = Result<HttpResponse, Error>>,
) -> HttpResponse {
    handler
        .await
        .unwrap_or_else(|e| LtiRejection::new(e, req.headers()).error_response())
}

async fn deep_link_route(req: HttpRequest, body: web::Payload, limit: usize) -> HttpResponse {
    answer(&req, async {
        let tool: Arc<Tool> = tool_of(&req)?;
        let launch = load_launch(&req, Csrf::Check).await?;
        lti_tool::web::require_json(&convert::headers_lossy(req.headers()))?;
        let request = DeepLinkRequest::parse(&read_body(body, limit).await?)?;
        let mut builder = launch.deep_linking_response()?;
        request.apply(&mut builder)?;
        if !wants_json(req.headers()) {
            let form = tool.deep_link_response(&launch, &builder).await?;
            return Ok(into_response(form));
        }
        let jwt = tool.sign_deep_link_response(&launch, &builder).await?;
        Ok(HttpResponse::Ok().json(DeepLinkRequest::json_answer(&launch, &jwt)))
    })
    .await
}

#[cfg(test)]
mod tests {
    use actix_web::FromRequest;
    use actix_web::body::MessageBody;
    use actix_web::http::StatusCode;
    use actix_web::http::header::SET_COOKIE;
    use actix_web::test::TestRequest;

    use super::*;

    async fn convert(req: TestRequest, limit: usize) -> Result<ToolRequest, LtiRejection> {
        let (req, mut payload) = req.to_http_parts();
        let body = web::Payload::from_request(&req, &mut payload)
            .await
            .unwrap();
        tool_request(&req, body, limit).await
    }

    #[actix_web::test]
    async fn requests_carry_method_uri_repeated_headers_and_body_into_http_1() {
        let req = TestRequest::post()
            .uri("/lti/login?a=1&b=%20x")
            .append_header(("x-multi", "one"))
            .append_header(("x-multi", "two"))
            .set_payload("iss=x");
        let converted = convert(req, 1024).await.unwrap();
        assert_eq!(converted.method(), http::Method::POST);
        assert_eq!(converted.uri().path(), "/lti/login");
        assert_eq!(converted.uri().query(), Some("a=1&b=%20x"));
        let multi: Vec<_> = converted.headers().get_all("x-multi").iter().collect();
        assert_eq!(multi, ["one", "two"]);
        assert_eq!(converted.body().as_ref(), b"iss=x");
    }

    #[actix_web::test]
    async fn a_body_over_the_limit_is_413_and_one_at_the_limit_passes() {
        let at_limit = TestRequest::post().set_payload(vec![b'a'; 10]);
        assert_eq!(convert(at_limit, 10).await.unwrap().body().len(), 10);
        let over = TestRequest::post()
            .insert_header(("accept", "application/json"))
            .set_payload(vec![b'a'; 11]);
        let rejection = convert(over, 10).await.unwrap_err();
        assert_eq!(rejection.error().code(), "body_too_large");
        assert_eq!(rejection.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(rejection.to_string().contains("at most 10 bytes"));
    }

    #[test]
    fn responses_keep_status_and_every_header() {
        let mut response = ToolResponse::new(http::StatusCode::SEE_OTHER);
        let headers = response.headers_mut();
        headers.append(
            http::header::SET_COOKIE,
            http::HeaderValue::from_static("a=1"),
        );
        headers.append(
            http::header::SET_COOKIE,
            http::HeaderValue::from_static("b=2"),
        );
        headers.insert(
            http::header::LOCATION,
            http::HeaderValue::from_static("/next"),
        );
        let converted = into_response(response);
        assert_eq!(converted.status(), StatusCode::SEE_OTHER);
        let cookies: Vec<_> = converted.headers().get_all(SET_COOKIE).collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(converted.headers().get("location").unwrap(), "/next");
        assert!(converted.into_body().try_into_bytes().unwrap().is_empty());
    }
}
