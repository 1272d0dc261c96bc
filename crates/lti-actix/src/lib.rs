#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod convert;
mod error;
mod extract;
#[cfg(feature = "lti11")]
mod provider11;
mod routes;

pub use error::{Error, LtiRejection, wants_json};
pub use extract::{
    LAUNCH_COOKIE, LtiLaunch, ReadOnlyLtiLaunch, RequireAnyRole, RequireInstructor, RoleSet,
    launch_id_from_request, require_any_role, require_instructor, tool_of,
};
pub use lti_tool::web::{CSRF_HEADER, CSRF_PARAM, csrf_token, launch_query, require_json};
#[cfg(feature = "lti11")]
#[cfg_attr(docsrs, doc(cfg(feature = "lti11")))]
pub use provider11::{
    LTI11_BODY_LIMIT, configure_lti11, launch as lti11_launch, refusal as lti11_refusal,
};
pub use routes::{
    DEEP_LINK_PATH, DEFAULT_BODY_LIMIT, DeepLinkRequest, JWKS_PATH, LAUNCH_PATH, LOGIN_PATH,
    LtiRoutes, configure, into_response, launch_cookie, tool_request,
};
