//! The claim objects (`context`, `resource_link`, `tool_platform`, AGS, NRPS, ...):
//! known members typed, unknown members kept, a member given twice refused, and the
//! byte decoder agreeing with the `Value` decoder on every input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lti_message::{Audience, IdTokenClaims, MessageError, uri};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn from_text(text: &str) -> Result<IdTokenClaims, MessageError> {
    IdTokenClaims::from_slice(text.as_bytes())
}

#[test]
fn unknown_members_are_kept_next_to_the_typed_ones() {
    let claims = IdTokenClaims::from_value(json!({
        uri::CONTEXT: {"id": "c1", "type": "CourseOffering", "vendor": {"x": [1, 2]}},
        uri::RESOURCE_LINK: {"id": "r1", "title": null, "canvas_extra": true},
        uri::AGS_ENDPOINT: {"scope": ["s"], "lineitems": "https://p.example/li", "x": 1},
        uri::NRPS: {"context_memberships_url": "https://p.example/m", "service_versions": ["2.0"], "y": "z"},
        uri::LAUNCH_PRESENTATION: {"width": "640px", "height": 480.4, "document_target": "iframe"},
    }))
    .unwrap();
    let context = claims.context.as_ref().unwrap();
    assert_eq!(context.id.as_deref(), Some("c1"));
    assert_eq!(context.types, ["CourseOffering"]);
    assert_eq!(context.extra["vendor"], json!({"x": [1, 2]}));
    let link = claims.resource_link.as_ref().unwrap();
    assert_eq!(link.title, None);
    assert_eq!(link.extra["canvas_extra"], json!(true));
    let ags = claims.ags_endpoint.as_ref().unwrap();
    assert_eq!(ags.scope, ["s"]);
    assert_eq!(ags.extra["x"], json!(1));
    assert_eq!(claims.nrps.as_ref().unwrap().extra["y"], json!("z"));
    let lp = claims.launch_presentation.as_ref().unwrap();
    assert_eq!((lp.width, lp.height), (Some(640), Some(480)));
}

#[test]
fn a_member_given_twice_inside_a_claim_object_is_refused_with_the_claim_named() {
    let text = format!(
        r#"{{"{}": {{"id": "a", "label": "L", "id": "b"}}}}"#,
        uri::CONTEXT
    );
    match from_text(&text).unwrap_err() {
        MessageError::MalformedClaim { claim, reason } => {
            assert_eq!(claim, uri::CONTEXT);
            assert!(reason.contains("duplicate field `id`"), "{reason}");
        }
        other => panic!("expected MalformedClaim, found {other:?}"),
    }
    // Unknown members given twice keep the last value, as a JSON object would.
    let text = format!(
        r#"{{"{}": {{"id": "a", "v": 1, "v": 2}}}}"#,
        uri::RESOURCE_LINK
    );
    let claims = from_text(&text).unwrap();
    assert_eq!(claims.resource_link.unwrap().extra["v"], json!(2));
}

#[test]
fn context_type_is_a_string_an_array_of_strings_or_null_and_nothing_else() {
    let types = |v: Value| {
        IdTokenClaims::from_value(json!({ uri::CONTEXT: {"type": v} }))
            .map(|c| c.context.unwrap().types)
    };
    assert_eq!(types(json!("A")).unwrap(), ["A"]);
    assert_eq!(types(json!(["A", "B"])).unwrap(), ["A", "B"]);
    assert!(types(json!(null)).unwrap().is_empty());
    for bad in [json!(1), json!(["A", 2]), json!({"a": "b"}), json!(true)] {
        match types(bad.clone()).unwrap_err() {
            MessageError::MalformedClaim { claim, .. } => assert_eq!(claim, uri::CONTEXT),
            other => panic!("{bad}: expected MalformedClaim, found {other:?}"),
        }
    }
}

#[test]
fn aud_keeps_its_shape_and_refuses_other_types() {
    let aud = |v: Value| IdTokenClaims::from_value(json!({ "aud": v })).map(|c| c.aud);
    assert_eq!(aud(json!("c")).unwrap(), Some(Audience::Single("c".into())));
    assert_eq!(
        aud(json!(["c", "d"])).unwrap(),
        Some(Audience::Multiple(vec!["c".into(), "d".into()]))
    );
    assert_eq!(aud(json!(null)).unwrap(), None);
    for bad in [json!(1), json!(["c", 1]), json!({"c": 1})] {
        match aud(bad.clone()).unwrap_err() {
            MessageError::MalformedClaim { claim, .. } => assert_eq!(claim, "aud"),
            other => panic!("{bad}: expected MalformedClaim, found {other:?}"),
        }
    }
}

#[test]
fn a_claim_object_that_is_not_an_object_is_refused() {
    for claim in [
        uri::CONTEXT,
        uri::TOOL_PLATFORM,
        uri::DEEP_LINKING_SETTINGS,
        uri::NRPS,
    ] {
        for bad in [json!("x"), json!([1]), json!(3)] {
            match IdTokenClaims::from_value(json!({ claim: bad })).unwrap_err() {
                MessageError::MalformedClaim { claim: named, .. } => assert_eq!(named, claim),
                other => panic!("{claim} = {bad}: expected MalformedClaim, found {other:?}"),
            }
        }
    }
}

const OBJECT_CLAIMS: &[&str] = &[
    uri::CONTEXT,
    uri::RESOURCE_LINK,
    uri::TOOL_PLATFORM,
    uri::LAUNCH_PRESENTATION,
    uri::LIS,
    uri::FOR_USER,
    uri::LTI1P1,
    uri::DEEP_LINKING_SETTINGS,
    uri::AGS_ENDPOINT,
    uri::NRPS,
    uri::GROUPS_SERVICE,
    uri::BASIC_OUTCOME,
    uri::CALIPER_ENDPOINT,
];

/// Member names: the known ones of every claim object, and strangers.
const MEMBERS: &[&str] = &[
    "id",
    "title",
    "label",
    "type",
    "description",
    "guid",
    "name",
    "version",
    "width",
    "height",
    "document_target",
    "return_url",
    "user_id",
    "roles",
    "scope",
    "scopes",
    "lineitems",
    "service_versions",
    "context_memberships_url",
    "accept_types",
    "accept_multiple",
    "data",
    "lis_result_sourcedid",
    "vendor",
    "x",
];

fn arb_member_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        // Quarters print and parse back exactly (serde_json parses long fractions
        // approximately).
        (-4000i32..4000).prop_map(|q| Value::from(f64::from(q) / 4.0)),
        "[a-z0-9 ]{0,8}".prop_map(Value::from),
        prop::collection::vec("[a-z]{0,4}".prop_map(Value::from), 0..3).prop_map(Value::from),
        prop::collection::vec(any::<i8>().prop_map(Value::from), 0..3).prop_map(Value::from),
        Just(json!({"k": "v"})),
    ]
}

fn arb_claim_objects() -> impl Strategy<Value = Value> {
    let object = prop::collection::vec((prop::sample::select(MEMBERS), arb_member_value()), 0..6)
        .prop_map(|members| {
            Value::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            )
        });
    prop::collection::vec((prop::sample::select(OBJECT_CLAIMS), object), 1..5).prop_map(|claims| {
        let mut m = Map::new();
        for (k, v) in claims {
            m.insert(k.to_owned(), v);
        }
        Value::Object(m)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Decoding from bytes and from a `Value` agree, and what decodes round-trips.
    #[test]
    fn byte_and_value_decoding_agree_on_claim_objects(v in arb_claim_objects()) {
        let bytes = serde_json::to_vec(&v).unwrap();
        let from_bytes = IdTokenClaims::from_slice(&bytes);
        let from_value = IdTokenClaims::from_value(v);
        match (&from_bytes, &from_value) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a, b);
                let again = IdTokenClaims::from_value(serde_json::to_value(a).unwrap()).unwrap();
                prop_assert_eq!(&again, a);
            }
            (Err(MessageError::MalformedClaim { claim: a, .. }), Err(MessageError::MalformedClaim { claim: b, .. })) => {
                prop_assert_eq!(a, b);
            }
            _ => prop_assert!(false, "bytes: {:?}, value: {:?}", from_bytes, from_value),
        }
    }
}
