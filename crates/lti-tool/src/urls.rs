//! The tool's own URLs: base URL, redirect URI and the `target_link_uri` allow-list
//! (the open-redirect guard).

use http::Uri;

use crate::error::{ToolError, clip};

/// Whether `host` is `localhost`, a `.localhost` name or a loopback IP literal.
pub(crate) fn is_loopback(host: &str) -> bool {
    lti_http::is_loopback_host(host)
}

/// Checks that `url` is an absolute `https` URL (or `http` on a loopback host, or
/// anywhere when `allow_http`) with a host and no fragment, and returns it parsed.
pub(crate) fn check_absolute(url: &str, allow_http: bool) -> Result<Uri, ToolError> {
    let bad = |why: &str| {
        ToolError::config(format!(
            "URL {:?}: expected an absolute https URL, found {why}",
            clip(url)
        ))
    };
    if url.contains('#')
        || url
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'\\')
    {
        return Err(bad(
            "a fragment, whitespace, a backslash or a control character",
        ));
    }
    let uri: Uri = url.parse().map_err(|_| bad("an unparsable URL"))?;
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if allow_http || is_loopback(host) => {}
        Some(other) => return Err(bad(&format!("scheme {other:?}"))),
        None => return Err(bad("no scheme")),
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(bad("user information in the authority"));
    }
    Ok(uri)
}

/// Parses the public base URL and normalises it to end with `/`.
pub(crate) fn parse_base_url(url: &str, allow_http: bool) -> Result<String, ToolError> {
    let uri = check_absolute(url, allow_http)?;
    if uri.query().is_some() {
        return Err(ToolError::config(format!(
            "base URL {:?}: expected no query string, found one",
            clip(url)
        )));
    }
    let mut base = url.to_owned();
    if !base.ends_with('/') {
        base.push('/');
    }
    Ok(base)
}

/// The `target_link_uri` values the tool accepts.
#[derive(Debug, Clone)]
pub(crate) struct TargetRules {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl TargetRules {
    pub(crate) fn new(
        exact: Vec<String>,
        prefixes: Vec<String>,
        allow_http: bool,
    ) -> Result<Self, ToolError> {
        for url in &exact {
            check_absolute(url, allow_http)?;
        }
        for prefix in &prefixes {
            check_absolute(prefix, allow_http)?;
            let after_scheme = prefix.split_once("://").map_or("", |(_, rest)| rest);
            if !after_scheme.contains('/') || !prefix.ends_with('/') {
                return Err(ToolError::config(format!(
                    "target_link_uri prefix {:?}: expected an absolute URL ending in '/', found one without",
                    clip(prefix)
                )));
            }
        }
        Ok(Self { exact, prefixes })
    }

    /// Whether `uri` is one of the tool's URLs. Besides the textual rule, the
    /// candidate must itself be a clean absolute URL (no whitespace, backslash,
    /// control characters or user information) so browsers and this check agree on
    /// its host.
    pub(crate) fn allows(&self, uri: &str, allow_http: bool) -> bool {
        if check_absolute(uri, allow_http).is_err() {
            return false;
        }
        self.exact.iter().any(|e| e == uri)
            || self.prefixes.iter().any(|p| uri.starts_with(p.as_str()))
    }

    /// The rules, for error messages.
    pub(crate) fn describe(&self) -> String {
        let mut parts: Vec<String> = self.exact.clone();
        parts.extend(self.prefixes.iter().map(|p| format!("{p}*")));
        parts.join(", ")
    }

    /// Checks `uri`.
    pub(crate) fn check(&self, uri: &str, allow_http: bool) -> Result<(), ToolError> {
        if self.allows(uri, allow_http) {
            Ok(())
        } else {
            Err(ToolError::InvalidTargetLinkUri {
                expected: self.describe(),
                found: clip(uri),
            })
        }
    }
}

/// Appends `name=value` (form-encoded) to `url`'s query.
pub(crate) fn append_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let pairs_len: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut encoded = String::with_capacity(pairs_len);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            encoded.push('&');
        }
        encoded.extend(form_urlencoded::byte_serialize(k.as_bytes()));
        encoded.push('=');
        encoded.extend(form_urlencoded::byte_serialize(v.as_bytes()));
    }
    append_raw_query(url, &encoded)
}

/// Appends `raw` (query text, already encoded) to `url`'s query, before its
/// fragment; an empty `raw` leaves `url` as it is.
pub(crate) fn append_raw_query(url: &str, raw: &str) -> String {
    if raw.is_empty() {
        return url.to_owned();
    }
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let sep = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    let mut out = String::with_capacity(url.len() + 1 + raw.len());
    out.push_str(base);
    out.push_str(sep);
    out.push_str(raw);
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// The query text of `url` (without `?` and fragment) less every parameter
/// whose decoded name is `name`, and less empty pairs.
pub(crate) fn query_without(url: &str, name: &str) -> String {
    let without_fragment = url.split_once('#').map_or(url, |(b, _)| b);
    let Some((_, query)) = without_fragment.split_once('?') else {
        return String::new();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let raw_name = pair.split_once('=').map_or(*pair, |(n, _)| n);
            let decoded: String = form_urlencoded::parse(raw_name.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect();
            decoded != name
        })
        .collect();
    kept.join("&")
}

/// `url` without its query and fragment.
fn without_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// `url` with its query replaced by `query` (raw text; an empty one leaves no
/// query), its fragment kept.
pub(crate) fn replace_query(url: &str, query: &str) -> String {
    let mut out = append_raw_query(without_query(url), query);
    if let Some((_, fragment)) = url.split_once('#') {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// Whether `a` and `b` name the same endpoint: the same scheme and host
/// (ignoring ASCII case), port (the scheme's default when absent) and path
/// (ignoring one or more trailing slashes); queries and fragments are ignored.
pub(crate) fn same_endpoint(a: &str, b: &str) -> bool {
    let parse = |url: &str| without_query(url).parse::<Uri>().ok();
    let (Some(a), Some(b)) = (parse(a), parse(b)) else {
        return false;
    };
    let port = |u: &Uri| {
        u.port_u16().or(match u.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Some(443),
            Some(s) if s.eq_ignore_ascii_case("http") => Some(80),
            _ => None,
        })
    };
    let same = |x: Option<&str>, y: Option<&str>| match (x, y) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => false,
    };
    same(a.scheme_str(), b.scheme_str())
        && same(a.host(), b.host())
        && port(&a) == port(&b)
        && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> TargetRules {
        TargetRules::new(
            vec!["https://other.example/exact".into()],
            vec!["https://tool.example/".into()],
            false,
        )
        .unwrap()
    }

    #[test]
    fn only_the_tools_own_urls_are_allowed() {
        let r = rules();
        assert!(r.allows("https://tool.example/lti/app", false));
        assert!(r.allows("https://other.example/exact", false));
        for bad in [
            "https://tool.example.evil/",
            "https://evil.example/https://tool.example/",
            "https://other.example/exact/more",
            "http://tool.example/lti/app",
            "https://tool.example/a b",
            "https://tool.example/\\evil.example",
            "javascript:alert(1)",
            "//evil.example/",
            "https://tool.example/#x",
        ] {
            assert!(!r.allows(bad, false), "{bad}");
        }
    }

    #[test]
    fn prefixes_must_end_with_a_slash() {
        let err = TargetRules::new(vec![], vec!["https://tool.example".into()], false).unwrap_err();
        assert_eq!(err.code(), "configuration");
        let err =
            TargetRules::new(vec![], vec!["https://tool.example/app".into()], false).unwrap_err();
        assert_eq!(err.code(), "configuration");
    }

    #[test]
    fn query_parameters_are_appended_and_encoded() {
        assert_eq!(
            append_query("https://lms.example/auth", &[("a", "x y"), ("b", "&=")]),
            "https://lms.example/auth?a=x+y&b=%26%3D"
        );
        assert_eq!(
            append_query("https://lms.example/auth?t=1", &[("a", "1")]),
            "https://lms.example/auth?t=1&a=1"
        );
        assert_eq!(
            append_query("https://tool.example/app#top", &[("id", "1")]),
            "https://tool.example/app?id=1#top"
        );
        assert_eq!(
            append_query("https://tool.example/app?", &[("k", "v")]),
            "https://tool.example/app?k=v"
        );
        assert_eq!(
            append_query("https://tool.example/app?a=1&", &[("k w", "é/?#")]),
            "https://tool.example/app?a=1&k+w=%C3%A9%2F%3F%23"
        );
    }

    #[test]
    fn raw_query_text_is_appended_before_the_fragment() {
        assert_eq!(
            append_raw_query("https://tool.example/app#top", "a=1&b=%20"),
            "https://tool.example/app?a=1&b=%20#top"
        );
        assert_eq!(
            append_raw_query("https://tool.example/app?x=1", "a=1"),
            "https://tool.example/app?x=1&a=1"
        );
        assert_eq!(
            append_raw_query("https://tool.example/app", ""),
            "https://tool.example/app"
        );
    }

    #[test]
    fn a_query_is_replaced_and_the_fragment_kept() {
        assert_eq!(
            replace_query("https://t.example/a?x=1#top", "y=2"),
            "https://t.example/a?y=2#top"
        );
        assert_eq!(
            replace_query("https://t.example/a?x=1", ""),
            "https://t.example/a"
        );
        assert_eq!(
            replace_query("https://t.example/a", "y=2"),
            "https://t.example/a?y=2"
        );
    }

    #[test]
    fn a_parameter_is_dropped_from_a_query_by_its_decoded_name() {
        assert_eq!(
            query_without(
                "https://t.example/l?resource=42&lti_launch_id=x&lti%5Flaunch%5Fid=y&&b=%20#f",
                "lti_launch_id"
            ),
            "resource=42&b=%20"
        );
        assert_eq!(query_without("https://t.example/l", "a"), "");
        assert_eq!(query_without("https://t.example/l?a", "a"), "");
        assert_eq!(query_without("https://t.example/l?ab=1", "a"), "ab=1");
    }

    #[test]
    fn endpoints_compare_by_scheme_host_port_and_path() {
        let launch = "https://tool.example/lti/launch";
        for same in [
            "https://tool.example/lti/launch",
            "https://tool.example/lti/launch/",
            "https://tool.example/lti/launch?resource=42",
            "https://tool.example/lti/launch/?a=1&b=2",
            "HTTPS://Tool.Example/lti/launch",
            "https://tool.example:443/lti/launch",
        ] {
            assert!(same_endpoint(launch, same), "{same}");
        }
        for other in [
            "https://tool.example/lti/launch2",
            "https://tool.example/lti/Launch",
            "https://tool.example/lti",
            "http://tool.example/lti/launch",
            "https://tool.example:8443/lti/launch",
            "https://other.example/lti/launch",
            "not a url",
        ] {
            assert!(!same_endpoint(launch, other), "{other}");
        }
        assert!(same_endpoint(
            "http://127.0.0.1:3000/lti/launch",
            "http://127.0.0.1:3000/lti/launch/?x=1"
        ));
    }

    #[test]
    fn base_urls_are_https_unless_loopback() {
        assert_eq!(
            parse_base_url("https://tool.example", false).unwrap(),
            "https://tool.example/"
        );
        assert!(parse_base_url("http://127.0.0.1:3000", false).is_ok());
        assert!(parse_base_url("http://localhost:3000/", false).is_ok());
        assert_eq!(
            parse_base_url("http://tool.example", false)
                .unwrap_err()
                .code(),
            "configuration"
        );
        assert!(parse_base_url("http://tool.example", true).is_ok());
    }
}
