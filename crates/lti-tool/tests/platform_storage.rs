//! The cookie-less state binding through the platform's postMessage storage
//! (spec digest §6): the login page that stores the state, the launch that is
//! kept pending behind the check page, and the check page's confirmation.
//! (The pages' scripts run against a real platform frame in `lti-app`'s
//! headless-Chromium test.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::*;
use http::{StatusCode, header};
use lti_tool::{CookieOnly, LaunchOutcome, StateBinding};

/// A tool with platform storage on.
async fn harness() -> Harness {
    Harness::with(|b| b.platform_storage(true)).await
}

/// A confirmation as the tool's check page posts it.
fn same_origin_confirm(pending: &str) -> lti_tool::ToolRequest {
    confirm_request(
        &[("lti_storage_confirm", pending)],
        &[
            ("origin", "https://tool.example"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
}

/// Logs in with storage, launches without the cookie; returns the check page.
async fn pending_launch(h: &Harness) -> (StorageLogin, String) {
    let login = h.storage_login("_parent").await;
    let token = h.sign(&h.claims(&login.nonce));
    let outcome = h.tool.handle_launch(&login.cookieless_post(&token)).await;
    let LaunchOutcome::StorageCheck { response } = outcome.unwrap() else {
        panic!("expected the check page");
    };
    assert_eq!(response.status(), StatusCode::OK);
    // `no-referrer` would make the confirmation's Origin `null`.
    assert_eq!(response.headers()[header::REFERRER_POLICY], "same-origin");
    assert!(
        response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'; script-src 'sha256-")
    );
    let page = body_text(&response);
    (login, page)
}

#[tokio::test]
async fn a_login_offering_storage_answers_the_page_that_stores_the_state() {
    let h = harness().await;
    let login = h.storage_login("post_message_forwarding").await;
    // The same authorization request as the redirect would carry.
    let plain = Harness::new().await.login().await;
    let names = |url: &str| -> Vec<String> {
        let query = url.split_once('?').unwrap().1;
        let mut v: Vec<String> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, _)| k.into_owned())
            .collect();
        v.sort();
        v
    };
    assert!(login.next.starts_with(&format!("{AUTH_URL}?")));
    let mut expected = names(&plain.location);
    expected.retain(|n| n != "lti_message_hint");
    assert_eq!(names(&login.next), expected);
    assert_eq!(html_attr(&login.page, "href"), login.next);
    // The storage request: the frame named at login, the authorization endpoint's
    // origin, a key embedding the state, the state as value.
    assert_eq!(
        html_attr(&login.page, "data-target"),
        "post_message_forwarding"
    );
    assert_eq!(
        html_attr(&login.page, "data-origin"),
        "https://platform.example"
    );
    assert_eq!(
        html_attr(&login.page, "data-key"),
        format!("lti_state_{}", login.state)
    );
    assert_eq!(html_attr(&login.page, "data-value"), login.state);
    assert!(login.page.contains("lti.put_data"));
    assert!(login.page.contains("org.imsglobal.lti.put_data"));
    // The cookie is still set: a browser that keeps it launches as before.
    assert!(login.cookie.starts_with("__Host-lti_state_"));
    // The state carries the mark that it is stored in the platform.
    let saved = h.tool.open_login_state(&login.state).unwrap();
    assert_eq!(saved.nonce, login.nonce);
    assert_eq!(
        saved.extra.get("lti_storage_binding").map(String::as_str),
        Some("platform")
    );
}

#[tokio::test]
async fn the_pages_send_a_policy_that_allows_only_their_own_script() {
    let h = harness().await;
    let resp = h.storage_login_response("_parent").await.unwrap();
    let csp = resp.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'sha256-"),
        "{csp}"
    );
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(
        resp.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    // The hash is that of the page's one inline script.
    let page = body_text(&resp);
    let script = page
        .split("<script>")
        .nth(1)
        .unwrap()
        .split("</script>")
        .next()
        .unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, script.as_bytes());
    use base64::Engine as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
}

#[tokio::test]
async fn a_hostile_storage_target_is_escaped() {
    let h = harness().await;
    let login = h.storage_login("\"><script>alert(1)</script>").await;
    assert!(!login.page.contains("<script>alert(1)"));
    assert!(login.page.contains("&quot;&gt;&lt;script&gt;alert(1)"));
    assert_eq!(
        html_attr(&login.page, "data-target"),
        "\"><script>alert(1)</script>"
    );
}

#[tokio::test]
async fn without_the_option_or_without_a_target_the_login_redirects() {
    // Option off: a storage target is recorded, but the answer is the redirect.
    let off = Harness::new().await;
    let login = off
        .login_with(&[("lti_storage_target", "_parent")])
        .await
        .unwrap();
    assert!(login.location.starts_with(AUTH_URL));
    // Option on, no target offered: the redirect.
    let on = harness().await;
    let login = on.login().await;
    assert!(login.location.starts_with(AUTH_URL));
    let saved = on.tool.open_login_state(&login.state).unwrap();
    assert!(!saved.extra.contains_key("lti_storage_binding"));
}

#[tokio::test]
async fn a_cookieless_launch_is_verified_kept_pending_and_confirmed_once() {
    let h = harness().await;
    let (login, page) = pending_launch(&h).await;
    assert_eq!(html_attr(&page, "data-origin"), "https://platform.example");
    assert_eq!(html_attr(&page, "data-target"), "_parent");
    assert_eq!(
        html_attr(&page, "data-key"),
        format!("lti_state_{}", login.state)
    );
    assert_eq!(html_attr(&page, "data-value"), login.state);
    assert_eq!(
        html_attr(&page, "action"),
        "https://tool.example/lti/launch"
    );
    assert!(page.contains("lti.get_data"));
    let pending = html_attr(&page, "value");
    assert_eq!(pending.len(), 43, "a 256-bit pending id");
    assert!(page.contains(r#"<meta name="referrer" content="same-origin">"#));

    // The state is used up and the nonce recorded already.
    let token = h.sign(&h.claims(&login.nonce));
    expect_code(
        h.tool.handle_launch(&login.cookieless_post(&token)).await,
        "state_not_found",
    );
    // A pending id is no launch id.
    expect_code(h.tool.load_launch(&pending).await, "launch_not_found");

    let outcome = h
        .tool
        .handle_launch(&same_origin_confirm(&pending))
        .await
        .unwrap();
    let launch_id = {
        let launch = outcome.launch().expect("launched");
        assert_eq!(launch.sub(), Some("user-1"));
        assert_eq!(launch.state_binding(), Some(StateBinding::PlatformStorage));
        assert_eq!(launch.lti_storage_target(), Some("_parent"));
        assert_ne!(launch.launch_id(), pending);
        launch.launch_id().to_owned()
    };
    let response = outcome.into_response();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.location(),
        Some(format!("{TARGET}?lti_launch_id={launch_id}").as_str())
    );
    assert_eq!(
        response.set_cookies().count(),
        0,
        "no state cookie to clear"
    );
    let loaded = h.tool.load_launch(&launch_id).await.unwrap();
    assert_eq!(loaded.claims().name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(loaded.state_binding(), Some(StateBinding::PlatformStorage));

    // Single use.
    expect_code(
        h.tool.handle_launch(&same_origin_confirm(&pending)).await,
        "pending_launch_not_found",
    );
}

#[tokio::test]
async fn a_launch_with_the_cookie_completes_at_once() {
    let h = harness().await;
    let login = h.storage_login("_parent").await;
    let token = h.sign(&h.claims(&login.nonce));
    let req = launch_post(&login.state, &token, Some(&login.cookie));
    let outcome = h.tool.handle_launch(&req).await.unwrap();
    let LaunchOutcome::Launched { launch, response } = outcome else {
        panic!("expected a completed launch");
    };
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        response
            .set_cookies()
            .any(|c| c.starts_with("__Host-lti_state_") && c.contains("Max-Age=0"))
    );
    assert_eq!(launch.state_binding(), Some(StateBinding::Cookie));
    let loaded = h.tool.load_launch(launch.launch_id()).await.unwrap();
    assert_eq!(loaded.state_binding(), Some(StateBinding::Cookie));
}

#[tokio::test]
async fn a_cookieless_launch_is_refused_unless_its_login_stored_the_state() {
    // Option on, but the login offered no storage: the cookie was the only binding.
    let h = harness().await;
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    let err = expect_code(
        h.tool.handle_launch(&login.cookieless_post(&token)).await,
        "state_cookie_missing",
    );
    assert_eq!(cookie_only(&err), Some(CookieOnly::StorageNotOffered));
    assert!(err.to_string().contains("no lti_storage_target"), "{err}");

    // Option off: the same refusal, and the state is left for the right browser.
    let off = Harness::new().await;
    let login = off
        .login_with(&[("lti_storage_target", "_parent")])
        .await
        .unwrap();
    let token = off.sign(&off.claims(&login.nonce));
    let err = expect_code(
        off.tool.handle_launch(&login.cookieless_post(&token)).await,
        "state_cookie_missing",
    );
    assert_eq!(cookie_only(&err), Some(CookieOnly::PlatformStorageOff));
    assert!(err.to_string().contains("platform storage is off"), "{err}");
    let outcome = off.tool.handle_launch(&login.post(&token)).await.unwrap();
    assert!(outcome.launch().is_some());
}

#[tokio::test]
async fn a_cookieless_launch_gets_every_check_before_it_is_kept() {
    let h = harness().await;
    let login = h.storage_login("_parent").await;
    let mut claims = h.claims(&login.nonce);
    claims.insert("aud".into(), "someone-else".into());
    let token = h.sign(&claims);
    expect_code(
        h.tool.handle_launch(&login.cookieless_post(&token)).await,
        "invalid_audience",
    );

    let login = h.storage_login("_parent").await;
    let token = h.sign(&h.claims(&login.nonce));
    // One signature character changed well inside the segment: still base64url,
    // no longer the signature.
    let mut forged = token.into_bytes();
    let i = forged.len() - 20;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    expect_code(
        h.tool.handle_launch(&login.cookieless_post(&forged)).await,
        "bad_signature",
    );
}

#[tokio::test]
async fn a_confirmation_from_another_origin_is_refused_and_leaves_the_launch_pending() {
    let h = harness().await;
    let (_, page) = pending_launch(&h).await;
    let pending = html_attr(&page, "value");
    let field = [("lti_storage_confirm", pending.as_str())];
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[], "no Origin header"),
        (
            &[("origin", "https://evil.example")],
            "\"https://evil.example\"",
        ),
        (&[("origin", "null")], "\"null\""),
        (
            &[
                ("origin", "https://tool.example"),
                ("origin", "https://tool.example"),
            ],
            "several Origin headers",
        ),
        (
            &[
                ("origin", "https://tool.example"),
                ("sec-fetch-site", "cross-site"),
            ],
            "Sec-Fetch-Site \"cross-site\"",
        ),
    ];
    for (headers, found) in cases {
        let e = expect_code(
            h.tool
                .handle_launch(&confirm_request(&field, headers))
                .await,
            "cross_origin_confirmation",
        );
        assert_eq!(e.http_status(), StatusCode::FORBIDDEN);
        let text = e.to_string();
        assert!(text.contains("https://tool.example"), "{text}");
        assert!(text.contains(found), "{found}: {text}");
    }
    // The tool's own page still confirms it (no Sec-Fetch-Site is fine too).
    let outcome = h
        .tool
        .handle_launch(&confirm_request(
            &field,
            &[("origin", "https://TOOL.example")],
        ))
        .await
        .unwrap();
    assert!(outcome.launch().is_some());
}

#[tokio::test]
async fn a_failed_check_is_refused_with_what_the_page_saw_and_ends_the_launch() {
    let h = harness().await;
    for (report, found) in [
        ("state_not_stored", "another value or none"),
        ("no_reply", "no reply from the platform's storage"),
        (
            "platform_error:bad_request",
            "the platform's error \"bad_request\"",
        ),
        ("", "the report \"\""),
    ] {
        let (_, page) = pending_launch(&h).await;
        let pending = html_attr(&page, "value");
        let req = confirm_request(
            &[
                ("lti_storage_confirm", &pending),
                ("lti_storage_error", report),
            ],
            &[("origin", "https://tool.example")],
        );
        let e = expect_code(h.tool.handle_launch(&req).await, "state_not_bound");
        assert_eq!(e.http_status(), StatusCode::UNAUTHORIZED);
        assert!(e.to_string().contains(found), "{e}");
        // The pending launch is gone: it cannot be confirmed after all.
        expect_code(
            h.tool.handle_launch(&same_origin_confirm(&pending)).await,
            "pending_launch_not_found",
        );
    }
}

#[tokio::test]
async fn unknown_expired_oversized_or_saved_launch_ids_are_not_pending_launches() {
    let h = harness().await;
    expect_code(
        h.tool.handle_launch(&same_origin_confirm("nope")).await,
        "pending_launch_not_found",
    );
    expect_code(
        h.tool
            .handle_launch(&same_origin_confirm(&"a".repeat(5000)))
            .await,
        "pending_launch_not_found",
    );
    expect_code(
        h.tool.handle_launch(&same_origin_confirm("")).await,
        "pending_launch_not_found",
    );
    // A completed launch's id cannot be confirmed, and stays a launch.
    let (launch, _) = h.launch_with(|_| {}).await.unwrap();
    expect_code(
        h.tool
            .handle_launch(&same_origin_confirm(launch.launch_id()))
            .await,
        "pending_launch_not_found",
    );
    let still = h.tool.load_launch(launch.launch_id()).await.unwrap();
    assert_eq!(still.launch_id(), launch.launch_id());
    assert_eq!(still.state_binding(), Some(StateBinding::Cookie));
    // Two minutes is all a check may take.
    let (_, page) = pending_launch(&h).await;
    let pending = html_attr(&page, "value");
    h.clock.advance(lti_tool::PENDING_LAUNCH_TTL_SECS + 1);
    expect_code(
        h.tool.handle_launch(&same_origin_confirm(&pending)).await,
        "pending_launch_not_found",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_confirmations_complete_the_launch_exactly_once() {
    let h = harness().await;
    for _ in 0..20 {
        let (_, page) = pending_launch(&h).await;
        let pending = Arc::new(html_attr(&page, "value"));
        let tool = Arc::new(h.tool.clone());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (tool, pending) = (tool.clone(), pending.clone());
                tokio::spawn(async move {
                    tool.handle_launch(&same_origin_confirm(&pending))
                        .await
                        .map(|o| o.launch().map(|l| l.launch_id().to_owned()))
                })
            })
            .collect();
        let mut launched = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(Some(_)) => launched += 1,
                Ok(None) => panic!("a confirmation answered another check page"),
                Err(e) => assert_eq!(e.code(), "pending_launch_not_found", "{e}"),
            }
        }
        assert_eq!(launched, 1);
    }
}

#[tokio::test]
async fn a_registration_without_an_https_authorization_url_cannot_use_storage() {
    let h = harness().await;
    let mut reg = registration();
    reg.auth_login_url = "javascript:alert(1)".to_owned();
    h.store
        .registrations
        .update_registration(&reg)
        .await
        .unwrap();
    let e = expect_code(h.storage_login_response("_parent").await, "configuration");
    assert!(e.to_string().contains("authorization URL"), "{e}");
}
