//! The tool provider's data model: silos, contexts, resource links, users
//! mapped to application accounts, visits, outcome services and graded
//! assignments.
//!
//! [`ProviderStore`] is the storage seam (small, record-level, async);
//! [`ProviderModel`] holds the rules, so every backend gets them:
//!
//! - a resource link is bound to the context of its first launch forever; a
//!   later launch naming another context fails with
//!   [`Error::ResourceContextChanged`] (a launch without `context_id` keeps
//!   the bound one);
//! - context and user details are refreshed with the fields a launch sends;
//!   fields it leaves out keep their stored values;
//! - the LTI user (unique per consumer) maps to an application account,
//!   created on the first launch;
//! - one browser session may hold visits to several resources; a launch from
//!   the same consumer for a different user ends the previous user's visits;
//! - a launch with `lis_outcome_service_url` and `lis_result_sourcedid`
//!   records the consumer's outcome service and one graded assignment per
//!   (consumer, resource link, user), updated — never duplicated — by later
//!   launches;
//! - permission bits come from the roles (`lti-message`'s policy).
//!
//! This crate ships [`MemoryProviderStore`]; SQL and Redis backends belong in
//! `lti-store`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use lti_message::Permissions;
use lti_message::roles::{DefaultPermissionPolicy, PermissionPolicy};
use lti_registry::{Clock, SystemClock};

use crate::error::{Error, Result};
use crate::verify::Launch;

/// A tenant: consumers in one silo share accounts and data; silos never do.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiloId(pub String);

impl SiloId {
    /// The silo of a consumer that was never assigned one: its own.
    pub fn of_consumer(consumer_key: &str) -> Self {
        SiloId(format!("consumer:{consumer_key}"))
    }
}

/// An application account an LTI user is mapped to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub String);

/// A context (course) as last described by a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextRecord {
    /// The silo.
    pub silo: SiloId,
    /// The consumer key.
    pub consumer_key: String,
    /// `context_id`.
    pub context_id: String,
    /// `context_title`.
    pub title: Option<String>,
    /// `context_label`.
    pub label: Option<String>,
    /// `context_type`.
    pub context_type: Option<String>,
    /// Last refresh (Unix seconds).
    pub updated_at: i64,
}

/// A resource link, bound forever to the context of its first launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    /// The silo.
    pub silo: SiloId,
    /// The consumer key.
    pub consumer_key: String,
    /// `resource_link_id`.
    pub resource_link_id: String,
    /// The bound `context_id` (`None` if the first launch had none).
    pub context_id: Option<String>,
    /// `resource_link_title`.
    pub title: Option<String>,
    /// First launch (Unix seconds).
    pub created_at: i64,
}

/// An LTI user (unique per consumer) and the account it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The silo.
    pub silo: SiloId,
    /// The consumer key.
    pub consumer_key: String,
    /// `user_id`.
    pub user_id: String,
    /// The application account.
    pub account: AccountId,
    /// `lis_person_name_full`.
    pub name_full: Option<String>,
    /// `lis_person_name_given`.
    pub name_given: Option<String>,
    /// `lis_person_name_family`.
    pub name_family: Option<String>,
    /// `lis_person_contact_email_primary`.
    pub email: Option<String>,
    /// `lis_person_sourcedid`.
    pub sourced_id: Option<String>,
    /// Last refresh (Unix seconds).
    pub updated_at: i64,
}

/// A visit: one browser session looking at one resource link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitRecord {
    /// The application's browser-session id.
    pub session: String,
    /// The consumer key.
    pub consumer_key: String,
    /// The LTI user (`None` for anonymous launches).
    pub user_id: Option<String>,
    /// The resource link.
    pub resource_link_id: String,
    /// Permission bits from the launch's roles.
    pub permissions: Permissions,
    /// Start (Unix seconds).
    pub started_at: i64,
    /// End (Unix seconds), once ended.
    pub ended_at: Option<i64>,
}

/// A consumer's Basic Outcomes endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeServiceRecord {
    /// The consumer key.
    pub consumer_key: String,
    /// `lis_outcome_service_url`.
    pub service_url: String,
}

/// One graded assignment per (consumer, resource link, user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradedAssignment {
    /// The consumer key.
    pub consumer_key: String,
    /// The resource link.
    pub resource_link_id: String,
    /// The LTI user.
    pub user_id: String,
    /// `lis_result_sourcedid` (latest sent).
    pub sourced_id: String,
    /// `lis_outcome_service_url` (latest sent).
    pub service_url: String,
    /// First launch (Unix seconds).
    pub created_at: i64,
}

impl From<&GradedAssignment> for crate::verify::OutcomeTarget {
    fn from(a: &GradedAssignment) -> Self {
        crate::verify::OutcomeTarget {
            service_url: a.service_url.clone(),
            sourced_id: a.sourced_id.clone(),
        }
    }
}

/// Record-level storage for the provider data model. Implementations keep
/// the data; [`ProviderModel`] applies the rules.
///
/// Invariants: `insert_*` calls are atomic "insert if absent" and return the
/// stored record (an existing one wins); `put_*` calls replace by key. Keys:
/// contexts (consumer, context_id); resources (consumer, resource_link_id);
/// users (consumer, user_id); visits (session, consumer, resource_link_id);
/// assignments (consumer, resource_link_id, user_id).
#[async_trait]
pub trait ProviderStore: Send + Sync {
    /// The silo a consumer belongs to, if assigned.
    async fn silo_of(&self, consumer_key: &str) -> Result<Option<SiloId>>;
    /// Assigns a consumer to a silo.
    async fn assign_silo(&self, consumer_key: &str, silo: &SiloId) -> Result<()>;
    /// A context.
    async fn get_context(
        &self,
        consumer_key: &str,
        context_id: &str,
    ) -> Result<Option<ContextRecord>>;
    /// Stores a context.
    async fn put_context(&self, record: &ContextRecord) -> Result<()>;
    /// A resource link.
    async fn get_resource(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
    ) -> Result<Option<ResourceRecord>>;
    /// Inserts a resource link if absent; returns the stored one.
    async fn insert_resource(&self, record: &ResourceRecord) -> Result<ResourceRecord>;
    /// Replaces a resource link.
    async fn put_resource(&self, record: &ResourceRecord) -> Result<()>;
    /// A user.
    async fn get_user(&self, consumer_key: &str, user_id: &str) -> Result<Option<UserRecord>>;
    /// Inserts a user if absent; returns the stored one.
    async fn insert_user(&self, record: &UserRecord) -> Result<UserRecord>;
    /// Replaces a user.
    async fn put_user(&self, record: &UserRecord) -> Result<()>;
    /// Stores (replaces) a visit.
    async fn put_visit(&self, record: &VisitRecord) -> Result<()>;
    /// Ends the open visits of `session` from `consumer_key` whose user is not
    /// `keep_user`; returns how many were ended.
    async fn end_visits(
        &self,
        session: &str,
        consumer_key: &str,
        keep_user: Option<&str>,
        now: i64,
    ) -> Result<u64>;
    /// The open visits of a session.
    async fn open_visits(&self, session: &str) -> Result<Vec<VisitRecord>>;
    /// Stores a consumer's outcome service.
    async fn put_outcome_service(&self, record: &OutcomeServiceRecord) -> Result<()>;
    /// A consumer's outcome service.
    async fn get_outcome_service(&self, consumer_key: &str)
    -> Result<Option<OutcomeServiceRecord>>;
    /// Inserts or updates the assignment for its key (keeping `created_at`); returns the stored one.
    async fn upsert_assignment(&self, record: &GradedAssignment) -> Result<GradedAssignment>;
    /// Every assignment of a consumer.
    async fn list_assignments(&self, consumer_key: &str) -> Result<Vec<GradedAssignment>>;
}

/// What a launch did to the data model.
#[derive(Debug, Clone)]
pub struct LaunchRecord {
    /// The consumer's silo.
    pub silo: SiloId,
    /// The resource link (as bound).
    pub resource: ResourceRecord,
    /// The context, when the launch has one (sent or bound).
    pub context: Option<ContextRecord>,
    /// The user and account, unless the launch was anonymous.
    pub user: Option<UserRecord>,
    /// Whether this launch created the account.
    pub account_created: bool,
    /// Permission bits from the roles.
    pub permissions: Permissions,
    /// The graded assignment, when the launch allows grade pass-back.
    pub assignment: Option<GradedAssignment>,
    /// How many visits of other users in this session were ended.
    pub ended_visits: u64,
}

/// The provider data model's rules over any [`ProviderStore`].
pub struct ProviderModel<S> {
    store: S,
    clock: Arc<dyn Clock>,
    policy: Arc<dyn PermissionPolicy + Send + Sync>,
}

impl<S: ProviderStore> ProviderModel<S> {
    /// A model over a store, with the system clock and the default permission policy.
    pub fn new(store: S) -> Self {
        ProviderModel {
            store,
            clock: Arc::new(SystemClock),
            policy: Arc::new(DefaultPermissionPolicy),
        }
    }

    /// Uses another clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses another role → permission policy.
    pub fn with_permission_policy(
        mut self,
        policy: Arc<dyn PermissionPolicy + Send + Sync>,
    ) -> Self {
        self.policy = policy;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Applies a verified launch from browser session `session`.
    pub async fn record_launch(&self, launch: &Launch, session: &str) -> Result<LaunchRecord> {
        let now = self.clock.now();
        let key = launch.consumer_key();
        let p = launch.params();
        let opt = |n: &str| p.get(n).map(str::to_owned);
        let silo = self
            .store
            .silo_of(key)
            .await?
            .unwrap_or_else(|| SiloId::of_consumer(key));

        let sent_context = launch.context_id();
        let wanted = ResourceRecord {
            silo: silo.clone(),
            consumer_key: key.to_owned(),
            resource_link_id: launch.resource_link_id().to_owned(),
            context_id: sent_context.map(str::to_owned),
            title: opt("resource_link_title"),
            created_at: now,
        };
        let mut resource = self.store.insert_resource(&wanted).await?;
        if let Some(sent) = sent_context
            && resource.context_id.as_deref() != Some(sent)
        {
            return Err(Error::ResourceContextChanged {
                expected: resource
                    .context_id
                    .clone()
                    .unwrap_or_else(|| "(none)".to_owned()),
                found: sent.to_owned(),
            });
        }
        if wanted.title.is_some() && wanted.title != resource.title {
            resource.title = wanted.title.clone();
            self.store.put_resource(&resource).await?;
        }

        let context = match resource.context_id.clone() {
            Some(context_id) => {
                let stored = self.store.get_context(key, &context_id).await?;
                let mut record = stored.clone().unwrap_or(ContextRecord {
                    silo: silo.clone(),
                    consumer_key: key.to_owned(),
                    context_id,
                    title: None,
                    label: None,
                    context_type: None,
                    updated_at: now,
                });
                if sent_context.is_some() {
                    refresh(&mut record.title, opt("context_title"));
                    refresh(&mut record.label, opt("context_label"));
                    refresh(&mut record.context_type, opt("context_type"));
                    record.updated_at = now;
                }
                if stored.as_ref() != Some(&record) {
                    self.store.put_context(&record).await?;
                }
                Some(record)
            }
            None => None,
        };

        let mut account_created = false;
        let user = match launch.user_id() {
            Some(user_id) => {
                let fresh = UserRecord {
                    silo: silo.clone(),
                    consumer_key: key.to_owned(),
                    user_id: user_id.to_owned(),
                    account: AccountId(format!("acct_{}", crate::oauth::generate_nonce())),
                    name_full: opt("lis_person_name_full"),
                    name_given: opt("lis_person_name_given"),
                    name_family: opt("lis_person_name_family"),
                    email: opt("lis_person_contact_email_primary"),
                    sourced_id: opt("lis_person_sourcedid"),
                    updated_at: now,
                };
                let stored = self.store.insert_user(&fresh).await?;
                account_created = stored.account == fresh.account;
                let mut record = stored.clone();
                refresh(&mut record.name_full, fresh.name_full);
                refresh(&mut record.name_given, fresh.name_given);
                refresh(&mut record.name_family, fresh.name_family);
                refresh(&mut record.email, fresh.email);
                refresh(&mut record.sourced_id, fresh.sourced_id);
                if record != stored {
                    record.updated_at = now;
                    self.store.put_user(&record).await?;
                }
                Some(record)
            }
            None => None,
        };

        let permissions = launch.roles().permissions_with(self.policy.as_ref());
        let user_id = launch.user_id();
        let ended_visits = self.store.end_visits(session, key, user_id, now).await?;
        self.store
            .put_visit(&VisitRecord {
                session: session.to_owned(),
                consumer_key: key.to_owned(),
                user_id: user_id.map(str::to_owned),
                resource_link_id: resource.resource_link_id.clone(),
                permissions,
                started_at: now,
                ended_at: None,
            })
            .await?;

        let assignment = match (launch.outcome_target(), user_id) {
            (Some(target), Some(user_id)) => {
                self.store
                    .put_outcome_service(&OutcomeServiceRecord {
                        consumer_key: key.to_owned(),
                        service_url: target.service_url.clone(),
                    })
                    .await?;
                let record = GradedAssignment {
                    consumer_key: key.to_owned(),
                    resource_link_id: resource.resource_link_id.clone(),
                    user_id: user_id.to_owned(),
                    sourced_id: target.sourced_id,
                    service_url: target.service_url,
                    created_at: now,
                };
                Some(self.store.upsert_assignment(&record).await?)
            }
            _ => None,
        };

        Ok(LaunchRecord {
            silo,
            resource,
            context,
            user,
            account_created,
            permissions,
            assignment,
            ended_visits,
        })
    }
}

fn refresh(slot: &mut Option<String>, sent: Option<String>) {
    if sent.is_some() {
        *slot = sent;
    }
}

#[derive(Default)]
struct Tables {
    silos: HashMap<String, SiloId>,
    contexts: HashMap<(String, String), ContextRecord>,
    resources: HashMap<(String, String), ResourceRecord>,
    users: HashMap<(String, String), UserRecord>,
    visits: HashMap<(String, String, String), VisitRecord>,
    services: HashMap<String, OutcomeServiceRecord>,
    assignments: HashMap<(String, String, String), GradedAssignment>,
}

/// An in-memory [`ProviderStore`] for tests and single-process tools.
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
    pub fn new() -> Self {
        Self::default()
    }

    fn t(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn k2(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[async_trait]
impl ProviderStore for MemoryProviderStore {
    async fn silo_of(&self, consumer_key: &str) -> Result<Option<SiloId>> {
        Ok(self.t().silos.get(consumer_key).cloned())
    }
    async fn assign_silo(&self, consumer_key: &str, silo: &SiloId) -> Result<()> {
        self.t().silos.insert(consumer_key.to_owned(), silo.clone());
        Ok(())
    }
    async fn get_context(
        &self,
        consumer_key: &str,
        context_id: &str,
    ) -> Result<Option<ContextRecord>> {
        Ok(self
            .t()
            .contexts
            .get(&k2(consumer_key, context_id))
            .cloned())
    }
    async fn put_context(&self, record: &ContextRecord) -> Result<()> {
        self.t()
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
            .t()
            .resources
            .get(&k2(consumer_key, resource_link_id))
            .cloned())
    }
    async fn insert_resource(&self, record: &ResourceRecord) -> Result<ResourceRecord> {
        Ok(self
            .t()
            .resources
            .entry(k2(&record.consumer_key, &record.resource_link_id))
            .or_insert_with(|| record.clone())
            .clone())
    }
    async fn put_resource(&self, record: &ResourceRecord) -> Result<()> {
        self.t().resources.insert(
            k2(&record.consumer_key, &record.resource_link_id),
            record.clone(),
        );
        Ok(())
    }
    async fn get_user(&self, consumer_key: &str, user_id: &str) -> Result<Option<UserRecord>> {
        Ok(self.t().users.get(&k2(consumer_key, user_id)).cloned())
    }
    async fn insert_user(&self, record: &UserRecord) -> Result<UserRecord> {
        Ok(self
            .t()
            .users
            .entry(k2(&record.consumer_key, &record.user_id))
            .or_insert_with(|| record.clone())
            .clone())
    }
    async fn put_user(&self, record: &UserRecord) -> Result<()> {
        self.t()
            .users
            .insert(k2(&record.consumer_key, &record.user_id), record.clone());
        Ok(())
    }
    async fn put_visit(&self, record: &VisitRecord) -> Result<()> {
        let key = (
            record.session.clone(),
            record.consumer_key.clone(),
            record.resource_link_id.clone(),
        );
        self.t().visits.insert(key, record.clone());
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
        for v in self.t().visits.values_mut() {
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
        let mut out: Vec<VisitRecord> = self
            .t()
            .visits
            .values()
            .filter(|v| v.session == session && v.ended_at.is_none())
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            (&a.consumer_key, &a.resource_link_id).cmp(&(&b.consumer_key, &b.resource_link_id))
        });
        Ok(out)
    }
    async fn put_outcome_service(&self, record: &OutcomeServiceRecord) -> Result<()> {
        self.t()
            .services
            .insert(record.consumer_key.clone(), record.clone());
        Ok(())
    }
    async fn get_outcome_service(
        &self,
        consumer_key: &str,
    ) -> Result<Option<OutcomeServiceRecord>> {
        Ok(self.t().services.get(consumer_key).cloned())
    }
    async fn upsert_assignment(&self, record: &GradedAssignment) -> Result<GradedAssignment> {
        let key = (
            record.consumer_key.clone(),
            record.resource_link_id.clone(),
            record.user_id.clone(),
        );
        let mut t = self.t();
        let stored = t.assignments.entry(key).or_insert_with(|| record.clone());
        stored.sourced_id = record.sourced_id.clone();
        stored.service_url = record.service_url.clone();
        Ok(stored.clone())
    }
    async fn list_assignments(&self, consumer_key: &str) -> Result<Vec<GradedAssignment>> {
        let mut out: Vec<GradedAssignment> = self
            .t()
            .assignments
            .values()
            .filter(|a| a.consumer_key == consumer_key)
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            (&a.resource_link_id, &a.user_id).cmp(&(&b.resource_link_id, &b.user_id))
        });
        Ok(out)
    }
}
