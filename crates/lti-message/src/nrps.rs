//! Names and Role Provisioning Services 2.0 wire types.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::claims::IdTokenClaims;
use crate::roles::Roles;

/// NRPS media types.
pub mod media_type {
    /// Membership container (NRPS 2.0).
    pub const MEMBERSHIP_CONTAINER: &str =
        "application/vnd.ims.lti-nrps.v2.membershipcontainer+json";
    /// Legacy LTI 1.x membership container.
    pub const LEGACY_MEMBERSHIP_CONTAINER: &str =
        "application/vnd.ims.lis.v2.membershipcontainer+json";
}

/// NRPS read scope.
pub const SCOPE_CONTEXT_MEMBERSHIP_READONLY: &str =
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly";

/// The NRPS claim of a launch.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct NrpsClaim {
    /// Membership URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_memberships_url: Option<String>,
    /// Service versions (`["2.0"]`; Moodle sends `["1.0","2.0"]`).
    pub service_versions: Vec<String>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::claims::claim_object!(NrpsClaim {
    context_memberships_url: "context_memberships_url",
    service_versions: "service_versions",
});

/// Membership status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum MemberStatus {
    /// Active (default when absent).
    #[default]
    Active,
    /// Inactive.
    Inactive,
    /// Deleted (only in `differences` responses).
    Deleted,
}

/// The context of a membership container.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MembershipContext {
    /// Context id.
    pub id: String,
    /// Label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// One member of a context.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Member {
    /// Status.
    #[serde(default)]
    pub status: MemberStatus,
    /// The member's `sub`.
    pub user_id: String,
    /// Role URIs.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Middle name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Picture URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// SIS id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lis_person_sourcedid: Option<String>,
    /// Canvas legacy 1.1 user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lti11_legacy_user_id: Option<String>,
    /// Per-link message claim sets (present when `rlid` was requested).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message: Vec<IdTokenClaims>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Member {
    /// The member's roles, parsed.
    pub fn parsed_roles(&self) -> Roles {
        Roles::from_claim(&self.roles)
    }
}

/// A membership container page.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MembershipContainer {
    /// Container URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<MembershipContext>,
    /// The members on this page.
    #[serde(default)]
    pub members: Vec<Member>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
