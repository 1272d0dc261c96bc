//! The server's timeouts and connection limit over real TCP sockets: `lti
//! serve` (in process) configured with short limits, and `serve_http` with a
//! deliberately slow route.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for something that must happen within a
/// one-second limit: generous, so a loaded machine does not fail it, and
/// finite, so a server without the limit fails it.
const PATIENCE: Duration = Duration::from_secs(8);

fn addr(tool: &Tool) -> String {
    tool.url.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or resets it); the bytes read.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_connection_that_trickles_its_request_head_is_closed_after_the_header_timeout() {
    let platform = start_platform().await;
    let tool = start_tool_on(&platform, "memory://", "header_read_timeout_secs = 1\n").await;
    let mut stream = TcpStream::connect(addr(&tool)).await.unwrap();
    let started = Instant::now();
    // A partial request line and one header, then nothing.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let read = tokio::time::timeout(PATIENCE, read_until_closed(&mut stream))
        .await
        .expect("the server closes a connection whose head does not arrive in time");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed only once the timeout passed: {waited:?}"
    );
    // hyper answers nothing, or a 408, before closing: never a 200.
    let text = String::from_utf8_lossy(&read);
    assert!(!text.contains(" 200 "), "{text}");

    // A kept-alive connection that sends no next request is closed too.
    let mut stream = TcpStream::connect(addr(&tool)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let read = tokio::time::timeout(PATIENCE, read_until_closed(&mut stream))
        .await
        .expect("an idle kept-alive connection is closed");
    assert!(String::from_utf8_lossy(&read).starts_with("HTTP/1.1 200 OK"));
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn a_connection_on_which_nothing_moves_is_dropped_after_the_idle_timeout() {
    let platform = start_platform().await;
    // The header timeout is long: only the idle timeout can end this connection.
    let lines = "header_read_timeout_secs = 60\nrequest_timeout_secs = 1\nidle_timeout_secs = 1\n";
    let tool = start_tool_on(&platform, "memory://", lines).await;
    let mut stream = TcpStream::connect(addr(&tool)).await.unwrap();
    stream.write_all(b"GET /heal").await.unwrap();
    tokio::time::timeout(PATIENCE, read_until_closed(&mut stream))
        .await
        .expect("the idle connection is dropped");
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn a_request_whose_body_trickles_is_answered_408_after_the_request_timeout() {
    let platform = start_platform().await;
    let tool = start_tool_on(&platform, "memory://", "request_timeout_secs = 1\n").await;
    let mut stream = TcpStream::connect(addr(&tool)).await.unwrap();
    stream
        .write_all(
            b"POST /lti/login HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\niss=",
        )
        .await
        .unwrap();
    let read = tokio::time::timeout(PATIENCE, read_until_closed(&mut stream))
        .await
        .expect("the request is answered and the connection closed");
    let text = String::from_utf8_lossy(&read);
    assert!(text.starts_with("HTTP/1.1 408 Request Timeout"), "{text}");
    assert!(text.contains(r#""error":"request_timeout""#), "{text}");
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn a_slow_handler_is_answered_408_and_other_requests_go_on() {
    let router = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        )
        .route("/fast", axum::routing::get(|| async { "fast" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = lti_app::ServerLimits {
        request_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..lti_app::ServerLimits::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lti_app::serve_http(listener, router, limits, async move {
        let _ = rx.await;
    }));
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let fast = get(&format!("http://{addr}/fast"), None).await;
    assert_eq!(text(&fast), "fast");
    let read = tokio::time::timeout(PATIENCE, read_until_closed(&mut slow))
        .await
        .expect("the slow request is answered");
    let answer = String::from_utf8_lossy(&read);
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout"),
        "{answer}"
    );
    assert!(answer.contains("request_timeout"), "{answer}");
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let platform = start_platform().await;
    let lines = "max_connections = 1\nheader_read_timeout_secs = 60\n";
    let tool = start_tool_on(&platform, "memory://", lines).await;
    // The one slot: a connection that has not finished its request head.
    let mut holder = TcpStream::connect(addr(&tool)).await.unwrap();
    holder.write_all(b"GET /heal").await.unwrap();
    // Give the server the chance to take it (it is served, not queued).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut waiting = TcpStream::connect(addr(&tool)).await.unwrap();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "no answer while the only slot is taken: {early:?}"
    );
    drop(holder);
    let read = tokio::time::timeout(PATIENCE, read_until_closed(&mut waiting))
        .await
        .expect("served once the slot is free");
    let text = String::from_utf8_lossy(&read);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    tool.stop().await.unwrap();
}
