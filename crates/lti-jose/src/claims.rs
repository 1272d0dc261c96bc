//! Registered time claims (`exp`, `nbf`, `iat`) and the audience claim.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;

/// A source of the current time in Unix seconds. Inject a fixed clock in tests.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// A clock stuck at one instant (for tests and replays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0
    }
}

/// How `exp`, `nbf` and `iat` are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeValidation {
    /// Allowed clock skew in seconds (default 60).
    pub leeway_secs: u64,
    /// Reject tokens whose `iat` is older than this many seconds (plus leeway). Default none.
    pub max_age_secs: Option<u64>,
    /// Require an `exp` claim (default true).
    pub require_exp: bool,
    /// Require an `iat` claim (default false; implied by `max_age_secs`).
    pub require_iat: bool,
}

impl Default for TimeValidation {
    fn default() -> Self {
        TimeValidation {
            leeway_secs: 60,
            max_age_secs: None,
            require_exp: true,
            require_iat: false,
        }
    }
}

/// Reads a NumericDate claim: a non-negative JSON number (fractions are truncated).
fn numeric_date(claims: &Value, name: &'static str) -> Result<Option<u64>, Error> {
    let Some(value) = claims.get(name) else {
        return Ok(None);
    };
    let invalid = |found: String| Error::InvalidClaim {
        claim: name,
        expected: "a non-negative NumericDate".to_owned(),
        found,
    };
    match value {
        Value::Number(n) => {
            if let Some(secs) = n.as_u64() {
                Ok(Some(secs))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && (0.0..1.0e19).contains(&f) =>
                    {
                        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                        Ok(Some(f as u64))
                    }
                    _ => Err(invalid(n.to_string())),
                }
            }
        }
        Value::Null => Err(invalid("null".to_owned())),
        Value::String(_) => Err(invalid("a string".to_owned())),
        Value::Bool(_) => Err(invalid("a boolean".to_owned())),
        Value::Array(_) => Err(invalid("an array".to_owned())),
        Value::Object(_) => Err(invalid("an object".to_owned())),
    }
}

/// Checks `exp`, `nbf` and `iat` in `claims` (a JSON object) against `clock`.
///
/// # Errors
/// [`Error::TokenExpired`], [`Error::NotYetValid`], [`Error::IssuedInFuture`],
/// [`Error::TokenTooOld`], [`Error::MissingClaim`], [`Error::InvalidClaim`].
pub fn validate_times(
    claims: &Value,
    validation: &TimeValidation,
    clock: &dyn Clock,
) -> Result<(), Error> {
    if !claims.is_object() {
        return Err(Error::InvalidClaim {
            claim: "claims",
            expected: "a JSON object".to_owned(),
            found: "another JSON value".to_owned(),
        });
    }
    let now = clock.now();
    check_exp(numeric_date(claims, "exp")?, validation, now)?;
    check_nbf(numeric_date(claims, "nbf")?, validation, now)?;
    check_iat(numeric_date(claims, "iat")?, validation, now)
}

/// `exp`, `nbf` and `iat` already decoded (e.g. by a typed claims decoder), as
/// seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NumericDates {
    /// Expiry.
    pub exp: Option<u64>,
    /// Not before.
    pub nbf: Option<u64>,
    /// Issued at.
    pub iat: Option<u64>,
}

impl NumericDates {
    /// Checks the dates against `clock` exactly as [`validate_times`] checks the
    /// claims they were read from, in the same order.
    ///
    /// # Errors
    /// [`Error::TokenExpired`], [`Error::NotYetValid`], [`Error::IssuedInFuture`],
    /// [`Error::TokenTooOld`], [`Error::MissingClaim`].
    pub fn check(&self, validation: &TimeValidation, clock: &dyn Clock) -> Result<(), Error> {
        let now = clock.now();
        check_exp(self.exp, validation, now)?;
        check_nbf(self.nbf, validation, now)?;
        check_iat(self.iat, validation, now)
    }
}

fn check_exp(exp: Option<u64>, validation: &TimeValidation, now: u64) -> Result<(), Error> {
    let leeway = validation.leeway_secs;
    match exp {
        Some(exp) if exp.saturating_add(leeway) < now => {
            Err(Error::TokenExpired { exp, now, leeway })
        }
        Some(_) => Ok(()),
        None if validation.require_exp => Err(Error::MissingClaim { claim: "exp" }),
        None => Ok(()),
    }
}

fn check_nbf(nbf: Option<u64>, validation: &TimeValidation, now: u64) -> Result<(), Error> {
    let leeway = validation.leeway_secs;
    match nbf {
        Some(nbf) if nbf > now.saturating_add(leeway) => {
            Err(Error::NotYetValid { nbf, now, leeway })
        }
        _ => Ok(()),
    }
}

fn check_iat(iat: Option<u64>, validation: &TimeValidation, now: u64) -> Result<(), Error> {
    let leeway = validation.leeway_secs;
    match iat {
        Some(iat) => {
            if iat > now.saturating_add(leeway) {
                return Err(Error::IssuedInFuture { iat, now, leeway });
            }
            if let Some(max_age) = validation.max_age_secs
                && now.saturating_sub(iat) > max_age.saturating_add(leeway)
            {
                return Err(Error::TokenTooOld {
                    iat,
                    now,
                    max_age,
                    leeway,
                });
            }
            Ok(())
        }
        None if validation.require_iat || validation.max_age_secs.is_some() => {
            Err(Error::MissingClaim { claim: "iat" })
        }
        None => Ok(()),
    }
}

/// The `aud` claim: one string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    Single(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` is one of the audiences.
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::Single(one) => one == aud,
            Audience::Many(many) => many.iter().any(|a| a == aud),
        }
    }

    /// Number of audiences.
    pub fn len(&self) -> usize {
        match self {
            Audience::Single(_) => 1,
            Audience::Many(many) => many.len(),
        }
    }

    /// Whether there are no audiences (only possible for an empty array).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates over the audiences.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            Audience::Single(one) => std::slice::from_ref(one),
            Audience::Many(many) => many,
        };
        slice.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_900_000_000;

    fn date() -> impl Strategy<Value = Option<u64>> {
        proptest::option::of(NOW - 1000..NOW + 1000)
    }

    proptest! {
        /// `NumericDates::check` is `validate_times` on the same dates: same verdict,
        /// same error, for every combination of present/absent dates and options.
        #[test]
        fn numeric_dates_check_agrees_with_validate_times(
            exp in date(), nbf in date(), iat in date(),
            leeway in 0u64..120, max_age in proptest::option::of(0u64..900),
            require_exp in any::<bool>(), require_iat in any::<bool>(),
        ) {
            let mut claims = serde_json::Map::new();
            for (name, value) in [("exp", exp), ("nbf", nbf), ("iat", iat)] {
                if let Some(v) = value {
                    claims.insert(name.to_owned(), v.into());
                }
            }
            let validation = TimeValidation { leeway_secs: leeway, max_age_secs: max_age, require_exp, require_iat };
            let clock = FixedClock(NOW);
            let from_json = validate_times(&Value::Object(claims), &validation, &clock);
            let typed = NumericDates { exp, nbf, iat }.check(&validation, &clock);
            prop_assert_eq!(format!("{from_json:?}"), format!("{typed:?}"));
        }
    }

    #[test]
    fn numeric_dates_check_names_each_failure() {
        let v = TimeValidation {
            max_age_secs: Some(300),
            ..TimeValidation::default()
        };
        let clock = FixedClock(NOW);
        let check = |exp, nbf, iat| NumericDates { exp, nbf, iat }.check(&v, &clock);
        assert!(matches!(
            check(Some(NOW - 61), None, Some(NOW)),
            Err(Error::TokenExpired { .. })
        ));
        assert!(matches!(
            check(Some(NOW + 60), Some(NOW + 61), Some(NOW)),
            Err(Error::NotYetValid { .. })
        ));
        assert!(matches!(
            check(Some(NOW + 60), None, Some(NOW + 61)),
            Err(Error::IssuedInFuture { .. })
        ));
        assert!(matches!(
            check(Some(NOW + 60), None, Some(NOW - 361)),
            Err(Error::TokenTooOld { .. })
        ));
        assert!(matches!(
            check(None, None, Some(NOW)),
            Err(Error::MissingClaim { claim: "exp" })
        ));
        assert!(matches!(
            check(Some(NOW + 60), None, None),
            Err(Error::MissingClaim { claim: "iat" })
        ));
        assert!(check(Some(NOW + 60), Some(NOW), Some(NOW - 10)).is_ok());
    }
}
