//! AGS and NRPS endpoints over small application traits.
//!
//! Routes, relative to [`crate::PlatformConfig::services_base_url`] (`{context}` and
//! `{item}` are percent-encoded path segments):
//!
//! | Method | Path | Scope |
//! |---|---|---|
//! | GET, POST | `/{context}/lineitems` | lineitem (GET also lineitem.readonly) |
//! | GET, PUT, DELETE | `/{context}/lineitems/{item}` | lineitem (GET also lineitem.readonly) |
//! | POST | `/{context}/lineitems/{item}/scores` | score |
//! | GET | `/{context}/lineitems/{item}/results` | result.readonly |
//! | GET | `/{context}/memberships` | contextmembership.readonly |
//!
//! Collections take `limit` and `offset` and answer with `Link: <…>; rel="next"` while
//! more remain.

mod ags;
mod grade_book;
mod nrps;
mod roster;
mod stored_grants;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use bytes::Bytes;
use http::{Request, Response};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

pub use grade_book::{
    GradeBook, ItemOwner, LineItemFilter, LineItemRecord, MemoryGradeBook, ResultRecord,
    ScoreOutcome,
};
pub use roster::{MemberQuery, MemoryRoster, Roster, RosterMember, RosterPage, role_matches};
pub use stored_grants::{GRANT_NAMESPACE, StoredContextGrants};

use crate::error::{PlatformError, Result};
use crate::platform::Platform;
use crate::registry::ToolRegistration;
use crate::token::AccessGrant;
use crate::web;

/// Which contexts' services a tool may use. The platform asks before every AGS and
/// NRPS operation, right after checking the bearer token and its scopes and before
/// looking anything up; a refusal is a 403 [`PlatformError::ContextNotGranted`]
/// whether or not the context exists.
///
/// The platform calls [`ContextAccess::grant`] itself when
/// [`Platform::authorize`](crate::Platform::authorize) issues an id_token whose AGS or
/// NRPS claims point the tool at a context; the application calls it (through
/// [`Platform::grant_context`]) to place a tool in a context without a launch.
///
/// The default is [`MemoryContextGrants`]: only pairs granted that way, held in
/// memory. [`StoredContextGrants`] keeps the same grants in a shared store
/// (PostgreSQL, Redis, SQLite through `lti-store`) for several instances or
/// grants that survive a restart; or implement this trait over your own storage
/// (e.g. the LMS's course/tool placements).
#[async_trait::async_trait]
pub trait ContextAccess: Send + Sync {
    /// Whether tool `client_id` may use the services of context `context_id`.
    ///
    /// # Errors
    /// [`crate::PlatformError::Backend`].
    async fn may_access(&self, client_id: &str, context_id: &str) -> Result<bool>;

    /// Records that tool `client_id` may use the services of context `context_id`.
    /// Called by the platform when a launch hands the tool the context's AGS/NRPS
    /// endpoints; a policy that decides otherwise may ignore it.
    ///
    /// # Errors
    /// [`crate::PlatformError::Backend`]; the launch then fails rather than handing
    /// the tool endpoints it could not use.
    async fn grant(&self, client_id: &str, context_id: &str) -> Result<()>;
}

/// The resource links of contexts, for checking the `resourceLinkId` a tool gives
/// a line item (AGS create and update). A tool may bind a line item only to one
/// of its own resource links in the line item's context: a grade column bound to
/// a link that does not exist (or to another tool's) would never show up where
/// the tool expects it. Canvas refuses such ids as well.
///
/// Install one with [`Platform::with_resource_links`]; without one (the default)
/// `resourceLinkId` is not checked, as the platform then has no record of links.
#[async_trait::async_trait]
pub trait ResourceLinks: Send + Sync {
    /// Whether `resource_link_id` is one of tool `client_id`'s resource links in
    /// context `context_id`; `None` when this source does not know the context
    /// (the id is then not checked).
    ///
    /// # Errors
    /// [`crate::PlatformError::Backend`].
    async fn is_link_of(
        &self,
        client_id: &str,
        context_id: &str,
        resource_link_id: &str,
    ) -> Result<Option<bool>>;
}

/// The default [`ContextAccess`]: a tool may use the services of exactly the contexts
/// it was granted, in memory (one set of context ids per client id; it grows with the
/// number of distinct tool/context pairs and is lost on restart).
#[derive(Debug, Default)]
pub struct MemoryContextGrants {
    granted: Mutex<HashMap<String, HashSet<String>>>,
}

impl MemoryContextGrants {
    /// An empty set of grants: no tool may use any context's services yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<String>>> {
        match self.granted.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Grants tool `client_id` the services of context `context_id`.
    pub fn insert(&self, client_id: &str, context_id: &str) {
        self.lock()
            .entry(client_id.to_owned())
            .or_default()
            .insert(context_id.to_owned());
    }

    /// Withdraws a grant; returns whether it existed. Tokens already issued stop
    /// working for that context at once.
    pub fn remove(&self, client_id: &str, context_id: &str) -> bool {
        let mut granted = self.lock();
        let Some(contexts) = granted.get_mut(client_id) else {
            return false;
        };
        let existed = contexts.remove(context_id);
        if contexts.is_empty() {
            granted.remove(client_id);
        }
        existed
    }

    /// Whether tool `client_id` holds a grant for context `context_id`.
    pub fn contains(&self, client_id: &str, context_id: &str) -> bool {
        self.lock()
            .get(client_id)
            .is_some_and(|contexts| contexts.contains(context_id))
    }
}

#[async_trait::async_trait]
impl ContextAccess for MemoryContextGrants {
    async fn may_access(&self, client_id: &str, context_id: &str) -> Result<bool> {
        Ok(self.contains(client_id, context_id))
    }

    async fn grant(&self, client_id: &str, context_id: &str) -> Result<()> {
        self.insert(client_id, context_id);
        Ok(())
    }
}

/// An insecure [`ContextAccess`]: every registered tool with a valid token may read
/// and write the grade book and roster of every context, including courses it was
/// never placed in. Only for a platform whose every tool is deployed platform-wide
/// and trusted with all courses; install it with
/// [`Platform::insecure_open_context_access`], which logs a warning.
#[derive(Debug, Clone, Copy, Default)]
pub struct InsecureAllowAllContexts;

#[async_trait::async_trait]
impl ContextAccess for InsecureAllowAllContexts {
    async fn may_access(&self, _client_id: &str, _context_id: &str) -> Result<bool> {
        Ok(true)
    }

    async fn grant(&self, _client_id: &str, _context_id: &str) -> Result<()> {
        Ok(())
    }
}

/// A page request: skip `offset` items, return at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Items to skip.
    pub offset: usize,
    /// Largest number of items to return.
    pub limit: usize,
}

/// One page of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Whether items remain after this page.
    pub has_more: bool,
}

impl<T> Page<T> {
    /// Cuts one page out of a complete, ordered list.
    pub fn from_all(all: impl IntoIterator<Item = T>, page: PageRequest) -> Self {
        let mut items: Vec<T> = all
            .into_iter()
            .skip(page.offset)
            .take(page.limit.saturating_add(1))
            .collect();
        let has_more = items.len() > page.limit;
        items.truncate(page.limit);
        Self { items, has_more }
    }
}

/// Characters escaped in a path segment we generate.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub(crate) fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

fn decode_segment(s: &str) -> Result<String> {
    let decoded = percent_decode_str(s)
        .decode_utf8()
        .map_err(|_| PlatformError::NotFound { what: "resource" })?;
    if decoded.is_empty() {
        return Err(PlatformError::NotFound { what: "resource" });
    }
    Ok(decoded.into_owned())
}

/// A parsed service route.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    LineItems { context: String },
    LineItem { context: String, item: String },
    Scores { context: String, item: String },
    Results { context: String, item: String },
    Memberships { context: String },
}

impl Route {
    pub(crate) fn parse(base_path: &str, path: &str) -> Option<Route> {
        let rest = path.strip_prefix(base_path)?.strip_prefix('/')?;
        let segs: Vec<&str> = rest.split('/').collect();
        let seg = |i: usize| -> Option<String> { segs.get(i).and_then(|s| decode_segment(s).ok()) };
        match segs.as_slice() {
            [_, "lineitems"] => Some(Route::LineItems { context: seg(0)? }),
            [_, "lineitems", _] => Some(Route::LineItem {
                context: seg(0)?,
                item: seg(2)?,
            }),
            [_, "lineitems", _, "scores"] => Some(Route::Scores {
                context: seg(0)?,
                item: seg(2)?,
            }),
            [_, "lineitems", _, "results"] => Some(Route::Results {
                context: seg(0)?,
                item: seg(2)?,
            }),
            [_, "memberships"] => Some(Route::Memberships { context: seg(0)? }),
            _ => None,
        }
    }
}

impl Platform {
    /// The line item container URL of `context_id` (the AGS claim's `lineitems`).
    pub fn line_items_url(&self, context_id: &str) -> String {
        format!(
            "{}/{}/lineitems",
            self.config.services_base_url,
            encode_segment(context_id)
        )
    }

    /// The URL of line item `item_id` in `context_id` (the AGS claim's `lineitem`).
    pub fn line_item_url(&self, context_id: &str, item_id: &str) -> String {
        format!(
            "{}/{}",
            self.line_items_url(context_id),
            encode_segment(item_id)
        )
    }

    /// The NRPS membership URL of `context_id`.
    pub fn memberships_url(&self, context_id: &str) -> String {
        format!(
            "{}/{}/memberships",
            self.config.services_base_url,
            encode_segment(context_id)
        )
    }

    /// Serves every AGS and NRPS route (see the module docs). Errors become JSON bodies
    /// `{"error", "error_description"}` with the error's status; a path outside the
    /// routes is a 404.
    pub async fn services_endpoint(&self, req: &Request<Bytes>) -> Response<Bytes> {
        match self.serve(req).await {
            Ok(resp) => resp,
            Err(err) => {
                tracing::debug!(code = err.code(), "service request refused");
                web::service_error(&err)
            }
        }
    }

    async fn serve(&self, req: &Request<Bytes>) -> Result<Response<Bytes>> {
        let route = Route::parse(self.config.services_base_path(), req.uri().path()).ok_or(
            PlatformError::NotFound {
                what: "service route",
            },
        )?;
        match route {
            Route::LineItems { context } => self.line_items_route(req, &context).await,
            Route::LineItem { context, item } => self.line_item_route(req, &context, &item).await,
            Route::Scores { context, item } => self.scores_route(req, &context, &item).await,
            Route::Results { context, item } => self.results_route(req, &context, &item).await,
            Route::Memberships { context } => self.memberships_route(req, &context).await,
        }
    }

    /// Checks the bearer token, that its tool is still registered, and that one of
    /// `scopes` is both granted by the token and still registered for the tool.
    pub(crate) async fn service_grant(
        &self,
        req: &Request<Bytes>,
        context: &str,
        scopes: &[&str],
    ) -> Result<(AccessGrant, ToolRegistration)> {
        let mut grant = self.authorize_bearer(req.headers())?;
        let tool =
            self.tools
                .tool(&grant.client_id)
                .await?
                .ok_or(PlatformError::InvalidAccessToken {
                    reason: "the token's client is no longer registered",
                })?;
        grant.scopes.retain(|s| tool.scopes.contains(s));
        grant.require_any(scopes)?;
        if !self
            .context_access
            .may_access(&tool.client_id, context)
            .await?
        {
            return Err(PlatformError::ContextNotGranted);
        }
        Ok((grant, tool))
    }

    /// Reads `limit` and `offset` from the query.
    pub(crate) fn page_request(&self, params: &web::Params) -> Result<PageRequest> {
        let number = |name: &'static str| -> Result<Option<usize>> {
            match params.get(name) {
                None | Some("") => Ok(None),
                Some(v) => v
                    .parse::<usize>()
                    .map(Some)
                    .map_err(|_| PlatformError::param(name, "a non-negative integer", v)),
            }
        };
        let limit = match number("limit")? {
            Some(0) => return Err(PlatformError::param("limit", "a positive integer", "0")),
            Some(n) => n.min(self.config.max_page_size),
            None => self.config.default_page_size,
        };
        Ok(PageRequest {
            offset: number("offset")?.unwrap_or(0),
            limit,
        })
    }
}

/// `Link` header value for the next page: the request URL with `offset` advanced.
pub(crate) fn next_link(url_base: &str, query: &[(&str, String)], page: PageRequest) -> String {
    let mut params: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| *k != "offset" && *k != "limit")
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    params.push(("limit".to_owned(), page.limit.to_string()));
    params.push((
        "offset".to_owned(),
        page.offset.saturating_add(page.limit).to_string(),
    ));
    format!("<{}>; rel=\"next\"", web::append_query(url_base, &params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_under_the_base_path_only() {
        let r = |p| Route::parse("/lti", p);
        assert_eq!(
            r("/lti/c%201/lineitems"),
            Some(Route::LineItems {
                context: "c 1".into()
            })
        );
        assert_eq!(
            r("/lti/c/lineitems/7"),
            Some(Route::LineItem {
                context: "c".into(),
                item: "7".into()
            })
        );
        assert_eq!(
            r("/lti/c/lineitems/7/scores"),
            Some(Route::Scores {
                context: "c".into(),
                item: "7".into()
            })
        );
        assert_eq!(
            r("/lti/c/lineitems/7/results"),
            Some(Route::Results {
                context: "c".into(),
                item: "7".into()
            })
        );
        assert_eq!(
            r("/lti/c/memberships"),
            Some(Route::Memberships {
                context: "c".into()
            })
        );
        for bad in [
            "/ltix/c/lineitems",
            "/lti/c",
            "/lti//lineitems",
            "/lti/c/lineitems/",
            "/other/c/memberships",
            "/lti/%C3%28/lineitems",
        ] {
            assert_eq!(r(bad), None, "{bad}");
        }
    }

    #[test]
    fn pages_report_whether_more_items_remain() {
        let p = Page::from_all(
            0..5,
            PageRequest {
                offset: 2,
                limit: 2,
            },
        );
        assert_eq!(p.items, [2, 3]);
        assert!(p.has_more);
        let p = Page::from_all(
            0..5,
            PageRequest {
                offset: 4,
                limit: 2,
            },
        );
        assert_eq!(p.items, [4]);
        assert!(!p.has_more);
        let p = Page::from_all(
            0..5,
            PageRequest {
                offset: 9,
                limit: 2,
            },
        );
        assert!(p.items.is_empty() && !p.has_more);
    }

    #[test]
    fn segments_round_trip_through_encoding() {
        for s in ["plain", "a b/c?d#e", "ünï"] {
            assert_eq!(decode_segment(&encode_segment(s)).unwrap(), s);
        }
    }
}
