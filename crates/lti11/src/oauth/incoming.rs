//! Incoming signed requests: parameter collection with input hygiene, and
//! the signature check over the rebuilt base string.

use std::borrow::Cow;

use subtle::ConstantTimeEq as _;

use super::{
    MAX_SIGNATURE_LEN, OAUTH_BODY_HASH, OAUTH_CONSUMER_KEY, OAUTH_NONCE, OAUTH_SIGNATURE,
    OAUTH_SIGNATURE_METHOD, OAUTH_TIMESTAMP, OAUTH_VERSION, SignatureMethod, SignedRequest,
    base_string_from_parts, base_string_tag, base_string_uri, body_hash, check_consumer_key,
    check_nonce, check_timestamp, parse_authorization_header, signature_matches,
};
use crate::error::{Error, Result, snippet};
use lti_registry::SecretString;

/// Decoded `(name, value)` pairs.
pub(crate) type Pairs = Vec<(String, String)>;

/// The decoded parameters of a request in arrival order: query, form body,
/// then `Authorization` header.
#[derive(Debug, Clone)]
struct Params<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl Params<'_> {
    fn pair(&self, i: usize) -> (&str, &str) {
        let (k, v) = &self.pairs[i];
        (&**k, &**v)
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> + Clone + '_ {
        self.range(0, self.pairs.len())
    }

    fn range(&self, from: usize, to: usize) -> impl Iterator<Item = (&str, &str)> + Clone + '_ {
        self.pairs[from..to].iter().map(|(k, v)| (&**k, &**v))
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
        let mut params = Params {
            pairs: form_urlencoded::parse(query.unwrap_or("").as_bytes()).collect(),
        };
        let query_len = params.pairs.len();
        params.pairs.extend(form_urlencoded::parse(body));
        let form_end = params.pairs.len();
        if let Some(h) = self.authorization {
            params.pairs.extend(
                parse_authorization_header(h)?
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v))),
            );
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

    /// The signature base string rebuilt from the request.
    pub fn base_string(&self) -> String {
        let params: Vec<(&str, &str)> = self.params.iter().collect();
        base_string_from_parts(self.http_method, &self.base_uri, &params)
    }

    /// Checks the signature against `secret`; the HMACs are compared in
    /// constant time.
    pub(crate) fn check_signature(&self, secret: &SecretString) -> Result<()> {
        let tag = base_string_tag(self.method, secret.expose(), "", &self.base_string());
        if signature_matches(&tag, self.params.pair(self.signature).1) {
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
