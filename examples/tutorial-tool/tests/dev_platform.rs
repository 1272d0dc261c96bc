//! The tutorial's tool, launched by the dev platform of `lti platform` as the
//! tutorial describes: both run in this process, each on a loopback port, the
//! platform configured by the tutorial's own `platform.toml`. The browser's
//! part (following redirects and auto-submitted forms, carrying cookies) is
//! played by the test against the two routers; the tool's service calls (the
//! AGS token and score) and the platform's fetch of the tool's keys go over
//! real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use axum::Router;
use axum::body::{Body, to_bytes};
use http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Request, Response, StatusCode};
use lti_app::devplatform::{DevPlatform, DevPlatformConfig, USER_COOKIE, router};
use lti_jose::{Algorithm, SigningKey};
use lti_registry::{Deployment, KeySource, PlatformRegistration};
use tower::ServiceExt;

const PLATFORM_TOML: &str = include_str!("../platform.toml");

async fn send(app: &Router, request: Request<Body>) -> (Response<Body>, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    (Response::from_parts(parts, Body::empty()), text)
}

fn get(uri: &str, cookie: &str) -> Request<Body> {
    Request::get(uri)
        .header(COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

fn post_form(uri: &str, cookie: &str, fields: &[(String, String)]) -> Request<Body> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    Request::post(uri)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(COOKIE, cookie)
        .body(Body::from(body))
        .unwrap()
}

/// The path and query of an absolute URL on `origin`.
fn path_on(url: &str, origin: &str) -> String {
    url.strip_prefix(origin)
        .unwrap_or_else(|| panic!("{url} is not on {origin}"))
        .to_owned()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The action and hidden fields of the auto-submitting form in `html`.
fn auto_form(html: &str) -> (String, Vec<(String, String)>) {
    let value_of = |tag: &str, name: &str| {
        let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
        let len = tag[start..].find('"')?;
        Some(unescape(&tag[start..start + len]))
    };
    let form = html.split("<form").nth(1).expect("a form");
    let action = value_of(form.split('>').next().unwrap(), "action").expect("an action");
    let fields = form
        .split("<input")
        .skip(1)
        .map(|input| {
            let tag = input.split('>').next().unwrap();
            (
                value_of(tag, "name").unwrap(),
                value_of(tag, "value").unwrap(),
            )
        })
        .collect();
    (action, fields)
}

fn first_cookie(response: &Response<Body>) -> String {
    let header = response.headers()[SET_COOKIE].to_str().unwrap();
    header.split(';').next().unwrap().to_owned()
}

/// The tool's teacher page for a launch.
async fn teacher_page(tool: &Router, launch_id: &str) -> (Response<Body>, String) {
    let path = format!("/app/teacher?lti_launch_id={launch_id}");
    send(tool, get(&path, "")).await
}

/// The two servers, as the browser sees them.
struct Pair {
    platform: Router,
    tool: Router,
    platform_origin: String,
    tool_origin: String,
}

impl Pair {
    /// `user` opens the course's link: the platform starts the login, the
    /// tool redirects to the platform's authorization endpoint, the platform
    /// posts the signed id_token to the tool, which redirects to its target.
    /// Returns the target (path and query) and the launch id.
    async fn launch_as(&self, user: &str) -> (String, String) {
        let signed_in = format!("{USER_COOKIE}={user}");
        let (page, html) = send(
            &self.platform,
            get(
                &format!("/launch/frame?link=link-1&user={user}"),
                &signed_in,
            ),
        )
        .await;
        assert_eq!(page.status(), StatusCode::OK, "{html}");
        let (action, fields) = auto_form(&html);
        assert_eq!(action, format!("{}/lti/login", self.tool_origin));

        let (login, body) = send(&self.tool, post_form("/lti/login", "", &fields)).await;
        assert_eq!(login.status(), StatusCode::FOUND, "{body}");
        let state_cookie = first_cookie(&login);
        let auth = login.headers()[LOCATION].to_str().unwrap().to_owned();
        assert!(
            auth.starts_with(&format!("{}/auth?", self.platform_origin)),
            "{auth}"
        );

        let (page, html) = send(
            &self.platform,
            get(&path_on(&auth, &self.platform_origin), &signed_in),
        )
        .await;
        assert_eq!(page.status(), StatusCode::OK, "{html}");
        let (action, fields) = auto_form(&html);
        assert_eq!(action, format!("{}/lti/launch", self.tool_origin));
        let (launch, body) =
            send(&self.tool, post_form("/lti/launch", &state_cookie, &fields)).await;
        assert_eq!(launch.status(), StatusCode::SEE_OTHER, "{body}");
        let target = launch.headers()[LOCATION].to_str().unwrap().to_owned();
        let target = path_on(&target, &self.tool_origin);
        assert!(target.starts_with("/app?lti_launch_id="), "{target}");
        let query: HashMap<String, String> =
            form_urlencoded::parse(target.split_once('?').unwrap().1.as_bytes())
                .into_owned()
                .collect();
        let id = query["lti_launch_id"].clone();
        (target, id)
    }
}

#[tokio::test]
async fn the_dev_platform_launches_the_tutorial_tool_which_grades_the_learner() {
    // Two loopback ports: the tool as 127.0.0.1, the platform as localhost
    // (cross-site to each other, as a tool and an LMS are).
    let tool_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let platform_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tool_origin = format!(
        "http://127.0.0.1:{}",
        tool_listener.local_addr().unwrap().port()
    );
    let platform_origin = format!(
        "http://localhost:{}",
        platform_listener.local_addr().unwrap().port()
    );

    // The tutorial's platform.toml, with the tool's port as bound here.
    let config =
        DevPlatformConfig::parse(&PLATFORM_TOML.replace("http://127.0.0.1:3000", &tool_origin))
            .unwrap();
    assert_eq!(config.tools.len(), 1);
    // Throw-away test key (see tests/fixtures/lti-app-platform/README.md).
    let platform_key = SigningKey::from_pem(
        include_str!("../../../tests/fixtures/lti-app-platform/demo-keys/platform.pem"),
        Algorithm::RS256,
    )
    .unwrap();
    let dev = DevPlatform::with_signing_key(&platform_origin, &config.tools, platform_key).unwrap();
    let platform = router(dev.clone());
    let served = platform.clone();
    tokio::spawn(async move { axum::serve(platform_listener, served).await.unwrap() });

    // The tool, configured as main.rs does: its defaults are the dev
    // platform's endpoints, derived from the issuer.
    assert_eq!(dev.auth_url(), format!("{}/auth", dev.issuer()));
    assert_eq!(dev.token_url(), format!("{}/token", dev.issuer()));
    assert_eq!(
        dev.jwks_url(),
        format!("{}/.well-known/jwks.json", dev.issuer())
    );
    assert_eq!(config.tools[0].client_id, "tutorial-tool");
    let registration = PlatformRegistration::new(
        dev.issuer(),
        config.tools[0].client_id.clone(),
        dev.auth_url(),
        dev.token_url(),
        KeySource::JwksUrl {
            url: dev.jwks_url(),
        },
    )
    .with_deployment(Deployment::active(config.tools[0].deployment_id.clone()));
    // Throw-away test key (see tests/fixtures/lti-app/README.md).
    let tool_key = include_str!("../../../tests/fixtures/lti-app/tool-key.pem").to_owned();
    // The dev platform listens on loopback: allowed explicitly.
    let state =
        tutorial_tool::build_state(&format!("{tool_origin}/"), registration, tool_key, true)
            .await
            .unwrap();
    let tool = tutorial_tool::app(state);
    let served = tool.clone();
    tokio::spawn(async move { axum::serve(tool_listener, served).await.unwrap() });

    let both = Pair {
        platform: platform.clone(),
        tool: tool.clone(),
        platform_origin,
        tool_origin,
    };

    // A learner opens the course's link and lands on the launch page.
    let (target, launch_id) = both.launch_as("grace").await;

    // The launch page greets the learner in the dev platform's course.
    let (page, html) = send(&tool, get(&target, "")).await;
    assert_eq!(page.status(), StatusCode::OK, "{html}");
    assert!(html.contains("Hello Grace Hopper"), "{html}");
    assert!(html.contains("Course: Introduction to LTI"), "{html}");
    assert!(html.contains("Instructor: false"), "{html}");

    // The teacher page refuses a learner.
    let (page, html) = teacher_page(&tool, &launch_id).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(html.contains("insufficient_role"), "{html}");

    // "I am done": the tool gets a token from the platform (signing its request
    // with its key, which the platform fetches from the tool's JWKS) and posts
    // the score on a line item it creates.
    let (page, html) = send(
        &tool,
        post_form(&format!("/app/done?lti_launch_id={launch_id}"), "", &[]),
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK, "{html}");
    assert!(html.contains("Score sent."), "{html}");

    // The platform's grade book shows the line item and Grace's score.
    let (page, html) = send(&platform, get("/gradebook", &format!("{USER_COOKIE}=ada"))).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(html.contains("Tutorial"), "{html}");
    let grace = html
        .split("<tr>")
        .find(|row| row.starts_with("<th>Grace Hopper"))
        .expect("Grace's row");
    assert!(grace.contains("1 / 1"), "{grace}");
    let alan = html
        .split("<tr>")
        .find(|row| row.starts_with("<th>Alan Turing"))
        .expect("Alan's row");
    assert!(!alan.contains(" / 1"), "only Grace was graded: {alan}");

    // The instructor's launch opens the teacher page.
    let (target, launch_id) = both.launch_as("ada").await;
    let (page, html) = send(&tool, get(&target, "")).await;
    assert_eq!(page.status(), StatusCode::OK, "{html}");
    assert!(html.contains("Hello Ada Lovelace"), "{html}");
    assert!(html.contains("Instructor: true"), "{html}");
    let (page, html) = teacher_page(&tool, &launch_id).await;
    assert_eq!(page.status(), StatusCode::OK, "{html}");
    assert!(html.contains("<p>Deployment 1</p>"), "{html}");

    // Without a launch id, the tool's pages refuse with a stable code.
    let (page, html) = send(
        &tool,
        Request::get("/app")
            .header("accept", "application/json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert!(html.contains("launch_id_missing"), "{html}");
}
