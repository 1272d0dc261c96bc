//! Cross-checks the client assertion with an independent implementation.
//!
//! `tests/fixtures/lti-http/assertions.json` holds assertions produced by
//! this crate (regenerate with `LTI_HTTP_WRITE_ASSERTIONS=1 cargo test -p
//! lti-http --test assertion_fixture`); `verify_assertion.py` verifies them
//! with PyJWT and writes `verdicts.json`. This test proves that the current
//! code still produces exactly the checked-in assertions (RS256 is
//! deterministic) and that PyJWT accepted the genuine ones and refused the
//! tampered one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use lti_http::{TokenEndpointConfig, client_assertion};
use lti_jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

const TOOL_KEY: &str = include_str!("../../../tests/fixtures/lti-http/tool-key.pem");
const ASSERTIONS: &str = include_str!("../../../tests/fixtures/lti-http/assertions.json");
const VERDICTS: &str = include_str!("../../../tests/fixtures/lti-http/verdicts.json");

fn key() -> Arc<SigningKey> {
    Arc::new(
        SigningKey::from_pem(TOOL_KEY, Algorithm::RS256)
            .unwrap()
            .with_kid("tool-kid"),
    )
}

/// (name, client_id, token_url, audience override, iat, jti)
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    u64,
    &'static str,
);

const CASES: &[Case] = &[
    (
        "token-url-audience",
        "tool-client-1",
        "https://lms.example.edu/login/oauth2/token",
        None,
        1_767_225_600,
        "Zm9yLWZpeHR1cmUtb25seQ",
    ),
    (
        "audience-override",
        "d2l-client-7",
        "https://auth.brightspace.com/core/connect/token",
        Some("https://api.brightspace.com/auth/token"),
        1_767_229_200,
        "c2Vjb25kLWZpeHR1cmU",
    ),
];

fn config(client_id: &str, token_url: &str, audience: Option<&str>) -> TokenEndpointConfig {
    let c = TokenEndpointConfig::new(client_id, token_url, key());
    match audience {
        Some(a) => c.with_audience(a),
        None => c,
    }
}

fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Replaces the payload of `token` (keeping header and signature).
fn tamper(token: &str) -> String {
    let mut parts: Vec<&str> = token.split('.').collect();
    let payload = lti_jose::b64::decode(parts[1]).unwrap();
    let mut claims: Value = serde_json::from_slice(&payload).unwrap();
    claims["iss"] = json!("attacker");
    let forged = lti_jose::b64::encode(serde_json::to_vec(&claims).unwrap().as_slice());
    parts[1] = &forged;
    parts.join(".")
}

#[test]
fn write_assertions_when_asked() {
    if std::env::var("LTI_HTTP_WRITE_ASSERTIONS").as_deref() != Ok("1") {
        eprintln!("skipped: set LTI_HTTP_WRITE_ASSERTIONS=1 to regenerate assertions.json");
        return;
    }
    let mut cases = Vec::new();
    for (name, client_id, token_url, audience, iat, jti) in CASES {
        let cfg = config(client_id, token_url, *audience);
        let token = client_assertion(&cfg, *iat, jti).unwrap();
        cases.push(json!({
            "name": name, "client_id": client_id, "token_url": token_url, "audience": audience,
            "expected_aud": cfg.assertion_audience(), "iat": iat, "jti": jti, "token": token, "expect": "valid",
        }));
    }
    let genuine = cases[0]["token"].as_str().unwrap().to_owned();
    let mut forged = cases[0].clone();
    forged["name"] = json!("tampered-payload");
    forged["token"] = json!(tamper(&genuine));
    forged["expect"] = json!("invalid");
    cases.push(forged);
    let doc = json!({
        "generator": "crates/lti-http/tests/assertion_fixture.rs (LTI_HTTP_WRITE_ASSERTIONS=1)",
        "public_jwk": key().public_jwk(),
        "cases": cases,
    });
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/lti-http/assertions.json"
    );
    std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
}

#[test]
fn checked_in_assertions_are_what_the_code_produces() {
    let doc: Value = serde_json::from_str(ASSERTIONS).unwrap();
    assert_eq!(
        doc["public_jwk"],
        serde_json::to_value(key().public_jwk()).unwrap()
    );
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), CASES.len() + 1);
    for (name, client_id, token_url, audience, iat, jti) in CASES {
        let case = cases.iter().find(|c| c["name"] == *name).unwrap();
        let produced =
            client_assertion(&config(client_id, token_url, *audience), *iat, jti).unwrap();
        assert_eq!(case["token"].as_str().unwrap(), produced, "{name}");
        assert_eq!(case["expect"], "valid");
    }
    let forged = cases
        .iter()
        .find(|c| c["name"] == "tampered-payload")
        .unwrap();
    assert_eq!(forged["expect"], "invalid");
    assert_eq!(
        forged["token"].as_str().unwrap(),
        tamper(cases[0]["token"].as_str().unwrap())
    );
}

#[test]
fn pyjwt_accepted_our_assertions_and_refused_the_forgery() {
    let doc: Value = serde_json::from_str(ASSERTIONS).unwrap();
    let verdicts: Value = serde_json::from_str(VERDICTS).unwrap();
    assert!(verdicts["verifier"].as_str().unwrap().starts_with("PyJWT "));
    let results = verdicts["results"].as_array().unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(results.len(), cases.len());
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let r = results
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no verdict for {name}"));
        assert_eq!(
            r["token_sha256"].as_str().unwrap(),
            sha256_hex(case["token"].as_str().unwrap()),
            "{name}: verdict is for another token"
        );
        let verdict = r["verdict"].as_str().unwrap();
        match case["expect"].as_str().unwrap() {
            "valid" => assert_eq!(verdict, "valid", "{name}"),
            _ => assert!(verdict.starts_with("invalid"), "{name}: {verdict}"),
        }
    }
}
