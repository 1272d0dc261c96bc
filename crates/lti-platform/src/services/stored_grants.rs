//! [`ContextAccess`] on a shared store, so every instance of a platform sees
//! the grants any of them recorded.

use std::sync::Arc;

use lti_registry::SharedValueStore;

use super::ContextAccess;
use crate::error::{PlatformError, Result};

/// The namespace of context grants in a [`SharedValueStore`].
pub const GRANT_NAMESPACE: &str = "context_grant";

/// The default policy of [`MemoryContextGrants`](super::MemoryContextGrants) (a
/// tool may use the services of exactly the contexts it was granted) with the
/// grants in a [`SharedValueStore`] (e.g. `lti_store::open(..)`'s
/// `shared_values`: PostgreSQL, SQLite, Redis), so several instances behind a
/// load balancer agree and grants survive a restart. A grant never expires;
/// [`StoredContextGrants::revoke`] withdraws it.
///
/// A store that cannot be reached fails closed: the AGS/NRPS call answers
/// 503 [`PlatformError::Backend`], never access.
#[derive(Clone)]
pub struct StoredContextGrants {
    store: Arc<dyn SharedValueStore>,
}

impl std::fmt::Debug for StoredContextGrants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredContextGrants")
            .finish_non_exhaustive()
    }
}

/// The key of a grant: the client id's length, the client id and the
/// context id (so no pair of ids can collide with another).
fn grant_key(client_id: &str, context_id: &str) -> String {
    format!("{}:{client_id}{context_id}", client_id.len())
}

fn backend(e: lti_registry::RegistryError) -> PlatformError {
    PlatformError::backend("context grants", e)
}

impl StoredContextGrants {
    /// Grants kept in `store`.
    pub fn new(store: Arc<dyn SharedValueStore>) -> Self {
        Self { store }
    }

    /// Withdraws a grant; returns whether it existed. Tokens already issued
    /// stop working for that context at once, on every instance.
    ///
    /// # Errors
    /// [`PlatformError::Backend`].
    pub async fn revoke(&self, client_id: &str, context_id: &str) -> Result<bool> {
        self.store
            .delete_value(GRANT_NAMESPACE, &grant_key(client_id, context_id), None)
            .await
            .map_err(backend)
    }
}

#[async_trait::async_trait]
impl ContextAccess for StoredContextGrants {
    async fn may_access(&self, client_id: &str, context_id: &str) -> Result<bool> {
        self.store
            .get_value(GRANT_NAMESPACE, &grant_key(client_id, context_id))
            .await
            .map(|v| v.is_some())
            .map_err(backend)
    }

    async fn grant(&self, client_id: &str, context_id: &str) -> Result<()> {
        // Insert-if-absent: a launch re-granting a known pair writes nothing.
        self.store
            .insert_value(
                GRANT_NAMESPACE,
                &grant_key(client_id, context_id),
                "1",
                None,
            )
            .await
            .map(drop)
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_keys_do_not_collide() {
        assert_ne!(grant_key("ab", "c"), grant_key("a", "bc"));
        assert_eq!(grant_key("tool", "course"), "4:toolcourse");
    }
}
