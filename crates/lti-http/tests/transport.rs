//! Loopback tests of the hyper client, retries and paging against a real
//! in-process server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{TestServer, response};
use lti_http::{
    Error, HttpClient, HyperClient, MaxResponseBytes, ResponseCache, RetryPolicy, TimeoutPhase,
    check_status, collect_pages, send_with_retry,
};

fn get(url: &str) -> http::Request<Bytes> {
    http::Request::get(url).body(Bytes::new()).unwrap()
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        ..RetryPolicy::default()
    }
}

#[tokio::test]
async fn user_agent_is_sent_and_connections_are_reused() {
    let server = TestServer::start(|req| async move {
        let ua = req
            .headers()
            .get("user-agent")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        response(200, ua)
    })
    .await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    for _ in 0..5 {
        let resp = client.send(get(&server.url("/ua"))).await.unwrap();
        assert_eq!(
            resp.body().as_ref(),
            lti_http::DEFAULT_USER_AGENT.as_bytes()
        );
    }
    assert_eq!(server.hits("/ua"), 5);
    assert_eq!(server.connections(), 1, "keep-alive connection is reused");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = TestServer::start(|req| async move {
        if req.uri().path() == "/old" {
            let mut r = response(302, "");
            r.headers_mut().insert("location", "/new".parse().unwrap());
            r
        } else {
            response(200, "new")
        }
    })
    .await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    let url = server.url("/old");
    let resp = client.send(get(&url)).await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(server.hits("/new"), 0);
    match check_status(&url, resp) {
        Err(Error::Redirect {
            status: 302,
            location,
            ..
        }) => assert_eq!(location.as_deref(), Some("/new")),
        other => panic!("expected Redirect, got {other:?}"),
    }
}

#[tokio::test]
async fn oversize_bodies_are_rejected_with_or_without_content_length() {
    let server = TestServer::start(|req| async move {
        if req.uri().path() == "/chunked" {
            // A streamed body: no Content-Length, so the Limited body cap applies.
            let mut r = response(200, vec![b'x'; 4096]);
            r.headers_mut()
                .insert("transfer-encoding", "chunked".parse().unwrap());
            r
        } else {
            response(200, vec![b'x'; 4096])
        }
    })
    .await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .max_response_bytes(1024)
        .build()
        .unwrap();
    for path in ["/big", "/chunked"] {
        match client.send(get(&server.url(path))).await {
            Err(Error::BodyTooLarge { limit: 1024, .. }) => {}
            other => panic!("{path}: expected BodyTooLarge, got {other:?}"),
        }
    }
    // The per-request extension raises the cap.
    let mut req = get(&server.url("/big"));
    req.extensions_mut().insert(MaxResponseBytes(8192));
    assert_eq!(client.send(req).await.unwrap().body().len(), 4096);
}

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused_before_any_connection() {
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    match client.send(get("http://lms.example.com/jwks")).await {
        Err(Error::InsecureHttp { url }) => assert_eq!(url, "http://lms.example.com/jwks"),
        other => panic!("expected InsecureHttp, got {other:?}"),
    }
    match client.send(get("ftp://lms.example.com/x")).await {
        Err(e) => assert_eq!(e.code(), "invalid_url"),
        Ok(_) => panic!("ftp accepted"),
    }
}

#[tokio::test]
async fn total_timeout_yields_a_timeout_error() {
    let server = TestServer::start(|_| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        response(200, "late")
    })
    .await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = Instant::now();
    match client.send(get(&server.url("/slow"))).await {
        Err(Error::Timeout {
            phase: TimeoutPhase::Total,
            attempts: 1,
            ..
        }) => {}
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn refused_connections_are_retried_and_report_attempts() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    let req = http::Request::post(format!("http://127.0.0.1:{port}/x"))
        .body(Bytes::new())
        .unwrap();
    // Connect failures are retried even for POST: the request never left.
    match send_with_retry(&client, req, &fast_retries()).await {
        Err(Error::Connect {
            attempts: 3, url, ..
        }) => assert!(url.contains(&port.to_string())),
        other => panic!("expected Connect after 3 attempts, got {other:?}"),
    }
}

#[tokio::test]
async fn retry_after_one_second_is_waited_out() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = TestServer::start(move |_| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                let mut r = response(429, "slow down");
                r.headers_mut().insert("retry-after", "1".parse().unwrap());
                r
            } else {
                response(200, "ok")
            }
        }
    })
    .await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    let started = Instant::now();
    let resp = send_with_retry(&client, get(&server.url("/limited")), &fast_retries())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(server.hits("/limited"), 2);
    assert_eq!(
        resp.extensions().get::<lti_http::Attempts>(),
        Some(&lti_http::Attempts(2))
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_not_waited() {
    let server = TestServer::start(|_| async {
        let mut r = response(503, "");
        r.headers_mut()
            .insert("retry-after", "3600".parse().unwrap());
        r
    })
    .await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    let url = server.url("/down");
    let resp = send_with_retry(&client, get(&url), &fast_retries())
        .await
        .unwrap();
    assert_eq!(server.hits("/down"), 1);
    assert!(matches!(
        check_status(&url, resp),
        Err(Error::Status {
            status: 503,
            attempts: 1,
            ..
        })
    ));
}

#[tokio::test]
async fn gateway_errors_are_retried_until_the_attempts_run_out() {
    let server = TestServer::start(|_| async { response(502, "") }).await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    let url = server.url("/bad-gateway");
    let resp = send_with_retry(&client, get(&url), &fast_retries())
        .await
        .unwrap();
    assert_eq!(server.hits("/bad-gateway"), 3);
    match check_status(&url, resp) {
        Err(
            e @ Error::Status {
                status: 502,
                attempts: 3,
                ..
            },
        ) => {
            assert_eq!(e.code(), "unexpected_status");
            assert_eq!(e.status_hint(), 502);
        }
        other => panic!("expected Status, got {other:?}"),
    }
}

#[tokio::test]
async fn post_is_not_retried_unless_opted_in() {
    let server = TestServer::start(|_| async { response(503, "") }).await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    let post = || {
        http::Request::post(server.url("/score"))
            .body(Bytes::from_static(b"{}"))
            .unwrap()
    };
    send_with_retry(&client, post(), &fast_retries())
        .await
        .unwrap();
    assert_eq!(server.hits("/score"), 1);
    send_with_retry(&client, post(), &fast_retries().allow_non_idempotent())
        .await
        .unwrap();
    assert_eq!(server.hits("/score"), 4);
}

#[tokio::test]
async fn non_retryable_statuses_are_returned_at_once() {
    let server = TestServer::start(|_| async { response(500, "boom") }).await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    let resp = send_with_retry(&client, get(&server.url("/err")), &fast_retries())
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(server.hits("/err"), 1);
}

#[tokio::test]
async fn paging_follows_three_pages_and_stops() {
    let server = TestServer::start(|req| async move {
        let page: usize = req
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("page="))
            .unwrap_or("1")
            .parse()
            .unwrap();
        let mut r = response(200, format!("page {page}"));
        if page < 3 {
            let link = format!(
                "</members?page={}>; rel=\"next\", </members?page=1>; rel=first",
                page + 1
            );
            r.headers_mut().insert("link", link.parse().unwrap());
        } else {
            r.headers_mut().insert(
                "link",
                "</members?since=42>; rel=\"differences\"".parse().unwrap(),
            );
        }
        r
    })
    .await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    let pages = collect_pages(server.url("/members"), 10, |url| client.send(get(&url)))
        .await
        .unwrap();
    let bodies: Vec<_> = pages
        .iter()
        .map(|p| String::from_utf8(p.response.body().to_vec()).unwrap())
        .collect();
    assert_eq!(bodies, ["page 1", "page 2", "page 3"]);
    assert_eq!(server.hits("/members"), 3);
    assert_eq!(pages[2].links.differences(), Some("/members?since=42"));
    assert_eq!(pages[1].url, server.url("/members?page=2"));
}

#[tokio::test]
async fn paging_stops_at_the_page_cap_and_on_loops() {
    let server = TestServer::start(|req| async move {
        let mut r = response(200, "");
        let next = if req.uri().path() == "/loop" {
            "</loop>; rel=next"
        } else {
            "</endless?p=x>; rel=next"
        };
        let next = if req.uri().query().is_some() && req.uri().path() == "/endless" {
            format!("</endless?p={}x>; rel=next", req.uri().query().unwrap())
        } else {
            next.to_owned()
        };
        r.headers_mut().insert("link", next.parse().unwrap());
        r
    })
    .await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    match collect_pages(server.url("/endless"), 4, |url| client.send(get(&url))).await {
        Err(Error::PageLimit { limit: 4, .. }) => {}
        other => panic!("expected PageLimit, got {other:?}"),
    }
    assert_eq!(server.hits("/endless"), 4);
    match collect_pages(server.url("/loop"), 10, |url| client.send(get(&url))).await {
        Err(Error::PagingLoop { .. }) => {}
        other => panic!("expected PagingLoop, got {other:?}"),
    }
    assert_eq!(server.hits("/loop"), 1);
}

#[tokio::test]
async fn a_failing_page_ends_paging_with_its_status() {
    let server = TestServer::start(|req| async move {
        if req.uri().query().is_some() {
            response(404, "")
        } else {
            let mut r = response(200, "");
            r.headers_mut()
                .insert("link", "</p?page=2>; rel=next".parse().unwrap());
            r
        }
    })
    .await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    match collect_pages(server.url("/p"), 10, |url| client.send(get(&url))).await {
        Err(Error::Status { status: 404, .. }) => {}
        other => panic!("expected Status 404, got {other:?}"),
    }
}

#[tokio::test]
async fn response_cache_serves_registered_urls_until_the_ttl_ends() {
    let server = TestServer::start(|req| async move {
        if req.uri().path().ends_with("missing") {
            response(404, "")
        } else {
            response(200, "cfg")
        }
    })
    .await;
    let cached = Arc::new(
        ResponseCache::new(
            HyperClient::builder()
                .allow_private_addresses()
                .build()
                .unwrap(),
            100,
        )
        .cache_prefix(server.url("/config"), Duration::from_millis(300)),
    );
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let c = cached.clone();
        let url = server.url("/config/tool");
        tasks.push(tokio::spawn(
            async move { c.send(get(&url)).await.unwrap() },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().body().as_ref(), b"cfg");
    }
    assert_eq!(server.hits("/config/tool"), 1, "concurrent misses coalesce");
    tokio::time::sleep(Duration::from_millis(400)).await;
    cached.send(get(&server.url("/config/tool"))).await.unwrap();
    assert_eq!(server.hits("/config/tool"), 2, "refetched after the TTL");
    // Unregistered URLs, authorized requests and non-200 answers are not cached.
    for _ in 0..2 {
        cached.send(get(&server.url("/other"))).await.unwrap();
        let mut authed = get(&server.url("/config/tool"));
        authed
            .headers_mut()
            .insert("authorization", "Bearer x".parse().unwrap());
        cached.send(authed).await.unwrap();
        assert_eq!(
            cached
                .send(get(&server.url("/config/missing")))
                .await
                .unwrap()
                .status(),
            404
        );
    }
    assert_eq!(server.hits("/other"), 2);
    assert_eq!(server.hits("/config/tool"), 4);
    assert_eq!(server.hits("/config/missing"), 2);
}

#[tokio::test]
async fn https_goes_through_rustls() {
    // A plain-HTTP server cannot complete a TLS handshake: the failure proves
    // the https:// path is wired to rustls (with the ring provider).
    let server = TestServer::start(|_| async { response(200, "plain") }).await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/x", server.addr.port());
    match client.send(get(&url)).await {
        Err(Error::Connect { reason, .. }) => assert!(!reason.is_empty()),
        other => panic!("expected a TLS connect failure, got {other:?}"),
    }
    assert_eq!(server.hits("/x"), 0);
}

#[test]
fn an_invalid_user_agent_is_refused() {
    match HyperClient::builder().user_agent("bad\nagent") {
        Err(Error::InvalidRequest { reason }) => assert!(reason.contains("User-Agent")),
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
    assert!(HyperClient::builder().user_agent("my-tool/1.0").is_ok());
}

#[tokio::test]
async fn a_custom_user_agent_replaces_the_default_but_not_an_explicit_header() {
    let server = TestServer::start(|req| async move {
        response(
            200,
            req.headers()["user-agent"].to_str().unwrap().to_owned(),
        )
    })
    .await;
    let client = HyperClient::builder()
        .allow_private_addresses()
        .user_agent("my-tool/1.0")
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        client
            .send(get(&server.url("/")))
            .await
            .unwrap()
            .body()
            .as_ref(),
        b"my-tool/1.0"
    );
    let mut req = get(&server.url("/"));
    req.headers_mut()
        .insert("user-agent", "explicit/2".parse().unwrap());
    assert_eq!(
        client.send(req).await.unwrap().body().as_ref(),
        b"explicit/2"
    );
}

#[tokio::test]
async fn response_cache_failures_are_not_cached() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cached = ResponseCache::new(
        HyperClient::builder()
            .allow_private_addresses()
            .build()
            .unwrap(),
        10,
    )
    .cache_prefix(format!("http://127.0.0.1:{port}/"), Duration::from_secs(60));
    for _ in 0..2 {
        match cached
            .send(get(&format!("http://127.0.0.1:{port}/cfg")))
            .await
        {
            Err(Error::Connect { .. }) => {}
            other => panic!("expected Connect, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn memo_runs_once_per_key_and_does_not_cache_errors() {
    let memo: lti_http::Memo<&'static str, usize> =
        lti_http::Memo::new(Duration::from_secs(60), 10);
    let runs = Arc::new(AtomicUsize::new(0));
    let failing = memo
        .get_or_try_insert("k", || async {
            Err::<usize, _>(std::io::Error::other("down"))
        })
        .await;
    assert_eq!(failing.unwrap_err().to_string(), "down");
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (memo, runs) = (memo.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            memo.get_or_try_insert("k", || async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, std::io::Error>(runs.fetch_add(1, Ordering::SeqCst) + 41)
            })
            .await
            .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 41);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    memo.invalidate(&"k").await;
    let again = memo
        .get_or_try_insert("k", || async { Ok::<_, std::io::Error>(7) })
        .await
        .unwrap();
    assert_eq!(again, 7);
}
