//! The grade outbox in process memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use lti_registry::{
    Clock, GradeError, GradeLease, GradeOutbox, GradePayload, GradeRecord, GradeStatus,
    GradeStatusCounts, GradeTarget, RegistryError, Result, SubmittedGrade, check_grade,
    check_grade_version, check_id, check_lease_request, new_lease_token,
};

use crate::memory::MemoryStore;

struct Entry {
    record: GradeRecord,
    token: Option<String>,
}

/// The grade outbox ([`GradeOutbox`]) in process memory: nothing survives
/// the process, so use it for tests and single-process tools that accept
/// losing pending grades on exit. Clones share the data.
#[derive(Clone)]
pub struct MemoryOutbox {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryOutbox").finish_non_exhaustive()
    }
}

impl MemoryOutbox {
    /// An empty outbox on `clock`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            entries: Arc::new(Mutex::new(HashMap::new())),
            clock,
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<String, Entry>>> {
        self.entries
            .lock()
            .map_err(|_| RegistryError::unavailable("memory", "a previous writer panicked"))
    }

    /// Applies a report when `lease` is still held; `finish` gets the entry
    /// and whether `version` is the newest.
    fn report(
        &self,
        lease: &GradeLease,
        version: u64,
        finish: impl FnOnce(&mut GradeRecord, bool, i64),
    ) -> Result<bool> {
        check_grade_version(version)?;
        let now = self.clock.now();
        let mut entries = self.lock()?;
        let Some(e) = entries.get_mut(&lease.record.id) else {
            return Ok(false);
        };
        if e.token.as_deref() != Some(lease.token.as_str())
            || !matches!(e.record.status, GradeStatus::InFlight { .. })
        {
            return Ok(false);
        }
        e.token = None;
        let newest = e.record.version == version;
        e.record.updated_at = now;
        finish(&mut e.record, newest, now);
        Ok(true)
    }
}

fn due(r: &GradeRecord, now: i64) -> Option<i64> {
    match r.status {
        GradeStatus::Pending if r.next_attempt_at <= now => Some(r.next_attempt_at),
        GradeStatus::InFlight { lease_until } if lease_until <= now => Some(r.next_attempt_at),
        _ => None,
    }
}

/// Back to pending, due at `at`.
fn pending(r: &mut GradeRecord, at: i64) {
    r.status = GradeStatus::Pending;
    r.next_attempt_at = at;
}

#[async_trait]
impl GradeOutbox for MemoryOutbox {
    async fn submit(&self, target: &GradeTarget, payload: &GradePayload) -> Result<SubmittedGrade> {
        check_grade(target, payload)?;
        let now = self.clock.now();
        let id = target.grade_id();
        let mut entries = self.lock()?;
        let e = entries.entry(id.clone()).or_insert_with(|| Entry {
            record: GradeRecord {
                id: id.clone(),
                target: target.clone(),
                payload: payload.clone(),
                version: 0,
                sent_version: 0,
                status: GradeStatus::Pending,
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
                submitted_at: now,
                updated_at: now,
            },
            token: None,
        });
        let r = &mut e.record;
        r.version += 1;
        r.target = target.clone();
        r.payload = payload.clone();
        r.attempts = 0;
        r.last_error = None;
        r.next_attempt_at = now;
        r.submitted_at = now;
        r.updated_at = now;
        if !matches!(r.status, GradeStatus::InFlight { .. }) {
            r.status = GradeStatus::Pending;
        }
        Ok(SubmittedGrade {
            id,
            version: r.version,
        })
    }

    async fn lease_due(&self, max: usize, lease_secs: i64) -> Result<Vec<GradeLease>> {
        check_lease_request(max, lease_secs)?;
        let now = self.clock.now();
        let mut entries = self.lock()?;
        let mut due_ids: Vec<(i64, String)> = entries
            .values()
            .filter_map(|e| due(&e.record, now).map(|at| (at, e.record.id.clone())))
            .collect();
        due_ids.sort();
        due_ids.truncate(max);
        let mut out = Vec::with_capacity(due_ids.len());
        for (_, id) in due_ids {
            let Some(e) = entries.get_mut(&id) else {
                continue;
            };
            let token = new_lease_token()?;
            e.token = Some(token.clone());
            e.record.status = GradeStatus::InFlight {
                lease_until: now.saturating_add(lease_secs),
            };
            e.record.attempts = e.record.attempts.saturating_add(1);
            e.record.updated_at = now;
            out.push(GradeLease {
                token,
                record: e.record.clone(),
            });
        }
        Ok(out)
    }

    async fn current(&self, lease: &GradeLease) -> Result<Option<GradeRecord>> {
        let now = self.clock.now();
        let entries = self.lock()?;
        Ok(entries.get(&lease.record.id).and_then(|e| {
            let held = e.token.as_deref() == Some(lease.token.as_str())
                && matches!(e.record.status, GradeStatus::InFlight { lease_until } if lease_until > now);
            held.then(|| e.record.clone())
        }))
    }

    async fn mark_sent(&self, lease: &GradeLease, version: u64) -> Result<bool> {
        self.report(lease, version, |r, newest, now| {
            r.sent_version = r.sent_version.max(version);
            if newest {
                r.status = GradeStatus::Sent;
                r.last_error = None;
            } else {
                pending(r, now);
            }
        })
    }

    async fn schedule_retry(
        &self,
        lease: &GradeLease,
        version: u64,
        delay_secs: i64,
        error: &GradeError,
    ) -> Result<bool> {
        self.report(lease, version, |r, _, now| {
            r.last_error = Some(error.clone());
            pending(r, now.saturating_add(delay_secs.max(0)));
        })
    }

    async fn mark_failed(
        &self,
        lease: &GradeLease,
        version: u64,
        error: &GradeError,
    ) -> Result<bool> {
        self.report(lease, version, |r, newest, now| {
            r.last_error = Some(error.clone());
            if newest {
                r.status = GradeStatus::Failed;
            } else {
                pending(r, now);
            }
        })
    }

    async fn get(&self, id: &str) -> Result<Option<GradeRecord>> {
        check_id("grade id", id)?;
        Ok(self.lock()?.get(id).map(|e| e.record.clone()))
    }

    async fn list(&self, limit: usize) -> Result<Vec<GradeRecord>> {
        let entries = self.lock()?;
        let mut all: Vec<GradeRecord> = entries.values().map(|e| e.record.clone()).collect();
        all.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.cmp(&b.id)));
        all.truncate(limit);
        Ok(all)
    }

    async fn status_counts(&self) -> Result<GradeStatusCounts> {
        let mut c = GradeStatusCounts::default();
        for e in self.lock()?.values() {
            match e.record.status {
                GradeStatus::Pending => c.pending += 1,
                GradeStatus::InFlight { .. } => c.in_flight += 1,
                GradeStatus::Sent => c.sent += 1,
                _ => c.failed += 1,
            }
        }
        Ok(c)
    }
}

#[async_trait]
impl GradeOutbox for MemoryStore {
    async fn submit(&self, target: &GradeTarget, payload: &GradePayload) -> Result<SubmittedGrade> {
        self.outbox().submit(target, payload).await
    }
    async fn lease_due(&self, max: usize, lease_secs: i64) -> Result<Vec<GradeLease>> {
        self.outbox().lease_due(max, lease_secs).await
    }
    async fn current(&self, lease: &GradeLease) -> Result<Option<GradeRecord>> {
        self.outbox().current(lease).await
    }
    async fn mark_sent(&self, lease: &GradeLease, version: u64) -> Result<bool> {
        self.outbox().mark_sent(lease, version).await
    }
    async fn schedule_retry(
        &self,
        lease: &GradeLease,
        version: u64,
        delay_secs: i64,
        error: &GradeError,
    ) -> Result<bool> {
        self.outbox()
            .schedule_retry(lease, version, delay_secs, error)
            .await
    }
    async fn mark_failed(
        &self,
        lease: &GradeLease,
        version: u64,
        error: &GradeError,
    ) -> Result<bool> {
        self.outbox().mark_failed(lease, version, error).await
    }
    async fn get(&self, id: &str) -> Result<Option<GradeRecord>> {
        self.outbox().get(id).await
    }
    async fn list(&self, limit: usize) -> Result<Vec<GradeRecord>> {
        self.outbox().list(limit).await
    }
    async fn status_counts(&self) -> Result<GradeStatusCounts> {
        self.outbox().status_counts().await
    }
}
