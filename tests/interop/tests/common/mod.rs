//! Helpers shared by the interop tests: an in-process `lti serve` (the real
//! server code on a loopback port) and small HTTP helpers.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Request, Response};
use lti_http::{HttpClient, HyperClient};

pub const PLATFORM_PEM: &str = include_str!("../../../fixtures/interop/keys/platform.pem");
pub const TOOL_PEM: &str = include_str!("../../../fixtures/interop/keys/tool.pem");
pub const CONSUMER_KEY: &str = "interop-key";
pub const CONSUMER_SECRET: &str = "interop-secret-0123456789";

pub fn temp_dir(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("lti-interop-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One platform the tool trusts.
pub struct PlatformEntry {
    pub issuer: String,
    pub client_id: String,
    pub auth_login_url: String,
    pub auth_token_url: String,
    pub jwks_url: String,
    pub deployment_id: String,
}

/// The configuration text of `lti serve` at `url` (memory storage, the fixture tool
/// key, the given platforms, one LTI 1.1 consumer, and loopback egress allowed).
pub fn config_text(url: &str, keys: &std::path::Path, platforms: &[PlatformEntry]) -> String {
    let mut s = format!(
        "[server]\nbind = \"{}\"\npublic_url = \"{url}\"\n\n[storage]\nurl = \"memory://\"\n\n[keys]\ndir = \"{}\"\n\n",
        url.trim_start_matches("http://"),
        keys.display()
    );
    for p in platforms {
        s.push_str(&format!(
            "[[platforms]]\nissuer = \"{}\"\nclient_id = \"{}\"\nauth_login_url = \"{}\"\nauth_token_url = \"{}\"\njwks_url = \"{}\"\ndeployment_ids = [\"{}\"]\n\n",
            p.issuer, p.client_id, p.auth_login_url, p.auth_token_url, p.jwks_url, p.deployment_id
        ));
    }
    s.push_str(&format!(
        "[[consumers]]\nkey = \"{CONSUMER_KEY}\"\nsecret = \"{CONSUMER_SECRET}\"\nname = \"Interop LMS\"\n\n"
    ));
    // The peers run on loopback.
    s.push_str("[egress]\nallow_private_addresses = true\n");
    s
}

pub fn keys_dir() -> PathBuf {
    let dir = temp_dir("keys");
    std::fs::write(dir.join("private.pem"), TOOL_PEM).unwrap();
    dir
}

/// A running `lti serve` (in process, on a loopback port).
pub struct Tool {
    pub url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Tool {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds a loopback port, then starts `lti serve` on it with `platforms`.
pub async fn start_tool(platforms: impl FnOnce(&str) -> Vec<PlatformEntry>) -> Tool {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let text = config_text(&url, &keys_dir(), &platforms(&url));
    let config = lti_app::Config::parse(&text).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(lti_app::serve(config, listener, async move {
        let _ = rx.await;
    }));
    Tool {
        url,
        shutdown: Some(tx),
    }
}

pub async fn send(req: Request<Bytes>) -> Response<Bytes> {
    HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap()
        .send(req)
        .await
        .unwrap()
}

pub async fn get(url: &str) -> Response<Bytes> {
    send(Request::get(url).body(Bytes::new()).unwrap()).await
}

pub async fn post_form(
    url: &str,
    body: String,
    cookie: Option<&str>,
    accept_json: bool,
) -> Response<Bytes> {
    let mut req = Request::post(url).header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    if accept_json {
        req = req.header(http::header::ACCEPT, "application/json");
    }
    send(req.body(Bytes::from(body)).unwrap()).await
}

pub async fn post_json(url: &str, body: &serde_json::Value) -> serde_json::Value {
    let resp = send(
        Request::post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(Bytes::from(body.to_string()))
            .unwrap(),
    )
    .await;
    assert!(
        resp.status().is_success(),
        "{url}: {} {}",
        resp.status(),
        text(&resp)
    );
    serde_json::from_slice(resp.body()).unwrap()
}

pub fn text(resp: &Response<Bytes>) -> String {
    String::from_utf8_lossy(resp.body()).into_owned()
}

pub fn location(resp: &Response<Bytes>) -> String {
    resp.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// The `name=value` of the first Set-Cookie.
pub fn cookie(resp: &Response<Bytes>) -> String {
    resp.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn json_error(resp: &Response<Bytes>) -> String {
    let v: serde_json::Value = serde_json::from_slice(resp.body())
        .unwrap_or_else(|_| panic!("not JSON ({}): {}", resp.status(), text(resp)));
    v["error"].as_str().unwrap_or_default().to_owned()
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `jwt` with claim `name` replaced and the signature kept: a token tampered with
/// in transit.
pub fn swap_claim(jwt: &str, name: &str, value: serde_json::Value) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&lti_jose::b64::decode(parts[1]).unwrap()).unwrap();
    claims[name] = value;
    format!(
        "{}.{}.{}",
        parts[0],
        lti_jose::b64::encode(claims.to_string().as_bytes()),
        parts[2]
    )
}
