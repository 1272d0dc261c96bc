//! Which contexts' AGS/NRPS services a tool may use: by default only those it was
//! launched in (with service claims) or granted; refusals are a 403
//! `context_not_granted` that reads the same whether the context exists or not; the
//! insecure opt-in restores platform-wide access.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http::{Method, Request, Response, StatusCode};
use lti_message::nrps::MembershipContext;
use lti_platform::services::{ContextAccess, MemoryContextGrants, MemoryRoster, RosterMember};
use lti_platform::{AuthRequest, LaunchSpec, PlatformError, PlatformUser};

const LINEITEM: &str = "application/vnd.ims.lis.v2.lineitem+json";
const OTHER_TOOL: &str = "other-tool";
const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";

fn roster() -> Arc<MemoryRoster> {
    let roster = Arc::new(MemoryRoster::new());
    for id in ["course-a", "course-b"] {
        roster.add_context(MembershipContext {
            id: id.to_owned(),
            label: None,
            title: None,
        });
        roster.upsert_member(id, RosterMember::new("u-1", [LEARNER]));
    }
    roster
}

/// The test tool and a second tool, both registered with every service scope.
fn two_tools() -> Fixture {
    let mut f = fixture();
    let mut other = registration();
    other.client_id = OTHER_TOOL.to_owned();
    f.registry.register(other).unwrap();
    f.platform = f.platform.with_roster(roster());
    f
}

fn token_for(f: &Fixture, client_id: &str) -> String {
    let scopes: BTreeSet<String> = [SCOPE_LINEITEM, SCOPE_RESULT, SCOPE_SCORE, SCOPE_NRPS]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    f.platform
        .issue_access_token(client_id, scopes)
        .unwrap()
        .access_token
}

/// Runs the whole launch (login initiation, authorization request) of the test tool
/// and returns the id_token's claims.
async fn launch(f: &Fixture, spec: &LaunchSpec) -> Result<serde_json::Value, PlatformError> {
    let init = f.platform.start_launch(spec).await.unwrap();
    let req = get(&auth_query(&init));
    let answer = f
        .platform
        .authorize(
            &AuthRequest::from_http(&req).unwrap(),
            Some(&PlatformUser::new("u-1")),
        )
        .await
        .map_err(|e| e.error)?;
    let verifier = lti_jose::Verifier::new(&[lti_jose::Algorithm::RS256]).unwrap();
    Ok(verifier
        .verify_with_source(&answer.id_token, &f.platform.keys().jwks(), "")
        .await
        .unwrap())
}

fn spec_in(context: &str) -> LaunchSpec {
    LaunchSpec::resource_link(CLIENT_ID, DEPLOYMENT_ID, "u-1", "rl-1")
        .with_roles([LEARNER])
        .with_context(context, None, None)
}

async fn call(f: &Fixture, method: Method, path: &str, token: &str) -> Response<Bytes> {
    let mut b = Request::builder()
        .method(method.clone())
        .uri(path)
        .header("authorization", format!("Bearer {token}"));
    let body = if method == Method::POST {
        b = b.header("content-type", LINEITEM);
        r#"{"label":"Quiz","scoreMaximum":10}"#
    } else {
        ""
    };
    f.platform
        .services_endpoint(&b.body(Bytes::from(body)).unwrap())
        .await
}

/// Asserts the response is the context refusal and returns its body.
fn assert_not_granted(resp: &Response<Bytes>, what: &str) -> serde_json::Value {
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{what}");
    let body = json_body(resp);
    assert_eq!(body["error"], "context_not_granted", "{what}");
    body
}

/// Asserts a GET of `path` with `token` is the context refusal.
async fn assert_get_refused(f: &Fixture, path: &str, token: &str) {
    assert_not_granted(&call(f, Method::GET, path, token).await, path);
}

/// Asserts `method` on `path` with `token` answers `status`; returns the JSON body.
async fn expect(
    f: &Fixture,
    method: Method,
    path: &str,
    token: &str,
    status: StatusCode,
) -> serde_json::Value {
    let resp = call(f, method, path, token).await;
    assert_eq!(resp.status(), status, "{path}: {:?}", resp.body());
    json_body(&resp)
}

/// A GET of `path` with `token` must succeed; returns the JSON body.
async fn get_ok(f: &Fixture, path: &str, token: &str) -> serde_json::Value {
    expect(f, Method::GET, path, token, StatusCode::OK).await
}

/// A POST of a line item to `path` with `token` must create it.
async fn post_created(f: &Fixture, path: &str, token: &str) {
    expect(f, Method::POST, path, token, StatusCode::CREATED).await;
}

/// Every service route of `context`, with the method used on it.
fn routes(context: &str) -> Vec<(Method, String)> {
    vec![
        (Method::GET, format!("/lti/{context}/lineitems")),
        (Method::POST, format!("/lti/{context}/lineitems")),
        (Method::GET, format!("/lti/{context}/lineitems/1")),
        (Method::DELETE, format!("/lti/{context}/lineitems/1")),
        (Method::GET, format!("/lti/{context}/lineitems/1/results")),
        (Method::POST, format!("/lti/{context}/lineitems/1/scores")),
        (Method::GET, format!("/lti/{context}/memberships")),
    ]
}

#[tokio::test]
async fn a_launch_grants_its_context_and_nothing_else() {
    let f = two_tools();
    let claims = launch(&f, &spec_in("course-a")).await.unwrap();
    assert!(
        claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]["lineitems"]
            .as_str()
            .unwrap()
            .ends_with("/lti/course-a/lineitems")
    );
    let t = token_for(&f, CLIENT_ID);

    // Context A: line items and roster work.
    post_created(&f, "/lti/course-a/lineitems", &t).await;
    let items = get_ok(&f, "/lti/course-a/lineitems", &t).await;
    assert_eq!(items.as_array().unwrap().len(), 1);
    let members = get_ok(&f, "/lti/course-a/memberships", &t).await;
    assert_eq!(members["members"].as_array().unwrap().len(), 1);

    // Context B exists, but the tool was never launched there: every route refuses.
    for (method, path) in routes("course-b") {
        assert_not_granted(&call(&f, method.clone(), &path, &t).await, &path);
    }
    // A context that does not exist reads exactly the same: nothing leaks.
    let existing = call(&f, Method::GET, "/lti/course-b/memberships", &t).await;
    let missing = call(&f, Method::GET, "/lti/no-such-course/memberships", &t).await;
    assert_eq!(
        assert_not_granted(&existing, "existing"),
        assert_not_granted(&missing, "missing")
    );
    assert_eq!(existing.headers(), missing.headers());
}

#[tokio::test]
async fn another_tool_is_refused_in_a_context_the_first_was_launched_in() {
    let f = two_tools();
    launch(&f, &spec_in("course-a")).await.unwrap();
    let theirs = token_for(&f, OTHER_TOOL);
    for (method, path) in routes("course-a") {
        assert_not_granted(&call(&f, method.clone(), &path, &theirs).await, &path);
    }
    // The refusal comes after the token and scope checks.
    let resp = call(&f, Method::GET, "/lti/course-a/lineitems", "forged").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let narrow = f
        .platform
        .issue_access_token(OTHER_TOOL, [SCOPE_SCORE.to_owned()].into())
        .unwrap()
        .access_token;
    let resp = call(&f, Method::GET, "/lti/course-a/memberships", &narrow).await;
    assert_eq!(json_body(&resp)["error"], "insufficient_scope");
}

#[tokio::test]
async fn launches_without_service_claims_or_context_grant_nothing() {
    const AGS: &str = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint";
    const NRPS: &str = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice";
    async fn granted(f: &Fixture) -> bool {
        f.platform
            .context_access()
            .may_access(CLIENT_ID, "course-a")
            .await
            .unwrap()
    }
    // No context: no AGS/NRPS claims, no grant.
    let f = two_tools();
    let spec =
        LaunchSpec::resource_link(CLIENT_ID, DEPLOYMENT_ID, "u-1", "rl-1").with_roles([LEARNER]);
    let claims = launch(&f, &spec).await.unwrap();
    assert!(claims.get(AGS).is_none() && claims.get(NRPS).is_none());
    assert!(!granted(&f).await);

    // A tool registered without service scopes gets no service claims: no grant.
    let mut bare = registration();
    bare.scopes.clear();
    let f = fixture_with(bare);
    let claims = launch(&f, &spec_in("course-a")).await.unwrap();
    assert_eq!(
        claims["https://purl.imsglobal.org/spec/lti/claim/context"]["id"],
        "course-a"
    );
    assert!(claims.get(AGS).is_none() && claims.get(NRPS).is_none());
    assert!(!granted(&f).await);

    // The same launch with service scopes does grant (the control for the above).
    let f = two_tools();
    launch(&f, &spec_in("course-a")).await.unwrap();
    assert!(granted(&f).await);

    // Signing an id_token without the launch flow grants nothing either.
    let f = two_tools();
    let tool = registration();
    f.platform
        .mint_id_token(&tool, &PlatformUser::new("u-1"), &spec_in("course-a"), "n")
        .unwrap();
    let t = token_for(&f, CLIENT_ID);
    assert_get_refused(&f, "/lti/course-a/lineitems", &t).await;
}

#[tokio::test]
async fn pre_granting_a_context_opens_it_for_that_tool_only() {
    let f = two_tools();
    f.platform
        .grant_context(OTHER_TOOL, "course-b")
        .await
        .unwrap();
    let theirs = token_for(&f, OTHER_TOOL);
    get_ok(&f, "/lti/course-b/memberships", &theirs).await;
    post_created(&f, "/lti/course-b/lineitems", &theirs).await;
    assert_get_refused(&f, "/lti/course-a/memberships", &theirs).await;
    let mine = token_for(&f, CLIENT_ID);
    assert_get_refused(&f, "/lti/course-b/memberships", &mine).await;
}

#[tokio::test]
async fn withdrawing_a_grant_stops_tokens_already_issued() {
    let mut f = two_tools();
    let grants = Arc::new(MemoryContextGrants::new());
    f.platform = f.platform.with_context_access(grants.clone());
    launch(&f, &spec_in("course-a")).await.unwrap();
    assert!(grants.contains(CLIENT_ID, "course-a"));
    let t = token_for(&f, CLIENT_ID);
    get_ok(&f, "/lti/course-a/lineitems", &t).await;
    assert!(grants.remove(CLIENT_ID, "course-a"));
    assert!(!grants.remove(CLIENT_ID, "course-a"));
    assert_get_refused(&f, "/lti/course-a/lineitems", &t).await;
}

#[tokio::test]
async fn the_insecure_opt_in_restores_access_to_every_context() {
    let mut f = two_tools();
    f.platform = f.platform.insecure_open_context_access();
    let theirs = token_for(&f, OTHER_TOOL);
    get_ok(&f, "/lti/course-a/memberships", &theirs).await;
    post_created(&f, "/lti/course-b/lineitems", &theirs).await;
    // An unknown context is then an ordinary 404 from the roster.
    let body = expect(
        &f,
        Method::GET,
        "/lti/no-such-course/memberships",
        &theirs,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(body["error"], "not_found");
}

/// A policy whose store is down.
struct Unavailable;

fn store_down() -> PlatformError {
    PlatformError::Backend {
        backend: "context grants",
        reason: "connection refused".to_owned(),
    }
}

#[async_trait::async_trait]
impl ContextAccess for Unavailable {
    async fn may_access(&self, _client_id: &str, _context_id: &str) -> lti_platform::Result<bool> {
        Err(store_down())
    }

    async fn grant(&self, _client_id: &str, _context_id: &str) -> lti_platform::Result<()> {
        Err(store_down())
    }
}

#[tokio::test]
async fn a_failing_grant_store_fails_the_launch_and_the_service_call() {
    let mut f = two_tools();
    f.platform = f.platform.with_context_access(Arc::new(Unavailable));
    let err = launch(&f, &spec_in("course-a")).await.unwrap_err();
    assert_eq!(err.code(), "backend_unavailable");
    let t = token_for(&f, CLIENT_ID);
    let body = expect(
        &f,
        Method::GET,
        "/lti/course-a/lineitems",
        &t,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(body["error"], "backend_unavailable");
    // A launch that hands out no service endpoints does not need the store.
    let spec =
        LaunchSpec::resource_link(CLIENT_ID, DEPLOYMENT_ID, "u-1", "rl-1").with_roles([LEARNER]);
    launch(&f, &spec).await.unwrap();
}
