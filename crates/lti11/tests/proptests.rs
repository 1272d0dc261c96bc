#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests: signatures round-trip arbitrary parameter sets; parsers
//! never panic on arbitrary input.

mod common;

use common::{Fixture, KEY, NOW, SECRET};
use lti11::oauth::{self, OAuthParams};
use lti11::pox::{OutcomeRequest, OutcomeResponse, Score};
use lti11::{Credentials, Passport, SignatureMethod, SignedRequest, parse_custom_parameters};
use proptest::prelude::*;

fn param() -> impl Strategy<Value = (String, String)> {
    ("[a-z_]{1,6}|[a-zA-Z0-9 %&=+.~*é日]{1,8}", any::<String>())
        .prop_filter("not an oauth_ name", |(k, _)| !k.starts_with("oauth_"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

    #[test]
    fn signatures_round_trip_arbitrary_parameter_sets(
        body in prop::collection::vec(param(), 0..12),
        query in prop::collection::vec(param(), 0..4),
        sha256 in any::<bool>(),
        path in "/[a-zA-Z0-9/_.-]{0,20}",
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let fx = Fixture::new();
        let qs = form_urlencoded::Serializer::new(String::new()).extend_pairs(&query).finish();
        let url = if qs.is_empty() { format!("https://tool.example.com{path}") } else { format!("https://tool.example.com{path}?{qs}") };
        let mut p = OAuthParams::new(NOW as u64);
        if sha256 { p.method = SignatureMethod::HmacSha256; }
        let protocol = oauth::sign_params("POST", &url, &body, &Credentials::new(KEY, SECRET), &p).unwrap();
        let form = form_urlencoded::Serializer::new(String::new()).extend_pairs(&body).extend_pairs(&protocol).finish();
        let verifier = fx.oauth();
        let verified = rt.block_on(verifier.verify(&SignedRequest::form_post(&url, form.as_bytes())));
        prop_assert!(verified.is_ok(), "{:?}", verified.err());
        let verified = verified.unwrap();
        prop_assert_eq!(verified.form(), &body[..]);

        // Any change to a parameter value breaks the signature.
        if let Some((k, v)) = body.first() {
            let mut changed = body.clone();
            changed[0] = (k.clone(), format!("{v}x"));
            let mut p2 = p.clone();
            p2.nonce = oauth::generate_nonce();
            // Signed over the original body, sent with the changed one.
            let protocol2 = oauth::sign_params("POST", &url, &body, &Credentials::new(KEY, SECRET), &p2).unwrap();
            let form2 = form_urlencoded::Serializer::new(String::new()).extend_pairs(&changed).extend_pairs(&protocol2).finish();
            let err = rt.block_on(fx.oauth().verify(&SignedRequest::form_post(&url, form2.as_bytes()))).unwrap_err();
            prop_assert_eq!(err.code(), "bad_signature");
        }
    }

    #[test]
    fn one_pass_base_string_equals_the_two_step_definition(params in prop::collection::vec((any::<String>(), any::<String>()), 0..16)) {
        let url = "https://tool.example.com/launch";
        let one_pass = oauth::signature_base_string("POST", url, &params).unwrap();
        let two_step = format!(
            "POST&{}&{}",
            oauth::percent_encode(&oauth::base_string_uri(url).unwrap()),
            oauth::percent_encode(&oauth::normalize_parameters(&params))
        );
        prop_assert_eq!(one_pass, two_step);
    }

    #[test]
    fn pox_parsers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = OutcomeRequest::parse(&bytes);
        let _ = OutcomeResponse::parse(&bytes);
    }

    #[test]
    fn pox_parsers_never_panic_on_xml_like_text(
        text in "(<[a-zA-Z_:]{1,12}( [a-z]{1,4}=\"[^\"]{0,6}\")?/?>|</[a-zA-Z_:]{1,12}>|&[a-z#0-9x]{0,6};|<!\\[CDATA\\[[^\\]]{0,8}\\]\\]>|<!--[a-z]{0,5}-->|[^<&]{0,12}){0,40}"
    ) {
        let _ = OutcomeRequest::parse(text.as_bytes());
        let _ = OutcomeResponse::parse(text.as_bytes());
    }

    #[test]
    fn request_parsers_never_panic(
        s in any::<String>(),
        body in prop::collection::vec(any::<u8>(), 0..512),
        url in "(https?://)?[ -~]{0,40}",
    ) {
        let _ = oauth::parse_authorization_header(&s);
        let _ = oauth::parse_authorization_header(&format!("OAuth {s}"));
        let _ = oauth::base_string_uri(&url);
        let _ = Passport::parse(&s);
        let _ = parse_custom_parameters(&s);
        let _ = Score::parse(&s);
        let auth = format!("OAuth {s}");
        let req = SignedRequest { method: "POST", url: &url, authorization: Some(&auth), content_type: Some("application/x-www-form-urlencoded"), body: &body };
        let _ = req.collect();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let fx = Fixture::new();
        let _ = rt.block_on(fx.launches().verify(&SignedRequest::form_post(&url, &body)));
    }
}
