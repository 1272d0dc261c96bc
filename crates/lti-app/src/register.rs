//! `GET /lti/register`: LTI Dynamic Registration, the page a platform opens
//! (in a frame or a new window) with `openid_configuration` and
//! `registration_token`. The exchange itself is `lti_tool::registration`;
//! this module builds its inputs from the configuration and renders the
//! administrator's result pages.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lti_message::registration::ToolMessage;
use lti_tool::html::escape;
use lti_tool::registration::{
    Approval, DEFAULT_CLAIMS, DynamicRegistration, Registered, RegistrationError,
    RegistrationPolicy, ToolMetadata,
};

use crate::config::{ApprovalMode, Config};
use crate::server::{AppState, RegistrationUrls};

/// The path of the registration URL.
pub const REGISTER_PATH: &str = "/lti/register";

/// The scopes `lti serve`'s inspector uses (AGS line items, results, scores;
/// NRPS), asked for when `dynamic_registration.scopes` is not set.
pub const DEFAULT_REGISTRATION_SCOPES: &[&str] = &[
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
];

/// The tool's metadata from `[dynamic_registration]` and the tool's URLs.
pub(crate) fn tool_metadata(config: &Config, urls: &RegistrationUrls) -> ToolMetadata {
    let dr = &config.dynamic_registration;
    let mut m = ToolMetadata::new(
        dr.name.clone(),
        urls.login.clone(),
        urls.launch.clone(),
        urls.jwks.clone(),
        urls.target_link_uri.clone(),
    );
    m.description.clone_from(&dr.description);
    m.logo_uri.clone_from(&dr.logo_uri);
    m.claims = dr
        .claims
        .clone()
        .unwrap_or_else(|| DEFAULT_CLAIMS.iter().map(|c| (*c).to_owned()).collect());
    m.scopes = dr.scopes.clone().unwrap_or_else(|| {
        DEFAULT_REGISTRATION_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    });
    m.custom_parameters.clone_from(&dr.custom_parameters);
    m.messages = match &dr.messages {
        Some(messages) => messages
            .iter()
            .map(|c| {
                let mut t = ToolMessage {
                    message_type: c.message_type.clone(),
                    target_link_uri: c.target_link_uri.clone(),
                    label: c.label.clone(),
                    icon_uri: c.icon_uri.clone(),
                    custom_parameters: c.custom_parameters.clone(),
                    placements: c.placements.clone(),
                    ..ToolMessage::default()
                };
                if t.message_type == "LtiDeepLinkingRequest" {
                    t.supported_types = vec!["ltiResourceLink".to_owned()];
                }
                t
            })
            .collect(),
        None => vec![
            ToolMessage {
                message_type: "LtiResourceLinkRequest".to_owned(),
                label: Some(dr.name.clone()),
                ..ToolMessage::default()
            },
            ToolMessage {
                message_type: "LtiDeepLinkingRequest".to_owned(),
                label: Some(format!("Add {} content", dr.name)),
                placements: vec!["ContentArea".to_owned()],
                supported_types: vec!["ltiResourceLink".to_owned()],
                ..ToolMessage::default()
            },
        ],
    };
    m
}

/// The registration flow `[dynamic_registration]` describes, or `None` when
/// it is off.
pub(crate) fn dynamic_registration(
    config: &Config,
    urls: &RegistrationUrls,
    http: Arc<dyn lti_http::HttpClient>,
    store: &lti_registry::Store,
) -> Option<Arc<DynamicRegistration>> {
    let dr = &config.dynamic_registration;
    if !dr.enabled {
        return None;
    }
    let policy = RegistrationPolicy::open()
        .allow_issuers(dr.allowed_issuers.iter().cloned())
        .approval(match dr.approval {
            ApprovalMode::Auto => Approval::Auto,
            ApprovalMode::Manual => Approval::Manual,
        })
        .unknown_deployments(dr.unknown_deployments.policy());
    Some(Arc::new(
        DynamicRegistration::new(
            http,
            store.registrations.clone(),
            tool_metadata(config, urls),
        )
        .with_policy(policy),
    ))
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:48rem;margin:1rem auto;padding:0 1rem;line-height:1.45}\
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}\
code{background:#f4f4f4}.ok{color:#070}.no{color:#a00}";

fn page(status: StatusCode, title: &str, body: &str, script: Option<&str>) -> Response {
    let script = script
        .map(|s| format!("<script>{s}</script>"))
        .unwrap_or_default();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}\n{script}</body>\n</html>\n",
        escape(title)
    );
    let mut resp = (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response();
    if !script.is_empty()
        && let Ok(csp) = HeaderValue::from_str(&lti_tool::registration::close_page_policy())
    {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    resp
}

/// `GET /lti/register?openid_configuration=…&registration_token=…`.
pub(crate) async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(flow) = state.inner.registration.clone() else {
        return crate::inspector::page_error(
            &headers,
            StatusCode::NOT_FOUND,
            "dynamic_registration_disabled",
            "dynamic registration is off: expected [dynamic_registration] enabled = true in the tool's configuration, found it off",
        );
    };
    let Ok(Query(params)) = query else {
        return failure(
            &headers,
            &RegistrationError::MissingParameter {
                name: "openid_configuration",
            },
        );
    };
    let Some(config_url) = params
        .get("openid_configuration")
        .filter(|v| !v.trim().is_empty())
    else {
        return failure(
            &headers,
            &RegistrationError::MissingParameter {
                name: "openid_configuration",
            },
        );
    };
    let token = params
        .get("registration_token")
        .map(String::as_str)
        .filter(|t| !t.is_empty());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    match flow.register(config_url, token, now).await {
        Ok(done) => success(&headers, &done),
        Err(e) => {
            tracing::warn!(
                target: "lti_app::register",
                code = e.code(),
                error = %e,
                "dynamic registration failed; nothing stored"
            );
            failure(&headers, &e)
        }
    }
}

fn success(headers: &HeaderMap, done: &Registered) -> Response {
    let r = &done.registration;
    if lti_tool::web::wants_json(headers) {
        let body = serde_json::json!({
            "status": if done.pending() { "pending" } else { "active" },
            "issuer": r.issuer,
            "client_id": r.client_id,
            "deployment_ids": r.deployments.iter().map(|d| d.deployment_id.as_str()).collect::<Vec<_>>(),
            "updated": done.updated,
            "granted_scopes": done.granted_scopes,
            "denied_scopes": done.denied_scopes(),
            "product_family_code": done.product_family,
        });
        let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return resp;
    }
    let mut b = String::new();
    let _ = write!(
        b,
        "<h1 id=\"result\" class=\"ok\">{}</h1>",
        if done.updated {
            "Registration updated"
        } else {
            "Tool registered"
        }
    );
    let mut rows = BTreeMap::new();
    rows.insert(
        "Platform",
        format!("{} {}", done.product_family, done.product_version),
    );
    rows.insert("Issuer", r.issuer.clone());
    rows.insert("Client id", r.client_id.clone());
    rows.insert(
        "Deployment",
        r.deployments.first().map_or_else(
            || "recorded at the first launch".to_owned(),
            |d| d.deployment_id.clone(),
        ),
    );
    rows.insert("Granted scopes", done.granted_scopes.join(" "));
    b.push_str("<table>");
    for (k, v) in rows {
        let _ = write!(
            b,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            escape(k),
            escape(&v)
        );
    }
    b.push_str("</table>");
    let denied = done.denied_scopes();
    if !denied.is_empty() {
        let _ = write!(
            b,
            "<p class=\"no\">Not granted (the features that need them stay off): <code>{}</code></p>",
            escape(&denied.join(" "))
        );
    }
    if done.pending() {
        let _ = write!(
            b,
            "<p id=\"pending\">Launches wait for an administrator of this tool: <code>lti platforms approve {} {}</code></p>",
            escape(&r.issuer),
            escape(&r.client_id)
        );
    } else {
        b.push_str("<p>Launches from this platform are accepted now.</p>");
    }
    b.push_str("<p>You can close this window.</p>");
    page(
        StatusCode::OK,
        "Tool registered",
        &b,
        Some(lti_tool::registration::CLOSE_SCRIPT),
    )
}

fn failure(headers: &HeaderMap, e: &RegistrationError) -> Response {
    let status = e.http_status();
    if lti_tool::web::wants_json(headers) {
        let mut body = serde_json::json!({"error": e.code(), "message": e.to_string()});
        if let RegistrationError::Refused {
            error, description, ..
        } = e
        {
            body["platform_error"] = serde_json::json!(error);
            body["platform_error_description"] = serde_json::json!(description);
        }
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return resp;
    }
    let what = match e {
        RegistrationError::Refused { .. } => "The platform refused the registration.",
        RegistrationError::TokenRejected { .. } => {
            "The platform refused the registration token (it may have expired or been used): start the registration again from the platform."
        }
        RegistrationError::IssuerNotAllowed { .. } => {
            "This tool does not accept registrations from this platform (dynamic_registration.allowed_issuers)."
        }
        RegistrationError::IssuerMismatch { .. }
        | RegistrationError::ConfigurationIncomplete { .. }
        | RegistrationError::InvalidUrl { .. }
        | RegistrationError::InvalidDocument { .. } => {
            "The platform's configuration did not pass the tool's checks."
        }
        _ => "The registration could not be completed.",
    };
    let mut b = format!(
        "<h1 class=\"no\">Registration failed</h1><p>{}</p><p>Error <code id=\"error-code\">{}</code></p><p id=\"error-message\">{}</p>",
        escape(what),
        escape(e.code()),
        escape(&e.to_string())
    );
    b.push_str("<p>Nothing was stored. Fix the cause and start the registration again from the platform.</p>");
    page(status, "Registration failed", &b, None)
}
