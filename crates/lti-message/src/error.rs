//! The crate's error type.

use std::fmt;

/// A claim (or claim member) that a message type requires.
///
/// Used by [`MessageError::MissingClaim`] so callers can tell exactly which
/// claim was absent; [`RequiredClaim::code`] gives a stable machine code such
/// as `missing_claim:deployment_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequiredClaim {
    /// `https://purl.imsglobal.org/spec/lti/claim/message_type`.
    MessageType,
    /// `https://purl.imsglobal.org/spec/lti/claim/version`.
    Version,
    /// `https://purl.imsglobal.org/spec/lti/claim/deployment_id`.
    DeploymentId,
    /// `https://purl.imsglobal.org/spec/lti/claim/roles`.
    Roles,
    /// `https://purl.imsglobal.org/spec/lti/claim/resource_link` (or its `id`).
    ResourceLinkId,
    /// `https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings`.
    DeepLinkingSettings,
    /// `deep_link_return_url` inside the deep linking settings claim.
    DeepLinkReturnUrl,
    /// `https://purl.imsglobal.org/spec/lti/claim/for_user` (or its `user_id`).
    ForUser,
    /// The OIDC `sub` claim (absent means an anonymous launch).
    Sub,
}

impl RequiredClaim {
    /// The stable machine code, `missing_claim:<name>`.
    pub fn code(self) -> &'static str {
        match self {
            Self::MessageType => "missing_claim:message_type",
            Self::Version => "missing_claim:version",
            Self::DeploymentId => "missing_claim:deployment_id",
            Self::Roles => "missing_claim:roles",
            Self::ResourceLinkId => "missing_claim:resource_link.id",
            Self::DeepLinkingSettings => "missing_claim:deep_linking_settings",
            Self::DeepLinkReturnUrl => "missing_claim:deep_linking_settings.deep_link_return_url",
            Self::ForUser => "missing_claim:for_user.user_id",
            Self::Sub => "missing_claim:sub",
        }
    }

    /// The claim's short name as used in the spec (`deployment_id`, `resource_link.id`, ...).
    pub fn name(self) -> &'static str {
        // The code is `missing_claim:` followed by the name.
        &self.code()["missing_claim:".len()..]
    }
}

impl fmt::Display for RequiredClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that can go wrong while parsing, validating or building LTI messages.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// The payload is not a JSON object.
    #[error("expected the claim set to be a JSON object, found {found}")]
    NotAnObject {
        /// The JSON type that was found.
        found: &'static str,
    },
    /// A known claim has the wrong JSON shape.
    #[error("claim `{claim}` is malformed: {reason}")]
    MalformedClaim {
        /// The claim name (full URI for LTI claims).
        claim: &'static str,
        /// What was expected and what was found.
        reason: String,
    },
    /// A claim required by the message type is absent.
    #[error("expected claim `{0}` to be present, found none")]
    MissingClaim(RequiredClaim),
    /// The version claim is not `1.3.0`.
    #[error("expected LTI version `1.3.0`, found `{found}`")]
    InvalidVersion {
        /// The version string that was sent (truncated to 64 characters).
        found: String,
    },
    /// The message type is not one this crate models and the caller did not opt in.
    #[error("expected a supported message type, found `{found}`")]
    UnknownMessageType {
        /// The message type that was sent (truncated to 64 characters).
        found: String,
    },
    /// The message type is valid but not the one the caller asked for.
    #[error("expected message type `{expected}`, found `{found}`")]
    WrongMessageType {
        /// The expected message type.
        expected: &'static str,
        /// The message type that was sent (truncated to 64 characters).
        found: String,
    },
    /// The deployment id is empty.
    #[error("expected a non-empty deployment_id, found an empty string")]
    EmptyDeploymentId,
    /// The deployment id is longer than 255 characters.
    #[error("expected deployment_id of at most 255 characters, found {len}")]
    DeploymentIdTooLong {
        /// Its length in characters.
        len: usize,
    },
    /// `sub` is present but empty (always invalid, even for anonymous launches).
    #[error("expected a non-empty sub, found an empty string")]
    EmptySub,
    /// An identifier claim member (`resource_link.id`, `for_user.user_id`, ...) is empty.
    #[error("expected `{claim}` to be non-empty, found an empty string")]
    EmptyIdentifier {
        /// The claim member.
        claim: &'static str,
    },
    /// A deep-linking content item's type is not in `accept_types`.
    #[error("expected a content item type in {accepted:?}, found `{found}`")]
    ContentItemTypeNotAccepted {
        /// The type of the refused item.
        found: &'static str,
        /// The types the platform accepts.
        accepted: Vec<String>,
    },
    /// A second content item was added but the platform does not accept multiple.
    #[error("expected at most one content item (accept_multiple is not true), found a second one")]
    MultipleItemsNotAccepted,
    /// An ltiResourceLink carries a lineItem but `accept_lineitem` is not true.
    #[error("expected no lineItem (accept_lineitem is not true), found one")]
    LineItemNotAccepted,
    /// A content item asks for a presentation target the platform does not accept.
    #[error("expected a presentation target in {accepted:?}, found `{found}`")]
    PresentationTargetNotAccepted {
        /// The refused target (`embed`, `window` or `iframe`).
        found: &'static str,
        /// The targets the platform accepts.
        accepted: Vec<String>,
    },
    /// A deep-linking response does not echo the request's `data` unchanged.
    #[error(
        "expected the deep-linking response to echo the request's data unchanged, found a different value"
    )]
    DataMismatch,
    /// A content item or wire object violates a rule of its own.
    #[error("invalid {what}: {reason}")]
    InvalidItem {
        /// The object and field (for example `lineItem.scoreMaximum`).
        what: &'static str,
        /// What was expected and what was found.
        reason: String,
    },
    /// A timestamp is not RFC 3339 with a time zone, or is out of range.
    #[error("expected an RFC 3339 date-time with a time zone, found `{found}`")]
    InvalidTimestamp {
        /// The offending text (truncated to 64 characters).
        found: String,
    },
    /// Required LTI 1.1 launch parameters are missing (all of them are listed).
    #[error("expected LTI 1.1 parameters {missing:?} to be present, found none")]
    MissingParameters {
        /// Every missing required parameter.
        missing: Vec<&'static str>,
    },
    /// An LTI 1.1 parameter has an unsupported value.
    #[error("expected parameter `{name}` to be {expected}, found `{found}`")]
    InvalidParameter {
        /// The parameter name.
        name: &'static str,
        /// What was expected.
        expected: &'static str,
        /// What was found (truncated to 64 characters).
        found: String,
    },
}

impl MessageError {
    /// A stable machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAnObject { .. } => "not_an_object",
            Self::MalformedClaim { .. } => "malformed_claim",
            Self::MissingClaim(c) => c.code(),
            Self::InvalidVersion { .. } => "invalid_version",
            Self::UnknownMessageType { .. } => "unknown_message_type",
            Self::WrongMessageType { .. } => "wrong_message_type",
            Self::EmptyDeploymentId => "empty_deployment_id",
            Self::DeploymentIdTooLong { .. } => "deployment_id_too_long",
            Self::EmptySub => "empty_sub",
            Self::EmptyIdentifier { .. } => "empty_identifier",
            Self::ContentItemTypeNotAccepted { .. } => "content_item_type_not_accepted",
            Self::MultipleItemsNotAccepted => "multiple_items_not_accepted",
            Self::LineItemNotAccepted => "line_item_not_accepted",
            Self::PresentationTargetNotAccepted { .. } => "presentation_target_not_accepted",
            Self::DataMismatch => "data_mismatch",
            Self::InvalidItem { .. } => "invalid_item",
            Self::InvalidTimestamp { .. } => "invalid_timestamp",
            Self::MissingParameters { .. } => "missing_parameters",
            Self::InvalidParameter { .. } => "invalid_parameter",
        }
    }
}

/// Truncates attacker-controlled text before it goes into an error message.
pub(crate) fn excerpt(s: &str) -> String {
    excerpt_n(s, 64)
}

/// Truncates text to `max` characters, marking the cut with `…`.
pub(crate) fn excerpt_n(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
