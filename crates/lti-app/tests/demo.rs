//! `lti demo` starts, both health checks answer, and scripted launches through
//! it (a cookie-keeping client following the real redirects and
//! self-submitting forms) reach the inspector; the dev platform's refusals
//! carry their codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod demo_support;

use base64::Engine as _;
use demo_support::{
    Session, attr, auto_submit_form, field, href, open_launch, spawn_demo, spawn_platform,
    tag_by_id, unescape,
};
use hyper::StatusCode;

/// One demo process serves every scenario (starting it generates two RSA keys,
/// which takes a while in a debug build on a busy machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lti_demo_end_to_end_over_http() {
    let mut demo = spawn_demo();
    scripted_instructor_launch_reaches_the_inspector(&mut demo).await;
    lti11_launch_reaches_the_lti11_inspector(&demo).await;
    deep_linking_adds_a_graded_link_that_a_learner_can_launch(&demo).await;
    platform_refusals_carry_their_codes(&demo).await;
    assert!(demo.is_running(), "the demo survived every scenario");
}

async fn scripted_instructor_launch_reaches_the_inspector(demo: &mut demo_support::Demo) {
    assert!(
        demo.platform_url.starts_with("http://localhost:"),
        "{:?}",
        demo.banner
    );
    assert!(
        demo.tool_url.starts_with("http://127.0.0.1:"),
        "{:?}",
        demo.banner
    );
    let mut s = Session::new();

    // Both health checks answer.
    for url in [
        format!("{}healthz", demo.platform_url),
        format!("{}healthz", demo.tool_url),
    ] {
        let h = s.get(&url).await;
        assert_eq!(h.status, StatusCode::OK, "{url}: {}", h.body);
        let v: serde_json::Value = serde_json::from_str(&h.body).unwrap();
        assert_eq!(v["status"], "ok", "{url}: {}", h.body);
    }

    // The course page offers the tool registered at start-up.
    let course = s.get(&demo.platform_url).await;
    assert_eq!(course.status, StatusCode::OK);
    assert!(
        course.body.contains("lti-rs launch inspector"),
        "{}",
        course.body
    );
    let launch_url = href(&course, "launch-link-1-ada");

    // Platform launch button → login initiation form (auto-submitting).
    let init = open_launch(&mut s, &launch_url).await;
    assert_eq!(init.status, StatusCode::OK, "{}", init.body);
    let form = auto_submit_form(&init.body).expect("login initiation form");
    assert_eq!(form.action, format!("{}lti/login", demo.tool_url));
    assert_eq!(
        field(&form, "iss"),
        Some(demo.platform_url.trim_end_matches('/'))
    );
    // The tool registered itself through Dynamic Registration at start-up:
    // the platform chose the client id and the deployment.
    let (client_id, deployment_id) = demo.registration();
    assert!(
        client_id.len() >= 16 && deployment_id.len() >= 12,
        "{:?}",
        demo.banner
    );
    assert_eq!(field(&form, "client_id"), Some(client_id.as_str()));
    assert_eq!(
        field(&form, "lti_deployment_id"),
        Some(deployment_id.as_str())
    );
    // Framed, the launch offers the course page's Platform Storage; the page that
    // frames it carries the postMessage handler.
    assert_eq!(field(&form, "lti_storage_target"), Some("_parent"));
    let framing = s.get(&launch_url).await;
    assert!(
        framing.body.contains("lti.put_data") && framing.body.contains("\"tool-frame\""),
        "{}",
        framing.body
    );
    // The platform's pages run only their own inline scripts, each by hash; the
    // course page has none.
    let policy = |page: &demo_support::Page| {
        page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        policy(&course),
        "script-src 'none'; object-src 'none'; base-uri 'none'"
    );
    assert_eq!(policy(&framing), own_script_policy(&framing));
    // In a window of its own there is no storage frame to offer.
    let window = href(&framing, "open-window");
    let alone = s.get(&window).await;
    let alone_form = auto_submit_form(&alone.body).expect("login initiation form");
    assert_eq!(field(&alone_form, "lti_storage_target"), None);
    // Canvas-like: the storage in a hidden frame named post_message_forwarding,
    // loaded before the tool's frame, and named as the storage target.
    let forwarding = s.get(&format!("{launch_url}&storage=forwarding")).await;
    let storage_frame =
        tag_by_id(&forwarding.body, "iframe", "storage-frame").expect("hidden storage frame");
    assert_eq!(
        attr(storage_frame, "name").as_deref(),
        Some("post_message_forwarding")
    );
    assert!(
        forwarding.body.find("id=\"storage-frame\"") < forwarding.body.find("id=\"tool-frame\""),
        "{}",
        forwarding.body
    );
    assert!(
        !forwarding.body.contains("lti.put_data"),
        "the page itself does not answer"
    );
    let tool_src = tag_by_id(&forwarding.body, "iframe", "tool-frame")
        .and_then(|f| attr(f, "src"))
        .unwrap();
    let framed = s
        .get(&demo_support::resolve(&forwarding.url, &tool_src))
        .await;
    let framed_form = auto_submit_form(&framed.body).expect("login initiation form");
    assert_eq!(
        field(&framed_form, "lti_storage_target"),
        Some("post_message_forwarding")
    );
    let frame_page = s.get(&format!("{}storage-frame", demo.platform_url)).await;
    assert_eq!(frame_page.status, StatusCode::OK);
    assert!(
        frame_page
            .body
            .contains("window.parent.document.getElementById(frameId)"),
        "{}",
        frame_page.body
    );
    let bad = s.get(&format!("{launch_url}&storage=elsewhere")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    let platform_host = "localhost";
    assert_eq!(
        s.cookies(platform_host)
            .get("lti_dev_platform_user")
            .map(String::as_str),
        Some("ada"),
        "the launch button signs the user in"
    );

    // → tool /lti/login → platform /auth → form post to tool /lti/launch → inspector.
    let pages = s.follow(init).await;
    let urls: Vec<&str> = pages.iter().map(|p| p.url.as_str()).collect();
    // Offered Platform Storage, the tool answers the page that stores the state
    // in the course page (by script) and goes on to the platform; this client runs
    // no script, keeps the state cookie and follows the page's link.
    let login_page = pages
        .iter()
        .find(|p| p.url.starts_with(&format!("{}lti/login", demo.tool_url)))
        .unwrap_or_else(|| panic!("{urls:?}"));
    assert_eq!(login_page.status, StatusCode::OK, "{}", login_page.body);
    let storage = tag_by_id(&login_page.body, "main", "lti-storage").expect("storage login page");
    assert_eq!(
        attr(storage, "data-origin").as_deref(),
        Some(demo.platform_url.trim_end_matches('/'))
    );
    assert_eq!(attr(storage, "data-target").as_deref(), Some("_parent"));
    assert!(
        urls.iter()
            .any(|u| u.starts_with(&format!("{}auth", demo.platform_url))),
        "{urls:?}"
    );
    assert!(
        urls.iter()
            .any(|u| u.starts_with(&format!("{}lti/launch", demo.tool_url))),
        "{urls:?}"
    );
    let landing = pages.last().unwrap();
    assert_eq!(
        landing.status,
        StatusCode::OK,
        "{}: {}",
        landing.url,
        landing.body
    );
    assert!(
        landing
            .url
            .starts_with(&format!("{}lti/app", demo.tool_url)),
        "{}",
        landing.url
    );
    assert!(
        landing.body.contains("LTI launch inspector"),
        "{}",
        landing.body
    );
    assert!(landing.body.contains("Ada Lovelace"), "{}", landing.body);
    let verdict = landing
        .body
        .split("id=\"instructor-verdict\">")
        .nth(1)
        .unwrap();
    assert!(verdict.starts_with("<strong class=\"ok\">yes"), "{verdict}");
    assert!(landing.body.contains("LtiResourceLinkRequest"));
    assert!(demo.is_running());
}

/// The policy a dev-platform page with one inline script should carry: that
/// script allowed by its SHA-256, nothing else.
fn own_script_policy(page: &demo_support::Page) -> String {
    let script = page
        .body
        .split("<script>")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .expect("an inline script");
    let hash = base64::engine::general_purpose::STANDARD
        .encode(ring::digest::digest(&ring::digest::SHA256, script.as_bytes()).as_ref());
    format!("script-src 'sha256-{hash}'; object-src 'none'; base-uri 'none'")
}

/// The demo's LTI 1.1 link: an OAuth 1.0a-signed form the tool verifies with
/// the consumer secret the demo registered.
async fn lti11_launch_reaches_the_lti11_inspector(demo: &demo_support::Demo) {
    let mut s = Session::new();
    let course = s.get(&demo.platform_url).await;
    assert!(
        course.body.contains("lti-rs launch inspector (LTI 1.1)"),
        "{}",
        course.body
    );
    let init = open_launch(&mut s, &href(&course, "launch-link-2-grace")).await;
    let form = auto_submit_form(&init.body).expect("signed LTI 1.1 form");
    assert_eq!(form.action, format!("{}lti11/launch", demo.tool_url));
    // Its submitting script is one of the platform's own: allowed by hash.
    assert_eq!(
        init.headers["content-security-policy"].to_str().unwrap(),
        own_script_policy(&init)
    );
    assert_eq!(
        field(&form, "oauth_consumer_key"),
        Some("lti-demo-consumer")
    );
    assert_eq!(
        field(&form, "lti_message_type"),
        Some("basic-lti-launch-request")
    );
    let user_id = field(&form, "user_id").unwrap();
    assert!(
        !user_id.is_empty() && user_id != "grace",
        "pseudonymous: {user_id}"
    );
    let pages = s.follow(init).await;
    let landing = pages.last().unwrap();
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
    assert!(
        landing.body.contains("LTI 1.1 launch inspector"),
        "{}",
        landing.body
    );
    assert!(landing.body.contains("Grace Hopper"), "{}", landing.body);

    // A tampered form is refused by the tool (the signature covers every field).
    let mut tampered = form.clone();
    for (k, v) in &mut tampered.fields {
        if k == "roles" {
            *v = "Instructor".to_owned();
        }
    }
    let refused = s.post_form(&tampered.action, &tampered.fields).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("<code id=\"error-code\">bad_signature</code>"),
        "{}",
        refused.body
    );
}

async fn deep_linking_adds_a_graded_link_that_a_learner_can_launch(demo: &demo_support::Demo) {
    let mut s = Session::new();
    let course = s.get(&demo.platform_url).await;
    let dl = open_launch(&mut s, &href(&course, "deep-link-1")).await;
    let pages = s.follow(dl).await;
    let picker_page = pages.last().unwrap();
    assert!(
        picker_page.body.contains("LtiDeepLinkingRequest"),
        "{}",
        picker_page.body
    );
    // The inspector's picker: choose an LTI resource link with a line item.
    let start = picker_page
        .body
        .find("<form id=\"picker\"")
        .expect("picker form");
    let form_html = &picker_page.body[start..];
    let form_tag = demo_support::tags(form_html, "form")[0];
    let action = demo_support::resolve(&picker_page.url, &attr(form_tag, "action").unwrap());
    let returned = s
        .post_form(
            &action,
            &[
                ("kind".to_owned(), "ltiResourceLink".to_owned()),
                ("title".to_owned(), "Quiz <1>".to_owned()),
            ],
        )
        .await;
    let pages = s.follow(returned).await;
    let result = pages.last().unwrap();
    assert!(
        result
            .url
            .starts_with(&format!("{}deep_link_return", demo.platform_url)),
        "{}",
        result.url
    );
    assert_eq!(result.status, StatusCode::OK, "{}", result.body);
    assert!(result.body.contains("Added 1 item(s)"), "{}", result.body);
    assert!(
        result
            .body
            .contains("Quiz &lt;1&gt; (LTI resource link, graded)"),
        "{}",
        result.body
    );

    // The course now lists it, escaped, with a line item in the grade book.
    let course = s.get(&demo.platform_url).await;
    assert!(
        course.body.contains("<strong>Quiz &lt;1&gt;</strong>"),
        "{}",
        course.body
    );
    assert!(
        course.body.contains("graded, out of 100"),
        "{}",
        course.body
    );
    let book = s.get(&format!("{}gradebook", demo.platform_url)).await;
    assert!(book.body.contains("id=\"lineitem-"), "{}", book.body);

    // A learner launches it: the inspector names the learner and shows the AGS line item.
    let init = open_launch(&mut s, &href(&course, "launch-link-3-alan")).await;
    let pages = s.follow(init).await;
    let landing = pages.last().unwrap();
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
    assert!(landing.body.contains("Alan Turing"), "{}", landing.body);
    let claims = unescape(landing.body.split("<pre id=\"claims\">").nth(1).unwrap());
    assert!(claims.contains("\"lineitem\""), "{claims}");
    assert!(claims.contains("Quiz <1>"), "{claims}");
}

async fn platform_refusals_carry_their_codes(demo: &demo_support::Demo) {
    let mut s = Session::new();
    let base = demo.platform_url.clone();

    let unknown = s
        .get(&format!("{base}launch?link=link-1&user=mallory"))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown
            .body
            .contains("<code id=\"error-code\">unknown_user</code>"),
        "{}",
        unknown.body
    );

    let link = s.get(&format!("{base}launch?link=link-99&user=ada")).await;
    assert_eq!(link.status, StatusCode::NOT_FOUND);
    assert!(link.body.contains(">unknown_link<"), "{}", link.body);

    let (client_id, _) = demo.registration();
    let learner_dl = s
        .get(&format!("{base}launch?tool={client_id}&user=alan"))
        .await;
    assert_eq!(learner_dl.status, StatusCode::FORBIDDEN);
    assert!(
        learner_dl.body.contains(">instructor_only<"),
        "{}",
        learner_dl.body
    );

    let neither = s.get(&format!("{base}launch?user=ada")).await;
    assert_eq!(neither.status, StatusCode::BAD_REQUEST);
    assert!(
        neither.body.contains(">invalid_launch<"),
        "{}",
        neither.body
    );

    // Switching the current user between the launch and the authorization
    // request: the platform refuses (login_hint names Ada, Alan is signed in)
    // and posts the OIDC error back to the tool.
    let init = open_launch(&mut s, &format!("{base}launch?link=link-1&user=ada")).await;
    let form = auto_submit_form(&init.body).unwrap();
    let login = s
        .post_form(
            &demo_support::resolve(&init.url, &form.action),
            &form.fields,
        )
        .await;
    // (The framed login offers Platform Storage: the way on is the page's link.)
    let to_auth = match tag_by_id(&login.body, "a", "lti-continue").and_then(|a| attr(a, "href")) {
        Some(href) => demo_support::resolve(&login.url, &href),
        None => panic!(
            "the tool's login answers with the storage page: {} {}",
            login.status, login.body
        ),
    };
    assert!(to_auth.starts_with(&format!("{base}auth?")), "{to_auth}");
    let switched = s.get(&format!("{base}switch?user=alan")).await;
    assert_eq!(switched.status, StatusCode::SEE_OTHER);
    let refused = s.get(&to_auth).await;
    assert_eq!(refused.status, StatusCode::OK, "{}", refused.body);
    let back = auto_submit_form(&refused.body).expect("error posted back to the tool");
    assert_eq!(back.action, format!("{}lti/launch", demo.tool_url));
    assert_eq!(field(&back, "error"), Some("login_required"));
    assert!(field(&back, "id_token").is_none());
    assert!(field(&back, "state").is_some());

    // Nobody signed in at all: login_required too.
    let mut anonymous = Session::new();
    let refused = anonymous.get(&to_auth).await;
    let back = auto_submit_form(&refused.body).expect("error posted back to the tool");
    assert_eq!(field(&back, "error"), Some("login_required"));

    // The NRPS endpoint wants a bearer token.
    let nrps = s.get(&format!("{base}lti/course-101/memberships")).await;
    assert_eq!(nrps.status, StatusCode::UNAUTHORIZED, "{}", nrps.body);
}

/// `lti platform --config FILE`: the configured tool is on the course page and
/// launches go to its login URL; JWKS and token endpoint answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lti_platform_serves_the_configured_tool() {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/lti-app-platform/platform.toml"
    );
    let platform = spawn_platform(config);
    let base = platform.platform_url.clone();
    assert!(
        base.starts_with("http://localhost:"),
        "{:?}",
        platform.banner
    );
    assert!(
        platform
            .banner
            .iter()
            .any(|l| l.contains(&format!("{base}auth"))),
        "the banner names the authorization endpoint: {:?}",
        platform.banner
    );
    let mut s = Session::new();
    let health = s.get(&format!("{base}healthz")).await;
    assert_eq!(health.status, StatusCode::OK);

    let course = s.get(&base).await;
    assert!(
        course.body.contains("lti serve on 127.0.0.1:3000"),
        "{}",
        course.body
    );
    let init = open_launch(&mut s, &href(&course, "launch-link-1-grace")).await;
    let form = auto_submit_form(&init.body).expect("login initiation form");
    assert_eq!(form.action, "http://127.0.0.1:3000/lti/login");
    assert_eq!(field(&form, "client_id"), Some("dev-tool"));
    assert_eq!(field(&form, "iss"), Some(base.trim_end_matches('/')));
    assert_eq!(
        field(&form, "target_link_uri"),
        Some("http://127.0.0.1:3000/lti/app")
    );
    let hint = field(&form, "login_hint").unwrap();
    assert!(
        !hint.is_empty() && hint != "grace",
        "a pseudonymous login_hint: {hint}"
    );

    let jwks = s.get(&format!("{base}.well-known/jwks.json")).await;
    assert_eq!(jwks.status, StatusCode::OK);
    let set: serde_json::Value = serde_json::from_str(&jwks.body).unwrap();
    assert_eq!(set["keys"][0]["kty"], "RSA", "{}", jwks.body);
    assert!(set["keys"][0].get("d").is_none(), "public key only");

    let token = s
        .post_form(
            &format!("{base}token"),
            &[
                ("grant_type".to_owned(), "client_credentials".to_owned()),
                (
                    "client_assertion_type".to_owned(),
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ),
                ("client_assertion".to_owned(), "not.a.jwt".to_owned()),
                (
                    "scope".to_owned(),
                    "https://purl.imsglobal.org/spec/lti-ags/scope/score".to_owned(),
                ),
            ],
        )
        .await;
    let err: serde_json::Value = serde_json::from_str(&token.body).unwrap();
    assert_eq!(token.status, StatusCode::UNAUTHORIZED, "{}", token.body);
    assert_eq!(err["error"], "invalid_client", "{}", token.body);
}
