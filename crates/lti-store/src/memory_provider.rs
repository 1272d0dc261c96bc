//! The provider data model in process memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use lti_registry::{
    ContextRecord, GradedAssignment, OutcomeServiceRecord, ProviderStore, RegistryError,
    ResourceRecord, Result, SiloId, UserRecord, VisitRecord, assignment_not_found,
    check_provider_ids, check_score_version, resource_context_conflict,
};

use crate::memory::MemoryStore;

type Key2 = (String, String);
type Key3 = (String, String, String);

#[derive(Default)]
struct Tables {
    silos: BTreeMap<String, SiloId>,
    contexts: BTreeMap<Key2, ContextRecord>,
    resources: BTreeMap<Key2, ResourceRecord>,
    users: BTreeMap<Key2, UserRecord>,
    visits: BTreeMap<Key3, VisitRecord>,
    services: BTreeMap<String, OutcomeServiceRecord>,
    assignments: BTreeMap<Key3, GradedAssignment>,
}

/// The LTI 1.1 provider data model ([`ProviderStore`]) in process memory,
/// for tests and single-process tools. Clones share the data.
/// [`MemoryStore`] serves its provider records through one of these.
#[derive(Default, Clone)]
pub struct MemoryProviderStore {
    tables: Arc<Mutex<Tables>>,
}

impl std::fmt::Debug for MemoryProviderStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryProviderStore")
            .finish_non_exhaustive()
    }
}

impl MemoryProviderStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn t(&self) -> Result<MutexGuard<'_, Tables>> {
        self.tables
            .lock()
            .map_err(|_| RegistryError::unavailable("memory", "a previous writer panicked"))
    }
}

fn k2(a: &str, b: &str) -> Key2 {
    (a.to_owned(), b.to_owned())
}

fn k3(a: &str, b: &str, c: &str) -> Key3 {
    (a.to_owned(), b.to_owned(), c.to_owned())
}

#[async_trait]
impl ProviderStore for MemoryProviderStore {
    async fn silo_of(&self, consumer_key: &str) -> Result<Option<SiloId>> {
        Ok(self.t()?.silos.get(consumer_key).cloned())
    }

    async fn assign_silo(&self, consumer_key: &str, silo: &SiloId) -> Result<()> {
        check_provider_ids(&[("consumer key", consumer_key), ("silo", &silo.0)])?;
        self.t()?
            .silos
            .insert(consumer_key.to_owned(), silo.clone());
        Ok(())
    }

    async fn get_context(
        &self,
        consumer_key: &str,
        context_id: &str,
    ) -> Result<Option<ContextRecord>> {
        Ok(self
            .t()?
            .contexts
            .get(&k2(consumer_key, context_id))
            .cloned())
    }

    async fn put_context(&self, record: &ContextRecord) -> Result<()> {
        check_provider_ids(&[
            ("consumer key", &record.consumer_key),
            ("context_id", &record.context_id),
        ])?;
        self.t()?
            .contexts
            .insert(k2(&record.consumer_key, &record.context_id), record.clone());
        Ok(())
    }

    async fn get_resource(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
    ) -> Result<Option<ResourceRecord>> {
        Ok(self
            .t()?
            .resources
            .get(&k2(consumer_key, resource_link_id))
            .cloned())
    }

    async fn insert_resource(&self, record: &ResourceRecord) -> Result<ResourceRecord> {
        check_provider_ids(&[
            ("consumer key", &record.consumer_key),
            ("resource_link_id", &record.resource_link_id),
        ])?;
        Ok(self
            .t()?
            .resources
            .entry(k2(&record.consumer_key, &record.resource_link_id))
            .or_insert_with(|| record.clone())
            .clone())
    }

    async fn put_resource(&self, record: &ResourceRecord) -> Result<()> {
        let mut t = self.t()?;
        let stored = t
            .resources
            .get_mut(&k2(&record.consumer_key, &record.resource_link_id))
            .ok_or_else(|| RegistryError::not_found("resource link", &record.resource_link_id))?;
        if stored.context_id != record.context_id {
            return Err(resource_context_conflict(
                &record.resource_link_id,
                stored.context_id.as_deref(),
                record.context_id.as_deref(),
            ));
        }
        stored.title.clone_from(&record.title);
        Ok(())
    }

    async fn get_user(&self, consumer_key: &str, user_id: &str) -> Result<Option<UserRecord>> {
        Ok(self.t()?.users.get(&k2(consumer_key, user_id)).cloned())
    }

    async fn insert_user(&self, record: &UserRecord) -> Result<UserRecord> {
        check_provider_ids(&[
            ("consumer key", &record.consumer_key),
            ("user_id", &record.user_id),
            ("account", &record.account.0),
        ])?;
        Ok(self
            .t()?
            .users
            .entry(k2(&record.consumer_key, &record.user_id))
            .or_insert_with(|| record.clone())
            .clone())
    }

    async fn put_user(&self, record: &UserRecord) -> Result<()> {
        let mut t = self.t()?;
        let stored = t
            .users
            .get_mut(&k2(&record.consumer_key, &record.user_id))
            .ok_or_else(|| RegistryError::not_found("user", &record.user_id))?;
        *stored = UserRecord {
            silo: stored.silo.clone(),
            account: stored.account.clone(),
            ..record.clone()
        };
        Ok(())
    }

    async fn put_visit(&self, record: &VisitRecord) -> Result<()> {
        check_provider_ids(&[
            ("session", &record.session),
            ("consumer key", &record.consumer_key),
            ("resource_link_id", &record.resource_link_id),
        ])?;
        let key = k3(
            &record.session,
            &record.consumer_key,
            &record.resource_link_id,
        );
        self.t()?.visits.insert(key, record.clone());
        Ok(())
    }

    async fn end_visits(
        &self,
        session: &str,
        consumer_key: &str,
        keep_user: Option<&str>,
        now: i64,
    ) -> Result<u64> {
        let mut ended = 0;
        for v in self.t()?.visits.values_mut() {
            if v.session == session
                && v.consumer_key == consumer_key
                && v.ended_at.is_none()
                && v.user_id.as_deref() != keep_user
            {
                v.ended_at = Some(now);
                ended += 1;
            }
        }
        Ok(ended)
    }

    async fn open_visits(&self, session: &str) -> Result<Vec<VisitRecord>> {
        // The map is ordered by (session, consumer, resource link).
        Ok(self
            .t()?
            .visits
            .values()
            .filter(|v| v.session == session && v.ended_at.is_none())
            .cloned()
            .collect())
    }

    async fn put_outcome_service(&self, record: &OutcomeServiceRecord) -> Result<()> {
        check_provider_ids(&[
            ("consumer key", &record.consumer_key),
            ("lis_outcome_service_url", &record.service_url),
        ])?;
        self.t()?
            .services
            .insert(record.consumer_key.clone(), record.clone());
        Ok(())
    }

    async fn get_outcome_service(
        &self,
        consumer_key: &str,
    ) -> Result<Option<OutcomeServiceRecord>> {
        Ok(self.t()?.services.get(consumer_key).cloned())
    }

    async fn upsert_assignment(&self, record: &GradedAssignment) -> Result<GradedAssignment> {
        check_provider_ids(&[
            ("consumer key", &record.consumer_key),
            ("resource_link_id", &record.resource_link_id),
            ("user_id", &record.user_id),
            ("lis_result_sourcedid", &record.sourced_id),
            ("lis_outcome_service_url", &record.service_url),
        ])?;
        let key = k3(
            &record.consumer_key,
            &record.resource_link_id,
            &record.user_id,
        );
        let mut t = self.t()?;
        let stored = t
            .assignments
            .entry(key)
            .or_insert_with(|| GradedAssignment {
                score_version: 0,
                ..record.clone()
            });
        stored.sourced_id.clone_from(&record.sourced_id);
        stored.service_url.clone_from(&record.service_url);
        Ok(stored.clone())
    }

    async fn get_assignment(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
        user_id: &str,
    ) -> Result<Option<GradedAssignment>> {
        Ok(self
            .t()?
            .assignments
            .get(&k3(consumer_key, resource_link_id, user_id))
            .cloned())
    }

    async fn list_assignments(&self, consumer_key: &str) -> Result<Vec<GradedAssignment>> {
        // The map is ordered by (consumer, resource link, user).
        Ok(self
            .t()?
            .assignments
            .values()
            .filter(|a| a.consumer_key == consumer_key)
            .cloned()
            .collect())
    }

    async fn advance_score_version(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
        user_id: &str,
        version: u64,
    ) -> Result<bool> {
        check_score_version(version)?;
        let mut t = self.t()?;
        let stored = t
            .assignments
            .get_mut(&k3(consumer_key, resource_link_id, user_id))
            .ok_or_else(|| assignment_not_found(consumer_key, resource_link_id, user_id))?;
        if stored.score_version < version {
            stored.score_version = version;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

/// [`MemoryStore`] serves the provider records from its [`MemoryProviderStore`].
#[async_trait]
impl ProviderStore for MemoryStore {
    async fn silo_of(&self, consumer_key: &str) -> Result<Option<SiloId>> {
        self.provider().silo_of(consumer_key).await
    }
    async fn assign_silo(&self, consumer_key: &str, silo: &SiloId) -> Result<()> {
        self.provider().assign_silo(consumer_key, silo).await
    }
    async fn get_context(&self, consumer_key: &str, id: &str) -> Result<Option<ContextRecord>> {
        self.provider().get_context(consumer_key, id).await
    }
    async fn put_context(&self, record: &ContextRecord) -> Result<()> {
        self.provider().put_context(record).await
    }
    async fn get_resource(&self, consumer_key: &str, id: &str) -> Result<Option<ResourceRecord>> {
        self.provider().get_resource(consumer_key, id).await
    }
    async fn insert_resource(&self, record: &ResourceRecord) -> Result<ResourceRecord> {
        self.provider().insert_resource(record).await
    }
    async fn put_resource(&self, record: &ResourceRecord) -> Result<()> {
        self.provider().put_resource(record).await
    }
    async fn get_user(&self, consumer_key: &str, user_id: &str) -> Result<Option<UserRecord>> {
        self.provider().get_user(consumer_key, user_id).await
    }
    async fn insert_user(&self, record: &UserRecord) -> Result<UserRecord> {
        self.provider().insert_user(record).await
    }
    async fn put_user(&self, record: &UserRecord) -> Result<()> {
        self.provider().put_user(record).await
    }
    async fn put_visit(&self, record: &VisitRecord) -> Result<()> {
        self.provider().put_visit(record).await
    }
    async fn end_visits(
        &self,
        session: &str,
        consumer_key: &str,
        keep_user: Option<&str>,
        now: i64,
    ) -> Result<u64> {
        self.provider()
            .end_visits(session, consumer_key, keep_user, now)
            .await
    }
    async fn open_visits(&self, session: &str) -> Result<Vec<VisitRecord>> {
        self.provider().open_visits(session).await
    }
    async fn put_outcome_service(&self, record: &OutcomeServiceRecord) -> Result<()> {
        self.provider().put_outcome_service(record).await
    }
    async fn get_outcome_service(
        &self,
        consumer_key: &str,
    ) -> Result<Option<OutcomeServiceRecord>> {
        self.provider().get_outcome_service(consumer_key).await
    }
    async fn upsert_assignment(&self, record: &GradedAssignment) -> Result<GradedAssignment> {
        self.provider().upsert_assignment(record).await
    }
    async fn get_assignment(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
        user_id: &str,
    ) -> Result<Option<GradedAssignment>> {
        self.provider()
            .get_assignment(consumer_key, resource_link_id, user_id)
            .await
    }
    async fn list_assignments(&self, consumer_key: &str) -> Result<Vec<GradedAssignment>> {
        self.provider().list_assignments(consumer_key).await
    }
    async fn advance_score_version(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
        user_id: &str,
        version: u64,
    ) -> Result<bool> {
        self.provider()
            .advance_score_version(consumer_key, resource_link_id, user_id, version)
            .await
    }
}
