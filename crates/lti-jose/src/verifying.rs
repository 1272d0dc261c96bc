//! Public verification keys bound to one algorithm.

use std::fmt;
use std::sync::Arc;

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey, VerificationAlgorithm};

use crate::alg::{Algorithm, Family};
use crate::der::{self, SpkiKey};
use crate::jwk::Jwk;
use crate::{Error, pem};

/// Smallest RSA modulus accepted, in bits.
pub(crate) const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted, in bits.
pub(crate) const RSA_MAX_BITS: usize = 8192;

#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Material {
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed EC point `0x04 || x || y`, or a raw Ed25519 key.
    Raw(Vec<u8>),
}

struct Inner {
    alg: Algorithm,
    kid: Option<String>,
    material: Material,
}

/// A parsed public key bound to exactly one [`Algorithm`].
///
/// Built from a [`Jwk`] ([`Jwk::to_verifying_key`], [`crate::JwkSet::find`]), from
/// SubjectPublicKeyInfo DER/PEM, or from RSA components. Cloning is cheap (the key
/// is behind an `Arc`). Because the algorithm is part of the key, a token whose
/// header names another algorithm never verifies with it.
#[derive(Clone)]
pub struct VerifyingKey(Arc<Inner>);

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.0.alg)
            .field("kid", &self.0.kid)
            .finish_non_exhaustive()
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

fn bit_len(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(&b) => (bytes.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
        None => 0,
    }
}

impl VerifyingKey {
    pub(crate) fn from_material(alg: Algorithm, kid: Option<String>, material: Material) -> Self {
        VerifyingKey(Arc::new(Inner { alg, kid, material }))
    }

    /// Builds an RSA key from its big-endian modulus and exponent (leading zero bytes are stripped).
    ///
    /// # Errors
    /// [`Error::KeyAlgorithmMismatch`] if `alg` is not an RSA algorithm, [`Error::InvalidKey`]
    /// if the modulus is outside 2048..=8192 bits or the exponent is not a small odd number ≥ 3.
    pub fn from_rsa_components(n: &[u8], e: &[u8], alg: Algorithm) -> Result<Self, Error> {
        require_family(alg, Family::Rsa, "an RSA key")?;
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = bit_len(n);
        if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
            return Err(Error::invalid_key(
                format!("an RSA modulus of {RSA_MIN_BITS}..={RSA_MAX_BITS} bits"),
                format!("{bits} bits"),
            ));
        }
        let e_ok = !e.is_empty()
            && e.len() <= 4
            && e.last().is_some_and(|b| b & 1 == 1)
            && (e.len() > 1 || e[0] >= 3);
        if !e_ok {
            return Err(Error::invalid_key(
                "an odd RSA public exponent between 3 and 2^32",
                "another exponent",
            ));
        }
        Ok(Self::from_material(
            alg,
            None,
            Material::Rsa {
                n: n.to_vec(),
                e: e.to_vec(),
            },
        ))
    }

    /// Builds an EC key from the affine coordinates (each exactly 32 bytes for ES256, 48 for ES384).
    ///
    /// # Errors
    /// [`Error::KeyAlgorithmMismatch`] if `alg` is not ES256/ES384, [`Error::InvalidKey`] on wrong lengths.
    pub fn from_ec_coordinates(x: &[u8], y: &[u8], alg: Algorithm) -> Result<Self, Error> {
        let len = match alg {
            Algorithm::ES256 => 32,
            Algorithm::ES384 => 48,
            other => {
                return Err(Error::KeyAlgorithmMismatch {
                    expected: format!("{} for {other}", other.family().describe()),
                    found: "an EC key".to_owned(),
                });
            }
        };
        if x.len() != len || y.len() != len {
            return Err(Error::invalid_key(
                format!("{len}-byte EC coordinates"),
                format!("x of {} bytes and y of {} bytes", x.len(), y.len()),
            ));
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(0x04);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        Ok(Self::from_material(alg, None, Material::Raw(point)))
    }

    /// Builds an Ed25519 key from its 32 raw bytes (for [`Algorithm::EdDSA`]).
    ///
    /// # Errors
    /// [`Error::KeyAlgorithmMismatch`] if `alg` is not EdDSA, [`Error::InvalidKey`] on a wrong length.
    pub fn from_ed25519(public: &[u8], alg: Algorithm) -> Result<Self, Error> {
        require_family(alg, Family::Ed25519, "an OKP Ed25519 key")?;
        if public.len() != 32 {
            return Err(Error::invalid_key(
                "a 32-byte Ed25519 public key",
                format!("{} bytes", public.len()),
            ));
        }
        Ok(Self::from_material(
            alg,
            None,
            Material::Raw(public.to_vec()),
        ))
    }

    /// Parses a DER SubjectPublicKeyInfo (RSA, EC P-256/P-384, Ed25519).
    ///
    /// # Errors
    /// [`Error::InvalidKey`] on malformed DER, [`Error::UnsupportedKey`] on other key types,
    /// [`Error::KeyAlgorithmMismatch`] if the key cannot do `alg`.
    pub fn from_spki_der(der: &[u8], alg: Algorithm) -> Result<Self, Error> {
        match der::parse_spki(der)? {
            SpkiKey::Rsa { n, e } => Self::from_rsa_components(n, e, alg),
            SpkiKey::P256(point) => ec_from_point(point, Algorithm::ES256, alg),
            SpkiKey::P384(point) => ec_from_point(point, Algorithm::ES384, alg),
            SpkiKey::Ed25519(public) => Self::from_ed25519(public, alg),
        }
    }

    /// Parses a PEM public key: `PUBLIC KEY` (SubjectPublicKeyInfo) or `RSA PUBLIC KEY` (PKCS#1).
    ///
    /// # Errors
    /// As [`VerifyingKey::from_spki_der`], plus [`Error::InvalidKey`] for other PEM labels.
    pub fn from_public_pem(pem: &str, alg: Algorithm) -> Result<Self, Error> {
        let (label, der) = pem::decode(pem)?;
        match label.as_str() {
            "PUBLIC KEY" => Self::from_spki_der(&der, alg),
            "RSA PUBLIC KEY" => {
                let (n, e) = der::parse_rsa_public_key(&der)?;
                Self::from_rsa_components(n, e, alg)
            }
            other => Err(Error::invalid_key(
                "a PEM label PUBLIC KEY or RSA PUBLIC KEY",
                other.to_owned(),
            )),
        }
    }

    /// Returns this key with `kid` set.
    pub fn with_kid(self, kid: impl Into<String>) -> Self {
        let inner = Arc::unwrap_or_clone(self.0);
        VerifyingKey(Arc::new(Inner {
            kid: Some(kid.into()),
            ..inner
        }))
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.0.alg
    }

    /// The key id, if the key came with one.
    pub fn kid(&self) -> Option<&str> {
        self.0.kid.as_deref()
    }

    /// The public key as a JWK (with `kid` if known, `alg` and `use = "sig"`).
    pub fn to_jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_material(self.0.alg.family(), &self.0.material);
        jwk.kid = self.0.kid.clone();
        jwk.alg = Some(self.0.alg.as_str().to_owned());
        jwk.use_ = Some("sig".to_owned());
        jwk
    }

    /// Verifies `signature` over `message` with this key's algorithm.
    ///
    /// # Errors
    /// [`Error::BadSignature`] if it does not verify.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> Result<(), Error> {
        let result = match &self.0.material {
            Material::Rsa { n, e } => RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .verify(rsa_params(self.0.alg), message, signature),
            Material::Raw(bytes) => {
                UnparsedPublicKey::new(raw_params(self.0.alg), bytes).verify(message, signature)
            }
        };
        result.map_err(|_| Error::BadSignature)
    }
}

impl Clone for Inner {
    fn clone(&self) -> Self {
        Inner {
            alg: self.alg,
            kid: self.kid.clone(),
            material: self.material.clone(),
        }
    }
}

fn ec_from_point(
    point: &[u8],
    curve_alg: Algorithm,
    alg: Algorithm,
) -> Result<VerifyingKey, Error> {
    if alg != curve_alg {
        return Err(Error::KeyAlgorithmMismatch {
            expected: format!("{} for {alg}", alg.family().describe()),
            found: curve_alg.family().describe().to_owned(),
        });
    }
    let len = if curve_alg == Algorithm::ES256 {
        32
    } else {
        48
    };
    match point.split_first() {
        Some((0x04, xy)) if xy.len() == 2 * len => {
            VerifyingKey::from_ec_coordinates(&xy[..len], &xy[len..], alg)
        }
        _ => Err(Error::invalid_key(
            "an uncompressed EC point",
            "another point encoding or length",
        )),
    }
}

fn require_family(alg: Algorithm, family: Family, found: &str) -> Result<(), Error> {
    if alg.family() == family {
        Ok(())
    } else {
        Err(Error::KeyAlgorithmMismatch {
            expected: format!("{} for {alg}", alg.family().describe()),
            found: found.to_owned(),
        })
    }
}

fn rsa_params(alg: Algorithm) -> &'static signature::RsaParameters {
    match alg {
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => &signature::RSA_PKCS1_2048_8192_SHA256,
    }
}

fn raw_params(alg: Algorithm) -> &'static dyn VerificationAlgorithm {
    match alg {
        Algorithm::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
        Algorithm::EdDSA => &signature::ED25519,
        _ => &signature::ECDSA_P256_SHA256_FIXED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_zero_bytes_of_n_are_stripped() {
        let mut n = vec![0u8, 0];
        n.extend(std::iter::repeat_n(0xc5, 256));
        let key = VerifyingKey::from_rsa_components(&n, &[1, 0, 1], Algorithm::RS256).unwrap();
        assert!(matches!(&key.0.material, Material::Rsa { n, .. } if n.len() == 256));
    }

    #[test]
    fn short_rsa_modulus_is_rejected() {
        let n = vec![0xc5u8; 128];
        let err = VerifyingKey::from_rsa_components(&n, &[1, 0, 1], Algorithm::RS256).unwrap_err();
        assert!(
            matches!(err, Error::InvalidKey { ref found, .. } if found == "1024 bits"),
            "{err}"
        );
    }

    #[test]
    fn even_exponent_is_rejected() {
        let n = vec![0xc5u8; 256];
        assert_eq!(
            VerifyingKey::from_rsa_components(&n, &[2], Algorithm::RS256)
                .unwrap_err()
                .code(),
            "invalid_key"
        );
        assert_eq!(
            VerifyingKey::from_rsa_components(&n, &[1], Algorithm::RS256)
                .unwrap_err()
                .code(),
            "invalid_key"
        );
    }

    #[test]
    fn rsa_components_with_ec_algorithm_is_a_mismatch() {
        let n = vec![0xc5u8; 256];
        let err = VerifyingKey::from_rsa_components(&n, &[1, 0, 1], Algorithm::ES256).unwrap_err();
        assert_eq!(err.code(), "key_algorithm_mismatch");
    }

    #[test]
    fn ec_coordinates_of_wrong_length_are_rejected() {
        let err =
            VerifyingKey::from_ec_coordinates(&[1; 32], &[1; 31], Algorithm::ES256).unwrap_err();
        assert_eq!(err.code(), "invalid_key");
        let err =
            VerifyingKey::from_ec_coordinates(&[1; 32], &[1; 32], Algorithm::ES384).unwrap_err();
        assert_eq!(err.code(), "invalid_key");
    }
}
