//! Per-platform behaviour that the services clients adapt to.

use std::fmt;
use std::str::FromStr;

use crate::error::ServiceError;

/// Which LMS the registration talks to, for the few places where platforms
/// differ in ways a client must honour.
///
/// | Profile | Effect |
/// |---|---|
/// | [`Canvas`](Self::Canvas) | pages capped at 50 (`limit` is clamped, default 50); Canvas score extensions are sent |
/// | [`Schoology`](Self::Schoology) | scores are sent without any vendor extension (it rejects unknown fields) |
/// | all others | vendor extensions other than Canvas' are sent as given; no page cap |
///
/// Every profile strips Canvas' extension keys from scores unless it is
/// [`Canvas`](Self::Canvas).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuirkProfile {
    /// A standards-following platform.
    #[default]
    Generic,
    /// Instructure Canvas.
    Canvas,
    /// Moodle.
    Moodle,
    /// Anthology Blackboard Learn.
    Blackboard,
    /// D2L Brightspace.
    Brightspace,
    /// Sakai.
    Sakai,
    /// PowerSchool Schoology.
    Schoology,
}

/// Canvas' documented maximum page size for NRPS and AGS listings.
pub const CANVAS_MAX_PAGE_SIZE: u32 = 50;

/// Page size requested when neither the caller nor the profile chooses one.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

impl QuirkProfile {
    /// All profiles.
    pub const ALL: [QuirkProfile; 7] = [
        Self::Generic,
        Self::Canvas,
        Self::Moodle,
        Self::Blackboard,
        Self::Brightspace,
        Self::Sakai,
        Self::Schoology,
    ];

    /// The lower-case name (`canvas`, `moodle`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Canvas => "canvas",
            Self::Moodle => "moodle",
            Self::Blackboard => "blackboard",
            Self::Brightspace => "brightspace",
            Self::Sakai => "sakai",
            Self::Schoology => "schoology",
        }
    }

    /// The largest page the platform serves, if it caps pages.
    pub fn max_page_size(self) -> Option<u32> {
        match self {
            Self::Canvas => Some(CANVAS_MAX_PAGE_SIZE),
            _ => None,
        }
    }

    /// The `limit` sent when the caller sets none: 50 for Canvas,
    /// [`DEFAULT_PAGE_SIZE`] otherwise.
    pub fn default_page_size(self) -> u32 {
        self.max_page_size().unwrap_or(DEFAULT_PAGE_SIZE)
    }

    /// The `limit` to send for a caller's `requested` page size: the profile
    /// default when `None`, clamped to the profile's cap, at least 1.
    pub fn page_size(self, requested: Option<u32>) -> u32 {
        let size = requested.unwrap_or_else(|| self.default_page_size());
        let size = match self.max_page_size() {
            Some(cap) => size.min(cap),
            None => size,
        };
        size.max(1)
    }

    /// Whether Canvas' score extensions
    /// (`https://canvas.instructure.com/lti/submission`) may be sent.
    pub fn sends_canvas_extensions(self) -> bool {
        self == Self::Canvas
    }

    /// Whether vendor extension members of a score may be sent at all.
    pub fn sends_score_extensions(self) -> bool {
        self != Self::Schoology
    }
}

impl fmt::Display for QuirkProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QuirkProfile {
    type Err = ServiceError;

    /// Parses a profile name, case-insensitively (`D2L` is Brightspace).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        if lower == "d2l" {
            return Ok(Self::Brightspace);
        }
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == lower)
            .ok_or_else(|| ServiceError::UnknownProfile {
                found: s.chars().take(40).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canvas_clamps_and_defaults_to_fifty() {
        assert_eq!(QuirkProfile::Canvas.page_size(None), 50);
        assert_eq!(QuirkProfile::Canvas.page_size(Some(500)), 50);
        assert_eq!(QuirkProfile::Canvas.page_size(Some(10)), 10);
        assert_eq!(QuirkProfile::Generic.page_size(None), DEFAULT_PAGE_SIZE);
        assert_eq!(QuirkProfile::Moodle.page_size(Some(500)), 500);
        assert_eq!(QuirkProfile::Generic.page_size(Some(0)), 1);
    }

    #[test]
    fn names_round_trip_and_unknown_names_are_rejected() {
        for p in QuirkProfile::ALL {
            assert_eq!(p.as_str().parse::<QuirkProfile>().unwrap(), p);
            assert_eq!(
                p.to_string()
                    .to_uppercase()
                    .parse::<QuirkProfile>()
                    .unwrap(),
                p
            );
        }
        assert_eq!(
            "D2L".parse::<QuirkProfile>().unwrap(),
            QuirkProfile::Brightspace
        );
        let err = "webct".parse::<QuirkProfile>().unwrap_err();
        assert_eq!(err.code(), "unknown_profile");
        assert!(err.to_string().contains("\"webct\""), "{err}");
    }

    #[test]
    fn only_canvas_sends_canvas_extensions_and_schoology_sends_none() {
        for p in QuirkProfile::ALL {
            assert_eq!(p.sends_canvas_extensions(), p == QuirkProfile::Canvas);
            assert_eq!(p.sends_score_extensions(), p != QuirkProfile::Schoology);
        }
    }
}
