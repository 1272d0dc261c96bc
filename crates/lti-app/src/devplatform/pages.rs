//! The dev platform's server-rendered pages. Every value is escaped.

use std::fmt::Write as _;

use lti_platform::html_escape as esc;

use super::{COURSE_ID, COURSE_LABEL, COURSE_TITLE, CourseItem, CourseUser, DevPlatform};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d2733;background:#f4f6f8}\
header{background:#2b4c7e;color:#fff;padding:.8rem 1.5rem;display:flex;justify-content:space-between;align-items:center;flex-wrap:wrap;gap:.5rem}\
header a{color:#fff}main{padding:1rem 1.5rem}h1{font-size:1.4rem;margin:0}h2{font-size:1.15rem}\
section{background:#fff;border:1px solid #d5dbe1;border-radius:6px;padding:.8rem 1rem;margin-bottom:1rem}\
a.button{display:inline-block;margin:.15rem .3rem .15rem 0;padding:.3rem .7rem;border-radius:4px;background:#e3ecf7;color:#1d3f6e;text-decoration:none;border:1px solid #b7c9e2}\
a.button.instructor{background:#fbe9d0;border-color:#e6c28f;color:#6b4510}\
table{border-collapse:collapse}th,td{border:1px solid #d5dbe1;padding:.3rem .6rem;text-align:left}\
iframe{width:100%;height:78vh;border:2px solid #2b4c7e;border-radius:4px;background:#fff}\
.muted{color:#5b6875}.ok{color:#17692b}.no{color:#a3261b}code{font-size:.9em}";

/// A whole page with the platform header.
pub(crate) fn page(title: &str, current: Option<&CourseUser>, body: &str) -> String {
    let who = match current {
        Some(u) => format!(
            "Signed in as <strong id=\"current-user\">{}</strong> ({})",
            esc(&u.full_name()),
            if u.instructor {
                "Instructor"
            } else {
                "Learner"
            }
        ),
        None => "<span id=\"current-user\">Not signed in</span>".to_owned(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} · lti-rs dev platform</title><style>{STYLE}</style></head>\n<body><header><div><a href=\"/\"><h1>{} · {}</h1></a><span class=\"muted\" style=\"color:#c9d6ea\">lti-rs dev platform</span></div><nav><a href=\"/\">Course</a> · <a id=\"gradebook-link\" href=\"/gradebook\">Grade book</a> · <a href=\"/roster\">Roster</a> · <a id=\"admin-tools-link\" href=\"/admin/tools\">Tools (admin)</a></nav><div>{who}</div></header>\n<main>{body}</main></body></html>\n",
        esc(title),
        esc(COURSE_LABEL),
        esc(COURSE_TITLE),
    )
}

fn launch_href(link: &str, user: &str) -> String {
    format!("/launch?link={}&amp;user={}", esc(link), esc(user))
}

/// One "Launch as …" button per user for link `id`.
fn launch_buttons(b: &mut String, users: &[CourseUser], id: &str) {
    for u in users {
        let _ = write!(
            b,
            "<a class=\"button{}\" id=\"launch-{}-{}\" href=\"{}\">Launch as {}</a>",
            if u.instructor { " instructor" } else { "" },
            esc(id),
            esc(&u.id),
            launch_href(id, &u.id),
            esc(&u.full_name())
        );
    }
}

/// The course page.
pub(crate) fn course(dev: &DevPlatform, current: Option<&CourseUser>) -> String {
    let users = &dev.inner.users;
    let mut b = String::from("<section><h2>Course content</h2>");
    let items = dev.items();
    if items.is_empty() {
        b.push_str("<p class=\"muted\">Nothing yet: register a tool on the <a href=\"/admin/tools\">tools page</a> (LTI Dynamic Registration) or in a configuration file (see <code>lti platform --help</code>).</p>");
    }
    b.push_str("<ul id=\"course-items\">");
    for item in &items {
        match item {
            CourseItem::ResourceLink {
                id,
                client_id,
                title,
                line_item_id,
                ..
            } => {
                let tool = dev
                    .tool(client_id)
                    .map(|t| t.registration.name.clone())
                    .unwrap_or_default();
                let graded = line_item_id
                    .as_ref()
                    .and_then(|li| {
                        dev.inner
                            .grade_book
                            .line_items_in_context(COURSE_ID)
                            .into_iter()
                            .find(|r| &r.id == li)
                    })
                    .map(|r| format!(" · graded, out of {}", r.line_item.score_maximum))
                    .unwrap_or_default();
                let _ = write!(
                    b,
                    "<li class=\"resource-link\" id=\"item-{0}\"><strong>{1}</strong> <span class=\"muted\">(LTI resource link {0} · {2}{graded})</span><br>",
                    esc(id),
                    esc(title),
                    esc(&tool)
                );
                launch_buttons(&mut b, users, id);
                b.push_str("</li>");
            }
            CourseItem::Lti11Link { id, title, .. } => {
                let _ = write!(
                    b,
                    "<li class=\"lti11-link\" id=\"item-{0}\"><strong>{1}</strong> <span class=\"muted\">(LTI 1.1 link {0}, OAuth 1.0a-signed launch)</span><br>",
                    esc(id),
                    esc(title)
                );
                launch_buttons(&mut b, users, id);
                b.push_str("</li>");
            }
            CourseItem::Link { title, url } => {
                let _ = write!(
                    b,
                    "<li class=\"link\"><a href=\"{}\" target=\"_blank\" rel=\"noopener\">{}</a> <span class=\"muted\">(link)</span></li>",
                    esc(url),
                    esc(title)
                );
            }
            CourseItem::Html { title, html } => {
                let _ = write!(
                    b,
                    "<li class=\"html\"><strong>{}</strong> <span class=\"muted\">(HTML fragment, shown as text)</span><pre>{}</pre></li>",
                    esc(title),
                    esc(html)
                );
            }
        }
    }
    b.push_str("</ul></section>");
    b.push_str("<section><h2>Add content with deep linking</h2>");
    let instructors: Vec<&CourseUser> = users.iter().filter(|u| u.instructor).collect();
    let tools = dev.tools();
    for (i, t) in tools.iter().enumerate() {
        for u in &instructors {
            let _ = write!(
                b,
                "<a class=\"button instructor\" id=\"deep-link-{}\" href=\"/launch?tool={}&amp;user={}\">Add content from {} as {}</a>",
                i + 1,
                esc(&t.registration.client_id),
                esc(&u.id),
                esc(&t.registration.name),
                esc(&u.full_name())
            );
        }
    }
    if tools.is_empty() {
        b.push_str("<p class=\"muted\">No tools registered.</p>");
    }
    b.push_str("</section><section><h2>Switch user</h2><p>Launch buttons sign you in as the user they launch as; the authorization endpoint answers only for the signed-in user.</p>");
    for u in users {
        let _ = write!(
            b,
            "<a class=\"button\" id=\"switch-{0}\" href=\"/switch?user={0}\">{1}</a>",
            esc(&u.id),
            esc(&u.full_name())
        );
    }
    b.push_str("</section>");
    let _ = write!(
        b,
        "<section><h2>Platform details</h2><table><tr><th>Issuer</th><td><code>{}</code></td></tr><tr><th>Authorization endpoint</th><td><code>{}</code></td></tr><tr><th>Token endpoint</th><td><code>{}</code></td></tr><tr><th>JWKS</th><td><code>{}</code></td></tr><tr><th>Deep-linking return</th><td><code>{}</code></td></tr><tr><th>NRPS memberships</th><td><code>{}</code></td></tr></table></section>",
        esc(dev.issuer()),
        esc(&dev.auth_url()),
        esc(&dev.token_url()),
        esc(&dev.jwks_url()),
        esc(&dev.inner.platform.config().deep_link_return_url),
        esc(&dev.inner.platform.memberships_url(COURSE_ID)),
    );
    page("Course", current, &b)
}

/// The name of a launch page's hidden Platform Storage frame (Canvas's name).
pub(crate) const FORWARDING_FRAME_NAME: &str = "post_message_forwarding";

/// The page framing a launch. Platform Storage is answered by the page itself,
/// or with `forwarding` by a hidden frame of its own (loaded before the tool).
pub(crate) fn launch_frame(
    title: &str,
    user: &CourseUser,
    frame_src: &str,
    window_src: &str,
    forwarding: bool,
) -> String {
    let storage_frame = if forwarding {
        format!(
            "<iframe id=\"storage-frame\" name=\"{FORWARDING_FRAME_NAME}\" title=\"Platform Storage\" src=\"/storage-frame\" hidden></iframe>"
        )
    } else {
        String::new()
    };
    let body = format!(
        "<p><a id=\"back\" href=\"/\">← Back to the course</a> · <strong id=\"launch-title\">{}</strong>, launched as {} · <a id=\"open-window\" href=\"{}\" target=\"_blank\">Open in a new window</a> <span class=\"muted\">(if your browser blocks the tool's cookies inside the frame)</span></p>{storage_frame}<iframe id=\"tool-frame\" name=\"tool-frame\" title=\"LTI tool\" src=\"{}\"></iframe>",
        esc(title),
        esc(&user.full_name()),
        esc(window_src),
        esc(frame_src)
    );
    let script = if forwarding {
        String::new()
    } else {
        lti_platform::platform_storage_script(TOOL_FRAME_ID)
    };
    page(title, Some(user), &(body + &script))
}

/// The `id` (and `name`) of the `<iframe>` the launch page frames the tool in.
pub(crate) const TOOL_FRAME_ID: &str = "tool-frame";

/// The hidden Platform Storage frame: answers the parent page's tool frame.
pub(crate) fn storage_frame() -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Platform Storage</title></head><body>{}</body></html>\n",
        lti_platform::platform_storage_forwarding_script(TOOL_FRAME_ID)
    )
}

/// The page the deep-linking return shows inside the tool frame.
pub(crate) fn deep_link_result(
    added: &[String],
    msg: Option<&str>,
    errormsg: Option<&str>,
) -> String {
    let mut b = String::new();
    if let Some(e) = errormsg {
        let _ = write!(
            b,
            "<p class=\"no\" id=\"dl-error\">The tool reported an error: {}</p>",
            esc(e)
        );
    }
    if let Some(m) = msg {
        let _ = write!(b, "<p id=\"dl-msg\">The tool says: {}</p>", esc(m));
    }
    let _ = write!(
        b,
        "<section><h2 id=\"dl-summary\">Added {} item(s) to the course</h2><ul id=\"dl-added\">",
        added.len()
    );
    for a in added {
        let _ = write!(b, "<li>{}</li>", esc(a));
    }
    b.push_str(
        "</ul><p><a id=\"dl-back\" href=\"/\" target=\"_top\">Back to the course</a></p></section>",
    );
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Content added</title><style>{STYLE}</style></head><body><main>{b}</main></body></html>\n"
    )
}

/// A refusal page.
pub(crate) fn error(current: Option<&CourseUser>, code: &str, message: &str) -> String {
    let body = format!(
        "<section><h2>The request was refused</h2><p>Error code: <code id=\"error-code\">{}</code></p><p id=\"error-message\">{}</p><p><a href=\"/\" target=\"_top\">Back to the course</a></p></section>",
        esc(code),
        esc(message)
    );
    page("Refused", current, &body)
}

/// The grade book: one row per member, one column per line item.
pub(crate) fn grade_book(dev: &DevPlatform, current: Option<&CourseUser>) -> String {
    let items = dev.inner.grade_book.line_items_in_context(COURSE_ID);
    let mut b = String::from("<section><h2>Grade book</h2>");
    if items.is_empty() {
        b.push_str("<p class=\"muted\" id=\"no-line-items\">No line items yet: add a graded resource link with deep linking, or let a tool create one through AGS.</p>");
    }
    b.push_str("<table id=\"gradebook\"><tr><th>Member</th>");
    for item in &items {
        let _ = write!(
            b,
            "<th id=\"lineitem-{}\">{}<br><span class=\"muted\">out of {}</span></th>",
            esc(&item.id),
            esc(&item.line_item.label),
            item.line_item.score_maximum
        );
    }
    b.push_str("</tr>");
    for u in &dev.inner.users {
        let _ = write!(
            b,
            "<tr><th>{}{}</th>",
            esc(&u.full_name()),
            if u.instructor { " (Instructor)" } else { "" }
        );
        for item in &items {
            let subject = dev
                .tool(&item.owner.client_id)
                .map(|t| dev.inner.platform.subject_for(&t.registration, &u.id));
            let result = subject.and_then(|s| {
                dev.inner
                    .grade_book
                    .results_of(&item.id)
                    .into_iter()
                    .find(|r| r.user_id == s)
            });
            let cell = match result {
                Some(r) => {
                    let given = r
                        .score
                        .score_given
                        .map_or_else(|| "–".to_owned(), |g| g.to_string());
                    let max = r
                        .score
                        .score_maximum
                        .map_or_else(String::new, |m| format!(" / {m}"));
                    let comment = r
                        .score
                        .comment
                        .as_deref()
                        .map(|c| format!("<br><span class=\"muted\">{}</span>", esc(c)))
                        .unwrap_or_default();
                    format!(
                        "<span class=\"score\">{}{}</span>{comment}",
                        esc(&given),
                        esc(&max)
                    )
                }
                None => "<span class=\"muted\">–</span>".to_owned(),
            };
            let _ = write!(
                b,
                "<td id=\"grade-{}-{}\">{cell}</td>",
                esc(&u.id),
                esc(&item.id)
            );
        }
        b.push_str("</tr>");
    }
    b.push_str("</table></section>");
    page("Grade book", current, &b)
}

/// The roster page (the same members NRPS serves).
pub(crate) fn roster(dev: &DevPlatform, current: Option<&CourseUser>) -> String {
    let mut b = format!(
        "<section><h2>Roster</h2><p>Tools read it through NRPS at <code>{}</code>, each seeing its own pseudonymous user ids.</p><table id=\"roster\"><tr><th>Name</th><th>Platform user id</th><th>Email</th><th>Role</th></tr>",
        esc(&dev.inner.platform.memberships_url(COURSE_ID))
    );
    for u in &dev.inner.users {
        let _ = write!(
            b,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}@example.edu</td><td>{}</td></tr>",
            esc(&u.full_name()),
            esc(&u.id),
            esc(&u.id),
            if u.instructor {
                "Instructor"
            } else {
                "Learner"
            }
        );
    }
    b.push_str("</table></section>");
    page("Roster", current, &b)
}

/// The `id` of the `<iframe>` the admin page opens a tool's registration in.
pub(crate) const REGISTRATION_FRAME_ID: &str = "registration-frame";

/// The admin page's script: when the registration frame's window posts
/// `{subject: "org.imsglobal.lti.close"}`, go to the frame's `data-done` URL.
/// Messages from any other window are ignored. Its text does not depend on the
/// page, so the platform's script policy allows it by hash.
pub(crate) const REGISTRATION_SCRIPT: &str = "<script>(function(){\
var frame=document.getElementById('registration-frame');if(!frame)return;\
window.addEventListener('message',function(event){\
if(event.source!==frame.contentWindow)return;\
var m=event.data;if(!m||typeof m!=='object'||m.subject!=='org.imsglobal.lti.close')return;\
var status=document.getElementById('registration-status');\
if(status)status.textContent='The tool finished registering; opening the course…';\
window.location.assign(frame.getAttribute('data-done')||'/');\
});})();</script>";

/// `/admin/tools`: the registered LTI 1.3 tools and the Dynamic Registration
/// form (`registration_url`, with the CSRF token in a hidden field).
pub(crate) fn admin_tools(
    dev: &DevPlatform,
    current: Option<&CourseUser>,
    csrf_token: &str,
) -> String {
    let mut b = String::from(
        "<section><h2>Register a tool (LTI Dynamic Registration)</h2><p>Paste the tool's registration URL. The platform opens it below with <code>openid_configuration</code> and a one-time <code>registration_token</code> (valid for one hour) added; when the tool says it is done, the new tool is in the course with launch buttons.</p>",
    );
    let _ = write!(
        b,
        "<form id=\"register-form\" method=\"post\" action=\"/admin/tools\"><input type=\"hidden\" name=\"csrf_token\" value=\"{}\"><label for=\"registration_url\">Registration URL</label> <input id=\"registration_url\" name=\"registration_url\" type=\"url\" size=\"60\" required placeholder=\"https://tool.example.com/lti/register\"> <button id=\"register-submit\" type=\"submit\">Register</button></form>",
        esc(csrf_token)
    );
    let _ = write!(
        b,
        "<p class=\"muted\">OpenID configuration: <code id=\"openid-configuration\">{}</code> · registration endpoint: <code>{}</code></p></section>",
        esc(&dev.openid_configuration_url()),
        esc(&dev.registration_endpoint_url())
    );
    b.push_str("<section><h2>Registered tools</h2>");
    let tools = dev.tools();
    if tools.is_empty() {
        b.push_str("<p class=\"muted\" id=\"no-tools\">No LTI 1.3 tools registered.</p>");
    } else {
        b.push_str("<table id=\"tools\"><tr><th>Name</th><th>Client id</th><th>Deployment</th><th>Login initiation</th><th>Service scopes</th></tr>");
        for t in &tools {
            let r = &t.registration;
            let _ = write!(
                b,
                "<tr class=\"tool\" id=\"tool-{0}\"><td>{1}</td><td><code>{0}</code></td><td><code>{2}</code></td><td><code>{3}</code></td><td>{4}</td></tr>",
                esc(&r.client_id),
                esc(&r.name),
                esc(&t.deployment_id),
                esc(&r.login_initiation_url),
                r.scopes.len()
            );
        }
        b.push_str("</table>");
    }
    b.push_str("<p><a href=\"/\">Go to the course</a> to launch them.</p></section>");
    page("Tools", current, &b)
}

/// The page framing a tool's registration page; [`REGISTRATION_SCRIPT`]
/// moves on to the course when the tool posts the close message.
pub(crate) fn admin_registering(
    current: Option<&CourseUser>,
    registration_url: &str,
    initiation_url: &str,
) -> String {
    let body = format!(
        "<section><h2>Registering a tool</h2><p>The tool's registration page (<code id=\"registration-url\">{}</code>) is below. <span id=\"registration-status\">Waiting for the tool to finish…</span></p><iframe id=\"{REGISTRATION_FRAME_ID}\" title=\"Tool registration\" src=\"{}\" data-done=\"/\"></iframe><p><a href=\"/admin/tools\">Back to the tools page</a></p></section>{REGISTRATION_SCRIPT}",
        esc(registration_url),
        esc(initiation_url)
    );
    page("Registering a tool", current, &body)
}
