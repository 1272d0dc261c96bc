//! `IdTokenClaims::scan` against the full decoding: whatever the scan accepts,
//! `IdTokenClaims::from_json_str` accepts, with the same kept values and the same
//! classification; and payloads of the plain shape are not left to the full
//! decoding (so launches take the fast path).
#![allow(clippy::unwrap_used, missing_docs)]

use lti_message::{
    IdTokenClaims, LtiMessage, MessageError, RequiredClaim, ScannedClaims, ValidationOptions, uri,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const C: &str = "https://purl.imsglobal.org/spec/lti/claim/";

fn valid() -> Value {
    json!({
        "iss": "https://platform.example.edu", "sub": "u-1", "aud": "client-1",
        "exp": 1_900_000_300, "iat": 1_900_000_000, "nonce": "n-1",
        "name": "Jane", "email": "jane@example.edu",
        format!("{C}message_type"): "LtiResourceLinkRequest",
        format!("{C}version"): "1.3.0",
        format!("{C}deployment_id"): "d-1",
        format!("{C}target_link_uri"): "https://tool.example.com/launch",
        format!("{C}resource_link"): { "id": "rl-1", "title": "Quiz" },
        format!("{C}roles"): ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
        format!("{C}context"): { "id": "c-1", "type": ["CourseOffering"] },
        format!("{C}custom"): { "a": "1", "b": 2 },
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "lineitems": "https://platform.example.edu/li"
        }
    })
}

/// The kept values agree with the typed claims'.
fn assert_agrees(s: &ScannedClaims<'_>, c: &IdTokenClaims) {
    assert_eq!(s.iss(), c.iss.as_deref());
    assert_eq!(s.sub(), c.sub.as_deref());
    assert_eq!(
        s.aud(),
        c.aud
            .as_ref()
            .map(|a| a.as_slice().iter().map(String::as_str).collect())
    );
    assert_eq!(s.azp(), c.azp.as_deref());
    assert_eq!(s.exp().map(|e| e as i64), c.exp);
    assert_eq!(s.iat().map(|e| e as i64), c.iat);
    assert_eq!(s.nbf(), c.extra.get("nbf").and_then(Value::as_u64));
    assert_eq!(s.nonce(), c.nonce.as_deref());
    assert_eq!(s.deployment_id(), c.deployment_id.as_deref());
    assert_eq!(s.target_link_uri(), c.target_link_uri.as_deref());
    assert_eq!(s.message_type(), c.message_type.as_deref());
}

/// The scan and the full decoding agree on `text`; returns whether the scan
/// vouched for it.
fn check(text: &str) -> bool {
    let full = IdTokenClaims::from_json_str(text);
    let Some(scanned) = IdTokenClaims::scan(text) else {
        return false;
    };
    let claims = match full {
        Ok(c) => c,
        Err(e) => panic!("the scan accepted what the full decoding refuses ({e}): {text}"),
    };
    assert_agrees(&scanned, &claims);
    for opts in [
        ValidationOptions::new(),
        ValidationOptions::new()
            .allow_anonymous(true)
            .allow_unknown_message_types(true),
    ] {
        let by_scan = scanned.classify(&opts);
        let by_decoding = LtiMessage::from_claims(claims.clone(), &opts);
        match (&by_scan, &by_decoding) {
            (Ok(classified), Ok(message)) => {
                assert_eq!(
                    classified.is_deep_linking(),
                    matches!(message, LtiMessage::DeepLinking(_))
                );
                // The deferred decoding gives the eager one's message.
                assert_eq!(&LtiMessage::decode_classified(text, *classified), message);
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
            _ => panic!("classification differs: {by_scan:?} / {by_decoding:?} for {text}"),
        }
    }
    true
}

#[test]
fn a_plain_launch_is_scanned_and_agrees() {
    let text = valid().to_string();
    assert!(check(&text));
    let s = IdTokenClaims::scan(&text).unwrap();
    assert_eq!(s.iss(), Some("https://platform.example.edu"));
    assert_eq!(s.aud(), Some(vec!["client-1"]));
    assert_eq!(s.exp(), Some(1_900_000_300));
    assert!(
        s.classify(&ValidationOptions::new()).is_ok(),
        "a valid resource link launch"
    );
}

#[test]
fn escaped_strings_are_kept_unescaped() {
    // PHP's json_encode escapes slashes, in names and values.
    let text = valid()
        .to_string()
        .replace('/', "\\/")
        .replace("\"n-1\"", "\"n\\u002d1\"");
    assert!(check(&text));
    let s = IdTokenClaims::scan(&text).unwrap();
    assert_eq!(s.iss(), Some("https://platform.example.edu"));
    assert_eq!(s.nonce(), Some("n-1"));
    assert_eq!(s.target_link_uri(), Some("https://tool.example.com/launch"));
}

#[test]
fn shapes_left_to_the_full_decoding() {
    let mut cases = Vec::new();
    for (claim, value) in [
        ("exp", json!(null)),
        ("exp", json!(1.5e9)),
        ("exp", json!(-1)),
        ("iat", json!("1900000000")),
        ("nbf", json!(null)),
        ("nbf", json!(1.5)),
    ] {
        let mut v = valid();
        v[claim] = value;
        cases.push(v.to_string());
    }
    let mut no_exp = valid();
    no_exp.as_object_mut().unwrap().remove("exp");
    cases.push(no_exp.to_string());
    // nbf twice (the full decoding keeps the last).
    cases.push(
        valid()
            .to_string()
            .replacen('{', "{\"nbf\":1,\"nbf\":2,", 1),
    );
    // serde_json's reserved keys inside an unknown claim.
    let mut reserved = valid();
    reserved["x"] = json!({"$serde_json::private::RawValue": "{}"});
    cases.push(reserved.to_string());
    for text in cases {
        assert!(
            IdTokenClaims::scan(&text).is_none(),
            "expected the scan to decline {text}"
        );
    }
}

#[test]
fn malformed_payloads_are_not_scanned() {
    let mut dup = valid().to_string();
    dup.insert_str(1, "\"iss\":\"https://other.example\",");
    let mut wrong_type = valid();
    wrong_type[format!("{C}resource_link")] = json!({"id": 5});
    let mut bad_custom = valid();
    bad_custom[format!("{C}custom")] = json!([1]);
    let mut aud_null_item = valid();
    aud_null_item["aud"] = json!(["a", null]);
    let mut ags_scope_null = valid();
    ags_scope_null["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]["scope"] = json!(null);
    let mut dup_member = valid().to_string();
    dup_member = dup_member.replacen("\"id\":\"rl-1\"", "\"id\":\"rl-1\",\"id\":\"rl-2\"", 1);
    // Each refused by the full decoding, naming the claim (or the payload).
    for (text, claim) in [
        (dup, "iss"),
        (wrong_type.to_string(), uri::RESOURCE_LINK),
        (bad_custom.to_string(), uri::CUSTOM),
        (aud_null_item.to_string(), "aud"),
        (ags_scope_null.to_string(), uri::AGS_ENDPOINT),
        (dup_member, uri::RESOURCE_LINK),
        (format!("{} x", valid()), "(payload)"),
        ("{\"exp\": 1e400}".to_owned(), "exp"),
    ] {
        match IdTokenClaims::from_json_str(&text) {
            Err(MessageError::MalformedClaim { claim: found, .. }) => {
                assert_eq!(found, claim, "{text}");
            }
            other => panic!("expected malformed_claim for {claim}, found {other:?}"),
        }
        assert!(IdTokenClaims::scan(&text).is_none(), "{text}");
    }
    assert!(matches!(
        IdTokenClaims::from_json_str("[1]"),
        Err(MessageError::NotAnObject { found: "an array" })
    ));
    assert!(IdTokenClaims::scan("[1]").is_none());
}

#[test]
fn classification_errors_match() {
    let mut no_link = valid();
    no_link
        .as_object_mut()
        .unwrap()
        .remove(&format!("{C}resource_link"));
    let s = no_link.to_string();
    let scanned = IdTokenClaims::scan(&s).unwrap();
    assert!(matches!(
        scanned.classify(&ValidationOptions::new()),
        Err(MessageError::MissingClaim(RequiredClaim::ResourceLinkId))
    ));
    assert!(check(&s));
}

/// JSON values of every type, including the edge cases of numbers and strings.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e12f64..1e12).prop_map(|f| json!(f)),
        "[a-z/ ]{0,8}".prop_map(Value::String),
        Just(json!("")),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,6}", inner), 0..3)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A value for a claim: often of the right shape, sometimes anything.
fn claim_value(shape: &'static str) -> BoxedStrategy<Value> {
    let string = "[a-z0-9:/.-]{0,12}".prop_map(Value::String);
    let strings = prop::collection::vec("[a-z0-9:/.#-]{0,12}", 0..3).prop_map(|v| json!(v));
    let right: BoxedStrategy<Value> = match shape {
        "string" => string.boxed(),
        "strings" => strings.boxed(),
        "date" => (0u64..4_000_000_000).prop_map(|n| json!(n)).boxed(),
        "aud" => prop_oneof![string, strings].boxed(),
        "object" => prop::collection::vec(
            (
                prop_oneof![
                    Just("id"),
                    Just("title"),
                    Just("type"),
                    Just("user_id"),
                    Just("deep_link_return_url"),
                    Just("accept_types"),
                    Just("accept_multiple"),
                    Just("scope"),
                    Just("lineitems"),
                    Just("width"),
                    Just("other"),
                ],
                prop_oneof![
                    "[a-z0-9:/.-]{0,12}".prop_map(Value::String),
                    prop::collection::vec("[a-z]{0,5}", 0..3).prop_map(|v| json!(v)),
                    any::<bool>().prop_map(Value::Bool),
                    Just(Value::Null),
                    (0u32..5000).prop_map(|n| json!(n)),
                ],
            ),
            0..5,
        )
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
        .boxed(),
        _ => any_value().boxed(),
    };
    prop_oneof![8 => right, 1 => Just(Value::Null), 2 => any_value()].boxed()
}

/// Claim sets near valid launches of each message type.
fn claim_set() -> impl Strategy<Value = String> {
    let claims: Vec<(String, &'static str)> = vec![
        ("iss".into(), "string"),
        ("sub".into(), "string"),
        ("aud".into(), "aud"),
        ("azp".into(), "string"),
        ("exp".into(), "date"),
        ("iat".into(), "date"),
        ("nbf".into(), "date"),
        ("nonce".into(), "string"),
        ("name".into(), "string"),
        ("locale".into(), "string"),
        (uri::MESSAGE_TYPE.into(), "type"),
        (uri::VERSION.into(), "version"),
        (uri::DEPLOYMENT_ID.into(), "string"),
        (uri::TARGET_LINK_URI.into(), "string"),
        (uri::RESOURCE_LINK.into(), "object"),
        (uri::ROLES.into(), "strings"),
        (uri::ROLE_SCOPE_MENTOR.into(), "strings"),
        (uri::CONTEXT.into(), "object"),
        (uri::LAUNCH_PRESENTATION.into(), "object"),
        (uri::CUSTOM.into(), "any"),
        (uri::FOR_USER.into(), "object"),
        (uri::DEEP_LINKING_SETTINGS.into(), "object"),
        (uri::AGS_ENDPOINT.into(), "object"),
        (uri::NRPS.into(), "object"),
        ("https://example.com/vendor".into(), "any"),
    ];
    let per_claim: Vec<BoxedStrategy<Option<(String, Value)>>> = claims
        .into_iter()
        .map(|(name, shape)| {
            let value = match shape {
                "type" => prop_oneof![
                    Just(json!("LtiResourceLinkRequest")),
                    Just(json!("LtiDeepLinkingRequest")),
                    Just(json!("LtiSubmissionReviewRequest")),
                    Just(json!("SomethingElse")),
                    Just(json!("")),
                    any_value(),
                ]
                .boxed(),
                "version" => prop_oneof![4 => Just(json!("1.3.0")), 1 => any_value()].boxed(),
                other => claim_value(other),
            };
            let present = if matches!(shape, "date") && name != "nbf" { 12 } else { 4 };
            prop_oneof![present => value.prop_map(move |v| Some((name.clone(), v))), 1 => Just(None)]
                .boxed()
        })
        .collect();
    (per_claim, any::<bool>(), any::<bool>()).prop_map(|(entries, twice, escape)| {
        let entries: Vec<(String, Value)> = entries.into_iter().flatten().collect();
        let mut text = String::from("{");
        for (i, (k, v)) in entries.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&format!("{}:{}", json!(k), v));
        }
        // Sometimes a claim given twice.
        if twice && let Some((k, v)) = entries.first() {
            text.push_str(&format!(",{}:{}", json!(k), v));
        }
        text.push('}');
        if escape {
            text = text.replace('/', "\\/");
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Whatever the scan accepts, the full decoding accepts, with the same values
    /// and the same classification.
    #[test]
    fn the_scan_never_accepts_more(text in claim_set()) {
        check(&text);
    }

    /// Arbitrary JSON objects (not claim-shaped) alike.
    #[test]
    fn arbitrary_objects_alike(v in prop::collection::vec(("[a-z]{1,4}", any_value()), 0..6)) {
        let text = Value::Object(v.into_iter().collect()).to_string();
        check(&text);
    }

    /// A payload the full decoding accepts, with plain time claims and no `nbf`
    /// given twice, is always scanned (the fast path is not skipped).
    #[test]
    fn plain_payloads_are_scanned(text in claim_set()) {
        if IdTokenClaims::from_json_str(&text).is_ok() {
            // Plain: `exp` and `iat` JSON integers from 0 to i64::MAX, `nbf` absent
            // or such an integer, given once (a duplicate known claim fails the full
            // decoding, so the JSON tree holds the only `exp` and `iat`).
            let tree: Value = serde_json::from_str(&text).unwrap();
            let integer = |v: &Value| v.as_u64().is_some_and(|n| i64::try_from(n).is_ok());
            let plain = integer(&tree["exp"])
                && integer(&tree["iat"])
                && match tree.get("nbf") {
                    None => true,
                    Some(v) => integer(v) && text.matches("\"nbf\":").count() == 1,
                };
            if plain {
                prop_assert!(IdTokenClaims::scan(&text).is_some(), "not scanned: {}", text);
            }
        }
    }
}

/// `decode_classified` cannot fail: given a text that is not the one classified
/// (the only way the full decoding could disagree with the scan), it keeps the
/// classified message type and whatever decodes, instead of panicking.
#[test]
fn the_deferred_decoding_degrades_instead_of_failing() {
    let text = valid().to_string();
    let classified = IdTokenClaims::scan(&text)
        .unwrap()
        .classify(&ValidationOptions::new())
        .unwrap();
    // The typed decoding refuses this one: every claim is kept as sent.
    let refused = r#"{"iss":5,"sub":"u-9"}"#;
    let message = LtiMessage::decode_classified(refused, classified);
    assert!(matches!(message, LtiMessage::ResourceLink(_)));
    assert_eq!(message.claims().iss, None);
    assert_eq!(message.claims().extra["iss"], json!(5));
    assert_eq!(message.claims().extra["sub"], json!("u-9"));
    // This one decodes but is another message type: the classified type stays.
    let mut other = valid();
    other[uri::MESSAGE_TYPE] = json!("LtiDeepLinkingRequest");
    let message = LtiMessage::decode_classified(&other.to_string(), classified);
    assert!(matches!(message, LtiMessage::ResourceLink(_)));
    assert_eq!(message.message_type(), "LtiDeepLinkingRequest");
    // Not JSON at all: an empty claim set, still of the classified type.
    let message = LtiMessage::decode_classified("not json", classified);
    assert!(matches!(message, LtiMessage::ResourceLink(_)));
    assert!(message.claims().extra.is_empty());
}
