#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The provider data model's rules, applied through verified launches.

mod common;

use std::sync::Arc;

use common::{Fixture, KEY, LAUNCH_URL, NOW, SECRET};
use lti_store::MemoryProviderStore;
use lti11::model::{ProviderStore, SiloId};
use lti11::oauth::OAuthParams;
use lti11::{Credentials, Launch, LaunchRequest, ProviderModel, SignedRequest};

struct Env {
    fx: Fixture,
    model: ProviderModel<MemoryProviderStore>,
    n: std::sync::atomic::AtomicUsize,
}

impl Env {
    fn new() -> Self {
        let fx = Fixture::new();
        let model =
            ProviderModel::new(MemoryProviderStore::new()).with_clock(Arc::new(fx.clock.clone()));
        Env {
            fx,
            model,
            n: Default::default(),
        }
    }

    async fn launch(&self, req: LaunchRequest) -> Launch {
        self.launch_as(req, KEY, SECRET).await
    }

    async fn launch_as(&self, req: LaunchRequest, key: &str, secret: &str) -> Launch {
        let n = self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut p = OAuthParams::new(NOW as u64);
        p.nonce = format!("model-{n}");
        let signed = req
            .sign_with(LAUNCH_URL, &Credentials::new(key, secret), &p)
            .unwrap();
        let body = signed.form_body();
        self.fx
            .launches()
            .verify(&SignedRequest::form_post(LAUNCH_URL, body.as_bytes()))
            .await
            .unwrap()
    }
}

fn base(user: &str) -> LaunchRequest {
    LaunchRequest::new("rl-1")
        .param("user_id", user)
        .roles(&["Learner"])
        .context("ctx-1", "Course One")
}

#[tokio::test]
async fn resource_changing_context_is_rejected() {
    let env = Env::new();
    env.model
        .record_launch(&env.launch(base("u1")).await, "s1")
        .await
        .unwrap();
    let moved = env.launch(base("u1").param("context_id", "ctx-2")).await;
    let err = env.model.record_launch(&moved, "s1").await.unwrap_err();
    assert_eq!(err.code(), "resource_context_changed");
    assert_eq!(err.status(), http::StatusCode::CONFLICT);
    let stored = env
        .model
        .store()
        .get_resource(KEY, "rl-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.context_id.as_deref(), Some("ctx-1"));
}

#[tokio::test]
async fn launch_without_context_keeps_the_bound_one() {
    let env = Env::new();
    env.model
        .record_launch(&env.launch(base("u1")).await, "s1")
        .await
        .unwrap();
    let bare = LaunchRequest::new("rl-1").param("user_id", "u1");
    let rec = env
        .model
        .record_launch(&env.launch(bare).await, "s1")
        .await
        .unwrap();
    assert_eq!(rec.context.unwrap().context_id, "ctx-1");
}

#[tokio::test]
async fn context_and_user_details_are_refreshed_only_when_sent() {
    let env = Env::new();
    let first = base("u1")
        .param("context_label", "BIO1")
        .param("lis_person_name_full", "Ada L")
        .param("lis_person_contact_email_primary", "ada@example.edu");
    env.model
        .record_launch(&env.launch(first).await, "s1")
        .await
        .unwrap();
    let second = base("u1")
        .param("context_title", "Course One (2025)")
        .param("lis_person_name_full", "Ada Lovelace");
    let rec = env
        .model
        .record_launch(&env.launch(second).await, "s1")
        .await
        .unwrap();
    let ctx = rec.context.unwrap();
    assert_eq!(ctx.title.as_deref(), Some("Course One (2025)"));
    assert_eq!(ctx.label.as_deref(), Some("BIO1"));
    let user = rec.user.unwrap();
    assert_eq!(user.name_full.as_deref(), Some("Ada Lovelace"));
    assert_eq!(user.email.as_deref(), Some("ada@example.edu"));
}

#[tokio::test]
async fn lti_user_maps_to_one_account_created_on_first_launch() {
    let env = Env::new();
    let a = env
        .model
        .record_launch(&env.launch(base("u1")).await, "s1")
        .await
        .unwrap();
    assert!(a.account_created);
    let b = env
        .model
        .record_launch(&env.launch(base("u1")).await, "s2")
        .await
        .unwrap();
    assert!(!b.account_created);
    assert_eq!(a.user.unwrap().account, b.user.unwrap().account);
    let other_consumer = env
        .model
        .record_launch(
            &env.launch_as(base("u1"), "other-key", "other-secret").await,
            "s3",
        )
        .await
        .unwrap();
    assert!(
        other_consumer.account_created,
        "user ids are unique per consumer only"
    );
}

#[tokio::test]
async fn a_session_holds_several_visits_and_a_new_user_ends_the_old_ones() {
    let env = Env::new();
    env.model
        .record_launch(&env.launch(base("u1")).await, "s1")
        .await
        .unwrap();
    let second_tab = base("u1").param("resource_link_id", "rl-2");
    env.model
        .record_launch(&env.launch(second_tab).await, "s1")
        .await
        .unwrap();
    assert_eq!(env.model.store().open_visits("s1").await.unwrap().len(), 2);

    let other_user = base("u2").param("resource_link_id", "rl-3");
    let rec = env
        .model
        .record_launch(&env.launch(other_user).await, "s1")
        .await
        .unwrap();
    assert_eq!(rec.ended_visits, 2);
    let open = env.model.store().open_visits("s1").await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].user_id.as_deref(), Some("u2"));
}

#[tokio::test]
async fn permissions_come_from_roles() {
    let env = Env::new();
    let learner = env
        .model
        .record_launch(&env.launch(base("u1")).await, "s1")
        .await
        .unwrap();
    assert!(learner.permissions.read && !learner.permissions.write);
    let teacher = base("u9").roles(&["urn:lti:role:ims/lis/Instructor"]);
    let rec = env
        .model
        .record_launch(&env.launch(teacher).await, "s9")
        .await
        .unwrap();
    assert!(rec.permissions.write && rec.permissions.configure);
}

#[tokio::test]
async fn repeated_launches_do_not_duplicate_the_graded_assignment() {
    let env = Env::new();
    let graded = |sid: &str| base("u1").outcomes("https://lms.example/outcomes", sid);
    let a = env
        .model
        .record_launch(&env.launch(graded("sid-1")).await, "s1")
        .await
        .unwrap();
    env.fx.clock.advance(10);
    let second = env.launch(graded("sid-2")).await;
    let b = env.model.record_launch(&second, "s1").await.unwrap();
    assert_eq!(a.assignment.unwrap().created_at, NOW);
    assert_eq!(
        b.assignment.clone().unwrap().created_at,
        NOW,
        "kept from the first launch"
    );
    let all = env.model.store().list_assignments(KEY).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].sourced_id, "sid-2");
    let target = lti11::OutcomeTarget::from(&all[0]);
    assert_eq!(target.sourced_id, "sid-2");
    assert_eq!(target.service_url, "https://lms.example/outcomes");
    let creds = Credentials::from(second.consumer());
    assert_eq!((creds.key.as_str(), creds.secret.expose()), (KEY, SECRET));
    let service = env
        .model
        .store()
        .get_outcome_service(KEY)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(service.service_url, "https://lms.example/outcomes");
    let ungraded = env
        .model
        .record_launch(&env.launch(base("u1")).await, "s1")
        .await
        .unwrap();
    assert!(ungraded.assignment.is_none());
}

#[tokio::test]
async fn consumers_default_to_their_own_silo_and_can_share_one() {
    let env = Env::new();
    let a = env
        .model
        .record_launch(&env.launch(base("u1")).await, "s1")
        .await
        .unwrap();
    assert_eq!(a.silo, SiloId::of_consumer(KEY));
    let school = SiloId("school-a".into());
    env.model.store().assign_silo(KEY, &school).await.unwrap();
    let b = env
        .model
        .record_launch(&env.launch(base("u1")).await, "s1")
        .await
        .unwrap();
    assert_eq!(b.silo, school);
}

#[tokio::test]
async fn only_a_newer_score_version_may_be_sent() {
    let env = Env::new();
    let graded = base("u1").outcomes("https://lms.example/outcomes", "sid-1");
    let rec = env
        .model
        .record_launch(&env.launch(graded).await, "s1")
        .await
        .unwrap();
    let assignment = rec.assignment.unwrap();
    assert_eq!(assignment.score_version, 0);
    assert!(env.model.claim_score_version(&assignment, 2).await.unwrap());
    assert!(!env.model.claim_score_version(&assignment, 1).await.unwrap());
    assert!(!env.model.claim_score_version(&assignment, 2).await.unwrap());
    // A relaunch keeps the claimed version.
    let again = base("u1").outcomes("https://lms.example/outcomes", "sid-1");
    let rec = env
        .model
        .record_launch(&env.launch(again).await, "s1")
        .await
        .unwrap();
    assert_eq!(rec.assignment.unwrap().score_version, 2);
    let mut unknown = assignment.clone();
    unknown.user_id = "nobody".to_owned();
    let err = env
        .model
        .claim_score_version(&unknown, 3)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        lti11::Error::NotFound {
            entity: "graded assignment"
        }
    ));
    assert_eq!(err.code(), "not_found");
}

/// Open edX keys outcome services by consumer and instance: two LMS instances
/// that share a key keep their users, outcome services and grades apart.
#[tokio::test]
async fn two_instances_sharing_a_key_never_mix_records_or_grades() {
    let env = Env::new();
    let from = |guid: &str, sid: &str| {
        base("u1")
            .param("tool_consumer_instance_guid", guid)
            .outcomes(format!("https://{guid}/outcomes"), sid)
    };
    let a = env
        .model
        .record_launch(&env.launch(from("lms-a.example", "sid-a")).await, "s1")
        .await
        .unwrap();
    let b = env
        .model
        .record_launch(&env.launch(from("lms-b.example", "sid-b")).await, "s1")
        .await
        .unwrap();
    assert_ne!(a.scope, b.scope);
    assert_eq!(lti11::model::scope_consumer_key(&a.scope), KEY);
    assert_eq!(
        lti11::model::scope_instance_guid(&b.scope),
        Some("lms-b.example")
    );
    // The same user_id on two instances is two users with two accounts; the
    // silo stays the consumer's.
    let (ua, ub) = (a.user.unwrap(), b.user.unwrap());
    assert_ne!(ua.account, ub.account);
    assert_eq!(a.silo, b.silo);
    // The same session: a launch from the other instance is not "another
    // user of the same consumer", each instance keeps its own visit.
    assert_eq!(b.ended_visits, 0);
    assert_eq!(env.model.store().open_visits("s1").await.unwrap().len(), 2);

    let store = env.model.store();
    let only_a = store.list_assignments(&a.scope).await.unwrap();
    let only_b = store.list_assignments(&b.scope).await.unwrap();
    assert_eq!(only_a.len(), 1);
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_a[0].sourced_id, "sid-a");
    assert_eq!(only_b[0].sourced_id, "sid-b");
    assert_eq!(only_a[0].service_url, "https://lms-a.example/outcomes");
    assert!(store.list_assignments(KEY).await.unwrap().is_empty());
    assert_eq!(
        store
            .get_outcome_service(&b.scope)
            .await
            .unwrap()
            .unwrap()
            .service_url,
        "https://lms-b.example/outcomes"
    );
    // Score versions are per instance.
    let ga = a.assignment.unwrap();
    let gb = b.assignment.unwrap();
    assert!(env.model.claim_score_version(&ga, 5).await.unwrap());
    assert!(env.model.claim_score_version(&gb, 1).await.unwrap());
    assert_eq!(
        store
            .get_assignment(&b.scope, "rl-1", "u1")
            .await
            .unwrap()
            .unwrap()
            .score_version,
        1
    );

    // A launch without the GUID is keyed by the consumer key alone.
    let plain = env
        .model
        .record_launch(&env.launch(base("u1")).await, "s2")
        .await
        .unwrap();
    assert_eq!(plain.scope, KEY);
}

#[tokio::test]
async fn keyed_by_consumer_only_ignores_the_instance_guid() {
    let env = Env::new();
    let model = ProviderModel::new(MemoryProviderStore::new())
        .with_clock(Arc::new(env.fx.clock.clone()))
        .keyed_by_consumer_only();
    let launch = env
        .launch(base("u1").param("tool_consumer_instance_guid", "lms-a.example"))
        .await;
    let record = model.record_launch(&launch, "s1").await.unwrap();
    assert_eq!(record.scope, KEY);
    assert!(model.store().get_user(KEY, "u1").await.unwrap().is_some());
}
