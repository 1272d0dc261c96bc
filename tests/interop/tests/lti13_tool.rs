//! PyPI `lti1p3platform` (an independent LTI 1.3 platform) → our tool (`lti serve`,
//! in process on a loopback port): its resource-link and deep-linking launches are
//! accepted; our deep-linking response is accepted by it; our AGS client
//! (`lti-services`) posts a score and reads results and our NRPS client reads its
//! roster, with access tokens from its token endpoint; a launch of its that is
//! tampered with in transit is rejected by us, and our deep-linking response
//! tampered with in transit is rejected by it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use lti_http::{HyperClient, ServiceClient};
use lti_interop::PeerProcess;
use lti_jose::{Algorithm, SigningKey};
use lti_message::IdTokenClaims;
use lti_message::ags::Score;
use lti_services::{LtiServices, MembershipsQuery, ResultsQuery, ServiceRegistration};
use serde_json::{Value, json};

use common::*;

const CLIENT_ID: &str = "peer-client-1";
const DEPLOYMENT: &str = "peer-deployment-1";

struct Setup {
    tool: Tool,
    peer: PeerProcess,
}

async fn setup() -> Option<Setup> {
    let peers = lti_interop::peers("lti13: lti1p3platform -> our tool")?;
    let mut slot = None;
    let tool = start_tool(|url| {
        let peer = peers.spawn(
            "lti13_platform_peer.py",
            &json!({
                "client_id": CLIENT_ID, "deployment_id": DEPLOYMENT, "platform_pem": PLATFORM_PEM,
                "tool_login_url": format!("{url}/lti/login"),
                "tool_launch_url": format!("{url}/lti/app"),
                "tool_jwks_url": format!("{url}/.well-known/jwks.json"),
            }),
        );
        let iss = peer.url().to_owned();
        slot = Some(peer);
        vec![PlatformEntry {
            issuer: iss.clone(),
            client_id: CLIENT_ID.into(),
            auth_login_url: format!("{iss}/auth"),
            auth_token_url: format!("{iss}/token"),
            jwks_url: format!("{iss}/jwks"),
            deployment_id: DEPLOYMENT.into(),
        }]
    })
    .await;
    Some(Setup {
        tool,
        peer: slot.unwrap(),
    })
}

/// The peer initiates a login of `kind` at our tool; our tool redirects to the
/// peer's authorization endpoint, which answers with the form it would auto-post.
/// Returns (launch_url, state, id_token, our state cookie).
async fn peer_launch(s: &Setup, kind: &str) -> (String, String, String, String) {
    let init = get(&format!("{}/login-init?kind={kind}", s.peer.url())).await;
    assert_eq!(init.status(), 200, "{}", text(&init));
    let login_url = serde_json::from_slice::<Value>(init.body()).unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        login_url.starts_with(&format!("{}/lti/login?", s.tool.url)),
        "{login_url}"
    );
    let login = get(&login_url).await;
    assert_eq!(login.status(), 302, "{}", text(&login));
    let auth = location(&login);
    assert!(
        auth.starts_with(&format!("{}/auth?", s.peer.url())),
        "{auth}"
    );
    let cookie = cookie(&login);
    let form = get(&auth).await;
    assert_eq!(form.status(), 200, "{}", text(&form));
    let form: Value = serde_json::from_slice(form.body()).unwrap();
    (
        form["launch_url"].as_str().unwrap().to_owned(),
        form["state"].as_str().unwrap().to_owned(),
        form["id_token"].as_str().unwrap().to_owned(),
        cookie,
    )
}

fn launch_body(state: &str, id_token: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("state", state)
        .append_pair("id_token", id_token)
        .finish()
}

fn payload(jwt: &str) -> Value {
    serde_json::from_slice(&lti_jose::b64::decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

/// Replaces the payload of a JWS with `claims` (keeping header and signature).
fn swap_payload(jwt: &str, claims: &Value) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        lti_jose::b64::encode(claims.to_string().as_bytes()),
        parts[2]
    )
}

#[tokio::test]
async fn its_resource_link_launch_is_accepted_and_a_tampered_one_is_rejected() {
    let Some(s) = setup().await else { return };
    let (launch_url, state, id_token, cookie) = peer_launch(&s, "resource").await;
    assert_eq!(launch_url, format!("{}/lti/launch", s.tool.url));
    let resp = post_form(
        &launch_url,
        launch_body(&state, &id_token),
        Some(&cookie),
        false,
    )
    .await;
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let inspector = location(&resp);
    let page = get(&inspector).await;
    assert_eq!(page.status(), 200);
    let page = text(&page);
    assert!(page.contains("LtiResourceLinkRequest"), "{page}");
    assert!(
        page.contains("Peer Course") && page.contains("Peer Instructor"),
        "{page}"
    );

    // A fresh launch whose id_token is changed in transit (learner promoted to a
    // different user): the signature no longer verifies.
    let (launch_url, state, id_token, cookie) = peer_launch(&s, "resource").await;
    let mut claims = payload(&id_token);
    claims["sub"] = json!("someone-else");
    let resp = post_form(
        &launch_url,
        launch_body(&state, &swap_payload(&id_token, &claims)),
        Some(&cookie),
        true,
    )
    .await;
    assert_eq!(resp.status(), 401, "{}", text(&resp));
    assert_eq!(json_error(&resp), "bad_signature");
}

#[tokio::test]
async fn its_deep_linking_launch_is_accepted_and_our_response_is_accepted_by_it() {
    let Some(s) = setup().await else { return };
    let (launch_url, state, id_token, cookie) = peer_launch(&s, "deep").await;
    assert_eq!(
        payload(&id_token)["https://purl.imsglobal.org/spec/lti/claim/message_type"],
        "LtiDeepLinkingRequest"
    );
    let resp = post_form(
        &launch_url,
        launch_body(&state, &id_token),
        Some(&cookie),
        false,
    )
    .await;
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let id = param(&location(&resp), "lti_launch_id").unwrap();

    // Our tool builds the deep-linking response (the inspector's picker).
    let form = post_form(
        &format!("{}/lti/app/deep-link?lti_launch_id={id}", s.tool.url),
        "kind=ltiResourceLink&title=Interop+quiz".into(),
        None,
        false,
    )
    .await;
    assert_eq!(form.status(), 200, "{}", text(&form));
    let html = text(&form);
    let action = html
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(action, format!("{}/dl-return", s.peer.url()));
    let jwt = html
        .split("name=\"JWT\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();

    // lti1p3platform verifies it with our JWKS (fetched from the tool) and
    // returns the content items.
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("JWT", &jwt)
        .finish();
    let accepted = post_form(&action, body, None, false).await;
    assert_eq!(accepted.status(), 200, "{}", text(&accepted));
    let accepted: Value = serde_json::from_slice(accepted.body()).unwrap();
    assert_eq!(accepted["content_items"][0]["type"], "ltiResourceLink");
    assert_eq!(accepted["content_items"][0]["title"], "Interop quiz");

    // Our response changed in transit (another title): it rejects it.
    let mut claims = payload(&jwt);
    claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"][0]["title"] =
        json!("Evil");
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("JWT", &swap_payload(&jwt, &claims))
        .finish();
    let refused = post_form(&action, body, None, false).await;
    assert_eq!(refused.status(), 400, "{}", text(&refused));
    assert!(
        text(&refused).contains("InvalidSignatureError"),
        "{}",
        text(&refused)
    );
}

#[tokio::test]
async fn our_ags_and_nrps_clients_work_against_it_with_its_tokens() {
    let Some(s) = setup().await else { return };
    let (launch_url, state, id_token, cookie) = peer_launch(&s, "resource").await;
    let resp = post_form(
        &launch_url,
        launch_body(&state, &id_token),
        Some(&cookie),
        false,
    )
    .await;
    assert_eq!(resp.status(), 303, "{}", text(&resp));
    let claims = IdTokenClaims::from_value(payload(&id_token)).unwrap();

    // The tool's key, with the kid its JWKS publishes (the peer verifies our client
    // assertion against that JWKS).
    let jwks: Value = serde_json::from_slice(
        get(&format!("{}/.well-known/jwks.json", s.tool.url))
            .await
            .body(),
    )
    .unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap();
    let key = Arc::new(
        SigningKey::from_pem(TOOL_PEM, Algorithm::RS256)
            .unwrap()
            .with_kid(kid),
    );
    let registration = ServiceRegistration::new(
        s.peer.url(),
        CLIENT_ID,
        format!("{}/token", s.peer.url()),
        key,
    );
    let services = LtiServices::new(Arc::new(ServiceClient::new(Arc::new(
        HyperClient::builder()
            .allow_private_addresses()
            .build()
            .unwrap(),
    ))));

    let ags = services.ags_from_launch(&registration, &claims).unwrap();
    let items = ags.list_line_items(&Default::default()).await.unwrap();
    assert_eq!(items.len(), 1);
    let lineitem = items[0].id.clone().unwrap();
    let score =
        Score::completed_fully_graded("peer-user-3", 7.5, 10.0, lti_message::Timestamp::now());
    ags.post_score(&lineitem, &score).await.unwrap();
    let results = ags
        .list_results(&lineitem, &ResultsQuery::default())
        .await
        .unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].user_id, "peer-user-3");
    assert_eq!(results[0].result_score, Some(7.5));

    let nrps = services.nrps_from_launch(&registration, &claims).unwrap();
    let roster = nrps.list_members(&MembershipsQuery::new()).await.unwrap();
    assert_eq!(roster.members.len(), 5);
    assert_eq!(roster.members[0].user_id, "peer-user-1");

    // A bearer token it did not issue is refused by its endpoints.
    let forged = lti_http::HttpClient::send(
        &HyperClient::builder()
            .allow_private_addresses()
            .build()
            .unwrap(),
        http::Request::get(format!("{}/memberships", s.peer.url()))
            .header(http::header::AUTHORIZATION, "Bearer forged.token.value")
            .body(bytes::Bytes::new())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(forged.status(), 401);
}
