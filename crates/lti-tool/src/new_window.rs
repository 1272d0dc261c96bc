//! The cookie check's new-window fallback for LTI 1.3 launches
//! ([`ToolBuilder::new_window_fallback`](crate::ToolBuilder::new_window_fallback),
//! on by default).
//!
//! A launch that comes back into an LMS frame (`Sec-Fetch-Dest: iframe`)
//! without its state cookie, when the platform's storage cannot bind it
//! either (the platform offered none, or the tool does not use it), is not
//! refused: [`Tool::handle_launch`] answers a page (no script) whose button
//! posts the launch's sealed `state` back to the redirect URI as
//! [`NEW_WINDOW_PARAM`] in a form with `target="_blank"`. There, in a
//! top-level window where the tool's cookies are first-party, the redirect
//! URI's route opens the state (it must be this tool's and unexpired; the
//! request must come from the tool's own page: same origin) and starts the
//! login again with the original login parameters (issuer, client id,
//! `login_hint`, `lti_message_hint`, `target_link_uri`, deployment id): a
//! fresh state and nonce, the state cookie, and the redirect to the
//! platform's authorization endpoint. The platform authenticates the user
//! as for any login and posts the new launch back to the new window, where
//! the cookie binds it. The framed launch's id_token is never used.
//!
//! Nothing here widens what a request can do: the fallback only restarts a
//! login, which the login route does for anyone, and the launch in the new
//! window passes every check of a cookie-bound launch.

use http::StatusCode;
use http::header::{HeaderValue, REFERRER_POLICY};
use lti_registry::LaunchState;

use crate::error::ToolError;
use crate::html::escape;
use crate::login::LoginParams;
use crate::login_state::MAX_SEALED_PARAM_LEN;
use crate::request::{ToolRequest, ToolResponse};
use crate::storage::LaunchOutcome;
use crate::tool::Tool;

/// The form field of the new-window page's button: the framed launch's
/// `state`, posted to the redirect URI from a new window.
pub const NEW_WINDOW_PARAM: &str = "lti_new_window";

/// The keys under which a login keeps its hints in [`LaunchState::extra`].
pub(crate) const LOGIN_HINT_KEY: &str = "login_hint";
pub(crate) const MESSAGE_HINT_KEY: &str = "lti_message_hint";

/// Keeps the login hints in the state for a fresh login in a new window,
/// when both fit the sealed format (else the login has no fallback).
pub(crate) fn keep_hints(saved: &mut LaunchState, login_hint: &str, message_hint: Option<&str>) {
    let fits = |v: &str| v.len() <= MAX_SEALED_PARAM_LEN;
    if !fits(login_hint) || !message_hint.is_none_or(fits) {
        return;
    }
    saved
        .extra
        .insert(LOGIN_HINT_KEY.to_owned(), login_hint.to_owned());
    if let Some(hint) = message_hint {
        saved
            .extra
            .insert(MESSAGE_HINT_KEY.to_owned(), hint.to_owned());
    }
}

/// Whether the browser says the request loads a frame (`Sec-Fetch-Dest:
/// iframe` or `frame`). A top-level window that lost the cookie gains
/// nothing from another window.
fn framed(req: &ToolRequest) -> bool {
    req.headers()
        .get("sec-fetch-dest")
        .is_some_and(|v| v.as_bytes() == b"iframe" || v.as_bytes() == b"frame")
}

impl Tool {
    /// The new-window page for a framed launch whose state cookie did not come
    /// back, or `refusal` when the fallback does not apply (turned off, not in
    /// a frame, a state that is not this tool's or has expired, or a login
    /// that kept no hints).
    pub(crate) fn new_window_or(
        &self,
        req: &ToolRequest,
        state: &str,
        refusal: ToolError,
    ) -> Result<LaunchOutcome, ToolError> {
        if !self.inner.new_window_fallback || !framed(req) {
            return Err(refusal);
        }
        let Ok(saved) = self.open_login_state(state) else {
            return Err(refusal);
        };
        if !saved.extra.contains_key(LOGIN_HINT_KEY) {
            return Err(refusal);
        }
        tracing::info!(
            issuer = %saved.issuer,
            "framed launch without its state cookie; offering a new window"
        );
        let html = format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="same-origin"><title>Continue in a new window</title></head>
<body>
<main id="lti-new-window">
<h1>Continue in a new window</h1>
<p id="cookie-check">Your browser does not let this tool keep its cookie inside the course page, and the platform offers no other way to confirm the launch.</p>
<form method="post" action="{action}" target="_blank">
<input type="hidden" name="{param}" value="{state}">
<button type="submit" id="open-new-window">Open in a new window</button>
</form>
</main>
</body>
</html>
"#,
            action = escape(&self.inner.redirect_uri),
            param = NEW_WINDOW_PARAM,
            state = escape(state),
        );
        // `no-referrer` would make the new window's POST carry `Origin: null`,
        // which the same-origin check refuses.
        let response = ToolResponse::html(StatusCode::OK, html)
            .with_header(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        Ok(LaunchOutcome::NewWindow { response })
    }

    /// The new window's fresh login from a framed launch's sealed `state`.
    ///
    /// # Errors
    /// [`ToolError::CrossOriginConfirmation`] unless the tool's own page sent
    /// it; [`ToolError::StateNotFound`] for a state that is not this tool's,
    /// has expired or kept no hints; the login's errors.
    pub(crate) async fn new_window_login(
        &self,
        req: &ToolRequest,
        sealed: &str,
    ) -> Result<LaunchOutcome, ToolError> {
        self.check_same_origin(req)?;
        let saved = self.open_login_state(sealed)?;
        let login_hint = saved
            .extra
            .get(LOGIN_HINT_KEY)
            .map(String::as_str)
            .ok_or(ToolError::StateNotFound)?;
        let registration = self
            .resolve_registration(&saved.issuer, Some(&saved.client_id))
            .await?;
        let response = self.start_login(
            &registration,
            &LoginParams {
                login_hint,
                target_link_uri: &saved.target_link_uri,
                message_hint: saved.extra.get(MESSAGE_HINT_KEY).map(String::as_str),
                deployment_id: saved.deployment_id.as_deref(),
                storage_target: None,
            },
        )?;
        tracing::info!(issuer = %saved.issuer, "new window: login started again");
        Ok(LaunchOutcome::NewWindow { response })
    }
}
