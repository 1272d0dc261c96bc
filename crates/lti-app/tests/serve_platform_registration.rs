//! Our tool registers with our platform through LTI Dynamic Registration, as
//! an administrator's browser drives it: `lti platform`'s `/admin/tools` form
//! → the framed `lti serve` `/lti/register` page → its close message → the
//! course lists the tool, and a launch reaches the inspector. Both are the
//! built binary; this client follows the requests a browser makes (the
//! Chromium version, with scripts running, is `browser_registration.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod demo_support;

use demo_support::{
    Session, attr, auto_submit_form, field, href, open_launch, spawn_dr_tool, spawn_platform,
    tag_by_id, tags, unescape,
};
use hyper::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lti_serve_registers_with_lti_platform_through_the_admin_page_and_launches() {
    let dir = std::env::temp_dir().join(format!(
        "lti-serve-dr-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // A platform with no tools.
    let platform_toml = dir.join("platform.toml");
    std::fs::write(&platform_toml, "").unwrap();
    let platform = spawn_platform(platform_toml.to_str().unwrap());
    let base = platform.platform_url.clone();
    let issuer = base.trim_end_matches('/').to_owned();

    // The tool: only dynamic registration, accepting only this platform.
    let (_serve, tool) = spawn_dr_tool(&dir, &issuer, "Served inspector");
    let mut s = Session::new();
    // The platform's admin page: the form, with its CSRF token (cookie-bound).
    let admin = s.get(&format!("{base}admin/tools")).await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.body);
    let csrf = tags(&admin.body, "input")
        .into_iter()
        .find(|t| attr(t, "name").as_deref() == Some("csrf_token"))
        .and_then(|t| attr(t, "value"))
        .expect("csrf token");
    let registering = s
        .post_form(
            &format!("{base}admin/tools"),
            &[
                ("registration_url".to_owned(), format!("{tool}lti/register")),
                ("csrf_token".to_owned(), csrf),
            ],
        )
        .await;
    assert_eq!(registering.status, StatusCode::OK, "{}", registering.body);
    assert!(
        registering.body.contains("org.imsglobal.lti.close"),
        "the page listens for the close message: {}",
        registering.body
    );
    let frame = tag_by_id(&registering.body, "iframe", "registration-frame").expect("frame");
    let src = unescape(&attr(frame, "src").unwrap());
    assert!(
        src.starts_with(&format!("{tool}lti/register?openid_configuration=")),
        "{src}"
    );
    assert_eq!(attr(frame, "data-done").as_deref(), Some("/"));

    // The frame: the tool fetches the configuration, registers, and answers
    // the page that posts the close message to its parent.
    let done = s.get(&src).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("id=\"result\""), "{}", done.body);
    assert!(
        done.body.contains("org.imsglobal.lti.close")
            && done.body.contains("window.opener || window.parent"),
        "{}",
        done.body
    );

    // On the close message the page opens the course: the tool is there.
    let course = s.get(&base).await;
    assert!(course.body.contains("Served inspector"), "{}", course.body);
    let init = open_launch(&mut s, &href(&course, "launch-link-1-ada")).await;
    let form = auto_submit_form(&init.body).expect("login initiation form");
    assert_eq!(form.action, format!("{tool}lti/login"));
    assert_eq!(field(&form, "iss"), Some(issuer.as_str()));
    let client_id = field(&form, "client_id").unwrap().to_owned();
    let admin = s.get(&format!("{base}admin/tools")).await;
    assert!(
        admin.body.contains(&format!("id=\"tool-{client_id}\"")),
        "{}",
        admin.body
    );
    // The registration launches at once, without a restart.
    let pages = s.follow(init).await;
    let landing = pages.last().unwrap();
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
    assert!(
        landing.url.starts_with(&format!("{tool}lti/app")),
        "{}",
        landing.url
    );
    assert!(
        landing.body.contains("LTI launch inspector"),
        "{}",
        landing.body
    );
    assert!(landing.body.contains("Ada Lovelace"), "{}", landing.body);

    // The token is spent: opening the frame again fails with the platform's
    // refusal, and the platform lists one tool still.
    let again = s.get(&src).await;
    assert_eq!(again.status, StatusCode::BAD_GATEWAY, "{}", again.body);
    assert!(
        again
            .body
            .contains("<code id=\"error-code\">registration_token_rejected</code>"),
        "{}",
        again.body
    );
    let course = s.get(&base).await;
    assert_eq!(
        course.body.matches("class=\"resource-link\"").count(),
        1,
        "{}",
        course.body
    );
    assert!(
        !course.body.contains("id=\"deep-link-2\""),
        "{}",
        course.body
    );
    let _ = std::fs::remove_dir_all(&dir);
}
