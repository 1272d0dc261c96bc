//! The grade outbox worker against real LMS stand-ins on loopback:
//! `lti-platform`'s AGS endpoints (tests/support, with a score fault
//! switch) and an LTI 1.1 outcomes receiver (`lti11::OutcomesReceiver`
//! behind a hyper server with the same switch), both failing (500),
//! throttling (429 + `Retry-After`) and recovering on command, on every
//! store backend: memory, SQLite, and PostgreSQL and Redis when
//! `LTI_TEST_POSTGRES_URL` / `LTI_TEST_REDIS_URL` are set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lti_http::{EgressPolicy, HyperClient};
use lti_message::Timestamp;
use lti_message::ags::{LineItem, Score};
use lti_registry::{
    AppKey, Consumer, GradeOutbox, GradePayload, GradeRecord, GradeStatus, GradeTarget,
    SecretCipher, Store,
};
use lti_services::{AgsSender, OutboxWorker, WorkerConfig};
use support::{Options, ScoreFault, TestPlatform};
use tokio::net::TcpListener;

const CONSUMER: &str = "outbox-consumer";
const SECRET: &str = "outbox-consumer-secret-0123456789";

fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{tag}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

fn env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("LTI_TEST_REQUIRE_BACKENDS").as_deref() != Ok("1"),
                "{var} is unset but LTI_TEST_REQUIRE_BACKENDS=1 requires this backend test to run"
            );
            eprintln!("SKIPPED: {var} is not set, so this backend did not run");
            None
        }
    }
}

/// A store for one test, and how to remove it afterwards.
struct Backend {
    store: Store,
    cleanup: Cleanup,
}

enum Cleanup {
    None,
    File(std::path::PathBuf),
    Schema(String, String),
    Prefix(String, String),
}

impl Backend {
    fn options() -> lti_store::OpenOptions {
        lti_store::OpenOptions::new(
            SecretCipher::aes256gcm(AppKey::new("k1", &[9u8; 32]).unwrap(), vec![]).unwrap(),
        )
    }

    async fn open(kind: &str) -> Option<Self> {
        let options = Self::options();
        let (store, cleanup) = match kind {
            "memory" => (
                lti_store::open("memory://", &options).await.unwrap(),
                Cleanup::None,
            ),
            "sqlite" => {
                let path = std::env::temp_dir().join(format!("{}.db", unique("outbox_svc")));
                let url = format!("sqlite://{}", path.display());
                (
                    lti_store::open(&url, &options).await.unwrap(),
                    Cleanup::File(path),
                )
            }
            "postgres" => {
                let url = env("LTI_TEST_POSTGRES_URL")?;
                let schema = unique("outbox_svc");
                let options = options.with_postgres_schema(schema.clone());
                (
                    lti_store::open(&url, &options).await.unwrap(),
                    Cleanup::Schema(url, schema),
                )
            }
            "redis" => {
                let url = env("LTI_TEST_REDIS_URL")?;
                let prefix = format!("{}:", unique("outbox-svc"));
                let options = options.with_redis_key_prefix(prefix.clone());
                // Redis serves the outbox; consumers come from memory.
                let redis = lti_store::open(&url, &options).await.unwrap();
                let mut store = lti_store::open("memory://", &options).await.unwrap();
                store.outbox = redis.outbox;
                (store, Cleanup::Prefix(url, prefix))
            }
            other => panic!("unknown backend {other}"),
        };
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        store
            .consumers
            .insert_consumer(&Consumer::new(CONSUMER, SECRET, "Outbox LMS", now))
            .await
            .unwrap();
        Some(Self { store, cleanup })
    }

    async fn cleanup(self) {
        match self.cleanup {
            Cleanup::None => {}
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
            Cleanup::Schema(url, schema) => {
                let pool = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA \"{schema}\" CASCADE"
                )))
                .execute(&pool)
                .await
                .unwrap();
                pool.close().await;
            }
            Cleanup::Prefix(url, prefix) => {
                let client = redis::Client::open(url.as_str()).unwrap();
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
}

/// An LTI 1.1 consumer's outcomes service on loopback: verifies the tool's
/// signature, records every accepted `replaceResult`, and fails, throttles
/// or refuses on command.
struct OutcomesLms {
    url: String,
    fault: Arc<Mutex<ScoreFault>>,
    accepted: Arc<Mutex<Vec<(String, f64)>>>,
}

struct RecordingBook {
    accepted: Arc<Mutex<Vec<(String, f64)>>>,
    refuse: Arc<Mutex<ScoreFault>>,
}

#[async_trait]
impl lti11::GradeBook for RecordingBook {
    async fn replace_result(
        &self,
        consumer_key: &str,
        sourced_id: &str,
        score: lti11::Score,
        _: Option<&lti11::ResultData>,
    ) -> Result<(), lti11::GradeBookError> {
        assert_eq!(consumer_key, CONSUMER);
        if *self.refuse.lock().unwrap() == ScoreFault::RejectUser(sourced_id.to_owned()) {
            return Err(lti11::GradeBookError::UnknownSourcedId);
        }
        self.accepted
            .lock()
            .unwrap()
            .push((sourced_id.to_owned(), score.value()));
        Ok(())
    }
    async fn read_result(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<lti11::Score>, lti11::GradeBookError> {
        Ok(None)
    }
    async fn delete_result(&self, _: &str, _: &str) -> Result<(), lti11::GradeBookError> {
        Ok(())
    }
}

impl OutcomesLms {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/outcomes", listener.local_addr().unwrap());
        let lms_store = lti_store::open("memory://", &Backend::options())
            .await
            .unwrap();
        lms_store
            .consumers
            .insert_consumer(&Consumer::new(CONSUMER, SECRET, "tool", 0))
            .await
            .unwrap();
        let fault = Arc::new(Mutex::new(ScoreFault::None));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let receiver = Arc::new(lti11::OutcomesReceiver::new(
            lti11::OAuthVerifier::new(lms_store.consumers.clone(), lms_store.oauth1_nonces.clone()),
            Arc::new(RecordingBook {
                accepted: accepted.clone(),
                refuse: fault.clone(),
            }),
        ));
        let (f, u) = (fault.clone(), url.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (receiver, fault, url) = (receiver.clone(), f.clone(), u.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (receiver, fault, url) = (receiver.clone(), fault.clone(), url.clone());
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let current = fault.lock().unwrap().clone();
                            let resp = match current {
                                ScoreFault::Status(s) => status(s, None),
                                ScoreFault::Throttle(secs) => status(429, Some(secs)),
                                other => {
                                    if let ScoreFault::Delay(ms) = other {
                                        tokio::time::sleep(Duration::from_millis(ms)).await;
                                    }
                                    let text = |n: http::HeaderName| {
                                        parts
                                            .headers
                                            .get(n)
                                            .and_then(|v| v.to_str().ok())
                                            .map(str::to_owned)
                                    };
                                    let (auth, ct) = (
                                        text(http::header::AUTHORIZATION),
                                        text(http::header::CONTENT_TYPE),
                                    );
                                    let signed = lti11::SignedRequest {
                                        method: "POST",
                                        url: &url,
                                        authorization: auth.as_deref(),
                                        content_type: ct.as_deref(),
                                        body: &body,
                                    };
                                    receiver.handle(&signed).await.response
                                }
                            };
                            let (p, b) = resp.into_parts();
                            Ok::<_, Infallible>(Response::from_parts(p, Full::new(b)))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self {
            url,
            fault,
            accepted,
        }
    }

    fn set(&self, fault: ScoreFault) {
        *self.fault.lock().unwrap() = fault;
    }

    fn accepted(&self) -> Vec<(String, f64)> {
        self.accepted.lock().unwrap().clone()
    }
}

fn status(code: u16, retry_after: Option<u64>) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from_static(b"unavailable"));
    *r.status_mut() = StatusCode::from_u16(code).unwrap();
    if let Some(s) = retry_after {
        r.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_str(&s.to_string()).unwrap(),
        );
    }
    r
}

fn worker(store: &Store, lms: &TestPlatform, outcomes: &OutcomesLms) -> OutboxWorker {
    let services = lms.services();
    let http = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    let egress = EgressPolicy::new().allow_origin(&outcomes.url).unwrap();
    let client = lti11::OutcomesClient::new(http).with_egress_policy(egress);
    OutboxWorker::new(store.outbox.clone())
        .with_ags_sender(Arc::new(AgsSender::new(
            services,
            Arc::new(lms.registration()),
        )))
        .with_basic_outcomes_sender(Arc::new(lti11::BasicOutcomesSender::new(
            client,
            store.consumers.clone(),
        )))
        .with_config(
            WorkerConfig::default()
                .with_poll_interval(Duration::from_millis(50))
                .with_backoff(Duration::from_secs(1), Duration::from_secs(2))
                .with_lease_secs(30),
        )
}

/// Polls `check` on the record `id` until it holds (30 s at most).
async fn wait_for(
    outbox: &dyn GradeOutbox,
    id: &str,
    what: &str,
    check: impl Fn(&GradeRecord) -> bool,
) -> GradeRecord {
    let start = Instant::now();
    loop {
        if let Some(r) = outbox.get(id).await.unwrap()
            && check(&r)
        {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}: {:?}",
            outbox.get(id).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ags_score(user: &str, given: f64, millis: i64) -> GradePayload {
    GradePayload::Ags {
        score: Score::completed_fully_graded(
            user,
            given,
            10.0,
            Timestamp::from_unix_millis(1_800_000_000_000 + millis).unwrap(),
        ),
    }
}

fn bo_score(score: f64) -> GradePayload {
    GradePayload::BasicOutcomes { score, text: None }
}

/// Per learner, the scores that arrived, in order.
fn by_learner(accepted: &[(String, f64)]) -> BTreeMap<String, Vec<f64>> {
    let mut m: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (who, s) in accepted {
        m.entry(who.clone()).or_default().push(*s);
    }
    m
}

/// The whole story on one backend.
async fn grades_survive_failures_throttling_and_refusals(kind: &str) {
    let Some(backend) = Backend::open(kind).await else {
        return;
    };
    let store = backend.store.clone();
    let outbox = store.outbox.as_ref();
    let lms = TestPlatform::start(Options::default()).await;
    let outcomes = OutcomesLms::start().await;
    let ags = lms.ags(&lms.services());
    let item = ags
        .create_line_item(&LineItem::new("Quiz", 10.0))
        .await
        .unwrap()
        .id
        .unwrap();
    let ags_target =
        |u: &str| GradeTarget::ags(lms.base.clone(), support::CLIENT_ID, item.clone(), u);
    let bo_target = |s: &str| GradeTarget::basic_outcomes(CONSUMER, outcomes.url.clone(), s);

    // 1. Both LMSs are down (500) while three versions of each grade are
    //    submitted: nothing arrives, every grade waits with the error.
    lms.scores.set(ScoreFault::Status(500));
    outcomes.set(ScoreFault::Status(500));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = worker(&store, &lms, &outcomes).spawn(async move {
        let _ = stop_rx.await;
    });
    let mut ags_ids = Vec::new();
    let mut bo_ids = Vec::new();
    for v in 1..=3 {
        for u in 0..6 {
            let user = format!("learner-{u}");
            let s = outbox
                .submit(
                    &ags_target(&user),
                    &ags_score(&user, f64::from(v), i64::from(v)),
                )
                .await
                .unwrap();
            assert_eq!(s.version, u64::try_from(v).unwrap());
            ags_ids.push(s.id);
            let s = outbox
                .submit(
                    &bo_target(&format!("src-{u}")),
                    &bo_score(f64::from(v) / 10.0),
                )
                .await
                .unwrap();
            bo_ids.push(s.id);
        }
    }
    ags_ids.dedup();
    bo_ids.sort();
    bo_ids.dedup();
    for id in ags_ids.iter().chain(&bo_ids) {
        let r = wait_for(outbox, id, "a failed attempt", |r| {
            r.last_error.as_ref().is_some_and(|e| e.status == Some(500))
        })
        .await;
        assert_eq!(r.sent_version, 0);
    }
    assert!(lms.scores.accepted().is_empty());
    assert!(outcomes.accepted().is_empty());

    // 2. Throttled: 429 with Retry-After 3 s (longer than the 2 s backoff
    //    cap), honoured for the next attempt.
    lms.scores.set(ScoreFault::Throttle(3));
    outcomes.set(ScoreFault::Throttle(3));
    for id in ags_ids.iter().chain(&bo_ids) {
        let r = wait_for(outbox, id, "a throttled attempt", |r| {
            r.last_error.as_ref().is_some_and(|e| e.status == Some(429))
                && r.status == GradeStatus::Pending
        })
        .await;
        assert_eq!(
            r.next_attempt_at - r.updated_at,
            3,
            "Retry-After decides the next attempt"
        );
        assert_eq!(
            r.last_error.as_ref().unwrap().code,
            if r.target.kind() == lti_registry::GradeKind::Ags {
                "platform_error"
            } else {
                "outcome_http_status"
            }
        );
    }

    // 3. Recovered: every grade's latest version arrives, exactly once, and
    //    no older version arrives at all (they were superseded unsent).
    lms.scores.set(ScoreFault::None);
    outcomes.set(ScoreFault::None);
    for id in ags_ids.iter().chain(&bo_ids) {
        let r = wait_for(outbox, id, "delivery", |r| r.status == GradeStatus::Sent).await;
        assert_eq!((r.version, r.sent_version), (3, 3));
        assert_eq!(r.last_error, None);
    }
    let ags_arrived = by_learner(&lms.scores.accepted());
    assert_eq!(ags_arrived.len(), 6);
    assert!(ags_arrived.values().all(|v| v == &[3.0]), "{ags_arrived:?}");
    let bo_arrived = by_learner(&outcomes.accepted());
    assert_eq!(bo_arrived.len(), 6);
    assert!(bo_arrived.values().all(|v| v == &[0.3]), "{bo_arrived:?}");
    let grade_book = lms.grade_book.results_of(item.rsplit('/').next().unwrap());
    assert_eq!(grade_book.len(), 6);
    assert!(grade_book.iter().all(|r| r.score.score_given == Some(3.0)));

    // 4. A newer version submitted while the older one is in flight (a slow
    //    LMS) is sent after it, never before: the LMS ends with the newer.
    lms.scores.set(ScoreFault::Delay(700));
    outcomes.set(ScoreFault::Delay(700));
    let a = outbox
        .submit(&ags_target("learner-0"), &ags_score("learner-0", 4.0, 4))
        .await
        .unwrap();
    let b = outbox
        .submit(&bo_target("src-0"), &bo_score(0.4))
        .await
        .unwrap();
    for id in [&a.id, &b.id] {
        wait_for(outbox, id, "the slow attempt", |r| {
            matches!(r.status, GradeStatus::InFlight { .. })
        })
        .await;
    }
    outbox
        .submit(&ags_target("learner-0"), &ags_score("learner-0", 5.0, 5))
        .await
        .unwrap();
    outbox
        .submit(&bo_target("src-0"), &bo_score(0.5))
        .await
        .unwrap();
    for id in [&a.id, &b.id] {
        let r = wait_for(outbox, id, "the newer version", |r| {
            r.status == GradeStatus::Sent && r.version == 5
        })
        .await;
        assert_eq!(r.sent_version, 5);
    }
    assert_eq!(
        by_learner(&lms.scores.accepted())["learner-0"],
        [3.0, 4.0, 5.0]
    );
    assert_eq!(by_learner(&outcomes.accepted())["src-0"], [0.3, 0.4, 0.5]);

    // 5. A definitive refusal: 400 (AGS) and a POX failure (1.1) mark the
    //    grade failed with the LMS's reason; nothing is retried.
    lms.scores.set(ScoreFault::RejectUser("learner-9".into()));
    outcomes.set(ScoreFault::RejectUser("src-9".into()));
    let a = outbox
        .submit(&ags_target("learner-9"), &ags_score("learner-9", 1.0, 1))
        .await
        .unwrap();
    let b = outbox
        .submit(&bo_target("src-9"), &bo_score(0.9))
        .await
        .unwrap();
    let r = wait_for(outbox, &a.id, "the refusal", |r| {
        r.status == GradeStatus::Failed
    })
    .await;
    let e = r.last_error.unwrap();
    assert_eq!((e.code.as_str(), e.status), ("platform_error", Some(400)));
    assert!(
        e.message.contains("Incorrect score received"),
        "{}",
        e.message
    );
    let r = wait_for(outbox, &b.id, "the refusal", |r| {
        r.status == GradeStatus::Failed
    })
    .await;
    let e = r.last_error.unwrap();
    assert_eq!(e.code, "outcome_rejected");
    assert!(
        e.message.contains("unknown lis_result_sourcedid"),
        "{}",
        e.message
    );
    let attempts = lms.scores.attempts.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        lms.scores.attempts.load(Ordering::SeqCst),
        attempts,
        "a failed grade is not retried"
    );
    let counts = outbox.status_counts().await.unwrap();
    assert_eq!(
        (counts.sent, counts.failed, counts.pending, counts.in_flight),
        (12, 2, 0, 0)
    );

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the worker stops on shutdown")
        .unwrap();
    backend.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_outbox_delivers_every_latest_grade_once() {
    grades_survive_failures_throttling_and_refusals("memory").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_outbox_delivers_every_latest_grade_once() {
    grades_survive_failures_throttling_and_refusals("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_outbox_delivers_every_latest_grade_once() {
    grades_survive_failures_throttling_and_refusals("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outbox_delivers_every_latest_grade_once() {
    grades_survive_failures_throttling_and_refusals("redis").await;
}

/// Two workers (two instances) on one store with a slow LMS: each grade is
/// sent once, never by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_on_one_sqlite_file_send_each_grade_once() {
    let Some(backend) = Backend::open("sqlite").await else {
        return;
    };
    let Cleanup::File(path) = &backend.cleanup else {
        unreachable!()
    };
    let second = lti_store::open(&format!("sqlite://{}", path.display()), &Backend::options())
        .await
        .unwrap();
    let lms = TestPlatform::start(Options::default()).await;
    let outcomes = OutcomesLms::start().await;
    let ags = lms.ags(&lms.services());
    let item = ags
        .create_line_item(&LineItem::new("Quiz", 10.0))
        .await
        .unwrap()
        .id
        .unwrap();
    lms.scores.set(ScoreFault::Delay(20));
    let mut ids = Vec::new();
    for u in 0..30 {
        let user = format!("learner-{u}");
        let target = GradeTarget::ags(lms.base.clone(), support::CLIENT_ID, item.clone(), &user);
        ids.push(
            backend
                .store
                .outbox
                .submit(&target, &ags_score(&user, 7.0, 7))
                .await
                .unwrap()
                .id,
        );
    }
    let (tx1, rx1) = tokio::sync::oneshot::channel::<()>();
    let (tx2, rx2) = tokio::sync::oneshot::channel::<()>();
    let one = worker(&backend.store, &lms, &outcomes).spawn(async move {
        let _ = rx1.await;
    });
    let two = worker(&second, &lms, &outcomes).spawn(async move {
        let _ = rx2.await;
    });
    for id in &ids {
        wait_for(backend.store.outbox.as_ref(), id, "delivery", |r| {
            r.status == GradeStatus::Sent
        })
        .await;
    }
    let arrived = by_learner(&lms.scores.accepted());
    assert_eq!(arrived.len(), 30);
    assert!(arrived.values().all(|v| v == &[7.0]), "{arrived:?}");
    tx1.send(()).unwrap();
    tx2.send(()).unwrap();
    one.await.unwrap();
    two.await.unwrap();
    backend.cleanup().await;
}
