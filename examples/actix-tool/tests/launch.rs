//! Drives a launch through the example with actix-web's test utilities: an in-test
//! platform signs id_tokens with its own RSA key, registered with its public key
//! as a static JWKS (the tool's default HTTP client refuses loopback addresses,
//! where an in-test JWKS server would be).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::{App, web};
use lti_jose::{Algorithm, JwkSet, SigningKey};
use lti_registry::{Deployment, KeySource, PlatformRegistration};
use serde_json::json;

const ISS: &str = "https://platform.example";
const BASE: &str = "http://127.0.0.1:3000/";
// Checked-in test keys (see tests/fixtures/lti-actix/README.md): debug-build RSA
// key generation is slow.
const PLATFORM_PEM: &str = include_str!("../../../tests/fixtures/lti-actix/keys/platform.pem");
const TOOL_PEM: &str = include_str!("../../../tests/fixtures/lti-actix/keys/tool.pem");

fn param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

fn header(
    resp: &actix_web::dev::ServiceResponse,
    name: impl actix_web::http::header::AsHeaderName,
) -> String {
    resp.headers()
        .get(name)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn a_launch_reaches_the_app_and_the_role_guard_refuses_a_learner() {
    let platform_key = SigningKey::from_pem(PLATFORM_PEM, Algorithm::RS256).unwrap();
    let jwks = serde_json::to_value(JwkSet {
        keys: vec![platform_key.public_jwk()],
    })
    .unwrap();
    let registration = PlatformRegistration::new(
        ISS,
        "client-1",
        "https://platform.example/auth",
        "https://platform.example/token",
        KeySource::StaticJwks { jwks },
    )
    .with_deployment(Deployment::active("dep-1"));
    let tool = actix_tool::build_tool(BASE, registration, TOOL_PEM)
        .await
        .unwrap();
    let tool = Arc::new(tool);
    let visits = web::Data::new(actix_tool::Visits::default());
    let app = init_service(App::new().configure(actix_tool::routes(
        tool,
        visits,
        actix_tool::default_services().unwrap(),
    )))
    .await;

    // The existing page still works.
    let home = call_service(&app, TestRequest::get().uri("/").to_request()).await;
    assert_eq!(home.status(), StatusCode::OK);
    assert!(
        String::from_utf8(read_body(home).await.to_vec())
            .unwrap()
            .contains("visited 1 times")
    );

    let login_uri = format!("/lti/login?iss={ISS}&login_hint=u&target_link_uri={BASE}app");
    let login = call_service(&app, TestRequest::get().uri(&login_uri).to_request()).await;
    assert_eq!(login.status(), StatusCode::FOUND);
    let location = header(&login, LOCATION);
    assert!(location.starts_with("https://platform.example/auth?"));
    let cookie = header(&login, SET_COOKIE)
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": ISS, "aud": "client-1", "sub": "learner-7", "nonce": param(&location, "nonce"),
        "iat": now, "exp": now + 300, "name": "Ada <Lovelace>",
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": "dep-1",
        "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": format!("{BASE}app"),
        "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "rl-1"},
        "https://purl.imsglobal.org/spec/lti/claim/context": {"id": "c-1", "title": "Analytical Engines"},
        "https://purl.imsglobal.org/spec/lti/claim/roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
    });
    let token = lti_jose::sign(&claims, &platform_key).unwrap();
    let launch = TestRequest::post()
        .uri("/lti/launch")
        .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .insert_header((COOKIE, cookie))
        .set_payload(format!(
            "state={}&id_token={token}",
            param(&location, "state")
        ));
    let launch = call_service(&app, launch.to_request()).await;
    assert_eq!(launch.status(), StatusCode::SEE_OTHER);
    let target = header(&launch, LOCATION);
    let path = target.strip_prefix("http://127.0.0.1:3000").unwrap();

    let page = call_service(&app, TestRequest::get().uri(path).to_request()).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = String::from_utf8(read_body(page).await.to_vec()).unwrap();
    assert!(html.contains("Hello Ada &lt;Lovelace&gt;"), "{html}");
    assert!(html.contains("Course: Analytical Engines"));

    // The page's form: its action carries the launch id and CSRF token.
    let action = html
        .split("<form method=\"post\" action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(action.contains("lti_csrf_token="), "{action}");
    let liked = call_service(&app, TestRequest::post().uri(&action).to_request()).await;
    assert_eq!(liked.status(), StatusCode::OK);
    // Grading the launch's line item: this launch carries no AGS claim.
    let graded = call_service(
        &app,
        TestRequest::post()
            .uri(&action.replacen("/app/like", "/app/grade", 1))
            .to_request(),
    )
    .await;
    assert_eq!(graded.status(), StatusCode::BAD_REQUEST);
    let page = actix_web::test::read_body(graded).await;
    assert!(
        String::from_utf8_lossy(&page).contains("<code>missing_endpoint</code>"),
        "{page:?}"
    );
    // The same post forged by another site: only the launch cookie rides along.
    let id = param(&target, "lti_launch_id");
    let forged = TestRequest::post()
        .uri("/app/like")
        .insert_header((COOKIE, format!("lti_launch={id}")));
    let forged = call_service(&app, forged.to_request()).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let page = String::from_utf8(read_body(forged).await.to_vec()).unwrap();
    assert!(page.contains("csrf_check_failed"), "{page}");

    let teacher = TestRequest::get().uri(&format!("/app/teacher?lti_launch_id={id}"));
    let teacher = call_service(&app, teacher.to_request()).await;
    assert_eq!(teacher.status(), StatusCode::FORBIDDEN);
    let html = String::from_utf8(read_body(teacher).await.to_vec()).unwrap();
    assert!(html.contains("insufficient_role"));

    // The tool publishes its own key for the platform.
    let jwks = call_service(
        &app,
        TestRequest::get()
            .uri("/.well-known/jwks.json")
            .to_request(),
    )
    .await;
    assert_eq!(jwks.status(), StatusCode::OK);
}

/// `POST /app/grade` on a launch with the AGS claim: one token request to the
/// registration's token endpoint, then the score at the launch's own line
/// item's `/scores` (the platform's HTTP side played by an in-process client).
#[actix_web::test]
async fn grading_sends_the_score_to_the_launchs_own_line_item() {
    use std::sync::Mutex;

    let platform_key = SigningKey::from_pem(PLATFORM_PEM, Algorithm::RS256).unwrap();
    let jwks = serde_json::to_value(JwkSet {
        keys: vec![platform_key.public_jwk()],
    })
    .unwrap();
    let registration = PlatformRegistration::new(
        ISS,
        "client-1",
        "https://platform.example/auth",
        "https://platform.example/token",
        KeySource::StaticJwks { jwks },
    )
    .with_deployment(Deployment::active("dep-1"));
    let tool = actix_tool::build_tool(BASE, registration, TOOL_PEM)
        .await
        .unwrap();
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let log = seen.clone();
    let http = lti_http::FnClient::new(move |req: http::Request<bytes::Bytes>| {
        let log = log.clone();
        async move {
            let uri = req.uri().to_string();
            log.lock().unwrap().push((
                uri.clone(),
                String::from_utf8_lossy(req.body()).into_owned(),
            ));
            let body = if uri.ends_with("/token") {
                r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600}"#
            } else {
                ""
            };
            Ok(http::Response::new(bytes::Bytes::from(body)))
        }
    });
    let services = web::Data::new(lti_services::LtiServices::new(Arc::new(
        lti_http::ServiceClient::new(Arc::new(http)),
    )));
    let visits = web::Data::new(actix_tool::Visits::default());
    let app =
        init_service(App::new().configure(actix_tool::routes(Arc::new(tool), visits, services)))
            .await;

    let login_uri = format!("/lti/login?iss={ISS}&login_hint=u&target_link_uri={BASE}app");
    let login = call_service(&app, TestRequest::get().uri(&login_uri).to_request()).await;
    let location = header(&login, LOCATION);
    let cookie = header(&login, SET_COOKIE)
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "iss": ISS, "aud": "client-1", "sub": "learner-7", "nonce": param(&location, "nonce"),
        "iat": now, "exp": now + 300,
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": "dep-1",
        "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": format!("{BASE}app"),
        "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "rl-1"},
        "https://purl.imsglobal.org/spec/lti/claim/roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "lineitems": "https://platform.example/c-1/lineitems",
            "lineitem": "https://platform.example/c-1/lineitems/9"
        },
    });
    let token = lti_jose::sign(&claims, &platform_key).unwrap();
    let launch = TestRequest::post()
        .uri("/lti/launch")
        .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .insert_header((COOKIE, cookie))
        .set_payload(format!(
            "state={}&id_token={token}",
            param(&location, "state")
        ));
    let launch = call_service(&app, launch.to_request()).await;
    assert_eq!(launch.status(), StatusCode::SEE_OTHER);
    let target = header(&launch, LOCATION);
    let path = target.strip_prefix("http://127.0.0.1:3000").unwrap();
    let page = call_service(&app, TestRequest::get().uri(path).to_request()).await;
    let html = String::from_utf8(read_body(page).await.to_vec()).unwrap();
    let grade = html
        .split("<form method=\"post\" action=\"")
        .nth(2)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(grade.starts_with("/app/grade?"), "{grade}");
    let graded = call_service(&app, TestRequest::post().uri(&grade).to_request()).await;
    let status = graded.status();
    let body = read_body(graded).await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, "https://platform.example/token");
    assert!(seen[0].1.contains("client_assertion="));
    assert_eq!(seen[1].0, "https://platform.example/c-1/lineitems/9/scores");
    let score: serde_json::Value = serde_json::from_str(&seen[1].1).unwrap();
    assert_eq!(score["userId"], "learner-7");
    assert_eq!(score["scoreGiven"], 1.0);
    assert_eq!(score["gradingProgress"], "FullyGraded");
}
