//! Framework-neutral HTTP helpers: parameter parsing, media types, HTML forms, responses.

use std::collections::HashMap;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, PRAGMA};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

use crate::error::{PlatformError, Result, clip};

/// Largest form or JSON body any endpoint reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `application/x-www-form-urlencoded`.
pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

/// Request parameters with single-valued access (duplicates are refused).
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text; a repeated name is an error.
    pub(crate) fn parse(raw: &[u8]) -> Result<Self> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw) {
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(PlatformError::DuplicateParameter { name: clip(&k) });
            }
        }
        Ok(Self(map))
    }

    /// Reads the parameters of a GET (query) or POST (form body) request.
    pub(crate) fn from_request(req: &Request<Bytes>, allow_get: bool) -> Result<Self> {
        if req.method() == Method::POST {
            check_body_size(req.body())?;
            require_content_type(req.headers(), FORM)?;
            Self::parse(req.body())
        } else if allow_get && req.method() == Method::GET {
            Self::parse(req.uri().query().unwrap_or("").as_bytes())
        } else {
            Err(PlatformError::MethodNotAllowed {
                expected: if allow_get { "GET or POST" } else { "POST" },
                found: clip(req.method().as_str()),
            })
        }
    }

    /// The query string of `req`, parsed.
    pub(crate) fn query(req: &Request<Bytes>) -> Result<Self> {
        Self::parse(req.uri().query().unwrap_or("").as_bytes())
    }

    /// An optional parameter.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A required, non-empty parameter.
    pub(crate) fn require(&self, name: &'static str) -> Result<&str> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(PlatformError::MissingParameter { name }),
        }
    }
}

pub(crate) fn check_body_size(body: &Bytes) -> Result<()> {
    if body.len() > MAX_BODY_BYTES {
        return Err(PlatformError::BodyTooLarge {
            limit: MAX_BODY_BYTES,
            found: body.len(),
        });
    }
    Ok(())
}

/// The media type of a Content-Type value, without parameters, lowercased.
fn essence(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Refuses a request whose Content-Type is not `expected` (415).
pub(crate) fn require_content_type(headers: &HeaderMap, expected: &'static str) -> Result<()> {
    let found = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if essence(found) == expected {
        Ok(())
    } else {
        Err(PlatformError::UnsupportedMediaType {
            expected,
            found: if found.is_empty() {
                "no Content-Type".to_owned()
            } else {
                clip(found)
            },
        })
    }
}

/// Refuses a request whose Accept header rules out `produced` (406). A missing Accept
/// header accepts anything; `*/*`, `type/*`, `application/json` and the exact type match.
pub(crate) fn require_accept(headers: &HeaderMap, produced: &'static str) -> Result<()> {
    let values: Vec<&str> = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return Ok(());
    }
    let (main, _) = produced.split_once('/').unwrap_or((produced, ""));
    let acceptable = values.iter().flat_map(|v| v.split(',')).any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            let p = p.trim().replace(' ', "");
            p == "q=0" || p == "q=0.0" || p == "q=0.00" || p == "q=0.000"
        });
        !refused
            && (media == "*/*"
                || media == produced
                || media == "application/json"
                || media == format!("{main}/*"))
    });
    if acceptable {
        Ok(())
    } else {
        Err(PlatformError::NotAcceptable {
            expected: produced,
            found: clip(&values.join(", ")),
        })
    }
}

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The platform's side of LTI postMessage Platform Storage (spec digest §6), as a
/// `<script>` element for the page that frames the tool: it answers
/// `lti.capabilities`, `lti.put_data` and `lti.get_data` (and their
/// `org.imsglobal.` draft names) sent by the window of the `<iframe>` whose `id`
/// is `frame_id`, and ignores every other window. Data is kept in the page's
/// memory only, partitioned by the sender's origin, and each reply goes back to
/// the sender's window and origin. Keys up to 1,024 characters, values up to
/// 4,096, 64 keys per origin; `null` (or no) value deletes. Requests without a
/// `message_id` or with a bad key get a `bad_request` error reply; other subjects
/// `unsupported_subject`.
///
/// Tools address `put_data`/`get_data` to the origin of the platform's OIDC
/// authorization endpoint, so the framing page must be served from that origin;
/// the login initiation names the storage frame with
/// [`crate::LoginInitiation::with_storage_target`] (`_parent` for this page).
pub fn platform_storage_script(frame_id: &str) -> String {
    storage_script(frame_id, "document")
}

/// The same handler for a separate, hidden storage frame (as Canvas's
/// `post_message_forwarding`): a same-origin `<iframe>` of the page that frames
/// the tool, whose `name` the login initiation gives as `lti_storage_target`. It
/// answers the window of the `<iframe>` with `id` `tool_frame_id` in its parent
/// page, and ignores every other window.
pub fn platform_storage_forwarding_script(tool_frame_id: &str) -> String {
    storage_script(tool_frame_id, "window.parent.document")
}

/// The handler, finding the tool's `<iframe>` by id in `document_js` (a
/// same-origin document: this one or the parent's).
fn storage_script(frame_id: &str, document_js: &'static str) -> String {
    let id = serde_json::to_string(frame_id).unwrap_or_else(|_| "\"\"".to_owned());
    // `</` cannot occur in the JSON string literal unescaped: it is escaped below.
    let id = id.replace("</", "<\\/");
    format!(
        "<script>(function(){{\
var frameId={id},stores=new Map(),MAX_KEY=1024,MAX_VALUE=4096,MAX_KEYS=64;\
var SUPPORTED=['lti.capabilities','lti.put_data','lti.get_data'];\
window.addEventListener('message',function(event){{\
var frame;try{{frame={document_js}.getElementById(frameId);}}catch(e){{return;}}\
if(!frame||event.source!==frame.contentWindow)return;\
var m=event.data;\
if(!m||typeof m!=='object'||typeof m.subject!=='string')return;\
var subject=m.subject.indexOf('org.imsglobal.')===0?m.subject.slice(14):m.subject;\
function reply(fields){{var r={{subject:m.subject+'.response',message_id:m.message_id}};\
for(var k in fields)r[k]=fields[k];event.source.postMessage(r,event.origin);}}\
function bad(message){{reply({{error:{{code:'bad_request',message:message}}}});}}\
if(SUPPORTED.indexOf(subject)<0){{reply({{error:{{code:'unsupported_subject',message:'unsupported subject: '+String(m.subject).slice(0,64)}}}});return;}}\
if(typeof m.message_id!=='string'&&typeof m.message_id!=='number'){{bad('message_id is required');return;}}\
if(subject==='lti.capabilities'){{reply({{supported_messages:SUPPORTED.map(function(s){{return{{subject:s}};}})}});return;}}\
if(typeof m.key!=='string'||m.key.length===0||m.key.length>MAX_KEY){{bad('key must be a string of 1 to '+MAX_KEY+' characters');return;}}\
var store=stores.get(event.origin);\
if(subject==='lti.get_data'){{reply({{key:m.key,value:store&&store.has(m.key)?store.get(m.key):null}});return;}}\
if(m.value===null||m.value===undefined){{if(store)store.delete(m.key);reply({{key:m.key,value:null}});return;}}\
if(typeof m.value!=='string'||m.value.length>MAX_VALUE){{bad('value must be a string of at most '+MAX_VALUE+' characters');return;}}\
if(!store){{store=new Map();stores.set(event.origin,store);}}\
if(!store.has(m.key)&&store.size>=MAX_KEYS){{bad('at most '+MAX_KEYS+' keys per origin');return;}}\
store.set(m.key,m.value);reply({{key:m.key,value:m.value}});\
}});}})();</script>"
    )
}

/// An HTML page with a form that posts `fields` to `action` and submits itself by script;
/// a visible button lets users without script continue.
pub fn auto_submit_form(action: &str, fields: &[(String, String)], title: &str) -> String {
    let mut html = String::with_capacity(
        512 + fields
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum::<usize>(),
    );
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    html.push_str(&html_escape(title));
    html.push_str("</title></head><body>\n<form id=\"lti-autosubmit\" method=\"post\" action=\"");
    html.push_str(&html_escape(action));
    html.push_str("\">\n");
    for (name, value) in fields {
        html.push_str("<input type=\"hidden\" name=\"");
        html.push_str(&html_escape(name));
        html.push_str("\" value=\"");
        html.push_str(&html_escape(value));
        html.push_str("\">\n");
    }
    html.push_str("<button type=\"submit\">Continue</button>\n</form>\n<script>document.getElementById(\"lti-autosubmit\").submit();</script>\n</body></html>\n");
    html
}

/// Appends `params` to `url` as a query string (after any existing query).
pub fn append_query(url: &str, params: &[(String, String)]) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let query = ser.finish();
    let mut out = String::with_capacity(url.len() + query.len() + 2);
    out.push_str(base);
    if !query.is_empty() {
        out.push(if base.contains('?') { '&' } else { '?' });
        out.push_str(&query);
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// A response with `status`, `content_type` and `body`, never cached.
pub(crate) fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Bytes> {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, v);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// A 200 HTML page.
pub(crate) fn html_response(status: StatusCode, html: String) -> Response<Bytes> {
    response(status, "text/html; charset=utf-8", html)
}

/// A JSON response.
pub(crate) fn json_response(
    status: StatusCode,
    content_type: &str,
    value: &impl serde::Serialize,
) -> Response<Bytes> {
    match serde_json::to_vec(value) {
        Ok(body) => response(status, content_type, body),
        // Plain data always serializes; answer something sane rather than panic.
        Err(_) => response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            "serialization failed",
        ),
    }
}

/// The standard JSON error body for service endpoints: `{"error": code, "error_description": msg}`.
pub(crate) fn service_error(err: &PlatformError) -> Response<Bytes> {
    let body = serde_json::json!({
        "error": err.code(),
        "error_description": err.to_string(),
    });
    let mut resp = json_response(err.http_status(), "application/json", &body);
    match err {
        PlatformError::InvalidAccessToken { .. } => {
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        PlatformError::InsufficientScope { .. } => {
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"insufficient_scope\""),
            );
        }
        PlatformError::MethodNotAllowed { expected, .. } => {
            let allow = expected.replace(" or ", ", ");
            if let Ok(v) = HeaderValue::from_str(&allow) {
                resp.headers_mut().insert(http::header::ALLOW, v);
            }
        }
        _ => {}
    }
    resp
}

/// A plain HTML error page for browser-facing endpoints.
pub(crate) fn error_page(err: &PlatformError) -> Response<Bytes> {
    let status = err.http_status();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>LTI request refused</title></head><body><h1>LTI request refused</h1><p>{}</p><p><code>{}</code></p></body></html>\n",
        html_escape(&err.to_string()),
        err.code()
    );
    html_response(status, html)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_str(accept).unwrap());
        h
    }

    #[test]
    fn the_platform_storage_script_names_its_frame_as_a_js_string_that_cannot_close_the_tag() {
        let script = platform_storage_script("tool-frame");
        assert!(script.starts_with("<script>") && script.ends_with("</script>"));
        assert!(script.contains(r#"var frameId="tool-frame","#));
        for subject in ["lti.capabilities", "lti.put_data", "lti.get_data"] {
            assert!(script.contains(subject), "{subject}");
        }
        let hostile = platform_storage_script("x\"</script><script>alert(1)//");
        assert_eq!(hostile.matches("</script>").count(), 1, "{hostile}");
        assert!(hostile.contains(r#"var frameId="x\"<\/script><script>alert(1)//","#));
        assert!(script.contains("frame=document.getElementById(frameId)"));
    }

    #[test]
    fn the_forwarding_frame_finds_the_tool_frame_in_its_parent_page() {
        let script = platform_storage_forwarding_script("tool-frame");
        assert!(script.contains("frame=window.parent.document.getElementById(frameId)"));
        assert!(script.contains(r#"var frameId="tool-frame","#));
        // The rest is the same handler.
        let page = platform_storage_script("tool-frame");
        assert_eq!(script.replace("window.parent.document", "document"), page);
        let hostile = platform_storage_forwarding_script("</script>");
        assert_eq!(hostile.matches("</script>").count(), 1, "{hostile}");
    }

    #[test]
    fn accept_header_matching_follows_media_ranges_and_q_zero() {
        const T: &str = "application/vnd.ims.lis.v2.lineitem+json";
        assert!(require_accept(&HeaderMap::new(), T).is_ok());
        for ok in [
            "*/*",
            "application/*",
            T,
            "application/json",
            "text/html, */*;q=0.1",
        ] {
            assert!(require_accept(&headers(ok), T).is_ok(), "{ok}");
        }
        for refused in [
            "text/html",
            "application/xml",
            "application/vnd.ims.lis.v2.lineitem+json;q=0",
        ] {
            let err = require_accept(&headers(refused), T).unwrap_err();
            assert!(
                matches!(err, PlatformError::NotAcceptable { .. }),
                "{refused}"
            );
        }
    }

    #[test]
    fn content_type_comparison_ignores_parameters_and_case() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
        );
        assert!(require_content_type(&h, FORM).is_ok());
        let err = require_content_type(&HeaderMap::new(), FORM).unwrap_err();
        assert!(
            matches!(err, PlatformError::UnsupportedMediaType { found, .. } if found == "no Content-Type")
        );
    }

    #[test]
    fn append_query_keeps_existing_query_and_fragment() {
        let p = [("a".to_owned(), "1 2".to_owned())];
        assert_eq!(append_query("https://x/y", &p), "https://x/y?a=1+2");
        assert_eq!(append_query("https://x/y?t=1", &p), "https://x/y?t=1&a=1+2");
        assert_eq!(append_query("https://x/y#f", &p), "https://x/y?a=1+2#f");
        assert_eq!(append_query("https://x/y", &[]), "https://x/y");
    }

    #[test]
    fn html_escape_covers_attribute_breakers() {
        assert_eq!(
            html_escape(r#"<a href="x" title='y'>&"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;"
        );
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let err = Params::parse(b"a=1&b=2&a=3").unwrap_err();
        assert!(matches!(err, PlatformError::DuplicateParameter { name } if name == "a"));
        let p = Params::parse(b"a=&b=2").unwrap();
        assert!(matches!(
            p.require("a"),
            Err(PlatformError::MissingParameter { name: "a" })
        ));
        assert_eq!(p.require("b").unwrap(), "2");
    }
}
