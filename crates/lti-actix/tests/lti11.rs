//! The LTI 1.1 provider routes driven through actix-web's test utilities: a
//! launch creates a visit and redirects to its resource page, another user in
//! the same browser ends the previous visit, unknown and foreign visits are
//! refused, and a frame without the cookie continues in a new window.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{ACCEPT, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use actix_web::test::{TestRequest, call_service, init_service, read_body};
use actix_web::{App, web};
use lti_registry::{Consumer, ConsumerStore, SecretCipher, SystemClock};
use lti_store::MemoryStore;
use lti11::{Credentials, LaunchRequest, LaunchVerifier, OAuthVerifier, ProviderFlow};

const BASE: &str = "http://127.0.0.1:3000";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn signed(user: &str, name: &str) -> String {
    LaunchRequest::new("rl-1")
        .param("user_id", user)
        .param("lis_person_name_full", name)
        .param("resource_link_title", "Week 1 quiz")
        .roles(&["Learner"])
        .context("ctx-1", "Biology")
        .sign(
            &format!("{BASE}/lti11/launch"),
            &Credentials::new("key", "secret"),
            now(),
        )
        .unwrap()
        .form_body()
}

#[actix_web::test]
async fn lti11_launches_visits_ended_foreign_unknown_and_the_new_window() {
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
        web::Data::new(ProviderFlow::new(BASE, verifier, store.clone(), store).secure_cookie(true));
    let routes = flow.clone();
    let app = init_service(
        App::new()
            .app_data(flow)
            .configure(move |cfg| lti_actix::configure_lti11(cfg, &routes)),
    )
    .await;

    struct Answer {
        status: StatusCode,
        location: Option<String>,
        cookie: Option<String>,
        body: String,
    }
    macro_rules! send {
        ($req:expr) => {{
            let resp = call_service(&app, $req.to_request()).await;
            let status = resp.status();
            let header = |name| {
                resp.headers()
                    .get(name)
                    .map(|v: &actix_web::http::header::HeaderValue| v.to_str().unwrap().to_owned())
            };
            let location = header(LOCATION).map(|l| l.strip_prefix(BASE).unwrap().to_owned());
            let cookie = header(SET_COOKIE).map(|c| c.split(';').next().unwrap().to_owned());
            let body = String::from_utf8(read_body(resp).await.to_vec()).unwrap();
            Answer {
                status,
                location,
                cookie,
                body,
            }
        }};
    }
    let launch = |user: &str, name: &str, cookie: Option<&str>| {
        let mut req = TestRequest::post()
            .uri("/lti11/launch")
            .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .set_payload(signed(user, name));
        if let Some(c) = cookie {
            req = req.insert_header((COOKIE, c.to_owned()));
        }
        req
    };
    let get = |path: &str, cookie: Option<&str>| {
        let mut req = TestRequest::get()
            .uri(path)
            .insert_header((ACCEPT, "text/html"));
        if let Some(c) = cookie {
            req = req.insert_header((COOKIE, c.to_owned()));
        }
        req
    };

    // A launch creates a visit and redirects to its page.
    let alice = send!(launch("u-alice", "Alice", None));
    assert_eq!(alice.status, StatusCode::SEE_OTHER, "{}", alice.body);
    let alice_page = alice.location.unwrap();
    assert!(alice_page.starts_with("/lti11/visits/"), "{alice_page}");
    let cookie = alice.cookie.unwrap();
    assert!(cookie.starts_with("__Host-lti11_session="), "{cookie}");
    let page = send!(get(&alice_page, Some(&cookie)));
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains("<strong id=\"display-name\">Alice</strong>")
    );
    assert!(page.body.contains("id=\"resource-title\">Week 1 quiz"));

    // Another user in the same browser ends Alice's visit.
    let bob = send!(launch("u-bob", "Bob", Some(&cookie)));
    assert_eq!(bob.status, StatusCode::SEE_OTHER);
    let ended = send!(get(&alice_page, Some(&cookie)));
    assert_eq!(ended.status, StatusCode::FORBIDDEN);
    assert!(
        ended.body.contains("id=\"error-code\">visit_ended"),
        "{}",
        ended.body
    );
    let bob_page = send!(get(bob.location.as_deref().unwrap(), Some(&cookie)));
    assert_eq!(bob_page.status, StatusCode::OK);
    assert!(bob_page.body.contains("id=\"display-name\">Bob"));

    // Foreign and unknown visits.
    let eve = send!(launch("u-eve", "Eve", None));
    let eve_cookie = eve.cookie.unwrap();
    let foreign = send!(get(bob.location.as_deref().unwrap(), Some(&eve_cookie)));
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(foreign.body.contains("visit_foreign"));
    let unknown = send!(
        TestRequest::get()
            .uri(&format!("/lti11/visits/{}", "A".repeat(43)))
            .insert_header((ACCEPT, "application/json"))
            .insert_header((COOKIE, eve_cookie.clone()))
    );
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let body: serde_json::Value = serde_json::from_str(&unknown.body).unwrap();
    assert_eq!(body["error"], "visit_not_found");

    // Without the cookie: the new-window offer, then the one-time hand-over.
    let eve_page = eve.location.unwrap();
    let offer = send!(get(&eve_page, None));
    assert_eq!(offer.status, StatusCode::OK);
    assert!(offer.body.contains("target=\"_blank\""), "{}", offer.body);
    let action = format!("{eve_page}/new-window");
    let handed = send!(TestRequest::post().uri(&action));
    assert_eq!(handed.status, StatusCode::SEE_OTHER);
    assert_eq!(handed.cookie.as_deref(), Some(eve_cookie.as_str()));
    assert_eq!(handed.location.as_deref(), Some(eve_page.as_str()));
    let again = send!(TestRequest::post().uri(&action));
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert!(again.body.contains("new_window_handoff_unavailable"));
}
