//! Shared by the `lti demo` tests: spawning the built binary, a cookie-keeping
//! HTTP session, and just enough HTML reading to follow LTI's auto-submitted
//! forms.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How long any single wait may take (the machine is shared and busy).
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `lti demo` may take to print its URL (it generates two RSA keys,
/// slow in a debug build on a busy machine).
pub(crate) const STARTUP_TIMEOUT: Duration = Duration::from_secs(240);

/// A running `lti demo` child process; killed when dropped.
pub(crate) struct Demo {
    child: Child,
    keys: std::path::PathBuf,
    /// The course page, `http://localhost:<port>/`.
    pub(crate) platform_url: String,
    /// The tool's base URL, `http://127.0.0.1:<port>/`.
    pub(crate) tool_url: String,
    /// Every line the demo printed before the URL.
    pub(crate) banner: Vec<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.keys);
    }
}

impl Demo {
    /// The client id and deployment id `lti demo` obtained registering its
    /// tool through Dynamic Registration, from its banner.
    pub(crate) fn registration(&self) -> (String, String) {
        let line = self
            .banner
            .iter()
            .find_map(|l| l.split("LTI Dynamic Registration (client id ").nth(1))
            .unwrap_or_else(|| panic!("no registration line in {:?}", self.banner));
        let (client_id, rest) = line.split_once(", deployment ").expect("client id");
        let deployment = rest.trim_end_matches(')');
        (client_id.to_owned(), deployment.to_owned())
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Test-only keys (see tests/fixtures/lti-app-platform/README.md).
const KEY_FILES: [(&str, &str); 3] = [
    (
        "private.pem",
        include_str!("../../../../tests/fixtures/lti-app-platform/demo-keys/private.pem"),
    ),
    (
        "jwks.json",
        include_str!("../../../../tests/fixtures/lti-app-platform/demo-keys/jwks.json"),
    ),
    (
        "platform.pem",
        include_str!("../../../../tests/fixtures/lti-app-platform/demo-keys/platform.pem"),
    ),
];

/// A fresh key directory holding the test-only keys.
fn keys_dir() -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("lti-demo-test-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in KEY_FILES {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

/// Starts `lti demo` on free ports with the test keys and waits (bounded) for
/// the URL it prints.
pub(crate) fn spawn_demo() -> Demo {
    spawn(&[
        "demo",
        "--tool-bind",
        "127.0.0.1:0",
        "--platform-bind",
        "127.0.0.1:0",
    ])
}

/// Starts `lti platform --config FILE` on a free port with the test platform
/// key and waits (bounded) for the URL it prints.
pub(crate) fn spawn_platform(config: &str) -> Demo {
    spawn(&["platform", "--config", config, "--bind", "127.0.0.1:0"])
}

/// Starts `lti ARGS --keys DIR` and waits for the `Open URL` line.
fn spawn(args: &[&str]) -> Demo {
    let keys = keys_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lti"))
        .args(args)
        .arg("--keys")
        .arg(&keys)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn lti demo");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    let mut tool_url = None;
    let deadline = std::time::Instant::now() + STARTUP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(l) => l,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "lti {args:?} printed no URL within {STARTUP_TIMEOUT:?} ({e}); output: {banner:?}"
                );
            }
        };
        if let Some(rest) = line.split("the tool listens on ").nth(1) {
            let url = rest.split_whitespace().next().unwrap_or("");
            tool_url = Some(format!("{}/", url.trim_end_matches('/')));
        }
        if let Some(rest) = line.strip_prefix("Open ") {
            let url = rest.split_whitespace().next().unwrap_or("").to_owned();
            banner.push(line);
            return Demo {
                child,
                keys,
                platform_url: url,
                tool_url: tool_url.unwrap_or_default(),
                banner,
            };
        }
        banner.push(line);
    }
}

/// `lti serve`, killed when dropped.
pub(crate) struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts `lti serve --config FILE` and waits (bounded) for its banner.
pub(crate) fn spawn_serve(config: &std::path::Path) -> Serve {
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
    let deadline = std::time::Instant::now() + STARTUP_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
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

/// `lti serve` on a free port with the test keys, in-memory storage and
/// `[dynamic_registration]` on, accepting only `issuer`, registering as
/// `name`; returns it and its base URL (`http://127.0.0.1:<port>/`). Its
/// configuration and keys go in `dir`.
pub(crate) fn spawn_dr_tool(dir: &std::path::Path, issuer: &str, name: &str) -> (Serve, String) {
    let port = free_port();
    let tool = format!("http://127.0.0.1:{port}/");
    let keys = dir.join("tool-keys");
    std::fs::create_dir_all(&keys).unwrap();
    for (file, text) in KEY_FILES {
        std::fs::write(keys.join(file), text).unwrap();
    }
    let config = dir.join("lti.toml");
    std::fs::write(
        &config,
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
name = "{name}"
"#,
            keys = keys.display()
        ),
    )
    .unwrap();
    (spawn_serve(&config), tool)
}

/// A response, body read as text.
#[derive(Debug)]
pub(crate) struct Page {
    /// The URL requested.
    pub(crate) url: String,
    /// Status.
    pub(crate) status: StatusCode,
    /// Headers.
    pub(crate) headers: hyper::HeaderMap,
    /// Body.
    pub(crate) body: String,
}

/// A cookie-keeping HTTP/1 client (cookies per host, ignoring attributes: the
/// loopback hosts here are all "secure contexts").
pub(crate) struct Session {
    client: Client<HttpConnector, Full<Bytes>>,
    jar: HashMap<String, HashMap<String, String>>,
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

fn host_of(url: &str) -> String {
    let uri: hyper::Uri = url.parse().expect("absolute URL");
    uri.host().expect("host").to_owned()
}

/// Resolves `location` against `base` (absolute URLs and absolute paths).
pub(crate) fn resolve(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_owned();
    }
    let uri: hyper::Uri = base.parse().expect("absolute URL");
    let origin = format!(
        "{}://{}",
        uri.scheme_str().expect("scheme"),
        uri.authority().expect("authority")
    );
    if location.starts_with('/') {
        format!("{origin}{location}")
    } else {
        let path = uri.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!("{origin}{dir}{location}")
    }
}

impl Session {
    /// An empty session.
    pub(crate) fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            jar: HashMap::new(),
        }
    }

    /// Sets a cookie for `host` by hand.
    pub(crate) fn set_cookie(&mut self, host: &str, name: &str, value: &str) {
        self.jar
            .entry(host.to_owned())
            .or_default()
            .insert(name.to_owned(), value.to_owned());
    }

    /// The cookies held for `host`.
    pub(crate) fn cookies(&self, host: &str) -> HashMap<String, String> {
        self.jar.get(host).cloned().unwrap_or_default()
    }

    /// Sends one request (no redirects followed), keeping cookies.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
        extra: &[(&str, &str)],
    ) -> Page {
        let host = host_of(url);
        let mut builder = Request::builder().method(method).uri(url);
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        for (k, v) in extra {
            builder = builder.header(*k, *v);
        }
        if let Some(cookies) = self.jar.get(&host).filter(|c| !c.is_empty()) {
            let header: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            builder = builder.header("cookie", header.join("; "));
        }
        let req = builder.body(Full::new(Bytes::from(body))).expect("request");
        let resp = tokio::time::timeout(STEP_TIMEOUT, self.client.request(req))
            .await
            .unwrap_or_else(|_| panic!("{url}: no answer within {STEP_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = resp.status();
        let headers = resp.headers().clone();
        for sc in headers.get_all("set-cookie") {
            let sc = sc.to_str().expect("ascii Set-Cookie");
            let pair = sc.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                self.set_cookie(&host, k.trim(), v.trim());
            }
        }
        let body = tokio::time::timeout(STEP_TIMEOUT, resp.into_body().collect())
            .await
            .expect("body within the timeout")
            .expect("body")
            .to_bytes();
        Page {
            url: url.to_owned(),
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// `GET url`.
    pub(crate) async fn get(&mut self, url: &str) -> Page {
        self.send(Method::GET, url, None, Vec::new(), &[]).await
    }

    /// `POST url` with form fields.
    pub(crate) async fn post_form(&mut self, url: &str, fields: &[(String, String)]) -> Page {
        let body = encode_form(fields);
        self.send(
            Method::POST,
            url,
            Some("application/x-www-form-urlencoded"),
            body.into_bytes(),
            &[],
        )
        .await
    }

    /// Follows redirects, self-submitting forms and the `#lti-continue` link of
    /// `lti-tool`'s Platform Storage login page (its way on without JavaScript)
    /// until a page that is none of these (at most 12 hops); returns every page
    /// seen, the last one being the landing page.
    pub(crate) async fn follow(&mut self, first: Page) -> Vec<Page> {
        let mut seen = vec![first];
        for _ in 0..12 {
            let page = seen.last().expect("one page");
            if page.status.is_redirection() {
                let location = page
                    .headers
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .expect("redirect with Location")
                    .to_owned();
                let next = resolve(&page.url, &location);
                let p = self.get(&next).await;
                seen.push(p);
            } else if let Some(form) = auto_submit_form(&page.body) {
                let action = resolve(&page.url, &form.action);
                let p = self.post_form(&action, &form.fields).await;
                seen.push(p);
            } else if let Some(href) =
                tag_by_id(&page.body, "a", "lti-continue").and_then(|a| attr(a, "href"))
            {
                let next = resolve(&page.url, &href);
                let p = self.get(&next).await;
                seen.push(p);
            } else {
                return seen;
            }
        }
        panic!(
            "more than 12 redirects or forms: {:?}",
            seen.iter().map(|p| &p.url).collect::<Vec<_>>()
        );
    }
}

/// `application/x-www-form-urlencoded`.
pub(crate) fn encode_form(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes the HTML entities the servers emit.
pub(crate) fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in one tag's text.
pub(crate) fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// Every tag `<name …>` in `html`, as its text.
pub(crate) fn tags<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i..];
        let end = after.find('>').map_or(after.len(), |e| e + 1);
        let tag = &after[..end];
        if tag[open.len()..].starts_with([' ', '>', '\n']) {
            out.push(tag);
        }
        rest = &after[end..];
    }
    out
}

/// The tag `<name …>` whose `id` is `id`.
pub(crate) fn tag_by_id<'a>(html: &'a str, name: &str, id: &str) -> Option<&'a str> {
    tags(html, name)
        .into_iter()
        .find(|t| attr(t, "id").as_deref() == Some(id))
}

/// A form: action and fields (hidden and text inputs with values).
#[derive(Debug, Clone)]
pub(crate) struct Form {
    /// The `action`.
    pub(crate) action: String,
    /// `name=value` pairs.
    pub(crate) fields: Vec<(String, String)>,
}

/// The first `<form>` of `html`.
pub(crate) fn first_form(html: &str) -> Option<Form> {
    let start = html.find("<form")?;
    let end = html[start..]
        .find("</form>")
        .map_or(html.len(), |e| start + e);
    let section = &html[start..end];
    let form_tag = tags(section, "form").into_iter().next()?;
    let fields = tags(section, "input")
        .into_iter()
        .filter_map(|t| Some((attr(t, "name")?, attr(t, "value").unwrap_or_default())))
        .collect();
    Some(Form {
        action: attr(form_tag, "action").unwrap_or_default(),
        fields,
    })
}

/// The form of a page that submits itself by script (LTI's form_post pages).
pub(crate) fn auto_submit_form(html: &str) -> Option<Form> {
    if !html.contains(".submit()") {
        return None;
    }
    first_form(html)
}

/// The value of form field `name`.
pub(crate) fn field<'a>(form: &'a Form, name: &str) -> Option<&'a str> {
    form.fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The href of the element with `id` on `page`, absolute.
pub(crate) fn href(page: &Page, id: &str) -> String {
    let tag = tag_by_id(&page.body, "a", id)
        .unwrap_or_else(|| panic!("no <a id={id}> on {}:\n{}", page.url, page.body));
    resolve(&page.url, &attr(tag, "href").unwrap())
}

/// Opens a launch page and returns the first page of its frame (the login
/// initiation form).
pub(crate) async fn open_launch(s: &mut Session, launch_url: &str) -> Page {
    let framing = s.get(launch_url).await;
    assert_eq!(framing.status, StatusCode::OK, "{}", framing.body);
    let frame = tag_by_id(&framing.body, "iframe", "tool-frame").expect("tool frame");
    let src = resolve(&framing.url, &attr(frame, "src").unwrap());
    s.get(&src).await
}
