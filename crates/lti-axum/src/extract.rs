//! Extractors: the current verified launch and role guards.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::header::{AUTHORIZATION, COOKIE};
use http::request::Parts;
use lti_message::Role;
use lti_tool::{LAUNCH_ID_PARAM, Launch, Tool};

use crate::error::{Error, LtiRejection};

/// The cookie the launch route sets to the launch id (a session cookie, `HttpOnly`;
/// `Secure; SameSite=None; Partitioned` when the tool's base URL is `https`).
pub const LAUNCH_COOKIE: &str = "lti_launch";

/// The longest launch id accepted from a request (ids issued by `lti-tool` are 43
/// characters; anything far longer is refused before the store is asked).
const MAX_LAUNCH_ID_LEN: usize = 256;

/// The launch id a request carries, looked up in this order: an
/// `Authorization: Bearer <id>` header, the `lti_launch_id` query parameter (which
/// `lti-tool` appends to the post-launch redirect), the `lti_launch` cookie. The
/// header and the query parameter let follow-up requests work inside an LMS iframe
/// whose browser blocks third-party cookies.
pub fn launch_id_from_parts(parts: &Parts) -> Option<String> {
    let bearer = parts
        .headers
        .get_all(AUTHORIZATION)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    let query = || {
        parts.uri.query().and_then(|q| {
            q.split('&').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                (name == LAUNCH_ID_PARAM).then(|| value.to_owned())
            })
        })
    };
    let cookie = || {
        parts
            .headers
            .get_all(COOKIE)
            .into_iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                (name.trim() == LAUNCH_COOKIE).then(|| value.trim().to_owned())
            })
    };
    bearer
        .or_else(query)
        .or_else(cookie)
        .filter(|id| !id.is_empty() && id.len() <= MAX_LAUNCH_ID_LEN)
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

/// Refuses (`insufficient_role`, 403) unless the launch has an instructor role or
/// one that outranks it (administrator).
///
/// # Errors
/// [`Error::InsufficientRole`].
pub fn require_instructor(launch: &Launch) -> Result<(), Error> {
    if launch.roles().is_instructor_or_higher() {
        Ok(())
    } else {
        Err(insufficient("an instructor or higher role", launch))
    }
}

/// Refuses (`insufficient_role`, 403) unless the launch has one of `roles` (or a
/// sub-role of one). Roles may be full URIs
/// (`http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor`) or short names
/// (`Mentor`).
///
/// # Errors
/// [`Error::InsufficientRole`].
pub fn require_any_role(launch: &Launch, roles: &[&str]) -> Result<(), Error> {
    let held = launch.roles();
    if roles.iter().any(|r| held.has(&Role::parse(r))) {
        Ok(())
    } else {
        Err(insufficient(
            &format!("one of [{}]", roles.join(", ")),
            launch,
        ))
    }
}

fn insufficient(expected: &str, launch: &Launch) -> Error {
    let mut found: String = launch
        .roles()
        .iter()
        .map(Role::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if found.chars().count() > 200 {
        found = found.chars().take(200).collect::<String>() + "…";
    }
    Error::InsufficientRole {
        expected: expected.to_owned(),
        found,
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
