#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Basic Outcomes between our tool side (OutcomesClient, ScoreQueue) and our
//! consumer side (OutcomesReceiver) over loopback HTTP, plus hostile XML.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::{KEY, SECRET, memory_store};
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use lti_http::{EgressPolicy, HttpClient, HyperClient};
use lti_registry::SystemClock;
use lti11::oauth::{self, OAuthParams};
use lti11::outcomes::{GradeBook, GradeBookError, ScoreQueue, ScoreUpdate, Submitted};
use lti11::{
    CodeMajor, Credentials, OAuthVerifier, OutcomeResponse, OutcomeTarget, OutcomesClient,
    OutcomesReceiver, ResultData, Score, SignedRequest,
};
use tokio::net::TcpListener;

/// The LMS grade book: known sourcedids per tool key, current scores, and the
/// history of replaceResult scores in arrival order.
#[derive(Default)]
struct Book {
    scores: Mutex<HashMap<String, Option<Score>>>,
    history: Mutex<Vec<f64>>,
    slow: bool,
}

impl Book {
    fn with(sourced_ids: &[&str], slow: bool) -> Arc<Self> {
        let b = Book {
            slow,
            ..Default::default()
        };
        for s in sourced_ids {
            b.scores.lock().unwrap().insert(format!("{KEY}/{s}"), None);
        }
        Arc::new(b)
    }
}

#[async_trait]
impl GradeBook for Book {
    async fn replace_result(
        &self,
        key: &str,
        sid: &str,
        score: Score,
        _data: Option<&ResultData>,
    ) -> Result<(), GradeBookError> {
        if self.slow {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let mut scores = self.scores.lock().unwrap();
        let slot = scores
            .get_mut(&format!("{key}/{sid}"))
            .ok_or(GradeBookError::UnknownSourcedId)?;
        *slot = Some(score);
        self.history.lock().unwrap().push(score.value());
        Ok(())
    }
    async fn read_result(&self, key: &str, sid: &str) -> Result<Option<Score>, GradeBookError> {
        self.scores
            .lock()
            .unwrap()
            .get(&format!("{key}/{sid}"))
            .copied()
            .ok_or(GradeBookError::UnknownSourcedId)
    }
    async fn delete_result(&self, key: &str, sid: &str) -> Result<(), GradeBookError> {
        let mut scores = self.scores.lock().unwrap();
        let slot = scores
            .get_mut(&format!("{key}/{sid}"))
            .ok_or(GradeBookError::UnknownSourcedId)?;
        *slot = None;
        Ok(())
    }
}

/// Serves an OutcomesReceiver on 127.0.0.1:0; returns the service URL.
async fn serve(book: Arc<Book>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let store = memory_store(Arc::new(SystemClock), &[(KEY, SECRET)]);
    let receiver = Arc::new(OutcomesReceiver::new(
        OAuthVerifier::new(store.clone(), store),
        book,
    ));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let receiver = receiver.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let receiver = receiver.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let url = format!("http://127.0.0.1:{port}{}", parts.uri);
                        let auth = parts
                            .headers
                            .get(header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok());
                        let ct = parts
                            .headers
                            .get(header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok());
                        let signed = SignedRequest {
                            method: parts.method.as_str(),
                            url: &url,
                            authorization: auth,
                            content_type: ct,
                            body: &body,
                        };
                        let answer = receiver.handle(&signed).await;
                        Ok::<_, Infallible>(answer.response.map(Full::new))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/lti11/outcomes?tool=quiz")
}

/// The stand-in consumer is on loopback: the tests opt in to private addresses.
fn http_client() -> HyperClient {
    HyperClient::builder()
        .timeout(Duration::from_secs(20))
        .allow_private_addresses()
        .build()
        .unwrap()
}

/// A client that may send to the origin of `service_url`.
fn client_for(service_url: &str) -> OutcomesClient<HyperClient> {
    OutcomesClient::new(http_client())
        .with_egress_policy(EgressPolicy::new().allow_origin(service_url).unwrap())
}

fn target(url: &str, sid: &str) -> OutcomeTarget {
    OutcomeTarget {
        service_url: url.to_owned(),
        sourced_id: sid.to_owned(),
    }
}

#[tokio::test]
async fn replace_read_delete_round_trip_over_loopback() {
    let book = Book::with(&["sid-1"], false);
    let url = serve(book.clone()).await;
    let client = client_for(&url);
    let creds = Credentials::new(KEY, SECRET);
    let t = target(&url, "sid-1");
    assert_eq!(client.read_result(&t, &creds).await.unwrap(), None);
    client
        .replace_result(
            &t,
            &creds,
            Score::new(0.85).unwrap(),
            Some(ResultData::Text("well done".into())),
        )
        .await
        .unwrap();
    assert_eq!(
        client.read_result(&t, &creds).await.unwrap(),
        Some(Score::new(0.85).unwrap())
    );
    client.delete_result(&t, &creds).await.unwrap();
    assert_eq!(client.read_result(&t, &creds).await.unwrap(), None);
}

#[tokio::test]
async fn unknown_sourcedid_is_a_failure_envelope() {
    let url = serve(Book::with(&["sid-1"], false)).await;
    let client = client_for(&url);
    let err = client
        .replace_result(
            &target(&url, "nope"),
            &Credentials::new(KEY, SECRET),
            Score::new(1.0).unwrap(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, lti11::Error::OutcomeRejected { code_major, .. } if code_major == "failure"),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_secret_is_answered_with_401() {
    let url = serve(Book::with(&["sid-1"], false)).await;
    let client = client_for(&url);
    let err = client
        .read_result(&target(&url, "sid-1"), &Credentials::new(KEY, "wrong"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, lti11::Error::OutcomeHttpStatus { status: 401 }),
        "{err:?}"
    );
}

/// Sends `body` correctly signed (body hash and all) and returns status + parsed envelope.
async fn send_raw(url: &str, body: Vec<u8>) -> (StatusCode, OutcomeResponse) {
    let mut p = OAuthParams::new(u64::try_from(lti_registry::Clock::now(&SystemClock)).unwrap());
    p.body_hash = Some(oauth::body_hash(&body));
    let none: [(&str, &str); 0] = [];
    let protocol =
        oauth::sign_params("POST", url, &none, &Credentials::new(KEY, SECRET), &p).unwrap();
    let req = Request::post(url)
        .header(header::CONTENT_TYPE, "application/xml")
        .header(
            header::AUTHORIZATION,
            oauth::authorization_header(&protocol),
        )
        .body(Bytes::from(body))
        .unwrap();
    let resp = http_client().send(req).await.unwrap();
    let status = resp.status();
    (status, OutcomeResponse::parse(resp.body()).unwrap())
}

#[tokio::test]
async fn hostile_xml_is_rejected() {
    let url = serve(Book::with(&["sid-1"], false)).await;
    let doctype = br#"<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><imsx_POXEnvelopeRequest><imsx_POXBody><readResultRequest><resultRecord><sourcedGUID><sourcedId>&xxe;</sourcedId></sourcedGUID></resultRecord></readResultRequest></imsx_POXBody></imsx_POXEnvelopeRequest>"#;
    let (status, env) = send_raw(&url, doctype.to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(env.code_major, CodeMajor::Failure);
    assert!(
        env.description.contains("forbidden XML construct"),
        "{}",
        env.description
    );

    let mut laughs =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        laughs.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    laughs.push_str("]>\n<lolz>&lol9;</lolz>");
    let (status, env) = send_raw(&url, laughs.into_bytes()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(env.description.contains("forbidden XML construct"));

    let huge = vec![b'<'; 10 * 1024 * 1024];
    let (status, env) = send_raw(&url, huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(env.description.contains("body too large"));
}

#[tokio::test]
async fn unknown_operation_is_answered_unsupported_with_the_message_reference() {
    let url = serve(Book::with(&["sid-1"], false)).await;
    let body = format!(
        "<imsx_POXEnvelopeRequest xmlns=\"{}\"><imsx_POXHeader><imsx_POXRequestHeaderInfo><imsx_version>V1.0</imsx_version><imsx_messageIdentifier>req-77</imsx_messageIdentifier></imsx_POXRequestHeaderInfo></imsx_POXHeader><imsx_POXBody><readMembershipRequest/></imsx_POXBody></imsx_POXEnvelopeRequest>",
        lti11::pox::POX_NAMESPACE
    );
    let (status, env) = send_raw(&url, body.into_bytes()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(env.code_major, CodeMajor::Unsupported);
    assert_eq!(env.message_ref_identifier.as_deref(), Some("req-77"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn score_queue_never_lets_an_older_score_overwrite_a_newer_one() {
    let book = Book::with(&["sid-q"], true);
    let url = serve(book.clone()).await;
    let client = Arc::new(client_for(&url));
    let queue: Arc<ScoreQueue<String>> = Arc::new(ScoreQueue::new());
    let creds = Credentials::new(KEY, SECRET);
    let t = target(&url, "sid-q");

    let mut tasks = Vec::new();
    for i in 0..64u32 {
        let (client, queue, creds, t) = (client.clone(), queue.clone(), creds.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(u64::from(i % 7))).await;
            let score = Score::new(f64::from(i + 1) / 100.0).unwrap();
            let update = ScoreUpdate::Replace {
                score,
                result_data: None,
            };
            let submitted = queue
                .submit(&"sid-q".to_owned(), update, |u| {
                    let (client, creds, t) = (client.clone(), creds.clone(), t.clone());
                    async move { client.send(&t, &creds, u.operation()).await.map(drop) }
                })
                .await
                .unwrap();
            let version = match submitted {
                Submitted::Sent { version, .. } | Submitted::HandedOff { version } => version,
            };
            (version, score.value())
        }));
    }
    let mut by_version = HashMap::new();
    for t in tasks {
        let (v, s) = t.await.unwrap();
        by_version.insert(v, s);
    }
    assert_eq!(by_version.len(), 64, "every submission got its own version");
    let (latest, sent) = queue.versions(&"sid-q".to_owned());
    assert_eq!((latest, sent), (64, 64));
    let final_score = client
        .read_result(&t, &creds)
        .await
        .unwrap()
        .unwrap()
        .value();
    assert_eq!(
        final_score, by_version[&64],
        "the LMS holds the newest score"
    );

    let version_of: HashMap<u64, u64> = by_version.iter().map(|(v, s)| (s.to_bits(), *v)).collect();
    let history = book.history.lock().unwrap().clone();
    let versions: Vec<u64> = history.iter().map(|s| version_of[&s.to_bits()]).collect();
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "sends in version order: {versions:?}"
    );
    assert!(
        history.len() < 64,
        "intermediate versions were skipped ({} sends)",
        history.len()
    );
}

#[tokio::test]
async fn failed_send_keeps_the_score_pending_for_resend() {
    let queue: ScoreQueue<&str> = ScoreQueue::new();
    let update = ScoreUpdate::Replace {
        score: Score::new(0.5).unwrap(),
        result_data: None,
    };
    let err = queue
        .submit(&"a", update, |_| async {
            Err(lti11::Error::Transport {
                message: "connection refused".into(),
            })
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "transport_failure");
    assert_eq!(queue.versions(&"a"), (1, 0));
    let sent = queue.resend(&"a", |_| async { Ok(()) }).await.unwrap();
    assert_eq!(
        sent,
        Submitted::Sent {
            version: 1,
            delivered: 1
        }
    );
    assert_eq!(
        queue
            .resend(&"b", |_| async { Ok(()) })
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
}

#[tokio::test]
async fn full_flow_consumer_launch_to_provider_grade_pass_back() {
    // LMS side: grade book + outcomes receiver on loopback.
    let book = Book::with(&["sid-flow"], false);
    let service_url = serve(book.clone()).await;

    // LMS signs a launch that allows grade pass-back.
    let launch_url = "https://tool.example.com/lti/launch";
    let now = u64::try_from(lti_registry::Clock::now(&SystemClock)).unwrap();
    let signed = lti11::LaunchRequest::new("rl-flow")
        .param("user_id", "learner-1")
        .context("ctx-flow", "Flow 101")
        .outcomes(service_url.clone(), "sid-flow")
        .sign(launch_url, &Credentials::new(KEY, SECRET), now)
        .unwrap();

    // Tool side: verify, record the graded assignment, send a score back.
    let store = memory_store(Arc::new(SystemClock), &[(KEY, SECRET)]);
    let verifier = lti11::LaunchVerifier::new(OAuthVerifier::new(store.clone(), store));
    let body = signed.form_body();
    let launch = verifier
        .verify(&SignedRequest::form_post(launch_url, body.as_bytes()))
        .await
        .unwrap();
    let model = lti11::ProviderModel::new(lti_store::MemoryProviderStore::new());
    let record = model.record_launch(&launch, "session-1").await.unwrap();
    let assignment = record.assignment.expect("graded launch");
    let client = client_for(&service_url);
    client
        .replace_result(
            &OutcomeTarget::from(&assignment),
            &Credentials::from(launch.consumer()),
            Score::new(0.6).unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(book.history.lock().unwrap().as_slice(), &[0.6]);
}

#[tokio::test]
async fn outcome_urls_off_the_allowed_origins_are_refused_before_anything_is_sent() {
    let book = Book::with(&["sid-1"], false);
    let url = serve(book.clone()).await;
    let creds = Credentials::new(KEY, SECRET);
    let score = || Score::new(0.9).unwrap();
    // No origin listed: nothing is sent.
    let unlisted = OutcomesClient::new(http_client());
    let err = unlisted
        .replace_result(&target(&url, "sid-1"), &creds, score(), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "egress_refused", "{err:?}");
    assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
    assert!(
        err.to_string()
            .contains("an origin in the egress allow-list (none is configured)"),
        "{err}"
    );
    // Another origin than the listed one (the same server as `localhost`).
    let listed = client_for("https://lms.example");
    let foreign = url.replacen("127.0.0.1", "localhost", 1);
    let err = listed
        .replace_result(&target(&foreign, "sid-1"), &creds, score(), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "egress_refused", "{err:?}");
    assert!(
        err.to_string()
            .contains("expected a URL on one of the origins https://lms.example"),
        "{err}"
    );
    // A listed origin on loopback without the private-address opt-in.
    let no_private = OutcomesClient::new(HyperClient::new().unwrap())
        .with_egress_policy(EgressPolicy::new().allow_origin(&url).unwrap());
    let err = no_private
        .replace_result(&target(&url, "sid-1"), &creds, score(), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "private_address_refused", "{err:?}");
    assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
    assert!(book.history.lock().unwrap().is_empty());
    // The allow-list admits the configured origin.
    client_for(&url)
        .replace_result(&target(&url, "sid-1"), &creds, score(), None)
        .await
        .unwrap();
    assert_eq!(book.history.lock().unwrap().as_slice(), &[0.9]);
}
