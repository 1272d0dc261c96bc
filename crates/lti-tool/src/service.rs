//! The tool's routes as a `tower::Service` over `http::Request` (feature `tower`):
//! an entry point for hyper and any server or framework built on tower.
//!
//! [`LtiService`] answers `GET|POST` login, `POST` launch, `GET|HEAD` JWKS and
//! `POST` deep link at the paths of a [`RouteConfig`], with the same flows, codes and
//! statuses as the `lti-axum` and `lti-actix` adapters: it is built only on
//! [`web`] and the [`Tool`] flows. A request for another path gets
//! `route_not_found` (404), or goes to the application's own service when one
//! is given with [`LtiService::fallback`]; a known path with another method gets
//! `method_not_allowed` (405) and an `Allow` header. Bodies are read up to the
//! configuration's limit (`body_too_large`, 413, as soon as the declared length
//! or the bytes read exceed it). An application handler finds the current
//! launch with [`current_launch`] and renders a refusal with [`refusal`].
//!
//! ```
//! use std::convert::Infallible;
//! use std::future::Future;
//! use std::pin::Pin;
//! use std::sync::Arc;
//! use std::task::{Context, Poll};
//!
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::{Either, Full};
//! use lti_tool::service::{LtiService, current_launch, refusal};
//! use lti_tool::Tool;
//! use tower_service::Service;
//!
//! /// The application's own pages: everything that is not an LTI route.
//! #[derive(Clone)]
//! struct App {
//!     tool: Tool,
//! }
//!
//! impl<B: Send + 'static> Service<Request<B>> for App {
//!     type Response = Response<Full<Bytes>>;
//!     type Error = Infallible;
//!     type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;
//!
//!     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
//!         Poll::Ready(Ok(()))
//!     }
//!
//!     fn call(&mut self, req: Request<B>) -> Self::Future {
//!         let tool = self.tool.clone();
//!         Box::pin(async move {
//!             let (parts, _body) = req.into_parts();
//!             Ok(match current_launch(&tool, &parts).await {
//!                 Ok(launch) => Response::new(Full::from(format!("Hello {:?}", launch.sub()))),
//!                 Err(refused) => refusal(&refused, &parts.headers),
//!             })
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let clock = Arc::new(lti_registry::ManualClock::new(1_900_000_000));
//! # let store = lti_registry::Store::from_backend(Arc::new(lti_store::MemoryStore::new(
//! #     lti_registry::SecretCipher::insecure_plaintext_for_tests(),
//! #     clock,
//! # )));
//! # let keys = Arc::new(lti_jose::JwkSet { keys: vec![] });
//! let tool = Tool::builder("https://tool.example.com/", &store).key_source(keys).build()?;
//! let mut service = LtiService::new(tool.clone()).fallback(App { tool });
//!
//! // Not an LTI path: the application answers, here refusing a request
//! // without a launch id as every adapter does.
//! let page = service.call(Request::get("/app").body(Full::new(Bytes::new()))?).await?;
//! assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
//! assert!(matches!(page.body(), Either::Right(_)));
//!
//! // An LTI path with the wrong method: 405 with `Allow`.
//! let put = Request::put("/lti/login").body(Full::new(Bytes::new()))?;
//! let refused = service.call(put).await?;
//! assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
//! assert_eq!(refused.headers()["allow"], "GET, POST");
//! # Ok(())
//! # }
//! ```
//!
//! `examples/hyper-tool` runs it on plain hyper.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Either, Full, LengthLimitError, Limited};
use tower_service::Service;

use crate::error::clip;
use crate::web::{self, DeepLinkRequest, Error, RouteConfig};
use crate::{Launch, Tool, ToolError, ToolRequest};

/// The error type a request body's error must convert into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The future of [`LtiService`] and [`WithFallback`].
pub type ResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// The LTI routes as a `tower::Service<http::Request<B>>` answering
/// `http::Response<Full<Bytes>>`; every other path gets `route_not_found` (404).
///
/// `B` is any request body (hyper's `Incoming`, `Full<Bytes>`, ...) whose error
/// converts into a [`BoxError`]. Cloning is cheap (two `Arc`s).
#[derive(Clone)]
pub struct LtiService {
    tool: Arc<Tool>,
    config: Arc<RouteConfig>,
}

impl std::fmt::Debug for LtiService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LtiService")
            .field("base_url", &self.tool.base_url())
            .field("config", &self.config)
            .finish()
    }
}

/// One of the LTI routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Login,
    Launch,
    Jwks,
    DeepLink,
}

impl Route {
    /// The accepted methods: as the `Allow` header, and as the refusal's `expected`.
    fn allowed(self) -> (&'static str, &'static str) {
        match self {
            Self::Login => ("GET, POST", "GET or POST"),
            Self::Launch => ("POST, GET", "POST or GET"),
            Self::DeepLink => ("POST", "POST"),
            Self::Jwks => ("GET, HEAD", "GET or HEAD"),
        }
    }

    fn accepts(self, method: &Method) -> bool {
        match self {
            Self::Login | Self::Launch => method == Method::GET || method == Method::POST,
            Self::DeepLink => method == Method::POST,
            // As axum's `get`: HEAD answers the headers (the server drops the body).
            Self::Jwks => method == Method::GET || method == Method::HEAD,
        }
    }
}

impl LtiService {
    /// The routes at the default paths with the default body limit
    /// ([`RouteConfig::default`]).
    pub fn new(tool: impl Into<Arc<Tool>>) -> Self {
        Self::with_config(tool, RouteConfig::default())
    }

    /// The routes at the paths, and with the body limit, of `config`.
    pub fn with_config(tool: impl Into<Arc<Tool>>, config: RouteConfig) -> Self {
        Self {
            tool: tool.into(),
            config: Arc::new(config),
        }
    }

    /// Sends every request whose path is not an LTI route to `inner` (the
    /// application's own service); LTI paths never reach it.
    pub fn fallback<S>(self, inner: S) -> WithFallback<S> {
        WithFallback { lti: self, inner }
    }

    /// The tool.
    pub fn tool(&self) -> &Arc<Tool> {
        &self.tool
    }

    /// The paths and body limit.
    pub fn config(&self) -> &RouteConfig {
        &self.config
    }

    fn route(&self, path: &str) -> Option<Route> {
        let config = &*self.config;
        if path == config.login {
            Some(Route::Login)
        } else if path == config.launch {
            Some(Route::Launch)
        } else if path == config.jwks {
            Some(Route::Jwks)
        } else if config.deep_link.as_deref() == Some(path) {
            Some(Route::DeepLink)
        } else {
            None
        }
    }

    /// Answers `req` as [`Service::call`] does: an LTI route, or `route_not_found`.
    pub async fn answer<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        match self.route(req.uri().path()) {
            Some(route) => self.serve(route, req).await,
            None => refusal(&Error::route_not_found(req.uri().path()), req.headers()),
        }
    }

    async fn serve<B>(&self, route: Route, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        // The key set is fetched by platforms: its refusals are always JSON.
        let json = route == Route::Jwks || web::wants_json(req.headers());
        if !route.accepts(req.method()) {
            let (allow, expected) = route.allowed();
            let error = Error::Tool(ToolError::MethodNotAllowed {
                expected,
                found: clip(req.method().as_str()),
            });
            let mut response = render(&error, json);
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            return response;
        }
        let answer = match route {
            Route::Login => self.login(req).await,
            // A GET carrying a launch id goes on to the landing URL.
            Route::Launch if req.method() == Method::GET => {
                web::launch_get(&self.tool, req.headers(), req.uri().query())
            }
            Route::Launch => self.launch(req).await,
            Route::Jwks => self.tool.jwks().await.map_err(Error::from),
            Route::DeepLink => self.deep_link(req, json).await,
        };
        match answer {
            Ok(response) => response.into_http().map(Full::new),
            Err(error) => render(&error, json),
        }
    }

    async fn tool_request<B>(&self, req: Request<B>) -> Result<ToolRequest, Error>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let body = read_body(body, self.config.body_limit).await?;
        Ok(ToolRequest::new(
            parts.method,
            parts.uri,
            parts.headers,
            body,
        ))
    }

    async fn login<B>(&self, req: Request<B>) -> Result<crate::ToolResponse, Error>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let req = self.tool_request(req).await?;
        Ok(self.tool.login(&req).await?)
    }

    async fn launch<B>(&self, req: Request<B>) -> Result<crate::ToolResponse, Error>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let req = self.tool_request(req).await?;
        let outcome = web::launch_with_cookie(&self.tool, &req).await?;
        Ok(outcome.into_response())
    }

    /// The deep-linking route: the current launch (which must be a deep-linking
    /// request), the chosen items from the JSON body, and the signed response as
    /// the auto-submitting form, or as JSON when the request accepts JSON.
    async fn deep_link<B>(&self, req: Request<B>, json: bool) -> Result<crate::ToolResponse, Error>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = req.into_parts();
        let launch = current_launch(&self.tool, &parts).await?;
        web::require_json(&parts.headers)?;
        let body = read_body(body, self.config.body_limit).await?;
        let mut builder = launch.deep_linking_response()?;
        DeepLinkRequest::parse(&body)?.apply(&mut builder)?;
        if !json {
            return Ok(self.tool.deep_link_response(&launch, &builder).await?);
        }
        let jwt = self.tool.sign_deep_link_response(&launch, &builder).await?;
        let answer = DeepLinkRequest::json_answer(&launch, &jwt).to_string();
        let mut response = crate::ToolResponse::new(StatusCode::OK);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response.with_body(Bytes::from(answer)))
    }
}

impl<B> Service<Request<B>> for LtiService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let lti = self.clone();
        Box::pin(async move { Ok(lti.answer(req).await) })
    }
}

/// [`LtiService`] in front of the application's service `S`: LTI paths are
/// answered as by [`LtiService`] (`Either::Left`), every other request goes to
/// `S` (`Either::Right`, `S`'s own body and error).
///
/// `S` is cloned for each request it answers and made ready then, so this
/// service is always ready.
#[derive(Debug, Clone)]
pub struct WithFallback<S> {
    lti: LtiService,
    inner: S,
}

impl<S> WithFallback<S> {
    /// The LTI routes.
    pub fn lti(&self) -> &LtiService {
        &self.lti
    }
}

impl<B, S, SB> Service<Request<B>> for WithFallback<S>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
    S: Service<Request<B>, Response = Response<SB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    SB: 'static,
{
    type Response = Response<Either<Full<Bytes>, SB>>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let lti = self.lti.clone();
        if let Some(route) = lti.route(req.uri().path()) {
            return Box::pin(async move { Ok(lti.serve(route, req).await.map(Either::Left)) });
        }
        let mut inner = self.inner.clone();
        Box::pin(async move {
            poll_fn(|cx| inner.poll_ready(cx)).await?;
            Ok(inner.call(req).await?.map(Either::Right))
        })
    }
}

/// The current verified launch of a request, for an application handler: the
/// launch id the request carries (`Authorization: Bearer`, the `lti_launch_id`
/// query parameter, or the `lti_launch` cookie), checked by [`web::authorize`]
/// (on a state-changing method: the launch's CSRF token, a Bearer id, or a
/// query id from a same-origin page; never the cookie alone) and loaded with
/// [`Tool::load_launch`], as the adapters' launch extractors do.
///
/// # Errors
/// [`Error::MissingLaunchId`] (401) without an id; `csrf_check_failed` or
/// `launch_id_not_bound` (403); the [`ToolError`] of [`Tool::load_launch`]
/// (`launch_not_found`, 404, for an unknown or expired id; `store_unavailable`,
/// 503, when the store is down).
pub async fn current_launch(tool: &Tool, parts: &Parts) -> Result<Launch, Error> {
    let id = web::authorize(tool, &parts.method, &parts.headers, parts.uri.query())?;
    Ok(tool.load_launch(&id).await?)
}

/// The refusal of `error` for a request with `request_headers`: JSON when its
/// `Accept` asks for it ([`web::wants_json`]), else the HTML page, with
/// [`Error::http_status`] (see [`web::error_response`]).
pub fn refusal(error: &Error, request_headers: &HeaderMap) -> Response<Full<Bytes>> {
    render(error, web::wants_json(request_headers))
}

fn render(error: &Error, json: bool) -> Response<Full<Bytes>> {
    web::error_response(error, json).map(Full::from)
}

/// Reads a request body of at most `limit` bytes: a declared length over the
/// limit is refused before reading, and the bytes read are counted as they
/// arrive (a chunked body is cut off at the limit).
///
/// # Errors
/// [`Error::BodyTooLarge`] (413), or [`Error::BodyUnreadable`] (400) when the
/// body fails.
pub async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, Error>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    if body.size_hint().lower() > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(Error::BodyTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Error::BodyTooLarge { limit })
        }
        Err(e) => Err(Error::BodyUnreadable {
            reason: clip(&e.to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use http::header::ACCEPT;
    use http_body::Frame;
    use lti_registry::{ManualClock, SecretCipher, SecretString, Store};

    use super::*;

    fn store() -> Store {
        Store::from_backend(Arc::new(lti_store::MemoryStore::new(
            SecretCipher::insecure_plaintext_for_tests(),
            Arc::new(ManualClock::new(1_900_000_000)),
        )))
    }

    fn tool(store: &Store) -> Tool {
        Tool::builder("https://tool.example.com/", store)
            .key_source(Arc::new(lti_jose::JwkSet { keys: vec![] }))
            .build()
            .unwrap()
    }

    /// A body sent in chunks of unknown total length, that can end in an error.
    struct Chunks {
        chunks: VecDeque<Result<Bytes, &'static str>>,
        declared: Option<u64>,
    }

    impl Chunks {
        fn new(chunks: impl IntoIterator<Item = Result<Bytes, &'static str>>) -> Self {
            Self {
                chunks: chunks.into_iter().collect(),
                declared: None,
            }
        }
    }

    impl Body for Chunks {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            let next = self.chunks.pop_front();
            Poll::Ready(next.map(|chunk| chunk.map(Frame::data).map_err(BoxError::from)))
        }

        fn size_hint(&self) -> http_body::SizeHint {
            match self.declared {
                Some(n) => http_body::SizeHint::with_exact(n),
                None => http_body::SizeHint::default(),
            }
        }
    }

    fn request(method: Method, path: &str) -> Request<Full<Bytes>> {
        Request::builder()
            .method(method)
            .uri(path)
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::new()))
            .unwrap()
    }

    async fn code_of<B: Body>(response: Response<B>) -> (StatusCode, String)
    where
        B::Error: std::fmt::Debug,
    {
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (status, json["error"].as_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn unknown_paths_are_route_not_found_without_a_fallback() {
        let mut service = LtiService::new(tool(&store()));
        let response = service.call(request(Method::GET, "/nope")).await.unwrap();
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(
            code_of(response).await,
            (StatusCode::NOT_FOUND, "route_not_found".to_owned())
        );
        let long = format!("/{}", "x".repeat(300));
        let response = service.call(request(Method::GET, &long)).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let message = json["message"].as_str().unwrap();
        assert!(message.len() < 150 && message.contains('…'), "{message}");
    }

    #[tokio::test]
    async fn the_configured_paths_are_served_and_the_defaults_are_not() {
        let config = RouteConfig {
            login: "/lms/login".into(),
            deep_link: None,
            ..RouteConfig::default()
        };
        let mut service = LtiService::with_config(tool(&store()), config);
        let cases = [
            (Method::GET, "/lti/login", StatusCode::NOT_FOUND, None),
            (Method::POST, "/lti/deep-link", StatusCode::NOT_FOUND, None),
            (
                Method::PUT,
                "/lms/login",
                StatusCode::METHOD_NOT_ALLOWED,
                Some("GET, POST"),
            ),
            (
                Method::DELETE,
                "/lti/launch",
                StatusCode::METHOD_NOT_ALLOWED,
                Some("POST, GET"),
            ),
        ];
        for (method, path, status, allow) in cases {
            let response = service.call(request(method, path)).await.unwrap();
            assert_eq!(response.status(), status, "{path}");
            let got = response.headers().get(ALLOW).map(|v| v.to_str().unwrap());
            assert_eq!(got, allow, "{path}");
        }
        // The login path answers the login flow (here refusing a request
        // without its parameters).
        let login = service
            .call(request(Method::GET, "/lms/login"))
            .await
            .unwrap();
        assert_eq!(
            code_of(login).await,
            (StatusCode::BAD_REQUEST, "missing_parameter".to_owned())
        );
    }

    /// An application service that records the paths it is asked for.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl<B> Service<Request<B>> for Recorder {
        type Response = Response<String>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<String>, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: Request<B>) -> Self::Future {
            let path = req.uri().path().to_owned();
            self.0.lock().unwrap().push(path.clone());
            std::future::ready(Ok(Response::new(format!("app: {path}"))))
        }
    }

    #[tokio::test]
    async fn the_fallback_gets_every_other_path_and_never_an_lti_one() {
        let recorder = Recorder::default();
        let mut service = LtiService::new(tool(&store())).fallback(recorder.clone());
        let app = service.call(request(Method::GET, "/app")).await.unwrap();
        assert_eq!(app.status(), StatusCode::OK);
        let Either::Right(body) = app.into_body() else {
            panic!("expected the application's body");
        };
        assert_eq!(body, "app: /app");
        for (method, path) in [
            (Method::PUT, "/lti/launch"),
            (Method::GET, "/lti/deep-link"),
            (Method::GET, "/lti/login"),
        ] {
            let lti = service.call(request(method, path)).await.unwrap();
            assert!(lti.status().is_client_error(), "{path}");
            assert!(matches!(lti.body(), Either::Left(_)), "{path}");
        }
        assert_eq!(*recorder.0.lock().unwrap(), ["/app"]);
    }

    #[tokio::test]
    async fn bodies_are_limited_while_read_and_by_their_declared_length() {
        let chunk = |n| Ok(Bytes::from(vec![b'a'; n]));
        let at_limit = read_body(Chunks::new([chunk(6), chunk(4)]), 10).await;
        assert_eq!(at_limit.unwrap().len(), 10);
        let over = read_body(Chunks::new([chunk(6), chunk(5)]), 10).await;
        assert_eq!(over.unwrap_err().code(), "body_too_large");
        // A declared length over the limit is refused before the body is polled
        // (polling this one would fail with `body_unreadable`).
        let mut declared = Chunks::new([Err("polled")]);
        declared.declared = Some(11);
        let refused = read_body(declared, 10).await.unwrap_err();
        assert_eq!(refused.code(), "body_too_large");
        assert_eq!(refused.http_status(), StatusCode::PAYLOAD_TOO_LARGE);
        let broken = read_body(Chunks::new([chunk(2), Err("connection reset")]), 10).await;
        let broken = broken.unwrap_err();
        assert_eq!(broken.code(), "body_unreadable");
        assert_eq!(broken.http_status(), StatusCode::BAD_REQUEST);
        assert!(broken.to_string().contains("connection reset"));
    }

    #[tokio::test]
    async fn a_route_refuses_an_oversized_body_with_413() {
        let config = RouteConfig {
            body_limit: 8,
            ..RouteConfig::default()
        };
        let mut service = LtiService::with_config(tool(&store()), config);
        let body = Chunks::new([Ok(Bytes::from_static(b"iss=https://a"))]);
        let req = Request::post("/lti/login")
            .header(ACCEPT, "application/json")
            .body(body)
            .unwrap();
        let response = service.call(req).await.unwrap();
        assert_eq!(
            code_of(response).await,
            (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large".to_owned())
        );
    }

    #[tokio::test]
    async fn jwks_refusals_are_json_even_for_a_browser() {
        let store = store();
        // A PEM block whose content is no key: the store takes it, parsing fails.
        let garbage = SecretString::new(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
        );
        store
            .tool_keys
            .add_next_key("broken", "RS256", &garbage)
            .await
            .unwrap();
        store.tool_keys.promote_next_key().await.unwrap();
        let mut service = LtiService::new(tool(&store));
        let req = Request::get(web::JWKS_PATH)
            .header(ACCEPT, "text/html")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = service.call(req).await.unwrap();
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let (status, code) = code_of(response).await;
        assert_eq!(code, "configuration");
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn current_launch_needs_an_id_the_store_knows() {
        let tool = tool(&store());
        let parts = |req: Request<()>| req.into_parts().0;
        let none = current_launch(&tool, &parts(Request::get("/app").body(()).unwrap())).await;
        assert_eq!(none.unwrap_err().code(), "launch_id_missing");
        let unknown = Request::get("/app")
            .header(http::header::AUTHORIZATION, "Bearer unknown-id")
            .body(())
            .unwrap();
        let unknown = current_launch(&tool, &parts(unknown)).await.unwrap_err();
        assert_eq!(unknown.code(), "launch_not_found");
        assert_eq!(unknown.http_status(), StatusCode::NOT_FOUND);
    }
}
