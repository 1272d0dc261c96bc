//! Strict base64url without padding (RFC 7515 §2).
//!
//! Decoding rejects padding (`=`), whitespace, characters outside the URL-safe
//! alphabet, impossible lengths and non-zero trailing bits, so every byte string
//! has exactly one accepted encoding.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use crate::Error;

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Encodes bytes as base64url without padding.
pub fn encode(bytes: &[u8]) -> String {
    ENGINE.encode(bytes)
}

/// Appends the base64url encoding of `bytes` to `out`.
pub(crate) fn encode_into(bytes: &[u8], out: &mut String) {
    ENGINE.encode_string(bytes, out);
}

/// Decodes strict base64url without padding.
///
/// # Errors
/// [`Error::Base64`] on padding, whitespace, non-alphabet bytes, a length that no
/// encoding can have, or non-zero trailing bits.
pub fn decode(s: &str) -> Result<Vec<u8>, Error> {
    ENGINE.decode(s).map_err(|e| Error::Base64 {
        found: describe(&e),
    })
}

fn describe(err: &base64::DecodeError) -> String {
    match err {
        base64::DecodeError::InvalidByte(offset, byte) => match byte {
            b'=' => format!("padding character '=' at offset {offset}"),
            b if b.is_ascii_whitespace() => format!("whitespace at offset {offset}"),
            b if b.is_ascii_graphic() => format!("character {:?} at offset {offset}", *b as char),
            b => format!("byte 0x{b:02x} at offset {offset}"),
        },
        base64::DecodeError::InvalidLength(len) => format!("impossible encoded length {len}"),
        base64::DecodeError::InvalidLastSymbol(offset, _) => {
            format!("non-canonical last symbol (trailing bits set) at offset {offset}")
        }
        base64::DecodeError::InvalidPadding => "padding".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_all_lengths() {
        for len in 0..70u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }
    }

    #[test]
    fn padding_is_rejected() {
        let err = decode("YQ==").unwrap_err();
        assert_eq!(err.code(), "base64");
        assert!(err.to_string().contains("padding"), "{err}");
    }

    #[test]
    fn whitespace_is_rejected() {
        assert!(
            matches!(decode("YW Jj"), Err(Error::Base64 { found }) if found.contains("whitespace"))
        );
        assert!(
            matches!(decode("YWJj\n"), Err(Error::Base64 { found }) if found.contains("whitespace"))
        );
    }

    #[test]
    fn standard_alphabet_is_rejected() {
        assert!(matches!(decode("a+b/"), Err(Error::Base64 { found }) if found.contains("'+'")));
    }

    #[test]
    fn impossible_length_is_rejected() {
        assert!(
            matches!(decode("abcde"), Err(Error::Base64 { found }) if found.contains("length"))
        );
    }

    #[test]
    fn non_canonical_trailing_bits_are_rejected() {
        // "YR" decodes to 'a' only if the trailing bits are ignored; canonical is "YQ".
        assert!(matches!(decode("YR"), Err(Error::Base64 { found }) if found.contains("trailing")));
        assert_eq!(decode("YQ").unwrap(), b"a");
    }
}
