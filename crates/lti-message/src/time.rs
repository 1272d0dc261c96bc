//! RFC 3339 timestamps, formatted and parsed without any date library.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{MessageError, excerpt};

/// An RFC 3339 date-time with a time zone, as used by AGS scores, line items
/// and deep-linking availability windows.
///
/// Values created here ([`Timestamp::from_unix_millis`], [`Timestamp::from_unix_seconds`])
/// are formatted in UTC with millisecond precision, e.g. `2024-03-01T12:00:00.250Z`.
/// Parsed values keep their original text so they serialise unchanged.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Timestamp {
    text: String,
    unix_millis: i64,
}

/// Smallest and largest supported instants: years 0000 through 9999.
const MIN_DAYS: i64 = -719_528; // 0000-03-01 is -719468; 0000-01-01 is -719528
const MAX_DAYS: i64 = 2_932_896; // 9999-12-31

impl Timestamp {
    /// The instant `millis` milliseconds after the Unix epoch, in UTC.
    ///
    /// Fails for instants outside the years 0000..=9999.
    pub fn from_unix_millis(millis: i64) -> Result<Self, MessageError> {
        let days = millis.div_euclid(86_400_000);
        let ms_of_day = millis.rem_euclid(86_400_000);
        if !(MIN_DAYS..=MAX_DAYS).contains(&days) {
            return Err(MessageError::InvalidTimestamp {
                found: millis.to_string(),
            });
        }
        let (y, m, d) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        let text = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60,
            ms_of_day % 1000
        );
        Ok(Self {
            text,
            unix_millis: millis,
        })
    }

    /// The instant `secs` seconds after the Unix epoch, in UTC.
    pub fn from_unix_seconds(secs: i64) -> Result<Self, MessageError> {
        let millis = secs
            .checked_mul(1000)
            .ok_or_else(|| MessageError::InvalidTimestamp {
                found: secs.to_string(),
            })?;
        Self::from_unix_millis(millis)
    }

    /// The current time from the system clock.
    pub fn now() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        // The system clock is always within years 0000..=9999 in practice; fall
        // back to the epoch rather than panic if it is not.
        Self::from_unix_millis(millis).unwrap_or_else(|_| Self {
            text: "1970-01-01T00:00:00.000Z".to_owned(),
            unix_millis: 0,
        })
    }

    /// Parses an RFC 3339 date-time. A time zone (`Z` or `±hh:mm`) is required;
    /// fractional seconds of any length are accepted (truncated to milliseconds).
    pub fn parse(s: &str) -> Result<Self, MessageError> {
        let err = || MessageError::InvalidTimestamp { found: excerpt(s) };
        let b = s.as_bytes();
        if b.len() < 20
            || b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't' | b' ')
            || b[13] != b':'
            || b[16] != b':'
        {
            return Err(err());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, MessageError> {
            let part = &b[r];
            if part.iter().all(u8::is_ascii_digit) {
                Ok(part
                    .iter()
                    .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
            } else {
                Err(err())
            }
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err(err());
        }
        let mut i = 19;
        let mut millis = 0i64;
        if b[i] == b'.' {
            let start = i + 1;
            i = start;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return Err(err());
            }
            let frac = &b[start..i.min(start + 3)];
            millis = frac
                .iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
            for _ in frac.len()..3 {
                millis *= 10;
            }
        }
        let offset_minutes = match b.get(i) {
            Some(b'Z' | b'z') if i + 1 == b.len() => 0,
            Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
                let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
                if oh > 23 || om > 59 {
                    return Err(err());
                }
                let total = oh * 60 + om;
                if *sign == b'-' { -total } else { total }
            }
            _ => return Err(err()),
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_minutes * 60;
        Ok(Self {
            text: s.to_owned(),
            unix_millis: secs * 1000 + millis,
        })
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(&self) -> i64 {
        self.unix_millis
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub fn unix_seconds(&self) -> i64 {
        self.unix_millis.div_euclid(1000)
    }

    /// The RFC 3339 text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    /// Orders by instant; equal instants written differently order by text.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.unix_millis
            .cmp(&other.unix_millis)
            .then_with(|| self.text.cmp(&other.text))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.text)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = MessageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date, counting in 400-year eras
/// that start on March 1st so the leap day falls at the end of each year.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (m + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let d = day_of_year - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = year_of_era + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(
            Timestamp::from_unix_millis(0).unwrap().as_str(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_seconds(1_700_000_000)
                .unwrap()
                .as_str(),
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(951_782_400_123)
                .unwrap()
                .as_str(),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            Timestamp::from_unix_millis(-1).unwrap().as_str(),
            "1969-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn civil_round_trip_over_many_days() {
        for days in (-800_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let a = Timestamp::parse("2023-11-14T23:13:20.5+01:00").unwrap();
        assert_eq!(a.unix_millis(), 1_700_000_000_500);
        let b = Timestamp::parse("2023-11-14T17:13:20-05:00").unwrap();
        assert_eq!(b.unix_seconds(), 1_700_000_000);
        let c = Timestamp::parse("2023-11-14T22:13:20.123456789Z").unwrap();
        assert_eq!(c.unix_millis(), 1_700_000_000_123);
        assert_eq!(c.as_str(), "2023-11-14T22:13:20.123456789Z");
    }

    #[test]
    fn formatted_values_parse_back_to_the_same_instant() {
        for ms in [
            0,
            1,
            86_399_999,
            1_700_000_000_123,
            -5_000_000_000_000,
            253_402_300_799_000,
        ] {
            let t = Timestamp::from_unix_millis(ms).unwrap();
            assert_eq!(Timestamp::parse(t.as_str()).unwrap().unix_millis(), ms);
        }
    }

    #[test]
    fn rejects_timestamps_without_zone_or_with_bad_fields() {
        for bad in [
            "2023-11-14T22:13:20",
            "2023-11-14",
            "2023-13-14T22:13:20Z",
            "2023-02-29T22:13:20Z",
            "2023-11-14T24:13:20Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0100",
            "2023-11-14T22:13:20+01:00x",
            "２０２３-11-14T22:13:20Z",
            "",
        ] {
            assert_eq!(
                Timestamp::parse(bad).unwrap_err().code(),
                "invalid_timestamp",
                "{bad}"
            );
        }
    }

    #[test]
    fn out_of_range_instants_are_refused() {
        assert_eq!(
            Timestamp::from_unix_seconds(i64::MAX).unwrap_err().code(),
            "invalid_timestamp"
        );
        assert_eq!(
            Timestamp::from_unix_millis(300_000_000_000_000)
                .unwrap_err()
                .code(),
            "invalid_timestamp"
        );
    }
}
