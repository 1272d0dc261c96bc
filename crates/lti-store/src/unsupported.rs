//! Stand-ins for the durable traits on a backend that only keeps short-lived
//! records (Redis): every call fails with a configuration hint.

use std::sync::Arc;

use async_trait::async_trait;
use lti_registry::{
    AutoRegistrationPolicy, Consumer, ConsumerStore, ContextRecord, Deployment, GradedAssignment,
    OutcomeServiceRecord, PlatformRegistration, ProviderStore, RegistrationStore, RegistryError,
    ResourceRecord, Result, SecretString, SiloId, ToolKey, ToolKeyStore, UserRecord, VisitRecord,
};

const HINT: &str = "pair it with a durable backend (sqlite:// or postgres://) (Redis keeps only short-lived records here) for registrations, tool keys, consumers and the LTI 1.1 provider data model, e.g. storage.url = \"sqlite://lti.db\" with nonce_url = \"redis://...\"";

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
    async fn get_registration(&self, _: &str, _: &str) -> Result<Arc<PlatformRegistration>> {
        self.err("registrations")
    }
    async fn find_by_issuer(&self, _: &str) -> Result<Arc<PlatformRegistration>> {
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

const PROVIDER: &str = "the LTI 1.1 provider data model";

#[async_trait]
impl ProviderStore for Unsupported {
    async fn silo_of(&self, _: &str) -> Result<Option<SiloId>> {
        self.err(PROVIDER)
    }
    async fn assign_silo(&self, _: &str, _: &SiloId) -> Result<()> {
        self.err(PROVIDER)
    }
    async fn get_context(&self, _: &str, _: &str) -> Result<Option<ContextRecord>> {
        self.err(PROVIDER)
    }
    async fn put_context(&self, _: &ContextRecord) -> Result<()> {
        self.err(PROVIDER)
    }
    async fn get_resource(&self, _: &str, _: &str) -> Result<Option<ResourceRecord>> {
        self.err(PROVIDER)
    }
    async fn insert_resource(&self, _: &ResourceRecord) -> Result<ResourceRecord> {
        self.err(PROVIDER)
    }
    async fn put_resource(&self, _: &ResourceRecord) -> Result<()> {
        self.err(PROVIDER)
    }
    async fn get_user(&self, _: &str, _: &str) -> Result<Option<UserRecord>> {
        self.err(PROVIDER)
    }
    async fn insert_user(&self, _: &UserRecord) -> Result<UserRecord> {
        self.err(PROVIDER)
    }
    async fn put_user(&self, _: &UserRecord) -> Result<()> {
        self.err(PROVIDER)
    }
    async fn put_visit(&self, _: &VisitRecord) -> Result<()> {
        self.err(PROVIDER)
    }
    async fn end_visits(&self, _: &str, _: &str, _: Option<&str>, _: i64) -> Result<u64> {
        self.err(PROVIDER)
    }
    async fn open_visits(&self, _: &str) -> Result<Vec<VisitRecord>> {
        self.err(PROVIDER)
    }
    async fn put_outcome_service(&self, _: &OutcomeServiceRecord) -> Result<()> {
        self.err(PROVIDER)
    }
    async fn get_outcome_service(&self, _: &str) -> Result<Option<OutcomeServiceRecord>> {
        self.err(PROVIDER)
    }
    async fn upsert_assignment(&self, _: &GradedAssignment) -> Result<GradedAssignment> {
        self.err(PROVIDER)
    }
    async fn get_assignment(&self, _: &str, _: &str, _: &str) -> Result<Option<GradedAssignment>> {
        self.err(PROVIDER)
    }
    async fn list_assignments(&self, _: &str) -> Result<Vec<GradedAssignment>> {
        self.err(PROVIDER)
    }
    async fn advance_score_version(&self, _: &str, _: &str, _: &str, _: u64) -> Result<bool> {
        self.err(PROVIDER)
    }
}
