//! The adapter driven through actix-web's test utilities (`init_service`,
//! `call_service`): an in-test platform (its own RSA key, registered as a static
//! JWK Set) signs id_tokens. The keys are checked-in test keys
//! (`tests/fixtures/lti-actix/keys`, see its README).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderMap, LOCATION, SET_COOKIE,
};
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::{App, HttpResponse, web};
use lti_actix::{
    LtiLaunch, LtiRoutes, ReadOnlyLtiLaunch, RequireAnyRole, RequireInstructor, RoleSet,
};
use lti_jose::{Algorithm, JwkSet, SigningKey};
use lti_registry::{Deployment, KeySource, PlatformRegistration, SecretCipher, SecretString};
use lti_tool::Tool;
use serde_json::{Value, json};

const ISS: &str = "https://platform.example";
const CLIENT_ID: &str = "client-1";
const BASE: &str = "http://127.0.0.1:3000/";
const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";
const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";
const BODY_LIMIT: usize = 20 * 1024;

const PLATFORM_PEM: &str = include_str!("../../../tests/fixtures/lti-actix/keys/platform.pem");
const TOOL_PEM: &str = include_str!("../../../tests/fixtures/lti-actix/keys/tool.pem");
const FORGER_PEM: &str = include_str!("../../../tests/fixtures/lti-actix/keys/forger.pem");

fn platform_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_pem(PLATFORM_PEM, Algorithm::RS256).unwrap())
}

struct Mentors;
impl RoleSet for Mentors {
    const ROLES: &'static [&'static str] = &["Mentor", "Administrator"];
}

async fn tool() -> Arc<Tool> {
    let options = lti_store::OpenOptions::new(SecretCipher::insecure_plaintext_for_tests());
    let store = lti_store::open("memory://", &options).await.unwrap();
    let jwks = JwkSet {
        keys: vec![platform_key().public_jwk()],
    };
    let registration = PlatformRegistration::new(
        ISS,
        CLIENT_ID,
        "https://platform.example/auth",
        "https://platform.example/token",
        KeySource::StaticJwks {
            jwks: serde_json::to_value(&jwks).unwrap(),
        },
    )
    .with_deployment(Deployment::active("dep-1"));
    store
        .registrations
        .insert_registration(&registration)
        .await
        .unwrap();
    let pem = SecretString::new(TOOL_PEM);
    store
        .tool_keys
        .add_next_key("tool-key-1", "RS256", &pem)
        .await
        .unwrap();
    store.tool_keys.promote_next_key().await.unwrap();
    let tool = Tool::builder(BASE, &store)
        .key_source(Arc::new(JwkSet::default()))
        .landing_uri(format!("{BASE}app"))
        .build()
        .unwrap();
    Arc::new(tool)
}

/// An initialized test service behind a closure, so helpers need not name
/// actix-http's request type.
struct TestApp(Box<dyn Fn(TestRequest) -> Responding>);

type Responding = Pin<Box<dyn Future<Output = ServiceResponse>>>;

impl TestApp {
    async fn new<T>(app: App<T>) -> Self
    where
        T: ServiceFactory<
                ServiceRequest,
                Config = (),
                Response = ServiceResponse,
                Error = actix_web::Error,
                InitError = (),
            > + 'static,
    {
        let service = Rc::new(init_service(app).await);
        Self(Box::new(move |req: TestRequest| {
            let service = service.clone();
            Box::pin(async move { call_service(&*service, req.to_request()).await })
        }))
    }

    async fn call(&self, req: TestRequest) -> ServiceResponse {
        (self.0)(req).await
    }

    async fn get(&self, uri: &str) -> ServiceResponse {
        self.call(TestRequest::get().uri(uri)).await
    }
}

/// The application under test: its own routes behind the extractors, plus the
/// LTI routes with a 20 KiB body limit.
async fn app() -> TestApp {
    let hello = |launch: LtiLaunch| async move { format!("hello {}", launch.sub().unwrap_or("")) };
    let grades = |launch: RequireInstructor| async move { launch.deployment_id().to_owned() };
    let mentoring = |_launch: RequireAnyRole<Mentors>| async { "mentors only" };
    // A page's form action: the launch id and its CSRF token.
    let form_action = |tool: web::Data<Tool>, launch: LtiLaunch| async move {
        lti_actix::launch_query(&tool, launch.launch_id())
    };
    let notes = |launch: LtiLaunch| async move { format!("saved for {}", launch.launch_id()) };
    let search =
        |launch: ReadOnlyLtiLaunch| async move { format!("searched {}", launch.launch_id()) };
    TestApp::new(
        App::new()
            .app_data(web::Data::from(tool().await))
            .route("/app", web::get().to(hello))
            .route("/grades", web::get().to(grades))
            .route("/mentoring", web::get().to(mentoring))
            .route("/form-action", web::get().to(form_action))
            .route("/notes", web::post().to(notes))
            .route("/search", web::post().to(search))
            .configure(|cfg| LtiRoutes::new().body_limit(BODY_LIMIT).configure(cfg)),
    )
    .await
}

async fn text(resp: ServiceResponse) -> String {
    String::from_utf8(read_body(resp).await.to_vec()).unwrap()
}

async fn json_body(resp: ServiceResponse) -> Value {
    serde_json::from_str(&text(resp).await).unwrap()
}

fn header(headers: &HeaderMap, name: impl actix_web::http::header::AsHeaderName) -> String {
    headers.get(name).unwrap().to_str().unwrap().to_owned()
}

fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    let prefix = format!("{name}=");
    query
        .split('&')
        .find_map(|p| p.strip_prefix(&prefix))
        .unwrap()
        .to_owned()
}

fn now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.unwrap().as_secs() as i64
}

/// A login's outcome: the state, the nonce and the state cookie (`name=value`).
struct Login {
    state: String,
    nonce: String,
    cookie: String,
}

async fn login(app: &TestApp) -> Login {
    login_to(app, &format!("{BASE}app")).await
}

/// `target` encoded for a query parameter (the few characters the tests' URLs use).
fn encode(target: &str) -> String {
    target
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('&', "%26")
        .replace('=', "%3D")
}

/// A login whose `target_link_uri` is `target`.
async fn login_to(app: &TestApp, target: &str) -> Login {
    let uri = format!(
        "/lti/login?iss={ISS}&login_hint=u1&target_link_uri={}",
        encode(target)
    );
    let resp = app.get(&uri).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = header(resp.headers(), LOCATION);
    let set_cookie = header(resp.headers(), SET_COOKIE);
    Login {
        state: query_param(&location, "state"),
        nonce: query_param(&location, "nonce"),
        cookie: set_cookie.split(';').next().unwrap().to_owned(),
    }
}

fn launch_post(login: &Login, token: &str) -> TestRequest {
    TestRequest::post()
        .uri("/lti/launch")
        .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .insert_header((COOKIE, login.cookie.clone()))
        .set_payload(format!("state={}&id_token={token}", login.state))
}

/// Runs login, then posts an id_token built by `claims(nonce)`; returns the launch response.
async fn launch_with(app: &TestApp, claims: impl Fn(&str) -> Value) -> ServiceResponse {
    let login = login(app).await;
    let token = lti_jose::sign(&claims(&login.nonce), platform_key()).unwrap();
    app.call(launch_post(&login, &token)).await
}

fn resource_link_claims(nonce: &str, role: &str) -> Value {
    json!({
        "iss": ISS, "aud": CLIENT_ID, "sub": "user-1", "nonce": nonce,
        "iat": now(), "exp": now() + 300,
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": "dep-1",
        "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": format!("{BASE}app"),
        "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "rl-1"},
        "https://purl.imsglobal.org/spec/lti/claim/roles": [role],
    })
}

fn deep_link_claims(nonce: &str) -> Value {
    deep_linking_claims(nonce, Some("opaque-1"))
}

fn launch_id_of(resp: &ServiceResponse) -> String {
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    query_param(&header(resp.headers(), LOCATION), "lti_launch_id")
}

#[actix_web::test]
async fn login_redirects_to_the_platform_with_the_oidc_parameters_and_a_state_cookie() {
    let app = app().await;
    let uri =
        format!("/lti/login?iss={ISS}&login_hint=u1&target_link_uri={BASE}app&lti_message_hint=m9");
    let resp = app.get(&uri).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = header(resp.headers(), LOCATION);
    assert!(
        location.starts_with("https://platform.example/auth?"),
        "{location}"
    );
    assert_eq!(query_param(&location, "client_id"), CLIENT_ID);
    assert_eq!(query_param(&location, "login_hint"), "u1");
    assert_eq!(query_param(&location, "lti_message_hint"), "m9");
    assert_eq!(query_param(&location, "response_type"), "id_token");
    assert_eq!(query_param(&location, "response_mode"), "form_post");
    assert_eq!(query_param(&location, "prompt"), "none");
    assert!(!query_param(&location, "state").is_empty());
    assert!(!query_param(&location, "nonce").is_empty());
    let cookie = header(resp.headers(), SET_COOKIE);
    assert!(cookie.starts_with("__Host-lti_state"), "{cookie}");
    assert!(
        cookie.contains("; HttpOnly; Secure; SameSite=None"),
        "{cookie}"
    );

    // The same login as a form POST (platforms may use either).
    let post = TestRequest::post()
        .uri("/lti/login")
        .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .set_payload(format!("iss={ISS}&login_hint=u1&target_link_uri={BASE}app"));
    assert_eq!(app.call(post).await.status(), StatusCode::FOUND);
}

#[actix_web::test]
async fn login_from_an_unknown_issuer_is_refused_with_its_code() {
    let app = app().await;
    let uri =
        format!("/lti/login?iss=https://evil.example&login_hint=u1&target_link_uri={BASE}app");
    let req = TestRequest::get()
        .uri(&uri)
        .insert_header((ACCEPT, "application/json"));
    let resp = app.call(req).await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let body = json_body(resp).await;
    assert_eq!(body["error"], "unknown_issuer", "{body}");
}

#[actix_web::test]
async fn launch_redirects_and_the_launch_is_found_by_query_bearer_and_cookie() {
    let app = app().await;
    let resp = launch_with(&app, |n| resource_link_claims(n, INSTRUCTOR)).await;
    let id = launch_id_of(&resp);
    let location = header(resp.headers(), LOCATION);
    assert!(location.starts_with(&format!("{BASE}app?")), "{location}");
    let cookies: Vec<&str> = resp
        .headers()
        .get_all(SET_COOKIE)
        .map(|v| v.to_str().unwrap())
        .collect();
    let expected = format!("lti_launch={id}; Path=/; HttpOnly; SameSite=Lax");
    assert!(cookies.contains(&expected.as_str()), "{cookies:?}");
    // lti-tool's own Set-Cookie (clearing the state cookie) survives the conversion.
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("__Host-lti_state") && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
    assert_eq!(header(resp.headers(), "cache-control"), "no-store");

    let by_query = TestRequest::get().uri(&format!("/app?lti_launch_id={id}"));
    let by_query = app.call(by_query).await;
    assert_eq!(by_query.status(), StatusCode::OK);
    assert_eq!(text(by_query).await, "hello user-1");

    let by_bearer = TestRequest::get()
        .uri("/grades")
        .insert_header((AUTHORIZATION, format!("Bearer {id}")));
    let by_bearer = app.call(by_bearer).await;
    assert_eq!(by_bearer.status(), StatusCode::OK);
    assert_eq!(text(by_bearer).await, "dep-1");

    let by_cookie = TestRequest::get()
        .uri("/app")
        .insert_header((COOKIE, format!("theme=dark; lti_launch={id}")));
    let by_cookie = app.call(by_cookie).await;
    assert_eq!(by_cookie.status(), StatusCode::OK);
    assert_eq!(text(by_cookie).await, "hello user-1");
}

#[actix_web::test]
async fn the_launch_cookie_is_cross_site_ready_only_behind_https() {
    let options = lti_store::OpenOptions::new(SecretCipher::insecure_plaintext_for_tests());
    let store = lti_store::open("memory://", &options).await.unwrap();
    let https = Tool::builder("https://tool.example/", &store)
        .build()
        .unwrap();
    assert_eq!(
        lti_actix::launch_cookie(&https, "abc"),
        "lti_launch=abc; Path=/; HttpOnly; Secure; SameSite=None; Partitioned"
    );
    let loopback = Tool::builder(BASE, &store).build().unwrap();
    assert_eq!(
        lti_actix::launch_cookie(&loopback, "abc"),
        "lti_launch=abc; Path=/; HttpOnly; SameSite=Lax"
    );
}

#[actix_web::test]
async fn role_guard_denies_a_learner_with_403_as_json_and_as_a_page() {
    let app = app().await;
    let resp = launch_with(&app, |n| resource_link_claims(n, LEARNER)).await;
    let id = launch_id_of(&resp);

    let req = TestRequest::get()
        .uri(&format!("/grades?lti_launch_id={id}"))
        .insert_header((ACCEPT, "application/json"));
    let denied = app.call(req).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(denied.headers(), CONTENT_TYPE), "application/json");
    let body = json_body(denied).await;
    assert_eq!(body["error"], "insufficient_role");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("expected an instructor or higher role"),
        "{message}"
    );
    assert!(message.contains(LEARNER), "{message}");

    let req = TestRequest::get()
        .uri(&format!("/mentoring?lti_launch_id={id}"))
        .insert_header((ACCEPT, "text/html,application/xhtml+xml"));
    let page = app.call(req).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(header(page.headers(), CONTENT_TYPE).starts_with("text/html"));
    let page = text(page).await;
    assert!(
        page.contains("<code id=\"error-code\">insufficient_role</code>"),
        "{page}"
    );
    assert!(page.contains("one of [Mentor, Administrator]"), "{page}");
}

#[actix_web::test]
async fn an_instructor_passes_the_any_role_guard_only_when_listed() {
    struct Teachers;
    impl RoleSet for Teachers {
        const ROLES: &'static [&'static str] = &["Instructor"];
    }
    let tool = tool().await;
    let app = TestApp::new(
        App::new()
            .app_data(web::Data::from(tool))
            .route(
                "/teach",
                web::get().to(|l: RequireAnyRole<Teachers>| async move {
                    l.into_inner().deployment_id().to_owned()
                }),
            )
            .route(
                "/mentor",
                web::get().to(|_: RequireAnyRole<Mentors>| async { "" }),
            )
            .configure(lti_actix::configure),
    )
    .await;
    let id = launch_id_of(&launch_with(&app, |n| resource_link_claims(n, INSTRUCTOR)).await);
    let teach = app.get(&format!("/teach?lti_launch_id={id}")).await;
    assert_eq!(teach.status(), StatusCode::OK);
    assert_eq!(text(teach).await, "dep-1");
    let mentor = TestRequest::get()
        .uri(&format!("/mentor?lti_launch_id={id}"))
        .insert_header((ACCEPT, "application/json"));
    let mentor = app.call(mentor).await;
    assert_eq!(mentor.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_body(mentor).await["error"], "insufficient_role");
}

#[actix_web::test]
async fn missing_and_unknown_launch_ids_are_401_and_404() {
    let app = app().await;
    let missing = TestRequest::get()
        .uri("/app")
        .insert_header((ACCEPT, "application/json"));
    let missing = app.call(missing).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(missing.headers(), "cache-control"), "no-store");
    let body = json_body(missing).await;
    assert_eq!(body["error"], "launch_id_missing");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("launch id missing: expected")
    );

    let unknown = TestRequest::get().uri("/app?lti_launch_id=nope");
    let unknown = app.call(unknown).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(header(unknown.headers(), CONTENT_TYPE).starts_with("text/html"));
    assert!(text(unknown).await.contains(">launch_not_found<"));
}

#[actix_web::test]
async fn tampered_token_is_401_bad_signature_and_replay_is_refused() {
    let app = app().await;
    // Tampered: signed by a different key that claims the platform's kid.
    let forger = SigningKey::from_pem(FORGER_PEM, Algorithm::RS256).unwrap();
    let forger = forger.with_kid(platform_key().kid());
    let login = login(&app).await;
    let token = lti_jose::sign(&resource_link_claims(&login.nonce, LEARNER), &forger).unwrap();
    let req = launch_post(&login, &token).insert_header((ACCEPT, "application/json"));
    let resp = app.call(req).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body = json_body(resp).await;
    assert_eq!(body["error"], "bad_signature");
    assert!(!body["message"].as_str().unwrap().contains(&token));

    // The state was consumed by that attempt: posting it again is refused.
    let replay = app.call(launch_post(&login, &token)).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert!(text(replay).await.contains(">state_not_found<"));
}

#[actix_web::test]
async fn a_valid_token_replayed_after_its_launch_is_refused() {
    let app = app().await;
    let login = login(&app).await;
    let claims = resource_link_claims(&login.nonce, INSTRUCTOR);
    let token = lti_jose::sign(&claims, platform_key()).unwrap();
    let first = app.call(launch_post(&login, &token)).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let again = launch_post(&login, &token).insert_header((ACCEPT, "application/json"));
    let again = app.call(again).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_body(again).await["error"], "state_not_found");
}

#[actix_web::test]
async fn oversized_wrong_type_and_wrong_method_bodies_are_4xx_never_500() {
    let app = app().await;
    let big = TestRequest::post()
        .uri("/lti/launch")
        .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .insert_header((ACCEPT, "application/json"))
        .set_payload(vec![b'a'; BODY_LIMIT + 1]);
    let resp = app.call(big).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json_body(resp).await["error"], "body_too_large");

    let wrong_type = TestRequest::post()
        .uri("/lti/launch")
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((ACCEPT, "application/json"))
        .set_payload("{}");
    let resp = app.call(wrong_type).await;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(json_body(resp).await["error"], "unsupported_media_type");

    let garbage = TestRequest::post()
        .uri("/lti/launch")
        .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .insert_header((ACCEPT, "application/json"))
        .set_payload(&b"state=%FF%FE&id_token=x.y.z"[..]);
    let resp = app.call(garbage).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(resp).await["error"], "invalid_form_encoding");

    let no_token = TestRequest::post()
        .uri("/lti/launch")
        .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .insert_header((ACCEPT, "application/json"))
        .set_payload("state=abc");
    let resp = app.call(no_token).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(resp).await["error"], "missing_parameter");

    // Methods a route does not take are actix-web's own 405, not a 500.
    let put = TestRequest::put()
        .uri("/lti/launch")
        .set_payload("state=abc");
    assert_eq!(app.call(put).await.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[actix_web::test]
async fn jwks_route_publishes_the_tool_public_key_only() {
    let app = app().await;
    let resp = app.get("/.well-known/jwks.json").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(header(resp.headers(), CONTENT_TYPE).contains("json"));
    let set = json_body(resp).await;
    assert_eq!(set["keys"][0]["kid"], "tool-key-1");
    assert_eq!(set["keys"][0]["kty"], "RSA");
    assert!(set["keys"][0].get("d").is_none());
}

#[actix_web::test]
async fn the_tool_may_also_be_registered_as_data_of_an_arc() {
    let app = TestApp::new(
        App::new()
            .app_data(web::Data::new(tool().await))
            .route(
                "/app",
                web::get().to(|l: LtiLaunch| async move { l.deployment_id().to_owned() }),
            )
            .configure(lti_actix::configure),
    )
    .await;
    let id = launch_id_of(&launch_with(&app, |n| resource_link_claims(n, LEARNER)).await);
    let resp = app.get(&format!("/app?lti_launch_id={id}")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(text(resp).await, "dep-1");
}

#[actix_web::test]
async fn routes_without_the_tool_in_app_data_say_so() {
    let app = TestApp::new(App::new().configure(lti_actix::configure)).await;
    let req = TestRequest::get()
        .uri("/lti/login")
        .insert_header((ACCEPT, "application/json"));
    let resp = app.call(req).await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(json_body(resp).await["error"], "tool_not_configured");
}

#[actix_web::test]
async fn a_handler_can_return_the_rejection_as_its_error() {
    let app = TestApp::new(App::new().route(
        "/manual",
        web::get().to(|req: actix_web::HttpRequest| async move {
            let tool = lti_actix::tool_of(&req).map_err(lti_actix::LtiRejection::json)?;
            Ok::<_, lti_actix::LtiRejection>(HttpResponse::Ok().body(tool.base_url().to_owned()))
        }),
    ))
    .await;
    let resp = app.get("/manual").await;
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = resp.into_body().try_into_bytes().unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "tool_not_configured");
}

#[actix_web::test]
async fn deep_link_route_signs_items_and_refuses_unaccepted_types() {
    let app = app().await;
    let id = launch_id_of(&launch_with(&app, deep_link_claims).await);
    let post = |body: Value, accept: &'static str| {
        TestRequest::post()
            .uri(&format!("/lti/deep-link?lti_launch_id={id}"))
            .insert_header(("sec-fetch-site", "same-origin"))
            .insert_header((CONTENT_TYPE, "application/json"))
            .insert_header((ACCEPT, accept))
            .set_payload(body.to_string())
    };
    let link = json!({"items": [{"type": "link", "url": "https://example.com/a"}], "msg": "done"});
    let ok = app.call(post(link.clone(), "application/json")).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let body = json_body(ok).await;
    assert_eq!(
        body["deep_link_return_url"],
        "https://platform.example/dl-return"
    );
    let jwt = body["jwt"].as_str().unwrap();
    let payload = lti_jose::b64::decode(jwt.split('.').nth(1).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"],
        "opaque-1"
    );
    assert_eq!(
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/msg"],
        "done"
    );
    assert_eq!(claims["aud"], ISS);

    let form = app.call(post(link, "text/html")).await;
    assert_eq!(form.status(), StatusCode::OK);
    assert!(
        text(form)
            .await
            .contains("action=\"https://platform.example/dl-return\"")
    );

    let html_item = json!({"items": [{"type": "html", "html": "<p>x</p>"}]});
    let refused = app.call(post(html_item, "application/json")).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_body(refused).await["error"],
        "content_item_type_not_accepted"
    );

    let malformed = app
        .call(post(json!({"itemz": []}), "application/json"))
        .await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_body(malformed).await["error"],
        "invalid_deep_link_request"
    );
}

#[actix_web::test]
async fn deep_link_route_refuses_a_resource_link_launch() {
    let app = app().await;
    let id = launch_id_of(&launch_with(&app, |n| resource_link_claims(n, INSTRUCTOR)).await);
    let req = TestRequest::post()
        .uri(&format!("/lti/deep-link?lti_launch_id={id}"))
        .insert_header(("sec-fetch-site", "same-origin"))
        .insert_header((CONTENT_TYPE, "application/json"))
        .insert_header((ACCEPT, "application/json"))
        .set_payload(r#"{"items": []}"#);
    let resp = app.call(req).await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert_eq!(json_body(resp).await["error"], "not_deep_linking");
}

#[actix_web::test]
async fn the_launch_route_takes_platform_storage_confirmations() {
    let app = app().await;
    let confirm = |origin: &'static str| {
        TestRequest::post()
            .uri("/lti/launch")
            .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .insert_header((ACCEPT, "application/json"))
            .insert_header(("origin", origin))
            .set_payload("lti_storage_confirm=no-such-pending-launch")
    };
    let cross = app.call(confirm("https://evil.example")).await;
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_body(cross).await["error"], "cross_origin_confirmation");
    let unknown = app.call(confirm("http://127.0.0.1:3000")).await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        json_body(unknown).await["error"],
        "pending_launch_not_found"
    );
}

/// One URL for redirect and target (Open edX's "Tool Launch URL", a Canvas key
/// whose Target Link URI is its redirect URI): resource link and deep-linking
/// launches land on the application's page, not on a 405.
#[actix_web::test]
async fn a_target_link_uri_equal_to_the_launch_url_lands_on_the_app() {
    let app = app().await;
    let cases = [
        (format!("{BASE}lti/launch"), ""),
        (format!("{BASE}lti/launch/"), ""),
        (format!("{BASE}lti/launch?resource=42"), "resource=42&"),
        (format!("{BASE}lti/launch/?resource=42"), "resource=42&"),
    ];
    let kinds: [fn(&str) -> Value; 2] = [|n| resource_link_claims(n, INSTRUCTOR), deep_link_claims];
    for (target, carried) in &cases {
        for (kind, claims) in kinds.iter().enumerate() {
            let login = login_to(&app, target).await;
            let mut c = claims(&login.nonce);
            c["https://purl.imsglobal.org/spec/lti/claim/target_link_uri"] = json!(target);
            let token = lti_jose::sign(&c, platform_key()).unwrap();
            let resp = app.call(launch_post(&login, &token)).await;
            let id = launch_id_of(&resp);
            let location = header(resp.headers(), LOCATION);
            assert_eq!(
                location,
                format!("{BASE}app?{carried}lti_launch_id={id}"),
                "{target}"
            );
            // The browser follows the 303 with a GET: the app's page answers.
            let path = location.strip_prefix(BASE.trim_end_matches('/')).unwrap();
            let page = app.get(path).await;
            assert_eq!(page.status(), StatusCode::OK, "{target}");
            assert_eq!(text(page).await, "hello user-1");
            if kind == 1 {
                let done = app
                    .call(
                        TestRequest::post()
                            .uri(&format!("/lti/deep-link?lti_launch_id={id}"))
                            // The app's own page posts it (same origin).
                            .insert_header(("sec-fetch-site", "same-origin"))
                            .insert_header((CONTENT_TYPE, "application/json"))
                            .insert_header((ACCEPT, "application/json"))
                            .set_payload(
                                json!({"items": [{"type": "link", "url": "https://example.com/a"}]})
                                    .to_string(),
                            ),
                    )
                    .await;
                assert_eq!(done.status(), StatusCode::OK);
            }
        }
    }
}

#[actix_web::test]
async fn a_get_to_the_launch_url_goes_on_to_the_app_with_a_launch_id_and_is_401_without() {
    let app = app().await;
    let id = launch_id_of(&launch_with(&app, |n| resource_link_claims(n, LEARNER)).await);
    let stale = app
        .get(&format!("/lti/launch?resource=42&lti_launch_id={id}"))
        .await;
    assert_eq!(stale.status(), StatusCode::SEE_OTHER);
    let location = header(stale.headers(), LOCATION);
    assert_eq!(
        location,
        format!("{BASE}app?resource=42&lti_launch_id={id}")
    );
    let path = location.strip_prefix(BASE.trim_end_matches('/')).unwrap();
    assert_eq!(app.get(path).await.status(), StatusCode::OK);

    let bare = app
        .call(
            TestRequest::get()
                .uri("/lti/launch")
                .insert_header((ACCEPT, "application/json")),
        )
        .await;
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_body(bare).await["error"], "launch_id_missing");
}

#[actix_web::test]
async fn a_post_authorised_by_the_cookie_alone_is_csrf_check_failed() {
    let app = app().await;
    let id = launch_id_of(&launch_with(&app, |n| resource_link_claims(n, INSTRUCTOR)).await);
    let cookie = format!("lti_launch={id}");
    let post = |uri: &str| {
        TestRequest::post()
            .uri(uri)
            .insert_header((ACCEPT, "application/json"))
            .insert_header((COOKIE, cookie.clone()))
            .set_payload("x=1")
    };
    for uri in ["/notes".to_owned(), format!("/notes?lti_launch_id={id}")] {
        let forged = app.call(post(&uri)).await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(json_body(forged).await["error"], "csrf_check_failed");
    }
    let action = text(app.get(&format!("/form-action?lti_launch_id={id}")).await).await;
    let ok = app.call(post(&format!("/notes?{action}"))).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(text(ok).await, format!("saved for {id}"));
    let token = query_param(&format!("/?{action}"), "lti_csrf_token");
    let ok = app
        .call(post("/notes").insert_header((lti_actix::CSRF_HEADER.as_str(), token)))
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let search = app.call(post("/search")).await;
    assert_eq!(search.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_query_launch_id_never_replaces_the_browsers_own_launch() {
    let app = app().await;
    let mine = launch_id_of(&launch_with(&app, |n| resource_link_claims(n, LEARNER)).await);
    let theirs = launch_id_of(&launch_with(&app, |n| resource_link_claims(n, INSTRUCTOR)).await);
    let fixed = app
        .call(
            TestRequest::get()
                .uri(&format!("/grades?lti_launch_id={theirs}"))
                .insert_header((ACCEPT, "application/json"))
                .insert_header((COOKIE, format!("lti_launch={mine}"))),
        )
        .await;
    assert_eq!(fixed.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_body(fixed).await["error"], "launch_id_not_bound");
    let cookieless = app.get(&format!("/grades?lti_launch_id={theirs}")).await;
    assert_eq!(cookieless.status(), StatusCode::OK);
}

#[actix_web::test]
async fn the_deep_link_route_reads_only_json_and_checks_csrf() {
    let app = app().await;
    let deep_link = |n: &str| deep_linking_claims(n, None);
    let id = launch_id_of(&launch_with(&app, deep_link).await);
    let body = json!({"items": [{"type": "link", "url": "https://example.com/a"}]}).to_string();
    let post = |content_type: &'static str| {
        TestRequest::post()
            .uri("/lti/deep-link")
            .insert_header((ACCEPT, "application/json"))
            .insert_header((CONTENT_TYPE, content_type))
            .set_payload(body.clone())
    };
    // What a cross-site form can send: text/plain JSON with the cookie.
    let forged = app
        .call(post("text/plain").insert_header((COOKIE, format!("lti_launch={id}"))))
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_body(forged).await["error"], "csrf_check_failed");
    let bearer = (AUTHORIZATION, format!("Bearer {id}"));
    let plain = app
        .call(post("text/plain").insert_header(bearer.clone()))
        .await;
    assert_eq!(plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(json_body(plain).await["error"], "unsupported_media_type");
    let signed = app
        .call(post("application/json").insert_header(bearer))
        .await;
    assert_eq!(signed.status(), StatusCode::OK);
}

/// An instructor's deep-linking request accepting links, with `data` if any.
fn deep_linking_claims(nonce: &str, data: Option<&str>) -> Value {
    let mut claims = json!({
        "iss": ISS, "aud": CLIENT_ID, "sub": "user-1", "nonce": nonce,
        "iat": now(), "exp": now() + 300,
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiDeepLinkingRequest",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": "dep-1",
        "https://purl.imsglobal.org/spec/lti/claim/roles": [INSTRUCTOR],
        "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings": {
            "deep_link_return_url": "https://platform.example/dl-return",
            "accept_types": ["link"],
            "accept_presentation_document_targets": ["iframe"]
        }
    });
    if let Some(data) = data {
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"]["data"] =
            data.into();
    }
    claims
}
