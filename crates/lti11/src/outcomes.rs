//! Basic Outcomes over HTTP: the tool side (send `replaceResult`,
//! `readResult`, `deleteResult`), the score queue, and the consumer side
//! (the outcomes receiver that answers those calls).
//!
//! The HTTP halves are pure: [`build_outcome_request`] returns an
//! `http::Request<Bytes>` and [`parse_outcome_response`] reads an
//! `http::Response<Bytes>`; the async [`OutcomesClient`] only joins them over
//! any [`lti_http::HttpClient`].

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use lti_http::{EgressPolicy, HttpClient};

use crate::error::{Error, ErrorKind, Result, snippet};
use crate::oauth::{self, Credentials, OAuthParams, SignedRequest};
use crate::pox::{
    CodeMajor, Operation, OutcomeRequest, OutcomeResponse, PoxLimits, ResultData, Score,
};
use crate::verify::{OAuthVerifier, OutcomeTarget};

/// Content type of POX bodies.
pub const POX_CONTENT_TYPE: &str = "application/xml";

/// Builds a signed POX request: XML body, `oauth_body_hash` over it, OAuth
/// parameters in the `Authorization` header (HMAC-SHA1).
pub fn build_outcome_request(
    service_url: &str,
    credentials: &Credentials,
    request: &OutcomeRequest,
    timestamp: u64,
) -> Result<Request<Bytes>> {
    let body = request.to_xml();
    let mut oauth_params = OAuthParams::new(timestamp);
    oauth_params.body_hash = Some(oauth::body_hash(body.as_bytes()));
    let no_form: [(&str, &str); 0] = [];
    let protocol = oauth::sign_params("POST", service_url, &no_form, credentials, &oauth_params)?;
    Request::builder()
        .method("POST")
        .uri(service_url)
        .header(header::CONTENT_TYPE, POX_CONTENT_TYPE)
        .header(
            header::AUTHORIZATION,
            oauth::authorization_header(&protocol),
        )
        .body(Bytes::from(body))
        .map_err(|e| Error::InvalidUrl {
            found: snippet(&e.to_string()),
        })
}

/// Reads a POX response: a non-2xx status is [`Error::OutcomeHttpStatus`], a
/// codeMajor other than `success` is [`Error::OutcomeRejected`]; otherwise
/// the parsed envelope (with the score of a `readResult`).
pub fn parse_outcome_response(response: Response<Bytes>) -> Result<OutcomeResponse> {
    if !response.status().is_success() {
        return Err(Error::OutcomeHttpStatus {
            status: response.status().as_u16(),
        });
    }
    let parsed = OutcomeResponse::parse(response.body())?;
    if parsed.code_major != CodeMajor::Success {
        return Err(Error::OutcomeRejected {
            code_major: parsed.code_major.as_str().to_owned(),
            description: snippet(&parsed.description),
        });
    }
    Ok(parsed)
}

/// Sends Basic Outcomes requests for a tool.
///
/// The `lis_outcome_service_url` comes from the consumer's launch, and a
/// consumer has no registered URL to compare it with: the client only sends
/// to origins its [`EgressPolicy`] lists (none by default), so a consumer
/// cannot make the tool sign requests to another host. List the consumers'
/// origins with [`OutcomesClient::with_egress_policy`].
#[derive(Debug, Clone)]
pub struct OutcomesClient<T> {
    transport: T,
    clock: Arc<dyn lti_registry::Clock>,
    egress: EgressPolicy,
}

impl<T: HttpClient> OutcomesClient<T> {
    /// A client over a transport, using the system clock for timestamps and
    /// an egress policy that lists no origin (every send is refused with
    /// `egress_refused` until [`OutcomesClient::with_egress_policy`]).
    pub fn new(transport: T) -> Self {
        OutcomesClient {
            transport,
            clock: Arc::new(lti_registry::SystemClock),
            egress: EgressPolicy::new(),
        }
    }

    /// Sends only to outcome service URLs on the origins `policy` lists.
    pub fn with_egress_policy(mut self, policy: EgressPolicy) -> Self {
        self.egress = policy;
        self
    }

    /// Uses another clock for `oauth_timestamp`.
    pub fn with_clock(mut self, clock: Arc<dyn lti_registry::Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sends any operation and returns the success envelope.
    ///
    /// # Errors
    /// `egress_refused` (before anything is signed or sent) when the target's
    /// URL is not on an origin of the egress policy, and
    /// `private_address_refused` when the transport refuses its address;
    /// otherwise as [`parse_outcome_response`] and the transport.
    pub async fn send(
        &self,
        target: &OutcomeTarget,
        credentials: &Credentials,
        op: Operation,
    ) -> Result<OutcomeResponse> {
        let response = self.send_raw(target, credentials, op).await?;
        parse_outcome_response(response)
    }

    /// Signs and sends `op` once and returns the response as it came (any
    /// status), for callers that classify it themselves (the grade outbox).
    pub(crate) async fn send_raw(
        &self,
        target: &OutcomeTarget,
        credentials: &Credentials,
        op: Operation,
    ) -> Result<Response<Bytes>> {
        self.egress
            .check_url(&target.service_url, &[])
            .map_err(|source| Error::Egress { source })?;
        let request = OutcomeRequest::new(target.sourced_id.clone(), op);
        let ts = u64::try_from(self.clock.now()).unwrap_or(0);
        let http_request = build_outcome_request(&target.service_url, credentials, &request, ts)?;
        self.transport.send(http_request).await.map_err(|source| {
            if source.is_egress_refusal() {
                Error::Egress { source }
            } else {
                Error::Http { source }
            }
        })
    }

    /// `replaceResult`.
    pub async fn replace_result(
        &self,
        target: &OutcomeTarget,
        credentials: &Credentials,
        score: Score,
        result_data: Option<ResultData>,
    ) -> Result<()> {
        self.send(
            target,
            credentials,
            Operation::ReplaceResult { score, result_data },
        )
        .await
        .map(drop)
    }

    /// `readResult`: the score, or `None` when there is no grade.
    pub async fn read_result(
        &self,
        target: &OutcomeTarget,
        credentials: &Credentials,
    ) -> Result<Option<Score>> {
        Ok(self
            .send(target, credentials, Operation::ReadResult)
            .await?
            .score)
    }

    /// `deleteResult`.
    pub async fn delete_result(
        &self,
        target: &OutcomeTarget,
        credentials: &Credentials,
    ) -> Result<()> {
        self.send(target, credentials, Operation::DeleteResult)
            .await
            .map(drop)
    }
}

/// A score change waiting to be sent.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ScoreUpdate {
    /// `replaceResult`.
    Replace {
        /// The score.
        score: Score,
        /// Optional result data.
        result_data: Option<ResultData>,
    },
    /// `deleteResult`.
    Delete,
}

impl ScoreUpdate {
    /// The matching POX operation.
    pub fn operation(&self) -> Operation {
        match self {
            ScoreUpdate::Replace { score, result_data } => Operation::ReplaceResult {
                score: *score,
                result_data: result_data.clone(),
            },
            ScoreUpdate::Delete => Operation::DeleteResult,
        }
    }
}

/// What happened to a submitted score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// This call sent until the assignment's newest version was delivered.
    Sent {
        /// The version this call submitted.
        version: u64,
        /// The version delivered last (may be newer than `version`).
        delivered: u64,
    },
    /// Another call is sending for this assignment and will deliver this
    /// version (or a newer one) when its current send ends.
    HandedOff {
        /// The version this call submitted.
        version: u64,
    },
}

#[derive(Debug, Default)]
struct Slot {
    version: u64,
    sent_version: u64,
    latest: Option<ScoreUpdate>,
    in_flight: bool,
}

/// Score changes per graded assignment, sent so that only the latest is
/// delivered and an older score can never overwrite a newer one.
///
/// Each [`submit`](ScoreQueue::submit) bumps the assignment's version. At
/// most one send per assignment is in flight; a submission arriving during a
/// send hands its score to that sender, which sends the newest version once
/// its current send ends (intermediate versions are skipped). Sends for
/// different assignments run concurrently. The queue lives in one process;
/// several processes sending for one assignment need a store-side version
/// check in addition.
#[derive(Debug)]
pub struct ScoreQueue<K> {
    slots: Mutex<HashMap<K, Slot>>,
}

impl<K> Default for ScoreQueue<K> {
    fn default() -> Self {
        ScoreQueue {
            slots: Mutex::new(HashMap::new()),
        }
    }
}

impl<K> ScoreQueue<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct InFlight<'a, K: Hash + Eq> {
    queue: &'a ScoreQueue<K>,
    key: &'a K,
    armed: bool,
}

impl<K: Hash + Eq> Drop for InFlight<'_, K> {
    fn drop(&mut self) {
        if self.armed
            && let Some(slot) = self.queue.lock().get_mut(self.key)
        {
            slot.in_flight = false;
        }
    }
}

impl<K: Hash + Eq + Clone> ScoreQueue<K> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// The assignment's latest version and the last version delivered.
    pub fn versions(&self, key: &K) -> (u64, u64) {
        self.lock()
            .get(key)
            .map(|s| (s.version, s.sent_version))
            .unwrap_or((0, 0))
    }

    /// Records `update` as the assignment's newest score and, unless a send
    /// is already in flight, sends it with `send` (repeating while newer
    /// versions arrive). On a send error the newest score stays pending;
    /// [`resend`](ScoreQueue::resend) retries it.
    pub async fn submit<F, Fut>(&self, key: &K, update: ScoreUpdate, send: F) -> Result<Submitted>
    where
        F: Fn(ScoreUpdate) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let version = {
            let mut slots = self.lock();
            let slot = slots.entry(key.clone()).or_default();
            slot.version += 1;
            slot.latest = Some(update);
            if slot.in_flight {
                return Ok(Submitted::HandedOff {
                    version: slot.version,
                });
            }
            slot.in_flight = true;
            slot.version
        };
        let delivered = self.drain(key, send).await?;
        Ok(Submitted::Sent { version, delivered })
    }

    /// Sends the pending score again if it was not delivered.
    pub async fn resend<F, Fut>(&self, key: &K, send: F) -> Result<Submitted>
    where
        F: Fn(ScoreUpdate) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let version = {
            let mut slots = self.lock();
            let Some(slot) = slots.get_mut(key) else {
                return Err(Error::NotFound {
                    entity: "pending score",
                });
            };
            if slot.in_flight {
                return Ok(Submitted::HandedOff {
                    version: slot.version,
                });
            }
            if slot.sent_version >= slot.version {
                return Ok(Submitted::Sent {
                    version: slot.version,
                    delivered: slot.sent_version,
                });
            }
            slot.in_flight = true;
            slot.version
        };
        let delivered = self.drain(key, send).await?;
        Ok(Submitted::Sent { version, delivered })
    }

    async fn drain<F, Fut>(&self, key: &K, send: F) -> Result<u64>
    where
        F: Fn(ScoreUpdate) -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let mut guard = InFlight {
            queue: self,
            key,
            armed: true,
        };
        loop {
            let (version, update) = {
                let slots = self.lock();
                let slot = slots.get(key).ok_or(Error::NotFound {
                    entity: "pending score",
                })?;
                let update = slot.latest.clone().ok_or(Error::NotFound {
                    entity: "pending score",
                })?;
                (slot.version, update)
            };
            send(update).await?;
            let mut slots = self.lock();
            let Some(slot) = slots.get_mut(key) else {
                return Err(Error::NotFound {
                    entity: "pending score",
                });
            };
            slot.sent_version = version;
            if slot.version == version {
                slot.in_flight = false;
                guard.armed = false;
                return Ok(version);
            }
        }
    }
}

/// Why a grade book refused an operation (sent back as `failure`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GradeBookError {
    /// The sourcedid is unknown or does not belong to the calling tool.
    #[error("unknown lis_result_sourcedid")]
    UnknownSourcedId,
    /// The grade book refused for another reason (shown to the tool).
    #[error("{0}")]
    Refused(String),
}

/// The LMS grade book behind an outcomes receiver.
///
/// `consumer_key` is the key the tool signed with; implementations must check
/// that the sourcedid belongs to that tool.
#[async_trait]
pub trait GradeBook: Send + Sync {
    /// Stores a score (and optional result data).
    async fn replace_result(
        &self,
        consumer_key: &str,
        sourced_id: &str,
        score: Score,
        result_data: Option<&ResultData>,
    ) -> std::result::Result<(), GradeBookError>;
    /// Reads a score; `None` when there is no grade.
    async fn read_result(
        &self,
        consumer_key: &str,
        sourced_id: &str,
    ) -> std::result::Result<Option<Score>, GradeBookError>;
    /// Deletes a score.
    async fn delete_result(
        &self,
        consumer_key: &str,
        sourced_id: &str,
    ) -> std::result::Result<(), GradeBookError>;
}

/// Answers Basic Outcomes calls on the consumer (LMS) side: verifies the
/// OAuth signature and body hash, parses the POX request, calls the
/// [`GradeBook`], and renders the response envelope.
///
/// The verifier's consumer store holds the credentials the LMS gave its tools.
#[derive(Clone)]
pub struct OutcomesReceiver {
    verifier: OAuthVerifier,
    grade_book: Arc<dyn GradeBook>,
    limits: PoxLimits,
}

/// The receiver's answer: the HTTP response to send, and the error behind a
/// non-success answer (for logging).
#[derive(Debug)]
pub struct ReceiverAnswer {
    /// The response to send.
    pub response: Response<Bytes>,
    /// Why the request was not successful, if it was not.
    pub error: Option<Error>,
}

impl OutcomesReceiver {
    /// A receiver with default POX limits.
    pub fn new(verifier: OAuthVerifier, grade_book: Arc<dyn GradeBook>) -> Self {
        let limits = PoxLimits::default();
        OutcomesReceiver {
            verifier: verifier.with_max_body_bytes(limits.max_body_bytes),
            grade_book,
            limits,
        }
    }

    /// Handles one request.
    pub async fn handle(&self, req: &SignedRequest<'_>) -> ReceiverAnswer {
        let verified = match self.verifier.verify(req).await {
            Ok(v) => v,
            Err(e) => return answer_error(e, None),
        };
        let request = match OutcomeRequest::parse_with(req.body, &self.limits) {
            Ok(r) => r,
            Err(e @ Error::UnsupportedOperation { .. }) => {
                let msg_ref = crate::pox::message_identifier_of(req.body, &self.limits);
                let resp =
                    OutcomeResponse::unparsed(CodeMajor::Unsupported, e.to_string(), msg_ref);
                return ReceiverAnswer {
                    response: xml_response(StatusCode::OK, &resp),
                    error: Some(e),
                };
            }
            Err(e) => {
                return answer_error(e, crate::pox::message_identifier_of(req.body, &self.limits));
            }
        };
        let key = verified.consumer_key();
        let gb = &self.grade_book;
        let outcome = match &request.operation {
            Operation::ReplaceResult { score, result_data } => gb
                .replace_result(key, &request.sourced_id, *score, result_data.as_ref())
                .await
                .map(|()| {
                    (
                        None,
                        format!("Score for {} is now {score}", request.sourced_id),
                    )
                }),
            Operation::ReadResult => gb
                .read_result(key, &request.sourced_id)
                .await
                .map(|s| (s, format!("Result read for {}", request.sourced_id))),
            Operation::DeleteResult => gb
                .delete_result(key, &request.sourced_id)
                .await
                .map(|()| (None, format!("Score for {} deleted", request.sourced_id))),
        };
        match outcome {
            Ok((score, description)) => {
                let mut resp =
                    OutcomeResponse::for_request(&request, CodeMajor::Success, description);
                resp.score = score;
                ReceiverAnswer {
                    response: xml_response(StatusCode::OK, &resp),
                    error: None,
                }
            }
            Err(e) => {
                let resp =
                    OutcomeResponse::for_request(&request, CodeMajor::Failure, e.to_string());
                ReceiverAnswer {
                    response: xml_response(StatusCode::OK, &resp),
                    error: Some(Error::OutcomeRejected {
                        code_major: "failure".to_owned(),
                        description: e.to_string(),
                    }),
                }
            }
        }
    }
}

fn answer_error(e: Error, message_ref: Option<String>) -> ReceiverAnswer {
    let status = match e.kind() {
        ErrorKind::Authentication | ErrorKind::Protocol | ErrorKind::Input | ErrorKind::Store => {
            e.status()
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let resp = OutcomeResponse::unparsed(CodeMajor::Failure, e.to_string(), message_ref);
    ReceiverAnswer {
        response: xml_response(status, &resp),
        error: Some(e),
    }
}

fn xml_response(status: StatusCode, body: &OutcomeResponse) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(body.to_xml()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_request_carries_a_matching_body_hash_and_header() {
        let creds = Credentials::new("k", "s");
        let req = OutcomeRequest::new("sid", Operation::DeleteResult);
        let http_req = build_outcome_request(
            "https://lms.example/outcomes?x=1",
            &creds,
            &req,
            1_700_000_000,
        )
        .unwrap();
        let auth = http_req.headers()[header::AUTHORIZATION].to_str().unwrap();
        let params = oauth::parse_authorization_header(auth).unwrap();
        let bh = params.iter().find(|(k, _)| k == "oauth_body_hash").unwrap();
        assert_eq!(bh.1, oauth::body_hash(http_req.body()));
        assert_eq!(http_req.headers()[header::CONTENT_TYPE], POX_CONTENT_TYPE);
    }

    #[test]
    fn non_success_responses_are_typed_errors() {
        let mut bad = Response::new(Bytes::new());
        *bad.status_mut() = StatusCode::UNAUTHORIZED;
        assert_eq!(
            parse_outcome_response(bad).unwrap_err().code(),
            "outcome_http_status"
        );
        let req = OutcomeRequest::new("s", Operation::ReadResult);
        let body = OutcomeResponse::for_request(&req, CodeMajor::Failure, "nope").to_xml();
        let err = parse_outcome_response(Response::new(Bytes::from(body))).unwrap_err();
        assert_eq!(err.code(), "outcome_rejected");
    }
}
