//! Fuzzes the JWK Set parser, key selection and SPKI DER parsing: they must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lti_jose::{Algorithm, JwkSet, VerifyingKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = JwkSet::from_slice(data) {
        for alg in Algorithm::ALL {
            let _ = set.find(None, alg);
            for jwk in &set.keys {
                let _ = jwk.thumbprint();
                let _ = set.find(jwk.kid(), alg);
            }
        }
    }
    for alg in Algorithm::ALL {
        let _ = VerifyingKey::from_spki_der(data, alg);
    }
});
