//! Drives every LTI 1.3 certification payload through claim validation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lti_message::{IdTokenClaims, LtiMessage, ValidationOptions};
use serde_json::Value;

enum Expect {
    /// The platform sends a launch the tool must accept.
    Valid,
    /// Invalid only for a reason of the tool layer (signature, kid, exp):
    /// the claims themselves are fine and must pass here.
    ToolLayer,
    /// Invalid for a claim rule: rejected here with this error code.
    Invalid(&'static str),
}

struct Case {
    folder: &'static str,
    payload: &'static str,
    expect: Expect,
}

const CASES: &[Case] = &[
    Case {
        folder: "valid/Assignments and Grades - Core Launch",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Assignments and Grades - Core Launch/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Deep Linking - Core Launch of Passed LTI Link",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Deep Linking - Core Launch of Passed LTI Link/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Deep Linking - Send Deep Linking Request Payload",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Deep Linking - Send Deep Linking Request Payload/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Instructor No PII",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Instructor No PII/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Instructor Only Email",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Instructor Only Email/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Instructor Only Names",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Instructor Only Names/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Instructor With Email No Context",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Instructor With Email No Context/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Instructor With No Role",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Instructor With No Role/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Instructor with Multiple Role Values",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Instructor with Multiple Role Values/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Instructor with Short Role Value",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Instructor with Short Role Value/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Instructor with Unknown Role",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Instructor with Unknown Role/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch LTI 1.3 Message as Instructor",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch LTI 1.3 Message as Instructor/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch LTI 1.3 Message as Student",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch LTI 1.3 Message as Student/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Student No PII",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Student No PII/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Student Only Email",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Student Only Email/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Student Only Names",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Student Only Names/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Student Only Resource Link",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Student Only Resource Link/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Student With No Role",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Student With No Role/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Student with Multiple Role Values",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Student with Multiple Role Values/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Student with Short Role Value",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Student with Short Role Value/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Launch Student with Unknown Role",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Launch Student with Unknown Role/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "valid/Names and Roles - Core Launch if Needed",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/valid/Names and Roles - Core Launch if Needed/payload.json"
        ),
        expect: Expect::Valid,
    },
    Case {
        folder: "invalid/Correct KID Required in Header",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/invalid/Correct KID Required in Header/payload.json"
        ),
        expect: Expect::ToolLayer,
    },
    Case {
        folder: "invalid/Exp and Iat Fields invalid",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/invalid/Exp and Iat Fields invalid/payload.json"
        ),
        expect: Expect::ToolLayer,
    },
    Case {
        folder: "invalid/Incorrect KID passed in JWT Header",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/invalid/Incorrect KID passed in JWT Header/payload.json"
        ),
        expect: Expect::ToolLayer,
    },
    Case {
        folder: "invalid/JWT Passed is Not LTI 1.3 JWT",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/invalid/JWT Passed is Not LTI 1.3 JWT/payload.json"
        ),
        expect: Expect::Invalid("missing_claim:message_type"),
    },
    Case {
        folder: "invalid/LTI version passed is not 1.3",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/invalid/LTI version passed is not 1.3/payload.json"
        ),
        expect: Expect::Invalid("invalid_version"),
    },
    Case {
        folder: "invalid/Launch With Missing resource_link_id",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/invalid/Launch With Missing resource_link_id/payload.json"
        ),
        expect: Expect::Invalid("missing_claim:resource_link.id"),
    },
    Case {
        folder: "invalid/No LTI Version Passed in JWT",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/invalid/No LTI Version Passed in JWT/payload.json"
        ),
        expect: Expect::Invalid("missing_claim:version"),
    },
    Case {
        folder: "invalid/One or more JWT fields missing",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/invalid/One or more JWT fields missing/payload.json"
        ),
        expect: Expect::Invalid("missing_claim:message_type"),
    },
    Case {
        folder: "invalid/deployment_id Claim Missing",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/invalid/deployment_id Claim Missing/payload.json"
        ),
        expect: Expect::Invalid("missing_claim:deployment_id"),
    },
    Case {
        folder: "invalid/message_type Claim Missing",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/invalid/message_type Claim Missing/payload.json"
        ),
        expect: Expect::Invalid("missing_claim:message_type"),
    },
    Case {
        folder: "invalid/role Claim Missing",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/invalid/role Claim Missing/payload.json"
        ),
        expect: Expect::Invalid("missing_claim:roles"),
    },
    Case {
        folder: "invalid/user Claim Missing",
        payload: include_str!(
            "../../../tests/fixtures/lti-message/certification/invalid/user Claim Missing/payload.json"
        ),
        expect: Expect::Invalid("empty_sub"),
    },
];

fn classify(
    payload: &str,
    opts: &ValidationOptions,
) -> Result<LtiMessage, lti_message::MessageError> {
    LtiMessage::from_value(serde_json::from_str(payload).unwrap(), opts)
}

#[test]
fn every_certification_payload_classifies_as_its_folder_says() {
    let opts = ValidationOptions::default();
    for case in CASES {
        let result = classify(case.payload, &opts);
        match (&case.expect, result) {
            (Expect::Valid | Expect::ToolLayer, Ok(_)) => {}
            (Expect::Valid | Expect::ToolLayer, Err(e)) => {
                panic!(
                    "{}: expected valid claims, got {} ({e})",
                    case.folder,
                    e.code()
                )
            }
            (Expect::Invalid(code), Err(e)) => {
                assert_eq!(e.code(), *code, "{}: {e}", case.folder)
            }
            (Expect::Invalid(code), Ok(m)) => {
                panic!(
                    "{}: expected {code}, got a valid {}",
                    case.folder,
                    m.message_type()
                )
            }
        }
    }
}

#[test]
fn the_table_covers_every_certification_folder() {
    let root = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/lti-message/certification"
    );
    let mut on_disk = Vec::new();
    for verdict in ["valid", "invalid"] {
        for entry in std::fs::read_dir(format!("{root}/{verdict}")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            on_disk.push(format!("{verdict}/{name}"));
        }
    }
    on_disk.sort();
    let mut in_table: Vec<String> = CASES.iter().map(|c| c.folder.to_owned()).collect();
    in_table.sort();
    assert_eq!(on_disk, in_table);
    assert_eq!(in_table.len(), 34);
    assert_eq!(
        CASES
            .iter()
            .filter(|c| c.folder.starts_with("valid/"))
            .count(),
        22
    );
}

#[test]
fn tool_layer_cases_keep_their_header_and_time_problems_for_the_tool_layer() {
    // The claims pass; what makes them invalid is outside the claim set.
    for case in CASES
        .iter()
        .filter(|c| matches!(c.expect, Expect::ToolLayer))
    {
        let m = classify(case.payload, &ValidationOptions::default()).unwrap();
        assert!(m.exp().is_some() && m.iat().is_some(), "{}", case.folder);
        assert_eq!(m.iss(), Some("https://ltiadvantagevalidator.imsglobal.org"));
        assert!(m.aud().unwrap().contains("imstester_3dfad6d"));
        assert!(m.nonce().is_some());
    }
    let expired = CASES
        .iter()
        .find(|c| c.folder == "invalid/Exp and Iat Fields invalid")
        .unwrap();
    let m = classify(expired.payload, &ValidationOptions::default()).unwrap();
    assert_eq!((m.exp(), m.iat()), (Some(22222), Some(11111)));
}

#[test]
fn an_empty_sub_is_rejected_even_when_anonymous_launches_are_allowed() {
    let case = CASES
        .iter()
        .find(|c| c.folder == "invalid/user Claim Missing")
        .unwrap();
    let opts = ValidationOptions::default().allow_anonymous(true);
    assert_eq!(
        classify(case.payload, &opts).unwrap_err().code(),
        "empty_sub"
    );
}

#[test]
fn classified_messages_expose_the_expected_details() {
    let find = |f: &str| CASES.iter().find(|c| c.folder == f).unwrap().payload;
    let opts = ValidationOptions::default();

    let dl = classify(
        find("valid/Deep Linking - Send Deep Linking Request Payload"),
        &opts,
    )
    .unwrap();
    let LtiMessage::DeepLinking(dl) = dl else {
        panic!("expected deep linking")
    };
    assert_eq!(dl.settings().data.as_deref(), Some("909708"));
    assert_eq!(dl.settings().accept_multiple, Some(true));
    assert!(
        dl.deep_link_return_url()
            .ends_with("/deeplinkresponse.html")
    );
    assert!(dl.roles().is_instructor());

    let no_role = classify(find("valid/Launch Student With No Role"), &opts).unwrap();
    assert!(no_role.roles().is_empty());
    assert_eq!(
        no_role.claims().roles.as_deref(),
        Some(&[String::new()][..])
    );

    let short = classify(find("valid/Launch Instructor with Short Role Value"), &opts).unwrap();
    assert!(short.roles().is_instructor());

    let unknown = classify(find("valid/Launch Instructor with Unknown Role"), &opts).unwrap();
    let role = unknown.roles().iter().next().unwrap();
    assert_eq!(
        role.as_str(),
        "http://purl.imsglobal.org/vocab/lis/v2/unknown/unknown#Helper"
    );
    assert_eq!(role.vocabulary(), None);
    assert!(!unknown.roles().is_instructor_or_higher());

    let LtiMessage::ResourceLink(rl) =
        classify(find("valid/Launch LTI 1.3 Message as Student"), &opts).unwrap()
    else {
        panic!("expected resource link")
    };
    assert!(rl.roles().is_learner() && !rl.roles().is_instructor());
    assert!(!rl.resource_link_id().is_empty());
}

#[test]
fn every_certification_payload_round_trips_without_loss() {
    for case in CASES {
        let original: Value = serde_json::from_str(case.payload).unwrap();
        let claims = IdTokenClaims::from_value(original.clone()).unwrap();
        let encoded = serde_json::to_value(&claims).unwrap();
        assert_eq!(
            encoded, original,
            "{}: serialisation changed the payload",
            case.folder
        );
        let again: IdTokenClaims = serde_json::from_value(encoded).unwrap();
        assert_eq!(again, claims, "{}", case.folder);
    }
}
