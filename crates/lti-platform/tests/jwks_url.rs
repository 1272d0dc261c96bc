//! A tool registered by JWKS URL: the platform fetches the tool's keys from a loopback
//! HTTP server through `lti_http::JwksCache` to verify a client assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lti_platform::{
    MemoryToolRegistry, Platform, PlatformConfig, PlatformKeys, PlatformSecret, ToolKeys,
    ToolRegistration,
};

async fn serve_jwks(body: String, hits: Arc<AtomicUsize>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            let hits = hits.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req| {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let body = body.clone();
                    async move {
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/jwks")
}

#[tokio::test]
async fn assertion_is_verified_with_keys_fetched_from_the_tools_jwks_url() {
    let hits = Arc::new(AtomicUsize::new(0));
    let url = serve_jwks(serde_json::to_string(&tool_jwks()).unwrap(), hits.clone()).await;
    let registry = Arc::new(MemoryToolRegistry::new());
    let mut reg = ToolRegistration::new(CLIENT_ID, TOOL_LOGIN, TOOL_LAUNCH, ToolKeys::JwksUrl(url))
        .with_deployment(DEPLOYMENT_ID)
        .with_scope(SCOPE_SCORE);
    reg.name = "remote keys".to_owned();
    registry.register(reg).unwrap();
    let client = Arc::new(
        lti_http::HyperClient::builder()
            .allow_private_addresses()
            .build()
            .unwrap(),
    );
    let cache = Arc::new(lti_http::JwksCache::new(client));
    let clock = Arc::new(TestClock(std::sync::atomic::AtomicU64::new(NOW)));
    let platform = Platform::new(
        PlatformConfig::new(ISSUER),
        Arc::new(PlatformKeys::new(key(PLATFORM_PEM, "p"))),
        PlatformSecret::generate().unwrap(),
        registry,
        cache,
    )
    .unwrap()
    .with_clock(clock);
    let resp = platform
        .token_endpoint(&token_request(
            &assertion(&tool_key(), good_assertion_claims("j1")),
            SCOPE_SCORE,
        ))
        .await;
    assert_eq!(resp.status(), http::StatusCode::OK, "{:?}", resp.body());
    let resp = platform
        .token_endpoint(&token_request(
            &assertion(&tool_key(), good_assertion_claims("j2")),
            SCOPE_SCORE,
        ))
        .await;
    assert_eq!(resp.status(), http::StatusCode::OK);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the JWKS is cached between requests"
    );
    let forged = assertion(
        &key(ATTACKER_PEM, "tool-key-1"),
        good_assertion_claims("j3"),
    );
    let resp = platform
        .token_endpoint(&token_request(&forged, SCOPE_SCORE))
        .await;
    assert_eq!(resp.status(), http::StatusCode::UNAUTHORIZED);
    assert_eq!(json_body(&resp)["error"], "invalid_client");
}
