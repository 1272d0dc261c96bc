//! The dev platform's side of LTI Dynamic Registration over its real routes:
//! the configuration document, the `/admin/tools` page (CSRF-checked form,
//! framed registration page, close-message listener allowed by the script
//! policy), the registration endpoint adding the tool to the course, and the
//! refusals (used, expired and unknown tokens; URLs outside the tool's domain;
//! plain http off loopback), each with its code and nothing stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, SET_COOKIE};
use http::{Request, Response, StatusCode};
use lti_app::devplatform::{DevPlatform, router};
use lti_jose::{Algorithm, SigningKey};
use lti_message::registration::{
    ClientRegistration, LtiToolConfiguration, PlatformConfiguration, ToolMessage,
};
use serde_json::Value;
use tower::ServiceExt as _;

const PLATFORM_PEM: &str = include_str!("../../../tests/fixtures/lti-platform/platform.pem");
const BASE: &str = "http://localhost:4000";

fn dev(lifetime: u64) -> DevPlatform {
    let key = SigningKey::from_pem(PLATFORM_PEM, Algorithm::RS256).unwrap();
    DevPlatform::with_signing_key(BASE, &[], key)
        .unwrap()
        .with_registration_token_lifetime(lifetime)
        .unwrap()
}

async fn call(app: &Router, req: Request<Body>) -> Response<Bytes> {
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    Response::from_parts(parts, bytes)
}

fn text(resp: &Response<Bytes>) -> String {
    String::from_utf8_lossy(resp.body()).into_owned()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in the first tag of `html` that contains `marker`.
fn attr(html: &str, marker: &str, name: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {html}"));
    let tag_start = html[..at + 1].rfind('<').unwrap();
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>').unwrap()];
    let key = format!(" {name}=\"");
    let start = tag.find(&key).unwrap() + key.len();
    let end = start + tag[start..].find('"').unwrap();
    unescape(&tag[start..end])
}

/// The admin page's cookie and CSRF token.
async fn admin_session(app: &Router) -> (String, String) {
    let resp = call(
        app,
        Request::get("/admin/tools").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("SameSite=Strict") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let html = text(&resp);
    assert!(html.contains("name=\"registration_url\""), "{html}");
    (cookie, attr(&html, "name=\"csrf_token\"", "value"))
}

fn admin_post(cookie: Option<&str>, fields: &[(&str, &str)]) -> Request<Body> {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        body.append_pair(k, v);
    }
    let mut b =
        Request::post("/admin/tools").header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(COOKIE, c);
    }
    b.body(Body::from(body.finish())).unwrap()
}

/// Submits the admin form for `registration_url`; returns the framed URL.
async fn start_registration(app: &Router, registration_url: &str) -> (String, String) {
    let (cookie, csrf) = admin_session(app).await;
    let resp = call(
        app,
        admin_post(
            Some(&cookie),
            &[
                ("registration_url", registration_url),
                ("csrf_token", &csrf),
            ],
        ),
    )
    .await;
    let html = text(&resp);
    assert_eq!(resp.status(), StatusCode::OK, "{html}");
    // The close-message listener is the platform's own script, allowed by hash.
    assert!(html.contains("org.imsglobal.lti.close"));
    let csp = resp.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("'sha256-"), "{csp}");
    let src = attr(&html, "id=\"registration-frame\"", "src");
    let token = src
        .split_once('?')
        .map(|(_, q)| q)
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()).into_owned())
        .find(|(k, _)| k == "registration_token")
        .map(|(_, v)| v)
        .unwrap();
    (src, token)
}

fn tool_metadata(host: &str) -> ClientRegistration {
    let tc = LtiToolConfiguration {
        domain: host.into(),
        target_link_uri: format!("http://{host}/lti/launch"),
        claims: vec!["iss".into(), "sub".into(), "name".into()],
        messages: vec![ToolMessage {
            message_type: "LtiResourceLinkRequest".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut r = ClientRegistration::new_request(
        "Loopback tool",
        format!("http://{host}/lti/login"),
        vec![format!("http://{host}/lti/launch")],
        format!("http://{host}/.well-known/jwks.json"),
        tc,
    );
    r.set_scopes(["https://purl.imsglobal.org/spec/lti-ags/scope/score"]);
    r
}

fn register_request(token: &str, body: &ClientRegistration) -> Request<Body> {
    Request::post("/register")
        .header(CONTENT_TYPE, "application/json")
        .header(AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

async fn refused(
    app: &Router,
    dev: &DevPlatform,
    req: Request<Body>,
    status: StatusCode,
    code: &str,
) {
    let resp = call(app, req).await;
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(resp.status(), status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(dev.tools().is_empty(), "nothing stored");
    let course = call(app, Request::get("/").body(Body::empty()).unwrap()).await;
    assert!(!text(&course).contains("class=\"resource-link\""));
}

#[tokio::test]
async fn the_configuration_document_is_served_under_the_issuer() {
    let dev = dev(3600);
    let app = router(dev.clone());
    let resp = call(
        &app,
        Request::get("/.well-known/openid-configuration")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: PlatformConfiguration = serde_json::from_slice(resp.body()).unwrap();
    assert!(
        doc.missing_members().is_empty(),
        "{:?}",
        doc.missing_members()
    );
    assert_eq!(doc.issuer, BASE);
    assert_eq!(doc.authorization_endpoint, dev.auth_url());
    assert_eq!(doc.jwks_uri, dev.jwks_url());
    assert_eq!(doc.token_endpoint, dev.token_url());
    assert_eq!(doc.registration_endpoint, format!("{BASE}/register"));
    assert_eq!(
        dev.openid_configuration_url(),
        format!("{BASE}/.well-known/openid-configuration")
    );
    let platform = doc.lti_platform_configuration().unwrap().unwrap();
    assert_eq!(platform.product_family_code, "lti-rs");
    assert!(platform.supports_message("LtiDeepLinkingRequest"));
    assert!(!platform.variables.is_empty());
}

#[tokio::test]
async fn the_admin_flow_registers_a_tool_that_the_course_can_launch() {
    let dev = dev(3600);
    let app = router(dev.clone());
    let (src, token) = start_registration(&app, "http://127.0.0.1:3999/lti/register?x=1").await;
    assert!(src.starts_with("http://127.0.0.1:3999/lti/register?x=1&openid_configuration="));
    assert!(src.contains(&format!(
        "openid_configuration={}",
        form_urlencoded::byte_serialize(dev.openid_configuration_url().as_bytes())
            .collect::<String>()
    )));
    // The tool posts its metadata with the token.
    let resp = call(
        &app,
        register_request(&token, &tool_metadata("127.0.0.1:3999")),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", text(&resp));
    let answer: ClientRegistration = serde_json::from_slice(resp.body()).unwrap();
    let client_id = answer.client_id.unwrap();
    let deployment = answer.tool_configuration.deployment_id.unwrap();
    assert_eq!(
        answer.scope,
        "https://purl.imsglobal.org/spec/lti-ags/scope/score"
    );

    let tools = dev.tools();
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0].registration.client_id, client_id);
    assert_eq!(tools[0].deployment_id, deployment);
    // The course lists it with launch buttons, the admin page too.
    let course = text(&call(&app, Request::get("/").body(Body::empty()).unwrap()).await);
    assert!(course.contains("Loopback tool"), "{course}");
    let link = attr(&course, "class=\"resource-link\"", "id")
        .trim_start_matches("item-")
        .to_owned();
    assert!(
        course.contains(&format!("id=\"launch-{link}-ada\"")),
        "{course}"
    );
    let admin = text(
        &call(
            &app,
            Request::get("/admin/tools").body(Body::empty()).unwrap(),
        )
        .await,
    );
    assert!(
        admin.contains(&format!("id=\"tool-{client_id}\"")),
        "{admin}"
    );
    // The launch starts: a login initiation to the registered login URL.
    let launch = call(
        &app,
        Request::get(format!("/launch/frame?link={link}&user=ada"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let html = text(&launch);
    assert_eq!(launch.status(), StatusCode::OK, "{html}");
    assert!(
        html.contains("action=\"http://127.0.0.1:3999/lti/login\""),
        "{html}"
    );
    assert!(html.contains(&client_id), "{html}");

    // The token is spent: reuse is 401 and adds nothing.
    let resp = call(
        &app,
        register_request(&token, &tool_metadata("127.0.0.1:3999")),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["code"], "registration_token_used");
    assert_eq!(dev.tools().len(), 1);
}

#[tokio::test]
async fn refusals_have_their_codes_and_store_nothing() {
    let dev = dev(3600);
    let app = router(dev.clone());

    // Metadata outside the declared domain.
    let (_, token) = start_registration(&app, "http://127.0.0.1:3999/register").await;
    let mut r = tool_metadata("127.0.0.1:3999");
    r.jwks_uri = "http://127.0.0.1:4444/.well-known/jwks.json".into();
    refused(
        &app,
        &dev,
        register_request(&token, &r),
        StatusCode::BAD_REQUEST,
        "url_outside_domain",
    )
    .await;

    // A redirect URI outside it: RFC 7591's invalid_redirect_uri.
    let (_, token) = start_registration(&app, "http://127.0.0.1:3999/register").await;
    let mut r = tool_metadata("127.0.0.1:3999");
    r.redirect_uris = vec!["http://localhost:3999/lti/launch".into()];
    let resp = call(&app, register_request(&token, &r)).await;
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_redirect_uri");
    assert!(dev.tools().is_empty());

    // Plain http on a host that is not loopback.
    let (_, token) = start_registration(&app, "http://127.0.0.1:3999/register").await;
    let r = tool_metadata("tool.example.com");
    refused(
        &app,
        &dev,
        register_request(&token, &r),
        StatusCode::BAD_REQUEST,
        "insecure_url",
    )
    .await;

    // Tokens: never minted, and (after the refusal above) already used.
    refused(
        &app,
        &dev,
        register_request("made-up", &tool_metadata("127.0.0.1:3999")),
        StatusCode::UNAUTHORIZED,
        "registration_token_unknown",
    )
    .await;
    refused(
        &app,
        &dev,
        register_request(&token, &tool_metadata("127.0.0.1:3999")),
        StatusCode::UNAUTHORIZED,
        "registration_token_used",
    )
    .await;
    let no_token = Request::post("/register")
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(
            serde_json::to_vec(&tool_metadata("127.0.0.1:3999")).unwrap(),
        ))
        .unwrap();
    refused(
        &app,
        &dev,
        no_token,
        StatusCode::UNAUTHORIZED,
        "registration_token_missing",
    )
    .await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let dev = dev(1);
    let app = router(dev.clone());
    let (_, token) = start_registration(&app, "http://127.0.0.1:3999/register").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    refused(
        &app,
        &dev,
        register_request(&token, &tool_metadata("127.0.0.1:3999")),
        StatusCode::UNAUTHORIZED,
        "registration_token_expired",
    )
    .await;
}

#[tokio::test]
async fn the_admin_form_needs_its_csrf_token_and_a_url() {
    let dev = dev(3600);
    let app = router(dev.clone());
    let (cookie, csrf) = admin_session(&app).await;
    let url = "http://127.0.0.1:3999/register";
    for req in [
        admin_post(Some(&cookie), &[("registration_url", url)]),
        admin_post(None, &[("registration_url", url), ("csrf_token", &csrf)]),
        admin_post(
            Some("lti_dev_platform_admin=another-browser"),
            &[("registration_url", url), ("csrf_token", &csrf)],
        ),
    ] {
        let resp = call(&app, req).await;
        let html = text(&resp);
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{html}");
        assert!(html.contains("csrf_check_failed"), "{html}");
    }
    let resp = call(
        &app,
        admin_post(
            Some(&cookie),
            &[
                ("registration_url", "javascript:alert(1)"),
                ("csrf_token", &csrf),
            ],
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(text(&resp).contains("invalid_parameter"));
    assert!(dev.tools().is_empty());
}
