//! A platform of the tests' own (RSA keys under `tests/fixtures/lti-tool/keys`), a
//! memory store, a manual clock, and helpers that drive login → launch.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use lti_jose::{Algorithm, JwkSet, KeySource, SigningKey};
use lti_registry::{
    Deployment, KeySource as RegistrationKeys, LaunchState, ManualClock, PlatformRegistration,
    SecretCipher, SecretString, Store,
};
use lti_store::MemoryStore;
use lti_tool::{Launch, Tool, ToolBuilder, ToolError, ToolRequest, ToolResponse};
use serde_json::{Map, Value, json};

pub const ISS: &str = "https://platform.example";
pub const CLIENT_ID: &str = "client-1";
pub const DEPLOYMENT: &str = "deploy-1";
pub const AUTH_URL: &str = "https://platform.example/auth";
pub const TOKEN_URL: &str = "https://platform.example/token";
pub const JWKS_URL: &str = "https://platform.example/jwks";
pub const TOOL_BASE: &str = "https://tool.example/";
pub const TARGET: &str = "https://tool.example/lti/app";
pub const NOW: i64 = 1_900_000_000;
pub const COOKIE_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";

pub const PLATFORM_1_PEM: &str =
    include_str!("../../../../tests/fixtures/lti-tool/keys/platform-1.pem");
pub const PLATFORM_2_PEM: &str =
    include_str!("../../../../tests/fixtures/lti-tool/keys/platform-2.pem");
pub const TOOL_1_PEM: &str = include_str!("../../../../tests/fixtures/lti-tool/keys/tool-1.pem");
pub const TOOL_2_PEM: &str = include_str!("../../../../tests/fixtures/lti-tool/keys/tool-2.pem");

pub const LTI: &str = "https://purl.imsglobal.org/spec/lti/claim/";

pub fn platform_key() -> SigningKey {
    SigningKey::from_pem(PLATFORM_1_PEM, Algorithm::RS256)
        .unwrap()
        .with_kid("platform-key-1")
}

pub fn second_platform_key() -> SigningKey {
    SigningKey::from_pem(PLATFORM_2_PEM, Algorithm::RS256)
        .unwrap()
        .with_kid("platform-key-2")
}

pub fn registration() -> PlatformRegistration {
    PlatformRegistration::new(
        ISS,
        CLIENT_ID,
        AUTH_URL,
        TOKEN_URL,
        RegistrationKeys::JwksUrl {
            url: JWKS_URL.to_owned(),
        },
    )
    .with_deployment(Deployment::active(DEPLOYMENT))
}

/// A memory store (plaintext cipher: test only) with the registration and an
/// active tool key.
pub async fn store(clock: &ManualClock) -> Store {
    let backend = Arc::new(MemoryStore::new(
        SecretCipher::insecure_plaintext_for_tests(),
        Arc::new(clock.clone()),
    ));
    let store = Store::from_backend(backend);
    store
        .registrations
        .insert_registration(&registration())
        .await
        .unwrap();
    store
        .tool_keys
        .add_next_key("tool-key-1", "RS256", &SecretString::new(TOOL_1_PEM))
        .await
        .unwrap();
    store.tool_keys.promote_next_key().await.unwrap();
    store
}

/// The platform's key set as a static key source (the URL is ignored).
pub fn static_keys(keys: &[&SigningKey]) -> Arc<dyn KeySource> {
    Arc::new(JwkSet {
        keys: keys.iter().map(|k| k.public_jwk()).collect(),
    })
}

pub fn builder(store: &Store, clock: &ManualClock) -> ToolBuilder {
    Tool::builder(TOOL_BASE, store)
        .clock(Arc::new(clock.clone()))
        .key_source(static_keys(&[&platform_key()]))
        .state_cookie_secret(COOKIE_SECRET)
}

/// One tool over one store, at a fixed time.
pub struct Harness {
    pub tool: Tool,
    pub store: Store,
    pub clock: ManualClock,
    pub key: SigningKey,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with(|b| b).await
    }

    pub async fn with(configure: impl FnOnce(ToolBuilder) -> ToolBuilder) -> Self {
        let clock = ManualClock::new(NOW);
        let store = store(&clock).await;
        let tool = configure(builder(&store, &clock)).build().unwrap();
        Self {
            tool,
            store,
            clock,
            key: platform_key(),
        }
    }

    /// A login initiation with the usual parameters plus `extra`.
    pub async fn login_with(&self, extra: &[(&str, &str)]) -> Result<Login, ToolError> {
        let mut params = vec![
            ("iss", ISS),
            ("login_hint", "user-hint-42"),
            ("target_link_uri", TARGET),
            ("lti_message_hint", "message-hint"),
            ("client_id", CLIENT_ID),
        ];
        params.extend_from_slice(extra);
        let resp = self.tool.login(&get("/lti/login", &params)).await?;
        Ok(Login::from_response(&resp))
    }

    /// A login state whose nonce the test chooses, as an application that binds
    /// the state itself would hand it to `Tool::verify_id_token` (a sealed `state`
    /// value carries a nonce only the tool draws).
    pub fn state_with_nonce(&self, nonce: &str) -> LaunchState {
        LaunchState::new(
            format!("app-state-{nonce}"),
            nonce,
            ISS,
            CLIENT_ID,
            TARGET,
            self.clock_now(),
            600,
        )
    }

    pub async fn login(&self) -> Login {
        self.login_with(&[]).await.unwrap()
    }

    /// Valid resource-link claims for `nonce`.
    pub fn claims(&self, nonce: &str) -> Map<String, Value> {
        resource_link_claims(nonce, self.clock_now())
    }

    pub fn clock_now(&self) -> i64 {
        lti_registry::Clock::now(&self.clock)
    }

    pub fn sign(&self, claims: &Map<String, Value>) -> String {
        lti_jose::sign(claims, &self.key).unwrap()
    }

    /// Logs in, lets `edit` change the claims, signs with the platform key and launches.
    pub async fn launch_with(
        &self,
        edit: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<(Launch, ToolResponse), ToolError> {
        let login = self.login().await;
        let mut claims = self.claims(&login.nonce);
        edit(&mut claims);
        let token = self.sign(&claims);
        self.tool.launch(&login.post(&token)).await
    }

    pub async fn launch_token(
        &self,
        login: &Login,
        token: &str,
    ) -> Result<(Launch, ToolResponse), ToolError> {
        self.tool.launch(&login.post(token)).await
    }
}

pub fn resource_link_claims(nonce: &str, now: i64) -> Map<String, Value> {
    let v = json!({
        "iss": ISS,
        "aud": CLIENT_ID,
        "sub": "user-1",
        "exp": now + 300,
        "iat": now - 5,
        "nonce": nonce,
        "name": "Ada Lovelace",
        format!("{LTI}message_type"): "LtiResourceLinkRequest",
        format!("{LTI}version"): "1.3.0",
        format!("{LTI}deployment_id"): DEPLOYMENT,
        format!("{LTI}target_link_uri"): TARGET,
        format!("{LTI}resource_link"): { "id": "rl-1", "title": "Week 1" },
        format!("{LTI}roles"): ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
        format!("{LTI}context"): { "id": "ctx-1", "title": "Analytical Engines" }
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// Signs `claims` under an arbitrary header (which `lti_jose::sign` would refuse to
/// produce, e.g. without `alg` or `kid`).
pub fn sign_raw(header: &Value, claims: &Value, key: &SigningKey) -> String {
    sign_bytes(
        &serde_json::to_vec(header).unwrap(),
        &serde_json::to_vec(claims).unwrap(),
        key,
    )
}

/// A compact JWS over exactly these header and payload bytes (JSON or not).
pub fn sign_bytes(header: &[u8], payload: &[u8], key: &SigningKey) -> String {
    let input = format!(
        "{}.{}",
        lti_jose::b64::encode(header),
        lti_jose::b64::encode(payload)
    );
    let sig = key.sign_bytes(input.as_bytes()).unwrap();
    format!("{input}.{}", lti_jose::b64::encode(&sig))
}

/// What a login answered: the state and nonce sent to the platform and the cookie.
#[derive(Debug, Clone)]
pub struct Login {
    pub location: String,
    pub params: Vec<(String, String)>,
    pub state: String,
    pub nonce: String,
    /// `name=value` of the state cookie.
    pub cookie: String,
    pub set_cookie: String,
}

impl Login {
    pub fn from_response(resp: &ToolResponse) -> Self {
        assert_eq!(resp.status(), http::StatusCode::FOUND);
        let location = resp.location().unwrap().to_owned();
        let query = location.split_once('?').unwrap().1;
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let get = |n: &str| {
            params
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let set_cookie = resp.set_cookies().next().unwrap().to_owned();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        Self {
            state: get("state"),
            nonce: get("nonce"),
            location,
            params,
            cookie,
            set_cookie,
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The platform's form POST of `id_token` and this login's state, with the cookie.
    pub fn post(&self, id_token: &str) -> ToolRequest {
        launch_post(&self.state, id_token, Some(&self.cookie))
    }

    /// The same POST without the cookie (the browser dropped it).
    pub fn cookieless_post(&self, id_token: &str) -> ToolRequest {
        launch_post(&self.state, id_token, None)
    }
}

/// The platform's launch POST of `id_token` and `state`, with `cookie` if any.
pub fn launch_post(state: &str, id_token: &str, cookie: Option<&str>) -> ToolRequest {
    post_form(
        "/lti/launch",
        &[("id_token", id_token), ("state", state)],
        cookie,
    )
}

/// Why a `state_cookie_missing` refusal had nothing but the cookie.
pub fn cookie_only(err: &ToolError) -> Option<lti_tool::CookieOnly> {
    match err {
        ToolError::StateCookieMissing { cookie_only } => Some(*cookie_only),
        _ => None,
    }
}

pub fn get(path: &str, params: &[(&str, &str)]) -> ToolRequest {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let uri = format!("{path}?{}", ser.finish());
    ToolRequest::new(
        Method::GET,
        uri.parse().unwrap(),
        HeaderMap::new(),
        Bytes::new(),
    )
}

pub fn post_form(path: &str, params: &[(&str, &str)], cookie: Option<&str>) -> ToolRequest {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    post_raw(path, ser.finish().into_bytes(), cookie)
}

pub fn post_raw(path: &str, body: Vec<u8>, cookie: Option<&str>) -> ToolRequest {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    if let Some(c) = cookie {
        headers.insert(header::COOKIE, HeaderValue::from_str(c).unwrap());
    }
    ToolRequest::new(
        Method::POST,
        path.parse().unwrap(),
        headers,
        Bytes::from(body),
    )
}

/// Asserts that `result` failed with `code`, and returns the error.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, ToolError>, code: &str) -> ToolError {
    match result {
        Ok(v) => panic!("expected error {code}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.code(), code, "unexpected error: {e}");
            e
        }
    }
}

/// A response body as text.
pub fn body_text(resp: &ToolResponse) -> String {
    String::from_utf8(resp.body().to_vec()).unwrap()
}

/// The value of the first ` attr="…"` in `html`, unescaped (the pages escape `&<>"'`).
pub fn html_attr(html: &str, attr: &str) -> String {
    let start = html
        .find(&format!(" {attr}=\""))
        .unwrap_or_else(|| panic!("no {attr} in {html}"))
        + attr.len()
        + 3;
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// What a login that offered Platform Storage answered (the storage page).
#[derive(Debug, Clone)]
pub struct StorageLogin {
    pub state: String,
    pub nonce: String,
    /// The authorization request the page goes on to.
    pub next: String,
    /// `name=value` of the state cookie (still set).
    pub cookie: String,
    pub page: String,
}

impl StorageLogin {
    /// The platform's launch POST of `id_token` and this login's state, without
    /// the cookie (the browser dropped it).
    pub fn cookieless_post(&self, id_token: &str) -> ToolRequest {
        launch_post(&self.state, id_token, None)
    }
}

impl Harness {
    /// The answer to a login offering Platform Storage in frame `target`.
    pub async fn storage_login_response(&self, target: &str) -> Result<ToolResponse, ToolError> {
        self.tool
            .login(&get(
                "/lti/login",
                &[
                    ("iss", ISS),
                    ("login_hint", "user-hint-42"),
                    ("target_link_uri", TARGET),
                    ("client_id", CLIENT_ID),
                    ("lti_storage_target", target),
                ],
            ))
            .await
    }

    /// A login offering Platform Storage in frame `target` (the tool must have
    /// `platform_storage` on).
    pub async fn storage_login(&self, target: &str) -> StorageLogin {
        let resp = self.storage_login_response(target).await.unwrap();
        assert_eq!(resp.status(), http::StatusCode::OK);
        let page = body_text(&resp);
        let next = html_attr(&page, "data-next");
        let query = next.split_once('?').unwrap().1;
        let param = |name: &str| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        let cookie = resp
            .set_cookies()
            .next()
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        StorageLogin {
            state: param("state"),
            nonce: param("nonce"),
            next,
            cookie: cookie.to_owned(),
            page,
        }
    }
}

/// A POST of the check page's confirmation `fields`, with these request headers.
pub fn confirm_request(fields: &[(&str, &str)], headers: &[(&str, &str)]) -> ToolRequest {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        ser.append_pair(k, v);
    }
    let mut map = HeaderMap::new();
    map.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    for (name, value) in headers {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    ToolRequest::new(
        Method::POST,
        "/lti/launch".parse().unwrap(),
        map,
        Bytes::from(ser.finish()),
    )
}
