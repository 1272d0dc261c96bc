//! Message classification and per-message-type validation.

use std::ops::Deref;

use serde_json::{Map, Value};

use crate::ags::AgsEndpointClaim;
use crate::claims::{ForUserClaim, IdTokenClaims, ResourceLinkClaim, uri};
use crate::deep_linking::DeepLinkingSettings;
use crate::error::{MessageError, RequiredClaim, excerpt};
use crate::roles::Roles;
use crate::scan::Classified;

/// Maximum length of `deployment_id` (characters).
pub const MAX_DEPLOYMENT_ID_LEN: usize = 255;

/// What claim validation tolerates. The default is the secure one: unknown
/// message types and anonymous launches are rejected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ValidationOptions {
    /// Produce [`LtiMessage::Other`] for message types this crate does not model.
    pub allow_unknown_message_types: bool,
    /// Accept resource-link and deep-linking launches without `sub`
    /// (a present but empty `sub` is rejected regardless).
    pub allow_anonymous: bool,
}

impl ValidationOptions {
    /// The secure defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Opts in to [`LtiMessage::Other`].
    pub fn allow_unknown_message_types(mut self, allow: bool) -> Self {
        self.allow_unknown_message_types = allow;
        self
    }
    /// Opts in to anonymous launches.
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = allow;
        self
    }
}

fn require<T: ?Sized>(v: Option<&T>, claim: RequiredClaim) -> Result<&T, MessageError> {
    v.ok_or(MessageError::MissingClaim(claim))
}

/// What classification reads, from the typed claims or from a scan
/// ([`crate::claims::IdTokenClaims::scan`]), so both judge alike.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Essentials<'a> {
    pub(crate) message_type: Option<&'a str>,
    pub(crate) version: Option<&'a str>,
    pub(crate) deployment_id: Option<&'a str>,
    pub(crate) sub: Option<&'a str>,
    /// `roles` present (not absent, not `null`).
    pub(crate) has_roles: bool,
    /// `resource_link.id`, when both are present.
    pub(crate) resource_link_id: Option<&'a str>,
    /// The settings claim, when present, with its `deep_link_return_url`.
    pub(crate) deep_linking_settings: Option<Option<&'a str>>,
    /// `for_user.user_id`, when both are present.
    pub(crate) for_user_id: Option<&'a str>,
}

impl<'a> Essentials<'a> {
    pub(crate) fn of(c: &'a IdTokenClaims) -> Self {
        Essentials {
            message_type: c.message_type.as_deref(),
            version: c.version.as_deref(),
            deployment_id: c.deployment_id.as_deref(),
            sub: c.sub.as_deref(),
            has_roles: c.roles.is_some(),
            resource_link_id: c.resource_link.as_ref().and_then(|r| r.id.as_deref()),
            deep_linking_settings: c
                .deep_linking_settings
                .as_ref()
                .map(|s| s.deep_link_return_url.as_deref()),
            for_user_id: c.for_user.as_ref().and_then(|f| f.user_id.as_deref()),
        }
    }
}

/// The message types [`LtiMessage`] tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageKind {
    ResourceLink,
    DeepLinking,
    SubmissionReview,
    Other,
}

/// Validates a message and tells its type (the checks of [`LtiMessage::from_claims`]).
pub(crate) fn classify(
    e: &Essentials<'_>,
    opts: &ValidationOptions,
) -> Result<MessageKind, MessageError> {
    let t = require(e.message_type, RequiredClaim::MessageType)?;
    check_version(e)?;
    match t {
        uri::MSG_RESOURCE_LINK => {
            validate_resource_link(e, opts).map(|()| MessageKind::ResourceLink)
        }
        uri::MSG_DEEP_LINKING => validate_deep_linking(e, opts).map(|()| MessageKind::DeepLinking),
        uri::MSG_SUBMISSION_REVIEW => {
            validate_submission_review(e).map(|()| MessageKind::SubmissionReview)
        }
        other if opts.allow_unknown_message_types => {
            if other.is_empty() {
                return Err(MessageError::UnknownMessageType {
                    found: String::new(),
                });
            }
            validate_common(e, opts.allow_anonymous)?;
            Ok(MessageKind::Other)
        }
        other => Err(MessageError::UnknownMessageType {
            found: excerpt(other),
        }),
    }
}

fn check_version(e: &Essentials<'_>) -> Result<(), MessageError> {
    let v = require(e.version, RequiredClaim::Version)?;
    if v == uri::LTI_VERSION {
        Ok(())
    } else {
        Err(MessageError::InvalidVersion { found: excerpt(v) })
    }
}

fn validate_common(e: &Essentials<'_>, allow_anonymous: bool) -> Result<(), MessageError> {
    check_version(e)?;
    let d = require(e.deployment_id, RequiredClaim::DeploymentId)?;
    if d.is_empty() {
        return Err(MessageError::EmptyDeploymentId);
    }
    let len = d.chars().count();
    if len > MAX_DEPLOYMENT_ID_LEN {
        return Err(MessageError::DeploymentIdTooLong { len });
    }
    match e.sub {
        Some("") => return Err(MessageError::EmptySub),
        Some(_) => {}
        None if allow_anonymous => {}
        None => return Err(MessageError::MissingClaim(RequiredClaim::Sub)),
    }
    if !e.has_roles {
        return Err(MessageError::MissingClaim(RequiredClaim::Roles));
    }
    Ok(())
}

fn check_message_type(e: &Essentials<'_>, expected: &'static str) -> Result<(), MessageError> {
    let t = require(e.message_type, RequiredClaim::MessageType)?;
    if t == expected {
        Ok(())
    } else {
        Err(MessageError::WrongMessageType {
            expected,
            found: excerpt(t),
        })
    }
}

/// A required identifier: present (else `missing`) and non-empty (else
/// `empty_identifier` naming `claim`).
fn required_id(
    value: Option<&str>,
    missing: RequiredClaim,
    claim: &'static str,
) -> Result<(), MessageError> {
    match value {
        None => Err(MessageError::MissingClaim(missing)),
        Some("") => Err(MessageError::EmptyIdentifier { claim }),
        Some(_) => Ok(()),
    }
}

fn resource_link_id(e: &Essentials<'_>) -> Result<(), MessageError> {
    required_id(
        e.resource_link_id,
        RequiredClaim::ResourceLinkId,
        "resource_link.id",
    )
}

fn validate_resource_link(
    e: &Essentials<'_>,
    opts: &ValidationOptions,
) -> Result<(), MessageError> {
    check_message_type(e, uri::MSG_RESOURCE_LINK)?;
    validate_common(e, opts.allow_anonymous)?;
    resource_link_id(e)
}

fn validate_deep_linking(e: &Essentials<'_>, opts: &ValidationOptions) -> Result<(), MessageError> {
    check_message_type(e, uri::MSG_DEEP_LINKING)?;
    validate_common(e, opts.allow_anonymous)?;
    let settings = e.deep_linking_settings.ok_or(MessageError::MissingClaim(
        RequiredClaim::DeepLinkingSettings,
    ))?;
    required_id(
        settings,
        RequiredClaim::DeepLinkReturnUrl,
        "deep_linking_settings.deep_link_return_url",
    )
}

fn validate_submission_review(e: &Essentials<'_>) -> Result<(), MessageError> {
    check_message_type(e, uri::MSG_SUBMISSION_REVIEW)?;
    // Submission review always names its user.
    validate_common(e, false)?;
    resource_link_id(e)?;
    required_id(e.for_user_id, RequiredClaim::ForUser, "for_user.user_id")
}

macro_rules! validated_message {
    ($ty:ident) => {
        impl $ty {
            /// Validates ([`Self::validate`]) and wraps the claims.
            pub fn try_from_claims(
                c: IdTokenClaims,
                opts: &ValidationOptions,
            ) -> Result<Self, MessageError> {
                Self::try_from_boxed_claims(Box::new(c), opts)
            }

            /// As [`Self::try_from_claims`], for claims already on the heap (see
            /// [`IdTokenClaims::from_slice_boxed`]): the claim set is not moved.
            pub fn try_from_boxed_claims(
                c: Box<IdTokenClaims>,
                opts: &ValidationOptions,
            ) -> Result<Self, MessageError> {
                Self::validate(&c, opts)?;
                Ok(Self {
                    roles: c.parsed_roles(),
                    claims: c,
                })
            }
        }
        message_common!($ty);
    };
}

macro_rules! message_common {
    ($ty:ident) => {
        impl $ty {
            /// The claim set.
            pub fn claims(&self) -> &IdTokenClaims {
                &self.claims
            }
            /// Gives back the claim set.
            pub fn into_claims(self) -> IdTokenClaims {
                *self.claims
            }
            /// The user's roles (parsed once at validation).
            pub fn roles(&self) -> &Roles {
                &self.roles
            }
            /// The deployment id (validated: non-empty, ≤255 characters).
            pub fn deployment_id(&self) -> &str {
                self.claims.deployment_id.as_deref().unwrap_or_default()
            }
            /// The user id; `None` only for an allowed anonymous launch.
            pub fn sub(&self) -> Option<&str> {
                self.claims.sub.as_deref()
            }
            /// The issuer (not checked here: the tool layer matches it to a registration).
            pub fn iss(&self) -> Option<&str> {
                self.claims.iss.as_deref()
            }
        }

        impl Deref for $ty {
            type Target = IdTokenClaims;
            fn deref(&self) -> &IdTokenClaims {
                &self.claims
            }
        }
    };
}

/// A validated `LtiResourceLinkRequest`.
#[derive(Debug, Clone, PartialEq)]
pub struct LtiResourceLinkRequest {
    claims: Box<IdTokenClaims>,
    roles: Roles,
}

impl LtiResourceLinkRequest {
    /// Checks the claims a resource-link launch requires.
    pub fn validate(c: &IdTokenClaims, opts: &ValidationOptions) -> Result<(), MessageError> {
        validate_resource_link(&Essentials::of(c), opts)
    }

    /// The resource link claim (its `id` is validated present and non-empty).
    pub fn resource_link(&self) -> &ResourceLinkClaim {
        // Validation guarantees presence; fall back to an empty claim rather than panic.
        static EMPTY: std::sync::OnceLock<ResourceLinkClaim> = std::sync::OnceLock::new();
        self.claims
            .resource_link
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Default::default))
    }

    /// The resource link id.
    pub fn resource_link_id(&self) -> &str {
        self.resource_link().id.as_deref().unwrap_or_default()
    }
}
validated_message!(LtiResourceLinkRequest);

/// A validated `LtiDeepLinkingRequest`.
#[derive(Debug, Clone, PartialEq)]
pub struct LtiDeepLinkingRequest {
    claims: Box<IdTokenClaims>,
    roles: Roles,
}

impl LtiDeepLinkingRequest {
    /// Checks the claims a deep-linking request requires.
    pub fn validate(c: &IdTokenClaims, opts: &ValidationOptions) -> Result<(), MessageError> {
        validate_deep_linking(&Essentials::of(c), opts)
    }

    /// The deep linking settings (validated present, with a return URL).
    pub fn settings(&self) -> &DeepLinkingSettings {
        static EMPTY: std::sync::OnceLock<DeepLinkingSettings> = std::sync::OnceLock::new();
        self.claims
            .deep_linking_settings
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Default::default))
    }

    /// Where to post the response.
    pub fn deep_link_return_url(&self) -> &str {
        self.settings()
            .deep_link_return_url
            .as_deref()
            .unwrap_or_default()
    }
}
validated_message!(LtiDeepLinkingRequest);

/// A validated `LtiSubmissionReviewRequest`. `sub`/`roles` describe the viewer,
/// [`LtiSubmissionReviewRequest::for_user`] the learner whose work is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct LtiSubmissionReviewRequest {
    claims: Box<IdTokenClaims>,
    roles: Roles,
}

impl LtiSubmissionReviewRequest {
    /// Checks the claims a submission review launch requires. `sub` is always
    /// required (anonymous review makes no sense), as are `resource_link.id`
    /// and `for_user.user_id`.
    pub fn validate(c: &IdTokenClaims, _opts: &ValidationOptions) -> Result<(), MessageError> {
        validate_submission_review(&Essentials::of(c))
    }

    /// The learner whose submission is reviewed (validated `user_id`).
    pub fn for_user(&self) -> &ForUserClaim {
        static EMPTY: std::sync::OnceLock<ForUserClaim> = std::sync::OnceLock::new();
        self.claims
            .for_user
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Default::default))
    }

    /// The learner's user id.
    pub fn for_user_id(&self) -> &str {
        self.for_user().user_id.as_deref().unwrap_or_default()
    }

    /// The AGS endpoint claim (the spec requires it with `lineitem` for
    /// submission review; platforms omit it, so it is not enforced).
    pub fn ags_endpoint(&self) -> Option<&AgsEndpointClaim> {
        self.claims.ags_endpoint.as_ref()
    }
}
validated_message!(LtiSubmissionReviewRequest);

/// A message of a type this crate does not model, produced only when
/// [`ValidationOptions::allow_unknown_message_types`] is set. Version,
/// deployment_id, sub and roles were still validated.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherMessage {
    claims: Box<IdTokenClaims>,
    roles: Roles,
}

impl OtherMessage {
    /// The message type.
    pub fn message_type(&self) -> &str {
        self.claims.message_type.as_deref().unwrap_or_default()
    }
}
message_common!(OtherMessage);

/// A validated LTI 1.3 message, classified by its `message_type`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LtiMessage {
    /// `LtiResourceLinkRequest`.
    ResourceLink(LtiResourceLinkRequest),
    /// `LtiDeepLinkingRequest`.
    DeepLinking(LtiDeepLinkingRequest),
    /// `LtiSubmissionReviewRequest`.
    SubmissionReview(LtiSubmissionReviewRequest),
    /// Any other message type (only with `allow_unknown_message_types`).
    Other(OtherMessage),
}

impl LtiMessage {
    /// Classifies and validates a decoded claim set.
    ///
    /// Checks, in order: `message_type` present, `version` exactly `1.3.0`,
    /// message type supported, `deployment_id` present/non-empty/≤255, `sub`
    /// (non-empty; absent only with `allow_anonymous`), `roles` present, then the
    /// message-specific claims. It does not check `iss`, `aud`, `exp`, `iat`
    /// or `nonce`: that belongs to the layer that verified the signature.
    pub fn from_claims(c: IdTokenClaims, opts: &ValidationOptions) -> Result<Self, MessageError> {
        Self::from_boxed_claims(Box::new(c), opts)
    }

    /// As [`LtiMessage::from_claims`], for claims already on the heap (see
    /// [`IdTokenClaims::from_slice_boxed`]): the 2 KB claim set is not moved again.
    pub fn from_boxed_claims(
        c: Box<IdTokenClaims>,
        opts: &ValidationOptions,
    ) -> Result<Self, MessageError> {
        let kind = classify(&Essentials::of(&c), opts)?;
        Ok(Self::of_kind(kind, c))
    }

    /// The message of `kind` (already validated) over `c`.
    fn of_kind(kind: MessageKind, c: Box<IdTokenClaims>) -> Self {
        let roles = c.parsed_roles();
        match kind {
            MessageKind::ResourceLink => {
                Self::ResourceLink(LtiResourceLinkRequest { claims: c, roles })
            }
            MessageKind::DeepLinking => {
                Self::DeepLinking(LtiDeepLinkingRequest { claims: c, roles })
            }
            MessageKind::SubmissionReview => {
                Self::SubmissionReview(LtiSubmissionReviewRequest { claims: c, roles })
            }
            MessageKind::Other => Self::Other(OtherMessage { claims: c, roles }),
        }
    }

    /// Decodes a payload that [`crate::ScannedClaims::classify`] validated: the
    /// deferred half of [`crate::IdTokenClaims::scan`]. `text` must be the text
    /// that was scanned.
    ///
    /// The scan accepts only what the full decoding accepts, so this decodes and
    /// validates as [`LtiMessage::from_json_str`] would. Should the two ever
    /// disagree (a defect), the message keeps the type the scan validated, with
    /// the claims that decode (all of them as [`IdTokenClaims::extra`] when the
    /// typed decoding fails), rather than failing where no error can be returned.
    pub fn decode_classified(text: &str, classified: Classified) -> Self {
        match IdTokenClaims::from_json_str_boxed(text) {
            Ok(c) => match classify(&Essentials::of(&c), &classified.opts) {
                Ok(kind) if kind == classified.kind => Self::of_kind(kind, c),
                _ => Self::of_kind(classified.kind, c),
            },
            Err(_) => {
                let extra = serde_json::from_str::<Map<String, Value>>(text).unwrap_or_default();
                Self::of_kind(
                    classified.kind,
                    Box::new(IdTokenClaims {
                        extra,
                        ..IdTokenClaims::default()
                    }),
                )
            }
        }
    }

    /// Decodes and validates JSON text.
    ///
    /// # Errors
    /// As [`LtiMessage::from_slice`].
    pub fn from_json_str(text: &str, opts: &ValidationOptions) -> Result<Self, MessageError> {
        Self::from_boxed_claims(IdTokenClaims::from_json_str_boxed(text)?, opts)
    }

    /// Decodes and validates a JSON claim set (typically the verified JWT body).
    pub fn from_value(value: Value, opts: &ValidationOptions) -> Result<Self, MessageError> {
        Self::from_claims(IdTokenClaims::from_value(value)?, opts)
    }

    /// Decodes and validates a JSON object.
    pub fn from_map(
        map: Map<String, Value>,
        opts: &ValidationOptions,
    ) -> Result<Self, MessageError> {
        Self::from_claims(IdTokenClaims::from_map(map)?, opts)
    }

    /// Decodes and validates JSON bytes.
    pub fn from_slice(bytes: &[u8], opts: &ValidationOptions) -> Result<Self, MessageError> {
        Self::from_boxed_claims(IdTokenClaims::from_slice_boxed(bytes)?, opts)
    }

    /// The message type string.
    pub fn message_type(&self) -> &str {
        self.claims().message_type.as_deref().unwrap_or_default()
    }

    /// The claim set of any variant.
    pub fn claims(&self) -> &IdTokenClaims {
        match self {
            Self::ResourceLink(m) => m.claims(),
            Self::DeepLinking(m) => m.claims(),
            Self::SubmissionReview(m) => m.claims(),
            Self::Other(m) => m.claims(),
        }
    }

    /// Gives back the claim set.
    pub fn into_claims(self) -> IdTokenClaims {
        match self {
            Self::ResourceLink(m) => m.into_claims(),
            Self::DeepLinking(m) => m.into_claims(),
            Self::SubmissionReview(m) => m.into_claims(),
            Self::Other(m) => m.into_claims(),
        }
    }

    /// The user's roles.
    pub fn roles(&self) -> &Roles {
        match self {
            Self::ResourceLink(m) => m.roles(),
            Self::DeepLinking(m) => m.roles(),
            Self::SubmissionReview(m) => m.roles(),
            Self::Other(m) => m.roles(),
        }
    }

    /// The deployment id.
    pub fn deployment_id(&self) -> &str {
        self.claims().deployment_id.as_deref().unwrap_or_default()
    }

    /// The user id (`None` for an allowed anonymous launch).
    pub fn sub(&self) -> Option<&str> {
        self.claims().sub.as_deref()
    }

    /// The issuer (for the tool layer to check).
    pub fn iss(&self) -> Option<&str> {
        self.claims().iss.as_deref()
    }

    /// The audience (for the tool layer to check).
    pub fn aud(&self) -> Option<&crate::claims::Audience> {
        self.claims().aud.as_ref()
    }

    /// The nonce (for the tool layer to check).
    pub fn nonce(&self) -> Option<&str> {
        self.claims().nonce.as_deref()
    }

    /// Expiry, seconds since the epoch (for the tool layer to check).
    pub fn exp(&self) -> Option<i64> {
        self.claims().exp
    }

    /// Issued-at, seconds since the epoch (for the tool layer to check).
    pub fn iat(&self) -> Option<i64> {
        self.claims().iat
    }
}
