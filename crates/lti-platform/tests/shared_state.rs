//! Two platform instances sharing one store (Redis, PostgreSQL, in memory):
//! a client assertion used concurrently on both is accepted exactly once, and
//! a context granted on one is granted on the other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use lti_platform::services::StoredContextGrants;
use lti_platform::{PlatformError, TokenRequest};
use lti_registry::{AppKey, SecretCipher, Store};
use lti_store::OpenOptions;

/// A fixed schema: each run uses values of its own (nonces expire, grants are
/// revoked).
const PG_SCHEMA: &str = "lti_platform_shared_state_test";

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("LTI_TEST_REQUIRE_BACKENDS").as_deref() != Ok("1"),
                "{var} is unset but LTI_TEST_REQUIRE_BACKENDS=1 requires this backend test to run"
            );
            eprintln!("SKIPPED: {var} is not set, so this test against a real server did not run");
            None
        }
    }
}

async fn two_handles(url: &str) -> (Store, Store) {
    let opts = OpenOptions::new(
        SecretCipher::aes256gcm(AppKey::new("k", &[9u8; 32]).unwrap(), vec![]).unwrap(),
    )
    .with_redis_key_prefix("lti-platform-test:")
    .with_postgres_schema(PG_SCHEMA);
    let one = lti_store::open(url, &opts).await.unwrap();
    let two = if url.starts_with("memory:") {
        one.clone()
    } else {
        lti_store::open(url, &opts).await.unwrap()
    };
    (one, two)
}

/// A platform instance on `store`.
fn instance(store: &Store) -> Fixture {
    let mut f = fixture();
    f.platform = f
        .platform
        .with_replay_store(store.nonces.clone())
        .with_context_access(Arc::new(StoredContextGrants::new(
            store.shared_values.clone(),
        )));
    f
}

async fn shared_state(url: &str) {
    let (one, two) = two_handles(url).await;
    let (a, b) = (Arc::new(instance(&one)), Arc::new(instance(&two)));

    // One assertion, 16 concurrent uses spread over both instances.
    let jwt = assertion(&tool_key(), good_assertion_claims(&unique("jti")));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let f = if i % 2 == 0 { a.clone() } else { b.clone() };
        let jwt = jwt.clone();
        tasks.push(tokio::spawn(async move {
            f.platform
                .exchange(&TokenRequest {
                    grant_type: "client_credentials".to_owned(),
                    client_assertion_type: lti_platform::CLIENT_ASSERTION_TYPE.to_owned(),
                    client_assertion: jwt,
                    scope: SCOPE_SCORE.to_owned(),
                })
                .await
        }));
    }
    let (mut accepted, mut replayed) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(PlatformError::ReplayedAssertion) => replayed += 1,
            Err(e) => panic!("unexpected refusal: {e:?}"),
        }
    }
    assert_eq!((accepted, replayed), (1, 15));

    // A grant recorded by one instance is seen by the other; revoking it on
    // one withdraws it everywhere.
    let context = unique("course");
    assert!(
        !b.platform
            .context_access()
            .may_access(CLIENT_ID, &context)
            .await
            .unwrap()
    );
    a.platform.grant_context(CLIENT_ID, &context).await.unwrap();
    a.platform.grant_context(CLIENT_ID, &context).await.unwrap();
    assert!(
        b.platform
            .context_access()
            .may_access(CLIENT_ID, &context)
            .await
            .unwrap()
    );
    assert!(
        !b.platform
            .context_access()
            .may_access("other-tool", &context)
            .await
            .unwrap(),
        "a grant is per tool"
    );
    let grants = StoredContextGrants::new(two.shared_values.clone());
    assert!(grants.revoke(CLIENT_ID, &context).await.unwrap());
    assert!(
        !a.platform
            .context_access()
            .may_access(CLIENT_ID, &context)
            .await
            .unwrap()
    );
    assert!(!grants.revoke(CLIENT_ID, &context).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_is_shared_by_instances_of_one_process() {
    shared_state("memory://").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_replay_store_and_grants_are_shared() {
    let Some(url) = server_url("LTI_TEST_REDIS_URL") else {
        return;
    };
    shared_state(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_replay_store_and_grants_are_shared() {
    let Some(url) = server_url("LTI_TEST_POSTGRES_URL") else {
        return;
    };
    shared_state(&url).await;
}
