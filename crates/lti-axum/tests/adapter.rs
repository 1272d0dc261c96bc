//! The adapter driven through axum's `Router` with `tower::ServiceExt::oneshot`: an
//! in-test platform (its own RSA key, a static JWK Set) signs id_tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::FromRef;
use axum::response::Response;
use axum::routing::{get, post};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Request, StatusCode};
use lti_axum::{
    LtiLaunch, LtiRoutes, ReadOnlyLtiLaunch, RequireAnyRole, RequireInstructor, RoleSet,
};
use lti_jose::{Algorithm, JwkSet, SigningKey};
use lti_registry::{Deployment, KeySource, PlatformRegistration, SecretCipher, SecretString};
use lti_tool::Tool;
use serde_json::{Value, json};
use tower::ServiceExt;

const ISS: &str = "https://platform.example";
const CLIENT_ID: &str = "client-1";
const BASE: &str = "http://127.0.0.1:3000/";
const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";
const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";

/// Throw-away test keys (see tests/fixtures/lti-app/README.md).
const PLATFORM_KEY: &str = include_str!("../../../tests/fixtures/lti-app/platform-key.pem");
const TOOL_KEY: &str = include_str!("../../../tests/fixtures/lti-app/tool-key.pem");
const FORGER_KEY: &str = include_str!("../../../tests/fixtures/lti-app/forger-key.pem");

fn platform_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_pem(PLATFORM_KEY, Algorithm::RS256).unwrap())
}

fn tool_key_pem() -> &'static str {
    TOOL_KEY
}

#[derive(Clone)]
struct AppState {
    tool: Arc<Tool>,
}

impl FromRef<AppState> for Arc<Tool> {
    fn from_ref(s: &AppState) -> Self {
        s.tool.clone()
    }
}

struct Mentors;
impl RoleSet for Mentors {
    const ROLES: &'static [&'static str] = &["Mentor", "Administrator"];
}

async fn app() -> Router {
    app_with(|b| b).await
}

async fn app_with(
    configure: impl FnOnce(lti_tool::ToolBuilder) -> lti_tool::ToolBuilder,
) -> Router {
    let store = lti_store::open(
        "memory://",
        &lti_store::OpenOptions::new(SecretCipher::insecure_plaintext_for_tests()),
    )
    .await
    .unwrap();
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
    store
        .tool_keys
        .add_next_key("tool-key-1", "RS256", &SecretString::new(tool_key_pem()))
        .await
        .unwrap();
    store.tool_keys.promote_next_key().await.unwrap();
    let tool = configure(Tool::builder(BASE, &store).key_source(Arc::new(JwkSet::default())))
        .build()
        .unwrap();
    Router::new()
        .route(
            "/app",
            get(|launch: LtiLaunch| async move { format!("hello {}", launch.sub().unwrap_or("")) }),
        )
        .route(
            "/maybe",
            get(|launch: Option<LtiLaunch>| async move {
                launch.map_or("anonymous".to_owned(), |l| l.sub().unwrap_or("").to_owned())
            }),
        )
        .route(
            "/grades",
            get(|launch: RequireInstructor| async move { launch.deployment_id().to_owned() }),
        )
        .route(
            "/mentoring",
            get(|_launch: RequireAnyRole<Mentors>| async { "mentors only" }),
        )
        // A page's form action: the launch id and its CSRF token.
        .route(
            "/form-action",
            get(
                |axum::extract::State(tool): axum::extract::State<Arc<Tool>>,
                 launch: LtiLaunch| async move {
                    lti_axum::launch_query(&tool, launch.launch_id())
                },
            ),
        )
        .route(
            "/notes",
            post(|launch: LtiLaunch| async move { format!("saved for {}", launch.launch_id()) }),
        )
        .route(
            "/search",
            post(|launch: ReadOnlyLtiLaunch| async move { format!("searched {}", launch.launch_id()) }),
        )
        .merge(LtiRoutes::new().body_limit(20 * 1024).into_router())
        .with_state(AppState {
            tool: Arc::new(tool),
        })
}

async fn body_text(resp: Response) -> String {
    String::from_utf8(to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap()
}

fn query_param(url: &str, name: &str) -> String {
    url.split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs login, then posts an id_token built by `claims(nonce)`; returns the launch response.
async fn launch_with(app: &Router, claims: impl Fn(&str) -> Value) -> Response {
    launch_to(app, &format!("{BASE}app"), claims).await
}

/// `target` encoded for a query parameter (the few characters the tests' URLs use).
fn encode(target: &str) -> String {
    target
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('&', "%26")
        .replace('=', "%3D")
}

/// [`launch_with`] for a login whose `target_link_uri` is `target`.
async fn launch_to(app: &Router, target: &str, claims: impl Fn(&str) -> Value) -> Response {
    let login = app
        .clone()
        .oneshot(
            Request::get(format!(
                "/lti/login?iss={ISS}&login_hint=u1&target_link_uri={}",
                encode(target)
            ))
            .body(Body::empty())
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::FOUND);
    let location = login.headers()[LOCATION].to_str().unwrap().to_owned();
    let cookie = login.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let state = query_param(&location, "state");
    let nonce = query_param(&location, "nonce");
    let token = lti_jose::sign(&claims(&nonce), platform_key()).unwrap();
    app.clone()
        .oneshot(
            Request::post("/lti/launch")
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(COOKIE, cookie)
                .body(Body::from(format!("state={state}&id_token={token}")))
                .unwrap(),
        )
        .await
        .unwrap()
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

fn launch_id_of(resp: &Response) -> String {
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    query_param(resp.headers()[LOCATION].to_str().unwrap(), "lti_launch_id")
}

fn assert_html(resp: &Response) {
    let content_type = resp.headers()[CONTENT_TYPE].to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
}

async fn get_with(app: &Router, uri: &str, header: Option<(&str, String)>) -> Response {
    let mut req = Request::get(uri);
    if let Some((name, value)) = header {
        req = req.header(name, value);
    }
    app.clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn launch_redirects_and_the_launch_is_found_by_query_bearer_and_cookie() {
    let app = app().await;
    let resp = launch_with(&app, |n| resource_link_claims(n, INSTRUCTOR)).await;
    let id = launch_id_of(&resp);
    let cookies: Vec<&str> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("lti_launch={id};")) && c.contains("HttpOnly")),
        "{cookies:?}"
    );

    let by_query = get_with(&app, &format!("/app?lti_launch_id={id}"), None).await;
    assert_eq!(by_query.status(), StatusCode::OK);
    assert_eq!(body_text(by_query).await, "hello user-1");
    let by_bearer = get_with(
        &app,
        "/grades",
        Some((AUTHORIZATION.as_str(), format!("Bearer {id}"))),
    )
    .await;
    assert_eq!(by_bearer.status(), StatusCode::OK);
    assert_eq!(body_text(by_bearer).await, "dep-1");
    let by_cookie = get_with(
        &app,
        "/app",
        Some((COOKIE.as_str(), format!("lti_launch={id}"))),
    )
    .await;
    assert_eq!(by_cookie.status(), StatusCode::OK);
}

/// The value of the first ` attr="…"` in `html`.
fn html_attr(html: &str, attr: &str) -> String {
    let start = html.find(&format!(" {attr}=\"")).unwrap() + attr.len() + 3;
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&amp;", "&")
}

#[tokio::test]
async fn a_launch_without_the_cookie_completes_through_the_platform_storage_check() {
    let app = app_with(|b| b.platform_storage(true)).await;
    let login = get_with(
        &app,
        &format!("/lti/login?iss={ISS}&login_hint=u1&target_link_uri={BASE}app&lti_storage_target=_parent"),
        None,
    )
    .await;
    assert_eq!(login.status(), StatusCode::OK);
    assert_html(&login);
    let page = body_text(login).await;
    let next = html_attr(&page, "data-next");
    let (state, nonce) = (query_param(&next, "state"), query_param(&next, "nonce"));
    let token = lti_jose::sign(&resource_link_claims(&nonce, INSTRUCTOR), platform_key()).unwrap();
    // The platform's POST, but the browser kept no cookie: the check page.
    let check = app
        .clone()
        .oneshot(
            Request::post("/lti/launch")
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("state={state}&id_token={token}")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(check.status(), StatusCode::OK);
    assert!(check.headers().get(SET_COOKIE).is_none());
    let page = body_text(check).await;
    let pending = html_attr(&page, "value");
    let confirm = |origin: &'static str| {
        Request::post("/lti/launch")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .header("origin", origin)
            .body(Body::from(format!("lti_storage_confirm={pending}")))
            .unwrap()
    };
    // From another site: 403, and the launch stays pending.
    let refused = app
        .clone()
        .oneshot(confirm("https://evil.example"))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = serde_json::from_str(&body_text(refused).await).unwrap();
    assert_eq!(body["error"], "cross_origin_confirmation");
    // From the check page: the launch, its redirect and its cookie.
    let done = app
        .clone()
        .oneshot(confirm("http://127.0.0.1:3000"))
        .await
        .unwrap();
    let id = launch_id_of(&done);
    assert!(done.headers().get_all(SET_COOKIE).iter().any(|c| {
        c.to_str()
            .unwrap()
            .starts_with(&format!("lti_launch={id};"))
    }));
    let by_query = get_with(&app, &format!("/app?lti_launch_id={id}"), None).await;
    assert_eq!(body_text(by_query).await, "hello user-1");
    // Once only.
    let again = app
        .clone()
        .oneshot(confirm("http://127.0.0.1:3000"))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_str(&body_text(again).await).unwrap();
    assert_eq!(body["error"], "pending_launch_not_found");
}

#[tokio::test]
async fn role_guard_denies_a_learner_with_403_and_a_json_error() {
    let app = app().await;
    let resp = launch_with(&app, |n| resource_link_claims(n, LEARNER)).await;
    let id = launch_id_of(&resp);
    let req = Request::get(format!("/grades?lti_launch_id={id}"))
        .header(ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    let denied = app.clone().oneshot(req).await.unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert_eq!(denied.headers()[CONTENT_TYPE], "application/json");
    let body: Value = serde_json::from_str(&body_text(denied).await).unwrap();
    assert_eq!(body["error"], "insufficient_role");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("instructor or higher")
    );

    let html = get_with(&app, &format!("/mentoring?lti_launch_id={id}"), None).await;
    assert_eq!(html.status(), StatusCode::FORBIDDEN);
    assert_html(&html);
    let page = body_text(html).await;
    assert!(page.contains(">insufficient_role<"), "{page}");
}

#[tokio::test]
async fn missing_and_unknown_launch_ids_are_401_and_404() {
    let app = app().await;
    let missing = get_with(
        &app,
        "/app",
        Some((ACCEPT.as_str(), "application/json".into())),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_str(&body_text(missing).await).unwrap();
    assert_eq!(body["error"], "launch_id_missing");
    let unknown = get_with(&app, "/app?lti_launch_id=nope", None).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(body_text(unknown).await.contains("launch_not_found"));
}

#[tokio::test]
async fn tampered_token_is_401_bad_signature_and_replay_is_refused() {
    let app = app().await;
    // Tampered: a different signing key with the platform's kid.
    let forger = SigningKey::from_pem(FORGER_KEY, Algorithm::RS256)
        .unwrap()
        .with_kid(platform_key().kid());
    let login = get_with(
        &app,
        &format!("/lti/login?iss={ISS}&login_hint=u1&target_link_uri={BASE}app"),
        None,
    )
    .await;
    let location = login.headers()[LOCATION].to_str().unwrap().to_owned();
    let cookie = login.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (state, nonce) = (
        query_param(&location, "state"),
        query_param(&location, "nonce"),
    );
    let token = lti_jose::sign(&resource_link_claims(&nonce, LEARNER), &forger).unwrap();
    let resp = app
        .clone()
        .oneshot(
            Request::post("/lti/launch")
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(ACCEPT, "application/json")
                .header(COOKIE, cookie.clone())
                .body(Body::from(format!("state={state}&id_token={token}")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_str(&body_text(resp).await).unwrap();
    assert_eq!(body["error"], "bad_signature");

    // The state was consumed by that attempt: posting it again is refused.
    let replay = app
        .clone()
        .oneshot(
            Request::post("/lti/launch")
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(COOKIE, cookie)
                .body(Body::from(format!("state={state}&id_token={token}")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert!(body_text(replay).await.contains("state_not_found"));
}

#[tokio::test]
async fn login_from_an_unknown_issuer_is_refused_as_json_or_html_per_accept() {
    let app = app().await;
    let uri =
        format!("/lti/login?iss=https://unknown.example&login_hint=u1&target_link_uri={BASE}app");
    let json = get_with(
        &app,
        &uri,
        Some((ACCEPT.as_str(), "application/json".into())),
    )
    .await;
    assert_eq!(json.status(), StatusCode::FORBIDDEN);
    assert_eq!(json.headers()[CONTENT_TYPE], "application/json");
    let body: Value = serde_json::from_str(&body_text(json).await).unwrap();
    assert_eq!(body["error"], "unknown_issuer");

    let html = get_with(&app, &uri, Some((ACCEPT.as_str(), "text/html".into()))).await;
    assert_eq!(html.status(), StatusCode::FORBIDDEN);
    assert_html(&html);
    assert!(body_text(html).await.contains("unknown_issuer"));
}

#[tokio::test]
async fn oversized_body_is_413_and_never_500() {
    let app = app().await;
    let resp = app
        .clone()
        .oneshot(
            Request::post("/lti/launch")
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(ACCEPT, "application/json")
                .body(Body::from(vec![b'a'; 21 * 1024]))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = serde_json::from_str(&body_text(resp).await).unwrap();
    assert_eq!(body["error"], "body_too_large");

    let wrong_type = app
        .clone()
        .oneshot(
            Request::post("/lti/launch")
                .header(CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn jwks_route_publishes_the_tool_key() {
    let app = app().await;
    let resp = get_with(&app, "/.well-known/jwks.json", None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let set: Value = serde_json::from_str(&body_text(resp).await).unwrap();
    assert_eq!(set["keys"][0]["kid"], "tool-key-1");
    assert_eq!(set["keys"][0]["kty"], "RSA");
    assert!(set["keys"][0].get("d").is_none());
}

#[tokio::test]
async fn deep_link_route_signs_items_and_refuses_unaccepted_types() {
    let app = app().await;
    let id = launch_id_of(&launch_with(&app, deep_link_claims).await);
    let post = |body: Value, accept: &'static str| {
        Request::post("/lti/deep-link")
            .header(AUTHORIZATION, format!("Bearer {id}"))
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, accept)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let ok = app
        .clone()
        .oneshot(post(
            json!({"items": [{"type": "link", "url": "https://example.com/a"}], "msg": "done"}),
            "application/json",
        ))
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let body: Value = serde_json::from_str(&body_text(ok).await).unwrap();
    assert_eq!(
        body["deep_link_return_url"],
        "https://platform.example/dl-return"
    );
    let jwt = body["jwt"].as_str().unwrap();
    let claims: Value =
        serde_json::from_slice(&lti_jose::b64::decode(jwt.split('.').nth(1).unwrap()).unwrap())
            .unwrap();
    assert_eq!(
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"],
        "opaque-1"
    );
    assert_eq!(claims["aud"], ISS);

    let form = app
        .clone()
        .oneshot(post(
            json!({"items": [{"type": "link", "url": "https://example.com/a"}]}),
            "text/html",
        ))
        .await
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    assert!(
        body_text(form)
            .await
            .contains("action=\"https://platform.example/dl-return\"")
    );

    let refused = app
        .clone()
        .oneshot(post(
            json!({"items": [{"type": "html", "html": "<p>x</p>"}]}),
            "application/json",
        ))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&body_text(refused).await).unwrap();
    assert_eq!(body["error"], "content_item_type_not_accepted");

    let malformed = app
        .clone()
        .oneshot(post(json!({"itemz": []}), "application/json"))
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&body_text(malformed).await).unwrap();
    assert_eq!(body["error"], "invalid_deep_link_request");
}

/// One URL for redirect and target (Open edX's "Tool Launch URL", a Canvas key
/// whose Target Link URI is its redirect URI): resource link and deep-linking
/// launches land on the application's page, not on a 405.
#[tokio::test]
async fn a_target_link_uri_equal_to_the_launch_url_lands_on_the_app() {
    let app = app_with(|b| b.landing_uri(format!("{BASE}app"))).await;
    let cases = [
        (format!("{BASE}lti/launch"), ""),
        (format!("{BASE}lti/launch/"), ""),
        (format!("{BASE}lti/launch?resource=42"), "resource=42&"),
        (format!("{BASE}lti/launch/?resource=42"), "resource=42&"),
    ];
    let kinds: [fn(&str) -> Value; 2] = [|n| resource_link_claims(n, INSTRUCTOR), deep_link_claims];
    for (target, carried) in &cases {
        for (kind, claims) in kinds.iter().enumerate() {
            let resp = launch_to(&app, target, |n| {
                let mut c = claims(n);
                c["https://purl.imsglobal.org/spec/lti/claim/target_link_uri"] = json!(target);
                c
            })
            .await;
            let id = launch_id_of(&resp);
            let location = resp.headers()[LOCATION].to_str().unwrap();
            assert_eq!(
                location,
                format!("{BASE}app?{carried}lti_launch_id={id}"),
                "{target}"
            );
            // The browser follows the 303 with a GET: the app's page answers.
            let path = location.strip_prefix(BASE.trim_end_matches('/')).unwrap();
            let page = get_with(&app, path, None).await;
            assert_eq!(page.status(), StatusCode::OK, "{target}");
            assert_eq!(body_text(page).await, "hello user-1");
            if kind == 1 {
                let done = app
                    .clone()
                    .oneshot(
                        Request::post(format!("/lti/deep-link?lti_launch_id={id}"))
                            // The app's own page posts it (same origin).
                            .header("sec-fetch-site", "same-origin")
                            .header(CONTENT_TYPE, "application/json")
                            .header(ACCEPT, "application/json")
                            .body(Body::from(
                                json!({"items": [{"type": "link", "url": "https://example.com/a"}]})
                                    .to_string(),
                            ))
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                assert_eq!(done.status(), StatusCode::OK);
            }
        }
    }
}

#[tokio::test]
async fn a_get_to_the_launch_url_goes_on_to_the_app_with_a_launch_id_and_is_401_without() {
    let app = app_with(|b| b.landing_uri(format!("{BASE}app"))).await;
    let id = launch_id_of(&launch_with(&app, |n| resource_link_claims(n, LEARNER)).await);
    let stale = get_with(
        &app,
        &format!("/lti/launch?resource=42&lti_launch_id={id}"),
        None,
    )
    .await;
    assert_eq!(stale.status(), StatusCode::SEE_OTHER);
    let location = stale.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("{BASE}app?resource=42&lti_launch_id={id}")
    );
    let path = location.strip_prefix(BASE.trim_end_matches('/')).unwrap();
    assert_eq!(get_with(&app, path, None).await.status(), StatusCode::OK);

    let bare = get_with(
        &app,
        "/lti/launch",
        Some((ACCEPT.as_str(), "application/json".into())),
    )
    .await;
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_str(&body_text(bare).await).unwrap();
    assert_eq!(body["error"], "launch_id_missing");
}

async fn post_with(app: &Router, uri: &str, headers: &[(&str, String)], body: &str) -> Response {
    let mut req = Request::post(uri);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    app.clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap()
}

async fn error_code(resp: Response) -> String {
    let body: Value = serde_json::from_str(&body_text(resp).await).unwrap();
    body["error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_post_authorised_by_the_cookie_alone_is_csrf_check_failed() {
    let app = app().await;
    let id = launch_id_of(&launch_with(&app, |n| resource_link_claims(n, INSTRUCTOR)).await);
    let accept = (ACCEPT.as_str(), "application/json".to_owned());
    let cookie = (COOKIE.as_str(), format!("lti_launch={id}"));

    // What a page on another site can make the browser send: the cookie rides along.
    for uri in ["/notes".to_owned(), format!("/notes?lti_launch_id={id}")] {
        let forged = post_with(&app, &uri, &[accept.clone(), cookie.clone()], "x=1").await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN, "{uri}");
        assert_eq!(error_code(forged).await, "csrf_check_failed");
    }
    let cross_site = post_with(
        &app,
        &format!("/notes?lti_launch_id={id}"),
        &[
            accept.clone(),
            cookie.clone(),
            ("sec-fetch-site", "cross-site".to_owned()),
        ],
        "x=1",
    )
    .await;
    assert_eq!(error_code(cross_site).await, "csrf_check_failed");

    // The page's own form: its action carries the token.
    let action =
        body_text(get_with(&app, &format!("/form-action?lti_launch_id={id}"), None).await).await;
    assert!(action.contains("lti_csrf_token="), "{action}");
    let ok = post_with(
        &app,
        &format!("/notes?{action}"),
        std::slice::from_ref(&cookie),
        "x=1",
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(body_text(ok).await, format!("saved for {id}"));
    // The same from a script: the token in the header, the id in the cookie.
    let token = query_param(&format!("/?{action}"), "lti_csrf_token");
    let ok = post_with(
        &app,
        "/notes",
        &[cookie.clone(), (lti_axum::CSRF_HEADER.as_str(), token)],
        "x=1",
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    // A same-origin page that names the launch in the query.
    let same_origin = post_with(
        &app,
        &format!("/notes?lti_launch_id={id}"),
        &[cookie.clone(), ("sec-fetch-site", "same-origin".to_owned())],
        "x=1",
    )
    .await;
    assert_eq!(same_origin.status(), StatusCode::OK);
    // The explicitly read-only extractor skips the check.
    let search = post_with(&app, "/search", &[cookie], "q=1").await;
    assert_eq!(search.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_query_launch_id_never_replaces_the_browsers_own_launch() {
    let app = app().await;
    let mine = launch_id_of(&launch_with(&app, |n| resource_link_claims(n, LEARNER)).await);
    let theirs = launch_id_of(&launch_with(&app, |n| resource_link_claims(n, INSTRUCTOR)).await);
    let fixed = get_with(
        &app,
        &format!("/app?lti_launch_id={theirs}"),
        Some((COOKIE.as_str(), format!("lti_launch={mine}"))),
    )
    .await;
    assert_eq!(fixed.status(), StatusCode::FORBIDDEN);
    assert_html(&fixed);
    assert!(body_text(fixed).await.contains("launch_id_not_bound"));
    // Without a launch cookie (a browser that blocks the tool's cookies in the
    // LMS frame), the query id is all there is and is followed.
    let cookieless = get_with(&app, &format!("/app?lti_launch_id={theirs}"), None).await;
    assert_eq!(cookieless.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_deep_link_route_reads_only_json_and_checks_csrf() {
    let app = app().await;
    let deep_link = |n: &str| deep_linking_claims(n, None);
    let id = launch_id_of(&launch_with(&app, deep_link).await);
    let body = json!({"items": [{"type": "link", "url": "https://example.com/a"}]}).to_string();
    let post = |content_type: &str, credential: (&'static str, String)| {
        let headers = [
            (ACCEPT.as_str(), "application/json".to_owned()),
            (CONTENT_TYPE.as_str(), content_type.to_owned()),
            credential,
        ];
        let app = app.clone();
        let body = body.clone();
        async move { post_with(&app, "/lti/deep-link", &headers, &body).await }
    };
    // A cross-site form can send text/plain whose body is JSON, with the cookie.
    let plain = post("text/plain", (COOKIE.as_str(), format!("lti_launch={id}"))).await;
    assert_eq!(plain.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(plain).await, "csrf_check_failed");
    // Authorised (bearer), but not JSON: 415.
    let bearer = (AUTHORIZATION.as_str(), format!("Bearer {id}"));
    let plain = post("text/plain", bearer.clone()).await;
    assert_eq!(plain.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(plain).await, "unsupported_media_type");
    let signed = post("application/json", bearer).await;
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

#[tokio::test]
async fn an_optional_launch_is_none_without_a_known_id_and_some_with_one() {
    let app = app().await;
    for uri in ["/maybe", "/maybe?lti_launch_id=nope"] {
        let anonymous = get_with(&app, uri, None).await;
        assert_eq!(anonymous.status(), StatusCode::OK, "{uri}");
        assert_eq!(body_text(anonymous).await, "anonymous", "{uri}");
    }
    let stale = get_with(
        &app,
        "/maybe",
        Some((COOKIE.as_str(), "lti_launch=gone".into())),
    )
    .await;
    assert_eq!(body_text(stale).await, "anonymous");
    let id = launch_id_of(&launch_with(&app, |n| resource_link_claims(n, LEARNER)).await);
    let launched = get_with(&app, &format!("/maybe?lti_launch_id={id}"), None).await;
    assert_eq!(launched.status(), StatusCode::OK);
    assert_eq!(body_text(launched).await, "user-1");
    // A query id the browser's cookie does not hold is refused, not taken for
    // an anonymous visit.
    let foreign = get_with(
        &app,
        &format!("/maybe?lti_launch_id={id}"),
        Some((COOKIE.as_str(), "lti_launch=another-launch".into())),
    )
    .await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(body_text(foreign).await.contains("launch_id_not_bound"));
}
