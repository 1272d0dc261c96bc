//! `lti serve`: wiring the configuration into stores, keys, the tool and routes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lti_http::{HttpClient, HyperClient, JwksCache, ServiceClient, SharedTokenCache};
use lti_registry::{
    Consumer, Deployment, KeySource, PlatformRegistration, QuirkProfile, RegistryError,
    SecretCipher, Store,
};
use lti_services::LtiServices;
use lti_tool::Tool;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::error::AppError;
use crate::keys;

/// The request body limit of every route: 64 KiB.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The path of the launch inspector (the target link URI to register, and the
/// tool's landing URL: a launch whose target link URI is the launch URL itself
/// lands here).
pub const INSPECTOR_PATH: &str = "/lti/app";
/// The LTI 1.1 launch path.
pub const LTI11_LAUNCH_PATH: &str = "/lti11/launch";

/// The shared state of every route: one allocation behind an `Arc`, so the
/// per-request clone that axum makes for each handler is one reference count, not
/// a copy of every store handle and the public URL.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Shared>,
}

/// What [`AppState`] shares.
pub(crate) struct Shared {
    pub(crate) tool: Arc<Tool>,
    pub(crate) store: Store,
    pub(crate) services: LtiServices,
    /// The LTI 1.1 provider flow (visits, session cookie, new-window fallback).
    pub(crate) lti11_flow: Arc<lti11::ProviderFlow>,
    /// The `[egress]` origin allow-list (LTI 1.1 outcome URLs are checked
    /// against it before a grade is queued; the services clients carry it too).
    pub(crate) egress: lti_http::EgressPolicy,
    pub(crate) public_url: String,
    /// The Dynamic Registration flow (`[dynamic_registration]` enabled).
    pub(crate) registration: Option<Arc<lti_tool::registration::DynamicRegistration>>,
    /// Starts a round of the grade outbox worker right after a submit.
    pub(crate) outbox_waker: lti_services::OutboxWaker,
}

impl FromRef<AppState> for Arc<Tool> {
    fn from_ref(state: &AppState) -> Self {
        state.inner.tool.clone()
    }
}

/// The URLs to enter in an LMS when registering this tool. Its `Display` is the
/// start-up banner: the URLs, then what to type in each LMS's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationUrls {
    /// OIDC login initiation URL.
    pub login: String,
    /// Redirect (launch) URL: takes the platform's POST. An LMS with a single
    /// "launch URL" field (Open edX's "Tool Launch URL") gets this one; it also
    /// works as the target link URI (the launch then lands on the inspector).
    pub launch: String,
    /// Public key set URL.
    pub jwks: String,
    /// Target link URI (also the deep-linking URL).
    pub target_link_uri: String,
    /// LTI 1.1 launch URL.
    pub lti11_launch: String,
    /// The LTI Dynamic Registration URL (`GET /lti/register`), when
    /// `[dynamic_registration]` is enabled.
    pub register: Option<String>,
}

impl RegistrationUrls {
    /// The URLs under a public base URL ending in `/`.
    pub fn new(public_url: &str) -> Self {
        Self {
            login: format!("{public_url}lti/login"),
            launch: format!("{public_url}lti/launch"),
            jwks: format!("{public_url}.well-known/jwks.json"),
            target_link_uri: format!("{public_url}{}", INSPECTOR_PATH.trim_start_matches('/')),
            lti11_launch: format!("{public_url}lti11/launch"),
            register: None,
        }
    }

    /// The same URLs with the dynamic registration URL (builder style).
    #[must_use]
    pub fn with_register(mut self, public_url: &str) -> Self {
        self.register = Some(format!(
            "{public_url}{}",
            crate::register::REGISTER_PATH.trim_start_matches('/')
        ));
        self
    }
}

impl std::fmt::Display for RegistrationUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            login,
            launch,
            jwks,
            target_link_uri: target,
            lti11_launch,
            register,
        } = self;
        if let Some(register) = register {
            writeln!(
                f,
                "Register in one step (LTI Dynamic Registration; Canvas, Moodle 4.1+, Brightspace):"
            )?;
            writeln!(f, "  Registration URL          : {register}")?;
            writeln!(f, "Or by hand:")?;
        }
        writeln!(f, "Register this tool in your LMS with:")?;
        writeln!(f, "  OIDC login initiation URL : {login}")?;
        writeln!(f, "  Redirect / launch URL     : {launch}")?;
        writeln!(f, "  Public keyset (JWKS) URL  : {jwks}")?;
        writeln!(f, "  Target link URI           : {target}")?;
        writeln!(f, "  Deep linking URL          : {target}")?;
        writeln!(f, "  LTI 1.1 launch URL        : {lti11_launch}")?;
        writeln!(f, "Field by field (details in docs/lms/):")?;
        writeln!(
            f,
            "  Canvas      : Redirect URIs = {launch} ; Target Link URI = {target} ; OpenID Connect Initiation Url = {login} ; Public JWK URL = {jwks}"
        )?;
        writeln!(
            f,
            "  Moodle      : Tool URL = {target} ; Redirection URI(s) = {launch} ; Initiate login URL = {login} ; Keyset URL = {jwks}"
        )?;
        writeln!(
            f,
            "  Open edX    : Tool Launch URL = {launch} (one URL for redirect and target) ; Tool Initiate Login URL = {login} ; Tool Keyset URL = {jwks}"
        )?;
        writeln!(
            f,
            "  Blackboard  : Tool Redirect URL(s) = {launch} ; Login Initiation URL = {login} ; Tool JWKS URL = {jwks} ; placement Target Link URI = {target}"
        )?;
        writeln!(
            f,
            "  Brightspace : Redirect URLs = {launch} ; OpenID Connect Login URL = {login} ; Keyset URL = {jwks} ; link URL = {target}"
        )?;
        writeln!(
            f,
            "  Sakai       : Launch URL = {target} ; Tool Redirect Endpoint(s) = {launch} ; Tool OIDC Login Initiation URL = {login} ; LTI 1.3 Tool Keyset URL = {jwks}"
        )?;
        write!(
            f,
            "A launch whose target link URI is the launch URL ({launch}, with or without a query) lands on {target}."
        )
    }
}

/// A prepared application: the router and what to tell the operator.
pub struct App {
    /// The routes with their state.
    pub router: Router,
    /// The URLs to register in an LMS.
    pub urls: RegistrationUrls,
    /// Whether a key was generated on this start.
    pub generated_key: bool,
    /// The tool key's kid.
    pub kid: String,
    /// The server's timeouts and connection limit (`[server]` of the configuration).
    pub limits: crate::ServerLimits,
    /// The grade outbox worker [`run`] runs beside the server.
    pub(crate) worker: lti_services::OutboxWorker,
    /// The server's metrics (served by [`run`] when `metrics_bind` is set).
    pub metrics: crate::Metrics,
    /// The address of the metrics listener (`[metrics] bind`); `None`: no metrics endpoint.
    pub metrics_bind: Option<SocketAddr>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("urls", &self.urls)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Opens the stores, installs the key and the configured platforms and
/// consumers, builds the tool and the routes.
///
/// # Errors
/// [`AppError::Config`] for semantic problems, [`AppError::Io`] / [`AppError::Key`]
/// for the key directory, [`AppError::Store`], [`AppError::Tool`], [`AppError::Http`].
pub async fn prepare(config: &Config) -> Result<App, AppError> {
    let problems = config.validate();
    if !problems.is_empty() {
        return Err(AppError::Config(problems));
    }
    let dir = &config.keys.dir;
    let (signing_key, pem, generated_key) = keys::load_or_generate(dir)?;
    for url in std::iter::once(&config.storage.url).chain(config.storage.nonce_url.as_ref()) {
        create_sqlite_parent(url)?;
    }
    let app_secret = keys::resolve_app_secret(config).await?;
    let cipher = SecretCipher::aes256gcm(app_secret.app_key()?, vec![])?;
    let options = lti_store::OpenOptions::new(cipher);
    let store = lti_store::open_split(
        &config.storage.url,
        config.storage.nonce_url.as_deref(),
        &options,
    )
    .await?;
    if is_shared(&config.storage.url) {
        keys::check_app_secret(&store, &app_secret).await?;
    }
    let metrics = crate::Metrics::new();
    let store = crate::metrics::instrument_store(store, &metrics);
    let kid = signing_key.kid().to_owned();
    keys::install_tool_key(&store, &kid, &pem).await?;
    install_platforms(&store, config).await?;
    install_consumers(&store, config).await?;

    let public_url = config.public_url();
    let mut urls = RegistrationUrls::new(&public_url);
    if config.dynamic_registration.enabled {
        urls = urls.with_register(&public_url);
    }
    let egress = config
        .egress
        .policy()
        .map_err(|p| AppError::Config(vec![p]))?;
    let http: Arc<dyn HttpClient> = Arc::new(http_client(config)?);
    // The state cookie is always `Secure; SameSite=None` (the public URL is https,
    // or http on loopback, which browsers treat as a secure context) and always
    // `Partitioned` (CHIPS): it is only ever read back by the launch that follows
    // the login in the same LMS frame, hence in the same top-level-site partition,
    // so it keeps working when the browser blocks third-party cookies.
    let jwks = JwksCache::new(http.clone());
    metrics.watch_jwks(jwks.clone());
    let tool = Tool::builder(public_url.clone(), &store)
        .key_source(Arc::new(jwks))
        .state_cookie_secret(&app_secret.derive("state-cookie"))
        .partitioned_state_cookie(true)
        // A launch whose target is the launch URL itself (one-URL LMSs such as
        // Open edX) lands on the inspector.
        .landing_uri(urls.target_link_uri.clone())
        .platform_storage(config.server.platform_storage)
        .personal_data(match config.privacy.personal_data {
            crate::config::PersonalDataMode::Store => lti_tool::PersonalData::Store,
            crate::config::PersonalDataMode::Drop => lti_tool::PersonalData::Drop,
        })
        .build()?;
    let mut service_client = ServiceClient::new(http.clone());
    // Several instances share one token per registration and scope set (and
    // one token request on a cold start) through the shared store.
    let ephemeral_url = config
        .storage
        .nonce_url
        .as_deref()
        .unwrap_or(&config.storage.url);
    if is_shared(ephemeral_url) {
        service_client = service_client
            .with_token_cache(Arc::new(SharedTokenCache::new(store.cached_values.clone())));
    }
    let service_client = Arc::new(service_client);
    metrics.watch_services(service_client.clone());
    let services = LtiServices::new(service_client).with_egress_policy(egress.clone());
    let lti11 = lti11::LaunchVerifier::new(lti11::OAuthVerifier::new(
        store.consumers.clone(),
        store.oauth1_nonces.clone(),
    ));
    let registration = crate::register::dynamic_registration(config, &urls, http.clone(), &store);
    // Secure like the state cookie: http on loopback is a secure context.
    let lti11_flow = lti11::ProviderFlow::new(
        public_url.clone(),
        lti11,
        store.provider.clone(),
        store.launch_data.clone(),
    )
    .secure_cookie(true);
    let tool = Arc::new(tool);
    let worker = crate::grades::worker(&store, &services, &tool, &http, &egress);
    let state = AppState {
        inner: Arc::new(Shared {
            lti11_flow: Arc::new(lti11_flow),
            outbox_waker: worker.waker(),
            tool,
            store,
            services,
            egress,
            public_url: public_url.clone(),
            registration,
        }),
    };
    let router = router(state).layer(axum::middleware::from_fn_with_state(
        metrics.clone(),
        crate::metrics::track_tool,
    ));
    let metrics_bind = match &config.metrics.bind {
        Some(b) => Some(b.parse::<SocketAddr>().map_err(|_| {
            AppError::Config(vec![crate::Problem {
                path: "metrics.bind".to_owned(),
                message: format!(
                    "expected an IP address and port such as 127.0.0.1:9100, found {b:?}"
                ),
            }])
        })?),
        None => None,
    };
    Ok(App {
        router,
        urls,
        generated_key,
        kid,
        limits: config.server.limits(),
        worker,
        metrics,
        metrics_bind,
    })
}

/// Whether a storage URL names a store several instances share (PostgreSQL,
/// Redis), as opposed to one process's (memory, SQLite).
pub(crate) fn is_shared(url: &str) -> bool {
    let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
    matches!(
        scheme.as_str(),
        "postgres" | "postgresql" | "redis" | "rediss"
    )
}

/// The outbound HTTP client: non-public addresses only with
/// `egress.allow_private_addresses` (said loudly at start-up).
fn http_client(config: &Config) -> Result<HyperClient, AppError> {
    let mut builder = HyperClient::builder();
    if config.egress.allow_private_addresses {
        tracing::warn!(
            "egress.allow_private_addresses is on: service, outcome, token and JWKS requests may reach loopback and private addresses"
        );
        builder = builder.allow_private_addresses();
    }
    Ok(builder.build()?)
}

/// Every route of `lti serve`.
pub fn router(state: AppState) -> Router {
    let lti = lti_axum::LtiRoutes::new()
        .deep_link_path(None)
        .body_limit(BODY_LIMIT)
        .into_router::<AppState>();
    Router::new()
        .route("/healthz", get(healthz))
        .route(INSPECTOR_PATH, get(crate::inspector::inspector))
        .route("/lti/app/ags", get(crate::inspector::ags_page))
        .route(
            "/lti/app/ags/lineitems",
            post(crate::inspector::create_line_item),
        )
        .route("/lti/app/ags/scores", post(crate::inspector::post_score))
        .route("/lti/app/nrps", get(crate::inspector::nrps_page))
        .route("/lti/app/deep-link", post(crate::inspector::deep_link))
        .route(
            crate::register::REGISTER_PATH,
            get(crate::register::register),
        )
        .route(LTI11_LAUNCH_PATH, post(crate::provider11::launch))
        .route("/lti11/visits/{visit}", get(crate::provider11::visit_page))
        .route(
            "/lti11/visits/{visit}/new-window",
            post(crate::provider11::new_window),
        )
        .route("/lti11/outcomes", post(crate::inspector::lti11_outcome))
        .merge(lti)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Headers on every response: framing allowed (the tool runs in LMS iframes), no
/// referrer (URLs carry the launch id), no MIME sniffing, and no script at all
/// unless the page says otherwise. A page's own policy is kept: its
/// `Content-Security-Policy` is enforced beside this one (the script-hash
/// policies of `lti-tool`'s Platform Storage and deep-linking pages), and its
/// `Referrer-Policy` stands (the storage check page's `same-origin`, which its
/// same-origin confirmation needs to carry its `Origin`).
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let policy = if h.contains_key(header::CONTENT_SECURITY_POLICY) {
        "frame-ancestors *; base-uri 'none'; object-src 'none'"
    } else {
        "frame-ancestors *; base-uri 'none'; object-src 'none'; script-src 'none'"
    };
    h.append(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

async fn not_found(headers: axum::http::HeaderMap) -> Response {
    crate::inspector::page_error(
        &headers,
        StatusCode::NOT_FOUND,
        "not_found",
        "not found: expected one of the tool's routes, found an unknown path",
    )
}

/// `GET /healthz`: 200 when the stores answer, 503 when one does not.
async fn healthz(State(state): State<AppState>) -> Response {
    let durable = state
        .inner
        .store
        .registrations
        .get_registration("healthz-probe", "healthz-probe")
        .await
        .map(drop);
    let ephemeral = state
        .inner
        .store
        .launch_data
        .load_launch("healthz-probe")
        .await
        .map(drop);
    let reachable =
        |r: &Result<(), RegistryError>| !matches!(r, Err(RegistryError::StoreUnavailable { .. }));
    let ok = reachable(&durable) && reachable(&ephemeral);
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "unavailable" },
        "store": if reachable(&durable) { "reachable" } else { "unreachable" },
        "nonce_store": if reachable(&ephemeral) { "reachable" } else { "unreachable" },
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

fn create_sqlite_parent(url: &str) -> Result<(), AppError> {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(());
    };
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path.starts_with(':') {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| AppError::io("creating directory", parent, e))?;
    }
    Ok(())
}

async fn install_platforms(store: &Store, config: &Config) -> Result<(), AppError> {
    for p in &config.platforms {
        let registration = registration_from_config(p)?;
        match store.registrations.insert_registration(&registration).await {
            Ok(()) => {}
            Err(RegistryError::Conflict { .. }) => {
                store
                    .registrations
                    .update_registration(&registration)
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(issuer = %p.issuer, client_id = %p.client_id, "platform registered");
    }
    for f in &config.platform_files {
        let summary =
            crate::admin::import_platform_file(store, &f.path, f.no_deployments, true).await?;
        for r in summary.inserted.iter().chain(&summary.updated) {
            if r.deployments.is_empty()
                && f.no_deployments == crate::config::UnknownDeploymentsMode::Accept
            {
                tracing::warn!(
                    issuer = %r.issuer,
                    client_id = %r.client_id,
                    "platform registered without deployment ids: every deployment it signs for is accepted (no_deployments = \"accept\")"
                );
            } else {
                tracing::info!(issuer = %r.issuer, client_id = %r.client_id, file = %f.path.display(), "platform registered");
            }
        }
        for note in &summary.notes {
            tracing::info!(file = %f.path.display(), "{note}");
        }
    }
    Ok(())
}

async fn install_consumers(store: &Store, config: &Config) -> Result<(), AppError> {
    for c in &config.consumers {
        let name = c.name.clone().unwrap_or_else(|| c.key.clone());
        upsert_consumer(store, &c.key, &c.secret, &name).await?;
        if let Some(silo) = &c.silo {
            store
                .provider
                .assign_silo(&c.key, &lti_registry::SiloId(silo.clone()))
                .await?;
        }
    }
    Ok(())
}

/// The registration a `[[platforms]]` entry (or `lti platforms add`) stands
/// for: the JWKS URL as key source, the quirk profile (Brightspace's token
/// audience with it), every deployment id active.
///
/// # Errors
/// [`AppError::Store`] for an unknown profile name.
pub(crate) fn registration_from_config(
    p: &crate::config::PlatformConfig,
) -> Result<PlatformRegistration, AppError> {
    let quirks = match &p.profile {
        Some(name) => name.parse::<QuirkProfile>()?,
        None => QuirkProfile::Generic,
    };
    let mut registration = PlatformRegistration::new(
        p.issuer.clone(),
        p.client_id.clone(),
        p.auth_login_url.clone(),
        p.auth_token_url.clone(),
        KeySource::JwksUrl {
            url: p.jwks_url.clone(),
        },
    )
    .with_quirks(quirks);
    if quirks == QuirkProfile::Brightspace {
        registration = registration.with_token_audience("https://api.brightspace.com/auth/token");
    }
    for d in &p.deployment_ids {
        registration = registration.with_deployment(Deployment::active(d.clone()));
    }
    Ok(registration)
}

/// Inserts an LTI 1.1 consumer, or replaces the secret and name of an existing one.
pub(crate) async fn upsert_consumer(
    store: &Store,
    key: &str,
    secret: &str,
    name: &str,
) -> Result<(), AppError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let consumer = Consumer::new(key, secret, name, now);
    match store.consumers.insert_consumer(&consumer).await {
        Ok(()) => Ok(()),
        Err(RegistryError::Conflict { .. }) => {
            let mut existing = store.consumers.get_consumer(key).await?;
            existing.secret = consumer.secret;
            existing.name = consumer.name;
            store.consumers.update_consumer(&existing).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs the server on `listener` until `shutdown` completes, then drains
/// in-flight requests (graceful shutdown).
///
/// # Errors
/// As [`prepare`], plus [`AppError::Io`] when the server fails.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let app = prepare(&config).await?;
    run(app, listener, shutdown).await
}

/// Serves a prepared application (see [`serve`]).
///
/// # Errors
/// [`AppError::Io`] when the server fails.
pub async fn run(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    tracing::info!(?addr, limits = ?app.limits, "listening");
    // The grade outbox worker stops with the server: it finishes the round
    // in progress (its attempts are reported), so nothing stays leased.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let worker = app.worker.spawn(async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    });
    let server_shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let served = match app.metrics_bind {
        None => crate::serve_http(listener, app.router, app.limits, server_shutdown).await,
        Some(metrics_addr) => match TcpListener::bind(metrics_addr).await {
            Err(e) => Err(AppError::io("binding", metrics_addr.to_string(), e)),
            Ok(metrics_listener) => {
                crate::metrics::serve_with_metrics(
                    listener,
                    app.router,
                    app.limits,
                    (app.metrics, metrics_listener),
                    server_shutdown,
                )
                .await
            }
        },
    };
    if served.is_err() {
        // The server failed without a shutdown: nothing will stop the worker.
        worker.abort();
    } else if let Err(e) = worker.await {
        tracing::warn!(error = %e, "the grade outbox worker ended abnormally");
    }
    served
}
