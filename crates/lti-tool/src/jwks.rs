//! The tool's public JWKS (spec digest §1.13): the active and next keys (and
//! recently retired ones) from the [`ToolKeyStore`](lti_registry::ToolKeyStore).

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use lti_jose::{JwkSet, SigningKey};
use lti_registry::RegistryError;

use crate::error::ToolError;
use crate::request::ToolResponse;
use crate::tool::Tool;

impl Tool {
    /// The tool's published key set: each key's public JWK with `kid`, `alg` and
    /// `use = "sig"`, ordered active, next, then retired within the overlap.
    ///
    /// # Errors
    /// [`ToolError::Configuration`] for a stored key that cannot be parsed,
    /// [`ToolError::StoreUnavailable`].
    pub async fn jwks_document(&self) -> Result<JwkSet, ToolError> {
        let keys = self
            .inner
            .tool_keys
            .published_keys(self.inner.retired_overlap_secs)
            .await
            .map_err(ToolError::store)?;
        let mut set = JwkSet {
            keys: Vec::with_capacity(keys.len()),
        };
        for key in &keys {
            set.keys.push(self.inner.signing_key(key)?.public_jwk());
        }
        Ok(set)
    }

    /// The JWKS response: `200`, `application/json`, `Cache-Control: public,
    /// max-age=<jwks_max_age>` (platforms refetch on an unknown kid anyway).
    ///
    /// # Errors
    /// As [`Tool::jwks_document`].
    pub async fn jwks(&self) -> Result<ToolResponse, ToolError> {
        let set = self.jwks_document().await?;
        let body = serde_json::to_vec(&set)
            .map_err(|e| ToolError::config(format!("JWKS serialization: {e}")))?;
        let cache =
            HeaderValue::from_str(&format!("public, max-age={}", self.inner.jwks_max_age_secs))
                .map_err(|_| ToolError::config("JWKS Cache-Control header"))?;
        Ok(ToolResponse::new(StatusCode::OK)
            .with_header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .with_header(CACHE_CONTROL, cache)
            .with_body(Bytes::from(body)))
    }

    /// The key the tool signs with (the store's active key, parsed once per kid).
    ///
    /// # Errors
    /// [`ToolError::Configuration`] when no key is active or it cannot be parsed,
    /// [`ToolError::StoreUnavailable`].
    pub async fn active_signing_key(&self) -> Result<Arc<SigningKey>, ToolError> {
        let key = match self.inner.tool_keys.active_key().await {
            Ok(k) => k,
            Err(RegistryError::NotFound { .. }) => {
                return Err(ToolError::config(
                    "expected an active tool key in the key store, found none (add one and promote it)",
                ));
            }
            Err(e) => return Err(ToolError::store(e)),
        };
        self.inner.signing_key(&key)
    }
}
