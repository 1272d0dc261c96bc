#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod bundle;
mod cipher;
mod clock;
mod consumer;
mod ephemeral;
mod error;
pub mod import;
mod keys;
mod outbox;
mod provider;
mod registration;
mod secret;
mod shared;

pub use bundle::Store;
pub use cipher::{AppKey, SecretCipher};
pub use clock::{Clock, ManualClock, SystemClock, system_clock};
pub use consumer::{Consumer, ConsumerStore, OAuth1NonceStore, oauth1_nonce_digest};
pub use ephemeral::{
    LaunchDataStore, LaunchState, LaunchStateStore, MAX_ID_LEN, NonceStore, check_expiry, check_id,
};
pub use error::{RegistryError, Result};
pub use keys::{KeyStatus, ToolKey, ToolKeyStore, sort_keys, validate_new_key};
pub use outbox::{
    Delivery, GradeBody, GradeError, GradeKind, GradeLease, GradeOutbox, GradePayload, GradeRecord,
    GradeSender, GradeStatus, GradeStatusCounts, GradeTarget, MAX_GRADE_MESSAGE_CHARS,
    MAX_GRADE_URL_LEN, MAX_RESULT_TEXT_LEN, SubmittedGrade, check_grade, check_grade_version,
    check_lease_request, new_lease_token,
};
pub use provider::{
    AccountId, ContextRecord, GradedAssignment, OutcomeServiceRecord, ProviderStore,
    ResourceRecord, SCOPE_SEPARATOR, SiloId, UserRecord, VisitRecord, assignment_not_found,
    check_provider_ids, check_score_version, permission_bits, permissions_from_bits,
    provider_scope, resource_context_conflict, scope_consumer_key, scope_instance_guid,
};
pub use registration::{
    AutoRegistrationPolicy, CLIENT_ID_PLACEHOLDER, DEFAULT_ALGORITHMS, Deployment,
    DeploymentStatus, KeySource, PlatformRegistration, QuirkProfile, RegistrationKey,
    RegistrationStore, UnknownDeploymentPolicy,
};
pub use secret::SecretString;
pub use shared::{MAX_SHARED_VALUE_LEN, SharedValueStore, check_namespace, check_shared_value};
