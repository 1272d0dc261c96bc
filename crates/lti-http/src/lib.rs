#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]

mod cache;
mod client;
mod egress;
mod error;
mod jwks;
mod link;
mod retry;
mod service;
mod token;
#[cfg(feature = "transport")]
mod transport;
mod url;

pub use cache::{Memo, ResponseCache};
pub use client::{FnClient, HttpClient, MaxResponseBytes, clone_request};
pub use egress::{EgressPolicy, Resolve, SystemResolver, address_class};
pub use error::{Error, HttpError, TimeoutPhase};
pub use jwks::{JwksCache, JwksCacheConfig, JwksCacheStats};
pub use link::{Link, Links, Page, Pager, collect_pages};
pub use retry::{
    Attempts, RetryPolicy, check_status, is_idempotent, is_retryable_status, parse_http_date,
    parse_retry_after, retry, send_with_retry,
};
pub use service::{ServiceClient, TokenStats};
pub use token::{
    ASSERTION_LIFETIME_SECS, AccessToken, CLIENT_ASSERTION_TYPE, DEFAULT_TOKEN_LIFETIME_SECS,
    FillLock, MemoryTokenCache, SharedTokenCache, TOKEN_LOCK_NAMESPACE, TOKEN_NAMESPACE,
    TokenCache, TokenCacheKey, TokenEndpointConfig, client_assertion, parse_token_response,
    token_request,
};
#[cfg(feature = "transport")]
pub use transport::{DEFAULT_USER_AGENT, HyperClient, HyperClientBuilder};
pub use url::{is_loopback_host, origin, redact_url};
