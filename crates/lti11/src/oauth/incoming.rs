//! Incoming signed requests: parameter collection with input hygiene, and
//! the signature check, which streams the base string into the HMAC instead
//! of building it.
//!
//! Names and values borrow from the URL and body wherever nothing needed
//! unescaping; decoded ones share one buffer per request.

use subtle::ConstantTimeEq as _;

use super::{
    BaseStringOrder, ByteSink, HmacSink, MAX_SIGNATURE_LEN, OAUTH_BODY_HASH, OAUTH_CONSUMER_KEY,
    OAUTH_NONCE, OAUTH_SIGNATURE, OAUTH_SIGNATURE_METHOD, OAUTH_TIMESTAMP, OAUTH_VERSION,
    SignatureMethod, SignedRequest, ascii_string, base_string_uri, body_hash, check_consumer_key,
    check_nonce, check_timestamp, parse_authorization_header, signature_matches, signing_mac,
    write_base_string,
};
use crate::error::{Error, Result, snippet};
use lti_registry::SecretString;

/// Decoded `(name, value)` pairs.
pub(crate) type Pairs = Vec<(String, String)>;

/// A decoded name or value: borrowed from the request, or a range of
/// [`Params::decoded`].
#[derive(Debug, Clone, Copy)]
enum Piece<'a> {
    Raw(&'a str),
    Decoded(usize, usize),
}

/// The parameters of a request in arrival order: query, form body, then
/// `Authorization` header.
#[derive(Debug, Clone)]
struct Params<'a> {
    pairs: Vec<(Piece<'a>, Piece<'a>)>,
    /// Every name and value that needed decoding, back to back.
    decoded: String,
}

impl<'a> Params<'a> {
    fn text(&self, piece: Piece<'a>) -> &str {
        match piece {
            Piece::Raw(s) => s,
            Piece::Decoded(start, end) => self.decoded.get(start..end).unwrap_or_default(),
        }
    }

    fn pair(&self, i: usize) -> (&str, &str) {
        let (k, v) = self.pairs[i];
        (self.text(k), self.text(v))
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> + Clone + '_ {
        self.range(0, self.pairs.len())
    }

    fn range(&self, from: usize, to: usize) -> impl Iterator<Item = (&str, &str)> + Clone + '_ {
        self.pairs[from..to]
            .iter()
            .map(|&(k, v)| (self.text(k), self.text(v)))
    }

    fn push_decoded(&mut self, s: &str) -> Piece<'a> {
        let start = self.decoded.len();
        self.decoded.push_str(s);
        Piece::Decoded(start, self.decoded.len())
    }

    /// Form-decodes `bytes` (via `scratch`) into [`Params::decoded`].
    fn push_form_decoded(&mut self, bytes: &[u8], scratch: &mut Vec<u8>) -> Piece<'a> {
        form_decode_into(bytes, scratch);
        match std::str::from_utf8(scratch) {
            Ok(s) => self.push_decoded(s),
            Err(_) => self.push_decoded(&String::from_utf8_lossy(scratch)),
        }
    }
}

impl<'a> SignedRequest<'a> {
    /// Collects and checks the request's parameters (query + form body +
    /// `Authorization` header), applying input hygiene to the protocol
    /// parameters. No store is consulted and no signature is checked yet.
    pub fn collect(&self) -> Result<CollectedRequest<'a>> {
        let without_fragment = self.url.split('#').next().unwrap_or(self.url);
        let query = without_fragment.split_once('?').map(|(_, q)| q);
        let is_form = self.is_form();
        let body = if is_form { self.body } else { &[][..] };
        // Decoding never lengthens UTF-8 input, so this is the only
        // allocation of `decoded` unless an `Authorization` header is sent
        // or the input is not UTF-8.
        let mut params = Params {
            // A typical launch has 30-40 parameters.
            pairs: Vec::with_capacity(64),
            decoded: String::with_capacity(query.map_or(0, str::len) + body.len()),
        };
        // Room for the longest piece, so decoding never reallocates.
        let mut scratch = Vec::with_capacity(query.map_or(0, str::len).max(body.len()));
        if let Some(q) = query {
            parse_form_into(q.as_bytes(), &mut params, &mut scratch);
        }
        let query_len = params.pairs.len();
        parse_form_into(body, &mut params, &mut scratch);
        let form_end = params.pairs.len();
        if let Some(h) = self.authorization {
            for (k, v) in parse_authorization_header(h)? {
                let pair = (params.push_decoded(&k), params.push_decoded(&v));
                params.pairs.push(pair);
            }
        }

        let mut found = ProtocolFields::default();
        for (i, (k, _)) in params.iter().enumerate() {
            if !k.starts_with("oauth_") {
                continue;
            }
            let slot = match k {
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
                let count = params.iter().filter(|(n, _)| *n == k).count();
                return Err(Error::DuplicateOAuthParameter {
                    name: k.to_owned(),
                    count,
                });
            }
            *slot = Some(i);
        }
        let get = |slot: Option<usize>| slot.map(|i| params.pair(i).1);

        let consumer_key = found.consumer_key.ok_or(Error::MissingOAuthParameter {
            name: OAUTH_CONSUMER_KEY,
        })?;
        check_consumer_key(params.pair(consumer_key).1)?;
        let signature = found.signature.ok_or(Error::MissingOAuthParameter {
            name: OAUTH_SIGNATURE,
        })?;
        let signature_len = params.pair(signature).1.len();
        if signature_len > MAX_SIGNATURE_LEN {
            return Err(Error::InvalidOAuthParameter {
                name: OAUTH_SIGNATURE,
                expected: "a base64 HMAC of at most 128 characters",
                found: format!("{signature_len} characters"),
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
        let nonce = found
            .nonce
            .ok_or(Error::MissingOAuthParameter { name: OAUTH_NONCE })?;
        check_nonce(params.pair(nonce).1)?;
        if let Some(v) = get(found.version)
            && v != "1.0"
        {
            return Err(Error::UnsupportedOAuthVersion { found: snippet(v) });
        }
        let base_uri = base_string_uri(self.url)?;

        Ok(CollectedRequest {
            http_method: self.method,
            base_uri,
            params,
            query_len,
            form_end,
            consumer_key,
            signature,
            nonce,
            body_hash: found.body_hash,
            method,
            timestamp,
            is_form,
        })
    }
}

/// Indices of the protocol parameters in [`Params::pairs`].
#[derive(Default)]
struct ProtocolFields {
    consumer_key: Option<usize>,
    signature: Option<usize>,
    signature_method: Option<usize>,
    timestamp: Option<usize>,
    nonce: Option<usize>,
    version: Option<usize>,
    body_hash: Option<usize>,
}

/// The parameters of an incoming request, hygiene-checked but not yet
/// verified. Borrows the request's URL and body.
#[derive(Debug, Clone)]
pub struct CollectedRequest<'a> {
    http_method: &'a str,
    base_uri: String,
    params: Params<'a>,
    query_len: usize,
    form_end: usize,
    consumer_key: usize,
    signature: usize,
    nonce: usize,
    body_hash: Option<usize>,
    method: SignatureMethod,
    timestamp: u64,
    is_form: bool,
}

impl CollectedRequest<'_> {
    /// `oauth_consumer_key` (already hygiene-checked).
    pub fn consumer_key(&self) -> &str {
        self.params.pair(self.consumer_key).1
    }
    /// `oauth_nonce` (already hygiene-checked).
    pub fn nonce(&self) -> &str {
        self.params.pair(self.nonce).1
    }
    /// `oauth_timestamp`.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }
    /// The signature method.
    pub fn signature_method(&self) -> SignatureMethod {
        self.method
    }

    /// The signature base string rebuilt from the request. Verification
    /// does not build it: it streams the same bytes into the HMAC.
    pub fn base_string(&self) -> String {
        let mut out = Vec::new();
        self.write_base_string(&mut out);
        ascii_string(out)
    }

    fn write_base_string<S: ByteSink>(&self, out: &mut S) {
        let sorted = BaseStringOrder::new(self.params.iter());
        write_base_string(out, self.http_method, &self.base_uri, &sorted);
    }

    /// Checks the signature against `secret`; the HMACs are compared in
    /// constant time.
    pub(crate) fn check_signature(&self, secret: &SecretString) -> Result<()> {
        let mut hmac = HmacSink::new(signing_mac(self.method, secret.expose(), ""));
        self.write_base_string(&mut hmac);
        if signature_matches(&hmac.finish(), self.params.pair(self.signature).1) {
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
        match self.body_hash.map(|i| self.params.pair(i).1) {
            Some(sent) => {
                let expected = body_hash(body);
                if expected.as_bytes().ct_eq(sent.as_bytes()).into() {
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

    /// The decoded form-body parameters without `oauth_*`, in arrival order.
    pub(crate) fn form_params(&self) -> impl Iterator<Item = (&str, &str)> + Clone + '_ {
        self.params
            .range(self.query_len, self.form_end)
            .filter(|(k, _)| !k.starts_with("oauth_"))
    }

    /// The decoded form-body parameters (without `oauth_*`) and query
    /// parameters, copied out.
    pub(crate) fn owned_params(&self) -> (Pairs, Pairs) {
        let own = |(k, v): (&str, &str)| (k.to_owned(), v.to_owned());
        (
            self.form_params().map(own).collect(),
            self.params.range(0, self.query_len).map(own).collect(),
        )
    }
}

/// Parses `application/x-www-form-urlencoded` bytes exactly as
/// `form_urlencoded::parse` does (pairs split on `&`, empty pairs skipped,
/// name and value split on the first `=`, `+` is a space, `%XX` decoded and
/// malformed escapes kept literally, invalid UTF-8 replaced with U+FFFD),
/// but borrowing every name and value that needs no decoding.
fn parse_form_into<'a>(input: &'a [u8], out: &mut Params<'a>, scratch: &mut Vec<u8>) {
    let Ok(text) = std::str::from_utf8(input) else {
        // Not UTF-8: every piece goes through the lossy decoder.
        for pair in input.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &[][..]),
            };
            let pair = (
                out.push_form_decoded(name, scratch),
                out.push_form_decoded(value, scratch),
            );
            out.pairs.push(pair);
        }
        return;
    };
    // The usual case: the whole input is UTF-8, so every piece cut at an
    // ASCII `&` or `=` is too, and undecoded pieces are borrowed. The scans
    // look for the next byte that matters, eight bytes at a time.
    let bytes = text.as_bytes();
    let mut piece = |out: &mut Params<'a>, start: usize, end: usize, special: bool| {
        if special {
            out.push_form_decoded(&bytes[start..end], scratch)
        } else {
            Piece::Raw(text.get(start..end).unwrap_or_default())
        }
    };
    let mut start = 0;
    while start < bytes.len() {
        // The name: up to the first `=` or `&`.
        let mut i = start;
        let mut name_special = false;
        loop {
            i = find_first(bytes, i, [b'&', b'=', b'%', b'+']);
            match bytes.get(i) {
                Some(b'%' | b'+') => {
                    name_special = true;
                    i += 1;
                }
                _ => break,
            }
        }
        let end = if bytes.get(i) == Some(&b'=') {
            // The value: up to the next `&`; once it needs decoding, only
            // the `&` matters.
            let mut j = find_first(bytes, i + 1, [b'&', b'%', b'+']);
            let value_special = j < bytes.len() && bytes[j] != b'&';
            if value_special {
                j = find_first(bytes, j + 1, [b'&']);
            }
            if j > start {
                let pair = (
                    piece(out, start, i, name_special),
                    piece(out, i + 1, j, value_special),
                );
                out.pairs.push(pair);
            }
            j
        } else {
            if i > start {
                let pair = (piece(out, start, i, name_special), Piece::Raw(""));
                out.pairs.push(pair);
            }
            i
        };
        start = end + 1;
    }
}

/// The index of the first of `needles` in `bytes` from `from` on, or
/// `bytes.len()`. Eight bytes at a time: a byte of `word ^ needle` is zero
/// where the needle is, and `(x - 0x01..) & !x & 0x80..` sets the top bit of
/// the lowest zero byte exactly (higher ones may be false positives, which
/// the lowest set bit ignores).
#[inline(always)]
fn find_first<const N: usize>(bytes: &[u8], from: usize, needles: [u8; N]) -> usize {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = LO << 7;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let word = u64::from_le_bytes(*chunk);
        let mut hits = 0;
        for needle in needles {
            let x = word ^ (LO * u64::from(needle));
            hits |= x.wrapping_sub(LO) & !x & HI;
        }
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(b) = bytes.get(i) {
        if needles.contains(b) {
            break;
        }
        i += 1;
    }
    i.min(bytes.len())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Form-decodes one name or value into `out` (cleared first): `+` is a
/// space, `%XX` a byte, a malformed escape is kept literally.
fn form_decode_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
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
                let end = find_first(bytes, i, [b'%', b'+']);
                out.extend_from_slice(&bytes[i..end]);
                i = end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(input: &[u8]) -> Vec<(String, String)> {
        let mut params = Params {
            pairs: Vec::new(),
            decoded: String::new(),
        };
        parse_form_into(input, &mut params, &mut Vec::new());
        params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn reference(input: &[u8]) -> Vec<(String, String)> {
        form_urlencoded::parse(input)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn bytes_with_escapes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        // Bias towards the bytes that matter: separators, escapes, hex
        // digits, `+`, and invalid UTF-8; long enough for the eight-byte scan.
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
            0..80,
        )
    }

    proptest::proptest! {
        #[test]
        fn borrowing_form_parser_equals_form_urlencoded(input in bytes_with_escapes()) {
            proptest::prop_assert_eq!(parsed(&input), reference(&input));
        }

        #[test]
        fn borrowing_form_parser_equals_form_urlencoded_on_utf8(input in "[&=%+aF9g é日]{0,80}") {
            proptest::prop_assert_eq!(parsed(input.as_bytes()), reference(input.as_bytes()));
        }

        #[test]
        fn eight_byte_scan_finds_the_first_needle(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), from in 0usize..48) {
            let from = from.min(input.len());
            let expected = input[from..]
                .iter()
                .position(|b| matches!(b, b'&' | b'=' | 0x80 | 0xff))
                .map_or(input.len(), |p| from + p);
            proptest::prop_assert_eq!(find_first(&input, from, [b'&', b'=', 0x80, 0xff]), expected);
        }
    }

    #[test]
    fn form_parser_borrows_plain_values_and_decodes_escapes() {
        let mut params = Params {
            pairs: Vec::new(),
            decoded: String::new(),
        };
        parse_form_into(
            b"a=b&&c=%41+%zz&d&=e&f=%E9&long_plain_name=long+value+with%2Fescapes",
            &mut params,
            &mut Vec::new(),
        );
        assert!(matches!(params.pairs[0].1, Piece::Raw("b")));
        assert!(matches!(params.pairs[5].0, Piece::Raw("long_plain_name")));
        let got: Vec<(&str, &str)> = params.iter().collect();
        assert_eq!(
            got,
            [
                ("a", "b"),
                ("c", "A %zz"),
                ("d", ""),
                ("", "e"),
                ("f", "\u{fffd}"),
                ("long_plain_name", "long value with/escapes"),
            ]
        );
    }
}
