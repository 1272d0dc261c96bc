//! Assignment and Grade Services 2.0 wire types.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::MessageError;
use crate::time::Timestamp;

/// AGS media types and scopes.
pub mod media_type {
    /// Line item.
    pub const LINE_ITEM: &str = "application/vnd.ims.lis.v2.lineitem+json";
    /// Line item container.
    pub const LINE_ITEM_CONTAINER: &str = "application/vnd.ims.lis.v2.lineitemcontainer+json";
    /// Result container.
    pub const RESULT_CONTAINER: &str = "application/vnd.ims.lis.v2.resultcontainer+json";
    /// Score.
    pub const SCORE: &str = "application/vnd.ims.lis.v1.score+json";
}

/// AGS scopes.
pub mod scope {
    /// Full line item management.
    pub const LINE_ITEM: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem";
    /// Read-only line items.
    pub const LINE_ITEM_READONLY: &str =
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly";
    /// Read results.
    pub const RESULT_READONLY: &str =
        "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly";
    /// Post scores.
    pub const SCORE: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/score";
}

/// The AGS endpoint claim.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct AgsEndpointClaim {
    /// Granted scopes.
    pub scope: Vec<String>,
    /// Line item container URL for the context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineitems: Option<String>,
    /// The single line item bound to this link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineitem: Option<String>,
    /// Unknown members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

crate::claims::claim_object!(AgsEndpointClaim {
    scope: "scope",
    lineitems: "lineitems",
    lineitem: "lineitem",
});

impl AgsEndpointClaim {
    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scope.iter().any(|s| s == scope)
    }
}

/// Submission review settings on a line item.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionReview {
    /// Activity progress values (or `None`) for which review is offered.
    #[serde(default)]
    pub reviewable_status: Vec<String>,
    /// Label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Review launch URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Custom parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Map<String, Value>>,
}

/// A line item (gradebook column).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    /// Platform-assigned URL (absent on create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Maximum score (> 0).
    pub score_maximum: f64,
    /// Label (non-empty).
    pub label: String,
    /// Bound resource link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_link_id: Option<String>,
    /// Tool's own id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// Tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<Timestamp>,
    /// End.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<Timestamp>,
    /// Whether grades are released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grades_released: Option<bool>,
    /// Submission review extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_review: Option<SubmissionReview>,
    /// Unknown (vendor) members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl LineItem {
    /// A new line item with the required fields.
    pub fn new(label: impl Into<String>, score_maximum: f64) -> Self {
        Self {
            label: label.into(),
            score_maximum,
            ..Self::default()
        }
    }

    /// Checks `label` non-empty, `scoreMaximum` > 0 and `endDateTime` not before
    /// `startDateTime`.
    pub fn validate(&self) -> Result<(), MessageError> {
        if self.label.trim().is_empty() {
            return Err(MessageError::InvalidItem {
                what: "lineItem.label",
                reason: "expected a non-empty label, found an empty string".into(),
            });
        }
        check_maximum("lineItem.scoreMaximum", self.score_maximum)?;
        if let (Some(start), Some(end)) = (&self.start_date_time, &self.end_date_time)
            && end < start
        {
            return Err(MessageError::InvalidItem {
                what: "lineItem.endDateTime",
                reason: format!("expected a date-time after startDateTime {start}, found {end}"),
            });
        }
        Ok(())
    }
}

fn check_maximum(what: &'static str, max: f64) -> Result<(), MessageError> {
    if max.is_finite() && max > 0.0 {
        Ok(())
    } else {
        Err(MessageError::InvalidItem {
            what,
            reason: format!("expected a number > 0, found {max}"),
        })
    }
}

/// `activityProgress` of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActivityProgress {
    /// Not started.
    Initialized,
    /// Started.
    Started,
    /// In progress.
    InProgress,
    /// Submitted.
    Submitted,
    /// Completed.
    Completed,
}

/// `gradingProgress` of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GradingProgress {
    /// Final grade.
    FullyGraded,
    /// Grading pending.
    Pending,
    /// Manual grading pending.
    PendingManual,
    /// Grading failed.
    Failed,
    /// Not ready.
    NotReady,
}

/// Submission times of a score.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreSubmission {
    /// When the learner started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When the learner submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<Timestamp>,
}

/// A score posted to `{lineitem}/scores`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// The learner's `sub`.
    pub user_id: String,
    /// When the score was produced.
    pub timestamp: Timestamp,
    /// Activity progress.
    pub activity_progress: ActivityProgress,
    /// Grading progress.
    pub grading_progress: GradingProgress,
    /// Score (requires `scoreMaximum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_given: Option<f64>,
    /// Maximum score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_maximum: Option<f64>,
    /// Plain-text comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Submission times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission: Option<ScoreSubmission>,
    /// Unknown (vendor) members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Score {
    /// A score without a grade.
    pub fn new(
        user_id: impl Into<String>,
        activity_progress: ActivityProgress,
        grading_progress: GradingProgress,
        timestamp: Timestamp,
    ) -> Self {
        Self {
            user_id: user_id.into(),
            timestamp,
            activity_progress,
            grading_progress,
            score_given: None,
            score_maximum: None,
            comment: None,
            submission: None,
            extra: Map::new(),
        }
    }

    /// A final grade: `Completed` + `FullyGraded` with `given` out of `maximum`.
    pub fn completed_fully_graded(
        user_id: impl Into<String>,
        given: f64,
        maximum: f64,
        timestamp: Timestamp,
    ) -> Self {
        Self::new(
            user_id,
            ActivityProgress::Completed,
            GradingProgress::FullyGraded,
            timestamp,
        )
        .with_score(given, maximum)
    }

    /// A submission awaiting manual grading (`Submitted` + `PendingManual`).
    pub fn submitted_pending_manual(user_id: impl Into<String>, timestamp: Timestamp) -> Self {
        Self::new(
            user_id,
            ActivityProgress::Submitted,
            GradingProgress::PendingManual,
            timestamp,
        )
    }

    /// Sets the grade.
    pub fn with_score(mut self, given: f64, maximum: f64) -> Self {
        self.score_given = Some(given);
        self.score_maximum = Some(maximum);
        self
    }

    /// Sets the comment.
    pub fn with_comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// Checks `userId` non-empty, `scoreGiven` ≥ 0 with a `scoreMaximum` > 0.
    pub fn validate(&self) -> Result<(), MessageError> {
        if self.user_id.is_empty() {
            return Err(MessageError::InvalidItem {
                what: "score.userId",
                reason: "expected a user id, found an empty string".into(),
            });
        }
        if let Some(max) = self.score_maximum {
            check_maximum("score.scoreMaximum", max)?;
        }
        if let Some(given) = self.score_given {
            if !(given.is_finite() && given >= 0.0) {
                return Err(MessageError::InvalidItem {
                    what: "score.scoreGiven",
                    reason: format!("expected a number >= 0, found {given}"),
                });
            }
            if self.score_maximum.is_none() {
                return Err(MessageError::InvalidItem {
                    what: "score.scoreMaximum",
                    reason: "expected scoreMaximum with scoreGiven, found none".into(),
                });
            }
        }
        Ok(())
    }
}

/// A result (read from `{lineitem}/results`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgsResult {
    /// Result URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Line item URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_of: Option<String>,
    /// The learner's `sub`.
    pub user_id: String,
    /// Score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_score: Option<f64>,
    /// Maximum (default 1 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_maximum: Option<f64>,
    /// Comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Who scored it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring_user_id: Option<String>,
    /// Unknown (vendor) members, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AgsResult {
    /// The maximum, defaulting to 1 as the spec says.
    pub fn maximum_or_default(&self) -> f64 {
        self.result_maximum.unwrap_or(1.0)
    }
}
