//! Independent check of minted id_tokens: PyJWT verified the checked-in tokens against
//! the platform JWKS (`tests/fixtures/lti-platform/verify_id_token.py`); its verdicts
//! must match this crate's verification, token for token.
//!
//! The deep-linking token's `data` is encrypted under a fresh random nonce, so that
//! token is compared claim by claim with `data` set aside (it must still be a sealed
//! deep-linking value); every other token is compared byte for byte.
//!
//! Regenerate the tokens with
//! `LTI_PLATFORM_ID_TOKEN_OUT=$PWD/tests/fixtures/lti-platform/id_tokens.json cargo test -p lti-platform --test pyjwt_cross_check checked_in`
//! and then run the Python script (see the fixture README).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use lti_platform::{DeepLinkingOptions, LaunchSpec, PlatformUser};
use serde_json::{Value, json};

const TOKENS: &str = include_str!("../../../tests/fixtures/lti-platform/id_tokens.json");
const VERDICTS: &str = include_str!("../../../tests/fixtures/lti-platform/verdicts.json");

fn mint_all() -> Value {
    let f = fixture();
    let tool = registration();
    let user = PlatformUser::new("u-1")
        .with_name("Ada", "Lovelace")
        .with_email("ada@example.edu");
    let learner = ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"];
    let specs = [
        (
            "resource_link",
            LaunchSpec::resource_link(CLIENT_ID, DEPLOYMENT_ID, "u-1", "rl-1")
                .with_roles(learner)
                .with_context("c-1", Some("C1"), Some("Course"))
                .with_custom("uid", "$User.id"),
        ),
        (
            "deep_linking",
            LaunchSpec::deep_linking(
                CLIENT_ID,
                DEPLOYMENT_ID,
                "u-1",
                DeepLinkingOptions::default(),
            )
            .with_roles(learner),
        ),
        (
            "submission_review",
            LaunchSpec::submission_review(CLIENT_ID, DEPLOYMENT_ID, "u-1", "rl-1", "u-2")
                .with_context("c-1", None, None)
                .with_line_item("1"),
        ),
    ];
    let mut tokens = Vec::new();
    for (name, spec) in &specs {
        let token = f
            .platform
            .mint_id_token(&tool, &user, spec, "nonce-1")
            .unwrap();
        tokens.push(json!({"name": name, "token": token}));
    }
    let good = tokens[0]["token"].as_str().unwrap().to_owned();
    let mut bad_sig = good.clone().into_bytes();
    let last = bad_sig.len() - 5;
    bad_sig[last] = if bad_sig[last] == b'A' { b'B' } else { b'A' };
    tokens.push(json!({"name": "bad_signature", "token": String::from_utf8(bad_sig).unwrap()}));
    let (_, claims): (lti_jose::Header, Value) =
        lti_jose::dangerous::decode_unverified(&good).unwrap();
    tokens.push(json!({"name": "foreign_key_same_kid", "token": lti_jose::sign(&claims, &key(ATTACKER_PEM, "platform-key-1")).unwrap()}));
    tokens.push(json!({"name": "unknown_kid", "token": lti_jose::sign(&claims, &key(ATTACKER_PEM, "who-knows")).unwrap()}));
    json!({
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "jwks": f.platform.keys().jwks(),
        "tokens": tokens,
    })
}

#[test]
fn checked_in_tokens_are_what_the_platform_mints_today() {
    if let Ok(path) = std::env::var("LTI_PLATFORM_ID_TOKEN_OUT") {
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&mint_all()).unwrap() + "\n",
        )
        .unwrap();
        println!("wrote id_tokens to {path}; now run verify_id_token.py and rebuild");
        return;
    }
    let fixture: Value = serde_json::from_str(TOKENS).unwrap();
    assert_eq!(
        comparable(fixture),
        comparable(mint_all()),
        "minting changed: regenerate the fixture and re-run the PyJWT script"
    );
}

/// `minted` with each token that carries deep-linking `data` replaced by its header
/// and claims, `data` masked once checked to be a sealed deep-linking value.
fn comparable(mut minted: Value) -> Value {
    for t in minted["tokens"].as_array_mut().unwrap() {
        let token = t["token"].as_str().unwrap();
        let Ok((header, mut claims)) = lti_jose::dangerous::decode_unverified::<Value>(token)
        else {
            continue;
        };
        let settings =
            &mut claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"];
        if let Some(data) = settings.get_mut("data") {
            assert!(data.as_str().unwrap().starts_with("lti-dl."), "{data}");
            *data = json!("<sealed under a fresh nonce>");
            t["token"] = json!({"header": header, "claims": claims});
        }
    }
    minted
}

#[tokio::test]
async fn rust_verdicts_match_pyjwt_verdicts() {
    let fixture: Value = serde_json::from_str(TOKENS).unwrap();
    let verdicts: Value = serde_json::from_str(VERDICTS).unwrap();
    let jwks =
        lti_jose::JwkSet::from_slice(serde_json::to_string(&fixture["jwks"]).unwrap().as_bytes())
            .unwrap();
    let verifier = lti_jose::Verifier::new(&[lti_jose::Algorithm::RS256]).unwrap();
    let mut valid = Vec::new();
    for t in fixture["tokens"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let ours = verifier
            .verify_with_source::<Value>(t["token"].as_str().unwrap(), &jwks, "")
            .await;
        let theirs = verdicts[name]
            .as_str()
            .unwrap_or_else(|| panic!("no PyJWT verdict for {name}"));
        assert_eq!(
            ours.is_ok(),
            theirs == "valid",
            "{name}: lti-jose says {ours:?}, PyJWT says {theirs}"
        );
        if let Ok(claims) = ours {
            assert_eq!(claims["iss"], ISSUER);
            valid.push(name);
        }
    }
    assert_eq!(
        valid,
        ["resource_link", "deep_linking", "submission_review"]
    );
}
