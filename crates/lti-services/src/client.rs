//! The async clients: [`LtiServices`], [`AgsClient`] and [`NrpsClient`].

use std::fmt;
use std::sync::Arc;

use futures_util::Stream;
use lti_http::{EgressPolicy, ServiceClient, redact_url};
use lti_jose::SigningKey;
use lti_message::IdTokenClaims;
use lti_message::ags::{AgsEndpointClaim, AgsResult, LineItem, Score, scope};
use lti_message::nrps::{Member, NrpsClaim, SCOPE_CONTEXT_MEMBERSHIP_READONLY};
use lti_registry::PlatformRegistration;

use crate::ags::{self, LineItemsQuery, ResultsQuery, op};
use crate::error::ServiceError;
use crate::nrps::{self, MembershipsQuery, Roster};
use crate::paging::{Caller, KeyedLocks, PagingPolicy};
use crate::registration::ServiceRegistration;
use crate::wire;

/// Default cap on the pages one listing follows.
pub const DEFAULT_MAX_PAGES: usize = 1000;

/// The AGS scopes a client may request a token for.
const AGS_SCOPES: [&str; 4] = [
    scope::LINE_ITEM,
    scope::LINE_ITEM_READONLY,
    scope::RESULT_READONLY,
    scope::SCORE,
];

/// The shared state of the services clients: the `lti-http`
/// [`ServiceClient`] (token cache, retries) and the in-process locks that
/// make [`AgsClient::find_or_create_line_item`] create one line item.
///
/// Build one per application and make an [`AgsClient`] / [`NrpsClient`]
/// per launch from it; clients are cheap.
#[derive(Clone)]
pub struct LtiServices {
    service: Arc<ServiceClient>,
    locks: Arc<KeyedLocks>,
    paging: PagingPolicy,
    egress: Arc<EgressPolicy>,
}

impl fmt::Debug for LtiServices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LtiServices")
            .field("service", &self.service)
            .field("paging", &self.paging)
            .field("egress", &self.egress)
            .finish_non_exhaustive()
    }
}

impl LtiServices {
    /// Services over `service`.
    pub fn new(service: Arc<ServiceClient>) -> Self {
        Self {
            service,
            locks: Arc::new(KeyedLocks::default()),
            paging: PagingPolicy {
                max_pages: DEFAULT_MAX_PAGES,
                allow_cross_origin: false,
            },
            egress: Arc::new(EgressPolicy::new()),
        }
    }

    /// Admits service URLs on the origins `policy` lists besides the
    /// registration's own (the issuer's and the token endpoint's), e.g. a
    /// Canvas or Blackboard instance whose services live on the school's host
    /// while its issuer and token endpoint do not. Every URL a client calls
    /// (the launch's, a line item's, a `next` or `differences` link) must be
    /// on one of these origins; others fail with `egress_refused` before
    /// anything is sent.
    pub fn with_egress_policy(mut self, policy: EgressPolicy) -> Self {
        self.egress = Arc::new(policy);
        self
    }

    /// Caps the pages a listing follows (default [`DEFAULT_MAX_PAGES`]);
    /// more is an `lti-http` `page_limit_exceeded` error.
    pub fn with_max_pages(mut self, max_pages: usize) -> Self {
        self.paging.max_pages = max_pages.max(1);
        self
    }

    /// Follows `next` and `differences` links to other origins (scheme,
    /// host, port) than the listing's first URL, and lets AGS line item URLs
    /// (read, update, delete, scores, results) be on other origins than the
    /// launch's `lineitems` / `lineitem` URLs. Off by default: the access
    /// token is only sent where the launch's service URLs point. The egress
    /// policy ([`LtiServices::with_egress_policy`]) still applies.
    pub fn allow_cross_origin_links(mut self) -> Self {
        self.paging.allow_cross_origin = true;
        self
    }

    /// The underlying `lti-http` client.
    pub fn service_client(&self) -> &Arc<ServiceClient> {
        &self.service
    }

    /// An AGS client for the launch's AGS endpoint `claim`.
    ///
    /// Fails with `invalid_url` when the claim's `lineitems` or `lineitem`
    /// is not an absolute http(s) URL, and `egress_refused` when one is not
    /// on an origin the egress policy admits.
    pub fn ags(
        &self,
        registration: &ServiceRegistration,
        claim: &AgsEndpointClaim,
    ) -> Result<AgsClient, ServiceError> {
        if let Some(u) = &claim.lineitems {
            wire::check_url("the AGS lineitems URL", u)?;
            self.check_egress(registration, u)?;
        }
        if let Some(u) = &claim.lineitem {
            wire::check_url("the AGS lineitem URL", u)?;
            self.check_egress(registration, u)?;
        }
        let granted: Vec<String> = claim
            .scope
            .iter()
            .filter(|s| registration.allows_scope(s))
            .cloned()
            .collect();
        let mut token_scopes: Vec<String> = AGS_SCOPES
            .iter()
            .filter(|s| granted.iter().any(|g| g == *s))
            .map(|s| (*s).to_owned())
            .collect();
        token_scopes.sort();
        Ok(AgsClient {
            caller: Caller::new(
                self.service.clone(),
                registration.clone(),
                token_scopes,
                self.paging,
                self.egress.clone(),
            ),
            locks: self.locks.clone(),
            granted,
            lineitems: claim.lineitems.clone(),
            lineitem: claim.lineitem.clone(),
        })
    }

    /// An AGS client from a verified launch's claims; `missing_endpoint`
    /// when the launch has no AGS endpoint claim.
    pub fn ags_from_launch(
        &self,
        registration: &ServiceRegistration,
        launch: &IdTokenClaims,
    ) -> Result<AgsClient, ServiceError> {
        let claim = launch
            .ags_endpoint
            .as_ref()
            .ok_or(ServiceError::MissingEndpoint {
                what: "the AGS endpoint claim",
            })?;
        self.ags(registration, claim)
    }

    /// An NRPS client for the launch's NRPS `claim`.
    ///
    /// Fails with `missing_endpoint` without `context_memberships_url`,
    /// `invalid_url` when it is not an absolute http(s) URL,
    /// `egress_refused` when it is not on an origin the egress policy admits,
    /// and `scope_not_granted` when the registration's allow-list lacks the
    /// NRPS scope.
    pub fn nrps(
        &self,
        registration: &ServiceRegistration,
        claim: &NrpsClaim,
    ) -> Result<NrpsClient, ServiceError> {
        let url = claim
            .context_memberships_url
            .clone()
            .ok_or(ServiceError::MissingEndpoint {
                what: "the NRPS context_memberships_url",
            })?;
        wire::check_url("the NRPS context_memberships_url", &url)?;
        self.check_egress(registration, &url)?;
        if !registration.allows_scope(SCOPE_CONTEXT_MEMBERSHIP_READONLY) {
            return Err(ServiceError::ScopeNotGranted {
                scope: SCOPE_CONTEXT_MEMBERSHIP_READONLY,
                operation: nrps::op::LIST_MEMBERSHIPS,
            });
        }
        Ok(NrpsClient {
            caller: Caller::new(
                self.service.clone(),
                registration.clone(),
                vec![SCOPE_CONTEXT_MEMBERSHIP_READONLY.to_owned()],
                self.paging,
                self.egress.clone(),
            ),
            memberships_url: url,
        })
    }

    /// The services of one verified launch, in one call: the launch's
    /// platform `registration` (what `lti-tool`'s `Launch::registration`
    /// returns) and its `claims` (`Launch::claims`), with the tool's current
    /// `signing_key` (`Tool::active_signing_key`). Tokens come from the
    /// registration's token endpoint through this instance's shared cache.
    ///
    /// Nothing is checked or sent yet: [`LaunchServices::ags`] and
    /// [`LaunchServices::nrps`] fail with their specific codes when the
    /// launch lacks the claim.
    pub fn for_launch(
        &self,
        registration: &PlatformRegistration,
        signing_key: Arc<SigningKey>,
        claims: &IdTokenClaims,
    ) -> LaunchServices {
        LaunchServices {
            services: self.clone(),
            registration: ServiceRegistration::from_platform(registration, signing_key),
            ags: claims.ags_endpoint.clone(),
            nrps: claims.nrps.clone(),
        }
    }

    fn check_egress(
        &self,
        registration: &ServiceRegistration,
        url: &str,
    ) -> Result<(), ServiceError> {
        Ok(self.egress.check_url(url, &registration.endpoint_urls())?)
    }

    /// An NRPS client from a verified launch's claims; `missing_endpoint`
    /// when the launch has no NRPS claim.
    pub fn nrps_from_launch(
        &self,
        registration: &ServiceRegistration,
        launch: &IdTokenClaims,
    ) -> Result<NrpsClient, ServiceError> {
        let claim = launch.nrps.as_ref().ok_or(ServiceError::MissingEndpoint {
            what: "the NRPS claim",
        })?;
        self.nrps(registration, claim)
    }
}

/// The service clients of one verified launch, from
/// [`LtiServices::for_launch`]: grading the launch's own line item is
/// `launch_services.ags()?.grade_launch_line_item(&score).await`.
#[derive(Clone, Debug)]
pub struct LaunchServices {
    services: LtiServices,
    registration: ServiceRegistration,
    ags: Option<AgsEndpointClaim>,
    nrps: Option<NrpsClaim>,
}

impl LaunchServices {
    /// An AGS client bound to the launch's `lineitems` container and, when
    /// the link has one, its own `lineitem`.
    ///
    /// Fails with `missing_endpoint` when the launch carries no AGS endpoint
    /// claim, and as [`LtiServices::ags`] does for unusable URLs. A call
    /// whose scope the launch did not grant fails with `scope_not_granted`.
    pub fn ags(&self) -> Result<AgsClient, ServiceError> {
        let claim = self.ags.as_ref().ok_or(ServiceError::MissingEndpoint {
            what: "the AGS endpoint claim",
        })?;
        self.services.ags(&self.registration, claim)
    }

    /// An NRPS client for the launch context's memberships.
    ///
    /// Fails with `missing_endpoint` when the launch carries no NRPS claim
    /// (or it has no `context_memberships_url`), and as
    /// [`LtiServices::nrps`] does otherwise.
    pub fn nrps(&self) -> Result<NrpsClient, ServiceError> {
        let claim = self.nrps.as_ref().ok_or(ServiceError::MissingEndpoint {
            what: "the NRPS claim",
        })?;
        self.services.nrps(&self.registration, claim)
    }

    /// Whether the launch carries an AGS endpoint claim.
    pub fn has_ags(&self) -> bool {
        self.ags.is_some()
    }

    /// Whether the launch carries an NRPS claim.
    pub fn has_nrps(&self) -> bool {
        self.nrps.is_some()
    }

    /// The services registration derived from the launch's platform.
    pub fn registration(&self) -> &ServiceRegistration {
        &self.registration
    }
}

/// An Assignment and Grade Services 2.0 client for one launch's context.
///
/// Every call first checks that the scope it needs was granted (by the
/// launch claim and, if set, the registration's allow-list), failing with
/// `scope_not_granted` instead of sending a request the platform would
/// refuse. All calls share one access token for the granted AGS scopes.
#[derive(Clone)]
pub struct AgsClient {
    caller: Caller,
    locks: Arc<KeyedLocks>,
    granted: Vec<String>,
    lineitems: Option<String>,
    lineitem: Option<String>,
}

impl fmt::Debug for AgsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgsClient")
            .field("registration", &self.caller.key)
            .field("profile", &self.caller.registration.profile())
            .field("granted", &self.granted)
            .field("lineitems", &self.lineitems.as_deref().map(redact_url))
            .field("lineitem", &self.lineitem.as_deref().map(redact_url))
            .finish()
    }
}

impl AgsClient {
    /// The scopes granted (claim ∩ registration allow-list).
    pub fn granted_scopes(&self) -> &[String] {
        &self.granted
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.granted.iter().any(|s| s == scope)
    }

    /// The context's line item container URL, if the launch carried one.
    pub fn lineitems_url(&self) -> Option<&str> {
        self.lineitems.as_deref()
    }

    /// The launch's own line item URL, if the link is bound to one.
    pub fn lineitem_url(&self) -> Option<&str> {
        self.lineitem.as_deref()
    }

    fn require(&self, scope: &'static str, operation: &'static str) -> Result<(), ServiceError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(ServiceError::ScopeNotGranted { scope, operation })
        }
    }

    fn require_read(&self, operation: &'static str) -> Result<(), ServiceError> {
        if self.has_scope(scope::LINE_ITEM) {
            Ok(())
        } else {
            self.require(scope::LINE_ITEM_READONLY, operation)
        }
    }

    /// Refuses a request to a line item URL (a caller's argument, or an `id` a
    /// listing returned) that is not on the origin of the launch's `lineitems`
    /// or `lineitem` URL, unless cross-origin links are allowed: the access
    /// token must not travel to a host the launch did not name.
    fn check_item_url(&self, req: &http::Request<bytes::Bytes>) -> Result<(), ServiceError> {
        if self.caller.paging.allow_cross_origin {
            return Ok(());
        }
        let url = req.uri().to_string();
        let mut verdict = Err(ServiceError::MissingEndpoint {
            what: "the AGS lineitems or lineitem URL (line item URLs are only called on their origin)",
        });
        for claim_url in [self.lineitems.as_deref(), self.lineitem.as_deref()]
            .into_iter()
            .flatten()
        {
            verdict = self
                .caller
                .check_origin(lti_http::origin(claim_url).as_deref(), &url);
            if verdict.is_ok() {
                break;
            }
        }
        verdict
    }

    fn container(&self) -> Result<&str, ServiceError> {
        self.lineitems
            .as_deref()
            .ok_or(ServiceError::MissingEndpoint {
                what: "the AGS lineitems URL",
            })
    }

    fn list_request(
        &self,
        query: &LineItemsQuery,
    ) -> Result<http::Request<bytes::Bytes>, ServiceError> {
        self.require_read(op::LIST_LINE_ITEMS)?;
        let mut query = query.clone();
        query.limit = Some(self.caller.registration.profile().page_size(query.limit));
        ags::build_list_line_items_request(self.container()?, &query)
    }

    /// Every line item of the context matching `query`, following all
    /// pages. The `limit` defaults per quirk profile (Canvas: 50, capped).
    pub async fn list_line_items(
        &self,
        query: &LineItemsQuery,
    ) -> Result<Vec<LineItem>, ServiceError> {
        let req = self.list_request(query)?;
        self.caller
            .walk(op::LIST_LINE_ITEMS, req, ags::parse_line_items_response)
            .collect_items()
            .await
    }

    /// The line items matching `query` one by one, fetching pages lazily.
    /// A refused scope or bad URL is the stream's only item.
    pub fn stream_line_items(
        &self,
        query: &LineItemsQuery,
    ) -> impl Stream<Item = Result<LineItem, ServiceError>> + Send + '_ {
        let first = self.list_request(query);
        let walker = first.map(|req| {
            self.caller
                .walk(op::LIST_LINE_ITEMS, req, ags::parse_line_items_response)
        });
        either_stream(walker.map(|w| w.into_stream()))
    }

    /// Reads the line item at `lineitem_url`.
    pub async fn get_line_item(&self, lineitem_url: &str) -> Result<LineItem, ServiceError> {
        self.require_read(op::GET_LINE_ITEM)?;
        let req = ags::build_get_line_item_request(lineitem_url)?;
        self.check_item_url(&req)?;
        self.caller.call(req, ags::parse_line_item_response).await
    }

    /// Creates `item` in the context's container; returns it with its `id`.
    pub async fn create_line_item(&self, item: &LineItem) -> Result<LineItem, ServiceError> {
        self.require(scope::LINE_ITEM, op::CREATE_LINE_ITEM)?;
        let req = ags::build_create_line_item_request(self.container()?, item)?;
        self.caller
            .call(req, ags::parse_create_line_item_response)
            .await
    }

    /// Replaces the line item `item.id` with `item` (PUT of the whole object).
    pub async fn update_line_item(&self, item: &LineItem) -> Result<LineItem, ServiceError> {
        self.require(scope::LINE_ITEM, op::UPDATE_LINE_ITEM)?;
        let req = ags::build_update_line_item_request(item)?;
        self.check_item_url(&req)?;
        self.caller
            .call(req, ags::parse_update_line_item_response)
            .await
    }

    /// Deletes the line item at `lineitem_url`.
    pub async fn delete_line_item(&self, lineitem_url: &str) -> Result<(), ServiceError> {
        self.require(scope::LINE_ITEM, op::DELETE_LINE_ITEM)?;
        let req = ags::build_delete_line_item_request(lineitem_url)?;
        self.check_item_url(&req)?;
        self.caller
            .call(req, ags::parse_delete_line_item_response)
            .await
    }

    /// Posts `score` to the line item at `lineitem_url` (its `/scores`
    /// endpoint, before any query string). Vendor extensions are filtered
    /// by the registration's quirk profile.
    pub async fn post_score(&self, lineitem_url: &str, score: &Score) -> Result<(), ServiceError> {
        self.require(scope::SCORE, op::POST_SCORE)?;
        let req =
            ags::build_score_request(lineitem_url, score, self.caller.registration.profile())?;
        self.check_item_url(&req)?;
        self.caller.call(req, ags::parse_score_response).await
    }

    /// One attempt at posting `score` (no retries, whatever the client's
    /// retry policy): the platform's response as it came, for the grade
    /// outbox, which schedules retries itself (`Retry-After` included).
    pub(crate) async fn post_score_once(
        &self,
        lineitem_url: &str,
        score: &Score,
    ) -> Result<http::Response<bytes::Bytes>, ServiceError> {
        self.require(scope::SCORE, op::POST_SCORE)?;
        let req =
            ags::build_score_request(lineitem_url, score, self.caller.registration.profile())?;
        self.check_item_url(&req)?;
        self.caller.send_once(req).await
    }

    /// Posts `score` to the launch's own line item; `missing_endpoint` when
    /// the launch's link is not bound to exactly one line item.
    pub async fn grade_launch_line_item(&self, score: &Score) -> Result<(), ServiceError> {
        self.require(scope::SCORE, op::POST_SCORE)?;
        let url = self
            .lineitem
            .as_deref()
            .ok_or(ServiceError::MissingEndpoint {
                what: "the AGS lineitem URL (the link is not bound to one line item)",
            })?;
        self.post_score(url, score).await
    }

    /// The line items whose `resourceId` is `resource_id`, in the
    /// platform's order (filtered here too, for platforms that ignore the
    /// `resource_id` parameter).
    pub async fn find_line_items(&self, resource_id: &str) -> Result<Vec<LineItem>, ServiceError> {
        let items = self
            .list_line_items(&LineItemsQuery::new().resource_id(resource_id))
            .await?;
        Ok(items
            .into_iter()
            .filter(|i| i.resource_id.as_deref() == Some(resource_id))
            .collect())
    }

    /// The line item with `resourceId == resource_id`, created from `spec`
    /// (label, scoreMaximum, tag, dates, ...) when there is none.
    ///
    /// # Guarantee
    ///
    /// * **One process:** calls for the same (lineitems URL, `resource_id`)
    ///   through clients made from the same [`LtiServices`] are serialised
    ///   by an async lock, so they create at most one line item and all
    ///   return the same one.
    /// * **Several processes:** after creating, the call lists again. If
    ///   more than one line item carries `resource_id`, every caller picks
    ///   the **first in the platform's listing order**, and a caller whose
    ///   own creation is not that one deletes it. When the platform lists
    ///   line items in creation order with read-after-write consistency
    ///   (ids ascending, as the platforms we know do), racing processes
    ///   converge on the oldest line item and remove the others.
    /// * Not a transaction: a process that dies between create and re-list
    ///   may leave a duplicate; later calls still return the first one.
    ///
    /// `spec.resource_id`, when set, must equal `resource_id`.
    pub async fn find_or_create_line_item(
        &self,
        resource_id: &str,
        spec: &LineItem,
    ) -> Result<LineItem, ServiceError> {
        self.require_read(op::LIST_LINE_ITEMS)?;
        if resource_id.is_empty() {
            return Err(ServiceError::InvalidArgument {
                what: "resource_id",
                expected: "a non-empty resource id",
                found: "an empty string".to_owned(),
            });
        }
        if let Some(own) = spec.resource_id.as_deref().filter(|r| *r != resource_id) {
            return Err(ServiceError::InvalidArgument {
                what: "line item resourceId",
                expected: "the same resource id as the one searched for",
                found: own.chars().take(64).collect(),
            });
        }
        let container = self.container()?.to_owned();
        let _guard = self.locks.lock((container, resource_id.to_owned())).await;
        if let Some(found) = self.find_line_items(resource_id).await?.into_iter().next() {
            return Ok(found);
        }
        self.require(scope::LINE_ITEM, op::CREATE_LINE_ITEM)?;
        let mut item = spec.clone();
        item.resource_id = Some(resource_id.to_owned());
        let created = self.create_line_item(&item).await?;
        let after = self.find_line_items(resource_id).await?;
        let Some(first) = after.into_iter().next() else {
            return Ok(created);
        };
        if first.id != created.id
            && let Some(own) = created.id.as_deref()
        {
            tracing::info!(
                resource_id,
                kept = first.id.as_deref().map(redact_url).unwrap_or_default(),
                removed = %redact_url(own),
                "another caller created the same line item first; removing ours"
            );
            if let Err(e) = self.delete_line_item(own).await {
                tracing::warn!(resource_id, error = %e, "could not remove a duplicate line item");
            }
        }
        Ok(first)
    }

    /// [`find_or_create_line_item`](Self::find_or_create_line_item), then
    /// posts `score` to it; returns the line item.
    pub async fn find_or_create_line_item_and_score(
        &self,
        resource_id: &str,
        spec: &LineItem,
        score: &Score,
    ) -> Result<LineItem, ServiceError> {
        self.require(scope::SCORE, op::POST_SCORE)?;
        let item = self.find_or_create_line_item(resource_id, spec).await?;
        let url = item
            .id
            .as_deref()
            .ok_or_else(|| ServiceError::InvalidResponse {
                operation: op::LIST_LINE_ITEMS,
                url: self
                    .lineitems
                    .as_deref()
                    .map(redact_url)
                    .unwrap_or_default(),
                expected: "line items with an id",
                found: "a line item without id".to_owned(),
            })?;
        self.post_score(url, score).await?;
        Ok(item)
    }

    fn results_request(
        &self,
        lineitem_url: &str,
        query: &ResultsQuery,
    ) -> Result<http::Request<bytes::Bytes>, ServiceError> {
        self.require(scope::RESULT_READONLY, op::LIST_RESULTS)?;
        let mut query = query.clone();
        query.limit = Some(self.caller.registration.profile().page_size(query.limit));
        let req = ags::build_list_results_request(lineitem_url, &query)?;
        self.check_item_url(&req)?;
        Ok(req)
    }

    /// Every result of the line item at `lineitem_url` matching `query`,
    /// following all pages.
    pub async fn list_results(
        &self,
        lineitem_url: &str,
        query: &ResultsQuery,
    ) -> Result<Vec<AgsResult>, ServiceError> {
        let req = self.results_request(lineitem_url, query)?;
        self.caller
            .walk(op::LIST_RESULTS, req, ags::parse_results_response)
            .collect_items()
            .await
    }

    /// The results one by one, fetching pages lazily.
    pub fn stream_results<'a>(
        &'a self,
        lineitem_url: &str,
        query: &ResultsQuery,
    ) -> impl Stream<Item = Result<AgsResult, ServiceError>> + Send + 'a {
        let walker = self.results_request(lineitem_url, query).map(|req| {
            self.caller
                .walk(op::LIST_RESULTS, req, ags::parse_results_response)
        });
        either_stream(walker.map(|w| w.into_stream()))
    }
}

/// A Names and Role Provisioning Services 2.0 client for one context.
#[derive(Clone)]
pub struct NrpsClient {
    caller: Caller,
    memberships_url: String,
}

impl fmt::Debug for NrpsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NrpsClient")
            .field("registration", &self.caller.key)
            .field("profile", &self.caller.registration.profile())
            .field("memberships_url", &redact_url(&self.memberships_url))
            .finish()
    }
}

impl NrpsClient {
    /// The context memberships URL from the launch.
    pub fn memberships_url(&self) -> &str {
        &self.memberships_url
    }

    fn request(
        &self,
        query: &MembershipsQuery,
    ) -> Result<http::Request<bytes::Bytes>, ServiceError> {
        let mut query = query.clone();
        query.limit = Some(self.caller.registration.profile().page_size(query.limit));
        nrps::build_memberships_request(&self.memberships_url, &query)
    }

    /// The whole roster matching `query`, following every `next` page. The
    /// `limit` defaults per quirk profile (Canvas: 50, capped).
    pub async fn list_members(&self, query: &MembershipsQuery) -> Result<Roster, ServiceError> {
        let req = self.request(query)?;
        self.roster(
            nrps::op::LIST_MEMBERSHIPS,
            req,
            nrps::parse_memberships_response,
        )
        .await
    }

    /// The members matching `query` one by one, fetching pages lazily.
    pub fn stream_members(
        &self,
        query: &MembershipsQuery,
    ) -> impl Stream<Item = Result<Member, ServiceError>> + Send + '_ {
        let walker = self.request(query).map(|req| {
            self.caller.walk(
                nrps::op::LIST_MEMBERSHIPS,
                req,
                nrps::parse_memberships_response,
            )
        });
        either_stream(walker.map(|w| w.into_stream()))
    }

    /// The changes since the snapshot that offered `differences_url` (see
    /// [`Roster::differences_url`]), following every page. Members removed
    /// since then have status `Deleted`.
    pub async fn fetch_differences(&self, differences_url: &str) -> Result<Roster, ServiceError> {
        let req = nrps::build_differences_request(differences_url)?;
        self.caller.check_origin(
            lti_http::origin(&self.memberships_url).as_deref(),
            differences_url,
        )?;
        self.roster(
            nrps::op::MEMBERSHIP_DIFFERENCES,
            req,
            nrps::parse_differences_response,
        )
        .await
    }

    async fn roster(
        &self,
        operation: &'static str,
        req: http::Request<bytes::Bytes>,
        parse: crate::paging::Parse<nrps::MembershipPage>,
    ) -> Result<Roster, ServiceError> {
        let mut walker = self.caller.walk(operation, req, parse);
        let mut roster = Roster::default();
        while let Some(page) = walker.next_page().await {
            let (url, page) = page?;
            roster.pages += 1;
            if let Some(d) = page.differences() {
                roster.differences_url = Some(wire::resolve(&url, d)?);
            }
            if roster.context.is_none() {
                roster.context = page.container.context;
            }
            roster.members.extend(page.container.members);
        }
        Ok(roster)
    }
}

/// A stream from a walker's stream, or a one-item stream of the error that
/// prevented building the first request.
fn either_stream<'a, T: Send + 'a, S>(
    stream: Result<S, ServiceError>,
) -> impl Stream<Item = Result<T, ServiceError>> + Send + 'a
where
    S: Stream<Item = Result<T, ServiceError>> + Send + 'a,
{
    use futures_util::StreamExt;
    match stream {
        Ok(s) => s.left_stream(),
        Err(e) => futures_util::stream::once(async move { Err(e) }).right_stream(),
    }
}
