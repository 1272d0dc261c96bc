//! Every claim-validation rejection path, each with its specific error code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lti_message::{
    IdTokenClaims, LtiMessage, LtiResourceLinkRequest, MessageError, RequiredClaim,
    ValidationOptions, uri,
};
use serde_json::{Value, json};

fn resource_link() -> Value {
    json!({
        "iss": "https://platform.example.edu",
        "aud": "client-1",
        "sub": "user-1",
        "exp": 1_900_000_000, "iat": 1_899_999_000, "nonce": "n1",
        uri::MESSAGE_TYPE: "LtiResourceLinkRequest",
        uri::VERSION: "1.3.0",
        uri::DEPLOYMENT_ID: "dep-1",
        uri::ROLES: ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        uri::RESOURCE_LINK: { "id": "rl-1" }
    })
}

fn deep_linking() -> Value {
    let mut v = resource_link();
    v[uri::MESSAGE_TYPE] = json!("LtiDeepLinkingRequest");
    v.as_object_mut().unwrap().remove(uri::RESOURCE_LINK);
    v[uri::DEEP_LINKING_SETTINGS] = json!({
        "deep_link_return_url": "https://platform.example.edu/dl",
        "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe"]
    });
    v
}

fn submission_review() -> Value {
    let mut v = resource_link();
    v[uri::MESSAGE_TYPE] = json!("LtiSubmissionReviewRequest");
    v[uri::FOR_USER] = json!({ "user_id": "learner-9" });
    v
}

fn code(v: Value, opts: &ValidationOptions) -> &'static str {
    LtiMessage::from_value(v, opts).unwrap_err().code()
}

fn code_default(v: Value) -> &'static str {
    code(v, &ValidationOptions::default())
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

fn with(mut v: Value, key: &str, val: Value) -> Value {
    v[key] = val;
    v
}

#[test]
fn well_formed_messages_of_each_type_are_accepted() {
    let opts = ValidationOptions::default();
    assert!(matches!(
        LtiMessage::from_value(resource_link(), &opts),
        Ok(LtiMessage::ResourceLink(_))
    ));
    assert!(matches!(
        LtiMessage::from_value(deep_linking(), &opts),
        Ok(LtiMessage::DeepLinking(_))
    ));
    let sr = LtiMessage::from_value(submission_review(), &opts).unwrap();
    let LtiMessage::SubmissionReview(sr) = sr else {
        panic!()
    };
    assert_eq!(sr.for_user_id(), "learner-9");
}

#[test]
fn version_must_be_exactly_1_3_0() {
    for bad in ["1.3", "1.3.0 ", "1.3.1", "LTI-1p0", ""] {
        assert_eq!(
            code_default(with(resource_link(), uri::VERSION, json!(bad))),
            "invalid_version",
            "{bad:?}"
        );
    }
    assert_eq!(
        code_default(without(resource_link(), uri::VERSION)),
        "missing_claim:version"
    );
    assert_eq!(
        code_default(with(resource_link(), uri::VERSION, json!(1.3))),
        "malformed_claim"
    );
}

#[test]
fn message_type_must_be_present_and_supported() {
    assert_eq!(
        code_default(without(resource_link(), uri::MESSAGE_TYPE)),
        "missing_claim:message_type"
    );
    let other = with(
        resource_link(),
        uri::MESSAGE_TYPE,
        json!("LtiStartProctoring"),
    );
    assert_eq!(code_default(other.clone()), "unknown_message_type");
    let opts = ValidationOptions::default().allow_unknown_message_types(true);
    let LtiMessage::Other(m) = LtiMessage::from_value(other.clone(), &opts).unwrap() else {
        panic!()
    };
    assert_eq!(m.message_type(), "LtiStartProctoring");
    // The open variant still enforces the common rules.
    assert_eq!(
        code(without(other, uri::DEPLOYMENT_ID), &opts),
        "missing_claim:deployment_id"
    );
    let empty_type = with(resource_link(), uri::MESSAGE_TYPE, json!(""));
    assert_eq!(code(empty_type, &opts), "unknown_message_type");
}

#[test]
fn deployment_id_must_be_present_non_empty_and_at_most_255_chars() {
    assert_eq!(
        code_default(without(resource_link(), uri::DEPLOYMENT_ID)),
        "missing_claim:deployment_id"
    );
    assert_eq!(
        code_default(with(resource_link(), uri::DEPLOYMENT_ID, json!(""))),
        "empty_deployment_id"
    );
    let long = "d".repeat(256);
    let err = LtiMessage::from_value(
        with(resource_link(), uri::DEPLOYMENT_ID, json!(long)),
        &ValidationOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err, MessageError::DeploymentIdTooLong { len: 256 });
    let ok = with(resource_link(), uri::DEPLOYMENT_ID, json!("é".repeat(255)));
    assert!(LtiMessage::from_value(ok, &ValidationOptions::default()).is_ok());
    assert_eq!(
        code_default(with(resource_link(), uri::DEPLOYMENT_ID, json!(42))),
        "malformed_claim"
    );
}

#[test]
fn sub_rules_for_anonymous_and_empty_subjects() {
    let anonymous = without(resource_link(), "sub");
    assert_eq!(code_default(anonymous.clone()), "missing_claim:sub");
    let opts = ValidationOptions::default().allow_anonymous(true);
    let m = LtiMessage::from_value(anonymous, &opts).unwrap();
    assert_eq!(m.sub(), None);
    let anonymous_dl = without(deep_linking(), "sub");
    assert!(LtiMessage::from_value(anonymous_dl, &opts).is_ok());
    // Submission review always needs the viewer's sub.
    assert_eq!(
        code(without(submission_review(), "sub"), &opts),
        "missing_claim:sub"
    );
    assert_eq!(
        code(with(resource_link(), "sub", json!("")), &opts),
        "empty_sub"
    );
    assert_eq!(
        code_default(with(resource_link(), "sub", json!(12345))),
        "malformed_claim"
    );
}

#[test]
fn roles_claim_must_be_present_but_may_be_empty() {
    assert_eq!(
        code_default(without(resource_link(), uri::ROLES)),
        "missing_claim:roles"
    );
    assert_eq!(
        code_default(with(resource_link(), uri::ROLES, Value::Null)),
        "missing_claim:roles"
    );
    for ok in [json!([]), json!([""])] {
        let m = LtiMessage::from_value(
            with(resource_link(), uri::ROLES, ok),
            &ValidationOptions::default(),
        );
        assert!(m.unwrap().roles().is_empty());
    }
    let err = LtiMessage::from_value(
        with(resource_link(), uri::ROLES, json!("Instructor")),
        &ValidationOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            MessageError::MalformedClaim {
                claim: uri::ROLES,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn resource_link_launches_need_a_non_empty_resource_link_id() {
    assert_eq!(
        code_default(without(resource_link(), uri::RESOURCE_LINK)),
        "missing_claim:resource_link.id"
    );
    let no_id = with(resource_link(), uri::RESOURCE_LINK, json!({ "title": "t" }));
    assert_eq!(code_default(no_id), "missing_claim:resource_link.id");
    let empty = with(resource_link(), uri::RESOURCE_LINK, json!({ "id": "" }));
    assert_eq!(
        LtiMessage::from_value(empty, &ValidationOptions::default()).unwrap_err(),
        MessageError::EmptyIdentifier {
            claim: "resource_link.id"
        }
    );
}

#[test]
fn deep_linking_needs_settings_with_a_return_url() {
    assert_eq!(
        code_default(without(deep_linking(), uri::DEEP_LINKING_SETTINGS)),
        "missing_claim:deep_linking_settings"
    );
    let no_url = with(
        deep_linking(),
        uri::DEEP_LINKING_SETTINGS,
        json!({ "accept_types": ["link"] }),
    );
    assert_eq!(
        code_default(no_url),
        "missing_claim:deep_linking_settings.deep_link_return_url"
    );
    let empty_url = with(
        deep_linking(),
        uri::DEEP_LINKING_SETTINGS,
        json!({ "deep_link_return_url": "" }),
    );
    assert_eq!(code_default(empty_url), "empty_identifier");
}

#[test]
fn submission_review_needs_for_user_and_resource_link() {
    assert_eq!(
        code_default(without(submission_review(), uri::FOR_USER)),
        "missing_claim:for_user.user_id"
    );
    let no_user = with(submission_review(), uri::FOR_USER, json!({ "name": "x" }));
    assert_eq!(code_default(no_user), "missing_claim:for_user.user_id");
    let empty_user = with(submission_review(), uri::FOR_USER, json!({ "user_id": "" }));
    assert_eq!(
        LtiMessage::from_value(empty_user, &ValidationOptions::default()).unwrap_err(),
        MessageError::EmptyIdentifier {
            claim: "for_user.user_id"
        }
    );
    assert_eq!(
        code_default(without(submission_review(), uri::RESOURCE_LINK)),
        "missing_claim:resource_link.id"
    );
}

#[test]
fn a_typed_constructor_refuses_another_message_type() {
    let claims = IdTokenClaims::from_value(deep_linking()).unwrap();
    let err =
        LtiResourceLinkRequest::try_from_claims(claims, &ValidationOptions::default()).unwrap_err();
    assert_eq!(err.code(), "wrong_message_type");
    assert!(
        err.to_string()
            .contains("expected message type `LtiResourceLinkRequest`")
    );
}

#[test]
fn security_claims_are_decoded_strictly_and_errors_name_the_claim() {
    let cases = [
        ("exp", json!("1900000000")),
        ("iat", json!(true)),
        ("iss", json!(["a"])),
        ("nonce", json!(5)),
        ("aud", json!(17)),
        (uri::RESOURCE_LINK, json!("rl-1")),
        (uri::CONTEXT, json!({ "id": 7 })),
    ];
    for (key, val) in cases {
        let err = IdTokenClaims::from_value(with(resource_link(), key, val)).unwrap_err();
        let MessageError::MalformedClaim { claim, .. } = &err else {
            panic!("{key}: {err}")
        };
        assert_eq!(*claim, key);
        assert!(err.to_string().contains(key));
    }
    assert_eq!(
        IdTokenClaims::from_value(json!([1, 2])).unwrap_err(),
        MessageError::NotAnObject { found: "an array" }
    );
    assert_eq!(
        IdTokenClaims::from_slice(b"{not json").unwrap_err().code(),
        "malformed_claim"
    );
}

#[test]
fn fractional_numeric_dates_are_truncated_and_iss_aud_exp_are_not_checked_here() {
    let v = with(
        with(resource_link(), "exp", json!(1.5)),
        "iss",
        json!("https://anything"),
    );
    let m = LtiMessage::from_value(v, &ValidationOptions::default()).unwrap();
    assert_eq!(m.exp(), Some(1));
    assert_eq!(m.iss(), Some("https://anything"));
}

#[test]
fn error_codes_for_required_claims_are_stable() {
    assert_eq!(
        RequiredClaim::DeploymentId.code(),
        "missing_claim:deployment_id"
    );
    assert_eq!(RequiredClaim::DeploymentId.name(), "deployment_id");
    assert_eq!(
        MessageError::MissingClaim(RequiredClaim::Roles).to_string(),
        "expected claim `roles` to be present, found none"
    );
}

#[test]
fn long_attacker_values_are_truncated_in_errors() {
    let v = with(resource_link(), uri::VERSION, json!("x".repeat(10_000)));
    let err = LtiMessage::from_value(v, &ValidationOptions::default()).unwrap_err();
    assert!(err.to_string().len() < 200, "{}", err.to_string().len());
}

#[test]
fn byte_input_refuses_duplicated_known_claims_non_objects_and_trailing_data() {
    let dup = br#"{"sub":"a","sub":"b"}"#;
    let err = IdTokenClaims::from_slice(dup).unwrap_err();
    assert!(
        matches!(err, MessageError::MalformedClaim { claim: "sub", .. }),
        "{err}"
    );
    let dup_version = format!(r#"{{"{v}":"1.3.0","{v}":"1.1"}}"#, v = uri::VERSION);
    let err = IdTokenClaims::from_slice(dup_version.as_bytes()).unwrap_err();
    assert!(
        matches!(
            err,
            MessageError::MalformedClaim {
                claim: uri::VERSION,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        IdTokenClaims::from_slice(b" [1]").unwrap_err(),
        MessageError::NotAnObject { found: "an array" }
    );
    assert_eq!(
        IdTokenClaims::from_slice(b"42").unwrap_err(),
        MessageError::NotAnObject { found: "a number" }
    );
    assert_eq!(
        IdTokenClaims::from_slice(b"{} x").unwrap_err().code(),
        "malformed_claim"
    );
    let bad_exp = br#"{"exp":"soon"}"#;
    let err = IdTokenClaims::from_slice(bad_exp).unwrap_err();
    assert!(
        matches!(err, MessageError::MalformedClaim { claim: "exp", .. }),
        "{err}"
    );
    // Unknown duplicated claims: the last value wins, as in JSON objects generally.
    let claims = IdTokenClaims::from_slice(br#"{"x":1,"x":2}"#).unwrap();
    assert_eq!(claims.extra["x"], 2);
}

#[test]
fn bytes_and_values_decode_to_the_same_claims() {
    let v = submission_review();
    let from_bytes = IdTokenClaims::from_slice(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(from_bytes, IdTokenClaims::from_value(v).unwrap());
}

#[test]
fn malformed_claim_reasons_do_not_echo_long_attacker_values() {
    let v = with(resource_link(), "exp", json!("A".repeat(5_000)));
    let err = IdTokenClaims::from_value(v).unwrap_err();
    assert!(matches!(
        err,
        MessageError::MalformedClaim { claim: "exp", .. }
    ));
    assert!(err.to_string().len() < 300, "{}", err.to_string().len());
}
