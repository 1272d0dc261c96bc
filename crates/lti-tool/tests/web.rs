//! The framework-free adapter half (`lti_tool::web`) on real verified launches:
//! role guards, the launch cookie and the deep-linking route's body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lti_tool::web::{self, DeepLinkRequest, Error};
use lti_tool::{Launch, LaunchOutcome, ToolError};
use serde_json::{Value, json};

const MEMBERSHIP: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#";
const RETURN_URL: &str = "https://platform.example/deep_links/return";

async fn launch_with_roles(h: &Harness, roles: Value) -> Launch {
    h.launch_with(|c| {
        c.insert(format!("{LTI}roles"), roles);
    })
    .await
    .unwrap()
    .0
}

async fn deep_linking_launch(h: &Harness) -> Launch {
    h.launch_with(|c| {
        c.remove(&format!("{LTI}resource_link"));
        c.insert(format!("{LTI}message_type"), json!("LtiDeepLinkingRequest"));
        c.insert(
            "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings".to_owned(),
            json!({
                "deep_link_return_url": RETURN_URL,
                "accept_types": ["link"],
                "accept_presentation_document_targets": ["window"],
                "accept_multiple": false
            }),
        );
    })
    .await
    .unwrap()
    .0
}

fn insufficient(result: Result<(), Error>) -> (String, String) {
    match result {
        Err(Error::InsufficientRole { expected, found }) => (expected, found),
        other => panic!("expected InsufficientRole, found {other:?}"),
    }
}

#[tokio::test]
async fn instructors_and_administrators_pass_the_instructor_guard() {
    let h = Harness::new().await;
    for role in ["Instructor", "Administrator"] {
        let launch = launch_with_roles(&h, json!([format!("{MEMBERSHIP}{role}")])).await;
        web::require_instructor(&launch).unwrap();
    }
}

#[tokio::test]
async fn a_learner_is_refused_by_the_instructor_guard_with_its_roles_quoted() {
    let h = Harness::new().await;
    let launch = launch_with_roles(&h, json!([format!("{MEMBERSHIP}Learner")])).await;
    let result = web::require_instructor(&launch);
    assert_eq!(result.as_ref().unwrap_err().code(), "insufficient_role");
    assert_eq!(result.as_ref().unwrap_err().http_status().as_u16(), 403);
    let (expected, found) = insufficient(result);
    assert_eq!(expected, "an instructor or higher role");
    assert_eq!(found, format!("{MEMBERSHIP}Learner"));
}

#[tokio::test]
async fn any_role_accepts_short_names_and_full_uris_and_refuses_the_rest() {
    let h = Harness::new().await;
    let launch = launch_with_roles(&h, json!([format!("{MEMBERSHIP}Mentor")])).await;
    web::require_any_role(&launch, &["Instructor", "Mentor"]).unwrap();
    web::require_any_role(&launch, &[&format!("{MEMBERSHIP}Mentor")]).unwrap();
    let (expected, _) = insufficient(web::require_any_role(&launch, &["Instructor", "Learner"]));
    assert_eq!(expected, "one of [Instructor, Learner]");
    let (_, _) = insufficient(web::require_any_role(&launch, &[]));
}

#[tokio::test]
async fn a_long_role_list_is_clipped_in_the_refusal() {
    let h = Harness::new().await;
    let roles: Vec<String> = (0..40).map(|i| format!("{MEMBERSHIP}Custom{i}")).collect();
    let launch = launch_with_roles(&h, json!(roles)).await;
    let (_, found) = insufficient(web::require_instructor(&launch));
    assert_eq!(found.chars().count(), 201);
    assert!(found.ends_with('…'));
}

#[tokio::test]
async fn the_launch_cookie_is_cross_site_for_an_https_tool() {
    let h = Harness::new().await;
    assert_eq!(
        web::launch_cookie(&h.tool, "abc"),
        "lti_launch=abc; Path=/; HttpOnly; Secure; SameSite=None; Partitioned"
    );
}

#[tokio::test]
async fn the_launch_cookie_is_lax_for_an_http_tool() {
    let h = Harness::new().await;
    let tool = lti_tool::Tool::builder("http://localhost:8080/", &h.store)
        .state_cookie_secret(COOKIE_SECRET)
        .build()
        .unwrap();
    assert_eq!(
        web::launch_cookie(&tool, "abc"),
        "lti_launch=abc; Path=/; HttpOnly; SameSite=Lax"
    );
}

#[tokio::test]
async fn a_deep_link_body_fills_the_builder_and_the_json_answer_names_the_return_url() {
    let h = Harness::new().await;
    let launch = deep_linking_launch(&h).await;
    let request = DeepLinkRequest::parse(
        br#"{"items":[{"type":"link","url":"https://tool.example/a"}],"msg":"added"}"#,
    )
    .unwrap();
    let mut builder = launch.deep_linking_response().unwrap();
    request.apply(&mut builder).unwrap();
    let jwt = h
        .tool
        .sign_deep_link_response(&launch, &builder)
        .await
        .unwrap();
    let answer = DeepLinkRequest::json_answer(&launch, &jwt);
    assert_eq!(answer["deep_link_return_url"], RETURN_URL);
    assert_eq!(answer["jwt"], jwt.as_str());
}

#[tokio::test]
async fn an_item_the_settings_refuse_is_a_tool_error() {
    let h = Harness::new().await;
    let launch = deep_linking_launch(&h).await;
    let request =
        DeepLinkRequest::parse(br#"{"items":[{"type":"html","html":"<p>x</p>"}]}"#).unwrap();
    let mut builder = launch.deep_linking_response().unwrap();
    let error = request.apply(&mut builder).unwrap_err();
    assert!(matches!(error, Error::Tool(_)), "{error:?}");
    let expected = ToolError::from(
        launch
            .deep_linking_response()
            .unwrap()
            .add_item(serde_json::from_value(json!({"type":"html","html":"<p>x</p>"})).unwrap())
            .unwrap_err(),
    );
    assert_eq!(error.code(), expected.code());
    assert_eq!(error.http_status(), expected.http_status());
}

#[tokio::test]
async fn a_resource_link_launch_has_no_return_url_in_the_json_answer() {
    let h = Harness::new().await;
    let launch = launch_with_roles(&h, json!([format!("{MEMBERSHIP}Instructor")])).await;
    assert_eq!(
        DeepLinkRequest::json_answer(&launch, "t")["deep_link_return_url"],
        ""
    );
}

#[tokio::test]
async fn the_launch_route_flow_redirects_and_sets_the_launch_cookie() {
    let h = Harness::new().await;
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    let outcome = web::launch_with_cookie(&h.tool, &login.post(&token))
        .await
        .unwrap();
    let LaunchOutcome::Launched { launch, response } = outcome else {
        panic!("expected a completed launch");
    };
    assert_eq!(response.status(), http::StatusCode::SEE_OTHER);
    let cookies: Vec<_> = response
        .headers()
        .get_all(http::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies.contains(&web::launch_cookie(&h.tool, launch.launch_id())),
        "{cookies:?}"
    );
}

#[tokio::test]
async fn the_launch_route_flow_sets_the_launch_cookie_only_once_storage_confirmed_it() {
    let h = Harness::with(|b| b.platform_storage(true)).await;
    let login = h.storage_login("_parent").await;
    let token = h.sign(&h.claims(&login.nonce));
    let check = web::launch_with_cookie(&h.tool, &login.cookieless_post(&token))
        .await
        .unwrap();
    assert!(check.launch().is_none());
    assert_eq!(check.response().status(), http::StatusCode::OK);
    assert_eq!(check.response().set_cookies().count(), 0);
    let pending = html_attr(&body_text(check.response()), "value");
    let confirm = confirm_request(
        &[("lti_storage_confirm", &pending)],
        &[("origin", "https://tool.example")],
    );
    let done = web::launch_with_cookie(&h.tool, &confirm).await.unwrap();
    let launch = done.launch().expect("confirmed").clone();
    let response = done.into_response();
    assert_eq!(response.status(), http::StatusCode::SEE_OTHER);
    assert!(
        response
            .set_cookies()
            .any(|c| c == web::launch_cookie(&h.tool, launch.launch_id())),
        "{:?}",
        response.set_cookies().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_launch_route_flow_passes_on_the_tool_error() {
    let h = Harness::new().await;
    let login = h.login().await;
    let mut claims = h.claims(&login.nonce);
    claims.insert("aud".into(), json!("someone-else"));
    let token = h.sign(&claims);
    let error = web::launch_with_cookie(&h.tool, &login.post(&token))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ToolError::InvalidAudience { .. }),
        "{error:?}"
    );
}

/// Logs in with `target` as the `target_link_uri` (in the login and the
/// id_token) and runs the launch route's flow; returns the redirect's location.
async fn launch_to_target(h: &Harness, target: &str) -> (Launch, String) {
    let params = [
        ("iss", ISS),
        ("login_hint", "user-hint-42"),
        ("target_link_uri", target),
        ("client_id", CLIENT_ID),
    ];
    let login = Login::from_response(&h.tool.login(&get("/lti/login", &params)).await.unwrap());
    let mut claims = h.claims(&login.nonce);
    claims.insert(format!("{LTI}target_link_uri"), json!(target));
    let outcome = web::launch_with_cookie(&h.tool, &login.post(&h.sign(&claims)))
        .await
        .unwrap();
    let LaunchOutcome::Launched { launch, response } = outcome else {
        panic!("expected a completed launch");
    };
    assert_eq!(response.status(), http::StatusCode::SEE_OTHER);
    (*launch, response.location().unwrap().to_owned())
}

#[tokio::test]
async fn a_launch_whose_target_is_the_launch_url_lands_on_the_landing_page() {
    let h = Harness::with(|b| b.landing_uri(TARGET)).await;
    assert_eq!(h.tool.redirect_uri(), "https://tool.example/lti/launch");
    let cases = [
        ("https://tool.example/lti/launch", ""),
        ("https://tool.example/lti/launch/", ""),
        (
            "https://tool.example/lti/launch?resource=42",
            "resource=42&",
        ),
        (
            "https://tool.example/lti/launch/?resource=42&x=a%20b",
            "resource=42&x=a%20b&",
        ),
        // A launch id in the target is dropped: only the launch's own is carried.
        (
            "https://tool.example/lti/launch?lti_launch_id=planted&resource=7",
            "resource=7&",
        ),
    ];
    for (target, carried) in cases {
        let (launch, location) = launch_to_target(&h, target).await;
        assert_eq!(
            location,
            format!("{TARGET}?{carried}lti_launch_id={}", launch.launch_id()),
            "{target}"
        );
        // The launch keeps the target the platform asked for.
        assert_eq!(launch.target_link_uri(), target);
    }
}

#[tokio::test]
async fn the_default_landing_page_is_the_public_base_url() {
    let h = Harness::new().await;
    assert_eq!(h.tool.landing_uri(), TOOL_BASE);
    let (launch, location) = launch_to_target(&h, "https://tool.example/lti/launch").await;
    assert_eq!(
        location,
        format!("{TOOL_BASE}?lti_launch_id={}", launch.launch_id())
    );
}

#[tokio::test]
async fn any_other_target_is_kept_with_its_query() {
    let h = Harness::with(|b| b.landing_uri(TARGET)).await;
    let (launch, location) = launch_to_target(
        &h,
        "https://tool.example/lti/launcher?lti_launch_id=planted&a=1",
    )
    .await;
    assert_eq!(
        location,
        format!(
            "https://tool.example/lti/launcher?a=1&lti_launch_id={}",
            launch.launch_id()
        )
    );
    assert_eq!(
        h.tool.post_launch_location(TARGET, "id-1"),
        format!("{TARGET}?lti_launch_id=id-1")
    );
    assert_eq!(
        h.tool
            .post_launch_location("https://tool.example/app?a=1#top", "id-1"),
        "https://tool.example/app?a=1&lti_launch_id=id-1#top"
    );
}

#[tokio::test]
async fn a_get_to_the_launch_url_with_a_launch_id_is_sent_to_the_landing_page() {
    let h = Harness::with(|b| b.landing_uri(TARGET)).await;
    let headers = http::HeaderMap::new();
    let response =
        web::launch_get(&h.tool, &headers, Some("resource=42&lti_launch_id=abc")).unwrap();
    assert_eq!(response.status(), http::StatusCode::SEE_OTHER);
    assert_eq!(
        response.location(),
        Some(format!("{TARGET}?resource=42&lti_launch_id=abc").as_str())
    );
    assert_eq!(response.headers()[http::header::CACHE_CONTROL], "no-store");
    // The launch cookie is a launch id too: on to the landing page, which reads it.
    let mut with_cookie = http::HeaderMap::new();
    with_cookie.insert(
        http::header::COOKIE,
        http::HeaderValue::from_static("lti_launch=abc"),
    );
    let response = web::launch_get(&h.tool, &with_cookie, None).unwrap();
    assert_eq!(response.location(), Some(TARGET));
    // Without any launch id: 401 launch_id_missing, not a redirect.
    for query in [None, Some("resource=42"), Some("lti_launch_id=")] {
        let error = web::launch_get(&h.tool, &headers, query).unwrap_err();
        assert_eq!(error.code(), "launch_id_missing");
        assert_eq!(error.http_status(), http::StatusCode::UNAUTHORIZED);
    } // A query id the browser's launch cookie does not hold is not followed.
    let error = web::launch_get(&h.tool, &with_cookie, Some("lti_launch_id=planted")).unwrap_err();
    assert_eq!(error.code(), "launch_id_not_bound");
    assert_eq!(error.http_status(), http::StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_landing_page_that_is_the_launch_url_is_a_configuration_error() {
    let clock = lti_registry::ManualClock::new(NOW);
    let store = store(&clock).await;
    for landing in [
        "https://tool.example/lti/launch",
        "https://tool.example/lti/launch/?x=1",
        "not a url",
    ] {
        let error = builder(&store, &clock)
            .landing_uri(landing)
            .build()
            .unwrap_err();
        assert_eq!(error.code(), "configuration", "{landing}");
    }
    // The default landing page (the base URL) collides with a redirect URI at the base.
    let error = builder(&store, &clock)
        .redirect_uri(TOOL_BASE)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("landing URI"), "{error}");
}

fn request_headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

#[tokio::test]
async fn a_state_changing_request_on_the_cookie_alone_is_refused_and_reads_pass() {
    let h = Harness::new().await;
    let cookie = request_headers(&[("cookie", "lti_launch=L1")]);
    for method in [http::Method::POST, http::Method::PUT, http::Method::DELETE] {
        let error = web::authorize(&h.tool, &method, &cookie, None).unwrap_err();
        assert_eq!(error.code(), "csrf_check_failed");
        assert_eq!(error.http_status().as_u16(), 403);
        assert!(
            error.to_string().contains("only the `lti_launch` cookie"),
            "{error}"
        );
    }
    for method in [http::Method::GET, http::Method::HEAD] {
        assert_eq!(
            web::authorize(&h.tool, &method, &cookie, None).unwrap(),
            "L1"
        );
    }
    // Even from the tool's own origin, the cookie alone does not do.
    let same_site = request_headers(&[
        ("cookie", "lti_launch=L1"),
        ("sec-fetch-site", "same-origin"),
    ]);
    let error = web::authorize(&h.tool, &http::Method::POST, &same_site, None).unwrap_err();
    assert_eq!(error.code(), "csrf_check_failed");
}

#[tokio::test]
async fn the_csrf_token_the_bearer_header_or_a_same_origin_page_authorise_a_post() {
    let h = Harness::new().await;
    let post = http::Method::POST;
    let token = web::csrf_token(&h.tool, "L1");
    assert_eq!(token, web::csrf_token(&h.tool, "L1"), "stable per launch");
    assert_ne!(token, web::csrf_token(&h.tool, "L2"));
    assert!(!token.contains("L1"));

    // The token in the query (a form's action) or in the header, with the id in
    // the query or only in the cookie.
    let query = web::launch_query(&h.tool, "L1");
    assert_eq!(query, format!("lti_launch_id=L1&lti_csrf_token={token}"));
    let none = http::HeaderMap::new();
    assert_eq!(
        web::authorize(&h.tool, &post, &none, Some(&query)).unwrap(),
        "L1"
    );
    let cookie_and_header =
        request_headers(&[("cookie", "lti_launch=L1"), ("x-lti-csrf-token", &token)]);
    assert_eq!(
        web::authorize(&h.tool, &post, &cookie_and_header, None).unwrap(),
        "L1"
    );
    // Another launch's token, or a made-up one, is refused.
    let other = format!(
        "lti_launch_id=L1&lti_csrf_token={}",
        web::csrf_token(&h.tool, "L2")
    );
    let error = web::authorize(&h.tool, &post, &none, Some(&other)).unwrap_err();
    assert_eq!(error.code(), "csrf_check_failed");
    assert!(error.to_string().contains("does not belong"), "{error}");
    // A tool with another secret makes other tokens.
    let other_tool = lti_tool::Tool::builder("https://tool.example/", &h.store)
        .state_cookie_secret(&[9u8; 32])
        .build()
        .unwrap();
    let foreign = web::launch_query(&other_tool, "L1");
    let error = web::authorize(&h.tool, &post, &none, Some(&foreign)).unwrap_err();
    assert_eq!(error.code(), "csrf_check_failed");

    // The bearer header is never ambient.
    let bearer = request_headers(&[("authorization", "Bearer L1")]);
    assert_eq!(web::authorize(&h.tool, &post, &bearer, None).unwrap(), "L1");

    // The id in the query from a page of the tool's own origin.
    let id_only = Some("lti_launch_id=L1");
    let own = lti_http::origin(h.tool.base_url()).unwrap();
    for evidence in [
        vec![("sec-fetch-site", "same-origin")],
        vec![("origin", own.as_str())],
    ] {
        let headers = request_headers(&evidence);
        assert_eq!(
            web::authorize(&h.tool, &post, &headers, id_only).unwrap(),
            "L1"
        );
    }
    for (evidence, named) in [
        (vec![], "neither Sec-Fetch-Site nor Origin"),
        (vec![("sec-fetch-site", "cross-site")], "\"cross-site\""),
        (vec![("sec-fetch-site", "same-site")], "\"same-site\""),
        (vec![("origin", "https://evil.example")], "evil.example"),
        (vec![("origin", "null")], "\"null\""),
        (
            // Sec-Fetch-Site, when sent, decides.
            vec![("sec-fetch-site", "cross-site"), ("origin", own.as_str())],
            "\"cross-site\"",
        ),
    ] {
        let headers = request_headers(&evidence);
        let error = web::authorize(&h.tool, &post, &headers, id_only).unwrap_err();
        assert_eq!(error.code(), "csrf_check_failed", "{evidence:?}");
        assert!(error.to_string().contains(named), "{error}");
    }
}

#[tokio::test]
async fn the_launch_cookie_keeps_the_browsers_recent_launches_newest_first() {
    let h = Harness::new().await;
    let first = web::launch_cookie_adding(&h.tool, "A", &http::HeaderMap::new());
    assert_eq!(first, web::launch_cookie(&h.tool, "A"));
    let held = request_headers(&[("cookie", "x=1; lti_launch=C.B.A")]);
    let next = web::launch_cookie_adding(&h.tool, "B", &held);
    assert!(next.starts_with("lti_launch=B.C.A;"), "{next}");
    let full: Vec<String> = (0..web::MAX_COOKIE_LAUNCHES)
        .map(|i| format!("id{i}"))
        .collect();
    let held = request_headers(&[("cookie", &format!("lti_launch={}", full.join(".")))]);
    let next = web::launch_cookie_adding(&h.tool, "new", &held);
    let value = next
        .strip_prefix("lti_launch=")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let ids: Vec<&str> = value.split('.').collect();
    assert_eq!(ids.len(), web::MAX_COOKIE_LAUNCHES);
    assert_eq!(ids[0], "new");
    assert!(!ids.contains(&"id7"), "the oldest falls out: {value}");
}

#[tokio::test]
async fn a_second_launch_in_the_same_browser_keeps_the_first_one_bound() {
    let h = Harness::new().await;
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    let posted = login.post(&token);
    let mut headers = posted.headers().clone();
    headers.append(
        http::header::COOKIE,
        http::HeaderValue::from_static("lti_launch=earlier-launch"),
    );
    let request = lti_tool::ToolRequest::new(
        posted.method().clone(),
        posted.uri().clone(),
        headers,
        posted.body().clone(),
    );
    let outcome = web::launch_with_cookie(&h.tool, &request).await.unwrap();
    let LaunchOutcome::Launched { launch, response } = outcome else {
        panic!("expected a completed launch");
    };
    let expected = format!("lti_launch={}.earlier-launch;", launch.launch_id());
    assert!(
        response
            .headers()
            .get_all(http::header::SET_COOKIE)
            .iter()
            .any(|c| c.to_str().unwrap().starts_with(&expected)),
        "{:?}",
        response.headers()
    );
}
