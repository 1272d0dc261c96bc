//! The cookie check's new-window fallback for 1.3 launches: a framed launch
//! that lost its state cookie, with no platform storage to bind it, gets a
//! page whose `target="_blank"` form starts the login again in a new window,
//! where the fresh launch completes with the cookie. (The page and the new
//! window run in a real browser in `lti-app`'s headless-Chromium test.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use http::StatusCode;
use lti_tool::{CookieOnly, LaunchOutcome, NEW_WINDOW_PARAM, ToolRequest};

/// The platform's launch POST inside an LMS frame, without any cookie.
fn framed_cookieless(login: &Login, id_token: &str) -> ToolRequest {
    confirm_request(
        &[("id_token", id_token), ("state", &login.state)],
        &[
            ("sec-fetch-dest", "iframe"),
            ("sec-fetch-site", "cross-site"),
        ],
    )
}

/// The new-window page's form, as the browser posts it from the tool's frame.
fn new_window_post(state: &str, headers: &[(&str, &str)]) -> ToolRequest {
    confirm_request(&[(NEW_WINDOW_PARAM, state)], headers)
}

async fn offered_page(h: &Harness, login: &Login) -> String {
    let token = h.sign(&h.claims(&login.nonce));
    let outcome = h
        .tool
        .handle_launch(&framed_cookieless(login, &token))
        .await
        .unwrap();
    assert!(outcome.launch().is_none());
    let LaunchOutcome::NewWindow { response } = outcome else {
        panic!("expected the new-window page");
    };
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[http::header::CACHE_CONTROL], "no-store");
    // The new window's POST must carry the tool's Origin, not `null`.
    assert_eq!(
        response.headers()[http::header::REFERRER_POLICY],
        "same-origin"
    );
    body_text(&response)
}

#[tokio::test]
async fn a_framed_launch_without_its_cookie_offers_a_new_window_that_completes_it() {
    for storage in [false, true] {
        let h = Harness::with(|b| b.platform_storage(storage)).await;
        let login = h.login().await;
        let page = offered_page(&h, &login).await;
        assert!(page.contains("target=\"_blank\""), "{page}");
        assert!(page.contains("id=\"open-new-window\""), "{page}");
        assert!(!page.contains("<script"), "{page}");
        assert_eq!(
            html_attr(&page, "action"),
            "https://tool.example/lti/launch"
        );
        let input = &page[page.find("<input").unwrap()..];
        assert_eq!(html_attr(input, "name"), NEW_WINDOW_PARAM);
        assert_eq!(html_attr(input, "value"), login.state);

        // The new window: a fresh login with the original parameters.
        let outcome = h
            .tool
            .handle_launch(&new_window_post(
                &login.state,
                &[
                    ("origin", "https://tool.example"),
                    ("sec-fetch-site", "same-origin"),
                ],
            ))
            .await
            .unwrap();
        let LaunchOutcome::NewWindow { response } = outcome else {
            panic!("expected the fresh login");
        };
        let fresh = Login::from_response(&response);
        assert!(fresh.location.starts_with(&format!("{AUTH_URL}?")));
        assert_ne!(fresh.state, login.state);
        assert_ne!(fresh.nonce, login.nonce);
        for name in [
            "login_hint",
            "lti_message_hint",
            "client_id",
            "redirect_uri",
        ] {
            assert_eq!(fresh.param(name), login.param(name), "{name}");
        }
        assert!(fresh.cookie.starts_with("__Host-lti_state_"));
        // The platform's launch in the new window brings the cookie: done.
        let token = h.sign(&h.claims(&fresh.nonce));
        let outcome = h.tool.handle_launch(&fresh.post(&token)).await.unwrap();
        let launch = outcome.launch().expect("the launch completes");
        assert_eq!(launch.issuer(), ISS);
    }
}

#[tokio::test]
async fn the_fallback_applies_only_to_frames_to_this_tools_states_and_when_on() {
    let h = Harness::new().await;
    // A window of its own that lost the cookie gains nothing from another one.
    let login = h.login().await;
    let token = h.sign(&h.claims(&login.nonce));
    let err = h
        .tool
        .handle_launch(&login.cookieless_post(&token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "state_cookie_missing");
    assert_eq!(cookie_only(&err), Some(CookieOnly::PlatformStorageOff));

    // Turned off: the refusal, as before.
    let off = Harness::with(|b| b.new_window_fallback(false)).await;
    let login = off.login().await;
    let token = off.sign(&off.claims(&login.nonce));
    let err = off
        .tool
        .handle_launch(&framed_cookieless(&login, &token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "state_cookie_missing");
    // A login without the fallback kept no hints: its state opens no new window.
    let err = off
        .tool
        .handle_launch(&new_window_post(
            &login.state,
            &[
                ("origin", "https://tool.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "state_not_found");

    // A forged or foreign state: no page, no login.
    let forged = framed_cookieless(
        &Login {
            state: "not-a-state".to_owned(),
            ..h.login().await
        },
        &token,
    );
    let err = h.tool.handle_launch(&forged).await.unwrap_err();
    assert_eq!(err.code(), "state_cookie_missing");
    let err = h
        .tool
        .handle_launch(&new_window_post(
            "not-a-state",
            &[
                ("origin", "https://tool.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "state_not_found");
}

#[tokio::test]
async fn the_new_window_login_must_come_from_the_tools_own_page() {
    let h = Harness::new().await;
    let login = h.login().await;
    for headers in [
        vec![
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        vec![],
    ] {
        let err = h
            .tool
            .handle_launch(&new_window_post(&login.state, &headers))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "cross_origin_confirmation", "{headers:?}");
        assert_eq!(err.http_status(), StatusCode::FORBIDDEN);
    }
    // An expired state starts nothing.
    h.clock.advance(3600);
    let err = h
        .tool
        .handle_launch(&new_window_post(
            &login.state,
            &[
                ("origin", "https://tool.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "state_not_found");
}
