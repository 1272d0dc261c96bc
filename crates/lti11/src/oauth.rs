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
    let sorted = BaseStringOrder::new(params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())));
    let params_len = sorted.text_len() + 6 * sorted.order.len();
    let mut out: Vec<u8> = Vec::with_capacity(method.len() + base_uri.len() * 3 + params_len * 5);
    write_base_string(&mut out, method, base_uri, &sorted);
    // Only the method can carry non-ASCII bytes (upper-casing keeps UTF-8
    // intact), so this is valid UTF-8 whenever `method` is.
    ascii_string(out)
}

/// Where the bytes of a base string go: a buffer, or straight into an HMAC
/// ([`HmacSink`]).
pub(crate) trait ByteSink {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);

    /// Appends `s` percent-encoded, each escape written as `prefix` (at most
    /// three bytes) and two hex digits (see [`escape_bytes_into`]).
    fn put_escaped(&mut self, s: &[u8], prefix: &[u8])
    where
        Self: Sized,
    {
        escape_bytes_into(self, s, prefix);
    }
}

impl ByteSink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// An HMAC fed through a fixed buffer, so the many short writes of the
/// escaper cost one `update` per buffer of output and the base string is
/// never held in full.
pub(crate) struct HmacSink {
    ctx: SignatureMac,
    buf: [u8; 512],
    len: usize,
}

impl HmacSink {
    pub(crate) fn new(mac: SignatureMac) -> Self {
        HmacSink {
            ctx: mac,
            buf: [0; 512],
            len: 0,
        }
    }

    fn flush(&mut self) {
        self.ctx.update(&self.buf[..self.len]);
        self.len = 0;
    }

    /// The HMAC of everything written.
    pub(crate) fn finish(mut self) -> mac::Tag {
        self.flush();
        self.ctx.finish()
    }
}

impl ByteSink for HmacSink {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if let Some(room) = self.buf.get_mut(self.len..end) {
            room.copy_from_slice(bytes);
            self.len = end;
            return;
        }
        self.flush();
        if bytes.len() >= self.buf.len() {
            self.ctx.update(bytes);
        } else {
            self.buf[..bytes.len()].copy_from_slice(bytes);
            self.len = bytes.len();
        }
    }

    /// Byte by byte straight into the buffer through [`ESCAPES`]: one
    /// fixed-size copy per byte and no branch on the byte.
    fn put_escaped(&mut self, s: &[u8], prefix: &[u8]) {
        let table = match prefix {
            b"%" => &ESCAPES[0],
            b"%25" => &ESCAPES[1],
            _ => return escape_bytes_into(self, s, prefix),
        };
        let mut len = self.len;
        for &b in s {
            if len > self.buf.len() - 8 {
                self.ctx.update(&self.buf[..len]);
                len = 0;
            }
            let entry = &table[usize::from(b)];
            // Eight bytes are written; only the encoding's own length
            // counts, the rest is overwritten by what follows.
            self.buf[len..len + 8].copy_from_slice(entry);
            len += usize::from(entry[7]);
        }
        self.len = len;
    }
}

/// `ESCAPES[0][b]` is `enc(b)` (RFC 3986: `b` itself if unreserved, else
/// `%XX`), `ESCAPES[1][b]` is `enc(enc(b))` (`b` or `%25XX`): the encoding
/// in the first bytes, its length in the last.
const ESCAPES: [[[u8; 8]; 256]; 2] = {
    let mut table = [[[0u8; 8]; 256]; 2];
    let mut b = 0;
    while b < 256 {
        let (hi, lo) = (HEX[b >> 4], HEX[b & 0x0f]);
        if UNRESERVED[b] {
            table[0][b] = [b as u8, 0, 0, 0, 0, 0, 0, 1];
            table[1][b] = [b as u8, 0, 0, 0, 0, 0, 0, 1];
        } else {
            table[0][b] = [b'%', hi, lo, 0, 0, 0, 0, 3];
            table[1][b] = [b'%', b'2', b'5', hi, lo, 0, 0, 5];
        }
        b += 1;
    }
    table
};

/// The parameters in base-string order (RFC 5849 §3.4.1.3.2): by encoded
/// name, then encoded value, duplicates kept, `oauth_signature` left out.
#[derive(Debug, Clone)]
pub(crate) struct BaseStringOrder<'p> {
    params: Vec<(&'p str, &'p str)>,
    /// `encoded_key(name) << 64 | index into params`, in order.
    order: Vec<u128>,
}

impl<'p> BaseStringOrder<'p> {
    /// Sorts without building the encodings: by [`encoded_key`] of the name
    /// (a plain integer sort), then each run of equal keys by
    /// [`encoded_cmp`] of names and values.
    pub(crate) fn new(params: impl Iterator<Item = (&'p str, &'p str)>) -> Self {
        // Sized by the upper bound: the filter would otherwise make
        // `collect` grow the vector step by step.
        let mut all = Vec::with_capacity(params.size_hint().1.unwrap_or(0));
        all.extend(params.filter(|(k, _)| *k != OAUTH_SIGNATURE));
        let params: Vec<(&'p str, &'p str)> = all;
        let mut order: Vec<u128> = params
            .iter()
            .enumerate()
            .map(|(i, (k, _))| u128::from(encoded_key(k.as_bytes())) << 64 | i as u128)
            .collect();
        order.sort_unstable();
        let param = |o: &u128| params[*o as u64 as usize];
        for run in order.chunk_by_mut(|a, b| a >> 64 == b >> 64) {
            if run.len() > 1 {
                run.sort_unstable_by(|a, b| {
                    let ((ka, va), (kb, vb)) = (param(a), param(b));
                    encoded_cmp(ka.as_bytes(), kb.as_bytes())
                        .then_with(|| encoded_cmp(va.as_bytes(), vb.as_bytes()))
                });
            }
        }
        BaseStringOrder { params, order }
    }

    fn iter(&self) -> impl Iterator<Item = (&'p str, &'p str)> + '_ {
        self.order.iter().map(|&o| self.params[o as u64 as usize])
    }

    /// The summed length of the names and values.
    fn text_len(&self) -> usize {
        self.params.iter().map(|(k, v)| k.len() + v.len()).sum()
    }
}

/// Writes `METHOD&enc(base URI)&enc(normalised parameters)` (RFC 5849
/// §3.4.1.1) for parameters already in base-string order.
pub(crate) fn write_base_string<S: ByteSink>(
    out: &mut S,
    method: &str,
    base_uri: &str,
    sorted: &BaseStringOrder<'_>,
) {
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        out.put(method.to_ascii_uppercase().as_bytes());
    } else {
        out.put(method.as_bytes());
    }
    out.put(b"&");
    out.put_escaped(base_uri.as_bytes(), b"%");
    out.put(b"&");
    // enc(normalised parameters) in one pass: `=` is `%3D`, `&` is `%26`, and
    // a byte that the first encoding escapes as `%XX` becomes `%25XX`.
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            out.put(b"%26");
        }
        out.put_escaped(name.as_bytes(), b"%25");
        out.put(b"%3D");
        out.put_escaped(value.as_bytes(), b"%25");
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// `ENCODED_RANK[b]`: where byte `b` sorts once percent-encoded. An escaped
/// byte becomes `%XX`, and `%` (0x25) sorts below every unreserved
/// character, while two escapes compare by their upper-case hex digits,
/// i.e. by the byte itself. So every escaped byte (in byte order) ranks
/// below every unreserved one (in byte order); the ranks are 0..=255.
const ENCODED_RANK: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut next = 0usize;
    let mut pass = 0;
    while pass < 2 {
        let mut b = 0;
        while b < 256 {
            if UNRESERVED[b] == (pass == 1) {
                table[b] = next as u8;
                next += 1;
            }
            b += 1;
        }
        pass += 1;
    }
    table
};

fn encoded_rank(b: u8) -> u8 {
    ENCODED_RANK[usize::from(b)]
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

/// The ranks of the first eight bytes of `s`, big-endian, zero-padded.
/// When two keys differ they order as the encodings do (the first differing
/// rank decides, or the shorter string is a prefix of the other); equal keys
/// decide nothing and need [`encoded_cmp`].
fn encoded_key(s: &[u8]) -> u64 {
    let mut key = 0u64;
    for i in 0..8 {
        let rank = s.get(i).map_or(0, |&b| encoded_rank(b));
        key = key << 8 | u64::from(rank);
    }
    key
}

/// Appends `s` percent-encoded, each escape written as `prefix` and two hex
/// digits (`%` gives `enc(s)`, `%25` gives `enc(enc(s))`). Runs of
/// unreserved bytes are copied at once.
fn escape_bytes_into<S: ByteSink>(out: &mut S, s: &[u8], prefix: &[u8]) {
    let mut start = 0;
    let mut escape = [0u8; 5];
    let p = prefix.len().min(3);
    escape[..p].copy_from_slice(&prefix[..p]);
    for (i, &b) in s.iter().enumerate() {
        if is_unreserved(b) {
            continue;
        }
        out.put(&s[start..i]);
        escape[p] = HEX[usize::from(b >> 4)];
        escape[p + 1] = HEX[usize::from(b & 0x0f)];
        out.put(&escape[..p + 2]);
        start = i + 1;
    }
    out.put(&s[start..]);
}

/// Turns bytes that are ASCII by construction into a `String` (no copy).
fn ascii_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The MAC of `method` keyed with `enc(consumer_secret) & enc(token_secret)`.
fn signing_mac(method: SignatureMethod, consumer_secret: &str, token_secret: &str) -> SignatureMac {
    // Sized for the worst case so the buffer holding the secret never
    // reallocates (a reallocation would leave an unzeroed copy behind).
    let mut key = Zeroizing::new(Vec::with_capacity(
        (consumer_secret.len() + token_secret.len()) * 3 + 1,
    ));
    escape_bytes_into(&mut *key, consumer_secret.as_bytes(), b"%");
    key.push(b'&');
    escape_bytes_into(&mut *key, token_secret.as_bytes(), b"%");
    SignatureMac::new(method, &key)
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

/// The MAC of a built base string.
fn base_string_tag(
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
fn signature_matches(tag: &mac::Tag, signature_b64: &str) -> bool {
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
        fn encoded_order_equals_order_of_the_encodings(a in ".{0,6}", b in ".{0,6}", prefix in "[a-z%~ ]{0,3}") {
            let (a, b) = (format!("{prefix}{a}"), format!("{prefix}{b}"));
            proptest::prop_assert_eq!(
                encoded_cmp(a.as_bytes(), b.as_bytes()),
                percent_encode(&a).cmp(&percent_encode(&b))
            );
        }

        #[test]
        fn differing_keys_order_as_the_encodings(a in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..10), b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..10), prefix in proptest::collection::vec(proptest::prelude::prop_oneof![proptest::prelude::Just(0u8), proptest::prelude::Just(b'a'), proptest::prelude::Just(b'%')], 0..8)) {
            // Zero bytes rank lowest, like the key's padding: the edge.
            let (a, b) = ([&prefix[..], &a].concat(), [&prefix[..], &b].concat());
            let (ka, kb) = (encoded_key(&a), encoded_key(&b));
            if ka != kb {
                proptest::prop_assert_eq!(ka.cmp(&kb), encoded_cmp(&a, &b));
            }
        }

        #[test]
        fn base_string_order_equals_sorting_the_encodings(params in proptest::collection::vec(("(context_|lis_person_)?[a-c %~é]{0,4}", "[a-c %~]{0,3}"), 0..40)) {
            // Names share long prefixes, so many sort keys tie.
            let mut reference: Vec<(String, String)> = params
                .iter()
                .map(|(k, v)| (percent_encode(k).into_owned(), percent_encode(v).into_owned()))
                .collect();
            reference.sort();
            let order = BaseStringOrder::new(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let ours: Vec<(String, String)> = order
                .iter()
                .map(|(k, v)| (percent_encode(k).into_owned(), percent_encode(v).into_owned()))
                .collect();
            proptest::prop_assert_eq!(ours, reference);
        }

        #[test]
        fn streamed_hmac_equals_hmac_of_the_built_base_string(params in proptest::collection::vec((".{0,40}", ".{0,120}"), 0..24), sha256 in proptest::prelude::any::<bool>()) {
            // Long enough to cross the sink's buffer several times.
            let method = if sha256 { SignatureMethod::HmacSha256 } else { SignatureMethod::HmacSha1 };
            let base_uri = "https://tool.example.com/a%20b";
            let built = base_string_from_parts("post", base_uri, &params);
            let mut sink = HmacSink::new(signing_mac(method, "s3cret", ""));
            let sorted = BaseStringOrder::new(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            write_base_string(&mut sink, "post", base_uri, &sorted);
            let mut whole = signing_mac(method, "s3cret", "");
            whole.update(built.as_bytes());
            let (streamed, whole) = (sink.finish(), whole.finish());
            proptest::prop_assert_eq!(streamed.as_ref(), whole.as_ref());
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
    fn encoded_order_ranks_escapes_below_unreserved_bytes() {
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
        assert_eq!(
            encoded_cmp(b"\xff", b"0"),
            std::cmp::Ordering::Less,
            "`%FF` sorts below `0`"
        );
        // The ranks are a permutation of 0..=255.
        let mut seen = [false; 256];
        for rank in ENCODED_RANK {
            seen[usize::from(rank)] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert!(encoded_key(b"a") < encoded_key(b"a~"));
        assert!(encoded_key(b"\xff") < encoded_key(b"0"));
        assert_eq!(encoded_key(b"context_id"), encoded_key(b"context_title"));
    }

    #[test]
    fn nonces_are_random_hex() {
        let a = generate_nonce();
        assert_eq!(a.len(), 32);
        assert!(check_nonce(&a).is_ok());
        assert_ne!(a, generate_nonce());
    }
}
