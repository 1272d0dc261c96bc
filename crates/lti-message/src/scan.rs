//! Checking a claim set's shape without building it.
//!
//! [`IdTokenClaims::scan`] reads a payload once and answers whether the full
//! decoding ([`IdTokenClaims::from_json_str`]) would accept it, keeping only the
//! few values a launch's checks read (borrowed from the text). It allocates only
//! for strings with escapes. Each claim type's scan is derived from the same
//! member lists as its decoding (`claim_object!`, `known_claims!`), and the
//! leaves mirror serde's and serde_json's own rules, so the two accept the same
//! payloads; where a rule is subtle (time claims of unusual shapes, numbers,
//! serde_json's reserved keys) the scan declines instead of judging, and the
//! caller decodes in full for the verdict.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::claims::{IdTokenClaims, Key, LenientU32, StringOrSeq};
use crate::error::MessageError;
use crate::message::{Essentials, MessageKind, ValidationOptions, classify};

/// A type whose JSON shape can be checked without building it: `scan` accepts
/// exactly what the type's `Deserialize` accepts, or less (never more).
pub(crate) trait Scan {
    /// Checks one value.
    fn scan<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error>;

    /// As [`Scan::scan`] for an object type, also giving the string value of its
    /// member `keep` (an `Option<String>` member), `None` when it is absent or
    /// `null`. Types that are not objects keep nothing.
    fn scan_keeping<'de, D: Deserializer<'de>>(
        d: D,
        keep: &'static str,
    ) -> Result<Option<Cow<'de, str>>, D::Error> {
        let _ = keep;
        Self::scan(d).map(|()| None)
    }

    /// As [`Scan::scan`], also giving the value of an `Option<String>`.
    fn scan_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
        Self::scan(d).map(|()| None)
    }
}

/// [`Scan::scan`] as a seed, for `next_value_seed` / `next_element_seed`.
pub(crate) struct ScanSeed<T>(PhantomData<fn() -> T>);

impl<T> ScanSeed<T> {
    pub(crate) fn new() -> Self {
        ScanSeed(PhantomData)
    }
}

impl<'de, T: Scan> DeserializeSeed<'de> for ScanSeed<T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        T::scan(d)
    }
}

/// [`Scan::scan_str`] as a seed.
pub(crate) struct StrSeed<T>(PhantomData<fn() -> T>);

impl<'de, T: Scan> DeserializeSeed<'de> for StrSeed<T> {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        T::scan_str(d)
    }
}

/// `null` as `None`, anything else through the seed `S`: what `Option<T>`'s own
/// decoding does (serde_json calls `visit_none` for `null`, `visit_some` otherwise).
pub(crate) struct Nullable<S>(pub(crate) S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nullable<S> {
    type Value = Option<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V<S>(S);
        impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for V<S> {
            type Value = Option<S::Value>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a value or null")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                self.0.deserialize(d).map(Some)
            }
        }
        d.deserialize_option(V(self.0))
    }
}

/// [`Scan::scan_keeping`] as a seed: an object claim with its member `.0` kept.
pub(crate) struct KeepSeed<T>(&'static str, PhantomData<fn() -> T>);

impl<'de, T: Scan> DeserializeSeed<'de> for KeepSeed<T> {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        T::scan_keeping(d, self.0)
    }
}

/// Scans the next map value as the type of the member `field` selects (for the
/// macros, which know member names but not their types).
pub(crate) fn scan_member<'de, A, S, T, F>(map: &mut A, field: F) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    T: Scan,
    F: FnOnce(&S) -> &T,
{
    let _ = field;
    map.next_value_seed(ScanSeed::<T>::new())
}

/// A string's value: borrowed from the text unless it had escapes.
struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// Any string, kept nowhere.
struct AnyStr;

impl Visitor<'_> for AnyStr {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
}

impl Scan for String {
    fn scan<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        // `String`'s own visitor accepts exactly strings (borrowed or not).
        d.deserialize_string(AnyStr)
    }
    fn scan_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
        d.deserialize_string(StrVisitor).map(Some)
    }
}

impl Scan for bool {
    fn scan<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        bool::deserialize(d).map(|_| ())
    }
}

impl<T: Scan> Scan for Option<T> {
    fn scan<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        Nullable(ScanSeed::<T>::new()).deserialize(d).map(drop)
    }
    fn scan_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
        Nullable(StrSeed::<T>(PhantomData))
            .deserialize(d)
            .map(Option::flatten)
    }
}

impl<T: Scan> Scan for Vec<T> {
    fn scan<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        struct V<T>(PhantomData<fn() -> T>);
        impl<'de, T: Scan> Visitor<'de> for V<T> {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                while seq.next_element_seed(ScanSeed::<T>::new())?.is_some() {}
                Ok(())
            }
        }
        d.deserialize_seq(V::<T>(PhantomData))
    }
}

/// Keys serde_json's `Value` decoding treats specially (with its `raw_value` or
/// `arbitrary_precision` feature): an object holding one is left to the full
/// decoding.
fn reserved_key(key: &str) -> bool {
    key.starts_with("$serde_json::private::")
}

/// The error that makes the scan decline (the caller decodes in full).
fn decline<E: de::Error>() -> E {
    E::custom("left to the full decoding")
}

/// Any JSON value, as `serde_json::Value` accepts it (numbers are parsed as it
/// parses them, so out-of-range ones fail alike).
struct AnyValue;

impl<'de> Visitor<'de> for AnyValue {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(AnyValue)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(ScanSeed::<Value>::new())?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if reserved_key(&key) {
                return Err(decline());
            }
            map.next_value_seed(ScanSeed::<Value>::new())?;
        }
        Ok(())
    }
}

impl Scan for Value {
    fn scan<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        d.deserialize_any(AnyValue)
    }
}

impl Scan for Map<String, Value> {
    fn scan<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            // serde_json's `Map` also accepts `null`, as an empty map.
            fn visit_unit<E: de::Error>(self) -> Result<(), E> {
                Ok(())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                while map.next_key_seed(ScanSeed::<String>::new())?.is_some() {
                    map.next_value_seed(ScanSeed::<Value>::new())?;
                }
                Ok(())
            }
        }
        d.deserialize_map(V)
    }
}

/// A string, an array of strings or `null` (the `OneOrMany` shape).
struct OneOrManyShape;

impl<'de> Visitor<'de> for OneOrManyShape {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string or an array of strings")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(ScanSeed::<String>::new())?.is_some() {}
        Ok(())
    }
}

impl Scan for StringOrSeq {
    fn scan<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        d.deserialize_any(OneOrManyShape)
    }
}

impl Scan for LenientU32 {
    fn scan<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
        // Decoded through a `Value`; every JSON value is accepted.
        Value::scan(d)
    }
}

/// The `aud` claim as sent, borrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScannedAudience<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

/// `aud` (inside its `Option`: never `null` here), as `Audience` accepts it.
struct AudienceVisitor;

impl<'de> Visitor<'de> for AudienceVisitor {
    type Value = ScannedAudience<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string or an array of strings")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(ScannedAudience::One(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(ScannedAudience::One(Cow::Owned(v.to_owned())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        struct Item;
        impl<'de> DeserializeSeed<'de> for Item {
            type Value = Cow<'de, str>;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_string(StrVisitor)
            }
        }
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(s) = seq.next_element_seed(Item)? {
            out.push(s);
        }
        Ok(ScannedAudience::Many(out))
    }
}

/// `Audience` (inside its `Option`, as [`Nullable`]).
pub(crate) struct AudienceSeed;

impl<'de> DeserializeSeed<'de> for AudienceSeed {
    type Value = ScannedAudience<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(AudienceVisitor)
    }
}

/// A time claim of the plain shape: a non-negative integer. Anything else
/// (absent, `null`, negative, fractional, too large) declines.
pub(crate) struct PlainDateSeed;

impl<'de> DeserializeSeed<'de> for PlainDateSeed {
    type Value = u64;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = u64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("seconds since the epoch as a non-negative integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
                // `exp`/`iat` decode as i64.
                if i64::try_from(v).is_ok() {
                    Ok(v)
                } else {
                    Err(decline())
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
                u64::try_from(v).map_err(|_| decline())
            }
        }
        d.deserialize_any(V)
    }
}

/// The claims of a payload that [`IdTokenClaims::scan`] found in the shape the
/// full decoding accepts, with the values a launch's checks read, borrowed from
/// the text. Obtained only from [`IdTokenClaims::scan`].
#[derive(Debug, Clone)]
pub struct ScannedClaims<'a> {
    pub(crate) iss: Option<Cow<'a, str>>,
    pub(crate) sub: Option<Cow<'a, str>>,
    pub(crate) aud: Option<ScannedAudience<'a>>,
    pub(crate) azp: Option<Cow<'a, str>>,
    pub(crate) exp: Option<u64>,
    pub(crate) iat: Option<u64>,
    pub(crate) nbf: Option<u64>,
    pub(crate) nonce: Option<Cow<'a, str>>,
    pub(crate) message_type: Option<Cow<'a, str>>,
    pub(crate) version: Option<Cow<'a, str>>,
    pub(crate) deployment_id: Option<Cow<'a, str>>,
    pub(crate) target_link_uri: Option<Cow<'a, str>>,
    pub(crate) roles: bool,
    pub(crate) resource_link: Option<Option<Cow<'a, str>>>,
    pub(crate) deep_linking_settings: Option<Option<Cow<'a, str>>>,
    pub(crate) for_user: Option<Option<Cow<'a, str>>>,
}

/// One known claim's scan at the top level, by how its value is used: `keep`
/// (an `Option<String>` whose value is kept), `skip` (shape only), `date`
/// (plain time claim), `aud`, `present` (whether an optional claim is sent) or
/// a member name (an optional object claim whose member of that name is kept).
/// Used by `known_claims!` in `claims.rs`, from the same list as the decoding.
macro_rules! scan_claim {
    (keep, $map:ident, $out:ident, $field:ident) => {
        $out.$field =
            $map.next_value_seed($crate::scan::str_seed(|c: &IdTokenClaims| &c.$field))?;
    };
    (skip, $map:ident, $out:ident, $field:ident) => {
        $crate::scan::scan_member(&mut $map, |c: &IdTokenClaims| &c.$field)?;
    };
    (date, $map:ident, $out:ident, $field:ident) => {
        $out.$field = Some($map.next_value_seed($crate::scan::PlainDateSeed)?);
    };
    (aud, $map:ident, $out:ident, $field:ident) => {
        $out.$field = $map.next_value_seed($crate::scan::Nullable($crate::scan::AudienceSeed))?;
    };
    (present, $map:ident, $out:ident, $field:ident) => {
        $out.$field = $map
            .next_value_seed($crate::scan::presence_seed(|c: &IdTokenClaims| &c.$field))?
            .is_some();
    };
    ($keep:literal, $map:ident, $out:ident, $field:ident) => {
        $out.$field = $map.next_value_seed($crate::scan::object_seed(
            |c: &IdTokenClaims| &c.$field,
            $keep,
        ))?;
    };
}
pub(crate) use scan_claim;

/// [`StrSeed`] for the member `field` selects.
pub(crate) fn str_seed<S, T: Scan, F: FnOnce(&S) -> &T>(field: F) -> StrSeed<T> {
    let _ = field;
    StrSeed(PhantomData)
}

/// Whether the `Option<T>` member `field` selects is present (not absent, not
/// `null`): `Some(())` when it is.
pub(crate) fn presence_seed<S, T: Scan, F: FnOnce(&S) -> &Option<T>>(
    field: F,
) -> Nullable<ScanSeed<T>> {
    let _ = field;
    Nullable(ScanSeed::new())
}

/// The `Option<T>` object member `field` selects, keeping its member `keep`:
/// `None` when absent or `null`.
pub(crate) fn object_seed<S, T: Scan, F: FnOnce(&S) -> &Option<T>>(
    field: F,
    keep: &'static str,
) -> Nullable<KeepSeed<T>> {
    let _ = field;
    Nullable(KeepSeed(keep, PhantomData))
}

/// An unknown top-level claim `key`: `nbf` is read (plain shape only, once);
/// any other is checked as the `Value` the full decoding keeps it as.
pub(crate) fn scan_other_claim<'de, A: MapAccess<'de>>(
    map: &mut A,
    key: &str,
    out: &mut ScannedClaims<'de>,
) -> Result<(), A::Error> {
    if key == "nbf" {
        // The full decoding keeps the last of several; leave that to it.
        if out.nbf.is_some() {
            return Err(decline());
        }
        out.nbf = Some(map.next_value_seed(PlainDateSeed)?);
        Ok(())
    } else if reserved_key(key) {
        Err(decline())
    } else {
        map.next_value_seed(ScanSeed::<Value>::new())
    }
}

impl<'a> ScannedClaims<'a> {
    /// Nothing scanned yet (no `Default`: only the scan makes one).
    pub(crate) fn empty() -> Self {
        ScannedClaims {
            iss: None,
            sub: None,
            aud: None,
            azp: None,
            exp: None,
            iat: None,
            nbf: None,
            nonce: None,
            message_type: None,
            version: None,
            deployment_id: None,
            target_link_uri: None,
            roles: false,
            resource_link: None,
            deep_linking_settings: None,
            for_user: None,
        }
    }

    /// `iss`.
    pub fn iss(&self) -> Option<&str> {
        self.iss.as_deref()
    }

    /// `sub`.
    pub fn sub(&self) -> Option<&str> {
        self.sub.as_deref()
    }

    /// `aud`, as a list (`None` when absent or `null`).
    pub fn aud(&self) -> Option<Vec<&str>> {
        self.aud.as_ref().map(|aud| match aud {
            ScannedAudience::One(a) => vec![a.as_ref()],
            ScannedAudience::Many(all) => all.iter().map(AsRef::as_ref).collect(),
        })
    }

    /// `azp`.
    pub fn azp(&self) -> Option<&str> {
        self.azp.as_deref()
    }

    /// `exp` (always present here, a non-negative integer).
    pub fn exp(&self) -> Option<u64> {
        self.exp
    }

    /// `iat` (always present here, a non-negative integer).
    pub fn iat(&self) -> Option<u64> {
        self.iat
    }

    /// `nbf`, when sent (a non-negative integer here).
    pub fn nbf(&self) -> Option<u64> {
        self.nbf
    }

    /// `nonce`.
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// The `deployment_id` claim.
    pub fn deployment_id(&self) -> Option<&str> {
        self.deployment_id.as_deref()
    }

    /// The `target_link_uri` claim.
    pub fn target_link_uri(&self) -> Option<&str> {
        self.target_link_uri.as_deref()
    }

    /// The `message_type` claim.
    pub fn message_type(&self) -> Option<&str> {
        self.message_type.as_deref()
    }

    /// Validates the message as [`crate::LtiMessage::from_claims`] does (version,
    /// message type, roles, sub and per-type claims), without decoding it.
    ///
    /// # Errors
    /// The [`MessageError`] [`crate::LtiMessage::from_claims`] gives for the
    /// same payload.
    pub fn classify(&self, opts: &ValidationOptions) -> Result<Classified, MessageError> {
        let essentials = Essentials {
            message_type: self.message_type.as_deref(),
            version: self.version.as_deref(),
            deployment_id: self.deployment_id.as_deref(),
            sub: self.sub.as_deref(),
            has_roles: self.roles,
            resource_link_id: self.resource_link.as_ref().and_then(Option::as_deref),
            deep_linking_settings: self.deep_linking_settings.as_ref().map(Option::as_deref),
            for_user_id: self.for_user.as_ref().and_then(Option::as_deref),
        };
        classify(&essentials, opts).map(|kind| Classified { kind, opts: *opts })
    }
}

/// A payload validated by [`ScannedClaims::classify`], not decoded yet:
/// [`crate::LtiMessage::decode_classified`] decodes it when the message is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classified {
    pub(crate) kind: MessageKind,
    pub(crate) opts: ValidationOptions,
}

impl Classified {
    /// Whether the message is an `LtiDeepLinkingRequest`.
    pub fn is_deep_linking(&self) -> bool {
        self.kind == MessageKind::DeepLinking
    }
}

impl IdTokenClaims {
    /// Checks a claim set's shape without building it, keeping the values a
    /// launch's checks read (borrowed from `text`).
    ///
    /// `Some` means [`IdTokenClaims::from_json_str`] accepts `text` too, and the
    /// kept values are the ones it would decode; `exp` and `iat` are then
    /// non-negative integers and `nbf` is absent or one. `None` means the
    /// payload is malformed *or* has a shape the scan leaves to the full
    /// decoding (time claims of another shape, an `nbf` given twice, keys
    /// serde_json reserves): decode it in full for the verdict and the error.
    pub fn scan(text: &str) -> Option<ScannedClaims<'_>> {
        let mut de = serde_json::Deserializer::from_str(text);
        let scanned = crate::claims::scan_top_level(&mut de).ok()?;
        de.end().ok()?;
        // Absent time claims are named by the full checks.
        (scanned.exp.is_some() && scanned.iat.is_some()).then_some(scanned)
    }
}
