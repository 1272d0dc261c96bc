//! Grades through the durable outbox: the worker `lti serve` runs, the
//! registration lookup its AGS sender uses, and the status table the
//! inspector shows.

use std::fmt::Write as _;
use std::sync::Arc;

use async_trait::async_trait;
use lti_http::{EgressPolicy, HttpClient};
use lti_registry::{GradeRecord, GradeStatus, GradeTarget, RegistryError, Store};
use lti_services::{
    AgsSender, LtiServices, OutboxWorker, ServiceRegistration, ServiceRegistrations,
};
use lti_tool::html::escape;

/// Records listed in a status table at most.
const STATUS_ROWS: usize = 200;

/// Finds an AGS grade's registration in the store; client assertions are
/// signed with the store's active tool key (followed at once after a
/// `lti keys rotate` promotion).
struct StoreRegistrations {
    store: Store,
    tool: Arc<lti_tool::Tool>,
}

#[async_trait]
impl ServiceRegistrations for StoreRegistrations {
    async fn service_registration(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<ServiceRegistration, RegistryError> {
        let reg = self
            .store
            .registrations
            .get_registration(issuer, client_id)
            .await?;
        // No active key (or an unreadable key store) is not the grade's
        // fault: report it as unavailable so the grade is retried.
        let key = self
            .tool
            .active_signing_key()
            .await
            .map_err(|e| RegistryError::unavailable("tool keys", e))?;
        Ok(ServiceRegistration::from_platform(&reg, key))
    }
}

/// The worker of `lti serve`: AGS scores through `services`, Basic Outcomes
/// signed with the consumers' secrets, both under the `[egress]` policy.
pub(crate) fn worker(
    store: &Store,
    services: &LtiServices,
    tool: &Arc<lti_tool::Tool>,
    http: &Arc<dyn HttpClient>,
    egress: &EgressPolicy,
) -> OutboxWorker {
    let registrations = Arc::new(StoreRegistrations {
        store: store.clone(),
        tool: Arc::clone(tool),
    });
    let outcomes = lti11::OutcomesClient::new(Arc::clone(http)).with_egress_policy(egress.clone());
    OutboxWorker::new(store.outbox.clone())
        .with_ags_sender(Arc::new(AgsSender::new(services.clone(), registrations)))
        .with_basic_outcomes_sender(Arc::new(lti11::BasicOutcomesSender::new(
            outcomes,
            store.consumers.clone(),
        )))
}

/// Whether `url` is on the origin of one of the launch's AGS URLs (the
/// access token only goes where the launch pointed).
pub(crate) fn on_launch_origin(claim_urls: &[Option<&str>], url: &str) -> bool {
    let found = lti_http::origin(url);
    found.is_some()
        && claim_urls
            .iter()
            .flatten()
            .any(|u| lti_http::origin(u) == found)
}

/// The status table of the outbox records `keep` selects, newest first:
/// target, version, status (with the last error's code, status and message).
pub(crate) async fn status_table(store: &Store, keep: impl Fn(&GradeTarget) -> bool) -> String {
    let records = match store.outbox.list(STATUS_ROWS).await {
        Ok(r) => r,
        Err(e) => {
            return format!(
                "<p class=\"no\" id=\"grades-error\">The grade outbox could not be read: <code>{}</code></p>",
                escape(e.code())
            );
        }
    };
    let mut b = String::from(
        "<section><h2>Grades sent through the outbox</h2><table id=\"grades\"><tr><th>Learner</th><th>Sent to</th><th>Version</th><th>Status</th><th>Attempts</th><th>Last error</th></tr>",
    );
    for r in records.iter().filter(|r| keep(&r.target)) {
        row(&mut b, r);
    }
    b.push_str("</table></section>");
    b
}

fn row(b: &mut String, r: &GradeRecord) {
    let status = match &r.status {
        GradeStatus::Sent => "<strong class=\"ok\">sent</strong>".to_owned(),
        GradeStatus::Failed => "<strong class=\"no\">failed</strong>".to_owned(),
        other => escape(other.as_str()),
    };
    let error = r
        .last_error
        .as_ref()
        .map(|e| {
            format!(
                "<code>{}</code>{} {}",
                escape(&e.code),
                e.status.map(|s| format!(" ({s})")).unwrap_or_default(),
                escape(&e.message)
            )
        })
        .unwrap_or_default();
    let _ = write!(
        b,
        "<tr id=\"grade-{}\" data-status=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}{}</td><td class=\"grade-status\">{status}</td><td>{}</td><td class=\"grade-error\">{error}</td></tr>",
        escape(&r.id),
        r.status.as_str(),
        escape(r.target.learner()),
        escape(r.target.url()),
        r.version,
        if r.sent_version > 0 && r.sent_version < r.version {
            format!(" (v{} sent)", r.sent_version)
        } else {
            String::new()
        },
        r.attempts
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_items_must_share_an_origin_with_the_launch() {
        let claim = [Some("https://lms.example/ctx/lineitems"), None];
        assert!(on_launch_origin(
            &claim,
            "https://lms.example/ctx/lineitems/4"
        ));
        assert!(!on_launch_origin(
            &claim,
            "https://evil.example/lineitems/4"
        ));
        assert!(!on_launch_origin(&claim, "not a url"));
        assert!(!on_launch_origin(&[None, None], "https://lms.example/x"));
    }
}
