//! Assignment and Grade Services 2.0 endpoints.

use bytes::Bytes;
use http::header::{LINK, LOCATION};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use lti_message::ags::{AgsResult, LineItem, Score, media_type, scope};
use lti_message::nrps::MemberStatus;

use super::{
    ItemOwner, LineItemFilter, LineItemRecord, MemberQuery, PageRequest, ScoreOutcome, next_link,
};
use crate::error::{PlatformError, Result};
use crate::platform::Platform;
use crate::registry::ToolRegistration;
use crate::token::AccessGrant;
use crate::web::{self, Params};

fn decode_json<T: serde::de::DeserializeOwned>(what: &'static str, body: &Bytes) -> Result<T> {
    web::check_body_size(body)?;
    serde_json::from_slice(body).map_err(|e| PlatformError::MalformedBody {
        what,
        reason: e.to_string(),
    })
}

fn invalid(what: &'static str, e: lti_message::MessageError) -> PlatformError {
    PlatformError::InvalidResource {
        what,
        reason: e.to_string(),
    }
}

fn with_link(mut resp: Response<Bytes>, link: Option<String>) -> Response<Bytes> {
    if let Some(link) = link
        && let Ok(v) = HeaderValue::from_str(&link)
    {
        resp.headers_mut().insert(LINK, v);
    }
    resp
}

impl Platform {
    fn render_line_item(&self, record: &LineItemRecord) -> LineItem {
        let mut item = record.line_item.clone();
        item.id = Some(self.line_item_url(&record.owner.context_id, &record.id));
        item
    }

    async fn grant_for(
        &self,
        req: &Request<Bytes>,
        context: &str,
        scopes: &[&str],
    ) -> Result<AccessGrant> {
        self.service_grant(req, context, scopes)
            .await
            .map(|(grant, _)| grant)
    }

    pub(super) async fn line_items_route(
        &self,
        req: &Request<Bytes>,
        context: &str,
    ) -> Result<Response<Bytes>> {
        match *req.method() {
            Method::GET => {
                let grant = self
                    .grant_for(req, context, &[scope::LINE_ITEM, scope::LINE_ITEM_READONLY])
                    .await?;
                web::require_accept(req.headers(), media_type::LINE_ITEM_CONTAINER)?;
                let params = Params::query(req)?;
                let page = self.page_request(&params)?;
                let filter = LineItemFilter {
                    resource_link_id: params.get("resource_link_id").map(str::to_owned),
                    resource_id: params.get("resource_id").map(str::to_owned),
                    tag: params.get("tag").map(str::to_owned),
                };
                let owner = ItemOwner::new(context, &grant.client_id);
                let found = self.grade_book.line_items(&owner, &filter, page).await?;
                let items: Vec<LineItem> = found
                    .items
                    .iter()
                    .map(|r| self.render_line_item(r))
                    .collect();
                let link = found.has_more.then(|| {
                    let query: Vec<(&str, String)> = [
                        ("resource_link_id", &filter.resource_link_id),
                        ("resource_id", &filter.resource_id),
                        ("tag", &filter.tag),
                    ]
                    .into_iter()
                    .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
                    .collect();
                    next_link(&self.line_items_url(context), &query, page)
                });
                Ok(with_link(
                    web::json_response(StatusCode::OK, media_type::LINE_ITEM_CONTAINER, &items),
                    link,
                ))
            }
            Method::POST => {
                let grant = self.grant_for(req, context, &[scope::LINE_ITEM]).await?;
                web::require_content_type(req.headers(), media_type::LINE_ITEM)?;
                web::require_accept(req.headers(), media_type::LINE_ITEM)?;
                let item: LineItem = decode_json("line item", req.body())?;
                item.validate().map_err(|e| invalid("line item", e))?;
                self.require_resource_link(&grant.client_id, context, &item)
                    .await?;
                let owner = ItemOwner::new(context, &grant.client_id);
                let record = self.grade_book.create_line_item(&owner, item).await?;
                let rendered = self.render_line_item(&record);
                let mut resp =
                    web::json_response(StatusCode::CREATED, media_type::LINE_ITEM, &rendered);
                if let Some(id) = &rendered.id
                    && let Ok(v) = HeaderValue::from_str(id)
                {
                    resp.headers_mut().insert(LOCATION, v);
                }
                Ok(resp)
            }
            _ => Err(PlatformError::MethodNotAllowed {
                expected: "GET or POST",
                found: req.method().to_string(),
            }),
        }
    }

    pub(super) async fn line_item_route(
        &self,
        req: &Request<Bytes>,
        context: &str,
        id: &str,
    ) -> Result<Response<Bytes>> {
        let not_found = PlatformError::NotFound { what: "line item" };
        match *req.method() {
            Method::GET => {
                let grant = self
                    .grant_for(req, context, &[scope::LINE_ITEM, scope::LINE_ITEM_READONLY])
                    .await?;
                web::require_accept(req.headers(), media_type::LINE_ITEM)?;
                let owner = ItemOwner::new(context, &grant.client_id);
                let record = self
                    .grade_book
                    .line_item(&owner, id)
                    .await?
                    .ok_or(not_found)?;
                Ok(web::json_response(
                    StatusCode::OK,
                    media_type::LINE_ITEM,
                    &self.render_line_item(&record),
                ))
            }
            Method::PUT => {
                let grant = self.grant_for(req, context, &[scope::LINE_ITEM]).await?;
                web::require_content_type(req.headers(), media_type::LINE_ITEM)?;
                web::require_accept(req.headers(), media_type::LINE_ITEM)?;
                let item: LineItem = decode_json("line item", req.body())?;
                item.validate().map_err(|e| invalid("line item", e))?;
                self.require_resource_link(&grant.client_id, context, &item)
                    .await?;
                let owner = ItemOwner::new(context, &grant.client_id);
                let record = self
                    .grade_book
                    .update_line_item(&owner, id, item)
                    .await?
                    .ok_or(not_found)?;
                Ok(web::json_response(
                    StatusCode::OK,
                    media_type::LINE_ITEM,
                    &self.render_line_item(&record),
                ))
            }
            Method::DELETE => {
                let grant = self.grant_for(req, context, &[scope::LINE_ITEM]).await?;
                let owner = ItemOwner::new(context, &grant.client_id);
                if self.grade_book.delete_line_item(&owner, id).await? {
                    Ok(web::response(
                        StatusCode::NO_CONTENT,
                        "text/plain; charset=utf-8",
                        Bytes::new(),
                    ))
                } else {
                    Err(not_found)
                }
            }
            _ => Err(PlatformError::MethodNotAllowed {
                expected: "GET or PUT or DELETE",
                found: req.method().to_string(),
            }),
        }
    }

    pub(super) async fn scores_route(
        &self,
        req: &Request<Bytes>,
        context: &str,
        id: &str,
    ) -> Result<Response<Bytes>> {
        if req.method() != Method::POST {
            return Err(PlatformError::MethodNotAllowed {
                expected: "POST",
                found: req.method().to_string(),
            });
        }
        let (grant, tool) = self.service_grant(req, context, &[scope::SCORE]).await?;
        web::require_content_type(req.headers(), media_type::SCORE)?;
        let score: Score = decode_json("score", req.body())?;
        score.validate().map_err(|e| invalid("score", e))?;
        self.require_member(&tool, context, &score.user_id).await?;
        if let (Some(given), Some(max)) = (score.score_given, score.score_maximum)
            && given > max * 1000.0
        {
            return Err(PlatformError::InvalidResource {
                what: "score",
                reason: format!(
                    "expected scoreGiven within a sane range of scoreMaximum {max}, found {given}"
                ),
            });
        }
        let owner = ItemOwner::new(context, &grant.client_id);
        match self.grade_book.record_score(&owner, id, score).await? {
            None => Err(PlatformError::NotFound { what: "line item" }),
            Some(ScoreOutcome::Recorded) => Ok(web::response(
                StatusCode::NO_CONTENT,
                "text/plain; charset=utf-8",
                Bytes::new(),
            )),
            Some(ScoreOutcome::Stale) => Err(PlatformError::StaleScore),
        }
    }

    /// A line item's `resourceLinkId`, when it has one, must be one of the tool's
    /// resource links in `context`, when a [`super::ResourceLinks`] source is
    /// installed and knows the context.
    async fn require_resource_link(
        &self,
        client_id: &str,
        context: &str,
        item: &LineItem,
    ) -> Result<()> {
        let (Some(links), Some(link)) = (&self.resource_links, item.resource_link_id.as_deref())
        else {
            return Ok(());
        };
        match links.is_link_of(client_id, context, link).await? {
            Some(false) => Err(PlatformError::UnknownResourceLink {
                found: crate::error::clip(link),
            }),
            Some(true) | None => Ok(()),
        }
    }

    /// When the roster knows `context`, `user_id` must be the `sub` (as `tool`
    /// sees it) of one of its members who is not deleted: a score for anybody else
    /// would sit in the grade book under nobody's name. Contexts the roster does not
    /// know (a platform that serves AGS without NRPS) are not checked.
    ///
    /// Cost: one roster walk per score, and with pseudonymous subjects one HMAC per
    /// member; a platform with very large rosters would index members by subject.
    async fn require_member(
        &self,
        tool: &ToolRegistration,
        context: &str,
        user_id: &str,
    ) -> Result<()> {
        if self.roster.context(context).await?.is_none() {
            return Ok(());
        }
        const BATCH: usize = 500;
        let query = MemberQuery::default();
        let mut offset = 0;
        loop {
            let found = self
                .roster
                .members(
                    context,
                    &query,
                    PageRequest {
                        offset,
                        limit: BATCH,
                    },
                )
                .await?;
            let members = &found.page.items;
            if members.iter().any(|m| {
                m.status != MemberStatus::Deleted && self.subject_for(tool, &m.user_id) == user_id
            }) {
                return Ok(());
            }
            if !found.page.has_more || members.is_empty() {
                return Err(PlatformError::ScoreUserNotInContext {
                    found: crate::error::clip(user_id),
                });
            }
            offset += members.len();
        }
    }

    pub(super) async fn results_route(
        &self,
        req: &Request<Bytes>,
        context: &str,
        id: &str,
    ) -> Result<Response<Bytes>> {
        if req.method() != Method::GET {
            return Err(PlatformError::MethodNotAllowed {
                expected: "GET",
                found: req.method().to_string(),
            });
        }
        let grant = self
            .grant_for(req, context, &[scope::RESULT_READONLY])
            .await?;
        web::require_accept(req.headers(), media_type::RESULT_CONTAINER)?;
        let params = Params::query(req)?;
        let page = self.page_request(&params)?;
        let user_id = params.get("user_id").filter(|u| !u.is_empty());
        let owner = ItemOwner::new(context, &grant.client_id);
        let found = self
            .grade_book
            .results(&owner, id, user_id, page)
            .await?
            .ok_or(PlatformError::NotFound { what: "line item" })?;
        let item_url = self.line_item_url(context, id);
        let results_url = format!("{item_url}/results");
        let results: Vec<AgsResult> = found
            .items
            .into_iter()
            .map(|r| AgsResult {
                id: Some(web::append_query(
                    &results_url,
                    &[("user_id".to_owned(), r.user_id.clone())],
                )),
                score_of: Some(item_url.clone()),
                result_score: r.score.score_given,
                result_maximum: r.score.score_maximum,
                comment: r.score.comment,
                user_id: r.user_id,
                ..AgsResult::default()
            })
            .collect();
        let link = found.has_more.then(|| {
            let query: Vec<(&str, String)> = user_id
                .map(|u| ("user_id", u.to_owned()))
                .into_iter()
                .collect();
            next_link(&results_url, &query, page)
        });
        Ok(with_link(
            web::json_response(StatusCode::OK, media_type::RESULT_CONTAINER, &results),
            link,
        ))
    }
}
