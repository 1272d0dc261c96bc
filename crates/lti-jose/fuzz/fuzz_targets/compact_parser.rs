//! Fuzzes the compact JWS parser and the unverified decoder: they must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lti_jose::{Algorithm, CompactJws, Limits, Verifier, VerifyingKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(jws) = CompactJws::parse(text, &Limits::default()) {
        let _ = jws.header().kid.as_deref();
        // A fixed Ed25519 key: verification must fail cleanly, never panic.
        if let Ok(key) = VerifyingKey::from_ed25519(&[7u8; 32], Algorithm::EdDSA) {
            let verifier = Verifier::new(&Algorithm::ALL).expect("non-empty allow-list");
            let _ = verifier.verify::<serde_json::Value>(&jws, &key);
        }
    }
    let _ = lti_jose::dangerous::decode_unverified::<serde_json::Value>(text);
});
