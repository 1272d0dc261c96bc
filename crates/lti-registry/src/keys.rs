//! The tool's own signing keys and their rotation.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, Result};
use crate::secret::SecretString;

/// Where a tool key is in its rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyStatus {
    /// Published in the JWKS but not yet used to sign.
    Next,
    /// Published and used to sign. At most one key is active.
    Active,
    /// No longer used to sign; published during the overlap, then purged.
    Retired,
}

impl KeyStatus {
    /// The status' lower-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }

    /// Parses a name produced by [`KeyStatus::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "next" => Ok(Self::Next),
            "active" => Ok(Self::Active),
            "retired" => Ok(Self::Retired),
            _ => Err(RegistryError::InvalidInput {
                field: "key status",
                expected: "next, active or retired",
                found: s.to_owned(),
            }),
        }
    }
}

impl std::fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of the tool's signing keys.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolKey {
    /// The JWK `kid`.
    pub kid: String,
    /// The JWS algorithm, e.g. `"RS256"`.
    pub alg: String,
    /// The private key as PKCS#8 PEM (encrypted at rest by the store).
    pub private_key_pem: SecretString,
    /// Rotation status.
    pub status: KeyStatus,
    /// When the key was added (unix seconds).
    pub created_at: i64,
    /// When it became active.
    pub activated_at: Option<i64>,
    /// When it was retired.
    pub retired_at: Option<i64>,
}

impl ToolKey {
    /// A key with no activation or retirement time yet.
    #[must_use]
    pub fn new(
        kid: impl Into<String>,
        alg: impl Into<String>,
        private_key_pem: SecretString,
        status: KeyStatus,
        created_at: i64,
    ) -> Self {
        Self {
            kid: kid.into(),
            alg: alg.into(),
            private_key_pem,
            status,
            created_at,
            activated_at: None,
            retired_at: None,
        }
    }
}

/// Checks a new key's kid, algorithm and PEM framing (not the key itself:
/// parsing is `lti-jose`'s job).
pub fn validate_new_key(kid: &str, alg: &str, private_key_pem: &SecretString) -> Result<()> {
    crate::ephemeral::check_id("kid", kid)?;
    crate::registration::non_empty("alg", alg)?;
    let pem = private_key_pem.expose().trim();
    if !pem.starts_with("-----BEGIN PRIVATE KEY-----")
        || !pem.ends_with("-----END PRIVATE KEY-----")
    {
        return Err(RegistryError::InvalidInput {
            field: "private_key_pem",
            expected: "a PKCS#8 PEM block (-----BEGIN PRIVATE KEY-----)",
            found: "other text".to_owned(),
        });
    }
    Ok(())
}

/// Storage of the tool's signing keys.
///
/// Invariants every implementation keeps:
/// - kids are unique; at most one key is `Next` and at most one is `Active`;
/// - [`ToolKeyStore::promote_next_key`] atomically makes the next key active
///   and the previously active key (if any) retired, stamping the times;
/// - private keys are encrypted at rest with the store's
///   [`SecretCipher`](crate::SecretCipher).
#[async_trait]
pub trait ToolKeyStore: Send + Sync {
    /// Adds a `Next` key (published at once, not yet signing); `Conflict` if
    /// the kid exists or a next key is already waiting. The first key of an
    /// empty store is also added as `Next`: promote it to start signing.
    async fn add_next_key(
        &self,
        kid: &str,
        alg: &str,
        private_key_pem: &SecretString,
    ) -> Result<ToolKey>;

    /// Next → active and active → retired, atomically; returns the new active
    /// key. `NotFound` if no next key exists.
    async fn promote_next_key(&self) -> Result<ToolKey>;

    /// The key to sign with; `NotFound` if none is active.
    async fn active_key(&self) -> Result<ToolKey>;

    /// The keys for the public JWKS: the active key, the next key, and
    /// retired keys whose `retired_at` is within the last
    /// `retired_overlap_seconds`. Ordered active, next, then retired newest first.
    async fn published_keys(&self, retired_overlap_seconds: i64) -> Result<Vec<ToolKey>>;

    /// Every stored key, in the same order as [`Self::published_keys`].
    async fn list_keys(&self) -> Result<Vec<ToolKey>>;

    /// Deletes retired keys with `retired_at < retired_before`; returns how many.
    async fn purge_retired_keys(&self, retired_before: i64) -> Result<u64>;
}

/// Sorts keys as [`ToolKeyStore::published_keys`] documents: active, next,
/// then retired newest first (ties by kid).
pub fn sort_keys(keys: &mut [ToolKey]) {
    fn rank(s: KeyStatus) -> u8 {
        match s {
            KeyStatus::Active => 0,
            KeyStatus::Next => 1,
            KeyStatus::Retired => 2,
        }
    }
    keys.sort_by(|a, b| {
        rank(a.status)
            .cmp(&rank(b.status))
            .then(b.retired_at.cmp(&a.retired_at))
            .then(a.kid.cmp(&b.kid))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_pkcs8_pem_is_rejected() {
        let pem = SecretString::new(
            "-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----",
        );
        assert!(matches!(
            validate_new_key("k1", "RS256", &pem).unwrap_err(),
            RegistryError::InvalidInput {
                field: "private_key_pem",
                ..
            }
        ));
        let pem =
            SecretString::new("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n");
        validate_new_key("k1", "RS256", &pem).unwrap();
        assert!(matches!(
            validate_new_key("k1", "", &pem).unwrap_err(),
            RegistryError::InvalidInput { field: "alg", .. }
        ));
    }

    #[test]
    fn key_status_round_trips_and_rejects_unknown() {
        for s in [KeyStatus::Next, KeyStatus::Active, KeyStatus::Retired] {
            assert_eq!(KeyStatus::parse(s.as_str()).unwrap(), s);
        }
        assert_eq!(KeyStatus::parse("old").unwrap_err().code(), "invalid_input");
    }
}
