//! Framework-neutral requests and responses.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, HeaderName, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use percent_encoding::percent_decode;

use crate::error::{ToolError, clip};

/// An incoming request as the tool flows need it: method, URI, headers (including
/// `Cookie`) and the raw body. Adapters build it from their framework's request;
/// the body should already be size-limited by the adapter.
#[derive(Debug, Clone)]
pub struct ToolRequest {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl ToolRequest {
    /// A request from its parts.
    pub fn new(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Self {
        Self {
            method,
            uri,
            headers,
            body,
        }
    }

    /// A request from an `http` crate request with a collected body.
    pub fn from_http(req: http::Request<Bytes>) -> Self {
        let (parts, body) = req.into_parts();
        Self::new(parts.method, parts.uri, parts.headers, body)
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request URI (only its query is read; the tool's own URLs come from
    /// configuration, never from the request).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The raw body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The parameters of a GET (query string) or POST (form body) request.
    pub(crate) fn params(&self) -> Result<Params<'_>, ToolError> {
        if self.method == Method::GET {
            Params::parse(self.uri.query().unwrap_or("").as_bytes())
        } else if self.method == Method::POST {
            self.check_form_content_type()?;
            Params::parse(&self.body)
        } else {
            Err(ToolError::MethodNotAllowed {
                expected: "GET or POST",
                found: clip(self.method.as_str()),
            })
        }
    }

    /// The form body of a POST request.
    pub(crate) fn form(&self) -> Result<Params<'_>, ToolError> {
        if self.method != Method::POST {
            return Err(ToolError::MethodNotAllowed {
                expected: "POST",
                found: clip(self.method.as_str()),
            });
        }
        self.check_form_content_type()?;
        Params::parse(&self.body)
    }

    fn check_form_content_type(&self) -> Result<(), ToolError> {
        let Some(ct) = self.headers.get(CONTENT_TYPE) else {
            // Browsers always send one for form posts; tolerate its absence.
            return Ok(());
        };
        let essence = ct
            .to_str()
            .ok()
            .and_then(|s| s.split(';').next())
            .map(|s| s.trim().to_ascii_lowercase());
        match essence.as_deref() {
            Some("application/x-www-form-urlencoded") => Ok(()),
            Some(other) => Err(ToolError::UnsupportedMediaType { found: clip(other) }),
            None => Err(ToolError::UnsupportedMediaType {
                found: "a non-ASCII content type".to_owned(),
            }),
        }
    }

    /// Every cookie `(name, value)` in the `Cookie` headers (malformed pairs are skipped).
    pub(crate) fn cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .get_all(COOKIE)
            .into_iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                Some((name.trim(), value))
            })
    }
}

impl From<http::Request<Bytes>> for ToolRequest {
    fn from(req: http::Request<Bytes>) -> Self {
        Self::from_http(req)
    }
}

/// Decoded `application/x-www-form-urlencoded` parameters, in order. Values
/// without escapes borrow from the input.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Params<'a> {
    /// Parses strictly: every name and value must be valid UTF-8 after
    /// percent-decoding (no lossy replacement).
    pub(crate) fn parse(input: &'a [u8]) -> Result<Self, ToolError> {
        let mut out = Vec::with_capacity(8);
        // Valid UTF-8 as a whole means every undecoded piece is too (pieces are cut
        // at ASCII bytes): only pieces with escapes are checked again.
        if let Ok(text) = std::str::from_utf8(input) {
            for pair in text.split('&').filter(|p| !p.is_empty()) {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                out.push((decode_str(name)?, decode_str(value)?));
            }
        } else {
            // Some piece is not UTF-8: go piece by piece to name the first bad one.
            for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
                let (name, value) = match memchr::memchr(b'=', pair) {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, &b""[..]),
                };
                out.push((decode(name)?, decode(value)?));
            }
        }
        Ok(Self(out))
    }

    /// The single value of `name`; `None` when absent; an error when repeated.
    pub(crate) fn get(&self, name: &'static str) -> Result<Option<&str>, ToolError> {
        let mut found = None;
        let mut count = 0;
        for (k, v) in &self.0 {
            if k == name {
                count += 1;
                found = Some(&**v);
            }
        }
        if count > 1 {
            return Err(ToolError::DuplicateParameter { name, count });
        }
        Ok(found)
    }

    /// The single non-empty value of `name`, or [`ToolError::MissingParameter`].
    pub(crate) fn require(&self, name: &'static str) -> Result<&str, ToolError> {
        match self.get(name)? {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ToolError::MissingParameter { name }),
        }
    }

    /// The single value of `name`, with an empty value treated as absent.
    pub(crate) fn optional(&self, name: &'static str) -> Result<Option<&str>, ToolError> {
        Ok(self.get(name)?.filter(|v| !v.is_empty()))
    }
}

fn invalid_utf8(valid_up_to: usize) -> ToolError {
    ToolError::InvalidFormEncoding {
        found: format!("an invalid UTF-8 sequence at byte {valid_up_to} of a decoded parameter"),
    }
}

/// Decodes a piece of a body already known to be UTF-8.
fn decode_str(raw: &str) -> Result<Cow<'_, str>, ToolError> {
    if memchr::memchr2(b'+', b'%', raw.as_bytes()).is_none() {
        return Ok(Cow::Borrowed(raw));
    }
    unescape(raw.as_bytes()).map(Cow::Owned)
}

/// Decodes a piece of a body that is not UTF-8 as a whole.
fn decode(raw: &[u8]) -> Result<Cow<'_, str>, ToolError> {
    if memchr::memchr2(b'+', b'%', raw).is_none() {
        return std::str::from_utf8(raw)
            .map(Cow::Borrowed)
            .map_err(|e| invalid_utf8(e.valid_up_to()));
    }
    unescape(raw).map(Cow::Owned)
}

/// `+` to space, then percent-decoding; the result must be UTF-8.
fn unescape(raw: &[u8]) -> Result<String, ToolError> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_decode(&plus_as_space).collect();
    String::from_utf8(bytes).map_err(|e| invalid_utf8(e.utf8_error().valid_up_to()))
}

/// A response description: status, headers (including `Set-Cookie`) and body.
/// Convert it with [`ToolResponse::into_http`] (or `http::Response::from`).
#[derive(Debug, Clone)]
pub struct ToolResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl ToolResponse {
    /// A response with no headers and an empty body.
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// A `302 Found` (login) or `303 See Other` (after a POST) redirect, not cacheable.
    pub(crate) fn redirect(status: StatusCode, location: &str) -> Result<Self, ToolError> {
        let location = HeaderValue::from_str(location).map_err(|_| {
            ToolError::config("a redirect URL contains characters not allowed in a header")
        })?;
        let mut resp = Self::new(status);
        resp.headers.insert(LOCATION, location);
        resp.headers
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(resp)
    }

    /// A `text/html; charset=utf-8` response, not cacheable.
    pub(crate) fn html(status: StatusCode, html: String) -> Self {
        Self::uncached(status, "text/html; charset=utf-8", html)
    }

    /// A `text/plain; charset=utf-8` response, not cacheable.
    pub(crate) fn text(status: StatusCode, text: String) -> Self {
        Self::uncached(status, "text/plain; charset=utf-8", text)
    }

    fn uncached(status: StatusCode, content_type: &'static str, body: String) -> Self {
        let mut resp = Self::new(status);
        resp.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        resp.headers
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp.body = Bytes::from(body);
        resp
    }

    pub(crate) fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    pub(crate) fn with_cookie(self, cookie: &str) -> Result<Self, ToolError> {
        let value = HeaderValue::from_str(cookie).map_err(|_| {
            ToolError::config("a cookie contains characters not allowed in a header")
        })?;
        Ok(self.with_header(SET_COOKIE, value))
    }

    pub(crate) fn with_body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers (`Location`, `Set-Cookie`, `Content-Type`, `Cache-Control`, ...).
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The headers, for an application to add its own (e.g. a session cookie).
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The `Location` header, if this is a redirect.
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// Every `Set-Cookie` header value.
    pub fn set_cookies(&self) -> impl Iterator<Item = &str> {
        self.headers
            .get_all(SET_COOKIE)
            .into_iter()
            .filter_map(|v| v.to_str().ok())
    }

    /// Converts into an `http` crate response.
    pub fn into_http(self) -> http::Response<Bytes> {
        let mut resp = http::Response::new(self.body);
        *resp.status_mut() = self.status;
        *resp.headers_mut() = self.headers;
        resp
    }
}

impl From<ToolResponse> for http::Response<Bytes> {
    fn from(resp: ToolResponse) -> Self {
        resp.into_http()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_is_strict_utf8_and_handles_plus_and_percent() {
        let p = Params::parse(b"a=x+y%21&b=&c&a2=%E2%9C%93").unwrap();
        assert_eq!(p.get("a").unwrap(), Some("x y!"));
        assert_eq!(p.get("b").unwrap(), Some(""));
        assert_eq!(p.optional("b").unwrap(), None);
        assert_eq!(p.get("c").unwrap(), Some(""));
        assert_eq!(p.get("a2").unwrap(), Some("\u{2713}"));
        let err = Params::parse(b"a=%FF%FE").unwrap_err();
        assert_eq!(err.code(), "invalid_form_encoding");
        let err = Params::parse(b"a=\xff").unwrap_err();
        assert_eq!(err.code(), "invalid_form_encoding");
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let p = Params::parse(b"state=a&state=b").unwrap();
        let err = p.get("state").unwrap_err();
        assert_eq!(err.code(), "duplicate_parameter");
        assert_eq!(
            p.require("missing").unwrap_err().code(),
            "missing_parameter"
        );
    }
}
