//! The platform secret and the HMAC-protected opaque values derived from it
//! (message hints, access tokens, deep-linking `data`, pseudonymous subjects).

use std::fmt;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{PlatformError, Result};

/// Minimum length of a [`PlatformSecret`] in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// The platform's long-term secret. Keep it stable: pseudonymous `sub` values, message
/// hints and access tokens are derived from it. `Debug` prints `[redacted]`.
pub struct PlatformSecret {
    hint: hmac::Key,
    token: hmac::Key,
    subject: hmac::Key,
    dl_data: hmac::Key,
}

impl fmt::Debug for PlatformSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlatformSecret([redacted])")
    }
}

/// What a derived key is used for; each purpose gets its own key so a value minted for
/// one purpose never verifies as another.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    MessageHint,
    AccessToken,
    DeepLinkData,
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
        let derive = |label: &[u8]| {
            let tag = hmac::sign(&root, label);
            hmac::Key::new(hmac::HMAC_SHA256, tag.as_ref())
        };
        Ok(Self {
            hint: derive(b"lti-platform/message-hint/v1"),
            token: derive(b"lti-platform/access-token/v1"),
            subject: derive(b"lti-platform/subject/v1"),
            dl_data: derive(b"lti-platform/deep-link-data/v1"),
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

    fn key(&self, purpose: Purpose) -> &hmac::Key {
        match purpose {
            Purpose::MessageHint => &self.hint,
            Purpose::AccessToken => &self.token,
            Purpose::DeepLinkData => &self.dl_data,
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

    /// Seals `value` as `<prefix>.<b64 json>.<b64 mac>`.
    pub(crate) fn seal<T: Serialize>(
        &self,
        purpose: Purpose,
        prefix: &str,
        value: &T,
    ) -> Result<String> {
        let json = serde_json::to_vec(value).map_err(|e| PlatformError::MalformedBody {
            what: "sealed value",
            reason: e.to_string(),
        })?;
        let mut out = String::with_capacity(prefix.len() + json.len() * 4 / 3 + 50);
        out.push_str(prefix);
        out.push('.');
        out.push_str(&lti_jose::b64::encode(&json));
        let tag = hmac::sign(self.key(purpose), out.as_bytes());
        out.push('.');
        out.push_str(&lti_jose::b64::encode(tag.as_ref()));
        Ok(out)
    }

    /// Opens a value sealed by [`PlatformSecret::seal`]; `None` if it is malformed or its
    /// MAC does not verify (constant-time).
    pub(crate) fn open<T: DeserializeOwned>(
        &self,
        purpose: Purpose,
        prefix: &str,
        sealed: &str,
    ) -> Option<T> {
        if sealed.len() > 16 * 1024 {
            return None;
        }
        let (signed, mac) = sealed.rsplit_once('.')?;
        let (p, payload) = signed.split_once('.')?;
        if p != prefix {
            return None;
        }
        let mac = lti_jose::b64::decode(mac).ok()?;
        hmac::verify(self.key(purpose), signed.as_bytes(), &mac).ok()?;
        let json = lti_jose::b64::decode(payload).ok()?;
        serde_json::from_slice(&json).ok()
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
