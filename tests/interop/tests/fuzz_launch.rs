//! A bounded fuzz/property campaign over `lti serve`'s router, in process (tower
//! `oneshot`, no socket): random form bodies, random JWS (random headers and claim
//! sets, real and random signatures), random cookies and content types against the
//! login, launch, LTI 1.1 launch and inspector routes. Every answer must be a
//! non-5xx HTTP response; a panic fails the test.
//!
//! The number of cases per property is `LTI_FUZZ_CASES` (default 1000), so the
//! campaign's time is bounded; proptest prints a minimal failing input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{Request, header};
use lti_jose::{Algorithm, JwkSet, SigningKey};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

use common::*;

const CLIENT_ID: &str = "fuzz-client";
const DEPLOYMENT: &str = "fuzz-deployment";

struct World {
    rt: tokio::runtime::Runtime,
    router: Router,
    tool_url: String,
    issuer: String,
    key: SigningKey,
}

fn platform_key() -> SigningKey {
    SigningKey::from_pem(PLATFORM_PEM, Algorithm::RS256)
        .unwrap()
        .with_kid("fuzz-platform-key")
}

/// The router of a configured `lti serve`, trusting a loopback platform whose JWKS
/// is served for real (so launches reach the signature check and beyond).
fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let key = platform_key();
        let (router, tool_url, issuer) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let issuer = format!("http://{}", listener.local_addr().unwrap());
            let jwks = JwkSet {
                keys: vec![key.public_jwk()],
            };
            let platform = Router::new().route(
                "/jwks",
                axum::routing::get(move || async move { axum::Json(jwks) }),
            );
            tokio::spawn(async move { axum::serve(listener, platform).await.unwrap() });
            let tool_url = "http://127.0.0.1:9".to_owned();
            let text = config_text(
                &tool_url,
                &keys_dir(),
                &[PlatformEntry {
                    issuer: issuer.clone(),
                    client_id: CLIENT_ID.into(),
                    auth_login_url: format!("{issuer}/auth"),
                    auth_token_url: format!("{issuer}/token"),
                    jwks_url: format!("{issuer}/jwks"),
                    deployment_id: DEPLOYMENT.into(),
                }],
            );
            let app = lti_app::prepare(&lti_app::Config::parse(&text).unwrap())
                .await
                .unwrap();
            (app.router, tool_url, issuer)
        });
        World {
            rt,
            router,
            tool_url,
            issuer,
            key,
        }
    })
}

fn cases() -> u32 {
    std::env::var("LTI_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Sends one request through the router; returns the status and body.
fn call(req: Request<Body>) -> (u16, Bytes) {
    let w = world();
    w.rt.block_on(async {
        let resp = w
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("infallible router");
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 22)
            .await
            .unwrap();
        (status, body)
    })
}

fn assert_no_5xx(what: &str, (status, body): (u16, Bytes)) -> u16 {
    assert!(
        status < 500,
        "{what}: answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    status
}

/// A real login: the state, nonce and cookie the tool issued.
fn login() -> (String, String, String) {
    let w = world();
    let uri = format!(
        "/lti/login?iss={}&login_hint=u&target_link_uri={}/lti/app&client_id={CLIENT_ID}",
        w.issuer, w.tool_url
    );
    let resp = w.rt.block_on(async {
        w.router
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap()
    });
    assert_eq!(resp.status(), 302);
    let loc = resp.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = resp.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (
        param(&loc, "state").unwrap(),
        param(&loc, "nonce").unwrap(),
        cookie,
    )
}

fn valid_claims(nonce: &str) -> Value {
    let w = world();
    let now = now() as i64;
    json!({
        "iss": w.issuer, "aud": CLIENT_ID, "sub": "fuzz-user", "nonce": nonce,
        "iat": now, "exp": now + 300,
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": DEPLOYMENT,
        "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": format!("{}/lti/app", w.tool_url),
        "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "rl-1"},
        "https://purl.imsglobal.org/spec/lti/claim/roles": []
    })
}

fn launch_request(body: String, cookie: Option<String>, content_type: &str) -> Request<Body> {
    let mut req = Request::post("/lti/launch").header(header::CONTENT_TYPE, content_type);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    req.body(Body::from(body)).unwrap()
}

/// Arbitrary JSON values (bounded depth).
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const CLAIMS: &[&str] = &[
    "iss",
    "aud",
    "sub",
    "nonce",
    "iat",
    "exp",
    "nbf",
    "azp",
    "https://purl.imsglobal.org/spec/lti/claim/message_type",
    "https://purl.imsglobal.org/spec/lti/claim/version",
    "https://purl.imsglobal.org/spec/lti/claim/deployment_id",
    "https://purl.imsglobal.org/spec/lti/claim/target_link_uri",
    "https://purl.imsglobal.org/spec/lti/claim/resource_link",
    "https://purl.imsglobal.org/spec/lti/claim/roles",
    "https://purl.imsglobal.org/spec/lti/claim/context",
    "https://purl.imsglobal.org/spec/lti/claim/custom",
    "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings",
    "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint",
    "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice",
];

fn b64(bytes: &[u8]) -> String {
    lti_jose::b64::encode(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Random bytes as a form body, random cookies and content types.
    #[test]
    fn random_bodies_and_cookies_never_5xx(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        cookie in prop::option::of("[ -~]{0,200}"),
        content_type in prop_oneof![
            Just("application/x-www-form-urlencoded".to_owned()),
            Just("application/json".to_owned()),
            Just("multipart/form-data; boundary=x".to_owned()),
            "[ -~]{0,40}",
        ],
        route in 0usize..4,
    ) {
        let path = ["/lti/launch", "/lti/login", "/lti11/launch", "/lti/app/deep-link"][route];
        let mut req = Request::post(path).header(header::CONTENT_TYPE, content_type.as_str());
        if let Some(c) = cookie.as_deref()
            && let Ok(v) = header::HeaderValue::from_str(c)
        {
            req = req.header(header::COOKIE, v);
        }
        assert_no_5xx(path, call(req.body(Body::from(body)).unwrap()));
    }

    /// Structured form fields with random values, and random query strings.
    #[test]
    fn random_form_fields_and_queries_never_5xx(
        fields in prop::collection::vec((prop_oneof![
            Just("id_token".to_owned()), Just("state".to_owned()), Just("iss".to_owned()),
            Just("login_hint".to_owned()), Just("target_link_uri".to_owned()),
            Just("client_id".to_owned()), Just("lti_message_hint".to_owned()),
            Just("lti_deployment_id".to_owned()), Just("oauth_signature".to_owned()),
            Just("oauth_consumer_key".to_owned()), Just("lti_launch_id".to_owned()),
            ".{0,16}",
        ], ".{0,300}"), 0..8),
        route in 0usize..6,
    ) {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &fields {
            ser.append_pair(k, v);
        }
        let encoded = ser.finish();
        let req = match route {
            0 => launch_request(encoded, None, "application/x-www-form-urlencoded"),
            1 => Request::get(format!("/lti/login?{encoded}")).body(Body::empty()).unwrap(),
            2 => Request::post("/lti/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(encoded)).unwrap(),
            3 => Request::post("/lti11/launch")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(encoded)).unwrap(),
            4 => Request::get(format!("/lti/app?{encoded}")).body(Body::empty()).unwrap(),
            _ => Request::get(format!("/lti/app/nrps?{encoded}")).body(Body::empty()).unwrap(),
        };
        assert_no_5xx("form fields", call(req));
    }

    /// Random JWS after a real login (valid state and cookie): random header (alg,
    /// kid, typ, crit), a valid claim set with some claims replaced by random JSON
    /// or removed, signed with the platform's real key or with a random signature.
    #[test]
    fn random_jws_after_a_real_login_never_5xx(
        alg in prop_oneof![
            Just("RS256".to_owned()), Just("none".to_owned()), Just("HS256".to_owned()),
            Just("RS512".to_owned()), Just("ES256".to_owned()), ".{0,8}",
        ],
        kid in prop::option::of(prop_oneof![Just("fuzz-platform-key".to_owned()), ".{0,20}"]),
        extra_header in prop::option::of(any_json()),
        mutations in prop::collection::vec((0..CLAIMS.len(), prop::option::of(any_json())), 0..5),
        signature in prop_oneof![
            Just(None),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(Some),
        ],
        really_sign in any::<bool>(),
        wrong_state in any::<bool>(),
    ) {
        let (state, nonce, cookie) = login();
        let mut claims = valid_claims(&nonce);
        for (i, v) in mutations {
            match v {
                Some(v) => { claims[CLAIMS[i]] = v; }
                None => { claims.as_object_mut().unwrap().remove(CLAIMS[i]); }
            }
        }
        let token = if really_sign && alg == "RS256" && extra_header.is_none() {
            lti_jose::sign(&claims, &world().key).unwrap()
        } else {
            let mut header = json!({"alg": alg, "typ": "JWT"});
            if let Some(k) = kid {
                header["kid"] = json!(k);
            }
            if let Some(x) = extra_header {
                header["x"] = x;
            }
            let input = format!(
                "{}.{}",
                b64(header.to_string().as_bytes()),
                b64(claims.to_string().as_bytes())
            );
            let sig = signature.unwrap_or_default();
            format!("{input}.{}", b64(&sig))
        };
        let state = if wrong_state { format!("{state}x") } else { state };
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("state", &state)
            .append_pair("id_token", &token)
            .finish();
        let status = assert_no_5xx(
            "random JWS",
            call(launch_request(body, Some(cookie), "application/x-www-form-urlencoded")),
        );
        // Only an unmutated, really signed token for the right state may succeed.
        if status == 303 {
            prop_assert!(!wrong_state);
        }
    }
}

/// The campaign reaches the success path: a valid launch through the same router
/// is accepted (303), so the random cases above are rejected on their merits.
#[test]
fn the_valid_launch_through_the_same_router_is_accepted() {
    let (state, nonce, cookie) = login();
    let token = lti_jose::sign(&valid_claims(&nonce), &world().key).unwrap();
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("state", &state)
        .append_pair("id_token", &token)
        .finish();
    let (status, body) = call(launch_request(
        body,
        Some(cookie),
        "application/x-www-form-urlencoded",
    ));
    assert_eq!(status, 303, "{}", String::from_utf8_lossy(&body));
}
