//! The in-process backend: sharded expiring maps for launch states, nonces
//! and launch data, maps behind a mutex for the durable ones.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use lti_registry::{
    AutoRegistrationPolicy, Clock, Consumer, ConsumerStore, Deployment, KeyStatus, LaunchDataStore,
    LaunchState, LaunchStateStore, NonceStore, OAuth1NonceStore, PlatformRegistration,
    RegistrationStore, RegistryError, Result, SecretCipher, SecretString, ToolKey, ToolKeyStore,
    check_expiry, check_id, validate_new_key,
};

use crate::common::{
    Registrations, SealedConsumer, SealedKey, conflict, guid_conflict, guid_taken, is_published,
    open_sorted, registration_id, tool_key_context,
};
use crate::memory_outbox::MemoryOutbox;
use crate::memory_provider::MemoryProviderStore;
use ttl_map::{Inserted, TtlMap};

const BACKEND: &str = "memory";

/// Most unexpired launch states held at once; a full store refuses new
/// states (`unavailable`) instead of evicting live ones.
const STATE_CAPACITY: usize = 1 << 20;
/// Most unexpired nonces (LTI 1.3 and OAuth 1.0a together) held at once; a
/// flood of unique nonces is refused once this many are live.
const NONCE_CAPACITY: usize = 1 << 21;
/// Most unexpired saved launches held at once (each a few KB); a full store
/// refuses new ones (`unavailable`) rather than dropping a live session.
const LAUNCH_CAPACITY: usize = 1 << 18;

/// A nonce record's key: SHA-256 over the namespace kind, the
/// length-prefixed issuer / consumer key and the nonce. Fixed-size, so a
/// long nonce costs no more memory, and the nonce is never held in clear.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct NonceKey([u8; 32]);

impl NonceKey {
    fn new(kind: u8, namespace: &str, nonce: &str) -> Self {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&[kind]);
        ctx.update(&(namespace.len() as u64).to_be_bytes());
        ctx.update(namespace.as_bytes());
        ctx.update(nonce.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        Self(out)
    }
}

/// `NonceKey` kind of an LTI 1.3 id-token nonce.
const KIND_LTI13: u8 = 13;
/// `NonceKey` kind of an OAuth 1.0a nonce.
const KIND_OAUTH1: u8 = 11;

#[derive(Default)]
struct Durable {
    registrations: Registrations,
    auto_registration: BTreeMap<String, AutoRegistrationPolicy>,
    keys: BTreeMap<String, SealedKey>,
    consumers: BTreeMap<String, SealedConsumer>,
}

/// Every store trait in process memory. TTLs are honoured (entries are
/// checked against the injected clock on read and expired ones purged). Secrets
/// are kept encrypted with the configured cipher, as in the other backends.
/// Nothing survives the process; use it for tests and single-process tools.
pub struct MemoryStore {
    clock: Arc<dyn Clock>,
    cipher: SecretCipher,
    durable: Mutex<Durable>,
    states: TtlMap<String, LaunchState>,
    nonces: TtlMap<NonceKey, ()>,
    launches: TtlMap<String, Arc<serde_json::Value>>,
    provider: MemoryProviderStore,
    outbox: MemoryOutbox,
    shared: crate::shared_values::MemorySharedValues,
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
        Self::with_capacity(cipher, clock, STATE_CAPACITY, NONCE_CAPACITY)
    }

    /// An empty store holding at most about `states` unexpired launch
    /// states and `nonces` unexpired nonces.
    fn with_capacity(
        cipher: SecretCipher,
        clock: Arc<dyn Clock>,
        states: usize,
        nonces: usize,
    ) -> Self {
        Self {
            outbox: MemoryOutbox::new(clock.clone()),
            shared: crate::shared_values::MemorySharedValues::new(clock.clone()),
            clock,
            cipher,
            durable: Mutex::new(Durable::default()),
            states: TtlMap::new(states, "launch state"),
            nonces: TtlMap::new(nonces, "nonce"),
            launches: TtlMap::new(LAUNCH_CAPACITY, "saved launch"),
            provider: MemoryProviderStore::new(),
        }
    }

    /// The shared values.
    pub(crate) fn shared_values(&self) -> &crate::shared_values::MemorySharedValues {
        &self.shared
    }

    /// The provider data model's tables.
    pub(crate) fn provider(&self) -> &MemoryProviderStore {
        &self.provider
    }

    /// The grade outbox.
    pub(crate) fn outbox(&self) -> &MemoryOutbox {
        &self.outbox
    }

    fn durable(&self) -> Result<MutexGuard<'_, Durable>> {
        self.durable
            .lock()
            .map_err(|_| RegistryError::unavailable(BACKEND, "a previous writer panicked"))
    }

    fn record_once(&self, key: NonceKey, expires_at: i64, namespace: &str) -> Result<()> {
        let now = self.clock.now();
        check_expiry("expires_at", expires_at, now)?;
        match self.nonces.insert_if_absent(key, (), expires_at, now)? {
            Inserted::Yes => Ok(()),
            Inserted::Present => Err(RegistryError::NonceReplayed {
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
    ) -> Result<Arc<PlatformRegistration>> {
        self.durable()?.registrations.get(issuer, client_id)
    }

    async fn find_by_issuer(&self, issuer: &str) -> Result<Arc<PlatformRegistration>> {
        self.durable()?.registrations.only_of(issuer)
    }

    async fn list_registrations(&self) -> Result<Vec<PlatformRegistration>> {
        Ok(self.durable()?.registrations.all().cloned().collect())
    }

    async fn insert_registration(&self, registration: &PlatformRegistration) -> Result<()> {
        registration.validate()?;
        let mut d = self.durable()?;
        if d.registrations
            .contains(&registration.issuer, &registration.client_id)
        {
            return Err(conflict(
                "registration",
                registration_id(&registration.issuer, &registration.client_id),
                "expected a new (issuer, client_id), found it registered",
            ));
        }
        d.registrations.put(registration.clone());
        Ok(())
    }

    async fn update_registration(&self, registration: &PlatformRegistration) -> Result<()> {
        registration.validate()?;
        let mut d = self.durable()?;
        if d.registrations
            .contains(&registration.issuer, &registration.client_id)
        {
            d.registrations.put(registration.clone());
            Ok(())
        } else {
            Err(RegistryError::not_found(
                "registration",
                registration_id(&registration.issuer, &registration.client_id),
            ))
        }
    }

    async fn delete_registration(&self, issuer: &str, client_id: &str) -> Result<()> {
        if self.durable()?.registrations.remove(issuer, client_id) {
            Ok(())
        } else {
            Err(RegistryError::not_found(
                "registration",
                registration_id(issuer, client_id),
            ))
        }
    }

    async fn upsert_deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment: &Deployment,
    ) -> Result<()> {
        check_id("deployment_id", &deployment.deployment_id)?;
        let mut d = self.durable()?;
        let reg = d.registrations.get_mut(issuer, client_id).ok_or_else(|| {
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
        match self.states.insert_if_absent(
            state.state.clone(),
            state.clone(),
            state.expires_at,
            now,
        )? {
            Inserted::Yes => Ok(()),
            Inserted::Present => Err(conflict(
                "launch state",
                "(state value withheld)",
                "expected a new state value, found an unexpired one",
            )),
        }
    }

    async fn consume_state(&self, state: &str) -> Result<LaunchState> {
        check_id("state", state)?;
        self.states
            .take(state, self.clock.now())?
            .ok_or(RegistryError::StateNotFound)
    }
}

#[async_trait]
impl NonceStore for MemoryStore {
    async fn record_nonce(&self, issuer: &str, nonce: &str, expires_at: i64) -> Result<()> {
        check_id("issuer", issuer)?;
        check_id("nonce", nonce)?;
        self.record_once(NonceKey::new(KIND_LTI13, issuer, nonce), expires_at, issuer)
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
        check_id("consumer key", consumer_key)?;
        check_id("oauth_nonce", nonce)?;
        self.record_once(
            NonceKey::new(KIND_OAUTH1, consumer_key, nonce),
            expires_at,
            consumer_key,
        )
    }
}

#[async_trait]
impl LaunchDataStore for MemoryStore {
    async fn save_launch(
        &self,
        launch_id: &str,
        data: serde_json::Value,
        expires_at: i64,
    ) -> Result<()> {
        check_id("launch_id", launch_id)?;
        check_expiry("expires_at", expires_at, self.clock.now())?;
        let now = self.clock.now();
        self.launches
            .upsert(launch_id.to_owned(), Arc::new(data), expires_at, now)
    }

    async fn load_launch(&self, launch_id: &str) -> Result<serde_json::Value> {
        check_id("launch_id", launch_id)?;
        match self.launches.get(launch_id, self.clock.now())? {
            Some(data) => Ok((*data).clone()),
            None => Err(RegistryError::not_found("launch data", launch_id)),
        }
    }

    async fn delete_launch(&self, launch_id: &str) -> Result<bool> {
        check_id("launch_id", launch_id)?;
        Ok(self.launches.take(launch_id, self.clock.now())?.is_some())
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

/// Short-lived records (launch states, nonces) in sharded, mutex-guarded
/// hash maps. Expiry is checked against the store's clock on every read;
/// expired entries are purged whenever a shard doubles in size and before a
/// full shard refuses an insert, so memory stays proportional to the live
/// entries and never exceeds the capacity bound.
mod ttl_map {
    use std::borrow::Borrow;
    use std::collections::HashMap;
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hash};
    use std::sync::{Mutex, MutexGuard};

    use lti_registry::{RegistryError, Result};

    use super::BACKEND;

    const SHARDS: usize = 16;
    /// A shard is swept for expired entries once it reaches this many.
    const MIN_PURGE_AT: usize = 1024;

    struct Entry<V> {
        value: V,
        expires_at: i64,
    }

    struct Shard<K, V> {
        map: HashMap<K, Entry<V>>,
        purge_at: usize,
    }

    impl<K: Hash + Eq, V> Shard<K, V> {
        fn purge(&mut self, now: i64) {
            self.map.retain(|_, e| e.expires_at > now);
            self.purge_at = (self.map.len() * 2).max(MIN_PURGE_AT);
        }
    }

    /// What [`TtlMap::insert_if_absent`] did.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) enum Inserted {
        /// The key was absent (or expired) and now holds the value.
        Yes,
        /// An unexpired entry holds the key; nothing changed.
        Present,
    }

    /// A map whose entries expire at an absolute unix time.
    pub(crate) struct TtlMap<K, V> {
        shards: Box<[Mutex<Shard<K, V>>]>,
        hasher: RandomState,
        shard_capacity: usize,
        what: &'static str,
    }

    impl<K: Hash + Eq, V> TtlMap<K, V> {
        /// An empty map holding at most about `capacity` unexpired entries
        /// (`what` names them in the error a full map returns).
        pub(crate) fn new(capacity: usize, what: &'static str) -> Self {
            let shards = (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        purge_at: MIN_PURGE_AT,
                    })
                })
                .collect();
            Self {
                shards,
                hasher: RandomState::new(),
                shard_capacity: capacity.div_ceil(SHARDS).max(1),
                what,
            }
        }

        fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> Result<MutexGuard<'_, Shard<K, V>>> {
            // The low bits pick the shard; the map's own hasher is keyed
            // independently, so one shard's buckets stay well spread.
            let h = self.hasher.hash_one(key);
            #[allow(clippy::cast_possible_truncation)] // masked to < SHARDS
            let i = (h as usize) % SHARDS;
            self.shards[i]
                .lock()
                .map_err(|_| RegistryError::unavailable(BACKEND, "a previous writer panicked"))
        }

        /// Stores `value` under `key` unless an unexpired entry (by `now`)
        /// already holds it. Atomic: of concurrent callers with one key,
        /// exactly one gets [`Inserted::Yes`]. A map full of unexpired
        /// entries refuses with `unavailable` rather than evicting one
        /// (evicting a live nonce or state would break replay protection).
        pub(crate) fn insert_if_absent(
            &self,
            key: K,
            value: V,
            expires_at: i64,
            now: i64,
        ) -> Result<Inserted> {
            let mut shard = self.shard(&key)?;
            if let Some(e) = shard.map.get_mut(&key) {
                if e.expires_at > now {
                    return Ok(Inserted::Present);
                }
                *e = Entry { value, expires_at };
                return Ok(Inserted::Yes);
            }
            self.make_room(&mut shard, now)?;
            shard.map.insert(key, Entry { value, expires_at });
            Ok(Inserted::Yes)
        }

        /// Before a new key goes into `shard`: sweeps expired entries when the
        /// shard has grown, and refuses when it is full of unexpired ones.
        fn make_room(&self, shard: &mut Shard<K, V>, now: i64) -> Result<()> {
            if shard.map.len() >= shard.purge_at.min(self.shard_capacity) {
                shard.purge(now);
                if shard.map.len() >= self.shard_capacity {
                    return Err(RegistryError::unavailable(
                        BACKEND,
                        format!(
                            "expected room for another {}, found {} unexpired ones (the capacity)",
                            self.what,
                            self.shard_capacity * SHARDS
                        ),
                    ));
                }
            }
            Ok(())
        }

        /// Stores `value` under `key`, replacing any entry. A map full of
        /// unexpired entries refuses a new key with `unavailable`.
        pub(crate) fn upsert(&self, key: K, value: V, expires_at: i64, now: i64) -> Result<()> {
            let mut shard = self.shard(&key)?;
            if !shard.map.contains_key(&key) {
                self.make_room(&mut shard, now)?;
            }
            shard.map.insert(key, Entry { value, expires_at });
            Ok(())
        }

        /// A copy of the value of `key` if it has not expired by `now`.
        pub(crate) fn get<Q>(&self, key: &Q, now: i64) -> Result<Option<V>>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
            V: Clone,
        {
            let shard = self.shard(key)?;
            Ok(shard
                .map
                .get(key)
                .filter(|e| e.expires_at > now)
                .map(|e| e.value.clone()))
        }

        /// Removes `key` and returns its value if it had not expired by `now`.
        pub(crate) fn take<Q>(&self, key: &Q, now: i64) -> Result<Option<V>>
        where
            K: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            let removed = self.shard(key)?.map.remove(key);
            Ok(removed.filter(|e| e.expires_at > now).map(|e| e.value))
        }

        /// Entries held, expired or not (tests check the bound with it).
        #[cfg(test)]
        pub(super) fn len(&self) -> usize {
            self.shards
                .iter()
                .map(|s| s.lock().map(|s| s.map.len()).unwrap_or(0))
                .sum()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lti_registry::{AppKey, ManualClock};

    const T0: i64 = 1_700_000_000;

    fn store(clock: &ManualClock, states: usize, nonces: usize) -> MemoryStore {
        let cipher =
            SecretCipher::aes256gcm(AppKey::new("test", &[7u8; 32]).unwrap(), vec![]).unwrap();
        MemoryStore::with_capacity(cipher, Arc::new(clock.clone()), states, nonces)
    }

    #[tokio::test]
    async fn registrations_are_shared_and_a_change_leaves_a_held_one_as_it_was() {
        use lti_registry::{KeySource, RegistrationStore};
        const ISS: &str = "https://lms.example";
        let s = store(&ManualClock::new(T0), 16, 16);
        let reg = |client: &str| {
            PlatformRegistration::new(
                ISS,
                client,
                "https://lms.example/auth",
                "https://lms.example/token",
                KeySource::JwksUrl {
                    url: "https://lms.example/jwks".into(),
                },
            )
        };
        s.insert_registration(&reg("c1")).await.unwrap();
        let held = s.get_registration(ISS, "c1").await.unwrap();
        let again = s.get_registration(ISS, "c1").await.unwrap();
        assert!(Arc::ptr_eq(&held, &again), "handed out shared, not copied");
        s.upsert_deployment(ISS, "c1", &Deployment::active("d1"))
            .await
            .unwrap();
        let changed = s.get_registration(ISS, "c1").await.unwrap();
        assert_eq!(changed.deployments.len(), 1);
        assert!(
            held.deployments.is_empty(),
            "a launch's copy does not change under it"
        );
        // With a second client id the issuer is ambiguous; deleting keeps the map consistent.
        s.insert_registration(&reg("c2")).await.unwrap();
        assert_eq!(
            s.find_by_issuer(ISS).await.unwrap_err().code(),
            "ambiguous_issuer"
        );
        s.delete_registration(ISS, "c1").await.unwrap();
        assert_eq!(s.find_by_issuer(ISS).await.unwrap().client_id, "c2");
        s.delete_registration(ISS, "c2").await.unwrap();
        assert_eq!(s.find_by_issuer(ISS).await.unwrap_err().code(), "not_found");
        assert!(s.list_registrations().await.unwrap().is_empty());
    }

    #[test]
    fn saved_launches_replace_expire_and_are_bounded() {
        let map: TtlMap<String, u32> = TtlMap::new(16, "saved launch");
        map.upsert("a".into(), 1, T0 + 10, T0).unwrap();
        map.upsert("a".into(), 2, T0 + 10, T0).unwrap();
        assert_eq!(map.get("a", T0).unwrap(), Some(2), "a save replaces");
        assert_eq!(
            map.get("a", T0 + 10).unwrap(),
            None,
            "expired at expires_at"
        );
        // Fill one shard's worth and more: new keys are refused once a shard is full
        // of unexpired entries, replacing an existing key still works.
        let mut refused = None;
        let mut stored = "a".to_owned();
        for i in 0..1000 {
            match map.upsert(format!("k{i}"), i, T0 + 100, T0) {
                Ok(()) => stored = format!("k{i}"),
                Err(e) => {
                    refused = Some((i, e));
                    break;
                }
            }
        }
        let (i, e) = refused.expect("never refused");
        assert_eq!(e.code(), RegistryError::unavailable(BACKEND, "x").code());
        assert!(e.to_string().contains("saved launch"), "{e}");
        assert!(
            map.len() <= 17,
            "holds {} entries after {i} saves",
            map.len()
        );
        map.upsert(stored.clone(), 7, T0 + 100, T0).unwrap();
        assert_eq!(map.get(stored.as_str(), T0).unwrap(), Some(7));
        // Once they expire, the room is reclaimed.
        map.upsert(format!("k{i}"), 0, T0 + 300, T0 + 200).unwrap();
        assert_eq!(
            map.take(format!("k{i}").as_str(), T0 + 200).unwrap(),
            Some(0)
        );
        assert_eq!(
            map.take(stored.as_str(), T0 + 200).unwrap(),
            None,
            "expired entries are not returned"
        );
    }

    #[tokio::test]
    async fn a_flood_of_unique_nonces_is_refused_at_the_capacity() {
        let clock = ManualClock::new(T0);
        let s = store(&clock, 16, 64);
        // 4 per shard: the flood fills some shard long before 10 000 nonces.
        let mut refused = None;
        for i in 0..10_000 {
            if let Err(e) = s.record_nonce("https://i", &format!("n{i}"), T0 + 60).await {
                refused = Some((i, e));
                break;
            }
        }
        let (i, e) = refused.expect("the flood was never refused");
        assert_eq!(e.code(), RegistryError::unavailable(BACKEND, "x").code());
        assert!(i <= 64, "refused only after {i} nonces");
        assert!(s.nonces.len() <= 64, "holds {} nonces", s.nonces.len());
    }

    #[tokio::test]
    async fn expired_nonces_are_purged_to_make_room() {
        let clock = ManualClock::new(T0);
        let s = store(&clock, 16, 64);
        for round in 0..50 {
            for i in 0..3 {
                s.record_nonce("https://i", &format!("r{round}-{i}"), clock.now() + 10)
                    .await
                    .unwrap();
            }
            clock.advance(11);
        }
        assert!(s.nonces.len() <= 64, "holds {} nonces", s.nonces.len());
    }

    #[test]
    fn a_growing_shard_is_swept_of_expired_entries() {
        let map: TtlMap<u64, ()> = TtlMap::new(1 << 20, "thing");
        for i in 0..20_000 {
            assert_eq!(
                map.insert_if_absent(i, (), T0 + 1, T0).unwrap(),
                Inserted::Yes
            );
        }
        // All expired by T0 + 1: the next sweep of every shard drops them.
        for i in 20_000..60_000 {
            map.insert_if_absent(i, (), T0 + 100, T0 + 1).unwrap();
        }
        assert!(map.len() < 60_000, "nothing was purged: {}", map.len());
        assert_eq!(map.take(&1, T0 + 1).unwrap(), None);
        assert_eq!(map.take(&50_000, T0 + 1).unwrap(), Some(()));
        assert_eq!(map.take(&50_000, T0 + 1).unwrap(), None);
    }

    #[tokio::test]
    async fn a_full_state_map_refuses_then_accepts_after_expiry() {
        let clock = ManualClock::new(T0);
        let s = store(&clock, 16, 64);
        let mut saved = 0;
        let err = loop {
            let st = LaunchState::new(
                format!("s{saved}"),
                "n",
                "https://i",
                "c",
                "https://t",
                T0,
                60,
            );
            match s.save_state(&st).await {
                Ok(()) => saved += 1,
                Err(e) => break e,
            }
            assert!(saved <= 16, "saved {saved} states past the capacity");
        };
        assert_eq!(err.code(), RegistryError::unavailable(BACKEND, "x").code());
        clock.advance(61);
        let st = LaunchState::new("late", "n", "https://i", "c", "https://t", clock.now(), 60);
        s.save_state(&st).await.unwrap();
        assert_eq!(s.consume_state("late").await.unwrap().state, "late");
        assert!(matches!(
            s.consume_state("s0").await,
            Err(RegistryError::StateNotFound)
        ));
    }

    #[tokio::test]
    async fn lti13_and_oauth1_nonces_do_not_collide() {
        let clock = ManualClock::new(T0);
        let s = store(&clock, 16, 64);
        s.record_nonce("k", "n", T0 + 60).await.unwrap();
        s.record_oauth1_nonce("k", "n", T0 + 60).await.unwrap();
        assert!(matches!(
            s.record_oauth1_nonce("k", "n", T0 + 60).await,
            Err(RegistryError::NonceReplayed { .. })
        ));
    }
}
