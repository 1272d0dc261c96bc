//! Encryption of secrets at rest (consumer secrets, tool private keys).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::{RegistryError, Result};
use crate::secret::SecretString;

const ENCRYPTED_PREFIX: &str = "enc:v1:";
const PLAINTEXT_PREFIX: &str = "plain:";
const AAD_LABEL: &[u8] = b"lti-registry secret v1\0";

/// A 256-bit application key with an id, used by [`SecretCipher`].
///
/// The id is stored next to each ciphertext so the key can be rotated: keep
/// the old key as a decrypt-only key until every record is re-encrypted.
pub struct AppKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppKey")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl AppKey {
    /// A key from 32 raw bytes. The id is 1..=32 characters of `[A-Za-z0-9_-]`.
    pub fn new(id: &str, key: &[u8]) -> Result<Self> {
        if id.is_empty()
            || id.len() > 32
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(RegistryError::InvalidInput {
                field: "app key id",
                expected: "1 to 32 characters of A-Z, a-z, 0-9, '-' or '_'",
                found: format!("{id:?}"),
            });
        }
        let bytes: [u8; 32] = key.try_into().map_err(|_| RegistryError::InvalidInput {
            field: "app key",
            expected: "32 bytes (AES-256)",
            found: format!("{} bytes", key.len()),
        })?;
        Ok(Self {
            id: id.to_owned(),
            key: Zeroizing::new(bytes),
        })
    }

    /// A key from its base64 (standard or URL-safe, padded or not) encoding.
    pub fn from_base64(id: &str, encoded: &str) -> Result<Self> {
        let trimmed = encoded.trim().trim_end_matches('=');
        let normalized: String = trimmed
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                c => c,
            })
            .collect();
        let raw = Zeroizing::new(URL_SAFE_NO_PAD.decode(normalized.as_bytes()).map_err(|_| {
            RegistryError::InvalidInput {
                field: "app key",
                expected: "base64 text",
                found: "text that is not base64".to_owned(),
            }
        })?);
        Self::new(id, &raw)
    }

    /// A fresh random key.
    pub fn generate(id: &str) -> Result<Self> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| RegistryError::Cipher {
                reason: "the system random generator failed".to_owned(),
            })?;
        Self::new(id, bytes.as_ref())
    }

    /// The key id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key bytes as URL-safe base64, for writing a freshly generated key to configuration.
    #[must_use]
    pub fn export_base64(&self) -> SecretString {
        SecretString::new(URL_SAFE_NO_PAD.encode(self.key.as_ref()))
    }
}

#[derive(Clone)]
enum Mode {
    Aes {
        encrypt_id: String,
        keys: Arc<Vec<(String, LessSafeKey)>>,
        rng: SystemRandom,
    },
    Plaintext,
}

/// Encrypts secrets before a store writes them and decrypts them on read.
///
/// Stored form: `enc:v1:<key id>:<base64url(nonce || ciphertext || tag)>`
/// with AES-256-GCM, a random 96-bit nonce, and the key id plus a
/// caller-supplied *context* (e.g. `"consumer:<key>"`) as associated data, so
/// a ciphertext copied to another row fails to decrypt. One key encrypts;
/// any number of older keys still decrypt (rotation).
///
/// [`SecretCipher::insecure_plaintext_for_tests`] stores `plain:<secret>`;
/// an AES cipher refuses to read such values, and the plaintext cipher
/// refuses to read encrypted ones, so the modes cannot be mixed up silently.
#[derive(Clone)]
pub struct SecretCipher {
    mode: Mode,
}

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mode {
            Mode::Aes {
                encrypt_id, keys, ..
            } => f
                .debug_struct("SecretCipher")
                .field("mode", &"aes-256-gcm")
                .field("encrypt_key_id", encrypt_id)
                .field(
                    "key_ids",
                    &keys.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
                )
                .finish(),
            Mode::Plaintext => f
                .debug_struct("SecretCipher")
                .field("mode", &"insecure-plaintext-for-tests")
                .finish(),
        }
    }
}

impl SecretCipher {
    /// An AES-256-GCM cipher that encrypts with `encrypt_key` and decrypts
    /// with it or any of `decrypt_only` (older keys being rotated out).
    /// `InvalidInput` if two keys share an id.
    pub fn aes256gcm(encrypt_key: AppKey, decrypt_only: Vec<AppKey>) -> Result<Self> {
        let encrypt_id = encrypt_key.id.clone();
        let mut keys = Vec::with_capacity(decrypt_only.len() + 1);
        for k in std::iter::once(encrypt_key).chain(decrypt_only) {
            if keys
                .iter()
                .any(|(id, _): &(String, LessSafeKey)| *id == k.id)
            {
                return Err(RegistryError::InvalidInput {
                    field: "app key id",
                    expected: "distinct key ids",
                    found: format!("{:?} twice", k.id),
                });
            }
            let unbound = UnboundKey::new(&AES_256_GCM, k.key.as_ref()).map_err(|_| {
                RegistryError::Cipher {
                    reason: "expected a 32-byte AES-256 key, ring rejected it".to_owned(),
                }
            })?;
            keys.push((k.id, LessSafeKey::new(unbound)));
        }
        Ok(Self {
            mode: Mode::Aes {
                encrypt_id,
                keys: Arc::new(keys),
                rng: SystemRandom::new(),
            },
        })
    }

    /// A cipher that stores secrets **in clear**. For tests only: never
    /// configure it for a deployment.
    #[must_use]
    pub fn insecure_plaintext_for_tests() -> Self {
        Self {
            mode: Mode::Plaintext,
        }
    }

    /// The id of the key new secrets are encrypted with (`None` in plaintext mode).
    #[must_use]
    pub fn encrypt_key_id(&self) -> Option<&str> {
        match &self.mode {
            Mode::Aes { encrypt_id, .. } => Some(encrypt_id),
            Mode::Plaintext => None,
        }
    }

    /// Encrypts `plaintext`, binding it to `context`.
    pub fn encrypt(&self, plaintext: &str, context: &str) -> Result<String> {
        let Mode::Aes {
            encrypt_id,
            keys,
            rng,
        } = &self.mode
        else {
            return Ok(format!("{PLAINTEXT_PREFIX}{plaintext}"));
        };
        let key = keys
            .iter()
            .find(|(id, _)| id == encrypt_id)
            .map(|(_, k)| k)
            .ok_or_else(|| RegistryError::Cipher {
                reason: "expected the encryption key among the keys, found none".to_owned(),
            })?;
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce).map_err(|_| RegistryError::Cipher {
            reason: "the system random generator failed".to_owned(),
        })?;
        let mut buf = Zeroizing::new(plaintext.as_bytes().to_vec());
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(encrypt_id, context)),
            &mut *buf,
        )
        .map_err(|_| RegistryError::Cipher {
            reason: "AES-256-GCM sealing failed".to_owned(),
        })?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(format!(
            "{ENCRYPTED_PREFIX}{encrypt_id}:{}",
            URL_SAFE_NO_PAD.encode(out)
        ))
    }

    /// Decrypts a value produced by [`Self::encrypt`] with the same `context`.
    pub fn decrypt(&self, stored: &str, context: &str) -> Result<SecretString> {
        match &self.mode {
            Mode::Plaintext => {
                if let Some(p) = stored.strip_prefix(PLAINTEXT_PREFIX) {
                    Ok(SecretString::new(p))
                } else if stored.starts_with(ENCRYPTED_PREFIX) {
                    Err(RegistryError::Cipher {
                        reason: "expected a plaintext test secret, found an encrypted one; configure the application key".to_owned(),
                    })
                } else {
                    Err(unrecognised())
                }
            }
            Mode::Aes { keys, .. } => {
                let Some(rest) = stored.strip_prefix(ENCRYPTED_PREFIX) else {
                    return Err(if stored.starts_with(PLAINTEXT_PREFIX) {
                        RegistryError::Cipher {
                            reason: "expected an encrypted secret, found a plaintext one written by insecure_plaintext_for_tests; refusing it".to_owned(),
                        }
                    } else {
                        unrecognised()
                    });
                };
                let (id, body) = rest.split_once(':').ok_or_else(unrecognised)?;
                let key = keys
                    .iter()
                    .find(|(k, _)| k == id)
                    .map(|(_, k)| k)
                    .ok_or_else(|| RegistryError::Cipher {
                        reason: format!(
                            "expected a secret encrypted under a configured key id, found key id {id:?}"
                        ),
                    })?;
                let raw = URL_SAFE_NO_PAD
                    .decode(body.as_bytes())
                    .map_err(|_| unrecognised())?;
                if raw.len() < NONCE_LEN + AES_256_GCM.tag_len() {
                    return Err(unrecognised());
                }
                let (nonce, sealed) = raw.split_at(NONCE_LEN);
                let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unrecognised())?;
                let mut buf = Zeroizing::new(sealed.to_vec());
                let plain = key
                    .open_in_place(nonce, Aad::from(aad(id, context)), &mut buf)
                    .map_err(|_| RegistryError::Cipher {
                        reason: format!(
                            "authentication failed for a secret under key id {id:?}: wrong key, wrong record or tampered data"
                        ),
                    })?;
                let text = std::str::from_utf8(plain).map_err(|_| RegistryError::Cipher {
                    reason: "expected a UTF-8 secret, found other bytes".to_owned(),
                })?;
                Ok(SecretString::new(text))
            }
        }
    }

    /// Whether `stored` was written with the current encryption key (or, in
    /// plaintext mode, in plaintext); `false` means re-encrypt it.
    #[must_use]
    pub fn is_current(&self, stored: &str) -> bool {
        match &self.mode {
            Mode::Plaintext => stored.starts_with(PLAINTEXT_PREFIX),
            Mode::Aes { encrypt_id, .. } => stored
                .strip_prefix(ENCRYPTED_PREFIX)
                .and_then(|r| r.split_once(':'))
                .is_some_and(|(id, _)| id == encrypt_id),
        }
    }
}

fn aad(key_id: &str, context: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(AAD_LABEL.len() + key_id.len() + 1 + context.len());
    v.extend_from_slice(AAD_LABEL);
    v.extend_from_slice(key_id.as_bytes());
    v.push(0);
    v.extend_from_slice(context.as_bytes());
    v
}

fn unrecognised() -> RegistryError {
    RegistryError::Cipher {
        reason: "expected \"enc:v1:<key id>:<base64url>\", found a value in another format"
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> AppKey {
        AppKey::new(id, &[byte; 32]).unwrap()
    }

    #[test]
    fn round_trip_hides_the_plaintext_and_uses_fresh_nonces() {
        let c = SecretCipher::aes256gcm(key("k1", 7), vec![]).unwrap();
        let a = c.encrypt("s3cret-value", "consumer:abc").unwrap();
        let b = c.encrypt("s3cret-value", "consumer:abc").unwrap();
        assert!(a.starts_with("enc:v1:k1:"));
        assert!(!a.contains("s3cret"));
        assert_ne!(a, b);
        assert_eq!(
            c.decrypt(&a, "consumer:abc").unwrap().expose(),
            "s3cret-value"
        );
        assert!(c.is_current(&a));
    }

    #[test]
    fn ciphertext_moved_to_another_record_fails_authentication() {
        let c = SecretCipher::aes256gcm(key("k1", 7), vec![]).unwrap();
        let a = c.encrypt("x", "consumer:abc").unwrap();
        let e = c.decrypt(&a, "consumer:other").unwrap_err();
        assert_eq!(e.code(), "cipher");
        assert!(e.to_string().contains("authentication failed"));
    }

    #[test]
    fn rotated_key_still_decrypts_and_new_writes_use_the_new_key() {
        let old = SecretCipher::aes256gcm(key("k1", 7), vec![]).unwrap();
        let stored = old.encrypt("pw", "ctx").unwrap();
        let new = SecretCipher::aes256gcm(key("k2", 9), vec![key("k1", 7)]).unwrap();
        assert_eq!(new.decrypt(&stored, "ctx").unwrap().expose(), "pw");
        assert!(!new.is_current(&stored));
        assert!(new.encrypt("pw", "ctx").unwrap().starts_with("enc:v1:k2:"));
    }

    #[test]
    fn unknown_key_id_is_reported() {
        let old = SecretCipher::aes256gcm(key("k1", 7), vec![]).unwrap();
        let stored = old.encrypt("pw", "ctx").unwrap();
        let other = SecretCipher::aes256gcm(key("k2", 9), vec![]).unwrap();
        let e = other.decrypt(&stored, "ctx").unwrap_err();
        assert!(e.to_string().contains("found key id \"k1\""));
    }

    #[test]
    fn tampered_ciphertext_is_rejected() {
        let c = SecretCipher::aes256gcm(key("k1", 7), vec![]).unwrap();
        let mut stored = c.encrypt("pw", "ctx").unwrap();
        let last = stored.pop().unwrap();
        stored.push(if last == 'A' { 'B' } else { 'A' });
        let e = c.decrypt(&stored, "ctx").unwrap_err();
        assert_eq!(e.code(), "cipher");
    }

    #[test]
    fn modes_refuse_each_others_values() {
        let aes = SecretCipher::aes256gcm(key("k1", 7), vec![]).unwrap();
        let plain = SecretCipher::insecure_plaintext_for_tests();
        let p = plain.encrypt("pw", "ctx").unwrap();
        assert_eq!(p, "plain:pw");
        assert!(
            aes.decrypt(&p, "ctx")
                .unwrap_err()
                .to_string()
                .contains("plaintext")
        );
        let e = aes.encrypt("pw", "ctx").unwrap();
        assert!(
            plain
                .decrypt(&e, "ctx")
                .unwrap_err()
                .to_string()
                .contains("encrypted")
        );
        assert_eq!(aes.decrypt("garbage", "ctx").unwrap_err().code(), "cipher");
    }

    #[test]
    fn bad_keys_are_rejected() {
        assert!(matches!(
            AppKey::new("k1", &[0; 16]).unwrap_err(),
            RegistryError::InvalidInput {
                field: "app key",
                ..
            }
        ));
        assert!(matches!(
            AppKey::new("k:1", &[0; 32]).unwrap_err(),
            RegistryError::InvalidInput {
                field: "app key id",
                ..
            }
        ));
        assert!(matches!(
            SecretCipher::aes256gcm(key("a", 1), vec![key("a", 2)]).unwrap_err(),
            RegistryError::InvalidInput {
                field: "app key id",
                ..
            }
        ));
        assert!(matches!(
            AppKey::from_base64("k", "not base64!").unwrap_err(),
            RegistryError::InvalidInput {
                field: "app key",
                ..
            }
        ));
    }

    #[test]
    fn generated_key_exports_and_reimports() {
        let k = AppKey::generate("k9").unwrap();
        let again = AppKey::from_base64("k9", k.export_base64().expose()).unwrap();
        let c1 = SecretCipher::aes256gcm(k, vec![]).unwrap();
        let c2 = SecretCipher::aes256gcm(again, vec![]).unwrap();
        let s = c1.encrypt("v", "c").unwrap();
        assert_eq!(c2.decrypt(&s, "c").unwrap().expose(), "v");
        assert!(!format!("{c1:?}").contains("key\": ["));
    }
}
