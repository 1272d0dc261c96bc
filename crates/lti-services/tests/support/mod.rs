//! An in-process LMS on loopback for the lti-services tests and bench:
//! `lti-platform`'s token endpoint (verifies our client assertions) and its
//! AGS/NRPS endpoints (memory grade book and roster, real paging, bearer and
//! media-type checks), mounted on a hyper server, with request counters, a
//! request log and two Moodle behaviours on the context `moodle-course`.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lti_http::{HyperClient, ServiceClient};
use lti_jose::{Algorithm, JwkSet, SigningKey};
use lti_message::ags::{AgsEndpointClaim, LineItem, scope};
use lti_message::nrps::{MembershipContext, NrpsClaim, SCOPE_CONTEXT_MEMBERSHIP_READONLY};
use lti_platform::services::{GradeBook, ItemOwner, MemoryGradeBook, MemoryRoster};
use lti_platform::{
    MemoryToolRegistry, Platform, PlatformConfig, PlatformKeys, PlatformSecret, SubjectPolicy,
    ToolKeys, ToolRegistration,
};
use lti_services::{AgsClient, LtiServices, QuirkProfile, ServiceRegistration};
use tokio::net::TcpListener;

pub const TOOL_PEM: &str = include_str!("../../../../tests/fixtures/lti-services/tool.pem");
pub const PLATFORM_PEM: &str = include_str!("../../../../tests/fixtures/lti-services/platform.pem");
pub const CLIENT_ID: &str = "services-tool";
pub const CONTEXT: &str = "course-1";
/// Requests to this context must carry `type_id=7`, and scores for
/// [`UNGRADABLE`] get Moodle's plain-text 400.
pub const MOODLE_CONTEXT: &str = "moodle-course";
pub const MOODLE_TYPE_ID: &str = "type_id=7";
pub const UNGRADABLE: &str = "teacher-who-cannot-be-graded";

pub const ALL_AGS: [&str; 4] = [
    scope::LINE_ITEM,
    scope::LINE_ITEM_READONLY,
    scope::RESULT_READONLY,
    scope::SCORE,
];

pub fn tool_key() -> Arc<SigningKey> {
    Arc::new(
        SigningKey::from_pem(TOOL_PEM, Algorithm::RS256)
            .unwrap()
            .with_kid("tool-1"),
    )
}

/// How the loopback platform behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Largest page the platform serves (its default page is the same or less).
    pub max_page_size: usize,
    /// Before the next line item create with this resourceId, another
    /// "process" creates one first (directly in the grade book).
    pub race_resource_id: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_page_size: 1000,
            race_resource_id: None,
        }
    }
}

/// How the platform answers score posts (`POST …/scores`), switched by a
/// test at any time: the LMS failing, throttling and recovering on command.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ScoreFault {
    /// Scores go to the grade book.
    #[default]
    None,
    /// Every score is answered with this status (nothing stored).
    Status(u16),
    /// `429 Too Many Requests` with `Retry-After: N` (nothing stored).
    Throttle(u64),
    /// Scores for this user get a definitive `400` with a message.
    RejectUser(String),
    /// Scores are stored after this many milliseconds (a slow LMS).
    Delay(u64),
}

/// The score fault switch and every score the platform accepted, in order.
#[derive(Default)]
pub struct ScoreLog {
    pub fault: Mutex<ScoreFault>,
    /// `(userId, scoreGiven)` of each stored score.
    pub accepted: Mutex<Vec<(String, f64)>>,
    /// Score posts answered, whatever the answer.
    pub attempts: AtomicUsize,
}

impl ScoreLog {
    pub fn set(&self, fault: ScoreFault) {
        *self.fault.lock().unwrap() = fault;
    }

    pub fn accepted(&self) -> Vec<(String, f64)> {
        self.accepted.lock().unwrap().clone()
    }
}

#[derive(Default)]
pub struct Counters {
    pub token_requests: AtomicUsize,
    pub service_requests: AtomicUsize,
}

pub struct TestPlatform {
    pub base: String,
    pub platform: Arc<Platform>,
    pub grade_book: Arc<MemoryGradeBook>,
    pub roster: Arc<MemoryRoster>,
    pub counters: Arc<Counters>,
    /// `METHOD path?query` of every service request, in arrival order.
    pub log: Arc<Mutex<Vec<String>>>,
    pub tool_key: Arc<SigningKey>,
    race: Arc<Mutex<Option<String>>>,
    pub scores: Arc<ScoreLog>,
}

impl TestPlatform {
    pub async fn start(options: Options) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut config = PlatformConfig::new(base.clone());
        config.default_page_size = options.max_page_size.min(100);
        config.max_page_size = options.max_page_size;
        let tool_key = tool_key();
        let registry = Arc::new(MemoryToolRegistry::new());
        registry
            .register(
                ToolRegistration::new(
                    CLIENT_ID,
                    "https://tool.example/login",
                    "https://tool.example/launch",
                    ToolKeys::Static(JwkSet {
                        keys: vec![tool_key.public_jwk()],
                    }),
                )
                .with_deployment("dep-1")
                .with_subject_policy(SubjectPolicy::RealUserId)
                .with_scope(scope::LINE_ITEM)
                .with_scope(scope::LINE_ITEM_READONLY)
                .with_scope(scope::RESULT_READONLY)
                .with_scope(scope::SCORE)
                .with_scope(SCOPE_CONTEXT_MEMBERSHIP_READONLY),
            )
            .unwrap();
        let grade_book = Arc::new(MemoryGradeBook::new());
        let roster = Arc::new(MemoryRoster::new());
        let platform_key = SigningKey::from_pem(PLATFORM_PEM, Algorithm::RS256).unwrap();
        let platform = Arc::new(
            Platform::new(
                config,
                Arc::new(PlatformKeys::new(platform_key)),
                PlatformSecret::generate().unwrap(),
                registry,
                Arc::new(JwkSet::default()),
            )
            .unwrap()
            .with_grade_book(grade_book.clone())
            .with_roster(roster.clone()),
        );
        // The test tool is placed in the contexts the tests use, as after a launch there.
        for context in [CONTEXT, MOODLE_CONTEXT, "no-such-course"] {
            platform.grant_context(CLIENT_ID, context).await.unwrap();
        }
        let me = Self {
            base,
            platform,
            grade_book,
            roster,
            counters: Arc::new(Counters::default()),
            log: Arc::new(Mutex::new(Vec::new())),
            tool_key,
            race: Arc::new(Mutex::new(options.race_resource_id)),
            scores: Arc::new(ScoreLog::default()),
        };
        let state = me.shared();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        me
    }

    fn shared(&self) -> Shared {
        Shared {
            platform: self.platform.clone(),
            grade_book: self.grade_book.clone(),
            counters: self.counters.clone(),
            log: self.log.clone(),
            race: self.race.clone(),
            scores: self.scores.clone(),
        }
    }

    pub fn token_url(&self) -> String {
        format!("{}/token", self.base)
    }

    pub fn registration(&self) -> ServiceRegistration {
        ServiceRegistration::new(
            self.base.clone(),
            CLIENT_ID,
            self.token_url(),
            self.tool_key.clone(),
        )
    }

    pub fn canvas_registration(&self) -> ServiceRegistration {
        self.registration().with_profile(QuirkProfile::Canvas)
    }

    pub fn services(&self) -> LtiServices {
        // The stand-in LMS is on loopback: the tests opt in to private addresses.
        LtiServices::new(Arc::new(ServiceClient::new(Arc::new(
            HyperClient::builder()
                .allow_private_addresses()
                .build()
                .unwrap(),
        ))))
    }

    /// An AGS client for [`CONTEXT`] with every AGS scope and no launch line item.
    pub fn ags(&self, services: &LtiServices) -> AgsClient {
        services
            .ags(
                &self.registration(),
                &self.ags_claim(CONTEXT, &ALL_AGS, None),
            )
            .unwrap()
    }

    /// An AGS claim for `context` granting `scopes`, bound to `lineitem`.
    pub fn ags_claim(
        &self,
        context: &str,
        scopes: &[&str],
        lineitem: Option<String>,
    ) -> AgsEndpointClaim {
        AgsEndpointClaim {
            scope: scopes.iter().map(|s| (*s).to_owned()).collect(),
            lineitems: Some(self.platform.line_items_url(context)),
            lineitem,
            ..AgsEndpointClaim::default()
        }
    }

    pub fn nrps_claim(&self, context: &str) -> NrpsClaim {
        NrpsClaim {
            context_memberships_url: Some(self.platform.memberships_url(context)),
            service_versions: vec!["2.0".to_owned()],
            ..NrpsClaim::default()
        }
    }

    pub fn add_context(&self, context: &str) {
        self.roster.add_context(MembershipContext {
            id: context.to_owned(),
            label: Some("C1".to_owned()),
            title: Some("Course One".to_owned()),
        });
    }

    /// Line items of `context` owned by the test tool.
    pub fn line_items(&self, context: &str) -> Vec<LineItem> {
        self.grade_book
            .line_items_in_context(context)
            .into_iter()
            .map(|r| r.line_item)
            .collect()
    }

    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn token_requests(&self) -> usize {
        self.counters.token_requests.load(Ordering::SeqCst)
    }

    pub fn service_requests(&self) -> usize {
        self.counters.service_requests.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Shared {
    platform: Arc<Platform>,
    grade_book: Arc<MemoryGradeBook>,
    counters: Arc<Counters>,
    log: Arc<Mutex<Vec<String>>>,
    race: Arc<Mutex<Option<String>>>,
    scores: Arc<ScoreLog>,
}

fn plain(status: StatusCode, body: &'static str) -> Response<Bytes> {
    let mut resp = Response::new(Bytes::from_static(body.as_bytes()));
    *resp.status_mut() = status;
    resp
}

async fn handle(
    state: Shared,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let req = Request::from_parts(parts, body);
    let resp = route(&state, req).await;
    let (parts, body) = resp.into_parts();
    Ok(Response::from_parts(parts, Full::new(body)))
}

async fn route(state: &Shared, req: Request<Bytes>) -> Response<Bytes> {
    let path = req.uri().path().to_owned();
    if path == "/token" {
        state.counters.token_requests.fetch_add(1, Ordering::SeqCst);
        return state.platform.token_endpoint(&req).await;
    }
    if !path.starts_with("/lti/") {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    state
        .counters
        .service_requests
        .fetch_add(1, Ordering::SeqCst);
    let query = req.uri().query().unwrap_or_default().to_owned();
    state
        .log
        .lock()
        .unwrap()
        .push(format!("{} {}?{}", req.method(), path, query));
    if path.starts_with(&format!("/lti/{MOODLE_CONTEXT}/")) {
        // Moodle addresses line items with a `type_id` query parameter.
        if !query.split('&').any(|p| p == MOODLE_TYPE_ID) {
            return plain(StatusCode::BAD_REQUEST, "No type_id in the line item URL");
        }
        if path.ends_with("/scores")
            && req
                .body()
                .windows(UNGRADABLE.len())
                .any(|w| w == UNGRADABLE.as_bytes())
        {
            return plain(StatusCode::BAD_REQUEST, "Incorrect score received");
        }
    }
    if req.method() == http::Method::POST && path.ends_with("/lineitems") {
        let racer = state.race.lock().unwrap().take();
        if let Some(resource_id) = racer {
            let context = path
                .trim_start_matches("/lti/")
                .trim_end_matches("/lineitems");
            let mut item = LineItem::new("created by another process", 10.0);
            item.resource_id = Some(resource_id);
            state
                .grade_book
                .create_line_item(&ItemOwner::new(context, CLIENT_ID), item)
                .await
                .unwrap();
        }
    }
    if req.method() == http::Method::POST && path.ends_with("/scores") {
        return score(state, req).await;
    }
    state.platform.services_endpoint(&req).await
}

/// A score post through the fault switch; stored ones are logged.
async fn score(state: &Shared, req: Request<Bytes>) -> Response<Bytes> {
    state.scores.attempts.fetch_add(1, Ordering::SeqCst);
    let body: serde_json::Value = serde_json::from_slice(req.body()).unwrap_or_default();
    let user = body["userId"].as_str().unwrap_or_default().to_owned();
    let fault = state.scores.fault.lock().unwrap().clone();
    match fault {
        ScoreFault::Status(s) => {
            return plain(StatusCode::from_u16(s).unwrap(), "the LMS is down");
        }
        ScoreFault::Throttle(secs) => {
            let mut resp = plain(StatusCode::TOO_MANY_REQUESTS, "slow down");
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_str(&secs.to_string()).unwrap(),
            );
            return resp;
        }
        ScoreFault::RejectUser(u) if u == user => {
            return plain(StatusCode::BAD_REQUEST, "Incorrect score received");
        }
        ScoreFault::Delay(ms) => tokio::time::sleep(std::time::Duration::from_millis(ms)).await,
        _ => {}
    }
    let resp = state.platform.services_endpoint(&req).await;
    if resp.status().is_success() {
        let given = body["scoreGiven"].as_f64().unwrap_or(f64::NAN);
        state.scores.accepted.lock().unwrap().push((user, given));
    }
    resp
}
