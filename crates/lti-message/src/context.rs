//! Context type vocabulary (LIS v2 course types and their LTI 1.1 forms).

use std::fmt;

const V2_PREFIX: &str = "http://purl.imsglobal.org/vocab/lis/v2/course#";
const URN_PREFIX: &str = "urn:lti:context-type:ims/lis/";

/// The type of an LTI context. Platforms send non-vocabulary strings (`Course`),
/// which are kept in [`ContextType::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContextType {
    /// `http://purl.imsglobal.org/vocab/lis/v2/course#CourseTemplate`.
    CourseTemplate,
    /// `http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering`.
    CourseOffering,
    /// `http://purl.imsglobal.org/vocab/lis/v2/course#CourseSection`.
    CourseSection,
    /// `http://purl.imsglobal.org/vocab/lis/v2/course#Group`.
    Group,
    /// Anything else, verbatim.
    Unknown(String),
}

impl ContextType {
    /// Parses the v2 URI, the LTI 1.1 URN or the short name.
    pub fn parse(s: &str) -> Self {
        let t = s.trim();
        let name = t
            .strip_prefix(V2_PREFIX)
            .or_else(|| t.strip_prefix(URN_PREFIX))
            .unwrap_or(t);
        match name {
            "CourseTemplate" => Self::CourseTemplate,
            "CourseOffering" => Self::CourseOffering,
            "CourseSection" => Self::CourseSection,
            "Group" => Self::Group,
            _ => Self::Unknown(s.to_owned()),
        }
    }

    /// The LIS v2 URI (or the verbatim string for unknown types).
    pub fn as_v2_uri(&self) -> std::borrow::Cow<'_, str> {
        match (self, self.short_name()) {
            (Self::Unknown(s), _) => s.as_str().into(),
            (_, name) => format!("{V2_PREFIX}{}", name.unwrap_or_default()).into(),
        }
    }

    /// The LTI 1.1 URN (`None` for unknown types).
    pub fn as_lti11_urn(&self) -> Option<String> {
        self.short_name().map(|n| format!("{URN_PREFIX}{n}"))
    }

    /// The short name (`CourseSection`, ...), `None` for unknown types.
    pub fn short_name(&self) -> Option<&'static str> {
        match self {
            Self::CourseTemplate => Some("CourseTemplate"),
            Self::CourseOffering => Some("CourseOffering"),
            Self::CourseSection => Some("CourseSection"),
            Self::Group => Some("Group"),
            Self::Unknown(_) => None,
        }
    }
}

impl fmt::Display for ContextType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_v2_uri())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_every_type_parses() {
        for (name, expected) in [
            ("CourseTemplate", ContextType::CourseTemplate),
            ("CourseOffering", ContextType::CourseOffering),
            ("CourseSection", ContextType::CourseSection),
            ("Group", ContextType::Group),
        ] {
            assert_eq!(ContextType::parse(name), expected);
            assert_eq!(ContextType::parse(&format!("{V2_PREFIX}{name}")), expected);
            assert_eq!(ContextType::parse(&format!("{URN_PREFIX}{name}")), expected);
            assert_eq!(expected.as_v2_uri(), format!("{V2_PREFIX}{name}"));
            assert_eq!(expected.as_lti11_urn(), Some(format!("{URN_PREFIX}{name}")));
        }
    }

    #[test]
    fn junk_context_types_are_kept_verbatim() {
        assert_eq!(
            ContextType::parse("Course"),
            ContextType::Unknown("Course".into())
        );
        assert_eq!(ContextType::parse("IDK").as_v2_uri(), "IDK");
        assert_eq!(ContextType::parse("IDK").as_lti11_urn(), None);
    }
}
