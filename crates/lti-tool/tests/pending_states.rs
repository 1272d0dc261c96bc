//! Pending login states are bounded because there are none: the login seals its
//! state into the `state` value and writes nothing; the launch opens it and uses
//! it once by recording its nonce. A flood of logins cannot crowd out a real one,
//! a replayed state is refused under real concurrency, and forged, altered,
//! foreign and expired states are refused with `state_not_found`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use common::*;
use lti_registry::{
    LaunchDataStore, LaunchState, LaunchStateStore, ManualClock, NonceStore, RegistryError,
    SecretCipher, SecretString, Store,
};
use lti_store::{OpenOptions, SqlStore};
use lti_tool::Tool;
use ring::hmac;

/// Counts the ephemeral stores' operations; the launch-state store refuses every
/// call (the tool must not use it).
#[derive(Default)]
struct Ops {
    state_calls: AtomicUsize,
    nonce_records: AtomicUsize,
    launch_saves: AtomicUsize,
    launch_other: AtomicUsize,
}

impl Ops {
    fn snapshot(&self) -> [usize; 4] {
        [
            self.state_calls.load(Ordering::SeqCst),
            self.nonce_records.load(Ordering::SeqCst),
            self.launch_saves.load(Ordering::SeqCst),
            self.launch_other.load(Ordering::SeqCst),
        ]
    }
}

struct RefusingStates(Arc<Ops>);

#[async_trait]
impl LaunchStateStore for RefusingStates {
    async fn save_state(&self, _: &LaunchState) -> lti_registry::Result<()> {
        self.0.state_calls.fetch_add(1, Ordering::SeqCst);
        Err(RegistryError::unavailable(
            "test",
            "the launch-state store is not used",
        ))
    }
    async fn consume_state(&self, _: &str) -> lti_registry::Result<LaunchState> {
        self.0.state_calls.fetch_add(1, Ordering::SeqCst);
        Err(RegistryError::unavailable(
            "test",
            "the launch-state store is not used",
        ))
    }
}

struct CountingNonces(Arc<Ops>, Arc<dyn NonceStore>);

#[async_trait]
impl NonceStore for CountingNonces {
    async fn record_nonce(
        &self,
        issuer: &str,
        nonce: &str,
        until: i64,
    ) -> lti_registry::Result<()> {
        self.0.nonce_records.fetch_add(1, Ordering::SeqCst);
        self.1.record_nonce(issuer, nonce, until).await
    }
}

struct CountingLaunches(Arc<Ops>, Arc<dyn LaunchDataStore>);

#[async_trait]
impl LaunchDataStore for CountingLaunches {
    async fn save_launch(
        &self,
        id: &str,
        data: serde_json::Value,
        until: i64,
    ) -> lti_registry::Result<()> {
        self.0.launch_saves.fetch_add(1, Ordering::SeqCst);
        self.1.save_launch(id, data, until).await
    }
    async fn load_launch(&self, id: &str) -> lti_registry::Result<serde_json::Value> {
        self.0.launch_other.fetch_add(1, Ordering::SeqCst);
        self.1.load_launch(id).await
    }
    async fn delete_launch(&self, id: &str) -> lti_registry::Result<bool> {
        self.0.launch_other.fetch_add(1, Ordering::SeqCst);
        self.1.delete_launch(id).await
    }
}

/// `store` with its ephemeral stores counted and the launch-state store refusing.
fn counted(mut store: Store) -> (Store, Arc<Ops>) {
    let ops = Arc::new(Ops::default());
    store.launch_states = Arc::new(RefusingStates(ops.clone()));
    store.nonces = Arc::new(CountingNonces(ops.clone(), store.nonces.clone()));
    store.launch_data = Arc::new(CountingLaunches(ops.clone(), store.launch_data.clone()));
    (store, ops)
}

/// A harness over `store` (which must hold the registration and tool key).
fn harness_over(store: Store, clock: ManualClock) -> Harness {
    let tool = builder(&store, &clock).build().unwrap();
    Harness {
        tool,
        store,
        clock,
        key: platform_key(),
    }
}

/// The state cookie for `state`, computed as documented (HMAC-SHA256 with the
/// cookie secret over the context string and the state), so a test can present a
/// state the tool did not issue with a cookie that binds it.
fn cookie_for(state: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, COOKIE_SECRET);
    let mut msg = b"lti-tool state cookie v1\0".to_vec();
    msg.extend_from_slice(state.as_bytes());
    let value = lti_jose::b64::encode(hmac::sign(&key, &msg).as_ref());
    let digest = ring::digest::digest(&ring::digest::SHA256, state.as_bytes());
    format!(
        "__Host-lti_state_{}={value}",
        lti_jose::b64::encode(&digest.as_ref()[..12])
    )
}

/// The login's state replaced by `state`, with a cookie binding it.
fn posing_as(login: &Login, state: &str) -> Login {
    Login {
        state: state.to_owned(),
        cookie: cookie_for(state),
        ..login.clone()
    }
}

/// A flood of logins. Every store call is counted and the launch-state store
/// refuses every call, so a single write per login would fail the test: the
/// count proves the point at any size (the memory store used to hold 2^20
/// states; that many sealed logins take minutes in a debug build).
const FLOOD: usize = 20_001;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_logins_stores_nothing_and_a_real_login_still_launches() {
    let clock = ManualClock::new(NOW);
    let (store, ops) = counted(store(&clock).await);
    let h = Arc::new(harness_over(store, clock));
    let req = get(
        "/lti/login",
        &[
            ("iss", ISS),
            ("login_hint", "flood"),
            ("target_link_uri", TARGET),
            ("client_id", CLIENT_ID),
        ],
    );
    // A flood of logins from two workers.
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (h, req) = (h.clone(), req.clone());
            tokio::spawn(async move {
                let n = FLOOD / 2 + w;
                for _ in 0..n {
                    let resp = h.tool.login(&req).await.unwrap();
                    assert_eq!(resp.status(), http::StatusCode::FOUND);
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for w in workers {
        total += w.await.unwrap();
    }
    assert_eq!(total, FLOOD);
    assert_eq!(ops.snapshot(), [0, 0, 0, 0], "a login touches no store");

    // A real login and launch go through, at the cost of one nonce record and
    // the saved launch.
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    let (launch, _) = h.launch_token(&login, &token).await.unwrap();
    assert_eq!(launch.sub(), Some("user-1"));
    assert_eq!(ops.snapshot(), [0, 1, 1, 0]);
    // The replay costs one refused nonce record.
    expect_code(h.launch_token(&login, &token).await, "state_not_found");
    assert_eq!(ops.snapshot(), [0, 2, 1, 0]);
}

/// A SQLite store in a fresh file, with the registration and the tool key.
async fn sqlite_store(clock: &ManualClock, name: &str) -> (SqlStore, String) {
    let dir = std::env::temp_dir().join(format!(
        "lti-tool-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("store.db").display());
    let options = OpenOptions::new(SecretCipher::insecure_plaintext_for_tests())
        .with_clock(Arc::new(clock.clone()));
    let sql = SqlStore::open_sqlite(&url, &options).await.unwrap();
    (sql, url)
}

async fn seeded(sql: Arc<SqlStore>) -> Store {
    let store = Store::from_backend(sql);
    store
        .registrations
        .insert_registration(&registration())
        .await
        .unwrap();
    store
        .tool_keys
        .add_next_key("tool-key-1", "RS256", &SecretString::new(TOOL_1_PEM))
        .await
        .unwrap();
    store.tool_keys.promote_next_key().await.unwrap();
    store
}

#[tokio::test]
async fn logins_write_no_row_to_sqlite() {
    let clock = ManualClock::new(NOW);
    let (sql, _) = sqlite_store(&clock, "rows").await;
    let sql = Arc::new(sql);
    let h = harness_over(seeded(sql.clone()).await, clock);
    for _ in 0..500 {
        h.login().await;
    }
    // Every ephemeral row has expired ten minutes on; none were written.
    h.clock.advance(601);
    assert_eq!(sql.purge_expired().await.unwrap(), 0);

    // One cycle writes exactly the nonce and the launch.
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    h.launch_token(&login, &token).await.unwrap();
    h.clock.advance(3 * 3600);
    assert_eq!(sql.purge_expired().await.unwrap(), 2);
}

#[tokio::test]
async fn forged_altered_foreign_and_expired_states_are_not_found() {
    let h = Harness::new().await;
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    // Forged: a random value, as states used to be, with a cookie binding it.
    let forged = lti_jose::b64::encode(&[7u8; 32]);
    expect_code(
        h.launch_token(&posing_as(&login, &forged), &token).await,
        "state_not_found",
    );
    // Altered: any bit of the sealed value.
    let raw = lti_jose::b64::decode(&login.state).unwrap();
    for i in [0, 1, 17, raw.len() / 2, raw.len() - 1] {
        let mut bad = raw.clone();
        bad[i] ^= 1;
        let bad = lti_jose::b64::encode(&bad);
        expect_code(
            h.launch_token(&posing_as(&login, &bad), &token).await,
            "state_not_found",
        );
    }
    // Foreign: sealed by a tool with another secret (same store, same platform).
    let other = Tool::builder(TOOL_BASE, &h.store)
        .clock(Arc::new(h.clock.clone()))
        .key_source(static_keys(&[&platform_key()]))
        .state_cookie_secret(&[0x5a; 32])
        .build()
        .unwrap();
    let foreign = Login::from_response(
        &other
            .login(&get(
                "/lti/login",
                &[
                    ("iss", ISS),
                    ("login_hint", "x"),
                    ("target_link_uri", TARGET),
                ],
            ))
            .await
            .unwrap(),
    );
    let foreign_token = h.sign(&h.claims(&foreign.nonce));
    expect_code(
        h.launch_token(&posing_as(&foreign, &foreign.state), &foreign_token)
            .await,
        "state_not_found",
    );
    // None of these used the real state up.
    h.launch_token(&login, &token).await.unwrap();

    // Expired: ten minutes and a second later, even with a fresh token.
    let late = h.login().await;
    h.clock.advance(601);
    let fresh = h.sign(&h.claims(&late.nonce));
    let err = expect_code(h.launch_token(&late, &fresh).await, "state_not_found");
    assert_eq!(err.http_status(), http::StatusCode::UNAUTHORIZED);
    assert!(!err.to_string().contains(&late.state));
}

#[tokio::test]
async fn a_replayed_state_is_refused_with_the_same_or_another_id_token() {
    let h = Harness::new().await;
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    h.launch_token(&login, &token).await.unwrap();
    // The same POST again.
    let err = expect_code(h.launch_token(&login, &token).await, "state_not_found");
    assert_eq!(err.http_status(), http::StatusCode::UNAUTHORIZED);
    // The same state with another id_token the platform signed for its nonce.
    let mut claims = h.claims(&login.nonce);
    claims.insert("sub".into(), serde_json::json!("user-2"));
    let other = h.sign(&claims);
    expect_code(h.launch_token(&login, &other).await, "state_not_found");
    // A failed launch uses the state up too, as before: a bad token first...
    let second = h.login().await;
    let mut bad = h.claims(&second.nonce);
    bad.insert("aud".into(), serde_json::json!("someone-else"));
    expect_code(
        h.launch_token(&second, &h.sign(&bad)).await,
        "invalid_audience",
    );
    // ...then the good one is refused.
    let good = h.sign(&h.claims(&second.nonce));
    expect_code(h.launch_token(&second, &good).await, "state_not_found");
}

/// Launches `login` with `token` `n` times at once on `tools` (round robin) and
/// returns the outcomes' codes (`ok` for a launch).
async fn concurrent_launches(tools: &[Tool], login: &Login, token: &str, n: usize) -> Vec<String> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let tool = tools[i % tools.len()].clone();
            let req = login.post(token);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                match tool.launch(&req).await {
                    Ok(_) => "ok".to_owned(),
                    Err(e) => e.code().to_owned(),
                }
            })
        })
        .collect();
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes
}

fn exactly_one_launched(codes: &[String]) {
    assert_eq!(codes.iter().filter(|c| *c == "ok").count(), 1, "{codes:?}");
    assert!(
        codes.iter().all(|c| c == "ok" || c == "state_not_found"),
        "{codes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_sixteen_concurrent_launches_of_one_state_exactly_one_succeeds() {
    let h = Harness::new().await;
    for _ in 0..5 {
        let login = h.login().await;
        let token = h.sign(&h.claims(&login.nonce));
        let codes = concurrent_launches(std::slice::from_ref(&h.tool), &login, &token, 16).await;
        exactly_one_launched(&codes);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_on_one_sqlite_file_launch_a_state_once() {
    let clock = ManualClock::new(NOW);
    let (first, url) = sqlite_store(&clock, "twice").await;
    let first = Arc::new(first);
    let store_a = seeded(first).await;
    let options = OpenOptions::new(SecretCipher::insecure_plaintext_for_tests())
        .with_clock(Arc::new(clock.clone()));
    let store_b = Store::from_backend(Arc::new(
        SqlStore::open_sqlite(&url, &options).await.unwrap(),
    ));
    let tools = [
        builder(&store_a, &clock).build().unwrap(),
        builder(&store_b, &clock).build().unwrap(),
    ];
    let h = harness_over(store_a, clock);
    for _ in 0..3 {
        let login = h.login().await;
        let token = h.sign(&h.claims(&login.nonce));
        let codes = concurrent_launches(&tools, &login, &token, 16).await;
        exactly_one_launched(&codes);
    }
}

#[tokio::test]
async fn an_oversized_login_parameter_is_refused_not_sealed() {
    let h = Harness::new().await;
    let long = format!("{TARGET}?{}", "a".repeat(3000));
    let err = expect_code(
        h.login_with(&[("lti_storage_target", "f".repeat(3000).as_str())])
            .await,
        "parameter_too_long",
    );
    assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST);
    assert!(err.to_string().contains("lti_storage_target"), "{err}");
    // target_link_uri is checked against the tool's URLs first, then its length.
    let err = expect_code(
        h.tool
            .login(&get(
                "/lti/login",
                &[
                    ("iss", ISS),
                    ("login_hint", "x"),
                    ("target_link_uri", long.as_str()),
                    ("client_id", CLIENT_ID),
                ],
            ))
            .await,
        "parameter_too_long",
    );
    assert!(err.to_string().contains("target_link_uri"), "{err}");
}
