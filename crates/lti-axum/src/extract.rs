//! Extractors: the current verified launch and role guards.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
pub use lti_tool::web::{LAUNCH_COOKIE, require_any_role, require_instructor};
use lti_tool::web::{authorize, launch_id, requested_launch};
use lti_tool::{Launch, Tool, ToolError};

use crate::error::LtiRejection;

/// The launch id a request carries (see `lti_tool::web::launch_id`): an
/// `Authorization: Bearer <id>` header, the `lti_launch_id` query parameter (which
/// `lti-tool` appends to the post-launch redirect), or the [`LAUNCH_COOKIE`], in
/// that order. The header and the query parameter let follow-up requests work
/// inside an LMS iframe whose browser blocks third-party cookies. A query id that
/// the request's launch cookie does not hold is `None` (it never replaces the
/// browser's own launch).
pub fn launch_id_from_parts(parts: &Parts) -> Option<String> {
    launch_id(&parts.headers, parts.uri.query())
}

/// The current verified launch, loaded with [`Tool::load_launch`] by the launch id
/// the request carries (see [`launch_id_from_parts`]), safe for routes that
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
/// (503) when the store is down. Works in any router whose state gives an
/// `Arc<Tool>` through [`FromRef`].
///
/// ```
/// use lti_axum::{LtiLaunch, launch_query};
/// # use std::sync::Arc;
/// async fn page(
///     axum::extract::State(tool): axum::extract::State<Arc<lti_tool::Tool>>,
///     launch: LtiLaunch,
/// ) -> axum::response::Html<String> {
///     // The form's action names the launch and carries its CSRF token.
///     let action = format!("/notes?{}", launch_query(&tool, launch.launch_id()));
///     axum::response::Html(format!(
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

impl<S> FromRequestParts<S> for LtiLaunch
where
    Arc<Tool>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = LtiRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        launch_of(parts, state, Csrf::Check).await.map(Self)
    }
}

/// Whether an extractor runs the CSRF check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Csrf {
    Check,
    SkipForReadOnlyRoute,
}

/// The request's launch: `lti_tool::web::authorize` (or, for a read-only
/// route, `requested_launch` alone), then [`Tool::load_launch`].
async fn launch_of<S>(parts: &Parts, state: &S, csrf: Csrf) -> Result<Launch, LtiRejection>
where
    Arc<Tool>: FromRef<S>,
{
    let tool = Arc::<Tool>::from_ref(state);
    let query = parts.uri.query();
    let id = match csrf {
        Csrf::Check => authorize(&tool, &parts.method, &parts.headers, query),
        Csrf::SkipForReadOnlyRoute => requested_launch(&parts.headers, query).map(|r| r.id),
    };
    let reject = |e: lti_tool::web::Error| LtiRejection::new(e, &parts.headers);
    let id = id.map_err(reject)?;
    tool.load_launch(&id).await.map_err(|e| reject(e.into()))
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

impl<S> FromRequestParts<S> for ReadOnlyLtiLaunch
where
    Arc<Tool>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = LtiRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        launch_of(parts, state, Csrf::SkipForReadOnlyRoute)
            .await
            .map(Self)
    }
}

/// `Option<LtiLaunch>`: for a page that also serves visitors without a launch.
/// `None` when the request carries no launch id, or one the store does not know
/// (unknown or expired, e.g. a stale `lti_launch` cookie); a store that cannot
/// answer is still refused (`store_unavailable`, 503) rather than taken for
/// "no launch", and a presented id goes through the checks of [`LtiLaunch`]
/// (`csrf_check_failed` on a state-changing method authorised by the cookie
/// alone, `launch_id_not_bound`), so `Option` never loosens them.
// Named by path: in scope, its `from_request_parts` would make the guards' calls ambiguous.
impl<S> axum::extract::OptionalFromRequestParts<S> for LtiLaunch
where
    Arc<Tool>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = LtiRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let reject = |e: lti_tool::web::Error| LtiRejection::new(e, &parts.headers);
        // No launch id at all: an anonymous visitor. An id that is presented
        // gets the checks of `LtiLaunch` (a query id bound to the browser's
        // cookie, CSRF on state-changing methods).
        match requested_launch(&parts.headers, parts.uri.query()) {
            Err(lti_tool::web::Error::MissingLaunchId) => return Ok(None),
            Err(e) => return Err(reject(e)),
            Ok(_) => {}
        }
        let tool = Arc::<Tool>::from_ref(state);
        let id =
            authorize(&tool, &parts.method, &parts.headers, parts.uri.query()).map_err(reject)?;
        match tool.load_launch(&id).await {
            Ok(launch) => Ok(Some(Self(launch))),
            Err(ToolError::LaunchNotFound) => Ok(None),
            Err(e) => Err(reject(e.into())),
        }
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

impl<S> FromRequestParts<S> for RequireInstructor
where
    Arc<Tool>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = LtiRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let LtiLaunch(launch) = LtiLaunch::from_request_parts(parts, state).await?;
        require_instructor(&launch).map_err(|e| LtiRejection::new(e, &parts.headers))?;
        Ok(Self(launch))
    }
}

/// A set of roles for [`RequireAnyRole`], named by a type so the guard can be an
/// extractor:
///
/// ```
/// struct Staff;
/// impl lti_axum::RoleSet for Staff {
///     const ROLES: &'static [&'static str] = &["Instructor", "Mentor", "Administrator"];
/// }
/// async fn handler(launch: lti_axum::RequireAnyRole<Staff>) -> String {
///     launch.deployment_id().to_owned()
/// }
/// ```
pub trait RoleSet: Send + Sync + 'static {
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

impl<S, R> FromRequestParts<S> for RequireAnyRole<R>
where
    Arc<Tool>: FromRef<S>,
    S: Send + Sync,
    R: RoleSet,
{
    type Rejection = LtiRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let LtiLaunch(launch) = LtiLaunch::from_request_parts(parts, state).await?;
        require_any_role(&launch, R::ROLES).map_err(|e| LtiRejection::new(e, &parts.headers))?;
        Ok(Self {
            launch,
            roles: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{AUTHORIZATION, COOKIE};
    use lti_tool::web::MAX_LAUNCH_ID_LEN;

    fn parts(builder: http::request::Builder) -> Parts {
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn bearer_wins_over_query_and_cookie() {
        let p = parts(
            http::Request::get("/x?lti_launch_id=from-query")
                .header(AUTHORIZATION, "Bearer from-header")
                .header(COOKIE, "lti_launch=from-cookie"),
        );
        assert_eq!(launch_id_from_parts(&p).as_deref(), Some("from-header"));
        let p = parts(
            http::Request::get("/x?a=1&lti_launch_id=from-query")
                .header(COOKIE, "lti_launch=from-cookie.from-query"),
        );
        assert_eq!(launch_id_from_parts(&p).as_deref(), Some("from-query"));
        let p = parts(
            http::Request::get("/x?a=1&lti_launch_id=from-query")
                .header(COOKIE, "lti_launch=from-cookie"),
        );
        assert_eq!(launch_id_from_parts(&p), None, "not this browser's launch");
        let p = parts(http::Request::get("/x").header(COOKIE, "a=b; lti_launch=from-cookie"));
        assert_eq!(launch_id_from_parts(&p).as_deref(), Some("from-cookie"));
    }

    #[test]
    fn absent_empty_or_oversized_ids_are_none() {
        assert_eq!(launch_id_from_parts(&parts(http::Request::get("/x"))), None);
        let p = parts(http::Request::get("/x?lti_launch_id="));
        assert_eq!(launch_id_from_parts(&p), None);
        let long = "a".repeat(MAX_LAUNCH_ID_LEN + 1);
        let p = parts(http::Request::get(format!("/x?lti_launch_id={long}")));
        assert_eq!(launch_id_from_parts(&p), None);
        let p = parts(http::Request::get("/x").header(AUTHORIZATION, "Basic abc"));
        assert_eq!(launch_id_from_parts(&p), None);
    }
}
