#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

pub mod ags;
mod client;
mod error;
pub mod nrps;
pub mod outbox;
mod paging;
mod profile;
mod registration;
mod wire;

pub use ags::{CanvasSubmission, LineItemsQuery, Paged, ResultsQuery};
pub use client::{AgsClient, DEFAULT_MAX_PAGES, LaunchServices, LtiServices, NrpsClient};
pub use error::ServiceError;
pub use nrps::{MembershipPage, MembershipsQuery, Roster};
pub use outbox::{
    AgsSender, OutboxWaker, OutboxWorker, RoundStats, ServiceRegistrations, WorkerConfig,
};
pub use profile::{CANVAS_MAX_PAGE_SIZE, DEFAULT_PAGE_SIZE, QuirkProfile};
pub use registration::ServiceRegistration;
