//! Verification of incoming OAuth 1.0a signed requests (launches and
//! outcomes calls), and the tool provider's typed launch.

use std::sync::{Arc, OnceLock};

use lti_message::Roles;
use lti_message::lti11::{ACCEPTED_VERSIONS, BASIC_LAUNCH_REQUEST, Lti11LaunchParams};
use lti_registry::{Clock, Consumer, ConsumerStore, OAuth1NonceStore, RegistryError, SystemClock};

use crate::error::{Error, Result, snippet};
use crate::oauth::{CollectedRequest, SignatureMethod, SignedRequest};

/// Default accepted clock difference either side of `now`: 5 minutes.
pub const DEFAULT_TIMESTAMP_WINDOW_SECS: u64 = 300;
/// Default cap on a signed request body: 256 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// Verifies OAuth 1.0a signed requests against a consumer store and a nonce
/// store.
///
/// Checks, in order: body size; parameter collection and input hygiene
/// (consumer key, nonce, timestamp shape, signature method, `oauth_version`)
/// — all before any store is consulted; the timestamp window; the consumer
/// key (store lookup); the signature (constant time); the body hash; and
/// finally the nonce (recorded only for otherwise valid requests, so forged
/// requests cannot burn nonces). Cheap to clone; share one per process.
#[derive(Clone)]
pub struct OAuthVerifier {
    consumers: Arc<dyn ConsumerStore>,
    nonces: Arc<dyn OAuth1NonceStore>,
    clock: Arc<dyn Clock>,
    window_secs: u64,
    methods: Vec<SignatureMethod>,
    max_body_bytes: usize,
}

impl std::fmt::Debug for OAuthVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthVerifier")
            .field("window_secs", &self.window_secs)
            .field("methods", &self.methods)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl OAuthVerifier {
    /// A verifier with secure defaults: ±5 minutes, HMAC-SHA1 and
    /// HMAC-SHA256, 256 KiB bodies, the system clock.
    pub fn new(consumers: Arc<dyn ConsumerStore>, nonces: Arc<dyn OAuth1NonceStore>) -> Self {
        OAuthVerifier {
            consumers,
            nonces,
            clock: Arc::new(SystemClock),
            window_secs: DEFAULT_TIMESTAMP_WINDOW_SECS,
            methods: vec![SignatureMethod::HmacSha1, SignatureMethod::HmacSha256],
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Uses another clock (tests inject a fixed one).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the accepted timestamp window either side of now.
    pub fn with_timestamp_window(mut self, secs: u64) -> Self {
        self.window_secs = secs;
        self
    }

    /// Restricts the accepted signature methods. An empty list accepts nothing.
    pub fn with_signature_methods(mut self, methods: &[SignatureMethod]) -> Self {
        self.methods = methods.to_vec();
        self
    }

    /// Sets the body size cap.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The consumer store in use.
    pub fn consumers(&self) -> &Arc<dyn ConsumerStore> {
        &self.consumers
    }

    /// Verifies a signed request and returns the consumer and the
    /// parameters it carried.
    pub async fn verify(&self, req: &SignedRequest<'_>) -> Result<VerifiedRequest> {
        let (consumer, collected) = self.authenticate(req).await?;
        let (form, query) = collected.owned_params();
        Ok(VerifiedRequest {
            consumer,
            form,
            query,
            timestamp: collected.timestamp(),
        })
    }

    /// Every check of [`OAuthVerifier::verify`]; the parameters stay
    /// borrowed from the request.
    async fn authenticate<'a>(
        &self,
        req: &SignedRequest<'a>,
    ) -> Result<(Consumer, CollectedRequest<'a>)> {
        if req.body.len() > self.max_body_bytes {
            return Err(Error::BodyTooLarge {
                limit: self.max_body_bytes,
                found: req.body.len(),
            });
        }
        let collected = req.collect()?;
        if !self.methods.contains(&collected.signature_method()) {
            return Err(Error::UnsupportedSignatureMethod {
                expected: self
                    .methods
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                found: collected.signature_method().as_str().to_owned(),
            });
        }
        let now = u64::try_from(self.clock.now()).unwrap_or(0);
        let ts = collected.timestamp();
        if ts.saturating_add(self.window_secs) < now {
            return Err(Error::TimestampTooOld {
                found: ts,
                now,
                window_secs: self.window_secs,
            });
        }
        if ts > now.saturating_add(self.window_secs) {
            return Err(Error::TimestampTooNew {
                found: ts,
                now,
                window_secs: self.window_secs,
            });
        }
        let consumer = match self.consumers.get_consumer(collected.consumer_key()).await {
            Ok(c) => c,
            Err(RegistryError::NotFound { .. }) => return Err(Error::UnknownConsumer),
            Err(source) => return Err(Error::Store { source }),
        };
        collected.check_signature(&consumer.secret)?;
        collected.check_body_hash(req.body, req.content_type)?;
        // Remember the nonce for as long as its timestamp stays acceptable.
        let expires_at = i64::try_from(ts.saturating_add(self.window_secs).saturating_add(1))
            .unwrap_or(i64::MAX);
        match self
            .nonces
            .record_oauth1_nonce(collected.consumer_key(), collected.nonce(), expires_at)
            .await
        {
            Ok(()) => {}
            Err(RegistryError::NonceReplayed { .. }) => return Err(Error::NonceReplayed),
            Err(source) => return Err(Error::Store { source }),
        }
        Ok((consumer, collected))
    }
}

/// A request whose signature, timestamp, body hash and nonce were verified.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    consumer: Consumer,
    form: Vec<(String, String)>,
    query: Vec<(String, String)>,
    timestamp: u64,
}

impl VerifiedRequest {
    /// The consumer that signed the request.
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }
    /// The consumer key.
    pub fn consumer_key(&self) -> &str {
        &self.consumer.key
    }
    /// The form-body parameters (without `oauth_*`), in arrival order.
    pub fn form(&self) -> &[(String, String)] {
        &self.form
    }
    /// The query-string parameters of the URL.
    pub fn query(&self) -> &[(String, String)] {
        &self.query
    }
    /// `oauth_timestamp`.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }
}

/// Verifies `basic-lti-launch-request` launches (the tool provider side).
#[derive(Debug, Clone)]
pub struct LaunchVerifier {
    oauth: OAuthVerifier,
    record_instance_guid: bool,
}

impl LaunchVerifier {
    /// A launch verifier over an OAuth verifier.
    pub fn new(oauth: OAuthVerifier) -> Self {
        LaunchVerifier {
            oauth,
            record_instance_guid: true,
        }
    }

    /// The consumer store the verifier reads.
    pub(crate) fn consumers(&self) -> &Arc<dyn ConsumerStore> {
        &self.oauth.consumers
    }

    /// Do not record `tool_consumer_instance_guid` on first sight (recorded by default).
    pub fn without_instance_guid_recording(mut self) -> Self {
        self.record_instance_guid = false;
        self
    }

    /// Verifies a launch: authentication first (see [`OAuthVerifier`]), then
    /// the protocol: `lti_message_type` must be `basic-lti-launch-request`,
    /// `lti_version` one of `LTI-1p0`, `LTI-1p1`, `LTI-1p2`, and
    /// `resource_link_id` present. The consumer's instance GUID is recorded
    /// the first time it is seen.
    pub async fn verify(&self, req: &SignedRequest<'_>) -> Result<Launch> {
        let (mut consumer, collected) = self.oauth.authenticate(req).await?;
        let params = FormParams::from_pairs(collected.form_params());
        match params.get("lti_message_type") {
            None => {
                return Err(Error::MissingParameter {
                    name: "lti_message_type",
                });
            }
            Some(BASIC_LAUNCH_REQUEST) => {}
            Some(other) => {
                return Err(Error::WrongMessageType {
                    found: snippet(other),
                });
            }
        }
        match params.get("lti_version") {
            None => {
                return Err(Error::MissingParameter {
                    name: "lti_version",
                });
            }
            Some(v) if ACCEPTED_VERSIONS.contains(&v) => {}
            Some(other) => {
                return Err(Error::UnsupportedLtiVersion {
                    found: snippet(other),
                });
            }
        }
        if params.get("resource_link_id").is_none() {
            return Err(Error::MissingParameter {
                name: "resource_link_id",
            });
        }
        if self.record_instance_guid
            && consumer.instance_guid.is_none()
            && let Some(guid) = params.get("tool_consumer_instance_guid")
        {
            match self
                .oauth
                .consumers
                .record_instance_guid(&consumer.key, guid)
                .await
            {
                Ok(updated) => consumer = updated,
                Err(e) => {
                    tracing::warn!(code = "instance_guid_not_recorded", error = %e, "could not record tool_consumer_instance_guid")
                }
            }
        }
        Ok(Launch {
            consumer,
            params,
            typed: OnceLock::new(),
            timestamp: collected.timestamp(),
        })
    }
}

/// The launch parameters in arrival order, every name and value in one
/// buffer (two allocations per launch instead of two per parameter).
#[derive(Clone, Default)]
struct FormParams {
    text: String,
    /// `(name end, value end)` in `text`; each name starts where the
    /// previous value ended.
    ends: Vec<(usize, usize)>,
}

impl FormParams {
    fn from_pairs<'p>(pairs: impl Iterator<Item = (&'p str, &'p str)> + Clone) -> Self {
        let (count, len) = pairs
            .clone()
            .fold((0, 0), |(n, len), (k, v)| (n + 1, len + k.len() + v.len()));
        let mut params = FormParams {
            text: String::with_capacity(len),
            ends: Vec::with_capacity(count),
        };
        for (k, v) in pairs {
            params.text.push_str(k);
            let name_end = params.text.len();
            params.text.push_str(v);
            params.ends.push((name_end, params.text.len()));
        }
        params
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|&(_, value_end)| value_end));
        starts
            .zip(&self.ends)
            .map(|(start, &(name_end, value_end))| {
                (
                    self.text.get(start..name_end).unwrap_or_default(),
                    self.text.get(name_end..value_end).unwrap_or_default(),
                )
            })
    }

    /// The first value sent for `name`; empty values count as absent (as
    /// in [`Lti11LaunchParams::get`]).
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
    }
}

impl std::fmt::Debug for FormParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A verified LTI 1.0/1.1 launch. The only way to obtain one is
/// [`LaunchVerifier::verify`].
#[derive(Debug, Clone)]
pub struct Launch {
    consumer: Consumer,
    params: FormParams,
    /// The typed view, built on first use of [`Launch::params`].
    typed: OnceLock<Lti11LaunchParams>,
    timestamp: u64,
}

/// Where to send grades for a launch (`lis_outcome_service_url` + `lis_result_sourcedid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeTarget {
    /// `lis_outcome_service_url`.
    pub service_url: String,
    /// `lis_result_sourcedid`.
    pub sourced_id: String,
}

impl Launch {
    /// The consumer that signed the launch.
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
    }
    /// The consumer key.
    pub fn consumer_key(&self) -> &str {
        &self.consumer.key
    }
    /// All launch parameters (typed view from `lti-message`, built on
    /// first use).
    pub fn params(&self) -> &Lti11LaunchParams {
        self.typed
            .get_or_init(|| Lti11LaunchParams::from_pairs(self.params.iter()))
    }
    /// One launch parameter: the first value sent for `name`; empty values
    /// count as absent (as in [`Lti11LaunchParams::get`]). Does not build
    /// the typed view.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }
    /// `resource_link_id` (always present).
    pub fn resource_link_id(&self) -> &str {
        self.params.get("resource_link_id").unwrap_or_default()
    }
    /// `lti_version`.
    pub fn lti_version(&self) -> &str {
        self.params.get("lti_version").unwrap_or_default()
    }
    /// `user_id`, if sent (anonymous launches have none).
    pub fn user_id(&self) -> Option<&str> {
        self.params.get("user_id")
    }
    /// `context_id`, if sent.
    pub fn context_id(&self) -> Option<&str> {
        self.params.get("context_id")
    }
    /// The parsed roles.
    pub fn roles(&self) -> Roles {
        self.params
            .get("roles")
            .map(Roles::from_lti11_param)
            .unwrap_or_default()
    }
    /// The outcome service target, when the consumer allows grade pass-back.
    pub fn outcome_target(&self) -> Option<OutcomeTarget> {
        Some(OutcomeTarget {
            service_url: self.params.get("lis_outcome_service_url")?.to_owned(),
            sourced_id: self.params.get("lis_result_sourcedid")?.to_owned(),
        })
    }
    /// `oauth_timestamp` of the launch.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The parameters in arrival order (for keeping a verified launch
    /// server-side, see [`Launch::restore`]).
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.params.iter()
    }

    /// A launch verified earlier and kept server-side by this crate (the
    /// provider flow's visits), with its consumer as stored now.
    pub(crate) fn restore<'p>(
        consumer: Consumer,
        pairs: impl Iterator<Item = (&'p str, &'p str)> + Clone,
        timestamp: u64,
    ) -> Launch {
        Launch {
            consumer,
            params: FormParams::from_pairs(pairs),
            typed: OnceLock::new(),
            timestamp,
        }
    }
}
