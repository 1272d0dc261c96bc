//! A minimal, strict DER reader: just enough to unwrap SubjectPublicKeyInfo and
//! PKCS#1 `RSAPublicKey` structures for ring, which takes neither directly for RSA.

use crate::Error;

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_NULL: u8 = 0x05;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;

/// DER encodings of the object identifiers we recognise.
pub(crate) const OID_RSA_ENCRYPTION: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
pub(crate) const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
pub(crate) const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(crate) const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn bad(found: impl Into<String>) -> Error {
    Error::invalid_key("well-formed DER", found)
}

/// A cursor over DER input.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Reader { input }
    }

    /// Reads one element with the given tag and returns its contents.
    pub(crate) fn read(&mut self, tag: u8) -> Result<&'a [u8], Error> {
        let (&found_tag, rest) = self
            .input
            .split_first()
            .ok_or_else(|| bad("end of input"))?;
        if found_tag != tag {
            return Err(bad(format!(
                "tag 0x{found_tag:02x} where 0x{tag:02x} was expected"
            )));
        }
        let (&first, mut rest) = rest
            .split_first()
            .ok_or_else(|| bad("end of input in length"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err(bad("indefinite or oversized length"));
            }
            if rest.len() < count {
                return Err(bad("end of input in length"));
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            if bytes[0] == 0 {
                return Err(bad("non-minimal length encoding"));
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            if len < 0x80 {
                return Err(bad("non-minimal length encoding"));
            }
            len
        };
        if rest.len() < len {
            return Err(bad(format!(
                "length {len} beyond the {} remaining bytes",
                rest.len()
            )));
        }
        let (content, after) = rest.split_at(len);
        self.input = after;
        Ok(content)
    }

    /// Reads an optional element: returns `None` when the next tag differs or input is empty.
    pub(crate) fn read_optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, Error> {
        match self.input.first() {
            Some(&t) if t == tag => self.read(tag).map(Some),
            _ => Ok(None),
        }
    }

    /// Reads a non-negative INTEGER and returns its magnitude without leading zeros.
    pub(crate) fn read_unsigned_integer(&mut self) -> Result<&'a [u8], Error> {
        let bytes = self.read(TAG_INTEGER)?;
        match bytes {
            [] => Err(bad("empty INTEGER")),
            [first, ..] if first & 0x80 != 0 => Err(bad("negative INTEGER")),
            [0, second, ..] if second & 0x80 == 0 => Err(bad("non-minimal INTEGER")),
            [0, rest @ ..] => Ok(rest),
            _ => Ok(bytes),
        }
    }

    /// Requires that all input was consumed.
    pub(crate) fn finish(&self) -> Result<(), Error> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(bad("trailing bytes after the structure"))
        }
    }
}

/// Reads a BIT STRING whose unused-bits byte is zero and returns the bits.
pub(crate) fn bit_string_bytes(content: &[u8]) -> Result<&[u8], Error> {
    match content.split_first() {
        Some((0, rest)) => Ok(rest),
        _ => Err(bad("BIT STRING with unused bits")),
    }
}

/// A public key unwrapped from SubjectPublicKeyInfo.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SpkiKey<'a> {
    /// PKCS#1 RSAPublicKey contents: modulus and exponent without leading zeros.
    Rsa { n: &'a [u8], e: &'a [u8] },
    /// Uncompressed EC point on P-256.
    P256(&'a [u8]),
    /// Uncompressed EC point on P-384.
    P384(&'a [u8]),
    /// Raw Ed25519 public key.
    Ed25519(&'a [u8]),
}

/// Parses a PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
pub(crate) fn parse_rsa_public_key(der: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    let mut outer = Reader::new(der);
    let mut seq = Reader::new(outer.read(TAG_SEQUENCE)?);
    outer.finish()?;
    let n = seq.read_unsigned_integer()?;
    let e = seq.read_unsigned_integer()?;
    seq.finish()?;
    Ok((n, e))
}

/// Parses `SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }`.
pub(crate) fn parse_spki(der: &[u8]) -> Result<SpkiKey<'_>, Error> {
    let mut outer = Reader::new(der);
    let mut spki = Reader::new(outer.read(TAG_SEQUENCE)?);
    outer.finish()?;
    let mut alg_id = Reader::new(spki.read(TAG_SEQUENCE)?);
    let key_bits = bit_string_bytes(spki.read(TAG_BIT_STRING)?)?;
    spki.finish()?;
    let oid = alg_id.read(TAG_OID)?;
    let key = if oid == OID_RSA_ENCRYPTION {
        if let Some(params) = alg_id.read_optional(TAG_NULL)?
            && !params.is_empty()
        {
            return Err(bad("non-empty NULL parameters"));
        }
        let (n, e) = parse_rsa_public_key(key_bits)?;
        SpkiKey::Rsa { n, e }
    } else if oid == OID_EC_PUBLIC_KEY {
        let curve = alg_id.read(TAG_OID)?;
        if curve == OID_P256 {
            SpkiKey::P256(key_bits)
        } else if curve == OID_P384 {
            SpkiKey::P384(key_bits)
        } else {
            return Err(Error::UnsupportedKey {
                found: "EC key on an unsupported curve".to_owned(),
            });
        }
    } else if oid == OID_ED25519 {
        SpkiKey::Ed25519(key_bits)
    } else {
        return Err(Error::UnsupportedKey {
            found: "SubjectPublicKeyInfo with an unsupported algorithm OID".to_owned(),
        });
    };
    alg_id.finish()?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_spki_parses() {
        // RFC 8410 §10.1 example public key.
        let der = [
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00, 0x19, 0xbf,
            0x44, 0x09, 0x69, 0x84, 0xcd, 0xfe, 0x85, 0x41, 0xba, 0xc1, 0x67, 0xdc, 0x3b, 0x96,
            0xc8, 0x50, 0x86, 0xaa, 0x30, 0xb6, 0xb6, 0xcb, 0x0c, 0x5c, 0x38, 0xad, 0x70, 0x31,
            0x66, 0xe1,
        ];
        match parse_spki(&der).unwrap() {
            SpkiKey::Ed25519(k) => assert_eq!(k.len(), 32),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn truncated_and_trailing_input_is_rejected() {
        assert_eq!(
            parse_spki(&[0x30, 0x05, 0x30]).unwrap_err().code(),
            "invalid_key"
        );
        assert_eq!(
            parse_rsa_public_key(&[0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03, 0x00])
                .unwrap_err()
                .code(),
            "invalid_key"
        );
        assert_eq!(
            parse_rsa_public_key(&[0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x03]).unwrap(),
            (&[5u8][..], &[3u8][..])
        );
    }

    #[test]
    fn negative_and_non_minimal_integers_are_rejected() {
        for der in [
            &[0x30, 0x06, 0x02, 0x01, 0x85, 0x02, 0x01, 0x03][..],
            &[0x30, 0x07, 0x02, 0x02, 0x00, 0x05, 0x02, 0x01, 0x03][..],
        ] {
            assert_eq!(parse_rsa_public_key(der).unwrap_err().code(), "invalid_key");
        }
        assert_eq!(
            Reader::new(&[0x02, 0x81, 0x05, 1, 2, 3, 4, 5])
                .read(TAG_INTEGER)
                .unwrap_err()
                .code(),
            "invalid_key"
        );
    }
}
