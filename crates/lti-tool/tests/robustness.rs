//! Property tests: nothing a client sends makes the login or launch panic or answer
//! with a server error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_login_bodies_and_queries_are_client_errors(body in proptest::collection::vec(any::<u8>(), 0..400), query in "[ -~]{0,200}") {
        let rt = runtime();
        let h = rt.block_on(Harness::new());
        if let Err(e) = rt.block_on(h.tool.login(&post_raw("/lti/login", body, None))) {
            prop_assert!(e.http_status().is_client_error(), "{} {}", e.code(), e);
        }
        if let Ok(uri) = format!("/lti/login?{}", query.replace(' ', "+")).parse::<http::Uri>() {
            let req = lti_tool::ToolRequest::new(http::Method::GET, uri, http::HeaderMap::new(), bytes::Bytes::new());
            if let Err(e) = rt.block_on(h.tool.login(&req)) {
                prop_assert!(e.http_status().is_client_error(), "{} {}", e.code(), e);
            }
        }
    }

    #[test]
    fn arbitrary_id_tokens_with_a_valid_state_are_client_errors(token in "[A-Za-z0-9_.=+/-]{0,600}", raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let rt = runtime();
        let h = rt.block_on(Harness::new());
        let login = rt.block_on(h.login());
        let err = rt.block_on(h.tool.launch(&login.post(&token))).unwrap_err();
        prop_assert!(err.http_status().is_client_error(), "{} {}", err.code(), err);
        prop_assert!(token.len() < 8 || !err.to_string().contains(&token));
        // Raw bytes as the whole form body.
        let login = rt.block_on(h.login());
        if let Err(e) = rt.block_on(h.tool.launch(&post_raw("/lti/launch", raw, Some(&login.cookie)))) {
            prop_assert!(e.http_status().is_client_error(), "{} {}", e.code(), e);
        }
    }

    #[test]
    fn well_formed_tokens_with_arbitrary_claims_are_client_errors(
        iss in prop_oneof![Just(ISS.to_owned()), "[a-z:/.]{0,30}"],
        aud in prop_oneof![Just(serde_json::json!(CLIENT_ID)), Just(serde_json::json!([CLIENT_ID, "x"])), Just(serde_json::json!(7))],
        exp in prop_oneof![Just(serde_json::json!(NOW + 100)), Just(serde_json::json!("soon")), Just(serde_json::json!(-1)), Just(serde_json::json!(1.5e300))],
        version in prop_oneof![Just("1.3.0"), Just("1.1"), Just("")],
    ) {
        let rt = runtime();
        let h = rt.block_on(Harness::new());
        let result = rt.block_on(h.launch_with(|c| {
            c.insert("iss".into(), serde_json::json!(iss));
            c.insert("aud".into(), aud);
            c.insert("exp".into(), exp);
            c.insert(format!("{LTI}version"), serde_json::json!(version));
        }));
        if let Err(e) = result {
            prop_assert!(e.http_status().is_client_error(), "{} {}", e.code(), e);
        }
    }

    #[test]
    fn arbitrary_launch_route_requests_with_platform_storage_are_client_errors(
        raw in proptest::collection::vec(any::<u8>(), 0..300),
        pending in "[ -~]{0,80}",
        report in proptest::option::of("[ -~]{0,80}"),
        origin in proptest::option::of(prop_oneof![Just("https://tool.example".to_owned()), "[ -~]{0,40}"]),
        site in proptest::option::of(prop_oneof![Just("same-origin".to_owned()), "[a-z-]{0,12}"]),
        token in "[A-Za-z0-9_.-]{0,300}",
    ) {
        let rt = runtime();
        let h = rt.block_on(Harness::with(|b| b.platform_storage(true)));
        let client_error = |r: Result<lti_tool::LaunchOutcome, lti_tool::ToolError>| match r {
            Ok(_) => Ok(()),
            Err(e) if e.http_status().is_client_error() => Ok(()),
            Err(e) => Err(format!("{} {}", e.code(), e)),
        };
        // Raw bytes as the form body.
        let r = rt.block_on(h.tool.handle_launch(&post_raw("/lti/launch", raw, None)));
        prop_assert_eq!(client_error(r), Ok(()));
        // A confirmation with any pending id, report and request headers.
        let mut fields = vec![("lti_storage_confirm", pending.as_str())];
        if let Some(report) = &report {
            fields.push(("lti_storage_error", report));
        }
        let mut headers = Vec::new();
        if let Some(o) = &origin {
            headers.push(("origin", o.as_str()));
        }
        if let Some(s) = &site {
            headers.push(("sec-fetch-site", s.as_str()));
        }
        let headers: Vec<(&str, &str)> = headers
            .into_iter()
            .filter(|(_, v)| http::HeaderValue::from_str(v).is_ok())
            .collect();
        let r = rt.block_on(h.tool.handle_launch(&confirm_request(&fields, &headers)));
        prop_assert_eq!(client_error(r), Ok(()));
        // A cookie-less launch with any token after a storage login.
        let login = rt.block_on(h.storage_login("_parent"));
        let r = rt.block_on(h.tool.handle_launch(&login.cookieless_post(&token)));
        prop_assert_eq!(client_error(r), Ok(()));
    }
}
