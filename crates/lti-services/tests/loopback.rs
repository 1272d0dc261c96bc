//! lti-services against lti-platform's AGS, NRPS and token endpoints on a
//! loopback hyper server (tests/support): the platform verifies our client
//! assertions, checks bearer tokens, scopes and media types, stores line
//! items and scores, and pages with `Link` headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;

use futures_util::{StreamExt, TryStreamExt, stream};
use lti_message::Timestamp;
use lti_message::ags::{ActivityProgress, GradingProgress, LineItem, Score, scope};
use lti_message::nrps::{MemberStatus, SCOPE_CONTEXT_MEMBERSHIP_READONLY};
use lti_platform::services::{GradeBook, ItemOwner, RosterMember};
use lti_services::{
    AgsClient, LineItemsQuery, MembershipsQuery, QuirkProfile, ResultsQuery, ServiceError,
};
use support::{ALL_AGS, CLIENT_ID, CONTEXT, MOODLE_CONTEXT, Options, TestPlatform, UNGRADABLE};

const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";
const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_unix_seconds(1_700_000_000 + secs).unwrap()
}

async fn new_item(ags: &AgsClient, label: &str, maximum: f64) -> String {
    let item = ags
        .create_line_item(&LineItem::new(label, maximum))
        .await
        .unwrap();
    item.id.unwrap()
}

fn count(log: &[String], prefix: &str) -> usize {
    log.iter().filter(|l| l.starts_with(prefix)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_item_lifecycle_create_list_three_pages_update_score_500_read_results_delete() {
    let lms = TestPlatform::start(Options {
        max_page_size: 3,
        ..Options::default()
    })
    .await;
    let services = lms.services();
    let ags = lms.ags(&services);

    let mut created = Vec::new();
    for i in 0..7 {
        let mut item = LineItem::new(format!("Quiz {i}"), 10.0);
        item.resource_id = Some(format!("quiz-{i}"));
        item.tag = Some(if i % 2 == 0 { "even" } else { "odd" }.to_owned());
        item.start_date_time = Some(ts(0));
        let made = ags.create_line_item(&item).await.unwrap();
        assert!(made.id.as_deref().unwrap().starts_with(&lms.base));
        assert_eq!(made.label, format!("Quiz {i}"));
        created.push(made);
    }

    // 7 items at 3 per page: three pages.
    let before = count(&lms.log_lines(), "GET /lti/course-1/lineitems?");
    let all = ags.list_line_items(&LineItemsQuery::new()).await.unwrap();
    assert_eq!(all.len(), 7);
    assert_eq!(
        count(&lms.log_lines(), "GET /lti/course-1/lineitems?") - before,
        3
    );
    let labels: HashSet<_> = all.iter().map(|i| i.label.clone()).collect();
    assert_eq!(labels.len(), 7);

    let even = ags
        .list_line_items(&LineItemsQuery::new().tag("even"))
        .await
        .unwrap();
    assert_eq!(even.len(), 4);
    let one = ags
        .list_line_items(&LineItemsQuery::new().resource_id("quiz-5"))
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].id, created[5].id);
    let streamed: Vec<LineItem> = ags
        .stream_line_items(&LineItemsQuery::new())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed, all);

    // Update (PUT of the whole object), then read it back.
    let mut changed = created[2].clone();
    changed.label = "Quiz two, revised".to_owned();
    changed.score_maximum = 20.0;
    let updated = ags.update_line_item(&changed).await.unwrap();
    assert_eq!(updated.label, "Quiz two, revised");
    let read = ags
        .get_line_item(created[2].id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(read.score_maximum, 20.0);
    assert_eq!(read.resource_id.as_deref(), Some("quiz-2"));

    // 500 learners scored on one item.
    let target = created[2].id.clone().unwrap();
    let scores: Vec<Score> = (0..500)
        .map(|u| {
            Score::completed_fully_graded(format!("learner-{u}"), f64::from(u % 21), 20.0, ts(60))
        })
        .collect();
    stream::iter(scores.iter())
        .map(|s| ags.post_score(&target, s))
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();

    let results = ags
        .list_results(&target, &ResultsQuery::new())
        .await
        .unwrap();
    assert_eq!(results.len(), 500);
    let users: HashSet<_> = results.iter().map(|r| r.user_id.clone()).collect();
    assert_eq!(users.len(), 500);
    let r7 = results.iter().find(|r| r.user_id == "learner-7").unwrap();
    assert_eq!(r7.result_score, Some(7.0));
    assert_eq!(r7.result_maximum, Some(20.0));
    let only = ags
        .list_results(&target, &ResultsQuery::new().user_id("learner-42"))
        .await
        .unwrap();
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].result_score, Some(0.0));
    let streamed = ags
        .stream_results(&target, &ResultsQuery::new())
        .count()
        .await;
    assert_eq!(streamed, 500);

    // Delete, then the platform answers 404 for it.
    ags.delete_line_item(&target).await.unwrap();
    let err = ags.get_line_item(&target).await.unwrap_err();
    assert_eq!(err.code(), "platform_error");
    assert_eq!(err.platform_status(), Some(404));
    assert_eq!(lms.line_items(CONTEXT).len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_scores_need_exactly_one_token_request() {
    let lms = TestPlatform::start(Options::default()).await;
    let services = lms.services();
    let ags = lms.ags(&services);
    let item = ags
        .create_line_item(&LineItem::new("Essay", 100.0))
        .await
        .unwrap();
    let url = item.id.unwrap();
    let scores: Vec<Score> = (0..500)
        .map(|u| Score::completed_fully_graded(format!("u{u}"), 50.0, 100.0, ts(1)))
        .collect();
    stream::iter(scores.iter())
        .map(|s| ags.post_score(&url, s))
        .buffer_unordered(32)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    // A second client for another launch in the same context shares the token.
    let other = services
        .ags(
            &lms.registration(),
            &lms.ags_claim(CONTEXT, &ALL_AGS, Some(url.clone())),
        )
        .unwrap();
    other
        .grade_launch_line_item(&Score::completed_fully_graded("u0", 99.0, 100.0, ts(2)))
        .await
        .unwrap();
    assert_eq!(lms.token_requests(), 1);
    assert_eq!(
        lms.grade_book
            .results_of(&lms.grade_book.line_items_in_context(CONTEXT)[0].id)
            .len(),
        500
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_find_or_create_then_score_calls_create_exactly_one_line_item() {
    let lms = TestPlatform::start(Options::default()).await;
    let services = lms.services();
    let registration = lms.registration();
    let claim = lms.ags_claim(CONTEXT, &ALL_AGS, None);
    let mut spec = LineItem::new("Chapter 4 quiz", 10.0);
    spec.tag = Some("quiz".to_owned());
    spec.end_date_time = Some(ts(86_400));
    let tasks: Vec<_> = (0..20)
        .map(|u| {
            // One client per "launch", all from one LtiServices.
            let ags = services.ags(&registration, &claim).unwrap();
            let spec = spec.clone();
            tokio::spawn(async move {
                let score = Score::completed_fully_graded(format!("learner-{u}"), 8.0, 10.0, ts(5));
                ags.find_or_create_line_item_and_score("chapter-4", &spec, &score)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap().id.unwrap());
    }
    assert_eq!(ids.len(), 1, "every caller got the same line item");
    let items = lms.grade_book.line_items_in_context(CONTEXT);
    assert_eq!(items.len(), 1, "exactly one line item was created");
    assert_eq!(items[0].line_item.resource_id.as_deref(), Some("chapter-4"));
    assert_eq!(items[0].line_item.tag.as_deref(), Some("quiz"));
    assert_eq!(items[0].line_item.end_date_time, Some(ts(86_400)));
    assert_eq!(lms.grade_book.results_of(&items[0].id).len(), 20);
    assert_eq!(count(&lms.log_lines(), "POST /lti/course-1/lineitems?"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_created_by_another_process_is_detected_on_relist_and_removed() {
    let lms = TestPlatform::start(Options {
        race_resource_id: Some("unit-9".to_owned()),
        ..Options::default()
    })
    .await;
    let services = lms.services();
    let ags = lms.ags(&services);
    let score = Score::completed_fully_graded("learner-1", 3.0, 10.0, ts(1));
    let got = ags
        .find_or_create_line_item_and_score("unit-9", &LineItem::new("Unit 9", 10.0), &score)
        .await
        .unwrap();
    let items = lms.grade_book.line_items_in_context(CONTEXT);
    assert_eq!(items.len(), 1, "our duplicate was deleted: {items:?}");
    assert_eq!(items[0].line_item.label, "created by another process");
    assert_eq!(got.label, "created by another process");
    assert_eq!(lms.grade_book.results_of(&items[0].id).len(), 1);
    assert_eq!(count(&lms.log_lines(), "DELETE "), 1);
    // The next call finds the survivor without creating anything.
    let again = ags
        .find_or_create_line_item("unit-9", &LineItem::new("Unit 9", 10.0))
        .await
        .unwrap();
    assert_eq!(again.id, got.id);
    assert_eq!(count(&lms.log_lines(), "POST /lti/course-1/lineitems?"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moodle_line_item_url_with_query_string_gets_scores_and_results_before_the_query() {
    let lms = TestPlatform::start(Options::default()).await;
    let record = lms
        .grade_book
        .create_line_item(
            &ItemOwner::new(MOODLE_CONTEXT, CLIENT_ID),
            LineItem::new("Moodle quiz", 10.0),
        )
        .await
        .unwrap();
    let lineitem = format!(
        "{}?type_id=7",
        lms.platform.line_item_url(MOODLE_CONTEXT, &record.id)
    );
    let services = lms.services();
    let reg = lms.registration().with_profile(QuirkProfile::Moodle);
    let ags = services
        .ags(
            &reg,
            &lms.ags_claim(MOODLE_CONTEXT, &ALL_AGS, Some(lineitem.clone())),
        )
        .unwrap();
    ags.grade_launch_line_item(&Score::completed_fully_graded(
        "student-1",
        9.0,
        10.0,
        ts(1),
    ))
    .await
    .unwrap();
    let results = ags
        .list_results(&lineitem, &ResultsQuery::new().user_id("student-1"))
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].result_score, Some(9.0));
    assert_eq!(
        ags.get_line_item(&lineitem).await.unwrap().label,
        "Moodle quiz"
    );
    let log = lms.log_lines();
    let id = &record.id;
    assert!(
        log.contains(&format!(
            "POST /lti/{MOODLE_CONTEXT}/lineitems/{id}/scores?type_id=7"
        )),
        "{log:?}"
    );
    assert!(
        log.iter().any(|l| l.starts_with(&format!(
            "GET /lti/{MOODLE_CONTEXT}/lineitems/{id}/results?type_id=7&user_id=student-1"
        ))),
        "{log:?}"
    );

    // Moodle's 400 for a user it cannot grade surfaces its message.
    let err = ags
        .grade_launch_line_item(&Score::completed_fully_graded(UNGRADABLE, 1.0, 10.0, ts(2)))
        .await
        .unwrap_err();
    match &err {
        ServiceError::Platform {
            operation,
            status,
            url,
            message,
        } => {
            assert_eq!(*operation, "post score");
            assert_eq!(*status, 400);
            assert!(url.ends_with("/scores?type_id=7"), "{url}");
            assert_eq!(message.as_deref(), Some("Incorrect score received"));
        }
        other => panic!("expected a platform error, found {other:?}"),
    }
    assert!(
        err.to_string().contains("Incorrect score received"),
        "{err}"
    );
    assert_eq!(err.status_hint(), 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_400_and_a_stale_409_surface_the_platform_message() {
    let lms = TestPlatform::start(Options::default()).await;
    let services = lms.services();
    let ags = lms.ags(&services);
    let url = new_item(&ags, "Lab", 10.0).await;
    // lti-platform refuses absurd scores with a JSON error body.
    let err = ags
        .post_score(&url, &Score::completed_fully_graded("u1", 1e9, 10.0, ts(1)))
        .await
        .unwrap_err();
    assert_eq!(err.platform_status(), Some(400));
    let ServiceError::Platform {
        message: Some(message),
        ..
    } = &err
    else {
        panic!("expected a platform message, found {err:?}");
    };
    assert!(message.contains("sane range"), "{message}");
    assert!(!err.is_stale_score());

    ags.post_score(
        &url,
        &Score::completed_fully_graded("u1", 5.0, 10.0, ts(10)),
    )
    .await
    .unwrap();
    let stale = ags
        .post_score(&url, &Score::completed_fully_graded("u1", 6.0, 10.0, ts(5)))
        .await
        .unwrap_err();
    assert_eq!(stale.platform_status(), Some(409));
    assert!(stale.is_stale_score(), "{stale:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_urls_on_another_origin_are_refused_and_nothing_reaches_the_server() {
    let lms = TestPlatform::start(Options::default()).await;
    lms.add_context(CONTEXT);
    // The same stand-in server under another origin: `localhost` instead of
    // the registration's `127.0.0.1`.
    let foreign = |url: String| url.replacen("127.0.0.1", "localhost", 1);
    let services = lms.services();
    let mut ags_claim = lms.ags_claim(CONTEXT, &ALL_AGS, None);
    ags_claim.lineitems = ags_claim.lineitems.map(foreign);
    let err = services.ags(&lms.registration(), &ags_claim).unwrap_err();
    assert_eq!(err.code(), "egress_refused", "{err:?}");
    assert!(
        err.to_string().contains(&format!(
            "expected a URL on one of the origins {}",
            lms.base
        )),
        "{err}"
    );
    let mut nrps_claim = lms.nrps_claim(CONTEXT);
    nrps_claim.context_memberships_url = nrps_claim.context_memberships_url.map(foreign);
    let err = services.nrps(&lms.registration(), &nrps_claim).unwrap_err();
    assert_eq!(err.code(), "egress_refused", "{err:?}");
    // A line item URL elsewhere, even with cross-origin links allowed.
    let loose = lms.services().allow_cross_origin_links();
    let ags = lms.ags(&loose);
    let score = Score::completed_fully_graded("u1", 1.0, 1.0, ts(1));
    let err = ags
        .post_score(&foreign(lms.platform.line_item_url(CONTEXT, "1")), &score)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "egress_refused", "{err:?}");
    assert_eq!(lms.token_requests(), 0);
    assert_eq!(lms.service_requests(), 0);
    // Listed in the egress policy, the other origin is called.
    let listed = lms.services().with_egress_policy(
        lti_http::EgressPolicy::new()
            .allow_origin(&foreign(lms.base.clone()))
            .unwrap(),
    );
    listed
        .ags(&lms.registration(), &ags_claim)
        .unwrap()
        .list_line_items(&LineItemsQuery::new())
        .await
        .unwrap();
    assert_eq!(lms.token_requests(), 1);
    assert_eq!(lms.service_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_not_granted_are_refused_before_any_request_naming_the_scope() {
    let lms = TestPlatform::start(Options::default()).await;
    let services = lms.services();
    let readonly = services
        .ags(
            &lms.registration(),
            &lms.ags_claim(
                CONTEXT,
                &[scope::LINE_ITEM_READONLY],
                Some(lms.platform.line_item_url(CONTEXT, "1")),
            ),
        )
        .unwrap();
    let score = Score::completed_fully_graded("u1", 1.0, 1.0, ts(1));
    let cases: Vec<(ServiceError, &str)> = vec![
        (
            readonly.grade_launch_line_item(&score).await.unwrap_err(),
            scope::SCORE,
        ),
        (
            readonly
                .create_line_item(&LineItem::new("x", 1.0))
                .await
                .unwrap_err(),
            scope::LINE_ITEM,
        ),
        (
            readonly
                .delete_line_item(&lms.platform.line_item_url(CONTEXT, "1"))
                .await
                .unwrap_err(),
            scope::LINE_ITEM,
        ),
        (
            readonly
                .list_results(
                    &lms.platform.line_item_url(CONTEXT, "1"),
                    &ResultsQuery::new(),
                )
                .await
                .unwrap_err(),
            scope::RESULT_READONLY,
        ),
    ];
    for (err, want) in cases {
        match err {
            ServiceError::ScopeNotGranted { scope, .. } => assert_eq!(scope, want),
            other => panic!("expected scope_not_granted for {want}, found {other:?}"),
        }
    }
    assert_eq!(lms.token_requests(), 0);
    assert_eq!(lms.service_requests(), 0);
    // Reading is allowed with the read-only scope.
    assert!(
        readonly
            .list_line_items(&LineItemsQuery::new())
            .await
            .unwrap()
            .is_empty()
    );

    let none = services
        .ags(&lms.registration(), &lms.ags_claim(CONTEXT, &[], None))
        .unwrap();
    let err = none
        .list_line_items(&LineItemsQuery::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::ScopeNotGranted {
                scope: scope::LINE_ITEM_READONLY,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("scope not granted: expected https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly"), "{err}");
    assert_eq!(err.status_hint(), 403);

    // A registration allow-list narrows what the claim grants.
    let narrowed = lms
        .registration()
        .with_allowed_scopes([scope::LINE_ITEM_READONLY]);
    let ags = services
        .ags(&narrowed, &lms.ags_claim(CONTEXT, &ALL_AGS, None))
        .unwrap();
    assert_eq!(ags.granted_scopes(), [scope::LINE_ITEM_READONLY.to_owned()]);
    let err = ags
        .post_score(&lms.platform.line_item_url(CONTEXT, "1"), &score)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::ScopeNotGranted {
                scope: scope::SCORE,
                ..
            }
        ),
        "{err:?}"
    );
    let err = services
        .nrps(&narrowed, &lms.nrps_claim(CONTEXT))
        .unwrap_err();
    assert!(
        matches!(
            err,
            ServiceError::ScopeNotGranted {
                scope: SCOPE_CONTEXT_MEMBERSHIP_READONLY,
                ..
            }
        ),
        "{err:?}"
    );

    // No lineitem in the claim: grading the launch's item is a missing endpoint.
    let unbound = services
        .ags(&lms.registration(), &lms.ags_claim(CONTEXT, &ALL_AGS, None))
        .unwrap();
    let err = unbound.grade_launch_line_item(&score).await.unwrap_err();
    assert!(
        matches!(err, ServiceError::MissingEndpoint { .. }),
        "{err:?}"
    );
}

fn seed_roster(lms: &TestPlatform, n: usize) {
    lms.add_context(CONTEXT);
    for i in 0..n {
        let role = if i % 10 == 0 { INSTRUCTOR } else { LEARNER };
        let mut m = RosterMember::new(format!("user-{i:04}"), [role])
            .with_name(format!("Given{i}"), "Family");
        if i % 2 == 1 {
            m = m.with_resource_links(["other-link"]);
        }
        lms.roster.upsert_member(CONTEXT, m);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_of_1000_is_read_across_pages_with_role_filter_rlid_and_differences() {
    let lms = TestPlatform::start(Options {
        max_page_size: 100,
        ..Options::default()
    })
    .await;
    seed_roster(&lms, 1000);
    let services = lms.services();
    let nrps = services
        .nrps(&lms.registration(), &lms.nrps_claim(CONTEXT))
        .unwrap();

    let roster = nrps.list_members(&MembershipsQuery::new()).await.unwrap();
    assert_eq!(roster.members.len(), 1000);
    assert_eq!(roster.pages, 10);
    assert_eq!(
        roster.context.as_ref().unwrap().title.as_deref(),
        Some("Course One")
    );
    assert!(
        roster
            .members
            .iter()
            .all(|m| m.status == MemberStatus::Active)
    );
    let ids: HashSet<_> = roster.members.iter().map(|m| m.user_id.clone()).collect();
    assert_eq!(ids.len(), 1000);
    assert_eq!(roster.members[3].given_name.as_deref(), Some("Given3"));

    let learners = nrps
        .list_members(&MembershipsQuery::new().role("Learner"))
        .await
        .unwrap();
    assert_eq!(learners.members.len(), 900);
    assert!(learners.members.iter().all(|m| m.roles == [LEARNER]));
    let teachers = nrps
        .list_members(&MembershipsQuery::new().role(INSTRUCTOR))
        .await
        .unwrap();
    assert_eq!(teachers.members.len(), 100);

    let linked = nrps
        .list_members(&MembershipsQuery::new().rlid("link-1").limit(40))
        .await
        .unwrap();
    assert_eq!(linked.members.len(), 500);
    assert_eq!(linked.pages, 13);
    for m in &linked.members {
        assert_eq!(m.message.len(), 1, "rlid adds the message section");
        let link = m.message[0].resource_link.as_ref().unwrap();
        assert_eq!(link.id.as_deref(), Some("link-1"));
    }

    let streamed: Vec<_> = nrps
        .stream_members(&MembershipsQuery::new().role("Instructor"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.len(), 100);

    // Differences since the snapshot: two removed, one added, one changed.
    let since = roster
        .differences_url
        .clone()
        .expect("the platform offers differences");
    assert!(since.starts_with(&lms.base), "{since}");
    lms.roster.remove_member(CONTEXT, "user-0001");
    lms.roster.remove_member(CONTEXT, "user-0002");
    lms.roster
        .upsert_member(CONTEXT, RosterMember::new("user-new", [LEARNER]));
    let diff = nrps.fetch_differences(&since).await.unwrap();
    let by_id = |id: &str| {
        diff.members
            .iter()
            .find(|m| m.user_id == id)
            .unwrap()
            .status
    };
    assert_eq!(diff.members.len(), 3);
    assert_eq!(by_id("user-0001"), MemberStatus::Deleted);
    assert_eq!(by_id("user-0002"), MemberStatus::Deleted);
    assert_eq!(by_id("user-new"), MemberStatus::Active);
    let next = diff.differences_url.clone().unwrap();
    assert_ne!(next, since);
    assert!(
        nrps.fetch_differences(&next)
            .await
            .unwrap()
            .members
            .is_empty()
    );
    assert_eq!(lms.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canvas_profile_asks_for_at_most_50_per_page() {
    let lms = TestPlatform::start(Options {
        max_page_size: 50,
        ..Options::default()
    })
    .await;
    seed_roster(&lms, 120);
    let services = lms.services();
    let canvas = services
        .nrps(&lms.canvas_registration(), &lms.nrps_claim(CONTEXT))
        .unwrap();
    let roster = canvas
        .list_members(&MembershipsQuery::new().limit(500))
        .await
        .unwrap();
    assert_eq!(roster.members.len(), 120);
    assert_eq!(roster.pages, 3);
    let log = lms.log_lines();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|l| l.contains("limit=50") && !l.contains("limit=500")),
        "{log:?}"
    );
    let default = canvas.list_members(&MembershipsQuery::new()).await.unwrap();
    assert_eq!(default.pages, 3);
    assert!(lms.log_lines()[3].contains("limit=50"));

    // The generic profile sends what the caller asked for.
    let generic = services
        .nrps(&lms.registration(), &lms.nrps_claim(CONTEXT))
        .unwrap();
    generic
        .list_members(&MembershipsQuery::new().limit(500))
        .await
        .unwrap();
    assert!(
        lms.log_lines()[6].contains("limit=500"),
        "{:?}",
        lms.log_lines()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_page_in_the_middle_of_a_listing_is_a_platform_error_with_the_page_url() {
    let lms = TestPlatform::start(Options::default()).await;
    let services = lms.services();
    // A context the platform does not know: 404 with its JSON error body.
    let nrps = services
        .nrps(&lms.registration(), &lms.nrps_claim("no-such-course"))
        .unwrap();
    let err = nrps
        .list_members(&MembershipsQuery::new())
        .await
        .unwrap_err();
    match err {
        ServiceError::Platform {
            operation,
            status,
            url,
            message,
        } => {
            assert_eq!(operation, "list memberships");
            assert_eq!(status, 404);
            assert!(
                url.contains("/lti/no-such-course/memberships?limit=100"),
                "{url}"
            );
            assert!(message.is_some());
        }
        other => panic!("expected a platform error, found {other:?}"),
    }
    let mut stream = Box::pin(nrps.stream_members(&MembershipsQuery::new()));
    assert_eq!(
        stream.next().await.unwrap().unwrap_err().code(),
        "platform_error"
    );
    assert!(
        stream.next().await.is_none(),
        "the stream ends after an error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_that_refuses_the_assertion_surfaces_as_token_rejected() {
    let lms = TestPlatform::start(Options::default()).await;
    let services = lms.services();
    // Wrong audience: the platform verifies `aud` against its token URL.
    let reg = lms
        .registration()
        .with_assertion_audience("https://elsewhere.example/token");
    let ags = services
        .ags(&reg, &lms.ags_claim(CONTEXT, &ALL_AGS, None))
        .unwrap();
    let err = ags
        .list_line_items(&LineItemsQuery::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "token_rejected", "{err:?}");
    assert_eq!(lms.service_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_progress_values_and_submission_times_are_accepted_by_the_platform() {
    let lms = TestPlatform::start(Options::default()).await;
    let services = lms.services();
    let ags = lms.ags(&services);
    let url = new_item(&ags, "Project", 50.0).await;
    let activities = [
        ActivityProgress::Initialized,
        ActivityProgress::Started,
        ActivityProgress::InProgress,
        ActivityProgress::Submitted,
        ActivityProgress::Completed,
    ];
    let gradings = [
        GradingProgress::NotReady,
        GradingProgress::Failed,
        GradingProgress::Pending,
        GradingProgress::PendingManual,
        GradingProgress::FullyGraded,
    ];
    let mut t = 0;
    for a in activities {
        for g in gradings {
            t += 1;
            let mut score =
                Score::new("learner-a", a, g, ts(t)).with_comment(format!("{a:?}/{g:?}"));
            score.submission = Some(lti_message::ags::ScoreSubmission {
                started_at: Some(ts(0)),
                submitted_at: Some(ts(t)),
            });
            if g == GradingProgress::FullyGraded {
                score = score.with_score(40.0, 50.0);
            }
            ags.post_score(&url, &score).await.unwrap();
        }
    }
    let results = ags.list_results(&url, &ResultsQuery::new()).await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].result_score, Some(40.0));
    assert_eq!(results[0].comment.as_deref(), Some("Completed/FullyGraded"));
}

/// Loopback throughput in the test profile; run with
/// `cargo test -p lti-services --release --test loopback -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check; prints scores per second"]
async fn measure_scores_per_second_through_one_client() {
    let lms = TestPlatform::start(Options::default()).await;
    let services = lms.services();
    let ags = lms.ags(&services);
    let url = new_item(&ags, "Throughput", 10.0).await;
    for concurrency in [1usize, 8, 32] {
        let n = 2000u32;
        let scores: Vec<Score> = (0..n)
            .map(|u| {
                Score::completed_fully_graded(format!("c{concurrency}-u{u}"), 5.0, 10.0, ts(1))
            })
            .collect();
        let started = std::time::Instant::now();
        stream::iter(scores.iter())
            .map(|s| ags.post_score(&url, s))
            .buffer_unordered(concurrency)
            .try_collect::<Vec<()>>()
            .await
            .unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "concurrency {concurrency:>2}: {n} scores in {secs:.3} s = {:.0} scores/s",
            f64::from(n) / secs
        );
    }
    assert_eq!(lms.token_requests(), 1);
}

/// `LtiServices::for_launch`: one call from a verified launch's platform
/// registration and claims to ready AGS and NRPS clients sharing the token
/// cache; grading the launch's own line item is one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_from_a_launch_grades_its_line_item_and_reads_its_roster() {
    use lti_message::IdTokenClaims;
    use lti_registry::{KeySource, PlatformRegistration, QuirkProfile as RegistryQuirks};

    let lms = TestPlatform::start(Options::default()).await;
    seed_roster(&lms, 5);
    let services = lms.services();
    let item = lms
        .ags(&services)
        .create_line_item(&LineItem::new("Launch item", 10.0))
        .await
        .unwrap();
    let url = item.id.unwrap();
    let mut platform = PlatformRegistration::new(
        lms.base.clone(),
        CLIENT_ID,
        format!("{}/auth", lms.base),
        lms.token_url(),
        KeySource::StaticJwks {
            jwks: serde_json::json!({"keys": []}),
        },
    );
    platform.quirks = RegistryQuirks::Moodle;
    let claims = IdTokenClaims {
        ags_endpoint: Some(lms.ags_claim(CONTEXT, &ALL_AGS, Some(url.clone()))),
        nrps: Some(lms.nrps_claim(CONTEXT)),
        ..IdTokenClaims::default()
    };
    let launch = services.for_launch(&platform, lms.tool_key.clone(), &claims);
    assert_eq!(launch.registration().profile(), QuirkProfile::Moodle);
    assert_eq!(launch.registration().client_id(), CLIENT_ID);

    launch
        .ags()
        .unwrap()
        .grade_launch_line_item(&Score::completed_fully_graded(
            "user-0001",
            7.0,
            10.0,
            ts(1),
        ))
        .await
        .unwrap();
    let results = lms
        .grade_book
        .results_of(&lms.grade_book.line_items_in_context(CONTEXT)[0].id);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].user_id, "user-0001");
    assert_eq!(results[0].score.score_given, Some(7.0));

    let roster = launch
        .nrps()
        .unwrap()
        .list_members(&MembershipsQuery::new())
        .await
        .unwrap();
    assert_eq!(roster.members.len(), 5);
    // The AGS and NRPS tokens came from the registration's token endpoint,
    // one per scope set, and a second launch reuses them from the cache.
    assert_eq!(lms.token_requests(), 2);
    let again = services.for_launch(&platform, lms.tool_key.clone(), &claims);
    again
        .ags()
        .unwrap()
        .grade_launch_line_item(&Score::completed_fully_graded(
            "user-0002",
            9.0,
            10.0,
            ts(2),
        ))
        .await
        .unwrap();
    assert_eq!(lms.token_requests(), 2);

    // A launch without the claims: specific codes, nothing sent.
    let bare = services.for_launch(&platform, lms.tool_key.clone(), &IdTokenClaims::default());
    assert!(!bare.has_ags() && !bare.has_nrps());
    assert_eq!(bare.ags().unwrap_err().code(), "missing_endpoint");
    assert_eq!(bare.nrps().unwrap_err().code(), "missing_endpoint");
    // A launch whose AGS claim lacks the score scope: refused before sending.
    let read_only = IdTokenClaims {
        ags_endpoint: Some(lms.ags_claim(CONTEXT, &[scope::LINE_ITEM_READONLY], Some(url))),
        ..IdTokenClaims::default()
    };
    let sent = lms.service_requests();
    let err = services
        .for_launch(&platform, lms.tool_key.clone(), &read_only)
        .ags()
        .unwrap()
        .grade_launch_line_item(&Score::completed_fully_graded(
            "user-0003",
            1.0,
            10.0,
            ts(3),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "scope_not_granted");
    assert_eq!(lms.service_requests(), sent);
}
