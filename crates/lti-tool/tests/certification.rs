//! The LTI 1.3 certification corpus (lti-message's copy under
//! `tests/fixtures/lti-message/certification`, see its README) driven through
//! login → launch with a platform key of the test's own: every valid case is
//! accepted, every invalid case is rejected with the expected error code.
//!
//! As the corpus README says, each payload gets this test's `nonce` (issued by the
//! login) and `exp` = now + 1 day, `iat` = now − 1 day unless `keep.json` keeps
//! them; the registration under test uses the corpus' own issuer, client id and
//! deployment id. Because the payloads' `iat` is a day old, this tool is built with
//! a 2-day maximum token age (the default is 5 minutes). The tool also checks the
//! `target_link_uri` claim against the login's (LTI Core), so the claim is set to
//! the tool URL the login used (three valid payloads carry `packback.co`, which is
//! not a URL of the tool under test). A `header.json` is used as the JWS header
//! verbatim.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{Login, get, sign_raw, static_keys};
use lti_jose::{Algorithm, SigningKey};
use lti_registry::{
    Deployment, KeySource as RegistrationKeys, ManualClock, PlatformRegistration, SecretCipher,
    Store,
};
use lti_store::MemoryStore;
use lti_tool::Tool;
use serde_json::{Value, json};

const ISS: &str = "https://ltiadvantagevalidator.imsglobal.org";
const CLIENT_ID: &str = "imstester_3dfad6d";
const DEPLOYMENT: &str = "testdeploy";
const TARGET: &str = "http://localhost:8080/";
const NOW: i64 = 1_900_000_000;
const DAY: i64 = 86_400;

/// Expected code for every invalid folder.
const INVALID: &[(&str, &str)] = &[
    ("Correct KID Required in Header", "missing_kid"),
    ("Exp and Iat Fields invalid", "token_expired"),
    ("Incorrect KID passed in JWT Header", "unknown_kid"),
    ("JWT Passed is Not LTI 1.3 JWT", "malformed_token"),
    ("LTI version passed is not 1.3", "invalid_version"),
    (
        "Launch With Missing resource_link_id",
        "missing_claim:resource_link.id",
    ),
    ("No LTI Version Passed in JWT", "missing_claim:version"),
    (
        "One or more JWT fields missing",
        "missing_claim:message_type",
    ),
    ("deployment_id Claim Missing", "missing_claim:deployment_id"),
    ("message_type Claim Missing", "missing_claim:message_type"),
    ("role Claim Missing", "missing_claim:roles"),
    ("user Claim Missing", "empty_sub"),
];

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/lti-message/certification")
}

fn folders(kind: &str) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(corpus().join(kind))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), e.path())
        })
        .collect();
    out.sort();
    out
}

fn read_json(path: &Path) -> Option<Value> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| serde_json::from_str(&s).unwrap())
}

async fn tool(clock: &ManualClock, key: &SigningKey) -> Tool {
    let store = Store::from_backend(Arc::new(MemoryStore::new(
        SecretCipher::insecure_plaintext_for_tests(),
        Arc::new(clock.clone()),
    )));
    let registration = PlatformRegistration::new(
        ISS,
        CLIENT_ID,
        "https://ltiadvantagevalidator.imsglobal.org/ltitool/oidcauthurl.html",
        "https://ltiadvantagevalidator.imsglobal.org/ltitool/authcodejwt.html",
        RegistrationKeys::JwksUrl {
            url: "https://oauth2server.imsglobal.org/jwks".into(),
        },
    )
    .with_deployment(Deployment::active(DEPLOYMENT));
    store
        .registrations
        .insert_registration(&registration)
        .await
        .unwrap();
    Tool::builder(TARGET, &store)
        .clock(Arc::new(clock.clone()))
        .key_source(static_keys(&[key]))
        .max_token_age(Duration::from_secs(2 * DAY as u64))
        .build()
        .unwrap()
}

/// Logs in, prepares the folder's payload as the corpus README says, signs and launches.
async fn run_case(dir: &Path) -> Result<lti_tool::Launch, lti_tool::ToolError> {
    let clock = ManualClock::new(NOW);
    let key = SigningKey::from_pem(common::PLATFORM_1_PEM, Algorithm::RS256)
        .unwrap()
        .with_kid("cert-platform-key");
    let tool = tool(&clock, &key).await;
    let resp = tool
        .login(&get(
            "/lti/login",
            &[
                ("iss", ISS),
                ("login_hint", "cert-user"),
                ("target_link_uri", TARGET),
                ("client_id", CLIENT_ID),
            ],
        ))
        .await
        .unwrap();
    let login = Login::from_response(&resp);

    let mut payload = read_json(&dir.join("payload.json")).unwrap();
    let keep: Vec<String> = read_json(&dir.join("keep.json"))
        .map(|v| serde_json::from_value(v).unwrap())
        .unwrap_or_default();
    let obj = payload.as_object_mut().unwrap();
    if obj.contains_key("iss") {
        obj.insert("iss".into(), json!(ISS));
        obj.insert("aud".into(), json!(CLIENT_ID));
        obj.insert("nonce".into(), json!(login.nonce));
        let tlu = format!("{}target_link_uri", common::LTI);
        if obj.contains_key(&tlu) {
            obj.insert(tlu, json!(TARGET));
        }
    }
    if !keep.iter().any(|k| k == "exp") {
        obj.insert("exp".into(), json!(NOW + DAY));
    }
    if !keep.iter().any(|k| k == "iat") {
        obj.insert("iat".into(), json!(NOW - DAY));
    }
    let header = read_json(&dir.join("header.json"))
        .unwrap_or_else(|| json!({"alg": "RS256", "kid": "cert-platform-key"}));
    let token = sign_raw(&header, &payload, &key);
    tool.launch(&login.post(&token))
        .await
        .map(|(launch, _)| launch)
}

#[tokio::test]
async fn every_valid_certification_case_is_accepted() {
    let valid = folders("valid");
    assert_eq!(valid.len(), 22, "the corpus has 22 valid cases");
    for (name, dir) in valid {
        match run_case(&dir).await {
            Ok(launch) => {
                assert_eq!(launch.issuer(), ISS, "{name}");
                assert_eq!(launch.deployment_id(), DEPLOYMENT, "{name}");
            }
            Err(e) => panic!(
                "{name}: expected the launch to be accepted, got {}: {e}",
                e.code()
            ),
        }
    }
}

#[tokio::test]
async fn every_invalid_certification_case_is_rejected_with_its_code() {
    let invalid = folders("invalid");
    assert_eq!(
        invalid.len(),
        INVALID.len(),
        "every invalid folder has an expected code"
    );
    for (name, dir) in invalid {
        let expected = INVALID
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| *c)
            .unwrap_or_else(|| panic!("no expected code for {name}"));
        match run_case(&dir).await {
            Ok(launch) => panic!(
                "{name}: expected {expected}, got a valid {}",
                launch.message().message_type()
            ),
            Err(e) => assert_eq!(e.code(), expected, "{name}: {e}"),
        }
    }
}

#[tokio::test]
async fn the_deep_linking_certification_cases_are_deep_linking_launches() {
    let dir = corpus().join("valid/Deep Linking - Send Deep Linking Request Payload");
    let launch = run_case(&dir).await.unwrap();
    assert!(launch.is_deep_linking());
    launch.deep_linking_response().unwrap();
}
