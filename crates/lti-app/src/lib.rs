#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod admin;
mod config;
mod consumers;
pub mod devplatform;
mod error;
mod grades;
mod import;
mod inspector;
mod keys;
mod metrics;
mod provider11;
mod register;
mod serve_http;
mod server;

pub use config::{
    ApprovalMode, Config, ConsumerConfig, DEFAULT_BIND, DEFAULT_KEYS_DIR, DEFAULT_STORAGE_URL,
    DynamicRegistrationConfig, ENV_SETTINGS, EgressConfig, KeysConfig, MAX_CONNECTIONS_LIMIT,
    MessageConfig, MetricsConfig, Origin, PersonalDataMode, PlatformConfig, PlatformFileConfig,
    PrivacyConfig, Problem, ServerConfig, StorageConfig, UnknownDeploymentsMode, embedded_default,
};
pub use consumers::{
    NewConsumer, add_consumer, export_consumers, export_text, list_consumers, remove_consumer,
};
pub use error::AppError;
pub use import::{ImportedConsumer, import_consumers, parse_consumers_file};
pub use keys::{
    APP_SECRET_ENV, APP_SECRET_FILE, AppSecret, GeneratedKey, JWKS_FILE, PRIVATE_KEY_FILE, app_key,
    app_secret, install_tool_key, keygen, load_or_generate, resolve_app_secret,
};
pub use metrics::{
    CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics, metrics_router, serve_metrics,
    serve_with_metrics,
};
pub use register::{DEFAULT_REGISTRATION_SCOPES, REGISTER_PATH};
pub use serve_http::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_REQUEST_TIMEOUT, ServerLimits, serve_http,
};
pub use server::{
    App, AppState, BODY_LIMIT, INSPECTOR_PATH, LTI11_LAUNCH_PATH, RegistrationUrls, prepare,
    router, run, serve,
};

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM: the graceful-shutdown
/// trigger of `lti serve`.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
