//! Launch start and the authorization endpoint: the happy path and every refusal with
//! its specific error; JWKS rotation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use http::{Method, Request, StatusCode};
use lti_platform::{AuthRequest, LaunchSpec, PlatformError, PlatformUser};

fn user() -> PlatformUser {
    PlatformUser::new("u-1").with_name("Grace", "Hopper")
}

fn spec() -> LaunchSpec {
    LaunchSpec::resource_link(CLIENT_ID, DEPLOYMENT_ID, "u-1", "rl-1")
        .with_roles(["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"])
}

async fn good_request(f: &Fixture) -> AuthRequest {
    let init = f.platform.start_launch(&spec()).await.unwrap();
    AuthRequest::from_http(&get(&auth_query(&init))).unwrap()
}

/// Asserts the request is refused with a posted-back OIDC error and returns the error.
async fn refused_back(
    f: &Fixture,
    req: &AuthRequest,
    user: Option<&PlatformUser>,
    oidc: &str,
) -> PlatformError {
    let err = f.platform.authorize(req, user).await.unwrap_err();
    let (uri, state) = err
        .redirect
        .clone()
        .expect("the error is posted back to the registered redirect_uri");
    assert_eq!(uri, TOOL_LAUNCH);
    assert_eq!(state, req.state);
    let fields = err.fields();
    assert_eq!(fields[0], ("error".to_owned(), oidc.to_owned()));
    assert_eq!(fields[1].0, "error_description");
    assert!(fields.contains(&("state".to_owned(), "state-123".to_owned())));
    let resp = err.into_response();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = std::str::from_utf8(resp.body()).unwrap();
    assert!(html.contains(&format!("action=\"{TOOL_LAUNCH}\"")));
    assert!(html.contains(&format!("name=\"error\" value=\"{oidc}\"")));
    f.platform.authorize(req, user).await.unwrap_err().error
}

#[tokio::test]
async fn valid_request_answers_with_an_auto_submitted_id_token_form() {
    let f = fixture();
    let init = f.platform.start_launch(&spec()).await.unwrap();
    let resp = f
        .platform
        .authorization_endpoint(&get(&auth_query(&init)), Some(&user()))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&resp, "cache-control"), Some("no-store"));
    let html = std::str::from_utf8(resp.body()).unwrap();
    assert!(html.contains(&format!(
        "<form id=\"lti-autosubmit\" method=\"post\" action=\"{TOOL_LAUNCH}\">"
    )));
    assert!(html.contains("name=\"state\" value=\"state-123\""));
    assert!(html.contains("<button type=\"submit\">Continue</button>"));
    let token = html
        .split("name=\"id_token\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let verifier = lti_jose::Verifier::new(&[lti_jose::Algorithm::RS256]).unwrap();
    let claims: serde_json::Value = verifier
        .verify_with_source(token, &f.platform.keys().jwks(), "")
        .await
        .unwrap();
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], CLIENT_ID);
    assert_eq!(claims["azp"], CLIENT_ID);
    assert_eq!(claims["nonce"], "nonce-456");
    assert_eq!(claims["iat"], NOW);
    assert_eq!(claims["exp"], NOW + 300);
    assert_eq!(claims["sub"], init.param("login_hint").unwrap());
    assert_eq!(
        claims["https://purl.imsglobal.org/spec/lti/claim/message_type"],
        "LtiResourceLinkRequest"
    );
    assert_eq!(
        claims["https://purl.imsglobal.org/spec/lti/claim/version"],
        "1.3.0"
    );
    assert_eq!(
        claims["https://purl.imsglobal.org/spec/lti/claim/resource_link"]["id"],
        "rl-1"
    );
    assert_eq!(claims["name"], "Grace Hopper");
}

#[tokio::test]
async fn post_form_requests_are_accepted_too() {
    let f = fixture();
    let init = f.platform.start_launch(&spec()).await.unwrap();
    let q = auth_query(&init);
    let fields: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let resp = f
        .platform
        .authorization_endpoint(&form_post("/auth", &fields), Some(&user()))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        std::str::from_utf8(resp.body())
            .unwrap()
            .contains("name=\"id_token\"")
    );
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_a_400_page_and_no_redirect() {
    let f = fixture();
    let mut req = good_request(&f).await;
    req.redirect_uri = Some("https://evil.example/steal".to_owned());
    let err = f.platform.authorize(&req, Some(&user())).await.unwrap_err();
    assert!(
        matches!(&err.error, PlatformError::RedirectUriNotRegistered { found } if found == "https://evil.example/steal"),
        "{err:?}"
    );
    assert!(err.redirect.is_none());
    let resp = err.into_response();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        !std::str::from_utf8(resp.body())
            .unwrap()
            .contains("evil.example/steal\"")
    );
    // A prefix or a case change of a registered URI is not a match either.
    req.redirect_uri = Some(format!("{TOOL_LAUNCH}/x"));
    let err = f.platform.authorize(&req, Some(&user())).await.unwrap_err();
    assert!(matches!(
        err.error,
        PlatformError::RedirectUriNotRegistered { .. }
    ));
    req.redirect_uri = Some(TOOL_LAUNCH.to_uppercase());
    let err = f.platform.authorize(&req, Some(&user())).await.unwrap_err();
    assert!(matches!(
        err.error,
        PlatformError::RedirectUriNotRegistered { .. }
    ));
}

#[tokio::test]
async fn unknown_client_gets_a_400_page() {
    let f = fixture();
    let mut req = good_request(&f).await;
    req.client_id = Some("stranger".to_owned());
    let err = f.platform.authorize(&req, Some(&user())).await.unwrap_err();
    assert!(
        matches!(&err.error, PlatformError::UnknownClient { client_id } if client_id == "stranger"),
        "{err:?}"
    );
    assert!(err.redirect.is_none());
    assert_eq!(err.into_response().status(), StatusCode::BAD_REQUEST);
    req.client_id = None;
    let err = f.platform.authorize(&req, Some(&user())).await.unwrap_err();
    assert!(
        matches!(
            err.error,
            PlatformError::MissingParameter { name: "client_id" }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_response_type_is_posted_back() {
    let f = fixture();
    let mut req = good_request(&f).await;
    req.response_type = Some("code".to_owned());
    let err = refused_back(&f, &req, Some(&user()), "unsupported_response_type").await;
    assert!(
        matches!(&err, PlatformError::UnsupportedResponseType { found } if found == "code"),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_scope_is_posted_back() {
    let f = fixture();
    let mut req = good_request(&f).await;
    req.scope = Some("profile".to_owned());
    let err = refused_back(&f, &req, Some(&user()), "invalid_scope").await;
    assert!(
        matches!(err, PlatformError::InvalidOpenIdScope { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_response_mode_is_posted_back() {
    let f = fixture();
    let mut req = good_request(&f).await;
    req.response_mode = Some("query".to_owned());
    let err = refused_back(&f, &req, Some(&user()), "invalid_request").await;
    assert!(
        matches!(&err, PlatformError::UnsupportedResponseMode { found } if found == "query"),
        "{err:?}"
    );
}

#[tokio::test]
async fn prompt_other_than_none_is_posted_back() {
    let f = fixture();
    let mut req = good_request(&f).await;
    req.prompt = Some("login".to_owned());
    let err = refused_back(&f, &req, Some(&user()), "invalid_request").await;
    assert!(
        matches!(err, PlatformError::UnsupportedPrompt { .. }),
        "{err:?}"
    );
    req.prompt = None;
    assert!(
        f.platform.authorize(&req, Some(&user())).await.is_ok(),
        "an absent prompt is fine"
    );
}

#[tokio::test]
async fn missing_nonce_is_posted_back() {
    let f = fixture();
    let mut req = good_request(&f).await;
    req.nonce = None;
    let err = refused_back(&f, &req, Some(&user()), "invalid_request").await;
    assert!(matches!(err, PlatformError::MissingNonce), "{err:?}");
}

#[tokio::test]
async fn nobody_signed_in_is_login_required() {
    let f = fixture();
    let req = good_request(&f).await;
    let err = refused_back(&f, &req, None, "login_required").await;
    assert!(matches!(err, PlatformError::LoginRequired), "{err:?}");
}

#[tokio::test]
async fn login_hint_for_another_user_is_refused() {
    let f = fixture();
    let req = good_request(&f).await;
    let mallory = PlatformUser::new("u-2");
    let err = refused_back(&f, &req, Some(&mallory), "login_required").await;
    assert!(matches!(err, PlatformError::LoginHintMismatch), "{err:?}");
    let mut tampered = good_request(&f).await;
    tampered.login_hint = Some("someone-else".to_owned());
    let err = refused_back(&f, &tampered, Some(&user()), "login_required").await;
    assert!(matches!(err, PlatformError::LoginHintMismatch), "{err:?}");
}

#[tokio::test]
async fn expired_message_hint_is_refused() {
    let f = fixture();
    let req = good_request(&f).await;
    f.clock.advance(300);
    let err = refused_back(&f, &req, Some(&user()), "invalid_request").await;
    assert!(
        matches!(err, PlatformError::ExpiredMessageHint { exp, now } if exp == NOW + 300 && now == NOW + 300),
        "{err:?}"
    );
}

#[tokio::test]
async fn forged_or_missing_message_hint_is_refused() {
    let f = fixture();
    let mut req = good_request(&f).await;
    let hint = req.lti_message_hint.clone().unwrap();
    let mut bytes = hint.into_bytes();
    bytes[12] = if bytes[12] == b'A' { b'B' } else { b'A' };
    req.lti_message_hint = Some(String::from_utf8(bytes).unwrap());
    let err = refused_back(&f, &req, Some(&user()), "invalid_request").await;
    assert!(
        matches!(err, PlatformError::InvalidMessageHint { reason } if reason.contains("forged")),
        "{err:?}"
    );
    req.lti_message_hint = None;
    let err = refused_back(&f, &req, Some(&user()), "invalid_request").await;
    assert!(
        matches!(err, PlatformError::InvalidMessageHint { reason } if reason.contains("found none")),
        "{err:?}"
    );
}

#[tokio::test]
async fn message_hint_of_another_client_is_refused() {
    let f = fixture();
    let mut other = registration();
    other.client_id = "tool-2".to_owned();
    f.registry.register(other).unwrap();
    let init = f
        .platform
        .start_launch(&LaunchSpec::resource_link(
            "tool-2",
            DEPLOYMENT_ID,
            "u-1",
            "rl-1",
        ))
        .await
        .unwrap();
    let mut req = good_request(&f).await;
    req.lti_message_hint = Some(init.param("lti_message_hint").unwrap().to_owned());
    let err = refused_back(&f, &req, Some(&user()), "invalid_request").await;
    assert!(
        matches!(err, PlatformError::InvalidMessageHint { reason } if reason.contains("another")),
        "{err:?}"
    );
}

#[tokio::test]
async fn deployment_removed_after_launch_start_is_refused() {
    let f = fixture();
    let req = good_request(&f).await;
    let mut reg = registration();
    reg.deployments.clear();
    reg.deployments.insert("dep-2".to_owned());
    f.registry.register(reg).unwrap();
    let err = refused_back(&f, &req, Some(&user()), "invalid_request").await;
    assert!(
        matches!(&err, PlatformError::UnknownDeployment { deployment_id, .. } if deployment_id == DEPLOYMENT_ID),
        "{err:?}"
    );
}

#[tokio::test]
async fn garbage_requests_never_panic_or_500() {
    let f = fixture();
    let cases: Vec<Request<Bytes>> = vec![
        Request::builder()
            .method(Method::PUT)
            .uri("/auth")
            .body(Bytes::new())
            .unwrap(),
        Request::builder()
            .method(Method::GET)
            .uri("/auth?client_id=%FF%FE&redirect_uri=")
            .body(Bytes::new())
            .unwrap(),
        Request::builder()
            .method(Method::GET)
            .uri("/auth?client_id=a&client_id=b")
            .body(Bytes::new())
            .unwrap(),
        Request::builder()
            .method(Method::POST)
            .uri("/auth")
            .header("content-type", "text/plain")
            .body(Bytes::from_static(b"x"))
            .unwrap(),
        Request::builder()
            .method(Method::POST)
            .uri("/auth")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::from(vec![b'a'; 70_000]))
            .unwrap(),
    ];
    for req in cases {
        let resp = f.platform.authorization_endpoint(&req, Some(&user())).await;
        assert!(
            resp.status().is_client_error(),
            "{} {:?}: {}",
            req.method(),
            req.uri(),
            resp.status()
        );
    }
}

#[tokio::test]
async fn state_is_html_escaped_in_the_form() {
    let f = fixture();
    let mut req = good_request(&f).await;
    req.state = Some("\"><script>alert(1)</script>".to_owned());
    let resp = f
        .platform
        .authorize(&req, Some(&user()))
        .await
        .unwrap()
        .into_response();
    let html = std::str::from_utf8(resp.body()).unwrap();
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""));
}

#[tokio::test]
async fn login_initiation_carries_every_parameter_as_redirect_and_form() {
    let f = fixture();
    let init = f.platform.start_launch(&spec()).await.unwrap();
    assert_eq!(init.login_url, TOOL_LOGIN);
    let names: Vec<&str> = init.params.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "iss",
            "login_hint",
            "target_link_uri",
            "lti_message_hint",
            "lti_deployment_id",
            "client_id"
        ]
    );
    assert_eq!(init.param("iss"), Some(ISSUER));
    assert_eq!(init.param("target_link_uri"), Some(TOOL_LAUNCH));
    assert_eq!(init.param("lti_deployment_id"), Some(DEPLOYMENT_ID));
    let url = init.redirect_url();
    assert!(url.starts_with(&format!(
        "{TOOL_LOGIN}?iss=https%3A%2F%2Flms.example.edu&login_hint="
    )));
    let resp = init.redirect_response();
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(header(&resp, "location"), Some(url.as_str()));
    let html = init.form_html();
    assert!(html.contains(&format!("action=\"{TOOL_LOGIN}\"")));
    assert!(html.contains("name=\"lti_message_hint\""));
    assert!(html.contains("<button type=\"submit\">"));
    assert!(
        !init.param("lti_message_hint").unwrap().contains("u-1"),
        "the hint is opaque"
    );
}

#[tokio::test]
async fn launch_start_refuses_unknown_clients_and_deployments() {
    let f = fixture();
    let err = f
        .platform
        .start_launch(&LaunchSpec::resource_link(
            "nobody",
            DEPLOYMENT_ID,
            "u-1",
            "rl",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PlatformError::UnknownClient { .. }),
        "{err:?}"
    );
    let err = f
        .platform
        .start_launch(&LaunchSpec::resource_link(CLIENT_ID, "dep-x", "u-1", "rl"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PlatformError::UnknownDeployment { deployment_id, .. } if deployment_id == "dep-x"),
        "{err:?}"
    );
    let err = f
        .platform
        .start_launch(&LaunchSpec::resource_link(
            CLIENT_ID,
            DEPLOYMENT_ID,
            "u-1",
            "",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PlatformError::InvalidLaunch {
                field: "resource_link.id",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn jwks_rotation_publishes_next_then_signs_with_it_and_keeps_the_old_key() {
    let f = fixture();
    let keys = f.platform.keys();
    assert_eq!(keys.jwks().keys.len(), 1);
    keys.add_next(key(PLATFORM_NEXT_PEM, "platform-key-2"))
        .unwrap();
    let kids: Vec<_> = keys
        .jwks()
        .keys
        .iter()
        .map(|k| k.kid().unwrap().to_owned())
        .collect();
    assert_eq!(kids, ["platform-key-1", "platform-key-2"]);
    let err = keys
        .add_next(key(PLATFORM_NEXT_PEM, "platform-key-1"))
        .unwrap_err();
    assert!(matches!(
        err,
        PlatformError::InvalidConfig {
            field: "next key",
            ..
        }
    ));
    keys.rotate().unwrap();
    assert_eq!(keys.active().kid(), "platform-key-2");
    let kids: Vec<_> = keys
        .jwks()
        .keys
        .iter()
        .map(|k| k.kid().unwrap().to_owned())
        .collect();
    assert_eq!(kids, ["platform-key-2", "platform-key-1"]);
    let req = good_request(&f).await;
    let token = f
        .platform
        .authorize(&req, Some(&user()))
        .await
        .unwrap()
        .id_token;
    let (header, _): (lti_jose::Header, serde_json::Value) =
        lti_jose::dangerous::decode_unverified(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("platform-key-2"));
    assert!(keys.drop_retired("platform-key-1"));
    assert_eq!(keys.jwks().keys.len(), 1);
    let err = keys.rotate().unwrap_err();
    assert!(matches!(err, PlatformError::InvalidConfig { .. }));
    let resp = f.platform.jwks_response();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header_of(&resp, "content-type"), Some("application/json"));
    assert!(json_body(&resp)["keys"][0]["n"].is_string());
}

fn header_of<'a>(resp: &'a http::Response<Bytes>, name: &str) -> Option<&'a str> {
    header(resp, name)
}

#[tokio::test]
async fn a_login_initiation_can_offer_platform_storage() {
    let f = fixture();
    let init = f.platform.start_launch(&spec()).await.unwrap();
    assert_eq!(init.param("lti_storage_target"), None);
    let offered = init.clone().with_storage_target("_parent");
    assert_eq!(offered.param("lti_storage_target"), Some("_parent"));
    assert!(
        offered
            .redirect_url()
            .contains("lti_storage_target=_parent")
    );
    assert!(
        offered
            .form_html()
            .contains(r#"name="lti_storage_target" value="_parent""#)
    );
    // Everything else is unchanged.
    assert_eq!(&offered.params[..init.params.len()], &init.params[..]);
}
