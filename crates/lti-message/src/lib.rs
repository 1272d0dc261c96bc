#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod ags;
pub mod claims;
pub mod context;
pub mod deep_linking;
mod error;
pub mod lti11;
mod message;
pub mod nrps;
pub mod registration;
pub mod roles;
mod scan;
mod time;

pub use claims::{Audience, IdTokenClaims, uri};
pub use context::ContextType;
pub use deep_linking::{
    ContentItem, DeepLinkingResponse, DeepLinkingResponseBuilder, DeepLinkingSettings,
};
pub use error::{MessageError, RequiredClaim};
pub use message::{
    LtiDeepLinkingRequest, LtiMessage, LtiResourceLinkRequest, LtiSubmissionReviewRequest,
    MAX_DEPLOYMENT_ID_LEN, OtherMessage, ValidationOptions,
};
pub use roles::{Permissions, Role, RoleRank, Roles, is_subrole};
pub use scan::{Classified, ScannedClaims};
pub use time::Timestamp;
