//! npm `ltijs` (an independent LTI 1.3 tool) registers itself with our dev
//! platform through LTI Dynamic Registration, then launches.
//!
//! An administrator's browser opens our `/admin/tools` page, submits ltijs's
//! registration URL with the page's CSRF token, and loads the framed URL our
//! platform answers with (ltijs's `/register` with `openid_configuration` and a
//! one-time `registration_token`). ltijs fetches our configuration document,
//! posts its metadata to our registration endpoint with the token, stores our
//! platform under the client id we assigned, and answers the page that posts
//! `org.imsglobal.lti.close`. Our course then lists ltijs with launch buttons,
//! and a launch from it is accepted by ltijs with the client id and deployment
//! id our registration created. Opening the same URL again (the token reused)
//! makes our endpoint refuse with 401 `registration_token_used`, which ltijs
//! reports as a failure; neither side stores anything more.
//!
//! The platform is the `DevPlatform` and router `lti platform` serves, in
//! process on a loopback listener (see `lti13_ltijs.rs` for why not the binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Response, StatusCode};
use lti_app::devplatform::{DevPlatform, router};
use lti_interop::PeerProcess;
use lti_jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

use common::{PLATFORM_PEM, send, temp_dir, text};

struct World {
    platform: String,
    dev: DevPlatform,
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

async fn world() -> Option<World> {
    world_with(3600, &[]).await
}

/// Our platform with registration tokens valid `token_secs`, and ltijs
/// declaring `extra_redirect_uris` besides its own.
async fn world_with(token_secs: u64, extra_redirect_uris: &[&str]) -> Option<World> {
    let peers = lti_interop::peers("dynamic registration: ltijs -> our platform")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let db_dir = temp_dir("ltijs-dynreg-db");
    let peer = peers.spawn(
        "ltijs_dynreg_peer.js",
        &json!({ "db_dir": db_dir, "redirect_uris": extra_redirect_uris }),
    );
    let key = SigningKey::from_pem(PLATFORM_PEM, Algorithm::RS256).unwrap();
    // No tools: ltijs arrives through Dynamic Registration only.
    let dev = DevPlatform::with_signing_key(&base, &[], key)
        .unwrap()
        .with_registration_token_lifetime(token_secs)
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(dev.clone());
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Some(World {
        platform: base,
        dev,
        peer,
        db_dir,
        shutdown: Some(tx),
    })
}

/// A user agent: cookies per host:port, no redirects followed on its own.
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
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Attribute `name` of the tag of `html` containing `marker`.
fn attr(html: &str, marker: &str, name: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {html}"));
    let start = html[..at + 1].rfind('<').unwrap();
    let tag = &html[start..start + html[start..].find('>').unwrap()];
    let key = format!(" {name}=\"");
    let from = tag.find(&key).unwrap_or_else(|| panic!("{name} in {tag}")) + key.len();
    unescape(&tag[from..from + tag[from..].find('"').unwrap()])
}

/// The action and fields of one of our self-submitting forms.
fn auto_form(resp: &Response<Bytes>) -> (String, Vec<(String, String)>) {
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(resp));
    let html = text(resp);
    let action = attr(&html, "<form", "action");
    let fields = html
        .split("<input")
        .skip(1)
        .map(|t| {
            let tag = format!("<input{}>", t.split('>').next().unwrap());
            (attr(&tag, "<input", "name"), attr(&tag, "<input", "value"))
        })
        .collect();
    (action, fields)
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

/// The admin's part: the form on `/admin/tools`, submitted with ltijs's
/// registration URL; returns the URL our page frames.
async fn submit_registration_url(w: &World, b: &mut Browser) -> String {
    let page = b.get(&format!("{}/admin/tools", w.platform)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = attr(&text(&page), "name=\"csrf_token\"", "value");
    let register_url = w.peer.ready["register_url"].as_str().unwrap().to_owned();
    let resp = b
        .post_form(
            &format!("{}/admin/tools", w.platform),
            &[
                ("registration_url".to_owned(), register_url.clone()),
                ("csrf_token".to_owned(), csrf),
            ],
        )
        .await;
    let html = text(&resp);
    assert_eq!(resp.status(), StatusCode::OK, "{html}");
    assert!(html.contains("org.imsglobal.lti.close"), "{html}");
    let src = attr(&html, "id=\"registration-frame\"", "src");
    assert!(
        src.starts_with(&format!("{register_url}?openid_configuration=")),
        "{src}"
    );
    src
}

async fn ltijs_platforms(w: &World) -> Value {
    let resp = send(
        http::Request::get(format!("{}/do/platforms", w.peer.url()))
            .body(Bytes::new())
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));
    serde_json::from_slice(resp.body()).unwrap()
}

#[tokio::test]
async fn ltijs_registers_dynamically_then_launches_and_a_reused_token_is_refused() {
    let Some(w) = world().await else { return };
    let mut b = Browser::default();
    assert_eq!(ltijs_platforms(&w).await, json!([]));

    let frame_url = submit_registration_url(&w, &mut b).await;
    // The framed page: ltijs registers, then answers the close message.
    let page = b.get(&frame_url).await;
    let html = text(&page);
    assert_eq!(page.status(), StatusCode::OK, "{html}");
    assert!(html.contains("org.imsglobal.lti.close"), "{html}");

    // Our side: one tool, with ltijs's URLs, a client id and a deployment.
    let tools = w.dev.tools();
    assert_eq!(tools.len(), 1);
    let tool = &tools[0];
    let client_id = tool.registration.client_id.clone();
    let deployment = tool.deployment_id.clone();
    assert_eq!(tool.registration.name, "ltijs (dynamic registration)");
    assert_eq!(
        tool.registration.login_initiation_url,
        w.peer.ready["login_url"].as_str().unwrap()
    );
    assert!(tool.registration.has_redirect_uri(w.peer.url()));
    // ltijs asks for AGS and NRPS; all are offered.
    assert_eq!(
        tool.registration.scopes.len(),
        5,
        "{:?}",
        tool.registration.scopes
    );
    // ltijs's side: our platform under the client id we assigned, active.
    assert_eq!(
        ltijs_platforms(&w).await,
        json!([{"url": w.platform, "client_id": client_id, "active": true}])
    );

    // The course lists ltijs with launch buttons; a launch as Ada is accepted.
    let course = text(&b.get(&format!("{}/", w.platform)).await);
    assert!(course.contains("ltijs (dynamic registration)"), "{course}");
    let link = attr(&course, "class=\"resource-link\"", "id")
        .trim_start_matches("item-")
        .to_owned();
    let launch_button = format!("id=\"launch-{link}-ada\"");
    assert!(course.contains(&launch_button), "{course}");
    let query = format!("link={link}&user=ada");
    let launch_page = b.get(&format!("{}/launch?{query}", w.platform)).await;
    assert_eq!(launch_page.status(), StatusCode::OK);
    let (login_url, login_fields) =
        auto_form(&b.get(&format!("{}/launch/frame?{query}", w.platform)).await);
    assert_eq!(login_url, w.peer.ready["login_url"].as_str().unwrap());
    let to_auth = location(&b.post_form(&login_url, &login_fields).await);
    assert!(
        to_auth.starts_with(&format!("{}/auth?", w.platform)),
        "{to_auth}"
    );
    let (action, fields) = auto_form(&b.get(&to_auth).await);
    let resp = b.post_form(&action, &fields).await;
    let app = location(&resp);
    let app = if app.starts_with('/') {
        format!("{}{app}", action.trim_end_matches('/'))
    } else {
        app
    };
    let resp = b.get(&app).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", text(&resp));
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["kind"], "resource_link", "{body}");
    assert_eq!(body["token"]["iss"], w.platform);
    assert_eq!(body["token"]["clientId"], client_id);
    assert_eq!(body["token"]["deploymentId"], deployment);
    assert_eq!(body["token"]["userInfo"]["name"], "Ada Lovelace", "{body}");

    // The same framed URL again: the token is spent. Our endpoint answers 401
    // (ltijs reports the failure), and neither side stores anything more.
    let again = b.get(&frame_url).await;
    assert_eq!(
        again.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        text(&again)
    );
    assert!(text(&again).contains("401"), "{}", text(&again));
    assert_eq!(w.dev.tools().len(), 1);
    assert_eq!(ltijs_platforms(&w).await.as_array().unwrap().len(), 1);

    // Straight to our endpoint with that token: the specific code.
    let token = frame_url
        .split_once('?')
        .map(|(_, q)| q)
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()).into_owned())
        .find(|(k, _)| k == "registration_token")
        .map(|(_, v)| v)
        .unwrap();
    let resp = send(
        http::Request::post(format!("{}/register", w.platform))
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .body(Bytes::from_static(b"{}"))
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(body["code"], "registration_token_used", "{body}");
    assert_eq!(w.dev.tools().len(), 1);
}

/// ltijs's attempt fails with our 401 or 400 (ltijs answers 500 naming the
/// status), and neither side stored anything.
async fn refused_by_us(w: &World, b: &mut Browser, frame_url: &str, status: &str) {
    let resp = b.get(frame_url).await;
    let body = text(&resp);
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains(status), "{body}");
    assert!(w.dev.tools().is_empty());
    assert_eq!(ltijs_platforms(w).await, json!([]));
    let course = text(&b.get(&format!("{}/", w.platform)).await);
    assert!(!course.contains("class=\"resource-link\""), "{course}");
}

#[tokio::test]
async fn an_expired_token_is_refused_and_nothing_is_stored() {
    let Some(w) = world_with(1, &[]).await else {
        return;
    };
    let mut b = Browser::default();
    let frame_url = submit_registration_url(&w, &mut b).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    refused_by_us(&w, &mut b, &frame_url, "401").await;
}

#[tokio::test]
async fn a_redirect_uri_outside_the_tools_domain_is_refused_and_nothing_is_stored() {
    let Some(w) = world_with(3600, &["https://elsewhere.example.org/launch"]).await else {
        return;
    };
    let mut b = Browser::default();
    let frame_url = submit_registration_url(&w, &mut b).await;
    refused_by_us(&w, &mut b, &frame_url, "400").await;
}

#[tokio::test]
async fn a_plain_http_url_off_loopback_is_refused_and_nothing_is_stored() {
    let Some(w) = world_with(3600, &["http://tool.example.org/launch"]).await else {
        return;
    };
    let mut b = Browser::default();
    let frame_url = submit_registration_url(&w, &mut b).await;
    refused_by_us(&w, &mut b, &frame_url, "400").await;
}
