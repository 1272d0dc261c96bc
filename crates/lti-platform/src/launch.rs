//! Launch start: what the application wants to launch, and the third-party login
//! initiation that begins the OIDC flow.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use lti_message::claims::{ContextClaim, ForUserClaim, LaunchPresentationClaim, ResourceLinkClaim};
use serde::{Deserialize, Serialize};

use crate::error::{PlatformError, Result, clip};
use crate::platform::Platform;
use crate::registry::is_http_url;
use crate::secret::Purpose;
use crate::web;

/// The signed-in platform user, as the application knows them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PlatformUser {
    /// The platform's user id (never sent to tools as is unless the registration opts
    /// in to real ids).
    pub id: String,
    /// Login name (`$User.username`; sent only to tools whose registration shares
    /// login names).
    pub username: Option<String>,
    /// Full name.
    pub name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Picture URL (sent only to tools whose registration shares pictures).
    pub picture: Option<String>,
    /// Locale, e.g. `en-US`.
    pub locale: Option<String>,
    /// SIS id (`lis.person_sourcedid`; sent only to tools whose registration shares
    /// SIS ids).
    pub sourced_id: Option<String>,
}

impl PlatformUser {
    /// A user with only an id.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            ..Self::default()
        }
    }

    /// Sets given and family name (and the full name from them).
    pub fn with_name(mut self, given: impl Into<String>, family: impl Into<String>) -> Self {
        let (given, family) = (given.into(), family.into());
        self.name = Some(format!("{given} {family}"));
        self.given_name = Some(given);
        self.family_name = Some(family);
        self
    }

    /// Sets the email.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the login name.
    pub fn with_username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Sets the picture URL.
    pub fn with_picture(mut self, url: impl Into<String>) -> Self {
        self.picture = Some(url.into());
        self
    }

    /// Sets the SIS id.
    pub fn with_sourced_id(mut self, sourced_id: impl Into<String>) -> Self {
        self.sourced_id = Some(sourced_id.into());
        self
    }
}

/// What a deep-linking launch offers the tool (the platform adds
/// `deep_link_return_url` and a signed `data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeepLinkingOptions {
    /// Accepted item types (`link`, `ltiResourceLink`, `file`, `html`, `image`).
    pub accept_types: Vec<String>,
    /// Accepted presentation targets (`iframe`, `window`, `embed`).
    pub accept_presentation_document_targets: Vec<String>,
    /// Comma-separated accepted media types.
    pub accept_media_types: Option<String>,
    /// Whether several items may be returned.
    pub accept_multiple: bool,
    /// Whether the platform creates line items from `lineItem`.
    pub accept_lineitem: bool,
    /// Whether items are created without confirmation.
    pub auto_create: bool,
    /// Default title.
    pub title: Option<String>,
    /// Default text.
    pub text: Option<String>,
}

impl Default for DeepLinkingOptions {
    fn default() -> Self {
        Self {
            accept_types: vec!["ltiResourceLink".to_owned()],
            accept_presentation_document_targets: vec!["iframe".to_owned(), "window".to_owned()],
            accept_media_types: None,
            accept_multiple: true,
            accept_lineitem: true,
            auto_create: false,
            title: None,
            text: None,
        }
    }
}

/// The message a launch sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum LaunchKind {
    /// `LtiResourceLinkRequest`.
    ResourceLink {
        /// The resource link (`id` required).
        resource_link: ResourceLinkClaim,
    },
    /// `LtiDeepLinkingRequest`.
    DeepLinking {
        /// What the tool may return.
        options: DeepLinkingOptions,
    },
    /// `LtiSubmissionReviewRequest`.
    SubmissionReview {
        /// The resource link (`id` required).
        resource_link: ResourceLinkClaim,
        /// The learner whose submission is shown (`user_id` as the platform's user id;
        /// the platform maps it to the tool's subject).
        for_user: ForUserClaim,
    },
}

/// A launch the application wants to start: who, where, which tool, which message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LaunchSpec {
    /// The tool's client id.
    pub client_id: String,
    /// The deployment.
    pub deployment_id: String,
    /// The platform user id of the launching user (must be the signed-in user when
    /// the tool's authorization request arrives).
    pub user_id: String,
    /// The message.
    pub kind: LaunchKind,
    /// Where the tool should land; the registration's default when `None`.
    pub target_link_uri: Option<String>,
    /// The user's role URIs in this context.
    pub roles: Vec<String>,
    /// The context (course).
    pub context: Option<ContextClaim>,
    /// Custom parameters; values may be substitution variables (see
    /// [`crate::SUBSTITUTION_VARIABLES`]). Override registration-level ones.
    pub custom: BTreeMap<String, String>,
    /// Launch presentation.
    pub launch_presentation: Option<LaunchPresentationClaim>,
    /// The grade book id of the line item bound to this link (AGS `lineitem`).
    pub line_item_id: Option<String>,
}

impl LaunchSpec {
    fn new(
        client_id: impl Into<String>,
        deployment_id: impl Into<String>,
        user_id: impl Into<String>,
        kind: LaunchKind,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            deployment_id: deployment_id.into(),
            user_id: user_id.into(),
            kind,
            target_link_uri: None,
            roles: Vec::new(),
            context: None,
            custom: BTreeMap::new(),
            launch_presentation: None,
            line_item_id: None,
        }
    }

    /// A resource link launch of link `resource_link_id`.
    pub fn resource_link(
        client_id: impl Into<String>,
        deployment_id: impl Into<String>,
        user_id: impl Into<String>,
        resource_link_id: impl Into<String>,
    ) -> Self {
        let resource_link = ResourceLinkClaim {
            id: Some(resource_link_id.into()),
            ..ResourceLinkClaim::default()
        };
        Self::new(
            client_id,
            deployment_id,
            user_id,
            LaunchKind::ResourceLink { resource_link },
        )
    }

    /// A deep-linking launch.
    pub fn deep_linking(
        client_id: impl Into<String>,
        deployment_id: impl Into<String>,
        user_id: impl Into<String>,
        options: DeepLinkingOptions,
    ) -> Self {
        Self::new(
            client_id,
            deployment_id,
            user_id,
            LaunchKind::DeepLinking { options },
        )
    }

    /// A submission review launch of link `resource_link_id` showing the work of
    /// `for_user_id` (a platform user id); needs [`LaunchSpec::with_line_item`].
    pub fn submission_review(
        client_id: impl Into<String>,
        deployment_id: impl Into<String>,
        user_id: impl Into<String>,
        resource_link_id: impl Into<String>,
        for_user_id: impl Into<String>,
    ) -> Self {
        let resource_link = ResourceLinkClaim {
            id: Some(resource_link_id.into()),
            ..ResourceLinkClaim::default()
        };
        let for_user = ForUserClaim {
            user_id: Some(for_user_id.into()),
            ..ForUserClaim::default()
        };
        Self::new(
            client_id,
            deployment_id,
            user_id,
            LaunchKind::SubmissionReview {
                resource_link,
                for_user,
            },
        )
    }

    /// Sets the roles.
    pub fn with_roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the context.
    pub fn with_context(
        mut self,
        id: impl Into<String>,
        label: Option<&str>,
        title: Option<&str>,
    ) -> Self {
        self.context = Some(ContextClaim {
            id: Some(id.into()),
            label: label.map(str::to_owned),
            title: title.map(str::to_owned),
            types: vec!["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering".to_owned()],
            ..ContextClaim::default()
        });
        self
    }

    /// Sets the resource link's title (resource link and submission review launches).
    pub fn with_resource_link_title(mut self, title: impl Into<String>) -> Self {
        if let LaunchKind::ResourceLink { resource_link }
        | LaunchKind::SubmissionReview { resource_link, .. } = &mut self.kind
        {
            resource_link.title = Some(title.into());
        }
        self
    }

    /// Adds a custom parameter.
    pub fn with_custom(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.custom.insert(key.into(), value.into());
        self
    }

    /// Sets the target link URI.
    pub fn with_target_link_uri(mut self, uri: impl Into<String>) -> Self {
        self.target_link_uri = Some(uri.into());
        self
    }

    /// Sets the launch presentation.
    pub fn with_launch_presentation(mut self, presentation: LaunchPresentationClaim) -> Self {
        self.launch_presentation = Some(presentation);
        self
    }

    /// Binds the link to grade book line item `id`.
    pub fn with_line_item(mut self, id: impl Into<String>) -> Self {
        self.line_item_id = Some(id.into());
        self
    }

    /// The LTI message type this launch sends.
    pub fn message_type(&self) -> &'static str {
        match self.kind {
            LaunchKind::ResourceLink { .. } => lti_message::uri::MSG_RESOURCE_LINK,
            LaunchKind::DeepLinking { .. } => lti_message::uri::MSG_DEEP_LINKING,
            LaunchKind::SubmissionReview { .. } => lti_message::uri::MSG_SUBMISSION_REVIEW,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad =
            |field: &'static str, expected: &str, found: String| PlatformError::InvalidLaunch {
                field,
                expected: expected.to_owned(),
                found,
            };
        if self.user_id.is_empty() {
            return Err(bad(
                "user_id",
                "a platform user id",
                "an empty string".to_owned(),
            ));
        }
        match &self.kind {
            LaunchKind::ResourceLink { resource_link }
            | LaunchKind::SubmissionReview { resource_link, .. } => {
                let id = resource_link.id.as_deref().unwrap_or("");
                if id.is_empty() || id.len() > 255 {
                    return Err(bad(
                        "resource_link.id",
                        "1..=255 bytes",
                        format!("{} bytes", id.len()),
                    ));
                }
            }
            LaunchKind::DeepLinking { options } => {
                if options.accept_types.is_empty() {
                    return Err(bad(
                        "accept_types",
                        "at least one content item type",
                        "none".to_owned(),
                    ));
                }
            }
        }
        if let LaunchKind::SubmissionReview { for_user, .. } = &self.kind {
            if for_user.user_id.as_deref().unwrap_or("").is_empty() {
                return Err(bad(
                    "for_user.user_id",
                    "the reviewed learner's user id",
                    "none".to_owned(),
                ));
            }
            if self.line_item_id.is_none() || self.context.is_none() {
                return Err(bad(
                    "line_item_id",
                    "a line item and context (submission review needs the AGS lineitem)",
                    "none".to_owned(),
                ));
            }
        }
        if let Some(ctx) = &self.context {
            let id = ctx.id.as_deref().unwrap_or("");
            if id.is_empty() || id.len() > 255 {
                return Err(bad(
                    "context.id",
                    "1..=255 bytes",
                    format!("{} bytes", id.len()),
                ));
            }
        }
        if let Some(t) = &self.target_link_uri
            && !is_http_url(t)
        {
            return Err(bad("target_link_uri", "an http(s) URL", clip(t)));
        }
        Ok(())
    }
}

/// The sealed content of an `lti_message_hint`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MessageHint {
    pub(crate) l: LaunchSpec,
    pub(crate) e: u64,
}

/// The third-party login initiation: a GET redirect or an auto-submitted POST form to
/// the tool's login URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginInitiation {
    /// The tool's OIDC login initiation URL.
    pub login_url: String,
    /// The parameters: `iss`, `login_hint`, `target_link_uri`, `lti_message_hint`,
    /// `lti_deployment_id`, `client_id`.
    pub params: Vec<(String, String)>,
}

impl LoginInitiation {
    /// The value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Adds `lti_storage_target`: the platform offers postMessage Platform Storage
    /// in the frame (or window) named `target` (`_parent`: the page framing the
    /// tool; see [`crate::platform_storage_script`]). Tools that cannot use
    /// third-party cookies then keep their state there.
    #[must_use]
    pub fn with_storage_target(mut self, target: &str) -> Self {
        self.params
            .push(("lti_storage_target".to_owned(), target.to_owned()));
        self
    }

    /// The login URL with the parameters as a query string.
    pub fn redirect_url(&self) -> String {
        web::append_query(&self.login_url, &self.params)
    }

    /// An HTML page that POSTs the parameters to the login URL (escaped; submits itself
    /// and shows a Continue button).
    pub fn form_html(&self) -> String {
        web::auto_submit_form(&self.login_url, &self.params, "Launching tool")
    }

    /// A `302 Found` to [`LoginInitiation::redirect_url`].
    pub fn redirect_response(&self) -> Response<Bytes> {
        let mut resp = web::response(StatusCode::FOUND, "text/plain; charset=utf-8", Bytes::new());
        if let Ok(v) = HeaderValue::from_str(&self.redirect_url()) {
            resp.headers_mut().insert(http::header::LOCATION, v);
        }
        resp
    }

    /// A `200` page with [`LoginInitiation::form_html`].
    pub fn form_response(&self) -> Response<Bytes> {
        web::html_response(StatusCode::OK, self.form_html())
    }
}

impl Platform {
    /// Starts a launch: checks the tool and deployment and returns the login initiation
    /// whose `lti_message_hint` is an encrypted and authenticated, expiring copy of
    /// `spec` (AES-256-GCM under a key derived from the platform secret: it reveals
    /// nothing of the launch, not the user id, roles or context, to the tool or to
    /// anyone who sees the URL, and cannot be forged or altered; the authorization
    /// endpoint reads the launch back from it) and whose `login_hint` is the user's
    /// subject for the tool.
    ///
    /// # Errors
    /// [`PlatformError::UnknownClient`], [`PlatformError::UnknownDeployment`],
    /// [`PlatformError::InvalidLaunch`], [`PlatformError::Backend`].
    pub async fn start_launch(&self, spec: &LaunchSpec) -> Result<LoginInitiation> {
        spec.validate()?;
        let tool = self.require_tool(&spec.client_id).await?;
        if !tool.has_deployment(&spec.deployment_id) {
            return Err(PlatformError::UnknownDeployment {
                client_id: tool.client_id.clone(),
                deployment_id: clip(&spec.deployment_id),
            });
        }
        let target = spec
            .target_link_uri
            .clone()
            .unwrap_or_else(|| tool.target_link_uri.clone());
        let hint = MessageHint {
            l: spec.clone(),
            e: self
                .now()
                .saturating_add(self.config.message_hint_lifetime_secs),
        };
        let sealed = self.secret.seal(Purpose::MessageHint, &hint)?;
        Ok(LoginInitiation {
            login_url: tool.login_initiation_url.clone(),
            params: vec![
                ("iss".to_owned(), self.config.issuer.clone()),
                (
                    "login_hint".to_owned(),
                    self.subject_for(&tool, &spec.user_id),
                ),
                ("target_link_uri".to_owned(), target),
                ("lti_message_hint".to_owned(), sealed),
                ("lti_deployment_id".to_owned(), spec.deployment_id.clone()),
                ("client_id".to_owned(), tool.client_id.clone()),
            ],
        })
    }
}
