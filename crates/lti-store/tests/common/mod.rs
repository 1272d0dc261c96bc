//! The conformance suite, written once and run against every backend, plus
//! the harness that builds each backend for a test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lti_registry::{
    AccountId, ContextRecord, GradedAssignment, OutcomeServiceRecord, ResourceRecord, SiloId,
    UserRecord, VisitRecord, permissions_from_bits,
};
use lti_registry::{
    AppKey, AutoRegistrationPolicy, Consumer, Deployment, DeploymentStatus, KeySource, KeyStatus,
    LaunchState, ManualClock, PlatformRegistration, QuirkProfile, RegistryError, SecretCipher,
    SecretString, Store, UnknownDeploymentPolicy,
};
use lti_store::{OpenOptions, open};

mod outbox;
#[allow(unused_imports)] // only the conformance suite runs these checks
pub(crate) use outbox::*;

pub(crate) const ISS: &str = "https://lms.example";
pub(crate) const PEM_BODY: &str =
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
pub(crate) const CONSUMER_SECRET: &str = "very-secret-consumer-value-0123456789";

pub(crate) fn pem(tag: &str) -> SecretString {
    SecretString::new(format!(
        "-----BEGIN PRIVATE KEY-----\n{PEM_BODY}{tag}\n-----END PRIVATE KEY-----\n"
    ))
}

pub(crate) fn cipher() -> SecretCipher {
    SecretCipher::aes256gcm(AppKey::new("test-key-1", &[7u8; 32]).unwrap(), vec![]).unwrap()
}

/// A name unique to this process and call, for files, schemas and key prefixes.
pub(crate) fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{tag}_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// The URL of a real server from the environment, or `None` (with a printed
/// reason) when unset; panics when `LTI_TEST_REQUIRE_BACKENDS=1`.
pub(crate) fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("LTI_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") {
                panic!(
                    "{var} is unset but LTI_TEST_REQUIRE_BACKENDS=1 requires this backend test to run"
                );
            }
            eprintln!("SKIPPED: {var} is not set, so this test against a real server did not run");
            None
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Memory,
    SqliteFile,
    SqliteMemory,
    Postgres,
    Redis,
}

/// One backend under test.
pub(crate) struct Harness {
    pub(crate) kind: Kind,
    pub(crate) store: Store,
    /// A second, independent client/pool on the same data (for race tests),
    /// or the same store where the backend is in-process.
    pub(crate) second: Store,
    pub(crate) clock: ManualClock,
    pub(crate) options: OpenOptions,
    pub(crate) url: String,
    sqlite_path: Option<std::path::PathBuf>,
    pg_schema: Option<String>,
    redis_prefix: Option<String>,
}

impl Harness {
    pub(crate) fn options(clock: &ManualClock) -> OpenOptions {
        OpenOptions::new(cipher())
            .with_clock(Arc::new(clock.clone()))
            .with_timeout(Duration::from_secs(5))
    }

    pub(crate) async fn memory() -> Option<Self> {
        let clock = ManualClock::starting_now();
        let options = Self::options(&clock);
        let store = open("memory://", &options).await.unwrap();
        Some(Self::new(
            Kind::Memory,
            store.clone(),
            store,
            clock,
            options,
            "memory://".into(),
        ))
    }

    pub(crate) async fn sqlite_memory() -> Option<Self> {
        let clock = ManualClock::starting_now();
        let options = Self::options(&clock);
        let store = open("sqlite::memory:", &options).await.unwrap();
        Some(Self::new(
            Kind::SqliteMemory,
            store.clone(),
            store,
            clock,
            options,
            "sqlite::memory:".into(),
        ))
    }

    pub(crate) async fn sqlite_file() -> Option<Self> {
        let clock = ManualClock::starting_now();
        let options = Self::options(&clock).with_pool_size(4);
        let path = std::env::temp_dir().join(format!("{}.db", unique("lti_store_test")));
        let url = format!("sqlite://{}", path.display());
        let store = open(&url, &options).await.unwrap();
        let second = open(&url, &options).await.unwrap();
        let mut h = Self::new(Kind::SqliteFile, store, second, clock, options, url);
        h.sqlite_path = Some(path);
        Some(h)
    }

    pub(crate) async fn postgres() -> Option<Self> {
        Self::postgres_at("LTI_TEST_POSTGRES_URL").await
    }

    /// PostgreSQL over TLS (`sslmode=verify-full` with the test CA, from
    /// `tests/tls/setup.sh`).
    pub(crate) async fn postgres_tls() -> Option<Self> {
        Self::postgres_at("LTI_TEST_POSTGRES_TLS_URL").await
    }

    async fn postgres_at(var: &str) -> Option<Self> {
        let base = server_url(var)?;
        let clock = ManualClock::starting_now();
        let schema = unique("lti_test");
        let options = Self::options(&clock).with_postgres_schema(schema.clone());
        let store = open(&base, &options).await.unwrap();
        let second = open(&base, &options).await.unwrap();
        let mut h = Self::new(Kind::Postgres, store, second, clock, options, base);
        h.pg_schema = Some(schema);
        Some(h)
    }

    pub(crate) async fn redis() -> Option<Self> {
        Self::redis_at("LTI_TEST_REDIS_URL").await
    }

    /// Redis over TLS (`rediss://` with the test CA as `sslrootcert`, from
    /// `tests/tls/setup.sh`).
    pub(crate) async fn redis_tls() -> Option<Self> {
        Self::redis_at("LTI_TEST_REDIS_TLS_URL").await
    }

    async fn redis_at(var: &str) -> Option<Self> {
        let url = server_url(var)?;
        let clock = ManualClock::starting_now();
        let prefix = format!("{}:", unique("lti-test"));
        let options = Self::options(&clock).with_redis_key_prefix(prefix.clone());
        let store = open(&url, &options).await.unwrap();
        let second = open(&url, &options).await.unwrap();
        let mut h = Self::new(Kind::Redis, store, second, clock, options, url);
        h.redis_prefix = Some(prefix);
        Some(h)
    }

    fn new(
        kind: Kind,
        store: Store,
        second: Store,
        clock: ManualClock,
        options: OpenOptions,
        url: String,
    ) -> Self {
        Self {
            kind,
            store,
            second,
            clock,
            options,
            url,
            sqlite_path: None,
            pg_schema: None,
            redis_prefix: None,
        }
    }

    pub(crate) fn now(&self) -> i64 {
        use lti_registry::Clock as _;
        self.clock.now()
    }

    /// Moves time forward. Redis expires keys on its own clock, so for it
    /// real time passes too.
    pub(crate) async fn advance(&self, secs: i64) {
        self.clock.advance(secs);
        if self.kind == Kind::Redis {
            tokio::time::sleep(Duration::from_millis(
                u64::try_from(secs).unwrap() * 1000 + 200,
            ))
            .await;
        }
    }

    /// Every stored text value of the secret-bearing tables, read directly
    /// from the database (bypassing the store).
    pub(crate) async fn raw_secret_columns(&self) -> String {
        match self.kind {
            Kind::SqliteFile => {
                let raw = raw_sqlite(&self.url);
                let mut out = String::new();
                for sql in [
                    "SELECT consumer_key || ' ' || secret || ' ' || name FROM lti_consumers",
                    "SELECT kid || ' ' || private_key FROM lti_tool_keys",
                ] {
                    let mut stmt = raw.prepare(sql).unwrap();
                    let rows: Vec<String> = stmt
                        .query_map([], |r| r.get(0))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                    out.push_str(&rows.join("\n"));
                    out.push('\n');
                }
                out
            }
            Kind::Postgres => {
                let schema = self.pg_schema.clone().unwrap();
                let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
                let mut out = String::new();
                for table in ["lti_consumers", "lti_tool_keys"] {
                    let sql = format!("SELECT t::text FROM \"{schema}\".{table} t");
                    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                    out.push_str(&rows.join("\n"));
                    out.push('\n');
                }
                pool.close().await;
                out
            }
            other => panic!("no raw access for {other:?}"),
        }
    }

    /// Every raw Redis value under this test's prefix.
    pub(crate) async fn raw_redis_values(&self) -> Vec<(String, String)> {
        let client = raw_redis_client(&self.url);
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.redis_prefix.clone().unwrap()))
            .query_async(&mut conn)
            .await
            .unwrap();
        let mut out = Vec::new();
        for k in keys {
            let v: Option<String> = redis::cmd("GET")
                .arg(&k)
                .query_async(&mut conn)
                .await
                .unwrap();
            out.push((k, v.unwrap_or_default()));
        }
        out
    }

    pub(crate) async fn cleanup(&self) {
        if let Some(path) = &self.sqlite_path {
            remove_sqlite_file(path);
        }
        if let Some(schema) = &self.pg_schema {
            drop_pg_schema(&self.url, schema).await;
        }
        if let Some(prefix) = &self.redis_prefix {
            let client = raw_redis_client(&self.url);
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query_async(&mut conn)
                .await
                .unwrap();
            if !keys.is_empty() {
                let _: () = redis::cmd("DEL")
                    .arg(keys)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }
}

/// Drops a test's PostgreSQL schema and everything in it.
pub(crate) async fn drop_pg_schema(url: &str, schema: &str) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

/// A plain redis client for the test's own reads and clean-up, trusting the
/// URL's `sslrootcert` CA file when it has one.
pub(crate) fn raw_redis_client(url: &str) -> redis::Client {
    let ca = url.split_once('?').and_then(|(_, query)| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("sslrootcert="))
    });
    match ca {
        None => redis::Client::open(url).unwrap(),
        Some(path) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(path).unwrap()),
            },
        )
        .unwrap(),
    }
}

pub(crate) fn registration(client_id: &str) -> PlatformRegistration {
    PlatformRegistration::new(
        ISS,
        client_id,
        "https://lms.example/auth",
        "https://lms.example/token",
        KeySource::JwksUrl {
            url: "https://lms.example/jwks".into(),
        },
    )
}

fn sorted(mut r: PlatformRegistration) -> PlatformRegistration {
    r.deployments
        .sort_by(|a, b| a.deployment_id.cmp(&b.deployment_id));
    r
}

pub(crate) fn state(h: &Harness, value: &str, ttl: i64) -> LaunchState {
    let mut s = LaunchState::new(
        value,
        format!("nonce-of-{value}"),
        ISS,
        "client-1",
        "https://tool.example/launch",
        h.now(),
        ttl,
    );
    s.deployment_id = Some("dep-1".into());
    s.extra.insert("pkce".into(), "v".into());
    s
}

// ---------------------------------------------------------------- durable

pub(crate) async fn registration_crud_and_lookups(h: &Harness) {
    let r = h.store.registrations.as_ref();
    let reg = registration("client-1")
        .with_deployment(Deployment::active("d2"))
        .with_deployment(Deployment::with_status("d1", DeploymentStatus::Inactive, 5))
        .with_quirks(QuirkProfile::Brightspace)
        .with_token_audience("https://auth.brightspace.com/core/connect/token");
    r.insert_registration(&reg).await.unwrap();
    assert_eq!(
        sorted((*r.get_registration(ISS, "client-1").await.unwrap()).clone()),
        sorted(reg.clone())
    );

    let dup = r.insert_registration(&reg).await.unwrap_err();
    assert!(
        matches!(
            dup,
            RegistryError::Conflict {
                kind: "registration",
                ..
            }
        ),
        "{dup:?}"
    );

    let mut invalid = registration("client-x");
    invalid.allowed_algorithms.clear();
    assert!(matches!(
        r.insert_registration(&invalid).await.unwrap_err(),
        RegistryError::InvalidInput {
            field: "allowed_algorithms",
            ..
        }
    ));

    assert!(matches!(
        r.get_registration(ISS, "nope").await.unwrap_err(),
        RegistryError::NotFound {
            kind: "registration",
            ..
        }
    ));

    // Update replaces fields and deployments.
    let mut changed = reg.clone();
    changed.auth_login_url = "https://lms.example/auth2".into();
    changed.deployments = vec![Deployment::active("d3")];
    changed.metadata.insert("name".into(), "LMS".into());
    r.update_registration(&changed).await.unwrap();
    assert_eq!(*r.get_registration(ISS, "client-1").await.unwrap(), changed);
    assert!(matches!(
        r.update_registration(&registration("ghost"))
            .await
            .unwrap_err(),
        RegistryError::NotFound {
            kind: "registration",
            ..
        }
    ));

    // Issuer-only lookup: unambiguous, then ambiguous.
    assert_eq!(r.find_by_issuer(ISS).await.unwrap().client_id, "client-1");
    assert_eq!(
        r.resolve_registration(ISS, None).await.unwrap().client_id,
        "client-1"
    );
    r.insert_registration(&registration("client-2"))
        .await
        .unwrap();
    match r.find_by_issuer(ISS).await.unwrap_err() {
        RegistryError::AmbiguousIssuer { issuer, count } => {
            assert_eq!(issuer, ISS);
            assert_eq!(count, 2);
        }
        other => panic!("expected AmbiguousIssuer, found {other:?}"),
    }
    assert_eq!(
        r.resolve_registration(ISS, None).await.unwrap_err().code(),
        "ambiguous_issuer"
    );
    assert_eq!(
        r.resolve_registration(ISS, Some("client-2"))
            .await
            .unwrap()
            .client_id,
        "client-2"
    );
    assert!(matches!(
        r.find_by_issuer("https://other.example").await.unwrap_err(),
        RegistryError::NotFound { .. }
    ));

    let list = r.list_registrations().await.unwrap();
    let ids: Vec<_> = list.iter().map(|x| x.client_id.as_str()).collect();
    assert_eq!(ids, ["client-1", "client-2"]);
    assert_eq!(list[0].deployments.len(), 1);

    r.delete_registration(ISS, "client-1").await.unwrap();
    assert!(matches!(
        r.get_registration(ISS, "client-1").await.unwrap_err(),
        RegistryError::NotFound { .. }
    ));
    assert!(matches!(
        r.delete_registration(ISS, "client-1").await.unwrap_err(),
        RegistryError::NotFound { .. }
    ));
    // Re-inserting after delete starts with no stale deployments.
    r.insert_registration(&registration("client-1"))
        .await
        .unwrap();
    assert!(
        r.get_registration(ISS, "client-1")
            .await
            .unwrap()
            .deployments
            .is_empty()
    );
}

pub(crate) async fn deployment_policies(h: &Harness) {
    let r = h.store.registrations.as_ref();
    let now = h.now();
    let reject = registration("reject").with_deployment(Deployment::active("known"));
    let pending = registration("pending")
        .with_unknown_deployment_policy(UnknownDeploymentPolicy::RecordPendingAndReject);
    let accept = registration("accept")
        .with_unknown_deployment_policy(UnknownDeploymentPolicy::AcceptAndRecord);
    for reg in [&reject, &pending, &accept] {
        r.insert_registration(reg).await.unwrap();
    }

    // Known and active.
    assert_eq!(
        r.check_deployment(&reject, "known", now)
            .await
            .unwrap()
            .deployment_id,
        "known"
    );
    // Reject: nothing recorded.
    match r.check_deployment(&reject, "new", now).await.unwrap_err() {
        RegistryError::UnknownDeployment {
            deployment_id,
            recorded_as_pending,
            ..
        } => {
            assert_eq!(deployment_id, "new");
            assert!(!recorded_as_pending);
        }
        other => panic!("expected UnknownDeployment, found {other:?}"),
    }
    assert!(
        r.get_registration(ISS, "reject")
            .await
            .unwrap()
            .deployment("new")
            .is_none()
    );

    // Record pending and reject; the next launch sees it inactive.
    assert!(matches!(
        r.check_deployment(&pending, "course-copy", now)
            .await
            .unwrap_err(),
        RegistryError::UnknownDeployment {
            recorded_as_pending: true,
            ..
        }
    ));
    let stored = r.get_registration(ISS, "pending").await.unwrap();
    let d = stored.deployment("course-copy").unwrap();
    assert_eq!(d.status, DeploymentStatus::Pending);
    assert_eq!(d.created_at, now);
    assert!(matches!(
        r.check_deployment(&stored, "course-copy", now)
            .await
            .unwrap_err(),
        RegistryError::DeploymentInactive {
            status: DeploymentStatus::Pending,
            ..
        }
    ));

    // Accept and record.
    let d = r.check_deployment(&accept, "fresh", now).await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Active);
    let stored = r.get_registration(ISS, "accept").await.unwrap();
    assert_eq!(
        stored.deployment("fresh").unwrap().status,
        DeploymentStatus::Active
    );

    // An administrator disables it.
    r.upsert_deployment(
        ISS,
        "accept",
        &Deployment::with_status("fresh", DeploymentStatus::Inactive, now),
    )
    .await
    .unwrap();
    let stored = r.get_registration(ISS, "accept").await.unwrap();
    assert_eq!(stored.deployments.len(), 1);
    assert!(matches!(
        r.check_deployment(&stored, "fresh", now).await.unwrap_err(),
        RegistryError::DeploymentInactive {
            status: DeploymentStatus::Inactive,
            ..
        }
    ));
    assert!(matches!(
        r.upsert_deployment(ISS, "ghost", &Deployment::active("x"))
            .await
            .unwrap_err(),
        RegistryError::NotFound {
            kind: "registration",
            ..
        }
    ));
    assert!(matches!(
        r.check_deployment(&accept, "", now).await.unwrap_err(),
        RegistryError::InvalidInput {
            field: "deployment_id",
            ..
        }
    ));

    // Accept the first deployment of a registration that has none (a dynamic
    // registration without a deployment id); later unknown ones wait.
    let first = registration("first")
        .with_unknown_deployment_policy(UnknownDeploymentPolicy::AcceptFirstAndRecord)
        .with_status(DeploymentStatus::Pending);
    r.insert_registration(&first).await.unwrap();
    let stored = r.get_registration(ISS, "first").await.unwrap();
    assert_eq!(
        stored.status,
        DeploymentStatus::Pending,
        "the registration status persists"
    );
    let mut approved = (*stored).clone();
    approved.status = DeploymentStatus::Active;
    r.update_registration(&approved).await.unwrap();
    let stored = r.get_registration(ISS, "first").await.unwrap();
    assert_eq!(stored.status, DeploymentStatus::Active);
    let d = r.check_deployment(&stored, "123:abc", now).await.unwrap();
    assert_eq!(d.status, DeploymentStatus::Active);
    let stored = r.get_registration(ISS, "first").await.unwrap();
    assert_eq!(stored.deployments.len(), 1);
    assert!(matches!(
        r.check_deployment(&stored, "456:def", now)
            .await
            .unwrap_err(),
        RegistryError::UnknownDeployment {
            recorded_as_pending: true,
            ..
        }
    ));
    assert_eq!(
        r.get_registration(ISS, "first")
            .await
            .unwrap()
            .deployment("456:def")
            .unwrap()
            .status,
        DeploymentStatus::Pending
    );
}

pub(crate) async fn auto_registration_is_opt_in_and_persisted(h: &Harness) {
    let r = h.store.registrations.as_ref();
    assert!(r.get_auto_registration(ISS).await.unwrap().is_none());
    assert!(matches!(
        r.resolve_registration(ISS, Some("new-client"))
            .await
            .unwrap_err(),
        RegistryError::NotFound {
            kind: "registration",
            ..
        }
    ));
    let mut policy = AutoRegistrationPolicy::new(
        ISS,
        "https://lms.example/jwks/{client_id}",
        "https://lms.example/auth",
        "https://lms.example/token",
    );
    policy.quirks = QuirkProfile::Canvas;
    r.set_auto_registration(&policy).await.unwrap();
    assert_eq!(
        r.get_auto_registration(ISS).await.unwrap(),
        Some(policy.clone())
    );

    let reg = r
        .resolve_registration(ISS, Some("new-client"))
        .await
        .unwrap();
    assert_eq!(
        reg.key_source,
        KeySource::JwksUrl {
            url: "https://lms.example/jwks/new-client".into()
        }
    );
    assert_eq!(reg.quirks, QuirkProfile::Canvas);
    // Persisted: a plain lookup finds it now.
    assert_eq!(r.get_registration(ISS, "new-client").await.unwrap(), reg);
    // Resolving again returns the stored one.
    assert_eq!(
        r.resolve_registration(ISS, Some("new-client"))
            .await
            .unwrap(),
        reg
    );

    r.remove_auto_registration(ISS).await.unwrap();
    assert!(matches!(
        r.resolve_registration(ISS, Some("other-client"))
            .await
            .unwrap_err(),
        RegistryError::NotFound { .. }
    ));
}

pub(crate) async fn key_rotation_order(h: &Harness) {
    let k = h.store.tool_keys.as_ref();
    assert!(matches!(
        k.active_key().await.unwrap_err(),
        RegistryError::NotFound {
            kind: "tool key",
            ..
        }
    ));
    assert!(matches!(
        k.promote_next_key().await.unwrap_err(),
        RegistryError::NotFound {
            kind: "tool key",
            ..
        }
    ));
    assert!(matches!(
        k.add_next_key("bad", "RS256", &SecretString::new("not pem"))
            .await
            .unwrap_err(),
        RegistryError::InvalidInput {
            field: "private_key_pem",
            ..
        }
    ));

    let t0 = h.now();
    let k1 = k.add_next_key("k1", "RS256", &pem("1")).await.unwrap();
    assert_eq!(k1.status, KeyStatus::Next);
    assert_eq!(k1.created_at, t0);
    assert_eq!(k1.private_key_pem, pem("1"));
    // The next key is published before it signs.
    let published: Vec<_> = k
        .published_keys(3600)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.kid)
        .collect();
    assert_eq!(published, ["k1"]);
    assert!(matches!(
        k.add_next_key("k2", "RS256", &pem("2")).await.unwrap_err(),
        RegistryError::Conflict {
            kind: "tool key",
            ..
        }
    ));

    let active = k.promote_next_key().await.unwrap();
    assert_eq!(
        (active.kid.as_str(), active.status),
        ("k1", KeyStatus::Active)
    );
    assert_eq!(active.activated_at, Some(t0));
    assert!(matches!(
        k.add_next_key("k1", "RS256", &pem("1")).await.unwrap_err(),
        RegistryError::Conflict {
            kind: "tool key",
            ..
        }
    ));

    h.clock.advance(10);
    k.add_next_key("k2", "PS256", &pem("2")).await.unwrap();
    let active = k.promote_next_key().await.unwrap();
    assert_eq!(active.kid, "k2");
    assert_eq!(active.alg, "PS256");
    assert_eq!(active.private_key_pem, pem("2"));
    assert_eq!(k.active_key().await.unwrap().kid, "k2");

    h.clock.advance(10);
    k.add_next_key("k3", "RS256", &pem("3")).await.unwrap();
    let all = k.list_keys().await.unwrap();
    let order: Vec<_> = all.iter().map(|x| (x.kid.as_str(), x.status)).collect();
    assert_eq!(
        order,
        [
            ("k2", KeyStatus::Active),
            ("k3", KeyStatus::Next),
            ("k1", KeyStatus::Retired)
        ]
    );
    assert_eq!(all[2].retired_at, Some(t0 + 10));
    // Inside the overlap the retired key is still published; after it, not.
    assert_eq!(k.published_keys(3600).await.unwrap().len(), 3);
    let published: Vec<_> = k
        .published_keys(5)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.kid)
        .collect();
    assert_eq!(published, ["k2", "k3"]);

    assert_eq!(k.purge_retired_keys(t0 + 10).await.unwrap(), 0);
    assert_eq!(k.purge_retired_keys(t0 + 11).await.unwrap(), 1);
    let left: Vec<_> = k
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.kid)
        .collect();
    assert_eq!(left, ["k2", "k3"]);
}

pub(crate) async fn consumers_get_or_supplement(h: &Harness) {
    let c = h.store.consumers.as_ref();
    let now = h.now();
    c.insert_consumer(&Consumer::new("key-1", CONSUMER_SECRET, "Moodle", now))
        .await
        .unwrap();
    assert!(matches!(
        c.insert_consumer(&Consumer::new("key-1", "x", "dup", now))
            .await
            .unwrap_err(),
        RegistryError::Conflict {
            kind: "consumer",
            ..
        }
    ));
    assert!(matches!(
        c.insert_consumer(&Consumer::new("key-e", "", "empty", now))
            .await
            .unwrap_err(),
        RegistryError::InvalidInput {
            field: "consumer secret",
            ..
        }
    ));
    let got = c.get_consumer("key-1").await.unwrap();
    assert_eq!(got.secret.expose(), CONSUMER_SECRET);
    assert_eq!(got.instance_guid, None);

    // No GUID: plain lookup by key.
    assert_eq!(
        c.get_or_supplement(None, "key-1").await.unwrap().key,
        "key-1"
    );
    // First launch with a GUID records it.
    let sup = c.get_or_supplement(Some("guid-1"), "key-1").await.unwrap();
    assert_eq!(sup.instance_guid.as_deref(), Some("guid-1"));
    assert_eq!(
        c.get_consumer("key-1")
            .await
            .unwrap()
            .instance_guid
            .as_deref(),
        Some("guid-1")
    );
    // Found by GUID even when the platform presents another key.
    let by_guid = c
        .get_or_supplement(Some("guid-1"), "rekeyed")
        .await
        .unwrap();
    assert_eq!(by_guid.key, "key-1");
    assert_eq!(
        c.find_consumer_by_guid("guid-1")
            .await
            .unwrap()
            .unwrap()
            .key,
        "key-1"
    );
    assert!(c.find_consumer_by_guid("guid-x").await.unwrap().is_none());
    // A different GUID is never silently recorded over the first.
    assert!(matches!(
        c.get_or_supplement(Some("guid-2"), "key-1")
            .await
            .unwrap_err(),
        RegistryError::Conflict {
            kind: "consumer",
            ..
        }
    ));
    // A GUID belongs to one consumer.
    c.insert_consumer(&Consumer::new("key-2", "s2", "Sakai", now))
        .await
        .unwrap();
    assert!(matches!(
        c.record_instance_guid("key-2", "guid-1").await.unwrap_err(),
        RegistryError::Conflict {
            kind: "consumer",
            ..
        }
    ));
    let mut with_taken_guid = Consumer::new("key-3", "s3", "x", now);
    with_taken_guid.instance_guid = Some("guid-1".into());
    assert!(matches!(
        c.insert_consumer(&with_taken_guid).await.unwrap_err(),
        RegistryError::Conflict { .. }
    ));
    assert!(matches!(
        c.get_or_supplement(Some("guid-9"), "unknown")
            .await
            .unwrap_err(),
        RegistryError::NotFound {
            kind: "consumer",
            ..
        }
    ));

    // Update and delete.
    let mut updated = c.get_consumer("key-2").await.unwrap();
    updated.secret = SecretString::new("rotated");
    updated.name = "Sakai 23".into();
    c.update_consumer(&updated).await.unwrap();
    assert_eq!(c.get_consumer("key-2").await.unwrap(), updated);
    let keys: Vec<_> = c
        .list_consumers()
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.key)
        .collect();
    assert_eq!(keys, ["key-1", "key-2"]);
    c.delete_consumer("key-2").await.unwrap();
    assert!(matches!(
        c.delete_consumer("key-2").await.unwrap_err(),
        RegistryError::NotFound { .. }
    ));
    assert!(matches!(
        c.update_consumer(&updated).await.unwrap_err(),
        RegistryError::NotFound { .. }
    ));
}

/// The stored bytes contain neither the consumer secret nor the private key,
/// and another application key cannot read them.
pub(crate) async fn secrets_are_encrypted_at_rest(h: &Harness) {
    h.store
        .consumers
        .insert_consumer(&Consumer::new("enc-key", CONSUMER_SECRET, "LMS", h.now()))
        .await
        .unwrap();
    h.store
        .tool_keys
        .add_next_key("enc-kid", "RS256", &pem("E"))
        .await
        .unwrap();
    let raw = h.raw_secret_columns().await;
    assert!(
        raw.contains("enc-key") && raw.contains("enc-kid"),
        "raw dump misses the rows: {raw}"
    );
    assert!(
        !raw.contains(CONSUMER_SECRET),
        "consumer secret stored in clear"
    );
    assert!(!raw.contains(PEM_BODY), "private key stored in clear");
    assert!(
        !raw.contains("BEGIN PRIVATE KEY"),
        "private key stored in clear"
    );
    assert!(raw.matches("enc:v1:test-key-1:").count() >= 2, "{raw}");

    // Another application key cannot decrypt; a rotated cipher still can.
    let other = SecretCipher::aes256gcm(AppKey::new("other", &[9u8; 32]).unwrap(), vec![]).unwrap();
    let wrong = open(&h.url, &{
        let mut o = h.options.clone();
        o.cipher = other;
        o
    })
    .await
    .unwrap();
    assert!(matches!(
        wrong.consumers.get_consumer("enc-key").await.unwrap_err(),
        RegistryError::Cipher { .. }
    ));
    let rotated = SecretCipher::aes256gcm(
        AppKey::new("test-key-2", &[8u8; 32]).unwrap(),
        vec![AppKey::new("test-key-1", &[7u8; 32]).unwrap()],
    )
    .unwrap();
    let reader = open(&h.url, &{
        let mut o = h.options.clone();
        o.cipher = rotated;
        o
    })
    .await
    .unwrap();
    assert_eq!(
        reader
            .consumers
            .get_consumer("enc-key")
            .await
            .unwrap()
            .secret
            .expose(),
        CONSUMER_SECRET
    );
}

// -------------------------------------------------------------- ephemeral

pub(crate) async fn state_is_consumed_exactly_once(h: &Harness) {
    let s = h.store.launch_states.as_ref();
    let st = state(h, "state-a", 300);
    s.save_state(&st).await.unwrap();
    assert!(matches!(
        s.save_state(&st).await.unwrap_err(),
        RegistryError::Conflict {
            kind: "launch state",
            ..
        }
    ));
    assert_eq!(s.consume_state("state-a").await.unwrap(), st);
    assert!(matches!(
        s.consume_state("state-a").await.unwrap_err(),
        RegistryError::StateNotFound
    ));
    assert!(matches!(
        s.consume_state("never-saved").await.unwrap_err(),
        RegistryError::StateNotFound
    ));
    assert!(matches!(
        s.consume_state("").await.unwrap_err(),
        RegistryError::InvalidInput { field: "state", .. }
    ));
    assert!(matches!(
        s.save_state(&state(h, "state-b", 0)).await.unwrap_err(),
        RegistryError::InvalidInput {
            field: "expires_at",
            ..
        }
    ));
}

pub(crate) async fn state_expires(h: &Harness) {
    let s = h.store.launch_states.as_ref();
    s.save_state(&state(h, "state-ttl", 1)).await.unwrap();
    s.save_state(&state(h, "state-long", 600)).await.unwrap();
    h.advance(2).await;
    assert!(matches!(
        s.consume_state("state-ttl").await.unwrap_err(),
        RegistryError::StateNotFound
    ));
    assert_eq!(
        s.consume_state("state-long").await.unwrap().state,
        "state-long"
    );
    // An expired value may be saved again.
    s.save_state(&state(h, "state-ttl", 60)).await.unwrap();
    assert_eq!(
        s.consume_state("state-ttl").await.unwrap().state,
        "state-ttl"
    );
}

pub(crate) async fn nonce_replay_is_rejected(h: &Harness) {
    let n = h.store.nonces.as_ref();
    let exp = h.now() + 600;
    n.record_nonce(ISS, "nonce-1", exp).await.unwrap();
    match n.record_nonce(ISS, "nonce-1", exp).await.unwrap_err() {
        RegistryError::NonceReplayed { namespace } => assert_eq!(namespace, ISS),
        other => panic!("expected NonceReplayed, found {other:?}"),
    }
    // Nonces are per issuer.
    n.record_nonce("https://other.example", "nonce-1", exp)
        .await
        .unwrap();
    assert!(matches!(
        n.record_nonce(ISS, "nonce-2", h.now()).await.unwrap_err(),
        RegistryError::InvalidInput {
            field: "expires_at",
            ..
        }
    ));
    assert!(matches!(
        n.record_nonce(ISS, "", exp).await.unwrap_err(),
        RegistryError::InvalidInput { field: "nonce", .. }
    ));

    let o = h.store.oauth1_nonces.as_ref();
    o.record_oauth1_nonce("key-1", "abc", exp).await.unwrap();
    assert!(matches!(
        o.record_oauth1_nonce("key-1", "abc", exp)
            .await
            .unwrap_err(),
        RegistryError::NonceReplayed { .. }
    ));
    o.record_oauth1_nonce("key-2", "abc", exp).await.unwrap();
    // The 1.1 and 1.3 namespaces do not collide.
    n.record_nonce("key-1", "abc", exp).await.unwrap();
}

pub(crate) async fn nonces_expire(h: &Harness) {
    let n = h.store.nonces.as_ref();
    let o = h.store.oauth1_nonces.as_ref();
    n.record_nonce(ISS, "short", h.now() + 1).await.unwrap();
    o.record_oauth1_nonce("key-1", "short", h.now() + 1)
        .await
        .unwrap();
    n.record_nonce(ISS, "long", h.now() + 600).await.unwrap();
    h.advance(2).await;
    n.record_nonce(ISS, "short", h.now() + 60).await.unwrap();
    o.record_oauth1_nonce("key-1", "short", h.now() + 60)
        .await
        .unwrap();
    assert!(matches!(
        n.record_nonce(ISS, "long", h.now() + 600)
            .await
            .unwrap_err(),
        RegistryError::NonceReplayed { .. }
    ));
}

pub(crate) async fn launch_data_round_trips_and_expires(h: &Harness) {
    let d = h.store.launch_data.as_ref();
    let data = serde_json::json!({"sub": "u1", "roles": ["Learner"], "n": 3});
    d.save_launch("launch-1", data.clone(), h.now() + 600)
        .await
        .unwrap();
    assert_eq!(d.load_launch("launch-1").await.unwrap(), data);
    let replaced = serde_json::json!({"sub": "u2"});
    d.save_launch("launch-1", replaced.clone(), h.now() + 600)
        .await
        .unwrap();
    assert_eq!(d.load_launch("launch-1").await.unwrap(), replaced);
    assert!(d.delete_launch("launch-1").await.unwrap());
    assert!(!d.delete_launch("launch-1").await.unwrap());
    assert!(matches!(
        d.load_launch("launch-1").await.unwrap_err(),
        RegistryError::NotFound {
            kind: "launch data",
            ..
        }
    ));
    assert!(matches!(
        d.save_launch("launch-2", data.clone(), h.now() - 1)
            .await
            .unwrap_err(),
        RegistryError::InvalidInput {
            field: "expires_at",
            ..
        }
    ));
    d.save_launch("launch-3", data, h.now() + 1).await.unwrap();
    h.advance(2).await;
    assert!(matches!(
        d.load_launch("launch-3").await.unwrap_err(),
        RegistryError::NotFound { .. }
    ));
}

/// 64 tasks, alternating between two independent clients, race to consume
/// one state and to record one nonce: exactly one of each wins.
pub(crate) async fn racers_have_exactly_one_winner(h: &Harness) {
    for round in 0..3 {
        let value = format!("race-state-{round}");
        h.store
            .launch_states
            .save_state(&state(h, &value, 300))
            .await
            .unwrap();
        let exp = h.now() + 300;
        let nonce = format!("race-nonce-{round}");
        let mut tasks = Vec::new();
        for i in 0..64 {
            let store = if i % 2 == 0 {
                h.store.clone()
            } else {
                h.second.clone()
            };
            let (value, nonce) = (value.clone(), nonce.clone());
            tasks.push(tokio::spawn(async move {
                let consumed = store.launch_states.consume_state(&value).await;
                let recorded = store.nonces.record_nonce(ISS, &nonce, exp).await;
                let oauth = store
                    .oauth1_nonces
                    .record_oauth1_nonce("ck", &nonce, exp)
                    .await;
                (consumed, recorded, oauth)
            }));
        }
        let (mut states, mut nonces, mut oauths) = (0, 0, 0);
        for t in tasks {
            let (c, r, o) = t.await.unwrap();
            match c {
                Ok(s) => {
                    assert_eq!(s.state, value);
                    states += 1;
                }
                Err(RegistryError::StateNotFound) => {}
                Err(e) => panic!("unexpected consume error: {e:?}"),
            }
            match r {
                Ok(()) => nonces += 1,
                Err(RegistryError::NonceReplayed { .. }) => {}
                Err(e) => panic!("unexpected nonce error: {e:?}"),
            }
            match o {
                Ok(()) => oauths += 1,
                Err(RegistryError::NonceReplayed { .. }) => {}
                Err(e) => panic!("unexpected oauth nonce error: {e:?}"),
            }
        }
        assert_eq!((states, nonces, oauths), (1, 1, 1), "round {round}");
    }
}

// ---- The LTI 1.1 provider data model ----

const PCK: &str = "prov-consumer";

fn resource(id: &str, context: Option<&str>, title: &str, at: i64) -> ResourceRecord {
    ResourceRecord {
        silo: SiloId::of_consumer(PCK),
        consumer_key: PCK.to_owned(),
        resource_link_id: id.to_owned(),
        context_id: context.map(str::to_owned),
        title: Some(title.to_owned()),
        created_at: at,
    }
}

fn user(id: &str, account: &str, name: Option<&str>, at: i64) -> UserRecord {
    UserRecord {
        silo: SiloId::of_consumer(PCK),
        consumer_key: PCK.to_owned(),
        user_id: id.to_owned(),
        account: AccountId(account.to_owned()),
        name_full: name.map(str::to_owned),
        name_given: None,
        name_family: None,
        email: Some(format!("{id}@example.edu")),
        sourced_id: None,
        updated_at: at,
    }
}

fn visit(session: &str, consumer: &str, rl: &str, user: Option<&str>, bits: i64) -> VisitRecord {
    VisitRecord {
        session: session.to_owned(),
        consumer_key: consumer.to_owned(),
        user_id: user.map(str::to_owned),
        resource_link_id: rl.to_owned(),
        permissions: permissions_from_bits(bits).unwrap(),
        started_at: 1_000,
        ended_at: None,
    }
}

fn assignment(rl: &str, user: &str, sourced: &str, at: i64) -> GradedAssignment {
    GradedAssignment {
        consumer_key: PCK.to_owned(),
        resource_link_id: rl.to_owned(),
        user_id: user.to_owned(),
        sourced_id: sourced.to_owned(),
        service_url: "https://lms.example/outcomes".to_owned(),
        created_at: at,
        score_version: 0,
    }
}

/// Silos, contexts, resource links and users: upserts, the resource link
/// bound to its first context, the account created once.
pub(crate) async fn provider_records_upsert_and_bind(h: &Harness) {
    let p = h.store.provider.as_ref();
    let now = h.now();

    assert_eq!(p.silo_of(PCK).await.unwrap(), None);
    p.assign_silo(PCK, &SiloId("tenant-a".into()))
        .await
        .unwrap();
    p.assign_silo(PCK, &SiloId("tenant-b".into()))
        .await
        .unwrap();
    assert_eq!(
        h.second.provider.silo_of(PCK).await.unwrap(),
        Some(SiloId("tenant-b".into()))
    );
    assert!(matches!(
        p.assign_silo("", &SiloId("t".into())).await.unwrap_err(),
        RegistryError::InvalidInput {
            field: "consumer key",
            ..
        }
    ));

    // Contexts are replaced by key.
    let mut ctx = ContextRecord {
        silo: SiloId::of_consumer(PCK),
        consumer_key: PCK.to_owned(),
        context_id: "ctx-1".to_owned(),
        title: Some("Course One".to_owned()),
        label: Some("C1".to_owned()),
        context_type: None,
        updated_at: now,
    };
    p.put_context(&ctx).await.unwrap();
    ctx.title = Some("Course One (2026)".to_owned());
    ctx.updated_at = now + 5;
    p.put_context(&ctx).await.unwrap();
    assert_eq!(
        p.get_context(PCK, "ctx-1").await.unwrap(),
        Some(ctx.clone())
    );
    assert_eq!(p.get_context(PCK, "ctx-2").await.unwrap(), None);
    assert_eq!(p.get_context("other", "ctx-1").await.unwrap(), None);

    // A resource link is bound to the context of its first insert, forever.
    let first = resource("rl-1", Some("ctx-1"), "Quiz", now);
    assert_eq!(p.insert_resource(&first).await.unwrap(), first);
    let claim = resource("rl-1", Some("ctx-2"), "Quiz elsewhere", now + 9);
    assert_eq!(
        h.second.provider.insert_resource(&claim).await.unwrap(),
        first
    );
    match p.put_resource(&claim).await.unwrap_err() {
        RegistryError::Conflict { kind, id, reason } => {
            assert_eq!(kind, "resource link");
            assert_eq!(id, "rl-1");
            assert!(
                reason.contains("expected context ctx-1, found ctx-2"),
                "{reason}"
            );
        }
        other => panic!("expected a resource-link Conflict, found {other:?}"),
    }
    let renamed = resource("rl-1", Some("ctx-1"), "Quiz (renamed)", now + 9);
    p.put_resource(&renamed).await.unwrap();
    let stored = p.get_resource(PCK, "rl-1").await.unwrap().unwrap();
    assert_eq!(stored.title.as_deref(), Some("Quiz (renamed)"));
    assert_eq!(stored.context_id.as_deref(), Some("ctx-1"));
    assert_eq!(stored.created_at, now, "created_at is kept");
    // A link first seen without a context cannot gain one later.
    let loose = resource("rl-2", None, "Loose", now);
    p.insert_resource(&loose).await.unwrap();
    assert_eq!(
        p.put_resource(&resource("rl-2", Some("ctx-1"), "Loose", now))
            .await
            .unwrap_err()
            .code(),
        "conflict"
    );
    assert!(matches!(
        p.put_resource(&resource("rl-missing", None, "x", now))
            .await
            .unwrap_err(),
        RegistryError::NotFound {
            kind: "resource link",
            ..
        }
    ));
    assert!(matches!(
        p.insert_resource(&resource("", None, "x", now))
            .await
            .unwrap_err(),
        RegistryError::InvalidInput {
            field: "resource_link_id",
            ..
        }
    ));

    // The user → account mapping is created once; details are refreshed.
    let u = user("u-1", "acct-first", Some("Ada Lovelace"), now);
    assert_eq!(p.insert_user(&u).await.unwrap(), u);
    let again = user("u-1", "acct-second", None, now + 3);
    assert_eq!(
        h.second.provider.insert_user(&again).await.unwrap().account,
        AccountId("acct-first".into())
    );
    let mut refreshed = user("u-1", "acct-hijack", Some("Ada King"), now + 7);
    refreshed.silo = SiloId("elsewhere".into());
    p.put_user(&refreshed).await.unwrap();
    let stored = p.get_user(PCK, "u-1").await.unwrap().unwrap();
    assert_eq!(
        stored.account,
        AccountId("acct-first".into()),
        "account kept"
    );
    assert_eq!(stored.silo, SiloId::of_consumer(PCK), "silo kept");
    assert_eq!(stored.name_full.as_deref(), Some("Ada King"));
    assert_eq!(stored.updated_at, now + 7);
    assert!(matches!(
        p.put_user(&user("u-missing", "a", None, now))
            .await
            .unwrap_err(),
        RegistryError::NotFound { kind: "user", .. }
    ));
    assert!(matches!(
        p.insert_user(&user("u-2", "", None, now))
            .await
            .unwrap_err(),
        RegistryError::InvalidInput {
            field: "account",
            ..
        }
    ));
    assert_eq!(p.get_user(PCK, "u-2").await.unwrap(), None);
}

/// Visits: several resources per session; a new user from the same consumer
/// ends the previous user's visits, other consumers' visits stay open.
pub(crate) async fn provider_visits_end_for_a_new_user(h: &Harness) {
    let p = h.store.provider.as_ref();
    let now = h.now();
    p.put_visit(&visit("s-1", PCK, "rl-1", Some("u-1"), 7))
        .await
        .unwrap();
    p.put_visit(&visit("s-1", PCK, "rl-2", Some("u-1"), 1))
        .await
        .unwrap();
    p.put_visit(&visit("s-1", "other-consumer", "rl-1", Some("u-9"), 3))
        .await
        .unwrap();
    p.put_visit(&visit("s-2", PCK, "rl-1", Some("u-5"), 1))
        .await
        .unwrap();
    let open = p.open_visits("s-1").await.unwrap();
    let keys: Vec<_> = open
        .iter()
        .map(|v| (v.consumer_key.as_str(), v.resource_link_id.as_str()))
        .collect();
    assert_eq!(
        keys,
        [("other-consumer", "rl-1"), (PCK, "rl-1"), (PCK, "rl-2")]
    );
    assert_eq!(open[1], visit("s-1", PCK, "rl-1", Some("u-1"), 7));
    assert_eq!(open[2].permissions, permissions_from_bits(1).unwrap());

    // The same user launching again ends nothing.
    assert_eq!(p.end_visits("s-1", PCK, Some("u-1"), now).await.unwrap(), 0);
    // Another user from the same consumer ends both of u-1's visits.
    assert_eq!(
        h.second
            .provider
            .end_visits("s-1", PCK, Some("u-2"), now)
            .await
            .unwrap(),
        2
    );
    p.put_visit(&visit("s-1", PCK, "rl-1", Some("u-2"), 1))
        .await
        .unwrap();
    let open = p.open_visits("s-1").await.unwrap();
    assert_eq!(open.len(), 2);
    assert_eq!(open[0].user_id.as_deref(), Some("u-9"));
    assert_eq!(open[1].user_id.as_deref(), Some("u-2"));
    // Other sessions are untouched.
    assert_eq!(p.open_visits("s-2").await.unwrap().len(), 1);
    // An anonymous launch ends the named user's visits, and its own visit
    // is ended by the next named user.
    assert_eq!(p.end_visits("s-1", PCK, None, now).await.unwrap(), 1);
    p.put_visit(&visit("s-1", PCK, "rl-3", None, 0))
        .await
        .unwrap();
    assert_eq!(p.end_visits("s-1", PCK, None, now).await.unwrap(), 0);
    assert_eq!(p.end_visits("s-1", PCK, Some("u-3"), now).await.unwrap(), 1);
    assert_eq!(p.open_visits("s-1").await.unwrap().len(), 1);
    assert_eq!(p.open_visits("s-unknown").await.unwrap(), []);
    assert!(matches!(
        p.put_visit(&visit("", PCK, "rl-1", None, 0))
            .await
            .unwrap_err(),
        RegistryError::InvalidInput {
            field: "session",
            ..
        }
    ));
}

/// Outcome services and graded assignments: one per key, never duplicated;
/// the score version only grows.
pub(crate) async fn provider_assignments_and_score_versions(h: &Harness) {
    let p = h.store.provider.as_ref();
    let now = h.now();
    assert_eq!(p.get_outcome_service(PCK).await.unwrap(), None);
    let service = OutcomeServiceRecord {
        consumer_key: PCK.to_owned(),
        service_url: "https://lms.example/outcomes".to_owned(),
    };
    p.put_outcome_service(&service).await.unwrap();
    let moved = OutcomeServiceRecord {
        service_url: "https://lms.example/outcomes/v2".to_owned(),
        ..service
    };
    p.put_outcome_service(&moved).await.unwrap();
    assert_eq!(p.get_outcome_service(PCK).await.unwrap(), Some(moved));

    let first = p
        .upsert_assignment(&assignment("rl-1", "u-1", "src-1", now))
        .await
        .unwrap();
    assert_eq!(first, assignment("rl-1", "u-1", "src-1", now));
    let mut later = assignment("rl-1", "u-1", "src-1b", now + 60);
    later.score_version = 99;
    let updated = h.second.provider.upsert_assignment(&later).await.unwrap();
    assert_eq!(updated.sourced_id, "src-1b");
    assert_eq!(updated.created_at, now, "created_at is kept");
    assert_eq!(updated.score_version, 0, "upsert never sets the version");
    p.upsert_assignment(&assignment("rl-1", "u-0", "src-0", now))
        .await
        .unwrap();
    let all = p.list_assignments(PCK).await.unwrap();
    let users: Vec<_> = all.iter().map(|a| a.user_id.as_str()).collect();
    assert_eq!(users, ["u-0", "u-1"], "one row per key, ordered");
    assert_eq!(p.list_assignments("other").await.unwrap(), []);

    let adv = |v: u64| p.advance_score_version(PCK, "rl-1", "u-1", v);
    assert!(adv(3).await.unwrap());
    assert!(!adv(2).await.unwrap(), "an older version loses");
    assert!(!adv(3).await.unwrap(), "the same version loses");
    assert!(adv(4).await.unwrap());
    p.upsert_assignment(&assignment("rl-1", "u-1", "src-1c", now))
        .await
        .unwrap();
    let stored = p.get_assignment(PCK, "rl-1", "u-1").await.unwrap().unwrap();
    assert_eq!(stored.score_version, 4, "a relaunch keeps the version");
    assert_eq!(stored.sourced_id, "src-1c");
    assert_eq!(p.get_assignment(PCK, "rl-1", "u-7").await.unwrap(), None);
    assert!(matches!(
        p.advance_score_version(PCK, "rl-1", "u-7", 1)
            .await
            .unwrap_err(),
        RegistryError::NotFound {
            kind: "graded assignment",
            ..
        }
    ));
    assert!(matches!(
        adv(u64::MAX).await.unwrap_err(),
        RegistryError::InvalidInput {
            field: "score version",
            ..
        }
    ));
    assert!(matches!(
        p.upsert_assignment(&assignment("rl-1", "u-1", "", now))
            .await
            .unwrap_err(),
        RegistryError::InvalidInput {
            field: "lis_result_sourcedid",
            ..
        }
    ));
}

/// 32 concurrent first launches (half through a second client) create one
/// resource link, one account and one assignment; racing score versions
/// leave the highest.
pub(crate) async fn provider_racers_keep_one_row_and_highest_version(h: &Harness) {
    let now = h.now();
    let mut tasks = Vec::new();
    for i in 0..32u64 {
        let store = if i % 2 == 0 {
            h.store.clone()
        } else {
            h.second.clone()
        };
        tasks.push(tokio::spawn(async move {
            let p = store.provider.as_ref();
            let ctx = format!("ctx-{i}");
            let r = p
                .insert_resource(&resource("rl-race", Some(&ctx), "Race", now))
                .await
                .unwrap();
            let u = p
                .insert_user(&user("u-race", &format!("acct-{i}"), None, now))
                .await
                .unwrap();
            p.upsert_assignment(&assignment("rl-race", "u-race", &format!("src-{i}"), now))
                .await
                .unwrap();
            let won = p
                .advance_score_version(PCK, "rl-race", "u-race", i + 1)
                .await
                .unwrap();
            (r.context_id, u.account, i + 1, won)
        }));
    }
    let mut contexts = std::collections::BTreeSet::new();
    let mut accounts = std::collections::BTreeSet::new();
    let mut wins = 0;
    for t in tasks {
        let (ctx, account, version, won) = t.await.unwrap();
        contexts.insert(ctx);
        accounts.insert(account);
        wins += usize::from(won);
        if version == 32 {
            assert!(won, "the highest version always wins");
        }
    }
    assert_eq!(contexts.len(), 1, "one bound context: {contexts:?}");
    assert_eq!(accounts.len(), 1, "one account: {accounts:?}");
    assert!(wins >= 1);
    let p = h.store.provider.as_ref();
    let rows = p.list_assignments(PCK).await.unwrap();
    assert_eq!(rows.len(), 1, "one assignment row");
    assert_eq!(rows[0].score_version, 32);
    assert_eq!(
        p.get_resource(PCK, "rl-race")
            .await
            .unwrap()
            .unwrap()
            .context_id,
        contexts.into_iter().next().unwrap()
    );

    // Versions racing out of order still end at the highest.
    let mut tasks = Vec::new();
    for i in (33..=64u64).rev() {
        let store = if i % 2 == 0 {
            h.store.clone()
        } else {
            h.second.clone()
        };
        tasks.push(tokio::spawn(async move {
            store
                .provider
                .advance_score_version(PCK, "rl-race", "u-race", i)
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stored = p
        .get_assignment(PCK, "rl-race", "u-race")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.score_version, 64);
}

/// Redis keeps only short-lived records: the provider data model answers
/// `Unsupported` with a hint.
pub(crate) async fn provider_model_is_unsupported(h: &Harness) {
    match h.store.provider.silo_of(PCK).await.unwrap_err() {
        RegistryError::Unsupported {
            backend,
            operation,
            hint,
        } => {
            assert_eq!(backend, "redis");
            assert_eq!(operation, "the LTI 1.1 provider data model");
            assert!(hint.contains("sqlite://"), "{hint}");
        }
        other => panic!("expected Unsupported, found {other:?}"),
    }
    assert_eq!(
        h.store
            .provider
            .advance_score_version(PCK, "rl", "u", 1)
            .await
            .unwrap_err()
            .code(),
        "unsupported"
    );
}

/// A direct connection to the SQLite file of a `sqlite://PATH` URL
/// (bypassing the store).
pub(crate) fn raw_sqlite(url: &str) -> rusqlite::Connection {
    let path = url.strip_prefix("sqlite://").unwrap();
    let raw = rusqlite::Connection::open(path).unwrap();
    raw.busy_timeout(Duration::from_secs(20)).unwrap();
    raw
}

/// Removes a SQLite database file with its WAL and shared-memory files.
pub(crate) fn remove_sqlite_file(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Two LMS instances sharing a consumer key (issue 28): records keyed by the
/// provider scope (key + U+001F + instance GUID) round-trip on every backend
/// and never show up under the other instance or the bare key.
pub(crate) async fn provider_scopes_keep_instances_apart(h: &Harness) {
    let p = h.store.provider.as_ref();
    let now = h.now();
    let a = lti_registry::provider_scope(PCK, Some("lms-a.example"));
    let b = lti_registry::provider_scope(PCK, Some("lms-b.example"));
    for (scope, sid) in [(&a, "src-a"), (&b, "src-b")] {
        p.put_outcome_service(&OutcomeServiceRecord {
            consumer_key: scope.clone(),
            service_url: format!("https://{sid}.example/outcomes"),
        })
        .await
        .unwrap();
        p.upsert_assignment(&GradedAssignment {
            consumer_key: scope.clone(),
            ..assignment("rl-s", "u-s", sid, now)
        })
        .await
        .unwrap();
    }
    let stored_a = p.list_assignments(&a).await.unwrap();
    assert_eq!(stored_a.len(), 1);
    assert_eq!(stored_a[0].sourced_id, "src-a");
    assert_eq!(stored_a[0].consumer_key, a, "the scope round-trips");
    assert_eq!(
        lti_registry::scope_instance_guid(&stored_a[0].consumer_key),
        Some("lms-a.example")
    );
    assert!(p.list_assignments(PCK).await.unwrap().is_empty());
    assert!(p.advance_score_version(&b, "rl-s", "u-s", 7).await.unwrap());
    let a_now = p.get_assignment(&a, "rl-s", "u-s").await.unwrap().unwrap();
    assert_eq!(a_now.score_version, 0, "instance A's version is its own");
    assert_eq!(
        p.get_outcome_service(&b)
            .await
            .unwrap()
            .unwrap()
            .service_url,
        "https://src-b.example/outcomes"
    );
    assert_eq!(p.get_outcome_service(PCK).await.unwrap(), None);
}
