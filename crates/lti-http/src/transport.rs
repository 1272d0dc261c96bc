//! The default [`HttpClient`](crate::HttpClient): hyper 1 with rustls on ring (the `transport` feature).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HeaderValue, USER_AGENT};
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tracing::Instrument;

use crate::client::{HttpClient, MaxResponseBytes};
use crate::egress::{AddressRefused, EgressResolver, Resolve, SystemResolver, check_address};
use crate::error::{Error, TimeoutPhase};
use crate::url::{check_scheme, redact_url};

/// The default `User-Agent` (Canvas refuses requests without one).
pub const DEFAULT_USER_AGENT: &str = concat!("lti-rs/", env!("CARGO_PKG_VERSION"), " (lti-http)");

/// Settings of a [`HyperClient`]; start from [`HyperClient::builder`].
#[derive(Clone, Debug)]
pub struct HyperClientBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    max_response_bytes: usize,
    user_agent: HeaderValue,
    allow_insecure_http: bool,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
    tls: Option<rustls::ClientConfig>,
    allow_private_addresses: bool,
    resolver: ResolverSlot,
}

/// The configured [`Resolve`] (opaque in `Debug`).
#[derive(Clone)]
struct ResolverSlot(Arc<dyn Resolve>);

impl std::fmt::Debug for ResolverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolve")
    }
}

impl Default for HyperClientBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            max_response_bytes: 2 * 1024 * 1024,
            user_agent: HeaderValue::from_static(DEFAULT_USER_AGENT),
            allow_insecure_http: false,
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 16,
            tls: None,
            allow_private_addresses: false,
            resolver: ResolverSlot(Arc::new(SystemResolver)),
        }
    }
}

impl HyperClientBuilder {
    /// Limit for establishing a connection (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Limit for the whole exchange including the body (default 30 s).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Default response-body cap in bytes (default 2 MiB); a request can
    /// override it with the [`MaxResponseBytes`] extension.
    pub fn max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }

    /// Sets the `User-Agent` sent when a request has none.
    pub fn user_agent(mut self, ua: &str) -> Result<Self, Error> {
        self.user_agent = HeaderValue::from_str(ua).map_err(|_| Error::InvalidRequest {
            reason: "User-Agent must be visible ASCII".to_owned(),
        })?;
        Ok(self)
    }

    /// Allows plain `http://` to any host. Off by default: only loopback
    /// hosts may be reached without TLS.
    pub fn allow_insecure_http(mut self) -> Self {
        self.allow_insecure_http = true;
        self
    }

    /// Lets requests reach loopback, private, link-local, unique-local and
    /// other non-public addresses (see [`crate::address_class`]). Off by
    /// default: a host name is resolved first and only public addresses are
    /// connected to, so a URL whose name points inside the network (or an IP
    /// literal such as `127.0.0.1` or `169.254.169.254`) fails with
    /// `private_address_refused` before any connection is made. Turn it on
    /// for platforms on the tool's own network, the dev platform and tests
    /// on loopback.
    pub fn allow_private_addresses(mut self) -> Self {
        self.allow_private_addresses = true;
        self
    }

    /// Resolves host names with `resolver` instead of the system resolver
    /// (e.g. to pin names in tests); the address rule applies to whatever
    /// it returns.
    pub fn resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = ResolverSlot(resolver);
        self
    }

    /// How long an idle pooled connection is kept (default 90 s).
    pub fn pool_idle_timeout(mut self, d: Duration) -> Self {
        self.pool_idle_timeout = d;
        self
    }

    /// Idle connections kept per host (default 16).
    pub fn pool_max_idle_per_host(mut self, n: usize) -> Self {
        self.pool_max_idle_per_host = n;
        self
    }

    /// Uses this TLS configuration instead of the default (ring provider,
    /// webpki roots), e.g. to trust a private CA.
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Builds the client. Fails only if the TLS configuration cannot be built.
    pub fn build(self) -> Result<HyperClient, Error> {
        let tls = match self.tls.clone() {
            Some(tls) => tls,
            None => rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::InvalidRequest {
                reason: format!("TLS configuration: {e}"),
            })?
            .with_webpki_roots()
            .with_no_client_auth(),
        };
        let mut http = HttpConnector::new_with_resolver(EgressResolver {
            inner: self.resolver.0.clone(),
            allow_private: self.allow_private_addresses,
        });
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .build(https);
        Ok(HyperClient {
            inner,
            settings: Arc::new(self),
        })
    }
}

/// The default [`HttpClient`]: hyper 1 with a pooled (keep-alive)
/// connection per host, rustls on ring with webpki roots, connect and total
/// timeouts, a response-size cap, no redirects, a `User-Agent`, and no
/// connections to non-public addresses unless
/// [`HyperClientBuilder::allow_private_addresses`] is set.
///
/// Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct HyperClient {
    inner: Client<HttpsConnector<HttpConnector<EgressResolver>>, Full<Bytes>>,
    settings: Arc<HyperClientBuilder>,
}

impl std::fmt::Debug for HyperClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl HyperClient {
    /// A builder with secure defaults.
    pub fn builder() -> HyperClientBuilder {
        HyperClientBuilder::default()
    }

    /// A client with the default settings.
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    async fn exchange(
        &self,
        req: Request<Full<Bytes>>,
        url: &str,
        limit: usize,
    ) -> Result<Response<Bytes>, Error> {
        let resp = self
            .inner
            .request(req)
            .await
            .map_err(|e| map_client_error(&e, url, self.settings.connect_timeout))?;
        let declared = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(Error::BodyTooLarge {
                url: url.to_owned(),
                limit,
            });
        }
        let (parts, body) = resp.into_parts();
        let collected = Limited::new(body, limit).collect().await.map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Error::BodyTooLarge {
                    url: url.to_owned(),
                    limit,
                }
            } else {
                Error::Transport {
                    url: url.to_owned(),
                    attempts: 1,
                    reason: format!("reading the body: {}", error_chain(e.as_ref())),
                }
            }
        })?;
        Ok(Response::from_parts(parts, collected.to_bytes()))
    }
}

#[async_trait::async_trait]
impl HttpClient for HyperClient {
    async fn send(&self, req: Request<Bytes>) -> Result<Response<Bytes>, Error> {
        check_scheme(req.uri(), self.settings.allow_insecure_http)?;
        let url = redact_url(&req.uri().to_string());
        // IP literals are connected to without resolving: check them here.
        if let Some(ip) = req
            .uri()
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|h| h.parse::<std::net::IpAddr>().ok())
        {
            check_address(ip, self.settings.allow_private_addresses)
                .map_err(|e| private_address(&e, &url))?;
        }
        let limit = req
            .extensions()
            .get::<MaxResponseBytes>()
            .map_or(self.settings.max_response_bytes, |m| m.0);
        let (mut parts, body) = req.into_parts();
        if !parts.headers.contains_key(USER_AGENT) {
            parts
                .headers
                .insert(USER_AGENT, self.settings.user_agent.clone());
        }
        let span = tracing::debug_span!(
            "lti_http.request",
            method = %parts.method,
            url = %url,
            status = tracing::field::Empty,
            latency_ms = tracing::field::Empty,
        );
        let req = Request::from_parts(parts, Full::new(body));
        let total = self.settings.timeout;
        let recorder = span.clone();
        async {
            let started = Instant::now();
            let result = match tokio::time::timeout(total, self.exchange(req, &url, limit)).await {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout {
                    url: url.clone(),
                    phase: TimeoutPhase::Total,
                    limit: total,
                    attempts: 1,
                }),
            };
            recorder.record("latency_ms", started.elapsed().as_millis() as u64);
            match &result {
                Ok(resp) => {
                    recorder.record("status", resp.status().as_u16());
                    tracing::debug!("response received");
                }
                Err(e) => tracing::debug!(error.code = e.code(), "request failed"),
            }
            result
        }
        .instrument(span)
        .await
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        s.push_str(": ");
        s.push_str(&src.to_string());
        cur = src.source();
    }
    s
}

fn map_client_error(
    e: &hyper_util::client::legacy::Error,
    url: &str,
    connect_timeout: Duration,
) -> Error {
    let mut timed_out = false;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(refused) = err.downcast_ref::<AddressRefused>() {
            return private_address(refused, url);
        }
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            timed_out = true;
        }
        cur = err.source();
    }
    if e.is_connect() && timed_out {
        return Error::Timeout {
            url: url.to_owned(),
            phase: TimeoutPhase::Connect,
            limit: connect_timeout,
            attempts: 1,
        };
    }
    let reason = error_chain(e);
    if e.is_connect() {
        Error::Connect {
            url: url.to_owned(),
            attempts: 1,
            reason,
        }
    } else {
        Error::Transport {
            url: url.to_owned(),
            attempts: 1,
            reason,
        }
    }
}

fn private_address(refused: &AddressRefused, url: &str) -> Error {
    Error::PrivateAddress {
        url: url.to_owned(),
        class: refused.class,
    }
}
