//! The dev platform's routes: course pages in axum, LTI endpoints delegated to
//! `lti-platform`'s framework-neutral handlers.

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use lti_message::ags::LineItem;
use lti_message::deep_linking::ContentItem;
use lti_platform::services::ItemOwner;
use lti_platform::{DeepLinkingOptions, LaunchSpec, MAX_BODY_BYTES};
use serde::Deserialize;

use super::{
    COURSE_ID, COURSE_LABEL, COURSE_TITLE, CourseItem, CourseUser, DevPlatform, USER_COOKIE, pages,
};

/// Every route of the dev platform.
pub fn router(dev: DevPlatform) -> Router {
    Router::new()
        .route("/", get(course))
        .route("/healthz", get(healthz))
        .route("/switch", get(switch))
        .route("/launch", get(launch))
        .route("/launch/frame", get(launch_frame))
        .route("/storage-frame", get(storage_frame))
        .route("/auth", get(auth).post(auth))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/token", post(token))
        .route("/deep_link_return", post(deep_link_return))
        .route("/lti/{*rest}", any(services))
        .route("/gradebook", get(grade_book))
        .route("/roster", get(roster))
        .route(
            "/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/register", any(register))
        .route("/admin/tools", get(admin_tools).post(admin_register))
        .fallback(not_found)
        .layer(axum::middleware::map_response(headers))
        .with_state(dev)
}

/// No MIME sniffing, no caching unless a handler says otherwise, and on every
/// HTML page a policy that lets only the dev platform's own inline scripts run
/// (each by its SHA-256, and only those the page carries): a `javascript:` URL or
/// a script element that got into a page some other way does not.
async fn headers(response: Response) -> Response {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let mut response = if is_html {
        with_script_policy(response).await
    } else {
        response
    };
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The text of every inline script the dev platform writes, taken from the
/// builders that write them: the auto-submitting forms of `lti-platform` (OIDC
/// login, authentication response, deep-linking return) and `lti11` (1.1
/// launches), and the Platform Storage handlers for its tool frame. Their texts
/// do not depend on the page (form fields and URLs are in the HTML, the frame id
/// is fixed), so one sample of each is the script itself. Each is kept with its
/// `script-src` source (`'sha256-…'`), computed once.
static OWN_SCRIPTS: LazyLock<Vec<(Vec<u8>, String)>> = LazyLock::new(|| {
    let lti11_page = lti11::LaunchRequest::new("sample")
        .sign(
            "https://tool.example/launch",
            &lti11::Credentials::new("key", "secret"),
            1_700_000_000,
        )
        .map(|signed| signed.to_html(&lti11::FormTarget::SameWindow, None))
        .unwrap_or_default();
    let samples = [
        lti_platform::auto_submit_form("https://tool.example/", &[], "sample"),
        lti11_page,
        lti_platform::platform_storage_script(pages::TOOL_FRAME_ID),
        lti_platform::platform_storage_forwarding_script(pages::TOOL_FRAME_ID),
        pages::REGISTRATION_SCRIPT.to_owned(),
    ];
    samples
        .iter()
        .flat_map(|page| inline_scripts(page.as_bytes()))
        .map(|script| {
            let hash = ring::digest::digest(&ring::digest::SHA256, script);
            let source = format!("'sha256-{}'", STANDARD.encode(hash.as_ref()));
            (script.to_vec(), source)
        })
        .collect()
});

/// The `script-src` sources for `html`: the SHA-256 of each of the platform's own
/// scripts ([`OWN_SCRIPTS`]) that the page carries, `'none'` if it carries none.
/// Any other script element in the page gets no source, so it does not run.
fn script_sources(html: &[u8]) -> String {
    let mut sources: Vec<&str> = Vec::new();
    for script in inline_scripts(html) {
        if let Some((_, source)) = OWN_SCRIPTS.iter().find(|(own, _)| own == script)
            && !sources.contains(&source.as_str())
        {
            sources.push(source);
        }
    }
    if sources.is_empty() {
        "'none'".to_owned()
    } else {
        sources.join(" ")
    }
}

/// `page` with a `Content-Security-Policy` allowing the platform's own inline
/// scripts it carries ([`script_sources`]).
async fn with_script_policy(page: Response) -> Response {
    let (mut parts, body) = page.into_parts();
    // The dev platform's pages are built in memory; reading one back cannot fail.
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "page body unreadable").into_response();
    };
    let policy = format!(
        "script-src {}; object-src 'none'; base-uri 'none'",
        script_sources(&bytes)
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        parts.headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

/// The text of every `<script ...>...</script>` element of `html`.
fn inline_scripts(html: &[u8]) -> impl Iterator<Item = &[u8]> {
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let mut rest = html;
    std::iter::from_fn(move || {
        let open = find(rest, b"<script")?;
        let tag_end = open + rest[open..].iter().position(|&b| b == b'>')? + 1;
        let len = find(&rest[tag_end..], b"</script>")?;
        let script = &rest[tag_end..tag_end + len];
        rest = &rest[tag_end + len..];
        Some(script)
    })
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn from_http(resp: http::Response<Bytes>) -> Response {
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, Body::from(body))
}

async fn to_http(req: Request) -> Result<http::Request<Bytes>, Response> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => Ok(http::Request::from_parts(parts, bytes)),
        Err(_) => Err(html(
            StatusCode::PAYLOAD_TOO_LARGE,
            pages::error(
                None,
                "body_too_large",
                &format!(
                    "request body too large: expected at most {MAX_BODY_BYTES} bytes, found more"
                ),
            ),
        )),
    }
}

/// The signed-in user, from the cookie.
fn current_user<'a>(dev: &'a DevPlatform, headers: &HeaderMap) -> Option<&'a CourseUser> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == USER_COOKIE)
        .and_then(|(_, id)| dev.user(id))
}

/// Signs `user` in. `SameSite=None; Secure` so the cookie also reaches the
/// authorization endpoint when the tool frame redirects to it through its own
/// (cross-site) origin; browsers accept `Secure` on `http://localhost`.
fn sign_in_cookie(user: &CourseUser) -> String {
    format!(
        "{USER_COOKIE}={}; Path=/; HttpOnly; SameSite=None; Secure",
        user.id
    )
}

fn refuse(
    dev: &DevPlatform,
    headers: &HeaderMap,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    html(
        status,
        pages::error(current_user(dev, headers), code, message),
    )
}

async fn course(State(dev): State<DevPlatform>, headers: HeaderMap) -> Response {
    html(
        StatusCode::OK,
        pages::course(&dev, current_user(&dev, &headers)),
    )
}

async fn healthz() -> Response {
    axum::Json(serde_json::json!({"status": "ok", "service": "lti dev platform"})).into_response()
}

async fn jwks(State(dev): State<DevPlatform>) -> Response {
    from_http(dev.inner.platform.jwks_response())
}

#[derive(Deserialize)]
struct SwitchQuery {
    user: String,
}

async fn switch(
    State(dev): State<DevPlatform>,
    headers: HeaderMap,
    Query(q): Query<SwitchQuery>,
) -> Response {
    let Some(user) = dev.user(&q.user) else {
        return unknown_user(&dev, &headers, &q.user);
    };
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, sign_in_cookie(user)),
            (header::LOCATION, "/".to_owned()),
        ],
    )
        .into_response()
}

fn unknown_user(dev: &DevPlatform, headers: &HeaderMap, id: &str) -> Response {
    refuse(
        dev,
        headers,
        StatusCode::NOT_FOUND,
        "unknown_user",
        &format!("unknown user: expected a member of the course, found {id:?}"),
    )
}

/// `link` for a resource link launch, or `tool` (a client id) for deep linking.
#[derive(Deserialize)]
struct LaunchQuery {
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    tool: Option<String>,
    user: String,
    /// Set on the `<iframe>`'s URL: the login initiation then offers the framing
    /// page's Platform Storage (`lti_storage_target`, see `storage`).
    #[serde(default)]
    framed: bool,
    /// Where the launch page keeps Platform Storage.
    #[serde(default)]
    storage: StorageFrame,
}

/// Where a launch page answers Platform Storage messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StorageFrame {
    /// The launch page itself: `lti_storage_target=_parent`.
    #[default]
    Page,
    /// A hidden same-origin frame of the launch page named
    /// `post_message_forwarding`, as Canvas does (`?storage=forwarding`).
    Forwarding,
    /// No Platform Storage offered (`?storage=none`), as an LMS without it:
    /// a framed launch then rests on the tool's cookie alone.
    None,
}

impl StorageFrame {
    /// The `lti_storage_target` naming it, when offered.
    fn target(self) -> Option<&'static str> {
        match self {
            Self::Page => Some("_parent"),
            Self::Forwarding => Some(pages::FORWARDING_FRAME_NAME),
            Self::None => None,
        }
    }
}

impl LaunchQuery {
    /// The login initiation inside the launch page's frame.
    fn frame_src(&self) -> String {
        let storage = match self.storage {
            StorageFrame::Page => "",
            StorageFrame::Forwarding => "&storage=forwarding",
            StorageFrame::None => "&storage=none",
        };
        format!("{}&framed=true{storage}", self.window_src())
    }

    /// The login initiation in a window of its own (no Platform Storage there).
    fn window_src(&self) -> String {
        let mut query = Vec::with_capacity(2);
        if let Some(l) = &self.link {
            query.push(format!("link={}", percent_encode(l)));
        }
        if let Some(t) = &self.tool {
            query.push(format!("tool={}", percent_encode(t)));
        }
        query.push(format!("user={}", percent_encode(&self.user)));
        format!("/launch/frame?{}", query.join("&"))
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The launch a query names: the spec and its title.
/// A launch ready to start: LTI 1.3 (login initiation) or LTI 1.1 (signed form).
enum Resolved {
    V13(Box<LaunchSpec>),
    V11(lti11::SignedLaunch),
}

type Refusal = (StatusCode, &'static str, String);

/// The signed LTI 1.1 launch of link `id` for `user`.
fn lti11_launch(
    dev: &DevPlatform,
    id: &str,
    tool: usize,
    title: &str,
    user: &CourseUser,
) -> Result<lti11::SignedLaunch, Refusal> {
    let tool = dev.lti11_tool(tool).ok_or((
        StatusCode::NOT_FOUND,
        "unknown_tool",
        format!("unknown LTI 1.1 tool: expected one of the platform's, found #{tool}"),
    ))?;
    let role = if user.instructor {
        "Instructor"
    } else {
        "Learner"
    };
    let request = lti11::LaunchRequest::new(id)
        .user(&dev.inner.lti11_users, &user.id, &tool.credentials.key)
        .roles(&[role])
        .context(COURSE_ID, COURSE_TITLE)
        .param("context_label", COURSE_LABEL)
        .param("resource_link_title", title)
        .param("lis_person_name_full", user.full_name())
        .param("lis_person_name_given", user.given_name.clone())
        .param("lis_person_name_family", user.family_name.clone())
        .param(
            "lis_person_contact_email_primary",
            format!("{}@example.edu", user.id),
        )
        .param("launch_presentation_document_target", "iframe")
        .param("tool_consumer_instance_guid", "lti-rs-dev-platform")
        .param("tool_consumer_info_product_family_code", "lti-rs");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    request
        .sign(&tool.launch_url, &tool.credentials, now)
        .map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "lti11_signing",
                e.to_string(),
            )
        })
}

fn launch_spec(
    dev: &DevPlatform,
    q: &LaunchQuery,
    user: &CourseUser,
) -> Result<(Resolved, String), Refusal> {
    let spec = match (&q.link, &q.tool) {
        (Some(link), None) => {
            let items = dev.items();
            if let Some(CourseItem::Lti11Link { id, tool, title }) = items
                .iter()
                .find(|i| matches!(i, CourseItem::Lti11Link { id, .. } if id == link))
            {
                let signed = lti11_launch(dev, id, *tool, title, user)?;
                return Ok((Resolved::V11(signed), title.clone()));
            }
            let Some(CourseItem::ResourceLink {
                id,
                client_id,
                title,
                url,
                custom,
                line_item_id,
            }) = items
                .into_iter()
                .find(|i| matches!(i, CourseItem::ResourceLink { id, .. } if id == link))
            else {
                return Err((
                    StatusCode::NOT_FOUND,
                    "unknown_link",
                    format!(
                        "unknown resource link: expected one of the course's links, found {link:?}"
                    ),
                ));
            };
            let tool = dev.tool(&client_id).ok_or((
                StatusCode::NOT_FOUND,
                "unknown_tool",
                format!("unknown tool: expected a registered client id, found {client_id:?}"),
            ))?;
            let mut spec = LaunchSpec::resource_link(
                client_id.clone(),
                tool.deployment_id.clone(),
                user.id.clone(),
                id,
            )
            .with_resource_link_title(title.clone());
            if let Some(u) = url {
                spec = spec.with_target_link_uri(u);
            }
            for (k, v) in custom {
                spec = spec.with_custom(k, v);
            }
            if let Some(li) = line_item_id {
                spec = spec.with_line_item(li);
            }
            (spec, title)
        }
        (None, Some(client_id)) => {
            if !user.instructor {
                return Err((
                    StatusCode::FORBIDDEN,
                    "instructor_only",
                    format!(
                        "deep linking is for instructors: expected the instructor, found learner {:?}",
                        user.id
                    ),
                ));
            }
            let tool = dev.tool(client_id).ok_or((
                StatusCode::NOT_FOUND,
                "unknown_tool",
                format!("unknown tool: expected a registered client id, found {client_id:?}"),
            ))?;
            let options = DeepLinkingOptions {
                accept_types: vec![
                    "ltiResourceLink".to_owned(),
                    "link".to_owned(),
                    "html".to_owned(),
                ],
                accept_presentation_document_targets: vec![
                    "iframe".to_owned(),
                    "window".to_owned(),
                ],
                accept_multiple: true,
                accept_lineitem: true,
                title: Some("Graded activity".to_owned()),
                ..DeepLinkingOptions::default()
            };
            let spec = LaunchSpec::deep_linking(
                client_id.clone(),
                tool.deployment_id.clone(),
                user.id.clone(),
                options,
            );
            (spec, format!("Add content from {}", tool.registration.name))
        }
        _ => {
            return Err((
                StatusCode::BAD_REQUEST,
                "invalid_launch",
                "invalid launch: expected exactly one of link or tool, found neither or both"
                    .to_owned(),
            ));
        }
    };
    let (spec, title) = spec;
    let spec = spec.with_roles([user.role()]).with_context(
        COURSE_ID,
        Some(COURSE_LABEL),
        Some(COURSE_TITLE),
    );
    Ok((Resolved::V13(Box::new(spec)), title))
}

/// The user and launch a query names, or the refusal page.
fn resolve_launch<'a>(
    dev: &'a DevPlatform,
    headers: &HeaderMap,
    q: &LaunchQuery,
) -> Result<(&'a CourseUser, Resolved, String), Box<Response>> {
    let Some(user) = dev.user(&q.user) else {
        return Err(Box::new(unknown_user(dev, headers, &q.user)));
    };
    match launch_spec(dev, q, user) {
        Ok((spec, title)) => Ok((user, spec, title)),
        Err((status, code, msg)) => Err(Box::new(refuse(dev, headers, status, code, &msg))),
    }
}

/// `GET /launch`: signs the user in and frames the launch.
async fn launch(
    State(dev): State<DevPlatform>,
    headers: HeaderMap,
    Query(q): Query<LaunchQuery>,
) -> Response {
    let (user, _, title) = match resolve_launch(&dev, &headers, &q) {
        Ok(l) => l,
        Err(resp) => return *resp,
    };
    let mut resp = html(
        StatusCode::OK,
        pages::launch_frame(
            &title,
            user,
            &q.frame_src(),
            &q.window_src(),
            q.storage == StorageFrame::Forwarding,
        ),
    );
    if let Ok(v) = HeaderValue::from_str(&sign_in_cookie(user)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /storage-frame`: the hidden Platform Storage frame of a launch page
/// opened with `storage=forwarding`; it answers the page's tool frame.
async fn storage_frame() -> Response {
    html(StatusCode::OK, pages::storage_frame())
}

/// `GET /launch/frame`: the third-party login initiation, as a self-submitting form.
async fn launch_frame(
    State(dev): State<DevPlatform>,
    headers: HeaderMap,
    Query(q): Query<LaunchQuery>,
) -> Response {
    let spec = match resolve_launch(&dev, &headers, &q) {
        Ok((_, Resolved::V13(spec), _)) => spec,
        Ok((_, Resolved::V11(signed), _)) => {
            return html(
                StatusCode::OK,
                signed.to_html(&lti11::FormTarget::SameWindow, None),
            );
        }
        Err(resp) => return *resp,
    };
    match dev.inner.platform.start_launch(&spec).await {
        // Framed by the launch page, which answers Platform Storage messages
        // itself or in its forwarding frame.
        Ok(init) => match q.storage.target().filter(|_| q.framed) {
            Some(target) => from_http(init.with_storage_target(target).form_response()),
            None => from_http(init.form_response()),
        },
        Err(e) => refuse(&dev, &headers, e.http_status(), e.code(), &e.to_string()),
    }
}

/// `GET|POST /auth`: the OIDC authorization endpoint, for the signed-in user.
async fn auth(State(dev): State<DevPlatform>, req: Request) -> Response {
    let user = current_user(&dev, req.headers()).map(CourseUser::platform_user);
    let req = match to_http(req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    from_http(
        dev.inner
            .platform
            .authorization_endpoint(&req, user.as_ref())
            .await,
    )
}

/// `POST /token`: client-credentials grants for the tools' service calls.
async fn token(State(dev): State<DevPlatform>, req: Request) -> Response {
    match to_http(req).await {
        Ok(r) => from_http(dev.inner.platform.token_endpoint(&r).await),
        Err(resp) => resp,
    }
}

/// `/lti/...`: the AGS and NRPS endpoints.
async fn services(State(dev): State<DevPlatform>, req: Request) -> Response {
    match to_http(req).await {
        Ok(r) => from_http(dev.inner.platform.services_endpoint(&r).await),
        Err(resp) => resp,
    }
}

/// `POST /deep_link_return`: verifies the tool's response and adds its items to
/// the course (resource links with a line item get one in the grade book).
async fn deep_link_return(State(dev): State<DevPlatform>, req: Request) -> Response {
    let headers = req.headers().clone();
    let req = match to_http(req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let ret = match dev.inner.platform.deep_link_return(&req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(code = e.code(), "deep-linking response refused");
            return refuse(&dev, &headers, e.http_status(), e.code(), &e.to_string());
        }
    };
    let mut added = Vec::new();
    for item in ret.content_items {
        match item {
            ContentItem::LtiResourceLink(link) => {
                let id = dev.new_link_id();
                let title = link
                    .title
                    .clone()
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| format!("Resource link {id}"));
                let mut line_item_id = None;
                if let Some(li) = &link.line_item {
                    let mut item = LineItem::new(
                        li.label.clone().unwrap_or_else(|| title.clone()),
                        li.score_maximum,
                    );
                    item.resource_link_id = Some(id.clone());
                    item.resource_id = li.resource_id.clone();
                    item.tag = li.tag.clone();
                    let owner = ItemOwner::new(COURSE_ID, ret.client_id.clone());
                    match lti_platform::services::GradeBook::create_line_item(
                        dev.inner.grade_book.as_ref(),
                        &owner,
                        item,
                    )
                    .await
                    {
                        Ok(record) => line_item_id = Some(record.id),
                        Err(e) => {
                            return refuse(
                                &dev,
                                &headers,
                                e.http_status(),
                                e.code(),
                                &e.to_string(),
                            );
                        }
                    }
                }
                added.push(format!(
                    "{title} (LTI resource link{})",
                    if line_item_id.is_some() {
                        ", graded"
                    } else {
                        ""
                    }
                ));
                dev.push_item(CourseItem::ResourceLink {
                    id,
                    client_id: ret.client_id.clone(),
                    title,
                    url: link.url.clone(),
                    custom: link.custom.clone().unwrap_or_default(),
                    line_item_id,
                });
            }
            ContentItem::Link(l) => {
                let title = l.title.clone().unwrap_or_else(|| l.url.clone());
                added.push(format!("{title} (link)"));
                dev.push_item(CourseItem::Link { title, url: l.url });
            }
            ContentItem::File(f) => {
                let title = f.title.clone().unwrap_or_else(|| f.url.clone());
                added.push(format!("{title} (file)"));
                dev.push_item(CourseItem::Link { title, url: f.url });
            }
            ContentItem::Image(i) => {
                let title = i.title.clone().unwrap_or_else(|| i.url.clone());
                added.push(format!("{title} (image)"));
                dev.push_item(CourseItem::Link { title, url: i.url });
            }
            ContentItem::Html(h) => {
                let title = h.title.clone().unwrap_or_else(|| "HTML".to_owned());
                added.push(format!("{title} (HTML)"));
                dev.push_item(CourseItem::Html {
                    title,
                    html: h.html,
                });
            }
            other => {
                added.push(format!("an item of type {} (ignored)", other.type_name()));
            }
        }
    }
    html(
        StatusCode::OK,
        pages::deep_link_result(&added, ret.msg.as_deref(), ret.errormsg.as_deref()),
    )
}

async fn grade_book(State(dev): State<DevPlatform>, headers: HeaderMap) -> Response {
    html(
        StatusCode::OK,
        pages::grade_book(&dev, current_user(&dev, &headers)),
    )
}

async fn roster(State(dev): State<DevPlatform>, headers: HeaderMap) -> Response {
    html(
        StatusCode::OK,
        pages::roster(&dev, current_user(&dev, &headers)),
    )
}

/// `GET /.well-known/openid-configuration`: the platform's configuration for
/// Dynamic Registration (public).
async fn openid_configuration(State(dev): State<DevPlatform>) -> Response {
    from_http(dev.inner.registration.openid_configuration_response())
}

/// `POST /register`: the Dynamic Registration endpoint. A stored registration
/// joins the course at once (a resource link with launch buttons); refusals are
/// JSON (RFC 7591 / RFC 6750) and store nothing.
async fn register(State(dev): State<DevPlatform>, req: Request) -> Response {
    let req = match to_http(req).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    match dev.inner.registration.register(&req).await {
        Ok(registered) => {
            dev.add_registered_tool(&registered);
            from_http(registered.response())
        }
        Err(e) => {
            tracing::info!(code = e.code(), "dynamic registration refused");
            from_http(e.response())
        }
    }
}

/// The cookie that ties the admin page's CSRF token to one browser.
const ADMIN_COOKIE: &str = "lti_dev_platform_admin";

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, v)| *n == name && !v.is_empty())
        .map(|(_, v)| v)
}

/// The CSRF token for the admin cookie value `browser`:
/// `base64url(HMAC-SHA256(platform admin key, browser))`.
fn admin_csrf_token(dev: &DevPlatform, browser: &str) -> String {
    let tag = ring::hmac::sign(&dev.inner.admin_key, browser.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
}

/// Whether `token` is the CSRF token of this browser's admin cookie
/// (constant-time).
fn admin_csrf_ok(dev: &DevPlatform, headers: &HeaderMap, token: &str) -> bool {
    let Some(browser) = cookie(headers, ADMIN_COOKIE) else {
        return false;
    };
    let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim()) else {
        return false;
    };
    ring::hmac::verify(&dev.inner.admin_key, browser.as_bytes(), &tag).is_ok()
}

/// `GET /admin/tools`: the registered tools and the Dynamic Registration form.
/// Gives the browser an admin cookie when it has none (`SameSite=Strict`:
/// never sent with another site's request), and the form the matching CSRF
/// token.
async fn admin_tools(State(dev): State<DevPlatform>, headers: HeaderMap) -> Response {
    let (browser, fresh) = match cookie(&headers, ADMIN_COOKIE) {
        Some(b) => (b.to_owned(), false),
        None => {
            let mut raw = [0u8; 18];
            if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw).is_err() {
                return refuse(
                    &dev,
                    &headers,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "rng_failure",
                    "no random bytes: expected a working random source, found a failure",
                );
            }
            (
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
                true,
            )
        }
    };
    let token = admin_csrf_token(&dev, &browser);
    let mut resp = html(
        StatusCode::OK,
        pages::admin_tools(&dev, current_user(&dev, &headers), &token),
    );
    if fresh
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{ADMIN_COOKIE}={browser}; Path=/admin; HttpOnly; SameSite=Strict"
        ))
    {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize)]
struct RegisterForm {
    #[serde(default)]
    registration_url: String,
    #[serde(default)]
    csrf_token: String,
}

/// `POST /admin/tools` (`registration_url`, `csrf_token`): mints a one-time
/// registration token and frames the tool's registration page with
/// `openid_configuration` and `registration_token` added. The token is bound
/// to the signed-in user (or `admin`).
async fn admin_register(
    State(dev): State<DevPlatform>,
    headers: HeaderMap,
    form: Result<axum::Form<RegisterForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(form)) = form else {
        return refuse(
            &dev,
            &headers,
            StatusCode::BAD_REQUEST,
            "malformed_form",
            "malformed form: expected registration_url and csrf_token, url-encoded",
        );
    };
    if !admin_csrf_ok(&dev, &headers, &form.csrf_token) {
        return refuse(
            &dev,
            &headers,
            StatusCode::FORBIDDEN,
            "csrf_check_failed",
            "CSRF check failed: expected the token of this browser's admin page, found another or none (reload /admin/tools)",
        );
    }
    let registration_url = form.registration_url.trim();
    if registration_url.is_empty() {
        return refuse(
            &dev,
            &headers,
            StatusCode::BAD_REQUEST,
            "missing_parameter",
            "missing parameter `registration_url`",
        );
    }
    let current = current_user(&dev, &headers);
    let admin = current.map_or("admin", |u| u.id.as_str());
    match dev
        .registration_initiation_url(registration_url, admin)
        .await
    {
        Ok(url) => html(
            StatusCode::OK,
            pages::admin_registering(current, registration_url, &url),
        ),
        Err(e) => refuse(&dev, &headers, e.http_status(), e.code(), &e.to_string()),
    }
}

async fn not_found(State(dev): State<DevPlatform>, headers: HeaderMap) -> Response {
    refuse(
        &dev,
        &headers,
        StatusCode::NOT_FOUND,
        "not_found",
        "not found: expected one of the platform's routes, found an unknown path",
    )
}

#[cfg(test)]
mod tests {
    use super::{OWN_SCRIPTS, inline_scripts, script_sources};

    #[test]
    fn only_the_platforms_own_scripts_get_a_source() {
        // One script from each builder: the two auto-submitting forms, the two
        // storage handlers, the admin page's registration listener.
        assert_eq!(OWN_SCRIPTS.len(), 5);
        assert!(OWN_SCRIPTS.iter().all(|(s, _)| !s.is_empty()));
        let login = lti_platform::auto_submit_form(
            "https://tool.example/login",
            &[("iss".to_owned(), "https://platform.example".to_owned())],
            "Launching tool",
        );
        let own = script_sources(login.as_bytes());
        assert!(own.starts_with("'sha256-") && !own.contains(' '), "{own}");
        // A script element that got into the page some other way gets nothing,
        // next to the platform's own one or alone; a repeated own script is listed once.
        let injected = login.replace("</form>", "</form><script>alert(document.cookie)</script>");
        assert_eq!(script_sources(injected.as_bytes()), own);
        assert_eq!(
            script_sources(b"<p>x</p><script>alert(1)</script>"),
            "'none'"
        );
        assert_eq!(script_sources(format!("{login}{login}").as_bytes()), own);
        assert_eq!(script_sources(b"<p>no script</p>"), "'none'");
    }

    #[test]
    fn inline_scripts_are_the_texts_of_every_script_element() {
        let page = b"<p>a</p><script>one();</script><pre>&lt;script&gt;</pre>\
<script nonce=\"n\" type=\"text/javascript\">two(\"</scr\" + \"ipt>\");</script><script></script>";
        let found: Vec<&[u8]> = inline_scripts(page).collect();
        assert_eq!(
            found,
            [&b"one();"[..], &b"two(\"</scr\" + \"ipt>\");"[..], &b""[..]]
        );
        assert_eq!(inline_scripts(b"<p>no script</p>").count(), 0);
        // An unterminated element is not a script.
        assert_eq!(inline_scripts(b"<script>x").count(), 0);
        assert_eq!(inline_scripts(b"<script").count(), 0);
    }
}
