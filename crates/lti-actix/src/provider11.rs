//! The LTI 1.1 tool-provider routes (feature `lti11`): the launch, the
//! resource page and the new-window hand-over of [`lti11::ProviderFlow`],
//! whose paths they take. The flow is found in the app data as
//! `web::Data<ProviderFlow>`.

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use lti11::flow::NEW_WINDOW_SEGMENT;
use lti11::{ProviderFlow, VisitPage};

use crate::convert;
use crate::error::{Error, LtiRejection, wants_json};
use crate::routes::read_body;

/// The largest LTI 1.1 launch body the route reads: `lti11`'s verifier cap (256 KiB).
pub const LTI11_BODY_LIMIT: usize = lti11::DEFAULT_MAX_BODY_BYTES;

/// Registers the LTI 1.1 routes of `flow` (its launch path and resource
/// pages): `POST` launch → `303` to `GET {visit path}/{id}` (the built-in
/// page, [`VisitPage::response`]), and `POST {visit path}/{id}/new-window`.
/// The app data must hold the same flow as `web::Data<ProviderFlow>`:
///
/// ```
/// # use std::sync::Arc;
/// # use lti_registry::{SecretCipher, SystemClock};
/// use actix_web::{App, web};
/// let store = Arc::new(lti_store::MemoryStore::new(
///     SecretCipher::insecure_plaintext_for_tests(),
///     Arc::new(SystemClock),
/// ));
/// let verifier = lti11::LaunchVerifier::new(lti11::OAuthVerifier::new(store.clone(), store.clone()));
/// let flow = web::Data::new(lti11::ProviderFlow::new("https://tool.example", verifier, store.clone(), store));
/// let routes = flow.clone();
/// let _app = App::new()
///     .app_data(flow)
///     .configure(move |cfg| lti_actix::configure_lti11(cfg, &routes));
/// ```
pub fn configure_lti11(cfg: &mut web::ServiceConfig, flow: &ProviderFlow) {
    let visit = format!("{}/{{visit}}", flow.visit_route());
    cfg.service(web::resource(flow.launch_route()).route(web::post().to(launch)))
        .service(web::resource(visit.as_str()).route(web::get().to(resource_page)))
        .service(
            web::resource(format!("{visit}/{NEW_WINDOW_SEGMENT}"))
                .route(web::post().to(new_window)),
        );
}

/// The flow in the app data, or the `500` that says it is missing (a setup
/// mistake of the application, not of the request).
fn flow_of(req: &HttpRequest) -> Result<web::Data<ProviderFlow>, Box<HttpResponse>> {
    req.app_data::<web::Data<ProviderFlow>>()
        .cloned()
        .ok_or_else(|| {
            Box::new(render_refusal(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "provider_flow_not_configured",
                "the application registered the LTI 1.1 routes without web::Data<lti11::ProviderFlow> in its app data",
                req,
            ))
        })
}

/// The launch route's handler: [`ProviderFlow::launch_request`], answered
/// with its `303` or the refusal.
pub async fn launch(req: HttpRequest, body: web::Payload) -> HttpResponse {
    let flow = match flow_of(&req) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let read = async {
        let body = read_body(body, LTI11_BODY_LIMIT).await?;
        Ok::<_, Error>((body, convert::headers(req.headers())?))
    };
    let (body, headers) = match read.await {
        Ok(read) => read,
        Err(e) => return LtiRejection::new(e, req.headers()).error_response(),
    };
    let query = Some(req.query_string()).filter(|q| !q.is_empty());
    match flow.launch_request(query, &headers, &body).await {
        Ok(answer) => convert::response(answer.response()),
        Err(e) => refusal(&e, &req),
    }
}

async fn resource_page(req: HttpRequest, visit: web::Path<String>) -> HttpResponse {
    let flow = match flow_of(&req) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let headers = convert::headers_lossy(req.headers());
    match flow.visit(&visit, &headers).await {
        Ok(page) => convert::response(VisitPage::response(&page)),
        Err(e) => refusal(&e, &req),
    }
}

async fn new_window(req: HttpRequest, visit: web::Path<String>) -> HttpResponse {
    let flow = match flow_of(&req) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    match flow.continue_in_new_window(&visit).await {
        Ok(response) => convert::response(response),
        Err(e) => refusal(&e, &req),
    }
}

/// An `lti11` refusal as `lti-tool`'s error page, or its JSON body when the
/// request asked for JSON; `Cache-Control: no-store`.
pub fn refusal(error: &lti11::Error, req: &HttpRequest) -> HttpResponse {
    render_refusal(error.status(), error.code(), &error.to_string(), req)
}

fn render_refusal(
    status: http::StatusCode,
    code: &str,
    message: &str,
    req: &HttpRequest,
) -> HttpResponse {
    let (content_type, body) = if wants_json(req.headers()) {
        ("application/json", lti_tool::web::error_json(code, message))
    } else {
        (
            "text/html; charset=utf-8",
            lti_tool::web::error_page(status, code, message),
        )
    };
    HttpResponse::build(convert::status(status))
        .insert_header(("content-type", content_type))
        .insert_header(("cache-control", "no-store"))
        .body(body)
}
