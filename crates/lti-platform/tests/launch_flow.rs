//! Full launches between `lti-platform` and `lti-tool`, wired through in-process calls:
//! platform login initiation → tool login → platform authorization endpoint → tool
//! launch (→ tool deep-linking response → platform return endpoint).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http::{Method, Request};
use lti_message::deep_linking::{DeepLinkLineItem, LtiResourceLinkItem};
use lti_message::{ContentItem, LtiMessage};
use lti_platform::{
    AuthRequest, DeepLinkingOptions, LaunchSpec, MemoryToolRegistry, Platform, PlatformConfig,
    PlatformError, PlatformKeys, PlatformSecret, PlatformUser, SubjectPolicy,
};
use lti_registry::{
    Deployment, KeySource, PlatformRegistration, SecretCipher, SecretString, Store,
};
use lti_tool::{Launch, Tool, ToolRequest};

const AUTH_URL: &str = "https://lms.example.edu/auth";
const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";

struct World {
    platform: Platform,
    tool: Tool,
}

async fn world(policy: SubjectPolicy) -> World {
    let registry = Arc::new(MemoryToolRegistry::new());
    let keys = Arc::new(PlatformKeys::new(key(PLATFORM_PEM, "platform-key-1")));
    let jwks = keys.jwks();

    let cipher = SecretCipher::insecure_plaintext_for_tests();
    let mem = Arc::new(lti_store::MemoryStore::new(
        cipher,
        lti_registry::system_clock(),
    ));
    let store = Store::from_backend(mem);
    store
        .registrations
        .insert_registration(
            &PlatformRegistration::new(
                ISSUER,
                CLIENT_ID,
                AUTH_URL,
                TOKEN_URL,
                KeySource::StaticJwks {
                    jwks: serde_json::to_value(&jwks).unwrap(),
                },
            )
            .with_deployment(Deployment::active(DEPLOYMENT_ID)),
        )
        .await
        .unwrap();
    store
        .tool_keys
        .add_next_key("tool-key-1", "RS256", &SecretString::new(TOOL_PEM))
        .await
        .unwrap();
    store.tool_keys.promote_next_key().await.unwrap();
    let tool = Tool::builder("https://tool.example.com/", &store)
        .key_source(Arc::new(jwks))
        .state_cookie_secret(&[9u8; 32])
        .allow_target_link_uri_prefix("https://tool.example.com/")
        .build()
        .unwrap();

    let reg = registration()
        .with_redirect_uris([tool.redirect_uri().to_owned()])
        .with_subject_policy(policy)
        .with_custom("course", "$Context.title")
        .with_custom("who", "$Person.name.full");
    registry.register(reg).unwrap();
    let platform = Platform::new(
        PlatformConfig::new(ISSUER),
        keys,
        PlatformSecret::from_bytes(&[7u8; 32]).unwrap(),
        registry,
        Arc::new(lti_jose::JwkSet::default()),
    )
    .unwrap();
    World { platform, tool }
}

fn instructor() -> PlatformUser {
    PlatformUser::new("u-42")
        .with_name("Ada", "Lovelace")
        .with_email("ada@example.edu")
        .with_username("ada")
}

fn http_get(url: &str) -> Request<Bytes> {
    Request::builder()
        .method(Method::GET)
        .uri(url)
        .body(Bytes::new())
        .unwrap()
}

/// Runs login initiation → tool login → platform authorization → tool launch.
async fn launch(w: &World, spec: &LaunchSpec, user: &PlatformUser) -> Launch {
    let init = w.platform.start_launch(spec).await.unwrap();
    let login = w
        .tool
        .login(&ToolRequest::from_http(http_get(&init.redirect_url())))
        .await
        .unwrap();
    let location = login.location().unwrap().to_owned();
    assert!(location.starts_with(AUTH_URL), "{location}");
    let cookie = login
        .set_cookies()
        .next()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let auth = AuthRequest::from_http(&http_get(&location)).unwrap();
    let answer = w.platform.authorize(&auth, Some(user)).await.unwrap();
    assert_eq!(answer.redirect_uri, w.tool.redirect_uri());
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in answer.fields() {
        ser.append_pair(&k, &v);
    }
    let post = Request::builder()
        .method(Method::POST)
        .uri(&answer.redirect_uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(Bytes::from(ser.finish()))
        .unwrap();
    let (launch, _) = w.tool.launch(&ToolRequest::from_http(post)).await.unwrap();
    launch
}

#[tokio::test]
async fn resource_link_launch_reaches_the_tool_with_every_claim() {
    let w = world(SubjectPolicy::Pseudonymous).await;
    let spec = LaunchSpec::resource_link(CLIENT_ID, DEPLOYMENT_ID, "u-42", "rl-1")
        .with_roles([INSTRUCTOR])
        .with_context("course-7", Some("C7"), Some("Course Seven"))
        .with_resource_link_title("Week 1 quiz")
        .with_line_item("3")
        .with_custom("uid", "$User.id")
        .with_custom("link", "$ResourceLink.title")
        .with_custom("unknown", "$Nope.nothing");
    let launch = launch(&w, &spec, &instructor()).await;
    let LtiMessage::ResourceLink(msg) = launch.message() else {
        panic!("expected a resource link launch")
    };
    assert_eq!(msg.resource_link_id(), "rl-1");
    let c = launch.claims();
    let sub = c.sub.clone().unwrap();
    assert_ne!(sub, "u-42", "pseudonymous by default");
    assert_eq!(sub, w.platform.subject_for(&registration(), "u-42"));
    assert_eq!(c.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(c.email.as_deref(), Some("ada@example.edu"));
    assert_eq!(c.roles.as_deref(), Some(&[INSTRUCTOR.to_owned()][..]));
    assert_eq!(
        c.context.as_ref().unwrap().title.as_deref(),
        Some("Course Seven")
    );
    assert_eq!(
        c.resource_link.as_ref().unwrap().title.as_deref(),
        Some("Week 1 quiz")
    );
    let custom = c.custom.as_ref().unwrap();
    assert_eq!(custom["uid"], sub.as_str());
    assert_eq!(custom["link"], "Week 1 quiz");
    assert_eq!(custom["course"], "Course Seven");
    assert_eq!(custom["who"], "Ada Lovelace");
    assert_eq!(
        custom["unknown"], "$Nope.nothing",
        "unknown variables pass unchanged"
    );
    let ags = c.ags_endpoint.as_ref().unwrap();
    assert_eq!(
        ags.lineitems.as_deref(),
        Some("https://lms.example.edu/lti/course-7/lineitems")
    );
    assert_eq!(
        ags.lineitem.as_deref(),
        Some("https://lms.example.edu/lti/course-7/lineitems/3")
    );
    assert!(ags.has_scope(SCOPE_SCORE));
    let nrps = c.nrps.as_ref().unwrap();
    assert_eq!(
        nrps.context_memberships_url.as_deref(),
        Some("https://lms.example.edu/lti/course-7/memberships")
    );
    assert_eq!(nrps.service_versions, ["2.0"]);
    assert_eq!(c.deployment_id.as_deref(), Some(DEPLOYMENT_ID));
    assert_eq!(c.target_link_uri.as_deref(), Some(TOOL_LAUNCH));
}

#[tokio::test]
async fn real_user_ids_are_opt_in() {
    let w = world(SubjectPolicy::RealUserId).await;
    let spec = LaunchSpec::resource_link(CLIENT_ID, DEPLOYMENT_ID, "u-42", "rl-1")
        .with_roles([INSTRUCTOR]);
    let launch = launch(&w, &spec, &instructor()).await;
    assert_eq!(launch.sub(), Some("u-42"));
}

#[tokio::test]
async fn deep_linking_round_trip_returns_the_tools_items_to_the_platform() {
    let w = world(SubjectPolicy::Pseudonymous).await;
    let options = DeepLinkingOptions {
        accept_multiple: false,
        ..DeepLinkingOptions::default()
    };
    let spec = LaunchSpec::deep_linking(CLIENT_ID, DEPLOYMENT_ID, "u-42", options)
        .with_roles([INSTRUCTOR])
        .with_context("course-7", None, Some("Course Seven"));
    let launch = launch(&w, &spec, &instructor()).await;
    let LtiMessage::DeepLinking(dl) = launch.message() else {
        panic!("expected a deep-linking launch")
    };
    assert_eq!(
        dl.deep_link_return_url(),
        "https://lms.example.edu/deep_link_return"
    );
    assert!(
        dl.settings().data.is_some(),
        "the platform always sends sealed data"
    );

    let mut builder = launch.deep_linking_response().unwrap();
    let item = LtiResourceLinkItem {
        url: Some("https://tool.example.com/activity/1".to_owned()),
        title: Some("Activity 1".to_owned()),
        line_item: Some(DeepLinkLineItem {
            score_maximum: 10.0,
            label: Some("Activity 1".to_owned()),
            resource_id: None,
            tag: None,
            grades_released: None,
        }),
        ..LtiResourceLinkItem::default()
    };
    builder
        .add_item(ContentItem::LtiResourceLink(item))
        .unwrap();
    builder.msg("added");
    let jwt = w
        .tool
        .sign_deep_link_response(&launch, &builder)
        .await
        .unwrap();

    let form = form_post("/deep_link_return", &[("JWT", &jwt)]);
    let back = w.platform.deep_link_return(&form).await.unwrap();
    assert_eq!(back.client_id, CLIENT_ID);
    assert_eq!(back.deployment_id, DEPLOYMENT_ID);
    assert_eq!(back.user_id, "u-42");
    assert_eq!(back.context_id.as_deref(), Some("course-7"));
    assert_eq!(back.msg.as_deref(), Some("added"));
    assert_eq!(back.content_items.len(), 1);
    let ContentItem::LtiResourceLink(item) = &back.content_items[0] else {
        panic!("expected an ltiResourceLink item")
    };
    assert_eq!(item.title.as_deref(), Some("Activity 1"));
    assert_eq!(item.line_item.as_ref().unwrap().score_maximum, 10.0);

    let err = w
        .platform
        .verify_deep_linking_response(&jwt)
        .await
        .unwrap_err();
    assert!(matches!(err, PlatformError::ReplayedNonce), "{err:?}");
}

#[tokio::test]
async fn submission_review_launch_names_the_reviewed_learner() {
    let w = world(SubjectPolicy::Pseudonymous).await;
    let spec = LaunchSpec::submission_review(CLIENT_ID, DEPLOYMENT_ID, "u-42", "rl-1", "learner-9")
        .with_roles([INSTRUCTOR])
        .with_context("course-7", None, None)
        .with_line_item("5");
    let launch = launch(&w, &spec, &instructor()).await;
    let LtiMessage::SubmissionReview(sr) = launch.message() else {
        panic!("expected a submission review launch")
    };
    assert_eq!(
        sr.for_user_id(),
        w.platform.subject_for(&registration(), "learner-9")
    );
    assert_eq!(
        sr.ags_endpoint().unwrap().lineitem.as_deref(),
        Some("https://lms.example.edu/lti/course-7/lineitems/5")
    );
}

#[tokio::test]
async fn submission_review_without_a_line_item_is_refused_at_launch_start() {
    let w = world(SubjectPolicy::Pseudonymous).await;
    let spec = LaunchSpec::submission_review(CLIENT_ID, DEPLOYMENT_ID, "u-42", "rl-1", "learner-9")
        .with_context("c", None, None);
    let err = w.platform.start_launch(&spec).await.unwrap_err();
    assert!(
        matches!(
            err,
            PlatformError::InvalidLaunch {
                field: "line_item_id",
                ..
            }
        ),
        "{err:?}"
    );
}
