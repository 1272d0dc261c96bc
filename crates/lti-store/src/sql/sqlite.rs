//! SQLite through rusqlite: reads on the calling thread, writes on one
//! dedicated writer thread that commits whatever is queued as one
//! transaction (group commit).
//!
//! Why not a pooled async driver: every statement then travels to a
//! connection's worker thread and back (two thread wake-ups), and the pool
//! pings each connection it takes back (two more). On the launch path those
//! hops cost more CPU than the statements. Here a read is a cached prepared
//! statement run in place (a WAL reader never waits for the writer), and a
//! write is one hop to the writer thread, shared by every write queued with
//! it. See `docs/performance/lti-store.md`.
//!
//! Durability: WAL with `synchronous = FULL`. Every commit syncs the WAL
//! before any write of it is answered, so a consumed state or a recorded
//! nonce that was acknowledged survives a crash of the process *and* of the
//! machine; group commit pays that sync once per batch, not once per write.
//! The one exception is a batch made only of launch-data saves
//! ([`SqliteDb::execute_relaxed`]): it commits without the sync, so a machine
//! crash may lose those launches (the user launches again), never a claim.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use lti_registry::{RegistryError, Result};
use rusqlite::{Connection, OpenFlags};

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

/// The outcome of a write.
pub(super) enum Out {
    Rows(Vec<Cells>),
    Affected(u64),
}

/// What a job does on the writer's connection.
enum Work {
    Execute(&'static str, Vec<Val>),
    /// An `Execute` whose loss in a machine crash is harmless (launch data:
    /// the user launches again). A batch of only these commits without the
    /// sync; any other write in the batch makes it synced.
    Relaxed(&'static str, Vec<Val>),
    Fetch(&'static str, Vec<Val>, Vec<Kind>),
    Transaction(Vec<Stmt>),
    /// Ends the writer thread (after the jobs queued before it).
    Close,
    /// Tells it started, then keeps the writer busy until the sender side of
    /// the receiver is dropped (tests).
    #[cfg(test)]
    Hold(tokio::sync::oneshot::Sender<()>, mpsc::Receiver<()>),
}

struct Job {
    work: Work,
    ticket: Arc<AtomicU8>,
    reply: tokio::sync::oneshot::Sender<Result<Out>>,
}

/// A SQLite database: idle read connections, and the writer thread's queue.
pub(super) struct SqliteDb {
    target: Target,
    timeout: Duration,
    /// Idle read connections of a file database (`None` in memory, where
    /// the writer's connection is the database and serves reads too).
    readers: Option<Mutex<Vec<Connection>>>,
    /// Idle read connections kept at most.
    max_idle: usize,
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
fn connect(target: &Target, timeout: Duration, writer: bool) -> rusqlite::Result<Connection> {
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
    Ok(conn)
}

/// Binds `args` to the statement's `$N` parameters (by number, so a
/// statement may use a parameter twice or out of order).
fn bind(stmt: &mut rusqlite::CachedStatement<'_>, args: &[Val]) -> rusqlite::Result<()> {
    let count = stmt.parameter_count();
    for i in 1..=count {
        let n = stmt
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(i);
        let arg = args
            .get(n.wrapping_sub(1))
            .ok_or(rusqlite::Error::InvalidParameterCount(n, args.len()))?;
        match arg {
            Val::Text(s) => stmt.raw_bind_parameter(i, s.as_str())?,
            Val::Int(v) => stmt.raw_bind_parameter(i, v)?,
            Val::OptText(o) => stmt.raw_bind_parameter(i, o.as_deref())?,
            Val::OptInt(o) => stmt.raw_bind_parameter(i, o)?,
        }
    }
    Ok(())
}

/// Runs a statement that returns rows and decodes them as `kinds`.
fn query(conn: &Connection, sql: &str, args: &[Val], kinds: &[Kind]) -> Result<Vec<Cells>> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    bind(&mut stmt, args).map_err(map_err)?;
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
fn execute(conn: &Connection, sql: &str, args: &[Val]) -> Result<u64> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    bind(&mut stmt, args).map_err(map_err)?;
    stmt.raw_execute()
        .map(|n| u64::try_from(n).unwrap_or(u64::MAX))
        .map_err(map_err)
}

fn plain(conn: &Connection, sql: &str) -> Result<()> {
    execute(conn, sql, &[]).map(|_| ())
}

impl Work {
    /// Runs the job inside the batch's open transaction. A failed job leaves
    /// the transaction as it was before the job (SQLite undoes a failed
    /// statement; a transaction job undoes its savepoint).
    fn run(self, conn: &Connection) -> Result<Out> {
        match self {
            Self::Execute(sql, args) | Self::Relaxed(sql, args) => {
                execute(conn, sql, &args).map(Out::Affected)
            }
            Self::Fetch(sql, args, kinds) => query(conn, sql, &args, &kinds).map(Out::Rows),
            Self::Transaction(stmts) => {
                plain(conn, "SAVEPOINT lti_job")?;
                let mut outcome = Ok(());
                for s in stmts {
                    match execute(conn, s.sql, &s.args) {
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
                if outcome.is_err() && !conn.is_autocommit() {
                    plain(conn, "ROLLBACK TO lti_job")?;
                }
                if !conn.is_autocommit() {
                    plain(conn, "RELEASE lti_job")?;
                }
                outcome.map(|()| Out::Affected(0))
            }
            Self::Close => Ok(Out::Affected(0)),
            #[cfg(test)]
            Self::Hold(started, until) => {
                let _ = started.send(());
                let _ = until.recv();
                Ok(Out::Affected(0))
            }
        }
    }
}

/// Answers every job of a batch that failed as a whole: the cause to the
/// first, a note of it to the rest.
fn fail_all(replies: Vec<tokio::sync::oneshot::Sender<Result<Out>>>, e: RegistryError) {
    let shared = format!("a write committed together with this one failed: {e}");
    let mut first = Some(e);
    for reply in replies {
        let err = first
            .take()
            .unwrap_or_else(|| RegistryError::unavailable(BACKEND, &shared));
        let _ = reply.send(Err(err));
    }
}

/// Runs a batch as one transaction and answers each job after the commit
/// (or the failure of the whole batch): no answer is ever given for a write
/// that is not durable.
fn run_batch(conn: &Connection, batch: Vec<Job>, synced: &mut bool) {
    let (works, replies): (Vec<Work>, Vec<_>) =
        batch.into_iter().map(|j| (j.work, j.reply)).unzip();
    // The sync level can only change outside a transaction.
    let sync = works.iter().any(|w| !matches!(w, Work::Relaxed(..)));
    if sync != *synced {
        let pragma = if sync {
            "PRAGMA synchronous = FULL"
        } else {
            "PRAGMA synchronous = NORMAL"
        };
        if let Err(e) = plain(conn, pragma) {
            fail_all(replies, e);
            return;
        }
        *synced = sync;
    }
    if let Err(e) = plain(conn, "BEGIN IMMEDIATE") {
        fail_all(replies, e);
        return;
    }
    let mut outs = Vec::with_capacity(works.len());
    for work in works {
        let out = work.run(conn);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back (an I/O error, a full
            // disk): nothing of this batch happened.
            let e = match out {
                Err(e) => e,
                Ok(_) => RegistryError::unavailable(BACKEND, "the transaction ended early"),
            };
            fail_all(replies, e);
            return;
        }
        outs.push(out);
    }
    if let Err(e) = plain(conn, "COMMIT") {
        if !conn.is_autocommit() {
            let _ = plain(conn, "ROLLBACK");
        }
        fail_all(replies, e);
        return;
    }
    for (reply, out) in replies.into_iter().zip(outs) {
        // A caller that has gone no longer needs its answer.
        let _ = reply.send(out);
    }
}

/// The writer thread: takes every job queued (up to [`MAX_BATCH`]) and runs
/// them as one transaction, until the store closes or is dropped.
fn writer_loop(conn: Connection, queue: mpsc::Receiver<Job>) {
    // `connect` set FULL.
    let mut synced = true;
    while let Ok(first) = queue.recv() {
        let mut batch = Vec::new();
        let mut close = None;
        let mut next = Some(first);
        while let Some(job) = next {
            if matches!(job.work, Work::Close) {
                close = Some(job);
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
            run_batch(&conn, batch, &mut synced);
        }
        if let Some(job) = close {
            drop(conn);
            let _ = job.reply.send(Ok(Out::Affected(0)));
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
fn migrate(conn: &Connection) -> Result<()> {
    plain(conn, "BEGIN IMMEDIATE")?;
    let applied = (|| {
        plain(conn, schema::VERSION_TABLE)?;
        let current = query(
            conn,
            "SELECT MAX(version) FROM lti_schema_version",
            &[],
            &[Kind::OptInt],
        )?
        .pop()
        .and_then(|c| c.opt_int(0));
        let current = schema::applied(BACKEND, current)?;
        for (i, migration) in schema::MIGRATIONS.iter().enumerate().skip(current) {
            for sql in *migration {
                conn.execute_batch(sql).map_err(map_err)?;
            }
            let version = i64::try_from(i + 1).unwrap_or(i64::MAX);
            execute(
                conn,
                "INSERT INTO lti_schema_version (version) VALUES ($1)",
                &[Val::Int(version)],
            )?;
        }
        plain(conn, "COMMIT")
    })();
    if applied.is_err() && !conn.is_autocommit() {
        let _ = plain(conn, "ROLLBACK");
    }
    applied
}

impl SqliteDb {
    /// Opens (creating if missing) and migrates the database, and starts its
    /// writer thread.
    pub(super) async fn open(url: &str, pool_size: u32, timeout: Duration) -> Result<Self> {
        let target = parse_url(url)?;
        let opening = target.clone();
        let conn = tokio::task::spawn_blocking(move || {
            let conn = connect(&opening, timeout, true).map_err(map_err)?;
            migrate(&conn)?;
            Ok::<_, RegistryError>(conn)
        })
        .await
        .map_err(|e| RegistryError::unavailable(BACKEND, e))??;
        let (queue, jobs) = mpsc::channel();
        std::thread::Builder::new()
            .name("lti-sqlite-writer".to_owned())
            .spawn(move || writer_loop(conn, jobs))
            .map_err(|e| RegistryError::unavailable(BACKEND, e))?;
        let readers = match target {
            Target::File(_) => Some(Mutex::new(Vec::new())),
            Target::Memory => None,
        };
        Ok(Self {
            target,
            timeout,
            readers,
            max_idle: usize::try_from(pool_size.max(1)).unwrap_or(1),
            queue,
            closed: AtomicBool::new(false),
        })
    }

    /// Whether reads have connections of their own (a file database).
    pub(super) fn reads_in_place(&self) -> bool {
        self.readers.is_some()
    }

    /// Runs a read on an idle read connection (opening one if none is idle)
    /// on the calling thread.
    pub(super) fn read(&self, sql: &str, args: &[Val], kinds: &[Kind]) -> Result<Vec<Cells>> {
        let Some(readers) = &self.readers else {
            return Err(RegistryError::unavailable(BACKEND, "no read connections"));
        };
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let idle = readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match idle {
            Some(c) => c,
            None => connect(&self.target, self.timeout, false).map_err(map_err)?,
        };
        let out = query(&conn, sql, args, kinds);
        let mut idle = readers.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
        out
    }

    /// Queues a write for the writer thread and waits for its answer, given
    /// after its transaction committed. A caller that waits longer than the
    /// store timeout withdraws the write (it then never runs) unless the
    /// writer took it already, in which case it waits for the outcome.
    async fn submit(&self, work: Work) -> Result<Out> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let ticket = Arc::new(AtomicU8::new(QUEUED));
        let (reply, mut answer) = tokio::sync::oneshot::channel();
        self.queue
            .send(Job {
                work,
                ticket: Arc::clone(&ticket),
                reply,
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
    /// harmless: committed without a sync unless it shares its transaction
    /// with other writes (a later synced commit makes it durable too).
    pub(super) async fn execute_relaxed(&self, sql: &'static str, args: Vec<Val>) -> Result<u64> {
        match self.submit(Work::Relaxed(sql, args)).await? {
            Out::Affected(n) => Ok(n),
            Out::Rows(rows) => Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX)),
        }
    }

    pub(super) async fn execute(&self, sql: &'static str, args: Vec<Val>) -> Result<u64> {
        match self.submit(Work::Execute(sql, args)).await? {
            Out::Affected(n) => Ok(n),
            Out::Rows(rows) => Ok(u64::try_from(rows.len()).unwrap_or(u64::MAX)),
        }
    }

    pub(super) async fn fetch(
        &self,
        sql: &'static str,
        args: Vec<Val>,
        kinds: &[Kind],
    ) -> Result<Vec<Cells>> {
        match self.submit(Work::Fetch(sql, args, kinds.to_vec())).await? {
            Out::Rows(rows) => Ok(rows),
            Out::Affected(_) => Ok(Vec::new()),
        }
    }

    pub(super) async fn transaction(&self, stmts: Vec<Stmt>) -> Result<()> {
        self.submit(Work::Transaction(stmts)).await.map(|_| ())
    }

    /// Finishes the queued writes, ends the writer thread and drops the
    /// idle read connections.
    pub(super) async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = self.queue.send(Job {
            work: Work::Close,
            ticket: Arc::new(AtomicU8::new(QUEUED)),
            reply,
        });
        if sent.is_ok() {
            // Only fails when the thread already ended.
            let _ = answer.await;
        }
        if let Some(readers) = &self.readers {
            readers
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
        let (started, running) = tokio::sync::oneshot::channel();
        let (reply, _) = tokio::sync::oneshot::channel();
        let _ = self.queue.send(Job {
            work: Work::Hold(started, until),
            ticket: Arc::new(AtomicU8::new(QUEUED)),
            reply,
        });
        let _ = running.await;
        release
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(work: Work) -> (Job, tokio::sync::oneshot::Receiver<Result<Out>>) {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            work,
            ticket: Arc::new(AtomicU8::new(TAKEN)),
            reply,
        };
        (job, answer)
    }

    /// Only a batch made of launch-data saves alone commits unsynced; a
    /// batch with any other write (every claim) is synced, also right after.
    #[test]
    fn only_a_batch_of_relaxed_writes_commits_without_the_sync() {
        let path = std::env::temp_dir().join(format!(
            "lti-store-sync-{}-{:?}.db",
            std::process::id(),
            std::thread::current().id()
        ));
        let target = Target::File(path.clone());
        let conn = connect(&target, Duration::from_secs(5), true).unwrap();
        conn.execute_batch("CREATE TABLE probe (level INTEGER NOT NULL)")
            .unwrap();
        const PROBE: &str = "INSERT INTO probe (level) SELECT synchronous FROM pragma_synchronous";
        let mut synced = true;
        let mut answers = Vec::new();
        for batch in [
            vec![Work::Relaxed(PROBE, vec![]), Work::Relaxed(PROBE, vec![])],
            vec![Work::Relaxed(PROBE, vec![]), Work::Execute(PROBE, vec![])],
            vec![Work::Relaxed(PROBE, vec![])],
            vec![Work::Execute(PROBE, vec![])],
        ] {
            let (jobs, mut waiting): (Vec<Job>, Vec<_>) = batch.into_iter().map(job).unzip();
            run_batch(&conn, jobs, &mut synced);
            answers.extend(waiting.iter_mut().map(|a| a.try_recv().unwrap().is_ok()));
        }
        assert!(answers.iter().all(|ok| *ok));
        let levels: Vec<i64> = conn
            .prepare("SELECT level FROM probe ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(std::result::Result::unwrap)
            .collect();
        // 1 = NORMAL, 2 = FULL.
        assert_eq!(levels, [1, 1, 2, 2, 1, 2]);
        drop(conn);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
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
