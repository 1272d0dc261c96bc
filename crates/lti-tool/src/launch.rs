//! Step 3: the launch (the platform's form POST of `id_token` and `state`),
//! validated in the order of the spec digest §1.6, failing closed.

use http::StatusCode;
use lti_jose::{FixedClock, JwkSet, TimeValidation};
use std::sync::{Arc, OnceLock};

use lti_message::{
    Classified, DeepLinkingResponseBuilder, IdTokenClaims, LtiMessage, MessageError, Roles,
    ScannedClaims, ValidationOptions,
};
use lti_registry::{
    KeySource as RegistrationKeys, LaunchState, PlatformRegistration, RegistryError,
};
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

use crate::error::{ToolClaim, ToolError, clip};
use crate::login::STORAGE_TARGET_KEY;
use crate::quirks::Quirks;
use crate::request::{Params, ToolRequest, ToolResponse};
use crate::tool::{LAUNCH_ID_PARAM, Tool};
use crate::urls::{append_query, append_raw_query, query_without, replace_query, same_endpoint};

/// Format tag of a launch saved in the launch-data store.
const SAVED_FORMAT: &str = "lti-tool/launch/v1";

/// A verified LTI 1.3 launch, saved in the launch-data store under its launch id.
///
/// The only ways to obtain one are [`Tool::launch`] (which ran every check of the
/// spec digest §1.6: state and its cookie, signature, issuer, audience, azp,
/// algorithm, kid, times, nonce, deployment, version, message type and the
/// message's required claims), [`Tool::save_verified`] (which saves a
/// [`VerifiedIdToken`], for an application that bound the state itself) and
/// [`Tool::load_launch`] (which reads back a saved launch; see there why that is
/// trusted). Its fields are private;
/// the launch's contents are read through [`VerifiedIdToken`]'s methods, which a
/// `Launch` dereferences to.
#[derive(Debug, Clone)]
pub struct Launch {
    token: VerifiedIdToken,
    launch_id: String,
    binding: Option<StateBinding>,
    /// The local account the application's [`crate::AccountLinker`] linked.
    account: Option<String>,
}

/// How a launch's login state was bound to the browser that started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StateBinding {
    /// By the state cookie ([`Tool::launch`], or [`Tool::handle_launch`] when the
    /// cookie came back).
    Cookie,
    /// By the platform's postMessage storage, confirmed by the check page
    /// ([`Tool::handle_launch`] without the cookie).
    PlatformStorage,
    /// By the application, which saved the launch with [`Tool::save_verified`].
    Application,
}

impl StateBinding {
    /// `cookie`, `platform_storage` or `application`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cookie => "cookie",
            Self::PlatformStorage => "platform_storage",
            Self::Application => "application",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Cookie, Self::PlatformStorage, Self::Application]
            .into_iter()
            .find(|b| b.as_str() == text)
    }
}

impl std::ops::Deref for Launch {
    type Target = VerifiedIdToken;
    fn deref(&self) -> &VerifiedIdToken {
        &self.token
    }
}

impl Launch {
    /// The `303` to [`Tool::post_launch_location`].
    pub(crate) fn redirect(&self, tool: &Tool) -> Result<ToolResponse, ToolError> {
        let location = tool.post_launch_location(&self.target_link_uri, &self.launch_id);
        ToolResponse::redirect(StatusCode::SEE_OTHER, &location)
    }

    /// The opaque id the launch is saved under in the launch-data store.
    pub fn launch_id(&self) -> &str {
        &self.launch_id
    }

    /// How the login's state was bound to this browser; `None` for a launch
    /// saved by an earlier version, which did not record it.
    pub fn state_binding(&self) -> Option<StateBinding> {
        self.binding
    }

    /// The local account id the application's [`crate::AccountLinker`]
    /// returned for this launch (kept with the saved launch); `None` without
    /// a linker.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// The verified id_token, without the launch id.
    pub fn into_verified(self) -> VerifiedIdToken {
        self.token
    }
}

/// An id_token verified against the login state it answers: every check of
/// [`Tool::launch`] except the state cookie and consuming the state, which
/// [`Tool::verify_id_token`]'s caller has done. Obtained only from
/// [`Tool::verify_id_token`] (and, inside a [`Launch`], from [`Tool::launch`] and
/// [`Tool::load_launch`]); its fields are private.
#[derive(Debug, Clone)]
pub struct VerifiedIdToken {
    message: Typed,
    registration: Arc<PlatformRegistration>,
    target_link_uri: String,
    storage_target: Option<String>,
    /// The verified payload exactly as the platform signed it (JSON text).
    payload_json: String,
}

/// The typed message of a verified token: decoded during validation, or (when
/// the claims were validated by [`IdTokenClaims::scan`]) on first use.
#[derive(Debug, Clone)]
enum Typed {
    Decoded(LtiMessage),
    Deferred {
        classified: Classified,
        message: OnceLock<LtiMessage>,
    },
}

impl VerifiedIdToken {
    /// The validated message (resource link, deep linking, submission review, ...).
    ///
    /// A launch validated without building its claims decodes them here, once
    /// (validation already accepted them; see [`LtiMessage::decode_classified`]).
    pub fn message(&self) -> &LtiMessage {
        match &self.message {
            Typed::Decoded(message) => message,
            Typed::Deferred {
                classified,
                message,
            } => message
                .get_or_init(|| LtiMessage::decode_classified(&self.payload_json, *classified)),
        }
    }

    /// The registration of the platform that sent it.
    pub fn registration(&self) -> &PlatformRegistration {
        &self.registration
    }

    /// The platform's issuer.
    pub fn issuer(&self) -> &str {
        &self.registration.issuer
    }

    /// The tool's client id on that platform.
    pub fn client_id(&self) -> &str {
        &self.registration.client_id
    }

    /// The deployment id (checked against the registration).
    pub fn deployment_id(&self) -> &str {
        self.message().deployment_id()
    }

    /// The user id; `None` for an (explicitly allowed) anonymous launch.
    pub fn sub(&self) -> Option<&str> {
        self.message().sub()
    }

    /// The user's roles.
    pub fn roles(&self) -> &Roles {
        self.message().roles()
    }

    /// The typed claims.
    pub fn claims(&self) -> &IdTokenClaims {
        self.message().claims()
    }

    /// Every claim of the id_token as JSON (unknown claims included).
    pub fn raw_claims(&self) -> Map<String, Value> {
        self.message().claims().to_map()
    }

    /// The login's `target_link_uri` (one of the tool's URLs; the id_token's claim,
    /// when present, equals it).
    pub fn target_link_uri(&self) -> &str {
        &self.target_link_uri
    }

    /// The login's `lti_storage_target` (the platform offers postMessage storage).
    pub fn lti_storage_target(&self) -> Option<&str> {
        self.storage_target.as_deref()
    }

    /// Whether this is an `LtiDeepLinkingRequest`.
    pub fn is_deep_linking(&self) -> bool {
        match &self.message {
            Typed::Decoded(message) => matches!(message, LtiMessage::DeepLinking(_)),
            Typed::Deferred { classified, .. } => classified.is_deep_linking(),
        }
    }

    /// A deep-linking response builder for this request (content items are checked
    /// against the request's settings as they are added); sign and deliver it with
    /// [`Tool::deep_link_response`].
    ///
    /// # Errors
    /// [`ToolError::NotDeepLinking`] for other message types.
    pub fn deep_linking_response(&self) -> Result<DeepLinkingResponseBuilder, ToolError> {
        match self.message() {
            LtiMessage::DeepLinking(dl) => Ok(DeepLinkingResponseBuilder::new(
                dl.settings(),
                dl.deployment_id(),
            )),
            other => Err(ToolError::NotDeepLinking {
                found: other.message_type().to_owned(),
            }),
        }
    }

    /// The verified id_token payload as the platform signed it (JSON text).
    pub fn payload_json(&self) -> &str {
        &self.payload_json
    }

    /// The launch-data record in `format` ([`SAVED_FORMAT`] with how the state was
    /// bound, or the pending format of a launch awaiting its platform-storage
    /// check, not bound yet): the payload is kept as the signed JSON text, so
    /// saving costs no re-serialization of the claims.
    pub(crate) fn to_record(
        &self,
        format: &str,
        binding: Option<StateBinding>,
        personal: crate::account::PersonalData,
    ) -> Value {
        json!({
            "format": format,
            "state_binding": binding.map(StateBinding::as_str),
            "issuer": self.registration.issuer,
            "client_id": self.registration.client_id,
            "target_link_uri": self.target_link_uri,
            "lti_storage_target": self.storage_target,
            "payload": personal.apply(&self.payload_json),
        })
    }
}

/// The parts of a verified token the later steps need.
struct Verified {
    /// The payload as signed (checked to be UTF-8 JSON text).
    payload_json: String,
    registration: Arc<PlatformRegistration>,
    /// The payload decoded into typed claims, or why that failed.
    typed: Result<Box<IdTokenClaims>, MessageError>,
}

/// The claims needed before the signature can be checked (to find the
/// registration and its keys), decoded without building the whole claim tree.
/// `None` stands for absent or `null`, as in the full decoding.
#[derive(Default)]
struct Routing {
    iss: Option<Value>,
    aud: Option<Value>,
    azp: Option<Value>,
}

impl<'de> serde::Deserialize<'de> for Routing {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Routing;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object of claims")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Routing, A::Error> {
                let mut r = Routing::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match &*key {
                        "iss" => &mut r.iss,
                        "aud" => &mut r.aud,
                        "azp" => &mut r.azp,
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(serde::de::Error::custom(format_args!(
                            "expected unique claim names, found {key:?} twice"
                        )));
                    }
                    *slot = Some(map.next_value::<Value>()?).filter(|v| !v.is_null());
                }
                Ok(r)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// `iss`, `aud` and `azp` as steps 3–4 read them, each with its own error.
struct RouteClaims<'c> {
    iss: Result<&'c str, ToolError>,
    aud: Result<Vec<&'c str>, ToolError>,
    azp: Result<Option<&'c str>, ToolError>,
}

impl<'c> RouteClaims<'c> {
    /// From a scan (which only succeeds when every type is right).
    fn from_scanned(claims: &'c ScannedClaims<'_>) -> Self {
        RouteClaims {
            iss: match claims.iss() {
                Some(iss) if !iss.is_empty() => Ok(iss),
                _ => Err(ToolError::MissingClaim(ToolClaim::Iss)),
            },
            aud: claims.aud().ok_or(ToolError::MissingClaim(ToolClaim::Aud)),
            azp: Ok(claims.azp()),
        }
    }

    /// From the typed claims (which only decode when every type is right).
    fn from_claims(claims: &'c IdTokenClaims) -> Self {
        RouteClaims {
            iss: match claims.iss.as_deref() {
                Some(iss) if !iss.is_empty() => Ok(iss),
                _ => Err(ToolError::MissingClaim(ToolClaim::Iss)),
            },
            aud: match &claims.aud {
                Some(aud) => Ok(aud.as_slice().iter().map(String::as_str).collect()),
                None => Err(ToolError::MissingClaim(ToolClaim::Aud)),
            },
            azp: Ok(claims.azp.as_deref()),
        }
    }
}

impl Routing {
    /// The routing claims, naming each type error.
    fn route_claims(&self) -> RouteClaims<'_> {
        let aud_type = || invalid_type("aud", "a string or an array of strings");
        RouteClaims {
            iss: match &self.iss {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
                Some(Value::String(_)) | None => Err(ToolError::MissingClaim(ToolClaim::Iss)),
                Some(_) => Err(invalid_type("iss", "a string")),
            },
            aud: match &self.aud {
                Some(Value::String(a)) => Ok(vec![a.as_str()]),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| item.as_str().ok_or_else(aud_type))
                    .collect(),
                None => Err(ToolError::MissingClaim(ToolClaim::Aud)),
                Some(_) => Err(aud_type()),
            },
            azp: match &self.azp {
                None => Ok(None),
                Some(Value::String(a)) => Ok(Some(a.as_str())),
                Some(_) => Err(invalid_type("azp", "a string")),
            },
        }
    }
}

/// The claims checked after the signature, read from either decoding. The
/// deployment and target results are kept unchecked so each error surfaces at its
/// step of the checklist.
struct Checked<'c> {
    nonce: &'c str,
    exp: Option<i64>,
    deployment_id: Result<Option<&'c str>, ToolError>,
    target_link_uri: Result<Option<&'c str>, ToolError>,
}

impl<'c> Checked<'c> {
    /// From the full JSON tree (the path that names every type error).
    fn from_map(map: &'c Map<String, Value>) -> Result<Self, ToolError> {
        let nonce = match map.get("nonce") {
            Some(Value::String(n)) if !n.is_empty() => n.as_str(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(ToolError::MissingClaim(ToolClaim::Nonce));
            }
            Some(_) => return Err(invalid_type("nonce", "a string")),
        };
        let string = |uri: &str, claim: &'static str| match map.get(uri) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(invalid_type(claim, "a string")),
        };
        Ok(Checked {
            nonce,
            exp: map.get("exp").and_then(Value::as_i64),
            deployment_id: string(lti_message::uri::DEPLOYMENT_ID, "deployment_id"),
            target_link_uri: string(lti_message::uri::TARGET_LINK_URI, "target_link_uri"),
        })
    }

    /// From a scan (which only succeeds when every type is right).
    fn from_scanned(claims: &'c ScannedClaims<'_>) -> Result<Self, ToolError> {
        let nonce = match claims.nonce() {
            Some(n) if !n.is_empty() => n,
            _ => return Err(ToolError::MissingClaim(ToolClaim::Nonce)),
        };
        Ok(Checked {
            nonce,
            exp: claims.exp().and_then(|e| i64::try_from(e).ok()),
            deployment_id: Ok(claims.deployment_id()),
            target_link_uri: Ok(claims.target_link_uri()),
        })
    }

    /// From the typed claims (which only decode when every type is right).
    fn from_claims(claims: &'c IdTokenClaims) -> Result<Self, ToolError> {
        let nonce = match claims.nonce.as_deref() {
            Some(n) if !n.is_empty() => n,
            _ => return Err(ToolError::MissingClaim(ToolClaim::Nonce)),
        };
        Ok(Checked {
            nonce,
            exp: claims.exp,
            deployment_id: Ok(claims.deployment_id.as_deref()),
            target_link_uri: Ok(claims.target_link_uri.as_deref()),
        })
    }
}

/// The time claims as step 6 reads them.
enum Times<'c> {
    /// Present, non-negative integers (`nbf` optional): checked as numbers.
    Plain(lti_jose::NumericDates),
    /// Any other shape: the JSON tree's checks name each problem.
    Tree(&'c Value),
}

/// The time claims of typed claims, when they have the plain shape (present,
/// non-negative integers; `nbf` absent or a non-negative integer) whose checks need
/// nothing but the numbers; `None` sends the launch through the JSON-tree checks.
fn plain_dates(claims: &IdTokenClaims) -> Option<lti_jose::NumericDates> {
    let nbf = match claims.extra.get("nbf") {
        None => None,
        Some(v) => Some(v.as_u64()?),
    };
    Some(lti_jose::NumericDates {
        exp: Some(u64::try_from(claims.exp?).ok()?),
        nbf,
        iat: Some(u64::try_from(claims.iat?).ok()?),
    })
}

impl Tool {
    /// Where a verified launch sends the browser (the `Location` of the `303`
    /// that [`Tool::launch`] and [`Tool::handle_launch`] answer):
    ///
    /// - the login's `target_link_uri` with `lti_launch_id=<launch_id>`
    ///   appended;
    /// - but when that target is the redirect URI itself (same scheme, host,
    ///   port and path, ignoring a trailing slash and the query: an LMS with a
    ///   single "launch URL" field sends it as both), which only accepts the
    ///   platform's POST, the [landing URL](crate::ToolBuilder::landing_uri)
    ///   with the target's query parameters and `lti_launch_id=<launch_id>`.
    ///
    /// An `lti_launch_id` parameter already in the target's query is dropped,
    /// so the only launch id in the location is this launch's.
    pub fn post_launch_location(&self, target_link_uri: &str, launch_id: &str) -> String {
        let target_query = query_without(target_link_uri, LAUNCH_ID_PARAM);
        let location = if same_endpoint(target_link_uri, &self.inner.redirect_uri) {
            append_raw_query(&self.inner.landing_uri, &target_query)
        } else {
            replace_query(target_link_uri, &target_query)
        };
        append_query(&location, &[(LAUNCH_ID_PARAM, launch_id)])
    }

    /// The `303` to the landing URL that the launch route answers to a `GET`
    /// (a stale link or a platform that follows the redirect with a GET to the
    /// launch URL), carrying the request's `query` as it is.
    pub(crate) fn landing_redirect(&self, query: Option<&str>) -> Result<ToolResponse, ToolError> {
        let location = append_raw_query(&self.inner.landing_uri, query.unwrap_or(""));
        ToolResponse::redirect(StatusCode::SEE_OTHER, &location)
    }

    /// Validates a launch (the platform's POST of `id_token` and `state` to the
    /// redirect URI), saves it under a fresh launch id, and returns it with the
    /// response to send: a `303` redirect to the login's `target_link_uri` with
    /// `lti_launch_id=<id>` appended (or to the landing URL when the target is
    /// the redirect URI itself; see [`Tool::post_launch_location`]), clearing
    /// the state cookie. An application that
    /// renders its page directly must still send the response's `Set-Cookie`.
    /// The state must be bound by its cookie; [`Tool::handle_launch`] also
    /// completes launches bound through the platform's storage.
    ///
    /// Checks, in order, failing at the first problem: the state cookie and the
    /// single-use state (opened, then used up by recording its nonce in the nonce
    /// store); three-segment JWS within the size limit; registration by
    /// `iss` (and the login's client id); `aud` contains the client id and `azp`
    /// equals it when there are several audiences (or when present); the header's
    /// `alg` is on the registration's allow-list; `kid` present and known (the key
    /// source refetches once on an unknown kid); signature; `exp`/`nbf`/`iat` with
    /// leeway and the maximum age; `nonce` equal to the login's (the state's nonce,
    /// recorded as used when the state was taken);
    /// `deployment_id` equal to the login's (when it sent one) and accepted by the
    /// registration's deployment policy; `target_link_uri` claim equal to the
    /// login's; version, message type and per-type claims (`lti-message`).
    ///
    /// # Errors
    /// Every [`ToolError`] variant of the launch path; see [`ToolError::code`].
    pub async fn launch(&self, req: &ToolRequest) -> Result<(Launch, ToolResponse), ToolError> {
        let form = req.form()?;
        let (state, id_token) = launch_fields(&form)?;
        // 1. The state is bound to this browser and used once.
        let cookie_name = self.inner.cookies.check(req, state)?;
        self.launch_cookie_bound(state, id_token, &cookie_name)
            .await
    }

    /// The login state sealed into a `state` value by [`Tool::login`]: opened
    /// and checked (sealed by this tool, under this secret, for a login, not
    /// expired), without touching any store. Opening does not use the state up:
    /// [`Tool::verify_id_token`] does, by recording the nonce it carries.
    ///
    /// An application that binds the state itself (see [`Tool::verify_id_token`])
    /// opens it with this; the tool's own routes use the state once through the
    /// nonce store before verifying anything.
    ///
    /// # Errors
    /// [`ToolError::StateNotFound`]: forged, altered, sealed with another secret
    /// or for another purpose, or expired.
    pub fn open_login_state(&self, state: &str) -> Result<LaunchState, ToolError> {
        self.inner.sealer.open_login(state, self.now())
    }

    /// Takes a login's state once: opens it, then records its nonce in the nonce
    /// store (atomic across every instance sharing it) until the state's expiry
    /// plus the leeway. A state whose nonce is recorded already was used:
    /// [`ToolError::StateNotFound`], as for an unknown or expired one. The id_token
    /// must then carry that nonce ([`NonceUse::Claimed`]), so it is used once too.
    pub(crate) async fn consume_login_state(&self, state: &str) -> Result<LaunchState, ToolError> {
        let saved = self.open_login_state(state)?;
        let leeway = i64::try_from(self.inner.leeway_secs).unwrap_or(i64::MAX);
        let until = saved.expires_at.saturating_add(leeway).saturating_add(1);
        match self
            .inner
            .nonces
            .record_nonce(&saved.issuer, &saved.nonce, until)
            .await
        {
            Ok(()) => Ok(saved),
            Err(RegistryError::NonceReplayed { .. }) => Err(ToolError::StateNotFound),
            Err(e) => Err(ToolError::store(e)),
        }
    }

    /// [`Tool::launch`] after the state cookie checked out: consumes the state,
    /// verifies, saves, and redirects, clearing the cookie.
    pub(crate) async fn launch_cookie_bound(
        &self,
        state: &str,
        id_token: &str,
        cookie_name: &str,
    ) -> Result<(Launch, ToolResponse), ToolError> {
        let saved = self.consume_login_state(state).await?;
        let token = self.verify_for(id_token, &saved, NonceUse::Claimed).await?;
        let launch = self.save_bound(token, StateBinding::Cookie).await?;
        let response = launch
            .redirect(self)?
            .with_cookie(&self.inner.cookies.clear_cookie_named(cookie_name))?;
        Ok((launch, response))
    }

    /// Steps 2–12 of [`Tool::launch`] for an id_token whose login state the caller
    /// has opened ([`Tool::open_login_state`]) and bound to the browser:
    /// [`Tool::launch`] does both with the state cookie; an application that binds
    /// the state another way (its own session, or the platform's postMessage
    /// storage) calls this with the state it opened. The state is used up here:
    /// the nonce it carries is recorded, so a second call for the same state fails
    /// with [`ToolError::NonceReplayed`], and the tool's own routes refuse it
    /// (`state_not_found`). Nothing is saved: the result has no launch id.
    ///
    /// Checks, in order, failing at the first problem: three-segment JWS within the
    /// size limit; registration by `iss` (and the login's client id); `aud`/`azp`;
    /// the algorithm allow-list; `kid`; the signature; `exp`/`nbf`/`iat`; `nonce`
    /// equal to the login's and recorded as used (so a token is accepted once, even
    /// if a state were presented twice); deployment; `target_link_uri`; version,
    /// message type and per-type claims.
    ///
    /// The payload is read once by [`IdTokenClaims::scan`], which checks every
    /// claim's shape without building the claims; the checks read its values, and
    /// the typed message is decoded on the first [`VerifiedIdToken::message`] (or
    /// `claims`, `roles`, ...). A payload the scan leaves to the full decoding (it
    /// is malformed, or its time claims have a shape only the full checks judge:
    /// absent, `null`, negative, fractional) is decoded into [`IdTokenClaims`]
    /// instead; when that fails too, or the time claims have such a shape, the same
    /// checks run over the JSON tree, which names the first problem in checklist
    /// order; a payload that passes those but not the typed decoding (e.g. a claim
    /// given twice) is refused with the decoding's error.
    ///
    /// # Errors
    /// The [`ToolError`] variants of [`Tool::launch`] from the JWS on.
    pub async fn verify_id_token(
        &self,
        id_token: &str,
        saved: &LaunchState,
    ) -> Result<VerifiedIdToken, ToolError> {
        self.verify_for(id_token, saved, NonceUse::Record).await
    }

    /// [`Tool::verify_id_token`], recording the nonce at step 7 or not (when
    /// [`Tool::consume_login_state`] recorded it already).
    pub(crate) async fn verify_for(
        &self,
        id_token: &str,
        saved: &LaunchState,
        nonce_use: NonceUse,
    ) -> Result<VerifiedIdToken, ToolError> {
        let mut jws = self.parse_jws(id_token)?;
        // Unverified until the signature; owned from here, checked for UTF-8 once.
        let payload =
            match String::from_utf8(lti_jose::dangerous::take_unverified_payload(&mut jws)) {
                Ok(text) => match IdTokenClaims::scan(&text) {
                    // The scan reads only what the checks need.
                    Some(scanned) => {
                        let checked = self.verify_scanned(&jws, &scanned, saved, nonce_use).await;
                        drop(scanned);
                        let (registration, classified) = checked?;
                        return Ok(VerifiedIdToken {
                            message: Typed::Deferred {
                                classified,
                                message: OnceLock::new(),
                            },
                            registration,
                            target_link_uri: saved.target_link_uri.clone(),
                            storage_target: saved.extra.get(STORAGE_TARGET_KEY).cloned(),
                            // The signed text itself, no copy.
                            payload_json: text,
                        });
                    }
                    None => text.into_bytes(),
                },
                Err(not_utf8) => not_utf8.into_bytes(),
            };
        let Verified {
            payload_json,
            registration,
            typed,
        } = self.verify_token(&jws, payload, saved).await?;
        // 6. Times.
        let dates = typed.as_deref().ok().and_then(plain_dates);
        let message = match (typed, dates) {
            (Ok(claims), Some(dates)) => {
                self.check_times(&registration, Times::Plain(dates))?;
                self.check_claims(
                    Checked::from_claims(&claims)?,
                    saved,
                    &registration,
                    nonce_use,
                )
                .await?;
                // 9–11. Version, message type, roles, sub and per-type claims.
                LtiMessage::from_boxed_claims(claims, &self.inner.validation)?
            }
            (typed, _) => {
                let claims: Value =
                    serde_json::from_str(&payload_json).map_err(|e| ToolError::MalformedToken {
                        reason: format!(
                            "payload: expected a JSON object, found invalid JSON ({e})"
                        ),
                    })?;
                self.check_times(&registration, Times::Tree(&claims))?;
                let Value::Object(map) = claims else {
                    return Err(not_an_object());
                };
                self.check_claims(Checked::from_map(&map)?, saved, &registration, nonce_use)
                    .await?;
                let message = LtiMessage::from_map(map, &self.inner.validation)?;
                typed?;
                message
            }
        };

        Ok(VerifiedIdToken {
            message: Typed::Decoded(message),
            registration,
            target_link_uri: saved.target_link_uri.clone(),
            storage_target: saved.extra.get(STORAGE_TARGET_KEY).cloned(),
            payload_json,
        })
    }

    /// Steps 7, 8 and 12: nonce (issued with this state, then recorded as used
    /// unless the state's use recorded it), deployment (present, equal to the
    /// login's, accepted by the registration) and `target_link_uri` (equal to the
    /// login's).
    async fn check_claims(
        &self,
        checked: Checked<'_>,
        saved: &LaunchState,
        registration: &PlatformRegistration,
        nonce_use: NonceUse,
    ) -> Result<(), ToolError> {
        let now = self.now();
        if !bool::from(checked.nonce.as_bytes().ct_eq(saved.nonce.as_bytes())) {
            return Err(ToolError::NonceMismatch);
        }
        if nonce_use == NonceUse::Record {
            self.record_token_nonce(&checked, registration, now).await?;
        }
        self.check_deployment_and_target(checked, saved, registration, now)
            .await
    }

    /// Step 7's record: the token's nonce, until its `exp` plus the leeway.
    async fn record_token_nonce(
        &self,
        checked: &Checked<'_>,
        registration: &PlatformRegistration,
        now: i64,
    ) -> Result<(), ToolError> {
        let leeway = self.leeway_for(registration);
        let remember_until = checked
            .exp
            .unwrap_or(now)
            .max(now)
            .saturating_add(i64::try_from(leeway).unwrap_or(i64::MAX))
            .saturating_add(1);
        match self
            .inner
            .nonces
            .record_nonce(&registration.issuer, checked.nonce, remember_until)
            .await
        {
            Ok(()) => Ok(()),
            Err(RegistryError::NonceReplayed { .. }) => Err(ToolError::NonceReplayed),
            Err(e) => Err(ToolError::store(e)),
        }
    }

    /// Steps 8 and 12: deployment and `target_link_uri`.
    async fn check_deployment_and_target(
        &self,
        checked: Checked<'_>,
        saved: &LaunchState,
        registration: &PlatformRegistration,
        now: i64,
    ) -> Result<(), ToolError> {
        let deployment_id = match checked.deployment_id? {
            Some("") => return Err(ToolError::Message(MessageError::EmptyDeploymentId)),
            Some(d) => d,
            None => return Err(ToolError::MissingClaim(ToolClaim::DeploymentId)),
        };
        if deployment_id.chars().count() > lti_message::MAX_DEPLOYMENT_ID_LEN {
            return Err(ToolError::Message(MessageError::DeploymentIdTooLong {
                len: deployment_id.chars().count(),
            }));
        }
        if let Some(expected) = &saved.deployment_id
            && expected != deployment_id
        {
            return Err(ToolError::DeploymentMismatch {
                expected: clip(expected),
                found: clip(deployment_id),
            });
        }
        self.inner
            .registrations
            .check_deployment(registration, deployment_id, now)
            .await
            .map_err(ToolError::store)?;

        match checked.target_link_uri? {
            None => Ok(()),
            Some(t) if t == saved.target_link_uri => Ok(()),
            Some(t) => Err(ToolError::TargetLinkUriMismatch {
                expected: clip(&saved.target_link_uri),
                found: clip(t),
            }),
        }
    }

    /// Step 6: `exp`, `nbf` and `iat` with the registration's leeway, and the
    /// maximum token age.
    fn check_times(
        &self,
        registration: &PlatformRegistration,
        times: Times<'_>,
    ) -> Result<(), ToolError> {
        let validation = TimeValidation {
            leeway_secs: self.leeway_for(registration),
            max_age_secs: Some(self.inner.max_token_age_secs),
            require_exp: true,
            require_iat: true,
        };
        let clock = FixedClock(u64::try_from(self.now()).unwrap_or(0));
        match times {
            Times::Plain(dates) => dates.check(&validation, &clock),
            Times::Tree(claims) => lti_jose::validate_times(claims, &validation, &clock),
        }
        .map_err(|e| ToolError::jose(e, &registration.allowed_algorithms.join(", ")))
    }

    fn leeway_for(&self, registration: &PlatformRegistration) -> u64 {
        self.inner
            .leeway_secs
            .saturating_add(Quirks::of(registration.quirks).extra_leeway_secs)
    }

    /// Steps 3–4: registration by `iss` (and the client id the login was for),
    /// then audience and authorized party.
    async fn route(
        &self,
        route: RouteClaims<'_>,
        saved: &LaunchState,
    ) -> Result<Arc<PlatformRegistration>, ToolError> {
        let iss = route.iss?;
        if iss != saved.issuer {
            // Distinguish a stranger from another registered platform.
            return Err(match self.resolve_registration(iss, None).await {
                Err(e @ ToolError::UnknownIssuer { .. }) => e,
                Err(ToolError::StoreUnavailable(e)) => ToolError::StoreUnavailable(e),
                _ => ToolError::IssuerMismatch {
                    expected: saved.issuer.clone(),
                    found: clip(iss),
                },
            });
        }
        let registration = self
            .resolve_registration(iss, Some(&saved.client_id))
            .await?;
        let client_id = registration.client_id.as_str();
        let audiences = route.aud?;
        if !audiences.contains(&client_id) {
            return Err(ToolError::InvalidAudience {
                expected: client_id.to_owned(),
                found: clip(&format!("{audiences:?}")),
            });
        }
        match route.azp? {
            Some(a) if a != client_id => Err(ToolError::AzpMismatch {
                expected: client_id.to_owned(),
                found: format!("{:?}", clip(a)),
            }),
            None if audiences.len() > 1 => Err(ToolError::AzpMismatch {
                expected: client_id.to_owned(),
                found: format!("none (with {} audiences)", audiences.len()),
            }),
            _ => Ok(registration),
        }
    }

    /// Step 2: three segments within the size limit; strict header.
    fn parse_jws<'t>(&self, id_token: &'t str) -> Result<lti_jose::CompactJws<'t>, ToolError> {
        let inner = &self.inner;
        if id_token.len() > inner.max_token_len {
            return Err(ToolError::TokenTooLarge {
                limit: inner.max_token_len,
                found: id_token.len(),
            });
        }
        let limits = lti_jose::Limits {
            max_token_len: inner.max_token_len,
            ..lti_jose::Limits::default()
        };
        lti_jose::CompactJws::parse(id_token, &limits).map_err(|e| ToolError::jose(e, "RS256"))
    }

    /// Steps 3–12 for a payload [`IdTokenClaims::scan`] vouched for: the checks of
    /// the typed path in the same order, read from the scan, then the message's
    /// validation without decoding it.
    async fn verify_scanned(
        &self,
        jws: &lti_jose::CompactJws<'_>,
        scanned: &ScannedClaims<'_>,
        saved: &LaunchState,
        nonce_use: NonceUse,
    ) -> Result<(Arc<PlatformRegistration>, Classified), ToolError> {
        // 3–4. Registration, audience, azp.
        let registration = self
            .route(RouteClaims::from_scanned(scanned), saved)
            .await?;
        // 5. Algorithm, kid, key, signature.
        self.check_signature(jws, &registration).await?;
        // 6. Times (the scan keeps only plain ones: present non-negative integers).
        let dates = lti_jose::NumericDates {
            exp: scanned.exp(),
            nbf: scanned.nbf(),
            iat: scanned.iat(),
        };
        self.check_times(&registration, Times::Plain(dates))?;
        // 7, 8, 12. Nonce, deployment, target_link_uri.
        self.check_claims(
            Checked::from_scanned(scanned)?,
            saved,
            &registration,
            nonce_use,
        )
        .await?;
        // 9–11. Version, message type, roles, sub and per-type claims.
        let classified = scanned.classify(&self.inner.validation)?;
        Ok((registration, classified))
    }

    /// Steps 3–5 for a payload the scan left to the full decoding: registration,
    /// audience, algorithm, key, signature, with the payload decoded into typed
    /// claims (or, when that fails, only its routing claims).
    async fn verify_token(
        &self,
        jws: &lti_jose::CompactJws<'_>,
        payload_bytes: Vec<u8>,
        saved: &LaunchState,
    ) -> Result<Verified, ToolError> {
        // Unverified until step 5: read only what picks the registration and key.
        let payload = payload_bytes.as_slice();
        // Checked for UTF-8 once: the text is decoded without per-string checks, and
        // bytes that are not UTF-8 are refused after routing, at their step.
        let text = std::str::from_utf8(payload).ok();
        // Decoded once, typed; when that fails, a light decoding of the routing
        // claims takes over so each problem is named at its own step.
        let typed = match text {
            Some(text) => IdTokenClaims::from_json_str_boxed(text),
            None => IdTokenClaims::from_slice_boxed(payload),
        };
        let registration = {
            let tree;
            let route = match &typed {
                Ok(claims) => RouteClaims::from_claims(claims),
                Err(_) => {
                    tree = serde_json::from_slice::<Routing>(payload)
                        .map_err(|e| payload_error(payload, &e))?;
                    tree.route_claims()
                }
            };
            self.route(route, saved).await?
        };
        if text.is_none() {
            return Err(payload_not_utf8());
        }
        self.check_signature(jws, &registration).await?;
        Ok(Verified {
            payload_json: String::from_utf8(payload_bytes).map_err(|_| payload_not_utf8())?,
            registration,
            typed,
        })
    }

    /// Step 5: algorithm allow-list, kid, key, signature.
    async fn check_signature(
        &self,
        jws: &lti_jose::CompactJws<'_>,
        registration: &PlatformRegistration,
    ) -> Result<(), ToolError> {
        // Names are compared exactly, as `Algorithm` parses them: a name that is no
        // supported algorithm can never match.
        let allowed_text = || registration.allowed_algorithms.join(", ");
        let alg = jws.algorithm();
        if !registration
            .allowed_algorithms
            .iter()
            .any(|a| a == alg.as_str())
        {
            return Err(ToolError::AlgorithmNotAllowed {
                found: alg.as_str().to_owned(),
                allowed: allowed_text(),
            });
        }
        let Some(kid) = jws.kid() else {
            return Err(ToolError::MissingKid);
        };
        let key = match &registration.key_source {
            RegistrationKeys::JwksUrl { url } => {
                self.inner.key_source.key(url, Some(kid), alg).await
            }
            RegistrationKeys::StaticJwks { jwks } => {
                JwkSet::from_value(jwks).and_then(|set| set.find(Some(kid), alg))
            }
            _ => {
                return Err(ToolError::config(
                    "the registration's key source is not supported by this version of lti-tool",
                ));
            }
        }
        .map_err(|e| ToolError::jose(e, &allowed_text()))?;
        if key.algorithm() != alg {
            return Err(ToolError::KeyAlgorithmMismatch {
                reason: format!(
                    "expected a key for the header's {alg}, found a key bound to {}",
                    key.algorithm()
                ),
            });
        }
        key.verify_signature(jws.signing_input().as_bytes(), jws.signature())
            .map_err(|e| ToolError::jose(e, &allowed_text()))
    }

    /// Saves a verified id_token in the launch-data store under a fresh 256-bit
    /// launch id (for the launch TTL) and returns it as a [`Launch`], which
    /// [`Tool::load_launch`] finds again by that id. [`Tool::launch`] does this
    /// after [`Tool::verify_id_token`]; an application that binds the state itself
    /// calls it the same way.
    ///
    /// # Errors
    /// [`ToolError::StoreUnavailable`]; [`ToolError::Configuration`] if the
    /// operating system's random number generator fails.
    pub async fn save_verified(&self, token: VerifiedIdToken) -> Result<Launch, ToolError> {
        self.save_bound(token, StateBinding::Application).await
    }

    /// [`Tool::save_verified`], recording how the state was bound.
    pub(crate) async fn save_bound(
        &self,
        token: VerifiedIdToken,
        binding: StateBinding,
    ) -> Result<Launch, ToolError> {
        // The application's account-linking hook: after every check, before
        // anything is saved.
        let account = match &self.inner.account_linker {
            Some(linker) => Some(
                linker
                    .link(&token)
                    .await
                    .map_err(|r| ToolError::AccountRefused { reason: r.reason })?,
            ),
            None => None,
        };
        let launch = Launch {
            token,
            launch_id: crate::random::token(&self.inner.rng)?,
            binding: Some(binding),
            account,
        };
        let mut record = launch.to_record(SAVED_FORMAT, launch.binding, self.inner.personal_data);
        if let (Some(account), Some(map)) = (&launch.account, record.as_object_mut()) {
            map.insert("account".to_owned(), Value::String(account.clone()));
        }
        let expires_at = self.now().saturating_add(self.inner.launch_ttl_secs);
        self.inner
            .launch_data
            .save_launch(&launch.launch_id, record, expires_at)
            .await
            .map_err(ToolError::store)?;
        Ok(launch)
    }

    /// Loads a launch saved by [`Tool::launch`] for a later request of the same user
    /// (e.g. the page the launch redirected to, or a deep-linking form post).
    ///
    /// This does not re-verify the id_token, and does not need to: launch data is
    /// written only by [`Tool::launch`] and [`Tool::save_verified`], and only for a
    /// [`VerifiedIdToken`], which exists only after every check passed; the
    /// launch id is a 256-bit random value that the store maps to the data, so a
    /// client can present an id but cannot choose or alter what it refers to. The
    /// registration is read again from the registration store (a deleted
    /// registration invalidates its saved launches) and the claims are classified
    /// again with the tool's current validation options. Treat the launch id like a
    /// session id: whoever holds it acts as the launching user until it expires.
    ///
    /// # Errors
    /// [`ToolError::LaunchNotFound`] (unknown or expired id), [`ToolError::UnknownIssuer`]
    /// (the registration was removed), [`ToolError::StoreUnavailable`],
    /// [`ToolError::Configuration`] for unreadable stored data.
    pub async fn load_launch(&self, launch_id: &str) -> Result<Launch, ToolError> {
        if launch_id.is_empty() || launch_id.len() > lti_registry::MAX_ID_LEN {
            return Err(ToolError::LaunchNotFound);
        }
        let saved = match self.inner.launch_data.load_launch(launch_id).await {
            Ok(v) => v,
            Err(RegistryError::NotFound { .. } | RegistryError::InvalidInput { .. }) => {
                return Err(ToolError::LaunchNotFound);
            }
            Err(e) => return Err(ToolError::store(e)),
        };
        match saved.get("format").and_then(Value::as_str) {
            Some(SAVED_FORMAT) => {}
            // A launch still awaiting its platform-storage check is no launch yet.
            Some(crate::storage::PENDING_FORMAT) => return Err(ToolError::LaunchNotFound),
            _ => return Err(corrupt_record("the lti-tool/launch/v1 format")),
        }
        Ok(Launch {
            token: self.token_from_record(&saved).await?,
            launch_id: launch_id.to_owned(),
            binding: saved
                .get("state_binding")
                .and_then(Value::as_str)
                .and_then(StateBinding::parse),
            account: saved
                .get("account")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// The verified id_token kept in a launch-data record ([`VerifiedIdToken::to_record`]):
    /// the registration is read again from the registration store and the claims
    /// are classified again with the tool's current validation options.
    pub(crate) async fn token_from_record(
        &self,
        saved: &Value,
    ) -> Result<VerifiedIdToken, ToolError> {
        let text = |name: &str| saved.get(name).and_then(Value::as_str);
        let issuer = text("issuer").ok_or_else(|| corrupt_record("an issuer"))?;
        let client_id = text("client_id").ok_or_else(|| corrupt_record("a client_id"))?;
        let target_link_uri =
            text("target_link_uri").ok_or_else(|| corrupt_record("a target_link_uri"))?;
        let storage_target = text("lti_storage_target").map(str::to_owned);
        let payload_json = text("payload")
            .ok_or_else(|| corrupt_record("a payload"))?
            .to_owned();
        // Validated by the scan and decoded on first use when it vouches for the
        // payload; decoded in full otherwise.
        let scanned = match IdTokenClaims::scan(&payload_json) {
            Some(scanned) => Scanned::Yes(scanned.classify(&self.inner.validation)),
            None => match serde_json::from_str::<Value>(&payload_json) {
                Ok(Value::Object(claims)) => Scanned::No(claims),
                _ => return Err(corrupt_record("a JSON object payload")),
            },
        };
        let registration = self.resolve_registration(issuer, Some(client_id)).await?;
        let message = match scanned {
            Scanned::Yes(classified) => Typed::Deferred {
                classified: classified?,
                message: OnceLock::new(),
            },
            Scanned::No(claims) => {
                Typed::Decoded(LtiMessage::from_map(claims, &self.inner.validation)?)
            }
        };
        Ok(VerifiedIdToken {
            message,
            registration,
            target_link_uri: target_link_uri.to_owned(),
            storage_target,
            payload_json,
        })
    }

    /// Deletes a saved launch (e.g. at logout); returns whether one was deleted.
    ///
    /// # Errors
    /// [`ToolError::StoreUnavailable`].
    pub async fn forget_launch(&self, launch_id: &str) -> Result<bool, ToolError> {
        self.inner
            .launch_data
            .delete_launch(launch_id)
            .await
            .map_err(ToolError::store)
    }

    /// The validation options in force (anonymous launches, unknown message types).
    pub fn validation_options(&self) -> ValidationOptions {
        self.inner.validation
    }
}

/// A saved payload: classified by the scan, or the JSON tree to decode.
enum Scanned {
    Yes(Result<Classified, MessageError>),
    No(Map<String, Value>),
}

/// Whether step 7 records the id_token's nonce.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum NonceUse {
    /// Record it ([`Tool::verify_id_token`]: the caller opened the state).
    Record,
    /// It is the nonce [`Tool::consume_login_state`] recorded when it took the
    /// state: equal to the state's is enough.
    Claimed,
}

/// A stored launch record that lacks `what` (written by something else).
fn corrupt_record(what: &str) -> ToolError {
    ToolError::config(format!("saved launch: expected {what}, found none"))
}

/// The `state` and `id_token` of the platform's launch POST, or the platform's
/// own `error` (an authentication error response).
pub(crate) fn launch_fields<'p>(form: &'p Params<'_>) -> Result<(&'p str, &'p str), ToolError> {
    if let Some(error) = form.optional("error")? {
        return Err(ToolError::PlatformError {
            error: clip(error),
            description: clip(form.optional("error_description")?.unwrap_or("")),
        });
    }
    Ok((form.require("state")?, form.require("id_token")?))
}

/// Why the payload could not be read for routing: not JSON, not an object, or a
/// routing claim given twice.
fn payload_error(payload: &[u8], e: &serde_json::Error) -> ToolError {
    match serde_json::from_slice::<Value>(payload) {
        Err(e) => ToolError::MalformedToken {
            reason: format!("payload: expected a JSON object, found invalid JSON ({e})"),
        },
        Ok(v) if !v.is_object() => not_an_object(),
        Ok(_) => ToolError::MalformedToken {
            reason: format!("payload: {e}"),
        },
    }
}

fn payload_not_utf8() -> ToolError {
    ToolError::MalformedToken {
        reason: "payload: expected UTF-8 JSON, found other bytes".to_owned(),
    }
}

fn not_an_object() -> ToolError {
    ToolError::MalformedToken {
        reason: "expected the payload to be a JSON object, found another JSON value".to_owned(),
    }
}

fn invalid_type(claim: &'static str, expected: &str) -> ToolError {
    ToolError::InvalidClaim {
        claim,
        expected: expected.to_owned(),
        found: "another JSON type".to_owned(),
    }
}
