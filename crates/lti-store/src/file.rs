//! Registrations and deployments read from a configuration file (TOML or
//! JSON), including the issuer map and `config.json` of existing Python tools.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use lti_registry::import::{ForeignRegistrations, parse_foreign};
use lti_registry::{
    AutoRegistrationPolicy, Deployment, PlatformRegistration, RegistrationStore, RegistryError,
    Result, UnknownDeploymentPolicy,
};
use serde::Deserialize;

use crate::common::{Registrations, registration_id};

const BACKEND: &str = "file";

/// The native file layout (TOML or JSON):
///
/// ```toml
/// [[registrations]]
/// issuer = "https://lms.example"
/// client_id = "abc"
/// auth_login_url = "https://lms.example/auth"
/// auth_token_url = "https://lms.example/token"
/// key_source = { type = "jwks_url", url = "https://lms.example/jwks" }
/// deployments = [{ deployment_id = "1" }]
/// quirks = "moodle"
///
/// [[auto_registration]]
/// issuer = "https://canvas.instructure.com"
/// jwks_url_template = "https://sso.canvaslms.com/api/lti/security/jwks"
/// auth_login_url = "https://sso.canvaslms.com/api/lti/authorize_redirect"
/// auth_token_url = "https://sso.canvaslms.com/login/oauth2/token"
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NativeFile {
    #[serde(default)]
    registrations: Vec<PlatformRegistration>,
    #[serde(default)]
    auto_registration: Vec<AutoRegistrationPolicy>,
}

#[derive(Debug, Default)]
struct FileData {
    registrations: Registrations,
    auto_registration: BTreeMap<String, AutoRegistrationPolicy>,
}

impl FileData {
    fn from_native(doc: NativeFile) -> Result<Self> {
        let mut data = Self::default();
        for r in doc.registrations {
            data.add(r)?;
        }
        for p in doc.auto_registration {
            p.validate()?;
            if data
                .auto_registration
                .insert(p.issuer.clone(), p.clone())
                .is_some()
            {
                return Err(duplicate("auto_registration", &p.issuer));
            }
        }
        Ok(data)
    }

    fn from_foreign(found: ForeignRegistrations) -> Result<Self> {
        let mut data = Self::default();
        for r in found.registrations {
            data.add(r)?;
        }
        Ok(data)
    }

    fn add(&mut self, r: PlatformRegistration) -> Result<()> {
        r.validate()?;
        if self.registrations.contains(&r.issuer, &r.client_id) {
            return Err(duplicate(
                "registrations",
                &registration_id(&r.issuer, &r.client_id),
            ));
        }
        self.registrations.put(r);
        Ok(())
    }
}

fn duplicate(field: &'static str, id: &str) -> RegistryError {
    RegistryError::InvalidInput {
        field,
        expected: "each entry once",
        found: format!("{id:?} twice"),
    }
}

fn parse_error(expected: &'static str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::InvalidInput {
        field: "registration file",
        expected,
        found: e.to_string(),
    }
}

/// How a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Toml,
    Json,
}

fn parse(
    text: &str,
    format: Format,
    issuer_map_policy: UnknownDeploymentPolicy,
) -> Result<FileData> {
    match format {
        Format::Toml => {
            let doc: NativeFile = toml::from_str(text)
                .map_err(|e| parse_error("the registration file layout in TOML", e))?;
            FileData::from_native(doc)
        }
        Format::Json => {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| parse_error("a JSON document", e))?;
            let foreign = value.get("issuers").is_some()
                || value
                    .as_object()
                    .is_some_and(|o| o.keys().any(|k| k.starts_with("http")));
            if foreign {
                FileData::from_foreign(parse_foreign(text, issuer_map_policy)?)
            } else {
                let doc: NativeFile = serde_json::from_value(value)
                    .map_err(|e| parse_error("the registration file layout in JSON", e))?;
                FileData::from_native(doc)
            }
        }
    }
}

/// What [`FileRegistry::import_into`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// Registrations that were new to the target.
    pub inserted: usize,
    /// Registrations that replaced one in the target.
    pub updated: usize,
    /// Auto-registration policies written.
    pub policies: usize,
}

/// A read-only [`RegistrationStore`] loaded from a file, with [`FileRegistry::reload`].
///
/// `.toml` files use the native layout; `.json` files use the native layout
/// or one of the foreign layouts read by [`lti_registry::import`]: a Python
/// issuer map (an `"issuers"` object, as mimilti reads it) or PyLTI1.3's
/// `config.json` (issuer URLs as top-level keys); foreign registrations
/// without deployment ids get the issuer-map policy given at load. Every write answers `ReadOnly`, including
/// the recording done by the `RecordPendingAndReject`/`AcceptAndRecord`
/// deployment policies and by auto-registration: to use those, copy the file
/// into a writable store with [`FileRegistry::import_into`].
pub struct FileRegistry {
    path: Option<PathBuf>,
    format: Format,
    issuer_map_policy: UnknownDeploymentPolicy,
    data: RwLock<Arc<FileData>>,
}

impl std::fmt::Debug for FileRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRegistry")
            .field("path", &self.path)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl FileRegistry {
    /// Loads `path` (`.toml` or `.json`). Registrations imported from an
    /// issuer map reject unknown deployments.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with_issuer_map_policy(path, UnknownDeploymentPolicy::Reject)
    }

    /// Like [`FileRegistry::load`], giving foreign-format registrations that
    /// list no deployment ids `policy`.
    pub fn load_with_issuer_map_policy(
        path: impl AsRef<Path>,
        policy: UnknownDeploymentPolicy,
    ) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("toml") => Format::Toml,
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            other => {
                return Err(RegistryError::InvalidInput {
                    field: "registration file",
                    expected: "a .toml or .json file",
                    found: format!("extension {other:?}"),
                });
            }
        };
        let data = parse(&read(&path)?, format, policy)?;
        Ok(Self {
            path: Some(path),
            format,
            issuer_map_policy: policy,
            data: RwLock::new(Arc::new(data)),
        })
    }

    /// Parses the native layout from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        Self::from_text(text, Format::Toml, UnknownDeploymentPolicy::Reject)
    }

    /// Parses the native layout or an issuer map from JSON text.
    pub fn from_json_str(text: &str, issuer_map_policy: UnknownDeploymentPolicy) -> Result<Self> {
        Self::from_text(text, Format::Json, issuer_map_policy)
    }

    fn from_text(text: &str, format: Format, policy: UnknownDeploymentPolicy) -> Result<Self> {
        Ok(Self {
            path: None,
            format,
            issuer_map_policy: policy,
            data: RwLock::new(Arc::new(parse(text, format, policy)?)),
        })
    }

    /// Re-reads the file. On error the previous contents stay in force.
    /// Returns the number of registrations now loaded.
    pub fn reload(&self) -> Result<usize> {
        let Some(path) = &self.path else {
            return Err(RegistryError::InvalidInput {
                field: "registration file",
                expected: "a registry loaded from a file",
                found: "one parsed from a string".to_owned(),
            });
        };
        let data = parse(&read(path)?, self.format, self.issuer_map_policy)?;
        let n = data.registrations.len();
        *self.data.write().map_err(|_| poisoned())? = Arc::new(data);
        tracing::info!(path = %path.display(), registrations = n, "reloaded registration file");
        Ok(n)
    }

    fn snapshot(&self) -> Result<Arc<FileData>> {
        Ok(self.data.read().map_err(|_| poisoned())?.clone())
    }

    /// Copies every registration and auto-registration policy into `target`
    /// (inserting new ones, replacing existing ones).
    pub async fn import_into(&self, target: &dyn RegistrationStore) -> Result<ImportReport> {
        let data = self.snapshot()?;
        let mut report = ImportReport::default();
        for r in data.registrations.all() {
            match target.insert_registration(r).await {
                Ok(()) => report.inserted += 1,
                Err(RegistryError::Conflict { .. }) => {
                    target.update_registration(r).await?;
                    report.updated += 1;
                }
                Err(e) => return Err(e),
            }
        }
        for p in data.auto_registration.values() {
            target.set_auto_registration(p).await?;
            report.policies += 1;
        }
        Ok(report)
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        RegistryError::unavailable(BACKEND, format!("cannot read {}: {e}", path.display()))
    })
}

fn poisoned() -> RegistryError {
    RegistryError::unavailable(BACKEND, "a previous reload panicked")
}

fn read_only(operation: &'static str) -> RegistryError {
    RegistryError::ReadOnly {
        backend: BACKEND,
        operation,
    }
}

#[async_trait]
impl RegistrationStore for FileRegistry {
    async fn get_registration(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Arc<PlatformRegistration>> {
        self.snapshot()?.registrations.get(issuer, client_id)
    }

    async fn find_by_issuer(&self, issuer: &str) -> Result<Arc<PlatformRegistration>> {
        self.snapshot()?.registrations.only_of(issuer)
    }

    async fn list_registrations(&self) -> Result<Vec<PlatformRegistration>> {
        Ok(self.snapshot()?.registrations.all().cloned().collect())
    }

    async fn insert_registration(&self, _: &PlatformRegistration) -> Result<()> {
        Err(read_only("insert_registration"))
    }

    async fn update_registration(&self, _: &PlatformRegistration) -> Result<()> {
        Err(read_only("update_registration"))
    }

    async fn delete_registration(&self, _: &str, _: &str) -> Result<()> {
        Err(read_only("delete_registration"))
    }

    async fn upsert_deployment(&self, _: &str, _: &str, _: &Deployment) -> Result<()> {
        Err(read_only("upsert_deployment"))
    }

    async fn set_auto_registration(&self, _: &AutoRegistrationPolicy) -> Result<()> {
        Err(read_only("set_auto_registration"))
    }

    async fn get_auto_registration(&self, issuer: &str) -> Result<Option<AutoRegistrationPolicy>> {
        Ok(self.snapshot()?.auto_registration.get(issuer).cloned())
    }

    async fn remove_auto_registration(&self, _: &str) -> Result<()> {
        Err(read_only("remove_auto_registration"))
    }
}
