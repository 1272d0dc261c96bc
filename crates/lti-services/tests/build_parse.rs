//! The pure halves: every `build_*_request` and `parse_*_response`, without
//! a network.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, LINK};
use http::{Method, Response, StatusCode};
use lti_message::Timestamp;
use lti_message::ags::{LineItem, Score, media_type};
use lti_message::nrps::{MemberStatus, media_type as nrps_media};
use lti_services::ags::{self, CANVAS_SUBMISSION_EXTENSION};
use lti_services::nrps;
use lti_services::{
    CanvasSubmission, LineItemsQuery, MembershipsQuery, QuirkProfile, ResultsQuery, ServiceError,
};
use serde_json::{Value, json};

const ITEMS: &str = "https://lms.test/api/lti/courses/1/line_items";
const ITEM: &str = "https://lms.test/api/lti/courses/1/line_items/7";
const MOODLE_ITEM: &str =
    "https://moodle.test/mod/lti/services.php/2/lineitems/5/lineitem?type_id=3";

fn ts() -> Timestamp {
    Timestamp::parse("2024-03-01T12:00:00.250+01:00").unwrap()
}

fn response(status: u16, body: &str) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(body.to_owned()));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r
}

fn header(req: &http::Request<Bytes>, name: http::header::HeaderName) -> Option<&str> {
    req.headers().get(name).map(|v| v.to_str().unwrap())
}

fn body_json(req: &http::Request<Bytes>) -> Value {
    serde_json::from_slice(req.body()).unwrap()
}

#[test]
fn list_line_items_sends_every_filter_and_accepts_the_container_type() {
    let q = LineItemsQuery::new()
        .resource_link_id("rl 1")
        .resource_id("quiz&1")
        .tag("final")
        .limit(25);
    let req = ags::build_list_line_items_request(ITEMS, &q).unwrap();
    assert_eq!(req.method(), Method::GET);
    assert_eq!(
        req.uri().to_string(),
        format!("{ITEMS}?resource_link_id=rl+1&resource_id=quiz%261&tag=final&limit=25")
    );
    assert_eq!(header(&req, ACCEPT), Some(media_type::LINE_ITEM_CONTAINER));
    assert!(req.body().is_empty());
    let bare = ags::build_list_line_items_request(ITEMS, &LineItemsQuery::new()).unwrap();
    assert_eq!(bare.uri().to_string(), ITEMS);
}

#[test]
fn line_item_pages_keep_vendor_members_and_their_next_link() {
    let mut resp = response(
        200,
        r#"[{"id":"https://lms.test/li/1","label":"A","scoreMaximum":10,
             "https://canvas.instructure.com/lti/submission_type":{"type":"external_tool"}},
            {"id":"https://lms.test/li/2","label":"B","scoreMaximum":5.5,"resourceId":"r2","tag":"t",
             "startDateTime":"2024-01-01T00:00:00Z","gradesReleased":true}]"#,
    );
    resp.headers_mut().insert(
        LINK,
        "<https://lms.test/li?page=2>; rel=\"next\", <https://lms.test/li?page=9>; rel=\"last\""
            .parse()
            .unwrap(),
    );
    let page = ags::parse_line_items_response(ITEMS, resp).unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.next(), Some("https://lms.test/li?page=2"));
    assert!(
        page.items[0]
            .extra
            .contains_key("https://canvas.instructure.com/lti/submission_type")
    );
    assert_eq!(page.items[1].resource_id.as_deref(), Some("r2"));
    assert_eq!(page.items[1].grades_released, Some(true));
}

#[test]
fn get_create_update_delete_use_the_right_methods_and_media_types() {
    let get = ags::build_get_line_item_request(MOODLE_ITEM).unwrap();
    assert_eq!(get.method(), Method::GET);
    assert_eq!(get.uri().to_string(), MOODLE_ITEM);
    assert_eq!(header(&get, ACCEPT), Some(media_type::LINE_ITEM));

    let mut item = LineItem::new("Quiz", 10.0);
    item.id = Some("https://ignored.test/x".to_owned());
    item.resource_id = Some("quiz-1".to_owned());
    item.end_date_time = Some(ts());
    let create = ags::build_create_line_item_request(ITEMS, &item).unwrap();
    assert_eq!(create.method(), Method::POST);
    assert_eq!(create.uri().to_string(), ITEMS);
    assert_eq!(header(&create, CONTENT_TYPE), Some(media_type::LINE_ITEM));
    assert_eq!(header(&create, ACCEPT), Some(media_type::LINE_ITEM));
    let body = body_json(&create);
    assert!(body.get("id").is_none(), "the platform assigns the id");
    assert_eq!(body["scoreMaximum"], json!(10.0));
    assert_eq!(body["resourceId"], json!("quiz-1"));
    assert_eq!(body["endDateTime"], json!("2024-03-01T12:00:00.250+01:00"));

    item.id = Some(MOODLE_ITEM.to_owned());
    let update = ags::build_update_line_item_request(&item).unwrap();
    assert_eq!(update.method(), Method::PUT);
    assert_eq!(update.uri().to_string(), MOODLE_ITEM);
    assert_eq!(header(&update, CONTENT_TYPE), Some(media_type::LINE_ITEM));
    assert_eq!(body_json(&update)["id"], json!(MOODLE_ITEM));

    let delete = ags::build_delete_line_item_request(ITEM).unwrap();
    assert_eq!(delete.method(), Method::DELETE);
    assert!(delete.body().is_empty());
    ags::parse_delete_line_item_response(ITEM, response(204, "")).unwrap();
}

#[test]
fn invalid_line_items_and_updates_without_id_are_refused_before_sending() {
    let err = ags::build_create_line_item_request(ITEMS, &LineItem::new("", 10.0)).unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::InvalidInput {
                what: "line item",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "invalid_input");
    let err = ags::build_create_line_item_request(ITEMS, &LineItem::new("Quiz", 0.0)).unwrap_err();
    assert!(
        err.to_string().contains("expected a number > 0, found 0"),
        "{err}"
    );
    let err = ags::build_update_line_item_request(&LineItem::new("Quiz", 1.0)).unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::InvalidArgument {
                what: "line item",
                ..
            }
        ),
        "{err:?}"
    );
    let err =
        ags::build_create_line_item_request("lineitems", &LineItem::new("Quiz", 1.0)).unwrap_err();
    assert!(matches!(err, ServiceError::InvalidUrl { .. }), "{err:?}");
}

#[test]
fn created_line_items_must_come_back_with_an_id() {
    let ok = ags::parse_create_line_item_response(
        ITEMS,
        response(
            201,
            &format!(r#"{{"id":"{ITEM}","label":"Q","scoreMaximum":1}}"#),
        ),
    )
    .unwrap();
    assert_eq!(ok.id.as_deref(), Some(ITEM));
    let err = ags::parse_create_line_item_response(
        ITEMS,
        response(201, r#"{"label":"Q","scoreMaximum":1}"#),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::InvalidResponse {
                expected: "the created line item with its id",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn unreadable_bodies_are_invalid_responses_without_the_body() {
    let secret_body = r#"{"label": "Q", "scoreMaximum": "not a number", "token": "s3cr3t"}"#;
    let err = ags::parse_line_item_response(ITEM, response(200, secret_body)).unwrap_err();
    assert_eq!(err.code(), "invalid_response");
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    let err = ags::parse_line_items_response(ITEMS, response(200, "{}")).unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::InvalidResponse {
                operation: "list line items",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn scores_go_to_the_scores_path_before_the_query_with_the_score_media_type() {
    let score =
        Score::completed_fully_graded("learner-1", 7.5, 10.0, ts()).with_comment("Well done");
    let req = ags::build_score_request(MOODLE_ITEM, &score, QuirkProfile::Moodle).unwrap();
    assert_eq!(req.method(), Method::POST);
    assert_eq!(
        req.uri().to_string(),
        "https://moodle.test/mod/lti/services.php/2/lineitems/5/lineitem/scores?type_id=3"
    );
    assert_eq!(header(&req, CONTENT_TYPE), Some(media_type::SCORE));
    let body = body_json(&req);
    assert_eq!(body["userId"], json!("learner-1"));
    assert_eq!(body["scoreGiven"], json!(7.5));
    assert_eq!(body["scoreMaximum"], json!(10.0));
    assert_eq!(body["activityProgress"], json!("Completed"));
    assert_eq!(body["gradingProgress"], json!("FullyGraded"));
    assert_eq!(body["comment"], json!("Well done"));
    assert_eq!(body["timestamp"], json!("2024-03-01T12:00:00.250+01:00"));
    assert_eq!(ags::scores_url(ITEM).unwrap(), format!("{ITEM}/scores"));
    assert_eq!(
        ags::results_url(MOODLE_ITEM).unwrap(),
        "https://moodle.test/mod/lti/services.php/2/lineitems/5/lineitem/results?type_id=3"
    );
    for status in [200, 201, 204] {
        ags::parse_score_response(ITEM, response(status, "")).unwrap();
    }
}

#[test]
fn invalid_scores_are_refused_with_the_field_named() {
    let mut s = Score::completed_fully_graded("u", 1.0, 10.0, ts());
    s.score_maximum = None;
    let err = ags::build_score_request(ITEM, &s, QuirkProfile::Generic).unwrap_err();
    assert!(
        matches!(err, ServiceError::InvalidInput { what: "score", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("scoreMaximum"), "{err}");
    let empty_user = Score::completed_fully_graded("", 1.0, 10.0, ts());
    let err = ags::build_score_request(ITEM, &empty_user, QuirkProfile::Generic).unwrap_err();
    assert!(err.to_string().contains("userId"), "{err}");
    let negative = Score::completed_fully_graded("u", -1.0, 10.0, ts());
    let err = ags::build_score_request(ITEM, &negative, QuirkProfile::Generic).unwrap_err();
    assert!(err.to_string().contains("scoreGiven"), "{err}");
}

#[test]
fn the_canvas_submission_extension_is_sent_only_under_the_canvas_profile() {
    let score = CanvasSubmission::new()
        .submission("online_url", "https://tool.test/work/1")
        .new_submission(true)
        .submitted_at(ts())
        .attach(Score::submitted_pending_manual("u1", ts()))
        .unwrap();
    let mut score = score;
    score
        .extra
        .insert("https://vendor.test/other".to_owned(), json!(1));

    let canvas = body_json(&ags::build_score_request(ITEM, &score, QuirkProfile::Canvas).unwrap());
    let ext = &canvas[CANVAS_SUBMISSION_EXTENSION];
    assert_eq!(ext["submission_type"], json!("online_url"));
    assert_eq!(ext["submission_data"], json!("https://tool.test/work/1"));
    assert_eq!(ext["new_submission"], json!(true));
    assert_eq!(ext["submitted_at"], json!("2024-03-01T12:00:00.250+01:00"));
    assert_eq!(canvas["https://vendor.test/other"], json!(1));

    let generic =
        body_json(&ags::build_score_request(ITEM, &score, QuirkProfile::Generic).unwrap());
    assert!(generic.get(CANVAS_SUBMISSION_EXTENSION).is_none());
    assert_eq!(generic["https://vendor.test/other"], json!(1));

    let schoology =
        body_json(&ags::build_score_request(ITEM, &score, QuirkProfile::Schoology).unwrap());
    let keys: Vec<&String> = schoology.as_object().unwrap().keys().collect();
    assert!(keys.iter().all(|k| !k.starts_with("https://")), "{keys:?}");
}

#[test]
fn results_are_listed_by_user_and_limit_before_and_after_an_existing_query() {
    let req =
        ags::build_list_results_request(MOODLE_ITEM, &ResultsQuery::new().user_id("u 1").limit(10))
            .unwrap();
    assert_eq!(
        req.uri().to_string(),
        "https://moodle.test/mod/lti/services.php/2/lineitems/5/lineitem/results?type_id=3&user_id=u+1&limit=10"
    );
    assert_eq!(header(&req, ACCEPT), Some(media_type::RESULT_CONTAINER));
    let page = ags::parse_results_response(
        ITEM,
        response(
            200,
            r#"[{"id":"https://lms.test/r/1","scoreOf":"https://lms.test/li/7","userId":"u1",
                 "resultScore":0.8,"comment":"ok","https://vendor.test/x":true},
                {"userId":"u2"}]"#,
        ),
    )
    .unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].result_score, Some(0.8));
    assert_eq!(page.items[1].maximum_or_default(), 1.0);
    assert_eq!(page.next(), None);
}

#[test]
fn platform_refusals_carry_status_redacted_url_and_message() {
    let url = "https://lms.test/li/7/scores?type_id=3&access_token=abc";
    let err =
        ags::parse_score_response(url, response(400, "Incorrect score received")).unwrap_err();
    match &err {
        ServiceError::Platform {
            operation,
            status,
            url,
            message,
        } => {
            assert_eq!(*operation, "post score");
            assert_eq!(*status, 400);
            assert_eq!(
                url,
                "https://lms.test/li/7/scores?type_id=3&access_token=***"
            );
            assert_eq!(message.as_deref(), Some("Incorrect score received"));
        }
        other => panic!("expected a platform error, found {other:?}"),
    }
    assert!(!err.to_string().contains("abc"), "{err}");
    assert_eq!(
        err.to_string(),
        "platform refused post score at https://lms.test/li/7/scores?type_id=3&access_token=***: expected a 2xx status, found 400 (Incorrect score received)"
    );
    let err = ags::parse_line_item_response(
        ITEM,
        response(
            403,
            r#"{"errors":[{"message":"Insufficient permissions"}]}"#,
        ),
    )
    .unwrap_err();
    assert_eq!(err.platform_status(), Some(403));
    assert!(
        err.to_string().ends_with("(Insufficient permissions)"),
        "{err}"
    );
    let err = ags::parse_delete_line_item_response(ITEM, response(500, "")).unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::Platform {
                status: 500,
                message: None,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn memberships_request_sends_role_limit_rlid_and_accepts_nrps_v2() {
    let q = MembershipsQuery::new()
        .role("http://purl.imsglobal.org/vocab/lis/v2/membership#Learner")
        .limit(50)
        .rlid("link-1");
    let req = nrps::build_memberships_request("https://lms.test/api/ctx/1/names_and_roles?x=1", &q)
        .unwrap();
    assert_eq!(req.method(), Method::GET);
    assert_eq!(
        req.uri().to_string(),
        "https://lms.test/api/ctx/1/names_and_roles?x=1&role=http%3A%2F%2Fpurl.imsglobal.org%2Fvocab%2Flis%2Fv2%2Fmembership%23Learner&limit=50&rlid=link-1"
    );
    assert_eq!(header(&req, ACCEPT), Some(nrps_media::MEMBERSHIP_CONTAINER));
    let diff =
        nrps::build_differences_request("https://lms.test/api/ctx/1/names_and_roles?since=9")
            .unwrap();
    assert_eq!(
        diff.uri().to_string(),
        "https://lms.test/api/ctx/1/names_and_roles?since=9"
    );
    assert_eq!(
        header(&diff, ACCEPT),
        Some(nrps_media::MEMBERSHIP_CONTAINER)
    );
    let err = nrps::build_differences_request("since=9").unwrap_err();
    assert_eq!(err.code(), "invalid_url");
}

#[test]
fn membership_pages_are_lenient_with_missing_and_extra_fields() {
    let mut resp = response(
        200,
        r#"{"id":"https://lms.test/m","context":{"id":"c1","title":"Course","extra":1},
            "members":[
              {"user_id":"a","roles":["Learner"]},
              {"user_id":"b","status":"Inactive","roles":[],"lti11_legacy_user_id":"old-b",
               "https://vendor.test/flag":true,"picture":"https://p.test/b.png"},
              {"user_id":"c","status":"Deleted"},
              {"user_id":"d","roles":["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
               "message":[{"https://purl.imsglobal.org/spec/lti/claim/message_type":"LtiResourceLinkRequest",
                           "https://purl.imsglobal.org/spec/lti/claim/custom":{"x":"1"},
                           "https://purl.imsglobal.org/spec/lti-bo/claim/basicoutcome":
                             {"lis_result_sourcedid":"s","lis_outcome_service_url":"https://lms.test/o"},
                           "locale":"en"}]}
            ],
            "unknown_top_level":[1,2]}"#,
    );
    resp.headers_mut().insert(
        LINK,
        "<https://lms.test/m?p=2>; rel=\"next\", </m?since=5>; rel=\"differences\""
            .parse()
            .unwrap(),
    );
    let page = nrps::parse_memberships_response("https://lms.test/m", resp).unwrap();
    let m = &page.container.members;
    assert_eq!(m.len(), 4);
    assert_eq!(m[0].status, MemberStatus::Active);
    assert_eq!(m[1].status, MemberStatus::Inactive);
    assert_eq!(m[1].lti11_legacy_user_id.as_deref(), Some("old-b"));
    assert!(m[1].extra.contains_key("https://vendor.test/flag"));
    assert_eq!(m[2].status, MemberStatus::Deleted);
    assert!(m[2].roles.is_empty());
    assert_eq!(m[3].message.len(), 1);
    assert_eq!(page.next(), Some("https://lms.test/m?p=2"));
    assert_eq!(page.differences(), Some("/m?since=5"));
    assert_eq!(page.container.context.as_ref().unwrap().id, "c1");

    let err = nrps::parse_memberships_response(
        "https://lms.test/m",
        response(200, r#"{"members":[{"roles":[]}]}"#),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::InvalidResponse {
                operation: "list memberships",
                ..
            }
        ),
        "{err:?}"
    );
    let err = nrps::parse_differences_response(
        "https://lms.test/m",
        response(401, r#"{"error":"invalid_token"}"#),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::Platform {
                operation: "membership differences",
                status: 401,
                ..
            }
        ),
        "{err:?}"
    );
}

mod construction {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use lti_http::{FnClient, ServiceClient};
    use lti_jose::{Algorithm, SigningKey};
    use lti_message::IdTokenClaims;
    use lti_message::ags::{AgsEndpointClaim, LineItem, scope};
    use lti_message::nrps::NrpsClaim;
    use lti_services::{LineItemsQuery, LtiServices, ServiceError, ServiceRegistration};

    const TOOL_PEM: &str = include_str!("../../../tests/fixtures/lti-services/tool.pem");

    fn setup() -> (LtiServices, ServiceRegistration, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let http = FnClient::new(move |_req: http::Request<bytes::Bytes>| {
            seen.fetch_add(1, Ordering::SeqCst);
            async { Ok(http::Response::new(bytes::Bytes::new())) }
        });
        let services = LtiServices::new(Arc::new(ServiceClient::new(Arc::new(http))));
        let key = Arc::new(SigningKey::from_pem(TOOL_PEM, Algorithm::RS256).unwrap());
        let reg = ServiceRegistration::new(
            "https://lms.test",
            "client-1",
            "https://lms.test/token",
            key,
        );
        (services, reg, calls)
    }

    fn claim(lineitems: Option<&str>) -> AgsEndpointClaim {
        AgsEndpointClaim {
            scope: vec![scope::LINE_ITEM.to_owned(), scope::SCORE.to_owned()],
            lineitems: lineitems.map(str::to_owned),
            ..AgsEndpointClaim::default()
        }
    }

    #[test]
    fn claims_with_unusable_urls_are_refused() {
        let (services, reg, _) = setup();
        let err = services
            .ags(&reg, &claim(Some("/relative/lineitems")))
            .unwrap_err();
        assert!(
            matches!(
                err,
                ServiceError::InvalidUrl {
                    what: "the AGS lineitems URL",
                    ..
                }
            ),
            "{err:?}"
        );
        let mut bad_item = claim(None);
        bad_item.lineitem = Some("javascript:alert(1)".to_owned());
        let err = services.ags(&reg, &bad_item).unwrap_err();
        assert!(
            matches!(
                err,
                ServiceError::InvalidUrl {
                    what: "the AGS lineitem URL",
                    ..
                }
            ),
            "{err:?}"
        );
        let err = services.nrps(&reg, &NrpsClaim::default()).unwrap_err();
        assert!(
            matches!(err, ServiceError::MissingEndpoint { .. }),
            "{err:?}"
        );
        assert_eq!(err.status_hint(), 400);
        let nrps = NrpsClaim {
            context_memberships_url: Some("ftp://lms.test/m".to_owned()),
            ..NrpsClaim::default()
        };
        assert_eq!(
            services.nrps(&reg, &nrps).unwrap_err().code(),
            "invalid_url"
        );
    }

    #[test]
    fn launches_without_the_service_claims_are_missing_endpoints() {
        let (services, reg, _) = setup();
        let launch = IdTokenClaims::default();
        let err = services.ags_from_launch(&reg, &launch).unwrap_err();
        assert!(
            matches!(
                err,
                ServiceError::MissingEndpoint {
                    what: "the AGS endpoint claim"
                }
            ),
            "{err:?}"
        );
        let err = services.nrps_from_launch(&reg, &launch).unwrap_err();
        assert!(
            matches!(
                err,
                ServiceError::MissingEndpoint {
                    what: "the NRPS claim"
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("missing endpoint: expected the launch to carry the NRPS claim")
        );
    }

    #[tokio::test]
    async fn bad_arguments_fail_before_any_request() {
        let (services, reg, calls) = setup();
        let ags = services
            .ags(&reg, &claim(Some("https://lms.test/li")))
            .unwrap();
        let err = ags
            .find_or_create_line_item("", &LineItem::new("Quiz", 1.0))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ServiceError::InvalidArgument {
                    what: "resource_id",
                    ..
                }
            ),
            "{err:?}"
        );
        let mut spec = LineItem::new("Quiz", 1.0);
        spec.resource_id = Some("other".to_owned());
        let err = ags
            .find_or_create_line_item("quiz", &spec)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ServiceError::InvalidArgument {
                    what: "line item resourceId",
                    ..
                }
            ),
            "{err:?}"
        );
        let no_container = services.ags(&reg, &claim(None)).unwrap();
        let err = no_container
            .list_line_items(&LineItemsQuery::new())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                ServiceError::MissingEndpoint {
                    what: "the AGS lineitems URL"
                }
            ),
            "{err:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn service_urls_off_the_registrations_origins_are_refused_before_any_request() {
        let (services, reg, calls) = setup();
        // The issuer's and the token endpoint's origins are admitted.
        let auth_reg = ServiceRegistration::new(
            "https://lms.test",
            "client-1",
            "https://auth.lms.test/token",
            reg.token_endpoint().signing_key.clone(),
        );
        assert!(
            services
                .ags(&auth_reg, &claim(Some("https://auth.lms.test/li")))
                .is_ok()
        );
        for url in [
            "https://intranet.test/li",
            "https://lms.test:8443/li",
            "http://lms.test/li",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let err = services.ags(&reg, &claim(Some(url))).unwrap_err();
            assert_eq!(err.code(), "egress_refused", "{url}: {err:?}");
            assert_eq!(err.status_hint(), 502);
            let message = err.to_string();
            assert!(
                message.contains("expected a URL on one of the origins https://lms.test,"),
                "{message}"
            );
            let mut bound = claim(Some("https://lms.test/li"));
            bound.lineitem = Some(format!("{url}/1"));
            assert_eq!(
                services.ags(&reg, &bound).unwrap_err().code(),
                "egress_refused"
            );
            let nrps = NrpsClaim {
                context_memberships_url: Some(url.to_owned()),
                ..NrpsClaim::default()
            };
            assert_eq!(
                services.nrps(&reg, &nrps).unwrap_err().code(),
                "egress_refused"
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn debug_output_names_urls_and_scopes_but_no_key_material() {
        let (services, reg, _) = setup();
        let ags = services
            .ags(&reg, &claim(Some("https://lms.test/li?token=abc")))
            .unwrap();
        let text = format!("{ags:?} {reg:?} {services:?}");
        assert!(text.contains("https://lms.test/li?token=***"), "{text}");
        assert!(!text.contains("abc"), "{text}");
        assert!(!text.contains("PRIVATE"), "{text}");
        assert_eq!(reg.registration_key(), "https://lms.test client-1");
        assert_eq!(ags.granted_scopes().len(), 2);
    }
}

mod link_following {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use lti_http::{EgressPolicy, FnClient, ServiceClient};
    use lti_jose::{Algorithm, SigningKey};
    use lti_message::nrps::NrpsClaim;
    use lti_services::{
        LtiServices, MembershipsQuery, NrpsClient, ServiceError, ServiceRegistration,
    };

    const TOOL_PEM: &str = include_str!("../../../tests/fixtures/lti-services/tool.pem");

    /// A platform at lms.test whose pages link to `next_host`; counts
    /// requests that reach evil.test.
    fn client(
        next_host: &'static str,
        services: impl FnOnce(LtiServices) -> LtiServices,
    ) -> (NrpsClient, Arc<AtomicUsize>) {
        let evil = Arc::new(AtomicUsize::new(0));
        let seen = evil.clone();
        let http = FnClient::new(move |req: http::Request<Bytes>| {
            let host = req.uri().host().unwrap_or_default().to_owned();
            let path = req.uri().path().to_owned();
            let query = req.uri().query().unwrap_or_default().to_owned();
            if host == "evil.test" {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            async move {
                let mut resp = if path == "/token" {
                    http::Response::new(Bytes::from_static(
                        br#"{"access_token":"tok","token_type":"Bearer","expires_in":3600}"#,
                    ))
                } else {
                    let body =
                        format!(r#"{{"members":[{{"user_id":"{host}{query}","roles":[]}}]}}"#);
                    http::Response::new(Bytes::from(body))
                };
                if path == "/m" && !query.contains("page=") {
                    let link = format!(
                        "<https://{next_host}/m?page=2>; rel=\"next\", <https://{next_host}/d>; rel=\"differences\""
                    );
                    resp.headers_mut()
                        .insert(http::header::LINK, link.parse().unwrap());
                }
                Ok(resp)
            }
        });
        let key = Arc::new(SigningKey::from_pem(TOOL_PEM, Algorithm::RS256).unwrap());
        let reg = ServiceRegistration::new("https://lms.test", "c", "https://lms.test/token", key);
        let claim = NrpsClaim {
            context_memberships_url: Some("https://lms.test/m".to_owned()),
            ..NrpsClaim::default()
        };
        let services = services(LtiServices::new(Arc::new(ServiceClient::new(Arc::new(
            http,
        )))));
        (services.nrps(&reg, &claim).unwrap(), evil)
    }

    #[tokio::test]
    async fn links_to_another_origin_are_refused_and_never_receive_the_token() {
        let (nrps, evil) = client("evil.test", |s| s);
        let err = nrps
            .list_members(&MembershipsQuery::new())
            .await
            .unwrap_err();
        match &err {
            ServiceError::CrossOriginLink { expected, found } => {
                assert_eq!(expected, "https://lms.test");
                assert_eq!(found, "https://evil.test/m?page=2");
            }
            other => panic!("expected cross_origin_link, found {other:?}"),
        }
        assert_eq!(err.code(), "cross_origin_link");
        let err = nrps
            .fetch_differences("https://evil.test/d")
            .await
            .unwrap_err();
        assert_eq!(err.code(), "cross_origin_link");
        assert_eq!(evil.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn cross_origin_links_are_followed_only_when_explicitly_allowed() {
        // Allowing cross-origin links does not lift the egress policy: the
        // other origin must also be admitted by it.
        let (nrps, evil) = client("evil.test", LtiServices::allow_cross_origin_links);
        let err = nrps
            .list_members(&MembershipsQuery::new())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "egress_refused", "{err:?}");
        assert_eq!(err.status_hint(), 502);
        assert_eq!(evil.load(Ordering::SeqCst), 0);
        let (nrps, evil) = client("evil.test", |s| {
            s.allow_cross_origin_links().with_egress_policy(
                EgressPolicy::new()
                    .allow_origin("https://evil.test")
                    .unwrap(),
            )
        });
        let roster = nrps.list_members(&MembershipsQuery::new()).await.unwrap();
        assert_eq!(roster.members.len(), 2);
        assert_eq!(
            roster.differences_url.as_deref(),
            Some("https://evil.test/d")
        );
        assert_eq!(evil.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn listings_stop_at_the_page_cap() {
        let (nrps, _) = client("lms.test", |s| s.with_max_pages(1));
        let err = nrps
            .list_members(&MembershipsQuery::new())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "page_limit_exceeded", "{err:?}");
        let (nrps, _) = client("lms.test", |s| s);
        let roster = nrps.list_members(&MembershipsQuery::new()).await.unwrap();
        assert_eq!(roster.pages, 2);
        assert_eq!(roster.members[1].user_id, "lms.testpage=2");
    }
}

mod item_url_origins {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use lti_http::{EgressPolicy, FnClient, ServiceClient};
    use lti_jose::{Algorithm, SigningKey};
    use lti_message::Timestamp;
    use lti_message::ags::{AgsEndpointClaim, LineItem, Score, scope};
    use lti_services::{AgsClient, LtiServices, ResultsQuery, ServiceError, ServiceRegistration};

    const TOOL_PEM: &str = include_str!("../../../tests/fixtures/lti-services/tool.pem");

    /// An AGS client for a launch whose claim names `lineitems` / `lineitem`, and
    /// the "host path" of every request that reached the network.
    fn client(
        lineitems: Option<&str>,
        lineitem: Option<&str>,
        services: impl FnOnce(LtiServices) -> LtiServices,
    ) -> (AgsClient, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let http = FnClient::new(move |req: http::Request<Bytes>| {
            let host = req.uri().host().unwrap_or_default().to_owned();
            let path = req.uri().path().to_owned();
            log.lock().unwrap().push(format!("{host}{path}"));
            let method = req.method().clone();
            let url = req.uri().to_string();
            async move {
                let (status, ct, body) = if path == "/token" {
                    (
                        200,
                        "application/json",
                        r#"{"access_token":"tok","token_type":"Bearer","expires_in":3600}"#
                            .to_owned(),
                    )
                } else if path.ends_with("/scores") || method == http::Method::DELETE {
                    (204, "text/plain", String::new())
                } else if path.ends_with("/results") {
                    (
                        200,
                        "application/vnd.ims.lis.v2.resultcontainer+json",
                        "[]".to_owned(),
                    )
                } else {
                    (
                        200,
                        "application/vnd.ims.lis.v2.lineitem+json",
                        format!(r#"{{"id":"{url}","label":"Quiz","scoreMaximum":10}}"#),
                    )
                };
                let mut resp = http::Response::new(Bytes::from(body));
                *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
                resp.headers_mut()
                    .insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
                Ok(resp)
            }
        });
        let key = Arc::new(SigningKey::from_pem(TOOL_PEM, Algorithm::RS256).unwrap());
        let reg = ServiceRegistration::new("https://lms.test", "c", "https://lms.test/token", key);
        let claim = AgsEndpointClaim {
            scope: vec![
                scope::LINE_ITEM.to_owned(),
                scope::SCORE.to_owned(),
                scope::RESULT_READONLY.to_owned(),
            ],
            lineitems: lineitems.map(str::to_owned),
            lineitem: lineitem.map(str::to_owned),
            ..AgsEndpointClaim::default()
        };
        let services = services(LtiServices::new(Arc::new(ServiceClient::new(Arc::new(
            http,
        )))));
        (services.ags(&reg, &claim).unwrap(), seen)
    }

    fn score() -> Score {
        Score::completed_fully_graded("learner-1", 7.0, 10.0, Timestamp::now())
    }

    /// Every operation on the line item at `url`, each error's code.
    async fn each_operation(ags: &AgsClient, url: &str) -> Vec<Result<(), ServiceError>> {
        let mut item = LineItem::new("Quiz", 10.0);
        item.id = Some(url.to_owned());
        vec![
            ags.get_line_item(url).await.map(drop),
            ags.update_line_item(&item).await.map(drop),
            ags.post_score(url, &score()).await,
            ags.list_results(url, &ResultsQuery::new()).await.map(drop),
            ags.delete_line_item(url).await,
        ]
    }

    #[tokio::test]
    async fn line_item_urls_elsewhere_are_refused_before_the_token_travels() {
        let (ags, seen) = client(Some("https://lms.test/li"), None, |s| s);
        for result in each_operation(&ags, "https://evil.test/li/1").await {
            match result {
                Err(ServiceError::CrossOriginLink { expected, found }) => {
                    assert_eq!(expected, "https://lms.test");
                    assert!(found.starts_with("https://evil.test/li/1"), "{found}");
                }
                other => panic!("expected cross_origin_link, found {other:?}"),
            }
        }
        // Another port or scheme on the same host is another origin too.
        for url in ["https://lms.test:8443/li/1", "http://lms.test/li/1"] {
            let err = ags.post_score(url, &score()).await.unwrap_err();
            assert_eq!(err.code(), "cross_origin_link", "{url}");
        }
        assert!(
            seen.lock().unwrap().is_empty(),
            "{:?}",
            seen.lock().unwrap()
        );
    }

    #[tokio::test]
    async fn line_item_urls_on_the_claims_origin_are_called() {
        // The container's origin, and (a link bound to one line item with no
        // container) the lineitem's origin.
        for (lineitems, lineitem) in [
            (Some("https://lms.test/li"), None),
            (None, Some("https://lms.test/li/9")),
            (Some("https://other.test/li"), Some("https://lms.test/li/9")),
        ] {
            let (ags, seen) = client(lineitems, lineitem, |s| {
                s.with_egress_policy(
                    EgressPolicy::new()
                        .allow_origin("https://other.test")
                        .unwrap(),
                )
            });
            for result in each_operation(&ags, "https://lms.test/li/1?type_id=2").await {
                result.unwrap();
            }
            let seen = seen.lock().unwrap();
            assert!(
                seen.iter()
                    .filter(|r| !r.ends_with("/token"))
                    .all(|r| r.starts_with("lms.test/li/1")),
                "{seen:?}"
            );
            assert_eq!(seen.iter().filter(|r| !r.ends_with("/token")).count(), 5);
        }
    }

    #[tokio::test]
    async fn without_any_claim_url_a_line_item_url_is_refused() {
        let (ags, seen) = client(None, None, |s| s);
        let err = ags
            .post_score("https://lms.test/li/1", &score())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "missing_endpoint", "{err:?}");
        assert!(seen.lock().unwrap().is_empty());
    }

    /// Posts a score to `url` through a client for a claim with `lineitems`
    /// whose egress policy lists `origin`; the requests the stand-in saw.
    async fn score_via_listed_origin(
        lineitems: &str,
        origin: &str,
        url: &str,
        cross_origin: bool,
    ) -> Vec<String> {
        let (ags, seen) = client(Some(lineitems), None, |s| {
            let s = if cross_origin {
                s.allow_cross_origin_links()
            } else {
                s
            };
            s.with_egress_policy(EgressPolicy::new().allow_origin(origin).unwrap())
        });
        ags.post_score(url, &score()).await.unwrap();
        seen.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn the_egress_allow_list_admits_a_configured_origin() {
        // A Canvas-like registration: services on the school's host, which is
        // neither the issuer's nor the token endpoint's origin.
        let seen = score_via_listed_origin(
            "https://school.test/api/li",
            "https://school.test",
            "https://school.test/api/li/1",
            false,
        )
        .await;
        assert!(
            seen.iter().any(|r| r == "school.test/api/li/1/scores"),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn other_origins_are_called_only_when_explicitly_allowed() {
        let seen = score_via_listed_origin(
            "https://lms.test/li",
            "https://grades.test",
            "https://grades.test/li/1",
            true,
        )
        .await;
        assert!(
            seen.iter().any(|r| r == "grades.test/li/1/scores"),
            "{seen:?}"
        );
    }
}
