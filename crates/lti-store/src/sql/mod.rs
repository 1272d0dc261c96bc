//! The SQL backends (SQLite and PostgreSQL): one implementation of every
//! store trait over a small driver enum, so both databases run the same
//! statements and keep the same invariants.

mod provider;
mod schema;

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
    /// The first column as text (a claimed row's key).
    fn key(&self) -> &str {
        match self.0.first() {
            Some(Val::Text(s)) => s,
            _ => "",
        }
    }
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
    Sqlite(Box<SqliteDb>),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
}

/// A SQLite database: a pool for reads and, for a file, one dedicated
/// connection that every write of this store goes through.
///
/// SQLite lets one connection write at a time. Writers of one process that
/// use several connections meet on that lock and fall into SQLite's busy
/// handler, which sleeps (1 ms and more per attempt); funnelling them
/// through one connection queues them in process instead, without sleeping.
/// Writers in other processes (or other stores on the same file) still
/// serialize on SQLite's lock, with the busy timeout, so single-use records
/// stay exactly-once across processes.
#[cfg(feature = "sqlite")]
struct SqliteDb {
    /// Reads of a file; everything for an in-memory database, whose single
    /// connection is the database.
    pool: sqlx::SqlitePool,
    /// Writes of a file database.
    writer: Option<Arc<Writer>>,
}

/// The dedicated write connection of a SQLite file.
#[cfg(feature = "sqlite")]
struct Writer {
    connect: sqlx::sqlite::SqliteConnectOptions,
    /// How long a write waits for the connection before failing closed.
    timeout: std::time::Duration,
    /// `None` before a reconnect and after [`SqlStore::close`].
    conn: Arc<tokio::sync::Mutex<Option<sqlx::SqliteConnection>>>,
    /// Set when the connection failed a liveness check after an error.
    broken: std::sync::atomic::AtomicBool,
    closed: std::sync::atomic::AtomicBool,
    /// Claims waiting for the connection; whoever holds it runs them all.
    queue: std::sync::Mutex<Vec<Queued>>,
    /// Numbers the queued claims, so a caller can take its own back out.
    next_id: AtomicU64,
}

/// A queued claim of a caller still waiting: withdrawn when the caller
/// gives up, including when its future is dropped.
#[cfg(feature = "sqlite")]
struct Withdraw<'w> {
    writer: &'w Writer,
    /// `None` once the claim is known to be taken or answered.
    id: Option<u64>,
}

#[cfg(feature = "sqlite")]
impl Withdraw<'_> {
    /// Withdraws the claim now; `false` when it was taken already.
    fn withdraw(&mut self) -> bool {
        self.id.take().is_some_and(|id| self.writer.withdraw(id))
    }
}

#[cfg(feature = "sqlite")]
impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.withdraw();
    }
}

/// The writer's connection, lent to one operation or batch.
#[cfg(feature = "sqlite")]
type WriterGuard =
    tokio::sync::OwnedMappedMutexGuard<Option<sqlx::SqliteConnection>, sqlx::SqliteConnection>;

/// A claim waiting in a writer's queue.
#[cfg(feature = "sqlite")]
struct Queued {
    id: u64,
    claim: Claim,
    op: ClaimOp,
    reply: tokio::sync::oneshot::Sender<Result<Option<Cells>>>,
}

#[cfg(feature = "sqlite")]
impl Writer {
    async fn open(
        connect: sqlx::sqlite::SqliteConnectOptions,
        timeout: std::time::Duration,
    ) -> std::result::Result<Self, sqlx::Error> {
        use sqlx::ConnectOptions as _;
        let conn = connect.connect().await?;
        Ok(Self {
            connect,
            timeout,
            conn: Arc::new(tokio::sync::Mutex::new(Some(conn))),
            broken: std::sync::atomic::AtomicBool::new(false),
            closed: std::sync::atomic::AtomicBool::new(false),
            queue: std::sync::Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// Runs one claim. Claims queued by other tasks while the connection is
    /// busy are run by whichever of them gets it next, together: one
    /// statement (one transaction) per kind and [`Claim::MAX_BATCH`] claims.
    /// Every claim still gets its own answer, given only after the
    /// statement committed; a failed statement fails all its claims and
    /// changed nothing.
    ///
    /// A caller that gives up (the connection was not free within the
    /// timeout, or its future was dropped) takes its claim back out of the
    /// queue, so a claim never runs behind the back of a caller that saw an
    /// error. If the connection's holder took it already, the claim is under
    /// way: a timed-out caller then waits for its answer instead of failing.
    async fn claim(self: &Arc<Self>, claim: Claim, op: ClaimOp) -> Result<Option<Cells>> {
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.enqueue(Queued {
            id,
            claim,
            op,
            reply,
        });
        let mut queued = Withdraw {
            writer: self,
            id: Some(id),
        };
        tokio::select! {
            biased;
            // Another task ran this claim.
            done = &mut answer => {
                queued.id = None;
                done.unwrap_or_else(|_| Err(interrupted()))
            }
            conn = self.lock() => {
                let mut conn = match conn {
                    Ok(conn) => conn,
                    Err(e) => {
                        if queued.withdraw() {
                            return Err(map_err("sqlite", e));
                        }
                        return answer.await.unwrap_or_else(|_| Err(interrupted()));
                    }
                };
                queued.id = None;
                // Whoever held the connection before answered every claim it
                // took, so this one is answered or still queued.
                if let Ok(done) = answer.try_recv() {
                    return done;
                }
                let queued = self.take_queue();
                let writer = Arc::clone(self);
                // In a task of its own, so that every claim taken is answered
                // even if this caller stops waiting.
                tokio::spawn(async move {
                    if run_queued(&mut conn, queued).await {
                        writer.check_after_error(&mut conn).await;
                    }
                });
                answer.await.unwrap_or_else(|_| Err(interrupted()))
            }
        }
    }

    /// Takes the claim numbered `id` back out of the queue; `false` when the
    /// connection's holder took it already.
    fn withdraw(&self, id: u64) -> bool {
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match queue.iter().position(|q| q.id == id) {
            Some(i) => {
                queue.remove(i);
                true
            }
            None => false,
        }
    }

    fn enqueue(&self, queued: Queued) {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(queued);
    }

    fn take_queue(&self) -> Vec<Queued> {
        std::mem::take(
            &mut *self
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Waits (at most the timeout) for the connection, reconnecting first if
    /// it was found broken.
    async fn lock(&self) -> std::result::Result<WriterGuard, sqlx::Error> {
        use sqlx::ConnectOptions as _;
        let mut slot = tokio::time::timeout(self.timeout, Arc::clone(&self.conn).lock_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        if self.closed.load(Ordering::Acquire) {
            return Err(sqlx::Error::PoolClosed);
        }
        if slot.is_none() || self.broken.swap(false, Ordering::AcqRel) {
            *slot = None;
            *slot = Some(self.connect.connect().await?);
        }
        tokio::sync::OwnedMutexGuard::try_map(slot, Option::as_mut)
            .map_err(|_| sqlx::Error::PoolClosed)
    }

    /// After a failed operation: checks the connection's worker is alive,
    /// else marks it for a reconnect (the pool does the same for its own
    /// connections when they come back).
    async fn check_after_error(&self, conn: &mut sqlx::SqliteConnection) {
        use sqlx::Connection as _;
        if conn.ping().await.is_err() {
            self.broken.store(true, Ordering::Release);
        }
    }

    async fn close(&self) {
        use sqlx::Connection as _;
        self.closed.store(true, Ordering::Release);
        if let Some(conn) = self.conn.lock().await.take() {
            // Closing only fails when the worker is already gone.
            let _ = conn.close().await;
        }
    }
}

/// A connection lent to one operation.
#[cfg(feature = "sqlite")]
enum Lease<'a> {
    Pooled(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Writer(WriterGuard, &'a Writer),
}

#[cfg(feature = "sqlite")]
impl Lease<'_> {
    fn conn(&mut self) -> &mut sqlx::SqliteConnection {
        match self {
            Self::Pooled(c) => c,
            Self::Writer(c, _) => c,
        }
    }

    /// After a failed operation on the writer: see [`Writer::check_after_error`].
    async fn check_after_error(&mut self) {
        if let Self::Writer(c, w) = self {
            w.check_after_error(c).await;
        }
    }
}

#[cfg(feature = "sqlite")]
impl SqliteDb {
    /// The connection for a statement: the writer for a write to a file,
    /// else one from the pool.
    async fn lease(&self, write: bool) -> std::result::Result<Lease<'_>, sqlx::Error> {
        match &self.writer {
            Some(w) if write => Ok(Lease::Writer(w.lock().await?, w)),
            _ => self.pool.acquire().await.map(Lease::Pooled),
        }
    }
}

/// Maps a driver error: constraint violations become `Conflict`, decoding
/// errors `Corrupt`, everything else (connection refused, timeouts, a locked
/// database, a server error) `StoreUnavailable` — fail closed.
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
macro_rules! fetch_rows {
    ($conn:expr, $query:expr, $args:expr, $kinds:expr, $backend:expr) => {
        async {
            use sqlx::Row as _;
            let m = |e| map_err($backend, e);
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

/// Runs `$body` (a `Result<_, RegistryError>`) with `$conn` bound to a
/// connection (`&mut` the driver's connection type) fit for a write when
/// `$write` is true, and `$begin` to the statement that opens a write
/// transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`) so
/// concurrent writers queue on the busy timeout instead of failing to
/// upgrade a read transaction.
macro_rules! with_conn {
    ($driver:expr, $write:expr, $conn:ident, $begin:ident => $body:expr) => {
        match $driver {
            #[cfg(feature = "sqlite")]
            Driver::Sqlite(db) => {
                let mut lease = db.lease($write).await.map_err(|e| map_err("sqlite", e))?;
                let $begin = "BEGIN IMMEDIATE";
                let out = {
                    let $conn: &mut sqlx::SqliteConnection = lease.conn();
                    $body
                };
                if out.is_err() {
                    lease.check_after_error().await;
                }
                out
            }
            #[cfg(feature = "postgres")]
            Driver::Postgres(pool) => {
                let _ = $write;
                let mut pooled = pool.acquire().await.map_err(|e| map_err("postgres", e))?;
                let $begin = "BEGIN";
                let $conn: &mut sqlx::PgConnection = &mut pooled;
                $body
            }
        }
    };
}

/// Whether a statement only reads (it may then run on any pooled connection).
fn is_read(sql: &str) -> bool {
    sql.trim_start()
        .get(..6)
        .is_some_and(|w| w.eq_ignore_ascii_case("select"))
}

/// A single-use record write: several of the same kind run as one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// `consume_state`: deletes the state rows, returning them.
    State,
    /// `record_nonce` / `record_oauth1_nonce`: inserts the nonce keys unless
    /// an unexpired one is stored, returning those inserted.
    Nonce,
}

/// One claim's key (a state value or a nonce key) and, for a nonce, its
/// expiry and the time it was recorded at.
#[derive(Debug)]
struct ClaimOp {
    key: String,
    expires_at: i64,
    now: i64,
}

impl Claim {
    /// Claims per statement (so at most `2 × MAX_BATCH` statement texts).
    #[cfg(feature = "sqlite")]
    const MAX_BATCH: usize = 16;

    /// The returned columns; the first is the key.
    fn columns(self) -> &'static [Kind] {
        match self {
            Self::State => &[Kind::Text, Kind::Text, Kind::Int],
            Self::Nonce => &[Kind::Text],
        }
    }

    /// The statement claiming the distinct keys of `ops` (in one
    /// transaction), and its arguments. A nonce row may be replaced only if
    /// it expired by the earliest `now` of the claims.
    fn statement(self, ops: &[&ClaimOp]) -> (String, Vec<Val>) {
        let mut sql = String::with_capacity(160 + 12 * ops.len());
        let mut args = Vec::with_capacity(2 * ops.len() + 1);
        match self {
            Self::State => {
                sql.push_str("DELETE FROM lti_launch_states WHERE state IN (");
                for (i, op) in ops.iter().enumerate() {
                    sql.push_str(&format!("{}${}", if i == 0 { "" } else { ", " }, i + 1));
                    args.push(t(&op.key));
                }
                sql.push_str(") RETURNING state, body, expires_at");
            }
            Self::Nonce => {
                sql.push_str("INSERT INTO lti_nonces (nonce_key, expires_at) VALUES ");
                for (i, op) in ops.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    sql.push_str(&format!("{sep}(${}, ${})", 2 * i + 1, 2 * i + 2));
                    args.push(t(&op.key));
                    args.push(Val::Int(op.expires_at));
                }
                sql.push_str(&format!(
                    " ON CONFLICT (nonce_key) DO UPDATE SET expires_at = excluded.expires_at
                     WHERE lti_nonces.expires_at <= ${} RETURNING nonce_key",
                    args.len() + 1
                ));
                args.push(Val::Int(ops.iter().map(|o| o.now).min().unwrap_or(0)));
            }
        }
        (sql, args)
    }
}

/// Hands each claimed row to the first claim of its key (in `ops` order);
/// every other claim of that key gets `None`, so a key is won at most once.
fn distribute(ops: &[&ClaimOp], rows: Vec<Cells>) -> Vec<Option<Cells>> {
    let mut rows: Vec<Option<Cells>> = rows.into_iter().map(Some).collect();
    ops.iter()
        .map(|op| {
            rows.iter_mut()
                .find(|r| r.as_ref().is_some_and(|c| c.key() == op.key))
                .and_then(Option::take)
        })
        .collect()
}

/// Runs one claim statement for `ops` on `$conn`; evaluates to
/// `Result<Vec<Option<Cells>>>`, one answer per claim.
macro_rules! run_claims {
    ($conn:expr, $claim:expr, $ops:expr, $backend:expr) => {{
        let (claim, ops): (Claim, &[&ClaimOp]) = ($claim, $ops);
        let mut distinct: Vec<&ClaimOp> = Vec::with_capacity(ops.len());
        for op in ops {
            if !distinct.iter().any(|d| d.key == op.key) {
                distinct.push(op);
            }
        }
        let (sql, args) = claim.statement(&distinct);
        let query = sqlx::query(sqlx::AssertSqlSafe(sql));
        fetch_rows!($conn, query, args, claim.columns(), $backend).map(|rows| distribute(ops, rows))
    }};
}

/// A claim whose answer was lost: the task running it was cancelled.
#[cfg(feature = "sqlite")]
fn interrupted() -> RegistryError {
    RegistryError::unavailable(
        "sqlite",
        "the write was interrupted before its outcome was known",
    )
}

/// Runs queued claims (skipping those whose caller has gone) and answers
/// each; returns whether a statement failed.
#[cfg(feature = "sqlite")]
async fn run_queued(conn: &mut sqlx::SqliteConnection, queued: Vec<Queued>) -> bool {
    let mut failed = false;
    let (states, nonces): (Vec<Queued>, Vec<Queued>) = queued
        .into_iter()
        .filter(|q| !q.reply.is_closed())
        .partition(|q| q.claim == Claim::State);
    for (claim, mut rest) in [(Claim::State, states), (Claim::Nonce, nonces)] {
        while !rest.is_empty() {
            let chunk: Vec<Queued> = rest.drain(..rest.len().min(Claim::MAX_BATCH)).collect();
            let ops: Vec<&ClaimOp> = chunk.iter().map(|q| &q.op).collect();
            let answers: Result<Vec<Option<Cells>>> =
                run_claims!(&mut *conn, claim, &ops, "sqlite");
            failed |= answers.is_err();
            answer_all(chunk, answers);
        }
    }
    failed
}

/// Answers each claim of one statement: its own row, or (the statement
/// failed) the statement's error for the first and a note of it for the rest.
#[cfg(feature = "sqlite")]
fn answer_all(chunk: Vec<Queued>, answers: Result<Vec<Option<Cells>>>) {
    // A caller that has gone no longer needs its answer.
    match answers {
        Ok(answers) => {
            for (q, answer) in chunk.into_iter().zip(answers) {
                let _ = q.reply.send(Ok(answer));
            }
        }
        Err(e) => {
            let shared = format!("a write sharing this one's statement failed: {e}");
            let mut first = Some(e);
            for q in chunk {
                let err = first
                    .take()
                    .unwrap_or_else(|| RegistryError::unavailable("sqlite", &shared));
                let _ = q.reply.send(Err(err));
            }
        }
    }
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

    /// Runs one claim: through the writer's queue for a SQLite file, else as
    /// a statement of its own. `Some` row when this claim won its key.
    async fn claim(&self, claim: Claim, op: ClaimOp) -> Result<Option<Cells>> {
        #[cfg(feature = "sqlite")]
        if let Self::Sqlite(db) = self
            && let Some(w) = &db.writer
        {
            return w.claim(claim, op).await;
        }
        let backend = self.backend();
        with_conn!(self, true, conn, _begin => {
            let answers: Result<Vec<Option<Cells>>> =
                run_claims!(&mut *conn, claim, &[&op], backend);
            answers.map(|mut a| a.pop().flatten())
        })
    }

    async fn execute(&self, sql: &'static str, args: Vec<Val>) -> Result<u64> {
        let backend = self.backend();
        with_conn!(self, !is_read(sql), conn, _begin => {
            bind_args!(sqlx::query(sql), args)
                .execute(&mut *conn)
                .await
                .map(|r| r.rows_affected())
                .map_err(|e| map_err(backend, e))
        })
    }

    async fn fetch(&self, sql: &'static str, args: Vec<Val>, kinds: &[Kind]) -> Result<Vec<Cells>> {
        let backend = self.backend();
        with_conn!(self, !is_read(sql), conn, _begin => {
            fetch_rows!(&mut *conn, sqlx::query(sql), args, kinds, backend)
        })
    }

    async fn transaction(&self, stmts: Vec<Stmt>) -> Result<()> {
        let backend = self.backend();
        with_conn!(self, true, conn, begin => {
            async {
                use sqlx::Connection as _;
                let mut tx = conn.begin_with(begin).await.map_err(|e| map_err(backend, e))?;
                for s in stmts {
                    let n = bind_args!(sqlx::query(s.sql), s.args)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_err(backend, e))?
                        .rows_affected();
                    if n == 0
                        && let Some(err) = s.zero_rows
                    {
                        // Dropping the transaction rolls it back.
                        return Err(err);
                    }
                }
                tx.commit().await.map_err(|e| map_err(backend, e))
            }
            .await
        })
    }

    /// Creates the version table and applies pending migrations, serialized
    /// against concurrent openers (SQLite write lock, PostgreSQL advisory lock).
    async fn migrate(&self) -> Result<()> {
        let backend = self.backend();
        with_conn!(self, true, conn, begin => {
            async {
                use sqlx::Connection as _;
                let m = |e| map_err(backend, e);
                let mut tx = conn.begin_with(begin).await.map_err(m)?;
                if backend == "postgres" {
                    sqlx::query("SELECT pg_advisory_xact_lock(7454950)")
                        .execute(&mut *tx)
                        .await
                        .map_err(m)?;
                }
                sqlx::query(schema::VERSION_TABLE).execute(&mut *tx).await.map_err(m)?;
                let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM lti_schema_version")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(m)?;
                let current = usize::try_from(current.unwrap_or(0)).unwrap_or(0);
                if current > schema::MIGRATIONS.len() {
                    return Err(RegistryError::Corrupt {
                        backend,
                        kind: "schema",
                        reason: format!(
                            "expected schema version at most {}, found {current}; this build is older than the database",
                            schema::MIGRATIONS.len()
                        ),
                    });
                }
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
            Self::Sqlite(db) => {
                if let Some(w) = &db.writer {
                    w.close().await;
                }
                db.pool.close().await;
            }
            #[cfg(feature = "postgres")]
            Self::Postgres(pool) => pool.close().await,
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

/// Pings a connection before lending it: a server connection that died while
/// idle (a PostgreSQL restart) is then replaced instead of failing the next
/// operation. SQLite turns it off (see [`SqlStore::open_sqlite`]).
fn pool_options<DB: sqlx::Database>(options: &OpenOptions) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .max_connections(options.pool_size.max(1))
        .acquire_timeout(options.timeout)
        .test_before_acquire(true)
}

impl SqlStore {
    /// Opens (creating if missing) a SQLite database: `sqlite://PATH`,
    /// `sqlite:PATH` or `sqlite::memory:`. Files use WAL mode with
    /// `synchronous = NORMAL` (a commit is durable against a crash of the
    /// process, not of the machine: the WAL is synced at checkpoints) and a
    /// busy timeout; reads use a pool of `pool_size` connections and writes
    /// one dedicated connection. An in-memory database uses a single
    /// connection (it lives as long as the store).
    #[cfg(feature = "sqlite")]
    pub async fn open_sqlite(url: &str, options: &OpenOptions) -> Result<Self> {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
        use std::str::FromStr as _;
        let connect =
            SqliteConnectOptions::from_str(url).map_err(|e| RegistryError::InvalidInput {
                field: "storage url",
                expected: "sqlite://PATH or sqlite::memory:",
                found: e.to_string(),
            })?;
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let connect = connect
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(options.timeout);
        // A local connection's worker thread does not go stale, so no ping
        // before each use (the pool still pings when a connection returns).
        let pool_opts = pool_options::<sqlx::Sqlite>(options).test_before_acquire(false);
        let m = |e| map_err("sqlite", e);
        let db = if in_memory {
            let pool = pool_opts
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(connect)
                .await
                .map_err(m)?;
            SqliteDb { pool, writer: None }
        } else {
            let connect = connect
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            // The writer first: it creates the file and switches it to WAL.
            // It prepares every write statement, claims of up to
            // `2 × Claim::MAX_BATCH` shapes among them: keep them all.
            let writer = Writer::open(
                connect.clone().statement_cache_capacity(256),
                options.timeout,
            )
            .await
            .map_err(m)?;
            let pool = pool_opts.connect_with(connect).await.map_err(m)?;
            SqliteDb {
                pool,
                writer: Some(Arc::new(writer)),
            }
        };
        Self::finish(Driver::Sqlite(Box::new(db)), options).await
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
            let setup = sqlx::pool::PoolOptions::<sqlx::Postgres>::new()
                .max_connections(1)
                .acquire_timeout(options.timeout)
                .connect_with(connect.clone())
                .await
                .map_err(postgres_connect_err)?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&setup)
            .await
            .map_err(|e| map_err("postgres", e))?;
            setup.close().await;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        let pool = pool_options::<sqlx::Postgres>(options)
            .connect_with(connect)
            .await
            .map_err(postgres_connect_err)?;
        Self::finish(Driver::Postgres(pool), options).await
    }

    async fn finish(driver: Driver, options: &OpenOptions) -> Result<Self> {
        driver.migrate().await?;
        Ok(Self {
            driver,
            cipher: options.cipher.clone(),
            clock: options.clock.clone(),
            writes: AtomicU64::new(0),
        })
    }

    /// `"sqlite"` or `"postgres"`.
    #[must_use]
    pub fn backend(&self) -> &'static str {
        self.driver.backend()
    }

    /// Deletes expired launch state, nonces and launch data; returns how many rows.
    pub async fn purge_expired(&self) -> Result<u64> {
        let now = self.clock.now();
        let mut n = 0;
        for sql in [
            "DELETE FROM lti_launch_states WHERE expires_at <= $1",
            "DELETE FROM lti_nonces WHERE expires_at <= $1",
            "DELETE FROM lti_launch_data WHERE expires_at <= $1",
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
        let won = self
            .driver
            .claim(
                Claim::Nonce,
                ClaimOp {
                    key,
                    expires_at,
                    now,
                },
            )
            .await?;
        self.note_write().await;
        if won.is_none() {
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
        let mut rows = self
            .driver
            .fetch(
                "SELECT body FROM lti_registrations WHERE issuer = $1 AND client_id = $2",
                vec![t(issuer), t(client_id)],
                &[Kind::Text],
            )
            .await?;
        let Some(mut row) = rows.pop() else {
            return Err(RegistryError::not_found(
                "registration",
                registration_id(issuer, client_id),
            ));
        };
        let deployments = self.deployments_of(issuer, client_id).await?;
        self.registration_from(&row.text(0), deployments)
            .map(Arc::new)
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
        let won = self
            .driver
            .claim(
                Claim::State,
                ClaimOp {
                    key: state.to_owned(),
                    expires_at: 0,
                    now: 0,
                },
            )
            .await?;
        match won {
            // Columns: state, body, expires_at.
            Some(mut r) if r.int(2) > self.clock.now() => {
                from_json(self.backend(), "launch state", &r.text(1))
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
            .execute(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn op(key: &str, now: i64) -> ClaimOp {
        ClaimOp {
            key: key.to_owned(),
            expires_at: now + 60,
            now,
        }
    }

    #[test]
    fn a_claimed_row_goes_to_the_first_claim_of_its_key_only() {
        let (a1, b, a2) = (op("a", 0), op("b", 0), op("a", 0));
        let rows = vec![Cells(vec![t("a"), Val::Int(7)])];
        let answers = distribute(&[&a1, &b, &a2], rows);
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[0].as_ref().map(|c| c.int(1)), Some(7));
        assert!(answers[1].is_none(), "b was not claimed");
        assert!(answers[2].is_none(), "a is won once");
    }

    #[test]
    fn a_batched_nonce_statement_numbers_each_claim_and_replaces_only_rows_expired_by_the_earliest_now()
     {
        let (x, y) = (op("x", 20), op("y", 10));
        let (sql, args) = Claim::Nonce.statement(&[&x, &y]);
        assert!(sql.contains("VALUES ($1, $2), ($3, $4)"), "{sql}");
        assert!(sql.contains("lti_nonces.expires_at <= $5"), "{sql}");
        assert_eq!(args.len(), 5);
        assert!(matches!(args[4], Val::Int(10)));
        let (sql, args) = Claim::State.statement(&[&x, &y]);
        assert!(sql.contains("state IN ($1, $2)"), "{sql}");
        assert_eq!(args.len(), 2);
    }

    #[cfg(feature = "sqlite")]
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
        let writer = Arc::clone(db.writer.as_ref().unwrap());
        let queued = || writer.queue.lock().unwrap().len();

        // The connection stays busy past the timeout: the caller fails, and
        // its claim leaves the queue with it.
        let busy = Arc::clone(&writer.conn).lock_owned().await;
        let e = store.consume_state("a").await.unwrap_err();
        assert_eq!(e.code(), "store_unavailable", "{e}");
        assert_eq!(queued(), 0);
        // A caller dropped while waiting takes its claim out too.
        let gave_up = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            store.consume_state("b"),
        )
        .await;
        assert!(gave_up.is_err(), "still waiting when dropped");
        assert_eq!(queued(), 0);
        drop(busy);

        // Neither claim ran later behind its caller's back: both states are
        // still there for a caller that waits.
        assert_eq!(store.consume_state("a").await.unwrap().state, "a");
        assert_eq!(store.consume_state("b").await.unwrap().state, "b");
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
