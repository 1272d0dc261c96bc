//! The platform side of LTI Dynamic Registration: the configuration document,
//! one-time tokens, the registration endpoint's checks, and that a refused
//! registration stores nothing while an accepted one launches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use lti_message::registration::{
    ClientRegistration, LtiToolConfiguration, PlatformConfiguration, ToolMessage,
};
use lti_platform::{
    DynamicRegistration, LaunchSpec, MemoryToolRegistry, PlatformConfig, RegistrationConfig,
    RegistrationIntent, ToolRegistry,
};
use serde_json::Value;

use common::{ISSUER, NOW, SCOPE_NRPS, SCOPE_SCORE, TestClock};

struct World {
    dr: DynamicRegistration,
    registry: Arc<MemoryToolRegistry>,
    clock: Arc<TestClock>,
}

fn world() -> World {
    let clock = Arc::new(TestClock(AtomicU64::new(NOW)));
    let registry = Arc::new(MemoryToolRegistry::new());
    let platform = PlatformConfig::new(ISSUER);
    let config = RegistrationConfig::new(&platform, "lti-rs", "1.0").with_token_lifetime_secs(600);
    let dr = DynamicRegistration::new(&platform, config, registry.clone())
        .unwrap()
        .with_clock(clock.clone());
    World {
        dr,
        registry,
        clock,
    }
}

fn tool_request() -> ClientRegistration {
    let tc = LtiToolConfiguration {
        domain: "tool.example.com".into(),
        secondary_domains: vec!["cdn.example.net".into()],
        target_link_uri: "https://tool.example.com/lti/launch".into(),
        claims: vec![
            "iss".into(),
            "sub".into(),
            "email".into(),
            "shoe_size".into(),
        ],
        messages: vec![
            ToolMessage {
                message_type: "LtiDeepLinkingRequest".into(),
                target_link_uri: Some("https://tool.example.com/lti/dl".into()),
                icon_uri: Some("https://cdn.example.net/icon.png".into()),
                label: Some("Add content".into()),
                ..Default::default()
            },
            ToolMessage {
                message_type: "LtiSomethingElse".into(),
                ..Default::default()
            },
        ],
        custom_parameters: [("course".to_owned(), "$Context.id".to_owned())].into(),
        ..Default::default()
    };
    let mut r = ClientRegistration::new_request(
        "Example tool",
        "https://tool.example.com/lti/login",
        vec!["https://tool.example.com/lti/launch".into()],
        "https://tool.example.com/.well-known/jwks.json",
        tc,
    );
    r.set_scopes([
        "openid",
        SCOPE_SCORE,
        SCOPE_NRPS,
        "https://example.com/scope/not-offered",
    ]);
    r
}

fn post(token: Option<&str>, body: &ClientRegistration) -> Request<Bytes> {
    let mut b =
        Request::post(format!("{ISSUER}/register")).header(CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        b = b.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Bytes::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn json(resp: &Response<Bytes>) -> Value {
    serde_json::from_slice(resp.body()).unwrap()
}

async fn token(w: &World) -> String {
    w.dr.mint_token("admin-1", RegistrationIntent::New)
        .await
        .unwrap()
        .token
}

/// Refuses `body` with `status`, `error` and `code`, and stores nothing.
async fn refused(w: &World, req: Request<Bytes>, status: StatusCode, error: &str, code: &str) {
    let resp = w.dr.registration_endpoint(&req).await;
    let body = json(&resp);
    assert_eq!(resp.status(), status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
    assert!(
        w.registry.tools().await.unwrap().is_empty(),
        "nothing stored"
    );
}

#[tokio::test]
async fn the_configuration_document_is_complete_for_lti() {
    let w = world();
    let resp = w.dr.openid_configuration_response();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
    let doc: PlatformConfiguration = serde_json::from_slice(resp.body()).unwrap();
    assert!(
        doc.missing_members().is_empty(),
        "{:?}",
        doc.missing_members()
    );
    assert_eq!(doc.issuer, ISSUER);
    assert_eq!(doc.registration_endpoint, format!("{ISSUER}/register"));
    assert_eq!(doc.token_endpoint, format!("{ISSUER}/token"));
    assert!(
        w.dr.config()
            .openid_configuration_url
            .starts_with(&format!("{ISSUER}/"))
    );
    assert!(doc.scopes_supported.iter().any(|s| s == SCOPE_SCORE));
    let platform = doc.lti_platform_configuration().unwrap().unwrap();
    assert_eq!(platform.product_family_code, "lti-rs");
    assert_eq!(platform.version, "1.0");
    assert!(platform.supports_message("LtiResourceLinkRequest"));
    assert!(platform.supports_message("LtiDeepLinkingRequest"));
    assert!(platform.variables.iter().any(|v| v == "Context.id"));
    assert!(platform.variables.iter().all(|v| !v.starts_with('$')));
}

#[tokio::test]
async fn a_registration_is_stored_answered_and_launches() {
    let w = world();
    let t = token(&w).await;
    let resp =
        w.dr.registration_endpoint(&post(Some(&t), &tool_request()))
            .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", json(&resp));
    let answer: ClientRegistration = serde_json::from_slice(resp.body()).unwrap();
    let client_id = answer.client_id.clone().unwrap();
    let deployment = answer.tool_configuration.deployment_id.clone().unwrap();
    // Granted: requested ∩ offered (openid and the unknown scope dropped).
    let mut granted: Vec<&str> = answer.scopes().collect();
    granted.sort_unstable();
    let mut expected = [SCOPE_NRPS, SCOPE_SCORE];
    expected.sort_unstable();
    assert_eq!(granted, expected);
    // Only message types the platform launches, only claims it sends.
    assert_eq!(answer.tool_configuration.messages.len(), 1);
    assert_eq!(answer.tool_configuration.claims, ["iss", "sub", "email"]);

    let tools = w.registry.tools().await.unwrap();
    assert_eq!(tools.len(), 1);
    let tool = &tools[0];
    assert_eq!(tool.client_id, client_id);
    assert!(tool.has_deployment(&deployment));
    assert!(tool.has_redirect_uri("https://tool.example.com/lti/launch"));
    assert_eq!(tool.name, "Example tool");
    assert!(tool.share_email && !tool.share_name && !tool.share_picture);
    assert_eq!(tool.custom["course"], "$Context.id");
    assert_eq!(tool.scopes.len(), 2);

    // The same registry behind a platform: the new tool launches at once.
    let platform = lti_platform::Platform::new(
        PlatformConfig::new(ISSUER),
        Arc::new(lti_platform::PlatformKeys::new(common::key(
            common::PLATFORM_PEM,
            "k1",
        ))),
        lti_platform::PlatformSecret::from_bytes(&[7u8; 32]).unwrap(),
        w.registry.clone(),
        Arc::new(lti_jose::JwkSet::default()),
    )
    .unwrap();
    let init = platform
        .start_launch(&LaunchSpec::resource_link(
            client_id.clone(),
            deployment,
            "u1",
            "l1",
        ))
        .await
        .unwrap();
    assert_eq!(init.param("client_id"), Some(client_id.as_str()));
    assert_eq!(init.login_url, "https://tool.example.com/lti/login");

    // The token was consumed: the same request again is refused, nothing added.
    let again =
        w.dr.registration_endpoint(&post(Some(&t), &tool_request()))
            .await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(&again)["code"], "registration_token_used");
    assert_eq!(w.registry.tools().await.unwrap().len(), 1);
}

#[tokio::test]
async fn token_refusals_are_401_with_their_own_codes() {
    let w = world();
    refused(
        &w,
        post(None, &tool_request()),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "registration_token_missing",
    )
    .await;
    refused(
        &w,
        post(Some("never-minted"), &tool_request()),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "registration_token_unknown",
    )
    .await;

    // Expired: the clock passes the configured lifetime.
    let t = token(&w).await;
    w.clock.advance(600);
    let req = post(Some(&t), &tool_request());
    let resp = w.dr.registration_endpoint(&req).await;
    assert_eq!(
        resp.headers()[WWW_AUTHENTICATE],
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json(&resp)["code"], "registration_token_expired");
    assert!(w.registry.tools().await.unwrap().is_empty());

    // Reused after a refused registration: one use, whatever the outcome.
    let t = token(&w).await;
    let mut bad = tool_request();
    bad.jwks_uri = "https://evil.example.org/jwks".into();
    refused(
        &w,
        post(Some(&t), &bad),
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        "url_outside_domain",
    )
    .await;
    refused(
        &w,
        post(Some(&t), &tool_request()),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "registration_token_used",
    )
    .await;
}

#[tokio::test]
async fn concurrent_uses_of_one_token_register_once() {
    let w = Arc::new(world());
    let t = token(&w).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let w = Arc::clone(&w);
        let req = post(Some(&t), &tool_request());
        tasks.push(tokio::spawn(async move {
            w.dr.registration_endpoint(&req).await.status()
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::CREATED => created += 1,
            other => assert_eq!(other, StatusCode::UNAUTHORIZED),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(w.registry.tools().await.unwrap().len(), 1);
}

#[tokio::test]
async fn metadata_refusals_name_the_member_and_store_nothing() {
    type Edit = fn(&mut ClientRegistration);
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            |r| r.redirect_uris = vec!["https://evil.example.org/launch".into()],
            "invalid_redirect_uri",
            "url_outside_domain",
        ),
        (
            |r| r.initiate_login_uri = "https://tool.example.com.evil.org/login".into(),
            "invalid_client_metadata",
            "url_outside_domain",
        ),
        (
            |r| r.tool_configuration.target_link_uri = "https://other.example.com/".into(),
            "invalid_client_metadata",
            "url_outside_domain",
        ),
        (
            |r| {
                r.tool_configuration.messages[0].icon_uri =
                    Some("https://evil.example.org/i.png".into());
            },
            "invalid_client_metadata",
            "url_outside_domain",
        ),
        (
            |r| r.jwks_uri = "http://tool.example.com/.well-known/jwks.json".into(),
            "invalid_client_metadata",
            "insecure_url",
        ),
        (
            |r| r.redirect_uris = vec!["http://tool.example.com/lti/launch".into()],
            "invalid_redirect_uri",
            "insecure_url",
        ),
        (
            |r| r.logo_uri = Some("http://tool.example.com/logo.png".into()),
            "invalid_client_metadata",
            "insecure_url",
        ),
        (
            |r| r.redirect_uris.clear(),
            "invalid_redirect_uri",
            "invalid_redirect_uri",
        ),
        (
            |r| r.grant_types = vec!["implicit".into()],
            "invalid_client_metadata",
            "invalid_client_metadata",
        ),
        (
            |r| r.tool_configuration.domain = "https://tool.example.com".into(),
            "invalid_client_metadata",
            "invalid_client_metadata",
        ),
        (
            |r| r.tool_configuration.domain = "tool.example.com:99999".into(),
            "invalid_client_metadata",
            "invalid_client_metadata",
        ),
        (
            |r| r.tool_configuration.domain = "tool.example.com:8443".into(),
            "invalid_client_metadata",
            "url_outside_domain",
        ),
    ];
    for (i, (edit, error, code)) in cases.into_iter().enumerate() {
        let w = world();
        let mut r = tool_request();
        edit(&mut r);
        let t = token(&w).await;
        let resp = w.dr.registration_endpoint(&post(Some(&t), &r)).await;
        let body = json(&resp);
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "case {i}: {body}");
        assert_eq!(body["error"], error, "case {i}: {body}");
        assert_eq!(body["code"], code, "case {i}: {body}");
        assert!(w.registry.tools().await.unwrap().is_empty(), "case {i}");
    }
}

#[tokio::test]
async fn loopback_tools_may_use_http_and_ports_must_match_the_domain() {
    let w = world();
    let mut r = tool_request();
    r.tool_configuration.domain = "127.0.0.1:3000".into();
    r.tool_configuration.secondary_domains.clear();
    r.tool_configuration.messages.clear();
    r.initiate_login_uri = "http://127.0.0.1:3000/login".into();
    r.redirect_uris = vec!["http://127.0.0.1:3000".into()];
    r.jwks_uri = "http://127.0.0.1:3000/keys".into();
    r.tool_configuration.target_link_uri = "http://127.0.0.1:3000".into();
    let t = token(&w).await;
    let resp = w.dr.registration_endpoint(&post(Some(&t), &r)).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", json(&resp));

    let w = world();
    r.jwks_uri = "http://127.0.0.1:3001/keys".into();
    let t = token(&w).await;
    refused(
        &w,
        post(Some(&t), &r),
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        "url_outside_domain",
    )
    .await;
}

#[tokio::test]
async fn bad_requests_are_4xx_and_store_nothing() {
    let w = world();
    let t = token(&w).await;
    let req = Request::post(format!("{ISSUER}/register"))
        .header(CONTENT_TYPE, "application/json")
        .header(AUTHORIZATION, format!("Bearer {t}"))
        .body(Bytes::from_static(b"{\"redirect_uris\": 5}"))
        .unwrap();
    refused(
        &w,
        req,
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        "malformed_registration",
    )
    .await;

    let t = token(&w).await;
    let mut req = post(Some(&t), &tool_request());
    req.headers_mut()
        .insert(CONTENT_TYPE, "text/plain".parse().unwrap());
    refused(
        &w,
        req,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "invalid_request",
        "unsupported_media_type",
    )
    .await;

    let req = Request::get(format!("{ISSUER}/register"))
        .body(Bytes::new())
        .unwrap();
    refused(
        &w,
        req,
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request",
        "method_not_allowed",
    )
    .await;
}

#[tokio::test]
async fn the_initiation_url_carries_the_configuration_and_a_working_token() {
    let w = world();
    let url =
        w.dr.initiation_url("https://tool.example.com/lti/register?tenant=a", "admin-1")
            .await
            .unwrap();
    let (base, query) = url.split_once('?').unwrap();
    assert_eq!(base, "https://tool.example.com/lti/register");
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(params[0], ("tenant".to_owned(), "a".to_owned()));
    assert_eq!(
        params[1],
        (
            "openid_configuration".to_owned(),
            format!("{ISSUER}/.well-known/openid-configuration")
        )
    );
    assert_eq!(params[2].0, "registration_token");
    let resp =
        w.dr.registration_endpoint(&post(Some(&params[2].1), &tool_request()))
            .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let e =
        w.dr.initiation_url("javascript:alert(1)", "admin-1")
            .await
            .unwrap_err();
    assert_eq!(e.code(), "invalid_parameter");
}

#[test]
fn the_configuration_url_must_be_under_the_issuer() {
    let platform = PlatformConfig::new(ISSUER);
    let config = RegistrationConfig::new(&platform, "lti-rs", "1.0").with_openid_configuration_url(
        "https://elsewhere.example/.well-known/openid-configuration",
    );
    let e = DynamicRegistration::new(&platform, config, Arc::new(MemoryToolRegistry::new()))
        .unwrap_err();
    assert_eq!(e.code(), "invalid_config");
    let config = RegistrationConfig::new(&platform, "lti-rs", "1.0").with_token_lifetime_secs(0);
    let e = DynamicRegistration::new(&platform, config, Arc::new(MemoryToolRegistry::new()))
        .unwrap_err();
    assert_eq!(e.code(), "invalid_config");
}

/// Two instances of one platform: the same secret, one shared replay store.
fn sealed_instance(
    secret: &[u8],
    replay: Arc<dyn lti_platform::ReplayStore>,
    clock: Arc<TestClock>,
) -> World {
    let registry = Arc::new(MemoryToolRegistry::new());
    let platform = PlatformConfig::new(ISSUER);
    let config = RegistrationConfig::new(&platform, "lti-rs", "1.0").with_token_lifetime_secs(600);
    let tokens = lti_platform::SealedRegistrationTokens::new(
        lti_platform::PlatformSecret::from_bytes(secret).unwrap(),
        replay,
        clock.clone(),
    );
    let dr = DynamicRegistration::new(&platform, config, registry.clone())
        .unwrap()
        .with_clock(clock.clone())
        .with_token_store(Arc::new(tokens));
    World {
        dr,
        registry,
        clock,
    }
}

#[tokio::test]
async fn sealed_tokens_work_across_instances_and_are_spent_once() {
    let clock = Arc::new(TestClock(AtomicU64::new(NOW)));
    let replay: Arc<dyn lti_platform::ReplayStore> =
        Arc::new(lti_platform::MemoryReplayStore::new(clock.clone()));
    let a = sealed_instance(&[9u8; 32], replay.clone(), clock.clone());
    let b = sealed_instance(&[9u8; 32], replay.clone(), clock.clone());

    // Minted on A, spent on B; then refused on A and on B.
    let t = token(&a).await;
    assert!(t.starts_with("lti-rt."), "sealed");
    assert!(!t.contains("admin-1"), "the grant is not readable");
    let resp =
        b.dr.registration_endpoint(&post(Some(&t), &tool_request()))
            .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", json(&resp));
    for w in [&a, &b] {
        let resp =
            w.dr.registration_endpoint(&post(Some(&t), &tool_request()))
                .await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(json(&resp)["code"], "registration_token_used");
    }
    assert!(a.registry.tools().await.unwrap().is_empty());
    assert_eq!(b.registry.tools().await.unwrap().len(), 1);

    // Another platform's token, and an altered one, are unknown here.
    let other = sealed_instance(&[8u8; 32], replay.clone(), clock.clone());
    let foreign = token(&other).await;
    let altered = {
        // One character in the middle of the ciphertext, changed in its high bit.
        let t = token(&a).await;
        let mid = t.len() / 2;
        let c = if t.as_bytes()[mid] == b'A' { "g" } else { "A" };
        format!("{}{c}{}", &t[..mid], &t[mid + 1..])
    };
    for t in [foreign, altered] {
        refused(
            &a,
            post(Some(&t), &tool_request()),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "registration_token_unknown",
        )
        .await;
    }

    // Expired.
    let t = token(&a).await;
    clock.advance(600);
    refused(
        &a,
        post(Some(&t), &tool_request()),
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "registration_token_expired",
    )
    .await;
}
