//! What reaches the logs: spans and events carry the redacted URL, status,
//! latency and cache outcome, never tokens, assertions or bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::{TestServer, response};
use lti_http::{HttpClient, HyperClient, ServiceClient, TokenEndpointConfig};
use lti_jose::{Algorithm, SigningKey};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

const TOOL_KEY: &str = include_str!("../../../tests/fixtures/lti-http/tool-key.pem");

/// A subscriber that writes every span and event field into one string.
#[derive(Clone, Default)]
struct Capture {
    out: Arc<Mutex<String>>,
    next_id: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut out = self.out.lock().unwrap();
        let _ = write!(out, "\nspan {}:", span.metadata().name());
        span.record(&mut Fields(&mut out));
        Id::from_u64(self.next_id.fetch_add(1, Ordering::SeqCst) + 1)
    }
    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut out = self.out.lock().unwrap();
        out.push_str("\nrecord:");
        values.record(&mut Fields(&mut out));
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut out = self.out.lock().unwrap();
        out.push_str("\nevent:");
        event.record(&mut Fields(&mut out));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn logs_name_redacted_urls_statuses_and_cache_outcomes_but_no_secrets() {
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(capture.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = TestServer::start(|req| async move {
            if req.uri().path() == "/token" {
                response(
                    200,
                    r#"{"access_token":"tok-SECRET-123","token_type":"Bearer","expires_in":3600}"#,
                )
            } else {
                response(200, "body-SECRET-456")
            }
        })
        .await;
        let http: Arc<dyn HttpClient> = Arc::new(
            HyperClient::builder()
                .allow_private_addresses()
                .build()
                .unwrap(),
        );
        let key = Arc::new(SigningKey::from_pem(TOOL_KEY, Algorithm::RS256).unwrap());
        let services = ServiceClient::new(http);
        let endpoint = TokenEndpointConfig::new("client-1", server.url("/token"), key);
        for _ in 0..2 {
            let req =
                http::Request::get(server.url("/lineitems?access_token=qs-SECRET-789&page=2"))
                    .body(Bytes::new())
                    .unwrap();
            services
                .send_authorized("reg-1", &endpoint, &["scope-a"], req)
                .await
                .unwrap();
        }
    });
    let log = capture.out.lock().unwrap().clone();
    assert!(log.contains("/lineitems?access_token=***&page=2"), "{log}");
    assert!(log.contains("status=200"), "{log}");
    assert!(log.contains("latency_ms="), "{log}");
    assert!(log.contains("cache=\"miss\""), "{log}");
    assert!(log.contains("cache=\"hit\""), "{log}");
    for secret in ["SECRET", "eyJ", "Bearer"] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the logs:\n{log}"
        );
    }
}
