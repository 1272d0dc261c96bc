//! The durable grade outbox: grades waiting to be delivered to a platform
//! (AGS scores, LTI 1.3) or a consumer (Basic Outcomes `replaceResult`,
//! LTI 1.1), their versions and delivery status.
//!
//! One record per **target** (a learner's result: AGS line item + user, or
//! a 1.1 consumer + `lis_result_sourcedid`). [`GradeOutbox::submit`] stores
//! the newest grade for its target and bumps the target's version; a grade
//! not yet sent is replaced (superseded) by the newer one. A worker
//! ([`GradeOutbox::lease_due`]) takes a lease on due records — at most one
//! delivery attempt per target is in flight across every instance sharing
//! the store, and a lease whose holder died expires so another instance
//! takes the grade over — and reports the attempt with
//! [`mark_sent`](GradeOutbox::mark_sent),
//! [`schedule_retry`](GradeOutbox::schedule_retry) or
//! [`mark_failed`](GradeOutbox::mark_failed). Those only apply while the
//! caller still holds its lease; when a newer version arrived during the
//! attempt, the record goes back to pending so the newer grade is sent after
//! the older one, never before it.
//!
//! The delivery itself is behind [`GradeSender`]: `lti-services` sends AGS
//! scores and runs the worker, `lti11` sends Basic Outcomes.

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lti_message::ags::Score;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::ephemeral::check_id;
use crate::error::{RegistryError, Result};

/// Longest service URL (line item or outcome service) a target may carry, in bytes.
pub const MAX_GRADE_URL_LEN: usize = 2048;
/// Longest error message kept with a record, in characters.
pub const MAX_GRADE_MESSAGE_CHARS: usize = 500;
/// Longest 1.1 result text (`resultData/text`) kept, in bytes.
pub const MAX_RESULT_TEXT_LEN: usize = 16 * 1024;

/// The grade service a target belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GradeKind {
    /// LTI 1.3 Assignment and Grade Services: a score posted to a line item.
    Ags,
    /// LTI 1.1 Basic Outcomes: `replaceResult` for a sourcedid.
    BasicOutcomes,
}

impl GradeKind {
    /// `"ags"` or `"basic_outcomes"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ags => "ags",
            Self::BasicOutcomes => "basic_outcomes",
        }
    }
}

/// Where a grade goes: one learner's result. Its [`grade_id`](Self::grade_id)
/// identifies the record; versions count per target.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GradeTarget {
    /// An AGS line item and a user, under the tool's registration with the
    /// platform (which issues the access token).
    Ags {
        /// The platform issuer of the registration.
        issuer: String,
        /// The tool's client id at that platform.
        client_id: String,
        /// The line item URL (scores go to its `/scores`).
        line_item_url: String,
        /// The learner's `sub`.
        user_id: String,
    },
    /// An LTI 1.1 result: the consumer whose secret signs the request, its
    /// outcome service URL and the result's sourcedid. The record is keyed
    /// by consumer and sourcedid: a newer submit may carry a new service URL.
    BasicOutcomes {
        /// The consumer key.
        consumer_key: String,
        /// `lis_outcome_service_url`.
        service_url: String,
        /// `lis_result_sourcedid`.
        sourced_id: String,
    },
}

impl GradeTarget {
    /// An AGS target.
    pub fn ags(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        line_item_url: impl Into<String>,
        user_id: impl Into<String>,
    ) -> Self {
        Self::Ags {
            issuer: issuer.into(),
            client_id: client_id.into(),
            line_item_url: line_item_url.into(),
            user_id: user_id.into(),
        }
    }

    /// A Basic Outcomes target.
    pub fn basic_outcomes(
        consumer_key: impl Into<String>,
        service_url: impl Into<String>,
        sourced_id: impl Into<String>,
    ) -> Self {
        Self::BasicOutcomes {
            consumer_key: consumer_key.into(),
            service_url: service_url.into(),
            sourced_id: sourced_id.into(),
        }
    }

    /// The service kind.
    #[must_use]
    pub fn kind(&self) -> GradeKind {
        match self {
            Self::Ags { .. } => GradeKind::Ags,
            Self::BasicOutcomes { .. } => GradeKind::BasicOutcomes,
        }
    }

    /// The service URL the grade is sent to (line item or outcome service).
    #[must_use]
    pub fn url(&self) -> &str {
        match self {
            Self::Ags { line_item_url, .. } => line_item_url,
            Self::BasicOutcomes { service_url, .. } => service_url,
        }
    }

    /// The learner, as the service names them: the user id (AGS) or the
    /// sourcedid (Basic Outcomes).
    #[must_use]
    pub fn learner(&self) -> &str {
        match self {
            Self::Ags { user_id, .. } => user_id,
            Self::BasicOutcomes { sourced_id, .. } => sourced_id,
        }
    }

    /// The record id of this target: `g` and the unpadded base64url SHA-256
    /// of its kind and length-prefixed key fields (AGS: issuer, client id,
    /// line item URL, user id; Basic Outcomes: consumer key, sourcedid).
    #[must_use]
    pub fn grade_id(&self) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(self.kind().as_str().as_bytes());
        let parts: Vec<&str> = match self {
            Self::Ags {
                issuer,
                client_id,
                line_item_url,
                user_id,
            } => vec![
                issuer.as_str(),
                client_id.as_str(),
                line_item_url.as_str(),
                user_id.as_str(),
            ],
            Self::BasicOutcomes {
                consumer_key,
                sourced_id,
                ..
            } => vec![consumer_key.as_str(), sourced_id.as_str()],
        };
        for p in parts {
            ctx.update(&(p.len() as u64).to_be_bytes());
            ctx.update(p.as_bytes());
        }
        format!("g{}", URL_SAFE_NO_PAD.encode(ctx.finish().as_ref()))
    }

    /// Checks the fields: identifiers non-empty and at most
    /// [`MAX_ID_LEN`](crate::MAX_ID_LEN) bytes, URLs absolute `http(s)` and at most
    /// [`MAX_GRADE_URL_LEN`] bytes.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Ags {
                issuer,
                client_id,
                line_item_url,
                user_id,
            } => {
                check_id("issuer", issuer)?;
                check_id("client_id", client_id)?;
                check_id("user_id", user_id)?;
                check_url("line item URL", line_item_url)
            }
            Self::BasicOutcomes {
                consumer_key,
                service_url,
                sourced_id,
            } => {
                check_id("consumer key", consumer_key)?;
                check_id("lis_result_sourcedid", sourced_id)?;
                check_url("lis_outcome_service_url", service_url)
            }
        }
    }
}

fn check_url(field: &'static str, url: &str) -> Result<()> {
    let scheme_ok = url
        .split_once("://")
        .is_some_and(|(s, rest)| matches!(s, "http" | "https") && !rest.is_empty());
    if !scheme_ok || url.len() > MAX_GRADE_URL_LEN || url.chars().any(char::is_whitespace) {
        return Err(RegistryError::InvalidInput {
            field,
            expected: "an absolute http(s) URL of at most 2048 bytes",
            found: url.chars().take(80).collect(),
        });
    }
    Ok(())
}

/// The grade itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GradePayload {
    /// An AGS score; its `userId` must be the target's user. Its `timestamp`
    /// orders scores at the platform too (a platform refuses an older one).
    Ags {
        /// The score.
        score: Score,
    },
    /// `replaceResult` with a score in `0.0..=1.0` and optional result text.
    BasicOutcomes {
        /// The normalized score.
        score: f64,
        /// `resultData/text`, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
}

impl GradePayload {
    /// The service kind this payload is for.
    #[must_use]
    pub fn kind(&self) -> GradeKind {
        match self {
            Self::Ags { .. } => GradeKind::Ags,
            Self::BasicOutcomes { .. } => GradeKind::BasicOutcomes,
        }
    }

    /// Checks the payload against its target: same kind, a valid score for
    /// the target's user (AGS), a score in `0.0..=1.0` (Basic Outcomes).
    pub fn validate_for(&self, target: &GradeTarget) -> Result<()> {
        if self.kind() != target.kind() {
            return Err(RegistryError::InvalidInput {
                field: "grade payload",
                expected: "a payload of the target's kind",
                found: format!(
                    "a {} payload for a {} target",
                    self.kind().as_str(),
                    target.kind().as_str()
                ),
            });
        }
        match (self, target) {
            (Self::Ags { score }, GradeTarget::Ags { user_id, .. }) => {
                score.validate().map_err(|e| RegistryError::InvalidInput {
                    field: "score",
                    expected: "a valid AGS score",
                    found: e.to_string(),
                })?;
                if &score.user_id != user_id {
                    return Err(RegistryError::InvalidInput {
                        field: "score userId",
                        expected: "the target's user id",
                        found: score.user_id.chars().take(80).collect(),
                    });
                }
                Ok(())
            }
            (Self::BasicOutcomes { score, text }, _) => {
                if !(score.is_finite() && (0.0..=1.0).contains(score)) {
                    return Err(RegistryError::InvalidInput {
                        field: "score",
                        expected: "a number from 0.0 to 1.0",
                        found: score.to_string(),
                    });
                }
                if text.as_ref().is_some_and(|t| t.len() > MAX_RESULT_TEXT_LEN) {
                    return Err(RegistryError::InvalidInput {
                        field: "result text",
                        expected: "at most 16 KiB",
                        found: "a longer text".to_owned(),
                    });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Why a delivery attempt did not succeed: a stable code, the HTTP status if
/// the service answered, and the service's message (truncated to
/// [`MAX_GRADE_MESSAGE_CHARS`]; never a token or secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradeError {
    /// A stable code, e.g. `platform_error`, `timeout`, `outcome_rejected`.
    pub code: String,
    /// The HTTP status the service answered with, if it answered.
    pub status: Option<u16>,
    /// What the service (or the transport) said.
    pub message: String,
}

impl GradeError {
    /// An error, its message truncated to [`MAX_GRADE_MESSAGE_CHARS`].
    pub fn new(code: impl Into<String>, status: Option<u16>, message: impl AsRef<str>) -> Self {
        Self {
            code: code.into(),
            status,
            message: message
                .as_ref()
                .chars()
                .take(MAX_GRADE_MESSAGE_CHARS)
                .collect(),
        }
    }
}

/// Where a record is in its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GradeStatus {
    /// Waiting for its next attempt (at `next_attempt_at`).
    Pending,
    /// A worker holds a lease until `lease_until` (Unix seconds); after it, the
    /// record is due again.
    InFlight {
        /// Lease expiry.
        lease_until: i64,
    },
    /// The newest version was delivered.
    Sent,
    /// The service refused the newest version definitively (a 4xx other
    /// than 408/429, or a refusal in its body); `last_error` says why.
    Failed,
}

impl GradeStatus {
    /// `pending`, `in_flight`, `sent` or `failed`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InFlight { .. } => "in_flight",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

/// One target's newest grade and its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct GradeRecord {
    /// [`GradeTarget::grade_id`].
    pub id: String,
    /// Where it goes (the newest submit's target).
    pub target: GradeTarget,
    /// The newest grade.
    pub payload: GradePayload,
    /// The newest version: 1 for the first submit, +1 per submit.
    pub version: u64,
    /// The newest version delivered (0: none yet).
    pub sent_version: u64,
    /// The delivery state of `version`.
    pub status: GradeStatus,
    /// Delivery attempts started for `version`.
    pub attempts: u32,
    /// When the next attempt is due (Unix seconds), while pending.
    pub next_attempt_at: i64,
    /// The last failed attempt's error (the reason, once failed).
    pub last_error: Option<GradeError>,
    /// When `version` was submitted (Unix seconds).
    pub submitted_at: i64,
    /// Last change (Unix seconds).
    pub updated_at: i64,
}

/// What [`GradeOutbox::submit`] recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedGrade {
    /// The record id.
    pub id: String,
    /// The version this submit got.
    pub version: u64,
}

/// A worker's lease on a due record: the record as leased and the token that
/// proves the lease in the calls that report the attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct GradeLease {
    /// The lease token (random, 128 bits).
    pub token: String,
    /// The record when it was leased.
    pub record: GradeRecord,
}

/// How many records are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GradeStatusCounts {
    /// Waiting for an attempt.
    pub pending: u64,
    /// Leased by a worker (including expired leases not yet taken over).
    pub in_flight: u64,
    /// Delivered.
    pub sent: u64,
    /// Refused definitively.
    pub failed: u64,
}

/// A fresh lease token: 16 random bytes, base64url.
pub fn new_lease_token() -> Result<String> {
    let mut b = [0u8; 16];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| RegistryError::unavailable("outbox", "the system RNG failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// Checks the arguments of [`GradeOutbox::submit`].
pub fn check_grade(target: &GradeTarget, payload: &GradePayload) -> Result<()> {
    target.validate()?;
    payload.validate_for(target)
}

/// Checks a version for storage (SQL keeps it in a signed 64-bit column).
pub fn check_grade_version(version: u64) -> Result<i64> {
    i64::try_from(version).map_err(|_| RegistryError::InvalidInput {
        field: "grade version",
        expected: "at most 9223372036854775807",
        found: version.to_string(),
    })
}

/// Checks a lease request: `1..=1000` records, a lease of `1..=86400` seconds.
pub fn check_lease_request(max: usize, lease_secs: i64) -> Result<()> {
    if !(1..=1000).contains(&max) {
        return Err(RegistryError::InvalidInput {
            field: "lease batch size",
            expected: "1 to 1000",
            found: max.to_string(),
        });
    }
    if !(1..=86_400).contains(&lease_secs) {
        return Err(RegistryError::InvalidInput {
            field: "lease duration",
            expected: "1 to 86400 seconds",
            found: lease_secs.to_string(),
        });
    }
    Ok(())
}

/// The stored form of a record's target and payload (one JSON body).
#[derive(Debug, Serialize, Deserialize)]
pub struct GradeBody {
    /// The target.
    pub target: GradeTarget,
    /// The payload.
    pub payload: GradePayload,
}

/// Durable storage of the grade outbox, shared by every instance of the
/// application.
///
/// Invariants every implementation keeps, also between concurrent callers in
/// several processes:
/// - one record per [`GradeTarget::grade_id`]; `submit` is one atomic upsert
///   that bumps the version by one, so concurrent submits get distinct,
///   increasing versions and the record holds the last one's payload;
/// - `submit` of a record that is in flight keeps the lease (the holder's
///   report then sends the record back to pending), so at most one attempt
///   per record is ever in flight;
/// - `lease_due` hands a due record (pending and `next_attempt_at <= now`,
///   or in flight with an expired lease) to exactly one caller, with a new
///   token, counting the attempt;
/// - the reports apply only with the current token of an in-flight record
///   (`false` otherwise: the lease was lost and the caller must not report
///   again), and only mark the record sent or failed when `version` is its
///   newest version; otherwise it goes back to pending;
/// - every time is the store's clock, in Unix seconds.
///
/// Identifiers are validated as in the other stores (`InvalidInput`).
#[async_trait]
pub trait GradeOutbox: Send + Sync {
    /// Records `payload` as the target's newest grade, due now; returns the
    /// record id and the new version (1 for a new target).
    async fn submit(&self, target: &GradeTarget, payload: &GradePayload) -> Result<SubmittedGrade>;

    /// Leases up to `max` due records for `lease_secs`, oldest due first.
    async fn lease_due(&self, max: usize, lease_secs: i64) -> Result<Vec<GradeLease>>;

    /// The record as it is now, if `lease` is still held and unexpired (a
    /// worker calls this right before sending, so it sends the newest
    /// version and never one whose lease another instance took over).
    async fn current(&self, lease: &GradeLease) -> Result<Option<GradeRecord>>;

    /// `version` was delivered.
    async fn mark_sent(&self, lease: &GradeLease, version: u64) -> Result<bool>;

    /// The attempt at `version` failed transiently: pending again in
    /// `delay_secs` (at least 0), with `error` kept as the last error.
    async fn schedule_retry(
        &self,
        lease: &GradeLease,
        version: u64,
        delay_secs: i64,
        error: &GradeError,
    ) -> Result<bool>;

    /// The service refused `version` definitively: failed with `error`
    /// (when a newer version arrived meanwhile, that one is due now instead).
    async fn mark_failed(
        &self,
        lease: &GradeLease,
        version: u64,
        error: &GradeError,
    ) -> Result<bool>;

    /// One record.
    async fn get(&self, id: &str) -> Result<Option<GradeRecord>>;

    /// The `limit` most recently changed records, newest first.
    async fn list(&self, limit: usize) -> Result<Vec<GradeRecord>>;

    /// How many records are in each state (for metrics).
    async fn status_counts(&self) -> Result<GradeStatusCounts>;
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// The service accepted the grade.
    Sent,
    /// A transient failure (timeout, connection, 408, 429, 5xx): try again,
    /// not before `retry_after_secs` when the service said so (`Retry-After`).
    Retry {
        /// The service's `Retry-After`, in seconds.
        retry_after_secs: Option<u64>,
        /// What went wrong.
        error: GradeError,
    },
    /// A definitive refusal (another 4xx, a refusal in the response body, an
    /// unusable target): the grade is failed with this reason.
    Rejected {
        /// Why.
        error: GradeError,
    },
}

impl Delivery {
    /// The delivery for a non-2xx HTTP `status`: 408, 425, 429 and 5xx are
    /// transient, any other status definitive.
    #[must_use]
    pub fn from_status(
        status: u16,
        retry_after_secs: Option<u64>,
        code: &str,
        message: &str,
    ) -> Self {
        let error = GradeError::new(code, Some(status), message);
        if matches!(status, 408 | 425 | 429) || status >= 500 {
            Self::Retry {
                retry_after_secs,
                error,
            }
        } else {
            Self::Rejected { error }
        }
    }
}

/// Delivers one grade of one kind. `lti-services` implements it for AGS
/// scores, `lti11` for Basic Outcomes; a test or an application can wrap or
/// replace either.
#[async_trait]
pub trait GradeSender: Send + Sync {
    /// Sends `record.payload` to `record.target` once (no retries: the worker
    /// schedules them) and classifies the outcome.
    async fn deliver(&self, record: &GradeRecord) -> Delivery;
}

#[cfg(test)]
mod tests {
    use super::*;
    use lti_message::Timestamp;

    fn ags(user: &str) -> GradeTarget {
        GradeTarget::ags("https://lms", "c1", "https://lms/li/1", user)
    }

    #[test]
    fn grade_ids_are_stable_per_key_and_ignore_the_outcome_url() {
        assert_eq!(ags("u1").grade_id(), ags("u1").grade_id());
        assert_ne!(ags("u1").grade_id(), ags("u2").grade_id());
        let a = GradeTarget::basic_outcomes("ck", "https://lms/o", "s1");
        let b = GradeTarget::basic_outcomes("ck", "https://lms/o2", "s1");
        assert_eq!(a.grade_id(), b.grade_id());
        // Length prefixes keep field boundaries apart.
        let c = GradeTarget::basic_outcomes("ck", "https://lms/o", "s1x");
        let d = GradeTarget::basic_outcomes("cks", "https://lms/o", "1x");
        assert_ne!(c.grade_id(), d.grade_id());
        assert_eq!(a.grade_id().len(), 44);
    }

    #[test]
    fn payloads_are_checked_against_their_target() {
        let score = Score::completed_fully_graded("u1", 1.0, 2.0, Timestamp::now());
        let p = GradePayload::Ags { score };
        check_grade(&ags("u1"), &p).unwrap();
        let err = check_grade(&ags("u2"), &p).unwrap_err();
        assert!(matches!(
            err,
            RegistryError::InvalidInput {
                field: "score userId",
                ..
            }
        ));
        let bo = GradeTarget::basic_outcomes("ck", "https://lms/o", "s1");
        let err = check_grade(&bo, &p).unwrap_err();
        assert!(matches!(
            err,
            RegistryError::InvalidInput {
                field: "grade payload",
                ..
            }
        ));
        for bad in [1.5, -0.1, f64::NAN] {
            let p = GradePayload::BasicOutcomes {
                score: bad,
                text: None,
            };
            assert!(matches!(
                check_grade(&bo, &p).unwrap_err(),
                RegistryError::InvalidInput { field: "score", .. }
            ));
        }
        let bad_url = GradeTarget::basic_outcomes("ck", "ftp://lms/o", "s1");
        let p = GradePayload::BasicOutcomes {
            score: 0.5,
            text: None,
        };
        assert!(matches!(
            check_grade(&bad_url, &p).unwrap_err(),
            RegistryError::InvalidInput {
                field: "lis_outcome_service_url",
                ..
            }
        ));
    }

    #[test]
    fn statuses_classify_as_transient_or_definitive() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                matches!(
                    Delivery::from_status(s, Some(3), "platform_error", "x"),
                    Delivery::Retry {
                        retry_after_secs: Some(3),
                        ..
                    }
                ),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 409, 422] {
            assert!(
                matches!(
                    Delivery::from_status(s, None, "platform_error", "x"),
                    Delivery::Rejected { .. }
                ),
                "{s}"
            );
        }
        let long = "x".repeat(2000);
        assert_eq!(
            GradeError::new("c", None, &long).message.len(),
            MAX_GRADE_MESSAGE_CHARS
        );
    }

    #[test]
    fn lease_tokens_are_unique() {
        assert_ne!(new_lease_token().unwrap(), new_lease_token().unwrap());
    }
}
