//! The token endpoint: client-credentials grants with JWT assertions (RFC 7523) and
//! every refusal with its specific error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::StatusCode;
use lti_platform::{PlatformError, TokenRequest};

fn request(assertion: String, scope: &str) -> TokenRequest {
    TokenRequest {
        grant_type: "client_credentials".to_owned(),
        client_assertion_type: lti_platform::CLIENT_ASSERTION_TYPE.to_owned(),
        client_assertion: assertion,
        scope: scope.to_owned(),
    }
}

#[tokio::test]
async fn valid_assertion_gets_a_bearer_token_with_the_requested_scopes() {
    let f = fixture();
    let jwt = assertion(&tool_key(), good_assertion_claims("jti-1"));
    let resp = f
        .platform
        .token_endpoint(&token_request(
            &jwt,
            &format!("{SCOPE_SCORE} {SCOPE_LINEITEM}"),
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    assert_eq!(header(&resp, "cache-control"), Some("no-store"));
    let body = json_body(&resp);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], format!("{SCOPE_LINEITEM} {SCOPE_SCORE}"));
    let token = body["access_token"].as_str().unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    let grant = f.platform.authorize_bearer(&headers).unwrap();
    assert_eq!(grant.client_id, CLIENT_ID);
    assert!(grant.has_any(&[SCOPE_SCORE]));
    assert!(!grant.has_any(&[SCOPE_NRPS]));
    assert_eq!(grant.expires_at, NOW + 3600);
}

#[tokio::test]
async fn audience_may_be_an_array_containing_the_token_url() {
    let f = fixture();
    let mut claims = good_assertion_claims("jti-array");
    claims["aud"] = serde_json::json!(["https://other.example", TOKEN_URL]);
    let out = f
        .platform
        .exchange(&request(assertion(&tool_key(), claims), SCOPE_SCORE))
        .await
        .unwrap();
    assert_eq!(out.scope, SCOPE_SCORE);
}

#[tokio::test]
async fn assertion_signed_by_another_key_is_invalid_client() {
    let f = fixture();
    let forged = assertion(
        &key(ATTACKER_PEM, "tool-key-1"),
        good_assertion_claims("jti-2"),
    );
    let err = f
        .platform
        .exchange(&request(forged.clone(), SCOPE_SCORE))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            PlatformError::InvalidClientAssertion {
                source: Some(lti_jose::Error::BadSignature),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "invalid_client_assertion");
    let resp = f
        .platform
        .token_endpoint(&token_request(&forged, SCOPE_SCORE))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_body(&resp)["error"], "invalid_client");
}

#[tokio::test]
async fn assertion_with_unknown_kid_is_invalid_client() {
    let f = fixture();
    let jwt = assertion(
        &key(TOOL_PEM, "some-other-kid"),
        good_assertion_claims("jti-kid"),
    );
    let err = f
        .platform
        .exchange(&request(jwt, SCOPE_SCORE))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            PlatformError::InvalidClientAssertion {
                source: Some(lti_jose::Error::UnknownKid { .. }),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn replayed_jti_is_refused() {
    let f = fixture();
    let jwt = assertion(&tool_key(), good_assertion_claims("jti-once"));
    f.platform
        .exchange(&request(jwt.clone(), SCOPE_SCORE))
        .await
        .unwrap();
    let err = f
        .platform
        .exchange(&request(jwt.clone(), SCOPE_SCORE))
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::ReplayedAssertion), "{err:?}");
    let resp = f
        .platform
        .token_endpoint(&token_request(&jwt, SCOPE_SCORE))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_body(&resp)["error"], "invalid_client");
}

#[tokio::test]
async fn unregistered_scope_is_invalid_scope() {
    let f = fixture_with(registration_without_nrps());
    let jwt = assertion(&tool_key(), good_assertion_claims("jti-3"));
    let err = f
        .platform
        .exchange(&request(
            jwt.clone(),
            &format!("{SCOPE_SCORE} {SCOPE_NRPS}"),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PlatformError::InvalidScope { found } if found == SCOPE_NRPS),
        "{err:?}"
    );
    let jwt = assertion(&tool_key(), good_assertion_claims("jti-4"));
    let resp = f
        .platform
        .token_endpoint(&token_request(&jwt, SCOPE_NRPS))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(&resp)["error"], "invalid_scope");
}

fn registration_without_nrps() -> lti_platform::ToolRegistration {
    let mut r = registration();
    r.scopes.remove(SCOPE_NRPS);
    r
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let f = fixture();
    let mut claims = good_assertion_claims("jti-5");
    claims["aud"] = serde_json::json!("https://lms.example.edu/other");
    let err = f
        .platform
        .exchange(&request(assertion(&tool_key(), claims), SCOPE_SCORE))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PlatformError::InvalidClientAssertion { reason, .. } if reason.contains("aud")),
        "{err:?}"
    );
}

#[tokio::test]
async fn expired_assertion_is_refused() {
    let f = fixture();
    let jwt = assertion(&tool_key(), good_assertion_claims("jti-6"));
    f.clock.advance(300 + 61);
    let err = f
        .platform
        .exchange(&request(jwt, SCOPE_SCORE))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            PlatformError::InvalidClientAssertion {
                source: Some(lti_jose::Error::TokenExpired { .. }),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn assertion_with_overlong_lifetime_is_refused() {
    let f = fixture();
    let mut claims = good_assertion_claims("jti-long");
    claims["exp"] = serde_json::json!(NOW + 86_400);
    let err = f
        .platform
        .exchange(&request(assertion(&tool_key(), claims), SCOPE_SCORE))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PlatformError::InvalidClientAssertion { reason, .. } if reason.contains("exp - iat")),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_client_is_invalid_client() {
    let f = fixture();
    let mut claims = good_assertion_claims("jti-7");
    claims["iss"] = serde_json::json!("nobody");
    claims["sub"] = serde_json::json!("nobody");
    let jwt = assertion(&tool_key(), claims);
    let err = f
        .platform
        .exchange(&request(jwt.clone(), SCOPE_SCORE))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PlatformError::UnknownClient { client_id } if client_id == "nobody"),
        "{err:?}"
    );
    let resp = f
        .platform
        .token_endpoint(&token_request(&jwt, SCOPE_SCORE))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_body(&resp)["error"], "invalid_client");
}

#[tokio::test]
async fn sub_differing_from_iss_is_refused() {
    let f = fixture();
    let mut claims = good_assertion_claims("jti-8");
    claims["sub"] = serde_json::json!("someone-else");
    let err = f
        .platform
        .exchange(&request(assertion(&tool_key(), claims), SCOPE_SCORE))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PlatformError::InvalidClientAssertion { reason, .. } if reason.contains("`sub` equal to `iss`")),
        "{err:?}"
    );
}

#[tokio::test]
async fn missing_jti_is_refused() {
    let f = fixture();
    let mut claims = good_assertion_claims("x");
    claims.as_object_mut().unwrap().remove("jti");
    let err = f
        .platform
        .exchange(&request(assertion(&tool_key(), claims), SCOPE_SCORE))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PlatformError::InvalidClientAssertion { reason, .. } if reason.contains("`jti`")),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_grant_type_is_unsupported_grant_type() {
    let f = fixture();
    let jwt = assertion(&tool_key(), good_assertion_claims("jti-9"));
    let req = form_post(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_assertion_type", lti_platform::CLIENT_ASSERTION_TYPE),
            ("client_assertion", &jwt),
            ("scope", SCOPE_SCORE),
        ],
    );
    let resp = f.platform.token_endpoint(&req).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(&resp)["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn missing_assertion_is_invalid_request() {
    let f = fixture();
    let req = form_post(
        "/token",
        &[("grant_type", "client_credentials"), ("scope", SCOPE_SCORE)],
    );
    let err = TokenRequest::from_http(&req).unwrap_err();
    assert!(
        matches!(
            err,
            PlatformError::MissingParameter {
                name: "client_assertion_type"
            }
        ),
        "{err:?}"
    );
    let resp = f.platform.token_endpoint(&req).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(&resp)["error"], "invalid_request");
}

#[tokio::test]
async fn wrong_assertion_type_is_invalid_request() {
    let f = fixture();
    let jwt = assertion(&tool_key(), good_assertion_claims("jti-10"));
    let mut req = request(jwt, SCOPE_SCORE);
    req.client_assertion_type = "urn:something:else".to_owned();
    let err = f.platform.exchange(&req).await.unwrap_err();
    assert!(
        matches!(
            err,
            PlatformError::InvalidParameter {
                name: "client_assertion_type",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.oauth_error(), "invalid_request");
}

#[tokio::test]
async fn garbage_assertion_is_invalid_client_not_a_panic() {
    let f = fixture();
    for garbage in [
        "",
        "a.b",
        "a.b.c",
        "....",
        "eyJhbGciOiJub25lIn0.e30.",
        &"x".repeat(100_000),
    ] {
        let resp = f
            .platform
            .token_endpoint(&token_request(garbage, SCOPE_SCORE))
            .await;
        assert!(
            resp.status().is_client_error(),
            "{garbage:.20}: {}",
            resp.status()
        );
    }
}

#[tokio::test]
async fn get_and_json_bodies_are_refused() {
    let f = fixture();
    let get = http::Request::get("/token")
        .body(bytes::Bytes::new())
        .unwrap();
    let resp = f.platform.token_endpoint(&get).await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(json_body(&resp)["error"], "invalid_request");
    let json = http::Request::post("/token")
        .header("content-type", "application/json")
        .body(bytes::Bytes::from_static(b"{}"))
        .unwrap();
    let resp = f.platform.token_endpoint(&json).await;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn duplicate_form_fields_are_refused() {
    let f = fixture();
    let req = form_post(
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("grant_type", "client_credentials"),
        ],
    );
    let err = TokenRequest::from_http(&req).unwrap_err();
    assert!(
        matches!(&err, PlatformError::DuplicateParameter { name } if name == "grant_type"),
        "{err:?}"
    );
    assert_eq!(
        f.platform.token_endpoint(&req).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn bearer_tokens_expire_and_cannot_be_forged() {
    let f = fixture();
    let token = bearer(&f.platform, &[SCOPE_SCORE]);
    let headers = |v: String| {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", v.parse().unwrap());
        h
    };
    assert!(
        f.platform
            .authorize_bearer(&headers(format!("bearer {token}")))
            .is_ok()
    );
    // Flip one character of the payload.
    let mut forged = token.clone().into_bytes();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let err = f
        .platform
        .authorize_bearer(&headers(format!(
            "Bearer {}",
            String::from_utf8(forged).unwrap()
        )))
        .unwrap_err();
    assert!(
        matches!(err, PlatformError::InvalidAccessToken { reason } if reason.contains("issued by this platform"))
    );
    let err = f
        .platform
        .authorize_bearer(&headers(format!("Basic {token}")))
        .unwrap_err();
    assert!(
        matches!(err, PlatformError::InvalidAccessToken { reason } if reason.contains("Bearer scheme"))
    );
    let err = f
        .platform
        .authorize_bearer(&http::HeaderMap::new())
        .unwrap_err();
    assert!(
        matches!(err, PlatformError::InvalidAccessToken { reason } if reason.contains("Authorization header"))
    );
    f.clock.advance(3600);
    let err = f
        .platform
        .authorize_bearer(&headers(format!("Bearer {token}")))
        .unwrap_err();
    assert!(
        matches!(err, PlatformError::InvalidAccessToken { reason } if reason.contains("expired"))
    );
}
