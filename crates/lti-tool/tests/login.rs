//! OIDC login initiation: parameters, registration resolution, open-redirect guard,
//! state persistence, the state cookie and platform quirks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use common::*;
use http::StatusCode;
use http::header::CACHE_CONTROL;
use lti_registry::{PlatformRegistration, QuirkProfile};

#[tokio::test]
async fn login_redirects_to_the_platform_with_every_required_parameter() {
    let h = Harness::new().await;
    let login = h.login().await;
    assert!(login.location.starts_with(&format!("{AUTH_URL}?")));
    assert_eq!(login.param("scope"), Some("openid"));
    assert_eq!(login.param("response_type"), Some("id_token"));
    assert_eq!(login.param("response_mode"), Some("form_post"));
    assert_eq!(login.param("prompt"), Some("none"));
    assert_eq!(login.param("client_id"), Some(CLIENT_ID));
    assert_eq!(
        login.param("redirect_uri"),
        Some("https://tool.example/lti/launch")
    );
    assert_eq!(login.param("login_hint"), Some("user-hint-42"));
    assert_eq!(login.param("lti_message_hint"), Some("message-hint"));
    // A 256-bit random nonce; the state is the sealed login (version, 128-bit
    // salt, ciphertext, 128-bit tag), compact enough for a URL.
    assert_eq!(lti_jose::b64::decode(&login.nonce).unwrap().len(), 32);
    let sealed = lti_jose::b64::decode(&login.state).unwrap();
    assert_eq!(sealed[0], 1);
    assert!(sealed.len() > 1 + 16 + 16 + 32, "{}", sealed.len());
    assert!(login.state.len() < 300, "{}", login.state.len());
    assert_ne!(login.state, login.nonce);
    // The cookie binds the state without containing it.
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=None",
        "Path=/",
        "Max-Age=600",
    ] {
        assert!(login.set_cookie.contains(attr), "{}", login.set_cookie);
    }
    assert!(login.cookie.starts_with("__Host-lti_state_"));
    assert!(!login.set_cookie.contains(&login.state));
    assert!(!login.set_cookie.contains("Partitioned"));
}

#[tokio::test]
async fn the_message_hint_and_login_hint_are_echoed_verbatim() {
    let h = Harness::new().await;
    let hint = "eyJ0eXAiOiJKV1QifQ.a+b/c=&d?e#f é";
    let resp = h
        .tool
        .login(&get(
            "/lti/login",
            &[
                ("iss", ISS),
                ("login_hint", "hint with spaces & symbols"),
                ("target_link_uri", TARGET),
                ("lti_message_hint", hint),
            ],
        ))
        .await
        .unwrap();
    let login = Login::from_response(&resp);
    assert_eq!(login.param("lti_message_hint"), Some(hint));
    assert_eq!(
        login.param("login_hint"),
        Some("hint with spaces & symbols")
    );
    assert_eq!(
        resp.headers().get(CACHE_CONTROL).unwrap(),
        "no-store",
        "the redirect must not be cached"
    );
}

#[tokio::test]
async fn login_by_post_form_works_like_get() {
    let h = Harness::new().await;
    let resp = h
        .tool
        .login(&post_form(
            "/lti/login",
            &[
                ("iss", ISS),
                ("login_hint", "u"),
                ("target_link_uri", TARGET),
            ],
            None,
        ))
        .await
        .unwrap();
    let login = Login::from_response(&resp);
    assert_eq!(login.param("client_id"), Some(CLIENT_ID));
    assert_eq!(login.param("lti_message_hint"), None);
    let token = h.sign(&h.claims(&login.nonce));
    h.launch_token(&login, &token).await.unwrap();
}

#[tokio::test]
async fn states_and_nonces_are_fresh_for_every_login() {
    let h = Harness::new().await;
    let mut seen = HashSet::new();
    for _ in 0..50 {
        let login = h.login().await;
        assert!(seen.insert(login.state));
        assert!(seen.insert(login.nonce));
    }
}

#[tokio::test]
async fn the_login_is_sealed_into_the_state_with_a_ten_minute_ttl() {
    let h = Harness::new().await;
    let login = h
        .login_with(&[
            ("lti_deployment_id", DEPLOYMENT),
            ("lti_storage_target", "_parent"),
        ])
        .await
        .unwrap();
    let saved = h.tool.open_login_state(&login.state).unwrap();
    assert_eq!(saved.nonce, login.nonce);
    assert_eq!(saved.issuer, ISS);
    assert_eq!(saved.client_id, CLIENT_ID);
    assert_eq!(saved.target_link_uri, TARGET);
    assert_eq!(saved.deployment_id.as_deref(), Some(DEPLOYMENT));
    assert_eq!(
        saved.extra.get("lti_storage_target").map(String::as_str),
        Some("_parent")
    );
    assert_eq!(saved.expires_at - saved.created_at, 600);
    assert_eq!(saved.created_at, NOW);
    // Nothing in the state is readable: it is encrypted.
    let raw = lti_jose::b64::decode(&login.state).unwrap();
    for plain in [ISS, CLIENT_ID, TARGET, DEPLOYMENT, "_parent", &login.nonce] {
        assert!(!login.state.contains(plain), "{plain}");
        assert!(
            !raw.windows(plain.len()).any(|w| w == plain.as_bytes()),
            "{plain}"
        );
    }
    // Valid for ten minutes, not a second more.
    h.clock.advance(599);
    h.tool.open_login_state(&login.state).unwrap();
    h.clock.advance(1);
    expect_code(h.tool.open_login_state(&login.state), "state_not_found");
}

#[tokio::test]
async fn the_storage_target_is_available_on_the_launch() {
    let h = Harness::new().await;
    let login = h
        .login_with(&[("lti_storage_target", "post_message_forwarding")])
        .await
        .unwrap();
    let token = h.sign(&h.claims(&login.nonce));
    let (launch, _) = h.launch_token(&login, &token).await.unwrap();
    assert_eq!(launch.lti_storage_target(), Some("post_message_forwarding"));
}

#[tokio::test]
async fn required_login_parameters_are_enforced() {
    let h = Harness::new().await;
    for missing in ["iss", "login_hint", "target_link_uri"] {
        let params: Vec<(&str, &str)> = [
            ("iss", ISS),
            ("login_hint", "u"),
            ("target_link_uri", TARGET),
        ]
        .into_iter()
        .filter(|(k, _)| *k != missing)
        .collect();
        let err = expect_code(
            h.tool.login(&get("/lti/login", &params)).await,
            "missing_parameter",
        );
        assert!(err.to_string().contains(missing), "{err}");
    }
    expect_code(
        h.tool
            .login(&get(
                "/lti/login",
                &[
                    ("iss", ISS),
                    ("iss", ISS),
                    ("login_hint", "u"),
                    ("target_link_uri", TARGET),
                ],
            ))
            .await,
        "duplicate_parameter",
    );
}

#[tokio::test]
async fn a_target_link_uri_outside_the_tool_is_refused() {
    let h = Harness::new().await;
    for target in [
        "https://evil.example/phish",
        "https://tool.example.evil.example/",
        "javascript:alert(1)",
        "http://tool.example/lti/app",
        "//evil.example/",
        "https://tool.example@evil.example/",
    ] {
        let err = expect_code(
            h.tool
                .login(&get(
                    "/lti/login",
                    &[
                        ("iss", ISS),
                        ("login_hint", "u"),
                        ("target_link_uri", target),
                    ],
                ))
                .await,
            "invalid_target_link_uri",
        );
        assert_eq!(err.http_status(), StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn configured_target_rules_replace_the_base_url_default() {
    let h = Harness::with(|b| {
        b.allow_target_link_uri("https://tool.example/exact")
            .allow_target_link_uri_prefix("https://cdn.tool.example/app/")
    })
    .await;
    let ok = |t: &'static str| {
        get(
            "/lti/login",
            &[("iss", ISS), ("login_hint", "u"), ("target_link_uri", t)],
        )
    };
    h.tool
        .login(&ok("https://tool.example/exact"))
        .await
        .unwrap();
    h.tool
        .login(&ok("https://cdn.tool.example/app/page"))
        .await
        .unwrap();
    expect_code(
        h.tool.login(&ok("https://tool.example/lti/app")).await,
        "invalid_target_link_uri",
    );
}

#[tokio::test]
async fn an_issuer_shared_by_several_registrations_needs_a_client_id() {
    let h = Harness::new().await;
    let mut second = registration();
    second.client_id = "client-2".into();
    h.store
        .registrations
        .insert_registration(&second)
        .await
        .unwrap();
    let params = [
        ("iss", ISS),
        ("login_hint", "u"),
        ("target_link_uri", TARGET),
    ];
    expect_code(
        h.tool.login(&get("/lti/login", &params)).await,
        "ambiguous_issuer",
    );
    let resp = h
        .tool
        .login(&get(
            "/lti/login",
            &[
                ("iss", ISS),
                ("login_hint", "u"),
                ("target_link_uri", TARGET),
                ("client_id", "client-2"),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(
        Login::from_response(&resp).param("client_id"),
        Some("client-2")
    );
    expect_code(
        h.tool
            .login(&get(
                "/lti/login",
                &[
                    ("iss", ISS),
                    ("login_hint", "u"),
                    ("target_link_uri", TARGET),
                    ("client_id", "client-9"),
                ],
            ))
            .await,
        "unknown_issuer",
    );
}

#[tokio::test]
async fn canvas_sends_deployment_id_instead_of_lti_deployment_id() {
    let h = Harness::new().await;
    let mut canvas: PlatformRegistration = registration();
    canvas.quirks = QuirkProfile::Canvas;
    h.store
        .registrations
        .update_registration(&canvas)
        .await
        .unwrap();
    let login = h
        .login_with(&[
            ("deployment_id", "deploy-other"),
            ("canvas_region", "us-east-1"),
        ])
        .await
        .unwrap();
    let saved = h.tool.open_login_state(&login.state).unwrap();
    assert_eq!(saved.deployment_id.as_deref(), Some("deploy-other"));

    // A generic platform's `deployment_id` login parameter is not an LTI parameter.
    let generic = Harness::new().await;
    let login = generic
        .login_with(&[("deployment_id", "deploy-other")])
        .await
        .unwrap();
    let saved = generic.tool.open_login_state(&login.state).unwrap();
    assert_eq!(saved.deployment_id, None);
}

#[tokio::test]
async fn blackboard_logs_in_with_get_including_client_id_and_deployment() {
    let h = Harness::new().await;
    let mut bb = registration();
    bb.quirks = QuirkProfile::Blackboard;
    h.store
        .registrations
        .update_registration(&bb)
        .await
        .unwrap();
    let login = h
        .login_with(&[("lti_deployment_id", DEPLOYMENT)])
        .await
        .unwrap();
    let token = h.sign(&h.claims(&login.nonce));
    let (launch, _) = h.launch_token(&login, &token).await.unwrap();
    assert_eq!(launch.deployment_id(), DEPLOYMENT);
}

#[tokio::test]
async fn an_auth_url_with_a_query_keeps_it() {
    let h = Harness::new().await;
    let mut reg = registration();
    reg.auth_login_url = "https://platform.example/auth?tenant=7".into();
    h.store
        .registrations
        .update_registration(&reg)
        .await
        .unwrap();
    let login = h.login().await;
    assert!(
        login
            .location
            .starts_with("https://platform.example/auth?tenant=7&scope=openid")
    );
}

#[tokio::test]
async fn the_partitioned_cookie_option_adds_the_attribute() {
    let h = Harness::with(|b| b.partitioned_state_cookie(true)).await;
    let login = h.login().await;
    assert!(login.set_cookie.contains("; Partitioned"));
}

#[tokio::test]
async fn the_public_url_comes_from_configuration_not_the_host_header() {
    let h = Harness::new().await;
    let uri = get(
        "/lti/login",
        &[
            ("iss", ISS),
            ("login_hint", "u"),
            ("target_link_uri", TARGET),
        ],
    )
    .uri()
    .clone();
    let req = lti_tool::ToolRequest::from_http(
        http::Request::builder()
            .method("GET")
            .uri(uri)
            .header("host", "evil.example")
            .header("x-forwarded-host", "evil.example")
            .body(bytes::Bytes::new())
            .unwrap(),
    );
    let login = Login::from_response(&h.tool.login(&req).await.unwrap());
    assert_eq!(
        login.param("redirect_uri"),
        Some("https://tool.example/lti/launch")
    );
}

#[tokio::test]
async fn the_builder_refuses_weak_or_malformed_configuration() {
    let clock = lti_registry::ManualClock::new(NOW);
    let store = store(&clock).await;
    let err = lti_tool::Tool::builder("http://tool.example", &store)
        .key_source(static_keys(&[&platform_key()]))
        .build()
        .unwrap_err();
    assert_eq!(err.code(), "configuration");
    let err = lti_tool::Tool::builder(TOOL_BASE, &store)
        .key_source(static_keys(&[&platform_key()]))
        .state_cookie_secret(b"too short")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("at least 32 bytes"), "{err}");
    // Loopback http is accepted for development; insecure_allow_http relaxes the
    // cookie (and Partitioned, which requires Secure, is then left out).
    let dev = lti_tool::Tool::builder("http://tool.example:3000", &store)
        .key_source(static_keys(&[&platform_key()]))
        .insecure_allow_http()
        .partitioned_state_cookie(true)
        .clock(std::sync::Arc::new(clock.clone()))
        .build()
        .unwrap();
    let resp = dev
        .login(&get(
            "/lti/login",
            &[
                ("iss", ISS),
                ("login_hint", "u"),
                ("target_link_uri", "http://tool.example:3000/app"),
            ],
        ))
        .await
        .unwrap();
    let cookie = resp.set_cookies().next().unwrap();
    assert!(
        cookie.starts_with("lti_state_")
            && cookie.contains("SameSite=Lax")
            && !cookie.contains("Secure")
            && !cookie.contains("Partitioned"),
        "{cookie}"
    );
    lti_tool::Tool::builder("http://127.0.0.1:3000", &store)
        .key_source(static_keys(&[&platform_key()]))
        .build()
        .unwrap();
}

#[tokio::test]
async fn a_loopback_http_tool_sets_a_secure_partitioned_cross_site_state_cookie() {
    // Browsers treat http://localhost and http://127.0.0.1 as secure contexts, so
    // the cookie keeps Secure, SameSite=None, Partitioned and the __Host- prefix:
    // inside a cross-site LMS frame with third-party cookies blocked it is stored
    // in the LMS's partition and comes back with the launch.
    let clock = lti_registry::ManualClock::new(NOW);
    let store = store(&clock).await;
    for base in ["http://127.0.0.1:3000", "http://localhost:3000/"] {
        let tool = lti_tool::Tool::builder(base, &store)
            .key_source(static_keys(&[&platform_key()]))
            .partitioned_state_cookie(true)
            .clock(std::sync::Arc::new(clock.clone()))
            .build()
            .unwrap();
        let target = format!("{}/app", base.trim_end_matches('/'));
        let resp = tool
            .login(&get(
                "/lti/login",
                &[
                    ("iss", ISS),
                    ("login_hint", "u"),
                    ("target_link_uri", &target),
                ],
            ))
            .await
            .unwrap();
        let cookie = resp.set_cookies().next().unwrap();
        assert!(
            cookie.starts_with(lti_tool::SECURE_COOKIE_PREFIX),
            "{cookie}"
        );
        for attr in ["; Secure", "; SameSite=None", "; Partitioned", "; Path=/"] {
            assert!(
                cookie.contains(attr),
                "{base}: {attr} missing from {cookie}"
            );
        }
        assert!(!cookie.contains("Domain="), "{cookie}");
    }
}
