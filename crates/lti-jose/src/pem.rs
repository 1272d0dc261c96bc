//! Minimal PEM (RFC 7468) decoding for keys. The decoded DER is zeroized on drop.

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::Error;

/// Decodes the first PEM block in `input` and returns its label and DER contents.
pub(crate) fn decode(input: &str) -> Result<(String, Zeroizing<Vec<u8>>), Error> {
    const BEGIN: &str = "-----BEGIN ";
    const DASHES: &str = "-----";
    let bad = |found: &str| {
        Error::invalid_key(
            "a PEM block (-----BEGIN ...----- base64 -----END ...-----)",
            found,
        )
    };
    let start = input.find(BEGIN).ok_or_else(|| bad("no BEGIN line"))?;
    let after_begin = &input[start + BEGIN.len()..];
    let label_end = after_begin
        .find(DASHES)
        .ok_or_else(|| bad("an unterminated BEGIN line"))?;
    let label = &after_begin[..label_end];
    if label.is_empty()
        || label.len() > 40
        || !label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b' ' || b.is_ascii_digit())
    {
        return Err(bad("an invalid label"));
    }
    let body_and_rest = &after_begin[label_end + DASHES.len()..];
    let end_marker = format!("-----END {label}-----");
    let body_end = body_and_rest
        .find(&end_marker)
        .ok_or_else(|| bad("no matching END line"))?;
    let body = &body_and_rest[..body_end];
    if body.contains(':') {
        return Err(Error::invalid_key(
            "an unencrypted PEM block",
            "PEM headers (encrypted keys are not supported)",
        ));
    }
    let compact: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    let der = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| bad("invalid base64 in the body"))?;
    Ok((label.to_owned(), Zeroizing::new(der)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_label_and_body() {
        let (label, der) =
            decode("junk\n-----BEGIN PUBLIC KEY-----\nAAEC\nAw==\n-----END PUBLIC KEY-----\n")
                .unwrap();
        assert_eq!(label, "PUBLIC KEY");
        assert_eq!(der.as_slice(), &[0, 1, 2, 3]);
    }

    #[test]
    fn mismatched_end_is_rejected() {
        let err =
            decode("-----BEGIN PUBLIC KEY-----\nAAEC\n-----END PRIVATE KEY-----\n").unwrap_err();
        assert!(
            matches!(err, Error::InvalidKey { ref found, .. } if found.contains("END")),
            "{err}"
        );
    }

    #[test]
    fn encrypted_pem_is_rejected() {
        let err = decode("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAEC\n-----END RSA PRIVATE KEY-----").unwrap_err();
        assert!(
            matches!(err, Error::InvalidKey { ref found, .. } if found.contains("encrypted")),
            "{err}"
        );
    }
}
