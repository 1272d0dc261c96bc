//! The grade outbox over SQL (SQLite and PostgreSQL; schema migration 3).
//!
//! One row per target. Every operation is one statement, so it is atomic on
//! both databases: `submit` is an `INSERT … ON CONFLICT DO UPDATE` that bumps
//! the version; `lease_due` is an `UPDATE … WHERE id IN (due rows) AND
//! still due … RETURNING`, whose outer condition is checked again on the
//! row it locks (PostgreSQL re-reads a row another transaction changed
//! meanwhile; SQLite runs one writer at a time), so a due row goes to one
//! leaser; the reports are `UPDATE … WHERE lease_token = $token AND status
//! = 'in_flight'`.

use async_trait::async_trait;
use lti_registry::{
    GradeBody, GradeError, GradeLease, GradeOutbox, GradePayload, GradeRecord, GradeStatus,
    GradeStatusCounts, GradeTarget, RegistryError, Result, SubmittedGrade, check_grade,
    check_grade_version, check_id, check_lease_request, new_lease_token,
};

use super::{Cells, Kind, SqlStore, Val, t};
use crate::common::{from_json, to_json};

/// Migration 3: the grade outbox.
pub(super) const MIGRATION: &[&str] = &[
    "CREATE TABLE lti_grade_outbox (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        version BIGINT NOT NULL CHECK (version >= 1),
        sent_version BIGINT NOT NULL DEFAULT 0,
        status TEXT NOT NULL CHECK (status IN ('pending', 'in_flight', 'sent', 'failed')),
        lease_token TEXT,
        lease_until BIGINT,
        attempts BIGINT NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        error_code TEXT,
        error_status BIGINT,
        error_message TEXT,
        submitted_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )",
    "CREATE INDEX lti_grade_outbox_due ON lti_grade_outbox (status, next_attempt_at)",
    "CREATE INDEX lti_grade_outbox_updated ON lti_grade_outbox (updated_at)",
];

#[cfg(test)]
const COLUMNS: &str = "id, body, version, sent_version, status, lease_until, attempts, next_attempt_at, error_code, error_status, error_message, submitted_at, updated_at";

const KINDS: &[Kind] = &[
    Kind::Text,
    Kind::Text,
    Kind::Int,
    Kind::Int,
    Kind::Text,
    Kind::OptInt,
    Kind::Int,
    Kind::Int,
    Kind::OptText,
    Kind::OptInt,
    Kind::OptText,
    Kind::Int,
    Kind::Int,
];

macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT id, body, version, sent_version, status, lease_until, attempts, next_attempt_at, error_code, error_status, error_message, submitted_at, updated_at FROM lti_grade_outbox ",
            $tail
        )
    };
}

const SUBMIT: &str = "INSERT INTO lti_grade_outbox (id, kind, body, version, sent_version, status, attempts, next_attempt_at, submitted_at, updated_at)
     VALUES ($1, $2, $3, 1, 0, 'pending', 0, $4, $4, $4)
     ON CONFLICT (id) DO UPDATE SET body = excluded.body,
        version = lti_grade_outbox.version + 1,
        status = CASE WHEN lti_grade_outbox.status = 'in_flight' THEN 'in_flight' ELSE 'pending' END,
        attempts = 0, next_attempt_at = excluded.next_attempt_at,
        error_code = NULL, error_status = NULL, error_message = NULL,
        submitted_at = excluded.submitted_at, updated_at = excluded.updated_at
     RETURNING version";

const LEASE: &str = "UPDATE lti_grade_outbox SET status = 'in_flight', lease_token = $1, lease_until = $2,
        attempts = attempts + 1, updated_at = $3
     WHERE id IN (SELECT id FROM lti_grade_outbox
                  WHERE (status = 'pending' AND next_attempt_at <= $3)
                     OR (status = 'in_flight' AND lease_until <= $3)
                  ORDER BY next_attempt_at, id LIMIT $4)
       AND ((status = 'pending' AND next_attempt_at <= $3)
            OR (status = 'in_flight' AND lease_until <= $3))
     RETURNING id, body, version, sent_version, status, lease_until, attempts, next_attempt_at, error_code, error_status, error_message, submitted_at, updated_at";

/// The reports: `$1` id, `$2` token, `$3` version, `$4` now, `$5` due at
/// (retry), `$6`–`$8` the error.
const MARK_SENT: &str = "UPDATE lti_grade_outbox SET
        sent_version = CASE WHEN sent_version < $3 THEN $3 ELSE sent_version END,
        status = CASE WHEN version = $3 THEN 'sent' ELSE 'pending' END,
        next_attempt_at = CASE WHEN version = $3 THEN next_attempt_at ELSE $4 END,
        error_code = CASE WHEN version = $3 THEN NULL ELSE error_code END,
        error_status = CASE WHEN version = $3 THEN NULL ELSE error_status END,
        error_message = CASE WHEN version = $3 THEN NULL ELSE error_message END,
        lease_token = NULL, lease_until = NULL, updated_at = $4
     WHERE id = $1 AND lease_token = $2 AND status = 'in_flight'";

const RETRY: &str = "UPDATE lti_grade_outbox SET status = 'pending', next_attempt_at = $5,
        error_code = $6, error_status = $7, error_message = $8,
        lease_token = NULL, lease_until = NULL, updated_at = $4
     WHERE id = $1 AND lease_token = $2 AND status = 'in_flight' AND version >= $3";

const FAILED: &str = "UPDATE lti_grade_outbox SET
        status = CASE WHEN version = $3 THEN 'failed' ELSE 'pending' END,
        next_attempt_at = $4,
        error_code = $6, error_status = $7, error_message = $8,
        lease_token = NULL, lease_until = NULL, updated_at = $5
     WHERE id = $1 AND lease_token = $2 AND status = 'in_flight'";

fn record_from(backend: &'static str, mut c: Cells) -> Result<GradeRecord> {
    let id = c.text(0);
    let body: GradeBody = from_json(backend, "grade", &c.text(1))?;
    let corrupt = |reason: String| RegistryError::Corrupt {
        backend,
        kind: "grade",
        reason,
    };
    let unsigned = |v: i64, what: &str| {
        u64::try_from(v).map_err(|_| corrupt(format!("expected a non-negative {what}, found {v}")))
    };
    let status = match c.text(4).as_str() {
        "pending" => GradeStatus::Pending,
        "in_flight" => GradeStatus::InFlight {
            lease_until: c.opt_int(5).unwrap_or(0),
        },
        "sent" => GradeStatus::Sent,
        "failed" => GradeStatus::Failed,
        other => return Err(corrupt(format!("expected a grade status, found {other:?}"))),
    };
    let last_error = c.opt_text(8).map(|code| GradeError {
        code,
        status: c.opt_int(9).and_then(|s| u16::try_from(s).ok()),
        message: c.opt_text(10).unwrap_or_default(),
    });
    Ok(GradeRecord {
        id,
        target: body.target,
        payload: body.payload,
        version: unsigned(c.int(2), "version")?,
        sent_version: unsigned(c.int(3), "sent version")?,
        status,
        attempts: u32::try_from(c.int(6)).unwrap_or(u32::MAX),
        next_attempt_at: c.int(7),
        last_error,
        submitted_at: c.int(11),
        updated_at: c.int(12),
    })
}

fn error_args(error: &GradeError) -> [Val; 3] {
    [
        t(&error.code),
        Val::OptInt(error.status.map(i64::from)),
        t(&error.message),
    ]
}

impl SqlStore {
    async fn outbox_report(&self, sql: &'static str, args: Vec<Val>) -> Result<bool> {
        Ok(self.driver.execute(sql, args).await? == 1)
    }

    fn report_args(&self, lease: &GradeLease, version: u64) -> Result<Vec<Val>> {
        check_id("grade id", &lease.record.id)?;
        check_id("lease token", &lease.token)?;
        Ok(vec![
            t(&lease.record.id),
            t(&lease.token),
            Val::Int(check_grade_version(version)?),
            Val::Int(self.clock.now()),
        ])
    }
}

#[async_trait]
impl GradeOutbox for SqlStore {
    async fn submit(&self, target: &GradeTarget, payload: &GradePayload) -> Result<SubmittedGrade> {
        check_grade(target, payload)?;
        let backend = self.backend();
        let id = target.grade_id();
        let body = to_json(
            backend,
            "grade",
            &GradeBody {
                target: target.clone(),
                payload: payload.clone(),
            },
        )?;
        let rows = self
            .driver
            .fetch(
                SUBMIT,
                vec![
                    t(&id),
                    t(target.kind().as_str()),
                    Val::Text(body),
                    Val::Int(self.clock.now()),
                ],
                &[Kind::Int],
            )
            .await?;
        let version = rows.first().map(|c| c.int(0)).ok_or_else(|| {
            RegistryError::unavailable(backend, "the grade upsert returned no row")
        })?;
        Ok(SubmittedGrade {
            id,
            version: u64::try_from(version).unwrap_or(0),
        })
    }

    async fn lease_due(&self, max: usize, lease_secs: i64) -> Result<Vec<GradeLease>> {
        check_lease_request(max, lease_secs)?;
        let now = self.clock.now();
        let token = new_lease_token()?;
        let rows = self
            .driver
            .fetch(
                LEASE,
                vec![
                    t(&token),
                    Val::Int(now.saturating_add(lease_secs)),
                    Val::Int(now),
                    Val::Int(i64::try_from(max).unwrap_or(1000)),
                ],
                KINDS,
            )
            .await?;
        let backend = self.backend();
        let mut leases = rows
            .into_iter()
            .map(|c| {
                record_from(backend, c).map(|record| GradeLease {
                    token: token.clone(),
                    record,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        leases.sort_by(|a, b| {
            (a.record.next_attempt_at, &a.record.id).cmp(&(b.record.next_attempt_at, &b.record.id))
        });
        Ok(leases)
    }

    async fn current(&self, lease: &GradeLease) -> Result<Option<GradeRecord>> {
        check_id("grade id", &lease.record.id)?;
        let rows = self
            .driver
            .fetch(
                select!("WHERE id = $1 AND lease_token = $2 AND status = 'in_flight' AND lease_until > $3"),
                vec![
                    t(&lease.record.id),
                    t(&lease.token),
                    Val::Int(self.clock.now()),
                ],
                KINDS,
            )
            .await?;
        let backend = self.backend();
        rows.into_iter()
            .next()
            .map(|c| record_from(backend, c))
            .transpose()
    }

    async fn mark_sent(&self, lease: &GradeLease, version: u64) -> Result<bool> {
        let args = self.report_args(lease, version)?;
        self.outbox_report(MARK_SENT, args).await
    }

    async fn schedule_retry(
        &self,
        lease: &GradeLease,
        version: u64,
        delay_secs: i64,
        error: &GradeError,
    ) -> Result<bool> {
        let mut args = self.report_args(lease, version)?;
        let now = self.clock.now();
        args.push(Val::Int(now.saturating_add(delay_secs.max(0))));
        args.extend(error_args(error));
        self.outbox_report(RETRY, args).await
    }

    async fn mark_failed(
        &self,
        lease: &GradeLease,
        version: u64,
        error: &GradeError,
    ) -> Result<bool> {
        let mut args = self.report_args(lease, version)?;
        let now = self.clock.now();
        args.push(Val::Int(now));
        args.extend(error_args(error));
        self.outbox_report(FAILED, args).await
    }

    async fn get(&self, id: &str) -> Result<Option<GradeRecord>> {
        check_id("grade id", id)?;
        let rows = self
            .driver
            .fetch(select!("WHERE id = $1"), vec![t(id)], KINDS)
            .await?;
        let backend = self.backend();
        rows.into_iter()
            .next()
            .map(|c| record_from(backend, c))
            .transpose()
    }

    async fn list(&self, limit: usize) -> Result<Vec<GradeRecord>> {
        let rows = self
            .driver
            .fetch(
                select!("ORDER BY updated_at DESC, id LIMIT $1"),
                vec![Val::Int(i64::try_from(limit).unwrap_or(i64::MAX))],
                KINDS,
            )
            .await?;
        let backend = self.backend();
        rows.into_iter().map(|c| record_from(backend, c)).collect()
    }

    async fn status_counts(&self) -> Result<GradeStatusCounts> {
        let rows = self
            .driver
            .fetch(
                "SELECT status, COUNT(*) FROM lti_grade_outbox GROUP BY status",
                vec![],
                &[Kind::Text, Kind::Int],
            )
            .await?;
        let mut c = GradeStatusCounts::default();
        for mut row in rows {
            let n = u64::try_from(row.int(1)).unwrap_or(0);
            match row.text(0).as_str() {
                "pending" => c.pending = n,
                "in_flight" => c.in_flight = n,
                "sent" => c.sent = n,
                _ => c.failed += n,
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_column_list_matches_the_decoder() {
        assert_eq!(super::COLUMNS.split(", ").count(), super::KINDS.len());
        assert!(super::LEASE.ends_with(super::COLUMNS));
    }
}
