//! The grade outbox in Redis.
//!
//! A hash per record (`{prefix}outbox:g:{id}`), a sorted set of due times
//! (`outbox:due`: a pending record's next attempt, an in-flight record's
//! lease expiry; sent and failed records leave it), a sorted set of change
//! times (`outbox:recent`, for listings) and a hash of per-status counts
//! (`outbox:counts`). Every operation that changes a record is one Lua
//! script (`EVAL`), which Redis runs atomically: a due record goes to exactly
//! one leaser and a report applies only with the current lease token.
//! Durability is the server's (AOF with `appendfsync always` or `everysec`
//! for grades that must survive a Redis restart). All keys are named in the
//! scripts from the prefix, so a Redis Cluster needs the prefix to carry a
//! hash tag (e.g. `{lti}:`).

use std::collections::HashMap;

use async_trait::async_trait;
use lti_registry::{
    GradeBody, GradeError, GradeLease, GradeOutbox, GradePayload, GradeRecord, GradeStatus,
    GradeStatusCounts, GradeTarget, RegistryError, Result, SubmittedGrade, check_grade,
    check_grade_version, check_id, check_lease_request, new_lease_token,
};

use crate::common::{from_json, to_json};
use crate::redis_store::RedisStore;

const BACKEND: &str = "redis";

fn unavailable(e: redis::RedisError) -> RegistryError {
    RegistryError::unavailable(BACKEND, e)
}

/// KEYS: record, due, recent, counts. ARGV: id, body, now.
const SUBMIT: &str = r"
local st = redis.call('HGET', KEYS[1], 'status')
local v = 1
if st then
  v = redis.call('HINCRBY', KEYS[1], 'version', 1)
else
  redis.call('HSET', KEYS[1], 'version', 1, 'sent_version', 0)
end
local new = 'pending'
if st == 'in_flight' then new = 'in_flight' end
if st ~= new then
  if st then redis.call('HINCRBY', KEYS[4], st, -1) end
  redis.call('HINCRBY', KEYS[4], new, 1)
end
redis.call('HSET', KEYS[1], 'body', ARGV[2], 'status', new, 'attempts', 0, 'next_at', ARGV[3],
  'submitted_at', ARGV[3], 'updated_at', ARGV[3])
redis.call('HDEL', KEYS[1], 'ecode', 'estatus', 'emsg')
if new == 'pending' then redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1]) end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return v
";

/// KEYS: due, recent, counts. ARGV: record key prefix, now, lease until,
/// token, max. Returns the leased records (HGETALL each, with `id`).
const LEASE: &str = r"
local now = tonumber(ARGV[2])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[5]))
local out = {}
for _, id in ipairs(ids) do
  local k = ARGV[1] .. id
  local st = redis.call('HGET', k, 'status')
  local due = false
  if st == 'pending' then
    due = tonumber(redis.call('HGET', k, 'next_at')) <= now
  elseif st == 'in_flight' then
    due = tonumber(redis.call('HGET', k, 'lease_until') or '0') <= now
  end
  if due then
    if st ~= 'in_flight' then
      redis.call('HINCRBY', KEYS[3], st, -1)
      redis.call('HINCRBY', KEYS[3], 'in_flight', 1)
    end
    redis.call('HSET', k, 'status', 'in_flight', 'token', ARGV[4], 'lease_until', ARGV[3], 'updated_at', ARGV[2])
    redis.call('HINCRBY', k, 'attempts', 1)
    redis.call('ZADD', KEYS[1], ARGV[3], id)
    redis.call('ZADD', KEYS[2], ARGV[2], id)
    local rec = redis.call('HGETALL', k)
    table.insert(rec, 'id')
    table.insert(rec, id)
    table.insert(out, rec)
  elseif not st then
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
";

/// KEYS: record, due, recent, counts. ARGV: id, token, version, now, kind
/// (`sent`, `retry`, `failed`), due at, error code, error status (or ``),
/// error message. Returns 1 when applied, 0 when the lease was lost.
const REPORT: &str = r"
if redis.call('HGET', KEYS[1], 'status') ~= 'in_flight' or redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then
  return 0
end
local version = tonumber(ARGV[3])
local newest = tonumber(redis.call('HGET', KEYS[1], 'version')) == version
local st = 'pending'
local at = ARGV[4]
if ARGV[5] == 'sent' then
  if version > tonumber(redis.call('HGET', KEYS[1], 'sent_version') or '0') then
    redis.call('HSET', KEYS[1], 'sent_version', ARGV[3])
  end
  if newest then
    st = 'sent'
    redis.call('HDEL', KEYS[1], 'ecode', 'estatus', 'emsg')
  end
else
  if ARGV[5] == 'retry' then
    at = ARGV[6]
  elseif newest then
    st = 'failed'
  end
  redis.call('HSET', KEYS[1], 'ecode', ARGV[7], 'emsg', ARGV[9])
  if ARGV[8] == '' then
    redis.call('HDEL', KEYS[1], 'estatus')
  else
    redis.call('HSET', KEYS[1], 'estatus', ARGV[8])
  end
end
redis.call('HINCRBY', KEYS[4], 'in_flight', -1)
redis.call('HINCRBY', KEYS[4], st, 1)
redis.call('HSET', KEYS[1], 'status', st, 'updated_at', ARGV[4])
redis.call('HDEL', KEYS[1], 'token', 'lease_until')
if st == 'pending' then
  redis.call('HSET', KEYS[1], 'next_at', at)
  redis.call('ZADD', KEYS[2], at, ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 1
";

type Fields = HashMap<String, String>;

fn record_from(id_hint: Option<&str>, mut f: Fields) -> Result<(GradeRecord, Option<String>)> {
    let corrupt = |reason: String| RegistryError::Corrupt {
        backend: BACKEND,
        kind: "grade",
        reason,
    };
    let id = match f.remove("id") {
        Some(id) => id,
        None => id_hint.unwrap_or_default().to_owned(),
    };
    let int = |f: &Fields, name: &str| -> Result<i64> {
        f.get(name)
            .map(|v| v.parse::<i64>())
            .transpose()
            .map_err(|_| corrupt(format!("expected an integer {name}")))
            .map(Option::unwrap_or_default)
    };
    let body: GradeBody = from_json(
        BACKEND,
        "grade",
        f.get("body").map(String::as_str).unwrap_or_default(),
    )?;
    let status = match f.get("status").map(String::as_str) {
        Some("pending") => GradeStatus::Pending,
        Some("in_flight") => GradeStatus::InFlight {
            lease_until: int(&f, "lease_until")?,
        },
        Some("sent") => GradeStatus::Sent,
        Some("failed") => GradeStatus::Failed,
        other => return Err(corrupt(format!("expected a grade status, found {other:?}"))),
    };
    let last_error = f.get("ecode").map(|code| GradeError {
        code: code.clone(),
        status: f.get("estatus").and_then(|s| s.parse().ok()),
        message: f.get("emsg").cloned().unwrap_or_default(),
    });
    let unsigned = |v: i64| u64::try_from(v).map_err(|_| corrupt(format!("negative {v}")));
    let record = GradeRecord {
        id,
        target: body.target,
        payload: body.payload,
        version: unsigned(int(&f, "version")?)?,
        sent_version: unsigned(int(&f, "sent_version")?)?,
        status,
        attempts: u32::try_from(int(&f, "attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: int(&f, "next_at")?,
        last_error,
        submitted_at: int(&f, "submitted_at")?,
        updated_at: int(&f, "updated_at")?,
    };
    Ok((record, f.remove("token")))
}

impl RedisStore {
    fn outbox_key(&self, name: &str) -> String {
        self.key("outbox", name)
    }

    fn grade_key(&self, id: &str) -> String {
        self.key("outbox:g", id)
    }

    async fn load(&self, id: &str) -> Result<Option<(GradeRecord, Option<String>)>> {
        let f: Fields = redis::cmd("HGETALL")
            .arg(self.grade_key(id))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        if f.is_empty() {
            return Ok(None);
        }
        record_from(Some(id), f).map(Some)
    }

    async fn report(
        &self,
        lease: &GradeLease,
        version: u64,
        kind: &str,
        due_at: i64,
        error: Option<&GradeError>,
    ) -> Result<bool> {
        check_id("grade id", &lease.record.id)?;
        check_grade_version(version)?;
        let id = &lease.record.id;
        let now = self.clock().now();
        let applied: i64 = redis::cmd("EVAL")
            .arg(REPORT)
            .arg(4)
            .arg(self.grade_key(id))
            .arg(self.outbox_key("due"))
            .arg(self.outbox_key("recent"))
            .arg(self.outbox_key("counts"))
            .arg(id)
            .arg(&lease.token)
            .arg(version)
            .arg(now)
            .arg(kind)
            .arg(due_at)
            .arg(error.map(|e| e.code.as_str()).unwrap_or_default())
            .arg(
                error
                    .and_then(|e| e.status)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            )
            .arg(error.map(|e| e.message.as_str()).unwrap_or_default())
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(applied == 1)
    }
}

#[async_trait]
impl GradeOutbox for RedisStore {
    async fn submit(&self, target: &GradeTarget, payload: &GradePayload) -> Result<SubmittedGrade> {
        check_grade(target, payload)?;
        let id = target.grade_id();
        let body = to_json(
            BACKEND,
            "grade",
            &GradeBody {
                target: target.clone(),
                payload: payload.clone(),
            },
        )?;
        let version: i64 = redis::cmd("EVAL")
            .arg(SUBMIT)
            .arg(4)
            .arg(self.grade_key(&id))
            .arg(self.outbox_key("due"))
            .arg(self.outbox_key("recent"))
            .arg(self.outbox_key("counts"))
            .arg(&id)
            .arg(body)
            .arg(self.clock().now())
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(SubmittedGrade {
            id,
            version: u64::try_from(version).unwrap_or(0),
        })
    }

    async fn lease_due(&self, max: usize, lease_secs: i64) -> Result<Vec<GradeLease>> {
        check_lease_request(max, lease_secs)?;
        let now = self.clock().now();
        let token = new_lease_token()?;
        let rows: Vec<Fields> = redis::cmd("EVAL")
            .arg(LEASE)
            .arg(3)
            .arg(self.outbox_key("due"))
            .arg(self.outbox_key("recent"))
            .arg(self.outbox_key("counts"))
            .arg(self.grade_key(""))
            .arg(now)
            .arg(now.saturating_add(lease_secs))
            .arg(&token)
            .arg(max)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|f| {
                record_from(None, f).map(|(record, _)| GradeLease {
                    token: token.clone(),
                    record,
                })
            })
            .collect()
    }

    async fn current(&self, lease: &GradeLease) -> Result<Option<GradeRecord>> {
        check_id("grade id", &lease.record.id)?;
        let now = self.clock().now();
        Ok(self
            .load(&lease.record.id)
            .await?
            .and_then(|(record, token)| {
                let held = token.as_deref() == Some(lease.token.as_str())
                    && matches!(record.status, GradeStatus::InFlight { lease_until } if lease_until > now);
                held.then_some(record)
            }))
    }

    async fn mark_sent(&self, lease: &GradeLease, version: u64) -> Result<bool> {
        self.report(lease, version, "sent", 0, None).await
    }

    async fn schedule_retry(
        &self,
        lease: &GradeLease,
        version: u64,
        delay_secs: i64,
        error: &GradeError,
    ) -> Result<bool> {
        let at = self.clock().now().saturating_add(delay_secs.max(0));
        self.report(lease, version, "retry", at, Some(error)).await
    }

    async fn mark_failed(
        &self,
        lease: &GradeLease,
        version: u64,
        error: &GradeError,
    ) -> Result<bool> {
        self.report(lease, version, "failed", 0, Some(error)).await
    }

    async fn get(&self, id: &str) -> Result<Option<GradeRecord>> {
        check_id("grade id", id)?;
        Ok(self.load(id).await?.map(|(r, _)| r))
    }

    async fn list(&self, limit: usize) -> Result<Vec<GradeRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = redis::cmd("ZREVRANGE")
            .arg(self.outbox_key("recent"))
            .arg(0)
            .arg(limit.saturating_sub(1))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((r, _)) = self.load(&id).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    async fn status_counts(&self) -> Result<GradeStatusCounts> {
        let f: HashMap<String, i64> = redis::cmd("HGETALL")
            .arg(self.outbox_key("counts"))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let n = |k: &str| u64::try_from(f.get(k).copied().unwrap_or(0)).unwrap_or(0);
        Ok(GradeStatusCounts {
            pending: n("pending"),
            in_flight: n("in_flight"),
            sent: n("sent"),
            failed: n("failed"),
        })
    }
}
