//! The grade outbox worker and the AGS score sender.
//!
//! Grades are recorded in a durable [`GradeOutbox`] (`lti-registry`'s trait,
//! implemented by every `lti-store` backend) and return at once; an
//! [`OutboxWorker`] leases the due ones and hands each to the
//! [`GradeSender`] of its kind: [`AgsSender`] (here) for AGS scores,
//! `lti11::BasicOutcomesSender` for LTI 1.1 `replaceResult` (`lti11` sits
//! beside this crate, so the application passes it in). Transient failures
//! (timeouts, connection errors, 408, 429, 5xx) are retried with exponential
//! backoff, or after the service's `Retry-After`; a definitive refusal
//! marks the grade failed with the service's status and message.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use lti_http::{RetryPolicy, parse_retry_after};
use lti_message::ags::{AgsEndpointClaim, scope};
use lti_registry::{
    Delivery, GradeError, GradeKind, GradeLease, GradeOutbox, GradePayload, GradeRecord,
    GradeSender, GradeTarget, RegistryError,
};
use tokio::sync::Notify;

use crate::client::LtiServices;
use crate::error::ServiceError;
use crate::registration::ServiceRegistration;

/// Looks up the services registration of a grade's AGS target (issuer and
/// client id), to obtain its access token.
#[async_trait]
pub trait ServiceRegistrations: Send + Sync {
    /// The registration of `client_id` at `issuer`. `NotFound` fails the
    /// grade (the registration is gone); other errors retry it later.
    async fn service_registration(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<ServiceRegistration, RegistryError>;
}

/// One registration serves its own issuer and client id.
#[async_trait]
impl ServiceRegistrations for ServiceRegistration {
    async fn service_registration(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<ServiceRegistration, RegistryError> {
        if self.issuer() == issuer && self.client_id() == client_id {
            Ok(self.clone())
        } else {
            Err(RegistryError::not_found(
                "registration",
                format!("{issuer} / {client_id}"),
            ))
        }
    }
}

/// Sends AGS scores for the outbox: one `POST {lineitem}/scores` per
/// attempt (no retries inside the attempt), with the registration's access
/// token, under the [`LtiServices`] egress policy and origin rules.
#[derive(Clone)]
pub struct AgsSender {
    services: LtiServices,
    registrations: Arc<dyn ServiceRegistrations>,
}

impl std::fmt::Debug for AgsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgsSender")
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

impl AgsSender {
    /// A sender over `services`, finding each grade's registration in
    /// `registrations`.
    pub fn new(services: LtiServices, registrations: Arc<dyn ServiceRegistrations>) -> Self {
        Self {
            services,
            registrations,
        }
    }
}

fn rejected(code: &str, message: impl AsRef<str>) -> Delivery {
    Delivery::Rejected {
        error: GradeError::new(code, None, message),
    }
}

/// Classifies a failure that is not a platform answer to the score itself.
pub(crate) fn classify_service_error(e: &ServiceError) -> Delivery {
    let message = e.to_string();
    match e {
        ServiceError::Platform { status, .. } => {
            Delivery::from_status(*status, None, e.code(), &message)
        }
        ServiceError::Http(h) => match h {
            lti_http::Error::Connect { .. }
            | lti_http::Error::Timeout { .. }
            | lti_http::Error::Transport { .. }
            | lti_http::Error::TokenCache { .. } => Delivery::Retry {
                retry_after_secs: None,
                error: GradeError::new(h.code(), None, &message),
            },
            lti_http::Error::Status { status, .. }
            | lti_http::Error::TokenRejected { status, .. } => {
                Delivery::from_status(*status, None, h.code(), &message)
            }
            _ => rejected(h.code(), &message),
        },
        _ => rejected(e.code(), &message),
    }
}

#[async_trait]
impl GradeSender for AgsSender {
    async fn deliver(&self, record: &GradeRecord) -> Delivery {
        let (
            GradeTarget::Ags {
                issuer,
                client_id,
                line_item_url,
                ..
            },
            GradePayload::Ags { score },
        ) = (&record.target, &record.payload)
        else {
            return rejected(
                "wrong_grade_kind",
                "the AGS sender only sends AGS scores to AGS targets",
            );
        };
        let registration = match self
            .registrations
            .service_registration(issuer, client_id)
            .await
        {
            Ok(r) => r,
            Err(e @ RegistryError::NotFound { .. }) => {
                return rejected("unknown_registration", e.to_string());
            }
            Err(e) => {
                return Delivery::Retry {
                    retry_after_secs: None,
                    error: GradeError::new(e.code(), None, e.to_string()),
                };
            }
        };
        let claim = AgsEndpointClaim {
            scope: vec![scope::SCORE.to_owned()],
            lineitem: Some(line_item_url.clone()),
            ..AgsEndpointClaim::default()
        };
        let ags = match self.services.ags(&registration, &claim) {
            Ok(a) => a,
            Err(e) => return classify_service_error(&e),
        };
        match ags.post_score_once(line_item_url, score).await {
            Ok(resp) if resp.status().is_success() => Delivery::Sent,
            Ok(resp) => {
                let retry_after = resp
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
                    .map(|d| d.as_secs());
                let e =
                    crate::wire::platform_error(crate::ags::op::POST_SCORE, line_item_url, &resp);
                Delivery::from_status(
                    resp.status().as_u16(),
                    retry_after,
                    e.code(),
                    &e.to_string(),
                )
            }
            Err(e) => classify_service_error(&e),
        }
    }
}

/// How an [`OutboxWorker`] leases and retries.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Records leased per round (default 32).
    pub batch: usize,
    /// Deliveries run at once (default 8).
    pub concurrency: usize,
    /// Lease length in seconds (default 120): longer than one attempt may
    /// take (the HTTP client's total timeout), so a live worker never loses
    /// its lease mid-attempt; a dead worker's grades wait at most this long.
    pub lease_secs: i64,
    /// Time between rounds when nothing is due (default 1 s); a
    /// [`OutboxWaker`] starts a round at once.
    pub poll_interval: Duration,
    /// First retry delay (default 2 s), doubled per attempt with jitter.
    pub base_delay: Duration,
    /// Longest backoff delay (default 1 hour). A longer `Retry-After` is
    /// honoured up to a day.
    pub max_delay: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch: 32,
            concurrency: 8,
            lease_secs: 120,
            poll_interval: Duration::from_secs(1),
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(3600),
        }
    }
}

impl WorkerConfig {
    /// Sets the time between idle rounds.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets the first retry delay and the longest one.
    pub fn with_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_delay = base;
        self.max_delay = max;
        self
    }

    /// Sets the lease length in seconds.
    pub fn with_lease_secs(mut self, secs: i64) -> Self {
        self.lease_secs = secs;
        self
    }

    /// Sets the batch size and the deliveries run at once.
    pub fn with_batch(mut self, batch: usize, concurrency: usize) -> Self {
        self.batch = batch.clamp(1, 1000);
        self.concurrency = concurrency.max(1);
        self
    }

    /// The delay before the next attempt, in whole seconds (at least 1): the
    /// service's `Retry-After` (up to a day) or the backoff after `attempts`.
    fn delay_secs(&self, attempts: u32, retry_after: Option<u64>) -> i64 {
        let secs = match retry_after {
            Some(s) => s.min(86_400),
            None => {
                let policy = RetryPolicy {
                    base_delay: self.base_delay,
                    max_delay: self.max_delay,
                    ..RetryPolicy::default()
                };
                policy
                    .backoff(attempts.saturating_add(1))
                    .as_secs_f64()
                    .ceil() as u64
            }
        };
        i64::try_from(secs.max(1)).unwrap_or(86_400)
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundStats {
    /// Records leased.
    pub leased: usize,
    /// Delivered.
    pub sent: usize,
    /// Scheduled for a retry.
    pub retried: usize,
    /// Failed definitively.
    pub failed: usize,
    /// Leases lost before or after the attempt (taken over, or the report
    /// did not apply).
    pub lost: usize,
}

/// Wakes a running [`OutboxWorker`] (e.g. right after a submit) so it
/// does not wait for its poll interval. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct OutboxWaker(Arc<Notify>);

impl OutboxWaker {
    /// Starts a round now (or at the end of the current one).
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Delivers the grades of a [`GradeOutbox`]: leases the due ones, sends each
/// with the sender of its kind, and reports the outcome. Run one per
/// instance (or several): the store's leases keep one attempt per grade in
/// flight across all of them.
#[derive(Clone)]
pub struct OutboxWorker {
    outbox: Arc<dyn GradeOutbox>,
    ags: Option<Arc<dyn GradeSender>>,
    basic_outcomes: Option<Arc<dyn GradeSender>>,
    config: WorkerConfig,
    waker: OutboxWaker,
}

impl std::fmt::Debug for OutboxWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxWorker")
            .field("ags", &self.ags.is_some())
            .field("basic_outcomes", &self.basic_outcomes.is_some())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl OutboxWorker {
    /// A worker on `outbox` with no sender yet and the default
    /// [`WorkerConfig`]. A grade of a kind without a sender waits (retried
    /// after `max_delay`, with the error `no_sender`).
    pub fn new(outbox: Arc<dyn GradeOutbox>) -> Self {
        Self {
            outbox,
            ags: None,
            basic_outcomes: None,
            config: WorkerConfig::default(),
            waker: OutboxWaker::default(),
        }
    }

    /// Sends AGS grades with `sender` (usually an [`AgsSender`]).
    pub fn with_ags_sender(mut self, sender: Arc<dyn GradeSender>) -> Self {
        self.ags = Some(sender);
        self
    }

    /// Sends Basic Outcomes grades with `sender` (usually
    /// `lti11::BasicOutcomesSender`).
    pub fn with_basic_outcomes_sender(mut self, sender: Arc<dyn GradeSender>) -> Self {
        self.basic_outcomes = Some(sender);
        self
    }

    /// Replaces the configuration.
    pub fn with_config(mut self, config: WorkerConfig) -> Self {
        self.config = config;
        self
    }

    /// A handle that starts a round at once.
    pub fn waker(&self) -> OutboxWaker {
        self.waker.clone()
    }

    /// Leases one batch of due grades and delivers them; store errors end the
    /// round (the leases expire and the grades are taken again).
    pub async fn run_once(&self) -> Result<RoundStats, RegistryError> {
        let leases = self
            .outbox
            .lease_due(self.config.batch.clamp(1, 1000), self.config.lease_secs)
            .await?;
        let mut stats = RoundStats {
            leased: leases.len(),
            ..RoundStats::default()
        };
        let outcomes: Vec<Result<Outcome, RegistryError>> = futures_util::stream::iter(leases)
            .map(|lease| async move { self.deliver(&lease).await })
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Ok(Outcome::Sent) => stats.sent += 1,
                Ok(Outcome::Retried) => stats.retried += 1,
                Ok(Outcome::Failed) => stats.failed += 1,
                Ok(Outcome::Lost) => stats.lost += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "grade outbox: reporting a delivery failed");
                    stats.lost += 1;
                }
            }
        }
        Ok(stats)
    }

    async fn deliver(&self, lease: &GradeLease) -> Result<Outcome, RegistryError> {
        // The newest version, and only while the lease is still ours: a
        // grade taken over by another instance is never sent from here.
        let Some(record) = self.outbox.current(lease).await? else {
            return Ok(Outcome::Lost);
        };
        let kind = record.target.kind();
        let sender = match kind {
            GradeKind::Ags => self.ags.as_ref(),
            GradeKind::BasicOutcomes => self.basic_outcomes.as_ref(),
        };
        let Some(sender) = sender else {
            let error = GradeError::new(
                "no_sender",
                None,
                format!(
                    "no sender for {} grades is configured in this instance",
                    kind.as_str()
                ),
            );
            let delay = i64::try_from(self.config.max_delay.as_secs()).unwrap_or(3600);
            return self.report_retry(lease, &record, delay, &error).await;
        };
        let delivery = sender.deliver(&record).await;
        match delivery {
            Delivery::Sent => {
                tracing::info!(grade = %record.id, version = record.version, kind = kind.as_str(), "grade delivered");
                Ok(if self.outbox.mark_sent(lease, record.version).await? {
                    Outcome::Sent
                } else {
                    Outcome::Lost
                })
            }
            Delivery::Retry {
                retry_after_secs,
                error,
            } => {
                let delay = self.config.delay_secs(record.attempts, retry_after_secs);
                tracing::warn!(grade = %record.id, version = record.version, code = %error.code, status = ?error.status, delay_secs = delay, "grade delivery failed; retrying");
                self.report_retry(lease, &record, delay, &error).await
            }
            Delivery::Rejected { error } => {
                tracing::warn!(grade = %record.id, version = record.version, code = %error.code, status = ?error.status, message = %error.message, "grade refused");
                Ok(
                    if self
                        .outbox
                        .mark_failed(lease, record.version, &error)
                        .await?
                    {
                        Outcome::Failed
                    } else {
                        Outcome::Lost
                    },
                )
            }
            _ => {
                self.report_retry(
                    lease,
                    &record,
                    1,
                    &GradeError::new(
                        "unknown_delivery",
                        None,
                        "the sender answered with an unknown outcome",
                    ),
                )
                .await
            }
        }
    }

    async fn report_retry(
        &self,
        lease: &GradeLease,
        record: &GradeRecord,
        delay: i64,
        error: &GradeError,
    ) -> Result<Outcome, RegistryError> {
        Ok(
            if self
                .outbox
                .schedule_retry(lease, record.version, delay, error)
                .await?
            {
                Outcome::Retried
            } else {
                Outcome::Lost
            },
        )
    }

    /// Runs rounds until `shutdown` completes; a round in progress finishes
    /// first (its attempts are reported), so nothing is left leased.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        loop {
            let busy = match self.run_once().await {
                Ok(stats) => stats.leased >= self.config.batch,
                Err(e) => {
                    tracing::warn!(error = %e, "grade outbox: leasing failed; retrying");
                    false
                }
            };
            let pause = if busy {
                Duration::ZERO
            } else {
                self.config.poll_interval
            };
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = tokio::time::sleep(pause) => {}
                () = self.waker.0.notified() => {}
            }
        }
    }

    /// Spawns [`run`](Self::run) on the current Tokio runtime.
    pub fn spawn(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(shutdown))
    }
}

enum Outcome {
    Sent,
    Retried,
    Failed,
    Lost,
}

/// Spawns a worker for `outbox` that sends AGS scores through `services`
/// with the registrations `registrations` finds, and Basic Outcomes with
/// `basic_outcomes` when given, until `shutdown` completes.
pub fn spawn(
    outbox: Arc<dyn GradeOutbox>,
    services: LtiServices,
    registrations: Arc<dyn ServiceRegistrations>,
    basic_outcomes: Option<Arc<dyn GradeSender>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> (OutboxWaker, tokio::task::JoinHandle<()>) {
    let mut worker = OutboxWorker::new(outbox)
        .with_ags_sender(Arc::new(AgsSender::new(services, registrations)));
    if let Some(s) = basic_outcomes {
        worker = worker.with_basic_outcomes_sender(s);
    }
    let waker = worker.waker();
    (waker, worker.spawn(shutdown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_retry_after_or_back_off() {
        let c =
            WorkerConfig::default().with_backoff(Duration::from_secs(2), Duration::from_secs(60));
        assert_eq!(c.delay_secs(1, Some(7)), 7);
        assert_eq!(c.delay_secs(1, Some(0)), 1, "at least a second");
        assert_eq!(c.delay_secs(1, Some(10_000_000)), 86_400);
        for _ in 0..20 {
            let d1 = c.delay_secs(1, None);
            assert!((1..=2).contains(&d1), "{d1}");
            let d3 = c.delay_secs(3, None);
            assert!((4..=8).contains(&d3), "{d3}");
            let d20 = c.delay_secs(20, None);
            assert!((30..=60).contains(&d20), "{d20}");
        }
    }

    #[test]
    fn service_errors_are_transient_or_definitive() {
        let platform = |status| ServiceError::Platform {
            operation: "post score",
            status,
            url: "https://lms/x".into(),
            message: Some("m".into()),
        };
        assert!(matches!(
            classify_service_error(&platform(503)),
            Delivery::Retry { .. }
        ));
        assert!(matches!(
            classify_service_error(&platform(400)),
            Delivery::Rejected { .. }
        ));
        let timeout = ServiceError::Http(lti_http::Error::Timeout {
            url: "https://lms/x".into(),
            phase: lti_http::TimeoutPhase::Total,
            limit: Duration::from_secs(30),
            attempts: 1,
        });
        assert!(matches!(
            classify_service_error(&timeout),
            Delivery::Retry { .. }
        ));
        let scope = ServiceError::ScopeNotGranted {
            scope: scope::SCORE,
            operation: "post score",
        };
        match classify_service_error(&scope) {
            Delivery::Rejected { error } => assert_eq!(error.code, "scope_not_granted"),
            other => panic!("{other:?}"),
        }
    }
}
