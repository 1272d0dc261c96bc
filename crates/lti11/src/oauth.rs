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
use ring::hmac;
use zeroize::Zeroizing;

use crate::error::{Error, Result, snippet};

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

    fn algorithm(self) -> hmac::Algorithm {
        match self {
            SignatureMethod::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            SignatureMethod::HmacSha256 => hmac::HMAC_SHA256,
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

/// `UNRESERVED[b]`: `b` is `A-Z a-z 0-9 - . _ ~` (RFC 3986 §2.3).
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~');
        b += 1;
    }
    table
};

fn is_unreserved(b: u8) -> bool {
    UNRESERVED[usize::from(b)]
}

fn encode_into(out: &mut String, s: &str) {
    out.push_str(&percent_encode(s));
}

/// RFC 3986 / RFC 5849 §3.6 percent-encoding: `A-Z a-z 0-9 - . _ ~` are kept,
/// every other UTF-8 byte becomes `%XX` (upper-case hex); space is `%20`.
pub fn percent_encode(s: &str) -> Cow<'_, str> {
    if s.bytes().all(is_unreserved) {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len() * 3);
    escape_bytes_into(&mut out, s.as_bytes(), b"%");
    Cow::Owned(ascii_string(out))
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

fn base_string_from_parts<K: AsRef<str>, V: AsRef<str>>(
    method: &str,
    base_uri: &str,
    params: &[(K, V)],
) -> String {
    // Sort by encoded name, then encoded value, comparing the encodings
    // without building them (see `encoded_cmp`).
    let mut sorted: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .filter(|(k, _)| *k != OAUTH_SIGNATURE)
        .collect();
    sorted.sort_unstable_by(|a, b| {
        encoded_cmp(a.0.as_bytes(), b.0.as_bytes())
            .then_with(|| encoded_cmp(a.1.as_bytes(), b.1.as_bytes()))
    });
    let params_len: usize = sorted.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    let mut out: Vec<u8> = Vec::with_capacity(method.len() + base_uri.len() * 3 + params_len * 5);
    out.extend(method.bytes().map(|b| b.to_ascii_uppercase()));
    out.push(b'&');
    escape_bytes_into(&mut out, base_uri.as_bytes(), b"%");
    out.push(b'&');
    // enc(normalised parameters) in one pass: `=` is `%3D`, `&` is `%26`, and
    // a byte that the first encoding escapes as `%XX` becomes `%25XX`.
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"%26");
        }
        escape_bytes_into(&mut out, k.as_bytes(), b"%25");
        out.extend_from_slice(b"%3D");
        escape_bytes_into(&mut out, v.as_bytes(), b"%25");
    }
    // Only the method can carry non-ASCII bytes (upper-casing keeps UTF-8
    // intact), so this is valid UTF-8 whenever `method` is.
    ascii_string(out)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Where a byte sorts once percent-encoded: an escaped byte becomes `%XX`,
/// and `%` (0x25) sorts below every unreserved character, while two escapes
/// compare by their upper-case hex digits, i.e. by the byte itself.
fn encoded_rank(b: u8) -> u16 {
    if is_unreserved(b) {
        256 + u16::from(b)
    } else {
        u16::from(b)
    }
}

/// `percent_encode(a).cmp(&percent_encode(b))`, without encoding: equal raw
/// prefixes encode equally, so the first differing byte decides (by
/// [`encoded_rank`]), else the shorter string is the smaller.
fn encoded_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    match (a.get(common), b.get(common)) {
        (Some(&x), Some(&y)) => encoded_rank(x).cmp(&encoded_rank(y)),
        _ => a.len().cmp(&b.len()),
    }
}

/// Appends `s` percent-encoded, each escape written as `prefix` and two hex
/// digits (`%` gives `enc(s)`, `%25` gives `enc(enc(s))`). Runs of
/// unreserved bytes are copied at once.
fn escape_bytes_into(out: &mut Vec<u8>, s: &[u8], prefix: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if is_unreserved(b) {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        out.extend_from_slice(prefix);
        out.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]]);
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// Turns bytes that are ASCII by construction into a `String` (no copy).
fn ascii_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn signing_key(method: SignatureMethod, consumer_secret: &str, token_secret: &str) -> hmac::Key {
    // Sized for the worst case so the buffer holding the secret never
    // reallocates (a reallocation would leave an unzeroed copy behind).
    let mut key = Zeroizing::new(Vec::with_capacity(
        (consumer_secret.len() + token_secret.len()) * 3 + 1,
    ));
    escape_bytes_into(&mut key, consumer_secret.as_bytes(), b"%");
    key.push(b'&');
    escape_bytes_into(&mut key, token_secret.as_bytes(), b"%");
    hmac::Key::new(method.algorithm(), &key)
}

/// Signs a base string: `base64(HMAC(enc(consumer_secret) & enc(token_secret), base))`.
/// LTI has no token: pass `""` as `token_secret`.
pub fn sign_base_string(
    method: SignatureMethod,
    consumer_secret: &str,
    token_secret: &str,
    base_string: &str,
) -> String {
    let key = signing_key(method, consumer_secret, token_secret);
    B64.encode(hmac::sign(&key, base_string.as_bytes()).as_ref())
}

/// Verifies a base64 signature in constant time.
pub fn verify_base_string(
    method: SignatureMethod,
    consumer_secret: &str,
    token_secret: &str,
    base_string: &str,
    signature_b64: &str,
) -> bool {
    let Ok(sig) = B64.decode(signature_b64.as_bytes()) else {
        return false;
    };
    let key = signing_key(method, consumer_secret, token_secret);
    hmac::verify(&key, base_string.as_bytes(), &sig).is_ok()
}

/// `oauth_body_hash`: `base64(SHA-1(body))` over the exact body bytes.
pub fn body_hash(body: &[u8]) -> String {
    B64.encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, body).as_ref())
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
        encode_into(&mut out, k.as_ref());
        out.push_str("=\"");
        encode_into(&mut out, v.as_ref());
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

    /// Collects and checks the request's parameters (query + form body +
    /// `Authorization` header), applying input hygiene to the protocol
    /// parameters. No store is consulted and no signature is checked yet.
    pub fn collect(&self) -> Result<CollectedRequest> {
        // Names and values borrow from the URL and body wherever nothing
        // needed unescaping; only the launch parameters are copied out.
        let mut params: Vec<Param<'a>> = Vec::with_capacity(32);
        let without_fragment = self.url.split('#').next().unwrap_or(self.url);
        if let Some((_, q)) = without_fragment.split_once('?') {
            parse_form_into(q.as_bytes(), &mut params);
        }
        let query_len = params.len();
        let is_form = self.is_form();
        if is_form {
            parse_form_into(self.body, &mut params);
        }
        let form_end = params.len();
        if let Some(h) = self.authorization {
            params.extend(
                parse_authorization_header(h)?
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v))),
            );
        }

        let mut found = ProtocolFields::default();
        for (i, (k, v)) in params.iter().enumerate() {
            if !k.starts_with("oauth_") {
                continue;
            }
            let slot = match k.as_ref() {
                OAUTH_CONSUMER_KEY => &mut found.consumer_key,
                OAUTH_SIGNATURE => &mut found.signature,
                OAUTH_SIGNATURE_METHOD => &mut found.signature_method,
                OAUTH_TIMESTAMP => &mut found.timestamp,
                OAUTH_NONCE => &mut found.nonce,
                OAUTH_VERSION => &mut found.version,
                OAUTH_BODY_HASH => &mut found.body_hash,
                _ => continue,
            };
            if slot.is_some() {
                let count = params.iter().filter(|(n, _)| n == k).count();
                return Err(Error::DuplicateOAuthParameter {
                    name: k.clone().into_owned(),
                    count,
                });
            }
            *slot = Some((i, v.len()));
        }
        let get = |slot: Option<(usize, usize)>| slot.map(|(i, _)| params[i].1.as_ref());

        let consumer_key = get(found.consumer_key).ok_or(Error::MissingOAuthParameter {
            name: OAUTH_CONSUMER_KEY,
        })?;
        check_consumer_key(consumer_key)?;
        let signature = get(found.signature).ok_or(Error::MissingOAuthParameter {
            name: OAUTH_SIGNATURE,
        })?;
        if signature.len() > 128 {
            return Err(Error::InvalidOAuthParameter {
                name: OAUTH_SIGNATURE,
                expected: "a base64 HMAC of at most 128 characters",
                found: format!("{} characters", signature.len()),
            });
        }
        let method_s = get(found.signature_method).ok_or(Error::MissingOAuthParameter {
            name: OAUTH_SIGNATURE_METHOD,
        })?;
        let method = SignatureMethod::from_wire(method_s).ok_or_else(|| {
            Error::UnsupportedSignatureMethod {
                expected: "HMAC-SHA1, HMAC-SHA256".to_owned(),
                found: snippet(method_s),
            }
        })?;
        let timestamp_s = get(found.timestamp).ok_or(Error::MissingOAuthParameter {
            name: OAUTH_TIMESTAMP,
        })?;
        let timestamp = check_timestamp(timestamp_s)?;
        let nonce = get(found.nonce).ok_or(Error::MissingOAuthParameter { name: OAUTH_NONCE })?;
        check_nonce(nonce)?;
        if let Some(v) = get(found.version)
            && v != "1.0"
        {
            return Err(Error::UnsupportedOAuthVersion { found: snippet(v) });
        }
        let body_hash = get(found.body_hash).map(str::to_owned);

        let consumer_key = consumer_key.to_owned();
        let signature = signature.to_owned();
        let nonce = nonce.to_owned();
        let base_uri = base_string_uri(self.url)?;
        let base_string = base_string_from_parts(self.method, &base_uri, &params);

        // The launch parameters are the form-body ones that are not OAuth
        // protocol parameters; query parameters are kept apart.
        // Decoded values move out; borrowed ones are copied once.
        let mut params = params.into_iter();
        let query: Vec<(String, String)> = params
            .by_ref()
            .take(query_len)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let form: Vec<(String, String)> = params
            .take(form_end - query_len)
            .filter(|(k, _)| !k.starts_with("oauth_"))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();

        Ok(CollectedRequest {
            consumer_key,
            signature,
            method,
            timestamp,
            nonce,
            body_hash,
            base_string,
            is_form,
            form,
            query,
        })
    }
}

/// One decoded `(name, value)` pair, borrowed from the request where no
/// unescaping was needed.
type Param<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Parses `application/x-www-form-urlencoded` bytes exactly as
/// `form_urlencoded::parse` does (pairs split on `&`, empty pairs skipped,
/// name and value split on the first `=`, `+` is a space, `%XX` decoded and
/// malformed escapes kept literally, invalid UTF-8 replaced with U+FFFD),
/// but borrowing every name and value that needs no decoding.
fn parse_form_into<'a>(input: &'a [u8], out: &mut Vec<Param<'a>>) {
    // The usual case: the whole input is UTF-8, so every piece cut at an
    // ASCII `&` or `=` is too, and undecoded pieces are borrowed unchecked.
    if let Ok(text) = std::str::from_utf8(input) {
        // One scan per byte: pair ends, the first `=`, and whether the name
        // or the value needs decoding. Every cut is at an ASCII byte, so
        // each slice of `text` lies on char boundaries.
        let bytes = text.as_bytes();
        let piece = |start: usize, end: usize, special: bool| {
            if special {
                form_decode(&bytes[start..end])
            } else {
                Cow::Borrowed(&text[start..end])
            }
        };
        let (mut start, mut eq) = (0, None);
        let (mut name_special, mut value_special) = (false, false);
        for i in 0..=bytes.len() {
            match bytes.get(i).copied().unwrap_or(b'&') {
                b'&' => {
                    if i > start {
                        out.push(match eq {
                            Some(eq) => (
                                piece(start, eq, name_special),
                                piece(eq + 1, i, value_special),
                            ),
                            None => (piece(start, i, name_special), Cow::Borrowed("")),
                        });
                    }
                    (start, eq) = (i + 1, None);
                    (name_special, value_special) = (false, false);
                }
                b'=' if eq.is_none() => eq = Some(i),
                b'%' | b'+' if eq.is_none() => name_special = true,
                b'%' | b'+' => value_special = true,
                _ => {}
            }
        }
        return;
    }
    for pair in input.split(|&b| b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &[][..]),
        };
        out.push((form_decode(name), form_decode(value)));
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one form-encoded name or value (see [`parse_form_into`]).
fn form_decode(bytes: &[u8]) -> Cow<'_, str> {
    let is_special = |b: &u8| *b == b'%' || *b == b'+';
    let Some(first) = bytes.iter().position(is_special) else {
        return String::from_utf8_lossy(bytes);
    };
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex_value),
                bytes.get(i + 2).copied().and_then(hex_value),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            _ => {
                // Copy the run up to the next `%` or `+` at once.
                let run = bytes[i..]
                    .iter()
                    .position(is_special)
                    .unwrap_or(bytes.len() - i);
                out.extend_from_slice(&bytes[i..i + run]);
                i += run;
            }
        }
    }
    Cow::Owned(
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// Decoded `(name, value)` pairs.
pub(crate) type Pairs = Vec<(String, String)>;

#[derive(Default)]
struct ProtocolFields {
    consumer_key: Option<(usize, usize)>,
    signature: Option<(usize, usize)>,
    signature_method: Option<(usize, usize)>,
    timestamp: Option<(usize, usize)>,
    nonce: Option<(usize, usize)>,
    version: Option<(usize, usize)>,
    body_hash: Option<(usize, usize)>,
}

/// The parameters of an incoming request, hygiene-checked but not yet verified.
#[derive(Debug, Clone)]
pub struct CollectedRequest {
    consumer_key: String,
    signature: String,
    method: SignatureMethod,
    timestamp: u64,
    nonce: String,
    body_hash: Option<String>,
    base_string: String,
    is_form: bool,
    form: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

impl CollectedRequest {
    /// `oauth_consumer_key` (already hygiene-checked).
    pub fn consumer_key(&self) -> &str {
        &self.consumer_key
    }
    /// `oauth_nonce` (already hygiene-checked).
    pub fn nonce(&self) -> &str {
        &self.nonce
    }
    /// `oauth_timestamp`.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }
    /// The signature method.
    pub fn signature_method(&self) -> SignatureMethod {
        self.method
    }
    /// The signature base string that was rebuilt from the request.
    pub fn base_string(&self) -> &str {
        &self.base_string
    }

    /// Checks the signature against `secret` in constant time.
    pub(crate) fn check_signature(&self, secret: &SecretString) -> Result<()> {
        if verify_base_string(
            self.method,
            secret.expose(),
            "",
            &self.base_string,
            &self.signature,
        ) {
            Ok(())
        } else {
            Err(Error::BadSignature {
                method: self.method.as_str(),
            })
        }
    }

    /// Checks `oauth_body_hash` against the body. Form bodies need none (a
    /// hash sent with one is still checked); any other body must carry one.
    pub(crate) fn check_body_hash(&self, body: &[u8], content_type: Option<&str>) -> Result<()> {
        match &self.body_hash {
            Some(sent) => {
                let expected = body_hash(body);
                if subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), sent.as_bytes()).into() {
                    Ok(())
                } else {
                    Err(Error::BodyHashMismatch)
                }
            }
            None if self.is_form || body.is_empty() => Ok(()),
            None => Err(Error::MissingBodyHash {
                content_type: content_type
                    .map(snippet)
                    .unwrap_or_else(|| "(none)".to_owned()),
            }),
        }
    }

    /// The decoded form-body parameters, without `oauth_*`.
    pub(crate) fn into_form(self) -> (Pairs, Pairs) {
        (self.form, self.query)
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
    fn body_hash_matches_known_sha1() {
        // SHA-1("Hello World!") = 2ef7bde608ce5404e97d5f042f95f89f1c232871
        assert_eq!(body_hash(b"Hello World!"), "Lve95gjOVATpfV8EL5X4nxwjKHE=");
    }

    fn bytes_with_escapes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        // Bias towards the bytes that matter: separators, escapes, hex
        // digits, `+`, and invalid UTF-8.
        prop::collection::vec(
            prop_oneof![
                Just(b'&'),
                Just(b'='),
                Just(b'%'),
                Just(b'+'),
                Just(b'a'),
                Just(b'F'),
                Just(b'9'),
                Just(b'g'),
                any::<u8>(),
            ],
            0..40,
        )
    }

    proptest::proptest! {
        #[test]
        fn borrowing_form_parser_equals_form_urlencoded(input in bytes_with_escapes()) {
            let mut ours = Vec::new();
            parse_form_into(&input, &mut ours);
            let reference: Vec<(Cow<'_, str>, Cow<'_, str>)> =
                form_urlencoded::parse(&input).collect();
            proptest::prop_assert_eq!(ours, reference);
        }

        #[test]
        fn borrowing_form_parser_equals_form_urlencoded_on_utf8(input in "[&=%+aF9g é日]{0,40}") {
            let mut ours = Vec::new();
            parse_form_into(input.as_bytes(), &mut ours);
            let reference: Vec<(Cow<'_, str>, Cow<'_, str>)> =
                form_urlencoded::parse(input.as_bytes()).collect();
            proptest::prop_assert_eq!(ours, reference);
        }

        #[test]
        fn encoded_order_equals_order_of_the_encodings(a in ".{0,6}", b in ".{0,6}", prefix in "[a-z%~ ]{0,3}") {
            let (a, b) = (format!("{prefix}{a}"), format!("{prefix}{b}"));
            proptest::prop_assert_eq!(
                encoded_cmp(a.as_bytes(), b.as_bytes()),
                percent_encode(&a).cmp(&percent_encode(&b))
            );
        }

        #[test]
        fn escaping_with_a_prefix_equals_encoding_twice(s in ".{0,12}") {
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
            let mut twice = Vec::new();
            escape_bytes_into(&mut twice, s.as_bytes(), b"%25");
            proptest::prop_assert_eq!(
                String::from_utf8(twice).unwrap(),
                percent_encode(&reference).into_owned()
            );
        }
    }

    #[test]
    fn form_parser_borrows_plain_values_and_decodes_escapes() {
        let mut out = Vec::new();
        parse_form_into(b"a=b&&c=%41+%zz&d&=e&f=%E9", &mut out);
        assert!(matches!(out[0].1, Cow::Borrowed("b")));
        assert_eq!(out[1].1, "A %zz");
        assert_eq!((out[2].0.as_ref(), out[2].1.as_ref()), ("d", ""));
        assert_eq!((out[3].0.as_ref(), out[3].1.as_ref()), ("", "e"));
        assert_eq!(out[4].1, "\u{fffd}");
        assert_eq!(out.len(), 5);
        assert_eq!(
            encoded_cmp(b"a", b"a~"),
            std::cmp::Ordering::Less,
            "a prefix sorts first"
        );
        assert_eq!(
            encoded_cmp(b"a b", b"a-b"),
            std::cmp::Ordering::Less,
            "`%20` sorts below `-`"
        );
    }

    #[test]
    fn nonces_are_random_hex() {
        let a = generate_nonce();
        assert_eq!(a.len(), 32);
        assert!(check_nonce(&a).is_ok());
        assert_ne!(a, generate_nonce());
    }
}
