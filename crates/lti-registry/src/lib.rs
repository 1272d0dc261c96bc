#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod bundle;
mod cipher;
mod clock;
mod consumer;
mod ephemeral;
mod error;
mod keys;
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
pub use provider::{
    AccountId, ContextRecord, GradedAssignment, OutcomeServiceRecord, ProviderStore,
    ResourceRecord, SiloId, UserRecord, VisitRecord, assignment_not_found, check_provider_ids,
    check_score_version, permission_bits, permissions_from_bits, resource_context_conflict,
};
pub use registration::{
    AutoRegistrationPolicy, CLIENT_ID_PLACEHOLDER, DEFAULT_ALGORITHMS, Deployment,
    DeploymentStatus, KeySource, PlatformRegistration, QuirkProfile, RegistrationKey,
    RegistrationStore, UnknownDeploymentPolicy,
};
pub use secret::SecretString;
pub use shared::{MAX_SHARED_VALUE_LEN, SharedValueStore, check_namespace, check_shared_value};
