//! The LTI 1.1 tool provider's data model as records and a storage trait:
//! silos, contexts, resource links, users mapped to application accounts,
//! visits, outcome services and graded assignments.
//!
//! [`ProviderStore`] stores records; the spec's rules (which record a launch
//! creates or refreshes, when a resource link changing context is an error)
//! live above it, in `lti11::ProviderModel`, so every backend gets them. The
//! invariants that must hold even between concurrent writers in several
//! processes are the store's job and are listed on the trait.
//!
//! Records are keyed by a *provider scope* ([`provider_scope`]): the consumer
//! key, or the consumer key and the `tool_consumer_instance_guid` the
//! consumer sends, so two LMS instances sharing one key keep apart their
//! users, contexts, visits, outcome services and graded assignments (Open
//! edX's provider keys its outcome services the same way). The records'
//! `consumer_key` fields hold that scope; [`scope_consumer_key`] gives back
//! the key to sign with.

use async_trait::async_trait;
use lti_message::Permissions;

use crate::ephemeral::check_id;
use crate::error::{RegistryError, Result};

/// What separates the consumer key from the instance GUID in a provider
/// scope (U+001F, which a consumer key, printable ASCII, never contains).
pub const SCOPE_SEPARATOR: char = '\u{1f}';

/// The provider scope of a launch from `consumer_key`: the key itself, or
/// the key, [`SCOPE_SEPARATOR`] and `instance_guid` when the consumer sent a
/// non-empty `tool_consumer_instance_guid`.
#[must_use]
pub fn provider_scope(consumer_key: &str, instance_guid: Option<&str>) -> String {
    match instance_guid.filter(|g| !g.is_empty()) {
        Some(guid) => format!("{consumer_key}{SCOPE_SEPARATOR}{guid}"),
        None => consumer_key.to_owned(),
    }
}

/// The consumer key of a provider scope (the key to sign outcomes with).
#[must_use]
pub fn scope_consumer_key(scope: &str) -> &str {
    scope.split(SCOPE_SEPARATOR).next().unwrap_or(scope)
}

/// The `tool_consumer_instance_guid` of a provider scope, when it has one.
#[must_use]
pub fn scope_instance_guid(scope: &str) -> Option<&str> {
    scope.split_once(SCOPE_SEPARATOR).map(|(_, guid)| guid)
}

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
    /// The provider scope ([`provider_scope`]: the consumer key, or the key and the instance GUID).
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
    /// The provider scope ([`provider_scope`]: the consumer key, or the key and the instance GUID).
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
    /// The provider scope ([`provider_scope`]: the consumer key, or the key and the instance GUID).
    pub consumer_key: String,
    /// `user_id`.
    pub user_id: String,
    /// The application account (set once, when the user is first stored).
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
    /// The provider scope ([`provider_scope`]: the consumer key, or the key and the instance GUID).
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
    /// The provider scope ([`provider_scope`]: the consumer key, or the key and the instance GUID).
    pub consumer_key: String,
    /// `lis_outcome_service_url`.
    pub service_url: String,
}

/// One graded assignment per (consumer, resource link, user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradedAssignment {
    /// The provider scope ([`provider_scope`]: the consumer key, or the key and the instance GUID).
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
    /// The newest score version recorded with
    /// [`ProviderStore::advance_score_version`]; 0 before the first score.
    /// [`ProviderStore::upsert_assignment`] ignores the value it is given
    /// and keeps the stored one.
    pub score_version: u64,
}

/// Encodes permission bits for storage: read 1, write 2, configure 4.
#[must_use]
pub fn permission_bits(p: Permissions) -> i64 {
    i64::from(p.read) | (i64::from(p.write) << 1) | (i64::from(p.configure) << 2)
}

/// Decodes [`permission_bits`]; `None` when bits outside 0..=7 are set.
#[must_use]
pub fn permissions_from_bits(bits: i64) -> Option<Permissions> {
    (0..=7).contains(&bits).then_some(Permissions {
        read: bits & 1 != 0,
        write: bits & 2 != 0,
        configure: bits & 4 != 0,
    })
}

/// Checks a score version for storage (SQL keeps it in a signed 64-bit column).
pub fn check_score_version(version: u64) -> Result<i64> {
    i64::try_from(version).map_err(|_| RegistryError::InvalidInput {
        field: "score version",
        expected: "at most 9223372036854775807",
        found: version.to_string(),
    })
}

/// Checks the identifiers every provider record is keyed by (non-empty, at
/// most [`MAX_ID_LEN`](crate::MAX_ID_LEN) bytes); each backend calls it
/// before writing, so bad input is the same `InvalidInput` everywhere.
pub fn check_provider_ids(ids: &[(&'static str, &str)]) -> Result<()> {
    ids.iter()
        .try_for_each(|(field, value)| check_id(field, value))
}

/// The error for a resource link whose bound context a write tried to change.
pub fn resource_context_conflict(
    resource_link_id: &str,
    bound: Option<&str>,
    found: Option<&str>,
) -> RegistryError {
    RegistryError::Conflict {
        kind: "resource link",
        id: resource_link_id.to_owned(),
        reason: format!(
            "a resource link is bound to its first context forever: expected context {}, found {}",
            bound.unwrap_or("(none)"),
            found.unwrap_or("(none)")
        ),
    }
}

/// Record-level storage for the provider data model. Implementations keep
/// the data; `lti11::ProviderModel` applies the launch rules.
///
/// Keys (the "consumer" is the [`provider_scope`]): contexts (consumer, context_id); resources (consumer,
/// resource_link_id); users (consumer, user_id); visits (session, consumer,
/// resource_link_id); assignments (consumer, resource_link_id, user_id);
/// silos and outcome services (consumer).
///
/// Invariants every implementation keeps, also between concurrent writers in
/// several processes sharing the backend:
/// - `insert_*` calls are atomic "insert if absent" and return the stored
///   record (an existing one wins), so two first launches create one
///   resource link and one account;
/// - a resource link's context never changes: [`put_resource`](Self::put_resource)
///   with another context fails with [`RegistryError::Conflict`] (kind
///   `"resource link"`); a user's account never changes;
/// - there is at most one assignment per key;
/// - an assignment's score version only grows
///   ([`advance_score_version`](Self::advance_score_version) is one
///   conditional write).
///
/// Writes reject empty or over-long identifiers with
/// [`RegistryError::InvalidInput`].
#[async_trait]
pub trait ProviderStore: Send + Sync {
    /// The silo a consumer belongs to, if assigned.
    async fn silo_of(&self, consumer_key: &str) -> Result<Option<SiloId>>;
    /// Assigns a consumer to a silo (replacing an earlier assignment).
    async fn assign_silo(&self, consumer_key: &str, silo: &SiloId) -> Result<()>;
    /// A context.
    async fn get_context(
        &self,
        consumer_key: &str,
        context_id: &str,
    ) -> Result<Option<ContextRecord>>;
    /// Stores (inserts or replaces) a context.
    async fn put_context(&self, record: &ContextRecord) -> Result<()>;
    /// A resource link.
    async fn get_resource(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
    ) -> Result<Option<ResourceRecord>>;
    /// Inserts a resource link if absent; returns the stored one.
    async fn insert_resource(&self, record: &ResourceRecord) -> Result<ResourceRecord>;
    /// Updates a stored resource link's title. `NotFound` when absent;
    /// `Conflict` when `record.context_id` is not the bound context.
    async fn put_resource(&self, record: &ResourceRecord) -> Result<()>;
    /// A user.
    async fn get_user(&self, consumer_key: &str, user_id: &str) -> Result<Option<UserRecord>>;
    /// Inserts a user if absent; returns the stored one (with its account).
    async fn insert_user(&self, record: &UserRecord) -> Result<UserRecord>;
    /// Updates a stored user's details and `updated_at`, keeping its silo
    /// and account. `NotFound` when absent.
    async fn put_user(&self, record: &UserRecord) -> Result<()>;
    /// Stores (inserts or replaces) a visit.
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
    /// The open visits of a session, ordered by consumer then resource link.
    async fn open_visits(&self, session: &str) -> Result<Vec<VisitRecord>>;
    /// Stores (inserts or replaces) a consumer's outcome service.
    async fn put_outcome_service(&self, record: &OutcomeServiceRecord) -> Result<()>;
    /// A consumer's outcome service.
    async fn get_outcome_service(&self, consumer_key: &str)
    -> Result<Option<OutcomeServiceRecord>>;
    /// Inserts the assignment for its key, or updates the stored one's
    /// `sourced_id` and `service_url` (keeping `created_at` and
    /// `score_version`); returns the stored one.
    async fn upsert_assignment(&self, record: &GradedAssignment) -> Result<GradedAssignment>;
    /// One assignment.
    async fn get_assignment(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
        user_id: &str,
    ) -> Result<Option<GradedAssignment>>;
    /// Every assignment of a consumer, ordered by resource link then user.
    async fn list_assignments(&self, consumer_key: &str) -> Result<Vec<GradedAssignment>>;
    /// Records `version` as the assignment's score version when it is newer
    /// than the stored one, in one conditional write; returns whether it was
    /// (`false`: a newer score was recorded first, so this one must not be
    /// sent). `NotFound` when the assignment does not exist; `InvalidInput`
    /// for a version above `i64::MAX`.
    async fn advance_score_version(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
        user_id: &str,
        version: u64,
    ) -> Result<bool>;
}

/// The `NotFound` error for an assignment key.
pub fn assignment_not_found(
    consumer_key: &str,
    resource_link_id: &str,
    user_id: &str,
) -> RegistryError {
    RegistryError::not_found(
        "graded assignment",
        format!("{consumer_key} / {resource_link_id} / {user_id}"),
    )
}

/// A shared store is a store: `ProviderModel<Arc<dyn ProviderStore>>` runs
/// over `lti_registry::Store::provider`.
#[async_trait]
impl<T: ProviderStore + ?Sized> ProviderStore for std::sync::Arc<T> {
    async fn silo_of(&self, consumer_key: &str) -> Result<Option<SiloId>> {
        (**self).silo_of(consumer_key).await
    }
    async fn assign_silo(&self, consumer_key: &str, silo: &SiloId) -> Result<()> {
        (**self).assign_silo(consumer_key, silo).await
    }
    async fn get_context(&self, consumer_key: &str, id: &str) -> Result<Option<ContextRecord>> {
        (**self).get_context(consumer_key, id).await
    }
    async fn put_context(&self, record: &ContextRecord) -> Result<()> {
        (**self).put_context(record).await
    }
    async fn get_resource(&self, consumer_key: &str, id: &str) -> Result<Option<ResourceRecord>> {
        (**self).get_resource(consumer_key, id).await
    }
    async fn insert_resource(&self, record: &ResourceRecord) -> Result<ResourceRecord> {
        (**self).insert_resource(record).await
    }
    async fn put_resource(&self, record: &ResourceRecord) -> Result<()> {
        (**self).put_resource(record).await
    }
    async fn get_user(&self, consumer_key: &str, user_id: &str) -> Result<Option<UserRecord>> {
        (**self).get_user(consumer_key, user_id).await
    }
    async fn insert_user(&self, record: &UserRecord) -> Result<UserRecord> {
        (**self).insert_user(record).await
    }
    async fn put_user(&self, record: &UserRecord) -> Result<()> {
        (**self).put_user(record).await
    }
    async fn put_visit(&self, record: &VisitRecord) -> Result<()> {
        (**self).put_visit(record).await
    }
    async fn end_visits(
        &self,
        session: &str,
        consumer_key: &str,
        keep_user: Option<&str>,
        now: i64,
    ) -> Result<u64> {
        (**self)
            .end_visits(session, consumer_key, keep_user, now)
            .await
    }
    async fn open_visits(&self, session: &str) -> Result<Vec<VisitRecord>> {
        (**self).open_visits(session).await
    }
    async fn put_outcome_service(&self, record: &OutcomeServiceRecord) -> Result<()> {
        (**self).put_outcome_service(record).await
    }
    async fn get_outcome_service(
        &self,
        consumer_key: &str,
    ) -> Result<Option<OutcomeServiceRecord>> {
        (**self).get_outcome_service(consumer_key).await
    }
    async fn upsert_assignment(&self, record: &GradedAssignment) -> Result<GradedAssignment> {
        (**self).upsert_assignment(record).await
    }
    async fn get_assignment(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
        user_id: &str,
    ) -> Result<Option<GradedAssignment>> {
        (**self)
            .get_assignment(consumer_key, resource_link_id, user_id)
            .await
    }
    async fn list_assignments(&self, consumer_key: &str) -> Result<Vec<GradedAssignment>> {
        (**self).list_assignments(consumer_key).await
    }
    async fn advance_score_version(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
        user_id: &str,
        version: u64,
    ) -> Result<bool> {
        (**self)
            .advance_score_version(consumer_key, resource_link_id, user_id, version)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_keeps_the_key_and_the_instance_apart() {
        assert_eq!(provider_scope("k", None), "k");
        assert_eq!(provider_scope("k", Some("")), "k");
        let scoped = provider_scope("k", Some("lms.example"));
        assert_ne!(scoped, "k");
        assert_eq!(scope_consumer_key(&scoped), "k");
        assert_eq!(scope_instance_guid(&scoped), Some("lms.example"));
        assert_eq!(scope_consumer_key("k"), "k");
        assert_eq!(scope_instance_guid("k"), None);
        assert_ne!(scoped, provider_scope("k", Some("other.example")));
    }

    #[test]
    fn permission_bits_round_trip_and_reject_unknown_bits() {
        for p in [
            Permissions::NONE,
            Permissions::READ,
            Permissions::READ_WRITE,
            Permissions::ALL,
        ] {
            assert_eq!(permissions_from_bits(permission_bits(p)), Some(p));
        }
        assert_eq!(permissions_from_bits(8), None);
        assert_eq!(permissions_from_bits(-1), None);
    }

    #[test]
    fn oversized_score_version_is_invalid_input() {
        assert_eq!(check_score_version(7).unwrap(), 7);
        let err = check_score_version(u64::MAX).unwrap_err();
        assert_eq!(err.code(), "invalid_input");
    }

    #[test]
    fn empty_provider_id_is_invalid_input() {
        let err = check_provider_ids(&[("consumer key", "k"), ("user_id", "")]).unwrap_err();
        assert!(matches!(
            err,
            RegistryError::InvalidInput {
                field: "user_id",
                ..
            }
        ));
    }

    #[test]
    fn context_conflict_names_both_contexts() {
        let err = resource_context_conflict("rl", Some("c1"), Some("c2"));
        assert_eq!(err.code(), "conflict");
        let msg = err.to_string();
        assert!(msg.contains("expected context c1, found c2"), "{msg}");
    }
}
