//! Names and Role Provisioning Services 2.0: the pure request builders and
//! response parsers behind [`NrpsClient`](crate::NrpsClient).

use bytes::Bytes;
use http::{Request, Response};
use lti_http::Links;
use lti_message::nrps::{Member, MembershipContainer, MembershipContext, media_type};

use crate::error::ServiceError;
use crate::wire;

/// Operation names used in errors.
pub mod op {
    /// Reading memberships.
    pub const LIST_MEMBERSHIPS: &str = "list memberships";
    /// Reading membership differences.
    pub const MEMBERSHIP_DIFFERENCES: &str = "membership differences";
}

/// Filters of a membership request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MembershipsQuery {
    /// Only members with this role (full URI or short name such as `Learner`).
    pub role: Option<String>,
    /// Page size hint.
    pub limit: Option<u32>,
    /// Only members with access to this resource link; adds each member's
    /// `message` section.
    pub rlid: Option<String>,
}

impl MembershipsQuery {
    /// No filters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Filters by role.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Sets the page size hint.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Restricts to a resource link (and asks for the `message` section).
    pub fn rlid(mut self, resource_link_id: impl Into<String>) -> Self {
        self.rlid = Some(resource_link_id.into());
        self
    }
}

/// One page of a membership container and its links.
#[derive(Clone, Debug, PartialEq)]
pub struct MembershipPage {
    /// The container (context and this page's members).
    pub container: MembershipContainer,
    /// The page's links (`next`, `differences`, ...).
    pub links: Links,
}

impl MembershipPage {
    /// The `rel="next"` target as sent (possibly relative).
    pub fn next(&self) -> Option<&str> {
        self.links.next()
    }

    /// The `rel="differences"` target as sent (possibly relative).
    pub fn differences(&self) -> Option<&str> {
        self.links.differences()
    }
}

/// A whole roster (all pages of a membership or differences listing).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Roster {
    /// The context, from the first page that named it.
    pub context: Option<MembershipContext>,
    /// Every member, in page order.
    pub members: Vec<Member>,
    /// Absolute URL that later returns only the changes since this
    /// snapshot (the last `rel="differences"` link seen), if offered.
    pub differences_url: Option<String>,
    /// How many pages were read.
    pub pages: usize,
}

/// `GET {context_memberships_url}?role=&limit=&rlid=` accepting the NRPS 2.0
/// membership container. The `limit` is sent as given.
pub fn build_memberships_request(
    memberships_url: &str,
    query: &MembershipsQuery,
) -> Result<Request<Bytes>, ServiceError> {
    wire::check_url("the context memberships URL", memberships_url)?;
    let limit = query.limit.map(|l| l.to_string());
    let pairs: Vec<(&str, &str)> = [
        ("role", query.role.as_deref()),
        ("limit", limit.as_deref()),
        ("rlid", query.rlid.as_deref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    wire::get(
        "the context memberships URL",
        &wire::with_query(memberships_url, &pairs),
        media_type::MEMBERSHIP_CONTAINER,
    )
}

/// `GET {differences_url}` (the URL from a `rel="differences"` link, sent
/// unchanged) accepting the membership container.
pub fn build_differences_request(differences_url: &str) -> Result<Request<Bytes>, ServiceError> {
    wire::get(
        "the differences URL",
        differences_url,
        media_type::MEMBERSHIP_CONTAINER,
    )
}

/// Parses one membership page. Members may omit optional fields and carry
/// unknown ones (kept in `extra`); a missing `status` means `Active`.
pub fn parse_memberships_response(
    url: &str,
    resp: Response<Bytes>,
) -> Result<MembershipPage, ServiceError> {
    parse_page(op::LIST_MEMBERSHIPS, url, resp)
}

/// Parses one page of a differences listing (members may be `Deleted`).
pub fn parse_differences_response(
    url: &str,
    resp: Response<Bytes>,
) -> Result<MembershipPage, ServiceError> {
    parse_page(op::MEMBERSHIP_DIFFERENCES, url, resp)
}

fn parse_page(
    operation: &'static str,
    url: &str,
    resp: Response<Bytes>,
) -> Result<MembershipPage, ServiceError> {
    let (container, links) =
        wire::parse_json(operation, url, "a membership container JSON object", resp)?;
    Ok(MembershipPage { container, links })
}
