//! Backend-specific behaviour: URL selection, pairing backends, SQLite files
//! and migrations, Redis key layout, and outages (fail closed, then recover).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(
    feature = "memory",
    feature = "sqlite",
    feature = "postgres",
    feature = "redis"
))]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{
    Harness, ISS, cipher, raw_sqlite, registration, remove_sqlite_file, server_url, state, unique,
};
use lti_registry::{Clock, LaunchState, ManualClock, RegistryError, Store};
use lti_store::{OpenOptions, open, open_split};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

fn options() -> OpenOptions {
    OpenOptions::new(cipher()).with_timeout(Duration::from_secs(1))
}

fn launch_state(value: &str, now: i64) -> LaunchState {
    LaunchState::new(
        value,
        "n",
        ISS,
        "c",
        "https://tool.example/launch",
        now,
        300,
    )
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn unknown_url_scheme_is_rejected_as_invalid_input() {
    for url in ["mysql://localhost/db", "", "file:///etc/lti.toml"] {
        match open(url, &options()).await.unwrap_err() {
            RegistryError::InvalidInput { field, .. } => assert_eq!(field, "storage url"),
            other => panic!("expected InvalidInput for {url:?}, found {other:?}"),
        }
    }
}

#[tokio::test]
async fn unreachable_postgres_fails_with_store_unavailable() {
    let url = format!("postgres://root@127.0.0.1:{}/test", closed_port().await);
    let err = open(&url, &options()).await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::StoreUnavailable {
                backend: "postgres",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.status_hint(), 503);
}

#[tokio::test]
async fn unreachable_redis_fails_with_store_unavailable() {
    let url = format!("redis://127.0.0.1:{}", closed_port().await);
    let err = open(&url, &options()).await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::StoreUnavailable {
                backend: "redis",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn split_store_takes_short_lived_records_from_the_second_url() {
    let opts = options();
    let split = open_split("sqlite::memory:", Some("memory://"), &opts)
        .await
        .unwrap();
    split
        .registrations
        .insert_registration(&registration("c1"))
        .await
        .unwrap();
    assert_eq!(
        split
            .registrations
            .find_by_issuer(ISS)
            .await
            .unwrap()
            .client_id,
        "c1"
    );
    let exp = opts.clock.now() + 60;
    split.nonces.record_nonce(ISS, "n1", exp).await.unwrap();
    assert!(matches!(
        split.nonces.record_nonce(ISS, "n1", exp).await.unwrap_err(),
        RegistryError::NonceReplayed { .. }
    ));
    // Without a nonce URL, everything comes from the first.
    let single = open_split("memory://", None, &opts).await.unwrap();
    single.nonces.record_nonce(ISS, "n1", exp).await.unwrap();
}

/// A new SQLite file holding registration `c1`; returns its path and URL.
async fn sqlite_file_with_registration(tag: &str) -> (std::path::PathBuf, String) {
    let path = std::env::temp_dir().join(format!("{}.db", unique(tag)));
    let url = format!("sqlite://{}", path.display());
    let store = open(&url, &options()).await.unwrap();
    store
        .registrations
        .insert_registration(&registration("c1"))
        .await
        .unwrap();
    (path, url)
}

#[tokio::test]
async fn sqlite_file_uses_wal_keeps_data_across_reopen_and_refuses_a_newer_schema() {
    let (path, url) = sqlite_file_with_registration("lti_store_reopen").await;
    let opts = options();
    let store = open(&url, &opts).await.unwrap();
    assert_eq!(
        store
            .registrations
            .get_registration(ISS, "c1")
            .await
            .unwrap()
            .client_id,
        "c1"
    );

    let raw = raw_sqlite(&url);
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = raw
        .query_row("SELECT MAX(version) FROM lti_schema_version", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(version, 4);
    raw.execute("INSERT INTO lti_schema_version (version) VALUES (99)", [])
        .unwrap();
    drop(raw);
    match open(&url, &opts).await.unwrap_err() {
        RegistryError::Corrupt { kind, reason, .. } => {
            assert_eq!(kind, "schema");
            assert!(reason.contains("found 99"), "{reason}");
        }
        other => panic!("expected Corrupt schema, found {other:?}"),
    }
    remove_sqlite_file(&path);
}

#[tokio::test]
async fn redis_refuses_durable_records_with_a_pairing_hint() {
    let Some(h) = Harness::redis().await else {
        return;
    };
    let err = h
        .store
        .registrations
        .list_registrations()
        .await
        .unwrap_err();
    match &err {
        RegistryError::Unsupported {
            backend,
            operation,
            hint,
        } => {
            assert_eq!((*backend, *operation), ("redis", "registrations"));
            assert!(hint.contains("sqlite://") && hint.contains("nonce_url"));
        }
        other => panic!("expected Unsupported, found {other:?}"),
    }
    assert_eq!(
        h.store.tool_keys.active_key().await.unwrap_err().code(),
        "unsupported"
    );
    assert_eq!(
        h.store
            .consumers
            .get_consumer("k")
            .await
            .unwrap_err()
            .code(),
        "unsupported"
    );
    h.cleanup().await;
}

#[tokio::test]
async fn redis_keys_are_prefixed_hashed_and_expire() {
    let Some(h) = Harness::redis().await else {
        return;
    };
    let exp = h.now() + 120;
    h.store
        .nonces
        .record_nonce(ISS, "visible-nonce", exp)
        .await
        .unwrap();
    h.store
        .oauth1_nonces
        .record_oauth1_nonce("ck", "visible-oauth-nonce", exp)
        .await
        .unwrap();
    h.store
        .launch_states
        .save_state(&state(&h, "st-r", 120))
        .await
        .unwrap();
    let values = h.raw_redis_values().await;
    assert_eq!(values.len(), 3, "{values:?}");
    for (k, _) in &values {
        assert!(!k.contains("visible"), "nonce stored in clear in key {k}");
    }
    let client = redis::Client::open(h.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for (k, _) in &values {
        let ttl: i64 = redis::cmd("TTL")
            .arg(k)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((1..=120).contains(&ttl), "key {k} has TTL {ttl}");
    }
    h.cleanup().await;
}

/// A TCP proxy in front of a real server that the test can stop and restart
/// on the same port, to simulate an outage.
struct Proxy {
    port: u16,
    upstream: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = Self {
            port,
            upstream,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        p.serve(listener);
        p
    }

    fn serve(&self, listener: TcpListener) {
        let (upstream, tasks) = (self.upstream, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let conn = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Closes the listener and every proxied connection.
    fn stop(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    async fn restart(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot rebind proxy port {}: {e}", self.port),
            }
        };
        self.serve(listener);
    }

    /// `url` with its host:port replaced by the proxy's.
    fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (auth, host_and_path) = match rest.rsplit_once('@') {
            Some((a, h)) => (format!("{a}@"), h),
            None => (String::new(), rest),
        };
        let path = host_and_path
            .find('/')
            .map(|i| &host_and_path[i..])
            .unwrap_or("");
        format!("{scheme}://{auth}127.0.0.1:{}{path}", self.port)
    }
}

async fn upstream_of(url: &str) -> SocketAddr {
    let rest = url.split_once("://").unwrap().1;
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = host.split('/').next().unwrap();
    tokio::net::lookup_host(host).await.unwrap().next().unwrap()
}

/// While the server is unreachable every operation fails with
/// `StoreUnavailable` (nothing is accepted, nothing consumed); after it is
/// back, the same store works again and the saved state is still there.
async fn outage_fails_closed_and_recovers(store: &Store, proxy: &Proxy, clock: &ManualClock) {
    let now = clock.now();
    store
        .launch_states
        .save_state(&launch_state("outage-state", now))
        .await
        .unwrap();
    store
        .nonces
        .record_nonce(ISS, "before", now + 60)
        .await
        .unwrap();

    proxy.stop();
    let err = store
        .launch_states
        .consume_state("outage-state")
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::StoreUnavailable { .. }),
        "{err:?}"
    );
    let err = store
        .nonces
        .record_nonce(ISS, "during", now + 60)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::StoreUnavailable { .. }),
        "{err:?}"
    );
    let err = store.launch_data.load_launch("x").await.unwrap_err();
    assert!(
        matches!(err, RegistryError::StoreUnavailable { .. }),
        "{err:?}"
    );

    proxy.restart().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match store.nonces.record_nonce(ISS, "during", now + 60).await {
            Ok(()) => break,
            Err(RegistryError::StoreUnavailable { .. })
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("store did not recover: {e:?}"),
        }
    }
    assert_eq!(
        store
            .launch_states
            .consume_state("outage-state")
            .await
            .unwrap()
            .state,
        "outage-state"
    );
    assert!(matches!(
        store
            .nonces
            .record_nonce(ISS, "before", now + 60)
            .await
            .unwrap_err(),
        RegistryError::NonceReplayed { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_fails_closed_and_recovers_without_reopening() {
    let Some(base) = server_url("LTI_TEST_POSTGRES_URL") else {
        return;
    };
    let proxy = Proxy::start(upstream_of(&base).await).await;
    let clock = ManualClock::starting_now();
    let schema = unique("lti_test_outage");
    let opts = options()
        .with_clock(Arc::new(clock.clone()))
        .with_pool_size(2)
        .with_postgres_schema(schema.clone());
    let store = open(&proxy.url(&base), &opts).await.unwrap();
    outage_fails_closed_and_recovers(&store, &proxy, &clock).await;
    let direct = sqlx::PgPool::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&direct)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_closed_and_recovers_without_reopening() {
    let Some(base) = server_url("LTI_TEST_REDIS_URL") else {
        return;
    };
    let proxy = Proxy::start(upstream_of(&base).await).await;
    let clock = ManualClock::starting_now();
    let opts = options()
        .with_clock(Arc::new(clock.clone()))
        .with_pool_size(2)
        .with_redis_key_prefix(format!("{}:", unique("lti-test-outage")));
    let store = open(&proxy.url(&base), &opts).await.unwrap();
    outage_fails_closed_and_recovers(&store, &proxy, &clock).await;
}

#[tokio::test]
async fn sqlite_database_at_schema_1_is_upgraded_to_the_provider_tables_keeping_its_data() {
    let (path, url) = sqlite_file_with_registration("lti_store_upgrade").await;
    let opts = options();
    // Turn the file back into a schema-1 database (as written before
    // migrations 2 and 3 existed).
    let raw = raw_sqlite(&url);
    for table in [
        "lti_provider_silos",
        "lti_provider_contexts",
        "lti_provider_resources",
        "lti_provider_users",
        "lti_provider_visits",
        "lti_provider_outcome_services",
        "lti_provider_assignments",
        "lti_grade_outbox",
        "lti_shared_values",
    ] {
        raw.execute_batch(&format!("DROP TABLE {table}")).unwrap();
    }
    raw.execute("DELETE FROM lti_schema_version WHERE version >= 2", [])
        .unwrap();
    drop(raw);

    let store = open(&url, &opts).await.unwrap();
    assert_eq!(
        store
            .registrations
            .get_registration(ISS, "c1")
            .await
            .unwrap()
            .client_id,
        "c1"
    );
    store
        .provider
        .assign_silo("ck", &lti_registry::SiloId("tenant".into()))
        .await
        .unwrap();
    assert_eq!(
        store.provider.silo_of("ck").await.unwrap(),
        Some(lti_registry::SiloId("tenant".into()))
    );
    let raw = raw_sqlite(&url);
    let versions: Vec<i64> = raw
        .prepare("SELECT version FROM lti_schema_version ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);
    let grade = lti_registry::GradeTarget::basic_outcomes("ck", "https://lms.example/o", "s1");
    let payload = lti_registry::GradePayload::BasicOutcomes {
        score: 0.5,
        text: None,
    };
    assert_eq!(
        store.outbox.submit(&grade, &payload).await.unwrap().version,
        1
    );
    drop(raw);
    remove_sqlite_file(&path);
}

fn assert_refused<T: std::fmt::Debug>(outcome: lti_registry::Result<T>) {
    match outcome {
        Err(RegistryError::StoreUnavailable { backend, reason }) => {
            assert_eq!(backend, "sqlite");
            assert!(reason.contains("refused"), "{reason}");
        }
        other => panic!("expected StoreUnavailable, found {other:?}"),
    }
}

/// Writes that queue while a SQLite file is locked by another connection
/// commit together as one transaction, but each gets its own outcome: one the
/// database refuses fails closed and changes nothing, and does not take the
/// others down with it (a retry of it then wins, the others stay won).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writes_committed_together_keep_their_own_outcomes() {
    let path = std::env::temp_dir().join(format!("{}.db", unique("lti_store_batch")));
    let url = format!("sqlite://{}", path.display());
    let opts = OpenOptions::new(cipher()).with_timeout(Duration::from_secs(20));
    let store = open(&url, &opts).await.unwrap();
    let now = lti_registry::SystemClock.now();
    // A nonce with this expiry, or the state "poisoned", is refused.
    let poisoned_expiry = now + 999;
    let states = ["s1", "s2", "s3", "poisoned"];
    for s in states {
        store
            .launch_states
            .save_state(&launch_state(s, now))
            .await
            .unwrap();
    }
    let raw = raw_sqlite(&url);
    raw.execute_batch(&format!(
        "CREATE TRIGGER refuse_nonce BEFORE INSERT ON lti_nonces \
         WHEN NEW.expires_at = {poisoned_expiry} BEGIN SELECT RAISE(ABORT, 'refused'); END; \
         CREATE TRIGGER refuse_state BEFORE DELETE ON lti_launch_states \
         WHEN OLD.state = 'poisoned' BEGIN SELECT RAISE(ABORT, 'refused'); END;"
    ))
    .unwrap();
    // Hold the write lock: the first write takes the writer and waits on it,
    // the others queue behind it.
    raw.execute_batch("BEGIN IMMEDIATE").unwrap();
    let first = {
        let store = store.clone();
        tokio::spawn(async move { store.nonces.record_nonce(ISS, "first", now + 300).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut nonce_tasks = Vec::new();
    for (nonce, exp) in [
        ("n1", now + 300),
        ("n2", now + 300),
        ("refused", poisoned_expiry),
    ] {
        let store = store.clone();
        nonce_tasks.push((
            nonce,
            tokio::spawn(async move { store.nonces.record_nonce(ISS, nonce, exp).await }),
        ));
    }
    let mut state_tasks = Vec::new();
    for s in states {
        let store = store.clone();
        state_tasks.push((
            s,
            tokio::spawn(async move { store.launch_states.consume_state(s).await }),
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    raw.execute_batch("COMMIT").unwrap();

    first.await.unwrap().unwrap();
    for (nonce, t) in nonce_tasks {
        match nonce {
            "refused" => assert_refused(t.await.unwrap()),
            _ => t.await.unwrap().unwrap(),
        }
    }
    for (s, t) in state_tasks {
        match s {
            "poisoned" => assert_refused(t.await.unwrap()),
            _ => assert_eq!(t.await.unwrap().unwrap().state, s),
        }
    }

    // The refused writes changed nothing: with the refusals lifted, each
    // wins once; the others stay won.
    raw.execute_batch("DROP TRIGGER refuse_nonce; DROP TRIGGER refuse_state")
        .unwrap();
    store
        .nonces
        .record_nonce(ISS, "refused", now + 300)
        .await
        .unwrap();
    assert_eq!(
        store
            .launch_states
            .consume_state("poisoned")
            .await
            .unwrap()
            .state,
        "poisoned"
    );
    for nonce in ["first", "n1", "n2"] {
        assert!(matches!(
            store.nonces.record_nonce(ISS, nonce, now + 300).await,
            Err(RegistryError::NonceReplayed { .. })
        ));
    }
    for s in ["s1", "s2", "s3"] {
        assert!(matches!(
            store.launch_states.consume_state(s).await,
            Err(RegistryError::StateNotFound)
        ));
    }
    drop(raw);
    remove_sqlite_file(&path);
}
