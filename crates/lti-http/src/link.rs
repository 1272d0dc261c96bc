//! RFC 8288 `Link` header parsing and a pager that follows `rel="next"`.

use std::collections::HashSet;
use std::future::Future;

use bytes::Bytes;
use http::header::LINK;
use http::{HeaderMap, Response};

use crate::error::Error;
use crate::retry::check_status;
use crate::url::{redact_url, resolve};

/// One link of a `Link` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The target as written (may be relative).
    pub target: String,
    /// The relation types, lower-cased (`rel="next last"` gives two).
    pub rels: Vec<String>,
    /// Other parameters (`title`, `type`, ...), names lower-cased.
    pub params: Vec<(String, String)>,
}

/// All links of one or more `Link` header values, in order.
///
/// ```
/// let links = lti_http::Links::parse(
///     r#"<https://lms.test/m?page=2>; rel="next", <https://lms.test/m?page=9>; rel=last,
///        <https://lms.test/m?since=5>; rel="differences""#,
/// );
/// assert_eq!(links.next(), Some("https://lms.test/m?page=2"));
/// assert_eq!(links.last(), Some("https://lms.test/m?page=9"));
/// assert_eq!(links.differences(), Some("https://lms.test/m?since=5"));
/// assert_eq!(links.prev(), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Links {
    links: Vec<Link>,
}

impl Links {
    /// Parses one `Link` header value. Malformed links are skipped; the
    /// well-formed ones around them are kept.
    pub fn parse(value: &str) -> Self {
        let mut links = Self::default();
        links.extend_from(value);
        links
    }

    /// Collects every `Link` header of `headers`.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut links = Self::default();
        for v in headers.get_all(LINK) {
            if let Ok(s) = v.to_str() {
                links.extend_from(s);
            }
        }
        links
    }

    fn extend_from(&mut self, value: &str) {
        let mut p = Parser {
            s: value.as_bytes(),
            i: 0,
        };
        loop {
            p.skip_ws_and(b',');
            if p.at_end() {
                break;
            }
            match p.link() {
                Some(link) => self.links.push(link),
                None => p.skip_to_next_link(),
            }
        }
    }

    /// All parsed links.
    pub fn iter(&self) -> impl Iterator<Item = &Link> {
        self.links.iter()
    }

    /// The target of the first link with relation `rel` (case-insensitive).
    pub fn get(&self, rel: &str) -> Option<&str> {
        let rel = rel.to_ascii_lowercase();
        self.links
            .iter()
            .find(|l| l.rels.contains(&rel))
            .map(|l| l.target.as_str())
    }

    /// `rel="next"`.
    pub fn next(&self) -> Option<&str> {
        self.get("next")
    }

    /// `rel="prev"` (or the older `previous`).
    pub fn prev(&self) -> Option<&str> {
        self.get("prev").or_else(|| self.get("previous"))
    }

    /// `rel="first"`.
    pub fn first(&self) -> Option<&str> {
        self.get("first")
    }

    /// `rel="last"`.
    pub fn last(&self) -> Option<&str> {
        self.get("last")
    }

    /// `rel="differences"` (NRPS membership changes since this page).
    pub fn differences(&self) -> Option<&str> {
        self.get("differences")
    }

    /// Whether no link was parsed.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn skip_ws_and(&mut self, sep: u8) {
        while matches!(self.peek(), Some(c) if c == sep || c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    /// Skips to the comma that ends the current (malformed) link, honouring
    /// quoted strings and `<...>`.
    fn skip_to_next_link(&mut self) {
        let mut in_quote = false;
        let mut in_angle = false;
        while let Some(c) = self.peek() {
            match c {
                b'\\' if in_quote => self.i += 1,
                b'"' if !in_angle => in_quote = !in_quote,
                b'<' if !in_quote => in_angle = true,
                b'>' if !in_quote => in_angle = false,
                b',' if !in_quote && !in_angle => return,
                _ => {}
            }
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c))
        {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn quoted(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(String::from_utf8_lossy(&out).into_owned());
                }
                b'\\' => {
                    self.i += 1;
                    out.push(self.peek()?);
                    self.i += 1;
                }
                c => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn link(&mut self) -> Option<Link> {
        if self.peek() != Some(b'<') {
            return None;
        }
        self.i += 1;
        let start = self.i;
        while self.peek()? != b'>' {
            self.i += 1;
        }
        let target = String::from_utf8_lossy(&self.s[start..self.i])
            .trim()
            .to_owned();
        self.i += 1;
        let mut link = Link {
            target,
            rels: Vec::new(),
            params: Vec::new(),
        };
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some(b',') => break,
                Some(b';') => self.i += 1,
                Some(_) => return None,
            }
            self.skip_ws();
            if matches!(self.peek(), None | Some(b',')) {
                break;
            }
            let name = self.token()?.to_ascii_lowercase();
            self.skip_ws();
            let value = if self.peek() == Some(b'=') {
                self.i += 1;
                self.skip_ws();
                if self.peek() == Some(b'"') {
                    self.quoted()?
                } else {
                    self.token()?
                }
            } else {
                String::new()
            };
            if name == "rel" {
                // RFC 8288: only the first rel parameter counts.
                if link.rels.is_empty() {
                    link.rels = value
                        .split_ascii_whitespace()
                        .map(str::to_ascii_lowercase)
                        .collect();
                }
            } else {
                link.params.push((name, value));
            }
        }
        if link.target.is_empty() {
            return None;
        }
        Some(link)
    }
}

/// One fetched page.
#[derive(Debug)]
pub struct Page {
    /// The absolute URL this page was fetched from.
    pub url: String,
    /// The (2xx) response.
    pub response: Response<Bytes>,
    /// Its `Link` header.
    pub links: Links,
}

/// Follows `rel="next"` links one page at a time, with a page cap and loop
/// detection. The fetch function is passed per call so callers can attach
/// credentials (see `ServiceClient::pages`).
#[derive(Debug)]
pub struct Pager {
    first_url: String,
    next_url: Option<String>,
    fetched: usize,
    max_pages: usize,
    seen: HashSet<String>,
}

impl Pager {
    /// Starts at `first_url`; fetching page `max_pages + 1` is an
    /// [`Error::PageLimit`].
    pub fn new(first_url: impl Into<String>, max_pages: usize) -> Self {
        let first_url = first_url.into();
        Self {
            next_url: Some(first_url.clone()),
            first_url,
            fetched: 0,
            max_pages,
            seen: HashSet::new(),
        }
    }

    /// Fetches the next page with `fetch(url)`; `None` after the last page.
    pub async fn next_page<F, Fut>(&mut self, fetch: F) -> Option<Result<Page, Error>>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<Response<Bytes>, Error>>,
    {
        let url = self.next_url.take()?;
        if self.fetched >= self.max_pages {
            return Some(Err(Error::PageLimit {
                url: redact_url(&self.first_url),
                limit: self.max_pages,
            }));
        }
        if !self.seen.insert(url.clone()) {
            return Some(Err(Error::PagingLoop {
                url: redact_url(&url),
            }));
        }
        self.fetched += 1;
        let response = match fetch(url.clone()).await.and_then(|r| check_status(&url, r)) {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let links = Links::from_headers(response.headers());
        if let Some(next) = links.next() {
            match resolve(&url, next) {
                Ok(abs) => self.next_url = Some(abs),
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(Page {
            url,
            response,
            links,
        }))
    }

    /// Pages fetched so far.
    pub fn pages_fetched(&self) -> usize {
        self.fetched
    }
}

/// Fetches `first_url` and every `next` page after it (at most `max_pages`).
pub async fn collect_pages<F, Fut>(
    first_url: impl Into<String>,
    max_pages: usize,
    mut fetch: F,
) -> Result<Vec<Page>, Error>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<Response<Bytes>, Error>>,
{
    let mut pager = Pager::new(first_url, max_pages);
    let mut pages = Vec::new();
    while let Some(page) = pager.next_page(&mut fetch).await {
        pages.push(page?);
    }
    Ok(pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_and_unquoted_rels_and_several_rels_per_link() {
        let l = Links::parse(
            r#"<https://a.test/1>; rel=first, <https://a.test/2>; rel="next last"; title="Page, two""#,
        );
        assert_eq!(l.first(), Some("https://a.test/1"));
        assert_eq!(l.next(), Some("https://a.test/2"));
        assert_eq!(l.last(), Some("https://a.test/2"));
        let second = l.iter().nth(1).unwrap();
        assert_eq!(
            second.params,
            vec![("title".to_owned(), "Page, two".to_owned())]
        );
    }

    #[test]
    fn rel_matching_is_case_insensitive_and_prev_accepts_previous() {
        let l = Links::parse(r#"<https://a.test/0>; REL="Previous""#);
        assert_eq!(l.prev(), Some("https://a.test/0"));
        assert_eq!(l.get("PREVIOUS"), Some("https://a.test/0"));
    }

    #[test]
    fn commas_inside_targets_and_quotes_do_not_split_links() {
        let l = Links::parse(
            r#"<https://a.test/x?ids=1,2>; rel="next"; title="a,\"b\"", <https://a.test/z>; rel=last"#,
        );
        assert_eq!(l.next(), Some("https://a.test/x?ids=1,2"));
        assert_eq!(l.last(), Some("https://a.test/z"));
        assert_eq!(l.iter().next().unwrap().params[0].1, "a,\"b\"");
    }

    #[test]
    fn malformed_links_are_skipped_and_the_rest_kept() {
        let l = Links::parse(
            r#"garbage; rel=next, <https://a.test/ok>; rel="next", <unterminated; rel=last"#,
        );
        assert_eq!(l.next(), Some("https://a.test/ok"));
        assert_eq!(l.last(), None);
        assert_eq!(l.iter().count(), 1);
        assert!(Links::parse("").is_empty());
        assert!(Links::parse(r#"<>; rel=next"#).is_empty());
    }

    #[test]
    fn only_the_first_rel_parameter_counts() {
        let l = Links::parse(r#"<https://a.test/1>; rel=next; rel=last"#);
        assert_eq!(l.next(), Some("https://a.test/1"));
        assert_eq!(l.last(), None);
    }

    #[test]
    fn several_header_values_are_combined() {
        let mut h = HeaderMap::new();
        h.append(
            LINK,
            http::HeaderValue::from_static("<https://a.test/2>; rel=next"),
        );
        h.append(
            LINK,
            http::HeaderValue::from_static("<https://a.test/d>; rel=differences"),
        );
        let l = Links::from_headers(&h);
        assert_eq!(l.next(), Some("https://a.test/2"));
        assert_eq!(l.differences(), Some("https://a.test/d"));
    }

    fn page(link: Option<&str>) -> Response<Bytes> {
        let mut r = Response::new(Bytes::new());
        if let Some(l) = link {
            r.headers_mut()
                .insert(LINK, http::HeaderValue::from_str(l).unwrap());
        }
        r
    }

    #[test]
    fn the_pager_resolves_relative_links_and_ends_after_the_last_page() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut pager = Pager::new("https://lms.test/api/members?page=1", 5);
            let mut urls = Vec::new();
            while let Some(p) = pager
                .next_page(|url| async move {
                    Ok(match url.as_str() {
                        "https://lms.test/api/members?page=1" => {
                            page(Some("<members?page=2>; rel=next"))
                        }
                        "https://lms.test/api/members?page=2" => {
                            page(Some("</api/members?page=3>; rel=next"))
                        }
                        _ => page(None),
                    })
                })
                .await
            {
                urls.push(p.unwrap().url);
            }
            assert_eq!(
                urls,
                [
                    "https://lms.test/api/members?page=1",
                    "https://lms.test/api/members?page=2",
                    "https://lms.test/api/members?page=3"
                ]
            );
            assert_eq!(pager.pages_fetched(), 3);
            assert!(
                pager
                    .next_page(|_| async { Ok(page(None)) })
                    .await
                    .is_none()
            );
        });
    }
}
