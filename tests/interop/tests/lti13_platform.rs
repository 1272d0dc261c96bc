//! Our platform (`lti-platform`, mounted on a loopback axum server the way `lti
//! platform` mounts it) → PyPI `pylti1p3` (an independent LTI 1.3 tool): its
//! launches succeed; its deep-linking response is accepted by our platform; its
//! AGS and NRPS calls against our endpoints succeed with our access tokens; our
//! launch tampered with in transit is rejected by it, and its deep-linking response
//! tampered with in transit is rejected by us.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::header::{COOKIE, LOCATION, SET_COOKIE};
use lti_interop::PeerProcess;
use lti_jose::{Algorithm, JwkSet, SigningKey};
use lti_platform::services::{MemoryRoster, RosterMember};
use lti_platform::{
    AuthRequest, DeepLinkingOptions, LaunchSpec, MemoryToolRegistry, Platform, PlatformConfig,
    PlatformKeys, PlatformSecret, PlatformUser, ToolKeys, ToolRegistration,
};
use serde_json::{Value, json};

use common::*;

const CLIENT_ID: &str = "pylti1p3-client";
const DEPLOYMENT: &str = "dep-pylti1p3";
const CONTEXT: &str = "course-interop";
const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";
const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";
const SCOPES: &[&str] = &[
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
];

struct World {
    platform: Arc<Platform>,
    peer: PeerProcess,
}

async fn to_bytes_request(req: axum::extract::Request) -> http::Request<Bytes> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    http::Request::from_parts(parts, bytes)
}

fn to_axum(resp: http::Response<Bytes>) -> axum::response::Response {
    let (parts, body) = resp.into_parts();
    axum::response::Response::from_parts(parts, Body::from(body))
}

async fn world() -> Option<World> {
    let peers = lti_interop::peers("lti13: our platform -> pylti1p3")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let peer = peers.spawn(
        "pylti1p3_tool_peer.py",
        &json!({
            "iss": base, "client_id": CLIENT_ID, "deployment_id": DEPLOYMENT,
            "auth_login_url": format!("{base}/auth"), "auth_token_url": format!("{base}/token"),
            "key_set_url": format!("{base}/jwks"), "tool_pem": TOOL_PEM,
        }),
    );
    let tool_jwks: JwkSet = serde_json::from_value(peer.ready["jwks"].clone()).unwrap();
    let mut registration = ToolRegistration::new(
        CLIENT_ID,
        format!("{}/login", peer.url()),
        format!("{}/launch", peer.url()),
        ToolKeys::Static(tool_jwks),
    )
    .with_deployment(DEPLOYMENT)
    .with_redirect_uris([format!("{}/launch", peer.url())]);
    for s in SCOPES {
        registration = registration.with_scope(*s);
    }
    let registry = Arc::new(MemoryToolRegistry::new());
    registry.register(registration).unwrap();
    let roster = Arc::new(MemoryRoster::new());
    roster.add_context(serde_json::from_value(json!({"id": CONTEXT, "title": "Interop"})).unwrap());
    for (id, role) in [
        ("u-teacher", INSTRUCTOR),
        ("u-1", LEARNER),
        ("u-2", LEARNER),
    ] {
        roster.upsert_member(CONTEXT, RosterMember::new(id, [role]));
    }
    let key = SigningKey::from_pem(PLATFORM_PEM, Algorithm::RS256)
        .unwrap()
        .with_kid("interop-platform-1");
    let platform = Arc::new(
        Platform::new(
            PlatformConfig::new(&base)
                .with_token_endpoint(format!("{base}/token"))
                .with_deep_link_return_url(format!("{base}/deep_link_return"))
                .with_services_base_url(format!("{base}/lti")),
            Arc::new(PlatformKeys::new(key)),
            PlatformSecret::from_bytes(&[5u8; 32]).unwrap(),
            registry,
            Arc::new(JwkSet::default()),
        )
        .unwrap()
        .with_roster(roster),
    );
    let (p1, p2, p3) = (platform.clone(), platform.clone(), platform.clone());
    let router = axum::Router::new()
        .route(
            "/jwks",
            axum::routing::get(move || {
                let p = p1.clone();
                async move { to_axum(p.jwks_response()) }
            }),
        )
        .route(
            "/token",
            axum::routing::post(move |req: axum::extract::Request| {
                let p = p2.clone();
                async move { to_axum(p.token_endpoint(&to_bytes_request(req).await).await) }
            }),
        )
        .route(
            "/lti/{*rest}",
            axum::routing::any(move |req: axum::extract::Request| {
                let p = p3.clone();
                async move { to_axum(p.services_endpoint(&to_bytes_request(req).await).await) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Some(World { platform, peer })
}

fn teacher() -> PlatformUser {
    PlatformUser::new("u-teacher")
        .with_name("Ada", "Lovelace")
        .with_email("ada@example.edu")
}

/// Our platform starts `spec`; the peer's login redirects to our authorization
/// endpoint; returns the peer's launch URL, our signed answer and the peer's cookies.
async fn start(w: &World, spec: &LaunchSpec) -> (String, String, String, String) {
    let init = w.platform.start_launch(spec).await.unwrap();
    let login = get(&init.redirect_url()).await;
    assert_eq!(login.status(), 302, "{}", text(&login));
    let auth_url = login.headers()[LOCATION].to_str().unwrap().to_owned();
    let cookies: Vec<String> = login
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let request = http::Request::get(&auth_url).body(Bytes::new()).unwrap();
    let answer = w
        .platform
        .authorize(&AuthRequest::from_http(&request).unwrap(), Some(&teacher()))
        .await
        .map_err(|e| e.error)
        .unwrap();
    (
        answer.redirect_uri,
        answer.state.unwrap(),
        answer.id_token,
        cookies.join("; "),
    )
}

async fn post_launch(url: &str, state: &str, id_token: &str, cookies: &str) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("state", state)
        .append_pair("id_token", id_token)
        .finish();
    let resp = send(
        http::Request::post(url)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(COOKIE, cookies)
            .body(Bytes::from(body))
            .unwrap(),
    )
    .await;
    (
        resp.status().as_u16(),
        serde_json::from_slice(resp.body()).unwrap(),
    )
}

fn resource_spec() -> LaunchSpec {
    LaunchSpec::resource_link(CLIENT_ID, DEPLOYMENT, "u-teacher", "rl-interop")
        .with_roles([INSTRUCTOR])
        .with_context(CONTEXT, Some("INT"), Some("Interop"))
        .with_resource_link_title("Interop link")
}

#[tokio::test]
async fn our_launch_is_accepted_by_pylti1p3_and_a_tampered_one_is_rejected() {
    let Some(w) = world().await else { return };
    let (url, state, id_token, cookies) = start(&w, &resource_spec()).await;
    assert_eq!(url, format!("{}/launch", w.peer.url()));
    let (status, body) = post_launch(&url, &state, &id_token, &cookies).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["valid"], true);
    assert_eq!(body["message_type"], "LtiResourceLinkRequest");
    assert_eq!(body["has_ags"], true, "{body}");
    assert_eq!(body["has_nrps"], true, "{body}");

    let (url, state, id_token, cookies) = start(&w, &resource_spec()).await;
    let tampered = swap_claim(
        &id_token,
        "https://purl.imsglobal.org/spec/lti/claim/roles",
        json!([LEARNER]),
    );
    let (status, body) = post_launch(&url, &state, &tampered, &cookies).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("Signature verification failed"),
        "{body}"
    );
}

#[tokio::test]
async fn pylti1p3_deep_linking_response_is_accepted_by_our_platform() {
    let Some(w) = world().await else { return };
    let spec = LaunchSpec::deep_linking(
        CLIENT_ID,
        DEPLOYMENT,
        "u-teacher",
        DeepLinkingOptions::default(),
    )
    .with_roles([INSTRUCTOR])
    .with_context(CONTEXT, None, Some("Interop"));
    let (url, state, id_token, cookies) = start(&w, &spec).await;
    let (status, body) = post_launch(&url, &state, &id_token, &cookies).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_deep_link"], true);
    let dl = post_json(
        &format!("{}/do/deep-link", w.peer.url()),
        &json!({"launch_id": body["launch_id"], "title": "From pylti1p3", "url": format!("{}/resource/1", w.peer.url())}),
    )
    .await;
    let jwt = dl["jwt"].as_str().unwrap();
    let returned = w.platform.verify_deep_linking_response(jwt).await.unwrap();
    assert_eq!(returned.client_id, CLIENT_ID);
    assert_eq!(returned.deployment_id, DEPLOYMENT);
    assert_eq!(returned.content_items.len(), 1);
    let item = serde_json::to_value(&returned.content_items[0]).unwrap();
    assert_eq!(item["title"], "From pylti1p3", "{item}");

    // A second response built for the same request, changed in transit.
    let dl = post_json(
        &format!("{}/do/deep-link", w.peer.url()),
        &json!({"launch_id": body["launch_id"], "title": "Original", "url": format!("{}/resource/2", w.peer.url())}),
    )
    .await;
    let tampered = swap_claim(
        dl["jwt"].as_str().unwrap(),
        "https://purl.imsglobal.org/spec/lti-dl/claim/content_items",
        json!([{"type": "ltiResourceLink", "title": "Evil", "url": "https://evil.example/"}]),
    );
    let err = w
        .platform
        .verify_deep_linking_response(&tampered)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_tool_message", "{err:?}");
    match err {
        lti_platform::PlatformError::InvalidToolMessage {
            source: Some(jose), ..
        } => {
            assert_eq!(jose.code(), "bad_signature", "{jose:?}");
        }
        other => panic!("expected a signature failure, found {other:?}"),
    }
}

#[tokio::test]
async fn pylti1p3_ags_and_nrps_calls_succeed_with_our_tokens() {
    let Some(w) = world().await else { return };
    let (url, state, id_token, cookies) = start(&w, &resource_spec()).await;
    let (status, body) = post_launch(&url, &state, &id_token, &cookies).await;
    assert_eq!(status, 200, "{body}");
    let launch_id = body["launch_id"].clone();

    let ags = post_json(
        &format!("{}/do/ags", w.peer.url()),
        &json!({"launch_id": launch_id, "score": 9}),
    )
    .await;
    let grades = ags["grades"].as_array().unwrap();
    assert_eq!(grades.len(), 1, "{ags}");
    assert_eq!(grades[0]["resultScore"], 9.0, "{ags}");
    assert_eq!(grades[0]["userId"], body["sub"], "{ags}");
    assert_eq!(ags["lineitems"].as_array().unwrap().len(), 1, "{ags}");

    let nrps = post_json(
        &format!("{}/do/nrps", w.peer.url()),
        &json!({"launch_id": launch_id}),
    )
    .await;
    let members = nrps["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{nrps}");
}
