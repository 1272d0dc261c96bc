//! Our platform (`lti platform`) → npm `ltijs` (an independent LTI 1.3 tool, with
//! its `ltijs-sequelize` SQLite store): our resource-link and deep-linking launches
//! are accepted by it; its deep-linking response is accepted by our platform, whose
//! course then shows the returned item; its AGS and NRPS calls against our endpoints
//! succeed with our access tokens and our grade book records its score; our launch
//! tampered with in transit is refused by it, and its deep-linking response tampered
//! with in transit is refused by us with `invalid_tool_message` (`bad_signature`).
//!
//! The platform is what `lti platform --config FILE` runs — the same configuration
//! parser (`DevPlatformConfig`), the same `DevPlatform` and the same routes — served
//! in process on a loopback listener. Not the binary itself: an integration test of
//! this package cannot name another package's executable (`CARGO_BIN_EXE_*` exists
//! only for a package's own binaries), and building it from inside `cargo test`
//! would wait on the build lock cargo holds. The only differences from the binary
//! are the banner it prints and its key (here the interop fixture key instead of a
//! fresh one). Every step goes over HTTP, as a browser would: the course's launch
//! page, the login initiation form, ltijs's redirect to our authorization endpoint,
//! our form_post back to ltijs, ltijs's redirect to its app with its `ltik`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Response, StatusCode};
use lti_app::devplatform::{DevPlatform, DevPlatformConfig, router};
use lti_interop::PeerProcess;
use lti_jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

use common::{PLATFORM_PEM, send, swap_claim, temp_dir, text};

const CLIENT_ID: &str = "ltijs-client";
const DEPLOYMENT: &str = "dep-ltijs";
const COURSE: &str = lti_app::devplatform::COURSE_ID;
const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";
const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";

/// `lti platform` with ltijs registered as its one tool, and ltijs with our platform
/// registered.
struct World {
    /// The platform's public base URL (its issuer), no trailing slash.
    platform: String,
    peer: PeerProcess,
    db_dir: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir_all(&self.db_dir);
    }
}

/// The `lti platform` configuration file registering ltijs.
fn platform_config(bind: &str, base: &str, peer: &PeerProcess) -> String {
    let at = |k: &str| peer.ready[k].as_str().unwrap().to_owned();
    format!(
        r#"[platform]
bind = "{bind}"
public_url = "{base}"

[[tools]]
name = "ltijs"
client_id = "{CLIENT_ID}"
login_url = "{login}"
redirect_uris = ["{launch}"]
target_link_uri = "{launch}"
jwks_url = "{keys}"
deployment_id = "{DEPLOYMENT}"
"#,
        login = at("login_url"),
        launch = at("launch_url"),
        keys = at("keyset_url"),
    )
}

async fn world() -> Option<World> {
    let peers = lti_interop::peers("lti13: our platform -> ltijs")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bind = listener.local_addr().unwrap().to_string();
    // 127.0.0.1 rather than the binary's default `localhost`: the listener is IPv4
    // only, and Node may resolve `localhost` to ::1 first.
    let base = format!("http://{bind}");
    let db_dir = temp_dir("ltijs-db");
    let peer = peers.spawn(
        "ltijs_tool_peer.js",
        &json!({
            "iss": base, "client_id": CLIENT_ID,
            "auth_login_url": format!("{base}/auth"),
            "auth_token_url": format!("{base}/token"),
            "key_set_url": format!("{base}/.well-known/jwks.json"),
            "db_dir": db_dir,
        }),
    );
    let config = DevPlatformConfig::parse(&platform_config(&bind, &base, &peer))
        .unwrap_or_else(|problems| panic!("platform config: {problems:?}"));
    let key = SigningKey::from_pem(PLATFORM_PEM, Algorithm::RS256).unwrap();
    let dev = DevPlatform::with_signing_key(
        config.platform.public_url.as_deref().unwrap(),
        &config.tools,
        key,
    )
    .unwrap()
    .with_lti11_tools(&config.lti11_tools)
    .unwrap();
    // What `lti platform` prints for tool configuration is what ltijs was given.
    assert_eq!(dev.issuer(), base);
    assert_eq!(dev.auth_url(), format!("{base}/auth"));
    assert_eq!(dev.token_url(), format!("{base}/token"));
    assert_eq!(dev.jwks_url(), format!("{base}/.well-known/jwks.json"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, router(dev))
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Some(World {
        platform: base,
        peer,
        db_dir,
        shutdown: Some(tx),
    })
}

/// A user agent: cookies per origin (attributes ignored: everything here is
/// loopback), no redirects followed on its own.
#[derive(Default)]
struct Browser {
    jar: BTreeMap<String, BTreeMap<String, String>>,
}

fn origin(url: &str) -> String {
    let uri: http::Uri = url.parse().unwrap();
    format!("{}", uri.authority().unwrap())
}

impl Browser {
    async fn request(
        &mut self,
        builder: http::request::Builder,
        url: &str,
        body: Bytes,
    ) -> Response<Bytes> {
        let mut builder = builder.uri(url);
        if let Some(cookies) = self.jar.get(&origin(url)).filter(|c| !c.is_empty()) {
            let line: Vec<String> = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            builder = builder.header(COOKIE, line.join("; "));
        }
        let resp = send(builder.body(body).unwrap()).await;
        let jar = self.jar.entry(origin(url)).or_default();
        for set in resp.headers().get_all(SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
        resp
    }

    async fn get(&mut self, url: &str) -> Response<Bytes> {
        self.request(http::Request::get(url), url, Bytes::new())
            .await
    }

    async fn post_form(&mut self, url: &str, fields: &[(String, String)]) -> Response<Bytes> {
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            body.append_pair(k, v);
        }
        let builder =
            http::Request::post(url).header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        self.request(builder, url, Bytes::from(body.finish())).await
    }

    /// A call to one of the peer's `/do/...` routes, authorised the ltijs way: the
    /// `ltik` as a bearer token plus the session cookie.
    async fn call_peer(&mut self, url: &str, ltik: &str, body: &Value) -> Value {
        let builder = http::Request::post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, format!("Bearer {ltik}"));
        let resp = self
            .request(builder, url, Bytes::from(body.to_string()))
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{url}: {}", text(&resp));
        serde_json::from_slice(resp.body()).unwrap()
    }
}

/// The action and fields of the self-submitting form our platform answers with
/// (login initiation, form_post of the id_token).
fn auto_form(resp: &Response<Bytes>) -> (String, Vec<(String, String)>) {
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(resp));
    let html = text(resp);
    assert!(
        html.contains(".submit()"),
        "not a self-submitting form: {html}"
    );
    let attr = |tag: &str, name: &str| -> String {
        let key = format!(" {name}=\"");
        let start = tag.find(&key).map(|i| i + key.len()).unwrap_or(tag.len());
        let end = tag[start..].find('"').map_or(tag.len(), |i| start + i);
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let form_tag = html
        .split("<form")
        .nth(1)
        .unwrap()
        .split('>')
        .next()
        .unwrap();
    let fields = html
        .split("<input")
        .skip(1)
        .map(|t| t.split('>').next().unwrap())
        .map(|t| (attr(t, "name"), attr(t, "value")))
        .collect();
    (attr(form_tag, "action"), fields)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no field {name} in {fields:?}"))
}

fn location(resp: &Response<Bytes>) -> String {
    assert!(
        resp.status().is_redirection(),
        "{}: {}",
        resp.status(),
        text(resp)
    );
    resp.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// Our answer to ltijs's authentication request, not yet delivered: the form_post
/// fields (`id_token`, `state`) and where they go.
struct Answer {
    action: String,
    fields: Vec<(String, String)>,
}

/// Opens the course's launch `query` (`link=…&user=…` or `tool=…&user=…`) as a
/// browser would, up to our authorization endpoint's form_post (not submitted).
async fn start(w: &World, b: &mut Browser, query: &str) -> Answer {
    let page = b.get(&format!("{}/launch?{query}", w.platform)).await;
    assert_eq!(page.status(), StatusCode::OK, "{}", text(&page));
    let frame = b.get(&format!("{}/launch/frame?{query}", w.platform)).await;
    let (login_url, login_fields) = auto_form(&frame);
    assert_eq!(login_url, w.peer.ready["login_url"].as_str().unwrap());
    assert_eq!(field(&login_fields, "iss"), w.platform);
    assert_eq!(field(&login_fields, "client_id"), CLIENT_ID);
    let to_auth = location(&b.post_form(&login_url, &login_fields).await);
    assert!(
        to_auth.starts_with(&format!("{}/auth?", w.platform)),
        "ltijs redirects to our authorization endpoint: {to_auth}"
    );
    let (action, fields) = auto_form(&b.get(&to_auth).await);
    assert_eq!(action, w.peer.ready["launch_url"].as_str().unwrap());
    Answer { action, fields }
}

/// Delivers `answer` (with `id_token` replaced by `id_token` when given) and follows
/// ltijs's redirect to its app; returns the status and JSON of its last answer.
async fn deliver(b: &mut Browser, answer: &Answer, id_token: Option<String>) -> (u16, Value) {
    let mut fields = answer.fields.clone();
    if let Some(t) = id_token {
        for (k, v) in &mut fields {
            if k == "id_token" {
                *v = t.clone();
            }
        }
    }
    let mut resp = b.post_form(&answer.action, &fields).await;
    if resp.status().is_redirection() {
        let app = location(&resp);
        let app = if app.starts_with('/') {
            format!("{}{app}", answer.action.trim_end_matches('/'))
        } else {
            app
        };
        resp = b.get(&app).await;
    }
    let body = serde_json::from_slice(resp.body())
        .unwrap_or_else(|_| panic!("not JSON ({}): {}", resp.status(), text(&resp)));
    (resp.status().as_u16(), body)
}

/// A full launch accepted by ltijs: its JSON (`kind`, `ltik`, `token`).
async fn launch(w: &World, b: &mut Browser, query: &str) -> Value {
    let answer = start(w, b, query).await;
    let (status, body) = deliver(b, &answer, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Posts a deep-linking response JWT to our return URL, as ltijs's self-submitting
/// form would; returns our status and page.
async fn return_to_platform(b: &mut Browser, url: &str, jwt: &Value) -> (StatusCode, String) {
    let jwt = jwt.as_str().unwrap().to_owned();
    let resp = b.post_form(url, &[("JWT".into(), jwt)]).await;
    (resp.status(), text(&resp))
}

/// The grade book row of `member` (its `<tr>` … `</tr>`).
fn grade_row(html: &str, member: &str) -> String {
    let start = html
        .find(&format!("<tr><th>{member}"))
        .unwrap_or_else(|| panic!("no row for {member}: {html}"));
    let end = html[start..].find("</tr>").unwrap() + start;
    html[start..end].to_owned()
}

#[tokio::test]
async fn our_launch_is_accepted_by_ltijs_and_a_tampered_one_is_rejected() {
    let Some(w) = world().await else { return };
    let mut b = Browser::default();
    let body = launch(&w, &mut b, "link=link-1&user=ada").await;
    assert_eq!(body["kind"], "resource_link", "{body}");
    let token = &body["token"];
    assert_eq!(token["iss"], w.platform);
    assert_eq!(token["clientId"], CLIENT_ID);
    assert_eq!(token["deploymentId"], DEPLOYMENT);
    assert_eq!(token["userInfo"]["name"], "Ada Lovelace", "{token}");
    assert_eq!(token["userInfo"]["email"], "ada@example.edu", "{token}");
    let ctx = &token["platformContext"];
    assert_eq!(ctx["messageType"], "LtiResourceLinkRequest", "{ctx}");
    assert_eq!(ctx["version"], "1.3.0");
    assert_eq!(ctx["context"]["id"], COURSE, "{ctx}");
    assert_eq!(ctx["resource"]["id"], "link-1", "{ctx}");
    assert_eq!(ctx["roles"], json!([INSTRUCTOR]), "{ctx}");
    assert_eq!(ctx["custom"]["course_label"], "LTI 101", "{ctx}");
    assert!(
        ctx["endpoint"]["lineitems"]
            .as_str()
            .unwrap()
            .starts_with(&w.platform),
        "{ctx}"
    );
    assert!(
        ctx["namesRoles"]["context_memberships_url"]
            .as_str()
            .unwrap()
            .starts_with(&w.platform),
        "{ctx}"
    );

    // The next launch, its id_token changed in transit (roles): ltijs refuses it.
    let answer = start(&w, &mut b, "link=link-1&user=ada").await;
    let tampered = swap_claim(
        field(&answer.fields, "id_token"),
        "https://purl.imsglobal.org/spec/lti/claim/roles",
        json!(["http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"]),
    );
    let (status, body) = deliver(&mut b, &answer, Some(tampered)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["details"]["message"], "invalid signature", "{body}");
}

#[tokio::test]
async fn ltijs_deep_linking_response_is_accepted_by_our_platform_and_a_tampered_one_is_refused() {
    let Some(w) = world().await else { return };
    let mut b = Browser::default();
    let body = launch(&w, &mut b, &format!("tool={CLIENT_ID}&user=ada")).await;
    assert_eq!(body["kind"], "deep_linking", "{body}");
    let settings = &body["token"]["platformContext"]["deepLinkingSettings"];
    assert_eq!(
        settings["deep_link_return_url"],
        format!("{}/deep_link_return", w.platform),
        "{settings}"
    );
    let ltik = body["ltik"].as_str().unwrap().to_owned();
    let do_dl = format!("{}/do/deep-link", w.peer.url());

    let quiz = json!({"title": "Quiz from ltijs", "url": format!("{}/quiz/1", w.peer.url()), "score_maximum": 20});
    let dl = b.call_peer(&do_dl, &ltik, &quiz).await;
    let return_url = dl["return_url"].as_str().unwrap().to_owned();
    let (status, html) = return_to_platform(&mut b, &return_url, &dl["jwt"]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("<li>Quiz from ltijs (LTI resource link, graded)</li>"),
        "{html}"
    );
    assert!(html.contains("The tool says: Added by ltijs"), "{html}");
    let course = text(&b.get(&format!("{}/", w.platform)).await);
    assert!(course.contains("Quiz from ltijs"), "{course}");
    let book = text(&b.get(&format!("{}/gradebook", w.platform)).await);
    assert!(book.contains("Quiz from ltijs<br>"), "{book}");
    assert!(book.contains("out of 20"), "{book}");

    // A second response, its content items changed in transit: we refuse it.
    let other = json!({"title": "Original", "url": format!("{}/quiz/2", w.peer.url())});
    let dl = b.call_peer(&do_dl, &ltik, &other).await;
    let tampered = swap_claim(
        dl["jwt"].as_str().unwrap(),
        "https://purl.imsglobal.org/spec/lti-dl/claim/content_items",
        json!([{"type": "ltiResourceLink", "title": "Evil", "url": "https://evil.example/"}]),
    );
    let (status, html) = return_to_platform(&mut b, &return_url, &json!(tampered)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(
        html.contains("<code id=\"error-code\">invalid_tool_message</code>"),
        "{html}"
    );
    assert!(html.contains("(bad_signature)"), "{html}");
    let course = text(&b.get(&format!("{}/", w.platform)).await);
    assert!(!course.contains("Evil"), "{course}");
}

#[tokio::test]
async fn ltijs_ags_and_nrps_calls_succeed_with_our_tokens_and_our_grade_book_records_the_score() {
    let Some(w) = world().await else { return };
    let mut b = Browser::default();
    let body = launch(&w, &mut b, "link=link-1&user=alan").await;
    let ltik = body["ltik"].as_str().unwrap().to_owned();
    let sub = body["token"]["user"].as_str().unwrap().to_owned();
    assert_eq!(body["token"]["platformContext"]["roles"], json!([LEARNER]));

    let ags = b
        .call_peer(
            &format!("{}/do/ags", w.peer.url()),
            &ltik,
            &json!({"score": 7, "label": "ltijs activity"}),
        )
        .await;
    let item = &ags["lineItem"];
    let item_id = item["id"].as_str().unwrap();
    assert!(item_id.starts_with(&w.platform), "{ags}");
    assert_eq!(item["label"], "ltijs activity", "{ags}");
    assert_eq!(item["resourceLinkId"], "link-1", "{ags}");
    // submitScore read scoreMaximum back from our line item.
    assert_eq!(ags["sent"]["scoreMaximum"], 10.0, "{ags}");
    let scores = ags["scores"]["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 1, "{ags}");
    assert_eq!(scores[0]["userId"], sub, "{ags}");
    assert_eq!(scores[0]["resultScore"], 7.0, "{ags}");
    assert_eq!(scores[0]["resultMaximum"], 10.0, "{ags}");
    let listed = ags["lineItems"]["lineItems"].as_array().unwrap();
    assert!(listed.iter().any(|l| l["id"] == item["id"]), "{ags}");

    // Our grade book shows the score in the learner's row.
    let book = text(&b.get(&format!("{}/gradebook", w.platform)).await);
    assert!(book.contains("ltijs activity<br>"), "{book}");
    let row = grade_row(&book, "Alan Turing");
    assert!(row.contains("<span class=\"score\">7 / 10</span>"), "{row}");
    assert!(row.contains("graded by ltijs"), "{row}");

    let nrps = b
        .call_peer(&format!("{}/do/nrps", w.peer.url()), &ltik, &json!({}))
        .await;
    assert_eq!(nrps["context"]["id"], COURSE, "{nrps}");
    let members = nrps["members"].as_array().unwrap();
    assert_eq!(members.len(), 4, "{nrps}");
    assert!(members.iter().any(|m| m["user_id"] == sub), "{nrps}");
    let teachers = members
        .iter()
        .filter(|m| {
            m["roles"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == INSTRUCTOR)
        })
        .count();
    assert_eq!(teachers, 1, "{nrps}");
}
