#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Known-answer vectors: RFC 5849 §3.4.1.1 and the digest's LTI vector (§8.2).

use lti11::SignedRequest;
use lti11::oauth::{self, Credentials, OAuthParams, SignatureMethod};

const RFC_BASE_STRING: &str = "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7";

#[test]
fn rfc5849_example_base_string_is_rebuilt_from_query_body_and_header() {
    let header = "OAuth realm=\"Example\", oauth_consumer_key=\"9djdj82h48djs9d2\", oauth_token=\"kkk9d7dh3k39sjv7\", oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"137131201\", oauth_nonce=\"7d8f3e4a\", oauth_signature=\"bYT5CMsGcbgUdFHObYMEfcx6bsw%3D\"";
    let req = SignedRequest {
        method: "POST",
        url: "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b",
        authorization: Some(header),
        content_type: Some("application/x-www-form-urlencoded"),
        body: b"c2&a3=2+q",
    };
    let collected = req.collect().unwrap();
    assert_eq!(collected.base_string(), RFC_BASE_STRING);
    assert_eq!(collected.consumer_key(), "9djdj82h48djs9d2");
}

const DIGEST_BASE_STRING: &str = "POST&https%3A%2F%2Ftool.example.com%2Flti%2Flaunch&course%3D7%26custom_chapter%3D3%252F4%26lti_message_type%3Dbasic-lti-launch-request%26lti_version%3DLTI-1p0%26oauth_callback%3Dabout%253Ablank%26oauth_consumer_key%3Dkey123%26oauth_nonce%3Dabc123%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1700000000%26oauth_version%3D1.0%26resource_link_id%3Drl-42%26roles%3DInstructor%252Curn%253Alti%253Ainstrole%253Aims%252Flis%252FFaculty%26user_id%3Du%25201";

fn digest_params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("lti_message_type", "basic-lti-launch-request"),
        ("lti_version", "LTI-1p0"),
        ("resource_link_id", "rl-42"),
        ("user_id", "u 1"),
        ("roles", "Instructor,urn:lti:instrole:ims/lis/Faculty"),
        ("custom_chapter", "3/4"),
    ]
}

#[test]
fn digest_lti_vector_base_string_and_signature_match() {
    let mut all = digest_params();
    all.extend([
        ("course", "7"),
        ("oauth_consumer_key", "key123"),
        ("oauth_nonce", "abc123"),
        ("oauth_timestamp", "1700000000"),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_version", "1.0"),
        ("oauth_callback", "about:blank"),
    ]);
    let base =
        oauth::signature_base_string("post", "https://tool.example.com/lti/launch?course=7", &all)
            .unwrap();
    assert_eq!(base, DIGEST_BASE_STRING);
    let sig = oauth::sign_base_string(SignatureMethod::HmacSha1, "secret456", "", &base);
    assert_eq!(sig, "4EyzgKFJlzg89SBMzUHC1fPRXuQ=");
}

#[test]
fn signing_the_digest_vector_yields_its_signature() {
    let creds = Credentials::new("key123", "secret456");
    let oauth_params = OAuthParams {
        method: SignatureMethod::HmacSha1,
        nonce: "abc123".into(),
        timestamp: 1_700_000_000,
        callback: Some("about:blank".into()),
        body_hash: None,
    };
    let signed = oauth::sign_params(
        "POST",
        "https://tool.example.com/lti/launch?course=7",
        &digest_params(),
        &creds,
        &oauth_params,
    )
    .unwrap();
    let sig = signed.iter().find(|(k, _)| k == "oauth_signature").unwrap();
    assert_eq!(sig.1, "4EyzgKFJlzg89SBMzUHC1fPRXuQ=");
}
