//! Decoding **without verification**. Use only for routing or debugging, e.g. to read
//! the issuer of a token before knowing which key set to verify it with. Never trust
//! anything returned here.

use serde::de::DeserializeOwned;

use crate::Error;
use crate::jws::{CompactJws, Header, Limits};

/// Parses `token` with default [`Limits`] and decodes header and payload **without
/// checking the signature**.
///
/// # Errors
/// As [`CompactJws::parse`], plus payload decoding errors.
pub fn decode_unverified<T: DeserializeOwned>(token: &str) -> Result<(Header, T), Error> {
    let jws = CompactJws::parse(token, &Limits::default())?;
    let payload = jws.decode_payload()?;
    Ok((jws.header().clone(), payload))
}
