//! LTI 1.1 → 1.3 migration (spec digest §9): the `lti1p1` claim and its
//! `oauth_consumer_key_sign`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lti_registry::RegistryError;
use ring::hmac;

use crate::error::{ToolClaim, ToolError, clip};
use crate::launch::VerifiedIdToken;
use crate::tool::Tool;

/// The LTI 1.1 identifiers of a migrated launch, verified with the 1.1 consumer's
/// secret, so an application can map old users, contexts and resource links.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lti1p1Migration {
    /// The 1.1 consumer key (`oauth_consumer_key`).
    pub oauth_consumer_key: String,
    /// The 1.1 `user_id` when it differs from `sub` (else `sub` is the 1.1 id).
    pub user_id: Option<String>,
    /// The 1.1 `resource_link_id` when it changed.
    pub resource_link_id: Option<String>,
    /// The 1.1 `context_id` when it changed.
    pub context_id: Option<String>,
    /// The 1.1 `tool_consumer_instance_guid`, when sent.
    pub tool_consumer_instance_guid: Option<String>,
}

impl Lti1p1Migration {
    /// The 1.1 user id of this user: `lti1p1.user_id`, else the launch's `sub`.
    pub fn lti11_user_id<'a>(&'a self, launch: &'a VerifiedIdToken) -> Option<&'a str> {
        self.user_id.as_deref().or(launch.sub())
    }
}

/// The message `oauth_consumer_key_sign` signs: the six values joined with `&`,
/// without any encoding (spec digest §9).
pub fn oauth_consumer_key_sign_base_string(
    oauth_consumer_key: &str,
    deployment_id: &str,
    issuer: &str,
    client_id: &str,
    exp: i64,
    nonce: &str,
) -> String {
    format!("{oauth_consumer_key}&{deployment_id}&{issuer}&{client_id}&{exp}&{nonce}")
}

/// `base64(HMAC-SHA256(secret, base string))` — what a platform puts in
/// `lti1p1.oauth_consumer_key_sign`.
pub fn oauth_consumer_key_sign(secret: &str, base_string: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    STANDARD.encode(hmac::sign(&key, base_string.as_bytes()).as_ref())
}

impl Tool {
    /// Verifies the launch's `lti1p1` claim with the 1.1 consumer secret from the
    /// consumer store and returns the 1.1 identifiers.
    ///
    /// Only the migration is refused on failure, not the launch (which was already
    /// fully verified): an application keeps the launch and simply does not link
    /// the 1.1 account.
    ///
    /// # Errors
    /// `missing_claim:lti1p1` ([`ToolError::MissingClaim`]) when the claim, its
    /// `oauth_consumer_key` or its `oauth_consumer_key_sign` is absent;
    /// [`ToolError::UnknownConsumer`]; [`ToolError::Lti1p1SignatureMismatch`];
    /// [`ToolError::StoreUnavailable`].
    pub async fn verify_lti1p1(
        &self,
        launch: &VerifiedIdToken,
    ) -> Result<Lti1p1Migration, ToolError> {
        let claims = launch.claims();
        let missing = || ToolError::MissingClaim(ToolClaim::Lti1p1);
        let lti1p1 = claims.lti1p1.as_ref().ok_or_else(missing)?;
        let consumer_key = lti1p1
            .oauth_consumer_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .ok_or_else(missing)?;
        let sign = lti1p1
            .oauth_consumer_key_sign
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(missing)?;
        let consumer = match self.inner.consumers.get_consumer(consumer_key).await {
            Ok(c) => c,
            Err(RegistryError::NotFound { .. } | RegistryError::InvalidInput { .. }) => {
                return Err(ToolError::UnknownConsumer {
                    consumer_key: clip(consumer_key),
                });
            }
            Err(e) => return Err(ToolError::store(e)),
        };
        // `client_id` is the token's `aud` (its first value when an array).
        let client_id = claims
            .aud
            .as_ref()
            .and_then(|a| a.first())
            .unwrap_or(launch.client_id());
        let base = oauth_consumer_key_sign_base_string(
            consumer_key,
            launch.deployment_id(),
            launch.issuer(),
            client_id,
            claims.exp.unwrap_or_default(),
            claims.nonce.as_deref().unwrap_or_default(),
        );
        let mismatch = || ToolError::Lti1p1SignatureMismatch {
            consumer_key: clip(consumer_key),
        };
        let tag = STANDARD.decode(sign.trim()).map_err(|_| mismatch())?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, consumer.secret.expose().as_bytes());
        hmac::verify(&key, base.as_bytes(), &tag).map_err(|_| mismatch())?;
        Ok(Lti1p1Migration {
            oauth_consumer_key: consumer_key.to_owned(),
            user_id: lti1p1.user_id.clone().filter(|u| !u.is_empty()),
            resource_link_id: lti1p1.resource_link_id.clone().filter(|r| !r.is_empty()),
            context_id: lti1p1.context_id.clone().filter(|c| !c.is_empty()),
            tool_consumer_instance_guid: lti1p1
                .tool_consumer_instance_guid
                .clone()
                .filter(|g| !g.is_empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_test_vector_is_reproduced() {
        let base = oauth_consumer_key_sign_base_string(
            "179248902",
            "689302",
            "https://lmsvendor.com",
            "PM48OJSfGDTAzAo",
            1_551_290_856,
            "172we8671fd8z",
        );
        assert_eq!(
            oauth_consumer_key_sign("my-lti11-secret", &base),
            "lWd54kFo5qU7xshAna6v8BwoBm6tmUjc6GTax6+12ps="
        );
    }
}
