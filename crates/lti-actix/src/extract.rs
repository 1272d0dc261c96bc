//! Extractors: the current verified launch and role guards.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
pub use lti_tool::web::{LAUNCH_COOKIE, require_any_role, require_instructor};
use lti_tool::{Launch, Tool};

use crate::convert;
use crate::error::{Error, LtiRejection};

type LocalFuture<T> = Pin<Box<dyn Future<Output = Result<T, LtiRejection>>>>;

/// The tool the application registered in its app data: as `web::Data<Tool>`
/// (`App::new().app_data(web::Data::from(arc_tool))`, the usual way) or as
/// `web::Data<Arc<Tool>>` (`web::Data::new(arc_tool)`).
///
/// # Errors
/// [`Error::ToolNotConfigured`] (500) when there is neither: a setup mistake.
pub fn tool_of(req: &HttpRequest) -> Result<Arc<Tool>, Error> {
    if let Some(data) = req.app_data::<web::Data<Tool>>() {
        return Ok(data.clone().into_inner());
    }
    req.app_data::<web::Data<Arc<Tool>>>()
        .map(|data| Arc::clone(data.get_ref()))
        .ok_or(Error::ToolNotConfigured)
}

/// The launch id a request carries, looked up in this order: an
/// `Authorization: Bearer <id>` header, the `lti_launch_id` query parameter (which
/// `lti-tool` appends to the post-launch redirect), the `lti_launch` cookie. The
/// header and the query parameter let follow-up requests work inside an LMS iframe
/// whose browser blocks third-party cookies. A query id that the request's
/// launch cookie does not hold is `None` (it never replaces the browser's own
/// launch).
pub fn launch_id_from_request(req: &HttpRequest) -> Option<String> {
    let headers = convert::headers_lossy(req.headers());
    lti_tool::web::launch_id(&headers, Some(req.query_string()))
}

/// Loads the request's launch with [`Tool::load_launch`], after
/// `lti_tool::web::authorize` (the launch id bound to this browser, and the
/// CSRF check on state-changing methods) or, when `csrf` is
/// [`Csrf::SkipForReadOnlyRoute`], `lti_tool::web::requested_launch` alone.
pub(crate) async fn load_launch(req: &HttpRequest, csrf: Csrf) -> Result<Launch, Error> {
    let tool = tool_of(req)?;
    let headers = convert::headers_lossy(req.headers());
    let query = Some(req.query_string());
    let id = match csrf {
        Csrf::Check => {
            let method = http::Method::from_bytes(req.method().as_str().as_bytes())
                .map_err(|_| Error::malformed("an HTTP method", req.method().as_str()))?;
            lti_tool::web::authorize(&tool, &method, &headers, query)?
        }
        Csrf::SkipForReadOnlyRoute => lti_tool::web::requested_launch(&headers, query)?.id,
    };
    Ok(tool.load_launch(&id).await?)
}

/// Whether an extractor runs the CSRF check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Csrf {
    Check,
    SkipForReadOnlyRoute,
}

/// The launch checked by `guard`; any refusal is rendered per the request's `Accept`.
async fn guarded(
    req: HttpRequest,
    guard: impl FnOnce(&Launch) -> Result<(), Error>,
) -> Result<Launch, LtiRejection> {
    guarded_with(req, Csrf::Check, guard).await
}

async fn guarded_with(
    req: HttpRequest,
    csrf: Csrf,
    guard: impl FnOnce(&Launch) -> Result<(), Error>,
) -> Result<Launch, LtiRejection> {
    let checked = async {
        let launch = load_launch(&req, csrf).await?;
        guard(&launch)?;
        Ok(launch)
    };
    checked
        .await
        .map_err(|e: Error| LtiRejection::new(e, req.headers()))
}

/// The current verified launch, loaded with [`Tool::load_launch`] by the launch id
/// the request carries (see [`launch_id_from_request`]), safe for routes that
/// change things: on a state-changing method (POST, PUT, PATCH, DELETE, …) the
/// request must pass `lti_tool::web::authorize`'s CSRF check — the launch's
/// [`csrf_token`](crate::csrf_token) in the `lti_csrf_token` query parameter
/// (see [`launch_query`](crate::launch_query)) or the `X-LTI-CSRF-Token`
/// header, the launch id in an `Authorization: Bearer` header, or the launch id
/// in the query from a page of the tool's own origin. The ambient launch cookie
/// alone never authorises such a request. GET and HEAD need none of this.
///
/// Rejects with `launch_id_missing` (401) without an id, `launch_id_not_bound`
/// (403) for a query id that is not this browser's, `csrf_check_failed` (403),
/// `launch_not_found` (404) for an unknown or expired id, `store_unavailable`
/// (503) when the store is down.
///
/// ```
/// use actix_web::{HttpResponse, web};
/// use lti_actix::{LtiLaunch, launch_query};
/// async fn page(tool: web::Data<lti_tool::Tool>, launch: LtiLaunch) -> HttpResponse {
///     // The form's action names the launch and carries its CSRF token.
///     let action = format!("/notes?{}", launch_query(&tool, launch.launch_id()));
///     HttpResponse::Ok().content_type("text/html").body(format!(
///         "<form method=\"post\" action=\"{}\"><button>Save</button></form>",
///         lti_tool::html::escape(&action)
///     ))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct LtiLaunch(pub Launch);

impl Deref for LtiLaunch {
    type Target = Launch;

    fn deref(&self) -> &Launch {
        &self.0
    }
}

impl FromRequest for LtiLaunch {
    type Error = LtiRejection;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let launch = guarded(req.clone(), |_| Ok(()));
        Box::pin(async move { launch.await.map(Self) })
    }
}

/// The current verified launch without the CSRF check of [`LtiLaunch`], for a
/// route that changes nothing even when it is posted to (a search form, a
/// preview). Never use it on a route with side effects: any site the user
/// visits can make the browser post to it with the launch cookie. The query id
/// is still refused when it is not this browser's (`launch_id_not_bound`).
#[derive(Debug, Clone)]
pub struct ReadOnlyLtiLaunch(pub Launch);

impl Deref for ReadOnlyLtiLaunch {
    type Target = Launch;

    fn deref(&self) -> &Launch {
        &self.0
    }
}

impl FromRequest for ReadOnlyLtiLaunch {
    type Error = LtiRejection;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let launch = guarded_with(req.clone(), Csrf::SkipForReadOnlyRoute, |_| Ok(()));
        Box::pin(async move { launch.await.map(Self) })
    }
}

/// A verified launch whose user is an instructor or higher; anything else is
/// refused with `insufficient_role` (403). Checked as [`LtiLaunch`] first
/// (including its CSRF check on state-changing methods).
#[derive(Debug, Clone)]
pub struct RequireInstructor(pub Launch);

impl Deref for RequireInstructor {
    type Target = Launch;

    fn deref(&self) -> &Launch {
        &self.0
    }
}

impl FromRequest for RequireInstructor {
    type Error = LtiRejection;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let launch = guarded(req.clone(), require_instructor);
        Box::pin(async move { launch.await.map(Self) })
    }
}

/// A set of roles for [`RequireAnyRole`], named by a type so the guard can be an
/// extractor:
///
/// ```
/// struct Staff;
/// impl lti_actix::RoleSet for Staff {
///     const ROLES: &'static [&'static str] = &["Instructor", "Mentor", "Administrator"];
/// }
/// async fn handler(launch: lti_actix::RequireAnyRole<Staff>) -> String {
///     launch.deployment_id().to_owned()
/// }
/// ```
pub trait RoleSet: 'static {
    /// The accepted roles (full URIs or short names; sub-roles match their parent).
    const ROLES: &'static [&'static str];
}

/// A verified launch whose user has one of `R::ROLES`; anything else is refused
/// with `insufficient_role` (403). Checked as [`LtiLaunch`] first (including its
/// CSRF check on state-changing methods).
pub struct RequireAnyRole<R: RoleSet> {
    launch: Launch,
    roles: PhantomData<fn() -> R>,
}

impl<R: RoleSet> RequireAnyRole<R> {
    /// The launch.
    pub fn into_inner(self) -> Launch {
        self.launch
    }
}

impl<R: RoleSet> std::fmt::Debug for RequireAnyRole<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireAnyRole")
            .field("roles", &R::ROLES)
            .field("launch", &self.launch)
            .finish()
    }
}

impl<R: RoleSet> Deref for RequireAnyRole<R> {
    type Target = Launch;

    fn deref(&self) -> &Launch {
        &self.launch
    }
}

impl<R: RoleSet> FromRequest for RequireAnyRole<R> {
    type Error = LtiRejection;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let launch = guarded(req.clone(), |launch| require_any_role(launch, R::ROLES));
        Box::pin(async move {
            let launch = launch.await?;
            Ok(Self {
                launch,
                roles: PhantomData,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_id_is_looked_up_in_header_then_query_then_cookie() {
        let req = TestRequest::get()
            .uri("/x?lti_launch_id=from-query")
            .insert_header(("authorization", "Bearer from-header"))
            .insert_header(("cookie", "lti_launch=from-cookie"))
            .to_http_request();
        assert_eq!(launch_id_from_request(&req).as_deref(), Some("from-header"));
        let req = TestRequest::get()
            .uri("/x?a=1&lti_launch_id=from-query")
            .insert_header(("cookie", "lti_launch=from-cookie.from-query"))
            .to_http_request();
        assert_eq!(launch_id_from_request(&req).as_deref(), Some("from-query"));
        let req = TestRequest::get()
            .uri("/x?a=1&lti_launch_id=from-query")
            .insert_header(("cookie", "lti_launch=from-cookie"))
            .to_http_request();
        assert_eq!(
            launch_id_from_request(&req),
            None,
            "not this browser's launch"
        );
        let req = TestRequest::get()
            .uri("/x")
            .insert_header(("cookie", "a=b; lti_launch=from-cookie"))
            .to_http_request();
        assert_eq!(launch_id_from_request(&req).as_deref(), Some("from-cookie"));
        let req = TestRequest::get()
            .uri("/x?lti_launch_id=")
            .to_http_request();
        assert_eq!(launch_id_from_request(&req), None);
    }

    #[test]
    fn a_missing_tool_is_a_setup_error() {
        let req = TestRequest::get().to_http_request();
        let err = tool_of(&req).unwrap_err();
        assert_eq!(err.code(), "tool_not_configured");
    }
}
