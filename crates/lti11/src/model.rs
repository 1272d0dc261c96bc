//! The tool provider's data model: silos, contexts, resource links, users
//! mapped to application accounts, visits, outcome services and graded
//! assignments.
//!
//! [`ProviderStore`] (defined in `lti-registry`, re-exported here with its
//! records) is the storage seam: small, record-level, async. Backends live
//! in `lti-store` (`MemoryProviderStore`, and the memory, SQLite and
//! PostgreSQL stores behind `Store::provider`). [`ProviderModel`] holds the
//! rules, so every backend gets them:
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
//! - permission bits come from the roles (`lti-message`'s policy);
//! - several processes sending scores for one assignment agree on the newest
//!   through [`ProviderModel::claim_score_version`];
//! - records are kept per consumer key *and* `tool_consumer_instance_guid`
//!   when the consumer sends one ([`provider_scope`]), so two LMS instances
//!   sharing a key never mix users, visits, outcome services or grades
//!   ([`ProviderModel::keyed_by_consumer_only`] turns that off for data
//!   recorded before it); the silo stays per consumer key.

use std::sync::Arc;

use lti_message::roles::{DefaultPermissionPolicy, PermissionPolicy};
use lti_registry::{Clock, RegistryError, SystemClock};

pub use lti_message::Permissions;
pub use lti_registry::{
    AccountId, ContextRecord, GradedAssignment, OutcomeServiceRecord, ProviderStore,
    ResourceRecord, SiloId, UserRecord, VisitRecord, provider_scope, scope_consumer_key,
    scope_instance_guid,
};

use crate::error::{Error, Result};
use crate::verify::Launch;

impl From<&GradedAssignment> for crate::verify::OutcomeTarget {
    fn from(a: &GradedAssignment) -> Self {
        crate::verify::OutcomeTarget {
            service_url: a.service_url.clone(),
            sourced_id: a.sourced_id.clone(),
        }
    }
}

/// The longest `tool_consumer_instance_guid` the model keys records by.
pub const MAX_INSTANCE_GUID_LEN: usize = 255;

fn store(source: RegistryError) -> Error {
    Error::Store { source }
}

/// What a launch did to the data model.
#[derive(Debug, Clone)]
pub struct LaunchRecord {
    /// The provider scope the records are keyed by ([`provider_scope`]).
    pub scope: String,
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
    per_instance: bool,
}

impl<S: ProviderStore> ProviderModel<S> {
    /// A model over a store, with the system clock and the default permission policy.
    pub fn new(store: S) -> Self {
        ProviderModel {
            store,
            clock: Arc::new(SystemClock),
            policy: Arc::new(DefaultPermissionPolicy),
            per_instance: true,
        }
    }

    /// Keys the records by consumer key alone, ignoring
    /// `tool_consumer_instance_guid` (for data recorded before records were
    /// kept per instance; two LMS instances sharing a key then share users,
    /// visits and outcome services).
    #[must_use]
    pub fn keyed_by_consumer_only(mut self) -> Self {
        self.per_instance = false;
        self
    }

    /// The provider scope of a launch: its consumer key, with the
    /// `tool_consumer_instance_guid` it sent unless
    /// [`keyed_by_consumer_only`](Self::keyed_by_consumer_only).
    pub fn scope_of(&self, launch: &Launch) -> String {
        let guid = self
            .per_instance
            .then(|| launch.param("tool_consumer_instance_guid"))
            .flatten();
        provider_scope(launch.consumer_key(), guid)
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
    ///
    /// # Errors
    /// [`Error::ResourceContextChanged`] (409), [`Error::InvalidParameter`]
    /// for a `tool_consumer_instance_guid` over 255 bytes, [`Error::Store`].
    pub async fn record_launch(&self, launch: &Launch, session: &str) -> Result<LaunchRecord> {
        if let Some(guid) = launch.param("tool_consumer_instance_guid")
            && guid.len() > MAX_INSTANCE_GUID_LEN
        {
            return Err(Error::InvalidParameter {
                name: "tool_consumer_instance_guid",
                expected: "at most 255 bytes",
                found: format!("{} bytes", guid.len()),
            });
        }
        let now = self.clock.now();
        let scope = self.scope_of(launch);
        let key = scope.as_str();
        let p = launch.params();
        let opt = |n: &str| p.get(n).map(str::to_owned);
        let silo = self
            .store
            .silo_of(launch.consumer_key())
            .await
            .map_err(store)?
            .unwrap_or_else(|| SiloId::of_consumer(launch.consumer_key()));

        let sent_context = launch.context_id();
        let wanted = ResourceRecord {
            silo: silo.clone(),
            consumer_key: key.to_owned(),
            resource_link_id: launch.resource_link_id().to_owned(),
            context_id: sent_context.map(str::to_owned),
            title: opt("resource_link_title"),
            created_at: now,
        };
        let mut resource = self.store.insert_resource(&wanted).await.map_err(store)?;
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
            self.store.put_resource(&resource).await.map_err(store)?;
        }

        let context = match resource.context_id.clone() {
            Some(context_id) => {
                let stored = self
                    .store
                    .get_context(key, &context_id)
                    .await
                    .map_err(store)?;
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
                    self.store.put_context(&record).await.map_err(store)?;
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
                let stored = self.store.insert_user(&fresh).await.map_err(store)?;
                account_created = stored.account == fresh.account;
                let mut record = stored.clone();
                refresh(&mut record.name_full, fresh.name_full);
                refresh(&mut record.name_given, fresh.name_given);
                refresh(&mut record.name_family, fresh.name_family);
                refresh(&mut record.email, fresh.email);
                refresh(&mut record.sourced_id, fresh.sourced_id);
                if record != stored {
                    record.updated_at = now;
                    self.store.put_user(&record).await.map_err(store)?;
                }
                Some(record)
            }
            None => None,
        };

        let permissions = launch.roles().permissions_with(self.policy.as_ref());
        let user_id = launch.user_id();
        let ended_visits = self
            .store
            .end_visits(session, key, user_id, now)
            .await
            .map_err(store)?;
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
            .await
            .map_err(store)?;

        let assignment = match (launch.outcome_target(), user_id) {
            (Some(target), Some(user_id)) => {
                self.store
                    .put_outcome_service(&OutcomeServiceRecord {
                        consumer_key: key.to_owned(),
                        service_url: target.service_url.clone(),
                    })
                    .await
                    .map_err(store)?;
                let record = GradedAssignment {
                    consumer_key: key.to_owned(),
                    resource_link_id: resource.resource_link_id.clone(),
                    user_id: user_id.to_owned(),
                    sourced_id: target.sourced_id,
                    service_url: target.service_url,
                    created_at: now,
                    score_version: 0,
                };
                Some(self.store.upsert_assignment(&record).await.map_err(store)?)
            }
            _ => None,
        };

        Ok(LaunchRecord {
            scope,
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

impl<S: ProviderStore> ProviderModel<S> {
    /// Claims `version` as the newest score of `assignment` across every
    /// process sharing the store: `true` when it is newer than any version
    /// claimed before (send it), `false` when a newer score was claimed
    /// first (drop this one). Versions must grow per assignment, e.g. a
    /// [`ScoreQueue`](crate::ScoreQueue) version or a timestamp.
    ///
    /// [`Error::NotFound`] when the assignment is not stored.
    pub async fn claim_score_version(
        &self,
        assignment: &GradedAssignment,
        version: u64,
    ) -> Result<bool> {
        self.store
            .advance_score_version(
                &assignment.consumer_key,
                &assignment.resource_link_id,
                &assignment.user_id,
                version,
            )
            .await
            .map_err(|e| match e {
                RegistryError::NotFound { .. } => Error::NotFound {
                    entity: "graded assignment",
                },
                other => store(other),
            })
    }
}

fn refresh(slot: &mut Option<String>, sent: Option<String>) {
    if sent.is_some() {
        *slot = sent;
    }
}
