//! The Basic Outcomes sender of the grade outbox: delivers a stored
//! `replaceResult` once per attempt and classifies the answer, for the
//! worker in `lti-services` (`lti_services::OutboxWorker`), which schedules
//! retries.

use std::sync::Arc;

use async_trait::async_trait;
use http::header::RETRY_AFTER;
use lti_http::{HttpClient, parse_retry_after};
use lti_registry::{
    ConsumerStore, Delivery, GradeError, GradePayload, GradeRecord, GradeSender, GradeTarget,
    RegistryError,
};

use crate::error::Error;
use crate::oauth::Credentials;
use crate::outcomes::OutcomesClient;
use crate::pox::{CodeMajor, Operation, OutcomeResponse, ResultData, Score};
use crate::verify::OutcomeTarget;

/// Sends LTI 1.1 grades (`replaceResult`) from the outbox, signed with the
/// secret of the record's consumer from `consumers`, through an
/// [`OutcomesClient`] (whose egress policy decides which outcome service
/// origins may be called).
///
/// An answer is transient (retried) for transport failures, timeouts, 408,
/// 429 (with its `Retry-After`) and 5xx, and for a 2xx body that is not a
/// POX envelope; definitive (the grade fails with the consumer's words) for
/// any other status and for a `codeMajor` other than `success`.
pub struct BasicOutcomesSender<T> {
    client: OutcomesClient<T>,
    consumers: Arc<dyn ConsumerStore>,
}

impl<T> std::fmt::Debug for BasicOutcomesSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicOutcomesSender")
            .finish_non_exhaustive()
    }
}

impl<T: HttpClient> BasicOutcomesSender<T> {
    /// A sender over `client`, signing with the consumers in `consumers`.
    pub fn new(client: OutcomesClient<T>, consumers: Arc<dyn ConsumerStore>) -> Self {
        Self { client, consumers }
    }
}

fn rejected(code: &str, status: Option<u16>, message: impl AsRef<str>) -> Delivery {
    Delivery::Rejected {
        error: GradeError::new(code, status, message),
    }
}

fn retry(code: &str, status: Option<u16>, message: impl AsRef<str>) -> Delivery {
    Delivery::Retry {
        retry_after_secs: None,
        error: GradeError::new(code, status, message),
    }
}

/// Classifies a consumer's answer to `replaceResult`.
pub(crate) fn classify_answer(resp: &http::Response<bytes::Bytes>) -> Delivery {
    let status = resp.status().as_u16();
    let text = || {
        String::from_utf8_lossy(resp.body())
            .chars()
            .take(300)
            .collect::<String>()
    };
    if !resp.status().is_success() {
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
            .map(|d| d.as_secs());
        // A POX failure envelope says why; otherwise the body's start.
        let message = OutcomeResponse::parse(resp.body())
            .map(|r| r.description)
            .unwrap_or_else(|_| text());
        return Delivery::from_status(status, retry_after, "outcome_http_status", &message);
    }
    match OutcomeResponse::parse(resp.body()) {
        Ok(r) if r.code_major == CodeMajor::Success => Delivery::Sent,
        Ok(r) => rejected(
            "outcome_rejected",
            Some(status),
            format!("{}: {}", r.code_major.as_str(), r.description),
        ),
        Err(e) => retry("invalid_outcome_response", Some(status), e.to_string()),
    }
}

fn classify_error(e: &Error) -> Delivery {
    match e {
        Error::Http { source } => match source {
            lti_http::Error::Connect { .. }
            | lti_http::Error::Timeout { .. }
            | lti_http::Error::Transport { .. } => retry(source.code(), None, source.to_string()),
            _ => rejected(source.code(), None, source.to_string()),
        },
        other => rejected(other.code(), None, other.to_string()),
    }
}

#[async_trait]
impl<T: HttpClient + 'static> GradeSender for BasicOutcomesSender<T> {
    async fn deliver(&self, record: &GradeRecord) -> Delivery {
        let (
            GradeTarget::BasicOutcomes {
                consumer_key,
                service_url,
                sourced_id,
            },
            GradePayload::BasicOutcomes { score, text },
        ) = (&record.target, &record.payload)
        else {
            return rejected(
                "wrong_grade_kind",
                None,
                "the Basic Outcomes sender only sends 1.1 grades",
            );
        };
        let consumer = match self.consumers.get_consumer(consumer_key).await {
            Ok(c) => c,
            Err(e @ RegistryError::NotFound { .. }) => {
                return rejected("unknown_consumer", None, e.to_string());
            }
            Err(e) => return retry(e.code(), None, e.to_string()),
        };
        let score = match Score::new(*score) {
            Ok(s) => s,
            Err(e) => return rejected(e.code(), None, e.to_string()),
        };
        let credentials = Credentials::new(consumer.key.clone(), consumer.secret.expose());
        let target = OutcomeTarget {
            service_url: service_url.clone(),
            sourced_id: sourced_id.clone(),
        };
        let op = Operation::ReplaceResult {
            score,
            result_data: text.clone().map(ResultData::Text),
        };
        match self.client.send_raw(&target, &credentials, op).await {
            Ok(resp) => classify_answer(&resp),
            Err(e) => classify_error(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pox::OutcomeRequest;
    use bytes::Bytes;

    fn resp(status: u16, body: String, retry_after: Option<&str>) -> http::Response<Bytes> {
        let mut r = http::Response::new(Bytes::from(body));
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
        if let Some(v) = retry_after {
            r.headers_mut()
                .insert(RETRY_AFTER, http::HeaderValue::from_str(v).unwrap());
        }
        r
    }

    #[test]
    fn answers_are_sent_retried_or_rejected() {
        let req = OutcomeRequest::new("s", Operation::DeleteResult);
        let ok = OutcomeResponse::for_request(&req, CodeMajor::Success, "fine").to_xml();
        assert_eq!(classify_answer(&resp(200, ok, None)), Delivery::Sent);
        let no =
            OutcomeResponse::for_request(&req, CodeMajor::Failure, "unknown sourcedid").to_xml();
        match classify_answer(&resp(200, no, None)) {
            Delivery::Rejected { error } => {
                assert_eq!(error.code, "outcome_rejected");
                assert_eq!(error.message, "failure: unknown sourcedid");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify_answer(&resp(429, String::new(), Some("9"))),
            Delivery::Retry {
                retry_after_secs: Some(9),
                ..
            }
        ));
        assert!(matches!(
            classify_answer(&resp(502, "bad gateway".into(), None)),
            Delivery::Retry { .. }
        ));
        match classify_answer(&resp(401, "signature refused".into(), None)) {
            Delivery::Rejected { error } => {
                assert_eq!(error.status, Some(401));
                assert_eq!(error.message, "signature refused");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify_answer(&resp(200, "<html>proxy</html>".into(), None)),
            Delivery::Retry { .. }
        ));
    }
}
