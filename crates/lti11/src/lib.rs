#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod consumer;
mod error;
pub mod flow;
pub mod model;
pub mod oauth;
pub mod outbox;
pub mod outcomes;
pub mod pox;
mod verify;

pub use consumer::{
    FormTarget, LaunchRequest, Passport, PseudonymKey, SignedLaunch, UserIdPolicy,
    parse_custom_parameters,
};
pub use error::{Error, ErrorKind, Result};
pub use flow::{LaunchAnswer, ProviderFlow, Visit, VisitPage};
pub use lti_registry::SecretString;
pub use model::{ProviderModel, ProviderStore};
pub use oauth::{Credentials, SignatureMethod, SignedRequest};
pub use outbox::BasicOutcomesSender;
pub use outcomes::{
    GradeBook, GradeBookError, OutcomesClient, OutcomesReceiver, ReceiverAnswer, ScoreQueue,
    ScoreUpdate, Submitted, build_outcome_request, parse_outcome_response,
};
pub use pox::{CodeMajor, Operation, OutcomeRequest, OutcomeResponse, ResultData, Score};
pub use verify::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_TIMESTAMP_WINDOW_SECS, Launch, LaunchVerifier, OAuthVerifier,
    OutcomeTarget, VerifiedRequest,
};
