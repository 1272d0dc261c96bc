//! The OIDC authorization endpoint and id_token minting.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use lti_message::ags::AgsEndpointClaim;
use lti_message::claims::{ForUserClaim, LisClaim, uri};
use lti_message::nrps::{NrpsClaim, SCOPE_CONTEXT_MEMBERSHIP_READONLY};
use lti_message::{Audience, DeepLinkingSettings, IdTokenClaims};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::error::{PlatformError, Result, clip};
use crate::launch::{LaunchKind, LaunchSpec, MessageHint, PlatformUser};
use crate::platform::Platform;
use crate::registry::ToolRegistration;
use crate::secret::{Purpose, ct_eq};
use crate::web::{self, Params};

/// The custom parameter substitution variables the platform resolves. A custom value
/// equal to one of these names is replaced; unknown variables and unavailable values
/// (e.g. an email the tool may not see) are sent unchanged, as LTI requires.
///
/// Variables about the user follow the registration's privacy settings:
/// `$User.username` needs [`ToolRegistration::share_username`], `$User.image`
/// [`ToolRegistration::share_picture`], `$Person.name.*`
/// [`ToolRegistration::share_name`], `$Person.email.primary`
/// [`ToolRegistration::share_email`] and `$Person.sourcedId`
/// [`ToolRegistration::share_sourcedid`]; `$User.id` is the tool's `sub`.
pub const SUBSTITUTION_VARIABLES: &[&str] = &[
    "$User.id",
    "$User.username",
    "$User.image",
    "$Person.name.full",
    "$Person.name.given",
    "$Person.name.family",
    "$Person.email.primary",
    "$Person.sourcedId",
    "$Context.id",
    "$Context.title",
    "$Context.label",
    "$ResourceLink.id",
    "$ResourceLink.title",
    "$ResourceLink.description",
    "$ToolPlatformInstance.guid",
];

/// The tool's authentication request (all fields as received; checked by
/// [`Platform::authorize`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthRequest {
    /// `scope`.
    pub scope: Option<String>,
    /// `response_type`.
    pub response_type: Option<String>,
    /// `response_mode`.
    pub response_mode: Option<String>,
    /// `prompt`.
    pub prompt: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `login_hint`.
    pub login_hint: Option<String>,
    /// `lti_message_hint`.
    pub lti_message_hint: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
}

impl AuthRequest {
    /// Reads the request from a GET query or a POSTed form.
    ///
    /// # Errors
    /// [`PlatformError::MethodNotAllowed`], [`PlatformError::UnsupportedMediaType`],
    /// [`PlatformError::DuplicateParameter`], [`PlatformError::BodyTooLarge`].
    pub fn from_http(req: &Request<Bytes>) -> Result<Self> {
        let p = Params::from_request(req, true)?;
        let get = |n: &str| p.get(n).map(str::to_owned);
        Ok(Self {
            scope: get("scope"),
            response_type: get("response_type"),
            response_mode: get("response_mode"),
            prompt: get("prompt"),
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            login_hint: get("login_hint"),
            lti_message_hint: get("lti_message_hint"),
            state: get("state"),
            nonce: get("nonce"),
        })
    }
}

/// A successful authentication response: the form the browser posts to the tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResponse {
    /// The (registered) redirect URI.
    pub redirect_uri: String,
    /// The signed id_token.
    pub id_token: String,
    /// The echoed `state`.
    pub state: Option<String>,
}

impl AuthResponse {
    /// The form fields: `id_token` and `state`.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut f = vec![("id_token".to_owned(), self.id_token.clone())];
        if let Some(s) = &self.state {
            f.push(("state".to_owned(), s.clone()));
        }
        f
    }

    /// The auto-submitted form page.
    pub fn into_response(self) -> Response<Bytes> {
        web::html_response(
            StatusCode::OK,
            web::auto_submit_form(&self.redirect_uri, &self.fields(), "Launching tool"),
        )
    }
}

/// A refused authentication request. When the client and redirect URI were valid the
/// OIDC error fields are posted back to the tool; otherwise the browser gets a 400 page
/// (never a redirect to an unverified URI).
#[derive(Debug)]
pub struct AuthError {
    /// What was wrong.
    pub error: PlatformError,
    /// The verified redirect URI and the `state` to echo, when the error is posted back.
    pub redirect: Option<(String, Option<String>)>,
}

impl AuthError {
    /// The form fields posted back: `error`, `error_description`, `state`.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut f = vec![
            ("error".to_owned(), self.error.oidc_error().to_owned()),
            ("error_description".to_owned(), self.error.to_string()),
        ];
        if let Some((_, Some(state))) = &self.redirect {
            f.push(("state".to_owned(), state.clone()));
        }
        f
    }

    /// The auto-submitted error form, or a 400 page.
    pub fn into_response(self) -> Response<Bytes> {
        match &self.redirect {
            Some((uri, _)) => web::html_response(
                StatusCode::OK,
                web::auto_submit_form(uri, &self.fields(), "Returning to tool"),
            ),
            None => {
                let mut resp = web::error_page(&self.error);
                if resp.status().is_server_error() || resp.status() == StatusCode::UNAUTHORIZED {
                    *resp.status_mut() = if self.error.http_status().is_server_error() {
                        self.error.http_status()
                    } else {
                        StatusCode::BAD_REQUEST
                    };
                }
                resp
            }
        }
    }
}

/// The sealed `data` of deep-linking settings: who started the deep link and what is
/// acceptable, so the return endpoint needs no server state.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct DeepLinkData {
    pub(crate) c: String,
    pub(crate) d: String,
    pub(crate) u: String,
    pub(crate) x: Option<String>,
    pub(crate) t: Vec<String>,
    pub(crate) p: Vec<String>,
    pub(crate) m: bool,
    pub(crate) mt: Option<String>,
    pub(crate) li: bool,
    pub(crate) e: u64,
}

impl Platform {
    /// The authorization endpoint: answers the tool's authentication request for the
    /// signed-in `user` (`None` when nobody is signed in).
    pub async fn authorization_endpoint(
        &self,
        req: &Request<Bytes>,
        user: Option<&PlatformUser>,
    ) -> Response<Bytes> {
        let span = tracing::info_span!(
            "lti.platform.authorize",
            client_id = tracing::field::Empty,
            code = tracing::field::Empty,
        );
        let request = match AuthRequest::from_http(req) {
            Ok(r) => r,
            Err(error) => {
                span.record("code", error.code());
                return AuthError {
                    error,
                    redirect: None,
                }
                .into_response();
            }
        };
        if let Some(client_id) = request.client_id.as_deref() {
            span.record("client_id", client_id);
        }
        match self
            .authorize(&request, user)
            .instrument(span.clone())
            .await
        {
            Ok(ok) => ok.into_response(),
            Err(err) => {
                span.record("code", err.error.code());
                span.in_scope(|| tracing::info!("authentication request refused"));
                err.into_response()
            }
        }
    }

    /// Checks an authentication request and mints the id_token.
    ///
    /// Order: `client_id` known and `redirect_uri` registered (exact match) — failures
    /// here are never redirected — then `response_type=id_token`, `scope` containing
    /// `openid`, `response_mode=form_post`, `prompt` absent or `none`, `nonce` present,
    /// a signed-in user, `lti_message_hint` authentic, unexpired and for this client,
    /// `login_hint` naming the signed-in user who started the launch, and the
    /// deployment still registered.
    ///
    /// When the id_token gives the tool a context's AGS or NRPS endpoints, the tool is
    /// granted that context's services through the
    /// [`ContextAccess`](crate::services::ContextAccess) policy before the answer is
    /// returned.
    ///
    /// # Errors
    /// An [`AuthError`] carrying the specific [`PlatformError`] (a failing grant is
    /// [`PlatformError::Backend`]).
    pub async fn authorize(
        &self,
        request: &AuthRequest,
        user: Option<&PlatformUser>,
    ) -> std::result::Result<AuthResponse, AuthError> {
        let fatal = |error| AuthError {
            error,
            redirect: None,
        };
        let client_id = request
            .client_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| fatal(PlatformError::MissingParameter { name: "client_id" }))?;
        let tool = self.require_tool(client_id).await.map_err(fatal)?;
        let redirect_uri = request
            .redirect_uri
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                fatal(PlatformError::MissingParameter {
                    name: "redirect_uri",
                })
            })?;
        if !tool.has_redirect_uri(redirect_uri) {
            return Err(fatal(PlatformError::RedirectUriNotRegistered {
                found: clip(redirect_uri),
            }));
        }
        let back = |error| AuthError {
            error,
            redirect: Some((redirect_uri.to_owned(), request.state.clone())),
        };
        let value = |v: &Option<String>| v.clone().unwrap_or_default();
        if request.response_type.as_deref() != Some("id_token") {
            return Err(back(PlatformError::UnsupportedResponseType {
                found: clip(&value(&request.response_type)),
            }));
        }
        if !request
            .scope
            .as_deref()
            .unwrap_or("")
            .split_ascii_whitespace()
            .any(|s| s == "openid")
        {
            return Err(back(PlatformError::InvalidOpenIdScope {
                found: clip(&value(&request.scope)),
            }));
        }
        if request.response_mode.as_deref() != Some("form_post") {
            return Err(back(PlatformError::UnsupportedResponseMode {
                found: clip(&value(&request.response_mode)),
            }));
        }
        if let Some(prompt) = request.prompt.as_deref()
            && !prompt.is_empty()
            && prompt != "none"
        {
            return Err(back(PlatformError::UnsupportedPrompt {
                found: clip(prompt),
            }));
        }
        let nonce = request
            .nonce
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| back(PlatformError::MissingNonce))?;
        if nonce.len() > 1024 {
            return Err(back(PlatformError::param(
                "nonce",
                "at most 1024 bytes",
                &format!("{} bytes", nonce.len()),
            )));
        }
        let user = user.ok_or_else(|| back(PlatformError::LoginRequired))?;
        let sealed = request
            .lti_message_hint
            .as_deref()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| {
                back(PlatformError::InvalidMessageHint {
                    reason: "expected the lti_message_hint from the login initiation, found none",
                })
            })?;
        let hint: MessageHint = self
            .secret
            .open(Purpose::MessageHint, sealed)
            .map_err(|e| back(PlatformError::InvalidMessageHint { reason: e.reason() }))?;
        let now = self.now();
        if hint.e <= now {
            return Err(back(PlatformError::ExpiredMessageHint { exp: hint.e, now }));
        }
        let spec = hint.l;
        if spec.client_id != tool.client_id {
            return Err(back(PlatformError::InvalidMessageHint {
                reason: "expected a hint issued for this client, found one for another",
            }));
        }
        let login_hint = request.login_hint.as_deref().unwrap_or("");
        if !ct_eq(login_hint, &self.subject_for(&tool, &user.id)) || spec.user_id != user.id {
            return Err(back(PlatformError::LoginHintMismatch));
        }
        if !tool.has_deployment(&spec.deployment_id) {
            return Err(back(PlatformError::UnknownDeployment {
                client_id: tool.client_id.clone(),
                deployment_id: clip(&spec.deployment_id),
            }));
        }
        let claims = self
            .id_token_claims(&tool, user, &spec, nonce)
            .map_err(back)?;
        let id_token = lti_jose::sign(&claims, &self.keys.active())
            .map_err(|e| back(PlatformError::Signing(e)))?;
        // The tool is handed this context's AGS/NRPS endpoints: from now on it may use them.
        if (claims.ags_endpoint.is_some() || claims.nrps.is_some())
            && let Some(context_id) = claims.context.as_ref().and_then(|c| c.id.as_deref())
        {
            self.context_access
                .grant(&tool.client_id, context_id)
                .await
                .map_err(back)?;
        }
        Ok(AuthResponse {
            redirect_uri: redirect_uri.to_owned(),
            id_token,
            state: request.state.clone(),
        })
    }

    /// Mints and signs the id_token of `spec` for `user` with the active platform key.
    ///
    /// This only signs: unlike [`Platform::authorize`] it does not grant the tool the
    /// services of the launch's context, so an application that delivers such a token
    /// itself calls [`Platform::grant_context`] (otherwise the AGS/NRPS endpoints in
    /// the token answer 403 `context_not_granted`).
    ///
    /// # Errors
    /// [`PlatformError::Signing`], [`PlatformError::Backend`] (RNG).
    pub fn mint_id_token(
        &self,
        tool: &ToolRegistration,
        user: &PlatformUser,
        spec: &LaunchSpec,
        nonce: &str,
    ) -> Result<String> {
        let claims = self.id_token_claims(tool, user, spec, nonce)?;
        let key = self.keys.active();
        lti_jose::sign(&claims, &key).map_err(PlatformError::Signing)
    }

    /// The claims [`Platform::mint_id_token`] signs: every claim the platform knows
    /// for this launch.
    ///
    /// # Errors
    /// [`PlatformError::Backend`] if sealing the deep-linking `data` fails.
    pub fn id_token_claims(
        &self,
        tool: &ToolRegistration,
        user: &PlatformUser,
        spec: &LaunchSpec,
        nonce: &str,
    ) -> Result<IdTokenClaims> {
        let now = self.now();
        let sub = self.subject_for(tool, &user.id);
        let mut c = IdTokenClaims {
            iss: Some(self.config.issuer.clone()),
            aud: Some(Audience::Single(tool.client_id.clone())),
            azp: Some(tool.client_id.clone()),
            iat: Some(i64::try_from(now).unwrap_or(i64::MAX)),
            exp: Some(
                i64::try_from(now.saturating_add(self.config.id_token_lifetime_secs))
                    .unwrap_or(i64::MAX),
            ),
            nonce: Some(nonce.to_owned()),
            locale: user.locale.clone(),
            picture: user.picture.clone().filter(|_| tool.share_picture),
            message_type: Some(spec.message_type().to_owned()),
            version: Some(uri::LTI_VERSION.to_owned()),
            deployment_id: Some(spec.deployment_id.clone()),
            target_link_uri: Some(
                spec.target_link_uri
                    .clone()
                    .unwrap_or_else(|| tool.target_link_uri.clone()),
            ),
            roles: Some(spec.roles.clone()),
            context: spec.context.clone(),
            tool_platform: self.config.tool_platform.clone(),
            launch_presentation: spec.launch_presentation.clone(),
            ..IdTokenClaims::default()
        };
        if tool.share_name {
            c.name = user.name.clone();
            c.given_name = user.given_name.clone();
            c.family_name = user.family_name.clone();
        }
        if tool.share_email {
            c.email = user.email.clone();
        }
        if tool.share_sourcedid
            && let Some(sourced_id) = &user.sourced_id
        {
            c.lis = Some(LisClaim {
                person_sourcedid: Some(sourced_id.clone()),
                ..LisClaim::default()
            });
        }
        match &spec.kind {
            LaunchKind::ResourceLink { resource_link } => {
                c.resource_link = Some(resource_link.clone())
            }
            LaunchKind::SubmissionReview {
                resource_link,
                for_user,
            } => {
                c.resource_link = Some(resource_link.clone());
                let learner = for_user.user_id.as_deref().unwrap_or("");
                c.for_user = Some(ForUserClaim {
                    user_id: Some(self.subject_for(tool, learner)),
                    name: for_user.name.clone().filter(|_| tool.share_name),
                    given_name: for_user.given_name.clone().filter(|_| tool.share_name),
                    family_name: for_user.family_name.clone().filter(|_| tool.share_name),
                    email: for_user.email.clone().filter(|_| tool.share_email),
                    person_sourcedid: for_user
                        .person_sourcedid
                        .clone()
                        .filter(|_| tool.share_sourcedid),
                    ..for_user.clone()
                });
            }
            LaunchKind::DeepLinking { options } => {
                let data = DeepLinkData {
                    c: tool.client_id.clone(),
                    d: spec.deployment_id.clone(),
                    u: user.id.clone(),
                    x: spec.context.as_ref().and_then(|x| x.id.clone()),
                    t: options.accept_types.clone(),
                    p: options.accept_presentation_document_targets.clone(),
                    m: options.accept_multiple,
                    mt: options.accept_media_types.clone(),
                    li: options.accept_lineitem,
                    e: now.saturating_add(self.config.deep_linking_lifetime_secs),
                };
                c.deep_linking_settings = Some(DeepLinkingSettings {
                    deep_link_return_url: Some(self.config.deep_link_return_url.clone()),
                    accept_types: options.accept_types.clone(),
                    accept_presentation_document_targets: options
                        .accept_presentation_document_targets
                        .clone(),
                    accept_media_types: options.accept_media_types.clone(),
                    accept_multiple: Some(options.accept_multiple),
                    accept_lineitem: Some(options.accept_lineitem),
                    auto_create: Some(options.auto_create),
                    title: options.title.clone(),
                    text: options.text.clone(),
                    data: Some(self.secret.seal(Purpose::DeepLinkData, &data)?),
                    extra: Map::new(),
                });
            }
        }
        if let Some(context_id) = spec.context.as_ref().and_then(|x| x.id.as_deref()) {
            let ags_scopes: Vec<String> = tool
                .scopes
                .iter()
                .filter(|s| s.starts_with("https://purl.imsglobal.org/spec/lti-ags/scope/"))
                .cloned()
                .collect();
            if !ags_scopes.is_empty() {
                c.ags_endpoint = Some(AgsEndpointClaim {
                    scope: ags_scopes,
                    lineitems: Some(self.line_items_url(context_id)),
                    lineitem: spec
                        .line_item_id
                        .as_deref()
                        .map(|id| self.line_item_url(context_id, id)),
                    extra: Map::new(),
                });
            }
            if tool.scopes.contains(SCOPE_CONTEXT_MEMBERSHIP_READONLY) {
                c.nrps = Some(NrpsClaim {
                    context_memberships_url: Some(self.memberships_url(context_id)),
                    service_versions: vec!["2.0".to_owned()],
                    extra: Map::new(),
                });
            }
        }
        let mut custom = tool.custom.clone();
        custom.extend(spec.custom.iter().map(|(k, v)| (k.clone(), v.clone())));
        if !custom.is_empty() {
            c.custom = Some(
                custom
                    .into_iter()
                    .map(|(k, v)| {
                        let v = self.substitute(&v, tool, user, spec, &sub, &c).unwrap_or(v);
                        (k, Value::String(v))
                    })
                    .collect(),
            );
        }
        c.sub = Some(sub);
        Ok(c)
    }

    fn substitute(
        &self,
        value: &str,
        tool: &ToolRegistration,
        user: &PlatformUser,
        spec: &LaunchSpec,
        sub: &str,
        c: &IdTokenClaims,
    ) -> Option<String> {
        if !value.starts_with('$') {
            return None;
        }
        let names = tool.share_name;
        let link = c.resource_link.as_ref();
        let ctx = spec.context.as_ref();
        match value {
            "$User.id" => Some(sub.to_owned()),
            "$User.username" if tool.share_username => user.username.clone(),
            "$User.image" if tool.share_picture => user.picture.clone(),
            "$Person.name.full" if names => user.name.clone(),
            "$Person.name.given" if names => user.given_name.clone(),
            "$Person.name.family" if names => user.family_name.clone(),
            "$Person.email.primary" if tool.share_email => user.email.clone(),
            "$Person.sourcedId" if tool.share_sourcedid => user.sourced_id.clone(),
            "$Context.id" => ctx.and_then(|x| x.id.clone()),
            "$Context.title" => ctx.and_then(|x| x.title.clone()),
            "$Context.label" => ctx.and_then(|x| x.label.clone()),
            "$ResourceLink.id" => link.and_then(|l| l.id.clone()),
            "$ResourceLink.title" => link.and_then(|l| l.title.clone()),
            "$ResourceLink.description" => link.and_then(|l| l.description.clone()),
            "$ToolPlatformInstance.guid" => self
                .config
                .tool_platform
                .as_ref()
                .and_then(|p| p.guid.clone()),
            _ => None,
        }
    }
}
