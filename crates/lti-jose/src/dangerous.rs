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

/// The decoded payload bytes of a parsed token, **not verified**. For a caller that
/// must route on a claim (e.g. `iss`) before it can pick a key, and that then checks
/// the signature with [`CompactJws::signing_input`] and [`CompactJws::signature`]
/// (or [`crate::Verifier::verify`]) before trusting anything: it saves decoding
/// the payload a second time.
pub fn unverified_payload<'j>(jws: &'j CompactJws<'_>) -> &'j [u8] {
    jws.payload_bytes()
}

/// The decoded payload bytes of a parsed token, **not verified**, taken out of it
/// without a copy: for the caller of [`unverified_payload`] that has since checked
/// the signature and keeps the payload (e.g. as the launch's signed JSON text).
pub fn into_unverified_payload(jws: CompactJws<'_>) -> Vec<u8> {
    jws.into_payload_bytes()
}

/// The decoded payload bytes of a parsed token, **not verified**, taken out of it
/// without a copy while the token stays usable for its signature check
/// ([`CompactJws::signing_input`] and [`CompactJws::signature`] are untouched; its
/// payload is empty afterwards). For a caller that owns the payload from the start,
/// e.g. to check it is UTF-8 once and keep it as text.
pub fn take_unverified_payload(jws: &mut CompactJws<'_>) -> Vec<u8> {
    jws.take_payload_bytes()
}
