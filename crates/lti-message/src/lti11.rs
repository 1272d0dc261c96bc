//! A typed view over an LTI 1.0/1.1 `basic-lti-launch-request` form.
//!
//! This module does not verify the OAuth 1.0a signature (that is the `lti11`
//! crate's job); it only reads parameters after verification.

use std::collections::BTreeMap;

use crate::context::ContextType;
use crate::error::{MessageError, excerpt};
use crate::roles::Roles;

/// The basic launch message type.
pub const BASIC_LAUNCH_REQUEST: &str = "basic-lti-launch-request";
/// `lti_version` values accepted: `LTI-1p0` is the specified one; 1.1 and 1.2
/// platforms are seen sending `LTI-1p1` / `LTI-1p2`.
pub const ACCEPTED_VERSIONS: &[&str] = &["LTI-1p0", "LTI-1p1", "LTI-1p2"];

/// The launch form's parameters (first value wins for duplicated names).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lti11LaunchParams {
    params: BTreeMap<String, String>,
}

/// The required parameters of a basic launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lti11Required<'a> {
    /// `lti_message_type` (always `basic-lti-launch-request`).
    pub lti_message_type: &'a str,
    /// `lti_version` (one of [`ACCEPTED_VERSIONS`]).
    pub lti_version: &'a str,
    /// `resource_link_id`.
    pub resource_link_id: &'a str,
}

/// The recommended and optional parameters of a basic launch (all optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)] // Field names are the LTI 1.1 parameter names.
pub struct Lti11Optional<'a> {
    pub resource_link_title: Option<&'a str>,
    pub resource_link_description: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub user_image: Option<&'a str>,
    pub roles: Option<&'a str>,
    pub role_scope_mentor: Option<&'a str>,
    pub lis_person_name_given: Option<&'a str>,
    pub lis_person_name_family: Option<&'a str>,
    pub lis_person_name_full: Option<&'a str>,
    pub lis_person_contact_email_primary: Option<&'a str>,
    pub lis_person_sourcedid: Option<&'a str>,
    pub context_id: Option<&'a str>,
    pub context_type: Option<&'a str>,
    pub context_title: Option<&'a str>,
    pub context_label: Option<&'a str>,
    pub lis_course_offering_sourcedid: Option<&'a str>,
    pub lis_course_section_sourcedid: Option<&'a str>,
    pub lis_outcome_service_url: Option<&'a str>,
    pub lis_result_sourcedid: Option<&'a str>,
    pub launch_presentation_locale: Option<&'a str>,
    pub launch_presentation_document_target: Option<&'a str>,
    pub launch_presentation_css_url: Option<&'a str>,
    pub launch_presentation_width: Option<&'a str>,
    pub launch_presentation_height: Option<&'a str>,
    pub launch_presentation_return_url: Option<&'a str>,
    pub tool_consumer_info_product_family_code: Option<&'a str>,
    pub tool_consumer_info_version: Option<&'a str>,
    pub tool_consumer_instance_guid: Option<&'a str>,
    pub tool_consumer_instance_name: Option<&'a str>,
    pub tool_consumer_instance_description: Option<&'a str>,
    pub tool_consumer_instance_url: Option<&'a str>,
    pub tool_consumer_instance_contact_email: Option<&'a str>,
}

impl Lti11LaunchParams {
    /// Builds the view from decoded form pairs. The first value of a repeated
    /// name is kept.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut params = BTreeMap::new();
        for (k, v) in pairs {
            params.entry(k.into()).or_insert_with(|| v.into());
        }
        Self { params }
    }

    /// A parameter; empty values count as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The required parameters. Reports every missing one at once
    /// ([`MessageError::MissingParameters`]), then checks the message type and version.
    pub fn required_parameters(&self) -> Result<Lti11Required<'_>, MessageError> {
        let names = ["lti_message_type", "lti_version", "resource_link_id"];
        let missing: Vec<&'static str> = names
            .into_iter()
            .filter(|n| self.get(n).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(MessageError::MissingParameters { missing });
        }
        let (Some(lti_message_type), Some(lti_version), Some(resource_link_id)) =
            (self.get(names[0]), self.get(names[1]), self.get(names[2]))
        else {
            return Err(MessageError::MissingParameters {
                missing: names.to_vec(),
            });
        };
        if lti_message_type != BASIC_LAUNCH_REQUEST {
            return Err(MessageError::InvalidParameter {
                name: "lti_message_type",
                expected: "basic-lti-launch-request",
                found: excerpt(lti_message_type),
            });
        }
        if !ACCEPTED_VERSIONS.contains(&lti_version) {
            return Err(MessageError::InvalidParameter {
                name: "lti_version",
                expected: "one of LTI-1p0, LTI-1p1, LTI-1p2",
                found: excerpt(lti_version),
            });
        }
        Ok(Lti11Required {
            lti_message_type,
            lti_version,
            resource_link_id,
        })
    }

    /// The recommended/optional parameters; never fails.
    pub fn optional_parameters(&self) -> Lti11Optional<'_> {
        let g = |n: &str| self.get(n);
        Lti11Optional {
            resource_link_title: g("resource_link_title"),
            resource_link_description: g("resource_link_description"),
            user_id: g("user_id"),
            user_image: g("user_image"),
            roles: g("roles"),
            role_scope_mentor: g("role_scope_mentor"),
            lis_person_name_given: g("lis_person_name_given"),
            lis_person_name_family: g("lis_person_name_family"),
            lis_person_name_full: g("lis_person_name_full"),
            lis_person_contact_email_primary: g("lis_person_contact_email_primary"),
            lis_person_sourcedid: g("lis_person_sourcedid"),
            context_id: g("context_id"),
            context_type: g("context_type"),
            context_title: g("context_title"),
            context_label: g("context_label"),
            lis_course_offering_sourcedid: g("lis_course_offering_sourcedid"),
            lis_course_section_sourcedid: g("lis_course_section_sourcedid"),
            lis_outcome_service_url: g("lis_outcome_service_url"),
            lis_result_sourcedid: g("lis_result_sourcedid"),
            launch_presentation_locale: g("launch_presentation_locale"),
            launch_presentation_document_target: g("launch_presentation_document_target"),
            launch_presentation_css_url: g("launch_presentation_css_url"),
            launch_presentation_width: g("launch_presentation_width"),
            launch_presentation_height: g("launch_presentation_height"),
            launch_presentation_return_url: g("launch_presentation_return_url"),
            tool_consumer_info_product_family_code: g("tool_consumer_info_product_family_code"),
            tool_consumer_info_version: g("tool_consumer_info_version"),
            tool_consumer_instance_guid: g("tool_consumer_instance_guid"),
            tool_consumer_instance_name: g("tool_consumer_instance_name"),
            tool_consumer_instance_description: g("tool_consumer_instance_description"),
            tool_consumer_instance_url: g("tool_consumer_instance_url"),
            tool_consumer_instance_contact_email: g("tool_consumer_instance_contact_email"),
        }
    }

    fn prefixed(&self, prefix: &str) -> BTreeMap<&str, &str> {
        self.params
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(prefix)
                    .filter(|n| !n.is_empty())
                    .map(|n| (n, v.as_str()))
            })
            .collect()
    }

    /// `custom_*` parameters keyed by name without the prefix; never fails.
    pub fn custom_parameters(&self) -> BTreeMap<&str, &str> {
        self.prefixed("custom_")
    }

    /// `ext_*` parameters keyed by name without the prefix; never fails.
    pub fn ext_parameters(&self) -> BTreeMap<&str, &str> {
        self.prefixed("ext_")
    }

    /// The parsed `roles` parameter (empty when absent).
    pub fn roles(&self) -> Roles {
        self.get("roles")
            .map(Roles::from_lti11_param)
            .unwrap_or_default()
    }

    /// The parsed `context_type` parameter (comma-separated).
    pub fn context_types(&self) -> Vec<ContextType> {
        self.get("context_type")
            .map(|t| {
                t.split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(ContextType::parse)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The LTI 1.1 form of a custom parameter name: lowercased, every character
/// outside `[a-z0-9]` replaced by `_`, prefixed with `custom_`.
pub fn custom_parameter_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 7);
    out.push_str("custom_");
    out.extend(name.chars().map(|c| {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        }
    }));
    out
}
