//! The LTI 1.1 provider data model over SQL (schema migration 2).
//!
//! Inserts-if-absent are `INSERT … ON CONFLICT DO NOTHING` followed by a
//! read of the stored row, so the primary key decides between concurrent
//! first launches. The score version only grows: `UPDATE … SET
//! score_version = $new WHERE … AND score_version < $new`.

use async_trait::async_trait;
use lti_registry::{
    AccountId, ContextRecord, GradedAssignment, OutcomeServiceRecord, ProviderStore, RegistryError,
    ResourceRecord, Result, SiloId, UserRecord, VisitRecord, assignment_not_found,
    check_provider_ids, check_score_version, permission_bits, permissions_from_bits,
    resource_context_conflict,
};

use super::{Cells, Kind, SqlStore, Val, t};

fn opt(v: Option<&String>) -> Val {
    Val::OptText(v.cloned())
}

const CONTEXT_COLUMNS: &[Kind] = &[
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::OptText,
    Kind::OptText,
    Kind::OptText,
    Kind::Int,
];

fn context_from(mut c: Cells) -> ContextRecord {
    ContextRecord {
        consumer_key: c.text(0),
        context_id: c.text(1),
        silo: SiloId(c.text(2)),
        title: c.opt_text(3),
        label: c.opt_text(4),
        context_type: c.opt_text(5),
        updated_at: c.int(6),
    }
}

const RESOURCE_SELECT: &str = "SELECT consumer_key, resource_link_id, silo, context_id, title, created_at FROM lti_provider_resources WHERE consumer_key = $1 AND resource_link_id = $2";
const RESOURCE_COLUMNS: &[Kind] = &[
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::OptText,
    Kind::OptText,
    Kind::Int,
];

fn resource_from(mut c: Cells) -> ResourceRecord {
    ResourceRecord {
        consumer_key: c.text(0),
        resource_link_id: c.text(1),
        silo: SiloId(c.text(2)),
        context_id: c.opt_text(3),
        title: c.opt_text(4),
        created_at: c.int(5),
    }
}

const USER_SELECT: &str = "SELECT consumer_key, user_id, silo, account, name_full, name_given, name_family, email, sourced_id, updated_at FROM lti_provider_users WHERE consumer_key = $1 AND user_id = $2";
const USER_COLUMNS: &[Kind] = &[
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::OptText,
    Kind::OptText,
    Kind::OptText,
    Kind::OptText,
    Kind::OptText,
    Kind::Int,
];

fn user_from(mut c: Cells) -> UserRecord {
    UserRecord {
        consumer_key: c.text(0),
        user_id: c.text(1),
        silo: SiloId(c.text(2)),
        account: AccountId(c.text(3)),
        name_full: c.opt_text(4),
        name_given: c.opt_text(5),
        name_family: c.opt_text(6),
        email: c.opt_text(7),
        sourced_id: c.opt_text(8),
        updated_at: c.int(9),
    }
}

const VISIT_COLUMNS: &[Kind] = &[
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::OptText,
    Kind::Int,
    Kind::Int,
    Kind::OptInt,
];

fn visit_from(backend: &'static str, mut c: Cells) -> Result<VisitRecord> {
    let bits = c.int(4);
    let permissions = permissions_from_bits(bits).ok_or_else(|| RegistryError::Corrupt {
        backend,
        kind: "visit",
        reason: format!("expected permission bits 0..=7, found {bits}"),
    })?;
    Ok(VisitRecord {
        session: c.text(0),
        consumer_key: c.text(1),
        resource_link_id: c.text(2),
        user_id: c.opt_text(3),
        permissions,
        started_at: c.int(5),
        ended_at: c.opt_int(6),
    })
}

const ASSIGNMENT_COLUMNS: &[Kind] = &[
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Int,
    Kind::Int,
];

fn assignment_from(backend: &'static str, mut c: Cells) -> Result<GradedAssignment> {
    let version = c.int(6);
    let score_version = u64::try_from(version).map_err(|_| RegistryError::Corrupt {
        backend,
        kind: "graded assignment",
        reason: format!("expected a non-negative score version, found {version}"),
    })?;
    Ok(GradedAssignment {
        consumer_key: c.text(0),
        resource_link_id: c.text(1),
        user_id: c.text(2),
        sourced_id: c.text(3),
        service_url: c.text(4),
        created_at: c.int(5),
        score_version,
    })
}

impl SqlStore {
    async fn resource(&self, consumer_key: &str, id: &str) -> Result<Option<ResourceRecord>> {
        let rows = self
            .driver
            .fetch(
                RESOURCE_SELECT,
                vec![t(consumer_key), t(id)],
                RESOURCE_COLUMNS,
            )
            .await?;
        Ok(rows.into_iter().next().map(resource_from))
    }

    async fn user(&self, consumer_key: &str, user_id: &str) -> Result<Option<UserRecord>> {
        let rows = self
            .driver
            .fetch(USER_SELECT, vec![t(consumer_key), t(user_id)], USER_COLUMNS)
            .await?;
        Ok(rows.into_iter().next().map(user_from))
    }

    async fn assignment(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
        user_id: &str,
    ) -> Result<Option<GradedAssignment>> {
        let backend = self.driver.backend();
        self.driver
            .fetch(
                "SELECT consumer_key, resource_link_id, user_id, sourced_id, service_url, created_at, score_version FROM lti_provider_assignments WHERE consumer_key = $1 AND resource_link_id = $2 AND user_id = $3",
                vec![t(consumer_key), t(resource_link_id), t(user_id)],
                ASSIGNMENT_COLUMNS,
            )
            .await?
            .into_iter()
            .next()
            .map(|c| assignment_from(backend, c))
            .transpose()
    }
}

#[async_trait]
impl ProviderStore for SqlStore {
    async fn silo_of(&self, consumer_key: &str) -> Result<Option<SiloId>> {
        let mut rows = self
            .driver
            .fetch(
                "SELECT silo FROM lti_provider_silos WHERE consumer_key = $1",
                vec![t(consumer_key)],
                &[Kind::Text],
            )
            .await?;
        Ok(rows.pop().map(|mut c| SiloId(c.text(0))))
    }

    async fn assign_silo(&self, consumer_key: &str, silo: &SiloId) -> Result<()> {
        check_provider_ids(&[("consumer key", consumer_key), ("silo", &silo.0)])?;
        self.driver
            .execute(
                "INSERT INTO lti_provider_silos (consumer_key, silo) VALUES ($1, $2)
                 ON CONFLICT (consumer_key) DO UPDATE SET silo = excluded.silo",
                vec![t(consumer_key), t(&silo.0)],
            )
            .await?;
        Ok(())
    }

    async fn get_context(
        &self,
        consumer_key: &str,
        context_id: &str,
    ) -> Result<Option<ContextRecord>> {
        let rows = self
            .driver
            .fetch(
                "SELECT consumer_key, context_id, silo, title, label, context_type, updated_at FROM lti_provider_contexts WHERE consumer_key = $1 AND context_id = $2",
                vec![t(consumer_key), t(context_id)],
                CONTEXT_COLUMNS,
            )
            .await?;
        Ok(rows.into_iter().next().map(context_from))
    }

    async fn put_context(&self, r: &ContextRecord) -> Result<()> {
        check_provider_ids(&[
            ("consumer key", &r.consumer_key),
            ("context_id", &r.context_id),
        ])?;
        self.driver
            .execute(
                "INSERT INTO lti_provider_contexts (consumer_key, context_id, silo, title, label, context_type, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (consumer_key, context_id) DO UPDATE SET silo = excluded.silo,
                   title = excluded.title, label = excluded.label,
                   context_type = excluded.context_type, updated_at = excluded.updated_at",
                vec![
                    t(&r.consumer_key),
                    t(&r.context_id),
                    t(&r.silo.0),
                    opt(r.title.as_ref()),
                    opt(r.label.as_ref()),
                    opt(r.context_type.as_ref()),
                    Val::Int(r.updated_at),
                ],
            )
            .await?;
        Ok(())
    }

    async fn get_resource(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
    ) -> Result<Option<ResourceRecord>> {
        self.resource(consumer_key, resource_link_id).await
    }

    async fn insert_resource(&self, r: &ResourceRecord) -> Result<ResourceRecord> {
        check_provider_ids(&[
            ("consumer key", &r.consumer_key),
            ("resource_link_id", &r.resource_link_id),
        ])?;
        self.driver
            .execute(
                "INSERT INTO lti_provider_resources (consumer_key, resource_link_id, silo, context_id, title, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (consumer_key, resource_link_id) DO NOTHING",
                vec![
                    t(&r.consumer_key),
                    t(&r.resource_link_id),
                    t(&r.silo.0),
                    opt(r.context_id.as_ref()),
                    opt(r.title.as_ref()),
                    Val::Int(r.created_at),
                ],
            )
            .await?;
        // Resource links are never deleted, so the row is there.
        self.resource(&r.consumer_key, &r.resource_link_id)
            .await?
            .ok_or_else(|| RegistryError::not_found("resource link", &r.resource_link_id))
    }

    async fn put_resource(&self, r: &ResourceRecord) -> Result<()> {
        let n = self
            .driver
            .execute(
                "UPDATE lti_provider_resources SET title = $1
                 WHERE consumer_key = $2 AND resource_link_id = $3
                   AND context_id IS NOT DISTINCT FROM $4",
                vec![
                    opt(r.title.as_ref()),
                    t(&r.consumer_key),
                    t(&r.resource_link_id),
                    opt(r.context_id.as_ref()),
                ],
            )
            .await?;
        if n > 0 {
            return Ok(());
        }
        match self.resource(&r.consumer_key, &r.resource_link_id).await? {
            Some(stored) => Err(resource_context_conflict(
                &r.resource_link_id,
                stored.context_id.as_deref(),
                r.context_id.as_deref(),
            )),
            None => Err(RegistryError::not_found(
                "resource link",
                &r.resource_link_id,
            )),
        }
    }

    async fn get_user(&self, consumer_key: &str, user_id: &str) -> Result<Option<UserRecord>> {
        self.user(consumer_key, user_id).await
    }

    async fn insert_user(&self, r: &UserRecord) -> Result<UserRecord> {
        check_provider_ids(&[
            ("consumer key", &r.consumer_key),
            ("user_id", &r.user_id),
            ("account", &r.account.0),
        ])?;
        self.driver
            .execute(
                "INSERT INTO lti_provider_users (consumer_key, user_id, silo, account, name_full, name_given, name_family, email, sourced_id, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (consumer_key, user_id) DO NOTHING",
                vec![
                    t(&r.consumer_key),
                    t(&r.user_id),
                    t(&r.silo.0),
                    t(&r.account.0),
                    opt(r.name_full.as_ref()),
                    opt(r.name_given.as_ref()),
                    opt(r.name_family.as_ref()),
                    opt(r.email.as_ref()),
                    opt(r.sourced_id.as_ref()),
                    Val::Int(r.updated_at),
                ],
            )
            .await?;
        // Users are never deleted, so the row is there.
        self.user(&r.consumer_key, &r.user_id)
            .await?
            .ok_or_else(|| RegistryError::not_found("user", &r.user_id))
    }

    async fn put_user(&self, r: &UserRecord) -> Result<()> {
        let n = self
            .driver
            .execute(
                "UPDATE lti_provider_users SET name_full = $1, name_given = $2, name_family = $3,
                   email = $4, sourced_id = $5, updated_at = $6
                 WHERE consumer_key = $7 AND user_id = $8",
                vec![
                    opt(r.name_full.as_ref()),
                    opt(r.name_given.as_ref()),
                    opt(r.name_family.as_ref()),
                    opt(r.email.as_ref()),
                    opt(r.sourced_id.as_ref()),
                    Val::Int(r.updated_at),
                    t(&r.consumer_key),
                    t(&r.user_id),
                ],
            )
            .await?;
        if n == 0 {
            return Err(RegistryError::not_found("user", &r.user_id));
        }
        Ok(())
    }

    async fn put_visit(&self, r: &VisitRecord) -> Result<()> {
        check_provider_ids(&[
            ("session", &r.session),
            ("consumer key", &r.consumer_key),
            ("resource_link_id", &r.resource_link_id),
        ])?;
        self.driver
            .execute(
                "INSERT INTO lti_provider_visits (session, consumer_key, resource_link_id, user_id, permissions, started_at, ended_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (session, consumer_key, resource_link_id) DO UPDATE SET
                   user_id = excluded.user_id, permissions = excluded.permissions,
                   started_at = excluded.started_at, ended_at = excluded.ended_at",
                vec![
                    t(&r.session),
                    t(&r.consumer_key),
                    t(&r.resource_link_id),
                    opt(r.user_id.as_ref()),
                    Val::Int(permission_bits(r.permissions)),
                    Val::Int(r.started_at),
                    Val::OptInt(r.ended_at),
                ],
            )
            .await?;
        Ok(())
    }

    async fn end_visits(
        &self,
        session: &str,
        consumer_key: &str,
        keep_user: Option<&str>,
        now: i64,
    ) -> Result<u64> {
        self.driver
            .execute(
                "UPDATE lti_provider_visits SET ended_at = $1
                 WHERE session = $2 AND consumer_key = $3 AND ended_at IS NULL
                   AND user_id IS DISTINCT FROM $4",
                vec![
                    Val::Int(now),
                    t(session),
                    t(consumer_key),
                    Val::OptText(keep_user.map(str::to_owned)),
                ],
            )
            .await
    }

    async fn open_visits(&self, session: &str) -> Result<Vec<VisitRecord>> {
        let backend = self.driver.backend();
        self.driver
            .fetch(
                "SELECT session, consumer_key, resource_link_id, user_id, permissions, started_at, ended_at
                 FROM lti_provider_visits WHERE session = $1 AND ended_at IS NULL
                 ORDER BY consumer_key, resource_link_id",
                vec![t(session)],
                VISIT_COLUMNS,
            )
            .await?
            .into_iter()
            .map(|c| visit_from(backend, c))
            .collect()
    }

    async fn put_outcome_service(&self, r: &OutcomeServiceRecord) -> Result<()> {
        check_provider_ids(&[
            ("consumer key", &r.consumer_key),
            ("lis_outcome_service_url", &r.service_url),
        ])?;
        self.driver
            .execute(
                "INSERT INTO lti_provider_outcome_services (consumer_key, service_url) VALUES ($1, $2)
                 ON CONFLICT (consumer_key) DO UPDATE SET service_url = excluded.service_url",
                vec![t(&r.consumer_key), t(&r.service_url)],
            )
            .await?;
        Ok(())
    }

    async fn get_outcome_service(
        &self,
        consumer_key: &str,
    ) -> Result<Option<OutcomeServiceRecord>> {
        let mut rows = self
            .driver
            .fetch(
                "SELECT consumer_key, service_url FROM lti_provider_outcome_services WHERE consumer_key = $1",
                vec![t(consumer_key)],
                &[Kind::Text, Kind::Text],
            )
            .await?;
        Ok(rows.pop().map(|mut c| OutcomeServiceRecord {
            consumer_key: c.text(0),
            service_url: c.text(1),
        }))
    }

    async fn upsert_assignment(&self, r: &GradedAssignment) -> Result<GradedAssignment> {
        check_provider_ids(&[
            ("consumer key", &r.consumer_key),
            ("resource_link_id", &r.resource_link_id),
            ("user_id", &r.user_id),
            ("lis_result_sourcedid", &r.sourced_id),
            ("lis_outcome_service_url", &r.service_url),
        ])?;
        let backend = self.driver.backend();
        self.driver
            .fetch(
                "INSERT INTO lti_provider_assignments (consumer_key, resource_link_id, user_id, sourced_id, service_url, created_at, score_version)
                 VALUES ($1, $2, $3, $4, $5, $6, 0)
                 ON CONFLICT (consumer_key, resource_link_id, user_id) DO UPDATE SET
                   sourced_id = excluded.sourced_id, service_url = excluded.service_url
                 RETURNING consumer_key, resource_link_id, user_id, sourced_id, service_url, created_at, score_version",
                vec![
                    t(&r.consumer_key),
                    t(&r.resource_link_id),
                    t(&r.user_id),
                    t(&r.sourced_id),
                    t(&r.service_url),
                    Val::Int(r.created_at),
                ],
                ASSIGNMENT_COLUMNS,
            )
            .await?
            .into_iter()
            .next()
            .map(|c| assignment_from(backend, c))
            .transpose()?
            .ok_or_else(|| assignment_not_found(&r.consumer_key, &r.resource_link_id, &r.user_id))
    }

    async fn get_assignment(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
        user_id: &str,
    ) -> Result<Option<GradedAssignment>> {
        self.assignment(consumer_key, resource_link_id, user_id)
            .await
    }

    async fn list_assignments(&self, consumer_key: &str) -> Result<Vec<GradedAssignment>> {
        let backend = self.driver.backend();
        self.driver
            .fetch(
                "SELECT consumer_key, resource_link_id, user_id, sourced_id, service_url, created_at, score_version
                 FROM lti_provider_assignments WHERE consumer_key = $1
                 ORDER BY resource_link_id, user_id",
                vec![t(consumer_key)],
                ASSIGNMENT_COLUMNS,
            )
            .await?
            .into_iter()
            .map(|c| assignment_from(backend, c))
            .collect()
    }

    async fn advance_score_version(
        &self,
        consumer_key: &str,
        resource_link_id: &str,
        user_id: &str,
        version: u64,
    ) -> Result<bool> {
        let version = check_score_version(version)?;
        let n = self
            .driver
            .execute(
                "UPDATE lti_provider_assignments SET score_version = $1
                 WHERE consumer_key = $2 AND resource_link_id = $3 AND user_id = $4
                   AND score_version < $1",
                vec![
                    Val::Int(version),
                    t(consumer_key),
                    t(resource_link_id),
                    t(user_id),
                ],
            )
            .await?;
        if n > 0 {
            return Ok(true);
        }
        match self
            .assignment(consumer_key, resource_link_id, user_id)
            .await?
        {
            Some(_) => Ok(false),
            None => Err(assignment_not_found(
                consumer_key,
                resource_link_id,
                user_id,
            )),
        }
    }
}
