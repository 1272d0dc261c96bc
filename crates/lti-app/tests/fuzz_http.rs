//! Hostile traffic against a running `lti demo`, checked for one property: no
//! request gets a 5xx, and the demo keeps running.
//!
//! Four kinds of generated requests, all seeded (`LTI_FUZZ_SEED`, default 1;
//! `LTI_FUZZ_CASES` scales the counts), so a failure names the request and the
//! seed that reproduce it:
//! - anonymous: any method on every route of both servers, with random query
//!   strings, bodies (forms, JSON, XML, bytes), media types, cookies and headers;
//! - the tool's pages with real launch ids (an instructor, a learner and a
//!   deep-linking launch, made by following the real login → launch flow);
//! - the OIDC round trip with one parameter of a real authorization request, or
//!   one field of a real launch form, dropped, doubled or replaced;
//! - the platform's AGS and NRPS endpoints with a real access token (a client
//!   assertion signed with the demo tool's test key), mutating valid line items and
//!   scores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod demo_support;

use demo_support::{
    Page, Session, attr, auto_submit_form, href, open_launch, resolve, spawn_demo, tag_by_id,
};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

/// The demo tool's test key (tests/fixtures/lti-app-platform/README.md).
const TOOL_PEM: &str =
    include_str!("../../../tests/fixtures/lti-app-platform/demo-keys/private.pem");

/// xorshift64*: small, seeded, good enough to pick cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Values that have broken parsers elsewhere.
const VALUES: &[&str] = &[
    "",
    "x",
    "-1",
    "0",
    "1",
    "1e309",
    "NaN",
    "inf",
    "1e-320",
    "null",
    "[]",
    "{}",
    "%",
    "%FF",
    "%00",
    "%zz",
    "<script>",
    "javascript:alert(1)",
    "https://evil.example/",
    "http://localhost:1/lti/course-101/lineitems/1",
    "\u{e9}\u{4e2d}",
    "\u{2028}",
    "../../etc/passwd",
    "eyJhbGciOiJub25lIn0.e30.",
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJpc3MiOiJ4In0.AAAA",
    "_parent",
    "ada",
    "alan",
    "link-1",
    "lti-demo-tool",
    "Learner",
    "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
];

const NAMES: &[&str] = &[
    "iss",
    "login_hint",
    "target_link_uri",
    "lti_message_hint",
    "lti_deployment_id",
    "client_id",
    "lti_storage_target",
    "id_token",
    "state",
    "lti_storage_confirm",
    "lti_storage_error",
    "lti_launch_id",
    "link",
    "user",
    "tool",
    "storage",
    "scope",
    "response_type",
    "redirect_uri",
    "nonce",
    "prompt",
    "response_mode",
    "grant_type",
    "client_assertion_type",
    "client_assertion",
    "JWT",
    "kind",
    "title",
    "user_id",
    "lineitem",
    "score_given",
    "score_maximum",
    "comment",
    "label",
    "resource_id",
    "page",
    "limit",
    "offset",
    "role",
    "rlid",
    "since",
    "resource_link_id",
    "tag",
    "oauth_consumer_key",
    "oauth_signature",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_nonce",
    "lti_message_type",
    "lti_version",
    "resource_link_id",
];

/// Percent-encodes everything but unreserved characters.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A query string of up to `max` random pairs; now and then a raw value (bad
/// percent-encodings included) or a repeated, empty or nameless pair.
fn query(rng: &mut Rng, max: usize) -> String {
    let mut pairs = Vec::new();
    for _ in 0..rng.below(max + 1) {
        let name = rng.pick(NAMES);
        let value = rng.pick(VALUES);
        // Raw: only characters a URI may hold as they are (bad escapes included).
        let raw = rng.chance(15)
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"%-._~:/".contains(&b));
        pairs.push(format!(
            "{name}={}",
            if raw { value.to_owned() } else { pct(value) }
        ));
    }
    if rng.chance(5) {
        pairs.push("&=&a&=b".to_owned());
    }
    pairs.join("&")
}

/// A body and its media type.
fn body(rng: &mut Rng) -> (Option<&'static str>, Vec<u8>) {
    match rng.below(6) {
        0..=2 => (
            Some("application/x-www-form-urlencoded"),
            query(rng, 8).into_bytes(),
        ),
        3 => (
            Some(rng.pick(&[
                "application/json",
                "application/vnd.ims.lis.v1.score+json",
                "application/vnd.ims.lis.v2.lineitem+json",
            ])),
            rng.pick(&[
                "{}",
                "[]",
                "{",
                "null",
                r#"{"scoreGiven":"x"}"#,
                r#"{"userId":1,"scoreGiven":1e999}"#,
                r#"{"label":"","scoreMaximum":-1}"#,
            ])
            .as_bytes()
            .to_vec(),
        ),
        4 => (
            Some(rng.pick(&["text/xml", "application/xml"])),
            rng.pick(&[
                "<a>",
                "<?xml version='1.0'?><imsx_POXEnvelopeRequest/>",
                "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>",
            ])
            .as_bytes()
            .to_vec(),
        ),
        _ => (
            [
                None,
                Some("text/plain"),
                Some("multipart/form-data; boundary=x"),
                Some("application/x-www-form-urlencoded; charset=latin1"),
            ][rng.below(4)],
            (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
        ),
    }
}

/// Extra headers: hostile cookies, origins, fetch metadata, credentials, accepts.
fn headers(rng: &mut Rng) -> Vec<(&'static str, &'static str)> {
    let choices: [(&str, &[&str]); 5] = [
        (
            "cookie",
            &[
                "a=b",
                "__Host-lti_state_x=y",
                ";;;=;",
                "lti_dev_platform_user=%FF",
                "lti_dev_platform_user=ada",
            ],
        ),
        ("origin", &["null", "http://evil.example"]),
        ("sec-fetch-site", &["same-origin", "cross-site", "???"]),
        (
            "authorization",
            &[
                "Bearer x",
                "Basic Og==",
                "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
                "OAuth oauth_consumer_key=\"x\"",
            ],
        ),
        (
            "accept",
            &[
                "application/json",
                "text/html",
                "*/*",
                "application/vnd.ims.lis.v2.lineitemcontainer+json",
            ],
        ),
    ];
    let mut out = Vec::new();
    for (name, values) in choices {
        if rng.chance(25) {
            out.push((name, rng.pick(values)));
        }
    }
    out
}

/// Sends one generated request and fails on a 5xx, naming what was sent; the
/// answer otherwise.
async fn send_checked(
    s: &mut Session,
    seed: u64,
    method: Method,
    url: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    extra: &[(&str, &str)],
) -> Page {
    if let Err(e) = url.parse::<hyper::Uri>() {
        panic!("seed {seed}: the generator made an unsendable URL {url:?}: {e}");
    }
    let shown = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    let page = s.send(method.clone(), url, content_type, body, extra).await;
    assert!(
        !page.status.is_server_error(),
        "seed {seed}: {method} {url} ({content_type:?}, {extra:?}, body {shown:?}) got {}: {}",
        page.status,
        page.body.chars().take(300).collect::<String>()
    );
    page
}

fn method(rng: &mut Rng) -> Method {
    rng.pick(&[
        &Method::GET,
        &Method::GET,
        &Method::POST,
        &Method::POST,
        &Method::PUT,
        &Method::DELETE,
        &Method::HEAD,
        &Method::OPTIONS,
        &Method::PATCH,
    ])
    .clone()
}

/// The launch id of the page the launch at `launch_url` lands on.
async fn launch_id(s: &mut Session, launch_url: &str) -> String {
    let init = open_launch(s, launch_url).await;
    let landing: Page = s.follow(init).await.pop().unwrap();
    assert_eq!(landing.status, StatusCode::OK, "{}", landing.body);
    let (_, query) = landing.url.split_once('?').expect("launch id in the URL");
    // Launch ids are base64url: nothing to decode.
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("lti_launch_id="))
        .expect("lti_launch_id")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_hostile_requests_never_get_a_5xx() {
    let seed: u64 = std::env::var("LTI_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let scale: usize = std::env::var("LTI_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut demo = spawn_demo();
    // The client id the platform gave the tool at start-up (Dynamic Registration).
    let (client_id, _) = demo.registration();
    let tool = demo.tool_url.trim_end_matches('/').to_owned();
    let platform = demo.platform_url.trim_end_matches('/').to_owned();
    let mut s = Session::new();
    // Status counts per kind, printed for the record.
    let mut seen: [std::collections::BTreeMap<u16, usize>; 3] = Default::default();

    // 1. Anonymous requests to every route of both servers.
    let routes: [(&str, &[&str]); 2] = [
        (
            &tool,
            &[
                "/healthz",
                "/lti/login",
                "/lti/launch",
                "/lti/app",
                "/lti/app/ags",
                "/lti/app/ags/lineitems",
                "/lti/app/ags/scores",
                "/lti/app/nrps",
                "/lti/app/deep-link",
                "/lti11/launch",
                "/lti11/outcomes",
                "/lti11/visits/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "/lti11/visits/x/new-window",
                "/.well-known/jwks.json",
                "/",
            ],
        ),
        (
            &platform,
            &[
                "/",
                "/healthz",
                "/switch",
                "/launch",
                "/launch/frame",
                "/storage-frame",
                "/auth",
                "/.well-known/jwks.json",
                "/token",
                "/deep_link_return",
                "/lti/course-101/lineitems",
                "/lti/course-101/lineitems/1",
                "/lti/course-101/lineitems/1/scores",
                "/lti/course-101/lineitems/1/results",
                "/lti/course-101/memberships",
                "/gradebook",
                "/roster",
                "/lti11/outcomes",
            ],
        ),
    ];
    for _ in 0..800 * scale {
        let (base, paths) = routes[rng.below(2)];
        let mut path = rng.pick(paths).to_owned();
        if rng.chance(8) {
            path.push_str(rng.pick(&["/x", "/..", "/%2e%2e", "/%FF", "/%00", "/%2F"]));
        }
        let q = query(&mut rng, 6);
        let url = format!("{base}{path}{}{q}", if q.is_empty() { "" } else { "?" });
        let m = method(&mut rng);
        let (ct, b) = if m == Method::GET && !rng.chance(10) {
            (None, Vec::new())
        } else {
            body(&mut rng)
        };
        let extra = headers(&mut rng);
        let status = send_checked(&mut s, seed, m, &url, ct, b, &extra)
            .await
            .status;
        *seen[0].entry(status.as_u16()).or_default() += 1;
    }

    // 2. The tool's pages with real launches (which also grant the tool the course).
    let course = s.get(&demo.platform_url).await;
    let mut ids = Vec::new();
    for link in ["launch-link-1-ada", "launch-link-1-alan"] {
        let url = href(&course, link);
        ids.push(launch_id(&mut s, &url).await);
    }
    ids.push(
        launch_id(
            &mut s,
            &format!("{platform}/launch?tool={client_id}&user=ada"),
        )
        .await,
    );
    let pages: &[(&Method, &str)] = &[
        (&Method::GET, "/lti/app"),
        (&Method::GET, "/lti/app/ags"),
        (&Method::GET, "/lti/app/nrps"),
        (&Method::POST, "/lti/app/ags/scores"),
        (&Method::POST, "/lti/app/ags/lineitems"),
        (&Method::POST, "/lti/app/deep-link"),
    ];
    let mut answered = 0;
    for _ in 0..400 * scale {
        let (m, path) = pages[rng.below(pages.len())];
        let id = if rng.chance(90) {
            ids[rng.below(ids.len())].clone()
        } else {
            rng.pick(VALUES).to_owned()
        };
        let mut fields = query(&mut rng, 6);
        for (name, value) in [
            ("score_given", "7"),
            ("score_maximum", "10"),
            ("kind", "link"),
            ("label", "L"),
        ] {
            if rng.chance(30) {
                fields.push_str(&format!("&{name}={value}"));
            }
        }
        let status = if *m == Method::GET {
            let url = format!("{tool}{path}?lti_launch_id={}&{fields}", pct(&id));
            send_checked(&mut s, seed, Method::GET, &url, None, Vec::new(), &[])
                .await
                .status
        } else {
            let url = format!("{tool}{path}?lti_launch_id={}", pct(&id));
            let (ct, b) = if rng.chance(85) {
                (
                    Some("application/x-www-form-urlencoded"),
                    fields.into_bytes(),
                )
            } else {
                body(&mut rng)
            };
            send_checked(&mut s, seed, Method::POST, &url, ct, b, &[])
                .await
                .status
        };
        answered += usize::from(status == StatusCode::OK);
        *seen[1].entry(status.as_u16()).or_default() += 1;
    }
    assert!(answered > 0, "no generated page request was answered 200");

    // 3. The OIDC round trip with one part changed: a real authorization request
    // (from the tool's login page) and a real launch form (from the platform's
    // answer), each sent with one parameter dropped, doubled or replaced.
    let course = s.get(&demo.platform_url).await;
    let mut round_trip = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..25 * scale {
        let init = open_launch(&mut s, &href(&course, "launch-link-1-ada")).await;
        let form = auto_submit_form(&init.body).expect("login initiation form");
        let login = s
            .post_form(&resolve(&init.url, &form.action), &form.fields)
            .await;
        let to_auth = tag_by_id(&login.body, "a", "lti-continue")
            .and_then(|a| attr(a, "href"))
            .map(|h| resolve(&login.url, &h))
            .expect("the storage login page's way on");
        let (base, query) = to_auth.split_once('?').unwrap();
        let pairs: Vec<(String, String)> = query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        // One pair dropped, doubled or given another value; also returns its name.
        let mutated = |rng: &mut Rng, pairs: &[(String, String)]| {
            let mut out = pairs.to_vec();
            let i = rng.below(out.len());
            let name = out[i].0.clone();
            match rng.below(3) {
                0 => {
                    out.remove(i);
                }
                1 => out.push(out[i].clone()),
                _ => out[i].1 = pct(rng.pick(VALUES)),
            }
            (out, name)
        };
        let (auth_pairs, _) = mutated(&mut rng, &pairs);
        let auth_url = format!(
            "{base}?{}",
            auth_pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        );
        let status = send_checked(&mut s, seed, Method::GET, &auth_url, None, Vec::new(), &[])
            .await
            .status;
        *round_trip.entry(status.as_u16()).or_default() += 1;
        // The unchanged request, then its launch form with one field changed.
        let answer = s.get(&to_auth).await;
        let Some(launch) = auto_submit_form(&answer.body) else {
            panic!(
                "seed {seed}: no launch form from {to_auth}: {}",
                answer.body
            );
        };
        let fields: Vec<(String, String)> = launch
            .fields
            .iter()
            .map(|(k, v)| (pct(k), pct(v)))
            .collect();
        let (changed, name) = mutated(&mut rng, &fields);
        let body = changed
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let status = send_checked(
            &mut s,
            seed,
            Method::POST,
            &resolve(&answer.url, &launch.action),
            Some("application/x-www-form-urlencoded"),
            body.into_bytes(),
            &[],
        )
        .await
        .status;
        // A launch form whose token or state was changed is never accepted.
        if name == "id_token" || name == "state" {
            assert!(
                status.is_client_error(),
                "seed {seed}: a launch form with a changed {name} got {status}"
            );
        }
        *round_trip.entry(status.as_u16()).or_default() += 1;
    }
    eprintln!("seed {seed}, changed OIDC round trips: statuses {round_trip:?}");

    // 4. The platform's services with a real access token.
    let token_url = format!("{platform}/token");
    let key = lti_jose::SigningKey::from_pem(TOOL_PEM, lti_jose::Algorithm::RS256).unwrap();
    let jwks: Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/lti-app-platform/demo-keys/jwks.json"
    ))
    .unwrap();
    let key = key.with_kid(jwks["keys"][0]["kid"].as_str().unwrap());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let assertion = lti_jose::sign(
        &json!({"iss": client_id, "sub": client_id, "aud": token_url, "iat": now, "exp": now + 300, "jti": format!("fuzz-{seed}-{now}")}),
        &key,
    )
    .unwrap();
    let scopes = [
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    ]
    .join(" ");
    let form = format!(
        "grant_type=client_credentials&client_assertion_type={}&client_assertion={assertion}&scope={}",
        pct("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        pct(&scopes)
    );
    let granted = s
        .send(
            Method::POST,
            &token_url,
            Some("application/x-www-form-urlencoded"),
            form.into_bytes(),
            &[],
        )
        .await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.body);
    let token: Value = serde_json::from_str(&granted.body).unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let services = format!("{platform}/lti/course-101");
    let line_item = json!({"scoreMaximum": 100, "label": "L", "resourceId": "r1", "tag": "t", "resourceLinkId": "link-1", "startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2027-01-01T00:00:00Z"});
    // The dev platform knows its course's links: a line item names one of the
    // tool's own or none.
    for (link, expected) in [
        (json!("link-1"), StatusCode::CREATED),
        (json!("link-999"), StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        let mut item = line_item.clone();
        item["resourceLinkId"] = link.clone();
        let answer = s
            .send(
                Method::POST,
                &format!("{services}/lineitems"),
                Some("application/vnd.ims.lis.v2.lineitem+json"),
                item.to_string().into_bytes(),
                &[
                    ("authorization", bearer.as_str()),
                    ("accept", "application/vnd.ims.lis.v2.lineitem+json"),
                ],
            )
            .await;
        assert_eq!(answer.status, expected, "{link}: {}", answer.body);
        if expected == StatusCode::UNPROCESSABLE_ENTITY {
            assert!(
                answer.body.contains("unknown_resource_link"),
                "{}",
                answer.body
            );
        }
    }
    let odd: [Value; 14] = [
        Value::Null,
        json!(""),
        json!("x"),
        json!(-1),
        json!(0),
        json!(1e308),
        json!(1.5),
        json!(true),
        json!([]),
        json!({}),
        json!("a".repeat(70_000)),
        json!("\u{0}"),
        json!("2020-13-45T99:99:99Z"),
        json!(u64::MAX),
    ];
    let mutate = |rng: &mut Rng, value: &Value| {
        let mut v = value.clone();
        let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        for _ in 0..=rng.below(3) {
            let key = keys[rng.below(keys.len())].clone();
            if rng.chance(20) {
                v.as_object_mut().unwrap().remove(&key);
            } else {
                v[key] = odd[rng.below(odd.len())].clone();
            }
        }
        v
    };
    // Scores name real members (their `sub`s, from NRPS) as well as strangers.
    let roster = s
        .send(
            Method::GET,
            &format!("{services}/memberships"),
            None,
            Vec::new(),
            &[
                ("authorization", bearer.as_str()),
                (
                    "accept",
                    "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
                ),
            ],
        )
        .await;
    assert_eq!(roster.status, StatusCode::OK, "{}", roster.body);
    let roster: Value = serde_json::from_str(&roster.body).unwrap();
    let mut users: Vec<String> = roster["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!users.is_empty());
    users.push("nobody".to_owned());
    let mut items = vec!["1".to_owned(), "999".to_owned(), "%FF".to_owned()];
    let mut succeeded = 0;
    for _ in 0..400 * scale {
        let item = items[rng.below(items.len())].clone();
        let user = users[rng.below(users.len())].clone();
        let score = json!({"userId": user, "scoreGiven": 5, "scoreMaximum": 10, "timestamp": "2026-06-01T00:00:00Z", "activityProgress": "Completed", "gradingProgress": "FullyGraded"});
        let (m, path, body) = match rng.below(7) {
            0 => (
                Method::POST,
                "/lineitems".to_owned(),
                Some(if rng.chance(30) {
                    line_item.clone()
                } else {
                    mutate(&mut rng, &line_item)
                }),
            ),
            1 => (
                Method::GET,
                format!("/lineitems?{}", query(&mut rng, 3)),
                None,
            ),
            2 => (Method::GET, format!("/lineitems/{item}"), None),
            3 => (
                Method::PUT,
                format!("/lineitems/{item}"),
                Some(mutate(&mut rng, &line_item)),
            ),
            4 => (
                Method::POST,
                format!("/lineitems/{item}/scores"),
                Some(if rng.chance(40) {
                    score
                } else {
                    mutate(&mut rng, &score)
                }),
            ),
            5 => (
                Method::GET,
                format!("/lineitems/{item}/results?{}", query(&mut rng, 3)),
                None,
            ),
            _ => (
                Method::GET,
                format!("/memberships?{}", query(&mut rng, 3)),
                None,
            ),
        };
        let ct = rng.pick(&[
            "application/vnd.ims.lis.v2.lineitem+json",
            "application/vnd.ims.lis.v1.score+json",
            "application/json",
        ]);
        let accept = rng.pick(&[
            "application/vnd.ims.lis.v2.lineitemcontainer+json",
            "application/vnd.ims.lis.v2.lineitem+json",
            "application/vnd.ims.lis.v2.resultcontainer+json",
            "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
            "*/*",
        ]);
        let extra = [("authorization", bearer.as_str()), ("accept", accept)];
        let url = format!("{services}{path}");
        let sent = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let has_body = !sent.is_empty();
        let answer = send_checked(
            &mut s,
            seed,
            m.clone(),
            &url,
            has_body.then_some(ct),
            sent,
            &extra,
        )
        .await;
        let status = answer.status;
        if status.is_success() {
            succeeded += 1;
        }
        *seen[2].entry(status.as_u16()).or_default() += 1;
        if status == StatusCode::CREATED
            && let Ok(created) = serde_json::from_str::<Value>(&answer.body)
            && let Some(id) = created["id"].as_str()
        {
            // Later cases use the new line item too (its id's last segment).
            items.push(id.rsplit('/').next().unwrap().to_owned());
        }
    }
    assert!(
        succeeded > 0,
        "no generated service request succeeded: the token or context grant did not work"
    );
    for (kind, counts) in ["anonymous", "tool pages", "platform services"]
        .iter()
        .zip(&seen)
    {
        eprintln!("seed {seed}, {kind}: statuses {counts:?}");
    }
    assert!(demo.is_running(), "the demo survived seed {seed}");
}
