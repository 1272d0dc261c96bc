//! Real-shaped launch payloads from Canvas, Moodle, Blackboard, Brightspace and Sakai.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lti_message::{ContextType, IdTokenClaims, LtiMessage, ValidationOptions, uri};
use serde_json::Value;

const PLATFORMS: &[(&str, &str)] = &[
    (
        "canvas",
        include_str!("../../../tests/fixtures/lti-message/platforms/canvas.json"),
    ),
    (
        "moodle",
        include_str!("../../../tests/fixtures/lti-message/platforms/moodle.json"),
    ),
    (
        "blackboard",
        include_str!("../../../tests/fixtures/lti-message/platforms/blackboard.json"),
    ),
    (
        "brightspace",
        include_str!("../../../tests/fixtures/lti-message/platforms/brightspace.json"),
    ),
    (
        "sakai",
        include_str!("../../../tests/fixtures/lti-message/platforms/sakai.json"),
    ),
];

fn payload(name: &str) -> Value {
    let (_, text) = PLATFORMS.iter().find(|(n, _)| *n == name).unwrap();
    serde_json::from_str(text).unwrap()
}

fn message(name: &str) -> LtiMessage {
    LtiMessage::from_value(payload(name), &ValidationOptions::default()).unwrap()
}

#[test]
fn platform_payloads_round_trip_and_keep_unknown_claims_unchanged() {
    for (name, text) in PLATFORMS {
        let original: Value = serde_json::from_str(text).unwrap();
        let claims: IdTokenClaims = serde_json::from_str(text).unwrap();
        let encoded = serde_json::to_value(&claims).unwrap();
        let again: IdTokenClaims = serde_json::from_value(encoded.clone()).unwrap();
        assert_eq!(again, claims, "{name}");
        // Every claim the model does not know survives byte-for-byte.
        assert!(
            !claims.extra.is_empty() || *name == "moodle",
            "{name} has vendor claims"
        );
        for (k, v) in &claims.extra {
            assert_eq!(encoded.get(k), Some(v), "{name}: {k}");
            assert_eq!(original.get(k), Some(v), "{name}: {k}");
        }
    }
}

#[test]
fn every_platform_payload_validates() {
    let kinds: Vec<&str> = PLATFORMS
        .iter()
        .map(|(n, _)| message(n).message_type().to_owned())
        .map(|s| match s.as_str() {
            uri::MSG_RESOURCE_LINK => "rl",
            uri::MSG_DEEP_LINKING => "dl",
            uri::MSG_SUBMISSION_REVIEW => "sr",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["rl", "rl", "dl", "rl", "sr"]);
}

#[test]
fn canvas_string_sizes_numeric_custom_values_and_vendor_members_are_tolerated() {
    let m = message("canvas");
    let c = m.claims();
    let lp = c.launch_presentation.as_ref().unwrap();
    assert_eq!((lp.width, lp.height), (Some(800), Some(400)));
    assert_eq!(
        c.custom_str("canvas_assignment_points_possible").as_deref(),
        Some("10")
    );
    assert_eq!(
        c.custom_str("canvas_module_id").as_deref(),
        Some("$Canvas.module.id")
    );
    assert_eq!(
        c.lti11_legacy_user_id.as_deref(),
        Some("535fa085f22b4655f48cd5a36a9215f64c062838")
    );
    assert!(
        c.resource_link
            .as_ref()
            .unwrap()
            .extra
            .contains_key("validation_context")
    );
    assert!(
        c.extra
            .contains_key("https://www.instructure.com/placement")
    );
    assert_eq!(
        c.context.as_ref().unwrap().context_types(),
        [ContextType::CourseOffering]
    );
    assert_eq!(c.aud.as_ref().unwrap().first(), Some("10000000000042"));
    assert!(m.roles().is_instructor_or_higher());
}

#[test]
fn moodle_line_item_urls_keep_their_query_and_ext_claim_is_typed() {
    let m = message("moodle");
    let c = m.claims();
    let ags = c.ags_endpoint.as_ref().unwrap();
    assert!(
        ags.lineitem
            .as_deref()
            .unwrap()
            .ends_with("/lineitem?type_id=1")
    );
    assert!(ags.has_scope(lti_message::ags::scope::SCORE));
    assert_eq!(c.nrps.as_ref().unwrap().service_versions, ["1.0", "2.0"]);
    assert_eq!(c.ext.as_ref().unwrap()["user_username"], "llearner");
    let bo = c.basic_outcome.as_ref().unwrap();
    assert!(
        bo.lis_outcome_service_url
            .as_deref()
            .unwrap()
            .ends_with("/mod/lti/service.php")
    );
    assert_eq!(
        c.context.as_ref().unwrap().context_types(),
        [ContextType::CourseSection]
    );
    assert!(m.roles().is_learner());
}

#[test]
fn blackboard_audience_array_string_context_type_and_urn_roles_are_understood() {
    let LtiMessage::DeepLinking(dl) = message("blackboard") else {
        panic!("deep linking")
    };
    assert!(
        dl.aud
            .as_ref()
            .unwrap()
            .contains("c0ffee00-1234-4abc-9def-0123456789ab")
    );
    assert_eq!(dl.context.as_ref().unwrap().types.len(), 1);
    assert_eq!(
        dl.context.as_ref().unwrap().context_types(),
        [ContextType::CourseOffering]
    );
    assert!(
        dl.roles().is_admin(),
        "urn:lti:sysrole:ims/lis/SysAdmin is an administrator"
    );
    assert_eq!(dl.settings().accept_lineitem, Some(true));
    assert!(
        dl.extra
            .contains_key("https://blackboard.com/lti/claim/one_time_session_token")
    );
}

#[test]
fn brightspace_float_and_px_sizes_and_nbf_are_tolerated() {
    let m = message("brightspace");
    let c = m.claims();
    let lp = c.launch_presentation.as_ref().unwrap();
    assert_eq!((lp.width, lp.height), (Some(1024), Some(768)));
    assert_eq!(c.extra["nbf"], 1_732_279_990);
    assert_eq!(c.extra["http://www.brightspace.com"]["user_id"], 1234);
    assert_eq!(
        c.tool_platform
            .as_ref()
            .unwrap()
            .product_family_code
            .as_deref(),
        Some("desire2learn")
    );
}

#[test]
fn sakai_submission_review_carries_for_user_lti1p1_and_mentor_scope() {
    let LtiMessage::SubmissionReview(sr) = message("sakai") else {
        panic!("submission review")
    };
    assert_eq!(sr.for_user_id(), "u-1001");
    assert_eq!(sr.for_user().roles.as_deref().unwrap().len(), 1);
    assert_eq!(
        sr.lti1p1.as_ref().unwrap().oauth_consumer_key.as_deref(),
        Some("sakai-key")
    );
    assert_eq!(
        sr.role_scope_mentor.as_deref().unwrap(),
        ["u-1001", "u-1002"]
    );
    let grader = sr.roles().iter().nth(1).unwrap();
    assert_eq!(grader.role_type(), Some("Instructor"));
    assert_eq!(grader.sub_type(), Some("Grader"));
    assert!(sr.roles().is_teaching_assistant());
    assert!(sr.ags_endpoint().unwrap().lineitem.is_some());
    assert!(
        sr.extra
            .contains_key("https://www.sakailms.org/spec/lti/claim/extension")
    );
}
