//! The launch inspector: server-rendered pages (no JavaScript framework) that
//! show a verified launch, the AGS and NRPS panels for instructors, the
//! deep-linking picker, and LTI 1.1 launches. Every value is HTML-escaped.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use lti_axum::{LtiLaunch, RequireInstructor, wants_json};
use lti_message::ags::{LineItem, Score};
use lti_message::deep_linking::{DeepLinkLineItem, HtmlItem, LinkItem, LtiResourceLinkItem};
use lti_message::{ContentItem, LtiMessage, Timestamp};
use lti_registry::{GradePayload, GradeTarget};
use lti_services::{LineItemsQuery, MembershipsQuery, ServiceError, ServiceRegistration};
use lti_tool::html::escape;
use lti_tool::{LAUNCH_ID_PARAM, Launch};
use serde_json::Value;

use crate::server::AppState;

/// Members shown per roster page.
const ROSTER_PAGE_SIZE: usize = 25;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;line-height:1.45}\
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}\
code,pre{background:#f4f4f4}pre{padding:.5rem;overflow:auto}.ok{color:#070}.no{color:#a00}\
section{border-top:1px solid #ddd;margin-top:1rem}form{margin:.5rem 0}label{display:block;margin:.25rem 0}";

/// A complete page.
fn page(title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body>\n</html>\n",
        escape(title)
    );
    let mut resp = Html(html).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

/// An error page (or JSON body when asked) for the application's own refusals,
/// in the same shape as the LTI routes' refusals (`lti_tool::web`).
pub(crate) fn page_error(
    headers: &HeaderMap,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Response {
    let (content_type, body) = if wants_json(headers) {
        ("application/json", lti_tool::web::error_json(code, message))
    } else {
        (
            "text/html; charset=utf-8",
            lti_tool::web::error_page(status, code, message),
        )
    };
    (
        status,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// A link that carries the launch id (escaped for an attribute).
fn with_launch(path: &str, launch: &Launch) -> String {
    format!("{path}?{LAUNCH_ID_PARAM}={}", escape(launch.launch_id()))
}

/// A form action that names the launch and carries its CSRF token (escaped for
/// an attribute): the routes posted to refuse a request that only the launch
/// cookie authorises (`lti_tool::web::authorize`).
fn form_action(state: &AppState, path: &str, launch: &Launch) -> String {
    let query = lti_tool::web::launch_query(&state.inner.tool, launch.launch_id());
    escape(&format!("{path}?{query}"))
}

fn row(out: &mut String, name: &str, value: Option<&str>) {
    row_with_id(out, None, name, value);
}

/// A table row whose value cell carries `id` (for the browser test and scripts).
fn row_with_id(out: &mut String, id: Option<&str>, name: &str, value: Option<&str>) {
    let id = id
        .map(|id| format!(" id=\"{}\"", escape(id)))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<tr><th>{}</th><td{id}>{}</td></tr>",
        escape(name),
        value
            .map(escape)
            .unwrap_or_else(|| "<em>not sent</em>".to_owned())
    );
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "<strong class=\"ok\">yes</strong>"
    } else {
        "<strong class=\"no\">no</strong>"
    }
}

/// The validation steps `lti-tool` ran before the launch could exist.
const STEPS: &[&str] = &[
    "state cookie bound to this browser; state used once",
    "id_token is a compact JWS within the size limit",
    "issuer registered (with the login's client id)",
    "aud contains the client id; azp checked",
    "algorithm on the registration's allow-list; kid known",
    "signature verified with the platform's key",
    "exp, iat (and nbf) within the leeway and maximum age",
    "nonce issued at login and not used before",
    "deployment id accepted by the registration",
    "LTI version 1.3.0, message type and its required claims",
    "target_link_uri equal to the login's",
];

/// `GET /lti/app`: the launch inspector.
pub(crate) async fn inspector(
    State(state): State<AppState>,
    LtiLaunch(launch): LtiLaunch,
) -> Response {
    let claims = launch.claims();
    let roles = launch.roles();
    let instructor = roles.is_instructor_or_higher();
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1>LTI launch inspector</h1><p>Message type: <code id=\"message-type\">{}</code></p>",
        escape(launch.message().message_type())
    );

    b.push_str("<section><h2>Who launched</h2><table>");
    let name = claims.name.clone().or_else(|| {
        match (claims.given_name.as_deref(), claims.family_name.as_deref()) {
            (None, None) => None,
            (g, f) => Some(
                format!("{} {}", g.unwrap_or(""), f.unwrap_or(""))
                    .trim()
                    .to_owned(),
            ),
        }
    });
    row(&mut b, "Name", name.as_deref());
    row(&mut b, "Email", claims.email.as_deref());
    row_with_id(&mut b, Some("user-sub"), "User id (sub)", launch.sub());
    let role_list = if roles.is_empty() {
        "<em>none</em>".to_owned()
    } else {
        let items: String = roles
            .iter()
            .map(|r| format!("<li><code>{}</code></li>", escape(r.as_str())))
            .collect();
        format!("<ul>{items}</ul>")
    };
    let _ = write!(b, "<tr><th>Roles</th><td>{role_list}</td></tr>");
    let _ = write!(
        b,
        "<tr><th>Instructor or higher</th><td id=\"instructor-verdict\">{}</td></tr></table></section>",
        yes_no(instructor)
    );

    b.push_str("<section><h2>Platform and context</h2><table>");
    row(&mut b, "Issuer", Some(launch.issuer()));
    row(&mut b, "Client id", Some(launch.client_id()));
    row(&mut b, "Deployment id", Some(launch.deployment_id()));
    if let Some(p) = &claims.tool_platform {
        row(&mut b, "Platform name", p.name.as_deref());
        row(&mut b, "Product", p.product_family_code.as_deref());
    }
    let ctx = claims.context.as_ref();
    row(&mut b, "Context id", ctx.and_then(|c| c.id.as_deref()));
    row(
        &mut b,
        "Context label",
        ctx.and_then(|c| c.label.as_deref()),
    );
    row(
        &mut b,
        "Context title",
        ctx.and_then(|c| c.title.as_deref()),
    );
    let types = ctx.map(|c| c.types.join(", "));
    row(
        &mut b,
        "Context type",
        types.as_deref().filter(|t| !t.is_empty()),
    );
    b.push_str("</table></section>");

    b.push_str("<section><h2>Resource link</h2><table>");
    let rl = claims.resource_link.as_ref();
    row(&mut b, "Id", rl.and_then(|r| r.id.as_deref()));
    row(&mut b, "Title", rl.and_then(|r| r.title.as_deref()));
    row(
        &mut b,
        "Description",
        rl.and_then(|r| r.description.as_deref()),
    );
    row(&mut b, "Target link URI", Some(launch.target_link_uri()));
    row_with_id(
        &mut b,
        Some("storage-target"),
        "Platform Storage target (login's lti_storage_target)",
        launch.lti_storage_target(),
    );
    row_with_id(
        &mut b,
        Some("state-binding"),
        "Login state bound by",
        launch.state_binding().map(|binding| match binding {
            lti_tool::StateBinding::Cookie => "the state cookie",
            lti_tool::StateBinding::PlatformStorage => "the platform's storage (no cookie)",
            _ => "the application",
        }),
    );
    b.push_str("</table></section>");

    b.push_str("<section><h2>Custom parameters</h2>");
    match &claims.custom {
        Some(custom) if !custom.is_empty() => {
            b.push_str("<table id=\"custom\">");
            for (k, v) in custom {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                row(&mut b, k, Some(&text));
            }
            b.push_str("</table>");
        }
        _ => b.push_str("<p><em>none</em></p>"),
    }
    b.push_str("</section>");

    b.push_str("<section><h2>Validation steps passed</h2><ol id=\"steps\">");
    for step in STEPS {
        let _ = write!(
            b,
            "<li><span class=\"ok\">&#10003;</span> {}</li>",
            escape(step)
        );
    }
    b.push_str("</ol></section>");

    if claims.lti1p1.is_some() {
        b.push_str("<section><h2>LTI 1.1 migration</h2>");
        match state.inner.tool.verify_lti1p1(&launch).await {
            Ok(m) => {
                let _ = write!(
                    b,
                    "<p id=\"lti1p1\" class=\"ok\">The lti1p1 claim verifies with the secret of consumer <code>{}</code>; LTI 1.1 user id <code>{}</code>.</p>",
                    escape(&m.oauth_consumer_key),
                    escape(m.lti11_user_id(&launch).unwrap_or(""))
                );
            }
            Err(e) => {
                let _ = write!(
                    b,
                    "<p id=\"lti1p1\" class=\"no\">The lti1p1 claim was not verified: <code>{}</code> {}</p>",
                    escape(e.code()),
                    escape(&e.to_string())
                );
            }
        }
        b.push_str("</section>");
    }

    if let LtiMessage::DeepLinking(dl) = launch.message() {
        b.push_str(&picker(&state, &launch, dl.settings()));
    }

    b.push_str("<section><h2>Services</h2>");
    if instructor {
        if claims.ags_endpoint.is_some() {
            let _ = write!(
                b,
                "<p><a href=\"{}\">Assignment and Grade Services panel</a></p>",
                with_launch("/lti/app/ags", &launch)
            );
        } else {
            b.push_str("<p>The platform sent no AGS endpoint claim.</p>");
        }
        if claims.nrps.is_some() {
            let _ = write!(
                b,
                "<p><a href=\"{}\">Names and Role Provisioning roster</a></p>",
                with_launch("/lti/app/nrps", &launch)
            );
        } else {
            b.push_str("<p>The platform sent no NRPS claim.</p>");
        }
    } else {
        b.push_str("<p>The grade book and roster panels are for instructors.</p>");
    }
    b.push_str("</section>");

    let all = serde_json::to_string_pretty(&launch.raw_claims()).unwrap_or_default();
    let _ = write!(
        b,
        "<section><h2>All claims</h2><details><summary>Show the {} claims of the id_token</summary><pre id=\"claims\">{}</pre></details></section>",
        launch.raw_claims().len(),
        escape(&all)
    );
    page("LTI launch inspector", &b)
}

/// The deep-linking picker, offering only the types the platform accepts.
fn picker(
    state: &AppState,
    launch: &Launch,
    settings: &lti_message::DeepLinkingSettings,
) -> String {
    let accepts = |t: &str| settings.accept_types.iter().any(|a| a == t);
    let mut options = String::new();
    if accepts("link") {
        options.push_str(
            "<label><input type=\"radio\" name=\"kind\" value=\"link\" checked> A link</label>",
        );
    }
    if accepts("ltiResourceLink") {
        let with_item = if settings.accept_lineitem == Some(true) {
            " with a line item (maximum 100)"
        } else {
            ""
        };
        let _ = write!(
            options,
            "<label><input type=\"radio\" name=\"kind\" value=\"ltiResourceLink\"> An LTI resource link{with_item}</label>"
        );
    }
    if accepts("html") {
        options.push_str(
            "<label><input type=\"radio\" name=\"kind\" value=\"html\"> An HTML fragment</label>",
        );
    }
    if options.is_empty() {
        return format!(
            "<section><h2>Deep linking</h2><p>The platform accepts none of the types this tool offers (it accepts: {}).</p></section>",
            escape(&settings.accept_types.join(", "))
        );
    }
    format!(
        "<section><h2>Deep linking</h2><form id=\"picker\" method=\"post\" action=\"{}\">{options}<label>Title <input name=\"title\" value=\"{}\"></label><button type=\"submit\">Return to the platform</button></form></section>",
        form_action(state, "/lti/app/deep-link", launch),
        escape(settings.title.as_deref().unwrap_or("Launch inspector"))
    )
}

/// `POST /lti/app/deep-link`: builds the chosen item and returns the signed
/// response form.
pub(crate) async fn deep_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    LtiLaunch(launch): LtiLaunch,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return form_error(&headers, &e),
    };
    let title = form
        .get("title")
        .filter(|t| !t.is_empty())
        .cloned()
        .unwrap_or_else(|| "Launch inspector".to_owned());
    let item = match form.get("kind").map(String::as_str) {
        Some("link") => ContentItem::Link(LinkItem {
            url: state.inner.public_url.clone(),
            title: Some(title),
            ..LinkItem::default()
        }),
        Some("ltiResourceLink") => {
            let accepts_line_item = matches!(launch.message(), LtiMessage::DeepLinking(dl) if dl.settings().accept_lineitem == Some(true));
            ContentItem::LtiResourceLink(LtiResourceLinkItem {
                url: Some(format!("{}lti/app", state.inner.public_url)),
                title: Some(title.clone()),
                line_item: accepts_line_item.then(|| DeepLinkLineItem {
                    label: Some(title),
                    score_maximum: 100.0,
                    resource_id: Some("lti-inspector".to_owned()),
                    tag: None,
                    grades_released: None,
                }),
                ..LtiResourceLinkItem::default()
            })
        }
        Some("html") => ContentItem::Html(HtmlItem {
            html: "<p>Inserted by the lti-rs launch inspector.</p>".to_owned(),
            title: Some(title),
            text: None,
        }),
        other => {
            return page_error(
                &headers,
                StatusCode::BAD_REQUEST,
                "invalid_form",
                &format!(
                    "invalid form: expected kind = link, ltiResourceLink or html, found {:?}",
                    other.unwrap_or("nothing")
                ),
            );
        }
    };
    let mut builder = match launch.deep_linking_response() {
        Ok(b) => b,
        Err(e) => return lti_axum::LtiRejection::new(e, &headers).into_response(),
    };
    if let Err(e) = builder.add_item(item) {
        return lti_axum::LtiRejection::new(lti_tool::ToolError::from(e), &headers).into_response();
    }
    builder.msg("Content added by the lti-rs launch inspector.");
    match state.inner.tool.deep_link_response(&launch, &builder).await {
        Ok(resp) => lti_axum::into_response(resp),
        Err(e) => lti_axum::LtiRejection::new(e, &headers).into_response(),
    }
}

fn form_error(headers: &HeaderMap, e: &FormRejection) -> Response {
    page_error(
        headers,
        StatusCode::BAD_REQUEST,
        "invalid_form",
        &format!("invalid form: expected url-encoded form fields, found {e}"),
    )
}

/// The services registration for the launch's platform, signing client
/// assertions with the store's active tool key (the one the JWKS publishes,
/// so a `lti keys rotate` promotion is followed at once).
async fn service_registration(
    state: &AppState,
    launch: &Launch,
) -> Result<ServiceRegistration, Response> {
    match state.inner.tool.active_signing_key().await {
        Ok(key) => Ok(ServiceRegistration::from_platform(
            launch.registration(),
            key,
        )),
        Err(e) => Err(page_error(
            &HeaderMap::new(),
            e.http_status(),
            e.code(),
            &e.to_string(),
        )),
    }
}

fn service_error(what: &str, e: &ServiceError) -> String {
    format!(
        "<p class=\"no\" id=\"service-error\">{} failed: <code>{}</code> {}</p>",
        escape(what),
        escape(e.code()),
        escape(&e.to_string())
    )
}

/// `GET /lti/app/ags`: line items, a create form and a score form.
pub(crate) async fn ags_page(
    State(state): State<AppState>,
    RequireInstructor(launch): RequireInstructor,
) -> Response {
    ags_panel(&state, &launch, None).await
}

async fn ags_panel(state: &AppState, launch: &Launch, notice: Option<String>) -> Response {
    let mut b = format!(
        "<h1>Assignment and Grade Services</h1><p><a href=\"{}\">Back to the launch</a></p>",
        with_launch("/lti/app", launch)
    );
    if let Some(n) = notice {
        b.push_str(&n);
    }
    let reg = match service_registration(state, launch).await {
        Ok(reg) => reg,
        Err(refused) => return refused,
    };
    let ags = match state.inner.services.ags_from_launch(&reg, launch.claims()) {
        Ok(a) => a,
        Err(e) => {
            b.push_str(&service_error("Reading the AGS claim", &e));
            return page("AGS", &b);
        }
    };
    let items = match ags.list_line_items(&LineItemsQuery::new()).await {
        Ok(items) => items,
        Err(e) => {
            b.push_str(&service_error("Listing line items", &e));
            Vec::new()
        }
    };
    b.push_str("<section><h2>Line items</h2><table id=\"lineitems\"><tr><th>Label</th><th>Maximum</th><th>Resource id</th><th>Tag</th><th>URL</th></tr>");
    for item in &items {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&item.label),
            item.score_maximum,
            escape(item.resource_id.as_deref().unwrap_or("")),
            escape(item.tag.as_deref().unwrap_or("")),
            escape(item.id.as_deref().unwrap_or(""))
        );
    }
    b.push_str("</table></section>");
    let _ = write!(
        b,
        "<section><h2>Create a line item</h2><form method=\"post\" action=\"{}\"><label>Label <input name=\"label\" required></label><label>Maximum score <input name=\"score_maximum\" value=\"100\"></label><label>Resource id <input name=\"resource_id\"></label><button type=\"submit\">Create</button></form></section>",
        form_action(state, "/lti/app/ags/lineitems", launch)
    );
    let mut options = String::new();
    if let Some(url) = ags.lineitem_url() {
        let _ = write!(
            options,
            "<option value=\"{0}\">this launch's line item ({0})</option>",
            escape(url)
        );
    }
    for item in &items {
        if let Some(id) = &item.id {
            let _ = write!(
                options,
                "<option value=\"{}\">{}</option>",
                escape(id),
                escape(&item.label)
            );
        }
    }
    let _ = write!(
        b,
        "<section><h2>Post a score</h2><form id=\"score-form\" method=\"post\" action=\"{}\"><label>Line item <select id=\"score-lineitem\" name=\"lineitem\">{options}</select></label><label>Learner user id <input id=\"score-user-id\" name=\"user_id\" value=\"{}\" required></label><label>Score <input id=\"score-given\" name=\"score_given\" value=\"1\"></label><label>Out of <input id=\"score-maximum\" name=\"score_maximum\" value=\"1\"></label><label>Comment <input id=\"score-comment\" name=\"comment\"></label><button id=\"score-submit\" type=\"submit\">Post score</button></form></section>",
        form_action(state, "/lti/app/ags/scores", launch),
        escape(launch.sub().unwrap_or(""))
    );
    b.push_str(
        &crate::grades::status_table(&state.inner.store, |t| {
            matches!(t, GradeTarget::Ags { issuer, client_id, .. }
                if *issuer == reg.issuer() && *client_id == reg.client_id())
        })
        .await,
    );
    page("AGS", &b)
}

/// A non-negative number from a form field, or the `invalid_form` message.
fn number(form: &HashMap<String, String>, name: &str) -> Result<f64, String> {
    let raw = form.get(name).map(String::as_str).unwrap_or("");
    match raw.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "invalid form: expected `{name}` to be a non-negative number, found {:?}",
            raw.chars().take(40).collect::<String>()
        )),
    }
}

fn invalid_form(headers: &HeaderMap, message: &str) -> Response {
    page_error(headers, StatusCode::BAD_REQUEST, "invalid_form", message)
}

/// `POST /lti/app/ags/lineitems`: creates a line item.
pub(crate) async fn create_line_item(
    State(state): State<AppState>,
    headers: HeaderMap,
    RequireInstructor(launch): RequireInstructor,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return form_error(&headers, &e),
    };
    let maximum = match number(&form, "score_maximum") {
        Ok(v) => v,
        Err(m) => return invalid_form(&headers, &m),
    };
    let label = form.get("label").cloned().unwrap_or_default();
    let mut item = LineItem::new(label, maximum);
    item.resource_id = form.get("resource_id").filter(|r| !r.is_empty()).cloned();
    if let Some(id) = launch
        .claims()
        .resource_link
        .as_ref()
        .and_then(|r| r.id.clone())
    {
        item.resource_link_id = Some(id);
    }
    let reg = match service_registration(&state, &launch).await {
        Ok(reg) => reg,
        Err(refused) => return refused,
    };
    let notice = match state.inner.services.ags_from_launch(&reg, launch.claims()) {
        Ok(ags) => match ags.create_line_item(&item).await {
            Ok(created) => format!(
                "<p class=\"ok\" id=\"notice\">Created line item <code>{}</code>.</p>",
                escape(created.id.as_deref().unwrap_or(""))
            ),
            Err(e) => service_error("Creating the line item", &e),
        },
        Err(e) => service_error("Reading the AGS claim", &e),
    };
    ags_panel(&state, &launch, Some(notice)).await
}

/// `POST /lti/app/ags/scores`: records a score for a learner in the grade
/// outbox and answers at once (the worker sends it; the panel shows its
/// status).
pub(crate) async fn post_score(
    State(state): State<AppState>,
    headers: HeaderMap,
    RequireInstructor(launch): RequireInstructor,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return form_error(&headers, &e),
    };
    let (given, maximum) = match (number(&form, "score_given"), number(&form, "score_maximum")) {
        (Ok(g), Ok(m)) => (g, m),
        (Err(m), _) | (_, Err(m)) => return invalid_form(&headers, &m),
    };
    let user = form.get("user_id").cloned().unwrap_or_default();
    let lineitem = form.get("lineitem").cloned().unwrap_or_default();
    let mut score = Score::completed_fully_graded(user.clone(), given, maximum, Timestamp::now());
    score.comment = form.get("comment").filter(|c| !c.is_empty()).cloned();
    let reg = match service_registration(&state, &launch).await {
        Ok(reg) => reg,
        Err(refused) => return refused,
    };
    let notice = match state.inner.services.ags_from_launch(&reg, launch.claims()) {
        Ok(ags) if !ags.has_scope(lti_message::ags::scope::SCORE) => service_error(
            "Posting the score",
            &ServiceError::ScopeNotGranted {
                scope: lti_message::ags::scope::SCORE,
                operation: lti_services::ags::op::POST_SCORE,
            },
        ),
        // The access token only goes where the launch's AGS URLs point.
        Ok(ags)
            if !crate::grades::on_launch_origin(
                &[ags.lineitems_url(), ags.lineitem_url()],
                &lineitem,
            ) =>
        {
            service_error(
                "Posting the score",
                &ServiceError::CrossOriginLink {
                    expected: "the origin of the launch's AGS URLs".to_owned(),
                    found: lti_http::redact_url(&lineitem).chars().take(120).collect(),
                },
            )
        }
        Ok(_) => {
            let target = GradeTarget::ags(reg.issuer(), reg.client_id(), lineitem, user.clone());
            match state
                .inner
                .store
                .outbox
                .submit(&target, &GradePayload::Ags { score })
                .await
            {
                Ok(submitted) => {
                    state.inner.outbox_waker.wake();
                    format!(
                        "<p class=\"ok\" id=\"notice\">Posted {given} / {maximum} for <code>{}</code> to the grade outbox (version {}): it is sent in the background, its status is below.</p>",
                        escape(&user),
                        submitted.version
                    )
                }
                Err(e) => return registry_error(&headers, &e),
            }
        }
        Err(e) => service_error("Reading the AGS claim", &e),
    };
    ags_panel(&state, &launch, Some(notice)).await
}

/// A store refusal as an error page: bad input 400, an unreachable store 503.
fn registry_error(headers: &HeaderMap, e: &lti_registry::RegistryError) -> Response {
    let status = StatusCode::from_u16(e.status_hint()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    page_error(headers, status, e.code(), &e.to_string())
}

/// `GET /lti/app/nrps?page=N`: the roster, a page at a time.
pub(crate) async fn nrps_page(
    State(state): State<AppState>,
    RequireInstructor(launch): RequireInstructor,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let page_no: usize = query
        .get("page")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let mut b = format!(
        "<h1>Names and Role Provisioning</h1><p><a href=\"{}\">Back to the launch</a></p>",
        with_launch("/lti/app", &launch)
    );
    let reg = match service_registration(&state, &launch).await {
        Ok(reg) => reg,
        Err(refused) => return refused,
    };
    let roster = match state.inner.services.nrps_from_launch(&reg, launch.claims()) {
        Ok(nrps) => nrps.list_members(&MembershipsQuery::new()).await,
        Err(e) => Err(e),
    };
    let roster = match roster {
        Ok(r) => r,
        Err(e) => {
            b.push_str(&service_error("Reading the roster", &e));
            return page("NRPS", &b);
        }
    };
    let total = roster.members.len();
    let pages = total.div_ceil(ROSTER_PAGE_SIZE).max(1);
    let page_no = page_no.min(pages);
    let _ = write!(
        b,
        "<p id=\"roster-summary\">{total} members, page {page_no} of {pages}.</p><table id=\"roster\"><tr><th>Name</th><th>Email</th><th>User id</th><th>Roles</th><th>Status</th></tr>"
    );
    for m in roster
        .members
        .iter()
        .skip((page_no - 1) * ROSTER_PAGE_SIZE)
        .take(ROSTER_PAGE_SIZE)
    {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(m.name.as_deref().unwrap_or("")),
            escape(m.email.as_deref().unwrap_or("")),
            escape(&m.user_id),
            escape(&m.roles.join(", ")),
            escape(&format!("{:?}", m.status))
        );
    }
    b.push_str("</table><p>");
    let base = with_launch("/lti/app/nrps", &launch);
    if page_no > 1 {
        let _ = write!(
            b,
            "<a href=\"{base}&amp;page={}\">Previous</a> ",
            page_no - 1
        );
    }
    if page_no < pages {
        let _ = write!(b, "<a href=\"{base}&amp;page={}\">Next</a>", page_no + 1);
    }
    b.push_str("</p>");
    page("NRPS", &b)
}

/// The LTI 1.1 inspector's sections for a verified launch (the resource page
/// of a visit, `crate::provider11`, shows them after `prefix`).
pub(crate) async fn lti11_launch(
    state: &AppState,
    launch: &lti11::Launch,
    prefix: &str,
) -> Response {
    let params = launch.params();
    let optional = params.optional_parameters();
    let mut b =
        format!("<h1>LTI 1.1 launch inspector</h1>{prefix}<section><h2>Who launched</h2><table>");
    row(&mut b, "Consumer", Some(&launch.consumer().name));
    row(&mut b, "Consumer key", Some(launch.consumer_key()));
    row(&mut b, "Name", optional.lis_person_name_full);
    row(&mut b, "Email", optional.lis_person_contact_email_primary);
    row(&mut b, "User id", launch.user_id());
    row(&mut b, "Roles", optional.roles);
    let _ = write!(
        b,
        "<tr><th>Instructor or higher</th><td id=\"instructor-verdict\">{}</td></tr></table></section>",
        yes_no(launch.roles().is_instructor_or_higher())
    );
    b.push_str("<section><h2>Context and resource link</h2><table>");
    row(&mut b, "LTI version", Some(launch.lti_version()));
    row(&mut b, "Resource link id", Some(launch.resource_link_id()));
    row(&mut b, "Resource link title", optional.resource_link_title);
    row(&mut b, "Context id", launch.context_id());
    row(&mut b, "Context title", optional.context_title);
    row(&mut b, "Context label", optional.context_label);
    row(
        &mut b,
        "Outcome service URL",
        optional.lis_outcome_service_url,
    );
    row(&mut b, "Result sourcedid", optional.lis_result_sourcedid);
    b.push_str("</table></section><section><h2>Custom parameters</h2><table id=\"custom\">");
    for (k, v) in params.custom_parameters() {
        row(&mut b, k, Some(v));
    }
    b.push_str("</table></section><section><h2>Validation steps passed</h2><ol id=\"steps\"><li>consumer key known</li><li>OAuth 1.0a signature verified with the consumer's secret</li><li>timestamp within the window; nonce not used before</li><li>message type, version and resource_link_id present</li></ol></section>");
    b.push_str("<section><h2>Outcomes</h2>");
    match launch.outcome_target() {
        None => b.push_str(
            "<p>The consumer sent no lis_outcome_service_url and lis_result_sourcedid: grades cannot be sent back.</p>",
        ),
        // Grades are for instructors to send: a learner's launch carries the
        // outcome target of the learner's own result.
        Some(_) if !launch.roles().is_instructor_or_higher() => b.push_str(
            "<p id=\"outcomes-instructors-only\">Sending a grade back is for instructors; this launch has no instructor role.</p>",
        ),
        Some(target) => match save_outcome_target(state, launch, &target).await {
            Ok(id) => {
                let token = lti_tool::web::csrf_token(&state.inner.tool, &id);
                let action = format!(
                    "/lti11/outcomes?{OUTCOME_ID_PARAM}={id}&{}={token}",
                    lti_tool::web::CSRF_PARAM
                );
                let _ = write!(
                    b,
                    "<form id=\"outcomes\" method=\"post\" action=\"{}\"><label>Score (0.0 to 1.0) <input name=\"score\" value=\"1.0\"></label><button type=\"submit\">Send the score to the consumer</button></form>",
                    escape(&action)
                );
            }
            Err(e) => {
                let _ = write!(
                    b,
                    "<p class=\"no\">The outcome target could not be saved: <code>{}</code></p>",
                    escape(e.code())
                );
            }
        },
    }
    b.push_str("</section>");
    page("LTI 1.1 launch inspector", &b)
}

/// The query parameter naming a saved LTI 1.1 outcome target.
const OUTCOME_ID_PARAM: &str = "outcome_id";
/// Format tag of a saved outcome target in the launch-data store.
const OUTCOME_FORMAT: &str = "lti-app/lti11-outcome/v1";
/// How long an outcome target stays usable: 2 hours.
const OUTCOME_TTL_SECS: i64 = 7200;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Saves the launch's outcome target server-side under a fresh 256-bit id, so
/// the form only carries the id (never a URL the tool would sign requests to),
/// with the launch's roles, which the outcome route checks again.
async fn save_outcome_target(
    state: &AppState,
    launch: &lti11::Launch,
    target: &lti11::OutcomeTarget,
) -> Result<String, lti_registry::RegistryError> {
    let id = crate::keys::random_base64url(32).ok_or_else(|| {
        lti_registry::RegistryError::InvalidInput {
            field: "outcome id",
            expected: "random bytes from the system",
            found: "an RNG failure".to_owned(),
        }
    })?;
    let value = serde_json::json!({
        "format": OUTCOME_FORMAT,
        "consumer_key": launch.consumer_key(),
        "roles": launch.params().get("roles").unwrap_or_default(),
        "service_url": target.service_url,
        "sourced_id": target.sourced_id,
    });
    state
        .inner
        .store
        .launch_data
        .save_launch(&id, value, unix_now().saturating_add(OUTCOME_TTL_SECS))
        .await?;
    Ok(id)
}

/// `POST /lti11/outcomes?outcome_id=…&lti_csrf_token=…`: records
/// `replaceResult` for the launch the id was saved for in the grade outbox
/// (the worker sends it, signed with its consumer's secret) and answers at
/// once, when the request carries the id's CSRF token and the launch had an
/// instructor (or higher) role.
pub(crate) async fn lti11_outcome(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(query): Query<HashMap<String, String>>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    let not_found = || {
        page_error(
            &headers,
            StatusCode::NOT_FOUND,
            "outcome_not_found",
            "outcome target not found: expected the id of a saved LTI 1.1 launch with outcomes, found an unknown or expired one",
        )
    };
    let Some(id) = query
        .get(OUTCOME_ID_PARAM)
        .filter(|i| !i.is_empty() && i.len() <= 256)
    else {
        return not_found();
    };
    if let Err(e) = lti_tool::web::check_csrf_token(&state.inner.tool, id, &headers, uri.query()) {
        return lti_axum::LtiRejection::new(e, &headers).into_response();
    }
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return form_error(&headers, &e),
    };
    let saved = match state.inner.store.launch_data.load_launch(id).await {
        Ok(v) if v.get("format").and_then(Value::as_str) == Some(OUTCOME_FORMAT) => v,
        Ok(_)
        | Err(
            lti_registry::RegistryError::NotFound { .. }
            | lti_registry::RegistryError::InvalidInput { .. },
        ) => {
            return not_found();
        }
        Err(e) => {
            return page_error(
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                e.code(),
                &e.to_string(),
            );
        }
    };
    let field = |n: &str| {
        saved
            .get(n)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    // The role again, from the saved launch: a target saved before this check
    // existed, or by any other path, carries no instructor role.
    let roles = lti_message::Roles::from_lti11_param(&field("roles"));
    if let Err(e) = lti_tool::web::require_instructor_roles(&roles) {
        return lti_axum::LtiRejection::new(e, &headers).into_response();
    }
    let (consumer_key, target) = (
        field("consumer_key"),
        lti11::OutcomeTarget {
            service_url: field("service_url"),
            sourced_id: field("sourced_id"),
        },
    );
    let score = match number(&form, "score").map(lti11::Score::new) {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return invalid_form(&headers, &e.to_string()),
        Err(m) => return invalid_form(&headers, &m),
    };
    match state
        .inner
        .store
        .consumers
        .get_consumer(&consumer_key)
        .await
    {
        Ok(_) => {}
        Err(lti_registry::RegistryError::NotFound { .. }) => return not_found(),
        Err(e) => {
            return page_error(
                &headers,
                StatusCode::SERVICE_UNAVAILABLE,
                e.code(),
                &e.to_string(),
            );
        }
    };
    // An outcome URL the egress policy refuses is refused now, not queued.
    if let Err(source) = state.inner.egress.check_url(&target.service_url, &[]) {
        let e = lti11::Error::Egress { source };
        return page_error(&headers, e.status(), e.code(), &e.to_string());
    }
    let grade =
        GradeTarget::basic_outcomes(consumer_key.clone(), target.service_url, target.sourced_id);
    let payload = GradePayload::BasicOutcomes {
        score: score.value(),
        text: None,
    };
    match state.inner.store.outbox.submit(&grade, &payload).await {
        Ok(submitted) => {
            state.inner.outbox_waker.wake();
            let table = crate::grades::status_table(&state.inner.store, |t| {
                matches!(t, GradeTarget::BasicOutcomes { consumer_key: k, .. } if *k == consumer_key)
            })
            .await;
            page(
                "Outcome queued",
                &format!(
                    "<h1>Outcome queued</h1><p class=\"ok\" id=\"notice\">The score {} is queued for the consumer (version {}): it is sent in the background.</p>{table}",
                    score.value(),
                    submitted.version
                ),
            )
        }
        Err(e) => registry_error(&headers, &e),
    }
}
