//! Where verifying keys come from.

use crate::Error;
use crate::alg::Algorithm;
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
