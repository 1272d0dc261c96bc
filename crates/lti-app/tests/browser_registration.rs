//! A real-browser test of the dev platform's `/admin/tools` page: headless
//! Chromium (through chromedriver's W3C WebDriver API) against the `lti
//! platform` binary, with a small tool on `127.0.0.1` that implements the tool
//! side of LTI Dynamic Registration (its `/register` page fetches the
//! configuration, posts its metadata with the token, then posts
//! `org.imsglobal.lti.close` to its parent).
//!
//! The administrator types the tool's registration URL and submits; the page
//! frames the tool, the platform's close-message listener (an inline script
//! allowed by the page's `Content-Security-Policy` hash) hears the tool and
//! opens the course, where the tool now has launch buttons.
//!
//! Skipped (with the reason printed) when chromedriver is not installed,
//! unless `LTI_BROWSER_TEST=1`. `LTI_CHROMEDRIVER` and `LTI_CHROMIUM` override
//! the binaries (`chromedriver` on PATH, `/usr/bin/chromium`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod demo_support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::response::Html;
use demo_support::{Session, spawn_platform};
use hyper::Method;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn chromedriver() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LTI_CHROMEDRIVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("chromedriver"))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver, killed on drop.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver session's URL; every call opens its own HTTP client, so the
/// scenario can run in a task and the session still be deleted if it panics.
#[derive(Clone)]
struct Wd(String);

impl Wd {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let (ct, bytes) = match &body {
            Some(b) => (Some("application/json"), serde_json::to_vec(b).unwrap()),
            None => (None, Vec::new()),
        };
        let url = format!("{}{path}", self.0);
        let resp = Session::new().send(method, &url, ct, bytes, &[]).await;
        let v: Value = serde_json::from_str(&resp.body).map_err(|e| e.to_string())?;
        if resp.status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(format!("{}: {}", resp.status, v["value"]))
        }
    }

    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self
                .call(
                    Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            match found {
                Ok(v) => return v[ELEMENT].as_str().unwrap().to_owned(),
                Err(e) if Instant::now() >= deadline => {
                    let source = self.call(Method::GET, "/source", None).await;
                    panic!("{css:?} not found within {WAIT:?} ({e}): {source:?}");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    async fn text(&self, css: &str) -> String {
        let el = self.find(css).await;
        let v = self
            .call(Method::GET, &format!("/element/{el}/text"), None)
            .await
            .unwrap();
        v.as_str().unwrap_or_default().to_owned()
    }
}

/// The test tool's `/register`: the tool side of Dynamic Registration, done
/// server-side, then the close message.
async fn tool_register(
    State(base): State<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Html<String> {
    let mut http = Session::new();
    let config = http.get(&q["openid_configuration"]).await;
    let config: Value = serde_json::from_str(&config.body).unwrap();
    let host = base.trim_start_matches("http://");
    let metadata = json!({
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": format!("{base}/login"),
        "redirect_uris": [format!("{base}/launch")],
        "client_name": "Browser-registered tool",
        "jwks_uri": format!("{base}/jwks"),
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        "https://purl.imsglobal.org/spec/lti-tool-configuration": {
            "domain": host,
            "target_link_uri": format!("{base}/launch"),
            "claims": ["iss", "sub", "name"],
            "messages": [{"type": "LtiResourceLinkRequest"}]
        }
    });
    let auth = format!("Bearer {}", q["registration_token"]);
    let answer = http
        .send(
            Method::POST,
            config["registration_endpoint"].as_str().unwrap(),
            Some("application/json"),
            metadata.to_string().into_bytes(),
            &[("authorization", &auth)],
        )
        .await;
    if answer.status.as_u16() != 201 {
        return Html(format!(
            "<p id=\"refused\">refused: {}</p>",
            answer.body.replace('<', "&lt;")
        ));
    }
    Html(
        "<p id=\"registered\">Registered.</p><script>(window.opener || window.parent).postMessage({subject: 'org.imsglobal.lti.close'}, '*');</script>"
            .to_owned(),
    )
}

/// chromedriver, or `None` (the test is skipped) when it is missing and
/// `LTI_BROWSER_TEST` is not `1`.
fn driver_or_skip() -> Option<PathBuf> {
    let Some(driver_bin) = chromedriver() else {
        let why = "browser_registration: skipped: chromedriver not found";
        assert!(
            std::env::var("LTI_BROWSER_TEST").as_deref() != Ok("1"),
            "{why}; LTI_BROWSER_TEST=1 requires it"
        );
        eprintln!("{why}");
        return None;
    };
    Some(driver_bin)
}

/// A fresh directory for one test's files.
fn temp_dir(what: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "lti-browser-dr-{what}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `lti platform` with no tools; its base URL (no trailing slash).
fn start_platform(dir: &std::path::Path) -> (demo_support::Demo, String) {
    let config = dir.join("platform.toml");
    std::fs::write(&config, "[platform]\n").unwrap();
    let platform = spawn_platform(config.to_str().unwrap());
    let base = platform.platform_url.trim_end_matches('/').to_owned();
    assert!(
        platform.banner.iter().any(|l| l.contains("/admin/tools")),
        "{:?}",
        platform.banner
    );
    (platform, base)
}

#[tokio::test]
async fn the_admin_page_registers_a_tool_and_opens_the_course_on_close() {
    let Some(driver_bin) = driver_or_skip() else {
        return;
    };
    // The tool, on 127.0.0.1 (cross-site to the platform on localhost).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tool_base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/register", axum::routing::get(tool_register))
        .with_state(tool_base.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = temp_dir("fake");
    let (_platform, base) = start_platform(&dir);
    chromium_registers(
        &driver_bin,
        &dir,
        &base,
        format!("{tool_base}/register"),
        "Browser-registered tool",
        false,
    )
    .await;
}

/// `lti serve` with `[dynamic_registration] enabled = true` registers with
/// `lti platform` in Chromium: the admin page frames `/lti/register`, hears
/// its close message and opens the course; Ada's launch shows the inspector.
#[tokio::test]
async fn chromium_registers_lti_serve_with_lti_platform_and_launches_it() {
    let Some(driver_bin) = driver_or_skip() else {
        return;
    };
    let dir = temp_dir("serve");
    let (_platform, base) = start_platform(&dir);
    let (_serve, tool) = demo_support::spawn_dr_tool(&dir, &base, "Served inspector");
    chromium_registers(
        &driver_bin,
        &dir,
        &base,
        format!("{tool}lti/register"),
        "Served inspector",
        true,
    )
    .await;
}

/// Drives Chromium through `/admin/tools` with `register_url`, waits for the
/// course to list `name` with launch buttons and, with `launch`, launches it
/// as Ada in the course frame and waits for the inspector. Removes `dir`.
async fn chromium_registers(
    driver_bin: &std::path::Path,
    dir: &std::path::Path,
    base: &str,
    register_url: String,
    name: &'static str,
    launch: bool,
) {
    let chromium = std::env::var("LTI_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let port = free_port();
    let _driver = Driver(
        Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let profile = dir.join("profile");
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-dev-shm-usage", "--disable-background-networking",
                     format!("--user-data-dir={}", profile.display())]
        }
    }}});
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver not listening");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let session = loop {
        let started = Wd(format!("http://127.0.0.1:{port}"))
            .call(Method::POST, "/session", Some(caps.clone()))
            .await;
        match started {
            Ok(v) => {
                break Wd(format!(
                    "http://127.0.0.1:{port}/session/{}",
                    v["sessionId"].as_str().unwrap()
                ));
            }
            Err(e) if Instant::now() >= deadline => panic!("no WebDriver session: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    };

    let scenario = {
        let wd = session.clone();
        let base = base.to_owned();
        tokio::spawn(async move {
            wd.call(
                Method::POST,
                "/url",
                Some(json!({"url": format!("{base}/admin/tools")})),
            )
            .await
            .unwrap();
            assert!(wd.text("#no-tools").await.contains("No LTI 1.3 tools"));
            let field = wd.find("#registration_url").await;
            wd.call(
                Method::POST,
                &format!("/element/{field}/value"),
                Some(json!({"text": register_url})),
            )
            .await
            .unwrap();
            let submit = wd.find("#register-submit").await;
            wd.call(
                Method::POST,
                &format!("/element/{submit}/click"),
                Some(json!({})),
            )
            .await
            .unwrap();
            // The listener hears the framed tool's close message and opens the
            // course, which lists the new tool with launch buttons.
            let items = wd.text("#course-items .resource-link").await;
            assert!(items.contains(name), "{items}");
            assert!(items.contains("Launch as Ada Lovelace"), "{items}");
            let url = wd.call(Method::GET, "/url", None).await.unwrap();
            assert_eq!(url.as_str().unwrap(), format!("{base}/"));
            if launch {
                let button = wd.find("#launch-link-1-ada").await;
                wd.call(
                    Method::POST,
                    &format!("/element/{button}/click"),
                    Some(json!({})),
                )
                .await
                .unwrap();
                let frame = wd.find("#tool-frame").await;
                wd.call(
                    Method::POST,
                    "/frame",
                    Some(json!({"id": {ELEMENT: frame}})),
                )
                .await
                .unwrap();
                let page = wd.text("body").await;
                let deadline = Instant::now() + WAIT;
                let mut page = page;
                while !page.contains("LTI launch inspector") && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    page = wd.text("body").await;
                }
                assert!(page.contains("LTI launch inspector"), "{page}");
                assert!(page.contains("Ada Lovelace"), "{page}");
            }
        })
    };
    let outcome = scenario.await;
    let _ = Session::new()
        .send(Method::DELETE, &session.0, None, Vec::new(), &[])
        .await;
    let _ = std::fs::remove_dir_all(dir);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
