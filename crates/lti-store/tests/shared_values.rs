//! The `SharedValueStore` conformance suite (cached service tokens, fill
//! locks, context grants, settings created once) against every backend,
//! through two handles of one backend where it has a server (two instances).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(
    feature = "memory",
    feature = "sqlite",
    feature = "postgres",
    feature = "redis"
))]

mod common;

use common::Harness;
use lti_registry::RegistryError;

macro_rules! shared_suite {
    ($backend:ident, $make:path) => {
        mod $backend {
            use super::*;
            shared_suite!(@check $make, values_round_trip_and_expire);
            shared_suite!(@check $make, insert_if_absent_has_exactly_one_winner);
            shared_suite!(@check $make, a_lock_is_released_only_by_its_holder);
            shared_suite!(@check $make, bad_arguments_are_refused);
        }
    };
    (@check $make:path, $check:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $check() {
            let Some(h) = $make().await else { return };
            let h = std::sync::Arc::new(h);
            let run = h.clone();
            let outcome = tokio::spawn(async move { super::$check(&run).await }).await;
            h.cleanup().await;
            if let Err(e) = outcome {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    };
}

shared_suite!(memory, Harness::memory);
shared_suite!(sqlite_memory, Harness::sqlite_memory);
shared_suite!(sqlite_file, Harness::sqlite_file);
shared_suite!(postgres, Harness::postgres);
shared_suite!(redis, Harness::redis);

async fn values_round_trip_and_expire(h: &Harness) {
    let (one, two) = (&h.store.cached_values, &h.second.cached_values);
    assert_eq!(one.get_value("service_token", "k").await.unwrap(), None);
    one.put_value("service_token", "k", "v1", Some(h.now() + 2))
        .await
        .unwrap();
    // The other handle (another instance) reads it.
    assert_eq!(
        two.get_value("service_token", "k")
            .await
            .unwrap()
            .as_deref(),
        Some("v1")
    );
    // Replaced, with a value of another namespace beside it.
    two.put_value("service_token", "k", "v2", Some(h.now() + 2))
        .await
        .unwrap();
    one.put_value("other_ns", "k", "x", None).await.unwrap();
    assert_eq!(
        one.get_value("service_token", "k")
            .await
            .unwrap()
            .as_deref(),
        Some("v2")
    );
    h.advance(3).await;
    assert_eq!(one.get_value("service_token", "k").await.unwrap(), None);
    assert_eq!(two.get_value("service_token", "k").await.unwrap(), None);
    // No expiry: kept until deleted.
    assert_eq!(
        two.get_value("other_ns", "k").await.unwrap().as_deref(),
        Some("x")
    );
    assert!(two.delete_value("other_ns", "k", None).await.unwrap());
    assert!(!one.delete_value("other_ns", "k", None).await.unwrap());
    assert_eq!(one.get_value("other_ns", "k").await.unwrap(), None);
    // An expired value does not block an insert.
    one.put_value("service_token_lock", "l", "old", Some(h.now() + 1))
        .await
        .unwrap();
    h.advance(2).await;
    assert_eq!(
        two.insert_value("service_token_lock", "l", "new", Some(h.now() + 60))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        one.get_value("service_token_lock", "l")
            .await
            .unwrap()
            .as_deref(),
        Some("new")
    );
    // The durable handle works the same way.
    let durable = &h.store.shared_values;
    assert_eq!(
        durable
            .insert_value("context_grant", "4:toolcourse", "1", None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        h.second
            .shared_values
            .get_value("context_grant", "4:toolcourse")
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
}

async fn insert_if_absent_has_exactly_one_winner(h: &Harness) {
    for round in 0..3 {
        let key = format!("race-{round}");
        let exp = h.now() + 300;
        let mut tasks = Vec::new();
        for i in 0..32 {
            let store = if i % 2 == 0 {
                h.store.clone()
            } else {
                h.second.clone()
            };
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                let mine = format!("holder-{i}");
                let got = store
                    .cached_values
                    .insert_value("service_token_lock", &key, &mine, Some(exp))
                    .await
                    .unwrap();
                (mine, got)
            }));
        }
        let mut winners = Vec::new();
        let mut seen = Vec::new();
        for t in tasks {
            let (mine, got) = t.await.unwrap();
            match got {
                None => winners.push(mine),
                Some(existing) => seen.push(existing),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(seen.len(), 31);
        assert!(
            seen.iter().all(|s| *s == winners[0]),
            "every loser sees the winner's value: {seen:?}"
        );
        assert_eq!(
            h.store
                .cached_values
                .get_value("service_token_lock", &key)
                .await
                .unwrap(),
            Some(winners[0].clone())
        );
    }
}

async fn a_lock_is_released_only_by_its_holder(h: &Harness) {
    let (one, two) = (&h.store.cached_values, &h.second.cached_values);
    let exp = Some(h.now() + 60);
    assert_eq!(
        one.insert_value("service_token_lock", "reg\nscope", "me", exp)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        two.insert_value("service_token_lock", "reg\nscope", "other", exp)
            .await
            .unwrap()
            .as_deref(),
        Some("me")
    );
    assert!(
        !two.delete_value("service_token_lock", "reg\nscope", Some("other"))
            .await
            .unwrap(),
        "a non-holder cannot release"
    );
    assert_eq!(
        one.get_value("service_token_lock", "reg\nscope")
            .await
            .unwrap()
            .as_deref(),
        Some("me")
    );
    assert!(
        two.delete_value("service_token_lock", "reg\nscope", Some("me"))
            .await
            .unwrap()
    );
    assert_eq!(
        two.insert_value("service_token_lock", "reg\nscope", "other", exp)
            .await
            .unwrap(),
        None
    );
}

async fn bad_arguments_are_refused(h: &Harness) {
    let s = &h.store.cached_values;
    let field = |e: RegistryError| match e {
        RegistryError::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, found {other:?}"),
    };
    assert_eq!(
        field(s.get_value("Bad:NS", "k").await.unwrap_err()),
        "namespace"
    );
    assert_eq!(field(s.get_value("ns", "").await.unwrap_err()), "key");
    assert_eq!(
        field(
            s.put_value("ns", "k", &"v".repeat(70_000), None)
                .await
                .unwrap_err()
        ),
        "value"
    );
    assert_eq!(
        field(
            s.insert_value("ns", "k", "v", Some(h.now() - 1))
                .await
                .unwrap_err()
        ),
        "expires_at"
    );
}
