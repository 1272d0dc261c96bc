//! LTI Dynamic Registration against a running `lti serve`: a Moodle-shaped and
//! a Canvas-shaped platform stand-in register the tool through
//! `GET /lti/register` and then launch it without a restart; each refusal
//! ends with its own code and nothing stored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get as get_route, post};
use common::*;
use http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, SET_COOKIE};
use lti_jose::JwkSet;
use serde_json::{Value, json};

const AGS_LINEITEM: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem";
const AGS_SCORE: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/score";
const AGS_RESULT: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly";
const NRPS: &str = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly";

/// How the stand-in behaves.
#[derive(Clone, Default)]
struct Shape {
    /// Canvas: Bearer required on the configuration GET, issuer on
    /// `localhost`, registration endpoint on `127.0.0.1`, no deployment id,
    /// JSON errors. Otherwise Moodle: strings in `messages_supported`, a
    /// deployment id, plain-text errors.
    canvas: bool,
    /// Serve this issuer instead of the real one.
    issuer: Option<String>,
    /// Append this path to the real issuer.
    issuer_suffix: Option<&'static str>,
    /// Leave this member out of the configuration.
    drop_member: Option<&'static str>,
    /// Answer the registration POST with (status, content type, body).
    refuse: Option<(u16, &'static str, &'static str)>,
}

#[derive(Default)]
struct Seen {
    config_gets: usize,
    registrations: Vec<Value>,
    used_tokens: HashSet<String>,
}

#[derive(Clone)]
struct StandIn {
    /// `http://127.0.0.1:PORT`.
    ip: String,
    /// `http://localhost:PORT`.
    localhost: String,
    shape: Shape,
    seen: Arc<Mutex<Seen>>,
}

impl StandIn {
    fn issuer(&self) -> String {
        if self.shape.canvas {
            self.localhost.clone()
        } else {
            self.ip.clone()
        }
    }

    fn client_id(&self) -> &'static str {
        if self.shape.canvas {
            "10000000000042"
        } else {
            "moodle-client-1"
        }
    }

    /// The configuration URL the platform hands the tool.
    fn configuration_url(&self, token: &str) -> String {
        if self.shape.canvas {
            format!(
                "{}/api/lti/security/openid-configuration?registration_token={token}",
                self.localhost
            )
        } else {
            format!("{}/mod/lti/openid-configuration.php", self.ip)
        }
    }

    fn configuration(&self) -> Value {
        let iss = self.issuer();
        let served_issuer = self
            .shape
            .issuer
            .clone()
            .unwrap_or_else(|| format!("{iss}{}", self.shape.issuer_suffix.unwrap_or("")));
        let mut doc = if self.shape.canvas {
            json!({
                "issuer": served_issuer,
                "authorization_endpoint": format!("{iss}/api/lti/authorize_redirect"),
                "token_endpoint": format!("{iss}/login/oauth2/token"),
                "jwks_uri": format!("{iss}/api/lti/security/jwks"),
                "registration_endpoint": format!("{}/api/lti/registrations", self.ip),
                "authorization_server": "localhost",
                "scopes_supported": ["openid", AGS_LINEITEM, AGS_SCORE, "https://canvas.instructure.com/lti/public_jwk/scope/update"],
                "response_types_supported": ["id_token"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
                "subject_types_supported": ["public"],
                "claims_supported": ["sub", "iss", "name", "email"],
                "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                    "product_family_code": "canvas",
                    "version": "vCloud",
                    "messages_supported": [
                        {"type": "LtiResourceLinkRequest", "placements": ["https://canvas.instructure.com/lti/course_navigation"]},
                        {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]}
                    ],
                    "https://canvas.instructure.com/lti/account_name": "Test School"
                }
            })
        } else {
            json!({
                "issuer": served_issuer,
                "authorization_endpoint": format!("{iss}/mod/lti/auth.php"),
                "token_endpoint": format!("{iss}/mod/lti/token.php"),
                "jwks_uri": format!("{iss}/mod/lti/certs.php"),
                "registration_endpoint": format!("{iss}/mod/lti/openid-registration.php"),
                "scopes_supported": [AGS_LINEITEM, AGS_RESULT, AGS_SCORE, NRPS, "openid"],
                "response_types_supported": ["id_token"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
                "subject_types_supported": ["public", "pairwise"],
                "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
                "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                    "product_family_code": "moodle",
                    "version": "4.3.2 (Build: 20231222)",
                    "messages_supported": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"],
                    "placements": ["AddContentMenu"],
                    "variables": ["CourseSection.timeFrame.end", "Context.id"]
                }
            })
        };
        if let Some(member) = self.shape.drop_member {
            doc.as_object_mut().unwrap().remove(member);
        }
        doc
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
}

async fn configuration(State(s): State<StandIn>, headers: HeaderMap) -> Response {
    s.seen.lock().unwrap().config_gets += 1;
    if s.shape.canvas && bearer(&headers).is_none_or(|t| !t.starts_with("good")) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"errorMessage": "registration token expired or invalid"})),
        )
            .into_response();
    }
    Json(s.configuration()).into_response()
}

async fn registration(State(s): State<StandIn>, headers: HeaderMap, body: String) -> Response {
    let plain = |status: u16, text: &'static str| {
        (
            StatusCode::from_u16(status).unwrap(),
            [(CONTENT_TYPE, "text/plain")],
            text,
        )
            .into_response()
    };
    let Some(token) = bearer(&headers).filter(|t| t.starts_with("good")) else {
        return if s.shape.canvas {
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"errorMessage": "invalid registration token"})),
            )
                .into_response()
        } else {
            plain(401, "missing_registration_token")
        };
    };
    if !s.seen.lock().unwrap().used_tokens.insert(token) {
        return plain(401, "token_already_used");
    }
    if let Some((status, content_type, text)) = s.shape.refuse {
        return (
            StatusCode::from_u16(status).unwrap(),
            [(CONTENT_TYPE, content_type)],
            text,
        )
            .into_response();
    }
    let request: Value = serde_json::from_str(&body).unwrap();
    s.seen.lock().unwrap().registrations.push(request.clone());
    let mut answer = request.clone();
    answer["client_id"] = json!(s.client_id());
    let asked: Vec<&str> = request["scope"]
        .as_str()
        .unwrap_or("")
        .split(' ')
        .filter(|x| !x.is_empty())
        .collect();
    let tc = "https://purl.imsglobal.org/spec/lti-tool-configuration";
    if s.shape.canvas {
        // Canvas grants line items only here (an admin policy), returns no
        // deployment and adds its own configuration URL.
        answer["scope"] = json!(
            asked
                .iter()
                .filter(|x| **x == AGS_LINEITEM)
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
        );
        answer[tc]["https://canvas.instructure.com/lti/registration_config_url"] =
            json!(format!("{}/api/lti/registrations/42/view", s.ip));
    } else {
        answer[tc]["deployment_id"] = json!("7");
    }
    (StatusCode::OK, Json(answer)).into_response()
}

async fn start_standin(shape: Shape) -> StandIn {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let standin = StandIn {
        ip: format!("http://127.0.0.1:{port}"),
        localhost: format!("http://localhost:{port}"),
        shape,
        seen: Arc::new(Mutex::new(Seen::default())),
    };
    let jwks = JwkSet {
        keys: vec![platform_key().public_jwk()],
    };
    let jwks2 = jwks.clone();
    let router = axum::Router::new()
        .route(
            "/mod/lti/openid-configuration.php",
            get_route(configuration),
        )
        .route(
            "/api/lti/security/openid-configuration",
            get_route(configuration),
        )
        .route("/mod/lti/openid-registration.php", post(registration))
        .route("/api/lti/registrations", post(registration))
        .route(
            "/mod/lti/certs.php",
            get_route(move || async move { Json(jwks) }),
        )
        .route(
            "/api/lti/security/jwks",
            get_route(move || async move { Json(jwks2) }),
        )
        .with_state(standin.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    standin
}

/// A running tool with `[dynamic_registration]` lines added (storage `memory://`
/// unless `storage` is given).
async fn start_registering_tool(dr_lines: &str, storage: Option<&str>) -> Tool {
    let platform = start_platform().await;
    let lines = dr_lines.to_owned();
    let storage = storage.map(str::to_owned);
    start_tool_with(&platform, move |text| {
        let text = match &storage {
            Some(s) => text.replacen("url = \"memory://\"", &format!("url = \"{s}\""), 1),
            None => text,
        };
        format!("{text}\n[dynamic_registration]\nenabled = true\n{lines}\n")
    })
    .await
}

fn register_url(tool: &Tool, config_url: &str, token: Option<&str>) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let mut url = format!(
        "{}/lti/register?openid_configuration={}",
        tool.url,
        enc(config_url)
    );
    if let Some(t) = token {
        url.push_str(&format!("&registration_token={}", enc(t)));
    }
    url
}

/// Registers through `/lti/register` asking for JSON: (status, body).
async fn register(tool: &Tool, standin: &StandIn, token: Option<&str>) -> (u16, Value) {
    let resp = get(
        &register_url(tool, &standin.configuration_url(token.unwrap_or("")), token),
        Some("application/json"),
    )
    .await;
    let body: Value = serde_json::from_slice(resp.body()).unwrap_or(Value::Null);
    (resp.status().as_u16(), body)
}

/// A login and a launch signed by the stand-in's key: (status, error code).
async fn launch(tool: &Tool, standin: &StandIn, deployment: &str) -> (u16, String) {
    let iss = standin.issuer();
    let login = get(
        &format!(
            "{}/lti/login?iss={iss}&login_hint=u1&target_link_uri={}/lti/app&client_id={}",
            tool.url,
            tool.url,
            standin.client_id()
        ),
        Some("application/json"),
    )
    .await;
    if login.status() != 302 {
        let body: Value = serde_json::from_slice(login.body()).unwrap_or(Value::Null);
        return (
            login.status().as_u16(),
            body["error"].as_str().unwrap_or_default().to_owned(),
        );
    }
    let location = login.headers()[LOCATION].to_str().unwrap().to_owned();
    let cookie = login.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let login = Login {
        set_cookie: cookie.clone(),
        state: param(&location, "state").unwrap(),
        nonce: param(&location, "nonce").unwrap(),
        location,
        cookie,
    };
    let claims = json!({
        "iss": iss, "aud": standin.client_id(), "sub": "user-1", "nonce": login.nonce,
        "iat": now(), "exp": now() + 300, "name": "Ada",
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": deployment,
        "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": format!("{}/lti/app", tool.url),
        "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "rl-1"},
        "https://purl.imsglobal.org/spec/lti/claim/roles": [INSTRUCTOR],
    });
    let token = lti_jose::sign(&claims, platform_key()).unwrap();
    let resp = post_launch(tool, &login, &token, Some("application/json")).await;
    let body: Value = serde_json::from_slice(resp.body()).unwrap_or(Value::Null);
    (
        resp.status().as_u16(),
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_moodle_shaped_platform_registers_and_launches_without_a_restart() {
    let standin = start_standin(Shape::default()).await;
    let tool = start_registering_tool("name = \"Quiz Tool\"\ndescription = \"Quizzes\"\n[[dynamic_registration.messages]]\ntype = \"LtiDeepLinkingRequest\"\nlabel = \"Add a quiz\"\nplacements = [\"ContentArea\"]\ncustom_parameters = { quiz = \"$Context.id\" }\n", None).await;
    assert_eq!(
        launch(&tool, &standin, "7").await,
        (403, "unknown_issuer".to_owned())
    );

    // The HTML answer: a page that closes the platform's window through a
    // script its own policy allows.
    let resp = get(
        &register_url(&tool, &standin.configuration_url(""), Some("good-1")),
        None,
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", text(&resp));
    let page = text(&resp);
    assert!(page.contains("org.imsglobal.lti.close"), "{page}");
    assert!(page.contains("window.opener || window.parent"));
    assert!(
        page.contains("moodle-client-1") && page.contains(">7<"),
        "{page}"
    );
    let policies: Vec<&str> = resp
        .headers()
        .get_all(CONTENT_SECURITY_POLICY)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        policies.iter().any(|p| p.contains("script-src 'sha256-")),
        "{policies:?}"
    );
    assert!(!policies.iter().any(|p| p.contains("script-src 'none'")));

    // What the tool asked for.
    let request = standin.seen.lock().unwrap().registrations[0].clone();
    assert_eq!(request["client_name"], "Quiz Tool");
    assert_eq!(
        request["initiate_login_uri"],
        format!("{}/lti/login", tool.url)
    );
    assert_eq!(
        request["redirect_uris"],
        json!([format!("{}/lti/launch", tool.url)])
    );
    assert_eq!(
        request["jwks_uri"],
        format!("{}/.well-known/jwks.json", tool.url)
    );
    assert_eq!(request["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(
        request["scope"],
        format!("{AGS_LINEITEM} {AGS_RESULT} {AGS_SCORE} {NRPS}")
    );
    let tc = &request["https://purl.imsglobal.org/spec/lti-tool-configuration"];
    assert_eq!(tc["domain"], tool.url.trim_start_matches("http://"));
    assert_eq!(tc["description"], "Quizzes");
    assert_eq!(tc["messages"][0]["type"], "LtiDeepLinkingRequest");
    assert_eq!(tc["messages"][0]["label"], "Add a quiz");
    assert_eq!(tc["messages"][0]["placements"], json!(["ContentArea"]));
    assert_eq!(
        tc["messages"][0]["custom_parameters"]["quiz"],
        "$Context.id"
    );
    assert!(tc["claims"].as_array().unwrap().contains(&json!("email")));

    // The registration launches at once, from the returned deployment only.
    assert_eq!(launch(&tool, &standin, "7").await.0, 303);
    assert_eq!(
        launch(&tool, &standin, "8").await,
        (403, "unknown_deployment".to_owned())
    );

    // A second registration of the same client id is an update.
    let (status, body) = register(&tool, &standin, Some("good-2")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["updated"], true);
    assert_eq!(body["deployment_ids"], json!(["7", "8"]), "{body}");
    assert_eq!(launch(&tool, &standin, "7").await.0, 303);

    // Moodle's plain-text 401 for a used token: nothing changes.
    let (status, body) = register(&tool, &standin, Some("good-2")).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "registration_token_rejected");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("token_already_used"),
        "{body}"
    );
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn a_canvas_shaped_platform_registers_and_its_first_deployment_is_recorded() {
    let standin = start_standin(Shape {
        canvas: true,
        ..Shape::default()
    })
    .await;
    let tool = start_registering_tool("", None).await;

    // No token: Canvas refuses the configuration GET.
    let (status, body) = register(&tool, &standin, None).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "registration_token_rejected");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("expired or invalid")
    );
    assert_eq!(standin.seen.lock().unwrap().config_gets, 1);
    assert_eq!(
        launch(&tool, &standin, "1:abc").await,
        (403, "unknown_issuer".to_owned()),
        "nothing stored"
    );

    let (status, body) = register(&tool, &standin, Some("good-canvas")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "active");
    assert_eq!(body["issuer"], standin.localhost);
    assert_eq!(body["client_id"], standin.client_id());
    assert_eq!(body["deployment_ids"], json!([]));
    assert_eq!(body["granted_scopes"], json!([AGS_LINEITEM]));
    assert_eq!(body["denied_scopes"], json!([AGS_SCORE]));
    // Only the scopes Canvas offers were asked for (no NRPS, no results).
    let request = standin.seen.lock().unwrap().registrations[0].clone();
    assert_eq!(request["scope"], format!("{AGS_LINEITEM} {AGS_SCORE}"));

    // The first launch's deployment is recorded and accepted; a second
    // unknown one waits for an administrator.
    assert_eq!(launch(&tool, &standin, "123:abcdef").await.0, 303);
    assert_eq!(launch(&tool, &standin, "123:abcdef").await.0, 303);
    assert_eq!(
        launch(&tool, &standin, "456:other").await,
        (403, "unknown_deployment".to_owned())
    );
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn manual_approval_keeps_a_registration_pending_until_approved() {
    let dir = temp_dir("dr-manual");
    let db = format!("sqlite://{}", dir.join("lti.db").display());
    let standin = start_standin(Shape::default()).await;
    let tool = start_registering_tool("approval = \"manual\"\n", Some(&db)).await;
    let (status, body) = register(&tool, &standin, Some("good-1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(
        launch(&tool, &standin, "7").await,
        (403, "registration_pending".to_owned())
    );

    // `lti platforms approve`, through the library, on the same store.
    let cipher =
        lti_registry::SecretCipher::aes256gcm(lti_app::app_key(&tool.keys_dir).unwrap(), vec![])
            .unwrap();
    let store = lti_store::open_split(&db, None, &lti_store::OpenOptions::new(cipher))
        .await
        .unwrap();
    let approved = lti_app::admin::approve_platform(&store, &standin.issuer(), "moodle-client-1")
        .await
        .unwrap();
    assert!(approved.status.is_active());
    assert_eq!(approved.metadata["product_family_code"], "moodle");
    assert_eq!(approved.metadata["granted_scopes"].split(' ').count(), 4);
    assert_eq!(launch(&tool, &standin, "7").await.0, 303, "no restart");
    tool.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn refusals_have_their_own_codes_and_store_nothing() {
    let tool = start_registering_tool("", None).await;

    // The issuer does not prefix the configuration URL (another host).
    let standin = start_standin(Shape {
        issuer: Some("http://localhost:1".to_owned()),
        ..Shape::default()
    })
    .await;
    let (status, body) = register(&tool, &standin, Some("good-1")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("issuer_mismatch")),
        "{body}"
    );
    assert!(standin.seen.lock().unwrap().registrations.is_empty());

    // A path that is not a whole-segment prefix of the configuration URL.
    let standin = start_standin(Shape {
        issuer_suffix: Some("/mod/lt"),
        ..Shape::default()
    })
    .await;
    let (status, body) = register(&tool, &standin, Some("good-1")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("issuer_mismatch")),
        "{body}"
    );
    // While a whole-segment one passes.
    let standin = start_standin(Shape {
        issuer_suffix: Some("/mod"),
        ..Shape::default()
    })
    .await;
    let (status, body) = register(&tool, &standin, Some("good-1")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["issuer"], format!("{}/mod", standin.ip));

    // A required member is missing, and named.
    let standin = start_standin(Shape {
        drop_member: Some("token_endpoint"),
        ..Shape::default()
    })
    .await;
    let (status, body) = register(&tool, &standin, Some("good-1")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("configuration_incomplete")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("token_endpoint"));
    assert_eq!(
        launch(&tool, &standin, "7").await,
        (403, "unknown_issuer".to_owned())
    );

    // RFC 7591 error with 400.
    let standin = start_standin(Shape {
        refuse: Some((
            400,
            "application/json",
            r#"{"error":"invalid_redirect_uri","error_description":"redirect_uris must be on the tool's domain"}"#,
        )),
        ..Shape::default()
    })
    .await;
    let (status, body) = register(&tool, &standin, Some("good-1")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("registration_refused")),
        "{body}"
    );
    assert_eq!(body["platform_error"], "invalid_redirect_uri");
    assert_eq!(
        body["platform_error_description"],
        "redirect_uris must be on the tool's domain"
    );
    assert_eq!(
        launch(&tool, &standin, "7").await,
        (403, "unknown_issuer".to_owned())
    );
    // The HTML page says what the platform refused and why.
    let resp = get(
        &register_url(&tool, &standin.configuration_url(""), Some("good-2")),
        None,
    )
    .await;
    assert_eq!(resp.status(), 502);
    let page = text(&resp);
    assert!(
        page.contains("The platform refused the registration."),
        "{page}"
    );
    assert!(page.contains("invalid_redirect_uri") && page.contains("Nothing was stored"));

    // Moodle's plain-text 400.
    let standin = start_standin(Shape {
        refuse: Some((400, "text/plain", "missing required attribute jwks_uri")),
        ..Shape::default()
    })
    .await;
    let (status, body) = register(&tool, &standin, Some("good-1")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("registration_refused")),
        "{body}"
    );
    assert_eq!(
        body["platform_error"],
        "missing required attribute jwks_uri"
    );

    // 401 on the token (the registration POST).
    let standin = start_standin(Shape::default()).await;
    let (status, body) = register(&tool, &standin, Some("bad-token")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("registration_token_rejected")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("missing_registration_token")
    );
    assert_eq!(
        launch(&tool, &standin, "7").await,
        (403, "unknown_issuer".to_owned())
    );

    // A missing parameter.
    let resp = get(
        &format!("{}/lti/register", tool.url),
        Some("application/json"),
    )
    .await;
    assert_eq!(resp.status(), 400);
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn the_allow_list_refuses_other_issuers_before_fetching_anything() {
    let standin = start_standin(Shape::default()).await;
    let tool =
        start_registering_tool("allowed_issuers = [\"https://lms.example.edu\"]\n", None).await;
    let (status, body) = register(&tool, &standin, Some("good-1")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("issuer_not_allowed")),
        "{body}"
    );
    assert_eq!(
        standin.seen.lock().unwrap().config_gets,
        0,
        "nothing fetched"
    );
    assert_eq!(
        launch(&tool, &standin, "7").await,
        (403, "unknown_issuer".to_owned())
    );
    tool.stop().await.unwrap();
}

#[tokio::test]
async fn registration_is_off_by_default() {
    let platform = start_platform().await;
    let tool = start_tool(&platform).await;
    let resp = get(
        &format!(
            "{}/lti/register?openid_configuration=https://lms.example/c",
            tool.url
        ),
        Some("application/json"),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["error"], "dynamic_registration_disabled");
    tool.stop().await.unwrap();
}
