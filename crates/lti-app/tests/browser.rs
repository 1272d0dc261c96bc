//! A real-browser end-to-end test: headless Chromium, driven through
//! chromedriver's W3C WebDriver HTTP API, against `lti demo` (platform on
//! `localhost`, tool on `127.0.0.1`: the tool frame is cross-site).
//!
//! Scenario: open the dev platform, launch the tool as the instructor, see the
//! inspector name the instructor, run deep linking to add a graded resource
//! link, launch it as a learner, post the learner's score from the
//! instructor's AGS panel, and see the score in the platform's grade book.
//! A launch in a window of its own then sets the browser's launch cookie, and
//! a link carrying another launch's id is refused (`launch_id_not_bound`).
//! Then, in a second browser that refuses every cookie of the tool's: a launch
//! in a window of its own fails with `state_cookie_missing` (nothing else binds
//! its state), and the framed launch reaches the inspector through the course
//! page's Platform Storage (the tool's login and check pages), answered by the
//! course page itself and by a Canvas-like hidden forwarding frame. Against a
//! course page made to misbehave (a script injected over the DevTools
//! protocol), the pages fall back to the draft `org.imsglobal.` names, and a
//! storage that forgets, fails or stays silent ends the launch with
//! `state_not_bound` naming what the check page saw.
//! A PNG screenshot of each step goes to `<target dir>/browser-screenshots/`.
//!
//! The browser keeps Chromium's default cookie policy (third-party cookies
//! blocked): the launch works because the tool's state cookie is `Partitioned`
//! (CHIPS). `LTI_BROWSER_ALLOW_3P_COOKIES=1` allows third-party cookies instead
//! (for debugging a launch that fails only with the defaults).
//!
//! Skipped (with the reason printed) when chromedriver is not installed,
//! unless `LTI_BROWSER_TEST=1`, which makes a missing browser a failure.
//! `LTI_CHROMEDRIVER` and `LTI_CHROMIUM` override the binaries
//! (`chromedriver` on PATH, `/usr/bin/chromium`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod demo_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use demo_support::{STEP_TIMEOUT, Session, spawn_demo};
use hyper::Method;
use serde_json::{Value, json};

/// The longest any wait for the page may take.
const WAIT: Duration = Duration::from_secs(30);
/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A chromedriver child process, killed on drop.
struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver session (one headless Chromium), deleted on [`Browser::quit`].
struct Browser {
    http: Session,
    url: String,
    shots: PathBuf,
    step: usize,
    _profile: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        // A test that fails mid-way never ends its WebDriver session, and
        // chromedriver's exit leaves the browser running: stop every process
        // started with this profile before removing it.
        // `--` first: the pattern itself starts with dashes (without it pkill
        // printed its usage and killed nothing).
        let _ = Command::new("pkill")
            .args(["-f", "--"])
            .arg(format!("--user-data-dir={}", self.0.display()))
            .stdout(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone)]
struct Element(String);

impl Browser {
    async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.url);
        let (ct, bytes) = match &body {
            Some(b) => (Some("application/json"), serde_json::to_vec(b).unwrap()),
            None => (None, Vec::new()),
        };
        let resp = self.http.send(method, &url, ct, bytes, &[]).await;
        let v: Value = serde_json::from_str(&resp.body)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", resp.body));
        if !resp.status.is_success() {
            panic!("WebDriver {path} failed ({}): {}", resp.status, v["value"]);
        }
        v["value"].clone()
    }

    /// Like `call`, but a WebDriver error is returned instead of failing.
    async fn try_call(&mut self, method: Method, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.url);
        let resp = self
            .http
            .send(
                method,
                &url,
                Some("application/json"),
                serde_json::to_vec(&body).unwrap(),
                &[],
            )
            .await;
        let v: Value = serde_json::from_str(&resp.body).map_err(|e| e.to_string())?;
        if resp.status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(v["value"]["error"].as_str().unwrap_or("unknown").to_owned())
        }
    }

    async fn goto(&mut self, url: &str) {
        self.call(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The URL of the document in the current frame (`/url` is the top level's).
    async fn frame_url(&mut self) -> String {
        self.call(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": "return document.location.href;", "args": [] })),
        )
        .await
        .as_str()
        .unwrap()
        .to_owned()
    }

    /// Switches to the window that is not `known` (one a button just opened),
    /// waiting (bounded) for it to appear.
    async fn switch_to_new_window(&mut self, known: &Value) {
        let deadline = Instant::now() + WAIT;
        loop {
            let handles = self.call(Method::GET, "/window/handles", None).await;
            let fresh = handles
                .as_array()
                .unwrap()
                .iter()
                .find(|h| *h != known)
                .cloned();
            if let Some(handle) = fresh {
                self.call(Method::POST, "/window", Some(json!({ "handle": handle })))
                    .await;
                return;
            }
            assert!(Instant::now() < deadline, "no new window opened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Closes the current window and switches back to `window`.
    async fn close_window_back_to(&mut self, window: &Value) {
        self.call(Method::DELETE, "/window", None).await;
        self.call(Method::POST, "/window", Some(json!({ "handle": window })))
            .await;
    }

    async fn current_url(&mut self) -> String {
        self.call(Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits (bounded) until `css` matches an element.
    async fn wait_for(&mut self, css: &str) -> Element {
        self.wait_for_by("css selector", css).await
    }

    async fn wait_for_by(&mut self, using: &str, value: &str) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            match self
                .try_call(
                    Method::POST,
                    "/element",
                    json!({ "using": using, "value": value }),
                )
                .await
            {
                Ok(v) => return Element(v[ELEMENT].as_str().unwrap().to_owned()),
                Err(e) if e == "no such element" && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    let url = self.current_url().await;
                    let source = self.call(Method::GET, "/source", None).await;
                    self.screenshot("failure").await;
                    panic!("{using} {value:?} not found within {WAIT:?} ({e}) at {url}:\n{source}");
                }
            }
        }
    }

    /// Waits (bounded) until the element matching `css` has text containing `needle`.
    async fn wait_for_text(&mut self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let el = self.wait_for(css).await;
            let text = self.text(&el).await;
            if text.contains(needle) {
                return text;
            }
            if Instant::now() >= deadline {
                self.screenshot("failure").await;
                panic!("{css:?} never showed {needle:?} within {WAIT:?}; last text: {text:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn text(&mut self, el: &Element) -> String {
        match self
            .try_call(Method::GET, &format!("/element/{}/text", el.0), json!({}))
            .await
        {
            Ok(v) => v.as_str().unwrap_or("").to_owned(),
            Err(_) => String::new(),
        }
    }

    async fn click(&mut self, css: &str) {
        let el = self.wait_for(css).await;
        self.call(
            Method::POST,
            &format!("/element/{}/click", el.0),
            Some(json!({})),
        )
        .await;
    }

    async fn fill(&mut self, css: &str, text: &str) {
        let el = self.wait_for(css).await;
        self.call(
            Method::POST,
            &format!("/element/{}/clear", el.0),
            Some(json!({})),
        )
        .await;
        self.call(
            Method::POST,
            &format!("/element/{}/value", el.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Switches into the `<iframe>` matching `css` (waiting for it).
    async fn enter_frame(&mut self, css: &str) {
        let el = self.wait_for(css).await;
        self.call(
            Method::POST,
            "/frame",
            Some(json!({ "id": { ELEMENT: el.0 } })),
        )
        .await;
    }

    async fn leave_frames(&mut self) {
        self.call(Method::POST, "/frame", Some(json!({ "id": null })))
            .await;
    }

    /// Saves a numbered PNG screenshot of the viewport.
    async fn screenshot(&mut self, name: &str) -> PathBuf {
        self.step += 1;
        let b64 = self.call(Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let path = self.shots.join(format!("{:02}-{name}.png", self.step));
        std::fs::write(&path, png).unwrap();
        path
    }

    async fn quit(mut self) {
        let url = self.url.clone();
        let _ = self
            .http
            .send(Method::DELETE, &url, None, Vec::new(), &[])
            .await;
    }
}

async fn start_driver(driver: &Path) -> Driver {
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", driver.display()));
    let d = Driver {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let mut http = Session::new();
    let deadline = Instant::now() + STEP_TIMEOUT;
    // First wait until it accepts connections (the client panics on refusal).
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver not listening within {STEP_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        let ready = tokio::time::timeout(Duration::from_secs(2), async {
            let url = format!("{}/status", d.base);
            let r = http.send(Method::GET, &url, None, Vec::new(), &[]);
            r.await
        })
        .await;
        if let Ok(page) = ready
            && serde_json::from_str::<Value>(&page.body)
                .ok()
                .and_then(|v| v["value"]["ready"].as_bool())
                == Some(true)
        {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver not ready within {STEP_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A headless Chromium session; `block_cookies` is a content-setting pattern
/// pair whose cookies the browser refuses: `"{origin},*"` everywhere, or
/// `"{origin},{top-level origin}"` only in pages under that top level.
async fn new_browser(
    driver: &Driver,
    chromium: &str,
    shots: PathBuf,
    block_cookies: Option<String>,
) -> Browser {
    let profile = std::env::temp_dir().join(format!(
        "lti-browser-test-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&profile).unwrap();
    // Chromium's defaults block third-party cookies, and the tool's state
    // cookie is third-party inside the platform's frame (127.0.0.1 framed by
    // localhost). The test keeps those defaults: the state cookie is
    // `Secure; SameSite=None; Partitioned`, which Chromium stores in the
    // localhost partition even on plain-http loopback (a secure context).
    // LTI_BROWSER_ALLOW_3P_COOKIES=1 allows third-party cookies, for debugging.
    let mut prefs = if std::env::var("LTI_BROWSER_ALLOW_3P_COOKIES").as_deref() == Ok("1") {
        json!({
            "profile.cookie_controls_mode": 0,
            "profile.block_third_party_cookies": false
        })
    } else {
        json!({})
    };
    if let Some(pattern) = block_cookies {
        prefs["profile.content_settings.exceptions.cookies"] = json!({ pattern: { "setting": 2 } });
    }
    let caps = json!({
        "capabilities": {
            "alwaysMatch": {
                "browserName": "chrome",
                "pageLoadStrategy": "normal",
                "timeouts": { "pageLoad": 60000, "script": 30000, "implicit": 0 },
                "goog:chromeOptions": {
                    "binary": chromium,
                    "prefs": prefs,
                    "args": [
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--no-first-run",
                        "--disable-sync",
                        "--disable-dev-shm-usage",
                        "--window-size=1280,900",
                        format!("--user-data-dir={}", profile.display()),
                    ]
                }
            }
        }
    });
    let mut http = Session::new();
    let resp = http
        .send(
            Method::POST,
            &format!("{}/session", driver.base),
            Some("application/json"),
            serde_json::to_vec(&caps).unwrap(),
            &[],
        )
        .await;
    let v: Value = serde_json::from_str(&resp.body).unwrap();
    let id = v["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no WebDriver session ({}): {}", resp.status, resp.body))
        .to_owned();
    Browser {
        http,
        url: format!("{}/session/{id}", driver.base),
        shots,
        step: 0,
        _profile: TempDir(profile),
    }
}

/// How many screenshots `dir` holds (the next browser numbers on from there).
fn b_steps(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn screenshots_dir() -> PathBuf {
    // target/<profile>/lti → target/browser-screenshots
    let exe = Path::new(env!("CARGO_BIN_EXE_lti"));
    let target = exe.parent().and_then(Path::parent).unwrap();
    let dir = target.join("browser-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs in the tool's frame (WebDriver async script; `arguments[0]` is the
/// platform's origin): asks the framing page for Platform Storage capabilities,
/// stores, reads, deletes and misuses a key, and reports each reply's origin and
/// data (`null` when no reply came within a second).
const PLATFORM_STORAGE_PROBE: &str = r#"
var platform = arguments[0], done = arguments[arguments.length - 1], out = {};
function ask(msg, target) {
  return new Promise(function (resolve) {
    var timer = setTimeout(function () { window.removeEventListener('message', on); resolve(null); }, 1000);
    function on(e) {
      if (!e.data || e.data.message_id !== msg.message_id) return;
      clearTimeout(timer); window.removeEventListener('message', on);
      resolve({ origin: e.origin, data: e.data });
    }
    window.addEventListener('message', on);
    window.parent.postMessage(msg, target);
  });
}
ask({ subject: 'lti.capabilities', message_id: 'cap-1' }, '*')
  .then(function (r) { out.capabilities = r; return ask({ subject: 'lti.put_data', message_id: 'put-1', key: 'lti_state_state-123', value: 'state-123' }, platform); })
  .then(function (r) { out.put = r; return ask({ subject: 'lti.get_data', message_id: 'get-1', key: 'lti_state_state-123' }, platform); })
  .then(function (r) { out.get = r; return ask({ subject: 'org.imsglobal.lti.get_data', message_id: 'get-2', key: 'lti_state_state-123' }, platform); })
  .then(function (r) { out.prefixed = r; return ask({ subject: 'lti.get_data', message_id: 'get-3', key: 'lti_state_other' }, platform); })
  .then(function (r) { out.missing = r; return ask({ subject: 'lti.put_data', message_id: 'put-2', key: 'lti_state_state-123', value: null }, platform); })
  .then(function () { return ask({ subject: 'lti.get_data', message_id: 'get-4', key: 'lti_state_state-123' }, platform); })
  .then(function (r) { out.deleted = r; return ask({ subject: 'lti.frobnicate', message_id: 'bad-1' }, platform); })
  .then(function (r) { out.unsupported = r; return ask({ subject: 'lti.put_data', message_id: 'bad-2', value: 'x' }, platform); })
  .then(function (r) { out.no_key = r; return ask({ subject: 'lti.get_data', message_id: 'bad-3', key: 'k' }, 'https://elsewhere.example'); })
  .then(function (r) { out.wrong_origin = r; done(out); });
"#;

/// Injected (CDP `Page.addScriptToEvaluateOnNewDocument`) into the platform's
/// top-level pages, before their own scripts: a capturing `message` listener that
/// makes the course page's Platform Storage misbehave the way `MODE` says, and
/// stops the page's real handler from answering. Modes: `silent` (answers
/// nothing), `draft_only` (refuses the `lti.` names with `unsupported_subject`,
/// so only the `org.imsglobal.` draft names work), `forgetful` (stores, but
/// `get_data` answers `null`), `failing` (`get_data` answers an error).
const MISBEHAVING_PLATFORM: &str = r#"(function () {
  if (window !== window.top || location.origin !== PLATFORM) return;
  window.addEventListener('message', function (e) {
    var m = e.data;
    if (!m || typeof m !== 'object' || typeof m.subject !== 'string') return;
    function answer(fields) {
      e.stopImmediatePropagation();
      var r = { subject: m.subject + '.response', message_id: m.message_id };
      for (var k in fields) r[k] = fields[k];
      e.source.postMessage(r, e.origin);
    }
    var get = /get_data$/.test(m.subject);
    if (MODE === 'silent') e.stopImmediatePropagation();
    else if (MODE === 'draft_only' && m.subject.indexOf('lti.') === 0)
      answer({ error: { code: 'unsupported_subject', message: 'draft names only' } });
    else if (MODE === 'forgetful' && get) answer({ key: m.key, value: null });
    else if (MODE === 'failing' && get)
      answer({ error: { code: 'storage_unavailable', message: 'try later' } });
  }, true);
})();"#;

/// Makes the platform's storage misbehave (see [`MISBEHAVING_PLATFORM`]) in the
/// pages loaded from now on; returns the CDP script id for [`behave`].
async fn misbehave(b: &mut Browser, platform_origin: &str, mode: &str) -> Value {
    let source = MISBEHAVING_PLATFORM
        .replace("PLATFORM", &serde_json::to_string(platform_origin).unwrap())
        .replace("MODE", &serde_json::to_string(mode).unwrap());
    let added = b
        .call(
            Method::POST,
            "/goog/cdp/execute",
            Some(json!({ "cmd": "Page.addScriptToEvaluateOnNewDocument", "params": { "source": source } })),
        )
        .await;
    added["identifier"].clone()
}

/// Ends a [`misbehave`].
async fn behave(b: &mut Browser, identifier: Value) {
    b.call(
        Method::POST,
        "/goog/cdp/execute",
        Some(json!({ "cmd": "Page.removeScriptToEvaluateOnNewDocument", "params": { "identifier": identifier } })),
    )
    .await;
}

/// Launches course link `link` as `user` and enters the tool frame.
async fn launch(b: &mut Browser, course: &str, link: &str, user: &str) {
    b.leave_frames().await;
    b.goto(course).await;
    b.click(&format!("#launch-{link}-{user}")).await;
    b.wait_for("#launch-title").await;
    b.enter_frame("#tool-frame").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_runs_the_whole_demo_scenario() {
    let required = std::env::var("LTI_BROWSER_TEST").as_deref() == Ok("1");
    let driver_path = std::env::var_os("LTI_CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| find_on_path("chromedriver"));
    let chromium = std::env::var("LTI_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    let missing = match &driver_path {
        None => Some("chromedriver is not on PATH".to_owned()),
        Some(p) if !p.is_file() => Some(format!("{} does not exist", p.display())),
        Some(_) if !Path::new(&chromium).exists() => Some(format!("{chromium} does not exist")),
        Some(_) => None,
    };
    if let Some(reason) = missing {
        assert!(
            !required,
            "LTI_BROWSER_TEST=1 but {reason} (apt-get install -y chromium chromium-driver)"
        );
        eprintln!(
            "skipped: {reason}; install chromium and chromium-driver, or set LTI_BROWSER_TEST=1 to make this a failure"
        );
        return;
    }

    let demo = spawn_demo();
    let course = demo.platform_url.clone();
    let driver = start_driver(driver_path.as_deref().unwrap()).await;
    let shots = screenshots_dir();
    let mut b = new_browser(&driver, &chromium, shots.clone(), None).await;

    // 1. The course page.
    b.goto(&course).await;
    b.wait_for_text("#course-items", "lti-rs launch inspector")
        .await;
    b.screenshot("course").await;

    // 2. Launch as the instructor: the inspector, inside the cross-site frame, names her.
    launch(&mut b, &course, "link-1", "ada").await;
    b.wait_for_text("#instructor-verdict", "yes").await;
    b.wait_for_text("body", "Ada Lovelace").await;
    let frame_url = b.frame_url().await;
    assert!(
        frame_url.starts_with(&format!("{}lti/app", demo.tool_url)),
        "the inspector is served by the tool on 127.0.0.1: {frame_url}"
    );
    // Platform Storage (spec digest §6): the framed launch offered the course
    // page's storage, and the tool's cross-site frame talks to that page with
    // postMessage, as a cookie-less tool would.
    b.wait_for_text("#storage-target", "_parent").await;
    b.wait_for_text("#state-binding", "the state cookie").await;
    let platform_origin = course.trim_end_matches('/').to_owned();
    let storage = b
        .call(
            Method::POST,
            "/execute/async",
            Some(json!({ "script": PLATFORM_STORAGE_PROBE, "args": [platform_origin] })),
        )
        .await;
    assert_eq!(
        storage["capabilities"]["origin"], platform_origin,
        "{storage}"
    );
    let supported: Vec<&str> = storage["capabilities"]["data"]["supported_messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["subject"].as_str())
        .collect();
    assert!(
        supported.contains(&"lti.put_data") && supported.contains(&"lti.get_data"),
        "{storage}"
    );
    assert_eq!(storage["put"]["data"]["value"], "state-123", "{storage}");
    assert_eq!(storage["get"]["data"]["value"], "state-123", "{storage}");
    assert_eq!(storage["get"]["data"]["message_id"], "get-1", "{storage}");
    assert_eq!(
        storage["prefixed"]["data"]["value"], "state-123",
        "{storage}"
    );
    assert_eq!(
        storage["missing"]["data"]["value"],
        Value::Null,
        "{storage}"
    );
    assert_eq!(
        storage["deleted"]["data"]["value"],
        Value::Null,
        "{storage}"
    );
    assert_eq!(
        storage["unsupported"]["data"]["error"]["code"], "unsupported_subject",
        "{storage}"
    );
    assert_eq!(
        storage["no_key"]["data"]["error"]["code"], "bad_request",
        "{storage}"
    );
    // Addressed to another origin, the request is never delivered: no reply.
    assert_eq!(storage["wrong_origin"], Value::Null, "{storage}");
    b.leave_frames().await;
    b.screenshot("instructor-launch").await;

    // 3. Deep linking: the instructor picks a graded LTI resource link.
    b.goto(&course).await;
    b.click("#deep-link-1").await;
    b.enter_frame("#tool-frame").await;
    b.wait_for_text("#message-type", "LtiDeepLinkingRequest")
        .await;
    b.click("#picker input[value='ltiResourceLink']").await;
    b.fill("#picker input[name='title']", "Graded quiz").await;
    b.leave_frames().await;
    b.screenshot("deep-linking-picker").await;
    b.enter_frame("#tool-frame").await;
    b.click("#picker button[type='submit']").await;
    b.wait_for_text("#dl-summary", "Added 1 item(s)").await;
    b.wait_for_text("#dl-added", "Graded quiz (LTI resource link, graded)")
        .await;
    b.leave_frames().await;
    b.screenshot("deep-linking-returned").await;

    // 4. The new link is on the course page; a learner launches it.
    b.goto(&course).await;
    b.wait_for_text("#item-link-3", "Graded quiz").await;
    b.wait_for_text("#item-link-3", "graded, out of 100").await;
    b.screenshot("course-with-graded-link").await;
    launch(&mut b, &course, "link-3", "alan").await;
    b.wait_for_text("body", "Alan Turing").await;
    let verdict = b.wait_for("#instructor-verdict").await;
    assert_eq!(b.text(&verdict).await, "no");
    let sub_cell = b.wait_for("#user-sub").await;
    let learner_sub = b.text(&sub_cell).await.trim().to_owned();
    assert!(
        !learner_sub.is_empty() && learner_sub != "alan",
        "a pseudonymous sub: {learner_sub:?}"
    );
    b.leave_frames().await;
    b.screenshot("learner-launch").await;

    // 5. The instructor launches the same link and posts the learner's score from the AGS panel.
    launch(&mut b, &course, "link-3", "ada").await;
    b.wait_for_text("#instructor-verdict", "yes").await;
    b.click("a[href^='/lti/app/ags?']").await;
    b.fill("#score-user-id", &learner_sub).await;
    b.fill("#score-given", "87").await;
    b.fill("#score-maximum", "100").await;
    b.fill("#score-comment", "Well done").await;
    b.leave_frames().await;
    b.screenshot("ags-panel").await;
    b.enter_frame("#tool-frame").await;
    b.click("#score-submit").await;
    b.wait_for_text("#notice", "Posted").await;
    b.leave_frames().await;
    b.screenshot("score-posted").await;

    // 6. The platform's grade book shows it.
    b.goto(&format!("{course}gradebook")).await;
    let cell = b.wait_for_text("td[id^='grade-alan-']", "87 / 100").await;
    assert!(cell.contains("Well done"), "{cell}");
    let others = b.wait_for("td[id^='grade-grace-']").await;
    assert_eq!(b.text(&others).await, "–", "nobody else was graded");
    b.screenshot("gradebook").await;

    // Launch id fixation: a launch in a window of its own sets this browser's
    // (first-party) launch cookie; a link carrying another launch's id (here
    // Ada's framed launch from step 2) is then refused, and the browser's own
    // launch still opens.
    b.goto(&course).await;
    b.click("#launch-link-1-grace").await;
    b.wait_for("#open-window").await;
    let window = b
        .call(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": "return document.getElementById('open-window').href;", "args": [] })),
        )
        .await;
    b.goto(window.as_str().unwrap()).await;
    b.wait_for_text("#instructor-verdict", "no").await;
    let own = b.current_url().await;
    assert!(own.contains("lti_launch_id="), "{own}");
    let others = frame_url
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    b.goto(&format!("{}lti/app?{others}", demo.tool_url)).await;
    b.wait_for_text("#error-code", "launch_id_not_bound").await;
    b.screenshot("fixation-refused").await;
    b.goto(&own).await;
    b.wait_for_text("#instructor-verdict", "no").await;
    b.quit().await;

    // 7. A browser that keeps no cookie of the tool's at all (not even a
    // partitioned one): the state is bound through the course page's Platform
    // Storage instead, by the tool's login and check pages talking to it.
    let tool_origin = demo.tool_url.trim_end_matches('/').to_owned();
    let mut c = new_browser(
        &driver,
        &chromium,
        shots.clone(),
        Some(format!("{tool_origin},*")),
    )
    .await;
    c.step = b_steps(&shots);
    // The control: in a window of its own no storage is offered, so the launch
    // rests on the cookie, which this browser drops.
    c.goto(&course).await;
    c.click("#launch-link-1-grace").await;
    c.wait_for("#open-window").await;
    let window = c
        .call(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": "return document.getElementById('open-window').href;", "args": [] })),
        )
        .await;
    c.goto(window.as_str().unwrap()).await;
    c.wait_for_text("#error-code", "state_cookie_missing").await;
    c.screenshot("cookieless-window-refused").await;
    // Framed, the launch goes through: login page → put_data → platform → check
    // page → get_data → same-origin confirmation → the inspector.
    launch(&mut c, &course, "link-1", "ada").await;
    c.wait_for_text("#instructor-verdict", "yes").await;
    c.wait_for_text("body", "Ada Lovelace").await;
    c.wait_for_text("#storage-target", "_parent").await;
    c.wait_for_text("#state-binding", "the platform's storage")
        .await;
    let frame_url = c.frame_url().await;
    assert!(
        frame_url.starts_with(&format!("{}lti/app?lti_launch_id=", demo.tool_url)),
        "{frame_url}"
    );
    c.leave_frames().await;
    c.screenshot("cookieless-framed-launch").await;
    // The same with the storage in a hidden frame of the course page, named
    // `post_message_forwarding` as in Canvas: the tool's pages address it by
    // name (`lti_storage_target`) in the window that frames them.
    c.goto(&format!(
        "{course}launch?link=link-1&user=ada&storage=forwarding"
    ))
    .await;
    c.wait_for("#storage-frame").await;
    c.enter_frame("#tool-frame").await;
    c.wait_for_text("#instructor-verdict", "yes").await;
    c.wait_for_text("#storage-target", "post_message_forwarding")
        .await;
    c.wait_for_text("#state-binding", "the platform's storage")
        .await;
    c.leave_frames().await;
    c.screenshot("cookieless-forwarding-frame-launch").await;

    // The pages' other branches, against a course page whose storage misbehaves.
    // Only the draft names: both pages retry with `org.imsglobal.` and the launch
    // goes through.
    let platform_origin = course.trim_end_matches('/').to_owned();
    let script = misbehave(&mut c, &platform_origin, "draft_only").await;
    launch(&mut c, &course, "link-1", "ada").await;
    c.wait_for_text("#instructor-verdict", "yes").await;
    c.wait_for_text("#state-binding", "the platform's storage")
        .await;
    c.leave_frames().await;
    c.screenshot("cookieless-draft-names-launch").await;
    behave(&mut c, script).await;
    // Each failure the check page can report ends the launch with
    // `state_not_bound`, naming what the page saw.
    for (mode, seen) in [
        ("forgetful", "another value or none under the state's key"),
        ("failing", "the platform's error \"storage_unavailable\""),
        (
            "silent",
            "no reply from the platform's storage within 3 seconds",
        ),
    ] {
        let script = misbehave(&mut c, &platform_origin, mode).await;
        launch(&mut c, &course, "link-1", "ada").await;
        c.wait_for_text("#error-code", "state_not_bound").await;
        c.wait_for_text("#error-message", seen).await;
        c.leave_frames().await;
        c.screenshot(&format!("cookieless-storage-{mode}-refused"))
            .await;
        behave(&mut c, script).await;
    }
    c.quit().await;

    // 8. The cookie check's new-window fallback (issue 26): a browser that
    // refuses the tool's cookies inside the course pages only (third-party,
    // partitioned or not) and a launch page that offers no Platform Storage.
    // The framed launch shows the new-window page; its button continues in a
    // window of its own, where the tool's cookies are first-party.
    let platform_origin = course.trim_end_matches('/').to_owned();
    let mut d = new_browser(
        &driver,
        &chromium,
        shots.clone(),
        Some(format!("{tool_origin},{platform_origin}")),
    )
    .await;
    d.step = b_steps(&shots);
    d.goto(&course).await;
    d.wait_for("#course-items").await;
    // LTI 1.3: the login starts again in the new window and the launch completes there.
    d.goto(&format!("{course}launch?link=link-1&user=ada&storage=none"))
        .await;
    d.wait_for("#launch-title").await;
    d.enter_frame("#tool-frame").await;
    d.wait_for_text("#cookie-check", "does not let this tool keep its cookie")
        .await;
    d.screenshot("new-window-offered-1p3").await;
    let course_window = d.call(Method::GET, "/window", None).await;
    d.click("#open-new-window").await;
    d.switch_to_new_window(&course_window).await;
    d.wait_for_text("#instructor-verdict", "yes").await;
    d.wait_for_text("body", "Ada Lovelace").await;
    let own = d.current_url().await;
    assert!(
        own.starts_with(&format!("{}lti/app?lti_launch_id=", demo.tool_url)),
        "{own}"
    );
    d.screenshot("new-window-launch-1p3").await;
    d.close_window_back_to(&course_window).await;
    // LTI 1.1: the resource page hands the visit over to the new window once.
    d.goto(&format!(
        "{course}launch?link=link-2&user=grace&storage=none"
    ))
    .await;
    d.wait_for("#launch-title").await;
    d.enter_frame("#tool-frame").await;
    d.wait_for_text("#cookie-check", "does not let this tool keep its session")
        .await;
    d.screenshot("new-window-offered-1p1").await;
    d.click("#open-new-window").await;
    d.switch_to_new_window(&course_window).await;
    d.wait_for_text("body", "LTI 1.1 launch inspector").await;
    d.wait_for("#display-name").await;
    let own = d.current_url().await;
    assert!(
        own.starts_with(&format!("{}lti11/visits/", demo.tool_url)),
        "{own}"
    );
    d.screenshot("new-window-launch-1p1").await;
    d.quit().await;
    drop(driver);
    eprintln!("screenshots in {}", shots.display());
}
