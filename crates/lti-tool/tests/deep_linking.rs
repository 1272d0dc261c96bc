//! Deep-linking responses and the tool JWKS.
//!
//! The response JWTs are verified by an independent implementation: with
//! `LTI_TOOL_WRITE_DL=1`, `deep_link_tokens_are_written_and_cross_checked` writes the
//! tool's JWKS and response tokens to `tests/fixtures/lti-tool/deep-linking/tokens.json`;
//! `tests/fixtures/lti-tool/verify_dl.py` (PyJWT) verifies them and writes
//! `verdicts.json`. Both files are checked in; this test cross-checks the verdicts
//! on every run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::*;
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use lti_jose::{Algorithm, JwkSet, Verifier};
use lti_message::deep_linking::{HtmlItem, LinkItem, LtiResourceLinkItem};
use lti_registry::SecretString;
use lti_tool::{ContentItem, Launch};
use serde_json::{Map, Value, json};

const TOKENS: &str = include_str!("../../../tests/fixtures/lti-tool/deep-linking/tokens.json");
const VERDICTS: &str = include_str!("../../../tests/fixtures/lti-tool/deep-linking/verdicts.json");
const DL: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/";
const RETURN_URL: &str = "https://platform.example/deep_links/return?course=7";

fn deep_linking_claims(nonce: &str, now: i64, settings: Value) -> Map<String, Value> {
    let mut c = resource_link_claims(nonce, now);
    c.remove(&format!("{LTI}resource_link"));
    c.insert(format!("{LTI}message_type"), json!("LtiDeepLinkingRequest"));
    c.insert(format!("{DL}deep_linking_settings"), settings);
    c
}

fn settings() -> Value {
    json!({
        "deep_link_return_url": RETURN_URL,
        "accept_types": ["link", "ltiResourceLink", "html"],
        "accept_presentation_document_targets": ["iframe", "window"],
        "accept_multiple": true,
        "data": "csrf-token-echo-me"
    })
}

async fn deep_linking_launch(h: &Harness, settings: Value) -> Launch {
    let login = h.login().await;
    let token = h.sign(&deep_linking_claims(&login.nonce, h.clock_now(), settings));
    h.launch_token(&login, &token).await.unwrap().0
}

fn verify_with_published(token: &str, jwks: &JwkSet) -> Value {
    let verifier = Verifier::new(&[Algorithm::RS256]).unwrap();
    let jws = verifier.parse(token).unwrap();
    let key = jwks.find(jws.kid(), jws.algorithm()).unwrap();
    verifier.verify(&jws, &key).unwrap()
}

/// The form's `JWT` field value, un-escaped.
fn form_jwt(html: &str) -> String {
    let start = html.find("name=\"JWT\" value=\"").unwrap() + "name=\"JWT\" value=\"".len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn the_response_jwt_carries_every_required_claim_and_verifies_with_the_tool_jwks() {
    let h = Harness::new().await;
    let launch = deep_linking_launch(&h, settings()).await;
    let mut builder = launch.deep_linking_response().unwrap();
    builder
        .add_item(ContentItem::LtiResourceLink(LtiResourceLinkItem {
            title: Some("Quiz 3".into()),
            url: Some("https://tool.example/quiz/3".into()),
            ..Default::default()
        }))
        .unwrap()
        .add_item(ContentItem::Html(HtmlItem {
            html: "<p>Hello</p>".into(),
            ..Default::default()
        }))
        .unwrap()
        .msg("2 items added")
        .log("dl ok");
    let resp = h.tool.deep_link_response(&launch, &builder).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    let html = std::str::from_utf8(resp.body()).unwrap();
    assert!(html.contains(r#"<form id="lti-auto-submit" method="post" action="https://platform.example/deep_links/return?course=7">"#));
    assert!(html.contains(r#"<button type="submit">Continue</button>"#));
    assert!(html.contains(".submit();"));
    // The page's policy allows exactly its one inline script, by hash, and loads
    // nothing; the form's target (the platform, which may redirect) is free.
    let policy = resp.headers()[http::header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    let script = html
        .split("<script>")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .unwrap();
    let hash = ring::digest::digest(&ring::digest::SHA256, script.as_bytes());
    assert_eq!(
        policy,
        format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'unsafe-inline'; base-uri 'none'",
            base64::engine::general_purpose::STANDARD.encode(hash.as_ref())
        )
    );

    let token = form_jwt(html);
    let header = lti_jose::dangerous::decode_unverified::<Value>(&token)
        .unwrap()
        .0;
    assert_eq!(header.kid.as_deref(), Some("tool-key-1"));
    assert_eq!(header.alg, Algorithm::RS256);
    let jwks = h.tool.jwks_document().await.unwrap();
    let claims = verify_with_published(&token, &jwks);
    assert_eq!(claims["iss"], CLIENT_ID);
    assert_eq!(claims["aud"], ISS);
    assert_eq!(claims["iat"], NOW);
    assert_eq!(claims["exp"], NOW + 300);
    assert_eq!(claims["nonce"].as_str().unwrap().len(), 43);
    assert_eq!(
        claims[format!("{LTI}message_type")],
        "LtiDeepLinkingResponse"
    );
    assert_eq!(claims[format!("{LTI}version")], "1.3.0");
    assert_eq!(claims[format!("{LTI}deployment_id")], DEPLOYMENT);
    assert_eq!(claims[format!("{DL}data")], "csrf-token-echo-me");
    assert_eq!(claims[format!("{DL}msg")], "2 items added");
    assert_eq!(claims[format!("{DL}log")], "dl ok");
    let items = claims[format!("{DL}content_items")].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["type"], "ltiResourceLink");
    assert_eq!(items[0]["title"], "Quiz 3");
    assert_eq!(items[1]["type"], "html");

    // Every response has a fresh nonce.
    let again = h
        .tool
        .sign_deep_link_response(&launch, &builder)
        .await
        .unwrap();
    assert_ne!(
        verify_with_published(&again, &jwks)["nonce"],
        claims["nonce"]
    );
}

#[tokio::test]
async fn the_form_escapes_hostile_titles_and_return_urls() {
    let h = Harness::new().await;
    // A URL with quotes and markup cannot even be parsed as a URL: refused.
    let mut s = settings();
    s["deep_link_return_url"] =
        json!(r#"https://platform.example/return?x="><script>alert(1)</script>"#);
    let launch = deep_linking_launch(&h, s).await;
    let builder = launch.deep_linking_response().unwrap();
    expect_code(
        h.tool.deep_link_response(&launch, &builder).await,
        "invalid_claim",
    );
    // A parseable one with attribute-breaking characters is escaped.
    let hostile_url = "https://platform.example/return?a=1&b='onmouseover='alert(1)";
    let mut s = settings();
    s["deep_link_return_url"] = json!(hostile_url);
    let launch = deep_linking_launch(&h, s).await;
    let title = r#""><script>alert('title')</script><img src=x onerror=alert(2)>"#;
    let mut builder = launch.deep_linking_response().unwrap();
    builder
        .add_item(ContentItem::Link(LinkItem {
            url: "https://tool.example/page".into(),
            title: Some(title.into()),
            ..Default::default()
        }))
        .unwrap()
        .errormsg(title);
    let resp = h.tool.deep_link_response(&launch, &builder).await.unwrap();
    let html = std::str::from_utf8(resp.body()).unwrap();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains(
        "action=\"https://platform.example/return?a=1&amp;b=&#x27;onmouseover=&#x27;alert(1)\""
    ));
    assert_eq!(
        html.matches("<script>").count(),
        1,
        "only the auto-submit script"
    );
    // The title travels intact inside the signed JWT.
    let claims = verify_with_published(&form_jwt(html), &h.tool.jwks_document().await.unwrap());
    assert_eq!(claims[format!("{DL}content_items")][0]["title"], title);
    assert_eq!(claims[format!("{DL}errormsg")], title);
}

#[tokio::test]
async fn a_javascript_return_url_is_refused() {
    let h = Harness::new().await;
    let mut s = settings();
    s["deep_link_return_url"] = json!("javascript:alert(document.cookie)");
    let launch = deep_linking_launch(&h, s).await;
    let builder = launch.deep_linking_response().unwrap();
    let err = expect_code(
        h.tool.deep_link_response(&launch, &builder).await,
        "invalid_claim",
    );
    assert!(err.to_string().contains("deep_link_return_url"));
}

#[tokio::test]
async fn items_the_settings_do_not_accept_are_refused_by_the_builder() {
    let h = Harness::new().await;
    let mut s = settings();
    s["accept_types"] = json!(["link"]);
    s["accept_multiple"] = json!(false);
    let launch = deep_linking_launch(&h, s).await;
    let mut builder = launch.deep_linking_response().unwrap();
    let err = builder
        .add_item(ContentItem::Html(HtmlItem {
            html: "<p>x</p>".into(),
            ..Default::default()
        }))
        .unwrap_err();
    assert_eq!(err.code(), "content_item_type_not_accepted");
    // An empty response (nothing selected) is valid and still echoes data.
    let token = h
        .tool
        .sign_deep_link_response(&launch, &builder)
        .await
        .unwrap();
    let claims = verify_with_published(&token, &h.tool.jwks_document().await.unwrap());
    assert_eq!(claims[format!("{DL}content_items")], json!([]));
    assert_eq!(claims[format!("{DL}data")], "csrf-token-echo-me");
}

#[tokio::test]
async fn a_resource_link_launch_cannot_answer_with_a_deep_linking_response() {
    let h = Harness::new().await;
    let (launch, _) = h.launch_with(|_| {}).await.unwrap();
    expect_code(launch.deep_linking_response(), "not_deep_linking");
    let dl = deep_linking_launch(&h, settings()).await;
    let builder = dl.deep_linking_response().unwrap();
    expect_code(
        h.tool.sign_deep_link_response(&launch, &builder).await,
        "not_deep_linking",
    );
    expect_code(
        h.tool.deep_link_response(&launch, &builder).await,
        "not_deep_linking",
    );
}

#[tokio::test]
async fn a_loaded_deep_linking_launch_can_still_respond() {
    let h = Harness::new().await;
    let launch = deep_linking_launch(&h, settings()).await;
    let loaded = h.tool.load_launch(launch.launch_id()).await.unwrap();
    assert!(loaded.is_deep_linking());
    let builder = loaded.deep_linking_response().unwrap();
    let resp = h.tool.deep_link_response(&loaded, &builder).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_jwks_publishes_active_and_next_keys_with_kid_alg_and_use() {
    let h = Harness::new().await;
    h.store
        .tool_keys
        .add_next_key("tool-key-2", "RS256", &SecretString::new(TOOL_2_PEM))
        .await
        .unwrap();
    let resp = h.tool.jwks().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(resp.headers()[CACHE_CONTROL], "public, max-age=3600");
    let doc: Value = serde_json::from_slice(resp.body()).unwrap();
    let keys = doc["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0]["kid"], "tool-key-1");
    assert_eq!(keys[1]["kid"], "tool-key-2");
    for k in keys {
        assert_eq!(k["kty"], "RSA");
        assert_eq!(k["alg"], "RS256");
        assert_eq!(k["use"], "sig");
        assert_eq!(k["e"], "AQAB");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                k.get(private).is_none(),
                "private member {private} published"
            );
        }
    }

    // After rotation the new key signs, and the old one stays published during the overlap.
    h.store.tool_keys.promote_next_key().await.unwrap();
    let launch = deep_linking_launch(&h, settings()).await;
    let builder = launch.deep_linking_response().unwrap();
    let token = h
        .tool
        .sign_deep_link_response(&launch, &builder)
        .await
        .unwrap();
    let (header, _) = lti_jose::dangerous::decode_unverified::<Value>(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("tool-key-2"));
    let kids = |set: &JwkSet| {
        set.keys
            .iter()
            .map(|k| k.kid().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kids(&h.tool.jwks_document().await.unwrap()),
        ["tool-key-2", "tool-key-1"]
    );
    h.clock.advance(3601);
    assert_eq!(kids(&h.tool.jwks_document().await.unwrap()), ["tool-key-2"]);
}

#[tokio::test]
async fn without_an_active_key_signing_is_a_configuration_error() {
    let clock = lti_registry::ManualClock::new(NOW);
    let backend = std::sync::Arc::new(lti_store::MemoryStore::new(
        lti_registry::SecretCipher::insecure_plaintext_for_tests(),
        std::sync::Arc::new(clock.clone()),
    ));
    let store = lti_registry::Store::from_backend(backend);
    store
        .registrations
        .insert_registration(&registration())
        .await
        .unwrap();
    let h = Harness {
        tool: builder(&store, &clock).build().unwrap(),
        store,
        clock,
        key: platform_key(),
    };
    let launch = deep_linking_launch(&h, settings()).await;
    let builder = launch.deep_linking_response().unwrap();
    let err = expect_code(
        h.tool.sign_deep_link_response(&launch, &builder).await,
        "configuration",
    );
    assert_eq!(err.http_status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(h.tool.jwks_document().await.unwrap().keys.len(), 0);
}

/// Writes fresh tokens for the PyJWT script when `LTI_TOOL_WRITE_DL` is set, then
/// cross-checks the checked-in verdicts against the checked-in tokens and this
/// build's verifier.
#[tokio::test]
async fn deep_link_tokens_are_written_and_cross_checked() {
    if std::env::var_os("LTI_TOOL_WRITE_DL").is_some() {
        let h = Harness::new().await;
        let launch = deep_linking_launch(&h, settings()).await;
        let mut builder = launch.deep_linking_response().unwrap();
        builder
            .add_item(ContentItem::Link(LinkItem {
                url: "https://tool.example/page".into(),
                title: Some(r#"<b>"Quoted" & bold</b>"#.into()),
                ..Default::default()
            }))
            .unwrap()
            .msg("1 item added");
        let genuine = h
            .tool
            .sign_deep_link_response(&launch, &builder)
            .await
            .unwrap();
        let empty = h
            .tool
            .sign_deep_link_response(&launch, &launch.deep_linking_response().unwrap())
            .await
            .unwrap();
        let mut parts: Vec<&str> = genuine.split('.').collect();
        let forged_payload = {
            let mut c: Value =
                serde_json::from_slice(&lti_jose::b64::decode(parts[1]).unwrap()).unwrap();
            c["iss"] = json!("someone-else");
            lti_jose::b64::encode(&serde_json::to_vec(&c).unwrap())
        };
        parts[1] = &forged_payload;
        let tampered = parts.join(".");
        let doc = json!({
            "platform_issuer": ISS,
            "client_id": CLIENT_ID,
            "jwks": h.tool.jwks_document().await.unwrap(),
            "cases": [
                {"name": "one-link", "expect_valid": true, "jwt": genuine},
                {"name": "no-items", "expect_valid": true, "jwt": empty},
                {"name": "tampered-payload", "expect_valid": false, "jwt": tampered},
            ]
        });
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/lti-tool/deep-linking/tokens.json");
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
        eprintln!("wrote {}; now run verify_dl.py", path.display());
    }

    let tokens: Value = serde_json::from_str(TOKENS).unwrap();
    let verdicts: Value = serde_json::from_str(VERDICTS).unwrap();
    // The JWKS in the file is the tool key this crate publishes (same fixture PEM).
    let h = Harness::new().await;
    let published = h.tool.jwks_document().await.unwrap();
    assert_eq!(tokens["jwks"], serde_json::to_value(&published).unwrap());
    let cases = tokens["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let expect_valid = case["expect_valid"].as_bool().unwrap();
        let verdict = &verdicts[name];
        assert_eq!(
            verdict["valid"].as_bool(),
            Some(expect_valid),
            "PyJWT verdict for {name}: {verdict}"
        );
        // Our own verifier agrees with PyJWT.
        let ours = Verifier::new(&[Algorithm::RS256])
            .unwrap()
            .verify_token::<Value>(
                case["jwt"].as_str().unwrap(),
                &published
                    .find(Some("tool-key-1"), Algorithm::RS256)
                    .unwrap(),
            );
        assert_eq!(ours.is_ok(), expect_valid, "{name}");
        if expect_valid {
            // PyJWT decoded exactly the claims we signed.
            assert_eq!(verdict["claims"], ours.unwrap(), "{name}");
        }
    }
    assert_eq!(
        verdicts["one-link"]["claims"][format!("{DL}content_items")][0]["title"],
        r#"<b>"Quoted" & bold</b>"#
    );
}
