#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod error;
mod extract;
#[cfg(feature = "lti11")]
mod provider11;
mod routes;

pub use error::{Error, LtiRejection, wants_json};
pub use extract::{
    LAUNCH_COOKIE, LtiLaunch, ReadOnlyLtiLaunch, RequireAnyRole, RequireInstructor, RoleSet,
    launch_id_from_parts, require_any_role, require_instructor,
};
pub use lti_tool::web::{
    CSRF_HEADER, CSRF_PARAM, DEEP_LINK_PATH, DEFAULT_BODY_LIMIT, DeepLinkRequest, JWKS_PATH,
    LAUNCH_PATH, LOGIN_PATH, RouteConfig, csrf_token, launch_cookie, launch_query, require_json,
};
#[cfg(feature = "lti11")]
#[cfg_attr(docsrs, doc(cfg(feature = "lti11")))]
pub use provider11::{
    LTI11_BODY_LIMIT, launch as lti11_launch, lti11_routes, refusal as lti11_refusal,
};
pub use routes::{LtiRoutes, into_response, routes, tool_request};
