//! LIS role vocabularies: parsing, predicates, permissions and ranks.

use std::fmt;

/// LIS v2 system role prefix.
pub const SYSTEM_PREFIX: &str = "http://purl.imsglobal.org/vocab/lis/v2/system/person#";
/// LIS v2 institution role prefix.
pub const INSTITUTION_PREFIX: &str = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#";
/// LIS v2 context (membership) role prefix.
pub const MEMBERSHIP_PREFIX: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#";
/// LIS v2 context sub-role prefix: followed by `<Principal>#<SubRole>`.
pub const MEMBERSHIP_SUBROLE_PREFIX: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership/";
/// LTI system role prefix (`TestUser`).
pub const LTI_SYSTEM_PREFIX: &str = "http://purl.imsglobal.org/vocab/lti/system/person#";
/// Deprecated LTI 2.0 person role prefix (system or institution roles).
pub const DEPRECATED_PERSON_PREFIX: &str = "http://purl.imsglobal.org/vocab/lis/v2/person#";
/// The LTI system `TestUser` role.
pub const TEST_USER: &str = "http://purl.imsglobal.org/vocab/lti/system/person#TestUser";

const URN_SYSROLE: &str = "urn:lti:sysrole:ims/lis/";
const URN_INSTROLE: &str = "urn:lti:instrole:ims/lis/";
const URN_ROLE: &str = "urn:lti:role:ims/lis/";

/// LIS system roles.
pub const SYSTEM_ROLES: &[&str] = &[
    "Administrator",
    "None",
    "AccountAdmin",
    "Creator",
    "SysAdmin",
    "SysSupport",
    "User",
];
/// LIS institution roles.
pub const INSTITUTION_ROLES: &[&str] = &[
    "Administrator",
    "Faculty",
    "Guest",
    "None",
    "Other",
    "Staff",
    "Student",
    "Alumni",
    "Instructor",
    "Learner",
    "Member",
    "Mentor",
    "Observer",
    "ProspectiveStudent",
];
/// LIS context (membership) principal roles.
pub const CONTEXT_ROLES: &[&str] = &[
    "Administrator",
    "ContentDeveloper",
    "Instructor",
    "Learner",
    "Mentor",
    "Manager",
    "Member",
    "Officer",
];

/// The sub-roles defined for a context principal role (empty for unknown principals).
pub fn context_sub_roles(principal: &str) -> &'static [&'static str] {
    match principal {
        "Administrator" => &[
            "Administrator",
            "Developer",
            "ExternalDeveloper",
            "ExternalSupport",
            "ExternalSystemAdministrator",
            "Support",
            "SystemAdministrator",
        ],
        "ContentDeveloper" => &[
            "ContentDeveloper",
            "ContentExpert",
            "ExternalContentExpert",
            "Librarian",
        ],
        "Instructor" => &[
            "ExternalInstructor",
            "Grader",
            "GuestInstructor",
            "Lecturer",
            "PrimaryInstructor",
            "SecondaryInstructor",
            "TeachingAssistant",
            "TeachingAssistantGroup",
            "TeachingAssistantOffering",
            "TeachingAssistantSection",
            "TeachingAssistantSectionAssociation",
            "TeachingAssistantTemplate",
        ],
        "Learner" => &[
            "ExternalLearner",
            "GuestLearner",
            "Instructor",
            "Learner",
            "NonCreditLearner",
        ],
        "Manager" => &[
            "AreaManager",
            "CourseCoordinator",
            "ExternalObserver",
            "Manager",
            "Observer",
        ],
        "Member" => &["Member"],
        "Mentor" => &[
            "Advisor",
            "Auditor",
            "ExternalAdvisor",
            "ExternalAuditor",
            "ExternalLearningFacilitator",
            "ExternalMentor",
            "ExternalReviewer",
            "ExternalTutor",
            "LearningFacilitator",
            "Mentor",
            "Reviewer",
            "Tutor",
        ],
        "Officer" => &[
            "Chair",
            "Communications",
            "Secretary",
            "Treasurer",
            "Vice-Chair",
        ],
        _ => &[],
    }
}

/// Which vocabulary a role belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RoleVocabulary {
    /// LIS system roles (`…/system/person#`).
    System,
    /// LIS institution roles (`…/institution/person#`).
    Institution,
    /// LIS context roles (`…/membership#` and `…/membership/<P>#<S>`).
    Membership,
    /// LTI system roles (`…/vocab/lti/system/person#`, i.e. `TestUser`).
    LtiSystem,
}

/// How a role was written by the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RoleForm {
    /// A current LIS v2 (or LTI system) URI.
    V2Uri,
    /// The deprecated LTI 2.0 form `…/lis/v2/person#X`.
    DeprecatedV2,
    /// An LTI 1.1 URN (`urn:lti:role:…`, `urn:lti:sysrole:…`, `urn:lti:instrole:…`).
    Lti11Urn,
    /// A short name (`Instructor`, `Instructor#TeachingAssistant`, `Learner/GuestLearner`).
    ShortName,
    /// Not recognised; kept verbatim.
    Unknown,
}

/// One role as sent by a platform, parsed into vocabulary / type / sub-type.
///
/// Parsing never fails: unrecognised roles are kept verbatim with
/// [`Role::vocabulary`] returning `None`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Role {
    raw: String,
    form: RoleForm,
    parsed: Option<(RoleVocabulary, String, Option<String>)>,
}

impl Role {
    /// Parses a role in any supported form.
    pub fn parse(raw: &str) -> Self {
        let (form, parsed) = parse_role(raw.trim());
        Self {
            raw: raw.to_owned(),
            form,
            parsed,
        }
    }

    /// A context (membership) role from its principal and optional sub-role.
    pub fn membership(principal: &str, sub_role: Option<&str>) -> Self {
        let raw = match sub_role {
            Some(s) => format!("{MEMBERSHIP_SUBROLE_PREFIX}{principal}#{s}"),
            None => format!("{MEMBERSHIP_PREFIX}{principal}"),
        };
        Self::parse(&raw)
    }

    /// The role exactly as it was sent.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// How the sender wrote it.
    pub fn form(&self) -> RoleForm {
        self.form
    }

    /// The vocabulary, or `None` for an unknown role.
    pub fn vocabulary(&self) -> Option<RoleVocabulary> {
        self.parsed.as_ref().map(|p| p.0)
    }

    /// The role type (principal), e.g. `Instructor`.
    pub fn role_type(&self) -> Option<&str> {
        self.parsed.as_ref().map(|p| p.1.as_str())
    }

    /// The sub-role, e.g. `TeachingAssistant` in `membership/Instructor#TeachingAssistant`.
    pub fn sub_type(&self) -> Option<&str> {
        self.parsed.as_ref().and_then(|p| p.2.as_deref())
    }

    /// Whether the type (and sub-type, if any) is in the published vocabulary.
    pub fn is_known(&self) -> bool {
        match &self.parsed {
            None => false,
            Some((RoleVocabulary::System, t, _)) => SYSTEM_ROLES.contains(&t.as_str()),
            Some((RoleVocabulary::Institution, t, _)) => INSTITUTION_ROLES.contains(&t.as_str()),
            Some((RoleVocabulary::LtiSystem, t, _)) => t == "TestUser",
            Some((RoleVocabulary::Membership, t, sub)) => {
                CONTEXT_ROLES.contains(&t.as_str())
                    && sub
                        .as_ref()
                        .is_none_or(|s| context_sub_roles(t).contains(&s.as_str()))
            }
        }
    }

    /// The canonical LIS v2 URI for a recognised role (`None` for unknown roles).
    pub fn to_v2_uri(&self) -> Option<String> {
        let (vocab, t, sub) = self.parsed.as_ref()?;
        Some(match (vocab, sub) {
            (RoleVocabulary::System, _) => format!("{SYSTEM_PREFIX}{t}"),
            (RoleVocabulary::Institution, _) => format!("{INSTITUTION_PREFIX}{t}"),
            (RoleVocabulary::LtiSystem, _) => format!("{LTI_SYSTEM_PREFIX}{t}"),
            (RoleVocabulary::Membership, None) => format!("{MEMBERSHIP_PREFIX}{t}"),
            (RoleVocabulary::Membership, Some(s)) => format!("{MEMBERSHIP_SUBROLE_PREFIX}{t}#{s}"),
        })
    }

    fn is(&self, vocab: RoleVocabulary, role_type: &str) -> bool {
        matches!(&self.parsed, Some((v, t, _)) if *v == vocab && t == role_type)
    }

    /// Context role Instructor or any of its sub-roles.
    pub fn is_instructor(&self) -> bool {
        self.is(RoleVocabulary::Membership, "Instructor")
    }

    /// Context role Learner or any of its sub-roles.
    pub fn is_learner(&self) -> bool {
        self.is(RoleVocabulary::Membership, "Learner")
    }

    /// An administrator in any vocabulary (context, institution or system,
    /// including the system roles `SysAdmin` and `AccountAdmin`).
    pub fn is_admin(&self) -> bool {
        match &self.parsed {
            Some((RoleVocabulary::System, t, _)) => {
                matches!(t.as_str(), "Administrator" | "SysAdmin" | "AccountAdmin")
            }
            Some((RoleVocabulary::Institution | RoleVocabulary::Membership, t, _)) => {
                t == "Administrator"
            }
            _ => false,
        }
    }

    /// Context role ContentDeveloper or any of its sub-roles.
    pub fn is_content_developer(&self) -> bool {
        self.is(RoleVocabulary::Membership, "ContentDeveloper")
    }

    /// Context role Mentor or any of its sub-roles.
    pub fn is_mentor(&self) -> bool {
        self.is(RoleVocabulary::Membership, "Mentor")
    }

    /// An Instructor sub-role of the TeachingAssistant family (or the LTI 1.1
    /// `TeachingAssistant` URN / short name).
    pub fn is_teaching_assistant(&self) -> bool {
        let legacy = self.raw.trim();
        let legacy_ta = legacy == "TeachingAssistant"
            || legacy
                .strip_prefix(URN_ROLE)
                .is_some_and(|r| r.starts_with("TeachingAssistant"));
        legacy_ta
            || (self.is_instructor()
                && self
                    .sub_type()
                    .is_some_and(|s| s.starts_with("TeachingAssistant")))
    }

    /// The LTI system role TestUser.
    pub fn is_test_user(&self) -> bool {
        self.is(RoleVocabulary::LtiSystem, "TestUser")
    }

    /// The rank of this role for "X or higher" checks.
    pub fn rank(&self) -> RoleRank {
        if self.is_admin() {
            RoleRank::Administrator
        } else if self.is_instructor() {
            RoleRank::Instructor
        } else if self.is_content_developer() {
            RoleRank::ContentDeveloper
        } else if self.is_mentor() {
            RoleRank::Mentor
        } else if self.is_learner() {
            RoleRank::Learner
        } else {
            RoleRank::None
        }
    }
}

impl fmt::Debug for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Role({:?})", self.raw)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl std::str::FromStr for Role {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self::parse(s))
    }
}

type Parsed = Option<(RoleVocabulary, String, Option<String>)>;

fn simple(vocab: RoleVocabulary, t: &str) -> Parsed {
    valid_token(t).then(|| (vocab, t.to_owned(), None))
}

fn valid_token(t: &str) -> bool {
    !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn principal_and_sub(p: &str, s: Option<&str>) -> Parsed {
    if !valid_token(p) || s.is_some_and(|s| !valid_token(s)) {
        return None;
    }
    Some((
        RoleVocabulary::Membership,
        p.to_owned(),
        s.map(str::to_owned),
    ))
}

fn parse_role(r: &str) -> (RoleForm, Parsed) {
    use RoleVocabulary::{Institution, LtiSystem, System};
    let found = |form: RoleForm, parsed: Parsed| match parsed {
        Some(p) => (form, Some(p)),
        None => (RoleForm::Unknown, None),
    };
    if let Some(t) = r.strip_prefix(SYSTEM_PREFIX) {
        return found(RoleForm::V2Uri, simple(System, t));
    }
    if let Some(t) = r.strip_prefix(INSTITUTION_PREFIX) {
        return found(RoleForm::V2Uri, simple(Institution, t));
    }
    if let Some(t) = r.strip_prefix(MEMBERSHIP_PREFIX) {
        return found(RoleForm::V2Uri, principal_and_sub(t, None));
    }
    if let Some(rest) = r.strip_prefix(MEMBERSHIP_SUBROLE_PREFIX) {
        let parsed = rest
            .split_once('#')
            .and_then(|(p, s)| principal_and_sub(p, Some(s)));
        return found(RoleForm::V2Uri, parsed);
    }
    if let Some(t) = r.strip_prefix(LTI_SYSTEM_PREFIX) {
        return found(RoleForm::V2Uri, simple(LtiSystem, t));
    }
    if let Some(t) = r.strip_prefix(DEPRECATED_PERSON_PREFIX) {
        // System-only names go to System; names shared by both vocabularies
        // (Administrator, None) and institution names go to Institution.
        let vocab = if matches!(
            t,
            "AccountAdmin" | "Creator" | "SysAdmin" | "SysSupport" | "User"
        ) {
            System
        } else {
            Institution
        };
        return found(RoleForm::DeprecatedV2, simple(vocab, t));
    }
    if let Some(t) = r.strip_prefix(URN_SYSROLE) {
        return found(RoleForm::Lti11Urn, simple(System, t));
    }
    if let Some(t) = r.strip_prefix(URN_INSTROLE) {
        return found(RoleForm::Lti11Urn, simple(Institution, t));
    }
    if let Some(rest) = r.strip_prefix(URN_ROLE) {
        return found(RoleForm::Lti11Urn, parse_lti11_context_role(rest));
    }
    // Short names: only the known context principals (and the TA alias) so
    // arbitrary words stay unknown.
    let (p, s) = match r.split_once(['#', '/']) {
        Some((p, s)) => (p, Some(s)),
        None => (r, None),
    };
    if CONTEXT_ROLES.contains(&p) || p == "TeachingAssistant" {
        return found(RoleForm::ShortName, parse_lti11_context_role_parts(p, s));
    }
    (RoleForm::Unknown, None)
}

fn parse_lti11_context_role(rest: &str) -> Parsed {
    match rest.split_once('/') {
        Some((p, s)) => parse_lti11_context_role_parts(p, Some(s)),
        None => parse_lti11_context_role_parts(rest, None),
    }
}

/// LTI 1.1 context roles: `TeachingAssistant` maps to
/// `Instructor#SecondaryInstructor`, `TeachingAssistant/<S>` to `Instructor#<S>`.
fn parse_lti11_context_role_parts(p: &str, s: Option<&str>) -> Parsed {
    match (p, s) {
        ("TeachingAssistant", None) => principal_and_sub("Instructor", Some("SecondaryInstructor")),
        ("TeachingAssistant", Some(s)) => principal_and_sub("Instructor", Some(s)),
        (p, s) => principal_and_sub(p, s),
    }
}

/// Whether `role` is `parent` or one of its sub-roles.
///
/// Both must be recognised roles of the same vocabulary and type. A parent
/// without a sub-type matches every sub-role of its type (and the bare type);
/// a parent with a sub-type matches only that exact sub-role.
pub fn is_subrole(role: &Role, parent: &Role) -> bool {
    match (&role.parsed, &parent.parsed) {
        (Some((rv, rt, rs)), Some((pv, pt, ps))) => {
            rv == pv && rt == pt && (ps.is_none() || ps == rs)
        }
        _ => false,
    }
}

/// Coarse ranks for "this role or higher" checks. Administrators outrank instructors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleRank {
    /// No recognised teaching role.
    None,
    /// Learner.
    Learner,
    /// Mentor.
    Mentor,
    /// Content developer.
    ContentDeveloper,
    /// Instructor (including teaching assistants and other instructor sub-roles).
    Instructor,
    /// Administrator (context, institution or system).
    Administrator,
}

/// Read / write / configure permission bits derived from roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Permissions {
    /// May view content and own results.
    pub read: bool,
    /// May change content, grades and submissions of others.
    pub write: bool,
    /// May change the tool's configuration for the context.
    pub configure: bool,
}

impl Permissions {
    /// No permission at all.
    pub const NONE: Self = Self {
        read: false,
        write: false,
        configure: false,
    };
    /// Read only.
    pub const READ: Self = Self {
        read: true,
        write: false,
        configure: false,
    };
    /// Read and write.
    pub const READ_WRITE: Self = Self {
        read: true,
        write: true,
        configure: false,
    };
    /// Read, write and configure.
    pub const ALL: Self = Self {
        read: true,
        write: true,
        configure: true,
    };

    /// The union of two permission sets.
    pub fn union(self, other: Self) -> Self {
        Self {
            read: self.read || other.read,
            write: self.write || other.write,
            configure: self.configure || other.configure,
        }
    }
}

/// Maps one role to permissions; the application may supply its own.
///
/// Any `Fn(&Role) -> Permissions` closure is a policy.
pub trait PermissionPolicy {
    /// The permissions granted by `role`.
    fn permissions(&self, role: &Role) -> Permissions;
}

impl<F: Fn(&Role) -> Permissions> PermissionPolicy for F {
    fn permissions(&self, role: &Role) -> Permissions {
        self(role)
    }
}

/// The default policy: administrators and instructors (with every instructor
/// sub-role) read+write+configure; content developers read+write; learners,
/// mentors and other recognised context members read; everything else nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPermissionPolicy;

impl PermissionPolicy for DefaultPermissionPolicy {
    fn permissions(&self, role: &Role) -> Permissions {
        match role.rank() {
            RoleRank::Administrator | RoleRank::Instructor => Permissions::ALL,
            RoleRank::ContentDeveloper => Permissions::READ_WRITE,
            RoleRank::Mentor | RoleRank::Learner => Permissions::READ,
            RoleRank::None if role.vocabulary() == Some(RoleVocabulary::Membership) => {
                Permissions::READ
            }
            RoleRank::None => Permissions::NONE,
        }
    }
}

/// The roles of one user, in the order they were sent. Empty strings are skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Roles(Vec<Role>);

impl Roles {
    /// Parses the 1.3 `roles` claim (or an NRPS member's roles).
    pub fn from_claim<S: AsRef<str>>(roles: &[S]) -> Self {
        Self(
            roles
                .iter()
                .map(AsRef::as_ref)
                .filter(|r| !r.trim().is_empty())
                .map(Role::parse)
                .collect(),
        )
    }

    /// Parses the comma-separated LTI 1.1 `roles` parameter.
    pub fn from_lti11_param(roles: &str) -> Self {
        Self(
            roles
                .split(',')
                .filter(|r| !r.trim().is_empty())
                .map(Role::parse)
                .collect(),
        )
    }

    /// The roles.
    pub fn iter(&self) -> std::slice::Iter<'_, Role> {
        self.0.iter()
    }

    /// Number of (non-empty) roles.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no role was sent.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any role is `parent` or one of its sub-roles.
    pub fn has(&self, parent: &Role) -> bool {
        self.0.iter().any(|r| is_subrole(r, parent))
    }

    /// Any role is an instructor (or instructor sub-role).
    pub fn is_instructor(&self) -> bool {
        self.0.iter().any(Role::is_instructor)
    }
    /// Any role is a learner.
    pub fn is_learner(&self) -> bool {
        self.0.iter().any(Role::is_learner)
    }
    /// Any role is an administrator.
    pub fn is_admin(&self) -> bool {
        self.0.iter().any(Role::is_admin)
    }
    /// Any role is a content developer.
    pub fn is_content_developer(&self) -> bool {
        self.0.iter().any(Role::is_content_developer)
    }
    /// Any role is a mentor.
    pub fn is_mentor(&self) -> bool {
        self.0.iter().any(Role::is_mentor)
    }
    /// Any role is a teaching assistant.
    pub fn is_teaching_assistant(&self) -> bool {
        self.0.iter().any(Role::is_teaching_assistant)
    }
    /// Any role is the LTI TestUser.
    pub fn is_test_user(&self) -> bool {
        self.0.iter().any(Role::is_test_user)
    }

    /// The highest rank among the roles.
    pub fn highest_rank(&self) -> RoleRank {
        self.0
            .iter()
            .map(Role::rank)
            .max()
            .unwrap_or(RoleRank::None)
    }

    /// Instructor, or a role that outranks it (administrator).
    pub fn is_instructor_or_higher(&self) -> bool {
        self.highest_rank() >= RoleRank::Instructor
    }

    /// Permissions under [`DefaultPermissionPolicy`].
    pub fn permissions(&self) -> Permissions {
        self.permissions_with(&DefaultPermissionPolicy)
    }

    /// Permissions under an application policy (union over all roles).
    pub fn permissions_with<P: PermissionPolicy + ?Sized>(&self, policy: &P) -> Permissions {
        self.0
            .iter()
            .fold(Permissions::NONE, |acc, r| acc.union(policy.permissions(r)))
    }
}

impl<'a> IntoIterator for &'a Roles {
    type Item = &'a Role;
    type IntoIter = std::slice::Iter<'a, Role>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<Role> for Roles {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}
