//! `GET /metrics` in the Prometheus text format, for `lti serve` and
//! `lti platform`.
//!
//! Off by default. With a metrics address (`[metrics] bind`, `--metrics-bind`
//! or `LTI_METRICS_BIND`) a second listener serves `GET /metrics` there and
//! nothing else, so the figures stay off the public listener (bind it to
//! loopback or a management network). The names are listed in
//! `docs/configuration.md` ("Metrics").
//!
//! The library crates know nothing about this: the JWKS cache and the service
//! client expose plain counters (`lti_http::JwksCache::stats`,
//! `lti_http::ServiceClient::token_stats`) copied in at scrape time, and the
//! store handles are wrapped here ([`instrument_store`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lti_registry::{
    LaunchDataStore, LaunchState, LaunchStateStore, NonceStore, OAuth1NonceStore, RegistryError,
    SharedValueStore, Store,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The `Content-Type` of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreOpLabels {
    store: &'static str,
    op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreErrorLabels {
    store: &'static str,
    op: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    message: &'static str,
    outcome: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~8 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// A counter and where its value comes from.
type MirroredCounter = (Counter, fn(&Sources) -> u64);

/// Counters copied from a library's plain stats at scrape time.
struct Mirrored {
    counters: Vec<MirroredCounter>,
}

/// Where the mirrored counters come from.
#[derive(Default)]
struct Sources {
    jwks: Option<lti_http::JwksCache>,
    services: Option<Arc<lti_http::ServiceClient>>,
}

/// The metrics of one server (cheap to clone).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    in_flight: Gauge,
    launches: Family<OutcomeLabels, Counter>,
    logins: Family<OutcomeLabels, Counter>,
    launch_seconds: Histogram,
    login_seconds: Histogram,
    platform_messages: Family<MessageLabels, Counter>,
    store_seconds: HistogramFamily<StoreOpLabels>,
    store_errors: Family<StoreErrorLabels, Counter>,
    sources: Mutex<Sources>,
    mirrored: Mutex<Mirrored>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let in_flight = Gauge::default();
        registry.register(
            "lti_http_requests_in_flight",
            "HTTP requests being handled",
            in_flight.clone(),
        );
        let launches = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "lti_launches",
            "LTI 1.3 launches (POST to the launch URL) by outcome: ok or the refusal code",
            launches.clone(),
        );
        let logins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "lti_logins",
            "OIDC login initiations by outcome: ok or the refusal code",
            logins.clone(),
        );
        let launch_seconds = latency_histogram();
        registry.register(
            "lti_launch_duration_seconds",
            "Time to answer a launch",
            launch_seconds.clone(),
        );
        let login_seconds = latency_histogram();
        registry.register(
            "lti_login_duration_seconds",
            "Time to answer a login initiation",
            login_seconds.clone(),
        );
        let platform_messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "lti_platform_requests",
            "Platform endpoint requests (auth, token, services) by outcome: ok or the HTTP status",
            platform_messages.clone(),
        );
        let store_seconds: HistogramFamily<StoreOpLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "lti_store_operation_duration_seconds",
            "Time of store operations by store and operation",
            store_seconds.clone(),
        );
        let store_errors = Family::<StoreErrorLabels, Counter>::default();
        registry.register(
            "lti_store_errors",
            "Store operations that failed, by store, operation and error code",
            store_errors.clone(),
        );
        let mut counters: Vec<MirroredCounter> = Vec::new();
        let mut mirror = |name: &str, help: &str, read: fn(&Sources) -> u64| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            counters.push((c, read));
        };
        mirror(
            "lti_jwks_cache_hits",
            "Key lookups answered from a fresh cached JWK Set",
            |s| s.jwks.as_ref().map_or(0, |j| j.stats().hits),
        );
        mirror(
            "lti_jwks_cache_misses",
            "Key lookups of a JWKS URL with no cached set (fetched)",
            |s| s.jwks.as_ref().map_or(0, |j| j.stats().misses),
        );
        mirror(
            "lti_jwks_cache_refetches",
            "Refetches of a cached JWK Set (expired, or an unknown kid)",
            |s| s.jwks.as_ref().map_or(0, |j| j.stats().refetches),
        );
        mirror(
            "lti_jwks_cache_fetch_errors",
            "JWK Set fetches that failed",
            |s| s.jwks.as_ref().map_or(0, |j| j.stats().fetch_errors),
        );
        mirror(
            "lti_jwks_cache_stale_served",
            "Key lookups answered from an expired set while its refresh failed",
            |s| s.jwks.as_ref().map_or(0, |j| j.stats().stale_served),
        );
        mirror(
            "lti_token_cache_hits",
            "Service access tokens found usable in the token cache",
            |s| s.services.as_ref().map_or(0, |c| c.token_stats().hits),
        );
        mirror(
            "lti_token_cache_misses",
            "Service access tokens requested from a token endpoint by this instance",
            |s| s.services.as_ref().map_or(0, |c| c.token_stats().fetches),
        );
        mirror(
            "lti_token_cache_refetches",
            "Token requests replacing a token a service refused with 401",
            |s| s.services.as_ref().map_or(0, |c| c.token_stats().refetches),
        );
        mirror(
            "lti_token_cache_waits",
            "Tokens another instance requested while this one waited (shared cache)",
            |s| s.services.as_ref().map_or(0, |c| c.token_stats().waited),
        );
        mirror(
            "lti_token_cache_fetch_errors",
            "Token requests that failed",
            |s| {
                s.services
                    .as_ref()
                    .map_or(0, |c| c.token_stats().fetch_errors)
            },
        );
        mirror(
            "lti_token_cache_errors",
            "Token cache operations that failed (treated as misses)",
            |s| {
                s.services
                    .as_ref()
                    .map_or(0, |c| c.token_stats().cache_errors)
            },
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                in_flight,
                launches,
                logins,
                launch_seconds,
                login_seconds,
                platform_messages,
                store_seconds,
                store_errors,
                sources: Mutex::new(Sources::default()),
                mirrored: Mutex::new(Mirrored { counters }),
            }),
        }
    }

    /// Reports the JWKS cache's counters.
    pub fn watch_jwks(&self, jwks: lti_http::JwksCache) {
        self.sources().jwks = Some(jwks);
    }

    /// Reports the service client's token counters.
    pub fn watch_services(&self, client: Arc<lti_http::ServiceClient>) {
        self.sources().services = Some(client);
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, Sources> {
        self.inner
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        {
            let sources = self.sources();
            let mirrored = self
                .inner
                .mirrored
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (counter, read) in &mirrored.counters {
                let now = read(&sources);
                counter.inc_by(now.saturating_sub(counter.get()));
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.inner.registry).is_err() {
            tracing::error!("encoding the metrics failed");
        }
        out
    }

    fn observe_store(
        &self,
        store: &'static str,
        op: &'static str,
        started: Instant,
        error: Option<&RegistryError>,
    ) {
        self.inner
            .store_seconds
            .get_or_create(&StoreOpLabels { store, op })
            .observe(started.elapsed().as_secs_f64());
        // A replayed nonce or an unknown state is an answer, not a failure.
        if let Some(e) = error
            && !matches!(
                e,
                RegistryError::NonceReplayed { .. }
                    | RegistryError::StateNotFound
                    | RegistryError::NotFound { .. }
            )
        {
            self.inner
                .store_errors
                .get_or_create(&StoreErrorLabels {
                    store,
                    op,
                    code: e.code(),
                })
                .inc();
        }
    }
}

/// Decrements the in-flight gauge when the request ends (or is dropped).
struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The outcome label of a response: `ok`, the refusal code it carries, or
/// `http_<status>` for a refusal without one (a body too large, a timeout).
fn outcome_of(response: &Response) -> String {
    if let Some(code) = response.extensions().get::<lti_tool::web::ErrorCode>() {
        return code.0.to_owned();
    }
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        "ok".to_owned()
    } else {
        format!("http_{}", status.as_u16())
    }
}

/// The middleware of `lti serve`: in-flight requests, and the outcome and
/// duration of logins and launches.
pub(crate) async fn track_tool(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let m = &metrics.inner;
    m.in_flight.inc();
    let _guard = InFlight(m.in_flight.clone());
    let path = request.uri().path();
    let kind = if path == lti_axum::LOGIN_PATH {
        Some(false)
    } else if path == lti_axum::LAUNCH_PATH && request.method() == Method::POST {
        Some(true)
    } else {
        None
    };
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(launch) = kind {
        let labels = OutcomeLabels {
            outcome: outcome_of(&response),
        };
        let seconds = started.elapsed().as_secs_f64();
        if launch {
            m.launches.get_or_create(&labels).inc();
            m.launch_seconds.observe(seconds);
        } else {
            m.logins.get_or_create(&labels).inc();
            m.login_seconds.observe(seconds);
        }
    }
    response
}

/// The middleware of `lti platform`: in-flight requests and the outcome of
/// the authorization, token and service endpoints.
pub(crate) async fn track_platform(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let m = &metrics.inner;
    m.in_flight.inc();
    let _guard = InFlight(m.in_flight.clone());
    let path = request.uri().path();
    let message = if path == "/auth" {
        Some("auth")
    } else if path == "/token" {
        Some("token")
    } else if path.starts_with("/lti/") {
        Some("services")
    } else {
        None
    };
    let response = next.run(request).await;
    if let Some(message) = message {
        let status = response.status();
        let outcome = if status.is_success() || status.is_redirection() {
            "ok".to_owned()
        } else {
            format!("http_{}", status.as_u16())
        };
        m.platform_messages
            .get_or_create(&MessageLabels { message, outcome })
            .inc();
    }
    response
}

async fn scrape(State(metrics): State<Metrics>) -> Response {
    let mut response = metrics.render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "not found: the metrics listener serves GET /metrics only\n",
    )
        .into_response()
}

/// The router of the metrics listener: `GET /metrics`.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .fallback(not_found)
        .with_state(metrics)
}

/// Serves `metrics` on `listener` until `shutdown` completes.
///
/// # Errors
/// [`crate::AppError::Io`] when the server fails.
pub async fn serve_metrics(
    metrics: Metrics,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), crate::AppError> {
    let addr = listener.local_addr().ok();
    tracing::info!(?addr, "metrics listening");
    crate::serve_http(
        listener,
        metrics_router(metrics),
        crate::ServerLimits::default(),
        shutdown,
    )
    .await
}

/// Serves `router` on `listener` as [`crate::serve_http`] does and the
/// metrics on their own listener, until `shutdown` completes (both drain) or
/// the main server fails (the metrics listener then closes too).
///
/// # Errors
/// [`crate::AppError::Io`] when a server fails.
pub async fn serve_with_metrics(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: crate::ServerLimits,
    (metrics, metrics_listener): (Metrics, tokio::net::TcpListener),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), crate::AppError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut metrics_stopped = stopped.clone();
    let metrics_task = tokio::spawn(serve_metrics(metrics, metrics_listener, async move {
        // Also returns when the sender is dropped (the main server ended).
        let _ = metrics_stopped.wait_for(|v| *v).await;
    }));
    let main = crate::serve_http(listener, router, limits, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await;
    drop(stopped);
    let metrics = metrics_task.await.map_err(|e| {
        crate::AppError::io(
            "running",
            "metrics server task",
            std::io::Error::other(e.to_string()),
        )
    })?;
    main.and(metrics)
}

/// Times one store operation.
macro_rules! timed {
    ($self:ident, $op:literal, $call:expr) => {{
        let started = Instant::now();
        let out = $call.await;
        $self
            .metrics
            .observe_store($self.store, $op, started, out.as_ref().err());
        out
    }};
}

/// A store handle whose operations are timed and whose failures are counted.
struct Timed<T: ?Sized> {
    inner: Arc<T>,
    store: &'static str,
    metrics: Metrics,
}

#[async_trait]
impl LaunchStateStore for Timed<dyn LaunchStateStore> {
    async fn save_state(&self, state: &LaunchState) -> lti_registry::Result<()> {
        timed!(self, "save_state", self.inner.save_state(state))
    }
    async fn consume_state(&self, state: &str) -> lti_registry::Result<LaunchState> {
        timed!(self, "consume_state", self.inner.consume_state(state))
    }
}

#[async_trait]
impl NonceStore for Timed<dyn NonceStore> {
    async fn record_nonce(
        &self,
        issuer: &str,
        nonce: &str,
        expires_at: i64,
    ) -> lti_registry::Result<()> {
        timed!(
            self,
            "record_nonce",
            self.inner.record_nonce(issuer, nonce, expires_at)
        )
    }
}

#[async_trait]
impl OAuth1NonceStore for Timed<dyn OAuth1NonceStore> {
    async fn record_oauth1_nonce(
        &self,
        consumer_key: &str,
        nonce: &str,
        expires_at: i64,
    ) -> lti_registry::Result<()> {
        timed!(
            self,
            "record_oauth1_nonce",
            self.inner
                .record_oauth1_nonce(consumer_key, nonce, expires_at)
        )
    }
}

#[async_trait]
impl LaunchDataStore for Timed<dyn LaunchDataStore> {
    async fn save_launch(
        &self,
        launch_id: &str,
        data: serde_json::Value,
        expires_at: i64,
    ) -> lti_registry::Result<()> {
        timed!(
            self,
            "save_launch",
            self.inner.save_launch(launch_id, data, expires_at)
        )
    }
    async fn load_launch(&self, launch_id: &str) -> lti_registry::Result<serde_json::Value> {
        timed!(self, "load_launch", self.inner.load_launch(launch_id))
    }
    async fn delete_launch(&self, launch_id: &str) -> lti_registry::Result<bool> {
        timed!(self, "delete_launch", self.inner.delete_launch(launch_id))
    }
}

#[async_trait]
impl SharedValueStore for Timed<dyn SharedValueStore> {
    async fn get_value(&self, namespace: &str, key: &str) -> lti_registry::Result<Option<String>> {
        timed!(self, "get_value", self.inner.get_value(namespace, key))
    }
    async fn put_value(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> lti_registry::Result<()> {
        timed!(
            self,
            "put_value",
            self.inner.put_value(namespace, key, value, expires_at)
        )
    }
    async fn insert_value(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> lti_registry::Result<Option<String>> {
        timed!(
            self,
            "insert_value",
            self.inner.insert_value(namespace, key, value, expires_at)
        )
    }
    async fn delete_value(
        &self,
        namespace: &str,
        key: &str,
        only_if: Option<&str>,
    ) -> lti_registry::Result<bool> {
        timed!(
            self,
            "delete_value",
            self.inner.delete_value(namespace, key, only_if)
        )
    }
}

/// `store` with its short-lived and shared stores timed (labels `store` =
/// `launch_states`, `nonces`, `launch_data`, `oauth1_nonces`,
/// `shared_values`, `cached_values`).
pub(crate) fn instrument_store(store: Store, metrics: &Metrics) -> Store {
    fn timed<T: ?Sized>(inner: Arc<T>, store: &'static str, metrics: &Metrics) -> Arc<Timed<T>> {
        Arc::new(Timed {
            inner,
            store,
            metrics: metrics.clone(),
        })
    }
    let mut s = store;
    s.launch_states = timed(s.launch_states, "launch_states", metrics);
    s.nonces = timed(s.nonces, "nonces", metrics);
    s.launch_data = timed(s.launch_data, "launch_data", metrics);
    s.oauth1_nonces = timed(s.oauth1_nonces, "oauth1_nonces", metrics);
    s.shared_values = timed(s.shared_values, "shared_values", metrics);
    s.cached_values = timed(s.cached_values, "cached_values", metrics);
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::body::Body;
    use tower::ServiceExt as _;

    use super::*;

    const PLATFORM_PEM: &str = include_str!("../../../tests/fixtures/lti-platform/platform.pem");

    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().unwrap())
        })
    }

    #[tokio::test]
    async fn the_platform_counts_its_endpoints_by_outcome() {
        let key = lti_jose::SigningKey::from_pem(PLATFORM_PEM, lti_jose::Algorithm::RS256).unwrap();
        let dev =
            crate::devplatform::DevPlatform::with_signing_key("http://localhost:4000", &[], key)
                .unwrap();
        let metrics = Metrics::new();
        let app = crate::devplatform::router(dev).layer(axum::middleware::from_fn_with_state(
            metrics.clone(),
            track_platform,
        ));
        let token = axum::http::Request::post("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("grant_type=client_credentials"))
            .unwrap();
        let refused = app.clone().oneshot(token).await.unwrap();
        let status = refused.status().as_u16();
        assert!((400..500).contains(&status), "{status}");
        let health = axum::http::Request::get("/healthz")
            .body(Body::empty())
            .unwrap();
        assert_eq!(app.oneshot(health).await.unwrap().status(), StatusCode::OK);

        let text = metrics.render();
        assert_eq!(
            sample(
                &text,
                &format!(
                    "lti_platform_requests_total{{message=\"token\",outcome=\"http_{status}\"}}"
                )
            ),
            Some(1.0),
            "{text}"
        );
        assert!(!text.contains("message=\"auth\""), "{text}");
        assert_eq!(sample(&text, "lti_http_requests_in_flight"), Some(0.0));
    }

    #[tokio::test]
    async fn store_errors_are_counted_but_replays_are_answers() {
        let metrics = Metrics::new();
        let started = Instant::now();
        metrics.observe_store(
            "nonces",
            "record_nonce",
            started,
            Some(&RegistryError::NonceReplayed {
                namespace: "i".into(),
            }),
        );
        metrics.observe_store(
            "nonces",
            "record_nonce",
            started,
            Some(&RegistryError::unavailable("redis", "down")),
        );
        let text = metrics.render();
        assert_eq!(
            sample(
                &text,
                "lti_store_errors_total{store=\"nonces\",op=\"record_nonce\",code=\"store_unavailable\"}"
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(text.matches("lti_store_errors_total{").count(), 1, "{text}");
        assert_eq!(
            sample(
                &text,
                "lti_store_operation_duration_seconds_count{store=\"nonces\",op=\"record_nonce\"}"
            ),
            Some(2.0)
        );
    }
}
