//! The tool provider's application flow around a launch, framework-free: the
//! pieces `lti serve` and the `lti-axum` / `lti-actix` 1.1 routes call.
//!
//! - **Launch** ([`ProviderFlow::launch`], `POST`): verifies the signed
//!   launch, records it in the data model ([`ProviderModel`]: consumer,
//!   context, resource link, user, visit) under the browser's session, keeps
//!   the verified launch server-side under a fresh visit id, sets the session
//!   cookie and answers `303 See Other` to the visit's resource page, so a
//!   reload never re-posts the launch.
//! - **Session**: one random 256-bit id per browser, in the session cookie
//!   ([`SESSION_COOKIE`], `__Host-`[`SESSION_COOKIE`] when secure: `Secure;
//!   SameSite=None; Partitioned`, else `SameSite=Lax`; always `HttpOnly;
//!   Path=/`). The stores only see its SHA-256, so a copy of the database
//!   opens no session. A launch for another user of the same consumer in the
//!   same browser ends the previous user's visits.
//! - **Resource page** ([`ProviderFlow::visit`], `GET`): a visit id that is
//!   unknown or expired is [`Error::VisitNotFound`] (404); one of another
//!   browser's session [`Error::VisitForeign`] (403); one ended by a later
//!   launch [`Error::VisitEnded`] (403). Otherwise the [`Visit`] with the
//!   display name, resource title, context and the launch. The page is a
//!   `GET` that changes nothing, so the cookie alone may authorise it.
//! - **Cookie check with a new-window fallback**: when the browser refuses
//!   the session cookie inside the LMS frame, the resource page arrives
//!   without it. For a fresh visit the answer is then
//!   [`VisitPage::NewWindow`]: a page with a button whose form
//!   (`target="_blank"`) posts to [`ProviderFlow::continue_in_new_window`],
//!   which spends the visit's one-time hand-over (five minutes, deleted as
//!   soon as a request with the cookie reaches the page) and sets the
//!   session cookie in the new window, where it is first-party. Without a
//!   hand-over left: [`Error::SessionCookieMissing`] (401).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use lti_message::Permissions;
use lti_registry::{
    Clock, ContextRecord, LaunchDataStore, ProviderStore, RegistryError, ResourceRecord,
    SystemClock, UserRecord,
};
use ring::digest::{SHA256, digest};
use ring::rand::SecureRandom as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::consumer::html_escape as escape;
use crate::error::{Error, Result};
use crate::model::{LaunchRecord, ProviderModel};
use crate::oauth::SignedRequest;
use crate::verify::{Launch, LaunchVerifier};

/// The session cookie's name when it is not `Secure` (plain-http development).
pub const SESSION_COOKIE: &str = "lti11_session";
/// The session cookie's name when it is `Secure` (`__Host-` forbids `Domain`
/// and requires `Path=/`).
pub const SECURE_SESSION_COOKIE: &str = "__Host-lti11_session";
/// The default launch path (`POST`).
pub const DEFAULT_LAUNCH_PATH: &str = "/lti11/launch";
/// The default prefix of resource pages: `GET {prefix}/{visit id}`, and
/// `POST {prefix}/{visit id}/new-window` for the new-window fallback.
pub const DEFAULT_VISIT_PATH: &str = "/lti11/visits";
/// The path segment after the visit id of the new-window hand-over.
pub const NEW_WINDOW_SEGMENT: &str = "new-window";
/// How long a visit's resource page answers: 8 hours.
pub const DEFAULT_VISIT_TTL_SECS: i64 = 8 * 3600;
/// How long a visit can be handed over to a new window: 5 minutes.
pub const HANDOFF_TTL_SECS: i64 = 300;

const VISIT_KEY: &str = "lti11-visit:";
const HANDOFF_KEY: &str = "lti11-handoff:";
const VISIT_FORMAT: &str = "lti11/visit/v1";
/// Session and visit ids: 32 random bytes, base64url (43 characters).
const ID_LEN: usize = 43;

/// What the launch route answers: a `303` to the visit's resource page with
/// the session cookie.
#[derive(Debug)]
pub struct LaunchAnswer {
    /// The verified launch.
    pub launch: Launch,
    /// What the launch did to the data model.
    pub record: LaunchRecord,
    /// The new visit's id.
    pub visit_id: String,
    /// The resource page's URL (the `Location`).
    pub location: String,
    /// The `Set-Cookie` value of the session cookie.
    pub set_cookie: String,
}

impl LaunchAnswer {
    /// `303 See Other` to [`LaunchAnswer::location`] with the session cookie
    /// and `Cache-Control: no-store`.
    pub fn response(&self) -> Response<String> {
        redirect(&self.location, &self.set_cookie)
    }
}

/// What the resource page shows.
#[derive(Debug)]
#[non_exhaustive]
pub enum VisitPage {
    /// The visit, for this browser's session.
    Open(Box<Visit>),
    /// The request came without the session cookie while the visit can still
    /// be handed over: the page offering to continue in a new window.
    NewWindow(NewWindowPage),
}

impl VisitPage {
    /// The built-in page: [`Visit::to_html`] or [`NewWindowPage::to_html`],
    /// `200`, `Cache-Control: no-store`.
    pub fn response(&self) -> Response<String> {
        match self {
            VisitPage::Open(visit) => html_response(StatusCode::OK, visit.to_html()),
            VisitPage::NewWindow(page) => html_response(StatusCode::OK, page.to_html()),
        }
    }
}

/// The page offered when the session cookie did not come back in the frame.
#[derive(Debug, Clone)]
pub struct NewWindowPage {
    /// Where the page's form posts (`target="_blank"`).
    pub action: String,
}

impl NewWindowPage {
    /// A page without script: an explanation and one button (`#open-new-window`)
    /// in a form that opens the hand-over in a new window.
    pub fn to_html(&self) -> String {
        page(
            "Continue in a new window",
            &format!(
                "<h1>Continue in a new window</h1>\
                 <p id=\"cookie-check\">Your browser does not let this tool keep its session inside the course page.</p>\
                 <form method=\"post\" action=\"{}\" target=\"_blank\">\
                 <button type=\"submit\" id=\"open-new-window\">Open in a new window</button></form>",
                escape(&self.action)
            ),
        )
    }
}

/// An open visit of this browser's session.
#[derive(Debug)]
pub struct Visit {
    id: String,
    launch: Launch,
    scope: String,
    resource: ResourceRecord,
    context: Option<ContextRecord>,
    user: Option<UserRecord>,
    permissions: Permissions,
}

impl Visit {
    /// The visit id (the last path segment of the resource page).
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The launch that started the visit, as verified then.
    pub fn launch(&self) -> &Launch {
        &self.launch
    }
    /// The provider scope the records are keyed by.
    pub fn scope(&self) -> &str {
        &self.scope
    }
    /// The resource link, as stored now.
    pub fn resource(&self) -> &ResourceRecord {
        &self.resource
    }
    /// The context, when the resource link is bound to one.
    pub fn context(&self) -> Option<&ContextRecord> {
        self.context.as_ref()
    }
    /// The user and account, unless the launch was anonymous.
    pub fn user(&self) -> Option<&UserRecord> {
        self.user.as_ref()
    }
    /// Permission bits from the launch's roles.
    pub fn permissions(&self) -> Permissions {
        self.permissions
    }
    /// The user's full name, else given and family names, else the LTI
    /// `user_id`, else `Anonymous`.
    pub fn display_name(&self) -> String {
        let Some(u) = &self.user else {
            return "Anonymous".to_owned();
        };
        if let Some(full) = &u.name_full {
            return full.clone();
        }
        let parts: Vec<&str> = [u.name_given.as_deref(), u.name_family.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if parts.is_empty() {
            u.user_id.clone()
        } else {
            parts.join(" ")
        }
    }
    /// The resource link's title, else its id.
    pub fn resource_title(&self) -> &str {
        self.resource
            .title
            .as_deref()
            .unwrap_or(&self.resource.resource_link_id)
    }
    /// A minimal resource page: `#display-name`, `#resource-title` and, when
    /// bound to a context, `#context-title`, all escaped.
    pub fn to_html(&self) -> String {
        let mut body = format!(
            "<h1 id=\"resource-title\">{}</h1><p>Signed in as <strong id=\"display-name\">{}</strong></p>",
            escape(self.resource_title()),
            escape(&self.display_name())
        );
        if let Some(c) = &self.context {
            body.push_str(&format!(
                "<p>Course: <span id=\"context-title\">{}</span></p>",
                escape(c.title.as_deref().unwrap_or(&c.context_id))
            ));
        }
        page(self.resource_title(), &body)
    }
}

/// A visit kept server-side (launch-data store) under its id.
#[derive(Serialize, Deserialize)]
struct StoredVisit {
    format: String,
    /// SHA-256 of the session id, base64url.
    session: String,
    scope: String,
    consumer_key: String,
    resource_link_id: String,
    user_id: Option<String>,
    params: Vec<(String, String)>,
    timestamp: u64,
}

#[derive(Serialize, Deserialize)]
struct StoredHandoff {
    session: String,
}

/// The provider application flow over a launch verifier, the provider data
/// model's store and a launch-data store (for visits and hand-overs; shared
/// by every instance serving the tool, like the stores themselves).
pub struct ProviderFlow {
    verifier: LaunchVerifier,
    model: ProviderModel<Arc<dyn ProviderStore>>,
    data: Arc<dyn LaunchDataStore>,
    base_url: String,
    launch_path: String,
    visit_path: String,
    secure: bool,
    visit_ttl: i64,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ProviderFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderFlow")
            .field("base_url", &self.base_url)
            .field("launch_path", &self.launch_path)
            .field("visit_path", &self.visit_path)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl ProviderFlow {
    /// A flow for the tool at `base_url` (scheme, host, optional port and
    /// path prefix; a trailing `/` is dropped) with the default paths, an
    /// 8-hour visit lifetime and the system clock. The session cookie is
    /// `Secure` when `base_url` is `https`.
    pub fn new(
        base_url: impl Into<String>,
        verifier: LaunchVerifier,
        provider: Arc<dyn ProviderStore>,
        launch_data: Arc<dyn LaunchDataStore>,
    ) -> Self {
        let mut base_url = base_url.into();
        while base_url.ends_with('/') {
            base_url.pop();
        }
        let secure = base_url.starts_with("https://");
        ProviderFlow {
            verifier,
            model: ProviderModel::new(provider),
            data: launch_data,
            base_url,
            launch_path: DEFAULT_LAUNCH_PATH.to_owned(),
            visit_path: DEFAULT_VISIT_PATH.to_owned(),
            secure,
            visit_ttl: DEFAULT_VISIT_TTL_SECS,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the data model (its clock, permission policy, per-instance keying).
    #[must_use]
    pub fn with_model(mut self, model: ProviderModel<Arc<dyn ProviderStore>>) -> Self {
        self.model = model;
        self
    }

    /// The launch path (part of every signature's URL).
    #[must_use]
    pub fn launch_path(mut self, path: impl Into<String>) -> Self {
        self.launch_path = path.into();
        self
    }

    /// The resource pages' path prefix.
    #[must_use]
    pub fn visit_path(mut self, path: impl Into<String>) -> Self {
        let mut path = path.into();
        while path.ends_with('/') {
            path.pop();
        }
        self.visit_path = path;
        self
    }

    /// Makes the session cookie `Secure; SameSite=None; Partitioned` (named
    /// `__Host-lti11_session`) even on plain http, which browsers allow on
    /// loopback, a secure context; `false` gives `SameSite=Lax`, which no
    /// browser sends inside a cross-site LMS frame.
    #[must_use]
    pub fn secure_cookie(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// How long a visit's resource page answers.
    #[must_use]
    pub fn visit_ttl_secs(mut self, secs: i64) -> Self {
        self.visit_ttl = secs.max(1);
        self
    }

    /// Uses another clock (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The data model.
    pub fn model(&self) -> &ProviderModel<Arc<dyn ProviderStore>> {
        &self.model
    }

    /// The configured launch path.
    pub fn launch_route(&self) -> &str {
        &self.launch_path
    }

    /// The configured resource pages' path prefix.
    pub fn visit_route(&self) -> &str {
        &self.visit_path
    }

    /// The URL a consumer signs for a launch arriving with `query`.
    pub fn launch_url(&self, query: Option<&str>) -> String {
        let mut url = format!("{}{}", self.base_url, self.launch_path);
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(q);
        }
        url
    }

    /// The session cookie's name.
    pub fn cookie_name(&self) -> &'static str {
        if self.secure {
            SECURE_SESSION_COOKIE
        } else {
            SESSION_COOKIE
        }
    }

    /// The resource page of a visit (absolute URL).
    pub fn visit_url(&self, visit_id: &str) -> String {
        format!("{}{}/{visit_id}", self.base_url, self.visit_path)
    }

    /// The new-window hand-over of a visit (absolute URL).
    pub fn new_window_url(&self, visit_id: &str) -> String {
        format!("{}/{NEW_WINDOW_SEGMENT}", self.visit_url(visit_id))
    }

    /// The launch route's flow: verify, record, keep, `303`. `headers` are
    /// the request's (its session cookie, when present, is kept).
    ///
    /// # Errors
    /// Every refusal of [`LaunchVerifier::verify`] and
    /// [`ProviderModel::record_launch`]; [`Error::Store`].
    pub async fn launch(
        &self,
        request: &SignedRequest<'_>,
        headers: &HeaderMap,
    ) -> Result<LaunchAnswer> {
        let launch = self.verifier.verify(request).await?;
        let session = self
            .session_cookie(headers)
            .map_or_else(random_id, str::to_owned);
        let session_key = session_key(&session);
        let record = self.model.record_launch(&launch, &session_key).await?;
        let visit_id = random_id();
        let now = self.clock.now();
        let stored = StoredVisit {
            format: VISIT_FORMAT.to_owned(),
            session: session_key,
            scope: record.scope.clone(),
            consumer_key: launch.consumer_key().to_owned(),
            resource_link_id: record.resource.resource_link_id.clone(),
            user_id: launch.user_id().map(str::to_owned),
            params: launch
                .pairs()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            timestamp: launch.timestamp(),
        };
        self.save(
            &format!("{VISIT_KEY}{visit_id}"),
            &stored,
            now.saturating_add(self.visit_ttl),
        )
        .await?;
        self.save(
            &format!("{HANDOFF_KEY}{visit_id}"),
            &StoredHandoff {
                session: session.clone(),
            },
            now.saturating_add(HANDOFF_TTL_SECS),
        )
        .await?;
        tracing::info!(
            ended_visits = record.ended_visits,
            "LTI 1.1 launch recorded"
        );
        Ok(LaunchAnswer {
            location: self.visit_url(&visit_id),
            set_cookie: self.set_cookie(&session),
            launch,
            record,
            visit_id,
        })
    }

    /// [`ProviderFlow::launch`] for a `POST` as a web framework hands it
    /// over: the query of the request URI, its headers and body (the
    /// signature covers [`ProviderFlow::launch_url`] with that query, the
    /// `Authorization` header when it carries OAuth parameters, and the form).
    ///
    /// # Errors
    /// As [`ProviderFlow::launch`].
    pub async fn launch_request(
        &self,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<LaunchAnswer> {
        let url = self.launch_url(query);
        let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let request = SignedRequest {
            method: "POST",
            url: &url,
            authorization: text(header::AUTHORIZATION),
            content_type: text(header::CONTENT_TYPE),
            body,
        };
        self.launch(&request, headers).await
    }

    /// The resource page's flow (see the module documentation).
    ///
    /// # Errors
    /// [`Error::VisitNotFound`] (404), [`Error::VisitForeign`] (403),
    /// [`Error::VisitEnded`] (403), [`Error::SessionCookieMissing`] (401),
    /// [`Error::Store`] (503).
    pub async fn visit(&self, visit_id: &str, headers: &HeaderMap) -> Result<VisitPage> {
        if !plausible_id(visit_id) {
            return Err(Error::VisitNotFound);
        }
        let stored: StoredVisit = self
            .load(&format!("{VISIT_KEY}{visit_id}"))
            .await?
            .filter(|v: &StoredVisit| v.format == VISIT_FORMAT)
            .ok_or(Error::VisitNotFound)?;
        let handoff_key = format!("{HANDOFF_KEY}{visit_id}");
        let Some(session) = self.session_cookie(headers) else {
            return match self.load::<StoredHandoff>(&handoff_key).await? {
                Some(_) => Ok(VisitPage::NewWindow(NewWindowPage {
                    action: self.new_window_url(visit_id),
                })),
                None => Err(Error::SessionCookieMissing),
            };
        };
        let key = session_key(session);
        if !bool::from(key.as_bytes().ct_eq(stored.session.as_bytes())) {
            return Err(Error::VisitForeign);
        }
        let store = self.model.store();
        let open = store.open_visits(&key).await.map_err(store_error)?;
        let record = open
            .into_iter()
            .find(|v| {
                v.consumer_key == stored.scope
                    && v.resource_link_id == stored.resource_link_id
                    && v.user_id == stored.user_id
            })
            .ok_or(Error::VisitEnded)?;
        // The cookie works: the hand-over is no longer needed.
        if let Err(e) = self.data.delete_launch(&handoff_key).await {
            tracing::warn!(code = e.code(), "could not delete a visit's hand-over");
        }
        let consumer = match self
            .verifier
            .consumers()
            .get_consumer(&stored.consumer_key)
            .await
        {
            Ok(c) => c,
            Err(RegistryError::NotFound { .. }) => return Err(Error::VisitNotFound),
            Err(e) => return Err(store_error(e)),
        };
        let resource = store
            .get_resource(&stored.scope, &stored.resource_link_id)
            .await
            .map_err(store_error)?
            .ok_or(Error::VisitNotFound)?;
        let context = match &resource.context_id {
            Some(id) => store
                .get_context(&stored.scope, id)
                .await
                .map_err(store_error)?,
            None => None,
        };
        let user = match &stored.user_id {
            Some(id) => store
                .get_user(&stored.scope, id)
                .await
                .map_err(store_error)?,
            None => None,
        };
        let launch = Launch::restore(
            consumer,
            stored.params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            stored.timestamp,
        );
        Ok(VisitPage::Open(Box::new(Visit {
            id: visit_id.to_owned(),
            launch,
            scope: stored.scope,
            resource,
            context,
            user,
            permissions: record.permissions,
        })))
    }

    /// The new-window hand-over (`POST`, from the [`NewWindowPage`]'s form):
    /// spends the visit's one-time hand-over and answers `303` to the resource
    /// page with the session cookie, first-party in the new window.
    ///
    /// # Errors
    /// [`Error::VisitNotFound`] (404) for a malformed id,
    /// [`Error::HandoffUnavailable`] (403) when the hand-over was used, has
    /// expired or never existed; [`Error::Store`].
    pub async fn continue_in_new_window(&self, visit_id: &str) -> Result<Response<String>> {
        if !plausible_id(visit_id) {
            return Err(Error::VisitNotFound);
        }
        let key = format!("{HANDOFF_KEY}{visit_id}");
        let handoff: StoredHandoff = self.load(&key).await?.ok_or(Error::HandoffUnavailable)?;
        // Only the request whose delete removed it may use it.
        if !self.data.delete_launch(&key).await.map_err(store_error)? {
            return Err(Error::HandoffUnavailable);
        }
        Ok(redirect(
            &self.visit_url(visit_id),
            &self.set_cookie(&handoff.session),
        ))
    }

    /// The session id the request's cookie carries, when well-formed.
    fn session_cookie<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        let name = self.cookie_name();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, v)| *n == name && plausible_id(v))
            .map(|(_, v)| v)
    }

    fn set_cookie(&self, session: &str) -> String {
        let attributes = if self.secure {
            "Secure; SameSite=None; Partitioned"
        } else {
            "SameSite=Lax"
        };
        format!(
            "{}={session}; Path=/; HttpOnly; {attributes}",
            self.cookie_name()
        )
    }

    async fn save<T: Serialize>(&self, key: &str, value: &T, expires_at: i64) -> Result<()> {
        let value = serde_json::to_value(value).map_err(|e| Error::Store {
            source: RegistryError::Corrupt {
                backend: "launch data",
                kind: "LTI 1.1 visit",
                reason: e.to_string(),
            },
        })?;
        self.data
            .save_launch(key, value, expires_at)
            .await
            .map_err(store_error)
    }

    async fn load<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>> {
        match self.data.load_launch(key).await {
            Ok(value) => Ok(serde_json::from_value(value).ok()),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }
}

fn store_error(source: RegistryError) -> Error {
    Error::Store { source }
}

/// 32 random bytes, base64url.
fn random_id() -> String {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .unwrap_or_else(|_| panic!("system random number generator unavailable"));
    URL_SAFE_NO_PAD.encode(bytes)
}

fn plausible_id(id: &str) -> bool {
    id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the stores see of a session id: base64url(SHA-256(id)).
fn session_key(session: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, session.as_bytes()).as_ref())
}

fn redirect(location: &str, set_cookie: &str) -> Response<String> {
    let mut response = Response::new(String::new());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(set_cookie) {
        headers.insert(header::SET_COOKIE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `status` with an HTML body and `Cache-Control: no-store`.
pub fn html_response(status: StatusCode, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title></head>\n<body>\n{body}\n</body>\n</html>\n",
        escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_43_base64url_characters_and_sessions_are_hashed() {
        let id = random_id();
        assert!(plausible_id(&id), "{id}");
        assert_ne!(id, random_id());
        assert!(!plausible_id(&id[1..]));
        assert!(!plausible_id(&format!("{}!", &id[1..])));
        let key = session_key(&id);
        assert_ne!(key, id);
        assert_eq!(key, session_key(&id));
    }

    #[test]
    fn the_new_window_page_posts_to_a_new_window_and_escapes_its_action() {
        let html = NewWindowPage {
            action: "https://tool.example/v/\"x\"/new-window".to_owned(),
        }
        .to_html();
        assert!(html.contains("target=\"_blank\""), "{html}");
        assert!(html.contains("id=\"open-new-window\""), "{html}");
        assert!(html.contains("&quot;x&quot;"), "{html}");
        assert!(!html.contains("<script"), "{html}");
    }
}
