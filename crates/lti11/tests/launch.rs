#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Tool-provider launch verification: the happy paths and every rejection
//! path, each asserting its specific code.

mod common;

use common::{Fixture, KEY, LAUNCH_URL, NOW, SECRET};
use http::StatusCode;
use lti11::oauth::{self, OAuthParams};
use lti11::{Credentials, ErrorKind, LaunchRequest, SignatureMethod, SignedLaunch, SignedRequest};

fn launch() -> LaunchRequest {
    LaunchRequest::new("rl-42")
        .param("user_id", "u-1")
        .roles(&["Instructor", "urn:lti:instrole:ims/lis/Faculty"])
        .context("ctx-7", "Biology")
        .param("custom_chapter", "3/4")
}

fn sign(
    req: &LaunchRequest,
    url: &str,
    key: &str,
    secret: &str,
    ts: i64,
    nonce: &str,
) -> SignedLaunch {
    let mut p = OAuthParams::new(ts as u64);
    p.nonce = nonce.to_owned();
    p.callback = Some("about:blank".into());
    req.sign_with(url, &Credentials::new(key, secret), &p)
        .unwrap()
}

async fn verify_body(fx: &Fixture, url: &str, body: &str) -> lti11::Result<lti11::Launch> {
    fx.launches()
        .verify(&SignedRequest::form_post(url, body.as_bytes()))
        .await
}

async fn expect_code(fx: &Fixture, body: &str, code: &str, status: StatusCode) {
    let err = verify_body(fx, LAUNCH_URL, body).await.unwrap_err();
    assert_eq!(err.code(), code, "{err}");
    assert_eq!(err.status(), status, "{err}");
}

/// Rejections that must happen before any store is consulted.
async fn expect_code_before_store(fx: &Fixture, body: &str, code: &str, status: StatusCode) {
    let err = fx
        .counting_launches()
        .verify(&SignedRequest::form_post(LAUNCH_URL, body.as_bytes()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), code, "{err}");
    assert_eq!(err.status(), status, "{err}");
}

#[tokio::test]
async fn valid_launch_is_accepted_and_typed() {
    let fx = Fixture::new();
    let signed = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW, "n-1");
    let l = verify_body(&fx, LAUNCH_URL, &signed.form_body())
        .await
        .unwrap();
    assert_eq!(l.consumer_key(), KEY);
    assert_eq!(l.resource_link_id(), "rl-42");
    assert_eq!(l.user_id(), Some("u-1"));
    assert_eq!(l.context_id(), Some("ctx-7"));
    assert!(l.roles().is_instructor());
    assert_eq!(l.params().custom_parameters().get("chapter"), Some(&"3/4"));
    assert_eq!(l.lti_version(), "LTI-1p0");
    assert!(l.params().get("oauth_signature").is_none());
    assert_eq!(l.param("custom_chapter"), Some("3/4"));
    assert_eq!(
        l.param("oauth_nonce"),
        None,
        "OAuth parameters are not launch parameters"
    );
}

#[tokio::test]
async fn duplicate_and_empty_launch_parameters_read_the_same_through_both_views() {
    let fx = Fixture::new();
    let params = [
        ("lti_message_type", "basic-lti-launch-request"),
        ("lti_version", "LTI-1p0"),
        ("resource_link_id", "rl-dup"),
        // The first value sent sorts last, so arrival order is what counts.
        ("custom_dup", "sent-first"),
        ("custom_dup", "a-sent-second"),
        ("custom_empty", ""),
    ];
    let mut p = OAuthParams::new(NOW as u64);
    p.nonce = "n-dup".into();
    let protocol = oauth::sign_params(
        "POST",
        LAUNCH_URL,
        &params,
        &Credentials::new(KEY, SECRET),
        &p,
    )
    .unwrap();
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .extend_pairs(&protocol)
        .finish();
    let l = verify_body(&fx, LAUNCH_URL, &body).await.unwrap();
    // The first value sent wins and empty values count as absent, in the
    // compact view and in the typed view built from it.
    assert_eq!(l.param("custom_dup"), Some("sent-first"));
    assert_eq!(l.params().get("custom_dup"), Some("sent-first"));
    assert_eq!(l.param("custom_empty"), None);
    assert_eq!(l.params().get("custom_empty"), None);
}

#[tokio::test]
async fn launch_url_with_query_parameters_verifies() {
    let fx = Fixture::new();
    let url = "https://Tool.Example.com:443/lti/launch?course=7&course=8&x=a+b";
    let signed = sign(&launch(), url, KEY, SECRET, NOW, "n-q");
    verify_body(&fx, url, &signed.form_body()).await.unwrap();
}

#[tokio::test]
async fn hmac_sha256_launch_verifies_and_can_be_refused() {
    let fx = Fixture::new();
    let signed = launch()
        .sign_sha256(LAUNCH_URL, &Credentials::new(KEY, SECRET), NOW as u64)
        .unwrap();
    verify_body(&fx, LAUNCH_URL, &signed.form_body())
        .await
        .unwrap();

    let fx = Fixture::new();
    let only_sha1 = lti11::LaunchVerifier::new(
        fx.oauth()
            .with_signature_methods(&[SignatureMethod::HmacSha1]),
    );
    let err = only_sha1
        .verify(&SignedRequest::form_post(
            LAUNCH_URL,
            signed.form_body().as_bytes(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unsupported_signature_method");
}

#[tokio::test]
async fn oauth_parameters_in_the_authorization_header_verify() {
    let fx = Fixture::new();
    let signed = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW, "n-h");
    let (oauth_fields, lti_fields): (Vec<_>, Vec<_>) = signed
        .fields()
        .iter()
        .cloned()
        .partition(|(k, _)| k.starts_with("oauth_"));
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(lti_fields)
        .finish();
    let header = oauth::authorization_header(&oauth_fields);
    let req = SignedRequest {
        authorization: Some(&header),
        ..SignedRequest::form_post(LAUNCH_URL, body.as_bytes())
    };
    let l = fx.launches().verify(&req).await.unwrap();
    assert_eq!(l.resource_link_id(), "rl-42");
}

#[tokio::test]
async fn lti_1p1_and_1p2_versions_are_accepted() {
    for v in ["LTI-1p1", "LTI-1p2"] {
        let fx = Fixture::new();
        let signed = sign(
            &launch().param("lti_version", v),
            LAUNCH_URL,
            KEY,
            SECRET,
            NOW,
            "n-v",
        );
        let l = verify_body(&fx, LAUNCH_URL, &signed.form_body())
            .await
            .unwrap();
        assert_eq!(l.lti_version(), v);
    }
}

#[tokio::test]
async fn unknown_consumer_key_is_an_authentication_failure() {
    let fx = Fixture::new();
    let signed = sign(&launch(), LAUNCH_URL, "nobody", SECRET, NOW, "n-2");
    let err = verify_body(&fx, LAUNCH_URL, &signed.form_body())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_consumer_key");
    assert_eq!(err.kind(), ErrorKind::Authentication);
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_secret_is_a_bad_signature() {
    let fx = Fixture::new();
    let signed = sign(&launch(), LAUNCH_URL, KEY, "not-the-secret", NOW, "n-3");
    expect_code(
        &fx,
        &signed.form_body(),
        "bad_signature",
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn tampered_parameter_is_a_bad_signature() {
    let fx = Fixture::new();
    let body = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW, "n-4")
        .form_body()
        .replace("u-1", "u-2");
    expect_code(&fx, &body, "bad_signature", StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn signature_that_is_not_the_tag_in_base64_is_a_bad_signature() {
    let fx = Fixture::new();
    let signed = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW, "n-b64");
    let sig = signed
        .fields()
        .iter()
        .find(|(k, _)| k == "oauth_signature")
        .map(|(_, v)| v.clone())
        .unwrap();
    // Not base64; the right tag cut short.
    for bad in ["not base64!".to_owned(), sig[..sig.len() - 4].to_owned()] {
        let fields = signed.fields().iter().map(|(k, v)| {
            let v = if k == "oauth_signature" { &bad } else { v };
            (k.as_str(), v.as_str())
        });
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        expect_code(&fx, &body, "bad_signature", StatusCode::UNAUTHORIZED).await;
    }
    // The nonce was not burnt by either attempt.
    verify_body(&fx, LAUNCH_URL, &signed.form_body())
        .await
        .unwrap();
}

#[tokio::test]
async fn different_url_is_a_bad_signature() {
    let fx = Fixture::new();
    let signed = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW, "n-5");
    let err = verify_body(
        &fx,
        "https://tool.example.com/lti/other",
        &signed.form_body(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "bad_signature");
}

#[tokio::test]
async fn timestamps_outside_the_window_are_rejected_and_edges_accepted() {
    let fx = Fixture::new();
    let old = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW - 301, "n-old");
    expect_code(
        &fx,
        &old.form_body(),
        "timestamp_too_old",
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let new = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW + 301, "n-new");
    expect_code(
        &fx,
        &new.form_body(),
        "timestamp_too_new",
        StatusCode::UNAUTHORIZED,
    )
    .await;
    for (ts, nonce) in [(NOW - 300, "edge-old"), (NOW + 300, "edge-new")] {
        let ok = sign(&launch(), LAUNCH_URL, KEY, SECRET, ts, nonce);
        verify_body(&fx, LAUNCH_URL, &ok.form_body()).await.unwrap();
    }
}

#[tokio::test]
async fn timestamp_window_is_configurable_with_an_injected_clock() {
    let fx = Fixture::new();
    let verifier = lti11::LaunchVerifier::new(fx.oauth().with_timestamp_window(60));
    let signed = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW - 61, "n-w");
    let err = verifier
        .verify(&SignedRequest::form_post(
            LAUNCH_URL,
            signed.form_body().as_bytes(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "timestamp_too_old");
    fx.clock.set(NOW - 30);
    verifier
        .verify(&SignedRequest::form_post(
            LAUNCH_URL,
            signed.form_body().as_bytes(),
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn replayed_nonce_is_rejected() {
    let fx = Fixture::new();
    let body = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW, "n-6").form_body();
    verify_body(&fx, LAUNCH_URL, &body).await.unwrap();
    expect_code(&fx, &body, "nonce_replayed", StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn replayed_nonce_is_rejected_across_two_verifiers_sharing_a_store() {
    let fx = Fixture::new();
    let first = fx.launches();
    let second = fx.launches();
    let body = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW, "n-shared").form_body();
    first
        .verify(&SignedRequest::form_post(LAUNCH_URL, body.as_bytes()))
        .await
        .unwrap();
    let err = second
        .verify(&SignedRequest::form_post(LAUNCH_URL, body.as_bytes()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "nonce_replayed");
}

#[tokio::test]
async fn same_nonce_from_another_consumer_is_not_a_replay() {
    let fx = Fixture::new();
    let a = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW, "n-same").form_body();
    let b = sign(
        &launch(),
        LAUNCH_URL,
        "other-key",
        "other-secret",
        NOW,
        "n-same",
    )
    .form_body();
    verify_body(&fx, LAUNCH_URL, &a).await.unwrap();
    verify_body(&fx, LAUNCH_URL, &b).await.unwrap();
}

#[tokio::test]
async fn forged_launch_does_not_burn_the_nonce() {
    let fx = Fixture::new();
    let forged = sign(&launch(), LAUNCH_URL, KEY, "guess", NOW, "n-burn").form_body();
    expect_code(&fx, &forged, "bad_signature", StatusCode::UNAUTHORIZED).await;
    let genuine = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW, "n-burn").form_body();
    verify_body(&fx, LAUNCH_URL, &genuine).await.unwrap();
}

#[tokio::test]
async fn body_hash_mismatch_and_absence_are_rejected() {
    let fx = Fixture::new();
    let body = br#"{"score":1}"#;
    let mut p = OAuthParams::new(NOW as u64);
    p.body_hash = Some(oauth::body_hash(body));
    let none: [(&str, &str); 0] = [];
    let protocol = oauth::sign_params(
        "POST",
        LAUNCH_URL,
        &none,
        &Credentials::new(KEY, SECRET),
        &p,
    )
    .unwrap();
    let header = oauth::authorization_header(&protocol);
    let req = SignedRequest {
        method: "POST",
        url: LAUNCH_URL,
        authorization: Some(&header),
        content_type: Some("application/json"),
        body: br#"{"score":0}"#,
    };
    let err = fx.oauth().verify(&req).await.unwrap_err();
    assert_eq!(err.code(), "body_hash_mismatch");
    assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    let ok = SignedRequest { body, ..req };
    fx.oauth().verify(&ok).await.unwrap();

    let mut p = OAuthParams::new(NOW as u64);
    p.nonce = "n-nohash".into();
    let protocol = oauth::sign_params(
        "POST",
        LAUNCH_URL,
        &none,
        &Credentials::new(KEY, SECRET),
        &p,
    )
    .unwrap();
    let header = oauth::authorization_header(&protocol);
    let missing = SignedRequest {
        authorization: Some(&header),
        ..ok
    };
    assert_eq!(
        fx.oauth().verify(&missing).await.unwrap_err().code(),
        "missing_body_hash"
    );
}

#[tokio::test]
async fn wrong_message_type_is_a_protocol_failure() {
    let fx = Fixture::new();
    let req = launch().param("lti_message_type", "ContentItemSelectionRequest");
    let err = verify_body(
        &fx,
        LAUNCH_URL,
        &sign(&req, LAUNCH_URL, KEY, SECRET, NOW, "n-7").form_body(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "wrong_message_type");
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_lti_version_is_rejected() {
    let fx = Fixture::new();
    let req = launch().param("lti_version", "LTI-2p0");
    let body = sign(&req, LAUNCH_URL, KEY, SECRET, NOW, "n-8").form_body();
    expect_code(
        &fx,
        &body,
        "unsupported_lti_version",
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn missing_resource_link_id_is_rejected() {
    let fx = Fixture::new();
    let req = launch().param("resource_link_id", "");
    let body = sign(&req, LAUNCH_URL, KEY, SECRET, NOW, "n-9").form_body();
    let err = verify_body(&fx, LAUNCH_URL, &body).await.unwrap_err();
    assert!(
        matches!(
            err,
            lti11::Error::MissingParameter {
                name: "resource_link_id"
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "missing_parameter");
}

#[tokio::test]
async fn absurd_protocol_values_are_rejected_before_any_store_lookup() {
    let fx = Fixture::new();
    let cases = [
        ("oauth_consumer_key", "k".repeat(300)),
        ("oauth_consumer_key", "bad\u{1}key".to_owned()),
        ("oauth_nonce", "n".repeat(200)),
        ("oauth_nonce", "with space".to_owned()),
        ("oauth_timestamp", "99999999999999999999".to_owned()),
        ("oauth_timestamp", "17e8".to_owned()),
    ];
    for (name, value) in cases {
        let signed = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW, "n-h1");
        let fields: Vec<(String, String)> = signed
            .fields()
            .iter()
            .map(|(k, v)| {
                if k == name {
                    (k.clone(), value.clone())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect();
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let err = fx
            .counting_launches()
            .verify(&SignedRequest::form_post(LAUNCH_URL, body.as_bytes()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_oauth_parameter", "{name}");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
    assert_eq!(fx.consumers.lookups(), 0);
    assert_eq!(fx.nonces.len(), 0);
}

#[tokio::test]
async fn missing_duplicate_and_unsupported_oauth_parameters_are_rejected() {
    let fx = Fixture::new();
    let signed = sign(&launch(), LAUNCH_URL, KEY, SECRET, NOW, "n-10");
    let without = |name: &str| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(signed.fields().iter().filter(|(k, _)| k != name))
            .finish()
    };
    for name in [
        "oauth_signature",
        "oauth_nonce",
        "oauth_timestamp",
        "oauth_consumer_key",
        "oauth_signature_method",
    ] {
        expect_code_before_store(
            &fx,
            &without(name),
            "missing_oauth_parameter",
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    let dup = format!("{}&oauth_nonce=again", signed.form_body());
    expect_code_before_store(
        &fx,
        &dup,
        "duplicate_oauth_parameter",
        StatusCode::BAD_REQUEST,
    )
    .await;
    let plaintext = signed.form_body().replace("HMAC-SHA1", "PLAINTEXT");
    expect_code_before_store(
        &fx,
        &plaintext,
        "unsupported_signature_method",
        StatusCode::BAD_REQUEST,
    )
    .await;
    let version = signed
        .form_body()
        .replace("oauth_version=1.0", "oauth_version=2.0");
    expect_code_before_store(
        &fx,
        &version,
        "unsupported_oauth_version",
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(fx.consumers.lookups(), 0);
    assert_eq!(fx.nonces.len(), 0);
}

#[tokio::test]
async fn oversized_launch_body_is_rejected() {
    let fx = Fixture::new();
    let body = "a=".to_owned() + &"x".repeat(300 * 1024);
    expect_code(&fx, &body, "body_too_large", StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn instance_guid_is_recorded_on_first_launch() {
    let fx = Fixture::new();
    let req = launch().param("tool_consumer_instance_guid", "lms.example.edu");
    let l = verify_body(
        &fx,
        LAUNCH_URL,
        &sign(&req, LAUNCH_URL, KEY, SECRET, NOW, "n-g").form_body(),
    )
    .await
    .unwrap();
    assert_eq!(
        l.consumer().instance_guid.as_deref(),
        Some("lms.example.edu")
    );
}
