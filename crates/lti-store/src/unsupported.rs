//! Stand-ins for the durable traits on a backend that only keeps short-lived
//! records (Redis): every call fails with a configuration hint.

use async_trait::async_trait;
use lti_registry::{
    AutoRegistrationPolicy, Consumer, ConsumerStore, Deployment, PlatformRegistration,
    RegistrationStore, RegistryError, Result, SecretString, ToolKey, ToolKeyStore,
};

const HINT: &str = "pair it with a durable backend (sqlite:// or postgres://) for registrations, tool keys and consumers, e.g. storage.url = \"sqlite://lti.db\" with nonce_url = \"redis://...\"";

/// Answers every durable-record call with [`RegistryError::Unsupported`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unsupported {
    pub(crate) backend: &'static str,
}

impl Unsupported {
    fn err<T>(&self, operation: &'static str) -> Result<T> {
        Err(RegistryError::Unsupported {
            backend: self.backend,
            operation,
            hint: HINT,
        })
    }
}

#[async_trait]
impl RegistrationStore for Unsupported {
    async fn get_registration(&self, _: &str, _: &str) -> Result<PlatformRegistration> {
        self.err("registrations")
    }
    async fn find_by_issuer(&self, _: &str) -> Result<PlatformRegistration> {
        self.err("registrations")
    }
    async fn list_registrations(&self) -> Result<Vec<PlatformRegistration>> {
        self.err("registrations")
    }
    async fn insert_registration(&self, _: &PlatformRegistration) -> Result<()> {
        self.err("registrations")
    }
    async fn update_registration(&self, _: &PlatformRegistration) -> Result<()> {
        self.err("registrations")
    }
    async fn delete_registration(&self, _: &str, _: &str) -> Result<()> {
        self.err("registrations")
    }
    async fn upsert_deployment(&self, _: &str, _: &str, _: &Deployment) -> Result<()> {
        self.err("deployments")
    }
    async fn set_auto_registration(&self, _: &AutoRegistrationPolicy) -> Result<()> {
        self.err("auto-registration policies")
    }
    async fn get_auto_registration(&self, _: &str) -> Result<Option<AutoRegistrationPolicy>> {
        self.err("auto-registration policies")
    }
    async fn remove_auto_registration(&self, _: &str) -> Result<()> {
        self.err("auto-registration policies")
    }
}

#[async_trait]
impl ToolKeyStore for Unsupported {
    async fn add_next_key(&self, _: &str, _: &str, _: &SecretString) -> Result<ToolKey> {
        self.err("tool keys")
    }
    async fn promote_next_key(&self) -> Result<ToolKey> {
        self.err("tool keys")
    }
    async fn active_key(&self) -> Result<ToolKey> {
        self.err("tool keys")
    }
    async fn published_keys(&self, _: i64) -> Result<Vec<ToolKey>> {
        self.err("tool keys")
    }
    async fn list_keys(&self) -> Result<Vec<ToolKey>> {
        self.err("tool keys")
    }
    async fn purge_retired_keys(&self, _: i64) -> Result<u64> {
        self.err("tool keys")
    }
}

#[async_trait]
impl ConsumerStore for Unsupported {
    async fn insert_consumer(&self, _: &Consumer) -> Result<()> {
        self.err("LTI 1.1 consumers")
    }
    async fn update_consumer(&self, _: &Consumer) -> Result<()> {
        self.err("LTI 1.1 consumers")
    }
    async fn get_consumer(&self, _: &str) -> Result<Consumer> {
        self.err("LTI 1.1 consumers")
    }
    async fn find_consumer_by_guid(&self, _: &str) -> Result<Option<Consumer>> {
        self.err("LTI 1.1 consumers")
    }
    async fn list_consumers(&self) -> Result<Vec<Consumer>> {
        self.err("LTI 1.1 consumers")
    }
    async fn delete_consumer(&self, _: &str) -> Result<()> {
        self.err("LTI 1.1 consumers")
    }
    async fn record_instance_guid(&self, _: &str, _: &str) -> Result<Consumer> {
        self.err("LTI 1.1 consumers")
    }
}
