//! The platform secret and the values derived from it: pseudonymous subjects, and
//! the sealed values the platform hands to tools and browsers (message hints,
//! access tokens, deep-linking `data`), which are encrypted and authenticated so
//! that nobody who sees them (the tool, the browser's history, a proxy's log)
//! learns what they carry.

use std::fmt;

use lti_registry::{AppKey, SecretCipher};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{PlatformError, Result};

/// Minimum length of a [`PlatformSecret`] in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Longest sealed value accepted for opening (bytes).
const MAX_SEALED_LEN: usize = 16 * 1024;

/// The key id the sealing ciphers carry (one key per purpose, all derived from the
/// platform secret).
const SEAL_KEY_ID: &str = "ps";

/// The platform's long-term secret. Keep it stable: pseudonymous `sub` values, message
/// hints and access tokens are derived from it. `Debug` prints `[redacted]`.
pub struct PlatformSecret {
    subject: hmac::Key,
    hint: SecretCipher,
    token: SecretCipher,
    dl_data: SecretCipher,
    registration: SecretCipher,
}

impl fmt::Debug for PlatformSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlatformSecret([redacted])")
    }
}

/// What a sealed value is for. Each purpose has its own key derived from the
/// platform secret, its own label bound as associated data, and its own prefix, so
/// a value sealed for one purpose never opens as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    MessageHint,
    AccessToken,
    DeepLinkData,
    RegistrationToken,
}

impl Purpose {
    const ALL: [Purpose; 4] = [
        Purpose::MessageHint,
        Purpose::AccessToken,
        Purpose::DeepLinkData,
        Purpose::RegistrationToken,
    ];

    /// The visible prefix of sealed values (`<prefix>.<ciphertext>`).
    fn prefix(self) -> &'static str {
        match self {
            Purpose::MessageHint => "lti-mh",
            Purpose::AccessToken => "lti-at",
            Purpose::DeepLinkData => "lti-dl",
            Purpose::RegistrationToken => "lti-rt",
        }
    }

    /// The key derivation label.
    fn key_label(self) -> &'static [u8] {
        match self {
            Purpose::MessageHint => b"lti-platform/message-hint/aead/v2",
            Purpose::AccessToken => b"lti-platform/access-token/aead/v2",
            Purpose::DeepLinkData => b"lti-platform/deep-link-data/aead/v2",
            Purpose::RegistrationToken => b"lti-platform/registration-token/aead/v1",
        }
    }

    /// The associated data every value of this purpose is bound to.
    fn context(self) -> &'static str {
        match self {
            Purpose::MessageHint => "lti-platform sealed value: lti_message_hint",
            Purpose::AccessToken => "lti-platform sealed value: access token",
            Purpose::DeepLinkData => "lti-platform sealed value: deep-linking data",
            Purpose::RegistrationToken => "lti-platform sealed value: registration token",
        }
    }
}

/// Why a sealed value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unseal {
    /// Not `<prefix>.<ciphertext>`, too long, or its content is not what this
    /// purpose seals.
    Malformed,
    /// Sealed by this platform for another purpose.
    OtherPurpose,
    /// Fails authentication: forged, altered, truncated, sealed under another
    /// platform secret (or by an older release, which only signed values).
    NotAuthentic,
}

impl Unseal {
    /// The refusal, for the error of the value's purpose.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Unseal::Malformed => "expected a value issued by this platform, found a malformed one",
            Unseal::OtherPurpose => {
                "expected a value issued by this platform for this purpose, found one issued for another purpose"
            }
            Unseal::NotAuthentic => {
                "expected a value issued by this platform, found one that fails authentication (forged, altered, or sealed under another platform secret)"
            }
        }
    }
}

impl PlatformSecret {
    /// Uses `bytes` (at least [`MIN_SECRET_LEN`] random bytes) as the secret.
    ///
    /// # Errors
    /// [`PlatformError::InvalidConfig`] if `bytes` is shorter than [`MIN_SECRET_LEN`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(PlatformError::InvalidConfig {
                field: "platform secret",
                expected: format!("at least {MIN_SECRET_LEN} bytes"),
                found: format!("{} bytes", bytes.len()),
            });
        }
        let root = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        let derive = |label: &[u8]| hmac::sign(&root, label);
        let cipher = |purpose: Purpose| {
            let key = derive(purpose.key_label());
            AppKey::new(SEAL_KEY_ID, key.as_ref())
                .and_then(|k| SecretCipher::aes256gcm(k, Vec::new()))
                .map_err(|e| PlatformError::backend("sealing key", e))
        };
        Ok(Self {
            subject: hmac::Key::new(
                hmac::HMAC_SHA256,
                derive(b"lti-platform/subject/v1").as_ref(),
            ),
            hint: cipher(Purpose::MessageHint)?,
            token: cipher(Purpose::AccessToken)?,
            dl_data: cipher(Purpose::DeepLinkData)?,
            registration: cipher(Purpose::RegistrationToken)?,
        })
    }

    /// A fresh random secret (for tests and throw-away dev platforms: pseudonymous ids
    /// change on every restart).
    ///
    /// # Errors
    /// [`PlatformError::Backend`] if the system RNG fails.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| PlatformError::backend("system RNG", "no random bytes"))?;
        Self::from_bytes(&bytes)
    }

    fn cipher(&self, purpose: Purpose) -> &SecretCipher {
        match purpose {
            Purpose::MessageHint => &self.hint,
            Purpose::AccessToken => &self.token,
            Purpose::DeepLinkData => &self.dl_data,
            Purpose::RegistrationToken => &self.registration,
        }
    }

    /// The stable pseudonymous subject of `user_id` for `client_id`.
    pub(crate) fn subject(&self, client_id: &str, user_id: &str) -> String {
        let mut ctx = hmac::Context::with_key(&self.subject);
        ctx.update(&(client_id.len() as u64).to_be_bytes());
        ctx.update(client_id.as_bytes());
        ctx.update(user_id.as_bytes());
        let tag = ctx.sign();
        lti_jose::b64::encode(&tag.as_ref()[..20])
    }

    /// Seals `value` as `<prefix>.<ciphertext>`: its JSON encrypted and authenticated
    /// with AES-256-GCM under the purpose's key, a fresh random nonce, and the
    /// purpose's label as associated data. Nothing of `value` is readable without the
    /// platform secret.
    pub(crate) fn seal<T: Serialize>(&self, purpose: Purpose, value: &T) -> Result<String> {
        let json = serde_json::to_string(value).map_err(|e| PlatformError::MalformedBody {
            what: "sealed value",
            reason: e.to_string(),
        })?;
        let sealed = self
            .cipher(purpose)
            .encrypt(&json, purpose.context())
            .map_err(|e| PlatformError::backend("sealing", e))?;
        Ok(format!("{}.{sealed}", purpose.prefix()))
    }

    /// Opens a value sealed by [`PlatformSecret::seal`] for `purpose`.
    pub(crate) fn open<T: DeserializeOwned>(
        &self,
        purpose: Purpose,
        sealed: &str,
    ) -> std::result::Result<T, Unseal> {
        if sealed.len() > MAX_SEALED_LEN {
            return Err(Unseal::Malformed);
        }
        let (prefix, body) = sealed.split_once('.').ok_or(Unseal::Malformed)?;
        if prefix != purpose.prefix() {
            return Err(if Purpose::ALL.iter().any(|p| p.prefix() == prefix) {
                Unseal::OtherPurpose
            } else {
                Unseal::Malformed
            });
        }
        let json = self
            .cipher(purpose)
            .decrypt(body, purpose.context())
            .map_err(|_| Unseal::NotAuthentic)?;
        serde_json::from_str(json.expose()).map_err(|_| Unseal::Malformed)
    }
}

/// A fresh random identifier (128 bits, base64url).
pub(crate) fn random_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PlatformError::backend("system RNG", "no random bytes"))?;
    Ok(lti_jose::b64::encode(&bytes))
}

/// Constant-time string equality.
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Payload {
        user: String,
        role: String,
        context: String,
    }

    fn payload() -> Payload {
        Payload {
            user: "real-user-4711".to_owned(),
            role: "membership#Instructor".to_owned(),
            context: "course-secret-99".to_owned(),
        }
    }

    fn secret(byte: u8) -> PlatformSecret {
        PlatformSecret::from_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn sealed_values_reveal_nothing_and_use_fresh_nonces() {
        let s = secret(7);
        let a = s.seal(Purpose::MessageHint, &payload()).unwrap();
        let b = s.seal(Purpose::MessageHint, &payload()).unwrap();
        assert!(a.starts_with("lti-mh."), "{a}");
        assert_ne!(a, b, "a fresh nonce every time");
        // Everything after the prefix is ciphertext (decoding attempts on every part
        // are in tests/privacy.rs).
        let body = lti_jose::b64::decode(a.rsplit(':').next().unwrap()).unwrap();
        let json = serde_json::to_vec(&payload()).unwrap();
        assert_eq!(body.len(), 12 + json.len() + 16, "nonce, ciphertext, tag");
        assert!(!a.contains("real-user-4711"));
        assert_eq!(
            s.open::<Payload>(Purpose::MessageHint, &a).unwrap(),
            payload()
        );
    }

    #[test]
    fn altered_truncated_or_foreign_values_fail_authentication() {
        let s = secret(7);
        let sealed = s.seal(Purpose::DeepLinkData, &payload()).unwrap();
        let open = |v: &str| s.open::<Payload>(Purpose::DeepLinkData, v).unwrap_err();
        // Flip one character of the ciphertext (the last part).
        let mut altered = sealed.clone().into_bytes();
        let i = altered.len() - 5;
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            open(&String::from_utf8(altered).unwrap()),
            Unseal::NotAuthentic
        );
        assert_eq!(open(&sealed[..sealed.len() - 4]), Unseal::NotAuthentic);
        let foreign = secret(8).seal(Purpose::DeepLinkData, &payload()).unwrap();
        assert_eq!(
            open(&foreign),
            Unseal::NotAuthentic,
            "another platform secret"
        );
        assert_eq!(open("no-separator"), Unseal::Malformed);
        assert_eq!(open("other.abc"), Unseal::Malformed);
        assert_eq!(open(&"x".repeat(MAX_SEALED_LEN + 1)), Unseal::Malformed);
        // A value in the earlier signed-only format is refused, not read.
        let signed_only = format!(
            "lti-dl.{}.{}",
            lti_jose::b64::encode(br#"{"user":"u"}"#),
            lti_jose::b64::encode(&[0u8; 32])
        );
        assert_eq!(open(&signed_only), Unseal::NotAuthentic);
    }

    #[test]
    fn a_value_sealed_for_one_purpose_never_opens_as_another() {
        let s = secret(7);
        let hint = s.seal(Purpose::MessageHint, &payload()).unwrap();
        for other in [Purpose::AccessToken, Purpose::DeepLinkData] {
            assert_eq!(
                s.open::<Payload>(other, &hint).unwrap_err(),
                Unseal::OtherPurpose
            );
            // Relabelled with the other purpose's prefix: its key and associated data
            // differ, so authentication fails.
            let (_, body) = hint.split_once('.').unwrap();
            let relabelled = format!("{}.{body}", other.prefix());
            assert_eq!(
                s.open::<Payload>(other, &relabelled).unwrap_err(),
                Unseal::NotAuthentic
            );
        }
    }

    #[test]
    fn content_of_another_shape_is_malformed() {
        let s = secret(7);
        let sealed = s.seal(Purpose::AccessToken, &"just a string").unwrap();
        assert_eq!(
            s.open::<Payload>(Purpose::AccessToken, &sealed)
                .unwrap_err(),
            Unseal::Malformed
        );
    }

    #[test]
    fn pseudonymous_subjects_stay_what_earlier_releases_derived() {
        // HMAC-SHA256 under HMAC-SHA256(secret, "lti-platform/subject/v1") of
        // len(client_id) as u64 BE || client_id || user_id, first 20 bytes, base64url:
        // computed independently; tools keyed on `sub` must never see it change.
        assert_eq!(
            secret(7).subject("tool-client-1", "u-42"),
            "p4rVQb0G8rwPNfY_bZI7Kcytx5A"
        );
        assert_ne!(
            secret(7).subject("tool-client-2", "u-42"),
            secret(7).subject("tool-client-1", "u-42")
        );
    }
}
