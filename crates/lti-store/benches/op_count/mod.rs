//! What the instruction/cost counters read from the environment.

use lti_registry::{AppKey, SecretCipher};

/// `(LTI_COUNT_OP, LTI_COUNT_N)`, or `None` when either is missing (the
/// counter then does nothing, so a plain `cargo test --benches` stays quick).
pub(crate) fn request() -> Option<(String, u64)> {
    let op = std::env::var("LTI_COUNT_OP").ok()?;
    let n = std::env::var("LTI_COUNT_N").ok()?.parse::<u64>().ok()?;
    Some((op, n))
}

/// A fixed cipher for the counted store.
pub(crate) fn cipher() -> SecretCipher {
    SecretCipher::aes256gcm(AppKey::new("count", &[1u8; 32]).unwrap(), vec![]).unwrap()
}
