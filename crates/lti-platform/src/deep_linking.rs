//! The deep-linking return endpoint: verifies the tool's `LtiDeepLinkingResponse` and
//! hands the content items to the application.

use bytes::Bytes;
use http::Request;
use lti_jose::{TimeValidation, validate_times};
use lti_message::claims::uri;
use lti_message::{Audience, ContentItem, DeepLinkingSettings};
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::auth::DeepLinkData;
use crate::error::{PlatformError, Result, clip};
use crate::platform::Platform;
use crate::secret::Purpose;
use crate::web::Params;

/// A verified deep-linking response.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DeepLinkingReturn {
    /// The tool's client id.
    pub client_id: String,
    /// The deployment.
    pub deployment_id: String,
    /// The platform user who started the deep link.
    pub user_id: String,
    /// The context the deep link was started in.
    pub context_id: Option<String>,
    /// The selected items (possibly none), each checked against the request's settings.
    pub content_items: Vec<ContentItem>,
    /// `msg`: user-visible message.
    pub msg: Option<String>,
    /// `log`.
    pub log: Option<String>,
    /// `errormsg`: user-visible error.
    pub errormsg: Option<String>,
    /// `errorlog`.
    pub errorlog: Option<String>,
}

fn string<'a>(claims: &'a Map<String, Value>, name: &'static str) -> Result<Option<&'a str>> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(PlatformError::tool_message(format!(
            "expected `{name}` to be a string, found another JSON value"
        ))),
    }
}

fn required<'a>(claims: &'a Map<String, Value>, name: &'static str) -> Result<&'a str> {
    string(claims, name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            PlatformError::tool_message(format!("expected a `{name}` claim, found none"))
        })
}

impl Platform {
    /// Reads the `JWT` form field of a POST to the deep-linking return URL and verifies
    /// it with [`Platform::verify_deep_linking_response`].
    ///
    /// # Errors
    /// As [`Platform::verify_deep_linking_response`], plus request-shape errors.
    pub async fn deep_link_return(&self, req: &Request<Bytes>) -> Result<DeepLinkingReturn> {
        let span = tracing::info_span!(
            "lti.platform.deep_link_return",
            code = tracing::field::Empty
        );
        let result = async {
            let params = Params::from_request(req, false)?;
            self.verify_deep_linking_response(params.require("JWT")?)
                .await
        }
        .instrument(span.clone())
        .await;
        if let Err(e) = &result {
            span.record("code", e.code());
            span.in_scope(|| tracing::info!("deep-linking response refused"));
        }
        result
    }

    /// Verifies a tool's deep-linking response JWT: signature with the tool's keys
    /// (`iss` names a registered client), `aud` containing this platform's issuer,
    /// `exp`/`iat`, message type `LtiDeepLinkingResponse`, version `1.3.0`, a known
    /// deployment, the platform-issued `data` echoed unchanged (it binds the response to
    /// the user, context and settings of the request), `nonce` unused, and every item
    /// acceptable under the request's settings.
    ///
    /// # Errors
    /// [`PlatformError::UnknownClient`], [`PlatformError::InvalidToolMessage`],
    /// [`PlatformError::UnknownDeployment`], [`PlatformError::ReplayedNonce`],
    /// [`PlatformError::ContentItemRefused`], [`PlatformError::Backend`].
    pub async fn verify_deep_linking_response(&self, jwt: &str) -> Result<DeepLinkingReturn> {
        let (_, unverified): (_, Map<String, Value>) = lti_jose::dangerous::decode_unverified(jwt)
            .map_err(|e| PlatformError::InvalidToolMessage {
                reason: "expected a compact JWS with a JSON object payload".to_owned(),
                source: Some(e),
            })?;
        let client_id = required(&unverified, "iss")?;
        let tool = self.require_tool(client_id).await?;
        let claims = self.verify_tool_jwt(&tool, jwt).await.map_err(|e| {
            PlatformError::InvalidToolMessage {
                reason: format!("signature check with the tool's keys failed ({})", e.code()),
                source: Some(e),
            }
        })?;
        if required(&claims, "iss")? != tool.client_id {
            return Err(PlatformError::tool_message(
                "expected `iss` equal to the client id",
            ));
        }
        let aud: Audience = claims
            .get("aud")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| {
                PlatformError::tool_message("expected an `aud` string or array, found none")
            })?;
        if !aud.contains(&self.config.issuer) {
            return Err(PlatformError::tool_message(format!(
                "expected `aud` to contain the platform issuer {}, found another audience",
                self.config.issuer
            )));
        }
        let claims = Value::Object(claims);
        let validation = TimeValidation {
            leeway_secs: self.config.leeway_secs,
            max_age_secs: Some(self.config.max_tool_jwt_lifetime_secs),
            require_exp: true,
            require_iat: true,
        };
        validate_times(&claims, &validation, self.clock.as_ref()).map_err(|e| {
            PlatformError::InvalidToolMessage {
                reason: format!("time check failed: {e}"),
                source: Some(e),
            }
        })?;
        let Value::Object(claims) = claims else {
            return Err(PlatformError::tool_message(
                "expected a JSON object payload",
            ));
        };
        let message_type = required(&claims, uri::MESSAGE_TYPE)?;
        if message_type != uri::MSG_DEEP_LINKING_RESPONSE {
            return Err(PlatformError::tool_message(format!(
                "expected message type LtiDeepLinkingResponse, found {}",
                clip(message_type)
            )));
        }
        let version = required(&claims, uri::VERSION)?;
        if version != uri::LTI_VERSION {
            return Err(PlatformError::tool_message(format!(
                "expected version 1.3.0, found {}",
                clip(version)
            )));
        }
        let deployment_id = required(&claims, uri::DEPLOYMENT_ID)?;
        if !tool.has_deployment(deployment_id) {
            return Err(PlatformError::UnknownDeployment {
                client_id: tool.client_id.clone(),
                deployment_id: clip(deployment_id),
            });
        }
        let sealed = string(&claims, uri::DL_DATA)?.ok_or_else(|| {
            PlatformError::tool_message(
                "expected the `data` of the deep-linking request echoed, found none",
            )
        })?;
        let data: DeepLinkData = self
            .secret
            .open(Purpose::DeepLinkData, sealed)
            .map_err(|e| {
                PlatformError::tool_message(format!(
                    "expected the `data` of the deep-linking request echoed unchanged: {}",
                    e.reason()
                ))
            })?;
        if data.c != tool.client_id || data.d != deployment_id {
            return Err(PlatformError::tool_message(
                "expected `data` from a request to this client and deployment, found one from another",
            ));
        }
        if data.e <= self.now() {
            return Err(PlatformError::tool_message(
                "expected a response within the deep-linking session's lifetime, found a late one",
            ));
        }
        let nonce = required(&claims, "nonce")?;
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        if !self
            .record_once(
                &format!("dl-nonce:{}", tool.client_id),
                nonce,
                exp.saturating_add(self.config.leeway_secs),
            )
            .await?
        {
            return Err(PlatformError::ReplayedNonce);
        }
        let items = match claims.get(uri::DL_CONTENT_ITEMS) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(_) => {
                return Err(PlatformError::tool_message(
                    "expected `content_items` to be an array, found another JSON value",
                ));
            }
        };
        let settings = DeepLinkingSettings {
            accept_types: data.t.clone(),
            accept_presentation_document_targets: data.p.clone(),
            accept_media_types: data.mt.clone(),
            accept_multiple: Some(data.m),
            accept_lineitem: Some(data.li),
            ..DeepLinkingSettings::default()
        };
        let mut content_items = Vec::with_capacity(items.len());
        for (i, raw) in items.into_iter().enumerate() {
            let kind = raw
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let item: ContentItem =
                serde_json::from_value(raw).map_err(|e| PlatformError::ContentItemRefused {
                    reason: format!(
                        "item {i}: expected a valid {} item, found: {e}",
                        if kind.is_empty() { "typed" } else { &kind }
                    ),
                })?;
            item.check_accepted(&settings, i)
                .map_err(|e| PlatformError::ContentItemRefused {
                    reason: format!("item {i}: {e}"),
                })?;
            content_items.push(item);
        }
        let text = |name| string(&claims, name).map(|v| v.map(str::to_owned));
        Ok(DeepLinkingReturn {
            client_id: tool.client_id.clone(),
            deployment_id: deployment_id.to_owned(),
            user_id: data.u,
            context_id: data.x,
            content_items,
            msg: text(uri::DL_MSG)?,
            log: text(uri::DL_LOG)?,
            errormsg: text(uri::DL_ERRORMSG)?,
            errorlog: text(uri::DL_ERRORLOG)?,
        })
    }
}
