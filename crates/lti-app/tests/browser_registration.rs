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

#[tokio::test]
async fn the_admin_page_registers_a_tool_and_opens_the_course_on_close() {
    let Some(driver_bin) = chromedriver() else {
        let why = "browser_registration: skipped: chromedriver not found";
        assert!(
            std::env::var("LTI_BROWSER_TEST").as_deref() != Ok("1"),
            "{why}; LTI_BROWSER_TEST=1 requires it"
        );
        eprintln!("{why}");
        return;
    };
    let chromium = std::env::var("LTI_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());

    // The tool, on 127.0.0.1 (cross-site to the platform on localhost).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tool_base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/register", axum::routing::get(tool_register))
        .with_state(tool_base.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // `lti platform` with no tools.
    let dir = std::env::temp_dir().join(format!("lti-browser-dr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("platform.toml");
    std::fs::write(&config, "[platform]\n").unwrap();
    let platform = spawn_platform(config.to_str().unwrap());
    let course = platform.platform_url.clone();
    let base = course.trim_end_matches('/').to_owned();
    assert!(
        platform.banner.iter().any(|l| l.contains("/admin/tools")),
        "{:?}",
        platform.banner
    );

    let port = free_port();
    let _driver = Driver(
        Command::new(&driver_bin)
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
        let base = base.clone();
        let register_url = format!("{tool_base}/register");
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
            assert!(items.contains("Browser-registered tool"), "{items}");
            assert!(items.contains("Launch as Ada Lovelace"), "{items}");
            let url = wd.call(Method::GET, "/url", None).await.unwrap();
            assert_eq!(url.as_str().unwrap(), format!("{base}/"));
        })
    };
    let outcome = scenario.await;
    let _ = Session::new()
        .send(Method::DELETE, &session.0, None, Vec::new(), &[])
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
