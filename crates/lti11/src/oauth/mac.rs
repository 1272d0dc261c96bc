//! The keyed MAC behind an OAuth signature.
//!
//! HMAC-SHA1 runs on RustCrypto's `hmac` + `sha1`: its SHA-1 chooses the
//! SHA-NI compression function at run time where the CPU has it (ring 0.17
//! ships only portable SHA-1 code, about four times slower per launch).
//! HMAC-SHA256 stays on ring, whose SHA-256 already has hardware paths.
//! `oauth_body_hash` uses the same SHA-1, so the crate has one SHA-1.

use hmac::{Hmac, KeyInit as _, Mac as _};
use ring::hmac as ring_hmac;
use sha1::{Digest as _, Sha1};

use super::SignatureMethod;

/// Longest tag of any [`SignatureMethod`] (HMAC-SHA256: 32 bytes).
const MAX_TAG_LEN: usize = 32;

/// An HMAC keyed for one signature method, fed with [`SignatureMac::update`].
pub(crate) enum SignatureMac {
    Sha1(Hmac<Sha1>),
    Sha256(ring_hmac::Context),
}

impl SignatureMac {
    /// Keys the MAC of `method` with `key` (any length; longer than a block
    /// is hashed first, as HMAC defines).
    pub(crate) fn new(method: SignatureMethod, key: &[u8]) -> Self {
        match method {
            SignatureMethod::HmacSha1 => {
                // `new_from_slice` takes keys of any length for HMAC.
                let mac = Hmac::<Sha1>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
                SignatureMac::Sha1(mac)
            }
            SignatureMethod::HmacSha256 => SignatureMac::Sha256(ring_hmac::Context::with_key(
                &ring_hmac::Key::new(ring_hmac::HMAC_SHA256, key),
            )),
        }
    }

    /// Feeds `data`.
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            SignatureMac::Sha1(mac) => mac.update(data),
            SignatureMac::Sha256(ctx) => ctx.update(data),
        }
    }

    /// The tag of everything fed.
    pub(crate) fn finish(self) -> Tag {
        let mut tag = Tag {
            bytes: [0; MAX_TAG_LEN],
            len: 0,
        };
        match self {
            SignatureMac::Sha1(mac) => tag.set(&mac.finalize().into_bytes()),
            SignatureMac::Sha256(ctx) => tag.set(ctx.sign().as_ref()),
        }
        tag
    }
}

/// A MAC tag (20 bytes for HMAC-SHA1, 32 for HMAC-SHA256).
#[derive(Clone, Copy)]
pub(crate) struct Tag {
    bytes: [u8; MAX_TAG_LEN],
    len: usize,
}

impl Tag {
    fn set(&mut self, bytes: &[u8]) {
        self.bytes[..bytes.len()].copy_from_slice(bytes);
        self.len = bytes.len();
    }
}

impl AsRef<[u8]> for Tag {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// SHA-1 of `data` (for `oauth_body_hash`).
pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The MAC of `message` fed in pieces cut at `cuts` (offsets taken
    /// modulo the length), so block boundaries fall anywhere.
    fn mac_in_pieces(method: SignatureMethod, key: &[u8], message: &[u8], cuts: &[usize]) -> Tag {
        let mut offsets: Vec<usize> = cuts.iter().map(|c| c % (message.len() + 1)).collect();
        offsets.sort_unstable();
        let mut mac = SignatureMac::new(method, key);
        let mut start = 0;
        for end in offsets.into_iter().chain([message.len()]) {
            mac.update(&message[start..end]);
            start = end;
        }
        mac.finish()
    }

    /// Lower-case hex of `bytes`.
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202_vectors() {
        // Test case 2 (short key) and 6 (key longer than a block).
        let cases: [(&[u8], &[u8], &str); 2] = [
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "aa4ae5e15272d00e95705637ce8a3b55ed402112",
            ),
        ];
        for (key, data, expected) in cases {
            let mut mac = SignatureMac::new(SignatureMethod::HmacSha1, key);
            mac.update(data);
            assert_eq!(hex(mac.finish().as_ref()), expected);
        }
    }

    #[test]
    fn sha1_of_abc_matches_fips_180_example() {
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    proptest::proptest! {
        #[test]
        fn hmac_fed_in_pieces_agrees_with_ring_on_arbitrary_keys_and_messages(
            key in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            cuts in proptest::collection::vec(proptest::prelude::any::<usize>(), 0..8),
            sha256 in proptest::prelude::any::<bool>(),
        ) {
            // For HMAC-SHA1 these are two independent implementations
            // (RustCrypto's and ring's); for HMAC-SHA256 it checks the
            // piecewise feeding against ring's one-shot call.
            let (method, algorithm) = if sha256 {
                (SignatureMethod::HmacSha256, ring_hmac::HMAC_SHA256)
            } else {
                (SignatureMethod::HmacSha1, ring_hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY)
            };
            let ours = mac_in_pieces(method, &key, &message, &cuts);
            let theirs = ring_hmac::sign(&ring_hmac::Key::new(algorithm, &key), &message);
            proptest::prop_assert_eq!(ours.as_ref(), theirs.as_ref());
        }

        #[test]
        fn sha1_agrees_with_ring(message in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000)) {
            let theirs = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &message);
            proptest::prop_assert_eq!(&sha1(&message)[..], theirs.as_ref());
        }
    }
}
