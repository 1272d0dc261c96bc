//! `GET /metrics` of `lti serve`: on its own listener only, and after a
//! launch, a refused launch and a refused login the counters and histograms
//! moved, each refusal under its code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::header::CONTENT_TYPE;

/// A free loopback port (bound and released: another process could take it
/// in between, which this test accepts).
async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// The value of the sample `line` starts with (`name{labels}`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().unwrap())
    })
}

#[tokio::test]
async fn metrics_count_launches_by_outcome_and_time_them() {
    let platform = start_platform().await;
    let port = free_port().await;
    let tool = start_tool_with(&platform, |text| {
        format!("{text}\n[metrics]\nbind = \"127.0.0.1:{port}\"\n")
    })
    .await;
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");

    // One good launch, then its replay (refused: state_not_found).
    let login = login(&tool, &platform).await;
    let token = lti_jose::sign(
        &claims(&tool, &platform, &login.nonce, LEARNER),
        platform_key(),
    )
    .unwrap();
    assert_eq!(post_launch(&tool, &login, &token, None).await.status(), 303);
    let replay = post_launch(&tool, &login, &token, Some("application/json")).await;
    assert_eq!(replay.status(), 401);
    // A login without its parameters (refused under its code).
    let bad_login = get(&format!("{}/lti/login", tool.url), Some("application/json")).await;
    assert_eq!(bad_login.status(), 400, "{}", text(&bad_login));
    let bad_login_code =
        serde_json::from_slice::<serde_json::Value>(bad_login.body()).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_owned();

    let resp = get(&metrics_url, None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()[CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let m = text(&resp);
    assert_eq!(
        sample(&m, "lti_launches_total{outcome=\"ok\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "lti_launches_total{outcome=\"state_not_found\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "lti_launch_duration_seconds_count"),
        Some(2.0),
        "{m}"
    );
    assert!(sample(&m, "lti_launch_duration_seconds_sum").unwrap() > 0.0);
    assert_eq!(
        sample(&m, "lti_logins_total{outcome=\"ok\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            &format!("lti_logins_total{{outcome=\"{bad_login_code}\"}}")
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(sample(&m, "lti_login_duration_seconds_count"), Some(2.0));
    // The platform's key set was fetched once, for the good launch.
    assert_eq!(sample(&m, "lti_jwks_cache_misses_total"), Some(1.0), "{m}");
    assert_eq!(sample(&m, "lti_jwks_cache_fetch_errors_total"), Some(0.0));
    // The launch and its replay each tried to record the state's nonce (the
    // replay lost, which is an answer, not a store error); the launch was saved.
    assert_eq!(
        sample(
            &m,
            "lti_store_operation_duration_seconds_count{store=\"nonces\",op=\"record_nonce\"}"
        ),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            "lti_store_operation_duration_seconds_count{store=\"launch_data\",op=\"save_launch\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert!(!m.contains("lti_store_errors_total{"), "{m}");
    assert_eq!(sample(&m, "lti_token_cache_misses_total"), Some(0.0));
    // Only this scrape's listener is busy, not the tool's.
    assert_eq!(sample(&m, "lti_http_requests_in_flight"), Some(0.0));

    // The public listener does not serve the metrics; the metrics one
    // serves nothing else.
    assert_eq!(
        get(&format!("{}/metrics", tool.url), None).await.status(),
        404
    );
    assert_eq!(
        get(&format!("http://127.0.0.1:{port}/healthz"), None)
            .await
            .status(),
        404
    );
    tool.stop().await.unwrap();
}

fn action_of(tool: &Tool, page: &str, path: &str) -> String {
    let marker = format!("action=\"{path}?");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no form for {path}: {page}"));
    let action = &page[start + "action=\"".len()..];
    let action = &action[..action.find('"').unwrap()];
    format!("{}{}", tool.url, action.replace("&amp;", "&"))
}

#[tokio::test]
async fn metrics_count_service_tokens_and_key_set_hits() {
    let platform = start_platform().await;
    let port = free_port().await;
    let tool = start_tool_with(&platform, |text| {
        format!("{text}\n[metrics]\nbind = \"127.0.0.1:{port}\"\n")
    })
    .await;
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");

    // Two launches: the second one's key comes from the cached key set.
    launch_as(&tool, &platform, LEARNER).await;
    let inspector = launch_as(&tool, &platform, INSTRUCTOR).await;
    let id = param(&inspector, "lti_launch_id").unwrap();
    // The AGS panel reads the line items (a token request), then two scores
    // are posted with the cached token.
    let ags = get(
        &format!("{}/lti/app/ags?lti_launch_id={id}", tool.url),
        None,
    )
    .await;
    assert_eq!(ags.status(), 200);
    let score_action = action_of(&tool, &text(&ags), "/lti/app/ags/scores");
    let lineitem = format!("{}/ags/lineitems/1", platform.base)
        .replace(':', "%3A")
        .replace('/', "%2F");
    for given in [7, 8] {
        let scored = post_form(
            &score_action,
            format!("lineitem={lineitem}&user_id=u07&score_given={given}&score_maximum=10"),
            None,
        )
        .await;
        assert_eq!(scored.status(), 200, "{}", text(&scored));
    }

    // The scores are queued and sent by the grade outbox worker, which asks
    // for a token of the score scope alone: two token requests in all (the
    // panel's AGS scopes, the worker's score scope), every later call reuses
    // one. Wait for the worker's sends to show.
    let mut m = String::new();
    for _ in 0..100 {
        m = text(&get(&metrics_url, None).await);
        if sample(&m, "lti_token_cache_misses_total") == Some(2.0)
            && sample(&m, "lti_token_cache_hits_total").unwrap_or(0.0) >= 2.0
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let misses = sample(&m, "lti_token_cache_misses_total").unwrap();
    let hits = sample(&m, "lti_token_cache_hits_total").unwrap();
    assert_eq!(misses, 2.0, "{m}");
    assert!(hits >= 2.0, "later calls reuse the cached tokens: {m}");
    assert_eq!(sample(&m, "lti_token_cache_fetch_errors_total"), Some(0.0));
    assert_eq!(sample(&m, "lti_token_cache_errors_total"), Some(0.0));
    assert_eq!(sample(&m, "lti_jwks_cache_misses_total"), Some(1.0), "{m}");
    assert_eq!(sample(&m, "lti_jwks_cache_hits_total"), Some(1.0), "{m}");
    assert_eq!(sample(&m, "lti_launches_total{outcome=\"ok\"}"), Some(2.0));
    tool.stop().await.unwrap();
}
