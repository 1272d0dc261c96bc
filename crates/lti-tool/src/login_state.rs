//! The login's state, sealed into the `state` value itself: nothing is stored
//! between the OIDC login initiation and the launch.
//!
//! A state is `base64url(version ‖ salt ‖ AES-256-GCM(key, plaintext) ‖ tag)`:
//! - `version` is one byte (`1`);
//! - `salt` is 16 fresh random bytes, and `key` is
//!   HKDF-SHA256-Expand(PRK, purpose ‖ `0x00` ‖ salt), with PRK extracted once from
//!   the tool's state secret ([`ToolBuilder::state_cookie_secret`](crate::ToolBuilder::state_cookie_secret)).
//!   Every state has its own key, so the all-zero AEAD nonce is never reused under
//!   one key, however many logins a secret serves;
//! - the purpose (`lti-tool login state v1`) is also the associated data, so a
//!   value sealed for another purpose never opens as a login state;
//! - the plaintext is `created_at` and `expires_at` (big-endian `i64`), a flags
//!   byte (deployment id sent, storage target sent, stored in the platform's
//!   storage), then the nonce, issuer, client id, `target_link_uri` and the
//!   optional deployment id, storage target, `login_hint` and `lti_message_hint`
//!   (the last two kept for the new-window fallback), each as a big-endian `u16`
//!   length and its UTF-8 bytes.
//!
//! Opening checks the tag and the expiry; single use is the launch's business: it
//! records the state's nonce in the nonce store (see `Tool::consume_login_state`).

use lti_registry::LaunchState;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::SystemRandom;

use crate::error::ToolError;
use crate::login::STORAGE_TARGET_KEY;
use crate::new_window::{LOGIN_HINT_KEY, MESSAGE_HINT_KEY};
use crate::storage::{STORAGE_BINDING_KEY, STORAGE_BINDING_PLATFORM};

/// The purpose a login state is sealed for (the AEAD's associated data).
pub(crate) const LOGIN_STATE_PURPOSE: &[u8] = b"lti-tool login state v1";
/// The salt HKDF extracts the state key from the secret with.
const EXTRACT_SALT: &[u8] = b"lti-tool sealed values";
const VERSION: u8 = 1;
const SALT_LEN: usize = 16;
const TAG_LEN: usize = 16;
/// The longest parameter a login seals into its state (`target_link_uri`,
/// `lti_deployment_id`, `lti_storage_target`): 2 KiB.
pub(crate) const MAX_SEALED_PARAM_LEN: usize = 2048;
/// Longer `state` values are refused before any decoding.
const MAX_STATE_LEN: usize = 8 * 1024;

const FLAG_DEPLOYMENT: u8 = 1;
const FLAG_STORAGE_TARGET: u8 = 2;
const FLAG_PLATFORM_STORAGE: u8 = 4;
const FLAG_LOGIN_HINT: u8 = 8;
const FLAG_MESSAGE_HINT: u8 = 16;

/// Seals and opens values with keys derived from the tool's state secret.
pub(crate) struct Sealer {
    prk: hkdf::Prk,
}

impl Sealer {
    pub(crate) fn new(secret: &[u8]) -> Self {
        Self {
            prk: hkdf::Salt::new(hkdf::HKDF_SHA256, EXTRACT_SALT).extract(secret),
        }
    }

    fn key(&self, purpose: &[u8], salt: &[u8]) -> Result<LessSafeKey, ToolError> {
        let info = [purpose, b"\0", salt];
        let okm = self
            .prk
            .expand(&info, &AES_256_GCM)
            .map_err(|_| ToolError::config("state key derivation failed"))?;
        Ok(LessSafeKey::new(UnboundKey::from(okm)))
    }

    /// `plaintext` sealed for `purpose` under a fresh per-value key, as base64url.
    pub(crate) fn seal(
        &self,
        purpose: &[u8],
        rng: &SystemRandom,
        plaintext: &[u8],
    ) -> Result<String, ToolError> {
        let salt = crate::random::bytes::<SALT_LEN>(rng)?;
        let key = self.key(purpose, &salt)?;
        let mut body = Vec::with_capacity(plaintext.len() + TAG_LEN);
        body.extend_from_slice(plaintext);
        key.seal_in_place_append_tag(zero_nonce(), Aad::from(purpose), &mut body)
            .map_err(|_| ToolError::config("sealing the state failed"))?;
        let mut out = Vec::with_capacity(1 + SALT_LEN + body.len());
        out.push(VERSION);
        out.extend_from_slice(&salt);
        out.extend_from_slice(&body);
        Ok(lti_jose::b64::encode(&out))
    }

    /// The plaintext of a value this sealer sealed for `purpose`; `None` for
    /// anything else (malformed, another version, another secret or purpose,
    /// altered).
    pub(crate) fn open(&self, purpose: &[u8], sealed: &str) -> Option<Vec<u8>> {
        if sealed.len() > MAX_STATE_LEN {
            return None;
        }
        let bytes = lti_jose::b64::decode(sealed).ok()?;
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION || rest.len() < SALT_LEN + TAG_LEN {
            return None;
        }
        let (salt, body) = rest.split_at(SALT_LEN);
        let key = self.key(purpose, salt).ok()?;
        let mut body = body.to_vec();
        let len = key
            .open_in_place(zero_nonce(), Aad::from(purpose), &mut body)
            .ok()?
            .len();
        body.truncate(len);
        Some(body)
    }

    /// Seals what the launch needs of a login (every field of `state` but
    /// `state` itself) into the `state` value.
    ///
    /// # Errors
    /// [`ToolError::ParameterTooLong`] for a login parameter over
    /// [`MAX_SEALED_PARAM_LEN`]; [`ToolError::Configuration`] if the random number
    /// generator fails or `state` carries an `extra` value logins do not set.
    pub(crate) fn seal_login(
        &self,
        rng: &SystemRandom,
        state: &LaunchState,
    ) -> Result<String, ToolError> {
        let storage_target = state.extra.get(STORAGE_TARGET_KEY);
        let platform_storage = match state.extra.get(STORAGE_BINDING_KEY).map(String::as_str) {
            None => false,
            Some(STORAGE_BINDING_PLATFORM) => true,
            Some(_) => return Err(ToolError::config("unknown state binding")),
        };
        let login_hint = state.extra.get(LOGIN_HINT_KEY);
        let message_hint = state.extra.get(MESSAGE_HINT_KEY);
        let known = usize::from(storage_target.is_some())
            + usize::from(platform_storage)
            + usize::from(login_hint.is_some())
            + usize::from(message_hint.is_some());
        if state.extra.len() != known {
            return Err(ToolError::config(
                "a login state carries only the storage target and binding and the login hints",
            ));
        }
        let mut flags = 0;
        if state.deployment_id.is_some() {
            flags |= FLAG_DEPLOYMENT;
        }
        if storage_target.is_some() {
            flags |= FLAG_STORAGE_TARGET;
        }
        if platform_storage {
            flags |= FLAG_PLATFORM_STORAGE;
        }
        if login_hint.is_some() {
            flags |= FLAG_LOGIN_HINT;
        }
        if message_hint.is_some() {
            flags |= FLAG_MESSAGE_HINT;
        }
        let mut text = Vec::with_capacity(
            17 + 2 * 6
                + state.nonce.len()
                + state.issuer.len()
                + state.client_id.len()
                + state.target_link_uri.len()
                + state.deployment_id.as_ref().map_or(0, String::len)
                + storage_target.map_or(0, String::len)
                + login_hint.map_or(0, String::len)
                + message_hint.map_or(0, String::len),
        );
        text.extend_from_slice(&state.created_at.to_be_bytes());
        text.extend_from_slice(&state.expires_at.to_be_bytes());
        text.push(flags);
        for (name, value) in [
            ("nonce", Some(&state.nonce)),
            ("iss", Some(&state.issuer)),
            ("client_id", Some(&state.client_id)),
            ("target_link_uri", Some(&state.target_link_uri)),
            ("lti_deployment_id", state.deployment_id.as_ref()),
            ("lti_storage_target", storage_target),
            ("login_hint", login_hint),
            ("lti_message_hint", message_hint),
        ] {
            if let Some(value) = value {
                put_str(&mut text, name, value)?;
            }
        }
        self.seal(LOGIN_STATE_PURPOSE, rng, &text)
    }

    /// The login state sealed into `state`, when this tool sealed it and it has not
    /// expired at `now`.
    ///
    /// # Errors
    /// [`ToolError::StateNotFound`]: not a state of this tool (forged, altered,
    /// sealed with another secret or for another purpose) or expired.
    pub(crate) fn open_login(&self, state: &str, now: i64) -> Result<LaunchState, ToolError> {
        let text = self
            .open(LOGIN_STATE_PURPOSE, state)
            .ok_or(ToolError::StateNotFound)?;
        let opened = decode_login(state, &text).ok_or(ToolError::StateNotFound)?;
        if opened.expires_at <= now {
            return Err(ToolError::StateNotFound);
        }
        Ok(opened)
    }
}

/// The AEAD nonce: all zeros, which is safe because every key seals one value.
fn zero_nonce() -> Nonce {
    Nonce::assume_unique_for_key([0; NONCE_LEN])
}

fn put_str(out: &mut Vec<u8>, name: &'static str, value: &str) -> Result<(), ToolError> {
    match u16::try_from(value.len()) {
        Ok(len) if value.len() <= MAX_SEALED_PARAM_LEN => {
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(value.as_bytes());
            Ok(())
        }
        _ => Err(ToolError::ParameterTooLong {
            name,
            limit: MAX_SEALED_PARAM_LEN,
            found: value.len(),
        }),
    }
}

/// Reads the plaintext [`Sealer::seal_login`] wrote (authenticated, so any
/// inconsistency is a bug, answered like a foreign state).
fn decode_login(state: &str, text: &[u8]) -> Option<LaunchState> {
    struct Reader<'a>(&'a [u8]);
    impl Reader<'_> {
        fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
            let (head, rest) = self.0.split_first_chunk::<N>()?;
            self.0 = rest;
            Some(*head)
        }
        fn string(&mut self) -> Option<String> {
            let len = usize::from(u16::from_be_bytes(self.take::<2>()?));
            if self.0.len() < len {
                return None;
            }
            let (head, rest) = self.0.split_at(len);
            self.0 = rest;
            String::from_utf8(head.to_vec()).ok()
        }
    }
    let mut r = Reader(text);
    let created_at = i64::from_be_bytes(r.take::<8>()?);
    let expires_at = i64::from_be_bytes(r.take::<8>()?);
    let [flags] = r.take::<1>()?;
    let nonce = r.string()?;
    let issuer = r.string()?;
    let client_id = r.string()?;
    let target_link_uri = r.string()?;
    let mut opened = LaunchState::new(
        state,
        nonce,
        issuer,
        client_id,
        target_link_uri,
        created_at,
        0,
    );
    opened.expires_at = expires_at;
    if flags & FLAG_DEPLOYMENT != 0 {
        opened.deployment_id = Some(r.string()?);
    }
    if flags & FLAG_STORAGE_TARGET != 0 {
        opened
            .extra
            .insert(STORAGE_TARGET_KEY.to_owned(), r.string()?);
    }
    if flags & FLAG_PLATFORM_STORAGE != 0 {
        opened.extra.insert(
            STORAGE_BINDING_KEY.to_owned(),
            STORAGE_BINDING_PLATFORM.to_owned(),
        );
    }
    if flags & FLAG_LOGIN_HINT != 0 {
        opened.extra.insert(LOGIN_HINT_KEY.to_owned(), r.string()?);
    }
    if flags & FLAG_MESSAGE_HINT != 0 {
        opened
            .extra
            .insert(MESSAGE_HINT_KEY.to_owned(), r.string()?);
    }
    let known = FLAG_DEPLOYMENT
        | FLAG_STORAGE_TARGET
        | FLAG_PLATFORM_STORAGE
        | FLAG_LOGIN_HINT
        | FLAG_MESSAGE_HINT;
    if !r.0.is_empty() || flags & !known != 0 {
        return None;
    }
    Some(opened)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_900_000_000;

    fn login(ttl: i64) -> LaunchState {
        let mut s = LaunchState::new(
            "",
            "n".repeat(43),
            "https://platform.example",
            "client-1",
            "https://tool.example/lti/app",
            NOW,
            ttl,
        );
        s.deployment_id = Some("deploy-1".to_owned());
        s.extra
            .insert(STORAGE_TARGET_KEY.to_owned(), "_parent".to_owned());
        s.extra.insert(
            STORAGE_BINDING_KEY.to_owned(),
            STORAGE_BINDING_PLATFORM.to_owned(),
        );
        s
    }

    fn sealer(byte: u8) -> Sealer {
        Sealer::new(&[byte; 32])
    }

    #[test]
    fn a_sealed_login_opens_to_every_field_and_stays_compact() {
        let rng = SystemRandom::new();
        let s = sealer(1);
        let saved = login(600);
        let state = s.seal_login(&rng, &saved).unwrap();
        assert!(state.len() < 300, "{} characters", state.len());
        assert!(!state.contains("platform.example") && !state.contains("deploy"));
        let opened = s.open_login(&state, NOW).unwrap();
        let mut expected = saved.clone();
        expected.state = state.clone();
        assert_eq!(opened, expected);
        // Fresh salt, fresh key: the same login seals to another value.
        assert_ne!(s.seal_login(&rng, &saved).unwrap(), state);
        // A minimal login (no deployment, no storage) round-trips as well.
        let minimal = LaunchState::new("", "n", "i", "c", "https://t", NOW, 60);
        let state = s.seal_login(&rng, &minimal).unwrap();
        let mut expected = minimal;
        expected.state = state.clone();
        assert_eq!(s.open_login(&state, NOW + 59).unwrap(), expected);
    }

    #[test]
    fn expired_forged_altered_and_foreign_states_do_not_open() {
        let rng = SystemRandom::new();
        let s = sealer(1);
        let state = s.seal_login(&rng, &login(600)).unwrap();
        let code = |r: Result<LaunchState, ToolError>| r.unwrap_err().code();
        // Expired: valid until, not at, `expires_at`.
        s.open_login(&state, NOW + 599).unwrap();
        assert_eq!(code(s.open_login(&state, NOW + 600)), "state_not_found");
        // Another secret.
        assert_eq!(code(sealer(2).open_login(&state, NOW)), "state_not_found");
        // Every single altered byte.
        let raw = lti_jose::b64::decode(&state).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x40;
            let bad = lti_jose::b64::encode(&bad);
            assert_eq!(code(s.open_login(&bad, NOW)), "state_not_found", "byte {i}");
        }
        // Truncated, extended, random, not base64, empty, oversized.
        for bad in [
            &state[..state.len() - 4],
            &format!("{state}AAAA"),
            &crate::random::token(&rng).unwrap(),
            "not base64 !",
            "",
            &"A".repeat(MAX_STATE_LEN + 4),
        ] {
            assert_eq!(code(s.open_login(bad, NOW)), "state_not_found", "{bad:.40}");
        }
    }

    #[test]
    fn a_value_sealed_for_another_purpose_is_no_login_state() {
        let rng = SystemRandom::new();
        let s = sealer(1);
        // The exact plaintext of a valid login, sealed under the same secret for
        // another purpose.
        let state = s.seal_login(&rng, &login(600)).unwrap();
        let text = s.open(LOGIN_STATE_PURPOSE, &state).unwrap();
        let other = s.seal(b"lti-tool launch handle v1", &rng, &text).unwrap();
        assert_eq!(
            s.open_login(&other, NOW).unwrap_err().code(),
            "state_not_found"
        );
        assert!(s.open(b"lti-tool launch handle v1", &other).is_some());
        // A sealed value of the right purpose whose plaintext is not a login.
        let junk = s.seal(LOGIN_STATE_PURPOSE, &rng, b"junk").unwrap();
        assert_eq!(
            s.open_login(&junk, NOW).unwrap_err().code(),
            "state_not_found"
        );
    }

    #[test]
    fn oversized_parameters_are_refused_when_sealing() {
        let rng = SystemRandom::new();
        let mut saved = login(600);
        saved.target_link_uri = format!("https://tool.example/{}", "a".repeat(3000));
        let err = sealer(1).seal_login(&rng, &saved).unwrap_err();
        assert_eq!(err.code(), "parameter_too_long");
        assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST);
        assert!(err.to_string().contains("target_link_uri"), "{err}");
    }
}
