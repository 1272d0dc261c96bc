//! Private signing keys. ring performs every private-key operation.

use std::fmt;

use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};

use crate::alg::{Algorithm, Family};
use crate::jwk::Jwk;
use crate::verifying::{Material, VerifyingKey};
use crate::{Error, pem};

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private signing key bound to one [`Algorithm`].
///
/// Loaded from PKCS#8 (PEM or DER; RSA, EC P-256/P-384, Ed25519) or PKCS#1 RSA PEM.
/// `Debug` prints only the algorithm and kid. The decoded key bytes this crate handles
/// are zeroized after loading; the parsed key lives inside ring's key-pair types,
/// which do not expose their memory for zeroizing.
pub struct SigningKey {
    pair: Pair,
    alg: Algorithm,
    kid: String,
    public: Material,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("material", &"[redacted]")
            .finish()
    }
}

fn rejected(expected: &str, alg: Algorithm, err: ring::error::KeyRejected) -> Error {
    if err.to_string() == "WrongAlgorithm" {
        Error::KeyAlgorithmMismatch {
            expected: format!("a private key for {alg}"),
            found: "a private key of another type or curve".to_owned(),
        }
    } else {
        Error::invalid_key(expected.to_owned(), format!("a key ring rejects ({})", err))
    }
}

impl SigningKey {
    /// Loads a PEM private key: `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1).
    ///
    /// # Errors
    /// [`Error::InvalidKey`] on malformed or unsupported PEM (e.g. `EC PRIVATE KEY`, encrypted),
    /// [`Error::KeyAlgorithmMismatch`] when the key cannot do `alg`.
    pub fn from_pem(pem: &str, alg: Algorithm) -> Result<SigningKey, Error> {
        let (label, der) = pem::decode(pem)?;
        match label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der, alg),
            "RSA PRIVATE KEY" => {
                if alg.family() != Family::Rsa {
                    return Err(Error::KeyAlgorithmMismatch {
                        expected: format!("a private key for {alg}"),
                        found: "a PKCS#1 RSA private key".to_owned(),
                    });
                }
                let pair = RsaKeyPair::from_der(&der)
                    .map_err(|e| rejected("a PKCS#1 RSA private key", alg, e))?;
                Self::finish(Pair::Rsa(pair), alg)
            }
            other => Err(Error::invalid_key(
                "a PEM label PRIVATE KEY (PKCS#8) or RSA PRIVATE KEY (PKCS#1)",
                other.to_owned(),
            )),
        }
    }

    /// Loads a DER PKCS#8 private key for `alg`.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] on malformed input, [`Error::KeyAlgorithmMismatch`] when the key
    /// cannot do `alg`.
    pub fn from_pkcs8_der(der: &[u8], alg: Algorithm) -> Result<SigningKey, Error> {
        let expected = "a PKCS#8 private key";
        let rng = SystemRandom::new();
        let pair = match alg.family() {
            Family::Rsa => {
                Pair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(|e| rejected(expected, alg, e))?)
            }
            Family::EcP256 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                    .map_err(|e| rejected(expected, alg, e))?,
            ),
            Family::EcP384 => Pair::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der, &rng)
                    .map_err(|e| rejected(expected, alg, e))?,
            ),
            Family::Ed25519 => Pair::Ed(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|e| rejected(expected, alg, e))?,
            ),
        };
        Self::finish(pair, alg)
    }

    fn finish(pair: Pair, alg: Algorithm) -> Result<SigningKey, Error> {
        let public = match &pair {
            Pair::Rsa(rsa) => {
                let components: PublicKeyComponents<Vec<u8>> = rsa.public().into();
                Material::Rsa {
                    n: components.n,
                    e: components.e,
                }
            }
            Pair::Ec(ec) => Material::Raw(ec.public_key().as_ref().to_vec()),
            Pair::Ed(ed) => Material::Raw(ed.public_key().as_ref().to_vec()),
        };
        let kid = Jwk::from_material(alg.family(), &public).thumbprint()?;
        Ok(SigningKey {
            pair,
            alg,
            kid,
            public,
            rng: SystemRandom::new(),
        })
    }

    /// Generates a new RSA key of `bits` (2048, 3072 or 4096) with the `rsa` crate and returns
    /// it for RS256 together with its PKCS#8 PEM (store it; it is the only copy).
    ///
    /// # Errors
    /// [`Error::KeyGeneration`] on an unsupported size or a generation failure.
    #[cfg(feature = "keygen")]
    pub fn generate_rsa(bits: usize) -> Result<(SigningKey, String), Error> {
        crate::keygen::generate_rsa(bits)
    }

    /// Returns the key with another key id (the default is the RFC 7638 thumbprint).
    pub fn with_kid(self, kid: impl Into<String>) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            ..self
        }
    }

    /// The key id put in the `kid` header of signed tokens.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public half as a JWK with `kid`, `alg` and `use = "sig"`.
    pub fn public_jwk(&self) -> Jwk {
        self.verifying_key().to_jwk()
    }

    /// The public half as a verifying key (same algorithm and kid).
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey::from_material(self.alg, Some(self.kid.clone()), self.public.clone())
    }

    /// Signs `message` and returns the JWS signature bytes (ECDSA as fixed-width `r || s`).
    ///
    /// # Errors
    /// [`Error::Signing`] if the crypto library fails.
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let failed = |_| Error::Signing {
            reason: format!("ring could not produce a {} signature", self.alg),
        };
        match &self.pair {
            Pair::Rsa(rsa) => {
                let padding: &'static dyn signature::RsaEncoding = match self.alg {
                    Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
                    Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
                    Algorithm::PS256 => &signature::RSA_PSS_SHA256,
                    Algorithm::PS384 => &signature::RSA_PSS_SHA384,
                    Algorithm::PS512 => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; rsa.public().modulus_len()];
                rsa.sign(padding, &self.rng, message, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
            Pair::Ec(ec) => Ok(ec
                .sign(&self.rng, message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Pair::Ed(ed) => Ok(ed.sign(message).as_ref().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec_key(alg: Algorithm) -> SigningKey {
        let rng = SystemRandom::new();
        let signing = if alg == Algorithm::ES256 {
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING
        } else {
            &signature::ECDSA_P384_SHA384_FIXED_SIGNING
        };
        let der = EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
        SigningKey::from_pkcs8_der(der.as_ref(), alg).unwrap()
    }

    #[test]
    fn debug_does_not_print_material() {
        let key = ec_key(Algorithm::ES256);
        let debug = format!("{key:?}");
        assert!(
            debug.contains("[redacted]") && debug.contains("ES256"),
            "{debug}"
        );
        assert!(
            !debug.contains(key.public_jwk().x.as_deref().unwrap()),
            "{debug}"
        );
    }

    #[test]
    fn default_kid_is_the_thumbprint() {
        let key = ec_key(Algorithm::ES384);
        let jwk = key.public_jwk();
        assert_eq!(jwk.kid(), Some(key.kid()));
        assert_eq!(jwk.thumbprint().unwrap(), key.kid());
        assert_eq!(jwk.alg.as_deref(), Some("ES384"));
        assert_eq!(jwk.use_.as_deref(), Some("sig"));
        assert_eq!(key.with_kid("k1").kid(), "k1");
    }

    #[test]
    fn ec_key_loaded_for_other_curve_is_a_mismatch() {
        let rng = SystemRandom::new();
        let der = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let err = SigningKey::from_pkcs8_der(der.as_ref(), Algorithm::ES384).unwrap_err();
        assert_eq!(err.code(), "key_algorithm_mismatch", "{err}");
        let err = SigningKey::from_pkcs8_der(der.as_ref(), Algorithm::RS256).unwrap_err();
        assert!(
            matches!(err.code(), "key_algorithm_mismatch" | "invalid_key"),
            "{err}"
        );
    }

    #[test]
    fn garbage_der_is_an_invalid_key() {
        assert_eq!(
            SigningKey::from_pkcs8_der(&[0x30, 0x00], Algorithm::ES256)
                .unwrap_err()
                .code(),
            "invalid_key"
        );
    }

    #[test]
    fn sec1_ec_pem_is_rejected_with_the_label() {
        let err = SigningKey::from_pem(
            "-----BEGIN EC PRIVATE KEY-----\nAAEC\n-----END EC PRIVATE KEY-----\n",
            Algorithm::ES256,
        )
        .unwrap_err();
        assert!(
            matches!(err, Error::InvalidKey { ref found, .. } if found == "EC PRIVATE KEY"),
            "{err}"
        );
    }
}
