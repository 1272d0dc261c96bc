//! The registration data a services client needs.

use std::sync::Arc;

use lti_http::TokenEndpointConfig;
use lti_jose::SigningKey;
use lti_registry::PlatformRegistration;

use crate::profile::QuirkProfile;

/// What a services client needs to know about the tool's registration with
/// a platform: plain data, so any registration model can produce it.
///
/// The token cache is keyed by `(issuer, client_id)` and the scope set, never
/// by issuer alone (all Canvas instances share one issuer).
#[derive(Clone, Debug)]
pub struct ServiceRegistration {
    issuer: String,
    token: TokenEndpointConfig,
    profile: QuirkProfile,
    allowed_scopes: Option<Vec<String>>,
}

impl ServiceRegistration {
    /// A registration of `client_id` with the platform `issuer`, obtaining
    /// tokens from `token_url` with assertions signed by `signing_key`.
    pub fn new(
        issuer: impl Into<String>,
        client_id: impl Into<String>,
        token_url: impl Into<String>,
        signing_key: Arc<SigningKey>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            token: TokenEndpointConfig::new(client_id, token_url, signing_key),
            profile: QuirkProfile::Generic,
            allowed_scopes: None,
        }
    }

    /// The services registration of a stored platform registration (as a
    /// verified launch carries it): its issuer, client id, token endpoint,
    /// assertion audience and quirk profile, with the tool's current
    /// `signing_key` (`Tool::active_signing_key` in `lti-tool`).
    pub fn from_platform(platform: &PlatformRegistration, signing_key: Arc<SigningKey>) -> Self {
        // Both profile enums share their names; one unknown to this crate
        // (a newer registry) falls back to the generic profile.
        let profile = platform
            .quirks
            .as_str()
            .parse::<QuirkProfile>()
            .unwrap_or_default();
        let mut reg = Self::new(
            platform.issuer.clone(),
            platform.client_id.clone(),
            platform.auth_token_url.clone(),
            signing_key,
        )
        .with_profile(profile);
        if let Some(aud) = &platform.token_audience {
            reg = reg.with_assertion_audience(aud.clone());
        }
        reg
    }

    /// Uses `audience` as the client assertion's `aud` instead of the token
    /// URL (D2L Brightspace: `https://api.brightspace.com/auth/token`).
    pub fn with_assertion_audience(mut self, audience: impl Into<String>) -> Self {
        self.token = self.token.with_audience(audience);
        self
    }

    /// Sets the platform's quirk profile (default [`QuirkProfile::Generic`]).
    pub fn with_profile(mut self, profile: QuirkProfile) -> Self {
        self.profile = profile;
        self
    }

    /// Restricts the scopes this registration may use (e.g. the scopes of
    /// its dynamic registration). A scope must then be both granted by the
    /// launch claim and listed here; the NRPS scope is only checked here.
    pub fn with_allowed_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// The platform issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The OAuth client id.
    pub fn client_id(&self) -> &str {
        &self.token.client_id
    }

    /// The token endpoint configuration passed to `lti-http`.
    pub fn token_endpoint(&self) -> &TokenEndpointConfig {
        &self.token
    }

    /// The quirk profile.
    pub fn profile(&self) -> QuirkProfile {
        self.profile
    }

    /// The registration's own endpoints whose origins service URLs may use
    /// under the egress policy: the issuer and the token endpoint.
    pub(crate) fn endpoint_urls(&self) -> [&str; 2] {
        [&self.issuer, &self.token.token_url]
    }

    /// The key under which tokens are cached: issuer and client id.
    pub fn registration_key(&self) -> String {
        format!("{} {}", self.issuer, self.token.client_id)
    }

    /// Whether the registration allows `scope` (always, without an allow-list).
    pub fn allows_scope(&self, scope: &str) -> bool {
        self.allowed_scopes
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s == scope))
    }
}
