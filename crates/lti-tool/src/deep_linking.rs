//! The Deep Linking 2.0 response (spec digest §1.12, §2): sign the
//! `LtiDeepLinkingResponse` JWT and deliver it with an auto-submitting form.

use http::StatusCode;
use lti_message::DeepLinkingResponseBuilder;
use serde_json::Value;
use tracing::Instrument;

use crate::error::{ToolError, clip};
use crate::html::{escape, script_policy, with_policy};
use crate::launch::VerifiedIdToken;
use crate::request::ToolResponse;
use crate::tool::Tool;

impl Tool {
    /// Signs the deep-linking response for `launch` with the tool's active key:
    /// the builder's claims (message type, version, deployment id, content items,
    /// echoed `data`, msg/log/errormsg/errorlog) plus `iss` = client id, `aud` =
    /// the platform's issuer, `iat`, `exp` and a fresh `nonce`; header `kid` = the
    /// key's kid.
    ///
    /// # Errors
    /// [`ToolError::NotDeepLinking`], [`ToolError::Configuration`] (no active key, or
    /// an unusable one), [`ToolError::Signing`], [`ToolError::StoreUnavailable`].
    pub async fn sign_deep_link_response(
        &self,
        launch: &VerifiedIdToken,
        response: &DeepLinkingResponseBuilder,
    ) -> Result<String, ToolError> {
        let span = tracing::info_span!(
            "lti.deep_link_response",
            issuer = %launch.issuer(),
            client_id = %launch.client_id(),
            deployment_id = %launch.deployment_id(),
            code = tracing::field::Empty,
        );
        let signed = self
            .sign_deep_link_response_in(launch, response)
            .instrument(span.clone())
            .await;
        match &signed {
            Err(e) => {
                span.record("code", e.code());
            }
            Ok(_) => span.in_scope(|| tracing::info!("deep-linking response signed")),
        }
        signed
    }

    async fn sign_deep_link_response_in(
        &self,
        launch: &VerifiedIdToken,
        response: &DeepLinkingResponseBuilder,
    ) -> Result<String, ToolError> {
        if !launch.is_deep_linking() {
            return Err(ToolError::NotDeepLinking {
                found: launch.message().message_type().to_owned(),
            });
        }
        let mut claims = response.build();
        let now = self.now();
        claims.insert("iss".into(), Value::String(launch.client_id().to_owned()));
        claims.insert("aud".into(), Value::String(launch.issuer().to_owned()));
        claims.insert("iat".into(), Value::from(now));
        claims.insert(
            "exp".into(),
            Value::from(now.saturating_add(self.inner.deep_link_ttl_secs)),
        );
        claims.insert(
            "nonce".into(),
            Value::String(crate::random::token(&self.inner.rng)?),
        );
        let key = self.active_signing_key().await?;
        lti_jose::sign(&claims, &key).map_err(ToolError::Signing)
    }

    /// Signs the response ([`Tool::sign_deep_link_response`]) and renders the page
    /// that POSTs it as the form field `JWT` to the request's `deep_link_return_url`:
    /// auto-submitted by a script, with a visible submit button for browsers without
    /// JavaScript. The return URL must be an `https` URL (or `http` on a loopback
    /// host, or anywhere with `insecure_allow_http`), so it can never be a
    /// `javascript:` URL.
    ///
    /// # Errors
    /// As [`Tool::sign_deep_link_response`], plus [`ToolError::InvalidClaim`] for an
    /// unusable return URL.
    pub async fn deep_link_response(
        &self,
        launch: &VerifiedIdToken,
        response: &DeepLinkingResponseBuilder,
    ) -> Result<ToolResponse, ToolError> {
        let return_url = match launch.message() {
            lti_message::LtiMessage::DeepLinking(dl) => dl.deep_link_return_url().to_owned(),
            other => {
                return Err(ToolError::NotDeepLinking {
                    found: other.message_type().to_owned(),
                });
            }
        };
        if crate::urls::check_absolute(&return_url, self.inner.allow_http).is_err() {
            return Err(ToolError::InvalidClaim {
                claim: "deep_link_return_url",
                expected: "an absolute https URL".to_owned(),
                found: format!("{:?}", clip(&return_url)),
            });
        }
        let jwt = self.sign_deep_link_response(launch, response).await?;
        Ok(with_policy(
            ToolResponse::html(StatusCode::OK, auto_submit_form(&return_url, "JWT", &jwt)),
            &AUTO_SUBMIT_POLICY,
        ))
    }
}

/// The auto-submitting page's only script.
const AUTO_SUBMIT_SCRIPT: &str = r#"document.getElementById("lti-auto-submit").submit();"#;

/// The auto-submitting page's policy: its one script (by hash) and nothing else
/// that runs. The form's target (the platform's return URL, which may redirect) is
/// not restricted.
static AUTO_SUBMIT_POLICY: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| script_policy(AUTO_SUBMIT_SCRIPT, ""));

/// A page with a form that POSTs `field=value` to `action`, submitted by a script,
/// with a visible button as the no-JavaScript fallback. Every value is HTML-escaped.
/// Served under a policy that forbids inline scripts, the page needs its script's
/// hash allowed: [`crate::Tool::deep_link_response`] sends that policy with it.
pub fn auto_submit_form(action: &str, field: &str, value: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Returning to the platform</title></head>
<body>
<form id="lti-auto-submit" method="post" action="{action}">
<input type="hidden" name="{field}" value="{value}">
<p>Returning to the platform&hellip;</p>
<button type="submit">Continue</button>
</form>
<script>{AUTO_SUBMIT_SCRIPT}</script>
</body>
</html>
"#,
        action = escape(action),
        field = escape(field),
        value = escape(value),
    )
}
