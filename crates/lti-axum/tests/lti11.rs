//! The LTI 1.1 provider routes driven through axum's `Router`: a launch
//! creates a visit and redirects to its resource page, another user in the
//! same browser ends the previous visit, unknown and foreign visits are
//! refused, and a frame without the cookie continues in a new window.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use http::header::{ACCEPT, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Request, StatusCode};
use lti_registry::{Consumer, ConsumerStore, SecretCipher, SystemClock};
use lti_store::MemoryStore;
use lti11::{Credentials, LaunchRequest, LaunchVerifier, OAuthVerifier, ProviderFlow};
use serde_json::Value;
use tower::ServiceExt;

const BASE: &str = "http://127.0.0.1:3000";

async fn app() -> Router {
    let store = Arc::new(MemoryStore::new(
        SecretCipher::insecure_plaintext_for_tests(),
        Arc::new(SystemClock),
    ));
    store
        .insert_consumer(&Consumer::new("key", "secret", "LMS", 0))
        .await
        .unwrap();
    let verifier = LaunchVerifier::new(OAuthVerifier::new(store.clone(), store.clone()));
    let flow =
        Arc::new(ProviderFlow::new(BASE, verifier, store.clone(), store).secure_cookie(true));
    lti_axum::lti11_routes(&flow).with_state(flow)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    cookie: Option<String>,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let resp = app.clone().oneshot(req).await.unwrap();
    let header = |name| {
        resp.headers()
            .get(name)
            .map(|v: &http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let location = header(LOCATION);
    let cookie = header(SET_COOKIE).map(|c| c.split(';').next().unwrap().to_owned());
    let status = resp.status();
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    Answer {
        status,
        location,
        cookie,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn launch(app: &Router, user: &str, name: &str, cookie: Option<&str>) -> Answer {
    let url = format!("{BASE}/lti11/launch");
    let signed = LaunchRequest::new("rl-1")
        .param("user_id", user)
        .param("lis_person_name_full", name)
        .param("resource_link_title", "Week 1 quiz")
        .roles(&["Learner"])
        .context("ctx-1", "Biology")
        .sign(&url, &Credentials::new("key", "secret"), now())
        .unwrap();
    let mut req =
        Request::post("/lti11/launch").header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    send(app, req.body(Body::from(signed.form_body())).unwrap()).await
}

async fn get(app: &Router, path: &str, cookie: Option<&str>) -> Answer {
    let mut req = Request::get(path).header(ACCEPT, "text/html");
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

fn path_of(location: &str) -> String {
    location.strip_prefix(BASE).unwrap().to_owned()
}

#[tokio::test]
async fn a_launch_redirects_to_its_visit_and_a_new_user_ends_the_previous_one() {
    let app = app().await;
    let alice = launch(&app, "u-alice", "Alice", None).await;
    assert_eq!(alice.status, StatusCode::SEE_OTHER, "{}", alice.body);
    let alice_page = path_of(alice.location.as_deref().unwrap());
    assert!(alice_page.starts_with("/lti11/visits/"), "{alice_page}");
    let cookie = alice.cookie.unwrap();
    assert!(cookie.starts_with("__Host-lti11_session="), "{cookie}");

    let page = get(&app, &alice_page, Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("<strong id=\"display-name\">Alice</strong>")
    );
    assert!(page.body.contains("id=\"resource-title\">Week 1 quiz"));

    let bob = launch(&app, "u-bob", "Bob", Some(&cookie)).await;
    assert_eq!(bob.status, StatusCode::SEE_OTHER);
    let ended = get(&app, &alice_page, Some(&cookie)).await;
    assert_eq!(ended.status, StatusCode::FORBIDDEN);
    assert!(
        ended.body.contains("id=\"error-code\">visit_ended"),
        "{}",
        ended.body
    );
    let bob_page = get(&app, &path_of(&bob.location.unwrap()), Some(&cookie)).await;
    assert_eq!(bob_page.status, StatusCode::OK);
    assert!(bob_page.body.contains("id=\"display-name\">Bob"));
}

#[tokio::test]
async fn unknown_and_foreign_visits_get_404_and_403() {
    let app = app().await;
    let alice = launch(&app, "u-alice", "Alice", None).await;
    let eve = launch(&app, "u-eve", "Eve", None).await;
    let alice_page = path_of(&alice.location.unwrap());
    let foreign = get(&app, &alice_page, eve.cookie.as_deref()).await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(foreign.body.contains("visit_foreign"), "{}", foreign.body);

    let unknown = format!("/lti11/visits/{}", "A".repeat(43));
    let resp = app
        .clone()
        .oneshot(
            Request::get(&unknown)
                .header(ACCEPT, "application/json")
                .header(COOKIE, eve.cookie.as_deref().unwrap())
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value =
        serde_json::from_slice(&to_bytes(resp.into_body(), 1 << 16).await.unwrap()).unwrap();
    assert_eq!(body["error"], "visit_not_found");

    // A launch that fails verification creates nothing and says why.
    let bad = send(
        &app,
        Request::post("/lti11/launch")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("lti_message_type=basic-lti-launch-request"))
            .unwrap(),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.location.is_none() && bad.cookie.is_none());
}

#[tokio::test]
async fn without_the_cookie_the_page_offers_a_new_window_that_continues_once() {
    let app = app().await;
    let alice = launch(&app, "u-alice", "Alice", None).await;
    let page_path = path_of(&alice.location.unwrap());
    let offer = get(&app, &page_path, None).await;
    assert_eq!(offer.status, StatusCode::OK);
    assert!(offer.body.contains("target=\"_blank\""), "{}", offer.body);
    let action = format!("{page_path}/new-window");
    assert!(
        offer.body.contains(&format!("{BASE}{action}")),
        "{}",
        offer.body
    );

    let post = || Request::post(action.as_str()).body(Body::empty()).unwrap();
    let handed = send(&app, post()).await;
    assert_eq!(handed.status, StatusCode::SEE_OTHER);
    assert_eq!(handed.cookie, alice.cookie);
    let page = get(&app, &page_path, handed.cookie.as_deref()).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"display-name\">Alice"));
    let again = send(&app, post()).await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert!(again.body.contains("new_window_handoff_unavailable"));
}
