//! The application's grade book, as the AGS endpoints see it.

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use lti_message::ags::{LineItem, Score};

use super::{Page, PageRequest};
use crate::error::Result;

/// Who owns a line item: the context it lives in and the tool that may see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemOwner {
    /// The context (course) id.
    pub context_id: String,
    /// The tool's client id.
    pub client_id: String,
}

impl ItemOwner {
    /// An owner.
    pub fn new(context_id: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            context_id: context_id.into(),
            client_id: client_id.into(),
        }
    }
}

/// Filters of the line item container GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineItemFilter {
    /// `resource_link_id`.
    pub resource_link_id: Option<String>,
    /// `resource_id`.
    pub resource_id: Option<String>,
    /// `tag`.
    pub tag: Option<String>,
}

impl LineItemFilter {
    /// Whether `item` passes the filter.
    pub fn matches(&self, item: &LineItem) -> bool {
        fn ok(want: &Option<String>, have: &Option<String>) -> bool {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        }
        ok(&self.resource_link_id, &item.resource_link_id)
            && ok(&self.resource_id, &item.resource_id)
            && ok(&self.tag, &item.tag)
    }
}

/// A stored line item.
#[derive(Debug, Clone, PartialEq)]
pub struct LineItemRecord {
    /// The grade book's id (a URL path segment; the endpoint builds the URL).
    pub id: String,
    /// The owner.
    pub owner: ItemOwner,
    /// The line item (its `id` is not stored; the endpoint fills it in).
    pub line_item: LineItem,
}

/// The latest score of one user on one line item.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRecord {
    /// The user id the tool sent (`userId`, the tool's view of the user).
    pub user_id: String,
    /// The latest accepted score.
    pub score: Score,
}

/// What happened to a posted score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreOutcome {
    /// The score is now the user's result.
    Recorded,
    /// A score with a later timestamp is already on record; nothing changed.
    Stale,
}

/// The grade book behind the AGS endpoints. Every method is scoped to an [`ItemOwner`]:
/// a tool never sees another tool's line items.
#[async_trait::async_trait]
pub trait GradeBook: Send + Sync {
    /// Line items of `owner` passing `filter`, in a stable order.
    ///
    /// # Errors
    /// [`crate::PlatformError::Backend`].
    async fn line_items(
        &self,
        owner: &ItemOwner,
        filter: &LineItemFilter,
        page: PageRequest,
    ) -> Result<Page<LineItemRecord>>;

    /// One line item.
    ///
    /// # Errors
    /// [`crate::PlatformError::Backend`].
    async fn line_item(&self, owner: &ItemOwner, id: &str) -> Result<Option<LineItemRecord>>;

    /// Creates a line item (already validated) and assigns its id.
    ///
    /// # Errors
    /// [`crate::PlatformError::Backend`].
    async fn create_line_item(&self, owner: &ItemOwner, item: LineItem) -> Result<LineItemRecord>;

    /// Replaces a line item; `None` if it does not exist.
    ///
    /// # Errors
    /// [`crate::PlatformError::Backend`].
    async fn update_line_item(
        &self,
        owner: &ItemOwner,
        id: &str,
        item: LineItem,
    ) -> Result<Option<LineItemRecord>>;

    /// Deletes a line item and its results; whether it existed.
    ///
    /// # Errors
    /// [`crate::PlatformError::Backend`].
    async fn delete_line_item(&self, owner: &ItemOwner, id: &str) -> Result<bool>;

    /// Records a (validated) score unless a later one is on record; `None` if the line
    /// item does not exist.
    ///
    /// # Errors
    /// [`crate::PlatformError::Backend`].
    async fn record_score(
        &self,
        owner: &ItemOwner,
        id: &str,
        score: Score,
    ) -> Result<Option<ScoreOutcome>>;

    /// Results of a line item, optionally for one user; `None` if the line item does
    /// not exist.
    ///
    /// # Errors
    /// [`crate::PlatformError::Backend`].
    async fn results(
        &self,
        owner: &ItemOwner,
        id: &str,
        user_id: Option<&str>,
        page: PageRequest,
    ) -> Result<Option<Page<ResultRecord>>>;
}

#[derive(Debug, Clone)]
struct Entry {
    record: LineItemRecord,
    results: BTreeMap<String, Score>,
}

/// An in-memory [`GradeBook`]. Ids are decimal numbers in creation order.
#[derive(Debug, Default)]
pub struct MemoryGradeBook {
    items: RwLock<BTreeMap<u64, Entry>>,
    next_id: AtomicU64,
}

impl MemoryGradeBook {
    /// An empty grade book.
    pub fn new() -> Self {
        Self::default()
    }

    fn read<R>(&self, f: impl FnOnce(&BTreeMap<u64, Entry>) -> R) -> R {
        match self.items.read() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }

    fn write<R>(&self, f: impl FnOnce(&mut BTreeMap<u64, Entry>) -> R) -> R {
        match self.items.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Every line item of a context, whichever tool owns it (for the platform's own
    /// grade book page).
    pub fn line_items_in_context(&self, context_id: &str) -> Vec<LineItemRecord> {
        self.read(|m| {
            m.values()
                .filter(|e| e.record.owner.context_id == context_id)
                .map(|e| e.record.clone())
                .collect()
        })
    }

    /// Every result of line item `id` (for the platform's own grade book page).
    pub fn results_of(&self, id: &str) -> Vec<ResultRecord> {
        let Ok(key) = id.parse::<u64>() else {
            return Vec::new();
        };
        self.read(|m| {
            m.get(&key)
                .map(|e| {
                    e.results
                        .iter()
                        .map(|(u, s)| ResultRecord {
                            user_id: u.clone(),
                            score: s.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    fn key(owner: &ItemOwner, id: &str, m: &BTreeMap<u64, Entry>) -> Option<u64> {
        let key = id.parse::<u64>().ok()?;
        m.get(&key)
            .filter(|e| &e.record.owner == owner)
            .map(|_| key)
    }
}

#[async_trait::async_trait]
impl GradeBook for MemoryGradeBook {
    async fn line_items(
        &self,
        owner: &ItemOwner,
        filter: &LineItemFilter,
        page: PageRequest,
    ) -> Result<Page<LineItemRecord>> {
        Ok(self.read(|m| {
            Page::from_all(
                m.values()
                    .filter(|e| &e.record.owner == owner && filter.matches(&e.record.line_item))
                    .map(|e| e.record.clone()),
                page,
            )
        }))
    }

    async fn line_item(&self, owner: &ItemOwner, id: &str) -> Result<Option<LineItemRecord>> {
        Ok(self.read(|m| {
            Self::key(owner, id, m)
                .and_then(|k| m.get(&k))
                .map(|e| e.record.clone())
        }))
    }

    async fn create_line_item(
        &self,
        owner: &ItemOwner,
        mut item: LineItem,
    ) -> Result<LineItemRecord> {
        item.id = None;
        let key = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let record = LineItemRecord {
            id: key.to_string(),
            owner: owner.clone(),
            line_item: item,
        };
        self.write(|m| {
            m.insert(
                key,
                Entry {
                    record: record.clone(),
                    results: BTreeMap::new(),
                },
            );
        });
        Ok(record)
    }

    async fn update_line_item(
        &self,
        owner: &ItemOwner,
        id: &str,
        mut item: LineItem,
    ) -> Result<Option<LineItemRecord>> {
        item.id = None;
        Ok(self.write(|m| {
            let key = Self::key(owner, id, m)?;
            let entry = m.get_mut(&key)?;
            entry.record.line_item = item;
            Some(entry.record.clone())
        }))
    }

    async fn delete_line_item(&self, owner: &ItemOwner, id: &str) -> Result<bool> {
        Ok(self.write(|m| Self::key(owner, id, m).and_then(|k| m.remove(&k)).is_some()))
    }

    async fn record_score(
        &self,
        owner: &ItemOwner,
        id: &str,
        score: Score,
    ) -> Result<Option<ScoreOutcome>> {
        Ok(self.write(|m| {
            let key = Self::key(owner, id, m)?;
            let entry = m.get_mut(&key)?;
            if let Some(previous) = entry.results.get(&score.user_id)
                && previous.timestamp > score.timestamp
            {
                return Some(ScoreOutcome::Stale);
            }
            entry.results.insert(score.user_id.clone(), score);
            Some(ScoreOutcome::Recorded)
        }))
    }

    async fn results(
        &self,
        owner: &ItemOwner,
        id: &str,
        user_id: Option<&str>,
        page: PageRequest,
    ) -> Result<Option<Page<ResultRecord>>> {
        Ok(self.read(|m| {
            let entry = m.get(&Self::key(owner, id, m)?)?;
            Some(Page::from_all(
                entry
                    .results
                    .iter()
                    .filter(|(u, _)| user_id.is_none_or(|w| w == u.as_str()))
                    .map(|(u, s)| ResultRecord {
                        user_id: u.clone(),
                        score: s.clone(),
                    }),
                page,
            ))
        }))
    }
}
