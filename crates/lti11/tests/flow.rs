#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The provider application flow: launch → visit → resource page, sessions,
//! ended and foreign visits, the new-window hand-over.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, StatusCode, header};
use lti_registry::{Consumer, ConsumerStore, SecretCipher, SystemClock};
use lti_store::MemoryStore;
use lti11::flow::{SECURE_SESSION_COOKIE, SESSION_COOKIE};
use lti11::{
    Credentials, LaunchAnswer, LaunchRequest, LaunchVerifier, OAuthVerifier, ProviderFlow,
    SignedRequest, VisitPage,
};

const BASE: &str = "https://tool.example";

async fn flow() -> ProviderFlow {
    let store = Arc::new(MemoryStore::new(
        SecretCipher::insecure_plaintext_for_tests(),
        Arc::new(SystemClock),
    ));
    store
        .insert_consumer(&Consumer::new("key", "secret", "LMS", 0))
        .await
        .unwrap();
    let verifier = LaunchVerifier::new(OAuthVerifier::new(store.clone(), store.clone()));
    ProviderFlow::new(BASE, verifier, store.clone(), store)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn as_user(user: &str, name: &str) -> LaunchRequest {
    LaunchRequest::new("rl-1")
        .param("user_id", user)
        .param("lis_person_name_full", name)
        .param("resource_link_title", "Quiz <1>")
        .roles(&["Learner"])
        .context("ctx-1", "Biology")
}

async fn launch(flow: &ProviderFlow, req: LaunchRequest, cookie: Option<&str>) -> LaunchAnswer {
    try_launch(flow, req, cookie).await.unwrap()
}

async fn try_launch(
    flow: &ProviderFlow,
    req: LaunchRequest,
    cookie: Option<&str>,
) -> lti11::Result<LaunchAnswer> {
    let url = flow.launch_url(None);
    let signed = req
        .sign(&url, &Credentials::new("key", "secret"), now())
        .unwrap();
    let body = signed.form_body();
    flow.launch(
        &SignedRequest::form_post(&url, body.as_bytes()),
        &headers(cookie),
    )
    .await
}

fn headers(cookie: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Some(c) = cookie {
        h.insert(header::COOKIE, HeaderValue::from_str(c).unwrap());
    }
    h
}

/// `name=value` of a `Set-Cookie`.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_launch_redirects_to_its_visit_which_shows_the_user_and_resource() {
    let flow = flow().await;
    let answer = launch(&flow, as_user("u-alice", "Alice <A>"), None).await;
    let response = answer.response();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert_eq!(location, format!("{BASE}/lti11/visits/{}", answer.visit_id));
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        set.starts_with(&format!("{SECURE_SESSION_COOKIE}=")),
        "{set}"
    );
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=None",
        "Partitioned",
        "Path=/",
    ] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(answer.record.user.is_some());

    let cookie = pair(set);
    let VisitPage::Open(visit) = flow
        .visit(&answer.visit_id, &headers(Some(&cookie)))
        .await
        .unwrap()
    else {
        panic!("expected the open visit");
    };
    assert_eq!(visit.display_name(), "Alice <A>");
    assert_eq!(visit.resource_title(), "Quiz <1>");
    assert_eq!(visit.context().unwrap().title.as_deref(), Some("Biology"));
    assert_eq!(visit.launch().user_id(), Some("u-alice"));
    let html = visit.to_html();
    assert!(html.contains("Alice &lt;A&gt;") && html.contains("Quiz &lt;1&gt;"));
}

#[tokio::test]
async fn another_user_in_the_same_browser_ends_the_previous_visit() {
    let flow = flow().await;
    let alice = launch(&flow, as_user("u-alice", "Alice"), None).await;
    let cookie = pair(&alice.set_cookie);
    let bob = launch(&flow, as_user("u-bob", "Bob"), Some(&cookie)).await;
    assert_eq!(bob.record.ended_visits, 1);
    // The browser keeps its session.
    assert_eq!(pair(&bob.set_cookie), cookie);
    let err = flow
        .visit(&alice.visit_id, &headers(Some(&cookie)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "visit_ended");
    assert_eq!(err.status(), StatusCode::FORBIDDEN);
    let VisitPage::Open(visit) = flow
        .visit(&bob.visit_id, &headers(Some(&cookie)))
        .await
        .unwrap()
    else {
        panic!("expected Bob's visit");
    };
    assert_eq!(visit.display_name(), "Bob");
    // The same user again keeps the visit open.
    let again = launch(&flow, as_user("u-bob", "Bob"), Some(&cookie)).await;
    assert_eq!(again.record.ended_visits, 0);
    assert!(matches!(
        flow.visit(&bob.visit_id, &headers(Some(&cookie)))
            .await
            .unwrap(),
        VisitPage::Open(_)
    ));
}

#[tokio::test]
async fn unknown_malformed_and_foreign_visits_are_refused() {
    let flow = flow().await;
    let alice = launch(&flow, as_user("u-alice", "Alice"), None).await;
    let other_browser = launch(&flow, as_user("u-eve", "Eve"), None).await;
    let eve_cookie = pair(&other_browser.set_cookie);
    let err = flow
        .visit(&alice.visit_id, &headers(Some(&eve_cookie)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "visit_foreign");
    assert_eq!(err.status(), StatusCode::FORBIDDEN);

    let unknown = "A".repeat(43);
    for id in [unknown.as_str(), "short", "../../etc/passwd"] {
        let err = flow
            .visit(id, &headers(Some(&eve_cookie)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "visit_not_found", "{id}");
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
    }
    // A cookie of the wrong shape counts as none.
    let err = flow
        .visit(
            &other_browser.visit_id,
            &headers(Some(&format!(
                "{SECURE_SESSION_COOKIE}=x; {SESSION_COOKIE}=y"
            ))),
        )
        .await;
    assert!(matches!(err, Ok(VisitPage::NewWindow(_))));
}

#[tokio::test]
async fn without_the_cookie_the_visit_continues_once_in_a_new_window() {
    let flow = flow().await;
    let answer = launch(&flow, as_user("u-alice", "Alice"), None).await;
    // The frame lost the cookie: the page offers a new window.
    let VisitPage::NewWindow(page) = flow.visit(&answer.visit_id, &headers(None)).await.unwrap()
    else {
        panic!("expected the new-window page");
    };
    assert_eq!(page.action, flow.new_window_url(&answer.visit_id));
    let html = page.to_html();
    assert!(html.contains("target=\"_blank\""), "{html}");

    // The new window gets the session cookie once.
    let handed = flow.continue_in_new_window(&answer.visit_id).await.unwrap();
    assert_eq!(handed.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        handed.headers()[header::LOCATION],
        flow.visit_url(&answer.visit_id).as_str()
    );
    let set = handed.headers()[header::SET_COOKIE].to_str().unwrap();
    assert_eq!(pair(set), pair(&answer.set_cookie));
    let err = flow
        .continue_in_new_window(&answer.visit_id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "new_window_handoff_unavailable");
    assert_eq!(err.status(), StatusCode::FORBIDDEN);
    assert!(matches!(
        flow.visit(&answer.visit_id, &headers(Some(&pair(set))))
            .await
            .unwrap(),
        VisitPage::Open(_)
    ));
    // Used: a cookie-less request now gets the refusal, not the offer.
    let err = flow
        .visit(&answer.visit_id, &headers(None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "session_cookie_missing");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);

    // Once the cookie has reached the page, the hand-over is gone.
    let second = launch(&flow, as_user("u-bob", "Bob"), None).await;
    flow.visit(&second.visit_id, &headers(Some(&pair(&second.set_cookie))))
        .await
        .unwrap();
    let err = flow
        .continue_in_new_window(&second.visit_id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "new_window_handoff_unavailable");
    let err = flow.continue_in_new_window("not-an-id").await.unwrap_err();
    assert_eq!(err.code(), "visit_not_found");
}

#[tokio::test]
async fn a_bad_launch_records_nothing() {
    let flow = flow().await;
    let url = flow.launch_url(None);
    let signed = as_user("u-alice", "Alice")
        .sign(&url, &Credentials::new("key", "wrong"), now())
        .unwrap();
    let body = signed.form_body();
    let err = flow
        .launch(
            &SignedRequest::form_post(&url, body.as_bytes()),
            &HeaderMap::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "bad_signature");
    let long_guid =
        as_user("u-alice", "Alice").param("tool_consumer_instance_guid", "g".repeat(300));
    let err = try_launch(&flow, long_guid, None).await.unwrap_err();
    assert_eq!(err.code(), "invalid_parameter");
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
}
