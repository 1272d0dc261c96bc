//! Unguessable values from the operating system's CSPRNG (ring `SystemRandom`).

use ring::rand::{SecureRandom, SystemRandom};

use crate::error::ToolError;

/// `N` random bytes.
pub(crate) fn bytes<const N: usize>(rng: &SystemRandom) -> Result<[u8; N], ToolError> {
    let mut out = [0u8; N];
    rng.fill(&mut out)
        .map_err(|_| ToolError::config("the operating system's random number generator failed"))?;
    Ok(out)
}

/// A 256-bit random value as 43 base64url characters (nonce, launch id).
pub(crate) fn token(rng: &SystemRandom) -> Result<String, ToolError> {
    Ok(lti_jose::b64::encode(&bytes::<32>(rng)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let rng = SystemRandom::new();
        let a = token(&rng).unwrap();
        let b = token(&rng).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(lti_jose::b64::decode(&a).unwrap().len(), 32);
    }
}
