//! TLS to the PostgreSQL and Redis servers: the URL parameters this crate
//! reads itself (`sslrootcert=`), the warning for connections that are not
//! verified, and errors that say when TLS is what failed.
//!
//! Both drivers use rustls on ring and trust the webpki roots unless a CA file
//! is given.

use std::error::Error;

use lti_registry::{RegistryError, Result};

/// The value of the URL query parameter called one of `names` (aliases of
/// one parameter), `None` when absent. Given twice is an error: which one
/// the driver reads is not obvious.
pub(crate) fn url_param(url: &str, names: &[&str]) -> Result<Option<String>> {
    let url = url.split_once('#').map_or(url, |(before, _)| before);
    let Some((_, query)) = url.split_once('?') else {
        return Ok(None);
    };
    let mut found = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if names.contains(&key.as_ref()) {
            if found.is_some() {
                return Err(RegistryError::InvalidInput {
                    field: "storage url",
                    expected: "each TLS parameter at most once",
                    found: format!("{key} given more than once"),
                });
            }
            found = Some(value.into_owned());
        }
    }
    Ok(found)
}

/// Reads a CA file (`sslrootcert=PATH`): PEM with at least one certificate.
/// Checked when the store opens, so a wrong path is a configuration error
/// rather than a failing connection.
pub(crate) fn read_ca_file(path: &str) -> Result<Vec<u8>> {
    let pem = std::fs::read(path).map_err(|e| RegistryError::InvalidInput {
        field: "sslrootcert",
        expected: "a readable PEM file with the CA certificate(s)",
        found: format!("{path}: {e}"),
    })?;
    if !pem
        .windows(CERT_BEGIN.len())
        .any(|w| w == CERT_BEGIN.as_bytes())
    {
        return Err(RegistryError::InvalidInput {
            field: "sslrootcert",
            expected: "a PEM file with at least one CERTIFICATE block",
            found: format!("{path}: no certificate"),
        });
    }
    Ok(pem)
}

const CERT_BEGIN: &str = "-----BEGIN CERTIFICATE-----";

/// Whether `host` is this machine (`localhost` or a loopback address), where
/// traffic in clear does not cross a network.
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The rustls error somewhere in a driver error's chain, if TLS is what
/// failed. The drivers wrap it in `io::Error`s (and Redis those in an `Arc`),
/// whose `source()` skips the wrapped error, so each is unwrapped here.
fn rustls_cause<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(tls) = rustls_cause(inner)
        {
            return Some(tls);
        }
        if let Some(shared) = e.downcast_ref::<std::sync::Arc<dyn Error + Send + Sync>>()
            && let Some(tls) = rustls_cause(shared.as_ref())
        {
            return Some(tls);
        }
        next = e.source();
    }
    None
}

/// `StoreUnavailable` naming TLS when a TLS handshake is what failed (the
/// store fails closed either way); `None` for any other error.
/// `trust` says which certificates the server's must chain to.
pub(crate) fn tls_failure(
    backend: &'static str,
    server: &str,
    trust: &str,
    e: &(dyn Error + 'static),
) -> Option<RegistryError> {
    let tls = rustls_cause(e)?;
    let reason = match tls {
        rustls::Error::InvalidCertificate(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::InvalidCertRevocationList(_) => format!(
            "TLS verification of the {server} server failed: {tls}; its certificate must \
             chain to {trust} and name the host in the URL"
        ),
        _ => format!(
            "TLS handshake with the {server} server failed: {tls} (does the server speak TLS on \
             this port?)"
        ),
    };
    Some(RegistryError::StoreUnavailable { backend, reason })
}

/// Applies what this crate adds to sqlx's reading of a PostgreSQL URL: the
/// `sslrootcert` file is checked now, `require` with a CA verifies the chain
/// (`verify-ca`, as libpq does), and an unverified connection to another
/// machine is logged as a warning.
#[cfg(feature = "postgres")]
pub(crate) fn postgres_options(
    url: &str,
    mut connect: sqlx::postgres::PgConnectOptions,
) -> Result<sqlx::postgres::PgConnectOptions> {
    use sqlx::postgres::PgSslMode;
    if let Some(ca) = url_param(url, &["sslrootcert", "ssl-root-cert", "ssl-ca"])? {
        // sqlx also takes the PEM itself in the parameter. A file is read once,
        // here, and its certificates handed over: sqlx would otherwise read
        // the path again for every new connection.
        if !ca.trim_start().starts_with("-----BEGIN") {
            connect = connect.ssl_root_cert_from_pem(read_ca_file(&ca)?);
        }
        if matches!(connect.get_ssl_mode(), PgSslMode::Require) {
            connect = connect.ssl_mode(PgSslMode::VerifyCa);
        }
    }
    let mode = connect.get_ssl_mode();
    if !matches!(mode, PgSslMode::VerifyFull)
        && connect.get_socket().is_none()
        && !is_loopback(connect.get_host())
    {
        tracing::warn!(
            host = connect.get_host(),
            sslmode = ?mode,
            "PostgreSQL connection to another machine without sslmode=verify-full: \
             the server's identity is not verified"
        );
    }
    Ok(connect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_param_reads_the_query_only_and_refuses_a_repeat() {
        let names = &["sslrootcert", "ssl-ca"];
        assert_eq!(url_param("rediss://h:1/0", names).unwrap(), None);
        assert_eq!(
            url_param("rediss://h:1/0?a=b&sslrootcert=%2Fetc%2Fca.pem#x", names).unwrap(),
            Some("/etc/ca.pem".to_owned())
        );
        assert_eq!(
            url_param("postgres://u@h/d?ssl-ca=/ca.pem", names).unwrap(),
            Some("/ca.pem".to_owned())
        );
        // After the fragment is not the query.
        assert_eq!(
            url_param("rediss://h:1/0#?sslrootcert=/x", names).unwrap(),
            None
        );
        let twice = url_param("postgres://u@h/d?sslrootcert=/a&ssl-ca=/b", names).unwrap_err();
        assert_eq!(twice.code(), "invalid_input");
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.0.0.2",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["db.internal", "10.0.0.5", "::2", "localhost.example"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
