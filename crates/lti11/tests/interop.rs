#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Interoperability with independent implementations (oauthlib and the PyPI
//! `lti` package), both directions. Fixtures: tests/fixtures/lti11/.

mod common;

use std::sync::Arc;

use common::memory_store;
use lti_registry::ManualClock;
use lti11::oauth::OAuthParams;
use lti11::{
    Credentials, LaunchRequest, LaunchVerifier, OAuthVerifier, Operation, OutcomeRequest,
    PseudonymKey, ResultData, SignatureMethod, SignedRequest, UserIdPolicy,
    parse_custom_parameters,
};
use serde::Deserialize;

const PYTHON_CASES: &str = include_str!("../../../tests/fixtures/lti11/launches_python.json");
const OURS: &str = include_str!("../../../tests/fixtures/lti11/ours_launches.json");
const VERDICTS: &str = include_str!("../../../tests/fixtures/lti11/ours_verdicts.json");

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(Deserialize, Clone)]
struct Case {
    name: String,
    kind: String,
    consumer_key: String,
    secret: String,
    timestamp: i64,
    url: String,
    content_type: String,
    authorization: Option<String>,
    body: String,
    operation: Option<String>,
}

fn verifier_for(case: &Case) -> OAuthVerifier {
    let clock = ManualClock::new(case.timestamp);
    let store = memory_store(
        Arc::new(clock.clone()),
        &[(&case.consumer_key, &case.secret)],
    );
    OAuthVerifier::new(store.clone(), store).with_clock(Arc::new(clock))
}

fn request(case: &Case) -> SignedRequest<'_> {
    SignedRequest {
        method: "POST",
        url: &case.url,
        authorization: case.authorization.as_deref(),
        content_type: Some(&case.content_type),
        body: case.body.as_bytes(),
    }
}

#[tokio::test]
async fn launches_and_outcome_requests_signed_by_python_verify() {
    let cases: Cases = serde_json::from_str(PYTHON_CASES).unwrap();
    assert!(cases.cases.len() >= 9, "fixture file lost cases");
    assert!(
        cases
            .cases
            .iter()
            .any(|c| c.name == "lti_package_tool_consumer")
    );
    for case in &cases.cases {
        let verifier = verifier_for(case);
        match case.kind.as_str() {
            "launch" => {
                let launch = LaunchVerifier::new(verifier)
                    .verify(&request(case))
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
                assert_eq!(launch.resource_link_id(), "rl-py-1", "{}", case.name);
                assert_eq!(launch.user_id(), Some("py user 1"), "{}", case.name);
                let target = launch.outcome_target().unwrap();
                assert_eq!(target.sourced_id, "sid:py/1");
                match case.name.as_str() {
                    "oauthlib_non_ascii_custom" => {
                        let custom = launch.params().custom_parameters();
                        assert_eq!(custom.get("name"), Some(&"Zoë Ådne 日本語 ✓"));
                        assert_eq!(custom.get("emoji"), Some(&"🎓 + & = %"));
                    }
                    "lti_package_tool_consumer" => {
                        assert_eq!(
                            launch.params().custom_parameters().get("greeting"),
                            Some(&"Grüße, 世界")
                        );
                    }
                    _ => {}
                }
            }
            "outcome" => {
                verifier
                    .verify(&request(case))
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", case.name));
                let parsed = OutcomeRequest::parse(case.body.as_bytes()).unwrap();
                assert_eq!(parsed.sourced_id, "sid:py/1");
                assert_eq!(parsed.message_identifier, format!("msg-{}", case.name));
                match (case.operation.as_deref().unwrap(), &parsed.operation) {
                    ("replaceResult", Operation::ReplaceResult { score, result_data }) => {
                        assert_eq!(score.value(), 0.92);
                        assert_eq!(result_data, &Some(ResultData::Text("Gut gemacht ✓".into())));
                    }
                    ("readResult", Operation::ReadResult)
                    | ("deleteResult", Operation::DeleteResult) => {}
                    (op, parsed) => panic!("{}: {op} parsed as {parsed:?}", case.name),
                }
            }
            other => panic!("unknown case kind {other}"),
        }
    }
}

#[tokio::test]
async fn tampered_python_fixtures_are_rejected_with_the_right_code() {
    let cases: Cases = serde_json::from_str(PYTHON_CASES).unwrap();
    for case in &cases.cases {
        let mut tampered = case.clone();
        tampered.body = case.body.replacen("py", "pY", 1);
        assert_ne!(tampered.body, case.body);
        let err = verifier_for(&tampered)
            .verify(&request(&tampered))
            .await
            .unwrap_err();
        let expected = if case.kind == "outcome" {
            "body_hash_mismatch"
        } else {
            "bad_signature"
        };
        assert_eq!(err.code(), expected, "{}", case.name);
    }
}

const OUR_URL: &str = "https://tool.example.com/lti/launch";
const OUR_KEY: &str = "rust-key";
const OUR_SECRET: &str = "rust-secret-ß";
const OUR_TS: u64 = 1_700_000_000;

/// Launches signed by our consumer side, deterministic (fixed nonces and timestamp).
fn our_launches() -> serde_json::Value {
    let creds = Credentials::new(OUR_KEY, OUR_SECRET);
    let policy = UserIdPolicy::Pseudonymous(PseudonymKey::new(&[42u8; 32]).unwrap());
    let custom =
        parse_custom_parameters("Chapter=3/4\nGreeting = Grüße, 世界 ✓\nmath=a+b=c&d").unwrap();
    let base = || {
        LaunchRequest::new("rl-rust-1")
            .user(&policy, "learner-17", "quiz-tool")
            .roles(&["Learner"])
            .context("ctx-rust", "Rust 101")
            .outcomes("https://lms.example/outcomes", "sid-rust-1")
    };
    let cases: Vec<(&str, String, LaunchRequest, SignatureMethod)> = vec![
        (
            "ours_sha1",
            OUR_URL.to_owned(),
            base(),
            SignatureMethod::HmacSha1,
        ),
        (
            "ours_non_ascii_custom",
            OUR_URL.to_owned(),
            base().custom(&custom),
            SignatureMethod::HmacSha1,
        ),
        (
            "ours_query_repeated",
            format!("{OUR_URL}?course=7&course=8&q=a%20b"),
            base(),
            SignatureMethod::HmacSha1,
        ),
        (
            "ours_sha256",
            "https://Tool.Example.com:443/lti/launch".to_owned(),
            base(),
            SignatureMethod::HmacSha256,
        ),
    ];
    let out: Vec<serde_json::Value> = cases
        .into_iter()
        .map(|(name, url, req, method)| {
            let p = OAuthParams {
                method,
                nonce: format!("nonce-{name}"),
                timestamp: OUR_TS,
                callback: Some("about:blank".into()),
                body_hash: None,
            };
            let signed = req.sign_with(&url, &creds, &p).unwrap();
            let sig = signed.fields().iter().find(|(k, _)| k == "oauth_signature").unwrap().1.clone();
            serde_json::json!({
                "name": name, "url": url, "secret": OUR_SECRET, "body": signed.form_body(), "oauth_signature": sig,
            })
        })
        .collect();
    serde_json::json!({ "cases": out })
}

#[test]
fn checked_in_launches_are_what_our_signer_produces() {
    let ours = our_launches();
    if std::env::var_os("LTI11_WRITE_FIXTURES").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/lti11/ours_launches.json"
        );
        std::fs::write(path, serde_json::to_string_pretty(&ours).unwrap() + "\n").unwrap();
        return;
    }
    let checked_in: serde_json::Value = serde_json::from_str(OURS).unwrap();
    assert_eq!(
        ours, checked_in,
        "re-run the fixture generator (tests/fixtures/lti11/README.md)"
    );
}

#[tokio::test]
async fn oauthlib_accepted_every_launch_our_consumer_signed() {
    let checked_in: serde_json::Value = serde_json::from_str(OURS).unwrap();
    let verdicts: serde_json::Value = serde_json::from_str(VERDICTS).unwrap();
    let cases = checked_in["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let v = &verdicts["verdicts"][name];
        assert_eq!(
            v["oauth_signature"], case["oauth_signature"],
            "{name}: verdict is for another signature"
        );
        assert_eq!(v["valid"], true, "{name}: oauthlib rejected our launch");
        assert_eq!(v["valid_with_wrong_secret"], false, "{name}");
        // And our own verifier agrees.
        let c = Case {
            name: name.to_owned(),
            kind: "launch".into(),
            consumer_key: OUR_KEY.into(),
            secret: OUR_SECRET.into(),
            timestamp: OUR_TS as i64,
            url: case["url"].as_str().unwrap().to_owned(),
            content_type: "application/x-www-form-urlencoded".into(),
            authorization: None,
            body: case["body"].as_str().unwrap().to_owned(),
            operation: None,
        };
        LaunchVerifier::new(verifier_for(&c))
            .verify(&request(&c))
            .await
            .unwrap();
    }
}

const NODE_CASES: &str = include_str!("../../../tests/fixtures/lti11/launches_node.json");
const NODE_VERDICTS: &str = include_str!("../../../tests/fixtures/lti11/ours_verdicts_node.json");

#[tokio::test]
async fn launches_signed_by_ims_lti_verify() {
    let cases: Cases = serde_json::from_str(NODE_CASES).unwrap();
    assert_eq!(cases.cases.len(), 3);
    for case in &cases.cases {
        let launch = LaunchVerifier::new(verifier_for(case))
            .verify(&request(case))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(launch.resource_link_id(), "rl-node-1");
        assert_eq!(launch.user_id(), Some("node user 1"));
        if case.name == "ims_lti_non_ascii_custom" {
            let custom = launch.params().custom_parameters();
            assert_eq!(custom.get("name"), Some(&"Zoë Ådne 日本語 ✓"));
            assert_eq!(custom.get("symbols"), Some(&"it's (a) *test* !"));
        }
        let mut tampered = case.clone();
        tampered.body = case.body.replacen("node", "nodE", 1);
        let err = verifier_for(&tampered)
            .verify(&request(&tampered))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "bad_signature", "{}", case.name);
    }
}

#[test]
fn ims_lti_accepted_every_hmac_sha1_launch_our_consumer_signed() {
    let checked_in: serde_json::Value = serde_json::from_str(OURS).unwrap();
    let verdicts: serde_json::Value = serde_json::from_str(NODE_VERDICTS).unwrap();
    let mut checked = 0;
    for case in checked_in["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let v = &verdicts["verdicts"][name];
        if name == "ours_sha256" {
            assert!(v["skipped"].is_string(), "ims-lti has no HMAC-SHA256");
            continue;
        }
        assert_eq!(
            v["oauth_signature"], case["oauth_signature"],
            "{name}: verdict is for another signature"
        );
        assert_eq!(v["valid"], true, "{name}: ims-lti rejected our launch");
        checked += 1;
    }
    assert_eq!(checked, 3);
}
