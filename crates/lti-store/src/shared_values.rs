//! [`SharedValueStore`] in process memory and on Redis (the SQL backends'
//! is in `sql/shared.rs`).

#[cfg(feature = "memory")]
use std::collections::HashMap;
#[cfg(feature = "memory")]
use std::sync::{Arc, Mutex, PoisonError};

#[cfg(any(feature = "memory", feature = "redis"))]
use async_trait::async_trait;
#[cfg(any(feature = "memory", feature = "redis"))]
use lti_registry::SharedValueStore;
#[cfg(feature = "memory")]
use lti_registry::{Clock, RegistryError};
use lti_registry::{Result, check_expiry, check_shared_value};

/// Checks the arguments and that an expiry, when given, lies after `now`.
pub(crate) fn check_args(
    namespace: &str,
    key: &str,
    value: Option<&str>,
    expires_at: Option<i64>,
    now: i64,
) -> Result<()> {
    check_shared_value(namespace, key, value)?;
    if let Some(exp) = expires_at {
        check_expiry("expires_at", exp, now)?;
    }
    Ok(())
}

/// Most values a [`MemorySharedValues`] holds; a full map refuses new ones
/// (`unavailable`) after dropping the expired ones.
#[cfg(feature = "memory")]
const CAPACITY: usize = 1 << 17;

/// `(namespace, key)` → `(value, expires_at)`.
#[cfg(feature = "memory")]
type ValueMap = HashMap<(String, String), (String, Option<i64>)>;

/// A [`SharedValueStore`] in process memory (what `memory://` serves): shared
/// by everything in one process, nothing beyond it.
#[cfg(feature = "memory")]
pub struct MemorySharedValues {
    clock: Arc<dyn Clock>,
    values: Mutex<ValueMap>,
}

#[cfg(feature = "memory")]
impl std::fmt::Debug for MemorySharedValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySharedValues").finish_non_exhaustive()
    }
}

#[cfg(feature = "memory")]
impl MemorySharedValues {
    /// An empty map reading time from `clock`.
    #[must_use]
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            values: Mutex::new(HashMap::new()),
        }
    }

    fn live(entry: Option<&(String, Option<i64>)>, now: i64) -> Option<&String> {
        entry
            .filter(|(_, exp)| exp.is_none_or(|e| e > now))
            .map(|(v, _)| v)
    }

    fn write(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
        only_if_absent: bool,
    ) -> Result<Option<String>> {
        let now = self.clock.now();
        check_args(namespace, key, Some(value), expires_at, now)?;
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let k = (namespace.to_owned(), key.to_owned());
        if only_if_absent && let Some(existing) = Self::live(values.get(&k), now) {
            return Ok(Some(existing.clone()));
        }
        if values.len() >= CAPACITY && !values.contains_key(&k) {
            values.retain(|_, (_, exp)| exp.is_none_or(|e| e > now));
            if values.len() >= CAPACITY {
                return Err(RegistryError::unavailable(
                    "memory",
                    "expected room for another shared value, found the map full",
                ));
            }
        }
        values.insert(k, (value.to_owned(), expires_at));
        Ok(None)
    }
}

#[cfg(feature = "memory")]
#[async_trait]
impl SharedValueStore for MemorySharedValues {
    async fn get_value(&self, namespace: &str, key: &str) -> Result<Option<String>> {
        check_shared_value(namespace, key, None)?;
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let k = (namespace.to_owned(), key.to_owned());
        Ok(Self::live(values.get(&k), self.clock.now()).cloned())
    }

    async fn put_value(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> Result<()> {
        self.write(namespace, key, value, expires_at, false)
            .map(drop)
    }

    async fn insert_value(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> Result<Option<String>> {
        self.write(namespace, key, value, expires_at, true)
    }

    async fn delete_value(
        &self,
        namespace: &str,
        key: &str,
        only_if: Option<&str>,
    ) -> Result<bool> {
        check_shared_value(namespace, key, only_if)?;
        let now = self.clock.now();
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let k = (namespace.to_owned(), key.to_owned());
        let Some(current) = Self::live(values.get(&k), now) else {
            values.remove(&k);
            return Ok(false);
        };
        if only_if.is_some_and(|v| v != current) {
            return Ok(false);
        }
        values.remove(&k);
        Ok(true)
    }
}

#[cfg(feature = "memory")]
#[async_trait]
impl SharedValueStore for crate::MemoryStore {
    async fn get_value(&self, namespace: &str, key: &str) -> Result<Option<String>> {
        self.shared_values().get_value(namespace, key).await
    }

    async fn put_value(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> Result<()> {
        self.shared_values()
            .put_value(namespace, key, value, expires_at)
            .await
    }

    async fn insert_value(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> Result<Option<String>> {
        self.shared_values()
            .insert_value(namespace, key, value, expires_at)
            .await
    }

    async fn delete_value(
        &self,
        namespace: &str,
        key: &str,
        only_if: Option<&str>,
    ) -> Result<bool> {
        self.shared_values()
            .delete_value(namespace, key, only_if)
            .await
    }
}

/// `SET` unless present, answering the present value (one round trip,
/// atomic): `KEYS[1]` the key, `ARGV[1]` the value, `ARGV[2]` the
/// time to live in seconds (`0`: none).
#[cfg(feature = "redis")]
const INSERT_SCRIPT: &str = r"local v = redis.call('GET', KEYS[1])
if v then return v end
if ARGV[2] == '0' then redis.call('SET', KEYS[1], ARGV[1]) else redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return false";

/// `DEL` only when the value is `ARGV[1]`.
#[cfg(feature = "redis")]
const DELETE_IF_SCRIPT: &str = r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

#[cfg(feature = "redis")]
impl crate::RedisStore {
    /// The key of a shared value: `PREFIX` `v:` namespace `:` key (a namespace
    /// has no `:`).
    fn value_key(&self, namespace: &str, key: &str) -> String {
        self.key("v", &format!("{namespace}:{key}"))
    }

    /// Seconds to live for `SET … EX` (`0`: no expiry).
    fn ttl_arg(&self, expires_at: Option<i64>) -> u64 {
        expires_at.map_or(0, |e| crate::common::ttl_secs(e, self.now()))
    }
}

#[cfg(feature = "redis")]
fn redis_err(e: redis::RedisError) -> lti_registry::RegistryError {
    lti_registry::RegistryError::unavailable("redis", e)
}

#[cfg(feature = "redis")]
#[async_trait]
impl SharedValueStore for crate::RedisStore {
    async fn get_value(&self, namespace: &str, key: &str) -> Result<Option<String>> {
        check_shared_value(namespace, key, None)?;
        redis::cmd("GET")
            .arg(self.value_key(namespace, key))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)
    }

    async fn put_value(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> Result<()> {
        check_args(namespace, key, Some(value), expires_at, self.now())?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.value_key(namespace, key)).arg(value);
        if expires_at.is_some() {
            cmd.arg("EX").arg(self.ttl_arg(expires_at));
        }
        cmd.query_async::<()>(&mut self.conn())
            .await
            .map_err(redis_err)
    }

    async fn insert_value(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> Result<Option<String>> {
        check_args(namespace, key, Some(value), expires_at, self.now())?;
        redis::cmd("EVAL")
            .arg(INSERT_SCRIPT)
            .arg(1)
            .arg(self.value_key(namespace, key))
            .arg(value)
            .arg(self.ttl_arg(expires_at))
            .query_async(&mut self.conn())
            .await
            .map_err(redis_err)
    }

    async fn delete_value(
        &self,
        namespace: &str,
        key: &str,
        only_if: Option<&str>,
    ) -> Result<bool> {
        check_shared_value(namespace, key, only_if)?;
        let k = self.value_key(namespace, key);
        let cmd = match only_if {
            Some(v) => {
                let mut c = redis::cmd("EVAL");
                c.arg(DELETE_IF_SCRIPT).arg(1).arg(k).arg(v);
                c
            }
            None => {
                let mut c = redis::cmd("DEL");
                c.arg(k);
                c
            }
        };
        let n: i64 = cmd.query_async(&mut self.conn()).await.map_err(redis_err)?;
        Ok(n > 0)
    }
}
