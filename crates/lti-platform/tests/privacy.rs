//! What tools and browsers see: the sealed values (`lti_message_hint`, deep-linking
//! `data`, access tokens) reveal nothing and refuse tampering, purpose confusion,
//! foreign secrets and expiry with their specific errors; pseudonymous subjects
//! never leak the platform's user ids; the registration's privacy settings decide
//! whether pictures, SIS ids and login names reach the tool.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use common::*;
use http::{Method, Request, StatusCode};
use lti_message::nrps::MembershipContext;
use lti_platform::services::{MemoryRoster, RosterMember};
use lti_platform::{
    AuthRequest, DeepLinkingOptions, LaunchKind, LaunchSpec, LoginInitiation, Platform,
    PlatformConfig, PlatformError, PlatformKeys, PlatformSecret, PlatformUser, ToolRegistration,
};
use serde_json::Value;

const REAL_USER: &str = "real-user-4711";
const REAL_LEARNER: &str = "real-learner-0815";
const CONTEXT: &str = "course-secret-99";
const CONTEXT_TITLE: &str = "Secret Seminar";
const LINK: &str = "link-secret-7";
const CUSTOM: &str = "custom-secret-value";
const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";
const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";
const USERNAME: &str = "ada.login";
const PICTURE: &str = "https://pics.example.edu/ada.png";
const SOURCEDID: &str = "SIS-4711";
const LEARNER_SOURCEDID: &str = "SIS-0815";
const MEMBERS: &str = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json";

/// Everything someone holding `value` could read from it: the text, and every part
/// between `.` and `:` decoded as URL-safe or standard base64.
fn readings(value: &str) -> Vec<Vec<u8>> {
    let mut out = vec![value.as_bytes().to_vec()];
    for part in value.split(['.', ':']) {
        let part = part.trim_end_matches('=');
        out.extend(URL_SAFE_NO_PAD.decode(part).ok());
        out.extend(STANDARD_NO_PAD.decode(part).ok());
    }
    out
}

/// Asserts none of `secrets` can be read from `value`.
fn reveals_none(what: &str, value: &str, secrets: &[&str]) {
    for reading in readings(value) {
        for secret in secrets {
            assert!(
                !reading
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes()),
                "{what} reveals {secret:?}: {value}"
            );
        }
    }
}

/// A platform with the given registration and a roster of `CONTEXT` holding
/// `REAL_USER` (instructor) and `REAL_LEARNER`, both with pictures and SIS ids.
fn world(tool: ToolRegistration) -> Fixture {
    let roster = MemoryRoster::new();
    roster.add_context(MembershipContext {
        id: CONTEXT.to_owned(),
        label: None,
        title: Some(CONTEXT_TITLE.to_owned()),
    });
    roster.upsert_member(
        CONTEXT,
        RosterMember::new(REAL_USER, [INSTRUCTOR])
            .with_name("Ada", "Lovelace")
            .with_picture(PICTURE)
            .with_sourced_id(SOURCEDID),
    );
    roster.upsert_member(
        CONTEXT,
        RosterMember::new(REAL_LEARNER, [LEARNER])
            .with_picture("https://pics.example.edu/learner.png")
            .with_sourced_id(LEARNER_SOURCEDID),
    );
    let Fixture {
        platform,
        clock,
        registry,
    } = fixture_with(tool);
    Fixture {
        platform: platform.with_roster(Arc::new(roster)),
        clock,
        registry,
    }
}

fn instructor() -> PlatformUser {
    PlatformUser::new(REAL_USER)
        .with_name("Ada", "Lovelace")
        .with_username(USERNAME)
        .with_picture(PICTURE)
        .with_sourced_id(SOURCEDID)
}

fn in_context(spec: LaunchSpec) -> LaunchSpec {
    spec.with_roles([INSTRUCTOR])
        .with_context(CONTEXT, Some("SEC"), Some(CONTEXT_TITLE))
        .with_custom("note", CUSTOM)
}

fn resource_link() -> LaunchSpec {
    in_context(LaunchSpec::resource_link(
        CLIENT_ID,
        DEPLOYMENT_ID,
        REAL_USER,
        LINK,
    ))
    .with_line_item("1")
}

fn deep_linking() -> LaunchSpec {
    in_context(LaunchSpec::deep_linking(
        CLIENT_ID,
        DEPLOYMENT_ID,
        REAL_USER,
        DeepLinkingOptions::default(),
    ))
}

fn submission_review() -> LaunchSpec {
    let mut spec = in_context(LaunchSpec::submission_review(
        CLIENT_ID,
        DEPLOYMENT_ID,
        REAL_USER,
        LINK,
        REAL_LEARNER,
    ))
    .with_line_item("1");
    if let LaunchKind::SubmissionReview { for_user, .. } = &mut spec.kind {
        for_user.person_sourcedid = Some(LEARNER_SOURCEDID.to_owned());
    }
    spec
}

/// What the tool and the browser see of a launch: the login initiation, the
/// auto-submitted form carrying the id_token, and the id_token's claims.
struct Seen {
    init: LoginInitiation,
    form: String,
    id_token: String,
    claims: Value,
}

async fn launch(f: &Fixture, spec: &LaunchSpec, user: &PlatformUser) -> Seen {
    let init = f.platform.start_launch(spec).await.unwrap();
    let request = AuthRequest::from_http(&get(&auth_query(&init))).unwrap();
    let answer = f
        .platform
        .authorize(&request, Some(user))
        .await
        .map_err(|e| e.error)
        .unwrap();
    let id_token = answer.id_token.clone();
    let form = String::from_utf8(answer.into_response().into_body().to_vec()).unwrap();
    let verifier = lti_jose::Verifier::new(&[lti_jose::Algorithm::RS256]).unwrap();
    let claims = verifier
        .verify_with_source(&id_token, &f.platform.keys().jwks(), "")
        .await
        .unwrap();
    Seen {
        init,
        form,
        id_token,
        claims,
    }
}

fn dl_data(seen: &Seen) -> String {
    seen.claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"]["data"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn custom(seen: &Seen, name: &str) -> String {
    seen.claims["https://purl.imsglobal.org/spec/lti/claim/custom"][name]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn memberships(f: &Fixture, token: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .method(Method::GET)
        .uri(format!("/lti/{CONTEXT}/memberships"))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", MEMBERS)
        .body(Bytes::new())
        .unwrap();
    let resp = f.platform.services_endpoint(&req).await;
    let status = resp.status();
    (
        status,
        String::from_utf8(resp.into_body().to_vec()).unwrap(),
    )
}

/// The platform of `world` under another platform secret.
fn with_secret(f: &Fixture, byte: u8) -> Platform {
    Platform::new(
        PlatformConfig::new(ISSUER),
        Arc::new(PlatformKeys::new(key(PLATFORM_PEM, "platform-key-1"))),
        PlatformSecret::from_bytes(&[byte; 32]).unwrap(),
        f.registry.clone(),
        Arc::new(lti_jose::JwkSet::default()),
    )
    .unwrap()
    .with_clock(f.clock.clone())
}

#[tokio::test]
async fn the_message_hint_reveals_no_user_role_context_or_launch_detail() {
    let f = world(registration());
    for spec in [resource_link(), deep_linking(), submission_review()] {
        let init = f.platform.start_launch(&spec).await.unwrap();
        let hint = init.param("lti_message_hint").unwrap();
        assert!(hint.starts_with("lti-mh."), "{hint}");
        let secrets = [
            REAL_USER,
            REAL_LEARNER,
            "Instructor",
            CONTEXT,
            CONTEXT_TITLE,
            LINK,
            CUSTOM,
            LEARNER_SOURCEDID,
        ];
        reveals_none("lti_message_hint", hint, &secrets);
        // Nor does anything else the browser carries to the tool's login URL.
        for (name, value) in &init.params {
            reveals_none(name, value, &secrets);
        }
        reveals_none("login redirect", &init.redirect_url(), &secrets);
        reveals_none("login form", &init.form_html(), &secrets);
        assert_ne!(init.param("login_hint"), Some(REAL_USER));
    }
}

#[tokio::test]
async fn message_hint_refusals_have_their_specific_codes() {
    let f = world(registration());
    let refusal = |req: AuthRequest| {
        let platform = &f.platform;
        async move {
            platform
                .authorize(&req, Some(&instructor()))
                .await
                .unwrap_err()
                .error
        }
    };
    let init = f.platform.start_launch(&resource_link()).await.unwrap();
    let good = AuthRequest::from_http(&get(&auth_query(&init))).unwrap();
    let hint = good.lti_message_hint.clone().unwrap();
    let with_hint = |value: String| {
        let mut req = good.clone();
        req.lti_message_hint = Some(value);
        req
    };

    // Tampered: one character of the ciphertext changed.
    let mut altered = hint.clone().into_bytes();
    let i = altered.len() - 3;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let err = refusal(with_hint(String::from_utf8(altered).unwrap())).await;
    assert_eq!(err.code(), "invalid_message_hint");
    assert!(err.to_string().contains("fails authentication"), "{err}");

    // Sealed under another platform secret.
    let foreign = with_secret(&f, 8)
        .start_launch(&resource_link())
        .await
        .unwrap();
    let err = refusal(with_hint(
        foreign.param("lti_message_hint").unwrap().to_owned(),
    ))
    .await;
    assert_eq!(err.code(), "invalid_message_hint");
    assert!(err.to_string().contains("fails authentication"), "{err}");

    // Purpose confusion: deep-linking data and an access token offered as hints,
    // as they are and relabelled as a hint.
    let data = dl_data(&launch(&f, &deep_linking(), &instructor()).await);
    let token = bearer(&f.platform, &[SCOPE_NRPS]);
    for other in [data, token] {
        let err = refusal(with_hint(other.clone())).await;
        assert_eq!(err.code(), "invalid_message_hint");
        assert!(err.to_string().contains("another purpose"), "{err}");
        let (_, body) = other.split_once('.').unwrap();
        let err = refusal(with_hint(format!("lti-mh.{body}"))).await;
        assert_eq!(err.code(), "invalid_message_hint");
        assert!(err.to_string().contains("fails authentication"), "{err}");
    }

    // Expired.
    f.clock.advance(300);
    let err = refusal(good.clone()).await;
    assert_eq!(err.code(), "expired_message_hint");
    assert!(matches!(err, PlatformError::ExpiredMessageHint { .. }));
}

#[tokio::test]
async fn deep_linking_data_reveals_nothing_and_refusals_have_their_specific_codes() {
    let f = world(registration());
    let seen = launch(&f, &deep_linking(), &instructor()).await;
    let data = dl_data(&seen);
    assert!(data.starts_with("lti-dl."), "{data}");
    reveals_none(
        "deep-linking data",
        &data,
        &[REAL_USER, CONTEXT, CONTEXT_TITLE, CLIENT_ID, DEPLOYMENT_ID],
    );
    let verify = |claims: Value| {
        let platform = &f.platform;
        async move {
            platform
                .verify_deep_linking_response(&assertion(&tool_key(), claims))
                .await
        }
    };
    let refused = |err: PlatformError, found: &str| {
        assert_eq!(err.code(), "invalid_tool_message");
        assert!(err.to_string().contains(found), "{err}");
    };

    let mut altered = data.clone().into_bytes();
    let i = altered.len() - 3;
    altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    refused(
        verify(response_claims(&altered, "n1")).await.unwrap_err(),
        "fails authentication",
    );

    let foreign = with_secret(&f, 8)
        .id_token_claims(&registration(), &instructor(), &deep_linking(), "n")
        .unwrap()
        .deep_linking_settings
        .unwrap()
        .data
        .unwrap();
    refused(
        verify(response_claims(&foreign, "n2")).await.unwrap_err(),
        "fails authentication",
    );

    let hint = seen.init.param("lti_message_hint").unwrap().to_owned();
    refused(
        verify(response_claims(&hint, "n3")).await.unwrap_err(),
        "another purpose",
    );
    let (_, body) = hint.split_once('.').unwrap();
    refused(
        verify(response_claims(&format!("lti-dl.{body}"), "n4"))
            .await
            .unwrap_err(),
        "fails authentication",
    );

    // The genuine data works, and is refused once the session is over.
    let back = verify(response_claims(&data, "n5")).await.unwrap();
    assert_eq!(
        back.user_id, REAL_USER,
        "the application gets the real id back"
    );
    assert_eq!(back.context_id.as_deref(), Some(CONTEXT));
    f.clock.advance(3600);
    let mut late = response_claims(&data, "n6");
    late["iat"] = (NOW + 3600).into();
    late["exp"] = (NOW + 3900).into();
    refused(verify(late).await.unwrap_err(), "late");
}

#[tokio::test]
async fn access_tokens_reveal_nothing_and_refuse_foreign_or_confused_values() {
    let f = world(registration());
    let token = bearer(&f.platform, &[SCOPE_NRPS]);
    assert!(token.starts_with("lti-at."), "{token}");
    reveals_none(
        "access token",
        &token,
        &[CLIENT_ID, "contextmembership", "scope"],
    );
    let foreign = bearer(&with_secret(&f, 8), &[SCOPE_NRPS]);
    let hint = f
        .platform
        .start_launch(&resource_link())
        .await
        .unwrap()
        .param("lti_message_hint")
        .unwrap()
        .to_owned();
    for (value, found) in [(foreign, "fails authentication"), (hint, "another purpose")] {
        let (status, body) = memberships(&f, &value).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "invalid_access_token");
        assert!(
            body["error_description"].as_str().unwrap().contains(found),
            "{body}"
        );
    }
}

#[tokio::test]
async fn with_pseudonymous_subjects_no_tool_visible_value_carries_a_real_user_id() {
    // The registration shares everything but the real id: names, email, pictures,
    // login names and SIS ids do not make the id itself appear.
    let f = world(
        registration()
            .with_picture_shared(true)
            .with_sourcedid_shared(true)
            .with_custom("uid", "$User.id"),
    );
    let real = [REAL_USER, REAL_LEARNER];
    for spec in [resource_link(), deep_linking(), submission_review()] {
        let seen = launch(&f, &spec, &instructor()).await;
        for (name, value) in &seen.init.params {
            reveals_none(name, value, &real);
        }
        reveals_none("id_token", &seen.id_token, &real);
        reveals_none("id_token form", &seen.form, &real);
        let sub = seen.claims["sub"].as_str().unwrap();
        assert_eq!(sub, f.platform.subject_for(&registration(), REAL_USER));
        assert_eq!(custom(&seen, "uid"), sub, "$User.id is the subject");
        if matches!(spec.kind, LaunchKind::DeepLinking { .. }) {
            reveals_none("deep-linking data", &dl_data(&seen), &real);
        }
        if matches!(spec.kind, LaunchKind::SubmissionReview { .. }) {
            assert_eq!(
                seen.claims["https://purl.imsglobal.org/spec/lti/claim/for_user"]["user_id"],
                f.platform.subject_for(&registration(), REAL_LEARNER)
            );
        }
    }
    // The launches granted the context: the roster answers, with subjects only.
    let token = bearer(&f.platform, &[SCOPE_NRPS]);
    reveals_none("access token", &token, &real);
    let (status, body) = memberships(&f, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    reveals_none("NRPS members", &body, &real);
    assert!(body.contains(&f.platform.subject_for(&registration(), REAL_LEARNER)));
}

fn with_user_variables(tool: ToolRegistration) -> ToolRegistration {
    tool.with_custom("login", "$User.username")
        .with_custom("image", "$User.image")
        .with_custom("sis", "$Person.sourcedId")
}

#[tokio::test]
async fn privacy_off_withholds_pictures_sis_ids_and_login_names() {
    let f = world(with_user_variables(registration()));
    let withheld = [USERNAME, PICTURE, SOURCEDID, LEARNER_SOURCEDID];
    for spec in [resource_link(), submission_review()] {
        let seen = launch(&f, &spec, &instructor()).await;
        reveals_none("id_token", &seen.id_token, &withheld);
        assert!(seen.claims.get("picture").is_none(), "{}", seen.claims);
        assert!(
            seen.claims
                .get("https://purl.imsglobal.org/spec/lti/claim/lis")
                .is_none()
        );
        // Unavailable variables are sent unchanged, as LTI requires.
        assert_eq!(custom(&seen, "login"), "$User.username");
        assert_eq!(custom(&seen, "image"), "$User.image");
        assert_eq!(custom(&seen, "sis"), "$Person.sourcedId");
    }
    let (status, body) = memberships(&f, &bearer(&f.platform, &[SCOPE_NRPS])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    reveals_none("NRPS members", &body, &withheld);
    assert!(!body.contains("pics.example.edu"), "{body}");
    assert!(!body.contains("lis_person_sourcedid"), "{body}");
}

#[tokio::test]
async fn privacy_on_shares_pictures_sis_ids_and_login_names() {
    let f = world(with_user_variables(
        registration()
            .with_picture_shared(true)
            .with_sourcedid_shared(true)
            .with_username_shared(true),
    ));
    let seen = launch(&f, &resource_link(), &instructor()).await;
    assert_eq!(seen.claims["picture"], PICTURE);
    assert_eq!(
        seen.claims["https://purl.imsglobal.org/spec/lti/claim/lis"]["person_sourcedid"],
        SOURCEDID
    );
    assert_eq!(custom(&seen, "login"), USERNAME);
    assert_eq!(custom(&seen, "image"), PICTURE);
    assert_eq!(custom(&seen, "sis"), SOURCEDID);
    let review = launch(&f, &submission_review(), &instructor()).await;
    assert_eq!(
        review.claims["https://purl.imsglobal.org/spec/lti/claim/for_user"]["person_sourcedid"],
        LEARNER_SOURCEDID
    );
    let (status, body) = memberships(&f, &bearer(&f.platform, &[SCOPE_NRPS])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    let me = f.platform.subject_for(&registration(), REAL_USER);
    let member = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == me.as_str())
        .unwrap();
    assert_eq!(member["picture"], PICTURE);
    assert_eq!(member["lis_person_sourcedid"], SOURCEDID);
}
