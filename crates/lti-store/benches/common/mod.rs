//! Helpers shared by the benches.

use lti_registry::{AppKey, LaunchState, SecretCipher};

/// A valid launch state `id` issued at `now`, live for ten minutes.
pub(crate) fn bench_state(id: String, now: i64) -> LaunchState {
    LaunchState::new(id, "n", "https://i", "c", "https://t", now, 600)
}

/// A fixed cipher for a bench's store.
pub(crate) fn bench_cipher() -> SecretCipher {
    SecretCipher::aes256gcm(AppKey::new("bench", &[1u8; 32]).unwrap(), vec![]).unwrap()
}
