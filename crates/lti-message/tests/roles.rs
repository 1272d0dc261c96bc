//! Table-driven role parsing and role rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use lti_message::roles::{
    CONTEXT_ROLES, DefaultPermissionPolicy, INSTITUTION_ROLES, PermissionPolicy, RoleForm,
    RoleVocabulary, SYSTEM_ROLES, context_sub_roles,
};
use lti_message::{Permissions, Role, RoleRank, Roles, is_subrole};

use RoleForm::{DeprecatedV2, Lti11Urn, ShortName, Unknown, V2Uri};
use RoleVocabulary::{Institution, LtiSystem, Membership, System};

const LIS: &str = "http://purl.imsglobal.org/vocab/lis/v2/";

/// (input, form, vocabulary, type, sub-type, canonical v2 URI)
type Row = (
    &'static str,
    RoleForm,
    Option<RoleVocabulary>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

const TABLE: &[Row] = &[
    // LIS v2 URIs
    (
        "http://purl.imsglobal.org/vocab/lis/v2/system/person#SysAdmin",
        V2Uri,
        Some(System),
        Some("SysAdmin"),
        None,
        Some("http://purl.imsglobal.org/vocab/lis/v2/system/person#SysAdmin"),
    ),
    (
        "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty",
        V2Uri,
        Some(Institution),
        Some("Faculty"),
        None,
        Some("http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty"),
    ),
    (
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
        V2Uri,
        Some(Membership),
        Some("Instructor"),
        None,
        Some("http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"),
    ),
    (
        "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
        V2Uri,
        Some(Membership),
        Some("Instructor"),
        Some("TeachingAssistant"),
        Some("http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"),
    ),
    (
        "http://purl.imsglobal.org/vocab/lis/v2/membership/Officer#Vice-Chair",
        V2Uri,
        Some(Membership),
        Some("Officer"),
        Some("Vice-Chair"),
        Some("http://purl.imsglobal.org/vocab/lis/v2/membership/Officer#Vice-Chair"),
    ),
    (
        "http://purl.imsglobal.org/vocab/lti/system/person#TestUser",
        V2Uri,
        Some(LtiSystem),
        Some("TestUser"),
        None,
        Some("http://purl.imsglobal.org/vocab/lti/system/person#TestUser"),
    ),
    // Deprecated LTI 2.0 person form
    (
        "http://purl.imsglobal.org/vocab/lis/v2/person#Administrator",
        DeprecatedV2,
        Some(Institution),
        Some("Administrator"),
        None,
        Some("http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"),
    ),
    (
        "http://purl.imsglobal.org/vocab/lis/v2/person#SysSupport",
        DeprecatedV2,
        Some(System),
        Some("SysSupport"),
        None,
        Some("http://purl.imsglobal.org/vocab/lis/v2/system/person#SysSupport"),
    ),
    (
        "http://purl.imsglobal.org/vocab/lis/v2/person#Student",
        DeprecatedV2,
        Some(Institution),
        Some("Student"),
        None,
        Some("http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"),
    ),
    // LTI 1.1 URNs
    (
        "urn:lti:sysrole:ims/lis/AccountAdmin",
        Lti11Urn,
        Some(System),
        Some("AccountAdmin"),
        None,
        Some("http://purl.imsglobal.org/vocab/lis/v2/system/person#AccountAdmin"),
    ),
    (
        "urn:lti:instrole:ims/lis/ProspectiveStudent",
        Lti11Urn,
        Some(Institution),
        Some("ProspectiveStudent"),
        None,
        Some("http://purl.imsglobal.org/vocab/lis/v2/institution/person#ProspectiveStudent"),
    ),
    (
        "urn:lti:role:ims/lis/Learner",
        Lti11Urn,
        Some(Membership),
        Some("Learner"),
        None,
        Some("http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"),
    ),
    (
        "urn:lti:role:ims/lis/Learner/NonCreditLearner",
        Lti11Urn,
        Some(Membership),
        Some("Learner"),
        Some("NonCreditLearner"),
        Some("http://purl.imsglobal.org/vocab/lis/v2/membership/Learner#NonCreditLearner"),
    ),
    (
        "urn:lti:role:ims/lis/Mentor/Tutor",
        Lti11Urn,
        Some(Membership),
        Some("Mentor"),
        Some("Tutor"),
        Some("http://purl.imsglobal.org/vocab/lis/v2/membership/Mentor#Tutor"),
    ),
    (
        "urn:lti:role:ims/lis/TeachingAssistant",
        Lti11Urn,
        Some(Membership),
        Some("Instructor"),
        Some("SecondaryInstructor"),
        Some("http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#SecondaryInstructor"),
    ),
    (
        "urn:lti:role:ims/lis/TeachingAssistant/TeachingAssistantSection",
        Lti11Urn,
        Some(Membership),
        Some("Instructor"),
        Some("TeachingAssistantSection"),
        Some(
            "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistantSection",
        ),
    ),
    (
        "urn:lti:role:ims/lis/TeachingAssistant/Grader",
        Lti11Urn,
        Some(Membership),
        Some("Instructor"),
        Some("Grader"),
        Some("http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#Grader"),
    ),
    // Short names
    (
        "Instructor",
        ShortName,
        Some(Membership),
        Some("Instructor"),
        None,
        Some("http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"),
    ),
    (
        "Learner",
        ShortName,
        Some(Membership),
        Some("Learner"),
        None,
        Some("http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"),
    ),
    (
        "Instructor#TeachingAssistant",
        ShortName,
        Some(Membership),
        Some("Instructor"),
        Some("TeachingAssistant"),
        Some("http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"),
    ),
    (
        "Learner/GuestLearner",
        ShortName,
        Some(Membership),
        Some("Learner"),
        Some("GuestLearner"),
        Some("http://purl.imsglobal.org/vocab/lis/v2/membership/Learner#GuestLearner"),
    ),
    (
        " ContentDeveloper ",
        ShortName,
        Some(Membership),
        Some("ContentDeveloper"),
        None,
        Some("http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper"),
    ),
    // Unknown, kept verbatim
    (
        "http://purl.imsglobal.org/vocab/lis/v2/unknown/unknown#Helper",
        Unknown,
        None,
        None,
        None,
        None,
    ),
    ("Teacher", Unknown, None, None, None, None),
    ("urn:lti:role:ims/lis/", Unknown, None, None, None, None),
    (
        "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor",
        Unknown,
        None,
        None,
        None,
        None,
    ),
    (
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor#Extra",
        Unknown,
        None,
        None,
        None,
        None,
    ),
    ("instructor", Unknown, None, None, None, None),
];

#[test]
fn every_vocabulary_form_parses_as_the_table_says() {
    for &(input, form, vocab, ty, sub, v2) in TABLE {
        let r = Role::parse(input);
        assert_eq!(r.as_str(), input, "kept verbatim");
        assert_eq!(r.form(), form, "{input}");
        assert_eq!(r.vocabulary(), vocab, "{input}");
        assert_eq!(r.role_type(), ty, "{input}");
        assert_eq!(r.sub_type(), sub, "{input}");
        assert_eq!(r.to_v2_uri().as_deref(), v2, "{input}");
        if let Some(uri) = v2 {
            // The canonical URI parses to the same meaning.
            let canonical = Role::parse(uri);
            assert_eq!(
                (
                    canonical.vocabulary(),
                    canonical.role_type(),
                    canonical.sub_type()
                ),
                (vocab, ty, sub)
            );
        }
    }
}

#[test]
fn every_published_role_and_sub_role_is_known_in_every_vocabulary() {
    for t in SYSTEM_ROLES {
        assert!(
            Role::parse(&format!("{LIS}system/person#{t}")).is_known(),
            "{t}"
        );
        assert!(
            Role::parse(&format!("urn:lti:sysrole:ims/lis/{t}")).is_known(),
            "{t}"
        );
    }
    for t in INSTITUTION_ROLES {
        assert!(
            Role::parse(&format!("{LIS}institution/person#{t}")).is_known(),
            "{t}"
        );
        assert!(
            Role::parse(&format!("urn:lti:instrole:ims/lis/{t}")).is_known(),
            "{t}"
        );
    }
    for p in CONTEXT_ROLES {
        let parent = Role::parse(&format!("{LIS}membership#{p}"));
        assert!(parent.is_known(), "{p}");
        assert!(Role::parse(p).is_known(), "short {p}");
        assert!(!context_sub_roles(p).is_empty(), "{p} has sub-roles");
        for s in context_sub_roles(p) {
            let sub = Role::parse(&format!("{LIS}membership/{p}#{s}"));
            assert!(sub.is_known(), "{p}#{s}");
            assert!(is_subrole(&sub, &parent), "{p}#{s} is a sub-role of {p}");
            assert!(
                !is_subrole(&parent, &sub),
                "{p} is not a sub-role of {p}#{s}"
            );
            assert!(is_subrole(&sub, &sub));
        }
    }
    assert!(!Role::parse(&format!("{LIS}membership/Instructor#Janitor")).is_known());
    assert!(!Role::parse(&format!("{LIS}system/person#Janitor")).is_known());
    assert!(Role::parse("http://purl.imsglobal.org/vocab/lti/system/person#TestUser").is_known());
}

#[test]
fn sub_role_rules() {
    let instructor = Role::parse("http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor");
    let ta = Role::parse(
        "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
    );
    let grader = Role::parse("urn:lti:role:ims/lis/TeachingAssistant/Grader");
    let learner_instructor =
        Role::parse("http://purl.imsglobal.org/vocab/lis/v2/membership/Learner#Instructor");
    let inst_instructor =
        Role::parse("http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor");
    let unknown = Role::parse("Teacher");

    assert!(
        is_subrole(&instructor, &instructor),
        "a role without sub-type matches its type"
    );
    assert!(is_subrole(&ta, &instructor));
    assert!(
        is_subrole(&grader, &instructor),
        "1.1 URN sub-roles map into Instructor"
    );
    assert!(
        is_subrole(&Role::parse("Instructor"), &instructor),
        "short names are the same role"
    );
    assert!(!is_subrole(&instructor, &ta));
    assert!(
        !is_subrole(&grader, &ta),
        "siblings are not sub-roles of each other"
    );
    assert!(
        !is_subrole(&learner_instructor, &instructor),
        "Learner#Instructor is a learner"
    );
    assert!(
        !is_subrole(&inst_instructor, &instructor),
        "vocabularies differ"
    );
    assert!(
        !is_subrole(&unknown, &unknown),
        "unknown roles match nothing"
    );
}

#[test]
fn predicates_and_ranks() {
    let cases: &[(&str, &str, RoleRank)] = &[
        (
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
            "instructor",
            RoleRank::Instructor,
        ),
        (
            "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
            "instructor ta",
            RoleRank::Instructor,
        ),
        (
            "urn:lti:role:ims/lis/TeachingAssistant",
            "instructor ta",
            RoleRank::Instructor,
        ),
        (
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
            "learner",
            RoleRank::Learner,
        ),
        (
            "http://purl.imsglobal.org/vocab/lis/v2/membership/Learner#Instructor",
            "learner",
            RoleRank::Learner,
        ),
        (
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Administrator",
            "admin",
            RoleRank::Administrator,
        ),
        (
            "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
            "admin",
            RoleRank::Administrator,
        ),
        (
            "urn:lti:sysrole:ims/lis/SysAdmin",
            "admin",
            RoleRank::Administrator,
        ),
        (
            "http://purl.imsglobal.org/vocab/lis/v2/system/person#AccountAdmin",
            "admin",
            RoleRank::Administrator,
        ),
        (
            "http://purl.imsglobal.org/vocab/lis/v2/membership/ContentDeveloper#Librarian",
            "developer",
            RoleRank::ContentDeveloper,
        ),
        (
            "http://purl.imsglobal.org/vocab/lis/v2/membership/Mentor#Tutor",
            "mentor",
            RoleRank::Mentor,
        ),
        (
            "http://purl.imsglobal.org/vocab/lti/system/person#TestUser",
            "test",
            RoleRank::None,
        ),
        (
            "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty",
            "",
            RoleRank::None,
        ),
        (
            "http://purl.imsglobal.org/vocab/lis/v2/system/person#User",
            "",
            RoleRank::None,
        ),
        ("Teacher", "", RoleRank::None),
    ];
    for &(input, flags, rank) in cases {
        let r = Role::parse(input);
        let has = |f: &str| flags.split(' ').any(|x| x == f);
        assert_eq!(r.is_instructor(), has("instructor"), "{input}");
        assert_eq!(r.is_teaching_assistant(), has("ta"), "{input}");
        assert_eq!(r.is_learner(), has("learner"), "{input}");
        assert_eq!(r.is_admin(), has("admin"), "{input}");
        assert_eq!(r.is_content_developer(), has("developer"), "{input}");
        assert_eq!(r.is_mentor(), has("mentor"), "{input}");
        assert_eq!(r.is_test_user(), has("test"), "{input}");
        assert_eq!(r.rank(), rank, "{input}");
    }
    assert!(RoleRank::Administrator > RoleRank::Instructor);
    assert!(RoleRank::Instructor > RoleRank::ContentDeveloper);
    assert!(RoleRank::Learner > RoleRank::None);
}

#[test]
fn roles_collection_skips_empty_strings_and_answers_rank_questions() {
    let roles = Roles::from_claim(&[
        "",
        "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
        "  ",
    ]);
    assert_eq!(roles.len(), 1);
    assert!(roles.is_learner() && !roles.is_instructor_or_higher());
    assert_eq!(roles.highest_rank(), RoleRank::Learner);

    let admin = Roles::from_claim(&[
        "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
    ]);
    assert!(
        admin.is_instructor_or_higher(),
        "administrators outrank instructors"
    );
    assert!(!admin.is_instructor());

    let legacy = Roles::from_lti11_param(
        "Instructor,urn:lti:instrole:ims/lis/Faculty,,Learner/GuestLearner",
    );
    assert_eq!(legacy.len(), 3);
    assert!(legacy.is_instructor() && legacy.is_learner());
    let instructor = Role::parse("Instructor");
    assert!(legacy.has(&instructor));
    assert!(Roles::default().is_empty());
    assert_eq!(Roles::default().highest_rank(), RoleRank::None);
}

#[test]
fn default_permissions_and_application_overrides() {
    let p = |roles: &[&str]| Roles::from_claim(roles).permissions();
    assert_eq!(
        p(&["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]),
        Permissions::ALL
    );
    assert_eq!(
        p(&["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#Grader"]),
        Permissions::ALL
    );
    assert_eq!(p(&["urn:lti:sysrole:ims/lis/SysAdmin"]), Permissions::ALL);
    assert_eq!(
        p(&["http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper"]),
        Permissions::READ_WRITE
    );
    assert_eq!(
        p(&["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]),
        Permissions::READ
    );
    assert_eq!(
        p(&["http://purl.imsglobal.org/vocab/lis/v2/membership#Member"]),
        Permissions::READ
    );
    assert_eq!(p(&["Teacher"]), Permissions::NONE);
    assert_eq!(p(&[]), Permissions::NONE);
    // Union over roles.
    assert_eq!(
        p(&[
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
            "http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper"
        ]),
        Permissions::READ_WRITE
    );

    // An application policy: TAs may grade but not configure; everyone else as default.
    let policy = |r: &Role| {
        if r.is_teaching_assistant() {
            Permissions::READ_WRITE
        } else {
            DefaultPermissionPolicy.permissions(r)
        }
    };
    let ta = Roles::from_claim(&[
        "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
    ]);
    assert_eq!(ta.permissions(), Permissions::ALL);
    assert_eq!(ta.permissions_with(&policy), Permissions::READ_WRITE);
    let teacher = Roles::from_claim(&["Teacher"]);
    let custom = |r: &Role| {
        if r.as_str() == "Teacher" {
            Permissions::ALL
        } else {
            Permissions::NONE
        }
    };
    assert_eq!(teacher.permissions_with(&custom), Permissions::ALL);
}
