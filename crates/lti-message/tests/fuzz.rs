//! Property tests: arbitrary input never panics the parsers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lti_message::lti11::Lti11LaunchParams;
use lti_message::{
    ContextType, IdTokenClaims, LtiMessage, Role, Roles, Timestamp, ValidationOptions, uri,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        Just(Value::String("1.3.0".into())),
        Just(Value::String("LtiResourceLinkRequest".into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    ".{0,8}",
                    Just("id".to_owned()),
                    Just("type".to_owned()),
                    Just("width".to_owned()),
                    Just("deep_link_return_url".to_owned()),
                    Just("user_id".to_owned()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const KEYS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nonce",
    "name",
    "email",
    uri::MESSAGE_TYPE,
    uri::VERSION,
    uri::DEPLOYMENT_ID,
    uri::RESOURCE_LINK,
    uri::ROLES,
    uri::CONTEXT,
    uri::LAUNCH_PRESENTATION,
    uri::CUSTOM,
    uri::FOR_USER,
    uri::LTI1P1,
    uri::EXT,
    uri::DEEP_LINKING_SETTINGS,
    uri::AGS_ENDPOINT,
    uri::NRPS,
    uri::TOOL_PLATFORM,
    uri::LIS,
];

/// Claim sets whose known claims hold arbitrary JSON.
fn arb_claims() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(KEYS), arb_json()), 0..14).prop_map(|pairs| {
        let mut m = Map::new();
        for (k, v) in pairs {
            m.insert(k.to_owned(), v);
        }
        Value::Object(m)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics_and_decoded_claims_round_trip(v in prop_oneof![arb_json(), arb_claims()]) {
        for opts in [ValidationOptions::default(), ValidationOptions::default().allow_anonymous(true).allow_unknown_message_types(true)] {
            let _ = LtiMessage::from_value(v.clone(), &opts);
        }
        if let Ok(claims) = IdTokenClaims::from_value(v) {
            let encoded = serde_json::to_value(&claims).unwrap();
            let again = IdTokenClaims::from_value(encoded).unwrap();
            prop_assert_eq!(again, claims);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_slice_parser(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = LtiMessage::from_slice(&bytes, &ValidationOptions::default());
    }

    #[test]
    fn arbitrary_roles_never_panic_and_are_kept_verbatim(s in ".{0,80}", suffix in "[A-Za-z#/:-]{0,20}") {
        for input in [s.clone(), format!("urn:lti:role:ims/lis/{suffix}"), format!("http://purl.imsglobal.org/vocab/lis/v2/membership/{suffix}"), format!("{suffix}{s}")] {
            let r = Role::parse(&input);
            prop_assert_eq!(r.as_str(), input.as_str());
            let _ = (r.is_known(), r.to_v2_uri(), r.rank(), r.is_teaching_assistant());
            if let Some(uri) = r.to_v2_uri() {
                let again = Role::parse(&uri);
                prop_assert_eq!((again.vocabulary(), again.role_type(), again.sub_type()), (r.vocabulary(), r.role_type(), r.sub_type()));
            }
        }
        let _ = Roles::from_lti11_param(&s).permissions();
        let _ = ContextType::parse(&s).as_v2_uri();
    }

    #[test]
    fn arbitrary_timestamps_never_panic_and_formatted_ones_parse_back(s in ".{0,40}", ms in -62_000_000_000_000i64..253_000_000_000_000i64) {
        let _ = Timestamp::parse(&s);
        let t = Timestamp::from_unix_millis(ms).unwrap();
        prop_assert_eq!(Timestamp::parse(t.as_str()).unwrap().unix_millis(), ms);
    }

    #[test]
    fn arbitrary_lti11_forms_never_panic(pairs in prop::collection::vec(("(lti_|custom_|ext_|roles|context_type)?.{0,10}", ".{0,20}"), 0..12)) {
        let p = Lti11LaunchParams::from_pairs(pairs);
        let _ = (p.required_parameters(), p.optional_parameters(), p.custom_parameters(), p.ext_parameters(), p.roles(), p.context_types());
    }
}
