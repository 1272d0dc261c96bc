//! LTI 1.1 interoperability with PyPI `lti` (+ oauthlib) and npm `ims-lti`:
//! their consumer → our provider (`lti serve`'s /lti11/launch); our consumer
//! (`lti11::LaunchRequest`) → their providers; Basic Outcomes in both directions
//! (their senders → our `OutcomesReceiver`; our `OutcomesClient` → a consumer
//! endpoint built on `lti`'s OutcomeRequest/OutcomeResponse); and tampering in
//! transit rejected on both sides.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use http::header;
use lti_http::HyperClient;
use lti_registry::{Consumer, ConsumerStore, SecretCipher, SystemClock};
use lti_store::MemoryStore;
use lti11::outcomes::{GradeBook, GradeBookError};
use lti11::{
    Credentials, LaunchRequest, OAuthVerifier, OutcomeTarget, OutcomesClient, OutcomesReceiver,
    ResultData, Score, SignedRequest,
};
use serde_json::{Value, json};

use common::*;

fn peer_conf() -> Value {
    json!({"key": CONSUMER_KEY, "secret": CONSUMER_SECRET})
}

fn credentials() -> Credentials {
    Credentials::new(CONSUMER_KEY, CONSUMER_SECRET)
}

/// Our consumer's launch for `url`, with outcome parameters pointing at `outcomes`.
fn our_launch(url: &str, outcomes: Option<&str>) -> String {
    let mut req = LaunchRequest::new("rl-interop-1")
        .param("user_id", "user-42")
        .roles(&["Instructor"])
        .context("ctx-1", "Interop 101")
        .param("lis_person_name_full", "Ada Lovelace")
        .param("custom_chapter", "3/4 & more");
    if let Some(o) = outcomes {
        req = req.outcomes(o, "sourcedid-42");
    }
    req.sign(url, &credentials(), now()).unwrap().form_body()
}

/// Flips one character of a form field's value (a tampering proxy).
fn tamper(body: &str, field: &str) -> String {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| {
            let v = if k == field {
                format!("{v}X")
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    assert!(
        pairs.iter().any(|(k, _)| k == field),
        "{field} not in the body"
    );
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in &pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

fn encode(fields: &serde_json::Map<String, Value>) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        ser.append_pair(k, v.as_str().unwrap());
    }
    ser.finish()
}

#[tokio::test]
async fn pypi_lti_consumer_launches_our_provider_and_tampering_is_rejected() {
    let Some(peers) = lti_interop::peers("lti11: lti consumer -> our provider") else {
        return;
    };
    let peer = peers.spawn("lti11_peer.py", &peer_conf());
    let tool = start_tool(|_| vec![]).await;
    let launch_url = format!("{}/lti11/launch", tool.url);
    let params = json!({
        "lti_message_type": "basic-lti-launch-request", "lti_version": "LTI-1p0",
        "resource_link_id": "rl-from-python", "user_id": "py-user-1",
        "roles": "Instructor", "lis_person_name_full": "Grace Hopper",
        "context_id": "ctx-py", "custom_level": "advanced"
    });
    let sign_url = format!("{}/do/sign", peer.url());
    let sign_req = json!({"url": launch_url, "params": params});
    let sign = || post_json(&sign_url, &sign_req);
    let fields = sign().await["fields"].as_object().unwrap().clone();
    assert!(fields.contains_key("oauth_signature"));
    // The launch is recorded as a visit and answered 303 to its resource page,
    // which the browser loads with the session cookie.
    let resp = post_form(&launch_url, encode(&fields), None, false).await;
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let location = resp.headers()[http::header::LOCATION].to_str().unwrap();
    let cookie = resp.headers()[http::header::SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap();
    let resp = send(
        http::Request::get(location)
            .header(http::header::COOKIE, cookie)
            .body(Bytes::new())
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let page = text(&resp);
    assert!(
        page.contains("rl-from-python") && page.contains("Grace Hopper"),
        "{page}"
    );

    // The same signed launch again: a replay.
    let replay = post_form(&launch_url, encode(&fields), None, true).await;
    assert_eq!(replay.status(), 401);
    assert_eq!(json_error(&replay), "nonce_replayed");

    // A fresh launch from the peer, changed in transit: the signature no longer matches.
    let fields = sign().await["fields"].as_object().unwrap().clone();
    let tampered = tamper(&encode(&fields), "roles");
    let resp = post_form(&launch_url, tampered, None, true).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(json_error(&resp), "bad_signature");
}

async fn our_consumer_to(peer_url: &str) {
    let launch_url = format!("{peer_url}/launch");
    let body = our_launch(&launch_url, None);
    let resp = post_form(&launch_url, body.clone(), None, false).await;
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let v: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["resource_link_id"], "rl-interop-1");
    // The peer's nonce store rejects the replay.
    let replay = post_form(&launch_url, body, None, false).await;
    assert_eq!(replay.status(), 401, "{}", text(&replay));
    // Our launch changed in transit is rejected by the peer.
    let tampered = tamper(&our_launch(&launch_url, None), "custom_chapter");
    let resp = post_form(&launch_url, tampered, None, false).await;
    assert_eq!(resp.status(), 401, "{}", text(&resp));
    let v: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(v["valid"], false);
}

#[tokio::test]
async fn our_consumer_launches_the_pypi_lti_provider() {
    let Some(peers) = lti_interop::peers("lti11: our consumer -> lti provider") else {
        return;
    };
    let peer = peers.spawn("lti11_peer.py", &peer_conf());
    our_consumer_to(peer.url()).await;
}

#[tokio::test]
async fn our_consumer_launches_the_ims_lti_provider() {
    let Some(peers) = lti_interop::peers("lti11: our consumer -> ims-lti provider") else {
        return;
    };
    let peer = peers.spawn("ims_lti_peer.js", &peer_conf());
    our_consumer_to(peer.url()).await;
}

/// Our consumer-side grade book: scores per sourcedid.
#[derive(Default)]
struct Book(Mutex<HashMap<String, f64>>);

#[async_trait]
impl GradeBook for Book {
    async fn replace_result(
        &self,
        key: &str,
        sid: &str,
        score: Score,
        _: Option<&ResultData>,
    ) -> Result<(), GradeBookError> {
        assert_eq!(key, CONSUMER_KEY);
        self.0.lock().unwrap().insert(sid.to_owned(), score.value());
        Ok(())
    }
    async fn read_result(&self, _: &str, sid: &str) -> Result<Option<Score>, GradeBookError> {
        match self.0.lock().unwrap().get(sid) {
            Some(v) => Ok(Some(Score::new(*v).unwrap())),
            None if sid == "sourcedid-42" => Ok(None),
            None => Err(GradeBookError::UnknownSourcedId),
        }
    }
    async fn delete_result(&self, _: &str, sid: &str) -> Result<(), GradeBookError> {
        self.0.lock().unwrap().remove(sid);
        Ok(())
    }
}

/// Our outcomes receiver on a loopback port; returns its URL and the grade book.
async fn start_receiver() -> (String, Arc<Book>) {
    let store = Arc::new(MemoryStore::new(
        SecretCipher::insecure_plaintext_for_tests(),
        Arc::new(SystemClock),
    ));
    store
        .insert_consumer(&Consumer::new(
            CONSUMER_KEY,
            CONSUMER_SECRET,
            "interop tool",
            0,
        ))
        .await
        .unwrap();
    let book = Arc::new(Book::default());
    let receiver = Arc::new(OutcomesReceiver::new(
        OAuthVerifier::new(store.clone(), store),
        book.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/outcomes", listener.local_addr().unwrap());
    let public = url.clone();
    let app = axum::Router::new().route(
        "/outcomes",
        axum::routing::post(move |headers: http::HeaderMap, body: Bytes| {
            let (receiver, public) = (receiver.clone(), public.clone());
            async move {
                let text = |n: header::HeaderName| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok().map(str::to_owned))
                };
                let (auth, ct) = (text(header::AUTHORIZATION), text(header::CONTENT_TYPE));
                let req = SignedRequest {
                    method: "POST",
                    url: &public,
                    authorization: auth.as_deref(),
                    content_type: ct.as_deref(),
                    body: &body,
                };
                let answer = receiver.handle(&req).await;
                let (parts, body) = answer.response.into_parts();
                http::Response::from_parts(parts, axum::body::Body::from(body))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, book)
}

#[tokio::test]
async fn basic_outcomes_from_the_pypi_lti_provider_reach_our_receiver() {
    let Some(peers) = lti_interop::peers("lti11: lti outcomes -> our receiver") else {
        return;
    };
    let peer = peers.spawn("lti11_peer.py", &peer_conf());
    let (receiver, book) = start_receiver().await;
    let cmd = |op: &str, score: Option<&str>| json!({"url": receiver, "sourcedid": "sourcedid-42", "op": op, "score": score});
    let r = post_json(
        &format!("{}/do/outcome", peer.url()),
        &cmd("replace", Some("0.85")),
    )
    .await;
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(book.0.lock().unwrap().get("sourcedid-42"), Some(&0.85));
    let r = post_json(&format!("{}/do/outcome", peer.url()), &cmd("read", None)).await;
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["score"], "0.85");
}

#[tokio::test]
async fn basic_outcomes_from_the_ims_lti_provider_reach_our_receiver() {
    let Some(peers) = lti_interop::peers("lti11: ims-lti outcomes -> our receiver") else {
        return;
    };
    let peer = peers.spawn("ims_lti_peer.js", &peer_conf());
    let (receiver, book) = start_receiver().await;
    // Our consumer launches the peer with outcome parameters pointing at our receiver.
    let launch_url = format!("{}/launch", peer.url());
    let resp = post_form(
        &launch_url,
        our_launch(&launch_url, Some(&receiver)),
        None,
        false,
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let v: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(v["outcomes"], true, "{v}");
    let r = post_json(
        &format!("{}/do/outcome", peer.url()),
        &json!({"op": "replace", "score": 0.5}),
    )
    .await;
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(book.0.lock().unwrap().get("sourcedid-42"), Some(&0.5));
    let r = post_json(
        &format!("{}/do/outcome", peer.url()),
        &json!({"op": "read"}),
    )
    .await;
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["score"].as_f64(), Some(0.5), "{r}");
}

#[tokio::test]
async fn our_outcomes_client_grades_through_a_pypi_lti_consumer_endpoint() {
    let Some(peers) = lti_interop::peers("lti11: our outcomes -> lti consumer") else {
        return;
    };
    let peer = peers.spawn("lti11_peer.py", &peer_conf());
    // The peer consumer is on loopback: opt in to its origin and address.
    let client = OutcomesClient::new(
        HyperClient::builder()
            .allow_private_addresses()
            .build()
            .unwrap(),
    )
    .with_egress_policy(
        lti_http::EgressPolicy::new()
            .allow_origin(peer.url())
            .unwrap(),
    );
    let target = OutcomeTarget {
        service_url: format!("{}/outcomes", peer.url()),
        sourced_id: "sid-rust-1".into(),
    };
    client
        .replace_result(&target, &credentials(), Score::new(0.75).unwrap(), None)
        .await
        .unwrap();
    let scores: Value =
        serde_json::from_slice(get(&format!("{}/scores", peer.url())).await.body()).unwrap();
    assert_eq!(scores["sid-rust-1"], "0.75");
    let read = client.read_result(&target, &credentials()).await.unwrap();
    assert_eq!(read.map(Score::value), Some(0.75));

    // Wrong secret: the peer refuses (HTTP 401), which we report as such.
    let err = client
        .replace_result(
            &target,
            &Credentials::new(CONSUMER_KEY, "wrong"),
            Score::new(0.1).unwrap(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "outcome_http_status");
    let scores: Value =
        serde_json::from_slice(get(&format!("{}/scores", peer.url())).await.body()).unwrap();
    assert_eq!(
        scores["sid-rust-1"], "0.75",
        "the forged score was not stored"
    );
}
