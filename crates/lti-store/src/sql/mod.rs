//! The SQL backends (SQLite and PostgreSQL): one implementation of every
//! store trait over a small driver enum, so both databases run the same
//! statements and keep the same invariants.

mod outbox;
#[cfg(feature = "postgres")]
mod postgres;
mod provider;
mod schema;
mod shared;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use lti_registry::{
    AutoRegistrationPolicy, Clock, Consumer, ConsumerStore, Deployment, DeploymentStatus,
    KeyStatus, LaunchDataStore, LaunchState, LaunchStateStore, NonceStore, OAuth1NonceStore,
    PlatformRegistration, RegistrationStore, RegistryError, Result, SecretCipher, SecretString,
    ToolKey, ToolKeyStore, check_expiry, check_id, validate_new_key,
};

use crate::OpenOptions;
use crate::common::{
    SealedConsumer, SealedKey, conflict, from_json, guid_conflict, guid_taken, is_published,
    lti13_nonce_key, oauth1_nonce_key, open_sorted, registration_id, single_for_issuer, to_json,
    tool_key_context,
};

/// Expired rows are purged after this many short-lived writes.
const PURGE_EVERY: u64 = 512;

/// A bound argument.
#[derive(Debug, Clone)]
enum Val {
    Text(String),
    Int(i64),
    OptText(Option<String>),
    OptInt(Option<i64>),
}

/// The type of a selected column.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Text,
    Int,
    OptText,
    OptInt,
}

/// One decoded row.
struct Cells(Vec<Val>);

impl Cells {
    fn text(&mut self, i: usize) -> String {
        match std::mem::replace(&mut self.0[i], Val::OptText(None)) {
            Val::Text(s) => s,
            _ => String::new(),
        }
    }
    fn int(&self, i: usize) -> i64 {
        match self.0[i] {
            Val::Int(v) => v,
            _ => 0,
        }
    }
    fn opt_text(&mut self, i: usize) -> Option<String> {
        match std::mem::replace(&mut self.0[i], Val::OptText(None)) {
            Val::OptText(s) => s,
            _ => None,
        }
    }
    fn opt_int(&self, i: usize) -> Option<i64> {
        match self.0[i] {
            Val::OptInt(v) => v,
            _ => None,
        }
    }
}

/// A statement of a transaction; when `zero_rows` is set and the statement
/// affects no row, the transaction is rolled back and that error returned.
struct Stmt {
    sql: &'static str,
    args: Vec<Val>,
    zero_rows: Option<RegistryError>,
}

fn stmt(sql: &'static str, args: Vec<Val>) -> Stmt {
    Stmt {
        sql,
        args,
        zero_rows: None,
    }
}

fn stmt_or(sql: &'static str, args: Vec<Val>, err: RegistryError) -> Stmt {
    Stmt {
        sql,
        args,
        zero_rows: Some(err),
    }
}

fn t(s: &str) -> Val {
    Val::Text(s.to_owned())
}

enum Driver {
    #[cfg(feature = "sqlite")]
    Sqlite(Box<sqlite::SqliteDb>),
    #[cfg(feature = "postgres")]
    Postgres(Box<postgres::PgDb>),
}

/// Maps a driver error: constraint violations become `Conflict`, decoding
/// errors `Corrupt`, everything else (connection refused, timeouts, a server
/// error) `StoreUnavailable` — fail closed.
#[cfg(feature = "postgres")]
fn map_err(backend: &'static str, e: sqlx::Error) -> RegistryError {
    match &e {
        sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
            RegistryError::Conflict {
                kind: "record",
                id: db.constraint().unwrap_or("unique key").to_owned(),
                reason: "expected a unique value, found a duplicate".to_owned(),
            }
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => RegistryError::Corrupt {
            backend,
            kind: "row",
            reason: e.to_string(),
        },
        _ => RegistryError::unavailable(backend, e),
    }
}

/// A failed first connection to PostgreSQL: names TLS when the handshake is
/// what failed, else as [`map_err`].
#[cfg(feature = "postgres")]
fn postgres_connect_err(e: sqlx::Error) -> RegistryError {
    crate::tls::tls_failure(
        "postgres",
        "PostgreSQL",
        "a webpki root or the sslrootcert CA",
        &e,
    )
    .unwrap_or_else(|| map_err("postgres", e))
}

#[cfg(feature = "postgres")]
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for v in $args {
            q = match v {
                Val::Text(s) => q.bind(s),
                Val::Int(i) => q.bind(i),
                Val::OptText(o) => q.bind(o),
                Val::OptInt(o) => q.bind(o),
            };
        }
        q
    }};
}

/// Runs `$query` with `$args` bound on `$conn` and decodes its rows as
/// `$kinds`; evaluates to `Result<Vec<Cells>>`.
#[cfg(feature = "postgres")]
macro_rules! fetch_rows {
    ($conn:expr, $query:expr, $args:expr, $kinds:expr) => {
        async {
            use sqlx::Row as _;
            let m = |e| map_err("postgres", e);
            let rows = bind_args!($query, $args)
                .fetch_all($conn)
                .await
                .map_err(m)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut cells = Vec::with_capacity($kinds.len());
                for (i, k) in $kinds.iter().enumerate() {
                    cells.push(match k {
                        Kind::Text => Val::Text(row.try_get::<String, _>(i).map_err(m)?),
                        Kind::Int => Val::Int(row.try_get::<i64, _>(i).map_err(m)?),
                        Kind::OptText => {
                            Val::OptText(row.try_get::<Option<String>, _>(i).map_err(m)?)
                        }
                        Kind::OptInt => Val::OptInt(row.try_get::<Option<i64>, _>(i).map_err(m)?),
                    });
                }
                out.push(Cells(cells));
            }
            Ok::<_, RegistryError>(out)
        }
        .await
    };
}

/// Whether a statement only reads (a SQLite file then runs it on a read
/// connection, in place).
#[cfg(feature = "sqlite")]
fn is_read(sql: &str) -> bool {
    sql.trim_start()
        .get(..6)
        .is_some_and(|w| w.eq_ignore_ascii_case("select"))
}

/// Runs `$body` (a `Result`) on a leased PostgreSQL connection bound to
/// `$conn`; the connection goes back to the idle list unless the body failed
/// with `StoreUnavailable` (the connection may be broken).
#[cfg(feature = "postgres")]
macro_rules! on_pg {
    ($db:expr, $conn:ident => $body:expr) => {{
        let mut lease = $db.acquire().await?;
        let out = {
            let $conn: &mut sqlx::PgConnection = lease.conn();
            $body
        };
        if !matches!(out, Err(RegistryError::StoreUnavailable { .. })) {
            lease.succeeded();
        }
        out
    }};
}

impl Driver {
    fn backend(&self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => "postgres",
        }
    }

    async fn execute(&self, sql: &'static str, args: Vec<Val>) -> Result<u64> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(db) => db.execute(sql, args).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(db) => on_pg!(db, conn => {
                bind_args!(sqlx::query(sql), args)
                    .execute(&mut *conn)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err(|e| map_err("postgres", e))
            }),
        }
    }

    /// [`Driver::execute`] for a write whose loss in a crash of the machine is
    /// harmless (launch data: the user launches again): SQLite commits it in
    /// a transaction of its own without syncing the WAL. Process crashes
    /// still lose nothing.
    async fn execute_relaxed(&self, sql: &'static str, args: Vec<Val>) -> Result<u64> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(db) => db.execute_relaxed(sql, args).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => self.execute(sql, args).await,
        }
    }

    /// Runs a statement returning rows: a read, or a write with `RETURNING`
    /// (one statement, so one atomic step: how single-use records are
    /// claimed).
    async fn fetch(&self, sql: &'static str, args: Vec<Val>, kinds: &[Kind]) -> Result<Vec<Cells>> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(db) => {
                if db.reads_in_place() && is_read(sql) {
                    db.read(sql, &args, kinds).await
                } else {
                    db.fetch(sql, args, kinds).await
                }
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(db) => on_pg!(db, conn => {
                fetch_rows!(&mut *conn, sqlx::query(sql), args, kinds)
            }),
        }
    }

    async fn transaction(&self, stmts: Vec<Stmt>) -> Result<()> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(db) => db.transaction(stmts).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(db) => on_pg!(db, conn => {
                async {
                    use sqlx::Connection as _;
                    let m = |e| map_err("postgres", e);
                    let mut tx = conn.begin().await.map_err(m)?;
                    for s in stmts {
                        let n = bind_args!(sqlx::query(s.sql), s.args)
                            .execute(&mut *tx)
                            .await
                            .map_err(m)?
                            .rows_affected();
                        if n == 0
                            && let Some(err) = s.zero_rows
                        {
                            // Dropping the transaction rolls it back.
                            return Err(err);
                        }
                    }
                    tx.commit().await.map_err(m)
                }
                .await
            }),
        }
    }

    /// PostgreSQL: creates the version table and applies pending migrations,
    /// serialized against concurrent openers by an advisory lock. (SQLite
    /// migrates as it opens.)
    #[cfg(feature = "postgres")]
    async fn migrate_postgres(db: &postgres::PgDb) -> Result<()> {
        on_pg!(db, conn => {
            async {
                use sqlx::Connection as _;
                let m = |e| map_err("postgres", e);
                let mut tx = conn.begin().await.map_err(m)?;
                sqlx::query("SELECT pg_advisory_xact_lock(7454950)")
                    .execute(&mut *tx)
                    .await
                    .map_err(m)?;
                sqlx::query(schema::VERSION_TABLE).execute(&mut *tx).await.map_err(m)?;
                let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM lti_schema_version")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(m)?;
                let current = schema::applied("postgres", current)?;
                for (i, migration) in schema::MIGRATIONS.iter().enumerate().skip(current) {
                    for sql in *migration {
                        sqlx::query(*sql).execute(&mut *tx).await.map_err(m)?;
                    }
                    let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
                    sqlx::query("INSERT INTO lti_schema_version (version) VALUES ($1)")
                        .bind(version)
                        .execute(&mut *tx)
                        .await
                        .map_err(m)?;
                }
                tx.commit().await.map_err(m)
            }
            .await
        })
    }

    async fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(db) => db.close().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(db) => db.close().await,
        }
    }
}

/// Every store trait over SQLite (the embedded default) or PostgreSQL.
///
/// The schema is migrated on open (`lti_schema_version` plus ordered
/// migrations). Single-use records are atomic in one statement: launch state
/// is consumed with `DELETE … RETURNING`, nonces recorded with `INSERT … ON
/// CONFLICT DO UPDATE … WHERE expired RETURNING`. Expired rows are purged
/// every few hundred writes (and on [`SqlStore::purge_expired`]). A database
/// that cannot be reached gives `StoreUnavailable`; the pool reconnects by
/// itself once it is back.
pub struct SqlStore {
    driver: Driver,
    cipher: SecretCipher,
    clock: Arc<dyn Clock>,
    writes: AtomicU64,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.driver.backend())
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Opens (creating if missing) a SQLite database: `sqlite://PATH`,
    /// `sqlite:PATH` or `sqlite::memory:`, and migrates it.
    ///
    /// A file runs in WAL mode with `synchronous = FULL`: a write is answered
    /// only after its commit synced the WAL, so an acknowledged consumed
    /// state or recorded nonce survives a crash of the process or of the
    /// machine. Launch data is the one exception: it commits in a
    /// transaction of its own without the sync, so a machine crash (not a
    /// killed process) may lose the launches saved since the WAL was last
    /// synced, never a claim.
    /// Writes go through one writer thread that commits the writes
    /// queued together as one transaction (one sync for all of them); reads
    /// run in place on one of the `pool_size` read connections opened with
    /// the store (WAL readers do not wait for the writer; a read waits at
    /// most the store timeout for a free connection). Other processes and other stores on the
    /// same file serialize on SQLite's write lock, waiting at most the store
    /// timeout. An in-memory database is one connection, the writer's, which
    /// serves reads too (it lives as long as the store).
    #[cfg(feature = "sqlite")]
    pub async fn open_sqlite(url: &str, options: &OpenOptions) -> Result<Self> {
        let db = sqlite::SqliteDb::open(url, options.pool_size, options.timeout).await?;
        Ok(Self::with_driver(Driver::Sqlite(Box::new(db)), options))
    }

    /// Connects to PostgreSQL (`postgres://…`). With
    /// [`OpenOptions::postgres_schema`], the schema is created if missing and
    /// used as the connections' `search_path` (isolation per tenant or test).
    ///
    /// TLS follows the URL's `sslmode` (`disable`, `prefer` — the default:
    /// encrypted when the server offers it, not verified —, `require`,
    /// `verify-ca`, `verify-full`) with rustls; verified modes trust the
    /// webpki roots plus the CA file in `sslrootcert=PATH`. As with libpq,
    /// `require` with an `sslrootcert` verifies the chain (`verify-ca`).
    #[cfg(feature = "postgres")]
    pub async fn open_postgres(url: &str, options: &OpenOptions) -> Result<Self> {
        use sqlx::postgres::PgConnectOptions;
        use std::str::FromStr as _;
        let connect = PgConnectOptions::from_str(url).map_err(|e| RegistryError::InvalidInput {
            field: "storage url",
            expected: "postgres://USER@HOST:PORT/DATABASE[?sslmode=verify-full&sslrootcert=PATH]",
            found: e.to_string(),
        })?;
        let mut connect = crate::tls::postgres_options(url, connect)?;
        if let Some(schema) = &options.postgres_schema {
            if schema.is_empty()
                || schema.len() > 63
                || !schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(RegistryError::InvalidInput {
                    field: "postgres_schema",
                    expected: "1 to 63 characters of a-z, 0-9 and '_'",
                    found: format!("{schema:?}"),
                });
            }
            // One connection of its own, before the store's connections use
            // the schema as their search_path.
            use sqlx::{ConnectOptions as _, Connection as _};
            let mut setup = tokio::time::timeout(options.timeout, connect.connect())
                .await
                .map_err(|_| {
                    RegistryError::unavailable(
                        "postgres",
                        format!("no connection within {:?}", options.timeout),
                    )
                })?
                .map_err(postgres_connect_err)?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&mut setup)
            .await
            .map_err(|e| map_err("postgres", e))?;
            // The schema exists; a failed goodbye changes nothing.
            let _ = setup.close().await;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let db = postgres::PgDb::open(connect, options.pool_size, options.timeout).await?;
        Driver::migrate_postgres(&db).await?;
        Ok(Self::with_driver(Driver::Postgres(Box::new(db)), options))
    }

    fn with_driver(driver: Driver, options: &OpenOptions) -> Self {
        Self {
            driver,
            cipher: options.cipher.clone(),
            clock: options.clock.clone(),
            writes: AtomicU64::new(0),
        }
    }

    /// `"sqlite"` or `"postgres"`.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        self.driver.backend()
    }

    /// Deletes expired launch state, nonces, launch data and shared values;
    /// returns how many rows.
    pub async fn purge_expired(&self) -> Result<u64> {
        let now = self.clock.now();
        let mut n = 0;
        for sql in [
            "DELETE FROM lti_launch_states WHERE expires_at <= $1",
            "DELETE FROM lti_nonces WHERE expires_at <= $1",
            "DELETE FROM lti_launch_data WHERE expires_at <= $1",
            "DELETE FROM lti_shared_values WHERE expires_at <= $1",
        ] {
            n += self.driver.execute(sql, vec![Val::Int(now)]).await?;
        }
        Ok(n)
    }

    /// Closes the connection pool.
    pub async fn close(&self) {
        self.driver.close().await;
    }

    async fn note_write(&self) {
        if self.writes.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1
            && let Err(e) = self.purge_expired().await
        {
            tracing::warn!(backend = self.backend(), error = %e, "purging expired rows failed");
        }
    }

    async fn record_once(&self, key: String, expires_at: i64, namespace: &str) -> Result<()> {
        let now = self.clock.now();
        check_expiry("expires_at", expires_at, now)?;
        // One statement: inserted unless an unexpired row holds the key, so
        // exactly one of concurrent recorders gets the row back.
        let won = self
            .driver
            .fetch(
                "INSERT INTO lti_nonces (nonce_key, expires_at) VALUES ($1, $2)
                 ON CONFLICT (nonce_key) DO UPDATE SET expires_at = excluded.expires_at
                 WHERE lti_nonces.expires_at <= $3 RETURNING nonce_key",
                vec![Val::Text(key), Val::Int(expires_at), Val::Int(now)],
                &[Kind::Text],
            )
            .await?;
        self.note_write().await;
        if won.is_empty() {
            Err(RegistryError::NonceReplayed {
                namespace: namespace.to_owned(),
            })
        } else {
            Ok(())
        }
    }

    async fn deployments_of(&self, issuer: &str, client_id: &str) -> Result<Vec<Deployment>> {
        let rows = self
            .driver
            .fetch(
                "SELECT deployment_id, status, label, created_at FROM lti_deployments
                 WHERE issuer = $1 AND client_id = $2 ORDER BY created_at, deployment_id",
                vec![t(issuer), t(client_id)],
                DEPLOYMENT_COLS,
            )
            .await?;
        rows.into_iter().map(deployment_from).collect()
    }

    fn registration_from(
        &self,
        body: &str,
        deployments: Vec<Deployment>,
    ) -> Result<PlatformRegistration> {
        let mut reg: PlatformRegistration = from_json(self.backend(), "registration", body)?;
        reg.deployments = deployments;
        Ok(reg)
    }

    fn registration_body(&self, registration: &PlatformRegistration) -> Result<String> {
        let mut bare = registration.clone();
        bare.deployments.clear();
        to_json(self.backend(), "registration", &bare)
    }

    async fn sealed_keys(&self, sql: &'static str, args: Vec<Val>) -> Result<Vec<SealedKey>> {
        let rows = self.driver.fetch(sql, args, KEY_COLS).await?;
        rows.into_iter()
            .map(|mut c| {
                Ok(SealedKey {
                    kid: c.text(0),
                    alg: c.text(1),
                    sealed_private_key: c.text(2),
                    status: KeyStatus::parse(&c.text(3))?,
                    created_at: c.int(4),
                    activated_at: c.opt_int(5),
                    retired_at: c.opt_int(6),
                })
            })
            .collect()
    }

    async fn sealed_consumers(
        &self,
        sql: &'static str,
        args: Vec<Val>,
    ) -> Result<Vec<SealedConsumer>> {
        let rows = self.driver.fetch(sql, args, CONSUMER_COLS).await?;
        Ok(rows
            .into_iter()
            .map(|mut c| SealedConsumer {
                key: c.text(0),
                sealed_secret: c.text(1),
                name: c.text(2),
                instance_guid: c.opt_text(3),
                created_at: c.int(4),
            })
            .collect())
    }
}

const DEPLOYMENT_COLS: &[Kind] = &[Kind::Text, Kind::Text, Kind::OptText, Kind::Int];
const KEY_COLS: &[Kind] = &[
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Text,
    Kind::Int,
    Kind::OptInt,
    Kind::OptInt,
];
const KEY_SELECT: &str =
    "SELECT kid, alg, private_key, status, created_at, activated_at, retired_at FROM lti_tool_keys";
const CONSUMER_COLS: &[Kind] = &[Kind::Text, Kind::Text, Kind::Text, Kind::OptText, Kind::Int];

fn deployment_from(mut c: Cells) -> Result<Deployment> {
    let mut d = Deployment::with_status(c.text(0), DeploymentStatus::parse(&c.text(1))?, c.int(3));
    d.label = c.opt_text(2);
    Ok(d)
}

fn insert_deployment_stmt(issuer: &str, client_id: &str, d: &Deployment) -> Stmt {
    stmt(
        "INSERT INTO lti_deployments (issuer, client_id, deployment_id, status, label, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            t(issuer),
            t(client_id),
            t(&d.deployment_id),
            t(d.status.as_str()),
            Val::OptText(d.label.clone()),
            Val::Int(d.created_at),
        ],
    )
}

#[async_trait]
impl RegistrationStore for SqlStore {
    async fn get_registration(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Arc<PlatformRegistration>> {
        // One statement (a launch reads this twice): the registration and its
        // deployments, one row per deployment (one row with NULLs for none).
        let rows = self
            .driver
            .fetch(
                "SELECT r.body, d.deployment_id, d.status, d.label, d.created_at
                 FROM lti_registrations r LEFT JOIN lti_deployments d
                   ON d.issuer = r.issuer AND d.client_id = r.client_id
                 WHERE r.issuer = $1 AND r.client_id = $2
                 ORDER BY d.created_at, d.deployment_id",
                vec![t(issuer), t(client_id)],
                &[
                    Kind::Text,
                    Kind::OptText,
                    Kind::OptText,
                    Kind::OptText,
                    Kind::OptInt,
                ],
            )
            .await?;
        let mut rows = rows.into_iter();
        let Some(mut first) = rows.next() else {
            return Err(RegistryError::not_found(
                "registration",
                registration_id(issuer, client_id),
            ));
        };
        let body = first.text(0);
        let mut deployments = Vec::new();
        for mut r in std::iter::once(first).chain(rows) {
            let Some(id) = r.opt_text(1) else { continue };
            let (Some(status), Some(created_at)) = (r.opt_text(2), r.opt_int(4)) else {
                return Err(RegistryError::Corrupt {
                    backend: self.backend(),
                    kind: "row",
                    reason: "expected a deployment's status and creation time, found NULL"
                        .to_owned(),
                });
            };
            let mut d = Deployment::with_status(id, DeploymentStatus::parse(&status)?, created_at);
            d.label = r.opt_text(3);
            deployments.push(d);
        }
        self.registration_from(&body, deployments).map(Arc::new)
    }

    async fn find_by_issuer(&self, issuer: &str) -> Result<Arc<PlatformRegistration>> {
        let rows = self
            .driver
            .fetch(
                "SELECT body FROM lti_registrations WHERE issuer = $1 ORDER BY client_id",
                vec![t(issuer)],
                &[Kind::Text],
            )
            .await?;
        let regs = rows
            .into_iter()
            .map(|mut r| self.registration_from(&r.text(0), Vec::new()))
            .collect::<Result<Vec<_>>>()?;
        let mut reg = single_for_issuer(issuer, regs)?;
        reg.deployments = self.deployments_of(&reg.issuer, &reg.client_id).await?;
        Ok(Arc::new(reg))
    }

    async fn list_registrations(&self) -> Result<Vec<PlatformRegistration>> {
        let rows = self
            .driver
            .fetch(
                "SELECT body FROM lti_registrations ORDER BY issuer, client_id",
                vec![],
                &[Kind::Text],
            )
            .await?;
        let mut deployments: BTreeMap<(String, String), Vec<Deployment>> = BTreeMap::new();
        let drows = self
            .driver
            .fetch(
                "SELECT deployment_id, status, label, created_at, issuer, client_id FROM lti_deployments
                 ORDER BY created_at, deployment_id",
                vec![],
                &[Kind::Text, Kind::Text, Kind::OptText, Kind::Int, Kind::Text, Kind::Text],
            )
            .await?;
        for mut r in drows {
            let key = (r.text(4), r.text(5));
            deployments
                .entry(key)
                .or_default()
                .push(deployment_from(r)?);
        }
        rows.into_iter()
            .map(|mut r| {
                let mut reg = self.registration_from(&r.text(0), Vec::new())?;
                reg.deployments = deployments
                    .remove(&(reg.issuer.clone(), reg.client_id.clone()))
                    .unwrap_or_default();
                Ok(reg)
            })
            .collect()
    }

    async fn insert_registration(&self, registration: &PlatformRegistration) -> Result<()> {
        registration.validate()?;
        let (iss, cid) = (&registration.issuer, &registration.client_id);
        let mut stmts = vec![stmt_or(
            "INSERT INTO lti_registrations (issuer, client_id, body) VALUES ($1, $2, $3)
             ON CONFLICT (issuer, client_id) DO NOTHING",
            vec![
                t(iss),
                t(cid),
                Val::Text(self.registration_body(registration)?),
            ],
            conflict(
                "registration",
                registration_id(iss, cid),
                "expected a new (issuer, client_id), found it registered",
            ),
        )];
        stmts.extend(
            registration
                .deployments
                .iter()
                .map(|d| insert_deployment_stmt(iss, cid, d)),
        );
        self.driver.transaction(stmts).await
    }

    async fn update_registration(&self, registration: &PlatformRegistration) -> Result<()> {
        registration.validate()?;
        let (iss, cid) = (&registration.issuer, &registration.client_id);
        let mut stmts = vec![
            stmt_or(
                "UPDATE lti_registrations SET body = $1 WHERE issuer = $2 AND client_id = $3",
                vec![
                    Val::Text(self.registration_body(registration)?),
                    t(iss),
                    t(cid),
                ],
                RegistryError::not_found("registration", registration_id(iss, cid)),
            ),
            stmt(
                "DELETE FROM lti_deployments WHERE issuer = $1 AND client_id = $2",
                vec![t(iss), t(cid)],
            ),
        ];
        stmts.extend(
            registration
                .deployments
                .iter()
                .map(|d| insert_deployment_stmt(iss, cid, d)),
        );
        self.driver.transaction(stmts).await
    }

    async fn delete_registration(&self, issuer: &str, client_id: &str) -> Result<()> {
        self.driver
            .transaction(vec![
                stmt(
                    "DELETE FROM lti_deployments WHERE issuer = $1 AND client_id = $2",
                    vec![t(issuer), t(client_id)],
                ),
                stmt_or(
                    "DELETE FROM lti_registrations WHERE issuer = $1 AND client_id = $2",
                    vec![t(issuer), t(client_id)],
                    RegistryError::not_found("registration", registration_id(issuer, client_id)),
                ),
            ])
            .await
    }

    async fn upsert_deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment: &Deployment,
    ) -> Result<()> {
        check_id("deployment_id", &deployment.deployment_id)?;
        let n = self
            .driver
            .execute(
                "INSERT INTO lti_deployments (issuer, client_id, deployment_id, status, label, created_at)
                 SELECT $1, $2, $3, $4, $5, $6
                 WHERE EXISTS (SELECT 1 FROM lti_registrations WHERE issuer = $1 AND client_id = $2)
                 ON CONFLICT (issuer, client_id, deployment_id)
                 DO UPDATE SET status = excluded.status, label = excluded.label",
                vec![
                    t(issuer),
                    t(client_id),
                    t(&deployment.deployment_id),
                    t(deployment.status.as_str()),
                    Val::OptText(deployment.label.clone()),
                    Val::Int(deployment.created_at),
                ],
            )
            .await?;
        if n == 0 {
            return Err(RegistryError::not_found(
                "registration",
                registration_id(issuer, client_id),
            ));
        }
        Ok(())
    }

    async fn set_auto_registration(&self, policy: &AutoRegistrationPolicy) -> Result<()> {
        policy.validate()?;
        self.driver
            .execute(
                "INSERT INTO lti_auto_registration (issuer, body) VALUES ($1, $2)
                 ON CONFLICT (issuer) DO UPDATE SET body = excluded.body",
                vec![
                    t(&policy.issuer),
                    Val::Text(to_json(self.backend(), "auto-registration policy", policy)?),
                ],
            )
            .await
            .map(|_| ())
    }

    async fn get_auto_registration(&self, issuer: &str) -> Result<Option<AutoRegistrationPolicy>> {
        let mut rows = self
            .driver
            .fetch(
                "SELECT body FROM lti_auto_registration WHERE issuer = $1",
                vec![t(issuer)],
                &[Kind::Text],
            )
            .await?;
        rows.pop()
            .map(|mut r| from_json(self.backend(), "auto-registration policy", &r.text(0)))
            .transpose()
    }

    async fn remove_auto_registration(&self, issuer: &str) -> Result<()> {
        self.driver
            .execute(
                "DELETE FROM lti_auto_registration WHERE issuer = $1",
                vec![t(issuer)],
            )
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl LaunchStateStore for SqlStore {
    async fn save_state(&self, state: &LaunchState) -> Result<()> {
        let now = self.clock.now();
        state.validate(now)?;
        let n = self
            .driver
            .execute(
                "INSERT INTO lti_launch_states (state, body, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (state) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at
                 WHERE lti_launch_states.expires_at <= $4",
                vec![
                    t(&state.state),
                    Val::Text(to_json(self.backend(), "launch state", state)?),
                    Val::Int(state.expires_at),
                    Val::Int(now),
                ],
            )
            .await?;
        self.note_write().await;
        if n == 0 {
            return Err(conflict(
                "launch state",
                "(state value withheld)",
                "expected a new state value, found an unexpired one",
            ));
        }
        Ok(())
    }

    async fn consume_state(&self, state: &str) -> Result<LaunchState> {
        check_id("state", state)?;
        // One statement: exactly one of concurrent consumers gets the row.
        let won = self
            .driver
            .fetch(
                "DELETE FROM lti_launch_states WHERE state = $1 RETURNING body, expires_at",
                vec![t(state)],
                &[Kind::Text, Kind::Int],
            )
            .await?;
        match won.into_iter().next() {
            Some(mut r) if r.int(1) > self.clock.now() => {
                from_json(self.backend(), "launch state", &r.text(0))
            }
            _ => Err(RegistryError::StateNotFound),
        }
    }
}

#[async_trait]
impl NonceStore for SqlStore {
    async fn record_nonce(&self, issuer: &str, nonce: &str, expires_at: i64) -> Result<()> {
        self.record_once(lti13_nonce_key(issuer, nonce)?, expires_at, issuer)
            .await
    }
}

#[async_trait]
impl OAuth1NonceStore for SqlStore {
    async fn record_oauth1_nonce(
        &self,
        consumer_key: &str,
        nonce: &str,
        expires_at: i64,
    ) -> Result<()> {
        self.record_once(
            oauth1_nonce_key(consumer_key, nonce)?,
            expires_at,
            consumer_key,
        )
        .await
    }
}

#[async_trait]
impl LaunchDataStore for SqlStore {
    async fn save_launch(
        &self,
        launch_id: &str,
        data: serde_json::Value,
        expires_at: i64,
    ) -> Result<()> {
        check_id("launch_id", launch_id)?;
        check_expiry("expires_at", expires_at, self.clock.now())?;
        self.driver
            .execute_relaxed(
                "INSERT INTO lti_launch_data (launch_id, body, expires_at) VALUES ($1, $2, $3)
                 ON CONFLICT (launch_id) DO UPDATE SET body = excluded.body, expires_at = excluded.expires_at",
                vec![
                    t(launch_id),
                    Val::Text(to_json(self.backend(), "launch data", &data)?),
                    Val::Int(expires_at),
                ],
            )
            .await?;
        self.note_write().await;
        Ok(())
    }

    async fn load_launch(&self, launch_id: &str) -> Result<serde_json::Value> {
        check_id("launch_id", launch_id)?;
        let mut rows = self
            .driver
            .fetch(
                "SELECT body, expires_at FROM lti_launch_data WHERE launch_id = $1",
                vec![t(launch_id)],
                &[Kind::Text, Kind::Int],
            )
            .await?;
        match rows.pop() {
            Some(mut r) if r.int(1) > self.clock.now() => {
                from_json(self.backend(), "launch data", &r.text(0))
            }
            _ => Err(RegistryError::not_found("launch data", launch_id)),
        }
    }

    async fn delete_launch(&self, launch_id: &str) -> Result<bool> {
        check_id("launch_id", launch_id)?;
        let rows = self
            .driver
            .fetch(
                "DELETE FROM lti_launch_data WHERE launch_id = $1 RETURNING expires_at",
                vec![t(launch_id)],
                &[Kind::Int],
            )
            .await?;
        let now = self.clock.now();
        Ok(rows.iter().any(|r| r.int(0) > now))
    }
}

#[async_trait]
impl ToolKeyStore for SqlStore {
    async fn add_next_key(
        &self,
        kid: &str,
        alg: &str,
        private_key_pem: &SecretString,
    ) -> Result<ToolKey> {
        validate_new_key(kid, alg, private_key_pem)?;
        let sealed = self
            .cipher
            .encrypt(private_key_pem.expose(), &tool_key_context(kid))?;
        let now = self.clock.now();
        let inserted = self
            .driver
            .execute(
                "INSERT INTO lti_tool_keys (kid, alg, private_key, status, created_at)
                 SELECT $1, $2, $3, 'next', $4
                 WHERE NOT EXISTS (SELECT 1 FROM lti_tool_keys WHERE status = 'next' OR kid = $1)",
                vec![t(kid), t(alg), Val::Text(sealed), Val::Int(now)],
            )
            .await
            .map_err(|e| match e {
                RegistryError::Conflict { .. } => conflict(
                    "tool key",
                    kid,
                    "expected no waiting next key, found one added concurrently",
                ),
                e => e,
            })?;
        if inserted == 0 {
            let existing = self
                .sealed_keys(
                    "SELECT kid, alg, private_key, status, created_at, activated_at, retired_at FROM lti_tool_keys
                     WHERE kid = $1 OR status = 'next'",
                    vec![t(kid)],
                )
                .await?;
            return Err(match existing.iter().find(|k| k.kid == kid) {
                Some(_) => conflict("tool key", kid, "expected a new kid, found it stored"),
                None => conflict(
                    "tool key",
                    kid,
                    format!(
                        "expected no waiting next key, found {:?}; promote it first",
                        existing.first().map(|k| k.kid.as_str()).unwrap_or_default()
                    ),
                ),
            });
        }
        let mut keys = self
            .sealed_keys(
                "SELECT kid, alg, private_key, status, created_at, activated_at, retired_at FROM lti_tool_keys WHERE kid = $1",
                vec![t(kid)],
            )
            .await?;
        keys.pop()
            .ok_or_else(|| RegistryError::not_found("tool key", kid))?
            .open(&self.cipher)
    }

    async fn promote_next_key(&self) -> Result<ToolKey> {
        let now = self.clock.now();
        self.driver
            .transaction(vec![
                stmt(
                    "UPDATE lti_tool_keys SET status = 'retired', retired_at = $1
                     WHERE status = 'active' AND EXISTS (SELECT 1 FROM lti_tool_keys WHERE status = 'next')",
                    vec![Val::Int(now)],
                ),
                stmt_or(
                    "UPDATE lti_tool_keys SET status = 'active', activated_at = $1 WHERE status = 'next'",
                    vec![Val::Int(now)],
                    RegistryError::not_found("tool key", "(status next)"),
                ),
            ])
            .await?;
        self.active_key().await
    }

    async fn active_key(&self) -> Result<ToolKey> {
        let mut keys = self
            .sealed_keys(
                "SELECT kid, alg, private_key, status, created_at, activated_at, retired_at FROM lti_tool_keys
                 WHERE status = 'active'",
                vec![],
            )
            .await?;
        keys.pop()
            .ok_or_else(|| RegistryError::not_found("tool key", "(status active)"))?
            .open(&self.cipher)
    }

    async fn published_keys(&self, retired_overlap_seconds: i64) -> Result<Vec<ToolKey>> {
        let now = self.clock.now();
        let sealed: Vec<SealedKey> = self
            .sealed_keys(KEY_SELECT, vec![])
            .await?
            .into_iter()
            .filter(|k| is_published(k.status, k.retired_at, retired_overlap_seconds, now))
            .collect();
        open_sorted(&sealed, &self.cipher)
    }

    async fn list_keys(&self) -> Result<Vec<ToolKey>> {
        let sealed = self.sealed_keys(KEY_SELECT, vec![]).await?;
        open_sorted(&sealed, &self.cipher)
    }

    async fn purge_retired_keys(&self, retired_before: i64) -> Result<u64> {
        self.driver
            .execute(
                "DELETE FROM lti_tool_keys WHERE status = 'retired' AND retired_at < $1",
                vec![Val::Int(retired_before)],
            )
            .await
    }
}

const CONSUMER_SELECT_BY_KEY: &str = "SELECT consumer_key, secret, name, instance_guid, created_at FROM lti_consumers WHERE consumer_key = $1";

#[async_trait]
impl ConsumerStore for SqlStore {
    async fn insert_consumer(&self, consumer: &Consumer) -> Result<()> {
        let s = SealedConsumer::seal(consumer, &self.cipher)?;
        let n = self
            .driver
            .execute(
                "INSERT INTO lti_consumers (consumer_key, secret, name, instance_guid, created_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                vec![
                    Val::Text(s.key),
                    Val::Text(s.sealed_secret),
                    Val::Text(s.name),
                    Val::OptText(s.instance_guid),
                    Val::Int(s.created_at),
                ],
            )
            .await?;
        if n == 0 {
            return Err(conflict(
                "consumer",
                consumer.key.clone(),
                "expected a new consumer key and an unused instance GUID, found one of them stored",
            ));
        }
        Ok(())
    }

    async fn update_consumer(&self, consumer: &Consumer) -> Result<()> {
        let s = SealedConsumer::seal(consumer, &self.cipher)?;
        let n = self
            .driver
            .execute(
                "UPDATE lti_consumers SET secret = $1, name = $2, instance_guid = $3 WHERE consumer_key = $4",
                vec![
                    Val::Text(s.sealed_secret),
                    Val::Text(s.name),
                    Val::OptText(s.instance_guid),
                    Val::Text(s.key),
                ],
            )
            .await
            .map_err(|e| match (e, &consumer.instance_guid) {
                (RegistryError::Conflict { .. }, Some(guid)) => guid_taken(guid),
                (e, _) => e,
            })?;
        if n == 0 {
            return Err(RegistryError::not_found("consumer", consumer.key.clone()));
        }
        Ok(())
    }

    async fn get_consumer(&self, key: &str) -> Result<Consumer> {
        self.sealed_consumers(CONSUMER_SELECT_BY_KEY, vec![t(key)])
            .await?
            .pop()
            .ok_or_else(|| RegistryError::not_found("consumer", key))?
            .open(&self.cipher)
    }

    async fn find_consumer_by_guid(&self, instance_guid: &str) -> Result<Option<Consumer>> {
        self.sealed_consumers(
            "SELECT consumer_key, secret, name, instance_guid, created_at FROM lti_consumers WHERE instance_guid = $1",
            vec![t(instance_guid)],
        )
        .await?
        .pop()
        .map(|s| s.open(&self.cipher))
        .transpose()
    }

    async fn list_consumers(&self) -> Result<Vec<Consumer>> {
        self.sealed_consumers(
            "SELECT consumer_key, secret, name, instance_guid, created_at FROM lti_consumers ORDER BY consumer_key",
            vec![],
        )
        .await?
        .iter()
        .map(|s| s.open(&self.cipher))
        .collect()
    }

    async fn delete_consumer(&self, key: &str) -> Result<()> {
        let n = self
            .driver
            .execute(
                "DELETE FROM lti_consumers WHERE consumer_key = $1",
                vec![t(key)],
            )
            .await?;
        if n == 0 {
            return Err(RegistryError::not_found("consumer", key));
        }
        Ok(())
    }

    async fn record_instance_guid(&self, key: &str, instance_guid: &str) -> Result<Consumer> {
        check_id("instance_guid", instance_guid)?;
        let n = self
            .driver
            .execute(
                "UPDATE lti_consumers SET instance_guid = $1 WHERE consumer_key = $2 AND instance_guid IS NULL",
                vec![t(instance_guid), t(key)],
            )
            .await
            .map_err(|e| match e {
                RegistryError::Conflict { .. } => guid_taken(instance_guid),
                e => e,
            })?;
        let consumer = self.get_consumer(key).await?;
        if n == 0 {
            match consumer.instance_guid.as_deref() {
                Some(g) if g == instance_guid => {}
                Some(g) => return Err(guid_conflict(key, g)),
                None => {
                    return Err(RegistryError::unavailable(
                        self.backend(),
                        "the instance GUID update was lost; retry",
                    ));
                }
            }
        }
        Ok(consumer)
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_given_up_waiting_for_the_writer_is_withdrawn_and_never_runs() {
        use lti_registry::{LaunchState, LaunchStateStore as _};
        let dir = std::env::temp_dir().join(format!(
            "lti-store-withdraw-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("t.db").display());
        let mut options = OpenOptions::new(SecretCipher::insecure_plaintext_for_tests());
        options.timeout = std::time::Duration::from_millis(150);
        let store = SqlStore::open_sqlite(&url, &options).await.unwrap();
        let now = store.clock.now();
        for state in ["a", "b"] {
            let saved = LaunchState::new(state, "n", "https://i", "c", "https://t/", now, 600);
            store.save_state(&saved).await.unwrap();
        }
        // Irrefutable when SQLite is the only driver compiled in.
        #[allow(irrefutable_let_patterns)]
        let Driver::Sqlite(db) = &store.driver else {
            panic!("a SQLite store");
        };
        // The writer stays busy past the timeout: the caller fails, and its
        // claim is withdrawn.
        let busy = db.hold_writer().await;
        let e = store.consume_state("a").await.unwrap_err();
        assert_eq!(e.code(), "store_unavailable", "{e}");
        assert!(e.to_string().contains("withdrawn"), "{e}");
        // A caller dropped while waiting withdraws its claim too.
        let gave_up = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            store.consume_state("b"),
        )
        .await;
        assert!(gave_up.is_err(), "still waiting when dropped");
        drop(busy);

        // Neither claim ran later behind its caller's back: both states are
        // still there for a caller that waits.
        assert_eq!(store.consume_state("a").await.unwrap().state, "a");
        assert_eq!(store.consume_state("b").await.unwrap().state, "b");
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
