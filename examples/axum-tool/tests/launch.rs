//! Drives a launch through the example: an in-test platform signs id_tokens
//! with its own RSA key, registered with its public key as a static JWKS (the
//! tool's default HTTP client refuses loopback addresses, where an in-test JWKS
//! server would be).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Request, StatusCode};
use lti_jose::{Algorithm, JwkSet, SigningKey};
use lti_registry::{Deployment, KeySource, PlatformRegistration};
use serde_json::json;
use tower::ServiceExt;

const ISS: &str = "https://platform.example";
const BASE: &str = "http://127.0.0.1:3000/";

fn param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_launch_reaches_the_app_and_the_role_guard_refuses_a_learner() {
    // Throw-away test keys (see tests/fixtures/lti-app/README.md).
    let platform_key = SigningKey::from_pem(
        include_str!("../../../tests/fixtures/lti-app/platform-key.pem"),
        Algorithm::RS256,
    )
    .unwrap();
    let tool_key = include_str!("../../../tests/fixtures/lti-app/tool-key.pem").to_owned();
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
    let tool = axum_tool::build_tool(BASE, registration, tool_key)
        .await
        .unwrap();
    let app = axum_tool::app(Arc::new(tool), axum_tool::default_services().unwrap());

    let login = app
        .clone()
        .oneshot(
            Request::get(format!(
                "/lti/login?iss={ISS}&login_hint=u&target_link_uri={BASE}app"
            ))
            .body(Body::empty())
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::FOUND);
    let location = login.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(location.starts_with("https://platform.example/auth?"));
    let cookie = login.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
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
    let launch = app
        .clone()
        .oneshot(
            Request::post("/lti/launch")
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(COOKIE, cookie)
                .body(Body::from(format!(
                    "state={}&id_token={token}",
                    param(&location, "state")
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(launch.status(), StatusCode::SEE_OTHER);
    let target = launch.headers()[LOCATION].to_str().unwrap().to_owned();
    let path = target.strip_prefix("http://127.0.0.1:3000").unwrap();

    let page = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html =
        String::from_utf8(to_bytes(page.into_body(), 1 << 16).await.unwrap().to_vec()).unwrap();
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
    let liked = app
        .clone()
        .oneshot(Request::post(action.as_str()).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(liked.status(), StatusCode::OK);
    // Grading the launch's line item: this launch carries no AGS claim.
    let graded = app
        .clone()
        .oneshot(
            Request::post(action.replacen("/app/like", "/app/grade", 1).as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(graded.status(), StatusCode::BAD_REQUEST);
    let page = to_bytes(graded.into_body(), 1 << 16).await.unwrap();
    assert!(
        String::from_utf8_lossy(&page).contains("<code>missing_endpoint</code>"),
        "{page:?}"
    );
    // The same post forged by another site: only the launch cookie rides along.
    let id = param(&target, "lti_launch_id");
    let forged = app
        .clone()
        .oneshot(
            Request::post("/app/like")
                .header(COOKIE, format!("lti_launch={id}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let page = to_bytes(forged.into_body(), 1 << 16).await.unwrap();
    assert!(String::from_utf8_lossy(&page).contains("csrf_check_failed"));

    let teacher = app
        .oneshot(
            Request::get(format!("/app/teacher?lti_launch_id={id}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(teacher.status(), StatusCode::FORBIDDEN);
    let html = String::from_utf8(
        to_bytes(teacher.into_body(), 1 << 16)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(html.contains("insufficient_role"));
}

/// `POST /app/grade` on a launch with the AGS claim: one token request to the
/// registration's token endpoint, then the score at the launch's own line
/// item's `/scores` (the platform's HTTP side played by an in-process client).
#[tokio::test]
async fn grading_sends_the_score_to_the_launchs_own_line_item() {
    use std::sync::Mutex;

    let platform_key = SigningKey::from_pem(
        include_str!("../../../tests/fixtures/lti-app/platform-key.pem"),
        Algorithm::RS256,
    )
    .unwrap();
    let tool_key = include_str!("../../../tests/fixtures/lti-app/tool-key.pem").to_owned();
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
    let tool = axum_tool::build_tool(BASE, registration, tool_key)
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
    let services =
        lti_services::LtiServices::new(Arc::new(lti_http::ServiceClient::new(Arc::new(http))));
    let app = axum_tool::app(Arc::new(tool), services);

    let login = app
        .clone()
        .oneshot(
            Request::get(format!(
                "/lti/login?iss={ISS}&login_hint=u&target_link_uri={BASE}app"
            ))
            .body(Body::empty())
            .unwrap(),
        )
        .await
        .unwrap();
    let location = login.headers()[LOCATION].to_str().unwrap().to_owned();
    let cookie = login.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
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
    let launch = app
        .clone()
        .oneshot(
            Request::post("/lti/launch")
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(COOKIE, cookie)
                .body(Body::from(format!(
                    "state={}&id_token={token}",
                    param(&location, "state")
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(launch.status(), StatusCode::SEE_OTHER);
    let target = launch.headers()[LOCATION].to_str().unwrap().to_owned();
    let path = target.strip_prefix("http://127.0.0.1:3000").unwrap();
    let page = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let html =
        String::from_utf8(to_bytes(page.into_body(), 1 << 16).await.unwrap().to_vec()).unwrap();
    let grade = html
        .split("<form method=\"post\" action=\"")
        .nth(2)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(grade.starts_with("/app/grade?"), "{grade}");
    let graded = app
        .oneshot(Request::post(grade.as_str()).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = graded.status();
    let body = to_bytes(graded.into_body(), 1 << 16).await.unwrap();
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
