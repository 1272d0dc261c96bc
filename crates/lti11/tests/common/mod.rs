//! Shared test helpers. Tests run against `lti-store`'s memory backend; the
//! small counting implementations of `ConsumerStore` / `OAuth1NonceStore`
//! below exist only to prove that some rejections happen before any store
//! is consulted.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use lti_registry::{
    Clock, Consumer, ConsumerStore, ManualClock, OAuth1NonceStore, RegistryError, Result,
    SecretCipher, oauth1_nonce_digest,
};
use lti_store::MemoryStore;

pub const NOW: i64 = 1_700_000_000;
pub const KEY: &str = "key123";
pub const SECRET: &str = "secret456";
pub const LAUNCH_URL: &str = "https://tool.example.com/lti/launch";

#[derive(Debug, Default)]
pub struct TestConsumers {
    consumers: Mutex<HashMap<String, Consumer>>,
    pub lookups: AtomicUsize,
}

impl TestConsumers {
    pub fn with(consumers: &[(&str, &str)]) -> Arc<Self> {
        let store = TestConsumers::default();
        for (k, s) in consumers {
            store.consumers.lock().unwrap().insert(
                (*k).to_owned(),
                Consumer::new(*k, *s, format!("consumer {k}"), 0),
            );
        }
        Arc::new(store)
    }
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ConsumerStore for TestConsumers {
    async fn insert_consumer(&self, consumer: &Consumer) -> Result<()> {
        self.consumers
            .lock()
            .unwrap()
            .insert(consumer.key.clone(), consumer.clone());
        Ok(())
    }
    async fn update_consumer(&self, consumer: &Consumer) -> Result<()> {
        self.insert_consumer(consumer).await
    }
    async fn get_consumer(&self, key: &str) -> Result<Consumer> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.consumers
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .ok_or_else(|| RegistryError::NotFound {
                kind: "consumer",
                id: key.to_owned(),
            })
    }
    async fn find_consumer_by_guid(&self, guid: &str) -> Result<Option<Consumer>> {
        Ok(self
            .consumers
            .lock()
            .unwrap()
            .values()
            .find(|c| c.instance_guid.as_deref() == Some(guid))
            .cloned())
    }
    async fn list_consumers(&self) -> Result<Vec<Consumer>> {
        Ok(self.consumers.lock().unwrap().values().cloned().collect())
    }
    async fn delete_consumer(&self, key: &str) -> Result<()> {
        self.consumers.lock().unwrap().remove(key);
        Ok(())
    }
    async fn record_instance_guid(&self, key: &str, guid: &str) -> Result<Consumer> {
        let mut map = self.consumers.lock().unwrap();
        let c = map.get_mut(key).ok_or_else(|| RegistryError::NotFound {
            kind: "consumer",
            id: key.to_owned(),
        })?;
        c.instance_guid = Some(guid.to_owned());
        Ok(c.clone())
    }
}

/// Nonces keyed by digest with expiry, checked against a clock.
#[derive(Debug)]
pub struct TestNonces {
    seen: Mutex<HashMap<String, i64>>,
    clock: Arc<dyn Clock>,
}

impl TestNonces {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(TestNonces {
            seen: Mutex::new(HashMap::new()),
            clock,
        })
    }
    pub fn preload(&self, count: usize, expires_at: i64) {
        let mut seen = self.seen.lock().unwrap();
        seen.reserve(count);
        for i in 0..count {
            seen.insert(
                oauth1_nonce_digest(KEY, &format!("preloaded-{i}")),
                expires_at,
            );
        }
    }
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

#[async_trait]
impl OAuth1NonceStore for TestNonces {
    async fn record_oauth1_nonce(
        &self,
        consumer_key: &str,
        nonce: &str,
        expires_at: i64,
    ) -> Result<()> {
        let now = self.clock.now();
        let mut seen = self.seen.lock().unwrap();
        let digest = oauth1_nonce_digest(consumer_key, nonce);
        match seen.get(&digest) {
            Some(exp) if *exp > now => Err(RegistryError::NonceReplayed {
                namespace: consumer_key.to_owned(),
            }),
            _ => {
                seen.insert(digest, expires_at);
                Ok(())
            }
        }
    }
}

/// Runs a future that completes without waiting (the memory store's
/// consumer writes never wait), outside any runtime.
fn ready<T>(fut: impl std::future::Future<Output = T>) -> T {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("memory store operation did not complete at once"),
    }
}

/// `lti-store`'s memory backend holding the given consumers.
pub fn memory_store(clock: Arc<dyn Clock>, consumers: &[(&str, &str)]) -> Arc<MemoryStore> {
    let store = MemoryStore::new(SecretCipher::insecure_plaintext_for_tests(), clock);
    for (k, s) in consumers {
        ready(store.insert_consumer(&Consumer::new(*k, *s, format!("consumer {k}"), 0))).unwrap();
    }
    Arc::new(store)
}

pub struct Fixture {
    pub clock: ManualClock,
    pub store: Arc<MemoryStore>,
    pub consumers: Arc<TestConsumers>,
    pub nonces: Arc<TestNonces>,
}

impl Fixture {
    pub fn new() -> Self {
        let clock = ManualClock::new(NOW);
        let pairs = [(KEY, SECRET), ("other-key", "other-secret")];
        let store = memory_store(Arc::new(clock.clone()), &pairs);
        let consumers = TestConsumers::with(&pairs);
        let nonces = TestNonces::new(Arc::new(clock.clone()));
        Fixture {
            clock,
            store,
            consumers,
            nonces,
        }
    }

    /// A verifier over the memory store.
    pub fn oauth(&self) -> lti11::OAuthVerifier {
        lti11::OAuthVerifier::new(self.store.clone(), self.store.clone())
            .with_clock(Arc::new(self.clock.clone()))
    }

    pub fn launches(&self) -> lti11::LaunchVerifier {
        lti11::LaunchVerifier::new(self.oauth())
    }

    /// A launch verifier over the counting stores.
    pub fn counting_launches(&self) -> lti11::LaunchVerifier {
        lti11::LaunchVerifier::new(
            lti11::OAuthVerifier::new(self.consumers.clone(), self.nonces.clone())
                .with_clock(Arc::new(self.clock.clone())),
        )
    }
}
