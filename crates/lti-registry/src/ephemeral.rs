//! Short-lived records: OIDC launch state, id-token nonces and server-side launch data.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, Result};

/// The longest identifier (state, nonce, launch id, key) a store accepts, in bytes.
pub const MAX_ID_LEN: usize = 1024;

/// Checks that an identifier is non-empty and at most [`MAX_ID_LEN`] bytes.
pub fn check_id(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(RegistryError::InvalidInput {
            field,
            expected: "a non-empty string",
            found: "an empty string".to_owned(),
        });
    }
    if value.len() > MAX_ID_LEN {
        return Err(RegistryError::InvalidInput {
            field,
            expected: "at most 1024 bytes",
            found: format!("{} bytes", value.len()),
        });
    }
    Ok(())
}

/// Checks that `expires_at` lies in the future of `now`.
pub fn check_expiry(field: &'static str, expires_at: i64, now: i64) -> Result<()> {
    if expires_at <= now {
        return Err(RegistryError::InvalidInput {
            field,
            expected: "an expiry in the future",
            found: format!("{expires_at} (now is {now})"),
        });
    }
    Ok(())
}

/// What the tool remembers between the OIDC login initiation and the launch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LaunchState {
    /// The opaque `state` value sent to the platform.
    pub state: String,
    /// The `nonce` the id token must carry.
    pub nonce: String,
    /// Issuer of the registration the login was for.
    pub issuer: String,
    /// Client id of the registration the login was for.
    pub client_id: String,
    /// The `target_link_uri` of the login request.
    pub target_link_uri: String,
    /// `lti_deployment_id` of the login request, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// When the state was created (unix seconds).
    pub created_at: i64,
    /// When it stops being valid (unix seconds).
    pub expires_at: i64,
    /// Further values a flow wants back at launch time.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl LaunchState {
    /// A launch state valid for `ttl_seconds` from `created_at`.
    #[must_use]
    pub fn new(
        state: impl Into<String>,
        nonce: impl Into<String>,
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        target_link_uri: impl Into<String>,
        created_at: i64,
        ttl_seconds: i64,
    ) -> Self {
        Self {
            state: state.into(),
            nonce: nonce.into(),
            issuer: issuer.into(),
            client_id: client_id.into(),
            target_link_uri: target_link_uri.into(),
            deployment_id: None,
            created_at,
            expires_at: created_at.saturating_add(ttl_seconds),
            extra: BTreeMap::new(),
        }
    }

    /// Checks the identifiers and that the state expires after `now`.
    pub fn validate(&self, now: i64) -> Result<()> {
        check_id("state", &self.state)?;
        check_id("nonce", &self.nonce)?;
        check_id("issuer", &self.issuer)?;
        check_id("client_id", &self.client_id)?;
        check_expiry("expires_at", self.expires_at, now)
    }
}

/// OIDC launch state, consumed exactly once.
///
/// Invariants every implementation keeps:
/// - `consume_state` returns a saved, unexpired state at most once, even
///   under concurrent calls from several processes sharing the backend;
///   every other call gets `StateNotFound` (unknown, expired or consumed —
///   deliberately indistinguishable);
/// - `save_state` never overwrites an unexpired state (`Conflict`).
#[async_trait]
pub trait LaunchStateStore: Send + Sync {
    /// Saves a state until its `expires_at`.
    async fn save_state(&self, state: &LaunchState) -> Result<()>;

    /// Removes and returns the state atomically.
    async fn consume_state(&self, state: &str) -> Result<LaunchState>;
}

/// Single-use id-token nonces (LTI 1.3).
///
/// Invariant: for a given (issuer, nonce), exactly one `record_nonce` call
/// succeeds until `expires_at` has passed; all others fail with
/// `NonceReplayed`, including concurrent calls from several processes. After
/// expiry the nonce may be recorded again (the token carrying it has expired too).
#[async_trait]
pub trait NonceStore: Send + Sync {
    /// Records a nonce; `NonceReplayed` if it is already recorded and unexpired;
    /// `InvalidInput` if `expires_at` is not in the future.
    async fn record_nonce(&self, issuer: &str, nonce: &str, expires_at: i64) -> Result<()>;
}

/// A verified launch kept server-side under an opaque id.
///
/// Invariant: `load_launch` returns the saved value until `expires_at`, then
/// `NotFound`; `save_launch` under an existing id replaces the value.
#[async_trait]
pub trait LaunchDataStore: Send + Sync {
    /// Saves (or replaces) `data` under `launch_id` until `expires_at`. The value is
    /// taken by value: an in-process store keeps it without a copy.
    async fn save_launch(
        &self,
        launch_id: &str,
        data: serde_json::Value,
        expires_at: i64,
    ) -> Result<()>;

    /// The data saved under `launch_id`; `NotFound` if absent or expired.
    async fn load_launch(&self, launch_id: &str) -> Result<serde_json::Value>;

    /// Deletes the data; returns whether something was deleted.
    async fn delete_launch(&self, launch_id: &str) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_with_past_expiry_is_invalid() {
        let s = LaunchState::new("s", "n", "i", "c", "https://t", 100, 0);
        assert!(matches!(
            s.validate(100).unwrap_err(),
            RegistryError::InvalidInput {
                field: "expires_at",
                ..
            }
        ));
        let s = LaunchState::new("s", "n", "i", "c", "https://t", 100, 300);
        s.validate(100).unwrap();
    }

    #[test]
    fn oversized_or_empty_ids_are_rejected() {
        assert!(matches!(
            check_id("nonce", &"x".repeat(MAX_ID_LEN + 1)).unwrap_err(),
            RegistryError::InvalidInput {
                field: "nonce",
                expected: "at most 1024 bytes",
                ..
            }
        ));
        assert!(matches!(
            check_id("nonce", "").unwrap_err(),
            RegistryError::InvalidInput {
                field: "nonce",
                expected: "a non-empty string",
                ..
            }
        ));
    }
}
