//! The deep-linking return endpoint: every refusal with its specific error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lti_platform::{DeepLinkingOptions, LaunchSpec, PlatformError, PlatformUser};
use serde_json::{Value, json};

/// The `data` the platform sent in a deep-linking request with `options`.
fn request_data(f: &Fixture, options: DeepLinkingOptions) -> String {
    let spec = LaunchSpec::deep_linking(CLIENT_ID, DEPLOYMENT_ID, "u-1", options)
        .with_context("c-1", None, None);
    let claims = f
        .platform
        .id_token_claims(&registration(), &PlatformUser::new("u-1"), &spec, "n")
        .unwrap();
    claims.deep_linking_settings.unwrap().data.unwrap()
}

async fn verify(
    f: &Fixture,
    claims: &Value,
) -> Result<lti_platform::DeepLinkingReturn, PlatformError> {
    f.platform
        .verify_deep_linking_response(&assertion(&tool_key(), claims.clone()))
        .await
}

#[tokio::test]
async fn valid_response_is_handed_to_the_application() {
    let f = fixture();
    let data = request_data(&f, DeepLinkingOptions::default());
    let back = verify(&f, &response_claims(&data, "n1")).await.unwrap();
    assert_eq!(back.user_id, "u-1");
    assert_eq!(back.context_id.as_deref(), Some("c-1"));
    assert_eq!(back.content_items.len(), 1);
    assert_eq!(back.msg.as_deref(), Some("done"));
    let mut empty = response_claims(&data, "n2");
    empty[DL_ITEMS] = json!([]);
    assert!(
        verify(&f, &empty).await.unwrap().content_items.is_empty(),
        "an empty selection is valid"
    );
    let mut array_aud = response_claims(&data, "n3");
    array_aud["aud"] = json!([ISSUER]);
    assert!(verify(&f, &array_aud).await.is_ok());
}

#[tokio::test]
async fn response_signed_with_another_key_is_refused() {
    let f = fixture();
    let data = request_data(&f, DeepLinkingOptions::default());
    let jwt = assertion(
        &key(ATTACKER_PEM, "tool-key-1"),
        response_claims(&data, "n"),
    );
    let err = f
        .platform
        .verify_deep_linking_response(&jwt)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PlatformError::InvalidToolMessage {
                source: Some(lti_jose::Error::BadSignature),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn response_for_another_audience_is_refused() {
    let f = fixture();
    let data = request_data(&f, DeepLinkingOptions::default());
    let mut claims = response_claims(&data, "n");
    claims["aud"] = json!("https://other-lms.example");
    let err = verify(&f, &claims).await.unwrap_err();
    assert!(
        matches!(&err, PlatformError::InvalidToolMessage { reason, .. } if reason.contains("`aud`")),
        "{err:?}"
    );
}

#[tokio::test]
async fn replayed_nonce_is_refused() {
    let f = fixture();
    let data = request_data(&f, DeepLinkingOptions::default());
    verify(&f, &response_claims(&data, "same")).await.unwrap();
    let err = verify(&f, &response_claims(&data, "same"))
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::ReplayedNonce), "{err:?}");
    let mut no_nonce = response_claims(&data, "x");
    no_nonce.as_object_mut().unwrap().remove("nonce");
    let err = verify(&f, &no_nonce).await.unwrap_err();
    assert!(
        matches!(&err, PlatformError::InvalidToolMessage { reason, .. } if reason.contains("`nonce`")),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_deployment_is_refused() {
    let f = fixture();
    let data = request_data(&f, DeepLinkingOptions::default());
    let mut claims = response_claims(&data, "n");
    claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] = json!("dep-x");
    let err = verify(&f, &claims).await.unwrap_err();
    assert!(
        matches!(&err, PlatformError::UnknownDeployment { deployment_id, .. } if deployment_id == "dep-x"),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_message_type_or_version_is_refused() {
    let f = fixture();
    let data = request_data(&f, DeepLinkingOptions::default());
    let mut claims = response_claims(&data, "n");
    claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] =
        json!("LtiResourceLinkRequest");
    let err = verify(&f, &claims).await.unwrap_err();
    assert!(
        matches!(&err, PlatformError::InvalidToolMessage { reason, .. } if reason.contains("LtiDeepLinkingResponse")),
        "{err:?}"
    );
    let mut claims = response_claims(&data, "n");
    claims["https://purl.imsglobal.org/spec/lti/claim/version"] = json!("1.1");
    let err = verify(&f, &claims).await.unwrap_err();
    assert!(
        matches!(&err, PlatformError::InvalidToolMessage { reason, .. } if reason.contains("1.3.0")),
        "{err:?}"
    );
}

#[tokio::test]
async fn missing_or_altered_data_is_refused() {
    let f = fixture();
    let data = request_data(&f, DeepLinkingOptions::default());
    let mut claims = response_claims(&data, "n");
    claims.as_object_mut().unwrap().remove(DL_DATA);
    let err = verify(&f, &claims).await.unwrap_err();
    assert!(
        matches!(&err, PlatformError::InvalidToolMessage { reason, .. } if reason.contains("found none")),
        "{err:?}"
    );
    let mut claims = response_claims(&data, "n");
    claims[DL_DATA] = json!(format!("{data}x"));
    let err = verify(&f, &claims).await.unwrap_err();
    assert!(
        matches!(&err, PlatformError::InvalidToolMessage { reason, .. } if reason.contains("unchanged")),
        "{err:?}"
    );
}

#[tokio::test]
async fn expired_response_is_refused() {
    let f = fixture();
    let data = request_data(&f, DeepLinkingOptions::default());
    let jwt = assertion(&tool_key(), response_claims(&data, "n"));
    f.clock.advance(400);
    let err = f
        .platform
        .verify_deep_linking_response(&jwt)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            PlatformError::InvalidToolMessage {
                source: Some(lti_jose::Error::TokenExpired { .. }),
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_issuer_is_unknown_client() {
    let f = fixture();
    let data = request_data(&f, DeepLinkingOptions::default());
    let mut claims = response_claims(&data, "n");
    claims["iss"] = json!("someone");
    let err = verify(&f, &claims).await.unwrap_err();
    assert!(
        matches!(err, PlatformError::UnknownClient { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn items_outside_the_settings_are_refused() {
    let f = fixture();
    let single = DeepLinkingOptions {
        accept_multiple: false,
        ..DeepLinkingOptions::default()
    };
    let data = request_data(&f, single);
    let mut two = response_claims(&data, "n1");
    two[DL_ITEMS] = json!([{"type": "ltiResourceLink", "title": "A"}, {"type": "ltiResourceLink", "title": "B"}]);
    let err = verify(&f, &two).await.unwrap_err();
    assert!(
        matches!(err, PlatformError::ContentItemRefused { .. }),
        "{err:?}"
    );
    let data = request_data(&f, DeepLinkingOptions::default());
    let mut html = response_claims(&data, "n2");
    html[DL_ITEMS] = json!([{"type": "html", "html": "<p>x</p>"}]);
    let err = verify(&f, &html).await.unwrap_err();
    assert!(
        matches!(&err, PlatformError::ContentItemRefused { reason } if reason.contains("item 0")),
        "{err:?}"
    );
    let mut bogus = response_claims(&data, "n3");
    bogus[DL_ITEMS] = json!([{"type": "hologram"}]);
    let err = verify(&f, &bogus).await.unwrap_err();
    assert!(
        matches!(err, PlatformError::ContentItemRefused { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn return_endpoint_reads_the_jwt_form_field() {
    let f = fixture();
    let err = f
        .platform
        .deep_link_return(&form_post("/dl", &[("jwt", "x")]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PlatformError::MissingParameter { name: "JWT" }),
        "{err:?}"
    );
    let err = f
        .platform
        .deep_link_return(&form_post("/dl", &[("JWT", "not.a.jwt")]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PlatformError::InvalidToolMessage { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn items_with_script_or_relative_urls_are_refused() {
    // The platform shows these URLs as links, images and frames of its own pages:
    // a `javascript:` link from a tool would run in the platform's origin.
    let f = fixture();
    let data = request_data(&f, DeepLinkingOptions::default());
    for (n, (item, what)) in [
        (
            json!({"type": "ltiResourceLink", "title": "A", "url": "javascript:alert(document.cookie)"}),
            "ltiResourceLink.url",
        ),
        (
            json!({"type": "ltiResourceLink", "title": "A", "url": "https://tool.example.com/a", "icon": {"url": "data:image/svg+xml,<svg onload=alert(1)>"}}),
            "ltiResourceLink.icon.url",
        ),
        (
            json!({"type": "ltiResourceLink", "title": "A", "url": "/a"}),
            "ltiResourceLink.url",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let mut claims = response_claims(&data, &format!("n{n}"));
        claims[DL_ITEMS] = json!([item]);
        let err = verify(&f, &claims).await.unwrap_err();
        assert_eq!(err.code(), "content_item_refused", "{err:?}");
        assert!(
            matches!(&err, PlatformError::ContentItemRefused { reason } if reason.contains("item 0") && reason.contains(what) && reason.contains("absolute http(s) URL")),
            "{err:?}"
        );
    }
}
