//! An LTI 1.3 tool on plain hyper 1: `lti_tool::service::LtiService` answers
//! the LTI routes (login, launch, JWKS, deep-linking response) and hands every
//! other request to the application's own service, whose `/app` page reads the
//! current launch. `main.rs` runs it; `tests/launch.rs` drives a login and a
//! launch over real HTTP.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use lti_jose::KeySource;
use lti_registry::{AppKey, PlatformRegistration, SecretCipher, SecretString};
use lti_tool::Tool;
use lti_tool::html::escape;
use lti_tool::service::{LtiService, WithFallback, current_launch, refusal};
use lti_tool::web::Error;
use tokio::net::TcpListener;

/// Errors while setting the example up.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the tool: an in-memory store, the tool's signing key (PKCS#8 PEM, as
/// `lti keygen` writes it), one platform. `keys` replaces the default key
/// source (the platform's JWKS fetched over HTTPS), e.g. with a static
/// `lti_jose::JwkSet`.
///
/// # Errors
/// When the store, the key or the tool cannot be set up.
pub async fn build_tool(
    base_url: &str,
    platform: PlatformRegistration,
    key_pem: String,
    keys: Option<Arc<dyn KeySource>>,
) -> Result<Tool, BoxError> {
    let cipher = SecretCipher::aes256gcm(AppKey::generate("k1")?, vec![])?;
    let store = lti_store::open("memory://", &lti_store::OpenOptions::new(cipher)).await?;
    store.registrations.insert_registration(&platform).await?;
    let key = lti_jose::SigningKey::from_pem(&key_pem, lti_jose::Algorithm::RS256)?;
    store
        .tool_keys
        .add_next_key(key.kid(), "RS256", &SecretString::new(key_pem))
        .await?;
    store.tool_keys.promote_next_key().await?;
    let mut builder = Tool::builder(base_url, &store);
    if let Some(keys) = keys {
        builder = builder.key_source(keys);
    }
    Ok(builder.build()?)
}

/// The whole server: the LTI routes in front of the application.
pub fn service(tool: Tool) -> WithFallback<App> {
    LtiService::new(tool.clone()).fallback(App { tool })
}

/// Serves `service` on `listener`, one HTTP/1.1 connection per task, until the
/// listener fails.
///
/// # Errors
/// When accepting a connection fails.
pub async fn serve(listener: TcpListener, service: WithFallback<App>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                eprintln!("connection error: {e}");
            }
        });
    }
}

/// The application's own pages: `GET /` and `GET /app` (the launch's target,
/// which greets the launching user). Anything else gets `route_not_found`
/// (404) in the same shape as the LTI routes' refusals.
#[derive(Clone)]
pub struct App {
    tool: Tool,
}

impl<B: Send + 'static> tower_service::Service<Request<B>> for App {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let tool = self.tool.clone();
        Box::pin(async move {
            let (parts, _body) = req.into_parts();
            let response = match (&parts.method, parts.uri.path()) {
                (&Method::GET, "/") => html("<p>An existing page.</p>".to_owned()),
                (&Method::GET, "/app") => match current_launch(&tool, &parts).await {
                    Ok(launch) => launched(&launch),
                    Err(refused) => refusal(&refused, &parts.headers),
                },
                (_, path) => refusal(&Error::route_not_found(path), &parts.headers),
            };
            Ok(response)
        })
    }
}

/// The launch's target: who launched, from which course.
fn launched(launch: &lti_tool::Launch) -> Response<Full<Bytes>> {
    let claims = launch.claims();
    let course = claims.context.as_ref().and_then(|c| c.title.as_deref());
    html(format!(
        "<h1>Hello {}</h1><p>Course: {}</p>",
        escape(claims.name.as_deref().unwrap_or("there")),
        escape(course.unwrap_or_default()),
    ))
}

fn html(body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::from(body));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}
