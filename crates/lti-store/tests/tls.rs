//! TLS to the stores against the servers `tests/tls/setup.sh` starts: a
//! TLS-only Redis and a PostgreSQL that accepts only `hostssl`, both with a
//! certificate from a CA the script makes (naming 127.0.0.1 and localhost;
//! the servers also listen on 127.0.0.2, which it does not name). The store
//! conformance suite runs over the same servers (`conformance.rs`,
//! `postgres_tls` and `redis_tls`); these tests check what must fail, and how.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(
    feature = "memory",
    feature = "sqlite",
    feature = "postgres",
    feature = "redis"
))]

mod common;

use std::time::Duration;

use common::{cipher, drop_pg_schema, server_url, unique};
use lti_registry::{LaunchState, RegistryError};
use lti_store::{OpenOptions, Store, open};

fn options() -> OpenOptions {
    OpenOptions::new(cipher())
        .with_timeout(Duration::from_secs(3))
        .with_pool_size(1)
}

/// The TLS servers' URLs without their query, the test CA and the unrelated
/// CA; `None` (skipped) when the setup script's variables are unset.
struct Tls {
    pg: String,
    redis: String,
    ca: String,
    wrong_ca: String,
}

fn tls() -> Option<Tls> {
    let pg = server_url("LTI_TEST_POSTGRES_TLS_URL")?;
    let redis = server_url("LTI_TEST_REDIS_TLS_URL")?;
    let ca = server_url("LTI_TEST_TLS_CA")?;
    let wrong_ca = server_url("LTI_TEST_TLS_WRONG_CA")?;
    let base = |url: &str| url.split_once('?').map_or(url, |(b, _)| b).to_owned();
    Some(Tls {
        pg: base(&pg),
        redis: base(&redis),
        ca,
        wrong_ca,
    })
}

/// The `StoreUnavailable` reason of a failed open from `backend`.
async fn unavailable(url: &str, backend: &str, options: &OpenOptions) -> String {
    match open(url, options).await {
        Err(e @ RegistryError::StoreUnavailable { .. }) => {
            assert_eq!(e.code(), "store_unavailable");
            assert_eq!(e.status_hint(), 503);
            let RegistryError::StoreUnavailable { backend: b, reason } = e else {
                unreachable!()
            };
            assert_eq!(b, backend, "{reason}");
            reason
        }
        Err(other) => panic!("{url}: expected StoreUnavailable, found {other:?}"),
        Ok(_) => panic!("{url}: expected the connection to fail, it succeeded"),
    }
}

/// The field of an `InvalidInput` from opening `url`.
async fn invalid_field(url: &str) -> &'static str {
    match open(url, &options()).await {
        Err(e @ RegistryError::InvalidInput { .. }) => {
            assert_eq!(e.code(), "invalid_input");
            let RegistryError::InvalidInput { field, .. } = e else {
                unreachable!()
            };
            field
        }
        Err(other) => panic!("{url}: expected InvalidInput, found {other:?}"),
        Ok(_) => panic!("{url}: expected InvalidInput, it opened"),
    }
}

/// A launch state saved and consumed once through `store`.
async fn round_trip(store: &Store) {
    let value = unique("tls-state");
    let now = lti_registry::system_clock().now();
    let state = LaunchState::new(
        &value,
        "n",
        "https://lms.example",
        "c",
        "https://tool.example/launch",
        now,
        60,
    );
    store.launch_states.save_state(&state).await.unwrap();
    assert_eq!(
        store
            .launch_states
            .consume_state(&value)
            .await
            .unwrap()
            .nonce,
        "n"
    );
}

fn assert_mentions(reason: &str, parts: &[&str]) {
    for part in parts {
        assert!(reason.contains(part), "{part:?} missing from: {reason}");
    }
}

// --- PostgreSQL ----------------------------------------------------------------

#[tokio::test]
async fn postgres_verify_full_with_the_ca_works_and_the_connection_is_encrypted() {
    let Some(t) = tls() else { return };
    let url = format!("{}?sslmode=verify-full&sslrootcert={}", t.pg, t.ca);
    let schema = unique("lti_tls");
    let store = open(&url, &options().with_postgres_schema(schema.clone()))
        .await
        .unwrap();
    round_trip(&store).await;
    // The driver's own view of the same kind of connection: TLS is in use.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(ssl);
    pool.close().await;
    drop_pg_schema(&url, &schema).await;
}

#[tokio::test]
async fn postgres_with_a_ca_that_did_not_sign_the_server_fails_naming_tls_verification() {
    let Some(t) = tls() else { return };
    for mode in ["verify-full", "verify-ca", "require"] {
        // `require` with a CA verifies the chain, as libpq does.
        let url = format!("{}?sslmode={mode}&sslrootcert={}", t.pg, t.wrong_ca);
        let reason = unavailable(&url, "postgres", &options()).await;
        assert_mentions(
            &reason,
            &[
                "TLS verification of the PostgreSQL server failed",
                "UnknownIssuer",
                "sslrootcert",
            ],
        );
    }
    // Without a CA, `verify-full` trusts only the webpki roots, which did
    // not sign the test CA either.
    let url = format!("{}?sslmode=verify-full", t.pg);
    let reason = unavailable(&url, "postgres", &options()).await;
    assert_mentions(&reason, &["TLS verification", "UnknownIssuer"]);
}

#[tokio::test]
async fn postgres_verify_full_refuses_a_host_the_certificate_does_not_name() {
    let Some(t) = tls() else { return };
    let other_host = t.pg.replace("127.0.0.1", "127.0.0.2");
    assert_ne!(other_host, t.pg, "the TLS URL must use 127.0.0.1");
    let url = format!("{other_host}?sslmode=verify-full&sslrootcert={}", t.ca);
    let reason = unavailable(&url, "postgres", &options()).await;
    assert_mentions(
        &reason,
        &["TLS verification of the PostgreSQL server failed", "name"],
    );
    // `verify-ca` checks the chain only, so the same host is accepted.
    let url = format!("{other_host}?sslmode=verify-ca&sslrootcert={}", t.ca);
    let schema = unique("lti_tls");
    let store = open(&url, &options().with_postgres_schema(schema.clone()))
        .await
        .unwrap();
    round_trip(&store).await;
    drop_pg_schema(&url, &schema).await;
}

#[tokio::test]
async fn postgres_in_clear_to_a_tls_only_server_is_refused_by_the_server() {
    let Some(t) = tls() else { return };
    let url = format!("{}?sslmode=disable", t.pg);
    let reason = unavailable(&url, "postgres", &options()).await;
    assert_mentions(&reason, &["no encryption"]);
}

#[tokio::test]
async fn postgres_sslrootcert_must_be_a_readable_pem_certificate() {
    let Some(t) = tls() else { return };
    let missing = format!(
        "{}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        t.pg
    );
    assert_eq!(invalid_field(&missing).await, "sslrootcert");
    // A file without a certificate in it (the setup script's own env file).
    let dir = std::path::Path::new(&t.ca).parent().unwrap();
    let not_pem = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        t.pg,
        dir.join("env").display()
    );
    assert_eq!(invalid_field(&not_pem).await, "sslrootcert");
}

// --- Redis ---------------------------------------------------------------------

#[tokio::test]
async fn redis_tls_with_the_ca_works() {
    let Some(t) = tls() else { return };
    let url = format!("{}?sslrootcert={}", t.redis, t.ca);
    let prefix = format!("{}:", unique("lti-tls"));
    let store = open(&url, &options().with_redis_key_prefix(prefix))
        .await
        .unwrap();
    round_trip(&store).await;
}

#[tokio::test]
async fn rediss_without_the_ca_fails_naming_tls_verification() {
    let Some(t) = tls() else { return };
    let reason = unavailable(&t.redis, "redis", &options()).await;
    assert_mentions(
        &reason,
        &[
            "TLS verification of the Redis server failed",
            "UnknownIssuer",
            "sslrootcert",
        ],
    );
}

#[tokio::test]
async fn rediss_with_a_ca_that_did_not_sign_the_server_fails_naming_tls_verification() {
    let Some(t) = tls() else { return };
    let url = format!("{}?sslrootcert={}", t.redis, t.wrong_ca);
    let reason = unavailable(&url, "redis", &options()).await;
    assert_mentions(
        &reason,
        &[
            "TLS verification of the Redis server failed",
            "UnknownIssuer",
        ],
    );
}

#[tokio::test]
async fn rediss_refuses_a_host_the_certificate_does_not_name() {
    let Some(t) = tls() else { return };
    let other_host = t.redis.replace("127.0.0.1", "127.0.0.2");
    assert_ne!(other_host, t.redis, "the TLS URL must use 127.0.0.1");
    let url = format!("{other_host}?sslrootcert={}", t.ca);
    let reason = unavailable(&url, "redis", &options()).await;
    assert_mentions(
        &reason,
        &["TLS verification of the Redis server failed", "name"],
    );
}

#[tokio::test]
async fn redis_in_clear_to_a_tls_only_port_fails_with_a_hint() {
    let Some(t) = tls() else { return };
    let plain = t.redis.replacen("rediss://", "redis://", 1);
    let reason = unavailable(&plain, "redis", &options()).await;
    assert_mentions(&reason, &["rediss://"]);
}

#[tokio::test]
async fn rediss_to_a_clear_text_port_fails_naming_the_tls_handshake() {
    let Some(t) = tls() else { return };
    let Some(plain) = server_url("LTI_TEST_REDIS_URL") else {
        return;
    };
    let url = format!(
        "{}?sslrootcert={}",
        plain.replacen("redis://", "rediss://", 1),
        t.ca
    );
    let reason = unavailable(&url, "redis", &options()).await;
    assert_mentions(&reason, &["does the server speak TLS on this port?"]);
}

#[tokio::test]
async fn redis_tls_options_that_cannot_be_honoured_are_invalid_input() {
    let Some(t) = tls() else { return };
    // Unverified TLS is not offered.
    assert_eq!(
        invalid_field(&format!("{}#insecure", t.redis)).await,
        "storage url"
    );
    // A CA on a clear-text URL would be silently unused.
    let plain = t.redis.replacen("rediss://", "redis://", 1);
    assert_eq!(
        invalid_field(&format!("{plain}?sslrootcert={}", t.ca)).await,
        "storage url"
    );
    assert_eq!(
        invalid_field(&format!(
            "{}?sslrootcert={}&sslrootcert={}",
            t.redis, t.ca, t.ca
        ))
        .await,
        "storage url"
    );
    assert_eq!(
        invalid_field(&format!("{}?sslrootcert=/nonexistent/ca.pem", t.redis)).await,
        "sslrootcert"
    );
}
