//! URL helpers: scheme policy, loopback detection and log-safe redaction.

use std::net::IpAddr;

use http::Uri;

use crate::error::Error;

/// Query parameter names whose values never appear in logs or errors
/// (matched as case-insensitive substrings of the parameter name).
const SECRET_PARAM_HINTS: &[&str] = &[
    "token",
    "secret",
    "key",
    "sig",
    "pass",
    "auth",
    "code",
    "jwt",
    "assertion",
    "session",
    "credential",
    "nonce",
];

/// The origin of an absolute `http`/`https` URL as browsers serialize it (in the
/// `Origin` header and `MessageEvent.origin`): lowercase scheme and host, no
/// user-info or path, and the port only when it is not the scheme's default.
/// `None` for anything else (other schemes, relative URLs, no host).
///
/// ```
/// assert_eq!(
///     lti_http::origin("HTTPS://u:p@LMS.example:443/api?x=1").as_deref(),
///     Some("https://lms.example")
/// );
/// assert_eq!(lti_http::origin("javascript:alert(1)"), None);
/// ```
pub fn origin(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let host = uri.host().filter(|h| !h.is_empty())?.to_ascii_lowercase();
    Some(match uri.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// Returns `url` in a form that is safe to log: user-info is dropped and the
/// values of query parameters whose names look secret are replaced by `***`.
///
/// ```
/// assert_eq!(
///     lti_http::redact_url("https://u:p@lms.example/api?page=2&access_token=abc"),
///     "https://lms.example/api?page=2&access_token=***"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let (without_fragment, _) = url.split_once('#').unwrap_or((url, ""));
    let (base, query) = match without_fragment.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (without_fragment, None),
    };
    let base = strip_userinfo(base);
    let Some(query) = query else {
        return base;
    };
    let redacted: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = name.to_ascii_lowercase();
            if !value.is_empty() && SECRET_PARAM_HINTS.iter().any(|h| lower.contains(h)) {
                format!("{name}=***")
            } else {
                pair.to_owned()
            }
        })
        .collect();
    format!("{base}?{}", redacted.join("&"))
}

fn strip_userinfo(base: &str) -> String {
    if let Some((scheme, rest)) = base.split_once("://") {
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if let Some((_, host)) = authority.rsplit_once('@') {
            return format!("{scheme}://{host}{path}");
        }
    }
    base.to_owned()
}

/// Whether `host` (as it appears in a URI, IPv6 possibly in brackets) is a
/// loopback host: `localhost`, `*.localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let trimmed = host.trim_start_matches('[').trim_end_matches(']');
    let lower = trimmed.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return true;
    }
    trimmed.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks the scheme policy for an outbound request: `https` always, `http`
/// only to loopback hosts unless `allow_insecure_http` is set.
#[cfg(any(feature = "transport", test))]
pub(crate) fn check_scheme(uri: &Uri, allow_insecure_http: bool) -> Result<(), Error> {
    let shown = redact_url(&uri.to_string());
    let Some(host) = uri.host() else {
        return Err(Error::InvalidUrl {
            found: shown,
            reason: "no host",
        });
    };
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if allow_insecure_http || is_loopback_host(host) => Ok(()),
        Some("http") => Err(Error::InsecureHttp { url: shown }),
        Some(_) => Err(Error::InvalidUrl {
            found: shown,
            reason: "scheme is not http or https",
        }),
        None => Err(Error::InvalidUrl {
            found: shown,
            reason: "not an absolute URL",
        }),
    }
}

/// Parses an absolute `http(s)` URL into a [`Uri`].
pub(crate) fn parse_absolute(url: &str) -> Result<Uri, Error> {
    let uri: Uri = url.parse().map_err(|_| Error::InvalidUrl {
        found: redact_url(url),
        reason: "not a valid URI",
    })?;
    if uri.scheme().is_none() || uri.host().is_none() {
        return Err(Error::InvalidUrl {
            found: redact_url(url),
            reason: "not an absolute URL",
        });
    }
    Ok(uri)
}

/// Resolves a (possibly relative) reference against an absolute base URL.
///
/// Handles absolute URLs, scheme-relative (`//host/path`), absolute-path
/// (`/path?q`) and query-only (`?q`) references, and relative paths.
pub(crate) fn resolve(base: &str, reference: &str) -> Result<String, Error> {
    let reference = reference.trim();
    if reference.contains("://") {
        return Ok(reference.to_owned());
    }
    let base_uri = parse_absolute(base)?;
    let scheme = base_uri.scheme_str().unwrap_or("https");
    let authority = base_uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    if let Some(rest) = reference.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if reference.starts_with('/') {
        return Ok(format!("{scheme}://{authority}{reference}"));
    }
    let path = base_uri.path();
    if reference.starts_with('?') {
        return Ok(format!("{scheme}://{authority}{path}{reference}"));
    }
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    Ok(format!("{scheme}://{authority}{dir}{reference}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_serialized_as_browsers_do() {
        for (url, expected) in [
            (
                "https://SSO.Example.com/auth?x=1",
                Some("https://sso.example.com"),
            ),
            ("https://lms.example:443/a", Some("https://lms.example")),
            (
                "https://lms.example:8443/a",
                Some("https://lms.example:8443"),
            ),
            (
                "http://127.0.0.1:3000/lti/launch",
                Some("http://127.0.0.1:3000"),
            ),
            ("http://localhost:80/", Some("http://localhost")),
            ("http://[::1]:8080/x", Some("http://[::1]:8080")),
            ("javascript:alert(1)", None),
            ("/relative/path", None),
            ("ftp://files.example/", None),
            ("https://", None),
            ("", None),
        ] {
            assert_eq!(origin(url).as_deref(), expected, "{url}");
        }
        // User-info and paths are not part of it; scheme and port are.
        assert_eq!(
            origin("http://u:p@127.0.0.1:8080/x").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_ne!(origin("https://lms.test/a"), origin("http://lms.test/a"));
        assert_ne!(
            origin("https://lms.test/a"),
            origin("https://lms.test:8443/a")
        );
    }

    #[test]
    fn redaction_hides_secret_query_values_and_userinfo() {
        assert_eq!(
            redact_url("https://a:b@x.test/p?client_secret=s&page=3#frag"),
            "https://x.test/p?client_secret=***&page=3"
        );
        assert_eq!(redact_url("https://x.test/p"), "https://x.test/p");
        assert_eq!(
            redact_url("https://x.test/p?oauth_signature=abc&flag"),
            "https://x.test/p?oauth_signature=***&flag"
        );
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for h in [
            "localhost",
            "LOCALHOST",
            "a.localhost",
            "127.0.0.1",
            "127.9.9.9",
            "[::1]",
            "::1",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "example.com",
            "10.0.0.1",
            "localhost.example.com",
            "[::2]",
            "128.0.0.1",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn scheme_policy_refuses_plain_http_to_remote_hosts() {
        let remote: Uri = "http://lms.example/jwks".parse().unwrap();
        assert!(matches!(
            check_scheme(&remote, false),
            Err(Error::InsecureHttp { .. })
        ));
        assert!(check_scheme(&remote, true).is_ok());
        let local: Uri = "http://127.0.0.1:8080/jwks".parse().unwrap();
        assert!(check_scheme(&local, false).is_ok());
        let ftp: Uri = "ftp://lms.example/x".parse().unwrap();
        assert!(matches!(
            check_scheme(&ftp, false),
            Err(Error::InvalidUrl {
                reason: "scheme is not http or https",
                ..
            })
        ));
        let relative: Uri = "/only/a/path".parse().unwrap();
        assert!(matches!(
            check_scheme(&relative, false),
            Err(Error::InvalidUrl {
                reason: "no host",
                ..
            })
        ));
    }

    #[test]
    fn references_resolve_against_the_base() {
        let base = "https://lms.test/api/v1/items?page=1";
        assert_eq!(
            resolve(base, "https://o.test/x").unwrap(),
            "https://o.test/x"
        );
        assert_eq!(
            resolve(base, "/p?page=2").unwrap(),
            "https://lms.test/p?page=2"
        );
        assert_eq!(
            resolve(base, "?page=2").unwrap(),
            "https://lms.test/api/v1/items?page=2"
        );
        assert_eq!(
            resolve(base, "other?page=2").unwrap(),
            "https://lms.test/api/v1/other?page=2"
        );
        assert_eq!(resolve(base, "//cdn.test/a").unwrap(), "https://cdn.test/a");
        assert!(matches!(
            resolve("not a url", "x"),
            Err(Error::InvalidUrl { .. })
        ));
    }
}
