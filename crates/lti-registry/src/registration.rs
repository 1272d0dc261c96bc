//! Platform registrations, deployments and per-issuer auto-registration.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{RegistryError, Result};

/// The algorithms a registration accepts when none are configured.
pub const DEFAULT_ALGORITHMS: &[&str] = &["RS256"];

/// The placeholder an [`AutoRegistrationPolicy::jwks_url_template`] must contain.
pub const CLIENT_ID_PLACEHOLDER: &str = "{client_id}";

/// How a platform publishes the keys it signs id tokens with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeySource {
    /// A JWKS document fetched (and cached) from this URL.
    JwksUrl {
        /// The JWKS URL.
        url: String,
    },
    /// A key set configured statically (a JWKS JSON object `{"keys": [...]}`).
    StaticJwks {
        /// The JWKS document.
        jwks: serde_json::Value,
    },
}

/// Known deviations of a platform from the specification, selected by name.
///
/// The flows in `lti-tool` switch behaviour on this profile; the registry only stores it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum QuirkProfile {
    /// Instructure Canvas.
    Canvas,
    /// Moodle.
    Moodle,
    /// Anthology Blackboard Learn.
    Blackboard,
    /// D2L Brightspace.
    Brightspace,
    /// Sakai.
    Sakai,
    /// PowerSchool Schoology.
    Schoology,
    /// A platform that follows the specification.
    #[default]
    Generic,
}

impl QuirkProfile {
    /// The profile's lower-case name as used in configuration files.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Canvas => "canvas",
            Self::Moodle => "moodle",
            Self::Blackboard => "blackboard",
            Self::Brightspace => "brightspace",
            Self::Sakai => "sakai",
            Self::Schoology => "schoology",
            Self::Generic => "generic",
        }
    }
}

impl std::str::FromStr for QuirkProfile {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "canvas" => Self::Canvas,
            "moodle" => Self::Moodle,
            "blackboard" => Self::Blackboard,
            "brightspace" | "d2l" => Self::Brightspace,
            "sakai" => Self::Sakai,
            "schoology" => Self::Schoology,
            "generic" => Self::Generic,
            _ => {
                return Err(RegistryError::InvalidInput {
                    field: "quirks",
                    expected: "one of canvas, moodle, blackboard, brightspace, sakai, schoology, generic",
                    found: s.to_owned(),
                });
            }
        })
    }
}

impl std::fmt::Display for QuirkProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a deployment (or a whole registration) may launch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeploymentStatus {
    /// Launches from this deployment are accepted.
    #[default]
    Active,
    /// Seen in a launch and recorded, waiting for an administrator; launches are rejected.
    Pending,
    /// Disabled by an administrator; launches are rejected.
    Inactive,
}

impl DeploymentStatus {
    /// The status' lower-case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
            Self::Inactive => "inactive",
        }
    }

    /// Whether this is [`DeploymentStatus::Active`].
    #[must_use]
    pub fn is_active(&self) -> bool {
        *self == Self::Active
    }

    /// Parses a name produced by [`DeploymentStatus::as_str`].
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(Self::Active),
            "pending" => Ok(Self::Pending),
            "inactive" => Ok(Self::Inactive),
            _ => Err(RegistryError::InvalidInput {
                field: "deployment status",
                expected: "active, pending or inactive",
                found: s.to_owned(),
            }),
        }
    }
}

impl std::fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One deployment of the tool on a platform (`https://purl.imsglobal.org/spec/lti/claim/deployment_id`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Deployment {
    /// The deployment id as sent by the platform.
    pub deployment_id: String,
    /// Whether launches from it are accepted.
    #[serde(default)]
    pub status: DeploymentStatus,
    /// An optional human label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// When it was first recorded (unix seconds; 0 when configured statically).
    #[serde(default)]
    pub created_at: i64,
}

impl Deployment {
    /// An active deployment.
    #[must_use]
    pub fn active(deployment_id: impl Into<String>) -> Self {
        Self {
            deployment_id: deployment_id.into(),
            status: DeploymentStatus::Active,
            label: None,
            created_at: 0,
        }
    }

    /// A deployment with the given status, recorded at `created_at`.
    #[must_use]
    pub fn with_status(
        deployment_id: impl Into<String>,
        status: DeploymentStatus,
        created_at: i64,
    ) -> Self {
        Self {
            deployment_id: deployment_id.into(),
            status,
            label: None,
            created_at,
        }
    }
}

/// What to do when a launch names a deployment id the registration does not know.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnknownDeploymentPolicy {
    /// Reject the launch; nothing is recorded. The secure default.
    #[default]
    Reject,
    /// Record the deployment as [`DeploymentStatus::Pending`] (so an
    /// administrator can approve it) and reject the launch.
    RecordPendingAndReject,
    /// Record the deployment as active and accept the launch (Canvas creates a
    /// new deployment id per course copy; this trusts every deployment the
    /// already-verified platform signs for).
    AcceptAndRecord,
    /// While the registration has no deployment at all, record the launch's
    /// deployment as active and accept it (a platform that registered the tool
    /// dynamically without naming a deployment, as Canvas does); once one is
    /// known, behave as [`Self::RecordPendingAndReject`].
    AcceptFirstAndRecord,
}

/// The key a registration is stored under: (issuer, client id).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RegistrationKey {
    /// The platform's issuer (`iss`).
    pub issuer: String,
    /// The tool's client id on that platform (`aud`/`azp`).
    pub client_id: String,
}

impl RegistrationKey {
    /// Builds a key.
    #[must_use]
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
        }
    }
}

impl std::fmt::Display for RegistrationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.issuer, self.client_id)
    }
}

/// A platform the tool trusts, identified by (issuer, client id).
///
/// Invariants (checked by [`PlatformRegistration::validate`], which every
/// store calls before writing): issuer, client id and both URLs are non-empty,
/// `allowed_algorithms` is non-empty, deployment ids are unique and non-empty.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PlatformRegistration {
    /// The platform's issuer (`iss`).
    pub issuer: String,
    /// The client id the platform assigned to the tool.
    pub client_id: String,
    /// The platform's OIDC authorization endpoint (login redirect target).
    pub auth_login_url: String,
    /// The platform's OAuth 2 token endpoint (for service access tokens).
    pub auth_token_url: String,
    /// The `aud` for client assertions when it is not the token URL (Brightspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_audience: Option<String>,
    /// Where the platform's signing keys come from.
    pub key_source: KeySource,
    /// Known deployments.
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    /// What to do with an unknown deployment id.
    #[serde(default)]
    pub unknown_deployment_policy: UnknownDeploymentPolicy,
    /// The platform's quirk profile.
    #[serde(default)]
    pub quirks: QuirkProfile,
    /// JWS algorithms accepted for id tokens from this platform.
    #[serde(default = "default_algorithms")]
    pub allowed_algorithms: Vec<String>,
    /// Free-form metadata (display name, contact, ...).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Whether the registration may launch at all: a dynamically registered
    /// platform waits as [`DeploymentStatus::Pending`] until an administrator
    /// approves it. Default active.
    #[serde(default, skip_serializing_if = "DeploymentStatus::is_active")]
    pub status: DeploymentStatus,
}

fn default_algorithms() -> Vec<String> {
    DEFAULT_ALGORITHMS.iter().map(|s| (*s).to_owned()).collect()
}

impl PlatformRegistration {
    /// A registration with no deployments, the generic quirk profile, the
    /// `Reject` unknown-deployment policy and RS256 only.
    #[must_use]
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        auth_login_url: impl Into<String>,
        auth_token_url: impl Into<String>,
        key_source: KeySource,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            client_id: client_id.into(),
            auth_login_url: auth_login_url.into(),
            auth_token_url: auth_token_url.into(),
            token_audience: None,
            key_source,
            deployments: Vec::new(),
            unknown_deployment_policy: UnknownDeploymentPolicy::Reject,
            quirks: QuirkProfile::Generic,
            allowed_algorithms: default_algorithms(),
            metadata: BTreeMap::new(),
            status: DeploymentStatus::Active,
        }
    }

    /// Sets the registration's status (builder style).
    #[must_use]
    pub fn with_status(mut self, status: DeploymentStatus) -> Self {
        self.status = status;
        self
    }

    /// Adds a deployment (builder style).
    #[must_use]
    pub fn with_deployment(mut self, deployment: Deployment) -> Self {
        self.deployments.push(deployment);
        self
    }

    /// Sets the quirk profile (builder style).
    #[must_use]
    pub fn with_quirks(mut self, quirks: QuirkProfile) -> Self {
        self.quirks = quirks;
        self
    }

    /// Sets the unknown-deployment policy (builder style).
    #[must_use]
    pub fn with_unknown_deployment_policy(mut self, policy: UnknownDeploymentPolicy) -> Self {
        self.unknown_deployment_policy = policy;
        self
    }

    /// Sets the token audience override (builder style).
    #[must_use]
    pub fn with_token_audience(mut self, audience: impl Into<String>) -> Self {
        self.token_audience = Some(audience.into());
        self
    }

    /// The registration's key.
    #[must_use]
    pub fn key(&self) -> RegistrationKey {
        RegistrationKey::new(self.issuer.clone(), self.client_id.clone())
    }

    /// The audience for client assertions: the override, else the token URL.
    #[must_use]
    pub fn token_audience(&self) -> &str {
        self.token_audience
            .as_deref()
            .unwrap_or(&self.auth_token_url)
    }

    /// The deployment with this id, if known.
    #[must_use]
    pub fn deployment(&self, deployment_id: &str) -> Option<&Deployment> {
        self.deployments
            .iter()
            .find(|d| d.deployment_id == deployment_id)
    }

    /// Checks the invariants listed on the type.
    pub fn validate(&self) -> Result<()> {
        non_empty("issuer", &self.issuer)?;
        non_empty("client_id", &self.client_id)?;
        non_empty("auth_login_url", &self.auth_login_url)?;
        non_empty("auth_token_url", &self.auth_token_url)?;
        match &self.key_source {
            KeySource::JwksUrl { url } => non_empty("key_source.url", url)?,
            KeySource::StaticJwks { jwks } => {
                if !jwks.get("keys").is_some_and(serde_json::Value::is_array) {
                    return Err(RegistryError::InvalidInput {
                        field: "key_source.jwks",
                        expected: "a JWKS object with a \"keys\" array",
                        found: json_kind(jwks).to_owned(),
                    });
                }
            }
        }
        if self.allowed_algorithms.is_empty()
            || self.allowed_algorithms.iter().any(String::is_empty)
        {
            return Err(RegistryError::InvalidInput {
                field: "allowed_algorithms",
                expected: "a non-empty list of algorithm names",
                found: format!("{:?}", self.allowed_algorithms),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in &self.deployments {
            non_empty("deployment_id", &d.deployment_id)?;
            if !seen.insert(d.deployment_id.as_str()) {
                return Err(RegistryError::InvalidInput {
                    field: "deployments",
                    expected: "unique deployment ids",
                    found: format!("{:?} twice", d.deployment_id),
                });
            }
        }
        Ok(())
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object without a \"keys\" array",
    }
}

pub(crate) fn non_empty(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        Err(RegistryError::InvalidInput {
            field,
            expected: "a non-empty string",
            found: "an empty string".to_owned(),
        })
    } else {
        Ok(())
    }
}

/// Per-issuer opt-in: accept a client id not seen before for a trusted
/// issuer, deriving its JWKS URL from a template.
///
/// Off by default (no policy stored means no auto-registration). Every
/// registration created through it is persisted and logged (`tracing` at
/// `warn` level, target `lti_registry::auto_registration`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AutoRegistrationPolicy {
    /// The trusted issuer.
    pub issuer: String,
    /// The JWKS URL for a new client id; `{client_id}` is replaced by the
    /// (percent-encoded) client id. A template without the placeholder means
    /// every registration of the platform shares one JWKS URL.
    pub jwks_url_template: String,
    /// OIDC authorization endpoint for the new registrations.
    pub auth_login_url: String,
    /// Token endpoint for the new registrations.
    pub auth_token_url: String,
    /// Token audience override for the new registrations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_audience: Option<String>,
    /// Quirk profile for the new registrations.
    #[serde(default)]
    pub quirks: QuirkProfile,
    /// Unknown-deployment policy for the new registrations.
    #[serde(default)]
    pub unknown_deployment_policy: UnknownDeploymentPolicy,
    /// Algorithms for the new registrations.
    #[serde(default = "default_algorithms")]
    pub allowed_algorithms: Vec<String>,
}

impl AutoRegistrationPolicy {
    /// A policy with the generic quirk profile, `Reject` for unknown deployments and RS256.
    #[must_use]
    pub fn new(
        issuer: impl Into<String>,
        jwks_url_template: impl Into<String>,
        auth_login_url: impl Into<String>,
        auth_token_url: impl Into<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            jwks_url_template: jwks_url_template.into(),
            auth_login_url: auth_login_url.into(),
            auth_token_url: auth_token_url.into(),
            token_audience: None,
            quirks: QuirkProfile::Generic,
            unknown_deployment_policy: UnknownDeploymentPolicy::Reject,
            allowed_algorithms: default_algorithms(),
        }
    }

    /// Checks that the issuer, template and URLs are non-empty.
    pub fn validate(&self) -> Result<()> {
        non_empty("issuer", &self.issuer)?;
        non_empty("jwks_url_template", &self.jwks_url_template)?;
        non_empty("auth_login_url", &self.auth_login_url)?;
        non_empty("auth_token_url", &self.auth_token_url)
    }

    /// The registration this policy creates for `client_id`.
    pub fn registration_for(&self, client_id: &str) -> Result<PlatformRegistration> {
        non_empty("client_id", client_id)?;
        let url = self
            .jwks_url_template
            .replace(CLIENT_ID_PLACEHOLDER, &percent_encode(client_id));
        let mut reg = PlatformRegistration::new(
            self.issuer.clone(),
            client_id,
            self.auth_login_url.clone(),
            self.auth_token_url.clone(),
            KeySource::JwksUrl { url },
        );
        reg.token_audience.clone_from(&self.token_audience);
        reg.quirks = self.quirks;
        reg.unknown_deployment_policy = self.unknown_deployment_policy;
        reg.allowed_algorithms.clone_from(&self.allowed_algorithms);
        reg.metadata
            .insert("auto_registered".to_owned(), "true".to_owned());
        reg.validate()?;
        Ok(reg)
    }
}

/// Percent-encodes everything outside RFC 3986 unreserved characters, so a
/// client id cannot change the path or host of a templated URL.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Storage of platform registrations, their deployments and auto-registration policies.
///
/// Invariants every implementation keeps:
/// - at most one registration per (issuer, client id);
/// - [`RegistrationStore::find_by_issuer`] returns a registration only when
///   exactly one exists for the issuer, else `NotFound` or `AmbiguousIssuer`;
/// - registrations are validated ([`PlatformRegistration::validate`]) before
///   they are written;
/// - read-only backends answer every write with [`RegistryError::ReadOnly`].
#[async_trait]
pub trait RegistrationStore: Send + Sync {
    /// The registration for (issuer, client id), or `NotFound`. Shared, not
    /// copied: every login and launch reads one, and an in-process backend hands
    /// out the one it keeps.
    async fn get_registration(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Arc<PlatformRegistration>>;

    /// The only registration for `issuer`: `NotFound` if none, `AmbiguousIssuer` if several.
    async fn find_by_issuer(&self, issuer: &str) -> Result<Arc<PlatformRegistration>>;

    /// Every registration, ordered by (issuer, client id).
    async fn list_registrations(&self) -> Result<Vec<PlatformRegistration>>;

    /// Adds a registration; `Conflict` if (issuer, client id) exists.
    async fn insert_registration(&self, registration: &PlatformRegistration) -> Result<()>;

    /// Replaces an existing registration (deployments included); `NotFound` if absent.
    async fn update_registration(&self, registration: &PlatformRegistration) -> Result<()>;

    /// Deletes a registration and its deployments; `NotFound` if absent.
    async fn delete_registration(&self, issuer: &str, client_id: &str) -> Result<()>;

    /// Adds a deployment to a registration or replaces the one with the same
    /// id (status change); `NotFound` if the registration is absent.
    async fn upsert_deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment: &Deployment,
    ) -> Result<()>;

    /// Stores (or replaces) the auto-registration policy for its issuer.
    async fn set_auto_registration(&self, policy: &AutoRegistrationPolicy) -> Result<()>;

    /// The auto-registration policy for `issuer`, if one is enabled.
    async fn get_auto_registration(&self, issuer: &str) -> Result<Option<AutoRegistrationPolicy>>;

    /// Disables auto-registration for `issuer` (no-op if it was off).
    async fn remove_auto_registration(&self, issuer: &str) -> Result<()>;

    /// Resolves the registration a launch or login refers to.
    ///
    /// With a client id: the exact registration; if none exists and the issuer
    /// has an [`AutoRegistrationPolicy`], a registration is derived from it,
    /// persisted and logged. Without a client id: [`Self::find_by_issuer`].
    async fn resolve_registration(
        &self,
        issuer: &str,
        client_id: Option<&str>,
    ) -> Result<Arc<PlatformRegistration>> {
        let Some(client_id) = client_id else {
            return self.find_by_issuer(issuer).await;
        };
        match self.get_registration(issuer, client_id).await {
            Err(RegistryError::NotFound { .. }) => {}
            other => return other,
        }
        let Some(policy) = self.get_auto_registration(issuer).await? else {
            return Err(RegistryError::not_found(
                "registration",
                RegistrationKey::new(issuer, client_id).to_string(),
            ));
        };
        let registration = policy.registration_for(client_id)?;
        match self.insert_registration(&registration).await {
            Ok(()) => {
                tracing::warn!(
                    target: "lti_registry::auto_registration",
                    issuer = %registration.issuer,
                    client_id = %registration.client_id,
                    "auto-registered a new client id for a trusted issuer"
                );
                Ok(Arc::new(registration))
            }
            // Another instance auto-registered it concurrently.
            Err(RegistryError::Conflict { .. }) => self.get_registration(issuer, client_id).await,
            Err(e) => Err(e),
        }
    }

    /// Applies the deployment rules to a launch's deployment id and returns the
    /// (active) deployment, or the specific rejection.
    ///
    /// Known and active: accepted. Known but pending/inactive:
    /// `DeploymentInactive`. Unknown: per the registration's
    /// [`UnknownDeploymentPolicy`] — `UnknownDeployment` (after recording it as
    /// pending for `RecordPendingAndReject`), or recorded as active and
    /// accepted for `AcceptAndRecord`.
    async fn check_deployment(
        &self,
        registration: &PlatformRegistration,
        deployment_id: &str,
        now: i64,
    ) -> Result<Deployment> {
        non_empty("deployment_id", deployment_id)?;
        if let Some(d) = registration.deployment(deployment_id) {
            return match d.status {
                DeploymentStatus::Active => Ok(d.clone()),
                status => Err(RegistryError::DeploymentInactive {
                    deployment_id: deployment_id.to_owned(),
                    status,
                }),
            };
        }
        let unknown = |recorded_as_pending| RegistryError::UnknownDeployment {
            issuer: registration.issuer.clone(),
            client_id: registration.client_id.clone(),
            deployment_id: deployment_id.to_owned(),
            recorded_as_pending,
        };
        let policy = match registration.unknown_deployment_policy {
            UnknownDeploymentPolicy::AcceptFirstAndRecord
                if registration.deployments.is_empty() =>
            {
                UnknownDeploymentPolicy::AcceptAndRecord
            }
            UnknownDeploymentPolicy::AcceptFirstAndRecord => {
                UnknownDeploymentPolicy::RecordPendingAndReject
            }
            other => other,
        };
        match policy {
            UnknownDeploymentPolicy::Reject => Err(unknown(false)),
            UnknownDeploymentPolicy::RecordPendingAndReject
            | UnknownDeploymentPolicy::AcceptFirstAndRecord => {
                let d = Deployment::with_status(deployment_id, DeploymentStatus::Pending, now);
                self.upsert_deployment(&registration.issuer, &registration.client_id, &d)
                    .await?;
                tracing::info!(
                    target: "lti_registry::deployments",
                    issuer = %registration.issuer,
                    client_id = %registration.client_id,
                    deployment_id,
                    "recorded an unknown deployment as pending"
                );
                Err(unknown(true))
            }
            UnknownDeploymentPolicy::AcceptAndRecord => {
                let d = Deployment::with_status(deployment_id, DeploymentStatus::Active, now);
                self.upsert_deployment(&registration.issuer, &registration.client_id, &d)
                    .await?;
                tracing::info!(
                    target: "lti_registry::deployments",
                    issuer = %registration.issuer,
                    client_id = %registration.client_id,
                    deployment_id,
                    "accepted and recorded a new deployment"
                );
                Ok(d)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> PlatformRegistration {
        PlatformRegistration::new(
            "https://lms.example",
            "c1",
            "https://lms.example/auth",
            "https://lms.example/token",
            KeySource::JwksUrl {
                url: "https://lms.example/jwks".into(),
            },
        )
    }

    #[test]
    fn new_registration_is_valid_and_defaults_to_rs256_and_reject() {
        let r = reg();
        r.validate().unwrap();
        assert_eq!(r.allowed_algorithms, vec!["RS256".to_owned()]);
        assert_eq!(r.unknown_deployment_policy, UnknownDeploymentPolicy::Reject);
        assert_eq!(r.token_audience(), "https://lms.example/token");
        let r = r.with_token_audience("https://auth.brightspace.com/core/connect/token");
        assert_eq!(
            r.token_audience(),
            "https://auth.brightspace.com/core/connect/token"
        );
    }

    #[test]
    fn empty_algorithm_list_is_rejected() {
        let mut r = reg();
        r.allowed_algorithms.clear();
        let e = r.validate().unwrap_err();
        assert!(matches!(
            e,
            RegistryError::InvalidInput {
                field: "allowed_algorithms",
                ..
            }
        ));
    }

    #[test]
    fn duplicate_deployment_ids_are_rejected() {
        let r = reg()
            .with_deployment(Deployment::active("d1"))
            .with_deployment(Deployment::active("d1"));
        let e = r.validate().unwrap_err();
        assert!(matches!(
            e,
            RegistryError::InvalidInput {
                field: "deployments",
                ..
            }
        ));
    }

    #[test]
    fn static_jwks_without_keys_array_is_rejected() {
        let mut r = reg();
        r.key_source = KeySource::StaticJwks {
            jwks: serde_json::json!({"kty": "RSA"}),
        };
        let e = r.validate().unwrap_err();
        assert_eq!(e.code(), "invalid_input");
        assert!(e.to_string().contains("\"keys\" array"));
    }

    #[test]
    fn empty_issuer_is_rejected() {
        let mut r = reg();
        r.issuer.clear();
        assert!(matches!(
            r.validate().unwrap_err(),
            RegistryError::InvalidInput {
                field: "issuer",
                ..
            }
        ));
    }

    #[test]
    fn auto_registration_template_percent_encodes_the_client_id() {
        let p = AutoRegistrationPolicy::new(
            "https://lms.example",
            "https://lms.example/jwks/{client_id}.json",
            "https://lms.example/auth",
            "https://lms.example/token",
        );
        let r = p.registration_for("a/b?c").unwrap();
        assert_eq!(
            r.key_source,
            KeySource::JwksUrl {
                url: "https://lms.example/jwks/a%2Fb%3Fc.json".into()
            }
        );
        assert_eq!(
            r.metadata.get("auto_registered").map(String::as_str),
            Some("true")
        );
        assert!(matches!(
            p.registration_for("").unwrap_err(),
            RegistryError::InvalidInput {
                field: "client_id",
                ..
            }
        ));
    }

    #[test]
    fn quirk_profile_parses_names_and_rejects_unknown() {
        assert_eq!(
            "Canvas".parse::<QuirkProfile>().unwrap(),
            QuirkProfile::Canvas
        );
        assert_eq!(
            "d2l".parse::<QuirkProfile>().unwrap(),
            QuirkProfile::Brightspace
        );
        let e = "webct".parse::<QuirkProfile>().unwrap_err();
        assert!(matches!(
            e,
            RegistryError::InvalidInput {
                field: "quirks",
                ..
            }
        ));
    }

    #[test]
    fn registration_round_trips_through_json_with_defaults() {
        let json = serde_json::json!({
            "issuer": "https://lms.example",
            "client_id": "c1",
            "auth_login_url": "https://lms.example/auth",
            "auth_token_url": "https://lms.example/token",
            "key_source": {"type": "jwks_url", "url": "https://lms.example/jwks"},
            "deployments": [{"deployment_id": "d1"}],
            "quirks": "moodle"
        });
        let r: PlatformRegistration = serde_json::from_value(json).unwrap();
        assert_eq!(r.quirks, QuirkProfile::Moodle);
        assert_eq!(r.allowed_algorithms, vec!["RS256".to_owned()]);
        assert_eq!(r.deployments[0].status, DeploymentStatus::Active);
        let back: PlatformRegistration =
            serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
