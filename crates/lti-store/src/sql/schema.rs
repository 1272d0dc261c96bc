//! The SQL schema, as ordered migrations shared by SQLite and PostgreSQL.
//!
//! Migration `n` (1-based) brings the schema from version `n - 1` to `n`.
//! Applied migrations are never edited; changes are appended.

/// The version table, created before any migration runs.
pub(crate) const VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS lti_schema_version (version BIGINT NOT NULL)";

/// The number of migrations a database at `current` (the highest recorded
/// version, `None` for a new database) has applied; `Corrupt` when it is
/// newer than this build.
pub(crate) fn applied(backend: &'static str, current: Option<i64>) -> lti_registry::Result<usize> {
    let current = usize::try_from(current.unwrap_or(0)).unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(lti_registry::RegistryError::Corrupt {
            backend,
            kind: "schema",
            reason: format!(
                "expected schema version at most {}, found {current}; this build is older than the database",
                MIGRATIONS.len()
            ),
        });
    }
    Ok(current)
}

/// The ordered migrations; each is a list of statements run in one transaction.
pub(crate) const MIGRATIONS: &[&[&str]] = &[
    // 1: registrations, deployments, short-lived records, tool keys, consumers.
    &[
    "CREATE TABLE lti_registrations (
        issuer TEXT NOT NULL,
        client_id TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (issuer, client_id)
    )",
    "CREATE TABLE lti_deployments (
        issuer TEXT NOT NULL,
        client_id TEXT NOT NULL,
        deployment_id TEXT NOT NULL,
        status TEXT NOT NULL,
        label TEXT,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (issuer, client_id, deployment_id),
        FOREIGN KEY (issuer, client_id) REFERENCES lti_registrations (issuer, client_id) ON DELETE CASCADE
    )",
    "CREATE TABLE lti_auto_registration (
        issuer TEXT PRIMARY KEY,
        body TEXT NOT NULL
    )",
    "CREATE TABLE lti_launch_states (
        state TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE INDEX lti_launch_states_expiry ON lti_launch_states (expires_at)",
    "CREATE TABLE lti_nonces (
        nonce_key TEXT PRIMARY KEY,
        expires_at BIGINT NOT NULL
    )",
    "CREATE INDEX lti_nonces_expiry ON lti_nonces (expires_at)",
    "CREATE TABLE lti_launch_data (
        launch_id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        expires_at BIGINT NOT NULL
    )",
    "CREATE INDEX lti_launch_data_expiry ON lti_launch_data (expires_at)",
    "CREATE TABLE lti_tool_keys (
        kid TEXT PRIMARY KEY,
        alg TEXT NOT NULL,
        private_key TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('next', 'active', 'retired')),
        created_at BIGINT NOT NULL,
        activated_at BIGINT,
        retired_at BIGINT
    )",
    "CREATE UNIQUE INDEX lti_tool_keys_one_next ON lti_tool_keys (status) WHERE status = 'next'",
    "CREATE UNIQUE INDEX lti_tool_keys_one_active ON lti_tool_keys (status) WHERE status = 'active'",
    "CREATE TABLE lti_consumers (
        consumer_key TEXT PRIMARY KEY,
        secret TEXT NOT NULL,
        name TEXT NOT NULL,
        instance_guid TEXT UNIQUE,
        created_at BIGINT NOT NULL
    )",
    ],
    // 2: the LTI 1.1 tool provider's data model. The primary keys carry the
    // invariants concurrent writers rely on: one resource link (and so one
    // bound context) per (consumer, resource_link_id), one account per
    // (consumer, user_id), one assignment per (consumer, resource link, user).
    &[
        "CREATE TABLE lti_provider_silos (
        consumer_key TEXT PRIMARY KEY,
        silo TEXT NOT NULL
    )",
        "CREATE TABLE lti_provider_contexts (
        consumer_key TEXT NOT NULL,
        context_id TEXT NOT NULL,
        silo TEXT NOT NULL,
        title TEXT,
        label TEXT,
        context_type TEXT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (consumer_key, context_id)
    )",
        "CREATE TABLE lti_provider_resources (
        consumer_key TEXT NOT NULL,
        resource_link_id TEXT NOT NULL,
        silo TEXT NOT NULL,
        context_id TEXT,
        title TEXT,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (consumer_key, resource_link_id)
    )",
        "CREATE TABLE lti_provider_users (
        consumer_key TEXT NOT NULL,
        user_id TEXT NOT NULL,
        silo TEXT NOT NULL,
        account TEXT NOT NULL,
        name_full TEXT,
        name_given TEXT,
        name_family TEXT,
        email TEXT,
        sourced_id TEXT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (consumer_key, user_id)
    )",
        "CREATE TABLE lti_provider_visits (
        session TEXT NOT NULL,
        consumer_key TEXT NOT NULL,
        resource_link_id TEXT NOT NULL,
        user_id TEXT,
        permissions BIGINT NOT NULL CHECK (permissions BETWEEN 0 AND 7),
        started_at BIGINT NOT NULL,
        ended_at BIGINT,
        PRIMARY KEY (session, consumer_key, resource_link_id)
    )",
        "CREATE TABLE lti_provider_outcome_services (
        consumer_key TEXT PRIMARY KEY,
        service_url TEXT NOT NULL
    )",
        "CREATE TABLE lti_provider_assignments (
        consumer_key TEXT NOT NULL,
        resource_link_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        sourced_id TEXT NOT NULL,
        service_url TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        score_version BIGINT NOT NULL DEFAULT 0 CHECK (score_version >= 0),
        PRIMARY KEY (consumer_key, resource_link_id, user_id)
    )",
    ],
    // 3: the grade outbox (`outbox.rs`).
    super::outbox::MIGRATION,
    // 4: values shared by every instance (cached service tokens and their
    // fill locks, context grants, settings created once); the primary key
    // makes an insert-if-absent atomic between instances.
    &[
        "CREATE TABLE lti_shared_values (
        namespace TEXT NOT NULL,
        value_key TEXT NOT NULL,
        value TEXT NOT NULL,
        expires_at BIGINT,
        PRIMARY KEY (namespace, value_key)
    )",
        "CREATE INDEX lti_shared_values_expiry ON lti_shared_values (expires_at)",
    ],
];
