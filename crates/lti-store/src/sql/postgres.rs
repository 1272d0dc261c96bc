//! The PostgreSQL connection set: at most `pool_size` connections, lent to
//! one operation at a time, without the round trips a general-purpose pool
//! adds to each.
//!
//! sqlx's `Pool` sends a `Sync` to the server before lending a connection
//! (`test_before_acquire`) and again when taking it back (always): with one
//! statement per operation that is three round trips, and three server
//! wake-ups, instead of one. Here a connection that comes back from a
//! successful operation goes straight to the idle list; a connection whose
//! operation failed or was cancelled is dropped (it may be broken or
//! mid-protocol) and replaced on demand; a connection idle for longer than
//! [`CHECK_IDLE_AFTER`] is pinged before it is lent, so one that died while
//! idle (a server restart, a proxy's idle timeout) is replaced instead of
//! failing the next operation. Prepared statements stay cached per
//! connection (sqlx's statement cache).

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lti_registry::{RegistryError, Result};
use sqlx::ConnectOptions as _;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::{Semaphore, SemaphorePermit};

const BACKEND: &str = "postgres";

/// Idle time after which a connection is pinged before it is lent.
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(10);

struct Idle {
    conn: PgConnection,
    since: Instant,
}

/// The connections of one store.
pub(super) struct PgDb {
    connect: PgConnectOptions,
    timeout: Duration,
    idle: Mutex<Vec<Idle>>,
    permits: Semaphore,
    closed: AtomicBool,
}

/// A connection lent to one operation; it goes back to the idle list only
/// when the operation said it [`Lease::succeeded`].
pub(super) struct Lease<'a> {
    db: &'a PgDb,
    conn: Option<PgConnection>,
    ok: bool,
    _permit: SemaphorePermit<'a>,
}

impl Lease<'_> {
    pub(super) fn conn(&mut self) -> &mut PgConnection {
        // Present from acquire until drop.
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }

    /// Marks the connection fit to lend again.
    pub(super) fn succeeded(&mut self) {
        self.ok = true;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.ok
            && !self.db.closed.load(Ordering::Acquire)
        {
            self.db
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Idle {
                    conn,
                    since: Instant::now(),
                });
        }
    }
}

impl PgDb {
    /// Connects one connection (so a bad URL or an unreachable server fails
    /// the open) and keeps it idle.
    pub(super) async fn open(
        connect: PgConnectOptions,
        pool_size: u32,
        timeout: Duration,
    ) -> Result<Self> {
        let db = Self {
            connect,
            timeout,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(usize::try_from(pool_size.max(1)).unwrap_or(1)),
            closed: AtomicBool::new(false),
        };
        let mut first = db.acquire().await?;
        first.succeeded();
        drop(first);
        Ok(db)
    }

    async fn connect(&self) -> Result<PgConnection> {
        tokio::time::timeout(self.timeout, self.connect.connect())
            .await
            .map_err(|_| {
                RegistryError::unavailable(
                    BACKEND,
                    format!("no connection within {:?}", self.timeout),
                )
            })?
            // A failed handshake names TLS (certificate, host name) rather
            // than a generic outage.
            .map_err(super::postgres_connect_err)
    }

    /// Lends a connection: an idle one (pinged first if it idled long), else
    /// a new one; waits at most the store timeout for a free slot.
    pub(super) async fn acquire(&self) -> Result<Lease<'_>> {
        let permit = tokio::time::timeout(self.timeout, self.permits.acquire())
            .await
            .map_err(|_| {
                RegistryError::unavailable(
                    BACKEND,
                    format!(
                        "every connection stayed busy for longer than {:?}",
                        self.timeout
                    ),
                )
            })?
            .map_err(|_| RegistryError::unavailable(BACKEND, "the store was closed"))?;
        if self.closed.load(Ordering::Acquire) {
            return Err(RegistryError::unavailable(BACKEND, "the store was closed"));
        }
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let Some(mut idle) = idle else {
                let conn = self.connect().await?;
                return Ok(Lease {
                    db: self,
                    conn: Some(conn),
                    ok: false,
                    _permit: permit,
                });
            };
            if idle.since.elapsed() >= CHECK_IDLE_AFTER {
                let alive = tokio::time::timeout(self.timeout, idle.conn.ping()).await;
                if !matches!(alive, Ok(Ok(()))) {
                    // Dead or unresponsive: drop it and try the next.
                    continue;
                }
            }
            return Ok(Lease {
                db: self,
                conn: Some(idle.conn),
                ok: false,
                _permit: permit,
            });
        }
    }

    /// Closes every idle connection; leased ones close when they come back.
    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        for i in idle {
            // Closing only fails when the connection is already gone.
            let _ = i.conn.close().await;
        }
    }
}
