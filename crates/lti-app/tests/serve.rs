//! HTTP-level tests of `lti serve` (the real server code, in process, on a
//! loopback port) against an in-test platform.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, X_FRAME_OPTIONS};
use http::{Request, Response};
use serde_json::Value;

#[tokio::test]
async fn login_redirects_to_the_platform_with_the_oidc_parameters() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let login = login(&tool, &platform).await;
    assert!(
        login
            .location
            .starts_with(&format!("{}/auth?", platform.base))
    );
    let p = |n: &str| param(&login.location, n);
    assert_eq!(p("scope").as_deref(), Some("openid"));
    assert_eq!(p("response_type").as_deref(), Some("id_token"));
    assert_eq!(p("response_mode").as_deref(), Some("form_post"));
    assert_eq!(p("prompt").as_deref(), Some("none"));
    assert_eq!(p("client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(p("login_hint").as_deref(), Some("hint-1"));
    assert_eq!(p("lti_message_hint").as_deref(), Some("mh-1"));
    let redirect = p("redirect_uri").unwrap();
    assert!(
        redirect.ends_with("%2Flti%2Flaunch") || redirect.ends_with("/lti/launch"),
        "{redirect}"
    );
    assert!(login.state.len() >= 32 && login.nonce.len() >= 32);
    // The tool runs on http://127.0.0.1 (a secure context for browsers): its
    // state cookie is Secure, cross-site and partitioned (CHIPS), so it works in
    // an LMS frame with third-party cookies blocked.
    assert!(
        login.cookie.starts_with(lti_tool::SECURE_COOKIE_PREFIX),
        "{}",
        login.set_cookie
    );
    for attr in ["; HttpOnly", "; Secure", "; SameSite=None", "; Partitioned"] {
        assert!(
            login.set_cookie.contains(attr),
            "{attr}: {}",
            login.set_cookie
        );
    }
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn a_valid_launch_redirects_to_the_inspector_which_answers_200() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let inspector = launch_as(&tool, &platform, INSTRUCTOR).await;
    assert!(inspector.starts_with(&format!("{}/lti/app?lti_launch_id=", tool.url)));
    let resp = get(&inspector, None).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get(X_FRAME_OPTIONS).is_none());
    let csp = resp.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("frame-ancestors *"));
    let page = text(&resp);
    assert!(page.contains("Grace &lt;Hopper&gt;"), "names are escaped");
    assert!(!page.contains("Grace <Hopper>"));
    assert!(page.contains("<code id=\"message-type\">LtiResourceLinkRequest</code>"));
    assert!(page.contains("id=\"instructor-verdict\"><strong class=\"ok\">yes"));
    assert!(page.contains("Compilers") && page.contains("Week 1"));
    assert!(
        page.contains("&lt;3&gt;"),
        "custom parameters are shown escaped"
    );
    assert!(page.contains("<details><summary>"));
    assert!(page.contains("signature verified"));
    assert!(page.contains("/lti/app/ags?lti_launch_id="));
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn a_tampered_token_gets_401_with_the_error_code_in_the_page() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let login = login(&tool, &platform).await;
    let token = lti_jose::sign(
        &claims(&tool, &platform, &login.nonce, LEARNER),
        platform_key(),
    )
    .unwrap();
    // Change a claim and keep the signature: it no longer matches the payload.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload: Value =
        serde_json::from_slice(&lti_jose::b64::decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = "someone-else".into();
    parts[1] = lti_jose::b64::encode(payload.to_string().as_bytes());
    let resp = post_launch(&tool, &login, &parts.join("."), None).await;
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = text(&resp);
    assert!(
        page.contains("<code id=\"error-code\">bad_signature</code>"),
        "{page}"
    );
    assert!(page.contains("does not verify"));
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn a_replayed_launch_is_rejected() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let login = login(&tool, &platform).await;
    let token = lti_jose::sign(
        &claims(&tool, &platform, &login.nonce, LEARNER),
        platform_key(),
    )
    .unwrap();
    assert_eq!(post_launch(&tool, &login, &token, None).await.status(), 303);
    let replay = post_launch(&tool, &login, &token, Some("application/json")).await;
    assert_eq!(replay.status(), 401);
    let body: Value = serde_json::from_slice(replay.body()).unwrap();
    assert_eq!(body["error"], "state_not_found");

    // The same id_token with a fresh login state: its nonce belongs to the old login.
    let second = common::login(&tool, &platform).await;
    let resp = post_launch(&tool, &second, &token, Some("application/json")).await;
    assert_eq!(resp.status(), 401);
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["error"], "nonce_mismatch");
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn errors_are_json_when_the_client_accepts_json() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let resp = get(
        &format!(
            "{}/lti/login?iss=https://stranger.example&login_hint=x&target_link_uri={}/lti/app",
            tool.url, tool.url
        ),
        Some("application/json"),
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["error"], "unknown_issuer");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("stranger.example")
    );

    let resp = get(&format!("{}/lti/app", tool.url), Some("application/json")).await;
    assert_eq!(resp.status(), 401);
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["error"], "launch_id_missing");
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn hostile_or_broken_requests_never_get_a_500() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let post = |path: &str, ct: &str, body: Vec<u8>| {
        Request::post(format!("{}{path}", tool.url))
            .header(CONTENT_TYPE, ct)
            .body(Bytes::from(body))
            .unwrap()
    };
    let lti11_url = format!("{}/lti11/launch", tool.url);
    let unknown_consumer = lti11::LaunchRequest::new("rl")
        .sign(&lti11_url, &lti11::Credentials::new("nobody", "x"), now())
        .unwrap()
        .form_body();
    let cases: Vec<(Request<Bytes>, u16)> = vec![
        (
            post(
                "/lti/launch",
                "application/x-www-form-urlencoded",
                b"".to_vec(),
            ),
            400,
        ),
        (
            post(
                "/lti/launch",
                "application/x-www-form-urlencoded",
                b"state=x&id_token=y".to_vec(),
            ),
            401,
        ),
        (post("/lti/launch", "application/json", b"{}".to_vec()), 415),
        (
            post(
                "/lti/launch",
                "application/x-www-form-urlencoded",
                vec![b'a'; 200 * 1024],
            ),
            413,
        ),
        (
            post(
                "/lti/launch",
                "application/x-www-form-urlencoded",
                b"state=%FF".to_vec(),
            ),
            400,
        ),
        (
            post(
                "/lti/login",
                "application/x-www-form-urlencoded",
                b"iss=a&iss=b".to_vec(),
            ),
            400,
        ),
        (
            post(
                "/lti/app/deep-link?lti_launch_id=nope",
                "application/x-www-form-urlencoded",
                b"kind=link".to_vec(),
            ),
            403,
        ),
        (
            post(
                "/lti11/launch",
                "application/x-www-form-urlencoded",
                b"oauth_consumer_key=nobody".to_vec(),
            ),
            400,
        ),
        (
            post(
                "/lti11/launch",
                "application/x-www-form-urlencoded",
                unknown_consumer.into_bytes(),
            ),
            401,
        ),
        (
            Request::get(format!("{}/no/such/page", tool.url))
                .body(Bytes::new())
                .unwrap(),
            404,
        ),
        (
            Request::get(format!("{}/lti/app/nrps?lti_launch_id=%00", tool.url))
                .body(Bytes::new())
                .unwrap(),
            404,
        ),
    ];
    for (req, expected) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let resp = send(req).await;
        assert_eq!(resp.status().as_u16(), expected, "{what}: {}", text(&resp));
    }
    // The server is still up.
    assert_eq!(
        get(&format!("{}/healthz", tool.url), None).await.status(),
        200
    );
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn healthz_reports_the_store_and_jwks_publishes_the_key_directory_key() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let resp = get(&format!("{}/healthz", tool.url), None).await;
    assert_eq!(resp.status(), 200);
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["store"], "reachable");

    let resp = get(&format!("{}/.well-known/jwks.json", tool.url), None).await;
    assert_eq!(resp.status(), 200);
    let served: Value = serde_json::from_slice(resp.body()).unwrap();
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(tool.keys_dir.join("jwks.json")).unwrap())
            .unwrap();
    assert_eq!(served["keys"][0]["kid"], on_disk["keys"][0]["kid"]);
    assert_eq!(served["keys"][0]["n"], on_disk["keys"][0]["n"]);
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn instructors_get_the_ags_and_nrps_panels_and_learners_get_403() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let inspector = launch_as(&tool, &platform, INSTRUCTOR).await;
    let id = param(&inspector, "lti_launch_id").unwrap();

    let ags = get(
        &format!("{}/lti/app/ags?lti_launch_id={id}", tool.url),
        None,
    )
    .await;
    assert_eq!(ags.status(), 200);
    let page = text(&ags);
    assert!(page.contains("<td>Quiz 1</td>"), "{page}");

    // The forms' actions name the launch and carry its CSRF token.
    let create_action = action_of(&tool, &page, "/lti/app/ags/lineitems");
    let score_action = action_of(&tool, &page, "/lti/app/ags/scores");
    assert!(score_action.contains("&lti_csrf_token="), "{score_action}");
    let created = post_form(
        &create_action,
        "label=Essay&score_maximum=20&resource_id=essay-1",
        None,
    )
    .await;
    assert_eq!(created.status(), 200);
    assert!(
        text(&created).contains("id=\"notice\">Created line item"),
        "{}",
        text(&created)
    );
    assert_eq!(platform.line_items.lock().unwrap().len(), 2);

    let lineitem = format!("{}/ags/lineitems/1", platform.base);
    let scored = post_form(
        &score_action,
        format!(
            "lineitem={}&user_id=u07&score_given=8&score_maximum=10&comment=well+done",
            lineitem.replace(':', "%3A").replace('/', "%2F")
        ),
        None,
    )
    .await;
    assert_eq!(scored.status(), 200);
    assert!(text(&scored).contains("Posted 8 / 10"), "{}", text(&scored));
    // The score went to the grade outbox; the worker delivers it.
    wait_until(|| !platform.scores.lock().unwrap().is_empty()).await;
    let scores = platform.scores.lock().unwrap().clone();
    assert_eq!(scores.len(), 1);
    assert_eq!(scores[0]["userId"], "u07");
    assert_eq!(scores[0]["scoreGiven"], 8.0);
    // The AGS panel shows the grade's status from the outbox.
    let panel = text(
        &get(
            &format!("{}/lti/app/ags?lti_launch_id={id}", tool.url),
            None,
        )
        .await,
    );
    assert!(panel.contains("<table id=\"grades\">"), "{panel}");
    assert!(
        panel.contains("data-status=\"sent\"><td>u07</td>"),
        "{panel}"
    );
    // A line item on another origin than the launch's AGS URLs is refused
    // before anything is queued (the token never goes there).
    let foreign = post_form(
        &score_action,
        "lineitem=https%3A%2F%2Fevil.example%2Fli%2F1&user_id=u07&score_given=1&score_maximum=1",
        None,
    )
    .await;
    assert!(
        text(&foreign).contains("cross_origin_link"),
        "{}",
        text(&foreign)
    );

    let bad = post_form(
        &score_action,
        "lineitem=x&user_id=u&score_given=NaN&score_maximum=1",
        None,
    )
    .await;
    assert_eq!(bad.status(), 400);
    assert!(text(&bad).contains("invalid_form"));

    let roster = get(
        &format!("{}/lti/app/nrps?lti_launch_id={id}", tool.url),
        None,
    )
    .await;
    assert_eq!(roster.status(), 200);
    let page = text(&roster);
    assert!(page.contains("30 members, page 1 of 2."), "{page}");
    assert!(page.contains("Member &lt;00&gt;") && !page.contains("Member &lt;25&gt;"));
    let second = get(
        &format!("{}/lti/app/nrps?lti_launch_id={id}&page=2", tool.url),
        None,
    )
    .await;
    assert!(text(&second).contains("Member &lt;29&gt;"));

    let learner = launch_as(&tool, &platform, LEARNER).await;
    let lid = param(&learner, "lti_launch_id").unwrap();
    let page = text(&get(&learner, None).await);
    assert!(page.contains("id=\"instructor-verdict\"><strong class=\"no\">no"));
    let denied = get(
        &format!("{}/lti/app/ags?lti_launch_id={lid}", tool.url),
        Some("application/json"),
    )
    .await;
    assert_eq!(denied.status(), 403);
    let body: Value = serde_json::from_slice(denied.body()).unwrap();
    assert_eq!(body["error"], "insufficient_role");
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn deep_linking_offers_only_accepted_types_and_returns_a_signed_response() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let login = login(&tool, &platform).await;
    let mut c = claims(&tool, &platform, &login.nonce, INSTRUCTOR);
    make_deep_linking(
        &mut c,
        serde_json::json!({
            "deep_link_return_url": format!("{}/dl-return", platform.base),
            "accept_types": ["ltiResourceLink", "html"],
            "accept_presentation_document_targets": ["iframe", "window"],
            "accept_lineitem": true,
            "data": "opaque"
        }),
    );
    let token = lti_jose::sign(&c, platform_key()).unwrap();
    let resp = post_launch(&tool, &login, &token, None).await;
    assert_eq!(resp.status(), 303);
    let inspector = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    let page = text(&get(&inspector, None).await);
    assert!(page.contains("value=\"ltiResourceLink\""));
    assert!(page.contains("with a line item"));
    assert!(page.contains("value=\"html\""));
    assert!(!page.contains("value=\"link\""), "link is not accepted");

    let picker_action = action_of(&tool, &page, "/lti/app/deep-link");
    let form = post_form(
        &picker_action,
        "kind=ltiResourceLink&title=Quiz+%3C2%3E",
        None,
    )
    .await;
    assert_eq!(form.status(), 200);
    let html = text(&form);
    assert!(html.contains(&format!("action=\"{}/dl-return\"", platform.base)));
    let jwt = html
        .split("name=\"JWT\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let claims: Value =
        serde_json::from_slice(&lti_jose::b64::decode(jwt.split('.').nth(1).unwrap()).unwrap())
            .unwrap();
    let item = &claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"][0];
    assert_eq!(item["type"], "ltiResourceLink");
    assert_eq!(item["title"], "Quiz <2>");
    assert_eq!(item["lineItem"]["scoreMaximum"], 100.0);
    assert_eq!(
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"],
        "opaque"
    );

    let refused = post_form(&picker_action, "kind=link", Some("application/json")).await;
    assert_eq!(refused.status(), 400);
    let body: Value = serde_json::from_slice(refused.body()).unwrap();
    assert_eq!(body["error"], "content_item_type_not_accepted");
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn lti11_launches_from_configured_consumers_reach_the_inspector() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let url = format!("{}/lti11/launch", tool.url);
    let signed = lti11::LaunchRequest::new("rl-11")
        .param("user_id", "u-11")
        .param("lis_person_name_full", "Alan <Turing>")
        .roles(&["Instructor"])
        .context("ctx-11", "Computability")
        .outcomes(format!("{}/outcomes", platform.base), "sourced-11")
        .sign(
            &url,
            &lti11::Credentials::new("consumer-1", "secret-1"),
            now(),
        )
        .unwrap();
    let resp = lti11_launch(&url, signed.form_body()).await;
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let page = text(&resp);
    assert!(page.contains("Alan &lt;Turing&gt;"));
    // The resource page heads the inspector with the visit.
    assert!(
        page.contains("id=\"display-name\">Alan &lt;Turing&gt;</td>"),
        "{page}"
    );
    assert!(page.contains("Legacy LMS"));
    assert!(page.contains("id=\"instructor-verdict\"><strong class=\"ok\">yes"));

    // The Outcomes panel sends a score back through the consumer's service.
    let action = action_of(&tool, &page, "/lti11/outcomes");
    let sent = post_form(&action, "score=0.8", None).await;
    assert_eq!(sent.status(), 200, "{}", text(&sent));
    assert!(
        text(&sent).contains("The score 0.8 is queued for the consumer (version 1)"),
        "{}",
        text(&sent)
    );
    wait_until(|| !platform.outcomes.lock().unwrap().is_empty()).await;
    assert_eq!(
        platform.outcomes.lock().unwrap().clone(),
        [("sourced-11".to_owned(), 0.8)]
    );
    let out_of_range = post_form(&action, "score=1.5", None).await;
    assert_eq!(out_of_range.status(), 400);
    assert!(text(&out_of_range).contains("invalid_form"));
    let unknown = post_form(
        &format!("{}/lti11/outcomes", tool.url),
        "score=0.5",
        Some("application/json"),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let body: Value = serde_json::from_slice(unknown.body()).unwrap();
    assert_eq!(body["error"], "outcome_not_found");
    // An id without its CSRF token (what a forged form could carry) is refused
    // before anything is looked up.
    let id = param(&action, "outcome_id").unwrap();
    let forged = post_form(
        &format!("{}/lti11/outcomes?outcome_id={id}", tool.url),
        "score=0.1",
        Some("application/json"),
    )
    .await;
    assert_eq!(forged.status(), 403);
    let body: Value = serde_json::from_slice(forged.body()).unwrap();
    assert_eq!(body["error"], "csrf_check_failed");
    assert_eq!(platform.outcomes.lock().unwrap().len(), 1);

    // The same signed form again: the nonce was used.
    let replay = post_form(&url, signed.form_body(), Some("application/json")).await;
    assert_eq!(replay.status(), 401);
    let body: Value = serde_json::from_slice(replay.body()).unwrap();
    assert!(body["error"].as_str().unwrap().contains("nonce"), "{body}");
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn the_inspector_verifies_the_lti1p1_migration_claim_with_the_consumer_secret() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    for (secret, verified) in [("secret-1", true), ("wrong-secret", false)] {
        let login = login(&tool, &platform).await;
        let mut c = claims(&tool, &platform, &login.nonce, INSTRUCTOR);
        let exp = c["exp"].as_i64().unwrap();
        let base = lti_tool::oauth_consumer_key_sign_base_string(
            "consumer-1",
            DEPLOYMENT,
            &platform.base,
            CLIENT_ID,
            exp,
            &login.nonce,
        );
        c["https://purl.imsglobal.org/spec/lti/claim/lti1p1"] = serde_json::json!({
            "oauth_consumer_key": "consumer-1",
            "oauth_consumer_key_sign": lti_tool::oauth_consumer_key_sign(secret, &base),
            "user_id": "old-user-9"
        });
        let token = lti_jose::sign(&c, platform_key()).unwrap();
        let resp = post_launch(&tool, &login, &token, None).await;
        assert_eq!(resp.status(), 303);
        let page = text(&get(resp.headers()[LOCATION].to_str().unwrap(), None).await);
        if verified {
            assert!(
                page.contains("verifies with the secret of consumer <code>consumer-1</code>; LTI 1.1 user id <code>old-user-9</code>"),
                "{page}"
            );
        } else {
            assert!(
                page.contains("not verified: <code>lti1p1_signature_mismatch</code>"),
                "{page}"
            );
        }
    }
    tool.stop().await.unwrap();
}

/// The absolute URL of the form posting to `path` in `page` (its `action`,
/// HTML-unescaped).
/// Polls `done` every 20 ms for up to 10 s (the grade outbox worker
/// delivers in the background).
async fn wait_until(done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("timed out");
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

/// Not a correctness test: times login, launch and inspector over loopback.
/// Run with `cargo test -p lti-app --test serve -- --ignored --nocapture launch_latency`.
#[tokio::test]
#[ignore = "measurement; run by hand"]
async fn launch_latency() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let n = 200;
    let (mut logins, mut launches, mut pages) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let t = std::time::Instant::now();
        let login = login(&tool, &platform).await;
        logins.push(t.elapsed());
        let token = lti_jose::sign(
            &claims(&tool, &platform, &login.nonce, INSTRUCTOR),
            platform_key(),
        )
        .unwrap();
        let t = std::time::Instant::now();
        let resp = post_launch(&tool, &login, &token, None).await;
        launches.push(t.elapsed());
        assert_eq!(resp.status(), 303);
        let t = std::time::Instant::now();
        let page = get(resp.headers()[LOCATION].to_str().unwrap(), None).await;
        pages.push(t.elapsed());
        assert_eq!(page.status(), 200);
    }
    for (name, mut v) in [
        ("login", logins),
        ("launch", launches),
        ("inspector", pages),
    ] {
        v.sort();
        let mean = v.iter().sum::<std::time::Duration>() / n;
        println!(
            "{name:>9}: mean {mean:?}  p50 {:?}  p95 {:?}  (n = {n})",
            v[v.len() / 2],
            v[v.len() * 95 / 100]
        );
    }
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn consumers_import_loads_key_secret_lines_and_updates_existing_ones() {
    let dir = temp_dir("import");
    let file = dir.join("consumers.txt");
    std::fs::write(&file, "# exported from the old LMS\nk1 s1\n\nk2   s2\n").unwrap();
    let options =
        lti_store::OpenOptions::new(lti_registry::SecretCipher::insecure_plaintext_for_tests());
    let store = lti_store::open("memory://", &options).await.unwrap();
    assert_eq!(lti_app::import_consumers(&store, &file).await.unwrap(), 2);
    let k2 = store.consumers.get_consumer("k2").await.unwrap();
    assert_eq!(k2.secret.expose(), "s2");

    std::fs::write(&file, "k2 rotated\n").unwrap();
    assert_eq!(lti_app::import_consumers(&store, &file).await.unwrap(), 1);
    let k2 = store.consumers.get_consumer("k2").await.unwrap();
    assert_eq!(k2.secret.expose(), "rotated");

    std::fs::write(&file, "k3\n").unwrap();
    let err = lti_app::import_consumers(&store, &file).await.unwrap_err();
    assert_eq!(err.code(), "invalid_import_line");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A TCP proxy to `target` that can be cut (every connection dropped, new ones refused).
async fn cuttable_proxy(target: String) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (cut, mut cut_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut cut_rx => break,
                accepted = listener.accept() => {
                    let Ok((mut inbound, _)) = accepted else { break };
                    let target = target.clone();
                    conns.spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            }
        }
        conns.abort_all();
    });
    (format!("redis://{addr}"), cut)
}

#[tokio::test]
async fn healthz_is_503_when_the_nonce_store_goes_down() {
    let Ok(redis_url) = std::env::var("LTI_TEST_REDIS_URL") else {
        assert!(
            std::env::var("LTI_TEST_REQUIRE_BACKENDS").is_err(),
            "LTI_TEST_REDIS_URL is required when LTI_TEST_REQUIRE_BACKENDS is set"
        );
        eprintln!("skipped: set LTI_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run this test");
        return;
    };
    let target = redis_url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let (proxy_url, cut) = cuttable_proxy(target).await;
    let platform = start_platform().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let keys_dir = keys_dir_with_fixture_key();
    let config_toml = config_text(&url, &platform, &keys_dir, "memory://").replace(
        "url = \"memory://\"",
        &format!("url = \"memory://\"\nnonce_url = \"{proxy_url}\""),
    );
    let config = lti_app::Config::parse(&config_toml).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lti_app::serve(config, listener, async move {
        let _ = rx.await;
    }));

    let up = get(&format!("{url}/healthz"), None).await;
    assert_eq!(up.status(), 200, "{}", text(&up));
    cut.send(()).unwrap();
    let down = get(&format!("{url}/healthz"), None).await;
    assert_eq!(down.status(), 503);
    let body: Value = serde_json::from_slice(down.body()).unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["store"], "reachable");
    assert_eq!(body["nonce_store"], "unreachable");

    // A login stores nothing (its state is sealed), so it still answers; the
    // launch records the state's nonce, which needs the nonce store: 503 with
    // the error code, not a 500.
    let tool = Tool::external(&url, &keys_dir);
    let login = login(&tool, &platform).await;
    let token = lti_jose::sign(
        &claims(&tool, &platform, &login.nonce, INSTRUCTOR),
        platform_key(),
    )
    .unwrap();
    let launch = post_launch(&tool, &login, &token, Some("application/json")).await;
    assert_eq!(launch.status(), 503, "{}", text(&launch));
    let body: Value = serde_json::from_slice(launch.body()).unwrap();
    assert_eq!(body["error"], "store_unavailable");
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_unreachable_platform_jwks_gives_502_with_the_error_code() {
    let platform = start_platform().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let keys_dir = keys_dir_with_fixture_key();
    let config_toml = config_text(&url, &platform, &keys_dir, "memory://").replace(
        &format!("jwks_url = \"{}/jwks\"", platform.base),
        &format!("jwks_url = \"http://{dead}/jwks\""),
    );
    let config = lti_app::Config::parse(&config_toml).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lti_app::serve(config, listener, async move {
        let _ = rx.await;
    }));
    let tool = Tool::external(&url, &keys_dir);
    let login = login(&tool, &platform).await;
    let token = lti_jose::sign(
        &claims(&tool, &platform, &login.nonce, LEARNER),
        platform_key(),
    )
    .unwrap();
    let resp = post_launch(&tool, &login, &token, None).await;
    assert_eq!(resp.status(), 502);
    assert!(text(&resp).contains("<code id=\"error-code\">jwks_unavailable</code>"));
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn pages_run_no_script_unless_they_name_their_own() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let policies = |resp: &Response<Bytes>| -> Vec<String> {
        resp.headers()
            .get_all(CONTENT_SECURITY_POLICY)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };
    // A page of the app's own (here the 404): no script at all, so a
    // `javascript:` URL or an injected handler cannot run.
    let resp = get(&format!("{}/no/such/page", tool.url), None).await;
    assert_eq!(resp.status(), 404);
    assert_eq!(
        policies(&resp),
        ["frame-ancestors *; base-uri 'none'; object-src 'none'; script-src 'none'"]
    );
    // The Platform Storage login page runs its one script under its own policy;
    // the app's policy beside it leaves scripts to that one.
    let resp = get(
        &format!(
            "{}/lti/login?iss={}&login_hint=h&target_link_uri={}/lti/app&client_id={CLIENT_ID}&lti_storage_target=_parent",
            tool.url, platform.base, tool.url
        ),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let found = policies(&resp);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("default-src 'none'; script-src 'sha256-"),
        "{found:?}"
    );
    assert_eq!(
        found[1],
        "frame-ancestors *; base-uri 'none'; object-src 'none'"
    );
    tool.stop().await.unwrap();
}

/// Turns resource-link `claims` into a deep-linking request with `settings`.
fn make_deep_linking(claims: &mut Value, settings: Value) {
    let map = claims.as_object_mut().unwrap();
    map.remove("https://purl.imsglobal.org/spec/lti/claim/resource_link");
    map.insert(
        "https://purl.imsglobal.org/spec/lti/claim/message_type".into(),
        "LtiDeepLinkingRequest".into(),
    );
    map.insert(
        "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings".into(),
        settings,
    );
}

/// A login whose `target_link_uri` is `target` (the usual hints and client id).
async fn login_to(tool: &Tool, platform: &Platform, target: &str) -> Login {
    let encoded = target
        .replace('%', "%25")
        .replace('?', "%3F")
        .replace('&', "%26")
        .replace('=', "%3D");
    let resp = get(
        &format!(
            "{}/lti/login?iss={}&login_hint=hint-1&target_link_uri={encoded}&client_id={CLIENT_ID}",
            tool.url, platform.base
        ),
        None,
    )
    .await;
    assert_eq!(resp.status(), 302, "{}", text(&resp));
    let location = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    let set_cookie = resp.headers()[http::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    Login {
        cookie: set_cookie.split(';').next().unwrap().to_owned(),
        set_cookie,
        state: param(&location, "state").unwrap(),
        nonce: param(&location, "nonce").unwrap(),
        location,
    }
}

/// An LMS with one "launch URL" field (Open edX's "Tool Launch URL"; a Canvas
/// key or Moodle tool whose target is the redirect URI) sends the launch URL as
/// both `redirect_uri` and `target_link_uri`: resource link launches land on
/// the inspector and deep-linking launches on the picker, never on a 405.
#[tokio::test]
async fn one_url_for_redirect_and_target_lands_on_the_inspector_and_the_picker() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let launch_url = format!("{}/lti/launch", tool.url);
    let cases = [
        (launch_url.clone(), ""),
        (format!("{launch_url}/"), ""),
        (format!("{launch_url}?resource=42"), "resource=42&"),
        (format!("{launch_url}/?resource=42"), "resource=42&"),
    ];
    for (target, carried) in &cases {
        for deep_linking in [false, true] {
            let login = login_to(&tool, &platform, target).await;
            // The platform's own check: the redirect URI is the launch URL.
            let redirect = param(&login.location, "redirect_uri").unwrap();
            assert!(
                redirect.ends_with("%2Flti%2Flaunch") || redirect.ends_with("/lti/launch"),
                "{redirect}"
            );
            let mut c = claims(&tool, &platform, &login.nonce, INSTRUCTOR);
            c["https://purl.imsglobal.org/spec/lti/claim/target_link_uri"] = target.clone().into();
            if deep_linking {
                make_deep_linking(
                    &mut c,
                    serde_json::json!({
                        "deep_link_return_url": format!("{}/dl-return", platform.base),
                        "accept_types": ["ltiResourceLink"],
                        "accept_presentation_document_targets": ["iframe"]
                    }),
                );
            }
            let token = lti_jose::sign(&c, platform_key()).unwrap();
            let resp = post_launch(&tool, &login, &token, None).await;
            assert_eq!(resp.status(), 303, "{target}: {}", text(&resp));
            let landing = resp.headers()[LOCATION].to_str().unwrap().to_owned();
            let id = param(&landing, "lti_launch_id").unwrap();
            assert_eq!(
                landing,
                format!("{}/lti/app?{carried}lti_launch_id={id}", tool.url),
                "{target}"
            );
            // The browser's GET of the landing page: the inspector or the picker.
            let page = get(&landing, None).await;
            assert_eq!(page.status(), 200, "{target}");
            let page = text(&page);
            if deep_linking {
                assert!(page.contains("value=\"ltiResourceLink\""), "{page}");
            } else {
                assert!(
                    page.contains("<code id=\"message-type\">LtiResourceLinkRequest</code>"),
                    "{page}"
                );
            }
        }
    }
    // A GET of the launch URL carrying a launch id (a stale link) goes on to
    // the inspector; one without is a 401, never a 405.
    let inspector = launch_as(&tool, &platform, LEARNER).await;
    let id = param(&inspector, "lti_launch_id").unwrap();
    let stale = get(&format!("{launch_url}?lti_launch_id={id}"), None).await;
    assert_eq!(stale.status(), 303);
    let landing = stale.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(landing, format!("{}/lti/app?lti_launch_id={id}", tool.url));
    assert_eq!(get(&landing, None).await.status(), 200);
    let bare = get(&launch_url, Some("application/json")).await;
    assert_eq!(bare.status(), 401);
    let body: Value = serde_json::from_slice(bare.body()).unwrap();
    assert_eq!(body["error"], "launch_id_missing");
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn posts_that_only_the_launch_cookie_or_a_bare_launch_id_authorise_are_refused() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let inspector = launch_as(&tool, &platform, INSTRUCTOR).await;
    let id = param(&inspector, "lti_launch_id").unwrap();
    let lineitem = format!("{}/ags/lineitems/1", platform.base)
        .replace(':', "%3A")
        .replace('/', "%2F");
    let score = format!("lineitem={lineitem}&user_id=u07&score_given=1&score_maximum=1");
    // A page on another site can post to the tool; the browser adds the
    // launch cookie, and the page may know (or guess) nothing else.
    let forged = |path: &str, query: &str, body: String, extra: Option<(&str, &str)>| {
        let mut req = Request::post(format!("{}{path}{query}", tool.url))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::COOKIE, format!("lti_launch={id}"));
        if let Some((name, value)) = extra {
            req = req.header(name, value);
        }
        req.body(Bytes::from(body)).unwrap()
    };
    let with_id = format!("?lti_launch_id={id}");
    let cases = [
        forged("/lti/app/ags/scores", "", score.clone(), None),
        forged("/lti/app/ags/scores", &with_id, score.clone(), None),
        forged(
            "/lti/app/ags/scores",
            &with_id,
            score.clone(),
            Some(("sec-fetch-site", "cross-site")),
        ),
        forged(
            "/lti/app/ags/scores",
            &with_id,
            score.clone(),
            Some(("origin", "https://evil.example")),
        ),
        forged(
            "/lti/app/ags/lineitems",
            "",
            "label=Evil&score_maximum=1".to_owned(),
            None,
        ),
        forged("/lti/app/deep-link", "", "kind=link".to_owned(), None),
    ];
    for req in cases {
        let what = format!("{} {:?}", req.uri(), req.headers());
        let resp = send(req).await;
        assert_eq!(resp.status(), 403, "{what}");
        let body: Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(body["error"], "csrf_check_failed", "{what}");
    }
    assert!(
        platform.scores.lock().unwrap().is_empty(),
        "no score was posted"
    );
    assert_eq!(platform.line_items.lock().unwrap().len(), 1, "no line item");
    // The tool's own page, from its own origin, passes without a token too.
    let same_origin = forged(
        "/lti/app/ags/scores",
        &with_id,
        score,
        Some(("sec-fetch-site", "same-origin")),
    );
    assert_eq!(send(same_origin).await.status(), 200);
    assert_eq!(platform.scores.lock().unwrap().len(), 1);
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn the_banner_says_what_to_type_in_each_lms_field() {
    let urls = lti_app::RegistrationUrls::new("https://tool.example/");
    let banner = urls.to_string();
    for line in [
        "  Redirect / launch URL     : https://tool.example/lti/launch",
        "  Target link URI           : https://tool.example/lti/app",
        "Canvas      : Redirect URIs = https://tool.example/lti/launch ; Target Link URI = https://tool.example/lti/app",
        "Moodle      : Tool URL = https://tool.example/lti/app ; Redirection URI(s) = https://tool.example/lti/launch",
        "Open edX    : Tool Launch URL = https://tool.example/lti/launch (one URL for redirect and target)",
        "lands on https://tool.example/lti/app",
    ] {
        assert!(banner.contains(line), "missing {line:?} in {banner}");
    }
    assert!(!banner.contains("/lti/register"));
    let banner = urls.with_register("https://tool.example/").to_string();
    assert!(
        banner.contains("  Registration URL          : https://tool.example/lti/register"),
        "{banner}"
    );
}

#[tokio::test]
async fn a_link_with_another_launch_id_never_replaces_the_browsers_own_launch() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let mine = param(&launch_as(&tool, &platform, LEARNER).await, "lti_launch_id").unwrap();
    let theirs = param(
        &launch_as(&tool, &platform, INSTRUCTOR).await,
        "lti_launch_id",
    )
    .unwrap();
    let visit = |id: &str, cookie: Option<String>| {
        let mut req = Request::get(format!("{}/lti/app?lti_launch_id={id}", tool.url))
            .header(http::header::ACCEPT, "application/json");
        if let Some(c) = cookie {
            req = req.header(http::header::COOKIE, c);
        }
        send(req.body(Bytes::new()).unwrap())
    };
    let fixed = visit(&theirs, Some(format!("lti_launch={mine}"))).await;
    assert_eq!(fixed.status(), 403);
    let body: Value = serde_json::from_slice(fixed.body()).unwrap();
    assert_eq!(body["error"], "launch_id_not_bound");
    // The browser's own launches (the cookie keeps its recent ones) still work,
    // and so does a browser without the cookie (platform-storage launches).
    let both = format!("lti_launch={mine}.{theirs}");
    assert_eq!(visit(&theirs, Some(both)).await.status(), 200);
    assert_eq!(visit(&theirs, None).await.status(), 200);
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn lti11_learners_get_no_outcomes_form_and_a_saved_target_is_rechecked_on_post() {
    let platform = start_platform().await;
    let dir = temp_dir("lti11-roles");
    let storage = format!("sqlite://{}", dir.join("lti.db").display());
    let tool = start_tool_on(&platform, &storage, "").await;
    let url = format!("{}/lti11/launch", tool.url);
    let launch = |user: &str, role: &str| {
        lti11::LaunchRequest::new("rl-11")
            .param("user_id", user)
            .roles(&[role])
            .outcomes(
                format!("{}/outcomes", platform.base),
                format!("sourced-{user}"),
            )
            .sign(
                &url,
                &lti11::Credentials::new("consumer-1", "secret-1"),
                now(),
            )
            .unwrap()
    };
    let learner = lti11_launch(&url, launch("l1", "Learner").form_body()).await;
    assert_eq!(learner.status(), 200);
    let page = text(&learner);
    assert!(page.contains("id=\"outcomes-instructors-only\""), "{page}");
    assert!(!page.contains("<form id=\"outcomes\""), "{page}");

    // An instructor's saved target whose roles no longer say instructor (as a
    // target saved before the check would): the post is refused.
    let teacher = lti11_launch(&url, launch("t1", "Instructor").form_body()).await;
    let action = action_of(&tool, &text(&teacher), "/lti11/outcomes");
    let id = param(&action, "outcome_id").unwrap();
    let cipher =
        lti_registry::SecretCipher::aes256gcm(lti_app::app_key(&tool.keys_dir).unwrap(), vec![])
            .unwrap();
    let store = lti_store::open(&storage, &lti_store::OpenOptions::new(cipher))
        .await
        .unwrap();
    let mut saved = store.launch_data.load_launch(&id).await.unwrap();
    assert_eq!(saved["roles"], "Instructor");
    saved["roles"] = "Learner".into();
    let expires = i64::try_from(now()).unwrap() + 600;
    store
        .launch_data
        .save_launch(&id, saved, expires)
        .await
        .unwrap();
    let refused = post_form(&action, "score=1.0", Some("application/json")).await;
    assert_eq!(refused.status(), 403);
    let body: Value = serde_json::from_slice(refused.body()).unwrap();
    assert_eq!(body["error"], "insufficient_role");
    assert!(platform.outcomes.lock().unwrap().is_empty());
    tool.stop().await.unwrap();
}

/// Issue 26: an LTI 1.1 launch through `lti serve` records a visit and
/// answers `303` to its resource page; another user launching in the same
/// browser ends the previous visit; unknown and foreign visits get 404 and
/// 403; a frame that lost the cookie is offered a new window.
#[tokio::test]
async fn lti11_launches_become_visits_with_a_resource_page_and_one_user_per_browser() {
    use http::header::{COOKIE, LOCATION, SET_COOKIE};
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let url = format!("{}/lti11/launch", tool.url);
    let signed = |user: &str, name: &str| {
        lti11::LaunchRequest::new("rl-visits")
            .param("user_id", user)
            .param("lis_person_name_full", name)
            .param("resource_link_title", "Week <2> reading")
            .param("tool_consumer_instance_guid", "lms-a.example")
            .roles(&["Learner"])
            .context("ctx-visits", "Logic")
            .sign(
                &url,
                &lti11::Credentials::new("consumer-1", "secret-1"),
                now(),
            )
            .unwrap()
            .form_body()
    };
    let get_with = |location: String, cookie: Option<String>| async move {
        let mut req = http::Request::get(location).header(http::header::ACCEPT, "text/html");
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        send(req.body(bytes::Bytes::new()).unwrap()).await
    };
    let launch_with = |body: String, cookie: Option<String>| {
        let url = url.clone();
        async move {
            let mut req = http::Request::post(url).header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            );
            if let Some(c) = cookie {
                req = req.header(COOKIE, c);
            }
            let resp = send(req.body(bytes::Bytes::from(body)).unwrap()).await;
            assert_eq!(resp.status(), 303, "{}", text(&resp));
            let location = resp.headers()[LOCATION].to_str().unwrap().to_owned();
            let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
            (location, set.split(';').next().unwrap().to_owned(), set)
        }
    };

    let (alice_page, cookie, set) = launch_with(signed("u-alice", "Alice"), None).await;
    assert!(
        alice_page.starts_with(&format!("{}/lti11/visits/", tool.url)),
        "{alice_page}"
    );
    assert!(cookie.starts_with("__Host-lti11_session="), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=None"),
        "{set}"
    );
    let page = get_with(alice_page.clone(), Some(cookie.clone())).await;
    assert_eq!(page.status(), 200, "{}", text(&page));
    let body = text(&page);
    assert!(body.contains("id=\"display-name\">Alice</td>"), "{body}");
    assert!(
        body.contains("id=\"resource-title\">Week &lt;2&gt; reading</td>"),
        "{body}"
    );
    assert!(body.contains("LTI 1.1 launch inspector"), "{body}");

    // Bob in the same browser: Alice's visit ends.
    let (bob_page, bob_cookie, _) = launch_with(signed("u-bob", "Bob"), Some(cookie.clone())).await;
    assert_eq!(bob_cookie, cookie, "the browser keeps its session");
    let ended = get_with(alice_page.clone(), Some(cookie.clone())).await;
    assert_eq!(ended.status(), 403);
    assert!(text(&ended).contains("visit_ended"), "{}", text(&ended));
    let bob_view = get_with(bob_page.clone(), Some(cookie.clone())).await;
    assert_eq!(bob_view.status(), 200);
    assert!(text(&bob_view).contains("id=\"display-name\">Bob</td>"));

    // Another browser's visit, an unknown one.
    let (_, eve_cookie, _) = launch_with(signed("u-eve", "Eve"), None).await;
    let foreign = get_with(bob_page.clone(), Some(eve_cookie.clone())).await;
    assert_eq!(foreign.status(), 403);
    assert!(text(&foreign).contains("visit_foreign"));
    let unknown = get_with(
        format!("{}/lti11/visits/{}", tool.url, "A".repeat(43)),
        Some(eve_cookie),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    assert!(text(&unknown).contains("visit_not_found"));

    // A frame without the cookie: the new-window offer, whose form hands the
    // visit over once.
    let (carol_page, carol_cookie, _) = launch_with(signed("u-carol", "Carol"), None).await;
    let offer = get_with(carol_page.clone(), None).await;
    assert_eq!(offer.status(), 200);
    let offer = text(&offer);
    assert!(offer.contains("target=\"_blank\""), "{offer}");
    let action = format!("{carol_page}/new-window");
    assert!(offer.contains(&action), "{offer}");
    let handed = post_form(&action, "", None).await;
    assert_eq!(handed.status(), 303);
    assert!(
        handed.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with(&carol_cookie)
    );
    assert_eq!(post_form(&action, "", None).await.status(), 403);
    tool.stop().await.unwrap();
}
