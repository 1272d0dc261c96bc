//! `lti platforms …` and `lti keys …`: the registry and the tool's keys,
//! operated on the configured store while `lti serve` instances run on it.
//!
//! Every change is one store call (registrations and deployments are read per
//! launch, keys per JWKS request and per signature), so instances sharing a
//! SQLite file or a PostgreSQL database see it on their next request; a
//! `memory://` store is private to one process and cannot be operated from
//! outside.

use lti_jose::SigningKey;
use lti_registry::{
    Deployment, DeploymentStatus, KeyStatus, PlatformRegistration, RegistryError, Store, ToolKey,
};

use crate::config::{Config, PlatformConfig, Problem};
use crate::error::AppError;

/// Checks one platform entry with the rules `check-config` applies to
/// `[[platforms]]` (https URLs except loopback, non-empty ids, at least one
/// deployment id), naming each problem by its command-line flag.
///
/// # Errors
/// [`AppError::Config`] listing every problem.
pub fn check_platform(platform: &PlatformConfig) -> Result<(), AppError> {
    let config = Config {
        platforms: vec![platform.clone()],
        ..crate::config::embedded_default()
    };
    let problems: Vec<Problem> = config
        .validate()
        .into_iter()
        .filter_map(|p| {
            let rest = p.path.strip_prefix("platforms[0].")?;
            Some(Problem {
                path: match rest {
                    "deployment_ids" => "--deployment-id".to_owned(),
                    other => format!("--{}", other.replace('_', "-")),
                },
                message: p.message,
            })
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AppError::Config(problems))
    }
}

/// What [`import_platform_file`] did.
#[derive(Debug, Clone)]
pub struct ImportSummary {
    /// The detected format.
    pub format: lti_registry::import::ForeignFormat,
    /// Registrations new to the store.
    pub inserted: Vec<PlatformRegistration>,
    /// Registrations that replaced a stored one.
    pub updated: Vec<PlatformRegistration>,
    /// Members read but not carried over, by key path.
    pub notes: Vec<String>,
}

/// Imports a mimilti issuer map or a PyLTI1.3 `config.json` into the store:
/// each registration is checked like a `[[platforms]]` entry (https URLs
/// except loopback), registrations without deployment ids get
/// `no_deployments`, and an existing (issuer, client id) is replaced only
/// with `replace`. Nothing is written when any entry is invalid.
///
/// # Errors
/// [`AppError::Config`] naming the file and the key path of the first
/// problem; [`AppError::Store`] (`conflict`) for an existing registration
/// without `replace`.
pub async fn import_platform_file(
    store: &Store,
    path: &std::path::Path,
    no_deployments: crate::config::UnknownDeploymentsMode,
    replace: bool,
) -> Result<ImportSummary, AppError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AppError::io("reading the registration file", path, e))?;
    let found = crate::config::check_foreign(&text, no_deployments).map_err(|message| {
        AppError::Config(vec![Problem {
            path: path.display().to_string(),
            message,
        }])
    })?;
    if !replace {
        for r in &found.registrations {
            if store
                .registrations
                .get_registration(&r.issuer, &r.client_id)
                .await
                .is_ok()
            {
                return Err(RegistryError::Conflict {
                    kind: "registration",
                    id: format!("{} / {}", r.issuer, r.client_id),
                    reason: "expected a new registration, found one stored (pass --replace)"
                        .to_owned(),
                }
                .into());
            }
        }
    }
    let mut summary = ImportSummary {
        format: found.format,
        inserted: Vec::new(),
        updated: Vec::new(),
        notes: found.notes,
    };
    for r in found.registrations {
        match store.registrations.insert_registration(&r).await {
            Ok(()) => summary.inserted.push(r),
            Err(RegistryError::Conflict { .. }) if replace => {
                store.registrations.update_registration(&r).await?;
                summary.updated.push(r);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(summary)
}

/// Adds (or, with `replace`, replaces) a registration built from `platform`
/// exactly as `lti serve` builds one from a `[[platforms]]` entry.
///
/// # Errors
/// [`AppError::Config`] for an invalid entry, [`AppError::Store`] (`conflict`
/// when the registration exists and `replace` is off).
pub async fn add_platform(
    store: &Store,
    platform: &PlatformConfig,
    replace: bool,
) -> Result<PlatformRegistration, AppError> {
    check_platform(platform)?;
    let registration = crate::server::registration_from_config(platform)?;
    match store.registrations.insert_registration(&registration).await {
        Ok(()) => {}
        Err(RegistryError::Conflict { .. }) if replace => {
            store
                .registrations
                .update_registration(&registration)
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(registration)
}

/// Every registration, sorted by issuer then client id.
///
/// # Errors
/// [`AppError::Store`].
pub async fn list_platforms(store: &Store) -> Result<Vec<PlatformRegistration>, AppError> {
    let mut all = store.registrations.list_registrations().await?;
    all.sort_by(|a, b| (&a.issuer, &a.client_id).cmp(&(&b.issuer, &b.client_id)));
    Ok(all)
}

/// The registration of `issuer` (and `client_id`, needed when the issuer has
/// several).
///
/// # Errors
/// [`AppError::Store`] (`not_found`, or `ambiguous` for an issuer with several
/// client ids and none given).
pub async fn find_platform(
    store: &Store,
    issuer: &str,
    client_id: Option<&str>,
) -> Result<PlatformRegistration, AppError> {
    let found = match client_id {
        Some(id) => store.registrations.get_registration(issuer, id).await?,
        None => store.registrations.find_by_issuer(issuer).await?,
    };
    Ok((*found).clone())
}

/// Removes the registration `(issuer, client_id)`.
///
/// # Errors
/// [`AppError::Store`] (`not_found`).
pub async fn remove_platform(store: &Store, issuer: &str, client_id: &str) -> Result<(), AppError> {
    store
        .registrations
        .delete_registration(issuer, client_id)
        .await?;
    Ok(())
}

/// Approves a registration that waits as pending (a dynamic registration
/// under `approval = "manual"`), or re-activates a disabled one, and returns
/// it as stored. Running instances accept its launches from their next login.
///
/// # Errors
/// [`AppError::Store`] (`not_found`).
pub async fn approve_platform(
    store: &Store,
    issuer: &str,
    client_id: &str,
) -> Result<PlatformRegistration, AppError> {
    let registration = store
        .registrations
        .get_registration(issuer, client_id)
        .await?;
    if registration.status != DeploymentStatus::Active {
        let mut updated = (*registration).clone();
        updated.status = DeploymentStatus::Active;
        store.registrations.update_registration(&updated).await?;
    }
    find_platform(store, issuer, Some(client_id)).await
}

/// A change to one deployment of a registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentChange {
    /// Add it as active (or make an existing one active).
    Add,
    /// Make a pending (or inactive) deployment active.
    Approve,
    /// Keep it recorded but refuse its launches.
    Disable,
    /// Forget it.
    Remove,
}

/// Applies `change` to `deployment_id` of `(issuer, client_id)` and returns the
/// registration as stored afterwards.
///
/// # Errors
/// [`AppError::Store`]: `not_found` for an unknown registration, or for an
/// unknown deployment with anything but [`DeploymentChange::Add`];
/// `invalid_input` for an empty or oversized id.
pub async fn change_deployment(
    store: &Store,
    issuer: &str,
    client_id: &str,
    deployment_id: &str,
    change: DeploymentChange,
    now: i64,
) -> Result<PlatformRegistration, AppError> {
    lti_registry::check_id("deployment id", deployment_id)?;
    let registration = store
        .registrations
        .get_registration(issuer, client_id)
        .await?;
    let existing = registration
        .deployments
        .iter()
        .find(|d| d.deployment_id == deployment_id);
    if existing.is_none() && change != DeploymentChange::Add {
        return Err(RegistryError::not_found("deployment", deployment_id).into());
    }
    match change {
        DeploymentChange::Remove => {
            let mut updated = (*registration).clone();
            updated
                .deployments
                .retain(|d| d.deployment_id != deployment_id);
            store.registrations.update_registration(&updated).await?;
        }
        DeploymentChange::Add | DeploymentChange::Approve | DeploymentChange::Disable => {
            let status = if change == DeploymentChange::Disable {
                DeploymentStatus::Inactive
            } else {
                DeploymentStatus::Active
            };
            let created_at = existing.map_or(now, |d| d.created_at);
            let mut deployment = Deployment::with_status(deployment_id, status, created_at);
            deployment.label = existing.and_then(|d| d.label.clone());
            store
                .registrations
                .upsert_deployment(issuer, client_id, &deployment)
                .await?;
        }
    }
    find_platform(store, issuer, Some(client_id)).await
}

/// What [`rotate_key`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// A new key was published as `next`: platforms can fetch it before it signs.
    Published {
        /// The new key's id.
        kid: String,
    },
    /// The waiting `next` key now signs; the previous one stays published as
    /// retired for the overlap.
    Promoted {
        /// The key that now signs.
        active: String,
        /// The key it replaced, if there was one.
        retired: Option<String>,
    },
}

/// One step of a key rotation:
/// 1. with no `next` key waiting, generates an RSA key of `bits` and publishes
///    it as `next` (the JWKS of every instance lists it at once; it does not
///    sign yet);
/// 2. with one waiting for at least `min_published_secs` (platforms cache the
///    tool's JWKS for up to its `max-age`), or with `force`, promotes it: it
///    signs from the next request on, and the old key is retired but stays in
///    the JWKS for the retired-key overlap.
///
/// Either way, keys retired more than `retired_overlap_secs` ago are purged.
///
/// # Errors
/// [`AppError::RotationTooEarly`] before the next key has been published long
/// enough; [`AppError::InvalidBits`], [`AppError::Key`], [`AppError::Store`].
pub async fn rotate_key(
    store: &Store,
    now: i64,
    bits: usize,
    min_published_secs: i64,
    retired_overlap_secs: i64,
    force: bool,
) -> Result<Rotation, AppError> {
    if ![2048, 3072, 4096].contains(&bits) {
        return Err(AppError::InvalidBits { found: bits });
    }
    store
        .tool_keys
        .purge_retired_keys(now.saturating_sub(retired_overlap_secs))
        .await?;
    let keys = store.tool_keys.list_keys().await?;
    let previous = keys
        .iter()
        .find(|k| k.status == KeyStatus::Active)
        .map(|k| k.kid.clone());
    match keys.iter().find(|k| k.status == KeyStatus::Next) {
        None => {
            let (key, pem) = SigningKey::generate_rsa(bits).map_err(|source| AppError::Key {
                path: "generated key".into(),
                source,
            })?;
            let kid = key.kid().to_owned();
            store
                .tool_keys
                .add_next_key(&kid, "RS256", &lti_registry::SecretString::new(pem))
                .await?;
            Ok(Rotation::Published { kid })
        }
        Some(next) => {
            let waited = now.saturating_sub(next.created_at);
            if !force && waited < min_published_secs {
                return Err(AppError::RotationTooEarly {
                    kid: next.kid.clone(),
                    waited,
                    required: min_published_secs,
                });
            }
            let active = store.tool_keys.promote_next_key().await?;
            Ok(Rotation::Promoted {
                active: active.kid,
                retired: previous,
            })
        }
    }
}

/// Every tool key (never the private part), active first, then next, then
/// retired (newest first).
///
/// # Errors
/// [`AppError::Store`].
pub async fn list_keys(store: &Store) -> Result<Vec<ToolKey>, AppError> {
    let mut keys = store.tool_keys.list_keys().await?;
    let rank = |s: KeyStatus| match s {
        KeyStatus::Active => 0,
        KeyStatus::Next => 1,
        _ => 2,
    };
    keys.sort_by(|a, b| {
        rank(a.status)
            .cmp(&rank(b.status))
            .then(b.created_at.cmp(&a.created_at))
    });
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platform() -> PlatformConfig {
        PlatformConfig {
            issuer: "https://lms.example.edu".into(),
            client_id: "client-1".into(),
            auth_login_url: "https://lms.example.edu/auth".into(),
            auth_token_url: "https://lms.example.edu/token".into(),
            jwks_url: "https://lms.example.edu/jwks".into(),
            deployment_ids: vec!["d1".into()],
            profile: None,
        }
    }

    #[test]
    fn a_platform_entry_is_checked_like_the_config_file_and_named_by_flag() {
        assert!(check_platform(&platform()).is_ok());
        let mut bad = platform();
        bad.jwks_url = "http://lms.example.edu/jwks".into();
        bad.deployment_ids.clear();
        let Err(AppError::Config(problems)) = check_platform(&bad) else {
            panic!("expected Config problems");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["--jwks-url", "--deployment-id"], "{problems:?}");
    }
}
