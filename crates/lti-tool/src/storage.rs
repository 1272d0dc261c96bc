//! Binding the state without cookies, through the platform's postMessage storage
//! (spec digest §6; enabled by [`ToolBuilder::platform_storage`](crate::ToolBuilder::platform_storage)).
//!
//! 1. A login that offers `lti_storage_target` is answered with a page (still
//!    setting the state cookie) whose script sends `lti.put_data` with the key
//!    `lti_state_<state>` and the state as value to the platform's frame, addressed
//!    to the origin of the platform's authorization endpoint, then continues there.
//! 2. A launch that comes back without any state cookie, for a login that stored
//!    its state this way, is verified in full (the state used up by recording
//!    its nonce) and kept in the launch-data store under a single-use pending id
//!    for two minutes;
//!    the answer is a check page whose script sends `lti.get_data` for that key,
//!    accepts only a reply from the authorization endpoint's origin carrying its
//!    message id, and compares the value with the posted state.
//! 3. The check page POSTs the pending id back to the redirect URI (with the
//!    failure, if any). The confirmation must come from the tool's own origin
//!    (`Origin`, and `Sec-Fetch-Site` when sent), so a page elsewhere cannot
//!    submit a pending id it obtained; the id is taken from the store once. Only
//!    then is the launch saved and redirected to, as after a cookie-bound launch.
//!
//! What this proves: the platform's page in this browser holds the state that
//! this tool's page stored during the login, so the launch started in this
//! browser (the login-CSRF protection the cookie gives). The platform keeps each
//! tool origin's values apart and answers only its own frame, so no other site
//! can plant or read them.

use std::sync::LazyLock;

use http::header::{HeaderValue, REFERRER_POLICY};
use http::{HeaderName, StatusCode};
use lti_registry::{PlatformRegistration, RegistryError};
use serde_json::Value;

use crate::error::{CookieOnly, ToolError, clip};
use crate::html::{escape, script_policy, with_policy};
use crate::launch::{Launch, StateBinding, launch_fields};
use crate::request::{Params, ToolRequest, ToolResponse};
use crate::tool::Tool;
use crate::urls::check_absolute;

/// Format tag of a launch awaiting its platform-storage check in the launch-data store.
pub(crate) const PENDING_FORMAT: &str = "lti-tool/pending-launch/v1";
/// The key in [`LaunchState::extra`](lti_registry::LaunchState) marking a login
/// whose state was stored in the platform's storage.
pub(crate) const STORAGE_BINDING_KEY: &str = "lti_storage_binding";
/// That key's value.
pub(crate) const STORAGE_BINDING_PLATFORM: &str = "platform";

/// The form field of the check page's confirmation: the pending launch id.
pub const STORAGE_CONFIRM_PARAM: &str = "lti_storage_confirm";
/// The form field the check page adds when the state was not found: what it saw
/// (`state_not_stored`, `no_reply`, `no_platform_window`, `platform_error:<code>`).
pub const STORAGE_ERROR_PARAM: &str = "lti_storage_error";
/// The prefix of the platform-storage key the state is kept under (the key
/// embeds the state, as the implementation guide suggests).
pub const STORAGE_KEY_PREFIX: &str = "lti_state_";
/// How long a launch waits for its platform-storage check: 2 minutes.
pub const PENDING_LAUNCH_TTL_SECS: i64 = 120;

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// What the redirect URI's route answers ([`Tool::handle_launch`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum LaunchOutcome {
    /// The launch is verified and saved: the state cookie bound it, or the check
    /// page confirmed it. `response` is the `303` to
    /// [`Tool::post_launch_location`]: the login's `target_link_uri` (or the
    /// landing URL when that is the redirect URI) with `lti_launch_id=<id>`.
    Launched {
        /// The launch.
        launch: Box<Launch>,
        /// The redirect (clearing the state cookie when one came back).
        response: ToolResponse,
    },
    /// No state cookie came back, and the login stored its state in the
    /// platform's storage: the id_token is verified and pending, and `response`
    /// is the check page (`200`, HTML) that confirms it.
    StorageCheck {
        /// The check page.
        response: ToolResponse,
    },
    /// The cookie check's new-window fallback (see
    /// [`ToolBuilder::new_window_fallback`](crate::ToolBuilder::new_window_fallback)):
    /// the page offering to continue in a new window (`200`, HTML) for a
    /// framed launch that lost its state cookie, or, in that new window, the
    /// fresh login's redirect to the platform with the state cookie.
    NewWindow {
        /// The page or the redirect.
        response: ToolResponse,
    },
}

impl LaunchOutcome {
    /// The response to send.
    pub fn response(&self) -> &ToolResponse {
        match self {
            Self::Launched { response, .. }
            | Self::StorageCheck { response }
            | Self::NewWindow { response } => response,
        }
    }

    /// The response to send, taken out.
    pub fn into_response(self) -> ToolResponse {
        match self {
            Self::Launched { response, .. }
            | Self::StorageCheck { response }
            | Self::NewWindow { response } => response,
        }
    }

    /// The launch, once verified and saved.
    pub fn launch(&self) -> Option<&Launch> {
        match self {
            Self::Launched { launch, .. } => Some(launch),
            Self::StorageCheck { .. } | Self::NewWindow { .. } => None,
        }
    }
}

impl Tool {
    /// The whole route of the redirect URI, for every way of binding the state:
    ///
    /// - the platform's launch POST with the state cookie: [`Tool::launch`];
    /// - the platform's launch POST without any state cookie, for a login that
    ///   stored its state in the platform's storage (only with
    ///   [`platform_storage`](crate::ToolBuilder::platform_storage) on): every check of
    ///   [`Tool::verify_id_token`] after consuming the state, then the check page
    ///   ([`LaunchOutcome::StorageCheck`]);
    /// - the check page's confirmation (a form with [`STORAGE_CONFIRM_PARAM`]):
    ///   same-origin, single use, within [`PENDING_LAUNCH_TTL_SECS`]; then the
    ///   launch is saved and redirected to ([`LaunchOutcome::Launched`]).
    ///
    /// A launch without a state cookie whose login did not store its state is
    /// refused with [`ToolError::StateCookieMissing`], as by [`Tool::launch`]
    /// (its state is used up), unless it comes into a frame and the
    /// [new-window fallback](crate::ToolBuilder::new_window_fallback) applies:
    /// then the page offering a new window ([`LaunchOutcome::NewWindow`]). A
    /// form with [`NEW_WINDOW_PARAM`](crate::NEW_WINDOW_PARAM) (that page's
    /// button, in the new window) starts the login again there.
    ///
    /// # Errors
    /// Every error of [`Tool::launch`], and for the confirmation
    /// [`ToolError::CrossOriginConfirmation`], [`ToolError::PendingLaunchNotFound`]
    /// and [`ToolError::StateNotBound`].
    pub async fn handle_launch(&self, req: &ToolRequest) -> Result<LaunchOutcome, ToolError> {
        let form = req.form()?;
        if form.get(STORAGE_CONFIRM_PARAM)?.is_some() {
            let launch = self.confirm_storage_launch(req, &form).await?;
            let response = launch.redirect(self)?;
            return Ok(LaunchOutcome::Launched {
                launch: Box::new(launch),
                response,
            });
        }
        if let Some(sealed) = form.optional(crate::new_window::NEW_WINDOW_PARAM)? {
            return self.new_window_login(req, sealed).await;
        }
        let (state, id_token) = launch_fields(&form)?;
        let cookie_name = match self.inner.cookies.check(req, state) {
            Ok(name) => name,
            Err(ToolError::StateCookieMissing { .. }) if self.inner.platform_storage => {
                return match self.storage_bound_launch(state, id_token).await {
                    Err(e @ ToolError::StateCookieMissing { .. }) => {
                        self.new_window_or(req, state, e)
                    }
                    other => other,
                };
            }
            Err(ToolError::StateCookieMissing { .. }) => {
                let refusal = ToolError::StateCookieMissing {
                    cookie_only: CookieOnly::PlatformStorageOff,
                };
                return self.new_window_or(req, state, refusal);
            }
            Err(e) => return Err(e),
        };
        let (launch, response) = self
            .launch_cookie_bound(state, id_token, &cookie_name)
            .await?;
        Ok(LaunchOutcome::Launched {
            launch: Box::new(launch),
            response,
        })
    }

    /// The login's answer when it stores the state in the platform's storage: the
    /// page that does so and then continues to `location` (the authorization
    /// request).
    pub(crate) fn storage_login_page(
        &self,
        registration: &PlatformRegistration,
        storage_target: &str,
        state: &str,
        location: &str,
    ) -> Result<ToolResponse, ToolError> {
        let platform_origin = platform_origin(registration, self.inner.allow_http)?;
        let html = format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Connecting to the platform</title></head>
<body>
<main id="lti-storage" data-target="{target}" data-origin="{origin}" data-key="{key}" data-value="{state}" data-next="{next}">
<p id="lti-storage-status">Connecting to the platform&hellip;</p>
<p><a id="lti-continue" href="{next}">Continue</a></p>
</main>
<script>{script}</script>
</body>
</html>
"#,
            target = escape(storage_target),
            origin = escape(&platform_origin),
            key = escape(&storage_key(state)),
            state = escape(state),
            next = escape(location),
            script = LOGIN_SCRIPT,
        );
        Ok(with_policy(
            ToolResponse::html(StatusCode::OK, html),
            &LOGIN_CSP,
        ))
    }

    /// A launch without a state cookie: consumes the state; if its login stored
    /// the state in the platform's storage, verifies the id_token, keeps it pending
    /// and answers the check page.
    async fn storage_bound_launch(
        &self,
        state: &str,
        id_token: &str,
    ) -> Result<LaunchOutcome, ToolError> {
        let saved = self.consume_login_state(state).await?;
        if saved.extra.get(STORAGE_BINDING_KEY).map(String::as_str)
            != Some(STORAGE_BINDING_PLATFORM)
        {
            return Err(ToolError::StateCookieMissing {
                cookie_only: CookieOnly::StorageNotOffered,
            });
        }
        let token = self
            .verify_for(id_token, &saved, crate::launch::NonceUse::Claimed)
            .await?;
        let platform_origin = platform_origin(token.registration(), self.inner.allow_http)?;
        let target = token.lti_storage_target().unwrap_or("_parent").to_owned();
        let pending_id = crate::random::token(&self.inner.rng)?;
        let expires_at = self.now().saturating_add(PENDING_LAUNCH_TTL_SECS);
        self.inner
            .launch_data
            .save_launch(
                &pending_id,
                token.to_record(PENDING_FORMAT, None, self.inner.personal_data),
                expires_at,
            )
            .await
            .map_err(ToolError::store)?;
        tracing::debug!(
            issuer = %token.issuer(),
            "launch without a state cookie verified; checking the platform's storage"
        );
        let html = format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="same-origin"><title>Checking the launch</title></head>
<body>
<main id="lti-storage" data-target="{target}" data-origin="{origin}" data-key="{key}" data-value="{state}">
<p id="lti-storage-status">Checking that this launch started in this browser&hellip;</p>
<noscript><p>This launch needs JavaScript: the browser did not keep the tool's cookie, so the tool checks the launch with the platform's storage instead.</p></noscript>
<form id="lti-storage-confirm" method="post" action="{action}">
<input type="hidden" name="{confirm}" value="{pending}">
<input type="hidden" name="{error}" value="" disabled>
</form>
</main>
<script>{script}</script>
</body>
</html>
"#,
            target = escape(&target),
            origin = escape(&platform_origin),
            key = escape(&storage_key(state)),
            state = escape(state),
            action = escape(&self.inner.redirect_uri),
            confirm = STORAGE_CONFIRM_PARAM,
            pending = escape(&pending_id),
            error = STORAGE_ERROR_PARAM,
            script = CHECK_SCRIPT,
        );
        // The confirmation's `Origin` is only sent under a policy that allows it
        // (`no-referrer` sends `Origin: null`): the page sets `same-origin`, in a
        // header and, against a server that overrides headers, in a meta element.
        let response = with_policy(ToolResponse::html(StatusCode::OK, html), &CHECK_CSP)
            .with_header(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        Ok(LaunchOutcome::StorageCheck { response })
    }

    /// The check page's confirmation: same origin, the pending launch taken once,
    /// then the check page's verdict.
    async fn confirm_storage_launch(
        &self,
        req: &ToolRequest,
        form: &Params<'_>,
    ) -> Result<Launch, ToolError> {
        self.check_same_origin(req)?;
        let pending_id = form
            .optional(STORAGE_CONFIRM_PARAM)?
            .filter(|id| id.len() <= lti_registry::MAX_ID_LEN)
            .ok_or(ToolError::PendingLaunchNotFound)?;
        let failure = form.get(STORAGE_ERROR_PARAM)?;
        let launch_data = &self.inner.launch_data;
        let record = match launch_data.load_launch(pending_id).await {
            Ok(v) => v,
            Err(RegistryError::NotFound { .. } | RegistryError::InvalidInput { .. }) => {
                return Err(ToolError::PendingLaunchNotFound);
            }
            Err(e) => return Err(ToolError::store(e)),
        };
        if record.get("format").and_then(Value::as_str) != Some(PENDING_FORMAT) {
            // A saved launch's id is no pending id (and must stay usable).
            return Err(ToolError::PendingLaunchNotFound);
        }
        // Single use: of concurrent confirmations, only the one that deletes it goes on.
        if !launch_data
            .delete_launch(pending_id)
            .await
            .map_err(ToolError::store)?
        {
            return Err(ToolError::PendingLaunchNotFound);
        }
        if let Some(found) = failure {
            let found = describe_failure(found);
            tracing::info!(reason = %found, "platform storage did not hold the launch's state");
            return Err(ToolError::StateNotBound { found });
        }
        let token = self.token_from_record(&record).await?;
        self.save_bound(token, StateBinding::PlatformStorage).await
    }

    /// A confirmation must be posted by a page of the tool's own origin: `Origin`
    /// equal to the redirect URI's origin and, when sent, `Sec-Fetch-Site:
    /// same-origin`.
    pub(crate) fn check_same_origin(&self, req: &ToolRequest) -> Result<(), ToolError> {
        let expected = &self.inner.redirect_origin;
        let headers = req.headers();
        let mismatch = |found: String| ToolError::CrossOriginConfirmation {
            expected: expected.clone(),
            found,
        };
        let mut origins = headers.get_all(http::header::ORIGIN).iter();
        let origin = match (origins.next(), origins.next()) {
            (Some(o), None) => o.to_str().unwrap_or(""),
            (None, _) => return Err(mismatch("no Origin header".to_owned())),
            (Some(_), Some(_)) => return Err(mismatch("several Origin headers".to_owned())),
        };
        if !origin.eq_ignore_ascii_case(expected) {
            return Err(mismatch(format!("Origin {:?}", clip(origin))));
        }
        if let Some(site) = headers.get(SEC_FETCH_SITE)
            && site.as_bytes() != b"same-origin"
        {
            return Err(mismatch(format!(
                "Sec-Fetch-Site {:?}",
                clip(site.to_str().unwrap_or("(not ASCII)"))
            )));
        }
        Ok(())
    }
}

/// The platform-storage key of `state`.
fn storage_key(state: &str) -> String {
    format!("{STORAGE_KEY_PREFIX}{state}")
}

/// The origin the platform's storage answers from, and the only one the pages
/// address and accept: that of the registration's authorization endpoint.
fn platform_origin(
    registration: &PlatformRegistration,
    allow_http: bool,
) -> Result<String, ToolError> {
    check_absolute(&registration.auth_login_url, allow_http)
        .ok()
        .and_then(|_| lti_http::origin(&registration.auth_login_url))
        .ok_or_else(|| {
            ToolError::config(format!(
                "registration {:?}: expected an absolute https authorization URL, found {:?}",
                clip(&registration.issuer),
                clip(&registration.auth_login_url)
            ))
        })
}

/// The check page's report in words (clipped; an unrecognized report is quoted).
fn describe_failure(report: &str) -> String {
    match report {
        "state_not_stored" => "another value or none under the state's key".to_owned(),
        "no_reply" => "no reply from the platform's storage within 3 seconds".to_owned(),
        "no_platform_window" => {
            "no platform window (the page is neither framed nor opened by the platform)".to_owned()
        }
        other => match other.strip_prefix("platform_error:") {
            Some(code) => format!("the platform's error {:?}", clip(code)),
            None => format!("the report {:?}", clip(other)),
        },
    }
}

/// The pages' policy: nothing but their own inline script (by hash), inline
/// styles, and forms posted to the tool itself.
fn csp_for(script: &str) -> String {
    script_policy(script, "; form-action 'self'")
}

static LOGIN_CSP: LazyLock<String> = LazyLock::new(|| csp_for(LOGIN_SCRIPT));
static CHECK_CSP: LazyLock<String> = LazyLock::new(|| csp_for(CHECK_SCRIPT));

/// The exchange both pages run, as the start of their one inline script:
/// `ltiStorage(subjects, fields, timeout, done)` sends `{subject, message_id,
/// ...fields}` to `frames[data-target]` of `window.opener || window.parent`
/// (`_parent`: that window), addressed to `data-origin`; retries with the next
/// subject (the `org.imsglobal.` draft name) on `unsupported_subject`; counts only
/// a reply from `data-origin` carrying its message id; and calls `done(reply,
/// failure)` once: with the reply, or with `null` and `no_platform_window` /
/// `no_reply` (nothing within `timeout` ms).
macro_rules! storage_exchange_js {
    () => {
        r"function ltiStorage(subjects, fields, timeout, done) {
  var d = document.getElementById('lti-storage').dataset, id = '', attempt = 0, over = false;
  function finish(m, failure) {
    if (over) return;
    over = true;
    window.removeEventListener('message', reply);
    done(m, failure);
  }
  function reply(e) {
    var m = e.data;
    if (e.origin !== d.origin || !m || typeof m !== 'object' || m.message_id !== id) return;
    if (m.error && m.error.code === 'unsupported_subject' && attempt + 1 < subjects.length) {
      attempt += 1;
      ask();
      return;
    }
    finish(m, '');
  }
  var host = window.opener || window.parent, target = host;
  if (!host || host === window) { finish(null, 'no_platform_window'); return; }
  if (d.target && d.target !== '_parent') {
    try { target = host.frames[d.target] || host; } catch (e) { target = host; }
  }
  function ask() {
    id = 'lti-tool-' + Array.prototype.join.call(window.crypto.getRandomValues(new Uint32Array(2)), '-');
    var message = { subject: subjects[attempt], message_id: id };
    for (var k in fields) message[k] = fields[k];
    target.postMessage(message, d.origin);
  }
  window.addEventListener('message', reply);
  try { ask(); } catch (e) { finish(null, 'no_platform_window'); return; }
  setTimeout(function () { finish(null, 'no_reply'); }, timeout);
}
"
    };
}

/// The login page's script: stores the state (`lti.put_data`), then continues
/// to the authorization endpoint on the reply, or after 2 seconds without one
/// (the cookie may still bind the state).
const LOGIN_SCRIPT: &str = concat!(
    storage_exchange_js!(),
    r"(function () {
  var d = document.getElementById('lti-storage').dataset;
  ltiStorage(['lti.put_data', 'org.imsglobal.lti.put_data'], { key: d.key, value: d.value }, 2000,
    function () { window.location.replace(d.next); });
})();"
);

/// The check page's script: reads the state back (`lti.get_data`) and posts the
/// confirmation, with what went wrong when the value is not the state.
const CHECK_SCRIPT: &str = concat!(
    storage_exchange_js!(),
    r"(function () {
  var d = document.getElementById('lti-storage').dataset;
  var form = document.getElementById('lti-storage-confirm');
  ltiStorage(['lti.get_data', 'org.imsglobal.lti.get_data'], { key: d.key }, 3000, function (m, failure) {
    var error = failure;
    if (m && m.error) error = 'platform_error:' + String(m.error.code || 'unknown').slice(0, 64);
    else if (m) error = m.value === d.value ? '' : 'state_not_stored';
    if (error) {
      form.elements.lti_storage_error.disabled = false;
      form.elements.lti_storage_error.value = error;
    }
    form.submit();
  });
})();"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reports_are_described_and_clipped() {
        assert!(describe_failure("state_not_stored").contains("another value or none"));
        assert!(describe_failure("no_reply").contains("no reply"));
        assert!(describe_failure("no_platform_window").contains("neither framed"));
        assert_eq!(
            describe_failure("platform_error:bad_request"),
            "the platform's error \"bad_request\""
        );
        let long = describe_failure(&"x".repeat(5000));
        assert!(long.len() < 300, "{long}");
    }

    #[test]
    fn the_policies_allow_exactly_the_pages_own_scripts() {
        use base64::Engine as _;
        let hash = |script: &str| {
            let d = ring::digest::digest(&ring::digest::SHA256, script.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(d.as_ref())
        };
        assert!(LOGIN_CSP.contains(&format!("'sha256-{}'", hash(LOGIN_SCRIPT))));
        assert!(CHECK_CSP.contains(&format!("'sha256-{}'", hash(CHECK_SCRIPT))));
        assert_ne!(*LOGIN_CSP, *CHECK_CSP);
        for csp in [&*LOGIN_CSP, &*CHECK_CSP] {
            assert!(csp.starts_with("default-src 'none';"), "{csp}");
            assert!(csp.contains("form-action 'self'"), "{csp}");
            assert!(!csp.contains("script-src 'unsafe-inline'"), "{csp}");
        }
    }
}
