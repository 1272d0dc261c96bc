//! Platform quirks (spec digest §10) that change how launches are handled, selected
//! by the registration's [`QuirkProfile`].

use lti_registry::QuirkProfile;

/// What a quirk profile changes in the login and launch flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quirks {
    /// Canvas sends `deployment_id` instead of `lti_deployment_id` at login.
    pub(crate) login_deployment_id_alias: bool,
    /// Extra seconds of leeway for `iat`/`nbf`/`exp` (Brightspace "jwt not active"
    /// clock-skew reports).
    pub(crate) extra_leeway_secs: u64,
}

impl Quirks {
    pub(crate) fn of(profile: QuirkProfile) -> Self {
        let none = Self {
            login_deployment_id_alias: false,
            extra_leeway_secs: 0,
        };
        match profile {
            QuirkProfile::Canvas => Self {
                login_deployment_id_alias: true,
                ..none
            },
            QuirkProfile::Brightspace => Self {
                extra_leeway_secs: 120,
                ..none
            },
            // Blackboard logs in with GET (accepted for every platform), Schoology sends
            // `aud` as an array (handled for every platform), Moodle and Sakai need
            // nothing special at launch.
            _ => none,
        }
    }
}
