//! Runs the example on a loopback port and drives it over real HTTP with a
//! hyper client: an OIDC login, a launch signed by an in-test platform key (the
//! tool knows it through a static key set), the application page reading the
//! launch, a deep-linking response, and the refusals with their codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ACCEPT, ALLOW, AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lti_jose::{Algorithm, JwkSet, SigningKey};
use lti_registry::{Deployment, KeySource, PlatformRegistration};
use serde_json::{Value, json};

const ISS: &str = "https://platform.example";
const LTI: &str = "https://purl.imsglobal.org/spec/lti/claim/";

/// A request body sent in chunks of unknown total length (`Transfer-Encoding: chunked`).
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }
}

/// A response: status, headers and the body as text.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    /// The refusal's JSON `error` code.
    fn code(&self) -> String {
        let json: Value = serde_json::from_str(&self.body).unwrap();
        json["error"].as_str().unwrap().to_owned()
    }

    fn location(&self) -> &str {
        self.headers[LOCATION].to_str().unwrap()
    }

    /// The `name=value` of the `Set-Cookie` whose name starts with `prefix`.
    fn cookie(&self, prefix: &str) -> String {
        let cookie = self.headers.get_all(SET_COOKIE).iter();
        let cookie = cookie
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(prefix))
            .unwrap();
        cookie.split(';').next().unwrap().to_owned()
    }
}

/// The example serving on a loopback port, a client, and the platform's key.
struct Harness {
    base: String,
    client: Client<HttpConnector, BoxBody<Bytes, Infallible>>,
    platform_key: SigningKey,
}

impl Harness {
    async fn start() -> Self {
        // Throw-away test keys (see tests/fixtures/lti-app/README.md).
        let platform_key = SigningKey::from_pem(
            include_str!("../../../tests/fixtures/lti-app/platform-key.pem"),
            Algorithm::RS256,
        )
        .unwrap();
        let tool_key = include_str!("../../../tests/fixtures/lti-app/tool-key.pem").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/", listener.local_addr().unwrap());
        let registration = PlatformRegistration::new(
            ISS,
            "client-1",
            "https://platform.example/auth",
            "https://platform.example/token",
            KeySource::JwksUrl {
                url: "https://platform.example/jwks".into(),
            },
        )
        .with_deployment(Deployment::active("dep-1"));
        let keys = Arc::new(JwkSet {
            keys: vec![platform_key.public_jwk()],
        });
        let tool = hyper_tool::build_tool(&base, registration, tool_key, Some(keys))
            .await
            .unwrap();
        tokio::spawn(hyper_tool::serve(listener, hyper_tool::service(tool)));
        Self {
            base,
            client: Client::builder(TokioExecutor::new()).build_http(),
            platform_key,
        }
    }

    /// Sends `method path` (relative to the tool's base URL) with `headers` and `body`.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(http::HeaderName, &str)],
        body: BoxBody<Bytes, Infallible>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(format!(
            "{}{}",
            self.base,
            path.trim_start_matches('/')
        ));
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let response = self
            .client
            .request(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    async fn get(&self, path: &str, headers: &[(http::HeaderName, &str)]) -> Answer {
        self.send(Method::GET, path, headers, empty()).await
    }

    /// A login for `target` (a path): the platform's authorization URL and the
    /// state cookie.
    async fn login(&self, target: &str) -> (String, String) {
        let login = self
            .get(
                &format!(
                    "/lti/login?iss={ISS}&login_hint=u&target_link_uri={}{target}",
                    self.base
                ),
                &[],
            )
            .await;
        assert_eq!(login.status, StatusCode::FOUND, "{}", login.body);
        let location = login.location().to_owned();
        assert!(location.starts_with("https://platform.example/auth?"));
        (location, login.cookie("__Host-lti_state_"))
    }

    /// An id_token for the login that answered `location`, with `claims` added.
    fn id_token(&self, location: &str, claims: Value) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut all = json!({
            "iss": ISS, "aud": "client-1", "sub": "learner-7", "nonce": param(location, "nonce"),
            "iat": now, "exp": now + 300, "name": "Ada <Lovelace>",
            format!("{LTI}version"): "1.3.0",
            format!("{LTI}deployment_id"): "dep-1",
        });
        for (name, value) in claims.as_object().unwrap() {
            all[name] = value.clone();
        }
        lti_jose::sign(&all, &self.platform_key).unwrap()
    }

    /// Posts `state` and `id_token` to the launch route with `cookie`.
    async fn launch(&self, state: &str, id_token: &str, cookie: &str) -> Answer {
        let form = format!("state={state}&id_token={id_token}");
        let headers = [
            (CONTENT_TYPE, "application/x-www-form-urlencoded"),
            (COOKIE, cookie),
            (ACCEPT, "application/json"),
        ];
        self.send(Method::POST, "/lti/launch", &headers, full(form))
            .await
    }
}

fn empty() -> BoxBody<Bytes, Infallible> {
    full(Bytes::new())
}

fn full(body: impl Into<Bytes>) -> BoxBody<Bytes, Infallible> {
    Full::new(body.into()).boxed()
}

fn param(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_owned()
}

fn resource_link() -> Value {
    json!({
        format!("{LTI}message_type"): "LtiResourceLinkRequest",
        format!("{LTI}resource_link"): {"id": "rl-1"},
        format!("{LTI}context"): {"id": "c-1", "title": "Analytical Engines"},
        format!("{LTI}roles"): ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
    })
}

const JSON: (http::HeaderName, &str) = (ACCEPT, "application/json");

#[tokio::test]
async fn a_login_and_launch_over_http_reach_the_application_page() {
    let tool = Harness::start().await;
    let (location, state_cookie) = tool.login("app").await;
    let mut claims = resource_link();
    claims[format!("{LTI}target_link_uri")] = json!(format!("{}app", tool.base));
    let id_token = tool.id_token(&location, claims);
    let state = param(&location, "state");
    let launch = tool.launch(&state, &id_token, &state_cookie).await;
    assert_eq!(launch.status, StatusCode::SEE_OTHER, "{}", launch.body);
    let target = launch.location().to_owned();
    let id = param(&target, "lti_launch_id");
    assert_eq!(target, format!("{}app?lti_launch_id={id}", tool.base));
    let launch_cookie = launch.cookie("lti_launch=");
    assert_eq!(launch_cookie, format!("lti_launch={id}"));

    // The application page finds the launch by the query parameter, the
    // cookie, or a bearer header.
    let bearer = format!("Bearer {id}");
    let carriers: [(&str, Vec<(http::HeaderName, &str)>); 3] = [
        (&target, vec![]),
        ("app", vec![(COOKIE, &launch_cookie)]),
        ("app", vec![(AUTHORIZATION, &bearer)]),
    ];
    for (path, headers) in carriers {
        let path = path.strip_prefix(&tool.base).unwrap_or(path);
        let page = tool.get(path, &headers).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(
            page.body.contains("Hello Ada &lt;Lovelace&gt;"),
            "{}",
            page.body
        );
        assert!(page.body.contains("Course: Analytical Engines"));
    }

    // The same launch again: its state was single-use.
    let replay = tool.launch(&state, &id_token, &state_cookie).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replay.code(), "state_not_found");

    // The key set the platform verifies the tool's messages with.
    let jwks = tool.get("/.well-known/jwks.json", &[]).await;
    assert_eq!(jwks.status, StatusCode::OK);
    let set = JwkSet::from_slice(jwks.body.as_bytes()).unwrap();
    assert_eq!(set.keys.len(), 1);
    let head = tool
        .send(Method::HEAD, "/.well-known/jwks.json", &[], empty())
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers[CONTENT_TYPE], "application/json");
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn a_deep_linking_launch_answers_a_signed_response_over_http() {
    let tool = Harness::start().await;
    let (location, state_cookie) = tool.login("app").await;
    let id_token = tool.id_token(
        &location,
        json!({
            format!("{LTI}message_type"): "LtiDeepLinkingRequest",
            format!("{LTI}roles"): ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"],
            "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings": {
                "deep_link_return_url": "https://platform.example/deep_links",
                "accept_types": ["link"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "data": "opaque"
            }
        }),
    );
    let launch = tool
        .launch(&param(&location, "state"), &id_token, &state_cookie)
        .await;
    assert_eq!(launch.status, StatusCode::SEE_OTHER, "{}", launch.body);
    let bearer = format!("Bearer {}", param(launch.location(), "lti_launch_id"));
    let items = json!({"items": [{"type": "link", "url": "https://example.com/a"}]}).to_string();

    // As JSON: the return URL and the signed JWT, which verifies with the
    // tool's published key set.
    let headers = [
        JSON,
        (AUTHORIZATION, bearer.as_str()),
        (CONTENT_TYPE, "application/json"),
    ];
    let answer = tool
        .send(
            Method::POST,
            "/lti/deep-link",
            &headers,
            full(items.clone()),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.headers[CONTENT_TYPE], "application/json");
    let answer: Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(
        answer["deep_link_return_url"],
        "https://platform.example/deep_links"
    );
    let jwks = tool.get("/.well-known/jwks.json", &[]).await;
    let set = JwkSet::from_slice(jwks.body.as_bytes()).unwrap();
    let verifier = lti_jose::Verifier::new(&[Algorithm::RS256]).unwrap();
    let jws = verifier.parse(answer["jwt"].as_str().unwrap()).unwrap();
    let key = set.find(jws.kid(), jws.algorithm()).unwrap();
    let claims: Value = verifier.verify(&jws, &key).unwrap();
    assert_eq!(claims["aud"], ISS);
    assert_eq!(
        claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"],
        "opaque"
    );

    // For a browser: the auto-submitting form to the return URL.
    let headers = [
        (AUTHORIZATION, bearer.as_str()),
        (CONTENT_TYPE, "application/json"),
    ];
    let page = tool
        .send(Method::POST, "/lti/deep-link", &headers, full(items))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains(r#"action="https://platform.example/deep_links""#)
    );
    assert!(page.body.contains(r#"name="JWT""#));
}

#[tokio::test]
async fn refusals_over_http_carry_their_codes_and_statuses() {
    let tool = Harness::start().await;

    // A forged state: the browser's state cookie is bound to another state.
    let (location, state_cookie) = tool.login("app").await;
    let mut claims = resource_link();
    claims[format!("{LTI}target_link_uri")] = json!(format!("{}app", tool.base));
    let id_token = tool.id_token(&location, claims);
    let forged = tool
        .launch("forged-state-value", &id_token, &state_cookie)
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.code(), "state_mismatch");

    // Oversized bodies, declared (Content-Length) or streamed (chunked).
    let limit = lti_tool::web::DEFAULT_BODY_LIMIT;
    let form = [(CONTENT_TYPE, "application/x-www-form-urlencoded"), JSON];
    let declared = full(vec![b'a'; limit + 1]);
    let chunked = Chunks(VecDeque::from([
        Bytes::from(vec![b'a'; limit / 2]),
        Bytes::from(vec![b'a'; limit / 2]),
        Bytes::from_static(b"a"),
    ]))
    .boxed();
    for body in [declared, chunked] {
        let big = tool.send(Method::POST, "/lti/launch", &form, body).await;
        assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(big.code(), "body_too_large");
    }
    // A chunked body at the limit is read (and refused for what it says).
    let at_limit = Chunks(VecDeque::from([
        Bytes::from(vec![b'a'; limit / 2]),
        Bytes::from(vec![b'a'; limit / 2]),
    ]))
    .boxed();
    let read = tool
        .send(Method::POST, "/lti/launch", &form, at_limit)
        .await;
    assert_eq!(read.status, StatusCode::BAD_REQUEST, "{}", read.body);
    assert_eq!(read.code(), "missing_parameter");

    // Unknown paths (the application's fallback answers alike), as JSON and as a page.
    for path in ["/nope", "/lti/unknown"] {
        let missing = tool.get(path, &[JSON]).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.code(), "route_not_found");
    }
    let page = tool.get("/nope", &[]).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.body
            .contains(r#"<code id="error-code">route_not_found</code>"#)
    );

    // Wrong methods on LTI routes: 405 with `Allow`.
    let cases = [
        (Method::PUT, "/lti/login", "GET, POST"),
        (Method::DELETE, "/.well-known/jwks.json", "GET, HEAD"),
        (Method::GET, "/lti/deep-link", "POST"),
    ];
    for (method, path, allow) in cases {
        let wrong = tool.send(method.clone(), path, &[JSON], empty()).await;
        assert_eq!(
            wrong.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(wrong.headers[ALLOW], allow);
        assert_eq!(wrong.code(), "method_not_allowed");
    }

    // The application page and the deep-linking route without a launch, or
    // with an unknown one.
    let no_id = tool.get("/app", &[JSON]).await;
    assert_eq!(no_id.status, StatusCode::UNAUTHORIZED);
    assert_eq!(no_id.code(), "launch_id_missing");
    let unknown = tool.get("/app?lti_launch_id=unknown", &[JSON]).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.code(), "launch_not_found");
    let deep_link = tool
        .send(Method::POST, "/lti/deep-link", &[JSON], full("{}"))
        .await;
    assert_eq!(deep_link.status, StatusCode::UNAUTHORIZED);
    assert_eq!(deep_link.code(), "launch_id_missing");
}
