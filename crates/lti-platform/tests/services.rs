//! AGS and NRPS endpoints: CRUD, scores, results, memberships, paging headers, scope
//! checks and media types.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use http::{Method, Request, StatusCode};
use lti_message::nrps::MembershipContext;
use lti_platform::services::{MemoryContextGrants, MemoryRoster, ResourceLinks, RosterMember};
use std::sync::Arc;

const LINEITEM: &str = "application/vnd.ims.lis.v2.lineitem+json";
const CONTAINER: &str = "application/vnd.ims.lis.v2.lineitemcontainer+json";
const SCORE: &str = "application/vnd.ims.lis.v1.score+json";
const RESULTS: &str = "application/vnd.ims.lis.v2.resultcontainer+json";
const MEMBERS: &str = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json";
const BASE: &str = "https://lms.example.edu/lti";

/// The common fixture with the test tool granted the contexts these tests use, as if
/// it had been launched in each (context access itself is tested in
/// `context_access.rs`).
fn fixture() -> Fixture {
    let f = common::fixture();
    let grants = MemoryContextGrants::new();
    for context in ["c", "course 1", "course-1", "nope"] {
        grants.insert(CLIENT_ID, context);
    }
    let Fixture {
        platform,
        clock,
        registry,
    } = f;
    Fixture {
        platform: platform.with_context_access(Arc::new(grants)),
        clock,
        registry,
    }
}

fn req(
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: &str,
) -> Request<Bytes> {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    if let Some(a) = accept {
        b = b.header("accept", a);
    }
    b.body(Bytes::from(body.to_owned())).unwrap()
}

/// The path (after the platform's origin) of a line item's `id`.
fn item_path(item: &serde_json::Value) -> String {
    item["id"]
        .as_str()
        .unwrap()
        .strip_prefix("https://lms.example.edu")
        .unwrap()
        .to_owned()
}

async fn create_item(
    f: &Fixture,
    token: &str,
    context: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::POST,
            &format!("/lti/{context}/lineitems"),
            Some(token),
            Some(LINEITEM),
            Some(LINEITEM),
            &body.to_string(),
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "{:?}", resp.body());
    assert_eq!(header(&resp, "content-type"), Some(LINEITEM));
    json_body(&resp)
}

#[tokio::test]
async fn line_item_crud_round_trip() {
    let f = fixture();
    let t = bearer(&f.platform, &[SCOPE_LINEITEM]);
    let created = create_item(&f, &t, "course-1", serde_json::json!({"label": "Quiz 1", "scoreMaximum": 10, "resourceLinkId": "rl-1", "tag": "quiz", "https://vendor.example/x": 1})).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id, format!("{BASE}/course-1/lineitems/1"));
    assert_eq!(
        created["https://vendor.example/x"], 1,
        "unknown members are preserved"
    );
    let path = id.strip_prefix("https://lms.example.edu").unwrap();

    let got = f
        .platform
        .services_endpoint(&req(Method::GET, path, Some(&t), None, Some(LINEITEM), ""))
        .await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(json_body(&got)["label"], "Quiz 1");

    let put = f
        .platform
        .services_endpoint(&req(
            Method::PUT,
            path,
            Some(&t),
            Some(LINEITEM),
            None,
            &serde_json::json!({"label": "Quiz 1 (final)", "scoreMaximum": 20}).to_string(),
        ))
        .await;
    assert_eq!(put.status(), StatusCode::OK);
    let updated = json_body(&put);
    assert_eq!(updated["label"], "Quiz 1 (final)");
    assert_eq!(updated["scoreMaximum"], 20.0);
    assert_eq!(updated["id"], id.as_str());

    let del = f
        .platform
        .services_endpoint(&req(Method::DELETE, path, Some(&t), None, None, ""))
        .await;
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    let gone = f
        .platform
        .services_endpoint(&req(Method::GET, path, Some(&t), None, None, ""))
        .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_body(&gone)["error"], "not_found");
}

#[tokio::test]
async fn line_item_list_filters_and_pages_with_link_next() {
    let f = fixture();
    let t = bearer(&f.platform, &[SCOPE_LINEITEM]);
    for i in 0..5 {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        create_item(&f, &t, "c", serde_json::json!({"label": format!("L{i}"), "scoreMaximum": 1, "tag": tag, "resourceId": format!("r{i}"), "resourceLinkId": "rl"})).await;
    }
    let list = |q: &str| {
        req(
            Method::GET,
            &format!("/lti/c/lineitems{q}"),
            Some(&t),
            None,
            Some(CONTAINER),
            "",
        )
    };
    let resp = f
        .platform
        .services_endpoint(&list("?tag=even&limit=2"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), Some(CONTAINER));
    let labels: Vec<String> = json_body(&resp)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(labels, ["L0", "L2"]);
    let link = header(&resp, "link").unwrap().to_owned();
    assert_eq!(
        link,
        format!("<{BASE}/c/lineitems?tag=even&limit=2&offset=2>; rel=\"next\"")
    );
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .strip_prefix("https://lms.example.edu")
        .unwrap()
        .to_owned();
    let resp = f
        .platform
        .services_endpoint(&req(Method::GET, &next, Some(&t), None, None, ""))
        .await;
    let labels: Vec<String> = json_body(&resp)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(labels, ["L4"]);
    assert_eq!(
        header(&resp, "link"),
        None,
        "the last page has no next link"
    );

    let resp = f.platform.services_endpoint(&list("?resource_id=r3")).await;
    assert_eq!(json_body(&resp).as_array().unwrap().len(), 1);
    let resp = f
        .platform
        .services_endpoint(&list("?resource_link_id=other"))
        .await;
    assert_eq!(json_body(&resp).as_array().unwrap().len(), 0);
    let resp = f.platform.services_endpoint(&list("?limit=abc")).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json_body(&resp)["error"], "invalid_parameter");
}

#[tokio::test]
async fn readonly_scope_can_list_but_not_create() {
    let f = fixture();
    let ro = bearer(&f.platform, &[SCOPE_LINEITEM_RO]);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            "/lti/c/lineitems",
            Some(&ro),
            None,
            None,
            "",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::POST,
            "/lti/c/lineitems",
            Some(&ro),
            Some(LINEITEM),
            None,
            r#"{"label":"x","scoreMaximum":1}"#,
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_body(&resp)["error"], "insufficient_scope");
    assert_eq!(
        header(&resp, "www-authenticate"),
        Some("Bearer error=\"insufficient_scope\"")
    );
}

#[tokio::test]
async fn missing_or_expired_token_is_401() {
    let f = fixture();
    let resp = f
        .platform
        .services_endpoint(&req(Method::GET, "/lti/c/lineitems", None, None, None, ""))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(json_body(&resp)["error"], "invalid_access_token");
    assert_eq!(
        header(&resp, "www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    let t = bearer(&f.platform, &[SCOPE_LINEITEM]);
    f.clock.advance(3601);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            "/lti/c/lineitems",
            Some(&t),
            None,
            None,
            "",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_media_types_get_415_and_406() {
    let f = fixture();
    let t = bearer(&f.platform, &[SCOPE_LINEITEM, SCOPE_SCORE, SCOPE_RESULT]);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::POST,
            "/lti/c/lineitems",
            Some(&t),
            Some("application/json"),
            None,
            r#"{"label":"x","scoreMaximum":1}"#,
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(json_body(&resp)["error"], "unsupported_media_type");
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            "/lti/c/lineitems",
            Some(&t),
            None,
            Some("text/html"),
            "",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
    assert_eq!(json_body(&resp)["error"], "not_acceptable");
    for accept in [
        "*/*",
        "application/*",
        "application/json",
        "text/html, application/vnd.ims.lis.v2.lineitemcontainer+json;q=0.5",
    ] {
        let resp = f
            .platform
            .services_endpoint(&req(
                Method::GET,
                "/lti/c/lineitems",
                Some(&t),
                None,
                Some(accept),
                "",
            ))
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{accept}");
    }
    let item = create_item(
        &f,
        &t,
        "c",
        serde_json::json!({"label": "x", "scoreMaximum": 1}),
    )
    .await;
    let scores = format!("{}/scores", item_path(&item));
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::POST,
            &scores,
            Some(&t),
            Some(LINEITEM),
            None,
            "{}",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::PATCH,
            "/lti/c/lineitems",
            Some(&t),
            None,
            None,
            "",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&resp, "allow"), Some("GET, POST"));
}

#[tokio::test]
async fn invalid_line_items_are_400_with_reason() {
    let f = fixture();
    let t = bearer(&f.platform, &[SCOPE_LINEITEM]);
    for (body, code) in [
        (r#"{"label":"","scoreMaximum":1}"#, "invalid_resource"),
        (r#"{"label":"x","scoreMaximum":0}"#, "invalid_resource"),
        (
            r#"{"label":"x","scoreMaximum":1,"startDateTime":"2027-01-01T00:00:00Z","endDateTime":"2026-01-01T00:00:00Z"}"#,
            "invalid_resource",
        ),
        (r#"{"label":"x"}"#, "malformed_body"),
        ("not json", "malformed_body"),
    ] {
        let resp = f
            .platform
            .services_endpoint(&req(
                Method::POST,
                "/lti/c/lineitems",
                Some(&t),
                Some(LINEITEM),
                None,
                body,
            ))
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json_body(&resp)["error"], code, "{body}");
    }
    // Dates in order, or equal, are fine.
    for (start, end) in [
        ("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
    ] {
        create_item(
            &f,
            &t,
            "c",
            serde_json::json!({"label": "x", "scoreMaximum": 1, "startDateTime": start, "endDateTime": end}),
        )
        .await;
    }
}

#[tokio::test]
async fn scores_results_and_newer_timestamp_wins() {
    let f = fixture();
    let t = bearer(&f.platform, &[SCOPE_LINEITEM, SCOPE_SCORE, SCOPE_RESULT]);
    let item = create_item(
        &f,
        &t,
        "c",
        serde_json::json!({"label": "x", "scoreMaximum": 10}),
    )
    .await;
    let item_path = item_path(&item);
    let post = |body: serde_json::Value| {
        req(
            Method::POST,
            &format!("{item_path}/scores"),
            Some(&t),
            Some(SCORE),
            None,
            &body.to_string(),
        )
    };
    let score = |user: &str, given: f64, ts: &str| serde_json::json!({"userId": user, "scoreGiven": given, "scoreMaximum": 10, "activityProgress": "Completed", "gradingProgress": "FullyGraded", "timestamp": ts, "comment": "ok"});

    let resp = f
        .platform
        .services_endpoint(&post(score("u1", 7.0, "2026-01-01T10:00:00.000Z")))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    f.platform
        .services_endpoint(&post(score("u2", 3.0, "2026-01-01T10:00:00Z")))
        .await;
    f.platform
        .services_endpoint(&post(score("u3", 4.0, "2026-01-01T10:00:00Z")))
        .await;
    let resp = f
        .platform
        .services_endpoint(&post(score("u1", 1.0, "2026-01-01T09:00:00Z")))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::CONFLICT,
        "an older score must not overwrite a newer one"
    );
    assert_eq!(json_body(&resp)["error"], "stale_score");
    let resp = f
        .platform
        .services_endpoint(&post(score("u2", 9.0, "2026-01-01T11:00:00Z")))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    let results = |q: &str| {
        req(
            Method::GET,
            &format!("{item_path}/results{q}"),
            Some(&t),
            None,
            Some(RESULTS),
            "",
        )
    };
    let resp = f.platform.services_endpoint(&results("?user_id=u1")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), Some(RESULTS));
    let body = json_body(&resp);
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["userId"], "u1");
    assert_eq!(body[0]["resultScore"], 7.0);
    assert_eq!(body[0]["resultMaximum"], 10.0);
    assert_eq!(body[0]["scoreOf"], item["id"]);
    let resp = f.platform.services_endpoint(&results("?limit=2")).await;
    let body = json_body(&resp);
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_eq!(
        body[1]["resultScore"], 9.0,
        "u2's newer score replaced the older one"
    );
    assert!(
        header(&resp, "link")
            .unwrap()
            .contains("offset=2>; rel=\"next\"")
    );

    for (bad, what) in [
        (
            serde_json::json!({"userId": "u1", "scoreGiven": -1, "scoreMaximum": 10, "activityProgress": "Completed", "gradingProgress": "FullyGraded", "timestamp": "2026-01-02T00:00:00Z"}),
            "invalid_resource",
        ),
        (
            serde_json::json!({"userId": "u1", "scoreGiven": 5, "activityProgress": "Completed", "gradingProgress": "FullyGraded", "timestamp": "2026-01-02T00:00:00Z"}),
            "invalid_resource",
        ),
        (
            serde_json::json!({"userId": "u1", "activityProgress": "Completed", "gradingProgress": "FullyGraded", "timestamp": "yesterday"}),
            "malformed_body",
        ),
        (
            serde_json::json!({"userId": "u1", "activityProgress": "Done", "gradingProgress": "FullyGraded", "timestamp": "2026-01-02T00:00:00Z"}),
            "malformed_body",
        ),
    ] {
        let resp = f.platform.services_endpoint(&post(bad.clone())).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(json_body(&resp)["error"], what, "{bad}");
    }
}

#[tokio::test]
async fn score_scope_is_required_to_post_scores_and_results_scope_to_read() {
    let f = fixture();
    let admin = bearer(&f.platform, &[SCOPE_LINEITEM]);
    let item = create_item(
        &f,
        &admin,
        "c",
        serde_json::json!({"label": "x", "scoreMaximum": 10}),
    )
    .await;
    let item_path = item_path(&item);
    let body = r#"{"userId":"u","activityProgress":"Completed","gradingProgress":"FullyGraded","timestamp":"2026-01-01T00:00:00Z"}"#;
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::POST,
            &format!("{item_path}/scores"),
            Some(&admin),
            Some(SCORE),
            None,
            body,
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            &format!("{item_path}/results"),
            Some(&admin),
            None,
            None,
            "",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn tools_cannot_see_each_others_line_items() {
    let f = fixture();
    f.registry.register(registration_for("other-tool")).unwrap();
    // Both tools are placed in "c": what separates them there is item ownership.
    f.platform.grant_context("other-tool", "c").await.unwrap();
    let mine = bearer(&f.platform, &[SCOPE_LINEITEM]);
    let item = create_item(
        &f,
        &mine,
        "c",
        serde_json::json!({"label": "x", "scoreMaximum": 10}),
    )
    .await;
    let path = item_path(&item);
    let theirs = f
        .platform
        .issue_access_token("other-tool", [SCOPE_LINEITEM.to_owned()].into())
        .unwrap()
        .access_token;
    let resp = f
        .platform
        .services_endpoint(&req(Method::GET, &path, Some(&theirs), None, None, ""))
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            "/lti/c/lineitems",
            Some(&theirs),
            None,
            None,
            "",
        ))
        .await;
    assert_eq!(json_body(&resp).as_array().unwrap().len(), 0);
}

fn registration_for(client_id: &str) -> lti_platform::ToolRegistration {
    let mut r = registration();
    r.client_id = client_id.to_owned();
    r
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let f = fixture();
    let t = bearer(&f.platform, &[SCOPE_LINEITEM]);
    for path in [
        "/lti",
        "/lti/c",
        "/lti/c/lineitems/1/other",
        "/elsewhere/c/lineitems",
        "/lti//lineitems",
        "/lti/%FF/lineitems",
    ] {
        let resp = f
            .platform
            .services_endpoint(&req(Method::GET, path, Some(&t), None, None, ""))
            .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

fn roster() -> Arc<MemoryRoster> {
    let roster = Arc::new(MemoryRoster::new());
    roster.add_context(MembershipContext {
        id: "course 1".to_owned(),
        label: Some("C1".to_owned()),
        title: Some("Course One".to_owned()),
    });
    roster.upsert_member(
        "course 1",
        RosterMember::new(
            "teacher",
            ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        )
        .with_name("Tea", "Cher")
        .with_email("t@example.edu"),
    );
    for i in 0..3 {
        roster.upsert_member(
            "course 1",
            RosterMember::new(
                format!("learner{i}"),
                ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
            )
            .with_resource_links([format!("rl-{i}")]),
        );
    }
    roster.upsert_member(
        "course 1",
        RosterMember::new(
            "ta",
            ["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"],
        ),
    );
    roster
}

#[tokio::test]
async fn memberships_page_filter_and_map_user_ids_to_subjects() {
    let mut f = fixture();
    let r = roster();
    f.platform = f.platform.with_roster(r.clone());
    let t = bearer(&f.platform, &[SCOPE_NRPS]);
    let get = |q: &str| {
        req(
            Method::GET,
            &format!("/lti/course%201/memberships{q}"),
            Some(&t),
            None,
            Some(MEMBERS),
            "",
        )
    };

    let resp = f.platform.services_endpoint(&get("?limit=2")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-type"), Some(MEMBERS));
    let body = json_body(&resp);
    assert_eq!(body["context"]["id"], "course 1");
    assert_eq!(body["context"]["title"], "Course One");
    assert_eq!(body["members"].as_array().unwrap().len(), 2);
    let link = header(&resp, "link").unwrap();
    assert!(
        link.contains(&format!(
            "<{BASE}/course%201/memberships?limit=2&offset=2>; rel=\"next\""
        )),
        "{link}"
    );
    assert!(link.contains("rel=\"differences\""), "{link}");

    let resp = f.platform.services_endpoint(&get("")).await;
    let body = json_body(&resp);
    let members = body["members"].as_array().unwrap();
    assert_eq!(members.len(), 5);
    let tool = registration();
    let teacher_sub = f.platform.subject_for(&tool, "teacher");
    assert_ne!(
        teacher_sub, "teacher",
        "user ids are pseudonymous by default"
    );
    let teacher = members
        .iter()
        .find(|m| m["user_id"] == teacher_sub.as_str())
        .unwrap();
    assert_eq!(teacher["name"], "Tea Cher");
    assert_eq!(teacher["email"], "t@example.edu");
    assert_eq!(teacher["status"], "Active");

    let resp = f.platform.services_endpoint(&get("?role=Instructor")).await;
    assert_eq!(
        json_body(&resp)["members"].as_array().unwrap().len(),
        2,
        "Instructor matches the TA sub-role"
    );
    let resp = f
        .platform
        .services_endpoint(&get(
            "?role=http%3A%2F%2Fpurl.imsglobal.org%2Fvocab%2Flis%2Fv2%2Fmembership%23Learner",
        ))
        .await;
    assert_eq!(json_body(&resp)["members"].as_array().unwrap().len(), 3);

    let resp = f.platform.services_endpoint(&get("?rlid=rl-1")).await;
    let body = json_body(&resp);
    let members = body["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "teacher, ta and learner1 can use rl-1");
    let message = &members[0]["message"][0];
    assert_eq!(
        message["https://purl.imsglobal.org/spec/lti/claim/message_type"],
        "LtiResourceLinkRequest"
    );
    assert_eq!(
        message["https://purl.imsglobal.org/spec/lti/claim/resource_link"]["id"],
        "rl-1"
    );
}

#[tokio::test]
async fn differences_link_returns_only_changes_including_deletions() {
    let mut f = fixture();
    let r = roster();
    f.platform = f.platform.with_roster(r.clone());
    let t = bearer(&f.platform, &[SCOPE_NRPS]);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            "/lti/course%201/memberships",
            Some(&t),
            None,
            None,
            "",
        ))
        .await;
    let link = header(&resp, "link").unwrap().to_owned();
    let diff = link
        .split(", ")
        .find(|l| l.contains("differences"))
        .unwrap();
    let diff = diff
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .strip_prefix("https://lms.example.edu")
        .unwrap()
        .to_owned();
    assert!(r.remove_member("course 1", "learner0"));
    r.upsert_member(
        "course 1",
        RosterMember::new(
            "newcomer",
            ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        ),
    );
    let resp = f
        .platform
        .services_endpoint(&req(Method::GET, &diff, Some(&t), None, None, ""))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = json_body(&resp);
    let members = body["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let tool = registration();
    let deleted = members
        .iter()
        .find(|m| m["user_id"] == f.platform.subject_for(&tool, "learner0").as_str())
        .unwrap();
    assert_eq!(deleted["status"], "Deleted");
}

#[tokio::test]
async fn memberships_need_the_nrps_scope_and_an_existing_context() {
    let mut f = fixture();
    f.platform = f.platform.with_roster(roster());
    let wrong = bearer(&f.platform, &[SCOPE_LINEITEM]);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            "/lti/course%201/memberships",
            Some(&wrong),
            None,
            None,
            "",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let t = bearer(&f.platform, &[SCOPE_NRPS]);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            "/lti/nope/memberships",
            Some(&t),
            None,
            None,
            "",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            "/lti/course%201/memberships",
            Some(&t),
            None,
            Some("application/vnd.ims.lis.v2.lineitem+json"),
            "",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn tokens_lose_power_when_the_tool_or_scope_is_unregistered() {
    let f = fixture();
    let t = bearer(&f.platform, &[SCOPE_LINEITEM, SCOPE_LINEITEM_RO]);
    let mut reduced = registration();
    reduced.scopes.remove(SCOPE_LINEITEM);
    f.registry.register(reduced).unwrap();
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::POST,
            "/lti/c/lineitems",
            Some(&t),
            Some(LINEITEM),
            None,
            r#"{"label":"x","scoreMaximum":1}"#,
        ))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "a revoked scope no longer works"
    );
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            "/lti/c/lineitems",
            Some(&t),
            None,
            None,
            "",
        ))
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "a still-registered scope keeps working"
    );
    assert!(f.registry.remove(CLIENT_ID));
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            "/lti/c/lineitems",
            Some(&t),
            None,
            None,
            "",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        json_body(&resp)["error_description"]
            .as_str()
            .unwrap()
            .contains("no longer registered")
    );
}

struct OnlyCourse(&'static str);

#[async_trait::async_trait]
impl lti_platform::services::ContextAccess for OnlyCourse {
    async fn may_access(&self, _client_id: &str, context_id: &str) -> lti_platform::Result<bool> {
        Ok(context_id == self.0)
    }

    async fn grant(&self, _client_id: &str, _context_id: &str) -> lti_platform::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_custom_context_access_policy_refuses_other_contexts_with_403() {
    let mut f = fixture();
    f.platform = f
        .platform
        .with_roster(roster())
        .with_context_access(Arc::new(OnlyCourse("course 1")));
    let t = bearer(&f.platform, &[SCOPE_LINEITEM, SCOPE_NRPS]);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            "/lti/course%201/memberships",
            Some(&t),
            None,
            None,
            "",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            "/lti/other/lineitems",
            Some(&t),
            None,
            None,
            "",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_body(&resp)["error"], "context_not_granted");
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::POST,
            "/lti/other/lineitems",
            Some(&t),
            Some(LINEITEM),
            None,
            r#"{"label":"x","scoreMaximum":1}"#,
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_body(&resp)["error"], "context_not_granted");
}

/// Resource links per (client id, context); contexts not listed are unknown.
struct Links(Vec<(&'static str, &'static str, &'static str)>);

#[async_trait::async_trait]
impl ResourceLinks for Links {
    async fn is_link_of(
        &self,
        client_id: &str,
        context_id: &str,
        resource_link_id: &str,
    ) -> lti_platform::Result<Option<bool>> {
        if !self.0.iter().any(|(_, c, _)| *c == context_id) {
            return Ok(None);
        }
        Ok(Some(self.0.iter().any(|&(t, c, l)| {
            t == client_id && c == context_id && l == resource_link_id
        })))
    }
}

#[tokio::test]
async fn line_items_must_name_one_of_the_tools_links_when_the_platform_knows_them() {
    let mut f = fixture();
    f.platform = f.platform.with_resource_links(Arc::new(Links(vec![
        (CLIENT_ID, "course-1", "rl-1"),
        ("another-tool", "course-1", "rl-other"),
    ])));
    let t = bearer(&f.platform, &[SCOPE_LINEITEM]);
    let post = |context: &str, body: serde_json::Value| {
        req(
            Method::POST,
            &format!("/lti/{context}/lineitems"),
            Some(&t),
            Some(LINEITEM),
            Some(LINEITEM),
            &body.to_string(),
        )
    };
    // One of the tool's links, and no link at all: created.
    let item = create_item(
        &f,
        &t,
        "course-1",
        serde_json::json!({"label": "Quiz", "scoreMaximum": 10, "resourceLinkId": "rl-1"}),
    )
    .await;
    create_item(
        &f,
        &t,
        "course-1",
        serde_json::json!({"label": "Unbound", "scoreMaximum": 10}),
    )
    .await;
    // A link that does not exist, and another tool's: refused, nothing created.
    for link in ["rl-404", "rl-other"] {
        let resp = f
            .platform
            .services_endpoint(&post(
                "course-1",
                serde_json::json!({"label": "Bad", "scoreMaximum": 10, "resourceLinkId": link}),
            ))
            .await;
        assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{link}");
        let body = json_body(&resp);
        assert_eq!(body["error"], "unknown_resource_link");
        assert!(
            body["error_description"].as_str().unwrap().contains(link),
            "{body}"
        );
    }
    let listed = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            "/lti/course-1/lineitems",
            Some(&t),
            None,
            Some(CONTAINER),
            "",
        ))
        .await;
    let labels: Vec<String> = json_body(&listed)
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(!labels.contains(&"Bad".to_owned()));
    // An update to an unknown link is refused and leaves the item as it was.
    let path = item_path(&item);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::PUT,
            &path,
            Some(&t),
            Some(LINEITEM),
            Some(LINEITEM),
            &serde_json::json!({"label": "Quiz", "scoreMaximum": 10, "resourceLinkId": "rl-404"})
                .to_string(),
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let resp = f
        .platform
        .services_endpoint(&req(Method::GET, &path, Some(&t), None, Some(LINEITEM), ""))
        .await;
    assert_eq!(json_body(&resp)["resourceLinkId"], "rl-1");
    // A context the source does not know is not checked.
    create_item(
        &f,
        &t,
        "c",
        serde_json::json!({"label": "Elsewhere", "scoreMaximum": 1, "resourceLinkId": "anything"}),
    )
    .await;
}

#[tokio::test]
async fn scores_must_name_a_member_of_a_context_the_roster_knows() {
    let mut f = fixture();
    let r = roster();
    // More members than one lookup batch, so the check pages through the roster.
    for i in 0..1200 {
        r.upsert_member(
            "course 1",
            RosterMember::new(
                format!("extra{i:04}"),
                ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
            ),
        );
    }
    f.platform = f.platform.with_roster(r.clone());
    let t = bearer(&f.platform, &[SCOPE_LINEITEM, SCOPE_SCORE, SCOPE_RESULT]);
    let tool = registration();
    let post_in = |context: &str, item: &serde_json::Value, user: &str| {
        let path = item_path(item);
        assert!(path.starts_with(&format!("/lti/{context}/")), "{path}");
        req(
            Method::POST,
            &format!("{path}/scores"),
            Some(&t),
            Some(SCORE),
            None,
            &serde_json::json!({"userId": user, "scoreGiven": 7, "scoreMaximum": 10, "activityProgress": "Completed", "gradingProgress": "FullyGraded", "timestamp": "2026-01-01T10:00:00Z"}).to_string(),
        )
    };
    let item = create_item(
        &f,
        &t,
        "course%201",
        serde_json::json!({"label": "Quiz", "scoreMaximum": 10}),
    )
    .await;

    // The tool knows members by their (pseudonymous) `sub`, the first and the
    // last of the roster alike.
    for member in ["learner1", "extra1199"] {
        let sub = f.platform.subject_for(&tool, member);
        assert_ne!(sub, member, "the test tool gets pseudonymous subjects");
        let resp = f
            .platform
            .services_endpoint(&post_in("course%201", &item, &sub))
            .await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{member}");
    }
    // The platform's own user id, a stranger, a member of no context and a
    // member who left are refused, and nothing is recorded for them.
    r.remove_member("course 1", "learner2");
    let left = f.platform.subject_for(&tool, "learner2");
    let stranger = f.platform.subject_for(&tool, "nobody");
    for user in ["learner1", stranger.as_str(), left.as_str(), ""] {
        let resp = f
            .platform
            .services_endpoint(&post_in("course%201", &item, user))
            .await;
        if user.is_empty() {
            // An empty userId fails the score's own validation first.
            assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
            continue;
        }
        assert_eq!(
            resp.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{user}: {:?}",
            resp.body()
        );
        let body = json_body(&resp);
        assert_eq!(body["error"], "score_user_not_in_context");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("a member of the context"),
            "{body}"
        );
    }
    let item_path = item_path(&item);
    let resp = f
        .platform
        .services_endpoint(&req(
            Method::GET,
            &format!("{item_path}/results"),
            Some(&t),
            None,
            Some(RESULTS),
            "",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut recorded: Vec<String> = json_body(&resp)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userId"].as_str().unwrap().to_owned())
        .collect();
    recorded.sort();
    let mut expected = vec![
        f.platform.subject_for(&tool, "learner1"),
        f.platform.subject_for(&tool, "extra1199"),
    ];
    expected.sort();
    assert_eq!(recorded, expected, "only the members' scores are recorded");
    // A context the roster does not know (a platform serving AGS without NRPS
    // for it) takes scores for any user, as before.
    let other = create_item(
        &f,
        &t,
        "c",
        serde_json::json!({"label": "x", "scoreMaximum": 10}),
    )
    .await;
    let resp = f
        .platform
        .services_endpoint(&post_in("c", &other, "anyone"))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}
