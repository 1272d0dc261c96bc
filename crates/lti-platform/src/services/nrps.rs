//! Names and Role Provisioning Services 2.0 endpoint.

use bytes::Bytes;
use http::header::LINK;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use lti_message::IdTokenClaims;
use lti_message::claims::{ResourceLinkClaim, uri};
use lti_message::nrps::{
    Member, MembershipContainer, SCOPE_CONTEXT_MEMBERSHIP_READONLY, media_type,
};

use super::{MemberQuery, next_link};
use crate::error::{PlatformError, Result};
use crate::platform::Platform;
use crate::web::{self, Params};

impl Platform {
    pub(super) async fn memberships_route(
        &self,
        req: &Request<Bytes>,
        context: &str,
    ) -> Result<Response<Bytes>> {
        if req.method() != Method::GET {
            return Err(PlatformError::MethodNotAllowed {
                expected: "GET",
                found: req.method().to_string(),
            });
        }
        let (_, tool) = self
            .service_grant(req, context, &[SCOPE_CONTEXT_MEMBERSHIP_READONLY])
            .await?;
        web::require_accept(req.headers(), media_type::MEMBERSHIP_CONTAINER)?;
        let params = Params::query(req)?;
        let page = self.page_request(&params)?;
        let since = match params.get("since") {
            None | Some("") => None,
            Some(v) => Some(
                v.parse::<u64>()
                    .map_err(|_| PlatformError::param("since", "a roster version number", v))?,
            ),
        };
        let query = MemberQuery {
            role: params
                .get("role")
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
            rlid: params
                .get("rlid")
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
            since,
        };
        let ctx = self
            .roster
            .context(context)
            .await?
            .ok_or(PlatformError::NotFound { what: "context" })?;
        let found = self.roster.members(context, &query, page).await?;
        let members = found
            .page
            .items
            .into_iter()
            .map(|m| {
                let message = match &query.rlid {
                    Some(rlid) => {
                        let mut claims = IdTokenClaims {
                            message_type: Some(uri::MSG_RESOURCE_LINK.to_owned()),
                            version: Some(uri::LTI_VERSION.to_owned()),
                            resource_link: Some(ResourceLinkClaim {
                                id: Some(rlid.clone()),
                                ..ResourceLinkClaim::default()
                            }),
                            ..IdTokenClaims::default()
                        };
                        if !tool.custom.is_empty() {
                            claims.custom = Some(
                                tool.custom
                                    .iter()
                                    .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                                    .collect(),
                            );
                        }
                        vec![claims]
                    }
                    None => Vec::new(),
                };
                Member {
                    status: m.status,
                    user_id: self.subject_for(&tool, &m.user_id),
                    roles: m.roles,
                    name: m.name.filter(|_| tool.share_name),
                    given_name: m.given_name.filter(|_| tool.share_name),
                    family_name: m.family_name.filter(|_| tool.share_name),
                    email: m.email.filter(|_| tool.share_email),
                    picture: m.picture.filter(|_| tool.share_picture),
                    lis_person_sourcedid: m.lis_person_sourcedid.filter(|_| tool.share_sourcedid),
                    message,
                    ..Member::default()
                }
            })
            .collect();
        let url = self.memberships_url(context);
        let mut echo: Vec<(&str, String)> = Vec::new();
        for key in ["role", "rlid", "since"] {
            if let Some(v) = params.get(key).filter(|v| !v.is_empty()) {
                echo.push((key, v.to_owned()));
            }
        }
        let container = MembershipContainer {
            id: Some(web::append_query(
                &url,
                &echo
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect::<Vec<_>>(),
            )),
            context: Some(ctx),
            members,
            ..MembershipContainer::default()
        };
        let mut resp =
            web::json_response(StatusCode::OK, media_type::MEMBERSHIP_CONTAINER, &container);
        let mut links = Vec::new();
        if found.page.has_more {
            links.push(next_link(&url, &echo, page));
        }
        let differences =
            web::append_query(&url, &[("since".to_owned(), found.version.to_string())]);
        links.push(format!("<{differences}>; rel=\"differences\""));
        if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
            resp.headers_mut().insert(LINK, v);
        }
        Ok(resp)
    }
}
