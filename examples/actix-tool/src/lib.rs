//! Adding LTI 1.3 to an existing actix-web server: the application keeps its own
//! data and routes, and gains login, launch and JWKS routes plus extractors for
//! the verified launch. `main.rs` runs it; `tests/launch.rs` drives a launch.
//!
//! State-changing routes take [`LtiLaunch`] (or a role guard), which refuses a
//! POST that only the ambient launch cookie authorises (`csrf_check_failed`):
//! the page's form names the launch and carries its CSRF token in its `action`
//! ([`lti_actix::launch_query`]).
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{HttpResponse, web};
use lti_actix::{LtiLaunch, RequireInstructor};
use lti_registry::{AppKey, PlatformRegistration, SecretCipher, SecretString};
use lti_services::LtiServices;
use lti_tool::Tool;
use lti_tool::html::escape;

/// Builds the tool: an in-memory store, its RS256 signing key (PKCS#8 PEM), one platform.
///
/// # Errors
/// When the store, the key or the tool cannot be set up.
pub async fn build_tool(
    base_url: &str,
    platform: PlatformRegistration,
    key_pem: &str,
) -> Result<Tool, Box<dyn std::error::Error + Send + Sync>> {
    let cipher = SecretCipher::aes256gcm(AppKey::generate("k1")?, vec![])?;
    let store = lti_store::open("memory://", &lti_store::OpenOptions::new(cipher)).await?;
    store.registrations.insert_registration(&platform).await?;
    let key = lti_jose::SigningKey::from_pem(key_pem, lti_jose::Algorithm::RS256)?;
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

/// The existing application's data: a visit counter shared by every worker.
#[derive(Debug, Default)]
pub struct Visits(AtomicU64);

/// The services clients over the default HTTP client (which refuses
/// loopback and private addresses), shared by every worker.
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn default_services() -> Result<web::Data<LtiServices>, lti_http::Error> {
    let http = lti_http::HyperClient::builder().build()?;
    Ok(web::Data::new(LtiServices::new(Arc::new(
        lti_http::ServiceClient::new(Arc::new(http)),
    ))))
}

/// The application's routes and data with LTI added: the tool as
/// `web::Data<Tool>` and [`lti_actix::configure`]; `services` make the AGS
/// and NRPS calls ([`default_services`]). Use it with `App::configure`.
pub fn routes(
    tool: Arc<Tool>,
    visits: web::Data<Visits>,
    services: web::Data<LtiServices>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(visits)
            .app_data(services)
            .route("/", web::get().to(home))
            // The two lines that add LTI:
            .app_data(web::Data::from(tool))
            .configure(lti_actix::configure)
            .route("/app", web::get().to(launched))
            .route("/app/teacher", web::get().to(teacher))
            .route("/app/like", web::post().to(like))
            .route("/app/grade", web::post().to(grade));
    }
}

fn html(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body)
}

async fn home(visits: web::Data<Visits>) -> HttpResponse {
    let n = visits.0.fetch_add(1, Ordering::Relaxed) + 1;
    html(format!("<p>An existing page, visited {n} times.</p>"))
}

/// The launch's target: `lti_launch_id` in the query selects the launch. Its
/// form posts back with the launch id and the launch's CSRF token.
async fn launched(tool: web::Data<Tool>, LtiLaunch(launch): LtiLaunch) -> HttpResponse {
    let context = launch
        .claims()
        .context
        .as_ref()
        .and_then(|c| c.title.clone());
    let action = format!(
        "/app/like?{}",
        lti_actix::launch_query(&tool, launch.launch_id())
    );
    html(format!(
        "<h1>Hello {}</h1><p>Course: {}</p><p><a href=\"/app/teacher?lti_launch_id={}\">Teacher page</a></p><form method=\"post\" action=\"{}\"><button>Like this course</button></form><form method=\"post\" action=\"{}\"><button>I'm done</button></form>",
        escape(launch.claims().name.as_deref().unwrap_or("there")),
        escape(&context.unwrap_or_default()),
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
    tool: web::Data<Tool>,
    services: web::Data<LtiServices>,
    LtiLaunch(launch): LtiLaunch,
) -> HttpResponse {
    let score = lti_message::ags::Score::completed_fully_graded(
        launch.sub().unwrap_or_default(),
        1.0,
        1.0,
        lti_message::Timestamp::now(),
    );
    let key = match tool.active_signing_key().await {
        Ok(key) => key,
        Err(e) => return HttpResponse::InternalServerError().body(e.code()),
    };
    let sent = async {
        services
            .for_launch(launch.registration(), key, launch.claims())
            .ags()?
            .grade_launch_line_item(&score)
            .await
    };
    match sent.await {
        Ok(()) => html("<p>Score sent.</p>".to_owned()),
        Err(e) => HttpResponse::build(
            actix_web::http::StatusCode::from_u16(e.status_hint())
                .unwrap_or(actix_web::http::StatusCode::BAD_GATEWAY),
        )
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<p>Not graded: <code>{}</code> {}</p>",
            escape(e.code()),
            escape(&e.to_string())
        )),
    }
}

/// A state-changing route: `LtiLaunch` checks the CSRF token the form carries
/// (a cross-site page can make the browser post here with the launch cookie,
/// but cannot know the token).
async fn like(visits: web::Data<Visits>, LtiLaunch(launch): LtiLaunch) -> HttpResponse {
    let n = visits.0.fetch_add(1, Ordering::Relaxed) + 1;
    html(format!(
        "<p>Thanks, {}: {n} likes.</p>",
        escape(launch.sub().unwrap_or("someone"))
    ))
}

/// Instructors (or administrators) only; others get a 403 page.
async fn teacher(RequireInstructor(launch): RequireInstructor) -> HttpResponse {
    html(format!(
        "<p>Teacher tools for deployment {}</p>",
        escape(launch.deployment_id())
    ))
}
