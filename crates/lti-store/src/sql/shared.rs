//! [`SharedValueStore`] on SQLite and PostgreSQL: one table,
//! `lti_shared_values`, whose primary key makes an insert-if-absent atomic.

use async_trait::async_trait;
use lti_registry::{Result, SharedValueStore, check_shared_value};

use super::{Kind, SqlStore, Val, t};
use crate::shared_values::check_args;

impl SqlStore {
    async fn try_insert_value(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<bool> {
        // One statement: inserted, or replacing an expired row; exactly one
        // of concurrent inserters gets the row back.
        let won = self
            .driver
            .fetch(
                "INSERT INTO lti_shared_values (namespace, value_key, value, expires_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (namespace, value_key) DO UPDATE
                 SET value = excluded.value, expires_at = excluded.expires_at
                 WHERE lti_shared_values.expires_at IS NOT NULL
                   AND lti_shared_values.expires_at <= $5
                 RETURNING value_key",
                vec![
                    t(namespace),
                    t(key),
                    t(value),
                    Val::OptInt(expires_at),
                    Val::Int(now),
                ],
                &[Kind::Text],
            )
            .await?;
        Ok(!won.is_empty())
    }
}

#[async_trait]
impl SharedValueStore for SqlStore {
    async fn get_value(&self, namespace: &str, key: &str) -> Result<Option<String>> {
        check_shared_value(namespace, key, None)?;
        let rows = self
            .driver
            .fetch(
                "SELECT value FROM lti_shared_values
                 WHERE namespace = $1 AND value_key = $2
                   AND (expires_at IS NULL OR expires_at > $3)",
                vec![t(namespace), t(key), Val::Int(self.clock.now())],
                &[Kind::Text],
            )
            .await?;
        Ok(rows.into_iter().next().map(|mut r| r.text(0)))
    }

    async fn put_value(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> Result<()> {
        check_args(namespace, key, Some(value), expires_at, self.clock.now())?;
        self.driver
            .execute(
                "INSERT INTO lti_shared_values (namespace, value_key, value, expires_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (namespace, value_key) DO UPDATE
                 SET value = excluded.value, expires_at = excluded.expires_at",
                vec![t(namespace), t(key), t(value), Val::OptInt(expires_at)],
            )
            .await?;
        if expires_at.is_some() {
            self.note_write().await;
        }
        Ok(())
    }

    async fn insert_value(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
    ) -> Result<Option<String>> {
        let now = self.clock.now();
        check_args(namespace, key, Some(value), expires_at, now)?;
        // The row that beat this insert may expire or be deleted before it is
        // read back; then the insert is tried again.
        for _ in 0..4 {
            if self
                .try_insert_value(namespace, key, value, expires_at, now)
                .await?
            {
                if expires_at.is_some() {
                    self.note_write().await;
                }
                return Ok(None);
            }
            if let Some(existing) = self.get_value(namespace, key).await? {
                return Ok(Some(existing));
            }
        }
        Err(lti_registry::RegistryError::Conflict {
            kind: "shared value",
            id: format!("{namespace}:{key}"),
            reason: "expected to insert or read the value, found it replaced on every try"
                .to_owned(),
        })
    }

    async fn delete_value(
        &self,
        namespace: &str,
        key: &str,
        only_if: Option<&str>,
    ) -> Result<bool> {
        check_shared_value(namespace, key, only_if)?;
        let rows = match only_if {
            Some(v) => {
                self.driver
                    .fetch(
                        "DELETE FROM lti_shared_values
                         WHERE namespace = $1 AND value_key = $2 AND value = $3
                         RETURNING expires_at",
                        vec![t(namespace), t(key), t(v)],
                        &[Kind::OptInt],
                    )
                    .await?
            }
            None => {
                self.driver
                    .fetch(
                        "DELETE FROM lti_shared_values
                         WHERE namespace = $1 AND value_key = $2
                         RETURNING expires_at",
                        vec![t(namespace), t(key)],
                        &[Kind::OptInt],
                    )
                    .await?
            }
        };
        let now = self.clock.now();
        Ok(rows.iter().any(|r| r.opt_int(0).is_none_or(|e| e > now)))
    }
}
