//! The egress policy of `lti serve` over real HTTP: service and outcome URLs
//! from launches must be on the platform's origins or `[egress]
//! allowed_origins`, and loopback addresses need `allow_private_addresses`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;

const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";

/// The stand-in platform's own server under another origin.
fn elsewhere(platform: &Platform) -> String {
    platform.base.replacen("127.0.0.1", "localhost", 1)
}

#[tokio::test]
async fn service_urls_on_another_origin_are_refused_and_named_in_the_panels() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let login = login(&tool, &platform).await;
    let mut claims = claims(&tool, &platform, &login.nonce, INSTRUCTOR);
    let other = elsewhere(&platform);
    claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]["lineitems"] =
        Value::from(format!("{other}/ags/lineitems"));
    claims["https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"]["context_memberships_url"] =
        Value::from(format!("{other}/nrps"));
    let token = lti_jose::sign(&claims, platform_key()).unwrap();
    let resp = post_launch(&tool, &login, &token, None).await;
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let id = param(
        resp.headers()[http::header::LOCATION].to_str().unwrap(),
        "lti_launch_id",
    )
    .unwrap();
    for panel in ["ags", "nrps"] {
        let page = get(
            &format!("{}/lti/app/{panel}?lti_launch_id={id}", tool.url),
            None,
        )
        .await;
        let page = text(&page);
        assert!(page.contains("<code>egress_refused</code>"), "{page}");
        assert!(
            page.contains(&format!("found one on {other}")),
            "the refused origin is named: {page}"
        );
    }
    assert!(platform.scores.lock().unwrap().is_empty());
    tool.stop().await.unwrap();
}

/// An instructor's LTI 1.1 launch with `service_url`; returns the outcome
/// form's action.
async fn lti11_outcome_form(tool: &Tool, service_url: String) -> String {
    let url = format!("{}/lti11/launch", tool.url);
    let signed = lti11::LaunchRequest::new("rl-egress")
        .param("user_id", "u-egress")
        .roles(&["Instructor"])
        .context("ctx-egress", "Egress")
        .outcomes(service_url, "sourced-egress")
        .sign(
            &url,
            &lti11::Credentials::new("consumer-1", "secret-1"),
            now(),
        )
        .unwrap();
    let resp = lti11_launch(&url, signed.form_body()).await;
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    text(&resp)
        .split("<form id=\"outcomes\" method=\"post\" action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

#[tokio::test]
async fn lti11_outcome_urls_off_the_allowed_origins_are_refused_with_502() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let action = lti11_outcome_form(&tool, format!("{}/outcomes", elsewhere(&platform))).await;
    let refused = post_form(
        &format!("{}{action}", tool.url),
        "score=0.4",
        Some("application/json"),
    )
    .await;
    assert_eq!(refused.status(), 502, "{}", text(&refused));
    let body: Value = serde_json::from_slice(refused.body()).unwrap();
    assert_eq!(body["error"], "egress_refused", "{body}");
    assert!(platform.outcomes.lock().unwrap().is_empty());
    // The configured origin (`[egress] allowed_origins`) is admitted.
    let action = lti11_outcome_form(&tool, format!("{}/outcomes", platform.base)).await;
    let sent = post_form(&format!("{}{action}", tool.url), "score=0.4", None).await;
    assert_eq!(sent.status(), 200, "{}", text(&sent));
    // Queued in the grade outbox; the worker delivers it.
    for _ in 0..500 {
        if !platform.outcomes.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        platform.outcomes.lock().unwrap().clone(),
        [("sourced-egress".to_owned(), 0.4)]
    );
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn without_the_private_address_opt_in_a_loopback_platform_is_not_contacted() {
    let platform = start_platform().await;
    let tool = start_tool_with(&platform, |text| {
        text.replace("allow_private_addresses = true", "")
    })
    .await;
    let login = login(&tool, &platform).await;
    let token = lti_jose::sign(
        &claims(&tool, &platform, &login.nonce, INSTRUCTOR),
        platform_key(),
    )
    .unwrap();
    // The platform's JWKS is on loopback: the key fetch is refused.
    let resp = post_launch(&tool, &login, &token, Some("application/json")).await;
    assert_eq!(resp.status(), 502, "{}", text(&resp));
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["error"], "jwks_unavailable", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("found only loopback addresses (allow_private_addresses is off)"),
        "{message}"
    );
    tool.stop().await.unwrap();
}
