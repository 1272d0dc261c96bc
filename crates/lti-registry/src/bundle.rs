//! A bundle of every store trait, as the application wires it.

use std::sync::Arc;

use crate::consumer::{ConsumerStore, OAuth1NonceStore};
use crate::ephemeral::{LaunchDataStore, LaunchStateStore, NonceStore};
use crate::keys::ToolKeyStore;
use crate::outbox::GradeOutbox;
use crate::provider::ProviderStore;
use crate::registration::RegistrationStore;
use crate::shared::SharedValueStore;

/// One handle per store trait; cheap to clone.
///
/// `lti_store::open(url, ..)` builds one from a URL. The fields may come from
/// different backends, e.g. registrations from a SQLite file and launch state
/// and nonces from Redis ([`Store::with_ephemeral_from`]).
#[derive(Clone)]
pub struct Store {
    /// Platform registrations, deployments and auto-registration policies.
    pub registrations: Arc<dyn RegistrationStore>,
    /// OIDC launch state.
    pub launch_states: Arc<dyn LaunchStateStore>,
    /// LTI 1.3 id-token nonces.
    pub nonces: Arc<dyn NonceStore>,
    /// Server-side launch data.
    pub launch_data: Arc<dyn LaunchDataStore>,
    /// The tool's signing keys.
    pub tool_keys: Arc<dyn ToolKeyStore>,
    /// LTI 1.1 consumers.
    pub consumers: Arc<dyn ConsumerStore>,
    /// OAuth 1.0a nonces.
    pub oauth1_nonces: Arc<dyn OAuth1NonceStore>,
    /// The LTI 1.1 tool provider's data model (silos, contexts, resource
    /// links, users, visits, outcome services, graded assignments).
    pub provider: Arc<dyn ProviderStore>,
    /// The durable grade outbox (AGS scores and Basic Outcomes waiting to be
    /// delivered, with their status).
    pub outbox: Arc<dyn GradeOutbox>,
    /// Durable shared values (context grants, settings created once).
    pub shared_values: Arc<dyn SharedValueStore>,
    /// Short-lived shared values (cached service tokens and their fill locks).
    pub cached_values: Arc<dyn SharedValueStore>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Every field served by one backend that implements all traits.
    pub fn from_backend<B>(backend: Arc<B>) -> Self
    where
        B: RegistrationStore
            + LaunchStateStore
            + NonceStore
            + LaunchDataStore
            + ToolKeyStore
            + ConsumerStore
            + OAuth1NonceStore
            + ProviderStore
            + GradeOutbox
            + SharedValueStore
            + 'static,
    {
        Self {
            registrations: backend.clone(),
            launch_states: backend.clone(),
            nonces: backend.clone(),
            launch_data: backend.clone(),
            tool_keys: backend.clone(),
            consumers: backend.clone(),
            oauth1_nonces: backend.clone(),
            provider: backend.clone(),
            outbox: backend.clone(),
            shared_values: backend.clone(),
            cached_values: backend,
        }
    }

    /// Takes the short-lived records (launch state, nonces, launch data,
    /// OAuth 1.0a nonces, cached values) from `other` and keeps the durable
    /// ones (registrations, tool keys, consumers, the provider data model,
    /// the grade outbox, shared values) from `self`.
    #[must_use]
    pub fn with_ephemeral_from(mut self, other: &Store) -> Self {
        self.launch_states = other.launch_states.clone();
        self.nonces = other.nonces.clone();
        self.launch_data = other.launch_data.clone();
        self.oauth1_nonces = other.oauth1_nonces.clone();
        self.cached_values = other.cached_values.clone();
        self
    }

    /// Replaces the registration store (e.g. with a read-only configuration file).
    #[must_use]
    pub fn with_registrations(mut self, registrations: Arc<dyn RegistrationStore>) -> Self {
        self.registrations = registrations;
        self
    }
}
