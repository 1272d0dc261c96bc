//! Shared halves of every operation: URL handling, request construction,
//! status checks with platform message excerpts, JSON parsing.

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, Uri};
use lti_http::{Links, redact_url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ServiceError;

/// Longest platform message excerpt kept in an error, in characters.
const MAX_EXCERPT: usize = 200;

/// Parses `url` as an absolute `http(s)` URL.
pub(crate) fn check_url(what: &'static str, url: &str) -> Result<Uri, ServiceError> {
    let bad = || ServiceError::InvalidUrl {
        what,
        found: redact_url(url).chars().take(120).collect(),
    };
    let uri: Uri = url.parse().map_err(|_| bad())?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.authority().is_some_and(|a| !a.host().is_empty()) => Ok(uri),
        _ => Err(bad()),
    }
}

/// Splits `url` into the part before the query, the query (without `?`) and
/// drops any fragment.
fn split_query(url: &str) -> (&str, Option<&str>) {
    let url = url.split_once('#').map_or(url, |(u, _)| u);
    match url.split_once('?') {
        Some((base, q)) => (base, Some(q)),
        None => (url, None),
    }
}

/// Inserts `/segment` at the end of the URL's path, before any query string:
/// `…/lineitem?type_id=1` becomes `…/lineitem/scores?type_id=1`.
pub(crate) fn append_path_segment(url: &str, segment: &str) -> String {
    let (base, query) = split_query(url);
    let base = base.trim_end_matches('/');
    match query {
        Some(q) if !q.is_empty() => format!("{base}/{segment}?{q}"),
        _ => format!("{base}/{segment}"),
    }
}

/// Adds `pairs` (form-encoded) to the URL's query, keeping an existing query.
pub(crate) fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let (base, query) = split_query(url);
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    let added = ser.finish();
    match (query.filter(|q| !q.is_empty()), added.is_empty()) {
        (Some(q), true) => format!("{base}?{q}"),
        (Some(q), false) => format!("{base}?{q}&{added}"),
        (None, true) => base.to_owned(),
        (None, false) => format!("{base}?{added}"),
    }
}

/// Resolves a `Link` target against the URL of the page that carried it.
pub(crate) fn resolve(base: &str, target: &str) -> Result<String, ServiceError> {
    if target.starts_with("http://") || target.starts_with("https://") {
        check_url("a Link header target", target)?;
        return Ok(target.to_owned());
    }
    let base_uri = check_url("a page URL", base)?;
    let origin = format!(
        "{}://{}",
        base_uri.scheme_str().unwrap_or("https"),
        base_uri.authority().map(|a| a.as_str()).unwrap_or_default()
    );
    let resolved = if target.starts_with("//") {
        format!("{}:{target}", base_uri.scheme_str().unwrap_or("https"))
    } else if target.starts_with('/') {
        format!("{origin}{target}")
    } else {
        let path = base_uri.path();
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{origin}{dir}/{target}")
    };
    check_url("a Link header target", &resolved)?;
    Ok(resolved)
}

/// A `GET` of `url` accepting `accept`.
pub(crate) fn get(
    what: &'static str,
    url: &str,
    accept: &'static str,
) -> Result<Request<Bytes>, ServiceError> {
    request(Method::GET, what, url, Some(accept), None)
}

/// A request with an optional JSON body of media type `content_type`.
pub(crate) fn request(
    method: Method,
    what: &'static str,
    url: &str,
    accept: Option<&'static str>,
    body: Option<(&'static str, Bytes)>,
) -> Result<Request<Bytes>, ServiceError> {
    let uri = check_url(what, url)?;
    let (content_type, body) = match body {
        Some((ct, b)) => (Some(ct), b),
        None => (None, Bytes::new()),
    };
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    if let Some(accept) = accept {
        req.headers_mut()
            .insert(ACCEPT, HeaderValue::from_static(accept));
    }
    if let Some(ct) = content_type {
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    Ok(req)
}

/// Serialises `value` as a JSON body.
pub(crate) fn json_body<T: Serialize>(
    what: &'static str,
    value: &T,
) -> Result<Bytes, ServiceError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ServiceError::InvalidArgument {
            what,
            expected: "a value that serialises to JSON",
            found: e.to_string(),
        })
}

/// Accepts a 2xx response; anything else becomes [`ServiceError::Platform`]
/// with an excerpt of the platform's message.
pub(crate) fn check_success(
    operation: &'static str,
    url: &str,
    resp: Response<Bytes>,
) -> Result<Response<Bytes>, ServiceError> {
    if resp.status().is_success() {
        Ok(resp)
    } else {
        Err(platform_error(operation, url, &resp))
    }
}

/// The [`ServiceError::Platform`] for a non-2xx `resp`.
pub(crate) fn platform_error(
    operation: &'static str,
    url: &str,
    resp: &Response<Bytes>,
) -> ServiceError {
    ServiceError::Platform {
        operation,
        status: resp.status().as_u16(),
        url: redact_url(url),
        message: platform_message(resp.body()),
    }
}

/// Parses a 2xx JSON body as `T`.
pub(crate) fn parse_json<T: DeserializeOwned>(
    operation: &'static str,
    url: &str,
    expected: &'static str,
    resp: Response<Bytes>,
) -> Result<(T, Links), ServiceError> {
    let resp = check_success(operation, url, resp)?;
    let links = Links::from_headers(resp.headers());
    let value = serde_json::from_slice(resp.body()).map_err(|e| ServiceError::InvalidResponse {
        operation,
        url: redact_url(url),
        expected,
        found: e.to_string().chars().take(MAX_EXCERPT).collect(),
    })?;
    Ok((value, links))
}

/// A short, single-line, secret-free excerpt of a platform's error body:
/// the first of `message`, `error_description`, `reason`, `detail`, `error`,
/// `title` (also inside `errors[0]` or an `error` object) for JSON bodies,
/// the text (tags removed) otherwise.
pub(crate) fn platform_message(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let raw = match serde_json::from_str::<Value>(text) {
        Ok(v) => json_message(&v).unwrap_or_else(|| text.to_owned()),
        Err(_) if text.starts_with('<') => strip_tags(text),
        Err(_) => text.to_owned(),
    };
    let cleaned = sanitize(&raw);
    (!cleaned.is_empty()).then_some(cleaned)
}

fn json_message(v: &Value) -> Option<String> {
    const KEYS: [&str; 6] = [
        "message",
        "error_description",
        "reason",
        "detail",
        "error",
        "title",
    ];
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => {
            for key in KEYS {
                match map.get(key) {
                    Some(Value::String(s)) if !s.trim().is_empty() => return Some(s.clone()),
                    Some(inner @ Value::Object(_)) => {
                        if let Some(m) = json_message(inner) {
                            return Some(m);
                        }
                    }
                    _ => {}
                }
            }
            match map.get("errors") {
                Some(Value::Array(list)) => list.first().and_then(json_message),
                Some(inner @ Value::Object(_)) => json_message(inner),
                _ => None,
            }
        }
        Value::Array(list) => list.first().and_then(json_message),
        _ => None,
    }
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Collapses whitespace, drops control characters, hides bearer tokens and
/// truncates to [`MAX_EXCERPT`] characters.
fn sanitize(raw: &str) -> String {
    let mut words: Vec<&str> = Vec::new();
    let mut hide_next = false;
    for word in raw.split_whitespace() {
        if hide_next {
            words.push("***");
            hide_next = false;
            continue;
        }
        hide_next = word.eq_ignore_ascii_case("bearer");
        words.push(word);
    }
    let joined: String = words
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    match joined.char_indices().nth(MAX_EXCERPT) {
        Some((i, _)) => format!("{}…", &joined[..i]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_go_before_the_query_string() {
        assert_eq!(
            append_path_segment(
                "https://m.test/mod/lti/services.php/2/lineitems/5/lineitem?type_id=1",
                "scores"
            ),
            "https://m.test/mod/lti/services.php/2/lineitems/5/lineitem/scores?type_id=1"
        );
        assert_eq!(
            append_path_segment("https://c.test/li/7/", "results"),
            "https://c.test/li/7/results"
        );
        assert_eq!(
            append_path_segment("https://c.test/li/7#frag", "scores"),
            "https://c.test/li/7/scores"
        );
        assert_eq!(
            append_path_segment("https://c.test/li/7?", "scores"),
            "https://c.test/li/7/scores"
        );
    }

    #[test]
    fn query_pairs_are_encoded_and_appended_to_an_existing_query() {
        assert_eq!(
            with_query("https://m.test/li?type_id=1", &[("user_id", "a b&c")]),
            "https://m.test/li?type_id=1&user_id=a+b%26c"
        );
        assert_eq!(with_query("https://m.test/li", &[]), "https://m.test/li");
        assert_eq!(
            with_query("https://m.test/li?x=1", &[]),
            "https://m.test/li?x=1"
        );
        assert_eq!(
            with_query("https://m.test/li", &[("limit", "5")]),
            "https://m.test/li?limit=5"
        );
    }

    #[test]
    fn relative_link_targets_resolve_against_the_page() {
        let base = "https://p.test/api/ctx/1/members?page=2";
        assert_eq!(
            resolve(base, "https://q.test/x").unwrap(),
            "https://q.test/x"
        );
        assert_eq!(
            resolve(base, "/api/d?since=3").unwrap(),
            "https://p.test/api/d?since=3"
        );
        assert_eq!(
            resolve(base, "other?p=1").unwrap(),
            "https://p.test/api/ctx/1/other?p=1"
        );
        assert_eq!(resolve(base, "//r.test/y").unwrap(), "https://r.test/y");
        assert_eq!(resolve("nope", "/x").unwrap_err().code(), "invalid_url");
    }

    #[test]
    fn non_http_urls_are_rejected_with_invalid_url() {
        for bad in ["ftp://x.test/a", "/relative", "", "https://", "not a url"] {
            let err = check_url("the test URL", bad).unwrap_err();
            assert_eq!(err.code(), "invalid_url", "{bad}");
        }
        assert!(check_url("ok", "http://127.0.0.1:8080/a?b=c").is_ok());
    }

    #[test]
    fn platform_messages_are_extracted_from_json_text_and_html() {
        assert_eq!(
            platform_message(b"Incorrect score received").as_deref(),
            Some("Incorrect score received")
        );
        assert_eq!(
            platform_message(br#"{"status":400,"reason":"Incorrect score received"}"#).as_deref(),
            Some("Incorrect score received")
        );
        assert_eq!(
            platform_message(
                br#"{"errors":[{"message":"The specified resource does not exist."}]}"#
            )
            .as_deref(),
            Some("The specified resource does not exist.")
        );
        assert_eq!(
            platform_message(br#"{"error":{"code":"x","message":"nested"}}"#).as_deref(),
            Some("nested")
        );
        assert_eq!(
            platform_message(b"<html><body><h1>Forbidden</h1>\n<p>no</p></body></html>").as_deref(),
            Some("Forbidden no")
        );
        assert_eq!(platform_message(b"   "), None);
    }

    #[test]
    fn excerpts_are_single_line_truncated_and_hide_bearer_tokens() {
        let long = "x".repeat(1000);
        let m = platform_message(long.as_bytes()).unwrap();
        assert_eq!(m.chars().count(), MAX_EXCERPT + 1);
        assert!(m.ends_with('…'));
        let m = platform_message(b"bad header Authorization: Bearer abc.def.ghi\r\nline two\x07")
            .unwrap();
        assert_eq!(m, "bad header Authorization: Bearer *** line two");
    }
}
