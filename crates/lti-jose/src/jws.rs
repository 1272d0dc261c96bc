//! JWS compact serialization (RFC 7515 §7.1): parse, sign, verify.

use std::fmt;

use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::alg::Algorithm;
use crate::error::{clip, json_kind};
use crate::signing::SigningKey;
use crate::source::KeySource;
use crate::verifying::VerifyingKey;
use crate::{Error, b64};

/// A JOSE header. Unknown members are kept in [`Header::extra`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// The signature algorithm.
    pub alg: Algorithm,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Media type of the whole JWS, e.g. `"JWT"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Header {
    /// A header with `alg`, no kid, `typ = "JWT"` and no other members.
    pub fn new(alg: Algorithm) -> Header {
        Header {
            alg,
            kid: None,
            typ: Some("JWT".to_owned()),
            extra: Map::new(),
        }
    }

    /// Parses a header strictly: one JSON object, no duplicate members, no trailing
    /// data, `alg` a supported algorithm, `kid`/`typ` strings, no `crit`.
    fn parse_strict(bytes: &[u8]) -> Result<Header, Error> {
        // The direct decoding accepts exactly what the checks below accept; anything
        // else goes through them, which name the problem.
        match serde_json::from_slice::<DirectHeader>(bytes) {
            Ok(DirectHeader(header)) => Ok(header),
            Err(_) => Header::parse_checked(bytes),
        }
    }

    /// [`Header::parse_strict`] by way of a JSON tree, naming each problem.
    fn parse_checked(bytes: &[u8]) -> Result<Header, Error> {
        let StrictObject(mut map) =
            serde_json::from_slice(bytes).map_err(|e| Error::json("header", &e))?;
        let alg = match map.remove("alg") {
            Some(Value::String(alg)) => alg.parse::<Algorithm>()?,
            Some(other) => return Err(invalid_member("alg", &other)),
            None => return Err(Error::malformed("JOSE header", "an \"alg\" member", "none")),
        };
        let mut string_member = |name: &'static str| match map.remove(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(invalid_member(name, &other)),
        };
        let kid = string_member("kid")?;
        let typ = string_member("typ")?;
        if map.contains_key("crit") {
            return Err(Error::malformed(
                "JOSE header",
                "no \"crit\" member (no extensions are understood)",
                "\"crit\"",
            ));
        }
        Ok(Header {
            alg,
            kid,
            typ,
            extra: map,
        })
    }
}

/// A header decoded without an intermediate tree. Refuses (with a bare message;
/// [`Header::parse_checked`] then names the problem) everything the checked parse
/// refuses: a duplicate member, a non-string or unknown `alg`, a non-string `kid` or
/// `typ`, a `crit` member.
struct DirectHeader(Header);

impl<'de> Deserialize<'de> for DirectHeader {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DirectHeader;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JOSE header object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<DirectHeader, A::Error> {
                let refuse = || serde::de::Error::custom("header refused");
                let (mut alg, mut kid, mut typ) = (None, None, None);
                let mut extra = Map::new();
                while let Some(key) = access.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match &*key {
                        "alg" => &mut alg,
                        "kid" => &mut kid,
                        "typ" => &mut typ,
                        "crit" => return Err(refuse()),
                        _ => {
                            let value: Value = access.next_value()?;
                            if extra.insert(key.into_owned(), value).is_some() {
                                return Err(refuse());
                            }
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(refuse());
                    }
                    *slot = Some(access.next_value::<String>()?);
                }
                let alg = alg
                    .and_then(|a| a.parse::<Algorithm>().ok())
                    .ok_or_else(refuse)?;
                Ok(DirectHeader(Header {
                    alg,
                    kid,
                    typ,
                    extra,
                }))
            }
        }
        deserializer.deserialize_map(V)
    }
}

fn invalid_member(name: &'static str, value: &Value) -> Error {
    Error::malformed(
        "JOSE header",
        format!("{name:?} to be a string"),
        json_kind(value),
    )
}

/// A JSON object whose deserialization rejects duplicate member names.
pub(crate) struct StrictObject(pub(crate) Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrictObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictObject, A::Error> {
                let mut map = Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(serde::de::Error::custom(format_args!(
                            "expected unique member names, found {:?} twice",
                            clip(&key)
                        )));
                    }
                    let value: Value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(StrictObject(map))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// Size limits applied before any decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum length of the whole compact token in bytes (default 16 KiB).
    pub max_token_len: usize,
    /// Maximum length of the encoded header segment in bytes (default 2 KiB).
    pub max_header_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_token_len: 16 * 1024,
            max_header_len: 2 * 1024,
        }
    }
}

/// A parsed but **not verified** compact JWS. The header is readable (to pick a key);
/// the payload is only available through [`Verifier::verify`] (or [`crate::dangerous`]).
#[derive(Clone)]
pub struct CompactJws<'a> {
    header: Header,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// Prints the header and segment sizes only: never the payload or signature.
impl fmt::Debug for CompactJws<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompactJws")
            .field("header", &self.header)
            .field("payload_len", &self.payload.len())
            .field("signature_len", &self.signature.len())
            .finish()
    }
}

impl<'a> CompactJws<'a> {
    /// Parses `token`: size limits first, then exactly three segments, strict base64url,
    /// and a strict JSON header.
    ///
    /// # Errors
    /// [`Error::TokenTooLarge`], [`Error::HeaderTooLarge`], [`Error::Malformed`] (segment
    /// count, empty signature), [`Error::Base64`], [`Error::InvalidJson`],
    /// [`Error::UnsupportedAlgorithm`].
    pub fn parse(token: &'a str, limits: &Limits) -> Result<Self, Error> {
        if token.len() > limits.max_token_len {
            return Err(Error::TokenTooLarge {
                limit: limits.max_token_len,
                found: token.len(),
            });
        }
        let bytes = token.as_bytes();
        let segments_error = || {
            let segments = token.bytes().filter(|&b| b == b'.').count() + 1;
            Error::malformed(
                "compact JWS",
                "3 dot-separated segments",
                segments.to_string(),
            )
        };
        // The first and last dots split the token; a dot between them (more than 3
        // segments) is found by the payload's base64url decoding, which refuses it,
        // so the payload is not scanned for dots up front.
        let Some((first, last)) = memchr::memchr(b'.', bytes)
            .zip(memchr::memrchr(b'.', bytes))
            .filter(|&(first, last)| first < last)
        else {
            return Err(segments_error());
        };
        let (header, payload, signature) =
            (&token[..first], &token[first + 1..last], &token[last + 1..]);
        let signing_input = &token[..last];
        let parts = || -> Result<(Header, Vec<u8>, Vec<u8>), Error> {
            if header.len() > limits.max_header_len {
                return Err(Error::HeaderTooLarge {
                    limit: limits.max_header_len,
                    found: header.len(),
                });
            }
            if signature.is_empty() {
                return Err(Error::malformed(
                    "compact JWS",
                    "a non-empty signature segment",
                    "an empty one",
                ));
            }
            let header = Header::parse_strict(&b64::decode(header)?)?;
            Ok((header, b64::decode(payload)?, b64::decode(signature)?))
        };
        match parts() {
            Ok((header, payload, signature)) => Ok(CompactJws {
                header,
                signing_input,
                payload,
                signature,
            }),
            // More than 3 segments is named first, whatever else is wrong.
            Err(_) if memchr::memchr(b'.', payload.as_bytes()).is_some() => Err(segments_error()),
            Err(e) => Err(e),
        }
    }

    /// The (unverified) header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.header.alg
    }

    /// The header's key id.
    pub fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    /// The signing input: the encoded header and payload with the dot between them,
    /// exactly as they appear in the token.
    pub fn signing_input(&self) -> &'a str {
        self.signing_input
    }

    /// The decoded signature bytes (not yet checked against anything).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The decoded payload bytes, unverified; public only through
    /// [`crate::dangerous::unverified_payload`].
    pub(crate) fn payload_bytes(&self) -> &[u8] {
        &self.payload
    }

    pub(crate) fn into_payload_bytes(self) -> Vec<u8> {
        self.payload
    }

    pub(crate) fn take_payload_bytes(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.payload)
    }

    /// Decodes the payload without verifying anything. Only [`crate::dangerous`] and
    /// [`Verifier`] (after the signature check) call this.
    pub(crate) fn decode_payload<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.payload).map_err(|e| Error::json("payload", &e))
    }
}

/// Verifies compact JWS tokens against an explicit algorithm allow-list.
#[derive(Debug, Clone)]
pub struct Verifier {
    allowed: Vec<Algorithm>,
    limits: Limits,
}

impl Verifier {
    /// A verifier accepting exactly the algorithms in `allowed`.
    ///
    /// # Errors
    /// [`Error::EmptyAllowList`] if `allowed` is empty.
    pub fn new(allowed: &[Algorithm]) -> Result<Verifier, Error> {
        if allowed.is_empty() {
            return Err(Error::EmptyAllowList);
        }
        Ok(Verifier {
            allowed: allowed.to_vec(),
            limits: Limits::default(),
        })
    }

    /// Replaces the size limits used by [`Verifier::parse`] and [`Verifier::verify_token`].
    pub fn with_limits(self, limits: Limits) -> Verifier {
        Verifier { limits, ..self }
    }

    /// The algorithm allow-list.
    pub fn allowed(&self) -> &[Algorithm] {
        &self.allowed
    }

    /// The size limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses `token` with this verifier's limits.
    ///
    /// # Errors
    /// As [`CompactJws::parse`].
    pub fn parse<'a>(&self, token: &'a str) -> Result<CompactJws<'a>, Error> {
        CompactJws::parse(token, &self.limits)
    }

    /// Checks that `alg` is on the allow-list.
    ///
    /// # Errors
    /// [`Error::AlgorithmNotAllowed`].
    pub fn check_algorithm(&self, alg: Algorithm) -> Result<(), Error> {
        if self.allowed.contains(&alg) {
            Ok(())
        } else {
            Err(Error::AlgorithmNotAllowed {
                found: alg.as_str().to_owned(),
                allowed: self
                    .allowed
                    .iter()
                    .map(Algorithm::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }

    /// Verifies `jws` with `key` and only then decodes the payload into `T`.
    ///
    /// Order: header `alg` on the allow-list, `alg` equal to the key's algorithm (so the
    /// key family matches), signature, then payload decoding.
    ///
    /// # Errors
    /// [`Error::AlgorithmNotAllowed`], [`Error::KeyAlgorithmMismatch`], [`Error::BadSignature`],
    /// [`Error::Base64`] / [`Error::InvalidJson`] for the payload.
    pub fn verify<T: DeserializeOwned>(
        &self,
        jws: &CompactJws<'_>,
        key: &VerifyingKey,
    ) -> Result<T, Error> {
        let alg = jws.header.alg;
        self.check_algorithm(alg)?;
        if key.algorithm() != alg {
            return Err(Error::KeyAlgorithmMismatch {
                expected: format!("a key for the header's {alg}"),
                found: format!("a key bound to {}", key.algorithm()),
            });
        }
        key.verify_signature(jws.signing_input.as_bytes(), &jws.signature)?;
        jws.decode_payload()
    }

    /// Parses and verifies `token` with `key` in one step.
    ///
    /// # Errors
    /// As [`Verifier::parse`] and [`Verifier::verify`].
    pub fn verify_token<T: DeserializeOwned>(
        &self,
        token: &str,
        key: &VerifyingKey,
    ) -> Result<T, Error> {
        let jws = self.parse(token)?;
        self.verify(&jws, key)
    }

    /// Parses `token`, checks its algorithm, fetches the key for its `kid` from `source`
    /// (`jwks_url` is passed through), and verifies.
    ///
    /// # Errors
    /// As [`Verifier::verify_token`], plus whatever `source` returns
    /// ([`Error::UnknownKid`], [`Error::KeySourceUnavailable`], ...).
    pub async fn verify_with_source<T: DeserializeOwned>(
        &self,
        token: &str,
        source: &dyn KeySource,
        jwks_url: &str,
    ) -> Result<T, Error> {
        let jws = self.parse(token)?;
        self.check_algorithm(jws.algorithm())?;
        let key = source.key(jwks_url, jws.kid(), jws.algorithm()).await?;
        self.verify(&jws, &key)
    }
}

/// Signs `claims` as a compact JWS: header `alg` = the key's algorithm, `kid` = the key's
/// kid, `typ = "JWT"`.
///
/// # Errors
/// [`Error::InvalidJson`] if `claims` cannot be serialized, [`Error::Signing`] on a crypto failure.
pub fn sign<T: Serialize + ?Sized>(claims: &T, key: &SigningKey) -> Result<String, Error> {
    let mut header = Header::new(key.algorithm());
    header.kid = Some(key.kid().to_owned());
    sign_with_header(&header, claims, key)
}

/// Signs `claims` with a caller-built header. `header.alg` must equal the key's algorithm;
/// a missing `kid` is filled in from the key.
///
/// # Errors
/// [`Error::KeyAlgorithmMismatch`] if `header.alg` differs from the key's algorithm,
/// [`Error::Malformed`] if the header carries `crit`, [`Error::InvalidJson`] if serialization
/// fails, [`Error::Signing`] on a crypto failure.
pub fn sign_with_header<T: Serialize + ?Sized>(
    header: &Header,
    claims: &T,
    key: &SigningKey,
) -> Result<String, Error> {
    if header.alg != key.algorithm() {
        return Err(Error::KeyAlgorithmMismatch {
            expected: format!("a key for the header's {}", header.alg),
            found: format!("a key bound to {}", key.algorithm()),
        });
    }
    if header.extra.contains_key("crit") {
        return Err(Error::malformed(
            "JOSE header",
            "no \"crit\" member",
            "\"crit\"",
        ));
    }
    let header_json = if header.kid.is_none() {
        let mut with_kid = header.clone();
        with_kid.kid = Some(key.kid().to_owned());
        serde_json::to_vec(&with_kid)
    } else {
        serde_json::to_vec(header)
    }
    .map_err(|e| Error::json("header", &e))?;
    let claims_json = serde_json::to_vec(claims).map_err(|e| Error::json("payload", &e))?;
    let mut token =
        String::with_capacity((header_json.len() + claims_json.len()) * 4 / 3 + 8 + 700);
    b64::encode_into(&header_json, &mut token);
    token.push('.');
    b64::encode_into(&claims_json, &mut token);
    let signature = key.sign_bytes(token.as_bytes())?;
    token.push('.');
    b64::encode_into(&signature, &mut token);
    Ok(token)
}

#[cfg(test)]
mod direct_header_tests {
    use super::*;
    use proptest::prelude::*;

    /// One header member as JSON text: a likely name with a value of any type.
    fn member() -> impl Strategy<Value = String> {
        let name = prop_oneof![
            Just("alg"),
            Just("kid"),
            Just("typ"),
            Just("crit"),
            Just("jku"),
            Just("x5u"),
            Just("cty"),
        ];
        let value = prop_oneof![
            Just("\"RS256\"".to_owned()),
            Just("\"ES256\"".to_owned()),
            Just("\"none\"".to_owned()),
            Just("\"HS256\"".to_owned()),
            Just("null".to_owned()),
            Just("1".to_owned()),
            Just("[\"exp\"]".to_owned()),
            Just("{\"a\":1}".to_owned()),
            "[a-z0-9]{0,6}".prop_map(|s| format!("\"{s}\"")),
        ];
        (name, value).prop_map(|(n, v)| format!("\"{n}\":{v}"))
    }

    proptest! {
        /// The direct decoding accepts a header only when the checked parse accepts
        /// it, and then with the same result.
        #[test]
        fn direct_header_agrees_with_the_checked_parse(members in proptest::collection::vec(member(), 0..6)) {
            let text = format!("{{{}}}", members.join(","));
            let direct = serde_json::from_slice::<DirectHeader>(text.as_bytes());
            let checked = Header::parse_checked(text.as_bytes());
            if let Ok(DirectHeader(header)) = direct {
                prop_assert_eq!(Ok(header), checked.map_err(|e| e.to_string()));
            }
            let strict = Header::parse_strict(text.as_bytes());
            prop_assert_eq!(
                strict.map_err(|e| e.to_string()),
                Header::parse_checked(text.as_bytes()).map_err(|e| e.to_string())
            );
        }
    }

    #[test]
    fn typical_headers_take_the_direct_path() {
        let text = br#"{"alg":"RS256","typ":"JWT","kid":"k1","x5t":"abc"}"#;
        let DirectHeader(header) = serde_json::from_slice(text).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.extra["x5t"], "abc");
        for (refused, code, says) in [
            (
                &br#"{"alg":"RS256","alg":"RS256"}"#[..],
                "invalid_json",
                "twice",
            ),
            (br#"{"alg":"RS256","x":1,"x":2}"#, "invalid_json", "twice"),
            (br#"{"alg":"RS256","crit":["b64"]}"#, "malformed", "crit"),
            (br#"{"alg":"none"}"#, "unsupported_algorithm", "none"),
            (br#"{"alg":"RS256","kid":null}"#, "malformed", "kid"),
            (br#"{"kid":"k"}"#, "malformed", "alg"),
        ] {
            // The direct decoding refuses without naming why; the checked parse
            // behind `parse_strict` names it.
            assert!(serde_json::from_slice::<DirectHeader>(refused).is_err());
            let err = Header::parse_strict(refused).unwrap_err();
            assert_eq!(err.code(), code, "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
