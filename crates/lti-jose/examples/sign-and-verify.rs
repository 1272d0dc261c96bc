//! Generates an RSA key, publishes its JWK Set, signs a JWT, verifies it through the
//! JWK Set, and shows that a tampered token is rejected.
//!
//! Run: `cargo run -p lti-jose --release --features keygen --example sign-and-verify`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use lti_jose::{Algorithm, JwkSet, SigningKey, SystemClock, TimeValidation, Verifier, b64};
use serde_json::{Value, json};

fn main() -> Result<(), lti_jose::Error> {
    println!("generating a 2048-bit RSA key...");
    let (key, _pkcs8_pem) = SigningKey::generate_rsa(2048)?;
    let jwks = JwkSet {
        keys: vec![key.public_jwk()],
    };
    println!(
        "public JWK Set:\n{}",
        serde_json::to_string_pretty(&jwks).expect("a JWK Set serializes")
    );

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = json!({
        "iss": "https://platform.example.edu",
        "sub": "user-42",
        "aud": "client-1",
        "iat": now,
        "exp": now + 300,
    });
    let token = lti_jose::sign(&claims, &key)?;
    println!("\nsigned JWT ({} bytes):\n{token}", token.len());

    // The verifier side only has the published JWK Set.
    let published = serde_json::to_vec(&jwks).expect("a JWK Set serializes");
    let keys = JwkSet::from_slice(&published)?;
    let verifier = Verifier::new(&[Algorithm::RS256])?;
    let jws = verifier.parse(&token)?;
    let public = keys.find(jws.kid(), jws.algorithm())?;
    let verified: Value = verifier.verify(&jws, &public)?;
    lti_jose::validate_times(&verified, &TimeValidation::default(), &SystemClock)?;
    println!(
        "\nverified claims:\n{}",
        serde_json::to_string_pretty(&verified).expect("claims serialize")
    );

    let mut segments: Vec<String> = token.split('.').map(str::to_owned).collect();
    segments[1] =
        b64::encode(br#"{"iss":"https://platform.example.edu","sub":"admin","aud":"client-1"}"#);
    let tampered = segments.join(".");
    match verifier.verify_token::<Value>(&tampered, &public) {
        Err(err) => println!("\ntampered token rejected: {} ({err})", err.code()),
        Ok(_) => panic!("a tampered token verified"),
    }

    println!(
        "\nOK: signed with kid {} and verified via the JWK Set",
        key.kid()
    );
    Ok(())
}
