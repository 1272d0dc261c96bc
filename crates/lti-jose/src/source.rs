//! Where verifying keys come from.

use crate::Error;
use crate::alg::Algorithm;
use crate::error::clip;
use crate::jwk::JwkSet;
use crate::verifying::VerifyingKey;

/// A source of verifying keys, e.g. a cached remote JWKS (see `lti-http`) or a static
/// [`JwkSet`].
#[async_trait::async_trait]
pub trait KeySource: Send + Sync {
    /// Returns the key for `kid` and `alg` published at `jwks_url`.
    ///
    /// # Errors
    /// [`Error::UnknownKid`], [`Error::AmbiguousKey`], [`Error::KeyAlgorithmMismatch`],
    /// [`Error::KeySourceUnavailable`], ...
    async fn key(
        &self,
        jwks_url: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, Error>;
}

/// A static key set; `jwks_url` is ignored.
#[async_trait::async_trait]
impl KeySource for JwkSet {
    async fn key(
        &self,
        _jwks_url: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, Error> {
        self.find(kid, alg)
    }
}

/// A single static key; `jwks_url` is ignored. A `kid` that differs from the key's own
/// kid is unknown; an algorithm other than the key's is a mismatch.
#[async_trait::async_trait]
impl KeySource for VerifyingKey {
    async fn key(
        &self,
        _jwks_url: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, Error> {
        if let (Some(wanted), Some(own)) = (kid, self.kid())
            && wanted != own
        {
            return Err(Error::UnknownKid { kid: clip(wanted) });
        }
        if alg != self.algorithm() {
            return Err(Error::KeyAlgorithmMismatch {
                expected: format!("a key for {alg}"),
                found: format!("a key bound to {}", self.algorithm()),
            });
        }
        Ok(self.clone())
    }
}

/// Shared key sources.
#[async_trait::async_trait]
impl<T: KeySource + ?Sized> KeySource for std::sync::Arc<T> {
    async fn key(
        &self,
        jwks_url: &str,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<VerifyingKey, Error> {
        (**self).key(jwks_url, kid, alg).await
    }
}
