//! The in-process backend: `moka` caches for the short-lived records, maps
//! behind a mutex for the durable ones.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lti_registry::{
    AutoRegistrationPolicy, Clock, Consumer, ConsumerStore, Deployment, KeyStatus, LaunchDataStore,
    LaunchState, LaunchStateStore, NonceStore, OAuth1NonceStore, PlatformRegistration,
    RegistrationStore, RegistryError, Result, SecretCipher, SecretString, ToolKey, ToolKeyStore,
    check_expiry, check_id, validate_new_key,
};
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};

use crate::common::{
    SealedConsumer, SealedKey, conflict, guid_conflict, guid_taken, is_published, lti13_nonce_key,
    oauth1_nonce_key, only_registration_in, open_sorted, registration_id, registration_in,
    tool_key_context, ttl_secs,
};
use crate::memory_provider::MemoryProviderStore;

const BACKEND: &str = "memory";

/// A value with its absolute expiry and the TTL moka should apply.
#[derive(Clone)]
struct Timed<V> {
    value: V,
    expires_at: i64,
    ttl: Duration,
}

struct TimedExpiry;

impl<K, V> moka::Expiry<K, Timed<V>> for TimedExpiry {
    fn expire_after_create(&self, _: &K, v: &Timed<V>, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }

    fn expire_after_update(
        &self,
        _: &K,
        v: &Timed<V>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

fn timed_cache<V: Clone + Send + Sync + 'static>() -> Cache<String, Timed<V>> {
    // No capacity bound: evicting an unexpired nonce or state would break
    // replay protection; memory is bounded by the TTLs instead.
    Cache::builder().expire_after(TimedExpiry).build()
}

#[derive(Default)]
struct Durable {
    registrations: BTreeMap<(String, String), PlatformRegistration>,
    auto_registration: BTreeMap<String, AutoRegistrationPolicy>,
    keys: BTreeMap<String, SealedKey>,
    consumers: BTreeMap<String, SealedConsumer>,
}

/// Every store trait in process memory. TTLs are honoured (entries are
/// evicted by moka and checked against the injected clock on read). Secrets
/// are kept encrypted with the configured cipher, as in the other backends.
/// Nothing survives the process; use it for tests and single-process tools.
pub struct MemoryStore {
    clock: Arc<dyn Clock>,
    cipher: SecretCipher,
    durable: Mutex<Durable>,
    states: Cache<String, Timed<Arc<LaunchState>>>,
    nonces: Cache<String, Timed<()>>,
    launches: Cache<String, Timed<Arc<serde_json::Value>>>,
    provider: MemoryProviderStore,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new(cipher: SecretCipher, clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            cipher,
            durable: Mutex::new(Durable::default()),
            states: timed_cache(),
            nonces: timed_cache(),
            launches: timed_cache(),
            provider: MemoryProviderStore::new(),
        }
    }

    /// The provider data model's tables.
    pub(crate) fn provider(&self) -> &MemoryProviderStore {
        &self.provider
    }

    fn durable(&self) -> Result<MutexGuard<'_, Durable>> {
        self.durable
            .lock()
            .map_err(|_| RegistryError::unavailable(BACKEND, "a previous writer panicked"))
    }

    fn timed<V>(&self, value: V, expires_at: i64) -> Timed<V> {
        let ttl = Duration::from_secs(ttl_secs(expires_at, self.clock.now()));
        Timed {
            value,
            expires_at,
            ttl,
        }
    }

    async fn record_once(&self, key: String, expires_at: i64, namespace: &str) -> Result<()> {
        let now = self.clock.now();
        check_expiry("expires_at", expires_at, now)?;
        let fresh = self.timed((), expires_at);
        // Fast path: an atomic insert-if-absent.
        let entry = self
            .nonces
            .entry(key.clone())
            .or_insert(fresh.clone())
            .await;
        if entry.is_fresh() {
            return Ok(());
        }
        // Present: a replay, unless it expired by the store's clock before
        // moka evicted it; then replace it atomically.
        let result = self
            .nonces
            .entry(key)
            .and_compute_with(|existing| {
                let op = match existing {
                    Some(e) if e.value().expires_at > now => Op::Nop,
                    _ => Op::Put(fresh),
                };
                std::future::ready(op)
            })
            .await;
        match result {
            CompResult::Inserted(_) | CompResult::ReplacedWith(_) => Ok(()),
            _ => Err(RegistryError::NonceReplayed {
                namespace: namespace.to_owned(),
            }),
        }
    }
}

#[async_trait]
impl RegistrationStore for MemoryStore {
    async fn get_registration(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<PlatformRegistration> {
        registration_in(&self.durable()?.registrations, issuer, client_id)
    }

    async fn find_by_issuer(&self, issuer: &str) -> Result<PlatformRegistration> {
        only_registration_in(&self.durable()?.registrations, issuer)
    }

    async fn list_registrations(&self) -> Result<Vec<PlatformRegistration>> {
        Ok(self.durable()?.registrations.values().cloned().collect())
    }

    async fn insert_registration(&self, registration: &PlatformRegistration) -> Result<()> {
        registration.validate()?;
        let mut d = self.durable()?;
        let key = (registration.issuer.clone(), registration.client_id.clone());
        if d.registrations.contains_key(&key) {
            return Err(conflict(
                "registration",
                registration_id(&key.0, &key.1),
                "expected a new (issuer, client_id), found it registered",
            ));
        }
        d.registrations.insert(key, registration.clone());
        Ok(())
    }

    async fn update_registration(&self, registration: &PlatformRegistration) -> Result<()> {
        registration.validate()?;
        let mut d = self.durable()?;
        let key = (registration.issuer.clone(), registration.client_id.clone());
        match d.registrations.get_mut(&key) {
            Some(slot) => {
                *slot = registration.clone();
                Ok(())
            }
            None => Err(RegistryError::not_found(
                "registration",
                registration_id(&key.0, &key.1),
            )),
        }
    }

    async fn delete_registration(&self, issuer: &str, client_id: &str) -> Result<()> {
        self.durable()?
            .registrations
            .remove(&(issuer.to_owned(), client_id.to_owned()))
            .map(|_| ())
            .ok_or_else(|| {
                RegistryError::not_found("registration", registration_id(issuer, client_id))
            })
    }

    async fn upsert_deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment: &Deployment,
    ) -> Result<()> {
        check_id("deployment_id", &deployment.deployment_id)?;
        let mut d = self.durable()?;
        let reg = d
            .registrations
            .get_mut(&(issuer.to_owned(), client_id.to_owned()))
            .ok_or_else(|| {
                RegistryError::not_found("registration", registration_id(issuer, client_id))
            })?;
        match reg
            .deployments
            .iter_mut()
            .find(|x| x.deployment_id == deployment.deployment_id)
        {
            Some(slot) => *slot = deployment.clone(),
            None => reg.deployments.push(deployment.clone()),
        }
        Ok(())
    }

    async fn set_auto_registration(&self, policy: &AutoRegistrationPolicy) -> Result<()> {
        policy.validate()?;
        self.durable()?
            .auto_registration
            .insert(policy.issuer.clone(), policy.clone());
        Ok(())
    }

    async fn get_auto_registration(&self, issuer: &str) -> Result<Option<AutoRegistrationPolicy>> {
        Ok(self.durable()?.auto_registration.get(issuer).cloned())
    }

    async fn remove_auto_registration(&self, issuer: &str) -> Result<()> {
        self.durable()?.auto_registration.remove(issuer);
        Ok(())
    }
}

#[async_trait]
impl LaunchStateStore for MemoryStore {
    async fn save_state(&self, state: &LaunchState) -> Result<()> {
        let now = self.clock.now();
        state.validate(now)?;
        let fresh = self.timed(Arc::new(state.clone()), state.expires_at);
        let result = self
            .states
            .entry(state.state.clone())
            .and_compute_with(|existing| {
                let op = match existing {
                    Some(e) if e.value().expires_at > now => Op::Nop,
                    _ => Op::Put(fresh),
                };
                std::future::ready(op)
            })
            .await;
        match result {
            CompResult::Inserted(_) | CompResult::ReplacedWith(_) => Ok(()),
            _ => Err(conflict(
                "launch state",
                "(state value withheld)",
                "expected a new state value, found an unexpired one",
            )),
        }
    }

    async fn consume_state(&self, state: &str) -> Result<LaunchState> {
        check_id("state", state)?;
        match self.states.remove(state).await {
            Some(t) if t.expires_at > self.clock.now() => Ok((*t.value).clone()),
            _ => Err(RegistryError::StateNotFound),
        }
    }
}

#[async_trait]
impl NonceStore for MemoryStore {
    async fn record_nonce(&self, issuer: &str, nonce: &str, expires_at: i64) -> Result<()> {
        self.record_once(lti13_nonce_key(issuer, nonce)?, expires_at, issuer)
            .await
    }
}

#[async_trait]
impl OAuth1NonceStore for MemoryStore {
    async fn record_oauth1_nonce(
        &self,
        consumer_key: &str,
        nonce: &str,
        expires_at: i64,
    ) -> Result<()> {
        self.record_once(
            oauth1_nonce_key(consumer_key, nonce)?,
            expires_at,
            consumer_key,
        )
        .await
    }
}

#[async_trait]
impl LaunchDataStore for MemoryStore {
    async fn save_launch(
        &self,
        launch_id: &str,
        data: &serde_json::Value,
        expires_at: i64,
    ) -> Result<()> {
        check_id("launch_id", launch_id)?;
        check_expiry("expires_at", expires_at, self.clock.now())?;
        let t = self.timed(Arc::new(data.clone()), expires_at);
        self.launches.insert(launch_id.to_owned(), t).await;
        Ok(())
    }

    async fn load_launch(&self, launch_id: &str) -> Result<serde_json::Value> {
        check_id("launch_id", launch_id)?;
        match self.launches.get(launch_id).await {
            Some(t) if t.expires_at > self.clock.now() => Ok((*t.value).clone()),
            _ => Err(RegistryError::not_found("launch data", launch_id)),
        }
    }

    async fn delete_launch(&self, launch_id: &str) -> Result<bool> {
        check_id("launch_id", launch_id)?;
        Ok(self
            .launches
            .remove(launch_id)
            .await
            .is_some_and(|t| t.expires_at > self.clock.now()))
    }
}

#[async_trait]
impl ToolKeyStore for MemoryStore {
    async fn add_next_key(
        &self,
        kid: &str,
        alg: &str,
        private_key_pem: &SecretString,
    ) -> Result<ToolKey> {
        validate_new_key(kid, alg, private_key_pem)?;
        let sealed = self
            .cipher
            .encrypt(private_key_pem.expose(), &tool_key_context(kid))?;
        let mut d = self.durable()?;
        if d.keys.contains_key(kid) {
            return Err(conflict(
                "tool key",
                kid,
                "expected a new kid, found it stored",
            ));
        }
        if let Some(next) = d.keys.values().find(|k| k.status == KeyStatus::Next) {
            return Err(conflict(
                "tool key",
                kid,
                format!(
                    "expected no waiting next key, found {:?}; promote it first",
                    next.kid
                ),
            ));
        }
        let key = SealedKey {
            kid: kid.to_owned(),
            alg: alg.to_owned(),
            sealed_private_key: sealed,
            status: KeyStatus::Next,
            created_at: self.clock.now(),
            activated_at: None,
            retired_at: None,
        };
        d.keys.insert(kid.to_owned(), key.clone());
        drop(d);
        key.open(&self.cipher)
    }

    async fn promote_next_key(&self) -> Result<ToolKey> {
        let now = self.clock.now();
        let mut d = self.durable()?;
        let next_kid = d
            .keys
            .values()
            .find(|k| k.status == KeyStatus::Next)
            .map(|k| k.kid.clone())
            .ok_or_else(|| RegistryError::not_found("tool key", "(status next)"))?;
        for k in d.keys.values_mut() {
            if k.status == KeyStatus::Active {
                k.status = KeyStatus::Retired;
                k.retired_at = Some(now);
            }
        }
        let promoted = d
            .keys
            .get_mut(&next_kid)
            .ok_or_else(|| RegistryError::not_found("tool key", next_kid.clone()))?;
        promoted.status = KeyStatus::Active;
        promoted.activated_at = Some(now);
        let promoted = promoted.clone();
        drop(d);
        promoted.open(&self.cipher)
    }

    async fn active_key(&self) -> Result<ToolKey> {
        let active = self
            .durable()?
            .keys
            .values()
            .find(|k| k.status == KeyStatus::Active)
            .cloned()
            .ok_or_else(|| RegistryError::not_found("tool key", "(status active)"))?;
        active.open(&self.cipher)
    }

    async fn published_keys(&self, retired_overlap_seconds: i64) -> Result<Vec<ToolKey>> {
        let now = self.clock.now();
        let sealed: Vec<SealedKey> = self
            .durable()?
            .keys
            .values()
            .filter(|k| is_published(k.status, k.retired_at, retired_overlap_seconds, now))
            .cloned()
            .collect();
        open_sorted(&sealed, &self.cipher)
    }

    async fn list_keys(&self) -> Result<Vec<ToolKey>> {
        let sealed: Vec<SealedKey> = self.durable()?.keys.values().cloned().collect();
        open_sorted(&sealed, &self.cipher)
    }

    async fn purge_retired_keys(&self, retired_before: i64) -> Result<u64> {
        let mut d = self.durable()?;
        let before = d.keys.len();
        d.keys.retain(|_, k| {
            !(k.status == KeyStatus::Retired && k.retired_at.is_some_and(|t| t < retired_before))
        });
        Ok(u64::try_from(before - d.keys.len()).unwrap_or(u64::MAX))
    }
}

#[async_trait]
impl ConsumerStore for MemoryStore {
    async fn insert_consumer(&self, consumer: &Consumer) -> Result<()> {
        let sealed = SealedConsumer::seal(consumer, &self.cipher)?;
        let mut d = self.durable()?;
        if d.consumers.contains_key(&consumer.key) {
            return Err(conflict(
                "consumer",
                consumer.key.clone(),
                "expected a new consumer key, found it stored",
            ));
        }
        if let Some(guid) = &consumer.instance_guid
            && d.consumers
                .values()
                .any(|c| c.instance_guid.as_deref() == Some(guid))
        {
            return Err(guid_taken(guid));
        }
        d.consumers.insert(consumer.key.clone(), sealed);
        Ok(())
    }

    async fn update_consumer(&self, consumer: &Consumer) -> Result<()> {
        let sealed = SealedConsumer::seal(consumer, &self.cipher)?;
        let mut d = self.durable()?;
        if !d.consumers.contains_key(&consumer.key) {
            return Err(RegistryError::not_found("consumer", consumer.key.clone()));
        }
        if let Some(guid) = &consumer.instance_guid
            && d.consumers
                .values()
                .any(|c| c.key != consumer.key && c.instance_guid.as_deref() == Some(guid))
        {
            return Err(guid_taken(guid));
        }
        d.consumers.insert(consumer.key.clone(), sealed);
        Ok(())
    }

    async fn get_consumer(&self, key: &str) -> Result<Consumer> {
        let sealed = self
            .durable()?
            .consumers
            .get(key)
            .cloned()
            .ok_or_else(|| RegistryError::not_found("consumer", key))?;
        sealed.open(&self.cipher)
    }

    async fn find_consumer_by_guid(&self, instance_guid: &str) -> Result<Option<Consumer>> {
        let sealed = self
            .durable()?
            .consumers
            .values()
            .find(|c| c.instance_guid.as_deref() == Some(instance_guid))
            .cloned();
        sealed.map(|s| s.open(&self.cipher)).transpose()
    }

    async fn list_consumers(&self) -> Result<Vec<Consumer>> {
        let sealed: Vec<SealedConsumer> = self.durable()?.consumers.values().cloned().collect();
        sealed.iter().map(|s| s.open(&self.cipher)).collect()
    }

    async fn delete_consumer(&self, key: &str) -> Result<()> {
        self.durable()?
            .consumers
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| RegistryError::not_found("consumer", key))
    }

    async fn record_instance_guid(&self, key: &str, instance_guid: &str) -> Result<Consumer> {
        check_id("instance_guid", instance_guid)?;
        let mut d = self.durable()?;
        if d.consumers
            .values()
            .any(|c| c.key != key && c.instance_guid.as_deref() == Some(instance_guid))
        {
            return Err(guid_taken(instance_guid));
        }
        let c = d
            .consumers
            .get_mut(key)
            .ok_or_else(|| RegistryError::not_found("consumer", key))?;
        match &c.instance_guid {
            Some(existing) if existing != instance_guid => {
                return Err(guid_conflict(key, existing));
            }
            Some(_) => {}
            None => c.instance_guid = Some(instance_guid.to_owned()),
        }
        let c = c.clone();
        drop(d);
        c.open(&self.cipher)
    }
}
