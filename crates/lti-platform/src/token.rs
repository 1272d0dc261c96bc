//! The OAuth 2.0 token endpoint (client credentials with a JWT client assertion,
//! RFC 7523) and bearer-token checks for the service endpoints.

use std::collections::BTreeSet;
use tracing::Instrument;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, Request, Response, StatusCode};
use lti_jose::{Audience, TimeValidation, validate_times};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{PlatformError, Result, clip};
use crate::platform::Platform;
use crate::secret::{Purpose, random_id};
use crate::web::{self, Params};

/// `client_assertion_type` for JWT client assertions.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A token request (`application/x-www-form-urlencoded` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `grant_type`.
    pub grant_type: String,
    /// `client_assertion_type`.
    pub client_assertion_type: String,
    /// `client_assertion` (a JWT).
    pub client_assertion: String,
    /// `scope`: space-separated scopes.
    pub scope: String,
}

impl TokenRequest {
    /// Reads a token request from a POSTed form.
    ///
    /// # Errors
    /// [`PlatformError::MethodNotAllowed`], [`PlatformError::UnsupportedMediaType`],
    /// [`PlatformError::MissingParameter`], [`PlatformError::DuplicateParameter`],
    /// [`PlatformError::BodyTooLarge`].
    pub fn from_http(req: &Request<Bytes>) -> Result<Self> {
        let p = Params::from_request(req, false)?;
        Ok(Self {
            grant_type: p.require("grant_type")?.to_owned(),
            client_assertion_type: p.require("client_assertion_type")?.to_owned(),
            client_assertion: p.require("client_assertion")?.to_owned(),
            scope: p.require("scope")?.to_owned(),
        })
    }
}

/// The token endpoint's success body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The opaque bearer token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// Granted scopes, space-separated.
    pub scope: String,
}

/// What a valid bearer token authorizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    /// The tool's client id.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: BTreeSet<String>,
    /// Expiry (Unix seconds).
    pub expires_at: u64,
}

impl AccessGrant {
    /// Whether any of `scopes` was granted.
    pub fn has_any(&self, scopes: &[&str]) -> bool {
        scopes.iter().any(|s| self.scopes.contains(*s))
    }

    /// [`PlatformError::InsufficientScope`] unless one of `scopes` was granted.
    ///
    /// # Errors
    /// As described.
    pub fn require_any(&self, scopes: &[&str]) -> Result<()> {
        if self.has_any(scopes) {
            Ok(())
        } else {
            Err(PlatformError::InsufficientScope {
                expected: scopes.join(" or "),
            })
        }
    }
}

/// The sealed content of an access token.
#[derive(Serialize, Deserialize)]
struct Sealed {
    c: String,
    s: Vec<String>,
    e: u64,
    j: String,
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &'static str) -> Result<&'a str> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(PlatformError::assertion(format!(
            "expected `{name}` to be a non-empty string, found another value"
        ))),
        None => Err(PlatformError::assertion(format!(
            "expected a `{name}` claim, found none"
        ))),
    }
}

impl Platform {
    /// The token endpoint: `POST` form → `200` JSON token, or an RFC 6749 §5.2 JSON
    /// error (`invalid_request`, `invalid_client` (401), `invalid_scope`,
    /// `unsupported_grant_type`).
    pub async fn token_endpoint(&self, req: &Request<Bytes>) -> Response<Bytes> {
        let span = tracing::info_span!("lti.platform.token", code = tracing::field::Empty);
        let result = match TokenRequest::from_http(req) {
            Ok(request) => self.exchange(&request).instrument(span.clone()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(token) => web::json_response(StatusCode::OK, "application/json", &token),
            Err(err) => {
                span.record("code", err.code());
                span.in_scope(|| tracing::info!("token request refused"));
                token_error(&err)
            }
        }
    }

    /// Checks a token request and issues a token.
    ///
    /// Checks, in order: `grant_type`, `client_assertion_type`, assertion `iss` = `sub`
    /// naming a registered client, signature with the tool's keys, `aud` (string or
    /// array) containing the token endpoint URL (or a configured alias), `exp`/`iat`
    /// with leeway and a bounded lifetime, every requested scope registered for the
    /// tool, and finally `jti` unused (it is then recorded until the assertion expires).
    ///
    /// # Errors
    /// [`PlatformError::UnsupportedGrantType`], [`PlatformError::InvalidParameter`],
    /// [`PlatformError::UnknownClient`], [`PlatformError::InvalidClientAssertion`],
    /// [`PlatformError::InvalidScope`], [`PlatformError::ReplayedAssertion`],
    /// [`PlatformError::Backend`].
    pub async fn exchange(&self, request: &TokenRequest) -> Result<TokenResponse> {
        if request.grant_type != "client_credentials" {
            return Err(PlatformError::UnsupportedGrantType {
                found: clip(&request.grant_type),
            });
        }
        if request.client_assertion_type != CLIENT_ASSERTION_TYPE {
            return Err(PlatformError::param(
                "client_assertion_type",
                CLIENT_ASSERTION_TYPE,
                &request.client_assertion_type,
            ));
        }
        let token = request.client_assertion.as_str();
        let (_, unverified): (_, Map<String, Value>) =
            lti_jose::dangerous::decode_unverified(token).map_err(|e| {
                PlatformError::InvalidClientAssertion {
                    reason: "expected a compact JWS with a JSON object payload".to_owned(),
                    source: Some(e),
                }
            })?;
        let iss = string_claim(&unverified, "iss")?;
        let sub = string_claim(&unverified, "sub")?;
        if iss != sub {
            return Err(PlatformError::assertion(
                "expected `sub` equal to `iss` (the client id), found another value",
            ));
        }
        let tool = self.require_tool(iss).await?;
        let claims = self.verify_tool_jwt(&tool, token).await.map_err(|e| {
            PlatformError::InvalidClientAssertion {
                reason: format!("signature check with the tool's keys failed ({})", e.code()),
                source: Some(e),
            }
        })?;
        // Re-check the identity claims on the verified payload.
        if string_claim(&claims, "iss")? != tool.client_id
            || string_claim(&claims, "sub")? != tool.client_id
        {
            return Err(PlatformError::assertion(
                "expected `iss` and `sub` equal to the client id",
            ));
        }
        let aud: Audience = claims
            .get("aud")
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .ok_or_else(|| {
                PlatformError::assertion("expected an `aud` string or array, found none")
            })?;
        let accepted =
            std::iter::once(&self.config.token_endpoint).chain(self.config.token_audiences.iter());
        if !accepted.into_iter().any(|a| aud.contains(a)) {
            return Err(PlatformError::assertion(format!(
                "expected `aud` to contain the token endpoint {}, found {}",
                self.config.token_endpoint,
                clip(&aud.iter().collect::<Vec<_>>().join(" "))
            )));
        }
        let validation = TimeValidation {
            leeway_secs: self.config.leeway_secs,
            max_age_secs: Some(self.config.max_tool_jwt_lifetime_secs),
            require_exp: true,
            require_iat: true,
        };
        let claims_value = Value::Object(claims);
        validate_times(&claims_value, &validation, self.clock.as_ref()).map_err(|e| {
            PlatformError::InvalidClientAssertion {
                reason: format!("time check failed: {e}"),
                source: Some(e),
            }
        })?;
        let Value::Object(claims) = claims_value else {
            return Err(PlatformError::assertion("expected a JSON object payload"));
        };
        let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        let iat = claims.get("iat").and_then(Value::as_u64).unwrap_or(0);
        if exp.saturating_sub(iat) > self.config.max_tool_jwt_lifetime_secs {
            return Err(PlatformError::assertion(format!(
                "expected exp - iat <= {} s, found {} s",
                self.config.max_tool_jwt_lifetime_secs,
                exp.saturating_sub(iat)
            )));
        }
        let jti = string_claim(&claims, "jti")?;
        let mut granted = BTreeSet::new();
        for scope in request.scope.split_ascii_whitespace() {
            if !tool.scopes.contains(scope) {
                return Err(PlatformError::InvalidScope { found: clip(scope) });
            }
            granted.insert(scope.to_owned());
        }
        if granted.is_empty() {
            return Err(PlatformError::MissingParameter { name: "scope" });
        }
        let namespace = format!("jti:{}", tool.client_id);
        if !self
            .record_once(&namespace, jti, exp.saturating_add(self.config.leeway_secs))
            .await?
        {
            return Err(PlatformError::ReplayedAssertion);
        }
        self.issue_access_token(&tool.client_id, granted)
    }

    /// Issues a bearer token for `client_id` with `scopes` without a token request
    /// (for the application's own use and for tests). The token is opaque to tools:
    /// an encrypted and authenticated grant (AES-256-GCM under a key derived from the
    /// platform secret), so it survives restarts and works on every instance that
    /// shares the platform secret.
    ///
    /// # Errors
    /// [`PlatformError::Backend`] if the RNG fails.
    pub fn issue_access_token(
        &self,
        client_id: &str,
        scopes: BTreeSet<String>,
    ) -> Result<TokenResponse> {
        let lifetime = self.config.access_token_lifetime_secs;
        let sealed = Sealed {
            c: client_id.to_owned(),
            s: scopes.iter().cloned().collect(),
            e: self.now().saturating_add(lifetime),
            j: random_id()?,
        };
        Ok(TokenResponse {
            access_token: self.secret.seal(Purpose::AccessToken, &sealed)?,
            token_type: "Bearer".to_owned(),
            expires_in: lifetime,
            scope: scopes.into_iter().collect::<Vec<_>>().join(" "),
        })
    }

    /// Checks the `Authorization: Bearer …` header and returns what the token grants.
    ///
    /// # Errors
    /// [`PlatformError::InvalidAccessToken`] for a missing, malformed, forged or
    /// expired token.
    pub fn authorize_bearer(&self, headers: &HeaderMap) -> Result<AccessGrant> {
        let value = headers
            .get(AUTHORIZATION)
            .ok_or(PlatformError::InvalidAccessToken {
                reason: "expected an Authorization header, found none",
            })?
            .to_str()
            .map_err(|_| PlatformError::InvalidAccessToken {
                reason: "expected a visible-ASCII Authorization header",
            })?;
        let (scheme, token) = value
            .split_once(' ')
            .ok_or(PlatformError::InvalidAccessToken {
                reason: "expected `Bearer <token>`",
            })?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(PlatformError::InvalidAccessToken {
                reason: "expected the Bearer scheme",
            });
        }
        let sealed: Sealed = self
            .secret
            .open(Purpose::AccessToken, token.trim())
            .map_err(|e| PlatformError::InvalidAccessToken { reason: e.reason() })?;
        if sealed.e <= self.now() {
            return Err(PlatformError::InvalidAccessToken {
                reason: "the token has expired",
            });
        }
        Ok(AccessGrant {
            client_id: sealed.c,
            scopes: sealed.s.into_iter().collect(),
            expires_at: sealed.e,
        })
    }
}

/// An RFC 6749 §5.2 error response.
pub(crate) fn token_error(err: &PlatformError) -> Response<Bytes> {
    let code = err.oauth_error();
    let status = match code {
        "invalid_client" => StatusCode::UNAUTHORIZED,
        "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ if matches!(err, PlatformError::MethodNotAllowed { .. }) => {
            StatusCode::METHOD_NOT_ALLOWED
        }
        _ if matches!(err, PlatformError::UnsupportedMediaType { .. }) => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        _ => StatusCode::BAD_REQUEST,
    };
    let body = serde_json::json!({ "error": code, "error_description": err.to_string() });
    let mut resp = web::json_response(status, "application/json", &body);
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
    }
    resp
}
