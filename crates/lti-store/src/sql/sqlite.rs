//! SQLite through rusqlite: reads on the calling thread, writes on one
//! dedicated writer thread that commits whatever is queued as one
//! transaction (group commit).
//!
//! Why not a pooled async driver: every statement then travels to a
//! connection's worker thread and back (two thread wake-ups), and the pool
//! pings each connection it takes back (two more). On the launch path those
//! hops cost more CPU than the statements. Here a read is a cached prepared
//! statement run in place on one of the read connections opened with the
//! store (a WAL reader never waits for the writer), and a write is one hop
//! to the writer thread, shared by every write queued with it. See
//! `docs/performance/lti-store.md`.
//!
//! Durability: WAL with `synchronous = FULL` for every write but one class.
//! A commit of claims (consumed states, recorded nonces) and of every other
//! durable record syncs the WAL before any write of it is answered, so an
//! acknowledged claim survives a crash of the process *and* of the machine;
//! group commit pays that sync once per batch, not once per write. Launch
//! data ([`SqliteDb::execute_relaxed`]) is committed in a transaction of its
//! own without the sync (`synchronous = NORMAL`): a killed process loses
//! none of it (the commit is in the WAL, which the OS holds), a machine
//! crash may lose the launches saved since the WAL was last synced (the user
//! launches again), never a claim.
//!
//! Checkpoints are SQLite's own (inside the commit that fills the WAL to
//! 1,000 pages, on the writer thread). A writer page cache of 32 MiB and a
//! checkpoint every 100 ms after a batch was answered were tried and not
//! kept: the loaded machine's measurement with them showed more writer CPU
//! per cycle, not less (`docs/performance/lti-store.md`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use lti_registry::{RegistryError, Result};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use super::{Cells, Kind, Stmt, Val, schema};

const BACKEND: &str = "sqlite";

/// Writes committed together at most (one transaction).
const MAX_BATCH: usize = 64;

/// Prepared statements kept per connection: every statement of the store is
/// a constant, fewer than this.
const STATEMENT_CACHE: usize = 160;

/// A job's progress, shared by the caller and the writer thread: the writer
/// takes a queued job, a caller that gives up withdraws it; whichever comes
/// first wins, so a withdrawn job never runs and a taken one is answered.
const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const WITHDRAWN: u8 = 2;

/// Where the database lives.
#[derive(Clone, Debug)]
enum Target {
    File(PathBuf),
    /// A private in-memory database: one connection (the writer's) holds it.
    Memory,
}

/// Where a job's outcome goes: typed per job kind.
type Reply<T> = oneshot::Sender<Result<T>>;

/// What a job does on the writer's connection.
enum Work {
    Execute(&'static str, Vec<Val>, Reply<u64>),
    Fetch(&'static str, Vec<Val>, Vec<Kind>, Reply<Vec<Cells>>),
    Transaction(Vec<Stmt>, Reply<()>),
    /// Ends the writer thread (after the jobs queued before it).
    Close(oneshot::Sender<()>),
    /// Tells it started, then keeps the writer busy until the sender side of
    /// the receiver is dropped (tests).
    #[cfg(test)]
    Hold(oneshot::Sender<()>, mpsc::Receiver<()>),
}

/// A job that ran inside a batch's transaction: its reply and its outcome,
/// sent once the transaction committed.
enum Done {
    Count(Reply<u64>, Result<u64>),
    Rows(Reply<Vec<Cells>>, Result<Vec<Cells>>),
    Unit(Reply<()>, Result<()>),
}

/// A reply still owed, to be failed.
enum Owed {
    Count(Reply<u64>),
    Rows(Reply<Vec<Cells>>),
    Unit(Reply<()>),
}

struct Job {
    work: Work,
    /// Launch data: committed in an unsynced transaction of its own.
    relaxed: bool,
    ticket: Arc<AtomicU8>,
}

/// A connection and, per statement text, where each SQL parameter takes its
/// argument from (read once from the statement, not on every execution).
struct Conn {
    conn: Connection,
    params: HashMap<(usize, usize), Box<[usize]>>,
}

/// The read connections of a file database, opened with the store: a permit
/// of `slots` is a claim on one idle connection.
struct Readers {
    idle: Mutex<Vec<Conn>>,
    slots: tokio::sync::Semaphore,
}

/// A SQLite database: its read connections, and the writer thread's queue.
pub(super) struct SqliteDb {
    timeout: Duration,
    /// `None` in memory, where the writer's connection is the database and
    /// serves reads too.
    readers: Option<Readers>,
    queue: mpsc::Sender<Job>,
    closed: AtomicBool,
}

/// Maps a rusqlite error: constraint violations become `Conflict`, decoding
/// errors `Corrupt`, everything else (a locked or unreadable database, I/O)
/// `StoreUnavailable` — fail closed.
fn map_err(e: rusqlite::Error) -> RegistryError {
    use rusqlite::Error as E;
    match &e {
        E::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
        {
            RegistryError::Conflict {
                kind: "record",
                id: "unique key".to_owned(),
                reason: "expected a unique value, found a duplicate".to_owned(),
            }
        }
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::InvalidColumnIndex(_)
        | E::InvalidColumnName(_)
        | E::InvalidColumnType(..) => RegistryError::Corrupt {
            backend: BACKEND,
            kind: "row",
            reason: e.to_string(),
        },
        _ => RegistryError::unavailable(BACKEND, e),
    }
}

fn closed() -> RegistryError {
    RegistryError::unavailable(BACKEND, "the store was closed")
}

/// A job whose answer was lost: the writer thread ended while it ran.
fn interrupted() -> RegistryError {
    RegistryError::unavailable(
        BACKEND,
        "the write was interrupted before its outcome was known",
    )
}

/// `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:` (and `?mode=memory`).
fn parse_url(url: &str) -> Result<Target> {
    let bad = |found: String| RegistryError::InvalidInput {
        field: "storage url",
        expected: "sqlite://PATH or sqlite::memory:",
        found,
    };
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| bad("a URL without the sqlite: scheme".to_owned()))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = match query {
        "" => false,
        "mode=memory" => true,
        q => {
            return Err(bad(format!("query {q:?} (only mode=memory is understood)")));
        }
    };
    if memory || path == ":memory:" {
        return Ok(Target::Memory);
    }
    if path.is_empty() {
        return Err(bad("an empty path".to_owned()));
    }
    Ok(Target::File(PathBuf::from(path)))
}

/// Opens a connection with the store's settings; `writer` also switches the
/// file to WAL and sets the commit durability.
fn connect(target: &Target, timeout: Duration, writer: bool) -> rusqlite::Result<Conn> {
    let conn = match target {
        Target::Memory => Connection::open_in_memory()?,
        Target::File(path) => Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?,
    };
    conn.busy_timeout(timeout)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if writer && matches!(target, Target::File(_)) {
        // Persistent on the file: every later connection reads it in WAL mode.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("expected WAL journal mode, the file is in {mode}")),
            ));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    Ok(Conn {
        conn,
        params: HashMap::new(),
    })
}

/// For each SQL parameter of `stmt` (1-based), the index of its argument:
/// `$N` takes argument `N`, so a statement may use a parameter twice or out
/// of order.
fn param_map(stmt: &rusqlite::CachedStatement<'_>) -> Box<[usize]> {
    (1..=stmt.parameter_count())
        .map(|i| {
            stmt.parameter_name(i)
                .and_then(|name| name.strip_prefix('$'))
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(i)
                .wrapping_sub(1)
        })
        .collect()
}

impl Conn {
    /// The statement for `sql`, prepared once per connection, with `args`
    /// bound.
    fn bound(&mut self, sql: &'static str, args: &[Val]) -> Result<rusqlite::CachedStatement<'_>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(map_err)?;
        // Keyed by the text's address: every statement is a `'static` str.
        let map = self
            .params
            .entry((sql.as_ptr() as usize, sql.len()))
            .or_insert_with(|| param_map(&stmt));
        for (i, &n) in map.iter().enumerate() {
            let arg = args
                .get(n)
                .ok_or(rusqlite::Error::InvalidParameterCount(
                    n.wrapping_add(1),
                    args.len(),
                ))
                .map_err(map_err)?;
            let i = i + 1;
            match arg {
                Val::Text(s) => stmt.raw_bind_parameter(i, s.as_str()),
                Val::Int(v) => stmt.raw_bind_parameter(i, v),
                Val::OptText(o) => stmt.raw_bind_parameter(i, o.as_deref()),
                Val::OptInt(o) => stmt.raw_bind_parameter(i, o),
            }
            .map_err(map_err)?;
        }
        Ok(stmt)
    }

    /// Runs a statement that returns rows and decodes them as `kinds`.
    fn query(&mut self, sql: &'static str, args: &[Val], kinds: &[Kind]) -> Result<Vec<Cells>> {
        let mut stmt = self.bound(sql, args)?;
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(map_err)? {
            let mut cells = Vec::with_capacity(kinds.len());
            for (i, k) in kinds.iter().enumerate() {
                cells.push(match k {
                    Kind::Text => Val::Text(row.get(i).map_err(map_err)?),
                    Kind::Int => Val::Int(row.get(i).map_err(map_err)?),
                    Kind::OptText => Val::OptText(row.get(i).map_err(map_err)?),
                    Kind::OptInt => Val::OptInt(row.get(i).map_err(map_err)?),
                });
            }
            out.push(Cells(cells));
        }
        Ok(out)
    }

    /// Runs a statement that returns no rows; the number of rows it changed.
    fn execute(&mut self, sql: &'static str, args: &[Val]) -> Result<u64> {
        self.bound(sql, args)?
            .raw_execute()
            .map(|n| u64::try_from(n).unwrap_or(u64::MAX))
            .map_err(map_err)
    }

    fn plain(&mut self, sql: &'static str) -> Result<()> {
        self.execute(sql, &[]).map(|_| ())
    }

    fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }
}

impl Work {
    /// Runs the job inside the batch's open transaction. A failed job leaves
    /// the transaction as it was before the job (SQLite undoes a failed
    /// statement; a transaction job undoes its savepoint).
    fn run(self, conn: &mut Conn) -> Option<Done> {
        match self {
            Self::Execute(sql, args, reply) => Some(Done::Count(reply, conn.execute(sql, &args))),
            Self::Fetch(sql, args, kinds, reply) => {
                Some(Done::Rows(reply, conn.query(sql, &args, &kinds)))
            }
            Self::Transaction(stmts, reply) => Some(Done::Unit(reply, transaction(conn, stmts))),
            Self::Close(_) => None,
            #[cfg(test)]
            Self::Hold(started, until) => {
                let _ = started.send(());
                let _ = until.recv();
                None
            }
        }
    }

    /// The reply this job still owes (none for control jobs).
    fn owed(self) -> Option<Owed> {
        match self {
            Self::Execute(.., reply) => Some(Owed::Count(reply)),
            Self::Fetch(.., reply) => Some(Owed::Rows(reply)),
            Self::Transaction(_, reply) => Some(Owed::Unit(reply)),
            Self::Close(_) => None,
            #[cfg(test)]
            Self::Hold(..) => None,
        }
    }
}

/// A multi-statement write inside its own savepoint: all of it or nothing.
fn transaction(conn: &mut Conn, stmts: Vec<Stmt>) -> Result<()> {
    conn.plain("SAVEPOINT lti_job")?;
    let mut outcome = Ok(());
    for s in stmts {
        match conn.execute(s.sql, &s.args) {
            Ok(0) => {
                if let Some(refusal) = s.zero_rows {
                    outcome = Err(refusal);
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    if outcome.is_err() && conn.in_transaction() {
        conn.plain("ROLLBACK TO lti_job")?;
    }
    if conn.in_transaction() {
        conn.plain("RELEASE lti_job")?;
    }
    outcome
}

impl Done {
    /// Sends the outcome (the transaction committed).
    fn answer(self) {
        // A caller that has gone no longer needs its answer.
        let _ = match self {
            Self::Count(reply, out) => reply.send(out).map_err(drop),
            Self::Rows(reply, out) => reply.send(out).map_err(drop),
            Self::Unit(reply, out) => reply.send(out).map_err(drop),
        };
    }

    /// The reply, and the job's own error if it failed.
    fn abandon(self) -> (Owed, Option<RegistryError>) {
        match self {
            Self::Count(reply, out) => (Owed::Count(reply), out.err()),
            Self::Rows(reply, out) => (Owed::Rows(reply), out.err()),
            Self::Unit(reply, out) => (Owed::Unit(reply), out.err()),
        }
    }
}

impl Owed {
    fn fail(self, e: RegistryError) {
        let _ = match self {
            Self::Count(reply) => reply.send(Err(e)).map_err(drop),
            Self::Rows(reply) => reply.send(Err(e)).map_err(drop),
            Self::Unit(reply) => reply.send(Err(e)).map_err(drop),
        };
    }
}

/// Answers every job of a batch that failed as a whole: the cause to the
/// first, a note of it to the rest.
fn fail_all(owed: impl IntoIterator<Item = Owed>, e: RegistryError) {
    let shared = format!("a write committed together with this one failed: {e}");
    let mut first = Some(e);
    for reply in owed {
        let err = first
            .take()
            .unwrap_or_else(|| RegistryError::unavailable(BACKEND, &shared));
        reply.fail(err);
    }
}

/// Runs a batch as one transaction, synced (`durable`) or not, and answers
/// each job after the commit (or the failure of the whole batch): no answer
/// is ever given for a write that is not committed.
fn run_batch(conn: &mut Conn, batch: Vec<Work>, durable: bool, synced: &mut bool) {
    // The sync level can only change outside a transaction.
    if durable != *synced {
        let pragma = if durable {
            "PRAGMA synchronous = FULL"
        } else {
            "PRAGMA synchronous = NORMAL"
        };
        if let Err(e) = conn.plain(pragma) {
            fail_all(batch.into_iter().filter_map(Work::owed), e);
            return;
        }
        *synced = durable;
    }
    if let Err(e) = conn.plain("BEGIN IMMEDIATE") {
        fail_all(batch.into_iter().filter_map(Work::owed), e);
        return;
    }
    let mut done = Vec::with_capacity(batch.len());
    let mut works = batch.into_iter();
    while let Some(work) = works.next() {
        let Some(d) = work.run(conn) else { continue };
        if !conn.in_transaction() {
            // SQLite rolled the whole transaction back (an I/O error, a full
            // disk): nothing of this batch happened.
            let (owed, e) = d.abandon();
            let e = e.unwrap_or_else(|| {
                RegistryError::unavailable(BACKEND, "the transaction ended early")
            });
            let earlier = done.into_iter().map(|d: Done| d.abandon().0);
            fail_all(
                std::iter::once(owed)
                    .chain(earlier)
                    .chain(works.filter_map(Work::owed)),
                e,
            );
            return;
        }
        done.push(d);
    }
    if let Err(e) = conn.plain("COMMIT") {
        if conn.in_transaction() {
            let _ = conn.plain("ROLLBACK");
        }
        fail_all(done.into_iter().map(|d| d.abandon().0), e);
        return;
    }
    for d in done {
        d.answer();
    }
}

/// Runs the jobs taken together: launch-data saves first, in a transaction
/// of their own without the sync (answered at once), then every other write
/// in one synced transaction. Concurrent writes have no order between them,
/// so committing the relaxed ones first changes no outcome; a later synced
/// commit also makes the earlier unsynced frames of the WAL durable.
fn run_jobs(conn: &mut Conn, jobs: Vec<Job>, synced: &mut bool) {
    let (relaxed, durable): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| j.relaxed);
    for (jobs, sync) in [(relaxed, false), (durable, true)] {
        if !jobs.is_empty() {
            run_batch(
                conn,
                jobs.into_iter().map(|j| j.work).collect(),
                sync,
                synced,
            );
        }
    }
}

/// The writer thread: takes every job queued (up to [`MAX_BATCH`]) and runs
/// them (see [`run_jobs`]), until the store closes or is dropped.
fn writer_loop(mut conn: Conn, queue: mpsc::Receiver<Job>) {
    // `connect` set FULL.
    let mut synced = true;
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::new();
        let mut close = None;
        let mut next = Some(first);
        while let Some(job) = next {
            if let Work::Close(done) = job.work {
                close = Some(done);
                break;
            }
            if job
                .ticket
                .compare_exchange(QUEUED, TAKEN, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                batch.push(job);
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
            next = queue.try_recv().ok();
        }
        if !batch.is_empty() {
            run_jobs(&mut conn, batch, &mut synced);
        }
        if let Some(done) = close {
            drop(conn);
            let _ = done.send(());
            return;
        }
    }
}

/// Withdraws a queued job when its caller stops waiting (including when the
/// caller's future is dropped).
struct Withdraw(Option<Arc<AtomicU8>>);

impl Withdraw {
    /// `true` when the job was still queued and now never runs.
    fn withdraw(&mut self) -> bool {
        self.0.take().is_some_and(|t| {
            t.compare_exchange(QUEUED, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        self.withdraw();
    }
}

/// Creates the version table and applies pending migrations in one write
/// transaction (serialized against other openers by SQLite's write lock).
fn migrate(conn: &mut Conn) -> Result<()> {
    conn.plain("BEGIN IMMEDIATE")?;
    let applied = (|| {
        conn.plain(schema::VERSION_TABLE)?;
        let current = conn
            .query(
                "SELECT MAX(version) FROM lti_schema_version",
                &[],
                &[Kind::OptInt],
            )?
            .pop()
            .and_then(|c| c.opt_int(0));
        let current = schema::applied(BACKEND, current)?;
        for (i, migration) in schema::MIGRATIONS.iter().enumerate().skip(current) {
            for sql in *migration {
                conn.conn.execute_batch(sql).map_err(map_err)?;
            }
            let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
            conn.execute(
                "INSERT INTO lti_schema_version (version) VALUES ($1)",
                &[Val::Int(version)],
            )?;
        }
        conn.plain("COMMIT")
    })();
    if applied.is_err() && conn.in_transaction() {
        let _ = conn.plain("ROLLBACK");
    }
    applied
}

impl SqliteDb {
    /// Opens (creating if missing) and migrates the database, opens its
    /// `pool_size` read connections (a file) and starts its writer thread.
    pub(super) async fn open(url: &str, pool_size: u32, timeout: Duration) -> Result<Self> {
        let target = parse_url(url)?;
        let readers = usize::try_from(pool_size.max(1)).unwrap_or(1);
        let (conn, idle) = tokio::task::spawn_blocking(move || {
            let mut conn = connect(&target, timeout, true).map_err(map_err)?;
            migrate(&mut conn)?;
            let idle = match target {
                Target::File(_) => Some(
                    (0..readers)
                        .map(|_| connect(&target, timeout, false).map_err(map_err))
                        .collect::<Result<Vec<_>>>()?,
                ),
                Target::Memory => None,
            };
            Ok::<_, RegistryError>((conn, idle))
        })
        .await
        .map_err(|e| RegistryError::unavailable(BACKEND, e))??;
        let (queue, jobs) = mpsc::channel();
        std::thread::Builder::new()
            .name("lti-sqlite-writer".to_owned())
            .spawn(move || writer_loop(conn, jobs))
            .map_err(|e| RegistryError::unavailable(BACKEND, e))?;
        Ok(Self {
            timeout,
            readers: idle.map(|idle| Readers {
                slots: tokio::sync::Semaphore::new(idle.len()),
                idle: Mutex::new(idle),
            }),
            queue,
            closed: AtomicBool::new(false),
        })
    }

    /// Whether reads have connections of their own (a file database).
    pub(super) fn reads_in_place(&self) -> bool {
        self.readers.is_some()
    }

    /// Runs a read on the calling thread, on an idle read connection; waits
    /// (at most the store timeout) when every one is in use.
    pub(super) async fn read(
        &self,
        sql: &'static str,
        args: &[Val],
        kinds: &[Kind],
    ) -> Result<Vec<Cells>> {
        let Some(readers) = &self.readers else {
            return Err(RegistryError::unavailable(BACKEND, "no read connections"));
        };
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let _slot = match readers.slots.try_acquire() {
            Ok(slot) => slot,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(closed()),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                match tokio::time::timeout(self.timeout, readers.slots.acquire()).await {
                    Ok(Ok(slot)) => slot,
                    Ok(Err(_)) => return Err(closed()),
                    Err(_) => {
                        return Err(RegistryError::unavailable(
                            BACKEND,
                            format!(
                                "every read connection was busy for longer than {:?}",
                                self.timeout
                            ),
                        ));
                    }
                }
            }
        };
        // A slot stands for an idle connection, so there is one.
        let mut conn = readers
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .ok_or_else(closed)?;
        let out = conn.query(sql, args, kinds);
        readers
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn);
        out
    }

    /// Queues a write for the writer thread and waits for its answer, given
    /// after its transaction committed. A caller that waits longer than the
    /// store timeout withdraws the write (it then never runs) unless the
    /// writer took it already, in which case it waits for the outcome.
    async fn submit<T>(&self, relaxed: bool, work: impl FnOnce(Reply<T>) -> Work) -> Result<T> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let ticket = Arc::new(AtomicU8::new(QUEUED));
        let (reply, mut answer) = oneshot::channel();
        self.queue
            .send(Job {
                work: work(reply),
                relaxed,
                ticket: Arc::clone(&ticket),
            })
            .map_err(|_| closed())?;
        let mut queued = Withdraw(Some(ticket));
        match tokio::time::timeout(self.timeout, &mut answer).await {
            Ok(done) => {
                queued.0 = None;
                done.unwrap_or_else(|_| Err(interrupted()))
            }
            Err(_) => {
                if queued.withdraw() {
                    return Err(RegistryError::unavailable(
                        BACKEND,
                        format!(
                            "the writer was busy for longer than {:?}; the write was withdrawn and did not happen",
                            self.timeout
                        ),
                    ));
                }
                answer.await.unwrap_or_else(|_| Err(interrupted()))
            }
        }
    }

    /// [`SqliteDb::execute`] for a write whose loss in a machine crash is
    /// harmless (launch data): committed in a transaction of its own without
    /// the sync. A killed process loses nothing; a machine crash may lose it
    /// until a later synced commit (any claim) made it durable.
    pub(super) async fn execute_relaxed(&self, sql: &'static str, args: Vec<Val>) -> Result<u64> {
        self.submit(true, |reply| Work::Execute(sql, args, reply))
            .await
    }

    pub(super) async fn execute(&self, sql: &'static str, args: Vec<Val>) -> Result<u64> {
        self.submit(false, |reply| Work::Execute(sql, args, reply))
            .await
    }

    pub(super) async fn fetch(
        &self,
        sql: &'static str,
        args: Vec<Val>,
        kinds: &[Kind],
    ) -> Result<Vec<Cells>> {
        let kinds = kinds.to_vec();
        self.submit(false, |reply| Work::Fetch(sql, args, kinds, reply))
            .await
    }

    pub(super) async fn transaction(&self, stmts: Vec<Stmt>) -> Result<()> {
        self.submit(false, |reply| Work::Transaction(stmts, reply))
            .await
    }

    /// Finishes the queued writes, ends the writer thread and drops the
    /// idle read connections.
    pub(super) async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let (done, finished) = oneshot::channel();
        let sent = self.queue.send(Job {
            work: Work::Close(done),
            relaxed: false,
            ticket: Arc::new(AtomicU8::new(QUEUED)),
        });
        if sent.is_ok() {
            // Only fails when the thread already ended.
            let _ = finished.await;
        }
        if let Some(readers) = &self.readers {
            readers.slots.close();
            readers
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
    }

    /// Occupies the writer (it is running this job when this returns)
    /// until the returned sender is dropped (tests).
    #[cfg(test)]
    pub(super) async fn hold_writer(&self) -> mpsc::Sender<()> {
        let (release, until) = mpsc::channel();
        let (started, running) = oneshot::channel();
        let _ = self.queue.send(Job {
            work: Work::Hold(started, until),
            relaxed: false,
            ticket: Arc::new(AtomicU8::new(QUEUED)),
        });
        let _ = running.await;
        release
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBE: &str = "INSERT INTO probe (level) SELECT synchronous FROM pragma_synchronous";

    fn probe(relaxed: bool) -> (Job, oneshot::Receiver<Result<u64>>) {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            work: Work::Execute(PROBE, vec![], reply),
            relaxed,
            ticket: Arc::new(AtomicU8::new(TAKEN)),
        };
        (job, answer)
    }

    fn temp_db(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "lti-store-{tag}-{}-{:?}.db",
            std::process::id(),
            std::thread::current().id()
        ))
    }

    fn remove_db(path: &std::path::Path) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    /// Launch-data saves commit in a transaction of their own without the
    /// sync; every other write (every claim) commits synced, also when it
    /// was taken together with relaxed ones.
    #[test]
    fn relaxed_writes_commit_apart_without_the_sync_and_every_other_write_synced() {
        let path = temp_db("sync");
        let target = Target::File(path.clone());
        let mut conn = connect(&target, Duration::from_secs(5), true).unwrap();
        conn.conn
            .execute_batch("CREATE TABLE probe (level INTEGER NOT NULL)")
            .unwrap();
        let mut synced = true;
        let mut answers = Vec::new();
        for batch in [vec![true, true], vec![false, true], vec![true], vec![false]] {
            let (jobs, mut waiting): (Vec<Job>, Vec<_>) = batch.into_iter().map(probe).unzip();
            run_jobs(&mut conn, jobs, &mut synced);
            answers.extend(waiting.iter_mut().map(|a| a.try_recv().unwrap().is_ok()));
        }
        assert!(answers.iter().all(|ok| *ok));
        let levels: Vec<i64> = conn
            .conn
            .prepare("SELECT level FROM probe ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(std::result::Result::unwrap)
            .collect();
        // 1 = NORMAL, 2 = FULL; in the second batch the relaxed write
        // committed first, apart.
        assert_eq!(levels, [1, 1, 1, 2, 1, 2]);
        drop(conn);
        remove_db(&path);
    }

    /// A job that fails alone gets its own error and the others of its batch
    /// commit; a batch whose transaction cannot start fails every job in it.
    #[test]
    fn a_refused_write_fails_alone_and_a_failed_batch_fails_every_write() {
        let path = temp_db("fail");
        let target = Target::File(path.clone());
        let mut conn = connect(&target, Duration::from_millis(50), true).unwrap();
        conn.conn
            .execute_batch("CREATE TABLE u (k TEXT PRIMARY KEY)")
            .unwrap();
        const INSERT: &str = "INSERT INTO u (k) VALUES ($1)";
        let job = |k: &str| {
            let (reply, answer) = oneshot::channel();
            let job = Job {
                work: Work::Execute(INSERT, vec![Val::Text(k.to_owned())], reply),
                relaxed: false,
                ticket: Arc::new(AtomicU8::new(TAKEN)),
            };
            (job, answer)
        };
        let mut synced = true;
        let (jobs, mut answers): (Vec<Job>, Vec<_>) = ["a", "a", "b"].into_iter().map(job).unzip();
        run_jobs(&mut conn, jobs, &mut synced);
        let outcomes: Vec<_> = answers
            .iter_mut()
            .map(|a| a.try_recv().unwrap().map_err(|e| e.code()))
            .collect();
        assert_eq!(outcomes, [Ok(1), Err("conflict"), Ok(1)]);

        // Another connection holds the write lock: BEGIN IMMEDIATE times out.
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (jobs, mut answers): (Vec<Job>, Vec<_>) = ["c", "d"].into_iter().map(job).unzip();
        run_jobs(&mut conn, jobs, &mut synced);
        for a in &mut answers {
            assert_eq!(
                a.try_recv().unwrap().unwrap_err().code(),
                "store_unavailable"
            );
        }
        other.execute_batch("ROLLBACK").unwrap();
        let n: i64 = conn
            .conn
            .query_row("SELECT COUNT(*) FROM u", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        drop((conn, other));
        remove_db(&path);
    }

    /// `$N` takes argument N whatever the order the parameters appear in.
    #[test]
    fn parameters_bind_by_number_and_a_missing_argument_is_refused() {
        let mut conn = connect(&Target::Memory, Duration::from_secs(1), true).unwrap();
        const SQL: &str = "SELECT $2 || $1 || $2";
        for _ in 0..2 {
            let mut rows = conn
                .query(
                    SQL,
                    &[Val::Text("a".into()), Val::Text("b".into())],
                    &[Kind::Text],
                )
                .unwrap();
            assert_eq!(rows.pop().unwrap().text(0), "bab");
        }
        let e = conn
            .query(SQL, &[Val::Text("a".into())], &[Kind::Text])
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.code(), "store_unavailable", "{e}");
    }

    #[test]
    fn urls_name_a_file_or_memory_and_anything_else_is_invalid_input() {
        assert!(matches!(parse_url("sqlite::memory:"), Ok(Target::Memory)));
        assert!(matches!(
            parse_url("sqlite://x.db?mode=memory"),
            Ok(Target::Memory)
        ));
        assert!(
            matches!(parse_url("sqlite://data/lti.db"), Ok(Target::File(p)) if p.as_path() == std::path::Path::new("data/lti.db"))
        );
        assert!(
            matches!(parse_url("sqlite:///var/lti.db"), Ok(Target::File(p)) if p.as_path() == std::path::Path::new("/var/lti.db"))
        );
        assert!(
            matches!(parse_url("sqlite:lti.db"), Ok(Target::File(p)) if p.as_path() == std::path::Path::new("lti.db"))
        );
        for bad in ["sqlite://", "sqlite://x.db?cache=shared", "postgres://x"] {
            let e = parse_url(bad).map(|_| ()).unwrap_err();
            assert_eq!(e.code(), "invalid_input", "{bad}: {e}");
        }
    }
}
