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
    // The table decoder accepts exactly the canonical unpadded encodings; anything it
    // refuses goes through the `base64` engine, which names the problem (and
    // refuses it too: the property tests check that both agree on every input).
    decode_canonical(s.as_bytes()).ok_or_else(|| match ENGINE.decode(s) {
        Err(e) => Error::Base64 {
            found: describe(&e),
        },
        Ok(_) => Error::Base64 {
            found: "an encoding the strict decoder refuses".to_owned(),
        },
    })
}

/// Marks bytes outside the URL-safe alphabet in [`DECODE`].
const INVALID: u8 = 0xFF;

/// Sextet value of each URL-safe alphabet byte; [`INVALID`] for every other byte
/// (including `=`, `+`, `/` and whitespace).
const DECODE: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Set in every [`SHIFTED`] entry of a byte outside the alphabet; above the 24
/// data bits of a group of four symbols.
const BAD: u32 = 1 << 24;

/// For each position in a group of four symbols, the sextet of every byte already
/// shifted into place (`<< 18`, `<< 12`, `<< 6`, `<< 0`), or [`BAD`]: a group
/// decodes with four lookups and three ORs.
const SHIFTED: [[u32; 256]; 4] = {
    let mut tables = [[BAD; 256]; 4];
    let mut byte = 0;
    while byte < 256 {
        let v = DECODE[byte];
        if v != INVALID {
            tables[0][byte] = (v as u32) << 18;
            tables[1][byte] = (v as u32) << 12;
            tables[2][byte] = (v as u32) << 6;
            tables[3][byte] = v as u32;
        }
        byte += 1;
    }
    tables
};

/// Strict canonical decoding, or `None` for anything else: a byte outside the
/// alphabet, a length of 1 mod 4, or non-zero trailing bits in the last symbol.
fn decode_canonical(input: &[u8]) -> Option<Vec<u8>> {
    let tail = input.len() % 4;
    if tail == 1 {
        return None;
    }
    let full = input.len() - tail;
    let out_len = full / 4 * 3 + tail.saturating_sub(1);
    // Groups of 8 symbols decode with 8 lookups into one u64 whose top 6 bytes are
    // written straight into the output (zeroed once, not grown), bounds checked by
    // the chunk iterators rather than per byte.
    let mut out = vec![0u8; out_len];
    let quad = |q: &[u8]| {
        SHIFTED[0][usize::from(q[0])]
            | SHIFTED[1][usize::from(q[1])]
            | SHIFTED[2][usize::from(q[2])]
            | SHIFTED[3][usize::from(q[3])]
    };
    // OR of every group: BAD is set iff some byte was outside the alphabet.
    let mut seen = 0u32;
    let mut pos = 0;
    let mut groups = input[..full].chunks_exact(8);
    for (group, dst) in (&mut groups).zip(out.chunks_exact_mut(6)) {
        let (hi, lo) = (quad(&group[..4]), quad(&group[4..]));
        seen |= hi | lo;
        let n = u64::from(hi) << 40 | u64::from(lo) << 16;
        dst.copy_from_slice(&n.to_be_bytes()[..6]);
        pos += 6;
    }
    if let rest @ [_, _, _, _] = groups.remainder() {
        let n = quad(rest);
        seen |= n;
        out[pos..pos + 3].copy_from_slice(&n.to_be_bytes()[1..]);
        pos += 3;
    }
    match input[full..] {
        [] => {}
        [x, y] => {
            let n = SHIFTED[0][usize::from(x)] | SHIFTED[1][usize::from(y)];
            seen |= n;
            // The last symbol's low 4 bits are padding and must be zero.
            if n & 0xFFFF != 0 {
                return None;
            }
            out[pos] = (n >> 16) as u8;
            pos += 1;
        }
        [x, y, z] => {
            let n = SHIFTED[0][usize::from(x)]
                | SHIFTED[1][usize::from(y)]
                | SHIFTED[2][usize::from(z)];
            seen |= n;
            // The last symbol's low 2 bits are padding and must be zero.
            if n & 0xFF != 0 {
                return None;
            }
            out[pos..pos + 2].copy_from_slice(&[(n >> 16) as u8, (n >> 8) as u8]);
            pos += 2;
        }
        _ => return None,
    }
    debug_assert_eq!(pos, out_len);
    (seen & BAD == 0).then_some(out)
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

    /// The reference: the `base64` engine configured as strictly as the fast path.
    fn reference(s: &str) -> Option<Vec<u8>> {
        ENGINE.decode(s).ok()
    }

    proptest::proptest! {
        #[test]
        fn table_decoder_agrees_with_the_engine_on_encodings(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let text = encode(&bytes);
            proptest::prop_assert_eq!(decode_canonical(text.as_bytes()), Some(bytes));
        }

        #[test]
        fn table_decoder_agrees_with_the_engine_on_any_text(text in "[A-Za-z0-9_=+/ \\n-]{0,160}") {
            proptest::prop_assert_eq!(decode_canonical(text.as_bytes()), reference(&text));
            proptest::prop_assert_eq!(decode(&text).ok(), reference(&text));
        }

        #[test]
        fn table_decoder_agrees_with_the_engine_on_any_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let lossy = String::from_utf8_lossy(&bytes);
            proptest::prop_assert_eq!(decode_canonical(lossy.as_bytes()), reference(&lossy));
        }
    }

    #[test]
    fn every_non_alphabet_byte_is_refused_in_every_position() {
        for byte in 0..=255u8 {
            if DECODE[usize::from(byte)] != INVALID {
                continue;
            }
            for pos in 0..8 {
                let mut text = b"QUJDREVG".to_vec();
                text[pos] = byte;
                assert_eq!(decode_canonical(&text), None, "byte {byte:#x} at {pos}");
            }
        }
        // Past the first 64-symbol block too, and in the groups after the last block.
        let long = encode(&(0..=255u8).cycle().take(150).collect::<Vec<u8>>());
        assert_eq!(long.len(), 200);
        for byte in [b'=', b'+', b'/', b' ', 0, 0x80, 0xFF] {
            for pos in 0..long.len() {
                let mut text = long.clone().into_bytes();
                text[pos] = byte;
                assert_eq!(decode_canonical(&text), None, "byte {byte:#x} at {pos}");
            }
        }
    }

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
