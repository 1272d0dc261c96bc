//! LTI Dynamic Registration 1.0 wire types: the platform's OpenID
//! configuration, the tool's registration request (OIDC client metadata with
//! the LTI tool-configuration object), the platform's answer, and the RFC 7591
//! error body.
//!
//! Both sides use these types: the tool reads a [`PlatformConfiguration`] and
//! posts a [`ClientRegistration`]; the platform serves the first and answers
//! the second with the stored registration plus `client_id`. Every document
//! keeps members it does not model in an `extra` map, so vendor extensions
//! (Canvas's privacy level, Moodle's `oauth_consumer`) round-trip.
//!
//! Real platforms differ in shape; the tolerant parts are noted on each type.
//! Checks that need a URL parser (issuer ↔ configuration URL, domains) belong
//! to the side that makes the decision (`lti-tool`, `lti-platform`).
//!
//! ```
//! use lti_message::registration::{PlatformConfiguration, MessageSupported};
//!
//! // Moodle lists `messages_supported` as plain strings.
//! let doc = serde_json::json!({
//!     "issuer": "https://moodle.example.edu",
//!     "authorization_endpoint": "https://moodle.example.edu/mod/lti/auth.php",
//!     "token_endpoint": "https://moodle.example.edu/mod/lti/token.php",
//!     "jwks_uri": "https://moodle.example.edu/mod/lti/certs.php",
//!     "registration_endpoint": "https://moodle.example.edu/mod/lti/openid-registration.php",
//!     "scopes_supported": ["openid"],
//!     "response_types_supported": ["id_token"],
//!     "subject_types_supported": ["public", "pairwise"],
//!     "id_token_signing_alg_values_supported": ["RS256"],
//!     "token_endpoint_auth_methods_supported": ["private_key_jwt"],
//!     "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
//!     "claims_supported": ["sub", "iss"],
//!     "https://purl.imsglobal.org/spec/lti-platform-configuration": {
//!         "product_family_code": "moodle",
//!         "version": "4.3",
//!         "messages_supported": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"],
//!         "placements": ["AddContentMenu"]
//!     }
//! });
//! let config: PlatformConfiguration = serde_json::from_value(doc).unwrap();
//! let platform = config.lti_platform_configuration().unwrap().unwrap();
//! assert_eq!(platform.product_family_code, "moodle");
//! assert!(platform.supports_message("LtiDeepLinkingRequest"));
//! assert!(matches!(platform.messages_supported[0], MessageSupported::Type(_)));
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// URIs of Dynamic Registration's JSON members.
pub mod uri {
    /// The platform-configuration object inside the OpenID configuration.
    pub const PLATFORM_CONFIGURATION: &str =
        "https://purl.imsglobal.org/spec/lti-platform-configuration";
    /// The tool-configuration object inside the registration request and answer.
    pub const TOOL_CONFIGURATION: &str = "https://purl.imsglobal.org/spec/lti-tool-configuration";
    /// The postMessage subject a tool's registration page sends when done.
    pub const CLOSE_SUBJECT: &str = "org.imsglobal.lti.close";
}

/// The grant types every LTI registration asks for.
pub const GRANT_TYPES: [&str; 2] = ["implicit", "client_credentials"];
/// The only response type LTI uses.
pub const RESPONSE_TYPE_ID_TOKEN: &str = "id_token";
/// The only client authentication LTI uses at the token endpoint.
pub const AUTH_METHOD_PRIVATE_KEY_JWT: &str = "private_key_jwt";
/// The only signing algorithm LTI requires.
pub const ALG_RS256: &str = "RS256";

/// The platform's `/.well-known/openid-configuration` document (OpenID
/// Connect Discovery plus the LTI platform-configuration object).
///
/// Members a platform must send but a tool can live without are optional
/// here so the tool can say which one is missing instead of failing to parse;
/// [`missing_members`](Self::missing_members) names them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PlatformConfiguration {
    /// The issuer: equals `iss` in the platform's id_tokens.
    #[serde(default)]
    pub issuer: String,
    /// The OIDC authorization endpoint (the launch's auth request goes here).
    #[serde(default)]
    pub authorization_endpoint: String,
    /// The OAuth 2 token endpoint for service tokens.
    #[serde(default)]
    pub token_endpoint: String,
    /// The platform's key set.
    #[serde(default)]
    pub jwks_uri: String,
    /// Where the tool posts its registration.
    #[serde(default)]
    pub registration_endpoint: String,
    /// Audience for client assertions, when it differs from the token endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_server: Option<String>,
    /// Scopes the platform could grant.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// Must contain `id_token`.
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// Must contain `RS256`.
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Must contain `private_key_jwt`.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Must contain `RS256`.
    #[serde(default)]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// e.g. `["public"]`.
    #[serde(default)]
    pub subject_types_supported: Vec<String>,
    /// Claims the platform can send.
    #[serde(default)]
    pub claims_supported: Vec<String>,
    /// Every other member, including the LTI platform-configuration object
    /// (read it with [`lti_platform_configuration`](Self::lti_platform_configuration)).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PlatformConfiguration {
    /// The LTI platform-configuration object. Older Moodle releases sent the
    /// key with a trailing space; that spelling is accepted too.
    ///
    /// `None` when the object is absent; `Some(Err)` when it does not parse.
    pub fn lti_platform_configuration(
        &self,
    ) -> Option<Result<LtiPlatformConfiguration, serde_json::Error>> {
        let value = self.extra.get(uri::PLATFORM_CONFIGURATION).or_else(|| {
            self.extra
                .iter()
                .find(|(k, _)| k.trim_end() == uri::PLATFORM_CONFIGURATION)
                .map(|(_, v)| v)
        })?;
        Some(LtiPlatformConfiguration::deserialize(value))
    }

    /// Sets the LTI platform-configuration object (platform side).
    pub fn set_lti_platform_configuration(&mut self, config: &LtiPlatformConfiguration) {
        // Serializing a derived struct of strings and maps cannot fail.
        let value = serde_json::to_value(config).unwrap_or(Value::Null);
        self.extra
            .insert(uri::PLATFORM_CONFIGURATION.to_owned(), value);
    }

    /// Names of required members that are empty or absent, and required
    /// values a list does not contain (as `member ∌ value`), in document
    /// order. Empty when the document is complete for LTI.
    pub fn missing_members(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for (name, value) in [
            ("issuer", &self.issuer),
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("jwks_uri", &self.jwks_uri),
            ("registration_endpoint", &self.registration_endpoint),
        ] {
            if value.trim().is_empty() {
                missing.push(name.to_owned());
            }
        }
        for (name, list, needed) in [
            (
                "response_types_supported",
                &self.response_types_supported,
                RESPONSE_TYPE_ID_TOKEN,
            ),
            (
                "id_token_signing_alg_values_supported",
                &self.id_token_signing_alg_values_supported,
                ALG_RS256,
            ),
            (
                "token_endpoint_auth_methods_supported",
                &self.token_endpoint_auth_methods_supported,
                AUTH_METHOD_PRIVATE_KEY_JWT,
            ),
            (
                "token_endpoint_auth_signing_alg_values_supported",
                &self.token_endpoint_auth_signing_alg_values_supported,
                ALG_RS256,
            ),
        ] {
            if !list.iter().any(|v| v == needed) {
                missing.push(format!("{name} ∌ {needed}"));
            }
        }
        if self.lti_platform_configuration().is_none() {
            missing.push(uri::PLATFORM_CONFIGURATION.to_owned());
        }
        missing
    }
}

/// The `https://purl.imsglobal.org/spec/lti-platform-configuration` object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LtiPlatformConfiguration {
    /// e.g. `canvas`, `moodle`, `desire2learn`.
    pub product_family_code: String,
    /// The platform's version string.
    pub version: String,
    /// Message types (and their placements) the platform can launch.
    #[serde(default)]
    pub messages_supported: Vec<MessageSupported>,
    /// Substitution variable names, without `$`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<String>,
    /// Notice types (Platform Notification Service), where offered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notice_types_supported: Vec<String>,
    /// Vendor members, e.g. Moodle's flat `placements` list or Canvas's
    /// account name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl LtiPlatformConfiguration {
    /// Whether `message_type` is among `messages_supported`.
    pub fn supports_message(&self, message_type: &str) -> bool {
        self.messages_supported
            .iter()
            .any(|m| m.message_type() == message_type)
    }
}

/// One `messages_supported` entry: an object per the specification, or a
/// bare type name as Moodle sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageSupported {
    /// A bare message type name (Moodle).
    Type(String),
    /// `{type, placements?}`.
    Object {
        /// The message type, e.g. `LtiResourceLinkRequest`.
        #[serde(rename = "type")]
        message_type: String,
        /// Placements this message type can appear in.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        placements: Vec<String>,
        /// Vendor members.
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
}

impl MessageSupported {
    /// The message type. Moodle 3.10's short names (`LtiResourceLink`,
    /// `LtiDeepLinking`) are read as the full names.
    pub fn message_type(&self) -> &str {
        let name = match self {
            MessageSupported::Type(t) => t.as_str(),
            MessageSupported::Object { message_type, .. } => message_type.as_str(),
        };
        match name {
            "LtiResourceLink" => "LtiResourceLinkRequest",
            "LtiDeepLinking" => "LtiDeepLinkingRequest",
            other => other,
        }
    }
}

/// The tool's registration request (OIDC Dynamic Client Registration
/// metadata with LTI's constraints), and — with `client_id` set — the
/// platform's answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClientRegistration {
    /// Assigned by the platform; absent in the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Always `web`.
    #[serde(default)]
    pub application_type: String,
    /// Must contain `id_token`.
    #[serde(default)]
    pub response_types: Vec<String>,
    /// Must contain `implicit` and `client_credentials`.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// The tool's OIDC login initiation URL.
    #[serde(default)]
    pub initiate_login_uri: String,
    /// Every launch URL the tool accepts (exact match).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The tool's display name.
    #[serde(default)]
    pub client_name: String,
    /// The tool's key set URL.
    #[serde(default)]
    pub jwks_uri: String,
    /// Optional logo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// Optional home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// Optional privacy policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// Optional terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// Optional contact e-mail addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// Always `private_key_jwt`.
    #[serde(default)]
    pub token_endpoint_auth_method: String,
    /// Space-separated scopes: requested in the request, granted in the answer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// The LTI tool-configuration object.
    #[serde(
        rename = "https://purl.imsglobal.org/spec/lti-tool-configuration",
        default
    )]
    pub tool_configuration: LtiToolConfiguration,
    /// Every other member (`client_name#fr`, `registration_client_uri`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ClientRegistration {
    /// A request with LTI's fixed members filled in (`web`, `id_token`,
    /// both grant types, `private_key_jwt`).
    pub fn new_request(
        client_name: impl Into<String>,
        initiate_login_uri: impl Into<String>,
        redirect_uris: Vec<String>,
        jwks_uri: impl Into<String>,
        tool_configuration: LtiToolConfiguration,
    ) -> Self {
        ClientRegistration {
            client_id: None,
            application_type: "web".to_owned(),
            response_types: vec![RESPONSE_TYPE_ID_TOKEN.to_owned()],
            grant_types: GRANT_TYPES.iter().map(|s| (*s).to_owned()).collect(),
            initiate_login_uri: initiate_login_uri.into(),
            redirect_uris,
            client_name: client_name.into(),
            jwks_uri: jwks_uri.into(),
            token_endpoint_auth_method: AUTH_METHOD_PRIVATE_KEY_JWT.to_owned(),
            tool_configuration,
            ..ClientRegistration::default()
        }
    }

    /// The scopes in `scope`, split on ASCII spaces.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        split_scopes(&self.scope)
    }

    /// Sets `scope` from a list.
    pub fn set_scopes<'a>(&mut self, scopes: impl IntoIterator<Item = &'a str>) {
        self.scope = join_scopes(scopes);
    }

    /// The first LTI rule this metadata breaks, as an RFC 7591 error, or
    /// `None`. Checks the fixed members and that the required ones are
    /// present; URL and domain checks are the platform's
    /// (`lti-platform`), which knows its policy.
    pub fn check_lti_shape(&self) -> Option<RegistrationErrorBody> {
        let bad = |what: String| Some(RegistrationErrorBody::invalid_client_metadata(what));
        if self.application_type != "web" {
            return bad(format!(
                "application_type must be \"web\", found {:?}",
                self.application_type
            ));
        }
        if !self
            .response_types
            .iter()
            .any(|t| t == RESPONSE_TYPE_ID_TOKEN)
        {
            return bad("response_types must contain \"id_token\"".to_owned());
        }
        for grant in GRANT_TYPES {
            if !self.grant_types.iter().any(|g| g == grant) {
                return bad(format!("grant_types must contain {grant:?}"));
            }
        }
        if self.token_endpoint_auth_method != AUTH_METHOD_PRIVATE_KEY_JWT {
            return bad(format!(
                "token_endpoint_auth_method must be \"private_key_jwt\", found {:?}",
                self.token_endpoint_auth_method
            ));
        }
        for (name, value) in [
            ("initiate_login_uri", &self.initiate_login_uri),
            ("client_name", &self.client_name),
            ("jwks_uri", &self.jwks_uri),
        ] {
            if value.trim().is_empty() {
                return bad(format!("{name} is required"));
            }
        }
        if self.redirect_uris.is_empty() {
            return Some(RegistrationErrorBody::new(
                RegistrationErrorCode::InvalidRedirectUri,
                "redirect_uris must list at least one launch URL",
            ));
        }
        let tc = &self.tool_configuration;
        if tc.domain.trim().is_empty() {
            return bad(format!("{}.domain is required", uri::TOOL_CONFIGURATION));
        }
        if tc.domain.contains("://") || tc.domain.contains('/') {
            return bad(format!(
                "{}.domain must be a host with an optional port, found {:?}",
                uri::TOOL_CONFIGURATION,
                tc.domain
            ));
        }
        if tc.target_link_uri.trim().is_empty() {
            return bad(format!(
                "{}.target_link_uri is required",
                uri::TOOL_CONFIGURATION
            ));
        }
        if let Some(m) = tc
            .messages
            .iter()
            .find(|m| m.message_type.trim().is_empty())
        {
            return bad(format!(
                "every message needs a type (found one labelled {:?})",
                m.label.as_deref().unwrap_or("")
            ));
        }
        None
    }
}

/// The `https://purl.imsglobal.org/spec/lti-tool-configuration` object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LtiToolConfiguration {
    /// The tool's host, optionally with `:port`; no scheme, no path.
    #[serde(default)]
    pub domain: String,
    /// Further hosts the tool's URLs may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secondary_domains: Vec<String>,
    /// The default launch URL.
    #[serde(default)]
    pub target_link_uri: String,
    /// Custom parameters sent with every launch; values may be `$Variable`s.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_parameters: BTreeMap<String, String>,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// OIDC claims the tool asks for (`iss`, `sub`, `name`, `email`, …).
    #[serde(default)]
    pub claims: Vec<String>,
    /// Message types the tool supports.
    #[serde(default)]
    pub messages: Vec<ToolMessage>,
    /// The deployment the platform created, in the answer (Moodle sends it;
    /// Canvas does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// Vendor members (e.g. `https://canvas.instructure.com/lti/privacy_level`).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of the tool configuration's `messages`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ToolMessage {
    /// The message type, e.g. `LtiDeepLinkingRequest`.
    #[serde(rename = "type")]
    pub message_type: String,
    /// Launch URL for this message, when it differs from the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_link_uri: Option<String>,
    /// Label shown in the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Icon shown in the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_uri: Option<String>,
    /// Custom parameters for this message.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_parameters: BTreeMap<String, String>,
    /// Placements, e.g. `ContentArea`, `RichTextEditor`, `course_navigation`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placements: Vec<String>,
    /// Role URIs allowed to see this message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Deep linking: content item types the tool returns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported_types: Vec<String>,
    /// Deep linking: media types the tool returns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supported_media_types: Vec<String>,
    /// Vendor members (`label#fr`, Canvas's visibility, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// RFC 7591 §3.2.2 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RegistrationErrorCode {
    /// A redirect URI is missing or not acceptable.
    InvalidRedirectUri,
    /// A metadata member is missing or not acceptable.
    InvalidClientMetadata,
    /// The software statement is not valid.
    InvalidSoftwareStatement,
    /// The software statement is not approved.
    UnapprovedSoftwareStatement,
}

impl RegistrationErrorCode {
    /// The wire code.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            RegistrationErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            RegistrationErrorCode::InvalidSoftwareStatement => "invalid_software_statement",
            RegistrationErrorCode::UnapprovedSoftwareStatement => "unapproved_software_statement",
        }
    }
}

/// The RFC 7591 error body a platform answers with status 400.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationErrorBody {
    /// The error code. Kept as a string so unknown codes from real
    /// platforms are still shown.
    pub error: String,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl RegistrationErrorBody {
    /// An error with a standard code and a description.
    pub fn new(code: RegistrationErrorCode, description: impl Into<String>) -> Self {
        RegistrationErrorBody {
            error: code.as_str().to_owned(),
            error_description: Some(description.into()),
        }
    }

    /// `invalid_client_metadata` with a description.
    pub fn invalid_client_metadata(description: impl Into<String>) -> Self {
        Self::new(RegistrationErrorCode::InvalidClientMetadata, description)
    }
}

/// Splits a space-separated scope string, skipping empty pieces.
pub fn split_scopes(scope: &str) -> impl Iterator<Item = &str> {
    scope.split(' ').filter(|s| !s.is_empty())
}

/// Joins scopes with single spaces.
pub fn join_scopes<'a>(scopes: impl IntoIterator<Item = &'a str>) -> String {
    scopes.into_iter().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canvas_configuration() -> Value {
        json!({
            "issuer": "https://canvas.instructure.com",
            "authorization_endpoint": "https://sso.canvaslms.com/api/lti/authorize_redirect",
            "registration_endpoint": "https://school.instructure.com/api/lti/registrations",
            "jwks_uri": "https://sso.canvaslms.com/api/lti/security/jwks",
            "token_endpoint": "https://sso.canvaslms.com/login/oauth2/token",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "response_types_supported": ["id_token"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "picture", "email", "name"],
            "subject_types_supported": ["public"],
            "authorization_server": "canvas.instructure.com",
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "canvas",
                "version": "vCloud",
                "messages_supported": [
                    {"type": "LtiResourceLinkRequest",
                     "placements": ["https://canvas.instructure.com/lti/course_navigation"]},
                    {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]}
                ],
                "variables": ["Canvas.account.id"],
                "notice_types_supported": ["LtiHelloWorldNotice"],
                "https://canvas.instructure.com/lti/account_name": "School"
            }
        })
    }

    #[test]
    fn canvas_configuration_parses_and_keeps_vendor_members() {
        let config: PlatformConfiguration = serde_json::from_value(canvas_configuration()).unwrap();
        assert!(
            config.missing_members().is_empty(),
            "{:?}",
            config.missing_members()
        );
        let platform = config.lti_platform_configuration().unwrap().unwrap();
        assert_eq!(platform.product_family_code, "canvas");
        assert!(platform.supports_message("LtiResourceLinkRequest"));
        assert!(!platform.supports_message("LtiEulaRequest"));
        assert_eq!(
            platform.extra["https://canvas.instructure.com/lti/account_name"],
            "School"
        );
        // Round trip keeps every member.
        let back = serde_json::to_value(&config).unwrap();
        assert_eq!(back, canvas_configuration());
    }

    #[test]
    fn old_moodle_trailing_space_key_and_short_names_are_read() {
        let mut doc = canvas_configuration();
        let obj = doc.as_object_mut().unwrap();
        obj.remove(uri::PLATFORM_CONFIGURATION);
        obj.insert(
            format!("{} ", uri::PLATFORM_CONFIGURATION),
            json!({"product_family_code": "moodle", "version": "3.10",
                   "messages_supported": ["LtiResourceLink", "LtiDeepLinking"]}),
        );
        let config: PlatformConfiguration = serde_json::from_value(doc).unwrap();
        let platform = config.lti_platform_configuration().unwrap().unwrap();
        assert!(platform.supports_message("LtiDeepLinkingRequest"));
        assert!(config.missing_members().is_empty());
    }

    #[test]
    fn missing_members_are_named() {
        let mut doc = canvas_configuration();
        let obj = doc.as_object_mut().unwrap();
        obj.remove("registration_endpoint");
        obj.insert(
            "id_token_signing_alg_values_supported".into(),
            json!(["ES256"]),
        );
        obj.remove(uri::PLATFORM_CONFIGURATION);
        let config: PlatformConfiguration = serde_json::from_value(doc).unwrap();
        assert_eq!(
            config.missing_members(),
            vec![
                "registration_endpoint".to_owned(),
                "id_token_signing_alg_values_supported ∌ RS256".to_owned(),
                uri::PLATFORM_CONFIGURATION.to_owned(),
            ]
        );
    }

    fn request() -> ClientRegistration {
        let mut tc = LtiToolConfiguration {
            domain: "tool.example.com".into(),
            target_link_uri: "https://tool.example.com/lti/launch".into(),
            claims: vec!["iss".into(), "sub".into()],
            ..Default::default()
        };
        tc.messages.push(ToolMessage {
            message_type: "LtiDeepLinkingRequest".into(),
            label: Some("Add content".into()),
            placements: vec!["ContentArea".into()],
            ..Default::default()
        });
        let mut r = ClientRegistration::new_request(
            "Tool",
            "https://tool.example.com/lti/login",
            vec!["https://tool.example.com/lti/launch".into()],
            "https://tool.example.com/.well-known/jwks.json",
            tc,
        );
        r.set_scopes([
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            "openid",
        ]);
        r
    }

    #[test]
    fn request_serializes_with_the_uri_key_and_space_separated_scope() {
        let r = request();
        assert!(r.check_lti_shape().is_none());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["grant_types"], json!(["implicit", "client_credentials"]));
        assert_eq!(
            v["scope"],
            "https://purl.imsglobal.org/spec/lti-ags/scope/score openid"
        );
        assert_eq!(v[uri::TOOL_CONFIGURATION]["domain"], "tool.example.com");
        assert_eq!(
            v[uri::TOOL_CONFIGURATION]["messages"][0]["type"],
            "LtiDeepLinkingRequest"
        );
        assert!(v.get("client_id").is_none());
        let back: ClientRegistration = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.scopes().count(), 2);
    }

    #[test]
    fn shape_errors_name_the_member() {
        let mut r = request();
        r.grant_types = vec!["implicit".into()];
        let e = r.check_lti_shape().unwrap();
        assert_eq!(e.error, "invalid_client_metadata");
        assert!(e.error_description.unwrap().contains("client_credentials"));

        let mut r = request();
        r.redirect_uris.clear();
        assert_eq!(r.check_lti_shape().unwrap().error, "invalid_redirect_uri");

        let mut r = request();
        r.tool_configuration.domain = "https://tool.example.com:1234".into();
        let e = r.check_lti_shape().unwrap();
        assert!(e.error_description.unwrap().contains("domain"));
    }

    #[test]
    fn answer_with_moodle_deployment_id_and_rfc7591_error_parse() {
        let mut v = serde_json::to_value(request()).unwrap();
        v["client_id"] = json!("abc123");
        v[uri::TOOL_CONFIGURATION]["deployment_id"] = json!("7");
        let answer: ClientRegistration = serde_json::from_value(v).unwrap();
        assert_eq!(answer.client_id.as_deref(), Some("abc123"));
        assert_eq!(
            answer.tool_configuration.deployment_id.as_deref(),
            Some("7")
        );

        let e: RegistrationErrorBody = serde_json::from_value(
            json!({"error": "invalid_redirect_uri", "error_description": "bad"}),
        )
        .unwrap();
        assert_eq!(e.error, RegistrationErrorCode::InvalidRedirectUri.as_str());
        assert_eq!(split_scopes("  a  b ").collect::<Vec<_>>(), ["a", "b"]);
    }
}
