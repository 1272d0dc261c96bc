//! Helpers shared by several backends. Each helper is compiled only with the
//! backend features that use it, so every feature subset builds without
//! dead code.

use lti_registry::{RegistryError, Result};

#[cfg(any(feature = "redis", feature = "sqlite", feature = "postgres"))]
/// Record key of an LTI 1.3 id-token nonce (hashed: never stored in clear),
/// after checking both values.
pub(crate) fn lti13_nonce_key(issuer: &str, nonce: &str) -> Result<String> {
    lti_registry::check_id("issuer", issuer)?;
    lti_registry::check_id("nonce", nonce)?;
    Ok(format!(
        "n13:{}",
        lti_registry::oauth1_nonce_digest(issuer, nonce)
    ))
}

#[cfg(any(feature = "redis", feature = "sqlite", feature = "postgres"))]
/// Record key of an OAuth 1.0a nonce, after checking both values.
pub(crate) fn oauth1_nonce_key(consumer_key: &str, nonce: &str) -> Result<String> {
    lti_registry::check_id("consumer key", consumer_key)?;
    lti_registry::check_id("oauth_nonce", nonce)?;
    Ok(format!(
        "n11:{}",
        lti_registry::oauth1_nonce_digest(consumer_key, nonce)
    ))
}

#[cfg(any(feature = "file", feature = "memory"))]
/// Registrations held in process, by issuer then client id: looked up with the
/// borrowed names (no key is built per lookup) and handed out shared.
#[derive(Debug, Default)]
pub(crate) struct Registrations(
    std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, std::sync::Arc<lti_registry::PlatformRegistration>>,
    >,
);

#[cfg(any(feature = "file", feature = "memory"))]
impl Registrations {
    /// The registration (issuer, client id), or `NotFound`.
    pub(crate) fn get(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<std::sync::Arc<lti_registry::PlatformRegistration>> {
        self.0
            .get(issuer)
            .and_then(|clients| clients.get(client_id))
            .cloned()
            .ok_or_else(|| {
                RegistryError::not_found("registration", registration_id(issuer, client_id))
            })
    }

    /// The registration (issuer, client id) to change in place, if present.
    #[cfg(feature = "memory")]
    pub(crate) fn get_mut(
        &mut self,
        issuer: &str,
        client_id: &str,
    ) -> Option<&mut lti_registry::PlatformRegistration> {
        self.0
            .get_mut(issuer)
            .and_then(|clients| clients.get_mut(client_id))
            .map(std::sync::Arc::make_mut)
    }

    /// The only registration of `issuer`: `NotFound` if none, `AmbiguousIssuer`
    /// if several.
    pub(crate) fn only_of(
        &self,
        issuer: &str,
    ) -> Result<std::sync::Arc<lti_registry::PlatformRegistration>> {
        match self
            .0
            .get(issuer)
            .map(|clients| (clients.len(), clients.values().next()))
        {
            Some((1, Some(only))) => Ok(std::sync::Arc::clone(only)),
            Some((count, _)) if count > 1 => Err(RegistryError::AmbiguousIssuer {
                issuer: issuer.to_owned(),
                count,
            }),
            // Emptied issuers are removed, so this is an issuer never registered.
            _ => Err(RegistryError::not_found("registration", issuer)),
        }
    }

    /// Whether (issuer, client id) is registered.
    pub(crate) fn contains(&self, issuer: &str, client_id: &str) -> bool {
        self.0
            .get(issuer)
            .is_some_and(|clients| clients.contains_key(client_id))
    }

    /// Adds or replaces the registration of its (issuer, client id).
    pub(crate) fn put(&mut self, registration: lti_registry::PlatformRegistration) {
        self.0
            .entry(registration.issuer.clone())
            .or_default()
            .insert(
                registration.client_id.clone(),
                std::sync::Arc::new(registration),
            );
    }

    /// Removes (issuer, client id); whether it was there.
    #[cfg(feature = "memory")]
    pub(crate) fn remove(&mut self, issuer: &str, client_id: &str) -> bool {
        let Some(clients) = self.0.get_mut(issuer) else {
            return false;
        };
        let removed = clients.remove(client_id).is_some();
        if clients.is_empty() {
            self.0.remove(issuer);
        }
        removed
    }

    /// Every registration, ordered by (issuer, client id).
    pub(crate) fn all(&self) -> impl Iterator<Item = &lti_registry::PlatformRegistration> {
        self.0
            .values()
            .flat_map(std::collections::BTreeMap::values)
            .map(std::sync::Arc::as_ref)
    }

    /// How many registrations there are.
    #[cfg(feature = "file")]
    pub(crate) fn len(&self) -> usize {
        self.0.values().map(std::collections::BTreeMap::len).sum()
    }
}

#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
/// The associated-data context binding an encrypted private key to its kid.
pub(crate) fn tool_key_context(kid: &str) -> String {
    format!("tool_key:{kid}")
}

#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
/// The associated-data context binding an encrypted secret to its consumer.
pub(crate) fn consumer_context(key: &str) -> String {
    format!("consumer:{key}")
}

#[cfg(feature = "redis")]
/// Seconds from `now` until `expires_at`, at least 1.
pub(crate) fn ttl_secs(expires_at: i64, now: i64) -> u64 {
    u64::try_from(expires_at.saturating_sub(now))
        .unwrap_or(0)
        .max(1)
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// The only registration among `regs` (all of `issuer`).
pub(crate) fn single_for_issuer(
    issuer: &str,
    mut regs: Vec<lti_registry::PlatformRegistration>,
) -> Result<lti_registry::PlatformRegistration> {
    match regs.len() {
        0 => Err(RegistryError::not_found("registration", issuer)),
        1 => Ok(regs.remove(0)),
        count => Err(RegistryError::AmbiguousIssuer {
            issuer: issuer.to_owned(),
            count,
        }),
    }
}

#[cfg(any(
    feature = "file",
    feature = "memory",
    feature = "sqlite",
    feature = "postgres"
))]
pub(crate) fn registration_id(issuer: &str, client_id: &str) -> String {
    format!("{issuer} / {client_id}")
}

#[cfg(any(feature = "redis", feature = "sqlite", feature = "postgres"))]
pub(crate) fn to_json<T: serde::Serialize>(
    backend: &'static str,
    kind: &'static str,
    v: &T,
) -> Result<String> {
    serde_json::to_string(v).map_err(|e| RegistryError::Corrupt {
        backend,
        kind,
        reason: format!("expected serializable data, found: {e}"),
    })
}

#[cfg(any(feature = "redis", feature = "sqlite", feature = "postgres"))]
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    backend: &'static str,
    kind: &'static str,
    s: &str,
) -> Result<T> {
    serde_json::from_str(s).map_err(|e| RegistryError::Corrupt {
        backend,
        kind,
        reason: format!("expected a JSON {kind}, found: {e}"),
    })
}

#[cfg(any(
    feature = "memory",
    feature = "redis",
    feature = "sqlite",
    feature = "postgres"
))]
pub(crate) fn conflict(
    kind: &'static str,
    id: impl Into<String>,
    reason: impl Into<String>,
) -> RegistryError {
    RegistryError::Conflict {
        kind,
        id: id.into(),
        reason: reason.into(),
    }
}

#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
/// A tool key as stored: the private key encrypted.
#[derive(Clone, Debug)]
pub(crate) struct SealedKey {
    pub(crate) kid: String,
    pub(crate) alg: String,
    pub(crate) sealed_private_key: String,
    pub(crate) status: lti_registry::KeyStatus,
    pub(crate) created_at: i64,
    pub(crate) activated_at: Option<i64>,
    pub(crate) retired_at: Option<i64>,
}

#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
impl SealedKey {
    pub(crate) fn open(
        &self,
        cipher: &lti_registry::SecretCipher,
    ) -> Result<lti_registry::ToolKey> {
        let private_key_pem =
            cipher.decrypt(&self.sealed_private_key, &tool_key_context(&self.kid))?;
        let mut key = new_tool_key(
            &self.kid,
            &self.alg,
            private_key_pem,
            self.status,
            self.created_at,
        );
        key.activated_at = self.activated_at;
        key.retired_at = self.retired_at;
        Ok(key)
    }
}

#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
/// Builds a `ToolKey` (its fields are public but the type is non-exhaustive).
pub(crate) fn new_tool_key(
    kid: &str,
    alg: &str,
    private_key_pem: lti_registry::SecretString,
    status: lti_registry::KeyStatus,
    created_at: i64,
) -> lti_registry::ToolKey {
    lti_registry::ToolKey::new(kid, alg, private_key_pem, status, created_at)
}

#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
/// Whether a retired key is still inside the publication overlap.
pub(crate) fn is_published(
    status: lti_registry::KeyStatus,
    retired_at: Option<i64>,
    overlap: i64,
    now: i64,
) -> bool {
    match status {
        lti_registry::KeyStatus::Retired => {
            retired_at.is_some_and(|t| t.saturating_add(overlap) > now)
        }
        _ => true,
    }
}

#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
/// A consumer as stored: the secret encrypted.
#[derive(Clone, Debug)]
pub(crate) struct SealedConsumer {
    pub(crate) key: String,
    pub(crate) sealed_secret: String,
    pub(crate) name: String,
    pub(crate) instance_guid: Option<String>,
    pub(crate) created_at: i64,
}

#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
impl SealedConsumer {
    pub(crate) fn seal(
        c: &lti_registry::Consumer,
        cipher: &lti_registry::SecretCipher,
    ) -> Result<Self> {
        c.validate()?;
        Ok(Self {
            key: c.key.clone(),
            sealed_secret: cipher.encrypt(c.secret.expose(), &consumer_context(&c.key))?,
            name: c.name.clone(),
            instance_guid: c.instance_guid.clone(),
            created_at: c.created_at,
        })
    }

    pub(crate) fn open(
        &self,
        cipher: &lti_registry::SecretCipher,
    ) -> Result<lti_registry::Consumer> {
        let secret = cipher.decrypt(&self.sealed_secret, &consumer_context(&self.key))?;
        let mut c = lti_registry::Consumer::new(
            self.key.clone(),
            secret,
            self.name.clone(),
            self.created_at,
        );
        c.instance_guid.clone_from(&self.instance_guid);
        Ok(c)
    }
}

#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
pub(crate) fn guid_conflict(key: &str, existing: &str) -> RegistryError {
    conflict(
        "consumer",
        key,
        format!("expected no instance GUID or the same one, found {existing:?} already recorded"),
    )
}

#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
pub(crate) fn guid_taken(guid: &str) -> RegistryError {
    conflict(
        "consumer",
        guid,
        "expected an instance GUID not owned by another consumer, found it recorded on another consumer",
    )
}

#[cfg(any(feature = "memory", feature = "sqlite", feature = "postgres"))]
/// Decrypts keys and sorts them in the documented order.
pub(crate) fn open_sorted(
    sealed: &[SealedKey],
    cipher: &lti_registry::SecretCipher,
) -> Result<Vec<lti_registry::ToolKey>> {
    let mut keys = sealed
        .iter()
        .map(|k| k.open(cipher))
        .collect::<Result<Vec<_>>>()?;
    lti_registry::sort_keys(&mut keys);
    Ok(keys)
}
