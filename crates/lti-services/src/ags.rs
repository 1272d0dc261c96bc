//! Assignment and Grade Services 2.0: the pure request builders and response
//! parsers behind [`AgsClient`](crate::AgsClient).
//!
//! Each operation is a `build_*_request` returning an unsigned
//! `http::Request<Bytes>` (the caller adds `Authorization`) and a
//! `parse_*_response` taking the request URL (for error messages) and the
//! `http::Response<Bytes>`. Any HTTP stack can send them.

use bytes::Bytes;
use http::{Method, Request, Response};
use lti_http::Links;
use lti_message::Timestamp;
use lti_message::ags::{AgsResult, LineItem, Score, media_type};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ServiceError;
use crate::profile::QuirkProfile;
use crate::wire;

/// Operation names used in errors.
pub mod op {
    /// Listing line items.
    pub const LIST_LINE_ITEMS: &str = "list line items";
    /// Reading a line item.
    pub const GET_LINE_ITEM: &str = "get line item";
    /// Creating a line item.
    pub const CREATE_LINE_ITEM: &str = "create line item";
    /// Updating a line item.
    pub const UPDATE_LINE_ITEM: &str = "update line item";
    /// Deleting a line item.
    pub const DELETE_LINE_ITEM: &str = "delete line item";
    /// Posting a score.
    pub const POST_SCORE: &str = "post score";
    /// Listing results.
    pub const LIST_RESULTS: &str = "list results";
}

/// Member of a score carrying Canvas' submission extension.
pub const CANVAS_SUBMISSION_EXTENSION: &str = "https://canvas.instructure.com/lti/submission";

/// Prefix of Canvas' vendor extension members.
pub const CANVAS_EXTENSION_PREFIX: &str = "https://canvas.instructure.com/";

/// Filters of a line item listing (`GET {lineitems}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LineItemsQuery {
    /// Only line items bound to this resource link.
    pub resource_link_id: Option<String>,
    /// Only line items with this tool resource id.
    pub resource_id: Option<String>,
    /// Only line items with this tag.
    pub tag: Option<String>,
    /// Page size hint.
    pub limit: Option<u32>,
}

impl LineItemsQuery {
    /// No filters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Filters by `resource_link_id`.
    pub fn resource_link_id(mut self, id: impl Into<String>) -> Self {
        self.resource_link_id = Some(id.into());
        self
    }

    /// Filters by `resource_id`.
    pub fn resource_id(mut self, id: impl Into<String>) -> Self {
        self.resource_id = Some(id.into());
        self
    }

    /// Filters by `tag`.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// Sets the page size hint.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// Filters of a result listing (`GET {lineitem}/results`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResultsQuery {
    /// Only this learner's result.
    pub user_id: Option<String>,
    /// Page size hint.
    pub limit: Option<u32>,
}

impl ResultsQuery {
    /// No filters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Filters by `user_id`.
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Sets the page size hint.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// One page of a paged listing and its `Link` header.
#[derive(Clone, Debug, PartialEq)]
pub struct Paged<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// The page's links (`next`, `prev`, `first`, `last`).
    pub links: Links,
}

impl<T> Paged<T> {
    /// The `rel="next"` target as sent (possibly relative).
    pub fn next(&self) -> Option<&str> {
        self.links.next()
    }
}

/// Canvas' submission extension of a score (sent only under
/// [`QuirkProfile::Canvas`]; stripped for every other profile).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CanvasSubmission {
    /// Whether this score creates a new submission attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_submission: Option<bool>,
    /// Keep the score Canvas already has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_score: Option<bool>,
    /// Keep a grade a teacher entered in Canvas over the tool's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prioritize_non_tool_grade: Option<bool>,
    /// `none`, `basic_lti_launch`, `online_text_entry`, `online_url`, `online_upload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_type: Option<String>,
    /// The submitted text or URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_data: Option<String>,
    /// When the learner submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_at: Option<Timestamp>,
    /// Files to attach (`online_upload`), as Canvas content items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_items: Option<Vec<Value>>,
}

impl CanvasSubmission {
    /// An empty extension.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `submission_type` and `submission_data`.
    pub fn submission(mut self, kind: impl Into<String>, data: impl Into<String>) -> Self {
        self.submission_type = Some(kind.into());
        self.submission_data = Some(data.into());
        self
    }

    /// Sets `new_submission`.
    pub fn new_submission(mut self, new: bool) -> Self {
        self.new_submission = Some(new);
        self
    }

    /// Sets `submitted_at`.
    pub fn submitted_at(mut self, at: Timestamp) -> Self {
        self.submitted_at = Some(at);
        self
    }

    /// Stores the extension in `score` under [`CANVAS_SUBMISSION_EXTENSION`].
    pub fn attach(self, mut score: Score) -> Result<Score, ServiceError> {
        let value = serde_json::to_value(&self).map_err(|e| ServiceError::InvalidArgument {
            what: "canvas submission",
            expected: "a value that serialises to JSON",
            found: e.to_string(),
        })?;
        score
            .extra
            .insert(CANVAS_SUBMISSION_EXTENSION.to_owned(), value);
        Ok(score)
    }
}

/// `{lineitem}/scores`, inserted before any query string
/// (Moodle: `…/lineitem?type_id=1` → `…/lineitem/scores?type_id=1`).
pub fn scores_url(lineitem_url: &str) -> Result<String, ServiceError> {
    wire::check_url("the line item URL", lineitem_url)?;
    Ok(wire::append_path_segment(lineitem_url, "scores"))
}

/// `{lineitem}/results`, inserted before any query string.
pub fn results_url(lineitem_url: &str) -> Result<String, ServiceError> {
    wire::check_url("the line item URL", lineitem_url)?;
    Ok(wire::append_path_segment(lineitem_url, "results"))
}

fn limit_pair(limit: Option<u32>) -> Option<String> {
    limit.map(|l| l.to_string())
}

/// `GET {lineitems}?resource_link_id=&resource_id=&tag=&limit=` accepting a
/// line item container. The `limit` is sent as given.
pub fn build_list_line_items_request(
    lineitems_url: &str,
    query: &LineItemsQuery,
) -> Result<Request<Bytes>, ServiceError> {
    wire::check_url("the line items URL", lineitems_url)?;
    let limit = limit_pair(query.limit);
    let pairs: Vec<(&str, &str)> = [
        ("resource_link_id", query.resource_link_id.as_deref()),
        ("resource_id", query.resource_id.as_deref()),
        ("tag", query.tag.as_deref()),
        ("limit", limit.as_deref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let url = wire::with_query(lineitems_url, &pairs);
    wire::get("the line items URL", &url, media_type::LINE_ITEM_CONTAINER)
}

/// Parses one page of a line item listing (a JSON array) and its links.
pub fn parse_line_items_response(
    url: &str,
    resp: Response<Bytes>,
) -> Result<Paged<LineItem>, ServiceError> {
    let (items, links) =
        wire::parse_json(op::LIST_LINE_ITEMS, url, "a JSON array of line items", resp)?;
    Ok(Paged { items, links })
}

/// `GET {lineitem}` accepting a line item.
pub fn build_get_line_item_request(lineitem_url: &str) -> Result<Request<Bytes>, ServiceError> {
    wire::get("the line item URL", lineitem_url, media_type::LINE_ITEM)
}

/// Parses a line item (the answer to get, create and update).
pub fn parse_line_item_response(
    url: &str,
    resp: Response<Bytes>,
) -> Result<LineItem, ServiceError> {
    parse_line_item(op::GET_LINE_ITEM, url, resp)
}

fn parse_line_item(
    operation: &'static str,
    url: &str,
    resp: Response<Bytes>,
) -> Result<LineItem, ServiceError> {
    let (item, _): (LineItem, _) =
        wire::parse_json(operation, url, "a line item JSON object", resp)?;
    Ok(item)
}

fn validated(item: &LineItem) -> Result<(), ServiceError> {
    item.validate()
        .map_err(|source| ServiceError::InvalidInput {
            what: "line item",
            source,
        })
}

/// `POST {lineitems}` of `item` (validated; any `id` is dropped, the
/// platform assigns it) as a line item.
pub fn build_create_line_item_request(
    lineitems_url: &str,
    item: &LineItem,
) -> Result<Request<Bytes>, ServiceError> {
    validated(item)?;
    let mut item = item.clone();
    item.id = None;
    let body = wire::json_body("line item", &item)?;
    wire::request(
        Method::POST,
        "the line items URL",
        lineitems_url,
        Some(media_type::LINE_ITEM),
        Some((media_type::LINE_ITEM, body)),
    )
}

/// Parses the created line item (201 or 200 with the item and its `id`).
pub fn parse_create_line_item_response(
    url: &str,
    resp: Response<Bytes>,
) -> Result<LineItem, ServiceError> {
    let item = parse_line_item(op::CREATE_LINE_ITEM, url, resp)?;
    if item.id.as_deref().is_none_or(str::is_empty) {
        return Err(ServiceError::InvalidResponse {
            operation: op::CREATE_LINE_ITEM,
            url: lti_http::redact_url(url),
            expected: "the created line item with its id",
            found: "a line item without id".to_owned(),
        });
    }
    Ok(item)
}

/// `PUT {item.id}` of the whole `item` (validated; it must have an `id`).
pub fn build_update_line_item_request(item: &LineItem) -> Result<Request<Bytes>, ServiceError> {
    let Some(url) = item.id.as_deref() else {
        return Err(ServiceError::InvalidArgument {
            what: "line item",
            expected: "a line item with its id (URL) to update",
            found: "no id".to_owned(),
        });
    };
    validated(item)?;
    let body = wire::json_body("line item", item)?;
    wire::request(
        Method::PUT,
        "the line item URL",
        url,
        Some(media_type::LINE_ITEM),
        Some((media_type::LINE_ITEM, body)),
    )
}

/// Parses the updated line item.
pub fn parse_update_line_item_response(
    url: &str,
    resp: Response<Bytes>,
) -> Result<LineItem, ServiceError> {
    parse_line_item(op::UPDATE_LINE_ITEM, url, resp)
}

/// `DELETE {lineitem}`.
pub fn build_delete_line_item_request(lineitem_url: &str) -> Result<Request<Bytes>, ServiceError> {
    wire::request(
        Method::DELETE,
        "the line item URL",
        lineitem_url,
        None,
        None,
    )
}

/// Accepts any 2xx answer to a delete (204 per the spec).
pub fn parse_delete_line_item_response(
    url: &str,
    resp: Response<Bytes>,
) -> Result<(), ServiceError> {
    wire::check_success(op::DELETE_LINE_ITEM, url, resp).map(drop)
}

/// `POST {lineitem}/scores` of `score` as `application/vnd.ims.lis.v1.score+json`.
///
/// The score is validated first. Vendor members in `score.extra` are
/// filtered by `profile`: Canvas' (`https://canvas.instructure.com/…`) are
/// sent only under [`QuirkProfile::Canvas`], and Schoology gets none.
pub fn build_score_request(
    lineitem_url: &str,
    score: &Score,
    profile: QuirkProfile,
) -> Result<Request<Bytes>, ServiceError> {
    score
        .validate()
        .map_err(|source| ServiceError::InvalidInput {
            what: "score",
            source,
        })?;
    let url = scores_url(lineitem_url)?;
    let body = if score.extra.is_empty() {
        wire::json_body("score", score)?
    } else {
        let mut score = score.clone();
        score.extra.retain(|k, _| {
            profile.sends_score_extensions()
                && (profile.sends_canvas_extensions() || !k.starts_with(CANVAS_EXTENSION_PREFIX))
        });
        wire::json_body("score", &score)?
    };
    wire::request(
        Method::POST,
        "the scores URL",
        &url,
        None,
        Some((media_type::SCORE, body)),
    )
}

/// Accepts any 2xx answer to a score (200, 201 and 204 all occur).
pub fn parse_score_response(url: &str, resp: Response<Bytes>) -> Result<(), ServiceError> {
    wire::check_success(op::POST_SCORE, url, resp).map(drop)
}

/// `GET {lineitem}/results?user_id=&limit=` accepting a result container.
pub fn build_list_results_request(
    lineitem_url: &str,
    query: &ResultsQuery,
) -> Result<Request<Bytes>, ServiceError> {
    let url = results_url(lineitem_url)?;
    let limit = limit_pair(query.limit);
    let pairs: Vec<(&str, &str)> = [
        ("user_id", query.user_id.as_deref()),
        ("limit", limit.as_deref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    wire::get(
        "the results URL",
        &wire::with_query(&url, &pairs),
        media_type::RESULT_CONTAINER,
    )
}

/// Parses one page of results (a JSON array) and its links.
pub fn parse_results_response(
    url: &str,
    resp: Response<Bytes>,
) -> Result<Paged<AgsResult>, ServiceError> {
    let (items, links) = wire::parse_json(op::LIST_RESULTS, url, "a JSON array of results", resp)?;
    Ok(Paged { items, links })
}
