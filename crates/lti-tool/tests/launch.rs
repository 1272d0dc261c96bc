//! Launch validation: the happy path and one test per rejection path, each asserting
//! its specific error code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::StatusCode;
use lti_tool::{LtiMessage, ToolError};
use ring::hmac;
use serde_json::{Value, json};

#[tokio::test]
async fn a_valid_launch_is_accepted_saved_and_redirected_to_the_target() {
    let h = Harness::new().await;
    let (launch, resp) = h.launch_with(|_| {}).await.unwrap();
    assert_eq!(launch.issuer(), ISS);
    assert_eq!(launch.client_id(), CLIENT_ID);
    assert_eq!(launch.deployment_id(), DEPLOYMENT);
    assert_eq!(launch.sub(), Some("user-1"));
    assert!(launch.roles().is_instructor_or_higher());
    assert!(
        matches!(launch.message(), LtiMessage::ResourceLink(rl) if rl.resource_link_id() == "rl-1")
    );
    assert_eq!(launch.raw_claims()["name"], "Ada Lovelace");
    assert_eq!(launch.launch_id().len(), 43);

    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let location = resp.location().unwrap();
    assert_eq!(
        location,
        format!("{TARGET}?lti_launch_id={}", launch.launch_id())
    );
    let cleared = resp.set_cookies().next().unwrap();
    assert!(cleared.starts_with("__Host-lti_state_") && cleared.contains("Max-Age=0"));

    // Saved under the launch id, loadable for later requests.
    let loaded = h.tool.load_launch(launch.launch_id()).await.unwrap();
    assert_eq!(loaded.claims(), launch.claims());
    assert_eq!(loaded.registration(), launch.registration());
    assert_eq!(loaded.target_link_uri(), TARGET);
    // Until it expires.
    h.clock.advance(2 * 3600 + 1);
    expect_code(
        h.tool.load_launch(launch.launch_id()).await,
        "launch_not_found",
    );
    expect_code(
        h.tool.load_launch("no-such-launch").await,
        "launch_not_found",
    );
}

#[tokio::test]
async fn state_cookie_missing_is_its_own_error_that_explains_third_party_cookies() {
    let h = Harness::new().await;
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    let err = expect_code(
        h.tool.launch(&login.cookieless_post(&token)).await,
        "state_cookie_missing",
    );
    assert!(err.to_string().contains("third-party cookies"));
    assert_eq!(err.http_status(), StatusCode::UNAUTHORIZED);
    // `Tool::launch` binds by cookie only, and says so.
    assert_eq!(cookie_only(&err), Some(lti_tool::CookieOnly::CookieRoute));
    assert!(err.to_string().contains("by cookie only"), "{err}");
}

#[tokio::test]
async fn a_state_that_does_not_match_the_cookie_is_rejected() {
    let h = Harness::new().await;
    let first = h.login().await;
    let second = h.login().await;
    let token = h.sign(&h.claims(&second.nonce));
    // The browser holds the first login's cookie but posts the second login's state.
    let req = launch_post(&second.state, &token, Some(&first.cookie));
    expect_code(h.tool.launch(&req).await, "state_mismatch");
}

#[tokio::test]
async fn a_reused_state_is_rejected() {
    let h = Harness::new().await;
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    h.launch_token(&login, &token).await.unwrap();
    expect_code(h.launch_token(&login, &token).await, "state_not_found");
}

#[tokio::test]
async fn an_expired_state_is_rejected() {
    let h = Harness::new().await;
    let login = h.login().await;
    h.clock.advance(601);
    let mut claims = h.claims(&login.nonce);
    claims.insert("iat".into(), json!(h.clock_now()));
    let token = h.sign(&claims);
    expect_code(h.launch_token(&login, &token).await, "state_not_found");
}

#[tokio::test]
async fn a_replayed_nonce_is_rejected() {
    let h = Harness::new().await;
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    h.launch_token(&login, &token).await.unwrap();
    // Even with another state carrying the same nonce (one an application made,
    // since a sealed state carries a nonce only the tool draws), the token cannot
    // be used twice: the launch recorded its nonce.
    let again = h.state_with_nonce(&login.nonce);
    expect_code(
        h.tool.verify_id_token(&token, &again).await,
        "nonce_replayed",
    );
    // A fresh login has a fresh nonce, which the old token does not carry.
    let fresh = h.login().await;
    expect_code(h.launch_token(&fresh, &token).await, "nonce_mismatch");
}

#[tokio::test]
async fn a_replayed_nonce_is_rejected_across_two_tool_instances_sharing_a_store() {
    let h = Harness::new().await;
    let other = builder(&h.store, &h.clock).build().unwrap();
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    h.launch_token(&login, &token).await.unwrap();
    // The other instance (same secret, same nonce store) refuses the state...
    expect_code(other.launch(&login.post(&token)).await, "state_not_found");
    // ...and the token under any state carrying its nonce.
    let again = h.state_with_nonce(&login.nonce);
    expect_code(
        other.verify_id_token(&token, &again).await,
        "nonce_replayed",
    );
}

#[tokio::test]
async fn a_nonce_not_issued_for_this_state_is_rejected() {
    let h = Harness::new().await;
    let err = expect_code(
        h.launch_with(|c| {
            c.insert("nonce".into(), json!("a-nonce-we-never-issued"));
        })
        .await,
        "nonce_mismatch",
    );
    assert!(!err.to_string().contains("a-nonce-we-never-issued"));
    expect_code(
        h.launch_with(|c| {
            c.remove("nonce");
        })
        .await,
        "missing_claim:nonce",
    );
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let h = Harness::new().await;
    let login = h.login().await;
    let claims = Value::Object(h.claims(&login.nonce));
    let token = format!(
        "{}.{}.",
        lti_jose::b64::encode(br#"{"alg":"none","kid":"platform-key-1"}"#),
        lti_jose::b64::encode(&serde_json::to_vec(&claims).unwrap())
    );
    // An empty signature segment is malformed; with a dummy signature, `none` is
    // refused as an algorithm.
    expect_code(h.launch_token(&login, &token).await, "malformed_token");
    let login = h.login().await;
    let claims = Value::Object(h.claims(&login.nonce));
    let token = format!(
        "{}.{}.AAAA",
        lti_jose::b64::encode(br#"{"alg":"none","kid":"platform-key-1"}"#),
        lti_jose::b64::encode(&serde_json::to_vec(&claims).unwrap())
    );
    expect_code(
        h.launch_token(&login, &token).await,
        "algorithm_not_allowed",
    );
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_as_secret_is_rejected() {
    let h = Harness::new().await;
    let login = h.login().await;
    let claims = Value::Object(h.claims(&login.nonce));
    let header = lti_jose::b64::encode(br#"{"alg":"HS256","kid":"platform-key-1","typ":"JWT"}"#);
    let payload = lti_jose::b64::encode(&serde_json::to_vec(&claims).unwrap());
    let input = format!("{header}.{payload}");
    // The classic confusion attack: HMAC keyed with the platform's public key.
    let public = serde_json::to_vec(&h.key.public_jwk()).unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, &public);
    let sig = lti_jose::b64::encode(hmac::sign(&key, input.as_bytes()).as_ref());
    let token = format!("{input}.{sig}");
    expect_code(
        h.launch_token(&login, &token).await,
        "algorithm_not_allowed",
    );
}

#[tokio::test]
async fn an_algorithm_off_the_registrations_allow_list_is_rejected() {
    let h = Harness::new().await;
    let login = h.login().await;
    let ps = lti_jose::SigningKey::from_pem(PLATFORM_1_PEM, lti_jose::Algorithm::PS256)
        .unwrap()
        .with_kid("platform-key-1");
    let token = lti_jose::sign(&h.claims(&login.nonce), &ps).unwrap();
    expect_code(
        h.launch_token(&login, &token).await,
        "algorithm_not_allowed",
    );
}

#[tokio::test]
async fn a_token_without_kid_is_rejected() {
    let h = Harness::new().await;
    let login = h.login().await;
    let token = sign_raw(
        &json!({"alg": "RS256", "typ": "JWT"}),
        &Value::Object(h.claims(&login.nonce)),
        &h.key,
    );
    expect_code(h.launch_token(&login, &token).await, "missing_kid");
}

#[tokio::test]
async fn a_token_with_an_unknown_kid_is_rejected() {
    let h = Harness::new().await;
    let login = h.login().await;
    let token = sign_raw(
        &json!({"alg": "RS256", "kid": "not-a-platform-key"}),
        &Value::Object(h.claims(&login.nonce)),
        &h.key,
    );
    let err = expect_code(h.launch_token(&login, &token).await, "unknown_kid");
    assert!(err.to_string().contains("not-a-platform-key"));
}

#[tokio::test]
async fn jku_and_x5u_headers_are_ignored() {
    let h = Harness::new().await;
    // A token signed by an attacker's key that points at the attacker's key set is
    // still verified against the registration's keys only.
    let attacker = second_platform_key().with_kid("platform-key-1");
    let login = h.login().await;
    let token = sign_raw(
        &json!({
            "alg": "RS256",
            "kid": "platform-key-1",
            "jku": "https://attacker.example/jwks",
            "x5u": "https://attacker.example/cert.pem"
        }),
        &Value::Object(h.claims(&login.nonce)),
        &attacker,
    );
    expect_code(h.launch_token(&login, &token).await, "bad_signature");
    // And the same headers on a genuine token change nothing.
    let login = h.login().await;
    let token = sign_raw(
        &json!({"alg": "RS256", "kid": "platform-key-1", "jku": "https://attacker.example/jwks"}),
        &Value::Object(h.claims(&login.nonce)),
        &h.key,
    );
    h.launch_token(&login, &token).await.unwrap();
}

#[tokio::test]
async fn a_token_signed_by_the_wrong_key_is_rejected() {
    let h = Harness::new().await;
    let login = h.login().await;
    let wrong = second_platform_key().with_kid("platform-key-1");
    let token = lti_jose::sign(&h.claims(&login.nonce), &wrong).unwrap();
    expect_code(h.launch_token(&login, &token).await, "bad_signature");
}

#[tokio::test]
async fn a_tampered_payload_is_rejected() {
    let h = Harness::new().await;
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = h.claims(&login.nonce);
    claims.insert("sub".into(), json!("admin"));
    parts[1] = lti_jose::b64::encode(&serde_json::to_vec(&claims).unwrap());
    expect_code(
        h.launch_token(&login, &parts.join(".")).await,
        "bad_signature",
    );
}

#[tokio::test]
async fn a_wrong_audience_is_rejected() {
    let h = Harness::new().await;
    let err = expect_code(
        h.launch_with(|c| {
            c.insert("aud".into(), json!("someone-else"));
        })
        .await,
        "invalid_audience",
    );
    assert_eq!(err.http_status(), StatusCode::FORBIDDEN);
    expect_code(
        h.launch_with(|c| {
            c.remove("aud");
        })
        .await,
        "missing_claim:aud",
    );
}

#[tokio::test]
async fn an_audience_array_needs_a_matching_azp() {
    let h = Harness::new().await;
    expect_code(
        h.launch_with(|c| {
            c.insert("aud".into(), json!([CLIENT_ID, "another-client"]));
        })
        .await,
        "azp_mismatch",
    );
    expect_code(
        h.launch_with(|c| {
            c.insert("aud".into(), json!([CLIENT_ID, "another-client"]));
            c.insert("azp".into(), json!("another-client"));
        })
        .await,
        "azp_mismatch",
    );
    // Schoology-style: an array with azp = client id is fine, as is a one-element array.
    h.launch_with(|c| {
        c.insert("aud".into(), json!([CLIENT_ID, "another-client"]));
        c.insert("azp".into(), json!(CLIENT_ID));
    })
    .await
    .unwrap();
    h.launch_with(|c| {
        c.insert("aud".into(), json!([CLIENT_ID]));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_expired_token_is_rejected() {
    let h = Harness::new().await;
    let now = h.clock_now();
    let err = expect_code(
        h.launch_with(|c| {
            c.insert("exp".into(), json!(now - 61));
        })
        .await,
        "token_expired",
    );
    assert!(err.to_string().contains("expected exp + leeway"));
    // Within the 60 s leeway it is accepted.
    h.launch_with(|c| {
        c.insert("exp".into(), json!(now - 59));
    })
    .await
    .unwrap();
    expect_code(
        h.launch_with(|c| {
            c.remove("exp");
        })
        .await,
        "missing_claim:exp",
    );
}

#[tokio::test]
async fn a_token_issued_in_the_future_is_rejected() {
    let h = Harness::new().await;
    let now = h.clock_now();
    expect_code(
        h.launch_with(|c| {
            c.insert("iat".into(), json!(now + 120));
        })
        .await,
        "issued_in_future",
    );
}

#[tokio::test]
async fn a_token_older_than_the_maximum_age_is_rejected() {
    let h = Harness::new().await;
    let now = h.clock_now();
    expect_code(
        h.launch_with(|c| {
            c.insert("iat".into(), json!(now - 361));
            c.insert("exp".into(), json!(now + 3600));
        })
        .await,
        "token_too_old",
    );
    expect_code(
        h.launch_with(|c| {
            c.remove("iat");
        })
        .await,
        "missing_claim:iat",
    );
}

#[tokio::test]
async fn an_unknown_issuer_is_rejected_at_login_and_at_launch() {
    let h = Harness::new().await;
    let err = expect_code(
        h.tool
            .login(&get(
                "/lti/login",
                &[
                    ("iss", "https://stranger.example"),
                    ("login_hint", "x"),
                    ("target_link_uri", TARGET),
                ],
            ))
            .await,
        "unknown_issuer",
    );
    assert_eq!(err.http_status(), StatusCode::FORBIDDEN);
    expect_code(
        h.launch_with(|c| {
            c.insert("iss".into(), json!("https://stranger.example"));
        })
        .await,
        "unknown_issuer",
    );
}

#[tokio::test]
async fn a_token_from_another_registered_platform_than_the_login_is_rejected() {
    let h = Harness::new().await;
    let mut other = registration();
    other.issuer = "https://other-platform.example".into();
    h.store
        .registrations
        .insert_registration(&other)
        .await
        .unwrap();
    expect_code(
        h.launch_with(|c| {
            c.insert("iss".into(), json!("https://other-platform.example"));
        })
        .await,
        "issuer_mismatch",
    );
}

#[tokio::test]
async fn an_unknown_deployment_is_rejected() {
    let h = Harness::new().await;
    let err = expect_code(
        h.launch_with(|c| {
            c.insert(format!("{LTI}deployment_id"), json!("deploy-unknown"));
        })
        .await,
        "unknown_deployment",
    );
    assert_eq!(err.http_status(), StatusCode::FORBIDDEN);
    expect_code(
        h.launch_with(|c| {
            c.remove(&format!("{LTI}deployment_id"));
        })
        .await,
        "missing_claim:deployment_id",
    );
}

#[tokio::test]
async fn a_deployment_other_than_the_logins_is_rejected() {
    let h = Harness::new().await;
    let login = h
        .login_with(&[("lti_deployment_id", "deploy-2")])
        .await
        .unwrap();
    let token = h.sign(&h.claims(&login.nonce));
    expect_code(h.launch_token(&login, &token).await, "deployment_mismatch");
}

#[tokio::test]
async fn a_version_other_than_1_3_0_is_rejected() {
    let h = Harness::new().await;
    expect_code(
        h.launch_with(|c| {
            c.insert(format!("{LTI}version"), json!("1.2.0"));
        })
        .await,
        "invalid_version",
    );
}

#[tokio::test]
async fn an_unknown_message_type_is_rejected() {
    let h = Harness::new().await;
    expect_code(
        h.launch_with(|c| {
            c.insert(format!("{LTI}message_type"), json!("LtiMysteryRequest"));
        })
        .await,
        "unknown_message_type",
    );
    // Unless explicitly allowed.
    let relaxed = Harness::with(|b| b.allow_unknown_message_types(true)).await;
    let (launch, _) = relaxed
        .launch_with(|c| {
            c.insert(format!("{LTI}message_type"), json!("LtiMysteryRequest"));
        })
        .await
        .unwrap();
    assert_eq!(launch.message().message_type(), "LtiMysteryRequest");
}

#[tokio::test]
async fn a_resource_link_launch_without_resource_link_is_rejected() {
    let h = Harness::new().await;
    expect_code(
        h.launch_with(|c| {
            c.remove(&format!("{LTI}resource_link"));
        })
        .await,
        "missing_claim:resource_link.id",
    );
}

#[tokio::test]
async fn a_deep_linking_request_without_settings_is_rejected() {
    let h = Harness::new().await;
    expect_code(
        h.launch_with(|c| {
            c.insert(format!("{LTI}message_type"), json!("LtiDeepLinkingRequest"));
            c.remove(&format!("{LTI}resource_link"));
        })
        .await,
        "missing_claim:deep_linking_settings",
    );
}

#[tokio::test]
async fn an_anonymous_launch_is_rejected_unless_allowed() {
    let h = Harness::new().await;
    expect_code(
        h.launch_with(|c| {
            c.remove("sub");
        })
        .await,
        "missing_claim:sub",
    );
    let relaxed = Harness::with(|b| b.allow_anonymous_launches(true)).await;
    let (launch, _) = relaxed
        .launch_with(|c| {
            c.remove("sub");
        })
        .await
        .unwrap();
    assert_eq!(launch.sub(), None);
}

#[tokio::test]
async fn a_target_link_uri_claim_other_than_the_logins_is_rejected() {
    let h = Harness::new().await;
    expect_code(
        h.launch_with(|c| {
            c.insert(
                format!("{LTI}target_link_uri"),
                json!("https://tool.example/other"),
            );
        })
        .await,
        "target_link_uri_mismatch",
    );
}

#[tokio::test]
async fn an_oversized_token_is_rejected_before_parsing() {
    let h = Harness::new().await;
    let err = expect_code(
        h.launch_with(|c| {
            c.insert("padding".into(), json!("x".repeat(20_000)));
        })
        .await,
        "token_too_large",
    );
    assert!(matches!(
        err,
        ToolError::TokenTooLarge { limit: 16_384, .. }
    ));
}

#[tokio::test]
async fn garbage_tokens_are_malformed_and_never_echoed() {
    let h = Harness::new().await;
    let secretish = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl";
    for garbage in [
        "not-a-jwt",
        "a.b",
        "a.b.c.d",
        "!!!.@@@.###",
        "eyJhbGciOiJSUzI1NiJ9..c2ln",
        "e30.e30.c2ln",
        secretish,
    ] {
        let login = h.login().await;
        let err = h.launch_token(&login, garbage).await.unwrap_err();
        assert!(
            matches!(err.code(), "malformed_token" | "missing_kid"),
            "{garbage}: {} {err}",
            err.code()
        );
        assert!(!err.to_string().contains(garbage), "{err}");
    }
    // A well-signed token whose payload is not an object.
    let login = h.login().await;
    let token = sign_raw(
        &json!({"alg": "RS256", "kid": "platform-key-1"}),
        &json!([1, 2]),
        &h.key,
    );
    expect_code(h.launch_token(&login, &token).await, "malformed_token");
}

#[tokio::test]
async fn a_signed_payload_that_is_not_utf8_is_malformed() {
    let h = Harness::new().await;
    let login = h.login().await;
    let mut claims = h.claims(&login.nonce);
    claims.insert("x-vendor".into(), json!("MARKER"));
    let text = serde_json::to_vec(&claims).unwrap();
    let at = text.windows(6).position(|w| w == b"MARKER").unwrap();
    let mut payload = text.clone();
    payload.splice(at..at + 6, [0xFF, 0xFE]);
    let token = sign_bytes(
        br#"{"alg":"RS256","kid":"platform-key-1"}"#,
        &payload,
        &h.key,
    );
    let err = expect_code(h.launch_token(&login, &token).await, "malformed_token");
    assert!(err.to_string().contains("expected UTF-8 JSON"), "{err}");
}

#[tokio::test]
async fn non_utf8_form_input_is_a_400() {
    let h = Harness::new().await;
    let login = h.login().await;
    let body = format!("state={}&id_token=%FF%FE%FD", login.state).into_bytes();
    let err = expect_code(
        h.tool
            .launch(&post_raw("/lti/launch", body, Some(&login.cookie)))
            .await,
        "invalid_form_encoding",
    );
    assert_eq!(err.http_status(), StatusCode::BAD_REQUEST);
    let mut raw = b"iss=".to_vec();
    raw.extend_from_slice(&[0xC3, 0x28]);
    let err = expect_code(
        h.tool.login(&post_raw("/lti/login", raw, None)).await,
        "invalid_form_encoding",
    );
    assert_eq!(err.to_response().status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn missing_parameters_and_wrong_methods_are_client_errors() {
    let h = Harness::new().await;
    let login = h.login().await;
    expect_code(
        h.tool
            .launch(&post_form(
                "/lti/launch",
                &[("state", &login.state)],
                Some(&login.cookie),
            ))
            .await,
        "missing_parameter",
    );
    expect_code(
        h.tool.launch(&get("/lti/launch", &[])).await,
        "method_not_allowed",
    );
    let err = expect_code(
        h.tool
            .launch(&post_form(
                "/lti/launch",
                &[
                    ("error", "login_required"),
                    ("error_description", "no session"),
                    ("state", &login.state),
                ],
                Some(&login.cookie),
            ))
            .await,
        "platform_error",
    );
    assert!(err.to_string().contains("login_required"));
}

#[tokio::test]
async fn a_jwks_outage_is_a_502() {
    struct Down;
    #[async_trait::async_trait]
    impl lti_jose::KeySource for Down {
        async fn key(
            &self,
            jwks_url: &str,
            _kid: Option<&str>,
            _alg: lti_jose::Algorithm,
        ) -> Result<lti_jose::VerifyingKey, lti_jose::Error> {
            Err(lti_jose::Error::KeySourceUnavailable {
                url: jwks_url.to_owned(),
                reason: "connection refused".into(),
            })
        }
    }
    let h = Harness::with(|b| b.key_source(std::sync::Arc::new(Down))).await;
    let err = expect_code(h.launch_with(|_| {}).await, "jwks_unavailable");
    assert_eq!(err.http_status(), StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn a_brightspace_registration_gets_extra_clock_skew_leeway() {
    let h = Harness::new().await;
    let mut reg = registration();
    reg.quirks = lti_registry::QuirkProfile::Brightspace;
    h.store
        .registrations
        .update_registration(&reg)
        .await
        .unwrap();
    let now = h.clock_now();
    h.launch_with(|c| {
        c.insert("iat".into(), json!(now + 120));
    })
    .await
    .unwrap();
}

/// Signs a payload given as JSON text (so it can say things a `Map` cannot, such as
/// a claim given twice).
fn sign_text(h: &Harness, payload: &str) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": h.key.kid()});
    let input = format!(
        "{}.{}",
        lti_jose::b64::encode(&serde_json::to_vec(&header).unwrap()),
        lti_jose::b64::encode(payload.as_bytes())
    );
    let sig = h.key.sign_bytes(input.as_bytes()).unwrap();
    format!("{input}.{}", lti_jose::b64::encode(&sig))
}

#[tokio::test]
async fn a_signed_token_naming_a_claim_twice_is_rejected() {
    let h = Harness::new().await;
    // A second `sub` after a valid payload: a JSON tree would keep the last one.
    let login = h.login().await;
    let claims = serde_json::to_string(&h.claims(&login.nonce)).unwrap();
    let twice = format!("{},\"sub\":\"someone-else\"}}", &claims[..claims.len() - 1]);
    let err = expect_code(
        h.launch_token(&login, &sign_text(&h, &twice)).await,
        "malformed_claim",
    );
    assert!(err.to_string().contains("twice"), "{err}");

    // A routing claim given twice is refused before any key is looked up.
    let login = h.login().await;
    let claims = serde_json::to_string(&h.claims(&login.nonce)).unwrap();
    let twice = format!("{},\"iss\":\"{ISS}\"}}", &claims[..claims.len() - 1]);
    let err = expect_code(
        h.launch_token(&login, &sign_text(&h, &twice)).await,
        "malformed_token",
    );
    assert!(err.to_string().contains("\"iss\" twice"), "{err}");
}

#[tokio::test]
async fn time_claims_in_unusual_shapes_are_judged_like_plain_ones() {
    let h = Harness::new().await;
    let now = h.clock_now();
    // Fractional dates (allowed by RFC 7519) and an `nbf` are accepted...
    h.launch_with(|c| {
        c.insert("exp".into(), json!(now as f64 + 300.5));
        c.insert("iat".into(), json!(now as f64 - 5.25));
        c.insert("nbf".into(), json!(now as f64 - 10.75));
    })
    .await
    .unwrap();
    h.launch_with(|c| {
        c.insert("nbf".into(), json!(now - 10));
    })
    .await
    .unwrap();
    // ...and judged the same whether `nbf` is an integer or not.
    for nbf in [json!(now + 61), json!(now as f64 + 61.5)] {
        expect_code(
            h.launch_with(|c| {
                c.insert("nbf".into(), nbf);
            })
            .await,
            "token_not_yet_valid",
        );
    }
    for exp in [json!(now - 61), json!(now as f64 - 61.5)] {
        expect_code(
            h.launch_with(|c| {
                c.insert("exp".into(), exp);
            })
            .await,
            "token_expired",
        );
    }
    // A `null` or negative date is refused by name.
    let err = expect_code(
        h.launch_with(|c| {
            c.insert("exp".into(), Value::Null);
        })
        .await,
        "invalid_claim",
    );
    assert!(err.to_string().contains("exp"), "{err}");
    let err = expect_code(
        h.launch_with(|c| {
            c.insert("iat".into(), json!(-5));
        })
        .await,
        "invalid_claim",
    );
    assert!(err.to_string().contains("iat"), "{err}");
}

#[tokio::test]
async fn verify_id_token_checks_a_token_against_a_state_the_application_consumed() {
    let h = Harness::new().await;
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    // The application opened the state itself (no cookie involved).
    let state = h.tool.open_login_state(&login.state).unwrap();
    assert_eq!(state.state, login.state);
    assert_eq!(state.nonce, login.nonce);
    let verified = h.tool.verify_id_token(&token, &state).await.unwrap();
    assert_eq!(verified.deployment_id(), DEPLOYMENT);
    assert_eq!(verified.issuer(), ISS);
    assert_eq!(verified.target_link_uri(), TARGET);
    assert!(verified.payload_json().contains(&login.nonce));
    // Saved by the application, it is a launch like any other.
    let launch = h.tool.save_verified(verified.clone()).await.unwrap();
    assert_eq!(launch.launch_id().len(), 43);
    let loaded = h.tool.load_launch(launch.launch_id()).await.unwrap();
    assert_eq!(loaded.payload_json(), verified.payload_json());
    assert_eq!(loaded.deployment_id(), DEPLOYMENT);
    assert_eq!(
        loaded.state_binding(),
        Some(lti_tool::StateBinding::Application)
    );
    // The nonce is spent: the same token and state are refused the second time.
    expect_code(
        h.tool.verify_id_token(&token, &state).await,
        "nonce_replayed",
    );
    // And the state is used up, so the cookie flow cannot use it either.
    expect_code(h.tool.launch(&login.post(&token)).await, "state_not_found");
}

#[tokio::test]
async fn verify_id_token_refuses_a_token_for_another_state() {
    let h = Harness::new().await;
    let first = h.login().await;
    let second = h.login().await;
    let token = h.sign(&h.claims(&first.nonce));
    let other_state = h.tool.open_login_state(&second.state).unwrap();
    expect_code(
        h.tool.verify_id_token(&token, &other_state).await,
        "nonce_mismatch",
    );
}

/// A payload the shape scan vouches for (plain integer dates) is validated from
/// the scan and its message decoded on first use; the same claims with an `exp`
/// written as a float take the typed path. Both give the same launch.
#[tokio::test]
async fn scanned_and_fully_decoded_launches_are_alike() {
    let h = Harness::new().await;
    let now = h.clock_now();
    let dl_return = "https://lms.example/dl-return";
    for deep_linking in [false, true] {
        let edit = |c: &mut serde_json::Map<String, Value>| {
            c.insert(
                "given_name".into(),
                json!("Ada \u{1F600} \"quoted\" / slash"),
            );
            if deep_linking {
                c.insert(format!("{LTI}message_type"), json!("LtiDeepLinkingRequest"));
                c.insert(
                    "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings".into(),
                    json!({"deep_link_return_url": dl_return, "accept_types": ["ltiResourceLink"]}),
                );
            }
        };
        let (scanned, _) = h.launch_with(edit).await.unwrap();
        let (decoded, _) = h
            .launch_with(|c| {
                edit(c);
                c.insert("exp".into(), json!(now as f64 + 300.0));
            })
            .await
            .unwrap();
        // Asked before the message is decoded, then after.
        assert_eq!(scanned.is_deep_linking(), deep_linking);
        assert_eq!(decoded.is_deep_linking(), deep_linking);
        let mut a = scanned.claims().clone();
        let mut b = decoded.claims().clone();
        assert_ne!(a.nonce, b.nonce, "two logins");
        a.nonce = None;
        b.nonce = None;
        assert_eq!(a, b);
        assert_eq!(
            a.given_name.as_deref(),
            Some("Ada \u{1F600} \"quoted\" / slash")
        );
        assert_eq!(scanned.roles(), decoded.roles());
        assert_eq!(scanned.deployment_id(), DEPLOYMENT);
        assert_eq!(
            std::mem::discriminant(scanned.message()),
            std::mem::discriminant(decoded.message())
        );
        if deep_linking {
            assert!(scanned.deep_linking_response().is_ok());
            assert!(matches!(
                scanned.message(),
                LtiMessage::DeepLinking(dl) if dl.deep_link_return_url() == dl_return
            ));
        }
        // Loaded back from the launch-data store, alike again.
        let loaded = h.tool.load_launch(scanned.launch_id()).await.unwrap();
        assert_eq!(loaded.claims(), scanned.claims());
        assert_eq!(loaded.is_deep_linking(), deep_linking);
    }
}
