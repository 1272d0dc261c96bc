//! Grades survive a killed `lti serve`: the built binary queues LTI 1.1
//! grades while the consumer's outcome service is down, is killed with
//! SIGKILL with the grades pending, and a new process on the same SQLite
//! file delivers every latest grade exactly once when the service is back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::header::CONTENT_TYPE;

/// Kills the spawned server (SIGKILL) if the test ends before it does.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_serve(config: &std::path::Path, cwd: &std::path::Path) -> KillOnDrop {
    KillOnDrop(Some(
        Command::new(env!("CARGO_BIN_EXE_lti"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .current_dir(cwd)
            .env("RUST_LOG", "warn")
            .env_remove("LTI_CONFIG")
            .env_remove("LTI_BIND")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    ))
}

async fn wait_healthy(url: &str) {
    for _ in 0..600 {
        let req = http::Request::get(format!("{url}/healthz"))
            .body(Bytes::new())
            .unwrap();
        if let Ok(Ok(resp)) = tokio::time::timeout(
            Duration::from_secs(2),
            lti_http::HttpClient::send(&client(), req),
        )
        .await
            && resp.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server at {url} never answered /healthz with 200");
}

/// An outcome service that answers `down` (a status) or records each
/// `replaceResult` (sourcedid, score) and answers success.
struct Outcomes {
    url: String,
    down: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<(String, f64)>>>,
    refused: Arc<AtomicUsize>,
}

async fn start_outcomes() -> Outcomes {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let down = Arc::new(AtomicU16::new(503));
    let received = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(AtomicUsize::new(0));
    let (d, r, f) = (down.clone(), received.clone(), refused.clone());
    let router = axum::Router::new().route(
        "/outcomes",
        axum::routing::post(move |body: Bytes| {
            let (d, r, f) = (d.clone(), r.clone(), f.clone());
            async move {
                let status = d.load(Ordering::SeqCst);
                if status != 0 {
                    f.fetch_add(1, Ordering::SeqCst);
                    return (
                        http::StatusCode::from_u16(status).unwrap(),
                        [(CONTENT_TYPE, "text/plain")],
                        "down".to_owned(),
                    );
                }
                let request = lti11::OutcomeRequest::parse(&body).unwrap();
                if let lti11::Operation::ReplaceResult { score, .. } = &request.operation {
                    r.lock()
                        .unwrap()
                        .push((request.sourced_id.clone(), score.value()));
                }
                let reply =
                    lti11::OutcomeResponse::for_request(&request, lti11::CodeMajor::Success, "ok");
                (
                    http::StatusCode::OK,
                    [(CONTENT_TYPE, "application/xml")],
                    reply.to_xml(),
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Outcomes {
        url: format!("{base}/outcomes"),
        down,
        received,
        refused,
    }
}

fn action_of(tool_url: &str, page: &str, path: &str) -> String {
    let marker = format!("action=\"{path}?");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no form for {path}: {page}"));
    let action = &page[start + "action=\"".len()..];
    let action = &action[..action.find('"').unwrap()];
    format!("{tool_url}{}", action.replace("&amp;", "&"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_delivers_every_latest_grade_exactly_once_after_a_restart() {
    let platform = start_platform().await;
    let outcomes = start_outcomes().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = temp_dir("outbox-restart");
    let keys = keys_dir_with_fixture_key();
    let db = dir.join("lti.db");
    let storage = format!("sqlite://{}", db.display());
    let config = config_text(&url, &platform, &keys, &storage).replace(
        &format!("allowed_origins = [\"{}\"]", platform.base),
        &format!(
            "allowed_origins = [\"{}\", \"{}\"]",
            platform.base,
            outcomes.url.trim_end_matches("/outcomes")
        ),
    );
    let file = dir.join("lti.toml");
    std::fs::write(&file, config).unwrap();

    let mut first = spawn_serve(&file, &dir);
    wait_healthy(&url).await;

    // Five learners' results, three versions each, submitted through the
    // inspector's LTI 1.1 outcome form while the consumer is down: each
    // post answers at once.
    let launch_url = format!("{url}/lti11/launch");
    for learner in 0..5 {
        let sourced = format!("sourced-{learner}");
        let signed = lti11::LaunchRequest::new(format!("rl-{learner}"))
            .param("user_id", "teacher")
            .roles(&["Instructor"])
            .context("ctx-restart", "Restarts")
            .outcomes(outcomes.url.clone(), sourced)
            .sign(
                &launch_url,
                &lti11::Credentials::new("consumer-1", "secret-1"),
                now(),
            )
            .unwrap();
        // The launch answers 303 to the visit's resource page (issue 26's
        // provider flow), which carries the outcome form.
        let page = lti11_launch(&launch_url, signed.form_body()).await;
        assert_eq!(page.status(), 200, "{}", text(&page));
        let action = action_of(&url, &text(&page), "/lti11/outcomes");
        for version in 1..=3 {
            let started = Instant::now();
            let sent = post_form(&action, format!("score=0.{version}"), None).await;
            assert_eq!(sent.status(), 200, "{}", text(&sent));
            let body = text(&sent);
            assert!(
                body.contains(&format!("queued for the consumer (version {version})")),
                "{body}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the form answers without waiting for the consumer"
            );
        }
    }

    // Every grade was tried and refused; none is in flight: kill -9.
    let cipher =
        lti_registry::SecretCipher::aes256gcm(lti_app::app_key(&keys).unwrap(), vec![]).unwrap();
    let store = lti_store::open(&storage, &lti_store::OpenOptions::new(cipher.clone()))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let grades = store.outbox.list(50).await.unwrap();
        let tried = grades.len() == 5
            && grades.iter().all(|g| {
                g.version == 3
                    && g.last_error.as_ref().is_some_and(|e| e.status == Some(503))
                    && g.status == lti_registry::GradeStatus::Pending
            });
        if tried {
            break;
        }
        assert!(Instant::now() < deadline, "grades never tried: {grades:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let child = first.0.as_mut().unwrap();
    child.kill().unwrap(); // SIGKILL: no shutdown, no draining
    child.wait().unwrap();
    first.0 = None;
    assert!(outcomes.received.lock().unwrap().is_empty());
    assert!(outcomes.refused.load(Ordering::SeqCst) >= 5);
    let counts = store.outbox.status_counts().await.unwrap();
    assert_eq!((counts.pending, counts.sent), (5, 0));

    // The consumer is back; a new process on the same file sends them.
    outcomes.down.store(0, Ordering::SeqCst);
    let _second = spawn_serve(&file, &dir);
    wait_healthy(&url).await;
    // (A retry caught mid-flight by the kill waits out its 120 s lease.)
    let deadline = Instant::now() + Duration::from_secs(200);
    loop {
        if store.outbox.status_counts().await.unwrap().sent == 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "grades never delivered: {:?}",
            store.outbox.list(50).await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a duplicate every chance to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per_learner: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (s, v) in outcomes.received.lock().unwrap().iter() {
        per_learner.entry(s.clone()).or_default().push(*v);
    }
    assert_eq!(per_learner.len(), 5, "{per_learner:?}");
    for (learner, scores) in &per_learner {
        assert_eq!(scores, &[0.3], "{learner}: the latest grade, exactly once");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
