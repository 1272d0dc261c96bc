//! LTI 1.1 tool consumers and OAuth 1.0a nonces.

use async_trait::async_trait;

use crate::error::{RegistryError, Result};
use crate::secret::SecretString;

/// An LTI 1.0/1.1 tool consumer (a platform that signs launches with OAuth 1.0a).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Consumer {
    /// The OAuth consumer key (unique).
    pub key: String,
    /// The shared secret (encrypted at rest by the store).
    pub secret: SecretString,
    /// A display name.
    pub name: String,
    /// `tool_consumer_instance_guid`, once known (unique when set).
    pub instance_guid: Option<String>,
    /// When the consumer was added (unix seconds).
    pub created_at: i64,
}

impl Consumer {
    /// A consumer without an instance GUID.
    #[must_use]
    pub fn new(
        key: impl Into<String>,
        secret: impl Into<SecretString>,
        name: impl Into<String>,
        created_at: i64,
    ) -> Self {
        Self {
            key: key.into(),
            secret: secret.into(),
            name: name.into(),
            instance_guid: None,
            created_at,
        }
    }

    /// Checks the key, secret and GUID.
    pub fn validate(&self) -> Result<()> {
        crate::ephemeral::check_id("consumer key", &self.key)?;
        if self.secret.is_empty() {
            return Err(RegistryError::InvalidInput {
                field: "consumer secret",
                expected: "a non-empty secret",
                found: "an empty string".to_owned(),
            });
        }
        if let Some(guid) = &self.instance_guid {
            crate::ephemeral::check_id("instance_guid", guid)?;
        }
        Ok(())
    }
}

/// Storage of LTI 1.1 consumers.
///
/// Invariants every implementation keeps: consumer keys are unique; an
/// instance GUID belongs to at most one consumer; once recorded, a
/// consumer's GUID is never silently replaced by
/// [`ConsumerStore::record_instance_guid`]; secrets are encrypted at rest
/// with the store's [`SecretCipher`](crate::SecretCipher).
#[async_trait]
pub trait ConsumerStore: Send + Sync {
    /// Adds a consumer; `Conflict` if the key (or its GUID) is taken.
    async fn insert_consumer(&self, consumer: &Consumer) -> Result<()>;

    /// Replaces the consumer with the same key; `NotFound` if absent,
    /// `Conflict` if its GUID belongs to another consumer.
    async fn update_consumer(&self, consumer: &Consumer) -> Result<()>;

    /// The consumer with this key; `NotFound` if absent.
    async fn get_consumer(&self, key: &str) -> Result<Consumer>;

    /// The consumer with this instance GUID, if any.
    async fn find_consumer_by_guid(&self, instance_guid: &str) -> Result<Option<Consumer>>;

    /// Every consumer, ordered by key.
    async fn list_consumers(&self) -> Result<Vec<Consumer>>;

    /// Deletes a consumer; `NotFound` if absent.
    async fn delete_consumer(&self, key: &str) -> Result<()>;

    /// Atomically records `instance_guid` on the consumer `key` if it has none
    /// and returns the updated consumer. Already equal: returns it unchanged.
    /// `Conflict` if the consumer has a different GUID or another consumer
    /// owns this GUID; `NotFound` if the key is unknown.
    async fn record_instance_guid(&self, key: &str, instance_guid: &str) -> Result<Consumer>;

    /// Finds the consumer of an incoming LTI 1.1 launch.
    ///
    /// With a GUID: the consumer that owns it, if any (its key may differ from
    /// `key` when the platform was re-keyed: always verify the signature with
    /// the returned consumer's key and secret). Otherwise the consumer with
    /// `key`, recording the GUID on it when given (see
    /// [`Self::record_instance_guid`]). `NotFound` when neither matches.
    async fn get_or_supplement(&self, instance_guid: Option<&str>, key: &str) -> Result<Consumer> {
        crate::ephemeral::check_id("consumer key", key)?;
        let Some(guid) = instance_guid.filter(|g| !g.is_empty()) else {
            return self.get_consumer(key).await;
        };
        crate::ephemeral::check_id("instance_guid", guid)?;
        if let Some(found) = self.find_consumer_by_guid(guid).await? {
            return Ok(found);
        }
        let consumer = self.get_consumer(key).await?;
        if consumer.instance_guid.as_deref() == Some(guid) {
            return Ok(consumer);
        }
        self.record_instance_guid(key, guid).await
    }
}

/// OAuth 1.0a nonces (LTI 1.1 launches and outcomes requests).
///
/// Invariant: for a given (consumer key, nonce), exactly one
/// `record_oauth1_nonce` succeeds until `expires_at` (the request timestamp
/// plus the accepted window); all others fail with `NonceReplayed`, also
/// under concurrency across processes. Backends key records by
/// [`oauth1_nonce_digest`] so neither value is stored in clear.
#[async_trait]
pub trait OAuth1NonceStore: Send + Sync {
    /// Records a nonce; `NonceReplayed` if seen and unexpired; `InvalidInput`
    /// if `expires_at` is not in the future.
    async fn record_oauth1_nonce(
        &self,
        consumer_key: &str,
        nonce: &str,
        expires_at: i64,
    ) -> Result<()>;
}

/// The record key for an OAuth 1.0a nonce: lower-case hex SHA-256 over the
/// length-prefixed consumer key followed by the nonce (unambiguous for any
/// pair of strings).
#[must_use]
pub fn oauth1_nonce_digest(consumer_key: &str, nonce: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&(consumer_key.len() as u64).to_be_bytes());
    ctx.update(consumer_key.as_bytes());
    ctx.update(nonce.as_bytes());
    hex(ctx.finish().as_ref())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_digest_separates_key_and_nonce() {
        assert_ne!(
            oauth1_nonce_digest("ab", "c"),
            oauth1_nonce_digest("a", "bc")
        );
        let d = oauth1_nonce_digest("key", "nonce");
        assert_eq!(d.len(), 64);
        assert!(!d.contains("nonce"));
        assert_eq!(d, oauth1_nonce_digest("key", "nonce"));
    }

    #[test]
    fn consumer_with_empty_secret_is_invalid() {
        let c = Consumer::new("k", "", "LMS", 0);
        assert!(matches!(
            c.validate().unwrap_err(),
            RegistryError::InvalidInput {
                field: "consumer secret",
                ..
            }
        ));
    }
}
