//! The one error type of this crate and of every store backend.

/// Everything a registry or store operation can fail with.
///
/// Each variant has a stable machine code ([`RegistryError::code`]) and an
/// HTTP status hint ([`RegistryError::status_hint`]). Messages say what was
/// expected and what was found; they never contain secrets, key material,
/// nonces or launch state values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A record looked up by its identifier does not exist (or has expired).
    #[error("{kind} not found: expected a stored {kind} for {id:?}, found none")]
    NotFound {
        /// What was looked up, e.g. `"registration"`, `"consumer"`, `"launch data"`.
        kind: &'static str,
        /// The identifier that was looked up (never a secret).
        id: String,
    },

    /// An issuer-only lookup matched several registrations (several client ids
    /// share the issuer, as on Canvas cloud); the caller must supply a client id.
    #[error(
        "ambiguous issuer {issuer:?}: expected exactly one registration, found {count}; a client_id is required"
    )]
    AmbiguousIssuer {
        /// The issuer that was looked up.
        issuer: String,
        /// How many registrations share it.
        count: usize,
    },

    /// A write would overwrite or contradict an existing record.
    #[error("conflict on {kind} {id:?}: {reason}")]
    Conflict {
        /// The kind of record, e.g. `"registration"`, `"tool key"`.
        kind: &'static str,
        /// Its identifier (never a secret).
        id: String,
        /// What was expected and what was found.
        reason: String,
    },

    /// The nonce was already recorded and has not expired: a replay.
    #[error(
        "nonce replayed: expected a nonce not seen before in namespace {namespace:?}, found one already recorded"
    )]
    NonceReplayed {
        /// The issuer (LTI 1.3) or consumer key (OAuth 1.0a) the nonce belongs to.
        namespace: String,
    },

    /// The launch state is unknown, expired, or was already consumed.
    #[error("launch state not found: expected an unexpired, unconsumed state, found none")]
    StateNotFound,

    /// The deployment id is not known for this registration and the
    /// registration's [`UnknownDeploymentPolicy`](crate::UnknownDeploymentPolicy)
    /// rejects it.
    #[error(
        "unknown deployment {deployment_id:?} for issuer {issuer:?} and client {client_id:?}: expected a registered deployment{}",
        if *recorded_as_pending { " (recorded as pending for review)" } else { "" }
    )]
    UnknownDeployment {
        /// Issuer of the registration.
        issuer: String,
        /// Client id of the registration.
        client_id: String,
        /// The deployment id that was presented.
        deployment_id: String,
        /// Whether the deployment was recorded as pending so an administrator can approve it.
        recorded_as_pending: bool,
    },

    /// The deployment is known but not active (pending approval or disabled).
    #[error("deployment {deployment_id:?} is not active: expected status active, found {status}")]
    DeploymentInactive {
        /// The deployment id.
        deployment_id: String,
        /// Its current status.
        status: crate::DeploymentStatus,
    },

    /// An argument is malformed or out of range.
    #[error("invalid {field}: expected {expected}, found {found}")]
    InvalidInput {
        /// The argument or field name.
        field: &'static str,
        /// What was expected.
        expected: &'static str,
        /// What was found (never a secret).
        found: String,
    },

    /// The backing store cannot be reached or failed; nothing was accepted (fail closed).
    #[error("store unavailable: the {backend} backend failed: {reason}")]
    StoreUnavailable {
        /// Backend name: `"memory"`, `"file"`, `"sqlite"`, `"redis"`, `"postgres"`.
        backend: &'static str,
        /// What went wrong (driver message; never contains credentials).
        reason: String,
    },

    /// The backend does not implement this kind of record; pair it with another backend.
    #[error("the {backend} backend does not store {operation}: {hint}")]
    Unsupported {
        /// Backend name.
        backend: &'static str,
        /// What was asked for, e.g. `"registrations"`.
        operation: &'static str,
        /// How to fix the configuration.
        hint: &'static str,
    },

    /// The backend is read-only (e.g. the configuration-file backend).
    #[error("the {backend} backend is read-only: expected a writable store for {operation}")]
    ReadOnly {
        /// Backend name.
        backend: &'static str,
        /// The write that was attempted.
        operation: &'static str,
    },

    /// A stored record could not be decoded.
    #[error("corrupt {kind} record in the {backend} backend: {reason}")]
    Corrupt {
        /// Backend name.
        backend: &'static str,
        /// Kind of record.
        kind: &'static str,
        /// What was expected and what was found.
        reason: String,
    },

    /// A secret could not be encrypted or decrypted (wrong application key,
    /// unknown key id, tampered ciphertext, or plaintext where ciphertext is required).
    #[error("secret cipher error: {reason}")]
    Cipher {
        /// What was expected and what was found (never key bytes or plaintext).
        reason: String,
    },
}

impl RegistryError {
    /// A stable, machine-readable code for this error.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::AmbiguousIssuer { .. } => "ambiguous_issuer",
            Self::Conflict { .. } => "conflict",
            Self::NonceReplayed { .. } => "nonce_replayed",
            Self::StateNotFound => "state_not_found",
            Self::UnknownDeployment { .. } => "unknown_deployment",
            Self::DeploymentInactive { .. } => "deployment_inactive",
            Self::InvalidInput { .. } => "invalid_input",
            Self::StoreUnavailable { .. } => "store_unavailable",
            Self::Unsupported { .. } => "unsupported",
            Self::ReadOnly { .. } => "read_only",
            Self::Corrupt { .. } => "corrupt_record",
            Self::Cipher { .. } => "cipher",
        }
    }

    /// The HTTP status an adapter should answer with when this error ends a request.
    #[must_use]
    pub fn status_hint(&self) -> u16 {
        match self {
            Self::NotFound { .. } => 404,
            Self::AmbiguousIssuer { .. } | Self::InvalidInput { .. } => 400,
            Self::Conflict { .. } => 409,
            Self::NonceReplayed { .. } | Self::StateNotFound => 401,
            Self::UnknownDeployment { .. } | Self::DeploymentInactive { .. } => 403,
            Self::StoreUnavailable { .. } => 503,
            Self::Unsupported { .. }
            | Self::ReadOnly { .. }
            | Self::Corrupt { .. }
            | Self::Cipher { .. } => 500,
        }
    }

    /// Builds a [`RegistryError::StoreUnavailable`] from any driver error.
    pub fn unavailable(backend: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::StoreUnavailable {
            backend,
            reason: reason.to_string(),
        }
    }

    /// Builds a [`RegistryError::NotFound`].
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            id: id.into(),
        }
    }
}

/// Shorthand for results of registry and store operations.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
