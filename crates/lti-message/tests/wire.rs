//! AGS and NRPS wire types: exact JSON names, omitted optionals, validation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lti_message::ags::{ActivityProgress, AgsResult, GradingProgress, LineItem, Score, media_type};
use lti_message::nrps::{MemberStatus, MembershipContainer};
use lti_message::{MessageError, Timestamp, uri};
use serde_json::json;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix_seconds(secs).unwrap()
}

#[test]
fn a_completed_fully_graded_score_serialises_with_exact_names() {
    let s =
        Score::completed_fully_graded("user-1", 8.5, 10.0, at(1_700_000_000)).with_comment("Good");
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({
            "userId": "user-1",
            "timestamp": "2023-11-14T22:13:20.000Z",
            "activityProgress": "Completed",
            "gradingProgress": "FullyGraded",
            "scoreGiven": 8.5,
            "scoreMaximum": 10.0,
            "comment": "Good"
        })
    );
    s.validate().unwrap();
}

#[test]
fn a_score_without_grade_omits_absent_optionals() {
    let s = Score::submitted_pending_manual("u", at(0));
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        json!({ "userId": "u", "timestamp": "1970-01-01T00:00:00.000Z", "activityProgress": "Submitted", "gradingProgress": "PendingManual" })
    );
    let all_progress = [
        ActivityProgress::Initialized,
        ActivityProgress::Started,
        ActivityProgress::InProgress,
        ActivityProgress::Submitted,
        ActivityProgress::Completed,
    ];
    let names: Vec<String> = all_progress
        .iter()
        .map(|p| {
            serde_json::to_value(p)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "Initialized",
            "Started",
            "InProgress",
            "Submitted",
            "Completed"
        ]
    );
    let grading = [
        GradingProgress::FullyGraded,
        GradingProgress::Pending,
        GradingProgress::PendingManual,
        GradingProgress::Failed,
        GradingProgress::NotReady,
    ];
    let names: Vec<String> = grading
        .iter()
        .map(|p| {
            serde_json::to_value(p)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "FullyGraded",
            "Pending",
            "PendingManual",
            "Failed",
            "NotReady"
        ]
    );
}

#[test]
fn invalid_scores_are_refused_with_the_field_named() {
    let base = || {
        Score::new(
            "u",
            ActivityProgress::Completed,
            GradingProgress::FullyGraded,
            at(0),
        )
    };
    let cases = [
        (base().with_score(-1.0, 10.0), "score.scoreGiven"),
        (base().with_score(f64::NAN, 10.0), "score.scoreGiven"),
        (base().with_score(1.0, 0.0), "score.scoreMaximum"),
        (
            Score {
                score_given: Some(1.0),
                ..base()
            },
            "score.scoreMaximum",
        ),
        (
            Score {
                user_id: String::new(),
                ..base()
            },
            "score.userId",
        ),
    ];
    for (score, field) in cases {
        let err = score.validate().unwrap_err();
        assert!(
            matches!(err, MessageError::InvalidItem { what, .. } if what == field),
            "{field}: {err}"
        );
    }
}

#[test]
fn scores_with_unknown_progress_or_zoneless_timestamps_do_not_parse() {
    let bad_progress = json!({ "userId": "u", "timestamp": "2024-01-01T00:00:00Z", "activityProgress": "Done", "gradingProgress": "FullyGraded" });
    let err = serde_json::from_value::<Score>(bad_progress).unwrap_err();
    assert!(err.to_string().contains("unknown variant"), "{err}");
    let zoneless = json!({ "userId": "u", "timestamp": "2024-01-01T00:00:00", "activityProgress": "Completed", "gradingProgress": "FullyGraded" });
    let err = serde_json::from_value::<Score>(zoneless).unwrap_err();
    assert!(err.to_string().contains("RFC 3339"), "{err}");
}

#[test]
fn line_items_round_trip_with_vendor_extensions_and_validate() {
    let wire = json!({
        "id": "https://moodle.example.edu/mod/lti/services.php/2/lineitems/7/lineitem?type_id=1",
        "scoreMaximum": 100,
        "label": "Essay",
        "resourceLinkId": "5",
        "resourceId": "essay-1",
        "tag": "essay",
        "startDateTime": "2025-01-15T08:00:00-05:00",
        "endDateTime": "2025-02-15T23:59:59.999Z",
        "gradesReleased": true,
        "submissionReview": { "reviewableStatus": ["Submitted", "Completed"], "label": "Review", "url": "https://tool.example.com/review", "custom": { "a": "b" } },
        "https://canvas.instructure.com/lti/submission_type": { "type": "external_tool", "external_tool_url": "https://tool.example.com" }
    });
    let li: LineItem = serde_json::from_value(wire.clone()).unwrap();
    assert_eq!(
        li.start_date_time.as_ref().unwrap().unix_seconds(),
        1_736_946_000
    );
    assert_eq!(
        li.submission_review.as_ref().unwrap().reviewable_status,
        ["Submitted", "Completed"]
    );
    li.validate().unwrap();
    let back = serde_json::to_value(&li).unwrap();
    assert_eq!(
        back["https://canvas.instructure.com/lti/submission_type"],
        wire["https://canvas.instructure.com/lti/submission_type"]
    );
    assert_eq!(serde_json::from_value::<LineItem>(back).unwrap(), li);

    assert_eq!(
        serde_json::to_value(LineItem::new("Quiz", 10.0)).unwrap(),
        json!({ "scoreMaximum": 10.0, "label": "Quiz" })
    );
    let err = LineItem::new(" ", 10.0).validate().unwrap_err();
    assert!(matches!(
        err,
        MessageError::InvalidItem {
            what: "lineItem.label",
            ..
        }
    ));
    let err = LineItem::new("Quiz", -1.0).validate().unwrap_err();
    assert!(matches!(
        err,
        MessageError::InvalidItem {
            what: "lineItem.scoreMaximum",
            ..
        }
    ));
    let mut backwards = LineItem::new("Quiz", 10.0);
    backwards.start_date_time = Some(Timestamp::parse("2026-02-01T00:00:00Z").unwrap());
    backwards.end_date_time = Some(Timestamp::parse("2026-01-01T00:00:00Z").unwrap());
    match backwards.validate().unwrap_err() {
        MessageError::InvalidItem { what, reason } => {
            assert_eq!(what, "lineItem.endDateTime");
            assert!(reason.contains("after startDateTime"), "{reason}");
        }
        other => panic!("expected invalid_item, found {other:?}"),
    }
    backwards.end_date_time = backwards.start_date_time.clone();
    backwards.validate().unwrap();
}

#[test]
fn results_parse_and_default_their_maximum_to_one() {
    let r: AgsResult = serde_json::from_value(json!({
        "id": "https://lms.example.edu/lineitems/1/results/5",
        "scoreOf": "https://lms.example.edu/lineitems/1",
        "userId": "5", "resultScore": 0.83, "comment": "ok", "scoringUserId": "9"
    }))
    .unwrap();
    assert_eq!(r.maximum_or_default(), 1.0);
    assert_eq!(r.scoring_user_id.as_deref(), Some("9"));
    assert!(
        !serde_json::to_value(&r)
            .unwrap()
            .as_object()
            .unwrap()
            .contains_key("resultMaximum")
    );
}

#[test]
fn membership_containers_parse_statuses_roles_and_message_sections() {
    let c: MembershipContainer = serde_json::from_value(json!({
        "id": "https://lms.example.edu/api/lti/courses/1/names_and_roles",
        "context": { "id": "ctx-1", "label": "BIO", "title": "Biology" },
        "members": [
            {
                "user_id": "u1",
                "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
                "name": "Ines", "email": "i@example.edu", "lti11_legacy_user_id": "abc",
                "message": [{
                    uri::MESSAGE_TYPE: "LtiResourceLinkRequest",
                    uri::CUSTOM: { "x": "1" },
                    "https://purl.imsglobal.org/spec/lti-bo/claim/basicoutcome": {
                        "lis_result_sourcedid": "s1", "lis_outcome_service_url": "https://lms.example.edu/outcomes"
                    },
                    "locale": "en"
                }]
            },
            { "user_id": "u2", "status": "Inactive", "roles": ["Learner"] },
            { "user_id": "u3", "status": "Deleted", "roles": [] }
        ]
    }))
    .unwrap();
    assert_eq!(c.context.as_ref().unwrap().id, "ctx-1");
    let statuses: Vec<MemberStatus> = c.members.iter().map(|m| m.status).collect();
    assert_eq!(
        statuses,
        [
            MemberStatus::Active,
            MemberStatus::Inactive,
            MemberStatus::Deleted
        ]
    );
    assert!(c.members[0].parsed_roles().is_instructor());
    assert!(c.members[1].parsed_roles().is_learner());
    let msg = &c.members[0].message[0];
    assert_eq!(msg.message_type.as_deref(), Some("LtiResourceLinkRequest"));
    assert_eq!(
        msg.basic_outcome
            .as_ref()
            .unwrap()
            .lis_result_sourcedid
            .as_deref(),
        Some("s1")
    );
    let back = serde_json::to_value(&c).unwrap();
    assert_eq!(
        serde_json::from_value::<MembershipContainer>(back).unwrap(),
        c
    );
    let err = serde_json::from_value::<MembershipContainer>(
        json!({ "members": [{ "user_id": "u", "status": "Gone" }] }),
    )
    .unwrap_err();
    assert!(err.to_string().contains("Gone"), "{err}");
}

#[test]
fn media_type_constants_are_exact() {
    assert_eq!(media_type::SCORE, "application/vnd.ims.lis.v1.score+json");
    assert_eq!(
        media_type::LINE_ITEM,
        "application/vnd.ims.lis.v2.lineitem+json"
    );
    assert_eq!(
        media_type::LINE_ITEM_CONTAINER,
        "application/vnd.ims.lis.v2.lineitemcontainer+json"
    );
    assert_eq!(
        media_type::RESULT_CONTAINER,
        "application/vnd.ims.lis.v2.resultcontainer+json"
    );
    assert_eq!(
        lti_message::nrps::media_type::MEMBERSHIP_CONTAINER,
        "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
    );
}
