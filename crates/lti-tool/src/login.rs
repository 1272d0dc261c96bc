//! Step 1 → 2 of the OIDC third-party initiated login (spec digest §1.2, §1.3).

use std::sync::Arc;
use tracing::Instrument;

use http::StatusCode;
use lti_registry::{LaunchState, PlatformRegistration, RegistryError};

use crate::error::{ToolError, clip};
use crate::quirks::Quirks;
use crate::request::{ToolRequest, ToolResponse};
use crate::tool::Tool;
use crate::urls::append_query;

/// The parameters of a login initiation the state and the authorization
/// request are made from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoginParams<'a> {
    pub(crate) login_hint: &'a str,
    pub(crate) target_link_uri: &'a str,
    pub(crate) message_hint: Option<&'a str>,
    pub(crate) deployment_id: Option<&'a str>,
    pub(crate) storage_target: Option<&'a str>,
}

/// The key under which a login's `lti_storage_target` is kept in [`LaunchState::extra`].
pub(crate) const STORAGE_TARGET_KEY: &str = "lti_storage_target";

impl Tool {
    /// Handles a login initiation (GET query or POST form) and answers with the
    /// redirect to the platform's authorization endpoint plus the state cookie.
    ///
    /// With [`platform_storage`](crate::ToolBuilder::platform_storage) on, a login
    /// that offers `lti_storage_target` is answered instead with a page (`200`,
    /// also setting the cookie) that stores the state in the platform's storage and
    /// then continues to the same authorization URL (its `#lti-continue` link is
    /// the way on without JavaScript).
    ///
    /// Reads `iss`, `login_hint`, `target_link_uri` (required), `lti_message_hint`,
    /// `lti_deployment_id` (Canvas: `deployment_id`), `client_id` and
    /// `lti_storage_target`; resolves the registration (issuer alone only when it is
    /// unambiguous); refuses a `target_link_uri` that is not one of the tool's URLs;
    /// draws a fresh 256-bit nonce and seals the login (nonce, issuer, client id,
    /// `target_link_uri`, deployment id, storage target, expiry after the state TTL)
    /// into the `state` value with AES-256-GCM under a key derived from the state
    /// secret. Nothing is written to any store: a flood of logins costs the tool
    /// CPU only, and cannot crowd out other logins.
    ///
    /// # Errors
    /// [`ToolError::MethodNotAllowed`], [`ToolError::InvalidFormEncoding`],
    /// [`ToolError::MissingParameter`], [`ToolError::DuplicateParameter`],
    /// [`ToolError::ParameterTooLong`] (`target_link_uri`, `lti_deployment_id` or
    /// `lti_storage_target` over 2 KiB), [`ToolError::UnknownIssuer`],
    /// [`ToolError::AmbiguousIssuer`], [`ToolError::InvalidTargetLinkUri`],
    /// [`ToolError::StoreUnavailable`] (reading the registration).
    pub async fn login(&self, req: &ToolRequest) -> Result<ToolResponse, ToolError> {
        let span = tracing::info_span!(
            "lti.login",
            issuer = tracing::field::Empty,
            client_id = tracing::field::Empty,
            code = tracing::field::Empty,
        );
        let result = self.login_in(req, &span).instrument(span.clone()).await;
        if let Err(e) = &result {
            span.record("code", e.code());
        }
        result
    }

    async fn login_in(
        &self,
        req: &ToolRequest,
        span: &tracing::Span,
    ) -> Result<ToolResponse, ToolError> {
        let p = req.params()?;
        let iss = p.require("iss")?;
        let client_id = p.optional("client_id")?;
        let registration = self.resolve_registration(iss, client_id).await?;
        span.record("issuer", registration.issuer.as_str());
        span.record("client_id", registration.client_id.as_str());
        let quirks = Quirks::of(registration.quirks);
        let deployment_id = match p.optional("lti_deployment_id")? {
            Some(d) => Some(d),
            None if quirks.login_deployment_id_alias => p.optional("deployment_id")?,
            None => None,
        };
        let login = LoginParams {
            login_hint: p.require("login_hint")?,
            target_link_uri: p.require("target_link_uri")?,
            message_hint: p.get("lti_message_hint")?,
            deployment_id,
            storage_target: p.optional("lti_storage_target")?,
        };
        self.start_login(&registration, &login)
    }

    /// The login's answer for a resolved registration: seals the state and
    /// redirects to the authorization endpoint (or answers the storage page),
    /// setting the state cookie. Shared by the login route and the new-window
    /// fallback's fresh login.
    pub(crate) fn start_login(
        &self,
        registration: &PlatformRegistration,
        login: &LoginParams<'_>,
    ) -> Result<ToolResponse, ToolError> {
        let LoginParams {
            login_hint,
            target_link_uri,
            message_hint,
            deployment_id,
            storage_target,
        } = *login;
        let inner = &self.inner;
        inner.targets.check(target_link_uri, inner.allow_http)?;

        let nonce = crate::random::token(&inner.rng)?;
        let mut saved = LaunchState::new(
            String::new(),
            nonce,
            registration.issuer.clone(),
            registration.client_id.clone(),
            target_link_uri,
            self.now(),
            inner.state_ttl_secs,
        );
        saved.deployment_id = deployment_id.map(str::to_owned);
        if let Some(target) = storage_target {
            saved
                .extra
                .insert(STORAGE_TARGET_KEY.to_owned(), target.to_owned());
        }
        // The frame the login page stores the state in, when it does.
        let platform_target = storage_target.filter(|_| inner.platform_storage);
        if platform_target.is_some() {
            saved.extra.insert(
                crate::storage::STORAGE_BINDING_KEY.to_owned(),
                crate::storage::STORAGE_BINDING_PLATFORM.to_owned(),
            );
        } else if inner.new_window_fallback {
            // Only a login bound by the cookie alone can need the new window.
            crate::new_window::keep_hints(&mut saved, login_hint, message_hint);
        }
        // The state is the login itself, sealed: nothing is stored until the launch.
        let state = inner.sealer.seal_login(&inner.rng, &saved)?;

        let mut params: Vec<(&str, &str)> = vec![
            ("scope", "openid"),
            ("response_type", "id_token"),
            ("response_mode", "form_post"),
            ("prompt", "none"),
            ("client_id", &registration.client_id),
            ("redirect_uri", &inner.redirect_uri),
            ("login_hint", login_hint),
            ("state", &state),
            ("nonce", &saved.nonce),
        ];
        if let Some(hint) = message_hint {
            params.push(("lti_message_hint", hint));
        }
        let location = append_query(&registration.auth_login_url, &params);
        let response = match platform_target {
            Some(target) => self.storage_login_page(registration, target, &state, &location)?,
            None => ToolResponse::redirect(StatusCode::FOUND, &location)?,
        }
        .with_cookie(&inner.cookies.set_cookie(&state))?;
        tracing::debug!(
            issuer = %registration.issuer,
            client_id = %registration.client_id,
            storage = platform_target.is_some(),
            "login initiation accepted; on to the platform"
        );
        Ok(response)
    }

    /// The registration for (issuer, client id), or for the issuer alone when it
    /// has exactly one registration.
    pub(crate) async fn resolve_registration(
        &self,
        issuer: &str,
        client_id: Option<&str>,
    ) -> Result<Arc<PlatformRegistration>, ToolError> {
        match self
            .inner
            .registrations
            .resolve_registration(issuer, client_id)
            .await
        {
            Ok(r) if !r.status.is_active() => Err(ToolError::RegistrationInactive {
                issuer: clip(&r.issuer),
                client_id: clip(&r.client_id),
                status: r.status,
            }),
            Ok(r) => Ok(r),
            Err(RegistryError::NotFound { .. }) => Err(ToolError::UnknownIssuer {
                issuer: clip(issuer),
                client_id: client_id.map(clip),
            }),
            Err(RegistryError::AmbiguousIssuer { count, .. }) => Err(ToolError::AmbiguousIssuer {
                issuer: clip(issuer),
                count,
            }),
            Err(RegistryError::InvalidInput { .. }) => Err(ToolError::UnknownIssuer {
                issuer: clip(issuer),
                client_id: client_id.map(clip),
            }),
            Err(e) => Err(ToolError::store(e)),
        }
    }
}
