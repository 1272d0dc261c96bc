//! Adding LTI 1.3 to an existing axum server: the application keeps its own
//! state and routes, and gains login, launch and JWKS routes plus extractors
//! for the verified launch. `main.rs` runs it; `tests/launch.rs` drives a launch.
//!
//! State-changing routes take [`LtiLaunch`] (or a role guard), which refuses a
//! POST that only the ambient launch cookie authorises (`csrf_check_failed`):
//! the page's form names the launch and carries its CSRF token in its `action`
//! ([`lti_axum::launch_query`]).
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{get, post};
use lti_axum::{LtiLaunch, RequireInstructor};
use lti_registry::{AppKey, PlatformRegistration, SecretCipher, SecretString};
use lti_services::LtiServices;
use lti_tool::Tool;
use lti_tool::html::escape;

/// The existing application's state, extended with the LTI tool.
#[derive(Clone)]
pub struct AppState {
    /// The LTI tool (the adapter finds it through `FromRef`).
    pub tool: Arc<Tool>,
    /// The application's own data: a visit counter.
    pub visits: Arc<AtomicU64>,
    /// AGS / NRPS clients sharing one access-token cache.
    pub services: LtiServices,
}

impl FromRef<AppState> for Arc<Tool> {
    fn from_ref(state: &AppState) -> Self {
        state.tool.clone()
    }
}

/// Builds the tool: an in-memory store, the tool's signing key (PKCS#8 PEM, as
/// `lti keygen` writes it), one platform.
///
/// # Errors
/// When the store, the key or the tool cannot be set up.
pub async fn build_tool(
    base_url: &str,
    platform: PlatformRegistration,
    key_pem: String,
) -> Result<Tool, Box<dyn std::error::Error + Send + Sync>> {
    let cipher = SecretCipher::aes256gcm(AppKey::generate("k1")?, vec![])?;
    let store = lti_store::open("memory://", &lti_store::OpenOptions::new(cipher)).await?;
    store.registrations.insert_registration(&platform).await?;
    let key = lti_jose::SigningKey::from_pem(&key_pem, lti_jose::Algorithm::RS256)?;
    store
        .tool_keys
        .add_next_key(key.kid(), "RS256", &SecretString::new(key_pem))
        .await?;
    store.tool_keys.promote_next_key().await?;
    // A launch whose target link URI is the launch URL itself (LMSs with one
    // "launch URL" field) lands on the app's page.
    let base = base_url.trim_end_matches('/');
    Ok(Tool::builder(base_url, &store)
        .landing_uri(format!("{base}/app"))
        .build()?)
}

/// The services clients over the default HTTP client (which refuses
/// loopback and private addresses).
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn default_services() -> Result<LtiServices, lti_http::Error> {
    let http = lti_http::HyperClient::builder().build()?;
    Ok(LtiServices::new(Arc::new(lti_http::ServiceClient::new(
        Arc::new(http),
    ))))
}

/// The application's routes with the LTI routes merged in; `services` make
/// the AGS and NRPS calls ([`default_services`]).
pub fn app(tool: Arc<Tool>, services: LtiServices) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/app", get(launched))
        .route("/app/teacher", get(teacher))
        .route("/app/like", post(like))
        .route("/app/grade", post(grade))
        .merge(lti_axum::routes())
        .with_state(AppState {
            tool,
            visits: Arc::new(AtomicU64::new(0)),
            services,
        })
}

async fn home(State(state): State<AppState>) -> Html<String> {
    let n = state.visits.fetch_add(1, Ordering::Relaxed) + 1;
    Html(format!("<p>An existing page, visited {n} times.</p>"))
}

/// The launch's target: `lti_launch_id` in the query selects the launch. Its
/// form posts back with the launch id and the launch's CSRF token.
async fn launched(State(state): State<AppState>, LtiLaunch(launch): LtiLaunch) -> Html<String> {
    let context = launch
        .claims()
        .context
        .as_ref()
        .and_then(|c| c.title.clone())
        .unwrap_or_default();
    let action = format!(
        "/app/like?{}",
        lti_axum::launch_query(&state.tool, launch.launch_id())
    );
    Html(format!(
        "<h1>Hello {}</h1><p>Course: {}</p><p><a href=\"/app/teacher?lti_launch_id={}\">Teacher page</a></p><form method=\"post\" action=\"{}\"><button>Like this course</button></form><form method=\"post\" action=\"{}\"><button>I'm done</button></form>",
        escape(launch.claims().name.as_deref().unwrap_or("there")),
        escape(&context),
        escape(launch.launch_id()),
        escape(&action),
        escape(&action.replacen("/app/like", "/app/grade", 1)),
    ))
}

/// Grades the launch's own line item (full marks) through AGS: the launch's
/// platform registration, claims and the tool's key give the clients in one
/// call. A launch without an AGS claim, or without the score scope, gets a
/// 400 naming the code (`missing_endpoint`, `scope_not_granted`).
async fn grade(
    State(state): State<AppState>,
    LtiLaunch(launch): LtiLaunch,
) -> (StatusCode, Html<String>) {
    let score = lti_message::ags::Score::completed_fully_graded(
        launch.sub().unwrap_or_default(),
        1.0,
        1.0,
        lti_message::Timestamp::now(),
    );
    let key = match state.tool.active_signing_key().await {
        Ok(key) => key,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, Html(escape(e.code()))),
    };
    let sent = async {
        state
            .services
            .for_launch(launch.registration(), key, launch.claims())
            .ags()?
            .grade_launch_line_item(&score)
            .await
    };
    match sent.await {
        Ok(()) => (StatusCode::OK, Html("<p>Score sent.</p>".to_owned())),
        Err(e) => (
            StatusCode::from_u16(e.status_hint()).unwrap_or(StatusCode::BAD_GATEWAY),
            Html(format!(
                "<p>Not graded: <code>{}</code> {}</p>",
                escape(e.code()),
                escape(&e.to_string())
            )),
        ),
    }
}

/// A state-changing route: `LtiLaunch` checks the CSRF token the form carries
/// (a cross-site page can make the browser post here with the launch cookie,
/// but cannot know the token).
async fn like(State(state): State<AppState>, LtiLaunch(launch): LtiLaunch) -> Html<String> {
    let n = state.visits.fetch_add(1, Ordering::Relaxed) + 1;
    Html(format!(
        "<p>Thanks, {}: {n} likes.</p>",
        escape(launch.sub().unwrap_or("someone"))
    ))
}

/// Instructors (or administrators) only; others get a 403 page.
async fn teacher(RequireInstructor(launch): RequireInstructor) -> Html<String> {
    Html(format!(
        "<p>Teacher tools for deployment {}</p>",
        escape(launch.deployment_id())
    ))
}
