#![doc = include_str!("../README.md")]

mod error;
pub mod oauth;
pub mod pox;

pub use error::{Error, ErrorKind, Result};
pub use oauth::{ConsumerSecret, Credentials, SignatureMethod, SignedRequest};
