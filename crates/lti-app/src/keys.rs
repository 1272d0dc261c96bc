//! `lti keygen` and the key directory `lti serve` uses.
//!
//! A key directory holds `private.pem` (the tool's RSA signing key, PKCS#8 PEM,
//! mode 0600), `jwks.json` (its public JWK Set, kid = RFC 7638 thumbprint) and,
//! once `lti serve` has run, `app-secret` (mode 0600: the AES key that encrypts
//! secrets at rest in the store and the seed of the state-cookie secret) unless
//! `LTI_APP_SECRET` or the shared store provides it ([`resolve_app_secret`]).

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

/// The environment variable holding the application secret (base64url of
/// 32 bytes, as `app-secret` holds it): when set, the key directory's file is
/// neither read nor created.
pub const APP_SECRET_ENV: &str = "LTI_APP_SECRET";

/// The application secret: the AES key that encrypts secrets at rest in the
/// store (as an [`AppKey`]) and the seed of derived secrets (the state
/// cookie's). Every instance sharing a store must hold the same one.
#[derive(Clone)]
pub struct AppSecret {
    text: SecretString,
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppSecret([redacted])")
    }
}

impl AppSecret {
    /// Parses base64url text (surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`AppError::Store`] when it is not base64url of a 32-byte key.
    pub fn parse(text: &str) -> Result<Self, AppError> {
        let text = text.trim();
        AppKey::from_base64("app1", text)?;
        Ok(Self {
            text: SecretString::new(text),
        })
    }

    /// A fresh random secret.
    ///
    /// # Errors
    /// [`AppError::Store`] when the system generator fails.
    pub fn generate() -> Result<Self, AppError> {
        Ok(Self {
            text: AppKey::generate("app1")?.export_base64(),
        })
    }

    /// The key that encrypts secrets at rest.
    ///
    /// # Errors
    /// [`AppError::Store`] (not expected: the text was checked).
    pub fn app_key(&self) -> Result<AppKey, AppError> {
        Ok(AppKey::from_base64("app1", self.text.expose())?)
    }

    /// A secret for a purpose (`"state-cookie"`, ...) derived with
    /// HMAC-SHA256, so one secret seeds every instance identically.
    pub fn derive(&self, purpose: &str) -> Vec<u8> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.text.expose().as_bytes());
        hmac::sign(&key, purpose.as_bytes()).as_ref().to_vec()
    }

    /// What the shared store records to check that instances agree: a value
    /// derived from the secret that does not reveal it.
    pub(crate) fn fingerprint(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.derive("app-secret-check"))
    }

    fn text(&self) -> &str {
        self.text.expose()
    }
}

/// The application secret from `LTI_APP_SECRET` when set, else from
/// `dir/app-secret`, created (32 random bytes, base64url, mode 0600) when
/// missing.
///
/// # Errors
/// [`AppError::Io`], [`AppError::Store`] for a malformed value.
pub fn app_secret(dir: &Path) -> Result<AppSecret, AppError> {
    if let Some(from_env) = secret_from(std::env::var(APP_SECRET_ENV).ok())? {
        return Ok(from_env);
    }
    file_secret(dir)
}

/// `dir/app-secret`, created when missing.
fn file_secret(dir: &Path) -> Result<AppSecret, AppError> {
    let path = dir.join(APP_SECRET_FILE);
    if !path.exists() {
        std::fs::create_dir_all(dir).map_err(|e| AppError::io("creating directory", dir, e))?;
        let secret = AppSecret::generate()?;
        write_private(&path, format!("{}\n", secret.text()).as_bytes())?;
    }
    let text = std::fs::read_to_string(&path).map_err(|e| AppError::io("reading", &path, e))?;
    AppSecret::parse(&text)
}

/// The secret of an environment value, when set and not blank.
fn secret_from(env: Option<String>) -> Result<Option<AppSecret>, AppError> {
    match env {
        Some(v) if !v.trim().is_empty() => AppSecret::parse(&v).map(Some),
        _ => Ok(None),
    }
}

/// The key of [`app_secret`] (the AES key that encrypts secrets at rest).
///
/// # Errors
/// As [`app_secret`].
pub fn app_key(dir: &Path) -> Result<AppKey, AppError> {
    app_secret(dir)?.app_key()
}

/// The namespace of the application's own shared values.
const APP_NAMESPACE: &str = "app";

/// The application secret of `config`, the same on every instance:
///
/// 1. `LTI_APP_SECRET` when set;
/// 2. else `keys.dir/app-secret` when it exists;
/// 3. else, with `keys.app_secret_in_store = true` (PostgreSQL storage only),
///    the one the shared store holds, created by the first instance
///    (insert-if-absent: concurrent first starts agree);
/// 4. else a new `keys.dir/app-secret`.
///
/// With PostgreSQL storage, every instance then records the secret's
/// fingerprint in the store (insert-if-absent) and refuses to start
/// ([`AppError::AppSecretMismatch`]) when another instance recorded a
/// different one: instances that disagree would not read each other's
/// encrypted secrets nor launch states.
///
/// # Errors
/// As [`app_secret`], [`AppError::Store`], [`AppError::AppSecretMismatch`].
pub async fn resolve_app_secret(config: &crate::Config) -> Result<AppSecret, AppError> {
    // `keys.app_secret` is `LTI_APP_SECRET` as the configuration loader read
    // it (and reports it in `check-config`); a configuration built without
    // the environment still honours the variable.
    let env = config
        .keys
        .app_secret
        .clone()
        .or_else(|| std::env::var(APP_SECRET_ENV).ok());
    resolve_app_secret_in(config, env, None).await
}

/// [`resolve_app_secret`] with the environment value given, and the store
/// opened in `postgres_schema` (tests).
pub(crate) async fn resolve_app_secret_in(
    config: &crate::Config,
    env: Option<String>,
    postgres_schema: Option<&str>,
) -> Result<AppSecret, AppError> {
    let dir = &config.keys.dir;
    if let Some(from_env) = secret_from(env)? {
        return Ok(from_env);
    }
    if !dir.join(APP_SECRET_FILE).exists() && config.keys.app_secret_in_store {
        // The secret is what the store's cipher needs: this handle reads
        // shared values only, which are not encrypted.
        let bootstrap =
            lti_registry::SecretCipher::aes256gcm(AppKey::generate("bootstrap")?, vec![])?;
        let mut options = lti_store::OpenOptions::new(bootstrap);
        if let Some(schema) = postgres_schema {
            options = options.with_postgres_schema(schema);
        }
        let store = lti_store::open(&config.storage.url, &options).await?;
        let fresh = AppSecret::generate()?;
        let held = store
            .shared_values
            .insert_value(APP_NAMESPACE, "app_secret", fresh.text(), None)
            .await?;
        return match held {
            Some(existing) => AppSecret::parse(&existing),
            None => {
                tracing::warn!(
                    "created the application secret in the shared store (keys.app_secret_in_store): it sits next to the secrets it encrypts; prefer LTI_APP_SECRET"
                );
                Ok(fresh)
            }
        };
    }
    file_secret(dir)
}

/// Records the fingerprint of `secret` in `store` (first instance), or
/// checks it against the recorded one.
///
/// # Errors
/// [`AppError::AppSecretMismatch`], [`AppError::Store`].
pub(crate) async fn check_app_secret(store: &Store, secret: &AppSecret) -> Result<(), AppError> {
    let mine = secret.fingerprint();
    match store
        .shared_values
        .insert_value(APP_NAMESPACE, "app_secret_check", &mine, None)
        .await?
    {
        Some(recorded) if recorded != mine => Err(AppError::AppSecretMismatch),
        _ => Ok(()),
    }
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
    fn the_environment_value_wins_and_is_checked() {
        let dir = temp_dir("env-secret");
        let config = crate::Config {
            keys: crate::KeysConfig {
                dir: dir.clone(),
                ..crate::KeysConfig::default()
            },
            ..crate::Config::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let text = AppSecret::generate().unwrap().text().to_owned();
        let from_env = rt
            .block_on(resolve_app_secret_in(
                &config,
                Some(format!(" {text}\n")),
                None,
            ))
            .unwrap();
        assert_eq!(from_env.text(), text);
        assert!(
            !dir.join(APP_SECRET_FILE).exists(),
            "no file is written when the environment gives the secret"
        );
        let bad = rt
            .block_on(resolve_app_secret_in(
                &config,
                Some("not-a-key".into()),
                None,
            ))
            .unwrap_err();
        assert_eq!(bad.code(), "store");
        // Blank: the file, created once.
        let a = rt
            .block_on(resolve_app_secret_in(&config, Some("  ".into()), None))
            .unwrap();
        let b = rt
            .block_on(resolve_app_secret_in(&config, None, None))
            .unwrap();
        assert_eq!(a.text(), b.text());
        assert!(dir.join(APP_SECRET_FILE).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_store_records_the_first_secret_and_refuses_another() {
        let cipher =
            lti_registry::SecretCipher::aes256gcm(AppKey::generate("t").unwrap(), vec![]).unwrap();
        let store = lti_store::open("memory://", &lti_store::OpenOptions::new(cipher))
            .await
            .unwrap();
        let first = AppSecret::generate().unwrap();
        check_app_secret(&store, &first).await.unwrap();
        check_app_secret(&store, &first).await.unwrap();
        let other = AppSecret::generate().unwrap();
        let err = check_app_secret(&store, &other).await.unwrap_err();
        assert_eq!(err.code(), "app_secret_mismatch");
        assert!(!err.to_string().contains(other.text()));
    }

    /// `keys.app_secret_in_store` on PostgreSQL: concurrent first starts
    /// agree on one secret (insert-if-absent).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn instances_without_a_secret_agree_on_the_one_in_the_store() {
        let Ok(url) = std::env::var("LTI_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var("LTI_TEST_REQUIRE_BACKENDS").as_deref() != Ok("1"),
                "LTI_TEST_POSTGRES_URL is unset but LTI_TEST_REQUIRE_BACKENDS=1"
            );
            eprintln!("SKIPPED: LTI_TEST_POSTGRES_URL is not set");
            return;
        };
        // Created (and migrated) once first: concurrent `CREATE SCHEMA IF NOT
        // EXISTS` of a new schema can fail in PostgreSQL.
        let cipher =
            lti_registry::SecretCipher::aes256gcm(AppKey::generate("t").unwrap(), vec![]).unwrap();
        lti_store::open(
            &url,
            &lti_store::OpenOptions::new(cipher).with_postgres_schema("lti_app_secret_test"),
        )
        .await
        .unwrap();
        let mut tasks = Vec::new();
        for i in 0..4 {
            let dir = temp_dir(&format!("store-secret-{i}"));
            let mut config = crate::Config::default();
            config.keys.dir = dir;
            config.keys.app_secret_in_store = true;
            config.storage.url = url.clone();
            tasks.push(tokio::spawn(async move {
                let s = resolve_app_secret_in(&config, None, Some("lti_app_secret_test"))
                    .await
                    .unwrap();
                assert!(!config.keys.dir.join(APP_SECRET_FILE).exists());
                let _ = std::fs::remove_dir_all(&config.keys.dir);
                s.text().to_owned()
            }));
        }
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        assert!(seen.iter().all(|s| *s == seen[0]), "one secret for all");
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
        let secret = app_secret(&dir).unwrap();
        let s1 = secret.derive("state-cookie");
        let s2 = secret.derive("other");
        assert_eq!(s1.len(), 32);
        assert_ne!(s1, s2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
