#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

#[cfg(any(
    feature = "memory",
    feature = "file",
    feature = "sqlite",
    feature = "postgres",
    feature = "redis"
))]
mod common;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "memory")]
mod memory;
#[cfg(feature = "memory")]
mod memory_outbox;
#[cfg(feature = "memory")]
mod memory_provider;
#[cfg(feature = "redis")]
mod redis_outbox;
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(any(
    feature = "memory",
    feature = "sqlite",
    feature = "postgres",
    feature = "redis"
))]
mod shared_values;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod tls;
#[cfg(feature = "redis")]
mod unsupported;

use std::sync::Arc;
use std::time::Duration;

pub use lti_registry::{Clock, RegistryError, Result, SecretCipher, Store};

#[cfg(feature = "file")]
pub use file::{FileRegistry, ImportReport};
#[cfg(feature = "memory")]
pub use memory::MemoryStore;
#[cfg(feature = "memory")]
pub use memory_outbox::MemoryOutbox;
#[cfg(feature = "memory")]
pub use memory_provider::MemoryProviderStore;
#[cfg(feature = "redis")]
pub use redis_store::RedisStore;
#[cfg(feature = "memory")]
pub use shared_values::MemorySharedValues;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sql::SqlStore;

/// Settings shared by every backend opened with [`open`].
///
/// There is no default cipher: the caller decides between an application key
/// ([`SecretCipher::aes256gcm`]) and the test-only plaintext mode.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OpenOptions {
    /// Encrypts consumer secrets and tool private keys at rest.
    pub cipher: SecretCipher,
    /// The clock every expiry is compared with.
    pub clock: Arc<dyn Clock>,
    /// Connections per pool (SQL) or multiplexed connections (Redis). Default 8.
    pub pool_size: u32,
    /// Connect, acquire and response timeout. Default 5 s.
    pub timeout: Duration,
    /// Prefix of every Redis key. Default `"lti:"`.
    pub redis_key_prefix: String,
    /// PostgreSQL schema to create (if missing) and use; default: the
    /// server's `search_path`.
    pub postgres_schema: Option<String>,
}

impl OpenOptions {
    /// Options with the system clock, a pool of 8, a 5 s timeout and prefix `lti:`.
    #[must_use]
    pub fn new(cipher: SecretCipher) -> Self {
        Self {
            cipher,
            clock: lti_registry::system_clock(),
            pool_size: 8,
            timeout: Duration::from_secs(5),
            redis_key_prefix: "lti:".to_owned(),
            postgres_schema: None,
        }
    }

    /// Sets the clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the pool size.
    #[must_use]
    pub fn with_pool_size(mut self, pool_size: u32) -> Self {
        self.pool_size = pool_size;
        self
    }

    /// Sets the connect/acquire/response timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the Redis key prefix.
    #[must_use]
    pub fn with_redis_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.redis_key_prefix = prefix.into();
        self
    }

    /// Sets the PostgreSQL schema.
    #[must_use]
    pub fn with_postgres_schema(mut self, schema: impl Into<String>) -> Self {
        self.postgres_schema = Some(schema.into());
        self
    }
}

#[cfg(not(all(
    feature = "memory",
    feature = "sqlite",
    feature = "postgres",
    feature = "redis"
)))]
fn not_compiled(feature: &'static str) -> RegistryError {
    RegistryError::InvalidInput {
        field: "storage url",
        expected: "a backend compiled into this build",
        found: format!("a URL for the `{feature}` backend, whose cargo feature is disabled"),
    }
}

/// Opens the backend a URL names and returns every store trait it serves:
///
/// | URL | backend |
/// |---|---|
/// | `memory://` | [`MemoryStore`] (process memory) |
/// | `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:` | [`SqlStore`] on SQLite, migrated on open |
/// | `postgres://…`, `postgresql://…` | [`SqlStore`] on PostgreSQL, migrated on open; TLS per `sslmode` and `sslrootcert` ([`SqlStore::open_postgres`]) |
/// | `redis://…`, `rediss://…` (TLS, `?sslrootcert=PATH`) | [`RedisStore`] for launch state, nonces, launch data, OAuth 1.0a nonces and the grade outbox; registrations, tool keys, consumers and the LTI 1.1 provider data model answer `Unsupported` (combine with [`open_split`]) |
///
/// An unknown scheme is `InvalidInput`; an unreachable server `StoreUnavailable`.
#[cfg_attr(
    not(any(
        feature = "memory",
        feature = "sqlite",
        feature = "postgres",
        feature = "redis"
    )),
    allow(unused_variables)
)]
pub async fn open(url: &str, options: &OpenOptions) -> Result<Store> {
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        "memory" => {
            #[cfg(feature = "memory")]
            {
                Ok(Store::from_backend(Arc::new(MemoryStore::new(
                    options.cipher.clone(),
                    options.clock.clone(),
                ))))
            }
            #[cfg(not(feature = "memory"))]
            Err(not_compiled("memory"))
        }
        "sqlite" => {
            #[cfg(feature = "sqlite")]
            {
                Ok(Store::from_backend(Arc::new(
                    SqlStore::open_sqlite(url, options).await?,
                )))
            }
            #[cfg(not(feature = "sqlite"))]
            Err(not_compiled("sqlite"))
        }
        "postgres" | "postgresql" => {
            #[cfg(feature = "postgres")]
            {
                Ok(Store::from_backend(Arc::new(
                    SqlStore::open_postgres(url, options).await?,
                )))
            }
            #[cfg(not(feature = "postgres"))]
            Err(not_compiled("postgres"))
        }
        "redis" | "rediss" => {
            #[cfg(feature = "redis")]
            {
                let redis = Arc::new(RedisStore::open(url, options).await?);
                let none = Arc::new(unsupported::Unsupported { backend: "redis" });
                Ok(Store {
                    registrations: none.clone(),
                    launch_states: redis.clone(),
                    nonces: redis.clone(),
                    launch_data: redis.clone(),
                    tool_keys: none.clone(),
                    consumers: none.clone(),
                    oauth1_nonces: redis.clone(),
                    provider: none,
                    outbox: redis.clone(),
                    shared_values: redis.clone(),
                    cached_values: redis,
                })
            }
            #[cfg(not(feature = "redis"))]
            Err(not_compiled("redis"))
        }
        _ => Err(RegistryError::InvalidInput {
            field: "storage url",
            expected: "a memory://, sqlite://, sqlite::memory:, postgres:// or redis:// URL",
            found: format!("scheme {scheme:?}"),
        }),
    }
}

/// Opens `url` for the durable records and, when given, `nonce_url` for the
/// short-lived ones (launch state, nonces, launch data, OAuth 1.0a nonces) —
/// the application's `storage.url` and `storage.nonce_url`.
pub async fn open_split(
    url: &str,
    nonce_url: Option<&str>,
    options: &OpenOptions,
) -> Result<Store> {
    let durable = open(url, options).await?;
    match nonce_url {
        Some(nonce_url) => {
            let ephemeral = open(nonce_url, options).await?;
            Ok(durable.with_ephemeral_from(&ephemeral))
        }
        None => Ok(durable),
    }
}
