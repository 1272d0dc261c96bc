//! The address rule of the egress policy over real connections: the default
//! `HyperClient` refuses hosts that resolve to (or are) non-public addresses
//! before connecting; `allow_private_addresses()` lets them through.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::{TestServer, response};
use lti_http::{Error, HttpClient, HyperClient, Resolve, RetryPolicy, send_with_retry};

fn get(url: &str) -> http::Request<Bytes> {
    http::Request::get(url).body(Bytes::new()).unwrap()
}

/// Answers from a fixed table, so names "resolve" without the network.
struct Table(HashMap<&'static str, Vec<IpAddr>>);

#[async_trait::async_trait]
impl Resolve for Table {
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        self.0
            .get(host)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown name"))
    }
}

fn table() -> Arc<Table> {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    Arc::new(Table(HashMap::from([
        ("lms.test", vec![ip("127.0.0.1")]),
        ("ten.test", vec![ip("10.0.0.7")]),
        ("metadata.test", vec![ip("169.254.169.254")]),
        ("six.test", vec![ip("::1")]),
        ("ula.test", vec![ip("fc00::1")]),
        ("mapped.test", vec![ip("::ffff:127.0.0.1")]),
        ("cgnat.test", vec![ip("100.64.1.1")]),
    ])))
}

/// Asserts a `private_address_refused` of `class`; returns its message.
fn assert_refused(result: Result<http::Response<Bytes>, Error>, class: &str) -> String {
    match result {
        Err(e @ Error::PrivateAddress { .. }) => {
            assert_eq!(e.code(), "private_address_refused");
            assert_eq!(e.status_hint(), 502);
            assert!(e.is_egress_refusal());
            let Error::PrivateAddress { class: found, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*found, class);
            e.to_string()
        }
        other => panic!("expected private_address_refused ({class}), found {other:?}"),
    }
}

#[tokio::test]
async fn names_resolving_to_internal_addresses_are_refused_before_connecting() {
    let server = TestServer::start(|_| async { response(200, "internal") }).await;
    let port = server.addr.port();
    let client = HyperClient::builder()
        .allow_insecure_http()
        .resolver(table())
        .build()
        .unwrap();
    for (host, class) in [
        ("lms.test", "loopback"),
        ("ten.test", "private"),
        ("metadata.test", "link-local"),
        ("six.test", "loopback"),
        ("ula.test", "unique-local"),
        ("mapped.test", "loopback"),
        ("cgnat.test", "shared (CGNAT)"),
    ] {
        let url = format!("http://{host}:{port}/admin");
        let message = assert_refused(client.send(get(&url)).await, class);
        for ip in ["127.0.0.1", "10.0.0.7", "169.254", "::1", "fc00", "100.64"] {
            assert!(!message.contains(ip), "the address is not shown: {message}");
        }
    }
    // The same name reaches the stand-in server once the operator allows it;
    // its connection is the first the server ever accepted.
    let allowed = HyperClient::builder()
        .allow_insecure_http()
        .allow_private_addresses()
        .resolver(table())
        .build()
        .unwrap();
    let resp = allowed
        .send(get(&format!("http://lms.test:{port}/admin")))
        .await
        .unwrap();
    assert_eq!(resp.body().as_ref(), b"internal");
    assert_eq!(server.hits("/admin"), 1);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn localhost_through_the_system_resolver_is_refused_by_default() {
    let server = TestServer::start(|_| async { response(200, "ok") }).await;
    let url = format!("http://localhost:{}/x", server.addr.port());
    assert_refused(
        HyperClient::new().unwrap().send(get(&url)).await,
        "loopback",
    );
    // Not retried either: a refusal is not a transient failure.
    let retried = send_with_retry(
        &HyperClient::new().unwrap(),
        get(&url),
        &RetryPolicy::default(),
    )
    .await;
    assert_refused(retried, "loopback");
    let ok = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap()
        .send(get(&url))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(server.hits("/x"), 1);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn ip_literals_are_refused_without_resolving() {
    let server = TestServer::start(|_| async { response(200, "ok") }).await;
    let client = HyperClient::builder()
        .allow_insecure_http()
        .build()
        .unwrap();
    let port = server.addr.port();
    for (host, class) in [
        ("127.0.0.1", "loopback"),
        ("[::1]", "loopback"),
        ("10.1.2.3", "private"),
        ("169.254.169.254", "link-local"),
        ("[fc00::1]", "unique-local"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("[ff02::1]", "multicast"),
    ] {
        let url = format!("http://{host}:{port}/latest/meta-data");
        assert_refused(client.send(get(&url)).await, class);
    }
    let https = client
        .send(get(&format!("https://127.0.0.1:{port}/x")))
        .await;
    assert_refused(https, "loopback");
    let ok = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap()
        .send(get(&server.url("/y")))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(server.connections(), 1, "no refused request connected");
}
