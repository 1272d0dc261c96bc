#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod account;
mod cookie;
mod deep_linking;
mod error;
pub mod html;
mod jwks;
mod launch;
mod login;
mod login_state;
mod migration;
mod new_window;
mod quirks;
mod random;
pub mod registration;
mod request;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod service;
mod storage;
mod tool;
mod urls;
pub mod web;

pub use account::{AccountLinker, AccountRefusal, PERSONAL_DATA_CLAIMS, PersonalData};
pub use cookie::{INSECURE_COOKIE_PREFIX, SECURE_COOKIE_PREFIX};
pub use deep_linking::auto_submit_form;
pub use error::{CookieOnly, ToolClaim, ToolError};
pub use launch::{Launch, StateBinding, VerifiedIdToken};
pub use migration::{
    Lti1p1Migration, oauth_consumer_key_sign, oauth_consumer_key_sign_base_string,
};
pub use new_window::NEW_WINDOW_PARAM;
pub use request::{ToolRequest, ToolResponse};
pub use storage::{
    LaunchOutcome, PENDING_LAUNCH_TTL_SECS, STORAGE_CONFIRM_PARAM, STORAGE_ERROR_PARAM,
    STORAGE_KEY_PREFIX,
};
pub use tool::{
    DEFAULT_DEEP_LINK_TTL, DEFAULT_JWKS_MAX_AGE, DEFAULT_LAUNCH_TTL, DEFAULT_LEEWAY,
    DEFAULT_MAX_TOKEN_AGE, DEFAULT_MAX_TOKEN_LEN, DEFAULT_RETIRED_KEY_OVERLAP, DEFAULT_STATE_TTL,
    LAUNCH_ID_PARAM, Tool, ToolBuilder,
};

// Re-exported so applications need not depend on these crates for the common types.
pub use lti_message::{ContentItem, DeepLinkingResponseBuilder, LtiMessage};
