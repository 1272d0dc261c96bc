//! Small values every instance of an application must agree on.

use async_trait::async_trait;

use crate::ephemeral::check_id;
use crate::error::{RegistryError, Result};

/// The longest value a [`SharedValueStore`] accepts, in bytes.
pub const MAX_SHARED_VALUE_LEN: usize = 64 * 1024;

/// Checks a namespace name: 1 to 32 bytes of `a-z`, `0-9` and `_`.
pub fn check_namespace(namespace: &str) -> Result<()> {
    if namespace.is_empty()
        || namespace.len() > 32
        || !namespace
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(RegistryError::InvalidInput {
            field: "namespace",
            expected: "1 to 32 characters of a-z, 0-9 and '_'",
            found: format!("{} bytes", namespace.len()),
        });
    }
    Ok(())
}

/// Checks the arguments every [`SharedValueStore`] call shares: the
/// namespace, a key as [`check_id`] wants it, and a value of at most
/// [`MAX_SHARED_VALUE_LEN`] bytes.
pub fn check_shared_value(namespace: &str, key: &str, value: Option<&str>) -> Result<()> {
    check_namespace(namespace)?;
    check_id("key", key)?;
    if let Some(v) = value
        && v.len() > MAX_SHARED_VALUE_LEN
    {
        return Err(RegistryError::InvalidInput {
            field: "value",
            expected: "at most 65536 bytes",
            found: format!("{} bytes", v.len()),
        });
    }
    Ok(())
}

/// Small named values shared by every instance of an application: cached
/// service tokens and the lock that lets one instance fetch them
/// (`lti-http`'s `SharedTokenCache`), the platform's context grants
/// (`lti-platform`'s `StoredContextGrants`), settings created once by the
/// first instance (the application secret of `lti serve`).
///
/// A value lives under `(namespace, key)`; `expires_at` (Unix seconds) ends
/// it, `None` keeps it until deleted. Expired values read as absent.
///
/// Invariants every implementation keeps, also between processes sharing the
/// backend:
/// - of concurrent [`insert_value`](Self::insert_value) calls for one absent
///   key, exactly one inserts; every other one gets the winner's value back;
/// - [`delete_value`](Self::delete_value) with `only_if` deletes only when the
///   stored value is that one, atomically (releasing a lock one holds never
///   releases another holder's).
#[async_trait]
pub trait SharedValueStore: Send + Sync {
    /// The unexpired value of `key` in `namespace`, if any.
    async fn get_value(&self, namespace: &str, key: &str) -> Result<Option<String>>;

    /// Sets (or replaces) the value of `key` until `expires_at`.
    async fn put_value(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> Result<()>;

    /// Sets the value of `key` unless an unexpired one exists: `None` when this
    /// call inserted it, else `Some(existing value)`.
    async fn insert_value(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> Result<Option<String>>;

    /// Deletes the value of `key` (with `only_if`, only when it is that value);
    /// returns whether an unexpired value was deleted.
    async fn delete_value(&self, namespace: &str, key: &str, only_if: Option<&str>)
    -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_keys_and_values_are_checked() {
        check_shared_value("token_lock", "k", Some("v")).unwrap();
        for bad in ["", "Upper", "with:colon", &"n".repeat(33)] {
            let e = check_shared_value(bad, "k", None).unwrap_err();
            assert!(
                matches!(
                    e,
                    RegistryError::InvalidInput {
                        field: "namespace",
                        ..
                    }
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            check_shared_value("ns", "", None).unwrap_err(),
            RegistryError::InvalidInput { field: "key", .. }
        ));
        assert!(matches!(
            check_shared_value("ns", "k", Some(&"v".repeat(MAX_SHARED_VALUE_LEN + 1))).unwrap_err(),
            RegistryError::InvalidInput { field: "value", .. }
        ));
    }
}
