//! The one seam to the network: [`HttpClient`] (any client plugs in),
//! [`FnClient`] for closures, the per-request response cap and request
//! cloning. The hyper client is in `transport` (the `transport` feature).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};

use crate::error::Error;

/// Sends one HTTP request and returns the whole response.
///
/// This is the only way `lti-http` talks to the network, so any client can
/// be plugged in: [`HyperClient`] is the default, [`FnClient`] wraps a
/// closure for tests. Implementations must not follow redirects.
#[async_trait::async_trait]
pub trait HttpClient: Send + Sync {
    /// Sends `req` and returns the response with its body fully read.
    async fn send(&self, req: Request<Bytes>) -> Result<Response<Bytes>, Error>;
}

#[async_trait::async_trait]
impl<T: HttpClient + ?Sized> HttpClient for Arc<T> {
    async fn send(&self, req: Request<Bytes>) -> Result<Response<Bytes>, Error> {
        (**self).send(req).await
    }
}

/// A request extension that lowers or raises the response-size cap for one
/// request (the JWKS cache uses it for large keysets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxResponseBytes(pub usize);

/// An [`HttpClient`] made from a closure; handy in tests and examples.
///
/// ```
/// use bytes::Bytes;
/// use lti_http::{FnClient, HttpClient};
///
/// let client = FnClient::new(|req: http::Request<Bytes>| async move {
///     assert_eq!(req.uri(), "https://lms.example/ping");
///     Ok(http::Response::new(Bytes::from_static(b"pong")))
/// });
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let req = http::Request::get("https://lms.example/ping").body(Bytes::new()).unwrap();
/// assert_eq!(client.send(req).await.unwrap().body().as_ref(), b"pong");
/// # });
/// ```
pub struct FnClient<F> {
    f: F,
}

impl<F> FnClient<F> {
    /// Wraps `f`.
    pub fn new(f: F) -> Self {
        Self { f }
    }
}

impl<F> std::fmt::Debug for FnClient<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnClient")
    }
}

#[async_trait::async_trait]
impl<F, Fut> HttpClient for FnClient<F>
where
    F: Fn(Request<Bytes>) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Response<Bytes>, Error>> + Send,
{
    async fn send(&self, req: Request<Bytes>) -> Result<Response<Bytes>, Error> {
        (self.f)(req).await
    }
}

/// Copies method, URI, version, headers, body and the [`MaxResponseBytes`]
/// extension of a request (other extensions are not clonable in general).
pub fn clone_request(req: &Request<Bytes>) -> Request<Bytes> {
    let mut out = Request::new(req.body().clone());
    *out.method_mut() = req.method().clone();
    *out.uri_mut() = req.uri().clone();
    *out.version_mut() = req.version();
    *out.headers_mut() = req.headers().clone();
    if let Some(m) = req.extensions().get::<MaxResponseBytes>() {
        out.extensions_mut().insert(*m);
    }
    out
}
