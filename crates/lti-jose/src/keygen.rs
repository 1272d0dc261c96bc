//! RSA key generation (feature `keygen`). The `rsa` crate only generates and exports
//! the key; ring loads it back and does all signing.

use ring::rand::{SecureRandom, SystemRandom};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::rand_core::{CryptoRng, Error as RandError, RngCore, impls};

use crate::{Algorithm, Error, SigningKey};

/// Adapts ring's system RNG to the `rand_core` traits the `rsa` crate wants.
struct RingRng(SystemRandom);

impl RngCore for RingRng {
    fn next_u32(&mut self) -> u32 {
        impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // The OS RNG failing is unrecoverable; rand_core's infallible API leaves no other choice.
        #[allow(clippy::expect_used)]
        self.0
            .fill(dest)
            .expect("operating system random number generator failed");
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), RandError> {
        self.0
            .fill(dest)
            .map_err(|_| RandError::new(std::io::Error::other("system RNG failed")))
    }
}

impl CryptoRng for RingRng {}

pub(crate) fn generate_rsa(bits: usize) -> Result<(SigningKey, String), Error> {
    if ![2048, 3072, 4096].contains(&bits) {
        return Err(Error::KeyGeneration {
            reason: format!("expected 2048, 3072 or 4096 bits, found {bits}"),
        });
    }
    let private =
        rsa::RsaPrivateKey::new(&mut RingRng(SystemRandom::new()), bits).map_err(|e| {
            Error::KeyGeneration {
                reason: e.to_string(),
            }
        })?;
    let pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Error::KeyGeneration {
            reason: e.to_string(),
        })?;
    let key = SigningKey::from_pem(&pem, Algorithm::RS256)?;
    Ok((key, pem.to_string()))
}
