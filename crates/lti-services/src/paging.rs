//! Authorized calls and page walking shared by the AGS and NRPS clients.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::Stream;
use http::{Request, Response};
use lti_http::{EgressPolicy, Pager, ServiceClient, clone_request, redact_url};
use lti_message::ags::{AgsResult, LineItem};
use lti_message::nrps::Member;
use tokio::sync::OwnedMutexGuard;

use crate::ags::Paged;
use crate::error::ServiceError;
use crate::nrps::MembershipPage;
use crate::registration::ServiceRegistration;
use crate::wire;

/// A parser of one response.
pub(crate) type Parse<P> = fn(&str, Response<Bytes>) -> Result<P, ServiceError>;

/// How listings follow `Link` headers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PagingPolicy {
    /// Pages one listing may fetch.
    pub(crate) max_pages: usize,
    /// Whether `next` / `differences` targets may leave the first page's origin.
    pub(crate) allow_cross_origin: bool,
}

/// Sends requests for one registration with one token scope set.
#[derive(Clone)]
pub(crate) struct Caller {
    pub(crate) service: Arc<ServiceClient>,
    pub(crate) registration: ServiceRegistration,
    pub(crate) key: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) paging: PagingPolicy,
    pub(crate) egress: Arc<EgressPolicy>,
}

impl Caller {
    pub(crate) fn new(
        service: Arc<ServiceClient>,
        registration: ServiceRegistration,
        scopes: Vec<String>,
        paging: PagingPolicy,
        egress: Arc<EgressPolicy>,
    ) -> Self {
        let key = registration.registration_key();
        Self {
            service,
            registration,
            key,
            scopes,
            paging,
            egress,
        }
    }

    /// Refuses `url` unless the egress policy admits its origin (the
    /// registration's issuer or token endpoint, or a listed origin).
    pub(crate) fn check_egress(&self, url: &str) -> Result<(), lti_http::Error> {
        self.egress
            .check_url(url, &self.registration.endpoint_urls())
    }

    async fn send(&self, req: Request<Bytes>) -> Result<Response<Bytes>, ServiceError> {
        self.check_egress(&req.uri().to_string())?;
        Ok(self
            .service
            .send_authorized(
                &self.key,
                self.registration.token_endpoint(),
                &self.scopes,
                req,
            )
            .await?)
    }

    /// Sends `req` once (a `401` still gets one new token), without the
    /// client's retries.
    pub(crate) async fn send_once(
        &self,
        req: Request<Bytes>,
    ) -> Result<Response<Bytes>, ServiceError> {
        self.check_egress(&req.uri().to_string())?;
        Ok(self
            .service
            .send_authorized_with_policy(
                &self.key,
                self.registration.token_endpoint(),
                &self.scopes,
                req,
                &lti_http::RetryPolicy::none(),
            )
            .await?)
    }

    /// Sends `req` and parses the answer with `parse`.
    pub(crate) async fn call<T>(
        &self,
        req: Request<Bytes>,
        parse: Parse<T>,
    ) -> Result<T, ServiceError> {
        let url = req.uri().to_string();
        let resp = self.send(req).await?;
        parse(&url, resp)
    }

    /// Refuses `url` when it leaves `origin`, unless cross-origin links are
    /// allowed: the bearer token must not travel to a host the service did
    /// not come from.
    pub(crate) fn check_origin(&self, origin: Option<&str>, url: &str) -> Result<(), ServiceError> {
        let found = lti_http::origin(url);
        if self.paging.allow_cross_origin || (found.is_some() && found.as_deref() == origin) {
            return Ok(());
        }
        Err(ServiceError::CrossOriginLink {
            expected: origin.unwrap_or_default().to_owned(),
            found: redact_url(url).chars().take(120).collect(),
        })
    }

    /// Walks the pages starting with `first`.
    pub(crate) fn walk<P>(
        &self,
        operation: &'static str,
        first: Request<Bytes>,
        parse: Parse<P>,
    ) -> Walker<'_, P> {
        let first_url = first.uri().to_string();
        Walker {
            caller: self,
            operation,
            origin: lti_http::origin(&first_url),
            pager: Pager::new(first_url, self.paging.max_pages),
            template: first,
            parse,
        }
    }
}

/// Follows `rel="next"` links (page cap and loop detection from
/// [`lti_http::Pager`]), keeping the platform's message on a 4xx/5xx.
pub(crate) struct Walker<'a, P> {
    caller: &'a Caller,
    operation: &'static str,
    origin: Option<String>,
    pager: Pager,
    template: Request<Bytes>,
    parse: Parse<P>,
}

impl<P> Walker<'_, P> {
    /// The next page with the URL it came from; `None` after the last.
    pub(crate) async fn next_page(&mut self) -> Option<Result<(String, P), ServiceError>> {
        let mut refused: Option<ServiceError> = None;
        let slot = &mut refused;
        let caller = self.caller;
        let template = &self.template;
        let operation = self.operation;
        let origin = self.origin.as_deref();
        let page = self
            .pager
            .next_page(|url| async move {
                if let Err(e) = caller.check_origin(origin, &url) {
                    *slot = Some(e);
                    return Err(lti_http::Error::InvalidRequest {
                        reason: "cross-origin Link target refused".to_owned(),
                    });
                }
                caller.check_egress(&url)?;
                let mut req = clone_request(template);
                *req.uri_mut() = url.parse().map_err(|_| lti_http::Error::InvalidUrl {
                    found: redact_url(&url),
                    reason: "not a valid URI",
                })?;
                let resp = caller
                    .service
                    .send_authorized(
                        &caller.key,
                        caller.registration.token_endpoint(),
                        &caller.scopes,
                        req,
                    )
                    .await?;
                let status = resp.status();
                if status.is_client_error() || status.is_server_error() {
                    *slot = Some(wire::platform_error(operation, &url, &resp));
                }
                Ok(resp)
            })
            .await?;
        Some(match page {
            Ok(p) => (self.parse)(&p.url, p.response).map(|v| (p.url, v)),
            Err(e) => Err(refused.unwrap_or(ServiceError::Http(e))),
        })
    }

    /// Every item of every page.
    pub(crate) async fn collect_items(mut self) -> Result<Vec<P::Item>, ServiceError>
    where
        P: PageItems,
    {
        let mut items = Vec::new();
        while let Some(page) = self.next_page().await {
            items.extend(page?.1.into_items());
        }
        Ok(items)
    }

    /// The items one by one, fetching pages as they are needed. The stream
    /// ends after the first error.
    pub(crate) fn into_stream<'a>(
        self,
    ) -> impl Stream<Item = Result<P::Item, ServiceError>> + Send + 'a
    where
        Self: 'a,
        P: PageItems + Send + 'a,
        P::Item: Send,
    {
        let state = (self, VecDeque::new(), false);
        futures_util::stream::unfold(state, |(mut walker, mut buffer, done)| async move {
            loop {
                if let Some(item) = buffer.pop_front() {
                    return Some((Ok(item), (walker, buffer, done)));
                }
                if done {
                    return None;
                }
                match walker.next_page().await {
                    None => return None,
                    Some(Err(e)) => return Some((Err(e), (walker, buffer, true))),
                    Some(Ok((_, page))) => buffer.extend(page.into_items()),
                }
            }
        })
    }
}

/// A parsed page that holds a list of items.
pub(crate) trait PageItems {
    /// The item type.
    type Item;
    /// The page's items.
    fn into_items(self) -> Vec<Self::Item>;
}

impl PageItems for Paged<LineItem> {
    type Item = LineItem;
    fn into_items(self) -> Vec<LineItem> {
        self.items
    }
}

impl PageItems for Paged<AgsResult> {
    type Item = AgsResult;
    fn into_items(self) -> Vec<AgsResult> {
        self.items
    }
}

impl PageItems for MembershipPage {
    type Item = Member;
    fn into_items(self) -> Vec<Member> {
        self.container.members
    }
}

type LockMap = HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>;

/// Async locks keyed by (line items URL, resource id), removed when unused.
#[derive(Default)]
pub(crate) struct KeyedLocks {
    map: Mutex<LockMap>,
}

/// Holds one keyed lock; releases (and forgets unused) on drop.
pub(crate) struct KeyedGuard {
    locks: Arc<KeyedLocks>,
    key: (String, String),
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: OwnedMutexGuard<()>,
}

impl KeyedLocks {
    pub(crate) async fn lock(self: &Arc<Self>, key: (String, String)) -> KeyedGuard {
        let lock = {
            let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.entry(key.clone()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        KeyedGuard {
            locks: self.clone(),
            key,
            lock,
            _guard: guard,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for KeyedGuard {
    fn drop(&mut self) {
        let mut map = self
            .locks
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The map, `self.lock` and the owned guard: nobody else waits.
        if Arc::strong_count(&self.lock) == 3 {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keyed_locks_serialise_one_key_and_are_forgotten_when_unused() {
        let locks = Arc::new(KeyedLocks::default());
        let key = ("https://p.test/li".to_owned(), "quiz-1".to_owned());
        let first = locks.lock(key.clone()).await;
        let other = locks
            .lock(("https://p.test/li".to_owned(), "quiz-2".to_owned()))
            .await;
        assert_eq!(locks.len(), 2);
        let waiter = {
            let locks = locks.clone();
            let key = key.clone();
            tokio::spawn(async move {
                let _g = locks.lock(key).await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "second holder of one key must wait");
        drop(first);
        waiter.await.unwrap();
        drop(other);
        assert_eq!(locks.len(), 0);
    }
}
