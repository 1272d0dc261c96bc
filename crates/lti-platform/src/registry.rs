//! Tool registrations: what the platform knows about each tool it can launch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

use lti_jose::JwkSet;

use crate::error::{PlatformError, Result, clip};

/// Where a tool's public keys come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ToolKeys {
    /// The tool's JWKS URL, fetched through the platform's [`lti_jose::KeySource`].
    JwksUrl(String),
    /// Keys registered by hand.
    Static(JwkSet),
}

/// How the `sub` claim (and NRPS `user_id`) is formed for a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SubjectPolicy {
    /// A stable pseudonym per (user, tool registration): HMAC of the platform secret.
    #[default]
    Pseudonymous,
    /// The platform's own user id (opt-in; lets tools correlate users across platforms'
    /// tools).
    RealUserId,
}

/// One tool registration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ToolRegistration {
    /// The OAuth client id the platform assigned to the tool.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// The tool's OIDC third-party login initiation URL.
    pub login_initiation_url: String,
    /// Redirect URIs; the authorization request's `redirect_uri` must equal one exactly.
    pub redirect_uris: Vec<String>,
    /// The default target link URI (used when a launch names none).
    pub target_link_uri: String,
    /// The tool's public keys.
    pub keys: ToolKeys,
    /// Deployment ids of this tool on the platform.
    pub deployments: BTreeSet<String>,
    /// Service scopes the tool may obtain at the token endpoint.
    pub scopes: BTreeSet<String>,
    /// `sub` policy.
    pub subject: SubjectPolicy,
    /// Whether names are shared with the tool (`name`, `given_name`, `family_name`).
    pub share_name: bool,
    /// Whether the email address is shared with the tool.
    pub share_email: bool,
    /// Whether the user's picture URL is shared with the tool (`picture` in the
    /// id_token and in NRPS members, `$User.image`). Off unless set with
    /// [`ToolRegistration::with_picture_shared`].
    pub share_picture: bool,
    /// Whether the user's login name is shared with the tool (`$User.username`). Off
    /// unless set with [`ToolRegistration::with_username_shared`]: a login name
    /// identifies the user across every tool, as a real user id does.
    pub share_username: bool,
    /// Whether SIS ids of users are shared with the tool (`lis` claim
    /// `person_sourcedid`, `for_user.person_sourcedid`, NRPS
    /// `lis_person_sourcedid`, `$Person.sourcedId`). Off unless set with
    /// [`ToolRegistration::with_sourcedid_shared`]: an SIS id identifies the user
    /// across every tool, as a real user id does.
    pub share_sourcedid: bool,
    /// Custom parameters added to every launch of this tool (launch-level ones win).
    pub custom: BTreeMap<String, String>,
}

impl ToolRegistration {
    /// A registration with the required fields; no deployments, no scopes, pseudonymous
    /// subjects, names and email shared; picture, login name and SIS id not shared.
    pub fn new(
        client_id: impl Into<String>,
        login_initiation_url: impl Into<String>,
        target_link_uri: impl Into<String>,
        keys: ToolKeys,
    ) -> Self {
        let target_link_uri = target_link_uri.into();
        Self {
            client_id: client_id.into(),
            name: String::new(),
            login_initiation_url: login_initiation_url.into(),
            redirect_uris: vec![target_link_uri.clone()],
            target_link_uri,
            keys,
            deployments: BTreeSet::new(),
            scopes: BTreeSet::new(),
            subject: SubjectPolicy::Pseudonymous,
            share_name: true,
            share_email: true,
            share_picture: false,
            share_username: false,
            share_sourcedid: false,
            custom: BTreeMap::new(),
        }
    }

    /// Sets the display name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Replaces the redirect URIs.
    pub fn with_redirect_uris<I, S>(mut self, uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.redirect_uris = uris.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a deployment id.
    pub fn with_deployment(mut self, deployment_id: impl Into<String>) -> Self {
        self.deployments.insert(deployment_id.into());
        self
    }

    /// Grants a service scope.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.insert(scope.into());
        self
    }

    /// Sets the `sub` policy.
    pub fn with_subject_policy(mut self, policy: SubjectPolicy) -> Self {
        self.subject = policy;
        self
    }

    /// Sets whether names and email are shared.
    pub fn with_privacy(mut self, share_name: bool, share_email: bool) -> Self {
        self.share_name = share_name;
        self.share_email = share_email;
        self
    }

    /// Sets whether the user's picture URL is shared (`picture`, `$User.image`).
    pub fn with_picture_shared(mut self, share: bool) -> Self {
        self.share_picture = share;
        self
    }

    /// Sets whether the user's login name is shared (`$User.username`).
    pub fn with_username_shared(mut self, share: bool) -> Self {
        self.share_username = share;
        self
    }

    /// Sets whether users' SIS ids are shared (`lis.person_sourcedid`,
    /// `for_user.person_sourcedid`, NRPS `lis_person_sourcedid`, `$Person.sourcedId`).
    pub fn with_sourcedid_shared(mut self, share: bool) -> Self {
        self.share_sourcedid = share;
        self
    }

    /// Adds a registration-level custom parameter.
    pub fn with_custom(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom.insert(key.into(), value.into());
        self
    }

    /// Whether `deployment_id` is one of this tool's deployments.
    pub fn has_deployment(&self, deployment_id: &str) -> bool {
        self.deployments.contains(deployment_id)
    }

    /// Whether `redirect_uri` is registered (exact, case-sensitive match).
    pub fn has_redirect_uri(&self, redirect_uri: &str) -> bool {
        self.redirect_uris.iter().any(|u| u == redirect_uri)
    }

    /// Checks the registration is usable.
    ///
    /// # Errors
    /// [`PlatformError::InvalidRegistration`] naming the first problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| PlatformError::InvalidRegistration {
            client_id: clip(&self.client_id),
            reason,
        };
        if self.client_id.is_empty() || self.client_id.len() > 255 {
            return Err(bad(format!(
                "expected a client_id of 1..=255 bytes, found {} bytes",
                self.client_id.len()
            )));
        }
        for (field, url) in [
            ("login_initiation_url", &self.login_initiation_url),
            ("target_link_uri", &self.target_link_uri),
        ] {
            if !is_http_url(url) {
                return Err(bad(format!(
                    "{field}: expected an http(s) URL, found {:?}",
                    clip(url)
                )));
            }
        }
        if self.redirect_uris.is_empty() {
            return Err(bad(
                "redirect_uris: expected at least one, found none".to_owned()
            ));
        }
        if let Some(u) = self.redirect_uris.iter().find(|u| !is_http_url(u)) {
            return Err(bad(format!(
                "redirect_uris: expected http(s) URLs, found {:?}",
                clip(u)
            )));
        }
        if let ToolKeys::JwksUrl(url) = &self.keys
            && !is_http_url(url)
        {
            return Err(bad(format!(
                "jwks url: expected an http(s) URL, found {:?}",
                clip(url)
            )));
        }
        if let Some(d) = self
            .deployments
            .iter()
            .find(|d| d.is_empty() || d.len() > 255)
        {
            return Err(bad(format!(
                "deployments: expected ids of 1..=255 bytes, found {} bytes",
                d.len()
            )));
        }
        Ok(())
    }
}

pub(crate) fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    matches!(rest, Some(r) if !r.is_empty() && !r.starts_with('/'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Where the platform looks tool registrations up.
#[async_trait::async_trait]
pub trait ToolRegistry: Send + Sync {
    /// The registration for `client_id`, or `None`.
    ///
    /// # Errors
    /// [`PlatformError::Backend`] if the registry cannot be read.
    async fn tool(&self, client_id: &str) -> Result<Option<ToolRegistration>>;

    /// Every registration.
    ///
    /// # Errors
    /// [`PlatformError::Backend`] if the registry cannot be read.
    async fn tools(&self) -> Result<Vec<ToolRegistration>>;
}

/// An in-memory [`ToolRegistry`].
#[derive(Debug, Default)]
pub struct MemoryToolRegistry {
    tools: RwLock<BTreeMap<String, ToolRegistration>>,
}

impl MemoryToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a registration after validating it.
    ///
    /// # Errors
    /// [`PlatformError::InvalidRegistration`].
    pub fn register(&self, tool: ToolRegistration) -> Result<()> {
        tool.validate()?;
        match self.tools.write() {
            Ok(mut g) => g.insert(tool.client_id.clone(), tool),
            Err(p) => p.into_inner().insert(tool.client_id.clone(), tool),
        };
        Ok(())
    }

    /// Adds a registration after validating it, unless its client id is taken;
    /// returns whether it was added (the check and the insert are one step).
    ///
    /// # Errors
    /// [`PlatformError::InvalidRegistration`].
    pub fn register_new(&self, tool: ToolRegistration) -> Result<bool> {
        tool.validate()?;
        let mut tools = match self.tools.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if tools.contains_key(&tool.client_id) {
            return Ok(false);
        }
        tools.insert(tool.client_id.clone(), tool);
        Ok(true)
    }

    /// Removes a registration; returns whether it existed.
    pub fn remove(&self, client_id: &str) -> bool {
        match self.tools.write() {
            Ok(mut g) => g.remove(client_id).is_some(),
            Err(p) => p.into_inner().remove(client_id).is_some(),
        }
    }

    fn snapshot(&self) -> BTreeMap<String, ToolRegistration> {
        match self.tools.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

#[async_trait::async_trait]
impl ToolRegistry for MemoryToolRegistry {
    async fn tool(&self, client_id: &str) -> Result<Option<ToolRegistration>> {
        Ok(match self.tools.read() {
            Ok(g) => g.get(client_id).cloned(),
            Err(p) => p.into_inner().get(client_id).cloned(),
        })
    }

    async fn tools(&self) -> Result<Vec<ToolRegistration>> {
        Ok(self.snapshot().into_values().collect())
    }
}
