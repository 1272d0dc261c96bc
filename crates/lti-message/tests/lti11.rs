//! LTI 1.0/1.1 launch parameters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lti_message::lti11::{Lti11LaunchParams, custom_parameter_name};
use lti_message::{ContextType, MessageError};

fn form(pairs: &[(&str, &str)]) -> Lti11LaunchParams {
    Lti11LaunchParams::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

const MOODLE_LAUNCH: &[(&str, &str)] = &[
    ("lti_message_type", "basic-lti-launch-request"),
    ("lti_version", "LTI-1p0"),
    ("resource_link_id", "rl-42"),
    ("resource_link_title", "Quiz"),
    ("user_id", "u 1"),
    ("roles", "Instructor,urn:lti:instrole:ims/lis/Faculty"),
    ("context_id", "c1"),
    ("context_type", "CourseSection"),
    ("lis_person_name_full", "Ines Instructor"),
    (
        "lis_outcome_service_url",
        "https://lms.example.edu/outcomes",
    ),
    ("lis_result_sourcedid", "src-1"),
    ("launch_presentation_document_target", "iframe"),
    ("launch_presentation_width", "800"),
    ("tool_consumer_info_product_family_code", "moodle"),
    ("tool_consumer_instance_guid", "lms.example.edu"),
    ("custom_chapter", "3/4"),
    ("custom_", "ignored"),
    ("ext_lms", "moodle-2"),
    ("ext_user_username", "ines"),
    ("oauth_consumer_key", "key123"),
    ("user_id", "second value is ignored"),
];

#[test]
fn a_complete_launch_exposes_required_optional_custom_and_ext_parameters() {
    let p = form(MOODLE_LAUNCH);
    let r = p.required_parameters().unwrap();
    assert_eq!(
        (r.lti_message_type, r.lti_version, r.resource_link_id),
        ("basic-lti-launch-request", "LTI-1p0", "rl-42")
    );
    let o = p.optional_parameters();
    assert_eq!(o.user_id, Some("u 1"));
    assert_eq!(o.lis_result_sourcedid, Some("src-1"));
    assert_eq!(o.launch_presentation_width, Some("800"));
    assert_eq!(o.tool_consumer_instance_guid, Some("lms.example.edu"));
    assert_eq!(o.lis_person_contact_email_primary, None);
    let custom = p.custom_parameters();
    assert_eq!(custom.len(), 1);
    assert_eq!(custom["chapter"], "3/4");
    let ext = p.ext_parameters();
    assert_eq!(ext["lms"], "moodle-2");
    assert_eq!(ext["user_username"], "ines");
    let roles = p.roles();
    assert!(roles.is_instructor());
    assert_eq!(roles.len(), 2);
    assert_eq!(p.context_types(), [ContextType::CourseSection]);
}

#[test]
fn every_missing_required_parameter_is_reported_at_once() {
    let p = form(&[("user_id", "u")]);
    assert_eq!(
        p.required_parameters().unwrap_err(),
        MessageError::MissingParameters {
            missing: vec!["lti_message_type", "lti_version", "resource_link_id"]
        }
    );
    let p = form(&[
        ("lti_message_type", "basic-lti-launch-request"),
        ("lti_version", ""),
        ("resource_link_id", ""),
    ]);
    let err = p.required_parameters().unwrap_err();
    assert_eq!(
        err,
        MessageError::MissingParameters {
            missing: vec!["lti_version", "resource_link_id"]
        }
    );
    assert_eq!(err.code(), "missing_parameters");
    // Optional extractors never fail, even on an empty form.
    let empty = form(&[]);
    assert_eq!(empty.optional_parameters(), Default::default());
    assert!(
        empty.custom_parameters().is_empty()
            && empty.ext_parameters().is_empty()
            && empty.roles().is_empty()
    );
}

#[test]
fn versions_seen_in_the_wild_are_accepted_and_others_refused() {
    for v in ["LTI-1p0", "LTI-1p1", "LTI-1p2"] {
        let p = form(&[
            ("lti_message_type", "basic-lti-launch-request"),
            ("lti_version", v),
            ("resource_link_id", "r"),
        ]);
        assert_eq!(p.required_parameters().unwrap().lti_version, v);
    }
    let p = form(&[
        ("lti_message_type", "basic-lti-launch-request"),
        ("lti_version", "LTI-2p0"),
        ("resource_link_id", "r"),
    ]);
    let err = p.required_parameters().unwrap_err();
    assert!(
        matches!(
            err,
            MessageError::InvalidParameter {
                name: "lti_version",
                ..
            }
        ),
        "{err}"
    );
    let p = form(&[
        ("lti_message_type", "ContentItemSelectionRequest"),
        ("lti_version", "LTI-1p0"),
        ("resource_link_id", "r"),
    ]);
    let err = p.required_parameters().unwrap_err();
    assert!(
        matches!(
            err,
            MessageError::InvalidParameter {
                name: "lti_message_type",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.code(), "invalid_parameter");
}

#[test]
fn custom_parameter_names_are_normalised_like_lti_1_1() {
    assert_eq!(custom_parameter_name("Chapter"), "custom_chapter");
    assert_eq!(
        custom_parameter_name("Canvas.course-id"),
        "custom_canvas_course_id"
    );
    assert_eq!(custom_parameter_name("über"), "custom__ber");
}
