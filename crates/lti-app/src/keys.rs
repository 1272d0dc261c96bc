//! `lti keygen` and the key directory `lti serve` uses.
//!
//! A key directory holds `private.pem` (the tool's RSA signing key, PKCS#8 PEM,
//! mode 0600), `jwks.json` (its public JWK Set, kid = RFC 7638 thumbprint) and,
//! once `lti serve` has run, `app-secret` (mode 0600: the AES key that encrypts
//! secrets at rest in the store and the seed of the state-cookie secret).

use std::io::Write;
use std::path::{Path, PathBuf};

use lti_jose::{Algorithm, JwkSet, SigningKey};
use lti_registry::{AppKey, RegistryError, SecretString, Store};
use ring::hmac;

use crate::error::AppError;

/// The private key file name.
pub const PRIVATE_KEY_FILE: &str = "private.pem";
/// The public JWKS file name.
pub const JWKS_FILE: &str = "jwks.json";
/// The application secret file name.
pub const APP_SECRET_FILE: &str = "app-secret";

/// What `keygen` wrote.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    /// The key id (RFC 7638 thumbprint).
    pub kid: String,
    /// The private key path.
    pub private_key: PathBuf,
    /// The JWKS path.
    pub jwks: PathBuf,
}

/// Generates an RSA key of `bits` (2048, 3072 or 4096) into `dir`: `private.pem`
/// (PKCS#8 PEM, mode 0600) and `jwks.json`. Refuses to overwrite either file
/// unless `force`.
///
/// # Errors
/// [`AppError::InvalidBits`], [`AppError::KeyExists`], [`AppError::Io`],
/// [`AppError::Key`].
pub fn keygen(dir: &Path, bits: usize, force: bool) -> Result<GeneratedKey, AppError> {
    if ![2048, 3072, 4096].contains(&bits) {
        return Err(AppError::InvalidBits { found: bits });
    }
    let private_key = dir.join(PRIVATE_KEY_FILE);
    let jwks = dir.join(JWKS_FILE);
    if !force {
        for path in [&private_key, &jwks] {
            if path.exists() {
                return Err(AppError::KeyExists { path: path.clone() });
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| AppError::io("creating directory", dir, e))?;
    let (key, pem) = SigningKey::generate_rsa(bits).map_err(|source| AppError::Key {
        path: private_key.clone(),
        source,
    })?;
    write_private(&private_key, pem.as_bytes())?;
    write_atomic(&jwks, jwks_json(&key)?.as_bytes(), false)?;
    Ok(GeneratedKey {
        kid: key.kid().to_owned(),
        private_key,
        jwks,
    })
}

/// The public JWK Set of `key`, pretty-printed.
fn jwks_json(key: &SigningKey) -> Result<String, AppError> {
    let set = JwkSet {
        keys: vec![key.public_jwk()],
    };
    serde_json::to_string_pretty(&set)
        .map(|s| s + "\n")
        .map_err(|e| {
            AppError::io(
                "serializing",
                JWKS_FILE,
                std::io::Error::other(e.to_string()),
            )
        })
}

/// Writes a file readable only by its owner (mode 0600), replacing it atomically.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), AppError> {
    write_atomic(path, contents, true)
}

fn write_atomic(path: &Path, contents: &[u8], private: bool) -> Result<(), AppError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options
        .open(&tmp)
        .map_err(|e| AppError::io("creating", &tmp, e))?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        // An existing temporary file keeps its old mode; force 0600.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| AppError::io("setting permissions of", &tmp, e))?;
    }
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| AppError::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| AppError::io("renaming into", path, e))
}

/// Loads the tool's signing key from `dir`, generating one (2048 bits) on first
/// start. Returns the key (kid = thumbprint) and its PEM.
///
/// # Errors
/// [`AppError::Io`], [`AppError::Key`].
pub fn load_or_generate(dir: &Path) -> Result<(SigningKey, SecretString, bool), AppError> {
    let path = dir.join(PRIVATE_KEY_FILE);
    let generated = if path.exists() {
        false
    } else {
        keygen(dir, 2048, false)?;
        true
    };
    let pem = std::fs::read_to_string(&path).map_err(|e| AppError::io("reading", &path, e))?;
    let key = SigningKey::from_pem(&pem, Algorithm::RS256)
        .map_err(|source| AppError::Key { path, source })?;
    let jwks = dir.join(JWKS_FILE);
    if !jwks.exists() {
        write_atomic(&jwks, jwks_json(&key)?.as_bytes(), false)?;
    }
    Ok((key, SecretString::new(pem), generated))
}

/// The application secret in `dir/app-secret`, created (32 random bytes,
/// base64url, mode 0600) when missing.
///
/// # Errors
/// [`AppError::Io`], [`AppError::Store`] for a malformed file.
pub fn app_key(dir: &Path) -> Result<AppKey, AppError> {
    let path = dir.join(APP_SECRET_FILE);
    if !path.exists() {
        std::fs::create_dir_all(dir).map_err(|e| AppError::io("creating directory", dir, e))?;
        let key = AppKey::generate("app1")?;
        write_private(
            &path,
            format!("{}\n", key.export_base64().expose()).as_bytes(),
        )?;
    }
    let text = std::fs::read_to_string(&path).map_err(|e| AppError::io("reading", &path, e))?;
    Ok(AppKey::from_base64("app1", text.trim())?)
}

/// The application secret of a configuration: `LTI_APP_SECRET` when set
/// (`keys.app_secret`), else the `app-secret` file of the key directory
/// (created when missing), as [`app_key`].
///
/// # Errors
/// As [`app_key`]; [`AppError::Store`] for a malformed `LTI_APP_SECRET`.
pub fn app_key_for(keys: &crate::KeysConfig) -> Result<AppKey, AppError> {
    match &keys.app_secret {
        Some(secret) => Ok(AppKey::from_base64("app1", secret.trim())?),
        None => app_key(&keys.dir),
    }
}

/// A secret for a purpose (`"state-cookie"`, ...) derived from the app secret
/// (`LTI_APP_SECRET` or the file) with HMAC-SHA256, so one secret seeds every
/// instance identically.
pub(crate) fn derive_secret(keys: &crate::KeysConfig, purpose: &str) -> Result<Vec<u8>, AppError> {
    let text = match &keys.app_secret {
        Some(secret) => secret.clone(),
        None => {
            let path = keys.dir.join(APP_SECRET_FILE);
            std::fs::read_to_string(&path).map_err(|e| AppError::io("reading", &path, e))?
        }
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, text.trim().as_bytes());
    Ok(hmac::sign(&key, purpose.as_bytes()).as_ref().to_vec())
}

/// Makes the key from the key directory the store's active tool key: adds and
/// promotes it when the store does not know its kid (the previous key is retired
/// and stays published for the overlap), promotes it when it is waiting as next.
///
/// # Errors
/// [`AppError::Store`].
pub async fn install_tool_key(
    store: &Store,
    kid: &str,
    pem: &SecretString,
) -> Result<(), AppError> {
    let keys = store.tool_keys.list_keys().await?;
    match keys.iter().find(|k| k.kid == kid) {
        Some(k) if k.status == lti_registry::KeyStatus::Active => return Ok(()),
        Some(k) if k.status == lti_registry::KeyStatus::Next => {}
        Some(_) => {
            tracing::warn!(
                kid,
                "the key in the key directory was retired in the store; not reactivating it"
            );
            return Ok(());
        }
        None => match store.tool_keys.add_next_key(kid, "RS256", pem).await {
            Ok(_) => {}
            Err(RegistryError::Conflict { .. }) => {
                tracing::warn!(
                    kid,
                    "another key is waiting as next; replacing the active key anyway is not possible"
                );
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        },
    }
    store.tool_keys.promote_next_key().await?;
    tracing::info!(kid, "tool signing key activated");
    Ok(())
}

/// `n` bytes from the operating system's CSPRNG as base64url without padding
/// (generated secrets and ids); `None` when the generator fails.
pub(crate) fn random_base64url(n: usize) -> Option<String> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut bytes = vec![0u8; n];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lti-app-keys-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn invalid_sizes_are_refused_before_any_file_is_written() {
        let dir = temp_dir("bits");
        let err = keygen(&dir, 1024, false).unwrap_err();
        assert_eq!(err.code(), "invalid_key_size");
        assert!(!dir.exists());
    }

    #[test]
    fn app_secret_is_created_once_and_private() {
        let dir = temp_dir("secret");
        let a = app_key(&dir).unwrap();
        let b = app_key(&dir).unwrap();
        assert_eq!(a.export_base64().expose(), b.export_base64().expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(APP_SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let keys = crate::KeysConfig {
            dir: dir.clone(),
            ..crate::KeysConfig::default()
        };
        let s1 = derive_secret(&keys, "state-cookie").unwrap();
        let s2 = derive_secret(&keys, "other").unwrap();
        assert_eq!(s1.len(), 32);
        assert_ne!(s1, s2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
