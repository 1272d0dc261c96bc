#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod alg;
pub mod b64;
mod claims;
pub mod dangerous;
mod der;
mod error;
mod jwk;
mod jws;
#[cfg(feature = "keygen")]
mod keygen;
mod pem;
mod signing;
mod source;
mod verifying;

pub use alg::Algorithm;
pub use claims::{
    Audience, Clock, FixedClock, NumericDates, SystemClock, TimeValidation, validate_times,
};
pub use error::Error;
pub use jwk::{Jwk, JwkSet};
pub use jws::{CompactJws, Header, Limits, Verifier, sign, sign_with_header};
pub use signing::SigningKey;
pub use source::KeySource;
pub use verifying::VerifyingKey;
