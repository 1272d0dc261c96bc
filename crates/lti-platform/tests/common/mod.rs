//! Shared fixtures: keys, a platform with one registered tool, a settable clock and
//! request builders.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response};
use lti_jose::{Algorithm, Clock, JwkSet, SigningKey};
use lti_platform::{
    LoginInitiation, MemoryToolRegistry, Platform, PlatformConfig, PlatformKeys, PlatformSecret,
    ToolKeys, ToolRegistration, append_query,
};
use serde_json::{Value, json};

pub const PLATFORM_PEM: &str = include_str!("../../../../tests/fixtures/lti-platform/platform.pem");
pub const PLATFORM_NEXT_PEM: &str =
    include_str!("../../../../tests/fixtures/lti-platform/platform_next.pem");
pub const TOOL_PEM: &str = include_str!("../../../../tests/fixtures/lti-platform/tool.pem");
pub const ATTACKER_PEM: &str = include_str!("../../../../tests/fixtures/lti-platform/attacker.pem");

pub const ISSUER: &str = "https://lms.example.edu";
pub const TOKEN_URL: &str = "https://lms.example.edu/token";
pub const CLIENT_ID: &str = "tool-client-1";
pub const DEPLOYMENT_ID: &str = "dep-1";
pub const TOOL_LOGIN: &str = "https://tool.example.com/login";
pub const TOOL_LAUNCH: &str = "https://tool.example.com/launch";
pub const NOW: u64 = 1_800_000_000;
pub const DL_ITEMS: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items";
pub const DL_DATA: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/data";

pub const SCOPE_LINEITEM: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem";
pub const SCOPE_LINEITEM_RO: &str =
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly";
pub const SCOPE_RESULT: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly";
pub const SCOPE_SCORE: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/score";
pub const SCOPE_NRPS: &str =
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly";

/// A clock tests can move.
#[derive(Debug)]
pub struct TestClock(pub AtomicU64);

impl TestClock {
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub fn key(pem: &str, kid: &str) -> SigningKey {
    SigningKey::from_pem(pem, Algorithm::RS256)
        .unwrap()
        .with_kid(kid)
}

pub fn tool_key() -> SigningKey {
    key(TOOL_PEM, "tool-key-1")
}

pub fn tool_jwks() -> JwkSet {
    JwkSet {
        keys: vec![tool_key().public_jwk()],
    }
}

pub fn registration() -> ToolRegistration {
    ToolRegistration::new(
        CLIENT_ID,
        TOOL_LOGIN,
        TOOL_LAUNCH,
        ToolKeys::Static(tool_jwks()),
    )
    .with_name("Test tool")
    .with_deployment(DEPLOYMENT_ID)
    .with_scope(SCOPE_LINEITEM)
    .with_scope(SCOPE_LINEITEM_RO)
    .with_scope(SCOPE_RESULT)
    .with_scope(SCOPE_SCORE)
    .with_scope(SCOPE_NRPS)
}

pub struct Fixture {
    pub platform: Platform,
    pub clock: Arc<TestClock>,
    pub registry: Arc<MemoryToolRegistry>,
}

pub fn fixture() -> Fixture {
    fixture_with(registration())
}

pub fn fixture_with(tool: ToolRegistration) -> Fixture {
    let clock = Arc::new(TestClock(AtomicU64::new(NOW)));
    let registry = Arc::new(MemoryToolRegistry::new());
    registry.register(tool).unwrap();
    let keys = Arc::new(PlatformKeys::new(key(PLATFORM_PEM, "platform-key-1")));
    let platform = Platform::new(
        PlatformConfig::new(ISSUER),
        keys,
        PlatformSecret::from_bytes(&[7u8; 32]).unwrap(),
        registry.clone(),
        Arc::new(JwkSet::default()),
    )
    .unwrap()
    .with_clock(clock.clone());
    Fixture {
        platform,
        clock,
        registry,
    }
}

/// A client assertion signed by `key` with the given claims.
pub fn assertion(key: &SigningKey, claims: serde_json::Value) -> String {
    lti_jose::sign(&claims, key).unwrap()
}

pub fn good_assertion_claims(jti: &str) -> serde_json::Value {
    serde_json::json!({
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": TOKEN_URL,
        "iat": NOW,
        "exp": NOW + 300,
        "jti": jti,
    })
}

pub fn form_post(uri: &str, fields: &[(&str, &str)]) -> Request<Bytes> {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        ser.append_pair(k, v);
    }
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Bytes::from(ser.finish()))
        .unwrap()
}

pub fn token_request(assertion: &str, scope: &str) -> Request<Bytes> {
    form_post(
        "/token",
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
            ("scope", scope),
        ],
    )
}

pub fn json_body(resp: &Response<Bytes>) -> serde_json::Value {
    serde_json::from_slice(resp.body()).unwrap()
}

pub fn header<'a>(resp: &'a Response<Bytes>, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// A bearer token for the test tool with `scopes`.
pub fn bearer(platform: &Platform, scopes: &[&str]) -> String {
    let set: BTreeSet<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    platform
        .issue_access_token(CLIENT_ID, set)
        .unwrap()
        .access_token
}

/// The tool's authentication request answering `init` (its client, the test tool's
/// redirect URI, state `state-123`, nonce `nonce-456`), as query parameters.
pub fn auth_query(init: &LoginInitiation) -> Vec<(String, String)> {
    vec![
        ("scope".into(), "openid".into()),
        ("response_type".into(), "id_token".into()),
        ("response_mode".into(), "form_post".into()),
        ("prompt".into(), "none".into()),
        ("client_id".into(), init.param("client_id").unwrap().into()),
        ("redirect_uri".into(), TOOL_LAUNCH.into()),
        (
            "login_hint".into(),
            init.param("login_hint").unwrap().into(),
        ),
        (
            "lti_message_hint".into(),
            init.param("lti_message_hint").unwrap().into(),
        ),
        ("state".into(), "state-123".into()),
        ("nonce".into(), "nonce-456".into()),
    ]
}

/// A GET of the authorization endpoint with `query`.
pub fn get(query: &[(String, String)]) -> Request<Bytes> {
    Request::builder()
        .method(Method::GET)
        .uri(append_query("/auth", query))
        .body(Bytes::new())
        .unwrap()
}

/// A deep-linking response from the test tool echoing `data`, with one item.
pub fn response_claims(data: &str, nonce: &str) -> Value {
    json!({
        "iss": CLIENT_ID,
        "aud": ISSUER,
        "iat": NOW,
        "exp": NOW + 300,
        "nonce": nonce,
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiDeepLinkingResponse",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": DEPLOYMENT_ID,
        DL_DATA: data,
        DL_ITEMS: [{"type": "ltiResourceLink", "title": "A", "url": "https://tool.example.com/a"}],
        "https://purl.imsglobal.org/spec/lti-dl/claim/msg": "done",
    })
}
