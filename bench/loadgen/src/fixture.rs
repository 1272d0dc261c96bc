//! The shared payloads: one signed LTI 1.3 launch (RS256, 2048-bit key) and a file of
//! signed LTI 1.1 launch bodies, written once per run and read by every
//! implementation (ours and the peers) so all of them verify the same bytes.

use std::io::Write;
use std::path::Path;

use lti_jose::{Algorithm, SigningKey};
use lti11::oauth::OAuthParams;
use lti11::{Credentials, LaunchRequest};
use serde_json::{Value, json};

/// The benchmark platform key (a throw-away fixture).
pub(crate) const PLATFORM_PEM: &str =
    include_str!("../../../tests/fixtures/interop/keys/platform.pem");
pub(crate) const ISS: &str = "https://lms.example.edu";
pub(crate) const CLIENT_ID: &str = "bench-client-1";
pub(crate) const DEPLOYMENT: &str = "bench-deployment-1";
pub(crate) const TARGET: &str = "https://tool.example.com/lti/launch";
pub(crate) const NONCE: &str = "3f7b1c2a-8e0d-4c55-9a61-2d7f0b9e4a11";
pub(crate) const STATE: &str = "bench-state-0123456789abcdefghijklmnopqrstu";
pub(crate) const KID: &str = "bench-platform-key";
pub(crate) const LTI11_URL: &str = "http://tool.example.com/lti11/launch";
pub(crate) const LTI11_KEY: &str = "bench-key";
pub(crate) const LTI11_SECRET: &str = "bench-secret-0123456789";
/// Signed LTI 1.1 bodies in the file (each with a distinct nonce).
pub(crate) const LTI11_BODIES: usize = 30_000;

pub(crate) fn signing_key() -> SigningKey {
    SigningKey::from_pem(PLATFORM_PEM, Algorithm::RS256)
        .expect("fixture key parses")
        .with_kid(KID)
}

/// A Canvas-like resource-link launch for `nonce`, valid for an hour from `now`.
pub(crate) fn claims(iss: &str, target: &str, nonce: &str, now: i64) -> Value {
    let c = "https://purl.imsglobal.org/spec/lti/claim/";
    json!({
        "iss": iss, "sub": "a6d5c443-1f51-4783-ba1a-7686ffe3b54a", "aud": CLIENT_ID, "azp": CLIENT_ID,
        "exp": now + 3600, "iat": now - 5, "nonce": nonce,
        "name": "Ms Jane Marie Doe", "given_name": "Jane", "family_name": "Doe",
        "email": "jane.doe@example.edu", "locale": "en-US",
        format!("{c}message_type"): "LtiResourceLinkRequest",
        format!("{c}version"): "1.3.0",
        format!("{c}deployment_id"): DEPLOYMENT,
        format!("{c}target_link_uri"): target,
        format!("{c}resource_link"): { "id": "200d101f-2c14-434a-a0f3-57c2a42369fd", "title": "Week 3 quiz" },
        format!("{c}roles"): [
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
            "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"
        ],
        format!("{c}context"): { "id": "c1d887f0a1a3", "label": "ECON 101", "title": "Economics", "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"] },
        format!("{c}tool_platform"): { "guid": "lms-guid", "name": "LMS", "product_family_code": "canvas", "version": "cloud" },
        format!("{c}launch_presentation"): { "document_target": "iframe", "return_url": "https://lms.example.edu/courses/1/return", "locale": "en" },
        format!("{c}custom"): { "course_id": "1", "user_id": "42" },
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem", "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "lineitems": "https://lms.example.edu/api/lti/courses/1/line_items"
        },
        "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
            "context_memberships_url": "https://lms.example.edu/api/lti/courses/1/names_and_roles", "service_versions": ["2.0"]
        }
    })
}

/// One signed LTI 1.1 launch body with nonce `n`.
pub(crate) fn lti11_body(n: usize, timestamp: u64) -> String {
    let mut p = OAuthParams::new(timestamp);
    p.nonce = format!("bench-nonce-{n:08}");
    p.callback = Some("about:blank".into());
    LaunchRequest::new("rl-42")
        .param("user_id", "0ae836b9-7fc9-4060-006f-27b2066ac545")
        .roles(&["Instructor", "urn:lti:instrole:ims/lis/Faculty"])
        .context("S3294476", "Introduction to Biology")
        .param("context_label", "BIO101")
        .param("lis_person_name_full", "Jane Q. Public")
        .param("lis_person_contact_email_primary", "jane@example.edu")
        .param("tool_consumer_instance_guid", "lms.example.edu")
        .param(
            "launch_presentation_return_url",
            "https://lms.example.edu/courses/7/return",
        )
        .outcomes(
            "https://lms.example.edu/outcomes",
            "sid-83873872987329873264783687634",
        )
        .param("custom_chapter", "3/4")
        .sign_with(LTI11_URL, &Credentials::new(LTI11_KEY, LTI11_SECRET), &p)
        .expect("signing a launch")
        .form_body()
}

/// Writes `fixture.json` and `lti11_bodies.txt` into `dir`.
pub(crate) fn write(dir: &Path) {
    std::fs::create_dir_all(dir).expect("creating the fixture directory");
    let now = crate::now();
    let key = signing_key();
    let token = lti_jose::sign(&claims(ISS, TARGET, NONCE, now), &key).expect("signing");
    let fixture = json!({
        "iss": ISS, "client_id": CLIENT_ID, "deployment_id": DEPLOYMENT, "target_link_uri": TARGET,
        "nonce": NONCE, "state": STATE, "kid": KID, "now": now,
        "auth_login_url": "https://lms.example.edu/auth", "auth_token_url": "https://lms.example.edu/token",
        "jwks_url": "https://lms.example.edu/jwks",
        "token": token, "jwk": key.public_jwk(), "platform_pem": PLATFORM_PEM,
        "lti11": {"url": LTI11_URL, "key": LTI11_KEY, "secret": LTI11_SECRET,
                   "bodies": "lti11_bodies.txt", "count": LTI11_BODIES},
    });
    std::fs::write(
        dir.join("fixture.json"),
        serde_json::to_vec_pretty(&fixture).expect("json"),
    )
    .expect("writing fixture.json");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(dir.join("lti11_bodies.txt")).expect("creating lti11_bodies.txt"),
    );
    for n in 0..LTI11_BODIES {
        writeln!(out, "{}", lti11_body(n, now as u64)).expect("writing a body");
    }
    out.flush().expect("flushing lti11_bodies.txt");
}
