//! The Redis backend for the short-lived records: launch state, nonces,
//! launch data and OAuth 1.0a nonces.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use lti_registry::{
    Clock, LaunchDataStore, LaunchState, LaunchStateStore, NonceStore, OAuth1NonceStore,
    RegistryError, Result, check_expiry, check_id,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::OpenOptions;
use crate::common::{conflict, from_json, lti13_nonce_key, oauth1_nonce_key, to_json, ttl_secs};

const BACKEND: &str = "redis";

/// Launch state, nonces, launch data and OAuth 1.0a nonces in Redis, shared
/// by every instance of the application.
///
/// Nonces and states are written with `SET key value NX EX ttl` (exactly one
/// writer wins), states are consumed with `GETDEL` (exactly one reader
/// wins; needs Redis 6.2 or later). Keys carry a prefix ([`OpenOptions::redis_key_prefix`]); nonce keys
/// are SHA-256 digests. Redis expires keys on its own clock; values also
/// carry `expires_at`, which is checked against the store's clock on read.
/// `pool_size` multiplexed connections are used round-robin; each
/// reconnects by itself after the server comes back, and calls made while it
/// is down fail with `StoreUnavailable`.
pub struct RedisStore {
    conns: Vec<ConnectionManager>,
    next: AtomicUsize,
    prefix: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("connections", &self.conns.len())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> RegistryError {
    RegistryError::unavailable(BACKEND, e)
}

const URL_SHAPE: &str = "redis://HOST:PORT[/DB] or rediss://HOST:PORT[/DB][?sslrootcert=PATH]";

/// The client for a `redis://` or `rediss://` URL and, for `rediss://`, what
/// the server's certificate must chain to (`None` in clear).
fn client(url: &str) -> Result<(redis::Client, Option<&'static str>)> {
    let invalid = |found: String| RegistryError::InvalidInput {
        field: "storage url",
        expected: URL_SHAPE,
        found,
    };
    let tls = url
        .get(..9)
        .is_some_and(|s| s.eq_ignore_ascii_case("rediss://"));
    if url.contains('#') {
        return Err(invalid(
            "a URL fragment (unverified TLS, `#insecure`, is not supported)".to_owned(),
        ));
    }
    let ca = crate::tls::url_param(url, &["sslrootcert"])?;
    let client = match &ca {
        None => redis::Client::open(url),
        Some(_) if !tls => {
            return Err(invalid(
                "sslrootcert on a redis:// URL (TLS needs rediss://)".to_owned(),
            ));
        }
        // The redis client ignores query parameters it does not know.
        Some(path) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(crate::tls::read_ca_file(path)?),
            },
        ),
    }
    .map_err(|e| invalid(e.to_string()))?;
    if let redis::ConnectionAddr::Tcp(host, _) = client.get_connection_info().addr()
        && !crate::tls::is_loopback(host)
    {
        tracing::warn!(
            host = %host,
            "Redis connection in clear text to another machine: use rediss:// (TLS)"
        );
    }
    let trust = match ca {
        Some(_) => "the sslrootcert CA",
        None => "the webpki roots (give a private CA with ?sslrootcert=PATH)",
    };
    Ok((client, tls.then_some(trust)))
}

/// A failed first connection: names TLS when the handshake is what failed,
/// and a server that closed a clear-text connection (as a TLS-only port does).
fn connect_failed(e: redis::RedisError, trust: Option<&str>) -> RegistryError {
    match trust {
        Some(trust) => crate::tls::tls_failure(BACKEND, "Redis", trust, &e).unwrap_or_else(|| {
            if e.is_timeout() || e.is_connection_dropped() {
                // A server that does not speak TLS never answers the handshake.
                RegistryError::unavailable(
                    BACKEND,
                    format!("{e} (connecting over TLS: does the server speak TLS on this port?)"),
                )
            } else {
                unavailable(e)
            }
        }),
        None if e.is_connection_dropped() => RegistryError::unavailable(
            BACKEND,
            format!(
                "{e} (the server closed the connection: if it accepts only TLS, use rediss://)"
            ),
        ),
        None => unavailable(e),
    }
}

impl RedisStore {
    /// Connects `options.pool_size` connections to `url`: `redis://…` in
    /// clear, or `rediss://…` over TLS (rustls), where the server's
    /// certificate must name the URL's host and chain to the webpki roots,
    /// or only to the CA file given as `?sslrootcert=PATH`. Unverified TLS
    /// (the `#insecure` fragment) is refused.
    pub async fn open(url: &str, options: &OpenOptions) -> Result<Self> {
        let (client, trust) = client(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(2)
            .set_max_delay(std::time::Duration::from_millis(500));
        let mut conns = Vec::new();
        for _ in 0..options.pool_size.max(1) {
            let conn = ConnectionManager::new_with_config(client.clone(), config.clone())
                .await
                .map_err(|e| connect_failed(e, trust))?;
            conns.push(conn);
        }
        Ok(Self {
            conns,
            next: AtomicUsize::new(0),
            prefix: options.redis_key_prefix.clone(),
            clock: options.clock.clone(),
        })
    }

    pub(crate) fn conn(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        self.conns[i].clone()
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    pub(crate) fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// `SET key value NX EX ttl`; `true` if this call wrote the key.
    async fn set_nx(&self, key: &str, value: &str, expires_at: i64) -> Result<bool> {
        let ttl = ttl_secs(expires_at, self.clock.now());
        let reply: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("EX")
            .arg(ttl)
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(reply.is_some())
    }

    async fn record_once(&self, key: String, expires_at: i64, namespace: &str) -> Result<()> {
        check_expiry("expires_at", expires_at, self.clock.now())?;
        if self
            .set_nx(&key, &expires_at.to_string(), expires_at)
            .await?
        {
            Ok(())
        } else {
            Err(RegistryError::NonceReplayed {
                namespace: namespace.to_owned(),
            })
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope<T> {
    expires_at: i64,
    value: T,
}

#[async_trait]
impl LaunchStateStore for RedisStore {
    async fn save_state(&self, state: &LaunchState) -> Result<()> {
        state.validate(self.clock.now())?;
        let body = to_json(BACKEND, "launch state", state)?;
        if self
            .set_nx(&self.key("state", &state.state), &body, state.expires_at)
            .await?
        {
            Ok(())
        } else {
            Err(conflict(
                "launch state",
                "(state value withheld)",
                "expected a new state value, found an unexpired one",
            ))
        }
    }

    async fn consume_state(&self, state: &str) -> Result<LaunchState> {
        check_id("state", state)?;
        let body: Option<String> = redis::cmd("GETDEL")
            .arg(self.key("state", state))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let Some(body) = body else {
            return Err(RegistryError::StateNotFound);
        };
        let s: LaunchState = from_json(BACKEND, "launch state", &body)?;
        if s.expires_at <= self.clock.now() {
            return Err(RegistryError::StateNotFound);
        }
        Ok(s)
    }
}

#[async_trait]
impl NonceStore for RedisStore {
    async fn record_nonce(&self, issuer: &str, nonce: &str, expires_at: i64) -> Result<()> {
        self.record_once(
            self.key("nonce", &lti13_nonce_key(issuer, nonce)?),
            expires_at,
            issuer,
        )
        .await
    }
}

#[async_trait]
impl OAuth1NonceStore for RedisStore {
    async fn record_oauth1_nonce(
        &self,
        consumer_key: &str,
        nonce: &str,
        expires_at: i64,
    ) -> Result<()> {
        self.record_once(
            self.key("nonce", &oauth1_nonce_key(consumer_key, nonce)?),
            expires_at,
            consumer_key,
        )
        .await
    }
}

#[async_trait]
impl LaunchDataStore for RedisStore {
    async fn save_launch(
        &self,
        launch_id: &str,
        data: serde_json::Value,
        expires_at: i64,
    ) -> Result<()> {
        check_id("launch_id", launch_id)?;
        let now = self.clock.now();
        check_expiry("expires_at", expires_at, now)?;
        let body = to_json(
            BACKEND,
            "launch data",
            &Envelope {
                expires_at,
                value: &data,
            },
        )?;
        let _: () = redis::cmd("SET")
            .arg(self.key("launch", launch_id))
            .arg(body)
            .arg("EX")
            .arg(ttl_secs(expires_at, now))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn load_launch(&self, launch_id: &str) -> Result<serde_json::Value> {
        check_id("launch_id", launch_id)?;
        let body: Option<String> = redis::cmd("GET")
            .arg(self.key("launch", launch_id))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        match body {
            Some(b) => {
                let env: Envelope<serde_json::Value> = from_json(BACKEND, "launch data", &b)?;
                if env.expires_at > self.clock.now() {
                    Ok(env.value)
                } else {
                    Err(RegistryError::not_found("launch data", launch_id))
                }
            }
            None => Err(RegistryError::not_found("launch data", launch_id)),
        }
    }

    async fn delete_launch(&self, launch_id: &str) -> Result<bool> {
        check_id("launch_id", launch_id)?;
        let body: Option<String> = redis::cmd("GETDEL")
            .arg(self.key("launch", launch_id))
            .query_async(&mut self.conn())
            .await
            .map_err(unavailable)?;
        let now = self.clock.now();
        Ok(match body {
            Some(b) => {
                from_json::<Envelope<serde_json::Value>>(BACKEND, "launch data", &b)?.expires_at
                    > now
            }
            None => false,
        })
    }
}
