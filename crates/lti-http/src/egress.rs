//! The egress policy: which origins launch-supplied URLs may point to, and
//! which resolved addresses the transport refuses to connect to.
//!
//! Two rules, one home:
//!
//! * **Origins** ([`EgressPolicy`]): a service URL that arrived in a launch (AGS
//!   `lineitems`, NRPS `context_memberships_url`, LTI 1.1
//!   `lis_outcome_service_url`) must be on the origin of one of the
//!   registration's own endpoints, or on an origin the operator listed.
//!   `lti-services` and `lti11` apply it before sending anything.
//! * **Addresses** ([`address_class`]): [`crate::HyperClient`] resolves a host
//!   name and refuses loopback, private, link-local, unspecified, multicast,
//!   shared (CGNAT), unique-local and other non-public addresses (IPv4 and
//!   IPv6, including IPv4-mapped, NAT64 and 6to4 forms) before connecting,
//!   unless [`crate::HyperClientBuilder::allow_private_addresses`] is set.

#[cfg(feature = "transport")]
use std::future::Future;
use std::io;
#[cfg(feature = "transport")]
use std::net::SocketAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
#[cfg(feature = "transport")]
use std::pin::Pin;
#[cfg(feature = "transport")]
use std::sync::Arc;
#[cfg(feature = "transport")]
use std::task::{Context, Poll};

#[cfg(feature = "transport")]
use hyper_util::client::legacy::connect::dns::Name;

use crate::error::Error;
use crate::url::{origin, redact_url};

/// The class of a non-public address, or `None` for a public (globally
/// routable unicast) one.
///
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::/96`) and 6to4 (`2002::/16`) IPv6 addresses are judged by the
/// IPv4 address they carry.
///
/// ```
/// use std::net::IpAddr;
/// use lti_http::address_class;
///
/// let class = |s: &str| address_class(s.parse::<IpAddr>().unwrap());
/// assert_eq!(class("127.0.0.1"), Some("loopback"));
/// assert_eq!(class("10.1.2.3"), Some("private"));
/// assert_eq!(class("169.254.169.254"), Some("link-local"));
/// assert_eq!(class("::ffff:192.168.0.1"), Some("private"));
/// assert_eq!(class("fd00::1"), Some("unique-local"));
/// assert_eq!(class("93.184.215.14"), None);
/// ```
pub fn address_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "private",
        (100, 64..=127, _) => "shared (CGNAT)",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "reserved",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (255, 255, 255) if ip.is_broadcast() => "broadcast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    Some(match s {
        // IPv4-compatible (deprecated) ::a.b.c.d and NAT64 64:ff9b::a.b.c.d.
        [0, 0, 0, 0, 0, 0, hi, lo] | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            return v4_class(embedded(hi, lo));
        }
        // 6to4 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
        [0x2002, hi, lo, ..] => return v4_class(embedded(hi, lo)),
        [0x64, 0xff9b, 1, ..] => "private",
        [0x100, 0, 0, 0, ..] => "reserved",
        [0x2001, 0xdb8, ..] => "documentation",
        [first, ..] if first & 0xfe00 == 0xfc00 => "unique-local",
        [first, ..] if first & 0xffc0 == 0xfe80 => "link-local",
        [first, ..] if first & 0xffc0 == 0xfec0 => "site-local",
        [first, ..] if first & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

/// Which origins service URLs taken from a launch may point to.
///
/// A URL passes when its origin (scheme, host, port; see [`origin`]) is the
/// origin of one of the registration's endpoints the caller passes as
/// anchors (`lti-services`: the issuer and the token endpoint), or one of
/// the origins listed here. The default lists none, so only the anchors
/// pass (and, for LTI 1.1, whose consumers have no registered URLs, nothing
/// passes until the operator lists the consumers' origins).
///
/// ```
/// use lti_http::EgressPolicy;
///
/// let policy = EgressPolicy::new().allow_origin("https://school.instructure.com").unwrap();
/// let anchors = ["https://canvas.instructure.com", "https://sso.canvaslms.com/login/oauth2/token"];
/// assert!(policy.check_url("https://school.instructure.com/api/lti/courses/1/line_items", &anchors).is_ok());
/// assert!(policy.check_url("https://sso.canvaslms.com/x", &anchors).is_ok());
/// let refused = policy.check_url("https://intranet.example/admin", &anchors).unwrap_err();
/// assert_eq!(refused.code(), "egress_refused");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allowed_origins: Vec<String>,
}

impl EgressPolicy {
    /// A policy that admits only the anchors' origins.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also admits the origin of `url` (an origin such as
    /// `https://lms.example` or any URL on it).
    ///
    /// # Errors
    /// `invalid_url` when `url` is not an absolute `http(s)` URL.
    pub fn allow_origin(mut self, url: &str) -> Result<Self, Error> {
        let found = origin(url).ok_or_else(|| Error::InvalidUrl {
            found: redact_url(url),
            reason: "an allowed origin must be an absolute http(s) URL",
        })?;
        if !self.allowed_origins.contains(&found) {
            self.allowed_origins.push(found);
        }
        Ok(self)
    }

    /// The origins listed with [`EgressPolicy::allow_origin`].
    pub fn allowed_origins(&self) -> &[String] {
        &self.allowed_origins
    }

    /// Checks that `url` is on the origin of one of `anchors` (URLs of the
    /// registration's own endpoints) or on an allowed origin.
    ///
    /// # Errors
    /// `egress_refused` naming the admitted origins and the URL's origin.
    pub fn check_url(&self, url: &str, anchors: &[&str]) -> Result<(), Error> {
        let admitted: Vec<String> = anchors
            .iter()
            .filter_map(|a| origin(a))
            .chain(self.allowed_origins.iter().cloned())
            .collect();
        let found = origin(url);
        if found.as_ref().is_some_and(|f| admitted.contains(f)) {
            return Ok(());
        }
        let mut expected: Vec<String> = Vec::new();
        for o in admitted {
            if !expected.contains(&o) {
                expected.push(o);
            }
        }
        Err(Error::EgressRefused {
            url: redact_url(url).chars().take(200).collect(),
            expected: if expected.is_empty() {
                "an origin in the egress allow-list (none is configured)".to_owned()
            } else {
                format!("one of the origins {}", expected.join(", "))
            },
            found: found.unwrap_or_else(|| "no http(s) origin".to_owned()),
        })
    }
}

/// Resolves host names for [`crate::HyperClient`]; plug one in with
/// [`crate::HyperClientBuilder::resolver`] (e.g. to pin names in tests).
/// The egress address rule is applied to whatever it returns.
#[async_trait::async_trait]
pub trait Resolve: Send + Sync {
    /// The addresses of `host` (a name, never an IP literal).
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>>;
}

/// The default [`Resolve`]: the operating system's resolver (`getaddrinfo`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

#[async_trait::async_trait]
impl Resolve for SystemResolver {
    async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0))
            .await?
            .map(|a| a.ip())
            .collect())
    }
}

#[cfg(feature = "transport")]
/// Why the transport refused to connect: the host resolved only to
/// addresses of a refused class. Carried through hyper's error chain and
/// turned into [`Error::PrivateAddress`].
#[derive(Debug)]
pub(crate) struct AddressRefused {
    pub(crate) class: &'static str,
}

#[cfg(feature = "transport")]
impl std::fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "resolved only to {} addresses", self.class)
    }
}

#[cfg(feature = "transport")]
impl std::error::Error for AddressRefused {}

#[cfg(feature = "transport")]
/// Checks an address against the address rule.
pub(crate) fn check_address(ip: IpAddr, allow_private: bool) -> Result<(), AddressRefused> {
    match address_class(ip) {
        Some(class) if !allow_private => Err(AddressRefused { class }),
        _ => Ok(()),
    }
}

#[cfg(feature = "transport")]
/// The resolver hyper's `HttpConnector` uses: the configured [`Resolve`],
/// with every refused address filtered out; a host left with none fails
/// with [`AddressRefused`] (and no connection is attempted).
#[derive(Clone)]
pub(crate) struct EgressResolver {
    pub(crate) inner: Arc<dyn Resolve>,
    pub(crate) allow_private: bool,
}

#[cfg(feature = "transport")]
type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[cfg(feature = "transport")]
impl tower_service::Service<Name> for EgressResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let inner = self.inner.clone();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let resolved = inner.resolve(name.as_str()).await?;
            let mut refused = None;
            let kept: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|ip| match check_address(*ip, allow_private) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                })
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            match refused {
                Some(e) if kept.is_empty() => Err(e.into()),
                _ if kept.is_empty() => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{name} resolved to no address"),
                )
                .into()),
                _ => Ok(kept.into_iter()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<&'static str> {
        address_class(s.parse().unwrap())
    }

    #[test]
    fn every_refused_class_is_recognised() {
        for (ip, expected) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("100.127.255.254", "shared (CGNAT)"),
            ("169.254.169.254", "link-local"),
            ("192.0.0.170", "reserved"),
            ("192.0.2.1", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::10.0.0.1", "private"),
            ("64:ff9b:1::1", "private"),
            ("2002:7f00:1::1", "loopback"),
            ("2002:a9fe:a9fe::1", "link-local"),
            ("100::1", "reserved"),
            ("2001:db8::1", "documentation"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
        ] {
            assert_eq!(class(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.167.1.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[cfg(feature = "transport")]
    #[test]
    fn the_address_rule_is_relaxed_only_by_its_option() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(check_address(lo, false).unwrap_err().class, "loopback");
        assert!(check_address(lo, true).is_ok());
        assert!(check_address("8.8.8.8".parse().unwrap(), false).is_ok());
    }

    #[test]
    fn origins_are_admitted_by_anchor_or_allow_list() {
        let anchors = ["https://lms.example", "https://auth.lms.example/token"];
        let none = EgressPolicy::new();
        assert!(
            none.check_url("https://lms.example/api/lineitems", &anchors)
                .is_ok()
        );
        assert!(
            none.check_url("https://auth.lms.example:443/other", &anchors)
                .is_ok()
        );
        for (url, found) in [
            ("https://lms.example:8443/x", "https://lms.example:8443"),
            ("http://lms.example/x", "http://lms.example"),
            (
                "https://evil.example/x?access_token=t",
                "https://evil.example",
            ),
            ("ftp://lms.example/x", "no http(s) origin"),
        ] {
            let e = none.check_url(url, &anchors).unwrap_err();
            assert_eq!(e.code(), "egress_refused");
            match &e {
                Error::EgressRefused {
                    expected,
                    found: f,
                    url: shown,
                } => {
                    assert_eq!(f, found);
                    assert_eq!(
                        expected,
                        "one of the origins https://lms.example, https://auth.lms.example"
                    );
                    assert!(!shown.contains("access_token=t"), "{shown}");
                }
                other => panic!("{other:?}"),
            }
        }
        let listed = none.allow_origin("https://evil.example/any/path").unwrap();
        assert_eq!(listed.allowed_origins(), ["https://evil.example"]);
        assert!(listed.check_url("https://evil.example/x", &anchors).is_ok());
        assert!(matches!(
            EgressPolicy::new().allow_origin("not a url"),
            Err(Error::InvalidUrl { .. })
        ));
    }

    #[test]
    fn without_anchors_or_list_nothing_passes() {
        let e = EgressPolicy::new()
            .check_url("https://lms.example/outcomes", &[])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "egress refused: expected a URL on an origin in the egress allow-list (none is configured), found one on https://lms.example (https://lms.example/outcomes)"
        );
    }

    #[cfg(feature = "transport")]
    #[tokio::test]
    async fn the_resolver_keeps_public_addresses_and_refuses_when_none_is_left() {
        use tower_service::Service;

        struct Fixed(Vec<IpAddr>);
        #[async_trait::async_trait]
        impl Resolve for Fixed {
            async fn resolve(&self, _host: &str) -> io::Result<Vec<IpAddr>> {
                Ok(self.0.clone())
            }
        }
        let name = |s: &str| s.parse::<Name>().unwrap();
        let ips = |v: &[&str]| {
            v.iter()
                .map(|s| s.parse().unwrap())
                .collect::<Vec<IpAddr>>()
        };
        let mut mixed = EgressResolver {
            inner: Arc::new(Fixed(ips(&["10.0.0.1", "8.8.8.8"]))),
            allow_private: false,
        };
        let kept: Vec<SocketAddr> = mixed.call(name("mixed.test")).await.unwrap().collect();
        assert_eq!(kept, ["8.8.8.8:0".parse().unwrap()]);
        let mut private = EgressResolver {
            inner: Arc::new(Fixed(ips(&["fc00::1", "::1"]))),
            allow_private: false,
        };
        let e = private.call(name("internal.test")).await.unwrap_err();
        assert_eq!(
            e.downcast_ref::<AddressRefused>().unwrap().class,
            "unique-local"
        );
        private.allow_private = true;
        assert_eq!(private.call(name("internal.test")).await.unwrap().len(), 2);
    }
}
