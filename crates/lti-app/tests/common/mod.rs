//! An in-test LTI platform (its own RSA key; JWKS, token, AGS and NRPS endpoints
//! on a loopback port) and helpers to run `lti serve` against it.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Json;
use axum::routing::{get as get_route, post};
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Request, Response};
use lti_http::{HttpClient, HyperClient};
use lti_jose::{JwkSet, SigningKey};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "client-1";
pub const DEPLOYMENT: &str = "dep-1";
pub const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";
pub const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";

/// Throw-away test keys (see tests/fixtures/lti-app/README.md).
pub const PLATFORM_KEY: &str = include_str!("../../../../tests/fixtures/lti-app/platform-key.pem");
pub const TOOL_KEY: &str = include_str!("../../../../tests/fixtures/lti-app/tool-key.pem");

pub fn platform_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_pem(PLATFORM_KEY, lti_jose::Algorithm::RS256).unwrap())
}

/// A key directory holding the fixture tool key (no generation needed).
pub fn keys_dir_with_fixture_key() -> PathBuf {
    let dir = temp_dir("keys");
    std::fs::write(dir.join("private.pem"), TOOL_KEY).unwrap();
    dir
}

/// The in-test platform: `base` is its loopback origin (also its issuer).
pub struct Platform {
    pub base: String,
    /// Line items the AGS endpoint holds (created ones are appended).
    pub line_items: Arc<Mutex<Vec<Value>>>,
    /// Scores the AGS endpoint received.
    pub scores: Arc<Mutex<Vec<Value>>>,
    /// LTI 1.1 `replaceResult` calls received: (sourcedid, score).
    pub outcomes: Arc<Mutex<Vec<(String, f64)>>>,
    /// The `kid` of each token request's client assertion, in order.
    pub assertion_kids: Arc<Mutex<Vec<String>>>,
}

pub async fn start_platform() -> Platform {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let line_items = Arc::new(Mutex::new(vec![json!({
        "id": format!("{base}/ags/lineitems/1"), "label": "Quiz 1", "scoreMaximum": 10
    })]));
    let scores = Arc::new(Mutex::new(Vec::new()));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let outcomes_post = outcomes.clone();
    let assertion_kids = Arc::new(Mutex::new(Vec::new()));
    let kids = assertion_kids.clone();
    let jwks = JwkSet {
        keys: vec![platform_key().public_jwk()],
    };
    let (items_get, items_post, scores_post) =
        (line_items.clone(), line_items.clone(), scores.clone());
    let base2 = base.clone();
    let members: Vec<Value> = (0..30)
        .map(|i| json!({"user_id": format!("u{i:02}"), "name": format!("Member <{i:02}>"), "status": "Active", "roles": [LEARNER]}))
        .collect();
    let router = axum::Router::new()
        .route("/jwks", get_route(move || async move { Json(jwks) }))
        .route(
            "/token",
            post(move |body: String| async move {
                let assertion = form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "client_assertion")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let kid = lti_jose::dangerous::decode_unverified::<Value>(&assertion)
                    .ok()
                    .and_then(|(header, _)| header.kid.clone())
                    .unwrap_or_default();
                kids.lock().unwrap().push(kid);
                Json(json!({"access_token": "platform-token", "token_type": "Bearer", "expires_in": 3600,
                    "scope": "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem https://purl.imsglobal.org/spec/lti-ags/scope/score https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"}))
            }),
        )
        .route(
            "/ags/lineitems",
            get_route(move || async move {
                let items = items_get.lock().unwrap().clone();
                ([(CONTENT_TYPE, "application/vnd.ims.lis.v2.lineitemcontainer+json")], Json(Value::Array(items)))
            })
            .post(move |Json(mut item): Json<Value>| async move {
                let mut items = items_post.lock().unwrap();
                item["id"] = json!(format!("{base2}/ags/lineitems/{}", items.len() + 1));
                items.push(item.clone());
                (http::StatusCode::CREATED, [(CONTENT_TYPE, "application/vnd.ims.lis.v2.lineitem+json")], Json(item))
            }),
        )
        .route(
            "/ags/lineitems/{n}/scores",
            post(move |body: Bytes| async move {
                scores_post.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
                http::StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/outcomes",
            post(move |body: Bytes| async move {
                // (The tool's OAuth signature is checked by lti11's own tests.)
                let request = lti11::OutcomeRequest::parse(&body).unwrap();
                if let lti11::Operation::ReplaceResult { score, .. } = &request.operation {
                    outcomes_post
                        .lock()
                        .unwrap()
                        .push((request.sourced_id.clone(), score.value()));
                }
                let reply =
                    lti11::OutcomeResponse::for_request(&request, lti11::CodeMajor::Success, "ok");
                ([(CONTENT_TYPE, "application/xml")], reply.to_xml())
            }),
        )
        .route(
            "/nrps",
            get_route(move || async move {
                ([(CONTENT_TYPE, "application/vnd.ims.lti-nrps.v2.membershipcontainer+json")],
                 Json(json!({"id": "roster", "context": {"id": "ctx-1"}, "members": members})))
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Platform {
        base,
        line_items,
        scores,
        outcomes,
        assertion_kids,
    }
}

/// A running `lti serve` (in process) with its public URL.
pub struct Tool {
    pub url: String,
    pub keys_dir: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), lti_app::AppError>>>,
}

impl Tool {
    /// A tool run by someone else (e.g. the spawned binary).
    pub fn external(url: &str, keys_dir: &std::path::Path) -> Self {
        Self {
            url: url.to_owned(),
            keys_dir: keys_dir.to_owned(),
            shutdown: None,
            handle: None,
        }
    }

    /// Triggers the graceful shutdown and waits for the server to finish.
    pub async fn stop(mut self) -> Result<(), lti_app::AppError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.handle.take() {
            Some(h) => h.await.unwrap(),
            None => Ok(()),
        }
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("lti-app-test-{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The configuration file text for a tool at `tool_url` trusting `platform`.
pub fn config_text(
    tool_url: &str,
    platform: &Platform,
    keys_dir: &std::path::Path,
    storage: &str,
) -> String {
    format!(
        r#"[server]
bind = "{bind}"
public_url = "{tool_url}"

[storage]
url = "{storage}"

[keys]
dir = "{keys}"

[[platforms]]
issuer = "{p}"
client_id = "{CLIENT_ID}"
auth_login_url = "{p}/auth"
auth_token_url = "{p}/token"
jwks_url = "{p}/jwks"
deployment_ids = ["{DEPLOYMENT}"]

[[consumers]]
key = "consumer-1"
secret = "secret-1"
name = "Legacy LMS"

# The stand-in LMS is on loopback; its LTI 1.1 outcome service is on its origin.
[egress]
allowed_origins = ["{p}"]
allow_private_addresses = true
"#,
        bind = tool_url.trim_start_matches("http://"),
        p = platform.base,
        keys = keys_dir.display(),
    )
}

pub async fn start_tool(platform: &Platform) -> Tool {
    start_tool_with(platform, |text| text).await
}

/// A tool whose configuration text is [`config_text`] changed by `edit`.
pub async fn start_tool_with(platform: &Platform, edit: impl FnOnce(String) -> String) -> Tool {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let keys_dir = keys_dir_with_fixture_key();
    let config =
        lti_app::Config::parse(&edit(config_text(&url, platform, &keys_dir, "memory://"))).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(lti_app::serve(config, listener, async move {
        let _ = rx.await;
    }));
    Tool {
        url,
        keys_dir,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

/// [`start_tool`] on another storage URL, with extra `[server]` lines.
pub async fn start_tool_on(platform: &Platform, storage: &str, server_lines: &str) -> Tool {
    start_tool_with(platform, |text| {
        text.replacen("url = \"memory://\"", &format!("url = \"{storage}\""), 1)
            .replacen("\n[storage]", &format!("{server_lines}\n[storage]"), 1)
    })
    .await
}

/// The test's browser stand-in: the tool under test is on loopback.
pub fn client() -> HyperClient {
    HyperClient::builder()
        .allow_private_addresses()
        .build()
        .unwrap()
}

pub async fn send(req: Request<Bytes>) -> Response<Bytes> {
    client().send(req).await.unwrap()
}

pub async fn get(url: &str, accept: Option<&str>) -> Response<Bytes> {
    let mut req = Request::get(url);
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    send(req.body(Bytes::new()).unwrap()).await
}

/// POSTs a url-encoded form body.
pub async fn post_form(url: &str, body: impl Into<Bytes>, accept: Option<&str>) -> Response<Bytes> {
    let mut req = Request::post(url).header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    send(req.body(body.into()).unwrap()).await
}

/// An LTI 1.1 launch as a browser makes it: the signed `POST`, then the
/// visit's resource page its `303` names, with the session cookie it set.
/// The launch's own response when it is not a `303`.
pub async fn lti11_launch(url: &str, body: impl Into<Bytes>) -> Response<Bytes> {
    let resp = post_form(url, body, None).await;
    if resp.status() != 303 {
        return resp;
    }
    let location = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    let cookie = resp.headers()[SET_COOKIE].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    send(
        Request::get(location)
            .header(COOKIE, cookie)
            .body(Bytes::new())
            .unwrap(),
    )
    .await
}

pub fn text(resp: &Response<Bytes>) -> String {
    String::from_utf8(resp.body().to_vec()).unwrap()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A login: the platform's redirect location and the state cookie.
pub struct Login {
    pub location: String,
    pub cookie: String,
    /// The whole `Set-Cookie` value (name, value and attributes).
    pub set_cookie: String,
    pub state: String,
    pub nonce: String,
}

pub async fn login(tool: &Tool, platform: &Platform) -> Login {
    let resp = get(
        &format!(
            "{}/lti/login?iss={}&login_hint=hint-1&target_link_uri={}/lti/app&lti_message_hint=mh-1&client_id={CLIENT_ID}",
            tool.url, platform.base, tool.url
        ),
        None,
    )
    .await;
    assert_eq!(resp.status(), 302, "{}", text(&resp));
    let location = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    let set_cookie = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    Login {
        set_cookie,
        state: param(&location, "state").unwrap(),
        nonce: param(&location, "nonce").unwrap(),
        location,
        cookie,
    }
}

/// Resource-link claims for `role`, with AGS and NRPS endpoints on the platform.
pub fn claims(tool: &Tool, platform: &Platform, nonce: &str, role: &str) -> Value {
    json!({
        "iss": platform.base, "aud": CLIENT_ID, "sub": "user-1", "nonce": nonce,
        "iat": now(), "exp": now() + 300,
        "name": "Grace <Hopper>", "email": "grace@example.edu",
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": DEPLOYMENT,
        "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": format!("{}/lti/app", tool.url),
        "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "rl-1", "title": "Week 1"},
        "https://purl.imsglobal.org/spec/lti/claim/context": {"id": "ctx-1", "label": "CS101", "title": "Compilers"},
        "https://purl.imsglobal.org/spec/lti/claim/roles": [role],
        "https://purl.imsglobal.org/spec/lti/claim/custom": {"chapter": "<3>"},
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem", "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "lineitems": format!("{}/ags/lineitems", platform.base)
        },
        "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
            "context_memberships_url": format!("{}/nrps", platform.base),
            "service_versions": ["2.0"]
        }
    })
}

/// Posts `id_token` with the login's state and cookie to the launch URL.
pub async fn post_launch(
    tool: &Tool,
    login: &Login,
    id_token: &str,
    accept: Option<&str>,
) -> Response<Bytes> {
    let mut req = Request::post(format!("{}/lti/launch", tool.url))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(COOKIE, &login.cookie);
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    send(
        req.body(Bytes::from(format!(
            "state={}&id_token={id_token}",
            login.state
        )))
        .unwrap(),
    )
    .await
}

/// A full launch as `role`; returns the inspector URL the launch redirected to.
pub async fn launch_as(tool: &Tool, platform: &Platform, role: &str) -> String {
    let login = login(tool, platform).await;
    let token =
        lti_jose::sign(&claims(tool, platform, &login.nonce, role), platform_key()).unwrap();
    let resp = post_launch(tool, &login, &token, None).await;
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    resp.headers()[LOCATION].to_str().unwrap().to_owned()
}
