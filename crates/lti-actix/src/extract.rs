//! Extractors: the current verified launch and role guards.

use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::{AUTHORIZATION, COOKIE};
use actix_web::{FromRequest, HttpRequest, web};
use lti_message::Role;
use lti_tool::{LAUNCH_ID_PARAM, Launch, Tool};

use crate::error::{Error, LtiRejection};

/// The cookie the launch route sets to the launch id (a session cookie, `HttpOnly`;
/// `Secure; SameSite=None; Partitioned` when the tool's base URL is `https`).
pub const LAUNCH_COOKIE: &str = "lti_launch";

/// The longest launch id accepted from a request (ids issued by `lti-tool` are 43
/// characters; anything far longer is refused before the store is asked).
const MAX_LAUNCH_ID_LEN: usize = 256;

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
/// whose browser blocks third-party cookies.
pub fn launch_id_from_request(req: &HttpRequest) -> Option<String> {
    let header_values = |name| {
        req.headers()
            .get_all(name)
            .filter_map(|value| value.to_str().ok())
    };
    let from_bearer = header_values(AUTHORIZATION).find_map(|value| {
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned())
    });
    let from_query = || {
        req.query_string().split('&').find_map(|pair| {
            let value = pair.strip_prefix(LAUNCH_ID_PARAM)?.strip_prefix('=')?;
            Some(value.to_owned())
        })
    };
    let from_cookie = || {
        header_values(COOKIE)
            .flat_map(|value| value.split(';'))
            .find_map(|pair| match pair.split_once('=') {
                Some((name, value)) if name.trim() == LAUNCH_COOKIE => {
                    Some(value.trim().to_owned())
                }
                _ => None,
            })
    };
    from_bearer
        .or_else(from_query)
        .or_else(from_cookie)
        .filter(|id| !id.is_empty() && id.len() <= MAX_LAUNCH_ID_LEN)
}

/// Loads the request's launch with [`Tool::load_launch`].
pub(crate) async fn load_launch(req: &HttpRequest) -> Result<Launch, Error> {
    let tool = tool_of(req)?;
    let id = launch_id_from_request(req).ok_or(Error::MissingLaunchId)?;
    Ok(tool.load_launch(&id).await?)
}

/// The launch checked by `guard`; any refusal is rendered per the request's `Accept`.
async fn guarded(
    req: HttpRequest,
    guard: impl FnOnce(&Launch) -> Result<(), Error>,
) -> Result<Launch, LtiRejection> {
    let checked = async {
        let launch = load_launch(&req).await?;
        guard(&launch)?;
        Ok(launch)
    };
    checked
        .await
        .map_err(|e: Error| LtiRejection::new(e, req.headers()))
}

/// The current verified launch, loaded with [`Tool::load_launch`] by the launch id
/// the request carries (see [`launch_id_from_request`]).
///
/// Rejects with `launch_id_missing` (401) without an id, `launch_not_found` (404)
/// for an unknown or expired one, `store_unavailable` (503) when the store is down.
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

/// Refuses (`insufficient_role`, 403) unless the launch has an instructor role or
/// one that outranks it (administrator).
///
/// # Errors
/// [`Error::InsufficientRole`].
pub fn require_instructor(launch: &Launch) -> Result<(), Error> {
    if launch.roles().is_instructor_or_higher() {
        return Ok(());
    }
    Err(insufficient_role("an instructor or higher role", launch))
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
    if roles.iter().any(|role| held.has(&Role::parse(role))) {
        return Ok(());
    }
    Err(insufficient_role(
        &format!("one of [{}]", roles.join(", ")),
        launch,
    ))
}

fn insufficient_role(expected: &str, launch: &Launch) -> Error {
    const MAX_CHARS: usize = 200;
    let held: Vec<&str> = launch.roles().iter().map(Role::as_str).collect();
    let held = held.join(", ");
    let found = match held.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &held[..cut]),
        None => held,
    };
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
    fn bearer_wins_over_query_and_query_over_cookie() {
        let req = TestRequest::get()
            .uri("/x?lti_launch_id=from-query")
            .insert_header((AUTHORIZATION, "Bearer from-header"))
            .insert_header((COOKIE, "lti_launch=from-cookie"))
            .to_http_request();
        assert_eq!(launch_id_from_request(&req).as_deref(), Some("from-header"));
        let req = TestRequest::get()
            .uri("/x?a=1&lti_launch_id=from-query")
            .insert_header((COOKIE, "lti_launch=from-cookie"))
            .to_http_request();
        assert_eq!(launch_id_from_request(&req).as_deref(), Some("from-query"));
        let req = TestRequest::get()
            .uri("/x")
            .insert_header((COOKIE, "a=b; lti_launch=from-cookie"))
            .to_http_request();
        assert_eq!(launch_id_from_request(&req).as_deref(), Some("from-cookie"));
    }

    #[test]
    fn absent_empty_oversized_or_non_bearer_ids_are_none() {
        let none = |req: TestRequest| launch_id_from_request(&req.to_http_request());
        assert_eq!(none(TestRequest::get().uri("/x")), None);
        assert_eq!(none(TestRequest::get().uri("/x?lti_launch_id=")), None);
        assert_eq!(none(TestRequest::get().uri("/x?lti_launch_idx=abc")), None);
        let long = "a".repeat(MAX_LAUNCH_ID_LEN + 1);
        assert_eq!(
            none(TestRequest::get().uri(&format!("/x?lti_launch_id={long}"))),
            None
        );
        let basic = TestRequest::get().insert_header((AUTHORIZATION, "Basic abc"));
        assert_eq!(none(basic), None);
    }

    #[test]
    fn a_missing_tool_is_a_setup_error() {
        let req = TestRequest::get().to_http_request();
        let err = tool_of(&req).unwrap_err();
        assert_eq!(err.code(), "tool_not_configured");
    }
}
