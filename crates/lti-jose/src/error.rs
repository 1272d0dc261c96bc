//! The crate's single error type.

/// Everything that can go wrong in `lti-jose`.
///
/// Each variant has a stable machine code ([`Error::code`]). Messages say what was
/// expected and what was found; they never contain key material or whole tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input was not strict base64url without padding.
    #[error("invalid base64url: expected unpadded base64url alphabet, found {found}")]
    Base64 {
        /// What was wrong (e.g. "padding character '='").
        found: String,
    },
    /// The token or document is structurally malformed.
    #[error("malformed {what}: expected {expected}, found {found}")]
    Malformed {
        /// What was being parsed ("compact JWS", "JWK Set", ...).
        what: &'static str,
        /// What the parser expected.
        expected: String,
        /// What it found instead.
        found: String,
    },
    /// A JSON part could not be parsed or did not have the expected shape.
    #[error("invalid JSON in {part}: {reason}")]
    InvalidJson {
        /// Which part ("header", "payload", "JWK", "JWK Set").
        part: &'static str,
        /// The parser's description of the problem.
        reason: String,
    },
    /// The token exceeds the configured size limit.
    #[error("token too large: expected at most {limit} bytes, found {found}")]
    TokenTooLarge {
        /// Configured limit in bytes.
        limit: usize,
        /// Actual length in bytes.
        found: usize,
    },
    /// The encoded header exceeds the configured size limit.
    #[error("JOSE header too large: expected at most {limit} bytes, found {found}")]
    HeaderTooLarge {
        /// Configured limit in bytes.
        limit: usize,
        /// Actual length in bytes.
        found: usize,
    },
    /// The algorithm is not a supported public-key JWS algorithm (includes `none` and HMAC).
    #[error(
        "unsupported algorithm: expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA, found {found:?}"
    )]
    UnsupportedAlgorithm {
        /// The algorithm name found (truncated).
        found: String,
    },
    /// The header's algorithm is not on the verifier's allow-list.
    #[error("algorithm not allowed: expected one of [{allowed}], found {found}")]
    AlgorithmNotAllowed {
        /// The algorithm in the token header.
        found: String,
        /// The allow-list, comma separated.
        allowed: String,
    },
    /// A verifier was built with an empty algorithm allow-list.
    #[error("empty algorithm allow-list: expected at least one algorithm, found none")]
    EmptyAllowList,
    /// No key in the set has the requested `kid`.
    #[error("unknown key id: expected a key with kid {kid:?}, found none")]
    UnknownKid {
        /// The key id asked for (truncated).
        kid: String,
    },
    /// No `kid` was given and several keys could verify the token.
    #[error(
        "ambiguous key: expected exactly one candidate key when no kid is given, found {candidates}"
    )]
    AmbiguousKey {
        /// Number of candidate keys.
        candidates: usize,
    },
    /// The key set is empty.
    #[error("no keys: expected at least one usable key in the set, found none")]
    NoKeys,
    /// The key cannot be used with the algorithm (wrong family, its own `alg`/`use`/`key_ops` forbid it).
    #[error("key/algorithm mismatch: expected {expected}, found {found}")]
    KeyAlgorithmMismatch {
        /// What the operation needed.
        expected: String,
        /// What the key offered.
        found: String,
    },
    /// The key material could not be parsed or is not acceptable.
    #[error("invalid key: expected {expected}, found {found}")]
    InvalidKey {
        /// What a valid key looks like.
        expected: String,
        /// What was found (never key bytes).
        found: String,
    },
    /// The key type or curve is not supported.
    #[error("unsupported key: expected kty RSA, EC (P-256, P-384) or OKP (Ed25519), found {found}")]
    UnsupportedKey {
        /// The key type / curve found.
        found: String,
    },
    /// The signature did not verify.
    #[error(
        "bad signature: expected a valid signature by the selected key, found one that does not verify"
    )]
    BadSignature,
    /// Signing failed inside the crypto library.
    #[error("signing failed: {reason}")]
    Signing {
        /// Reason reported.
        reason: String,
    },
    /// Key generation failed.
    #[error("key generation failed: {reason}")]
    KeyGeneration {
        /// Reason reported.
        reason: String,
    },
    /// `exp` is in the past (beyond the leeway).
    #[error("token expired: expected exp + leeway ({exp} + {leeway}) >= now, found now = {now}")]
    TokenExpired {
        /// The `exp` claim.
        exp: u64,
        /// The current time.
        now: u64,
        /// The leeway applied.
        leeway: u64,
    },
    /// `nbf` is in the future (beyond the leeway).
    #[error(
        "token not yet valid: expected nbf - leeway ({nbf} - {leeway}) <= now, found now = {now}"
    )]
    NotYetValid {
        /// The `nbf` claim.
        nbf: u64,
        /// The current time.
        now: u64,
        /// The leeway applied.
        leeway: u64,
    },
    /// `iat` is in the future (beyond the leeway).
    #[error(
        "token issued in the future: expected iat - leeway ({iat} - {leeway}) <= now, found now = {now}"
    )]
    IssuedInFuture {
        /// The `iat` claim.
        iat: u64,
        /// The current time.
        now: u64,
        /// The leeway applied.
        leeway: u64,
    },
    /// `iat` is older than the configured maximum age.
    #[error(
        "token too old: expected iat within {max_age} s (+ leeway {leeway}) of now = {now}, found iat = {iat}"
    )]
    TokenTooOld {
        /// The `iat` claim.
        iat: u64,
        /// The current time.
        now: u64,
        /// The configured maximum age.
        max_age: u64,
        /// The leeway applied.
        leeway: u64,
    },
    /// A required claim is missing.
    #[error("missing claim: expected {claim} to be present, found none")]
    MissingClaim {
        /// Claim name.
        claim: &'static str,
    },
    /// A claim has the wrong type or value.
    #[error("invalid claim {claim}: expected {expected}, found {found}")]
    InvalidClaim {
        /// Claim name.
        claim: &'static str,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// The key source (e.g. a remote JWKS) could not be reached or parsed.
    #[error("key source unavailable: expected a JWK Set from {url}, found error: {reason}")]
    KeySourceUnavailable {
        /// The JWKS URL.
        url: String,
        /// Why it failed.
        reason: String,
    },
}

impl Error {
    /// A stable, machine-readable code for this error (snake_case).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Base64 { .. } => "base64",
            Error::Malformed { .. } => "malformed",
            Error::InvalidJson { .. } => "invalid_json",
            Error::TokenTooLarge { .. } => "token_too_large",
            Error::HeaderTooLarge { .. } => "header_too_large",
            Error::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            Error::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            Error::EmptyAllowList => "empty_allow_list",
            Error::UnknownKid { .. } => "unknown_kid",
            Error::AmbiguousKey { .. } => "ambiguous_key",
            Error::NoKeys => "no_keys",
            Error::KeyAlgorithmMismatch { .. } => "key_algorithm_mismatch",
            Error::InvalidKey { .. } => "invalid_key",
            Error::UnsupportedKey { .. } => "unsupported_key",
            Error::BadSignature => "bad_signature",
            Error::Signing { .. } => "signing_failed",
            Error::KeyGeneration { .. } => "key_generation_failed",
            Error::TokenExpired { .. } => "token_expired",
            Error::NotYetValid { .. } => "not_yet_valid",
            Error::IssuedInFuture { .. } => "issued_in_future",
            Error::TokenTooOld { .. } => "token_too_old",
            Error::MissingClaim { .. } => "missing_claim",
            Error::InvalidClaim { .. } => "invalid_claim",
            Error::KeySourceUnavailable { .. } => "key_source_unavailable",
        }
    }

    pub(crate) fn malformed(
        what: &'static str,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        Error::Malformed {
            what,
            expected: expected.into(),
            found: found.into(),
        }
    }

    pub(crate) fn invalid_key(expected: impl Into<String>, found: impl Into<String>) -> Self {
        Error::InvalidKey {
            expected: expected.into(),
            found: found.into(),
        }
    }

    pub(crate) fn json(part: &'static str, err: &serde_json::Error) -> Self {
        Error::InvalidJson {
            part,
            reason: err.to_string(),
        }
    }
}

/// Shortens attacker-controlled strings before they go into an error message.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Names the JSON type of `value` for "found ..." messages (never the value itself).
pub(crate) fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
