//! The LTI 1.1 tool-provider routes (feature `lti11`): the launch, the
//! resource page and the new-window hand-over of [`lti11::ProviderFlow`],
//! whose paths they take.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRef, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, header};
use lti11::flow::NEW_WINDOW_SEGMENT;
use lti11::{ProviderFlow, VisitPage};

use crate::error::wants_json;
use crate::routes::read_body;

/// The largest LTI 1.1 launch body the route reads: `lti11`'s verifier cap (256 KiB).
pub const LTI11_BODY_LIMIT: usize = lti11::DEFAULT_MAX_BODY_BYTES;

/// The LTI 1.1 routes of `flow` (its launch path and resource pages), for a
/// router whose state provides an `Arc<ProviderFlow>` through [`FromRef`]:
/// `POST` launch → `303` to `GET {visit path}/{id}` (the built-in page,
/// [`VisitPage::response`]), and `POST {visit path}/{id}/new-window`.
///
/// ```
/// # use std::sync::Arc;
/// # use lti_registry::{SecretCipher, SystemClock};
/// let store = Arc::new(lti_store::MemoryStore::new(
///     SecretCipher::insecure_plaintext_for_tests(),
///     Arc::new(SystemClock),
/// ));
/// let verifier = lti11::LaunchVerifier::new(lti11::OAuthVerifier::new(store.clone(), store.clone()));
/// let flow = Arc::new(lti11::ProviderFlow::new("https://tool.example", verifier, store.clone(), store));
/// let app: axum::Router = lti_axum::lti11_routes(&flow).with_state(flow);
/// ```
pub fn lti11_routes<S>(flow: &ProviderFlow) -> Router<S>
where
    Arc<ProviderFlow>: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    let visit = format!("{}/{{visit}}", flow.visit_route());
    Router::new()
        .route(flow.launch_route(), post(launch))
        .route(&visit, get(resource_page))
        .route(&format!("{visit}/{NEW_WINDOW_SEGMENT}"), post(new_window))
}

/// The launch route's handler: [`ProviderFlow::launch_request`], answered
/// with its `303` or the refusal.
pub async fn launch(State(flow): State<Arc<ProviderFlow>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match read_body(body, LTI11_BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => return crate::LtiRejection::new(e, &parts.headers).into_response(),
    };
    match flow
        .launch_request(parts.uri.query(), &parts.headers, &body)
        .await
    {
        Ok(answer) => answer.response().map(Body::from),
        Err(e) => refusal(&e, &parts.headers),
    }
}

async fn resource_page(
    State(flow): State<Arc<ProviderFlow>>,
    Path(visit): Path<String>,
    headers: HeaderMap,
) -> Response {
    match flow.visit(&visit, &headers).await {
        Ok(page) => VisitPage::response(&page).map(Body::from),
        Err(e) => refusal(&e, &headers),
    }
}

async fn new_window(
    State(flow): State<Arc<ProviderFlow>>,
    Path(visit): Path<String>,
    headers: HeaderMap,
) -> Response {
    match flow.continue_in_new_window(&visit).await {
        Ok(response) => response.map(Body::from),
        Err(e) => refusal(&e, &headers),
    }
}

/// An `lti11` refusal as `lti-tool`'s error page, or its JSON body when the
/// request asked for JSON; `Cache-Control: no-store`.
pub fn refusal(error: &lti11::Error, request_headers: &HeaderMap) -> Response {
    let (status, code, message) = (error.status(), error.code(), error.to_string());
    let (content_type, body) = if wants_json(request_headers) {
        (
            "application/json",
            lti_tool::web::error_json(code, &message),
        )
    } else {
        (
            "text/html; charset=utf-8",
            lti_tool::web::error_page(status, code, &message),
        )
    };
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
