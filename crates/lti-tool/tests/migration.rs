//! LTI 1.1 → 1.3 migration: `oauth_consumer_key_sign` values computed by an
//! independent implementation (`tests/fixtures/lti-tool/lti1p1_sign.py`, Python
//! hmac/hashlib; outputs checked in) verify; wrong ones are rejected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lti_registry::Consumer;
use lti_tool::{oauth_consumer_key_sign, oauth_consumer_key_sign_base_string};
use serde_json::{Value, json};

const VECTORS: &str = include_str!("../../../tests/fixtures/lti-tool/migration/vectors.json");

fn vectors() -> Vec<Value> {
    serde_json::from_str(VECTORS).unwrap()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap()
}

#[test]
fn our_signature_equals_the_independent_one_for_every_vector() {
    for v in vectors() {
        let base = oauth_consumer_key_sign_base_string(
            s(&v, "consumer_key"),
            s(&v, "deployment_id"),
            s(&v, "issuer"),
            s(&v, "client_id"),
            v["exp"].as_i64().unwrap(),
            s(&v, "nonce"),
        );
        assert_eq!(base, s(&v, "base_string"), "{}", s(&v, "name"));
        assert_eq!(
            oauth_consumer_key_sign(s(&v, "secret"), &base),
            s(&v, "oauth_consumer_key_sign"),
            "{}",
            s(&v, "name")
        );
    }
}

/// Launches with an `lti1p1` claim whose nonce/exp match the vector (through
/// `Tool::verify_id_token` with a state carrying the vector's nonce, as an
/// application binding the state itself would).
async fn migrated_launch(h: &Harness, v: &Value, sign: &str) -> lti_tool::Launch {
    let state = h.state_with_nonce(s(v, "nonce"));
    let mut claims = h.claims(&state.nonce);
    claims.insert("exp".into(), v["exp"].clone());
    claims.insert(
        format!("{LTI}lti1p1"),
        json!({
            "user_id": "legacy-user-7",
            "oauth_consumer_key": s(v, "consumer_key"),
            "oauth_consumer_key_sign": sign,
            "resource_link_id": "legacy-rl-3",
            "context_id": "legacy-ctx-1"
        }),
    );
    let token = h.sign(&claims);
    let verified = h.tool.verify_id_token(&token, &state).await.unwrap();
    h.tool.save_verified(verified).await.unwrap()
}

async fn harness_with_consumers() -> Harness {
    let h = Harness::new().await;
    for v in vectors().iter().filter(|v| s(v, "issuer") == ISS) {
        let consumer = Consumer::new(s(v, "consumer_key"), s(v, "secret"), "legacy LMS", NOW);
        h.store.consumers.insert_consumer(&consumer).await.unwrap();
    }
    h
}

#[tokio::test]
async fn an_independently_computed_sign_verifies_and_exposes_the_1_1_ids() {
    let h = harness_with_consumers().await;
    for v in vectors().iter().filter(|v| s(v, "issuer") == ISS) {
        let launch = migrated_launch(&h, v, s(v, "oauth_consumer_key_sign")).await;
        let m = h.tool.verify_lti1p1(&launch).await.unwrap();
        assert_eq!(m.oauth_consumer_key, s(v, "consumer_key"));
        assert_eq!(m.user_id.as_deref(), Some("legacy-user-7"));
        assert_eq!(m.lti11_user_id(&launch), Some("legacy-user-7"));
        assert_eq!(m.resource_link_id.as_deref(), Some("legacy-rl-3"));
        assert_eq!(m.context_id.as_deref(), Some("legacy-ctx-1"));
        // It also verifies after the launch is loaded back from the store.
        let loaded = h.tool.load_launch(launch.launch_id()).await.unwrap();
        assert_eq!(h.tool.verify_lti1p1(&loaded).await.unwrap(), m);
    }
}

#[tokio::test]
async fn a_wrong_sign_is_rejected_without_rejecting_the_launch() {
    let h = harness_with_consumers().await;
    let v = &vectors()[1];
    // Signed with another secret.
    let wrong = oauth_consumer_key_sign("not-the-secret", s(v, "base_string"));
    let launch = migrated_launch(&h, v, &wrong).await;
    let err = expect_code(
        h.tool.verify_lti1p1(&launch).await,
        "lti1p1_signature_mismatch",
    );
    assert!(!err.to_string().contains("s3cr3t"));
    // The vector's sign for other values (here: another nonce) does not verify either.
    let mut other = v.clone();
    other["nonce"] = json!("migration-nonce-other");
    let launch = migrated_launch(&h, &other, s(v, "oauth_consumer_key_sign")).await;
    expect_code(
        h.tool.verify_lti1p1(&launch).await,
        "lti1p1_signature_mismatch",
    );
    // Not base64 at all.
    let mut third = v.clone();
    third["nonce"] = json!("migration-nonce-3");
    let launch = migrated_launch(&h, &third, "%%%not base64%%%").await;
    expect_code(
        h.tool.verify_lti1p1(&launch).await,
        "lti1p1_signature_mismatch",
    );
}

#[tokio::test]
async fn an_unknown_consumer_or_a_missing_claim_refuses_the_migration() {
    let h = Harness::new().await;
    let v = &vectors()[1];
    let launch = migrated_launch(&h, v, s(v, "oauth_consumer_key_sign")).await;
    expect_code(h.tool.verify_lti1p1(&launch).await, "unknown_consumer");
    let (plain, _) = h.launch_with(|_| {}).await.unwrap();
    expect_code(h.tool.verify_lti1p1(&plain).await, "missing_claim:lti1p1");
}
