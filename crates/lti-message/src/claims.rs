//! The id_token claim set: claim URIs, typed claims and lenient decoding.

use std::borrow::Cow;
use std::cell::Cell;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::ags::AgsEndpointClaim;
use crate::context::ContextType;
use crate::deep_linking::DeepLinkingSettings;
use crate::error::{MessageError, excerpt_n};
use crate::nrps::NrpsClaim;
use crate::roles::Roles;

/// Every claim URI and fixed value used in LTI 1.3 messages.
pub mod uri {
    /// `message_type` claim.
    pub const MESSAGE_TYPE: &str = "https://purl.imsglobal.org/spec/lti/claim/message_type";
    /// `version` claim.
    pub const VERSION: &str = "https://purl.imsglobal.org/spec/lti/claim/version";
    /// `deployment_id` claim.
    pub const DEPLOYMENT_ID: &str = "https://purl.imsglobal.org/spec/lti/claim/deployment_id";
    /// `target_link_uri` claim.
    pub const TARGET_LINK_URI: &str = "https://purl.imsglobal.org/spec/lti/claim/target_link_uri";
    /// `resource_link` claim.
    pub const RESOURCE_LINK: &str = "https://purl.imsglobal.org/spec/lti/claim/resource_link";
    /// `roles` claim.
    pub const ROLES: &str = "https://purl.imsglobal.org/spec/lti/claim/roles";
    /// `role_scope_mentor` claim.
    pub const ROLE_SCOPE_MENTOR: &str =
        "https://purl.imsglobal.org/spec/lti/claim/role_scope_mentor";
    /// `context` claim.
    pub const CONTEXT: &str = "https://purl.imsglobal.org/spec/lti/claim/context";
    /// `tool_platform` claim.
    pub const TOOL_PLATFORM: &str = "https://purl.imsglobal.org/spec/lti/claim/tool_platform";
    /// `launch_presentation` claim.
    pub const LAUNCH_PRESENTATION: &str =
        "https://purl.imsglobal.org/spec/lti/claim/launch_presentation";
    /// `lis` claim.
    pub const LIS: &str = "https://purl.imsglobal.org/spec/lti/claim/lis";
    /// `custom` claim.
    pub const CUSTOM: &str = "https://purl.imsglobal.org/spec/lti/claim/custom";
    /// `for_user` claim (submission review).
    pub const FOR_USER: &str = "https://purl.imsglobal.org/spec/lti/claim/for_user";
    /// `lti1p1` migration claim.
    pub const LTI1P1: &str = "https://purl.imsglobal.org/spec/lti/claim/lti1p1";
    /// `ext` vendor claim.
    pub const EXT: &str = "https://purl.imsglobal.org/spec/lti/claim/ext";
    /// Canvas `lti11_legacy_user_id` claim.
    pub const LTI11_LEGACY_USER_ID: &str =
        "https://purl.imsglobal.org/spec/lti/claim/lti11_legacy_user_id";
    /// Deep linking settings claim.
    pub const DEEP_LINKING_SETTINGS: &str =
        "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings";
    /// Deep linking response `content_items` claim.
    pub const DL_CONTENT_ITEMS: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items";
    /// Deep linking response `data` claim.
    pub const DL_DATA: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/data";
    /// Deep linking response `msg` claim.
    pub const DL_MSG: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/msg";
    /// Deep linking response `log` claim.
    pub const DL_LOG: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/log";
    /// Deep linking response `errormsg` claim.
    pub const DL_ERRORMSG: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/errormsg";
    /// Deep linking response `errorlog` claim.
    pub const DL_ERRORLOG: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/errorlog";
    /// AGS endpoint claim.
    pub const AGS_ENDPOINT: &str = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint";
    /// NRPS claim.
    pub const NRPS: &str = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice";
    /// Course groups service claim.
    pub const GROUPS_SERVICE: &str = "https://purl.imsglobal.org/spec/lti-gs/claim/groupsservice";
    /// LTI 1.1 basic outcome over OAuth 2 claim.
    pub const BASIC_OUTCOME: &str = "https://purl.imsglobal.org/spec/lti-bo/claim/basicoutcome";
    /// Caliper endpoint service claim.
    pub const CALIPER_ENDPOINT: &str =
        "https://purl.imsglobal.org/spec/lti-ces/claim/caliper-endpoint-service";

    /// The only accepted `version` value.
    pub const LTI_VERSION: &str = "1.3.0";
    /// Resource link launch message type.
    pub const MSG_RESOURCE_LINK: &str = "LtiResourceLinkRequest";
    /// Deep linking request message type.
    pub const MSG_DEEP_LINKING: &str = "LtiDeepLinkingRequest";
    /// Deep linking response message type.
    pub const MSG_DEEP_LINKING_RESPONSE: &str = "LtiDeepLinkingResponse";
    /// Submission review message type.
    pub const MSG_SUBMISSION_REVIEW: &str = "LtiSubmissionReviewRequest";
}

/// Implements `Deserialize` for a claim object with an `extra` map: each known
/// member is decoded in place (a member given twice is refused), every other
/// member is kept in `extra`. This is what `#[serde(flatten)]` does, without its
/// per-key identifier buffering (these objects are on every launch's hot path).
/// `via W` decodes the member as `W` and keeps `W.0`.
macro_rules! claim_object {
    ($ty:ident { $( $field:ident : $key:literal $(via $wrap:ty)? ),* $(,)? }) => {
        // One bit per known member in `seen` below.
        const _: () = assert!([$($key),*].len() <= 32, "claim_object!: at most 32 members");
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct ObjectVisitor;
                impl<'de> ::serde::de::Visitor<'de> for ObjectVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a JSON object (", stringify!($ty), ")"))
                    }
                    fn visit_map<A: ::serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        let mut out = $ty::default();
                        let mut seen = 0u32;
                        while let Some(key) = map.next_key::<$crate::claims::Key<'de>>()? {
                            let mut bit = 1u32;
                            $(
                                if key.0 == $key {
                                    if seen & bit != 0 {
                                        return Err(::serde::de::Error::duplicate_field($key));
                                    }
                                    seen |= bit;
                                    out.$field = $crate::claims::claim_object!(@value map $(, $wrap)?);
                                    continue;
                                }
                                bit <<= 1;
                            )*
                            let _ = bit;
                            let value: ::serde_json::Value = map.next_value()?;
                            out.extra.insert(key.0.into_owned(), value);
                        }
                        Ok(out)
                    }
                }
                d.deserialize_map(ObjectVisitor)
            }
        }

        // The same members, checked without building the object (`scan.rs`).
        impl $crate::scan::Scan for $ty {
            fn scan<'de, D: ::serde::Deserializer<'de>>(d: D) -> Result<(), D::Error> {
                <$ty as $crate::scan::Scan>::scan_keeping(d, "").map(|_| ())
            }

            fn scan_keeping<'de, D: ::serde::Deserializer<'de>>(
                d: D,
                keep: &'static str,
            ) -> Result<Option<::std::borrow::Cow<'de, str>>, D::Error> {
                struct ObjectScan(&'static str);
                impl<'de> ::serde::de::Visitor<'de> for ObjectScan {
                    type Value = Option<::std::borrow::Cow<'de, str>>;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a JSON object (", stringify!($ty), ")"))
                    }
                    fn visit_map<A: ::serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Self::Value, A::Error> {
                        let mut kept = None;
                        let mut seen = 0u32;
                        while let Some(key) = map.next_key::<$crate::claims::Key<'de>>()? {
                            let mut bit = 1u32;
                            $(
                                if key.0 == $key {
                                    if seen & bit != 0 {
                                        return Err(::serde::de::Error::duplicate_field($key));
                                    }
                                    seen |= bit;
                                    $crate::claims::claim_object!(@scan map, kept, self.0, $ty, $field, $key $(, $wrap)?);
                                    continue;
                                }
                                bit <<= 1;
                            )*
                            let _ = bit;
                            map.next_value_seed($crate::scan::ScanSeed::<::serde_json::Value>::new())?;
                        }
                        Ok(kept)
                    }
                }
                d.deserialize_map(ObjectScan(keep))
            }
        }
    };
    (@value $map:ident) => { $map.next_value()? };
    (@value $map:ident, $wrap:ty) => { $map.next_value::<$wrap>()?.0 };
    (@scan $map:ident, $kept:ident, $keep:expr, $ty:ident, $field:ident, $key:literal) => {
        if $keep == $key {
            $kept = $map.next_value_seed($crate::scan::str_seed(|o: &$ty| &o.$field))?;
        } else {
            $crate::scan::scan_member(&mut $map, |o: &$ty| &o.$field)?;
        }
    };
    (@scan $map:ident, $kept:ident, $keep:expr, $ty:ident, $field:ident, $key:literal, $wrap:ty) => {
        $map.next_value_seed($crate::scan::ScanSeed::<$wrap>::new())?;
    };
}
pub(crate) use claim_object;

/// A string, an array of strings or `null`, as sent.
enum OneOrMany {
    One(String),
    Many(Vec<String>),
    Null,
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v))
            }
            fn visit_unit<E: de::Error>(self) -> Result<OneOrMany, E> {
                Ok(OneOrMany::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<OneOrMany, E> {
                Ok(OneOrMany::Null)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(OneOrMany::Many(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or an array of strings (`null` is empty), as a list.
pub(crate) struct StringOrSeq(pub(crate) Vec<String>);

impl<'de> Deserialize<'de> for StringOrSeq {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(StringOrSeq(match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
            OneOrMany::Null => Vec::new(),
        }))
    }
}

/// `lenient_u32` as a type, for [`claim_object!`] members.
pub(crate) struct LenientU32(pub(crate) Option<u32>);

impl<'de> Deserialize<'de> for LenientU32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient_u32(d).map(LenientU32)
    }
}

/// The `aud` claim: a single string or an array of strings, kept in the shape it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "client"`.
    Single(String),
    /// `"aud": ["client", ...]`.
    Multiple(Vec<String>),
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => Ok(Audience::Single(s)),
            OneOrMany::Many(v) => Ok(Audience::Multiple(v)),
            OneOrMany::Null => Err(de::Error::invalid_type(
                de::Unexpected::Unit,
                &"a string or an array of strings",
            )),
        }
    }
}

impl Audience {
    /// All audiences.
    pub fn as_slice(&self) -> &[String] {
        match self {
            Self::Single(s) => std::slice::from_ref(s),
            Self::Multiple(v) => v,
        }
    }
    /// Whether `client_id` is one of the audiences.
    pub fn contains(&self, client_id: &str) -> bool {
        self.as_slice().iter().any(|a| a == client_id)
    }
    /// The first audience (the client id by convention).
    pub fn first(&self) -> Option<&str> {
        self.as_slice().first().map(String::as_str)
    }
}

/// `resource_link` claim.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ResourceLinkClaim {
    /// Stable id of the placement (required, ≤255).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::claims::claim_object!(ResourceLinkClaim {
    id: "id",
    title: "title",
    description: "description",
});

/// `context` claim.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ContextClaim {
    /// Context id (≤255).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Short label (course code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Context types as sent (a string is accepted and treated as one element).
    #[serde(rename = "type", skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::claims::claim_object!(ContextClaim {
    id: "id",
    label: "label",
    title: "title",
    types: "type" via crate::claims::StringOrSeq,
});

impl ContextClaim {
    /// The context types, parsed.
    pub fn context_types(&self) -> Vec<ContextType> {
        self.types.iter().map(|t| ContextType::parse(t)).collect()
    }
}

/// `tool_platform` claim.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ToolPlatformClaim {
    /// Platform instance guid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guid: Option<String>,
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Contact email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    /// Description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Product family code (`canvas`, `moodle`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_family_code: Option<String>,
    /// Product version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::claims::claim_object!(ToolPlatformClaim {
    guid: "guid",
    name: "name",
    contact_email: "contact_email",
    description: "description",
    url: "url",
    product_family_code: "product_family_code",
    version: "version",
});

/// `launch_presentation` claim. `width`/`height` accept numbers or numeric strings.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LaunchPresentationClaim {
    /// `frame`, `iframe` or `window` (kept verbatim).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_target: Option<String>,
    /// Height in pixels (non-numeric values are ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Width in pixels (non-numeric values are ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Where to send the user back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    /// Locale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::claims::claim_object!(LaunchPresentationClaim {
    document_target: "document_target",
    height: "height" via crate::claims::LenientU32,
    width: "width" via crate::claims::LenientU32,
    return_url: "return_url",
    locale: "locale",
});

/// `lis` claim (SIS identifiers).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LisClaim {
    /// Person SIS id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_sourcedid: Option<String>,
    /// Course offering SIS id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub course_offering_sourcedid: Option<String>,
    /// Course section SIS id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub course_section_sourcedid: Option<String>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::claims::claim_object!(LisClaim {
    person_sourcedid: "person_sourcedid",
    course_offering_sourcedid: "course_offering_sourcedid",
    course_section_sourcedid: "course_section_sourcedid",
});

/// `for_user` claim (submission review: the learner whose work is shown).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ForUserClaim {
    /// The learner's `sub` (required).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// SIS id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_sourcedid: Option<String>,
    /// Given name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Full name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Roles of the learner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::claims::claim_object!(ForUserClaim {
    user_id: "user_id",
    person_sourcedid: "person_sourcedid",
    given_name: "given_name",
    family_name: "family_name",
    name: "name",
    email: "email",
    roles: "roles",
});

/// `lti1p1` migration claim.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Lti1p1Claim {
    /// LTI 1.1 user id (when it differs from `sub`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// LTI 1.1 consumer key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth_consumer_key: Option<String>,
    /// HMAC-SHA256 proof over the consumer key (checked by the tool layer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth_consumer_key_sign: Option<String>,
    /// LTI 1.1 resource link id, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_link_id: Option<String>,
    /// LTI 1.1 context id, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// LTI 1.1 tool consumer instance guid, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_consumer_instance_guid: Option<String>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::claims::claim_object!(Lti1p1Claim {
    user_id: "user_id",
    oauth_consumer_key: "oauth_consumer_key",
    oauth_consumer_key_sign: "oauth_consumer_key_sign",
    resource_link_id: "resource_link_id",
    context_id: "context_id",
    tool_consumer_instance_guid: "tool_consumer_instance_guid",
});

/// Course groups service claim.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct GroupsServiceClaim {
    /// Groups URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_groups_url: Option<String>,
    /// Group sets URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_group_sets_url: Option<String>,
    /// Granted scopes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
    /// Service versions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub service_versions: Vec<String>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::claims::claim_object!(GroupsServiceClaim {
    context_groups_url: "context_groups_url",
    context_group_sets_url: "context_group_sets_url",
    scope: "scope",
    service_versions: "service_versions",
});

/// LTI 1.1 basic outcome service claim (also found in NRPS member messages).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct BasicOutcomeClaim {
    /// Result sourcedid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lis_result_sourcedid: Option<String>,
    /// Outcome service URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lis_outcome_service_url: Option<String>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::claims::claim_object!(BasicOutcomeClaim {
    lis_result_sourcedid: "lis_result_sourcedid",
    lis_outcome_service_url: "lis_outcome_service_url",
});

/// Caliper endpoint service claim.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct CaliperEndpointClaim {
    /// Granted scopes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Caliper endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caliper_endpoint_url: Option<String>,
    /// Federated session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caliper_federated_session_id: Option<String>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::claims::claim_object!(CaliperEndpointClaim {
    scopes: "scopes",
    caliper_endpoint_url: "caliper_endpoint_url",
    caliper_federated_session_id: "caliper_federated_session_id",
});

/// A full LTI 1.3 claim set (id_token body), typed, with unknown claims kept in
/// [`IdTokenClaims::extra`] so that a parse/serialise round trip is lossless.
///
/// Decoding names the offending claim on failure ([`MessageError::MalformedClaim`]).
/// It is strict for identity and security claims (string claims must be strings,
/// `exp`/`iat` numbers) and lenient elsewhere (see the individual claim types).
/// Decoding does not validate: use [`crate::LtiMessage::from_claims`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: Option<String>,
    /// Subject (user id). Absent for anonymous launches.
    pub sub: Option<String>,
    /// Audience.
    pub aud: Option<Audience>,
    /// Authorized party.
    pub azp: Option<String>,
    /// Expiry (seconds since epoch; fractional values are truncated).
    pub exp: Option<i64>,
    /// Issued-at (seconds since epoch).
    pub iat: Option<i64>,
    /// Nonce.
    pub nonce: Option<String>,
    /// Full name.
    pub name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Middle name.
    pub middle_name: Option<String>,
    /// Picture URL.
    pub picture: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Locale.
    pub locale: Option<String>,
    /// `message_type`.
    pub message_type: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `deployment_id`.
    pub deployment_id: Option<String>,
    /// `target_link_uri`.
    pub target_link_uri: Option<String>,
    /// `resource_link`.
    pub resource_link: Option<ResourceLinkClaim>,
    /// `roles`, verbatim (may contain `""`).
    pub roles: Option<Vec<String>>,
    /// `role_scope_mentor`.
    pub role_scope_mentor: Option<Vec<String>>,
    /// `context`.
    pub context: Option<ContextClaim>,
    /// `tool_platform`.
    pub tool_platform: Option<ToolPlatformClaim>,
    /// `launch_presentation`.
    pub launch_presentation: Option<LaunchPresentationClaim>,
    /// `lis`.
    pub lis: Option<LisClaim>,
    /// `custom` (values are strings per spec; other JSON values are kept).
    pub custom: Option<Map<String, Value>>,
    /// `for_user`.
    pub for_user: Option<ForUserClaim>,
    /// `lti1p1`.
    pub lti1p1: Option<Lti1p1Claim>,
    /// `ext` vendor extras.
    pub ext: Option<Map<String, Value>>,
    /// Canvas `lti11_legacy_user_id`.
    pub lti11_legacy_user_id: Option<String>,
    /// Deep linking settings.
    pub deep_linking_settings: Option<DeepLinkingSettings>,
    /// AGS endpoint.
    pub ags_endpoint: Option<AgsEndpointClaim>,
    /// NRPS endpoint.
    pub nrps: Option<NrpsClaim>,
    /// Course groups service.
    pub groups_service: Option<GroupsServiceClaim>,
    /// LTI 1.1 basic outcome service.
    pub basic_outcome: Option<BasicOutcomeClaim>,
    /// Caliper endpoint service.
    pub caliper_endpoint: Option<CaliperEndpointClaim>,
    /// Every other claim, unchanged.
    pub extra: Map<String, Value>,
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Records which claim failed to decode, so errors can name it.
type FailedClaim = Cell<Option<&'static str>>;

/// Declares the known claims once: the decoder's key match and its
/// duplicate-detection bits are generated from this list.
macro_rules! known_claims {
    ($( $field:ident => $key:expr, $kind:ident, $scan:tt; )*) => {
        // One bit per known claim in the visitor's `seen`.
        const _: () = assert!([$($key),*].len() <= 64, "known_claims!: at most 64 claims");
        struct ClaimsVisitor<'a> {
            failed: &'a FailedClaim,
        }

        impl<'de> Visitor<'de> for ClaimsVisitor<'_> {
            type Value = Box<IdTokenClaims>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of claims")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Box<IdTokenClaims>, A::Error> {
                // Built in place on the heap: the claim set is about 2 KB.
                let mut c = Box::<IdTokenClaims>::default();
                let mut seen: u64 = 0;
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    let mut bit = 1u64;
                    $(
                        if key == $key {
                            if seen & bit != 0 {
                                self.failed.set(Some($key));
                                return Err(de::Error::custom("expected the claim once, found it twice"));
                            }
                            seen |= bit;
                            c.$field = known_claims!(@value $kind, map, self.failed, $key)?;
                            continue;
                        }
                        bit <<= 1;
                    )*
                    let _ = bit;
                    let value: Value = map.next_value()?;
                    c.extra.insert(key.into_owned(), value);
                }
                Ok(c)
            }
        }

        /// The same claims, checked without building them (`scan.rs`).
        struct ClaimsScan;

        impl<'de> Visitor<'de> for ClaimsScan {
            type Value = crate::scan::ScannedClaims<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of claims")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = crate::scan::ScannedClaims::empty();
                let mut seen: u64 = 0;
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    let mut bit = 1u64;
                    $(
                        if key == $key {
                            if seen & bit != 0 {
                                return Err(de::Error::custom("expected the claim once, found it twice"));
                            }
                            seen |= bit;
                            crate::scan::scan_claim!($scan, map, out, $field);
                            continue;
                        }
                        bit <<= 1;
                    )*
                    let _ = bit;
                    crate::scan::scan_other_claim(&mut map, &key, &mut out)?;
                }
                Ok(out)
            }
        }

        /// Scans one claim set (see [`IdTokenClaims::scan`]).
        pub(crate) fn scan_top_level<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<crate::scan::ScannedClaims<'de>, D::Error> {
            d.deserialize_map(ClaimsScan)
        }
    };
    (@value date, $map:ident, $failed:expr, $key:expr) => {
        $map.next_value::<NumericDate>().map(|d| d.0).map_err(|e| {
            $failed.set(Some($key));
            e
        })
    };
    (@value typed, $map:ident, $failed:expr, $key:expr) => {
        $map.next_value().map_err(|e| {
            $failed.set(Some($key));
            e
        })
    };
}

known_claims! {
    iss => "iss", typed, keep;
    sub => "sub", typed, keep;
    aud => "aud", typed, aud;
    azp => "azp", typed, keep;
    exp => "exp", date, date;
    iat => "iat", date, date;
    nonce => "nonce", typed, keep;
    name => "name", typed, skip;
    given_name => "given_name", typed, skip;
    family_name => "family_name", typed, skip;
    middle_name => "middle_name", typed, skip;
    picture => "picture", typed, skip;
    email => "email", typed, skip;
    locale => "locale", typed, skip;
    message_type => uri::MESSAGE_TYPE, typed, keep;
    version => uri::VERSION, typed, keep;
    deployment_id => uri::DEPLOYMENT_ID, typed, keep;
    target_link_uri => uri::TARGET_LINK_URI, typed, keep;
    resource_link => uri::RESOURCE_LINK, typed, "id";
    roles => uri::ROLES, typed, present;
    role_scope_mentor => uri::ROLE_SCOPE_MENTOR, typed, skip;
    context => uri::CONTEXT, typed, skip;
    tool_platform => uri::TOOL_PLATFORM, typed, skip;
    launch_presentation => uri::LAUNCH_PRESENTATION, typed, skip;
    lis => uri::LIS, typed, skip;
    custom => uri::CUSTOM, typed, skip;
    for_user => uri::FOR_USER, typed, "user_id";
    lti1p1 => uri::LTI1P1, typed, skip;
    ext => uri::EXT, typed, skip;
    lti11_legacy_user_id => uri::LTI11_LEGACY_USER_ID, typed, skip;
    deep_linking_settings => uri::DEEP_LINKING_SETTINGS, typed, "deep_link_return_url";
    ags_endpoint => uri::AGS_ENDPOINT, typed, skip;
    nrps => uri::NRPS, typed, skip;
    groups_service => uri::GROUPS_SERVICE, typed, skip;
    basic_outcome => uri::BASIC_OUTCOME, typed, skip;
    caliper_endpoint => uri::CALIPER_ENDPOINT, typed, skip;
}

/// A map key, borrowed from the input when possible.
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a claim name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// `exp`/`iat`: a JSON number of seconds (fractions truncated) or null.
struct NumericDate(Option<i64>);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct DateVisitor;
        impl Visitor<'_> for DateVisitor {
            type Value = NumericDate;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("seconds since the epoch as a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                Ok(NumericDate(Some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                i64::try_from(v)
                    .map(|v| NumericDate(Some(v)))
                    .map_err(|_| E::custom(format!("expected seconds since the epoch, found {v}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                if v.is_finite() && v.abs() < 9.0e15 {
                    // Truncation toward zero is the intent: NumericDate fractions are dropped.
                    Ok(NumericDate(Some(v as i64)))
                } else {
                    Err(E::custom(format!(
                        "expected seconds since the epoch, found {v}"
                    )))
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<NumericDate, E> {
                Ok(NumericDate(None))
            }
        }
        d.deserialize_any(DateVisitor)
    }
}

fn decode<'de, D: Deserializer<'de>>(
    d: D,
    failed: &FailedClaim,
) -> Result<Box<IdTokenClaims>, D::Error> {
    d.deserialize_map(ClaimsVisitor { failed })
}

/// Decodes one claim set from `de` (reading `bytes`), which must hold nothing else.
fn decode_reader<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    bytes: &[u8],
) -> Result<Box<IdTokenClaims>, MessageError> {
    let failed = FailedClaim::new(None);
    let claims = decode(&mut de, &failed).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data && failed.get().is_none() {
            // The top level was valid JSON of the wrong type.
            let found = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'[') => "an array",
                Some(b'"') => "a string",
                Some(b't' | b'f') => "a boolean",
                Some(b'n') => "null",
                _ => "a number",
            };
            MessageError::NotAnObject { found }
        } else {
            malformed(&failed, &e)
        }
    })?;
    de.end()
        .map_err(|e| malformed(&FailedClaim::new(None), &e))?;
    Ok(claims)
}

fn malformed(failed: &FailedClaim, e: &serde_json::Error) -> MessageError {
    // serde_json quotes offending values in its messages: cap their length.
    MessageError::MalformedClaim {
        claim: failed.get().unwrap_or("(payload)"),
        reason: excerpt_n(&e.to_string(), 160),
    }
}

impl IdTokenClaims {
    /// Decodes a claim set from a JSON value (which must be an object).
    pub fn from_value(value: Value) -> Result<Self, MessageError> {
        if !value.is_object() {
            return Err(MessageError::NotAnObject {
                found: json_type(&value),
            });
        }
        let failed = FailedClaim::new(None);
        decode(value, &failed)
            .map(|c| *c)
            .map_err(|e| malformed(&failed, &e))
    }

    /// Decodes a claim set from JSON bytes, without building an intermediate
    /// `Value` for the known claims. A known claim that appears twice is refused.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, MessageError> {
        Self::from_slice_boxed(bytes).map(|c| *c)
    }

    /// As [`IdTokenClaims::from_slice`], built in place on the heap: the claim set
    /// is about 2 KB, and a boxed one is not copied again as it is passed on (e.g.
    /// to [`crate::LtiMessage::from_boxed_claims`]).
    pub fn from_slice_boxed(bytes: &[u8]) -> Result<Box<Self>, MessageError> {
        // One UTF-8 check of the whole text is cheaper than one per string; bytes
        // that are not UTF-8 take the byte reader, which names where they are.
        match std::str::from_utf8(bytes) {
            Ok(text) => Self::from_json_str_boxed(text),
            Err(_) => decode_reader(serde_json::Deserializer::from_slice(bytes), bytes),
        }
    }

    /// Decodes a claim set from JSON text, as [`IdTokenClaims::from_slice`].
    pub fn from_json_str(text: &str) -> Result<Self, MessageError> {
        Self::from_json_str_boxed(text).map(|c| *c)
    }

    /// As [`IdTokenClaims::from_json_str`], built in place on the heap (see
    /// [`IdTokenClaims::from_slice_boxed`]).
    pub fn from_json_str_boxed(text: &str) -> Result<Box<Self>, MessageError> {
        decode_reader(serde_json::Deserializer::from_str(text), text.as_bytes())
    }

    /// Decodes a claim set from a JSON object.
    pub fn from_map(map: Map<String, Value>) -> Result<Self, MessageError> {
        Self::from_value(Value::Object(map))
    }

    /// Encodes the claim set as a JSON object (known claims first, then unknown ones).
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(m)) => m,
            // Serialising plain data into a Value cannot fail or produce a non-object.
            _ => Map::new(),
        }
    }

    /// The parsed `roles` claim (empty when absent; `""` entries are skipped).
    pub fn parsed_roles(&self) -> Roles {
        self.roles
            .as_deref()
            .map(Roles::from_claim)
            .unwrap_or_default()
    }

    /// A `custom` value as a string (numbers and booleans are rendered as text).
    pub fn custom_str(&self, key: &str) -> Option<std::borrow::Cow<'_, str>> {
        match self.custom.as_ref()?.get(key)? {
            Value::String(s) => Some(s.as_str().into()),
            Value::Number(n) => Some(n.to_string().into()),
            Value::Bool(b) => Some(b.to_string().into()),
            _ => None,
        }
    }
}

impl Serialize for IdTokenClaims {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        fn entry<M: SerializeMap, T: Serialize>(
            m: &mut M,
            k: &str,
            v: &Option<T>,
        ) -> Result<(), M::Error> {
            match v {
                Some(v) => m.serialize_entry(k, v),
                None => Ok(()),
            }
        }
        let mut m = s.serialize_map(None)?;
        entry(&mut m, "iss", &self.iss)?;
        entry(&mut m, "sub", &self.sub)?;
        entry(&mut m, "aud", &self.aud)?;
        entry(&mut m, "azp", &self.azp)?;
        entry(&mut m, "exp", &self.exp)?;
        entry(&mut m, "iat", &self.iat)?;
        entry(&mut m, "nonce", &self.nonce)?;
        entry(&mut m, "name", &self.name)?;
        entry(&mut m, "given_name", &self.given_name)?;
        entry(&mut m, "family_name", &self.family_name)?;
        entry(&mut m, "middle_name", &self.middle_name)?;
        entry(&mut m, "picture", &self.picture)?;
        entry(&mut m, "email", &self.email)?;
        entry(&mut m, "locale", &self.locale)?;
        entry(&mut m, uri::MESSAGE_TYPE, &self.message_type)?;
        entry(&mut m, uri::VERSION, &self.version)?;
        entry(&mut m, uri::DEPLOYMENT_ID, &self.deployment_id)?;
        entry(&mut m, uri::TARGET_LINK_URI, &self.target_link_uri)?;
        entry(&mut m, uri::RESOURCE_LINK, &self.resource_link)?;
        entry(&mut m, uri::ROLES, &self.roles)?;
        entry(&mut m, uri::ROLE_SCOPE_MENTOR, &self.role_scope_mentor)?;
        entry(&mut m, uri::CONTEXT, &self.context)?;
        entry(&mut m, uri::TOOL_PLATFORM, &self.tool_platform)?;
        entry(&mut m, uri::LAUNCH_PRESENTATION, &self.launch_presentation)?;
        entry(&mut m, uri::LIS, &self.lis)?;
        entry(&mut m, uri::CUSTOM, &self.custom)?;
        entry(&mut m, uri::FOR_USER, &self.for_user)?;
        entry(&mut m, uri::LTI1P1, &self.lti1p1)?;
        entry(&mut m, uri::EXT, &self.ext)?;
        entry(
            &mut m,
            uri::LTI11_LEGACY_USER_ID,
            &self.lti11_legacy_user_id,
        )?;
        entry(
            &mut m,
            uri::DEEP_LINKING_SETTINGS,
            &self.deep_linking_settings,
        )?;
        entry(&mut m, uri::AGS_ENDPOINT, &self.ags_endpoint)?;
        entry(&mut m, uri::NRPS, &self.nrps)?;
        entry(&mut m, uri::GROUPS_SERVICE, &self.groups_service)?;
        entry(&mut m, uri::BASIC_OUTCOME, &self.basic_outcome)?;
        entry(&mut m, uri::CALIPER_ENDPOINT, &self.caliper_endpoint)?;
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for IdTokenClaims {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let failed = FailedClaim::new(None);
        decode(d, &failed)
            .map(|c| *c)
            .map_err(|e| match failed.get() {
                Some(claim) => de::Error::custom(format!("claim `{claim}` is malformed: {e}")),
                None => e,
            })
    }
}

/// Accepts a non-negative integer, a float, or a numeric string; anything else is `None`.
pub(crate) fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().and_then(|u| u32::try_from(u).ok()).or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && (0.0..=f64::from(u32::MAX)).contains(f))
                .map(|f| f.round() as u32)
        }),
        Value::String(s) => {
            let t = s.trim().trim_end_matches("px");
            t.parse::<u32>().ok().or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && (0.0..=f64::from(u32::MAX)).contains(f))
                    .map(|f| f.round() as u32)
            })
        }
        _ => None,
    })
}
