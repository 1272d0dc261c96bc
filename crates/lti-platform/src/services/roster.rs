//! The application's roster, as the NRPS endpoint sees it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;

use lti_message::nrps::{MemberStatus, MembershipContext};
use lti_message::{Role, is_subrole};

use super::{Page, PageRequest};
use crate::error::Result;

/// One member of a context, with the platform's own user id.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct RosterMember {
    /// The platform's user id (the endpoint maps it to the tool's `sub`).
    pub user_id: String,
    /// Context role URIs.
    pub roles: Vec<String>,
    /// Status.
    pub status: MemberStatus,
    /// Full name.
    pub name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Picture URL (sent only to tools whose registration shares pictures).
    pub picture: Option<String>,
    /// SIS id (sent only to tools whose registration shares SIS ids).
    pub lis_person_sourcedid: Option<String>,
    /// Resource links this member can use; `None` means every link of the context.
    pub resource_links: Option<BTreeSet<String>>,
}

impl RosterMember {
    /// An active member with `roles`.
    pub fn new<I, S>(user_id: impl Into<String>, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            user_id: user_id.into(),
            roles: roles.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Sets the names.
    pub fn with_name(mut self, given: impl Into<String>, family: impl Into<String>) -> Self {
        let (given, family) = (given.into(), family.into());
        self.name = Some(format!("{given} {family}"));
        self.given_name = Some(given);
        self.family_name = Some(family);
        self
    }

    /// Sets the email.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the picture URL (shown only to tools whose registration shares pictures).
    pub fn with_picture(mut self, url: impl Into<String>) -> Self {
        self.picture = Some(url.into());
        self
    }

    /// Sets the SIS id (shown only to tools whose registration shares SIS ids).
    pub fn with_sourced_id(mut self, sourced_id: impl Into<String>) -> Self {
        self.lis_person_sourcedid = Some(sourced_id.into());
        self
    }

    /// Restricts the member to these resource links.
    pub fn with_resource_links<I, S>(mut self, links: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.resource_links = Some(links.into_iter().map(Into::into).collect());
        self
    }

    /// Whether the member can use resource link `rlid`.
    pub fn can_access(&self, rlid: &str) -> bool {
        self.resource_links
            .as_ref()
            .is_none_or(|l| l.contains(rlid))
    }
}

/// Whether any of `roles` matches the NRPS `role` filter (a full URI or a short context
/// role name such as `Learner`); sub-roles match their principal role.
pub fn role_matches(roles: &[String], filter: &str) -> bool {
    let want = Role::parse(filter);
    let want_uri = want.to_v2_uri();
    roles.iter().any(|r| {
        let have = Role::parse(r);
        r == filter
            || (want_uri.is_some() && have.to_v2_uri() == want_uri)
            || (want.sub_type().is_none()
                && want.vocabulary().is_some()
                && is_subrole(&have, &want))
    })
}

/// The membership query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberQuery {
    /// `role` filter.
    pub role: Option<String>,
    /// `rlid`: only members who can use this resource link.
    pub rlid: Option<String>,
    /// Only changes after this roster version (the `differences` link).
    pub since: Option<u64>,
}

/// One page of members and the roster version it reflects.
#[derive(Debug, Clone, PartialEq)]
pub struct RosterPage {
    /// The members (deleted ones only appear in `since` queries, with status `Deleted`).
    pub page: Page<RosterMember>,
    /// The roster version; a later query with `since` = this version returns the changes.
    pub version: u64,
}

/// The roster behind the NRPS endpoint.
#[async_trait::async_trait]
pub trait Roster: Send + Sync {
    /// The context, or `None` if it does not exist.
    ///
    /// # Errors
    /// [`crate::PlatformError::Backend`].
    async fn context(&self, context_id: &str) -> Result<Option<MembershipContext>>;

    /// Members of the context passing `query`, in a stable order.
    ///
    /// # Errors
    /// [`crate::PlatformError::Backend`].
    async fn members(
        &self,
        context_id: &str,
        query: &MemberQuery,
        page: PageRequest,
    ) -> Result<RosterPage>;
}

#[derive(Debug, Default, Clone)]
struct Course {
    context: MembershipContext,
    /// user id → (member, version of its last change)
    members: BTreeMap<String, (RosterMember, u64)>,
}

#[derive(Debug, Default)]
struct State {
    courses: BTreeMap<String, Course>,
    version: u64,
}

/// An in-memory [`Roster`] with a change log for `differences` queries.
#[derive(Debug, Default)]
pub struct MemoryRoster {
    state: RwLock<State>,
}

impl MemoryRoster {
    /// An empty roster.
    pub fn new() -> Self {
        Self::default()
    }

    fn write<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        match self.state.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Adds or renames a context.
    pub fn add_context(&self, context: MembershipContext) {
        self.write(|s| {
            let id = context.id.clone();
            s.courses.entry(id).or_default().context = context;
        });
    }

    /// Adds or replaces a member of `context_id` (creating the context if needed).
    pub fn upsert_member(&self, context_id: &str, member: RosterMember) {
        self.write(|s| {
            s.version += 1;
            let v = s.version;
            let course = s
                .courses
                .entry(context_id.to_owned())
                .or_insert_with(|| Course {
                    context: MembershipContext {
                        id: context_id.to_owned(),
                        ..MembershipContext::default()
                    },
                    members: BTreeMap::new(),
                });
            course.members.insert(member.user_id.clone(), (member, v));
        });
    }

    /// Removes a member (kept as `Deleted` for `differences` queries); whether it was
    /// present.
    pub fn remove_member(&self, context_id: &str, user_id: &str) -> bool {
        self.write(|s| {
            s.version += 1;
            let v = s.version;
            let Some(course) = s.courses.get_mut(context_id) else {
                return false;
            };
            match course.members.get_mut(user_id) {
                Some((m, ver)) if m.status != MemberStatus::Deleted => {
                    m.status = MemberStatus::Deleted;
                    *ver = v;
                    true
                }
                _ => false,
            }
        })
    }
}

#[async_trait::async_trait]
impl Roster for MemoryRoster {
    async fn context(&self, context_id: &str) -> Result<Option<MembershipContext>> {
        Ok(match self.state.read() {
            Ok(g) => g.courses.get(context_id).map(|c| c.context.clone()),
            Err(p) => p
                .into_inner()
                .courses
                .get(context_id)
                .map(|c| c.context.clone()),
        })
    }

    async fn members(
        &self,
        context_id: &str,
        query: &MemberQuery,
        page: PageRequest,
    ) -> Result<RosterPage> {
        let read = |s: &State| {
            let members = s
                .courses
                .get(context_id)
                .map(|c| {
                    c.members
                        .values()
                        .filter(|(m, v)| match query.since {
                            Some(since) => *v > since,
                            None => m.status != MemberStatus::Deleted,
                        })
                        .filter(|(m, _)| {
                            query
                                .role
                                .as_deref()
                                .is_none_or(|r| role_matches(&m.roles, r))
                        })
                        .filter(|(m, _)| query.rlid.as_deref().is_none_or(|l| m.can_access(l)))
                        .map(|(m, _)| m.clone())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            RosterPage {
                page: Page::from_all(members, page),
                version: s.version,
            }
        };
        Ok(match self.state.read() {
            Ok(g) => read(&g),
            Err(p) => read(&p.into_inner()),
        })
    }
}
