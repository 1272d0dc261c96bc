//! `lti consumers add | list | remove | export`: LTI 1.1 consumers in the
//! configured store (`import` is in [`crate::import`]).

use std::io::Write as _;
use std::path::Path;

use lti_registry::{Consumer, RegistryError, Store};

use crate::error::AppError;

/// Random bytes in a generated consumer key (16 base64url characters).
const KEY_BYTES: usize = 12;
/// Random bytes in a generated secret: 256 bits (43 base64url characters).
const SECRET_BYTES: usize = 32;

/// A consumer created by [`add_consumer`], with the only copy of its secret the
/// operator will see.
#[derive(Debug, Clone)]
pub struct NewConsumer {
    /// The OAuth consumer key.
    pub key: String,
    /// The generated shared secret (print it once; the store keeps it encrypted).
    pub secret: lti_registry::SecretString,
    /// The display name.
    pub name: String,
}

/// `n` random bytes as base64url ([`crate::keys::random_base64url`]).
fn random_base64url(n: usize) -> Result<String, AppError> {
    crate::keys::random_base64url(n).ok_or(AppError::Random)
}

/// Adds a consumer named `name` with a generated secret and the given key, or a
/// generated one. The key must not exist yet.
///
/// # Errors
/// [`AppError::Store`] (`conflict` when the key is taken, `invalid_input` for
/// an empty name or a malformed key), [`AppError::Random`].
pub async fn add_consumer(
    store: &Store,
    name: &str,
    key: Option<&str>,
    silo: Option<&str>,
    now: i64,
) -> Result<NewConsumer, AppError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(RegistryError::InvalidInput {
            field: "consumer name",
            expected: "a non-empty name",
            found: "an empty string".to_owned(),
        }
        .into());
    }
    let key = match key {
        Some(k) => k.to_owned(),
        None => random_base64url(KEY_BYTES)?,
    };
    let secret = lti_registry::SecretString::new(random_base64url(SECRET_BYTES)?);
    let consumer = Consumer::new(key.clone(), secret.clone(), name, now);
    consumer.validate()?;
    store.consumers.insert_consumer(&consumer).await?;
    if let Some(silo) = silo {
        store
            .provider
            .assign_silo(&key, &lti_registry::SiloId(silo.to_owned()))
            .await?;
    }
    Ok(NewConsumer {
        key,
        secret,
        name: name.to_owned(),
    })
}

/// Every consumer, sorted by key.
///
/// # Errors
/// [`AppError::Store`].
pub async fn list_consumers(store: &Store) -> Result<Vec<Consumer>, AppError> {
    let mut all = store.consumers.list_consumers().await?;
    all.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(all)
}

/// Removes the consumer `key`.
///
/// # Errors
/// [`AppError::Store`] (`not_found` when there is no such consumer).
pub async fn remove_consumer(store: &Store, key: &str) -> Result<(), AppError> {
    store.consumers.delete_consumer(key).await?;
    Ok(())
}

/// The export file's text: a header, then per consumer a `# name` comment and
/// a `key secret` line (the format `lti consumers import` reads) when
/// `with_secrets`, else a line with the key alone, which import refuses.
pub fn export_text(consumers: &[Consumer], with_secrets: bool) -> String {
    let mut out = String::from("# LTI 1.1 consumers exported by `lti consumers export`.\n");
    if with_secrets {
        out.push_str("# Contains shared secrets: keep this file private.\n");
    } else {
        out.push_str(
            "# Secrets left out (export --with-secrets to include them); `lti consumers import` needs them.\n",
        );
    }
    for c in consumers {
        let guid = c
            .instance_guid
            .as_deref()
            .map(|g| format!(" (instance {g})"))
            .unwrap_or_default();
        out.push_str(&format!("# {}{guid}\n", c.name.replace('\n', " ")));
        if with_secrets {
            out.push_str(&format!("{} {}\n", c.key, c.secret.expose()));
        } else {
            out.push_str(&format!("{}\n", c.key));
        }
    }
    out
}

/// Writes every consumer to `path` (created with mode 0600 on Unix; an existing
/// file is replaced only with `force`); returns how many were written.
///
/// # Errors
/// [`AppError::OutputExists`], [`AppError::Io`], [`AppError::Store`].
pub async fn export_consumers(
    store: &Store,
    path: &Path,
    with_secrets: bool,
    force: bool,
) -> Result<usize, AppError> {
    let consumers = list_consumers(store).await?;
    let text = export_text(&consumers, with_secrets);
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            AppError::OutputExists {
                path: path.to_owned(),
            }
        } else {
            AppError::io("creating", path, e)
        }
    })?;
    // A replaced file keeps its old mode: narrow it as well.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| AppError::io("restricting the mode of", path, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| AppError::io("writing", path, e))?;
    Ok(consumers.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(key: &str, secret: &str, name: &str) -> Consumer {
        Consumer::new(key, secret, name, 0)
    }

    #[test]
    fn export_without_secrets_names_every_key_and_no_secret() {
        let all = [
            consumer("k1", "s3cret-one", "Moodle"),
            consumer("k2", "s3cret-two", "Sakai"),
        ];
        let text = export_text(&all, false);
        assert!(text.contains("# Moodle\nk1\n"), "{text}");
        assert!(text.contains("# Sakai\nk2\n"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn export_with_secrets_is_what_import_reads() {
        let all = [consumer("k1", "s1", "A\nB"), consumer("k2", "s2", "C")];
        let text = export_text(&all, true);
        let parsed = crate::parse_consumers_file(Path::new("f"), &text).unwrap();
        let pairs: Vec<(&str, &str)> = parsed
            .iter()
            .map(|c| (c.key.as_str(), c.secret.expose()))
            .collect();
        assert_eq!(pairs, [("k1", "s1"), ("k2", "s2")]);
        assert!(
            text.contains("# A B\n"),
            "a newline in a name stays in its comment"
        );
    }

    #[test]
    fn an_export_without_secrets_is_refused_by_import() {
        let text = export_text(&[consumer("k1", "s1", "A")], false);
        let e = crate::parse_consumers_file(Path::new("f"), &text).unwrap_err();
        assert_eq!(e.code(), "invalid_import_line");
    }

    #[test]
    fn generated_values_are_url_safe_and_distinct() {
        let a = random_base64url(SECRET_BYTES).unwrap();
        let b = random_base64url(SECRET_BYTES).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }
}
