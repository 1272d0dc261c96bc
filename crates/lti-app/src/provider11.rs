//! `lti serve`'s LTI 1.1 provider routes: `lti11::ProviderFlow` (launch →
//! visit → `303` to the resource page, the session cookie, the new-window
//! fallback) through `lti-axum`'s 1.1 handlers; the resource page is the
//! 1.1 launch inspector of the visit's launch, headed by the visit.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use lti_tool::html::escape;
use lti11::VisitPage;

use crate::server::AppState;

/// `POST /lti11/launch`: verify, record the visit, `303` to its page.
pub(crate) async fn launch(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    lti_axum::lti11_launch(State(state.inner.lti11_flow.clone()), req).await
}

/// `GET /lti11/visits/{visit}`: the visit's resource page, the new-window
/// offer when the frame lost the cookie, or the refusal (404 unknown, 403
/// foreign or ended, 401 without a cookie).
pub(crate) async fn visit_page(
    State(state): State<AppState>,
    Path(visit): Path<String>,
    headers: HeaderMap,
) -> Response {
    let flow = &state.inner.lti11_flow;
    match flow.visit(&visit, &headers).await {
        Ok(VisitPage::Open(visit)) => {
            let mut head = String::from("<section id=\"visit\"><h2>Visit</h2><table>");
            let _ = write!(
                head,
                "<tr><th>Signed in as</th><td id=\"display-name\">{}</td></tr>\
                 <tr><th>Resource</th><td id=\"resource-title\">{}</td></tr>",
                escape(&visit.display_name()),
                escape(visit.resource_title())
            );
            if let Some(c) = visit.context() {
                let _ = write!(
                    head,
                    "<tr><th>Course</th><td id=\"context-title\">{}</td></tr>",
                    escape(c.title.as_deref().unwrap_or(&c.context_id))
                );
            }
            head.push_str("</table></section>");
            crate::inspector::lti11_launch(&state, visit.launch(), &head).await
        }
        Ok(page) => page.response().into_response(),
        Err(e) => lti_axum::lti11_refusal(&e, &headers),
    }
}

/// `POST /lti11/visits/{visit}/new-window`: the one-time hand-over of the
/// visit to a new window (sets the session cookie there).
pub(crate) async fn new_window(
    State(state): State<AppState>,
    Path(visit): Path<String>,
    headers: HeaderMap,
) -> Response {
    match state.inner.lti11_flow.continue_in_new_window(&visit).await {
        Ok(response) => response.into_response(),
        Err(e) => lti_axum::lti11_refusal(&e, &headers),
    }
}
