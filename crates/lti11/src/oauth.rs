//! OAuth 1.0a (RFC 5849) signatures as used by LTI 1.0/1.1.
//!
//! The pure building blocks: RFC 3986 percent-encoding, the base string URI,
//! parameter normalisation, the signature base string, HMAC-SHA1 /
//! HMAC-SHA256 signatures, `oauth_body_hash`, and the `Authorization: OAuth`
//! header. [`sign_params`] signs an outgoing request;
//! [`SignedRequest::collect`] gathers the parameters of an incoming one for
//! verification (see [`crate::OAuthVerifier`]).

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use lti_registry::SecretString;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::error::{Error, Result, snippet};
use mac::SignatureMac;

mod incoming;
mod mac;

pub use incoming::CollectedRequest;

/// `oauth_consumer_key`.
pub const OAUTH_CONSUMER_KEY: &str = "oauth_consumer_key";
/// `oauth_signature`.
pub const OAUTH_SIGNATURE: &str = "oauth_signature";
/// `oauth_signature_method`.
pub const OAUTH_SIGNATURE_METHOD: &str = "oauth_signature_method";
/// `oauth_timestamp`.
pub const OAUTH_TIMESTAMP: &str = "oauth_timestamp";
/// `oauth_nonce`.
pub const OAUTH_NONCE: &str = "oauth_nonce";
/// `oauth_version`.
pub const OAUTH_VERSION: &str = "oauth_version";
/// `oauth_callback`.
pub const OAUTH_CALLBACK: &str = "oauth_callback";
/// `oauth_body_hash`.
pub const OAUTH_BODY_HASH: &str = "oauth_body_hash";

/// Longest accepted consumer key (characters).
pub const MAX_CONSUMER_KEY_LEN: usize = 255;
/// Longest accepted nonce (characters).
pub const MAX_NONCE_LEN: usize = 128;
/// Longest accepted timestamp (digits).
pub const MAX_TIMESTAMP_LEN: usize = 12;
/// Longest accepted `oauth_signature` (base64 characters).
const MAX_SIGNATURE_LEN: usize = 128;

/// An OAuth signature method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureMethod {
    /// `HMAC-SHA1`, the LTI 1.x default.
    HmacSha1,
    /// `HMAC-SHA256`.
    HmacSha256,
}

impl SignatureMethod {
    /// The wire name (`HMAC-SHA1`, `HMAC-SHA256`).
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureMethod::HmacSha1 => "HMAC-SHA1",
            SignatureMethod::HmacSha256 => "HMAC-SHA256",
        }
    }

    /// Parses a wire name (exact, case-sensitive as in RFC 5849).
    pub fn from_wire(s: &str) -> Option<Self> {
        match s {
            "HMAC-SHA1" => Some(SignatureMethod::HmacSha1),
            "HMAC-SHA256" => Some(SignatureMethod::HmacSha256),
            _ => None,
        }
    }
}

impl fmt::Display for SignatureMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Key and secret of one OAuth consumer.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `oauth_consumer_key`.
    pub key: String,
    /// The shared secret.
    pub secret: SecretString,
}

impl Credentials {
    /// Builds credentials from a key and a secret.
    pub fn new(key: impl Into<String>, secret: impl Into<String>) -> Self {
        Credentials {
            key: key.into(),
            secret: SecretString::new(secret),
        }
    }
}

impl From<&lti_registry::Consumer> for Credentials {
    /// The key and secret of a stored consumer (what a tool signs outcome
    /// requests to that consumer with).
    fn from(consumer: &lti_registry::Consumer) -> Self {
        Credentials {
            key: consumer.key.clone(),
            secret: consumer.secret.clone(),
        }
    }
}

/// The RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) are kept;
/// every other byte is escaped.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// RFC 3986 / RFC 5849 §3.6 percent-encoding: `A-Z a-z 0-9 - . _ ~` are kept,
/// every other UTF-8 byte becomes `%XX` (upper-case hex); space is `%20`.
pub fn percent_encode(s: &str) -> Cow<'_, str> {
    utf8_percent_encode(s, ESCAPED).into()
}

/// Decodes `%XX` sequences (no `+` handling), as used in the `Authorization`
/// header. Fails on malformed escapes or non-UTF-8 results.
fn percent_decode_strict(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The base string URI (RFC 5849 §3.4.1.2): scheme and host lower-cased,
/// default port (80 for http, 443 for https) dropped, path kept (`/` when
/// empty), query and fragment removed.
pub fn base_string_uri(url: &str) -> Result<String> {
    let url = url.split(['#', '?']).next().unwrap_or(url);
    let uri: http::Uri = url.parse().map_err(|_| Error::InvalidUrl {
        found: format!("unparsable `{}`", snippet(url)),
    })?;
    let scheme = uri
        .scheme_str()
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| Error::InvalidUrl {
            found: format!("no scheme in `{}`", snippet(url)),
        })?;
    if scheme != "http" && scheme != "https" {
        return Err(Error::InvalidUrl {
            found: format!("scheme `{}`", snippet(&scheme)),
        });
    }
    let authority = uri.authority().ok_or_else(|| Error::InvalidUrl {
        found: format!("no host in `{}`", snippet(url)),
    })?;
    if authority.as_str().contains('@') {
        return Err(Error::InvalidUrl {
            found: "user information in the authority".to_owned(),
        });
    }
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return Err(Error::InvalidUrl {
            found: format!("empty host in `{}`", snippet(url)),
        });
    }
    let port = match (authority.port_u16(), scheme.as_str()) {
        (Some(80), "http") | (Some(443), "https") | (None, _) => None,
        (Some(p), _) => Some(p),
    };
    let path = match uri.path() {
        "" => "/",
        p => p,
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&host);
    if let Some(p) = port {
        out.push(':');
        out.push_str(&p.to_string());
    }
    out.push_str(path);
    Ok(out)
}

/// The query-string parameters of a URL, decoded (`+` is a space).
pub fn query_params(url: &str) -> Vec<(String, String)> {
    let without_fragment = url.split('#').next().unwrap_or(url);
    match without_fragment.split_once('?') {
        Some((_, q)) => form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        None => Vec::new(),
    }
}

/// Normalises decoded parameters (RFC 5849 §3.4.1.3.2): each name and value
/// percent-encoded, pairs sorted by encoded name then encoded value,
/// duplicates kept, joined as `name=value` with `&`. `oauth_signature` is
/// always left out.
pub fn normalize_parameters<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut encoded: Vec<(Cow<'_, str>, Cow<'_, str>)> = params
        .iter()
        .filter(|(k, _)| k.as_ref() != OAUTH_SIGNATURE)
        .map(|(k, v)| (percent_encode(k.as_ref()), percent_encode(v.as_ref())))
        .collect();
    encoded.sort_unstable();
    let mut out = String::with_capacity(encoded.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// The signature base string (RFC 5849 §3.4.1): `METHOD&enc(base URI)&enc(normalised params)`.
///
/// `url` may carry a query string: it is dropped from the base URI, but its
/// parameters are *not* added here — pass every parameter (query, form body,
/// OAuth) in `params`.
pub fn signature_base_string<K: AsRef<str>, V: AsRef<str>>(
    method: &str,
    url: &str,
    params: &[(K, V)],
) -> Result<String> {
    let base_uri = base_string_uri(url)?;
    Ok(base_string_from_parts(method, &base_uri, params))
}

pub(crate) fn base_string_from_parts<K: AsRef<str>, V: AsRef<str>>(
    method: &str,
    base_uri: &str,
    params: &[(K, V)],
) -> String {
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        percent_encode(base_uri),
        percent_encode(&normalize_parameters(params))
    )
}

/// The MAC of `method` keyed with `enc(consumer_secret) & enc(token_secret)`.
fn signing_mac(method: SignatureMethod, consumer_secret: &str, token_secret: &str) -> SignatureMac {
    // Sized for the worst case so the buffer holding the secret never
    // reallocates (a reallocation would leave an unzeroed copy behind).
    let mut key = Zeroizing::new(String::with_capacity(
        (consumer_secret.len() + token_secret.len()) * 3 + 1,
    ));
    key.extend(utf8_percent_encode(consumer_secret, ESCAPED));
    key.push('&');
    key.extend(utf8_percent_encode(token_secret, ESCAPED));
    SignatureMac::new(method, key.as_bytes())
}

/// Signs a base string: `base64(HMAC(enc(consumer_secret) & enc(token_secret), base))`.
/// LTI has no token: pass `""` as `token_secret`.
pub fn sign_base_string(
    method: SignatureMethod,
    consumer_secret: &str,
    token_secret: &str,
    base_string: &str,
) -> String {
    B64.encode(base_string_tag(
        method,
        consumer_secret,
        token_secret,
        base_string,
    ))
}

/// Verifies a base64 signature in constant time.
pub fn verify_base_string(
    method: SignatureMethod,
    consumer_secret: &str,
    token_secret: &str,
    base_string: &str,
    signature_b64: &str,
) -> bool {
    let tag = base_string_tag(method, consumer_secret, token_secret, base_string);
    signature_matches(&tag, signature_b64)
}

/// The MAC of a base string.
pub(crate) fn base_string_tag(
    method: SignatureMethod,
    consumer_secret: &str,
    token_secret: &str,
    base_string: &str,
) -> mac::Tag {
    let mut mac = signing_mac(method, consumer_secret, token_secret);
    mac.update(base_string.as_bytes());
    mac.finish()
}

/// Whether the base64 `signature_b64` decodes to `tag`, compared in
/// constant time. Anything that is not base64, or longer than the bytes
/// [`MAX_SIGNATURE_LEN`] characters carry, does not match.
pub(crate) fn signature_matches(tag: &mac::Tag, signature_b64: &str) -> bool {
    let mut sent = [0u8; MAX_SIGNATURE_LEN / 4 * 3];
    match B64.decode_slice(signature_b64, &mut sent) {
        Ok(len) => tag.as_ref().ct_eq(&sent[..len]).into(),
        Err(_) => false,
    }
}

/// `oauth_body_hash`: `base64(SHA-1(body))` over the exact body bytes.
pub fn body_hash(body: &[u8]) -> String {
    B64.encode(mac::sha1(body))
}

/// A fresh nonce: 128 random bits as 32 lower-case hex characters.
pub fn generate_nonce() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 16];
    // The system RNG failing is unrecoverable for any security code; fall back
    // to the clock would be worse, so surface it loudly instead.
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .unwrap_or_else(|_| panic!("system random number generator unavailable"));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses an `Authorization: OAuth …` header value into decoded
/// `(name, value)` pairs. `realm` is dropped (it is never signed). Fails on a
/// non-`OAuth` scheme or malformed pairs.
pub fn parse_authorization_header(value: &str) -> Result<Vec<(String, String)>> {
    let malformed = |found: String| Error::MalformedAuthorizationHeader { found };
    if value.len() > 8 * 1024 {
        return Err(malformed(format!("{} bytes", value.len())));
    }
    let trimmed = value.trim_start();
    let (scheme, rest) =
        trimmed.split_at(trimmed.find(char::is_whitespace).unwrap_or(trimmed.len()));
    if !scheme.eq_ignore_ascii_case("OAuth") {
        return Err(malformed(format!("scheme `{}`", snippet(scheme))));
    }
    let mut out = Vec::new();
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, raw) = part
            .split_once('=')
            .ok_or_else(|| malformed(format!("a pair without `=`: `{}`", snippet(part))))?;
        let name = name.trim();
        let raw = raw.trim();
        let inner = raw
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .ok_or_else(|| malformed(format!("an unquoted value for `{}`", snippet(name))))?;
        let name = percent_decode_strict(name).ok_or_else(|| {
            malformed(format!(
                "a bad percent escape in a name `{}`",
                snippet(name)
            ))
        })?;
        let val = percent_decode_strict(inner).ok_or_else(|| {
            malformed(format!(
                "a bad percent escape in the value of `{}`",
                snippet(&name)
            ))
        })?;
        if name == "realm" {
            continue;
        }
        out.push((name, val));
    }
    Ok(out)
}

/// Renders OAuth parameters as an `Authorization` header value
/// (`OAuth name="value", …`, names and values percent-encoded).
pub fn authorization_header<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut out = String::from("OAuth ");
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&percent_encode(k.as_ref()));
        out.push_str("=\"");
        out.push_str(&percent_encode(v.as_ref()));
        out.push('"');
    }
    out
}

/// The OAuth protocol parameters of an outgoing request, before signing.
#[derive(Debug, Clone)]
pub struct OAuthParams {
    /// The signature method (default HMAC-SHA1).
    pub method: SignatureMethod,
    /// `oauth_nonce` (default: 128 random bits).
    pub nonce: String,
    /// `oauth_timestamp`, Unix seconds.
    pub timestamp: u64,
    /// `oauth_callback` (LTI launches send `about:blank`; `None` leaves it out).
    pub callback: Option<String>,
    /// `oauth_body_hash`, for non-form bodies.
    pub body_hash: Option<String>,
}

impl OAuthParams {
    /// HMAC-SHA1, a fresh random nonce, the given timestamp, no callback.
    pub fn new(timestamp: u64) -> Self {
        OAuthParams {
            method: SignatureMethod::HmacSha1,
            nonce: generate_nonce(),
            timestamp,
            callback: None,
            body_hash: None,
        }
    }
}

/// Signs an outgoing request and returns the OAuth protocol parameters
/// (including `oauth_signature`) to send, in a stable order.
///
/// `params` are the decoded non-OAuth parameters carried in the form body;
/// parameters in `url`'s query string are included in the signature
/// automatically and must stay in the URL.
pub fn sign_params<K: AsRef<str>, V: AsRef<str>>(
    http_method: &str,
    url: &str,
    params: &[(K, V)],
    credentials: &Credentials,
    oauth: &OAuthParams,
) -> Result<Vec<(String, String)>> {
    let base_uri = base_string_uri(url)?;
    let mut protocol: Vec<(String, String)> = vec![
        (OAUTH_CONSUMER_KEY.to_owned(), credentials.key.clone()),
        (
            OAUTH_SIGNATURE_METHOD.to_owned(),
            oauth.method.as_str().to_owned(),
        ),
        (OAUTH_TIMESTAMP.to_owned(), oauth.timestamp.to_string()),
        (OAUTH_NONCE.to_owned(), oauth.nonce.clone()),
        (OAUTH_VERSION.to_owned(), "1.0".to_owned()),
    ];
    if let Some(cb) = &oauth.callback {
        protocol.push((OAUTH_CALLBACK.to_owned(), cb.clone()));
    }
    if let Some(bh) = &oauth.body_hash {
        protocol.push((OAUTH_BODY_HASH.to_owned(), bh.clone()));
    }
    let mut all: Vec<(Cow<'_, str>, Cow<'_, str>)> = query_params(url)
        .into_iter()
        .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v)))
        .collect();
    all.extend(
        params
            .iter()
            .map(|(k, v)| (Cow::Borrowed(k.as_ref()), Cow::Borrowed(v.as_ref()))),
    );
    all.extend(
        protocol
            .iter()
            .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str()))),
    );
    let base = base_string_from_parts(http_method, &base_uri, &all);
    let signature = sign_base_string(oauth.method, credentials.secret.expose(), "", &base);
    protocol.push((OAUTH_SIGNATURE.to_owned(), signature));
    Ok(protocol)
}

/// An incoming request as seen by a verifier: everything needed to rebuild
/// the signature base string. Adapters fill it from their framework's request.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The public URL the request was sent to, including its query string.
    /// Build it from the configured public base URL, never from `Host`.
    pub url: &'a str,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The raw body bytes.
    pub body: &'a [u8],
}

impl<'a> SignedRequest<'a> {
    /// A form POST (`application/x-www-form-urlencoded`), the shape of an LTI launch.
    pub fn form_post(url: &'a str, body: &'a [u8]) -> Self {
        SignedRequest {
            method: "POST",
            url,
            authorization: None,
            content_type: Some("application/x-www-form-urlencoded"),
            body,
        }
    }

    fn is_form(&self) -> bool {
        self.content_type.is_some_and(|ct| {
            ct.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        })
    }
}

/// Input hygiene for `oauth_consumer_key`: 1–255 printable ASCII characters.
pub fn check_consumer_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > MAX_CONSUMER_KEY_LEN
        || !key.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return Err(Error::InvalidOAuthParameter {
            name: OAUTH_CONSUMER_KEY,
            expected: "1 to 255 printable ASCII characters",
            found: describe(key),
        });
    }
    Ok(())
}

/// Input hygiene for `oauth_nonce`: 1–128 visible ASCII characters.
pub fn check_nonce(nonce: &str) -> Result<()> {
    if nonce.is_empty()
        || nonce.len() > MAX_NONCE_LEN
        || !nonce.bytes().all(|b| (0x21..0x7f).contains(&b))
    {
        return Err(Error::InvalidOAuthParameter {
            name: OAUTH_NONCE,
            expected: "1 to 128 visible ASCII characters",
            found: describe(nonce),
        });
    }
    Ok(())
}

/// Input hygiene for `oauth_timestamp`: 1–12 ASCII digits (Unix seconds).
pub fn check_timestamp(ts: &str) -> Result<u64> {
    let invalid = || Error::InvalidOAuthParameter {
        name: OAUTH_TIMESTAMP,
        expected: "1 to 12 decimal digits",
        found: describe(ts),
    };
    if ts.is_empty() || ts.len() > MAX_TIMESTAMP_LEN || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    ts.parse().map_err(|_| invalid())
}

fn describe(value: &str) -> String {
    let len = value.chars().count();
    if value.is_empty() {
        "an empty value".to_owned()
    } else if len > 64 {
        format!("{len} characters")
    } else {
        format!("`{}`", value.escape_debug())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_follows_rfc3986() {
        assert_eq!(percent_encode("abcABC123-._~"), "abcABC123-._~");
        assert_eq!(percent_encode("a b+c/d"), "a%20b%2Bc%2Fd");
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode("*"), "%2A");
    }

    #[test]
    fn base_uri_is_normalised() {
        assert_eq!(
            base_string_uri("HTTP://Example.COM:80/r%20v/X?id=123").unwrap(),
            "http://example.com/r%20v/X"
        );
        assert_eq!(
            base_string_uri("https://www.example.net:8080/?q=1").unwrap(),
            "https://www.example.net:8080/"
        );
        assert_eq!(
            base_string_uri("https://a.example:443").unwrap(),
            "https://a.example/"
        );
        assert_eq!(
            base_string_uri("http://a.example:443/x").unwrap(),
            "http://a.example:443/x"
        );
    }

    #[test]
    fn base_uri_rejects_non_http_and_relative_urls() {
        for bad in [
            "ftp://x.example/",
            "/relative",
            "",
            "https://user:pw@x.example/",
        ] {
            assert_eq!(
                base_string_uri(bad).unwrap_err().code(),
                "invalid_url",
                "{bad}"
            );
        }
    }

    #[test]
    fn authorization_header_round_trips_and_drops_realm() {
        let h = "OAuth realm=\"Example\", oauth_consumer_key=\"a%20b\",oauth_nonce=\"n\"";
        let parsed = parse_authorization_header(h).unwrap();
        assert_eq!(
            parsed,
            vec![
                ("oauth_consumer_key".into(), "a b".into()),
                ("oauth_nonce".into(), "n".into())
            ]
        );
        let rendered = authorization_header(&parsed);
        assert_eq!(parse_authorization_header(&rendered).unwrap(), parsed);
    }

    #[test]
    fn malformed_authorization_headers_are_rejected() {
        for bad in ["Bearer abc", "OAuth a=b", "OAuth a", "OAuth a=\"%zz\""] {
            assert_eq!(
                parse_authorization_header(bad).unwrap_err().code(),
                "malformed_authorization_header",
                "{bad}"
            );
        }
    }

    #[test]
    fn hygiene_rejects_absurd_values() {
        assert_eq!(
            check_consumer_key(&"k".repeat(256)).unwrap_err().code(),
            "invalid_oauth_parameter"
        );
        assert_eq!(
            check_consumer_key("a\u{0}b").unwrap_err().code(),
            "invalid_oauth_parameter"
        );
        assert_eq!(
            check_consumer_key("").unwrap_err().code(),
            "invalid_oauth_parameter"
        );
        assert!(check_consumer_key("key-123").is_ok());
        assert_eq!(
            check_nonce("with space").unwrap_err().code(),
            "invalid_oauth_parameter"
        );
        assert_eq!(
            check_nonce(&"n".repeat(129)).unwrap_err().code(),
            "invalid_oauth_parameter"
        );
        assert_eq!(
            check_timestamp("17e9").unwrap_err().code(),
            "invalid_oauth_parameter"
        );
        assert_eq!(
            check_timestamp("1234567890123").unwrap_err().code(),
            "invalid_oauth_parameter"
        );
        assert_eq!(
            check_timestamp("-1").unwrap_err().code(),
            "invalid_oauth_parameter"
        );
        assert_eq!(check_timestamp("1700000000").unwrap(), 1_700_000_000);
    }

    #[test]
    fn verify_base_string_accepts_only_the_exact_signature() {
        let base = "POST&https%3A%2F%2Ft.example%2F&a%3Db";
        for method in [SignatureMethod::HmacSha1, SignatureMethod::HmacSha256] {
            let sig = sign_base_string(method, "s3cret", "", base);
            assert!(verify_base_string(method, "s3cret", "", base, &sig));
            assert!(!verify_base_string(method, "other", "", base, &sig));
            assert!(!verify_base_string(method, "s3cret", "", "POST&x&y", &sig));
            // Not base64, a truncated tag, a tag with bytes appended, and
            // more than any signature may decode to.
            assert!(!verify_base_string(method, "s3cret", "", base, "%%%"));
            let tag = B64.decode(&sig).unwrap();
            let short = B64.encode(&tag[..tag.len() - 1]);
            assert!(!verify_base_string(method, "s3cret", "", base, &short));
            let long = B64.encode([&tag[..], &[0]].concat());
            assert!(!verify_base_string(method, "s3cret", "", base, &long));
            let huge = B64.encode([&tag[..], &[0; 200]].concat());
            assert!(!verify_base_string(method, "s3cret", "", base, &huge));
        }
    }

    #[test]
    fn body_hash_matches_known_sha1() {
        // SHA-1("Hello World!") = 2ef7bde608ce5404e97d5f042f95f89f1c232871
        assert_eq!(body_hash(b"Hello World!"), "Lve95gjOVATpfV8EL5X4nxwjKHE=");
    }

    proptest::proptest! {
        #[test]
        fn percent_encoding_equals_the_rfc_3986_definition(s in ".{0,12}") {
            // Against the RFC 3986 definition written out byte by byte.
            let mut reference = String::new();
            for b in s.bytes() {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    reference.push(char::from(b));
                } else {
                    reference.push_str(&format!("%{b:02X}"));
                }
            }
            proptest::prop_assert_eq!(&percent_encode(&s), &reference);
        }
    }

    #[test]
    fn nonces_are_random_hex() {
        let a = generate_nonce();
        assert_eq!(a.len(), 32);
        assert!(check_nonce(&a).is_ok());
        assert_ne!(a, generate_nonce());
    }
}
