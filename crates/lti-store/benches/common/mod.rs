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

/// Launch data the size of a saved LTI 1.3 launch (~3 KB of claims).
#[allow(dead_code)]
pub(crate) fn bench_launch_data() -> serde_json::Value {
    let custom: serde_json::Map<String, serde_json::Value> = (0..40)
        .map(|i| {
            (
                format!("custom_field_{i}"),
                format!("value number {i} of the launch").into(),
            )
        })
        .collect();
    serde_json::json!({
        "format": "lti-tool/launch/v1",
        "issuer": "https://i",
        "client_id": "c",
        "claims": {
            "sub": "user-1234567890",
            "name": "A Learner",
            "email": "learner@example.edu",
            "https://purl.imsglobal.org/spec/lti/claim/custom": custom,
            "https://purl.imsglobal.org/spec/lti/claim/roles": [
                "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
            ],
        },
    })
}
