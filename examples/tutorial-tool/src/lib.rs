//! The tool built step by step in `docs/tutorial.md`: LTI 1.3 on axum with
//! `lti-axum`, a launch page, an instructor-only page and a grade sent back
//! through Assignment and Grade Services. The tutorial quotes the regions
//! between the `ANCHOR` comments verbatim (`tests/tutorial_text.rs` checks it);
//! `tests/dev_platform.rs` launches it from the dev platform of `lti platform`.
#![forbid(unsafe_code)]

// ANCHOR: state
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{get, post};
use lti_axum::{LtiLaunch, RequireInstructor};
use lti_jose::SigningKey;
use lti_registry::{AppKey, PlatformRegistration, SecretCipher, SecretString};
use lti_services::{LtiServices, ServiceRegistration};
use lti_tool::Tool;
use lti_tool::html::escape;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The LTI tool: login, launch, JWKS (`lti-axum` finds it through `FromRef`).
    pub tool: Arc<Tool>,
    /// Clients for the platform's grade book (AGS) and roster (NRPS).
    pub services: LtiServices,
    /// The tool's signing key, which also signs the service token requests.
    pub key: Arc<SigningKey>,
}

impl FromRef<AppState> for Arc<Tool> {
    fn from_ref(state: &AppState) -> Self {
        state.tool.clone()
    }
}
// ANCHOR_END: state

/// The error type of [`build_state`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ANCHOR: build_state
/// Builds the tool for one platform. `base_url` is the tool's public URL;
/// `key_pem` its RSA signing key (PKCS#8 PEM, as `lti keygen` writes it).
///
/// # Errors
/// When the store, the key or the tool cannot be set up.
pub async fn build_state(
    base_url: &str,
    platform: PlatformRegistration,
    key_pem: String,
    allow_private_addresses: bool,
) -> Result<AppState, BoxError> {
    // Registrations, launch state, nonces and launches live in a store; secrets
    // in it are encrypted with an application key.
    let cipher = SecretCipher::aes256gcm(AppKey::generate("app-key-1")?, vec![])?;
    let store = lti_store::open("memory://", &lti_store::OpenOptions::new(cipher)).await?;
    store.registrations.insert_registration(&platform).await?;

    // The tool's key signs deep-linking responses and service token requests;
    // platforms fetch its public half from /.well-known/jwks.json.
    let key = SigningKey::from_pem(&key_pem, lti_jose::Algorithm::RS256)?;
    store
        .tool_keys
        .add_next_key(key.kid(), "RS256", &SecretString::new(key_pem))
        .await?;
    store.tool_keys.promote_next_key().await?;

    // Inside an LMS frame the browser may keep the login's state cookie only
    // if it is partitioned, or drop it: the platform's storage then binds it.
    // Outbound requests (the platform's JWKS, tokens, AGS) refuse private and
    // loopback addresses unless allowed: the dev platform runs on loopback.
    let mut client = lti_http::HyperClient::builder();
    if allow_private_addresses {
        client = client.allow_private_addresses();
    }
    let http: Arc<dyn lti_http::HttpClient> = Arc::new(client.build()?);
    let tool = Tool::builder(base_url, &store)
        .key_source(Arc::new(lti_http::JwksCache::new(http.clone())))
        .partitioned_state_cookie(true)
        .platform_storage(true)
        .build()?;
    let services = LtiServices::new(Arc::new(lti_http::ServiceClient::new(http)));
    Ok(AppState {
        tool: Arc::new(tool),
        services,
        key: Arc::new(key),
    })
}
// ANCHOR_END: build_state

// ANCHOR: app
/// The tool's routes: LTI's own (`/lti/login`, `/lti/launch`,
/// `/.well-known/jwks.json`, `/lti/deep-link`) and the application's.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/app", get(launched))
        .route("/app/teacher", get(teacher))
        .route("/app/done", post(done))
        .merge(lti_axum::routes())
        .with_state(state)
}
// ANCHOR_END: app

// ANCHOR: launched
/// The target link URI: the launch redirects here with `lti_launch_id`.
async fn launched(LtiLaunch(launch): LtiLaunch) -> Html<String> {
    let claims = launch.claims();
    let course = claims.context.as_ref().and_then(|c| c.title.as_deref());
    let id = escape(launch.launch_id());
    Html(format!(
        "<h1>Hello {}</h1>\
         <p>Course: {}</p>\
         <p>Instructor: {}</p>\
         <form method=\"post\" action=\"/app/done?lti_launch_id={id}\">\
         <button>I am done</button></form>\
         <p><a href=\"/app/teacher?lti_launch_id={id}\">Teacher page</a></p>",
        escape(claims.name.as_deref().unwrap_or("there")),
        escape(course.unwrap_or("none")),
        launch.roles().is_instructor_or_higher(),
    ))
}
// ANCHOR_END: launched

// ANCHOR: teacher
/// Instructors (and administrators) only; anyone else gets a 403 page.
async fn teacher(RequireInstructor(launch): RequireInstructor) -> Html<String> {
    Html(format!(
        "<h1>Teacher page</h1><p>Deployment {}</p>",
        escape(launch.deployment_id())
    ))
}
// ANCHOR_END: teacher

// ANCHOR: done
/// Sends the learner a full score through Assignment and Grade Services, on a
/// line item the tool finds or creates under its own resource id.
async fn done(
    State(state): State<AppState>,
    LtiLaunch(launch): LtiLaunch,
) -> (StatusCode, Html<String>) {
    let platform = launch.registration();
    let profile = platform.quirks.as_str().parse().unwrap_or_default();
    let registration = ServiceRegistration::new(
        platform.issuer.clone(),
        platform.client_id.clone(),
        platform.auth_token_url.clone(),
        state.key.clone(),
    )
    .with_profile(profile);
    let user = launch.sub().unwrap_or_default();
    let score = lti_message::ags::Score::completed_fully_graded(
        user,
        1.0,
        1.0,
        lti_message::Timestamp::now(),
    );
    let line_item = lti_message::ags::LineItem::new("Tutorial", 1.0);
    let sent = async {
        let ags = state
            .services
            .ags_from_launch(&registration, launch.claims())?;
        ags.find_or_create_line_item_and_score("tutorial", &line_item, &score)
            .await
    };
    match sent.await {
        Ok(_) => (StatusCode::OK, Html("<p>Score sent.</p>".to_owned())),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Html(format!(
                "<p>The score was not sent: <code>{}</code> {}</p>",
                escape(e.code()),
                escape(&e.to_string())
            )),
        ),
    }
}
// ANCHOR_END: done
