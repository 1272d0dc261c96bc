//! The configuration file (TOML): parsing, defaults and validation.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The default bind address.
pub const DEFAULT_BIND: &str = "127.0.0.1:3000";
/// The default storage URL (SQLite under `./data`).
pub const DEFAULT_STORAGE_URL: &str = "sqlite://data/lti.db";
/// The default key directory.
pub const DEFAULT_KEYS_DIR: &str = "data/keys";

/// The whole configuration file. Every table and key is optional except the
/// members of `[[platforms]]` and `[[consumers]]`; unknown keys are errors.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[storage]`.
    #[serde(default)]
    pub storage: StorageConfig,
    /// `[keys]`.
    #[serde(default)]
    pub keys: KeysConfig,
    /// `[[platforms]]`: LTI 1.3 platform registrations.
    #[serde(default)]
    pub platforms: Vec<PlatformConfig>,
    /// `[[platform_files]]`: registrations kept in another tool's format
    /// (a mimilti issuer map or a PyLTI1.3 `config.json`), loaded at start-up.
    #[serde(default)]
    pub platform_files: Vec<PlatformFileConfig>,
    /// `[[consumers]]`: LTI 1.1 consumers.
    #[serde(default)]
    pub consumers: Vec<ConsumerConfig>,
    /// `[egress]`: where outbound service and outcome requests may go.
    #[serde(default)]
    pub egress: EgressConfig,
    /// `[dynamic_registration]`: LTI Dynamic Registration at `/lti/register`.
    #[serde(default)]
    pub dynamic_registration: DynamicRegistrationConfig,
    /// `[privacy]`: what saved LTI 1.3 launch data keeps of the user.
    #[serde(default)]
    pub privacy: PrivacyConfig,
    /// Where each setting listed in [`ENV_SETTINGS`] came from (filled by
    /// [`Config::parse`] and [`Config::load_with_env`]).
    #[serde(skip)]
    pub origins: std::collections::BTreeMap<&'static str, Origin>,
    /// `[metrics]`: the Prometheus endpoint (off by default).
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file.
    File,
    /// An environment variable (named).
    Env(&'static str),
    /// The built-in default.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File => f.write_str("file"),
            Origin::Env(name) => write!(f, "env {name}"),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// The settings a container deployment sets from the environment: the key
/// path and the variable. An environment value overrides the file.
pub const ENV_SETTINGS: &[(&str, &str)] = &[
    ("server.bind", "LTI_BIND"),
    ("server.public_url", "LTI_PUBLIC_URL"),
    ("storage.url", "LTI_STORAGE_URL"),
    ("storage.nonce_url", "LTI_NONCE_URL"),
    ("keys.dir", "LTI_KEYS_DIR"),
    ("keys.app_secret", "LTI_APP_SECRET"),
    (
        "egress.allow_private_addresses",
        "LTI_ALLOW_PRIVATE_ADDRESSES",
    ),
    ("dynamic_registration.enabled", "LTI_DYNAMIC_REGISTRATION"),
];

/// `[dynamic_registration]`: LTI Dynamic Registration (`GET /lti/register`).
/// Off by default; with only `enabled = true`, any platform that completes
/// the flow is registered and can launch at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicRegistrationConfig {
    /// Turns `/lti/register` on (default `false`).
    #[serde(default)]
    pub enabled: bool,
    /// Issuers allowed to register (default: any).
    #[serde(default)]
    pub allowed_issuers: Vec<String>,
    /// `auto` (default): active at once; `manual`: pending until
    /// `lti platforms approve`.
    #[serde(default)]
    pub approval: ApprovalMode,
    /// For platforms that return no deployment id (Canvas): `accept_first`
    /// (default: the first launch's deployment is recorded and accepted,
    /// later unknown ones wait as pending), `accept` (every deployment is
    /// accepted and recorded) or `pending` (every one waits for approval).
    #[serde(default)]
    pub unknown_deployments: UnknownDeploymentsMode,
    /// The tool's name in the platform (default `lti-rs tool`).
    #[serde(default = "default_tool_name")]
    pub name: String,
    /// Optional description.
    #[serde(default)]
    pub description: Option<String>,
    /// Optional logo URL.
    #[serde(default)]
    pub logo_uri: Option<String>,
    /// The claims asked for (default: iss, sub, name, given/family name,
    /// email, locale, picture).
    #[serde(default)]
    pub claims: Option<Vec<String>>,
    /// The service scopes asked for (default: the AGS and NRPS scopes the
    /// inspector uses); only those the platform offers are requested.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Custom parameters for every launch.
    #[serde(default)]
    pub custom_parameters: std::collections::BTreeMap<String, String>,
    /// The messages offered (default: a resource link and deep linking).
    #[serde(default)]
    pub messages: Option<Vec<MessageConfig>>,
}

impl Default for DynamicRegistrationConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            allowed_issuers: Vec::new(),
            approval: ApprovalMode::Auto,
            unknown_deployments: UnknownDeploymentsMode::AcceptFirst,
            name: default_tool_name(),
            description: None,
            logo_uri: None,
            claims: None,
            scopes: None,
            custom_parameters: std::collections::BTreeMap::new(),
            messages: None,
        }
    }
}

fn default_tool_name() -> String {
    "lti-rs tool".to_owned()
}

/// `[privacy]`: Open edX's "store personal data" switch for LTI 1.3 launches.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// `store` (default): saved launches keep names and email; `drop`: they
    /// are removed before a launch is saved (`lti_tool::PersonalData`).
    #[serde(default)]
    pub personal_data: PersonalDataMode,
}

/// `privacy.personal_data`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonalDataMode {
    /// Keep names and email (the default).
    #[default]
    Store,
    /// Remove names, email and picture from saved launch data.
    Drop,
}

/// `dynamic_registration.approval`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMode {
    /// New registrations launch at once.
    #[default]
    Auto,
    /// New registrations wait for `lti platforms approve`.
    Manual,
}

/// What a registration that lists no (or not this) deployment does with a
/// launch's unknown deployment: `dynamic_registration.unknown_deployments`
/// (default `accept_first`), `platform_files[].no_deployments` and
/// `lti platforms import --no-deployments` (default `pending`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum UnknownDeploymentsMode {
    /// Accept and record the first launch's deployment; later unknown ones pending.
    #[default]
    AcceptFirst,
    /// Accept and record every deployment the platform signs for (mimilti's
    /// behaviour): a loosening, logged at start-up.
    Accept,
    /// Record every unknown deployment as pending and refuse it until
    /// `lti platforms deployments … approve`.
    Pending,
    /// Refuse every unknown deployment.
    Reject,
}

impl UnknownDeploymentsMode {
    /// The registry policy this stands for.
    pub fn policy(self) -> lti_registry::UnknownDeploymentPolicy {
        use lti_registry::UnknownDeploymentPolicy as P;
        match self {
            UnknownDeploymentsMode::AcceptFirst => P::AcceptFirstAndRecord,
            UnknownDeploymentsMode::Accept => P::AcceptAndRecord,
            UnknownDeploymentsMode::Pending => P::RecordPendingAndReject,
            UnknownDeploymentsMode::Reject => P::Reject,
        }
    }
}

fn pending() -> UnknownDeploymentsMode {
    UnknownDeploymentsMode::Pending
}

/// One `[[dynamic_registration.messages]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageConfig {
    /// `LtiResourceLinkRequest`, `LtiDeepLinkingRequest`, …
    #[serde(rename = "type")]
    pub message_type: String,
    /// The label shown in the platform.
    #[serde(default)]
    pub label: Option<String>,
    /// Placements (`ContentArea`, `RichTextEditor`, `course_navigation`, …).
    #[serde(default)]
    pub placements: Vec<String>,
    /// Custom parameters for this message.
    #[serde(default)]
    pub custom_parameters: std::collections::BTreeMap<String, String>,
    /// The launch URL when it is not the tool's target link URI.
    #[serde(default)]
    pub target_link_uri: Option<String>,
    /// Optional icon URL.
    #[serde(default)]
    pub icon_uri: Option<String>,
}

/// `[metrics]`: `GET /metrics` in the Prometheus text format on a listener of
/// its own (never on the public one).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// The address of the metrics listener, e.g. `127.0.0.1:9100`; default
    /// none (no metrics). `--metrics-bind` / `LTI_METRICS_BIND` override it.
    #[serde(default)]
    pub bind: Option<String>,
}

/// `[egress]`: the egress policy of outbound requests (`lti_http::EgressPolicy`
/// and `lti_http::HyperClientBuilder::allow_private_addresses`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Origins (`https://host[:port]`) that service URLs from LTI 1.3 launches
    /// may use besides each platform's issuer and token endpoint origins (a
    /// Canvas or Blackboard instance's own host), and that LTI 1.1 outcome
    /// URLs may use (consumers have no registered URL: list their origins
    /// here, or outcomes are refused). Default: none.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// Lets outbound requests (service calls, outcomes, token and JWKS
    /// fetches) reach loopback, private, link-local and other non-public
    /// addresses. Default `false`: a platform on the tool's own network, or
    /// a development setup on loopback, must turn it on.
    #[serde(default)]
    pub allow_private_addresses: bool,
}

impl EgressConfig {
    /// The origin allow-list as an `lti_http::EgressPolicy`.
    ///
    /// # Errors
    /// A problem naming the first entry that is not an absolute http(s) URL.
    pub fn policy(&self) -> Result<lti_http::EgressPolicy, Problem> {
        let mut policy = lti_http::EgressPolicy::new();
        for (i, o) in self.allowed_origins.iter().enumerate() {
            policy = policy
                .allow_origin(o)
                .map_err(|e| problem(format!("egress.allowed_origins[{i}]"), e.to_string()))?;
        }
        Ok(policy)
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The address to listen on (default `127.0.0.1:3000`).
    #[serde(default = "default_bind")]
    pub bind: String,
    /// The public base URL of the tool: the redirect URI, target link URI and
    /// JWKS URL derive from it (default `http://<bind>`).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Binds a login's state through the platform's postMessage storage as well
    /// as the state cookie when the platform offers it (`lti_storage_target`), so
    /// launches in an LMS frame also work in browsers that drop the tool's
    /// cookies there (default `true`; `lti_tool::ToolBuilder::platform_storage`).
    #[serde(default = "default_true")]
    pub platform_storage: bool,
    /// Seconds for a request head to arrive, and for a kept-alive connection
    /// to send its next request (default 10).
    #[serde(default = "default_header_read_timeout_secs")]
    pub header_read_timeout_secs: u64,
    /// Seconds from a request head to its response head, body reading included;
    /// past it the answer is `408 request_timeout` (default 30).
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// Seconds a connection may move no byte, while no request is being
    /// handled, before it is dropped (default 60).
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog (default 512).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            public_url: None,
            platform_storage: true,
            header_read_timeout_secs: default_header_read_timeout_secs(),
            request_timeout_secs: default_request_timeout_secs(),
            idle_timeout_secs: default_idle_timeout_secs(),
            max_connections: default_max_connections(),
        }
    }
}

impl ServerConfig {
    /// The server's timeouts and connection limit.
    pub fn limits(&self) -> crate::ServerLimits {
        crate::ServerLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            max_connections: self.max_connections,
        }
    }

    /// The limits' problems: each timeout from 1 s to a day, 1 to
    /// [`MAX_CONNECTIONS_LIMIT`] connections.
    fn limit_problems(&self, out: &mut Vec<Problem>) {
        for (key, secs) in [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
                out.push(problem(
                    format!("server.{key}"),
                    format!("expected 1 to {MAX_TIMEOUT_SECS} seconds, found {secs}"),
                ));
            }
        }
        if !(1..=MAX_CONNECTIONS_LIMIT).contains(&self.max_connections) {
            out.push(problem(
                "server.max_connections",
                format!(
                    "expected 1 to {MAX_CONNECTIONS_LIMIT} connections, found {}",
                    self.max_connections
                ),
            ));
        }
    }
}

/// The longest timeout `[server]` accepts: a day.
const MAX_TIMEOUT_SECS: u64 = 86_400;
/// The most connections `server.max_connections` accepts.
pub const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;

fn default_header_read_timeout_secs() -> u64 {
    crate::DEFAULT_HEADER_READ_TIMEOUT.as_secs()
}

fn default_request_timeout_secs() -> u64 {
    crate::DEFAULT_REQUEST_TIMEOUT.as_secs()
}

fn default_idle_timeout_secs() -> u64 {
    crate::DEFAULT_IDLE_TIMEOUT.as_secs()
}

fn default_max_connections() -> usize {
    crate::DEFAULT_MAX_CONNECTIONS
}

fn default_true() -> bool {
    true
}

fn default_bind() -> String {
    DEFAULT_BIND.to_owned()
}

/// `[storage]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `memory://`, `sqlite://PATH` or `postgres://…` (default `sqlite://data/lti.db`).
    #[serde(default = "default_storage_url")]
    pub url: String,
    /// An optional separate store for launch state, nonces and launch data
    /// (`redis://…`, or any URL `url` accepts).
    #[serde(default)]
    pub nonce_url: Option<String>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: default_storage_url(),
            nonce_url: None,
        }
    }
}

fn default_storage_url() -> String {
    DEFAULT_STORAGE_URL.to_owned()
}

/// `[keys]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysConfig {
    /// The directory holding the tool's private key, public JWKS and the
    /// application secret (created with fresh keys when missing).
    #[serde(default = "default_keys_dir")]
    pub dir: PathBuf,
    /// The application secret from `LTI_APP_SECRET` (base64url, as in the
    /// `app-secret` file); when set, the file is neither read nor created.
    /// Never read from the configuration file.
    #[serde(skip)]
    pub app_secret: Option<String>,
    /// With PostgreSQL storage and neither `LTI_APP_SECRET` nor an
    /// `app-secret` file: the first instance creates the application secret
    /// in the store and every instance reads it there (default `false`: the
    /// secret would sit next to the secrets it encrypts).
    #[serde(default)]
    pub app_secret_in_store: bool,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            dir: default_keys_dir(),
            app_secret: None,
            app_secret_in_store: false,
        }
    }
}

fn default_keys_dir() -> PathBuf {
    PathBuf::from(DEFAULT_KEYS_DIR)
}

/// One `[[platforms]]` entry: an LTI 1.3 platform registration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// The platform's issuer (`iss`).
    pub issuer: String,
    /// The client id the platform assigned to this tool.
    pub client_id: String,
    /// The platform's OIDC authorization endpoint.
    pub auth_login_url: String,
    /// The platform's OAuth 2 token endpoint.
    pub auth_token_url: String,
    /// The platform's JWKS URL.
    pub jwks_url: String,
    /// The deployment ids launches may come from.
    pub deployment_ids: Vec<String>,
    /// The quirk profile: `canvas`, `moodle`, `blackboard`, `brightspace`,
    /// `sakai`, `schoology` or `generic` (default).
    #[serde(default)]
    pub profile: Option<String>,
}

/// One `[[platform_files]]` entry: a registration file in another tool's
/// format, read with `lti_registry::import`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformFileConfig {
    /// The file: a mimilti issuer map (`{"issuers": ...}`) or a PyLTI1.3
    /// `config.json`; the format is detected. Relative to the working directory.
    pub path: PathBuf,
    /// What launches get from a registration in the file that lists no
    /// deployment ids (mimilti's never do). Default `pending`.
    #[serde(default = "pending")]
    pub no_deployments: UnknownDeploymentsMode,
}

/// One `[[consumers]]` entry: an LTI 1.1 consumer.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    /// The OAuth consumer key.
    pub key: String,
    /// The shared secret.
    pub secret: String,
    /// A display name.
    #[serde(default)]
    pub name: Option<String>,
    /// The silo (tenant) whose contexts, resources and users this consumer's
    /// launches belong to; consumers sharing a silo share those records.
    /// Default: a silo of the consumer's own.
    #[serde(default)]
    pub silo: Option<String>,
}

impl std::fmt::Debug for ConsumerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerConfig")
            .field("key", &self.key)
            .field("secret", &"[redacted]")
            .field("name", &self.name)
            .field("silo", &self.silo)
            .finish()
    }
}

/// One thing wrong with a configuration: where (a dotted key path) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, e.g. `platforms[0].jwks_url` (empty for the whole file).
    pub path: String,
    /// What is wrong: what was expected and what was found.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        message: message.into(),
    }
}

/// The keys each table accepts (for naming unknown keys, all of them at once).
const TOP_KEYS: &[&str] = &[
    "server",
    "storage",
    "keys",
    "platforms",
    "platform_files",
    "consumers",
    "egress",
    "metrics",
    "dynamic_registration",
    "privacy",
];
const PRIVACY_KEYS: &[&str] = &["personal_data"];
const DYNAMIC_REGISTRATION_KEYS: &[&str] = &[
    "enabled",
    "allowed_issuers",
    "approval",
    "unknown_deployments",
    "name",
    "description",
    "logo_uri",
    "claims",
    "scopes",
    "custom_parameters",
    "messages",
];
const MESSAGE_KEYS: &[&str] = &[
    "type",
    "label",
    "placements",
    "custom_parameters",
    "target_link_uri",
    "icon_uri",
];
const SERVER_KEYS: &[&str] = &[
    "bind",
    "public_url",
    "platform_storage",
    "header_read_timeout_secs",
    "request_timeout_secs",
    "idle_timeout_secs",
    "max_connections",
];
const STORAGE_KEYS: &[&str] = &["url", "nonce_url"];
const KEYS_KEYS: &[&str] = &["dir", "app_secret_in_store"];
const METRICS_KEYS: &[&str] = &["bind"];
const PLATFORM_KEYS: &[&str] = &[
    "issuer",
    "client_id",
    "auth_login_url",
    "auth_token_url",
    "jwks_url",
    "deployment_ids",
    "profile",
];
const CONSUMER_KEYS: &[&str] = &["key", "secret", "name", "silo"];
const EGRESS_KEYS: &[&str] = &["allowed_origins", "allow_private_addresses"];

impl Config {
    /// Parses and validates a configuration, reporting every problem found.
    ///
    /// # Errors
    /// Every [`Problem`]: TOML syntax, unknown keys (each named), wrong types,
    /// and semantic problems (addresses, URLs, duplicates, empty values).
    pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        Self::parse_with_env(text, &|_| None)
    }

    /// Reads the file at `path` (or starts from the embedded default without
    /// one), applies the [`ENV_SETTINGS`] variables `env` returns, and
    /// validates the result; [`Config::origins`] says where each value came
    /// from.
    ///
    /// # Errors
    /// As [`Config::load`], plus a problem for an unusable variable value.
    pub fn load_with_env(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Vec<Problem>> {
        let text = match path {
            Some(path) => std::fs::read_to_string(path).map_err(|e| {
                vec![problem(
                    "",
                    format!(
                        "expected a readable configuration file at {}, found: {e}",
                        path.display()
                    ),
                )]
            })?,
            None => String::new(),
        };
        Self::parse_with_env(&text, env)
    }

    /// As [`Config::parse`], with environment overrides (see
    /// [`Config::load_with_env`]).
    ///
    /// # Errors
    /// As [`Config::parse`].
    pub fn parse_with_env(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Vec<Problem>> {
        let value: toml::Table = toml::from_str(text).map_err(|e| {
            vec![problem(
                "",
                format!("expected valid TOML, found a syntax error: {}", e.message()),
            )]
        })?;
        let mut problems = unknown_keys(&value);
        if !problems.is_empty() {
            return Err(problems);
        }
        let in_file = |path: &str| {
            let mut node = Some(&value);
            let mut parts = path.split('.').peekable();
            while let Some(part) = parts.next() {
                let table = node.take()?;
                let v = table.get(part)?;
                if parts.peek().is_none() {
                    return Some(());
                }
                node = v.as_table();
            }
            None
        };
        let mut origins = std::collections::BTreeMap::new();
        for (path, _) in ENV_SETTINGS {
            let origin = if in_file(path).is_some() {
                Origin::File
            } else {
                Origin::Default
            };
            origins.insert(*path, origin);
        }
        let mut config: Config = match toml::Value::Table(value).try_into() {
            Ok(c) => c,
            Err(e) => {
                let e: toml::de::Error = e;
                return Err(vec![problem("", e.message().to_owned())]);
            }
        };
        config.origins = origins;
        problems.extend(config.apply_env(env));
        problems.extend(config.validate());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Reads and parses a configuration file.
    ///
    /// # Errors
    /// An unreadable file is one problem; otherwise as [`Config::parse`].
    pub fn load(path: &Path) -> Result<Config, Vec<Problem>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![problem(
                "",
                format!(
                    "expected a readable configuration file at {}, found: {e}",
                    path.display()
                ),
            )]
        })?;
        Self::parse(&text)
    }

    /// Applies the [`ENV_SETTINGS`] variables that `env` returns (non-empty
    /// values only) and records their origin.
    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Vec<Problem> {
        let mut out = Vec::new();
        for (path, var) in ENV_SETTINGS {
            let Some(value) = env(var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            let flag = |v: &str| match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Some(true),
                "0" | "false" | "no" | "off" => Some(false),
                _ => None,
            };
            match *path {
                "server.bind" => self.server.bind = value,
                "server.public_url" => self.server.public_url = Some(value),
                "storage.url" => self.storage.url = value,
                "storage.nonce_url" => self.storage.nonce_url = Some(value),
                "keys.dir" => self.keys.dir = PathBuf::from(value),
                "keys.app_secret" => self.keys.app_secret = Some(value.trim().to_owned()),
                "egress.allow_private_addresses" | "dynamic_registration.enabled" => {
                    let Some(b) = flag(&value) else {
                        out.push(problem(
                            *path,
                            format!("expected true or false in {var}, found {value:?}"),
                        ));
                        continue;
                    };
                    if *path == "egress.allow_private_addresses" {
                        self.egress.allow_private_addresses = b;
                    } else {
                        self.dynamic_registration.enabled = b;
                    }
                }
                _ => continue,
            }
            self.origins.insert(*path, Origin::Env(var));
        }
        out
    }

    /// Every [`ENV_SETTINGS`] setting with its effective value (secrets
    /// redacted) and origin, for `lti check-config`.
    pub fn effective_settings(&self) -> Vec<(&'static str, String, Origin)> {
        ENV_SETTINGS
            .iter()
            .map(|(path, _)| {
                let value = match *path {
                    "server.bind" => self.server.bind.clone(),
                    "server.public_url" => self.public_url(),
                    "storage.url" => lti_http::redact_url(&self.storage.url),
                    "storage.nonce_url" => self
                        .storage
                        .nonce_url
                        .as_deref()
                        .map_or_else(|| "(none: the main store)".to_owned(), lti_http::redact_url),
                    "keys.dir" => self.keys.dir.display().to_string(),
                    "keys.app_secret" => match &self.keys.app_secret {
                        Some(_) => "[redacted]".to_owned(),
                        None => format!(
                            "(file {})",
                            self.keys.dir.join(crate::APP_SECRET_FILE).display()
                        ),
                    },
                    "egress.allow_private_addresses" => {
                        self.egress.allow_private_addresses.to_string()
                    }
                    "dynamic_registration.enabled" => self.dynamic_registration.enabled.to_string(),
                    _ => String::new(),
                };
                let origin = self.origins.get(path).copied().unwrap_or(Origin::Default);
                (*path, value, origin)
            })
            .collect()
    }

    /// The bind address.
    ///
    /// # Errors
    /// A problem when `server.bind` is not `host:port` with an IP host.
    pub fn bind_addr(&self) -> Result<SocketAddr, Problem> {
        self.server.bind.parse().map_err(|_| {
            problem(
                "server.bind",
                format!(
                    "expected an IP address and port such as 127.0.0.1:3000, found {:?}",
                    self.server.bind
                ),
            )
        })
    }

    /// The public base URL, always ending in `/`.
    pub fn public_url(&self) -> String {
        let mut url = self
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.server.bind));
        if !url.ends_with('/') {
            url.push('/');
        }
        url
    }

    /// The semantic checks (after the types are right).
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Err(p) = self.bind_addr() {
            out.push(p);
        }
        self.server.limit_problems(&mut out);
        if let Some(url) = &self.server.public_url {
            if let Err(m) = check_url(url) {
                out.push(problem("server.public_url", m));
            } else if url.contains('?') || url.contains('#') {
                out.push(problem(
                    "server.public_url",
                    format!("expected a base URL without query or fragment, found {url:?}"),
                ));
            }
        }
        let scheme = |u: &str| u.split(':').next().unwrap_or("").to_ascii_lowercase();
        match scheme(&self.storage.url).as_str() {
            "memory" | "sqlite" | "postgres" | "postgresql" => {}
            other => out.push(problem(
                "storage.url",
                format!(
                    "expected a memory://, sqlite://PATH or postgres:// URL, found scheme {other:?}"
                ),
            )),
        }
        if let Some(n) = &self.storage.nonce_url {
            match scheme(n).as_str() {
                "memory" | "sqlite" | "postgres" | "postgresql" | "redis" | "rediss" => {}
                other => out.push(problem(
                    "storage.nonce_url",
                    format!(
                        "expected a redis://, memory://, sqlite:// or postgres:// URL, found scheme {other:?}"
                    ),
                )),
            }
        }
        if self.keys.app_secret_in_store
            && !matches!(
                scheme(&self.storage.url).as_str(),
                "postgres" | "postgresql"
            )
        {
            out.push(problem(
                "keys.app_secret_in_store",
                format!(
                    "expected PostgreSQL storage (a store every instance shares and keeps), found storage.url scheme {:?}",
                    scheme(&self.storage.url)
                ),
            ));
        }
        if let Some(bind) = &self.metrics.bind
            && bind.parse::<SocketAddr>().is_err()
        {
            out.push(problem(
                "metrics.bind",
                format!("expected an IP address and port such as 127.0.0.1:9100, found {bind:?}"),
            ));
        }
        if self.keys.dir.as_os_str().is_empty() {
            out.push(problem(
                "keys.dir",
                "expected a directory path, found an empty string",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, p) in self.platforms.iter().enumerate() {
            let at = |k: &str| format!("platforms[{i}].{k}");
            for (k, v) in [("issuer", &p.issuer), ("client_id", &p.client_id)] {
                if v.trim().is_empty() {
                    out.push(problem(
                        at(k),
                        "expected a non-empty string, found an empty one",
                    ));
                }
            }
            for (k, v) in [
                ("issuer", &p.issuer),
                ("auth_login_url", &p.auth_login_url),
                ("auth_token_url", &p.auth_token_url),
                ("jwks_url", &p.jwks_url),
            ] {
                if k == "issuer" && v.trim().is_empty() {
                    continue;
                }
                if let Err(m) = check_url(v) {
                    out.push(problem(at(k), m));
                }
            }
            if p.deployment_ids.is_empty() {
                out.push(problem(
                    at("deployment_ids"),
                    "expected at least one deployment id, found an empty list",
                ));
            }
            let mut ids = std::collections::BTreeSet::new();
            for d in &p.deployment_ids {
                if d.is_empty() {
                    out.push(problem(
                        at("deployment_ids"),
                        "expected non-empty deployment ids, found an empty one",
                    ));
                } else if !ids.insert(d.as_str()) {
                    out.push(problem(
                        at("deployment_ids"),
                        format!("expected unique deployment ids, found {d:?} twice"),
                    ));
                }
            }
            if let Some(profile) = &p.profile
                && profile.parse::<lti_registry::QuirkProfile>().is_err()
            {
                out.push(problem(
                    at("profile"),
                    format!(
                        "expected one of canvas, moodle, blackboard, brightspace, sakai, schoology, generic, found {profile:?}"
                    ),
                ));
            }
            if !seen.insert((p.issuer.as_str(), p.client_id.as_str())) {
                out.push(problem(
                    format!("platforms[{i}]"),
                    format!(
                        "expected one entry per (issuer, client_id), found ({:?}, {:?}) again",
                        p.issuer, p.client_id
                    ),
                ));
            }
        }
        for (i, f) in self.platform_files.iter().enumerate() {
            match std::fs::read_to_string(&f.path) {
                Err(e) => out.push(problem(
                    format!("platform_files[{i}].path"),
                    format!("expected a readable file, found {}: {e}", f.path.display()),
                )),
                Ok(text) => {
                    if let Err(m) = check_foreign(&text, f.no_deployments) {
                        out.push(problem(
                            format!("platform_files[{i}]"),
                            format!("{}: {m}", f.path.display()),
                        ));
                    }
                }
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        for (i, c) in self.consumers.iter().enumerate() {
            if c.key.trim().is_empty() {
                out.push(problem(
                    format!("consumers[{i}].key"),
                    "expected a non-empty consumer key, found an empty one",
                ));
            } else if !keys.insert(c.key.as_str()) {
                out.push(problem(
                    format!("consumers[{i}].key"),
                    format!("expected unique consumer keys, found {:?} twice", c.key),
                ));
            }
            if c.secret.is_empty() {
                out.push(problem(
                    format!("consumers[{i}].secret"),
                    "expected a non-empty secret, found an empty one",
                ));
            }
        }
        out.extend(self.egress_problems());
        out.extend(self.dynamic_registration_problems());
        out
    }

    /// `[dynamic_registration]`: https issuers and logo, known message types
    /// are the platform's business; here only non-empty and well-formed values.
    fn dynamic_registration_problems(&self) -> Vec<Problem> {
        let dr = &self.dynamic_registration;
        let mut out = Vec::new();
        for (i, issuer) in dr.allowed_issuers.iter().enumerate() {
            if let Err(m) = check_url(issuer) {
                out.push(problem(
                    format!("dynamic_registration.allowed_issuers[{i}]"),
                    m,
                ));
            }
        }
        if dr.name.trim().is_empty() {
            out.push(problem(
                "dynamic_registration.name",
                "expected a non-empty tool name, found an empty one",
            ));
        }
        if let Some(logo) = &dr.logo_uri
            && let Err(m) = check_url(logo)
        {
            out.push(problem("dynamic_registration.logo_uri", m));
        }
        for (i, m) in dr.messages.iter().flatten().enumerate() {
            if m.message_type.trim().is_empty() {
                out.push(problem(
                    format!("dynamic_registration.messages[{i}].type"),
                    "expected a message type such as LtiResourceLinkRequest, found an empty one",
                ));
            }
            for (k, v) in [
                ("target_link_uri", &m.target_link_uri),
                ("icon_uri", &m.icon_uri),
            ] {
                if let Some(v) = v
                    && let Err(e) = check_url(v)
                {
                    out.push(problem(
                        format!("dynamic_registration.messages[{i}].{k}"),
                        e,
                    ));
                }
            }
        }
        out
    }

    /// Each `egress.allowed_origins` entry must be an origin: an absolute
    /// https URL (http on loopback) without a path, query or fragment.
    fn egress_problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (i, o) in self.egress.allowed_origins.iter().enumerate() {
            let at = format!("egress.allowed_origins[{i}]");
            if let Err(m) = check_url(o) {
                out.push(problem(at, m));
            } else if lti_http::origin(o).as_deref() != Some(o.trim_end_matches('/')) {
                out.push(problem(
                    at,
                    format!(
                        "expected an origin such as https://lms.example.edu (scheme, lowercase host, optional port, no path), found {o:?}"
                    ),
                ));
            }
        }
        out
    }
}

/// Every key the schema does not know, each with its full path.
fn unknown_keys(root: &toml::Table) -> Vec<Problem> {
    let mut out = Vec::new();
    check_table(root, "", TOP_KEYS, &mut out);
    let tables: [(&str, &[&str]); 6] = [
        ("server", SERVER_KEYS),
        ("storage", STORAGE_KEYS),
        ("keys", KEYS_KEYS),
        ("egress", EGRESS_KEYS),
        ("metrics", METRICS_KEYS),
        ("privacy", PRIVACY_KEYS),
    ];
    for (name, allowed) in tables {
        if let Some(toml::Value::Table(t)) = root.get(name) {
            check_table(t, name, allowed, &mut out);
        }
    }
    if let Some(toml::Value::Table(t)) = root.get("dynamic_registration") {
        check_table(
            t,
            "dynamic_registration",
            DYNAMIC_REGISTRATION_KEYS,
            &mut out,
        );
        if let Some(toml::Value::Array(items)) = t.get("messages") {
            for (i, item) in items.iter().enumerate() {
                if let toml::Value::Table(m) = item {
                    check_table(
                        m,
                        &format!("dynamic_registration.messages[{i}]"),
                        MESSAGE_KEYS,
                        &mut out,
                    );
                }
            }
        }
    }
    for (name, allowed) in [("platforms", PLATFORM_KEYS), ("consumers", CONSUMER_KEYS)] {
        if let Some(toml::Value::Array(items)) = root.get(name) {
            for (i, item) in items.iter().enumerate() {
                if let toml::Value::Table(t) = item {
                    check_table(t, &format!("{name}[{i}]"), allowed, &mut out);
                }
            }
        }
    }
    out
}

fn check_table(table: &toml::Table, path: &str, allowed: &[&str], out: &mut Vec<Problem>) {
    for key in table.keys() {
        if !allowed.contains(&key.as_str()) {
            let full = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            out.push(problem(
                full,
                format!(
                    "unknown key `{key}`: expected one of {}",
                    allowed
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
}

/// Parses a foreign registration file and applies the URL rule of
/// `[[platforms]]` to every registration in it.
pub(crate) fn check_foreign(
    text: &str,
    no_deployments: UnknownDeploymentsMode,
) -> Result<lti_registry::import::ForeignRegistrations, String> {
    let found = lti_registry::import::parse_foreign(text, no_deployments.policy())
        .map_err(|e| e.to_string())?;
    for r in &found.registrations {
        let jwks = match &r.key_source {
            lti_registry::KeySource::JwksUrl { url } => Some(url.as_str()),
            _ => None,
        };
        for (k, v) in [
            ("issuer", Some(r.issuer.as_str())),
            ("auth_login_url", Some(r.auth_login_url.as_str())),
            ("auth_token_url", Some(r.auth_token_url.as_str())),
            ("jwks", jwks),
        ] {
            if let Some(v) = v {
                check_url(v).map_err(|m| format!("{} / {} {k}: {m}", r.issuer, r.client_id))?;
            }
        }
    }
    Ok(found)
}

/// An absolute `https` URL, or `http` on a loopback host (development).
fn check_url(url: &str) -> Result<(), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| format!("expected an absolute https URL, found {url:?}"))?;
    let Some(host) = uri.host() else {
        return Err(format!("expected an absolute https URL, found {url:?}"));
    };
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") if lti_http::is_loopback_host(host) => Ok(()),
        Some("http") => Err(format!(
            "expected an https URL (plain http is only allowed for loopback hosts), found {url:?}"
        )),
        _ => Err(format!("expected an absolute https URL, found {url:?}")),
    }
}

/// The configuration used when no file is given: SQLite under `./data`, keys
/// under `./data/keys`, no platforms (register one and restart with a file).
pub fn embedded_default() -> Config {
    Config::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
bind = "127.0.0.1:3000"
public_url = "http://127.0.0.1:3000"

[storage]
url = "memory://"

[keys]
dir = "data/keys"

[[platforms]]
issuer = "https://lms.example.edu"
client_id = "abc123"
auth_login_url = "https://lms.example.edu/auth"
auth_token_url = "https://lms.example.edu/token"
jwks_url = "https://lms.example.edu/jwks"
deployment_ids = ["1"]
profile = "moodle"

[[consumers]]
key = "k"
secret = "s"
name = "Old LMS"
"#;

    #[test]
    fn the_issue_example_parses() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.platforms[0].client_id, "abc123");
        assert_eq!(c.public_url(), "http://127.0.0.1:3000/");
        assert_eq!(c.consumers[0].key, "k");
        assert!(!format!("{:?}", c.consumers[0]).contains("\"s\""));
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.server.bind, DEFAULT_BIND);
        assert_eq!(c.storage.url, DEFAULT_STORAGE_URL);
        assert_eq!(c.keys.dir, PathBuf::from(DEFAULT_KEYS_DIR));
    }

    #[test]
    fn every_unknown_key_is_named() {
        let text = GOOD
            .replace("bind =", "bnid = \"x\"\nbind =")
            .replace("profile = \"moodle\"", "profile = \"moodle\"\njwks = \"x\"")
            + "\n[extra]\na = 1\n";
        let problems = Config::parse(&text).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["extra", "server.bnid", "platforms[0].jwks"]);
        assert!(problems[1].message.contains("unknown key `bnid`"));
    }

    #[test]
    fn non_https_platform_urls_are_refused_except_loopback() {
        let text = GOOD
            .replace(
                "https://lms.example.edu/jwks",
                "http://lms.example.edu/jwks",
            )
            .replace("https://lms.example.edu/auth", "http://localhost:9/auth");
        let problems = Config::parse(&text).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "platforms[0].jwks_url");
        assert!(problems[0].message.contains("expected an https URL"));
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let text = GOOD
            .replace("127.0.0.1:3000\"\npublic", "nowhere\"\npublic")
            .replace("deployment_ids = [\"1\"]", "deployment_ids = []")
            .replace("\"moodle\"", "\"webct\"")
            .replace("memory://", "mysql://x");
        let problems = Config::parse(&text).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "server.bind",
                "storage.url",
                "platforms[0].deployment_ids",
                "platforms[0].profile"
            ]
        );
    }

    #[test]
    fn personal_data_is_stored_by_default_and_dropped_on_request() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.privacy.personal_data, PersonalDataMode::Store);
        let c = Config::parse(&format!("{GOOD}\n[privacy]\npersonal_data = \"drop\"\n")).unwrap();
        assert_eq!(c.privacy.personal_data, PersonalDataMode::Drop);
        let problems =
            Config::parse(&format!("{GOOD}\n[privacy]\npersonal_data = \"hide\"\n")).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .message
                .contains("unknown variant `hide`, expected `store` or `drop`"),
            "{problems:?}"
        );
    }

    #[test]
    fn the_egress_section_is_checked_and_secure_by_default() {
        let c = Config::parse(GOOD).unwrap();
        assert!(!c.egress.allow_private_addresses);
        assert!(c.egress.policy().unwrap().allowed_origins().is_empty());
        let c = Config::parse(&format!(
            "{GOOD}\n[egress]\nallowed_origins = [\"https://school.instructure.com\", \"http://localhost:4000\"]\nallow_private_addresses = true\n"
        ))
        .unwrap();
        assert!(c.egress.allow_private_addresses);
        assert_eq!(
            c.egress.policy().unwrap().allowed_origins(),
            ["https://school.instructure.com", "http://localhost:4000"]
        );
        let problems = Config::parse(&format!(
            "{GOOD}\n[egress]\nallowed_origins = [\"https://lms.example/api\", \"http://lms.example\", \"nope\"]\nallow_private = true\n"
        ))
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["egress.allow_private"], "{problems:?}");
        let problems = Config::parse(&format!(
            "{GOOD}\n[egress]\nallowed_origins = [\"https://lms.example/api\", \"http://lms.example\", \"nope\"]\n"
        ))
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "egress.allowed_origins[0]",
                "egress.allowed_origins[1]",
                "egress.allowed_origins[2]"
            ],
            "{problems:?}"
        );
        assert!(
            problems[0].message.contains("expected an origin"),
            "{problems:?}"
        );
        assert!(
            problems[1].message.contains("expected an https URL"),
            "{problems:?}"
        );
    }

    #[test]
    fn server_limits_default_and_are_checked() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.server.limits(), crate::ServerLimits::default());
        let c = Config::parse(
            "[server]\nheader_read_timeout_secs = 5\nrequest_timeout_secs = 20\nidle_timeout_secs = 25\nmax_connections = 64\n",
        )
        .unwrap();
        let limits = c.server.limits();
        assert_eq!(limits.header_read_timeout, Duration::from_secs(5));
        assert_eq!(limits.request_timeout, Duration::from_secs(20));
        assert_eq!(limits.idle_timeout, Duration::from_secs(25));
        assert_eq!(limits.max_connections, 64);
        let problems = Config::parse(
            "[server]\nheader_read_timeout_secs = 0\nrequest_timeout_secs = 90\nidle_timeout_secs = 86401\nmax_connections = 0\n",
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "server.header_read_timeout_secs",
                "server.idle_timeout_secs",
                "server.max_connections"
            ]
        );
        assert_eq!(
            problems[1].message,
            "expected 1 to 86400 seconds, found 86401"
        );
    }

    #[test]
    fn the_environment_overrides_the_file_and_origins_are_recorded() {
        let env = |name: &str| match name {
            "LTI_STORAGE_URL" => Some("postgres://lti:pw@db.internal/lti".to_owned()),
            "LTI_PUBLIC_URL" => Some("https://tool.example.edu".to_owned()),
            "LTI_APP_SECRET" => Some("c2VjcmV0".to_owned()),
            "LTI_DYNAMIC_REGISTRATION" => Some("on".to_owned()),
            "LTI_NONCE_URL" => Some(String::new()),
            _ => None,
        };
        let c = Config::parse_with_env(GOOD, &env).unwrap();
        assert_eq!(c.storage.url, "postgres://lti:pw@db.internal/lti");
        assert_eq!(c.public_url(), "https://tool.example.edu/");
        assert!(c.dynamic_registration.enabled);
        assert_eq!(c.keys.app_secret.as_deref(), Some("c2VjcmV0"));
        assert_eq!(c.origins["storage.url"], Origin::Env("LTI_STORAGE_URL"));
        assert_eq!(c.origins["server.bind"], Origin::File);
        assert_eq!(
            c.origins["storage.nonce_url"],
            Origin::Default,
            "empty values are ignored"
        );
        let settings = c.effective_settings();
        let get = |k: &str| settings.iter().find(|(p, _, _)| *p == k).unwrap().clone();
        assert_eq!(get("keys.app_secret").1, "[redacted]");
        assert!(
            !get("storage.url").1.contains("pw"),
            "{:?}",
            get("storage.url")
        );
        assert_eq!(get("keys.dir").2, Origin::File);

        let bad = |name: &str| (name == "LTI_ALLOW_PRIVATE_ADDRESSES").then(|| "sure".to_owned());
        let problems = Config::parse_with_env("", &bad).unwrap_err();
        assert_eq!(problems[0].path, "egress.allow_private_addresses");
        // The env value still goes through validation.
        let bind = |name: &str| (name == "LTI_BIND").then(|| "nowhere".to_owned());
        let problems = Config::parse_with_env("", &bind).unwrap_err();
        assert_eq!(problems[0].path, "server.bind");
    }

    #[test]
    fn the_dynamic_registration_section_is_off_by_default_and_checked() {
        let c = Config::parse("").unwrap();
        assert!(!c.dynamic_registration.enabled);
        assert_eq!(c.dynamic_registration.approval, ApprovalMode::Auto);
        let c = Config::parse(
            "[dynamic_registration]\nenabled = true\napproval = \"manual\"\nunknown_deployments = \"pending\"\nallowed_issuers = [\"https://canvas.instructure.com\"]\n[[dynamic_registration.messages]]\ntype = \"LtiDeepLinkingRequest\"\nplacements = [\"ContentArea\"]\n",
        )
        .unwrap();
        assert_eq!(c.dynamic_registration.approval, ApprovalMode::Manual);
        assert_eq!(
            c.dynamic_registration.unknown_deployments,
            UnknownDeploymentsMode::Pending
        );
        let problems = Config::parse(
            "[dynamic_registration]\nallowed_issuers = [\"http://lms.example\"]\nname = \"\"\n[[dynamic_registration.messages]]\ntype = \"\"\nlable = \"x\"\n",
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["dynamic_registration.messages[0].lable"],
            "{problems:?}"
        );
        let problems = Config::parse(
            "[dynamic_registration]\nallowed_issuers = [\"http://lms.example\"]\nname = \"\"\n[[dynamic_registration.messages]]\ntype = \"\"\n",
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "dynamic_registration.allowed_issuers[0]",
                "dynamic_registration.name",
                "dynamic_registration.messages[0].type"
            ],
            "{problems:?}"
        );
    }

    #[test]
    fn wrong_types_and_syntax_are_reported() {
        let p = Config::parse("[server]\nbind = 3000\n").unwrap_err();
        assert!(p[0].message.contains("invalid type"), "{p:?}");
        let p = Config::parse("[server\n").unwrap_err();
        assert!(p[0].message.contains("syntax error"), "{p:?}");
        let p = Config::parse("[[platforms]]\nissuer = \"https://x\"\n").unwrap_err();
        assert!(p[0].message.contains("missing field"), "{p:?}");
    }
}
