//! Our tool registers with our platform through LTI Dynamic Registration, as
//! an administrator's browser drives it: `lti platform`'s `/admin/tools` form
//! → the framed `lti serve` `/lti/register` page → its close message → the
//! course lists the tool, and a launch reaches the inspector. Both are the
//! built binary; this client follows the requests a browser makes (the
//! Chromium version, with scripts running, is `browser_registration.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod demo_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use demo_support::{
    Session, attr, auto_submit_form, field, href, open_launch, spawn_platform, tag_by_id, tags,
    unescape,
};
use hyper::StatusCode;

/// `lti serve`, killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts `lti serve --config FILE` and waits (bounded) for its banner.
fn spawn_serve(config: &std::path::Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lti"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .env_remove("LTI_CONFIG")
        .env_remove("LTI_BIND")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn lti serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keeps reading after start-up: a closed pipe would fail the server's
        // later output.
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + demo_support::STARTUP_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("lti serve is listening on") => return Serve(child),
            Ok(line) => seen.push(line),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("lti serve did not start ({e}): {seen:?}");
            }
        }
    }
}

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
    let port = free_port();
    let tool = format!("http://127.0.0.1:{port}/");
    let keys = demo_support::keys_dir();
    let tool_toml = dir.join("lti.toml");
    std::fs::write(
        &tool_toml,
        format!(
            r#"[server]
bind = "127.0.0.1:{port}"
public_url = "{tool}"

[storage]
url = "memory://"

[keys]
dir = "{keys}"

# The platform is on loopback.
[egress]
allow_private_addresses = true

[dynamic_registration]
enabled = true
allowed_issuers = ["{issuer}"]
name = "Served inspector"
"#,
            keys = keys.display()
        ),
    )
    .unwrap();
    let _serve = spawn_serve(&tool_toml);

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
    let _ = std::fs::remove_dir_all(&keys);
    let _ = std::fs::remove_dir_all(&dir);
}
