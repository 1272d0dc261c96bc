//! Extractors: the current verified launch and role guards.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use lti_tool::web::launch_id;
pub use lti_tool::web::{LAUNCH_COOKIE, require_any_role, require_instructor};
use lti_tool::{Launch, Tool, ToolError};

use crate::error::{Error, LtiRejection};

/// The launch id a request carries (see `lti_tool::web::launch_id`): an
/// `Authorization: Bearer <id>` header, the `lti_launch_id` query parameter (which
/// `lti-tool` appends to the post-launch redirect), or the [`LAUNCH_COOKIE`], in
/// that order. The header and the query parameter let follow-up requests work
/// inside an LMS iframe whose browser blocks third-party cookies.
pub fn launch_id_from_parts(parts: &Parts) -> Option<String> {
    launch_id(&parts.headers, parts.uri.query())
}

/// The current verified launch, loaded with [`Tool::load_launch`] by the launch id
/// the request carries (see [`launch_id_from_parts`]).
///
/// Rejects with `launch_id_missing` (401) without an id, `launch_not_found` (404)
/// for an unknown or expired one, `store_unavailable` (503) when the store is down.
/// Works in any router whose state gives an `Arc<Tool>` through [`FromRef`].
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
        let Some(id) = launch_id_from_parts(parts) else {
            return Err(LtiRejection::new(Error::MissingLaunchId, &parts.headers));
        };
        let tool = Arc::<Tool>::from_ref(state);
        match tool.load_launch(&id).await {
            Ok(launch) => Ok(Self(launch)),
            Err(e) => Err(LtiRejection::new(e, &parts.headers)),
        }
    }
}

/// `Option<LtiLaunch>`: for a page that also serves visitors without a launch.
/// `None` when the request carries no launch id, or one the store does not know
/// (unknown or expired, e.g. a stale `lti_launch` cookie); a store that cannot
/// answer is still refused (`store_unavailable`, 503) rather than taken for
/// "no launch".
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
        let Some(id) = launch_id_from_parts(parts) else {
            return Ok(None);
        };
        let tool = Arc::<Tool>::from_ref(state);
        match tool.load_launch(&id).await {
            Ok(launch) => Ok(Some(Self(launch))),
            Err(ToolError::LaunchNotFound) => Ok(None),
            Err(e) => Err(LtiRejection::new(e, &parts.headers)),
        }
    }
}

/// A verified launch whose user is an instructor or higher; anything else is
/// refused with `insufficient_role` (403).
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
/// with `insufficient_role` (403).
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
                .header(COOKIE, "lti_launch=from-cookie"),
        );
        assert_eq!(launch_id_from_parts(&p).as_deref(), Some("from-query"));
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
