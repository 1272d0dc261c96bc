//! The shared conformance suite run against every backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(
    feature = "memory",
    feature = "sqlite",
    feature = "postgres",
    feature = "redis"
))]

mod common;

use common::Harness;

/// One test per suite function for a backend; `$make` returns `None` (after
/// printing why) when the backend's server is not configured.
macro_rules! suite {
    ($backend:ident, $make:path, [$($check:ident),* $(,)?]) => {
        mod $backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let Some(h) = $make().await else { return };
                    let h = std::sync::Arc::new(h);
                    let run = h.clone();
                    // Run in a task so the backend is cleaned up even when the check panics.
                    let outcome = tokio::spawn(async move { common::$check(&run).await }).await;
                    h.cleanup().await;
                    if let Err(e) = outcome {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            )*
        }
    };
}

/// The short-lived-record checks and the grade outbox (every backend keeps
/// it), plus `$extra`.
macro_rules! ephemeral {
    ($backend:ident, $make:path $(, $extra:ident)*) => {
        suite!($backend, $make, [
            state_is_consumed_exactly_once,
            state_expires,
            nonce_replay_is_rejected,
            nonces_expire,
            launch_data_round_trips_and_expires,
            racers_have_exactly_one_winner,
            outbox_lifecycle_versions_and_leases,
            outbox_racing_leasers_take_each_grade_once,
            $($extra),*
        ]);
    };
}

/// Every check for a backend that stores everything, plus `$extra`.
macro_rules! everything {
    ($backend:ident, $make:path $(, $extra:ident)*) => {
        ephemeral!($backend, $make,
            registration_crud_and_lookups,
            deployment_policies,
            auto_registration_is_opt_in_and_persisted,
            key_rotation_order,
            consumers_get_or_supplement,
            provider_records_upsert_and_bind,
            provider_visits_end_for_a_new_user,
            provider_assignments_and_score_versions,
            provider_racers_keep_one_row_and_highest_version,
            provider_scopes_keep_instances_apart
            $(, $extra)*
        );
    };
}

everything!(memory, Harness::memory);
everything!(sqlite_memory, Harness::sqlite_memory);
// Backends whose stored bytes the test can read back raw.
everything!(
    sqlite_file,
    Harness::sqlite_file,
    secrets_are_encrypted_at_rest
);
everything!(postgres, Harness::postgres, secrets_are_encrypted_at_rest);
// Redis keeps only the short-lived records.
ephemeral!(redis, Harness::redis, provider_model_is_unsupported);
// The same servers' kind over TLS, verified against the CA `tests/tls/setup.sh` makes.
everything!(postgres_tls, Harness::postgres_tls);
ephemeral!(redis_tls, Harness::redis_tls);
