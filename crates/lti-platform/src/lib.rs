#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod auth;
mod deep_linking;
mod error;
mod keys;
mod launch;
mod platform;
mod registration;
mod registry;
mod secret;
pub mod services;
mod token;
mod web;

pub use auth::{AuthError, AuthRequest, AuthResponse, SUBSTITUTION_VARIABLES};
pub use deep_linking::DeepLinkingReturn;
pub use error::{PlatformError, Result};
pub use keys::PlatformKeys;
pub use launch::{DeepLinkingOptions, LaunchKind, LaunchSpec, LoginInitiation, PlatformUser};
pub use platform::{MemoryReplayStore, Platform, PlatformConfig, ReplayStore, TOOL_ALGORITHMS};
pub use registration::{
    CLAIMS_SUPPORTED, Consumed, DEFAULT_REGISTRATION_TOKEN_LIFETIME_SECS, DynamicRegistration,
    IssuedToken, MemoryRegistrationTokens, Registered, RegistrationConfig, RegistrationError,
    RegistrationGrant, RegistrationIntent, RegistrationTokenStore, SERVICE_SCOPES,
    SealedRegistrationTokens, ToolRegistrar,
};
pub use registry::{MemoryToolRegistry, SubjectPolicy, ToolKeys, ToolRegistration, ToolRegistry};
pub use secret::{MIN_SECRET_LEN, PlatformSecret};
pub use token::{AccessGrant, CLIENT_ASSERTION_TYPE, TokenRequest, TokenResponse};
pub use web::{
    MAX_BODY_BYTES, append_query, auto_submit_form, html_escape,
    platform_storage_forwarding_script, platform_storage_script,
};
